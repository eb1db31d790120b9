//! The BigQuery REST v2 facade: the API methods, each answering in
//! BigQuery's own response shapes. Every `/bigquery/v2/…` request reaches
//! them through the pipeline ([`crate::pipeline`]), after authenticate and
//! route.

pub(crate) mod catalog;
pub(crate) mod jobs;
pub mod resources;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A JSON response from already-serialized bytes.
pub fn json_bytes(bytes: impl Into<axum::body::Bytes>) -> Response {
    let mut response = (StatusCode::OK, bytes.into()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

pub fn json(value: serde_json::Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}
