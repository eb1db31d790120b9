//! The access token handed to the BigQuery client for one job.

use std::fmt;
use std::time::{Duration, SystemTime};

use zeroize::Zeroizing;

/// A Google OAuth access token.
///
/// `Debug` never shows the token, and its memory is zeroized on drop. It is
/// deliberately not `Clone`: share it with an `Arc` so exactly one copy
/// exists.
pub struct AccessToken {
    secret: Zeroizing<String>,
    expires_at: SystemTime,
}

impl AccessToken {
    pub fn new(secret: String, expires_at: SystemTime) -> Self {
        Self {
            secret: Zeroizing::new(secret),
            expires_at,
        }
    }

    /// The token itself, only for the `Authorization: Bearer` header.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// When Google stops accepting the token.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// Whether the token stays valid for at least `margin` from now.
    pub fn is_fresh(&self, margin: Duration) -> bool {
        SystemTime::now()
            .checked_add(margin)
            .is_some_and(|deadline| deadline < self.expires_at)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_token() {
        let token = AccessToken::new("ya29.secret".into(), SystemTime::now());
        let shown = format!("{token:?}");
        assert!(!shown.contains("ya29"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn freshness_honours_the_margin() {
        let soon = AccessToken::new("t".into(), SystemTime::now() + Duration::from_secs(60));
        assert!(soon.is_fresh(Duration::from_secs(30)));
        assert!(!soon.is_fresh(Duration::from_secs(90)));
        let past = AccessToken::new("t".into(), SystemTime::now() - Duration::from_secs(1));
        assert!(!past.is_fresh(Duration::ZERO));
    }
}
