//! The demo data set: a small synthetic shop, generated deterministically.
//!
//! `sluice serve` without a configuration needs data that looks like a real
//! warehouse — customers with personal data worth masking, orders to join,
//! and enough events for a scan to cost something — without shipping
//! megabytes of Parquet in the repository. So the data is generated on first
//! start into `<root>/demo/shop/`, and generated identically every time:
//! the same seed, the same bytes, on every machine, so documentation and
//! tests can quote results.

mod names;
mod rng;
mod tables;

#[cfg(test)]
mod tests;

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;

use sluice_warehouse::WarehouseError;
use tables::{DemoTable, TABLES};

/// The demo's project and dataset.
pub const PROJECT: &str = "demo";
pub const DATASET: &str = "shop";

/// Row counts, so tests and docs can refer to them.
pub const CUSTOMERS: usize = 10_000;
pub const ORDERS: usize = 100_000;
pub const EVENTS: usize = 1_000_000;

/// Written after every table, so its presence means a complete data set of
/// this generator's version. Bump the version when the data changes, and
/// older data sets are regenerated.
const MARKER: &str = ".demo-data-v1";

/// Rows built and handed to the writer at a time: bounds memory while
/// generating the million events.
const BATCH_ROWS: usize = 64 * 1024;

/// Rows per Parquet row group: large enough for good compression, small
/// enough that the events table has several groups to prune and parallelise.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// The directory holding the demo dataset's tables under `root`.
pub fn dataset_dir(root: &Path) -> PathBuf {
    root.join(PROJECT).join(DATASET)
}

/// True when `<root>/demo/shop/` holds a complete generated data set of this
/// version (the marker file written last, and every table beside it).
pub fn is_present(root: &Path) -> bool {
    let dir = dataset_dir(root);
    dir.join(MARKER).is_file()
        && TABLES
            .iter()
            .all(|table| dir.join(file_name(table)).is_file())
}

/// Generates (or regenerates, replacing) `<root>/demo/shop/{customers,orders,
/// events}.parquet`, the same bytes on every run. Each table goes to a
/// temporary file renamed into place, and the marker is written last, so an
/// interrupted run is never mistaken for a complete one. `progress` receives
/// short human messages as the work goes on.
pub fn generate(root: &Path, progress: &mut dyn FnMut(&str)) -> Result<(), WarehouseError> {
    let dir = dataset_dir(root);
    fs::create_dir_all(&dir).map_err(|err| io_error("create directory", &dir, &err))?;
    // Drop the marker first: from here until the end the set is incomplete.
    let marker = dir.join(MARKER);
    match fs::remove_file(&marker) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(io_error("remove", &marker, &err)),
    }
    for table in &TABLES {
        progress(&format!("generating {} ({} rows)…", table.name, table.rows));
        let path = dir.join(file_name(table));
        let bytes = write_table(table, &path)?;
        progress(&format!(
            "wrote {} ({:.1} MB)",
            path.display(),
            bytes as f64 / 1_000_000.0
        ));
    }
    fs::write(&marker, b"sluice demo data, version 1\n")
        .map_err(|err| io_error("write", &marker, &err))?;
    Ok(())
}

fn file_name(table: &DemoTable) -> String {
    format!("{}.parquet", table.name)
}

/// Writes one table to `path` by way of a temporary file beside it, and
/// returns the file's size.
fn write_table(table: &DemoTable, path: &Path) -> Result<u64, WarehouseError> {
    let temp = path.with_extension("parquet.tmp");
    let result = write_parquet(table, &temp).and_then(|size| {
        fs::rename(&temp, path).map_err(|err| io_error("rename into place", path, &err))?;
        Ok(size)
    });
    if result.is_err() {
        // Best effort: a leftover temporary file is harmless, only untidy.
        let _ = fs::remove_file(&temp);
    }
    result
}

fn write_parquet(table: &DemoTable, path: &Path) -> Result<u64, WarehouseError> {
    let file = File::create(path).map_err(|err| io_error("create", path, &err))?;
    let parquet_error = |err: &dyn std::fmt::Display| {
        WarehouseError::internal(format!(
            "could not write demo table {}: {err}",
            path.display()
        ))
    };
    // The defaults stamp nothing that varies between runs (created_by is
    // the parquet crate's version, fixed by Cargo.lock), so the bytes are
    // reproducible.
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut writer = ArrowWriter::try_new(BufWriter::new(file), (table.schema)(), Some(properties))
        .map_err(|err| parquet_error(&err))?;
    let mut first_id = 1;
    let mut remaining = table.rows;
    while remaining > 0 {
        let len = remaining.min(BATCH_ROWS);
        let batch = (table.batch)(first_id, len).map_err(|err| parquet_error(&err))?;
        writer.write(&batch).map_err(|err| parquet_error(&err))?;
        first_id += len as i64;
        remaining -= len;
    }
    let mut buffered = writer.into_inner().map_err(|err| parquet_error(&err))?;
    buffered
        .flush()
        .map_err(|err| io_error("write", path, &err))?;
    let file = buffered
        .into_inner()
        .map_err(|err| io_error("write", path, err.error()))?;
    // On disk before the rename, so a crash cannot leave a renamed but
    // truncated table behind a marker written later.
    file.sync_all()
        .map_err(|err| io_error("sync", path, &err))?;
    let size = file
        .metadata()
        .map_err(|err| io_error("read metadata of", path, &err))?
        .len();
    Ok(size)
}

fn io_error(action: &str, path: &Path, err: &std::io::Error) -> WarehouseError {
    WarehouseError::internal(format!(
        "could not {action} demo data file {}: {err}",
        path.display()
    ))
}
