"""Sluice's MCP server, driven by the official MCP Python SDK (`mcp` on PyPI).

Over streamable HTTP at /mcp (the 2026-07-28 revision the SDK negotiates by
default, and the initialize handshake of the revisions before it) and over
the `sluice mcp` stdio bridge: the tools Google's BigQuery MCP server names,
with its input schemas (mcp_google_tools.json), and Sluice's own. Every call
runs through the same pipeline as the REST facade, so the demo's policy,
guardrails, approvals and masking apply to an agent speaking MCP too.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from conftest import PROJECT, UPSTREAM, agent_token
from test_approvals import BIG, EVENTS, approval_of, vote
from test_auth import forge

HERE = Path(__file__).resolve().parent
GOOGLE_TOOLS = json.loads((HERE / "mcp_google_tools.json").read_text())["tools"]
SSN_RE = re.compile(r"^9\d\d-\d\d-\d{4}$")
EMAIL_RE = re.compile(r"^[a-z]+\.[a-z]+\.\d+@example\.(com|org)$")
SLUICE_TOOLS = {"estimate_query", "explain_refusal", "wait_for_approval", "request_access"}


def http_client(sluice, token: str, mode: str = "auto") -> Client:
    transport = streamable_http_client(
        f"{sluice.base_url}/mcp",
        http_client=create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}),
    )
    return Client(transport, mode=mode, read_timeout_seconds=120)


def stdio_client(token: str) -> Client:
    return Client(
        StdioServerParameters(
            command=os.environ["SLUICE_BIN"],
            args=["mcp", "--endpoint", f"{_SERVER['url']}/mcp"],
            env={"SLUICE_TOKEN": token, "SLUICE_LOG": "warn"},
        ),
        read_timeout_seconds=120,
    )


_SERVER: dict = {}


@pytest.fixture(scope="module")
def agent(sluice) -> str:
    _SERVER["url"] = sluice.base_url
    return agent_token(sluice)


def run(coro):
    return asyncio.run(coro)


async def call(client: Client, name: str, **arguments):
    async with client:
        return await client.call_tool(name, arguments)


def text_of(result) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


def structured(result) -> dict:
    assert not result.is_error, text_of(result)
    return result.structured_content


# --- the tools and their schemas ---------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_the_tools_are_listed_over_both_protocol_generations(sluice, agent, mode):
    async def go():
        async with http_client(sluice, agent, mode) as client:
            return (await client.list_tools()).tools

    tools = run(go())
    names = {t.name for t in tools}
    assert set(GOOGLE_TOOLS) <= names
    assert SLUICE_TOOLS <= names
    for tool in tools:
        assert tool.description and len(tool.description) > 40, tool.name
        assert tool.input_schema["type"] == "object", tool.name


def test_googles_tools_take_the_published_input_schemas(sluice, agent):
    """Conformance: names, property names, types and required lists as the
    published reference of Google's BigQuery MCP server gives them."""

    async def go():
        async with http_client(sluice, agent) as client:
            return {t.name: t for t in (await client.list_tools()).tools}

    tools = run(go())
    for name, published in GOOGLE_TOOLS.items():
        schema = tools[name].input_schema
        assert sorted(schema.get("required", [])) == sorted(published["required"]), name
        assert set(schema["properties"]) == set(published["properties"]), name
        for prop, spec in published["properties"].items():
            assert schema["properties"][prop]["type"] == spec["type"], f"{name}.{prop}"
        hints = published.get("annotations", {})
        if "readOnlyHint" in hints:
            assert tools[name].annotations.read_only_hint == hints["readOnlyHint"], name


def test_datasets_tables_and_a_schema_with_its_masked_columns(sluice, agent):
    async def go():
        async with http_client(sluice, agent) as client:
            datasets = await client.call_tool("list_dataset_ids", {"projectId": PROJECT})
            tables = await client.call_tool("list_table_ids", {"projectId": PROJECT, "datasetId": "shop"})
            info = await client.call_tool(
                "get_table_info", {"projectId": PROJECT, "datasetId": "shop", "tableId": "customers"}
            )
            return datasets, tables, info

    datasets, tables, info = run(go())
    assert "shop" in {d["id"] for d in structured(datasets)["datasets"]}
    assert {"customers", "orders", "events"} <= {t["id"] for t in structured(tables)["tables"]}
    info = structured(info)
    assert "ssn" in {f["name"] for f in info["schema"]["fields"]}
    masked = {m["column"]: m["strategy"] for m in info["sluiceMasking"]["maskedColumns"]}
    assert masked.get("ssn") == "redact"
    assert masked.get("email") == "email_domain"
    assert "customer_id" not in masked


def test_an_admin_sees_no_masked_columns(sluice):
    admin = agent_token(sluice, "e2e-admin", ("admins",))
    info = run(call(http_client(sluice, admin), "get_table_info", projectId=PROJECT, datasetId="shop", tableId="customers"))
    assert structured(info)["sluiceMasking"]["maskedColumns"] == []


# --- queries ------------------------------------------------------------------


def test_a_query_returns_rows_as_objects_and_is_a_job_the_rest_api_lists(sluice, agent, client):
    sql = "SELECT customer_id, signup_date FROM `demo.shop.customers` ORDER BY customer_id LIMIT 3"
    result = structured(run(call(http_client(sluice, agent), "execute_sql", projectId=PROJECT, query=sql)))
    assert result["jobComplete"] is True
    assert [set(r) for r in result["rows"]] == [{"customer_id", "signup_date"}] * 3
    assert [int(r["customer_id"]) for r in result["rows"]] == [1, 2, 3]
    assert result["truncated"] is False
    listed = {job.job_id for job in client.list_jobs(max_results=200)}
    assert result["jobId"] in listed
    job = client.get_job(result["jobId"])
    assert job.labels.get("goog-mcp-server") == "true"


def test_sensitive_columns_come_back_masked(sluice, agent, admin_client):
    sql = "SELECT customer_id, ssn, email FROM `demo.shop.customers` ORDER BY customer_id LIMIT 20"
    masked = structured(run(call(http_client(sluice, agent), "execute_sql_readonly", projectId=PROJECT, query=sql)))
    raw = {row["customer_id"]: row for row in admin_client.query(sql).result()}
    assert len(masked["rows"]) == 20
    for row in masked["rows"]:
        truth = raw[int(row["customer_id"])]
        assert SSN_RE.match(truth["ssn"]) and EMAIL_RE.match(truth["email"])
        assert row["ssn"] != truth["ssn"] and truth["ssn"] not in json.dumps(row)
        assert row["email"] != truth["email"]
        assert row["email"].endswith("@" + truth["email"].split("@")[1])


def test_filtering_on_a_masked_column_is_a_tool_error_naming_the_rule(sluice, agent):
    sql = "SELECT customer_id FROM `demo.shop.customers` WHERE ssn LIKE '9%'"
    result = run(call(http_client(sluice, agent), "execute_sql", projectId=PROJECT, query=sql))
    assert result.is_error
    assert "masking.filters" in text_of(result)


def test_a_drop_is_refused_naming_the_guardrail_and_nothing_runs(sluice, agent, admin_client):
    result = run(call(http_client(sluice, agent), "execute_sql", projectId=PROJECT, query="DROP TABLE `demo.shop.orders`"))
    assert result.is_error
    text = text_of(result)
    assert "guardrails.deny" in text and "accessDenied" in text
    assert admin_client.get_table("demo.shop.orders").num_rows > 0


@pytest.mark.parametrize(
    "sql", ["DELETE FROM `demo.shop.orders` WHERE true", "CREATE TABLE `demo.shop.x` AS SELECT 1 AS a", "SELECT 1; DROP TABLE `demo.shop.orders`"]
)
def test_the_read_only_tool_refuses_anything_but_a_query(sluice, agent, sql):
    result = run(call(http_client(sluice, agent), "execute_sql_readonly", projectId=PROJECT, query=sql))
    assert result.is_error
    assert "execute_sql_readonly runs a SELECT query only" in text_of(result)


def test_a_large_result_is_truncated_and_paged(sluice, agent):
    sql = "SELECT order_id FROM `demo.shop.orders` ORDER BY order_id LIMIT 250"

    async def go():
        async with http_client(sluice, agent) as client:
            first = structured(await client.call_tool("execute_sql", {"projectId": PROJECT, "query": sql}))
            second = structured(
                await client.call_tool(
                    "get_query_results",
                    {"projectId": PROJECT, "jobId": first["jobId"], "pageToken": first["pageToken"]},
                )
            )
            return first, second

    first, second = run(go())
    assert first["truncated"] is True and first["totalRows"] == "250"
    assert "get_query_results" in first["next"]
    got = [int(r["order_id"]) for r in first["rows"] + second["rows"]]
    assert got == sorted(got) and len(set(got)) == len(got)
    assert len(first["rows"]) == 100 and len(second["rows"]) == 100


def test_estimate_says_what_policy_would_do(sluice, agent):
    async def go():
        async with http_client(sluice, agent) as client:
            small = await client.call_tool(
                "estimate_query", {"projectId": PROJECT, "query": "SELECT signup_date FROM `demo.shop.customers`"}
            )
            drop = await client.call_tool("estimate_query", {"projectId": PROJECT, "query": "DROP TABLE `demo.shop.orders`"})
            return structured(small), structured(drop)

    small, drop = run(go())
    assert small["policy"]["outcome"] == "allowed"
    assert small["tables"] == ["demo.shop.customers"]
    if UPSTREAM == "embedded":
        assert int(small["totalBytesProcessed"]) > 0
    assert drop["policy"]["outcome"] == "refused"
    assert "guardrails.deny" in drop["policy"]["message"]


def test_explain_refusal_gives_the_policy_trace(sluice, agent):
    result = structured(
        run(call(http_client(sluice, agent), "explain_refusal", projectId=PROJECT, query="DROP TABLE `demo.shop.orders`"))
    )
    assert result["outcome"] == "refused"
    assert any(step["outcome"] == "deny" for step in result.get("trace", [])) or "guardrails.deny" in result["message"]


@pytest.mark.skipif(UPSTREAM != "embedded", reason="bqemulator estimates every query at 0 bytes, so none needs review")
def test_a_query_that_needs_approval_returns_at_once_then_waits_and_returns_its_rows(sluice, agent):
    reviewer = agent_token(sluice, "alice", ("reviewers",))

    async def go():
        async with http_client(sluice, agent) as client:
            estimate = structured(await client.call_tool("estimate_query", {"projectId": PROJECT, "query": BIG}))
            started = structured(await client.call_tool("execute_sql", {"projectId": PROJECT, "query": BIG}))
            job_id = started["jobId"]
            waited = structured(
                await client.call_tool("wait_for_approval", {"projectId": PROJECT, "jobId": job_id, "timeoutSeconds": 1})
            )
            approval = await asyncio.to_thread(approval_of, sluice, reviewer, job_id)
            status, body = await asyncio.to_thread(vote, sluice, reviewer, approval, "approve", "fine")
            assert status == 200, body
            done = structured(
                await client.call_tool("wait_for_approval", {"projectId": PROJECT, "jobId": job_id, "timeoutSeconds": 60})
            )
            return estimate, started, waited, done

    estimate, started, waited, done = run(go())
    assert estimate["policy"]["outcome"] == "needs_approval"
    assert "reviewers" in estimate["policy"]["approval"]["reviewers"]
    assert started["jobComplete"] is False and "waiting for approval" in started["waitingFor"]
    assert "wait_for_approval" in started["next"]
    assert waited["jobComplete"] is False
    assert done["jobComplete"] is True
    assert int(done["rows"][0]["n"]) == EVENTS


@pytest.mark.skipif(UPSTREAM != "embedded", reason="the demo's grant rule runs on the embedded demo configuration")
def test_a_refused_agent_asks_for_access_and_reads_once_a_reviewer_grants_it(sluice):
    contractor = agent_token(sluice, "e2e-mcp-contractor", ("contractors",))
    reviewer = agent_token(sluice, "alice", ("reviewers",))
    sql = "SELECT COUNT(*) AS n FROM `demo.shop.orders`"

    async def ask():
        async with http_client(sluice, contractor) as client:
            refused = await client.call_tool("execute_sql", {"projectId": PROJECT, "query": sql})
            asked = await client.call_tool(
                "request_access",
                {"datasets": ["demo.shop"], "duration": "1h", "justification": "mcp: reconcile orders"},
            )
            return refused, asked

    refused, asked = run(ask())
    assert refused.is_error and "grants.shop-access" in text_of(refused)
    request = structured(asked)["accessRequest"]
    assert request["id"].startswith("acc_") and request["state"] == "PENDING", request
    status, body = vote(sluice, reviewer, request, "approve", "fine for the incident")
    assert status == 200 and body["state"] == "APPROVED", body
    granted = structured(run(call(http_client(sluice, contractor), "execute_sql", projectId=PROJECT, query=sql)))
    assert int(granted["rows"][0]["n"]) > 0


@pytest.mark.skipif(UPSTREAM != "embedded", reason="bqemulator estimates every query at 0 bytes, so none needs review")
def test_a_denied_query_is_a_tool_error_with_the_reviewers_reason_and_explained(sluice, agent):
    reviewer = agent_token(sluice, "alice", ("reviewers",))

    async def go():
        async with http_client(sluice, agent) as client:
            started = structured(await client.call_tool("execute_sql", {"projectId": PROJECT, "query": BIG + " AND 1 = 1"}))
            job_id = started["jobId"]
            approval = await asyncio.to_thread(approval_of, sluice, reviewer, job_id)
            status, body = await asyncio.to_thread(vote, sluice, reviewer, approval, "deny", "too broad, filter by day")
            assert status == 200, body
            waited = await client.call_tool("wait_for_approval", {"projectId": PROJECT, "jobId": job_id, "timeoutSeconds": 30})
            explained = structured(await client.call_tool("explain_refusal", {"projectId": PROJECT, "jobId": job_id}))
            return waited, explained

    waited, explained = run(go())
    assert waited.is_error and "too broad, filter by day" in text_of(waited)
    assert explained["refused"] is True and explained["reason"] == "accessDenied"
    assert "too broad, filter by day" in explained["message"]


# --- identity -----------------------------------------------------------------


def _post(url: str, token: str | None) -> tuple[int, dict, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def test_a_token_from_another_issuer_is_401_with_the_resource_metadata(sluice, agent):
    stranger = forge(agent, iss="https://issuer.elsewhere.example")
    for token in (stranger, None):
        status, headers, _ = _post(f"{sluice.base_url}/mcp", token)
        assert status == 401
        challenge = headers.get("WWW-Authenticate") or headers.get("www-authenticate")
        assert challenge.startswith("Bearer ") and "resource_metadata=" in challenge
    url = re.search(r'resource_metadata="([^"]+)"', challenge).group(1)
    with urllib.request.urlopen(url, timeout=30) as response:
        metadata = json.loads(response.read())
    assert metadata["resource"] == f"{sluice.base_url}/mcp"
    assert metadata["authorization_servers"], metadata
    assert "https://issuer.elsewhere.example" not in metadata["authorization_servers"]

    with pytest.raises(Exception):
        run(call(http_client(sluice, stranger), "list_dataset_ids", projectId=PROJECT))


# --- the stdio bridge -----------------------------------------------------------


def test_the_stdio_bridge_lists_queries_masks_and_refuses(sluice, agent):
    async def go():
        async with stdio_client(agent) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            masked = await client.call_tool(
                "execute_sql",
                {"projectId": PROJECT, "query": "SELECT ssn FROM `demo.shop.customers` ORDER BY customer_id LIMIT 5"},
            )
            drop = await client.call_tool("execute_sql", {"projectId": PROJECT, "query": "DROP TABLE `demo.shop.orders`"})
            return tools, masked, drop

    tools, masked, drop = run(go())
    assert set(GOOGLE_TOOLS) <= tools
    rows = structured(masked)["rows"]
    assert len(rows) == 5 and not any(SSN_RE.match(str(r["ssn"])) for r in rows)
    assert drop.is_error and "guardrails.deny" in text_of(drop)


def test_the_stdio_bridge_passes_the_gateways_refusal_of_a_bad_token(sluice, agent):
    stranger = forge(agent, iss="https://issuer.elsewhere.example")
    with pytest.raises(Exception):
        run(call(stdio_client(stranger), "list_dataset_ids", projectId=PROJECT))
