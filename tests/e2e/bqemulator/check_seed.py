#!/usr/bin/env python3
"""Check that a seeded bqemulator holds the same demo tables as Sluice's
embedded warehouse: datasets, tables, schemas (types and modes, field by
field), row counts, and the first rows of each table cell by cell.

    python check_seed.py --emulator http://127.0.0.1:9050 \
        --sluice http://127.0.0.1:PORT --token "$(sluice token --sub x --group admins --data-dir D)"

Without a running Sluice, compare with the Parquet files themselves (rows,
counts and per-column sums; the schema then is only printed):

    python check_seed.py --emulator http://127.0.0.1:9050 --parquet-dir WAREHOUSE/demo/shop

Needs google-cloud-bigquery (the e2e venv has it). The emulator is called
without credentials; Sluice with the token. Exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import sys

TABLES = {"customers": "customer_id", "orders": "order_id", "events": "event_id"}


def client(url: str, token: str | None):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery
    from google.oauth2.credentials import Credentials

    credentials = Credentials(token=token) if token else AnonymousCredentials()
    return bigquery.Client(project="demo", credentials=credentials, client_options={"api_endpoint": url})


def fields(schema) -> list[tuple]:
    return [(f.name, f.field_type, f.mode, tuple(fields(f.fields))) for f in schema]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emulator", required=True)
    reference = parser.add_mutually_exclusive_group(required=True)
    reference.add_argument("--sluice", help="URL of a `sluice serve` with the embedded demo warehouse")
    reference.add_argument("--parquet-dir", help="the folder holding customers/orders/events.parquet")
    parser.add_argument("--token", help="a Sluice token allowed to read demo.shop (with --sluice)")
    parser.add_argument("--rows", type=int, default=5, help="rows compared per table (default 5)")
    args = parser.parse_args()
    emu = client(args.emulator, None)
    problems: list[str] = []

    def compare(what: str, got, want) -> None:
        if got != want:
            problems.append(f"{what}:\n  emulator:  {got!r}\n  reference: {want!r}")
        else:
            print(f"same: {what}")

    if args.parquet_dir:
        check_parquet(emu, args.parquet_dir, args.rows, compare)
    else:
        if not args.token:
            parser.error("--sluice needs --token")
        check_sluice(emu, client(args.sluice, args.token), args.rows, compare)
    for problem in problems:
        print(f"DIFFERENT: {problem}", file=sys.stderr)
    print(f"{len(problems)} difference(s)")
    return 1 if problems else 0


def check_parquet(emu, folder: str, rows: int, compare) -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    for table, key in TABLES.items():
        name = f"demo.shop.{table}"
        data = pq.read_table(f"{folder}/{table}.parquet")
        got = emu.get_table(name)
        print(f"{name} schema: {fields(got.schema)}")
        compare(f"{name} numRows", got.num_rows, data.num_rows)
        compare(f"{name} COUNT(*)", list(emu.query_and_wait(f"SELECT COUNT(*) FROM `{name}`"))[0][0], data.num_rows)
        ordered = data.sort_by(key)
        picks = [*range(rows), *range(data.num_rows - rows, data.num_rows), data.num_rows // 2]
        ids = [ordered[key][i].as_py() for i in picks]
        result = emu.query(f"SELECT * FROM `{name}` WHERE {key} IN UNNEST(@ids) ORDER BY {key}",
                           job_config=_ids_param(ids)).result()
        want = sorted((ordered.slice(i, 1).to_pylist()[0] for i in picks), key=lambda r: r[key])
        compare(f"{name} rows {ids}", [dict(r) for r in result], want)
        listed = [dict(r) for r in emu.list_rows(name, max_results=rows)]
        compare(f"{name} tabledata.list first {rows} rows", listed, data.slice(0, rows).to_pylist())
        # Every column's NULL count, and the sum of every numeric column.
        columns = [f for f in got.schema if f.mode != "REPEATED" and f.field_type != "RECORD"]
        exprs = [f"COUNTIF({f.name} IS NULL) AS n_{f.name}" for f in columns]
        exprs += [f"SUM({f.name}) AS s_{f.name}" for f in columns if f.field_type in ("INTEGER", "NUMERIC", "FLOAT")]
        row = dict(list(emu.query_and_wait(f"SELECT {', '.join(exprs)} FROM `{name}`"))[0])
        expected = {}
        for f in columns:
            expected[f"n_{f.name}"] = data[f.name].null_count
            if f.field_type in ("INTEGER", "NUMERIC", "FLOAT"):
                expected[f"s_{f.name}"] = pc.sum(data[f.name]).as_py()
        for k in expected:
            if isinstance(expected[k], float) and row[k] is not None:
                row[k], expected[k] = round(row[k], 3), round(expected[k], 3)
        compare(f"{name} NULL counts and sums", row, expected)


def _ids_param(ids):
    from google.cloud import bigquery

    return bigquery.QueryJobConfig(query_parameters=[bigquery.ArrayQueryParameter("ids", "INT64", ids)])


def check_sluice(emu, ref, rows: int, compare) -> None:
    compare("datasets", sorted(d.dataset_id for d in emu.list_datasets()), sorted(d.dataset_id for d in ref.list_datasets()))
    compare(
        "tables of demo.shop",
        sorted(t.table_id for t in emu.list_tables("demo.shop")),
        sorted(t.table_id for t in ref.list_tables("demo.shop")),
    )
    for table, key in TABLES.items():
        name = f"demo.shop.{table}"
        got, want = emu.get_table(name), ref.get_table(name)
        compare(f"{name} schema", fields(got.schema), fields(want.schema))
        compare(f"{name} numRows", got.num_rows, want.num_rows)
        compare(f"{name} numBytes", got.num_bytes, want.num_bytes)
        count_sql = f"SELECT COUNT(*) FROM `{name}`"
        compare(
            f"{name} COUNT(*)",
            list(emu.query_and_wait(count_sql))[0][0],
            list(ref.query_and_wait(count_sql))[0][0],
        )
        rows_sql = f"SELECT * FROM `{name}` ORDER BY {key} LIMIT {rows}"
        got_result, want_result = emu.query(rows_sql).result(), ref.query(rows_sql).result()
        compare(f"{name} query schema", fields(got_result.schema), fields(want_result.schema))
        compare(f"{name} first {rows} rows", [dict(r) for r in got_result], [dict(r) for r in want_result])
        listed = lambda c: [dict(r) for r in c.list_rows(name, max_results=rows)]  # noqa: E731
        compare(f"{name} tabledata.list first {rows} rows", listed(emu), listed(ref))


if __name__ == "__main__":
    sys.exit(main())
