//! Hostile SQL against a gateway whose handlers run on Tokio worker
//! threads with their default 2 MiB stacks, as `sluice serve` runs them.

use super::harness::{TestGateway, assert_error};
use serde_json::json;

/// Regression: a `jobs.query` of `SELECT 1+1+…` with 500,000 operators,
/// sent with a token of a group no policy names, overflowed a worker's
/// stack and aborted the whole process; a 150-byte text made the parser
/// backtrack for minutes. Both are now refused, naming the limit, and the
/// gateway goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_chain_of_half_a_million_is_refused_and_the_gateway_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_with(dir.path(), |c| c.max_body_bytes = 4 << 20).await;
    let stranger = gw.token_for("stranger", &["no-policy-names-this-group"]);
    let bearer = format!("Bearer {stranger}");
    let hostile = [
        (format!("SELECT 1{}", "+1".repeat(500_000)), "max_depth"),
        (
            format!("SELECT x{}", " IS NULL".repeat(120_000)),
            "max_depth",
        ),
        (
            format!("SELECT 1{}", " UNION ALL SELECT 1".repeat(50_000)),
            "max_depth",
        ),
        // Short texts on which the parser backtracks, doubling its work per
        // level: each held a worker for longer than any client waits.
        (
            format!("SELECT SAFE{}[b.f(1)", ".li".repeat(40)),
            "max_parse_work",
        ),
        (
            format!("SELECT {}1 +", "CAST(".repeat(40)),
            "max_parse_work",
        ),
    ];
    for (sql, limit) in hostile {
        let body = json!({"query": sql, "useLegacySql": false}).to_string();
        let (status, reply) = gw
            .call(
                "POST",
                "/bigquery/v2/projects/proj/queries",
                Some(body.as_bytes()),
                &[("Authorization", &bearer)],
            )
            .await;
        assert_error(status, &reply, 400, "invalidQuery");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("analysis.limits.{limit}")),
            "{message}"
        );
    }
    let (status, reply) = gw
        .post(
            "/bigquery/v2/projects/proj/queries",
            &json!({"query": "SELECT 1 + 1 AS two", "useLegacySql": false}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["rows"][0]["f"][0]["v"], "2");
    gw.stop().await;
}
