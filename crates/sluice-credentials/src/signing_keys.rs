//! Sluice's own signing keys: the ES256 (P-256) keys its workload-identity
//! assertions are signed with, kept as one ring in the encrypted secret
//! store and published, public halves only, as a JWKS.
//!
//! A ring holds the key in use, keys waiting to take over (a rotation with
//! a delay, so that a provider given the JWKS as a file can be updated
//! first) and keys that were replaced, which stay published for
//! [`RETIRED_KEYS_PUBLISHED_FOR`] so that an assertion signed just before a
//! rotation still verifies.

use std::fmt::{self, Write as _};
use std::time::Duration;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::CredentialError;

/// The name the ring is stored under in the secret store.
pub const SIGNING_KEYS_SECRET: &str = "sluice.signing-keys";

/// How long a replaced key stays in the JWKS: far longer than an assertion
/// lives, and long enough for a provider's cached copy of the JWKS.
pub const RETIRED_KEYS_PUBLISHED_FOR: Duration = Duration::from_secs(24 * 3600);

/// Identifies the stored format, so a future one can be told apart.
const FORMAT: &str = "sluice-signing-keys/1";
const ALGORITHM: &str = "ES256";

/// Where a key is in its life at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not yet used: a rotation with a delay.
    Pending,
    /// Signs new assertions.
    Active,
    /// Replaced; still published until `until` (unix seconds).
    Retired { until: u64 },
    /// Replaced long enough ago that it is no longer published.
    Expired,
}

/// What may be shown of a key: everything but the private half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key id (`kid`): the RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// When it was made, unix seconds.
    pub created: u64,
    /// When it starts (or started) signing, unix seconds.
    pub active_from: u64,
    pub state: KeyState,
}

/// One P-256 key.
pub(crate) struct SigningKey {
    kid: String,
    created: u64,
    active_from: u64,
    /// Public point coordinates, base64url.
    x: String,
    y: String,
    /// Lives in AWS-LC memory, cleared when freed.
    pair: EcdsaKeyPair,
}

/// The ring: newest first (by `active_from`).
pub struct SigningKeys {
    keys: Vec<SigningKey>,
}

impl SigningKeys {
    /// A ring with one new key, active from `now`.
    pub fn generate(now: u64) -> Result<Self, CredentialError> {
        Ok(Self {
            keys: vec![SigningKey::generate(now, now)?],
        })
    }

    /// Reads a ring as [`to_json`](Self::to_json) wrote it. Errors never
    /// quote the file.
    pub fn from_json(bytes: &[u8]) -> Result<Self, CredentialError> {
        let unreadable = |why: &str| {
            CredentialError::invalid(format!(
                "the stored signing keys ({SIGNING_KEYS_SECRET}) cannot be read: {why}; \
                 if they were overwritten, delete the store's secret and let Sluice make a new \
                 key, then give the pool provider the new JWKS"
            ))
        };
        let value: Value = serde_json::from_slice(bytes).map_err(|_| unreadable("not JSON"))?;
        let Value::Object(mut ring) = value else {
            return Err(unreadable("not a JSON object"));
        };
        if ring.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(unreadable("an unknown format"));
        }
        let Some(Value::Array(entries)) = ring.remove("keys") else {
            return Err(unreadable("no \"keys\" list"));
        };
        let mut keys = Vec::with_capacity(entries.len());
        for entry in entries {
            let Value::Object(mut entry) = entry else {
                return Err(unreadable("a key that is not an object"));
            };
            keys.push(SigningKey::from_entry(&mut entry).map_err(unreadable)?);
        }
        if keys.is_empty() {
            return Err(unreadable("no keys"));
        }
        keys.sort_by_key(|key| std::cmp::Reverse(key.active_from));
        Ok(Self { keys })
    }

    /// The ring as JSON, private keys included: for the encrypted store only.
    pub fn to_json(&self) -> Result<Zeroizing<Vec<u8>>, CredentialError> {
        // Reserved up front so the buffer holding private keys never moves.
        let mut text = Zeroizing::new(String::with_capacity(64 + 512 * self.keys.len()));
        text.push_str(&format!("{{\"format\":\"{FORMAT}\",\"keys\":["));
        for (i, key) in self.keys.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            let pkcs8 = key.pair.to_pkcs8v1().map_err(|_| {
                CredentialError::invalid("cannot serialize a signing key (AWS-LC refused)")
            })?;
            // Every value but the key is a number or a base64url string.
            let _ = write!(
                text,
                "{{\"kid\":\"{}\",\"alg\":\"{ALGORITHM}\",\"created\":{},\"active_from\":{},\"pkcs8\":\"",
                key.kid, key.created, key.active_from
            );
            STANDARD.encode_string(pkcs8.as_ref(), &mut text);
            text.push_str("\"}");
        }
        text.push_str("]}");
        Ok(Zeroizing::new(std::mem::take(&mut *text).into_bytes()))
    }

    /// A ring with a new key added, active `activate_after` from `now`.
    /// Keys no longer published are dropped; with `drop_previous`, every
    /// other key is (for a key that must stop being trusted at once).
    pub fn rotate(
        &self,
        now: u64,
        activate_after: Duration,
        drop_previous: bool,
    ) -> Result<Self, CredentialError> {
        if drop_previous && !activate_after.is_zero() {
            return Err(CredentialError::invalid(
                "dropping the previous keys leaves nothing to sign with until the new key is \
                 active; rotate without a delay, or drop the previous keys in a later rotation",
            ));
        }
        let new = SigningKey::generate(now, now.saturating_add(activate_after.as_secs()))?;
        let mut keys = vec![new];
        if !drop_previous {
            for (index, key) in self.keys.iter().enumerate() {
                if self.state(index, now) != KeyState::Expired {
                    keys.push(key.duplicate()?);
                }
            }
        }
        keys.sort_by_key(|key| std::cmp::Reverse(key.active_from));
        Ok(Self { keys })
    }

    /// The key that signs at `now`: the newest one whose time has come.
    pub(crate) fn active(&self, now: u64) -> Result<&SigningKey, CredentialError> {
        self.keys
            .iter()
            .find(|key| key.active_from <= now)
            .ok_or_else(|| {
                CredentialError::invalid(
                    "no signing key is active yet (each is waiting for its activation time); \
                     check the system clock, or rotate the signing key again without a delay",
                )
            })
    }

    /// The id of the key that signs at `now`.
    pub fn active_kid(&self, now: u64) -> Result<&str, CredentialError> {
        Ok(&self.active(now)?.kid)
    }

    /// Every key and its state at `now`, newest first.
    pub fn describe(&self, now: u64) -> Vec<KeyInfo> {
        self.keys
            .iter()
            .enumerate()
            .map(|(index, key)| KeyInfo {
                kid: key.kid.clone(),
                created: key.created,
                active_from: key.active_from,
                state: self.state(index, now),
            })
            .collect()
    }

    /// The published keys at `now` (pending, active, recently retired) as a
    /// JWKS: public halves only.
    pub fn jwks(&self, now: u64) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .enumerate()
            .filter(|(index, _)| self.state(*index, now) != KeyState::Expired)
            .map(|(_, key)| {
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": key.x,
                    "y": key.y,
                    "kid": key.kid,
                    "alg": ALGORITHM,
                    "use": "sig",
                })
            })
            .collect();
        json!({ "keys": keys })
    }

    fn state(&self, index: usize, now: u64) -> KeyState {
        let key = &self.keys[index];
        if key.active_from > now {
            return KeyState::Pending;
        }
        // The newest key that took over after this one, if any did.
        let replaced_at = self.keys[..index]
            .iter()
            .map(|newer| newer.active_from)
            .filter(|from| *from <= now)
            .min();
        match replaced_at {
            None => KeyState::Active,
            Some(at) => {
                let until = at.saturating_add(RETIRED_KEYS_PUBLISHED_FOR.as_secs());
                if until > now {
                    KeyState::Retired { until }
                } else {
                    KeyState::Expired
                }
            }
        }
    }
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("SigningKeys")
            .field("kids", &kids)
            .field("private_keys", &"[redacted]")
            .finish()
    }
}

impl SigningKey {
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWS signature (`r || s`) of `input`.
    pub(crate) fn sign(&self, input: &[u8]) -> Result<Vec<u8>, CredentialError> {
        let signature = self
            .pair
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input)
            .map_err(|_| {
                CredentialError::invalid("signing an assertion failed (AWS-LC refused)")
            })?;
        Ok(signature.as_ref().to_vec())
    }

    fn generate(created: u64, active_from: u64) -> Result<Self, CredentialError> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| CredentialError::invalid("cannot generate a P-256 signing key"))?;
        Self::new(pair, created, active_from)
    }

    fn new(pair: EcdsaKeyPair, created: u64, active_from: u64) -> Result<Self, CredentialError> {
        // An uncompressed point: 0x04 || x || y.
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 0x04 {
            return Err(CredentialError::invalid(
                "a signing key has an unexpected public key encoding",
            ));
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..]);
        Ok(Self {
            kid: thumbprint(&x, &y),
            created,
            active_from,
            x,
            y,
            pair,
        })
    }

    /// Reads one stored key, taking (and zeroizing) its private half.
    fn from_entry(entry: &mut Map<String, Value>) -> Result<Self, &'static str> {
        if entry.get("alg").and_then(Value::as_str) != Some(ALGORITHM) {
            return Err("a key of an algorithm other than ES256");
        }
        let number = |name: &str| entry.get(name).and_then(Value::as_u64);
        let (Some(created), Some(active_from)) = (number("created"), number("active_from")) else {
            return Err("a key without its times");
        };
        let kid = entry.get("kid").and_then(Value::as_str).map(str::to_owned);
        let Some(Value::String(base64)) = entry.remove("pkcs8") else {
            return Err("a key without its private half");
        };
        let base64 = Zeroizing::new(base64);
        let der = Zeroizing::new(
            STANDARD
                .decode(base64.as_bytes())
                .map_err(|_| "a private key that is not base64")?,
        );
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .map_err(|_| "a private key that is not a PKCS#8 P-256 key")?;
        let key = Self::new(pair, created, active_from).map_err(|_| "a malformed public key")?;
        if kid.as_deref() != Some(key.kid.as_str()) {
            return Err("a key whose id does not match it");
        }
        Ok(key)
    }

    /// The same key again (the AWS-LC key pair is not `Clone`).
    fn duplicate(&self) -> Result<Self, CredentialError> {
        let pkcs8 = self
            .pair
            .to_pkcs8v1()
            .map_err(|_| CredentialError::invalid("cannot copy a signing key (AWS-LC refused)"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|_| CredentialError::invalid("cannot copy a signing key (AWS-LC refused)"))?;
        Self::new(pair, self.created, self.active_from)
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

#[cfg(test)]
mod tests;
