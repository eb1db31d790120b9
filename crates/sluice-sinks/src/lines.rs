//! Sinks that write one event per line: standard output, and a JSON-lines
//! file rotated by size.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;

use crate::Feed;

/// Events written, then flushed, at once at most.
const BATCH: usize = 256;

pub(crate) async fn run_stdout(mut feed: Feed) {
    let mut out = tokio::io::stdout();
    while let Some(batch) = feed.next_batch(BATCH, Duration::ZERO).await {
        let mut buf = Vec::new();
        for event in &batch {
            buf.extend_from_slice(event.as_bytes());
            buf.push(b'\n');
        }
        let written = async {
            out.write_all(&buf).await?;
            out.flush().await
        };
        feed.settle(batch.len(), written.await);
    }
}

/// An append-only JSON-lines file and its rotation.
pub(crate) struct Jsonl {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    /// `None` after rotating or after an error: opened again for the next
    /// write.
    file: Option<File>,
    /// The open file's length.
    size: u64,
}

impl Jsonl {
    /// Opens `path` now, so that a path Sluice cannot write to stops the
    /// start instead of failing every event later.
    pub(crate) fn open(path: PathBuf, max_bytes: u64, keep: usize) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path,
            max_bytes,
            keep,
            file: Some(File::from_std(file)),
            size,
        })
    }

    pub(crate) async fn run(mut self, mut feed: Feed) {
        while let Some(batch) = feed.next_batch(BATCH, Duration::ZERO).await {
            // A batch that fails part way counts as failed whole.
            let written = self.write(&batch).await;
            if written.is_err() {
                self.file = None;
            }
            feed.settle(batch.len(), written);
        }
    }

    async fn write(&mut self, batch: &[Arc<str>]) -> io::Result<()> {
        let mut buf = Vec::new();
        for event in batch {
            let line = event.len() as u64 + 1;
            let size = self.current_size().await? + buf.len() as u64;
            if size > 0 && size + line > self.max_bytes {
                self.append(&buf).await?;
                buf.clear();
                self.rotate().await?;
            }
            buf.extend_from_slice(event.as_bytes());
            buf.push(b'\n');
        }
        self.append(&buf).await
    }

    /// The length of the file, opening it first if need be.
    async fn current_size(&mut self) -> io::Result<u64> {
        if self.file.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .await?;
            self.size = file.metadata().await?.len();
            self.file = Some(file);
        }
        Ok(self.size)
    }

    async fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.current_size().await?;
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("the file is not open"));
        };
        file.write_all(buf).await?;
        file.flush().await?;
        self.size += buf.len() as u64;
        Ok(())
    }

    /// `path.keep` is deleted, `path.N` becomes `path.N+1`, `path` becomes
    /// `path.1`; the next write starts a fresh `path`.
    async fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let numbered = |n: usize| {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        let oldest = if self.keep == 0 {
            self.path.clone()
        } else {
            numbered(self.keep)
        };
        ignore_missing(tokio::fs::remove_file(oldest).await)?;
        for n in (1..self.keep).rev() {
            ignore_missing(tokio::fs::rename(numbered(n), numbered(n + 1)).await)?;
        }
        if self.keep > 0 {
            tokio::fs::rename(&self.path, numbered(1)).await?;
        }
        Ok(())
    }
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
