//! The access-request and grant REST API, in the style of Google's APIs:
//!
//! | call | does |
//! |---|---|
//! | `POST /sluice/v1/access-requests` | asks for a grant: `{"datasets": ["demo.shop"], "tables": [...], "duration": "1h", "justification": "…"}` |
//! | `GET /sluice/v1/access-requests?state=PENDING` | the access requests the caller may see (`{"accessRequests": [...]}`) |
//! | `GET /sluice/v1/access-requests/{id}` | one request |
//! | `POST /sluice/v1/access-requests/{id}:approve` / `:deny` | a reviewer's vote, as on `/sluice/v1/approvals` |
//! | `POST /sluice/v1/access-requests/{id}:cancel` | the requester withdraws it |
//! | `GET /sluice/v1/grants?state=ACTIVE` | grants the caller holds or reviews (`ALL` for ended ones too) |
//! | `POST /sluice/v1/grants/{id}:revoke` | ends a grant now (its holder, or a reviewer of its rule) |
//!
//! Callers authenticate with the same bearer tokens as the BigQuery facade.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sluice_store::{ApprovalState, GrantRecord};

use super::AccessAsk;
use crate::Gateway;
use crate::approvals::Verdict;
use crate::authenticate::observed;
use crate::error::GatewayError;
use crate::jobs::now_ms;

/// Access requests.
pub const REQUESTS: &str = "/sluice/v1/access-requests";
/// Grants.
pub const GRANTS: &str = "/sluice/v1/grants";

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024;

/// `?state=` of the access-request list.
pub(super) const APPROVAL_STATES: &[&str] = &[
    "PENDING",
    "APPROVED",
    "DENIED",
    "EXPIRED",
    "WITHDRAWN",
    "ALL",
];
/// `?state=` of the grant list.
pub(super) const GRANT_STATES: &[&str] = &["ACTIVE", "ALL"];

/// The most names one request may ask for.
const MAX_NAMES: usize = 50;

/// The axum handler for every path under [`REQUESTS`] and [`GRANTS`].
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
    let path = parts.uri.path();
    let query = parts.uri.query();
    if let Some(rest) = path.strip_prefix(GRANTS) {
        let rest = rest.trim_start_matches('/');
        return match (&parts.method, rest) {
            (&Method::GET, "") => {
                let active = state_param(query, GRANT_STATES)?.as_deref() != Some("ALL");
                let now = now_ms();
                let grants = super::visible_grants(approvals, &who, active).await?;
                let items: Vec<Value> = grants.iter().map(|g| grant_resource(g, now)).collect();
                Ok(json!({"grants": items}))
            }
            (&Method::POST, action) => match action.rsplit_once(':') {
                Some((id, "revoke")) => {
                    let grant = super::revoke(approvals, &who, id).await?;
                    Ok(grant_resource(&grant, now_ms()))
                }
                _ => Err(unknown(path)),
            },
            _ => Err(unknown(path)),
        };
    }
    let rest = path
        .strip_prefix(REQUESTS)
        .unwrap_or_default()
        .trim_start_matches('/');
    let usd_per_tib = gateway.config.usd_per_tib;
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| GatewayError::too_large(MAX_BODY))?;
    match (&parts.method, rest) {
        (&Method::POST, "") => {
            let ask = ask(&body)?;
            let opened = super::open(approvals, &who, ask).await?;
            Ok(request_resource(&opened, usd_per_tib))
        }
        (&Method::GET, "") => {
            let state = state_param(query, APPROVAL_STATES)?.and_then(|s| ApprovalState::parse(&s));
            // `ALL` parses as no state: every one.
            let list = approvals.list(&who, state).await?;
            let items: Vec<Value> = list
                .iter()
                .filter(|a| super::is_access(a))
                .map(|a| request_resource(a, usd_per_tib))
                .collect();
            Ok(json!({"accessRequests": items}))
        }
        (&Method::GET, id) if !id.contains(['/', ':']) => {
            let approval = approvals.load(&who, id).await?;
            if !super::is_access(&approval) {
                return Err(GatewayError::not_found(format!(
                    "Not found: access request {}",
                    crate::approvals::shown(id)
                )));
            }
            Ok(request_resource(&approval, usd_per_tib))
        }
        (&Method::POST, action) => {
            let (id, verb) = action.rsplit_once(':').ok_or_else(|| unknown(path))?;
            let approval = approvals.load(&who, id).await?;
            if !super::is_access(&approval) {
                return Err(GatewayError::not_found(format!(
                    "Not found: access request {}",
                    crate::approvals::shown(id)
                )));
            }
            let verdict = match verb {
                "approve" => Verdict::Approve,
                "deny" => Verdict::Deny,
                "cancel" => {
                    approvals.cancel_access(&who, &approval).await?;
                    let now = approvals.load(&who, id).await?;
                    return Ok(request_resource(&now, usd_per_tib));
                }
                _ => return Err(unknown(path)),
            };
            let reason = crate::approvals::api::reason(&body)?;
            let voted = approvals.vote(&who, id, verdict, &reason).await?;
            Ok(request_resource(&voted, usd_per_tib))
        }
        _ => Err(unknown(path)),
    }
}

fn unknown(path: &str) -> GatewayError {
    let shown: String = path.chars().take(120).collect();
    GatewayError::not_found(format!(
        "Not found: {shown}. This API has POST and GET {REQUESTS}, GET {REQUESTS}/ID, POST {REQUESTS}/ID:approve, :deny or :cancel, GET {GRANTS} and POST {GRANTS}/ID:revoke."
    ))
}

/// `?state=…` (any case, returned upper-case), one of `allowed`.
pub(super) fn state_param(
    query: Option<&str>,
    allowed: &[&str],
) -> Result<Option<String>, GatewayError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|_| GatewayError::invalid("The query string is not valid."))?;
    let mut state = None;
    for (key, value) in pairs {
        if key != "state" {
            let shown: String = key.chars().take(40).collect();
            return Err(GatewayError::invalid(format!(
                "Unknown query parameter \"{shown}\": only state is accepted."
            )));
        }
        let upper = value.to_ascii_uppercase();
        if !allowed.contains(&upper.as_str()) {
            return Err(GatewayError::invalid(format!(
                "Invalid state: use {}.",
                allowed.join(", ")
            )));
        }
        state = Some(upper);
    }
    Ok(state)
}

/// The body of `POST /sluice/v1/access-requests`, checked.
pub(super) fn ask(body: &[u8]) -> Result<AccessAsk, GatewayError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Body {
        #[serde(default)]
        datasets: Vec<String>,
        #[serde(default)]
        tables: Vec<String>,
        #[serde(default)]
        duration: String,
        #[serde(default)]
        justification: String,
    }
    const EXAMPLE: &str = r#"{"datasets": ["demo.shop"], "duration": "1h", "justification": "…"}"#;
    let body: Body = crate::wire::parse_body(body)
        .map_err(|err| GatewayError::invalid(format!("{} Send {EXAMPLE}.", err.message)))?;
    let mut names = Vec::new();
    for (name, parts) in body
        .datasets
        .iter()
        .map(|d| (d, 2))
        .chain(body.tables.iter().map(|t| (t, 3)))
    {
        let name = name.trim();
        let well_formed = name.split('.').count() == parts
            && name.split('.').all(|part| {
                !part.is_empty()
                    && part.len() <= 1024
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$'))
            });
        if !well_formed {
            let shown: String = name.chars().take(80).collect();
            let what = if parts == 2 {
                "project.dataset"
            } else {
                "project.dataset.table"
            };
            return Err(GatewayError::invalid(format!(
                "\"{shown}\" is not {what}: name it in full, without wildcards."
            )));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    if names.is_empty() {
        return Err(GatewayError::invalid(format!(
            "Name the datasets or tables you need: send {EXAMPLE}."
        )));
    }
    if names.len() > MAX_NAMES {
        return Err(GatewayError::invalid(format!(
            "At most {MAX_NAMES} datasets and tables per request."
        )));
    }
    // The parser quotes what it was given: only short text reaches it.
    let text = body.duration.trim();
    let parsed = if text.chars().count() <= 32 {
        sluice_identity::parse_duration(text)
    } else {
        Err("the value is not a duration".to_owned())
    };
    let duration = parsed.map_err(|err| {
        GatewayError::invalid(format!(
            "\"duration\": {err}. Write how long you need it, such as 30m or 2h."
        ))
    })?;
    if duration < Duration::from_secs(1) {
        return Err(GatewayError::invalid("\"duration\" must be at least 1s."));
    }
    let justification = body.justification.trim().to_owned();
    if justification.is_empty() {
        return Err(GatewayError::invalid(
            "\"justification\" is required: say why you need the access, for the reviewers.",
        ));
    }
    if justification.chars().count() > 2000 {
        return Err(GatewayError::invalid(
            "\"justification\" is longer than 2000 characters.",
        ));
    }
    Ok(AccessAsk {
        names,
        duration,
        justification,
    })
}

/// An access request as the API shows it: the approval resource, with
/// what it asks for.
fn request_resource(approval: &sluice_store::ApprovalRecord, usd_per_tib: f64) -> Value {
    let mut resource = crate::approvals::api::resource(approval, usd_per_tib);
    let details = &approval.details;
    if let Some(object) = resource.as_object_mut() {
        for key in ["jobReference", "sql", "sqlHash", "estimate", "limits"] {
            object.remove(key);
        }
        object.insert("datasets".into(), details["datasets"].clone());
        object.insert("tables".into(), details["tables"].clone());
        object.insert(
            "duration".into(),
            json!(format!(
                "{}s",
                details["durationSeconds"].as_u64().unwrap_or(0)
            )),
        );
        object.insert("justification".into(), details["justification"].clone());
    }
    resource
}

/// A grant as the API shows it.
fn grant_resource(grant: &GrantRecord, now: i64) -> Value {
    let state = if grant.revoked_ms.is_some() {
        "REVOKED"
    } else if grant.is_active(now) {
        "ACTIVE"
    } else {
        "EXPIRED"
    };
    json!({
        "id": grant.id,
        "state": state,
        "principal": grant.principal,
        "rule": grant.rule,
        "datasets": grant.datasets,
        "tables": grant.tables,
        "justification": grant.reason,
        "approvedBy": grant.approved_by,
        "startTime": crate::approvals::api::time(grant.start_ms),
        "expireTime": crate::approvals::api::time(grant.expire_ms),
        "revokeTime": grant.revoked_ms.map(crate::approvals::api::time),
        "revokedBy": grant.revoked_by,
    })
}
