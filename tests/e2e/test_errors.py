"""Errors surface as the exceptions BigQuery would raise, and promptly."""

import time

import pytest
from google.api_core import exceptions

PROMPT_S = 30


class Prompt:
    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        elapsed = time.monotonic() - self.start
        assert elapsed < PROMPT_S, f"error took {elapsed:.1f}s (retried instead of raising?)"
        return False


def via_job(client, sql):
    return list(client.query(sql).result(timeout=60))


def via_query(client, sql):
    return list(client.query_and_wait(sql, wait_timeout=60, api_timeout=30))


PATHS = [pytest.param(via_job, id="jobs.insert"), pytest.param(via_query, id="jobs.query")]


@pytest.mark.parametrize("run", PATHS)
def test_unknown_table_is_not_found(client, run):
    with Prompt(), pytest.raises(exceptions.NotFound) as err:
        run(client, "SELECT * FROM `demo.shop.no_such_table`")
    assert "no_such_table" in str(err.value)


@pytest.mark.parametrize("run", PATHS)
def test_unknown_dataset_in_query_is_not_found(admin_client, run):
    with Prompt(), pytest.raises(exceptions.NotFound):
        run(admin_client, "SELECT * FROM `demo.no_such_dataset.orders`")


@pytest.mark.parametrize("run", PATHS)
def test_a_dataset_outside_the_agents_policy_is_forbidden_not_revealed(client, run):
    with Prompt(), pytest.raises(exceptions.Forbidden) as err:
        run(client, "SELECT * FROM `demo.no_such_dataset.orders`")
    assert "agents-read-shop" in str(err.value)
    assert "demo.no_such_dataset.orders" in str(err.value)


@pytest.mark.parametrize("run", PATHS)
def test_unknown_column_is_bad_request(client, run):
    with Prompt(), pytest.raises(exceptions.BadRequest) as err:
        run(client, "SELECT no_such_column FROM `demo.shop.orders`")
    assert "no_such_column" in str(err.value)


@pytest.mark.parametrize("run", PATHS)
@pytest.mark.parametrize(
    "sql",
    ["SELEC 1", "SELECT FROM WHERE", "SELECT * FROM `demo.shop.orders` WHERE (", "SELECT 1 +"],
)
def test_bad_sql_is_bad_request(client, run, sql):
    with Prompt(), pytest.raises(exceptions.BadRequest):
        run(client, sql)


@pytest.mark.destructive
@pytest.mark.parametrize("run", PATHS)
def test_drop_table_is_refused_naming_the_guardrail(client, run):
    with Prompt(), pytest.raises(exceptions.Forbidden) as err:
        run(client, "DROP TABLE demo.shop.customers")
    assert "guardrails.deny.drop" in str(err.value)
    assert "demo.shop.customers" in str(err.value)
    # the table is still there
    assert client.get_table("demo.shop.customers", timeout=60).num_rows == 10_000


@pytest.mark.destructive
@pytest.mark.parametrize("run", PATHS)
def test_delete_is_refused_naming_the_statement(client, run):
    with Prompt(), pytest.raises(exceptions.Forbidden) as err:
        run(client, "DELETE FROM demo.shop.orders WHERE TRUE")
    assert "DELETE" in str(err.value).upper()
    assert "allow.statements" in str(err.value)
    count = list(client.query_and_wait("SELECT COUNT(*) FROM demo.shop.orders", wait_timeout=60))[0][0]
    assert count == 100_000


def test_failed_job_reports_error_result(client):
    job = client.query("SELECT * FROM `demo.shop.orders` WHERE no_such_column = 1")
    with Prompt(), pytest.raises(exceptions.BadRequest):
        job.result(timeout=60)
    fetched = client.get_job(job.job_id, timeout=30)
    assert fetched.state == "DONE"
    assert fetched.error_result is not None
    assert fetched.error_result.get("reason") == "invalidQuery"


def test_unknown_job_is_not_found(client):
    with Prompt(), pytest.raises(exceptions.NotFound):
        client.get_job("no_such_job_0123456789", timeout=30)


def test_cancel_unknown_job_is_not_found(client):
    with Prompt(), pytest.raises(exceptions.NotFound):
        client.cancel_job("no_such_job_0123456789", timeout=30)


def test_get_dataset_unknown_is_not_found(admin_client):
    with Prompt(), pytest.raises(exceptions.NotFound):
        admin_client.get_dataset("demo.no_such_dataset", timeout=30)


def test_get_dataset_outside_the_policy_is_forbidden(client):
    with Prompt(), pytest.raises(exceptions.Forbidden):
        client.get_dataset("demo.no_such_dataset", timeout=30)


def test_get_table_unknown_is_not_found(client):
    with Prompt(), pytest.raises(exceptions.NotFound):
        client.get_table("demo.shop.no_such_table", timeout=30)


def test_list_tables_unknown_dataset_is_not_found(admin_client):
    with Prompt(), pytest.raises(exceptions.NotFound):
        list(admin_client.list_tables("demo.no_such_dataset", timeout=30))


def test_list_rows_unknown_table_is_not_found(client):
    with Prompt(), pytest.raises(exceptions.NotFound):
        list(client.list_rows("demo.shop.no_such_table", max_results=5, timeout=30))


def test_wrong_parameter_type_is_bad_request(client):
    from google.cloud.bigquery import QueryJobConfig, ScalarQueryParameter

    config = QueryJobConfig(query_parameters=[ScalarQueryParameter("id", "STRING", "abc")])
    with Prompt(), pytest.raises(exceptions.BadRequest):
        client.query(
            "SELECT * FROM `demo.shop.customers` WHERE customer_id = @id", job_config=config
        ).result(timeout=60)


def test_missing_parameter_is_bad_request(client):
    with Prompt(), pytest.raises(exceptions.BadRequest):
        client.query_and_wait(
            "SELECT * FROM `demo.shop.customers` WHERE customer_id = @missing", wait_timeout=60
        )


def test_gateway_still_serves_after_errors(client):
    rows = list(client.query_and_wait("SELECT COUNT(*) AS n FROM `demo.shop.customers`", wait_timeout=60))
    assert rows[0]["n"] == 10_000
