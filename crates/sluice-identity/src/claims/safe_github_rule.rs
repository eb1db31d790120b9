//! The GitHub Actions rule of docs/policy.md ("A safe rule for GitHub
//! Actions"), read from the page itself: the group goes only to the pinned
//! repository, owner, workflow, branch and events, and the policy admits
//! only this issuer's tokens.

use serde::Deserialize;
use serde_json::json;
use sluice_policy::{PolicySet, RawGuardrails, RawPolicy, Who};

use super::*;
use crate::RawIdentity;
use crate::config::{IdentityConfig, IssuerConfig};

const GITHUB: &str = "https://token.actions.githubusercontent.com";
const GROUP: &str = "ci-warehouse-load";
const SECTION: &str = "## A safe rule for GitHub Actions";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Example {
    identity: RawIdentity,
    policies: Vec<RawPolicy>,
}

/// The first YAML block of the section.
fn documented_example() -> Example {
    let page = include_str!("../../../../docs/policy.md");
    let section = page.split(SECTION).nth(1).expect("the section exists");
    let yaml = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .expect("the section has a YAML example");
    serde_saphyr::from_str(yaml).expect("the example parses")
}

/// A token of the documented workflow: a push to main.
fn pushed_to_main() -> Map<String, Value> {
    json!({
        "sub": "repo:acme/etl:ref:refs/heads/main",
        "repository": "acme/etl",
        "repository_id": "892641361",
        "repository_owner": "acme",
        "repository_owner_id": "118209753",
        "job_workflow_ref": "acme/workflows/.github/workflows/bigquery-load.yml@refs/heads/main",
        "ref": "refs/heads/main",
        "event_name": "push",
    })
    .as_object()
    .cloned()
    .unwrap()
}

fn groups_of(issuer: &IssuerConfig, claims: &Map<String, Value>) -> Vec<String> {
    let mapping = ClaimMapping {
        name_claim: &issuer.name_claim,
        groups_claim: issuer.groups_claim.as_deref(),
        group_rules: &issuer.group_rules,
    };
    principal(&issuer.issuer, "sub", claims, mapping).groups
}

#[test]
fn the_documented_github_actions_rule_admits_only_the_pinned_runs() {
    let example = documented_example();
    let identity = IdentityConfig::from_raw(&example.identity).expect("valid identity");
    let policies =
        PolicySet::build(&example.policies, &RawGuardrails::default()).expect("valid policies");
    let issuer = &identity.issuers[0];
    assert_eq!(issuer.issuer, GITHUB);

    for event in ["push", "workflow_dispatch", "schedule"] {
        let mut claims = pushed_to_main();
        claims.insert("event_name".into(), json!(event));
        assert_eq!(groups_of(issuer, &claims), [GROUP], "{event}");
    }
    let groups = groups_of(issuer, &pushed_to_main());
    let who = |issuer| Who {
        name: "repo:acme/etl:ref:refs/heads/main",
        groups: &groups,
        issuer,
    };
    assert_eq!(policies.matching_names(&who(GITHUB)), [GROUP]);
    assert!(policies.may_run_jobs_in(&who(GITHUB), "acme-prod"));
    assert!(!policies.may_run_jobs_in(&who(GITHUB), "acme-dev"));
    // The same group name from any other issuer matches nothing.
    for other in [
        "https://accounts.google.com",
        "http://127.0.0.1/sluice-dev-issuer",
        "",
    ] {
        assert!(policies.matching_names(&who(other)).is_empty(), "{other}");
    }

    // Each pin turns the group away on its own.
    let changed: [(&str, Value); 12] = [
        // The name moved to someone else's repository or organization.
        ("repository_id", json!("999999999")),
        ("repository_owner_id", json!("222222222")),
        // Another workflow, or the same one from an unreviewed ref.
        (
            "job_workflow_ref",
            json!("acme/etl/.github/workflows/debug.yml@refs/heads/main"),
        ),
        (
            "job_workflow_ref",
            json!("acme/workflows/.github/workflows/bigquery-load.yml@refs/heads/feature"),
        ),
        ("ref", json!("refs/heads/feature")),
        ("ref", json!("refs/pull/7/merge")),
        // Runs on main's ref that may run a pull request's code.
        ("event_name", json!("pull_request_target")),
        ("event_name", json!("workflow_run")),
        ("event_name", json!("issue_comment")),
        ("event_name", json!("pull_request")),
        // A claim of the wrong shape never matches.
        ("event_name", json!(["push"])),
        ("repository_id", Value::Null),
    ];
    for (claim, value) in changed {
        let mut claims = pushed_to_main();
        claims.insert(claim.into(), value.clone());
        assert!(
            groups_of(issuer, &claims).is_empty(),
            "{claim} = {value} must not get {GROUP}"
        );
    }
    // A missing claim never matches either.
    for claim in [
        "repository_id",
        "repository_owner_id",
        "job_workflow_ref",
        "ref",
        "event_name",
    ] {
        let mut claims = pushed_to_main();
        claims.remove(claim);
        assert!(groups_of(issuer, &claims).is_empty(), "without {claim}");
    }
    // The ids may also arrive as numbers.
    let mut claims = pushed_to_main();
    claims.insert("repository_id".into(), json!(892641361));
    claims.insert("repository_owner_id".into(), json!(118209753));
    assert_eq!(groups_of(issuer, &claims), [GROUP]);
}
