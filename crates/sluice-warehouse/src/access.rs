//! [`Access`]: the upstream credential one warehouse call is made with.
//!
//! The gateway mints a token for the caller (and the job) before it calls
//! the warehouse, and hands it over with the call; the warehouse never
//! holds a credential of its own, so nothing it does can run with a
//! broader one. The embedded warehouse needs none.

use std::sync::Arc;

use sluice_credentials::AccessToken;

/// The credential for one call: a token minted for this caller, or none.
#[derive(Debug, Clone, Default)]
pub struct Access {
    token: Option<Arc<AccessToken>>,
}

impl Access {
    /// No credential: for warehouses that need none.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn with_token(token: Arc<AccessToken>) -> Self {
        Self { token: Some(token) }
    }

    pub fn token(&self) -> Option<&AccessToken> {
        self.token.as_deref()
    }
}
