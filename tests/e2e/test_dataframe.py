"""to_dataframe() on query results must read through the gateway.

With google-cloud-bigquery-storage installed, the client would switch to the
Storage Read API (gRPC to Google, bypassing the gateway) if the job resource
named a destination table. There is no network here, so such an attempt fails.
"""

import decimal
import importlib.util

import pytest

SQL = (
    "SELECT customer_id, name, lifetime_value, signup_date FROM `demo.shop.customers` "
    "WHERE customer_id <= 2500 ORDER BY customer_id"
)


def _check_frame(df):
    assert df.shape == (2500, 4)
    assert list(df.columns) == ["customer_id", "name", "lifetime_value", "signup_date"]
    assert df["customer_id"].iloc[0] == 1
    assert df["customer_id"].iloc[-1] == 2500
    assert df["customer_id"].is_unique
    assert isinstance(df["lifetime_value"].iloc[0], decimal.Decimal)


def test_to_dataframe_without_storage_client(client):
    job = client.query(SQL)
    df = job.to_dataframe(create_bqstorage_client=False, timeout=120)
    _check_frame(df)
    name = list(client.query_and_wait("SELECT name FROM `demo.shop.customers` WHERE customer_id = 1"))[0][0]
    assert df["name"].iloc[0] == name


def test_storage_package_is_installed():
    assert importlib.util.find_spec("google.cloud.bigquery_storage") is not None, (
        "google-cloud-bigquery-storage must be installed for the default to_dataframe() path"
    )


def test_to_dataframe_default_arguments_stays_on_gateway(client):
    if importlib.util.find_spec("google.cloud.bigquery_storage") is None:
        pytest.fail("google-cloud-bigquery-storage is not installed")
    job = client.query(SQL)
    job.result(timeout=120)
    assert job.destination is None, (
        "the job resource carries configuration.query.destinationTable: "
        "to_dataframe() would bypass the gateway through the Storage Read API"
    )
    df = job.to_dataframe()
    _check_frame(df)


def test_to_dataframe_many_rows_default_arguments(client):
    """A result spanning several pages, where the Storage API would normally be chosen.
    (Orders, not events: a scan of events over 10 MiB waits for a reviewer in the demo.)"""
    expected = list(
        client.query_and_wait(
            "SELECT COUNT(*) FROM `demo.shop.orders` WHERE customer_id <= 3000", wait_timeout=120
        )
    )[0][0]
    assert expected > 20_000, "demo data too small for a paging test"
    job = client.query(
        "SELECT order_id, status, created_at, amount FROM `demo.shop.orders` WHERE customer_id <= 3000"
    )
    df = job.result(page_size=5000, timeout=120).to_dataframe()
    assert df.shape == (expected, 4)
    assert df["order_id"].is_unique
    assert str(df["created_at"].dtype).startswith("datetime64")
    assert "UTC" in str(df["created_at"].dtype)


def test_query_and_wait_to_dataframe(client):
    df = client.query_and_wait(SQL, wait_timeout=120).to_dataframe()
    _check_frame(df)


def test_to_arrow(client):
    table = client.query(SQL).to_arrow(create_bqstorage_client=False)
    assert table.num_rows == 2500
    assert table.column("customer_id").to_pylist()[:3] == [1, 2, 3]
