//! A fake of Google's token services on 127.0.0.1: the OAuth token endpoint
//! (JWT-bearer), STS, IAM Credentials, the metadata server and the
//! revocation endpoint. Each checks every field it receives and answers in
//! Google's error shapes when one is wrong, so a test fails with the field
//! named.
//!
//! Its STS is a workload identity provider that trusts Sluice's issuer
//! alone: it verifies every subject token against the JWKS it was given
//! (as `--jwk-json-path` gives one) and refuses anything else.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sluice_credentials::test_util::workflow_caller;
use sluice_credentials::{
    Caller, Credential, Endpoints, ImpersonationSource, Minter, MinterConfig, ServiceAccountKey,
    SigningKeys, SluiceIssuer,
};

use self::services::{api_error, iam, metadata, revoke, sts, token};

mod services;

pub const KEY_JSON: &str = include_str!("../fixtures/service-account.json");
pub const PRIVATE_KEY_PEM: &str = include_str!("../fixtures/test-key.pem");
const PUBLIC_KEY_PEM: &str = include_str!("../fixtures/test-key.pub.pem");
const TOKEN_URI_PLACEHOLDER: &str = "https://token-uri.invalid/token";

pub const KEY_EMAIL: &str = "gateway@sluice-test.iam.gserviceaccount.com";
pub const KEY_ID: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c";
pub const TARGET_ACCOUNT: &str = "bq-reader@sluice-test.iam.gserviceaccount.com";
pub const AUDIENCE: &str =
    "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/agents/providers/ci";
/// Sluice's issuer URL, the only issuer the fake's provider trusts.
pub const SLUICE_ISSUER: &str = "https://sluice.test";
/// The caller's own OIDC token as an agent holds it (an issuer's signature
/// the provider does not trust).
pub const CALLER_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjYWxsZXIifQ.caller-signature";
pub const BIGQUERY: &str = "https://www.googleapis.com/auth/bigquery";
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// The services of the fake, as counted in its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Token,
    Sts,
    Iam,
    Metadata,
    Revoke,
}

/// What the fake expects of the minter under test.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The job token's scopes.
    pub scopes: Vec<String>,
    /// The assertion's `exp - iat`, and `generateAccessToken`'s lifetime.
    pub lifetime_secs: u64,
    /// Which service issued the source token `generateAccessToken` must be
    /// called with; that service must then be asked for cloud-platform.
    pub iam_source: Option<Route>,
}

impl Default for Expect {
    fn default() -> Self {
        Self {
            scopes: vec![BIGQUERY.to_owned()],
            lifetime_secs: 300,
            iam_source: None,
        }
    }
}

/// How the fake misbehaves.
#[derive(Debug, Default)]
pub struct Script {
    /// The token endpoint answers `invalid_grant` (a deleted or expired key).
    pub key_deleted: bool,
    /// STS refuses the subject token (as an attribute condition would).
    pub reject_subject: bool,
    /// IAM Credentials answers 403 PERMISSION_DENIED.
    pub deny_impersonation: bool,
    /// Error descriptions quote the credential that was sent.
    pub echo_secrets: bool,
    /// Statuses answered, in order, before a route behaves normally.
    pub failures: HashMap<Route, VecDeque<u16>>,
    /// The token endpoint waits this long before answering.
    pub stall: Option<Duration>,
}

/// What the fake saw and issued.
#[derive(Debug, Default, Clone)]
pub struct Log {
    pub calls: Vec<Route>,
    pub issued: HashMap<Route, Vec<String>>,
    pub assertions: Vec<String>,
    /// Every subject token STS received, and the claims of those it
    /// accepted.
    pub subject_tokens: Vec<String>,
    pub accepted_claims: Vec<Value>,
    pub revoked: Vec<String>,
}

impl Log {
    pub fn count(&self, route: Route) -> usize {
        self.calls.iter().filter(|r| **r == route).count()
    }

    pub fn issued(&self, route: Route) -> Vec<String> {
        self.issued.get(&route).cloned().unwrap_or_default()
    }
}

struct Shared {
    url: String,
    expect: Expect,
    public_key: Vec<u8>,
    /// The JWKS the provider was given: Sluice's public keys.
    trusted_jwks: Mutex<Value>,
    script: Mutex<Script>,
    log: Mutex<Log>,
}

pub struct FakeGoogle {
    pub url: String,
    /// Sluice's issuer, with keys of its own for this fake.
    pub issuer: Arc<SluiceIssuer>,
    shared: Arc<Shared>,
}

impl FakeGoogle {
    pub async fn start(expect: Expect) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let issuer = Arc::new(
            SluiceIssuer::new(SLUICE_ISSUER, SigningKeys::generate(now - 7200).unwrap()).unwrap(),
        );
        let shared = Arc::new(Shared {
            url: url.clone(),
            expect,
            public_key: public_key_der(),
            trusted_jwks: Mutex::new(issuer.jwks()),
            script: Mutex::new(Script::default()),
            log: Mutex::new(Log::default()),
        });
        let router = Router::new()
            .route("/token", post(token))
            .route("/v1/token", post(sts))
            .route("/v1/projects/-/serviceAccounts/{target}", post(iam))
            .route(
                "/computeMetadata/v1/instance/service-accounts/default/token",
                get(metadata),
            )
            .route("/revoke", post(revoke))
            .with_state(Arc::clone(&shared));
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            url,
            issuer,
            shared,
        }
    }

    /// Gives the provider a new JWKS, as `update-oidc --jwk-json-path`
    /// does.
    pub fn trust(&self, jwks: Value) {
        *self.shared.trusted_jwks.lock().unwrap() = jwks;
    }

    /// Workload identity through the test provider with this fake's
    /// issuer, impersonating `service_account` if given.
    pub fn federation(&self, service_account: Option<&str>) -> Credential {
        Credential::WorkloadIdentity {
            audience: AUDIENCE.to_owned(),
            service_account: service_account.map(str::to_owned),
            issuer: self.issuer.clone(),
        }
    }

    /// A fake whose `generateAccessToken` takes source tokens issued by
    /// `source`.
    pub async fn with_source(source: Route) -> Self {
        Self::start(Expect {
            iam_source: Some(source),
            ..Expect::default()
        })
        .await
    }

    /// A minter for `credential` against this fake.
    pub fn minter(&self, credential: Credential) -> Minter {
        Minter::new(self.config(credential)).unwrap()
    }

    /// The fixture key as a credential.
    pub fn key_credential(&self) -> Credential {
        Credential::ServiceAccountKey { key: self.key() }
    }

    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            sts_url: format!("{}/v1/token", self.url),
            iam_credentials_url: self.url.clone(),
            metadata_url: self.url.clone(),
            revoke_url: Some(format!("{}/revoke", self.url)),
        }
    }

    /// The fixture key, with its `token_uri` pointing at this fake.
    pub fn key(&self) -> Arc<ServiceAccountKey> {
        Arc::new(key_with_token_uri(&format!("{}/token", self.url)))
    }

    pub fn script(&self, change: impl FnOnce(&mut Script)) {
        change(&mut self.shared.script.lock().unwrap());
    }

    pub fn fail(&self, route: Route, statuses: &[u16]) {
        self.script(|s| s.failures.entry(route).or_default().extend(statuses));
    }

    pub fn log(&self) -> Log {
        self.shared.log.lock().unwrap().clone()
    }

    /// A configuration for `credential` against this fake, with short time
    /// limits.
    pub fn config(&self, credential: Credential) -> MinterConfig {
        MinterConfig {
            endpoints: self.endpoints(),
            timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(5),
            ..MinterConfig::new(credential)
        }
    }
}

/// The verified caller of the tests' jobs: a GitHub Actions workflow.
pub fn caller() -> Caller {
    let claims = json!({
        "repository": "acme/analytics",
        "workflow": "nightly",
        "run_id": "9001",
    });
    workflow_caller(&claims)
}

/// `source` impersonating the test's target account.
pub fn impersonation(source: ImpersonationSource) -> Credential {
    Credential::Impersonation {
        source,
        service_account: TARGET_ACCOUNT.to_owned(),
    }
}

pub fn key_with_token_uri(token_uri: &str) -> ServiceAccountKey {
    assert!(KEY_JSON.contains(TOKEN_URI_PLACEHOLDER));
    ServiceAccountKey::from_json(
        KEY_JSON
            .replace(TOKEN_URI_PLACEHOLDER, token_uri)
            .as_bytes(),
    )
    .unwrap()
}

/// The base64 lines of the private key, none of which may ever be shown.
pub fn private_key_lines() -> Vec<&'static str> {
    PRIVATE_KEY_PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

fn public_key_der() -> Vec<u8> {
    let base64: String = PUBLIC_KEY_PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    STANDARD.decode(base64).unwrap()
}

impl Shared {
    /// Logs the call; answers an injected failure or a stall first.
    async fn enter(&self, route: Route) -> Option<Response> {
        self.log.lock().unwrap().calls.push(route);
        let (failure, stall) = {
            let mut script = self.script.lock().unwrap();
            let failure = script
                .failures
                .get_mut(&route)
                .and_then(VecDeque::pop_front);
            (failure, script.stall.filter(|_| route == Route::Token))
        };
        if let Some(stall) = stall {
            tokio::time::sleep(stall).await;
        }
        failure.map(|status| {
            let status = StatusCode::from_u16(status).unwrap();
            api_error(
                status,
                "UNAVAILABLE",
                "The service is currently unavailable.",
            )
            .into_response()
        })
    }

    fn issue(&self, route: Route, prefix: &str) -> String {
        let mut log = self.log.lock().unwrap();
        let issued = log.issued.entry(route).or_default();
        let token = format!("ya29.{prefix}-{}-fake-access-token", issued.len() + 1);
        issued.push(token.clone());
        token
    }

    fn scripted<T>(&self, read: impl FnOnce(&Script) -> T) -> T {
        read(&self.script.lock().unwrap())
    }

    /// The scope a source-token request must carry: cloud-platform when the
    /// token is for `generateAccessToken`, else the job's scopes.
    fn scope_for(&self, route: Route) -> String {
        if self.expect.iam_source == Some(route) {
            CLOUD_PLATFORM.to_owned()
        } else {
            self.expect.scopes.join(" ")
        }
    }
}
