//! The development issuer's sign-in for the web UI (demo only):
//!
//! - `GET /sluice-dev-issuer/authorize`: a plainly labelled page where
//!   one types the subject and groups to sign in as;
//! - `POST /sluice-dev-issuer/authorize`: issues a one-time code (60 s)
//!   and sends the browser back to the UI;
//! - `POST /sluice-dev-issuer/token`: exchanges the code for an ID token
//!   after checking the PKCE verifier, the redirect URI and the client.
//!
//! Only the UI's own client and redirect URI are served: the page never
//! sends a code anywhere else.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sluice_identity::dev_login::{Authorization, DevUser};

use super::html::{escape, page};
use super::{Ui, failure, form_fields, html as respond, see_other};
use crate::Gateway;

/// How long the ID tokens it issues last.
const ID_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// The authorization request, checked: only the UI's client and redirect
/// URI, `response_type=code`, and a PKCE `S256` challenge.
fn authorization(
    ui: &Ui,
    params: &HashMap<String, String>,
) -> Result<(Authorization, String), String> {
    let get = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    if get("client_id") != ui.config.client_id {
        return Err(
            "unknown client_id: the development issuer signs in Sluice's web UI only".into(),
        );
    }
    if get("redirect_uri") != ui.redirect_uri() {
        return Err("redirect_uri is not the web UI's callback".into());
    }
    if get("response_type") != "code" {
        return Err("response_type must be code".into());
    }
    let challenge = get("code_challenge");
    if get("code_challenge_method") != "S256"
        || challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("a PKCE code_challenge with code_challenge_method=S256 is required".into());
    }
    let state = get("state");
    if state.is_empty() || state.len() > 512 {
        return Err("state is required (at most 512 characters)".into());
    }
    let nonce = params.get("nonce").filter(|n| !n.is_empty()).cloned();
    if nonce.as_ref().is_some_and(|n| n.len() > 512) {
        return Err("nonce is longer than 512 characters".into());
    }
    Ok((
        Authorization {
            client_id: get("client_id").to_owned(),
            redirect_uri: get("redirect_uri").to_owned(),
            code_challenge: challenge.to_owned(),
            nonce,
        },
        state.to_owned(),
    ))
}

/// Names a demo user may have: letters, digits, `.`, `_`, `@`, `-`.
fn plain_name(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
}

fn refused(why: &str) -> Response {
    failure(
        StatusCode::BAD_REQUEST,
        "Development issuer: sign-in refused",
        why,
    )
}

/// `GET /sluice-dev-issuer/authorize`: the demo's sign-in page.
pub async fn form(
    State(gateway): State<Arc<Gateway>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(ui) = gateway.ui.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Err(why) = authorization(ui, &params) {
        return refused(&why);
    }
    let mut hidden = String::new();
    for name in [
        "client_id",
        "redirect_uri",
        "response_type",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
    ] {
        if let Some(value) = params.get(name) {
            hidden.push_str(&format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                escape(value)
            ));
        }
    }
    let body = format!(
        "<div class=\"dev\"><h1>Development issuer — demo users only</h1>\
         <p><strong>This is not a real sign-in.</strong> The development issuer signs in whoever you type, in \
         whatever groups you type, with no password. It exists for the demo and tests; turn it off \
         (<code>identity.development_issuer.enabled: false</code>) wherever real reviewers sign in.</p>\
         <form method=\"post\" action=\"{path}/authorize\">{hidden}\
         <label for=\"subject\">Subject (user name)</label><input id=\"subject\" name=\"subject\" value=\"alice\" required>\
         <label for=\"groups\">Groups (comma-separated)</label><input id=\"groups\" name=\"groups\" value=\"reviewers\">\
         <p><button class=\"primary\" type=\"submit\">Sign in as this demo user</button></p></form></div>",
        path = crate::DEV_ISSUER_PATH
    );
    respond(StatusCode::OK, page("Development issuer", None, &body))
}

/// `POST /sluice-dev-issuer/authorize`: a code for the typed user, back
/// to the UI.
pub async fn sign_in(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let Some((ui, logins)) = gateway
        .ui
        .as_ref()
        .and_then(|ui| Some((ui, ui.dev_logins.as_ref()?)))
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let fields = match form_fields(request.into_body()).await {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    let (authorization, state) = match authorization(ui, &fields) {
        Ok(checked) => checked,
        Err(why) => return refused(&why),
    };
    let subject = fields.get("subject").map(|s| s.trim()).unwrap_or_default();
    if !plain_name(subject) {
        return refused("The subject must be 1 to 64 letters, digits, '.', '_', '@' or '-'.");
    }
    let groups: Vec<String> = fields
        .get("groups")
        .map(String::as_str)
        .unwrap_or_default()
        .split([',', ' '])
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect();
    if groups.len() > 20 || !groups.iter().all(|g| plain_name(g)) {
        return refused(
            "Groups are up to 20 names of letters, digits, '.', '_', '@' or '-', separated by commas.",
        );
    }
    let redirect_uri = authorization.redirect_uri.clone();
    let user = DevUser {
        subject: subject.to_owned(),
        groups,
    };
    match logins.issue(authorization, user) {
        Ok(code) => {
            let query = serde_urlencoded::to_string([("code", code.as_str()), ("state", &state)])
                .unwrap_or_default();
            see_other(&format!("{redirect_uri}?{query}"), &[])
        }
        Err(err) => refused(&err.description),
    }
}

/// `POST /sluice-dev-issuer/token`: the code for an ID token (OAuth's JSON
/// answers, errors included).
pub async fn token(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let (Some(ui), Some(dev)) = (gateway.ui.as_ref(), gateway.dev_issuer.as_ref()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(logins) = ui.dev_logins.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let error = |status: StatusCode, error: &str, description: &str| {
        oauth_json(
            status,
            json!({"error": error, "error_description": description}),
        )
    };
    let Ok(fields) = form_fields(request.into_body()).await else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the form could not be read",
        );
    };
    let get = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    if get("grant_type") != "authorization_code" {
        return error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only authorization_code",
        );
    }
    match logins.redeem(
        get("code"),
        get("client_id"),
        get("redirect_uri"),
        get("code_verifier"),
    ) {
        Ok(redeemed) => {
            let id_token = dev.mint_id_token(
                &redeemed.user.subject,
                &redeemed.user.groups,
                redeemed.nonce.as_deref(),
                ID_TOKEN_TTL,
            );
            tracing::info!(subject = %redeemed.user.subject, "development issuer: signed in a demo user");
            oauth_json(
                StatusCode::OK,
                json!({
                    "access_token": id_token,
                    "id_token": id_token,
                    "token_type": "Bearer",
                    "expires_in": ID_TOKEN_TTL.as_secs(),
                }),
            )
        }
        Err(err) => {
            tracing::warn!(error = err.error, why = %err.description, "development issuer: code refused");
            error(StatusCode::BAD_REQUEST, err.error, &err.description)
        }
    }
}

fn oauth_json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
