//! Hostile request bodies against a gateway whose handlers run on Tokio
//! worker threads with their default 2 MiB stacks, as `sluice serve` runs
//! them: deep nesting, huge arrays, oversized and endless bodies, and a
//! bounded fuzz of jobs.insert and jobs.query bodies over HTTP. Each is
//! answered in BigQuery's error shape as the caller's fault, and the
//! gateway goes on serving.

use std::time::Duration;

use super::harness::{TestGateway, assert_error};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const QUERIES: &str = "/bigquery/v2/projects/proj/queries";
const JOBS: &str = "/bigquery/v2/projects/proj/jobs";

/// A STRUCT parameter type nested `depth` levels.
fn nested_struct_type(depth: usize) -> String {
    let mut text = String::with_capacity(depth * 48);
    for _ in 0..depth {
        text.push_str(r#"{"type":"STRUCT","structTypes":[{"name":"a","type":"#);
    }
    text.push_str(r#"{"type":"INT64"}"#);
    text.push_str(&"}]}".repeat(depth));
    text
}

async fn still_serving(gw: &TestGateway) {
    let (status, reply) = gw
        .post(
            QUERIES,
            &json!({"query": "SELECT 1 + 1 AS two", "useLegacySql": false}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["rows"][0]["f"][0]["v"], "2");
}

/// Regression guard: parameters nested ten thousand levels deep (a STRUCT
/// type, ARRAY types, array values) and a body of 100,000 open brackets are
/// refused by the JSON parser's depth limit as `400 invalid` before any
/// value is built, so nothing recurses over them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_nested_ten_thousand_deep_are_invalid_and_the_gateway_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_with(dir.path(), |c| c.max_body_bytes = 4 << 20).await;
    let struct_type = nested_struct_type(10_000);
    let array_type = format!(
        "{}{{\"type\":\"INT64\"}}{}",
        r#"{"type":"ARRAY","arrayType":"#.repeat(10_000),
        "}".repeat(10_000)
    );
    let array_values = format!(
        "{}{{\"value\":\"1\"}}{}",
        r#"{"arrayValues":["#.repeat(10_000),
        "]}".repeat(10_000)
    );
    let bodies = [
        format!(
            r#"{{"query":"SELECT @p","useLegacySql":false,"queryParameters":[{{"name":"p","parameterType":{struct_type}}}]}}"#
        ),
        format!(
            r#"{{"query":"SELECT @p","queryParameters":[{{"name":"p","parameterType":{array_type}}}]}}"#
        ),
        format!(
            r#"{{"query":"SELECT ?","queryParameters":[{{"parameterType":{{"type":"INT64"}},"parameterValue":{array_values}}}]}}"#
        ),
        "[".repeat(100_000),
        format!("{}{}", r#"{"a":"#.repeat(100_000), "}".repeat(100_000)),
    ];
    for body in &bodies {
        for path in [QUERIES, JOBS] {
            let (status, reply) = gw.post(path, body).await;
            assert_error(status, &reply, 400, "invalid");
            let message = reply["error"]["message"].as_str().unwrap();
            assert!(message.len() < 1024, "{message}");
        }
    }
    still_serving(&gw).await;
    gw.stop().await;
}

/// Wide is not deep: thousands of parameters and a 20,000-element array
/// are ordinary input, answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_parameters_and_a_huge_array_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_with(dir.path(), |c| c.max_body_bytes = 4 << 20).await;
    let array_query = |n: usize| {
        let values: Vec<Value> = (0..n).map(|i| json!({"value": i.to_string()})).collect();
        json!({
            "query": "SELECT ARRAY_LENGTH(@a) AS n",
            "useLegacySql": false,
            "queryParameters": [{
                "name": "a",
                "parameterType": {"type": "ARRAY", "arrayType": {"type": "INT64"}},
                "parameterValue": {"arrayValues": values},
            }],
        })
        .to_string()
    };
    let (status, reply) = gw.post(QUERIES, &array_query(10_000)).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["rows"][0]["f"][0]["v"], "10000");
    // Past the embedded warehouse's bound the query is refused before a
    // literal is built, naming the bound (a 600,000-element array within
    // the body limit once held a worker for 37 s and took 1.7 GB).
    let (status, reply) = gw.post(QUERIES, &array_query(50_000)).await;
    assert_error(status, &reply, 400, "invalidQuery");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 10000"),
        "{reply}"
    );

    let parameters: Vec<Value> = (0..5_000)
        .map(|i| json!({"name": format!("p{i}"), "parameterType": {"type": "INT64"}, "parameterValue": {"value": "1"}}))
        .collect();
    let body = json!({"query": "SELECT @p0 + @p4999 AS n", "useLegacySql": false, "queryParameters": parameters});
    let (status, reply) = gw.post(QUERIES, &body.to_string()).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["rows"][0]["f"][0]["v"], "2");
    still_serving(&gw).await;
    gw.stop().await;
}

/// A body larger than `limits.max_body_bytes` is 413 whether its length is
/// declared or it arrives in chunks without end; nothing is buffered past
/// the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_413_declared_or_chunked() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let declared = vec![b' '; 8 << 20];
    let (status, reply) = gw.call("POST", QUERIES, Some(&declared), &[]).await;
    assert_error(status, &reply, 413, "invalid");

    // Chunked, no Content-Length: the limit is found while reading.
    let mut stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let head = format!(
        "POST {QUERIES} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        gw.addr, gw.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
    for _ in 0..64 {
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break; // refused and closed before the end: what is wanted
        }
    }
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(
        text.starts_with("HTTP/1.1 413"),
        "{}",
        &text[..text.len().min(300)]
    );
    still_serving(&gw).await;
    gw.stop().await;
}

/// What the official clients send, as seeds for the HTTP fuzz.
const CLIENT_BODIES: &[(&str, &str)] = &[
    (
        JOBS,
        r#"{"jobReference":{"jobId":"fuzz_1","projectId":"proj","location":"US"},"configuration":{"query":{"useLegacySql":false,"query":"SELECT 1 AS x"}}}"#,
    ),
    (
        JOBS,
        r#"{"configuration":{"query":{"useLegacySql":false,"query":"SELECT @x","parameterMode":"NAMED","queryParameters":[{"name":"x","parameterType":{"type":"INT64"},"parameterValue":{"value":"2"}}]},"dryRun":true,"labels":{"team":"etl"}}}"#,
    ),
    (
        JOBS,
        r#"{"configuration":{"query":{"query":"SELECT ARRAY_LENGTH(?)","queryParameters":[{"parameterType":{"type":"ARRAY","arrayType":{"type":"STRING"}},"parameterValue":{"arrayValues":[{"value":"Bob"},{"value":"Ann"}]}}]}}}"#,
    ),
    (
        QUERIES,
        r#"{"useLegacySql":false,"formatOptions":{"useInt64Timestamp":true},"location":"US","query":"SELECT @s.a","requestId":"r1","queryParameters":[{"name":"s","parameterType":{"type":"STRUCT","structTypes":[{"name":"a","type":{"type":"INT64"}},{"name":"b","type":{"type":"STRING"}}]},"parameterValue":{"structValues":{"a":{"value":"1"},"b":{"value":"x"}}}}]}"#,
    ),
    (
        QUERIES,
        r#"{"query":"SELECT @n, @b, @d","useLegacySql":false,"parameterMode":"named","queryParameters":[{"name":"n","parameterType":{"type":"NUMERIC"},"parameterValue":{"value":1.5}},{"name":"b","parameterType":{"type":"BOOL"},"parameterValue":{"value":true}},{"name":"d","parameterType":{"type":"DATE"},"parameterValue":{"value":"2024-05-01"}}],"timeoutMs":1000,"maxResults":10}"#,
    ),
    (
        QUERIES,
        r#"{"query":"SELECT 1","defaultDataset":{"projectId":"proj","datasetId":"ds"},"maximumBytesBilled":"1000","dryRun":true}"#,
    ),
];

/// Words spliced in, after [`sluice_fuzz::JSON_PUNCTUATION`].
const DICTIONARY: &[&[u8]] = &[
    b"null",
    b"true",
    b"-1",
    b"1e999",
    b"18446744073709551616",
    b"\"queryParameters\":",
    b"\"parameterType\":",
    b"\"parameterValue\":",
    b"{\"type\":\"ARRAY\",\"arrayType\":",
    b"{\"type\":\"STRUCT\",\"structTypes\":[{\"name\":\"a\",\"type\":",
    b"\"arrayValues\":[",
    b"\"structValues\":",
    b"\"type\":\"TIMESTAMP\"",
    b"\"type\":\"BIGNUMERIC\"",
    b"\"type\":\"BYTES\"",
    b"\"type\":\"JSON\"",
    b"\"type\":\"RANGE\"",
    b"\"type\":\"GEOGRAPHY\"",
    b"\"value\":\"\"",
    b"\"value\":{}",
    b"\"name\":\"\"",
    b"\"dryRun\":true",
    b"\"maximumBytesBilled\":",
    b"\"timeoutMs\":0",
    b"\"maxResults\":",
    b"\"jobReference\":",
    b"\"configuration\":",
    b"\"labels\":",
    b"\"parameterMode\":\"POSITIONAL\"",
    b"@x",
    b"?",
    b"\\u0000",
    b"\\ud800",
    "é".as_bytes(),
    b"\xff",
];

/// Values swapped into a seed's JSON tree by [`reshape`]: type names,
/// values at and past every type's edges, and SQL that reads parameters.
const ODD_VALUES: &[&str] = &[
    r#""INT64""#,
    r#""FLOAT64""#,
    r#""NUMERIC""#,
    r#""BIGNUMERIC""#,
    r#""BOOL""#,
    r#""STRING""#,
    r#""BYTES""#,
    r#""DATE""#,
    r#""DATETIME""#,
    r#""TIME""#,
    r#""TIMESTAMP""#,
    r#""JSON""#,
    r#""GEOGRAPHY""#,
    r#""INTERVAL""#,
    r#""RANGE""#,
    r#""ARRAY""#,
    r#""STRUCT""#,
    r#""int64""#,
    r#""""#,
    r#""9223372036854775808""#,
    r#""-9223372036854775809""#,
    r#""1e309""#,
    r#""NaN""#,
    r#""-inf""#,
    r#""99999999999999999999999999999.999999999""#,
    r#""1e-400""#,
    r#""578960446186580977117854925043439539266.34992332820282019728792003956564819967""#,
    r#""2024-02-30""#,
    r#""10000-01-01""#,
    r#""0001-01-01""#,
    r#""25:61:61""#,
    r#""2024-05-01T12:00:00Z""#,
    r#""2024-05-01 12:00:00+99:99""#,
    r#""9999-12-31 23:59:59.9999999""#,
    r#""AAAA""#,
    r#""!!!""#,
    r#""\u0000""#,
    r#""é""#,
    r#""{\"a\":[1,{}]}""#,
    "null",
    "true",
    "0",
    "-1",
    "1.5",
    "1e308",
    "18446744073709551616",
    "[]",
    "{}",
    r#"[{"value":"1"}]"#,
    r#"{"value":"1"}"#,
    r#"{"arrayValues":[]}"#,
    r#"{"structValues":{}}"#,
    r#"{"type":"ARRAY","arrayType":{"type":"ARRAY","arrayType":{"type":"INT64"}}}"#,
    r#"{"type":"STRUCT","structTypes":[]}"#,
    r#"{"type":"STRUCT","structTypes":[{"type":{"type":"INT64"}},{"name":"a","type":{"type":"DATE"}}]}"#,
    r#""SELECT @x""#,
    r#""SELECT ?, ?""#,
    r#""SELECT @s.a, @s.b""#,
    r#""SELECT ARRAY_LENGTH(@a)""#,
    r#""SELECT [@x, @x]""#,
    r#""SELECT CAST(@x AS STRING)""#,
    r#""SELECT @x + 1""#,
    r#""SELECT * FROM UNNEST(@a)""#,
];

/// A structure-aware mutation for an input that is not JSON: the input's
/// bytes seed a walk over one client body's JSON tree that swaps values
/// for [`ODD_VALUES`], drops members and repeats array elements, so the
/// fuzz reaches the query and parameter handling behind the parser, not
/// only the parser. The same input always gives the same body.
fn reshape(input: &[u8]) -> (&'static str, Vec<u8>) {
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut rng = sluice_fuzz::Rng::new(hash);
    let (path, body) = *rng.pick(CLIENT_BODIES);
    let mut tree: Value = serde_json::from_str(body).unwrap();
    for _ in 0..1 + rng.below(4) {
        let mut node = &mut tree;
        // Walk down a random way, stopping anywhere.
        loop {
            let children = match node {
                Value::Object(map) => map.len(),
                Value::Array(items) => items.len(),
                _ => 0,
            };
            if children == 0 || rng.one_in(4) {
                break;
            }
            let pick = rng.below(children);
            node = match node {
                Value::Object(map) => map.values_mut().nth(pick).unwrap(),
                Value::Array(items) => &mut items[pick],
                _ => unreachable!(),
            };
        }
        match (rng.below(4), &mut *node) {
            (0, Value::Object(map)) if !map.is_empty() => {
                let key = map.keys().nth(rng.below(map.len())).unwrap().clone();
                map.remove(&key);
            }
            (1, Value::Array(items)) if !items.is_empty() => {
                let item = items[rng.below(items.len())].clone();
                let most = if rng.one_in(8) { 2000 } else { 3 };
                let times = 1 + rng.below(most);
                items.extend(std::iter::repeat_n(item, times));
            }
            _ => {
                let odd: &&str = rng.pick(ODD_VALUES);
                *node = serde_json::from_str(odd).unwrap();
            }
        }
    }
    (path, tree.to_string().into_bytes())
}

/// Fuzzes jobs.insert and jobs.query bodies through the whole gateway:
/// whatever the body, the answer is a success or an error in BigQuery's
/// shape that blames the request (4xx, or 501 for a feature Sluice
/// refuses by name), never a failure of the gateway (500, 503), and the
/// gateway keeps serving. `SLUICE_FUZZ_SECONDS` runs it longer.
#[test]
fn fuzzed_job_bodies_are_answered_as_the_callers_fault_never_a_gateway_failure() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = runtime.block_on(TestGateway::start_with(dir.path(), |c| {
        c.max_hold = Duration::from_secs(1);
    }));
    let seeds: Vec<Vec<u8>> = CLIENT_BODIES
        .iter()
        .map(|(path, body)| format!("{path} {body}").into_bytes())
        .collect();
    let report = sluice_fuzz::run(
        "job bodies over HTTP",
        &seeds,
        &[sluice_fuzz::JSON_PUNCTUATION, DICTIONARY].concat(),
        Duration::from_secs(5),
        |input| {
            // The path a seed came with, or the other one when mutation ate it.
            let (mut path, body) = match input.strip_prefix(QUERIES.as_bytes()) {
                Some(rest) => (QUERIES, rest),
                None => (JOBS, input.strip_prefix(JOBS.as_bytes()).unwrap_or(input)),
            };
            let mut body = body.to_vec();
            // Most byte mutations break the JSON; three in four of those
            // are reshaped into a well-formed body instead.
            if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err()
                && input.len() % 4 != 0
            {
                (path, body) = reshape(input);
            }
            let (status, bytes) = runtime.block_on(gw.raw("POST", path, Some(&body), &[]));
            let reply: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{status}: not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            if status != 200 {
                assert!(
                    (400..500).contains(&status) || status == 501,
                    "{status}: {reply}"
                );
                assert_eq!(reply["error"]["code"], status, "{reply}");
                assert!(reply["error"]["errors"][0]["reason"].is_string(), "{reply}");
                let message = reply["error"]["message"].as_str().unwrap_or_default();
                assert!(!message.is_empty(), "{reply}");
            }
        },
    );
    assert!(report.cases as usize > seeds.len(), "{report:?}");
    runtime.block_on(async {
        still_serving(&gw).await;
        gw.stop().await;
    });
}
