//! Revocation once the job is done, only where Google allows it.

use sluice_credentials::{ImpersonationSource, Minter};

use crate::fake_google::{Expect, FakeGoogle, Route, TARGET_ACCOUNT, caller, impersonation};

#[tokio::test]
async fn key_tokens_are_revoked() {
    let google = FakeGoogle::start(Expect::default()).await;
    let minter = google.minter(google.key_credential());
    assert!(minter.revocable());

    let token = minter.mint(None).await.unwrap();
    minter.revoke(&token).await.unwrap();
    assert_eq!(google.log().revoked, [token.secret()]);

    // Google calls a revoked token invalid_token: it is gone, as wanted.
    minter.revoke(&token).await.unwrap();
    assert_eq!(google.log().count(Route::Revoke), 2);
}

#[tokio::test]
async fn without_a_revocation_url_nothing_is_called() {
    let google = FakeGoogle::start(Expect::default()).await;
    let mut config = google.config(google.key_credential());
    config.endpoints.revoke_url = None;
    let minter = Minter::new(config).unwrap();
    assert!(!minter.revocable());

    let token = minter.mint(None).await.unwrap();
    minter.revoke(&token).await.unwrap();
    assert_eq!(google.log().count(Route::Revoke), 0);
}

#[tokio::test]
async fn federated_and_impersonated_tokens_are_not_revoked() {
    let google = FakeGoogle::with_source(Route::Sts).await;
    let federated = google.minter(google.federation(Some(TARGET_ACCOUNT)));
    let impersonated = google.minter(impersonation(ImpersonationSource::MetadataServer));
    assert!(!federated.revocable());
    assert!(!impersonated.revocable());

    let token = federated.mint(Some(&caller())).await.unwrap();
    federated.revoke(&token).await.unwrap();
    impersonated.revoke(&token).await.unwrap();
    assert_eq!(google.log().count(Route::Revoke), 0);
}
