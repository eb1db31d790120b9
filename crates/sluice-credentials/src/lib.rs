//! Upstream credentials: one short-lived Google access token per BigQuery
//! job.
//!
//! The gateway's `execute` phase asks a [`Minter`] for a token, runs the job
//! with it, then hands it back to [`Minter::revoke`]. A token is never shared
//! between jobs or principals, and a failed flow never falls back to a
//! broader credential: it ends in a [`CredentialError`] that says which step
//! failed and what to do next.
//!
//! The [`Credential`] kinds and the calls they make:
//!
//! | kind | calls | token lifetime |
//! |---|---|---|
//! | `WorkloadIdentity` | STS token exchange of an assertion Sluice signs for the caller | an hour, fixed by STS |
//! | `WorkloadIdentity` with a service account | STS, then `generateAccessToken` | `lifetime` |
//! | `ServiceAccountKey` | JWT-bearer grant at the key's `token_uri` | an hour; revoked after the job |
//! | `Impersonation` | the gateway's own token (key or metadata server), then `generateAccessToken` | `lifetime` |
//!
//! Workload identity never sends the caller's own token to Google: the pool
//! trusts only [`SluiceIssuer`], whose [`SigningKeys`] live in the encrypted
//! secret store, so nothing an agent holds can be exchanged for a Google
//! credential around the gateway.
//!
//! Every endpoint is configurable ([`Endpoints`]). Tokens, keys and
//! assertions are redacted in `Debug`, zeroized on drop and kept out of every
//! message. [`retry`] holds the backoff shared with the BigQuery client.

mod config;
mod error;
mod http;
mod iam;
mod issuer;
mod jwt_bearer;
mod key;
mod metadata;
mod minter;
pub mod retry;
mod revoke;
mod signing_keys;
mod sts;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
mod token;

pub use config::{
    BIGQUERY_SCOPE, Credential, Endpoints, ImpersonationSource, MAX_LIFETIME, MinterConfig,
    check_endpoint,
};
pub use error::{CredentialError, CredentialErrorKind};
pub use issuer::{
    ASSERTION_LIFETIME, COPIED_CLAIMS, Caller, DISCOVERY_PATH, JWKS_PATH, SluiceIssuer, subject,
};
pub use key::ServiceAccountKey;
pub use minter::Minter;
pub use signing_keys::{
    KeyInfo, KeyState, RETIRED_KEYS_PUBLISHED_FOR, SIGNING_KEYS_SECRET, SigningKeys,
};
pub use token::AccessToken;
