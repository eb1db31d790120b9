//! The warehouse's error type: what went wrong, in terms the gateway can
//! turn into BigQuery's error reasons without a second mapping table.

use std::fmt;

/// What kind of failure a warehouse reports. Each maps to one BigQuery
/// error `reason`, chosen so that the official clients never retry a
/// refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarehouseErrorKind {
    /// The SQL is wrong, or uses a construct this warehouse does not
    /// support (`invalidQuery`, 400).
    InvalidQuery,
    /// A request argument is wrong (`invalid`, 400).
    Invalid,
    /// A project, dataset, table or job does not exist (`notFound`, 404).
    NotFound,
    /// The query would process more bytes than `maximumBytesBilled`
    /// (`bytesBilledLimitExceeded`, 400).
    BytesBilledLimitExceeded,
    /// The job was cancelled (`stopped`).
    Stopped,
    /// The query needed more memory than the warehouse allows
    /// (`resourcesExceeded`, 400).
    ResourcesExceeded,
    /// The warehouse failed on its own (`internalError`, 500).
    Internal,
    /// The upstream warehouse could not be reached, or kept failing, within
    /// the retry deadline (`backendError`, 503: clients may try again).
    Unavailable,
    /// An upstream BigQuery error, passed on with its own `reason` and
    /// HTTP status.
    Upstream { reason: &'static str, status: u16 },
}

impl WarehouseErrorKind {
    /// BigQuery's `reason` string for this kind.
    pub fn reason(self) -> &'static str {
        match self {
            Self::InvalidQuery => "invalidQuery",
            Self::Invalid => "invalid",
            Self::NotFound => "notFound",
            Self::BytesBilledLimitExceeded => "bytesBilledLimitExceeded",
            Self::Stopped => "stopped",
            Self::ResourcesExceeded => "resourcesExceeded",
            Self::Internal => "internalError",
            Self::Unavailable => "backendError",
            Self::Upstream { reason, .. } => reason,
        }
    }

    /// The HTTP status this kind answers with: an upstream error's own,
    /// 503 for an unreachable upstream (clients try again later), else
    /// the status BigQuery gives the reason ([`crate::reason_status`]).
    pub fn status(self) -> u16 {
        match self {
            Self::Upstream { status, .. } => status,
            Self::Unavailable => 503,
            other => crate::reason_status(other.reason()),
        }
    }
}

/// A failure inside a warehouse, with a message fit for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct WarehouseError {
    pub kind: WarehouseErrorKind,
    pub message: String,
}

impl WarehouseError {
    pub fn new(kind: WarehouseErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid_query(message: impl Into<String>) -> Self {
        Self::new(WarehouseErrorKind::InvalidQuery, message)
    }

    /// A construct the warehouse does not support: always `invalidQuery`,
    /// naming the construct, never a silently wrong answer.
    pub fn unsupported(construct: impl fmt::Display) -> Self {
        Self::invalid_query(format!("{construct} is not supported by this warehouse"))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(WarehouseErrorKind::Invalid, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(WarehouseErrorKind::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(WarehouseErrorKind::Internal, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(WarehouseErrorKind::Unavailable, message)
    }
}

impl fmt::Display for WarehouseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
