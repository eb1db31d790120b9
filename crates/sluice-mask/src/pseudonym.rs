//! Keyed pseudonyms: HMAC-SHA256 under a per-deployment key, rendered in
//! the column's own type, so equal inputs give equal outputs (joins and
//! GROUP BY still work) while nobody without the key can test a guess.
//!
//! An unkeyed hash of an SSN is no mask: there are fewer than a billion
//! SSNs, and hashing all of them takes minutes. With a 256-bit key the
//! attacker has nothing to hash candidates under.
//!
//! The MAC is domain-separated by a context string (a class such as
//! `us_ssn`, or a grant id): the same value under two contexts gives
//! unrelated pseudonyms, so two grants cannot be joined against each other
//! unless they share a context. Its input is
//! `len(context) as u32 big-endian ‖ context ‖ value`, which no two
//! different (context, value) pairs share.
//!
//! Renderings and their collision odds (birthday bound, `n` distinct
//! values, `b` bits kept: about `n² / 2^(b+1)`):
//!
//! | type | rendering | bits | odds for 10⁹ values |
//! |---|---|---|---|
//! | STRING (and JSON) | `psn_` + 24 lowercase base32 characters | 120 | ≈ 4 × 10⁻¹⁹ |
//! | BYTES | 16 bytes, base64 as BigQuery renders BYTES | 128 | ≈ 1.5 × 10⁻²¹ |
//! | INT64, NUMERIC, BIGNUMERIC | a non-negative integer, as a JSON string of digits | 63 | ≈ 5 % (≈ 5 × 10⁻⁸ for 10⁶ values) |
//!
//! Other types (FLOAT64, BOOL, dates and times, GEOGRAPHY, …) have no
//! rendering that keeps equality without leaking (a float's 52 bits, a
//! date's few thousand values): a pseudonym on them renders NULL.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::schema::FieldType;

/// The shortest key accepted: 256 bits, the MAC's own strength.
pub const MIN_KEY_BYTES: usize = 32;

/// The prefix of a STRING pseudonym, so a reader sees it is one.
pub const STRING_PREFIX: &str = "psn_";

/// The per-deployment pseudonym key. It cannot be read back, and its
/// `Debug` never shows it.
pub struct PseudonymKey(hmac::Key);

impl PseudonymKey {
    /// A key from secret bytes (at least [`MIN_KEY_BYTES`]); the caller
    /// keeps them in the secret store and should zeroize its own copy.
    pub fn new(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort {
                got: secret.len(),
                min: MIN_KEY_BYTES,
            });
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }

    /// The 32-byte MAC of `value` under `context`.
    fn mac(&self, context: &str, value: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.0);
        // Contexts are short configuration strings; saturate rather than
        // wrap on a pathological one.
        let len = u32::try_from(context.len()).unwrap_or(u32::MAX);
        ctx.update(&len.to_be_bytes());
        ctx.update(context.as_bytes());
        ctx.update(value.as_bytes());
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// The pseudonym of `value` (a cell as BigQuery's REST JSON renders
    /// it) for a column of type `ty`, or `None` where the type has no
    /// equality-keeping rendering (the cell becomes NULL).
    pub fn pseudonym(&self, context: &str, value: &str, ty: FieldType) -> Option<String> {
        match ty {
            FieldType::String | FieldType::Json => Some(self.text(context, value)),
            FieldType::Bytes => Some(STANDARD.encode(&self.mac(context, value)[..16])),
            FieldType::Integer | FieldType::Numeric | FieldType::Bignumeric => {
                Some(self.integer(context, value).to_string())
            }
            _ => None,
        }
    }

    /// `psn_` and 120 bits of the MAC in lowercase base32.
    pub fn text(&self, context: &str, value: &str) -> String {
        let mac = self.mac(context, value);
        let mut out = String::with_capacity(STRING_PREFIX.len() + 24);
        out.push_str(STRING_PREFIX);
        base32_lower(&mac[..15], &mut out);
        out
    }

    /// A non-negative 63-bit integer from the MAC.
    pub fn integer(&self, context: &str, value: &str) -> i64 {
        let mac = self.mac(context, value);
        let mut first = [0u8; 8];
        first.copy_from_slice(&mac[..8]);
        // Shifting one bit out leaves a value below 2^63: it always fits.
        i64::try_from(u64::from_be_bytes(first) >> 1).unwrap_or(i64::MAX)
    }
}

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey([redacted])")
    }
}

/// Why a key was refused. It names lengths only, never key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the pseudonym key is {got} bytes long; at least {min} are required")]
    TooShort { got: usize, min: usize },
}

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// RFC 4648 base32 in lowercase, for inputs a multiple of 5 bytes long.
fn base32_lower(bytes: &[u8], out: &mut String) {
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = buf.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        for i in (0..8).rev() {
            out.push(char::from(BASE32[((bits >> (i * 5)) & 31) as usize]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PseudonymKey {
        PseudonymKey::new(&[byte; 32]).expect("32 bytes")
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(
            PseudonymKey::new(&[1; 16]).unwrap_err(),
            KeyError::TooShort { got: 16, min: 32 }
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let shown = format!("{:?}", key(0x41));
        assert_eq!(shown, "PseudonymKey([redacted])");
    }

    #[test]
    fn string_pseudonyms_have_a_fixed_shape() {
        let p = key(1).text("us_ssn", "123-45-6789");
        assert_eq!(p.len(), 28);
        assert!(p.starts_with("psn_"));
        assert!(p[4..].bytes().all(|b| BASE32.contains(&b)));
    }

    #[test]
    fn the_context_separates_domains() {
        let k = key(1);
        assert_ne!(k.text("us_ssn", "x"), k.text("email", "x"));
        // Moving a byte between context and value changes the input.
        assert_ne!(k.text("ab", "c"), k.text("a", "bc"));
    }

    #[test]
    fn integer_pseudonyms_are_non_negative_and_typed() {
        let k = key(7);
        for v in 0..500 {
            let rendered = k
                .pseudonym("id", &v.to_string(), FieldType::Integer)
                .expect("INT64 renders");
            let n: i64 = rendered.parse().expect("digits");
            assert!(n >= 0);
        }
        let bytes = k.pseudonym("b", "AAEC", FieldType::Bytes).expect("BYTES");
        assert_eq!(STANDARD.decode(bytes).expect("base64").len(), 16);
        assert_eq!(k.pseudonym("d", "2026-01-01", FieldType::Date), None);
        assert_eq!(k.pseudonym("f", "1.5", FieldType::Float), None);
    }

    #[test]
    fn base32_matches_rfc_4648_vectors() {
        let mut out = String::new();
        base32_lower(b"fooba", &mut out);
        assert_eq!(out, "mzxw6ytb");
    }
}
