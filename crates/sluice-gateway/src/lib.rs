//! Sluice's HTTP surfaces and the request pipeline.
//!
//! [`Gateway`] wires the parts together — the warehouse, the store, the
//! job lifecycle — and [`router`] exposes them: the BigQuery REST v2
//! facade under `/bigquery/v2/`, the reviewers' API and web UI
//! (`/sluice/v1/approvals`, `/ui/`), `/healthz` and `/readyz`, and with
//! workload identity Sluice's issuer: its OIDC discovery document and its
//! public keys (`/.well-known/sluice/jwks.json`).

mod access;
mod analyze;
mod approvals;
mod audit;
mod authenticate;
pub mod config;
mod credential;
mod decide;
pub mod error;
mod estimate;
mod exit;
mod facade;
mod jobs;
mod mask;
mod mcp;
mod metrics;
mod params;
mod pipeline;
mod quota;
mod route;
mod secrets;
mod timed;
mod timestamps;
mod ui;
mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::{any, get};
use sluice_bigquery::{BigQueryConfig, BigQueryWarehouse};
use sluice_identity::{DevIssuer, Verifier};
use sluice_store::{SqliteStore, Store};
use sluice_warehouse::Warehouse;

pub use analyze::analyze as analyze_query;
pub use approvals::notify::{Target as NotifyTarget, sign as sign_notification};
pub use audit::{admin_event, replay};
pub use authenticate::Principal;
pub use config::{Config, ConfigError, ConfigErrors};
pub use credential::Credentials;
pub use error::GatewayError;
pub use mask::explain as explain_masks;
pub use secrets::{
    SigningKeysError, StoredKeys, master_key, rotate_signing_keys, secret_store, signing_keys,
};

/// Everything a request needs, shared by all of them.
#[derive(Debug)]
pub struct Gateway {
    pub config: Config,
    pub warehouse: Arc<dyn Warehouse>,
    pub store: Arc<dyn Store>,
    /// Mints the upstream token each call runs with.
    pub credentials: Arc<Credentials>,
    /// Verifies every caller's token.
    pub verifier: Arc<Verifier>,
    /// The development issuer, when the configuration turns it on.
    pub dev_issuer: Option<Arc<DevIssuer>>,
    jobs: jobs::Jobs,
    /// Queries that wait for a reviewer.
    approvals: Arc<approvals::Approvals>,
    /// The reviewer web UI, when the configuration turns it on.
    ui: Option<ui::Ui>,
    /// Sensitive columns, detectors and the pseudonym key.
    pub masking: Arc<mask::Masking>,
    /// MCP tool calls per principal in the last minute.
    mcp_calls: mcp::CallWindow,
    /// What `/metrics` shows.
    metrics: metrics::Metrics,
    /// The audit log.
    audit: Arc<audit::Audit>,
}

/// Why the gateway could not start. A variant that wraps an error names
/// only the step: the cause follows in the error's chain (`{:#}` prints
/// "warehouse: …"), so it is never said twice.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create {path}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("store")]
    Store(#[from] sluice_store::StoreError),
    #[error("warehouse")]
    Warehouse(#[from] sluice_warehouse::WarehouseError),
    #[error("identity: {0}")]
    Identity(String),
    #[error("warehouse credentials: {0}")]
    Credentials(String),
    #[error("masking: {0}")]
    Masking(String),
    #[error("audit: {0}")]
    Audit(String),
}

/// The pseudonym key, from the secret store, when a masking rule needs
/// one; without a master key to open the store with, Sluice does not
/// start.
async fn pseudonym_key(
    config: &Config,
    store: &Arc<dyn Store>,
) -> Result<Option<sluice_mask::PseudonymKey>, StartError> {
    if !config.masking.uses_pseudonyms() {
        return Ok(None);
    }
    let secrets = secrets::secret_store(config, store.clone()).map_err(|e| {
        StartError::Masking(format!(
            "a pseudonym mask needs a key from the secret store, which needs a master key: {e}"
        ))
    })?;
    mask::pseudonym_key(&secrets)
        .await
        .map(Some)
        .map_err(StartError::Masking)
}

/// The key that signs audit checkpoints, from the secret store. Without
/// a master key there is none: the chain is kept and verified, but a
/// truncated tail cannot be told apart, and Sluice says so at start.
async fn audit_key(
    config: &Config,
    store: &Arc<dyn Store>,
) -> Result<Option<sluice_store::audit::CheckpointKey>, StartError> {
    if !config.audit.enabled {
        tracing::warn!(
            "THE AUDIT LOG IS OFF (audit.enabled: false): queries run with no record of who ran \
             them. Turn it off only to measure what it costs."
        );
        return Ok(None);
    }
    let secrets = match secrets::secret_store(config, store.clone()) {
        Ok(secrets) => secrets,
        Err(sluice_store::SecretError::NoMasterKey) => {
            tracing::warn!(
                "audit checkpoints are not signed: there is no master key (SLUICE_MASTER_KEY or \
                 secrets.master_key_file) to keep their key with, so a truncated audit log cannot \
                 be detected; `sluice secrets init-key` makes one"
            );
            return Ok(None);
        }
        Err(err) => return Err(StartError::Audit(err.to_string())),
    };
    secrets::audit_key(&secrets)
        .await
        .map(Some)
        .map_err(|e| StartError::Audit(e.to_string()))
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
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.store_path).await?);
        let audit_key = audit_key(&config, &store).await?;
        if let Some(upstream) = &config.upstream {
            let credentials = secrets::credentials(&config, upstream, &store).await?;
            let warehouse = BigQueryWarehouse::new(BigQueryConfig {
                endpoint: upstream.endpoint.clone(),
                location: upstream.location.clone(),
                timeout: upstream.timeout,
                backoff: sluice_credentials::retry::Backoff {
                    initial: std::time::Duration::from_millis(200),
                    max: std::time::Duration::from_secs(5),
                    deadline: upstream.retry_deadline,
                },
                lists_referenced_tables: upstream.require_referenced_tables,
            })?;
            let key = pseudonym_key(&config, &store).await?;
            let gateway = Self::with_credentials(config, Arc::new(warehouse), store, credentials)?;
            gateway.audit.set_key(audit_key);
            return Ok(gateway.with_pseudonym_key(key));
        }
        let key = pseudonym_key(&config, &store).await?;
        let warehouse = embedded_warehouse(&config, progress).await?;
        let gateway = Self::new(config, warehouse, store)?;
        gateway.audit.set_key(audit_key);
        Ok(gateway.with_pseudonym_key(key))
    }

    /// The gateway with the key its `pseudonym` masks are made with.
    pub fn with_pseudonym_key(mut self, key: Option<sluice_mask::PseudonymKey>) -> Self {
        self.masking = Arc::new(mask::Masking::new(self.config.masking.clone(), key));
        self
    }

    /// A gateway over the given parts (tests inject their own).
    pub fn new(
        config: Config,
        warehouse: Arc<dyn Warehouse>,
        store: Arc<dyn Store>,
    ) -> Result<Self, StartError> {
        Self::with_credentials(config, warehouse, store, Credentials::none())
    }

    /// A gateway whose warehouse calls run with tokens from `credentials`.
    pub fn with_credentials(
        config: Config,
        warehouse: Arc<dyn Warehouse>,
        store: Arc<dyn Store>,
        credentials: Credentials,
    ) -> Result<Self, StartError> {
        let metrics = metrics::Metrics::new();
        let warehouse: Arc<dyn Warehouse> = Arc::new(timed::Timed::new(warehouse, metrics.clone()));
        let audit = Arc::new(
            audit::Audit::new(store.clone(), config.audit.clone(), metrics.clone())
                .map_err(StartError::Audit)?,
        );
        let quota = Arc::new(
            quota::Quota::new(
                config.max_running_jobs_per_principal,
                config.max_mints_per_principal_per_minute,
            )
            .with_max_waiting(config.max_waiting_jobs_per_principal),
        );
        let credentials = Arc::new(
            credentials
                .with_quota(quota.clone())
                .with_audit(audit.clone()),
        );
        let dev_issuer = match config.identity.dev_issuer_enabled() {
            true => Some(Arc::new(load_dev_issuer(&config)?)),
            false => None,
        };
        let verifier_dev = match config.identity.dev_issuer_enabled() {
            true => Some(load_dev_issuer(&config)?),
            false => None,
        };
        let verifier =
            Verifier::new(config.identity.clone(), verifier_dev).map_err(StartError::Identity)?;
        let jobs = jobs::Jobs {
            audit: audit.clone(),
            store: store.clone(),
            warehouse: warehouse.clone(),
            credentials: credentials.clone(),
            policy: config.policy.clone(),
            quota,
            changed: Arc::default(),
            watching: Arc::default(),
            finished: Arc::default(),
            require_tables: config
                .upstream
                .as_ref()
                .is_some_and(|u| u.require_referenced_tables),
            location: config.location.clone(),
        };
        let approvals = Arc::new(approvals::Approvals {
            store: store.clone(),
            jobs: jobs.clone(),
            usd_per_tib: config.usd_per_tib,
            notifier: approvals::notify::Notifier::start(config.notify.clone()),
            link: config
                .approval_link
                .clone()
                .unwrap_or_else(|| config.base_url.clone()),
            ui: config.ui.is_some(),
        });
        let ui = ui::Ui::new(&config);
        let masking = Arc::new(mask::Masking::new(config.masking.clone(), None));
        Ok(Self {
            ui,
            masking,
            config,
            warehouse,
            store,
            credentials,
            verifier: Arc::new(verifier),
            dev_issuer,
            jobs,
            approvals,
            mcp_calls: mcp::CallWindow::default(),
            metrics,
            audit,
        })
    }
}

/// The embedded warehouse over the configured folder, generating the demo
/// data first when asked to and missing.
#[cfg(feature = "embedded")]
async fn embedded_warehouse(
    config: &Config,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Arc<dyn Warehouse>, StartError> {
    use sluice_embedded::{EmbeddedConfig, EmbeddedWarehouse, demo};
    if config.demo_data && !demo::is_present(&config.warehouse_dir) {
        progress("demo data not found: generating it (once)…");
        demo::generate(&config.warehouse_dir, &mut |m| progress(m))?;
    }
    Ok(Arc::new(
        EmbeddedWarehouse::open(EmbeddedConfig {
            data_dir: config.warehouse_dir.clone(),
            results_dir: config.data_dir.join("results"),
            location: config.location.clone(),
            max_concurrent_queries: config.max_concurrent_queries,
            query_memory_bytes: config.query_memory_bytes,
            result_retention: config.result_retention,
        })
        .await?,
    ))
}

/// A build without the embedded warehouse serves BigQuery only.
#[cfg(not(feature = "embedded"))]
async fn embedded_warehouse(
    _config: &Config,
    _progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Arc<dyn Warehouse>, StartError> {
    Err(StartError::Warehouse(
        sluice_warehouse::WarehouseError::invalid(
            "this build of Sluice has no embedded warehouse (built without the `embedded` feature): \
         configure `warehouse.kind: bigquery`, or build with the default features",
        ),
    ))
}

/// Writes the demo data set (`demo.shop`) into `dir`.
#[cfg(feature = "embedded")]
pub fn generate_demo(
    dir: &std::path::Path,
    progress: &mut dyn FnMut(&str),
) -> Result<(), sluice_warehouse::WarehouseError> {
    sluice_embedded::demo::generate(dir, progress)
}

/// Without the embedded warehouse there is no demo data to write.
#[cfg(not(feature = "embedded"))]
pub fn generate_demo(
    _dir: &std::path::Path,
    _progress: &mut dyn FnMut(&str),
) -> Result<(), sluice_warehouse::WarehouseError> {
    Err(sluice_warehouse::WarehouseError::invalid(
        "this build of Sluice has no embedded warehouse (built without the `embedded` feature)",
    ))
}

/// The development issuer's key lives in the data folder, so `sluice
/// token` signs with the key the server verifies with.
pub fn load_dev_issuer(config: &Config) -> Result<DevIssuer, StartError> {
    DevIssuer::load_or_create(
        &config.data_dir,
        config.identity.dev_issuer_id(),
        config.identity.dev_audience(),
    )
    .map_err(|source| StartError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })
}

/// Where the development issuer publishes its discovery document and keys.
pub const DEV_ISSUER_PATH: &str = "/sluice-dev-issuer";

/// The HTTP routes.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics_text));
    if let Some(dev) = &gateway.dev_issuer {
        let discovery = match gateway.ui.as_ref().filter(|ui| ui.serves_dev_login()) {
            Some(ui) => dev.discovery_document_with_login(ui.url()),
            None => dev.discovery_document(&gateway.config.base_url),
        };
        let jwks = dev.jwks();
        router = router
            .route(
                &format!("{DEV_ISSUER_PATH}/.well-known/openid-configuration"),
                get(move || async move { axum::Json(discovery) }),
            )
            .route(
                &format!("{DEV_ISSUER_PATH}/jwks.json"),
                get(move || async move { axum::Json(jwks) }),
            );
    }
    if let Some(issuer) = gateway.credentials.issuer() {
        router = issuer_routes(router, issuer.issuer());
    }
    router = ui::routes(router, &gateway);
    router = mcp::routes(router, &gateway);
    router
        .route(approvals::api::PREFIX, any(approvals::api::handle))
        .route(audit::api::PREFIX, any(audit::api::handle))
        .route(
            &format!("{}/{{*rest}}", audit::api::PREFIX),
            any(audit::api::handle),
        )
        .route(access::api::REQUESTS, any(access::api::handle))
        .route(
            &format!("{}/{{*rest}}", access::api::REQUESTS),
            any(access::api::handle),
        )
        .route(access::api::GRANTS, any(access::api::handle))
        .route(
            &format!("{}/{{*rest}}", access::api::GRANTS),
            any(access::api::handle),
        )
        .route(
            &format!("{}/{{*rest}}", approvals::api::PREFIX),
            any(approvals::api::handle),
        )
        .fallback(pipeline::handle)
        .with_state(gateway)
}

/// `/metrics`: Prometheus' text format ([`metrics::Metrics`]).
async fn metrics_text(State(gateway): State<Arc<Gateway>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        gateway.metrics.render() + &metrics::sinks_text(&gateway.audit.sink_stats()),
    )
        .into_response()
}

/// `/readyz`: 200 once the store and the warehouse answer, else 503 with
/// which one does not (no detail of why: that is in the log).
async fn ready(State(gateway): State<Arc<Gateway>>) -> (axum::http::StatusCode, &'static str) {
    use axum::http::StatusCode;
    if let Err(err) = gateway.store.get_job("", "").await {
        tracing::warn!(%err, "not ready: the store does not answer");
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: store");
    }
    if let Err(err) = gateway.warehouse.ready().await {
        tracing::warn!(%err, "not ready: the warehouse does not answer");
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: warehouse");
    }
    (StatusCode::OK, "ready")
}

/// Sluice's issuer, for a pool provider that fetches its keys: the
/// discovery document under the issuer URL's path, and the JWKS there and
/// always at the root. Public keys only.
fn issuer_routes(
    mut router: Router<Arc<Gateway>>,
    issuer: &sluice_credentials::SluiceIssuer,
) -> Router<Arc<Gateway>> {
    use sluice_credentials::{DISCOVERY_PATH, JWKS_PATH};
    async fn jwks(State(gateway): State<Arc<Gateway>>) -> axum::response::Response {
        use axum::response::IntoResponse;
        match gateway.credentials.issuer() {
            Some(issuer) => axum::Json(issuer.jwks().await).into_response(),
            None => axum::http::StatusCode::NOT_FOUND.into_response(),
        }
    }
    let mut prefix = issuer.path();
    // A path axum cannot route literally (it would read `{…}` as a
    // parameter) is served at the root only.
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~/%".contains(c))
    {
        tracing::warn!(path = %prefix, "Sluice's issuer URL has a path the gateway cannot serve; its discovery document is served at the root");
        prefix.clear();
    }
    let discovery = issuer.discovery_document();
    router = router
        .route(
            &format!("{prefix}{DISCOVERY_PATH}"),
            get(move || async move { axum::Json(discovery) }),
        )
        .route(JWKS_PATH, get(jwks));
    if !prefix.is_empty() {
        router = router.route(&format!("{prefix}{JWKS_PATH}"), get(jwks));
    }
    router
}

/// Serves until `shutdown` resolves. Requests that wait for approval and
/// outlive their timeout are swept in the background meanwhile.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    gateway
        .approvals
        .clone()
        .spawn_sweeper(gateway.config.approval_sweep);
    gateway.audit.clone().spawn_upkeep();
    let audit = gateway.audit.clone();
    audit.started(&gateway.config).await;
    let served = axum::serve(listener, router(gateway))
        .with_graceful_shutdown(shutdown)
        .await;
    // Events still being written off the requests' paths go first.
    audit.drain(std::time::Duration::from_secs(5)).await;
    audit.stopped().await;
    // The last events signed, and the sinks given a moment to deliver.
    if let Err(err) = audit.checkpoint().await {
        tracing::error!(%err, "the last audit checkpoint was not written");
    }
    audit.flush(std::time::Duration::from_secs(5)).await;
    served
}
