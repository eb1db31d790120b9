//! Workload identity federation: the caller's OIDC token exchanged at STS,
//! optionally followed by impersonation.

use std::time::{Duration, SystemTime};

use sluice_credentials::CredentialErrorKind;

use crate::fake_google::{Expect, FakeGoogle, Route, SUBJECT_TOKEN, TARGET_ACCOUNT, federation};

#[tokio::test]
async fn exchanges_the_callers_token_for_a_bigquery_token() {
    let google = FakeGoogle::start(Expect::default()).await;
    let minter = google.minter(federation(None));

    let token = minter.mint(Some(SUBJECT_TOKEN)).await.unwrap();

    let log = google.log();
    assert_eq!(log.calls, [Route::Sts]);
    assert_eq!(log.issued(Route::Sts), [token.secret()]);
}

#[tokio::test]
async fn impersonates_the_service_account_with_the_federated_token() {
    let google = FakeGoogle::with_source(Route::Sts).await;
    let minter = google.minter(federation(Some(TARGET_ACCOUNT)));

    let token = minter.mint(Some(SUBJECT_TOKEN)).await.unwrap();

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
async fn without_the_callers_token_nothing_is_minted() {
    let google = FakeGoogle::start(Expect::default()).await;
    let minter = google.minter(federation(None));

    for subject in [None, Some("")] {
        let error = minter.mint(subject).await.unwrap_err();
        assert_eq!(error.kind, CredentialErrorKind::Invalid);
        assert!(
            error.message.contains("caller's own OIDC token"),
            "{}",
            error.message
        );
    }
    assert!(google.log().calls.is_empty());
}
