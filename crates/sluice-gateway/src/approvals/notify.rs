//! Notifications of approval requests: when one opens and when it closes,
//! to a signed generic webhook and to Slack incoming webhooks.
//!
//! Delivery never holds up a query or a vote: events go into a bounded
//! queue that one background task drains, each POST retried with backoff
//! (1 s, 4 s, 16 s) and given up after that; a full queue drops the event
//! and says so in the log. A failed notification approves, denies or loses
//! nothing: the request itself is in the store.
//!
//! The generic webhook gets `{"event": "approval.opened" | "approval.closed",
//! "approval": {…}}` (the REST API's resource) with two headers:
//! `x-sluice-timestamp` (Unix seconds) and `x-sluice-signature:
//! sha256=HEX`, the HMAC-SHA256 of `TIMESTAMP.BODY` under the configured
//! secret, so a receiver can check both origin and freshness.

use std::time::Duration;

use serde_json::{Value, json};
use zeroize::Zeroizing;

/// One configured destination.
#[derive(Clone)]
pub enum Target {
    /// A generic webhook, signed with `secret`.
    Webhook {
        url: String,
        secret: Zeroizing<String>,
    },
    /// A Slack incoming webhook (its URL is the secret).
    Slack { url: Zeroizing<String> },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Webhook { url, .. } => write!(f, "Webhook({url}, secret: [redacted])"),
            Self::Slack { .. } => f.write_str("Slack([redacted])"),
        }
    }
}

/// What happened to an approval request.
#[derive(Debug, Clone)]
pub struct Event {
    /// `approval.opened` or `approval.closed`.
    pub kind: &'static str,
    /// The request as the REST API shows it.
    pub approval: Value,
    /// One line for people: what, who, why, the link.
    pub summary: String,
}

/// Events waiting for delivery, at most this many.
const QUEUE: usize = 1024;

/// Sends events to the targets in the background.
#[derive(Debug, Clone)]
pub struct Notifier {
    queue: Option<tokio::sync::mpsc::Sender<Event>>,
}

impl Notifier {
    /// A notifier that sends nothing.
    pub fn none() -> Self {
        Self { queue: None }
    }

    /// Starts the delivery task (on the current Tokio runtime) for
    /// `targets`; with none, or outside a runtime, nothing is started.
    pub fn start(targets: Vec<Target>) -> Self {
        if targets.is_empty() {
            return Self::none();
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("notifications are off: no async runtime to send them from");
            return Self::none();
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(QUEUE);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build();
        let client = match client {
            Ok(client) => client,
            Err(err) => {
                tracing::error!(%err, "notifications are off: no HTTP client");
                return Self::none();
            }
        };
        runtime.spawn(async move {
            while let Some(event) = rx.recv().await {
                for target in &targets {
                    deliver(&client, target, &event).await;
                }
            }
        });
        Self { queue: Some(tx) }
    }

    /// Queues `event`; never waits. A full queue drops it, with a warning.
    pub fn send(&self, event: Event) {
        let Some(queue) = &self.queue else {
            return;
        };
        if let Err(err) = queue.try_send(event) {
            tracing::warn!(%err, "approval notification dropped: the queue is full or closed");
        }
    }
}

async fn deliver(client: &reqwest::Client, target: &Target, event: &Event) {
    let (url, body, headers) = match target {
        Target::Webhook { url, secret } => {
            let body = json!({"event": event.kind, "approval": event.approval}).to_string();
            let timestamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default()
                .to_string();
            let signature = sign(secret, &timestamp, &body);
            let headers = vec![
                ("x-sluice-timestamp", timestamp),
                ("x-sluice-signature", format!("sha256={signature}")),
            ];
            (url.as_str(), body, headers)
        }
        Target::Slack { url } => {
            let body = json!({"text": event.summary}).to_string();
            (url.as_str(), body, Vec::new())
        }
    };
    let shown = match target {
        Target::Webhook { url, .. } => url.clone(),
        Target::Slack { .. } => "Slack".to_owned(),
    };
    for (attempt, wait) in [1u64, 4, 16, 0].into_iter().enumerate() {
        let mut request = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone());
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => {
                tracing::warn!(target = %shown, status = %response.status(), attempt, "approval notification refused")
            }
            Err(err) => {
                // The error may quote the URL, which is a secret for Slack.
                let err = if matches!(target, Target::Slack { .. }) {
                    "request failed".to_owned()
                } else {
                    err.to_string()
                };
                tracing::warn!(target = %shown, %err, attempt, "approval notification failed");
            }
        }
        if wait == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
    tracing::warn!(target = %shown, event = event.kind, "approval notification given up");
}

/// HMAC-SHA256 of `timestamp.body` under `secret`, in hex.
pub fn sign(secret: &str, timestamp: &str, body: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, format!("{timestamp}.{body}").as_bytes());
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // As a receiver computes it (Python's hmac module gave the value).
        assert_eq!(
            sign("key", "1700000000", r#"{"a":1}"#),
            "a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
        );
        let a = sign("k", "1", "{}");
        assert_ne!(a, sign("k", "2", "{}"), "the timestamp is signed");
        assert_ne!(a, sign("other", "1", "{}"), "the key matters");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let webhook = Target::Webhook {
            url: "https://hooks.example/x".into(),
            secret: Zeroizing::new("s3cret".into()),
        };
        let slack = Target::Slack {
            url: Zeroizing::new("https://hooks.slack.com/services/T/B/XYZ".into()),
        };
        let shown = format!("{webhook:?} {slack:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("XYZ"),
            "{shown}"
        );
    }
}
