//! The gateway with `warehouse.kind: bigquery` against a local server
//! that answers as BigQuery and Google's Security Token Service do: what
//! runs upstream, with which token, and what the dry run must agree with
//! before anything runs.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::harness::{TestGateway, assert_error};

/// What the fake BigQuery was sent and what its dry runs report.
struct Google {
    dry_run: Mutex<Value>,
    /// Every real (not dry-run) job inserted: its body and bearer token.
    jobs: Mutex<Vec<(Value, String)>>,
    /// Every bearer token the STS issued.
    issued: Mutex<Vec<String>>,
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
        let mut issued = google.issued.lock().unwrap();
        let token = format!("ya29.sts-{}", issued.len());
        issued.push(token.clone());
        return axum::Json(json!({
            "access_token": token,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "Bearer",
            "expires_in": 3600
        }))
        .into_response();
    }
    let schema = json!({"fields": [{"name": "id", "type": "INTEGER", "mode": "NULLABLE"}]});
    let done = |id: &str| {
        json!({
            "jobReference": {"projectId": "proj", "jobId": id, "location": "US"},
            "status": {"state": "DONE"},
            "statistics": {"query": {"totalBytesProcessed": "50", "statementType": "SELECT"}},
            "configuration": {"query": {}}
        })
    };
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let answer = if path == "/bigquery/v2/projects/proj/jobs" {
        if body["configuration"]["dryRun"] == json!(true) {
            let mut job = done("dry");
            job["statistics"]["query"] = google.dry_run.lock().unwrap().clone();
            job["statistics"]["query"]["schema"] = schema.clone();
            job
        } else {
            let id = body["jobReference"]["jobId"]
                .as_str()
                .unwrap_or("x")
                .to_string();
            google.jobs.lock().unwrap().push((body, bearer));
            done(&id)
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
               "totalRows": "2", "schema": schema, "rows": rows})
    } else if let Some(id) = path.strip_prefix("/bigquery/v2/projects/proj/jobs/") {
        done(id)
    } else {
        return (axum::http::StatusCode::NOT_FOUND, "not found").into_response();
    };
    axum::Json(answer).into_response()
}

async fn start_google() -> (Arc<Google>, String) {
    let google = Arc::new(Google {
        dry_run: Mutex::new(Value::Null),
        jobs: Mutex::default(),
        issued: Mutex::default(),
    });
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(google.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (google, url)
}

/// A gateway (in its own temporary folder) forwarding to a new fake,
/// minting by workload identity there.
async fn gateway() -> (tempfile::TempDir, Arc<Google>, TestGateway) {
    let dir = tempfile::tempdir().unwrap();
    let (google, url) = start_google().await;
    let yaml = format!(
        "warehouse:\n  kind: bigquery\n  endpoint: {url}\n  location: US\n  credentials:\n    kind: workload_identity\n    audience: //iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/t\n    sts_url: {url}/v1/token\n    revoke_url: none\n"
    );
    let upstream = sluice_gateway::Config::parse(&yaml, "upstream.yaml")
        .unwrap()
        .upstream;
    let gw = TestGateway::start_with(dir.path(), |config| config.upstream = upstream).await;
    (dir, google, gw)
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

async fn query(gw: &TestGateway, token: &str, sql: &str) -> (u16, Value) {
    let body = json!({"query": sql, "useLegacySql": false, "timeoutMs": 5000}).to_string();
    let bearer = format!("Bearer {token}");
    gw.call(
        "POST",
        "/bigquery/v2/projects/proj/queries",
        Some(body.as_bytes()),
        &[("authorization", &bearer)],
    )
    .await
}

#[tokio::test]
async fn an_allowed_query_runs_upstream_with_its_own_token_the_byte_cap_and_labels() {
    let (_dir, google, gw) = gateway().await;
    dry_run(&google, 50, &[("proj", "ds", "people")], "SELECT");
    let token = gw.token_for("frugal-agent", &["frugal"]);

    let (status, result) = query(&gw, &token, "SELECT id FROM proj.ds.people").await;
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
    // BigQuery itself refuses more than the policy allows.
    assert_eq!(job["configuration"]["query"]["maximumBytesBilled"], "100");
    assert_eq!(
        job["configuration"]["labels"]["sluice-principal"],
        "frugal-agent"
    );
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
        let (status, error) = query(&gw, &token, sql).await;
        assert_error(status, &error, 403, "accessDenied");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("analysis.cross_check"), "{message}");
        assert!(message.contains(names), "{message}");
    }
    assert!(google.jobs.lock().unwrap().is_empty(), "nothing ran");

    // The same query with an agreeing dry run runs.
    dry_run(&google, 50, &[("proj", "ds", "people")], "SELECT");
    let (status, result) = query(&gw, &token, sql).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(google.jobs.lock().unwrap().len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn an_estimate_over_the_policy_limit_runs_nothing() {
    let (_dir, google, gw) = gateway().await;
    dry_run(&google, 10_000, &[("proj", "ds", "people")], "SELECT");
    let token = gw.token_for("frugal-agent", &["frugal"]);
    let (status, error) = query(&gw, &token, "SELECT id FROM proj.ds.people").await;
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
