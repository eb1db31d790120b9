//! Replays `tests/corpus/guardrails.json`: each case names SQL, the
//! request's default dataset, and the facts analysis must produce. Every
//! listed expectation is asserted (kinds and statement objects in order;
//! reads, writes, routines and flags as exact sets; functions as a
//! subset); all failing cases are reported at once.

use std::collections::BTreeSet;

use serde::Deserialize;
use sluice_sql::{Defaults, analyze};

/// The project every case runs in.
const PROJECT: &str = "proj";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    sql: String,
    #[serde(default)]
    default_dataset: Option<String>,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    kinds: Option<Vec<String>>,
    complete: Option<bool>,
    reads: Option<BTreeSet<String>>,
    writes: Option<BTreeSet<String>>,
    flags: Option<BTreeSet<String>>,
    functions: Option<BTreeSet<String>>,
    routines: Option<BTreeSet<String>>,
    /// Each statement's object in order, `-` for none, with ` (temporary)`
    /// after an object that lives only as long as the request.
    objects: Option<Vec<String>>,
}

fn check(case: &Case) -> Vec<String> {
    let defaults = Defaults {
        project: PROJECT.to_owned(),
        dataset: case.default_dataset.clone(),
    };
    let facts = analyze(&case.sql, &defaults);
    let mut problems = Vec::new();
    let expect = &case.expect;
    if let Some(kinds) = &expect.kinds {
        let got: Vec<String> = facts.kind_names().into_iter().map(str::to_owned).collect();
        if &got != kinds {
            problems.push(format!("kinds: expected {kinds:?}, got {got:?}"));
        }
    }
    if let Some(complete) = expect.complete
        && complete != facts.is_complete()
    {
        problems.push(format!(
            "complete: expected {complete}, got {} ({:?})",
            facts.is_complete(),
            facts.incomplete
        ));
    }
    let names = |set: &BTreeSet<sluice_sql::TableName>| -> BTreeSet<String> {
        set.iter().map(ToString::to_string).collect()
    };
    if let Some(reads) = &expect.reads {
        let got = names(&facts.reads);
        if &got != reads {
            problems.push(format!("reads: expected {reads:?}, got {got:?}"));
        }
    }
    if let Some(writes) = &expect.writes {
        let got = names(&facts.writes);
        if &got != writes {
            problems.push(format!("writes: expected {writes:?}, got {got:?}"));
        }
    }
    if let Some(flags) = &expect.flags {
        let got: BTreeSet<String> = facts.flags.iter().map(ToString::to_string).collect();
        if &got != flags {
            problems.push(format!("flags: expected {flags:?}, got {got:?}"));
        }
    }
    if let Some(routines) = &expect.routines {
        let got: BTreeSet<String> = facts.routines.iter().map(ToString::to_string).collect();
        if &got != routines {
            problems.push(format!("routines: expected {routines:?}, got {got:?}"));
        }
    }
    if let Some(objects) = &expect.objects {
        let got: Vec<String> = facts
            .statements
            .iter()
            .map(|s| {
                let object = s.object.clone().unwrap_or_else(|| "-".to_owned());
                if s.temporary {
                    format!("{object} (temporary)")
                } else {
                    object
                }
            })
            .collect();
        if &got != objects {
            problems.push(format!("objects: expected {objects:?}, got {got:?}"));
        }
    }
    if let Some(functions) = &expect.functions {
        let missing: Vec<&String> = functions.difference(&facts.functions).collect();
        if !missing.is_empty() {
            problems.push(format!(
                "functions: missing {missing:?}, got {:?}",
                facts.functions
            ));
        }
    }
    problems
}

#[test]
fn guardrail_corpus() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/guardrails.json");
    let text = std::fs::read_to_string(path).expect("corpus file is readable");
    let cases: Vec<Case> = serde_json::from_str(&text).expect("corpus is valid JSON");
    assert!(cases.len() >= 80, "corpus has only {} cases", cases.len());
    let mut names = BTreeSet::new();
    let mut failures = Vec::new();
    for case in &cases {
        if !names.insert(case.name.as_str()) {
            failures.push(format!("{}: duplicate case name", case.name));
        }
        for problem in check(case) {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s) in {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn oversized_sql_is_incomplete() {
    let sql = format!("SELECT 1 {}", " ".repeat(sluice_sql::MAX_SQL_BYTES));
    let facts = analyze(&sql, &Defaults::default());
    assert!(!facts.is_complete());
    assert!(facts.incomplete[0].contains("too long"));
}

#[test]
fn deep_nesting_is_incomplete_not_a_crash() {
    let sql = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    let facts = analyze(&sql, &Defaults::default());
    assert!(!facts.is_complete());
}

#[test]
fn nested_dynamic_sql_depth_is_bounded() {
    let mut sql = "SELECT 1".to_owned();
    for _ in 0..8 {
        sql = format!(
            "EXECUTE IMMEDIATE '{}'",
            sql.replace('\\', "\\\\").replace('\'', "\\'")
        );
    }
    let facts = analyze(&sql, &Defaults::default());
    assert!(!facts.is_complete());
    assert!(facts.incomplete.iter().any(|r| r.contains("too deeply")));
}
