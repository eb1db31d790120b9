//! The audit log: events appended to the store's hash chain
//! (`sluice_store::audit`), each naming the principal, the request and
//! this gateway process.
//!
//! - `query.started` is written **before** a job is sent to the warehouse
//!   ([`Audit::query_started`], from `Jobs::run`): if the store cannot take
//!   it, the job is not sent and ends with `audit.write` (403, not retried).
//! - `request` records each request that decided or read something, or
//!   was refused: the method and status, the decision (outcome, rule,
//!   policy), the SQL, the tables, the estimate, the job, the values
//!   masked per column and strategy, and the refusal's message
//!   ([`Audit::request_done`]). Successful polls and listings are not
//!   events, unless they returned masked values.
//!
//! SQL and messages pass through the content detectors first, so a
//! sensitive literal an agent typed (an SSN in a `WHERE`) is recorded
//! redacted; tokens are never part of an event.

use std::sync::Arc;

use serde_json::{Value, json};
use sluice_store::{AuditEvent, Store};

use crate::authenticate::Principal;
use crate::error::GatewayError;
use crate::pipeline::RequestContext;

/// Writes audit events for one gateway process.
#[derive(Debug)]
pub struct Audit {
    store: Arc<dyn Store>,
    /// This process, in every event.
    instance: String,
}

impl Audit {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            instance: format!(
                "sluice-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
        }
    }

    async fn append(&self, event: AuditEvent) -> Result<(), sluice_store::StoreError> {
        self.store.append_audit(&event).await.map(drop)
    }

    /// The write-ahead event of a job about to be sent to the warehouse.
    pub async fn query_started(
        &self,
        principal: &Principal,
        job: &sluice_store::JobRecord,
        request: &crate::jobs::StoredRequest,
    ) -> Result<(), GatewayError> {
        let query = &request.query;
        // The tables, as analysis reads them (the same analysis admitted
        // the job), so that "who read this table" finds the job.
        let tables: Vec<String> = crate::analyze::analyze(query)
            .reads
            .iter()
            .map(ToString::to_string)
            .collect();
        let event = AuditEvent {
            at_ms: crate::jobs::now_ms(),
            kind: "query.started".into(),
            principal: principal.name.clone(),
            request_id: job.job_id.clone(),
            instance: self.instance.clone(),
            detail: json!({
                "project": job.project_id,
                "job": job.job_id,
                "sql": redacted(&query.sql),
                "sql_hash": request.sql_hash,
                "tables": tables,
                "approval": request.parked.as_ref().map(|p| p.approval.as_str()),
                "parameters": query.parameters.len(),
                "maximum_bytes_billed": query.maximum_bytes_billed,
                "claims": claims(principal),
            }),
        };
        self.append(event).await.map_err(|err| {
            tracing::error!(%err, job = %job.job_id, "audit event not written: the job is not sent");
            GatewayError::access_denied(
                "Access Denied: rule audit.write: Sluice could not write the audit event that must \
                 precede this query, so the query was not sent. Nothing ran; ask the operator to \
                 check Sluice's store, then run it again.",
            )
        })
    }

    /// The event of a finished request, when it decided, read or was
    /// refused, written before the response leaves (written in the
    /// background, it would contend for SQLite's write lock with the
    /// caller's next request, which costs more than the write). The
    /// request's work is done by then (a query's write-ahead event is
    /// [`Self::query_started`]), so a store that cannot take it is logged.
    pub async fn request_done(
        &self,
        id: &str,
        status: u16,
        elapsed: std::time::Duration,
        cx: Option<&RequestContext>,
        refusal: Option<&str>,
    ) {
        let method = cx.map_or("unrouted", |cx| cx.call.name());
        let reads = method == "tabledata.list";
        let query = cx.and_then(|cx| cx.query.as_ref());
        let masked = cx.is_some_and(|cx| {
            !cx.masked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entries
                .is_empty()
        });
        if status < 400 && query.is_none() && !reads && !masked {
            return;
        }
        let mut detail = json!({
            "method": method,
            "status": status,
            "duration_ms": elapsed.as_millis() as u64,
        });
        if let Some(message) = refusal {
            detail["refusal"] = json!(redacted(message));
        }
        if let Some(cx) = cx {
            if let crate::route::ApiCall::JobsGetQueryResults { job, .. }
            | crate::route::ApiCall::JobsGet { job, .. }
            | crate::route::ApiCall::JobsCancel { job, .. } = &cx.call
            {
                detail["job"] = json!(job);
            }
            detail["claims"] = claims(&cx.principal);
            let masked = cx.masked.lock().unwrap_or_else(|e| e.into_inner());
            if !masked.entries.is_empty() {
                detail["masked"] = json!(masked.entries);
            }
        }
        if let Some(query) = query {
            detail["sql"] = json!(redacted(&query.request.sql));
            detail["tables"] = json!(query.tables_read());
            if let Some(decision) = &query.decision {
                detail["decision"] = json!({
                    "verdict": format!("{:?}", decision.verdict),
                    "rule": decision.rule.to_string(),
                    "policy": decision.policy,
                });
            }
            if let Some(estimate) = query.estimate {
                detail["bytes_estimated"] = json!(estimate.bytes_processed);
            }
            if let Some(job) = &query.job {
                detail["job"] = json!(job.job_id);
            }
        }
        let event = AuditEvent {
            at_ms: crate::jobs::now_ms(),
            kind: "request".into(),
            principal: cx.map(|cx| cx.principal.name.clone()).unwrap_or_default(),
            request_id: id.to_string(),
            instance: self.instance.clone(),
            detail,
        };
        if let Err(err) = self.append(event).await {
            tracing::error!(%err, "audit event not written");
        }
    }
}

/// The workload claims a CI run's token carried (repository, run, …),
/// which say which run asked.
fn claims(principal: &Principal) -> Value {
    Value::Object(principal.workload_claims())
}

/// `text` with every detector's finding redacted (never truncated: the
/// exact SQL is what an auditor asks for).
fn redacted(text: &str) -> String {
    sluice_mask::Detectors::all()
        .mask_text(text, &sluice_mask::Strategy::Redact, None)
        .map(std::borrow::Cow::into_owned)
        .unwrap_or_else(|_| "[withheld: could not be scanned for sensitive values]".into())
}
