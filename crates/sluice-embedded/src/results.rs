//! Query results on disk: rows as BigQuery JSON lines, an offset index for
//! paging, and a manifest once the query is done.
//!
//! One job's result is three files under the results folder:
//!
//! - `<job>.rows`: one `{"f":[…]}` object per line, as [`super::rows`]
//!   writes them, so a page is served by copying lines, never re-encoding;
//! - `<job>.idx`: the byte offset in `.rows` of every 1024th row (row 0,
//!   1024, 2048, …) as little-endian `u64`, so a page starting anywhere is
//!   one seek and at most 1023 skipped lines away;
//! - `<job>.json`: the [`QueryOutcome`], written last and atomically
//!   (temporary file, then rename). Its presence is what makes a result
//!   readable: a reader sees a complete result or none.
//!
//! Everything here is blocking `std` I/O; callers run it on
//! `spawn_blocking`. Memory is bounded by one batch when writing and one
//! page when reading.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use datafusion::arrow::record_batch::RecordBatch;
use serde_json::value::RawValue;

use super::rows;
use sluice_warehouse::{QueryOutcome, RowPage, WarehouseError};

/// Rows between two index entries: a page seeks to the entry at or before
/// its first row and skips fewer than this many lines.
const INDEX_EVERY: u64 = 1024;

/// An encode buffer grown past this by one huge batch is released rather
/// than kept for the rest of the job.
const KEEP_BUFFER_BYTES: usize = 16 << 20;

/// The paths of one job's files.
struct ResultFiles {
    rows: PathBuf,
    index: PathBuf,
    manifest: PathBuf,
    manifest_tmp: PathBuf,
}

impl ResultFiles {
    fn new(dir: &Path, job_key: &str) -> Result<Self, WarehouseError> {
        check_job_key(job_key)?;
        Ok(Self {
            rows: dir.join(format!("{job_key}.rows")),
            index: dir.join(format!("{job_key}.idx")),
            manifest: dir.join(format!("{job_key}.json")),
            manifest_tmp: dir.join(format!("{job_key}.json.tmp")),
        })
    }
}

/// Job keys become file names: only a short, plain alphabet is allowed, so
/// no key can name a path outside the results folder.
fn check_job_key(job_key: &str) -> Result<(), WarehouseError> {
    let plain = job_key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain && (1..=128).contains(&job_key.len()) {
        Ok(())
    } else {
        Err(WarehouseError::invalid(format!(
            "Invalid job id {job_key:?}: use 1 to 128 letters, digits, '_' or '-'"
        )))
    }
}

fn io_error(action: &str, path: &Path, err: io::Error) -> WarehouseError {
    WarehouseError::internal(format!("cannot {action} {}: {err}", path.display()))
}

/// Writes one job's result as its batches arrive.
pub struct ResultWriter {
    files: ResultFiles,
    rows: BufWriter<File>,
    index: BufWriter<File>,
    rows_written: u64,
    bytes_written: u64,
    /// Reused between batches: one batch's JSON.
    buffer: Vec<u8>,
    finished: bool,
}

impl std::fmt::Debug for ResultWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultWriter")
            .field("rows", &self.files.rows)
            .field("rows_written", &self.rows_written)
            .finish_non_exhaustive()
    }
}

impl ResultWriter {
    /// Starts a result, replacing any earlier one under the same key.
    pub fn create(dir: &Path, job_key: &str) -> Result<Self, WarehouseError> {
        let files = ResultFiles::new(dir, job_key)?;
        fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
        // An old manifest would make the new, partial rows look finished.
        remove_if_present(&files.manifest)?;
        let rows = File::create(&files.rows).map_err(|e| io_error("create", &files.rows, e))?;
        let index = File::create(&files.index).map_err(|e| io_error("create", &files.index, e))?;
        Ok(Self {
            rows: BufWriter::with_capacity(256 << 10, rows),
            index: BufWriter::new(index),
            files,
            rows_written: 0,
            bytes_written: 0,
            buffer: Vec::new(),
            finished: false,
        })
    }

    /// Appends a batch's rows.
    pub fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), WarehouseError> {
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        let first_row = self.rows_written;
        let base = self.bytes_written;
        let mut offsets = Vec::new();
        rows::encode_each_row(batch, &mut buffer, |row, at| {
            if (first_row + row as u64).is_multiple_of(INDEX_EVERY) {
                offsets.push(base + at as u64);
            }
        })?;
        for offset in offsets {
            self.index
                .write_all(&offset.to_le_bytes())
                .map_err(|e| io_error("write", &self.files.index, e))?;
        }
        self.rows
            .write_all(&buffer)
            .map_err(|e| io_error("write", &self.files.rows, e))?;
        self.rows_written += batch.num_rows() as u64;
        self.bytes_written += buffer.len() as u64;
        if buffer.capacity() <= KEEP_BUFFER_BYTES {
            self.buffer = buffer;
        }
        Ok(())
    }

    pub fn rows_written(&self) -> u64 {
        self.rows_written
    }

    /// Makes the result readable: the rows and index reach the disk before
    /// the manifest appears. The manifest's `total_rows` is the number of
    /// rows actually written, which is what paging relies on.
    pub fn finish(mut self, outcome: &QueryOutcome) -> Result<(), WarehouseError> {
        let outcome = QueryOutcome {
            total_rows: self.rows_written,
            ..outcome.clone()
        };
        sync(&mut self.rows, &self.files.rows)?;
        sync(&mut self.index, &self.files.index)?;
        let manifest = serde_json::to_vec(&outcome)
            .map_err(|e| WarehouseError::internal(format!("cannot serialize result: {e}")))?;
        let tmp = &self.files.manifest_tmp;
        let mut file = File::create(tmp).map_err(|e| io_error("create", tmp, e))?;
        file.write_all(&manifest)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error("write", tmp, e))?;
        fs::rename(tmp, &self.files.manifest)
            .map_err(|e| io_error("rename", &self.files.manifest, e))?;
        self.finished = true;
        Ok(())
    }
}

/// Flushes and syncs, so a manifest never survives a crash that lost rows.
fn sync(writer: &mut BufWriter<File>, path: &Path) -> Result<(), WarehouseError> {
    writer
        .flush()
        .and_then(|()| writer.get_ref().sync_all())
        .map_err(|e| io_error("write", path, e))
}

impl Drop for ResultWriter {
    /// A result that never finished (failed or cancelled query) can never
    /// be read; its partial files are removed rather than left behind.
    fn drop(&mut self) {
        if !self.finished {
            for path in [
                &self.files.rows,
                &self.files.index,
                &self.files.manifest_tmp,
            ] {
                let _ = fs::remove_file(path);
            }
        }
    }
}

/// The manifest of a finished result, if there is one.
pub fn read_outcome(dir: &Path, job_key: &str) -> Result<Option<QueryOutcome>, WarehouseError> {
    let files = ResultFiles::new(dir, job_key)?;
    let bytes = match fs::read(&files.manifest) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("read", &files.manifest, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| WarehouseError::internal(format!("corrupt result manifest of {job_key}: {e}")))
}

/// Rows `start..` of a finished result: at most `max_rows` rows and about
/// `max_bytes` of row JSON (the page stops before a row that would exceed
/// it, but always holds at least one row when any remain).
pub fn read_page(
    dir: &Path,
    job_key: &str,
    start: u64,
    max_rows: usize,
    max_bytes: usize,
) -> Result<RowPage, WarehouseError> {
    let files = ResultFiles::new(dir, job_key)?;
    let Some(outcome) = read_outcome(dir, job_key)? else {
        return Err(WarehouseError::not_found(
            "Not found: the results of this job are no longer kept (results are removed after \
             limits.result_retention_hours); run the query again.",
        ));
    };
    let total_rows = outcome.total_rows;
    if start >= total_rows || max_rows == 0 {
        return Ok(RowPage {
            rows: Vec::new(),
            total_rows,
        });
    }
    let want = max_rows.min(usize::try_from(total_rows - start).unwrap_or(usize::MAX));

    let block = start / INDEX_EVERY;
    let block_offset = index_entry(&files.index, block)?;
    let mut file = File::open(&files.rows).map_err(|e| io_error("open", &files.rows, e))?;
    file.seek(SeekFrom::Start(block_offset))
        .map_err(|e| io_error("read", &files.rows, e))?;
    let mut reader = BufReader::with_capacity(64 << 10, file);
    let mut line = Vec::new();
    for _ in block * INDEX_EVERY..start {
        line.clear();
        if read_line(&mut reader, &mut line, &files.rows)? == 0 {
            return Err(truncated(&files.rows));
        }
    }

    let mut rows = Vec::with_capacity(want.min(4096));
    let mut bytes = 0usize;
    while rows.len() < want {
        let mut line = Vec::new();
        if read_line(&mut reader, &mut line, &files.rows)? == 0 {
            return Err(truncated(&files.rows));
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        // Each row also costs a separator in the response array.
        let cost = line.len() + 1;
        if !rows.is_empty() && bytes + cost > max_bytes {
            break;
        }
        bytes += cost;
        let text = String::from_utf8(line).map_err(|_| truncated(&files.rows))?;
        let row = RawValue::from_string(text).map_err(|_| truncated(&files.rows))?;
        rows.push(row);
    }
    Ok(RowPage { rows, total_rows })
}

fn read_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    path: &Path,
) -> Result<usize, WarehouseError> {
    reader
        .read_until(b'\n', line)
        .map_err(|e| io_error("read", path, e))
}

/// The byte offset of row `block * INDEX_EVERY`.
fn index_entry(path: &Path, block: u64) -> Result<u64, WarehouseError> {
    let mut file = File::open(path).map_err(|e| io_error("open", path, e))?;
    let mut entry = [0u8; 8];
    file.seek(SeekFrom::Start(block * 8))
        .and_then(|_| file.read_exact(&mut entry))
        .map_err(|_| truncated(path))?;
    Ok(u64::from_le_bytes(entry))
}

fn truncated(path: &Path) -> WarehouseError {
    WarehouseError::internal(format!(
        "the stored query result {} is damaged; run the query again",
        path.display()
    ))
}

/// Deletes the result files last written `older_than` ago or earlier,
/// except those of the jobs in `unfinished`; how many jobs' files went.
pub fn sweep(
    dir: &Path,
    older_than: std::time::Duration,
    unfinished: &std::collections::HashSet<String>,
) -> Result<usize, WarehouseError> {
    let entries = fs::read_dir(dir).map_err(|e| io_error("list", dir, e))?;
    let mut removed = std::collections::BTreeSet::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((key, kind)) = name.split_once('.') else {
            continue;
        };
        if !matches!(kind, "rows" | "idx" | "json" | "json.tmp") || unfinished.contains(key) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age >= older_than);
        if old {
            remove_if_present(&entry.path())?;
            removed.insert(key.to_owned());
        }
    }
    Ok(removed.len())
}

/// Deletes a job's files; files already gone are fine.
pub fn remove(dir: &Path, job_key: &str) -> Result<(), WarehouseError> {
    let files = ResultFiles::new(dir, job_key)?;
    // The manifest first: once it is gone, no reader starts on the rows.
    for path in [
        &files.manifest,
        &files.manifest_tmp,
        &files.rows,
        &files.index,
    ] {
        remove_if_present(path)?;
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<(), WarehouseError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("remove", path, e)),
    }
}

#[cfg(test)]
mod tests;
