"""Just-in-time grants and budgets, through the unchanged Python client.

The demo's `contractors` read nothing of their own: a reviewer may grant
one the dataset `demo.shop` for up to 8 hours (grant rule shop-access).
The contractor asks with `sluice access request` (or the REST API), a
reviewer approves with `sluice approvals approve`, and the same client
then reads until the grant ends. Budgets run on a gateway of their own
whose agents may process 20 MiB per CI run (token claim `run_id`).
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from google.api_core import exceptions
from google.oauth2.credentials import Credentials

from conftest import UPSTREAM, agent_token, make_client
from test_approvals import api, private_gateway  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(
    UPSTREAM != "embedded",
    reason="the grant and budget tests run on the demo configuration's own gateway",
)

ORDERS = "SELECT COUNT(*) AS n FROM `demo.shop.orders`"


def sluice_cli(server, token: str, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, SLUICE_ENDPOINT=server.base_url, SLUICE_TOKEN=token)
    return subprocess.run(
        [os.environ["SLUICE_BIN"], *args], env=env, capture_output=True, text=True, check=check, timeout=timeout
    )


@pytest.fixture
def contractor(sluice):
    token = agent_token(sluice, "e2e-contractor", ("contractors",))
    return token, make_client(sluice.base_url, Credentials(token=token))


@pytest.fixture
def reviewer(sluice) -> str:
    return agent_token(sluice, "alice", ("reviewers",))


def test_a_contractor_reads_the_shop_only_under_a_grant_a_reviewer_approved(sluice, client, contractor, reviewer):
    token, carol = contractor
    expected = list(client.query_and_wait(ORDERS))[0]["n"]
    with pytest.raises(exceptions.Forbidden) as raised:
        carol.query_and_wait(ORDERS)
    message = str(raised.value)
    assert "rule grants.shop-access" in message, message
    assert "sluice access request --dataset demo.shop --for 1h" in message, message

    # The contractor asks, and waits for the decision in the background.
    env = dict(os.environ, SLUICE_ENDPOINT=sluice.base_url, SLUICE_TOKEN=token)
    waiting = subprocess.Popen(
        [os.environ["SLUICE_BIN"], "access", "request", "--dataset", "demo.shop", "--for", "1h",
         "--why", "incident 42: reconcile orders", "--wait"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        request = None
        while request is None and time.monotonic() < deadline:
            listed = sluice_cli(sluice, reviewer, "access", "list").stdout
            request = next((line.split("\t") for line in listed.splitlines() if "e2e-contractor" in line), None)
            time.sleep(0.3)
        assert request is not None, listed
        request_id = request[0]
        assert request_id.startswith("acc_") and request[1] == "PENDING", request
        assert "demo.shop" in request and "incident 42: reconcile orders" in request[-1], request

        # Not the requester, even as a reviewer.
        own = agent_token(sluice, "e2e-contractor", ("contractors", "reviewers"))
        refused = sluice_cli(sluice, own, "approvals", "approve", request_id, check=False)
        assert refused.returncode != 0 and "approvals.self" in refused.stderr, refused.stderr
        with pytest.raises(exceptions.Forbidden):
            carol.query_and_wait(ORDERS)

        shown = sluice_cli(sluice, reviewer, "approvals", "show", request_id).stdout
        assert "why:         access to demo.shop for 1 hour: incident 42: reconcile orders" in shown, shown
        assert "sql:" not in shown and "job:" not in shown, shown
        listed = sluice_cli(sluice, reviewer, "approvals", "list").stdout
        assert f"{request_id}\tPENDING\te2e-contractor\tshop-access\taccess request" in listed, listed

        approved = sluice_cli(sluice, reviewer, "approvals", "approve", request_id, "--reason", "ok for the incident")
        assert "APPROVED by alice" in approved.stdout, approved.stdout
        out, err = waiting.communicate(timeout=60)
        assert waiting.returncode == 0, err
        assert f"{request_id} APPROVED by alice" in out, out
    finally:
        if waiting.poll() is None:
            waiting.kill()

    assert list(carol.query_and_wait(ORDERS))[0]["n"] == expected
    assert carol.get_table("demo.shop.orders").num_rows == expected
    with pytest.raises(exceptions.Forbidden):
        carol.query_and_wait("SELECT 1 FROM `demo.other.things`")

    grants = sluice_cli(sluice, token, "access", "grants").stdout
    assert f"{request_id}\tACTIVE\te2e-contractor\tdemo.shop" in grants, grants
    revoked = sluice_cli(sluice, token, "access", "revoke", request_id)
    assert f"{request_id} REVOKED" in revoked.stdout, revoked.stdout
    with pytest.raises(exceptions.Forbidden) as raised:
        carol.query_and_wait(ORDERS)
    assert "grants.shop-access" in str(raised.value)


def test_a_grant_ends_on_time(sluice, contractor, reviewer):
    token, carol = contractor
    status, request = api(sluice, token, "POST", "/sluice/v1/access-requests",
                          {"datasets": ["demo.shop"], "duration": "5s", "justification": "a quick look"})
    assert status == 200 and request["state"] == "PENDING", request
    status, body = api(sluice, reviewer, "POST", f"/sluice/v1/approvals/{request['id']}:approve", {"reason": ""})
    assert status == 200 and body["state"] == "APPROVED", body
    granted_at = time.monotonic()
    assert list(carol.query_and_wait(ORDERS))[0]["n"] > 0
    time.sleep(max(0.0, 5.5 - (time.monotonic() - granted_at)))
    with pytest.raises(exceptions.Forbidden) as raised:
        carol.query_and_wait(ORDERS)
    assert "grants.shop-access" in str(raised.value)
    status, body = api(sluice, token, "GET", "/sluice/v1/grants?state=ALL")
    states = {g["id"]: g["state"] for g in body["grants"]}
    assert states[request["id"]] == "EXPIRED", body
    # The sweeper records the expiry in the audit log, once.
    deadline = time.monotonic() + 30
    while True:
        exported = subprocess.run([os.environ["SLUICE_BIN"], "audit", "export", "--data-dir", str(sluice.data_dir)],
                                  check=True, capture_output=True, text=True, timeout=60).stdout
        expired = [line for line in exported.splitlines()
                   if '"grant.expired"' in line and request["id"] in line]
        if expired or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(expired) == 1, exported[-2000:]


BUDGET = """    budgets:
      - name: per-run
        per: [run_id]
        bytes: 20MiB
        period: none
"""

# One INT64 column of the million events: 7.6 MiB, under the demo's 10 MiB
# review rule; two fit in 20 MiB, a third does not.
ONE_COLUMN = "SELECT SUM(duration_ms) AS d FROM `demo.shop.events`"


def with_budget(text: str) -> str:
    anchor = "      max_rows: 1000000        # results with more rows are refused\n"
    assert anchor in text
    return text.replace(anchor, anchor + BUDGET, 1)


def run_token(server, run_id: str) -> str:
    args = [os.environ["SLUICE_BIN"], "token", "--sub", "ci-bot", "--group", "agents",
            "--claim", f"run_id={run_id}", "--claim", "repository=acme/etl", "--data-dir", str(server.data_dir)]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


def test_a_ci_run_over_its_budget_is_refused_with_quota_exceeded(private_gateway):
    gateway = private_gateway("15m", with_budget)
    server = gateway.server
    run_7 = make_client(server.base_url, Credentials(token=run_token(server, "7")))
    first = list(run_7.query_and_wait(ONE_COLUMN))[0]["d"]
    assert list(run_7.query_and_wait(ONE_COLUMN + " WHERE duration_ms >= 0"))[0]["d"] == first
    with pytest.raises(exceptions.Forbidden) as raised:
        run_7.query_and_wait(ONE_COLUMN)
    assert raised.value.errors[0]["reason"] == "quotaExceeded", raised.value.errors
    message = str(raised.value)
    assert "budget per-run" in message and "this CI run (run_id)" in message, message
    assert "does not reset" in message, message
    # Another run of the same pipeline has a budget of its own.
    run_8 = make_client(server.base_url, Credentials(token=run_token(server, "8")))
    assert list(run_8.query_and_wait(ONE_COLUMN))[0]["d"] == first
    # The count is durable: a restart does not refill the budget.
    gateway.restart()
    with pytest.raises(exceptions.Forbidden) as raised:
        run_7.query_and_wait(ONE_COLUMN)
    assert raised.value.errors[0]["reason"] == "quotaExceeded"
