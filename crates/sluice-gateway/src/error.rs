//! The gateway's one error type. Every failure already knows its HTTP
//! status and BigQuery `reason`, so each one answers in BigQuery's error
//! shape without a second mapping table.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sluice_store::StoreError;
use sluice_warehouse::{WarehouseError, WarehouseErrorKind};

/// Where a failure came from: the caller's request, the warehouse, or the
/// gateway itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Client,
    Upstream,
    Internal,
}

/// A refusal or failure, ready to be sent as BigQuery's error JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({status}): {message}")]
pub struct GatewayError {
    pub status: StatusCode,
    /// BigQuery's `reason`. Refusals use reasons the official clients do
    /// not retry.
    pub reason: &'static str,
    pub message: String,
    pub origin: Origin,
}

impl GatewayError {
    fn client(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            reason,
            message: message.into(),
            origin: Origin::Client,
        }
    }

    /// Malformed input: bad JSON, unknown fields, bad arguments.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, "invalid", message)
    }

    pub fn invalid_query(message: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, "invalidQuery", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::client(StatusCode::NOT_FOUND, "notFound", message)
    }

    /// No or a bad token: 401, answered with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::client(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// A policy or guardrail refusal: 403 `accessDenied`, which the
    /// official clients do not retry.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::client(StatusCode::FORBIDDEN, "accessDenied", message)
    }

    /// A spent budget: 403 `quotaExceeded`, as BigQuery answers a custom
    /// quota; the official clients do not retry it.
    pub fn quota_exceeded(message: impl Into<String>) -> Self {
        Self::client(StatusCode::FORBIDDEN, "quotaExceeded", message)
    }

    pub fn duplicate(message: impl Into<String>) -> Self {
        Self::client(StatusCode::CONFLICT, "duplicate", message)
    }

    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::client(StatusCode::NOT_IMPLEMENTED, "notImplemented", message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid",
            format!(
                "Request payload size exceeds the limit: {limit} bytes. Send a smaller request."
            ),
        )
    }

    /// A dependency is down (a token service, the upstream): 503, which
    /// clients may retry later.
    /// 429 `rateLimitExceeded`: a per-caller bound; the clients retry
    /// with backoff.
    pub fn rate_limited(message: impl Into<String>) -> Self {
        Self::client(StatusCode::TOO_MANY_REQUESTS, "rateLimitExceeded", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            reason: "backendError",
            message: message.into(),
            origin: Origin::Upstream,
        }
    }

    /// A failure of the gateway itself. The details go to the log; the
    /// caller gets a message that reveals nothing of the internals.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            reason: "internalError",
            message: "Sluice failed to handle the request; the failure was logged.".into(),
            origin: Origin::Internal,
        }
    }

    /// Google's canonical status name for the HTTP code.
    fn status_name(&self) -> &'static str {
        match self.status.as_u16() {
            400 | 413 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            409 => "ALREADY_EXISTS",
            429 => "RESOURCE_EXHAUSTED",
            501 => "UNIMPLEMENTED",
            503 => "UNAVAILABLE",
            _ => "INTERNAL",
        }
    }

    /// BigQuery's error body: `{"error": {code, message, errors, status}}`.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "code": self.status.as_u16(),
                "message": self.message,
                "errors": [{
                    "message": self.message,
                    "domain": "global",
                    "reason": self.reason,
                }],
                "status": self.status_name(),
            }
        })
    }

    /// The job's `errorResult` form of this error.
    /// Whether the official clients would send the request again: the
    /// reasons they retry, and any 5xx or 429.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.reason,
            "backendError"
                | "internalError"
                | "rateLimitExceeded"
                | "badGateway"
                | "jobBackendError"
                | "jobInternalError"
                | "jobRateLimitExceeded"
        ) || self.status.is_server_error()
            || self.status == StatusCode::TOO_MANY_REQUESTS
    }

    pub fn error_result(&self) -> serde_json::Value {
        json!({"reason": self.reason, "message": self.message})
    }

    /// Rebuilds the error a failed job recorded (`{reason, message}`).
    pub fn from_error_result(result: &serde_json::Value) -> Self {
        let reason = result.get("reason").and_then(|r| r.as_str()).unwrap_or("");
        let message = crate::exit::scrub(
            result
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("The job failed"),
        );
        // A job's own reason (the warehouse's, or BigQuery's) is passed on
        // with the status BigQuery answers it with.
        let (status, reason) = match sluice_warehouse::known_reason(reason) {
            Some(known) => (
                StatusCode::from_u16(sluice_warehouse::reason_status(known))
                    .unwrap_or(StatusCode::BAD_REQUEST),
                known,
            ),
            // Unknown: passed on as a reason no client retries.
            None => (StatusCode::BAD_REQUEST, "invalid"),
        };
        Self {
            status,
            reason,
            message,
            origin: Origin::Upstream,
        }
    }
}

impl From<WarehouseError> for GatewayError {
    fn from(err: WarehouseError) -> Self {
        match err.kind {
            WarehouseErrorKind::Internal => {
                return Self::internal(crate::exit::scrub(&err.message));
            }
            WarehouseErrorKind::Unavailable => {
                return Self::unavailable(crate::exit::scrub(&err.message));
            }
            _ => {}
        }
        let status =
            StatusCode::from_u16(err.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let reason = err.kind.reason();
        Self {
            status,
            reason,
            message: crate::exit::scrub(&err.message),
            origin: Origin::Upstream,
        }
    }
}

impl From<StoreError> for GatewayError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Duplicate(what) => Self::duplicate(format!("Already Exists: {what}")),
            StoreError::InvalidPageToken => Self::invalid("Invalid page token."),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        if self.origin != Origin::Internal {
            tracing::info!(status = self.status.as_u16(), reason = self.reason, message = %self.message, "request refused");
        }
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(
                    "Bearer realm=\"sluice\", error=\"invalid_token\"",
                ),
            );
        }
        response
    }
}
