//! What a warehouse is to Sluice: the [`Warehouse`] trait, the types that
//! cross it, its errors and BigQuery's error reasons.
//!
//! A [`Warehouse`] is anything that can answer BigQuery's questions: list
//! datasets and tables, dry-run a query, run it as a job and hand back its
//! result in pages. The gateway speaks only to this trait, so the embedded
//! DataFusion warehouse (`sluice-embedded`: the demo and the tests) and the
//! BigQuery REST upstream (`sluice-bigquery`) are interchangeable. This
//! crate holds no engine.
//!
//! Everything crossing the trait is in BigQuery's own vocabulary: schemas
//! are [`TableSchema`]s with BigQuery type names, rows are BigQuery's
//! `{"f":[{"v":…}]}` JSON with every scalar a string.

mod access;
mod error;
mod reason;
mod types;
mod warehouse;

pub use access::Access;
pub use error::{WarehouseError, WarehouseErrorKind};
pub use reason::{known_reason, reason_status};
pub use types::{
    DatasetInfo, Field, FieldMode, FieldType, ParameterMode, ParameterType, ParameterValue,
    PolicyTags, QueryParameter, QueryRequest, RoutineRef, RowPage, StructParameterType, TableInfo,
    TableRef, TableSchema,
};
pub use warehouse::{DryRun, QueryOutcome, QueryStatus, Warehouse};

/// The leading rows of `rows` within about `max_bytes` of row JSON: the
/// page stops before a row that would pass it, but keeps at least one.
/// Every warehouse cuts its pages with this.
pub fn rows_within(
    mut rows: Vec<Box<serde_json::value::RawValue>>,
    max_bytes: usize,
) -> Vec<Box<serde_json::value::RawValue>> {
    let mut bytes = 0usize;
    let keep = rows
        .iter()
        .position(|row| {
            bytes = bytes.saturating_add(row.get().len() + 1);
            bytes > max_bytes
        })
        .map_or(rows.len(), |over| over.max(1));
    rows.truncate(keep);
    rows
}

#[cfg(test)]
mod page_tests {
    use super::rows_within;

    fn rows(n: usize) -> Vec<Box<serde_json::value::RawValue>> {
        (0..n)
            .map(|i| {
                serde_json::value::RawValue::from_string(format!(r#"{{"f":[{{"v":"{i}"}}]}}"#))
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn a_page_stops_before_the_byte_cap_but_holds_one_row() {
        let one = rows(1)[0].get().len() + 1;
        assert_eq!(rows_within(rows(10), one * 3).len(), 3);
        assert_eq!(rows_within(rows(10), one * 3 - 1).len(), 2);
        assert_eq!(rows_within(rows(10), 0).len(), 1);
        assert_eq!(rows_within(rows(10), usize::MAX).len(), 10);
        assert!(rows_within(rows(0), 0).is_empty());
    }
}
