//! The development issuer: a local ES256 key in a file, minting tokens for the
//! demo and the tests. Trusted only when `identity.development_issuer.enabled`.

use std::fmt;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::keys::{KeyKind, SigningKey};

const KEY_FILE: &str = "dev-issuer-key.p8";

/// The development issuer: an ES256 key kept in `dev-issuer-key.p8`.
pub struct DevIssuer {
    issuer: String,
    audience: String,
    key_id: String,
    /// Public point coordinates, base64url.
    x: String,
    y: String,
    signing: EncodingKey,
}

impl fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("key_id", &self.key_id)
            .field("signing_key", &"[redacted]")
            .finish()
    }
}

impl DevIssuer {
    /// Loads `dir/dev-issuer-key.p8` (PKCS#8 DER), creating it (mode 0600,
    /// directory included) when missing.
    pub fn load_or_create(dir: &Path, issuer: &str, audience: &str) -> io::Result<DevIssuer> {
        let path = dir.join(KEY_FILE);
        let pkcs8 = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => create_key_file(dir, &path)?,
            Err(e) => return Err(e),
        };
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is not a PKCS#8 P-256 private key; delete it to have a new one made",
                        path.display()
                    ),
                )
            })?;
        // An uncompressed point: 0x04 || x || y.
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 0x04 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected public key encoding",
            ));
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..]);
        Ok(DevIssuer {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            key_id: thumbprint(&x, &y),
            x,
            y,
            signing: EncodingKey::from_ec_der(&pkcs8),
        })
    }

    /// The issuer identifier, the tokens' `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience the tokens are minted for.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// A signed ES256 JWT: `iss`, `aud`, `sub`, `groups`, `iat`, `nbf`,
    /// `exp` = now + `ttl`, and a random `jti`.
    pub fn mint(&self, subject: &str, groups: &[String], ttl: Duration) -> String {
        self.mint_with(subject, groups, &serde_json::Map::new(), ttl)
    }

    /// [`DevIssuer::mint`] with `extra` claims besides (a CI run's
    /// `repository` or `run_id`, say); they cannot replace the standard
    /// ones.
    pub fn mint_with(
        &self,
        subject: &str,
        groups: &[String],
        extra: &serde_json::Map<String, Value>,
        ttl: Duration,
    ) -> String {
        let now = unix_now();
        let mut claims = json!({
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "groups": groups,
            "iat": now,
            "nbf": now,
            "exp": now.saturating_add(ttl.as_secs()),
            "jti": random_id(),
        });
        if let Some(map) = claims.as_object_mut() {
            for (key, value) in extra {
                map.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, &claims, &self.signing)
            .expect("signing with a key that was loaded and checked cannot fail")
    }

    /// An ID token for the browser sign-in ([`crate::dev_login`]): the
    /// claims of [`mint`](Self::mint), with the client's `nonce`.
    pub fn mint_id_token(
        &self,
        subject: &str,
        groups: &[String],
        nonce: Option<&str>,
        ttl: Duration,
    ) -> String {
        let now = unix_now();
        let mut claims = json!({
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "groups": groups,
            "iat": now,
            "nbf": now,
            "exp": now.saturating_add(ttl.as_secs()),
            "jti": random_id(),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, &claims, &self.signing)
            .expect("signing with a key that was loaded and checked cannot fail")
    }

    /// The discovery document with the browser sign-in's endpoints
    /// (`authorize` and `token` under `base_url`), for when the gateway
    /// serves them.
    pub fn discovery_document_with_login(&self, base_url: &str) -> Value {
        let base = base_url.trim_end_matches('/');
        let mut document = self.discovery_document(base_url);
        document["authorization_endpoint"] = json!(format!("{base}/sluice-dev-issuer/authorize"));
        document["token_endpoint"] = json!(format!("{base}/sluice-dev-issuer/token"));
        document["response_types_supported"] = json!(["code", "id_token"]);
        document["grant_types_supported"] = json!(["authorization_code"]);
        document["code_challenge_methods_supported"] = json!(["S256"]);
        document["token_endpoint_auth_methods_supported"] = json!(["none"]);
        document["scopes_supported"] = json!(["openid"]);
        document
    }

    /// The OIDC discovery document, with `jwks_uri` under `base_url`.
    pub fn discovery_document(&self, base_url: &str) -> Value {
        let base = base_url.trim_end_matches('/');
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{base}/sluice-dev-issuer/jwks.json"),
            "id_token_signing_alg_values_supported": ["ES256"],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "claims_supported": ["iss", "aud", "sub", "groups", "iat", "nbf", "exp", "jti"],
        })
    }

    /// The public key as a JWKS.
    pub fn jwks(&self) -> Value {
        json!({"keys": [{
            "kty": "EC",
            "crv": "P-256",
            "x": self.x,
            "y": self.y,
            "kid": self.key_id,
            "alg": "ES256",
            "use": "sig",
        }]})
    }

    /// The public key, for verifying without a fetch.
    pub(crate) fn verifying_key(&self) -> SigningKey {
        SigningKey {
            kind: KeyKind::EcP256,
            alg: Some("ES256".to_string()),
            decoding: jsonwebtoken::DecodingKey::from_ec_components(&self.x, &self.y)
                .expect("coordinates encoded by this module decode"),
        }
    }
}

fn create_key_file(dir: &Path, path: &Path) -> io::Result<Vec<u8>> {
    std::fs::create_dir_all(dir)?;
    let document =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| io::Error::other("cannot generate a P-256 key"))?;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(mut file) => {
            file.write_all(document.as_ref())?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), "created the development issuer's signing key");
            Ok(document.as_ref().to_vec())
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => std::fs::read(path),
        Err(e) => Err(e),
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    // The jti only has to be unique; fall back to the clock if the RNG fails.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        bytes[..16].copy_from_slice(
            &SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
                .to_be_bytes(),
        );
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
