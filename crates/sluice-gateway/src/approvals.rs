//! The await-approval phase: a query whose decision needs a reviewer is
//! recorded as a PENDING job and an approval request in the store; its
//! caller keeps polling with its unchanged client. Reviewers vote through
//! the REST API (`api.rs`, `/sluice/v1/approvals`) or the CLI.
//!
//! - Quorum reached ⇒ the request closes APPROVED (a conditional update:
//!   exactly one voter, on one replica or several, closes it) and the job
//!   starts from its record, with exactly the SQL, parameters and limits
//!   that were approved, as its recorded caller (no caller token needed).
//! - A reviewer denies ⇒ DENIED; the job ends `accessDenied` naming the
//!   reviewer and the reason.
//! - Nobody decides in time ⇒ the sweeper closes it EXPIRED and the job
//!   ends `accessDenied`; any replica may sweep, the conditional update
//!   makes it happen once.
//! - `jobs.cancel` ⇒ WITHDRAWN.
//!
//! An approval is bound to one job: the principal who asked, the hash of
//! the normalized SQL and parameters, the estimate and the limits, all
//! recorded with it; it is used once. When it starts, the job is decided
//! again under the policy of the moment: what that denies does not run. The same query sent again is a new
//! job and needs a new approval. The requester — any token with the same
//! subject — never votes on their own request.

pub mod api;
pub mod notify;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_policy::{ApprovalNeed, Reviewers};
use sluice_store::{ApprovalRecord, ApprovalState, JobRecord, JobState, Store, Vote};

use crate::authenticate::Principal;
use crate::error::GatewayError;
use crate::jobs::{Jobs, NewJob, Parked, StoredRequest, now_ms};
use crate::pipeline::QueryContext;

/// Opens, decides and expires approval requests.
#[derive(Debug, Clone)]
pub struct Approvals {
    pub store: Arc<dyn Store>,
    pub jobs: Jobs,
    /// US dollars per TiB, for the estimates reviewers see.
    pub usd_per_tib: f64,
    /// Says when a request opens and closes.
    pub notifier: notify::Notifier,
    /// The base URL of links in notifications.
    pub link: String,
    /// Whether the reviewer web UI is on: links then open its page of the
    /// request, else the REST resource.
    pub ui: bool,
}

/// What a reviewer's vote says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Deny,
}

impl Approvals {
    /// [await approval]: records the job PENDING with the request decided
    /// and its caller, and opens the approval request it waits for.
    pub async fn park(
        &self,
        principal: &Principal,
        mut new: NewJob,
        query: &QueryContext,
    ) -> Result<JobRecord, GatewayError> {
        let decision = query
            .decision
            .as_ref()
            .ok_or_else(|| GatewayError::internal("parking a query without a decision"))?;
        let need = decision
            .approval
            .clone()
            .ok_or_else(|| GatewayError::internal("parking a query that needs no approval"))?;
        let id = format!("apr_{}", uuid::Uuid::new_v4().simple());
        let created = now_ms();
        let timeout_ms = i64::try_from(need.timeout.as_millis()).unwrap_or(i64::MAX);
        let expire = created.saturating_add(timeout_ms);
        let bytes = query.estimate.map(|e| e.bytes_processed);
        let message = waiting_message(&need, bytes, self.usd_per_tib, &id, expire);
        let caller = principal.record();
        new.parked = Some(Parked {
            approval: id.clone(),
            message: message.clone(),
            caller: caller.clone(),
        });
        let job = self.jobs.record(principal, new).await?;
        let stored = StoredRequest::of(&job)?;
        let ci = ci_claims(&caller.claims);
        let approval = ApprovalRecord {
            id: id.clone(),
            project_id: job.project_id.clone(),
            job_id: job.job_id.clone(),
            principal: caller.verified.name.clone(),
            requester: principal.name.clone(),
            state: ApprovalState::Pending,
            rule: need.rule.clone(),
            reviewers: reviewer_entries(&need.reviewers),
            min_approvals: need.min_approvals,
            justification_required: need.justification_required,
            details: json!({
                "version": 1,
                "sql": stored.query.sql,
                "sqlHash": stored.sql_hash,
                "parameters": stored.query.parameters,
                "estimateBytes": bytes,
                "limits": {
                    "maxBytesBilled": stored.query.maximum_bytes_billed,
                    "maxRows": stored.max_rows,
                    "jobTimeoutMs": stored.query.job_timeout_ms,
                },
                "policy": need.policy,
                "why": need.why,
                "issuer": caller.verified.issuer,
                "subject": caller.verified.subject,
                "run": caller.verified.run,
                "session": caller.verified.session,
                "auditSession": crate::audit::session_of(principal, created),
                "ci": ci,
            }),
            created_ms: created,
            expire_ms: expire,
            closed_ms: None,
            closed_by: None,
            reason: None,
            votes: Vec::new(),
        };
        if let Err(err) = self.store.insert_approval(&approval).await {
            // No request, no waiting job.
            self.jobs.forget(&job).await?;
            return Err(err.into());
        }
        tracing::info!(job = %job.job_id, approval = %id, rule = %need.rule, "{message}");
        self.announce("approval.opened", &approval).await;
        Ok(job)
    }

    /// An approval `who` may see: a reviewer its rule admits, or the
    /// principal who asked. Anyone else is told it does not exist.
    pub async fn load(&self, who: &Principal, id: &str) -> Result<ApprovalRecord, GatewayError> {
        match self.store.get_approval(id).await? {
            Some(approval) if may_see(who, &approval) => Ok(approval),
            _ => Err(GatewayError::not_found(format!(
                "Not found: approval request {}",
                shown(id)
            ))),
        }
    }

    /// The approvals `who` may see, newest first.
    pub async fn list(
        &self,
        who: &Principal,
        state: Option<ApprovalState>,
    ) -> Result<Vec<ApprovalRecord>, GatewayError> {
        let all = self.store.list_approvals(state, 1000).await?;
        Ok(all.into_iter().filter(|a| may_see(who, a)).collect())
    }

    /// A reviewer's vote. Refused: a closed request (409), the requester's
    /// own (403, rule `approvals.self`), a principal the rule does not name
    /// (403, rule `approvals.reviewers`), a second vote (409), an approval
    /// without the reason the rule requires (400). A deny closes the
    /// request; the approval that reaches the quorum closes it and starts
    /// the job.
    pub async fn vote(
        &self,
        reviewer: &Principal,
        id: &str,
        verdict: Verdict,
        reason: &str,
    ) -> Result<ApprovalRecord, GatewayError> {
        let approval = self.load(reviewer, id).await?;
        if approval.state != ApprovalState::Pending {
            return Err(GatewayError::duplicate(format!(
                "Approval request {id} is already {}{}: it can no longer be voted on.",
                approval.state.as_str(),
                approval
                    .closed_by
                    .as_deref()
                    .map(|by| format!(" (by {by})"))
                    .unwrap_or_default()
            )));
        }
        if is_requester(reviewer, &approval) {
            return Err(GatewayError::access_denied(format!(
                "Access Denied: rule approvals.self: {} asked for this query and cannot vote on it; \
                 another reviewer ({}) must decide.",
                reviewer.verified.name,
                approval.reviewers.join(", ")
            )));
        }
        if !reviewers_of(&approval).admit(&reviewer.who()) {
            return Err(GatewayError::access_denied(format!(
                "Access Denied: rule approvals.reviewers: {} is not a reviewer of rule approvals.{} \
                 (reviewers: {}). Ask one of them to decide.",
                reviewer.verified.name,
                approval.rule,
                approval.reviewers.join(", ")
            )));
        }
        let reason = reason.trim();
        if reason.chars().count() > 2000 {
            return Err(GatewayError::invalid(
                "The reason is longer than 2000 characters.",
            ));
        }
        if reason.is_empty() && (verdict == Verdict::Deny || approval.justification_required) {
            return Err(GatewayError::invalid(format!(
                "A reason is required to {} this request: send {{\"reason\": \"…\"}}.",
                if verdict == Verdict::Deny {
                    "deny"
                } else {
                    "approve"
                }
            )));
        }
        let vote = Vote {
            voter: reviewer.verified.name.clone(),
            voter_id: reviewer.name.clone(),
            approve: verdict == Verdict::Approve,
            reason: reason.to_owned(),
            at_ms: now_ms(),
        };
        if !self.store.add_vote(id, &vote).await? {
            let now = self.store.get_approval(id).await?;
            let closed = now
                .as_ref()
                .is_some_and(|a| a.state != ApprovalState::Pending);
            return Err(GatewayError::duplicate(if closed {
                format!("Approval request {id} was closed before this vote arrived.")
            } else {
                format!(
                    "{} has already voted on approval request {id}.",
                    reviewer.verified.name
                )
            }));
        }
        tracing::info!(approval = %id, reviewer = %reviewer.verified.name, verdict = ?verdict, "vote");
        self.jobs
            .audit
            .approval("approval.voted", &approval, Some(&vote))
            .await;
        let mut approval = self
            .store
            .get_approval(id)
            .await?
            .ok_or_else(|| GatewayError::internal("an approval vanished"))?;
        match verdict {
            Verdict::Deny => {
                let message = format!(
                    "Access Denied: rule approvals.{}: {} denied this query: {reason}. Change the \
                     query as the reviewer asks, or talk to them; a new query needs a new approval.",
                    approval.rule, reviewer.verified.name
                );
                self.close(
                    &approval,
                    ApprovalState::Denied,
                    &vote.voter,
                    reason,
                    Some(message),
                )
                .await?;
            }
            Verdict::Approve => {
                let approvals = approval.votes.iter().filter(|v| v.approve).count();
                if approvals >= approval.min_approvals as usize
                    && self
                        .close(
                            &approval,
                            ApprovalState::Approved,
                            &vote.voter,
                            reason,
                            None,
                        )
                        .await?
                {
                    self.start(&approval).await?;
                }
            }
        }
        if let Some(reread) = self.store.get_approval(id).await? {
            approval = reread;
        }
        Ok(approval)
    }

    /// `jobs.cancel` of a job that waits: its request is withdrawn.
    pub async fn withdraw(&self, job: &JobRecord, by: &Principal) -> Result<(), GatewayError> {
        if let Some(approval) = self
            .store
            .approval_for_job(&job.project_id, &job.job_id)
            .await?
            && approval.state == ApprovalState::Pending
        {
            self.store
                .close_approval(
                    &approval.id,
                    ApprovalState::Withdrawn,
                    &by.verified.name,
                    "the job was cancelled",
                    now_ms(),
                )
                .await?;
        }
        Ok(())
    }

    /// The requester withdraws its access request (a query is withdrawn
    /// by cancelling its job).
    pub async fn cancel_access(
        &self,
        by: &Principal,
        approval: &ApprovalRecord,
    ) -> Result<(), GatewayError> {
        if !is_requester(by, approval) {
            return Err(GatewayError::access_denied(
                "Access Denied: only the principal who asked may cancel an access request; reviewers deny it.",
            ));
        }
        if !self
            .close(
                approval,
                ApprovalState::Withdrawn,
                &by.verified.name,
                "cancelled by the requester",
                None,
            )
            .await?
        {
            return Err(GatewayError::duplicate(format!(
                "Access request {} is already closed.",
                approval.id
            )));
        }
        Ok(())
    }

    /// Closes `approval` from PENDING to `state`; true when this call did
    /// (exactly one caller does). A refusal ends the job with `refusal`.
    async fn close(
        &self,
        approval: &ApprovalRecord,
        state: ApprovalState,
        by: &str,
        reason: &str,
        refusal: Option<String>,
    ) -> Result<bool, GatewayError> {
        let closed = self
            .store
            .close_approval(&approval.id, state, by, reason, now_ms())
            .await?;
        if !closed {
            return Ok(false);
        }
        tracing::info!(approval = %approval.id, state = state.as_str(), by, "approval request closed");
        if let Some(closed) = self.store.get_approval(&approval.id).await? {
            self.announce("approval.closed", &closed).await;
        }
        if let Some(message) = refusal
            && let Some(mut job) = self
                .store
                .get_job(&approval.project_id, &approval.job_id)
                .await?
        {
            self.jobs
                .refuse(&mut job, &GatewayError::access_denied(message))
                .await?;
        }
        Ok(true)
    }

    /// Starts the job of an APPROVED request, from its record alone, as
    /// its recorded caller. A job no longer PENDING (cancelled, or started
    /// by another replica) is left alone.
    async fn start(&self, approval: &ApprovalRecord) -> Result<(), GatewayError> {
        if crate::access::is_access(approval) {
            return crate::access::grant(self, approval).await;
        }
        let Some(mut job) = self
            .store
            .get_job(&approval.project_id, &approval.job_id)
            .await?
        else {
            return Ok(());
        };
        if job.state != JobState::Pending {
            return Ok(());
        }
        let stored = StoredRequest::of(&job)?;
        let bound = approval.details.get("sqlHash").and_then(Value::as_str);
        let parked = stored.parked.as_ref().filter(|p| p.approval == approval.id);
        let (Some(parked), true) = (parked, bound == Some(stored.sql_hash.as_str())) else {
            // The record and the approval disagree: nothing runs.
            let refusal = GatewayError::access_denied(format!(
                "Access Denied: rule approvals.binding: job {} is not the query approval request {} approved; it was not run.",
                job.job_id, approval.id
            ));
            self.jobs.refuse(&mut job, &refusal).await?;
            return Ok(());
        };
        let caller = Principal::recorded(&parked.caller);
        // The policy may have changed during the wait: what it now denies
        // does not run, approved or not.
        let facts = crate::analyze::analyze(&stored.query);
        let estimate = approval
            .details
            .get("estimateBytes")
            .and_then(Value::as_u64)
            .map(|bytes_processed| sluice_policy::Estimate { bytes_processed });
        let (at, _) =
            crate::access::circumstances(self.store.as_ref(), &self.jobs.policy, &caller).await?;
        let now = self
            .jobs
            .policy
            .decide_in(&caller.who(), &facts, estimate.as_ref(), &at);
        if now.is_denied() {
            let refusal = GatewayError::access_denied(format!(
                "Access Denied: the query was approved, but the policy now refuses it: {}",
                now.message
            ));
            self.jobs.refuse(&mut job, &refusal).await?;
            return Ok(());
        }
        tracing::info!(job = %job.job_id, approval = %approval.id, "approved: starting the job");
        self.jobs.run_approved(&caller, &mut job).await
    }

    /// One sweep: requests past their timeout are closed EXPIRED and their
    /// jobs refused; APPROVED requests whose job never started (the
    /// replica that closed them stopped first) are started.
    pub async fn sweep(&self) -> Result<(), GatewayError> {
        let now = now_ms();
        for approval in self.store.expired_approvals(now, 100).await? {
            let waited = (approval.expire_ms - approval.created_ms).max(0) / 1000;
            let waited = if waited < 120 {
                format!("{waited} seconds")
            } else {
                format!("{} minutes", waited / 60)
            };
            let message = format!(
                "Access Denied: rule approvals.{}: no reviewer ({}) approved this query within {waited} (request {}); \
                 it was not run. Ask a reviewer to look at it and run the query again, or run a smaller one.",
                approval.rule,
                approval.reviewers.join(", "),
                approval.id
            );
            self.close(
                &approval,
                ApprovalState::Expired,
                "timeout",
                "not approved in time",
                Some(message),
            )
            .await?;
        }
        for approval in self
            .store
            .list_approvals(Some(ApprovalState::Approved), 50)
            .await?
        {
            if approval.closed_ms.is_some_and(|t| now - t > 2_000) {
                self.start(&approval).await?;
            }
        }
        Ok(())
    }

    /// Grants that ran out: `grant.expired`, written once across replicas
    /// (the store hands each to one sweeper); a claim whose event could
    /// not be written is given back, for the next sweep.
    async fn sweep_grants(&self) -> Result<(), GatewayError> {
        for grant in self.store.claim_expired_grants(now_ms(), 100).await? {
            // The request only names the session: its absence costs that.
            let request = self.store.get_approval(&grant.id).await.ok().flatten();
            if let Err(err) = self
                .jobs
                .audit
                .grant_expired(&grant, request.as_ref())
                .await
            {
                tracing::error!(%err, grant = %grant.id, "grant.expired not written; retried at the next sweep");
                self.store.unclaim_expired_grant(&grant.id).await?;
            }
        }
        Ok(())
    }

    /// Tells the notification targets about `approval` (never waits).
    /// Notifies the configured targets of an opened or closed request, and
    /// records it in the audit log.
    pub(crate) async fn announce(&self, kind: &'static str, approval: &ApprovalRecord) {
        self.jobs.audit.approval(kind, approval, None).await;
        let page = if self.ui {
            "/ui/approvals"
        } else {
            api::PREFIX
        };
        let link = format!("{}{page}/{}", self.link.trim_end_matches('/'), approval.id);
        let sql: String = approval
            .details
            .get("sql")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        let why = approval
            .details
            .get("why")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let summary = match approval.state {
            ApprovalState::Pending => format!(
                "{} asks to run a query that needs approval (rule {}: {why}): {sql} — {link}",
                approval.principal, approval.rule
            ),
            state => format!(
                "Approval request {} of {} is {}{}{} — {link}",
                approval.id,
                approval.principal,
                state.as_str(),
                approval
                    .closed_by
                    .as_deref()
                    .map(|b| format!(" by {b}"))
                    .unwrap_or_default(),
                approval
                    .reason
                    .as_deref()
                    .filter(|r| !r.is_empty())
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default(),
            ),
        };
        self.notifier.send(notify::Event {
            kind,
            approval: api::resource(approval, self.usd_per_tib),
            summary,
        });
    }

    /// Sweeps every `interval` in the background, for as long as the
    /// process runs. Safe on several replicas at once.
    pub fn spawn_sweeper(self: Arc<Self>, interval: Duration) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(err) = self.sweep().await {
                    tracing::warn!(%err, "approval sweep failed; retrying at the next tick");
                }
                if let Err(err) = self.sweep_grants().await {
                    tracing::warn!(%err, "grant sweep failed; retrying at the next tick");
                }
            }
        });
    }
}

/// The claims a reviewer sees to tell which CI run asked.
const CI_CLAIMS: &[&str] = &[
    "repository",
    "workflow",
    "ref",
    "run_id",
    "run_attempt",
    "actor",
    "environment",
    "project_path",
    "pipeline_id",
    "job_id",
];

/// The CI claims of a caller, for reviewers to tell which run asked.
pub(crate) fn ci_claims(claims: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    claims
        .iter()
        .filter(|(k, _)| CI_CLAIMS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `45 seconds`, `90 minutes`, `8 hours`.
pub(crate) fn minutes_text(seconds: u64) -> String {
    let (n, unit) = match seconds {
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// "waiting for approval by reviewers: 14.2 MiB estimated (≈ $0.0001),
/// rule large-scan, request apr_…, expires 10:42 UTC".
fn waiting_message(
    need: &ApprovalNeed,
    bytes: Option<u64>,
    usd_per_tib: f64,
    id: &str,
    expire_ms: i64,
) -> String {
    let estimate = bytes.map_or_else(
        || need.why.clone(),
        |b| {
            format!(
                "{} estimated (≈ ${:.4})",
                sluice_policy::human_bytes(b),
                usd(b, usd_per_tib)
            )
        },
    );
    let expires = chrono::DateTime::from_timestamp_millis(expire_ms)
        .map(|t| t.format("%H:%M UTC").to_string())
        .unwrap_or_default();
    format!(
        "waiting for approval by {}: {estimate}, rule {}, request {id}, expires {expires}",
        need.reviewers, need.rule
    )
}

/// The dollar cost of `bytes` at `usd_per_tib`.
pub fn usd(bytes: u64, usd_per_tib: f64) -> f64 {
    bytes as f64 / (1u64 << 40) as f64 * usd_per_tib
}

/// The reviewers as stored with the request: `group:NAME`,
/// `principal:GLOB`, `issuer:URL`.
pub(crate) fn reviewer_entries(reviewers: &Reviewers) -> Vec<String> {
    let groups = reviewers.groups.iter().map(|g| format!("group:{g}"));
    let principals = reviewers
        .principals
        .iter()
        .map(|p| format!("principal:{p}"));
    let issuers = reviewers.issuers.iter().map(|i| format!("issuer:{i}"));
    groups.chain(principals).chain(issuers).collect()
}

/// The reviewers recorded with a request (the rule as it was when the
/// request opened: a later change of configuration does not move it).
fn reviewers_of(approval: &ApprovalRecord) -> Reviewers {
    let mut reviewers = Reviewers::default();
    for entry in &approval.reviewers {
        match entry.split_once(':') {
            Some(("group", g)) => reviewers.groups.push(g.to_owned()),
            Some(("principal", p)) => reviewers.principals.push(p.to_owned()),
            Some(("issuer", i)) => reviewers.issuers.push(i.to_owned()),
            _ => {}
        }
    }
    reviewers
}

/// Whether `who` asked for `approval`: the same issuer and subject, or
/// the same subject from another issuer.
fn is_requester(who: &Principal, approval: &ApprovalRecord) -> bool {
    who.name == approval.requester
        || approval.details.get("subject").and_then(Value::as_str)
            == Some(who.verified.subject.as_str())
}

fn may_see(who: &Principal, approval: &ApprovalRecord) -> bool {
    who.name == approval.requester || reviewers_of(approval).admit(&who.who())
}

/// An id as it may be quoted back: at most 64 plain characters.
pub(crate) fn shown(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect()
}
