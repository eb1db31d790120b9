//! `sluice access`: a principal's client of the gateway's access-request
//! and grant API (`/sluice/v1/access-requests`, `/sluice/v1/grants`): ask
//! for a just-in-time grant of datasets or tables, see requests and grants,
//! revoke a grant. Reviewers approve requests with `sluice approvals`.

use std::time::Duration;

use clap::Subcommand;
use serde::Deserialize;
use serde_json::json;

use crate::approvals::{Connection, ReviewerApi, one_line, text};

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Ask reviewers for a grant: read the named datasets or tables for a
    /// time. Prints the request's id; with --wait, waits for the decision.
    Request {
        /// A dataset, as project.dataset; repeat for several.
        #[arg(long = "dataset", value_name = "PROJECT.DATASET")]
        datasets: Vec<String>,
        /// A table, as project.dataset.table; repeat for several.
        #[arg(long = "table", value_name = "PROJECT.DATASET.TABLE")]
        tables: Vec<String>,
        /// How long the grant lasts once approved, e.g. 30m, 1h (at most
        /// the grant rule's max_duration).
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Why, for the reviewers.
        #[arg(long = "why", value_name = "TEXT", value_parser = clap::builder::NonEmptyStringValueParser::new())]
        justification: String,
        /// Wait until a reviewer decides (or the request expires), then
        /// exit 0 when it was approved and 1 otherwise.
        #[arg(long)]
        wait: bool,
    },
    /// One line per access request you made or may review.
    List {
        /// Every state, not only PENDING.
        #[arg(long)]
        all: bool,
    },
    /// One line per grant you hold or review: id, state, holder, what it
    /// covers, until when.
    Grants {
        /// Expired and revoked grants too.
        #[arg(long)]
        all: bool,
    },
    /// End a grant now (its holder, or a reviewer of its rule).
    Revoke {
        /// The grant's id (acc_…).
        id: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccessRequest {
    id: String,
    state: String,
    principal: Option<String>,
    rule: Option<String>,
    #[serde(default)]
    datasets: Vec<String>,
    #[serde(default)]
    tables: Vec<String>,
    duration: Option<String>,
    justification: Option<String>,
    expire_time: Option<String>,
    closed_by: Option<String>,
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccessList {
    #[serde(default)]
    access_requests: Vec<AccessRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Grant {
    id: String,
    state: String,
    principal: Option<String>,
    #[serde(default)]
    datasets: Vec<String>,
    #[serde(default)]
    tables: Vec<String>,
    expire_time: Option<String>,
    approved_by: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GrantList {
    #[serde(default)]
    grants: Vec<Grant>,
}

pub async fn run(connection: Connection, command: AccessCommand) -> anyhow::Result<()> {
    match command {
        AccessCommand::Request {
            datasets,
            tables,
            duration,
            justification,
            wait,
        } => {
            anyhow::ensure!(
                !datasets.is_empty() || !tables.is_empty(),
                "name what you need: --dataset PROJECT.DATASET or --table PROJECT.DATASET.TABLE"
            );
            let api = ReviewerApi::new(connection, "/sluice/v1/access-requests")?;
            let body = json!({
                "datasets": datasets,
                "tables": tables,
                "duration": duration,
                "justification": justification,
            });
            let answer = api
                .send(api.http.post(api.url(None, None)?).json(&body))
                .await?;
            let mut request: AccessRequest = api.parse(&answer)?;
            println!(
                "{} PENDING: {} for {}; waiting for rule {} reviewers until {}",
                request.id,
                covered(&request.datasets, &request.tables),
                text(request.duration.as_deref()),
                text(request.rule.as_deref()),
                text(request.expire_time.as_deref()),
            );
            if !wait {
                return Ok(());
            }
            while request.state == "PENDING" {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let body = api
                    .send(api.http.get(api.url(Some(&request.id), None)?))
                    .await?;
                request = api.parse(&body)?;
            }
            let by = text(request.closed_by.as_deref());
            match request.state.as_str() {
                "APPROVED" => {
                    println!("{} APPROVED by {by}: the grant is in force", request.id);
                    Ok(())
                }
                state => anyhow::bail!(
                    "{} {state}{}{}",
                    request.id,
                    if by.is_empty() || by == "-" {
                        String::new()
                    } else {
                        format!(" by {by}")
                    },
                    request
                        .reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
            }
        }
        AccessCommand::List { all } => {
            let api = ReviewerApi::new(connection, "/sluice/v1/access-requests")?;
            let state = if all { "ALL" } else { "PENDING" };
            let body = api
                .send(
                    api.http
                        .get(api.url(None, None)?)
                        .query(&[("state", state)]),
                )
                .await?;
            let list: AccessList = api.parse(&body)?;
            if list.access_requests.is_empty() {
                println!("no access requests");
            }
            for r in &list.access_requests {
                println!(
                    "{}\t{}\t{}\t{}\tfor {}\t{}",
                    r.id,
                    r.state,
                    text(r.principal.as_deref()),
                    covered(&r.datasets, &r.tables),
                    text(r.duration.as_deref()),
                    one_line(r.justification.as_deref().unwrap_or_default(), 60)
                );
            }
            Ok(())
        }
        AccessCommand::Grants { all } => {
            let api = ReviewerApi::new(connection, "/sluice/v1/grants")?;
            let state = if all { "ALL" } else { "ACTIVE" };
            let body = api
                .send(
                    api.http
                        .get(api.url(None, None)?)
                        .query(&[("state", state)]),
                )
                .await?;
            let list: GrantList = api.parse(&body)?;
            if list.grants.is_empty() {
                println!("no grants");
            }
            for g in &list.grants {
                println!(
                    "{}\t{}\t{}\t{}\tuntil {}\tapproved by {}",
                    g.id,
                    g.state,
                    text(g.principal.as_deref()),
                    covered(&g.datasets, &g.tables),
                    text(g.expire_time.as_deref()),
                    text(g.approved_by.as_deref()),
                );
            }
            Ok(())
        }
        AccessCommand::Revoke { id } => {
            let api = ReviewerApi::new(connection, "/sluice/v1/grants")?;
            let body = api
                .send(
                    api.http
                        .post(api.url(Some(&id), Some("revoke"))?)
                        .json(&json!({})),
                )
                .await?;
            let grant: Grant = api.parse(&body)?;
            println!("{} {}", grant.id, grant.state);
            Ok(())
        }
    }
}

/// `demo.shop, demo.ops.logs`.
fn covered(datasets: &[String], tables: &[String]) -> String {
    datasets
        .iter()
        .chain(tables)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
