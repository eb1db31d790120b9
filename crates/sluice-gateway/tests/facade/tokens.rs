//! Tokens die on every path: every upstream token the gateway mints — for
//! a job, a dry run, a metadata call, a duplicate job id, a job refused
//! for its row count — is revoked at the token service once its use is
//! over. Counted at a local server that answers as Google's OAuth token
//! and revocation endpoints and as BigQuery do.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::harness::{
    TestGateway, assert_error, done_job, dry_run_job, id_schema, inserted_job, query_as,
};

#[derive(Default)]
struct Google {
    issued: Mutex<Vec<String>>,
    revoked: Mutex<Vec<String>>,
    dry_run: Mutex<Value>,
}

async fn answer(State(google): State<Arc<Google>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    if path == "/sa/token" {
        let mut issued = google.issued.lock().unwrap();
        let token = format!("ya29.sa-{}", issued.len());
        issued.push(token.clone());
        return axum::Json(
            json!({"access_token": token, "expires_in": 3600, "token_type": "Bearer"}),
        )
        .into_response();
    }
    if path == "/revoke" {
        let form: std::collections::HashMap<String, String> =
            serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        google
            .revoked
            .lock()
            .unwrap()
            .push(form.get("token").cloned().unwrap_or_default());
        return axum::Json(json!({})).into_response();
    }
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let answer = if path == "/bigquery/v2/projects/proj/jobs" {
        if body["configuration"]["dryRun"] == json!(true) {
            dry_run_job(google.dry_run.lock().unwrap().clone())
        } else {
            inserted_job(&body)
        }
    } else if let Some(id) = path.strip_prefix("/bigquery/v2/projects/proj/queries/") {
        json!({"jobReference": {"projectId": "proj", "jobId": id}, "jobComplete": true,
               "totalRows": "2", "schema": id_schema(),
               "rows": [{"f": [{"v": "7"}]}, {"f": [{"v": "8"}]}]})
    } else if let Some(id) = path.strip_prefix("/bigquery/v2/projects/proj/jobs/") {
        done_job(id)
    } else {
        let error = json!({"error": {"code": 404, "message": "Not found: Table proj:ds.people",
                           "errors": [{"reason": "notFound", "message": "Not found"}]}});
        return (axum::http::StatusCode::NOT_FOUND, axum::Json(error)).into_response();
    };
    axum::Json(answer).into_response()
}

fn reads(google: &Google, (project, dataset, table): (&str, &str, &str)) {
    *google.dry_run.lock().unwrap() = json!({
        "totalBytesProcessed": "50",
        "referencedTables": [{"projectId": project, "datasetId": dataset, "tableId": table}],
        "statementType": "SELECT",
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_minted_token_is_revoked_after_a_mixed_run() {
    let dir = tempfile::tempdir().unwrap();
    let google = Arc::new(Google::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(google.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A service account key whose token endpoint is the local server,
    // kept in the gateway's encrypted store.
    let master = dir.path().join("master.key");
    let master_key = sluice_store::MasterKey::generate();
    std::fs::write(&master, master_key.to_base64()).unwrap();
    let key = include_str!("../../../sluice-credentials/tests/fixtures/service-account.json")
        .replace(
            "https://token-uri.invalid/token",
            &format!("{url}/sa/token"),
        );
    {
        let store = sluice_store::SqliteStore::open(&dir.path().join("sluice.db"))
            .await
            .unwrap();
        let secrets = sluice_store::SecretStore::new(Arc::new(store), master_key);
        secrets.put("bq-key", key.as_bytes()).await.unwrap();
    }
    let yaml = format!(
        "warehouse:\n  kind: bigquery\n  endpoint: {url}\n  location: US\n  credentials:\n    kind: service_account_key\n    key: bq-key\n    revoke_url: {url}/revoke\n"
    );
    let upstream = sluice_gateway::Config::parse(&yaml, "upstream.yaml")
        .unwrap()
        .upstream;
    let gw = TestGateway::start_with(dir.path(), |config| {
        config.upstream = upstream;
        config.master_key_file = Some(master);
    })
    .await;
    let tester = gw.token_for("tess", &["testers"]);
    let outsider = gw.token_for("olive", &["outsiders"]);
    let stranger = gw.token_for("sam", &["nobody-names-this"]);

    // A query whose rows are all read: a dry-run token and a job token.
    reads(&google, ("proj", "ds", "people"));
    let (status, result) = query_as(&gw, &tester, "SELECT id FROM proj.ds.people").await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["totalRows"], "2", "{result}");

    // A job inserted under an id, then read; then the same id again.
    let insert = json!({
        "jobReference": {"projectId": "proj", "jobId": "twice"},
        "configuration": {"query": {"query": "SELECT id FROM proj.ds.people", "useLegacySql": false}}
    });
    let (status, job) = gw
        .call_as(
            &tester,
            "POST",
            "/bigquery/v2/projects/proj/jobs",
            Some(insert.clone()),
        )
        .await;
    assert_eq!(status, 200, "{job}");
    let (status, rows) = gw
        .call_as(
            &tester,
            "GET",
            "/bigquery/v2/projects/proj/queries/twice",
            None,
        )
        .await;
    assert_eq!(status, 200, "{rows}");
    let (status, body) = gw
        .call_as(
            &tester,
            "POST",
            "/bigquery/v2/projects/proj/jobs",
            Some(insert),
        )
        .await;
    assert_error(status, &body, 409, "duplicate");

    // A job refused for its row count (outsiders: limits.max_rows 1).
    reads(&google, ("proj", "public", "t"));
    let (status, body) = query_as(&gw, &outsider, "SELECT id FROM proj.public.t").await;
    assert_error(status, &body, 403, "accessDenied");

    // A dry run, and a metadata call the upstream answers 404.
    reads(&google, ("proj", "ds", "people"));
    let (status, body) = gw.call_as(
        &tester,
        "POST",
        "/bigquery/v2/projects/proj/queries",
        Some(json!({"query": "SELECT id FROM proj.ds.people", "useLegacySql": false, "dryRun": true})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = gw
        .call_as(
            &tester,
            "GET",
            "/bigquery/v2/projects/proj/datasets/ds/tables/people",
            None,
        )
        .await;
    assert_error(status, &body, 404, "notFound");

    // A stranger gets nothing minted.
    let (status, body) = gw
        .call_as(&stranger, "GET", "/bigquery/v2/projects", None)
        .await;
    assert_error(status, &body, 403, "accessDenied");

    // dry run + job, twice; dry run + job for the duplicate (its job
    // token is minted while the record is written, and released when the
    // id is refused); dry run + job for the refused one; a dry run; a
    // metadata call.
    let issued: BTreeSet<String> = google.issued.lock().unwrap().iter().cloned().collect();
    assert_eq!(issued.len(), 10, "{issued:?}");
    let mut revoked = BTreeSet::new();
    for _ in 0..100 {
        revoked = google.revoked.lock().unwrap().iter().cloned().collect();
        if revoked == issued {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(revoked, issued, "every minted token is revoked");
    gw.stop().await;
}
