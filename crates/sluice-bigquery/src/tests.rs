//! The upstream against a local server that answers as BigQuery does and
//! records what it was sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sluice_credentials::AccessToken;
use sluice_credentials::retry::Backoff;

use super::*;

/// What the fake answers next, per path suffix, and what it saw.
#[derive(Default)]
struct Fake {
    scripted: Mutex<VecDeque<(StatusCode, Value)>>,
    seen: Mutex<Vec<Seen>>,
    delay: Mutex<Duration>,
}

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    authorization: Option<String>,
    body: Value,
}

async fn answer(State(fake): State<Arc<Fake>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    fake.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        authorization: parts
            .headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string()),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    });
    let delay = *fake.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let (status, body) = fake
        .scripted
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((StatusCode::OK, json!({})));
    (status, Json(body)).into_response()
}

async fn start_fake() -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake::default());
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (fake, url)
}

fn warehouse(endpoint: &str, timeout: Duration, deadline: Duration) -> BigQueryWarehouse {
    BigQueryWarehouse::new(BigQueryConfig {
        endpoint: endpoint.to_string(),
        location: Some("US".into()),
        timeout,
        backoff: Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
            deadline,
        },
        lists_referenced_tables: true,
    })
    .unwrap()
}

fn access(secret: &str) -> Access {
    Access::with_token(Arc::new(AccessToken::new(
        secret.to_string(),
        SystemTime::now() + Duration::from_secs(300),
    )))
}

fn script(fake: &Fake, answers: Vec<(StatusCode, Value)>) {
    fake.scripted.lock().unwrap().extend(answers);
}

/// The paths the fake was asked for, in order of arrival.
fn seen_paths(fake: &Fake) -> Vec<String> {
    fake.seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.path.clone())
        .collect()
}

/// Waits for job `key`, which must be done, and returns its outcome.
async fn done(bq: &BigQueryWarehouse, access: &Access, key: &str) -> QueryOutcome {
    match bq
        .wait_query(access, key, Duration::from_secs(1))
        .await
        .unwrap()
    {
        QueryStatus::Done(outcome) => outcome,
        other => panic!("the job should be done: {other:?}"),
    }
}

fn bigquery_error(code: u16, reason: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "errors": [{"reason": reason, "message": message, "domain": "global"}], "status": "X"}})
}

fn query() -> QueryRequest {
    QueryRequest {
        sql: "SELECT name FROM `demo.shop.customers` WHERE id = @id".into(),
        default_project: "demo".into(),
        parameters: vec![serde_json::from_value(json!({"name": "id", "parameterType": {"type": "INT64"}, "parameterValue": {"value": "7"}})).unwrap()],
        maximum_bytes_billed: Some(1_000_000),
        labels: labels([("sluice-principal", "Agent@Example.com"), ("sluice-run", "42")]),
        job_timeout_ms: Some(1_800_000),
        ..QueryRequest::default()
    }
}

#[tokio::test]
async fn a_job_is_submitted_with_its_token_labels_and_byte_cap_then_polled_and_paged() {
    let (fake, url) = start_fake().await;
    let bq = warehouse(&url, Duration::from_secs(5), Duration::from_secs(5));
    let schema = json!({"fields": [{"name": "name", "type": "STRING", "mode": "NULLABLE"}]});
    script(
        &fake,
        vec![
            (StatusCode::OK, json!({"status": {"state": "RUNNING"}})),
            (StatusCode::OK, json!({"jobComplete": false})),
            (
                StatusCode::OK,
                json!({"jobComplete": true, "totalRows": "3", "schema": schema, "rows": [{"f": [{"v": "a"}]}, {"f": [{"v": "b"}]}, {"f": [{"v": "c"}]}]}),
            ),
            (
                StatusCode::OK,
                json!({"status": {"state": "DONE"}, "statistics": {"query": {"totalBytesProcessed": "1234", "statementType": "SELECT", "referencedTables": [{"projectId": "demo", "datasetId": "shop", "tableId": "customers"}]}}}),
            ),
            (
                StatusCode::OK,
                json!({"totalRows": "3", "rows": [{"f": [{"v": "a"}]}, {"f": [{"v": "b"}]}]}),
            ),
        ],
    );
    let access = access("ya29.job-token");
    bq.start_query(&access, "k1", &query()).await.unwrap();
    assert!(matches!(
        bq.wait_query(&access, "k1", Duration::from_secs(30))
            .await
            .unwrap(),
        QueryStatus::Running
    ));
    let outcome = done(&bq, &access, "k1").await;
    assert_eq!(outcome.total_rows, 3);
    assert_eq!(outcome.total_bytes_processed, 1234);
    assert_eq!(outcome.statement_type, "SELECT");
    assert_eq!(
        outcome.referenced_tables,
        vec![TableRef::new("demo", "shop", "customers")]
    );
    assert_eq!(outcome.schema.fields[0].name, "name");
    // The call that saw the job finish brought its first rows: the first
    // page needs no call of its own.
    let first = bq.result_page(&access, "k1", 0, 2, 1 << 20).await.unwrap();
    assert_eq!(first.total_rows, 3);
    let first: Vec<&str> = first.rows.iter().map(|r| r.get()).collect();
    assert_eq!(first, [r#"{"f":[{"v":"a"}]}"#, r#"{"f":[{"v":"b"}]}"#]);
    assert_eq!(
        fake.seen.lock().unwrap().len(),
        4,
        "no call for the first page"
    );
    let page = bq.result_page(&access, "k1", 1, 2, 1 << 20).await.unwrap();
    assert_eq!(page.total_rows, 3);
    assert_eq!(page.rows.len(), 2);
    assert_eq!(page.rows[1].get(), r#"{"f":[{"v":"b"}]}"#);

    let seen = fake.seen.lock().unwrap().clone();
    let insert = &seen[0];
    assert_eq!(
        (insert.method.as_str(), insert.path.as_str()),
        ("POST", "/bigquery/v2/projects/demo/jobs")
    );
    assert_eq!(
        insert.authorization.as_deref(),
        Some("Bearer ya29.job-token")
    );
    assert_eq!(
        insert.body["jobReference"],
        json!({"projectId": "demo", "jobId": "sluice_k1", "location": "US"})
    );
    let config = &insert.body["configuration"];
    assert_eq!(config["query"]["maximumBytesBilled"], json!("1000000"));
    assert_eq!(config["query"]["useLegacySql"], json!(false));
    assert_eq!(config["query"]["parameterMode"], json!("NAMED"));
    assert_eq!(config["query"]["queryParameters"][0]["name"], json!("id"));
    assert_eq!(
        config["labels"],
        json!({"sluice-principal": "agent_example_com", "sluice-run": "42"})
    );
    assert!(config.get("dryRun").is_none());
    assert_eq!(config["jobTimeoutMs"], json!("1800000"));
    // The hold is capped, and every call names the job's location.
    assert_eq!(seen[1].path, "/bigquery/v2/projects/demo/queries/sluice_k1");
    assert!(
        seen[1].query.contains("timeoutMs=10000"),
        "{}",
        seen[1].query
    );
    assert!(seen[1].query.contains("maxResults=1000"));
    assert!(
        seen[1]
            .query
            .contains("formatOptions.useInt64Timestamp=true")
    );
    assert_eq!(seen.len(), 5);
    assert!(seen.iter().skip(1).all(|s| s.query.contains("location=US")));
    assert!(seen[4].query.contains("startIndex=1") && seen[4].query.contains("maxResults=2"));
    assert!(
        seen[4]
            .query
            .contains("formatOptions.useInt64Timestamp=true")
    );
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer ya29.job-token"))
    );
}

#[tokio::test]
async fn a_job_answered_done_with_its_statistics_at_insert_needs_no_jobs_get() {
    let (fake, url) = start_fake().await;
    let bq = warehouse(&url, Duration::from_secs(5), Duration::from_secs(5));
    let schema = json!({"fields": [{"name": "n", "type": "INTEGER", "mode": "NULLABLE"}]});
    script(
        &fake,
        vec![
            (
                StatusCode::OK,
                json!({"status": {"state": "DONE"}, "statistics": {"query": {"totalBytesProcessed": "77", "statementType": "SELECT", "referencedTables": [{"projectId": "demo", "datasetId": "shop", "tableId": "orders"}]}}}),
            ),
            (
                StatusCode::OK,
                json!({"jobComplete": true, "totalRows": "1", "schema": schema, "rows": [{"f": [{"v": "5"}]}]}),
            ),
        ],
    );
    let access = access("t");
    bq.start_query(&access, "k1", &query()).await.unwrap();
    let outcome = done(&bq, &access, "k1").await;
    assert_eq!(outcome.total_bytes_processed, 77);
    assert_eq!(outcome.statement_type, "SELECT");
    assert_eq!(
        outcome.referenced_tables,
        vec![TableRef::new("demo", "shop", "orders")]
    );
    let paths = seen_paths(&fake);
    assert_eq!(
        paths,
        [
            "/bigquery/v2/projects/demo/jobs",
            "/bigquery/v2/projects/demo/queries/sluice_k1"
        ],
        "the insert's answer stands for jobs.get"
    );
}

#[tokio::test]
async fn a_job_answered_done_without_its_tables_is_still_asked_for_them() {
    let (fake, url) = start_fake().await;
    let bq = warehouse(&url, Duration::from_secs(5), Duration::from_secs(5));
    // BigQuery lists a finished query's tables; an insert answer that does
    // not is not taken as the job's last word. The page and the resource
    // are asked for at once, so either may come first: one answer serves
    // as both.
    let both = json!({
        "jobComplete": true, "totalRows": "1", "rows": [{"f": [{"v": "5"}]}],
        "schema": {"fields": [{"name": "n", "type": "INTEGER", "mode": "NULLABLE"}]},
        "status": {"state": "DONE"},
        "statistics": {"query": {"totalBytesProcessed": "77", "statementType": "SELECT", "referencedTables": [{"projectId": "hr", "datasetId": "pay", "tableId": "salaries"}]}}
    });
    script(
        &fake,
        vec![
            (
                StatusCode::OK,
                json!({"status": {"state": "DONE"}, "statistics": {"query": {"totalBytesProcessed": "77", "statementType": "SELECT"}}}),
            ),
            (StatusCode::OK, both.clone()),
            (StatusCode::OK, both),
        ],
    );
    let access = access("t");
    bq.start_query(&access, "k1", &query()).await.unwrap();
    let outcome = done(&bq, &access, "k1").await;
    assert_eq!(
        outcome.referenced_tables,
        vec![TableRef::new("hr", "pay", "salaries")],
        "the tables come from jobs.get"
    );
    let mut paths = seen_paths(&fake);
    paths.sort();
    assert_eq!(
        paths,
        [
            "/bigquery/v2/projects/demo/jobs",
            "/bigquery/v2/projects/demo/jobs/sluice_k1",
            "/bigquery/v2/projects/demo/queries/sluice_k1"
        ]
    );
}

#[tokio::test]
async fn a_dry_run_reports_bytes_tables_and_statement_type() {
    let (fake, url) = start_fake().await;
    let bq = warehouse(&url, Duration::from_secs(5), Duration::from_secs(5));
    script(
        &fake,
        vec![(
            StatusCode::OK,
            json!({"status": {"state": "DONE"}, "statistics": {"totalBytesProcessed": "99", "query": {"totalBytesProcessed": "99", "statementType": "SELECT", "schema": {"fields": [{"name": "n", "type": "INTEGER"}]}, "referencedTables": [{"projectId": "p", "datasetId": "d", "tableId": "t"}]}}}),
        )],
    );
    let plan = bq.dry_run(&access("t"), &query()).await.unwrap();
    assert_eq!(plan.total_bytes_processed, 99);
    assert_eq!(plan.referenced_tables, vec![TableRef::new("p", "d", "t")]);
    assert_eq!(plan.statement_type, "SELECT");
    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen[0].body["configuration"]["dryRun"], json!(true));
}

#[tokio::test]
async fn transient_failures_are_retried_and_refusals_are_not() {
    let (fake, url) = start_fake().await;
    let bq = warehouse(&url, Duration::from_secs(5), Duration::from_secs(5));
    script(
        &fake,
        vec![
            (
                StatusCode::SERVICE_UNAVAILABLE,
                bigquery_error(503, "backendError", "try later"),
            ),
            (
                StatusCode::TOO_MANY_REQUESTS,
                bigquery_error(429, "rateLimitExceeded", "slow down"),
            ),
            (
                StatusCode::OK,
                json!({"datasetReference": {"projectId": "demo", "datasetId": "shop"}, "location": "EU"}),
            ),
        ],
    );
    let dataset = bq.get_dataset(&access("t"), "demo", "shop").await.unwrap();
    assert_eq!(dataset.location, "EU");
    assert_eq!(fake.seen.lock().unwrap().len(), 3);

    script(
        &fake,
        vec![(
            StatusCode::BAD_REQUEST,
            bigquery_error(
                400,
                "invalidQuery",
                "Syntax error: Unexpected end of script at [1:7]",
            ),
        )],
    );
    let err = bq.dry_run(&access("t"), &query()).await.unwrap_err();
    assert_eq!(err.kind.reason(), "invalidQuery");
    assert!(matches!(
        err.kind,
        WarehouseErrorKind::Upstream { status: 400, .. }
    ));
    assert_eq!(
        err.message,
        "Syntax error: Unexpected end of script at [1:7]"
    );
    assert_eq!(
        fake.seen.lock().unwrap().len(),
        4,
        "a refusal is not retried"
    );
}

#[tokio::test]
async fn upstream_reasons_pass_through_and_a_rejected_credential_is_not_a_401() {
    let (fake, url) = start_fake().await;
    let bq = warehouse(&url, Duration::from_secs(5), Duration::from_secs(1));
    script(
        &fake,
        vec![(
            StatusCode::FORBIDDEN,
            bigquery_error(403, "quotaExceeded", "Quota exceeded"),
        )],
    );
    let err = bq
        .get_table(&access("t"), &TableRef::new("p", "d", "t"))
        .await
        .unwrap_err();
    assert_eq!(err.kind.reason(), "quotaExceeded");

    script(
        &fake,
        vec![(
            StatusCode::UNAUTHORIZED,
            bigquery_error(401, "authError", "Invalid Credentials"),
        )],
    );
    let err = bq
        .get_table(&access("t"), &TableRef::new("p", "d", "t"))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        WarehouseErrorKind::Upstream {
            reason: "accessDenied",
            status: 403
        }
    );
    assert!(
        err.message.contains("credential.upstream"),
        "{}",
        err.message
    );

    // A body that is not BigQuery's (a proxy's page) still maps by status.
    script(
        &fake,
        vec![(StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))],
    );
    let err = bq
        .get_table(&access("t"), &TableRef::new("p", "d", "t"))
        .await
        .unwrap_err();
    assert_eq!(err.kind.reason(), "notFound");

    // A job that failed reports its own reason.
    script(
        &fake,
        vec![
            (StatusCode::OK, json!({"status": {"state": "RUNNING"}})),
            (
                StatusCode::BAD_REQUEST,
                bigquery_error(
                    400,
                    "bytesBilledLimitExceeded",
                    "Query exceeded limit for bytes billed: 10.",
                ),
            ),
            (
                StatusCode::OK,
                json!({"status": {"state": "DONE", "errorResult": {"reason": "bytesBilledLimitExceeded", "message": "Query exceeded limit for bytes billed: 10."}}}),
            ),
        ],
    );
    bq.start_query(&access("t"), "k2", &query()).await.unwrap();
    let QueryStatus::Failed(err) = bq
        .wait_query(&access("t"), "k2", Duration::ZERO)
        .await
        .unwrap()
    else {
        panic!("the job failed");
    };
    assert_eq!(err.kind.reason(), "bytesBilledLimitExceeded");
}

/// Issue: no retryable reason on a refusal. A reason this gateway does not
/// know is passed on as `invalid` (400), which no client retries; it was
/// `internalError` (500), which every official client retries.
#[tokio::test]
async fn an_unknown_reason_is_passed_on_as_one_no_client_retries() {
    let (fake, url) = start_fake().await;
    let bq = warehouse(&url, Duration::from_secs(5), Duration::from_secs(1));
    script(
        &fake,
        vec![(
            StatusCode::BAD_REQUEST,
            bigquery_error(400, "someReasonFromTheFuture", "Something new went wrong"),
        )],
    );
    let err = bq
        .get_table(&access("t"), &TableRef::new("p", "d", "t"))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        WarehouseErrorKind::Upstream {
            reason: "invalid",
            status: 400
        }
    );
    assert!(
        err.message.contains("someReasonFromTheFuture"),
        "{}",
        err.message
    );

    script(
        &fake,
        vec![
            (StatusCode::OK, json!({"status": {"state": "RUNNING"}})),
            (
                StatusCode::BAD_REQUEST,
                bigquery_error(400, "someReasonFromTheFuture", "It failed."),
            ),
            (
                StatusCode::OK,
                json!({"status": {"state": "DONE", "errorResult": {"reason": "someReasonFromTheFuture", "message": "It failed."}}}),
            ),
        ],
    );
    bq.start_query(&access("t"), "k3", &query()).await.unwrap();
    let QueryStatus::Failed(err) = bq
        .wait_query(&access("t"), "k3", Duration::ZERO)
        .await
        .unwrap()
    else {
        panic!("the job failed");
    };
    assert_eq!(err.kind.reason(), "invalid");
}

#[tokio::test]
async fn an_unreachable_or_slow_upstream_fails_within_the_deadline() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let bq = warehouse(&closed, Duration::from_secs(2), Duration::from_millis(300));
    let started = std::time::Instant::now();
    let err = bq.projects(&access("t")).await.unwrap_err();
    assert_eq!(err.kind, WarehouseErrorKind::Unavailable);
    assert!(
        err.message.contains("could not be reached"),
        "{}",
        err.message
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    let (fake, url) = start_fake().await;
    *fake.delay.lock().unwrap() = Duration::from_secs(30);
    let mut bq = warehouse(&url, Duration::from_millis(200), Duration::from_millis(300));
    // The per-call timeout is normally raised above the longest hold; set
    // it back for the test.
    bq.client = Client::new(&url, Duration::from_millis(200), bq.config.backoff).unwrap();
    let err = bq.projects(&access("t")).await.unwrap_err();
    assert_eq!(err.kind, WarehouseErrorKind::Unavailable);
    assert!(err.message.contains("timed out"), "{}", err.message);
}

#[test]
fn labels_follow_bigquerys_rules() {
    assert_eq!(
        label_value("Repo:Acme/Analytics:ref:refs/heads/main"),
        "repo_acme_analytics_ref_refs_heads_main"
    );
    let long = "x".repeat(100);
    let a = label_value(&format!("{long}a"));
    let b = label_value(&format!("{long}b"));
    assert_eq!(a.len(), 63);
    assert_ne!(a, b, "shortened values keep a hash of the whole");
    assert!(
        a.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    );
    assert_eq!(label_value("ÄBC"), "_bc");
    let keys = labels([("9run", "1"), ("Principal", "x")]);
    assert!(keys.contains_key("l9run") && keys.contains_key("principal"));
}

#[test]
fn names_that_could_change_the_path_are_refused() {
    for bad in ["", ".", "..", "a/b", "..%2f", "a?b", "a#b", "a b"] {
        assert!(segment(bad).is_err(), "{bad:?}");
    }
    assert!(segment("my-project.example:team").is_ok());
}

#[tokio::test]
async fn a_job_is_found_again_by_a_new_gateway_process() {
    let (fake, url) = start_fake().await;
    let access = access("ya29.job-token");
    let before = warehouse(&url, Duration::from_secs(5), Duration::from_secs(5));
    script(
        &fake,
        vec![(StatusCode::OK, json!({"status": {"state": "RUNNING"}}))],
    );
    before.start_query(&access, "k9", &query()).await.unwrap();
    drop(before);

    // A restarted gateway's warehouse knows nothing of the job…
    let after = warehouse(&url, Duration::from_secs(5), Duration::from_secs(5));
    let err = after
        .result_page(&access, "k9", 0, 10, 1 << 20)
        .await
        .unwrap_err();
    assert_eq!(err.kind, WarehouseErrorKind::NotFound);
    // …until the gateway's job record says where it runs.
    after.resume("k9", "demo");
    script(
        &fake,
        vec![(
            StatusCode::OK,
            json!({"totalRows": "1", "rows": [{"f": [{"v": "a"}]}]}),
        )],
    );
    let page = after
        .result_page(&access, "k9", 0, 10, 1 << 20)
        .await
        .unwrap();
    assert_eq!(page.total_rows, 1);
    let seen = fake.seen.lock().unwrap().clone();
    let last = seen.last().unwrap();
    assert_eq!(last.path, "/bigquery/v2/projects/demo/queries/sluice_k9");
    assert!(last.query.contains("location=US"), "{}", last.query);
    // A record that could not be a job is ignored, and nothing is sent.
    let sent = fake.seen.lock().unwrap().len();
    after.resume("../k", "demo");
    assert!(
        after
            .result_page(&access, "../k", 0, 1, 1 << 20)
            .await
            .is_err()
    );
    assert_eq!(fake.seen.lock().unwrap().len(), sent);

    // A recorded job BigQuery does not have (never started, or expired) is
    // gone, not an error forever: the gateway then ends it.
    after.resume("k10", "demo");
    script(
        &fake,
        vec![(
            StatusCode::NOT_FOUND,
            bigquery_error(404, "notFound", "Not found: Job demo:US.sluice_k10"),
        )],
    );
    let err = after
        .wait_query(&access, "k10", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind, WarehouseErrorKind::NotFound);
}
