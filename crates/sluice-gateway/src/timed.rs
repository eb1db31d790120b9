//! The warehouse as the gateway calls it: every call timed into
//! `sluice_upstream_call_duration_seconds{call}`, so the warehouse's share
//! of a request is visible apart from the gateway's own work
//! (`sluice_phase_duration_seconds`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sluice_warehouse::{
    Access, DatasetInfo, DryRun, QueryRequest, QueryStatus, RowPage, TableInfo, TableRef,
    Warehouse, WarehouseError,
};

use crate::metrics::Metrics;

/// Times each call to `inner`.
#[derive(Debug)]
pub struct Timed {
    inner: Arc<dyn Warehouse>,
    metrics: Metrics,
}

impl Timed {
    pub fn new(inner: Arc<dyn Warehouse>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }

    async fn timed<T>(
        &self,
        call: &'static str,
        future: impl Future<Output = Result<T, WarehouseError>>,
    ) -> Result<T, WarehouseError> {
        let started = Instant::now();
        let result = future.await;
        self.metrics.upstream_call(call, started.elapsed());
        result
    }
}

#[async_trait]
impl Warehouse for Timed {
    async fn projects(&self, access: &Access) -> Result<Vec<String>, WarehouseError> {
        self.timed("projects", self.inner.projects(access)).await
    }

    async fn list_datasets(
        &self,
        access: &Access,
        project: &str,
    ) -> Result<Vec<DatasetInfo>, WarehouseError> {
        self.timed("list_datasets", self.inner.list_datasets(access, project))
            .await
    }

    async fn get_dataset(
        &self,
        access: &Access,
        project: &str,
        dataset: &str,
    ) -> Result<DatasetInfo, WarehouseError> {
        self.timed(
            "get_dataset",
            self.inner.get_dataset(access, project, dataset),
        )
        .await
    }

    async fn list_tables(
        &self,
        access: &Access,
        project: &str,
        dataset: &str,
    ) -> Result<Vec<TableInfo>, WarehouseError> {
        self.timed(
            "list_tables",
            self.inner.list_tables(access, project, dataset),
        )
        .await
    }

    async fn get_table(
        &self,
        access: &Access,
        table: &TableRef,
    ) -> Result<TableInfo, WarehouseError> {
        self.timed("get_table", self.inner.get_table(access, table))
            .await
    }

    async fn ready(&self) -> Result<(), WarehouseError> {
        self.inner.ready().await
    }

    async fn read_rows(
        &self,
        access: &Access,
        table: &TableRef,
        start: u64,
        max_rows: usize,
        max_bytes: usize,
        selected_fields: Option<&[String]>,
    ) -> Result<RowPage, WarehouseError> {
        self.timed(
            "read_rows",
            self.inner
                .read_rows(access, table, start, max_rows, max_bytes, selected_fields),
        )
        .await
    }

    async fn dry_run(
        &self,
        access: &Access,
        query: &QueryRequest,
    ) -> Result<DryRun, WarehouseError> {
        self.timed("dry_run", self.inner.dry_run(access, query))
            .await
    }

    async fn start_query(
        &self,
        access: &Access,
        job_key: &str,
        query: &QueryRequest,
    ) -> Result<(), WarehouseError> {
        self.timed("start", self.inner.start_query(access, job_key, query))
            .await
    }

    async fn wait_query(
        &self,
        access: &Access,
        job_key: &str,
        timeout: Duration,
    ) -> Result<QueryStatus, WarehouseError> {
        self.timed("wait", self.inner.wait_query(access, job_key, timeout))
            .await
    }

    async fn result_page(
        &self,
        access: &Access,
        job_key: &str,
        start: u64,
        max_rows: usize,
        max_bytes: usize,
    ) -> Result<RowPage, WarehouseError> {
        self.timed(
            "result_page",
            self.inner
                .result_page(access, job_key, start, max_rows, max_bytes),
        )
        .await
    }

    async fn cancel_query(&self, access: &Access, job_key: &str) -> Result<(), WarehouseError> {
        self.timed("cancel", self.inner.cancel_query(access, job_key))
            .await
    }

    fn resume(&self, job_key: &str, project: &str) {
        self.inner.resume(job_key, project);
    }
}
