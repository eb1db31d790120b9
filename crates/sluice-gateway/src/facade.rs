//! The BigQuery REST v2 facade: every `/bigquery/v2/…` request enters
//! here and goes through the pipeline's phases in order — authenticate,
//! route, then the method — and every failure leaves in BigQuery's error
//! shape.

mod catalog;
mod jobs;
pub mod resources;

use std::sync::Arc;

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

/// The axum handler for every facade path.
pub async fn handle(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    match run(&gateway, request).await {
        Ok(response) => response,
        Err(err) => {
            tracing::debug!(%method, %path, reason = err.reason, "refused");
            err.into_response()
        }
    }
}

async fn run(gateway: &Gateway, request: Request) -> Result<Response, GatewayError> {
    let (parts, body) = request.into_parts();
    let principal = authenticate(&parts.headers, &gateway.verifier).await?;
    let call = route(&parts.method, parts.uri.path())?;
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
    tracing::debug!(method = context.call.name(), principal = %context.principal.verified.name, "request");
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
