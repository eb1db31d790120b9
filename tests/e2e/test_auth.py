"""Authentication and policy, through the official client: every request
carries a verified token, and a refusal names the rule that refused it."""

import base64
import json
import time

import pytest
import requests
from google.api_core import exceptions
from google.auth import credentials as auth_credentials
from google.auth import exceptions as auth_exceptions
from google.oauth2.credentials import Credentials

from conftest import agent_token, make_client


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def forge(token: str, **changes) -> str:
    """The token with its claims changed and the original signature kept."""
    header, _, signature = token.split(".")
    claims = _claims(token) | changes
    return ".".join([header, _b64(json.dumps(claims).encode()), signature])


def _raw_query(sluice, token):
    """The HTTP answer itself, to check its shape beyond what the client shows."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return requests.post(
        f"{sluice.base_url}/bigquery/v2/projects/demo/queries",
        json={"query": "SELECT 1", "useLegacySql": False},
        headers=headers,
        timeout=30,
    )


class TokenSourceCredentials(auth_credentials.Credentials):
    """Credentials as a CI agent holds them: a source it asks for a fresh
    OIDC token whenever the server says the current one is not good."""

    def __init__(self, source):
        super().__init__()
        self._source = source
        self.token = source()

    def refresh(self, request):
        self.token = self._source()


def test_the_token_is_a_signed_oidc_token_for_the_agent(sluice):
    claims = _claims(agent_token(sluice))
    assert claims["sub"] == "e2e-agent"
    assert claims["groups"] == ["agents"]
    assert claims["exp"] > time.time()


def test_no_token_is_401_and_nothing_runs(sluice):
    from google.auth.credentials import AnonymousCredentials

    anonymous = make_client(sluice.base_url, AnonymousCredentials())
    # The client treats 401 as "refresh the credentials", which anonymous
    # ones cannot: it raises at once, without retrying.
    with pytest.raises((auth_exceptions.RefreshError, auth_exceptions.InvalidOperation, exceptions.Unauthorized)):
        anonymous.query_and_wait("SELECT 1", wait_timeout=30, api_timeout=30)
    answer = _raw_query(sluice, None)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    error = answer.json()["error"]
    assert error["errors"][0]["reason"] == "unauthorized"
    assert "sluice token" in error["message"]


def test_a_forged_token_is_401_naming_the_failed_check(sluice):
    forged = forge(agent_token(sluice), groups=["admins"])
    intruder = make_client(sluice.base_url, Credentials(token=forged))
    started = time.monotonic()
    with pytest.raises(auth_exceptions.RefreshError):
        intruder.query_and_wait("SELECT 1", wait_timeout=30, api_timeout=30)
    assert time.monotonic() - started < 30
    # A client that can fetch a new token asks once more, and then shows
    # Sluice's answer: which check the token failed.
    asked = []
    refreshing = make_client(sluice.base_url, TokenSourceCredentials(lambda: asked.append(1) or forged))
    with pytest.raises(exceptions.Unauthorized) as err:
        refreshing.query_and_wait("SELECT 1", wait_timeout=30, api_timeout=30)
    assert "signature" in str(err.value).lower()
    assert forged not in str(err.value)
    assert len(asked) <= 4, "a 401 must not be retried without end"
    answer = _raw_query(sluice, forged)
    assert answer.status_code == 401
    assert "signature" in answer.json()["error"]["message"].lower()
    assert forged not in answer.text


@pytest.mark.parametrize(
    "token, why",
    [
        ("not-a-jwt", "jwt"),
        (_b64(b'{"alg":"none","typ":"JWT"}') + "." + _b64(b'{"sub":"x","iss":"x"}') + ".", "alg"),
    ],
)
def test_malformed_and_unsigned_tokens_are_401(sluice, token, why):
    answer = _raw_query(sluice, token)
    assert answer.status_code == 401
    assert answer.json()["error"]["errors"][0]["reason"] == "unauthorized"


def test_a_read_outside_the_policy_is_forbidden_naming_the_rule(client):
    started = time.monotonic()
    with pytest.raises(exceptions.Forbidden) as err:
        client.query_and_wait("SELECT * FROM `other-project.hr.salaries`", wait_timeout=30)
    assert time.monotonic() - started < 30, "a refusal must not be retried"
    message = str(err.value)
    assert "other-project.hr.salaries" in message
    assert "agents-read-shop" in message


def test_a_guardrail_hit_is_forbidden_naming_the_guardrail(client):
    with pytest.raises(exceptions.Forbidden) as err:
        client.query("EXECUTE IMMEDIATE 'DROP TABLE demo.shop.orders'").result(timeout=30)
    message = str(err.value)
    assert "guardrails.deny.dynamic_sql" in message or "guardrails.deny.drop" in message, message


def test_a_guardrail_hides_nowhere_in_a_script(client):
    script = "BEGIN\n  SELECT 1;\nEXCEPTION WHEN ERROR THEN\n  DROP TABLE demo.shop.orders;\nEND"
    with pytest.raises(exceptions.Forbidden) as err:
        client.query_and_wait(script, wait_timeout=30)
    assert "guardrails.deny.drop" in str(err.value)


def test_a_group_without_a_policy_is_refused_by_default(sluice):
    stranger = make_client(sluice.base_url, Credentials(token=agent_token(sluice, "stranger", ("interns",))))
    with pytest.raises(exceptions.Forbidden) as err:
        stranger.query_and_wait("SELECT 1", wait_timeout=30)
    assert "default-deny" in str(err.value)
    # metadata too: a caller no policy names is refused outright, before
    # any credential is minted or the warehouse is asked what exists
    with pytest.raises(exceptions.Forbidden) as err:
        list(stranger.list_datasets(timeout=30))
    assert "default-deny" in str(err.value)


def test_the_policy_sees_through_default_dataset_resolution(client):
    from google.cloud.bigquery import DatasetReference, QueryJobConfig

    config = QueryJobConfig(default_dataset=DatasetReference("demo", "shop"))
    rows = client.query_and_wait("SELECT COUNT(*) AS n FROM customers", job_config=config, wait_timeout=60)
    assert list(rows)[0]["n"] == 10_000


def test_jobs_belong_to_their_principal(sluice, client):
    job = client.query("SELECT 1 AS one")
    job.result(timeout=60)
    other = make_client(sluice.base_url, Credentials(token=agent_token(sluice, "other-agent", ("agents",))))
    with pytest.raises(exceptions.NotFound):
        other.get_job(job.job_id, timeout=30)
    assert job.job_id not in {j.job_id for j in other.list_jobs(max_results=200, timeout=30)}
    with pytest.raises(exceptions.NotFound):
        other.cancel_job(job.job_id, timeout=30)


def test_a_run_sharing_the_subject_but_not_the_policy_cannot_reach_the_job(sluice):
    # Every job of a GitHub environment gets the same subject, whatever its
    # branch: the subject alone does not make a run the job's owner.
    subject = "repo:acme/etl:environment:prod"
    main_run = make_client(sluice.base_url, Credentials(token=agent_token(sluice, subject, ("agents",))))
    job = main_run.query("SELECT 1 AS one")
    assert [r["one"] for r in job.result(timeout=60)] == [1]
    branch_run = make_client(sluice.base_url, Credentials(token=agent_token(sluice, subject, ("admins",))))
    with pytest.raises(exceptions.NotFound):
        branch_run.get_job(job.job_id, timeout=30)
    with pytest.raises(exceptions.NotFound):
        list(branch_run.get_job(job.job_id, timeout=30).result(timeout=30))
    assert job.job_id not in {j.job_id for j in branch_run.list_jobs(max_results=200, timeout=30)}
    # The main run, with a fresh token of the same policy, still reads it.
    again = make_client(sluice.base_url, Credentials(token=agent_token(sluice, subject, ("agents",))))
    assert again.get_job(job.job_id, timeout=30).state == "DONE"
