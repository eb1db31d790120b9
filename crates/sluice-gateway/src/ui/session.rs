//! The UI's cookies: values signed with HMAC-SHA256 under a key every
//! replica shares, so any replica accepts a sign-in another one made.
//!
//! - `sluice_session`: who signed in (the verified principal), until when,
//!   and a random session id the CSRF token is derived from.
//! - `sluice_login`: a sign-in in progress (10 minutes at most): the
//!   `state` sent to the issuer and where to go afterwards. The PKCE
//!   verifier and the nonce are derived from `state` under the key, so the
//!   cookie holds neither.
//!
//! Each value is `BASE64URL(JSON).BASE64URL(HMAC(key, PURPOSE "." JSON64))`:
//! the purpose in the MAC keeps one kind of value from being used as
//! another. The key lives in the encrypted secret store when a master key
//! is configured (shared by replicas that share the store), else in
//! `<data_dir>/ui-session-key` (mode 0600).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sluice_store::{SecretError, Store};

use crate::config::Config;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sluice_session";
/// The sign-in-in-progress cookie's name.
pub const LOGIN_COOKIE: &str = "sluice_login";
/// How long a sign-in may take at the issuer.
pub const LOGIN_LIFETIME_SECS: u64 = 600;

/// The secret's name in the store, and the key file's in the data folder.
const KEY_NAME: &str = "ui-session-key";

/// The key cookies are signed with. Its `Debug` shows nothing of it.
pub struct SessionKey(hmac::Key);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey([redacted])")
    }
}

impl SessionKey {
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// `payload` signed for `purpose`.
    pub fn seal(&self, purpose: &str, payload: &impl Serialize) -> String {
        let json = serde_json::to_vec(payload).unwrap_or_default();
        let body = URL_SAFE_NO_PAD.encode(json);
        let tag = hmac::sign(&self.0, format!("{purpose}.{body}").as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The payload of `value` if this key signed it for `purpose`.
    pub fn open<T: DeserializeOwned>(&self, purpose: &str, value: &str) -> Option<T> {
        let (body, tag) = value.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&self.0, format!("{purpose}.{body}").as_bytes(), &tag).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
    }

    /// A value only the holder of the key can compute from `input`
    /// (43 base64url characters).
    pub fn derive(&self, purpose: &str, input: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.0, format!("{purpose}:{input}").as_bytes()))
    }
}

/// A signed-in reviewer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// Who signed in, as the issuer's ID token said.
    pub principal: sluice_identity::Principal,
    /// Unix seconds after which the cookie is refused.
    pub exp: u64,
    /// Random; the CSRF token is derived from it.
    pub sid: String,
}

impl Session {
    pub fn csrf(&self, key: &SessionKey) -> String {
        key.derive("csrf", &self.sid)
    }
}

/// A sign-in in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginState {
    /// Sent to the issuer as `state`, and must come back.
    pub state: String,
    pub exp: u64,
    /// The UI page to show after signing in.
    pub next: String,
}

impl LoginState {
    /// The PKCE verifier of this sign-in.
    pub fn pkce_verifier(&self, key: &SessionKey) -> String {
        key.derive("pkce", &self.state)
    }

    /// The nonce the ID token must carry.
    pub fn nonce(&self, key: &SessionKey) -> String {
        key.derive("nonce", &self.state)
    }
}

/// 32 random bytes, base64url.
pub fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Path=/ui`, and
/// `Secure` unless the UI is served over plain HTTP on a loopback address.
pub fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/ui; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Whether cookies for `url` must be `Secure`: always, except for plain
/// HTTP on a loopback address (the demo), where browsers would drop them.
pub fn secure_cookies(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return true;
    };
    let host = rest.split('/').next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    !(host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()))
}

/// The key cookies are signed with: from the encrypted secret store when a
/// master key is configured, else from the key file in the data folder;
/// made on first use.
pub async fn load_key(config: &Config, store: &Arc<dyn Store>) -> Result<SessionKey, String> {
    match crate::secrets::secret_store(config, store.clone()) {
        Ok(secrets) => {
            let stored = async {
                if let Some((_, bytes)) = secrets.latest(KEY_NAME).await? {
                    return Ok(SessionKey::from_bytes(&bytes));
                }
                let fresh = random_token().ok_or(SecretError::NoMasterKey)?;
                // Of replicas starting at once, the first version stored
                // wins; the others read it.
                secrets.put_version(KEY_NAME, 1, fresh.as_bytes()).await?;
                let (_, bytes) = secrets
                    .latest(KEY_NAME)
                    .await?
                    .ok_or(SecretError::NoMasterKey)?;
                Ok::<_, SecretError>(SessionKey::from_bytes(&bytes))
            };
            stored
                .await
                .map_err(|e| format!("the UI's session key in the secret store: {e}"))
        }
        Err(SecretError::NoMasterKey) => key_file(&config.data_dir.join(KEY_NAME)).map_err(|e| {
            format!(
                "the UI's session key file in {}: {e}",
                config.data_dir.display()
            )
        }),
        Err(e) => Err(format!("the UI's session key: {e}")),
    }
}

fn key_file(path: &std::path::Path) -> std::io::Result<SessionKey> {
    if let Ok(bytes) = std::fs::read(path) {
        return Ok(SessionKey::from_bytes(&bytes));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let fresh = random_token().ok_or_else(|| std::io::Error::other("no randomness"))?;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(fresh.as_bytes())?;
            file.sync_all()?;
            Ok(SessionKey::from_bytes(fresh.as_bytes()))
        }
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(SessionKey::from_bytes(&std::fs::read(path)?))
        }
        Err(e) => Err(e),
    }
}
