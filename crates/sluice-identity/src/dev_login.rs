//! The development issuer's sign-in for browsers: the authorization-code
//! flow with PKCE (RFC 7636, `S256` only) that the reviewer web UI uses
//! in the demo. The gateway serves the pages; this module keeps the codes
//! and checks a redemption: one-time, short-lived, bound to the client,
//! the redirect URI and the PKCE challenge it was issued for.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// How long an issued code may be redeemed.
pub const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// Codes waiting to be redeemed at most; beyond it sign-ins are refused
/// until some expire.
const MAX_PENDING: usize = 1000;

/// What the client asked for at the authorization endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization {
    pub client_id: String,
    pub redirect_uri: String,
    /// `BASE64URL(SHA-256(code_verifier))`.
    pub code_challenge: String,
    /// Copied into the ID token, so the client can tie it to its request.
    pub nonce: Option<String>,
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorization")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// The user the demo login page was told to sign in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevUser {
    pub subject: String,
    pub groups: Vec<String>,
}

/// A code redeemed: who signed in, and the nonce to put in the ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeemed {
    pub user: DevUser,
    pub nonce: Option<String>,
}

/// Why a code was not redeemed: OAuth's `invalid_grant` and friends, with
/// a description that never repeats the code or the verifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {description}")]
pub struct DevLoginError {
    /// The OAuth error code (`invalid_grant`, `invalid_client`, …).
    pub error: &'static str,
    pub description: String,
}

impl DevLoginError {
    fn grant(description: &str) -> Self {
        Self {
            error: "invalid_grant",
            description: description.into(),
        }
    }
}

struct Pending {
    authorization: Authorization,
    user: DevUser,
    expires: Instant,
}

/// The codes issued and not yet redeemed (in memory: the development
/// issuer serves one process).
#[derive(Default)]
pub struct DevLogins {
    codes: Mutex<HashMap<String, Pending>>,
}

impl fmt::Debug for DevLogins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pending = self.codes.lock().map(|c| c.len()).unwrap_or_default();
        f.debug_struct("DevLogins")
            .field("pending", &pending)
            .finish()
    }
}

impl DevLogins {
    /// A new one-time code for `user`, redeemable for [`CODE_LIFETIME`] by
    /// the client of `authorization` only.
    pub fn issue(
        &self,
        authorization: Authorization,
        user: DevUser,
    ) -> Result<String, DevLoginError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| DevLoginError {
                error: "server_error",
                description: "no randomness for a code".into(),
            })?;
        let code = URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.retain(|_, p| p.expires > now);
        if codes.len() >= MAX_PENDING {
            return Err(DevLoginError {
                error: "temporarily_unavailable",
                description: "too many sign-ins in progress; try again in a minute".into(),
            });
        }
        codes.insert(
            code.clone(),
            Pending {
                authorization,
                user,
                expires: now + CODE_LIFETIME,
            },
        );
        Ok(code)
    }

    /// Redeems `code` once: whatever the outcome, it cannot be presented
    /// again. Refused when it expired, or when the client, the redirect URI
    /// or the PKCE verifier differ from those it was issued for.
    pub fn redeem(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        code_verifier: &str,
    ) -> Result<Redeemed, DevLoginError> {
        let pending = self
            .codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(code)
            .ok_or_else(|| DevLoginError::grant("unknown or already used code"))?;
        if pending.expires <= Instant::now() {
            return Err(DevLoginError::grant("the code expired"));
        }
        let asked = &pending.authorization;
        if asked.client_id != client_id {
            return Err(DevLoginError::grant(
                "the code was issued to another client",
            ));
        }
        if asked.redirect_uri != redirect_uri {
            return Err(DevLoginError::grant(
                "redirect_uri differs from the authorization request's",
            ));
        }
        if !pkce_matches(code_verifier, &asked.code_challenge) {
            return Err(DevLoginError::grant(
                "code_verifier does not match the code_challenge (S256)",
            ));
        }
        Ok(Redeemed {
            nonce: asked.nonce.clone(),
            user: pending.user,
        })
    }
}

/// The S256 challenge of a PKCE verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters, whose S256 challenge
/// is `challenge` (compared in constant time).
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let shaped = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    shaped
        && verify_slices_are_equal(pkce_challenge(verifier).as_bytes(), challenge.as_bytes())
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn authorization() -> Authorization {
        Authorization {
            client_id: "sluice".into(),
            redirect_uri: "http://127.0.0.1:9050/ui/callback".into(),
            code_challenge: pkce_challenge(VERIFIER),
            nonce: Some("n-1".into()),
        }
    }

    fn alice() -> DevUser {
        DevUser {
            subject: "alice".into(),
            groups: vec!["reviewers".into()],
        }
    }

    #[test]
    fn the_rfc_7636_example_challenge() {
        assert_eq!(
            pkce_challenge(VERIFIER),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn a_code_is_redeemed_once_with_its_verifier() {
        let logins = DevLogins::default();
        let code = logins.issue(authorization(), alice()).unwrap();
        let uri = "http://127.0.0.1:9050/ui/callback";
        let redeemed = logins.redeem(&code, "sluice", uri, VERIFIER).unwrap();
        assert_eq!(redeemed.user, alice());
        assert_eq!(redeemed.nonce.as_deref(), Some("n-1"));
        let again = logins.redeem(&code, "sluice", uri, VERIFIER).unwrap_err();
        assert_eq!(again.error, "invalid_grant");
        assert!(again.description.contains("already used"), "{again}");
    }

    #[test]
    fn a_wrong_verifier_client_or_redirect_is_refused_and_burns_the_code() {
        let logins = DevLogins::default();
        let uri = "http://127.0.0.1:9050/ui/callback";
        let other = "x".repeat(43);
        for (client, redirect, verifier, why) in [
            ("sluice", uri, other.as_str(), "code_verifier"),
            ("sluice", uri, "short", "code_verifier"),
            ("other", uri, VERIFIER, "another client"),
            ("sluice", "http://evil.example/cb", VERIFIER, "redirect_uri"),
        ] {
            let code = logins.issue(authorization(), alice()).unwrap();
            let err = logins
                .redeem(&code, client, redirect, verifier)
                .unwrap_err();
            assert!(err.description.contains(why), "{err}");
            // Even with everything right now, the code is gone.
            let err = logins.redeem(&code, "sluice", uri, VERIFIER).unwrap_err();
            assert!(err.description.contains("already used"), "{err}");
        }
    }

    #[test]
    fn debug_shows_no_code_or_challenge() {
        let logins = DevLogins::default();
        let code = logins.issue(authorization(), alice()).unwrap();
        let shown = format!("{logins:?} {:?}", authorization());
        assert!(!shown.contains(&code), "{shown}");
        assert!(!shown.contains(&pkce_challenge(VERIFIER)), "{shown}");
    }
}
