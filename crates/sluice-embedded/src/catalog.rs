//! The embedded warehouse's catalog: a data folder laid out as
//! `<project>/<dataset>/<table>.{parquet,csv,json,jsonl,ndjson}`, registered
//! with DataFusion as catalog `project`, schema `dataset`, table `table`.
//!
//! A `<table>.schema.json` beside a CSV or JSON file gives the exact
//! BigQuery schema (a list of fields, or `{"fields": [...]}`), so types like
//! NUMERIC, DATE and TIMESTAMP are what the data owner meant rather than
//! what inference guessed. Each dataset also gets its own
//! `INFORMATION_SCHEMA.TABLES` and `INFORMATION_SCHEMA.COLUMNS`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Schema};
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider};
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext};
use futures::StreamExt;

use super::arrow_types::{arrow_schema, bigquery_schema, column_bytes};
use sluice_warehouse::{DatasetInfo, FieldMode, TableInfo, TableRef, TableSchema, WarehouseError};

/// The two views every dataset carries.
pub const INFORMATION_SCHEMA_TABLES: &str = "INFORMATION_SCHEMA.TABLES";
pub const INFORMATION_SCHEMA_COLUMNS: &str = "INFORMATION_SCHEMA.COLUMNS";

/// One loaded table and what it costs to read each of its columns.
#[derive(Debug, Clone)]
pub struct CatalogTable {
    pub info: TableInfo,
    /// Bytes BigQuery would bill for each top-level column, in schema order.
    pub column_bytes: Vec<u64>,
}

/// Every project, dataset and table of the data folder.
#[derive(Debug, Default)]
pub struct Catalog {
    /// project → dataset → table.
    projects: BTreeMap<String, BTreeMap<String, Dataset>>,
}

#[derive(Debug)]
struct Dataset {
    info: DatasetInfo,
    tables: BTreeMap<String, CatalogTable>,
}

impl Catalog {
    pub fn projects(&self) -> impl Iterator<Item = &str> {
        self.projects.keys().map(String::as_str)
    }

    pub fn datasets(&self, project: &str) -> Result<Vec<DatasetInfo>, WarehouseError> {
        let datasets = self.project(project)?;
        Ok(datasets.values().map(|d| d.info.clone()).collect())
    }

    pub fn dataset(&self, project: &str, dataset: &str) -> Result<&DatasetInfo, WarehouseError> {
        self.dataset_entry(project, dataset).map(|d| &d.info)
    }

    pub fn tables(&self, project: &str, dataset: &str) -> Result<Vec<TableInfo>, WarehouseError> {
        let dataset = self.dataset_entry(project, dataset)?;
        Ok(dataset.tables.values().map(|t| t.info.clone()).collect())
    }

    pub fn table(&self, table: &TableRef) -> Result<&CatalogTable, WarehouseError> {
        let dataset = self.dataset_entry(&table.project_id, &table.dataset_id)?;
        dataset.tables.get(&table.table_id).ok_or_else(|| {
            WarehouseError::not_found(format!(
                "Not found: Table {}:{}.{} was not found in location {}",
                table.project_id, table.dataset_id, table.table_id, dataset.info.location
            ))
        })
    }

    /// Whether `table` names one of a dataset's `INFORMATION_SCHEMA` views.
    pub fn is_information_schema(table: &TableRef) -> bool {
        table.table_id == INFORMATION_SCHEMA_TABLES || table.table_id == INFORMATION_SCHEMA_COLUMNS
    }

    fn project(&self, project: &str) -> Result<&BTreeMap<String, Dataset>, WarehouseError> {
        self.projects
            .get(project)
            .ok_or_else(|| WarehouseError::not_found(format!("Not found: Project {project}")))
    }

    fn dataset_entry(&self, project: &str, dataset: &str) -> Result<&Dataset, WarehouseError> {
        self.project(project)?.get(dataset).ok_or_else(|| {
            WarehouseError::not_found(format!(
                "Not found: Dataset {project}:{dataset} was not found in location US"
            ))
        })
    }
}

/// Names that may become projects, datasets and tables: BigQuery's own
/// rules, loosely (letters, digits, `_` and, for projects, `-`).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 1024
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn io_error(path: &Path, err: impl std::fmt::Display) -> WarehouseError {
    WarehouseError::internal(format!("cannot read {}: {err}", path.display()))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, WarehouseError> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        entries.push(entry.map_err(|e| io_error(dir, e))?.path());
    }
    entries.sort();
    Ok(entries)
}

fn file_time_ms(path: &Path) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Reads the data folder, registers every table with `ctx`, and measures
/// each table once (row count, bytes per column) for metadata and dry runs.
pub async fn load(
    ctx: &SessionContext,
    root: &Path,
    location: &str,
) -> Result<Catalog, WarehouseError> {
    let mut catalog = Catalog::default();
    if !root.exists() {
        return Ok(catalog);
    }
    for project_dir in sorted_entries(root)? {
        let Some(project) = dir_name(&project_dir) else {
            continue;
        };
        let df_catalog = Arc::new(MemoryCatalogProvider::new());
        ctx.register_catalog(&project, df_catalog.clone());
        let mut datasets = BTreeMap::new();
        for dataset_dir in sorted_entries(&project_dir)? {
            let Some(dataset) = dir_name(&dataset_dir) else {
                continue;
            };
            df_catalog
                .register_schema(&dataset, Arc::new(MemorySchemaProvider::new()))
                .map_err(|e| io_error(&dataset_dir, e))?;
            let mut tables = BTreeMap::new();
            for file in sorted_entries(&dataset_dir)? {
                if let Some(table) = load_table(ctx, &project, &dataset, &file, location).await? {
                    tables.insert(table.info.reference.table_id.clone(), table);
                }
            }
            let info = DatasetInfo {
                project_id: project.clone(),
                dataset_id: dataset.clone(),
                location: location.to_string(),
                description: None,
                creation_time_ms: file_time_ms(&dataset_dir),
            };
            register_information_schema(ctx, &info, &tables)?;
            datasets.insert(dataset, Dataset { info, tables });
        }
        catalog.projects.insert(project, datasets);
    }
    Ok(catalog)
}

fn dir_name(path: &Path) -> Option<String> {
    if !path.is_dir() {
        return None;
    }
    let name = path.file_name()?.to_str()?;
    (valid_name(name) && !name.starts_with('.')).then(|| name.to_string())
}

#[derive(Clone, Copy)]
enum Format {
    Parquet,
    Csv,
    Json,
}

async fn load_table(
    ctx: &SessionContext,
    project: &str,
    dataset: &str,
    file: &Path,
    location: &str,
) -> Result<Option<CatalogTable>, WarehouseError> {
    let Some(file_name) = file.file_name().and_then(|n| n.to_str()) else {
        return Ok(None);
    };
    if file_name.starts_with('.') || file_name.ends_with(".schema.json") || !file.is_file() {
        return Ok(None);
    }
    let Some((table, extension)) = file_name.rsplit_once('.') else {
        return Ok(None);
    };
    let format = match extension {
        "parquet" => Format::Parquet,
        "csv" => Format::Csv,
        "json" | "jsonl" | "ndjson" => Format::Json,
        _ => return Ok(None),
    };
    if !valid_name(table) {
        tracing::warn!(file = %file.display(), "skipping a file whose name is not a valid table name");
        return Ok(None);
    }
    let declared = read_schema_file(&file.with_file_name(format!("{table}.schema.json")))?;
    let declared_arrow = declared.as_ref().map(arrow_schema).transpose()?;
    let reference = TableReference::full(project, dataset, table);
    let path = file
        .to_str()
        .ok_or_else(|| io_error(file, "path is not UTF-8"))?;
    let dot_extension = format!(".{extension}");
    let registered = match format {
        Format::Parquet => {
            let options = ParquetReadOptions {
                file_extension: &dot_extension,
                ..Default::default()
            };
            ctx.register_parquet(reference.clone(), path, options).await
        }
        Format::Csv => {
            let mut options = CsvReadOptions::new()
                .has_header(true)
                .file_extension(&dot_extension);
            options.schema = declared_arrow.as_deref();
            ctx.register_csv(reference.clone(), path, options).await
        }
        Format::Json => {
            let mut options = JsonReadOptions::default().file_extension(&dot_extension);
            options.schema = declared_arrow.as_deref();
            ctx.register_json(reference.clone(), path, options).await
        }
    };
    registered.map_err(|e| io_error(file, e))?;

    let (num_rows, column_bytes, arrow) = measure(ctx, reference)
        .await
        .map_err(|e| io_error(file, e))?;
    let schema = match declared {
        Some(schema) => schema,
        None => bigquery_schema(&arrow)?,
    };
    let num_bytes = column_bytes.iter().sum();
    Ok(Some(CatalogTable {
        info: TableInfo {
            reference: TableRef::new(project, dataset, table),
            schema,
            num_rows,
            num_bytes,
            table_type: "TABLE".into(),
            location: location.to_string(),
            creation_time_ms: file_time_ms(file),
        },
        column_bytes,
    }))
}

fn read_schema_file(path: &Path) -> Result<Option<TableSchema>, WarehouseError> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum SchemaFile {
        Fields(Vec<sluice_warehouse::Field>),
        Schema(TableSchema),
    }
    let schema = match serde_json::from_str::<SchemaFile>(&text).map_err(|e| io_error(path, e))? {
        SchemaFile::Fields(fields) => TableSchema { fields },
        SchemaFile::Schema(schema) => schema,
    };
    Ok(Some(schema))
}

/// Scans a table once: its rows and the bytes of each column.
async fn measure(
    ctx: &SessionContext,
    reference: TableReference,
) -> datafusion::error::Result<(u64, Vec<u64>, Schema)> {
    let frame = ctx.table(reference).await?;
    let schema = frame.schema().as_arrow().clone();
    let mut stream = frame.execute_stream().await?;
    let mut rows = 0u64;
    let mut bytes = vec![0u64; schema.fields().len()];
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        for (total, column) in bytes.iter_mut().zip(batch.columns()) {
            *total += column_bytes(column.as_ref());
        }
    }
    Ok((rows, bytes, schema))
}

fn register_information_schema(
    ctx: &SessionContext,
    dataset: &DatasetInfo,
    tables: &BTreeMap<String, CatalogTable>,
) -> Result<(), WarehouseError> {
    let string = |name: &str| ArrowField::new(name, DataType::Utf8, true);
    let tables_schema = Arc::new(Schema::new(vec![
        string("table_catalog"),
        string("table_schema"),
        string("table_name"),
        string("table_type"),
        string("is_insertable_into"),
        string("ddl"),
    ]));
    let mut columns = [(); 6].map(|_| StringBuilder::new());
    for table in tables.values() {
        let info = &table.info;
        let values = [
            dataset.project_id.as_str(),
            dataset.dataset_id.as_str(),
            info.reference.table_id.as_str(),
            "BASE TABLE",
            "NO",
        ];
        for (builder, value) in columns.iter_mut().zip(values) {
            builder.append_value(value);
        }
        columns[5].append_value(create_table_ddl(info));
    }
    let arrays: Vec<ArrayRef> = columns
        .iter_mut()
        .map(|b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    register_view(
        ctx,
        dataset,
        INFORMATION_SCHEMA_TABLES,
        tables_schema,
        arrays,
    )?;

    let columns_schema = Arc::new(Schema::new(vec![
        string("table_catalog"),
        string("table_schema"),
        string("table_name"),
        string("column_name"),
        ArrowField::new("ordinal_position", DataType::Int64, false),
        string("is_nullable"),
        string("data_type"),
        string("is_partitioning_column"),
    ]));
    let mut text = [(); 7].map(|_| StringBuilder::new());
    let mut ordinal = Int64Builder::new();
    for table in tables.values() {
        for (position, field) in table.info.schema.fields.iter().enumerate() {
            let nullable = if field.mode == FieldMode::Required {
                "NO"
            } else {
                "YES"
            };
            let data_type = field.sql_type();
            let values = [
                dataset.project_id.as_str(),
                dataset.dataset_id.as_str(),
                table.info.reference.table_id.as_str(),
                field.name.as_str(),
                nullable,
                data_type.as_str(),
                "NO",
            ];
            for (builder, value) in text.iter_mut().zip(values) {
                builder.append_value(value);
            }
            ordinal.append_value(position as i64 + 1);
        }
    }
    let mut arrays: Vec<ArrayRef> = text
        .iter_mut()
        .map(|b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    arrays.insert(4, Arc::new(ordinal.finish()));
    register_view(
        ctx,
        dataset,
        INFORMATION_SCHEMA_COLUMNS,
        columns_schema,
        arrays,
    )
}

fn create_table_ddl(info: &TableInfo) -> String {
    let columns: Vec<String> = info
        .schema
        .fields
        .iter()
        .map(|f| {
            let not_null = if f.mode == FieldMode::Required {
                " NOT NULL"
            } else {
                ""
            };
            format!("  {} {}{}", f.name, f.sql_type(), not_null)
        })
        .collect();
    format!(
        "CREATE TABLE `{}`\n(\n{}\n);",
        info.reference,
        columns.join(",\n")
    )
}

fn register_view(
    ctx: &SessionContext,
    dataset: &DatasetInfo,
    name: &str,
    schema: Arc<Schema>,
    arrays: Vec<ArrayRef>,
) -> Result<(), WarehouseError> {
    let internal = |e: datafusion::error::DataFusionError| {
        WarehouseError::internal(format!("cannot build {name}: {e}"))
    };
    let batch = RecordBatch::try_new(schema.clone(), arrays)
        .map_err(|e| WarehouseError::internal(format!("cannot build {name}: {e}")))?;
    let table = MemTable::try_new(schema, vec![vec![batch]]).map_err(internal)?;
    ctx.register_table(
        TableReference::full(
            dataset.project_id.as_str(),
            dataset.dataset_id.as_str(),
            name,
        ),
        Arc::new(table),
    )
    .map_err(internal)?;
    Ok(())
}
