//! Just-in-time grants, budgets and time-of-day approval rules: decided
//! from the circumstances the gateway hands in.

use super::*;

fn who<'a>(groups: &'a [String]) -> Who<'a> {
    Who {
        name: "bob",
        groups,
        issuer: "",
    }
}

fn decide_at(
    set: &PolicySet,
    groups: &[&str],
    sql: &str,
    estimate: Option<u64>,
    at: &Circumstances,
) -> Decision {
    let groups = strings(groups);
    let estimate = estimate.map(|bytes_processed| Estimate { bytes_processed });
    set.decide_in(&who(&groups), &facts(sql), estimate.as_ref(), at)
}

/// Contractors read nothing on their own; `proj.shop` may be granted to
/// them for up to 8 hours by a reviewer. Agents read the shop, but
/// `proj.shop.payroll` needs review, except under a grant.
fn granted_set() -> PolicySet {
    let mut contractors = policy("contractors", &["contractors"], &[], &[], &["select"]);
    contractors.grants = vec![RawGrant {
        name: "shop-access".to_owned(),
        datasets: strings(&["proj.shop"]),
        reviewers: RawWho {
            groups: strings(&["reviewers"]),
            ..RawWho::default()
        },
        max_duration: Some("8h".to_owned()),
        ..RawGrant::default()
    }];
    let mut agents = policy("agents", &["agents"], &["proj.shop.*"], &[], &["select"]);
    agents.grants = vec![RawGrant {
        name: "payroll-access".to_owned(),
        tables: strings(&["proj.shop.payroll"]),
        reviewers: RawWho {
            groups: strings(&["finance"]),
            ..RawWho::default()
        },
        ..RawGrant::default()
    }];
    agents.approvals = vec![RawApproval {
        name: "payroll".to_owned(),
        when: RawWhen {
            tables: strings(&["proj.shop.payroll"]),
            ..RawWhen::default()
        },
        reviewers: RawWho {
            groups: strings(&["finance"]),
            ..RawWho::default()
        },
        ..RawApproval::default()
    }];
    PolicySet::build(&[contractors, agents], &guardrails(&[])).expect("valid")
}

const NOON: i64 = 1_796_472_000_000; // 2026-12-05 12:00 UTC, a Saturday

fn grant(rule: &str, datasets: &[&str], tables: &[&str], expire_ms: i64) -> ActiveGrant {
    ActiveGrant {
        id: "acc_1".to_owned(),
        rule: rule.to_owned(),
        datasets: strings(datasets),
        tables: strings(tables),
        expire_ms,
    }
}

#[test]
fn a_table_under_a_grant_rule_needs_a_grant_and_says_how_to_ask() {
    let set = granted_set();
    let sql = "SELECT id FROM proj.shop.orders";
    let none = decide_at(&set, &["contractors"], sql, None, &Circumstances::at(NOON));
    assert_denied(&none, "grants.shop-access");
    assert!(
        none.message
            .contains("sluice access request --dataset proj.shop --for 1h"),
        "{}",
        none.message
    );
    assert!(none.message.contains("reviewers"), "{}", none.message);
    assert!(none.message.contains("8 hours"), "{}", none.message);

    let mut at = Circumstances::at(NOON);
    at.grants = vec![grant("shop-access", &["proj.shop"], &[], NOON + 60_000)];
    let granted = decide_at(&set, &["contractors"], sql, None, &at);
    assert!(granted.is_allowed(), "{granted}");
    assert!(
        granted
            .trace
            .iter()
            .any(|s| s.rule == "policies.contractors.grants.shop-access"
                && s.detail.contains("acc_1")
                && s.detail.contains("12:01 UTC")),
        "{granted}"
    );
}

#[test]
fn a_grant_ends_on_time_and_covers_only_what_it_names() {
    let set = granted_set();
    let sql = "SELECT id FROM proj.shop.orders";
    let mut at = Circumstances::at(NOON);
    at.grants = vec![grant("shop-access", &["proj.shop"], &[], NOON)];
    assert_denied(
        &decide_at(&set, &["contractors"], sql, None, &at),
        "grants.shop-access",
    );
    // A grant of another dataset, or under a rule the policy no longer
    // has, or of another principal's policy, does not help.
    for other in [
        grant("shop-access", &["proj.other"], &[], NOON + 1),
        grant("removed-rule", &["proj.shop"], &[], NOON + 1),
        grant("payroll-access", &["proj.shop"], &[], NOON + 1),
    ] {
        let mut at = Circumstances::at(NOON);
        at.grants = vec![other.clone()];
        assert_denied(
            &decide_at(&set, &["contractors"], sql, None, &at),
            "grants.shop-access",
        );
    }
    // Outside every grant rule: the ordinary refusal.
    let mut at = Circumstances::at(NOON);
    at.grants = vec![grant("shop-access", &["proj.shop"], &[], NOON + 1)];
    assert_denied(
        &decide_at(
            &set,
            &["contractors"],
            "SELECT 1 FROM proj.hr.people",
            None,
            &at,
        ),
        "policies.allow.read",
    );
    // A grant never allows writing.
    let write = decide_at(
        &set,
        &["contractors"],
        "INSERT INTO proj.shop.orders (id) VALUES (1)",
        None,
        &at,
    );
    assert!(write.is_denied(), "{write}");
}

#[test]
fn a_grant_lifts_per_table_review_but_not_cost_rules() {
    let set = granted_set();
    let sql = "SELECT * FROM proj.shop.payroll";
    let reviewed = decide_at(&set, &["agents"], sql, None, &Circumstances::at(NOON));
    assert_eq!(reviewed.verdict, Verdict::NeedsApproval, "{reviewed}");
    let mut at = Circumstances::at(NOON);
    at.grants = vec![grant(
        "payroll-access",
        &[],
        &["proj.shop.payroll"],
        NOON + 1,
    )];
    let granted = decide_at(&set, &["agents"], sql, None, &at);
    assert!(granted.is_allowed(), "{granted}");
}

#[test]
fn the_grant_rule_for_a_request_is_the_first_that_covers_it() {
    let set = granted_set();
    let groups = strings(&["contractors"]);
    let need = set
        .grant_rule(&who(&groups), &strings(&["proj.shop"]))
        .expect("covered");
    assert_eq!(need.rule, "shop-access");
    assert_eq!(need.max_duration.as_secs(), 8 * 3600);
    assert_eq!(need.reviewers.groups, strings(&["reviewers"]));
    let table = set.grant_rule(&who(&groups), &strings(&["proj.shop.orders"]));
    assert!(table.is_ok());
    let refused = set
        .grant_rule(&who(&groups), &strings(&["proj.hr"]))
        .unwrap_err();
    assert!(
        refused.contains("proj.shop (rule grants.shop-access)"),
        "{refused}"
    );
    let nobody = strings(&["strangers"]);
    assert!(
        set.grant_rule(&who(&nobody), &strings(&["proj.shop"]))
            .is_err()
    );
}

fn budget_set(over: &str) -> PolicySet {
    let mut agents = policy("agents", &["agents"], &["proj.shop.*"], &[], &["select"]);
    agents.budgets = vec![RawBudget {
        name: "per-run".to_owned(),
        per: strings(&["run_id"]),
        bytes: Some("100MiB".into()),
        rows: Some(1000),
        period: Some("none".to_owned()),
        over: Some(over.to_owned()),
        reviewers: RawWho {
            groups: strings(&["reviewers"]),
            ..RawWho::default()
        },
        ..RawBudget::default()
    }];
    PolicySet::build(&[agents], &guardrails(&[])).expect("valid")
}

fn spent(bytes: u64, rows: u64) -> Circumstances {
    Circumstances {
        now_ms: NOON,
        grants: Vec::new(),
        spent: vec![Spent {
            budget: "per-run".to_owned(),
            bytes,
            rows,
        }],
    }
}

#[test]
fn a_spent_budget_refuses_with_what_was_spent_and_when_it_resets() {
    let set = budget_set("refuse");
    let sql = "SELECT * FROM proj.shop.orders";
    let room = decide_at(&set, &["agents"], sql, Some(50 << 20), &spent(40 << 20, 10));
    assert!(room.is_allowed(), "{room}");
    let over = decide_at(&set, &["agents"], sql, Some(70 << 20), &spent(40 << 20, 10));
    assert_denied(&over, "budgets.per-run");
    assert!(
        over.message.starts_with("Quota exceeded"),
        "{}",
        over.message
    );
    assert!(
        over.message.contains("40.0 MiB of 100.0 MiB"),
        "{}",
        over.message
    );
    assert!(over.message.contains("does not reset"), "{}", over.message);
    // Before the dry run, only what was already spent counts.
    let before = decide_at(&set, &["agents"], sql, None, &spent(40 << 20, 10));
    assert!(before.is_allowed(), "{before}");
    let rows = decide_at(&set, &["agents"], sql, None, &spent(0, 1000));
    assert_denied(&rows, "budgets.per-run");
    assert!(set.needs_estimate(&who(&strings(&["agents"]))));
    let keys = set.budgets_for(&who(&strings(&["agents"])));
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].per, strings(&["run_id"]));
    assert!(!keys[0].daily);
}

#[test]
fn a_daily_budget_says_when_it_resets_and_review_can_replace_refusal() {
    let mut set = budget_set("review");
    let sql = "SELECT * FROM proj.shop.orders";
    let review = decide_at(&set, &["agents"], sql, None, &spent(200 << 20, 0));
    assert_eq!(review.verdict, Verdict::NeedsApproval, "{review}");
    assert_eq!(review.rule.to_string(), "budgets.per-run");
    let need = review.approval.expect("a review");
    assert_eq!(need.rule, "per-run");
    assert_eq!(need.reviewers.groups, strings(&["reviewers"]));

    let mut agents = policy("agents", &["agents"], &["proj.shop.*"], &[], &["select"]);
    agents.budgets = vec![RawBudget {
        name: "per-run".to_owned(),
        bytes: Some("1GiB".into()),
        ..RawBudget::default()
    }];
    set = PolicySet::build(&[agents], &guardrails(&[])).expect("valid");
    let over = decide_at(&set, &["agents"], sql, None, &spent(2 << 30, 0));
    assert!(
        over.message.contains("today (UTC) by this principal"),
        "{}",
        over.message
    );
    assert!(
        over.message.contains("resets at 00:00 UTC, in 12h 00m"),
        "{}",
        over.message
    );
}

#[test]
fn budget_and_grant_mistakes_are_reported_with_their_keys() {
    let mut agents = policy("agents", &["agents"], &["proj.shop.*"], &[], &["select"]);
    agents.approvals = vec![RawApproval {
        name: "same".to_owned(),
        reviewers: RawWho {
            groups: strings(&["r"]),
            ..RawWho::default()
        },
        ..RawApproval::default()
    }];
    agents.budgets = vec![
        RawBudget {
            name: "same".to_owned(),
            rows: Some(1),
            ..RawBudget::default()
        },
        RawBudget {
            name: "empty".to_owned(),
            period: Some("week".to_owned()),
            over: Some("shrug".to_owned()),
            ..RawBudget::default()
        },
    ];
    agents.grants = vec![RawGrant {
        name: "g".to_owned(),
        datasets: strings(&["proj"]),
        max_duration: Some("200h".to_owned()),
        ..RawGrant::default()
    }];
    let errors = PolicySet::build(&[agents], &guardrails(&[])).unwrap_err();
    let keys: BTreeSet<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    for key in [
        "policies[0].budgets[0].name",
        "policies[0].budgets[1]",
        "policies[0].budgets[1].period",
        "policies[0].budgets[1].over",
        "policies[0].grants[0].datasets[0]",
        "policies[0].grants[0].reviewers",
        "policies[0].grants[0].max_duration",
    ] {
        assert!(keys.contains(key), "{key} missing from {errors:?}");
    }
}

#[test]
fn an_approval_rule_can_apply_only_at_some_hours() {
    let mut agents = policy("agents", &["agents"], &["proj.shop.*"], &[], &["select"]);
    agents.approvals = vec![RawApproval {
        name: "after-hours".to_owned(),
        when: RawWhen {
            days: strings(&["mon", "tue", "wed", "thu", "fri"]),
            hours: Some("18:00-08:00".to_owned()),
            utc_offset: Some("+01:00".to_owned()),
            ..RawWhen::default()
        },
        reviewers: RawWho {
            groups: strings(&["oncall"]),
            ..RawWho::default()
        },
        ..RawApproval::default()
    }];
    let set = PolicySet::build(&[agents], &guardrails(&[])).expect("valid");
    let sql = "SELECT id FROM proj.shop.orders";
    // Saturday noon: not a weekday.
    let weekend = decide_at(&set, &["agents"], sql, None, &Circumstances::at(NOON));
    assert!(weekend.is_allowed(), "{weekend}");
    // Tuesday 2026-12-08 19:30 UTC is 20:30 in +01:00: after hours.
    let tuesday_evening = NOON + 3 * 86_400_000 + (7 * 60 + 30) * 60_000;
    let evening = decide_at(
        &set,
        &["agents"],
        sql,
        None,
        &Circumstances::at(tuesday_evening),
    );
    assert_eq!(evening.verdict, Verdict::NeedsApproval, "{evening}");
    assert!(
        evening
            .message
            .contains("tue 20:30 (UTC+01:00) is within when.hours 18:00-08:00"),
        "{}",
        evening.message
    );
    // Tuesday 10:00 in +01:00: office hours.
    let tuesday_morning = NOON + 3 * 86_400_000 - 3 * 3_600_000;
    let morning = decide_at(
        &set,
        &["agents"],
        sql,
        None,
        &Circumstances::at(tuesday_morning),
    );
    assert!(morning.is_allowed(), "{morning}");
}
