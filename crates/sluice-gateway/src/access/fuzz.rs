//! Bounded fuzzing of what the reviewer and access APIs parse: access
//! request bodies, vote bodies and their `?state=` query strings. Every
//! input must parse or be refused as `400 invalid` with a short message;
//! never a panic. `SLUICE_FUZZ_SECONDS=600 cargo test -p sluice-gateway
//! --lib access::fuzz -- --nocapture` runs longer.

use std::time::Duration;

use super::api::{APPROVAL_STATES, GRANT_STATES, ask, state_param};
use crate::error::GatewayError;

const SEEDS: &[&str] = &[
    r#"{"datasets": ["demo.shop"], "duration": "1h", "justification": "incident 42"}"#,
    r#"{"tables": ["demo.shop.orders", "demo.ops.logs"], "duration": "90m", "justification": "x"}"#,
    r#"{"datasets": ["a.b"], "tables": ["a.b.c"], "duration": "45s", "justification": "é\u0000"}"#,
    r#"{"reason": "expected report"}"#,
    r#"{"reason": ""}"#,
    "",
    "state=PENDING",
    "state=all&state=active",
    "state=%FF",
];

const DICTIONARY: &[&[u8]] = &[
    b"\"datasets\":",
    b"\"tables\":",
    b"\"duration\":",
    b"\"justification\":",
    b"\"reason\":",
    b"[\"demo.shop\"]",
    b"\"1h\"",
    b"\"0s\"",
    b"\"99999999999999999999h\"",
    b"\\u0000",
    b"\\ud800",
    b"null",
    b"1e999",
    b"state=",
    b"&",
    b"%",
    b"*",
    b".",
    "é".as_bytes(),
    b"\xff",
];

fn hostile_seeds() -> Vec<Vec<u8>> {
    let many = format!(
        r#"{{"datasets": [{}], "duration": "1h", "justification": "x"}}"#,
        vec![r#""p.d""#; 10_000].join(",")
    );
    let long_name = format!(
        r#"{{"datasets": ["{}.d"], "duration": "1h", "justification": "x"}}"#,
        "p".repeat(100_000)
    );
    let long_key = format!(r#"{{"{}": 1}}"#, "k".repeat(100_000));
    let long_reason = format!(r#"{{"reason": "{}"}}"#, "r".repeat(100_000));
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    [many, long_name, long_key, long_reason, deep]
        .map(String::into_bytes)
        .to_vec()
}

fn assert_client_error(error: &GatewayError, input: &[u8]) {
    assert_eq!(
        (error.status.as_u16(), error.reason),
        (400, "invalid"),
        "{error} for {} input bytes",
        input.len()
    );
    assert!(
        !error.message.is_empty() && error.message.chars().count() <= 600,
        "a {}-character message",
        error.message.chars().count()
    );
}

fn check(input: &[u8]) {
    match ask(input) {
        Ok(asked) => {
            assert!(!asked.names.is_empty() && asked.names.len() <= 50);
            assert!(!asked.justification.trim().is_empty());
        }
        Err(error) => assert_client_error(&error, input),
    }
    if let Err(error) = crate::approvals::api::reason(input) {
        assert_client_error(&error, input);
    }
    let text = String::from_utf8_lossy(input);
    for allowed in [APPROVAL_STATES, GRANT_STATES] {
        if let Err(error) = state_param(Some(&text), allowed) {
            assert_client_error(&error, input);
        }
    }
    if let Err(error) = crate::approvals::api::state_param(Some(&text)) {
        assert_client_error(&error, input);
    }
}

#[test]
fn access_and_vote_bodies_parse_or_are_refused_as_invalid() {
    let mut seeds: Vec<Vec<u8>> = SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect();
    seeds.extend(hostile_seeds());
    let report = sluice_fuzz::run(
        "access and vote bodies",
        &seeds,
        &[sluice_fuzz::JSON_PUNCTUATION, DICTIONARY].concat(),
        Duration::from_secs(3),
        check,
    );
    assert!(report.cases > 100, "only {} cases ran", report.cases);
}
