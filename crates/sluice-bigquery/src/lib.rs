//! The BigQuery upstream: the [`Warehouse`] trait over BigQuery's REST API
//! (`https://bigquery.googleapis.com`, or any endpoint that speaks it).
//!
//! Every call is made with the token the gateway minted for the caller; a
//! query runs as an upstream job whose id is derived from the gateway's job
//! key, so polling, pages and cancel find it again. Result pages are
//! fetched from BigQuery one page at a time as the client asks for them:
//! nothing holds a whole result.

mod client;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sluice_credentials::retry::Backoff;

use self::client::Client;
pub use self::client::upstream_error;
use self::wire::{Job, ListPage, RowsPage};
pub use self::wire::{label_value, labels};
use sluice_warehouse::{
    Access, DatasetInfo, DryRun, QueryOutcome, QueryRequest, QueryStatus, RowPage, TableInfo,
    TableRef, Warehouse, WarehouseError, WarehouseErrorKind, known_reason, reason_status,
};

/// Where the upstream is and how patient to be with it.
#[derive(Debug, Clone)]
pub struct BigQueryConfig {
    /// `https://bigquery.googleapis.com`, or a BigQuery-compatible endpoint.
    pub endpoint: String,
    /// The location jobs run in (`US`, `EU`, …); none lets BigQuery choose.
    pub location: Option<String>,
    /// Each HTTP call's limit; a held `getQueryResults` call takes at most
    /// [`MAX_HOLD`] of it.
    pub timeout: Duration,
    /// Retries of transient failures, all within `backoff.deadline`.
    pub backoff: Backoff,
    /// The upstream lists a finished query's `referencedTables`, as real
    /// BigQuery does. Then an insert answered DONE stands for `jobs.get`
    /// only if it lists them too; otherwise `jobs.get` is asked.
    pub lists_referenced_tables: bool,
}

/// The longest BigQuery is asked to hold a `getQueryResults` call.
pub const MAX_HOLD: Duration = Duration::from_secs(10);

/// Upstream list calls are followed for at most this many pages.
const MAX_LIST_PAGES: usize = 100;

/// How long the gateway remembers where an upstream job runs; BigQuery
/// keeps query results for a day, so nothing is lost by forgetting then.
const JOB_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// The rows the call that saw a job finish asks for with it, so that the
/// first page needs no call of its own.
const FIRST_PAGE_ROWS: usize = 1000;

/// A first page is kept only up to this size …
const FIRST_PAGE_MAX_BYTES: usize = 1 << 20;

/// … and for at most this many jobs at once (oldest dropped first).
const FIRST_PAGES: usize = 64;

/// The first rows of a finished job, fetched with the call that saw it
/// finish, until a page request takes them.
#[derive(Debug)]
struct FirstPage {
    rows: Vec<Box<serde_json::value::RawValue>>,
    total_rows: u64,
}

/// An upstream job: where it runs.
#[derive(Debug, Clone)]
struct UpstreamJob {
    project: String,
    job_id: String,
    location: Option<String>,
    started: std::time::Instant,
    /// How BigQuery answered the insert.
    at_insert: AtInsert,
}

/// The job as BigQuery answered its insert.
#[derive(Debug, Clone, Default)]
enum AtInsert {
    /// Not done yet: its resource is asked for once it is.
    #[default]
    Running,
    /// Done (a short query, a cached result), but the answer carried no
    /// query statistics: its resource is asked for with its first page,
    /// not after.
    Done,
    /// Done, with the query's statistics: the insert's answer is its
    /// resource, and no `jobs.get` is made.
    Finished(Arc<Job>),
}

impl AtInsert {
    /// `tables_listed`: the upstream lists a finished query's tables, so
    /// an answer without them is not taken as final.
    fn of(inserted: Job, tables_listed: bool) -> Self {
        let complete = inserted.has_query_statistics()
            && (!tables_listed || inserted.lists_referenced_tables());
        match inserted.status.state.as_str() {
            "DONE" if complete => Self::Finished(Arc::new(inserted)),
            "DONE" => Self::Done,
            _ => Self::Running,
        }
    }
}

/// BigQuery behind the [`Warehouse`] trait.
#[derive(Debug)]
pub struct BigQueryWarehouse {
    client: Client,
    config: BigQueryConfig,
    jobs: Mutex<HashMap<String, UpstreamJob>>,
    /// First pages by job key, in the order they arrived.
    first_pages: Mutex<std::collections::VecDeque<(String, FirstPage)>>,
}

impl BigQueryWarehouse {
    pub fn new(config: BigQueryConfig) -> Result<Self, WarehouseError> {
        let client = Client::new(
            &config.endpoint,
            config.timeout.max(MAX_HOLD + Duration::from_secs(5)),
            config.backoff,
        )?;
        Ok(Self {
            client,
            config,
            jobs: Mutex::new(HashMap::new()),
            first_pages: Mutex::default(),
        })
    }

    /// The upstream job id for a gateway job key.
    pub fn upstream_job_id(job_key: &str) -> String {
        format!("sluice_{job_key}")
    }

    fn job(&self, job_key: &str) -> Result<UpstreamJob, WarehouseError> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(job_key)
            .cloned()
            .ok_or_else(|| WarehouseError::not_found(format!("Not found: Job {job_key}")))
    }

    /// Keeps a finished job's first rows for its first page request.
    fn keep_first_page(&self, job_key: &str, page: FirstPage) {
        let size: usize = page.rows.iter().map(|r| r.get().len() + 1).sum();
        if size > FIRST_PAGE_MAX_BYTES {
            return;
        }
        let mut pages = self.first_pages.lock().unwrap_or_else(|e| e.into_inner());
        pages.retain(|(key, _)| key != job_key);
        if pages.len() >= FIRST_PAGES {
            pages.pop_front();
        }
        pages.push_back((job_key.to_owned(), page));
    }

    /// The page `0..max_rows` from a kept first page, when it holds all of
    /// it; the kept rows are handed out once.
    fn take_first_page(&self, job_key: &str, max_rows: usize) -> Option<FirstPage> {
        let mut pages = self.first_pages.lock().unwrap_or_else(|e| e.into_inner());
        let at = pages.iter().position(|(key, _)| key == job_key)?;
        let (_, page) = &pages[at];
        let wanted = (max_rows as u64).min(page.total_rows);
        if (page.rows.len() as u64) < wanted {
            return None;
        }
        pages.remove(at).map(|(_, page)| page)
    }

    fn location_query(&self, job: &UpstreamJob) -> Vec<(&'static str, String)> {
        job.location
            .iter()
            .map(|l| ("location", l.clone()))
            .collect()
    }

    /// Follows `nextPageToken` through a list call.
    async fn list_all(
        &self,
        access: &Access,
        path: &str,
        pick: fn(ListPage) -> (Vec<Value>, Option<String>),
    ) -> Result<Vec<Value>, WarehouseError> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut query = vec![("maxResults", "1000".to_string())];
            if let Some(token) = &token {
                query.push(("pageToken", token.clone()));
            }
            let page: ListPage = self.client.get(access, path, &query).await?;
            let (mut entries, next) = pick(page);
            items.append(&mut entries);
            match next {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(items),
            }
        }
        Ok(items)
    }

    fn location(&self) -> &str {
        self.config.location.as_deref().unwrap_or("US")
    }

    /// The job's outcome once BigQuery reports it done.
    async fn outcome(
        &self,
        access: &Access,
        job: &UpstreamJob,
        total_rows: u64,
        schema: Option<sluice_warehouse::TableSchema>,
    ) -> Result<QueryStatus, WarehouseError> {
        outcome_of(&self.resource(access, job).await?, total_rows, schema)
    }

    /// The job's resource (`jobs.get`).
    async fn resource(&self, access: &Access, job: &UpstreamJob) -> Result<Job, WarehouseError> {
        let path = format!("/projects/{}/jobs/{}", job.project, job.job_id);
        self.client
            .get(access, &path, &self.location_query(job))
            .await
    }
}

/// A finished job's outcome from its resource: its error, or its
/// statistics with `total_rows` and `schema` (the resource's when `None`).
fn outcome_of(
    resource: &Job,
    total_rows: u64,
    schema: Option<sluice_warehouse::TableSchema>,
) -> Result<QueryStatus, WarehouseError> {
    if let Some(error) = &resource.status.error_result {
        return Ok(QueryStatus::Failed(job_error(error)));
    }
    Ok(QueryStatus::Done(QueryOutcome {
        schema: match schema {
            Some(schema) => schema,
            None => resource.schema()?,
        },
        total_rows,
        total_bytes_processed: resource.total_bytes_processed(),
        referenced_tables: resource.referenced_tables()?,
        referenced_routines: resource.referenced_routines()?,
        statement_type: resource.statement_type(),
    }))
}

/// A job's `errorResult` as a warehouse error keeping its reason.
fn job_error(error: &wire::ErrorProto) -> WarehouseError {
    // A reason this gateway does not know ends the job as one no client
    // retries.
    let reason = known_reason(&error.reason).unwrap_or("invalid");
    WarehouseError::new(
        WarehouseErrorKind::Upstream {
            reason,
            status: reason_status(reason),
        },
        error.message.clone(),
    )
}

fn segment(name: &str) -> Result<&str, WarehouseError> {
    // Names go into URL paths: anything that could change the path is
    // refused rather than escaped.
    let ok = !name.is_empty()
        && !name.chars().all(|c| c == '.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '$' | '@' | '*'));
    if ok {
        Ok(name)
    } else {
        Err(WarehouseError::invalid(format!("Invalid name: {name:?}")))
    }
}

/// `/projects/P/datasets/D/tables/T`, each name checked.
fn table_path(table: &TableRef) -> Result<String, WarehouseError> {
    Ok(format!(
        "/projects/{}/datasets/{}/tables/{}",
        segment(&table.project_id)?,
        segment(&table.dataset_id)?,
        segment(&table.table_id)?
    ))
}

#[async_trait]
impl Warehouse for BigQueryWarehouse {
    async fn projects(&self, access: &Access) -> Result<Vec<String>, WarehouseError> {
        let entries = self
            .list_all(access, "/projects", |p| (p.projects, p.next_page_token))
            .await?;
        Ok(entries.iter().filter_map(wire::project_id).collect())
    }

    async fn list_datasets(
        &self,
        access: &Access,
        project: &str,
    ) -> Result<Vec<DatasetInfo>, WarehouseError> {
        let path = format!("/projects/{}/datasets", segment(project)?);
        let entries = self
            .list_all(access, &path, |p| (p.datasets, p.next_page_token))
            .await?;
        Ok(entries
            .iter()
            .filter_map(|e| wire::dataset(e, self.location()))
            .collect())
    }

    async fn get_dataset(
        &self,
        access: &Access,
        project: &str,
        dataset: &str,
    ) -> Result<DatasetInfo, WarehouseError> {
        let path = format!(
            "/projects/{}/datasets/{}",
            segment(project)?,
            segment(dataset)?
        );
        let entry: Value = self.client.get(access, &path, &[]).await?;
        wire::dataset(&entry, self.location()).ok_or_else(|| {
            WarehouseError::internal("BigQuery sent a dataset without datasetReference")
        })
    }

    async fn list_tables(
        &self,
        access: &Access,
        project: &str,
        dataset: &str,
    ) -> Result<Vec<TableInfo>, WarehouseError> {
        let path = format!(
            "/projects/{}/datasets/{}/tables",
            segment(project)?,
            segment(dataset)?
        );
        let entries = self
            .list_all(access, &path, |p| (p.tables, p.next_page_token))
            .await?;
        entries
            .iter()
            .map(|e| wire::table(e, self.location()))
            .collect()
    }

    async fn get_table(
        &self,
        access: &Access,
        table: &TableRef,
    ) -> Result<TableInfo, WarehouseError> {
        let path = table_path(table)?;
        let entry: Value = self.client.get(access, &path, &[]).await?;
        wire::table(&entry, self.location())
    }

    async fn ready(&self) -> Result<(), WarehouseError> {
        self.client.reachable().await
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
        let path = format!("{}/data", table_path(table)?);
        let mut query = vec![
            ("startIndex", start.to_string()),
            ("maxResults", max_rows.to_string()),
            ("formatOptions.useInt64Timestamp", "true".to_string()),
        ];
        if let Some(fields) = selected_fields {
            query.push(("selectedFields", fields.join(",")));
        }
        let page: RowsPage = self.client.get(access, &path, &query).await?;
        Ok(RowPage {
            total_rows: page.total_rows(),
            rows: sluice_warehouse::rows_within(page.rows, max_bytes),
        })
    }

    async fn dry_run(
        &self,
        access: &Access,
        query: &QueryRequest,
    ) -> Result<DryRun, WarehouseError> {
        let project = segment(&query.default_project)?;
        let job_id = Self::upstream_job_id(&uuid::Uuid::new_v4().simple().to_string());
        let body = wire::job_insert(
            project,
            &job_id,
            self.config.location.as_deref(),
            query,
            true,
        );
        let job: Job = self
            .client
            .post(access, &format!("/projects/{project}/jobs"), &[], &body)
            .await?;
        if let Some(error) = &job.status.error_result {
            return Err(job_error(error));
        }
        Ok(DryRun {
            schema: job.schema()?,
            total_bytes_processed: job.total_bytes_processed(),
            referenced_tables: job.referenced_tables()?,
            referenced_routines: job.referenced_routines()?,
            statement_type: job.statement_type(),
        })
    }

    async fn start_query(
        &self,
        access: &Access,
        job_key: &str,
        query: &QueryRequest,
    ) -> Result<(), WarehouseError> {
        let job = UpstreamJob {
            project: segment(&query.default_project)?.to_string(),
            job_id: Self::upstream_job_id(segment(job_key)?),
            location: self.config.location.clone(),
            started: std::time::Instant::now(),
            at_insert: AtInsert::Running,
        };
        let body = wire::job_insert(
            &job.project,
            &job.job_id,
            job.location.as_deref(),
            query,
            false,
        );
        let inserted: Job = self
            .client
            .post(
                access,
                &format!("/projects/{}/jobs", job.project),
                &[],
                &body,
            )
            .await?;
        if let Some(error) = &inserted.status.error_result {
            return Err(job_error(error));
        }
        let job = UpstreamJob {
            at_insert: AtInsert::of(inserted, self.config.lists_referenced_tables),
            ..job
        };
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.retain(|_, j| j.started.elapsed() < JOB_MEMORY);
        jobs.insert(job_key.to_string(), job);
        Ok(())
    }

    async fn wait_query(
        &self,
        access: &Access,
        job_key: &str,
        timeout: Duration,
    ) -> Result<QueryStatus, WarehouseError> {
        let job = self.job(job_key)?;
        let path = format!("/projects/{}/queries/{}", job.project, job.job_id);
        let mut query = self.location_query(&job);
        // Once the job is done the same call brings its first rows, so the
        // first page costs no call of its own.
        query.push(("maxResults", FIRST_PAGE_ROWS.to_string()));
        query.push(("formatOptions.useInt64Timestamp", "true".into()));
        query.push(("timeoutMs", timeout.min(MAX_HOLD).as_millis().to_string()));
        // A job BigQuery finished at its insert has its resource
        // (statistics, referenced tables) from the insert's answer, or
        // else asks for it with its first page, at once.
        let (page, resource) = match &job.at_insert {
            AtInsert::Finished(resource) => (
                self.client.get::<RowsPage>(access, &path, &query).await,
                Some(Ok(Arc::clone(resource))),
            ),
            AtInsert::Done => {
                let (page, resource) = tokio::join!(
                    self.client.get::<RowsPage>(access, &path, &query),
                    self.resource(access, &job)
                );
                (page, Some(resource.map(Arc::new)))
            }
            AtInsert::Running => (
                self.client.get::<RowsPage>(access, &path, &query).await,
                None,
            ),
        };
        let page: RowsPage = match page {
            Ok(page) => page,
            // A failed job answers getQueryResults with its error; the
            // job resource says which.
            Err(err) if matches!(err.kind, WarehouseErrorKind::Upstream { status, .. } if status != 404 && status != 403) =>
            {
                let status = match resource {
                    Some(resource) => outcome_of(&*resource?, 0, None),
                    None => self.outcome(access, &job, 0, None).await,
                };
                return status.map(|status| match status {
                    QueryStatus::Done(_) => QueryStatus::Failed(err),
                    other => other,
                });
            }
            // BigQuery has no such job (it was never started, or it has
            // expired): for the gateway, the execution is gone.
            Err(err) if matches!(err.kind, WarehouseErrorKind::Upstream { status: 404, .. }) => {
                return Err(WarehouseError::not_found(err.message));
            }
            Err(err) => return Err(err),
        };
        if page.job_complete != Some(true) {
            return Ok(QueryStatus::Running);
        }
        let total = page.total_rows();
        let status = match resource {
            Some(resource) => outcome_of(&*resource?, total, page.schema)?,
            None => self.outcome(access, &job, total, page.schema).await?,
        };
        if matches!(status, QueryStatus::Done(_)) {
            self.keep_first_page(
                job_key,
                FirstPage {
                    rows: page.rows,
                    total_rows: total,
                },
            );
        }
        Ok(status)
    }

    async fn result_page(
        &self,
        access: &Access,
        job_key: &str,
        start: u64,
        max_rows: usize,
        max_bytes: usize,
    ) -> Result<RowPage, WarehouseError> {
        if start == 0
            && let Some(page) = self.take_first_page(job_key, max_rows)
        {
            let mut rows = page.rows;
            rows.truncate(max_rows);
            return Ok(RowPage {
                total_rows: page.total_rows,
                rows: sluice_warehouse::rows_within(rows, max_bytes),
            });
        }
        let job = self.job(job_key)?;
        let path = format!("/projects/{}/queries/{}", job.project, job.job_id);
        let mut query = self.location_query(&job);
        query.push(("startIndex", start.to_string()));
        query.push(("maxResults", max_rows.to_string()));
        query.push(("formatOptions.useInt64Timestamp", "true".into()));
        let page: RowsPage = self.client.get(access, &path, &query).await?;
        Ok(RowPage {
            total_rows: page.total_rows(),
            rows: page.rows,
        })
    }

    /// After a restart the job map is empty, but the job's upstream id is
    /// derived from its key and it runs in the configured location: the
    /// gateway's record is enough to find it again.
    fn resume(&self, job_key: &str, project: &str) {
        let (Ok(key), Ok(project)) = (segment(job_key), segment(project)) else {
            return;
        };
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.entry(job_key.to_string())
            .or_insert_with(|| UpstreamJob {
                project: project.to_string(),
                job_id: Self::upstream_job_id(key),
                location: self.config.location.clone(),
                started: std::time::Instant::now(),
                at_insert: AtInsert::Running,
            });
    }

    async fn cancel_query(&self, access: &Access, job_key: &str) -> Result<(), WarehouseError> {
        let job = self.job(job_key)?;
        let path = format!("/projects/{}/jobs/{}/cancel", job.project, job.job_id);
        let _: Value = self
            .client
            .post(access, &path, &self.location_query(&job), &Value::Null)
            .await?;
        Ok(())
    }
}
