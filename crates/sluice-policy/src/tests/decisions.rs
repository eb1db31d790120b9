//! The decision order, matching, limits, traces and visibility.

use super::*;

// ---- matching -----------------------------------------------------------

#[test]
fn principals_match_by_glob() {
    let mut raw = policy("bots", &[], &["proj"], &[], &["select"]);
    raw.who.principals = strings(&["repo:acme/*", "svc-exact"]);
    let set = PolicySet::build(&[raw], &RawGuardrails::default()).unwrap();
    let allowed = |name: &str| {
        set.decide(
            &Who {
                name,
                groups: &[],
                issuer: "",
            },
            &facts("SELECT 1"),
            None,
        )
        .is_allowed()
    };
    assert!(allowed("repo:acme/analytics:ref:main"));
    assert!(allowed("svc-exact"));
    assert!(!allowed("svc-exact2"));
    assert!(!allowed("repo:ACME/analytics"));
}

// ---- decision order -----------------------------------------------------

#[test]
fn guardrail_beats_allow() {
    let admin = policy(
        "admin",
        &["admins"],
        &["proj"],
        &["proj"],
        &["ddl", "dml", "select"],
    );
    let set = PolicySet::build(&[admin], &guardrails(&["drop"])).unwrap();
    let decision = decide(&set, &["admins"], "DROP TABLE proj.shop.customers", None);
    assert_denied(&decision, "guardrails.deny.drop");
    assert_eq!(decision.policy, "guardrails");
    assert!(
        decision
            .message
            .contains("statement 1: DROP TABLE proj.shop.customers"),
        "{}",
        decision.message
    );
    // The same statement without the guardrail is allowed by the policy.
    let set = PolicySet::build(
        &[policy("admin", &["admins"], &["proj"], &["proj"], &["ddl"])],
        &RawGuardrails::default(),
    )
    .unwrap();
    assert!(decide(&set, &["admins"], "DROP TABLE proj.shop.customers", None).is_allowed());
}

#[test]
fn guardrails_apply_even_to_principals_no_policy_matches() {
    let decision = decide(&demo_set(), &["strangers"], "DROP TABLE proj.shop.x", None);
    assert_denied(&decision, "guardrails.deny.drop");
}

#[test]
fn guardrail_flags_and_aliases() {
    let decision = decide(&demo_set(), &["etl"], "DELETE FROM proj.scratch.t", None);
    assert_denied(&decision, "guardrails.deny.delete_without_where");
    assert!(
        decision.message.contains("no WHERE"),
        "{}",
        decision.message
    );
    assert!(
        decide(
            &demo_set(),
            &["etl"],
            "DELETE FROM proj.scratch.t WHERE id = 1",
            None
        )
        .is_allowed()
    );

    let set = PolicySet::build(
        &[policy(
            "admin",
            &["admins"],
            &["proj"],
            &["proj"],
            &["ddl", "dml", "select"],
        )],
        &guardrails(&["ddl"]),
    )
    .unwrap();
    let decision = decide(
        &set,
        &["admins"],
        "SELECT 1; TRUNCATE TABLE proj.shop.t",
        None,
    );
    assert_denied(&decision, "guardrails.deny.ddl");
    assert!(
        decision.message.contains("statement 2: TRUNCATE TABLE"),
        "{}",
        decision.message
    );
    assert!(
        decision.message.contains("covers `truncate`"),
        "{}",
        decision.message
    );
}

#[test]
fn a_policy_deny_list_applies_only_to_its_principals() {
    let mut agents = policy(
        "agents-read",
        &["agents"],
        &["proj.shop.*"],
        &[],
        &["select"],
    );
    agents.deny = strings(&["wildcard_table"]);
    let others = policy(
        "analysts",
        &["analysts"],
        &["proj.shop.*"],
        &[],
        &["select"],
    );
    let set = PolicySet::build(&[agents, others], &RawGuardrails::default()).unwrap();
    let sql = "SELECT * FROM proj.shop.`events_*`";
    let decision = decide(&set, &["agents", "analysts"], sql, None);
    assert_denied(&decision, "guardrails.deny.wildcard_table");
    assert_eq!(decision.policy, "agents-read");
    assert!(decide(&set, &["analysts"], sql, None).is_allowed());
}

#[test]
fn no_matching_policy_is_default_deny() {
    let decision = decide(&demo_set(), &["strangers", "visitors"], "SELECT 1", None);
    assert_denied(&decision, "default-deny");
    assert_eq!(decision.policy, "default");
    assert!(
        decision
            .message
            .contains("principal tester (groups: strangers, visitors)")
    );
    assert!(
        decision
            .message
            .contains("Ask an administrator to add a policy for one of your groups.")
    );
}

#[test]
fn incomplete_facts_never_allow() {
    // Even a policy that allows everything cannot allow incomplete facts.
    let all = policy("all", &["g"], &["*"], &["*"], statement_names());
    let set = PolicySet::build(&[all], &RawGuardrails::default()).unwrap();
    for sql in [
        "SELEC 1",
        "SELECT * FROM orders",
        "EXECUTE IMMEDIATE 'SELECT 1'",
        "SELECT * FROM EXTERNAL_QUERY('c', 'SELECT 1')",
    ] {
        let decision = decide(&set, &["g"], sql, None);
        assert_denied(&decision, "analysis.incomplete");
        assert_eq!(decision.policy, "analysis");
        assert!(
            decision.message.contains("could not fully analyze"),
            "{}",
            decision.message
        );
    }
    // Hand-built facts: complete-looking reads, one incomplete reason.
    let mut facts = QueryFacts::default();
    facts.statements.push(StatementFacts {
        kind: StatementKind::Query,
        object: None,
        temporary: false,
    });
    facts.incomplete.push("something unknown".to_owned());
    let decision = decide_facts(&set, &["g"], &facts);
    assert_denied(&decision, "analysis.incomplete");
    assert!(decision.message.contains("something unknown"));
}

#[test]
fn statements_must_be_allowed() {
    let decision = decide(
        &demo_set(),
        &["agents"],
        "INSERT INTO proj.shop.orders (id) VALUES (1)",
        None,
    );
    assert_denied(&decision, "policies.allow.statements");
    assert!(
        decision.message.contains("`insert`") && decision.message.contains("allowed: select"),
        "{}",
        decision.message
    );
    let nothing = policy("nothing", &["g"], &["proj"], &[], &[]);
    let set = PolicySet::build(&[nothing], &RawGuardrails::default()).unwrap();
    let decision = decide(&set, &["g"], "SELECT 1", None);
    assert_denied(&decision, "policies.allow.statements");
    assert!(decision.message.contains("allowed: none"));
}

#[test]
fn statements_are_the_union_of_matching_policies() {
    let set = demo_set();
    let sql = "INSERT INTO proj.scratch.t SELECT * FROM proj.shop.orders";
    assert!(decide(&set, &["agents", "etl"], sql, None).is_allowed());
    assert!(!decide(&set, &["agents"], sql, None).is_allowed());
}

#[test]
fn reads_and_writes() {
    let set = demo_set();
    let decision = decide(&set, &["agents"], "SELECT * FROM proj.shop.orders", None);
    assert!(decision.is_allowed(), "{decision}");
    assert!(
        decision
            .trace
            .iter()
            .any(|s| s.rule == "policies.agents-read.allow.read" && s.outcome == "allow")
    );

    let decision = decide(&set, &["agents"], "SELECT * FROM proj.secret.keys", None);
    assert_denied(&decision, "policies.allow.read");
    assert!(
        decision.message.contains(
            "proj.secret.keys is not readable by policies agents-read: not in allow.read"
        ),
        "{}",
        decision.message
    );
    assert!(
        decision
            .message
            .contains("Ask a data owner to add it to a policy's allow.read")
    );

    // etl may read the shop but write only scratch; a DML target is a write.
    let decision = decide(
        &set,
        &["etl"],
        "UPDATE proj.shop.orders SET x = 1 WHERE id = 2",
        None,
    );
    assert_denied(&decision, "policies.allow.write");
    assert!(
        decision
            .message
            .contains("proj.shop.orders is not writable")
    );
    assert!(
        decide(
            &set,
            &["etl"],
            "UPDATE proj.scratch.t SET x = 1 WHERE id = 2",
            None
        )
        .is_allowed()
    );
    // A write grant also grants reading.
    assert!(decide(&set, &["etl"], "SELECT * FROM proj.scratch.t", None).is_allowed());
}

#[test]
fn limits_are_checked_only_with_an_estimate() {
    let set = demo_set();
    let sql = "SELECT * FROM proj.shop.events";
    let big = 85_144_371; // 81.2 MiB, over agents' 50 MiB
    let before = decide(&set, &["agents"], sql, None);
    assert!(before.is_allowed(), "{before}");
    assert_eq!(before.limits.max_bytes_billed, Some(50 << 20));
    assert!(
        before.trace.iter().any(
            |s| s.rule == "policies.agents-read.limits.max_bytes_billed" && s.outcome == "skip"
        )
    );

    let after = decide(&set, &["agents"], sql, Some(big));
    assert_denied(&after, "limits.max_bytes_billed");
    assert_eq!(after.policy, "agents-read");
    assert!(
        after.message.contains("estimated 81.2 MiB, limit 50.0 MiB"),
        "{}",
        after.message
    );
    assert!(
        after
            .message
            .contains("Select fewer columns or filter on a partition")
    );

    assert!(decide(&set, &["agents"], sql, Some(50 << 20)).is_allowed());
    assert!(decide(&set, &["etl"], sql, Some(big)).is_allowed());
}

#[test]
fn limits_combine_by_minimum() {
    let set = demo_set();
    let decision = decide(&set, &["agents", "etl"], "SELECT 1", None);
    assert!(decision.is_allowed());
    assert_eq!(
        decision.limits,
        Limits {
            max_bytes_billed: Some(50 << 20),
            max_rows: Some(5000),
            max_duration: Some(std::time::Duration::from_secs(30 * 60)),
        }
    );
    let plain = policy("plain", &["g"], &["proj"], &[], &["select"]);
    let set = PolicySet::build(&[plain], &RawGuardrails::default()).unwrap();
    assert_eq!(
        decide(&set, &["g"], "SELECT 1", Some(u64::MAX)).limits,
        Limits::default()
    );
}

/// Issue: bounded spending. `limits.max_duration` is a whole number of
/// seconds, minutes or hours up to BigQuery's six; anything else is a
/// configuration error naming the key.
#[test]
fn max_duration_is_a_bounded_duration() {
    for (text, seconds) in [("90s", 90), ("30m", 1800), ("6h", 21600), (" 2h ", 7200)] {
        let mut p = policy("p", &["g"], &["proj"], &[], &["select"]);
        p.limits.max_duration = Some(text.into());
        let set = PolicySet::build(&[p], &RawGuardrails::default()).unwrap();
        let limits = decide(&set, &["g"], "SELECT 1", None).limits;
        assert_eq!(
            limits.max_duration,
            Some(std::time::Duration::from_secs(seconds)),
            "{text}"
        );
    }
    for text in ["0s", "7h", "1.5h", "10", "h", "10d", "-1m", ""] {
        let mut p = policy("p", &["g"], &["proj"], &[], &["select"]);
        p.limits.max_duration = Some(text.into());
        let errors = PolicySet::build(&[p], &RawGuardrails::default()).unwrap_err();
        let shown = format!("{errors:?}");
        assert!(shown.contains("max_duration"), "{text}: {shown}");
    }
}

#[test]
fn allow_names_the_policies_and_traces_every_step() {
    let decision = decide(
        &demo_set(),
        &["agents"],
        "SELECT id FROM proj.shop.orders",
        None,
    );
    assert!(decision.is_allowed());
    assert_eq!(decision.policy, "agents-read");
    assert_eq!(decision.rule, crate::Rule::Allow);
    let rules: Vec<&str> = decision.trace.iter().map(|s| s.rule.as_str()).collect();
    assert_eq!(
        rules,
        [
            "policies.agents-read.who",
            "policies.etl.who",
            "guardrails.deny.drop",
            "guardrails.deny.delete_without_where",
            "guardrails.deny.dynamic_sql",
            "analysis.incomplete",
            "policies.agents-read.allow.statements",
            "policies.agents-read.allow.read",
            "policies.agents-read.limits.max_duration",
            "policies.agents-read.limits.max_bytes_billed",
            "allow",
        ]
    );
    let shown = decision.to_string();
    assert!(
        shown.starts_with("verdict: allow\npolicy:  agents-read\nrule:    allow\n"),
        "{shown}"
    );
    assert!(shown.contains("policies.etl.who"), "{shown}");
}

#[test]
fn decide_read_checks_matching_and_tables_only() {
    let set = demo_set();
    let groups = strings(&["agents"]);
    let who = Who {
        name: "a",
        groups: &groups,
        issuer: "",
    };
    assert!(
        set.decide_read(&who, &TableName::new("proj", "shop", "orders"))
            .is_allowed()
    );
    assert!(
        set.decide_read(&who, &TableName::new("proj", "public_weather", "daily"))
            .is_allowed()
    );
    assert_denied(
        &set.decide_read(&who, &TableName::new("proj", "hr", "salaries")),
        "policies.allow.read",
    );
    assert_denied(
        &set.decide_read(
            &who,
            &TableName::new("proj", "region-us.INFORMATION_SCHEMA", "JOBS"),
        ),
        "policies.allow.read",
    );
    let nobody = Who {
        name: "n",
        groups: &[],
        issuer: "",
    };
    assert_denied(
        &set.decide_read(&nobody, &TableName::new("proj", "shop", "orders")),
        "default-deny",
    );
    let etl_groups = strings(&["etl"]);
    let etl = Who {
        name: "e",
        groups: &etl_groups,
        issuer: "",
    };
    let decision = set.decide_read(&etl, &TableName::new("proj", "scratch", "t"));
    assert!(decision.is_allowed());
    assert_eq!(decision.limits.max_rows, Some(5000));
}

#[test]
fn visibility_of_projects_and_datasets() {
    let set = demo_set();
    let groups = strings(&["agents"]);
    let agent = Who {
        name: "a",
        groups: &groups,
        issuer: "",
    };
    assert!(set.may_see_project(&agent, "proj"));
    assert!(!set.may_see_project(&agent, "other-proj"));
    assert!(set.may_see_dataset(&agent, "proj", "shop"));
    assert!(set.may_see_dataset(&agent, "proj", "public_x"));
    assert!(!set.may_see_dataset(&agent, "proj", "scratch"));
    let etl_groups = strings(&["etl"]);
    let etl = Who {
        name: "e",
        groups: &etl_groups,
        issuer: "",
    };
    assert!(set.may_see_dataset(&etl, "proj", "scratch"));
    let nobody = Who {
        name: "n",
        groups: &[],
        issuer: "",
    };
    assert!(!set.may_see_project(&nobody, "proj"));
}

#[test]
fn hand_built_facts_with_flags() {
    // A flag alone (no statement of that kind) still hits the guardrail.
    let set = PolicySet::build(
        &[policy("all", &["g"], &["*"], &["*"], &["select"])],
        &guardrails(&["external_query"]),
    )
    .unwrap();
    let facts = QueryFacts {
        statements: vec![StatementFacts {
            kind: StatementKind::Query,
            object: None,
            temporary: false,
        }],
        flags: BTreeSet::from([Flag::ExternalQuery]),
        ..QueryFacts::default()
    };
    let decision = decide_facts(&set, &["g"], &facts);
    assert_denied(&decision, "guardrails.deny.external_query");
    assert!(decision.message.contains("EXTERNAL_QUERY"));
}

#[test]
fn ddl_objects_that_are_not_tables_need_allow_write() {
    let mut admin = policy(
        "admin",
        &["admins"],
        &["proj"],
        &["proj"],
        &["create", "select"],
    );
    admin.allow.write.push("lab.scratch_*".to_owned());
    let set = PolicySet::build(&[admin], &RawGuardrails::default()).unwrap();
    let allowed = |sql: &str| decide(&set, &["admins"], sql, None);
    assert!(allowed("CREATE SCHEMA proj.newds").is_allowed());
    assert!(allowed("CREATE SCHEMA lab.scratch_1").is_allowed());
    let denied = allowed("CREATE SCHEMA `other-proj`.newds");
    assert_denied(&denied, "policies.allow.write");
    assert!(
        denied
            .message
            .contains("dataset other-proj.newds is not writable"),
        "{}",
        denied.message
    );
    // A table pattern inside a dataset does not grant the dataset itself.
    assert_denied(&allowed("CREATE SCHEMA lab.other"), "policies.allow.write");
    assert!(allowed("CREATE FUNCTION proj.shop.f(x INT64) AS (x)").is_allowed());
    assert_denied(
        &allowed("CREATE FUNCTION `other-proj`.ds.f(x INT64) AS (x)"),
        "policies.allow.write",
    );
    // Temporary functions live in the session only.
    assert!(allowed("CREATE TEMP FUNCTION f(x INT64) AS (x); SELECT f(1)").is_allowed());
}

// ---- upstream credentials -------------------------------------------------

#[test]
fn the_matching_policies_choose_the_upstream_credential() {
    let mut finance = policy("finance", &["finance"], &["proj.finance"], &[], &["select"]);
    finance.credentials = Some("finance-reader".into());
    let mut finance_audit = policy("finance-audit", &["auditors"], &["proj.finance"], &[], &[]);
    finance_audit.credentials = Some("finance-reader".into());
    let mut ops = policy("ops", &["ops"], &["proj.ops"], &[], &["select"]);
    ops.credentials = Some("ops-reader".into());
    let plain = policy("everyone", &["staff"], &["proj.public"], &[], &["select"]);
    let set = PolicySet::build(
        &[finance, finance_audit, ops, plain],
        &RawGuardrails::default(),
    )
    .unwrap();
    let choose = |groups: &[&str]| {
        let groups = strings(groups);
        set.credentials_for(&Who {
            name: "tester",
            groups: &groups,
            issuer: "",
        })
        .map(|c| c.map(str::to_owned))
        .map_err(|pairs| {
            pairs
                .iter()
                .map(|(p, c)| format!("{p}={c}"))
                .collect::<Vec<_>>()
        })
    };
    // No policy names one: the warehouse's default.
    assert_eq!(choose(&["staff"]), Ok(None));
    assert_eq!(choose(&[]), Ok(None));
    // A policy that names one wins over those that name none.
    assert_eq!(
        choose(&["finance", "staff"]),
        Ok(Some("finance-reader".into()))
    );
    // Two policies naming the same one agree.
    assert_eq!(
        choose(&["finance", "auditors"]),
        Ok(Some("finance-reader".into()))
    );
    // Two different ones: a conflict naming both, never a pick.
    assert_eq!(
        choose(&["finance", "ops"]),
        Err(vec![
            "finance=finance-reader".to_owned(),
            "ops=ops-reader".to_owned()
        ])
    );
    let named: Vec<_> = set.named_credentials().collect();
    assert_eq!(
        named,
        vec![
            (0, "finance-reader"),
            (1, "finance-reader"),
            (2, "ops-reader")
        ]
    );
}
