//! The MCP server at `/mcp`, spoken to raw: tool calls go through the
//! same pipeline as the REST API (policy, guardrails, row limits), a
//! caller without a valid token gets 401 with the protected-resource
//! metadata, and a bounded fuzz of JSON-RPC bodies never takes the gateway
//! down or answers 5xx.

use std::time::Duration;

use serde_json::{Value, json};

use super::harness::TestGateway;

const MCP: &str = "/mcp";
const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");

/// One JSON-RPC request, over the 2025-11-25 revision (no `_meta` needed).
async fn rpc(gw: &TestGateway, token: &str, method: &str, params: Value) -> (u16, Value) {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).to_string();
    let bearer = format!("Bearer {token}");
    let (status, bytes) = gw
        .raw(
            "POST",
            MCP,
            Some(body.as_bytes()),
            &[
                ACCEPT,
                ("Authorization", &bearer),
                ("MCP-Protocol-Version", "2025-11-25"),
            ],
        )
        .await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn tool(gw: &TestGateway, token: &str, name: &str, arguments: Value) -> Value {
    let (status, reply) = rpc(
        gw,
        token,
        "tools/call",
        json!({"name": name, "arguments": arguments}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    reply["result"].clone()
}

fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_are_decided_by_the_same_policy_as_the_rest_api() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let token = gw.token.clone();

    let (status, listed) = rpc(&gw, &token, "tools/list", json!({})).await;
    assert_eq!(status, 200, "{listed}");
    assert!(listed["result"]["tools"].as_array().unwrap().len() >= 13);

    let rows = tool(
        &gw,
        &token,
        "execute_sql",
        json!({"projectId": "proj", "query": "SELECT id, name FROM `proj.ds.people` WHERE id <= 3 ORDER BY id"}),
    )
    .await;
    assert_eq!(rows["isError"], false, "{rows}");
    let content = &rows["structuredContent"];
    assert_eq!(
        content["rows"][2],
        json!({"id": "3", "name": "person \"3\""})
    );

    // A guardrail, for the REST API and the tool alike.
    let drop = tool(
        &gw,
        &token,
        "execute_sql",
        json!({"projectId": "proj", "query": "DROP TABLE `proj.ds.people`"}),
    )
    .await;
    assert_eq!(drop["isError"], true);
    assert!(text(&drop).contains("guardrails.deny.drop"), "{drop}");

    // A table the caller's policy does not let it read.
    let outsider = gw.token_for("o", &["outsiders"]);
    let refused = tool(
        &gw,
        &outsider,
        "execute_sql",
        json!({"projectId": "proj", "query": "SELECT name FROM `proj.ds.people`"}),
    )
    .await;
    assert_eq!(refused["isError"], true);
    assert!(text(&refused).contains("accessDenied"), "{refused}");

    // The policy's max_rows holds for a tool as for the REST API: a
    // larger result is refused whole, naming the limit.
    let capped = tool(
        &gw,
        &outsider,
        "execute_sql",
        json!({"projectId": "proj", "query": "SELECT note FROM `proj.public.notes`"}),
    )
    .await;
    assert_eq!(capped["isError"], true, "{capped}");
    assert!(text(&capped).contains("limits.max_rows"), "{capped}");
    let one = tool(
        &gw,
        &outsider,
        "execute_sql",
        json!({"projectId": "proj", "query": "SELECT note FROM `proj.public.notes` WHERE id = 1"}),
    )
    .await;
    assert_eq!(
        one["structuredContent"]["rows"],
        json!([{"note": "hello"}]),
        "{one}"
    );

    // Missing and ill-typed arguments are tool errors that say so.
    let missing = tool(&gw, &token, "execute_sql", json!({"projectId": "proj"})).await;
    assert!(text(&missing).contains("query is required"), "{missing}");
    let typed = tool(
        &gw,
        &token,
        "get_query_results",
        json!({"projectId": "proj", "jobId": "x", "maxResults": "lots"}),
    )
    .await;
    assert!(text(&typed).contains("maxResults"), "{typed}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_token_the_answer_is_401_naming_the_resource_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    for token in ["", "Bearer not.a.token"] {
        let mut headers = vec![ACCEPT];
        headers.push(("Authorization", token));
        let response = gw.response_text("POST", MCP, &headers).await;
        assert!(response.starts_with("HTTP/1.1 401"), "{response}");
        let challenge = response
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("www-authenticate:"))
            .unwrap_or_default();
        assert!(
            challenge.contains("resource_metadata=\"http://")
                && challenge.contains("/.well-known/oauth-protected-resource/mcp\""),
            "{challenge}"
        );
    }
    let (status, metadata) = gw.get("/.well-known/oauth-protected-resource/mcp").await;
    assert_eq!(status, 200);
    assert!(metadata["resource"].as_str().unwrap().ends_with("/mcp"));
    assert!(
        !metadata["authorization_servers"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    gw.stop().await;
}

/// What the fuzz splices in.
const DICTIONARY: &[&[u8]] = &[
    b"\"tools/call\"",
    b"\"tools/list\"",
    b"\"initialize\"",
    b"\"server/discover\"",
    b"\"execute_sql\"",
    b"\"get_query_results\"",
    b"\"wait_for_approval\"",
    b"\"request_access\"",
    b"\"get_table_info\"",
    b"\"pageToken\"",
    b"\"startIndex\"",
    b"\"../../..\"",
    b"\"%2e%2e%2f\"",
    b"\"DROP TABLE proj.ds.people\"",
    b"18446744073709551616",
    b"-1",
    b"null",
    b"{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\"}}",
];

const SEEDS: &[&str] = &[
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#,
    r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"execute_sql","arguments":{"projectId":"proj","query":"SELECT id FROM `proj.ds.people` LIMIT 2"}}}"#,
    r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_query_results","arguments":{"projectId":"proj","jobId":"j","pageToken":"o5","maxResults":2}}}"#,
    r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"get_table_info","arguments":{"projectId":"proj","datasetId":"ds","tableId":"people"}}}"#,
    r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"estimate_query","arguments":{"projectId":"proj","query":"SELECT 1"}}}"#,
    r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"wait_for_approval","arguments":{"projectId":"proj","jobId":"j","timeoutSeconds":0}}}"#,
    r#"{"jsonrpc":"2.0","id":7,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"f","version":"1"}}}"#,
    r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
];

#[test]
fn fuzzed_json_rpc_bodies_never_answer_5xx_nor_stop_the_gateway() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = runtime.block_on(TestGateway::start_with(dir.path(), |c| {
        c.max_hold = Duration::from_secs(1);
    }));
    let seeds: Vec<Vec<u8>> = SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect();
    let bearer = format!("Bearer {}", gw.token);
    sluice_fuzz::run(
        "MCP JSON-RPC bodies",
        &seeds,
        &[sluice_fuzz::JSON_PUNCTUATION, DICTIONARY].concat(),
        Duration::from_secs(5),
        |input| {
            let version = match input.len() % 3 {
                0 => "2026-07-28",
                1 => "2025-11-25",
                _ => "2025-03-26",
            };
            let (status, bytes) = runtime.block_on(gw.raw(
                "POST",
                MCP,
                Some(input),
                &[
                    ACCEPT,
                    ("Authorization", &bearer),
                    ("MCP-Protocol-Version", version),
                ],
            ));
            assert!(
                status < 500,
                "{status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        },
    );
    let (status, listed) = runtime.block_on(rpc(&gw, &gw.token, "tools/list", json!({})));
    assert_eq!(status, 200, "{listed}");
    runtime.block_on(gw.stop());
}
