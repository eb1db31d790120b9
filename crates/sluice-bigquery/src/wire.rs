//! BigQuery REST shapes as the upstream sends and takes them: only the
//! fields the gateway uses, read leniently (BigQuery adds fields over
//! time), numbers that BigQuery sends as strings parsed here once.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use sluice_warehouse::{
    DatasetInfo, ParameterMode, QueryRequest, RoutineRef, TableInfo, TableRef, TableSchema,
    WarehouseError,
};

/// An int64 that BigQuery may send as a string (`"123"`) or a number.
fn int64(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn uint64(value: Option<&Value>) -> u64 {
    int64(value).map_or(0, |n| n.max(0) as u64)
}

/// The `configuration.query` of a job or a dry run.
pub fn query_configuration(query: &QueryRequest) -> Value {
    let mut config = json!({
        "query": query.sql,
        "useLegacySql": false,
    });
    if let Some((project, dataset)) = &query.default_dataset {
        config["defaultDataset"] = json!({"projectId": project, "datasetId": dataset});
    }
    if !query.parameters.is_empty() {
        config["parameterMode"] = json!(match query.parameter_mode {
            ParameterMode::Named => "NAMED",
            ParameterMode::Positional => "POSITIONAL",
        });
        config["queryParameters"] = json!(query.parameters);
    }
    if let Some(cap) = query.maximum_bytes_billed {
        config["maximumBytesBilled"] = json!(cap.to_string());
    }
    config
}

/// The body of `jobs.insert` for a query job.
pub fn job_insert(
    project: &str,
    job_id: &str,
    location: Option<&str>,
    query: &QueryRequest,
    dry_run: bool,
) -> Value {
    let mut reference = json!({"projectId": project, "jobId": job_id});
    if let Some(location) = location {
        reference["location"] = json!(location);
    }
    let mut configuration = json!({"query": query_configuration(query)});
    if dry_run {
        configuration["dryRun"] = json!(true);
    }
    if !query.labels.is_empty() {
        configuration["labels"] = json!(query.labels);
    }
    if let Some(ms) = query.job_timeout_ms.filter(|_| !dry_run) {
        configuration["jobTimeoutMs"] = json!(ms.to_string());
    }
    json!({"jobReference": reference, "configuration": configuration})
}

/// A job resource (`jobs.insert`, `jobs.get`, `jobs.cancel`'s `job`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Job {
    pub status: JobStatus,
    pub statistics: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JobStatus {
    pub state: String,
    pub error_result: Option<ErrorProto>,
}

/// BigQuery's `ErrorProto`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ErrorProto {
    pub reason: String,
    pub message: String,
}

impl Job {
    fn query_statistics(&self) -> Option<&Value> {
        self.statistics.get("query")
    }

    /// Whether the resource carries a finished query's statistics (its
    /// statement type at least), as `jobs.get` would.
    pub fn has_query_statistics(&self) -> bool {
        self.query_statistics()
            .and_then(|q| q.get("statementType"))
            .is_some_and(Value::is_string)
    }

    /// Whether the resource lists the tables the query read.
    pub fn lists_referenced_tables(&self) -> bool {
        self.query_statistics()
            .and_then(|q| q.get("referencedTables"))
            .is_some_and(Value::is_array)
    }

    pub fn total_bytes_processed(&self) -> u64 {
        let query = self
            .query_statistics()
            .and_then(|q| q.get("totalBytesProcessed"));
        uint64(query.or_else(|| self.statistics.get("totalBytesProcessed")))
    }

    pub fn statement_type(&self) -> String {
        self.query_statistics()
            .and_then(|q| q.get("statementType"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    pub fn schema(&self) -> Result<TableSchema, WarehouseError> {
        match self.query_statistics().and_then(|q| q.get("schema")) {
            Some(schema) => schema_from(schema),
            None => Ok(TableSchema::default()),
        }
    }

    pub fn referenced_tables(&self) -> Result<Vec<TableRef>, WarehouseError> {
        match self
            .query_statistics()
            .and_then(|q| q.get("referencedTables"))
        {
            Some(tables) => serde_json::from_value(tables.clone()).map_err(|e| {
                WarehouseError::internal(format!("BigQuery sent unreadable referencedTables: {e}"))
            }),
            None => Ok(Vec::new()),
        }
    }

    /// The persistent routines the query calls (`referencedRoutines`).
    pub fn referenced_routines(&self) -> Result<Vec<RoutineRef>, WarehouseError> {
        match self
            .query_statistics()
            .and_then(|q| q.get("referencedRoutines"))
        {
            Some(routines) => serde_json::from_value(routines.clone()).map_err(|e| {
                WarehouseError::internal(format!(
                    "BigQuery sent unreadable referencedRoutines: {e}"
                ))
            }),
            None => Ok(Vec::new()),
        }
    }
}

fn schema_from(value: &Value) -> Result<TableSchema, WarehouseError> {
    serde_json::from_value(value.clone())
        .map_err(|e| WarehouseError::internal(format!("BigQuery sent an unreadable schema: {e}")))
}

/// `jobs.getQueryResults` and `tabledata.list`: rows stay raw, so a page
/// passes through without its cells being parsed.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RowsPage {
    pub job_complete: Option<bool>,
    pub schema: Option<TableSchema>,
    pub total_rows: Option<Value>,
    pub rows: Vec<Box<RawValue>>,
}

impl RowsPage {
    pub fn total_rows(&self) -> u64 {
        uint64(self.total_rows.as_ref())
    }
}

/// One page of a list call.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListPage {
    pub next_page_token: Option<String>,
    pub datasets: Vec<Value>,
    pub tables: Vec<Value>,
    pub projects: Vec<Value>,
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
}

pub fn project_id(entry: &Value) -> Option<String> {
    text(entry, &["projectReference", "projectId"])
        .or_else(|| text(entry, &["id"]))
        .map(str::to_string)
}

/// A dataset from `datasets.get` or a `datasets.list` entry.
pub fn dataset(entry: &Value, default_location: &str) -> Option<DatasetInfo> {
    Some(DatasetInfo {
        project_id: text(entry, &["datasetReference", "projectId"])?.to_string(),
        dataset_id: text(entry, &["datasetReference", "datasetId"])?.to_string(),
        location: text(entry, &["location"])
            .unwrap_or(default_location)
            .to_string(),
        description: text(entry, &["description"]).map(str::to_string),
        creation_time_ms: int64(entry.get("creationTime")).unwrap_or(0),
    })
}

/// A table from `tables.get`, or a `tables.list` entry (which carries no
/// schema or sizes).
pub fn table(entry: &Value, default_location: &str) -> Result<TableInfo, WarehouseError> {
    let reference = entry
        .get("tableReference")
        .cloned()
        .map(serde_json::from_value::<TableRef>)
        .transpose()
        .ok()
        .flatten()
        .ok_or_else(|| WarehouseError::internal("BigQuery sent a table without tableReference"))?;
    let schema = match entry.get("schema") {
        Some(schema) => schema_from(schema)?,
        None => TableSchema::default(),
    };
    Ok(TableInfo {
        reference,
        schema,
        num_rows: uint64(entry.get("numRows")),
        num_bytes: uint64(entry.get("numBytes")),
        table_type: text(entry, &["type"]).unwrap_or("TABLE").to_string(),
        location: text(entry, &["location"])
            .unwrap_or(default_location)
            .to_string(),
        creation_time_ms: int64(entry.get("creationTime")).unwrap_or(0),
    })
}

/// BigQuery's error body: `{"error": {code, message, errors: [{reason}]}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ErrorDetail {
    pub code: u16,
    pub message: String,
    pub errors: Vec<ErrorProto>,
    pub status: String,
}

/// Labels as BigQuery accepts them: keys and values of lowercase letters,
/// digits, `_` and `-`, at most 63 characters, keys starting with a
/// letter. Anything else is replaced, so a principal's name can never make
/// a job fail to start. A value that had to be shortened ends in a hash of
/// the whole, so two long names stay apart.
pub fn label_value(raw: &str) -> String {
    const MAX: usize = 63;
    let mut out: String = raw
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' | '-' => c,
            _ => '_',
        })
        .collect();
    if out.len() > MAX {
        let hash = format!("{:08x}", fnv1a(raw.as_bytes()) as u32);
        out.truncate(MAX - hash.len() - 1);
        out.push('-');
        out.push_str(&hash);
    }
    out
}

/// FNV-1a: a short, stable fingerprint to keep shortened labels apart (not
/// a security measure).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Sanitized labels for a job.
pub fn labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(key, value)| {
            let mut key = label_value(key);
            if !key.starts_with(|c: char| c.is_ascii_lowercase()) {
                key = format!("l{key}");
                key.truncate(63);
            }
            (key, label_value(value))
        })
        .collect()
}
