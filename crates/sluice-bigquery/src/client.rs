//! HTTP to BigQuery: every call with the caller's minted token, a timeout,
//! and retries with backoff and jitter for transient failures (connection
//! errors, timeouts, 429 and 5xx) within a deadline. Errors come back in
//! BigQuery's vocabulary with the upstream's own `reason`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sluice_credentials::retry::{Backoff, with_retries};

use super::wire::ErrorBody;
use sluice_warehouse::{Access, WarehouseError, WarehouseErrorKind, known_reason};

/// A failed attempt of one call.
type Attempt = sluice_credentials::retry::Attempt<WarehouseError>;

/// The REST client for one endpoint.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    backoff: Backoff,
}

impl Client {
    /// Whether the endpoint answers HTTP at all (any status), without a
    /// credential and without retries.
    pub async fn reachable(&self) -> Result<(), WarehouseError> {
        self.http
            .get(format!("{}/projects", self.base))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                WarehouseError::unavailable(format!(
                    "BigQuery could not be reached ({})",
                    describe(&e)
                ))
            })
    }

    pub fn new(
        endpoint: &str,
        timeout: Duration,
        backoff: Backoff,
    ) -> Result<Self, WarehouseError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| WarehouseError::internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: format!("{}/bigquery/v2", endpoint.trim_end_matches('/')),
            backoff,
        })
    }

    /// `GET` a resource.
    pub async fn get<T: DeserializeOwned>(
        &self,
        access: &Access,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, WarehouseError> {
        self.call(access, Method::GET, path, query, None).await
    }

    /// `POST` a body. Only for calls that are safe to repeat: a job insert
    /// carries its own job id, so a retried insert cannot start a second
    /// job.
    pub async fn post<T: DeserializeOwned>(
        &self,
        access: &Access,
        path: &str,
        query: &[(&str, String)],
        body: &Value,
    ) -> Result<T, WarehouseError> {
        self.call(access, Method::POST, path, query, Some(body))
            .await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        access: &Access,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<T, WarehouseError> {
        let url = format!("{}{path}", self.base);
        let mut attempts = 0u32;
        let bytes = with_retries(
            &self.backoff,
            || {
                attempts += 1;
                let mut request = self
                    .http
                    .request(method.clone(), &url)
                    .query(&[("prettyPrint", "false")])
                    .query(query);
                if let Some(token) = access.token() {
                    request = request.bearer_auth(token.secret());
                }
                if let Some(body) = body {
                    request = request.json(body);
                }
                let attempt = attempts;
                let method = method.clone();
                async move {
                    let response = request.send().await.map_err(|e| Attempt {
                        transient: true,
                        error: WarehouseError::unavailable(format!(
                            "BigQuery could not be reached ({}); try again later.",
                            describe(&e)
                        )),
                    })?;
                    let status = response.status();
                    let bytes = response.bytes().await.map_err(|e| Attempt {
                        transient: true,
                        error: WarehouseError::unavailable(format!(
                            "BigQuery's answer was cut off ({}); try again later.",
                            describe(&e)
                        )),
                    })?;
                    if status.is_success() {
                        return Ok(bytes);
                    }
                    // A job insert repeated after an attempt that reached
                    // BigQuery finds its own job: that is success.
                    if status == StatusCode::CONFLICT && attempt > 1 && method == Method::POST {
                        return Ok(::bytes::Bytes::from_static(b"{}"));
                    }
                    Err(Attempt {
                        transient: is_transient(status),
                        error: upstream_error(status, &bytes),
                    })
                }
            },
            |attempt: &Attempt| attempt.transient,
        )
        .await
        .map_err(|attempt| {
            if attempt.transient {
                tracing::warn!(%path, attempts, error = %attempt.error, "BigQuery kept failing");
            }
            attempt.error
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            WarehouseError::internal(format!(
                "BigQuery sent an answer that is not the expected JSON: {e}"
            ))
        })
    }
}

fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

/// What went wrong with a request, without its URL (which may carry query
/// parameters) or anything else the caller sent.
fn describe(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "bad response body"
    } else {
        "request failed"
    }
}

/// An unknown reason, kept short and printable for a message.
fn shortened_reason(reason: &str) -> String {
    reason
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

/// BigQuery's error body as a [`WarehouseError`] keeping its reason. A
/// rejected credential (401) is the gateway's problem, not the caller's,
/// so it is never passed on as 401 (which would make the client refresh
/// its own token and retry).
pub fn upstream_error(status: StatusCode, body: &[u8]) -> WarehouseError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let detail = parsed.as_ref().map(|b| &b.error);
    let message = detail
        .map(|d| d.message.trim())
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("BigQuery answered HTTP {}", status.as_u16()));
    let named = detail
        .and_then(|d| d.errors.first())
        .map(|e| e.reason.as_str())
        .filter(|r| !r.is_empty());
    let reason = named.and_then(known_reason);
    if status == StatusCode::UNAUTHORIZED {
        return WarehouseError::new(
            WarehouseErrorKind::Upstream {
                reason: "accessDenied",
                status: 403,
            },
            format!(
                "Access Denied: check credential.upstream: BigQuery did not accept the credential Sluice minted for this job ({message}). \
                 Ask the Sluice administrators to check the warehouse credentials."
            ),
        );
    }
    if let (Some(unknown), None) = (named, reason) {
        // A reason this gateway does not know is passed on as one no
        // client retries: retrying what nobody understood only repeats it.
        return WarehouseError::new(
            WarehouseErrorKind::Upstream {
                reason: "invalid",
                status: 400,
            },
            format!(
                "{message} (BigQuery's reason: {})",
                shortened_reason(unknown)
            ),
        );
    }
    let reason = reason.unwrap_or(match status.as_u16() {
        400 => "invalid",
        403 => "accessDenied",
        404 => "notFound",
        409 => "duplicate",
        429 => "rateLimitExceeded",
        501 => "notImplemented",
        502..=504 => "backendError",
        _ => "internalError",
    });
    WarehouseError::new(
        WarehouseErrorKind::Upstream {
            reason,
            status: status.as_u16(),
        },
        message,
    )
}
