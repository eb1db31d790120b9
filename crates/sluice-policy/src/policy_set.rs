//! The validated policy model: [`PolicySet::build`] turns the raw
//! configuration into it, reporting every mistake with its key path.

use std::collections::BTreeMap;

use crate::approvals::ApprovalRule;
use crate::budgets::{Budget, BudgetKey};
use crate::decide::principal;
use crate::decision::{Limits, Who};
use crate::grants::{GrantNeed, GrantRule};
use crate::names::{expand, guardrail_names, statement_names};
use crate::pattern::TablePattern;
use crate::raw::{RawGuardrails, RawLimits, RawPolicy};
use crate::routines::RoutinePattern;
use sluice_glob::glob_match;

/// One mistake in the policy configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct PolicyError {
    /// Where the mistake is, as a key path (`policies[1].allow.read[0]`,
    /// `guardrails.deny[2]`).
    pub key: String,
    /// What is wrong and how to fix it.
    pub reason: String,
}

/// Names [`crate::Decision::policy`] uses for things that are not
/// policies; a policy may not take them.
const RESERVED_NAMES: &[&str] = &["guardrails", "default", "analysis"];

/// The validated policies and guardrails the gateway decides with.
/// The default set holds nothing, so it denies everything.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub(crate) policies: Vec<Policy>,
    pub(crate) guardrails: Vec<DenyRule>,
}

/// One validated policy.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub(crate) name: String,
    groups: Vec<String>,
    principals: Vec<String>,
    /// Token issuers admitted; empty admits every trusted issuer.
    issuers: Vec<String>,
    /// Project-id globs the policy's principals may run jobs in: as
    /// written, or derived from the table patterns.
    projects: Vec<String>,
    pub(crate) read: Vec<TablePattern>,
    pub(crate) write: Vec<TablePattern>,
    /// Entries of `allow.statements` as written, with the kinds each grants.
    pub(crate) statements: Vec<DenyRule>,
    /// Routines that may be called.
    pub(crate) routines: Vec<RoutinePattern>,
    pub(crate) deny: Vec<DenyRule>,
    pub(crate) limits: Limits,
    /// The named upstream credential, if the policy picks one.
    credentials: Option<String>,
    /// Rules that send a query to a reviewer, in configuration order.
    pub(crate) approvals: Vec<ApprovalRule>,
    /// Tables readable only under a just-in-time grant.
    pub(crate) grants: Vec<GrantRule>,
    /// What the policy's principals may spend.
    pub(crate) budgets: Vec<Budget>,
}

/// A name of a deny list or `allow.statements` with the kind and flag
/// names it stands for (one, or an alias's members).
#[derive(Debug, Clone)]
pub(crate) struct DenyRule {
    pub(crate) name: String,
    pub(crate) members: Vec<&'static str>,
}

impl Policy {
    /// Why the policy matches `who`, or why it does not.
    ///
    /// The issuer is checked first: with `who.issuers` set, a group or
    /// name means nothing unless the token came from one of them, because
    /// two issuers may hand out the same names.
    pub(crate) fn matches(&self, who: &Who<'_>) -> Result<String, String> {
        let issued = if self.issuers.is_empty() {
            String::new()
        } else if self.issuers.iter().any(|issuer| issuer == who.issuer) {
            format!(", token issued by {}", who.issuer)
        } else {
            return Err(format!(
                "{} has a token of another issuer; the policy admits only tokens of {}",
                principal(who),
                self.issuers.join(", ")
            ));
        };
        if let Some(group) = who.groups.iter().find(|g| self.groups.contains(g)) {
            return Ok(format!("{} is in group {group}{issued}", who.name));
        }
        self.principals
            .iter()
            .find(|pattern| glob_match(pattern, who.name))
            .map(|pattern| format!("{} matches principal pattern {pattern}{issued}", who.name))
            .ok_or_else(|| {
                format!(
                    "{} is in none of its groups and matches none of its principals",
                    principal(who)
                )
            })
    }

    /// Every read or write pattern (both grant reading).
    pub(crate) fn readable(&self) -> impl Iterator<Item = &TablePattern> {
        self.read.iter().chain(&self.write)
    }
}

impl PolicySet {
    /// Validate `policies` and `guardrails` into a set, reporting every
    /// error (not just the first), each with its key path:
    ///
    /// - a policy needs a non-empty name (not `guardrails`, `default` or
    ///   `analysis`), unique among policies;
    /// - `who` must name at least one group or principal pattern, none of
    ///   them empty, and `who.issuers` entries must be non-empty;
    /// - `projects` entries must be project-id globs;
    /// - table patterns must be valid (see the crate docs), and so must
    ///   routine names (`project.dataset.routine` or `ML.FUNCTION`, …);
    /// - statement and guardrail names must be known
    ///   ([`statement_names`], [`guardrail_names`]);
    /// - limits must be valid sizes, greater than zero;
    /// - approval rules need a name unique among all policies, reviewers,
    ///   a quorum of 1 to 100 and a timeout of at most 24 hours.
    pub fn build(
        policies: &[RawPolicy],
        guardrails: &RawGuardrails,
    ) -> Result<PolicySet, Vec<PolicyError>> {
        let mut errors = Vec::new();
        let guardrails = names(&guardrails.deny, "guardrails.deny", true, &mut errors);
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut built = Vec::with_capacity(policies.len());
        for (index, raw) in policies.iter().enumerate() {
            let key = format!("policies[{index}]");
            check_name(raw, index, &key, &mut seen, &mut errors);
            built.push(build_policy(raw, &key, &mut errors));
        }
        // Approval rules and budgets share a namespace: both can open an
        // approval request, which names its rule.
        let mut rules: BTreeMap<&str, String> = BTreeMap::new();
        let mut grants: BTreeMap<&str, String> = BTreeMap::new();
        for (index, policy) in built.iter().enumerate() {
            let approvals = policy
                .approvals
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("policies[{index}].approvals[{i}].name"), &r.name));
            let budgets = policy
                .budgets
                .iter()
                .enumerate()
                .map(|(i, b)| (format!("policies[{index}].budgets[{i}].name"), &b.name));
            for (key, name) in approvals.chain(budgets) {
                if name.is_empty() {
                    continue;
                }
                if let Some(first) = rules.insert(name, key.clone()) {
                    errors.push(error(
                        key,
                        format!("duplicate approval rule or budget name `{name}` (also {first})"),
                    ));
                }
            }
            for (i, rule) in policy.grants.iter().enumerate() {
                let key = format!("policies[{index}].grants[{i}].name");
                if rule.name.is_empty() {
                    continue;
                }
                if let Some(first) = grants.insert(&rule.name, key.clone()) {
                    errors.push(error(
                        key,
                        format!("duplicate grant rule name `{}` (also {first})", rule.name),
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(PolicySet {
                policies: built,
                guardrails,
            })
        } else {
            Err(errors)
        }
    }

    /// The policies' names, in configuration order.
    pub fn policy_names(&self) -> Vec<&str> {
        self.policies.iter().map(|p| p.name.as_str()).collect()
    }

    /// The names of the policies that match `who`, in configuration order:
    /// the policies whose grants a call by `who` runs under.
    pub fn matching_names(&self, who: &Who<'_>) -> Vec<String> {
        self.matching(who).map(|p| p.name.clone()).collect()
    }

    /// May `who` see `project.dataset` (`datasets.list`, `datasets.get`)?
    /// True when some matching policy has a read or write pattern whose
    /// first segment matches `project` and that either stops there or whose
    /// second segment matches `dataset`.
    pub fn may_see_dataset(&self, who: &Who<'_>, project: &str, dataset: &str) -> bool {
        self.matching(who)
            .flat_map(Policy::readable)
            .any(|pattern| pattern.matches_dataset(project, dataset))
    }

    /// May `who` see `project` (`projects.list`)? True when some matching
    /// policy has a read or write pattern whose first segment matches it.
    pub fn may_see_project(&self, who: &Who<'_>, project: &str) -> bool {
        self.matching(who)
            .flat_map(Policy::readable)
            .any(|pattern| pattern.matches_project(project))
    }

    /// May `who` run a job in `project` (and so bill it)? True when some
    /// policy matching `who` names the project in `projects:` (a glob), or,
    /// for a policy without `projects:`, in the first part of one of its
    /// `allow.read` or `allow.write` patterns.
    pub fn may_run_jobs_in(&self, who: &Who<'_>, project: &str) -> bool {
        !project.is_empty()
            && self
                .matching(who)
                .any(|policy| policy.projects.iter().any(|p| glob_match(p, project)))
    }

    /// The named upstream credential `who` runs with: the one the matching
    /// policies that name a credential agree on, or `None` when none of
    /// them names one (the warehouse's default credential).
    ///
    /// Policies that name different credentials for the same principal
    /// are a conflict: the error lists each `(policy, credential)` pair,
    /// and the gateway refuses rather than pick one.
    pub fn credentials_for(&self, who: &Who<'_>) -> Result<Option<&str>, Vec<(&str, &str)>> {
        let named: Vec<(&str, &str)> = self
            .matching(who)
            .filter_map(|p| Some((p.name.as_str(), p.credentials.as_deref()?)))
            .collect();
        match named.first() {
            None => Ok(None),
            Some((_, first)) if named.iter().all(|(_, c)| c == first) => Ok(Some(first)),
            Some(_) => Err(named),
        }
    }

    /// Every `(policy, credential)` pair the policies name, for the
    /// gateway to check against its configured credentials.
    pub fn named_credentials(&self) -> impl Iterator<Item = (usize, &str)> {
        self.policies
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((i, p.credentials.as_deref()?)))
    }

    /// Whether a decision for `who` needs the dry run's estimate: a
    /// matching policy has an approval rule with `bytes_over`. (A byte
    /// limit alone does not: it is enforced as the job's
    /// `maximumBytesBilled`.)
    pub fn needs_estimate(&self, who: &Who<'_>) -> bool {
        self.matching(who).any(|p| {
            p.approvals.iter().any(ApprovalRule::needs_estimate)
                || p.budgets.iter().any(Budget::counts_bytes)
        })
    }

    /// The budgets that apply to `who`: what the gateway must count and
    /// look up before deciding.
    pub fn budgets_for(&self, who: &Who<'_>) -> Vec<BudgetKey> {
        self.matching(who)
            .flat_map(|p| &p.budgets)
            .map(Budget::key)
            .collect()
    }

    /// Whether a policy matching `who` has grant rules (so its active
    /// grants matter to a decision).
    pub fn has_grant_rules(&self, who: &Who<'_>) -> bool {
        self.matching(who).any(|p| !p.grants.is_empty())
    }

    /// The grant rule under which `who` may ask for a grant of `names`
    /// (each `project.dataset` or `project.dataset.table`, written out):
    /// the first rule of a matching policy that covers them all. The
    /// error says what may be asked for instead.
    pub fn grant_rule(&self, who: &Who<'_>, names: &[String]) -> Result<GrantNeed, String> {
        let rules: Vec<(&Policy, &GrantRule)> = self
            .matching(who)
            .flat_map(|p| p.grants.iter().map(move |g| (p, g)))
            .collect();
        if rules.is_empty() {
            return Err(format!(
                "no policy for {} has grant rules, so there is nothing to request; ask an administrator",
                principal(who)
            ));
        }
        if let Some((policy, rule)) = rules
            .iter()
            .find(|(_, rule)| names.iter().all(|name| rule.may_cover(name)))
        {
            return Ok(rule.need(&policy.name));
        }
        let offered: Vec<String> = rules
            .iter()
            .map(|(_, rule)| format!("{} (rule grants.{})", rule.scope(), rule.name))
            .collect();
        Err(format!(
            "no grant rule for {} covers {}; grants may be requested for: {}",
            principal(who),
            names.join(", "),
            offered.join("; ")
        ))
    }

    /// Whether `who` may vote on an access request under grant rule
    /// `rule` (its reviewers as configured now).
    pub fn grant_reviewers(&self, rule: &str) -> Option<&crate::Reviewers> {
        self.policies
            .iter()
            .flat_map(|p| &p.grants)
            .find(|g| g.name == rule)
            .map(GrantRule::reviewers)
    }

    pub(crate) fn matching<'s>(&'s self, who: &Who<'_>) -> impl Iterator<Item = &'s Policy> {
        let who = *who;
        self.policies
            .iter()
            .filter(move |policy| policy.matches(&who).is_ok())
    }
}

fn check_name<'r>(
    raw: &'r RawPolicy,
    index: usize,
    key: &str,
    seen: &mut BTreeMap<&'r str, usize>,
    errors: &mut Vec<PolicyError>,
) {
    let name = raw.name.as_str();
    let key = format!("{key}.name");
    if name.trim().is_empty() {
        errors.push(error(key, "a policy needs a non-empty name"));
    } else if name.chars().any(char::is_whitespace) {
        errors.push(error(
            key,
            format!("policy name `{name}` contains whitespace; use e.g. `-`"),
        ));
    } else if RESERVED_NAMES.contains(&name) {
        errors.push(error(
            key,
            format!(
                "`{name}` is reserved ({}); choose another policy name",
                RESERVED_NAMES.join(", ")
            ),
        ));
    } else if let Some(first) = seen.insert(name, index) {
        seen.insert(name, first);
        errors.push(error(
            key,
            format!("duplicate policy name `{name}` (also policies[{first}].name)"),
        ));
    }
}

fn build_policy(raw: &RawPolicy, key: &str, errors: &mut Vec<PolicyError>) -> Policy {
    if raw.who.groups.is_empty() && raw.who.principals.is_empty() {
        errors.push(error(
            format!("{key}.who"),
            "matches nobody: give who.groups or who.principals",
        ));
    }
    for (field, values) in [
        ("groups", &raw.who.groups),
        ("principals", &raw.who.principals),
        ("issuers", &raw.who.issuers),
    ] {
        for (i, value) in values.iter().enumerate() {
            if value.is_empty() {
                errors.push(error(
                    format!("{key}.who.{field}[{i}]"),
                    format!("empty {field} entry"),
                ));
            }
        }
    }
    let read = patterns(&raw.allow.read, &format!("{key}.allow.read"), errors);
    let write = patterns(&raw.allow.write, &format!("{key}.allow.write"), errors);
    let projects = match &raw.projects {
        Some(written) => projects(written, &format!("{key}.projects"), errors),
        None => {
            let mut named: Vec<String> = read
                .iter()
                .chain(&write)
                .map(|pattern| pattern.project().to_owned())
                .collect();
            named.sort();
            named.dedup();
            named
        }
    };
    Policy {
        name: raw.name.clone(),
        groups: raw.who.groups.clone(),
        principals: raw.who.principals.clone(),
        issuers: raw.who.issuers.clone(),
        projects,
        read,
        write,
        statements: names(
            &raw.allow.statements,
            &format!("{key}.allow.statements"),
            false,
            errors,
        ),
        routines: routines(
            &raw.allow.routines,
            &format!("{key}.allow.routines"),
            errors,
        ),
        deny: names(&raw.deny, &format!("{key}.deny"), true, errors),
        limits: limits(&raw.limits, &format!("{key}.limits"), errors),
        credentials: raw.credentials.clone(),
        approvals: raw
            .approvals
            .iter()
            .enumerate()
            .map(|(i, rule)| ApprovalRule::build(rule, &format!("{key}.approvals[{i}]"), errors))
            .collect(),
        grants: raw
            .grants
            .iter()
            .enumerate()
            .map(|(i, rule)| GrantRule::build(rule, &format!("{key}.grants[{i}]"), errors))
            .collect(),
        budgets: raw
            .budgets
            .iter()
            .enumerate()
            .map(|(i, budget)| Budget::build(budget, &format!("{key}.budgets[{i}]"), errors))
            .collect(),
    }
}

pub(crate) fn patterns(
    raw: &[String],
    key: &str,
    errors: &mut Vec<PolicyError>,
) -> Vec<TablePattern> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, text)| match TablePattern::parse(text) {
            Ok(pattern) => Some(pattern),
            Err(reason) => {
                errors.push(error(format!("{key}[{i}]"), reason));
                None
            }
        })
        .collect()
}

/// Validate `projects:` entries: project ids (letters, digits, `-`, `_`,
/// and `.` and `:` of domain-scoped ids) with `*` wildcards.
fn projects(raw: &[String], key: &str, errors: &mut Vec<PolicyError>) -> Vec<String> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, text)| {
            let bad = text
                .chars()
                .find(|&c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '*')));
            let reason = if text.is_empty() {
                "empty project pattern".to_owned()
            } else if let Some(bad) = bad {
                format!(
                    "`{text}` contains `{bad}`; a project pattern is a project id with `*` wildcards"
                )
            } else {
                return Some(text.clone());
            };
            errors.push(error(format!("{key}[{i}]"), reason));
            None
        })
        .collect()
}

fn routines(raw: &[String], key: &str, errors: &mut Vec<PolicyError>) -> Vec<RoutinePattern> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, text)| match RoutinePattern::parse(text) {
            Ok(pattern) => Some(pattern),
            Err(reason) => {
                errors.push(error(format!("{key}[{i}]"), reason));
                None
            }
        })
        .collect()
}

pub(crate) fn names(
    raw: &[String],
    key: &str,
    guardrail: bool,
    errors: &mut Vec<PolicyError>,
) -> Vec<DenyRule> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, name)| match expand(name, guardrail) {
            Some(members) => Some(DenyRule {
                name: name.clone(),
                members,
            }),
            None => {
                let (what, valid) = if guardrail {
                    ("guardrail", guardrail_names())
                } else {
                    ("statement", statement_names())
                };
                errors.push(error(
                    format!("{key}[{i}]"),
                    format!(
                        "unknown {what} name `{name}`; valid names: {}",
                        valid.join(", ")
                    ),
                ));
                None
            }
        })
        .collect()
}

fn limits(raw: &RawLimits, key: &str, errors: &mut Vec<PolicyError>) -> Limits {
    let max_bytes_billed = raw.max_bytes_billed.as_ref().and_then(|size| {
        let key = format!("{key}.max_bytes_billed");
        match size.bytes() {
            Ok(0) => {
                errors.push(error(key, "must be greater than zero"));
                None
            }
            Ok(bytes) => Some(bytes),
            Err(reason) => {
                errors.push(error(key, reason));
                None
            }
        }
    });
    if raw.max_rows == Some(0) {
        errors.push(error(
            format!("{key}.max_rows"),
            "must be greater than zero",
        ));
    }
    let max_duration = raw.max_duration.as_deref().and_then(|text| {
        match job_duration(text) {
            Some(duration) => Some(duration),
            None => {
                errors.push(error(
                    format!("{key}.max_duration"),
                    format!("\"{text}\" is not a duration: write a whole number of seconds, minutes or hours, such as 90s, 30m or 6h (at most 6h, BigQuery's own bound)"),
                ));
                None
            }
        }
    });
    Limits {
        max_bytes_billed,
        max_rows: raw.max_rows,
        max_duration,
    }
}

/// `90s`, `30m`, `6h`: above zero and at most six hours.
fn job_duration(text: &str) -> Option<std::time::Duration> {
    duration(text).filter(|d| d.as_secs() <= 6 * 3600)
}

/// A whole number of seconds, minutes or hours (`90s`, `30m`, `6h`),
/// above zero.
pub(crate) fn duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
    let (count, unit) = text.split_at(unit_at);
    let seconds_per = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    let seconds = count.parse::<u64>().ok()?.checked_mul(seconds_per)?;
    (seconds > 0).then(|| std::time::Duration::from_secs(seconds))
}

fn error(key: impl Into<String>, reason: impl Into<String>) -> PolicyError {
    PolicyError {
        key: key.into(),
        reason: reason.into(),
    }
}
