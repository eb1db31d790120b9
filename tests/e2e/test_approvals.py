"""Queries that wait for a reviewer, through the unchanged Python client.

The demo configuration sends an `agents` query estimated over 10 MiB to
group `reviewers` (rule large-scan, one approval, 15 minutes). The client
only sees a job that stays PENDING; reviewers use /sluice/v1/approvals.
The timeout and restart cases run on gateways of their own, over the same
demo tables, with a shorter timeout or a fixed port.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import bigquery
from google.oauth2.credentials import Credentials

from conftest import UPSTREAM, SluiceServer, _healthz, _launch, agent_token, make_client

pytestmark = pytest.mark.skipif(
    UPSTREAM != "embedded",
    reason="bqemulator estimates every query at 0 bytes, so none is over the demo rule's 10 MiB",
)

# event_id, duration_ms and revenue of all 1,000,000 events: about 15.6 MiB
# estimated, over the demo's 10 MiB.
BIG = "SELECT COUNT(*) AS n, SUM(duration_ms) AS d FROM `demo.shop.events` WHERE event_id > 0 AND (revenue IS NULL OR revenue >= 0)"
# The same numbers another way: reads no column, so no review.
EVENTS = 1_000_000
DEMO_CONFIG = Path(__file__).resolve().parents[2] / "demo" / "sluice.yaml"


def api(server: SluiceServer, token: str, method: str, path: str, body=None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{server.base_url}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def approval_of(server: SluiceServer, reviewer: str, job_id: str, deadline_s: float = 30) -> dict:
    """The approval request a job waits for, as its reviewer lists it."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        status, body = api(server, reviewer, "GET", "/sluice/v1/approvals?state=PENDING")
        assert status == 200, body
        for approval in body["approvals"]:
            if approval["jobReference"]["jobId"] == job_id:
                return approval
        time.sleep(0.2)
    raise AssertionError(f"no pending approval for job {job_id}")


def vote(server: SluiceServer, token: str, approval: dict, action: str, reason: str = "") -> tuple[int, dict]:
    return api(server, token, "POST", f"/sluice/v1/approvals/{approval['id']}:{action}", {"reason": reason})


@pytest.fixture
def reviewer(sluice) -> str:
    return agent_token(sluice, "alice", ("reviewers",))


@pytest.mark.timeout(600)
def test_the_client_waits_through_a_three_minute_approval_and_gets_its_rows(sluice, client, reviewer):
    started = time.monotonic()
    job = client.query(BIG)
    # The job waits, saying for what.
    job.reload()
    assert job.state == "PENDING"
    message = job._properties["status"]["message"]
    assert message.startswith("waiting for approval by reviewers: "), message
    assert "rule large-scan" in message and "apr_" in message, message

    approval = approval_of(sluice, reviewer, job.job_id)
    assert approval["sql"] == BIG
    assert approval["rule"] == "large-scan"
    assert approval["principal"] == "e2e-agent"
    assert int(approval["estimate"]["bytes"]) > 10 * 2**20
    assert approval["estimate"]["usd"] > 0

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        rows = pool.submit(lambda: list(job.result(timeout=600)))
        # The client keeps polling, unchanged, for three minutes.
        while time.monotonic() - started < 180:
            assert not rows.done(), "the query returned before anyone approved it"
            time.sleep(5)
        assert client.get_job(job.job_id).state == "PENDING"
        status, body = vote(sluice, reviewer, approval, "approve", "expected report")
        assert status == 200, body
        assert body["state"] == "APPROVED"
        assert body["votes"] == [
            {"reviewer": "alice", "decision": "APPROVE", "reason": "expected report", "time": body["votes"][0]["time"]}
        ]
        result = rows.result(timeout=120)
    assert result[0]["n"] == EVENTS
    assert result[0]["d"] > 0
    # Used once: the approval cannot be voted on again.
    status, body = vote(sluice, agent_token(sluice, "bob", ("reviewers",)), approval, "approve")
    assert status == 409, body


def test_a_denied_query_fails_with_the_reviewers_reason(sluice, client, reviewer):
    job = client.query(BIG + " AND duration_ms >= 0")
    approval = approval_of(sluice, reviewer, job.job_id)
    status, body = vote(sluice, reviewer, approval, "deny", "select fewer columns")
    assert status == 200 and body["state"] == "DENIED", body
    with pytest.raises(exceptions.Forbidden) as raised:
        job.result(timeout=60)
    assert "alice denied this query: select fewer columns" in str(raised.value)
    assert "approvals.large-scan" in str(raised.value)


def test_the_requester_cannot_approve_its_own_query(sluice, client, reviewer):
    job = client.query(BIG + " AND event_id > 1")
    approval = approval_of(sluice, reviewer, job.job_id)
    same_subject = agent_token(sluice, "e2e-agent", ("agents", "reviewers"))
    status, body = vote(sluice, same_subject, approval, "approve", "looks fine to me")
    assert status == 403, body
    assert "approvals.self" in body["error"]["message"]
    status, body = vote(sluice, reviewer, approval, "deny", "cleaning up")
    assert status == 200, body


def test_an_edited_or_repeated_query_needs_a_new_approval(sluice, client, reviewer):
    first = client.query(BIG + " AND page IS NOT NULL")
    approval = approval_of(sluice, reviewer, first.job_id)
    assert vote(sluice, reviewer, approval, "approve")[0] == 200
    assert first.result(timeout=120).total_rows == 1

    for sql in (BIG + " AND page IS NOT NULL", BIG + " AND page IS NULL"):
        again = client.query(sql)
        again.reload()
        assert again.state == "PENDING", sql
        other = approval_of(sluice, reviewer, again.job_id)
        assert other["id"] != approval["id"]
        assert vote(sluice, reviewer, other, "deny", "once was enough")[0] == 200


def test_a_small_query_and_a_dry_run_need_no_reviewer(client):
    assert list(client.query_and_wait("SELECT COUNT(*) FROM `demo.shop.events`"))[0][0] == EVENTS
    dry = client.query(BIG, job_config=bigquery.QueryJobConfig(dry_run=True))
    assert dry.total_bytes_processed > 10 * 2**20


# --- gateways of their own -----------------------------------------------


class PrivateGateway:
    """A gateway on the demo configuration with the approval timeout set and
    `edit` applied to its text, over the session gateway's demo tables
    (nothing is regenerated)."""

    def __init__(self, sluice: SluiceServer, work_dir: Path, timeout: str, edit=None):
        self.work_dir = work_dir
        data_dir = work_dir / "data"
        data_dir.mkdir(parents=True)
        text = DEMO_CONFIG.read_text()
        text = text.replace("timeout: 15m", f"timeout: {timeout}")
        if edit is not None:
            text = edit(text)
        text = re.sub(r"(?m)^data_dir: .*$", f"data_dir: {data_dir}", text)
        text = text.replace(
            "  kind: embedded",
            f"  kind: embedded\n  data_dir: {sluice.data_dir / 'warehouse'}",
        )
        text += "\napprovals:\n  sweep_interval_ms: 200\n"
        self.config = work_dir / "sluice.yaml"
        self.config.write_text(text)
        self.log = work_dir / "sluice.log"
        self.server = SluiceServer("", None, self.log, data_dir)
        self.start("127.0.0.1:0")

    def start(self, listen: str) -> None:
        args = [os.environ["SLUICE_BIN"], "serve", "--config", str(self.config), "--listen", listen]
        proc, port = _launch(args, dict(os.environ), self.work_dir, self.log)
        assert port is not None, self.log.read_text()[-3000:]
        self.server.process = proc
        self.server.base_url = f"http://127.0.0.1:{port}"
        _healthz(self.server.base_url, time.monotonic() + 30)

    def restart(self) -> None:
        """Stops the process and starts it again on the same port."""
        port = self.server.port
        self.server.process.send_signal(signal.SIGTERM)
        self.server.process.wait(timeout=20)
        self.start(f"127.0.0.1:{port}")

    def stop(self) -> None:
        proc = self.server.process
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


@pytest.fixture
def private_gateway(sluice, tmp_path):
    gateways = []

    def start(timeout: str, edit=None) -> PrivateGateway:
        gateway = PrivateGateway(sluice, tmp_path / f"gw{len(gateways)}", timeout, edit)
        gateways.append(gateway)
        return gateway

    yield start
    for gateway in gateways:
        gateway.stop()


def test_a_query_nobody_approves_in_time_is_refused(private_gateway):
    gateway = private_gateway("6s")
    server = gateway.server
    agent = make_client(server.base_url, Credentials(token=agent_token(server)))
    job = agent.query(BIG)
    started = time.monotonic()
    with pytest.raises(exceptions.Forbidden) as raised:
        job.result(timeout=60)
    assert time.monotonic() - started < 30
    message = str(raised.value)
    assert "no reviewer (group:reviewers) approved this query within 6 seconds" in message, message
    reviewer = agent_token(server, "alice", ("reviewers",))
    status, body = api(server, reviewer, "GET", "/sluice/v1/approvals?state=EXPIRED")
    assert status == 200 and [a["jobReference"]["jobId"] for a in body["approvals"]] == [job.job_id], body


def test_a_restart_during_the_wait_loses_nothing(private_gateway):
    gateway = private_gateway("15m")
    server = gateway.server
    agent = make_client(server.base_url, Credentials(token=agent_token(server)))
    reviewer = agent_token(server, "alice", ("reviewers",))
    job = agent.query(BIG)
    approval = approval_of(server, reviewer, job.job_id)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        rows = pool.submit(lambda: list(job.result(timeout=300)))
        time.sleep(2)
        gateway.restart()
        time.sleep(2)
        assert not rows.done()
        status, body = vote(server, reviewer, approval, "approve", "after the restart")
        assert status == 200 and body["state"] == "APPROVED", body
        assert rows.result(timeout=120)[0]["n"] == EVENTS
