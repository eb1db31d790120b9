//! Content detectors: the backstop that reads every string cell no column
//! mask covers, finds sensitive values by their shape, and masks only the
//! spans it found.
//!
//! The scanners are hand-written, one pass each over the cell's bytes, and
//! a cell is only handed to those whose trigger it contains (a digit, an
//! `@`, a key prefix): most cells are short words and leave at once.
//! Where a checksum exists it must hold — Luhn for cards, ISO 7064 mod 97
//! for IBANs, the ABA 3-7-1 weights for routing numbers, the SSA rules for
//! SSNs — so ordinary numbers are not mangled. Numbers that have no
//! checksum and no distinctive shape (a bare nine-digit SSN, a routing
//! number) only match next to a keyword that says what they are.

use std::borrow::Cow;
use std::fmt;

use crate::pseudonym::PseudonymKey;
use crate::strategy::{Strategy, StrategyError, keep_first, keep_last, redaction_marker};

mod email;
mod iban;
mod network;
mod numbers;
mod phone;
mod secrets;
mod text;

/// What a detector finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// US Social Security (and ITIN) numbers: `NNN-NN-NNNN`, or nine
    /// digits after a keyword.
    UsSsn,
    /// Payment card numbers: 13–19 digits on a card network's prefix,
    /// passing Luhn.
    CreditCard,
    Email,
    /// E.164 (`+…`) and US, UK and German national formats.
    Phone,
    /// International bank account numbers passing mod 97.
    Iban,
    /// US ABA routing numbers, passing the 3-7-1 checksum, after a keyword.
    UsRouting,
    Ipv4,
    Ipv6,
    /// AWS access key ids (`AKIA…`, `ASIA…`).
    AwsAccessKey,
    /// Google API keys (`AIza…`).
    GcpApiKey,
    /// GitHub tokens (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`).
    GithubToken,
    /// Slack tokens (`xoxb-`, `xoxp-`, …).
    SlackToken,
    /// PEM private-key blocks.
    PrivateKey,
}

impl Class {
    /// Every class, in the order of their names in configuration.
    pub const ALL: [Class; 13] = [
        Class::UsSsn,
        Class::CreditCard,
        Class::Email,
        Class::Phone,
        Class::Iban,
        Class::UsRouting,
        Class::Ipv4,
        Class::Ipv6,
        Class::AwsAccessKey,
        Class::GcpApiKey,
        Class::GithubToken,
        Class::SlackToken,
        Class::PrivateKey,
    ];

    /// The class's name in configuration, markers, audit and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Class::UsSsn => "us_ssn",
            Class::CreditCard => "credit_card",
            Class::Email => "email",
            Class::Phone => "phone",
            Class::Iban => "iban",
            Class::UsRouting => "us_routing",
            Class::Ipv4 => "ipv4",
            Class::Ipv6 => "ipv6",
            Class::AwsAccessKey => "aws_access_key",
            Class::GcpApiKey => "gcp_api_key",
            Class::GithubToken => "github_token",
            Class::SlackToken => "slack_token",
            Class::PrivateKey => "private_key",
        }
    }

    /// A class by its configuration name.
    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == name)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One sensitive span of a text: byte offsets, always on character
/// boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub start: usize,
    pub end: usize,
    pub class: Class,
}

/// A detector name configuration does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown detector `{0}`: use one of {names}", names = detector_names())]
pub struct UnknownDetector(pub String);

fn detector_names() -> String {
    Class::ALL.map(Class::name).join(", ")
}

/// A set of enabled detectors.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Detectors {
    enabled: u16,
}

impl Detectors {
    /// Every detector.
    pub fn all() -> Self {
        Class::ALL.into_iter().collect()
    }

    /// No detector.
    pub fn none() -> Self {
        Self { enabled: 0 }
    }

    /// The detectors named in configuration (`all` enables every one).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Self, UnknownDetector> {
        let mut set = Self::none();
        for name in names {
            let name = name.as_ref();
            if name == "all" {
                set = Self::all();
                continue;
            }
            let class = Class::from_name(name).ok_or_else(|| UnknownDetector(name.into()))?;
            set.enabled |= class.bit();
        }
        Ok(set)
    }

    pub fn contains(&self, class: Class) -> bool {
        self.enabled & class.bit() != 0
    }

    pub fn is_empty(&self) -> bool {
        self.enabled == 0
    }

    /// The enabled classes.
    pub fn classes(&self) -> impl Iterator<Item = Class> + '_ {
        Class::ALL.into_iter().filter(|c| self.contains(*c))
    }

    /// Every sensitive span of `text`, in order, none overlapping: where
    /// two detectors claim overlapping spans, the one starting first (then
    /// the longer) wins, and the other is dropped.
    pub fn scan(&self, text: &str) -> Vec<Match> {
        let mut found = Vec::new();
        self.scan_into(text, &mut found);
        found
    }

    /// [`Detectors::scan`] into a buffer the caller reuses.
    pub fn scan_into(&self, text: &str, found: &mut Vec<Match>) {
        found.clear();
        let bytes = text.as_bytes();
        let triggers = text::Triggers::of(bytes);
        if triggers.digit {
            if self.contains(Class::UsSsn) {
                numbers::ssn(bytes, found);
            }
            if self.contains(Class::CreditCard) {
                numbers::card(bytes, found);
            }
            if self.contains(Class::UsRouting) {
                numbers::routing(bytes, found);
            }
            if self.contains(Class::Phone) {
                phone::find(bytes, found);
            }
            if self.contains(Class::Iban) && triggers.upper {
                iban::find(bytes, found);
            }
            if self.contains(Class::Ipv4) && triggers.dot {
                network::ipv4(bytes, found);
            }
        }
        if self.contains(Class::Ipv6) && triggers.colon {
            network::ipv6(text, found);
        }
        if self.contains(Class::Email) && triggers.at {
            email::find(bytes, found);
        }
        if triggers.key_prefix {
            secrets::tokens(bytes, self, found);
        }
        if self.contains(Class::PrivateKey) && triggers.dashes {
            secrets::private_keys(text, found);
        }
        resolve_overlaps(found);
    }

    /// `text` with every detected span masked by `strategy` (see
    /// [`mask_span`]); borrowed when nothing was found.
    pub fn mask_text<'t>(
        &self,
        text: &'t str,
        strategy: &Strategy,
        key: Option<&PseudonymKey>,
    ) -> Result<Cow<'t, str>, StrategyError> {
        let found = self.scan(text);
        replace_spans(text, &found, strategy, key)
    }
}

impl FromIterator<Class> for Detectors {
    fn from_iter<I: IntoIterator<Item = Class>>(iter: I) -> Self {
        Self {
            enabled: iter.into_iter().fold(0, |acc, c| acc | c.bit()),
        }
    }
}

impl Default for Detectors {
    /// Detectors are on by default: every one.
    fn default() -> Self {
        Self::all()
    }
}

impl fmt::Debug for Detectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.classes().map(Class::name))
            .finish()
    }
}

fn resolve_overlaps(found: &mut Vec<Match>) {
    if found.len() < 2 {
        return;
    }
    found.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut end = 0;
    found.retain(|m| {
        let keep = m.start >= end;
        if keep {
            end = m.end;
        }
        keep
    });
}

/// `text` with `found` (sorted, not overlapping) masked by `strategy`.
pub fn replace_spans<'t>(
    text: &'t str,
    found: &[Match],
    strategy: &Strategy,
    key: Option<&PseudonymKey>,
) -> Result<Cow<'t, str>, StrategyError> {
    if found.is_empty() {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut at = 0;
    for m in found {
        out.push_str(&text[at..m.start]);
        out.push_str(&mask_span(&text[m.start..m.end], m.class, strategy, key)?);
        at = m.end;
    }
    out.push_str(&text[at..]);
    Ok(Cow::Owned(out))
}

/// One detected span masked: `redact` (and `null` and `year`, which have
/// no meaning inside a text) give `[REDACTED:<class>]`; `email_domain`
/// keeps an address's domain and redacts other classes; `pseudonym` keys
/// the span under its context, or under the class's name when the context
/// is empty — the same space as a column pseudonymized with the class's
/// name as context, so a value found in free text still joins with the
/// column it came from; `deny` refuses.
pub fn mask_span(
    span: &str,
    class: Class,
    strategy: &Strategy,
    key: Option<&PseudonymKey>,
) -> Result<String, StrategyError> {
    let marker = || redaction_marker(Some(class.name()));
    Ok(match strategy {
        Strategy::Deny => return Err(StrategyError::Denied),
        Strategy::Redact | Strategy::Null | Strategy::Year => marker(),
        // A private-key block keeps nothing: four characters of it are
        // its header, and a partial key is still a leak.
        Strategy::Last4 | Strategy::First4 if class == Class::PrivateKey => marker(),
        Strategy::Last4 => keep_last(span),
        Strategy::First4 => keep_first(span),
        Strategy::EmailDomain if class == Class::Email => {
            crate::strategy::email_domain(span, Some(class.name()))
        }
        Strategy::EmailDomain => marker(),
        Strategy::Pseudonym { context } => {
            let key = key.ok_or(StrategyError::MissingKey)?;
            let context = if context.is_empty() {
                class.name()
            } else {
                context
            };
            key.text(context, span)
        }
    })
}

#[cfg(test)]
mod tests;
