//! Approval rules: when a query waits for a reviewer, and that a deny
//! still wins.

use super::*;

fn rule(name: &str, when: RawWhen, reviewers: &[&str]) -> RawApproval {
    RawApproval {
        name: name.to_owned(),
        when,
        reviewers: RawWho {
            groups: strings(reviewers),
            ..RawWho::default()
        },
        ..RawApproval::default()
    }
}

/// agents read the shop; a scan over 10 MiB needs one reviewer, and any
/// read of `proj.shop.payroll` needs two finance owners.
fn reviewed_set() -> PolicySet {
    let mut agents = policy(
        "agents-read",
        &["agents"],
        &["proj.shop.*"],
        &[],
        &["select"],
    );
    agents.limits.max_bytes_billed = Some("1GiB".into());
    agents.approvals = vec![
        rule(
            "payroll",
            RawWhen {
                tables: strings(&["proj.shop.payroll"]),
                ..RawWhen::default()
            },
            &["finance"],
        ),
        rule(
            "large-scan",
            RawWhen {
                bytes_over: Some("10MiB".into()),
                ..RawWhen::default()
            },
            &["reviewers"],
        ),
    ];
    agents.approvals[0].min_approvals = Some(2);
    agents.approvals[0].timeout = Some("2h".into());
    PolicySet::build(&[agents], &guardrails(&["drop"])).expect("valid")
}

#[test]
fn a_scan_over_the_size_waits_for_a_reviewer_once_estimated() {
    let set = reviewed_set();
    let sql = "SELECT * FROM proj.shop.events";
    let before = decide(&set, &["agents"], sql, None);
    assert!(before.is_allowed(), "{before}");
    assert!(
        before
            .trace
            .iter()
            .any(|s| s.rule == "policies.agents-read.approvals.large-scan" && s.outcome == "skip"),
        "{before}"
    );

    let small = decide(&set, &["agents"], sql, Some(10 << 20));
    assert!(
        small.is_allowed(),
        "exactly the size is not over it:\n{small}"
    );

    let big = decide(&set, &["agents"], sql, Some(14 << 20));
    assert_eq!(big.verdict, Verdict::NeedsApproval, "{big}");
    assert_eq!(big.rule.to_string(), "approvals.large-scan");
    assert_eq!(big.policy, "agents-read");
    let need = big.approval.as_ref().expect("what it waits for");
    assert_eq!(need.reviewers.groups, strings(&["reviewers"]));
    assert_eq!(need.min_approvals, 1);
    assert_eq!(need.timeout, DEFAULT_APPROVAL_TIMEOUT);
    assert!(
        need.why.contains("estimated 14.0 MiB, over 10.0 MiB"),
        "{}",
        need.why
    );
    assert_eq!(
        big.limits.max_bytes_billed,
        Some(1 << 30),
        "the limits reviewers approve"
    );
    assert!(
        big.message.contains(
            "Needs approval by reviewers (rule approvals.large-scan of policy agents-read)"
        ),
        "{}",
        big.message
    );
    assert!(set.needs_estimate(&Who {
        name: "a",
        groups: &strings(&["agents"]),
        issuer: ""
    }));
    assert!(!set.needs_estimate(&Who {
        name: "a",
        groups: &strings(&["etl"]),
        issuer: ""
    }));
}

#[test]
fn the_first_rule_that_applies_decides() {
    let set = reviewed_set();
    let decision = decide(
        &set,
        &["agents"],
        "SELECT * FROM proj.shop.payroll",
        Some(1 << 29),
    );
    assert_eq!(decision.rule.to_string(), "approvals.payroll", "{decision}");
    let need = decision.approval.unwrap();
    assert_eq!(need.min_approvals, 2);
    assert_eq!(need.timeout.as_secs(), 7200);
    assert!(
        need.why
            .contains("proj.shop.payroll matches proj.shop.payroll"),
        "{}",
        need.why
    );
}

#[test]
fn a_deny_beats_a_review() {
    let set = reviewed_set();
    // Over the policy's byte limit: denied, not reviewed.
    let over = decide(
        &set,
        &["agents"],
        "SELECT * FROM proj.shop.events",
        Some(2 << 30),
    );
    assert_denied(&over, "limits.max_bytes_billed");
    // A table the policy does not grant: denied, whatever the rules say.
    let elsewhere = decide(
        &set,
        &["agents"],
        "SELECT * FROM proj.hr.payroll",
        Some(1 << 29),
    );
    assert_denied(&elsewhere, "policies.allow.read");
    // A guardrail: denied.
    let drop = decide(&set, &["agents"], "DROP TABLE proj.shop.payroll", None);
    assert_denied(&drop, "guardrails.deny.drop");
}

#[test]
fn incomplete_analysis_goes_to_review_only_where_a_rule_says_so() {
    let mut agents = policy(
        "agents-read",
        &["agents"],
        &["proj.shop.*"],
        &[],
        &["select", "dynamic_sql"],
    );
    agents.approvals = vec![rule(
        "dynamic",
        RawWhen {
            incomplete_analysis: true,
            ..RawWhen::default()
        },
        &["reviewers"],
    )];
    let plain = policy(
        "plain",
        &["plain"],
        &["proj.shop.*"],
        &[],
        &["select", "dynamic_sql"],
    );
    let set = PolicySet::build(&[agents, plain], &RawGuardrails::default()).expect("valid");
    let sql = "EXECUTE IMMEDIATE 'SELECT 1'";
    let reviewed = decide(&set, &["agents"], sql, None);
    assert_eq!(reviewed.verdict, Verdict::NeedsApproval, "{reviewed}");
    assert!(
        reviewed
            .approval
            .unwrap()
            .why
            .contains("could not be fully analyzed")
    );

    let refused = decide(&set, &["plain"], sql, None);
    assert_denied(&refused, "analysis.incomplete");

    // A rule that also asks for a table the query does not name does not
    // apply: the incomplete query is refused, never allowed.
    let mut narrow = policy(
        "narrow",
        &["narrow"],
        &["proj.shop.*"],
        &[],
        &["select", "dynamic_sql"],
    );
    narrow.approvals = vec![rule(
        "dynamic-payroll",
        RawWhen {
            incomplete_analysis: true,
            tables: strings(&["proj.shop.payroll"]),
            ..RawWhen::default()
        },
        &["reviewers"],
    )];
    let set = PolicySet::build(&[narrow], &RawGuardrails::default()).expect("valid");
    assert_denied(&decide(&set, &["narrow"], sql, None), "analysis.incomplete");
}

#[test]
fn statement_and_dataset_conditions() {
    let mut etl = policy(
        "etl",
        &["etl"],
        &["proj.shop"],
        &["proj.scratch.*"],
        &["select", "dml"],
    );
    etl.approvals = vec![
        rule(
            "writes",
            RawWhen {
                statements: strings(&["dml"]),
                ..RawWhen::default()
            },
            &["owners"],
        ),
        rule(
            "shop",
            RawWhen {
                datasets: strings(&["proj.shop"]),
                ..RawWhen::default()
            },
            &["owners"],
        ),
    ];
    let set = PolicySet::build(&[etl], &RawGuardrails::default()).expect("valid");
    let update = decide(
        &set,
        &["etl"],
        "UPDATE proj.scratch.t SET a = 1 WHERE b = 2",
        None,
    );
    assert_eq!(update.rule.to_string(), "approvals.writes", "{update}");
    let shop = decide(&set, &["etl"], "SELECT * FROM proj.shop.orders", None);
    assert_eq!(shop.rule.to_string(), "approvals.shop", "{shop}");
    let scratch = decide(&set, &["etl"], "SELECT * FROM proj.scratch.t", None);
    assert!(scratch.is_allowed(), "{scratch}");
}

#[test]
fn reviewers_are_matched_by_group_name_and_issuer() {
    let reviewers = Reviewers {
        groups: strings(&["data-owners"]),
        principals: strings(&["alice@*"]),
        issuers: strings(&["https://idp"]),
    };
    let owners = strings(&["data-owners"]);
    let none: Vec<String> = Vec::new();
    assert!(reviewers.admit(&Who {
        name: "bob",
        groups: &owners,
        issuer: "https://idp"
    }));
    assert!(reviewers.admit(&Who {
        name: "alice@example.com",
        groups: &none,
        issuer: "https://idp"
    }));
    assert!(!reviewers.admit(&Who {
        name: "bob",
        groups: &owners,
        issuer: "https://other"
    }));
    assert!(!reviewers.admit(&Who {
        name: "carol",
        groups: &none,
        issuer: "https://idp"
    }));
}

#[test]
fn approval_rules_are_validated() {
    let mut a = policy("a", &["g"], &["proj"], &[], &["select"]);
    a.approvals = vec![
        RawApproval {
            name: "x".into(),
            ..RawApproval::default()
        },
        RawApproval {
            name: "x".into(),
            when: RawWhen {
                bytes_over: Some("lots".into()),
                datasets: strings(&["proj"]),
                statements: strings(&["selec"]),
                ..RawWhen::default()
            },
            reviewers: RawWho {
                groups: strings(&["r"]),
                ..RawWho::default()
            },
            min_approvals: Some(0),
            timeout: Some("3d".into()),
            ..RawApproval::default()
        },
    ];
    let errors = PolicySet::build(&[a], &RawGuardrails::default()).unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    for key in [
        "policies[0].approvals[0].reviewers",
        "policies[0].approvals[1].name",
        "policies[0].approvals[1].when.bytes_over",
        "policies[0].approvals[1].when.datasets[0]",
        "policies[0].approvals[1].when.statements[0]",
        "policies[0].approvals[1].min_approvals",
        "policies[0].approvals[1].timeout",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
}
