//! The pages: pending requests, one request with its vote form, history
//! (grants are in `grants.rs`).

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;
use sluice_store::{ApprovalRecord, ApprovalState};

use super::html::{Viewer, escape, highlight_sql, page};
use super::session::{Session, SessionKey};
use super::{html as respond, ready, session_of};
use crate::approvals::{Verdict, usd};
use crate::authenticate::{Principal, RecordedCaller};
use crate::{Gateway, GatewayError};

/// The reviewer a session stands for: the same principal as over REST.
pub(super) fn principal(session: &Session) -> Principal {
    Principal::recorded(&RecordedCaller {
        verified: session.principal.clone(),
        claims: serde_json::Map::new(),
    })
}

/// The signed-in session, or the sign-in page (which returns to `here`).
#[expect(
    clippy::result_large_err,
    reason = "the refusal is the page itself, answered at once"
)]
pub(super) fn signed_in(
    headers: &HeaderMap,
    key: &SessionKey,
    here: &str,
) -> Result<Session, Response> {
    session_of(headers, key).ok_or_else(|| {
        let next = serde_urlencoded::to_string([("next", here)]).unwrap_or_default();
        let body = format!(
            "<h1>Sign in to review queries</h1>\
             <p>Queries that need a reviewer's approval wait here. Sign in with your identity provider \
             to see the requests you may decide.</p>\
             <p><a class=\"button\" href=\"/ui/login?{}\">Sign in</a></p>",
            escape(&next)
        );
        respond(StatusCode::UNAUTHORIZED, page("Sign in", None, &body))
    })
}

pub(super) fn viewer<'a>(gateway: &Gateway, session: &'a Session, csrf: &'a str) -> Viewer<'a> {
    Viewer {
        name: &session.principal.name,
        groups: &session.principal.groups,
        csrf,
        auditor: is_auditor(gateway, session),
    }
}

/// Whether the signed-in principal may read the audit log
/// (`audit.readers`), so sees the session pages.
pub(super) fn is_auditor(gateway: &Gateway, session: &Session) -> bool {
    gateway
        .audit
        .config()
        .readers
        .admit(&principal(session).who())
}

pub(super) fn error_page(
    gateway: &Gateway,
    session: &Session,
    key: &SessionKey,
    err: &GatewayError,
) -> Response {
    let csrf = session.csrf(key);
    let body = format!(
        "<h1>Not available</h1><div class=\"error\">{}</div><p><a href=\"/ui/\">Back to the pending requests</a></p>",
        escape(&err.message)
    );
    respond(
        err.status,
        page(
            "Not available",
            Some(&viewer(gateway, session, &csrf)),
            &body,
        ),
    )
}

/// `GET /ui/`: what waits for the reviewer.
pub async fn pending(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let (_, key) = match ready(&gateway).await {
        Ok(ready) => ready,
        Err(response) => return response,
    };
    let session = match signed_in(&headers, key, "/ui/") {
        Ok(session) => session,
        Err(response) => return response,
    };
    let list = match gateway
        .approvals
        .list(&principal(&session), Some(ApprovalState::Pending))
        .await
    {
        Ok(list) => list,
        Err(err) => return error_page(&gateway, &session, key, &err),
    };
    let usd_per_tib = gateway.config.usd_per_tib;
    let mut body = String::from("<h1>Pending requests</h1>");
    if list.is_empty() {
        body.push_str("<p class=\"muted\">Nothing waits for you. Requests appear here when a query needs your approval.</p>");
    } else {
        body.push_str(
            "<table><thead><tr><th>Request</th><th>Rule</th><th>Requester</th><th>CI run</th>\
             <th>Estimate</th><th>Expires</th></tr></thead><tbody>",
        );
        for approval in &list {
            let _ = write!(
                body,
                "<tr><td><a href=\"/ui/approvals/{id}\" class=\"mono\">{id}</a><div class=\"muted\">{sql}</div></td>\
                 <td>{rule}</td><td>{who}</td><td>{ci}</td><td class=\"num\">{estimate}</td><td class=\"num\">{expires}</td></tr>",
                id = escape(&approval.id),
                sql = escape(&sql_preview(approval)),
                rule = escape(&approval.rule),
                who = escape(&approval.principal),
                ci = ci_summary(approval),
                estimate = estimate(approval, usd_per_tib),
                expires = escape(&time(approval.expire_ms)),
            );
        }
        body.push_str("</tbody></table>");
    }
    let csrf = session.csrf(key);
    respond(
        StatusCode::OK,
        page(
            "Pending requests",
            Some(&viewer(&gateway, &session, &csrf)),
            &body,
        ),
    )
}

/// `GET /ui/history`: closed requests, newest first.
pub async fn history(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let (_, key) = match ready(&gateway).await {
        Ok(ready) => ready,
        Err(response) => return response,
    };
    let session = match signed_in(&headers, key, "/ui/history") {
        Ok(session) => session,
        Err(response) => return response,
    };
    let list = match gateway.approvals.list(&principal(&session), None).await {
        Ok(list) => list,
        Err(err) => return error_page(&gateway, &session, key, &err),
    };
    let closed: Vec<&ApprovalRecord> = list
        .iter()
        .filter(|a| a.state != ApprovalState::Pending)
        .take(200)
        .collect();
    let mut body = String::from("<h1>History</h1>");
    if closed.is_empty() {
        body.push_str("<p class=\"muted\">No closed requests yet.</p>");
    } else {
        body.push_str(
            "<table><thead><tr><th>Request</th><th>State</th><th>Rule</th><th>Requester</th>\
             <th>Closed by</th><th>Reason</th><th>Closed</th></tr></thead><tbody>",
        );
        for approval in closed {
            let _ = write!(
                body,
                "<tr><td><a href=\"/ui/approvals/{id}\" class=\"mono\">{id}</a><div class=\"muted\">{sql}</div></td>\
                 <td><span class=\"badge {state}\">{state}</span></td><td>{rule}</td><td>{who}</td>\
                 <td>{by}</td><td>{reason}</td><td class=\"num\">{closed}</td></tr>",
                id = escape(&approval.id),
                sql = escape(&sql_preview(approval)),
                state = approval.state.as_str(),
                rule = escape(&approval.rule),
                who = escape(&approval.principal),
                by = escape(approval.closed_by.as_deref().unwrap_or("")),
                reason = escape(approval.reason.as_deref().unwrap_or("")),
                closed = escape(&approval.closed_ms.map(time).unwrap_or_default()),
            );
        }
        body.push_str("</tbody></table>");
    }
    let csrf = session.csrf(key);
    respond(
        StatusCode::OK,
        page("History", Some(&viewer(&gateway, &session, &csrf)), &body),
    )
}

/// `GET /ui/approvals/{id}`.
pub async fn request(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (_, key) = match ready(&gateway).await {
        Ok(ready) => ready,
        Err(response) => return response,
    };
    let here = format!("/ui/approvals/{}", shown_id(&id));
    let session = match signed_in(request.headers(), key, &here) {
        Ok(session) => session,
        Err(response) => return response,
    };
    let voted = request.uri().query().and_then(|q| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == "voted")
            .map(|(_, v)| v)
    });
    let notice = match voted.as_deref() {
        Some("approve") => Notice::Ok("Your approval was recorded."),
        Some("deny") => Notice::Ok("Your denial was recorded; the query will not run."),
        _ => Notice::None,
    };
    match gateway.approvals.load(&principal(&session), &id).await {
        Ok(approval) => render_request(&gateway, &session, key, &approval, notice, StatusCode::OK),
        Err(err) => error_page(&gateway, &session, key, &err),
    }
}

/// `POST /ui/approvals/{id}`: a vote, through the same path as the REST
/// API; a refusal is shown on the request's page.
pub async fn vote(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (session, key, fields) = match super::checked_form(&gateway, request).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let verdict = match fields.get("verdict").map(String::as_str) {
        Some("approve") => Verdict::Approve,
        Some("deny") => Verdict::Deny,
        _ => {
            return error_page(
                &gateway,
                &session,
                key,
                &GatewayError::invalid("Choose Approve or Deny."),
            );
        }
    };
    let reason = fields.get("reason").map(String::as_str).unwrap_or_default();
    let reviewer = principal(&session);
    match gateway
        .approvals
        .vote(&reviewer, &id, verdict, reason)
        .await
    {
        Ok(_) => {
            let action = if verdict == Verdict::Approve {
                "approve"
            } else {
                "deny"
            };
            super::see_other(
                &format!("/ui/approvals/{}?voted={action}", shown_id(&id)),
                &[],
            )
        }
        Err(err) => match gateway.approvals.load(&reviewer, &id).await {
            Ok(approval) => render_request(
                &gateway,
                &session,
                key,
                &approval,
                Notice::Refused(&err.message, reason),
                err.status,
            ),
            Err(_) => error_page(&gateway, &session, key, &err),
        },
    }
}

/// What to say above a request.
enum Notice<'a> {
    None,
    Ok(&'a str),
    /// A refused vote: why, and the reason the reviewer typed (kept).
    Refused(&'a str, &'a str),
}

fn render_request(
    gateway: &Gateway,
    session: &Session,
    key: &SessionKey,
    approval: &ApprovalRecord,
    notice: Notice<'_>,
    status: StatusCode,
) -> Response {
    let details = &approval.details;
    let text = |name: &str| {
        details
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let csrf = session.csrf(key);
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Request <span class=\"mono\">{}</span> <span class=\"badge {state}\">{state}</span></h1>",
        escape(&approval.id),
        state = approval.state.as_str()
    );
    let typed = match notice {
        Notice::None => "",
        Notice::Ok(message) => {
            let _ = write!(body, "<div class=\"ok\">{}</div>", escape(message));
            ""
        }
        Notice::Refused(message, typed) => {
            let _ = write!(
                body,
                "<div class=\"error\" role=\"alert\">Your vote was not recorded: {}</div>",
                escape(message)
            );
            typed
        }
    };
    let limits = details.get("limits").cloned().unwrap_or(Value::Null);
    let limit = |name: &str| limits.get(name).and_then(Value::as_u64);
    let limits_text = match (limit("maxBytesBilled"), limit("maxRows")) {
        (None, None) => "none set by the policy".to_owned(),
        (bytes, rows) => [
            bytes.map(|b| format!("at most {} billed", sluice_policy::human_bytes(b))),
            rows.map(|r| format!("at most {} rows", grouped(r))),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", "),
    };
    let _ = write!(
        body,
        "<dl class=\"facts\">\
         <dt>Requester</dt><dd><strong>{who}</strong> <span class=\"muted mono\">{requester}</span></dd>\
         <dt>Rule</dt><dd><strong>{rule}</strong> (policy {policy}): {why}</dd>\
         <dt>Estimate</dt><dd>{estimate}</dd>\
         <dt>Limits</dt><dd>{limits}</dd>\
         <dt>Reviewers</dt><dd>{reviewers}; {quorum} approval{s} needed</dd>\
         <dt>Job</dt><dd class=\"mono\">{project}:{job}</dd>\
         <dt>Created</dt><dd>{created}</dd><dt>Expires</dt><dd>{expires}</dd>",
        who = escape(&approval.principal),
        requester = escape(&approval.requester),
        rule = escape(&approval.rule),
        policy = escape(text("policy")),
        why = escape(text("why")),
        estimate = estimate(approval, gateway.config.usd_per_tib),
        limits = escape(&limits_text),
        reviewers = escape(&approval.reviewers.join(", ")),
        quorum = approval.min_approvals,
        s = if approval.min_approvals == 1 { "" } else { "s" },
        project = escape(&approval.project_id),
        job = escape(&approval.job_id),
        created = escape(&time(approval.created_ms)),
        expires = escape(&time(approval.expire_ms)),
    );
    if let Some(by) = &approval.closed_by {
        let _ = write!(
            body,
            "<dt>Closed</dt><dd>{} by <strong>{}</strong>{}</dd>",
            escape(&approval.closed_ms.map(time).unwrap_or_default()),
            escape(by),
            approval
                .reason
                .as_deref()
                .filter(|r| !r.is_empty())
                .map(|r| format!(": {}", escape(r)))
                .unwrap_or_default()
        );
    }
    body.push_str("</dl>");
    body.push_str("<h2>CI run</h2>");
    match details.get("ci").and_then(Value::as_object).filter(|c| !c.is_empty()) {
        Some(ci) => {
            body.push_str("<dl class=\"facts\">");
            for (claim, value) in ci {
                let value = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
                let _ = write!(
                    body,
                    "<dt class=\"mono\">{}</dt><dd class=\"mono\">{}</dd>",
                    escape(claim),
                    escape(&value)
                );
            }
            body.push_str("</dl>");
        }
        None => body.push_str(
            "<p class=\"muted\">The requester's token named no CI run (no repository, workflow or run claims).</p>",
        ),
    }
    if crate::access::is_access(approval) {
        // An access request: what it asks for instead of SQL.
        let names = |key: &str| {
            details
                .get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        let seconds = details
            .get("durationSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let _ = write!(
            body,
            "<h2>Access asked for</h2><dl class=\"facts\">\
             <dt>Datasets</dt><dd class=\"mono\">{}</dd><dt>Tables</dt><dd class=\"mono\">{}</dd>\
             <dt>For</dt><dd>{}</dd><dt>Justification</dt><dd>{}</dd></dl>",
            escape(&names("datasets")),
            escape(&names("tables")),
            escape(&crate::approvals::minutes_text(seconds)),
            escape(text("justification")),
        );
    } else {
        let _ = write!(
            body,
            "<h2>SQL</h2><pre class=\"sql\"><code>{}</code></pre>",
            highlight_sql(text("sql"))
        );
    }
    if details
        .get("parameters")
        .is_some_and(|p| p.as_array().is_some_and(|a| !a.is_empty()))
    {
        let parameters = details
            .get("parameters")
            .map(Value::to_string)
            .unwrap_or_default();
        let _ = write!(
            body,
            "<h2>Parameters</h2><pre class=\"mono\">{}</pre>",
            escape(&parameters)
        );
    }
    body.push_str("<h2>Votes</h2>");
    if approval.votes.is_empty() {
        body.push_str("<p class=\"muted\">No votes yet.</p>");
    } else {
        body.push_str("<table><thead><tr><th>Reviewer</th><th>Vote</th><th>Reason</th><th>When</th></tr></thead><tbody>");
        for vote in &approval.votes {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                escape(&vote.voter),
                if vote.approve { "APPROVE" } else { "DENY" },
                escape(&vote.reason),
                escape(&time(vote.at_ms))
            );
        }
        body.push_str("</tbody></table>");
    }
    if approval.state == ApprovalState::Pending {
        let _ = write!(
            body,
            "<h2>Your decision</h2><form class=\"vote\" method=\"post\" action=\"/ui/approvals/{id}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{justify}\
             <label for=\"reason\">Reason{optional}</label>\
             <textarea id=\"reason\" name=\"reason\" maxlength=\"2000\">{typed}</textarea><p>\
             <button class=\"approve\" type=\"submit\" name=\"verdict\" value=\"approve\">Approve</button>\
             <button class=\"deny\" type=\"submit\" name=\"verdict\" value=\"deny\">Deny</button></p>\
             <p class=\"muted\">A denial needs a reason; it is shown to the requester. You cannot vote on your own request.</p></form>",
            id = escape(&approval.id),
            csrf = escape(&csrf),
            justify = if approval.justification_required {
                "<div class=\"notice\">This rule requires a justification: give a reason to approve.</div>"
            } else {
                ""
            },
            optional = if approval.justification_required {
                ""
            } else {
                " (optional to approve, required to deny)"
            },
            typed = escape(typed),
        );
    }
    respond(
        status,
        page(
            &format!("Request {}", approval.id),
            Some(&viewer(gateway, session, &csrf)),
            &body,
        ),
    )
}

/// "14.3 MiB (14,983,168 bytes) · ≈ $0.0001", escaped.
fn estimate(approval: &ApprovalRecord, usd_per_tib: f64) -> String {
    match approval
        .details
        .get("estimateBytes")
        .and_then(Value::as_u64)
    {
        Some(bytes) => {
            let dollars = usd(bytes, usd_per_tib);
            let price = if dollars > 0.0 && dollars < 0.000_05 {
                "&lt; $0.0001".to_owned()
            } else {
                format!("≈ ${dollars:.4}")
            };
            format!(
                "{} <span class=\"muted\">({} bytes)</span> · {price}",
                escape(&sluice_policy::human_bytes(bytes)),
                grouped(bytes),
            )
        }
        None => "<span class=\"muted\">no estimate</span>".into(),
    }
}

/// `14983168` as `14,983,168`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The CI run in one line (repository · workflow · run), escaped.
fn ci_summary(approval: &ApprovalRecord) -> String {
    let Some(ci) = approval.details.get("ci").and_then(Value::as_object) else {
        return "<span class=\"muted\">—</span>".into();
    };
    let parts: Vec<String> = [
        "repository",
        "project_path",
        "workflow",
        "run_id",
        "pipeline_id",
    ]
    .iter()
    .filter_map(|k| {
        ci.get(*k).map(|v| {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            if k.ends_with("_id") {
                format!("run {v}")
            } else {
                v
            }
        })
    })
    .collect();
    if parts.is_empty() {
        "<span class=\"muted\">—</span>".into()
    } else {
        escape(&parts.join(" · "))
    }
}

/// The start of the SQL on one line.
fn sql_preview(approval: &ApprovalRecord) -> String {
    // An access request has no SQL: what it asks for instead.
    let sql = approval
        .details
        .get("sql")
        .or_else(|| approval.details.get("why"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 90 {
        format!("{}…", flat.chars().take(90).collect::<String>())
    } else {
        flat
    }
}

/// "2026-12-03 10:42 UTC".
pub(super) fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// An id as it may go back into a URL.
pub(super) fn shown_id(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect()
}
