//! Configuration in two steps: a raw, serde-shaped form read from YAML
//! (unknown keys are errors, so typos are caught), then the validated
//! [`Config`] the gateway runs on. Every error names the file and key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

pub mod audit;
mod mcp;
mod ui;
mod upstream;

pub use mcp::{McpConfig, RawMcp};
pub use ui::{LoginIssuer, RawUi, UiConfig};
pub use upstream::{
    CredentialConfig, CredentialKind, DryRunMode, RawCredentials, RawSecrets, UpstreamConfig,
};

/// A configuration problem, naming where it is.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub reason: String,
}

/// Every problem found in one configuration, so a user fixes them all in
/// one pass.
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} configuration error{}",
            if n == 1 { "" } else { "s" }
        )?;
        for error in &self.0 {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

/// The demo configuration `sluice serve` runs without `--config`.
pub const DEMO_YAML: &str = include_str!("../../../demo/sluice.yaml");

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
    /// Who may call: token issuers and the development issuer.
    pub identity: sluice_identity::RawIdentity,
    /// What each caller may run.
    pub policies: Vec<sluice_policy::RawPolicy>,
    /// Statements and constructs refused whoever asks.
    pub guardrails: sluice_policy::RawGuardrails,
    /// The master key that opens stored secrets.
    pub secrets: RawSecrets,
    /// How queries that wait for a reviewer are shown and swept.
    pub approvals: RawApprovals,
    /// The reviewer web UI.
    pub ui: RawUi,
    /// Sensitive columns and how results are masked (`docs/masking.md`).
    pub masking: crate::mask::RawMasking,
    /// The Model Context Protocol server (`docs/mcp.md`).
    pub mcp: RawMcp,
    /// The audit log (`docs/operations.md`).
    pub audit: audit::RawAudit,
}

/// `approvals:` (the rules themselves are under each policy's
/// `approvals`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawApprovals {
    /// The on-demand price reviewers see estimates in: US dollars per TiB
    /// processed (`6.25` by default, BigQuery's list price).
    pub usd_per_tib: Option<f64>,
    /// How often expired requests are refused, in milliseconds (`5000`).
    pub sweep_interval_ms: Option<u64>,
    /// Where to say that a request opened or closed.
    pub notify: Vec<RawNotify>,
    /// The base URL of links in notifications (the gateway's own by
    /// default).
    pub link: Option<String>,
}

/// One notification target: a signed generic webhook, or Slack.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawNotify {
    /// A generic webhook's URL (needs `secret_env`).
    pub webhook: Option<String>,
    /// The environment variable holding the webhook's HMAC secret.
    pub secret_env: Option<String>,
    /// The environment variable holding a Slack incoming-webhook URL (the
    /// URL is itself a secret, so it stays out of the file).
    pub slack_env: Option<String>,
}

/// `warehouse:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawWarehouse {
    /// `embedded` (the default) or `bigquery`.
    pub kind: Option<String>,
    /// The embedded warehouse's tables; `<data_dir>/warehouse` by default.
    pub data_dir: Option<PathBuf>,
    /// Generate the demo data set into `data_dir` when it is missing.
    pub demo_data: Option<bool>,
    /// The location datasets and jobs report; `US` by default.
    pub location: Option<String>,
    /// BigQuery: the REST endpoint, `https://bigquery.googleapis.com` by
    /// default.
    pub endpoint: Option<String>,
    /// BigQuery: each call's time limit (`60s`).
    pub timeout: Option<String>,
    /// BigQuery: how long transient failures are retried (`30s`).
    pub retry_deadline: Option<String>,
    /// BigQuery: refuse a query whose dry run lists no tables though the
    /// SQL reads some (`true`; only for endpoints known not to list them).
    pub require_referenced_tables: Option<bool>,
    /// BigQuery: `always` (the default) dry-runs every query before it runs;
    /// `when_needed` lets a fully analyzed `SELECT` run without one, capped
    /// by `maximumBytesBilled` and cross-checked on the finished job.
    pub dry_run: Option<String>,
    /// BigQuery: how each job's token is minted.
    pub credentials: RawCredentials,
    /// BigQuery: more credentials, by name, for policies that pick one
    /// (`credentials: NAME` in a policy).
    pub named_credentials: BTreeMap<String, RawCredentials>,
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
    /// Jobs one principal may have running at once (per replica).
    pub max_running_jobs_per_principal: Option<usize>,
    /// Jobs one principal may have waiting for approval at once (per
    /// replica).
    pub max_waiting_jobs_per_principal: Option<usize>,
    /// Upstream tokens Sluice mints for one principal per minute (per
    /// replica).
    pub max_mints_per_principal_per_minute: Option<usize>,
    /// Hours the embedded warehouse keeps a finished job's results.
    pub result_retention_hours: Option<usize>,
}

/// Where a configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    /// The file, or `<built-in demo configuration>`.
    pub file: String,
    /// SHA-256 of its text (empty for one built from parsed YAML).
    pub sha256: String,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the configuration came from (a file, or the built-in demo)
    /// and the SHA-256 of its text: named by the audit log's
    /// `gateway.started`, so an auditor sees which configuration ran.
    pub source: ConfigSource,
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
    pub max_running_jobs_per_principal: usize,
    pub max_waiting_jobs_per_principal: usize,
    pub max_mints_per_principal_per_minute: usize,
    /// How long the embedded warehouse keeps finished jobs' results.
    pub result_retention: Duration,
    /// The BigQuery upstream, when `warehouse.kind` is `bigquery`.
    pub upstream: Option<UpstreamConfig>,
    /// Where the secrets' master key is, unless `SLUICE_MASTER_KEY` is set.
    pub master_key_file: Option<PathBuf>,
    /// `http://host:port`, for `selfLink`s; set once the listener is bound.
    pub base_url: String,
    /// Token verification settings.
    pub identity: sluice_identity::IdentityConfig,
    /// The policies and guardrails every request is decided by.
    pub policy: Arc<sluice_policy::PolicySet>,
    /// US dollars per TiB processed, for the estimates reviewers see.
    pub usd_per_tib: f64,
    /// How often requests past their timeout are refused.
    pub approval_sweep: Duration,
    /// Where approval requests are announced.
    pub notify: Vec<crate::approvals::notify::Target>,
    /// The base URL of links in notifications; `None`: `base_url`.
    pub approval_link: Option<String>,
    /// The reviewer web UI, when it is on.
    pub ui: Option<UiConfig>,
    /// Sensitive columns and how results are masked.
    pub masking: crate::mask::MaskingConfig,
    /// The MCP server at `/mcp`.
    pub mcp: McpConfig,
    /// The audit log's checkpoints, retention, recorded pages and sinks.
    pub audit: audit::AuditConfig,
}

/// The notification targets, with their secrets read from the
/// environment; a missing variable is an error naming it.
fn notify_targets(
    raw: &[RawNotify],
) -> Result<Vec<crate::approvals::notify::Target>, (String, String)> {
    use crate::approvals::notify::Target;
    let secret = |key: String, name: &str| match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            Ok(zeroize::Zeroizing::new(value.trim().to_owned()))
        }
        _ => Err((key, format!("the environment variable {name} is not set"))),
    };
    raw.iter()
        .enumerate()
        .map(|(i, n)| {
            let key = format!("approvals.notify[{i}]");
            match (&n.webhook, &n.secret_env, &n.slack_env) {
                (Some(url), Some(env), None) => {
                    if !(url.starts_with("https://") || url.starts_with("http://")) {
                        return Err((format!("{key}.webhook"), format!("\"{url}\" is not an http(s) URL")));
                    }
                    Ok(Target::Webhook {
                        url: url.clone(),
                        secret: secret(format!("{key}.secret_env"), env)?,
                    })
                }
                (Some(_), None, None) => Err((
                    format!("{key}.secret_env"),
                    "a webhook needs secret_env: the variable with the secret its requests are signed with".into(),
                )),
                (None, None, Some(env)) => Ok(Target::Slack {
                    url: secret(format!("{key}.slack_env"), env)?,
                }),
                _ => Err((
                    key,
                    "give either webhook with secret_env, or slack_env".into(),
                )),
            }
        })
        .collect()
}

impl Config {
    /// The demo (`demo/sluice.yaml`, built in): everything under
    /// `./sluice-data`, demo data generated, the development issuer on.
    pub fn demo() -> Self {
        Self::parse(DEMO_YAML, "<built-in demo configuration>")
            .expect("the built-in configuration is valid")
    }

    /// Reads and validates a YAML file.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            key: "(file)".into(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, &file)
    }

    /// Parses and validates YAML text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigErrors> {
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| ConfigError {
            file: file.to_string(),
            key: "(syntax)".into(),
            reason: e.to_string(),
        })?;
        let mut config = Self::validate(raw, file)?;
        config.source = ConfigSource {
            file: file.to_owned(),
            sha256: sluice_store::audit::sha256_hex(text.as_bytes()),
        };
        Ok(config)
    }

    /// Checks everything and reports every problem found.
    pub fn validate(raw: RawConfig, file: &str) -> Result<Self, ConfigErrors> {
        let error = |key: &str, reason: String| ConfigError {
            file: file.to_string(),
            key: key.to_string(),
            reason,
        };
        let mut errors = Vec::new();
        let identity = sluice_identity::IdentityConfig::from_raw(&raw.identity)
            .map_err(|problems| {
                errors.extend(
                    problems
                        .into_iter()
                        .map(|(key, reason)| error(&key, reason)),
                );
            })
            .ok();
        let policy = sluice_policy::PolicySet::build(&raw.policies, &raw.guardrails)
            .map_err(|problems| {
                errors.extend(problems.into_iter().map(|p| error(&p.key, p.reason)));
            })
            .ok();
        let masking = crate::mask::MaskingConfig::from_raw(&raw.masking)
            .map_err(|problems| {
                errors.extend(
                    problems
                        .into_iter()
                        .map(|(key, reason)| error(&key, reason)),
                );
            })
            .ok();
        let base = Self::validate_base(raw, file);
        if let (Ok(base), Some(policy)) = (&base, &policy) {
            for (index, name) in policy.named_credentials() {
                let known = base.upstream.as_ref().map(|u| &u.named_credentials);
                let reason = match known {
                    None => "the embedded warehouse takes no credentials; remove it".to_string(),
                    Some(known) if !known.contains_key(name) => format!(
                        "\"{name}\" is not under warehouse.named_credentials (known: {})",
                        known
                            .keys()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Some(_) => continue,
                };
                errors.push(error(&format!("policies[{index}].credentials"), reason));
            }
        }
        if let (Ok(base), Some(identity)) = (&base, &identity)
            && identity.dev_issuer_enabled()
            && base.upstream.is_some()
        {
            errors.push(error(
                "identity.development_issuer.enabled",
                "must be false with warehouse.kind: bigquery: anyone who can read the development \
                 issuer's key file in the data folder could mint a token for any group and query \
                 BigQuery with it. Trust your identity provider under identity.issuers instead \
                 (docs/policy.md); the development issuer is for the embedded warehouse's demo and tests"
                    .into(),
            ));
        }
        match (base, identity, policy, masking) {
            (Ok(mut base), Some(identity), Some(policy), Some(masking)) if errors.is_empty() => {
                base.identity = identity;
                base.policy = Arc::new(policy);
                base.masking = masking;
                Ok(base)
            }
            (base, _, _, _) => {
                if let Err(e) = base {
                    errors.insert(0, e);
                }
                Err(ConfigErrors(errors))
            }
        }
    }

    fn validate_base(raw: RawConfig, file: &str) -> Result<Self, ConfigError> {
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
        let warehouse = raw.warehouse;
        let upstream = match warehouse.kind.as_deref() {
            None | Some("embedded") => None,
            Some("bigquery") => {
                Some(upstream::validate(&warehouse).map_err(|(key, reason)| error(&key, reason))?)
            }
            Some(other) => {
                return Err(error(
                    "warehouse.kind",
                    format!("unknown kind \"{other}\" (supported: embedded, bigquery)"),
                ));
            }
        };
        let warehouse_dir = warehouse
            .data_dir
            .unwrap_or_else(|| data_dir.join("warehouse"));
        let limits = raw.limits;
        let positive = |key: &str, value: Option<usize>, default: usize| match value {
            Some(0) => Err(error(key, "must be greater than 0".into())),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let usd_per_tib = raw.approvals.usd_per_tib.unwrap_or(6.25);
        if !(usd_per_tib.is_finite() && usd_per_tib >= 0.0) {
            return Err(error(
                "approvals.usd_per_tib",
                "must be a price of zero or more, such as 6.25".into(),
            ));
        }
        let sweep_ms = raw.approvals.sweep_interval_ms.unwrap_or(5_000);
        if !(100..=60_000).contains(&sweep_ms) {
            return Err(error(
                "approvals.sweep_interval_ms",
                "must be between 100 and 60000".into(),
            ));
        }
        let notify =
            notify_targets(&raw.approvals.notify).map_err(|(key, reason)| error(&key, reason))?;
        let ui =
            ui::validate(&raw.ui, &raw.identity).map_err(|(key, reason)| error(&key, reason))?;
        let max_hold_ms = limits.max_hold_ms.unwrap_or(10_000);
        if max_hold_ms > 30_000 {
            return Err(error(
                "limits.max_hold_ms",
                "must be at most 30000: clients time out requests held longer".into(),
            ));
        }
        let mcp = mcp::validate(&raw.mcp, Duration::from_millis(max_hold_ms))
            .map_err(|(key, reason)| error(&key, reason))?;
        let audit = audit::validate(&raw.audit).map_err(|(key, reason)| error(&key, reason))?;
        Ok(Self {
            source: ConfigSource {
                file: file.to_owned(),
                sha256: String::new(),
            },
            listen,
            store_path,
            warehouse_dir,
            demo_data: upstream.is_none() && warehouse.demo_data.unwrap_or(true),
            location: warehouse.location.unwrap_or_else(|| "US".into()),
            upstream,
            master_key_file: raw.secrets.master_key_file,
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
            max_running_jobs_per_principal: positive(
                "limits.max_running_jobs_per_principal",
                limits.max_running_jobs_per_principal,
                20,
            )?,
            max_waiting_jobs_per_principal: positive(
                "limits.max_waiting_jobs_per_principal",
                limits.max_waiting_jobs_per_principal,
                100,
            )?,
            max_mints_per_principal_per_minute: positive(
                "limits.max_mints_per_principal_per_minute",
                limits.max_mints_per_principal_per_minute,
                120,
            )?,
            result_retention: Duration::from_secs(3600u64.saturating_mul(positive(
                "limits.result_retention_hours",
                limits.result_retention_hours,
                24,
            )? as u64)),
            base_url: format!("http://{listen}"),
            data_dir,
            identity: sluice_identity::IdentityConfig::default(),
            policy: Arc::new(sluice_policy::PolicySet::default()),
            usd_per_tib,
            approval_sweep: Duration::from_millis(sweep_ms),
            notify,
            approval_link: raw.approvals.link,
            ui,
            masking: crate::mask::MaskingConfig::default(),
            mcp,
            audit,
        })
    }

    /// Moves all state to `dir` (the `--data-dir` flag): the store, the
    /// embedded warehouse's tables and the development issuer's key.
    pub fn set_data_dir(&mut self, dir: PathBuf) {
        self.store_path = dir.join("sluice.db");
        self.warehouse_dir = dir.join("warehouse");
        self.data_dir = dir;
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
        Config::parse(yaml, "t.yaml").map_err(|mut errors| errors.0.remove(0))
    }

    /// Every YAML example in the docs is a configuration Sluice accepts, so
    /// the docs cannot drift from the keys the code reads.
    #[test]
    fn the_documented_examples_are_valid() {
        let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs");
        let mut checked = 0;
        for name in ["configuration.md", "policy.md", "bigquery.md"] {
            let text = std::fs::read_to_string(format!("{docs}/{name}")).unwrap();
            for block in text.split("```yaml\n").skip(1) {
                let yaml = block.split("```").next().unwrap();
                if let Err(errors) = Config::parse(yaml, name) {
                    panic!("an example in docs/{name} is not valid:\n{errors}\n{yaml}");
                }
                checked += 1;
            }
        }
        assert!(checked >= 5, "only {checked} examples found");
    }

    #[test]
    fn notification_targets_need_their_secrets_from_the_environment() {
        let unset = "SLUICE_TEST_VARIABLE_NOBODY_SETS";
        let err = parse(&format!(
            "approvals:\n  notify:\n    - webhook: https://hooks.example/x\n      secret_env: {unset}\n"
        ))
        .unwrap_err();
        assert_eq!(err.key, "approvals.notify[0].secret_env");
        assert!(err.reason.contains(unset), "{}", err.reason);
        let err =
            parse("approvals:\n  notify:\n    - webhook: https://hooks.example/x\n").unwrap_err();
        assert_eq!(err.key, "approvals.notify[0].secret_env");
        let err = parse(&format!(
            "approvals:\n  notify:\n    - slack_env: {unset}\n"
        ))
        .unwrap_err();
        assert_eq!(err.key, "approvals.notify[0].slack_env");
        // PATH is set everywhere: a webhook signed with it is accepted.
        let err = parse("approvals:\n  notify:\n    - webhook: ftp://x\n      secret_env: PATH\n")
            .unwrap_err();
        assert_eq!(err.key, "approvals.notify[0].webhook");
        let config = parse("approvals:\n  notify:\n    - webhook: https://hooks.example/x\n      secret_env: PATH\n").unwrap();
        assert_eq!(config.notify.len(), 1);
        assert!(!format!("{config:?}").contains(&std::env::var("PATH").unwrap()));
    }

    #[test]
    fn the_demo_configuration_is_valid_and_turns_the_development_issuer_on() {
        let config = Config::demo();
        assert!(config.identity.dev_issuer_enabled());
        assert!(!config.policy.policy_names().is_empty());
        let plain = parse("{}").unwrap();
        assert!(!plain.identity.dev_issuer_enabled());
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let yaml = "listen: nowhere\npolicies:\n  - name: p\n    who: {groups: [g]}\n    allow: {statements: [selec]}\nguardrails:\n  deny: [dorp]\n";
        let errors = Config::parse(yaml, "t.yaml").unwrap_err();
        let keys: Vec<&str> = errors.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys.len(), 3, "{errors}");
        assert_eq!(keys[0], "listen");
        assert!(
            keys.iter().any(|k| k.starts_with("policies[0]")),
            "{errors}"
        );
        assert!(keys.iter().any(|k| k.starts_with("guardrails")), "{errors}");
    }

    /// Anyone who can read the development issuer's key file can mint any
    /// group: it never fronts real BigQuery.
    #[test]
    fn the_development_issuer_is_refused_with_the_bigquery_upstream() {
        let dev = "identity:\n  development_issuer: {enabled: true}\n";
        let errors = Config::parse(&format!("{UPSTREAM}{dev}"), "t.yaml").unwrap_err();
        assert_eq!(errors.0.len(), 1, "{errors}");
        let err = &errors.0[0];
        assert_eq!(err.key, "identity.development_issuer.enabled");
        assert!(err.reason.contains("bigquery"), "{err}");
        assert!(err.reason.contains("identity.issuers"), "{err}");
        assert!(err.to_string().starts_with("t.yaml: "), "{err}");

        // The same issuer fronting the embedded warehouse is the demo, and a
        // BigQuery upstream trusting a real issuer is how it is deployed.
        Config::parse(dev, "t.yaml").unwrap();
        let issuer =
            "identity:\n  issuers:\n    - {issuer: https://idp.example, audiences: [sluice]}\n";
        Config::parse(&format!("{UPSTREAM}{issuer}"), "t.yaml").unwrap();
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

    const UPSTREAM: &str = "warehouse:\n  kind: bigquery\n  credentials: {kind: workload_identity, audience: //iam/default, issuer: https://sluice.test}\n";

    fn policy_with_credentials(name: &str) -> String {
        format!(
            "policies:\n  - name: p\n    who: {{groups: [g]}}\n    allow: {{read: [proj], statements: [select]}}\n    credentials: {name}\n"
        )
    }

    #[test]
    fn a_policy_picks_a_named_credential_that_must_exist() {
        let named = "  named_credentials:\n    finance-reader:\n      kind: impersonation\n      service_account: finance@proj.iam.gserviceaccount.com\n      lifetime: 120s\n";
        let yaml = format!(
            "{UPSTREAM}{named}{}",
            policy_with_credentials("finance-reader")
        );
        let config = Config::parse(&yaml, "t.yaml").unwrap();
        let upstream = config.upstream.unwrap();
        let finance = &upstream.named_credentials["finance-reader"];
        assert_eq!(finance.lifetime, Duration::from_secs(120));
        assert!(matches!(
            &finance.kind,
            CredentialKind::Impersonation { key: None, service_account } if service_account == "finance@proj.iam.gserviceaccount.com"
        ));

        let yaml = format!(
            "{UPSTREAM}{named}{}",
            policy_with_credentials("finance-writer")
        );
        let errors = Config::parse(&yaml, "t.yaml").unwrap_err();
        assert_eq!(errors.0.len(), 1, "{errors}");
        assert_eq!(errors.0[0].key, "policies[0].credentials");
        assert!(errors.0[0].reason.contains("finance-writer"), "{errors}");
        assert!(
            errors.0[0].reason.contains("known: finance-reader"),
            "{errors}"
        );

        // The embedded warehouse mints nothing: naming a credential is a mistake.
        let errors =
            Config::parse(&policy_with_credentials("finance-reader"), "t.yaml").unwrap_err();
        assert_eq!(errors.0[0].key, "policies[0].credentials");
        assert!(errors.0[0].reason.contains("embedded"), "{errors}");

        // A named credential is validated like the default one, under its own key.
        let bad = "  named_credentials:\n    broken:\n      kind: impersonation\n";
        let err = parse(&format!("{UPSTREAM}{bad}")).unwrap_err();
        assert_eq!(
            err.key,
            "warehouse.named_credentials.broken.service_account"
        );
        let bad = "  named_credentials:\n    \"a b\":\n      kind: workload_identity\n      audience: x\n";
        let err = parse(&format!("{UPSTREAM}{bad}")).unwrap_err();
        assert_eq!(err.key, "warehouse.named_credentials.a b");
    }
}
