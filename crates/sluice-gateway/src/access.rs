//! Just-in-time grants and budgets, the gateway's half. The policy decides
//! from [`Circumstances`]; this module gathers them before a decision (the
//! principal's grants in force, what its budgets have spent, the time),
//! opens access requests, and turns an approved one into a grant. What a
//! finished job billed is added to its budgets by `jobs.rs` as it settles
//! the job (`Store::finish_job`, in the same transaction).
//!
//! An access request is an approval request (`acc_…`) that holds no job:
//! reviewers see it and vote on it exactly as on a query, through the same
//! API, CLI and notifications. Approved, it becomes a grant in the store
//! for the requester (`issuer#subject`), from the approval until the
//! duration asked for, capped by the grant rule's `max_duration`. A grant
//! ends on time, or when revoked by its holder or a reviewer of its rule,
//! or when the configuration drops or narrows its rule.

pub mod api;
#[cfg(test)]
mod fuzz;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sluice_policy::{ActiveGrant, BudgetKey, Circumstances, PolicySet, Spent};
use sluice_store::{ApprovalRecord, ApprovalState, GrantRecord, Store};

use crate::approvals::Approvals;
use crate::authenticate::Principal;
use crate::error::GatewayError;
use crate::jobs::now_ms;

/// One budget a job counts toward: the budget, the key it is counted
/// under (the principal, or a CI run's claim values) and the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    pub budget: String,
    pub key: String,
    pub period: String,
}

/// The most grants of one principal a decision looks at.
const MAX_GRANTS: usize = 100;

/// What decisions for `principal` depend on besides its SQL, read now:
/// its grants in force (when a matching policy has grant rules) and what
/// each of its budgets has spent this period; with the budgets the job
/// will count toward.
pub async fn circumstances(
    store: &dyn Store,
    policy: &PolicySet,
    principal: &Principal,
) -> Result<(Circumstances, Vec<Counted>), GatewayError> {
    let now = now_ms();
    let who = principal.who();
    let mut at = Circumstances::at(now);
    if policy.has_grant_rules(&who) {
        at.grants = store
            .list_grants(Some(&principal.name), Some(now), MAX_GRANTS)
            .await?
            .into_iter()
            .map(|g| ActiveGrant {
                id: g.id,
                rule: g.rule,
                datasets: g.datasets,
                tables: g.tables,
                expire_ms: g.expire_ms,
            })
            .collect();
    }
    let budgets = policy.budgets_for(&who);
    let mut counted = Vec::with_capacity(budgets.len());
    if !budgets.is_empty() {
        let claims = principal.workload_claims();
        for budget in budgets {
            let entry = Counted {
                key: budget_key(principal, &claims, &budget),
                period: period(&budget, now),
                budget: budget.name,
            };
            let usage = store
                .usage(&entry.budget, &entry.key, &entry.period)
                .await?;
            at.spent.push(Spent {
                budget: entry.budget.clone(),
                bytes: usage.bytes,
                rows: usage.rows,
            });
            counted.push(entry);
        }
    }
    Ok((at, counted))
}

/// `issuer#subject`, or for a budget `per` claims the claims' values
/// (`repository=acme/etl,run_id=42`). A token without one of the claims
/// is counted per principal instead: it is never left uncounted.
fn budget_key(
    principal: &Principal,
    claims: &serde_json::Map<String, Value>,
    budget: &BudgetKey,
) -> String {
    if budget.per.is_empty() {
        return principal.name.clone();
    }
    let mut parts = Vec::with_capacity(budget.per.len());
    for claim in &budget.per {
        let value = match claims.get(claim) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return principal.name.clone(),
        };
        parts.push(format!("{claim}={value}"));
    }
    parts.join(",")
}

/// The UTC day (`2026-12-03`) of a daily budget, `all` for one that never
/// resets.
fn period(budget: &BudgetKey, now_ms: i64) -> String {
    if !budget.daily {
        return "all".to_owned();
    }
    chrono::DateTime::from_timestamp_millis(now_ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "all".to_owned())
}

/// What an access request asks for.
#[derive(Debug, Clone)]
pub struct AccessAsk {
    /// `project.dataset` and `project.dataset.table` names.
    pub names: Vec<String>,
    pub duration: Duration,
    pub justification: String,
}

/// Whether an approval request is an access request (it holds no job).
pub fn is_access(approval: &ApprovalRecord) -> bool {
    approval.details.get("kind").and_then(Value::as_str) == Some("access")
}

/// Opens an access request of `principal`: the grant rule that covers
/// every name, a duration within its `max_duration`, a justification.
pub async fn open(
    approvals: &Approvals,
    principal: &Principal,
    ask: AccessAsk,
) -> Result<ApprovalRecord, GatewayError> {
    let need = approvals
        .jobs
        .policy
        .grant_rule(&principal.who(), &ask.names)
        .map_err(|why| GatewayError::access_denied(format!("Access Denied: {why}.")))?;
    if ask.duration > need.max_duration {
        return Err(GatewayError::invalid(format!(
            "Grant rule grants.{} allows at most {}s; ask for a shorter time.",
            need.rule,
            need.max_duration.as_secs()
        )));
    }
    let (datasets, tables): (Vec<String>, Vec<String>) = ask
        .names
        .iter()
        .cloned()
        .partition(|name| name.split('.').count() == 2);
    let created = now_ms();
    let timeout_ms = i64::try_from(need.timeout.as_millis()).unwrap_or(i64::MAX);
    let id = format!("acc_{}", uuid::Uuid::new_v4().simple());
    let caller = principal.record();
    let approval = ApprovalRecord {
        id: id.clone(),
        project_id: String::new(),
        job_id: id.clone(),
        principal: caller.verified.name.clone(),
        requester: principal.name.clone(),
        state: ApprovalState::Pending,
        rule: need.rule.clone(),
        reviewers: crate::approvals::reviewer_entries(&need.reviewers),
        min_approvals: need.min_approvals,
        justification_required: false,
        details: json!({
            "version": 1,
            "kind": "access",
            "datasets": datasets,
            "tables": tables,
            "durationSeconds": ask.duration.as_secs(),
            "justification": ask.justification,
            "policy": need.policy,
            "why": format!(
                "access to {} for {}: {}",
                ask.names.join(", "),
                crate::approvals::minutes_text(ask.duration.as_secs()),
                ask.justification
            ),
            "issuer": caller.verified.issuer,
            "subject": caller.verified.subject,
            "run": caller.verified.run,
            "session": caller.verified.session,
            "auditSession": crate::audit::session_of(principal, created),
            "ci": crate::approvals::ci_claims(&caller.claims),
        }),
        created_ms: created,
        expire_ms: created.saturating_add(timeout_ms),
        closed_ms: None,
        closed_by: None,
        reason: None,
        votes: Vec::new(),
    };
    approvals.store.insert_approval(&approval).await?;
    tracing::info!(approval = %id, rule = %need.rule, principal = %caller.verified.name, "access request opened");
    approvals.announce("approval.opened", &approval).await;
    Ok(approval)
}

/// Turns an APPROVED access request into its grant (once: a retry by the
/// sweep or another replica changes nothing). It starts when the request
/// closed and lasts the duration asked for.
pub async fn grant(approvals: &Approvals, approval: &ApprovalRecord) -> Result<(), GatewayError> {
    if approvals.store.get_grant(&approval.id).await?.is_some() {
        return Ok(());
    }
    let Some(closed) = approvals.store.get_approval(&approval.id).await? else {
        return Ok(());
    };
    let names = |key: &str| -> Vec<String> {
        closed
            .details
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let seconds = closed
        .details
        .get("durationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let start = closed.closed_ms.unwrap_or_else(now_ms);
    let record = GrantRecord {
        id: closed.id.clone(),
        holder: closed.requester.clone(),
        principal: closed.principal.clone(),
        rule: closed.rule.clone(),
        datasets: names("datasets"),
        tables: names("tables"),
        reason: closed
            .details
            .get("justification")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        approved_by: closed.closed_by.clone().unwrap_or_default(),
        start_ms: start,
        expire_ms: start.saturating_add(seconds.saturating_mul(1000)),
        revoked_ms: None,
        revoked_by: None,
    };
    if approvals.store.insert_grant(&record).await? {
        tracing::info!(grant = %record.id, holder = %record.principal, rule = %record.rule, expire_ms = record.expire_ms, "grant in force");
        approvals
            .jobs
            .audit
            .grant("grant.opened", &record, &closed, None)
            .await;
    }
    Ok(())
}

/// Grants `who` may see: its own, and those under grant rules it reviews.
pub async fn visible_grants(
    approvals: &Approvals,
    who: &Principal,
    active_only: bool,
) -> Result<Vec<GrantRecord>, GatewayError> {
    let now = now_ms();
    let all = approvals
        .store
        .list_grants(None, active_only.then_some(now), 1000)
        .await?;
    Ok(all
        .into_iter()
        .filter(|g| may_manage(approvals, who, g))
        .collect())
}

/// The holder of a grant, or a reviewer of its rule as configured now.
fn may_manage(approvals: &Approvals, who: &Principal, grant: &GrantRecord) -> bool {
    grant.holder == who.name
        || approvals
            .jobs
            .policy
            .grant_reviewers(&grant.rule)
            .is_some_and(|r| r.admit(&who.who()))
}

/// Revokes a grant in force; its holder or a reviewer of its rule may.
pub async fn revoke(
    approvals: &Approvals,
    who: &Principal,
    id: &str,
) -> Result<GrantRecord, GatewayError> {
    let not_found =
        || GatewayError::not_found(format!("Not found: grant {}", crate::approvals::shown(id)));
    let grant = approvals.store.get_grant(id).await?.ok_or_else(not_found)?;
    if !may_manage(approvals, who, &grant) {
        return Err(not_found());
    }
    if !approvals
        .store
        .revoke_grant(id, &who.verified.name, now_ms())
        .await?
    {
        return Err(GatewayError::duplicate(format!(
            "Grant {id} is no longer in force (expired or already revoked)."
        )));
    }
    tracing::info!(grant = %id, by = %who.verified.name, "grant revoked");
    let grant = approvals.store.get_grant(id).await?.ok_or_else(not_found)?;
    if let Some(request) = approvals.store.get_approval(id).await? {
        approvals
            .jobs
            .audit
            .grant("grant.revoked", &grant, &request, Some(who))
            .await;
    }
    Ok(grant)
}
