//! The embedded warehouse: DataFusion over a folder of Parquet, CSV and
//! newline-delimited JSON files, speaking BigQuery Standard SQL.
//!
//! Queries run as jobs in the background; each job streams its result
//! batch by batch into a result file ([`results`]), so memory is bounded by
//! a batch, and pages are read back from that file for as long as the
//! client keeps asking.
//!
//! [`demo`] generates the synthetic data set `sluice serve` starts with.

pub mod arrow_types;
pub mod bigquery_sql;
mod catalog;
pub mod demo;
pub mod functions;
mod output_names;
pub mod results;
pub mod rows;
mod yielding;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::TableReference;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DFStatement;
use futures::StreamExt;
use tokio::sync::{Semaphore, watch};

use self::catalog::Catalog;
use sluice_warehouse::{
    Access, DatasetInfo, DryRun, QueryOutcome, QueryRequest, QueryStatus, RowPage, TableInfo,
    TableRef, TableSchema, Warehouse, WarehouseError, WarehouseErrorKind,
};

/// Where the embedded warehouse finds its tables and keeps its results.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// `<project>/<dataset>/<table>.{parquet,csv,json}`.
    pub data_dir: PathBuf,
    /// Query results, one set of files per job.
    pub results_dir: PathBuf,
    /// The location datasets report (`US`).
    pub location: String,
    /// Queries that may run at once; more wait their turn.
    pub max_concurrent_queries: usize,
    /// Memory all running queries may hold together (joins, sorts,
    /// aggregates); a query that needs more fails with `resourcesExceeded`
    /// instead of taking the gateway down.
    pub query_memory_bytes: usize,
    /// How long a finished job's results are kept (files and memory);
    /// after that its rows are gone, as BigQuery's anonymous result tables
    /// expire.
    pub result_retention: Duration,
}

/// DataFusion behind the [`Warehouse`] trait.
pub struct EmbeddedWarehouse {
    ctx: SessionContext,
    catalog: Catalog,
    config: EmbeddedConfig,
    jobs: Mutex<HashMap<String, RunningJob>>,
    slots: Arc<Semaphore>,
    /// When results past their retention were last looked for.
    last_sweep: Mutex<Option<std::time::Instant>>,
    /// Queries execute on their own threads: a CPU-bound query must not
    /// starve the runtime that answers HTTP (and holds, and cancels).
    executor: Option<tokio::runtime::Runtime>,
}

impl Drop for EmbeddedWarehouse {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed inside another.
        if let Some(executor) = self.executor.take() {
            executor.shutdown_background();
        }
    }
}

impl std::fmt::Debug for EmbeddedWarehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedWarehouse")
            .field("data_dir", &self.config.data_dir)
            .finish_non_exhaustive()
    }
}

struct RunningJob {
    status: watch::Receiver<QueryStatus>,
    task: tokio::task::AbortHandle,
    started: std::time::Instant,
}

/// A planned query: what it reads and returns, ready to run.
struct Planned {
    plan: LogicalPlan,
    schema: TableSchema,
    referenced_tables: Vec<TableRef>,
    total_bytes_processed: u64,
}

impl EmbeddedWarehouse {
    /// Loads every table under `config.data_dir`.
    pub async fn open(config: EmbeddedConfig) -> Result<Self, WarehouseError> {
        std::fs::create_dir_all(&config.results_dir).map_err(|e| {
            WarehouseError::internal(format!(
                "cannot create {}: {e}",
                config.results_dir.display()
            ))
        })?;
        let session = SessionConfig::new()
            .with_information_schema(false)
            .with_create_default_catalog_and_schema(false)
            .with_batch_size(8192);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(config.query_memory_bytes, 1.0)
            .build_arc()
            .map_err(query_error)?;
        let state = SessionStateBuilder::new()
            .with_config(session)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(yielding::YieldEverywhere))
            .build();
        let ctx = SessionContext::new_with_state(state);
        functions::register(&ctx);
        let catalog = catalog::load(&ctx, &config.data_dir, &config.location).await?;
        let executor = tokio::runtime::Builder::new_multi_thread()
            .thread_name("sluice-query")
            .enable_all()
            .build()
            .map_err(|e| {
                WarehouseError::internal(format!("cannot start the query threads: {e}"))
            })?;
        Ok(Self {
            ctx,
            catalog,
            executor: Some(executor),
            slots: Arc::new(Semaphore::new(config.max_concurrent_queries.max(1))),
            config,
            jobs: Mutex::new(HashMap::new()),
            last_sweep: Mutex::new(None),
        })
    }

    /// Forgets finished jobs past the retention: their in-memory entries
    /// and their result files (also those of jobs from before a restart).
    /// Looks at most once a minute (or once per retention, if shorter).
    async fn sweep(&self) -> Result<(), WarehouseError> {
        let retention = self.config.result_retention;
        {
            let mut last = self.last_sweep.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < retention.min(Duration::from_secs(60))) {
                return Ok(());
            }
            *last = Some(std::time::Instant::now());
        }
        let unfinished: std::collections::HashSet<String> = {
            let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            jobs.retain(|_, job| {
                !(job.status.borrow().is_finished() && job.started.elapsed() >= retention)
            });
            jobs.iter()
                .filter(|(_, job)| !job.status.borrow().is_finished())
                .map(|(key, _)| key.clone())
                .collect()
        };
        let dir = self.config.results_dir.clone();
        let removed = blocking(move || results::sweep(&dir, retention, &unfinished)).await?;
        if removed > 0 {
            tracing::debug!(removed, "removed query results past their retention");
        }
        Ok(())
    }

    async fn plan(&self, query: &QueryRequest) -> Result<Planned, WarehouseError> {
        let mut statement = bigquery_sql::translate(query)?;
        output_names::name_output_columns(&mut statement);
        let statement = DFStatement::Statement(Box::new(statement));
        self.check_tables_exist(&statement)?;
        let state = self.ctx.state();
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(query_error)?;
        let optimized = state.optimize(&plan).map_err(query_error)?;
        let (referenced_tables, total_bytes_processed) = self.scanned(&optimized)?;
        let schema = arrow_types::bigquery_schema(plan.schema().as_arrow())?;
        if let Some(limit) = query.maximum_bytes_billed
            && total_bytes_processed > limit
        {
            return Err(WarehouseError::new(
                WarehouseErrorKind::BytesBilledLimitExceeded,
                format!(
                    "Query exceeded limit for bytes billed: {limit}. {total_bytes_processed} or higher required."
                ),
            ));
        }
        Ok(Planned {
            plan,
            schema,
            referenced_tables,
            total_bytes_processed,
        })
    }

    /// Answers a missing table or dataset as BigQuery does (`notFound`),
    /// rather than as a planning error.
    fn check_tables_exist(&self, statement: &DFStatement) -> Result<(), WarehouseError> {
        let (references, _ctes) =
            datafusion::sql::resolve::resolve_table_references(statement, true)
                .map_err(query_error)?;
        for reference in references {
            let TableReference::Full {
                catalog,
                schema,
                table,
            } = &reference
            else {
                return Err(WarehouseError::invalid_query(format!(
                    "Table name \"{reference}\" missing dataset while no default dataset is set in the request."
                )));
            };
            let table = TableRef::new(catalog.as_ref(), schema.as_ref(), table.as_ref());
            if Catalog::is_information_schema(&table) {
                self.catalog.dataset(&table.project_id, &table.dataset_id)?;
            } else {
                self.catalog.table(&table)?;
            }
        }
        Ok(())
    }

    /// The tables an optimized plan scans and the bytes of the columns it
    /// reads: BigQuery bills every column a query touches, once.
    fn scanned(&self, plan: &LogicalPlan) -> Result<(Vec<TableRef>, u64), WarehouseError> {
        let mut columns: BTreeSet<(TableRef, usize)> = BTreeSet::new();
        let mut tables: BTreeSet<TableRef> = BTreeSet::new();
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && let TableReference::Full {
                    catalog,
                    schema,
                    table,
                } = &scan.table_name
            {
                let table = TableRef::new(catalog.as_ref(), schema.as_ref(), table.as_ref());
                if !Catalog::is_information_schema(&table) {
                    let width = scan.source.schema().fields().len();
                    let indices: Vec<usize> = match &scan.projection {
                        Some(projection) => projection.clone(),
                        None => (0..width).collect(),
                    };
                    for index in indices {
                        columns.insert((table.clone(), index));
                    }
                    tables.insert(table);
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .map_err(query_error)?;
        let mut bytes = 0u64;
        for (table, index) in &columns {
            let entry = self.catalog.table(table)?;
            bytes += entry.column_bytes.get(*index).copied().unwrap_or_default();
        }
        Ok((tables.into_iter().collect(), bytes))
    }

    fn running(&self, job_key: &str) -> Option<watch::Receiver<QueryStatus>> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.get(job_key).map(|job| job.status.clone())
    }

    async fn stored_status(&self, job_key: &str) -> Result<QueryStatus, WarehouseError> {
        let dir = self.config.results_dir.clone();
        let key = job_key.to_string();
        let outcome = blocking(move || results::read_outcome(&dir, &key)).await?;
        match outcome {
            Some(outcome) => Ok(QueryStatus::Done(outcome)),
            None => Err(WarehouseError::not_found(format!(
                "Not found: Job {job_key}"
            ))),
        }
    }
}

/// Runs blocking file work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, WarehouseError> + Send + 'static,
) -> Result<T, WarehouseError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| WarehouseError::internal(format!("background task failed: {e}")))?
}

/// DataFusion's complaints about a query, as BigQuery's `invalidQuery`;
/// its own failures as `internalError`.
fn query_error(err: DataFusionError) -> WarehouseError {
    match err.find_root() {
        DataFusionError::IoError(_)
        | DataFusionError::ObjectStore(_)
        | DataFusionError::Internal(_) => {
            WarehouseError::internal(format!("The query failed in the warehouse: {err}"))
        }
        DataFusionError::ResourcesExhausted(_) => WarehouseError::new(
            WarehouseErrorKind::ResourcesExceeded,
            format!(
                "Resources exceeded during query execution: the query needs more memory than the warehouse allows ({err}). Read fewer rows or columns, filter earlier, or avoid cross joins."
            ),
        ),
        DataFusionError::NotImplemented(what) => WarehouseError::unsupported(what),
        _ => WarehouseError::invalid_query(err.to_string()),
    }
}

#[async_trait]
impl Warehouse for EmbeddedWarehouse {
    async fn projects(&self, _access: &Access) -> Result<Vec<String>, WarehouseError> {
        Ok(self.catalog.projects().map(str::to_string).collect())
    }

    async fn list_datasets(
        &self,
        _access: &Access,
        project: &str,
    ) -> Result<Vec<DatasetInfo>, WarehouseError> {
        self.catalog.datasets(project)
    }

    async fn get_dataset(
        &self,
        _access: &Access,
        project: &str,
        dataset: &str,
    ) -> Result<DatasetInfo, WarehouseError> {
        self.catalog.dataset(project, dataset).cloned()
    }

    async fn list_tables(
        &self,
        _access: &Access,
        project: &str,
        dataset: &str,
    ) -> Result<Vec<TableInfo>, WarehouseError> {
        self.catalog.tables(project, dataset)
    }

    async fn get_table(
        &self,
        _access: &Access,
        table: &TableRef,
    ) -> Result<TableInfo, WarehouseError> {
        Ok(self.catalog.table(table)?.info.clone())
    }

    async fn read_rows(
        &self,
        _access: &Access,
        table: &TableRef,
        start: u64,
        max_rows: usize,
        max_bytes: usize,
        selected_fields: Option<&[String]>,
    ) -> Result<RowPage, WarehouseError> {
        let entry = self.catalog.table(table)?;
        let total_rows = entry.info.num_rows;
        if start >= total_rows || max_rows == 0 {
            return Ok(RowPage {
                rows: Vec::new(),
                total_rows,
            });
        }
        let reference = TableReference::full(
            table.project_id.as_str(),
            table.dataset_id.as_str(),
            table.table_id.as_str(),
        );
        let mut frame = self.ctx.table(reference).await.map_err(query_error)?;
        if let Some(fields) = selected_fields {
            let known: Vec<&str> = entry
                .info
                .schema
                .fields
                .iter()
                .map(|f| f.name.as_str())
                .collect();
            let mut columns = Vec::new();
            for field in fields {
                let Some(name) = known.iter().find(|k| k.eq_ignore_ascii_case(field)) else {
                    return Err(WarehouseError::invalid(format!(
                        "Invalid field selection {field}: no such field in table {table}"
                    )));
                };
                columns.push(*name);
            }
            frame = frame.select_columns(&columns).map_err(query_error)?;
        }
        let frame = frame
            .limit(start as usize, Some(max_rows))
            .map_err(query_error)?;
        // A page is read like a query: it waits for one of the query
        // slots and runs on the query threads, so reading tables cannot
        // crowd out queries or the threads that answer HTTP.
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| WarehouseError::internal("the warehouse is shutting down"))?;
        let executor = self
            .executor
            .as_ref()
            .ok_or_else(|| WarehouseError::internal("the warehouse is shutting down"))?;
        let read = executor.spawn(async move {
            let _permit = permit;
            let batches: Vec<RecordBatch> = frame.collect().await.map_err(query_error)?;
            let mut rows = Vec::new();
            for batch in &batches {
                rows.extend(rows::encode_rows(batch)?);
            }
            Ok::<_, WarehouseError>(sluice_warehouse::rows_within(rows, max_bytes))
        });
        let rows = read
            .await
            .map_err(|e| WarehouseError::internal(format!("reading the table failed: {e}")))??;
        Ok(RowPage { rows, total_rows })
    }

    async fn dry_run(
        &self,
        _access: &Access,
        query: &QueryRequest,
    ) -> Result<DryRun, WarehouseError> {
        let planned = self.plan(query).await?;
        Ok(DryRun {
            schema: planned.schema,
            total_bytes_processed: planned.total_bytes_processed,
            referenced_tables: planned.referenced_tables,
            referenced_routines: Vec::new(),
            statement_type: "SELECT".into(),
        })
    }

    async fn start_query(
        &self,
        _access: &Access,
        job_key: &str,
        query: &QueryRequest,
    ) -> Result<(), WarehouseError> {
        self.sweep().await?;
        let planned = self.plan(query).await?;
        let writer = {
            let dir = self.config.results_dir.clone();
            let key = job_key.to_string();
            blocking(move || results::ResultWriter::create(&dir, &key)).await?
        };
        let frame = DataFrame::new(self.ctx.state(), planned.plan);
        let (status_tx, status_rx) = watch::channel(QueryStatus::Running);
        let outcome = QueryOutcome {
            schema: planned.schema,
            total_rows: 0,
            total_bytes_processed: planned.total_bytes_processed,
            referenced_tables: planned.referenced_tables,
            referenced_routines: Vec::new(),
            statement_type: "SELECT".into(),
        };
        let slots = self.slots.clone();
        let executor = self
            .executor
            .as_ref()
            .ok_or_else(|| WarehouseError::internal("the warehouse is shutting down"))?;
        let task = executor.spawn(async move {
            let status = match slots.acquire_owned().await {
                Ok(_permit) => match run(frame, writer, outcome).await {
                    Ok(outcome) => QueryStatus::Done(outcome),
                    Err(err) => QueryStatus::Failed(err),
                },
                Err(_) => {
                    QueryStatus::Failed(WarehouseError::internal("the warehouse is shutting down"))
                }
            };
            status_tx.send_replace(status);
        });
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.insert(
            job_key.to_string(),
            RunningJob {
                status: status_rx,
                task: task.abort_handle(),
                started: std::time::Instant::now(),
            },
        );
        Ok(())
    }

    async fn wait_query(
        &self,
        _access: &Access,
        job_key: &str,
        timeout: Duration,
    ) -> Result<QueryStatus, WarehouseError> {
        let Some(mut status) = self.running(job_key) else {
            return self.stored_status(job_key).await;
        };
        let _ = tokio::time::timeout(timeout, status.wait_for(QueryStatus::is_finished)).await;
        let current = status.borrow().clone();
        Ok(current)
    }

    async fn result_page(
        &self,
        _access: &Access,
        job_key: &str,
        start: u64,
        max_rows: usize,
        max_bytes: usize,
    ) -> Result<RowPage, WarehouseError> {
        let dir = self.config.results_dir.clone();
        let key = job_key.to_string();
        blocking(move || results::read_page(&dir, &key, start, max_rows, max_bytes)).await
    }

    async fn cancel_query(&self, _access: &Access, job_key: &str) -> Result<(), WarehouseError> {
        let job = {
            let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            jobs.get(job_key)
                .map(|job| (job.status.clone(), job.task.clone()))
        };
        let Some((status, task)) = job else {
            return Ok(());
        };
        if status.borrow().is_finished() {
            return Ok(());
        }
        task.abort();
        let dir = self.config.results_dir.clone();
        let key = job_key.to_string();
        blocking(move || results::remove(&dir, &key)).await?;
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let (tx, rx) = watch::channel(QueryStatus::Failed(WarehouseError::new(
            WarehouseErrorKind::Stopped,
            "Job execution was cancelled: User requested cancellation",
        )));
        drop(tx);
        if let Some(job) = jobs.get_mut(job_key) {
            job.status = rx;
        }
        Ok(())
    }
}

/// Executes a plan and streams its batches to the result file on a
/// blocking thread, two batches in flight at most.
async fn run(
    frame: DataFrame,
    mut writer: results::ResultWriter,
    mut outcome: QueryOutcome,
) -> Result<QueryOutcome, WarehouseError> {
    let mut stream = frame.execute_stream().await.map_err(query_error)?;
    let (batches, receiver) = std::sync::mpsc::sync_channel::<RecordBatch>(2);
    let write = tokio::task::spawn_blocking(move || {
        for batch in receiver {
            writer.write_batch(&batch)?;
        }
        Ok::<_, WarehouseError>(writer)
    });
    let mut failure = None;
    while let Some(batch) = stream.next().await {
        match batch {
            Ok(batch) => {
                // `send` blocks while the writer is two batches behind:
                // hand that wait to the blocking pool too.
                let sender = batches.clone();
                let sent = tokio::task::spawn_blocking(move || sender.send(batch).is_ok())
                    .await
                    .unwrap_or(false);
                if !sent {
                    break;
                }
            }
            Err(err) => {
                failure = Some(query_error(err));
                break;
            }
        }
    }
    drop(batches);
    let writer = write
        .await
        .map_err(|e| WarehouseError::internal(format!("result writer failed: {e}")))??;
    if let Some(err) = failure {
        return Err(err);
    }
    outcome.total_rows = writer.rows_written();
    let finished = outcome.clone();
    blocking(move || writer.finish(&finished)).await?;
    Ok(outcome)
}
