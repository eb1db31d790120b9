//! `sluice approvals`: a reviewer's client of the gateway's approvals API
//! (`/sluice/v1/approvals`): list the requests waiting for a decision, show
//! one, approve or deny it.
//!
//! The reviewer's bearer token goes to the configured endpoint and nowhere
//! else (no redirects); it is never printed, not even in `--help` or in an
//! error a server sends back.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use serde::Deserialize;

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// One line per approval request: id, state, principal, rule, estimate,
    /// when it expires (or closed), and the start of its SQL.
    List {
        /// Which requests.
        #[arg(long, value_enum, default_value_t = StateFilter::Pending)]
        state: StateFilter,
    },
    /// Everything about one request: the full SQL, why it needs a
    /// reviewer, who may review it, and the votes so far.
    Show {
        /// The request's id (apr_…), as `sluice approvals list` prints it.
        id: String,
        /// Print the gateway's JSON as received instead.
        #[arg(long)]
        json: bool,
    },
    /// Vote for running the query. The requester cannot approve their own.
    Approve {
        /// The request's id (apr_…).
        id: String,
        /// Why; required when the request's rule asks for a justification.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Refuse the query: the job waiting for it ends with accessDenied,
    /// naming you and the reason.
    Deny {
        /// The request's id (apr_…).
        id: String,
        /// Why, for the requester.
        #[arg(long, value_name = "TEXT", value_parser = clap::builder::NonEmptyStringValueParser::new())]
        reason: String,
    },
}

/// Which gateway, and as whom.
#[derive(Debug, clap::Args)]
pub struct Connection {
    /// The gateway's base URL.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "SLUICE_ENDPOINT",
        default_value = "http://127.0.0.1:9050"
    )]
    endpoint: String,
    /// The reviewer's bearer token. Prefer SLUICE_TOKEN or --token-file:
    /// other users of this machine can see command lines.
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "SLUICE_TOKEN",
        hide_env_values = true
    )]
    token: Option<BearerToken>,
    /// Read the bearer token from PATH (takes precedence over --token and
    /// SLUICE_TOKEN).
    #[arg(long, global = true, value_name = "PATH")]
    token_file: Option<PathBuf>,
}

/// A `--state` for `list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateFilter {
    Pending,
    Approved,
    Denied,
    Expired,
    Withdrawn,
    All,
}

/// A bearer token; its `Debug` shows nothing of it.
#[derive(Clone)]
struct BearerToken(String);

impl From<String> for BearerToken {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

pub async fn run(connection: Connection, command: ApprovalsCommand) -> anyhow::Result<()> {
    let api = ReviewerApi::new(connection, "/sluice/v1/approvals")?;
    match command {
        ApprovalsCommand::List { state } => {
            let query: &[(&str, &str)] = match state {
                StateFilter::All => &[],
                StateFilter::Pending => &[("state", "PENDING")],
                StateFilter::Approved => &[("state", "APPROVED")],
                StateFilter::Denied => &[("state", "DENIED")],
                StateFilter::Expired => &[("state", "EXPIRED")],
                StateFilter::Withdrawn => &[("state", "WITHDRAWN")],
            };
            let body = api
                .send(api.http.get(api.url(None, None)?).query(query))
                .await?;
            let list: ApprovalList = api.parse(&body)?;
            if list.approvals.is_empty() {
                println!("no approvals");
            }
            for approval in &list.approvals {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    approval.id,
                    approval.state,
                    text(approval.principal.as_deref()),
                    text(approval.rule.as_deref()),
                    if approval.kind.as_deref() == Some("ACCESS") {
                        "access request".to_owned()
                    } else {
                        approval.estimate.describe()
                    },
                    approval.timing(),
                    // An access request has no SQL: what it asks for instead.
                    one_line(
                        approval
                            .sql
                            .as_deref()
                            .or(approval.why.as_deref())
                            .unwrap_or_default(),
                        60
                    )
                );
            }
            Ok(())
        }
        ApprovalsCommand::Show { id, json } => {
            let body = api.send(api.http.get(api.url(Some(&id), None)?)).await?;
            if json {
                println!("{}", body.trim_end());
                return Ok(());
            }
            show(&api.parse(&body)?)
        }
        ApprovalsCommand::Approve { id, reason } => {
            let body = match reason {
                Some(reason) => serde_json::json!({ "reason": reason }),
                None => serde_json::json!({}),
            };
            voted(&api, &id, "approve", &body).await
        }
        ApprovalsCommand::Deny { id, reason } => {
            voted(&api, &id, "deny", &serde_json::json!({ "reason": reason })).await
        }
    }
}

/// Casts a vote (`approve` or `deny`) and prints the request's state after
/// it in one line.
async fn voted(
    api: &ReviewerApi,
    id: &str,
    verb: &str,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    let url = api.url(Some(id), Some(verb))?;
    let answer = api.send(api.http.post(url).json(body)).await?;
    let approval: Approval = api.parse(&answer)?;
    let approvals = format!(
        "{} of {} approvals",
        approval.approvals(),
        approval.min_approvals.unwrap_or(1)
    );
    let by = text(approval.closed_by.as_deref());
    match approval.state.as_str() {
        "PENDING" => println!("{} PENDING: {approvals}", approval.id),
        "APPROVED" => println!("{} APPROVED by {by} ({approvals})", approval.id),
        "DENIED" => println!(
            "{} DENIED by {by}: {}",
            approval.id,
            text(approval.reason.as_deref())
        ),
        state => println!("{} {state}", approval.id),
    }
    Ok(())
}

/// The multi-line view of `sluice approvals show`.
fn show(approval: &Approval) -> anyhow::Result<()> {
    println!("{}  {}  {}", approval.id, approval.state, approval.timing());
    let access = approval.kind.as_deref() == Some("ACCESS");
    if let Some(job) = approval.job_reference.as_ref().filter(|_| !access) {
        let location = job
            .location
            .as_deref()
            .map_or(String::new(), |l| format!(" ({l})"));
        println!(
            "  job:         {}.{}{location}",
            text(job.project_id.as_deref()),
            text(job.job_id.as_deref())
        );
    }
    println!("  principal:   {}", text(approval.principal.as_deref()));
    println!(
        "  rule:        {} (policy {})",
        text(approval.rule.as_deref()),
        text(approval.policy.as_deref())
    );
    println!("  why:         {}", text(approval.why.as_deref()));
    if !access {
        println!("  estimate:    {}", approval.estimate.describe());
        println!("  limits:      {}", approval.limits.describe());
    }
    println!(
        "  reviewers:   {}; {} approval{} needed{}",
        approval.reviewers.describe(),
        approval.min_approvals.unwrap_or(1),
        if approval.min_approvals.unwrap_or(1) == 1 {
            ""
        } else {
            "s"
        },
        if approval.justification_required {
            ", with a reason"
        } else {
            ""
        }
    );
    println!("  created:     {}", text(approval.create_time.as_deref()));
    println!("  expires:     {}", text(approval.expire_time.as_deref()));
    if let Some(closed) = &approval.close_time {
        println!(
            "  closed:      {closed} by {}{}",
            text(approval.closed_by.as_deref()),
            with_reason(approval.reason.as_deref())
        );
    }
    if !approval.ci.is_empty() {
        let ci: Vec<String> = approval
            .ci
            .iter()
            .map(|(key, value)| match value.as_str() {
                Some(value) => format!("{key}={value}"),
                None => format!("{key}={value}"),
            })
            .collect();
        println!("  ci:          {}", ci.join(", "));
    }
    if !access {
        println!("  sql hash:    {}", text(approval.sql_hash.as_deref()));
    }
    if approval.votes.is_empty() {
        println!("  votes:       (none)");
    } else {
        println!("  votes:");
        for vote in &approval.votes {
            println!(
                "    {} {} at {}{}",
                text(vote.reviewer.as_deref()),
                text(vote.decision.as_deref()),
                text(vote.time.as_deref()),
                with_reason(vote.reason.as_deref())
            );
        }
    }
    if !access {
        println!("  sql:");
        for line in approval.sql.as_deref().unwrap_or_default().lines() {
            println!("    {line}");
        }
    }
    Ok(())
}

/// One of the gateway's own APIs (`/sluice/v1/…`), called as one
/// principal.
#[derive(Debug)]
pub(crate) struct ReviewerApi {
    pub(crate) http: reqwest::Client,
    /// `{endpoint}{path}`, e.g. `http://127.0.0.1:9050/sluice/v1/approvals`.
    base: String,
    /// The endpoint as the user gave it, for messages.
    endpoint: String,
    token: BearerToken,
}

impl ReviewerApi {
    pub(crate) fn new(connection: Connection, path: &str) -> anyhow::Result<Self> {
        let token = match (&connection.token_file, connection.token) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the token file {}", path.display()))?;
                BearerToken(text.trim().to_owned())
            }
            (None, Some(token)) => BearerToken(token.0.trim().to_owned()),
            (None, None) => BearerToken(String::new()),
        };
        anyhow::ensure!(
            !token.0.is_empty(),
            "no token: reviewers authenticate with a bearer token in SLUICE_TOKEN (or --token-file \
             PATH). Get one from your identity provider, or from the demo's development issuer: \
             export SLUICE_TOKEN=$({} token --sub alice --group reviewers)",
            crate::shell_word(&crate::this_binary())
        );
        anyhow::ensure!(
            token.0.bytes().all(|b| b.is_ascii_graphic()),
            "the token has characters no bearer token has (spaces, line breaks or non-ASCII); \
             set SLUICE_TOKEN to exactly what your issuer printed"
        );
        let endpoint = connection.endpoint;
        let base = format!("{}{path}", endpoint.trim_end_matches('/'));
        anyhow::ensure!(
            reqwest::Url::parse(&base).is_ok_and(|url| matches!(url.scheme(), "http" | "https")),
            "--endpoint {endpoint}: not an http(s) URL, e.g. http://127.0.0.1:9050"
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            // The token goes to the configured endpoint and nowhere else.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            base,
            endpoint,
            token,
        })
    }

    /// The URL of the API itself, or of one request (`ID`), or of a verb
    /// on it (`ID:approve`).
    pub(crate) fn url(&self, id: Option<&str>, verb: Option<&str>) -> anyhow::Result<String> {
        let Some(id) = id else {
            return Ok(self.base.clone());
        };
        anyhow::ensure!(
            !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "\"{}\" is not an id: ids look like apr_3f2a… or acc_3f2a…, as `sluice approvals \
             list` and `sluice access list` print them",
            one_line(id, 64)
        );
        Ok(match verb {
            Some(verb) => format!("{}/{id}:{verb}", self.base),
            None => format!("{}/{id}", self.base),
        })
    }

    /// Sends `request` with the token and returns the body of a 2xx answer;
    /// any other answer is an error with the gateway's message.
    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<String> {
        let response = request
            .bearer_auth(&self.token.0)
            .send()
            .await
            .with_context(|| format!("cannot reach the Sluice gateway at {}", self.endpoint))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .with_context(|| format!("cannot read the answer of {}", self.endpoint))?;
        if status.is_success() {
            return Ok(body);
        }
        let message = serde_json::from_str::<ErrorBody>(&body).map_or_else(
            |_| {
                format!(
                    "not a Sluice error answer; is {} a Sluice gateway?",
                    self.endpoint
                )
            },
            |e| e.error.message,
        );
        // A server that echoes what it was sent must not make us print it.
        let message = message.replace(&self.token.0, "[redacted]");
        let hint = if status == reqwest::StatusCode::UNAUTHORIZED {
            " (is SLUICE_TOKEN current? Tokens are short-lived: get a new one)"
        } else {
            ""
        };
        anyhow::bail!("{} answered HTTP {status}: {message}{hint}", self.endpoint)
    }

    /// A 2xx body as `T`.
    pub(crate) fn parse<T: serde::de::DeserializeOwned>(&self, body: &str) -> anyhow::Result<T> {
        serde_json::from_str(body).with_context(|| {
            format!(
                "{} answered with JSON this sluice does not understand; are both the same version?",
                self.endpoint
            )
        })
    }
}

/// `{"error": {"code", "message", "errors", "status"}}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    message: String,
}

#[derive(Debug, Deserialize)]
struct ApprovalList {
    #[serde(default)]
    approvals: Vec<Approval>,
}

/// An approval request as the API shows it; absent and null fields are
/// `None` (or empty).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Approval {
    id: String,
    /// `QUERY`, or `ACCESS` for an access request (no job, no SQL).
    kind: Option<String>,
    state: String,
    job_reference: Option<JobReference>,
    principal: Option<String>,
    sql: Option<String>,
    sql_hash: Option<String>,
    #[serde(default, deserialize_with = "or_default")]
    estimate: Estimate,
    #[serde(default, deserialize_with = "or_default")]
    limits: Limits,
    rule: Option<String>,
    policy: Option<String>,
    why: Option<String>,
    #[serde(default, deserialize_with = "or_default")]
    reviewers: Reviewers,
    min_approvals: Option<u32>,
    #[serde(default, deserialize_with = "or_default")]
    justification_required: bool,
    create_time: Option<String>,
    expire_time: Option<String>,
    close_time: Option<String>,
    closed_by: Option<String>,
    reason: Option<String>,
    #[serde(default, deserialize_with = "or_default")]
    ci: std::collections::BTreeMap<String, serde_json::Value>,
    #[serde(default, deserialize_with = "or_default")]
    votes: Vec<Vote>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobReference {
    project_id: Option<String>,
    job_id: Option<String>,
    location: Option<String>,
}

/// Int64 values are JSON strings, as in Google's APIs.
#[derive(Debug, Default, Deserialize)]
struct Estimate {
    bytes: Option<String>,
    usd: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Limits {
    max_bytes_billed: Option<String>,
    max_rows: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Reviewers {
    #[serde(default, deserialize_with = "or_default")]
    groups: Vec<String>,
    #[serde(default, deserialize_with = "or_default")]
    principals: Vec<String>,
    #[serde(default, deserialize_with = "or_default")]
    issuers: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Vote {
    reviewer: Option<String>,
    decision: Option<String>,
    reason: Option<String>,
    time: Option<String>,
}

/// A field that may be `null` as well as absent.
fn or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl Approval {
    /// How many votes so far approve.
    fn approvals(&self) -> usize {
        self.votes
            .iter()
            .filter(|v| v.decision.as_deref() == Some("APPROVE"))
            .count()
    }

    /// `expires in 12m` while pending, else `closed 3m ago by alice`.
    fn timing(&self) -> String {
        if self.state == "PENDING" {
            return match self.expire_time.as_deref().and_then(seconds_from_now) {
                Some(left) if left > 0 => format!("expires in {}", duration(left)),
                Some(left) => format!("expired {} ago", duration(-left)),
                None => "expires (unknown)".to_owned(),
            };
        }
        let ago = self
            .close_time
            .as_deref()
            .and_then(seconds_from_now)
            .map_or(String::new(), |s| format!(" {} ago", duration(-s)));
        let by = self
            .closed_by
            .as_deref()
            .map_or(String::new(), |b| format!(" by {b}"));
        format!("closed{ago}{by}")
    }
}

impl Estimate {
    /// `14.0 MiB ≈ $0.0001`.
    fn describe(&self) -> String {
        let bytes = self.bytes.as_deref().and_then(|b| b.parse::<u64>().ok());
        match (bytes, self.usd) {
            (Some(bytes), Some(usd)) => {
                format!("{} ≈ ${usd:.4}", sluice_policy::human_bytes(bytes))
            }
            (Some(bytes), None) => sluice_policy::human_bytes(bytes),
            (None, _) => "no estimate".to_owned(),
        }
    }
}

impl Limits {
    fn describe(&self) -> String {
        let bytes = self
            .max_bytes_billed
            .as_deref()
            .and_then(|b| b.parse::<u64>().ok())
            .map_or("none".to_owned(), sluice_policy::human_bytes);
        format!(
            "bytes billed {bytes}, rows {}",
            self.max_rows.as_deref().unwrap_or("none")
        )
    }
}

impl Reviewers {
    /// `group reviewers, principal alice`.
    fn describe(&self) -> String {
        let all: Vec<String> = (self.groups.iter().map(|g| format!("group {g}")))
            .chain(self.principals.iter().map(|p| format!("principal {p}")))
            .chain(self.issuers.iter().map(|i| format!("issuer {i}")))
            .collect();
        if all.is_empty() {
            "(none named)".to_owned()
        } else {
            all.join(", ")
        }
    }
}

/// A field the gateway left out, shown as `-`.
pub(crate) fn text(value: Option<&str>) -> &str {
    value.filter(|v| !v.is_empty()).unwrap_or("-")
}

/// `: reason`, or nothing when there is none.
fn with_reason(reason: Option<&str>) -> String {
    reason
        .filter(|r| !r.is_empty())
        .map_or(String::new(), |r| format!(": {r}"))
}

/// `sql` on one line (runs of whitespace become one space), cut to `max`
/// characters with `…`.
pub(crate) fn one_line(sql: &str, max: usize) -> String {
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max).collect();
    format!("{}…", cut.trim_end())
}

/// Seconds from now until an RFC 3339 time (negative when past).
fn seconds_from_now(time: &str) -> Option<i64> {
    let time = chrono::DateTime::parse_from_rfc3339(time).ok()?;
    Some((time.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds())
}

/// `45s`, `12m`, `5h`, `3d`.
fn duration(seconds: i64) -> String {
    match seconds {
        s if s < 90 => format!("{s}s"),
        s if s < 90 * 60 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}
