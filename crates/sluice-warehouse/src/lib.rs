//! The warehouses Sluice runs queries on.
//!
//! A [`Warehouse`] is anything that can answer BigQuery's questions: list
//! datasets and tables, dry-run a query, run it as a job and hand back its
//! result in pages. The gateway speaks only to this trait, so the embedded
//! DataFusion warehouse (the demo and the tests) and the BigQuery REST
//! upstream are interchangeable.
//!
//! Everything crossing the trait is in BigQuery's own vocabulary: schemas
//! are [`TableSchema`]s with BigQuery type names, rows are BigQuery's
//! `{"f":[{"v":…}]}` JSON with every scalar a string.

mod access;
pub mod bigquery;
mod error;
mod types;
mod warehouse;

#[cfg(feature = "embedded")]
pub mod demo;
#[cfg(feature = "embedded")]
pub mod embedded;

pub use access::Access;
pub use error::{WarehouseError, WarehouseErrorKind};
pub use types::{
    DatasetInfo, Field, FieldMode, FieldType, ParameterMode, ParameterType, ParameterValue,
    QueryParameter, QueryRequest, RoutineRef, RowPage, StructParameterType, TableInfo, TableRef,
    TableSchema,
};
pub use warehouse::{DryRun, QueryOutcome, QueryStatus, Warehouse};
