//! The gateway with `warehouse.kind: bigquery` against a local server
//! that answers as BigQuery and Google's Security Token Service do: what
//! runs upstream, with which token, and what the dry run must agree with
//! before anything runs.
//!
//! The fake STS is a workload identity provider that trusts Sluice's issuer
//! alone, with the JWKS the gateway publishes at its well-known path: the
//! agent's own token is worth nothing there.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use sluice_credentials::test_util::{jwks_kids, token_exchange_form};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::harness::{
    TestGateway, assert_error, done_job, dry_run_job, id_schema, inserted_job, query_as,
};

/// Sluice's issuer URL in these tests, and the provider's audience.
const ISSUER: &str = "https://sluice.test";
const AUDIENCE: &str =
    "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/t";

/// What the fake BigQuery was sent and what its dry runs report.
struct Google {
    url: String,
    dry_run: Mutex<Value>,
    /// How many dry runs were asked for.
    dry_runs: Mutex<usize>,
    /// The tables a finished job's statistics list (none when null).
    finished_tables: Mutex<Value>,
    /// Every real (not dry-run) job inserted: its body and bearer token.
    jobs: Mutex<Vec<(Value, String)>>,
    /// Every bearer token the STS issued.
    issued: Mutex<Vec<String>>,
    /// The JWKS the provider trusts: Sluice's, as the gateway publishes it.
    trusted_jwks: Mutex<Value>,
    /// Every subject token the STS was sent, and the claims of those it
    /// accepted.
    subject_tokens: Mutex<Vec<String>>,
    accepted: Mutex<Vec<Value>>,
}

impl Google {
    /// Verifies a subject token as a provider that trusts Sluice's issuer
    /// alone: ES256 by a key of the trusted JWKS, Sluice's `iss`, the
    /// provider's `aud`, not expired.
    fn verify(&self, token: &str) -> Result<Value, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        let kid = header.kid.ok_or("no kid")?;
        let jwks = self.trusted_jwks.lock().unwrap().clone();
        let key = jwks["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|k| k["kid"] == kid.as_str())
            .ok_or(format!("no trusted key has kid {kid}"))?;
        let decoding = DecodingKey::from_ec_components(
            key["x"].as_str().unwrap_or_default(),
            key["y"].as_str().unwrap_or_default(),
        )
        .map_err(|e| e.to_string())?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["iss", "aud", "sub", "exp"]);
        validation.leeway = 0;
        jsonwebtoken::decode::<Value>(token, &decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| e.to_string())
    }

    /// The token exchange: Sluice's assertion buys a federated token;
    /// anything else is `invalid_grant`.
    fn exchange(&self, body: &[u8]) -> Response {
        let form: std::collections::HashMap<String, String> =
            serde_urlencoded::from_bytes(body).unwrap_or_default();
        let subject = form.get("subject_token").cloned().unwrap_or_default();
        self.subject_tokens.lock().unwrap().push(subject.clone());
        let claims = match self.verify(&subject) {
            Ok(claims) if form.get("audience").map(String::as_str) == Some(AUDIENCE) => claims,
            Ok(_) => return refused("the audience is not this provider"),
            Err(why) => return refused(&why),
        };
        self.accepted.lock().unwrap().push(claims);
        let mut issued = self.issued.lock().unwrap();
        let token = format!("ya29.sts-{}", issued.len());
        issued.push(token.clone());
        axum::Json(json!({
            "access_token": token,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "Bearer",
            "expires_in": 3600
        }))
        .into_response()
    }
}

fn refused(why: &str) -> Response {
    (
        axum::http::StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": "invalid_grant", "error_description": format!("fake: {why}")})),
    )
        .into_response()
}

async fn answer(State(google): State<Arc<Google>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let bearer = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_start_matches("Bearer ")
        .to_string();
    if path == "/v1/token" {
        return google.exchange(&bytes);
    }
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let answer = if path == "/bigquery/v2/projects/proj/jobs" {
        if body["configuration"]["dryRun"] == json!(true)
            && *google.dry_run.lock().unwrap() == json!("unavailable")
        {
            let error = json!({"error": {"code": 503, "message": "The service is currently unavailable.",
                               "errors": [{"reason": "backendError", "message": "unavailable"}]}});
            return (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(error),
            )
                .into_response();
        }
        if body["configuration"]["dryRun"] == json!(true) {
            *google.dry_runs.lock().unwrap() += 1;
            dry_run_job(google.dry_run.lock().unwrap().clone())
        } else {
            let job = inserted_job(&body);
            google.jobs.lock().unwrap().push((body, bearer));
            job
        }
    } else if let Some(id) = path.strip_prefix("/bigquery/v2/projects/proj/queries/") {
        let rows = match parts
            .uri
            .query()
            .unwrap_or_default()
            .contains("maxResults=0")
        {
            true => json!([]),
            false => json!([{"f": [{"v": "7"}]}, {"f": [{"v": "8"}]}]),
        };
        json!({"jobReference": {"projectId": "proj", "jobId": id}, "jobComplete": true,
               "totalRows": "2", "schema": id_schema(), "rows": rows})
    } else if path == "/bigquery/v2/projects/proj/datasets/ds/tables/people" {
        // tables.get: `id` carries a policy tag.
        json!({"kind": "bigquery#table", "type": "TABLE", "numRows": "2", "numBytes": "16",
               "tableReference": {"projectId": "proj", "datasetId": "ds", "tableId": "people"},
               "schema": {"fields": [{"name": "id", "type": "INTEGER", "mode": "NULLABLE",
                   "policyTags": {"names": ["projects/proj/locations/us/taxonomies/7/policyTags/pii"]}}]}})
    } else if let Some(id) = path.strip_prefix("/bigquery/v2/projects/proj/jobs/") {
        let mut job = done_job(id);
        let tables = google.finished_tables.lock().unwrap().clone();
        if !tables.is_null() {
            job["statistics"]["query"]["referencedTables"] = tables;
        }
        job
    } else {
        return (axum::http::StatusCode::NOT_FOUND, "not found").into_response();
    };
    axum::Json(answer).into_response()
}

async fn start_google() -> (Arc<Google>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let google = Arc::new(Google {
        url: url.clone(),
        dry_run: Mutex::new(Value::Null),
        dry_runs: Mutex::default(),
        finished_tables: Mutex::new(Value::Null),
        jobs: Mutex::default(),
        issued: Mutex::default(),
        trusted_jwks: Mutex::new(json!({"keys": []})),
        subject_tokens: Mutex::default(),
        accepted: Mutex::default(),
    });
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(google.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (google, url)
}

/// A gateway (in its own temporary folder) forwarding to a new fake,
/// minting by workload identity there; the fake trusts the JWKS the
/// gateway publishes.
async fn gateway() -> (tempfile::TempDir, Arc<Google>, TestGateway) {
    let dir = tempfile::tempdir().unwrap();
    let (google, url) = start_google().await;
    let gw = start_gateway(dir.path(), &url).await;
    trust_the_gateway(&google, &gw).await;
    (dir, google, gw)
}

/// A gateway on the data in `dir` forwarding to the fake at `url`; its
/// signing key is kept in its store under a master key in `dir`.
async fn start_gateway(dir: &std::path::Path, url: &str) -> TestGateway {
    start_gateway_with(dir, url, "").await
}

/// [`start_gateway`] with more `warehouse:` settings (`extra`, indented),
/// or top-level sections after them (`masking:`, not indented).
async fn start_gateway_with(dir: &std::path::Path, url: &str, extra: &str) -> TestGateway {
    let master = dir.join("master.key");
    if !master.exists() {
        std::fs::write(&master, sluice_store::MasterKey::generate().to_base64()).unwrap();
    }
    let yaml = format!(
        "warehouse:\n  kind: bigquery\n  endpoint: {url}\n  location: US\n  credentials:\n    kind: workload_identity\n    audience: {AUDIENCE}\n    issuer: {ISSUER}\n    sts_url: {url}/v1/token\n    revoke_url: none\n  retry_deadline: 1s\n{extra}"
    );
    let parsed = sluice_gateway::Config::parse(&yaml, "upstream.yaml").unwrap();
    TestGateway::start_with(dir, |config| {
        config.upstream = parsed.upstream;
        config.masking = parsed.masking;
        config.master_key_file = Some(master);
    })
    .await
}

/// Gives the provider the keys the gateway publishes, as a provider that
/// fetches them from Sluice's issuer does.
async fn trust_the_gateway(google: &Google, gw: &TestGateway) {
    let (status, jwks) = gw.get("/.well-known/sluice/jwks.json").await;
    assert_eq!(status, 200, "{jwks}");
    *google.trusted_jwks.lock().unwrap() = jwks;
}

/// POSTs a token exchange of `subject_token` straight to the fake STS at
/// `url`, as an agent going around Sluice would; the status and body.
async fn exchange_directly(url: &str, subject_token: &str) -> (u16, Value) {
    let body = token_exchange_form(AUDIENCE, subject_token);
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /v1/token HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A table as `(project, dataset, table)`.
type Table = (&'static str, &'static str, &'static str);

fn dry_run(google: &Google, bytes: u64, tables: &[Table], statement: &str) {
    let tables: Vec<Value> = tables
        .iter()
        .map(|(p, d, t)| json!({"projectId": p, "datasetId": d, "tableId": t}))
        .collect();
    *google.dry_run.lock().unwrap() = json!({
        "totalBytesProcessed": bytes.to_string(),
        "referencedTables": tables,
        "statementType": statement,
    });
}

#[tokio::test]
async fn an_allowed_query_runs_upstream_with_its_own_token_the_byte_cap_and_labels() {
    let (_dir, google, gw) = gateway().await;
    dry_run(&google, 50, &[("proj", "ds", "people")], "SELECT");
    let token = gw.token_for("frugal-agent", &["frugal"]);

    let (status, result) = query_as(&gw, &token, "SELECT id FROM proj.ds.people").await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["jobComplete"], true, "{result}");
    assert_eq!(result["totalRows"], "2");
    assert_eq!(
        result["rows"],
        json!([{"f": [{"v": "7"}]}, {"f": [{"v": "8"}]}])
    );

    let jobs = google.jobs.lock().unwrap().clone();
    assert_eq!(jobs.len(), 1);
    let (job, bearer) = &jobs[0];
    // The job ran with a token the STS minted, never the caller's own.
    assert!(google.issued.lock().unwrap().contains(bearer), "{bearer}");
    assert_ne!(bearer, &token);
    // The STS was sent Sluice's assertions about the caller, never the
    // caller's token.
    let sent = google.subject_tokens.lock().unwrap().clone();
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|t| t != &token && !t.contains(&token)));
    let accepted = google.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), sent.len(), "every assertion verified");
    let claims = &accepted[0];
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["caller_sub"], "frugal-agent");
    assert_eq!(
        claims["sub"],
        format!("{}#frugal-agent", claims["caller_iss"].as_str().unwrap())
    );
    assert_eq!(claims["policy"], "frugal");
    assert_eq!(claims["groups"], json!(["frugal"]));
    // BigQuery itself refuses more than the policy allows, and stops the
    // job after the default hour (the policy sets no max_duration):
    // under capacity pricing few bytes can still burn slots for hours.
    assert_eq!(job["configuration"]["query"]["maximumBytesBilled"], "100");
    assert_eq!(job["configuration"]["jobTimeoutMs"], "3600000");
    let labels = &job["configuration"]["labels"];
    assert_eq!(labels["sluice-principal"], "frugal-agent");
    for key in [
        "sluice-issuer",
        "sluice-subject",
        "sluice-session",
        "sluice-run",
        "sluice-job",
    ] {
        assert!(
            labels[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key}: {labels}"
        );
    }
    assert!(
        job["jobReference"]["jobId"]
            .as_str()
            .unwrap()
            .starts_with("sluice_")
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_dry_run_that_disagrees_with_the_analysis_runs_nothing() {
    let (_dir, google, gw) = gateway().await;
    let token = gw.token_for("agent", &["testers"]);
    let sql = "SELECT id FROM proj.ds.people";
    let cases: &[(&[Table], &str, &str)] = &[
        // A table analysis did not see (a view's base table, a hidden reference).
        (
            &[("proj", "ds", "people"), ("proj", "hr", "salaries")],
            "SELECT",
            "proj.hr.salaries",
        ),
        // No tables listed at all: the cross-check cannot be made.
        (&[], "SELECT", "did not list the tables"),
        // Another kind of statement than analysis found.
        (&[("proj", "ds", "people")], "DELETE", "DELETE statement"),
        (&[("proj", "ds", "people")], "SCRIPT", "SCRIPT statement"),
    ];
    for (tables, statement, names) in cases {
        dry_run(&google, 50, tables, statement);
        let (status, error) = query_as(&gw, &token, sql).await;
        assert_error(status, &error, 403, "accessDenied");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("analysis.cross_check"), "{message}");
        assert!(message.contains(names), "{message}");
    }
    assert!(google.jobs.lock().unwrap().is_empty(), "nothing ran");

    // The same query with an agreeing dry run runs.
    dry_run(&google, 50, &[("proj", "ds", "people")], "SELECT");
    let (status, result) = query_as(&gw, &token, sql).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(google.jobs.lock().unwrap().len(), 1);
    gw.stop().await;
}

/// Issue: no retryable reason on a refusal. Dry-run statistics Sluice
/// cannot read are a refusal (403), not a 500 every client retries.
#[tokio::test]
async fn unreadable_dry_run_statistics_are_access_denied() {
    let (_dir, google, gw) = gateway().await;
    *google.dry_run.lock().unwrap() = json!({
        "totalBytesProcessed": "50",
        "referencedTables": "not a list of tables",
        "statementType": "SELECT",
    });
    let token = gw.token_for("agent", &["testers"]);
    let (status, error) = query_as(&gw, &token, "SELECT id FROM proj.ds.people").await;
    assert_error(status, &error, 403, "accessDenied");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("analysis.cross_check"), "{message}");
    assert!(google.jobs.lock().unwrap().is_empty(), "nothing ran");
    gw.stop().await;
}

/// Issue: a transient failure before a job exists answers an HTTP error
/// and records no job, so the client's retry under the same id makes it
/// (a recorded failed job made the Python client resubmit under a new id).
#[tokio::test]
async fn a_transient_failure_before_the_job_exists_records_no_job() {
    let (_dir, google, gw) = gateway().await;
    let token = gw.token_for("agent", &["testers"]);
    let bearer = format!("Bearer {token}");
    let insert = json!({
        "jobReference": {"projectId": "proj", "jobId": "retry-me"},
        "configuration": {"query": {"query": "SELECT id FROM proj.ds.people", "useLegacySql": false}}
    })
    .to_string();
    *google.dry_run.lock().unwrap() = json!("unavailable");
    let (status, error) = gw
        .call(
            "POST",
            "/bigquery/v2/projects/proj/jobs",
            Some(insert.as_bytes()),
            &[("Authorization", &bearer)],
        )
        .await;
    assert_eq!(status, 503, "{error}");
    assert_eq!(
        error["error"]["errors"][0]["reason"], "backendError",
        "{error}"
    );
    let (status, error) = gw
        .call(
            "GET",
            "/bigquery/v2/projects/proj/jobs/retry-me",
            None,
            &[("Authorization", &bearer)],
        )
        .await;
    assert_error(status, &error, 404, "notFound");

    // The retry under the same id runs.
    dry_run(&google, 50, &[("proj", "ds", "people")], "SELECT");
    let (status, job) = gw
        .call(
            "POST",
            "/bigquery/v2/projects/proj/jobs",
            Some(insert.as_bytes()),
            &[("Authorization", &bearer)],
        )
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["jobReference"]["jobId"], "retry-me", "{job}");
    gw.stop().await;
}

#[tokio::test]
async fn an_estimate_over_the_policy_limit_runs_nothing() {
    let (_dir, google, gw) = gateway().await;
    dry_run(&google, 10_000, &[("proj", "ds", "people")], "SELECT");
    let token = gw.token_for("frugal-agent", &["frugal"]);
    let (status, error) = query_as(&gw, &token, "SELECT id FROM proj.ds.people").await;
    assert_error(status, &error, 403, "accessDenied");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("limits.max_bytes_billed"), "{message}");
    assert!(google.jobs.lock().unwrap().is_empty(), "nothing ran");
    gw.stop().await;
}

#[tokio::test]
async fn a_metadata_call_the_policy_refuses_mints_no_token() {
    let (_dir, google, gw) = gateway().await;
    let outsider = format!("Bearer {}", gw.token_for("outsider", &["outsiders"]));
    let auth = [("authorization", outsider.as_str())];
    for path in [
        "/bigquery/v2/projects/proj/datasets/ds/tables/people",
        "/bigquery/v2/projects/proj/datasets/ds/tables/people/data",
        "/bigquery/v2/projects/proj/datasets/ds",
        "/bigquery/v2/projects/proj/datasets/ds/tables",
    ] {
        let (status, error) = gw.call("GET", path, None, &auth).await;
        assert_error(status, &error, 403, "accessDenied");
    }
    assert!(google.issued.lock().unwrap().is_empty(), "no token minted");

    // A caller no policy names (with a public issuer: any workflow
    // anywhere) cannot even list projects or datasets: no token is minted
    // and BigQuery is not asked which projects the credential can see.
    let stranger = format!(
        "Bearer {}",
        gw.token_for("stranger", &["nobody-names-this"])
    );
    for path in [
        "/bigquery/v2/projects",
        "/bigquery/v2/projects/proj/datasets",
    ] {
        let (status, error) = gw
            .call("GET", path, None, &[("authorization", stranger.as_str())])
            .await;
        assert_error(status, &error, 403, "accessDenied");
    }
    assert!(google.issued.lock().unwrap().is_empty(), "no token minted");
    assert!(
        google.subject_tokens.lock().unwrap().is_empty(),
        "STS never called"
    );

    // An allowed call does mint (the fake then knows no such table).
    let (status, _) = gw
        .call(
            "GET",
            "/bigquery/v2/projects/proj/datasets/public/tables/notes",
            None,
            &auth,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(google.issued.lock().unwrap().len(), 1);
    gw.stop().await;
}

/// `/readyz` is 503 while BigQuery's endpoint does not answer, and names
/// which part is not ready.
#[tokio::test]
async fn not_ready_while_the_upstream_does_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bound, then closed.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let gw = start_gateway(dir.path(), &url).await;
    let answer = gw.response_text("GET", "/readyz", &[]).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.ends_with("not ready: warehouse"), "{answer}");
    gw.stop().await;

    let (_dir, _google, gw) = gateway().await;
    let answer = gw.response_text("GET", "/readyz", &[]).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    gw.stop().await;
}

#[tokio::test]
async fn the_agents_own_token_is_refused_at_the_token_service() {
    let (_dir, google, gw) = gateway().await;
    dry_run(&google, 50, &[("proj", "ds", "people")], "SELECT");
    let token = gw.token_for("agent", &["testers"]);

    // Around the gateway: the agent takes the token it holds to the STS.
    let (status, body) = exchange_directly(&google.url, &token).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(google.issued.lock().unwrap().is_empty(), "nothing issued");

    // Through the gateway, the same caller's query runs.
    let (status, result) = query_as(&gw, &token, "SELECT id FROM proj.ds.people").await;
    assert_eq!(status, 200, "{result}");
    assert!(!google.issued.lock().unwrap().is_empty());
    // And the only time the STS saw the agent's token is when the agent
    // sent it there itself.
    let sent = google.subject_tokens.lock().unwrap().clone();
    assert_eq!(sent.iter().filter(|t| **t == token).count(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn the_gateway_publishes_its_issuer_and_public_keys() {
    let (_dir, _google, gw) = gateway().await;
    let (status, discovery) = gw.get("/.well-known/openid-configuration").await;
    assert_eq!(status, 200, "{discovery}");
    assert_eq!(discovery["issuer"], ISSUER);
    assert_eq!(
        discovery["jwks_uri"],
        format!("{ISSUER}/.well-known/sluice/jwks.json")
    );
    let (status, jwks) = gw.get("/.well-known/sluice/jwks.json").await;
    assert_eq!(status, 200, "{jwks}");
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["alg"], "ES256");
    assert!(keys[0]["kid"].is_string());
    for private in ["d", "p", "q", "dp", "dq", "qi", "pkcs8"] {
        assert!(keys[0].get(private).is_none(), "{jwks}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn after_a_rotation_the_new_key_signs_and_both_keys_are_published() {
    let dir = tempfile::tempdir().unwrap();
    let (google, url) = start_google().await;
    dry_run(&google, 50, &[("proj", "ds", "people")], "SELECT");
    let gw = start_gateway(dir.path(), &url).await;
    trust_the_gateway(&google, &gw).await;
    let token = gw.token_for("agent", &["testers"]);
    let (status, result) = query_as(&gw, &token, "SELECT id FROM proj.ds.people").await;
    assert_eq!(status, 200, "{result}");
    let old_jwks = google.trusted_jwks.lock().unwrap().clone();
    let old_kid = old_jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    gw.stop().await;

    // `sluice secrets rotate-signing-key`, then the gateway again.
    let store: Arc<dyn sluice_store::Store> = Arc::new(
        sluice_store::SqliteStore::open(&dir.path().join("sluice.db"))
            .await
            .unwrap(),
    );
    let master = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    let secrets = sluice_store::SecretStore::new(
        store,
        sluice_store::MasterKey::from_base64(&master).unwrap(),
    );
    let rotated = sluice_gateway::rotate_signing_keys(&secrets, std::time::Duration::ZERO, false)
        .await
        .unwrap();
    assert_eq!(rotated.version, 2);
    let gw = start_gateway(dir.path(), &url).await;

    let (_, jwks) = gw.get("/.well-known/sluice/jwks.json").await;
    let kids = jwks_kids(&jwks);
    assert_eq!(kids.len(), 2, "{jwks}");
    assert_eq!(kids[1], old_kid, "the old key is still published");
    let new_kid = kids[0].clone();
    assert_ne!(new_kid, old_kid);

    // A provider still holding the old JWKS refuses the new key's
    // assertions: the query is refused, nothing falls back.
    let (status, error) = query_as(&gw, &token, "SELECT id FROM proj.ds.people").await;
    assert_error(status, &error, 403, "accessDenied");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("credential.mint"), "{message}");
    // Given the new JWKS, it accepts them.
    *google.trusted_jwks.lock().unwrap() = jwks.clone();
    let (status, result) = query_as(&gw, &token, "SELECT id FROM proj.ds.people").await;
    assert_eq!(status, 200, "{result}");
    let sent = google.subject_tokens.lock().unwrap().clone();
    let kid_of = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    assert_eq!(kid_of(sent.first().unwrap()), old_kid);
    assert_eq!(kid_of(sent.last().unwrap()), new_kid);
    gw.stop().await;
}

/// `dry_run: when_needed`: a fully analyzed SELECT runs without a dry run,
/// and the finished job is cross-checked before any row leaves: a table
/// the analysis did not find fails the job, and no row is returned.
#[tokio::test]
async fn without_a_dry_run_the_finished_job_is_cross_checked_before_rows_leave() {
    let dir = tempfile::tempdir().unwrap();
    let (google, url) = start_google().await;
    let gw = start_gateway_with(dir.path(), &url, "  dry_run: when_needed\n").await;
    trust_the_gateway(&google, &gw).await;
    let token = gw.token_for("agent", &["testers"]);
    let sql = "SELECT id FROM proj.ds.people";

    *google.finished_tables.lock().unwrap() =
        json!([{"projectId": "proj", "datasetId": "ds", "tableId": "people"}]);
    let (status, result) = query_as(&gw, &token, sql).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(
        result["rows"],
        json!([{"f": [{"v": "7"}]}, {"f": [{"v": "8"}]}])
    );
    assert_eq!(*google.dry_runs.lock().unwrap(), 0, "no dry run was made");
    assert_eq!(google.jobs.lock().unwrap().len(), 1);

    *google.finished_tables.lock().unwrap() = json!([
        {"projectId": "proj", "datasetId": "ds", "tableId": "people"},
        {"projectId": "proj", "datasetId": "hr", "tableId": "salaries"}
    ]);
    let (status, error) = query_as(&gw, &token, sql).await;
    assert_error(status, &error, 403, "accessDenied");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("analysis.cross_check"), "{message}");
    assert!(message.contains("proj.hr.salaries"), "{message}");
    assert!(error.get("rows").is_none());

    // What is not a plain SELECT is still dry-run first.
    dry_run(&google, 50, &[("proj", "ds", "people")], "SELECT");
    let (status, result) = query_as(&gw, &token, "SELECT 1; SELECT id FROM proj.ds.people").await;
    assert!(status == 200 || status == 403, "{result}");
    assert_eq!(*google.dry_runs.lock().unwrap(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn columns_with_a_policy_tag_upstream_are_masked_and_not_filtered_on() {
    let dir = tempfile::tempdir().unwrap();
    let (google, url) = start_google().await;
    let masking = "masking:\n  policy_tags:\n    - { tag: \"*/policyTags/pii\", strategy: null }\n";
    let gw = start_gateway_with(dir.path(), &url, masking).await;
    trust_the_gateway(&google, &gw).await;
    dry_run(&google, 50, &[("proj", "ds", "people")], "SELECT");
    let token = gw.token_for("frugal-agent", &["frugal"]);

    // The schema upstream tags `id` as PII: its values never come back.
    let (status, result) = query_as(&gw, &token, "SELECT id FROM proj.ds.people").await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["totalRows"], "2");
    assert_eq!(
        result["rows"],
        json!([{"f": [{"v": null}]}, {"f": [{"v": null}]}]),
        "{result}"
    );
    // Nor can it be tested one question at a time.
    let (status, error) = query_as(
        &gw,
        &token,
        "SELECT 1 AS one FROM proj.ds.people WHERE id = 7",
    )
    .await;
    assert_error(status, &error, 403, "accessDenied");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("rule masking.filters"), "{message}");
    assert!(message.contains("policy tag */policyTags/pii"), "{message}");
}
