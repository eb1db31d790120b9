//! `GET /ui/sessions`: the sessions with activity in the last week;
//! `GET /ui/sessions/{id}`: one session's timeline — each request with
//! its SQL, decision, approvals and job, and the rows of every page as
//! the agent received them (masked), each checked against the hash its
//! audit event carries. Only for principals in `audit.readers`, like
//! `/sluice/v1/audit`; the pages read the log through
//! [`crate::audit::replay`], as `sluice sessions replay` does.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::html::{escape, highlight_sql, page};
use super::pages::{error_page, is_auditor, shown_id, signed_in, time, viewer};
use super::session::{Session, SessionKey};
use super::{html as respond, ready};
use crate::audit::replay::{self, RecordedRows};
use crate::{Gateway, GatewayError};

/// How far back the list looks.
const WEEK_MS: i64 = 7 * 24 * 3_600_000;
/// Sessions listed at most.
const LISTED: usize = 200;
/// Events shown of one session at most.
const SHOWN_EVENTS: usize = 2_000;
/// Rows shown per page.
const SHOWN_ROWS: usize = 50;

/// The signed-in session of an auditor, or the page to answer instead.
async fn signed_in_auditor<'g>(
    gateway: &'g Gateway,
    headers: &HeaderMap,
    here: &str,
) -> Result<(Session, &'g SessionKey), Response> {
    let (_, key) = ready(gateway).await?;
    let session = signed_in(headers, key, here)?;
    if !is_auditor(gateway, &session) {
        return Err(error_page(
            gateway,
            &session,
            key,
            &GatewayError::access_denied(format!(
                "Access Denied: rule audit.readers: {} may not read the audit log. Ask the Sluice \
                 administrators to add you to audit.readers.",
                session.principal.name
            )),
        ));
    }
    Ok((session, key))
}

/// `GET /ui/sessions`.
pub async fn list(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let (session, key) = match signed_in_auditor(&gateway, &headers, "/ui/sessions").await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let since = crate::jobs::now_ms() - WEEK_MS;
    let sessions = match gateway.store.audit_sessions(since, LISTED).await {
        Ok(sessions) => sessions,
        Err(err) => return error_page(&gateway, &session, key, &err.into()),
    };
    let mut body = String::from(
        "<h1>Sessions</h1><p class=\"muted\">What each agent did in the last seven days, \
         from the audit log: a session is a principal's CI run, else its token, else an hour.</p>",
    );
    if sessions.is_empty() {
        body.push_str("<p class=\"muted\">No session in the last seven days.</p>");
    } else {
        body.push_str(
            "<table class=\"sessions\"><thead><tr><th>Session</th><th>Principal</th><th>First</th>\
             <th>Last</th><th>Events</th><th>Queries</th><th>Refused</th></tr></thead><tbody>",
        );
        for s in &sessions {
            let _ = write!(
                body,
                "<tr><td class=\"mono\"><a href=\"/ui/sessions/{link}\">{id}</a></td><td>{who}</td>\
                 <td class=\"num\">{first}</td><td class=\"num\">{last}</td><td class=\"num\">{events}</td>\
                 <td class=\"num\">{queries}</td><td class=\"num\">{refused}</td></tr>",
                link = escape(&shown_id(&s.session)),
                id = escape(&s.session),
                who = escape(&s.principal),
                first = escape(&time(s.first_ms)),
                last = escape(&time(s.last_ms)),
                events = s.events,
                queries = s.queries,
                refused = s.refused,
            );
        }
        body.push_str("</tbody></table>");
    }
    let csrf = session.csrf(key);
    respond(
        StatusCode::OK,
        page("Sessions", Some(&viewer(&gateway, &session, &csrf)), &body),
    )
}

/// `GET /ui/sessions/{id}`.
pub async fn show(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let id = shown_id(&id);
    let here = format!("/ui/sessions/{id}");
    let (session, key) = match signed_in_auditor(&gateway, &headers, &here).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let store = gateway.store.as_ref();
    let events = match replay::session_events(store, &id, SHOWN_EVENTS).await {
        Ok(events) if events.is_empty() => {
            return error_page(
                &gateway,
                &session,
                key,
                &GatewayError::not_found(format!(
                    "Not found: no session {id} in the audit log (the Sessions page lists them)."
                )),
            );
        }
        Ok(events) => events,
        Err(err) => return error_page(&gateway, &session, key, &err.into()),
    };
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Session <span class=\"mono\">{}</span></h1>",
        escape(&id)
    );
    let first = &events[0].event;
    let last = &events[events.len() - 1].event;
    let _ = write!(
        body,
        "<dl class=\"facts\"><dt>Principal</dt><dd>{who}</dd><dt>From</dt><dd>{from}</dd>\
         <dt>To</dt><dd>{to}</dd><dt>Events</dt><dd>{n}{cut}</dd>",
        who = escape(&first.principal),
        from = escape(&time(first.at_ms)),
        to = escape(&time(last.at_ms)),
        n = events.len(),
        cut = if events.len() == SHOWN_EVENTS {
            " (the first ones; `sluice sessions replay` prints them all)"
        } else {
            ""
        },
    );
    let claims = events.iter().find_map(|r| {
        r.event
            .detail
            .get("claims")
            .and_then(Value::as_object)
            .filter(|c| !c.is_empty())
    });
    if let Some(claims) = claims {
        body.push_str("<dt>CI run</dt><dd class=\"mono\">");
        let shown: Vec<String> = claims
            .iter()
            .map(|(claim, value)| {
                let value = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                format!("{claim}={value}")
            })
            .collect();
        body.push_str(&escape(&shown.join(" · ")));
        body.push_str("</dd>");
    }
    body.push_str("</dl><h2>Timeline</h2>");
    for record in &events {
        let event = &record.event;
        let _ = write!(
            body,
            "<section class=\"event\" id=\"e{seq}\" data-kind=\"{kind}\">\
             <div class=\"when\"><span class=\"num\">{at}</span> <span class=\"muted\">#{seq}</span> \
             <span class=\"badge\">{kind}</span></div><div class=\"what\">{what}</div>",
            seq = record.seq,
            kind = escape(&event.kind),
            at = escape(&time(event.at_ms)),
            what = escape(&replay::describe(record).join(" · ")),
        );
        if let Some(sql) = replay::sql(record) {
            let _ = write!(
                body,
                "<pre class=\"sql\"><code>{}</code></pre>",
                highlight_sql(sql)
            );
        }
        match replay::recorded_rows(store, record, SHOWN_ROWS).await {
            Ok(None) => {}
            Ok(Some(RecordedRows::Rows {
                columns,
                rows,
                more,
            })) => {
                body.push_str("<table class=\"rows\"><thead><tr>");
                for column in &columns {
                    let _ = write!(body, "<th>{}</th>", escape(column));
                }
                body.push_str("</tr></thead><tbody>");
                for row in &rows {
                    body.push_str("<tr>");
                    for cell in row {
                        let _ = write!(body, "<td class=\"mono\">{}</td>", escape(cell));
                    }
                    body.push_str("</tr>");
                }
                body.push_str("</tbody></table>");
                if more > 0 {
                    let _ = write!(
                        body,
                        "<p class=\"muted\">… {more} more rows (`sluice sessions replay --max-rows` prints them).</p>"
                    );
                }
            }
            Ok(Some(other)) => {
                let class = if matches!(other, RecordedRows::Altered | RecordedRows::Unreadable) {
                    "error"
                } else {
                    "notice"
                };
                let _ = write!(
                    body,
                    "<div class=\"{class}\">{}</div>",
                    escape(&other.notice().unwrap_or_default())
                );
            }
            Err(err) => {
                let _ = write!(
                    body,
                    "<div class=\"error\">The recorded rows could not be read: {}</div>",
                    escape(&err.to_string())
                );
            }
        }
        body.push_str("</section>");
    }
    let csrf = session.csrf(key);
    respond(
        StatusCode::OK,
        page(
            &format!("Session {id}"),
            Some(&viewer(&gateway, &session, &csrf)),
            &body,
        ),
    )
}
