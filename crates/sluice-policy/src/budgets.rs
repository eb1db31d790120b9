//! Budgets: the bytes and rows a principal, or a CI run, may spend in a
//! period. Validated from [`RawBudget`]; the gateway counts what finished
//! jobs billed and hands the current figures to
//! [`crate::PolicySet::decide_in`] as [`crate::Circumstances::spent`].

use std::time::Duration;

use crate::approvals::DEFAULT_TIMEOUT;
use crate::bytes::human_bytes;
use crate::decision::{Estimate, Reviewers, Spent};
use crate::policy_set::PolicyError;
use crate::raw::RawBudget;

/// How one budget is keyed and counted, for the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetKey {
    /// The budget's name.
    pub name: String,
    /// Token claims whose values key it; empty: the principal.
    pub per: Vec<String>,
    /// True: it resets at 00:00 UTC; false: it never resets.
    pub daily: bool,
}

/// What a query over budget gets.
#[derive(Debug, Clone)]
pub(crate) enum Over {
    Refuse,
    Review {
        reviewers: Reviewers,
        timeout: Duration,
    },
}

/// One validated budget.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    pub(crate) name: String,
    per: Vec<String>,
    bytes: Option<u64>,
    rows: Option<u64>,
    daily: bool,
    pub(crate) over: Over,
}

impl Budget {
    pub(crate) fn build(raw: &RawBudget, key: &str, errors: &mut Vec<PolicyError>) -> Self {
        let name = raw.name.trim();
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '.') {
            errors.push(error(
                format!("{key}.name"),
                "a budget needs a name without spaces or dots, such as `daily-bytes`",
            ));
        }
        for (i, claim) in raw.per.iter().enumerate() {
            if claim.trim().is_empty() {
                errors.push(error(format!("{key}.per[{i}]"), "empty claim name"));
            }
        }
        let bytes = raw.bytes.as_ref().and_then(|size| match size.bytes() {
            Ok(0) => {
                errors.push(error(format!("{key}.bytes"), "must be greater than zero"));
                None
            }
            Ok(bytes) => Some(bytes),
            Err(reason) => {
                errors.push(error(format!("{key}.bytes"), reason));
                None
            }
        });
        if raw.rows == Some(0) {
            errors.push(error(format!("{key}.rows"), "must be greater than zero"));
        }
        if raw.bytes.is_none() && raw.rows.is_none() {
            errors.push(error(
                key.to_owned(),
                "a budget limits `bytes`, `rows` or both: give at least one",
            ));
        }
        let daily = match raw.period.as_deref().map(str::trim) {
            None | Some("day") => true,
            Some("none") => false,
            Some(other) => {
                errors.push(error(
                    format!("{key}.period"),
                    format!(
                        "`{other}` is not a period: write `day` (resets at 00:00 UTC) or `none`"
                    ),
                ));
                true
            }
        };
        let over = match raw.over.as_deref().map(str::trim) {
            None | Some("refuse") => Over::Refuse,
            Some("review") => {
                let who = &raw.reviewers;
                if who.groups.is_empty() && who.principals.is_empty() {
                    errors.push(error(
                        format!("{key}.reviewers"),
                        "`over: review` needs reviewers.groups or reviewers.principals",
                    ));
                }
                let timeout = match raw.timeout.as_deref() {
                    None => DEFAULT_TIMEOUT,
                    Some(text) => crate::policy_set::duration(text)
                        .filter(|d| d.as_secs() <= 24 * 3600)
                        .unwrap_or_else(|| {
                            errors.push(error(
                                format!("{key}.timeout"),
                                format!("\"{text}\" is not a timeout such as 15m (at most 24h)"),
                            ));
                            DEFAULT_TIMEOUT
                        }),
                };
                Over::Review {
                    reviewers: Reviewers {
                        groups: who.groups.clone(),
                        principals: who.principals.clone(),
                        issuers: who.issuers.clone(),
                    },
                    timeout,
                }
            }
            Some(other) => {
                errors.push(error(
                    format!("{key}.over"),
                    format!("`{other}` is not what to do over budget: write `refuse` or `review`"),
                ));
                Over::Refuse
            }
        };
        Self {
            name: name.to_owned(),
            per: raw.per.iter().map(|c| c.trim().to_owned()).collect(),
            bytes,
            rows: raw.rows,
            daily,
            over,
        }
    }

    pub(crate) fn key(&self) -> BudgetKey {
        BudgetKey {
            name: self.name.clone(),
            per: self.per.clone(),
            daily: self.daily,
        }
    }

    pub(crate) fn counts_bytes(&self) -> bool {
        self.bytes.is_some()
    }

    /// Why this budget is spent (with this query's estimate, when known),
    /// or `None` while there is room.
    pub(crate) fn exceeded(&self, spent: &Spent, estimate: Option<&Estimate>) -> Option<String> {
        if let Some(limit) = self.bytes {
            let planned = estimate.map_or(0, |e| e.bytes_processed);
            if spent.bytes >= limit || spent.bytes.saturating_add(planned) > limit {
                let with = if planned > 0 {
                    format!(", and this query is estimated at {}", human_bytes(planned))
                } else {
                    String::new()
                };
                return Some(format!(
                    "{} of {} billed {}{with}",
                    human_bytes(spent.bytes),
                    human_bytes(limit),
                    self.scope()
                ));
            }
        }
        if let Some(limit) = self.rows
            && spent.rows >= limit
        {
            return Some(format!(
                "{} of {limit} rows returned {}",
                spent.rows,
                self.scope()
            ));
        }
        None
    }

    /// `today (UTC) by this principal`, `by this CI run (repository, run_id)`.
    fn scope(&self) -> String {
        let when = if self.daily { "today (UTC) " } else { "" };
        if self.per.is_empty() {
            format!("{when}by this principal")
        } else {
            format!("{when}by this CI run ({})", self.per.join(", "))
        }
    }

    /// When the budget resets, in words, from `now_ms`.
    pub(crate) fn resets(&self, now_ms: i64) -> String {
        if !self.daily {
            return "It does not reset: it is spent for this run".to_owned();
        }
        let left = 86_400_000 - now_ms.rem_euclid(86_400_000);
        let minutes = left.div_euclid(60_000);
        format!(
            "It resets at 00:00 UTC, in {}h {:02}m",
            minutes / 60,
            minutes % 60
        )
    }
}

fn error(key: impl Into<String>, reason: impl Into<String>) -> PolicyError {
    PolicyError {
        key: key.into(),
        reason: reason.into(),
    }
}
