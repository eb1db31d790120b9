//! `GET /ui/grants`: the just-in-time grants the signed-in principal holds
//! or reviews, with a revoke button on those in force;
//! `POST /ui/grants/{id}`: revokes one, through the same path as `POST
//! /sluice/v1/grants/{id}:revoke`.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::html::{escape, page};
use super::pages::{error_page, principal, shown_id, signed_in, time, viewer};
use super::{html as respond, ready};
use crate::Gateway;

/// `GET /ui/grants`.
pub async fn list(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let (_, key) = match ready(&gateway).await {
        Ok(ready) => ready,
        Err(response) => return response,
    };
    let session = match signed_in(&headers, key, "/ui/grants") {
        Ok(session) => session,
        Err(response) => return response,
    };
    let grants = match crate::access::visible_grants(
        &gateway.approvals,
        &principal(&session),
        false,
    )
    .await
    {
        Ok(grants) => grants,
        Err(err) => return error_page(&gateway, &session, key, &err),
    };
    let csrf = session.csrf(key);
    let now = crate::jobs::now_ms();
    let mut body = String::from("<h1>Grants</h1>");
    if grants.is_empty() {
        body.push_str(
            "<p class=\"muted\">No grants. A grant appears here once reviewers approve an access request.</p>",
        );
    } else {
        body.push_str(
            "<table><thead><tr><th>Grant</th><th>State</th><th>Holder</th><th>Covers</th>\
             <th>Approved by</th><th>Until</th><th></th></tr></thead><tbody>",
        );
        for grant in grants.iter().take(200) {
            let state = if grant.revoked_ms.is_some() {
                "REVOKED"
            } else if grant.is_active(now) {
                "ACTIVE"
            } else {
                "EXPIRED"
            };
            let covers: Vec<&str> = grant
                .datasets
                .iter()
                .chain(&grant.tables)
                .map(String::as_str)
                .collect();
            let revoke = if state == "ACTIVE" {
                format!(
                    "<form method=\"post\" action=\"/ui/grants/{id}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                     <button type=\"submit\">Revoke</button></form>",
                    id = escape(&grant.id),
                    csrf = escape(&csrf),
                )
            } else {
                String::new()
            };
            let _ = write!(
                body,
                "<tr><td class=\"mono\">{id}<div class=\"muted\">{why}</div></td>\
                 <td><span class=\"badge {state}\">{state}</span></td><td>{holder}</td>\
                 <td class=\"mono\">{covers}</td><td>{by}</td><td class=\"num\">{until}</td><td>{revoke}</td></tr>",
                id = escape(&grant.id),
                why = escape(&grant.reason),
                holder = escape(&grant.principal),
                covers = escape(&covers.join(", ")),
                by = escape(&grant.approved_by),
                until = escape(&time(grant.revoked_ms.unwrap_or(grant.expire_ms))),
            );
        }
        body.push_str("</tbody></table>");
    }
    respond(
        StatusCode::OK,
        page("Grants", Some(&viewer(&gateway, &session, &csrf)), &body),
    )
}

/// `POST /ui/grants/{id}`: revoke.
pub async fn revoke(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (session, key, _) = match super::checked_form(&gateway, request).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    match crate::access::revoke(&gateway.approvals, &principal(&session), &id).await {
        Ok(_) => super::see_other("/ui/grants", &[]),
        Err(err) => {
            tracing::info!(grant = %shown_id(&id), %err, "revoke refused");
            error_page(&gateway, &session, key, &err)
        }
    }
}
