//! The `sluice` command: parses flags and calls into the gateway. It holds
//! no logic of its own.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice_gateway::{Config, Gateway};

/// Sluice: a just-in-time access gateway between AI agents and BigQuery.
///
/// Agents point their unchanged BigQuery client at Sluice; Sluice runs what
/// policy allows and answers exactly as BigQuery would.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, propagate_version = true)]
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
    /// (Re)generate the demo data set: demo.shop.customers, orders and
    /// events (1,000,000 rows), deterministic and visibly fake.
    DemoData {
        /// The embedded warehouse's folder.
        #[arg(long, value_name = "DIR", default_value = "sluice-data/warehouse")]
        warehouse_dir: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
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
        Command::DemoData { warehouse_dir } => {
            sluice_warehouse::demo::generate(&warehouse_dir, &mut |m| eprintln!("{m}"))
                .context("cannot generate the demo data")?;
            println!("demo data written to {}", warehouse_dir.display());
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
    if let Some(dir) = data_dir {
        config.store_path = dir.join("sluice.db");
        config.warehouse_dir = dir.join("warehouse");
        config.data_dir = dir;
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
    if config_path.is_none() {
        let _ = writeln!(
            out,
            "\nDemo mode: embedded warehouse (project `demo`, dataset `shop`), SQLite store.\n\
             Try it from Python (pip install google-cloud-bigquery):\n\n\
             from google.cloud import bigquery\n\
             from google.oauth2.credentials import Credentials\n\
             client = bigquery.Client(project=\"demo\", credentials=Credentials(token=\"demo\"),\n\
             \x20                        client_options={{\"api_endpoint\": \"{base_url}\"}})\n\
             for row in client.query(\"SELECT name, email FROM demo.shop.customers LIMIT 5\").result():\n\
             \x20   print(row)\n"
        );
    }
    let _ = out.flush();
    drop(out);
    sluice_gateway::serve(listener, Arc::new(gateway), shutdown_signal()).await?;
    Ok(())
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
