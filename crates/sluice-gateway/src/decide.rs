//! The decide phase: the policy's decision on a query, first on the facts
//! alone (so a forbidden query costs no dry run), then with the estimate.
//! Each decision, with its trace, is kept in the [`QueryContext`].
//!
//! A refusal is 403 `accessDenied` (`quotaExceeded` for a spent budget)
//! whose message names the policy and rule; the query is never started.

use sluice_policy::{Decision, Limits, Rule};

use crate::Gateway;
use crate::authenticate::Principal;
use crate::error::GatewayError;
use crate::pipeline::QueryContext;

/// The decision on the facts alone: guardrails, statements, tables and
/// routines, then the project the job would bill.
pub fn on_facts(
    gateway: &Gateway,
    principal: &Principal,
    query: &mut QueryContext,
) -> Result<(), GatewayError> {
    let policy = &gateway.config.policy;
    let who = principal.who();
    let decision =
        query
            .decision
            .insert(policy.decide_in(&who, &query.facts, None, &query.circumstances));
    if let Some(syntax) = &query.facts.syntax_error {
        // A guardrail the token scan recognised still refuses by name;
        // otherwise SQL that does not parse is bad SQL, as BigQuery says.
        if !decision.is_denied() || decision.rule == Rule::AnalysisIncomplete {
            return Err(GatewayError::invalid_query(format!(
                "Syntax error: {syntax} (check analysis.parse). Sluice runs only SQL it can parse, \
                 so the query was not run; correct the SQL and send it again."
            )));
        }
    }
    enforce(decision, principal)?;
    // Where the job runs is who pays for it: a project a policy names.
    let project = &query.request.default_project;
    if !policy.may_run_jobs_in(&who, project) {
        tracing::info!(principal = %principal.verified.name, %project, "denied: project");
        return Err(GatewayError::access_denied(format!(
            "Access Denied: rule policies.projects: no policy for {} lets it run jobs in project {project} \
             (the project a job runs in is billed for it). Send the job to a project your policy lists, \
             or ask the Sluice administrators to add this one to the policy's projects.",
            principal.verified.name
        )));
    }
    Ok(())
}

/// The decision with the estimate (byte limits), when one was made; without
/// one the decision on the facts stands, and the policy's byte limit is
/// the job's `maximumBytesBilled`.
pub fn with_estimate(
    gateway: &Gateway,
    principal: &Principal,
    query: &mut QueryContext,
) -> Result<(), GatewayError> {
    let Some(estimate) = &query.estimate else {
        return Ok(());
    };
    let decision = gateway.config.policy.decide_in(
        &principal.who(),
        &query.facts,
        Some(estimate),
        &query.circumstances,
    );
    enforce(query.decision.insert(decision), principal)
}

/// Turns a decision into a refusal, or lets the request on (an allow, or a
/// request for review that `execute` parks); every decision is logged with
/// the rule that made it.
pub fn enforce(decision: &Decision, principal: &Principal) -> Result<(), GatewayError> {
    if !decision.is_denied() {
        tracing::debug!(principal = %principal.verified.name, policy = %decision.policy, rule = %decision.rule, verdict = %decision.verdict, "admitted");
        return Ok(());
    }
    tracing::info!(principal = %principal.verified.name, policy = %decision.policy, rule = %decision.rule, "denied");
    Err(refusal(decision))
}

/// The error a denying decision answers with: a spent budget is
/// `quotaExceeded`, every other refusal `accessDenied`.
pub fn refusal(decision: &Decision) -> GatewayError {
    match decision.rule {
        Rule::Budget(_) => GatewayError::quota_exceeded(decision.message.clone()),
        _ => GatewayError::access_denied(format!("Access Denied: {}", decision.message)),
    }
}

/// The effective `maximumBytesBilled`: the smaller of the caller's and the
/// policy's.
pub fn bytes_billed_cap(asked: Option<u64>, limits: &Limits) -> Option<u64> {
    match (asked, limits.max_bytes_billed) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
