//! The [`Warehouse`] trait: what the gateway needs from a place that runs
//! BigQuery SQL.

use std::time::Duration;

use async_trait::async_trait;

use crate::{
    Access, DatasetInfo, QueryRequest, RoutineRef, RowPage, TableInfo, TableRef, TableSchema,
    WarehouseError,
};

/// The result of a dry run: what the query would return and cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRun {
    pub schema: TableSchema,
    /// Bytes the query would read, from the columns it actually scans.
    pub total_bytes_processed: u64,
    /// Every table the query reads, as the warehouse resolved it.
    pub referenced_tables: Vec<TableRef>,
    /// Every persistent routine the query calls, as the warehouse resolved
    /// it (none for a warehouse without routines).
    pub referenced_routines: Vec<RoutineRef>,
    /// `SELECT`, `INSERT`, … as BigQuery names statement types.
    pub statement_type: String,
}

/// A finished query.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueryOutcome {
    pub schema: TableSchema,
    pub total_rows: u64,
    pub total_bytes_processed: u64,
    pub referenced_tables: Vec<TableRef>,
    /// Every persistent routine the query called, as the warehouse
    /// resolved it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referenced_routines: Vec<RoutineRef>,
    pub statement_type: String,
}

/// Where a query job stands in the warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryStatus {
    Running,
    Done(QueryOutcome),
    Failed(WarehouseError),
}

impl QueryStatus {
    pub fn is_finished(&self) -> bool {
        !matches!(self, Self::Running)
    }
}

/// A warehouse that answers BigQuery's questions.
///
/// Queries run as jobs keyed by a string the gateway chooses (unique per
/// job); the warehouse keeps their results until asked for them in pages.
/// Every call carries the [`Access`] the gateway minted for the caller, and
/// the warehouse uses no other credential.
#[async_trait]
pub trait Warehouse: Send + Sync + std::fmt::Debug {
    /// The projects this warehouse holds.
    async fn projects(&self, access: &Access) -> Result<Vec<String>, WarehouseError>;

    async fn list_datasets(
        &self,
        access: &Access,
        project: &str,
    ) -> Result<Vec<DatasetInfo>, WarehouseError>;

    async fn get_dataset(
        &self,
        access: &Access,
        project: &str,
        dataset: &str,
    ) -> Result<DatasetInfo, WarehouseError>;

    async fn list_tables(
        &self,
        access: &Access,
        project: &str,
        dataset: &str,
    ) -> Result<Vec<TableInfo>, WarehouseError>;

    async fn get_table(
        &self,
        access: &Access,
        table: &TableRef,
    ) -> Result<TableInfo, WarehouseError>;

    /// Whether the warehouse answers at all, for `/readyz`: the embedded
    /// one once its tables are loaded, an upstream once its endpoint
    /// answers HTTP (any status: no credential is spent on it).
    async fn ready(&self) -> Result<(), WarehouseError> {
        Ok(())
    }

    /// `tabledata.list`: rows `start..start+max_rows` of a table, optionally
    /// only the named top-level columns, and about `max_bytes` of row JSON
    /// at most (the page stops before a row that would pass it, but holds
    /// at least one).
    async fn read_rows(
        &self,
        access: &Access,
        table: &TableRef,
        start: u64,
        max_rows: usize,
        max_bytes: usize,
        selected_fields: Option<&[String]>,
    ) -> Result<RowPage, WarehouseError>;

    /// Plans the query without running it.
    async fn dry_run(
        &self,
        access: &Access,
        query: &QueryRequest,
    ) -> Result<DryRun, WarehouseError>;

    /// Starts running `query` as job `job_key`. Returns once the query is
    /// accepted; errors found while planning are returned here.
    async fn start_query(
        &self,
        access: &Access,
        job_key: &str,
        query: &QueryRequest,
    ) -> Result<(), WarehouseError>;

    /// Waits up to `timeout` for the job to finish and says where it stands.
    async fn wait_query(
        &self,
        access: &Access,
        job_key: &str,
        timeout: Duration,
    ) -> Result<QueryStatus, WarehouseError>;

    /// Rows `start..` of a finished job's result: at most `max_rows` rows
    /// and about `max_bytes` of JSON, whichever comes first (at least one
    /// row when any remain).
    async fn result_page(
        &self,
        access: &Access,
        job_key: &str,
        start: u64,
        max_rows: usize,
        max_bytes: usize,
    ) -> Result<RowPage, WarehouseError>;

    /// Stops a running job; a finished one is left as it is.
    async fn cancel_query(&self, access: &Access, job_key: &str) -> Result<(), WarehouseError>;

    /// The gateway has job `job_key`, started in `project`, in its records
    /// (perhaps from before a restart). A warehouse whose jobs outlive the
    /// gateway process (BigQuery) finds the job again from this; one whose
    /// executions die with it does nothing, and later calls say `NotFound`.
    fn resume(&self, _job_key: &str, _project: &str) {}
}
