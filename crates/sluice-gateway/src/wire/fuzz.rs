//! Bounded fuzzing of what the facade parses before anything else runs:
//! jobs.insert and jobs.query bodies, and the URL query string with its
//! numbers, booleans and page tokens. Seeds are the bodies the official
//! clients send, plus deeply nested parameters and huge arrays.
//!
//! Every input must either parse or be refused as BigQuery's `400
//! invalid`, with a short message; never a panic, never a 5xx. The
//! gateway-level cases (the same bodies over HTTP, the server still
//! serving) are in `tests/facade/hostile_bodies.rs`.
//!
//! `SLUICE_FUZZ_SECONDS=600 cargo test -p sluice-gateway --lib wire::fuzz
//! -- --nocapture` runs longer; `SLUICE_FUZZ_SEED=N` replays a printed seed.

use std::time::Duration;

use super::{JobInsert, QueryRequestBody, parse_body};
use crate::error::GatewayError;
use crate::params::{QueryParams, page_token};

/// What the official clients send (see the reference on client captures):
/// Python's jobs.insert and jobs.query, Node's unquoted numbers and
/// lower-case parameter mode, dry runs, arrays and structs.
const CLIENT_BODIES: &[&str] = &[
    r#"{"jobReference":{"jobId":"2b6c2f4e-5e1c-4c39-9d2a-0c1f4f0e8a11","projectId":"demo","location":"US"},"configuration":{"query":{"useLegacySql":false,"query":"SELECT name FROM demo.shop.customers LIMIT 5"}}}"#,
    r#"{"jobReference":{"jobId":"j1","projectId":"demo"},"configuration":{"query":{"useLegacySql":false,"query":"SELECT @x","parameterMode":"NAMED","queryParameters":[{"name":"x","parameterType":{"type":"INT64"},"parameterValue":{"value":"2"}}]},"dryRun":true,"labels":{"team":"etl"}}}"#,
    r#"{"configuration":{"query":{"query":"SELECT ?","queryParameters":[{"parameterType":{"type":"ARRAY","arrayType":{"type":"STRING"}},"parameterValue":{"arrayValues":[{"value":"Bob"},{"value":"Ann"}]}}]}}}"#,
    r#"{"configuration":{"query":{"query":"SELECT @s.a","queryParameters":[{"name":"s","parameterType":{"type":"STRUCT","structTypes":[{"name":"a","type":{"type":"INT64"}},{"name":"b","type":{"type":"STRING"}}]},"parameterValue":{"structValues":{"a":{"value":"1"},"b":{"value":"x"}}}}]},"jobTimeoutMs":"60000","maximumBytesBilled":"1000000"}}"#,
    r#"{"useLegacySql":false,"formatOptions":{"useInt64Timestamp":true},"location":"US","query":"SELECT 1","requestId":"9c2f0d2e-3b7a-4f1e-8d55-6a4e2b1c0f99","maxResults":100}"#,
    r#"{"query":"SELECT @n, @b","useLegacySql":false,"parameterMode":"named","queryParameters":[{"name":"n","parameterType":{"type":"NUMERIC"},"parameterValue":{"value":1.5}},{"name":"b","parameterType":{"type":"BOOL"},"parameterValue":{"value":true}}],"timeoutMs":10000,"dryRun":false}"#,
    r#"{"query":"SELECT 1","defaultDataset":{"projectId":"demo","datasetId":"shop"},"maximumBytesBilled":1000,"labels":{}}"#,
    r#"{"configuration":{"query":{"query":"SELECT 1","destinationTable":{"projectId":"p","datasetId":"d","tableId":"t"},"writeDisposition":"WRITE_TRUNCATE"}}}"#,
    r#"{"configuration":{"load":{"sourceUris":["gs://b/x.csv"]}}}"#,
];

/// Query strings the clients send on the job and data methods.
const CLIENT_QUERIES: &[&str] = &[
    "prettyPrint=false&maxResults=0&location=US",
    "prettyPrint=false&pageToken=o1000&fields=jobReference%2CtotalRows%2CpageToken%2Crows&location=US&formatOptions.useInt64Timestamp=True",
    "projection=full&location=US&timeoutMs=10000&startIndex=20",
    "maxResults=3&projection=full&allUsers=false",
];

/// Words spliced in, after [`sluice_fuzz::JSON_PUNCTUATION`].
const DICTIONARY: &[&[u8]] = &[
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"null",
    b"true",
    b"false",
    b"-0",
    b"1e999",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"\"queryParameters\":",
    b"\"parameterType\":",
    b"\"parameterValue\":",
    b"\"arrayType\":",
    b"\"structTypes\":",
    b"\"structValues\":",
    b"\"arrayValues\":",
    b"\"rangeElementType\":",
    b"{\"type\":\"STRUCT\",\"structTypes\":[{\"name\":\"a\",\"type\":",
    b"{\"type\":\"ARRAY\",\"arrayType\":",
    b"{\"arrayValues\":[",
    b"\"maximumBytesBilled\":",
    b"\"timeoutMs\":",
    b"\"maxResults\":",
    b"\"jobReference\":",
    b"\"configuration\":",
    b"\"labels\":",
    b"\"defaultDataset\":",
    b"&",
    b"=",
    b"%",
    b"%FF",
    b"%00",
    b"+",
    b"pageToken=o",
    b"maxResults=",
    b"startIndex=",
    b"timeoutMs=",
    b"formatOptions.useInt64Timestamp=",
    "é".as_bytes(),
    b"\xff",
];

/// Deeply nested and very wide shapes, built rather than written out.
fn hostile_seeds() -> Vec<Vec<u8>> {
    let deep_struct = {
        let mut ty = String::from(r#"{"type":"INT64"}"#);
        for _ in 0..200 {
            ty = format!(r#"{{"type":"STRUCT","structTypes":[{{"name":"a","type":{ty}}}]}}"#);
        }
        format!(
            r#"{{"query":"SELECT @p","queryParameters":[{{"name":"p","parameterType":{ty}}}]}}"#
        )
    };
    let deep_array_values = format!(
        r#"{{"query":"SELECT ?","queryParameters":[{{"parameterType":{{"type":"INT64"}},"parameterValue":{}1{}}}]}}"#,
        r#"{"arrayValues":["#.repeat(300),
        "]}".repeat(300)
    );
    let many_parameters = format!(
        r#"{{"query":"SELECT 1","queryParameters":[{}]}}"#,
        vec![r#"{"parameterType":{"type":"INT64"},"parameterValue":{"value":"1"}}"#; 2000]
            .join(",")
    );
    let huge_array = format!(
        r#"{{"query":"SELECT ?","queryParameters":[{{"parameterType":{{"type":"ARRAY","arrayType":{{"type":"INT64"}}}},"parameterValue":{{"arrayValues":[{}]}}}}]}}"#,
        vec![r#"{"value":"7"}"#; 20_000].join(",")
    );
    let brackets = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let long_key = format!(r#"{{"{}":1}}"#, "k".repeat(100_000));
    let long_number = format!(
        r#"{{"query":"SELECT 1","maxResults":{}}}"#,
        "9".repeat(10_000)
    );
    [
        deep_struct,
        deep_array_values,
        many_parameters,
        huge_array,
        brackets,
        long_key,
        long_number,
    ]
    .map(String::into_bytes)
    .to_vec()
}

/// BigQuery's answer to a malformed request: `400 invalid`, with a
/// message short enough to show and to log.
fn assert_client_error(error: &GatewayError, input: &[u8]) {
    assert_eq!(
        (error.status.as_u16(), error.reason),
        (400, "invalid"),
        "{error} for {} input bytes",
        input.len()
    );
    assert!(!error.message.is_empty());
    assert!(
        error.message.chars().count() <= 400,
        "a {}-character message",
        error.message.chars().count()
    );
}

fn check(input: &[u8]) {
    match parse_body::<JobInsert>(input) {
        Ok(job) => {
            // The facade echoes the parameters back in the job resource.
            if let Some(query) = &job.configuration.query {
                serde_json::to_value(&query.query_parameters).expect("parameters serialize");
            }
        }
        Err(error) => assert_client_error(&error, input),
    }
    match parse_body::<QueryRequestBody>(input) {
        Ok(request) => {
            serde_json::to_value(&request.query_parameters).expect("parameters serialize");
        }
        Err(error) => assert_client_error(&error, input),
    }
    let text = String::from_utf8_lossy(input);
    match QueryParams::parse(Some(&text)) {
        Ok(params) => {
            for name in ["maxResults", "timeoutMs"] {
                if let Err(error) = params.u32(name) {
                    assert_client_error(&error, input);
                }
            }
            if let Err(error) = params.u64("startIndex") {
                assert_client_error(&error, input);
            }
            if let Err(error) = params.use_int64_timestamp() {
                assert_client_error(&error, input);
            }
            if let Some(token) = params.get("pageToken")
                && let Err(error) = page_token::decode(token)
            {
                assert_client_error(&error, input);
            }
        }
        Err(error) => assert_client_error(&error, input),
    }
}

#[test]
fn request_bodies_and_query_strings_parse_or_are_refused_as_invalid() {
    let mut seeds: Vec<Vec<u8>> = CLIENT_BODIES
        .iter()
        .chain(CLIENT_QUERIES)
        .map(|s| s.as_bytes().to_vec())
        .collect();
    seeds.extend(hostile_seeds());
    let report = sluice_fuzz::run(
        "request bodies",
        &seeds,
        &[sluice_fuzz::JSON_PUNCTUATION, DICTIONARY].concat(),
        Duration::from_secs(5),
        check,
    );
    assert!(report.cases as usize > seeds.len(), "{report:?}");
}

#[test]
fn nesting_past_the_parser_limit_is_invalid_not_a_crash() {
    // Far deeper than serde_json's limit of 128: refused before any value
    // is built, so nothing recurses over it later.
    let seeds = hostile_seeds();
    for body in &seeds[..2] {
        let error = parse_body::<QueryRequestBody>(body).unwrap_err();
        assert_client_error(&error, body);
        assert!(
            error.message.contains("recursion limit"),
            "{}",
            error.message
        );
    }
    let brackets = &seeds[4];
    let error = parse_body::<JobInsert>(brackets).unwrap_err();
    assert_client_error(&error, brackets);
    // Wide is fine: two thousand parameters and a 20,000-element array parse.
    let request: QueryRequestBody = parse_body(&seeds[2]).unwrap();
    assert_eq!(request.query_parameters.len(), 2000);
    let request: QueryRequestBody = parse_body(&seeds[3]).unwrap();
    let values = request.query_parameters[0]
        .parameter_value
        .array_values
        .as_ref();
    assert_eq!(values.map(Vec::len), Some(20_000));
}
