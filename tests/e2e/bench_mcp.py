"""Benchmark: an MCP `execute_sql` against the same query through the REST API.

    bash tests/e2e/run.sh --bench-mcp     # installs the venv, then runs this

Starts the demo gateway (embedded warehouse), then, alternating round after
round in the same run, runs each query with the official BigQuery Python
client (`client.query(sql).result()` and reading every row) and with the
official MCP Python SDK (`call_tool("execute_sql", …)` on one open
connection, as an agent keeps it). Both go through the same pipeline; the
difference is the MCP transport and reshaping the rows for an agent.
Medians; the ratio is MCP / REST. Prints a Markdown table.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SLUICE_E2E_UPSTREAM", "embedded")

from google.oauth2.credentials import Credentials  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.shared._httpx_utils import create_mcp_http_client  # noqa: E402

from conftest import PROJECT, _start_sluice, agent_token, make_client  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "30"))
QUERIES = {
    "COUNT(*) of orders": f"SELECT COUNT(*) AS n FROM `{PROJECT}.shop.orders`",
    "20 rows of orders": f"SELECT order_id, status, amount FROM `{PROJECT}.shop.orders` WHERE order_id <= 20",
}


async def main() -> None:
    server = _start_sluice(Path(tempfile.mkdtemp(prefix="sluice-bench-mcp-")))
    try:
        token = agent_token(server)
        rest = make_client(server.base_url, Credentials(token=token))
        transport = streamable_http_client(
            f"{server.base_url}/mcp",
            http_client=create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}),
        )
        timings: dict[tuple[str, str], list[float]] = {}
        async with Client(transport) as mcp:
            for round_ in range(ROUNDS + 1):
                for name, sql in QUERIES.items():
                    started = time.perf_counter()
                    rows = list(await asyncio.to_thread(lambda: list(rest.query(sql).result())))
                    rest_ms = (time.perf_counter() - started) * 1000
                    started = time.perf_counter()
                    result = await mcp.call_tool("execute_sql", {"projectId": PROJECT, "query": sql})
                    mcp_ms = (time.perf_counter() - started) * 1000
                    assert not result.is_error, result
                    assert len(result.structured_content["rows"]) == len(rows)
                    if round_ == 0:
                        continue  # warm-up
                    timings.setdefault((name, "rest"), []).append(rest_ms)
                    timings.setdefault((name, "mcp"), []).append(mcp_ms)
        print(f"| query ({ROUNDS} rounds, medians) | REST, Python client | MCP execute_sql | MCP / REST |")
        print("|---|---|---|---|")
        for name in QUERIES:
            r = statistics.median(timings[(name, "rest")])
            m = statistics.median(timings[(name, "mcp")])
            print(f"| {name} | {r:.1f} ms | {m:.1f} ms | **{m / r:.2f}** |")
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
