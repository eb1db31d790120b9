//! The master key: the one key that wraps every secret's data key. It is
//! given to the gateway from outside (an environment variable or a file)
//! and never written to the store; the store only records its id.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::SecretError;

/// Length of a master key in bytes (an AES-256 key).
const KEY_LEN: usize = 32;

/// Prefixed to the key before hashing it into its id, so the id is never
/// the plain SHA-256 of the key and cannot be matched against other uses
/// of the same bytes.
const ID_LABEL: &[u8] = b"sluice master key id v1\0";

/// The environment variable the CLI and gateway read the key from.
pub const MASTER_KEY_ENV: &str = "SLUICE_MASTER_KEY";

/// A 256-bit master key. Zeroized on drop; `Debug` shows only its id.
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl MasterKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        // The system random source does not fail on supported platforms;
        // if it ever does, no key must be handed out.
        aws_lc_rs::rand::fill(bytes.as_mut())
            .expect("the system random source is unavailable; no master key can be generated");
        Self { bytes }
    }

    /// Reads a key from standard base64 (surrounding whitespace ignored).
    /// Errors never repeat the text, which may be a real key slightly off.
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SecretError::BadMasterKey(
                "the master key is empty: expected 32 bytes in base64 (44 characters)".into(),
            ));
        }
        // Reserve the whole output up front so decoding never reallocates
        // and leaves a stray copy of key bytes behind.
        let mut decoded =
            Zeroizing::new(Vec::with_capacity(base64::decoded_len_estimate(text.len())));
        if STANDARD.decode_vec(text, &mut decoded).is_err() {
            return Err(SecretError::BadMasterKey(
                "the master key is not valid base64: expected 32 bytes in standard base64 \
                 (44 characters ending in '=')"
                    .into(),
            ));
        }
        if decoded.len() != KEY_LEN {
            return Err(SecretError::BadMasterKey(format!(
                "the master key decodes to {} bytes; it must be exactly {KEY_LEN}",
                decoded.len()
            )));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&decoded);
        Ok(Self { bytes })
    }

    /// The key from the `SLUICE_MASTER_KEY` value if given (and not blank),
    /// else from `file`. The value is passed in rather than read here so
    /// callers and tests decide where it comes from.
    pub fn load(env_value: Option<&str>, file: Option<&Path>) -> Result<Self, SecretError> {
        if let Some(value) = env_value.filter(|v| !v.trim().is_empty()) {
            return Self::from_base64(value).map_err(|e| e.in_source(MASTER_KEY_ENV));
        }
        let Some(path) = file else {
            return Err(SecretError::NoMasterKey);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            SecretError::BadMasterKey(format!(
                "cannot read the master key file {}: {e}",
                path.display()
            ))
        })?;
        let text = Zeroizing::new(text);
        Self::from_base64(&text)
            .map_err(|e| e.in_source(&format!("master key file {}", path.display())))
    }

    /// The key in standard base64, for writing it out once (`init-key`).
    pub fn to_base64(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::with_capacity(
            base64::encoded_len(KEY_LEN, true).unwrap_or(64),
        ));
        STANDARD.encode_string(self.bytes.as_slice(), &mut text);
        text
    }

    /// The key's fingerprint: 16 hex characters, safe to print and store.
    pub fn id(&self) -> String {
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        context.update(ID_LABEL);
        context.update(self.bytes.as_slice());
        let digest = context.finish();
        digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub(super) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id()).finish()
    }
}

#[cfg(test)]
mod tests;
