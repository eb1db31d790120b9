//! Tokens already verified, so a client polling with one token pays for
//! its signature check once, not on every request.
//!
//! Keyed by the SHA-256 of the token (the token itself is not kept): only
//! the very same bytes find an entry. An entry lives until the token's
//! `exp`, and at most [`MAX_AGE`], so a key an issuer has withdrawn stops
//! being trusted for cached tokens within that time too. The cache is
//! bounded: at [`MAX_ENTRIES`] expired entries are dropped, and if that is
//! not enough, all of them.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::Principal;

/// How long a verification is reused at most.
pub const MAX_AGE: u64 = 300;
/// How many verified tokens are kept at most.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub(crate) struct VerifiedTokens {
    entries: Mutex<HashMap<[u8; 32], (Principal, u64)>>,
}

impl VerifiedTokens {
    pub fn key(token: &str) -> [u8; 32] {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        key
    }

    /// The principal of a token verified before, if its entry is still
    /// good at `now` (Unix seconds).
    pub fn get(&self, key: &[u8; 32], now: u64) -> Option<Principal> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(_, until)| now < *until)
            .map(|(principal, _)| principal.clone())
    }

    /// Remembers a verified token whose `exp` is `expires`.
    pub fn insert(&self, key: [u8; 32], principal: Principal, expires: u64, now: u64) {
        let until = expires.min(now.saturating_add(MAX_AGE));
        if until <= now {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (principal, until));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(name: &str) -> Principal {
        Principal {
            name: name.into(),
            issuer: "https://issuer.test".into(),
            subject: name.into(),
            groups: vec!["g".into()],
            run: None,
            session: None,
        }
    }

    #[test]
    fn an_entry_serves_the_same_token_until_it_expires_or_ages_out() {
        let cache = VerifiedTokens::default();
        let key = VerifiedTokens::key("a.b.c");
        assert_ne!(key, VerifiedTokens::key("a.b.d"));
        cache.insert(key, principal("p"), 1_000, 900);
        assert_eq!(cache.get(&key, 950).map(|p| p.name), Some("p".into()));
        assert_eq!(cache.get(&key, 1_000), None, "expired");
        assert_eq!(cache.get(&VerifiedTokens::key("a.b.d"), 950), None);

        // A long-lived token is reused for MAX_AGE at most.
        cache.insert(key, principal("p"), 100_000, 1_000);
        assert!(cache.get(&key, 1_000 + MAX_AGE - 1).is_some());
        assert!(cache.get(&key, 1_000 + MAX_AGE).is_none());

        // An already expired token is not kept.
        let other = VerifiedTokens::key("x.y.z");
        cache.insert(other, principal("q"), 10, 20);
        assert!(cache.get(&other, 5).is_none());
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = VerifiedTokens::default();
        for i in 0..MAX_ENTRIES + 10 {
            let key = VerifiedTokens::key(&i.to_string());
            cache.insert(key, principal("p"), 2_000, 1_000);
        }
        assert!(cache.len() <= MAX_ENTRIES);
        assert!(cache.len() >= 10);
    }
}
