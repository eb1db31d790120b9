//! Routines are allowed by name only; routine DDL is a write; analysis
//! that cannot be sure (system variables, `SELECT … INTO`) never allows.

use super::*;

/// `callers` read the shop and may call what `routines` names.
fn routine_set(routines: &[&str], guardrail_names: &[&str]) -> PolicySet {
    let mut callers = policy("callers", &["callers"], &["proj.shop"], &[], &["select"]);
    callers.allow.routines = strings(routines);
    PolicySet::build(&[callers], &guardrails(guardrail_names)).expect("valid")
}

fn decide_in(set: &PolicySet, groups: &[&str], sql: &str, dataset: Option<&str>) -> Decision {
    let groups = strings(groups);
    let who = Who {
        name: "tester",
        groups: &groups,
        issuer: "",
    };
    let defaults = Defaults {
        project: "proj".to_owned(),
        dataset: dataset.map(str::to_owned),
    };
    set.decide(&who, &analyze(sql, &defaults), None)
}

#[test]
fn a_routine_runs_only_when_a_policy_names_it() {
    let calls = [
        (
            "SELECT * FROM proj.shop.top_customers(10)",
            "proj.shop.top_customers",
        ),
        (
            "SELECT * FROM proj.shop.orders |> CALL proj.shop.top_customers(10)",
            "proj.shop.top_customers",
        ),
        (
            "SELECT AI.GENERATE(CONCAT('Summarize: ', note), connection_id => 'us.vertex') FROM proj.shop.orders",
            "AI.GENERATE",
        ),
        (
            "SELECT ML.GENERATE_EMBEDDING(note) FROM proj.shop.orders",
            "ML.GENERATE_EMBEDDING",
        ),
    ];
    let none = routine_set(&[], &[]);
    let named = routine_set(&["proj.shop.top_customers", "AI.GENERATE", "ml.*"], &[]);
    for (sql, routine) in calls {
        let denied = decide_in(&none, &["callers"], sql, None);
        assert_denied(&denied, "policies.allow.routines");
        assert!(
            denied.message.contains(&format!("routine {routine} ("))
                && denied.message.contains("allow.routines"),
            "{denied}"
        );
        let allowed = decide_in(&named, &["callers"], sql, None);
        assert!(allowed.is_allowed(), "{sql}\n{allowed}");
        assert!(
            allowed
                .trace
                .iter()
                .any(|s| s.rule == "policies.callers.allow.routines" && s.outcome == "allow"),
            "{allowed}"
        );
        assert!(allowed.message.contains("1 routine called"), "{allowed}");
    }
    // Built-ins that only compute on their arguments need no grant.
    let plain = "SELECT NET.HOST(url), SAFE.PARSE_DATE('%Y', y), ML.STANDARD_SCALER(x) OVER () FROM proj.shop.orders";
    assert!(decide_in(&none, &["callers"], plain, None).is_allowed());
}

#[test]
fn a_call_of_a_persistent_function_trips_the_javascript_udf_guardrail() {
    // Its language is not in the SQL: it may be JavaScript, so it counts as such.
    let set = routine_set(&["proj.shop.*"], &["javascript_udf"]);
    let denied = decide_in(
        &set,
        &["callers"],
        "SELECT proj.shop.clean(note) FROM proj.shop.orders",
        None,
    );
    assert_denied(&denied, "guardrails.deny.javascript_udf");
    assert!(denied.message.contains("persistent function"), "{denied}");
    // A table function is SQL only.
    let table_function = "SELECT * FROM proj.shop.top_customers(10)";
    assert!(decide_in(&set, &["callers"], table_function, None).is_allowed());
}

#[test]
fn creating_or_dropping_a_persistent_function_is_a_write_whatever_its_name() {
    let mut admin = policy(
        "admin",
        &["admins"],
        &["proj"],
        &["proj.scratch.*"],
        &["create_function", "drop", "select"],
    );
    admin.allow.routines = strings(&["proj.scratch.*"]);
    let set = PolicySet::build(&[admin], &RawGuardrails::default()).unwrap();
    let create = "CREATE FUNCTION add1(x INT64) AS (x + 1)";
    // One part resolves against the default dataset, as BigQuery does.
    assert_denied(
        &decide_in(&set, &["admins"], create, Some("shop")),
        "policies.allow.write",
    );
    assert!(decide_in(&set, &["admins"], create, Some("scratch")).is_allowed());
    assert_denied(
        &decide_in(&set, &["admins"], create, None),
        "analysis.incomplete",
    );
    assert_denied(
        &decide_in(&set, &["admins"], "DROP FUNCTION add1", Some("shop")),
        "policies.allow.write",
    );
    assert_denied(
        &decide_in(&set, &["admins"], "DROP FUNCTION proj.shop.add1", None),
        "policies.allow.write",
    );
    // A temporary function, created and dropped, writes nothing.
    let temporary = "CREATE TEMP FUNCTION f(x INT64) AS (x); SELECT f(1); DROP FUNCTION f";
    assert!(decide_in(&set, &["admins"], temporary, Some("shop")).is_allowed());
}

#[test]
fn facts_analysis_cannot_be_sure_of_are_never_allowed() {
    let set = routine_set(&[], &[]);
    for sql in [
        "SET @@dataset_project_id = 'other-proj'; SELECT * FROM shop.orders",
        "SELECT * INTO proj.shop.copy FROM proj.shop.orders",
        "SELECT * FROM proj.shop.orders FOR UPDATE",
        "SELECT * FROM `proj.shop.orders\\x00`",
    ] {
        assert_denied(
            &decide_in(&set, &["callers"], sql, Some("shop")),
            "analysis.incomplete",
        );
    }
}

#[test]
fn routine_entries_are_validated_with_their_key() {
    let mut bad = policy("p", &["g"], &[], &[], &["select"]);
    bad.allow.routines = strings(&["proj.udfs.f", "udfs.f", "ML.PREDICT", "a.b.c.d", ""]);
    let errors = PolicySet::build(&[bad], &RawGuardrails::default()).unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "policies[0].allow.routines[1]",
            "policies[0].allow.routines[3]",
            "policies[0].allow.routines[4]",
        ],
        "{errors:?}"
    );
    assert!(
        errors[0].reason.contains("project.dataset.routine"),
        "{errors:?}"
    );
}
