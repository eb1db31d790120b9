//! The metadata methods: projects.list, datasets.list/get, tables.list/get
//! and tabledata.list.

use axum::response::Response;
use serde_json::{Map, Value, json};
use sluice_warehouse::TableRef;

use super::json;
use super::resources;
use crate::Gateway;
use crate::decide::enforce;
use crate::error::GatewayError;
use crate::params::page_token;
use crate::pipeline::RequestContext;
use crate::route::ApiCall;
use sluice_policy::Limits;
use sluice_sql::TableName;

pub async fn handle(gateway: &Gateway, cx: &RequestContext) -> Result<Response, GatewayError> {
    let base_url = &gateway.config.base_url;
    let warehouse = &gateway.warehouse;
    let policy = &gateway.config.policy;
    let who = cx.principal.who();
    let mut row_limit = None;
    // Decide first: a call the policy refuses mints no token and calls
    // nothing upstream, and a caller no policy names is refused outright
    // (it would otherwise learn which projects the credential can see).
    if policy.matching_names(&who).is_empty() {
        return Err(GatewayError::access_denied(format!(
            "Access Denied: rule default-deny: no policy names {}, so Sluice called nothing. \
             Ask the Sluice administrators for a policy that covers your identity.",
            cx.principal.verified.name
        )));
    }
    match &cx.call {
        ApiCall::DatasetsGet { project, dataset } | ApiCall::TablesList { project, dataset } => {
            may_see_dataset(gateway, cx, project, dataset)?;
        }
        ApiCall::TablesGet {
            project,
            dataset,
            table,
        }
        | ApiCall::TabledataList {
            project,
            dataset,
            table,
        } => {
            row_limit = may_read(gateway, cx, project, dataset, table)
                .await?
                .max_rows
        }
        _ => {}
    }
    // The token serves this one call and dies with it.
    let call = gateway.credentials.access_once(&cx.principal).await?;
    let access = &call.access;
    match &cx.call {
        ApiCall::ProjectsList => {
            let projects: Vec<Value> = warehouse
                .projects(access)
                .await?
                .iter()
                .filter(|p| policy.may_see_project(&who, p))
                .enumerate()
                .map(|(i, p)| {
                    json!({
                        "kind": "bigquery#project",
                        "id": p,
                        "numericId": (i + 1).to_string(),
                        "projectReference": {"projectId": p},
                        "friendlyName": p,
                    })
                })
                .collect();
            let (items, token) = paginate(cx, projects)?;
            let total = items.len();
            let mut body = json!({"kind": "bigquery#projectList", "etag": resources::etag(&["projects"]), "projects": items, "totalItems": total});
            if let Some(token) = token {
                body["nextPageToken"] = json!(token);
            }
            Ok(json(body))
        }
        ApiCall::DatasetsList { project } => {
            let datasets: Vec<Value> = warehouse
                .list_datasets(access, project)
                .await?
                .iter()
                .filter(|d| policy.may_see_dataset(&who, &d.project_id, &d.dataset_id))
                .map(resources::dataset_list_entry)
                .collect();
            let (items, token) = paginate(cx, datasets)?;
            let mut body = json!({"kind": "bigquery#datasetList", "etag": resources::etag(&[project]), "datasets": items});
            if let Some(token) = token {
                body["nextPageToken"] = json!(token);
            }
            Ok(json(body))
        }
        ApiCall::DatasetsGet { project, dataset } => {
            let info = warehouse.get_dataset(access, project, dataset).await?;
            Ok(json(resources::dataset(&info, base_url)))
        }
        ApiCall::TablesList { project, dataset } => {
            let tables: Vec<Value> = warehouse
                .list_tables(access, project, dataset)
                .await?
                .iter()
                .filter(|t| {
                    let r = &t.reference;
                    let name = TableName::new(&r.project_id, &r.dataset_id, &r.table_id);
                    !policy.decide_read(&who, &name).is_denied()
                })
                .map(resources::table_list_entry)
                .collect();
            let total = tables.len();
            let (items, token) = paginate(cx, tables)?;
            let mut body = json!({"kind": "bigquery#tableList", "etag": resources::etag(&[project, dataset]), "tables": items, "totalItems": total});
            if let Some(token) = token {
                body["nextPageToken"] = json!(token);
            }
            Ok(json(body))
        }
        ApiCall::TablesGet {
            project,
            dataset,
            table,
        } => {
            let info = warehouse
                .get_table(access, &TableRef::new(project, dataset, table))
                .await?;
            Ok(json(resources::table(&info, base_url)))
        }
        ApiCall::TabledataList {
            project,
            dataset,
            table,
        } => {
            let table = TableRef::new(project, dataset, table);
            tabledata_list(gateway, cx, access, table, row_limit).await
        }
        _ => Err(GatewayError::internal(
            "a job method reached the metadata handler",
        )),
    }
}

/// datasets.get and tables.list: only for a dataset the caller may read
/// something in.
fn may_see_dataset(
    gateway: &Gateway,
    cx: &RequestContext,
    project: &str,
    dataset: &str,
) -> Result<(), GatewayError> {
    if gateway
        .config
        .policy
        .may_see_dataset(&cx.principal.who(), project, dataset)
    {
        return Ok(());
    }
    Err(GatewayError::access_denied(format!(
        "Access Denied: Dataset {project}:{dataset}: no policy for {} allows reading anything in it (rule default-deny). \
         Ask an administrator to add it to a policy's allow.read for one of your groups.",
        cx.principal.verified.name
    )))
}

/// tables.get and tabledata.list are decided like reading the table; the
/// limits of the allowing policies come back.
async fn may_read(
    gateway: &Gateway,
    cx: &RequestContext,
    project: &str,
    dataset: &str,
    table: &str,
) -> Result<Limits, GatewayError> {
    let name = TableName::new(project, dataset, table);
    // A grant in force makes a table readable.
    let (at, _) = crate::access::circumstances(
        gateway.store.as_ref(),
        &gateway.config.policy,
        &cx.principal,
    )
    .await?;
    let decision = gateway
        .config
        .policy
        .decide_read_in(&cx.principal.who(), &name, &at);
    let limits = decision.limits.clone();
    enforce(&decision, &cx.principal)?;
    // Rows of a table an approval rule names are read only through a
    // query, which waits for the reviewers; its schema may be seen.
    if let (Some(need), ApiCall::TabledataList { .. }) = (&decision.approval, &cx.call) {
        return Err(GatewayError::access_denied(format!(
            "Access Denied: rule approvals.{}: reading the rows of {name} needs approval by {} ({}).              Listing rows cannot wait for a reviewer: run a query on the table instead, and it will              wait for the approval.",
            need.rule, need.reviewers, need.why
        )));
    }
    Ok(limits)
}

/// `maxResults` and `pageToken` over an in-memory list.
fn paginate(
    cx: &RequestContext,
    items: Vec<Value>,
) -> Result<(Vec<Value>, Option<String>), GatewayError> {
    let start = match cx.params.get("pageToken") {
        Some(token) => page_token::decode(token)? as usize,
        None => 0,
    };
    let max = cx
        .params
        .u32("maxResults")?
        .map_or(usize::MAX, |n| n.max(1) as usize);
    let end = start.saturating_add(max).min(items.len());
    let next = (end < items.len()).then(|| page_token::encode(end as u64));
    let page = items
        .into_iter()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect();
    Ok((page, next))
}

/// tabledata.list: a page of a table's rows. Under a policy's
/// `limits.max_rows` only the table's first rows up to the limit are ever
/// served; a page is cut at the limit and still carries a page token, so a
/// client reading on is refused by name instead of stopping short without
/// knowing.
async fn tabledata_list(
    gateway: &Gateway,
    cx: &RequestContext,
    access: &sluice_warehouse::Access,
    table: TableRef,
    row_limit: Option<u64>,
) -> Result<Response, GatewayError> {
    let config = &gateway.config;
    let start = match (cx.params.get("pageToken"), cx.params.u64("startIndex")?) {
        (Some(token), _) => page_token::decode(token)?,
        (None, Some(index)) => index,
        (None, None) => 0,
    };
    if let Some(limit) = row_limit.filter(|limit| start >= *limit) {
        return Err(GatewayError::access_denied(format!(
            "Access Denied: rule limits.max_rows: your policy allows reading at most {limit} rows of a table, \
             and this page starts at row {start}; no rows were returned. Query the table with a filter, \
             aggregate or LIMIT, or ask for a higher limit."
        )));
    }
    let max_rows = cx
        .params
        .u32("maxResults")?
        .map_or(config.page_max_rows, |n| {
            (n as usize).min(config.page_max_rows)
        });
    let max_rows = match row_limit {
        Some(limit) => max_rows.min(usize::try_from(limit - start).unwrap_or(usize::MAX)),
        None => max_rows,
    };
    let selected: Option<Vec<String>> = cx.params.get("selectedFields").map(|s| {
        s.split(',')
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .collect()
    });
    // The schema (BigQuery's tabledata.list carries none) and the rows are
    // asked for at once; the table's error, if any, is the one answered.
    let (info, page) = tokio::join!(
        gateway.warehouse.get_table(access, &table),
        gateway.warehouse.read_rows(
            access,
            &table,
            start,
            max_rows,
            config.page_max_bytes,
            selected.as_deref(),
        )
    );
    let info = info?;
    let page = page?;
    let next = start + page.rows.len() as u64;
    let schema = match &selected {
        Some(names) => sluice_warehouse::TableSchema {
            fields: names
                .iter()
                .filter_map(|n| {
                    info.schema
                        .fields
                        .iter()
                        .find(|f| f.name.eq_ignore_ascii_case(n))
                        .cloned()
                })
                .collect(),
        },
        None => info.schema.clone(),
    };
    let use_int64_timestamp = cx.params.use_int64_timestamp()?;
    let mut head = Map::new();
    head.insert("kind".into(), json!("bigquery#tableDataList"));
    head.insert(
        "etag".into(),
        json!(resources::etag(&[&table.to_string(), &start.to_string()])),
    );
    head.insert("totalRows".into(), json!(page.total_rows.to_string()));
    if next < page.total_rows && max_rows > 0 {
        head.insert("pageToken".into(), json!(page_token::encode(next)));
    }
    // The table's masks, by its (selected) columns.
    let mask = gateway.masking.table_plan(
        &cx.principal.who(),
        &TableName::new(&table.project_id, &table.dataset_id, &table.table_id),
        &crate::mask::TableColumns::of(&schema.fields),
    )?;
    let sent = crate::exit::rows_response(crate::exit::RowsOut {
        head,
        rows: page.rows,
        schema: &schema,
        mask: &mask,
        masking: &gateway.masking,
        use_int64_timestamp,
    })?;
    cx.record_rows(&sent);
    Ok(sent.response)
}
