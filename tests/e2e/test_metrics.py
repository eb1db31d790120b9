"""Prometheus metrics at /metrics, read after real traffic from the official
client and an MCP agent, and checked by Prometheus' own `promtool`."""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest
from google.api_core import exceptions

from conftest import PROJECT, UPSTREAM


def scrape(sluice) -> str:
    with urllib.request.urlopen(f"{sluice.base_url}/metrics", timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return response.read().decode()


def value(text: str, name: str, **labels) -> float:
    """The sample of `name` whose labels include `labels` (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(r"^([a-z_:]+)(\{[^}]*\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


def test_metrics_count_requests_decisions_and_refusals_and_promtool_accepts_them(sluice, client):
    before = scrape(sluice)
    list(client.query_and_wait(f"SELECT COUNT(*) AS n FROM `{PROJECT}.shop.orders`"))
    # Reads a column: bytes processed, so billed (10 MiB at least).
    list(client.query_and_wait(f"SELECT MAX(order_id) AS m FROM `{PROJECT}.shop.orders`"))
    with pytest.raises(exceptions.Forbidden):
        client.query_and_wait(f"DROP TABLE `{PROJECT}.shop.orders`")
    try:
        urllib.request.urlopen(f"{sluice.base_url}/bigquery/v2/projects/{PROJECT}/datasets", timeout=30)
    except urllib.error.HTTPError as err:
        assert err.code == 401
    after = scrape(sluice)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("sluice_requests_total", method="jobs.query", code="200") >= 1
    assert grew("sluice_requests_total", method="jobs.query", code="403") >= 1
    assert grew("sluice_decisions_total", outcome="deny", rule="guardrails.deny.drop") == 1
    assert grew("sluice_decisions_total", outcome="allow") >= 1
    assert grew("sluice_auth_failures_total", reason="missing") == 1
    assert grew("sluice_phase_duration_seconds_count", phase="analyze") >= 2
    assert grew("sluice_request_duration_seconds_count", method="jobs.query") >= 2
    # The warehouse's own time, apart from the gateway's, and what was billed.
    assert grew("sluice_upstream_call_duration_seconds_count", call="start") >= 1
    if UPSTREAM == "embedded":  # bqemulator reports 0 bytes processed, so nothing billed
        assert grew("sluice_bytes_billed_total") >= 10 * 2**20
    # Bounded labels: no principal, table or SQL.
    assert "e2e-agent" not in after and "shop.orders" not in after and "SELECT" not in after

    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian's prometheus package) is missing: tests/e2e/run.sh installs it"
    checked = subprocess.run([promtool, "check", "metrics"], input=after, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_masked_values_are_counted_by_strategy(sluice, client):
    before = value(scrape(sluice), "sluice_masked_values_total", strategy="redact")
    rows = list(client.query_and_wait(f"SELECT ssn FROM `{PROJECT}.shop.customers` ORDER BY customer_id LIMIT 7"))
    assert len(rows) == 7
    after = value(scrape(sluice), "sluice_masked_values_total", strategy="redact")
    assert after - before == 7
    # And why: the demo's rule on ssn names its class.
    assert value(scrape(sluice), "sluice_masked_values_total", strategy="redact", **{"class": "us_ssn"}) >= 7


def test_the_grafana_dashboard_charts_only_metrics_sluice_exposes(sluice, client, credentials):
    import json
    from pathlib import Path

    # Traffic that makes every series exist: a masked query and an MCP call.
    list(client.query_and_wait(f"SELECT ssn FROM `{PROJECT}.shop.customers` LIMIT 1"))
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "list_dataset_ids", "arguments": {"projectId": PROJECT}}}).encode()
    request = urllib.request.Request(f"{sluice.base_url}/mcp", data=body, method="POST", headers={
        "Authorization": f"Bearer {credentials.token}", "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    exposed = scrape(sluice)
    dashboard = json.loads((Path(__file__).resolve().parents[2] / "docs" / "grafana" / "sluice.json").read_text())
    names = {name for panel in dashboard["panels"] for target in panel["targets"]
             for name in re.findall(r"\bsluice_[a-z_]+", target["expr"])}
    assert len(names) >= 8
    for name in names:
        assert re.search(rf"(?m)^{name}(\{{| )", exposed), f"{name} is charted but not exposed"
