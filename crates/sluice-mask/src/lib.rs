//! Sluice masking: what sensitive values become on their way out of the
//! gateway. Pure — no I/O, no clock, no network — so every piece can be
//! tested and fuzzed alone and applied by any replica to any page.
//!
//! - [`strategy`]: `redact`, `null`, `last4`/`first4`, `email_domain`,
//!   `year`, `deny` and keyed `pseudonym`s, each rendered in the column's
//!   own type;
//! - [`detect`]: content detectors (SSNs, cards, e-mail, phones, IBANs,
//!   routing numbers, IP addresses, access tokens, private keys), the
//!   backstop for string cells no column mask covers;
//! - [`page`]: the row-page transformer that applies a [`MaskPlan`] to a
//!   page of BigQuery REST rows and counts what it masked.
//!
//! Which output column derives from which sensitive source (lineage) is
//! decided elsewhere; this crate applies the plan it is given, and refuses
//! a page it cannot apply it to.

pub mod detect;
pub mod page;
pub mod pseudonym;
pub mod schema;
pub mod strategy;
mod year;

pub use detect::{Class, Detectors, Match, UnknownDetector};
pub use page::{
    ColumnMask, MaskCount, MaskCounts, MaskPlan, MaskedPage, PageError, PageMasker, PlanError,
    masked_schema,
};
pub use pseudonym::{KeyError, PseudonymKey};
pub use schema::{FieldMode, FieldSchema, FieldType};
pub use strategy::{MaskedCell, Strategy, StrategyError, UnknownStrategy};
pub use year::truncate_to_year;
