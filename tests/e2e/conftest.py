"""Fixtures for the end-to-end suite: one `sluice serve` per test session,
driven through the official google-cloud-bigquery client.

Environment:
  SLUICE_BIN  path to the sluice binary (required unless SLUICE_URL is set)
  SLUICE_URL  optional: base URL of an already running gateway to reuse
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

PROJECT = "demo"
DATASET = "shop"
STARTUP_TIMEOUT_S = 180
LISTEN_RE = re.compile(r"http://127\.0\.0\.1:(\d+)")

CUSTOMERS_ROWS = 10_000
ORDERS_ROWS = 100_000
EVENTS_ROWS = 1_000_000


def agent_token(server: "SluiceServer", sub: str = "e2e-agent", groups=("agents",)) -> str:
    """The bearer token an agent presents to the gateway.

    Every test obtains its token through this one function: the development
    issuer of the gateway under test signs it (`sluice token`), for subject
    `sub` in `groups`. Against an external gateway (SLUICE_URL), the token is
    SLUICE_TOKEN.
    """
    if server.data_dir is None:
        token = os.environ.get("SLUICE_TOKEN")
        if not token:
            pytest.exit("SLUICE_URL is set: set SLUICE_TOKEN to an agent's token too", returncode=2)
        return token
    args = [os.environ["SLUICE_BIN"], "token", "--sub", sub, "--data-dir", str(server.data_dir), "--ttl", "2h"]
    for group in groups:
        args += ["--group", group]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


def _log_tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:  # pragma: no cover - diagnostics only
        return f"<could not read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def _healthz(base_url: str, deadline: float) -> None:
    last_error = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=5) as resp:
                if resp.status == 200:
                    return
                last_error = f"HTTP {resp.status}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = repr(exc)
        time.sleep(0.2)
    raise RuntimeError(f"GET {base_url}/healthz never answered 200 (last: {last_error})")


class SluiceServer:
    def __init__(
        self,
        base_url: str,
        process: subprocess.Popen | None,
        log_path: Path | None,
        data_dir: Path | None = None,
    ):
        self.base_url = base_url
        self.process = process
        self.log_path = log_path
        self.data_dir = data_dir

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def log_tail(self, lines: int = 60) -> str:
        if self.log_path is None:
            return "<external server: no log>"
        return _log_tail(self.log_path, lines)

    def stop(self) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if self.data_dir is not None:
            # the demo warehouse is large; the log stays for post-mortems
            shutil.rmtree(self.data_dir, ignore_errors=True)


def _start_sluice(work_dir: Path) -> SluiceServer:
    external = os.environ.get("SLUICE_URL")
    if external:
        base_url = external.rstrip("/")
        _healthz(base_url, time.monotonic() + 30)
        return SluiceServer(base_url, None, None)

    binary = os.environ.get("SLUICE_BIN")
    if not binary:
        pytest.exit(
            "SLUICE_BIN is not set: point it at the sluice binary "
            "(e.g. SLUICE_BIN=target/debug/sluice), or set SLUICE_URL to a running gateway",
            returncode=2,
        )
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.exit(f"SLUICE_BIN={binary!r} does not exist or is not executable", returncode=2)

    data_dir = work_dir / "data"
    data_dir.mkdir()
    log_path = work_dir / "sluice.log"
    log_file = open(log_path, "wb")  # closed when the process is reaped
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=work_dir,
        start_new_session=True,
    )
    log_file.close()

    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    port = None
    while time.monotonic() < deadline:
        match = LISTEN_RE.search(log_path.read_text(errors="replace"))
        if match:
            port = int(match.group(1))
            break
        if proc.poll() is not None:
            break
        time.sleep(0.2)

    server = SluiceServer(f"http://127.0.0.1:{port}", proc, log_path, data_dir)
    failure = None
    if port is None:
        if proc.poll() is not None:
            failure = f"sluice exited with status {proc.returncode} before listening"
        else:
            failure = f"sluice printed no 'listening on http://127.0.0.1:PORT' line within {STARTUP_TIMEOUT_S}s"
    else:
        try:
            _healthz(server.base_url, time.monotonic() + 30)
        except RuntimeError as exc:
            failure = str(exc)
    if failure:
        server.stop()
        pytest.exit(f"{failure}\n--- tail of {log_path} ---\n{_log_tail(log_path)}", returncode=3)
    return server


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "destructive: sends a statement that must be refused (DROP, DELETE); runs last so "
        "that a gateway which wrongly executes it cannot spoil the other tests",
    )


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.get_closest_marker("destructive") is not None)


@pytest.fixture(scope="session")
def sluice(tmp_path_factory) -> SluiceServer:
    work_dir = Path(tempfile.mkdtemp(prefix="sluice-e2e-", dir=tmp_path_factory.getbasetemp()))
    server = _start_sluice(work_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def credentials(sluice):
    from google.oauth2.credentials import Credentials

    return Credentials(token=agent_token(sluice))


def make_client(base_url: str, credentials, project: str = PROJECT):
    from google.cloud import bigquery

    return bigquery.Client(
        project=project,
        credentials=credentials,
        client_options={"api_endpoint": base_url},
    )


@pytest.fixture(scope="session")
def client(sluice, credentials):
    bq = make_client(sluice.base_url, credentials)
    yield bq
    bq.close()


@pytest.fixture(scope="session")
def admin_client(sluice):
    """A client for a member of `admins` (reads all of project demo)."""
    from google.oauth2.credentials import Credentials

    bq = make_client(sluice.base_url, Credentials(token=agent_token(sluice, "e2e-admin", ("admins",))))
    yield bq
    bq.close()


@pytest.fixture
def job_id_prefix() -> str:
    """A unique prefix so a test can recognise the jobs it created."""
    return f"e2e_{uuid.uuid4().hex[:12]}_"


_SERVER_KEY = pytest.StashKey[SluiceServer]()


@pytest.fixture(scope="session", autouse=True)
def _remember_server(request, sluice):
    request.config.stash[_SERVER_KEY] = sluice


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the gateway's log tail to failing tests, to make triage quick."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        server = item.config.stash.get(_SERVER_KEY, None)
        if server is not None:
            report.sections.append(("sluice log (tail)", server.log_tail(30)))
