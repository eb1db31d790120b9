//! Signing reviewers in: the OIDC authorization-code flow with PKCE
//! (`S256`), `state` and `nonce`, against the configured issuer.
//!
//! 1. `GET /ui/login`: a random `state` goes into the signed
//!    `sluice_login` cookie; the browser is sent to the issuer's
//!    authorization endpoint with the PKCE challenge and the nonce, both
//!    derived from `state` under the cookie key.
//! 2. `GET /ui/callback?code&state`: `state` must match the cookie; the
//!    code is exchanged at the token endpoint with the PKCE verifier; the
//!    ID token is verified by the same [`sluice_identity::Verifier`] as
//!    any bearer token (so a reviewer is the same principal as over
//!    REST), and its `iss`, `aud` and `nonce` must be this sign-in's.
//! 3. The signed `sluice_session` cookie holds the principal until
//!    `ui.session_lifetime` passes; `POST /ui/logout` clears it.

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

use super::session::{
    self, LOGIN_COOKIE, LOGIN_LIFETIME_SECS, LoginState, SESSION_COOKIE, Session,
};
use super::{Ui, failure, ready, see_other};
use crate::Gateway;
use crate::config::LoginIssuer;

/// The issuer's endpoints, from its discovery document.
#[derive(Debug, Clone)]
pub struct Provider {
    authorization_endpoint: String,
    token_endpoint: String,
}

impl Ui {
    /// The issuer's endpoints, discovered once (a failure is tried again
    /// at the next sign-in).
    async fn provider(&self, base_url: &str) -> Result<&Provider, String> {
        self.provider
            .get_or_try_init(|| async {
                let url = match &self.config.login {
                    LoginIssuer::Development { .. } => format!(
                        "{}{}/.well-known/openid-configuration",
                        base_url.trim_end_matches('/'),
                        crate::DEV_ISSUER_PATH
                    ),
                    LoginIssuer::Oidc { discovery_url, .. } => discovery_url.clone(),
                };
                let document: Value = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| format!("cannot read the discovery document {url}: {e}"))?
                    .json()
                    .await
                    .map_err(|e| format!("the discovery document {url} is not JSON: {e}"))?;
                let endpoint = |name: &str| {
                    document
                        .get(name)
                        .and_then(Value::as_str)
                        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                        .map(str::to_owned)
                        .ok_or_else(|| format!("the discovery document {url} has no {name}"))
                };
                Ok(Provider {
                    authorization_endpoint: endpoint("authorization_endpoint")?,
                    token_endpoint: endpoint("token_endpoint")?,
                })
            })
            .await
    }
}

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

/// A page of the UI to return to: a path under `/ui/`, nothing else.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with("/ui/")
                && path.len() <= 200
                && !path.contains("//")
                && path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            path.to_owned()
        }
        _ => "/ui/".to_owned(),
    }
}

/// `GET /ui/login`: off to the issuer.
pub async fn start(
    State(gateway): State<Arc<Gateway>>,
    Query(query): Query<StartQuery>,
) -> Response {
    let (ui, key) = match ready(&gateway).await {
        Ok(ready) => ready,
        Err(response) => return response,
    };
    let provider = match ui.provider(&gateway.config.base_url).await {
        Ok(provider) => provider,
        Err(err) => {
            tracing::error!(%err, "web UI sign-in: the issuer's discovery failed");
            return failure(
                StatusCode::BAD_GATEWAY,
                "Sign-in is unavailable",
                "Sluice could not reach the identity provider's discovery document; the reason was logged. Try again shortly.",
            );
        }
    };
    let Some(state) = session::random_token() else {
        return failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable",
            "No randomness available.",
        );
    };
    let login = LoginState {
        state,
        exp: session::unix_now() + LOGIN_LIFETIME_SECS,
        next: safe_next(query.next.as_deref()),
    };
    let params = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", ui.config.client_id.as_str()),
        ("redirect_uri", ui.redirect_uri().as_str()),
        ("scope", "openid profile email"),
        ("state", login.state.as_str()),
        ("nonce", login.nonce(key).as_str()),
        (
            "code_challenge",
            sluice_identity::dev_login::pkce_challenge(&login.pkce_verifier(key)).as_str(),
        ),
        ("code_challenge_method", "S256"),
    ])
    .unwrap_or_default();
    let endpoint = &provider.authorization_endpoint;
    let joiner = if endpoint.contains('?') { '&' } else { '?' };
    let cookie = session::set_cookie(
        LOGIN_COOKIE,
        &key.seal("login", &login),
        LOGIN_LIFETIME_SECS,
        ui.secure_cookies,
    );
    see_other(&format!("{endpoint}{joiner}{params}"), &[cookie])
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /ui/callback`: the issuer sent the browser back.
pub async fn callback(
    State(gateway): State<Arc<Gateway>>,
    Query(query): Query<Callback>,
    request: Request,
) -> Response {
    let (ui, key) = match ready(&gateway).await {
        Ok(ready) => ready,
        Err(response) => return response,
    };
    let restart = |why: &str| {
        failure(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            &format!("{why} Start again from the sign-in page (/ui/login)."),
        )
    };
    let login: Option<LoginState> = session::cookie(request.headers(), LOGIN_COOKIE)
        .and_then(|value| key.open("login", value))
        .filter(|l: &LoginState| l.exp > session::unix_now());
    let Some(login) = login else {
        return restart(
            "This sign-in was not started in this browser, or took longer than 10 minutes.",
        );
    };
    if let Some(error) = &query.error {
        let shown: String = error.chars().take(80).collect();
        return restart(&format!(
            "The identity provider refused the sign-in ({shown})."
        ));
    }
    let state_ok = query.state.as_deref().is_some_and(|s| {
        aws_lc_rs::constant_time::verify_slices_are_equal(s.as_bytes(), login.state.as_bytes())
            .is_ok()
    });
    let (Some(code), true) = (query.code.as_deref(), state_ok) else {
        tracing::warn!("web UI sign-in refused: the state does not match this browser's sign-in");
        return restart("The answer from the identity provider does not belong to this sign-in.");
    };
    let principal = match exchange(ui, &gateway, code, &login, key).await {
        Ok(principal) => principal,
        Err(why) => {
            tracing::warn!(%why, "web UI sign-in refused");
            return restart(&format!("{why}."));
        }
    };
    let Some(sid) = session::random_token() else {
        return restart("No randomness available.");
    };
    tracing::info!(principal = %principal.name, issuer = %principal.issuer, "signed in to the web UI");
    let lifetime = ui.config.session_lifetime.as_secs();
    let session = Session {
        principal,
        exp: session::unix_now() + lifetime,
        sid,
    };
    let cookies = [
        session::set_cookie(
            SESSION_COOKIE,
            &key.seal("session", &session),
            lifetime,
            ui.secure_cookies,
        ),
        session::set_cookie(LOGIN_COOKIE, "", 0, ui.secure_cookies),
    ];
    see_other(&login.next, &cookies)
}

/// The code for an ID token at the token endpoint; the verified principal
/// it names. Errors say why without the code, verifier or token.
async fn exchange(
    ui: &Ui,
    gateway: &Gateway,
    code: &str,
    login: &LoginState,
    key: &session::SessionKey,
) -> Result<sluice_identity::Principal, String> {
    let provider = ui.provider(&gateway.config.base_url).await?;
    let verifier = zeroize::Zeroizing::new(login.pkce_verifier(key));
    let redirect_uri = ui.redirect_uri();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri.as_str()),
        ("client_id", ui.config.client_id.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let mut request = ui
        .http
        .post(&provider.token_endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap_or_default());
    if let Some(secret) = &ui.config.client_secret {
        request = request.basic_auth(&ui.config.client_id, Some(secret.as_str()));
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("the token endpoint did not answer: {}", e.without_url()))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|_| format!("the token endpoint answered {status} without JSON"))?;
    if !status.is_success() {
        let error = body.get("error").and_then(Value::as_str).unwrap_or("error");
        let shown: String = error.chars().take(60).collect();
        return Err(format!("the identity provider refused the code ({shown})"));
    }
    let id_token = body
        .get("id_token")
        .and_then(Value::as_str)
        .ok_or("the token endpoint answered without an ID token")?;
    let principal = gateway
        .verifier
        .verify(id_token)
        .await
        .map_err(|e| format!("the ID token was refused: {e}"))?;
    // Verified above; read again for the claims the verifier does not
    // check against this sign-in.
    let claims: Value = id_token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or("the ID token's claims are unreadable")?;
    if claims.get("iss").and_then(Value::as_str) != Some(ui.config.login.issuer()) {
        return Err("the ID token comes from another issuer than the UI's".into());
    }
    let client = ui.config.client_id.as_str();
    let for_us = match claims.get("aud") {
        Some(Value::String(aud)) => aud == client,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(client)),
        _ => false,
    };
    if !for_us {
        return Err("the ID token was issued for another client".into());
    }
    let nonce_ok = claims
        .get("nonce")
        .and_then(Value::as_str)
        .is_some_and(|n| {
            aws_lc_rs::constant_time::verify_slices_are_equal(
                n.as_bytes(),
                login.nonce(key).as_bytes(),
            )
            .is_ok()
        });
    if !nonce_ok {
        return Err("the ID token's nonce is not this sign-in's".into());
    }
    Ok(principal)
}

/// `POST /ui/logout`: the session cookie is cleared.
pub async fn logout(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let (ui, key) = match ready(&gateway).await {
        Ok(ready) => ready,
        Err(response) => return response,
    };
    let (parts, body) = request.into_parts();
    if let Some(session) = super::session_of(&parts.headers, key) {
        let fields = match super::form_fields(body).await {
            Ok(fields) => fields,
            Err(response) => return response,
        };
        let csrf = fields.get("csrf").map(String::as_str);
        if let Err(response) = super::check_form_origin(ui, &parts.headers, &session, key, csrf) {
            return response;
        }
        tracing::info!(principal = %session.principal.name, "signed out of the web UI");
    }
    see_other(
        "/ui/",
        &[session::set_cookie(
            SESSION_COOKIE,
            "",
            0,
            ui.secure_cookies,
        )],
    )
}
