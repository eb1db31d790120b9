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
#[error("{reason}")]
pub struct AuthError {
    /// The kind of refusal, for metrics and the audit log.
    pub kind: AuthFailure,
    /// The refusal in words, for the caller.
    pub reason: String,
}

/// The kinds of refusal: a bounded set, fit for a metric's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFailure {
    /// Not a JWT, or a header or claim of the wrong shape.
    Malformed,
    /// An issuer this gateway does not trust.
    UnknownIssuer,
    /// An algorithm the issuer or its key does not allow.
    Algorithm,
    /// A key id the issuer's JWKS does not have.
    UnknownKey,
    /// The issuer's keys could not be fetched.
    KeysUnavailable,
    /// A signature that does not verify.
    Signature,
    /// Past its `exp`.
    Expired,
    /// Before its `nbf`, or issued in the future.
    NotYetValid,
    /// An audience not accepted here.
    Audience,
    /// A required claim missing or invalid (`sub`, `iss`, …).
    Claims,
}

impl AuthFailure {
    /// The label value: `malformed`, `unknown_issuer`, …
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Malformed => "malformed",
            AuthFailure::UnknownIssuer => "unknown_issuer",
            AuthFailure::Algorithm => "algorithm",
            AuthFailure::UnknownKey => "unknown_key",
            AuthFailure::KeysUnavailable => "keys_unavailable",
            AuthFailure::Signature => "signature",
            AuthFailure::Expired => "expired",
            AuthFailure::NotYetValid => "not_yet_valid",
            AuthFailure::Audience => "audience",
            AuthFailure::Claims => "claims",
        }
    }
}

impl AuthError {
    pub(crate) fn new(kind: AuthFailure, reason: impl Into<String>) -> AuthError {
        AuthError {
            kind,
            reason: reason.into(),
        }
    }

    /// A token of the wrong shape.
    pub(crate) fn malformed(reason: impl Into<String>) -> AuthError {
        AuthError::new(AuthFailure::Malformed, reason)
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
