//! The tools Sluice's MCP server lists: first Google's remote BigQuery MCP
//! tools, with their names and input schemas (so an agent configured for
//! `https://bigquery.googleapis.com/mcp` switches by changing the URL),
//! then Sluice's own. `tests/e2e/mcp_google_tools.json` holds the
//! published schemas these are checked against.

use std::sync::{Arc, LazyLock};

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

/// A tool's name, as the agent calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    ListDatasetIds,
    GetDatasetInfo,
    ListTableIds,
    GetTableInfo,
    ExecuteSql,
    ExecuteSqlReadonly,
    GetQueryResults,
    GetJob,
    CancelJob,
    EstimateQuery,
    ExplainRefusal,
    WaitForApproval,
    RequestAccess,
}

impl Name {
    pub const ALL: [Name; 13] = [
        Name::ListDatasetIds,
        Name::GetDatasetInfo,
        Name::ListTableIds,
        Name::GetTableInfo,
        Name::ExecuteSql,
        Name::ExecuteSqlReadonly,
        Name::GetQueryResults,
        Name::GetJob,
        Name::CancelJob,
        Name::EstimateQuery,
        Name::ExplainRefusal,
        Name::WaitForApproval,
        Name::RequestAccess,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Name::ListDatasetIds => "list_dataset_ids",
            Name::GetDatasetInfo => "get_dataset_info",
            Name::ListTableIds => "list_table_ids",
            Name::GetTableInfo => "get_table_info",
            Name::ExecuteSql => "execute_sql",
            Name::ExecuteSqlReadonly => "execute_sql_readonly",
            Name::GetQueryResults => "get_query_results",
            Name::GetJob => "get_job",
            Name::CancelJob => "cancel_job",
            Name::EstimateQuery => "estimate_query",
            Name::ExplainRefusal => "explain_refusal",
            Name::WaitForApproval => "wait_for_approval",
            Name::RequestAccess => "request_access",
        }
    }

    pub fn parse(name: &str) -> Option<Name> {
        Name::ALL.into_iter().find(|n| n.as_str() == name)
    }
}

/// Every tool, in the order `tools/list` gives them.
pub fn all() -> &'static [Tool] {
    static TOOLS: LazyLock<Vec<Tool>> =
        LazyLock::new(|| Name::ALL.into_iter().map(definition).collect());
    &TOOLS
}

/// One tool by name.
pub fn get(name: &str) -> Option<Tool> {
    all().iter().find(|t| t.name == name).cloned()
}

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn integer(description: &str) -> Value {
    json!({"type": "integer", "description": description})
}

const PROJECT: &str = "The project the call is made in (and a query billed to).";
const JOB: &str = "The job's id, as a query tool returned it (jobId).";
const LOCATION: &str = "The job's location; optional.";

fn schema(required: &[&str], properties: Value) -> Arc<JsonObject> {
    let mut object = JsonObject::new();
    object.insert("type".into(), json!("object"));
    object.insert("properties".into(), properties);
    object.insert("required".into(), json!(required));
    Arc::new(object)
}

/// `{projectId, jobId, location}`: the job tools' input.
fn job_schema() -> Arc<JsonObject> {
    schema(
        &["projectId", "jobId"],
        json!({
            "projectId": string(PROJECT),
            "jobId": string(JOB),
            "location": string(LOCATION),
        }),
    )
}

fn query_properties() -> Value {
    json!({
        "projectId": string(PROJECT),
        "query": string("The GoogleSQL query to run."),
        "dryRun": {
            "type": "boolean",
            "description": "Only check and estimate the query (bytes it would process); nothing runs."
        },
        "labels": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Labels for the job (BigQuery's label rules). Sluice adds goog-mcp-server: true."
        },
        "jobTimeoutMs": {
            "type": "string",
            "format": "int64",
            "description": "Stop the job after this many milliseconds (an int64 written as a string)."
        },
        "timeoutMs": integer(
            "How long to wait for the result, in milliseconds, before answering jobComplete: false \
             with the jobId (Sluice waits at most mcp.wait, 10 s by default)."
        ),
    })
}

fn annotations(read_only: bool, destructive: bool, idempotent: bool) -> ToolAnnotations {
    ToolAnnotations::from_raw(
        None,
        Some(read_only),
        Some(destructive),
        Some(idempotent),
        Some(false),
    )
}

fn definition(name: Name) -> Tool {
    let (description, input, notes): (&str, Arc<JsonObject>, ToolAnnotations) = match name {
        Name::ListDatasetIds => (
            "List the ids of the BigQuery datasets in a project that the caller may see.",
            schema(
                &["projectId"],
                json!({
                    "projectId": string(PROJECT),
                    "pageSize": integer("Most dataset ids to return."),
                    "pageToken": string("nextPageToken of an earlier call, for the next page."),
                }),
            ),
            annotations(true, false, true),
        ),
        Name::GetDatasetInfo => (
            "Get a BigQuery dataset's metadata (as datasets.get returns it).",
            schema(
                &["projectId", "datasetId"],
                json!({
                    "projectId": string(PROJECT),
                    "datasetId": string("The dataset's id."),
                }),
            ),
            annotations(true, false, true),
        ),
        Name::ListTableIds => (
            "List the ids of the tables in a BigQuery dataset.",
            schema(
                &["projectId", "datasetId"],
                json!({
                    "projectId": string(PROJECT),
                    "datasetId": string("The dataset's id."),
                    "pageSize": integer("Most table ids to return."),
                    "pageToken": string("nextPageToken of an earlier call, for the next page."),
                }),
            ),
            annotations(true, false, true),
        ),
        Name::GetTableInfo => (
            "Get a BigQuery table's metadata and schema (as tables.get returns it). \
             sluiceMasking lists the columns Sluice masks for you, with the strategy: \
             their values come back masked, and filtering, joining or grouping on them \
             is refused.",
            schema(
                &["projectId", "datasetId", "tableId"],
                json!({
                    "projectId": string(PROJECT),
                    "datasetId": string("The dataset's id."),
                    "tableId": string("The table's id."),
                }),
            ),
            annotations(true, false, true),
        ),
        Name::ExecuteSql => (
            "Run a GoogleSQL statement through Sluice and return its rows as objects keyed by \
             column name. What runs is what your policy allows: a refused statement returns an \
             error naming the rule and what to do next. A query that needs a reviewer's approval \
             returns at once with jobComplete: false, the jobId and what it waits for: call \
             wait_for_approval. Sensitive columns come back masked. At most mcp.max_rows rows \
             are returned; when truncated is true, call get_query_results with pageToken.",
            schema(&["projectId", "query"], query_properties()),
            annotations(false, true, false),
        ),
        Name::ExecuteSqlReadonly => (
            "Run a read-only GoogleSQL query (SELECT only: anything else is refused) through \
             Sluice, otherwise as execute_sql: rows as objects, masking, approvals and paging \
             the same way.",
            schema(&["projectId", "query"], query_properties()),
            annotations(true, false, true),
        ),
        Name::GetQueryResults => (
            "Get (more of) the rows of a query job: after jobComplete: false, or for the next \
             page with pageToken or startIndex.",
            schema(
                &["projectId", "jobId"],
                json!({
                    "projectId": string(PROJECT),
                    "jobId": string(JOB),
                    "startIndex": {
                        "type": "string",
                        "format": "uint64",
                        "description": "The first row to return, from 0 (a uint64 written as a string)."
                    },
                    "pageToken": string("pageToken of an earlier answer, for the next page."),
                    "maxResults": integer("Most rows to return (at most mcp.max_rows)."),
                    "timeoutMs": integer("How long to wait for the job to finish, in milliseconds."),
                    "location": string(LOCATION),
                }),
            ),
            annotations(true, false, true),
        ),
        Name::GetJob => (
            "Get a job's state, statistics and configuration (as jobs.get returns it); a job \
             waiting for approval says whom it waits for in status.message.",
            job_schema(),
            annotations(true, false, true),
        ),
        Name::CancelJob => (
            "Cancel a job: a running query, or one waiting for approval (its request is \
             withdrawn).",
            job_schema(),
            annotations(false, true, true),
        ),
        Name::EstimateQuery => (
            "Check a query without running it: the bytes it would process and their price, the \
             tables it reads, the columns that would come back masked, and what policy would do \
             with it — allowed, needs approval (by whom, under which rule), or refused (by which \
             rule, and what to do instead). Costs nothing.",
            schema(
                &["projectId", "query"],
                json!({
                    "projectId": string(PROJECT),
                    "query": string("The GoogleSQL query to check."),
                }),
            ),
            annotations(true, false, true),
        ),
        Name::ExplainRefusal => (
            "Explain why Sluice refused or holds something: give jobId for a job (its error, or \
             what it waits for), or query for a query (every policy check made, in order, with \
             its outcome). Nothing runs.",
            schema(
                &["projectId"],
                json!({
                    "projectId": string(PROJECT),
                    "jobId": string("A job to explain."),
                    "query": string("A query to explain, instead of a job."),
                }),
            ),
            annotations(true, false, true),
        ),
        Name::WaitForApproval => (
            "Wait for a query that needs a reviewer's approval (execute_sql answered \
             jobComplete: false with waitingFor). Returns its rows once approved and run, an \
             error with the reviewer's reason if denied or expired, or jobComplete: false again \
             when timeoutSeconds pass first: then call again.",
            schema(
                &["projectId", "jobId"],
                json!({
                    "projectId": string(PROJECT),
                    "jobId": string(JOB),
                    "timeoutSeconds": integer(
                        "How long to wait in this call (at most mcp.max_approval_wait, 60 s by default)."
                    ),
                }),
            ),
            annotations(true, false, true),
        ),
        Name::RequestAccess => (
            "Ask for temporary access (a just-in-time grant) to datasets or tables your policy \
             does not let you read, with a justification. Reviewers decide; once granted, run \
             the query again. Returns the access request and its state.",
            schema(
                &["justification"],
                json!({
                    "datasets": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Datasets as project.dataset."
                    },
                    "tables": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Tables as project.dataset.table."
                    },
                    "duration": string("How long the grant should last, such as 1h (the rule may cap it)."),
                    "justification": string("Why the access is needed, for the reviewers."),
                }),
            ),
            annotations(false, false, false),
        ),
    };
    Tool::new(name.as_str(), description, input).annotate(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_an_object_schema_whose_required_properties_exist() {
        for tool in all() {
            let schema = &tool.input_schema;
            assert_eq!(schema["type"], "object", "{}", tool.name);
            let properties = schema["properties"].as_object().unwrap();
            for required in schema["required"].as_array().unwrap() {
                assert!(
                    properties.contains_key(required.as_str().unwrap()),
                    "{}: {required}",
                    tool.name
                );
            }
            assert_eq!(Name::parse(&tool.name).map(Name::as_str), Some(&*tool.name));
        }
        assert_eq!(all().len(), Name::ALL.len());
    }
}
