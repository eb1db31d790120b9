"""The audit log: a hash chain in the store that `sluice audit verify`
recomputes, `sluice audit export` answering "who read this table", and the
write-ahead rule: a query whose audit event cannot be written is not run."""

from __future__ import annotations

import concurrent.futures
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.oauth2.credentials import Credentials

from conftest import PROJECT, UPSTREAM, agent_token, make_client
from test_approvals import BIG, api, approval_of, private_gateway  # noqa: F401 (a fixture)

CUSTOMERS = f"{PROJECT}.shop.customers"


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [os.environ["SLUICE_BIN"], "audit", *args], capture_output=True, text=True, check=check, timeout=120
    )


def export(data_dir: Path, *filters: str) -> list[dict]:
    """The exported events (a whole export ends with the checkpoints: left out)."""
    out = cli("export", "--data-dir", str(data_dir), *filters).stdout
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [line for line in lines if "checkpoint" not in line]


def settled(data_dir: Path, request_ids: set[str], deadline_s: float = 20) -> list[dict]:
    """The export once the request events of `request_ids` are written
    (they are written in the background, after the response)."""
    deadline = time.monotonic() + deadline_s
    while True:
        events = export(data_dir)
        if request_ids <= {e["request_id"] for e in events} or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def copy_store(data_dir: Path, to: Path) -> Path:
    """A consistent copy of the store, to tamper with."""
    to.mkdir(parents=True)
    source = sqlite3.connect(data_dir / "sluice.db")
    target = sqlite3.connect(to / "sluice.db")
    source.backup(target)
    source.close()
    target.close()
    return to


def test_queries_are_recorded_and_the_chain_verifies(sluice, client, admin_client):
    raw_ssn = list(admin_client.query_and_wait(f"SELECT ssn FROM `{CUSTOMERS}` ORDER BY customer_id LIMIT 1"))[0]["ssn"]
    masked = client.query(f"SELECT customer_id, ssn FROM `{CUSTOMERS}` ORDER BY customer_id LIMIT 3")
    rows = list(masked.result())
    assert rows and rows[0]["ssn"] != raw_ssn
    with pytest.raises(exceptions.Forbidden):
        client.query_and_wait(f"DROP TABLE `{CUSTOMERS}`")
    with pytest.raises(exceptions.Forbidden):
        # A raw value typed into the SQL: refused, and never recorded raw.
        client.query_and_wait(f"SELECT customer_id FROM `{CUSTOMERS}` WHERE ssn = '{raw_ssn}'")

    deadline = time.monotonic() + 20
    while True:
        events = export(sluice.data_dir, "--principal", "e2e-agent", "--table", CUSTOMERS)
        started = [e for e in events if e["kind"] == "query.started" and e["detail"]["job"] == masked.job_id]
        refused = [e for e in events if e["kind"] == "request" and e["detail"].get("status") == 403]
        masked_events = [
            e for e in export(sluice.data_dir, "--principal", "e2e-agent")
            if e["kind"] == "request" and e["detail"].get("job") == masked.job_id and e["detail"].get("masked")
        ]
        if (started and len(refused) >= 2 and masked_events) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert started, events
    assert "ssn" in started[0]["detail"]["sql"]
    assert masked_events and any(m["column"] == "ssn" for m in masked_events[0]["detail"].get("masked", [])), masked_events
    text = json.dumps(export(sluice.data_dir))
    assert raw_ssn not in text
    assert "masking.filters" in text and "guardrails.deny.drop" in text

    verified = cli("verify", "--data-dir", str(sluice.data_dir))
    assert "audit chain intact" in verified.stdout, verified.stdout


@pytest.mark.parametrize("tamper,broken_at", [
    ("UPDATE audit_events SET detail = json_set(detail, '$.edited', 1) WHERE seq = 2", 2),
    ("DELETE FROM audit_events WHERE seq = 3", 4),
    ("UPDATE audit_events SET seq = -seq WHERE seq IN (2, 3); UPDATE audit_events SET seq = 3 WHERE seq = -2; UPDATE audit_events SET seq = 2 WHERE seq = -3", 2),
    ("UPDATE audit_events SET seq = -(seq + 1) WHERE seq > 2; UPDATE audit_events SET seq = -seq WHERE seq < 0; "
     "INSERT INTO audit_events (seq, at_ms, kind, principal, request_id, instance, session, detail, prev_hash, hash) "
     "SELECT 3, at_ms, kind, 'iss#mallory', request_id, instance, session, detail, prev_hash, hash FROM audit_events WHERE seq = 2", 3),
])
def test_an_edited_deleted_reordered_or_inserted_event_is_named(sluice, client, tmp_path, tamper, broken_at):
    for _ in range(4):
        list(client.query_and_wait(f"SELECT COUNT(*) AS n FROM `{PROJECT}.shop.orders`"))
    copy = copy_store(sluice.data_dir, tmp_path / "copy")
    assert "audit chain intact" in cli("verify", "--data-dir", str(copy)).stdout
    db = sqlite3.connect(copy / "sluice.db")
    db.executescript(tamper)
    db.commit()
    db.close()
    failed = cli("verify", "--data-dir", str(copy), check=False)
    assert failed.returncode == 1
    assert f"the audit chain breaks at event {broken_at}" in failed.stderr, failed.stderr


def test_an_export_verifies_on_its_own_and_an_edit_to_it_is_named(sluice, client, tmp_path):
    list(client.query_and_wait(f"SELECT COUNT(*) AS n FROM `{PROJECT}.shop.orders`"))
    exported = tmp_path / "audit.jsonl"
    exported.write_text(cli("export", "--data-dir", str(sluice.data_dir)).stdout)
    assert "audit chain intact" in cli("verify", "--file", str(exported)).stdout
    lines = exported.read_text().splitlines()
    event = json.loads(lines[1])
    event["principal"] = "iss#someone-else"
    lines[1] = json.dumps(event)
    exported.write_text("\n".join(lines) + "\n")
    failed = cli("verify", "--file", str(exported), check=False)
    assert failed.returncode == 1 and f"breaks at event {event['seq']}" in failed.stderr, failed.stderr


@pytest.mark.skipif(UPSTREAM != "embedded", reason="runs on a gateway of its own over the demo configuration")
def test_a_query_whose_audit_event_cannot_be_written_is_not_run(private_gateway):
    gateway = private_gateway("15m")
    server = gateway.server
    agent = make_client(server.base_url, Credentials(token=agent_token(server)))
    assert list(agent.query_and_wait("SELECT 1 AS one"))[0]["one"] == 1
    db = sqlite3.connect(server.data_dir / "sluice.db")
    db.execute("CREATE TRIGGER audit_full BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    db.commit()
    job_id = f"audit_refused_{time.time_ns()}"
    try:
        with pytest.raises(exceptions.Forbidden) as raised:
            agent.query(f"SELECT COUNT(*) AS n FROM `{PROJECT}.shop.orders`", job_id=job_id).result(timeout=60)
        assert "audit.write" in str(raised.value), str(raised.value)
        assert "Nothing ran" in str(raised.value)
    finally:
        db.execute("DROP TRIGGER audit_full")
        db.commit()
        db.close()
    # The job failed before the warehouse was asked: no statistics of a run.
    done = agent.get_job(job_id)
    assert done.state == "DONE" and done.error_result["reason"] == "accessDenied"
    assert done.started is not None and done.total_bytes_processed in (None, 0)
    assert list(agent.query_and_wait("SELECT 2 AS two"))[0]["two"] == 2


# --- Signed checkpoints, sessions and replay, the audit API, kill -9 -----------

AUDIT_SECTION = "audit:\n  readers: { groups: [admins] }\n"


def with_master_key(master_key: Path, audit: str = ""):
    """An edit of the demo configuration: a master key (so checkpoints are
    signed) and `audit` added to its audit section."""

    def edit(text: str) -> str:
        assert AUDIT_SECTION in text, "the demo configuration has an audit section"
        text = text.replace(AUDIT_SECTION, AUDIT_SECTION + "  checkpoint_interval: 200ms\n" + audit)
        return text + f"\nsecrets:\n  master_key_file: {master_key}\n"

    return edit


def new_master_key(path: Path) -> Path:
    subprocess.run([os.environ["SLUICE_BIN"], "secrets", "init-key", "--out", str(path)], check=True,
                   capture_output=True)
    return path


def head_seq(data_dir: Path) -> int:
    db = sqlite3.connect(data_dir / "sluice.db")
    try:
        return db.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_events").fetchone()[0]
    finally:
        db.close()


def signed_through(config: Path, data_dir: Path, seq: int, deadline_s: float = 20) -> str:
    """`sluice audit verify` once a checkpoint covers event `seq`."""
    deadline = time.monotonic() + deadline_s
    while True:
        out = cli("verify", "-c", str(config), "--data-dir", str(data_dir)).stdout
        match = re.search(r"signed through event (\d+)", out)
        if (match and int(match.group(1)) >= seq) or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def tampered(data_dir: Path, to: Path, sql: str) -> Path:
    copy = copy_store(data_dir, to)
    db = sqlite3.connect(copy / "sluice.db")
    db.executescript(sql)
    db.commit()
    db.close()
    return copy


def canonical(record: dict) -> str:
    """The encoding the chain's hashes cover (sluice_store::audit::canonical)."""
    body = {k: record[k] for k in ("seq", "at_ms", "kind", "principal", "request_id", "instance", "detail")}
    if record.get("session"):
        body["session"] = record["session"]
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def rehash(records: list[dict]) -> None:
    prev = "0" * 64
    for record in records:
        record["prev_hash"] = prev
        record["hash"] = hashlib.sha256((prev + "\n" + canonical(record)).encode()).hexdigest()
        prev = record["hash"]


@pytest.mark.skipif(UPSTREAM != "embedded", reason="runs on a gateway of its own over the demo configuration")
def test_signed_checkpoints_catch_a_truncated_or_rewritten_log(private_gateway, tmp_path):
    gateway = private_gateway("15m", with_master_key(new_master_key(tmp_path / "master.key")))
    server, config = gateway.server, gateway.config
    agent = make_client(server.base_url, Credentials(token=agent_token(server)))
    for n in range(4):
        assert list(agent.query_and_wait(f"SELECT {n} AS n"))[0]["n"] == n
    head = head_seq(server.data_dir)
    verified = signed_through(config, server.data_dir, head)
    assert "audit chain intact" in verified and f"signed through event {head}" in verified, verified
    public_key = cli("public-key", "-c", str(config)).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", public_key), public_key
    # A whole export carries the checkpoints and verifies alone.
    exported = tmp_path / "export.jsonl"
    exported.write_text(cli("export", "-c", str(config)).stdout)
    assert any('"checkpoint"' in line for line in exported.read_text().splitlines())
    alone = cli("verify", "--file", str(exported), "--public-key", public_key)
    assert "signed through event" in alone.stdout, alone.stdout

    # The tail cut off: the chain alone still verifies, the checkpoint does not.
    cut = tampered(server.data_dir, tmp_path / "cut", f"DELETE FROM audit_events WHERE seq > {head - 2}")
    failed = cli("verify", "-c", str(config), "--data-dir", str(cut), check=False)
    assert failed.returncode == 1 and "truncated" in failed.stderr, failed.stderr

    # The tail and the store's checkpoints cut off: a checkpoint kept
    # elsewhere (the export; a sink's file) still tells.
    both = tampered(server.data_dir, tmp_path / "both",
                    f"DELETE FROM audit_events WHERE seq > {head - 2}; DELETE FROM audit_checkpoints")
    unaware = cli("verify", "-c", str(config), "--data-dir", str(both))
    assert "no signed checkpoint yet" in unaware.stdout, unaware.stdout
    failed = cli("verify", "-c", str(config), "--data-dir", str(both), "--checkpoints", str(exported), check=False)
    assert failed.returncode == 1 and "truncated" in failed.stderr, failed.stderr

    # An event edited and every hash after it recomputed: only the
    # signature tells.
    records = [json.loads(line) for line in exported.read_text().splitlines() if '"checkpoint"' not in line]
    before = [dict(r) for r in records]
    rehash(before)
    assert [r["hash"] for r in before] == [r["hash"] for r in records], "the test's canonical encoding is Sluice's"
    records[1]["principal"] = "iss#someone-else"
    rehash(records)
    rewritten = tmp_path / "rewritten"
    copy = copy_store(server.data_dir, rewritten)
    db = sqlite3.connect(copy / "sluice.db")
    db.executemany("UPDATE audit_events SET principal = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                   [(r["principal"], r["prev_hash"], r["hash"], r["seq"]) for r in records])
    db.commit()
    db.close()
    failed = cli("verify", "-c", str(config), "--data-dir", str(copy), check=False)
    assert failed.returncode == 1 and "rewritten" in failed.stderr, failed.stderr
    # A checkpoint forged with another key does not verify either.
    forged = cli("verify", "-c", str(config), "--data-dir", str(server.data_dir), "--public-key", "ab" * 32,
                 check=False)
    assert forged.returncode == 1 and "forged" in forged.stderr, forged.stderr


def sessions(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([os.environ["SLUICE_BIN"], "sessions", *args], capture_output=True, text=True,
                          check=check, timeout=120)


@pytest.mark.skipif(UPSTREAM != "embedded", reason="runs on a gateway of its own over the demo configuration")
def test_a_replayed_session_shows_what_the_agent_saw_masked(private_gateway, tmp_path):
    gateway = private_gateway("15m", with_master_key(new_master_key(tmp_path / "master.key")))
    server, config = gateway.server, gateway.config
    token = subprocess.run(
        [os.environ["SLUICE_BIN"], "token", "--config", str(config), "--sub", "ci-agent", "--group", "agents",
         "--claim", "run_id=4242", "--claim", "run_attempt=1", "--claim", "repository=acme/etl"],
        capture_output=True, text=True, check=True).stdout.strip()
    agent = make_client(server.base_url, Credentials(token=token))
    admin = make_client(server.base_url, Credentials(token=agent_token(server, "e2e-admin", ("admins",))))
    raw = list(admin.query_and_wait(f"SELECT ssn, email FROM `{CUSTOMERS}` ORDER BY customer_id LIMIT 3"))
    rows = list(agent.query_and_wait(f"SELECT customer_id, ssn, email FROM `{CUSTOMERS}` ORDER BY customer_id LIMIT 3"))
    assert [r["ssn"] for r in rows] != [r["ssn"] for r in raw]
    with pytest.raises(exceptions.Forbidden):
        agent.query_and_wait(f"DROP TABLE `{CUSTOMERS}`")

    listed = sessions("list", "-c", str(config), "--json").stdout
    mine = [json.loads(line) for line in listed.splitlines() if "ci-agent" in line]
    assert len(mine) == 1 and mine[0]["session"].startswith("run-") and mine[0]["refused"] >= 1, listed
    session = mine[0]["session"]
    replay = sessions("replay", "-c", str(config), session).stdout
    assert "SELECT customer_id, ssn, email" in replay and "guardrails.deny.drop" in replay, replay
    # The rows as the agent saw them: masked, never the raw values.
    for seen in rows:
        assert str(seen["ssn"]) in replay and seen["email"] in replay, replay
    for value in raw:
        assert value["ssn"] not in replay and value["email"] not in replay, replay
    shown = sessions("show", "-c", str(config), session, "--json").stdout
    kinds = {json.loads(line)["kind"] for line in shown.splitlines()}
    assert {"auth.success", "query.started", "query.finished", "request"} <= kinds, kinds
    # Every event carries the CI run's claims, those the job's end too.
    finished = [json.loads(line) for line in shown.splitlines() if '"query.finished"' in line]
    assert finished and finished[0]["detail"]["claims"]["run_id"] == "4242", finished
    # The admin's queries are a session of their own.
    admins = [json.loads(line)["session"] for line in listed.splitlines() if "e2e-admin" in line]
    assert len(admins) == 1 and admins[0] != session, listed

    # A recorded page edited afterwards no longer matches its event.
    copy = tampered(server.data_dir, tmp_path / "pages",
                    "UPDATE audit_pages SET body = replace(body, 'example', 'exampl3')")
    altered = sessions("replay", "--data-dir", str(copy), "-c", str(config), session).stdout
    assert "altered" in altered, altered


def metric(server, name: str, **labels) -> float:
    with urllib.request.urlopen(f"{server.base_url}/metrics", timeout=30) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        match = re.match(r"^([a-z_:]+)(\{[^}]*\})? (\S+)$", line)
        if match and match.group(1) == name:
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(match.group(3))
    return total


@pytest.mark.skipif(UPSTREAM != "embedded", reason="runs on a gateway of its own over the demo configuration")
def test_refused_tokens_are_counted_by_reason_and_audited_without_the_token(private_gateway, tmp_path):
    gateway = private_gateway("15m")
    server, gateway_config = gateway.server, gateway.config
    good = agent_token(server, "e2e-authfail")
    head, payload, signature = good.split(".")
    forged = f"{head}.{payload}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    # Signed by another development issuer's key (same issuer name, unknown kid).
    stranger = subprocess.run([os.environ["SLUICE_BIN"], "token", "--sub", "e2e-authfail", "--data-dir",
                               str(tmp_path / "other-key")], capture_output=True, text=True, check=True).stdout.strip()
    cases = {"missing": None, "malformed": "not-a-jwt", "signature": forged, "unknown_key": stranger}

    def call(token):
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        request = urllib.request.Request(f"{server.base_url}/bigquery/v2/projects/{PROJECT}/datasets",
                                         headers={**headers, "User-Agent": "e2e-authfail"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 401

    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    before = {reason: metric(server, "sluice_auth_failures_total", reason=reason) for reason in cases}
    for token in cases.values():
        call(token)
    for reason in cases:
        assert metric(server, "sluice_auth_failures_total", reason=reason) - before[reason] == 1, reason

    auditor = agent_token(server, "e2e-auditor", ("admins",))
    status, body = api(server, auditor, "GET", f"/sluice/v1/audit?kind=auth.failure&since={since}")
    assert status == 200, body
    events = body["events"]
    assert sorted(e["detail"]["reason"] for e in events) == sorted(cases), events
    for event in events:
        assert event["detail"]["userAgent"] == "e2e-authfail"
        assert event["detail"]["message"].startswith("Request")
    recorded = json.dumps(events)
    assert signature[8:40] not in recorded and stranger.split(".")[2][8:40] not in recorded
    assert payload not in recorded

    # A flood of bad tokens is counted whole but writes at most 60 events a minute.
    flood_before = metric(server, "sluice_auth_failures_total", reason="malformed")
    for _ in range(70):
        call("garbage")
    assert metric(server, "sluice_auth_failures_total", reason="malformed") - flood_before == 70
    status, body = api(server, auditor, "GET", f"/sluice/v1/audit?kind=auth.failure&since={since}&pageSize=1000")
    assert status == 200 and len(body["events"]) <= 60 + 4, len(body["events"])
    status, body = api(server, auditor, "GET", f"/sluice/v1/audit?kind=request&since={since}&pageSize=1000")
    assert status == 200 and not [e for e in body["events"] if e["detail"]["status"] == 401], body
    assert cli("verify", "-c", str(gateway_config)).returncode == 0
    # The start names the configuration it ran with.
    status, body = api(server, auditor, "GET", "/sluice/v1/audit?kind=gateway.started")
    assert status == 200 and body["events"], body
    assert body["events"][-1]["detail"]["config_sha256"] == hashlib.sha256(gateway_config.read_bytes()).hexdigest()


@pytest.mark.skipif(UPSTREAM != "embedded", reason="runs on a gateway of its own over the demo configuration")
def test_the_audit_api_answers_who_read_a_table_with_the_approval(private_gateway, tmp_path):
    gateway = private_gateway("15m", with_master_key(new_master_key(tmp_path / "master.key")))
    server = gateway.server
    agent = make_client(server.base_url, Credentials(token=agent_token(server)))
    reviewer = agent_token(server, "alice", ("reviewers",))
    job = agent.query(BIG)
    approval = approval_of(server, reviewer, job.job_id)
    status, _ = api(server, reviewer, "POST", f"/sluice/v1/approvals/{approval['id']}:approve",
                    {"reason": "weekly report"})
    assert status == 200
    assert list(job.result(timeout=120))
    auditor = agent_token(server, "auditor", ("admins",))
    since = "2000-01-01T00:00:00Z"
    status, body = api(server, auditor, "GET",
                       f"/sluice/v1/audit?table=demo.shop.events&principal=e2e-agent&since={since}")
    assert status == 200, body
    started = [e for e in body["events"] if e["kind"] == "query.started"]
    assert [e["detail"]["job"] for e in started] == [job.job_id], body
    assert started[0]["detail"]["approval"] == approval["id"]
    status, body = api(server, auditor, "GET", f"/sluice/v1/audit?kind=query.finished&session={started[0]['session']}")
    finished = [e for e in body["events"] if e["detail"]["job"] == job.job_id]
    assert len(finished) == 1 and finished[0]["detail"]["outcome"] == "done", body
    assert finished[0]["detail"]["rows"] == 1 and finished[0]["detail"]["bytes_processed"] > 0, finished
    status, body = api(server, auditor, "GET", f"/sluice/v1/audit?kind=approval.voted")
    votes = [e for e in body["events"] if e["request_id"] == approval["id"]]
    assert len(votes) == 1 and votes[0]["detail"]["reason"] == "weekly report", body
    assert votes[0]["session"] == started[0]["session"], "the vote is in the session of the query it is about"
    status, body = api(server, auditor, "GET", f"/sluice/v1/audit?kind=approval.closed")
    assert [e["detail"]["state"] for e in body["events"] if e["request_id"] == approval["id"]] == ["APPROVED"]
    # Paging: one event at a time, in order.
    status, first = api(server, auditor, "GET", "/sluice/v1/audit?pageSize=1")
    status, second = api(server, auditor, "GET", f"/sluice/v1/audit?pageSize=1&pageToken={first['nextPageToken']}")
    assert second["events"][0]["seq"] == first["events"][0]["seq"] + 1
    # Not an auditor: refused, naming the rule.
    status, body = api(server, agent_token(server), "GET", "/sluice/v1/audit")
    assert status == 403 and "audit.readers" in body["error"]["message"], body
    status, body = api(server, auditor, "GET", "/sluice/v1/audit?since=yesterday")
    assert status == 400 and "RFC 3339" in body["error"]["message"], body


@pytest.mark.skipif(UPSTREAM != "embedded", reason="runs on a gateway of its own over the demo configuration")
def test_kill_9_under_load_loses_no_event(private_gateway, tmp_path):
    """Clients log each query the gateway acknowledged; after `kill -9`
    in the middle of the load, every one has its write-ahead event and its
    request event."""
    gateway = private_gateway("15m", with_master_key(new_master_key(tmp_path / "master.key")))
    server = gateway.server
    token = agent_token(server)
    acknowledged: list[str] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        agent = make_client(server.base_url, Credentials(token=token))
        n = 0
        while not stop.is_set():
            job_id = f"load_{worker}_{n}_{time.time_ns()}"
            n += 1
            try:
                agent.query(f"SELECT {n} AS n, COUNT(*) AS c FROM `{PROJECT}.shop.orders`", job_id=job_id,
                            retry=None, job_retry=None)
            except Exception:  # the gateway died under it: not acknowledged
                continue
            acknowledged.append(job_id)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        workers = [pool.submit(load, i) for i in range(6)]
        deadline = time.monotonic() + 30
        while len(acknowledged) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=20)
        time.sleep(0.5)
        stop.set()
        for worker in workers:
            worker.result(timeout=60)
    assert len(acknowledged) >= 40, f"only {len(acknowledged)} queries acknowledged before the kill"
    gateway.start("127.0.0.1:0")
    events = export(server.data_dir)
    started = {e["detail"]["job"] for e in events if e["kind"] == "query.started"}
    requested = {e["detail"].get("job") for e in events if e["kind"] == "request"}
    lost_started = [j for j in acknowledged if j not in started]
    lost_requests = [j for j in acknowledged if j not in requested]
    assert not lost_started and not lost_requests, (len(acknowledged), lost_started[:5], lost_requests[:5])
    assert "audit chain intact" in cli("verify", "--data-dir", str(server.data_dir)).stdout


class Collector(http.server.BaseHTTPRequestHandler):
    """A Splunk HEC endpoint that records what it is sent."""

    received: list[tuple[str, str]] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        Collector.received.append((self.headers.get("Authorization", ""), body))
        payload = b'{"text":"Success","code":0}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.mark.skipif(UPSTREAM != "embedded", reason="runs on a gateway of its own over the demo configuration")
def test_sinks_get_every_event_and_a_dead_one_does_not_hold_queries(private_gateway, tmp_path, monkeypatch):
    hec = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=hec.serve_forever, daemon=True).start()
    syslog = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    syslog.bind(("127.0.0.1", 0))
    syslog.settimeout(10)
    # A collector that takes connections and never answers.
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(64)
    monkeypatch.setenv("E2E_HEC_TOKEN", "hec-secret-token-1234")
    jsonl = tmp_path / "audit.jsonl"
    sinks = (
        "  sinks:\n"
        f"    - {{ type: jsonl, name: file, path: {jsonl} }}\n"
        f"    - {{ type: syslog, name: syslog, address: '127.0.0.1:{syslog.getsockname()[1]}' }}\n"
        f"    - {{ type: http, name: splunk, format: splunk_hec, url: 'http://127.0.0.1:{hec.server_port}/services/collector/event', token_env: E2E_HEC_TOKEN, flush_interval: 100ms }}\n"
        f"    - {{ type: http, name: dead, url: 'http://127.0.0.1:{dead.getsockname()[1]}/', queue: 4, batch_max: 1, timeout: 60s, flush_interval: 100ms }}\n"
    )
    try:
        gateway = private_gateway("15m", with_master_key(new_master_key(tmp_path / "master.key"), sinks))
        server, config = gateway.server, gateway.config
        agent = make_client(server.base_url, Credentials(token=agent_token(server)))
        jobs = []
        for n in range(20):
            started = time.monotonic()
            job = agent.query(f"SELECT {n} AS n")
            assert list(job.result())[0]["n"] == n
            # The dead sink's request would hold a query for its whole
            # 60 s timeout if the data path waited on it.
            assert time.monotonic() - started < 30
            jobs.append(job.job_id)

        metrics = urllib.request.urlopen(f"{server.base_url}/metrics", timeout=10).read().decode()
        dropped = re.search(r'sluice_audit_sink_dropped_total\{sink="dead",type="http"\} (\d+)', metrics)
        assert dropped and int(dropped.group(1)) > 0, metrics
        assert re.search(r'sluice_audit_sink_sent_total\{sink="dead",type="http"\} 0\b', metrics), metrics
        promtool = shutil.which("promtool")
        assert promtool, "promtool (Debian's prometheus package) is missing: tests/e2e/run.sh installs it"
        checked = subprocess.run([promtool, "check", "metrics"], input=metrics, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr

        # The file: every query's write-ahead event, then a checkpoint that
        # `sluice audit verify` takes as one kept elsewhere.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            lines = [json.loads(line) for line in jsonl.read_text().splitlines()] if jsonl.exists() else []
            started_jobs = {e["detail"]["job"] for e in lines if e.get("kind") == "query.started"}
            if set(jobs) <= started_jobs and any("checkpoint" in e for e in lines):
                break
            time.sleep(0.2)
        assert set(jobs) <= started_jobs
        assert any("checkpoint" in e for e in lines)
        assert all("seq" in e and "hash" in e for e in lines if "checkpoint" not in e)
        verified = cli("verify", "-c", str(config), "--checkpoints", str(jsonl))
        assert "signed through event" in verified.stdout, verified.stdout

        # Syslog: RFC 5424, authpriv.info, the event's kind as MSGID.
        datagram = syslog.recv(65535).decode()
        match = re.match(r"<86>1 \S+ \S+ sluice \d+ (\S+) - (\{.*\})$", datagram, re.S)
        assert match, datagram
        assert json.loads(match.group(2))["kind"] == match.group(1)

        # Splunk HEC: the token in Splunk's scheme, events in its envelope.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("query.started" in body for _, body in Collector.received):
            time.sleep(0.2)
        auth, body = next((a, b) for a, b in Collector.received if "query.started" in b)
        assert auth == "Splunk hec-secret-token-1234"
        envelope = json.loads(body.strip().splitlines()[0])
        assert envelope["sourcetype"] == "sluice:audit" and "event" in envelope
        # The token is never in the log.
        assert "hec-secret-token-1234" not in server.log_path.read_text()
    finally:
        hec.shutdown()
        syslog.close()
        dead.close()
