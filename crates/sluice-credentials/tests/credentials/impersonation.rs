//! The gateway's own credential impersonating a service account.

use sluice_credentials::ImpersonationSource;

use crate::fake_google::{FakeGoogle, Route, impersonation};

#[tokio::test]
async fn from_a_key_reusing_the_source_token_but_not_job_tokens() {
    let google = FakeGoogle::with_source(Route::Token).await;
    let minter = google.minter(impersonation(ImpersonationSource::Key(google.key())));

    let first = minter.mint(None).await.unwrap();
    let second = minter.mint(None).await.unwrap();

    let log = google.log();
    assert_eq!(log.calls, [Route::Token, Route::Iam, Route::Iam]);
    assert_eq!(log.issued(Route::Iam), [first.secret(), second.secret()]);
}

#[tokio::test]
async fn from_the_metadata_server() {
    let google = FakeGoogle::with_source(Route::Metadata).await;
    let minter = google.minter(impersonation(ImpersonationSource::MetadataServer));

    let token = minter.mint(None).await.unwrap();

    let log = google.log();
    assert_eq!(log.calls, [Route::Metadata, Route::Iam]);
    assert_eq!(log.issued(Route::Iam), [token.secret()]);
}
