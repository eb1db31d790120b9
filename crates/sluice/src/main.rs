//! The `sluice` command: parses flags and calls into the gateway. It holds
//! no logic of its own.
//!
//! It behaves like a Unix tool: when the reader of its output goes away
//! early (`sluice policy explain … | head`), the command ends quietly with
//! status 0, as the reader asked for no more; no path prints a panic or a
//! backtrace for an I/O error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice_gateway::{Config, Gateway};

/// Every `println!` of this command (here and in its modules) writes through
/// [`print_line`] and hands a failed write back with `?`, where
/// `std::println!` would panic ("failed printing to stdout: Broken pipe").
macro_rules! println {
    () => {
        $crate::print_line(format_args!(""))?
    };
    ($($arg:tt)*) => {
        $crate::print_line(format_args!($($arg)*))?
    };
}

/// Progress and error lines on stderr: best effort, as there is nowhere
/// left to report a failure to write them.
macro_rules! eprintln {
    ($($arg:tt)*) => {
        $crate::print_note(format_args!($($arg)*))
    };
}

mod access;
mod approvals;
mod audit;
mod mcp;
mod secrets;
mod sessions;

/// Sluice: a just-in-time access gateway between AI agents and BigQuery.
///
/// Agents point their unchanged BigQuery client at Sluice; Sluice runs what
/// policy allows and answers exactly as BigQuery would.
#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    propagate_version = true,
    after_long_help = "Exit status: 0 on success, and also when the reader of the output goes away \
                       early (`sluice … | head`); 1 on an error, an invalid configuration \
                       (`policy check`) or a refused decision (`policy explain`)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the BigQuery REST API. Without --config: the demo (embedded
    /// warehouse with synthetic data, SQLite store under ./sluice-data,
    /// bound to 127.0.0.1:9050).
    Serve {
        /// YAML configuration file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        /// Address to listen on (overrides the configuration), e.g.
        /// 127.0.0.1:9050, or 127.0.0.1:0 for any free port.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Where to keep state (overrides the configuration's data_dir and
        /// the paths derived from it).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Print a signed token from the development issuer (demo and tests
    /// only; the configuration must enable `identity.development_issuer`).
    Token {
        /// The subject: who the token is for, e.g. etl-agent.
        #[arg(long, value_name = "NAME")]
        sub: String,
        /// A group the subject is in; repeat for several.
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// How long the token is valid, e.g. 10m, 1h, 90s.
        #[arg(long, value_name = "DURATION", default_value = "10m")]
        ttl: String,
        /// An extra claim, KEY=VALUE, such as a CI run's run_id=42 or
        /// repository=acme/etl; repeat for several.
        #[arg(long = "claim", value_name = "KEY=VALUE", value_parser = parse_claim)]
        claims: Vec<(String, String)>,
        /// YAML configuration file (default: the built-in demo).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        /// The data folder `sluice serve` uses (where the issuer's key is).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Validate policies, or explain a decision without running anything.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Review the queries that wait for a reviewer: list them, show one,
    /// approve or deny it (a client of the gateway's approvals API).
    Approvals {
        #[command(flatten)]
        connection: approvals::Connection,
        #[command(subcommand)]
        command: approvals::ApprovalsCommand,
    },
    /// Check the audit log's hash chain, or export its events.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// What an agent did, session by session: list, show, replay.
    Sessions {
        #[command(subcommand)]
        command: sessions::SessionsCommand,
    },
    /// Bridge an MCP client that starts local processes (stdio) to the
    /// gateway's MCP server, with your bearer token.
    Mcp(mcp::Bridge),
    /// Ask for just-in-time access to datasets or tables, see your grants,
    /// revoke one (a client of the gateway's access-request API).
    Access {
        #[command(flatten)]
        connection: approvals::Connection,
        #[command(subcommand)]
        command: access::AccessCommand,
    },
    /// Keep service-account keys encrypted in the store, under a master key.
    Secrets {
        #[command(subcommand)]
        command: secrets::SecretsCommand,
    },
    /// (Re)generate the demo data set: demo.shop.customers, orders and
    /// events (1,000,000 rows), deterministic and visibly fake.
    DemoData {
        /// The embedded warehouse's folder.
        #[arg(long, value_name = "DIR", default_value = "sluice-data/warehouse")]
        warehouse_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate a configuration; report every error with its key and reason.
    Check {
        /// YAML configuration file (default: the built-in demo).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print what Sluice learns from some SQL and how the policy decides,
    /// step by step. Nothing is run; byte limits need a dry run and are not
    /// checked here.
    Explain {
        /// YAML configuration file (default: the built-in demo).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        /// A group the caller is in; repeat for several.
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// The caller's name, for policies that match principals.
        #[arg(long, value_name = "NAME", default_value = "explain")]
        principal: String,
        /// The issuer of the caller's token (its `iss`), for policies with
        /// `who.issuers`. Without it the caller has no issuer and matches
        /// only policies that do not name any.
        #[arg(long, value_name = "URL", default_value = "")]
        issuer: String,
        /// The SQL to decide on.
        #[arg(long, value_name = "SQL")]
        sql: String,
        /// The job's project (for two-part table names, and the project
        /// the job would run in and bill).
        #[arg(long, value_name = "PROJECT", default_value = "demo")]
        project: String,
        /// The default dataset (for one-part table names).
        #[arg(long, value_name = "DATASET")]
        dataset: Option<String>,
        /// What the dry run would estimate (`20MiB`, or bytes), to see the
        /// byte limits and approval rules decide; without it they are
        /// shown as checked after the dry run.
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        estimate: Option<u64>,
        /// Decide as at this time (RFC 3339, e.g. 2026-12-05T20:30:00Z), to
        /// see approval rules with days or hours; default now.
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        at: Option<i64>,
        /// Decide as if the caller held a grant in force under this grant
        /// rule for this dataset or table (RULE=PROJECT.DATASET[.TABLE]);
        /// repeat for several.
        #[arg(long = "grant", value_name = "RULE=NAME", value_parser = parse_claim)]
        grants: Vec<(String, String)>,
    },
}

fn parse_claim(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("\"{text}\" is not KEY=VALUE, such as run_id=42")),
    }
}

fn parse_time(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            format!("\"{text}\" is not an RFC 3339 time such as 2026-12-05T20:30:00Z: {e}")
        })
}

fn parse_size(text: &str) -> Result<u64, String> {
    sluice_policy::parse_byte_size(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                // The MCP library logs every stateless request's start and
                // end at info; Sluice's own request line says it once.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rmcp=warn")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader has all it wanted: not a failure, also under
        // `set -o pipefail`.
        Err(error) if error.chain().any(|cause| cause.is::<OutputClosed>()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}`: the causes on one line, never a backtrace.
            eprintln!("Error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
        } => runtime.block_on(serve(config, listen, data_dir)),
        Command::Token {
            sub,
            groups,
            ttl,
            claims,
            config,
            data_dir,
        } => token(config, data_dir, &sub, &groups, &claims, &ttl),
        Command::Policy { command } => policy(command),
        Command::Approvals {
            connection,
            command,
        } => runtime.block_on(approvals::run(connection, command)),
        Command::Access {
            connection,
            command,
        } => runtime.block_on(access::run(connection, command)),
        Command::Audit { command } => runtime.block_on(audit::run(command)),
        Command::Sessions { command } => runtime.block_on(sessions::run(command)),
        Command::Mcp(bridge) => runtime.block_on(mcp::run(bridge)),
        Command::Secrets { command } => runtime.block_on(secrets::run(command)),
        Command::DemoData { warehouse_dir } => {
            sluice_gateway::generate_demo(&warehouse_dir, &mut |m| eprintln!("{m}"))
                .context("cannot generate the demo data")?;
            println!("demo data written to {}", warehouse_dir.display());
            Ok(())
        }
    }
}

/// Standard output was closed by its reader (`sluice … | head`).
#[derive(Debug)]
struct OutputClosed;

impl std::fmt::Display for OutputClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed by its reader")
    }
}

impl std::error::Error for OutputClosed {}

/// One line on stdout, for [`println!`]. A closed pipe becomes
/// [`OutputClosed`], which `main` ends on quietly.
fn print_line(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::BrokenPipe => anyhow::Error::new(OutputClosed),
            _ => anyhow::Error::new(error).context("cannot write to standard output"),
        })
}

/// One line on stderr, for [`eprintln!`]; a failure is dropped.
fn print_note(args: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    match path {
        Some(path) => Ok(Config::load(path)?),
        None => Ok(Config::demo()),
    }
}

fn token(
    config_path: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    subject: &str,
    groups: &[String],
    claims: &[(String, String)],
    ttl: &str,
) -> anyhow::Result<()> {
    let mut config = load_config(config_path.as_deref())?;
    if let Some(dir) = data_dir {
        config.data_dir = dir;
    }
    anyhow::ensure!(
        config.identity.dev_issuer_enabled(),
        "the development issuer is off in this configuration: set identity.development_issuer.enabled to true \
         (demo and tests only), or get a token from your identity provider"
    );
    anyhow::ensure!(!subject.trim().is_empty(), "--sub must not be empty");
    let ttl = sluice_identity::parse_duration(ttl).map_err(|e| anyhow::anyhow!("--ttl: {e}"))?;
    anyhow::ensure!(
        ttl <= std::time::Duration::from_secs(24 * 3600),
        "--ttl: at most 24h; tokens are meant to be short-lived"
    );
    let issuer = sluice_gateway::load_dev_issuer(&config)?;
    let extra: serde_json::Map<String, serde_json::Value> = claims
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    println!("{}", issuer.mint_with(subject, groups, &extra, ttl));
    Ok(())
}

fn policy(command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Check { config } => {
            let name = config
                .as_ref()
                .map_or("<built-in demo configuration>".to_string(), |p| {
                    p.display().to_string()
                });
            let loaded = match &config {
                Some(path) => Config::load(path),
                None => Ok(Config::demo()),
            };
            match loaded {
                Ok(config) => {
                    let names = config.policy.policy_names();
                    println!(
                        "{name}: valid: {} polic{} ({}); development issuer {}",
                        names.len(),
                        if names.len() == 1 { "y" } else { "ies" },
                        names.join(", "),
                        if config.identity.dev_issuer_enabled() {
                            "ON"
                        } else {
                            "off"
                        }
                    );
                    Ok(())
                }
                Err(errors) => {
                    eprintln!("{errors}");
                    std::process::exit(1);
                }
            }
        }
        PolicyCommand::Explain {
            config,
            groups,
            principal,
            issuer,
            sql,
            project,
            dataset,
            estimate,
            at,
            grants,
        } => {
            let config = load_config(config.as_deref())?;
            // The gateway's own analyze phase, with the defaults a job in
            // `project` with this default dataset would have.
            let request = sluice_warehouse::QueryRequest {
                sql: sql.clone(),
                default_project: project.clone(),
                default_dataset: dataset.map(|d| (project.clone(), d)),
                ..sluice_warehouse::QueryRequest::default()
            };
            let facts = sluice_gateway::analyze_query(&request);
            let list = |items: Vec<String>| {
                if items.is_empty() {
                    "(none)".to_string()
                } else {
                    items.join(", ")
                }
            };
            println!("Facts");
            println!(
                "  statements: {}",
                list(
                    facts
                        .statements
                        .iter()
                        .map(|s| match &s.object {
                            Some(object) => format!("{} {object}", s.kind),
                            None => s.kind.to_string(),
                        })
                        .collect()
                )
            );
            println!(
                "  reads:      {}",
                list(facts.reads.iter().map(ToString::to_string).collect())
            );
            println!(
                "  writes:     {}",
                list(facts.writes.iter().map(ToString::to_string).collect())
            );
            println!(
                "  functions:  {}",
                list(facts.functions.iter().cloned().collect())
            );
            println!(
                "  routines:   {}",
                list(facts.routines.iter().map(ToString::to_string).collect())
            );
            println!(
                "  flags:      {}",
                list(facts.flags.iter().map(ToString::to_string).collect())
            );
            println!(
                "  complete:   {}",
                if facts.is_complete() {
                    "yes".to_string()
                } else {
                    format!("no: {}", facts.incomplete.join("; "))
                }
            );
            println!();
            let who = sluice_policy::Who {
                name: &principal,
                groups: &groups,
                issuer: &issuer,
            };
            let runs_in = if config.policy.may_run_jobs_in(&who, &project) {
                "the caller may run jobs here"
            } else {
                "the caller may not run jobs here (no matching policy names it in projects:, \
                 or, without projects:, in allow.read or allow.write)"
            };
            println!("Project\n  {project}: {runs_in}\n");
            let estimate =
                estimate.map(|bytes_processed| sluice_policy::Estimate { bytes_processed });
            let now = at.unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
            let mut circumstances = sluice_policy::Circumstances::at(now);
            for (index, (rule, name)) in grants.into_iter().enumerate() {
                let (datasets, tables) = if name.split('.').count() == 2 {
                    (vec![name], Vec::new())
                } else {
                    (Vec::new(), vec![name])
                };
                circumstances.grants.push(sluice_policy::ActiveGrant {
                    id: format!("explain-{}", index + 1),
                    rule,
                    datasets,
                    tables,
                    expire_ms: now.saturating_add(3_600_000),
                });
            }
            let decision = config
                .policy
                .decide_in(&who, &facts, estimate.as_ref(), &circumstances);
            println!("{decision}");
            if decision.is_denied() {
                std::process::exit(1);
            }
            // The masks, as the gateway would decide them (offline, so
            // without the tables' columns: `SELECT *` is not followed).
            println!("\nMasks");
            match sluice_gateway::explain_masks(&config.masking, &who, &facts, &request) {
                Ok(lines) => {
                    for line in lines {
                        println!("  {line}");
                    }
                }
                Err(refusal) => {
                    println!("  refused: {refusal}");
                    std::process::exit(1);
                }
            }
            Ok(())
        }
    }
}

async fn serve(
    config_path: Option<PathBuf>,
    listen: Option<std::net::SocketAddr>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut config = match &config_path {
        Some(path) => Config::load(path)?,
        None => Config::demo(),
    };
    if let Some(dir) = &data_dir {
        config.set_data_dir(dir.clone());
    }
    if let Some(addr) = listen {
        config.listen = addr;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    config.base_url = format!("http://{addr}");
    let base_url = config.base_url.clone();
    let gateway = Gateway::open(config, &mut |m| eprintln!("{m}"))
        .await
        .context("cannot start")?;
    // A closed stdout (a supervisor that read the first line and went
    // away) must not take the server down: these lines are best effort.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "Sluice is listening on {base_url}");
    if gateway.config.ui.is_some() {
        let _ = writeln!(out, "Reviewer web UI: {base_url}/ui/");
    }
    if gateway.dev_issuer.is_some() {
        tracing::warn!(
            "THE DEVELOPMENT TOKEN ISSUER IS ON: anyone who can run `sluice token` on this machine \
             can mint tokens for any group. Use it for the demo and tests only; turn it off \
             (identity.development_issuer.enabled: false) wherever agents connect."
        );
    }
    if gateway.config.policy.policy_names().is_empty() {
        tracing::warn!("no policies are configured: every query will be refused (default deny)");
    }
    let token = token_command(config_path.as_deref(), data_dir.as_deref());
    if config_path.is_none() {
        let _ = writeln!(
            out,
            "\nDemo mode: embedded warehouse (project `demo`, dataset `shop`), SQLite store,\n\
             development token issuer. Get a token for an agent:\n\n\
             \x20   TOKEN=$({token})\n\n\
             Then, from Python (pip install google-cloud-bigquery):\n\n\
             import os\n\
             from google.cloud import bigquery\n\
             from google.oauth2.credentials import Credentials\n\
             client = bigquery.Client(project=\"demo\", credentials=Credentials(token=os.environ[\"TOKEN\"]),\n\
             \x20                        client_options={{\"api_endpoint\": \"{base_url}\"}})\n\
             for row in client.query(\"SELECT name, email FROM demo.shop.customers LIMIT 5\").result():\n\
             \x20   print(row)\n"
        );
    } else if gateway.dev_issuer.is_some() {
        let _ = writeln!(
            out,
            "\nGet a token from the development issuer (name the groups your policies use):\n\n\
             \x20   TOKEN=$({token})\n"
        );
    }
    let _ = out.flush();
    drop(out);
    sluice_gateway::serve(listener, Arc::new(gateway), shutdown_signal()).await?;
    Ok(())
}

/// The `sluice token` command for this server, runnable from where the user
/// stands: after `cargo run -- serve` there is no `sluice` on the PATH, so
/// it names this very binary, with the configuration and data folder the
/// server was given (the development issuer's key is in the data folder).
fn token_command(config: Option<&Path>, data_dir: Option<&Path>) -> String {
    let mut words = vec![
        this_binary(),
        "token".into(),
        "--sub".into(),
        "my-agent".into(),
        "--group".into(),
        "agents".into(),
    ];
    if let Some(path) = config {
        words.extend(["--config".into(), path.display().to_string()]);
    }
    if let Some(path) = data_dir {
        words.extend(["--data-dir".into(), path.display().to_string()]);
    }
    words
        .iter()
        .map(|word| shell_word(word))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How to run this binary from the current folder: its bare name when the
/// PATH finds this very file under it, else the shorter of its absolute
/// path and its path relative to the current folder.
fn this_binary() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "sluice".into();
    };
    let real = exe.canonicalize().unwrap_or_else(|_| exe.clone());
    let same_file =
        |candidate: &Path| candidate.is_file() && candidate.canonicalize().is_ok_and(|c| c == real);
    if let Some(name) = exe.file_name()
        && std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| same_file(&dir.join(name))))
    {
        return name.to_string_lossy().into_owned();
    }
    let absolute = exe.display().to_string();
    match std::env::current_dir()
        .ok()
        .and_then(|cwd| relative_path(&exe, &cwd))
    {
        Some(relative) if relative.len() < absolute.len() => relative,
        _ => absolute,
    }
}

/// `target` as seen from the folder `from` (both absolute), with `./` when
/// it is right there, so a shell runs it rather than searching the PATH.
fn relative_path(target: &Path, from: &Path) -> Option<String> {
    let target: Vec<_> = target.components().collect();
    let from: Vec<_> = from.components().collect();
    let common = target.iter().zip(&from).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return None;
    }
    let mut parts: Vec<String> = vec!["..".into(); from.len() - common];
    parts.extend(
        target[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.len() == 1 {
        parts.insert(0, ".".into());
    }
    Some(parts.join("/"))
}

/// `word` quoted for a POSIX shell when it needs to be.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return ctrl_c.await.unwrap_or_default(),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_is_named_by_the_shorter_path_that_works_from_here() {
        let exe = Path::new("/repo/target/debug/sluice");
        assert_eq!(
            relative_path(exe, Path::new("/repo")).as_deref(),
            Some("target/debug/sluice")
        );
        assert_eq!(
            relative_path(exe, Path::new("/repo/target/debug")).as_deref(),
            Some("./sluice")
        );
        assert_eq!(
            relative_path(exe, Path::new("/home/me")).as_deref(),
            Some("../../repo/target/debug/sluice")
        );
    }

    #[test]
    fn words_are_quoted_only_when_a_shell_needs_it() {
        assert_eq!(shell_word("/tmp/sluice-data"), "/tmp/sluice-data");
        assert_eq!(shell_word("my data"), "'my data'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(shell_word(""), "''");
    }
}
