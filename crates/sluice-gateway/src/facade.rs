//! The BigQuery REST v2 facade: every `/bigquery/v2/…` request enters
//! here and goes through the pipeline's phases in order — authenticate,
//! route, then the method — and every failure leaves in BigQuery's error
//! shape.

mod catalog;
mod jobs;
pub mod resources;

use std::sync::Arc;

use tracing::Instrument as _;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::Gateway;
use crate::authenticate::{Principal, authenticate};
use crate::error::GatewayError;
use crate::params::QueryParams;
use crate::route::{ApiCall, route};

/// One request, as the phases have understood it so far.
#[derive(Debug)]
pub struct RequestContext {
    pub principal: Principal,
    pub call: ApiCall,
    pub params: QueryParams,
    pub body: axum::body::Bytes,
}

/// The header that carries a request's id, in both directions.
pub const REQUEST_ID: &str = "x-request-id";

/// The axum handler for every facade path: one span per request, carrying
/// its id, API method, principal and outcome, so that every log line of
/// the request names it; the id goes back in the `x-request-id` header.
pub async fn handle(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let id = request_id(request.headers());
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = tracing::field::Empty,
        principal = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let mut response = match run(&gateway, request).instrument(span.clone()).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::debug!(
            status,
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request done"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The caller's `x-request-id` when it is a plain token (letters, digits,
/// `-`, `_`, `.`, at most 64), so it can be followed through a client's
/// own logs; otherwise a new one. Nothing else of the header reaches logs.
fn request_id(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

async fn run(gateway: &Gateway, request: Request) -> Result<Response, GatewayError> {
    let (parts, body) = request.into_parts();
    let principal = authenticate(&parts.headers, &gateway.verifier).await?;
    let span = tracing::Span::current();
    span.record("principal", principal.verified.name.as_str());
    let call = route(&parts.method, parts.uri.path())?;
    span.record("method", call.name());
    let params = QueryParams::parse(parts.uri.query())?;
    let body = read_body(body, &parts.headers, gateway.config.max_body_bytes).await?;
    if !call.takes_body()
        && !body.iter().all(u8::is_ascii_whitespace)
        && call.name() != "jobs.cancel"
    {
        return Err(GatewayError::invalid(format!(
            "{} takes no request body.",
            call.name()
        )));
    }
    let context = RequestContext {
        principal,
        call,
        params,
        body,
    };
    match &context.call {
        ApiCall::JobsInsert { .. }
        | ApiCall::JobsQuery { .. }
        | ApiCall::JobsGet { .. }
        | ApiCall::JobsList { .. }
        | ApiCall::JobsCancel { .. }
        | ApiCall::JobsGetQueryResults { .. } => jobs::handle(gateway, &context).await,
        _ => catalog::handle(gateway, &context).await,
    }
}

/// Reads the body, refusing more than `limit` bytes with 413 before
/// buffering them.
async fn read_body(
    body: Body,
    headers: &axum::http::HeaderMap,
    limit: usize,
) -> Result<axum::body::Bytes, GatewayError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(GatewayError::too_large(limit));
    }
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let too_large = std::error::Error::source(&err)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            GatewayError::too_large(limit)
        } else {
            GatewayError::invalid(format!("Could not read the request body: {err}"))
        }
    })
}

/// A JSON response from already-serialized bytes.
pub fn json_bytes(bytes: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

pub fn json(value: serde_json::Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}
