//! Prometheus metrics at `/metrics` (text exposition format 0.0.4), kept
//! in one registry per gateway with the `prometheus` library.
//!
//! Everything is counted from what the request's context already holds
//! when the request ends ([`Metrics::request`], called by
//! `pipeline::handle_observed`), plus the refusals that happen before
//! there is a context (authentication) and the MCP tool calls. Labels take
//! only bounded values: API method names, HTTP status codes, phase names,
//! verdicts, rule names from the configuration, masking strategies and
//! tool names; never a principal, a table or SQL.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::pipeline::RequestContext;

/// Latency buckets, in seconds: from 1 ms (a poll answered from memory)
/// to a minute (a query held while it runs).
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The gateway's metrics (a clone counts into the same registry).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    phase_seconds: HistogramVec,
    auth_failures: IntCounterVec,
    decisions: IntCounterVec,
    masked: IntCounterVec,
    bytes_estimated: IntCounter,
    tool_calls: IntCounterVec,
    audit_events: IntCounterVec,
    audit_append_seconds: HistogramVec,
    approvals: IntCounterVec,
    approval_wait_seconds: HistogramVec,
    bytes_processed: IntCounter,
    bytes_billed: IntCounter,
    tokens_minted: IntCounterVec,
    tokens_revoked: IntCounterVec,
    upstream_seconds: HistogramVec,
}

/// A phase of the pipeline, as the `phase` label names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Analyze,
    Situate,
    DecideOnFacts,
    PlanMasks,
    Estimate,
    Decide,
    Execute,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Analyze => "analyze",
            Phase::Situate => "situate",
            Phase::DecideOnFacts => "decide_on_facts",
            Phase::PlanMasks => "plan_masks",
            Phase::Estimate => "estimate",
            Phase::Decide => "decide",
            Phase::Execute => "execute",
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let vec = IntCounterVec::new(Opts::new(name, help), labels)
                .expect("a metric's name and labels are valid");
            registry
                .register(Box::new(vec.clone()))
                .expect("each metric is registered once");
            vec
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let opts = HistogramOpts::new(name, help).buckets(BUCKETS.to_vec());
            let vec =
                HistogramVec::new(opts, labels).expect("a metric's name and labels are valid");
            registry
                .register(Box::new(vec.clone()))
                .expect("each metric is registered once");
            vec
        };
        let requests = counter(
            "sluice_requests_total",
            "Requests answered, by BigQuery API method and HTTP status.",
            &["method", "code"],
        );
        let request_seconds = histogram(
            "sluice_request_duration_seconds",
            "Time to answer a request, by BigQuery API method (held polls included).",
            &["method"],
        );
        let phase_seconds = histogram(
            "sluice_phase_duration_seconds",
            "Time spent in each phase of the query pipeline; estimate and execute include the \
             warehouse's dry run and job start, the others are the gateway's own work.",
            &["phase"],
        );
        let auth_failures = counter(
            "sluice_auth_failures_total",
            "Requests refused by authentication, by reason.",
            &["reason"],
        );
        let decisions = counter(
            "sluice_decisions_total",
            "Policy decisions on queries, by outcome and deciding rule.",
            &["outcome", "rule"],
        );
        let masked = counter(
            "sluice_masked_values_total",
            "Values masked in results returned, by strategy and class: why it was masked (a \
             column rule's data class, `sensitive` when it names none, or the content detector \
             that matched: us_ssn, email, credit_card, …).",
            &["strategy", "class"],
        );
        let bytes_estimated = IntCounter::new(
            "sluice_bytes_estimated_total",
            "Bytes the dry runs of admitted or refused queries estimated.",
        )
        .expect("a metric's name is valid");
        registry
            .register(Box::new(bytes_estimated.clone()))
            .expect("each metric is registered once");
        let tool_calls = counter(
            "sluice_mcp_tool_calls_total",
            "MCP tool calls, by tool and outcome (ok or error).",
            &["tool", "outcome"],
        );
        let audit_events = counter(
            "sluice_audit_events_total",
            "Audit events written to the store, by kind (written: false when the store refused \
             one).",
            &["kind", "written"],
        );
        let audit_append_seconds = histogram(
            "sluice_audit_append_duration_seconds",
            "Time to append one audit event to the store (the write-ahead event included).",
            &["kind"],
        );
        let approvals = counter(
            "sluice_approvals_total",
            "Approval requests closed, by outcome (approved, denied, expired, withdrawn).",
            &["outcome"],
        );
        let approval_wait_seconds = histogram(
            "sluice_approval_wait_duration_seconds",
            "How long approval requests waited until closed, by outcome.",
            &["outcome"],
        );
        let bytes_processed = IntCounter::new(
            "sluice_bytes_processed_total",
            "Bytes the finished jobs processed, as the warehouse reported them.",
        )
        .expect("a metric's name is valid");
        registry
            .register(Box::new(bytes_processed.clone()))
            .expect("each metric is registered once");
        let bytes_billed = IntCounter::new(
            "sluice_bytes_billed_total",
            "Bytes the finished jobs are billed for: their bytes processed rounded up to whole \
             MiB, at least 10 MiB a query, as BigQuery bills on-demand queries.",
        )
        .expect("a metric's name is valid");
        registry
            .register(Box::new(bytes_billed.clone()))
            .expect("each metric is registered once");
        let tokens_minted = counter(
            "sluice_upstream_tokens_minted_total",
            "Upstream BigQuery tokens minted, one per job and caller token, by configured \
             credential and outcome (ok or failed).",
            &["credential", "outcome"],
        );
        let tokens_revoked = counter(
            "sluice_upstream_tokens_revoked_total",
            "Upstream tokens revoked once their job was done, by credential and outcome (ok, or \
             failed: the token then expires on its own).",
            &["credential", "outcome"],
        );
        let upstream_seconds = histogram(
            "sluice_upstream_call_duration_seconds",
            "Time the warehouse took to answer each call Sluice made to it, by call (dry_run, \
             start, wait, result_page, read_rows, get_table, …; a wait is held up to its \
             timeout), apart from the gateway's own work.",
            &["call"],
        );
        Self {
            bytes_billed,
            tokens_minted,
            tokens_revoked,
            upstream_seconds,
            bytes_processed,
            audit_events,
            audit_append_seconds,
            approvals,
            approval_wait_seconds,
            registry,
            requests,
            request_seconds,
            phase_seconds,
            auth_failures,
            decisions,
            masked,
            bytes_estimated,
            tool_calls,
        }
    }

    /// Counts one finished request from its context (`None` when it was
    /// refused before it had one).
    pub fn request(&self, status: u16, elapsed: Duration, cx: Option<&RequestContext>) {
        let method = cx.map_or("unrouted", |cx| cx.call.name());
        self.requests
            .with_label_values(&[method, &status.to_string()])
            .inc();
        self.request_seconds
            .with_label_values(&[method])
            .observe(elapsed.as_secs_f64());
        let Some(cx) = cx else {
            return;
        };
        for (phase, took) in cx.phases() {
            self.phase_seconds
                .with_label_values(&[phase.name()])
                .observe(took.as_secs_f64());
        }
        let masked = cx.masked.lock().unwrap_or_else(|e| e.into_inner());
        for entry in &masked.entries {
            self.masked
                .with_label_values(&[entry.strategy.as_str(), entry.class.as_str()])
                .inc_by(entry.values);
        }
        let Some(query) = &cx.query else {
            return;
        };
        if let Some(decision) = &query.decision {
            let outcome = match decision.verdict {
                sluice_policy::Verdict::Allow => "allow",
                sluice_policy::Verdict::NeedsApproval => "needs_approval",
                sluice_policy::Verdict::Deny => "deny",
            };
            self.decisions
                .with_label_values(&[outcome, &decision.rule.to_string()])
                .inc();
        }
        if let Some(estimate) = query.estimate {
            self.bytes_estimated.inc_by(estimate.bytes_processed);
        }
    }

    /// A request refused by authentication; `reason` is `missing` or one
    /// of [`sluice_identity::AuthFailure`]'s words.
    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures.with_label_values(&[reason]).inc();
    }

    /// One audit append, and how long the store took.
    pub fn audit_event(&self, kind: &str, written: bool, took: Duration) {
        self.audit_events
            .with_label_values(&[kind, if written { "true" } else { "false" }])
            .inc();
        self.audit_append_seconds
            .with_label_values(&[kind])
            .observe(took.as_secs_f64());
    }

    /// An upstream token minted with `credential` (or a mint that failed).
    pub fn token_minted(&self, credential: &str, ok: bool) {
        self.tokens_minted
            .with_label_values(&[credential, if ok { "ok" } else { "failed" }])
            .inc();
    }

    /// An upstream token revoked (or a revocation Google refused).
    pub fn token_revoked(&self, credential: &str, ok: bool) {
        self.tokens_revoked
            .with_label_values(&[credential, if ok { "ok" } else { "failed" }])
            .inc();
    }

    /// One call to the warehouse and how long it took.
    pub fn upstream_call(&self, call: &'static str, took: Duration) {
        self.upstream_seconds
            .with_label_values(&[call])
            .observe(took.as_secs_f64());
    }

    /// A finished job's bytes processed.
    pub fn bytes_processed(&self, bytes: u64) {
        self.bytes_processed.inc_by(bytes);
        self.bytes_billed
            .inc_by(crate::facade::resources::bytes_billed(bytes));
    }

    /// An approval request closed as `outcome` after `waited`.
    pub fn approval_closed(&self, outcome: &str, waited: Duration) {
        self.approvals.with_label_values(&[outcome]).inc();
        self.approval_wait_seconds
            .with_label_values(&[outcome])
            .observe(waited.as_secs_f64());
    }

    pub fn tool_call(&self, tool: &str, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.tool_calls.with_label_values(&[tool, outcome]).inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec fails only on a metric the registry would
        // not have taken.
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(%err, "cannot encode the metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The audit sinks' counts in the text format: what the sinks' own
/// counters say at the moment of the scrape (names are checked at
/// configuration to be plain label values).
pub fn sinks_text(stats: &[sluice_sinks::SinkStats]) -> String {
    use std::fmt::Write as _;
    if stats.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    type Family = (
        &'static str,
        &'static str,
        &'static str,
        fn(&sluice_sinks::SinkStats) -> u64,
    );
    let families: [Family; 4] = [
        (
            "sluice_audit_sink_queue_depth",
            "gauge",
            "Audit events waiting in a sink's queue (and in delivery).",
            |s| s.queued + s.in_flight,
        ),
        (
            "sluice_audit_sink_sent_total",
            "counter",
            "Audit events a sink delivered.",
            |s| s.sent,
        ),
        (
            "sluice_audit_sink_failed_total",
            "counter",
            "Audit events a sink could not deliver after its retries.",
            |s| s.failed,
        ),
        (
            "sluice_audit_sink_dropped_total",
            "counter",
            "Audit events dropped because a sink's queue was full (a slow or dead sink): alert \
             on any increase.",
            |s| s.dropped,
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for sink in stats {
            let _ = writeln!(
                out,
                "{name}{{sink=\"{}\",type=\"{}\"}} {}",
                sink.name,
                sink.kind,
                value(sink)
            );
        }
    }
    out
}

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed_with_help_and_type_once_used() {
        let metrics = Metrics::new();
        metrics.request(200, Duration::from_millis(3), None);
        metrics.auth_failure("missing");
        metrics.tool_call("execute_sql", false);
        let text = metrics.render();
        assert!(
            text.contains("sluice_requests_total{code=\"200\",method=\"unrouted\"} 1"),
            "{text}"
        );
        assert!(text.contains("# TYPE sluice_request_duration_seconds histogram"));
        assert!(text.contains("sluice_auth_failures_total{reason=\"missing\"} 1"));
        assert!(
            text.contains("sluice_mcp_tool_calls_total{outcome=\"error\",tool=\"execute_sql\"} 1")
        );
        assert!(text.contains("# HELP sluice_bytes_estimated_total "));
    }
}
