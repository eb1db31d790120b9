//! Request bodies as the BigQuery REST API defines them.
//!
//! Every field the API defines for these requests is listed, so a typo or
//! an invented field is refused (`deny_unknown_fields`) the way BigQuery
//! refuses it, instead of being silently ignored. Fields Sluice accepts
//! but does not act on are kept as raw JSON; fields that would change what
//! a query does in a way Sluice does not support are refused by name in
//! [`crate::facade::jobs`].

// Many fields are read by nothing: they are declared so that BigQuery's
// complete request shape parses while unknown names are refused.
#![allow(dead_code)]

use serde::Deserialize;
use serde_json::Value;
use sluice_warehouse::QueryParameter;

use crate::error::GatewayError;

/// The most characters of a parse error shown to the caller (and logged):
/// serde's messages quote the offending value or field name, which a
/// hostile body can make megabytes long.
const MAX_ERROR_CHARS: usize = 300;

/// Parses a JSON body, answering BigQuery's `invalid` for anything wrong.
///
/// The body is already bounded (`limits.max_body_bytes`) and `serde_json`
/// refuses nesting deeper than 128 levels, so a hostile body cannot
/// exhaust the stack here or in what later walks the parsed values.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::invalid(
            "Invalid JSON payload received: the request body is empty.",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        let mut detail = e.to_string();
        if let Some((cut, _)) = detail.char_indices().nth(MAX_ERROR_CHARS) {
            detail.truncate(cut);
            // The position was at the end: keep it.
            detail.push_str(&format!("… at line {} column {}", e.line(), e.column()));
        }
        GatewayError::invalid(format!("Invalid JSON payload received. {detail}."))
    })
}

/// `jobReference`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobReference {
    pub project_id: Option<String>,
    pub job_id: Option<String>,
    pub location: Option<String>,
}

/// `DatasetReference`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatasetReference {
    pub project_id: Option<String>,
    pub dataset_id: String,
}

/// `DataFormatOptions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FormatOptions {
    pub use_int64_timestamp: Option<bool>,
    pub timestamp_output_format: Option<String>,
}

/// A 64-bit integer the API carries as a string (or, from some clients, a
/// number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int64(pub i64);

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Int64(n)),
            Raw::Text(t) => t.trim().parse().map(Int64).map_err(|_| {
                let shown: String = t.chars().take(40).collect();
                serde::de::Error::custom(format!("\"{shown}\" is not a 64-bit integer"))
            }),
        }
    }
}

/// The body of `jobs.insert`: a `Job` resource.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobInsert {
    pub kind: Option<String>,
    pub etag: Option<String>,
    pub id: Option<String>,
    pub self_link: Option<String>,
    #[serde(rename = "user_email")]
    pub user_email: Option<String>,
    #[serde(default)]
    pub configuration: JobConfiguration,
    #[serde(default)]
    pub job_reference: JobReference,
    pub statistics: Option<Value>,
    pub status: Option<Value>,
    #[serde(rename = "principal_subject")]
    pub principal_subject: Option<String>,
    pub job_creation_reason: Option<Value>,
}

/// `JobConfiguration`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobConfiguration {
    pub job_type: Option<String>,
    pub query: Option<JobConfigurationQuery>,
    pub load: Option<Value>,
    pub copy: Option<Value>,
    pub extract: Option<Value>,
    pub dry_run: Option<bool>,
    pub job_timeout_ms: Option<Int64>,
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    pub reservation: Option<String>,
    pub max_slots: Option<i64>,
}

/// `JobConfigurationQuery`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobConfigurationQuery {
    pub query: Option<String>,
    pub destination_table: Option<Value>,
    pub table_definitions: Option<Value>,
    pub user_defined_function_resources: Option<Value>,
    pub create_disposition: Option<String>,
    pub write_disposition: Option<String>,
    pub default_dataset: Option<DatasetReference>,
    pub priority: Option<String>,
    pub preserve_nulls: Option<bool>,
    pub allow_large_results: Option<bool>,
    pub use_query_cache: Option<bool>,
    pub flatten_results: Option<bool>,
    pub maximum_billing_tier: Option<i64>,
    pub maximum_bytes_billed: Option<Int64>,
    pub use_legacy_sql: Option<bool>,
    pub parameter_mode: Option<String>,
    #[serde(default)]
    pub query_parameters: Vec<QueryParameter>,
    pub system_variables: Option<Value>,
    pub schema_update_options: Option<Value>,
    pub time_partitioning: Option<Value>,
    pub range_partitioning: Option<Value>,
    pub clustering: Option<Value>,
    pub destination_encryption_configuration: Option<Value>,
    pub script_options: Option<Value>,
    pub connection_properties: Option<Value>,
    pub create_session: Option<bool>,
    pub continuous: Option<bool>,
    pub write_incremental_results: Option<bool>,
}

/// The body of `jobs.query` (`QueryRequest`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryRequestBody {
    pub kind: Option<String>,
    pub query: Option<String>,
    pub max_results: Option<u32>,
    pub default_dataset: Option<DatasetReference>,
    pub timeout_ms: Option<u32>,
    pub job_timeout_ms: Option<Int64>,
    pub max_slots: Option<i64>,
    pub destination_encryption_configuration: Option<Value>,
    pub dry_run: Option<bool>,
    pub preserve_nulls: Option<bool>,
    pub use_query_cache: Option<bool>,
    pub use_legacy_sql: Option<bool>,
    pub parameter_mode: Option<String>,
    #[serde(default)]
    pub query_parameters: Vec<QueryParameter>,
    pub location: Option<String>,
    #[serde(default)]
    pub format_options: FormatOptions,
    pub connection_properties: Option<Value>,
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    pub maximum_bytes_billed: Option<Int64>,
    pub request_id: Option<String>,
    pub create_session: Option<bool>,
    pub continuous: Option<bool>,
    pub job_creation_mode: Option<String>,
    pub reservation: Option<String>,
    pub write_incremental_results: Option<bool>,
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_python_client_sends_parses() {
        let body = br#"{"jobReference":{"jobId":"abc","projectId":"demo","location":"US"},
            "configuration":{"query":{"useLegacySql":false,"query":"SELECT 1",
            "queryParameters":[{"name":"x","parameterType":{"type":"INT64"},"parameterValue":{"value":"2"}}],
            "parameterMode":"NAMED"},"dryRun":true,"labels":{"a":"b"}}}"#;
        let job: JobInsert = parse_body(body).unwrap();
        let query = job.configuration.query.unwrap();
        assert_eq!(query.query.as_deref(), Some("SELECT 1"));
        assert_eq!(query.query_parameters.len(), 1);
        assert_eq!(job.configuration.dry_run, Some(true));
    }

    #[test]
    fn unknown_fields_and_bad_json_are_invalid() {
        for body in [
            &br#"{"configuration":{"query":{"query":"SELECT 1","qurey":"x"}}}"#[..],
            br#"{"configuration":"#,
            br#"[]"#,
            b"",
            br#"{"query":"SELECT 1","maximumBytesBilled":"lots"}"#,
        ] {
            let err = parse_body::<JobInsert>(body)
                .err()
                .or_else(|| parse_body::<QueryRequestBody>(body).err())
                .expect("refused");
            assert_eq!((err.status.as_u16(), err.reason), (400, "invalid"));
        }
        let err =
            parse_body::<QueryRequestBody>(br#"{"query":"SELECT 1","maximumBytesBilled":"lots"}"#)
                .unwrap_err();
        assert!(err.message.contains("lots"), "{}", err.message);
    }
}
