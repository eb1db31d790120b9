//! The job methods: jobs.insert, jobs.query, jobs.get,
//! jobs.getQueryResults, jobs.cancel and jobs.list.

use axum::body::Bytes;
use axum::response::Response;
use serde_json::{Map, Value, json};
use sluice_store::{JobRecord, JobState};
use sluice_warehouse::{ParameterMode, QueryOutcome, QueryRequest};

use super::resources;
use super::{json, json_bytes};
use crate::Gateway;
use crate::decide::bytes_billed_cap;
use crate::error::{GatewayError, Origin};
use crate::jobs::{NewJob, StoredRequest, check_job_id, new_job_id};
use crate::params::page_token;
use crate::pipeline::{self, QueryContext, RequestContext};
use crate::route::ApiCall;
use crate::wire::{JobConfigurationQuery, JobInsert, QueryRequestBody, parse_body};

pub async fn handle(gateway: &Gateway, cx: &mut RequestContext) -> Result<Response, GatewayError> {
    match &cx.call {
        ApiCall::JobsInsert { project } => {
            let project = project.clone();
            insert(gateway, cx, &project).await
        }
        ApiCall::JobsQuery { project } => {
            let project = project.clone();
            query(gateway, cx, &project).await
        }
        ApiCall::JobsGet { project, job } => {
            let base_url = &gateway.config.base_url;
            let resource = gateway
                .jobs
                .resource(&cx.principal, project, job, |job| {
                    Bytes::from(resources::job(job, base_url).to_string())
                })
                .await?;
            Ok(json_bytes(resource))
        }
        ApiCall::JobsGetQueryResults { project, job } => {
            query_results(gateway, cx, project, job).await
        }
        ApiCall::JobsCancel { project, job } => {
            let job = gateway.jobs.load(&cx.principal, project, job).await?;
            let waiting = job.state == JobState::Pending;
            let job = gateway.jobs.cancel(&cx.principal, job).await?;
            if waiting {
                // A job that waited for approval: its request is withdrawn.
                gateway.approvals.withdraw(&job, &cx.principal).await?;
            }
            Ok(json(json!({
                "kind": "bigquery#jobCancelResponse",
                "job": resources::job(&job, &gateway.config.base_url),
            })))
        }
        ApiCall::JobsList { project } => list(gateway, cx, project).await,
        _ => Err(GatewayError::internal(
            "a non-job method reached the job handler",
        )),
    }
}

/// The parts of a query job's configuration Sluice acts on, checked.
struct QuerySpec {
    request: QueryRequest,
    /// The configuration echoed back in job resources.
    configuration: Value,
}

/// Fields that would make a query write, or run in a way Sluice does not
/// offer; refused by name rather than ignored.
fn refuse_unsupported(config: &JobConfigurationQuery) -> Result<(), GatewayError> {
    let present = [
        ("destinationTable", config.destination_table.is_some()),
        ("tableDefinitions", config.table_definitions.is_some()),
        (
            "userDefinedFunctionResources",
            config.user_defined_function_resources.is_some(),
        ),
        ("writeDisposition", config.write_disposition.is_some()),
        (
            "schemaUpdateOptions",
            config.schema_update_options.is_some(),
        ),
        ("timePartitioning", config.time_partitioning.is_some()),
        ("rangePartitioning", config.range_partitioning.is_some()),
        ("clustering", config.clustering.is_some()),
        ("scriptOptions", config.script_options.is_some()),
        ("createSession", config.create_session == Some(true)),
        ("continuous", config.continuous == Some(true)),
    ];
    match present.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(GatewayError::not_implemented(format!(
            "configuration.query.{field} is not supported by Sluice: query results are returned to the caller, never written to tables. Remove the field and run the query again."
        ))),
        None => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
fn query_spec(
    project: &str,
    sql: Option<&str>,
    use_legacy_sql: Option<bool>,
    default_dataset: Option<&crate::wire::DatasetReference>,
    parameter_mode: Option<&str>,
    parameters: &[sluice_warehouse::QueryParameter],
    maximum_bytes_billed: Option<i64>,
    dry_run: bool,
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> Result<QuerySpec, GatewayError> {
    if let Some(key) = labels
        .into_iter()
        .flat_map(|l| l.keys())
        .find(|k| k.to_ascii_lowercase().starts_with("sluice"))
    {
        let shown: String = key.chars().take(64).collect();
        return Err(GatewayError::invalid(format!(
            "Label key \"{shown}\" is reserved (check labels.reserved): keys beginning with \
             \"sluice\" are written by Sluice alone, so that a job's labels say truthfully who \
             ran it. Rename the label and send the job again."
        )));
    }
    let sql = sql.unwrap_or_default();
    if sql.trim().is_empty() {
        return Err(GatewayError::invalid(
            "Query text is empty: set configuration.query.query (jobs.insert) or query (jobs.query).",
        ));
    }
    if use_legacy_sql == Some(true) {
        return Err(GatewayError::invalid_query(
            "Legacy SQL is not supported by Sluice. Set useLegacySql to false and write the query in GoogleSQL (Standard SQL).",
        ));
    }
    let mode = match parameter_mode {
        Some(text) => ParameterMode::parse(text).ok_or_else(|| {
            GatewayError::invalid(format!(
                "Invalid parameterMode \"{}\": use NAMED or POSITIONAL.",
                text.chars().take(40).collect::<String>()
            ))
        })?,
        None if parameters.iter().any(|p| p.name.is_none()) => ParameterMode::Positional,
        None => ParameterMode::Named,
    };
    let maximum_bytes_billed = match maximum_bytes_billed {
        Some(n) if n < 0 => {
            return Err(GatewayError::invalid(
                "maximumBytesBilled must not be negative.",
            ));
        }
        Some(n) => Some(n as u64),
        None => None,
    };
    let default_dataset = default_dataset.map(|d| {
        (
            d.project_id.clone().unwrap_or_else(|| project.to_string()),
            d.dataset_id.clone(),
        )
    });
    let mut query = json!({"query": sql, "useLegacySql": false, "priority": "INTERACTIVE"});
    if let Some((p, d)) = &default_dataset {
        query["defaultDataset"] = json!({"projectId": p, "datasetId": d});
    }
    if !parameters.is_empty() {
        query["parameterMode"] = json!(if mode == ParameterMode::Named {
            "NAMED"
        } else {
            "POSITIONAL"
        });
        query["queryParameters"] =
            serde_json::to_value(parameters).map_err(GatewayError::internal)?;
    }
    if let Some(limit) = maximum_bytes_billed {
        query["maximumBytesBilled"] = json!(limit.to_string());
    }
    let mut configuration = json!({"jobType": "QUERY", "query": query});
    if dry_run {
        configuration["dryRun"] = json!(true);
    }
    if let Some(labels) = labels {
        configuration["labels"] = json!(labels);
    }
    Ok(QuerySpec {
        request: QueryRequest {
            sql: sql.to_string(),
            default_project: project.to_string(),
            default_dataset,
            parameter_mode: mode,
            parameters: parameters.to_vec(),
            maximum_bytes_billed,
            labels: labels.cloned().unwrap_or_default(),
            job_timeout_ms: None,
        },
        configuration,
    })
}

fn check_project(path_project: &str, body_project: Option<&str>) -> Result<(), GatewayError> {
    match body_project {
        Some(p) if p != path_project => Err(GatewayError::invalid(format!(
            "The job's project \"{p}\" does not match the project in the URL \"{path_project}\"."
        ))),
        _ => Ok(()),
    }
}

async fn insert(
    gateway: &Gateway,
    cx: &mut RequestContext,
    project: &str,
) -> Result<Response, GatewayError> {
    let body: JobInsert = parse_body(&cx.body)?;
    let configuration = &body.configuration;
    for (kind, present) in [
        ("load", configuration.load.is_some()),
        ("copy", configuration.copy.is_some()),
        ("extract", configuration.extract.is_some()),
    ] {
        if present {
            return Err(GatewayError::not_implemented(format!(
                "{kind} jobs are not supported by Sluice: it runs queries only. Use a query job."
            )));
        }
    }
    let Some(query) = &configuration.query else {
        return Err(GatewayError::invalid(
            "The job has no configuration.query: Sluice runs query jobs only.",
        ));
    };
    refuse_unsupported(query)?;
    check_project(project, body.job_reference.project_id.as_deref())?;
    let dry_run = configuration.dry_run.unwrap_or(false);
    let spec = query_spec(
        project,
        query.query.as_deref(),
        query.use_legacy_sql,
        query.default_dataset.as_ref(),
        query.parameter_mode.as_deref(),
        &query.query_parameters,
        query.maximum_bytes_billed.map(|n| n.0),
        dry_run,
        configuration.labels.as_ref(),
    )?;
    let job_id = match &body.job_reference.job_id {
        Some(id) => {
            check_job_id(id)?;
            id.clone()
        }
        None => new_job_id(),
    };
    match pipeline::admit(gateway, cx, spec.request.clone(), dry_run).await {
        Ok(()) => {}
        // As in BigQuery, a query the warehouse cannot plan still makes a
        // job: a finished one carrying the error. It never runs. A
        // transient failure makes none: it answers an HTTP error the
        // client may retry, and a retry must not find a failed job.
        Err(err) if err.origin == Origin::Upstream && !dry_run && !err.is_retryable() => {
            let new = new_job(project, job_id, None, spec, None);
            let job = gateway.jobs.record_failed(&cx.principal, new, &err).await?;
            return Ok(json(resources::job(&job, &gateway.config.base_url)));
        }
        Err(err) => return Err(err),
    }
    let admitted = cx
        .query
        .as_ref()
        .ok_or_else(|| GatewayError::internal("an admitted query has no context"))?;
    if dry_run {
        return dry_run_job(gateway, project, &job_id, spec, admitted);
    }
    let new = new_job(project, job_id, None, spec, Some(admitted));
    let mut job = pipeline::execute(gateway, cx, new).await?;
    if job.state == JobState::Running {
        // A short query is answered DONE, as BigQuery does when it can: the
        // client then skips its `jobs.get` polls. A longer one is answered
        // RUNNING after `INSERT_HOLD`, and polled as usual; if the wait
        // itself fails, the job as started is the answer.
        let started = job.clone();
        job = gateway
            .jobs
            .hold(&cx.principal, job, INSERT_HOLD)
            .await
            .unwrap_or(started);
    }
    Ok(json(resources::job(&job, &gateway.config.base_url)))
}

/// How long jobs.insert waits for a started job to finish before it
/// answers it RUNNING. Clients poll right after the insert anyway, so a
/// job that finishes within it saves them their first polls.
const INSERT_HOLD: std::time::Duration = std::time::Duration::from_millis(250);

/// How long a job may run when no policy of its caller sets
/// `limits.max_duration`.
pub const DEFAULT_MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(3600);

/// The job an admitted query becomes, carrying what was decided: the
/// policy's limits, the mask plan, whether the finished job is still to be
/// cross-checked. A job that failed before it was admitted (`None`) runs
/// nothing and carries no limits.
fn new_job(
    project: &str,
    job_id: String,
    request_id: Option<String>,
    mut spec: QuerySpec,
    admitted: Option<&QueryContext>,
) -> NewJob {
    let limits = admitted.map(QueryContext::limits).unwrap_or_default();
    let limits = &limits;
    spec.request.maximum_bytes_billed = bytes_billed_cap(spec.request.maximum_bytes_billed, limits);
    let duration = limits.max_duration.unwrap_or(DEFAULT_MAX_DURATION);
    spec.request.job_timeout_ms = Some(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
    NewJob {
        project_id: project.to_string(),
        job_id,
        request_id,
        configuration: spec.configuration,
        query: spec.request,
        max_rows: limits.max_rows,
        mask: admitted.map(|q| q.mask.clone()).unwrap_or_default(),
        check_after_run: admitted.is_some_and(|q| q.check_after_run),
        parked: None,
        budgets: admitted.map(|q| q.budgets.clone()).unwrap_or_default(),
    }
}

/// A dry run: planned, never run, never recorded.
fn dry_run_job(
    gateway: &Gateway,
    project: &str,
    job_id: &str,
    spec: QuerySpec,
    admitted: &QueryContext,
) -> Result<Response, GatewayError> {
    let plan = admitted
        .plan
        .clone()
        .ok_or_else(|| GatewayError::internal("a dry run without a plan"))?;
    let outcome = QueryOutcome {
        schema: plan.schema,
        total_rows: 0,
        total_bytes_processed: plan.total_bytes_processed,
        referenced_tables: plan.referenced_tables,
        referenced_routines: plan.referenced_routines,
        statement_type: plan.statement_type,
    };
    let now = crate::jobs::now_ms().to_string();
    let mut statistics = resources::query_statistics(&outcome, true);
    statistics.insert("creationTime".into(), json!(now));
    Ok(json(json!({
        "kind": "bigquery#job",
        "etag": resources::etag(&[project, job_id, "dry"]),
        "jobReference": {"projectId": project, "jobId": job_id, "location": gateway.config.location},
        "configuration": spec.configuration,
        "status": {"state": "DONE"},
        "statistics": statistics,
    })))
}

async fn query(
    gateway: &Gateway,
    cx: &mut RequestContext,
    project: &str,
) -> Result<Response, GatewayError> {
    let body: QueryRequestBody = parse_body(&cx.body)?;
    if body.create_session == Some(true) || body.continuous == Some(true) {
        return Err(GatewayError::not_implemented(
            "Sessions and continuous queries are not supported by Sluice. Remove createSession/continuous.",
        ));
    }
    let dry_run = body.dry_run.unwrap_or(false);
    let spec = query_spec(
        project,
        body.query.as_deref(),
        body.use_legacy_sql,
        body.default_dataset.as_ref(),
        body.parameter_mode.as_deref(),
        &body.query_parameters,
        body.maximum_bytes_billed.map(|n| n.0),
        dry_run,
        body.labels.as_ref(),
    )?;
    let hold = gateway.config.hold(body.timeout_ms);
    let page = Page {
        start: 0,
        max_rows: body.max_results,
        use_int64_timestamp: body.format_options.use_int64_timestamp.unwrap_or(false),
    };
    pipeline::admit(gateway, cx, spec.request.clone(), dry_run).await?;
    let admitted = cx
        .query
        .as_ref()
        .ok_or_else(|| GatewayError::internal("an admitted query has no context"))?;
    if dry_run {
        let plan = admitted
            .plan
            .as_ref()
            .ok_or_else(|| GatewayError::internal("a dry run without a plan"))?;
        return Ok(json(json!({
            "kind": "bigquery#queryResponse",
            "schema": plan.schema,
            "jobReference": {"projectId": project, "location": gateway.config.location},
            "totalBytesProcessed": plan.total_bytes_processed.to_string(),
            "jobComplete": true,
            "cacheHit": false,
        })));
    }
    // A retried call with the same requestId answers for the job it made.
    let existing = match &body.request_id {
        Some(id) => gateway.store.find_job_by_request_id(project, id).await?,
        None => None,
    };
    let job = match existing {
        Some(job) if gateway.jobs.owns(&cx.principal, &job) => job,
        Some(_) => {
            return Err(GatewayError::duplicate(
                "Already Exists: a query with this requestId",
            ));
        }
        None => {
            let new = new_job(
                project,
                new_job_id(),
                body.request_id.clone(),
                spec,
                Some(admitted),
            );
            pipeline::execute(gateway, cx, new).await?
        }
    };
    let job = gateway.jobs.hold(&cx.principal, job, hold).await?;
    respond_with_rows(gateway, cx, &job, page, "bigquery#queryResponse").await
}

/// Which rows of a result a call asks for.
struct Page {
    start: u64,
    max_rows: Option<u32>,
    use_int64_timestamp: bool,
}

/// getQueryResults: the request's own parameters are checked before the
/// job is looked up, so a malformed call is `invalid` whatever the job.
async fn query_results(
    gateway: &Gateway,
    cx: &RequestContext,
    project: &str,
    job_id: &str,
) -> Result<Response, GatewayError> {
    let hold = gateway.config.hold(cx.params.u32("timeoutMs")?);
    let start = match (cx.params.get("pageToken"), cx.params.u64("startIndex")?) {
        (Some(token), _) => page_token::decode(token)?,
        (None, Some(index)) => index,
        (None, None) => 0,
    };
    let page = Page {
        start,
        max_rows: cx.params.u32("maxResults")?,
        use_int64_timestamp: cx.params.use_int64_timestamp()?,
    };
    let job = gateway.jobs.load(&cx.principal, project, job_id).await?;
    let job = gateway.jobs.hold(&cx.principal, job, hold).await?;
    respond_with_rows(gateway, cx, &job, page, "bigquery#getQueryResultsResponse").await
}

/// The answer of jobs.query and getQueryResults: `jobComplete: false`
/// while the job runs, the job's error once it failed, else a page of
/// rows.
async fn respond_with_rows(
    gateway: &Gateway,
    cx: &RequestContext,
    job: &JobRecord,
    page: Page,
    kind: &str,
) -> Result<Response, GatewayError> {
    let mut head = Map::new();
    head.insert("kind".into(), json!(kind));
    head.insert(
        "etag".into(),
        json!(resources::etag(&[&job.job_id, job.state.as_str()])),
    );
    head.insert("jobReference".into(), resources::job_reference(job));
    if job.state != JobState::Done {
        head.insert("jobComplete".into(), json!(false));
        return Ok(json(Value::Object(head)));
    }
    if let Some(error) = &job.error {
        return Err(GatewayError::from_error_result(error));
    }
    let outcome = resources::outcome(job).ok_or_else(|| {
        GatewayError::internal(format!("job {} is done without an outcome", job.job_id))
    })?;
    let config = &gateway.config;
    let max_rows = page.max_rows.map_or(config.page_max_rows, |n| {
        (n as usize).min(config.page_max_rows)
    });
    let mut rows = Vec::new();
    if max_rows > 0 && page.start < outcome.total_rows {
        let access = gateway
            .credentials
            .access(&cx.principal, &job.warehouse_key)
            .await?;
        let fetched = gateway
            .warehouse
            .result_page(
                &access,
                &job.warehouse_key,
                page.start,
                max_rows,
                config.page_max_bytes,
            )
            .await?;
        rows = fetched.rows;
    }
    let next = page.start + rows.len() as u64;
    if max_rows > 0 && next >= outcome.total_rows {
        // The last page is out: the job's token is done with.
        gateway.credentials.release(&job.warehouse_key);
    }
    head.insert("schema".into(), json!(outcome.schema));
    head.insert("totalRows".into(), json!(outcome.total_rows.to_string()));
    if next < outcome.total_rows && max_rows > 0 {
        head.insert("pageToken".into(), json!(page_token::encode(next)));
    }
    head.insert(
        "totalBytesProcessed".into(),
        json!(outcome.total_bytes_processed.to_string()),
    );
    head.insert("jobComplete".into(), json!(true));
    head.insert("cacheHit".into(), json!(false));
    // The mask plan decided with the job; a job whose record cannot be
    // read returns no rows.
    let mask = StoredRequest::of(job)?.mask;
    let sent = crate::exit::rows_response(crate::exit::RowsOut {
        head,
        rows,
        schema: &outcome.schema,
        mask: &mask,
        masking: &gateway.masking,
        use_int64_timestamp: page.use_int64_timestamp,
    })?;
    cx.record_rows(&sent);
    Ok(sent.response)
}

async fn list(
    gateway: &Gateway,
    cx: &RequestContext,
    project: &str,
) -> Result<Response, GatewayError> {
    let limit = cx.params.u32("maxResults")?.unwrap_or(50).clamp(1, 1000) as usize;
    let state_filter: Vec<String> = cx
        .params
        .get("stateFilter")
        .map(|s| {
            s.split(',')
                .map(|v| v.trim().to_ascii_uppercase())
                .collect()
        })
        .unwrap_or_default();
    let page = gateway
        .store
        .list_jobs(
            project,
            &cx.principal.name,
            limit,
            cx.params.get("pageToken"),
        )
        .await?;
    let owns = gateway.jobs.owner_check(&cx.principal);
    let jobs: Vec<Value> = page
        .jobs
        .iter()
        .filter(|job| owns(job))
        .filter(|job| {
            state_filter.is_empty() || state_filter.iter().any(|s| s == job.state.as_str())
        })
        .map(|job| {
            let mut entry = resources::job(job, &gateway.config.base_url);
            entry["state"] = json!(job.state.as_str());
            entry
        })
        .collect();
    let mut response = json!({
        "kind": "bigquery#jobList",
        "etag": resources::etag(&[project, &cx.principal.name]),
        "jobs": jobs,
    });
    if let Some(token) = page.next_page_token {
        response["nextPageToken"] = json!(token);
    }
    Ok(json(response))
}
