//! From verified claims to a [`Principal`]: the readable name and the groups.

use serde_json::{Map, Value};

use crate::Principal;

/// Adds `group` when every claim in `when` matches one of its globs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupRule {
    pub(crate) group: String,
    pub(crate) when: Vec<(String, Vec<String>)>,
}

impl GroupRule {
    fn matches(&self, claims: &Map<String, Value>) -> bool {
        self.when.iter().all(|(claim, patterns)| {
            scalar_text(claims.get(claim))
                .is_some_and(|value| patterns.iter().any(|pattern| glob_match(pattern, &value)))
        })
    }
}

/// How groups are read from one issuer's tokens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClaimMapping<'a> {
    pub(crate) name_claim: &'a str,
    pub(crate) groups_claim: Option<&'a str>,
    pub(crate) group_rules: &'a [GroupRule],
}

/// Builds the principal from claims whose signature, issuer, audience and
/// times have already been verified; `subject` is the checked, non-empty `sub`.
pub(crate) fn principal(
    issuer: &str,
    subject: &str,
    claims: &Map<String, Value>,
    mapping: ClaimMapping<'_>,
) -> Principal {
    let name = scalar_text(claims.get(mapping.name_claim))
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| subject.to_string());
    let mut groups: Vec<String> = Vec::new();
    if let Some(claim) = mapping.groups_claim {
        match claims.get(claim) {
            Some(Value::String(group)) => groups.push(group.clone()),
            Some(Value::Array(items)) => {
                groups.extend(items.iter().filter_map(Value::as_str).map(str::to_string))
            }
            _ => {}
        }
    }
    groups.extend(
        mapping
            .group_rules
            .iter()
            .filter(|rule| rule.matches(claims))
            .map(|rule| rule.group.clone()),
    );
    groups.retain(|group| !group.trim().is_empty());
    groups.sort();
    groups.dedup();
    let run = RUN_CLAIMS
        .iter()
        .find_map(|claim| scalar_text(claims.get(*claim)));
    let session = ["sid", "jti"]
        .iter()
        .find_map(|claim| scalar_text(claims.get(*claim)));
    Principal {
        name,
        issuer: issuer.to_string(),
        subject: subject.to_string(),
        groups,
        run,
        session,
    }
}

/// Claims that name a CI run: GitHub Actions' `run_id`, GitLab's
/// `pipeline_id`, and the generic `build_id`.
const RUN_CLAIMS: &[&str] = &["run_id", "pipeline_id", "build_id"];

/// A claim value as text, when it is a scalar: strings as they are, numbers
/// and booleans rendered. Arrays, objects and null never match a rule.
fn scalar_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Claim rules use the one glob syntax of the configuration: the policy's.
pub(crate) use sluice_glob::glob_match;

#[cfg(test)]
mod safe_github_rule;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(group: &str, when: &[(&str, &str)]) -> GroupRule {
        GroupRule {
            group: group.to_string(),
            when: when
                .iter()
                .map(|(c, p)| (c.to_string(), vec![p.to_string()]))
                .collect(),
        }
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn glob_matching() {
        assert!(glob_match("acme/etl", "acme/etl"));
        assert!(!glob_match("acme/etl", "acme/etl2"));
        assert!(glob_match("acme/*", "acme/etl"));
        assert!(glob_match("*", ""));
        assert!(glob_match("refs/heads/*", "refs/heads/feature/x"));
        assert!(glob_match("*/etl", "acme/etl"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("a**c", "abc"));
        assert!(!glob_match("acme/*", "other/etl"));
        assert!(!glob_match("", "x"));
        assert!(glob_match("é*", "été"));
    }

    /// A GitHub Actions OIDC token for acme/etl lands in `ci-etl` only when it
    /// comes from the main branch.
    #[test]
    fn github_actions_rule_needs_every_condition() {
        let rules = vec![
            rule(
                "ci-etl",
                &[("repository", "acme/etl"), ("ref", "refs/heads/main")],
            ),
            rule("ci-acme", &[("repository_owner", "acme")]),
        ];
        let mapping = ClaimMapping {
            name_claim: "job_workflow_ref",
            groups_claim: None,
            group_rules: &rules,
        };
        let main = claims(json!({
            "sub": "repo:acme/etl:ref:refs/heads/main",
            "repository": "acme/etl",
            "repository_owner": "acme",
            "ref": "refs/heads/main",
            "job_workflow_ref": "acme/etl/.github/workflows/load.yml@refs/heads/main",
        }));
        let p = principal(
            "https://token.actions.githubusercontent.com",
            "repo:acme/etl:ref:refs/heads/main",
            &main,
            mapping,
        );
        assert_eq!(p.groups, vec!["ci-acme", "ci-etl"]);
        assert_eq!(
            p.name,
            "acme/etl/.github/workflows/load.yml@refs/heads/main"
        );

        let mut feature = main.clone();
        feature.insert("ref".into(), json!("refs/heads/feature/x"));
        let p = principal(
            "https://token.actions.githubusercontent.com",
            "s",
            &feature,
            mapping,
        );
        assert_eq!(p.groups, vec!["ci-acme"]);
    }

    /// A claim listed with several globs matches when any of them does;
    /// every claim of the rule must still match.
    #[test]
    fn a_list_of_globs_matches_any_of_them() {
        let rules = vec![GroupRule {
            group: "ci-load".to_string(),
            when: vec![
                (
                    "event_name".to_string(),
                    vec!["push".to_string(), "schedule".to_string()],
                ),
                ("repository_id".to_string(), vec!["42".to_string()]),
            ],
        }];
        let mapping = ClaimMapping {
            name_claim: "sub",
            groups_claim: None,
            group_rules: &rules,
        };
        let groups = |value: Value| principal("iss", "s", &claims(value), mapping).groups;
        assert_eq!(
            groups(json!({"event_name": "push", "repository_id": "42"})),
            ["ci-load"]
        );
        assert_eq!(
            groups(json!({"event_name": "schedule", "repository_id": 42})),
            ["ci-load"]
        );
        assert!(
            groups(json!({"event_name": "pull_request_target", "repository_id": "42"})).is_empty()
        );
        assert!(groups(json!({"event_name": "push", "repository_id": "421"})).is_empty());
        assert!(groups(json!({"event_name": ["push"], "repository_id": "42"})).is_empty());
        assert!(groups(json!({"repository_id": "42"})).is_empty());
    }

    #[test]
    fn groups_claim_and_rule_values() {
        let rules = vec![
            rule("admins", &[("admin", "true")]),
            rule("team-7", &[("team_id", "7")]),
            rule("never", &[("list", "*")]),
        ];
        let mapping = ClaimMapping {
            name_claim: "email",
            groups_claim: Some("groups"),
            group_rules: &rules,
        };
        let c = claims(json!({
            "groups": ["b", "a", "b", 5, ""],
            "admin": true,
            "team_id": 7,
            "list": ["x"],
        }));
        let p = principal("iss", "alice", &c, mapping);
        assert_eq!(p.groups, vec!["a", "admins", "b", "team-7"]);
        // No email claim: the name falls back to the subject.
        assert_eq!(p.name, "alice");

        let single = claims(json!({"groups": "solo"}));
        assert_eq!(principal("iss", "s", &single, mapping).groups, vec!["solo"]);
        let wrong_type = claims(json!({"groups": {"a": 1}}));
        assert!(
            principal("iss", "s", &wrong_type, mapping)
                .groups
                .is_empty()
        );
    }
}
