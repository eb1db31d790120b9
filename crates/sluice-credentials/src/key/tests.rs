use serde_json::json;

use super::*;
use crate::CredentialErrorKind;

const FIXTURE: &str = include_str!("../../tests/fixtures/service-account.json");
const PEM: &str = include_str!("../../tests/fixtures/test-key.pem");

fn fixture() -> Value {
    serde_json::from_str(FIXTURE).unwrap()
}

/// Parses `value` and expects an `Invalid` error whose message contains
/// `needle` and no line of the private key.
fn rejects(value: &[u8], needle: &str) {
    let error = ServiceAccountKey::from_json(value).expect_err("must be rejected");
    assert_eq!(error.kind, CredentialErrorKind::Invalid);
    assert!(error.message.contains(needle), "{}", error.message);
    for line in PEM.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!error.message.contains(line), "{}", error.message);
    }
}

fn with(field: &str, value: Value) -> Vec<u8> {
    let mut key = fixture();
    key[field] = value;
    serde_json::to_vec(&key).unwrap()
}

fn without(field: &str) -> Vec<u8> {
    let mut key = fixture();
    key.as_object_mut().unwrap().remove(field);
    serde_json::to_vec(&key).unwrap()
}

#[test]
fn reads_a_google_key_file() {
    let key = ServiceAccountKey::from_json(FIXTURE.as_bytes()).unwrap();
    assert_eq!(
        key.client_email(),
        "gateway@sluice-test.iam.gserviceaccount.com"
    );
    assert_eq!(key.token_uri(), "https://token-uri.invalid/token");
    assert_eq!(key.project_id(), Some("sluice-test"));
    assert_eq!(
        key.private_key_id(),
        Some("0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c")
    );
    assert_eq!(key.sign_rs256(b"message").unwrap().len(), 256);
}

#[test]
fn token_uri_defaults_to_google() {
    let key = ServiceAccountKey::from_json(&without("token_uri")).unwrap();
    assert_eq!(key.token_uri(), GOOGLE_TOKEN_URI);
}

#[test]
fn debug_hides_the_private_key() {
    let key = ServiceAccountKey::from_json(FIXTURE.as_bytes()).unwrap();
    let shown = format!("{key:?}");
    assert!(shown.contains("gateway@sluice-test.iam.gserviceaccount.com"));
    assert!(shown.contains("<redacted>"));
    for line in PEM.lines() {
        assert!(!shown.contains(line), "{shown}");
    }
}

#[test]
fn rejects_what_is_not_json() {
    rejects(b"", "not valid JSON");
    rejects(PEM.as_bytes(), "not valid JSON");
    rejects(b"[1, 2]", "not a JSON object");
}

#[test]
fn rejects_other_credential_files() {
    rejects(br#"{"client_email": "a@b"}"#, "no \"type\"");
    let user = json!({"type": "authorized_user", "client_id": "x", "refresh_token": "1//secret"});
    rejects(
        user.to_string().as_bytes(),
        "gcloud auth application-default login",
    );
    let federation = json!({"type": "external_account", "audience": "//iam.googleapis.com/x"});
    rejects(
        federation.to_string().as_bytes(),
        "workload identity federation",
    );
    rejects(&with("type", json!(PEM)), "an unrecognized value");
}

#[test]
fn rejects_missing_or_mistyped_fields() {
    rejects(&without("private_key"), "no \"private_key\"");
    rejects(&without("client_email"), "no \"client_email\"");
    rejects(&with("client_email", json!("")), "no \"client_email\"");
    rejects(
        &with("token_uri", json!(42)),
        "\"token_uri\" is not a string",
    );
}

#[test]
fn rejects_keys_that_are_not_pkcs8_rsa() {
    rejects(&with("private_key", json!("not a key")), "not a PKCS#8 PEM");
    let pkcs1 = PEM.replace("PRIVATE KEY", "RSA PRIVATE KEY");
    rejects(&with("private_key", json!(pkcs1)), "not a PKCS#8 PEM");
    let garbage = format!("{PEM_BEGIN}\n!!!!\n{PEM_END}\n");
    rejects(&with("private_key", json!(garbage)), "not a PKCS#8 PEM");
    // Valid base64, but cut short: the DER no longer parses.
    let lines: Vec<&str> = PEM.lines().collect();
    let truncated = format!("{}\n{}\n{}\n", lines[0], lines[1], lines[lines.len() - 1]);
    rejects(&with("private_key", json!(truncated)), "was rejected");
}
