//! Queries that wait for a reviewer: parked PENDING, approved, denied,
//! expired, withdrawn; bound to their job; durable across a restart.

use std::time::Duration;

use serde_json::{Value, json};
use sluice_gateway::Config;

use super::harness::{TestGateway, assert_error};

/// `testers` may read `proj`; any query touching `proj.ds.people` needs
/// one approval from `reviewers`, and one of `proj.public` two.
const REVIEWED: &str = r#"
identity:
  development_issuer: { enabled: true }
policies:
  - name: testers-read
    who: { groups: [testers] }
    allow: { read: ["proj"], statements: [select] }
    approvals:
      - name: people
        when: { tables: ["proj.ds.people"] }
        reviewers: { groups: [reviewers] }
        timeout: 15m
      - name: public
        when: { datasets: ["proj.public"] }
        reviewers: { groups: [reviewers] }
        min_approvals: 2
        justification_required: true
approvals:
  sweep_interval_ms: 100
"#;

fn reviewed(timeout: &str) -> impl FnOnce(&mut Config) {
    let yaml = REVIEWED.replace("timeout: 15m", &format!("timeout: {timeout}"));
    move |config: &mut Config| {
        let reviewed = Config::parse(&yaml, "approvals test").unwrap();
        config.policy = reviewed.policy;
        config.approval_sweep = reviewed.approval_sweep;
    }
}

async fn insert(gateway: &TestGateway, sql: &str) -> Value {
    let body = json!({"configuration": {"query": {"query": sql, "useLegacySql": false}}});
    let (status, job) = gateway
        .post("/bigquery/v2/projects/proj/jobs", &body.to_string())
        .await;
    assert_eq!(status, 200, "{job}");
    job
}

fn job_id(job: &Value) -> String {
    job["jobReference"]["jobId"].as_str().unwrap().to_owned()
}

/// The approval id a waiting job's status names.
fn approval_id(job: &Value) -> String {
    let message = job["status"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{job}"));
    let start = message.find("apr_").unwrap_or_else(|| panic!("{message}"));
    message[start..]
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap()
        .to_owned()
}

async fn results(gateway: &TestGateway, id: &str, timeout_ms: u64) -> (u16, Value) {
    gateway
        .get(&format!(
            "/bigquery/v2/projects/proj/queries/{id}?timeoutMs={timeout_ms}"
        ))
        .await
}

async fn vote(
    gateway: &TestGateway,
    token: &str,
    approval: &str,
    action: &str,
    reason: &str,
) -> (u16, Value) {
    gateway
        .call_as(
            token,
            "POST",
            &format!("/sluice/v1/approvals/{approval}:{action}"),
            Some(json!({"reason": reason})),
        )
        .await
}

/// Polls getQueryResults until the job completes (or `within` passes).
async fn until_complete(gateway: &TestGateway, id: &str, within: Duration) -> (u16, Value) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let (status, body) = results(gateway, id, 1000).await;
        if status != 200 || body["jobComplete"] == true || std::time::Instant::now() > deadline {
            return (status, body);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_waits_for_a_reviewer_and_runs_once_approved() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start_with(dir.path(), reviewed("15m")).await;
    let job = insert(&gateway, "SELECT COUNT(*) AS n FROM proj.ds.people").await;
    assert_eq!(job["status"]["state"], "PENDING", "{job}");
    let message = job["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("waiting for approval by reviewers"),
        "{message}"
    );
    assert!(message.contains("rule people"), "{message}");
    let id = job_id(&job);
    let approval = approval_id(&job);

    // The caller's client waits: the job stays PENDING.
    let (status, body) = results(&gateway, &id, 300).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["jobComplete"], false, "{body}");

    // The reviewer sees it, with what was asked and why.
    let alice = gateway.token_for("alice", &["reviewers"]);
    let (status, list) = gateway
        .call_as(&alice, "GET", "/sluice/v1/approvals?state=PENDING", None)
        .await;
    assert_eq!(status, 200, "{list}");
    let listed = &list["approvals"][0];
    assert_eq!(listed["id"], approval.as_str(), "{list}");
    assert_eq!(listed["sql"], "SELECT COUNT(*) AS n FROM proj.ds.people");
    assert_eq!(listed["rule"], "people");
    assert_eq!(listed["principal"], "tester");
    assert_eq!(listed["jobReference"]["jobId"], id.as_str());
    assert!(
        listed["why"].as_str().unwrap().contains("proj.ds.people"),
        "{listed}"
    );

    // Neither the requester (even in the reviewers group) nor a stranger
    // may decide.
    let same_subject = gateway.token_for("tester", &["testers", "reviewers"]);
    let (status, body) = vote(&gateway, &same_subject, &approval, "approve", "mine").await;
    assert_error(status, &body, 403, "accessDenied");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("approvals.self"),
        "{body}"
    );
    let stranger = gateway.token_for("mallory", &["testers"]);
    let (status, body) = vote(&gateway, &stranger, &approval, "approve", "").await;
    assert_error(status, &body, 404, "notFound");

    // Approved: the job runs and the waiting poll gets its rows.
    let (status, body) = vote(&gateway, &alice, &approval, "approve", "fine").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "APPROVED", "{body}");
    assert_eq!(body["votes"][0]["reviewer"], "alice");
    assert_eq!(body["votes"][0]["decision"], "APPROVE");
    let (status, body) = until_complete(&gateway, &id, Duration::from_secs(20)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["jobComplete"], true, "{body}");
    assert_eq!(body["rows"][0]["f"][0]["v"], "2500", "{body}");

    // Used once: a second vote finds it closed.
    let bob = gateway.token_for("bob", &["reviewers"]);
    let (status, body) = vote(&gateway, &bob, &approval, "approve", "").await;
    assert_error(status, &body, 409, "duplicate");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_query_ends_refused_with_the_reviewers_reason() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start_with(dir.path(), reviewed("15m")).await;
    let job = insert(&gateway, "SELECT name FROM proj.ds.people").await;
    let id = job_id(&job);
    let alice = gateway.token_for("alice", &["reviewers"]);
    // A deny needs a reason.
    let (status, body) = vote(&gateway, &alice, &approval_id(&job), "deny", " ").await;
    assert_error(status, &body, 400, "invalid");
    let (status, body) = vote(
        &gateway,
        &alice,
        &approval_id(&job),
        "deny",
        "names are private",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "DENIED");
    let (status, body) = results(&gateway, &id, 2000).await;
    assert_error(status, &body, 403, "accessDenied");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("alice denied this query: names are private"),
        "{message}"
    );
    assert!(message.contains("approvals.people"), "{message}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_nobody_approves_in_time_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start_with(dir.path(), reviewed("1s")).await;
    let job = insert(&gateway, "SELECT id FROM proj.ds.people").await;
    let id = job_id(&job);
    let approval = approval_id(&job);
    let (status, body) = until_complete(&gateway, &id, Duration::from_secs(10)).await;
    assert_error(status, &body, 403, "accessDenied");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no reviewer (group:reviewers) approved this query"),
        "{body}"
    );
    let alice = gateway.token_for("alice", &["reviewers"]);
    let (_, shown) = gateway
        .call_as(
            &alice,
            "GET",
            &format!("/sluice/v1/approvals/{approval}"),
            None,
        )
        .await;
    assert_eq!(shown["state"], "EXPIRED", "{shown}");
    assert_eq!(shown["closedBy"], "timeout");
    // Too late to approve.
    let (status, body) = vote(&gateway, &alice, &approval, "approve", "").await;
    assert_error(status, &body, 409, "duplicate");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_waiting_job_withdraws_its_request() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start_with(dir.path(), reviewed("15m")).await;
    let job = insert(&gateway, "SELECT id FROM proj.ds.people").await;
    let id = job_id(&job);
    let (status, body) = gateway
        .post(&format!("/bigquery/v2/projects/proj/jobs/{id}/cancel"), "")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["job"]["status"]["state"], "DONE");
    let alice = gateway.token_for("alice", &["reviewers"]);
    let (_, shown) = gateway
        .call_as(
            &alice,
            "GET",
            &format!("/sluice/v1/approvals/{}", approval_id(&job)),
            None,
        )
        .await;
    assert_eq!(shown["state"], "WITHDRAWN", "{shown}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_needs_distinct_reviewers_each_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start_with(dir.path(), reviewed("15m")).await;
    let job = insert(&gateway, "SELECT note FROM proj.public.notes ORDER BY id").await;
    let id = job_id(&job);
    let approval = approval_id(&job);
    let alice = gateway.token_for("alice", &["reviewers"]);
    let bob = gateway.token_for("bob", &["reviewers"]);
    let (status, body) = vote(&gateway, &alice, &approval, "approve", "").await;
    assert_error(status, &body, 400, "invalid");
    let (status, body) = vote(&gateway, &alice, &approval, "approve", "ok").await;
    assert_eq!((status, &body["state"]), (200, &json!("PENDING")), "{body}");
    let (status, body) = vote(&gateway, &alice, &approval, "approve", "again").await;
    assert_error(status, &body, 409, "duplicate");
    let (status, body) = results(&gateway, &id, 200).await;
    assert_eq!(
        (status, &body["jobComplete"]),
        (200, &json!(false)),
        "{body}"
    );
    let (status, body) = vote(&gateway, &bob, &approval, "approve", "ok too").await;
    assert_eq!(
        (status, &body["state"]),
        (200, &json!("APPROVED")),
        "{body}"
    );
    let (_, body) = until_complete(&gateway, &id, Duration::from_secs(20)).await;
    assert_eq!(body["rows"][0]["f"][0]["v"], "hello", "{body}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_the_wait_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start_with(dir.path(), reviewed("15m")).await;
    let job = insert(
        &gateway,
        "SELECT COUNT(*) FROM proj.ds.people WHERE id <= 10",
    )
    .await;
    let id = job_id(&job);
    let approval = approval_id(&job);
    gateway.stop().await;

    let gateway = TestGateway::start_with(dir.path(), reviewed("15m")).await;
    let (status, body) = results(&gateway, &id, 200).await;
    assert_eq!(
        (status, &body["jobComplete"]),
        (200, &json!(false)),
        "{body}"
    );
    let alice = gateway.token_for("alice", &["reviewers"]);
    let (status, body) = vote(&gateway, &alice, &approval, "approve", "").await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = until_complete(&gateway, &id, Duration::from_secs(20)).await;
    assert_eq!(body["rows"][0]["f"][0]["v"], "10", "{body}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_a_reviewed_table_are_not_listed_around_the_review() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start_with(dir.path(), reviewed("15m")).await;
    let (status, body) = gateway
        .get("/bigquery/v2/projects/proj/datasets/ds/tables/people/data")
        .await;
    assert_error(status, &body, 403, "accessDenied");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("approvals.people"),
        "{body}"
    );
    // Its schema may still be read, and it is still listed.
    let (status, body) = gateway
        .get("/bigquery/v2/projects/proj/datasets/ds/tables/people")
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = gateway
        .get("/bigquery/v2/projects/proj/datasets/ds/tables")
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("people"), "{body}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_approvals_api_refuses_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start_with(dir.path(), reviewed("15m")).await;
    let alice = gateway.token_for("alice", &["reviewers"]);
    let (status, body) = gateway
        .call(
            "GET",
            "/sluice/v1/approvals",
            None,
            &[("Authorization", "Bearer nope")],
        )
        .await;
    assert_error(status, &body, 401, "unauthorized");
    let (status, body) = gateway
        .call_as(&alice, "GET", "/sluice/v1/approvals?state=MAYBE", None)
        .await;
    assert_error(status, &body, 400, "invalid");
    let (status, body) = gateway
        .call_as(&alice, "POST", "/sluice/v1/approvals/apr_x:explode", None)
        .await;
    assert_error(status, &body, 404, "notFound");
    let (status, body) = gateway
        .call_as(
            &alice,
            "POST",
            "/sluice/v1/approvals/apr_unknown:approve",
            None,
        )
        .await;
    assert_error(status, &body, 404, "notFound");
    let job = insert(&gateway, "SELECT id FROM proj.ds.people").await;
    let bearer = format!("Bearer {alice}");
    let (status, body) = gateway
        .call(
            "POST",
            &format!("/sluice/v1/approvals/{}:approve", approval_id(&job)),
            Some(b"{\"reason\": "),
            &[("Authorization", &bearer)],
        )
        .await;
    assert_error(status, &body, 400, "invalid");
    gateway.stop().await;
}

type Received = tokio::sync::mpsc::UnboundedReceiver<(String, String, String)>;

/// The next webhook received: timestamp, signature and body.
async fn next(received: &mut Received) -> (String, String, String) {
    tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("a notification within 10 s")
        .unwrap()
}

/// A receiver of webhooks: every POST's signature headers and body.
async fn webhook_receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, String, String)>,
) {
    use axum::http::HeaderMap;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let _ = tx.send((
                    header("x-sluice-timestamp"),
                    header("x-sluice-signature"),
                    body,
                ));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_are_told_when_a_request_opens_and_closes_by_a_signed_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let (url, mut received) = webhook_receiver().await;
    let secret = "webhook-secret";
    let gateway = TestGateway::start_with(dir.path(), |config| {
        reviewed("15m")(config);
        config.notify = vec![sluice_gateway::NotifyTarget::Webhook {
            url,
            secret: zeroize::Zeroizing::new(secret.into()),
        }];
    })
    .await;
    let job = insert(&gateway, "SELECT id FROM proj.ds.people").await;
    let approval = approval_id(&job);
    let (timestamp, signature, body) = next(&mut received).await;
    assert_eq!(
        signature,
        format!(
            "sha256={}",
            sluice_gateway::sign_notification(secret, &timestamp, &body)
        )
    );
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["event"], "approval.opened", "{event}");
    assert_eq!(event["approval"]["id"], approval.as_str());
    assert_eq!(event["approval"]["sql"], "SELECT id FROM proj.ds.people");

    let alice = gateway.token_for("alice", &["reviewers"]);
    let (status, _) = vote(&gateway, &alice, &approval, "deny", "not today").await;
    assert_eq!(status, 200);
    let (_, _, body) = next(&mut received).await;
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["event"], "approval.closed", "{event}");
    assert_eq!(event["approval"]["state"], "DENIED");
    assert_eq!(event["approval"]["reason"], "not today");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_webhook_holds_up_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let gateway = TestGateway::start_with(dir.path(), |config| {
        reviewed("15m")(config);
        config.notify = vec![sluice_gateway::NotifyTarget::Webhook {
            url: format!("http://127.0.0.1:{port}/hook"),
            secret: zeroize::Zeroizing::new("s".into()),
        }];
    })
    .await;
    let started = std::time::Instant::now();
    let job = insert(&gateway, "SELECT COUNT(*) FROM proj.ds.people").await;
    let alice = gateway.token_for("alice", &["reviewers"]);
    let (status, body) = vote(&gateway, &alice, &approval_id(&job), "approve", "").await;
    assert_eq!(
        (status, &body["state"]),
        (200, &json!("APPROVED")),
        "{body}"
    );
    let (_, body) = until_complete(&gateway, &job_id(&job), Duration::from_secs(20)).await;
    assert_eq!(body["rows"][0]["f"][0]["v"], "2500", "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    gateway.stop().await;
}
