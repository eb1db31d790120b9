//! The Model Context Protocol server at `/mcp` (`docs/mcp.md`).
//!
//! Streamable HTTP, by the official Rust SDK (`rmcp`): the stateless
//! 2026-07-28 revision and the earlier ones clients still speak (served
//! without sessions, so any replica answers any call). Every HTTP request
//! to `/mcp` is authenticated first, with the same bearer tokens as the
//! BigQuery facade; without a valid one the answer is 401 with a
//! `WWW-Authenticate` challenge naming the protected-resource metadata
//! (RFC 9728) at `/.well-known/oauth-protected-resource/mcp`, which lists
//! the trusted issuers.
//!
//! A tool call has no pipeline of its own: it becomes the BigQuery REST
//! request the tool stands for (`jobs.query`, `getQueryResults`,
//! `tables.get`, …), with the caller's own `Authorization` header, and runs
//! through [`crate::pipeline::handle_observed`] — authentication, analysis,
//! policy, guardrails, estimate, approvals, the per-job credential,
//! masking — then its answer is reshaped for an agent (`results.rs`). So
//! every query an agent runs is a job `jobs.list` shows, and a refusal is a
//! tool error carrying the same message, which names the rule and what to
//! do next.

mod results;
mod tools;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext as McpContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};
use tower_service::Service as _;

use crate::Gateway;
use crate::authenticate::{Principal, observed};
use crate::pipeline::RequestContext;
use tools::Name;

/// Where the MCP server is served.
pub const PATH: &str = "/mcp";
/// The protected-resource metadata document (RFC 9728), for the whole
/// gateway and for `/mcp`.
const RESOURCE_METADATA: &str = "/.well-known/oauth-protected-resource";

/// Adds `/mcp` and its metadata documents, unless `mcp.enabled` is false.
pub fn routes(router: Router<Arc<Gateway>>, gateway: &Arc<Gateway>) -> Router<Arc<Gateway>> {
    if !gateway.config.mcp.enabled {
        return router;
    }
    let for_tools = gateway.clone();
    let service = StreamableHttpService::new(
        move || Ok(Server::new(for_tools.clone())),
        Arc::new(NeverSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_sse_keep_alive(None)
            // Every request carries a bearer token a browser on another
            // site cannot attach, so the Host check against DNS
            // rebinding (meant for unauthenticated local servers) would
            // only refuse the names Sluice is reached by.
            .disable_allowed_hosts()
            .with_max_request_body_bytes(gateway.config.max_body_bytes),
    );
    router
        .route(
            PATH,
            any(
                move |State(gateway): State<Arc<Gateway>>, request: Request| {
                    let service = service.clone();
                    async move { entry(gateway, service, request).await }
                },
            ),
        )
        .route(RESOURCE_METADATA, get(resource_metadata))
        .route(
            &format!("{RESOURCE_METADATA}{PATH}"),
            get(resource_metadata),
        )
}

/// Authenticates the HTTP request, then hands it to the MCP transport
/// with the principal in its extensions (where tool calls find it).
async fn entry(
    gateway: Arc<Gateway>,
    mut service: StreamableHttpService<Server, NeverSessionManager>,
    mut request: Request,
) -> Response {
    let request_id = crate::pipeline::request_id(request.headers());
    match observed(&gateway, request.headers(), &request_id).await {
        Ok(principal) => {
            request.extensions_mut().insert(Arc::new(principal));
            match service.call(request).await {
                Ok(response) => response.into_response(),
                Err(never) => match never {},
            }
        }
        Err(refusal) => {
            let err = refusal.error;
            let had_token = request.headers().contains_key(header::AUTHORIZATION);
            let mut response = err.into_response();
            let metadata = format!("{}{RESOURCE_METADATA}{PATH}", gateway.config.base_url);
            let challenge = match had_token {
                true => format!(
                    "Bearer realm=\"sluice\", error=\"invalid_token\", resource_metadata=\"{metadata}\""
                ),
                false => format!("Bearer realm=\"sluice\", resource_metadata=\"{metadata}\""),
            };
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            response
        }
    }
}

/// RFC 9728: the resource, the issuers whose tokens it takes, and how a
/// token is presented.
async fn resource_metadata(State(gateway): State<Arc<Gateway>>) -> axum::Json<Value> {
    let config = &gateway.config;
    axum::Json(json!({
        "resource": format!("{}{PATH}", config.base_url),
        "authorization_servers": config.identity.trusted_issuers(),
        "bearer_methods_supported": ["header"],
        "resource_name": "Sluice: BigQuery through policy, approvals and masking",
    }))
}

/// The MCP handler; one per HTTP request (the transport is stateless).
#[derive(Debug, Clone)]
pub struct Server {
    gateway: Arc<Gateway>,
}

impl Server {
    fn new(gateway: Arc<Gateway>) -> Self {
        Self { gateway }
    }
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("sluice", env!("CARGO_PKG_VERSION"))
                    .with_title("Sluice BigQuery gateway"),
            )
            .with_instructions(
                "BigQuery through Sluice: the tools of Google's BigQuery MCP server, decided by \
                 your policy. Use estimate_query before a large query. A refusal names the rule \
                 and what to do next; a query that needs approval returns a jobId: call \
                 wait_for_approval. Sensitive columns come back masked (get_table_info says \
                 which). Large results are paged: follow pageToken with get_query_results.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: McpContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::all().to_vec()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::get(name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: McpContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(name) = Name::parse(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!("unknown tool {:?}: tools/list names them", request.name),
                None,
            ));
        };
        let parts = context.extensions.get::<axum::http::request::Parts>();
        let principal = parts.and_then(|p| p.extensions.get::<Arc<Principal>>());
        let authorization = parts.and_then(|p| p.headers.get(header::AUTHORIZATION));
        let (Some(principal), Some(authorization)) = (principal, authorization) else {
            return Err(ErrorData::internal_error(
                "the tool call reached the server without its caller",
                None,
            ));
        };
        let call = Call {
            gateway: &self.gateway,
            principal,
            authorization: authorization.clone(),
        };
        let arguments = Args(request.arguments.unwrap_or_default());
        let most = self.gateway.config.mcp.calls_per_minute;
        let outcome = match self.gateway.mcp_calls.admit(&principal.name, most) {
            Err(refusal) => Err(refusal),
            Ok(()) => call.run(name, &arguments).await,
        };
        self.gateway
            .metrics
            .tool_call(name.as_str(), outcome.is_ok());
        tracing::debug!(
            tool = name.as_str(),
            principal = %principal.verified.name,
            ok = outcome.is_ok(),
            "mcp tool call"
        );
        Ok(CallToolResponse::Complete(match outcome {
            Ok(value) => CallToolResult::structured(value),
            Err(refusal) => CallToolResult::error(vec![ContentBlock::text(refusal.0)]),
        }))
    }
}

/// A tool call that failed: the text the agent reads (the gateway's own
/// refusal message where there is one, naming the rule and what to do).
#[derive(Debug)]
pub struct Refusal(String);

impl Refusal {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

type ToolResult = Result<Value, Refusal>;

/// A tool's arguments, read with errors an agent can act on.
struct Args(Map<String, Value>);

impl Args {
    fn text(&self, key: &str) -> Result<Option<String>, Refusal> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(Refusal::new(format!("{key} must be a string, not {other}"))),
        }
    }

    fn required(&self, key: &str) -> Result<String, Refusal> {
        self.text(key)?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| Refusal::new(format!("{key} is required")))
    }

    /// An integer, given as a JSON number or as a decimal string (as
    /// BigQuery's int64 fields are).
    fn number(&self, key: &str) -> Result<Option<u64>, Refusal> {
        let bad = || Refusal::new(format!("{key} must be a whole number of zero or more"));
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(bad),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }

    fn flag(&self, key: &str) -> Result<bool, Refusal> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(Refusal::new(format!("{key} must be true or false"))),
        }
    }

    fn names(&self, key: &str) -> Result<Vec<String>, Refusal> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| Refusal::new(format!("{key} must be a list of strings")))
                })
                .collect(),
            Some(_) => Err(Refusal::new(format!("{key} must be a list of strings"))),
        }
    }

    fn labels(&self) -> Result<Map<String, Value>, Refusal> {
        match self.0.get("labels") {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(labels)) if labels.values().all(Value::is_string) => {
                Ok(labels.clone())
            }
            Some(_) => Err(Refusal::new(
                "labels must be an object of string values, such as {\"team\": \"data\"}",
            )),
        }
    }
}

/// One tool call: who makes it, with which token.
struct Call<'a> {
    gateway: &'a Arc<Gateway>,
    principal: &'a Principal,
    authorization: HeaderValue,
}

/// The answer of a BigQuery method run through the pipeline.
struct Answer {
    body: Result<Value, Refusal>,
    context: Option<RequestContext>,
}

impl Call<'_> {
    async fn run(&self, name: Name, args: &Args) -> ToolResult {
        let mcp = &self.gateway.config.mcp;
        match name {
            Name::ListDatasetIds => {
                let project = args.required("projectId")?;
                let mut query = vec![];
                push_page(&mut query, args, mcp.max_rows)?;
                let body = self
                    .get(&format!("projects/{}/datasets", segment(&project)), &query)
                    .await?;
                Ok(results::dataset_ids(&body))
            }
            Name::GetDatasetInfo => {
                let (project, dataset) = (args.required("projectId")?, args.required("datasetId")?);
                self.get(
                    &format!(
                        "projects/{}/datasets/{}",
                        segment(&project),
                        segment(&dataset)
                    ),
                    &[],
                )
                .await
            }
            Name::ListTableIds => {
                let (project, dataset) = (args.required("projectId")?, args.required("datasetId")?);
                let mut query = vec![];
                push_page(&mut query, args, mcp.max_rows)?;
                let path = format!(
                    "projects/{}/datasets/{}/tables",
                    segment(&project),
                    segment(&dataset)
                );
                Ok(results::table_ids(&self.get(&path, &query).await?))
            }
            Name::GetTableInfo => self.table_info(args).await,
            Name::ExecuteSql => self.execute(args, false).await,
            Name::ExecuteSqlReadonly => self.execute(args, true).await,
            Name::GetQueryResults => {
                let project = args.required("projectId")?;
                let job = args.required("jobId")?;
                let wait = args
                    .number("timeoutMs")?
                    .map_or(mcp.wait, Duration::from_millis)
                    .min(mcp.wait);
                self.results(&project, &job, args, wait).await
            }
            Name::GetJob => {
                let (project, job) = (args.required("projectId")?, args.required("jobId")?);
                let mut query = vec![];
                push_text(&mut query, args, "location")?;
                self.get(
                    &format!("projects/{}/jobs/{}", segment(&project), segment(&job)),
                    &query,
                )
                .await
            }
            Name::CancelJob => {
                let (project, job) = (args.required("projectId")?, args.required("jobId")?);
                let mut query = vec![];
                push_text(&mut query, args, "location")?;
                let path = format!(
                    "projects/{}/jobs/{}/cancel",
                    segment(&project),
                    segment(&job)
                );
                self.bigquery(Method::POST, &path, &query, None).await.body
            }
            Name::EstimateQuery => self.estimate(args).await,
            Name::ExplainRefusal => self.explain(args).await,
            Name::WaitForApproval => self.wait_for_approval(args).await,
            Name::RequestAccess => self.request_access(args).await,
        }
    }

    /// Runs one BigQuery REST method through the pipeline, as the caller.
    async fn bigquery(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Answer {
        let mut uri = format!("{}/{path}", crate::route::PREFIX);
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(&serde_urlencoded::to_string(query).unwrap_or_default());
        }
        let request = self.request(method, &uri, body);
        let (response, context) = crate::pipeline::handle_observed(self.gateway, request).await;
        Answer {
            body: read_answer(response).await,
            context,
        }
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> ToolResult {
        self.bigquery(Method::GET, path, query, None).await.body
    }

    fn request(&self, method: Method, uri: &str, body: Option<Value>) -> Request {
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri.parse().unwrap_or_default();
        let headers = request.headers_mut();
        headers.insert(header::AUTHORIZATION, self.authorization.clone());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        request
    }

    async fn table_info(&self, args: &Args) -> ToolResult {
        let project = args.required("projectId")?;
        let dataset = args.required("datasetId")?;
        let table = args.required("tableId")?;
        let path = format!(
            "projects/{}/datasets/{}/tables/{}",
            segment(&project),
            segment(&dataset),
            segment(&table)
        );
        let mut body = self.get(&path, &[]).await?;
        let fields: Vec<sluice_warehouse::Field> = body
            .pointer("/schema/fields")
            .and_then(|f| serde_json::from_value(f.clone()).ok())
            .unwrap_or_default();
        let name = sluice_sql::TableName {
            project,
            dataset,
            table,
        };
        let plan = self
            .gateway
            .masking
            .table_plan(
                &self.principal.who(),
                &name,
                &crate::mask::TableColumns::of(&fields),
            )
            .map_err(|e| Refusal::new(e.message))?;
        body["sluiceMasking"] = results::masked_columns(&plan, &fields);
        Ok(body)
    }

    async fn execute(&self, args: &Args, read_only: bool) -> ToolResult {
        let mcp = &self.gateway.config.mcp;
        let project = args.required("projectId")?;
        let sql = args.required("query")?;
        if read_only {
            check_read_only(&project, &sql)?;
        }
        let dry_run = args.flag("dryRun")?;
        let mut labels = args.labels()?;
        labels.insert("goog-mcp-server".into(), json!("true"));
        let wait = args
            .number("timeoutMs")?
            .map_or(mcp.wait, Duration::from_millis)
            .min(mcp.wait);
        let mut body = json!({
            "query": sql,
            "useLegacySql": false,
            "dryRun": dry_run,
            "labels": labels,
            "timeoutMs": wait.as_millis() as u64,
            "maxResults": mcp.max_rows,
            "formatOptions": {"useInt64Timestamp": true},
        });
        if let Some(ms) = args.number("jobTimeoutMs")? {
            body["jobTimeoutMs"] = json!(ms.to_string());
        }
        let path = format!("projects/{}/queries", segment(&project));
        let answer = self.bigquery(Method::POST, &path, &[], Some(body)).await;
        let value = answer.body?;
        if dry_run {
            return Ok(results::dry_run(
                &value,
                answer.context.as_ref(),
                self.gateway.config.usd_per_tib,
            ));
        }
        if value["jobComplete"] == json!(false) {
            return Ok(results::not_complete(&value, answer.context.as_ref()));
        }
        Ok(results::rows(&value, 0, mcp.max_result_bytes))
    }

    /// getQueryResults, with at most `mcp.max_rows` rows and `wait` held.
    async fn results(&self, project: &str, job: &str, args: &Args, wait: Duration) -> ToolResult {
        let mcp = &self.gateway.config.mcp;
        let max_rows = args
            .number("maxResults")?
            .map_or(mcp.max_rows, |n| (n as usize).min(mcp.max_rows));
        let mut query = vec![
            ("maxResults", max_rows.to_string()),
            ("timeoutMs", wait.as_millis().to_string()),
            ("formatOptions.useInt64Timestamp", "true".to_string()),
        ];
        let start = match (args.text("pageToken")?, args.number("startIndex")?) {
            (Some(token), _) => {
                let start = crate::params::page_token::decode(&token)
                    .map_err(|e| Refusal::new(e.message))?;
                query.push(("pageToken", token));
                start
            }
            (None, Some(index)) => {
                query.push(("startIndex", index.to_string()));
                index
            }
            (None, None) => 0,
        };
        push_text(&mut query, args, "location")?;
        let path = format!("projects/{}/queries/{}", segment(project), segment(job));
        let value = self.get(&path, &query).await?;
        if value["jobComplete"] == json!(false) {
            let job = self.job(project, job).await?;
            return Ok(results::still_waiting(&job));
        }
        Ok(results::rows(&value, start, mcp.max_result_bytes))
    }

    async fn job(&self, project: &str, job: &str) -> ToolResult {
        self.get(
            &format!("projects/{}/jobs/{}", segment(project), segment(job)),
            &[],
        )
        .await
    }

    /// A dry run through the pipeline, answered with what policy decided
    /// even when it refuses.
    async fn estimate(&self, args: &Args) -> ToolResult {
        let project = args.required("projectId")?;
        let sql = args.required("query")?;
        let body = json!({"query": sql, "useLegacySql": false, "dryRun": true});
        let path = format!("projects/{}/queries", segment(&project));
        let answer = self.bigquery(Method::POST, &path, &[], Some(body)).await;
        let usd_per_tib = self.gateway.config.usd_per_tib;
        Ok(match answer.body {
            Ok(value) => results::dry_run(&value, answer.context.as_ref(), usd_per_tib),
            Err(refusal) => results::refused_estimate(&refusal.0, answer.context.as_ref()),
        })
    }

    async fn explain(&self, args: &Args) -> ToolResult {
        let project = args.required("projectId")?;
        match (args.text("jobId")?, args.text("query")?) {
            (Some(job), None) => Ok(results::explain_job(&self.job(&project, &job).await?)),
            (None, Some(sql)) => {
                let body = json!({"query": sql, "useLegacySql": false, "dryRun": true});
                let path = format!("projects/{}/queries", segment(&project));
                let answer = self.bigquery(Method::POST, &path, &[], Some(body)).await;
                Ok(results::explain_query(
                    answer.body.as_ref().err().map(|r| r.0.as_str()),
                    answer.context.as_ref(),
                ))
            }
            _ => Err(Refusal::new(
                "give either jobId (a job to explain) or query (a query to explain), not both",
            )),
        }
    }

    /// Holds for at most `timeoutSeconds` (and `mcp.max_approval_wait`),
    /// polling getQueryResults held for up to `limits.max_hold_ms` a time.
    async fn wait_for_approval(&self, args: &Args) -> ToolResult {
        let config = &self.gateway.config;
        let project = args.required("projectId")?;
        let job = args.required("jobId")?;
        let wanted = args
            .number("timeoutSeconds")?
            .map_or(config.mcp.max_approval_wait, Duration::from_secs)
            .min(config.mcp.max_approval_wait);
        let deadline = Instant::now() + wanted;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let answer = self
                .results(&project, &job, args, left.min(config.max_hold))
                .await?;
            if answer["jobComplete"] != json!(false) || left.is_zero() {
                return Ok(answer);
            }
        }
    }

    async fn request_access(&self, args: &Args) -> ToolResult {
        let mut body = json!({
            "datasets": args.names("datasets")?,
            "tables": args.names("tables")?,
            "justification": args.required("justification")?,
        });
        if let Some(duration) = args.text("duration")? {
            body["duration"] = json!(duration);
        }
        let request = self.request(Method::POST, crate::access::api::REQUESTS, Some(body));
        let response = crate::access::api::handle(State(self.gateway.clone()), request).await;
        let resource = read_answer(response).await?;
        Ok(json!({
            "accessRequest": resource,
            "next": "Reviewers are asked. Run the query again once the request's state is \
                     APPROVED (a grant is then in force for its duration); until then it is \
                     refused as before.",
        }))
    }
}

/// The JSON of a response; a BigQuery error (or any other) becomes the
/// refusal's text: its message, reason and status.
async fn read_answer(response: Response) -> Result<Value, Refusal> {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .map_err(|e| Refusal::new(format!("could not read the answer: {e}")))?;
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(value);
    }
    Err(Refusal::new(refusal_text(status, &value)))
}

/// "Access Denied: … (accessDenied, HTTP 403)".
fn refusal_text(status: StatusCode, body: &Value) -> String {
    let message = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("the request failed");
    match body
        .pointer("/error/errors/0/reason")
        .and_then(Value::as_str)
    {
        Some(reason) => format!("{message} ({reason}, HTTP {})", status.as_u16()),
        None => format!("{message} (HTTP {})", status.as_u16()),
    }
}

/// `execute_sql_readonly` runs queries only: anything analysis sees as a
/// statement of another kind, or writing a table, is refused before the
/// pipeline. SQL that does not parse goes on, and the pipeline refuses it
/// with its own message.
fn check_read_only(project: &str, sql: &str) -> Result<(), Refusal> {
    let defaults = sluice_sql::Defaults {
        project: project.to_string(),
        dataset: None,
    };
    let facts = sluice_sql::analyze(sql, &defaults);
    let other = facts
        .statements
        .iter()
        .find(|s| s.kind != sluice_sql::StatementKind::Query);
    match (other, facts.writes.is_empty()) {
        (None, true) => Ok(()),
        (Some(statement), _) => Err(Refusal::new(format!(
            "execute_sql_readonly runs a SELECT query only, and this is a {} statement: use \
             execute_sql, where your policy decides whether it may run.",
            statement.kind.name()
        ))),
        (None, false) => Err(Refusal::new(
            "execute_sql_readonly runs a SELECT query only, and this one writes a table: use \
             execute_sql, where your policy decides whether it may run.",
        )),
    }
}

/// `pageSize` and `pageToken` of the list tools as the REST list's
/// `maxResults` and `pageToken`.
fn push_page(query: &mut Vec<(&str, String)>, args: &Args, most: usize) -> Result<(), Refusal> {
    if let Some(size) = args.number("pageSize")? {
        query.push(("maxResults", size.clamp(1, most as u64).to_string()));
    }
    if let Some(token) = args.text("pageToken")? {
        query.push(("pageToken", token));
    }
    Ok(())
}

fn push_text<'k>(
    query: &mut Vec<(&'k str, String)>,
    args: &Args,
    key: &'k str,
) -> Result<(), Refusal> {
    if let Some(value) = args.text(key)? {
        query.push((key, value));
    }
    Ok(())
}

/// One path segment, percent-encoded (the router decodes it again), so an
/// id can never reach another path.
fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Tool calls per principal in the last minute, on this replica.
#[derive(Debug, Default)]
pub struct CallWindow {
    calls: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl CallWindow {
    /// Counts one call, or refuses it past `mcp.calls_per_minute`.
    fn admit(&self, principal: &str, most: usize) -> Result<(), Refusal> {
        let now = Instant::now();
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let recent = calls.entry(principal.to_string()).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            recent.pop_front();
        }
        if recent.len() >= most {
            return Err(Refusal::new(format!(
                "Rate limit: at most {most} tool calls a minute per caller (mcp.calls_per_minute). \
                 Wait a little and call again (rateLimitExceeded)."
            )));
        }
        recent.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
