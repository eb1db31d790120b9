//! The plain-data inputs and result of a decision: [`Who`], [`Estimate`],
//! [`Decision`] and its parts.

use std::fmt;

use crate::bytes::human_bytes;

/// The principal a decision is made for.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    /// The principal's name (e.g. the token subject), matched by
    /// `who.principals` globs.
    pub name: &'a str,
    /// The principal's groups, matched by `who.groups`.
    pub groups: &'a [String],
    /// The issuer of the principal's token (its `iss`), matched exactly by
    /// `who.issuers`. Empty for no issuer: such a principal matches only
    /// policies without `who.issuers`.
    pub issuer: &'a str,
}

/// The dry run's estimate of a query.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    /// Bytes the query would process (and bill).
    pub bytes_processed: u64,
}

/// What a decision depends on besides the principal and the SQL: the time,
/// the principal's active just-in-time grants, and what its budgets have
/// spent. The gateway reads them (the clock, the store); the policy crate
/// only decides from them, so a decision can be replayed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Circumstances {
    /// Now, in milliseconds since the Unix epoch (UTC).
    pub now_ms: i64,
    /// The principal's grants that have not expired or been revoked.
    pub grants: Vec<ActiveGrant>,
    /// What each of the principal's budgets has spent in its current
    /// period, by budget name; a budget missing here has spent nothing.
    pub spent: Vec<Spent>,
}

impl Circumstances {
    /// Now, with no grants and nothing spent.
    pub fn at(now_ms: i64) -> Self {
        Self {
            now_ms,
            ..Self::default()
        }
    }

    /// What `budget` has spent (nothing when the gateway gave no figure).
    pub(crate) fn spent(&self, budget: &str) -> Spent {
        self.spent
            .iter()
            .find(|s| s.budget == budget)
            .cloned()
            .unwrap_or_else(|| Spent {
                budget: budget.to_owned(),
                ..Spent::default()
            })
    }
}

/// A just-in-time grant in force: reviewers approved an access request of
/// the principal, under grant rule `rule`, for `datasets` and `tables`,
/// until `expire_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveGrant {
    /// The grant's id (the access request's, `acc_…`).
    pub id: String,
    /// The grant rule it was requested under.
    pub rule: String,
    /// `project.dataset` names the grant covers (every table in them).
    pub datasets: Vec<String>,
    /// `project.dataset.table` names the grant covers.
    pub tables: Vec<String>,
    /// When it ends, in milliseconds since the Unix epoch.
    pub expire_ms: i64,
}

/// What one budget has spent in its current period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spent {
    /// The budget's name.
    pub budget: String,
    /// Bytes billed by the jobs counted so far.
    pub bytes: u64,
    /// Result rows of the jobs counted so far.
    pub rows: u64,
}

/// Allow, deny, or ask a reviewer first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The request may proceed, within [`Decision::limits`].
    Allow,
    /// The request may proceed within [`Decision::limits`] once reviewers
    /// approve it ([`Decision::approval`] says who and how many).
    NeedsApproval,
    /// The request is refused; [`Decision::message`] says why.
    Deny,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Allow => "allow",
            Self::NeedsApproval => "needs approval",
            Self::Deny => "deny",
        })
    }
}

/// Who may approve a request: a principal in one of `groups`, or whose
/// name matches one of the `principals` globs, and (when `issuers` is
/// set) whose token one of those issuers issued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reviewers {
    pub groups: Vec<String>,
    pub principals: Vec<String>,
    pub issuers: Vec<String>,
}

impl Reviewers {
    /// Whether `who` may vote on a request this rule opened. It says
    /// nothing about self-approval: the caller compares the requester.
    pub fn admit(&self, who: &Who<'_>) -> bool {
        (self.issuers.is_empty() || self.issuers.iter().any(|i| i == who.issuer))
            && (who.groups.iter().any(|g| self.groups.contains(g))
                || self
                    .principals
                    .iter()
                    .any(|p| sluice_glob::glob_match(p, who.name)))
    }
}

impl fmt::Display for Reviewers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.groups.clone();
        parts.extend(self.principals.iter().map(|p| format!("principal {p}")));
        f.write_str(&parts.join(", "))?;
        if !self.issuers.is_empty() {
            write!(f, " (tokens of {})", self.issuers.join(", "))?;
        }
        Ok(())
    }
}

/// What a [`Verdict::NeedsApproval`] waits for: the approval rule that
/// asked, whom it asks, how many must approve, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalNeed {
    /// The rule's name (`approvals.<name>` in refusals and traces).
    pub rule: String,
    /// The policy the rule belongs to.
    pub policy: String,
    /// Who may approve.
    pub reviewers: Reviewers,
    /// How many distinct reviewers must approve.
    pub min_approvals: u32,
    /// How long the request waits before it is refused.
    pub timeout: std::time::Duration,
    /// Whether each approval must give a reason.
    pub justification_required: bool,
    /// Why the rule asked, in words (`estimated 14.2 GiB, over 10 MiB`).
    pub why: String,
}

/// The rule that made a decision. Its [`fmt::Display`] form is the name
/// refusals quote (`guardrails.deny.drop`, `policies.allow.read`, …), so a
/// user can find the rule in the configuration from the message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Rule {
    /// A guardrail, or an entry of a policy's deny list, by its name:
    /// `guardrails.deny.<name>`.
    Guardrail(String),
    /// No policy matches the principal: `default-deny`.
    DefaultDeny,
    /// The SQL could not be fully analyzed: `analysis.incomplete`.
    AnalysisIncomplete,
    /// A statement kind no matching policy allows:
    /// `policies.allow.statements`.
    Statements,
    /// A table no matching policy lets the principal read:
    /// `policies.allow.read`.
    Read,
    /// A table or dataset no matching policy lets it write:
    /// `policies.allow.write`.
    Write,
    /// A routine no matching policy names: `policies.allow.routines`.
    Routines,
    /// The estimate is above a policy's byte limit:
    /// `limits.max_bytes_billed`.
    MaxBytesBilled,
    /// An approval rule of a policy asks a reviewer first:
    /// `approvals.<name>`.
    Approval(String),
    /// A table readable only under a just-in-time grant, and the
    /// principal has none in force: `grants.<name>`.
    Grant(String),
    /// A budget is spent (refused with `quotaExceeded`, or sent to
    /// review): `budgets.<name>`.
    Budget(String),
    /// Every check passed: `allow`.
    Allow,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Guardrail(name) => write!(f, "guardrails.deny.{name}"),
            Self::DefaultDeny => f.write_str("default-deny"),
            Self::AnalysisIncomplete => f.write_str("analysis.incomplete"),
            Self::Statements => f.write_str("policies.allow.statements"),
            Self::Read => f.write_str("policies.allow.read"),
            Self::Write => f.write_str("policies.allow.write"),
            Self::Routines => f.write_str("policies.allow.routines"),
            Self::MaxBytesBilled => f.write_str("limits.max_bytes_billed"),
            Self::Approval(name) => write!(f, "approvals.{name}"),
            Self::Grant(name) => write!(f, "grants.{name}"),
            Self::Budget(name) => write!(f, "budgets.{name}"),
            Self::Allow => f.write_str("allow"),
        }
    }
}

/// Limits that apply to an allowed query; `None` means no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes the query may bill (`maximumBytesBilled`).
    pub max_bytes_billed: Option<u64>,
    /// Most rows the query may return.
    pub max_rows: Option<u64>,
    /// Longest the job may run (`jobTimeoutMs` upstream).
    pub max_duration: Option<std::time::Duration>,
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self
            .max_bytes_billed
            .map_or_else(|| "none".to_owned(), human_bytes);
        let rows = self
            .max_rows
            .map_or_else(|| "none".to_owned(), |rows| rows.to_string());
        let duration = self
            .max_duration
            .map_or_else(|| "none".to_owned(), |d| format!("{}s", d.as_secs()));
        write!(
            f,
            "max_bytes_billed {bytes}, max_rows {rows}, max_duration {duration}"
        )
    }
}

/// One check made during a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceStep {
    /// The policy the check belongs to: a policy name, `guardrails`,
    /// `analysis`, `default`, or several policy names joined by `, `.
    pub policy: String,
    /// The rule checked (`guardrails.deny.drop`,
    /// `policies.agents-read.allow.read`, …).
    pub rule: String,
    /// `match`, `no match`, `allow`, `deny`, `review` or `skip`.
    pub outcome: String,
    /// What was checked against what.
    pub detail: String,
}

impl TraceStep {
    pub(crate) fn new(
        policy: impl Into<String>,
        rule: impl Into<String>,
        outcome: &str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            policy: policy.into(),
            rule: rule.into(),
            outcome: outcome.to_owned(),
            detail: detail.into(),
        }
    }
}

/// The outcome of [`crate::PolicySet::decide`] or
/// [`crate::PolicySet::decide_read`].
#[derive(Debug, Clone)]
pub struct Decision {
    /// Allow, deny, or ask a reviewer.
    pub verdict: Verdict,
    /// What decided: a policy name (several joined by `, ` when the
    /// matching policies decided together), `guardrails`, `analysis`
    /// (incomplete facts) or `default` (no policy matches).
    pub policy: String,
    /// The rule that decided.
    pub rule: Rule,
    /// For a deny, the user-facing explanation: the policy and rule, the
    /// offending statement or table, why, and what to do next. For an
    /// allow, a one-line summary.
    pub message: String,
    /// The effective limits (meaningful for an allow, and for a request
    /// that needs approval: what the reviewers approve).
    pub limits: Limits,
    /// For [`Verdict::NeedsApproval`]: what the request waits for.
    pub approval: Option<ApprovalNeed>,
    /// Every check made, in order.
    pub trace: Vec<TraceStep>,
}

impl Decision {
    /// True for [`Verdict::Allow`].
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    /// True for [`Verdict::Deny`]: an allow or a request for review is not.
    pub fn is_denied(&self) -> bool {
        self.verdict == Verdict::Deny
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "verdict: {}", self.verdict)?;
        writeln!(f, "policy:  {}", self.policy)?;
        writeln!(f, "rule:    {}", self.rule)?;
        writeln!(f, "message: {}", self.message)?;
        if !self.is_denied() {
            writeln!(f, "limits:  {}", self.limits)?;
        }
        if let Some(need) = &self.approval {
            writeln!(
                f,
                "review:  {} of {} within {}s{}",
                need.min_approvals,
                need.reviewers,
                need.timeout.as_secs(),
                if need.justification_required {
                    ", each with a reason"
                } else {
                    ""
                }
            )?;
        }
        write!(f, "trace:")?;
        for (index, step) in self.trace.iter().enumerate() {
            write!(
                f,
                "\n  {:>2}. {:<8} {} [{}]: {}",
                index + 1,
                step.outcome,
                step.rule,
                step.policy,
                step.detail
            )?;
        }
        Ok(())
    }
}
