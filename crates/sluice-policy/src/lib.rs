//! Sluice's policy model and decision engine: the `decide` phase of the
//! request pipeline (DESIGN.md §1, §4).
//!
//! Configuration comes in two steps: the serde-shaped [`RawPolicy`] and
//! [`RawGuardrails`] (syntax only, unknown keys rejected), then
//! [`PolicySet::build`], which validates everything and reports every
//! mistake with its key path. The set then decides, from plain data:
//!
//! - [`PolicySet::decide`]: may this principal run this SQL (its
//!   [`sluice_sql::QueryFacts`]), and with which [`Limits`]?
//! - [`PolicySet::decide_read`]: may it read this one table?
//! - [`PolicySet::may_see_dataset`], [`PolicySet::may_see_project`]: what
//!   the listing methods may show.
//! - [`PolicySet::may_run_jobs_in`]: may it run (and bill) a job in this
//!   project?
//!
//! A query may also need a reviewer first ([`Verdict::NeedsApproval`]): a
//! policy's `approvals` rules say when (bytes over a size, tables or
//! datasets touched, statement kinds, SQL not fully analyzed), who may
//! approve, how many must, and how long the query waits.
//!
//! Tables may be readable only under a just-in-time grant (`grants`
//! rules): reviewers approve an access request for a time, and while the
//! grant is in force the principal reads them without per-query review.
//! `budgets` cap the bytes billed and rows returned per principal per day,
//! or per CI run (keyed by token claims); over budget, a query is refused
//! (rule `budgets.<name>`) or sent to review. Grants in force, budget
//! figures and the time come in as [`Circumstances`].
//!
//! Each [`Decision`] names the policy and rule that decided, carries a
//! user-facing message saying what to do next, and a trace of every check
//! made (`sluice policy explain` prints it).
//!
//! # Matching
//!
//! A policy matches a principal ([`Who`]) when one of the principal's
//! groups is in `who.groups`, or its name matches a glob of
//! `who.principals` (`*` matches any run of characters; case-sensitive).
//! A policy with `who.issuers` matches only principals whose token one of
//! those issuers issued (compared exactly), so equal names from two
//! issuers are not interchangeable.
//!
//! # Table patterns
//!
//! `allow.read` and `allow.write` hold 1 to 4 dot-separated segments, each
//! a glob whose `*` stays within the segment. A pattern grants every table
//! under the prefix it names: `demo` is the whole project, `demo.shop` the
//! whole dataset (its `INFORMATION_SCHEMA` included), `demo.shop.*` every
//! table of the dataset. A segment with `*` never matches
//! `INFORMATION_SCHEMA` or a `region-…` qualifier: metadata must be granted
//! literally (`demo.region-us.INFORMATION_SCHEMA.TABLES`). Anonymous result
//! datasets (`demo._…`) and the `INFORMATION_SCHEMA.JOBS…` views are granted
//! only by a pattern that names them, never by a `*` or a shorter prefix
//! (`demo.region-us.INFORMATION_SCHEMA.JOBS`). Segments may hold letters,
//! digits, `_`, `-`, `$` and `*`.
//!
//! # Projects
//!
//! `projects` lists the project-id globs a policy's principals may run jobs
//! in, and so bill; without it, the first part of each `allow.read` and
//! `allow.write` pattern.
//!
//! # Routines
//!
//! `allow.routines` names the routines a principal may call: persistent
//! functions, table functions and procedures as `project.dataset.routine`,
//! and built-ins billed outside the query's byte limit as `ML.FUNCTION`,
//! `AI.FUNCTION` or `OBJ.FUNCTION` (each segment a glob; no prefix form).
//! A call of any other routine is denied (rule `policies.allow.routines`).
//!
//! # Decision order
//!
//! Deny beats needs-approval beats allow, and what no policy allows is
//! denied; see
//! [`PolicySet::decide`] for the steps. Facts that analysis could not
//! complete never lead to an allow (DESIGN.md §5.2).
//!
//! The crate is pure: no I/O, no clock, no network ([`PolicySet::decide`]
//! reads the clock only to build [`Circumstances`] for callers that have
//! no grants or budgets to give).

mod approvals;
mod budgets;
mod bytes;
mod calendar;
mod decide;
mod decision;
mod grants;
mod names;
mod pattern;
mod policy_set;
mod raw;
mod routines;

pub use approvals::DEFAULT_TIMEOUT as DEFAULT_APPROVAL_TIMEOUT;
pub use budgets::BudgetKey;
pub use bytes::{human_bytes, parse_byte_size};
pub use decision::{
    ActiveGrant, ApprovalNeed, Circumstances, Decision, Estimate, Limits, Reviewers, Rule, Spent,
    TraceStep, Verdict, Who,
};
pub use grants::GrantNeed;
pub use names::{guardrail_names, statement_names};
pub use policy_set::{PolicyError, PolicySet};
pub use raw::{
    RawAllow, RawApproval, RawBudget, RawByteSize, RawGrant, RawGuardrails, RawLimits, RawPolicy,
    RawWhen, RawWho,
};
pub use sluice_glob::glob_match;

#[cfg(test)]
mod tests;
