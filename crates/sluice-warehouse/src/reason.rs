//! BigQuery's error reasons and the one table that maps a reason to the
//! HTTP status BigQuery answers it with. Warehouse errors, jobs' recorded
//! `errorResult`s and upstream answers all take their status from here.

/// BigQuery's documented error reasons. A reason from upstream is passed on
/// only if it is one of these.
const KNOWN_REASONS: &[&str] = &[
    "accessDenied",
    "backendError",
    "badRequest",
    "billingNotEnabled",
    "billingTierLimitExceeded",
    "blocked",
    "bytesBilledLimitExceeded",
    "duplicate",
    "internalError",
    "invalid",
    "invalidQuery",
    "invalidUser",
    "jobBackendError",
    "jobInternalError",
    "jobRateLimitExceeded",
    "notFound",
    "notImplemented",
    "quotaExceeded",
    "rateLimitExceeded",
    "resourceInUse",
    "resourcesExceeded",
    "responseTooLarge",
    "stopped",
    "tableUnavailable",
    "timeout",
];

/// The reason as one of the known `'static` names.
pub fn known_reason(reason: &str) -> Option<&'static str> {
    KNOWN_REASONS.iter().copied().find(|known| *known == reason)
}

/// The HTTP status BigQuery answers a reason with.
pub fn reason_status(reason: &str) -> u16 {
    match reason {
        "notFound" => 404,
        "duplicate" => 409,
        "accessDenied" | "quotaExceeded" | "rateLimitExceeded" | "billingNotEnabled" => 403,
        "notImplemented" => 501,
        "backendError" | "internalError" => 500,
        _ => 400,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_reason_has_a_status_and_refusals_are_not_server_errors() {
        for reason in KNOWN_REASONS {
            let status = reason_status(reason);
            assert!((400..600).contains(&status), "{reason}: {status}");
        }
        for refusal in [
            "accessDenied",
            "invalidQuery",
            "notFound",
            "invalid",
            "stopped",
        ] {
            assert!(reason_status(refusal) < 500, "{refusal}");
        }
        assert_eq!(known_reason("accessDenied"), Some("accessDenied"));
        assert_eq!(known_reason("madeUp"), None);
    }
}
