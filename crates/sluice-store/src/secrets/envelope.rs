//! Envelope encryption of one secret version. Each version gets its own
//! random data key; the secret is encrypted under the data key and the data
//! key under the master key, both with AES-256-GCM and a random nonce. The
//! associated data binds each ciphertext to the secret's name and version,
//! so a record moved to another name or version no longer opens. Rotating
//! the master key re-wraps the small data keys and leaves the secret
//! ciphertexts as they are.
//!
//! Both `wrapped_key` and `ciphertext` are laid out as
//! `nonce (12 bytes) || encrypted bytes || tag (16 bytes)`.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use zeroize::Zeroizing;

use super::{MasterKey, SecretError};

const TAG_LEN: usize = 16;
const DATA_KEY_LEN: usize = 32;
const MAX_NAME_LEN: usize = 128;

/// Purpose labels that start the associated data, so a wrapped data key can
/// never be opened as a secret or the other way round.
const SECRET_LABEL: &[u8] = b"sluice secret v1\0";
const DATA_KEY_LABEL: &[u8] = b"sluice data-key v1\0";

/// One secret version as stored: encrypted, with no plaintext.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub name: String,
    pub version: i64,
    /// [`MasterKey::id`] of the key `wrapped_key` is wrapped under.
    pub master_key_id: String,
    /// The version's data key, encrypted under the master key.
    pub wrapped_key: Vec<u8>,
    /// The secret, encrypted under the data key.
    pub ciphertext: Vec<u8>,
    pub created_ms: i64,
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("master_key_id", &self.master_key_id)
            .field("wrapped_key_len", &self.wrapped_key.len())
            .field("ciphertext_len", &self.ciphertext.len())
            .field("created_ms", &self.created_ms)
            .finish()
    }
}

/// Checks a secret name against `[A-Za-z0-9_.-]{1,128}`.
pub fn check_name(name: &str) -> Result<(), SecretError> {
    let valid = (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        return Ok(());
    }
    let length = name.chars().count();
    let described = if length == 0 {
        "(empty)".to_owned()
    } else if length <= 64 {
        format!("{name:?}")
    } else {
        format!("({length} characters)")
    };
    Err(SecretError::InvalidName(described))
}

/// Encrypts `plaintext` as version `version` of secret `name` under a fresh
/// data key wrapped by `master`.
pub fn seal(
    master: &MasterKey,
    name: &str,
    version: i64,
    plaintext: &[u8],
) -> Result<SealedSecret, SecretError> {
    check_name(name)?;
    let mut data_key = Zeroizing::new([0u8; DATA_KEY_LEN]);
    aws_lc_rs::rand::fill(data_key.as_mut())
        .map_err(|_| SecretError::Crypto("the system random source is unavailable"))?;
    let ciphertext = encrypt(
        data_key.as_slice(),
        &associated_data(SECRET_LABEL, name, version),
        plaintext,
    )?;
    let wrapped_key = encrypt(
        master.bytes(),
        &associated_data(DATA_KEY_LABEL, name, version),
        data_key.as_slice(),
    )?;
    Ok(SealedSecret {
        name: name.to_owned(),
        version,
        master_key_id: master.id(),
        wrapped_key,
        ciphertext,
        created_ms: crate::now_ms(),
    })
}

/// Decrypts a sealed secret. The plaintext is zeroized when dropped.
pub fn open(master: &MasterKey, sealed: &SealedSecret) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    let data_key = unwrap_data_key(master, sealed)?;
    decrypt(
        data_key.as_slice(),
        &associated_data(SECRET_LABEL, &sealed.name, sealed.version),
        &sealed.ciphertext,
    )
    .ok_or_else(|| corrupt(sealed))
}

/// The same secret with its data key wrapped under `new` instead of `old`;
/// the ciphertext is unchanged.
pub fn rewrap(
    old: &MasterKey,
    new: &MasterKey,
    sealed: &SealedSecret,
) -> Result<SealedSecret, SecretError> {
    let data_key = unwrap_data_key(old, sealed)?;
    let wrapped_key = encrypt(
        new.bytes(),
        &associated_data(DATA_KEY_LABEL, &sealed.name, sealed.version),
        data_key.as_slice(),
    )?;
    Ok(SealedSecret {
        master_key_id: new.id(),
        wrapped_key,
        ..sealed.clone()
    })
}

fn unwrap_data_key(
    master: &MasterKey,
    sealed: &SealedSecret,
) -> Result<Zeroizing<[u8; DATA_KEY_LEN]>, SecretError> {
    let given = master.id();
    if sealed.master_key_id != given {
        return Err(SecretError::WrongMasterKey {
            name: sealed.name.clone(),
            sealed_with: sealed.master_key_id.clone(),
            given,
        });
    }
    let opened = decrypt(
        master.bytes(),
        &associated_data(DATA_KEY_LABEL, &sealed.name, sealed.version),
        &sealed.wrapped_key,
    )
    .ok_or_else(|| corrupt(sealed))?;
    if opened.len() != DATA_KEY_LEN {
        return Err(corrupt(sealed));
    }
    let mut data_key = Zeroizing::new([0u8; DATA_KEY_LEN]);
    data_key.copy_from_slice(&opened);
    Ok(data_key)
}

fn corrupt(sealed: &SealedSecret) -> SecretError {
    SecretError::Corrupt {
        name: sealed.name.clone(),
        version: sealed.version,
    }
}

/// `label || name || 0 || version (8 bytes, big-endian)`. Names cannot hold
/// a zero byte, so the encoding is unambiguous.
fn associated_data(label: &[u8], name: &str, version: i64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(label.len() + name.len() + 9);
    aad.extend_from_slice(label);
    aad.extend_from_slice(name.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

/// `nonce || AES-256-GCM(key, plaintext) || tag`, with a random nonce.
fn encrypt(key: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SecretError> {
    let key = RandomizedNonceKey::new(&AES_256_GCM, key)
        .map_err(|_| SecretError::Crypto("the key was refused"))?;
    // Capacity for the whole result up front: the buffer holds plaintext
    // until it is encrypted and must not be copied by a reallocation.
    let mut out = Zeroizing::new(Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN));
    out.extend_from_slice(&[0u8; NONCE_LEN]);
    out.extend_from_slice(plaintext);
    let (nonce, tag) = key
        .seal_in_place_separate_tag(Aad::from(aad), &mut out[NONCE_LEN..])
        .map_err(|_| SecretError::Crypto("sealing failed"))?;
    out[..NONCE_LEN].copy_from_slice(nonce.as_ref());
    out.extend_from_slice(tag.as_ref());
    Ok(std::mem::take(&mut *out))
}

/// Opens what [`encrypt`] made; `None` when it does not authenticate.
fn decrypt(key: &[u8], aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let key = RandomizedNonceKey::new(&AES_256_GCM, key).ok()?;
    let mut buffer = Zeroizing::new(body.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad), &mut buffer)
        .ok()?
        .len();
    buffer.truncate(len);
    Some(buffer)
}

#[cfg(test)]
mod tests;
