//! BigQuery REST answers reshaped for an agent: rows as objects keyed by
//! column name (as Google's BigQuery MCP server returns them), at most
//! `mcp.max_result_bytes` of them with the truncation stated, and what
//! policy decided, from the request's context.

use serde_json::{Map, Value, json};
use sluice_policy::Verdict;

use crate::exit::MaskPlan;
use crate::params::page_token;
use crate::pipeline::RequestContext;

/// `list_dataset_ids`: `{datasets: [{id, friendlyName, location, type}], nextPageToken}`.
pub fn dataset_ids(list: &Value) -> Value {
    let datasets: Vec<Value> = items(list, "datasets")
        .map(|d| {
            json!({
                "id": d.pointer("/datasetReference/datasetId").cloned().unwrap_or(Value::Null),
                "friendlyName": d.get("friendlyName").cloned().unwrap_or(Value::Null),
                "location": d.get("location").cloned().unwrap_or(Value::Null),
                "type": "DEFAULT",
            })
        })
        .collect();
    with_next(json!({"datasets": datasets}), list)
}

/// `list_table_ids`: `{tables: [{id, type}], nextPageToken}`.
pub fn table_ids(list: &Value) -> Value {
    let tables: Vec<Value> = items(list, "tables")
        .map(|t| {
            json!({
                "id": t.pointer("/tableReference/tableId").cloned().unwrap_or(Value::Null),
                "type": t.get("type").cloned().unwrap_or(json!("TABLE")),
            })
        })
        .collect();
    with_next(json!({"tables": tables}), list)
}

fn items<'a>(list: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    list.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn with_next(mut out: Value, list: &Value) -> Value {
    if let Some(token) = list.get("nextPageToken") {
        out["nextPageToken"] = token.clone();
    }
    out
}

/// `get_table_info`'s `sluiceMasking`: the columns (and fields) masked
/// for this caller, with the strategy, and whether detectors scan the
/// rest.
pub fn masked_columns(plan: &MaskPlan, fields: &[sluice_warehouse::Field]) -> Value {
    let name = |index: usize| {
        fields
            .get(index)
            .map(|f| f.name.clone())
            .unwrap_or_default()
    };
    let columns: Vec<Value> = match &plan.all {
        Some(strategy) => fields
            .iter()
            .map(|f| json!({"column": f.name, "strategy": strategy.name()}))
            .collect(),
        None => plan
            .columns
            .iter()
            .map(|m| {
                let mut column = name(m.index);
                for part in &m.path {
                    column.push('.');
                    column.push_str(part);
                }
                let mut entry = json!({"column": column, "strategy": m.strategy.name()});
                if let Some(class) = &m.class {
                    entry["class"] = json!(class);
                }
                entry
            })
            .collect(),
    };
    json!({
        "maskedColumns": columns,
        "detectors": plan.detect.is_some(),
        "note": "Masked columns come back masked in every result, and a query that filters, \
                 joins or groups on one is refused.",
    })
}

/// A query's rows, from a complete jobs.query or getQueryResults answer
/// that began at row `start`: objects keyed by column name, cut to about
/// `max_bytes`, with the truncation and the next page stated.
pub fn rows(answer: &Value, start: u64, max_bytes: usize) -> Value {
    let fields: Vec<Value> = answer
        .pointer("/schema/fields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    let mut cut = false;
    for row in items(answer, "rows") {
        let object = record(&fields, row);
        let size = object.to_string().len();
        if bytes + size > max_bytes {
            cut = true;
            break;
        }
        bytes += size;
        rows.push(object);
    }
    let total: u64 = answer
        .get("totalRows")
        .and_then(Value::as_str)
        .and_then(|n| n.parse().ok())
        .unwrap_or(rows.len() as u64);
    let next = start + rows.len() as u64;
    let mut out = json!({
        "schema": answer.get("schema").cloned().unwrap_or(json!({"fields": []})),
        "rows": rows,
        "jobComplete": true,
        "totalRows": total.to_string(),
        "totalBytesProcessed": answer.get("totalBytesProcessed").cloned().unwrap_or(json!("0")),
    });
    if let Some(job) = answer.pointer("/jobReference/jobId") {
        out["jobId"] = job.clone();
    }
    if let Some(affected) = answer.get("numDmlAffectedRows") {
        out["numDmlAffectedRows"] = affected.clone();
    }
    let truncated = cut || next < total;
    out["truncated"] = json!(truncated);
    if truncated {
        out["pageToken"] = json!(page_token::encode(next));
        out["next"] = json!(format!(
            "{} of {total} rows returned from row {start}: call get_query_results with this \
             jobId and pageToken for more, or narrow the query.",
            rows.len()
        ));
    }
    out
}

/// One REST row (`{"f": [{"v": …}]}`) as an object keyed by column name.
fn record(fields: &[Value], row: &Value) -> Value {
    let cells = row.get("f").and_then(Value::as_array);
    let mut object = Map::new();
    for (index, field) in fields.iter().enumerate() {
        let name = field.get("name").and_then(Value::as_str).unwrap_or("");
        let cell = cells
            .and_then(|c| c.get(index))
            .and_then(|c| c.get("v"))
            .unwrap_or(&Value::Null);
        object.insert(name.to_string(), value(field, cell));
    }
    Value::Object(object)
}

fn value(field: &Value, cell: &Value) -> Value {
    if cell.is_null() {
        return Value::Null;
    }
    let repeated = field.get("mode").and_then(Value::as_str) == Some("REPEATED");
    let kind = field.get("type").and_then(Value::as_str).unwrap_or("");
    let nested = matches!(kind, "RECORD" | "STRUCT");
    let sub: Vec<Value> = field
        .get("fields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let one = |v: &Value| match nested {
        true => record(&sub, v),
        false => v.clone(),
    };
    match (repeated, cell.as_array()) {
        (true, Some(items)) => Value::Array(
            items
                .iter()
                .map(|item| one(item.get("v").unwrap_or(&Value::Null)))
                .collect(),
        ),
        _ => one(cell),
    }
}

/// A dry run's answer: the estimate, the tables, the masks and what
/// policy decided.
pub fn dry_run(answer: &Value, context: Option<&RequestContext>, usd_per_tib: f64) -> Value {
    let query = context.and_then(|cx| cx.query.as_ref());
    let bytes: u64 = answer
        .get("totalBytesProcessed")
        .and_then(Value::as_str)
        .and_then(|n| n.parse().ok())
        .or_else(|| query.and_then(|q| q.estimate).map(|e| e.bytes_processed))
        .unwrap_or(0);
    let mut out = json!({
        "dryRun": true,
        "jobComplete": true,
        "totalBytesProcessed": bytes.to_string(),
        "estimatedBytes": sluice_policy::human_bytes(bytes),
        "estimatedUsd": (crate::approvals::usd(bytes, usd_per_tib) * 10_000.0).round() / 10_000.0,
        "schema": answer.get("schema").cloned().unwrap_or(json!({"fields": []})),
    });
    if let Some(query) = query {
        out["tables"] = json!(query.tables_read());
        if let Some(decision) = &query.decision {
            out["policy"] = decision_summary(decision);
        }
        let fields: Vec<sluice_warehouse::Field> = answer
            .pointer("/schema/fields")
            .and_then(|f| serde_json::from_value(f.clone()).ok())
            .unwrap_or_default();
        out["sluiceMasking"] = masked_columns(&query.mask, &fields);
    }
    out
}

/// What policy decided, for an agent: the outcome, the rule and policy,
/// and for a review, by whom.
fn decision_summary(decision: &sluice_policy::Decision) -> Value {
    let outcome = match decision.verdict {
        Verdict::Allow => "allowed",
        Verdict::NeedsApproval => "needs_approval",
        Verdict::Deny => "refused",
    };
    let mut out = json!({
        "outcome": outcome,
        "rule": decision.rule.to_string(),
        "policy": decision.policy,
        "message": decision.message,
    });
    if let Some(need) = &decision.approval {
        out["approval"] = json!({
            "rule": need.rule,
            "reviewers": need.reviewers.to_string(),
            "minApprovals": need.min_approvals,
            "timeoutSeconds": need.timeout.as_secs(),
            "why": need.why,
        });
    }
    out
}

/// `estimate_query` on a query policy refuses: not a failed call, but the
/// answer asked for.
pub fn refused_estimate(refusal: &str, context: Option<&RequestContext>) -> Value {
    let query = context.and_then(|cx| cx.query.as_ref());
    let mut policy = json!({"outcome": "refused", "message": refusal});
    if let Some(decision) = query
        .and_then(|q| q.decision.as_ref())
        .filter(|d| d.verdict == Verdict::Deny)
    {
        policy["rule"] = json!(decision.rule.to_string());
        policy["policy"] = json!(decision.policy);
    }
    let mut out = json!({"dryRun": true, "policy": policy});
    if let Some(query) = query {
        out["tables"] = json!(query.tables_read());
    }
    out
}

/// `execute_sql` that did not finish in time: the job, and what it waits
/// for.
pub fn not_complete(answer: &Value, context: Option<&RequestContext>) -> Value {
    let job = context
        .and_then(|cx| cx.query.as_ref())
        .and_then(|q| q.job.as_ref());
    let waiting = job.and_then(crate::facade::resources::waiting_for);
    let job_id = answer
        .pointer("/jobReference/jobId")
        .cloned()
        .unwrap_or(Value::Null);
    waiting_answer(job_id, waiting)
}

/// `get_query_results` or `wait_for_approval` on a job not done yet,
/// from its `Job` resource.
pub fn still_waiting(job: &Value) -> Value {
    let job_id = job
        .pointer("/jobReference/jobId")
        .cloned()
        .unwrap_or(Value::Null);
    let waiting = job
        .pointer("/status/message")
        .and_then(Value::as_str)
        .map(str::to_owned);
    waiting_answer(job_id, waiting)
}

fn waiting_answer(job_id: Value, waiting: Option<String>) -> Value {
    match waiting {
        Some(message) => json!({
            "jobComplete": false,
            "jobId": job_id,
            "state": "PENDING",
            "waitingFor": message,
            "next": "A reviewer must approve this query before it runs. Call wait_for_approval \
                     with this jobId to wait for it (and again if it answers jobComplete: false), \
                     or cancel_job to withdraw it.",
        }),
        None => json!({
            "jobComplete": false,
            "jobId": job_id,
            "state": "RUNNING",
            "next": "The query is still running: call get_query_results with this jobId.",
        }),
    }
}

/// `explain_refusal` of a job: its error, or what it waits for.
pub fn explain_job(job: &Value) -> Value {
    let state = job.pointer("/status/state").cloned().unwrap_or(Value::Null);
    let job_id = job
        .pointer("/jobReference/jobId")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(error) = job.pointer("/status/errorResult") {
        return json!({
            "jobId": job_id,
            "state": state,
            "refused": true,
            "reason": error.get("reason").cloned().unwrap_or(Value::Null),
            "message": error.get("message").cloned().unwrap_or(Value::Null),
        });
    }
    let mut out = json!({"jobId": job_id, "state": state, "refused": false});
    if let Some(message) = job.pointer("/status/message") {
        out["waitingFor"] = message.clone();
    }
    out
}

/// `explain_refusal` of a query: every policy check made, in order, and
/// the outcome (from a dry run: nothing ran).
pub fn explain_query(refusal: Option<&str>, context: Option<&RequestContext>) -> Value {
    let decision = context
        .and_then(|cx| cx.query.as_ref())
        .and_then(|q| q.decision.as_ref());
    let mut out = match (refusal, decision) {
        (Some(message), _) => json!({"outcome": "refused", "message": message}),
        (None, Some(decision)) => decision_summary(decision),
        (None, None) => json!({"outcome": "allowed"}),
    };
    if let Some(decision) = decision {
        out["trace"] = Value::Array(
            decision
                .trace
                .iter()
                .map(|step| {
                    json!({
                        "policy": step.policy,
                        "rule": step.rule,
                        "outcome": step.outcome,
                        "detail": step.detail,
                    })
                })
                .collect(),
        );
    }
    out
}
