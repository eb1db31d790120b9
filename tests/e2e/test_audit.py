"""The audit log: a hash chain in the store that `sluice audit verify`
recomputes, `sluice audit export` answering "who read this table", and the
write-ahead rule: a query whose audit event cannot be written is not run."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.oauth2.credentials import Credentials

from conftest import PROJECT, UPSTREAM, agent_token, make_client
from test_approvals import private_gateway  # noqa: F401 (a fixture)

CUSTOMERS = f"{PROJECT}.shop.customers"


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [os.environ["SLUICE_BIN"], "audit", *args], capture_output=True, text=True, check=check, timeout=120
    )


def export(data_dir: Path, *filters: str) -> list[dict]:
    out = cli("export", "--data-dir", str(data_dir), *filters).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


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
    ("UPDATE audit_events SET detail = replace(detail, 'SELECT', 'SELEKT') WHERE seq = 2", 2),
    ("DELETE FROM audit_events WHERE seq = 3", 4),
    ("UPDATE audit_events SET seq = -seq WHERE seq IN (2, 3); UPDATE audit_events SET seq = 3 WHERE seq = -2; UPDATE audit_events SET seq = 2 WHERE seq = -3", 2),
    ("UPDATE audit_events SET seq = -(seq + 1) WHERE seq > 2; UPDATE audit_events SET seq = -seq WHERE seq < 0; "
     "INSERT INTO audit_events SELECT 3, at_ms, kind, 'iss#mallory', request_id, instance, detail, prev_hash, hash FROM audit_events WHERE seq = 2", 3),
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
