//! Refusals, outages and retries, and how each is reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_credentials::{
    Credential, CredentialErrorKind, Endpoints, ImpersonationSource, Minter, MinterConfig,
};

use crate::fake_google::{
    AUDIENCE, Expect, FakeGoogle, KEY_EMAIL, KEY_ID, Route, SLUICE_ISSUER, TARGET_ACCOUNT, caller,
    impersonation, key_with_token_uri,
};

fn key_minter(google: &FakeGoogle) -> Minter {
    google.minter(google.key_credential())
}

#[tokio::test]
async fn a_deleted_key_is_refused_with_googles_description() {
    let google = FakeGoogle::start(Expect::default()).await;
    google.script(|s| s.key_deleted = true);

    let error = key_minter(&google).mint(None).await.unwrap_err();

    assert_eq!(error.kind, CredentialErrorKind::Refused);
    assert!(
        error
            .message
            .contains("invalid_grant: Invalid JWT Signature."),
        "{}",
        error.message
    );
    assert!(
        error.message.contains(KEY_EMAIL) && error.message.contains(KEY_ID),
        "{}",
        error.message
    );
    assert_eq!(
        google.log().count(Route::Token),
        1,
        "a refusal is not retried"
    );
}

#[tokio::test]
async fn sts_rejecting_sluices_assertion_is_refused() {
    let google = FakeGoogle::start(Expect::default()).await;
    google.script(|s| s.reject_subject = true);
    let minter = google.minter(google.federation(None));

    let error = minter.mint(Some(&caller())).await.unwrap_err();

    assert_eq!(error.kind, CredentialErrorKind::Refused);
    assert!(
        error.message.starts_with(
            "Security Token Service refused Sluice's assertion for \
             https://token.actions.githubusercontent.com#repo:acme/analytics:ref:refs/heads/main: \
             unauthorized_client: The given credential is rejected by the attribute condition."
        ),
        "{}",
        error.message
    );
    assert!(error.message.contains(AUDIENCE), "{}", error.message);
    assert!(error.message.contains(SLUICE_ISSUER), "{}", error.message);
    assert_eq!(google.log().count(Route::Sts), 1);
}

#[tokio::test]
async fn denied_impersonation_names_the_service_account() {
    let google = FakeGoogle::with_source(Route::Token).await;
    google.script(|s| s.deny_impersonation = true);
    let minter = google.minter(impersonation(ImpersonationSource::Key(google.key())));

    let error = minter.mint(None).await.unwrap_err();

    assert_eq!(error.kind, CredentialErrorKind::Refused);
    let expected = format!(
        "generateAccessToken for {TARGET_ACCOUNT} was denied: PERMISSION_DENIED: Permission \
         'iam.serviceAccounts.getAccessToken' denied"
    );
    assert!(error.message.starts_with(&expected), "{}", error.message);
    assert!(
        error.message.contains(&format!(
            "grant {KEY_EMAIL} roles/iam.serviceAccountTokenCreator"
        )),
        "{}",
        error.message
    );

    // The refused source token is not kept: the next job fetches a new one.
    google.script(|s| s.deny_impersonation = false);
    minter.mint(None).await.unwrap();
    assert_eq!(google.log().count(Route::Token), 2);
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_unavailable_within_the_deadline() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let token_uri = format!("http://{}/token", closed.local_addr().unwrap());
    drop(closed);
    let key = Arc::new(key_with_token_uri(&token_uri));
    let deadline = Duration::from_secs(1);
    let minter = Minter::new(MinterConfig {
        endpoints: Endpoints {
            revoke_url: None,
            ..Endpoints::default()
        },
        deadline,
        ..MinterConfig::new(Credential::ServiceAccountKey { key })
    })
    .unwrap();

    let start = Instant::now();
    let error = minter.mint(None).await.unwrap_err();

    assert!(
        start.elapsed() < deadline + Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(error.kind, CredentialErrorKind::Unavailable);
    assert!(
        error.message.contains("could not be reached"),
        "{}",
        error.message
    );
    assert!(error.message.contains(&token_uri), "{}", error.message);
    assert!(
        !error.message.contains("after 1 attempts"),
        "not retried: {}",
        error.message
    );
}

#[tokio::test]
async fn a_503_then_200_succeeds() {
    let google = FakeGoogle::start(Expect::default()).await;
    google.fail(Route::Token, &[503]);

    let token = key_minter(&google).mint(None).await.unwrap();

    let log = google.log();
    assert_eq!(log.calls, [Route::Token, Route::Token]);
    assert_eq!(log.issued(Route::Token), [token.secret()]);
}

#[tokio::test]
async fn a_429_from_iam_is_retried() {
    let google = FakeGoogle::with_source(Route::Sts).await;
    google.fail(Route::Iam, &[429]);
    let minter = google.minter(google.federation(Some(TARGET_ACCOUNT)));

    minter.mint(Some(&caller())).await.unwrap();
    assert_eq!(google.log().calls, [Route::Sts, Route::Iam, Route::Iam]);
}

#[tokio::test]
async fn a_service_that_keeps_failing_is_unavailable() {
    let google = FakeGoogle::start(Expect::default()).await;
    google.fail(Route::Sts, &[503; 100]);
    let mut config = google.config(google.federation(None));
    // Long enough for several attempts on a loaded test machine.
    config.deadline = Duration::from_millis(3000);
    let minter = Minter::new(config).unwrap();

    let error = minter.mint(Some(&caller())).await.unwrap_err();

    assert_eq!(error.kind, CredentialErrorKind::Unavailable);
    assert!(
        error
            .message
            .starts_with("Security Token Service failed (HTTP 503: UNAVAILABLE: The service is currently unavailable.)"),
        "{}",
        error.message
    );
    assert!(google.log().count(Route::Sts) > 1);
}

#[tokio::test]
async fn a_stalled_token_endpoint_times_out() {
    let google = FakeGoogle::start(Expect::default()).await;
    google.script(|s| s.stall = Some(Duration::from_secs(5)));
    let mut config = google.config(google.key_credential());
    config.timeout = Duration::from_millis(200);
    config.deadline = Duration::from_millis(700);
    let minter = Minter::new(config).unwrap();

    let start = Instant::now();
    let error = minter.mint(None).await.unwrap_err();

    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(error.kind, CredentialErrorKind::Unavailable);
    assert!(error.message.contains("timed out"), "{}", error.message);
}

#[tokio::test]
async fn wrong_configurations_are_invalid() {
    let google = FakeGoogle::start(Expect::default()).await;
    let impersonate = |account: &str| Credential::Impersonation {
        source: ImpersonationSource::MetadataServer,
        service_account: account.to_owned(),
    };
    let cases = [
        (
            google.config(impersonate("sa@p.iam.gserviceaccount.com/../x")),
            "not a service-account email",
        ),
        (
            google.config(impersonate("")),
            "not a service-account email",
        ),
        (
            google.config(Credential::WorkloadIdentity {
                audience: " ".to_owned(),
                service_account: None,
                issuer: google.issuer.clone(),
            }),
            "no audience",
        ),
        (
            MinterConfig {
                scopes: vec![],
                ..google.config(impersonate(TARGET_ACCOUNT))
            },
            "no scopes",
        ),
        (
            MinterConfig {
                lifetime: Duration::ZERO,
                ..google.config(impersonate(TARGET_ACCOUNT))
            },
            "at least 1s",
        ),
        (
            MinterConfig {
                endpoints: Endpoints {
                    metadata_url: "metadata.google.internal".to_owned(),
                    ..google.endpoints()
                },
                ..google.config(impersonate(TARGET_ACCOUNT))
            },
            "metadata_url",
        ),
    ];
    for (config, needle) in cases {
        let error = Minter::new(config).unwrap_err();
        assert_eq!(error.kind, CredentialErrorKind::Invalid);
        assert!(
            error.message.contains(needle),
            "{needle}: {}",
            error.message
        );
    }
}
