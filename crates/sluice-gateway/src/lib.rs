//! Sluice's HTTP surfaces and the request pipeline.
//!
//! [`Gateway`] wires the parts together — the warehouse, the store, the
//! job lifecycle — and [`router`] exposes them: the BigQuery REST v2
//! facade under `/bigquery/v2/`, and `/healthz` and `/readyz`.

mod authenticate;
pub mod config;
pub mod error;
mod facade;
mod jobs;
mod params;
mod route;
mod timestamps;
mod wire;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use sluice_store::{SqliteStore, Store};
use sluice_warehouse::Warehouse;
use sluice_warehouse::embedded::{EmbeddedConfig, EmbeddedWarehouse};

pub use authenticate::Principal;
pub use config::{Config, ConfigError};
pub use error::GatewayError;

/// Everything a request needs, shared by all of them.
#[derive(Debug)]
pub struct Gateway {
    pub config: Config,
    pub warehouse: Arc<dyn Warehouse>,
    pub store: Arc<dyn Store>,
    jobs: jobs::Jobs,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] sluice_store::StoreError),
    #[error("warehouse: {0}")]
    Warehouse(#[from] sluice_warehouse::WarehouseError),
}

impl Gateway {
    /// Opens the store and the warehouse the configuration names,
    /// generating the demo data first when asked to and missing.
    pub async fn open(
        config: Config,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Self, StartError> {
        for dir in [&config.data_dir, &config.warehouse_dir] {
            std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        if let Some(parent) = config.store_path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| StartError::DataDir {
                path: parent.display().to_string(),
                source,
            })?;
        }
        if config.demo_data && !sluice_warehouse::demo::is_present(&config.warehouse_dir) {
            progress("demo data not found: generating it (once)…");
            sluice_warehouse::demo::generate(&config.warehouse_dir, &mut |m| progress(m))?;
        }
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.store_path).await?);
        let warehouse: Arc<dyn Warehouse> = Arc::new(
            EmbeddedWarehouse::open(EmbeddedConfig {
                data_dir: config.warehouse_dir.clone(),
                results_dir: config.data_dir.join("results"),
                location: config.location.clone(),
                max_concurrent_queries: config.max_concurrent_queries,
                query_memory_bytes: config.query_memory_bytes,
            })
            .await?,
        );
        Ok(Self::new(config, warehouse, store))
    }

    /// A gateway over the given parts (tests inject their own).
    pub fn new(config: Config, warehouse: Arc<dyn Warehouse>, store: Arc<dyn Store>) -> Self {
        let jobs = jobs::Jobs {
            store: store.clone(),
            warehouse: warehouse.clone(),
            location: config.location.clone(),
        };
        Self {
            config,
            warehouse,
            store,
            jobs,
        }
    }
}

/// The HTTP routes.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .fallback(facade::handle)
        .with_state(gateway)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(gateway))
        .with_graceful_shutdown(shutdown)
        .await
}
