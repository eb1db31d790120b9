//! The approval record: a query held for a human reviewer, and the votes
//! cast on it.

use serde_json::Value;

/// Where an approval request stands. It leaves PENDING once, and only a
/// PENDING request takes votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalState {
    /// Waiting for reviewers; its job waits with it.
    Pending,
    /// Enough reviewers approved; the job may run.
    Approved,
    /// A reviewer denied it; the job ends refused.
    Denied,
    /// Nobody decided before `expire_ms`; the job ends refused.
    Expired,
    /// The requester gave up waiting (cancelled the job).
    Withdrawn,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Approved => "APPROVED",
            Self::Denied => "DENIED",
            Self::Expired => "EXPIRED",
            Self::Withdrawn => "WITHDRAWN",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(Self::Pending),
            "APPROVED" => Some(Self::Approved),
            "DENIED" => Some(Self::Denied),
            "EXPIRED" => Some(Self::Expired),
            "WITHDRAWN" => Some(Self::Withdrawn),
            _ => None,
        }
    }
}

/// One approval request: the job it holds, who asked, who may decide, and
/// how it was decided. `details` is kept as the JSON the gateway shows a
/// reviewer, so the store needs no knowledge of queries or policies.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRecord {
    /// The request's id (`apr_…`), made by the caller.
    pub id: String,
    pub project_id: String,
    /// The PENDING job that waits for this request; one request per job.
    pub job_id: String,
    /// The requester's display name.
    pub principal: String,
    /// The requester's identity (`issuer#subject`); nobody with it may vote.
    pub requester: String,
    pub state: ApprovalState,
    /// The approval rule that asked for review.
    pub rule: String,
    /// Who may vote, as the rule configured them.
    pub reviewers: Vec<String>,
    /// How many approving votes approve the request.
    pub min_approvals: u32,
    /// Whether every vote must give a reason.
    pub justification_required: bool,
    /// What a reviewer sees (the SQL, the estimate, limits, CI claims, why
    /// review was asked); opaque to the store.
    pub details: Value,
    pub created_ms: i64,
    /// When a request still PENDING expires.
    pub expire_ms: i64,
    pub closed_ms: Option<i64>,
    /// Who or what closed it: a reviewer's name, `timeout`, the requester.
    pub closed_by: Option<String>,
    /// Why it closed.
    pub reason: Option<String>,
    /// The votes cast, by `at_ms` then `voter_id`. Reads fill it; inserting
    /// a record ignores it (votes come one by one through `add_vote`).
    pub votes: Vec<Vote>,
}

/// One reviewer's vote on an approval request.
#[derive(Debug, Clone, PartialEq)]
pub struct Vote {
    /// The reviewer's display name.
    pub voter: String,
    /// The reviewer's identity (`issuer#subject`); one vote each.
    pub voter_id: String,
    /// Approves when true, denies when false.
    pub approve: bool,
    /// The reviewer's justification (empty when none was given).
    pub reason: String,
    pub at_ms: i64,
}
