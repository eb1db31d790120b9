//! BigQuery's data model as it crosses the [`crate::Warehouse`] trait:
//! schemas, table and dataset descriptions, query parameters, row pages.
//!
//! The serde shapes are BigQuery's REST shapes, so the gateway can put
//! these values into responses as they are.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A column type, by the names BigQuery's REST API uses in schemas
/// (`INTEGER`, `FLOAT`, `BOOLEAN`, `RECORD` are the legacy spellings the
/// API still returns; the Standard SQL spellings are accepted on input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FieldType {
    #[serde(rename = "INTEGER", alias = "INT64")]
    Int64,
    #[serde(rename = "FLOAT", alias = "FLOAT64")]
    Float64,
    #[serde(rename = "NUMERIC")]
    Numeric,
    #[serde(rename = "BIGNUMERIC", alias = "BIGDECIMAL")]
    BigNumeric,
    #[serde(rename = "BOOLEAN", alias = "BOOL")]
    Bool,
    #[serde(rename = "STRING")]
    String,
    #[serde(rename = "BYTES")]
    Bytes,
    #[serde(rename = "DATE")]
    Date,
    #[serde(rename = "DATETIME")]
    Datetime,
    #[serde(rename = "TIME")]
    Time,
    #[serde(rename = "TIMESTAMP")]
    Timestamp,
    #[serde(rename = "RECORD", alias = "STRUCT")]
    Record,
    #[serde(rename = "JSON")]
    Json,
    #[serde(rename = "INTERVAL")]
    Interval,
    #[serde(rename = "GEOGRAPHY")]
    Geography,
}

impl FieldType {
    /// The Standard SQL name, as `INFORMATION_SCHEMA.COLUMNS.data_type`
    /// and error messages spell it.
    pub fn sql_name(self) -> &'static str {
        match self {
            Self::Int64 => "INT64",
            Self::Float64 => "FLOAT64",
            Self::Numeric => "NUMERIC",
            Self::BigNumeric => "BIGNUMERIC",
            Self::Bool => "BOOL",
            Self::String => "STRING",
            Self::Bytes => "BYTES",
            Self::Date => "DATE",
            Self::Datetime => "DATETIME",
            Self::Time => "TIME",
            Self::Timestamp => "TIMESTAMP",
            Self::Record => "STRUCT",
            Self::Json => "JSON",
            Self::Interval => "INTERVAL",
            Self::Geography => "GEOGRAPHY",
        }
    }
}

/// `NULLABLE`, `REQUIRED` or `REPEATED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FieldMode {
    #[default]
    Nullable,
    Required,
    Repeated,
}

/// One column of a schema (BigQuery's `TableFieldSchema`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    #[serde(default)]
    pub mode: FieldMode,
    /// Sub-fields of a `RECORD`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// BigQuery's column-level policy tags (Data Catalog taxonomy
    /// resource names), when the table has them.
    #[serde(
        default,
        rename = "policyTags",
        skip_serializing_if = "Option::is_none"
    )]
    pub policy_tags: Option<PolicyTags>,
}

/// `policyTags`: `{"names": ["projects/…/policyTags/…"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PolicyTags {
    #[serde(default)]
    pub names: Vec<String>,
}

impl Field {
    pub fn new(name: impl Into<String>, field_type: FieldType, mode: FieldMode) -> Self {
        Self {
            name: name.into(),
            field_type,
            mode,
            fields: Vec::new(),
            description: None,
            policy_tags: None,
        }
    }

    /// The column's type as Standard SQL spells it, nested types included
    /// (`ARRAY<STRUCT<city STRING>>`).
    pub fn sql_type(&self) -> String {
        let inner = if self.field_type == FieldType::Record {
            let parts: Vec<String> = self
                .fields
                .iter()
                .map(|f| format!("{} {}", f.name, f.sql_type()))
                .collect();
            format!("STRUCT<{}>", parts.join(", "))
        } else {
            self.field_type.sql_name().to_string()
        };
        if self.mode == FieldMode::Repeated {
            format!("ARRAY<{inner}>")
        } else {
            inner
        }
    }
}

/// A schema: `{"fields": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TableSchema {
    pub fields: Vec<Field>,
}

/// `project.dataset.table`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableRef {
    pub project_id: String,
    pub dataset_id: String,
    pub table_id: String,
}

impl TableRef {
    pub fn new(
        project_id: impl Into<String>,
        dataset_id: impl Into<String>,
        table_id: impl Into<String>,
    ) -> Self {
        Self {
            project_id: project_id.into(),
            dataset_id: dataset_id.into(),
            table_id: table_id.into(),
        }
    }
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.project_id, self.dataset_id, self.table_id
        )
    }
}

/// `project.dataset.routine`: a persistent function, table function or
/// procedure a query calls (the dry run's `referencedRoutines`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutineRef {
    pub project_id: String,
    pub dataset_id: String,
    pub routine_id: String,
}

impl RoutineRef {
    pub fn new(
        project_id: impl Into<String>,
        dataset_id: impl Into<String>,
        routine_id: impl Into<String>,
    ) -> Self {
        Self {
            project_id: project_id.into(),
            dataset_id: dataset_id.into(),
            routine_id: routine_id.into(),
        }
    }
}

impl std::fmt::Display for RoutineRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.project_id, self.dataset_id, self.routine_id
        )
    }
}

/// What the warehouse knows of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetInfo {
    pub project_id: String,
    pub dataset_id: String,
    pub location: String,
    pub description: Option<String>,
    /// Milliseconds since the epoch.
    pub creation_time_ms: i64,
}

/// What the warehouse knows of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub reference: TableRef,
    pub schema: TableSchema,
    pub num_rows: u64,
    pub num_bytes: u64,
    /// `TABLE` or `VIEW`.
    pub table_type: String,
    pub location: String,
    /// Milliseconds since the epoch.
    pub creation_time_ms: i64,
}

/// `NAMED` (`@name`) or `POSITIONAL` (`?`) parameters. Clients send either
/// case (Node sends `named`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ParameterMode {
    #[default]
    Named,
    Positional,
}

impl ParameterMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "NAMED" => Some(Self::Named),
            "POSITIONAL" => Some(Self::Positional),
            _ => None,
        }
    }
}

/// A query parameter as the REST API carries it (`QueryParameter`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryParameter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub parameter_type: ParameterType,
    #[serde(default)]
    pub parameter_value: ParameterValue,
}

/// `QueryParameterType`: a scalar type name, or `ARRAY` with `arrayType`,
/// or `STRUCT` with `structTypes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParameterType {
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_type: Option<Box<ParameterType>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub struct_types: Vec<StructParameterType>,
    /// Accepted for completeness; ranges are not supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_element_type: Option<Box<ParameterType>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StructParameterType {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub field_type: ParameterType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `QueryParameterValue`. `value` is kept as JSON because the Node client
/// sends numbers and booleans unquoted where Python sends strings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParameterValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_values: Option<Vec<ParameterValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub struct_values: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_value: Option<serde_json::Value>,
}

/// One query, as a job or a dry run asks for it (and as a job's record
/// keeps it).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct QueryRequest {
    pub sql: String,
    /// The project the job runs in: a one- or two-part table name is
    /// resolved against it.
    pub default_project: String,
    /// `defaultDataset`: `(project, dataset)` for one-part table names.
    pub default_dataset: Option<(String, String)>,
    pub parameter_mode: ParameterMode,
    pub parameters: Vec<QueryParameter>,
    /// `maximumBytesBilled`: refuse the query if it would process more.
    pub maximum_bytes_billed: Option<u64>,
    /// Job labels naming who asked (BigQuery's label rules already
    /// applied), so the warehouse's own job history attributes the job.
    pub labels: std::collections::BTreeMap<String, String>,
    /// `jobTimeoutMs`: the warehouse stops the job after this long.
    pub job_timeout_ms: Option<u64>,
}

/// A page of rows, each already in BigQuery's `{"f":[{"v":…}]}` shape.
#[derive(Debug, Default)]
pub struct RowPage {
    pub rows: Vec<Box<RawValue>>,
    /// Rows in the whole result or table, not just this page.
    pub total_rows: u64,
}
