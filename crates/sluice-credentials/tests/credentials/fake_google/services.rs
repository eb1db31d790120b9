//! The fake's services: each checks every field it receives and answers
//! in Google's shapes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use super::{AUDIENCE, KEY_EMAIL, KEY_ID, Route, SLUICE_ISSUER, Shared, TARGET_ACCOUNT};

/// An error answer in one of Google's JSON shapes.
pub(super) struct GoogleError(StatusCode, Value);

impl IntoResponse for GoogleError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> GoogleError {
    GoogleError(
        status,
        json!({"error": code, "error_description": description}),
    )
}

pub(super) fn api_error(status: StatusCode, kind: &str, message: &str) -> GoogleError {
    GoogleError(
        status,
        json!({"error": {"code": status.as_u16(), "message": message, "status": kind}}),
    )
}

fn bad_request(what: impl std::fmt::Display) -> GoogleError {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &format!("fake: {what}"),
    )
}

/// Parses a form body after checking its content type, and checks that it
/// holds exactly `fields`.
fn form(
    headers: &HeaderMap,
    body: &str,
    fields: &[&str],
) -> Result<HashMap<String, String>, GoogleError> {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    if content_type != Some("application/x-www-form-urlencoded") {
        return Err(bad_request(format!("content-type is {content_type:?}")));
    }
    let form: HashMap<String, String> = serde_urlencoded::from_str(body).map_err(bad_request)?;
    let mut got: Vec<&str> = form.keys().map(String::as_str).collect();
    let mut want = fields.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    if got != want {
        return Err(bad_request(format!(
            "form fields are {got:?}, expected {want:?}"
        )));
    }
    Ok(form)
}

fn expect_field(form: &HashMap<String, String>, name: &str, want: &str) -> Result<(), GoogleError> {
    match form.get(name) {
        Some(value) if value == want => Ok(()),
        other => Err(bad_request(format!(
            "{name} is {other:?}, expected {want:?}"
        ))),
    }
}

/// The JWT-bearer grant at the OAuth token endpoint.
pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(failure) = shared.enter(Route::Token).await {
        return failure;
    }
    match check_assertion(&shared, &headers, &body) {
        Ok(()) => {
            let token = shared.issue(Route::Token, "key");
            Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}))
                .into_response()
        }
        Err(error) => error.into_response(),
    }
}

fn check_assertion(shared: &Shared, headers: &HeaderMap, body: &str) -> Result<(), GoogleError> {
    let form = form(headers, body, &["grant_type", "assertion"])?;
    expect_field(
        &form,
        "grant_type",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    )?;
    let assertion = &form["assertion"];
    shared
        .log
        .lock()
        .unwrap()
        .assertions
        .push(assertion.clone());
    let (deleted, echo) = shared.scripted(|s| (s.key_deleted, s.echo_secrets));
    if deleted {
        let description = if echo {
            format!("Invalid JWT Signature. Assertion: {assertion}")
        } else {
            "Invalid JWT Signature.".to_owned()
        };
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            &description,
        ));
    }

    let header = jsonwebtoken::decode_header(assertion).map_err(bad_request)?;
    if header.alg != Algorithm::RS256
        || header.typ.as_deref() != Some("JWT")
        || header.kid.as_deref() != Some(KEY_ID)
    {
        return Err(bad_request(format!("unexpected JWT header {header:?}")));
    }
    let audience = format!("{}/token", shared.url);
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&audience]);
    validation.set_issuer(&[KEY_EMAIL]);
    validation.set_required_spec_claims(&["iss", "aud", "iat", "exp"]);
    validation.leeway = 0;
    let key = DecodingKey::from_rsa_der(&shared.public_key);
    let claims = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .map_err(|e| {
            oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                &format!("fake: {e}"),
            )
        })?
        .claims;

    let mut names: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    if names != ["aud", "exp", "iat", "iss", "scope"] {
        return Err(bad_request(format!("claims are {names:?}")));
    }
    let scope = shared.scope_for(Route::Token);
    if claims["scope"] != scope {
        return Err(bad_request(format!(
            "scope is {}, expected {scope:?}",
            claims["scope"]
        )));
    }
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    if now_secs().abs_diff(iat) > 5 {
        return Err(bad_request(format!("iat {iat} is not now")));
    }
    let lifetime = shared.expect.lifetime_secs.min(3600);
    if exp - iat != lifetime {
        return Err(bad_request(format!(
            "exp - iat is {}, expected {lifetime}",
            exp - iat
        )));
    }
    Ok(())
}

/// RFC 8693 token exchange at STS.
pub(super) async fn sts(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(failure) = shared.enter(Route::Sts).await {
        return failure;
    }
    let checked = (|| {
        let form = form(
            &headers,
            &body,
            &[
                "grant_type",
                "audience",
                "scope",
                "requested_token_type",
                "subject_token",
                "subject_token_type",
            ],
        )?;
        expect_field(
            &form,
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        )?;
        expect_field(&form, "audience", AUDIENCE)?;
        expect_field(&form, "scope", &shared.scope_for(Route::Sts))?;
        expect_field(
            &form,
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        )?;
        expect_field(
            &form,
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:jwt",
        )?;
        let subject_token = &form["subject_token"];
        shared
            .log
            .lock()
            .unwrap()
            .subject_tokens
            .push(subject_token.clone());
        let claims = check_subject_token(&shared, subject_token)?;
        let (reject, echo) = shared.scripted(|s| (s.reject_subject, s.echo_secrets));
        if reject {
            let mut description =
                "The given credential is rejected by the attribute condition.".to_owned();
            if echo {
                description.push_str(&format!(" Token: {subject_token}"));
            }
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                &description,
            ));
        }
        shared.log.lock().unwrap().accepted_claims.push(claims);
        Ok(())
    })();
    if let Err(error) = checked {
        return error.into_response();
    }
    let token = shared.issue(Route::Sts, "sts");
    Json(json!({
        "access_token": token,
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "token_type": "Bearer",
        "expires_in": 3600,
    }))
    .into_response()
}

/// Verifies a subject token as a provider that trusts Sluice's issuer
/// alone: an ES256 signature by a key of the JWKS it was given, Sluice's
/// `iss`, the provider's `aud`, and a current, short lifetime.
pub(super) fn check_subject_token(shared: &Shared, token: &str) -> Result<Value, GoogleError> {
    let refused = |why: String| {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            &format!("fake: the subject token is not trusted: {why}"),
        )
    };
    let header = jsonwebtoken::decode_header(token).map_err(|e| refused(format!("{e}")))?;
    if header.alg != Algorithm::ES256 {
        return Err(refused(format!("alg is {:?}", header.alg)));
    }
    let kid = header.kid.ok_or_else(|| refused("no kid".into()))?;
    let jwks = shared.trusted_jwks.lock().unwrap().clone();
    let key = jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or_else(|| refused(format!("no trusted key has kid {kid}")))?;
    let decoding = DecodingKey::from_ec_components(
        key["x"].as_str().unwrap_or_default(),
        key["y"].as_str().unwrap_or_default(),
    )
    .map_err(|e| refused(format!("{e}")))?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[SLUICE_ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["iss", "aud", "sub", "iat", "exp"]);
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<Value>(token, &decoding, &validation)
        .map_err(|e| refused(format!("{e}")))?
        .claims;
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap_or(0),
        claims["exp"].as_u64().unwrap_or(u64::MAX),
    );
    if exp.saturating_sub(iat) > 600 || now_secs().abs_diff(iat) > 5 {
        return Err(refused(format!(
            "iat {iat} and exp {exp} are not a short lifetime from now"
        )));
    }
    Ok(claims)
}

/// IAM Credentials `generateAccessToken`.
pub(super) async fn iam(
    State(shared): State<Arc<Shared>>,
    Path(target): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, GoogleError> {
    if let Some(failure) = shared.enter(Route::Iam).await {
        return Ok(failure);
    }
    let invalid = |what: String| {
        api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            &format!("fake: {what}"),
        )
    };
    let Some(email) = target.strip_suffix(":generateAccessToken") else {
        return Err(api_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("fake: no method in {target}"),
        ));
    };
    if email != TARGET_ACCOUNT {
        return Err(invalid(format!("service account is {email}")));
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let source = shared
        .expect
        .iam_source
        .expect("the test expects no generateAccessToken call");
    if !shared
        .log
        .lock()
        .unwrap()
        .issued(source)
        .iter()
        .any(|t| t == bearer)
    {
        return Err(api_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "fake: the bearer is not a source token",
        ));
    }
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    if content_type != Some("application/json") {
        return Err(invalid(format!("content-type is {content_type:?}")));
    }
    let want = json!({
        "scope": shared.expect.scopes,
        "lifetime": format!("{}s", shared.expect.lifetime_secs.min(3600)),
    });
    let got: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if got != want {
        return Err(invalid(format!("body is {got}, expected {want}")));
    }
    let (deny, echo) = shared.scripted(|s| (s.deny_impersonation, s.echo_secrets));
    if deny {
        let mut message = "Permission 'iam.serviceAccounts.getAccessToken' denied on resource \
                           (or it may not exist)."
            .to_owned();
        if echo {
            message.push_str(&format!(" Caller token: {bearer}"));
        }
        return Err(api_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            &message,
        ));
    }
    let token = shared.issue(Route::Iam, "iam");
    let expires = chrono::Utc::now()
        + chrono::Duration::seconds(shared.expect.lifetime_secs.min(3600) as i64);
    let expire_time = expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok(Json(json!({"accessToken": token, "expireTime": expire_time})).into_response())
}

/// The metadata server's token of the attached service account.
pub(super) async fn metadata(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(failure) = shared.enter(Route::Metadata).await {
        return failure;
    }
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return (
            StatusCode::FORBIDDEN,
            "Missing Metadata-Flavor:Google header.",
        )
            .into_response();
    }
    let query: HashMap<String, String> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    if query.len() != 1
        || query.get("scopes").map(String::as_str) != Some(&*shared.scope_for(Route::Metadata))
    {
        return (StatusCode::BAD_REQUEST, format!("fake: query is {query:?}")).into_response();
    }
    let token = shared.issue(Route::Metadata, "metadata");
    let mut response =
        Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}))
            .into_response();
    response
        .headers_mut()
        .insert("metadata-flavor", "Google".parse().unwrap());
    response
}

/// OAuth token revocation.
pub(super) async fn revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, GoogleError> {
    if let Some(failure) = shared.enter(Route::Revoke).await {
        return Ok(failure);
    }
    let form = match form(&headers, &body, &["token"]) {
        Ok(form) => form,
        Err(error) => return Err(error),
    };
    let token = &form["token"];
    let mut log = shared.log.lock().unwrap();
    if log.revoked.contains(token) {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "Token expired or revoked",
        ));
    }
    if !log.issued(Route::Token).contains(token) {
        return Err(bad_request("not a token this endpoint issued"));
    }
    log.revoked.push(token.clone());
    Ok(StatusCode::OK.into_response())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
