use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;

use super::*;
use crate::RawIdentity;

fn dev_config(enabled: bool) -> IdentityConfig {
    let raw: RawIdentity =
        serde_json::from_value(json!({"development_issuer": {"enabled": enabled}})).unwrap();
    IdentityConfig::from_raw(&raw).unwrap()
}

fn dev_issuer(dir: &std::path::Path, config: &IdentityConfig) -> DevIssuer {
    DevIssuer::load_or_create(dir, config.dev_issuer_id(), config.dev_audience()).unwrap()
}

#[tokio::test]
async fn dev_issuer_mint_then_verify() {
    let dir = tempfile::tempdir().unwrap();
    let config = dev_config(true);
    let dev = dev_issuer(dir.path(), &config);
    let token = dev.mint(
        "alice",
        &[
            "testers".to_string(),
            "analysts".to_string(),
            "testers".to_string(),
        ],
        Duration::from_secs(300),
    );
    let verifier = Verifier::new(config, Some(dev)).unwrap();
    let principal = verifier.verify(&token).await.unwrap();
    let session = principal.session.clone();
    assert!(
        session.as_ref().is_some_and(|s| !s.is_empty()),
        "the jti names the session"
    );
    assert_eq!(
        principal,
        Principal {
            name: "alice".into(),
            issuer: "http://127.0.0.1/sluice-dev-issuer".into(),
            subject: "alice".into(),
            groups: vec!["analysts".into(), "testers".into()],
            run: None,
            session,
        }
    );
}

#[tokio::test]
async fn dev_tokens_are_refused_when_the_dev_issuer_is_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let enabled = dev_config(true);
    let dev = dev_issuer(dir.path(), &enabled);
    let token = dev.mint("alice", &[], Duration::from_secs(300));
    let verifier = Verifier::new(dev_config(false), Some(dev)).unwrap();
    let err = verifier.verify(&token).await.unwrap_err();
    assert!(err.reason.contains("unknown issuer"), "{err}");
    assert!(
        err.reason.contains("development issuer is disabled"),
        "{err}"
    );
    assert_eq!(err.kind, crate::AuthFailure::UnknownIssuer);
}

#[tokio::test]
async fn dev_tokens_from_another_key_or_expired_are_refused() {
    let config = dev_config(true);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let other = dev_issuer(dir_b.path(), &config);
    let verifier = Verifier::new(config.clone(), Some(dev_issuer(dir_a.path(), &config))).unwrap();
    let err = verifier
        .verify(&other.mint("mallory", &[], Duration::from_secs(300)))
        .await
        .unwrap_err();
    assert!(
        err.reason.contains("not the development issuer's key"),
        "{err}"
    );
    assert_eq!(err.kind, crate::AuthFailure::UnknownKey);

    let dev = dev_issuer(dir_a.path(), &config);
    let expired = dev.mint("alice", &[], Duration::ZERO);
    let strict = IdentityConfig {
        leeway: Duration::ZERO,
        ..config
    };
    let verifier = Verifier::new(strict, Some(dev)).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let err = verifier.verify(&expired).await.unwrap_err();
    assert_eq!(err.reason, "token expired");
    assert_eq!(err.kind, crate::AuthFailure::Expired);
}

#[test]
fn verifier_needs_the_dev_key_when_enabled_and_a_matching_one() {
    assert!(Verifier::new(dev_config(true), None).is_err());
    let dir = tempfile::tempdir().unwrap();
    let elsewhere =
        DevIssuer::load_or_create(dir.path(), "http://127.0.0.1/other", "sluice").unwrap();
    assert!(Verifier::new(dev_config(true), Some(elsewhere)).is_err());
}

#[test]
fn dev_key_file_is_private_stable_and_never_printed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("data/keys");
    let first = DevIssuer::load_or_create(&nested, "iss", "aud").unwrap();
    let path = nested.join("dev-issuer-key.p8");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let again = DevIssuer::load_or_create(&nested, "iss", "aud").unwrap();
    assert_eq!(first.key_id(), again.key_id());
    assert_eq!(URL_SAFE_NO_PAD.decode(first.key_id()).unwrap().len(), 32);

    let pkcs8 = std::fs::read(&path).unwrap();
    // The PKCS#8 document ends with the public key; the private scalar sits
    // in the middle. None of it, in any common encoding, may be printed.
    let config = dev_config(true);
    let for_verifier = dev_issuer(&nested, &config);
    let verifier = Verifier::new(config, Some(for_verifier)).unwrap();
    let debug = format!("{first:?} {verifier:?}");
    assert!(debug.contains("[redacted]"), "{debug}");
    for window in pkcs8.windows(8) {
        let hex: String = window.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!debug.contains(&hex));
        assert!(!debug.contains(format!("{window:?}").trim_matches(['[', ']'])));
    }
    assert!(!debug.contains(&STANDARD.encode(&pkcs8[..24])));
    assert!(!debug.contains(&URL_SAFE_NO_PAD.encode(&pkcs8[..24])));

    std::fs::write(&path, b"not a key").unwrap();
    let err = DevIssuer::load_or_create(&nested, "iss", "aud").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn dev_issuer_documents() {
    let dir = tempfile::tempdir().unwrap();
    let dev = DevIssuer::load_or_create(dir.path(), "http://127.0.0.1:9050/dev", "sluice").unwrap();
    let discovery = dev.discovery_document("http://127.0.0.1:9050/");
    assert_eq!(discovery["issuer"], "http://127.0.0.1:9050/dev");
    assert_eq!(
        discovery["jwks_uri"],
        "http://127.0.0.1:9050/sluice-dev-issuer/jwks.json"
    );
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    let jwks = dev.jwks();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["kid"], dev.key_id());
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    assert!(key.get("d").is_none());
    // The published JWKS verifies the minted tokens like any issuer's would.
    let set = crate::keys::KeySet::from_jwks(&jwks).unwrap();
    assert!(set.keys.contains_key(dev.key_id()));
}

#[test]
fn auth_errors_never_echo_the_token() {
    let token = format!(
        "{}.{}.{}",
        "eyJhbGciOiJIUzI1NiJ9", "eyJpc3MiOiJ4In0", "c2lnbmF0dXJl"
    );
    let err = crate::token::inspect(&token, 8192).unwrap_err();
    assert!(!err.reason.contains("eyJ"), "{err}");
    assert!(err.reason.contains("HS256"), "{err}");
}
