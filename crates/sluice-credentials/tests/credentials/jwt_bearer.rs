//! Service-account keys: the JWT-bearer grant at the key's token endpoint.

use std::time::{Duration, SystemTime};

use sluice_credentials::Minter;

use crate::fake_google::{BIGQUERY, CLOUD_PLATFORM, Expect, FakeGoogle, Route, caller};

#[tokio::test]
async fn mints_with_a_signed_assertion() {
    let google = FakeGoogle::start(Expect::default()).await;
    let minter = google.minter(google.key_credential());

    let token = minter.mint(None).await.unwrap();

    let log = google.log();
    assert_eq!(log.issued(Route::Token), [token.secret()]);
    assert_eq!(log.calls, [Route::Token]);
    // Google states an hour for key tokens, whatever the assertion says.
    let expires_in = token
        .expires_at()
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(expires_in > Duration::from_secs(3500), "{expires_in:?}");
}

#[tokio::test]
async fn assertion_lifetime_is_capped_at_an_hour_and_scopes_joined() {
    let scopes = vec![BIGQUERY.to_owned(), CLOUD_PLATFORM.to_owned()];
    let google = FakeGoogle::start(Expect {
        scopes: scopes.clone(),
        lifetime_secs: 7200,
        ..Expect::default()
    })
    .await;
    let mut config = google.config(google.key_credential());
    config.scopes = scopes;
    config.lifetime = Duration::from_secs(7200);
    let minter = Minter::new(config).unwrap();

    let token = minter.mint(None).await.unwrap();
    assert_eq!(google.log().issued(Route::Token), [token.secret()]);
}

#[tokio::test]
async fn every_job_gets_its_own_token() {
    let google = FakeGoogle::start(Expect::default()).await;
    let minter = google.minter(google.key_credential());

    let first = minter.mint(None).await.unwrap();
    let second = minter.mint(Some(&caller())).await.unwrap();

    assert_ne!(first.secret(), second.secret());
    assert_eq!(google.log().count(Route::Token), 2);
}
