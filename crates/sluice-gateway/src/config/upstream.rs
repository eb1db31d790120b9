//! `warehouse:` for the BigQuery upstream, and `secrets:`: where BigQuery
//! is, how patient to be with it, and how Sluice gets the short-lived
//! token each job runs with.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sluice_credentials::{BIGQUERY_SCOPE, Endpoints, MAX_LIFETIME};
use sluice_identity::parse_duration;

/// `warehouse.credentials:` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawCredentials {
    /// `workload_identity`, `service_account_key` or `impersonation`.
    pub kind: Option<String>,
    /// Workload identity: the provider's audience,
    /// `//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/providers/PROVIDER`.
    pub audience: Option<String>,
    /// Workload identity: Sluice's own issuer URL, the `iss` of the
    /// assertions Sluice signs and the provider's `--issuer-uri`.
    pub issuer: Option<String>,
    /// The service account to impersonate (optional for workload identity).
    pub service_account: Option<String>,
    /// The stored key (`sluice secrets put NAME --file key.json`) for
    /// `service_account_key`, or for `impersonation` with `source: key`.
    pub key: Option<String>,
    /// Impersonation: whose credential asks, `key` or `metadata_server`.
    pub source: Option<String>,
    /// How long a minted token lives (`300s` by default, at most `1h`).
    pub lifetime: Option<String>,
    /// OAuth scopes of the minted token.
    pub scopes: Option<Vec<String>>,
    /// Google endpoints, overridable for private access and for tests.
    pub sts_url: Option<String>,
    pub iam_credentials_url: Option<String>,
    pub metadata_url: Option<String>,
    /// Where tokens are revoked when their job is done; `none` turns it off.
    pub revoke_url: Option<String>,
}

/// `secrets:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSecrets {
    /// A file holding the base64 master key; `SLUICE_MASTER_KEY` wins.
    pub master_key_file: Option<PathBuf>,
}

/// The validated BigQuery upstream.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub endpoint: String,
    /// Jobs' location; none lets BigQuery choose.
    pub location: Option<String>,
    pub timeout: Duration,
    pub retry_deadline: Duration,
    /// Refuse a query whose dry run names no table although analysis found
    /// some: real BigQuery always reports them, so a missing list means the
    /// cross-check cannot be made.
    pub require_referenced_tables: bool,
    /// When a query is dry-run before it runs.
    pub dry_run: DryRunMode,
    /// The default credential.
    pub credentials: CredentialConfig,
    /// Credentials a policy picks by name (`credentials: NAME`).
    pub named_credentials: BTreeMap<String, CredentialConfig>,
    /// Sluice's issuer URL, when a credential uses workload identity: one
    /// for all of them, as they share one set of signing keys.
    pub issuer: Option<String>,
}

/// `warehouse.dry_run`: when a query is dry-run before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DryRunMode {
    /// Every query: the estimate and the cross-check come before the job.
    #[default]
    Always,
    /// Only where the decision needs it: a fully analyzed `SELECT` runs at
    /// once under `maximumBytesBilled`, and the finished job's tables and
    /// statement type are cross-checked before any row leaves.
    WhenNeeded,
}

/// How a job's token is minted.
#[derive(Debug, Clone)]
pub struct CredentialConfig {
    pub kind: CredentialKind,
    pub lifetime: Duration,
    pub scopes: Vec<String>,
    pub sts_url: String,
    pub iam_credentials_url: String,
    pub metadata_url: String,
    pub revoke_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialKind {
    WorkloadIdentity {
        audience: String,
        service_account: Option<String>,
        /// Sluice's issuer URL.
        issuer: String,
    },
    ServiceAccountKey {
        key: String,
    },
    Impersonation {
        /// A stored key's name, or none for the metadata server.
        key: Option<String>,
        service_account: String,
    },
}

/// Validates `warehouse:` for `kind: bigquery`; errors are `(key, reason)`.
pub fn validate(warehouse: &super::RawWarehouse) -> Result<UpstreamConfig, (String, String)> {
    let dry_run = match warehouse.dry_run.as_deref() {
        None | Some("always") => DryRunMode::Always,
        Some("when_needed") => DryRunMode::WhenNeeded,
        Some(other) => {
            return Err((
                "warehouse.dry_run".into(),
                format!("`{other}` is not a dry-run mode: use `always` or `when_needed`"),
            ));
        }
    };
    let endpoint = warehouse.endpoint.clone();
    let location = warehouse.location.clone();
    let timeout = warehouse.timeout.as_deref();
    let retry_deadline = warehouse.retry_deadline.as_deref();
    let require_referenced_tables = warehouse.require_referenced_tables;
    let credentials = warehouse.credentials.clone();
    let named_credentials = warehouse.named_credentials.clone();
    let endpoint = endpoint.unwrap_or_else(|| "https://bigquery.googleapis.com".into());
    url("warehouse.endpoint", &endpoint)?;
    let credentials = credential_config("warehouse.credentials", credentials)?;
    let mut named = BTreeMap::new();
    for (name, raw) in named_credentials {
        let key = format!("warehouse.named_credentials.{name}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err((
                key,
                "a credential name uses letters, digits, - and _ only".into(),
            ));
        }
        named.insert(name, credential_config(&key, raw)?);
    }
    let issuer = one_issuer(&credentials, &named)?;
    Ok(UpstreamConfig {
        endpoint,
        location,
        timeout: duration("warehouse.timeout", timeout, Duration::from_secs(60))?,
        retry_deadline: duration(
            "warehouse.retry_deadline",
            retry_deadline,
            Duration::from_secs(30),
        )?,
        require_referenced_tables: require_referenced_tables.unwrap_or(true),
        dry_run,
        credentials,
        named_credentials: named,
        issuer,
    })
}

/// The issuer of every workload-identity credential: they share Sluice's
/// signing keys and its one published JWKS, so they must name the same.
fn one_issuer(
    default: &CredentialConfig,
    named: &BTreeMap<String, CredentialConfig>,
) -> Result<Option<String>, (String, String)> {
    let blocks = std::iter::once(("warehouse.credentials".to_string(), default)).chain(
        named
            .iter()
            .map(|(name, c)| (format!("warehouse.named_credentials.{name}"), c)),
    );
    let mut first: Option<(String, String)> = None;
    for (key, config) in blocks {
        let CredentialKind::WorkloadIdentity { issuer, .. } = &config.kind else {
            continue;
        };
        match &first {
            None => first = Some((key, issuer.clone())),
            Some((first_key, first_issuer)) if first_issuer != issuer => {
                return Err((
                    format!("{key}.issuer"),
                    format!(
                        "\"{issuer}\" differs from {first_key}.issuer \"{first_issuer}\": every \
                         workload_identity credential uses Sluice's one issuer and its keys"
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(first.map(|(_, issuer)| issuer))
}

fn duration(
    key: &str,
    text: Option<&str>,
    default: Duration,
) -> Result<Duration, (String, String)> {
    match text {
        None => Ok(default),
        Some(text) => parse_duration(text).map_err(|e| (key.to_string(), e)),
    }
}

/// Validates one credential block at `prefix` (`warehouse.credentials` or
/// `warehouse.named_credentials.NAME`).
fn credential_config(
    prefix: &str,
    raw: RawCredentials,
) -> Result<CredentialConfig, (String, String)> {
    let missing = |key: &str, why: &str| (format!("{prefix}.{key}"), why.to_string());
    let kind = match raw.kind.as_deref() {
        Some("workload_identity") => CredentialKind::WorkloadIdentity {
            audience: raw.audience.clone().ok_or_else(|| {
                missing(
                    "audience",
                    "workload_identity needs the provider's audience: //iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/providers/PROVIDER",
                )
            })?,
            service_account: raw.service_account.clone(),
            issuer: issuer_url(prefix, raw.issuer.as_deref())?,
        },
        Some("service_account_key") => CredentialKind::ServiceAccountKey {
            key: raw.key.clone().ok_or_else(|| {
                missing("key", "service_account_key needs the name of a stored key (`sluice secrets put NAME --file key.json`)")
            })?,
        },
        Some("impersonation") => CredentialKind::Impersonation {
            key: match raw.source.as_deref() {
                Some("key") => Some(raw.key.clone().ok_or_else(|| {
                    missing("key", "impersonation with source: key needs the name of a stored key")
                })?),
                None | Some("metadata_server") => None,
                Some(other) => {
                    return Err(missing(
                        "source",
                        &format!("unknown source \"{other}\" (supported: key, metadata_server)"),
                    ));
                }
            },
            service_account: raw.service_account.clone().ok_or_else(|| {
                missing("service_account", "impersonation needs the service account to impersonate")
            })?,
        },
        None => {
            return Err(missing(
                "kind",
                "the BigQuery upstream needs credentials: workload_identity, service_account_key or impersonation",
            ));
        }
        Some(other) => {
            return Err(missing(
                "kind",
                &format!("unknown kind \"{other}\" (supported: workload_identity, service_account_key, impersonation)"),
            ));
        }
    };
    let lifetime = duration(
        &format!("{prefix}.lifetime"),
        raw.lifetime.as_deref(),
        Duration::from_secs(300),
    )?;
    if lifetime < Duration::from_secs(60) || lifetime > MAX_LIFETIME {
        return Err(missing("lifetime", "must be between 60s and 1h"));
    }
    // Google's own endpoints unless configured.
    let google = Endpoints::default();
    let sts_url = raw.sts_url.unwrap_or(google.sts_url);
    let iam_credentials_url = raw
        .iam_credentials_url
        .unwrap_or(google.iam_credentials_url);
    let metadata_url = raw.metadata_url.unwrap_or(google.metadata_url);
    let revoke_url = match raw.revoke_url.as_deref() {
        Some("none") => None,
        Some(u) => Some(u.to_string()),
        None => google.revoke_url,
    };
    url(&format!("{prefix}.sts_url"), &sts_url)?;
    url(
        &format!("{prefix}.iam_credentials_url"),
        &iam_credentials_url,
    )?;
    // The metadata server is plain http by design (link-local, never across
    // a network); its shape is checked when the minter is built.
    if let Some(revoke) = &revoke_url {
        url(&format!("{prefix}.revoke_url"), revoke)?;
    }
    Ok(CredentialConfig {
        kind,
        lifetime,
        scopes: raw.scopes.unwrap_or_else(|| vec![BIGQUERY_SCOPE.into()]),
        sts_url,
        iam_credentials_url,
        metadata_url,
        revoke_url,
    })
}

/// Sluice's issuer URL: required for workload identity, since the pool's
/// provider must trust Sluice and nobody else.
fn issuer_url(prefix: &str, issuer: Option<&str>) -> Result<String, (String, String)> {
    let key = format!("{prefix}.issuer");
    let Some(issuer) = issuer else {
        return Err((
            key,
            "workload_identity needs Sluice's own issuer URL (e.g. https://sluice.example.com): \
             Sluice signs an assertion per job as this issuer, and the pool's provider trusts it \
             alone, never the agents' own issuers (docs/bigquery.md)"
                .into(),
        ));
    };
    url(&key, issuer)?;
    if issuer.contains(['?', '#']) {
        return Err((
            key,
            format!("\"{issuer}\" must not have a query or fragment"),
        ));
    }
    Ok(issuer.to_string())
}

fn url(key: &str, value: &str) -> Result<(), (String, String)> {
    sluice_credentials::check_endpoint(key, value).map_err(|why| (key.to_string(), why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawWarehouse;

    fn workload_identity(issuer: Option<&str>) -> RawCredentials {
        RawCredentials {
            kind: Some("workload_identity".into()),
            audience: Some("//iam.googleapis.com/projects/1/providers/p".into()),
            issuer: issuer.map(str::to_string),
            ..RawCredentials::default()
        }
    }

    fn upstream(
        default: RawCredentials,
        named: Vec<(&str, RawCredentials)>,
    ) -> Result<UpstreamConfig, (String, String)> {
        let named = named
            .into_iter()
            .map(|(name, raw)| (name.to_string(), raw))
            .collect();
        validate(&RawWarehouse {
            credentials: default,
            named_credentials: named,
            ..RawWarehouse::default()
        })
    }

    fn at(endpoint: &str) -> RawWarehouse {
        RawWarehouse {
            endpoint: Some(endpoint.to_string()),
            credentials: workload_identity(Some("https://sluice.test")),
            ..RawWarehouse::default()
        }
    }

    #[test]
    fn the_dry_run_mode_is_always_unless_when_needed_is_asked_for() {
        let https = "https://bigquery.googleapis.com";
        assert_eq!(validate(&at(https)).unwrap().dry_run, DryRunMode::Always);
        let when_needed = RawWarehouse {
            dry_run: Some("when_needed".into()),
            ..at(https)
        };
        assert_eq!(
            validate(&when_needed).unwrap().dry_run,
            DryRunMode::WhenNeeded
        );
        let bad = RawWarehouse {
            dry_run: Some("sometimes".into()),
            ..at(https)
        };
        let (key, reason) = validate(&bad).unwrap_err();
        assert_eq!(key, "warehouse.dry_run");
        assert!(reason.contains("when_needed"), "{reason}");
    }

    /// Issue: upstream endpoints are https except on loopback, so no
    /// token crosses a network in the clear.
    #[test]
    fn upstream_endpoints_must_be_https_except_on_loopback() {
        let (key, reason) = validate(&at("http://bigquery.internal")).unwrap_err();
        assert_eq!(key, "warehouse.endpoint");
        assert!(reason.contains("use https"), "{reason}");
        validate(&at("http://127.0.0.1:9050")).unwrap();

        let sts = RawCredentials {
            sts_url: Some("http://sts.internal/v1/token".into()),
            ..workload_identity(Some("https://sluice.test"))
        };
        let (key, _) = upstream(sts, vec![]).unwrap_err();
        assert_eq!(key, "warehouse.credentials.sts_url");
    }

    #[test]
    fn workload_identity_needs_sluices_own_issuer() {
        let (key, reason) = upstream(workload_identity(None), vec![]).unwrap_err();
        assert_eq!(key, "warehouse.credentials.issuer");
        assert!(reason.contains("never the agents' own issuers"), "{reason}");

        let (key, _) = upstream(workload_identity(Some("sluice.test")), vec![]).unwrap_err();
        assert_eq!(key, "warehouse.credentials.issuer");
        let (key, _) =
            upstream(workload_identity(Some("https://s.test/?x=1")), vec![]).unwrap_err();
        assert_eq!(key, "warehouse.credentials.issuer");

        let config = upstream(workload_identity(Some("https://sluice.test")), vec![]).unwrap();
        assert_eq!(config.issuer.as_deref(), Some("https://sluice.test"));
    }

    #[test]
    fn every_workload_identity_credential_names_the_same_issuer() {
        let same = vec![("admins", workload_identity(Some("https://sluice.test")))];
        let config = upstream(workload_identity(Some("https://sluice.test")), same).unwrap();
        assert_eq!(config.issuer.as_deref(), Some("https://sluice.test"));

        let other = vec![("admins", workload_identity(Some("https://other.test")))];
        let (key, reason) =
            upstream(workload_identity(Some("https://sluice.test")), other).unwrap_err();
        assert_eq!(key, "warehouse.named_credentials.admins.issuer");
        assert!(reason.contains("warehouse.credentials.issuer"), "{reason}");

        // Without workload identity there is no issuer.
        let key = RawCredentials {
            kind: Some("service_account_key".into()),
            key: Some("bq".into()),
            ..RawCredentials::default()
        };
        assert_eq!(upstream(key, vec![]).unwrap().issuer, None);
    }
}
