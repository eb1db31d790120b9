use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Schema};
use serde_json::Value;

use super::*;
use sluice_warehouse::{Field, FieldMode, FieldType, TableRef, TableSchema, WarehouseErrorKind};

/// Rows `first..first+n`: an id and a name whose length varies with it.
fn rows(first: i64, n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        ArrowField::new("id", DataType::Int64, false),
        ArrowField::new("name", DataType::Utf8, true),
    ]));
    let ids = Int64Array::from_iter_values(first..first + n);
    let names =
        StringArray::from_iter_values((first..first + n).map(|i| "x".repeat((i % 7) as usize)));
    RecordBatch::try_new(schema, vec![Arc::new(ids) as ArrayRef, Arc::new(names)]).unwrap()
}

fn outcome() -> QueryOutcome {
    QueryOutcome {
        schema: TableSchema {
            fields: vec![
                Field::new("id", FieldType::Int64, FieldMode::Required),
                Field::new("name", FieldType::String, FieldMode::Nullable),
            ],
        },
        // Deliberately wrong: the writer records what it wrote.
        total_rows: 0,
        total_bytes_processed: 1234,
        referenced_tables: vec![TableRef::new("p", "d", "t")],
        referenced_routines: Vec::new(),
        statement_type: "SELECT".into(),
    }
}

/// A finished result of `total` rows, written in uneven batches so index
/// entries fall in the middle of batches.
fn finished(dir: &Path, key: &str, total: i64) {
    let mut writer = ResultWriter::create(dir, key).unwrap();
    let mut first = 0;
    for size in [700, 1500, 1, 2799].iter().cycle() {
        if first >= total {
            break;
        }
        let n = (*size).min(total - first);
        writer.write_batch(&rows(first, n)).unwrap();
        first += n;
    }
    assert_eq!(writer.rows_written(), total as u64);
    writer.finish(&outcome()).unwrap();
}

fn ids(page: &RowPage) -> Vec<i64> {
    page.rows
        .iter()
        .map(|row| {
            let row: Value = serde_json::from_str(row.get()).unwrap();
            row["f"][0]["v"].as_str().unwrap().parse().unwrap()
        })
        .collect()
}

#[test]
fn pages_over_several_index_blocks() {
    let dir = tempfile::tempdir().unwrap();
    finished(dir.path(), "job_1", 5000);
    // Five index entries: rows 0, 1024, 2048, 3072, 4096.
    assert_eq!(
        fs::metadata(dir.path().join("job_1.idx")).unwrap().len(),
        40
    );

    let page =
        |start, max_rows| read_page(dir.path(), "job_1", start, max_rows, usize::MAX).unwrap();
    let first = page(0, 10);
    assert_eq!(first.total_rows, 5000);
    assert_eq!(ids(&first), (0..10).collect::<Vec<_>>());
    assert_eq!(first.rows[3].get(), r#"{"f":[{"v":"3"},{"v":"xxx"}]}"#);
    // Mid-block, across a block boundary, and the tail.
    assert_eq!(ids(&page(1500, 100)), (1500..1600).collect::<Vec<_>>());
    assert_eq!(ids(&page(1020, 10)), (1020..1030).collect::<Vec<_>>());
    assert_eq!(ids(&page(4096, 1)), vec![4096]);
    assert_eq!(ids(&page(4990, 100)), (4990..5000).collect::<Vec<_>>());
    // Past the end: empty, but the total is still reported.
    for start in [5000, 5001, u64::MAX] {
        let past = page(start, 10);
        assert!(past.rows.is_empty());
        assert_eq!(past.total_rows, 5000);
    }
    assert!(page(0, 0).rows.is_empty());

    // Paging through the whole result sees every row once, in order.
    let mut seen = Vec::new();
    let mut start = 0;
    loop {
        let next = page(start, 777);
        if next.rows.is_empty() {
            break;
        }
        start += next.rows.len() as u64;
        seen.extend(ids(&next));
    }
    assert_eq!(seen, (0..5000).collect::<Vec<_>>());
}

#[test]
fn byte_cap_stops_before_exceeding_but_returns_one_row() {
    let dir = tempfile::tempdir().unwrap();
    finished(dir.path(), "capped", 3000);
    let all = read_page(dir.path(), "capped", 2000, 10, usize::MAX).unwrap();
    let cost = |rows: &[Box<RawValue>]| rows.iter().map(|r| r.get().len() + 1).sum::<usize>();
    let three = cost(&all.rows[..3]);
    let page = read_page(dir.path(), "capped", 2000, 10, three).unwrap();
    assert_eq!(ids(&page), vec![2000, 2001, 2002]);
    let page = read_page(dir.path(), "capped", 2000, 10, three + 1).unwrap();
    assert_eq!(page.rows.len(), 3);
    // A cap smaller than one row still makes progress.
    let page = read_page(dir.path(), "capped", 2999, 10, 1).unwrap();
    assert_eq!(ids(&page), vec![2999]);
}

#[test]
fn manifest_appears_only_on_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = ResultWriter::create(dir.path(), "running").unwrap();
    writer.write_batch(&rows(0, 2000)).unwrap();
    assert_eq!(read_outcome(dir.path(), "running").unwrap(), None);
    let err = read_page(dir.path(), "running", 0, 10, usize::MAX).unwrap_err();
    assert_eq!(err.kind, WarehouseErrorKind::NotFound);

    writer.finish(&outcome()).unwrap();
    let stored = read_outcome(dir.path(), "running").unwrap().unwrap();
    assert_eq!(
        stored,
        QueryOutcome {
            total_rows: 2000,
            ..outcome()
        }
    );
    assert!(!dir.path().join("running.json.tmp").exists());
}

#[test]
fn unknown_job_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(read_outcome(dir.path(), "nope").unwrap(), None);
    let err = read_page(dir.path(), "nope", 0, 10, 100).unwrap_err();
    assert_eq!(err.kind, WarehouseErrorKind::NotFound);
    assert!(err.message.contains("no longer kept"), "{}", err.message);
}

#[test]
fn a_sweep_removes_old_results_but_not_unfinished_ones() {
    let dir = tempfile::tempdir().unwrap();
    for key in ["old", "running"] {
        std::fs::write(dir.path().join(format!("{key}.json")), "{}").unwrap();
        std::fs::write(dir.path().join(format!("{key}.rows")), "").unwrap();
        std::fs::write(dir.path().join(format!("{key}.idx")), "").unwrap();
    }
    std::fs::write(dir.path().join("unrelated.txt"), "").unwrap();
    let unfinished = std::collections::HashSet::from(["running".to_owned()]);
    // Nothing is that old yet.
    assert_eq!(
        sweep(
            dir.path(),
            std::time::Duration::from_secs(3600),
            &unfinished
        )
        .unwrap(),
        0
    );
    assert_eq!(
        sweep(dir.path(), std::time::Duration::ZERO, &unfinished).unwrap(),
        1
    );
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "running.idx",
            "running.json",
            "running.rows",
            "unrelated.txt"
        ]
    );
}

#[test]
fn empty_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = ResultWriter::create(dir.path(), "empty").unwrap();
    writer.write_batch(&rows(0, 0)).unwrap();
    writer.finish(&outcome()).unwrap();
    let page = read_page(dir.path(), "empty", 0, 10, 100).unwrap();
    assert!(page.rows.is_empty());
    assert_eq!(page.total_rows, 0);
}

#[test]
fn bad_job_keys_are_refused_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let long = "a".repeat(129);
    for key in [
        "",
        "../escape",
        "a/b",
        "a.b",
        "space d",
        "é",
        "nul\0",
        long.as_str(),
    ] {
        let invalid =
            |err: WarehouseError| assert_eq!(err.kind, WarehouseErrorKind::Invalid, "{key:?}");
        invalid(ResultWriter::create(dir.path(), key).unwrap_err());
        invalid(read_outcome(dir.path(), key).unwrap_err());
        invalid(read_page(dir.path(), key, 0, 1, 1).unwrap_err());
        invalid(remove(dir.path(), key).unwrap_err());
    }
    let longest = "Z9_-".repeat(32);
    finished(dir.path(), &longest, 3);
    assert_eq!(
        read_page(dir.path(), &longest, 0, 10, 1000)
            .unwrap()
            .rows
            .len(),
        3
    );
}

#[test]
fn remove_deletes_and_tolerates_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    finished(dir.path(), "gone", 10);
    remove(dir.path(), "gone").unwrap();
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    remove(dir.path(), "gone").unwrap();
    let err = read_page(dir.path(), "gone", 0, 10, 100).unwrap_err();
    assert_eq!(err.kind, WarehouseErrorKind::NotFound);
}

#[test]
fn abandoned_writer_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = ResultWriter::create(dir.path(), "failed").unwrap();
    writer.write_batch(&rows(0, 10)).unwrap();
    drop(writer);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn rewriting_a_key_hides_the_old_result_until_finished() {
    let dir = tempfile::tempdir().unwrap();
    finished(dir.path(), "again", 10);
    let mut writer = ResultWriter::create(dir.path(), "again").unwrap();
    assert_eq!(read_outcome(dir.path(), "again").unwrap(), None);
    writer.write_batch(&rows(100, 3)).unwrap();
    writer.finish(&outcome()).unwrap();
    let page = read_page(dir.path(), "again", 0, 10, usize::MAX).unwrap();
    assert_eq!((ids(&page), page.total_rows), (vec![100, 101, 102], 3));
}

#[test]
fn damaged_index_is_an_internal_error() {
    let dir = tempfile::tempdir().unwrap();
    finished(dir.path(), "damaged", 2000);
    fs::write(dir.path().join("damaged.idx"), [0u8; 8]).unwrap();
    let err = read_page(dir.path(), "damaged", 1500, 10, 100).unwrap_err();
    assert_eq!(err.kind, WarehouseErrorKind::Internal);
}
