//! `ui:`: the reviewer web UI and how reviewers sign in to it.

use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

/// The shortest and longest a sign-in lasts.
const MIN_SESSION: Duration = Duration::from_secs(5 * 60);
const MAX_SESSION: Duration = Duration::from_secs(24 * 3600);

/// `ui:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawUi {
    /// Serve the reviewer web UI at `/ui/` (`false` by default).
    pub enabled: Option<bool>,
    /// Who reviewers sign in with: `development` (the built-in development
    /// issuer, for the demo; the default when it is on), or the `issuer` of
    /// one of `identity.issuers`.
    pub issuer: Option<String>,
    /// The OAuth client id registered with the issuer; it must be one of
    /// that issuer's `audiences` (the ID token's `aud`). The development
    /// issuer's audience by default.
    pub client_id: Option<String>,
    /// The environment variable holding the client secret, for issuers
    /// that want one besides PKCE (confidential clients).
    pub client_secret_env: Option<String>,
    /// How long a sign-in lasts (`8h`; between `5m` and `24h`).
    pub session_lifetime: Option<String>,
    /// The gateway's URL as browsers reach it (`https://sluice.example.com`),
    /// if not the listen address: the base of the sign-in's redirect URI
    /// and the origin forms must come from.
    pub url: Option<String>,
}

/// Where reviewers sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginIssuer {
    /// The development issuer, served by the gateway itself.
    Development { issuer: String },
    /// An OIDC provider among `identity.issuers`.
    Oidc {
        issuer: String,
        /// Its discovery document.
        discovery_url: String,
    },
}

impl LoginIssuer {
    /// The ID token's expected `iss`.
    pub fn issuer(&self) -> &str {
        match self {
            Self::Development { issuer } | Self::Oidc { issuer, .. } => issuer,
        }
    }
}

/// The validated `ui:` section.
#[derive(Clone)]
pub struct UiConfig {
    pub login: LoginIssuer,
    pub client_id: String,
    /// Sent to the token endpoint (HTTP Basic) when set.
    pub client_secret: Option<Zeroizing<String>>,
    pub session_lifetime: Duration,
    /// The public URL, when it is not the listen address.
    pub url: Option<String>,
}

impl std::fmt::Debug for UiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiConfig")
            .field("login", &self.login)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("session_lifetime", &self.session_lifetime)
            .field("url", &self.url)
            .finish()
    }
}

/// `ui:` checked against `identity:`; `None` when the UI is off.
pub fn validate(
    raw: &RawUi,
    identity: &sluice_identity::RawIdentity,
) -> Result<Option<UiConfig>, (String, String)> {
    if !raw.enabled.unwrap_or(false) {
        return Ok(None);
    }
    let dev = &identity.development_issuer;
    let dev_audience = dev.audience.clone().unwrap_or_else(|| "sluice".into());
    let (login, client_id) = match raw.issuer.as_deref() {
        Some("development") | None if dev.enabled => {
            let issuer = dev
                .issuer
                .clone()
                .unwrap_or_else(|| "http://127.0.0.1/sluice-dev-issuer".into());
            let client_id = raw
                .client_id
                .clone()
                .unwrap_or_else(|| dev_audience.clone());
            if client_id != dev_audience {
                return Err((
                    "ui.client_id".into(),
                    format!(
                        "the development issuer signs in client \"{dev_audience}\" (its audience) only"
                    ),
                ));
            }
            (LoginIssuer::Development { issuer }, client_id)
        }
        Some("development") => {
            return Err((
                "ui.issuer".into(),
                "\"development\" needs identity.development_issuer.enabled: true".into(),
            ));
        }
        None => {
            return Err((
                "ui.issuer".into(),
                "name the issuer reviewers sign in with: one of identity.issuers".into(),
            ));
        }
        Some(name) => {
            let Some(trusted) = identity.issuers.iter().find(|i| i.issuer == name) else {
                return Err((
                    "ui.issuer".into(),
                    format!(
                        "\"{name}\" is not under identity.issuers: reviewers' ID tokens are verified like any token"
                    ),
                ));
            };
            let Some(client_id) = raw.client_id.clone() else {
                return Err((
                    "ui.client_id".into(),
                    "the client id registered with the issuer is required".into(),
                ));
            };
            if !trusted.audiences.contains(&client_id) {
                return Err((
                    "ui.client_id".into(),
                    format!(
                        "\"{client_id}\" is not among the audiences of {name} under identity.issuers, \
                         so its ID tokens would be refused: add it there"
                    ),
                ));
            }
            let discovery_url = trusted.discovery_url.clone().unwrap_or_else(|| {
                format!(
                    "{}/.well-known/openid-configuration",
                    name.trim_end_matches('/')
                )
            });
            (
                LoginIssuer::Oidc {
                    issuer: name.to_owned(),
                    discovery_url,
                },
                client_id,
            )
        }
    };
    let client_secret = match &raw.client_secret_env {
        None => None,
        Some(name) => match std::env::var(name) {
            Ok(value) if !value.trim().is_empty() => Some(Zeroizing::new(value.trim().to_owned())),
            _ => {
                return Err((
                    "ui.client_secret_env".into(),
                    format!("the environment variable {name} is not set"),
                ));
            }
        },
    };
    let session_lifetime = match &raw.session_lifetime {
        None => Duration::from_secs(8 * 3600),
        Some(text) => sluice_identity::parse_duration(text)
            .map_err(|e| ("ui.session_lifetime".to_owned(), e))?,
    };
    if !(MIN_SESSION..=MAX_SESSION).contains(&session_lifetime) {
        return Err((
            "ui.session_lifetime".into(),
            "must be between 5m and 24h".into(),
        ));
    }
    let url = match &raw.url {
        None => None,
        Some(url) => {
            let url = url.trim_end_matches('/');
            let host = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            if host.is_none_or(|h| h.is_empty() || h.contains('/')) {
                return Err((
                    "ui.url".into(),
                    format!("\"{url}\" is not an http(s) URL without a path"),
                ));
            }
            Some(url.to_owned())
        }
    };
    Ok(Some(UiConfig {
        login,
        client_id,
        client_secret,
        session_lifetime,
        url,
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, LoginIssuer};

    fn key_of(yaml: &str) -> String {
        let errors = Config::parse(yaml, "t.yaml").unwrap_err();
        errors.0[0].key.clone()
    }

    const TRUSTED: &str =
        "identity:\n  issuers:\n    - {issuer: https://idp.example, audiences: [sluice-ui]}\n";

    #[test]
    fn the_demo_serves_the_ui_with_the_development_issuer() {
        let ui = Config::demo().ui.expect("the demo turns the UI on");
        assert!(matches!(ui.login, LoginIssuer::Development { .. }));
        assert_eq!(ui.client_id, "sluice");
        assert!(Config::parse("{}", "t.yaml").unwrap().ui.is_none());
    }

    #[test]
    fn the_issuer_must_be_trusted_and_the_client_one_of_its_audiences() {
        assert_eq!(key_of("ui: {enabled: true}\n"), "ui.issuer");
        assert_eq!(
            key_of("ui: {enabled: true, issuer: development}\n"),
            "ui.issuer"
        );
        let untrusted = "ui: {enabled: true, issuer: https://other.example, client_id: x}\n";
        assert_eq!(key_of(&format!("{TRUSTED}{untrusted}")), "ui.issuer");
        let foreign = "ui: {enabled: true, issuer: https://idp.example, client_id: other}\n";
        assert_eq!(key_of(&format!("{TRUSTED}{foreign}")), "ui.client_id");
        let good = "ui: {enabled: true, issuer: https://idp.example, client_id: sluice-ui, session_lifetime: 1h, url: \"https://sluice.example.com/\"}\n";
        let ui = Config::parse(&format!("{TRUSTED}{good}"), "t.yaml")
            .unwrap()
            .ui
            .unwrap();
        assert_eq!(
            ui.login,
            LoginIssuer::Oidc {
                issuer: "https://idp.example".into(),
                discovery_url: "https://idp.example/.well-known/openid-configuration".into(),
            }
        );
        assert_eq!(ui.url.as_deref(), Some("https://sluice.example.com"));
    }

    #[test]
    fn bad_values_name_their_key_and_secrets_stay_out_of_debug() {
        let dev = "identity:\n  development_issuer: {enabled: true}\n";
        for (ui, key) in [
            ("ui: {enabled: true, client_id: other}\n", "ui.client_id"),
            (
                "ui: {enabled: true, session_lifetime: 48h}\n",
                "ui.session_lifetime",
            ),
            (
                "ui: {enabled: true, session_lifetime: soon}\n",
                "ui.session_lifetime",
            ),
            ("ui: {enabled: true, url: \"ftp://x\"}\n", "ui.url"),
            ("ui: {enabled: true, url: \"https://x/ui\"}\n", "ui.url"),
            (
                "ui: {enabled: true, client_secret_env: SLUICE_TEST_VARIABLE_NOBODY_SETS}\n",
                "ui.client_secret_env",
            ),
        ] {
            assert_eq!(key_of(&format!("{dev}{ui}")), key, "{ui}");
        }
        // PATH is set everywhere: it stands in for a client secret.
        let config = Config::parse(
            &format!("{dev}ui: {{enabled: true, client_secret_env: PATH}}\n"),
            "t.yaml",
        )
        .unwrap();
        assert!(config.ui.as_ref().unwrap().client_secret.is_some());
        assert!(!format!("{config:?}").contains(&std::env::var("PATH").unwrap()));
    }
}
