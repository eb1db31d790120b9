//! Why a token could not be minted or revoked, in words safe to show the
//! caller and to log.

/// A failed token flow.
///
/// `message` names the step that failed and what to do next. It may quote
/// Google's own error text but never holds a token, an assertion or key
/// material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CredentialError {
    /// How the gateway answers the failure.
    pub kind: CredentialErrorKind,
    /// What failed and what the user can do next.
    pub message: String,
}

/// The class of a [`CredentialError`], which decides the gateway's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialErrorKind {
    /// Google refused (4xx: `invalid_grant`, `PERMISSION_DENIED`, an expired
    /// or disabled key): the gateway answers 403.
    Refused,
    /// The token service could not be reached, timed out or failed (5xx, 429)
    /// after retries: the gateway answers 503.
    Unavailable,
    /// The configuration or the key file is wrong.
    Invalid,
}

impl CredentialError {
    pub(crate) fn refused(message: impl Into<String>) -> Self {
        Self::new(CredentialErrorKind::Refused, message)
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(CredentialErrorKind::Unavailable, message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(CredentialErrorKind::Invalid, message)
    }

    fn new(kind: CredentialErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}
