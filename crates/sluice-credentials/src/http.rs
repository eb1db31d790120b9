//! One HTTP exchange with a Google token service: bounded in time and size,
//! retried while the failure is transient, and described without secrets.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use reqwest::header::CONTENT_TYPE;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Map, Value};
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::retry::{Backoff, with_retries};
use crate::{AccessToken, CredentialError};

/// A failed attempt of one token request.
type Attempt = crate::retry::Attempt<CredentialError>;

/// Token responses are a few hundred bytes; anything far larger is not one.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Google's error text quoted in a message is cut to this length.
const MAX_DETAIL_CHARS: usize = 400;
/// The content type of OAuth token requests.
const FORM: &str = "application/x-www-form-urlencoded";

/// The HTTP client of one minter and its per-call timeout.
#[derive(Debug)]
pub(crate) struct Transport {
    client: reqwest::Client,
    timeout: Duration,
}

/// The time allowed for one mint or revoke, shared by all its calls.
#[derive(Debug)]
pub(crate) struct Budget {
    start: Instant,
    deadline: Duration,
}

impl Budget {
    pub(crate) fn new(deadline: Duration) -> Self {
        Self {
            start: Instant::now(),
            deadline,
        }
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_sub(self.start.elapsed())
    }
}

/// Who is called, for messages, and what must never appear in them.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    /// The service, as a message names it ("Security Token Service").
    pub service: &'a str,
    pub url: &'a str,
    /// Credentials sent in the request; scrubbed from any text quoted from
    /// the answer, in case the service echoes them.
    pub secrets: &'a [&'a str],
}

/// The outcome of a call that reached the service.
pub(crate) enum Answer {
    /// 2xx, with the body (zeroized on drop: it holds the token).
    Success(Zeroizing<Vec<u8>>),
    /// 4xx: the service refused. `detail` is its error code and text, or the
    /// bare status when it gave none.
    Refused { status: StatusCode, detail: String },
}

impl Transport {
    pub(crate) fn new(timeout: Duration) -> Result<Self, CredentialError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            // A token request carries a credential: it goes to the configured
            // URL and nowhere else.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                CredentialError::invalid(format!(
                    "cannot build the HTTP client for token requests: {e}"
                ))
            })?;
        Ok(Self { client, timeout })
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// POSTs an OAuth form (`fields`, zeroized after) to `call.url`, with
    /// [`Transport::send`]'s retries.
    pub(crate) async fn send_form(
        &self,
        call: &Call<'_>,
        budget: &Budget,
        fields: &[(&str, &str)],
    ) -> Result<Answer, CredentialError> {
        let form = Zeroizing::new(form(fields)?);
        self.send(call, budget, || {
            self.client()
                .post(call.url)
                .header(CONTENT_TYPE, FORM)
                .body(form.to_string())
        })
        .await
    }

    /// Sends the request `build` makes, again after connection failures,
    /// timeouts, 429 and 5xx, until the budget runs out.
    pub(crate) async fn send(
        &self,
        call: &Call<'_>,
        budget: &Budget,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Answer, CredentialError> {
        let started = Instant::now();
        let backoff = Backoff {
            deadline: budget.remaining(),
            ..Backoff::default()
        };
        if backoff.deadline.is_zero() {
            return Err(CredentialError::unavailable(format!(
                "{} was not called: the time allowed for this token request ran out; try again later",
                call.service
            )));
        }
        let mut attempts = 0u32;
        let outcome = with_retries(
            &backoff,
            || {
                attempts += 1;
                let timeout = self
                    .timeout
                    .min(budget.remaining())
                    .max(Duration::from_millis(1));
                let pending = build().timeout(timeout).send();
                async move {
                    let response = pending
                        .await
                        .map_err(|e| Attempt::transient(unreachable(call, &e)))?;
                    let status = response.status();
                    let body = read_body(response)
                        .await
                        .map_err(|cause| Attempt::transient(cut_off(call, &cause)))?;
                    classify(call, status, body)
                }
            },
            |attempt: &Attempt| attempt.transient,
        )
        .await;
        outcome.map_err(|attempt| {
            let mut error = attempt.error;
            if attempt.transient {
                tracing::warn!(
                    service = call.service,
                    url = call.url,
                    attempts,
                    "token service kept failing"
                );
                error.message.push_str(&format!(
                    " (gave up after {} attempts in {:.1}s)",
                    attempts,
                    started.elapsed().as_secs_f64()
                ));
            }
            error
        })
    }
}

/// Sorts an answer into success, refusal (4xx) or a failure worth retrying.
fn classify(
    call: &Call<'_>,
    status: StatusCode,
    body: Zeroizing<Vec<u8>>,
) -> Result<Answer, Attempt> {
    if status.is_success() {
        return Ok(Answer::Success(body));
    }
    let detail = google_error(&body, call.secrets).unwrap_or_else(|| format!("HTTP {status}"));
    if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
        return Ok(Answer::Refused { status, detail });
    }
    let transient = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
    let error = if transient {
        CredentialError::unavailable(format!(
            "{} failed (HTTP {}: {detail}); try again later",
            call.service,
            status.as_u16()
        ))
    } else {
        CredentialError::unavailable(format!(
            "{} at {} answered HTTP {} instead of a token; check the configured URL",
            call.service,
            call.url,
            status.as_u16()
        ))
    };
    Err(Attempt { transient, error })
}

fn unreachable(call: &Call<'_>, error: &reqwest::Error) -> CredentialError {
    CredentialError::unavailable(format!(
        "{} at {} could not be reached ({}); try again later, or check the configured URL",
        call.service,
        call.url,
        describe(error)
    ))
}

fn cut_off(call: &Call<'_>, cause: &str) -> CredentialError {
    CredentialError::unavailable(format!(
        "{}'s answer could not be read ({cause}); try again later",
        call.service
    ))
}

/// A transport error in a few words: its kind and root cause. The URL is
/// left out (the caller names it) and no request content is ever part of it.
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    let kind = if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut root = None;
    let mut next = error.source();
    while let Some(source) = next {
        root = Some(source);
        next = source.source();
    }
    match root {
        Some(root) => format!("{kind}: {root}"),
        None => kind.to_owned(),
    }
}

async fn read_body(mut response: Response) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut body = Zeroizing::new(Vec::with_capacity(
        response
            .content_length()
            .map_or(1024, |n| n.min(MAX_BODY_BYTES as u64) as usize),
    ));
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!("larger than {MAX_BODY_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Google's error text from an error body, in either of its shapes:
/// OAuth's `{"error": "invalid_grant", "error_description": "…"}` or the
/// API's `{"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "…"}}`.
pub(crate) fn google_error(body: &[u8], secrets: &[&str]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let text = match value.get("error")? {
        Value::String(code) => match value.get("error_description").and_then(Value::as_str) {
            Some(description) if !description.is_empty() => format!("{code}: {description}"),
            _ => code.clone(),
        },
        Value::Object(error) => {
            let parts: Vec<&str> = ["status", "message"]
                .iter()
                .filter_map(|name| error.get(*name).and_then(Value::as_str))
                .filter(|part| !part.is_empty())
                .collect();
            if parts.is_empty() {
                return None;
            }
            parts.join(": ")
        }
        _ => return None,
    };
    Some(shorten(scrub(text, secrets)))
}

/// Replaces every occurrence of a secret with `[redacted]`.
pub(crate) fn scrub(mut text: String, secrets: &[&str]) -> String {
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        if text.contains(secret) {
            text = text.replace(secret, "[redacted]");
        }
    }
    text
}

fn shorten(text: String) -> String {
    if text.chars().count() <= MAX_DETAIL_CHARS {
        return text;
    }
    let mut short: String = text.chars().take(MAX_DETAIL_CHARS).collect();
    short.push('…');
    short
}

/// The JSON object of a success body. Parse errors are reported by position
/// only, since serde's text could quote the token.
pub(crate) fn json_object(
    body: &[u8],
    call: &Call<'_>,
) -> Result<Map<String, Value>, CredentialError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(not_a_token(call, "its answer is not a JSON object")),
    }
}

/// The token of an OAuth token response (`access_token`, `expires_in`,
/// `token_type`). A response without `expires_in` is taken to expire after
/// `fallback`, the lifetime that was asked for.
pub(crate) fn oauth_token(
    object: &mut Map<String, Value>,
    call: &Call<'_>,
    fallback: Duration,
) -> Result<AccessToken, CredentialError> {
    if let Some(kind) = object.get("token_type").and_then(Value::as_str)
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(not_a_token(
            call,
            "it issued a token that is not a Bearer token",
        ));
    }
    let lifetime = match object.get("expires_in") {
        None | Some(Value::Null) => fallback,
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Duration::from_secs)
            .ok_or_else(|| bad_expiry(call))?,
        Some(Value::String(s)) => s
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| bad_expiry(call))?,
        Some(_) => return Err(bad_expiry(call)),
    };
    let secret = take_token(object, "access_token", call)?;
    Ok(AccessToken::new(secret, SystemTime::now() + lifetime))
}

/// Moves a non-empty token string out of a response, so no copy is left
/// behind in the parsed JSON.
pub(crate) fn take_token(
    object: &mut Map<String, Value>,
    field: &str,
    call: &Call<'_>,
) -> Result<String, CredentialError> {
    match object.remove(field) {
        Some(Value::String(token)) if !token.is_empty() => Ok(token),
        _ => Err(not_a_token(call, &format!("its answer has no \"{field}\""))),
    }
}

fn bad_expiry(call: &Call<'_>) -> CredentialError {
    not_a_token(call, "its \"expires_in\" is not a number of seconds")
}

pub(crate) fn not_a_token(call: &Call<'_>, why: &str) -> CredentialError {
    CredentialError::unavailable(format!(
        "{} at {} did not answer with a usable token: {why}; check that the URL points at the \
         right service",
        call.service, call.url
    ))
}

/// An `application/x-www-form-urlencoded` body.
pub(crate) fn form(fields: &[(&str, &str)]) -> Result<String, CredentialError> {
    serde_urlencoded::to_string(fields)
        .map_err(|e| CredentialError::invalid(format!("cannot encode a token request: {e}")))
}
