//! The reviewer REST API, in the style of Google's APIs:
//!
//! | call | does |
//! |---|---|
//! | `GET /sluice/v1/approvals?state=PENDING` | the requests the caller may see (`{"approvals": [...]}`), newest first |
//! | `GET /sluice/v1/approvals/{id}` | one request |
//! | `POST /sluice/v1/approvals/{id}:approve` | a vote for it, `{"reason": "…"}` optional unless the rule requires one |
//! | `POST /sluice/v1/approvals/{id}:deny` | a vote against it, with `{"reason": "…"}` |
//!
//! Callers authenticate with the same bearer tokens as the BigQuery
//! facade. A reviewer sees the requests its rules name it for; a requester
//! sees its own. Errors have Google's shape
//! (`{"error": {code, message, errors, status}}`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sluice_store::{ApprovalRecord, ApprovalState};

use super::{Verdict, usd};
use crate::Gateway;
use crate::authenticate::observed;
use crate::error::GatewayError;

/// The path every call of this API begins with.
pub const PREFIX: &str = "/sluice/v1/approvals";

/// Largest request body accepted (a reason).
const MAX_BODY: usize = 16 * 1024;

/// The axum handler for every path under [`PREFIX`].
pub async fn handle(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    match run(&gateway, request).await {
        Ok(body) => axum::Json(body).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn run(gateway: &Gateway, request: Request) -> Result<Value, GatewayError> {
    let (parts, body) = request.into_parts();
    let request_id = crate::pipeline::request_id(&parts.headers);
    let who = observed(gateway, &parts.headers, &request_id).await?;
    let approvals = &gateway.approvals;
    let usd_per_tib = gateway.config.usd_per_tib;
    let rest = parts
        .uri
        .path()
        .strip_prefix(PREFIX)
        .unwrap_or_default()
        .trim_start_matches('/');
    match (&parts.method, rest) {
        (&Method::GET, "") => {
            let state = state_param(parts.uri.query())?;
            let list = approvals.list(&who, state).await?;
            let items: Vec<Value> = list.iter().map(|a| resource(a, usd_per_tib)).collect();
            Ok(json!({"approvals": items}))
        }
        (&Method::GET, id) if !id.contains(['/', ':']) => {
            Ok(resource(&approvals.load(&who, id).await?, usd_per_tib))
        }
        (&Method::POST, action) => {
            let (id, verdict) = match action.rsplit_once(':') {
                Some((id, "approve")) => (id, Verdict::Approve),
                Some((id, "deny")) => (id, Verdict::Deny),
                _ => return Err(unknown(parts.uri.path())),
            };
            let body = axum::body::to_bytes(body, MAX_BODY)
                .await
                .map_err(|_| GatewayError::too_large(MAX_BODY))?;
            let reason = reason(&body)?;
            let approval = approvals.vote(&who, id, verdict, &reason).await?;
            Ok(resource(&approval, usd_per_tib))
        }
        _ => Err(unknown(parts.uri.path())),
    }
}

fn unknown(path: &str) -> GatewayError {
    let shown: String = path.chars().take(120).collect();
    GatewayError::not_found(format!(
        "Not found: {shown}. The approvals API has GET {PREFIX}, GET {PREFIX}/ID, and POST {PREFIX}/ID:approve or :deny."
    ))
}

/// `?state=PENDING` (any case), or every state without it.
pub(crate) fn state_param(query: Option<&str>) -> Result<Option<ApprovalState>, GatewayError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|_| GatewayError::invalid("The query string is not valid."))?;
    let mut state = None;
    for (key, value) in pairs {
        match key.as_str() {
            "state" if value.eq_ignore_ascii_case("all") => state = None,
            "state" => {
                state = Some(ApprovalState::parse(&value.to_ascii_uppercase()).ok_or_else(|| {
                    GatewayError::invalid(
                        "Invalid state: use PENDING, APPROVED, DENIED, EXPIRED, WITHDRAWN or ALL.",
                    )
                })?);
            }
            _ => {
                let shown: String = key.chars().take(40).collect();
                return Err(GatewayError::invalid(format!(
                    "Unknown query parameter \"{shown}\": only state is accepted."
                )));
            }
        }
    }
    Ok(state)
}

/// The vote's reason from `{"reason": "…"}`; an empty body has none.
pub(crate) fn reason(body: &[u8]) -> Result<String, GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(String::new());
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(default)]
        reason: String,
    }
    crate::wire::parse_body::<Body>(body)
        .map(|b| b.reason)
        .map_err(|err| {
            GatewayError::invalid(format!("{} Send {{\"reason\": \"…\"}}.", err.message))
        })
}

/// An approval request as the API shows it.
pub fn resource(approval: &ApprovalRecord, usd_per_tib: f64) -> Value {
    let details = &approval.details;
    let reviewers = super::reviewers_of(approval);
    let bytes = details.get("estimateBytes").and_then(Value::as_u64);
    let limits = details.get("limits").cloned().unwrap_or(Value::Null);
    let text = |v: Option<&Value>| v.and_then(Value::as_u64).map(|n| n.to_string());
    let votes: Vec<Value> = approval
        .votes
        .iter()
        .map(|v| {
            json!({
                "reviewer": v.voter,
                "decision": if v.approve { "APPROVE" } else { "DENY" },
                "reason": v.reason,
                "time": time(v.at_ms),
            })
        })
        .collect();
    json!({
        "id": approval.id,
        "kind": if crate::access::is_access(approval) { "ACCESS" } else { "QUERY" },
        "state": approval.state.as_str(),
        "jobReference": {
            "projectId": approval.project_id,
            "jobId": approval.job_id,
        },
        "principal": approval.principal,
        "sql": details.get("sql"),
        "sqlHash": details.get("sqlHash"),
        "estimate": {
            "bytes": bytes.map(|b| b.to_string()),
            "usd": bytes.map(|b| usd(b, usd_per_tib)),
        },
        "limits": {
            "maxBytesBilled": text(limits.get("maxBytesBilled")),
            "maxRows": text(limits.get("maxRows")),
        },
        "rule": approval.rule,
        "policy": details.get("policy"),
        "why": details.get("why"),
        "reviewers": {
            "groups": reviewers.groups,
            "principals": reviewers.principals,
            "issuers": reviewers.issuers,
        },
        "minApprovals": approval.min_approvals,
        "justificationRequired": approval.justification_required,
        "createTime": time(approval.created_ms),
        "expireTime": time(approval.expire_ms),
        "closeTime": approval.closed_ms.map(time),
        "closedBy": approval.closed_by,
        "reason": approval.reason,
        "ci": details.get("ci"),
        "votes": votes,
    })
}

/// RFC 3339, UTC, to the second.
pub(crate) fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
