#!/usr/bin/env python3
"""Start bqemulator as a stand-in BigQuery upstream for Sluice's end-to-end
suite: in-process, offline, and seeded with the demo tables before it serves.

    python start.py --port 9050 --grpc-port 0 --project demo \
        --data /path/to/sluice-data/warehouse

Run it with the venv of tests/e2e/requirements-bqemulator.txt (Python >=
3.11; a venv of its own, see that file). FINDINGS.md lists where the emulator
answers differently from BigQuery and from the embedded warehouse.

Offline: bqemulator's DuckDB engine insists on downloading DuckDB's `spatial`
extension at start-up and refuses to start without it. This launcher turns
that failure into a warning (only GEOGRAPHY is lost), and never tries the
optional `avro` extension.

Seeding: `--data` names a folder laid out like Sluice's embedded warehouse,
`<project>/<dataset>/<table>.parquet` (the layout `sluice demo-data
--warehouse-dir DIR` writes), or one dataset folder `<dataset>/<table>.parquet`
(its project is `--project`), or a single `<dataset>/<table>.parquet` file.
Each Parquet file becomes a native table, created and filled inside the
emulator's DuckDB before the HTTP port opens, so the first answer of
`GET /healthz` already means "seeded". The BigQuery schema follows the same
rules as Sluice's embedded warehouse (non-nullable columns are REQUIRED, lists
REPEATED, structs RECORD, Decimal128(38, 9) NUMERIC, zoned timestamps
TIMESTAMP, legacy type names INTEGER/FLOAT/BOOLEAN/RECORD); a
`<table>.schema.json` beside the file (a list of fields or `{"fields": [...]}`)
overrides it, as it does for the embedded warehouse. Only Parquet is read, and
BIGNUMERIC columns cannot be stored (DuckDB has no DECIMAL(76, 38)).

When everything is up it prints one line to stdout,

    bqemulator listening on http://127.0.0.1:PORT grpc=127.0.0.1:GPORT

(PORT is the real port when --port 0 was given), and it stops on SIGTERM or
SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def log(message: str) -> None:
    print(f"bqemulator-start: {message}", file=sys.stderr, flush=True)


# --- Command line ------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Start bqemulator offline, seeded with Parquet tables (Sluice e2e upstream).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address for REST and gRPC (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9050, help="REST port; 0 picks a free one (default 9050)")
    parser.add_argument("--grpc-port", type=int, default=0, help="gRPC port; 0 picks a free one (default 0)")
    parser.add_argument("--project", default="demo", help="default project id (default demo)")
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        type=Path,
        metavar="FILE/DIR",
        help="Parquet data to load before serving; repeatable (see the module docstring)",
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="bqemulator's own log level (default warning)",
    )
    return parser.parse_args(argv)


# --- Offline start-up ---------------------------------------------------------


def tolerate_missing_spatial() -> None:
    """Make the engine's spatial-extension loading a warning instead of a
    fatal error: without network DuckDB cannot download the extension."""
    from bqemulator.storage.engine import DuckDBEngine

    load_spatial = DuckDBEngine._load_spatial
    if getattr(load_spatial, "_tolerant", False):
        return

    def load_spatial_or_warn(self: DuckDBEngine) -> None:
        try:
            load_spatial(self)
        except Exception as exc:  # noqa: BLE001 - any failure only costs GEOGRAPHY
            cause = exc.__cause__ or exc
            reason = (str(cause).splitlines() or [type(cause).__name__])[0]
            log(f"warning: no DuckDB spatial extension, GEOGRAPHY disabled ({reason})")

    load_spatial_or_warn._tolerant = True  # type: ignore[attr-defined]
    DuckDBEngine._load_spatial = load_spatial_or_warn  # type: ignore[method-assign]


# --- Finding the tables -------------------------------------------------------


@dataclass
class SeedTable:
    project: str
    dataset: str
    table: str
    path: Path
    schema_file: Path | None


def _seed_table(project: str, dataset: str, path: Path) -> SeedTable:
    sidecar = path.with_name(f"{path.stem}.schema.json")
    return SeedTable(project, dataset, path.stem, path, sidecar if sidecar.is_file() else None)


def _parquet_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.parquet") if p.is_file() and not p.name.startswith("."))


def find_tables(roots: list[Path], default_project: str) -> list[SeedTable]:
    tables: list[SeedTable] = []
    for root in roots:
        root = root.resolve()
        found = len(tables)
        if root.is_file():
            if root.suffix != ".parquet":
                raise SystemExit(f"--data {root}: only .parquet files can be loaded")
            tables.append(_seed_table(default_project, root.parent.name, root))
        elif not root.is_dir():
            raise SystemExit(f"--data {root}: no such file or directory")
        elif _parquet_files(root):
            # A dataset folder.
            tables += [_seed_table(default_project, root.name, p) for p in _parquet_files(root)]
        else:
            # A warehouse folder: <project>/<dataset>/<table>.parquet.
            for dataset_dir in sorted(root.glob("*/*")):
                if dataset_dir.is_dir() and not dataset_dir.name.startswith("."):
                    project = dataset_dir.parent.name
                    tables += [_seed_table(project, dataset_dir.name, p) for p in _parquet_files(dataset_dir)]
        if len(tables) == found:
            raise SystemExit(f"--data {root}: no Parquet tables found")
    return tables


# --- BigQuery schema of a Parquet file ------------------------------------------


def _bigquery_type(name: str, arrow_type: pa.DataType) -> tuple[str, list[dict]]:
    """The legacy REST type name of a non-list Arrow type, with sub-fields."""
    t = pa.types
    if t.is_dictionary(arrow_type):
        return _bigquery_type(name, arrow_type.value_type)
    if t.is_struct(arrow_type):
        return "RECORD", [_bigquery_field(arrow_type.field(i)) for i in range(arrow_type.num_fields)]
    if t.is_integer(arrow_type) or t.is_null(arrow_type):
        return "INTEGER", []
    if t.is_floating(arrow_type):
        return "FLOAT", []
    if t.is_decimal(arrow_type):
        if arrow_type.scale <= 9 and arrow_type.precision <= 38:
            return "NUMERIC", []
        return "BIGNUMERIC", []
    if t.is_boolean(arrow_type):
        return "BOOLEAN", []
    if t.is_string(arrow_type) or t.is_large_string(arrow_type):
        return "STRING", []
    if t.is_binary(arrow_type) or t.is_large_binary(arrow_type) or t.is_fixed_size_binary(arrow_type):
        return "BYTES", []
    if t.is_date(arrow_type):
        return "DATE", []
    if t.is_timestamp(arrow_type):
        return ("TIMESTAMP" if arrow_type.tz is not None else "DATETIME"), []
    if t.is_time(arrow_type):
        return "TIME", []
    if t.is_duration(arrow_type) or t.is_interval(arrow_type):
        return "INTERVAL", []
    raise SystemExit(f"column {name}: Arrow type {arrow_type} has no BigQuery counterpart")


def _bigquery_field(field: pa.Field) -> dict:
    arrow_type = field.type
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
        type_name, children = _bigquery_type(field.name, arrow_type.value_type)
        mode = "REPEATED"
    else:
        type_name, children = _bigquery_type(field.name, arrow_type)
        mode = "NULLABLE" if field.nullable else "REQUIRED"
    out = {"name": field.name, "type": type_name, "mode": mode}
    if children:
        out["fields"] = children
    return out


def bigquery_schema(table: SeedTable) -> list[dict]:
    if table.schema_file is not None:
        declared = json.loads(table.schema_file.read_text())
        return declared["fields"] if isinstance(declared, dict) else declared
    return [_bigquery_field(f) for f in pq.read_schema(table.path)]


# --- DuckDB expressions ---------------------------------------------------------


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_FIXED_WIDTH = {
    "INTEGER": 8, "INT64": 8, "FLOAT": 8, "FLOAT64": 8, "DATE": 8, "DATETIME": 8, "TIME": 8,
    "TIMESTAMP": 8, "BOOLEAN": 1, "BOOL": 1, "NUMERIC": 16, "INTERVAL": 16, "BIGNUMERIC": 32,
}


def _value_bytes(expr: str, field: dict, depth: int) -> str:
    """SQL for the bytes BigQuery bills for one (non-repeated) value, counted
    as Sluice's embedded warehouse counts them."""
    type_name = field.get("type", "STRING").upper()
    if type_name in ("RECORD", "STRUCT"):
        parts = [
            _field_bytes(f"struct_extract({expr}, {_sql_string(child['name'])})", child, depth + 1)
            for child in field.get("fields", [])
        ]
        return " + ".join(parts) if parts else "0"
    if type_name in ("STRING", "JSON"):
        return f"coalesce(2 + strlen(CAST({expr} AS VARCHAR)), 0)"
    if type_name == "BYTES":
        return f"coalesce(2 + octet_length({expr}), 0)"
    width = _FIXED_WIDTH.get(type_name, 0)
    return f"(CASE WHEN {expr} IS NULL THEN 0 ELSE {width} END)"


def _field_bytes(expr: str, field: dict, depth: int = 0) -> str:
    if field.get("mode", "NULLABLE").upper() == "REPEATED":
        item = f"item{depth}"
        inner = _value_bytes(item, {**field, "mode": "NULLABLE"}, depth + 1)
        return f"coalesce(list_sum(list_transform({expr}, lambda {item}: {inner})), 0)"
    return _value_bytes(expr, field, depth)


# --- Seeding ---------------------------------------------------------------------


async def seed(engine, catalog, clock, tables: list[SeedTable]) -> None:
    """Create each dataset and table in the emulator's catalog and DuckDB, and
    fill it straight from its Parquet file."""
    from bqemulator.catalog.etag import generate_etag
    from bqemulator.catalog.models import DatasetMeta, TableMeta, TableSchema
    from bqemulator.api.routes.tables import _parse_schema_fields
    from bqemulator.storage.sql_identifiers import quoted_schema, quoted_table_ref
    from bqemulator.storage.type_map import bq_schema_to_duckdb_columns

    for table in tables:
        started = time.monotonic()
        now = clock.now()
        if catalog.get_dataset(table.project, table.dataset) is None:
            async with engine.write_lock():
                engine.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted_schema(table.project, table.dataset)}")
                catalog.create_dataset(
                    DatasetMeta(
                        project_id=table.project,
                        dataset_id=table.dataset,
                        creation_time=now,
                        last_modified_time=now,
                        etag=generate_etag(table.project, table.dataset, str(now)),
                    )
                )
        fields = bigquery_schema(table)
        columns = bq_schema_to_duckdb_columns(fields)
        column_defs = ", ".join(
            f"{_ident(name)} {duckdb_type}" + (" NOT NULL" if field.get("mode", "").upper() == "REQUIRED" else "")
            for (name, duckdb_type), field in zip(columns, fields)
        )
        target = quoted_table_ref(table.project, table.dataset, table.table)
        names = ", ".join(_ident(f["name"]) for f in fields)
        bytes_expr = " + ".join(f"({_field_bytes(_ident(f['name']), f)})" for f in fields) or "0"
        async with engine.write_lock():
            engine.execute(f"CREATE TABLE {target} ({column_defs})")
            engine.execute(
                f"INSERT INTO {target} ({names}) SELECT {names} FROM read_parquet({_sql_string(str(table.path))})"
            )
            num_rows, num_bytes = engine.execute(
                f"SELECT count(*), coalesce(sum({bytes_expr}), 0) FROM {target}"
            ).fetchone()
            catalog.create_table(
                TableMeta(
                    project_id=table.project,
                    dataset_id=table.dataset,
                    table_id=table.table,
                    schema=TableSchema(fields=_parse_schema_fields(fields)),
                    creation_time=now,
                    last_modified_time=now,
                    num_rows=int(num_rows),
                    num_bytes=int(num_bytes),
                    etag=generate_etag(table.project, table.dataset, table.table, str(now)),
                )
            )
        log(
            f"loaded {table.project}.{table.dataset}.{table.table}: {num_rows} rows, "
            f"{num_bytes} bytes, {time.monotonic() - started:.1f}s"
        )


# --- Main ----------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    from bqemulator.config import LogFormat, LogLevel, PersistenceMode, Settings
    from bqemulator.server import EmulatorServer

    tables = find_tables(args.data, args.project)
    settings = Settings(
        rest_host=args.host,
        rest_port=args.port,
        grpc_host=args.host,
        grpc_port=args.grpc_port,
        default_project_id=args.project,
        persistence_mode=PersistenceMode.EPHEMERAL,
        enable_format_extensions=False,
        log_level=LogLevel(args.log_level),
        log_format=LogFormat.JSON,
        metrics_enabled=False,
        tracing_enabled=False,
    )
    started = time.monotonic()
    server = EmulatorServer(settings)
    # Seed between opening DuckDB and opening the ports: EmulatorServer.start()
    # opens the engine only once, so starting it here first is harmless.
    await server._engine.start()
    await seed(server._engine, server._catalog, server._clock, tables)
    await server.start()
    print(
        f"bqemulator listening on http://{args.host}:{server.rest_port} grpc={server.grpc_endpoint}",
        flush=True,
    )
    log(f"ready after {time.monotonic() - started:.1f}s")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Before bqemulator logs anything (some modules log on import): its logs
    # go to stderr, and stdout keeps only the "listening" line.
    # EmulatorServer.start() configures logging again, the same way.
    from bqemulator.config import LogFormat, LogLevel
    from bqemulator.observability.logging_ import configure_logging

    configure_logging(level=LogLevel(args.log_level), fmt=LogFormat.JSON)
    tolerate_missing_spatial()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
