//! Where a principal's jobs run (`projects:`) and which issuer's tokens a
//! policy admits (`who.issuers`).

use super::*;

const GITHUB: &str = "https://token.actions.githubusercontent.com";
const GOOGLE: &str = "https://accounts.google.com";

fn who<'a>(groups: &'a [String], issuer: &'a str) -> Who<'a> {
    Who {
        name: "tester",
        groups,
        issuer,
    }
}

// ---- projects -------------------------------------------------------------

#[test]
fn without_projects_jobs_run_where_the_table_patterns_point() {
    let set = demo_set();
    let agents = strings(&["agents"]);
    let agent = who(&agents, "");
    assert!(set.may_run_jobs_in(&agent, "proj"));
    assert!(!set.may_run_jobs_in(&agent, "other-proj"));
    assert!(!set.may_run_jobs_in(&agent, ""));
    // A glob in the first part of a pattern stays a glob.
    let globbed = policy(
        "globbed",
        &["g"],
        &["lab-*.scratch"],
        &["*-prod.out.*"],
        &[],
    );
    let set = PolicySet::build(&[globbed], &RawGuardrails::default()).unwrap();
    let g = strings(&["g"]);
    assert!(set.may_run_jobs_in(&who(&g, ""), "lab-7"));
    assert!(set.may_run_jobs_in(&who(&g, ""), "acme-prod"));
    assert!(!set.may_run_jobs_in(&who(&g, ""), "acme-dev"));
    // Nobody matching means nowhere.
    assert!(!set.may_run_jobs_in(&who(&[], ""), "lab-7"));
}

/// Reading a project's tables is not the right to bill it: `projects:`
/// says where jobs run, whatever the table patterns name.
#[test]
fn projects_names_where_jobs_run_and_replaces_the_default() {
    let mut readers = policy(
        "readers",
        &["readers"],
        &["data-prod.shop"],
        &[],
        &["select"],
    );
    readers.projects = Some(strings(&["billing-*", "agents"]));
    let mut frozen = policy("frozen", &["frozen"], &["data-prod.shop"], &[], &["select"]);
    frozen.projects = Some(Vec::new());
    let set = PolicySet::build(&[readers, frozen], &RawGuardrails::default()).unwrap();
    let r = strings(&["readers"]);
    assert!(set.may_run_jobs_in(&who(&r, ""), "billing-eu"));
    assert!(set.may_run_jobs_in(&who(&r, ""), "agents"));
    assert!(!set.may_run_jobs_in(&who(&r, ""), "agents-2"));
    assert!(!set.may_run_jobs_in(&who(&r, ""), "data-prod"));
    let f = strings(&["frozen"]);
    assert!(!set.may_run_jobs_in(&who(&f, ""), "data-prod"));
    // Several matching policies: any of them may allow the project.
    let both = strings(&["readers", "frozen"]);
    assert!(set.may_run_jobs_in(&who(&both, ""), "billing-us"));
}

#[test]
fn project_patterns_are_validated() {
    let mut bad = policy("bad", &["g"], &["proj"], &[], &[]);
    bad.projects = Some(strings(&["ok-*", "", "a/b", "example.com:proj"]));
    let errors = PolicySet::build(&[bad], &RawGuardrails::default()).unwrap_err();
    let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        [
            "policies[0].projects[1]: empty project pattern",
            "policies[0].projects[2]: `a/b` contains `/`; a project pattern is a project id with `*` wildcards",
        ]
    );
}

// ---- issuers --------------------------------------------------------------

/// Two issuers can hand out the same group or name: a policy pinned to
/// one issuer never matches a token of another.
#[test]
fn issuers_pin_a_policy_to_the_tokens_of_its_issuers() {
    let mut ci = policy("ci-load", &["ci-etl"], &["proj.shop"], &[], &["select"]);
    ci.who.principals = strings(&["repo:acme/*"]);
    ci.who.issuers = strings(&[GITHUB]);
    let set = PolicySet::build(&[ci], &RawGuardrails::default()).unwrap();
    let groups = strings(&["ci-etl"]);
    let read = |who: &Who<'_>| set.decide(who, &facts("SELECT * FROM proj.shop.orders"), None);
    assert!(read(&who(&groups, GITHUB)).is_allowed());
    for issuer in [GOOGLE, "", "https://token.actions.githubusercontent.com/"] {
        let decision = read(&who(&groups, issuer));
        assert_denied(&decision, "default-deny");
        assert!(
            decision.trace[0].detail.contains("another issuer")
                && decision.trace[0].detail.contains(GITHUB),
            "{decision}"
        );
        assert!(!set.may_run_jobs_in(&who(&groups, issuer), "proj"));
        assert!(set.matching_names(&who(&groups, issuer)).is_empty());
    }
    // Principal patterns are pinned the same way.
    let by_name = |issuer| Who {
        name: "repo:acme/etl:ref:refs/heads/main",
        groups: &[],
        issuer,
    };
    assert!(read(&by_name(GITHUB)).is_allowed());
    assert_denied(&read(&by_name(GOOGLE)), "default-deny");
    // The trace of a match says which issuer it took.
    let allowed = read(&who(&groups, GITHUB));
    assert!(
        allowed.trace[0]
            .detail
            .ends_with(&format!("token issued by {GITHUB}"))
    );
}

#[test]
fn a_policy_without_issuers_admits_every_trusted_issuer() {
    let set = demo_set();
    let groups = strings(&["agents"]);
    for issuer in [GITHUB, GOOGLE, ""] {
        assert!(
            decide_read_as(&set, &who(&groups, issuer), "proj.shop.orders").is_allowed(),
            "{issuer}"
        );
    }
}

#[test]
fn issuers_are_validated_and_parse_from_yaml() {
    let mut empty = policy("empty", &["g"], &["proj"], &[], &[]);
    empty.who.issuers = strings(&[GITHUB, ""]);
    let errors = PolicySet::build(&[empty], &RawGuardrails::default()).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].key, "policies[0].who.issuers[1]");
    // Issuers narrow a match; they do not make one.
    let mut only = policy("only", &[], &["proj"], &[], &[]);
    only.who.issuers = strings(&[GITHUB]);
    let errors = PolicySet::build(&[only], &RawGuardrails::default()).unwrap_err();
    assert_eq!(errors[0].key, "policies[0].who");

    let yaml = r#"
name: ci
who:
  issuers: [https://token.actions.githubusercontent.com]
  groups: [ci-etl]
allow: { read: ["proj.shop"], statements: [select] }
projects: [proj, "billing-*"]
"#;
    let raw: RawPolicy = serde_saphyr::from_str(yaml).expect("parses");
    assert_eq!(raw.who.issuers, [GITHUB]);
    assert_eq!(raw.projects, Some(strings(&["proj", "billing-*"])));
    let set = PolicySet::build(&[raw], &RawGuardrails::default()).unwrap();
    let groups = strings(&["ci-etl"]);
    assert!(set.may_run_jobs_in(&who(&groups, GITHUB), "billing-1"));
    assert!(!set.may_run_jobs_in(&who(&groups, GOOGLE), "billing-1"));
    let typo = "name: a\nwho: { groups: [g], issuer: x }\n";
    assert!(serde_saphyr::from_str::<RawPolicy>(typo).is_err());
}

fn decide_read_as(set: &PolicySet, who: &Who<'_>, table: &str) -> Decision {
    let parts: Vec<&str> = table.split('.').collect();
    set.decide_read(who, &TableName::new(parts[0], parts[1], parts[2]))
}
