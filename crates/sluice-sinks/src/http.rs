//! The HTTP sink: batches POSTed as a JSON array, or in Splunk HEC's
//! batch format, retried with backoff on a connection error, a timeout,
//! 429 or 5xx.

use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};

use crate::{Feed, HttpFormat, SinkKind, backoff};

pub(crate) struct Http {
    client: reqwest::Client,
    url: reqwest::Url,
    format: HttpFormat,
    /// Built once, marked sensitive so that no `Debug` shows it.
    authorization: Option<HeaderValue>,
    batch_max: usize,
    flush_interval: std::time::Duration,
    max_retries: u32,
}

impl Http {
    pub(crate) fn new(kind: &SinkKind) -> Result<Self, String> {
        let SinkKind::Http {
            url,
            format,
            token,
            batch_max,
            flush_interval,
            timeout,
            max_retries,
        } = kind
        else {
            unreachable!("Http::new takes an HTTP sink");
        };
        let url = reqwest::Url::parse(url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| format!("url {url:?} is not an http or https URL"))?;
        if *batch_max == 0 {
            return Err("batch_max must be at least 1".to_owned());
        }
        let authorization = match token {
            None => None,
            Some(token) => {
                let scheme = match format {
                    HttpFormat::Json => "Bearer",
                    HttpFormat::SplunkHec => "Splunk",
                };
                let mut value = HeaderValue::from_str(&format!("{scheme} {}", token.expose()))
                    .map_err(|_| "the token holds characters a header cannot".to_owned())?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        let client = reqwest::Client::builder()
            .timeout(*timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| format!("no HTTP client: {err}"))?;
        Ok(Self {
            client,
            url,
            format: *format,
            authorization,
            batch_max: *batch_max,
            flush_interval: *flush_interval,
            max_retries: *max_retries,
        })
    }

    pub(crate) async fn run(self, mut feed: Feed) {
        while let Some(batch) = feed.next_batch(self.batch_max, self.flush_interval).await {
            feed.settle(batch.len(), self.deliver(&batch).await);
        }
    }

    /// POSTs one batch, retrying what may succeed later.
    async fn deliver(&self, batch: &[Arc<str>]) -> Result<(), String> {
        let body = body(self.format, batch);
        let mut attempt = 0;
        loop {
            let mut request = self
                .client
                .post(self.url.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
            if let Some(authorization) = &self.authorization {
                request = request.header(AUTHORIZATION, authorization.clone());
            }
            let err = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    // Read to the end, so that the connection is reused.
                    let _ = response.bytes().await;
                    return Ok(());
                }
                Ok(response) => {
                    let status = response.status();
                    if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
                        return Err(format!("{} answered {status}, not retried", self.url));
                    }
                    format!("answered {status}")
                }
                // The URL is named once, below; the token is never in an error.
                Err(err) => err.without_url().to_string(),
            };
            if attempt == self.max_retries {
                let attempts = attempt + 1;
                return Err(format!("{} {err} ({attempts} attempts)", self.url));
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }
}

/// The request body for `batch`.
fn body(format: HttpFormat, batch: &[Arc<str>]) -> String {
    match format {
        // The events are JSON already: joined, not parsed again.
        HttpFormat::Json => format!("[{}]", batch.join(",")),
        HttpFormat::SplunkHec => batch
            .iter()
            .map(|event| hec_envelope(event))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// One event in HEC's envelope.
fn hec_envelope(event: &str) -> String {
    let event: Value =
        serde_json::from_str(event).unwrap_or_else(|_| Value::String(event.to_owned()));
    let mut envelope = json!({"source": "sluice", "sourcetype": "sluice:audit"});
    if let Some(ms) = event["at_ms"].as_i64() {
        envelope["time"] = json!(ms as f64 / 1000.0);
    }
    if let Some(instance) = event["instance"].as_str() {
        envelope["host"] = json!(instance);
    }
    envelope["event"] = event;
    envelope.to_string()
}
