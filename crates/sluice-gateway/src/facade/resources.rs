//! BigQuery resource JSON: jobs, datasets, tables, projects, row pages.
//! One place builds each shape, so every method answers alike.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use sluice_store::{JobRecord, JobState};
use sluice_warehouse::{DatasetInfo, QueryOutcome, TableInfo, TableRef};

use crate::error::GatewayError;

/// An `etag`: changes whenever the resource does.
pub fn etag(parts: &[&str]) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    parts.hash(&mut hasher);
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(hasher.finish().to_be_bytes())
}

pub fn job_reference(job: &JobRecord) -> Value {
    json!({"projectId": job.project_id, "jobId": job.job_id, "location": job.location})
}

/// The outcome a finished job recorded, if it succeeded.
pub fn outcome(job: &JobRecord) -> Option<QueryOutcome> {
    job.statistics
        .as_ref()
        .and_then(|s| serde_json::from_value(s.clone()).ok())
}

/// BigQuery bills at least 10 MiB per table scanned, in whole MiB.
pub fn bytes_billed(processed: u64) -> u64 {
    const MIB: u64 = 1 << 20;
    if processed == 0 {
        0
    } else {
        processed.div_ceil(MIB).max(10) * MIB
    }
}

fn referenced_tables(tables: &[TableRef]) -> Value {
    Value::Array(
        tables
            .iter()
            .map(|t| json!({"projectId": t.project_id, "datasetId": t.dataset_id, "tableId": t.table_id}))
            .collect(),
    )
}

/// `statistics.query` (and the top-level byte counts) of a query.
pub fn query_statistics(outcome: &QueryOutcome, with_schema: bool) -> Map<String, Value> {
    let processed = outcome.total_bytes_processed.to_string();
    let mut query = json!({
        "totalBytesProcessed": processed,
        "totalBytesBilled": bytes_billed(outcome.total_bytes_processed).to_string(),
        "billingTier": 1,
        "cacheHit": false,
        "statementType": outcome.statement_type,
        "referencedTables": referenced_tables(&outcome.referenced_tables),
        "totalSlotMs": "0",
    });
    if with_schema {
        query["schema"] = json!(outcome.schema);
    }
    let mut statistics = Map::new();
    statistics.insert("totalBytesProcessed".into(), Value::String(processed));
    statistics.insert("query".into(), query);
    statistics
}

/// What a PENDING job waits for ("waiting for approval by …"), as
/// recorded when it was parked.
pub fn waiting_for(job: &JobRecord) -> Option<String> {
    job.request
        .as_ref()?
        .get("parked")?
        .get("message")?
        .as_str()
        .map(str::to_owned)
}

/// A `Job` resource. It never carries `configuration.query.destinationTable`:
/// with one, the Python client would read results over the BigQuery Storage
/// API, around the gateway.
pub fn job(job: &JobRecord, base_url: &str) -> Value {
    let mut status = json!({"state": job.state.as_str()});
    if job.state == JobState::Pending
        && let Some(message) = waiting_for(job)
    {
        // What a job that waits for approval waits for, for whoever reads
        // the job (clients keep unknown fields of a status).
        status["message"] = json!(message);
    }
    if let Some(error) = &job.error {
        status["errorResult"] = error.clone();
        status["errors"] = json!([error]);
    }
    let mut statistics = Map::new();
    statistics.insert("creationTime".into(), json!(job.created_ms.to_string()));
    if let Some(start) = job.started_ms {
        statistics.insert("startTime".into(), json!(start.to_string()));
    }
    if job.state == JobState::Done
        && let Some(end) = job.ended_ms
    {
        statistics.insert("endTime".into(), json!(end.to_string()));
    }
    if let Some(outcome) = outcome(job) {
        statistics.extend(query_statistics(&outcome, true));
    }
    let mut configuration = job.configuration.clone();
    if let Some(query) = configuration
        .get_mut("query")
        .and_then(Value::as_object_mut)
    {
        query.remove("destinationTable");
    }
    json!({
        "kind": "bigquery#job",
        "etag": etag(&[&job.project_id, &job.job_id, job.state.as_str()]),
        "id": format!("{}:{}.{}", job.project_id, job.location, job.job_id),
        "selfLink": format!(
            "{base_url}/bigquery/v2/projects/{}/jobs/{}?location={}",
            job.project_id, job.job_id, job.location
        ),
        "user_email": job.principal,
        "principal_subject": format!("user:{}", job.principal),
        "jobReference": job_reference(job),
        "configuration": configuration,
        "status": status,
        "statistics": statistics,
    })
}

pub fn dataset(info: &DatasetInfo, base_url: &str) -> Value {
    json!({
        "kind": "bigquery#dataset",
        "etag": etag(&[&info.project_id, &info.dataset_id]),
        "id": format!("{}:{}", info.project_id, info.dataset_id),
        "selfLink": format!("{base_url}/bigquery/v2/projects/{}/datasets/{}", info.project_id, info.dataset_id),
        "datasetReference": {"projectId": info.project_id, "datasetId": info.dataset_id},
        "description": info.description,
        "creationTime": info.creation_time_ms.to_string(),
        "lastModifiedTime": info.creation_time_ms.to_string(),
        "location": info.location,
        "type": "DEFAULT",
    })
}

pub fn dataset_list_entry(info: &DatasetInfo) -> Value {
    json!({
        "kind": "bigquery#dataset",
        "id": format!("{}:{}", info.project_id, info.dataset_id),
        "datasetReference": {"projectId": info.project_id, "datasetId": info.dataset_id},
        "location": info.location,
        "type": "DEFAULT",
    })
}

fn table_reference(t: &TableRef) -> Value {
    json!({"projectId": t.project_id, "datasetId": t.dataset_id, "tableId": t.table_id})
}

pub fn table(info: &TableInfo, base_url: &str) -> Value {
    let t = &info.reference;
    json!({
        "kind": "bigquery#table",
        "etag": etag(&[&t.project_id, &t.dataset_id, &t.table_id]),
        "id": format!("{}:{}.{}", t.project_id, t.dataset_id, t.table_id),
        "selfLink": format!(
            "{base_url}/bigquery/v2/projects/{}/datasets/{}/tables/{}",
            t.project_id, t.dataset_id, t.table_id
        ),
        "tableReference": table_reference(t),
        "schema": info.schema,
        "numRows": info.num_rows.to_string(),
        "numBytes": info.num_bytes.to_string(),
        "numLongTermBytes": "0",
        "creationTime": info.creation_time_ms.to_string(),
        "lastModifiedTime": info.creation_time_ms.to_string(),
        "type": info.table_type,
        "location": info.location,
    })
}

pub fn table_list_entry(info: &TableInfo) -> Value {
    let t = &info.reference;
    json!({
        "kind": "bigquery#table",
        "id": format!("{}:{}.{}", t.project_id, t.dataset_id, t.table_id),
        "tableReference": table_reference(t),
        "type": info.table_type,
        "creationTime": info.creation_time_ms.to_string(),
    })
}

/// A response with a page of rows: the fields in `head`, then `rows`
/// written as they are (already BigQuery JSON), with no re-encoding.
#[derive(Debug, Serialize)]
pub struct RowsResponse {
    #[serde(flatten)]
    pub head: Map<String, Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<Box<RawValue>>,
}

impl RowsResponse {
    pub fn to_json(&self) -> Result<Vec<u8>, GatewayError> {
        serde_json::to_vec(self).map_err(GatewayError::internal)
    }
}
