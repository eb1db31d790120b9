//! `mcp:`: the Model Context Protocol server at `/mcp` (`docs/mcp.md`).

use std::time::Duration;

use serde::Deserialize;

/// `mcp:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMcp {
    /// Serve MCP at `/mcp` (`true` by default).
    pub enabled: Option<bool>,
    /// Most rows one tool call returns (`100`); the rest is paged.
    pub max_rows: Option<usize>,
    /// About the most bytes of rows one tool call returns (`65536`): an
    /// agent's context is small.
    pub max_result_bytes: Option<usize>,
    /// Tool calls one principal may make per minute, per replica (`120`).
    pub calls_per_minute: Option<usize>,
    /// How long `execute_sql` waits for a job before it answers with the
    /// job's state instead (`10s`, at most `limits.max_hold_ms`).
    pub wait: Option<String>,
    /// How long one `wait_for_approval` call may wait (`60s`, at most
    /// `5m`): an agent calls it again to wait longer.
    pub max_approval_wait: Option<String>,
}

/// The validated `mcp:`.
#[derive(Debug, Clone)]
pub struct McpConfig {
    pub enabled: bool,
    pub max_rows: usize,
    pub max_result_bytes: usize,
    pub calls_per_minute: usize,
    pub wait: Duration,
    pub max_approval_wait: Duration,
}

impl Default for McpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_rows: 100,
            max_result_bytes: 64 * 1024,
            calls_per_minute: 120,
            wait: Duration::from_secs(10),
            max_approval_wait: Duration::from_secs(60),
        }
    }
}

/// Checks `mcp:`; an error names its key.
pub fn validate(raw: &RawMcp, max_hold: Duration) -> Result<McpConfig, (String, String)> {
    let defaults = McpConfig::default();
    let positive = |key: &str, value: Option<usize>, default: usize, most: usize| match value {
        None => Ok(default),
        Some(n) if (1..=most).contains(&n) => Ok(n),
        Some(_) => Err((
            format!("mcp.{key}"),
            format!("must be between 1 and {most}"),
        )),
    };
    let duration = |key: &str, value: &Option<String>, default: Duration, most: Duration| {
        let Some(text) = value else {
            return Ok(default);
        };
        match sluice_identity::parse_duration(text) {
            Ok(d) if !d.is_zero() && d <= most => Ok(d),
            Ok(_) => Err((
                format!("mcp.{key}"),
                format!("must be more than 0s and at most {}ms", most.as_millis()),
            )),
            Err(reason) => Err((format!("mcp.{key}"), reason)),
        }
    };
    Ok(McpConfig {
        enabled: raw.enabled.unwrap_or(defaults.enabled),
        max_rows: positive("max_rows", raw.max_rows, defaults.max_rows, 10_000)?,
        max_result_bytes: positive(
            "max_result_bytes",
            raw.max_result_bytes,
            defaults.max_result_bytes,
            8 * 1024 * 1024,
        )?,
        calls_per_minute: positive(
            "calls_per_minute",
            raw.calls_per_minute,
            defaults.calls_per_minute,
            100_000,
        )?,
        wait: duration("wait", &raw.wait, defaults.wait.min(max_hold), max_hold)?,
        max_approval_wait: duration(
            "max_approval_wait",
            &raw.max_approval_wait,
            defaults.max_approval_wait,
            Duration::from_secs(300),
        )?,
    })
}
