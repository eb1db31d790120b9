//! The audit REST API, for auditors (`audit.readers`):
//!
//! | call | does |
//! |---|---|
//! | `GET /sluice/v1/audit?since=…&until=…&principal=…&table=…&kind=…&session=…&pageSize=…&pageToken=…` | events, oldest first (`{"events": [...], "nextPageToken": …}`) |
//! | `GET /sluice/v1/audit/sessions?since=…` | sessions, the latest first |
//!
//! `since` and `until` are RFC 3339 times. Each event is returned as
//! stored, with its sequence number and hashes, so an answer can be
//! checked against the chain. Callers authenticate with the same bearer
//! tokens as the BigQuery facade; anyone else is refused (rule
//! `audit.readers`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sluice_store::audit::AuditFilter;

use crate::Gateway;
use crate::authenticate::observed;
use crate::error::GatewayError;

/// The path every call of this API begins with.
pub const PREFIX: &str = "/sluice/v1/audit";

/// Events read from the store per batch while filtering.
const BATCH: usize = 1000;
/// Events looked at for one answer; past it, the answer ends with a page
/// token to go on from.
const SCAN: usize = 50_000;

/// The axum handler for every path under [`PREFIX`].
pub async fn handle(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    match run(&gateway, request).await {
        Ok(body) => axum::Json(body).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn run(gateway: &Gateway, request: Request) -> Result<Value, GatewayError> {
    let (parts, _) = request.into_parts();
    let request_id = crate::pipeline::request_id(&parts.headers);
    let who = observed(gateway, &parts.headers, &request_id).await?;
    if !gateway.audit.config().readers.admit(&who.who()) {
        return Err(GatewayError::access_denied(format!(
            "Access Denied: rule audit.readers: {} may not read the audit log. Ask the Sluice \
             administrators to add you to audit.readers.",
            who.verified.name
        )));
    }
    let rest = parts.uri.path().strip_prefix(PREFIX).unwrap_or_default();
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map_err(|_| GatewayError::invalid("The query string is not valid."))?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let time = |name: &str| -> Result<Option<i64>, GatewayError> {
        param(name)
            .map(|text| {
                chrono::DateTime::parse_from_rfc3339(&text)
                    .map(|t| t.timestamp_millis())
                    .map_err(|_| {
                        GatewayError::invalid(format!(
                            "{name} is not an RFC 3339 time such as 2026-12-01T00:00:00Z."
                        ))
                    })
            })
            .transpose()
    };
    match (&parts.method, rest) {
        (&Method::GET, "" | "/") => {
            let filter = AuditFilter {
                since_ms: time("since")?,
                until_ms: time("until")?,
                principal: param("principal"),
                table: param("table"),
                kind: param("kind"),
                session: param("session"),
            };
            let size = match param("pageSize") {
                Some(n) => n
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| GatewayError::invalid("pageSize must be 1 to 1000."))?,
                None => 100,
            };
            let mut after = match param("pageToken") {
                Some(token) => token
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| GatewayError::invalid("pageToken is not one this API gave."))?,
                None => 0,
            };
            let store = &gateway.store;
            let (mut events, mut scanned, mut more) = (Vec::new(), 0, false);
            'scan: loop {
                let batch = store.audit_events(after, BATCH).await?;
                let Some(last) = batch.last().map(|r| r.seq) else {
                    break;
                };
                for record in batch {
                    after = record.seq;
                    scanned += 1;
                    if filter.matches(&record) {
                        events.push(record);
                    }
                    if events.len() == size || scanned == SCAN {
                        more = true;
                        break 'scan;
                    }
                }
                after = last;
            }
            let mut body = json!({ "events": events });
            if more {
                body["nextPageToken"] = json!(after.to_string());
            }
            Ok(body)
        }
        (&Method::GET, "/sessions") => {
            let since = time("since")?.unwrap_or(0);
            let sessions = gateway.store.audit_sessions(since, 1000).await?;
            Ok(json!({ "sessions": sessions }))
        }
        _ => {
            let shown: String = parts.uri.path().chars().take(120).collect();
            Err(GatewayError::not_found(format!(
                "Not found: {shown}. The audit API has GET {PREFIX} and GET {PREFIX}/sessions."
            )))
        }
    }
}
