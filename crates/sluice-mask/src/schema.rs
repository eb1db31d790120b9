//! The shape of a result page, as BigQuery's REST API describes it
//! (`TableFieldSchema`): enough to know which cell is which, what type it
//! renders, and where records and arrays nest.
//!
//! This crate keeps its own copy rather than depending on the warehouse
//! crate, so masking stays pure and the gateway converts at its edge.

use serde::{Deserialize, Serialize};

/// A column's type, by the names BigQuery's REST API uses (legacy and
/// Standard SQL spellings are both accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FieldType {
    String,
    Bytes,
    #[serde(alias = "INT64")]
    Integer,
    #[serde(alias = "FLOAT64")]
    Float,
    Numeric,
    #[serde(alias = "BIGDECIMAL")]
    Bignumeric,
    #[serde(alias = "BOOL")]
    Boolean,
    Timestamp,
    Date,
    Time,
    Datetime,
    Geography,
    Json,
    Interval,
    Range,
    #[serde(alias = "STRUCT")]
    Record,
    /// A type this build does not know. Its cells are never scanned and a
    /// column mask on it renders NULL: nothing is passed on that masking
    /// cannot reason about.
    #[serde(other)]
    Unknown,
}

impl FieldType {
    /// Whether cells of this type are free text the content detectors
    /// should read. JSON columns arrive as their JSON text.
    pub fn is_text(self) -> bool {
        matches!(self, FieldType::String | FieldType::Json)
    }
}

/// `NULLABLE` (the default), `REQUIRED` or `REPEATED`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FieldMode {
    #[default]
    Nullable,
    Required,
    Repeated,
}

/// One field of a schema; a RECORD carries its own `fields`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSchema {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    #[serde(default)]
    pub mode: FieldMode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldSchema>,
}

impl FieldSchema {
    /// A scalar field.
    pub fn new(name: impl Into<String>, field_type: FieldType, mode: FieldMode) -> Self {
        Self {
            name: name.into(),
            field_type,
            mode,
            fields: Vec::new(),
        }
    }

    /// A RECORD field with its nested fields.
    pub fn record(name: impl Into<String>, mode: FieldMode, fields: Vec<FieldSchema>) -> Self {
        Self {
            name: name.into(),
            field_type: FieldType::Record,
            mode,
            fields,
        }
    }
}
