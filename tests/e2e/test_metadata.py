"""Datasets, tables, projects, tabledata.list and INFORMATION_SCHEMA."""

import datetime
import decimal

from google.cloud import bigquery

from conftest import CUSTOMERS_ROWS, DATASET, EVENTS_ROWS, ORDERS_ROWS, PROJECT

INT_TYPES = {"INTEGER", "INT64"}
BOOL_TYPES = {"BOOLEAN", "BOOL"}
RECORD_TYPES = {"RECORD", "STRUCT"}
FLOAT_TYPES = {"FLOAT", "FLOAT64"}

TABLES = {"customers", "orders", "events"}


def test_list_projects(client):
    projects = list(client.list_projects(timeout=60))
    assert PROJECT in [p.project_id for p in projects]


def test_list_datasets(client):
    datasets = list(client.list_datasets(timeout=60))
    ids = [(d.project, d.dataset_id) for d in datasets]
    assert (PROJECT, DATASET) in ids
    assert len(ids) == len(set(ids))


def test_get_dataset(client):
    dataset = client.get_dataset(f"{PROJECT}.{DATASET}", timeout=60)
    assert dataset.project == PROJECT
    assert dataset.dataset_id == DATASET
    assert dataset.reference == bigquery.DatasetReference(PROJECT, DATASET)


def test_list_tables(client):
    tables = list(client.list_tables(f"{PROJECT}.{DATASET}", timeout=60))
    names = {t.table_id for t in tables}
    assert TABLES <= names
    for t in tables:
        assert t.project == PROJECT
        assert t.dataset_id == DATASET
        assert t.table_type in (None, "TABLE", "VIEW")


def test_list_tables_paged(client):
    pages = list(client.list_tables(f"{PROJECT}.{DATASET}", page_size=1, timeout=60).pages)
    names = [t.table_id for page in pages for t in page]
    assert TABLES <= set(names)
    assert len(names) == len(set(names))


def test_get_table_customers(client):
    table = client.get_table("demo.shop.customers", timeout=60)
    assert table.num_rows == CUSTOMERS_ROWS
    assert table.table_type in (None, "TABLE")
    assert table.num_bytes is None or table.num_bytes > 0
    fields = {f.name: f for f in table.schema}
    assert [f.name for f in table.schema][:1] == ["customer_id"]
    assert set(fields) >= {
        "customer_id", "name", "email", "ssn", "card_number", "phone", "address",
        "signup_date", "created_at", "lifetime_value", "tags", "is_active",
    }
    assert fields["customer_id"].field_type in INT_TYPES
    assert fields["customer_id"].mode == "REQUIRED"
    assert fields["phone"].field_type == "STRING"
    assert fields["phone"].mode in (None, "NULLABLE")
    assert fields["address"].field_type in RECORD_TYPES
    assert [f.name for f in fields["address"].fields] == ["street", "city", "state", "zip"]
    assert all(f.field_type == "STRING" for f in fields["address"].fields)
    assert fields["signup_date"].field_type == "DATE"
    assert fields["created_at"].field_type == "TIMESTAMP"
    assert fields["lifetime_value"].field_type == "NUMERIC"
    assert fields["tags"].field_type == "STRING"
    assert fields["tags"].mode == "REPEATED"
    assert fields["is_active"].field_type in BOOL_TYPES


def test_get_table_row_counts_match_queries(client):
    for name, expected in (("orders", ORDERS_ROWS), ("events", EVENTS_ROWS)):
        table = client.get_table(f"demo.shop.{name}", timeout=60)
        assert table.num_rows == expected
        counted = list(client.query_and_wait(f"SELECT COUNT(*) FROM `demo.shop.{name}`", wait_timeout=120))
        assert counted[0][0] == table.num_rows


def test_get_table_events_schema(client):
    table = client.get_table(bigquery.TableReference.from_string("demo.shop.events"), timeout=60)
    types = {f.name: f.field_type for f in table.schema}
    assert types["event_id"] in INT_TYPES
    assert types["event_time"] == "TIMESTAMP"
    assert types["revenue"] in FLOAT_TYPES
    assert types["duration_ms"] in INT_TYPES


def test_list_rows_pages(client):
    rows = client.list_rows("demo.shop.customers", page_size=1000, timeout=60)
    page_lengths = []
    ids = []
    for page in rows.pages:
        items = list(page)
        page_lengths.append(len(items))
        ids.extend(r["customer_id"] for r in items)
    assert rows.total_rows == CUSTOMERS_ROWS
    assert page_lengths == [1000] * 10
    assert sorted(ids) == list(range(1, CUSTOMERS_ROWS + 1))


def test_list_rows_max_results(client):
    rows = client.list_rows("demo.shop.orders", max_results=25, timeout=60)
    listed = list(rows)
    assert len(listed) == 25
    assert rows.total_rows == ORDERS_ROWS
    assert len({r["order_id"] for r in listed}) == 25


def test_list_rows_max_results_over_pages(client):
    rows = client.list_rows("demo.shop.events", max_results=2500, page_size=1000, timeout=60)
    pages = [list(p) for p in rows.pages]
    assert [len(p) for p in pages] == [1000, 1000, 500]
    ids = [r["event_id"] for p in pages for r in p]
    assert len(set(ids)) == 2500


def test_list_rows_start_index(client):
    first = [r["customer_id"] for r in client.list_rows("demo.shop.customers", max_results=20, timeout=60)]
    later = [
        r["customer_id"]
        for r in client.list_rows("demo.shop.customers", start_index=10, max_results=10, timeout=60)
    ]
    assert later == first[10:20]


def test_list_rows_selected_fields(client):
    table = client.get_table("demo.shop.customers", timeout=60)
    wanted = [f for f in table.schema if f.name in ("customer_id", "lifetime_value", "signup_date")]
    rows = list(client.list_rows(table, selected_fields=wanted, max_results=5, timeout=60))
    assert len(rows) == 5
    for r in rows:
        assert set(r.keys()) == {"customer_id", "lifetime_value", "signup_date"}
        assert type(r["customer_id"]) is int
        assert isinstance(r["lifetime_value"], decimal.Decimal)
        assert type(r["signup_date"]) is datetime.date


def test_list_rows_types(client):
    table = client.get_table("demo.shop.customers", timeout=60)
    rows = list(client.list_rows(table, max_results=3, timeout=60))
    for r in rows:
        assert isinstance(r["address"], dict)
        assert isinstance(r["tags"], list)
        assert r["created_at"].tzinfo is not None
        assert isinstance(r["is_active"], bool)
    ids = [r["customer_id"] for r in rows]
    by_query = list(
        client.query_and_wait(
            "SELECT customer_id, name, lifetime_value, tags FROM `demo.shop.customers` "
            f"WHERE customer_id IN ({', '.join(str(i) for i in ids)})",
            wait_timeout=120,
        )
    )
    by_id = {r["customer_id"]: r for r in by_query}
    for r in rows:
        q = by_id[r["customer_id"]]
        assert (r["name"], r["lifetime_value"], r["tags"]) == (q["name"], q["lifetime_value"], q["tags"])


def test_information_schema_tables(client):
    rows = list(
        client.query_and_wait(
            "SELECT table_name, table_type FROM `demo.shop.INFORMATION_SCHEMA.TABLES`",
            wait_timeout=120,
        )
    )
    by_name = {r["table_name"]: r["table_type"] for r in rows}
    assert TABLES <= set(by_name)
    for name in TABLES:
        assert by_name[name] == "BASE TABLE"
    listed = {t.table_id for t in client.list_tables("demo.shop", timeout=60)}
    assert set(by_name) == listed


def test_information_schema_columns(client):
    rows = list(
        client.query(
            "SELECT column_name, data_type, is_nullable, ordinal_position "
            "FROM `demo.shop.INFORMATION_SCHEMA.COLUMNS` "
            "WHERE table_name = 'customers' ORDER BY ordinal_position"
        ).result(timeout=120)
    )
    table = client.get_table("demo.shop.customers", timeout=60)
    assert [r["column_name"] for r in rows] == [f.name for f in table.schema]
    assert [r["ordinal_position"] for r in rows] == list(range(1, len(rows) + 1))
    types = {r["column_name"]: r["data_type"] for r in rows}
    assert types["customer_id"] == "INT64"
    assert types["lifetime_value"] == "NUMERIC"
    assert types["signup_date"] == "DATE"
    assert types["tags"] == "ARRAY<STRING>"
    assert types["address"].startswith("STRUCT<")
    nullable = {r["column_name"]: r["is_nullable"] for r in rows}
    assert nullable["customer_id"] == "NO"
    assert nullable["phone"] == "YES"


def test_information_schema_columns_cover_all_tables(client):
    rows = list(
        client.query_and_wait(
            "SELECT table_name, COUNT(*) AS n FROM demo.shop.INFORMATION_SCHEMA.COLUMNS "
            "GROUP BY table_name",
            wait_timeout=120,
        )
    )
    counts = {r["table_name"]: r["n"] for r in rows}
    for name in TABLES:
        assert counts[name] == len(client.get_table(f"demo.shop.{name}", timeout=60).schema)
