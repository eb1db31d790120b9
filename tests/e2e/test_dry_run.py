"""Dry runs: cost estimate, schema and referenced tables, without running the query."""

from google.cloud.bigquery import QueryJobConfig, ScalarQueryParameter


def dry_run(client, sql, **config):
    job = client.query(sql, job_config=QueryJobConfig(dry_run=True, use_query_cache=False, **config))
    assert job.state == "DONE"
    assert job.error_result is None
    return job


def test_dry_run_estimates_bytes(client):
    job = dry_run(client, "SELECT * FROM `demo.shop.customers`")
    assert job.dry_run is True
    assert job.total_bytes_processed is not None
    assert job.total_bytes_processed > 0


def test_fewer_columns_estimate_fewer_bytes(client):
    one_column = dry_run(client, "SELECT customer_id FROM `demo.shop.customers`")
    all_columns = dry_run(client, "SELECT * FROM `demo.shop.customers`")
    assert 0 < one_column.total_bytes_processed < all_columns.total_bytes_processed


def test_bigger_table_estimates_more_bytes(client):
    orders = dry_run(client, "SELECT customer_id FROM `demo.shop.orders`")
    events = dry_run(client, "SELECT customer_id FROM `demo.shop.events`")
    # events has ten times the rows of orders, with the same INT64 column
    assert events.total_bytes_processed > orders.total_bytes_processed > 0


def test_dry_run_schema(client):
    job = dry_run(
        client,
        "SELECT customer_id, name, signup_date, lifetime_value FROM `demo.shop.customers`",
    )
    assert job.schema is not None
    names = [f.name for f in job.schema]
    assert names == ["customer_id", "name", "signup_date", "lifetime_value"]
    types = {f.name: f.field_type for f in job.schema}
    assert types["customer_id"] in {"INTEGER", "INT64"}
    assert types["signup_date"] == "DATE"
    assert types["lifetime_value"] == "NUMERIC"


def test_dry_run_referenced_tables(client):
    job = dry_run(client, "SELECT COUNT(*) FROM `demo.shop.orders`")
    refs = [(t.project, t.dataset_id, t.table_id) for t in job.referenced_tables]
    assert refs == [("demo", "shop", "orders")]


def test_dry_run_referenced_tables_for_join(client):
    job = dry_run(
        client,
        "SELECT c.name, COUNT(*) FROM `demo.shop.orders` o "
        "JOIN shop.customers c USING (customer_id) GROUP BY c.name",
    )
    refs = {(t.project, t.dataset_id, t.table_id) for t in job.referenced_tables}
    assert refs == {("demo", "shop", "orders"), ("demo", "shop", "customers")}


def test_dry_run_with_parameters(client):
    job = dry_run(
        client,
        "SELECT name FROM `demo.shop.customers` WHERE customer_id = @id",
        query_parameters=[ScalarQueryParameter("id", "INT64", 1)],
    )
    assert job.total_bytes_processed > 0
    assert [f.name for f in job.schema] == ["name"]


def test_dry_run_statement_type(client):
    job = dry_run(client, "SELECT 1 AS x FROM `demo.shop.customers` LIMIT 1")
    assert job.statement_type == "SELECT"


def test_dry_run_does_not_return_rows(client):
    job = dry_run(client, "SELECT customer_id FROM `demo.shop.customers`")
    # a dry-run job finishes at once and has no result rows
    assert job.done()
    assert job.destination is None
