"""Benchmark: what Sluice adds in front of a BigQuery upstream.

    bash tests/e2e/run.sh --bench-upstream     # installs the venvs, then runs this

It starts bqemulator (seeded with the demo tables) and the local token
service, then `sluice serve` with `warehouse.kind: bigquery` pointed at the
emulator and workload-identity credentials (the same set-up as the suite's
second pass), and drives both with the official Python client: the same
queries, in the same run, straight at the emulator and through Sluice.

- **Per query, steady state.** Each query as `client.query(sql).result()`
  plus reading every row, alternating direct and through Sluice, round after
  round. Through Sluice every job mints its own token at the token service
  (a cold token: per-job credentials are never reused across jobs). Sluice
  runs twice side by side: with `warehouse.dry_run: always` (the default: a
  dry run before every job) and with `when_needed` (a fully analyzed SELECT
  runs at once and is cross-checked on the finished job).
- **Metadata calls.** `client.get_table` and `list_rows`: each call through
  Sluice gets a token minted for that one call, so they are cold-token
  figures too.
- **Finished jobs.** `jobs.get`; `get_job(…).result()` on a job whose
  rows were all read (its token was revoked after its last page, so the
  page through Sluice waits for a new one); and a page of 100 rows of a
  result read in part, whose job's token is still in use (the warm page).
- **First query of a new gateway.** A fresh `sluice serve` process and a new
  client: nothing pooled, nothing cached.
- **Streaming memory.** Peak resident memory (`VmHWM`) of a fresh gateway
  process while a client reads results of one page and of many pages of
  10,000 rows: if pages stream, the peak follows the page, not the result.

Medians; ratios are Sluice / direct. Prints a Markdown table.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SLUICE_E2E_UPSTREAM", "bqemulator")

from conftest import (  # noqa: E402
    PROJECT,
    STS_AUDIENCE,
    SluiceServer,
    _healthz,
    _launch,
    _upstream_config,
    agent_token,
    make_client,
    trust_gateway_keys,
)

# 60 rounds: with 15, the medians of a ~20 ms query moved by up to 0.3 in
# ratio between runs on a two-core machine; with 60, by about 0.02.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "60"))
COLD_STARTS = int(os.environ.get("BENCH_COLD_STARTS", "5"))
PAGE_ROWS = 10_000

# A 1,000-row result of which the warm rows read 100 at a time.
PAGED_SQL = f"SELECT order_id, amount FROM `{PROJECT}.shop.orders` ORDER BY order_id LIMIT 1000"
PAGE_IN_USE = "getQueryResults page, 100 of 1,000 rows (job token in use)"

QUERIES = {
    "count": f"SELECT COUNT(*) AS n FROM `{PROJECT}.shop.orders`",
    "filter 100 rows": (
        f"SELECT order_id, status, amount FROM `{PROJECT}.shop.orders` "
        "WHERE status = 'shipped' ORDER BY order_id LIMIT 100"
    ),
    "join + group": (
        f"SELECT c.signup_date, COUNT(*) AS orders FROM `{PROJECT}.shop.orders` o "
        f"JOIN `{PROJECT}.shop.customers` c ON o.customer_id = c.customer_id "
        "GROUP BY c.signup_date ORDER BY orders DESC, c.signup_date LIMIT 20"
    ),
}

MEMORY_CASES = {
    "10,000 rows (1 page)": f"SELECT * FROM `{PROJECT}.shop.orders` ORDER BY order_id LIMIT 10000",
    "100,000 rows (10 pages)": f"SELECT * FROM `{PROJECT}.shop.orders` ORDER BY order_id",
    "300,000 rows (30 pages)": f"SELECT * FROM `{PROJECT}.shop.events` ORDER BY event_id LIMIT 300000",
}


RUNNING: list[SluiceServer] = []


def start_gateway(binary: str, config: Path, work_dir: Path) -> SluiceServer:
    """One `sluice serve` process on the upstream configuration."""
    data_dir = work_dir / "data"
    data_dir.mkdir(exist_ok=True)
    log_path = work_dir / "sluice.log"
    # The token service trusts only Sluice's own signing keys, as a pool
    # provider given the exported JWKS does.
    trust_gateway_keys(binary, config, data_dir)
    args = [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--config", str(config)]
    process, port = _launch(args, dict(os.environ), work_dir, log_path)
    server = SluiceServer(f"http://127.0.0.1:{port}", process, log_path, data_dir)
    RUNNING.append(server)
    if port is None:
        stop(server)
        raise SystemExit(f"sluice did not start; see {log_path}")
    _healthz(server.base_url, time.monotonic() + 30)
    return server


def stop(server: SluiceServer) -> None:
    RUNNING.remove(server)
    server.stop()


def token(server: SluiceServer) -> str:
    return agent_token(server, "bench-agent")


def kib(server: SluiceServer, field: str) -> int:
    """A memory figure of the gateway process from /proc, in KiB."""
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def bearer(token: str):
    from google.oauth2.credentials import Credentials

    return Credentials(token=token)


def anonymous():
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


def run_query(client, sql: str, page_size: int | None = None) -> int:
    rows = 0
    for _ in client.query(sql).result(page_size=page_size):
        rows += 1
    return rows


def median(values: list[float]) -> float:
    return statistics.median(values)


def row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main() -> None:
    binary = os.environ.get("SLUICE_BIN")
    if not binary:
        raise SystemExit("SLUICE_BIN is not set")
    work_dir = Path(tempfile.mkdtemp(prefix="sluice-bench-upstream-"))
    print(f"work dir {work_dir}", file=sys.stderr)
    config, helpers = _upstream_config(work_dir, binary)
    without_reviews(config)
    emulator_url = next(h.url for h in helpers if h.name == "bqemulator")
    try:
        report(binary, config, work_dir, emulator_url)
    finally:
        for gateway in list(RUNNING):
            stop(gateway)
        for helper in helpers:
            helper.stop()


def without_reviews(config: Path) -> None:
    """Removes the demo's approval rules (a scan over 10 MiB waits for a
    reviewer): the benchmark times queries, not reviewers, and a rule on
    bytes would make every query need its dry run under `when_needed` too."""
    text = config.read_text()
    stripped, n = re.subn(r"(?m)^    approvals:\n(?:      .*\n)*", "", text)
    assert n == 1, "the demo configuration has one policy with approval rules"
    config.write_text(stripped)


def when_needed_config(config: Path) -> Path:
    """The same configuration with `warehouse.dry_run: when_needed`."""
    text = config.read_text()
    marker = "  require_referenced_tables: false\n"
    assert marker in text, "the upstream configuration sets require_referenced_tables"
    other = config.with_name("sluice-bqemulator-when-needed.yaml")
    other.write_text(text.replace(marker, marker + "  dry_run: when_needed\n", 1))
    return other


def report(binary: str, config: Path, work_dir: Path, emulator_url: str) -> None:
    from google.cloud import bigquery

    direct = make_client(emulator_url, anonymous())
    gateway = start_gateway(binary, config, work_dir)
    caller = token(gateway)
    through = make_client(gateway.base_url, bearer(caller))
    second_dir = work_dir / "when-needed"
    second_dir.mkdir(exist_ok=True)
    gateway_wn = start_gateway(binary, when_needed_config(config), second_dir)
    through_wn = make_client(gateway_wn.base_url, bearer(token(gateway_wn)))

    # Same answers every way, and a warm-up of all.
    for name, sql in QUERIES.items():
        a = [tuple(r.values()) for r in direct.query(sql).result()]
        b = [tuple(r.values()) for r in through.query(sql).result()]
        c = [tuple(r.values()) for r in through_wn.query(sql).result()]
        if a != b or a != c:
            raise SystemExit(f"{name}: different answers direct and through Sluice")

    times: dict[str, dict[str, list[float]]] = {
        n: {"direct": [], "sluice": [], "when_needed": [], "dry run": []} for n in QUERIES
    }
    dry_run = bigquery.QueryJobConfig(dry_run=True, use_query_cache=False)
    for i in range(ROUNDS):
        for name, sql in QUERIES.items():
            order = [("direct", direct), ("sluice", through), ("when_needed", through_wn)]
            if i % 2:
                order.reverse()
            for side, client in order:
                ms, _ = timed(lambda: run_query(client, sql))
                times[name][side].append(ms)
            ms, _ = timed(lambda: direct.query(sql, job_config=dry_run))
            times[name]["dry run"].append(ms)
    through_wn.close()
    stop(gateway_wn)

    table = f"`{PROJECT}.shop.orders`"
    warm: dict[str, dict[str, list[float]]] = {
        "tables.get": {"direct": [], "sluice": []},
        "tabledata.list, 100 rows": {"direct": [], "sluice": []},
        "jobs.get of a finished job": {"direct": [], "sluice": []},
        "getQueryResults of a finished job, 100 rows": {"direct": [], "sluice": []},
        PAGE_IN_USE: {"direct": [], "sluice": []},
    }
    finished = {
        side: client.query(QUERIES["filter 100 rows"]) for side, client in (("direct", direct), ("sluice", through))
    }
    for job in finished.values():
        job.result()
    # A result read in part: its job's token is still in use, so a page
    # costs one upstream call with that token (the first call takes the
    # first page the gateway kept).
    partly_read = {
        side: client.query(PAGED_SQL) for side, client in (("direct", direct), ("sluice", through))
    }
    for job in partly_read.values():
        list(job.result(max_results=100))
    for i in range(ROUNDS):
        for side, client in ([("direct", direct), ("sluice", through)][:: -1 if i % 2 else 1]):
            ms, _ = timed(lambda: client.get_table(table.strip("`")))
            warm["tables.get"][side].append(ms)
            ms, _ = timed(lambda: list(client.list_rows(table.strip("`"), max_results=100)))
            warm["tabledata.list, 100 rows"][side].append(ms)
            job = finished[side]
            ms, _ = timed(lambda: client.get_job(job.job_id, location=job.location))
            warm["jobs.get of a finished job"][side].append(ms)
            ms, _ = timed(lambda: list(client.get_job(job.job_id, location=job.location).result()))
            warm["getQueryResults of a finished job, 100 rows"][side].append(ms)
            paged = partly_read[side]
            ms, _ = timed(lambda: list(paged.result(max_results=100)))
            warm[PAGE_IN_USE][side].append(ms)
    through.close()
    stop(gateway)

    cold_sql = QUERIES["count"]
    cold: dict[str, list[float]] = {"direct": [], "sluice": [], "sluice second": []}
    for _ in range(COLD_STARTS):
        gateway = start_gateway(binary, config, work_dir)
        fresh = make_client(gateway.base_url, bearer(token(gateway)))
        fresh_direct = make_client(emulator_url, anonymous())
        ms, _ = timed(lambda: run_query(fresh_direct, cold_sql))
        cold["direct"].append(ms)
        ms, _ = timed(lambda: run_query(fresh, cold_sql))
        cold["sluice"].append(ms)
        ms, _ = timed(lambda: run_query(fresh, cold_sql))
        cold["sluice second"].append(ms)
        fresh.close()
        fresh_direct.close()
        stop(gateway)

    memory = []
    for name, sql in MEMORY_CASES.items():
        gateway = start_gateway(binary, config, work_dir)
        client = make_client(gateway.base_url, bearer(token(gateway)))
        idle = kib(gateway, "VmRSS")
        ms, rows = timed(lambda: run_query(client, sql, page_size=PAGE_ROWS))
        peak = kib(gateway, "VmHWM")
        memory.append((name, rows, ms, idle, peak))
        client.close()
        stop(gateway)

    print(f"\nrounds={ROUNDS}, cold starts={COLD_STARTS}\n")
    print(row("query", "direct (ms)", "through Sluice (ms)", "added (ms)", "Sluice / direct", "direct dry run (ms)"))
    print(row("---", "---", "---", "---", "---", "---"))
    for name, sides in {**times, **warm}.items():
        d, s = median(sides["direct"]), median(sides["sluice"])
        dry = f"{median(sides['dry run']):.1f}" if "dry run" in sides else ""
        print(row(name, f"{d:.1f}", f"{s:.1f}", f"{s - d:.1f}", f"**{s / d:.2f}**", dry))
        if "when_needed" in sides:
            w = median(sides["when_needed"])
            print(row(f"{name}, `dry_run: when_needed`", f"{d:.1f}", f"{w:.1f}", f"{w - d:.1f}", f"**{w / d:.2f}**", ""))
    d, s, s2 = (median(cold[k]) for k in ("direct", "sluice", "sluice second"))
    print(row("count, first query of a new gateway", f"{d:.1f}", f"{s:.1f}", f"{s - d:.1f}", f"**{s / d:.2f}**", ""))
    print(row("count, second query of that gateway", f"{d:.1f}", f"{s2:.1f}", f"{s2 - d:.1f}", f"{s2 / d:.2f}", ""))

    print()
    print(row("result", "rows", "read time (ms)", "gateway RSS idle (MiB)", "gateway peak (MiB)", "peak − idle (MiB)"))
    print(row("---", "---", "---", "---", "---", "---"))
    for name, rows, ms, idle, peak in memory:
        print(row(name, f"{rows:,}", f"{ms:.0f}", f"{idle / 1024:.0f}", f"{peak / 1024:.0f}", f"{(peak - idle) / 1024:.0f}"))


if __name__ == "__main__":
    main()
