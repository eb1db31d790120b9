//! Corpus replay: every case of `tests/corpus/decisions.yaml` is analyzed
//! by `sluice_sql::analyze` (project `proj`) and decided against
//! `tests/corpus/policy.yaml` before the dry run (no estimate). All
//! mismatches are reported at once.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use sluice_policy::{PolicySet, RawGuardrails, RawPolicy, Verdict, Who};
use sluice_sql::{Defaults, analyze};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    policies: Vec<RawPolicy>,
    guardrails: RawGuardrails,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Corpus {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    sql: String,
    #[serde(default)]
    default_dataset: Option<String>,
    groups: Vec<String>,
    verdict: String,
    #[serde(default)]
    rule: Option<String>,
    /// The facts from sluice-sql are wrong or coarse for this case; the
    /// expected outcome is still the fail-closed one it gets today.
    #[serde(default)]
    known_gap: bool,
    /// Why the case is a known gap.
    #[serde(default)]
    note: Option<String>,
}

fn read(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn policy_set() -> PolicySet {
    let file: PolicyFile =
        serde_saphyr::from_str(&read("policy.yaml")).expect("policy.yaml parses");
    PolicySet::build(&file.policies, &file.guardrails).unwrap_or_else(|errors| {
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!("policy.yaml is invalid:\n{}", errors.join("\n"))
    })
}

fn corpus() -> Vec<Case> {
    let corpus: Corpus =
        serde_saphyr::from_str(&read("decisions.yaml")).expect("decisions.yaml parses");
    corpus.cases
}

#[test]
fn corpus_is_well_formed() {
    let cases = corpus();
    assert!(cases.len() >= 90, "only {} cases", cases.len());
    let mut names = BTreeSet::new();
    for case in &cases {
        assert!(
            names.insert(case.name.as_str()),
            "duplicate case {}",
            case.name
        );
        match case.verdict.as_str() {
            "allow" => assert!(case.rule.is_none(), "{}: an allow has no rule", case.name),
            "deny" => assert!(case.rule.is_some(), "{}: a deny needs its rule", case.name),
            other => panic!("{}: verdict `{other}` is not allow or deny", case.name),
        }
        assert!(
            !case.known_gap || (case.note.is_some() && case.verdict == "deny"),
            "{}: a known gap needs a note and may only pin a deny",
            case.name
        );
    }
}

#[test]
fn corpus_decisions_match() {
    let set = policy_set();
    let mut mismatches = Vec::new();
    let cases = corpus();
    for case in &cases {
        let defaults = Defaults {
            project: "proj".to_owned(),
            dataset: case.default_dataset.clone(),
        };
        let facts = analyze(&case.sql, &defaults);
        let who = Who {
            name: "corpus-principal",
            groups: &case.groups,
            issuer: "",
        };
        let decision = set.decide(&who, &facts, None);
        let verdict = match decision.verdict {
            Verdict::Allow => "allow",
            Verdict::NeedsApproval => "review",
            Verdict::Deny => "deny",
        };
        let rule_ok = match (&case.rule, decision.verdict) {
            (Some(rule), Verdict::Deny | Verdict::NeedsApproval) => {
                *rule == decision.rule.to_string()
            }
            (None, Verdict::Allow) => true,
            _ => false,
        };
        if verdict != case.verdict || !rule_ok {
            mismatches.push(format!(
                "case {}: expected {} {}, got {verdict} {}\n  sql: {:?}\n  facts: {facts:?}\n  message: {}",
                case.name,
                case.verdict,
                case.rule.as_deref().unwrap_or(""),
                decision.rule,
                case.sql,
                decision.message,
            ));
            continue;
        }
        // Every decision explains itself.
        if decision.trace.is_empty() || decision.message.is_empty() {
            mismatches.push(format!("case {}: empty trace or message", case.name));
        }
        if decision.verdict == Verdict::Deny
            && !decision.message.contains(&decision.rule.to_string())
        {
            mismatches.push(format!(
                "case {}: the message does not name rule {}: {}",
                case.name, decision.rule, decision.message
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} corpus cases do not match:\n\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n\n")
    );
}
