//! Approval rules: which queries wait for a reviewer, validated from
//! [`RawApproval`] and applied by [`crate::PolicySet::decide`] after every
//! check that could deny (deny beats needs-approval beats allow).

use std::time::Duration;

use sluice_sql::QueryFacts;

use crate::bytes::human_bytes;
use crate::calendar::Window;
use crate::decision::{ApprovalNeed, Estimate, Reviewers};
use crate::pattern::TablePattern;
use crate::policy_set::{DenyRule, PolicyError};
use crate::raw::{RawApproval, RawWho};

/// How long a request waits when its rule sets no `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The longest `timeout` a rule may set.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// One validated approval rule.
#[derive(Debug, Clone)]
pub(crate) struct ApprovalRule {
    pub(crate) name: String,
    bytes_over: Option<u64>,
    tables: Vec<TablePattern>,
    datasets: Vec<TablePattern>,
    statements: Vec<DenyRule>,
    pub(crate) incomplete_analysis: bool,
    /// Days and hours the rule applies in.
    window: Option<Window>,
    reviewers: Reviewers,
    min_approvals: u32,
    timeout: Duration,
    justification_required: bool,
}

/// Whether a rule applies to a query.
pub(crate) enum Applies {
    /// It does, for this reason.
    Yes(String),
    /// It does not, for this reason.
    No(String),
    /// Every other condition holds; its `bytes_over` waits for the dry run.
    AwaitsEstimate(String),
}

impl ApprovalRule {
    /// Validates `raw` (at `key`), reporting every mistake into `errors`.
    pub(crate) fn build(raw: &RawApproval, key: &str, errors: &mut Vec<PolicyError>) -> Self {
        let name = raw.name.trim();
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '.') {
            errors.push(error(
                format!("{key}.name"),
                "an approval rule needs a name without spaces or dots, such as `large-scan`",
            ));
        }
        let bytes_over = raw
            .when
            .bytes_over
            .as_ref()
            .and_then(|size| match size.bytes() {
                Ok(bytes) => Some(bytes),
                Err(reason) => {
                    errors.push(error(format!("{key}.when.bytes_over"), reason));
                    None
                }
            });
        let tables =
            crate::policy_set::patterns(&raw.when.tables, &format!("{key}.when.tables"), errors);
        let datasets = raw
            .when
            .datasets
            .iter()
            .enumerate()
            .filter_map(|(i, text)| {
                let key = format!("{key}.when.datasets[{i}]");
                if text.split('.').count() != 2 {
                    errors.push(error(key, format!("`{text}` is not project.dataset")));
                    return None;
                }
                TablePattern::parse(text)
                    .map_err(|reason| errors.push(error(key, reason)))
                    .ok()
            })
            .collect();
        let statements = crate::policy_set::names(
            &raw.when.statements,
            &format!("{key}.when.statements"),
            false,
            errors,
        );
        let window = Window::build(
            &raw.when.days,
            raw.when.hours.as_deref(),
            raw.when.utc_offset.as_deref(),
            &format!("{key}.when"),
            errors,
        );
        let reviewers = reviewers(&raw.reviewers, key, errors);
        let min_approvals = quorum(raw.min_approvals, key, errors);
        let timeout = match raw.timeout.as_deref() {
            None => DEFAULT_TIMEOUT,
            Some(text) => match crate::policy_set::duration(text).filter(|d| *d <= MAX_TIMEOUT) {
                Some(timeout) => timeout,
                None => {
                    errors.push(error(
                        format!("{key}.timeout"),
                        format!("\"{text}\" is not a timeout: write a whole number of seconds, minutes or hours, such as 90s, 15m or 2h (at most 24h)"),
                    ));
                    DEFAULT_TIMEOUT
                }
            },
        };
        Self {
            name: name.to_owned(),
            bytes_over,
            tables,
            datasets,
            statements,
            incomplete_analysis: raw.when.incomplete_analysis,
            window,
            reviewers,
            min_approvals,
            timeout,
            justification_required: raw.justification_required,
        }
    }

    /// Whether the rule has a byte condition, which only the dry run's
    /// estimate can settle.
    pub(crate) fn needs_estimate(&self) -> bool {
        self.bytes_over.is_some()
    }

    /// Whether the rule applies to a query with these facts and estimate,
    /// at `now_ms`. Conditions are and-ed; each list condition holds when
    /// any entry matches. Tables for which `granted` is true (a
    /// just-in-time grant covers them) do not meet `when.tables` or
    /// `when.datasets`: the grant was the review.
    pub(crate) fn applies(
        &self,
        facts: &QueryFacts,
        estimate: Option<&Estimate>,
        now_ms: i64,
        granted: &dyn Fn(&sluice_sql::TableName) -> bool,
    ) -> Applies {
        let mut why = Vec::new();
        if let Some(window) = &self.window {
            match window.contains(now_ms) {
                Ok(inside) => why.push(inside),
                Err(outside) => return Applies::No(outside),
            }
        }
        let touched = || {
            facts
                .reads
                .iter()
                .chain(&facts.writes)
                .filter(|table| !granted(table))
        };
        if !self.tables.is_empty() {
            let hit = touched().find_map(|table| {
                self.tables
                    .iter()
                    .find(|p| p.matches_table(table))
                    .map(|p| format!("{table} matches {}", p.as_str()))
            });
            match hit {
                Some(hit) => why.push(hit),
                None => return Applies::No("no table matches when.tables".to_owned()),
            }
        }
        if !self.datasets.is_empty() {
            let hit = touched().find_map(|table| {
                self.datasets
                    .iter()
                    .find(|p| p.matches_dataset(&table.project, &table.dataset))
                    .map(|p| format!("{table} is in dataset {}", p.as_str()))
            });
            match hit {
                Some(hit) => why.push(hit),
                None => return Applies::No("no table is in when.datasets".to_owned()),
            }
        }
        if !self.statements.is_empty() {
            let hit = facts.statements.iter().find_map(|statement| {
                let kind = statement.kind.name();
                self.statements
                    .iter()
                    .find(|entry| entry.members.contains(&kind))
                    .map(|entry| format!("a `{kind}` statement (when.statements `{}`)", entry.name))
            });
            match hit {
                Some(hit) => why.push(hit),
                None => return Applies::No("no statement kind is in when.statements".to_owned()),
            }
        }
        if self.incomplete_analysis {
            match facts.incomplete.first() {
                Some(first) => why.push(format!("the SQL could not be fully analyzed: {first}")),
                None => return Applies::No("the SQL was fully analyzed".to_owned()),
            }
        }
        if let Some(limit) = self.bytes_over {
            let Some(estimate) = estimate else {
                return Applies::AwaitsEstimate(format!(
                    "over {} is checked once the dry run has estimated the query",
                    human_bytes(limit)
                ));
            };
            if estimate.bytes_processed <= limit {
                return Applies::No(format!(
                    "estimated {}, not over {}",
                    human_bytes(estimate.bytes_processed),
                    human_bytes(limit)
                ));
            }
            why.push(format!(
                "estimated {}, over {}",
                human_bytes(estimate.bytes_processed),
                human_bytes(limit)
            ));
        }
        if why.is_empty() {
            why.push("the rule applies to every query".to_owned());
        }
        Applies::Yes(why.join("; "))
    }

    /// Whether the rule applies to listing the rows of `table` (no SQL, no
    /// bytes billed): it names the table by `when.tables` or
    /// `when.datasets`, and has no condition a row listing cannot meet
    /// (`bytes_over`, `incomplete_analysis`, statement kinds other than
    /// `select`).
    pub(crate) fn applies_to_read(
        &self,
        table: &sluice_sql::TableName,
        now_ms: i64,
    ) -> Option<String> {
        let window = match &self.window {
            Some(window) => Some(window.contains(now_ms).ok()?),
            None => None,
        };
        if self.bytes_over.is_some()
            || self.incomplete_analysis
            || (self.tables.is_empty() && self.datasets.is_empty())
            || (!self.statements.is_empty()
                && !self
                    .statements
                    .iter()
                    .any(|s| s.members.contains(&"select")))
        {
            return None;
        }
        let mut why: Vec<String> = window.into_iter().collect();
        if !self.tables.is_empty() {
            let pattern = self.tables.iter().find(|p| p.matches_table(table))?;
            why.push(format!("{table} matches {}", pattern.as_str()));
        }
        if !self.datasets.is_empty() {
            let pattern = self
                .datasets
                .iter()
                .find(|p| p.matches_dataset(&table.project, &table.dataset))?;
            why.push(format!("{table} is in dataset {}", pattern.as_str()));
        }
        Some(why.join("; "))
    }

    /// What a request this rule opened waits for.
    pub(crate) fn need(&self, policy: &str, why: String) -> ApprovalNeed {
        ApprovalNeed {
            rule: self.name.clone(),
            policy: policy.to_owned(),
            reviewers: self.reviewers.clone(),
            min_approvals: self.min_approvals,
            timeout: self.timeout,
            justification_required: self.justification_required,
            why,
        }
    }
}

/// `reviewers` (of an approval rule, grant rule or budget at `key`),
/// checked: someone must be able to approve, and no entry is empty.
pub(crate) fn reviewers(who: &RawWho, key: &str, errors: &mut Vec<PolicyError>) -> Reviewers {
    if who.groups.is_empty() && who.principals.is_empty() {
        errors.push(error(
            format!("{key}.reviewers"),
            "nobody could approve: give reviewers.groups or reviewers.principals",
        ));
    }
    for (field, values) in [
        ("groups", &who.groups),
        ("principals", &who.principals),
        ("issuers", &who.issuers),
    ] {
        if values.iter().any(String::is_empty) {
            errors.push(error(
                format!("{key}.reviewers.{field}"),
                format!("empty {field} entry"),
            ));
        }
    }
    Reviewers {
        groups: who.groups.clone(),
        principals: who.principals.clone(),
        issuers: who.issuers.clone(),
    }
}

/// `min_approvals` at `key`: 1 to 100, default 1.
pub(crate) fn quorum(min_approvals: Option<u32>, key: &str, errors: &mut Vec<PolicyError>) -> u32 {
    let min_approvals = min_approvals.unwrap_or(1);
    if !(1..=100).contains(&min_approvals) {
        errors.push(error(
            format!("{key}.min_approvals"),
            "must be between 1 and 100",
        ));
    }
    min_approvals
}

fn error(key: impl Into<String>, reason: impl Into<String>) -> PolicyError {
    PolicyError {
        key: key.into(),
        reason: reason.into(),
    }
}
