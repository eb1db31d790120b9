//! Configuration in two steps: a raw, serde-shaped form read from YAML
//! (unknown keys are errors, so typos are caught), then the validated
//! [`Config`] the gateway runs on. Every error names the file and key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A configuration problem, naming where it is.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub reason: String,
}

/// The configuration file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// Address to listen on; `127.0.0.1:9050` by default.
    pub listen: Option<String>,
    /// Where Sluice keeps its state; `./sluice-data` by default.
    pub data_dir: Option<PathBuf>,
    /// The store: `sqlite:PATH`; `<data_dir>/sluice.db` by default.
    pub store: Option<String>,
    pub warehouse: RawWarehouse,
    pub limits: RawLimits,
}

/// `warehouse:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawWarehouse {
    /// `embedded` (the only kind so far).
    pub kind: Option<String>,
    /// The embedded warehouse's tables; `<data_dir>/warehouse` by default.
    pub data_dir: Option<PathBuf>,
    /// Generate the demo data set into `data_dir` when it is missing.
    pub demo_data: Option<bool>,
    /// The location datasets and jobs report; `US` by default.
    pub location: Option<String>,
}

/// `limits:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLimits {
    /// Largest request body accepted (bytes); larger ones get 413.
    pub max_body_bytes: Option<usize>,
    /// Longest a single jobs.query or getQueryResults call is held
    /// waiting for a job (milliseconds); clients poll again after it.
    pub max_hold_ms: Option<u64>,
    /// Most rows in one page of results.
    pub page_max_rows: Option<usize>,
    /// About the most row bytes in one page of results.
    pub page_max_bytes: Option<usize>,
    /// Queries the warehouse runs at once.
    pub max_concurrent_queries: Option<usize>,
    /// Memory the embedded warehouse's running queries may hold together.
    pub query_memory_bytes: Option<usize>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub store_path: PathBuf,
    pub warehouse_dir: PathBuf,
    pub demo_data: bool,
    pub location: String,
    pub max_body_bytes: usize,
    pub max_hold: Duration,
    pub page_max_rows: usize,
    pub page_max_bytes: usize,
    pub max_concurrent_queries: usize,
    pub query_memory_bytes: usize,
    /// `http://host:port`, for `selfLink`s; set once the listener is bound.
    pub base_url: String,
}

impl Config {
    /// The demo: everything under `./sluice-data`, demo data generated.
    pub fn demo() -> Self {
        Self::validate(RawConfig::default(), "<built-in demo configuration>")
            .expect("the built-in configuration is valid")
    }

    /// Reads and validates a YAML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            key: "(file)".into(),
            reason: e.to_string(),
        })?;
        let raw: RawConfig = serde_saphyr::from_str(&text).map_err(|e| ConfigError {
            file: file.clone(),
            key: "(syntax)".into(),
            reason: e.to_string(),
        })?;
        Self::validate(raw, &file)
    }

    pub fn validate(raw: RawConfig, file: &str) -> Result<Self, ConfigError> {
        let error = |key: &str, reason: String| ConfigError {
            file: file.to_string(),
            key: key.to_string(),
            reason,
        };
        let listen_text = raw.listen.unwrap_or_else(|| "127.0.0.1:9050".into());
        let listen: SocketAddr = listen_text.parse().map_err(|e| {
            error(
                "listen",
                format!("\"{listen_text}\" is not an address:port ({e})"),
            )
        })?;
        let data_dir = raw.data_dir.unwrap_or_else(|| PathBuf::from("sluice-data"));
        let store_path = match raw.store {
            None => data_dir.join("sluice.db"),
            Some(url) => match url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
            {
                Some(path) if !path.is_empty() => PathBuf::from(path),
                _ => {
                    return Err(error(
                        "store",
                        format!("\"{url}\" is not a store URL Sluice supports (use sqlite:PATH)"),
                    ));
                }
            },
        };
        match raw.warehouse.kind.as_deref() {
            None | Some("embedded") => {}
            Some(other) => {
                return Err(error(
                    "warehouse.kind",
                    format!("unknown kind \"{other}\" (supported: embedded)"),
                ));
            }
        }
        let warehouse_dir = raw
            .warehouse
            .data_dir
            .unwrap_or_else(|| data_dir.join("warehouse"));
        let limits = raw.limits;
        let positive = |key: &str, value: Option<usize>, default: usize| match value {
            Some(0) => Err(error(key, "must be greater than 0".into())),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let max_hold_ms = limits.max_hold_ms.unwrap_or(10_000);
        if max_hold_ms > 30_000 {
            return Err(error(
                "limits.max_hold_ms",
                "must be at most 30000: clients time out requests held longer".into(),
            ));
        }
        Ok(Self {
            listen,
            store_path,
            warehouse_dir,
            demo_data: raw.warehouse.demo_data.unwrap_or(true),
            location: raw.warehouse.location.unwrap_or_else(|| "US".into()),
            max_body_bytes: positive("limits.max_body_bytes", limits.max_body_bytes, 10 << 20)?,
            max_hold: Duration::from_millis(max_hold_ms),
            page_max_rows: positive("limits.page_max_rows", limits.page_max_rows, 100_000)?,
            page_max_bytes: positive("limits.page_max_bytes", limits.page_max_bytes, 10 << 20)?,
            max_concurrent_queries: positive(
                "limits.max_concurrent_queries",
                limits.max_concurrent_queries,
                4,
            )?,
            query_memory_bytes: positive(
                "limits.query_memory_bytes",
                limits.query_memory_bytes,
                2 << 30,
            )?,
            base_url: format!("http://{listen}"),
            data_dir,
        })
    }

    /// How long to hold a call that asked to wait `timeout_ms` (BigQuery's
    /// default is 10 s), never longer than `max_hold`.
    pub fn hold(&self, timeout_ms: Option<u32>) -> Duration {
        let asked = Duration::from_millis(u64::from(timeout_ms.unwrap_or(10_000)));
        asked.min(self.max_hold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = serde_saphyr::from_str(yaml).map_err(|e| ConfigError {
            file: "t.yaml".into(),
            key: "(syntax)".into(),
            reason: e.to_string(),
        })?;
        Config::validate(raw, "t.yaml")
    }

    #[test]
    fn defaults_are_the_demo() {
        let config = parse("{}").unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:9050");
        assert_eq!(config.store_path, PathBuf::from("sluice-data/sluice.db"));
        assert!(config.demo_data);
        assert_eq!(config.hold(None), Duration::from_secs(10));
        assert_eq!(config.hold(Some(200)), Duration::from_millis(200));
    }

    #[test]
    fn typos_and_bad_values_name_their_key() {
        let err = parse("listn: 1").unwrap_err();
        assert!(err.reason.contains("listn"), "{err}");
        let err = parse("listen: nowhere").unwrap_err();
        assert_eq!(err.key, "listen");
        let err = parse("limits:\n  page_max_rows: 0").unwrap_err();
        assert_eq!(err.key, "limits.page_max_rows");
        let err = parse("warehouse:\n  kind: oracle").unwrap_err();
        assert_eq!(err.key, "warehouse.kind");
        let err = parse("store: mysql://x").unwrap_err();
        assert_eq!(err.key, "store");
    }
}
