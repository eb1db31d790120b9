//! Grant rules: tables a principal may read only under a just-in-time
//! grant, which reviewers approve for a limited time. Validated from
//! [`RawGrant`]; the gateway keeps the grants themselves and hands the
//! active ones to [`crate::PolicySet::decide_in`] as
//! [`crate::Circumstances::grants`].

use std::time::Duration;

use sluice_sql::TableName;

use crate::approvals::DEFAULT_TIMEOUT;
use crate::decision::{ActiveGrant, Reviewers};
use crate::pattern::TablePattern;
use crate::policy_set::PolicyError;
use crate::raw::RawGrant;

/// How long a grant lasts when its rule sets no `max_duration`.
const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(3600);

/// The longest `max_duration` a rule may set: a week.
const LONGEST: Duration = Duration::from_secs(7 * 24 * 3600);

/// One validated grant rule.
#[derive(Debug, Clone)]
pub(crate) struct GrantRule {
    pub(crate) name: String,
    datasets: Vec<TablePattern>,
    tables: Vec<TablePattern>,
    reviewers: Reviewers,
    min_approvals: u32,
    timeout: Duration,
    max_duration: Duration,
}

/// What an access request under a grant rule waits for, and the longest
/// grant it may ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantNeed {
    /// The grant rule (`grants.<name>`).
    pub rule: String,
    /// The policy the rule belongs to.
    pub policy: String,
    /// Who may approve.
    pub reviewers: Reviewers,
    /// How many distinct reviewers must approve.
    pub min_approvals: u32,
    /// How long the request waits for them.
    pub timeout: Duration,
    /// The longest grant the rule allows.
    pub max_duration: Duration,
}

impl GrantRule {
    pub(crate) fn build(raw: &RawGrant, key: &str, errors: &mut Vec<PolicyError>) -> Self {
        let name = raw.name.trim();
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '.') {
            errors.push(error(
                format!("{key}.name"),
                "a grant rule needs a name without spaces or dots, such as `shop-access`",
            ));
        }
        let datasets = raw
            .datasets
            .iter()
            .enumerate()
            .filter_map(|(i, text)| {
                let key = format!("{key}.datasets[{i}]");
                if text.split('.').count() != 2 {
                    errors.push(error(key, format!("`{text}` is not project.dataset")));
                    return None;
                }
                TablePattern::parse(text)
                    .map_err(|reason| errors.push(error(key, reason)))
                    .ok()
            })
            .collect::<Vec<_>>();
        let tables = crate::policy_set::patterns(&raw.tables, &format!("{key}.tables"), errors);
        if datasets.is_empty()
            && tables.is_empty()
            && raw.datasets.is_empty()
            && raw.tables.is_empty()
        {
            errors.push(error(
                key.to_owned(),
                "a grant rule must name the datasets or tables a grant may cover",
            ));
        }
        let reviewers = crate::approvals::reviewers(&raw.reviewers, key, errors);
        let min_approvals = crate::approvals::quorum(raw.min_approvals, key, errors);
        let timeout = bounded(
            raw.timeout.as_deref(),
            DEFAULT_TIMEOUT,
            Duration::from_secs(24 * 3600),
            &format!("{key}.timeout"),
            "24h",
            errors,
        );
        let max_duration = bounded(
            raw.max_duration.as_deref(),
            DEFAULT_MAX_DURATION,
            LONGEST,
            &format!("{key}.max_duration"),
            "168h",
            errors,
        );
        Self {
            name: name.to_owned(),
            datasets,
            tables,
            reviewers,
            min_approvals,
            timeout,
            max_duration,
        }
    }

    /// Whether a grant under this rule could cover `table`.
    pub(crate) fn covers(&self, table: &TableName) -> bool {
        self.tables.iter().any(|p| p.matches_table(table))
            || self
                .datasets
                .iter()
                .any(|p| p.matches_dataset(&table.project, &table.dataset))
    }

    /// Whether a grant under this rule may be asked for `name`: a
    /// `project.dataset` or a `project.dataset.table`, written out.
    pub(crate) fn may_cover(&self, name: &str) -> bool {
        let parts: Vec<&str> = name.split('.').collect();
        match parts.as_slice() {
            [project, dataset] => self.datasets.iter().any(|p| {
                p.matches_whole_dataset(project, dataset) || p.matches_dataset(project, dataset)
            }),
            [project, dataset, table] => self.covers(&TableName::new(*project, *dataset, *table)),
            _ => false,
        }
    }

    /// What the rule's scope is, for messages: `demo.shop, demo.ops.logs`.
    pub(crate) fn scope(&self) -> String {
        self.datasets
            .iter()
            .chain(&self.tables)
            .map(TablePattern::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn reviewers(&self) -> &Reviewers {
        &self.reviewers
    }

    pub(crate) fn need(&self, policy: &str) -> GrantNeed {
        GrantNeed {
            rule: self.name.clone(),
            policy: policy.to_owned(),
            reviewers: self.reviewers.clone(),
            min_approvals: self.min_approvals,
            timeout: self.timeout,
            max_duration: self.max_duration,
        }
    }
}

impl ActiveGrant {
    /// Whether this grant names `table` (its dataset, or the table itself).
    pub(crate) fn names(&self, table: &TableName) -> bool {
        let dataset = format!("{}.{}", table.project, table.dataset);
        self.datasets.contains(&dataset) || self.tables.iter().any(|t| *t == table.to_string())
    }
}

fn bounded(
    text: Option<&str>,
    default: Duration,
    longest: Duration,
    key: &str,
    longest_text: &str,
    errors: &mut Vec<PolicyError>,
) -> Duration {
    let Some(text) = text else {
        return default;
    };
    match crate::policy_set::duration(text).filter(|d| *d <= longest) {
        Some(duration) => duration,
        None => {
            errors.push(error(
                key.to_owned(),
                format!("\"{text}\" is not a duration: write a whole number of seconds, minutes or hours, such as 90s, 30m or 8h (at most {longest_text})"),
            ));
            default
        }
    }
}

fn error(key: impl Into<String>, reason: impl Into<String>) -> PolicyError {
    PolicyError {
        key: key.into(),
        reason: reason.into(),
    }
}
