//! The audit log: events appended to the store's hash chain
//! (`sluice_store::audit`), each naming the principal, the request and
//! this gateway process.
//!
//! - `query.started` is written **before** a job is sent to the warehouse,
//!   in the transaction that makes the job RUNNING ([`Audit::start_job`],
//!   from `Jobs::run_as`), with the `token.minted` of the job's token: if
//!   the store cannot take them, the job is not sent and ends with
//!   `audit.write` (403, not retried).
//! - `query.finished` is written in the transaction that makes the job
//!   DONE ([`Audit::finish_job`]).
//! - `request` records each request that decided or read something, or
//!   was refused: the method and status, the decision (outcome, rule,
//!   policy), the SQL, the tables, the estimate, the job, the values
//!   masked per column and strategy, and the refusal's message
//!   ([`Audit::request_done`]). Successful polls and listings are not
//!   events, unless they returned masked values.
//!
//! - The rows a request returned are recorded as the agent received them
//!   (masked), apart from the chain, with their SHA-256 in the request's
//!   event, in the same transaction ([`Audit::request_done`]).
//! - Every event names its session ([`session_of`]): the principal's CI
//!   run, else its token's session, else the hour.
//! - The chain's head is signed from time to time ([`Audit::checkpoint`])
//!   with a key kept in the encrypted secret store, so a truncated tail
//!   is detected (`sluice audit verify`).
//! - Approvals, grants, tokens minted for the warehouse and first sights
//!   of a caller's token are events too ([`Audit::event`]).
//!
//! SQL and messages pass through the content detectors first, so a
//! sensitive literal an agent typed (an SSN in a `WHERE`) is recorded
//! redacted; tokens are never part of an event.

pub mod api;
pub mod replay;

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sluice_store::audit::{CheckpointKey, sha256_hex};
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
    config: AuditConfig,
    /// Signs checkpoints; none without a master key to keep it with.
    key: std::sync::OnceLock<CheckpointKey>,
    /// The last event this process signed.
    signed: AtomicI64,
    /// Copies of every event for SIEMs.
    sinks: sluice_sinks::Sinks,
    metrics: crate::metrics::Metrics,
    /// Hashes of the tokens this process has seen (`auth.success` is
    /// written once per token), bounded by [`SEEN_TOKENS`].
    seen_tokens: Mutex<HashSet<[u8; 32]>>,
    /// `auth.failure` events written this minute, and those left out.
    failures: Mutex<FailureWindow>,
    /// Events being written off a request's path ([`Audit::detached`]),
    /// waited for at shutdown.
    detached: Arc<AtomicUsize>,
}

/// Held by a task that writes an audit event off a request's path, so
/// that a shutdown waits for it ([`Audit::drain`]).
#[derive(Debug)]
pub struct Detached(Arc<AtomicUsize>);

impl Drop for Detached {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Bounds the `auth.failure` events a flood of bad tokens can write: at
/// most [`FAILURES_PER_MINUTE`] a minute; the first event of the next
/// minute counts the ones left out (the metric counts them all).
#[derive(Debug, Default)]
struct FailureWindow {
    minute: i64,
    written: u32,
    suppressed: u64,
}

/// `auth.failure` events written per minute at most.
const FAILURES_PER_MINUTE: u32 = 60;

/// Tokens remembered before the set starts over.
const SEEN_TOKENS: usize = 10_000;

pub use crate::config::audit::AuditConfig;

impl Audit {
    /// The log over `store`, with its sinks started (on the current Tokio
    /// runtime, which there must be when any is configured).
    pub fn new(
        store: Arc<dyn Store>,
        config: AuditConfig,
        metrics: crate::metrics::Metrics,
    ) -> Result<Self, String> {
        let sinks = sluice_sinks::Sinks::start(config.sinks.clone()).map_err(|e| e.to_string())?;
        Ok(Self {
            sinks,
            metrics,
            store,
            instance: format!(
                "sluice-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
            config,
            key: std::sync::OnceLock::new(),
            signed: AtomicI64::new(0),
            seen_tokens: Mutex::default(),
            failures: Mutex::default(),
            detached: Arc::default(),
        })
    }

    /// The sinks' counts, for `/metrics`.
    pub fn sink_stats(&self) -> Vec<sluice_sinks::SinkStats> {
        self.sinks.stats()
    }

    /// Waits, at most `within`, for the sinks to deliver what they hold.
    pub async fn flush(&self, within: std::time::Duration) {
        self.sinks.flush(within).await;
    }

    /// A copy of a stored record to every sink.
    fn forward(&self, value: &impl serde::Serialize) {
        if self.sinks.is_empty() {
            return;
        }
        match serde_json::to_string(value) {
            Ok(line) => self.sinks.send(Arc::from(line)),
            Err(err) => tracing::warn!(%err, "an audit event could not be encoded for the sinks"),
        }
    }

    /// Signs checkpoints with `key` from now on (set once, at start).
    pub fn set_key(&self, key: Option<CheckpointKey>) {
        if let Some(key) = key {
            let _ = self.key.set(key);
        }
    }

    pub fn config(&self) -> &AuditConfig {
        &self.config
    }

    /// Appends `event` (with the `page` of rows it recorded); `durable`:
    /// synced before it returns (the write-ahead event, and everything
    /// but a request's outcome), else committed and synced with the next
    /// durable write ([`Store::append_audit_recorded`]).
    async fn append_with(
        &self,
        event: AuditEvent,
        page: Option<&str>,
        durable: bool,
    ) -> Result<(), sluice_store::StoreError> {
        if !self.config.enabled {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let record = match durable {
            true => self.store.append_audit(&event).await,
            false => self.store.append_audit_recorded(&event, page).await,
        };
        self.metrics
            .audit_event(&event.kind, record.is_ok(), started.elapsed());
        self.forward(&record?);
        Ok(())
    }

    /// An event of `kind` by `principal` (none for the gateway itself),
    /// for approvals, grants, tokens and the like: logged, not fatal,
    /// when the store cannot take it (what it records has happened).
    pub async fn event(
        &self,
        kind: &str,
        principal: Option<&Principal>,
        request_id: &str,
        mut detail: Value,
    ) {
        let (name, session) = match principal {
            Some(principal) => {
                detail["claims"] = claims(principal);
                (
                    principal.name.as_str(),
                    session_of(principal, crate::jobs::now_ms()),
                )
            }
            None => ("", String::new()),
        };
        self.system_event(kind, name, &session, request_id, detail)
            .await;
    }

    /// An approval request opened, voted on or closed, in the session of
    /// the query (or access) it is about.
    pub async fn approval(
        &self,
        kind: &str,
        approval: &sluice_store::ApprovalRecord,
        vote: Option<&sluice_store::Vote>,
    ) {
        let details = &approval.details;
        let mut detail = json!({
            "approval": approval.id,
            "about": details.get("kind").and_then(Value::as_str).unwrap_or("query"),
            "rule": approval.rule,
            "state": approval.state.as_str(),
            "requester": approval.principal,
            "reviewers": approval.reviewers,
            "min_approvals": approval.min_approvals,
            "expire_ms": approval.expire_ms,
        });
        if !approval.job_id.is_empty() && !approval.project_id.is_empty() {
            detail["job"] = json!(approval.job_id);
        }
        if let Some(by) = &approval.closed_by {
            detail["closed_by"] = json!(by);
            detail["reason"] = json!(redacted(approval.reason.as_deref().unwrap_or("")));
        }
        if let Some(vote) = vote {
            detail["voter"] = json!(vote.voter);
            detail["approve"] = json!(vote.approve);
            detail["reason"] = json!(redacted(&vote.reason));
        }
        let principal = match vote {
            Some(vote) => vote.voter_id.clone(),
            None => approval.requester.clone(),
        };
        if kind == "approval.closed" {
            let waited = approval.closed_ms.unwrap_or(approval.created_ms) - approval.created_ms;
            self.metrics.approval_closed(
                &approval.state.as_str().to_ascii_lowercase(),
                std::time::Duration::from_millis(u64::try_from(waited).unwrap_or(0)),
            );
        }
        detail["claims"] = ci_of(Some(approval));
        self.system_event(
            kind,
            &principal,
            session_in(Some(approval)),
            &approval.id,
            detail,
        )
        .await;
    }

    /// A grant opened (from its approved request) or revoked (`by`).
    pub async fn grant(
        &self,
        kind: &str,
        grant: &sluice_store::GrantRecord,
        request: &sluice_store::ApprovalRecord,
        by: Option<&Principal>,
    ) {
        let mut detail = grant_detail(grant, Some(request));
        detail["approved_by"] = json!(grant.approved_by);
        detail["revoked_by"] = json!(by.map(|p| p.verified.name.as_str()));
        let principal = by.map_or_else(|| grant.holder.clone(), |p| p.name.clone());
        let session = session_in(Some(request));
        self.system_event(kind, &principal, session, &grant.id, detail)
            .await;
    }

    /// `grant.expired`: a grant ran out unrevoked (`request` is the access
    /// request it came from, for its session).
    pub async fn grant_expired(
        &self,
        grant: &sluice_store::GrantRecord,
        request: Option<&sluice_store::ApprovalRecord>,
    ) -> Result<(), sluice_store::StoreError> {
        let detail = grant_detail(grant, request);
        self.record(
            "grant.expired",
            &grant.holder,
            session_in(request),
            &grant.id,
            detail,
            true,
        )
        .await
    }

    /// An event written for a principal named in a record (no token at
    /// hand), in a session already known.
    async fn system_event(
        &self,
        kind: &str,
        principal: &str,
        session: &str,
        request_id: &str,
        detail: Value,
    ) {
        self.system_event_with(kind, principal, session, request_id, detail, true)
            .await;
    }

    /// [`Audit::system_event`]; `durable: false` for an event after the
    /// fact that the next durable write may sync (a job's end, a token's
    /// revocation), so that a query costs one sync, its write-ahead event.
    async fn system_event_with(
        &self,
        kind: &str,
        principal: &str,
        session: &str,
        request_id: &str,
        detail: Value,
        durable: bool,
    ) {
        let recorded = self
            .record(kind, principal, session, request_id, detail, durable)
            .await;
        if let Err(err) = recorded {
            tracing::error!(%err, kind, "audit event not written");
        }
    }

    /// Appends an event of `kind` now, from this process.
    async fn record(
        &self,
        kind: &str,
        principal: &str,
        session: &str,
        request_id: &str,
        detail: Value,
        durable: bool,
    ) -> Result<(), sluice_store::StoreError> {
        let event = self.new_event(kind, principal, session, request_id, detail);
        self.append_with(event, None, durable).await
    }

    /// An event of `kind` now, from this process, not yet written.
    fn new_event(
        &self,
        kind: &str,
        principal: &str,
        session: &str,
        request_id: &str,
        detail: Value,
    ) -> AuditEvent {
        AuditEvent {
            at_ms: crate::jobs::now_ms(),
            kind: kind.into(),
            principal: principal.into(),
            request_id: request_id.into(),
            instance: self.instance.clone(),
            session: session.into(),
            detail,
        }
    }

    /// Appends an event after the fact (synced with the next durable
    /// write): logged, not fatal, when the store cannot take it.
    pub async fn append_after(&self, event: AuditEvent) {
        let kind = event.kind.clone();
        if let Err(err) = self.append_with(event, None, false).await {
            tracing::error!(%err, kind, "audit event not written");
        }
    }

    /// `auth.success`, the first time this process sees a token: who it
    /// names, its groups and CI claims, never the token.
    pub async fn authenticated(&self, principal: &Principal, request_id: &str) {
        let token = principal.token.secret();
        if token.is_empty() {
            return;
        }
        let hash = crate::credential::caller_token_hash(token);
        {
            let mut seen = self.seen_tokens.lock().unwrap_or_else(|e| e.into_inner());
            if seen.len() >= SEEN_TOKENS {
                seen.clear();
            }
            if !seen.insert(hash) {
                return;
            }
        }
        let verified = &principal.verified;
        let detail = json!({
            "issuer": verified.issuer,
            "subject": verified.subject,
            "name": verified.name,
            "groups": verified.groups,
            "run": verified.run,
        });
        self.event("auth.success", Some(principal), request_id, detail)
            .await;
    }

    /// `auth.failure`: a request whose caller could not be authenticated,
    /// with the reason (`missing`, `expired`, `signature`, …) and the
    /// refusal's message (which never holds the token), at most
    /// [`FAILURES_PER_MINUTE`] a minute.
    pub async fn auth_failed(
        &self,
        reason: &str,
        message: &str,
        user_agent: &str,
        request_id: &str,
    ) {
        let at_ms = crate::jobs::now_ms();
        let suppressed = {
            let mut window = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            let minute = at_ms / 60_000;
            let mut carried = 0;
            if window.minute != minute {
                carried = std::mem::take(&mut window.suppressed);
                *window = FailureWindow {
                    minute,
                    ..FailureWindow::default()
                };
            }
            if window.written >= FAILURES_PER_MINUTE {
                window.suppressed += 1;
                return;
            }
            window.written += 1;
            carried
        };
        let mut detail = json!({
            "reason": reason,
            "message": redacted(message),
            "userAgent": user_agent.chars().take(200).collect::<String>(),
        });
        if suppressed > 0 {
            detail["suppressedBefore"] = json!(suppressed);
        }
        self.event("auth.failure", None, request_id, detail).await;
    }

    /// `gateway.started`: this process serves, with which configuration
    /// (its file and SHA-256: a changed configuration shows as a new
    /// hash at the next start; there is no reload).
    pub async fn started(&self, config: &crate::Config) {
        let detail = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "config": config.source.file,
            "config_sha256": config.source.sha256,
            "base_url": config.base_url,
            "warehouse": if config.upstream.is_some() { "bigquery" } else { "embedded" },
            "policies": config.policy.policy_names(),
        });
        self.system_event("gateway.started", "", "", "", detail)
            .await;
    }

    /// `gateway.stopped`: this process stopped serving (a clean shutdown;
    /// a crash writes none).
    pub async fn stopped(&self) {
        self.system_event("gateway.stopped", "", "", "", json!({}))
            .await;
    }

    /// A guard for a task about to write an event off a request's path:
    /// [`Audit::drain`] waits while any is held.
    pub fn detached(&self) -> Detached {
        self.detached.fetch_add(1, Ordering::SeqCst);
        Detached(self.detached.clone())
    }

    /// Waits, at most `within`, for the events being written off the
    /// requests' paths (before the last checkpoint is signed).
    pub async fn drain(&self, within: std::time::Duration) {
        let deadline = std::time::Instant::now() + within;
        while self.detached.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The metrics the log counts into (shared with the gateway).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// `token.minted`: an upstream token minted for `principal`'s `job`
    /// with `credential`, its fingerprint and expiry (never the token).
    /// Not yet written: a job writes it with its `query.started`
    /// ([`Self::start_job`]), a single call after the fact
    /// ([`Self::append_after`]).
    pub fn token_minted(
        &self,
        principal: &Principal,
        job: &str,
        credential: &str,
        token: &sluice_credentials::AccessToken,
    ) -> AuditEvent {
        let detail = json!({
            "job": job,
            "credential": credential,
            "fingerprint": fingerprint(token),
            "expires_ms": expires_ms(token),
            "claims": claims(principal),
        });
        let session = session_of(principal, crate::jobs::now_ms());
        self.new_event("token.minted", &principal.name, &session, job, detail)
    }

    /// `token.revoked`: an upstream token revoked once its job was done
    /// (`error` when Google refused; it then expires on its own).
    pub async fn token_revoked(
        &self,
        credential: &str,
        principal: &str,
        session: &str,
        job: &str,
        token: &sluice_credentials::AccessToken,
        error: Option<String>,
    ) {
        self.metrics.token_revoked(credential, error.is_none());
        let detail = json!({
            "job": job,
            "credential": credential,
            "fingerprint": fingerprint(token),
            "revoked": error.is_none(),
            "error": error,
        });
        self.system_event_with("token.revoked", principal, session, job, detail, false)
            .await;
    }

    /// Signs the chain's head when it moved since the last checkpoint of
    /// this process; `None` when there was nothing new or no key.
    pub async fn checkpoint(&self) -> Result<Option<sluice_store::Checkpoint>, String> {
        let Some(key) = self.key.get() else {
            return Ok(None);
        };
        let Some((seq, hash)) = self.store.audit_head().await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        if seq <= self.signed.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let checkpoint = key.sign(seq, &hash, crate::jobs::now_ms());
        self.store
            .append_checkpoint(&checkpoint)
            .await
            .map_err(|e| e.to_string())?;
        self.signed.fetch_max(seq, Ordering::Relaxed);
        // Kept by the sinks too: a tail cut off together with the store's
        // checkpoints still shows against these.
        self.forward(&json!({
            "kind": "audit.checkpoint",
            "at_ms": checkpoint.at_ms,
            "instance": self.instance,
            "checkpoint": checkpoint,
        }));
        Ok(Some(checkpoint))
    }

    /// Signs the head every `checkpoint_interval`, and enforces
    /// retention every hour, until the process ends.
    pub fn spawn_upkeep(self: Arc<Self>) {
        if !self.config.enabled {
            return;
        }
        let audit = self.clone();
        let every = self.config.checkpoint_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(err) = audit.checkpoint().await {
                    tracing::error!(%err, "audit checkpoint not written");
                }
            }
        });
        if let Some(retention) = self.config.retention {
            let audit = self;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
                loop {
                    tick.tick().await;
                    let before = crate::jobs::now_ms()
                        - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
                    match audit.store.prune_audit(before).await {
                        Ok(pruned) if pruned.events + pruned.pages > 0 => tracing::info!(
                            events = pruned.events,
                            pages = pruned.pages,
                            "audit retention: pruned"
                        ),
                        Ok(_) => {}
                        Err(err) => tracing::error!(%err, "audit retention failed"),
                    }
                }
            });
        }
    }

    /// Starts a recorded job (PENDING → RUNNING) with its write-ahead
    /// event, `query.started`, and the `token.minted` of its token
    /// (`minted`, when one was minted for it), in one durable transaction
    /// ([`sluice_store::Store::start_job`]); the job is sent to the
    /// warehouse only after. False when another caller started or ended
    /// the job first; `audit.write` when the store cannot take them.
    pub async fn start_job(
        &self,
        principal: &Principal,
        job: &sluice_store::JobRecord,
        started_ms: i64,
        request: &crate::jobs::StoredRequest,
        access: &sluice_warehouse::Access,
        minted: Option<AuditEvent>,
    ) -> Result<bool, GatewayError> {
        let query = &request.query;
        // The tables, as analysis reads them (the same analysis admitted
        // the job), so that "who read this table" finds the job.
        let tables: Vec<String> = crate::analyze::analyze(query)
            .reads
            .iter()
            .map(ToString::to_string)
            .collect();
        let at_ms = crate::jobs::now_ms();
        let event = AuditEvent {
            at_ms,
            kind: "query.started".into(),
            principal: principal.name.clone(),
            request_id: job.job_id.clone(),
            instance: self.instance.clone(),
            session: session_of(principal, at_ms),
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
                // The upstream token the job runs with: when it expires and
                // a fingerprint to match it by, never the token.
                "credential": access.token().map(|token| json!({
                    "fingerprint": fingerprint(token),
                    "expires_ms": expires_ms(token),
                })),
            }),
        };
        let write_ahead: Vec<AuditEvent> = match self.config.enabled {
            true => minted.iter().cloned().chain([event]).collect(),
            false => Vec::new(),
        };
        let started = std::time::Instant::now();
        let outcome = self
            .store
            .start_job(&job.project_id, &job.job_id, started_ms, &write_ahead)
            .await;
        let elapsed = started.elapsed();
        for event in &write_ahead {
            self.metrics
                .audit_event(&event.kind, outcome.is_ok(), elapsed);
        }
        let won = match outcome {
            Ok(sluice_store::JobTransition::Won { events }) => {
                for record in &events {
                    self.forward(record);
                }
                return Ok(true);
            }
            Ok(sluice_store::JobTransition::Lost) => Ok(false),
            Err(err) => {
                tracing::error!(%err, job = %job.job_id, "audit event not written: the job is not sent");
                Err(GatewayError::access_denied(
                    "Access Denied: rule audit.write: Sluice could not write the audit event that must \
                     precede this query, so the query was not sent. Nothing ran; ask the operator to \
                     check Sluice's store, then run it again.",
                ))
            }
        };
        // The job did not start, but its token was minted: that is
        // recorded all the same.
        if let Some(minted) = minted {
            self.append_after(minted).await;
        }
        won
    }

    /// Ends a job (DONE) in the store with its `query.finished` event —
    /// its outcome, the bytes processed, the rows, how long it ran and
    /// the warehouse's name for it — and `usage` added to its budgets, in
    /// one transaction ([`sluice_store::Store::finish_job`]); without the
    /// event when the log cannot take it. True for the one caller that
    /// ended it.
    pub async fn finish_job(
        &self,
        job: &sluice_store::JobRecord,
        usage: &[sluice_store::UsageAdd],
    ) -> Result<bool, sluice_store::StoreError> {
        let stats = job.statistics.as_ref();
        let number = |key: &str| {
            stats
                .and_then(|s| s.get(key))
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
        };
        let bytes = number("total_bytes_processed");
        let rows = number("total_rows");
        let (session, claims) = crate::jobs::StoredRequest::of(job)
            .map(|r| (r.audit_session, r.audit_claims))
            .unwrap_or_default();
        let duration_ms = match (job.started_ms, job.ended_ms) {
            (Some(start), Some(end)) => Some(end - start),
            _ => None,
        };
        let detail = json!({
            "project": job.project_id,
            "job": job.job_id,
            "upstream_job": job.warehouse_key,
            "outcome": if job.error.is_some() { "failed" } else { "done" },
            "error": job.error.as_ref().map(|e| json!({
                "reason": e.get("reason"),
                "message": e.get("message").and_then(Value::as_str).map(redacted),
            })),
            "bytes_processed": bytes,
            "bytes_billed": bytes.map(crate::facade::resources::bytes_billed),
            "rows": rows,
            "duration_ms": duration_ms,
            "claims": claims,
        });
        let event = self.new_event(
            "query.finished",
            &job.principal,
            &session,
            &job.job_id,
            detail,
        );
        let events = match self.config.enabled {
            true => std::slice::from_ref(&event),
            false => &[],
        };
        let started = std::time::Instant::now();
        let mut outcome = self.store.finish_job(job, usage, events).await;
        if !events.is_empty() {
            self.metrics
                .audit_event(&event.kind, outcome.is_ok(), started.elapsed());
        }
        if let Err(err) = &outcome
            && !events.is_empty()
        {
            // The job has ended whatever the log can take: its end is
            // recorded without the event (its write-ahead event was
            // `query.started`).
            tracing::error!(%err, job = %job.job_id, "audit event not written: the job's end is recorded without it");
            outcome = self.store.finish_job(job, usage, &[]).await;
        }
        match outcome? {
            sluice_store::JobTransition::Won { events } => {
                if let Some(bytes) = bytes {
                    self.metrics.bytes_processed(bytes);
                }
                for record in &events {
                    self.forward(record);
                }
                Ok(true)
            }
            sluice_store::JobTransition::Lost => Ok(false),
        }
    }

    /// The event of a finished request, when it decided, read or was
    /// refused, written before the response leaves (written in the
    /// background, it would contend for SQLite's write lock with the
    /// caller's next request, which costs more than the write). The
    /// request's work is done by then (a query's write-ahead event is
    /// [`Self::start_job`]), so a store that cannot take it is logged.
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
        let paged =
            cx.is_some_and(|cx| cx.page.lock().unwrap_or_else(|e| e.into_inner()).is_some());
        if status < 400 && query.is_none() && !reads && !masked && !paged {
            return;
        }
        if status == 401 && cx.is_none() {
            // Written as `auth.failure` (bounded per minute) instead.
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
                    "limits": {
                        "max_bytes_billed": decision.limits.max_bytes_billed,
                        "max_rows": decision.limits.max_rows,
                    },
                    // Every check made, in order: why this rule decided.
                    "trace": decision.trace.iter().map(|step| json!({
                        "policy": step.policy,
                        "rule": step.rule,
                        "outcome": step.outcome,
                        "detail": redacted(&step.detail),
                    })).collect::<Vec<_>>(),
                });
            }
            if let Some(estimate) = query.estimate {
                detail["bytes_estimated"] = json!(estimate.bytes_processed);
            }
            if let Some(job) = &query.job {
                detail["job"] = json!(job.job_id);
            }
        }
        let at_ms = crate::jobs::now_ms();
        // The rows as the agent received them, recorded with the event.
        let page = cx
            .and_then(|cx| cx.page.lock().unwrap_or_else(|e| e.into_inner()).take())
            .filter(|_| self.config.record_pages);
        if let Some(body) = &page {
            detail["page"] = json!({
                "sha256": sha256_hex(body),
                "bytes": body.len(),
                "recorded": body.len() <= self.config.max_recorded_page_bytes,
            });
        }
        let event = AuditEvent {
            at_ms,
            kind: "request".into(),
            principal: cx.map(|cx| cx.principal.name.clone()).unwrap_or_default(),
            request_id: id.to_string(),
            instance: self.instance.clone(),
            session: cx
                .map(|cx| session_of(&cx.principal, at_ms))
                .unwrap_or_default(),
            detail,
        };
        let recorded = page
            .as_ref()
            .filter(|body| body.len() <= self.config.max_recorded_page_bytes)
            .and_then(|body| std::str::from_utf8(body).ok());
        // The request has happened: committed before the answer leaves
        // (a crash of the process loses none), synced with the next
        // durable write, such as the next query's write-ahead event.
        let written = self.append_with(event, recorded, false).await;
        if let Err(err) = written {
            tracing::error!(%err, "audit event not written");
        }
    }
}

/// The session an event of `principal` at `at_ms` belongs to: its CI run
/// (with the attempt), else its token's session (`sid`, else `jti`),
/// else the hour; as `run-…`, `token-…` or `hour-…` and 16 hex digits
/// of a hash that includes the principal, so two principals never share
/// one.
pub fn session_of(principal: &Principal, at_ms: i64) -> String {
    let verified = &principal.verified;
    let (basis, value) = if let Some(run) = &verified.run {
        let claims = principal.workload_claims();
        let attempt = claims
            .get("run_attempt")
            .map(|a| a.to_string())
            .unwrap_or_default();
        ("run", format!("{run}/{attempt}"))
    } else if let Some(session) = &verified.session {
        ("token", session.clone())
    } else {
        ("hour", (at_ms / 3_600_000).to_string())
    };
    let hash = sha256_hex(format!("{}\n{basis}\n{value}", principal.name).as_bytes());
    format!("{basis}-{}", &hash[..16])
}

/// The workload claims a CI run's token carried (repository, run, …),
/// which say which run asked.
/// The audit session recorded with an approval or access request.
fn session_in(request: Option<&sluice_store::ApprovalRecord>) -> &str {
    request
        .and_then(|r| r.details.get("auditSession"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The CI-run claims recorded with an approval or access request.
fn ci_of(request: Option<&sluice_store::ApprovalRecord>) -> Value {
    request
        .and_then(|r| r.details.get("ci"))
        .cloned()
        .unwrap_or_else(|| json!({}))
}

/// What a grant event says of its grant.
fn grant_detail(
    grant: &sluice_store::GrantRecord,
    request: Option<&sluice_store::ApprovalRecord>,
) -> Value {
    json!({
        "grant": grant.id,
        "rule": grant.rule,
        "holder": grant.principal,
        "datasets": grant.datasets,
        "tables": grant.tables,
        "start_ms": grant.start_ms,
        "expire_ms": grant.expire_ms,
        "claims": ci_of(request),
    })
}

fn claims(principal: &Principal) -> Value {
    Value::Object(principal.workload_claims())
}

/// An administrator's action from the command line (`sluice secrets …`),
/// by the local user who ran it, for [`Store::append_audit`] **before**
/// the action: if the log cannot take it, the action is not taken.
pub fn admin_event(action: &str, detail: Value) -> AuditEvent {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let mut detail = detail;
    detail["action"] = json!(action);
    AuditEvent {
        at_ms: crate::jobs::now_ms(),
        kind: "admin.action".into(),
        principal: format!("local:{user}"),
        request_id: String::new(),
        instance: format!("cli-{}", std::process::id()),
        session: String::new(),
        detail,
    }
}

/// An upstream token's fingerprint: the start of its SHA-256, enough to
/// match it with Google's logs, never the token.
fn fingerprint(token: &sluice_credentials::AccessToken) -> String {
    sha256_hex(token.secret().as_bytes())[..16].to_owned()
}

fn expires_ms(token: &sluice_credentials::AccessToken) -> u64 {
    token
        .expires_at()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The most of one text (SQL, a message) an event keeps: an admitted
/// query is far shorter (analysis limits it), and a hostile 10 MiB body
/// refused before analysis must not become a 10 MiB event.
const MAX_TEXT: usize = 256 * 1024;

/// `text` with every detector's finding redacted; past [`MAX_TEXT`], its
/// beginning with its length and SHA-256 (otherwise never truncated: the
/// exact SQL is what an auditor asks for).
fn redacted(text: &str) -> String {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        return format!(
            "{}… [{} bytes in all, SHA-256 {}]",
            scanned(&text[..end]),
            text.len(),
            sha256_hex(text.as_bytes())
        );
    }
    scanned(text)
}

fn scanned(text: &str) -> String {
    sluice_mask::Detectors::all()
        .mask_text(text, &sluice_mask::Strategy::Redact, None)
        .map(std::borrow::Cow::into_owned)
        .unwrap_or_else(|_| "[withheld: could not be scanned for sensitive values]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(subject: &str, run: Option<&str>, session: Option<&str>) -> Principal {
        Principal::new(
            sluice_identity::Principal {
                name: subject.into(),
                issuer: "https://issuer.example".into(),
                subject: subject.into(),
                groups: vec![],
                run: run.map(str::to_owned),
                session: session.map(str::to_owned),
            },
            "",
        )
    }

    #[test]
    fn a_session_is_the_ci_run_else_the_token_else_the_hour() {
        let hour = 3_600_000;
        let run = session_of(&principal("a", Some("42"), Some("jti-1")), 5);
        assert!(run.starts_with("run-") && run.len() == 20, "{run}");
        // The same run later, from another token: the same session.
        assert_eq!(
            run,
            session_of(&principal("a", Some("42"), Some("jti-2")), 9 * hour)
        );
        // Another principal's run of the same number is another session.
        assert_ne!(run, session_of(&principal("b", Some("42"), None), 5));
        let token = session_of(&principal("a", None, Some("jti-1")), 5);
        assert!(token.starts_with("token-"), "{token}");
        let first = session_of(&principal("a", None, None), hour + 1);
        assert!(first.starts_with("hour-"), "{first}");
        assert_eq!(first, session_of(&principal("a", None, None), 2 * hour - 1));
        assert_ne!(first, session_of(&principal("a", None, None), 2 * hour));
    }

    #[test]
    fn recorded_text_is_redacted_and_bounded() {
        let sql = "SELECT * FROM t WHERE ssn = '123-45-6789'";
        let kept = redacted(sql);
        assert!(!kept.contains("123-45-6789"), "{kept}");
        assert!(kept.starts_with("SELECT * FROM t WHERE ssn = "), "{kept}");
        let huge = format!("SELECT '{}'", "é".repeat(MAX_TEXT));
        let kept = redacted(&huge);
        assert!(kept.len() < MAX_TEXT + 200, "{}", kept.len());
        assert!(kept.contains(&format!("{} bytes in all", huge.len())));
        assert!(kept.contains(&sha256_hex(huge.as_bytes())));
    }
}
