//! The dry-run cross-check against the BigQuery upstream: what the
//! warehouse reports a query reads and calls must be what analysis found,
//! `INFORMATION_SCHEMA` views (which BigQuery does not list) included, and
//! a list BigQuery may have cut short is not trusted.
//!
//! The local fake answers as BigQuery and as the two Google endpoints a
//! gateway impersonating a service account from its metadata server
//! calls; what each dry run reports is set per test.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::harness::{
    TestGateway, assert_error, done_job, dry_run_job, id_schema, insert_as, inserted_job, query_as,
};

/// What the fake's dry runs report, and the real jobs it was sent.
#[derive(Default)]
struct Upstream {
    dry_run: Mutex<Value>,
    jobs: Mutex<Vec<Value>>,
}

impl Upstream {
    /// The dry run reports these tables (`project.dataset.table`) and
    /// routines (`project.dataset.routine`) for a `SELECT`.
    fn reports(&self, tables: &[&str], routines: &[&str]) {
        let refs = |names: &[&str], last: &str| -> Vec<Value> {
            names
                .iter()
                .map(|name| {
                    let mut parts = name.splitn(3, '.');
                    let mut reference = serde_json::Map::new();
                    for key in ["projectId", "datasetId", last] {
                        reference.insert(key.into(), json!(parts.next().unwrap_or_default()));
                    }
                    Value::Object(reference)
                })
                .collect()
        };
        *self.dry_run.lock().unwrap() = json!({
            "totalBytesProcessed": "50",
            "statementType": "SELECT",
            "referencedTables": refs(tables, "tableId"),
            "referencedRoutines": refs(routines, "routineId"),
        });
    }

    fn ran(&self) -> usize {
        self.jobs.lock().unwrap().len()
    }
}

async fn answer(State(upstream): State<Arc<Upstream>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let body: Value = axum::body::to_bytes(body, 1 << 20)
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    let answer = if path.ends_with("/service-accounts/default/token") {
        json!({"access_token": "ya29.gateway", "expires_in": 3600, "token_type": "Bearer"})
    } else if path.ends_with(":generateAccessToken") {
        let expires = chrono::Utc::now() + chrono::Duration::minutes(5);
        json!({"accessToken": "ya29.job", "expireTime": expires.to_rfc3339()})
    } else if path == "/bigquery/v2/projects/proj/jobs" {
        if body["configuration"]["dryRun"] == json!(true) {
            dry_run_job(upstream.dry_run.lock().unwrap().clone())
        } else {
            let job = inserted_job(&body);
            upstream.jobs.lock().unwrap().push(body);
            job
        }
    } else if let Some(id) = path.strip_prefix("/bigquery/v2/projects/proj/queries/") {
        json!({"jobReference": {"projectId": "proj", "jobId": id}, "jobComplete": true,
               "totalRows": "1", "schema": id_schema(), "rows": [{"f": [{"v": "7"}]}]})
    } else if let Some(id) = path.strip_prefix("/bigquery/v2/projects/proj/jobs/") {
        done_job(id)
    } else {
        return (axum::http::StatusCode::NOT_FOUND, "not found").into_response();
    };
    axum::Json(answer).into_response()
}

/// A gateway forwarding to a new fake BigQuery, with `policies` (YAML) in
/// place of the harness's.
async fn gateway(policies: &str) -> (tempfile::TempDir, Arc<Upstream>, TestGateway) {
    let upstream = Arc::new(Upstream::default());
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(upstream.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let yaml = format!(
        "warehouse:\n  kind: bigquery\n  endpoint: {url}\n  location: US\n  credentials:\n    kind: impersonation\n    source: metadata_server\n    service_account: reader@proj.iam.gserviceaccount.com\n    metadata_url: {url}\n    iam_credentials_url: {url}\n    revoke_url: none\n{policies}"
    );
    let parsed = sluice_gateway::Config::parse(&yaml, "cross_check.yaml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_with(dir.path(), |config| {
        config.upstream = parsed.upstream;
        config.policy = parsed.policy;
    })
    .await;
    (dir, upstream, gw)
}

/// `readers` read all of `proj` and may call one routine.
const READERS: &str = r#"
policies:
  - name: readers
    who: { groups: [readers] }
    allow:
      read: [proj, proj.region-us.INFORMATION_SCHEMA.JOBS]
      statements: [select]
      routines: [proj.ds.is_adult]
"#;

/// Runs `sql` as a reader.
async fn query(gw: &TestGateway, sql: &str) -> (u16, Value) {
    query_as(gw, &gw.token_for("reader", &["readers"]), sql).await
}

fn refused_by_cross_check(status: u16, error: &Value, names: &str) {
    assert_error(status, error, 403, "accessDenied");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("analysis.cross_check"), "{message}");
    assert!(message.contains(names), "{message}");
}

/// BigQuery lists no `INFORMATION_SCHEMA` view in `referencedTables`; the
/// exemption for them once looked for a lower-case name among upper-cased
/// ones and never applied, so every such query was refused.
#[tokio::test]
async fn information_schema_queries_run_although_the_dry_run_lists_no_table() {
    let (_dir, upstream, gw) = gateway(READERS).await;
    upstream.reports(&[], &[]);
    for sql in [
        "SELECT job_id FROM `region-us`.INFORMATION_SCHEMA.JOBS",
        "SELECT job_id FROM `proj`.`region-us`.information_schema.jobs",
        "SELECT table_name FROM proj.ds.INFORMATION_SCHEMA.TABLES",
        "SELECT schema_name FROM INFORMATION_SCHEMA.SCHEMATA",
    ] {
        let (status, result) = query(&gw, sql).await;
        assert_eq!(status, 200, "{sql}: {result}");
        assert_eq!(result["rows"], json!([{"f": [{"v": "7"}]}]), "{sql}");
    }
    assert_eq!(upstream.ran(), 4);

    // A real table beside one still needs the dry run to list it.
    let joined = "SELECT t.table_name FROM proj.ds.INFORMATION_SCHEMA.TABLES AS t JOIN proj.ds.people AS p ON p.name = t.table_name";
    let (status, error) = query(&gw, joined).await;
    refused_by_cross_check(status, &error, "did not list the tables");
    upstream.reports(&["proj.ds.people"], &[]);
    let (status, result) = query(&gw, joined).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(upstream.ran(), 5);
    gw.stop().await;
}

#[tokio::test]
async fn a_routine_the_warehouse_reports_that_analysis_did_not_find_runs_nothing() {
    let (_dir, upstream, gw) = gateway(READERS).await;
    let sql = "SELECT id FROM proj.ds.people WHERE proj.ds.is_adult(born)";
    // A routine reached some way analysis cannot see (a view, another routine).
    upstream.reports(
        &["proj.ds.people"],
        &["proj.ds.is_adult", "proj.ds.audit_log"],
    );
    let (status, error) = query(&gw, sql).await;
    refused_by_cross_check(status, &error, "routine proj.ds.audit_log");
    assert_eq!(upstream.ran(), 0, "nothing ran");

    // What analysis found, the routine the policy names, runs.
    upstream.reports(&["proj.ds.people"], &["proj.ds.is_adult"]);
    let (status, result) = query(&gw, sql).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(upstream.ran(), 1);

    // A routine no policy names is refused before anything is asked upstream.
    let other = "SELECT id FROM proj.ds.people WHERE proj.ds.is_vip(id)";
    let (status, error) = query(&gw, other).await;
    assert_error(status, &error, 403, "accessDenied");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("policies.allow.routines"), "{message}");
    assert!(message.contains("proj.ds.is_vip"), "{message}");
    assert_eq!(upstream.ran(), 1);
    gw.stop().await;
}

/// BigQuery does not list every table of a query that reads more than 50,
/// so at 50 the list may be the one cut short.
#[tokio::test]
async fn a_query_of_fifty_tables_or_more_is_not_trusted_to_the_dry_runs_list() {
    let (_dir, upstream, gw) = gateway(READERS).await;
    let tables = |n: usize| -> Vec<String> { (0..n).map(|i| format!("proj.ds.t{i}")).collect() };
    let union = |names: &[String]| {
        names
            .iter()
            .map(|name| format!("SELECT id FROM {name}"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    };

    let below = tables(49);
    upstream.reports(&below.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let (status, result) = query(&gw, &union(&below)).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(upstream.ran(), 1);

    let at = tables(50);
    upstream.reports(&at.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let (status, error) = query(&gw, &union(&at)).await;
    refused_by_cross_check(status, &error, "reads 50 tables");
    // The dry run's own count is enough: it may list tables analysis did not.
    upstream.reports(&at.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let (status, error) = query(&gw, &union(&below)).await;
    refused_by_cross_check(status, &error, "reads 50 tables");
    assert_eq!(upstream.ran(), 1, "nothing more ran");
    gw.stop().await;
}

/// jobs.insert of a query the warehouse finishes at once answers DONE,
/// with its statistics, as BigQuery does: the client skips its polls. The
/// cross-check has been made by then.
#[tokio::test]
async fn a_query_finished_at_once_is_answered_done_by_jobs_insert() {
    let (_dir, upstream, gw) = gateway(READERS).await;
    upstream.reports(&["proj.ds.people"], &[]);
    let body = json!({"configuration": {"query": {"query": "SELECT id FROM ds.people", "useLegacySql": false,
                                                   "defaultDataset": {"projectId": "proj", "datasetId": "ds"}}}});
    let token = gw.token_for("reader", &["readers"]);
    let (status, job) = insert_as(&gw, &token, body).await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["status"]["state"], "DONE", "{job}");
    assert!(job["status"].get("errorResult").is_none(), "{job}");
    assert_eq!(
        job["statistics"]["query"]["totalBytesProcessed"], "50",
        "{job}"
    );
    assert_eq!(upstream.ran(), 1);
}
