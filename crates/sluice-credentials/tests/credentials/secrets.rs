//! No token, assertion, subject token or key material in any `Debug`
//! output or error message, even when Google's error text quotes them.

use sluice_credentials::{
    AccessToken, Credential, CredentialError, ImpersonationSource, Minter, ServiceAccountKey,
};

use crate::fake_google::{
    CALLER_TOKEN, Expect, FakeGoogle, KEY_JSON, Route, TARGET_ACCOUNT, caller, impersonation,
    private_key_lines,
};

/// Fails if `text` contains any of `secrets` or a line of the private key.
fn assert_clean(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{secret:?} leaked into: {text}");
    }
    for line in private_key_lines() {
        assert!(
            !text.contains(line),
            "a line of the private key leaked into: {text}"
        );
    }
}

fn assert_error_clean(error: &CredentialError, secrets: &[&str]) {
    assert_clean(&error.message, secrets);
    assert_clean(&error.to_string(), secrets);
    assert_clean(&format!("{error:?}"), secrets);
}

#[tokio::test]
async fn debug_output_shows_no_secrets() {
    let google = FakeGoogle::start(Expect::default()).await;
    let key = google.key();
    let config = google.config(Credential::ServiceAccountKey { key: key.clone() });
    let minter = Minter::new(config.clone()).unwrap();
    let token = minter.mint(None).await.unwrap();

    let issuer = &google.issuer;
    let ring = issuer.keys().to_json().unwrap();
    let ring: serde_json::Value = serde_json::from_slice(&ring).unwrap();
    let private = ring["keys"][0]["pkcs8"].as_str().unwrap().to_owned();
    let federated = google.config(google.federation(None));
    for shown in [
        format!("{issuer:?}"),
        format!("{federated:?}"),
        format!("{:?}", Minter::new(federated.clone()).unwrap()),
    ] {
        assert!(shown.contains("[redacted]"), "{shown}");
        for piece in private.as_bytes().chunks(16).skip(2) {
            let piece = std::str::from_utf8(piece).unwrap();
            assert!(
                !shown.contains(piece),
                "a piece of a signing key leaked: {shown}"
            );
        }
    }
    for shown in [
        format!("{token:?}"),
        format!("{key:?}"),
        format!(
            "{:?}",
            ServiceAccountKey::from_json(KEY_JSON.as_bytes()).unwrap()
        ),
        format!("{config:?}"),
        format!("{minter:?}"),
    ] {
        assert_clean(&shown, &[token.secret()]);
    }
    assert!(format!("{token:?}").starts_with("AccessToken { token: \"<redacted>\", expires_at: "));
}

#[tokio::test]
async fn a_refused_assertion_is_not_quoted_back() {
    let google = FakeGoogle::start(Expect::default()).await;
    google.script(|s| {
        s.key_deleted = true;
        s.echo_secrets = true;
    });
    let minter = google.minter(google.key_credential());

    let error = minter.mint(None).await.unwrap_err();

    let assertion = google.log().assertions.pop().unwrap();
    assert_error_clean(&error, &[&assertion]);
    assert!(error.message.contains("[redacted]"), "{}", error.message);
}

#[tokio::test]
async fn a_refused_subject_token_is_not_quoted_back() {
    let google = FakeGoogle::start(Expect::default()).await;
    google.script(|s| {
        s.reject_subject = true;
        s.echo_secrets = true;
    });
    let minter = google.minter(google.federation(None));

    let error = minter.mint(Some(&caller())).await.unwrap_err();

    let assertion = google.log().subject_tokens.pop().unwrap();
    assert_error_clean(&error, &[&assertion, CALLER_TOKEN]);
    assert!(error.message.contains("[redacted]"), "{}", error.message);
}

#[tokio::test]
async fn a_refused_source_token_is_not_quoted_back() {
    let google = FakeGoogle::with_source(Route::Sts).await;
    google.script(|s| {
        s.deny_impersonation = true;
        s.echo_secrets = true;
    });
    let minter = google.minter(google.federation(Some(TARGET_ACCOUNT)));

    let error = minter.mint(Some(&caller())).await.unwrap_err();

    let log = google.log();
    let federated = log.issued(Route::Sts).pop().unwrap();
    assert_error_clean(&error, &[&federated, &log.subject_tokens[0]]);
}

#[tokio::test]
async fn outage_errors_show_no_secrets() {
    let google = FakeGoogle::with_source(Route::Metadata).await;
    google.fail(Route::Iam, &[500; 100]);
    let mut config = google.config(impersonation(ImpersonationSource::MetadataServer));
    config.deadline = std::time::Duration::from_millis(500);
    let minter = Minter::new(config).unwrap();

    let error = minter.mint(None).await.unwrap_err();

    let source = google.log().issued(Route::Metadata).pop().unwrap();
    assert_error_clean(&error, &[&source]);
}

#[test]
fn minting_can_run_on_any_task() {
    fn assert_send<T: Send>(_: &T) {}
    let key = ServiceAccountKey::from_json(KEY_JSON.as_bytes()).unwrap();
    let minter = Minter::new(sluice_credentials::MinterConfig::new(
        Credential::ServiceAccountKey { key: key.into() },
    ))
    .unwrap();
    let token = AccessToken::new("t".into(), std::time::SystemTime::now());
    assert_send(&minter.mint(None));
    assert_send(&minter.revoke(&token));
}
