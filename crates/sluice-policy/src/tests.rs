//! Unit tests of validation and the decision order, with shared helpers.

use std::collections::BTreeSet;

use sluice_sql::{Defaults, Flag, QueryFacts, StatementFacts, StatementKind, TableName, analyze};

use super::*;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn policy(
    name: &str,
    groups: &[&str],
    read: &[&str],
    write: &[&str],
    statements: &[&str],
) -> RawPolicy {
    RawPolicy {
        name: name.to_owned(),
        who: RawWho {
            groups: strings(groups),
            principals: Vec::new(),
            issuers: Vec::new(),
        },
        allow: RawAllow {
            read: strings(read),
            write: strings(write),
            statements: strings(statements),
            routines: Vec::new(),
        },
        ..RawPolicy::default()
    }
}

fn guardrails(deny: &[&str]) -> RawGuardrails {
    RawGuardrails {
        deny: strings(deny),
    }
}

/// agents read shop and public datasets; etl reads shop and writes scratch.
fn demo_set() -> PolicySet {
    let mut agents = policy(
        "agents-read",
        &["agents"],
        &["proj.shop.*", "proj.public_*"],
        &[],
        &["select"],
    );
    agents.limits.max_bytes_billed = Some("50MiB".into());
    agents.limits.max_duration = Some("2h".into());
    let mut etl = policy(
        "etl",
        &["etl"],
        &["proj.shop"],
        &["proj.scratch.*"],
        &["select", "dml", "create_table"],
    );
    etl.limits.max_bytes_billed = Some(RawByteSize::Bytes(1 << 40));
    etl.limits.max_rows = Some(5000);
    etl.limits.max_duration = Some("30m".into());
    PolicySet::build(
        &[agents, etl],
        &guardrails(&["drop", "delete_without_where", "dynamic_sql"]),
    )
    .expect("valid")
}

fn facts(sql: &str) -> QueryFacts {
    analyze(
        sql,
        &Defaults {
            project: "proj".to_owned(),
            dataset: None,
        },
    )
}

fn decide(set: &PolicySet, groups: &[&str], sql: &str, estimate: Option<u64>) -> Decision {
    let groups = strings(groups);
    let who = Who {
        name: "tester",
        groups: &groups,
        issuer: "",
    };
    let estimate = estimate.map(|bytes_processed| Estimate { bytes_processed });
    set.decide(&who, &facts(sql), estimate.as_ref())
}

/// Decide hand-built `facts` for a principal in `groups`, before the dry run.
fn decide_facts(set: &PolicySet, groups: &[&str], facts: &QueryFacts) -> Decision {
    let groups = strings(groups);
    let who = Who {
        name: "tester",
        groups: &groups,
        issuer: "",
    };
    set.decide(&who, facts, None)
}

fn assert_denied(decision: &Decision, rule: &str) {
    assert_eq!(decision.verdict, Verdict::Deny, "{decision}");
    assert_eq!(decision.rule.to_string(), rule, "{decision}");
    assert!(
        decision.trace.iter().any(
            |s| (s.rule == rule || s.rule.ends_with(&format!(".{rule}"))) && s.outcome == "deny"
        ),
        "the trace names the deciding rule:\n{decision}"
    );
}

mod approvals;
mod decisions;
mod grants_budgets;
mod guarded_names;
mod jobs;
mod routines;
mod validation;
