//! Service-account key files: the JSON Google hands out for a service
//! account, parsed once and kept only as a signing key.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::CredentialError;

/// Google's OAuth token endpoint, for key files that do not name one.
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// A service-account key file.
///
/// The PEM text of `private_key` is zeroized as soon as it is parsed; the
/// parsed key lives in AWS-LC memory, which AWS-LC clears when it is freed,
/// so no copy outlives the value. `Debug` shows the account, never the key.
pub struct ServiceAccountKey {
    client_email: String,
    private_key_id: Option<String>,
    project_id: Option<String>,
    token_uri: String,
    signer: RsaKeyPair,
}

impl ServiceAccountKey {
    /// Parses a key file as downloaded from Google.
    ///
    /// Refuses (as [`Invalid`](crate::CredentialErrorKind::Invalid)) anything
    /// that is not a service-account key — user credentials, workload identity
    /// configurations, malformed JSON — with a message that never quotes the
    /// key.
    pub fn from_json(bytes: &[u8]) -> Result<Self, CredentialError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            // serde's own message could quote a value from the file; the
            // position is enough to find the mistake.
            CredentialError::invalid(format!(
                "the service-account key file is not valid JSON (error at line {} column {}); \
                 download the key again from IAM → Service accounts → Keys",
                e.line(),
                e.column()
            ))
        })?;
        let Value::Object(mut fields) = value else {
            return Err(CredentialError::invalid(
                "the service-account key file is not a JSON object; expected the key file \
                 Google hands out, with \"type\": \"service_account\"",
            ));
        };
        check_type(&fields)?;
        let client_email = take_string(&mut fields, "client_email")?
            .filter(|email| !email.is_empty())
            .ok_or_else(|| missing("client_email"))?;
        let private_key = take_string(&mut fields, "private_key")?
            .map(Zeroizing::new)
            .ok_or_else(|| missing("private_key"))?;
        let signer = parse_private_key(&private_key, &client_email)?;
        Ok(Self {
            private_key_id: take_string(&mut fields, "private_key_id")?,
            project_id: take_string(&mut fields, "project_id")?,
            token_uri: take_string(&mut fields, "token_uri")?
                .unwrap_or_else(|| GOOGLE_TOKEN_URI.to_owned()),
            client_email,
            signer,
        })
    }

    /// The service account the key belongs to.
    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// Where JWT-bearer assertions signed with this key are exchanged.
    pub fn token_uri(&self) -> &str {
        &self.token_uri
    }

    pub fn project_id(&self) -> Option<&str> {
        self.project_id.as_deref()
    }

    /// The key's id at Google, sent as the assertion's `kid`.
    pub fn private_key_id(&self) -> Option<&str> {
        self.private_key_id.as_deref()
    }

    /// An RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature of `message`.
    pub(crate) fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, CredentialError> {
        let mut signature = vec![0; self.signer.public_modulus_len()];
        self.signer
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| {
                CredentialError::invalid(format!(
                    "the key of {} could not sign the token request; store a new key",
                    self.client_email
                ))
            })?;
        Ok(signature)
    }
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("project_id", &self.project_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// Refuses files whose `type` is not `service_account`, saying what the file
/// looks like instead.
fn check_type(fields: &Map<String, Value>) -> Result<(), CredentialError> {
    let kind = match fields.get("type") {
        Some(Value::String(kind)) if kind == "service_account" => return Ok(()),
        Some(Value::String(kind)) => kind.as_str(),
        _ => {
            return Err(CredentialError::invalid(
                "the file is not a service-account key: it has no \"type\": \"service_account\"; \
                 create a JSON key under IAM → Service accounts → Keys",
            ));
        }
    };
    let next = match kind {
        "authorized_user" => {
            "it holds a user's credentials (from `gcloud auth application-default login`); \
             create a key for a service account instead"
        }
        "external_account" => {
            "it is a workload identity federation configuration; configure a \
             workload-identity credential instead of a key"
        }
        "impersonated_service_account" => {
            "it describes impersonation; configure an impersonation credential instead"
        }
        _ => "create a JSON key under IAM → Service accounts → Keys",
    };
    Err(CredentialError::invalid(format!(
        "the file is not a service-account key: its type is {}, not \"service_account\"; {next}",
        shown_type(kind)
    )))
}

/// Removes a string field; a field of another JSON type is an error (whose
/// message names the field, not its value).
fn take_string(
    fields: &mut Map<String, Value>,
    name: &str,
) -> Result<Option<String>, CredentialError> {
    match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(CredentialError::invalid(format!(
            "the service-account key file's \"{name}\" is not a string; download the key again"
        ))),
    }
}

fn missing(name: &str) -> CredentialError {
    CredentialError::invalid(format!(
        "the service-account key file has no \"{name}\"; download the key again from \
         IAM → Service accounts → Keys"
    ))
}

/// Parses a PKCS#8 PEM RSA private key, zeroizing every intermediate copy.
fn parse_private_key(pem: &str, client_email: &str) -> Result<RsaKeyPair, CredentialError> {
    let not_pkcs8 = || {
        CredentialError::invalid(format!(
            "the \"private_key\" of the key for {client_email} is not a PKCS#8 PEM RSA private key \
             (\"{PEM_BEGIN}\"); download the key again"
        ))
    };
    let body = pem
        .trim()
        .strip_prefix(PEM_BEGIN)
        .and_then(|rest| rest.strip_suffix(PEM_END))
        .ok_or_else(not_pkcs8)?;
    let base64: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    let der = Zeroizing::new(
        STANDARD
            .decode(base64.as_bytes())
            .map_err(|_| not_pkcs8())?,
    );
    RsaKeyPair::from_pkcs8(&der).map_err(|rejected| {
        CredentialError::invalid(format!(
            "the \"private_key\" of the key for {client_email} was rejected ({rejected}); \
             download the key again"
        ))
    })
}

/// A `type` value fit for a message: Google's types are short snake_case
/// words, and anything else is not echoed (it might be a misplaced secret).
fn shown_type(kind: &str) -> String {
    let word = kind.len() <= 40
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if word && !kind.is_empty() {
        format!("{kind:?}")
    } else {
        "an unrecognized value".to_owned()
    }
}

#[cfg(test)]
mod tests;
