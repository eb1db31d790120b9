"""Queries through jobs.insert + getQueryResults and through jobs.query."""

import datetime
import decimal

import pytest
from google.cloud import bigquery

from conftest import CUSTOMERS_ROWS, ORDERS_ROWS

CUSTOMER_COLUMNS = (
    "customer_id, name, email, phone, address, signup_date, created_at, "
    "lifetime_value, tags, is_active"
)


def scalar(client, sql, **kwargs):
    rows = list(client.query(sql, **kwargs).result(timeout=120))
    assert len(rows) == 1, rows
    assert len(rows[0]) == 1, rows[0]
    return rows[0][0]


def _check_customer_row(row, expected_id):
    assert row["customer_id"] == expected_id
    assert type(row["customer_id"]) is int
    assert isinstance(row["name"], str) and row["name"]
    assert isinstance(row["email"], str)
    assert row["phone"] is None or isinstance(row["phone"], str)
    assert isinstance(row["address"], dict)
    assert set(row["address"]) == {"street", "city", "state", "zip"}
    for value in row["address"].values():
        assert value is None or isinstance(value, str)
    assert type(row["signup_date"]) is datetime.date
    assert isinstance(row["created_at"], datetime.datetime)
    assert row["created_at"].tzinfo is not None
    assert row["created_at"].utcoffset() == datetime.timedelta(0)
    assert isinstance(row["lifetime_value"], decimal.Decimal)
    assert isinstance(row["tags"], list)
    assert all(isinstance(t, str) for t in row["tags"])
    assert isinstance(row["is_active"], bool)


def _field_types(schema):
    return {f.name: (f.field_type, f.mode) for f in schema}


INT_TYPES = {"INTEGER", "INT64"}
BOOL_TYPES = {"BOOLEAN", "BOOL"}
RECORD_TYPES = {"RECORD", "STRUCT"}
FLOAT_TYPES = {"FLOAT", "FLOAT64"}


def _check_customer_schema(schema):
    types = _field_types(schema)
    assert types["customer_id"][0] in INT_TYPES
    assert types["name"][0] == "STRING"
    assert types["address"][0] in RECORD_TYPES
    assert types["signup_date"][0] == "DATE"
    assert types["created_at"][0] == "TIMESTAMP"
    assert types["lifetime_value"][0] == "NUMERIC"
    assert types["tags"] == ("STRING", "REPEATED")
    assert types["is_active"][0] in BOOL_TYPES
    address = next(f for f in schema if f.name == "address")
    assert [f.name for f in address.fields] == ["street", "city", "state", "zip"]


def test_query_result_values_and_types(client):
    job = client.query(
        f"SELECT {CUSTOMER_COLUMNS} FROM `demo.shop.customers` "
        "WHERE customer_id IN (1, 2, 3) ORDER BY customer_id"
    )
    result = job.result(timeout=120)
    assert job.state == "DONE"
    assert job.error_result is None
    assert result.total_rows == 3
    rows = list(result)
    assert [r["customer_id"] for r in rows] == [1, 2, 3]
    for expected_id, row in zip([1, 2, 3], rows):
        _check_customer_row(row, expected_id)
    _check_customer_schema(result.schema)


def test_query_and_wait_values_and_types(client):
    rows = client.query_and_wait(
        f"SELECT {CUSTOMER_COLUMNS} FROM `demo.shop.customers` "
        "WHERE customer_id BETWEEN 10 AND 14 ORDER BY customer_id",
        wait_timeout=120,
    )
    assert rows.total_rows == 5
    listed = list(rows)
    assert [r["customer_id"] for r in listed] == [10, 11, 12, 13, 14]
    for row in listed:
        _check_customer_row(row, row["customer_id"])
    _check_customer_schema(rows.schema)


def test_both_paths_agree(client):
    sql = (
        "SELECT customer_id, name, lifetime_value, signup_date, created_at, tags, address "
        "FROM `demo.shop.customers` WHERE customer_id IN (7, 77, 777) ORDER BY customer_id"
    )
    via_job = [dict(r.items()) for r in client.query(sql).result(timeout=120)]
    via_query = [dict(r.items()) for r in client.query_and_wait(sql, wait_timeout=120)]
    assert len(via_job) == 3
    assert via_job == via_query


def test_counts_match_contract(client):
    assert scalar(client, "SELECT COUNT(*) FROM `demo.shop.customers`") == CUSTOMERS_ROWS
    assert scalar(client, "SELECT COUNT(*) FROM `demo.shop.orders`") == ORDERS_ROWS
    stats = list(
        client.query_and_wait(
            "SELECT MIN(customer_id) AS lo, MAX(customer_id) AS hi, "
            "COUNT(DISTINCT customer_id) AS n FROM `demo.shop.customers`",
            wait_timeout=120,
        )
    )[0]
    assert (stats["lo"], stats["hi"], stats["n"]) == (1, CUSTOMERS_ROWS, CUSTOMERS_ROWS)


def test_aggregates_cross_checked(client):
    """The total of per-status sums equals the overall sum (NUMERIC stays exact)."""
    total = scalar(client, "SELECT SUM(amount) FROM `demo.shop.orders`")
    assert isinstance(total, decimal.Decimal)
    per_status = list(
        client.query_and_wait(
            "SELECT status, SUM(amount) AS s, COUNT(*) AS n FROM `demo.shop.orders` GROUP BY status",
            wait_timeout=120,
        )
    )
    assert len(per_status) >= 2
    assert sum(r["s"] for r in per_status) == total
    assert sum(r["n"] for r in per_status) == ORDERS_ROWS


def test_result_schema_types_for_orders(client):
    result = client.query(
        "SELECT order_id, order_date, amount, created_at, status FROM `demo.shop.orders` LIMIT 1"
    ).result(timeout=120)
    types = _field_types(result.schema)
    assert types["order_id"][0] in INT_TYPES
    assert types["order_date"][0] == "DATE"
    assert types["amount"][0] == "NUMERIC"
    assert types["created_at"][0] == "TIMESTAMP"
    assert types["status"][0] == "STRING"
    assert result.total_rows == 1


@pytest.mark.parametrize(
    "table_expr",
    ["`demo.shop.orders`", "`demo`.shop.orders", "shop.orders", "demo.shop.orders"],
)
def test_table_name_forms(client, table_expr):
    assert scalar(client, f"SELECT COUNT(*) FROM {table_expr}") == ORDERS_ROWS


def test_bare_table_with_default_dataset(client):
    config = bigquery.QueryJobConfig(default_dataset="demo.shop")
    assert scalar(client, "SELECT COUNT(*) FROM orders", job_config=config) == ORDERS_ROWS
    rows = client.query_and_wait(
        "SELECT COUNT(*) AS n FROM customers", job_config=config, wait_timeout=120
    )
    assert list(rows)[0]["n"] == CUSTOMERS_ROWS


def test_many_rows_in_pages(client):
    """Read a large result in pages; every row is seen exactly once. (Orders,
    not events: a scan of events over 10 MiB waits for a reviewer in the demo.)"""
    where = "WHERE customer_id <= 4000"
    expected = scalar(client, f"SELECT COUNT(*) FROM `demo.shop.orders` {where}")
    assert expected > 20_000, "demo data too small for a paging test"
    job = client.query(f"SELECT order_id, customer_id FROM `demo.shop.orders` {where}")
    page_size = 5_000
    result = job.result(page_size=page_size, timeout=120)
    assert result.total_rows == expected
    seen = []
    pages = 0
    for page in result.pages:
        pages += 1
        items = list(page)
        assert 0 < len(items) <= page_size
        seen.extend(items)
    assert len(seen) == expected
    ids = [r["order_id"] for r in seen]
    assert len(set(ids)) == expected
    assert all(r["customer_id"] <= 4000 for r in seen)
    assert pages >= -(-expected // page_size)


def test_job_result_max_results_and_page_size(client):
    sql = "SELECT order_id FROM `demo.shop.orders` WHERE customer_id <= 3000"
    # result() on a fresh job: the page size and row limit reach getQueryResults
    limited = client.query(sql).result(max_results=12_000, page_size=3_000, timeout=120)
    page_sizes = [len(list(p)) for p in limited.pages]
    assert sum(page_sizes) == 12_000
    assert all(n <= 3_000 for n in page_sizes)
    assert len([n for n in page_sizes if n]) == 4


def test_job_result_start_index(client):
    sql = "SELECT customer_id FROM `demo.shop.customers` WHERE customer_id <= 50 ORDER BY customer_id"
    all_ids = [r[0] for r in client.query(sql).result(timeout=120)]
    assert all_ids == list(range(1, 51))
    # start_index on a fresh job's first getQueryResults call
    tail = [r[0] for r in client.query(sql).result(start_index=40, timeout=120)]
    assert tail == list(range(41, 51))


def test_query_and_wait_paging(client):
    expected = scalar(client, "SELECT COUNT(*) FROM `demo.shop.orders` WHERE customer_id <= 1000")
    rows = client.query_and_wait(
        "SELECT order_id FROM `demo.shop.orders` WHERE customer_id <= 1000",
        page_size=2_000,
        wait_timeout=120,
    )
    assert rows.total_rows == expected
    ids = [r["order_id"] for r in rows]
    assert len(ids) == expected
    assert len(set(ids)) == expected
