//! Just-in-time grants and budget use.

/// A grant: reviewers approved an access request of `holder` for the
/// datasets and tables it names, from `start_ms` until `expire_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// The access request's id (`acc_…`).
    pub id: String,
    /// Who holds it (`issuer#subject`).
    pub holder: String,
    /// The holder's display name.
    pub principal: String,
    /// The grant rule it was requested under.
    pub rule: String,
    /// `project.dataset` names.
    pub datasets: Vec<String>,
    /// `project.dataset.table` names.
    pub tables: Vec<String>,
    /// The requester's justification.
    pub reason: String,
    /// Who approved it (the reviewer whose vote reached the quorum).
    pub approved_by: String,
    pub start_ms: i64,
    pub expire_ms: i64,
    pub revoked_ms: Option<i64>,
    pub revoked_by: Option<String>,
}

impl GrantRecord {
    /// In force at `now_ms`: started, not expired, not revoked.
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.revoked_ms.is_none() && self.start_ms <= now_ms && now_ms < self.expire_ms
    }
}

/// What a finished job adds to one budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageAdd {
    pub budget: String,
    pub key: String,
    pub period: String,
    pub bytes: u64,
    pub rows: u64,
}

/// What one budget has counted for one key in one period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub rows: u64,
}
