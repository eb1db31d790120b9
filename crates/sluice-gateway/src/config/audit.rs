//! `audit:`: the audit log's checkpoints, retention, recorded pages and
//! sinks (`docs/operations.md`).

use std::time::Duration;

use serde::Deserialize;

/// `audit:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAudit {
    /// Write the audit log (`true`). Off only to measure what it costs:
    /// queries then run with no write-ahead record, and Sluice says so at
    /// start.
    pub enabled: Option<bool>,
    /// How often the chain's head is signed (`60s`).
    pub checkpoint_interval: Option<String>,
    /// How long events and recorded pages are kept (none: forever), e.g.
    /// `90d`. Events go only up to a signed checkpoint, so the rest still
    /// verifies.
    pub retention: Option<String>,
    /// Record the rows each request returned, as the agent received them
    /// (`true`), for `sluice sessions replay`.
    pub record_pages: Option<bool>,
    /// Larger pages are not recorded, only their SHA-256 and size
    /// (`1048576`).
    pub max_recorded_page_bytes: Option<usize>,
    /// Who may read the log through `/sluice/v1/audit` (nobody unless
    /// named).
    pub readers: RawReaders,
}

/// `audit.readers`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawReaders {
    pub groups: Vec<String>,
    /// Principal names (globs).
    pub principals: Vec<String>,
}

/// The validated `audit:`.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub enabled: bool,
    pub checkpoint_interval: Duration,
    pub retention: Option<Duration>,
    pub record_pages: bool,
    pub max_recorded_page_bytes: usize,
    pub readers: sluice_policy::Reviewers,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            checkpoint_interval: Duration::from_secs(60),
            retention: None,
            record_pages: true,
            max_recorded_page_bytes: 1 << 20,
            readers: sluice_policy::Reviewers::default(),
        }
    }
}

/// Checks `audit:`; an error names its key.
pub fn validate(raw: &RawAudit) -> Result<AuditConfig, (String, String)> {
    let defaults = AuditConfig::default();
    let duration =
        |key: &str, text: &str, least: Duration| match sluice_identity::parse_duration(text) {
            Ok(d) if d >= least => Ok(d),
            Ok(_) => Err((
                format!("audit.{key}"),
                format!("must be at least {}ms", least.as_millis()),
            )),
            Err(reason) => Err((format!("audit.{key}"), reason)),
        };
    Ok(AuditConfig {
        enabled: raw.enabled.unwrap_or(defaults.enabled),
        checkpoint_interval: match &raw.checkpoint_interval {
            Some(text) => duration("checkpoint_interval", text, Duration::from_millis(100))?,
            None => defaults.checkpoint_interval,
        },
        retention: match &raw.retention {
            Some(text) => Some(duration("retention", text, Duration::from_secs(3600))?),
            None => None,
        },
        record_pages: raw.record_pages.unwrap_or(defaults.record_pages),
        max_recorded_page_bytes: raw
            .max_recorded_page_bytes
            .unwrap_or(defaults.max_recorded_page_bytes),
        readers: sluice_policy::Reviewers {
            groups: raw.readers.groups.clone(),
            principals: raw.readers.principals.clone(),
            issuers: Vec::new(),
        },
    })
}
