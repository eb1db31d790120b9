//! Masking strategies: what a sensitive value becomes on its way out.
//!
//! Every strategy renders a value of the column's own type, or NULL: a
//! client library parses each cell by the schema's type, so a marker string
//! in an INT64 column would break the client rather than protect the value.
//!
//! | strategy | STRING | other types |
//! |---|---|---|
//! | `redact` | `[REDACTED]`, or `[REDACTED:<class>]` | NULL |
//! | `null` | NULL | NULL |
//! | `last4` / `first4` | 4 characters kept, the rest `*` | NULL |
//! | `email_domain` | `*****@domain`; a non-address is redacted whole | NULL |
//! | `year` | redacted | DATE/DATETIME/TIMESTAMP cut to 1 January; other types NULL |
//! | `pseudonym` | keyed `psn_…` | INT64/NUMERIC: keyed integer; BYTES: keyed bytes; others NULL |
//! | `deny` | the page is refused | the page is refused |
//!
//! `last4`/`first4` keep at most half of a short value: a value of fewer
//! than eight characters keeps `len / 2` of them, so nothing of four
//! characters or fewer is shown whole.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::pseudonym::PseudonymKey;
use crate::schema::FieldType;
use crate::year::truncate_to_year;

/// How a sensitive value is masked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// A fixed marker naming the class (STRING), NULL otherwise.
    Redact,
    /// NULL.
    Null,
    /// The last four characters kept.
    Last4,
    /// The first four characters kept.
    First4,
    /// The e-mail address's domain kept, the local part hidden.
    EmailDomain,
    /// A date or time cut back to the first instant of its year.
    Year,
    /// The query is refused when the value reaches the output.
    Deny,
    /// A keyed pseudonym; `context` separates the MAC's domains (a class,
    /// or a grant id, so grants cannot be joined against each other).
    Pseudonym {
        #[serde(default)]
        context: String,
    },
}

impl Strategy {
    /// The strategy's name in configuration, audit events and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Redact => "redact",
            Strategy::Null => "null",
            Strategy::Last4 => "last4",
            Strategy::First4 => "first4",
            Strategy::EmailDomain => "email_domain",
            Strategy::Year => "year",
            Strategy::Deny => "deny",
            Strategy::Pseudonym { .. } => "pseudonym",
        }
    }

    /// A strategy by its configuration name; `pseudonym` takes `context`.
    pub fn from_name(name: &str, context: &str) -> Result<Self, UnknownStrategy> {
        Ok(match name {
            "redact" => Strategy::Redact,
            "null" => Strategy::Null,
            "last4" => Strategy::Last4,
            "first4" => Strategy::First4,
            "email_domain" => Strategy::EmailDomain,
            "year" => Strategy::Year,
            "deny" => Strategy::Deny,
            "pseudonym" => Strategy::Pseudonym {
                context: context.to_string(),
            },
            _ => return Err(UnknownStrategy(name.to_string())),
        })
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A strategy name configuration does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown masking strategy `{0}`: use redact, null, last4, first4, email_domain, year, deny or pseudonym"
)]
pub struct UnknownStrategy(pub String);

/// Why a strategy could not be applied. It names the strategy, never the
/// value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategyError {
    #[error("the `deny` strategy refuses any value of this class")]
    Denied,
    #[error("the `pseudonym` strategy needs a pseudonym key, and none is configured")]
    MissingKey,
}

/// A cell after masking: a JSON string, or NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaskedCell {
    Text(String),
    Null,
}

impl MaskedCell {
    fn from_option(value: Option<String>) -> Self {
        value.map_or(MaskedCell::Null, MaskedCell::Text)
    }
}

/// The marker that replaces a redacted value.
pub fn redaction_marker(class: Option<&str>) -> String {
    match class {
        Some(class) => format!("[REDACTED:{class}]"),
        None => "[REDACTED]".to_string(),
    }
}

/// Masks one scalar cell: `value` as BigQuery's REST JSON renders it, of
/// type `ty`; `class` names what the value is (for the marker).
pub fn apply(
    strategy: &Strategy,
    value: &str,
    ty: FieldType,
    class: Option<&str>,
    key: Option<&PseudonymKey>,
) -> Result<MaskedCell, StrategyError> {
    let text = ty.is_text();
    let masked = match strategy {
        Strategy::Deny => return Err(StrategyError::Denied),
        Strategy::Null => None,
        Strategy::Redact => text.then(|| redaction_marker(class)),
        Strategy::Last4 => text.then(|| keep_last(value)),
        Strategy::First4 => text.then(|| keep_first(value)),
        Strategy::EmailDomain => text.then(|| email_domain(value, class)),
        Strategy::Year if text => Some(redaction_marker(class)),
        Strategy::Year => truncate_to_year(value, ty),
        Strategy::Pseudonym { context } => {
            let key = key.ok_or(StrategyError::MissingKey)?;
            key.pseudonym(context, value, ty)
        }
    };
    // A JSON cell carries JSON text, which clients parse: a marker or a
    // kept part goes out as a JSON string.
    let masked = match (ty, masked) {
        (FieldType::Json, Some(text)) => Some(serde_json::Value::String(text).to_string()),
        (_, masked) => masked,
    };
    Ok(MaskedCell::from_option(masked))
}

/// How many characters `last4`/`first4` keep of a value `len` characters
/// long: four, but never more than half.
fn kept(len: usize) -> usize {
    if len >= 8 { 4 } else { len / 2 }
}

/// The last four characters kept, every other character a `*`.
pub fn keep_last(value: &str) -> String {
    let len = value.chars().count();
    let hidden = len - kept(len);
    let mut out = String::with_capacity(value.len());
    out.extend(std::iter::repeat_n('*', hidden));
    out.extend(value.chars().skip(hidden));
    out
}

/// The first four characters kept, every other character a `*`.
pub fn keep_first(value: &str) -> String {
    let len = value.chars().count();
    let shown = kept(len);
    let mut out = String::with_capacity(value.len());
    out.extend(value.chars().take(shown));
    out.extend(std::iter::repeat_n('*', len - shown));
    out
}

/// `*****@domain` for an address with one `@`, a local part and a dotted
/// domain; anything else is redacted whole. Five stars, whatever the
/// local part's length, so the length is not shown either.
pub fn email_domain(value: &str, class: Option<&str>) -> String {
    let mut parts = value.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return redaction_marker(class);
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if local.is_empty() || !domain_ok {
        return redaction_marker(class);
    }
    format!("*****@{domain}")
}

#[cfg(test)]
mod tests;
