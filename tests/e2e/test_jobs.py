"""jobs.get, jobs.cancel and jobs.list."""

import concurrent.futures
import time

import pytest
from google.api_core import exceptions
from google.cloud import bigquery

# Runs far longer than any test: a three-way cross join of 10,000 rows.
ENDLESS_QUERY = (
    "SELECT SUM(a.customer_id * b.customer_id + c.customer_id) AS s "
    "FROM `demo.shop.customers` a, `demo.shop.customers` b, `demo.shop.customers` c"
)

LONG_QUERY = (
    "SELECT COUNT(*) AS n, SUM(e.duration_ms) AS d FROM `demo.shop.events` e "
    "JOIN `demo.shop.orders` o ON e.customer_id = o.customer_id"
)


def wait_done(client, job_id, seconds=90):
    deadline = time.monotonic() + seconds
    while True:
        job = client.get_job(job_id, timeout=30)
        if job.state == "DONE" or time.monotonic() > deadline:
            return job
        time.sleep(0.5)


def test_get_job_fields(client, job_id_prefix):
    job = client.query(
        "SELECT customer_id FROM `demo.shop.customers` WHERE customer_id <= 10",
        job_id_prefix=job_id_prefix,
    )
    job.result(timeout=120)
    fetched = client.get_job(job.job_id, timeout=30)
    assert isinstance(fetched, bigquery.QueryJob)
    assert fetched.job_id == job.job_id
    assert fetched.job_id.startswith(job_id_prefix)
    assert fetched.project == "demo"
    assert fetched.state == "DONE"
    assert fetched.error_result is None
    assert fetched.statement_type == "SELECT"
    assert fetched.total_bytes_processed is not None and fetched.total_bytes_processed > 0
    assert fetched.query.startswith("SELECT customer_id")
    assert fetched.created is not None
    assert fetched.ended is not None and fetched.ended >= fetched.created
    assert fetched.destination is None


def test_get_job_with_location(client):
    job = client.query("SELECT 1")
    job.result(timeout=120)
    fetched = client.get_job(job.job_id, location=job.location, timeout=30)
    assert fetched.state == "DONE"


def test_cancel_running_job(client, job_id_prefix):
    job = client.query(ENDLESS_QUERY, job_id_prefix=job_id_prefix)
    cancelled = client.cancel_job(job.job_id, location=job.location, timeout=30)
    assert cancelled.job_id == job.job_id
    final = wait_done(client, job.job_id)
    assert final.state == "DONE"
    # BigQuery reports a cancelled job as stopped.
    assert final.error_result["reason"] == "stopped"


def test_unfinished_job_is_running_and_result_times_out(client):
    job = client.query(ENDLESS_QUERY)
    # getQueryResults holds, answers jobComplete: false, and the client
    # polls until its own timeout.
    with pytest.raises(concurrent.futures.TimeoutError):
        job.result(timeout=2)
    running = client.get_job(job.job_id, timeout=30)
    assert running.state in ("PENDING", "RUNNING")
    assert running.ended is None
    assert job.cancel(timeout=30) is True
    final = wait_done(client, job.job_id)
    assert final.state == "DONE"
    assert final.error_result["reason"] == "stopped"
    with pytest.raises(exceptions.GoogleAPICallError, match="cancel"):
        job.result(timeout=30)


def test_cancel_finished_job(client):
    job = client.query("SELECT 1 AS x")
    assert [r["x"] for r in job.result(timeout=120)] == [1]
    cancelled = client.cancel_job(job.job_id, timeout=30)
    assert cancelled.state == "DONE"
    assert client.get_job(job.job_id, timeout=30).error_result is None


def test_job_cancel_method(client):
    job = client.query(LONG_QUERY)
    assert job.cancel(timeout=30) is True
    final = wait_done(client, job.job_id)
    assert final.state == "DONE"


def test_list_jobs_includes_own_jobs(client, job_id_prefix):
    created = []
    for i in range(3):
        job = client.query(f"SELECT {i} AS i", job_id_prefix=job_id_prefix)
        job.result(timeout=120)
        created.append(job.job_id)
    listed = list(client.list_jobs(max_results=25, timeout=60))
    assert 0 < len(listed) <= 25
    ids = [j.job_id for j in listed]
    assert set(created) <= set(ids), f"own jobs missing from {ids}"
    own = [j for j in listed if j.job_id in created]
    assert all(j.state == "DONE" for j in own)
    assert all(isinstance(j, bigquery.QueryJob) for j in own)


def test_list_jobs_paged(client, job_id_prefix):
    created = []
    for i in range(4):
        job = client.query(f"SELECT {i} AS i", job_id_prefix=job_id_prefix)
        job.result(timeout=120)
        created.append(job.job_id)
    pages = list(client.list_jobs(max_results=8, page_size=2, timeout=60).pages)
    ids = [j.job_id for p in pages for j in p]
    assert len(ids) == len(set(ids)) <= 8
    assert set(created) <= set(ids)
    assert all(p.num_items <= 2 for p in pages)


def test_dry_run_job_fields(client):
    job = client.query(
        "SELECT * FROM `demo.shop.orders`",
        job_config=bigquery.QueryJobConfig(dry_run=True, use_query_cache=False),
    )
    assert job.state == "DONE"
    assert job.statement_type == "SELECT"
    assert job.total_bytes_processed > 0
