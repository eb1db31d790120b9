//! Who is calling: verification of bearer JWTs from trusted OIDC issuers.
//!
//! The gateway's `authenticate` phase hands the bearer token to
//! [`Verifier::verify`], which answers with a [`Principal`] or an
//! [`AuthError`] safe to show to the caller. Signing keys come only from each
//! issuer's configured JWKS (fetched over HTTPS, cached, refreshed), never
//! from the token itself. [`DevIssuer`] is a local ES256 issuer for the demo
//! and the tests; it is trusted only when the configuration enables it.

mod cache;
mod claims;
mod config;
mod dev_issuer;
pub mod dev_login;
mod duration;
mod fetch;
mod keys;
mod token;
mod verified;
mod verifier;

pub use config::{
    IdentityConfig, RawClaimMatch, RawDevIssuer, RawGroupRule, RawIdentity, RawIssuer,
};
pub use dev_issuer::DevIssuer;
pub use duration::parse_duration;
pub use verifier::Verifier;

/// A verified caller. It holds no secret, so it may be recorded (a job
/// that waits for approval keeps its caller's).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Principal {
    /// Readable name: the value of the issuer's `name_claim` (default `sub`).
    pub name: String,
    /// The token's `iss`, exactly as configured.
    pub issuer: String,
    /// The token's `sub`.
    pub subject: String,
    /// Groups from the issuer's groups claim and group rules; sorted, deduplicated.
    pub groups: Vec<String>,
    /// The CI run the token was issued to (`run_id`, `pipeline_id` or
    /// `build_id`), for attribution.
    pub run: Option<String>,
    /// The token's session (`sid`, else `jti`), for attribution.
    pub session: Option<String>,
}

/// Why a token was refused.
///
/// Safe to show to the caller and to log: it never contains the token, and
/// of the token's contents at most its `iss`, `kid` and `alg`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

impl AuthError {
    pub(crate) fn new(reason: impl Into<String>) -> AuthError {
        AuthError(reason.into())
    }
}

/// Quotes a token-supplied value (an `iss` or `kid`) for an error message:
/// escaped like a Rust string and cut to a readable length, so control
/// characters and megabyte-long values never reach a log line intact.
pub(crate) fn quoted(value: &str) -> String {
    const MAX_CHARS: usize = 80;
    if value.chars().count() > MAX_CHARS {
        let head: String = value.chars().take(MAX_CHARS).collect();
        format!("{head:?}… ({} chars)", value.chars().count())
    } else {
        format!("{value:?}")
    }
}
