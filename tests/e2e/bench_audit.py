"""Benchmark: what the audit log adds to a query.

    bash tests/e2e/run.sh --bench-audit     # installs the venv, then runs this

Starts two gateways over the same demo warehouse, one with the audit log
(signed checkpoints, recorded pages: the defaults, with a master key) and
one with `audit.enabled: false`, then, alternating round after round in
the same run, runs each query through each with the official BigQuery
Python client (`client.query(sql).result()`, every row read). Medians; the
ratio is on / off, and the difference is what the audit appends cost (the
write-ahead event, the request event, and the page recorded with it).
Prints a Markdown table.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SLUICE_E2E_UPSTREAM", "embedded")

from google.oauth2.credentials import Credentials  # noqa: E402

from conftest import PROJECT, _start_sluice, agent_token, make_client  # noqa: E402
from test_approvals import PrivateGateway  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "30"))
QUERIES = {
    "SELECT 1": "SELECT 1 AS one",
    "COUNT(*) of orders": f"SELECT COUNT(*) AS n FROM `{PROJECT}.shop.orders`",
    "20 rows of orders": f"SELECT order_id, status, amount FROM `{PROJECT}.shop.orders` WHERE order_id <= 20",
}
AUDIT_SECTION = "audit:\n  readers: { groups: [admins] }\n"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="sluice-bench-audit-"))
    (work / "shared").mkdir()
    shared = _start_sluice(work / "shared")
    master_key = work / "master.key"
    subprocess.run([os.environ["SLUICE_BIN"], "secrets", "init-key", "--out", str(master_key)], check=True,
                   capture_output=True)
    on = PrivateGateway(shared, work / "on", "15m",
                        lambda text: text + f"\nsecrets:\n  master_key_file: {master_key}\n")
    off = PrivateGateway(shared, work / "off", "15m",
                         lambda text: text.replace(AUDIT_SECTION, "audit:\n  enabled: false\n"))
    try:
        clients = {
            name: make_client(g.server.base_url, Credentials(token=agent_token(g.server)))
            for name, g in (("on", on), ("off", off))
        }
        timings: dict[tuple[str, str], list[float]] = {}
        for round_ in range(ROUNDS + 1):
            for query, sql in QUERIES.items():
                for name, client in clients.items():
                    started = time.perf_counter()
                    list(client.query(sql).result())
                    took = (time.perf_counter() - started) * 1000
                    if round_ > 0:  # the first round warms both up
                        timings.setdefault((query, name), []).append(took)
        print(f"| query | audit on, p50 ms | audit off, p50 ms | added ms | on / off |  ({ROUNDS} rounds)")
        print("|---|---|---|---|---|")
        for query in QUERIES:
            a = statistics.median(timings[(query, "on")])
            b = statistics.median(timings[(query, "off")])
            print(f"| {query} | {a:.1f} | {b:.1f} | {a - b:+.1f} | {a / b:.2f} |")
    finally:
        on.stop()
        off.stop()
        shared.stop()


if __name__ == "__main__":
    main()
