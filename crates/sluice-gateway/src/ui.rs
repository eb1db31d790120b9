//! The reviewer web UI at `/ui/`: server-rendered pages, no script.
//!
//! | path | shows or does |
//! |---|---|
//! | `GET /ui/` | the pending requests the reviewer may decide |
//! | `GET /ui/approvals/{id}` | one request: SQL, estimate, rule, CI run, votes, the vote form |
//! | `POST /ui/approvals/{id}` | a vote (approve or deny, with a reason) |
//! | `GET /ui/history` | closed requests |
//! | `GET /ui/grants` | grants held or reviewed, with a revoke button |
//! | `POST /ui/grants/{id}` | revokes a grant |
//! | `GET /ui/sessions` | the agents' sessions of the last week (audit readers only) |
//! | `GET /ui/sessions/{id}` | one session's timeline, with the rows the agent saw |
//! | `GET /ui/login`, `GET /ui/callback` | OIDC sign-in (authorization code with PKCE) |
//! | `POST /ui/logout` | signs out |
//!
//! Votes go through [`crate::approvals::Approvals::vote`], the same path
//! as the REST API and the CLI, so a reviewer is refused the same things
//! (`approvals.self`, `approvals.reviewers`, a second vote). Every POST
//! carries the session's CSRF token and must come from the UI's origin;
//! no GET changes anything. With the development issuer the gateway also
//! serves its sign-in page (`dev_login.rs`).

mod dev_login;
mod grants;
mod html;
mod login;
mod pages;
mod session;
mod sessions;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sluice_identity::dev_login::DevLogins;
use tokio::sync::OnceCell;

use crate::Gateway;
use crate::config::{Config, LoginIssuer, UiConfig};
use session::{SESSION_COOKIE, Session, SessionKey};

/// Largest form accepted (a vote's reason is at most 2000 characters).
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The UI's state: its configuration, the cookie key, the issuer's
/// endpoints once discovered.
#[derive(Debug)]
pub struct Ui {
    config: UiConfig,
    /// The gateway's URL as browsers reach it, without a trailing slash.
    url: String,
    /// `scheme://host[:port]` of `url`: where forms must come from.
    origin: String,
    secure_cookies: bool,
    key: OnceCell<SessionKey>,
    provider: OnceCell<login::Provider>,
    http: reqwest::Client,
    /// The development issuer's codes, when reviewers sign in with it.
    dev_logins: Option<DevLogins>,
}

impl Ui {
    pub fn new(config: &Config) -> Option<Self> {
        let ui = config.ui.clone()?;
        let url = ui
            .url
            .clone()
            .unwrap_or_else(|| config.base_url.clone())
            .trim_end_matches('/')
            .to_owned();
        let origin = origin_of(&url);
        let dev_logins =
            matches!(ui.login, LoginIssuer::Development { .. }).then(DevLogins::default);
        let secure_cookies = session::secure_cookies(&url);
        if secure_cookies && url.starts_with("http://") {
            tracing::warn!(%url, "the web UI is served over plain HTTP on a non-loopback address: browsers will not send its Secure cookies, so sign-in will fail; put it behind HTTPS and set ui.url");
        }
        Some(Self {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(15))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            config: ui,
            url,
            origin,
            secure_cookies,
            key: OnceCell::new(),
            provider: OnceCell::new(),
            dev_logins,
        })
    }

    /// The gateway's URL as browsers reach it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the issuer sends the browser back to.
    pub fn redirect_uri(&self) -> String {
        format!("{}/ui/callback", self.url)
    }

    /// Whether the gateway serves the development issuer's sign-in.
    pub fn serves_dev_login(&self) -> bool {
        self.dev_logins.is_some()
    }
}

/// `scheme://authority` of a URL.
fn origin_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            format!("{scheme}://{}", rest.split('/').next().unwrap_or_default())
        }
        None => url.to_owned(),
    }
}

/// The UI's routes (and the development issuer's sign-in), when it is on.
pub fn routes(mut router: Router<Arc<Gateway>>, gateway: &Gateway) -> Router<Arc<Gateway>> {
    let Some(ui) = &gateway.ui else {
        return router;
    };
    router = router
        .route(
            "/ui",
            get(|| async { axum::response::Redirect::permanent("/ui/") }),
        )
        .route("/ui/", get(pages::pending))
        .route("/ui/history", get(pages::history))
        .route("/ui/grants", get(grants::list))
        .route("/ui/grants/{id}", post(grants::revoke))
        .route("/ui/sessions", get(sessions::list))
        .route("/ui/sessions/{id}", get(sessions::show))
        .route("/ui/approvals/{id}", get(pages::request).post(pages::vote))
        .route("/ui/login", get(login::start))
        .route("/ui/callback", get(login::callback))
        .route("/ui/logout", post(login::logout));
    if ui.serves_dev_login() {
        router = router
            .route(
                &format!("{}/authorize", crate::DEV_ISSUER_PATH),
                get(dev_login::form).post(dev_login::sign_in),
            )
            .route(
                &format!("{}/token", crate::DEV_ISSUER_PATH),
                post(dev_login::token),
            );
    }
    router
}

/// The UI's state and cookie key, or the page saying why sign-in is
/// unavailable.
async fn ready(gateway: &Gateway) -> Result<(&Ui, &SessionKey), Response> {
    let Some(ui) = gateway.ui.as_ref() else {
        return Err(StatusCode::NOT_FOUND.into_response());
    };
    let key = ui
        .key
        .get_or_try_init(|| session::load_key(&gateway.config, &gateway.store))
        .await
        .map_err(|err| {
            tracing::error!(%err, "the web UI cannot sign anyone in");
            failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable",
                "Sluice cannot read the key its sign-in cookies are signed with; the reason was logged.",
            )
        })?;
    Ok((ui, key))
}

/// The signed-in reviewer, if the request carries a valid, current
/// session cookie.
fn session_of(headers: &HeaderMap, key: &SessionKey) -> Option<Session> {
    let value = session::cookie(headers, SESSION_COOKIE)?;
    let session: Session = key.open("session", value)?;
    (session.exp > session::unix_now()).then_some(session)
}

/// A form POST that may change something: the signed-in session (or the
/// page saying it expired), the form's fields, and the CSRF and origin
/// checks passed. Every state-changing handler starts here.
async fn checked_form(
    gateway: &Gateway,
    request: axum::extract::Request,
) -> Result<
    (
        Session,
        &SessionKey,
        std::collections::HashMap<String, String>,
    ),
    Response,
> {
    let (ui, key) = ready(gateway).await?;
    let (parts, body) = request.into_parts();
    let Some(session) = session_of(&parts.headers, key) else {
        return Err(failure(
            StatusCode::UNAUTHORIZED,
            "Signed out",
            "Your sign-in expired before the form was sent; nothing was recorded. Sign in and try again.",
        ));
    };
    let fields = form_fields(body).await?;
    let csrf = fields.get("csrf").map(String::as_str);
    check_form_origin(ui, &parts.headers, &session, key, csrf)?;
    Ok((session, key, fields))
}

/// A POST may change something only when it carries the session's CSRF
/// token and comes from the UI's own origin (`Origin`, else `Referer`).
#[expect(
    clippy::result_large_err,
    reason = "the refusal is the page itself, answered at once"
)]
fn check_form_origin(
    ui: &Ui,
    headers: &HeaderMap,
    session: &Session,
    key: &SessionKey,
    csrf: Option<&str>,
) -> Result<(), Response> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let referer = headers.get(header::REFERER).and_then(|v| v.to_str().ok());
    let same_origin = match (origin, referer) {
        (Some(origin), _) => origin == ui.origin,
        (None, Some(referer)) => referer.starts_with(&format!("{}/", ui.origin)),
        (None, None) => false,
    };
    let expected = session.csrf(key);
    let token_ok = csrf.is_some_and(|given| {
        aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), expected.as_bytes())
            .is_ok()
    });
    if same_origin && token_ok {
        return Ok(());
    }
    tracing::warn!(
        principal = %session.principal.name,
        same_origin,
        token_ok,
        "web UI form refused: not from the UI's own page (CSRF check)"
    );
    Err(failure(
        StatusCode::FORBIDDEN,
        "The form could not be verified",
        "This form did not come from a page of this Sluice UI (its CSRF token or origin did not match), \
         so nothing was changed. Open the page again and resubmit.",
    ))
}

/// An HTML response with the UI's security headers.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(headers);
    response
}

/// No caching, no framing, no script, no referrer outside the UI.
fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// A page that says what went wrong and what to do.
fn failure(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><div class=\"error\">{}</div><p><a href=\"/ui/\">Back to the pending requests</a></p>",
        html::escape(title),
        html::escape(message)
    );
    html(status, html::page(title, None, &body))
}

/// 303 to `location`, with `cookies` set.
fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    secure_headers(headers);
    response
}

/// A form body's fields (`application/x-www-form-urlencoded`).
async fn form_fields(
    body: axum::body::Body,
) -> Result<std::collections::HashMap<String, String>, Response> {
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            failure(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Form too large",
                "The form was larger than 16 KiB; shorten the reason.",
            )
        })?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
        failure(
            StatusCode::BAD_REQUEST,
            "Invalid form",
            "The form could not be read.",
        )
    })?;
    Ok(pairs.into_iter().collect())
}
