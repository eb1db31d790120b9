"""The BigQuery upstream as a user relies on it: every job runs with a token
minted for it at the token service (workload-identity exchange of an
assertion Sluice signs for the caller; the service trusts Sluice's keys
alone, so the agent's own token is refused there and Sluice never sends
it), a refused exchange is a clear 403 and nothing runs, and no token ever
appears in Sluice's logs or answers.

These run only with SLUICE_E2E_UPSTREAM=bqemulator (run.sh's second pass).
The labels each upstream job carries are checked against a local BigQuery
server in crates/sluice-bigquery (bqemulator does not keep job labels).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.oauth2.credentials import Credentials

from conftest import (
    ADMINS_SERVICE_ACCOUNT,
    DATASET,
    PROJECT,
    SLUICE_ISSUER,
    STS_ADMINS_AUDIENCE,
    STS_AUDIENCE,
    SluiceServer,
    _launch,
    agent_token,
    make_client,
    trust_gateway_keys,
)

pytestmark = pytest.mark.upstream_only


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _sts_record(sluice) -> dict:
    return _get(sluice.helper("fake-sts").url + "/record")


def _exchange_directly(sluice, subject_token: str, audience: str = STS_AUDIENCE) -> tuple[int, dict]:
    """A token exchange at the token service, sent by hand: what an agent
    going around Sluice would do."""
    form = urllib.parse.urlencode({
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "audience": audience,
        "scope": "https://www.googleapis.com/auth/bigquery",
        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "subject_token": subject_token,
    }).encode()
    request = urllib.request.Request(
        sluice.helper("fake-sts").url + "/v1/token", data=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _jwt_part(token: str, index: int) -> dict:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_each_job_runs_with_a_token_from_the_token_service(sluice, client):
    before = _sts_record(sluice)
    rows = list(client.query(f"SELECT COUNT(*) AS n FROM `{PROJECT}.{DATASET}.customers`").result())
    assert rows[0]["n"] == 10_000
    record = _sts_record(sluice)
    # At least the job's own token was minted now (the dry-run token may be
    # the caller's cached one); the service refused nothing Sluice sent.
    assert record["exchanges"] > before["exchanges"]
    assert not record["refused"][len(before["refused"]):], record["refused"]


def test_the_agents_own_token_is_refused_at_the_token_service(sluice, credentials):
    """The side door is shut: the token an agent holds, taken to the token
    service directly, buys nothing. The service's providers trust Sluice's
    issuer and keys alone."""
    before = _sts_record(sluice)
    status, body = _exchange_directly(sluice, credentials.token)
    assert status == 400, body
    assert body["error"] == "invalid_grant", body
    # Nor an administrator's token at the administrators' provider.
    admin = agent_token(sluice, "e2e-admin", ("admins",))
    status, body = _exchange_directly(sluice, admin, STS_ADMINS_AUDIENCE)
    assert (status, body["error"]) == (400, "invalid_grant"), body
    record = _sts_record(sluice)
    assert record["issued"] == before["issued"], "nothing was issued"
    refused = record["refused"][len(before["refused"]):]
    assert len(refused) == 2 and all(r.startswith("untrusted subject token") for r in refused), refused


def test_sluice_sends_its_own_assertion_never_the_agents_token(sluice, client, credentials):
    before = len(_sts_record(sluice)["subject_tokens"])
    job = client.query(f"SELECT COUNT(*) AS n FROM `{PROJECT}.{DATASET}.orders`")
    assert list(job.result())[0]["n"] == 100_000
    sent = _sts_record(sluice)["subject_tokens"][before:]
    assert sent, "the job's token was exchanged at the token service"
    assert credentials.token not in sent
    for assertion in sent:
        header, claims = _jwt_part(assertion, 0), _jwt_part(assertion, 1)
        assert header["alg"] == "ES256" and header["kid"], header
        assert claims["iss"] == SLUICE_ISSUER
        assert claims["aud"] == STS_AUDIENCE
        assert claims["caller_sub"] == "e2e-agent"
        assert claims["sub"].endswith("#e2e-agent") and len(claims["sub"]) <= 127
        assert claims["policies"] == ["agents-read-shop"] and claims["policy"] == "agents-read-shop"
        assert claims["exp"] - claims["iat"] == 300


def test_the_gateway_publishes_the_keys_the_token_service_trusts(sluice):
    discovery = _get(sluice.base_url + "/.well-known/openid-configuration")
    assert discovery["issuer"] == SLUICE_ISSUER
    assert discovery["jwks_uri"] == SLUICE_ISSUER + "/.well-known/sluice/jwks.json"
    served = _get(sluice.base_url + "/.well-known/sluice/jwks.json")
    exported = json.loads((sluice.data_dir.parent / "trusted-jwks" / f"{sluice.data_dir.parent.name}-data.json").read_text())
    assert served == exported
    assert served["keys"] and all("d" not in key for key in served["keys"])


def test_a_refused_exchange_is_a_clear_403_and_nothing_runs(sluice):
    refused = make_client(sluice.base_url, Credentials(token=agent_token(sluice, "sts-refused")))
    with pytest.raises(exceptions.Forbidden) as info:
        refused.query(f"SELECT 1 AS x FROM `{PROJECT}.{DATASET}.customers` LIMIT 1").result()
    message = str(info.value)
    assert "credential.mint" in message
    assert "attribute condition" in message
    refused.close()


def test_no_token_appears_in_logs_or_answers(sluice, client, credentials):
    job = client.query(f"SELECT customer_id FROM `{PROJECT}.{DATASET}.customers` ORDER BY customer_id LIMIT 5")
    job.result()
    fetched = client.get_job(job.job_id)
    answers = json.dumps(fetched._properties) + json.dumps(job._properties)
    record = _sts_record(sluice)
    # Sluice's assertions are credentials too: they never show either.
    secrets = list(record["issued"]) + list(record["subject_tokens"]) + [credentials.token]
    assert len(record["issued"]) >= 2
    log = sluice.log_path.read_text(errors="replace")
    assert "DEBUG" in log, "the gateway should be logging at debug level for this check"
    for secret in secrets:
        # Any 16-character piece of a token would be a leak.
        pieces = {secret[i : i + 16] for i in range(0, max(1, len(secret) - 16), 8)}
        leaked = [p for p in pieces if p in log or p in answers]
        assert not leaked, f"a token fragment appears in the log or an answer: {leaked[:1]}"


def test_a_policy_picks_the_credential_its_principals_run_with(sluice, client, admin_client):
    """The demo's `admins` policy names the credential `admins` (another
    workload identity provider, then impersonation of a service account with
    generateAccessToken); agents use the warehouse's default."""
    sql = f"SELECT COUNT(*) AS n FROM `{PROJECT}.{DATASET}.orders`"
    before = _sts_record(sluice)
    seen, impersonated = len(before["exchanged"]), len(before["impersonated"])
    assert list(client.query(sql).result())[0]["n"] == 100_000
    assert len(_sts_record(sluice)["impersonated"]) == impersonated, "agents impersonate nobody"
    assert list(admin_client.query(sql).result())[0]["n"] == 100_000
    record = _sts_record(sluice)
    calls = record["impersonated"][impersonated:]
    assert calls, "the admins' jobs ran as the impersonated service account"
    assert {c["service_account"] for c in calls} == {ADMINS_SERVICE_ACCOUNT}
    assert {c["lifetime"] for c in calls} == {"300s"}
    exchanged = record["exchanged"][seen:]
    audiences = {(e["caller_sub"], e["audience"]) for e in exchanged}
    assert ("e2e-admin", STS_ADMINS_AUDIENCE) in audiences, exchanged
    assert ("e2e-agent", STS_AUDIENCE) in audiences, exchanged
    # Never the other way round.
    assert ("e2e-admin", STS_AUDIENCE) not in audiences, exchanged
    assert ("e2e-agent", STS_ADMINS_AUDIENCE) not in audiences, exchanged


@pytest.fixture
def own_gateway(sluice):
    """A second gateway of its own (own data folder and store) in front of
    the same emulator and token service, free to be restarted."""
    args, env, _ = sluice.launch
    work_dir = Path(tempfile.mkdtemp(prefix="sluice-restart-", dir=sluice.data_dir.parent))
    data_dir = work_dir / "data"
    data_dir.mkdir()
    args = list(args)
    args[args.index("--data-dir") + 1] = str(data_dir)
    # Its own store, its own signing key: the token service trusts it too.
    trust_gateway_keys(os.environ["SLUICE_BIN"], Path(args[args.index("--config") + 1]), data_dir)
    log_path = work_dir / "sluice.log"
    proc, port = _launch(args, env, work_dir, log_path)
    server = SluiceServer(f"http://127.0.0.1:{port}", proc, log_path, data_dir)
    server.launch = (args, env, work_dir)
    try:
        assert port is not None, log_path.read_text(errors="replace")[-3000:]
        yield server
    finally:
        server.stop()


def test_a_finished_jobs_results_are_read_after_a_gateway_restart(own_gateway):
    token = Credentials(token=agent_token(own_gateway))
    before = make_client(own_gateway.base_url, token)
    sql = f"SELECT order_id FROM `{PROJECT}.{DATASET}.orders` ORDER BY order_id LIMIT 2500"
    job = before.query(sql)
    expected = [row["order_id"] for row in job.result(page_size=1000)]
    assert len(expected) == 2500
    before.close()

    own_gateway.restart()

    after = make_client(own_gateway.base_url, token)
    again = after.get_job(job.job_id, location=job.location)
    assert again.state == "DONE"
    assert [row["order_id"] for row in again.result(page_size=1000)] == expected
    after.close()


KEY_FIXTURE = Path(__file__).resolve().parents[2] / "crates/sluice-credentials/tests/fixtures/service-account.json"


def test_a_stored_key_mints_each_jobs_token_and_the_file_can_go(sluice, tmp_path):
    """The `service_account_key` path as an operator runs it: a master key,
    `sluice secrets put`, the key file deleted, then `sluice serve` signs a
    JWT-bearer assertion per job at the key's token_uri and revokes the
    token once the job's last page is read."""
    binary = os.environ["SLUICE_BIN"]
    sts_url = sluice.helper("fake-sts").url
    run = lambda *args: subprocess.run([binary, *map(str, args)], check=True, capture_output=True, text=True)

    master = tmp_path / "master.key"
    run("secrets", "init-key", "--out", master)
    key = json.loads(KEY_FIXTURE.read_text())
    key["token_uri"] = f"{sts_url}/token"
    key_file = tmp_path / "bq-reader.json"
    key_file.write_text(json.dumps(key))

    args, env, _ = sluice.launch
    session_config = Path(args[args.index("--config") + 1]).read_text()
    head, rest = session_config.split("  credentials:\n", 1)
    rest = rest[rest.index("  named_credentials:\n"):]
    # Its own master key, below.
    rest = rest.split("\nsecrets:\n", 1)[0] + "\n"
    config = tmp_path / "sluice-key.yaml"
    config.write_text(
        head
        + "  credentials:\n"
        + "    kind: service_account_key\n"
        + "    key: bq-reader\n"
        + f"    revoke_url: {sts_url}/revoke\n"
        + rest
        + f"\nsecrets:\n  master_key_file: {master}\n"
    )
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    run("secrets", "put", "bq-reader", "--file", key_file, "--config", config, "--data-dir", data_dir)
    key_file.unlink()
    listed = run("secrets", "list", "--config", config, "--data-dir", data_dir).stdout
    assert "bq-reader" in listed and "PRIVATE KEY" not in listed

    # Nothing of the private key is on disk in the store.
    secret = key["private_key"].replace("\n", "")
    pieces = {secret[i : i + 16] for i in range(40, len(secret) - 40, 16)}
    for path in data_dir.glob("sluice.db*"):
        stored = path.read_bytes()
        assert not [p for p in pieces if p.encode() in stored], f"{path.name} holds key material"

    args = [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--config", str(config)]
    proc, port = _launch(args, env, tmp_path, tmp_path / "sluice.log")
    server = SluiceServer(f"http://127.0.0.1:{port}", proc, tmp_path / "sluice.log", data_dir)
    try:
        assert port is not None, (tmp_path / "sluice.log").read_text(errors="replace")[-3000:]
        client = make_client(server.base_url, Credentials(token=agent_token(server)))
        before = _sts_record(sluice)
        rows = list(client.query(f"SELECT COUNT(*) AS n FROM `{PROJECT}.{DATASET}.customers`").result())
        assert rows[0]["n"] == 10_000
        minted = [t for t in _sts_record(sluice)["key_tokens"] if t not in before["key_tokens"]]
        assert minted, "the job's token came from the key's token endpoint"
        # The job's token is revoked once its result has been read.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not set(minted) & set(_sts_record(sluice)["revoked"]):
            time.sleep(0.1)
        assert set(minted) & set(_sts_record(sluice)["revoked"]), "no job token was revoked"
        client.close()
        # Counted: minted and revoked by credential, the warehouse's calls timed.
        with urllib.request.urlopen(f"{server.base_url}/metrics", timeout=30) as response:
            metrics = response.read().decode()
        for sample in ('sluice_upstream_tokens_minted_total{credential="default",outcome="ok"}',
                       'sluice_upstream_tokens_revoked_total{credential="default",outcome="ok"}',
                       'sluice_upstream_call_duration_seconds_count{call="start"}'):
            match = re.search(re.escape(sample) + r" (\S+)", metrics)
            assert match and float(match.group(1)) >= 1, sample
        exported = subprocess.run([binary, "audit", "export", "--config", str(config), "--data-dir", str(data_dir)],
                                  check=True, capture_output=True, text=True).stdout
    finally:
        server.stop()
    # Audited: each token minted and revoked, by fingerprint, never the token.
    events = [json.loads(line) for line in exported.splitlines() if line.strip() and '"checkpoint"' not in line]
    fingerprints = {hashlib.sha256(t.encode()).hexdigest()[:16] for t in minted}
    by_kind = lambda kind: [e["detail"] for e in events if e["kind"] == kind]
    assert fingerprints & {d["fingerprint"] for d in by_kind("token.minted")}, by_kind("token.minted")
    assert fingerprints & {d["fingerprint"] for d in by_kind("token.revoked") if d["revoked"]}
    started = [d for d in by_kind("query.started") if d.get("credential")]
    assert fingerprints & {d["credential"]["fingerprint"] for d in started}, started
    assert all(d["credential"] == "default" for d in by_kind("token.minted"))
    assert not [t for t in minted if t[-16:] in exported]
    # The administrator's import, recorded before it was made, and the
    # configuration the gateway ran with.
    puts = [e for e in events if e["kind"] == "admin.action" and e["detail"]["action"] == "secrets.put"]
    assert len(puts) == 1 and puts[0]["detail"]["name"] == "bq-reader" and puts[0]["principal"].startswith("local:")
    started = by_kind("gateway.started")
    assert started and started[0]["config_sha256"] == hashlib.sha256(config.read_bytes()).hexdigest(), started
    assert started[0]["warehouse"] == "bigquery"
    log = (tmp_path / "sluice.log").read_text(errors="replace")
    assert not [p for p in pieces if p in log]
    assert not [t for t in minted if t[-16:] in log]
    assert not re.search(r"BEGIN PRIVATE KEY", log)


def test_a_rotated_signing_key_signs_and_the_previous_one_stays_published(sluice, own_gateway):
    """`sluice secrets rotate-signing-key`: the next assertions carry the new
    key's kid, and the JWKS publishes both keys, so a provider updated with
    it accepts assertions signed before and after."""
    binary = os.environ["SLUICE_BIN"]
    args, _, _ = own_gateway.launch
    config = Path(args[args.index("--config") + 1])
    before = _get(own_gateway.base_url + "/.well-known/sluice/jwks.json")
    assert len(before["keys"]) == 1
    old_kid = before["keys"][0]["kid"]

    subprocess.run(
        [binary, "secrets", "rotate-signing-key", "--config", str(config), "--data-dir", str(own_gateway.data_dir)],
        check=True, capture_output=True, text=True,
    )
    trust_gateway_keys(binary, config, own_gateway.data_dir)
    own_gateway.restart()

    after = _get(own_gateway.base_url + "/.well-known/sluice/jwks.json")
    kids = [key["kid"] for key in after["keys"]]
    assert len(kids) == 2 and kids[1] == old_kid, kids
    new_kid = kids[0]
    client = make_client(own_gateway.base_url, Credentials(token=agent_token(own_gateway)))
    seen = len(_sts_record(sluice)["exchanged"])
    assert list(client.query(f"SELECT COUNT(*) AS n FROM `{PROJECT}.{DATASET}.customers`").result())[0]["n"] == 10_000
    client.close()
    kids_used = {e["kid"] for e in _sts_record(sluice)["exchanged"][seen:]}
    assert kids_used == {new_kid}, kids_used
