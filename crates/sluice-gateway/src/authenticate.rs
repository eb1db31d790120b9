//! The authenticate phase: who is asking.
//!
//! Clients send their token as `Authorization: Bearer …`. Until issuers are
//! configured every caller is the one local principal; the phase already
//! rejects a malformed `Authorization` header, so turning verification on
//! changes what a principal is, not where it comes from.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::error::GatewayError;

/// The identity a request runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// A readable name: jobs belong to it.
    pub name: String,
}

impl Principal {
    /// The caller when no issuer is configured.
    pub fn local() -> Self {
        Self {
            name: "local".into(),
        }
    }
}

/// Largest `Authorization` header accepted.
const MAX_AUTHORIZATION_BYTES: usize = 16 * 1024;

pub fn authenticate(headers: &HeaderMap) -> Result<Principal, GatewayError> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let unauthorized = |why: &str| GatewayError {
            status: axum::http::StatusCode::UNAUTHORIZED,
            reason: "unauthorized",
            message: format!(
                "Request had invalid authentication credentials: {why}. Send `Authorization: Bearer <token>`."
            ),
            origin: crate::error::Origin::Client,
        };
        if value.len() > MAX_AUTHORIZATION_BYTES {
            return Err(unauthorized("the Authorization header is too large"));
        }
        let text = value
            .to_str()
            .map_err(|_| unauthorized("the Authorization header is not text"))?;
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .ok_or_else(|| unauthorized("the Authorization header is not a bearer token"))?;
        if token.trim().is_empty() {
            return Err(unauthorized("the bearer token is empty"));
        }
    }
    Ok(Principal::local())
}
