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
    /// Copies of every event for a SIEM, besides the store (which stays
    /// the record): `stdout`, `jsonl`, `syslog`, `http`.
    pub sinks: Vec<RawSink>,
}

/// One of `audit.sinks`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSink {
    /// `stdout`, `jsonl`, `syslog` or `http`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Names it in metrics and logs (default: its type and place in the
    /// list); letters, digits, `-` and `_`.
    pub name: Option<String>,
    /// Events that may wait for delivery before more are dropped (`10000`).
    pub queue: Option<usize>,
    /// jsonl: the file, rotated at `max_bytes` (`104857600`), keeping
    /// `keep` old ones (`5`).
    pub path: Option<std::path::PathBuf>,
    pub max_bytes: Option<u64>,
    pub keep: Option<usize>,
    /// syslog: `host:port`, over `udp` (default) or `tcp`.
    pub address: Option<String>,
    pub transport: Option<String>,
    /// syslog: APP-NAME (`sluice`) and facility (`10`, authpriv).
    pub app_name: Option<String>,
    pub facility: Option<u8>,
    /// http: the collector's URL, `json` (an array per batch) or
    /// `splunk_hec`.
    pub url: Option<String>,
    pub format: Option<String>,
    /// http: the environment variable holding the token (`Bearer` for
    /// json, `Splunk` for HEC).
    pub token_env: Option<String>,
    /// http: events per request (`100`), how long a batch waits to fill
    /// (`1s`), the request timeout (`10s`), retries before the batch is
    /// counted failed (`5`).
    pub batch_max: Option<usize>,
    pub flush_interval: Option<String>,
    pub timeout: Option<String>,
    pub max_retries: Option<u32>,
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
    pub sinks: Vec<sluice_sinks::SinkSpec>,
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
            sinks: Vec::new(),
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
        sinks: raw
            .sinks
            .iter()
            .enumerate()
            .map(|(i, sink)| sink_spec(i, sink))
            .collect::<Result<_, _>>()?,
    })
}

/// One sink, checked; an error names `audit.sinks[i].key`.
fn sink_spec(i: usize, raw: &RawSink) -> Result<sluice_sinks::SinkSpec, (String, String)> {
    use sluice_sinks::{HttpFormat, SinkKind, SyslogTransport};
    let key = |k: &str| format!("audit.sinks[{i}].{k}");
    let need = |k: &str, v: &Option<String>| {
        v.clone()
            .ok_or_else(|| (key(k), format!("a {} sink needs `{k}`", raw.kind)))
    };
    let duration = |k: &str, v: &Option<String>, default: Duration| match v {
        None => Ok(default),
        Some(text) => sluice_identity::parse_duration(text)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| (key(k), format!("{text:?} is not a duration such as 10s"))),
    };
    let kind = match raw.kind.as_str() {
        "stdout" => SinkKind::Stdout,
        "jsonl" => SinkKind::Jsonl {
            path: raw
                .path
                .clone()
                .ok_or_else(|| (key("path"), "a jsonl sink needs `path`".into()))?,
            max_bytes: raw.max_bytes.unwrap_or(100 << 20),
            keep: raw.keep.unwrap_or(5),
        },
        "syslog" => SinkKind::Syslog {
            address: need("address", &raw.address)?,
            transport: match raw.transport.as_deref() {
                None | Some("udp") => SyslogTransport::Udp,
                Some("tcp") => SyslogTransport::Tcp,
                Some(other) => {
                    return Err((key("transport"), format!("{other:?}: use udp or tcp")));
                }
            },
            app_name: raw.app_name.clone().unwrap_or_else(|| "sluice".into()),
            facility: raw.facility.unwrap_or(sluice_sinks::DEFAULT_FACILITY),
            hostname: hostname(),
        },
        "http" => SinkKind::Http {
            url: need("url", &raw.url)?,
            format: match raw.format.as_deref() {
                None | Some("json") => HttpFormat::Json,
                Some("splunk_hec") => HttpFormat::SplunkHec,
                Some(other) => {
                    return Err((key("format"), format!("{other:?}: use json or splunk_hec")));
                }
            },
            token: match &raw.token_env {
                None => None,
                Some(var) => Some(sluice_sinks::Secret::new(std::env::var(var).map_err(
                    |_| {
                        (
                            key("token_env"),
                            format!("the environment variable {var} is not set"),
                        )
                    },
                )?)),
            },
            batch_max: raw.batch_max.unwrap_or(100),
            flush_interval: duration(
                "flush_interval",
                &raw.flush_interval,
                Duration::from_secs(1),
            )?,
            timeout: duration("timeout", &raw.timeout, Duration::from_secs(10))?,
            max_retries: raw.max_retries.unwrap_or(5),
        },
        other => {
            return Err((
                key("type"),
                format!("{other:?}: use stdout, jsonl, syslog or http"),
            ));
        }
    };
    let name = raw
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{i}", raw.kind));
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err((
            key("name"),
            "use 1 to 64 letters, digits, `-` and `_`".into(),
        ));
    }
    Ok(sluice_sinks::SinkSpec {
        name,
        queue: raw.queue.unwrap_or(10_000),
        kind,
    })
}

/// This machine's name, for syslog's HOSTNAME (`-` when unknown).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "-".into())
}
