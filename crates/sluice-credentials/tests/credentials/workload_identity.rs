//! Workload identity federation: an assertion Sluice signs for the caller,
//! exchanged at a provider that trusts Sluice's keys alone, optionally
//! followed by impersonation. The caller's own token is never an input.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sluice_credentials::test_util::{jwks_kids, token_exchange_form};
use sluice_credentials::{CredentialErrorKind, SigningKeys, SluiceIssuer};

use crate::fake_google::{
    AUDIENCE, CALLER_TOKEN, Expect, FakeGoogle, Route, SLUICE_ISSUER, TARGET_ACCOUNT, caller,
};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Posts a token exchange of `subject_token` straight to the fake STS, as
/// an agent going around Sluice would.
async fn exchange_directly(google: &FakeGoogle, subject_token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/token", google.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(token_exchange_form(AUDIENCE, subject_token))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A JWT that names Sluice's key `kid` and carries `claims`, but whose
/// signature is another key's (over other content).
fn forged(kid: &str, claims: &Value) -> String {
    let other =
        SluiceIssuer::new(SLUICE_ISSUER, SigningKeys::generate(now() - 60).unwrap()).unwrap();
    let genuine = other.assertion(&caller(), AUDIENCE, now()).unwrap();
    let signature = genuine.rsplit('.').next().unwrap();
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
    )
}

#[tokio::test]
async fn sluices_assertion_is_exchanged_for_a_bigquery_token() {
    let google = FakeGoogle::start(Expect::default()).await;
    let minter = google.minter(google.federation(None));

    let token = minter.mint(Some(&caller())).await.unwrap();

    let log = google.log();
    assert_eq!(log.calls, [Route::Sts]);
    assert_eq!(log.issued(Route::Sts), [token.secret()]);
    // What the provider verified: Sluice's issuer, the provider's
    // audience, the caller as subject, and what conditions need.
    let claims = &log.accepted_claims[0];
    assert_eq!(claims["iss"], SLUICE_ISSUER);
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(
        claims["sub"],
        "https://token.actions.githubusercontent.com#repo:acme/analytics:ref:refs/heads/main"
    );
    assert_eq!(claims["repository"], "acme/analytics");
    assert_eq!(claims["workflow"], "nightly");
    assert_eq!(claims["run_id"], "9001");
    assert_eq!(claims["policy"], "ci-analytics-read");
    assert_eq!(
        claims["caller_sub"],
        "repo:acme/analytics:ref:refs/heads/main"
    );
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 300);
}

#[tokio::test]
async fn the_agents_own_token_is_refused_by_a_provider_that_trusts_only_sluice() {
    let google = FakeGoogle::start(Expect::default()).await;

    // The agent's OIDC token, taken to the STS directly.
    let (status, body) = exchange_directly(&google, CALLER_TOKEN).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");

    // Tokens shaped like Sluice's but not signed by its keys, and a genuine
    // assertion for another audience or already expired.
    let kid = google.issuer.keys().active_kid(now()).unwrap().to_owned();
    let forged = forged(
        &kid,
        &json!({
            "iss": SLUICE_ISSUER, "aud": AUDIENCE, "sub": "x", "iat": now(), "exp": now() + 300,
        }),
    );
    let wrong_audience = google
        .issuer
        .assertion(&caller(), "//iam.googleapis.com/projects/1/other", now())
        .unwrap();
    let expired = google
        .issuer
        .assertion(&caller(), AUDIENCE, now() - 3600)
        .unwrap();
    for token in [forged.as_str(), &wrong_audience, &expired] {
        let (status, body) = exchange_directly(&google, token).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_grant", "{body}");
    }
    assert!(google.log().issued(Route::Sts).is_empty());

    // Sluice's own assertion, sent the same way, is what it accepts.
    let assertion = google.issuer.assertion(&caller(), AUDIENCE, now()).unwrap();
    let (status, body) = exchange_directly(&google, &assertion).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_token_service_never_sees_the_callers_token() {
    let google = FakeGoogle::start(Expect::default()).await;
    let minter = google.minter(google.federation(None));
    let mut caller = caller();
    // Even a caller whose claims hold its own token gets only the listed
    // workload claims into the assertion.
    caller
        .claims
        .insert("token".into(), Value::String(CALLER_TOKEN.into()));

    minter.mint(Some(&caller)).await.unwrap();

    let log = google.log();
    assert_eq!(log.subject_tokens.len(), 1);
    let sent = &log.subject_tokens[0];
    assert_ne!(sent, CALLER_TOKEN);
    assert!(!sent.contains(CALLER_TOKEN));
    let payload = sent.split('.').nth(1).unwrap();
    let decoded = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert!(!decoded.contains("caller-signature"), "{decoded}");
}

#[tokio::test]
async fn after_a_rotation_the_new_kid_signs_and_both_keys_verify() {
    let google = FakeGoogle::start(Expect::default()).await;
    let minter = google.minter(google.federation(None));
    minter.mint(Some(&caller())).await.unwrap();
    let old_kid = google.issuer.keys().active_kid(now()).unwrap().to_owned();

    google.issuer.replace_keys(
        google
            .issuer
            .keys()
            .rotate(now(), Duration::ZERO, false)
            .unwrap(),
    );
    let jwks = google.issuer.jwks();
    let published = jwks_kids(&jwks);
    assert_eq!(published.len(), 2);
    assert_eq!(published[1], old_kid);
    let new_kid = published[0].clone();
    assert_ne!(new_kid, old_kid);

    // The provider still has only the old key: the new assertion is
    // refused, and nothing falls back to the old key.
    let refused = minter.mint(Some(&caller())).await.unwrap_err();
    assert_eq!(refused.kind, CredentialErrorKind::Refused);
    assert!(
        refused.message.contains("sluice secrets jwks"),
        "{}",
        refused.message
    );
    // Given the new JWKS, it accepts the new key's assertions.
    google.trust(jwks);
    minter.mint(Some(&caller())).await.unwrap();
    let log = google.log();
    let kid_of = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let kids: Vec<String> = log.subject_tokens.iter().map(|t| kid_of(t)).collect();
    assert_eq!(kids, [old_kid, new_kid.clone(), new_kid]);
}

#[tokio::test]
async fn impersonates_the_service_account_with_the_federated_token() {
    let google = FakeGoogle::with_source(Route::Sts).await;
    let minter = google.minter(google.federation(Some(TARGET_ACCOUNT)));

    let token = minter.mint(Some(&caller())).await.unwrap();

    let log = google.log();
    assert_eq!(log.calls, [Route::Sts, Route::Iam]);
    assert_eq!(log.issued(Route::Iam), [token.secret()]);
    let expires_in = token
        .expires_at()
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(expires_in <= Duration::from_secs(300), "{expires_in:?}");
    assert!(expires_in > Duration::from_secs(290), "{expires_in:?}");
}

#[tokio::test]
async fn without_a_caller_nothing_is_minted() {
    let google = FakeGoogle::start(Expect::default()).await;
    let minter = google.minter(google.federation(None));

    let error = minter.mint(None).await.unwrap_err();
    assert_eq!(error.kind, CredentialErrorKind::Invalid);
    assert!(
        error.message.contains("verified caller"),
        "{}",
        error.message
    );
    assert!(google.log().calls.is_empty());
}
