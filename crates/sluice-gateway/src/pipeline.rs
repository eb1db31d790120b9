//! The request pipeline (`DESIGN.md` §1), read top to bottom:
//!
//! ```text
//! authenticate → route → analyze → estimate → decide → [await approval]
//!             → credential → execute → mask → respond
//! ```
//!
//! | phase | function here | the work is in | a refusal says |
//! |---|---|---|---|
//! | authenticate | [`run`] | `authenticate.rs` | 401 `unauthorized` |
//! | route | [`run`] | `route.rs`, `params.rs` | 404 `notFound`, 400 `invalid` |
//! | analyze | [`analyze`] | `analyze.rs` (`sluice-sql`) | 400 `invalidQuery`, `analysis.limits.*` |
//! | decide on the facts | [`decide_on_facts`] | `decide.rs` (`sluice-policy`) | 403 `accessDenied`, the rule |
//! | decide the masks | [`plan_masks`] | `mask.rs` (lineage from `sluice-sql`) | 403 `accessDenied`, `masking.filters`, `masking.unkeyed_hash`, `masking.write`, `masking.lineage`, `masking.deny` |
//! | estimate | [`estimate`] | `estimate.rs` (dry run, cross-check) | 403 `accessDenied`, `analysis.cross_check` |
//! | decide | [`decide`] | `decide.rs` | 403 `accessDenied`, the rule |
//! | await approval | [`execute`] (the job is recorded PENDING, with an approval request) | `approvals.rs`, `jobs.rs` | the job's `errorResult`: `accessDenied`, `approvals.<rule>` |
//! | credential, execute | [`execute`] | `jobs.rs` (`Jobs::run`), `credential.rs` | 403 / 429 / 503 |
//! | mask, respond | the methods, through one exit | `exit.rs` (`sluice-mask`) | 403 `accessDenied`, `check masking` |
//!
//! [`handle`] runs every `/bigquery/v2/…` request: authenticate, route,
//! then the API method (`facade/jobs.rs`, `facade/catalog.rs`). A method
//! that runs SQL calls [`admit`] (analyze → decide on the facts → decide
//! the masks → estimate → decide) and then [`execute`]; every page of rows leaves through
//! [`crate::exit`], which applies the job's mask plan.
//!
//! One [`RequestContext`] per request carries what every phase produced:
//! the request id, the principal, the API call and, for a query, a
//! [`QueryContext`] with the facts, the dry run and estimate, the decision
//! with its trace, the limits, the mask plan and the job. Nothing a later
//! phase or an observer needs is dropped: when the request ends, [`handle`]
//! logs its outcome from the context (the rule that decided, the bytes
//! estimated, the job).
//!
//! The credential phase runs where a job starts ([`crate::jobs`]), not
//! here: a job may be recorded, wait, and be started later by any replica
//! from its record alone, and its token is minted then.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sluice_policy::{Circumstances, Decision, Estimate, Limits};
use sluice_sql::QueryFacts;
use sluice_store::JobRecord;
use sluice_warehouse::{DryRun, QueryRequest};
use tracing::Instrument as _;

use crate::Gateway;
use crate::access::Counted;
use crate::authenticate::Principal;
use crate::error::GatewayError;
use crate::exit::MaskPlan;
use crate::jobs::NewJob;
use crate::metrics::Phase;
use crate::params::QueryParams;
use crate::route::{ApiCall, route};

/// One request, as the phases have understood it so far.
#[derive(Debug)]
pub struct RequestContext {
    /// The request's id, also in its `x-request-id` response header and on
    /// every log line of the request.
    pub id: String,
    /// authenticate: who is asking.
    pub principal: Principal,
    /// route: which BigQuery API method.
    pub call: ApiCall,
    pub params: QueryParams,
    pub body: axum::body::Bytes,
    /// For a method that runs SQL: what the query phases produced.
    pub query: Option<QueryContext>,
    /// mask: what was masked in the rows this request returned, per
    /// column, class and strategy (for the request's log line, and for
    /// audit and metrics).
    pub masked: std::sync::Mutex<sluice_mask::MaskCounts>,
    /// How long each query phase took, in order (for metrics).
    pub timings: std::sync::Mutex<Vec<(Phase, std::time::Duration)>>,
    /// respond: the page of rows returned, as the agent receives it (for
    /// the audit log's recording).
    pub page: std::sync::Mutex<Option<axum::body::Bytes>>,
}

impl RequestContext {
    /// The phases timed so far, in order.
    pub fn phases(&self) -> Vec<(Phase, std::time::Duration)> {
        self.timings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Adds a page's masked values to the request's, and keeps the page.
    pub fn record_rows(&self, sent: &crate::exit::RowsSent) {
        self.masked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .merge(&sent.counts);
        if let Some(body) = &sent.body {
            *self.page.lock().unwrap_or_else(|e| e.into_inner()) = Some(body.clone());
        }
    }
}

/// What the query phases learned about one query request.
#[derive(Debug)]
pub struct QueryContext {
    /// The query as asked: SQL, defaults, parameters, the caller's byte cap
    /// and labels.
    pub request: QueryRequest,
    /// analyze: what the SQL does.
    pub facts: QueryFacts,
    /// estimate: the dry run, unless none was needed (`dry_run:
    /// when_needed`).
    pub plan: Option<DryRun>,
    /// estimate: the bytes the query would process, from the dry run.
    pub estimate: Option<Estimate>,
    /// decide: what the decision depends on besides the SQL — the time,
    /// the principal's grants in force, what its budgets have spent — read
    /// once, before the first decision.
    pub circumstances: Circumstances,
    /// execute: the budgets the job counts toward when it finishes.
    pub budgets: Vec<Counted>,
    /// decide: the decision and its trace — on the facts alone until the
    /// estimate is known, then with it.
    pub decision: Option<Decision>,
    /// decide: how the result's columns are masked, recorded with the job
    /// and applied by whichever replica serves a page.
    pub mask: MaskPlan,
    /// estimate: no dry run was made, so the finished job's tables and
    /// statement type are checked against the analysis before any row
    /// leaves.
    pub check_after_run: bool,
    /// execute: the job the query became.
    pub job: Option<JobRecord>,
}

impl QueryContext {
    /// The tables the query reads, as analysis named them.
    pub fn tables_read(&self) -> Vec<String> {
        self.facts.reads.iter().map(ToString::to_string).collect()
    }

    /// The limits the deciding policies set (none before a decision).
    pub fn limits(&self) -> Limits {
        self.decision
            .as_ref()
            .map(|d| d.limits.clone())
            .unwrap_or_default()
    }
}

/// Adds how long `phase` took since `started` to a request's timings.
fn record_timing(
    timings: &std::sync::Mutex<Vec<(Phase, std::time::Duration)>>,
    phase: Phase,
    started: std::time::Instant,
) {
    timings
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((phase, started.elapsed()));
}

/// The header that carries a request's id, in both directions.
pub const REQUEST_ID: &str = "x-request-id";

/// The axum handler for every facade path: one span per request, carrying
/// its id, API method, principal and outcome, so that every log line of
/// the request names it; the id goes back in the `x-request-id` header.
pub async fn handle(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    handle_observed(&gateway, request).await.0
}

/// [`handle`], also returning the request's context for a caller inside
/// the gateway that answers in another shape than BigQuery's (the MCP
/// tools, `mcp.rs`): the same phases run, and the same line is logged.
pub async fn handle_observed(
    gateway: &Gateway,
    request: Request,
) -> (Response, Option<RequestContext>) {
    let id = request_id(request.headers());
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = tracing::field::Empty,
        principal = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let mut seen = None;
    let (mut response, refusal) = match run(gateway, id.clone(), request, &mut seen)
        .instrument(span.clone())
        .await
    {
        Ok(response) => (response, None),
        Err(err) => {
            let message = err.message.clone();
            (err.into_response(), Some(message))
        }
    };
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    gateway.metrics.request(status, elapsed, seen.as_ref());
    gateway
        .audit
        .request_done(&id, status, elapsed, seen.as_ref(), refusal.as_deref())
        .instrument(span.clone())
        .await;
    span.in_scope(|| {
        let query = seen.as_ref().and_then(|cx| cx.query.as_ref());
        let decision = query.and_then(|q| q.decision.as_ref());
        tracing::debug!(
            status,
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            rule = decision.map(|d| tracing::field::display(&d.rule)),
            policy = decision.map(|d| d.policy.as_str()),
            bytes_estimated = query.and_then(|q| q.estimate).map(|e| e.bytes_processed),
            job = query
                .and_then(|q| q.job.as_ref())
                .map(|j| j.job_id.as_str()),
            masked =
                seen.as_ref()
                    .map(|cx| cx.masked.lock().unwrap_or_else(|e| e.into_inner()).total()),
            "request done"
        );
    });
    // The id the request ran under (the context's, once there is one).
    let id = seen.as_ref().map_or(id, |cx| cx.id.clone());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    (response, seen)
}

/// The caller's `x-request-id` when it is a plain token (letters, digits,
/// `-`, `_`, `.`, at most 64), so it can be followed through a client's
/// own logs; otherwise a new one. Nothing else of the header reaches logs.
pub(crate) fn request_id(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

/// authenticate → route → the API method. The context is left in `seen`
/// for [`handle`] to observe, whatever the outcome.
async fn run(
    gateway: &Gateway,
    id: String,
    request: Request,
    seen: &mut Option<RequestContext>,
) -> Result<Response, GatewayError> {
    let (parts, body) = request.into_parts();
    let principal = crate::authenticate::observed(gateway, &parts.headers, &id).await?;
    let span = tracing::Span::current();
    span.record("principal", principal.verified.name.as_str());
    let call = route(&parts.method, parts.uri.path())?;
    span.record("method", call.name());
    let params = QueryParams::parse(parts.uri.query())?;
    let body = read_body(body, &parts.headers, gateway.config.max_body_bytes).await?;
    if !call.takes_body()
        && !body.iter().all(u8::is_ascii_whitespace)
        && call.name() != "jobs.cancel"
    {
        return Err(GatewayError::invalid(format!(
            "{} takes no request body.",
            call.name()
        )));
    }
    let cx = seen.insert(RequestContext {
        id,
        principal,
        call,
        params,
        body,
        query: None,
        masked: std::sync::Mutex::default(),
        timings: std::sync::Mutex::default(),
        page: std::sync::Mutex::default(),
    });
    if cx.call.is_job_method() {
        crate::facade::jobs::handle(gateway, cx).await
    } else {
        crate::facade::catalog::handle(gateway, cx).await
    }
}

/// Reads the body, refusing more than `limit` bytes with 413 before
/// buffering them.
async fn read_body(
    body: Body,
    headers: &axum::http::HeaderMap,
    limit: usize,
) -> Result<axum::body::Bytes, GatewayError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(GatewayError::too_large(limit));
    }
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let too_large = std::error::Error::source(&err)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            GatewayError::too_large(limit)
        } else {
            GatewayError::invalid(format!("Could not read the request body: {err}"))
        }
    })
}

/// analyze → decide on the facts → decide the masks → estimate → decide,
/// for one query
/// request. `dry_run` is the caller's own `dryRun`: the estimate is then
/// the answer, so it is always made. On success the context holds the
/// decision that allowed the query; on a refusal it holds what was learned
/// up to it.
pub async fn admit(
    gateway: &Gateway,
    cx: &mut RequestContext,
    request: QueryRequest,
    dry_run: bool,
) -> Result<(), GatewayError> {
    let principal = &cx.principal;
    let timings = &cx.timings;
    let timed = |phase, started| record_timing(timings, phase, started);
    let started = std::time::Instant::now();
    let facts = analyze(&request)?;
    timed(Phase::Analyze, started);
    let started = std::time::Instant::now();
    let (circumstances, budgets) = situate(gateway, principal).await?;
    timed(Phase::Situate, started);
    let query = cx.query.insert(QueryContext {
        facts,
        request,
        plan: None,
        estimate: None,
        circumstances,
        budgets,
        decision: None,
        mask: MaskPlan::default(),
        check_after_run: false,
        job: None,
    });
    let started = std::time::Instant::now();
    decide_on_facts(gateway, principal, query)?;
    timed(Phase::DecideOnFacts, started);
    let started = std::time::Instant::now();
    plan_masks(gateway, principal, query).await?;
    timed(Phase::PlanMasks, started);
    let started = std::time::Instant::now();
    estimate(gateway, principal, query, dry_run).await?;
    timed(Phase::Estimate, started);
    let started = std::time::Instant::now();
    decide(gateway, principal, query)?;
    timed(Phase::Decide, started);
    // [await approval]: a decision that asks for a reviewer parks the job
    // in `execute` — recorded PENDING with the request decided, started
    // from its record once approved (`crate::approvals`).
    Ok(())
}

/// analyze: the facts of the SQL, with the request's own defaults. SQL past
/// the analysis bounds is refused before it is parsed.
fn analyze(request: &QueryRequest) -> Result<QueryFacts, GatewayError> {
    let facts = crate::analyze::analyze(request);
    if let Some(exceeded) = &facts.limit_exceeded {
        return Err(GatewayError::invalid_query(format!(
            "Query not analyzed: {exceeded}. Sluice runs only SQL it can analyze within these \
             bounds, so the query was not run."
        )));
    }
    Ok(facts)
}

/// Before deciding: the principal's grants in force and what its budgets
/// have spent, from the store, and the time. A store that cannot answer
/// refuses the query (fail closed): a grant or a budget cannot be assumed.
async fn situate(
    gateway: &Gateway,
    principal: &Principal,
) -> Result<(Circumstances, Vec<Counted>), GatewayError> {
    crate::access::circumstances(gateway.store.as_ref(), &gateway.config.policy, principal).await
}

/// decide, on the facts alone: guardrails, statements, tables, routines
/// and the project billed, refused before anything is spent on a dry run.
fn decide_on_facts(
    gateway: &Gateway,
    principal: &Principal,
    query: &mut QueryContext,
) -> Result<(), GatewayError> {
    crate::decide::on_facts(gateway, principal, query)
}

/// estimate: the dry run and its cross-check against the analysis, unless
/// `dry_run: when_needed` lets a plain query go without one.
async fn estimate(
    gateway: &Gateway,
    principal: &Principal,
    query: &mut QueryContext,
    dry_run: bool,
) -> Result<(), GatewayError> {
    // An approval rule on bytes needs the estimate the dry run makes.
    let needs_estimate = gateway.config.policy.needs_estimate(&principal.who());
    if !dry_run && !needs_estimate && crate::estimate::may_skip(gateway, query) {
        query.check_after_run = true;
        return Ok(());
    }
    let plan = crate::estimate::dry_run(gateway, principal, query).await?;
    query.estimate = Some(Estimate {
        bytes_processed: plan.total_bytes_processed,
    });
    query.plan = Some(plan);
    Ok(())
}

/// decide, with the estimate: byte limits; the limits and mask plan the
/// job runs with.
fn decide(
    gateway: &Gateway,
    principal: &Principal,
    query: &mut QueryContext,
) -> Result<(), GatewayError> {
    crate::decide::with_estimate(gateway, principal, query)?;
    Ok(())
}

/// decide, the masks: which output columns derive from masked columns
/// (lineage, over the schemas of the tables read), recorded with the job;
/// a query that would leak a masked column is refused here.
async fn plan_masks(
    gateway: &Gateway,
    principal: &Principal,
    query: &mut QueryContext,
) -> Result<(), GatewayError> {
    let masking = &gateway.masking;
    let reads: Vec<sluice_sql::TableName> = query.facts.reads.iter().cloned().collect();
    let mut schemas = std::collections::HashMap::new();
    let who = principal.who();
    if crate::mask::covers_any(masking, &who, &reads) {
        let missing = reads.iter().any(|t| masking.cached_columns(t).is_none());
        let call = match missing {
            true => Some(gateway.credentials.access_once(principal).await?),
            false => None,
        };
        for table in &reads {
            let columns = match (masking.cached_columns(table), &call) {
                (Some(known), _) => known,
                (None, Some(call)) => crate::mask::columns_of(gateway, &call.access, table).await,
                (None, None) => None,
            };
            if let Some(columns) = columns {
                schemas.insert(table.clone(), columns);
            }
        }
    }
    query.mask = masking.plan(&who, &query.facts, &query.request, &schemas)?;
    Ok(())
}

/// [await approval] → credential → execute: the admitted query becomes a
/// job, recorded PENDING with exactly what was decided, then started with
/// a token minted for it alone — or, when its decision needs a reviewer,
/// left PENDING with an approval request (`approvals.rs`), to be started
/// from its record once approved.
pub async fn execute(
    gateway: &Gateway,
    cx: &mut RequestContext,
    new: NewJob,
) -> Result<JobRecord, GatewayError> {
    let parked = cx.query.as_ref().filter(|q| {
        q.decision
            .as_ref()
            .is_some_and(|d| d.verdict == sluice_policy::Verdict::NeedsApproval)
    });
    let started = std::time::Instant::now();
    let job = match parked {
        Some(query) => gateway.approvals.park(&cx.principal, new, query).await?,
        None => gateway.jobs.start(&cx.principal, new).await?,
    };
    record_timing(&cx.timings, Phase::Execute, started);
    if let Some(query) = &mut cx.query {
        query.job = Some(job.clone());
    }
    Ok(job)
}
