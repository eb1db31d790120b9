"""Fixtures for the end-to-end suite: one `sluice serve` per test session,
driven through the official google-cloud-bigquery client.

Environment:
  SLUICE_BIN           path to the sluice binary (required unless SLUICE_URL is set)
  SLUICE_URL           optional: base URL of an already running gateway to reuse
  SLUICE_E2E_UPSTREAM  `embedded` (default) or `bqemulator`: the gateway forwards
                       to the third-party emulator bqemulator (started here,
                       seeded with the demo tables) with the BigQuery upstream,
                       minting each job's token at a local Security Token
                       Service (fake_sts.py) by workload-identity exchange of
                       an assertion Sluice signs (the service trusts the keys
                       `sluice secrets jwks` exported, and nothing else)
  BQEMULATOR_PYTHON    the Python of the venv that has bqemulator (run.sh sets it)
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
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

UPSTREAM = os.environ.get("SLUICE_E2E_UPSTREAM", "embedded")
HERE = Path(__file__).resolve().parent
STS_AUDIENCE = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/e2e/providers/sluice"
# The named credential the demo's `admins` policy picks in the upstream pass:
# another provider, then impersonation of a service account of its own.
STS_ADMINS_AUDIENCE = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/e2e/providers/admins"
ADMINS_SERVICE_ACCOUNT = "e2e-admins@demo-project.iam.gserviceaccount.com"
# Sluice's issuer in the upstream pass: the only issuer the token service's
# providers trust, with the keys exported into TRUSTED_JWKS beside the config.
SLUICE_ISSUER = "https://sluice.e2e.test"
TRUSTED_JWKS = "trusted-jwks"

# What bqemulator does not do as BigQuery does (bqemulator/FINDINGS.md). These
# tests run against the embedded warehouse only; the gateway's own handling of
# these paths (dry-run bytes and referencedTables, the cross-check, byte caps)
# is covered there and by crates/sluice-gateway/tests against a local server.
EMULATOR_GAPS = {
    "test_functions.py::test_select_star_replace": "bqemulator leaves the RECORD column address out of SELECT * REPLACE; the result is not the query's, and Sluice's mask check refuses it",
    "test_jobs.py::test_cancel_running_job": "bqemulator runs queries synchronously on one event loop; a long query freezes it and cancel does nothing",
    "test_jobs.py::test_unfinished_job_is_running_and_result_times_out": "bqemulator runs queries synchronously; a job is never seen running",
    "test_dry_run.py::test_dry_run_estimates_bytes": "bqemulator reports totalBytesProcessed as 0",
    "test_dry_run.py::test_fewer_columns_estimate_fewer_bytes": "bqemulator reports totalBytesProcessed as 0",
    "test_dry_run.py::test_bigger_table_estimates_more_bytes": "bqemulator reports totalBytesProcessed as 0",
    "test_dry_run.py::test_dry_run_with_parameters": "bqemulator reports totalBytesProcessed as 0",
    "test_dry_run.py::test_dry_run_referenced_tables": "bqemulator sends no referencedTables",
    "test_dry_run.py::test_dry_run_referenced_tables_for_join": "bqemulator sends no referencedTables",
    "test_jobs.py::test_get_job_fields": "bqemulator sends no referencedTables and 0 bytes in job statistics",
    "test_jobs.py::test_dry_run_job_fields": "bqemulator sends no referencedTables and 0 bytes in job statistics",
    "test_params.py::test_named_scalar_round_trip[BIGNUMERIC-5]": "bqemulator returns BIGNUMERIC parameters as FLOAT",
    "test_params.py::test_positional_scalar_round_trip[BIGNUMERIC-5]": "bqemulator returns BIGNUMERIC parameters as FLOAT",
    "test_params.py::test_named_scalar_round_trip[BYTES-9]": "bqemulator returns BYTES parameters as base64 STRING",
    "test_params.py::test_positional_scalar_round_trip[BYTES-9]": "bqemulator returns BYTES parameters as base64 STRING",
    "test_functions.py::test_date_trunc_month": "bqemulator types DATE_TRUNC of a DATE as DATETIME",
    "test_errors.py::test_unknown_dataset_in_query_is_not_found": "bqemulator answers a query on a missing dataset with accessDenied, not notFound",
    "test_errors.py::test_list_tables_unknown_dataset_is_not_found": "bqemulator lists tables of a missing dataset as empty",
}

CUSTOMERS_ROWS = 10_000
ORDERS_ROWS = 100_000
EVENTS_ROWS = 1_000_000


def agent_token(server: "SluiceServer", sub: str = "e2e-agent", groups=("agents",)) -> str:
    """The bearer token an agent presents to the gateway.

    Every test obtains its token through this one function: the development
    issuer of the gateway under test signs it (`sluice token`), for subject
    `sub` in `groups`; in the upstream pass, where the gateway refuses the
    development issuer, the agents' identity provider of the test stack does
    (`_agents_identity_provider`). Against an external gateway (SLUICE_URL),
    the token is SLUICE_TOKEN.
    """
    if server.data_dir is None:
        token = os.environ.get("SLUICE_TOKEN")
        if not token:
            pytest.exit("SLUICE_URL is set: set SLUICE_TOKEN to an agent's token too", returncode=2)
        return token
    signer = _AGENTS_ISSUER_DIR or server.data_dir
    args = [os.environ["SLUICE_BIN"], "token", "--sub", sub, "--data-dir", str(signer), "--ttl", "2h"]
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

    def helper(self, name: str) -> "Process | None":
        return next((h for h in getattr(self, "helpers", []) if h.name == name), None)

    def restart(self) -> None:
        """Stops the gateway process and starts it again on the same
        configuration, data folder and helpers (the emulator keeps running);
        the new process listens on a new port."""
        proc = self.process
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        args, env, work_dir = self.launch
        self.process, port = _launch(args, env, work_dir, self.log_path)
        if port is None:
            raise RuntimeError(f"sluice did not come back after a restart\n{self.log_tail()}")
        self.base_url = f"http://127.0.0.1:{port}"
        _healthz(self.base_url, time.monotonic() + 30)

    def stop(self) -> None:
        for helper in getattr(self, "helpers", []):
            helper.stop()
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


class Process:
    """A helper process of the suite (the emulator, the token service) that
    prints `listening on http://127.0.0.1:PORT` when it is ready."""

    def __init__(self, name: str, args: list[str], work_dir: Path, timeout_s: float = 120):
        self.name = name
        self.log_path = work_dir / f"{name}.log"
        out_path = work_dir / f"{name}.out"
        with open(out_path, "wb") as out, open(self.log_path, "wb") as err:
            self.process = subprocess.Popen(
                args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", out_path.read_text(errors="replace"))
            if match:
                self.url = match.group(1)
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        pytest.exit(f"{name} did not start\n--- {self.log_path} ---\n{_log_tail(self.log_path)}", returncode=3)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def trust_gateway_keys(binary: str, config: Path, data_dir: Path) -> Path:
    """Exports the JWKS of the gateway whose store is in `data_dir` (making
    its signing key if it has none) into the token service's trusted
    folder, as an operator gives a pool provider the file with
    --jwk-json-path. Returns the file."""
    out = config.parent / TRUSTED_JWKS / f"{data_dir.parent.name}-{data_dir.name}.json"
    subprocess.run(
        [binary, "secrets", "jwks", "--config", str(config), "--data-dir", str(data_dir), "--out", str(out)],
        check=True, capture_output=True,
    )
    return out


# Where the agents' identity provider of the upstream pass keeps its key
# (set by `_agents_identity_provider`); None in the embedded pass.
_AGENTS_ISSUER_DIR: Path | None = None


def _agents_identity_provider(work_dir: Path, binary: str) -> Process:
    """The agents' identity provider in the upstream pass. Sluice refuses
    its development issuer in front of BigQuery (whoever can read the key
    file could mint any group), so the gateway trusts the agents' tokens as
    it trusts any OIDC issuer's, by their JWKS URL. This serves that JWKS:
    a `sluice serve` of its own with the development issuer on and nothing
    else; `agent_token` mints with its key."""
    global _AGENTS_ISSUER_DIR
    data_dir = work_dir / "agents-idp"
    config = work_dir / "agents-idp.yaml"
    config.write_text(
        "warehouse: { kind: embedded, demo_data: false }\n"
        "identity:\n  development_issuer: { enabled: true, audience: sluice }\n"
    )
    idp = Process(
        "agents-idp",
        [binary, "serve", "--config", str(config), "--data-dir", str(data_dir), "--listen", "127.0.0.1:0"],
        work_dir,
    )
    _AGENTS_ISSUER_DIR = data_dir
    return idp


def _agents_identity(idp: Process) -> str:
    """`identity:` of the upstream configuration: the agents' identity
    provider, trusted as an OIDC issuer (its tokens carry `groups`)."""
    return (
        "identity:\n"
        "  issuers:\n"
        "    - issuer: http://127.0.0.1/sluice-dev-issuer\n"
        "      audiences: [sluice]\n"
        f"      jwks_uri: {idp.url}/sluice-dev-issuer/jwks.json\n"
        "      groups_claim: groups\n"
    )


def _upstream_config(work_dir: Path, binary: str) -> tuple[Path, list[Process]]:
    """Starts bqemulator (seeded with the demo tables) and the local token
    service, and writes a configuration: the demo's, with the BigQuery
    upstream in place of the embedded warehouse. A gateway on it needs its
    keys trusted first (`trust_gateway_keys`)."""
    python = os.environ.get("BQEMULATOR_PYTHON")
    if not python:
        pytest.exit("SLUICE_E2E_UPSTREAM=bqemulator needs BQEMULATOR_PYTHON (run.sh sets it)", returncode=2)
    tables = work_dir / "upstream-tables"
    subprocess.run([binary, "demo-data", "--warehouse-dir", str(tables)], check=True, capture_output=True)
    emulator = Process(
        "bqemulator",
        [python, str(HERE / "bqemulator" / "start.py"), "--port", "0", "--grpc-port", "0",
         "--project", PROJECT, "--data", str(tables)],
        work_dir,
    )
    master_key = work_dir / "master.key"
    trusted = work_dir / TRUSTED_JWKS
    try:
        subprocess.run([binary, "secrets", "init-key", "--out", str(master_key)], check=True, capture_output=True)
        trusted.mkdir()
        sts = Process(
            "fake-sts",
            [sys.executable, str(HERE / "fake_sts.py"), "--audience", STS_AUDIENCE, "--audience", STS_ADMINS_AUDIENCE,
             "--issuer", SLUICE_ISSUER, "--jwks-dir", str(trusted)],
            work_dir,
        )
    except BaseException:
        emulator.stop()
        raise
    try:
        agents_idp = _agents_identity_provider(work_dir, binary)
    except BaseException:
        sts.stop()
        emulator.stop()
        raise
    demo = (HERE.parent.parent / "demo" / "sluice.yaml").read_text()
    head, rest = demo.split("warehouse:\n", 1)
    rest = rest.split("\n\n", 1)[1]
    # Administrators run with a credential of their own (a policy's pick).
    admins = "  - name: admins\n"
    assert admins in rest, "the demo configuration has an admins policy"
    rest = rest.replace(admins, admins + "    credentials: admins\n", 1)
    # The demo's development issuer gives way to the agents' identity provider.
    rest, replaced = re.subn(r"^identity:\n(?:  .*\n)*", _agents_identity(agents_idp), rest, count=1, flags=re.M)
    assert replaced, "the demo configuration has an identity section"
    # The reviewer UI signs in with the demo's development issuer, which is
    # off here (the UI's own tests run in the embedded pass).
    rest, replaced = re.subn(r"^ui:\n(?:  .*\n)*", "", rest, count=1, flags=re.M)
    assert replaced, "the demo configuration has a ui section"
    config = work_dir / "sluice-bqemulator.yaml"
    config.write_text(
        head
        + "warehouse:\n"
        + "  kind: bigquery\n"
        + f"  endpoint: {emulator.url}\n"
        + "  location: US\n"
        + "  # bqemulator never lists referencedTables (bqemulator/FINDINGS.md)\n"
        + "  require_referenced_tables: false\n"
        + "  credentials:\n"
        + "    kind: workload_identity\n"
        + f"    audience: {STS_AUDIENCE}\n"
        + f"    issuer: {SLUICE_ISSUER}\n"
        + f"    sts_url: {sts.url}/v1/token\n"
        + "    revoke_url: none\n"
        + "  named_credentials:\n"
        + "    admins:\n"
        + "      kind: workload_identity\n"
        + f"      audience: {STS_ADMINS_AUDIENCE}\n"
        + f"      issuer: {SLUICE_ISSUER}\n"
        + f"      service_account: {ADMINS_SERVICE_ACCOUNT}\n"
        + "      lifetime: 300s\n"
        + f"      sts_url: {sts.url}/v1/token\n"
        + f"      iam_credentials_url: {sts.url}\n"
        + "      revoke_url: none\n\n"
        + rest
        + f"\nsecrets:\n  master_key_file: {master_key}\n"
    )
    return config, [emulator, sts, agents_idp]


def _launch(args: list[str], env: dict, work_dir: Path, log_path: Path) -> tuple[subprocess.Popen, int | None]:
    """Starts `sluice serve`, appending to `log_path`, and waits for the
    port it listens on (None if it never says)."""
    start = log_path.stat().st_size if log_path.exists() else 0
    log_file = open(log_path, "ab")  # closed when the process is reaped
    proc = subprocess.Popen(
        args,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=work_dir,
        env=env,
        start_new_session=True,
    )
    log_file.close()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        with open(log_path, errors="replace") as f:
            f.seek(start)
            match = LISTEN_RE.search(f.read())
        if match:
            return proc, int(match.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    return proc, None


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
    args = [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)]
    helpers: list[Process] = []
    env = dict(os.environ)
    if UPSTREAM == "bqemulator":
        config, helpers = _upstream_config(work_dir, binary)
        trust_gateway_keys(binary, config, data_dir)
        args += ["--config", str(config)]
        # Everything Sluice logs at debug is searched for secrets afterwards.
        env["SLUICE_LOG"] = "debug"
    elif UPSTREAM != "embedded":
        pytest.exit(f"SLUICE_E2E_UPSTREAM={UPSTREAM!r}: use embedded or bqemulator", returncode=2)
    log_path = work_dir / "sluice.log"
    proc, port = _launch(args, env, work_dir, log_path)
    server = SluiceServer(f"http://127.0.0.1:{port}", proc, log_path, data_dir)
    server.helpers = helpers
    server.launch = (args, env, work_dir)
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
        "upstream_only: exercises the BigQuery upstream (credentials, logs); runs with SLUICE_E2E_UPSTREAM=bqemulator",
    )
    config.addinivalue_line(
        "markers",
        "destructive: sends a statement that must be refused (DROP, DELETE); runs last so "
        "that a gateway which wrongly executes it cannot spoil the other tests",
    )


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.get_closest_marker("destructive") is not None)
    for item in items:
        if UPSTREAM == "bqemulator":
            name = item.nodeid.split("/")[-1]
            reason = EMULATOR_GAPS.get(name) or EMULATOR_GAPS.get(name.split("[")[0])
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"against bqemulator: {reason}"))
        elif item.get_closest_marker("upstream_only"):
            item.add_marker(pytest.mark.skip(reason="runs only with SLUICE_E2E_UPSTREAM=bqemulator"))


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
