//! Just-in-time grants and budgets over HTTP: a contractor asks for a
//! dataset, a reviewer approves, the grant ends on time or when revoked;
//! budgets refuse with quotaExceeded or send to review.

use std::time::Duration;

use serde_json::{Value, json};
use sluice_gateway::Config;

use super::harness::{TestGateway, assert_error, query_as};

/// `contractors` read nothing of their own; `proj.ds` may be granted to
/// them by one of `reviewers`, for at most an hour. `testers` have a
/// budget per CI run (`run_id`): 30,000 bytes (one `id` column of people
/// is 20,000), refused over it; `careful` testers go to review instead.
const GRANTED: &str = r#"
identity:
  development_issuer: { enabled: true }
policies:
  - name: contractors
    who: { groups: [contractors] }
    allow: { statements: [select] }
    projects: [proj]
    grants:
      - name: ds-access
        datasets: [proj.ds]
        reviewers: { groups: [reviewers] }
        max_duration: 1h
  - name: testers-read
    who: { groups: [testers] }
    allow: { read: ["proj"], statements: [select] }
    budgets:
      - name: per-run
        per: [run_id]
        bytes: 30000
        period: none
  - name: careful
    who: { groups: [careful] }
    allow: { read: ["proj"], statements: [select] }
    budgets:
      - name: careful-daily
        rows: 1
        over: review
        reviewers: { groups: [reviewers] }
approvals:
  sweep_interval_ms: 100
"#;

fn granted(config: &mut Config) {
    let granted = Config::parse(GRANTED, "grants test").unwrap();
    config.policy = granted.policy;
    config.approval_sweep = granted.approval_sweep;
}

async fn call(
    gateway: &TestGateway,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    gateway.call_as(token, method, path, body).await
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contractor_reads_a_dataset_only_under_an_approved_grant() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start_with(dir.path(), granted).await;
    let carol = gateway.token_for("carol", &["contractors"]);
    let alice = gateway.token_for("alice", &["reviewers"]);
    let sql = "SELECT COUNT(*) AS n FROM proj.ds.people";

    // No grant: refused, saying how to ask for one.
    let (status, body) = query_as(&gateway, &carol, sql).await;
    assert_error(status, &body, 403, "accessDenied");
    assert!(message(&body).contains("rule grants.ds-access"), "{body}");
    assert!(
        message(&body).contains("sluice access request --dataset proj.ds --for 1h"),
        "{body}"
    );

    // Requests the rule does not cover, or that are malformed, are refused.
    for (ask, code, reason, says) in [
        (
            json!({"datasets": ["proj.public"], "duration": "1h", "justification": "x"}),
            403,
            "accessDenied",
            "grants may be requested for: proj.ds",
        ),
        (
            json!({"datasets": ["proj.ds"], "duration": "2h", "justification": "x"}),
            400,
            "invalid",
            "at most 3600s",
        ),
        (
            json!({"datasets": ["proj.ds"], "duration": "1h"}),
            400,
            "invalid",
            "justification",
        ),
        (
            json!({"datasets": ["proj.*"], "duration": "1h", "justification": "x"}),
            400,
            "invalid",
            "without wildcards",
        ),
        (
            json!({"duration": "1h", "justification": "x"}),
            400,
            "invalid",
            "Name the datasets",
        ),
        (
            json!({"datasets": ["proj.ds"], "duration": "soon", "justification": "x"}),
            400,
            "invalid",
            "duration",
        ),
        (
            json!({"datasets": ["proj.ds"], "duration": "1h", "justification": "x", "admin": true}),
            400,
            "invalid",
            "unknown field",
        ),
    ] {
        let (status, body) = call(
            &gateway,
            &carol,
            "POST",
            "/sluice/v1/access-requests",
            Some(ask.clone()),
        )
        .await;
        assert_error(status, &body, code, reason);
        assert!(message(&body).contains(says), "{ask} → {body}");
    }

    // A proper request waits for a reviewer.
    let ask = json!({"datasets": ["proj.ds"], "duration": "1h", "justification": "incident 42"});
    let (status, request) = call(
        &gateway,
        &carol,
        "POST",
        "/sluice/v1/access-requests",
        Some(ask),
    )
    .await;
    assert_eq!(status, 200, "{request}");
    assert_eq!(request["state"], "PENDING");
    assert_eq!(request["kind"], "ACCESS");
    assert_eq!(request["datasets"], json!(["proj.ds"]));
    assert_eq!(request["duration"], "3600s");
    assert_eq!(request["rule"], "ds-access");
    let id = request["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("acc_"), "{id}");

    // Reviewers see it beside queries; the requester cannot approve it.
    let (_, listed) = call(
        &gateway,
        &alice,
        "GET",
        "/sluice/v1/approvals?state=PENDING",
        None,
    )
    .await;
    assert_eq!(listed["approvals"][0]["id"], id.as_str(), "{listed}");
    let (_, mine) = call(&gateway, &carol, "GET", "/sluice/v1/access-requests", None).await;
    assert_eq!(mine["accessRequests"][0]["id"], id.as_str(), "{mine}");
    let self_approver = gateway.token_for("carol", &["contractors", "reviewers"]);
    let (status, body) = call(
        &gateway,
        &self_approver,
        "POST",
        &format!("/sluice/v1/access-requests/{id}:approve"),
        Some(json!({})),
    )
    .await;
    assert_error(status, &body, 403, "accessDenied");
    assert!(message(&body).contains("approvals.self"), "{body}");
    // Still nothing to read while it waits.
    let (status, _) = query_as(&gateway, &carol, sql).await;
    assert_eq!(status, 403);

    // Approved: the grant is in force and the query runs.
    let (status, body) = call(
        &gateway,
        &alice,
        "POST",
        &format!("/sluice/v1/approvals/{id}:approve"),
        Some(json!({"reason": "ok for the incident"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "APPROVED", "{body}");
    let (status, body) = query_as(&gateway, &carol, sql).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"][0]["f"][0]["v"], "2500", "{body}");
    // tables.get of a granted table works too; another dataset does not.
    let (status, _) = call(
        &gateway,
        &carol,
        "GET",
        "/bigquery/v2/projects/proj/datasets/ds/tables/people",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = query_as(&gateway, &carol, "SELECT * FROM proj.public.notes").await;
    assert_error(status, &body, 403, "accessDenied");

    let (_, grants) = call(&gateway, &carol, "GET", "/sluice/v1/grants", None).await;
    assert_eq!(grants["grants"][0]["id"], id.as_str(), "{grants}");
    assert_eq!(grants["grants"][0]["state"], "ACTIVE");
    assert_eq!(grants["grants"][0]["approvedBy"], "alice");

    // Another principal's grant is not visible, nor revocable.
    let dave = gateway.token_for("dave", &["contractors"]);
    let (_, theirs) = call(&gateway, &dave, "GET", "/sluice/v1/grants", None).await;
    assert_eq!(theirs["grants"], json!([]), "{theirs}");
    let (status, body) = call(
        &gateway,
        &dave,
        "POST",
        &format!("/sluice/v1/grants/{id}:revoke"),
        Some(json!({})),
    )
    .await;
    assert_error(status, &body, 404, "notFound");
    let (status, _) = query_as(&gateway, &dave, sql).await;
    assert_eq!(status, 403, "a grant is its holder's alone");

    // Revoked: refused again at once.
    let (status, body) = call(
        &gateway,
        &carol,
        "POST",
        &format!("/sluice/v1/grants/{id}:revoke"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "REVOKED");
    let (status, body) = query_as(&gateway, &carol, sql).await;
    assert_error(status, &body, 403, "accessDenied");
    let (status, body) = call(
        &gateway,
        &carol,
        "POST",
        &format!("/sluice/v1/grants/{id}:revoke"),
        Some(json!({})),
    )
    .await;
    assert_error(status, &body, 409, "duplicate");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_ends_on_time_and_a_restart_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start_with(dir.path(), granted).await;
    let carol = gateway.token_for("carol", &["contractors"]);
    let alice = gateway.token_for("alice", &["reviewers"]);
    let sql = "SELECT COUNT(*) AS n FROM proj.ds.people";
    let ask = json!({"datasets": ["proj.ds"], "duration": "3s", "justification": "quick look"});
    let (_, request) = call(
        &gateway,
        &carol,
        "POST",
        "/sluice/v1/access-requests",
        Some(ask),
    )
    .await;
    let id = request["id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &gateway,
        &alice,
        "POST",
        &format!("/sluice/v1/access-requests/{id}:approve"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200);
    // A restart loses nothing: the grant is in the store.
    gateway.stop().await;
    let gateway = TestGateway::start_with(dir.path(), granted).await;
    let (status, body) = query_as(&gateway, &carol, sql).await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (status, body) = query_as(&gateway, &carol, sql).await;
    assert_error(status, &body, 403, "accessDenied");
    assert!(message(&body).contains("grants.ds-access"), "{body}");
    let (_, all) = call(&gateway, &carol, "GET", "/sluice/v1/grants?state=ALL", None).await;
    assert_eq!(all["grants"][0]["state"], "EXPIRED", "{all}");
    let (_, active) = call(&gateway, &carol, "GET", "/sluice/v1/grants", None).await;
    assert_eq!(active["grants"], json!([]));

    // A denied request grants nothing; a cancelled one neither.
    let ask = json!({"datasets": ["proj.ds"], "duration": "10m", "justification": "again"});
    let (_, request) = call(
        &gateway,
        &carol,
        "POST",
        "/sluice/v1/access-requests",
        Some(ask.clone()),
    )
    .await;
    let id = request["id"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &gateway,
        &alice,
        "POST",
        &format!("/sluice/v1/access-requests/{id}:deny"),
        Some(json!({"reason": "not now"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "DENIED");
    let (_, request) = call(
        &gateway,
        &carol,
        "POST",
        "/sluice/v1/access-requests",
        Some(ask),
    )
    .await;
    let id = request["id"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &gateway,
        &alice,
        "POST",
        &format!("/sluice/v1/access-requests/{id}:cancel"),
        Some(json!({})),
    )
    .await;
    assert_error(status, &body, 403, "accessDenied");
    let (status, body) = call(
        &gateway,
        &carol,
        "POST",
        &format!("/sluice/v1/access-requests/{id}:cancel"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "WITHDRAWN");
    let (status, _) = query_as(&gateway, &carol, sql).await;
    assert_eq!(status, 403);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ci_run_over_its_budget_is_refused_with_quota_exceeded() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start_with(dir.path(), granted).await;
    let run_7 = gateway.token_with("ci-bot", &["testers"], &[("run_id", "7")]);
    let sql = "SELECT SUM(id) AS s FROM proj.ds.people";
    let (status, body) = query_as(&gateway, &run_7, sql).await;
    assert_eq!(status, 200, "{body}");
    // 20,000 spent; 20,000 more would pass 30,000.
    let (status, body) = query_as(&gateway, &run_7, sql).await;
    assert_error(status, &body, 403, "quotaExceeded");
    let text = message(&body);
    assert!(text.contains("budget per-run"), "{text}");
    assert!(text.contains("this CI run (run_id)"), "{text}");
    assert!(text.contains("does not reset"), "{text}");
    // A small query still fits; another run has its own budget.
    let (status, body) = query_as(&gateway, &run_7, "SELECT 1 AS one").await;
    assert_eq!(status, 200, "{body}");
    let run_8 = gateway.token_with("ci-bot", &["testers"], &[("run_id", "8")]);
    let (status, body) = query_as(&gateway, &run_8, sql).await;
    assert_eq!(status, 200, "{body}");
    // The count survives a restart.
    gateway.stop().await;
    let gateway = TestGateway::start_with(dir.path(), granted).await;
    let (status, body) = query_as(&gateway, &run_7, sql).await;
    assert_error(status, &body, 403, "quotaExceeded");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_can_send_queries_to_review_instead() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start_with(dir.path(), granted).await;
    let carl = gateway.token_for("carl", &["careful"]);
    let (status, body) = query_as(&gateway, &carl, "SELECT 1 AS one").await;
    assert_eq!(status, 200, "{body}");
    // One row returned today: the next query waits for a reviewer.
    let (status, body) = query_as(&gateway, &carl, "SELECT 2 AS two").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["jobComplete"], false, "{body}");
    let id = body["jobReference"]["jobId"].as_str().unwrap().to_owned();
    let alice = gateway.token_for("alice", &["reviewers"]);
    let (_, pending) = call(
        &gateway,
        &alice,
        "GET",
        "/sluice/v1/approvals?state=PENDING",
        None,
    )
    .await;
    let approval = &pending["approvals"][0];
    assert_eq!(approval["rule"], "careful-daily", "{pending}");
    assert!(
        approval["why"]
            .as_str()
            .unwrap()
            .contains("over budget careful-daily"),
        "{approval}"
    );
    let approval_id = approval["id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &gateway,
        &alice,
        "POST",
        &format!("/sluice/v1/approvals/{approval_id}:approve"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, page) = gateway
            .call_as(
                &carl,
                "GET",
                &format!("/bigquery/v2/projects/proj/queries/{id}?timeoutMs=1000"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        if page["jobComplete"] == true {
            assert_eq!(page["rows"][0]["f"][0]["v"], "2", "{page}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
    }
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_to_the_access_and_approval_apis_are_refused_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start_with(dir.path(), granted).await;
    let carol = format!("Bearer {}", gateway.token_for("carol", &["contractors"]));
    let auth = [("authorization", carol.as_str())];
    let huge = vec![b'a'; 2 << 20];
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        ("POST", "/sluice/v1/access-requests", huge.clone(), 413),
        ("POST", "/sluice/v1/access-requests", deep.clone().into_bytes(), 413),
        ("POST", "/sluice/v1/access-requests", b"\xff\xfe{".to_vec(), 400),
        ("POST", "/sluice/v1/access-requests", b"{\"datasets\": [\"\\u0000.\\ud800\"], \"duration\": \"1h\", \"justification\": \"x\"}".to_vec(), 400),
        ("POST", "/sluice/v1/access-requests", br#"{"datasets": ["proj.ds"], "duration": "99999999999999999999h", "justification": "x"}"#.to_vec(), 400),
        ("POST", "/sluice/v1/approvals/acc_x:approve", huge, 413),
        ("POST", "/sluice/v1/approvals/acc_x:approve", b"[1]".to_vec(), 400),
        ("GET", "/sluice/v1/grants?state=%FF%00", Vec::new(), 400),
        ("POST", "/sluice/v1/grants/..%2F..%2Fetc:revoke", Vec::new(), 404),
        ("DELETE", "/sluice/v1/access-requests", Vec::new(), 404),
    ];
    for (method, path, body, code) in cases {
        let (status, answer) = gateway.call(method, path, Some(&body), &auth).await;
        assert_eq!(status, code, "{method} {path}: {answer}");
        assert!(
            answer["error"]["errors"][0]["reason"].is_string(),
            "{answer}"
        );
    }
    // Still serving, and nothing was opened by the refused requests.
    let (status, list) = gateway
        .call("GET", "/sluice/v1/access-requests?state=ALL", None, &auth)
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["accessRequests"], json!([]));
    gateway.stop().await;
}
