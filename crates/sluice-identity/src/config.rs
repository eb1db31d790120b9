//! The `identity:` section of the configuration: the raw serde model, and the
//! validated [`IdentityConfig`] the verifier runs on.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use reqwest::Url;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::claims::GroupRule;
use crate::duration::parse_duration;

const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
const MAX_LEEWAY: Duration = Duration::from_secs(300);
const DEFAULT_REFRESH: Duration = Duration::from_secs(600);
const MIN_REFRESH: Duration = Duration::from_secs(30);
const MAX_REFRESH: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_MAX_TOKEN_BYTES: usize = 8192;
const DEFAULT_DEV_ISSUER: &str = "http://127.0.0.1/sluice-dev-issuer";
const DEFAULT_DEV_AUDIENCE: &str = "sluice";

/// `identity:` as written in the YAML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    /// The OIDC issuers whose tokens are accepted.
    #[serde(default)]
    pub issuers: Vec<RawIssuer>,
    /// The built-in development issuer (demo and tests only).
    #[serde(default)]
    pub development_issuer: RawDevIssuer,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`; default `60s`.
    pub leeway: Option<String>,
    /// Longer bearer tokens are refused unread; default 8192.
    pub max_token_bytes: Option<usize>,
}

/// One trusted OIDC issuer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    /// Must equal the token's `iss` exactly.
    pub issuer: String,
    /// The token's `aud` (a string or an array) must contain one of these.
    pub audiences: Vec<String>,
    /// Default: `{issuer}/.well-known/openid-configuration`.
    pub discovery_url: Option<String>,
    /// When set, discovery is skipped and keys are fetched from here.
    pub jwks_uri: Option<String>,
    /// Extra PEM root certificate(s) for this issuer's HTTPS endpoints.
    pub ca_file: Option<PathBuf>,
    /// Accepted signing algorithms: a subset of `RS256`, `ES256` (default both).
    pub algorithms: Option<Vec<String>>,
    /// The claim that names the caller; default `sub`.
    pub name_claim: Option<String>,
    /// A claim whose string or array-of-strings value lists groups directly.
    pub groups_claim: Option<String>,
    /// Rules that add groups when claims match.
    #[serde(default)]
    pub groups: Vec<RawGroupRule>,
    /// How often the signing keys are refetched; default `10m`.
    pub refresh: Option<String>,
}

/// Puts the caller in `group` when every claim in `when` matches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroupRule {
    /// The group to add.
    pub group: String,
    /// Claim name → what its value must be (see [`RawClaimMatch`]). All
    /// must match.
    pub when: BTreeMap<String, RawClaimMatch>,
}

/// What one claim of a group rule must be: a glob (`*` matches any run of
/// characters), or a list of globs of which one must match
/// (`event_name: [push, schedule]`). A claim matches only when it is a
/// string, number or boolean, compared as text; a number or boolean
/// written in YAML is its text too (`repository_id: 123` is `"123"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawClaimMatch(pub Vec<String>);

impl From<&str> for RawClaimMatch {
    fn from(glob: &str) -> Self {
        Self(vec![glob.to_string()])
    }
}

impl<'de> Deserialize<'de> for RawClaimMatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ClaimMatchVisitor)
    }
}

/// Reads one value, or a list of values, of a group rule's claim.
struct ClaimMatchVisitor;

/// One value of a list: a scalar, never a list again.
struct ClaimText(String);

impl<'de> Deserialize<'de> for ClaimText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(ClaimTextVisitor)
            .map(ClaimText)
    }
}

/// Scalars as the text a claim is compared with.
struct ClaimTextVisitor;

impl Visitor<'_> for ClaimTextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a claim value: a string, integer or boolean")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<String, E> {
        Ok(value.to_string())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<String, E> {
        Ok(value.to_string())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<String, E> {
        Ok(value.to_string())
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<String, E> {
        Ok(value.to_string())
    }
}

impl<'de> Visitor<'de> for ClaimMatchVisitor {
    type Value = RawClaimMatch;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a claim value (a string, integer or boolean) or a list of them")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        ClaimTextVisitor
            .visit_str(value)
            .map(|text| RawClaimMatch(vec![text]))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        ClaimTextVisitor
            .visit_u64(value)
            .map(|text| RawClaimMatch(vec![text]))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        ClaimTextVisitor
            .visit_i64(value)
            .map(|text| RawClaimMatch(vec![text]))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        ClaimTextVisitor
            .visit_bool(value)
            .map(|text| RawClaimMatch(vec![text]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut globs = Vec::new();
        while let Some(ClaimText(text)) = seq.next_element()? {
            globs.push(text);
        }
        Ok(RawClaimMatch(globs))
    }
}

/// `identity.development_issuer`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevIssuer {
    /// Trust tokens minted by the development issuer; default false.
    #[serde(default)]
    pub enabled: bool,
    /// Default `sluice`.
    pub audience: Option<String>,
    /// Default `http://127.0.0.1/sluice-dev-issuer`.
    pub issuer: Option<String>,
}

/// The validated identity configuration.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub(crate) issuers: Vec<IssuerConfig>,
    pub(crate) dev_enabled: bool,
    pub(crate) dev_issuer: String,
    pub(crate) dev_audience: String,
    pub(crate) leeway: Duration,
    pub(crate) max_token_bytes: usize,
}

/// Where an issuer's signing keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// An OIDC discovery document naming the `jwks_uri`.
    Discovery(Url),
    /// A JWKS URL given directly.
    Jwks(Url),
}

/// One validated issuer.
#[derive(Debug, Clone)]
pub(crate) struct IssuerConfig {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) keys: KeySource,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) name_claim: String,
    pub(crate) groups_claim: Option<String>,
    pub(crate) group_rules: Vec<GroupRule>,
    pub(crate) refresh: Duration,
}

impl Default for IdentityConfig {
    /// No issuers and the development issuer off: every token is refused.
    fn default() -> Self {
        IdentityConfig {
            issuers: Vec::new(),
            dev_enabled: false,
            dev_issuer: DEFAULT_DEV_ISSUER.to_string(),
            dev_audience: DEFAULT_DEV_AUDIENCE.to_string(),
            leeway: DEFAULT_LEEWAY,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }
}

impl IdentityConfig {
    /// Validates the raw section. Reports every problem, each with a key path
    /// like `identity.issuers[0].audiences` and a reason.
    pub fn from_raw(raw: &RawIdentity) -> Result<IdentityConfig, Vec<(String, String)>> {
        let mut errors = Errors::default();
        let leeway = match &raw.leeway {
            None => DEFAULT_LEEWAY,
            Some(text) => match parse_duration(text) {
                Ok(d) if d <= MAX_LEEWAY => d,
                Ok(_) => errors.refuse(
                    "identity.leeway",
                    "at most 5m; clock skew beyond that is a broken clock",
                ),
                Err(e) => errors.refuse("identity.leeway", e),
            },
        };
        let max_token_bytes = match raw.max_token_bytes {
            None => DEFAULT_MAX_TOKEN_BYTES,
            Some(n) if (512..=1 << 20).contains(&n) => n,
            Some(_) => errors.refuse(
                "identity.max_token_bytes",
                "must be between 512 and 1048576",
            ),
        };

        let mut issuers = Vec::with_capacity(raw.issuers.len());
        for (i, raw_issuer) in raw.issuers.iter().enumerate() {
            let key = format!("identity.issuers[{i}]");
            if let Some(issuer) = validate_issuer(raw_issuer, &key, &mut errors) {
                issuers.push(issuer);
            }
            if raw.issuers[..i]
                .iter()
                .any(|earlier| earlier.issuer == raw_issuer.issuer)
            {
                errors.push(
                    format!("{key}.issuer"),
                    "the same issuer is configured twice",
                );
            }
        }

        let dev = &raw.development_issuer;
        let dev_issuer = dev
            .issuer
            .clone()
            .unwrap_or_else(|| DEFAULT_DEV_ISSUER.to_string());
        let dev_audience = dev
            .audience
            .clone()
            .unwrap_or_else(|| DEFAULT_DEV_AUDIENCE.to_string());
        if dev_issuer.trim().is_empty() {
            errors.push("identity.development_issuer.issuer", "must not be empty");
        }
        if dev_audience.trim().is_empty() {
            errors.push("identity.development_issuer.audience", "must not be empty");
        }
        if dev.enabled && raw.issuers.iter().any(|i| i.issuer == dev_issuer) {
            errors.push(
                "identity.development_issuer.issuer",
                "equals a configured issuer; the development issuer needs its own identifier",
            );
        }

        errors.finish(IdentityConfig {
            issuers,
            dev_enabled: dev.enabled,
            dev_issuer,
            dev_audience,
            leeway,
            max_token_bytes,
        })
    }

    /// Whether tokens minted by the development issuer are trusted.
    pub fn dev_issuer_enabled(&self) -> bool {
        self.dev_enabled
    }

    /// The development issuer's `iss`.
    pub fn dev_issuer_id(&self) -> &str {
        &self.dev_issuer
    }

    /// The audience the development issuer mints for.
    pub fn dev_audience(&self) -> &str {
        &self.dev_audience
    }

    /// Every issuer whose tokens are trusted (`iss`), the development
    /// issuer last when it is on: what a client is told to get a token
    /// from.
    pub fn trusted_issuers(&self) -> Vec<&str> {
        let mut issuers: Vec<&str> = self.issuers.iter().map(|i| i.issuer.as_str()).collect();
        if self.dev_enabled {
            issuers.push(&self.dev_issuer);
        }
        issuers
    }
}

fn validate_issuer(raw: &RawIssuer, key: &str, errors: &mut Errors) -> Option<IssuerConfig> {
    let before = errors.0.len();
    if raw.issuer.trim().is_empty() {
        errors.push(format!("{key}.issuer"), "must not be empty");
    }
    if raw.audiences.is_empty() {
        errors.push(format!("{key}.audiences"), "list at least one audience");
    }
    for (j, audience) in raw.audiences.iter().enumerate() {
        if audience.trim().is_empty() {
            errors.push(format!("{key}.audiences[{j}]"), "must not be empty");
        }
    }

    let keys = match (&raw.jwks_uri, &raw.discovery_url) {
        (Some(_), Some(_)) => errors.refuse(
            format!("{key}.jwks_uri"),
            "set either jwks_uri or discovery_url, not both",
        ),
        (Some(jwks), None) => match fetch_url(jwks) {
            Ok(url) => KeySource::Jwks(url),
            Err(e) => errors.refuse(format!("{key}.jwks_uri"), e),
        },
        (None, Some(discovery)) => match fetch_url(discovery) {
            Ok(url) => KeySource::Discovery(url),
            Err(e) => errors.refuse(format!("{key}.discovery_url"), e),
        },
        (None, None) => {
            let default = format!(
                "{}/.well-known/openid-configuration",
                raw.issuer.trim_end_matches('/')
            );
            match fetch_url(&default) {
                Ok(url) => KeySource::Discovery(url),
                Err(e) => errors.refuse(
                    format!("{key}.issuer"),
                    format!("cannot derive the discovery URL from the issuer ({e}); set discovery_url or jwks_uri"),
                ),
            }
        }
    };

    let algorithms = match &raw.algorithms {
        None => vec![Algorithm::RS256, Algorithm::ES256],
        Some(names) => {
            if names.is_empty() {
                errors.push(
                    format!("{key}.algorithms"),
                    "list at least one of RS256, ES256",
                );
            }
            let mut algorithms = Vec::new();
            for (j, name) in names.iter().enumerate() {
                match name.as_str() {
                    "RS256" => algorithms.push(Algorithm::RS256),
                    "ES256" => algorithms.push(Algorithm::ES256),
                    other => {
                        errors.push(
                            format!("{key}.algorithms[{j}]"),
                            format!("{other:?} is not supported: use RS256 or ES256"),
                        );
                    }
                }
            }
            algorithms.dedup();
            algorithms
        }
    };

    if let Some(path) = &raw.ca_file
        && path.as_os_str().is_empty()
    {
        errors.push(format!("{key}.ca_file"), "must not be empty");
    }
    let name_claim = raw.name_claim.clone().unwrap_or_else(|| "sub".to_string());
    if name_claim.trim().is_empty() {
        errors.push(format!("{key}.name_claim"), "must not be empty");
    }
    if let Some(claim) = &raw.groups_claim
        && claim.trim().is_empty()
    {
        errors.push(format!("{key}.groups_claim"), "must not be empty");
    }

    let mut group_rules = Vec::with_capacity(raw.groups.len());
    for (j, rule) in raw.groups.iter().enumerate() {
        let rule_key = format!("{key}.groups[{j}]");
        if rule.group.trim().is_empty() {
            errors.push(format!("{rule_key}.group"), "must not be empty");
        }
        if rule.when.is_empty() {
            errors.push(
                format!("{rule_key}.when"),
                "list at least one claim to match; a rule without conditions would put every caller in the group",
            );
        }
        for (claim, matches) in &rule.when {
            if claim.trim().is_empty() {
                errors.push(format!("{rule_key}.when"), "claim names must not be empty");
            } else if matches.0.is_empty() {
                errors.push(
                    format!("{rule_key}.when.{claim}"),
                    "list at least one value; an empty list matches no token",
                );
            }
        }
        group_rules.push(GroupRule {
            group: rule.group.clone(),
            when: rule
                .when
                .iter()
                .map(|(claim, matches)| (claim.clone(), matches.0.clone()))
                .collect(),
        });
    }

    let refresh = match &raw.refresh {
        None => DEFAULT_REFRESH,
        Some(text) => match parse_duration(text) {
            Ok(d) if (MIN_REFRESH..=MAX_REFRESH).contains(&d) => d,
            Ok(_) => errors.refuse(format!("{key}.refresh"), "must be between 30s and 24h"),
            Err(e) => errors.refuse(format!("{key}.refresh"), e),
        },
    };

    (errors.0.len() == before).then(|| IssuerConfig {
        issuer: raw.issuer.clone(),
        audiences: raw.audiences.clone(),
        keys,
        ca_file: raw.ca_file.clone(),
        algorithms,
        name_claim,
        groups_claim: raw.groups_claim.clone(),
        group_rules,
        refresh,
    })
}

/// Checks a URL the verifier will fetch keys from: `https`, or plain `http`
/// only to a loopback host (local development and tests); no credentials in
/// the URL.
pub(crate) fn fetch_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".to_string());
    }
    if url.fragment().is_some() {
        return Err(format!("{text:?} must not have a #fragment"));
    }
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "{text:?} must use https (plain http is allowed only for 127.0.0.1, ::1 and localhost)"
        )),
        _ => Err(format!("{text:?} must be an https URL")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost" | "[::1]") => true,
        Some(host) => host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// Collects `(key, reason)` pairs; `refuse` returns a placeholder so a match arm
/// can record the error and carry on checking the rest.
#[derive(Default)]
struct Errors(Vec<(String, String)>);

impl Errors {
    fn push(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.0.push((key.into(), reason.into()));
    }

    fn refuse<T: Placeholder>(&mut self, key: impl Into<String>, reason: impl Into<String>) -> T {
        self.push(key, reason);
        T::placeholder()
    }

    fn finish<T>(self, value: T) -> Result<T, Vec<(String, String)>> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0)
        }
    }
}

/// A value to carry on with after an error has been recorded; it is never used
/// because the configuration is then refused.
trait Placeholder {
    fn placeholder() -> Self;
}

impl Placeholder for Duration {
    fn placeholder() -> Self {
        Duration::ZERO
    }
}

impl Placeholder for usize {
    fn placeholder() -> Self {
        0
    }
}

impl Placeholder for KeySource {
    fn placeholder() -> Self {
        KeySource::Jwks(Url::parse("https://invalid.invalid/").expect("a literal URL parses"))
    }
}

#[cfg(test)]
mod tests;
