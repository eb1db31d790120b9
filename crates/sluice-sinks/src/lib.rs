//! Copies of audit events for SIEMs: standard output, a JSON-lines file
//! rotated by size, syslog (RFC 5424 over UDP or TCP) and HTTP (a JSON
//! array, or Splunk HEC batches).
//!
//! The audit log of record is the store's hash chain; a sink is a copy for
//! someone else to watch. It may lose events, but it must never hold up a
//! request. So [`Sinks::send`] never waits: each sink has a bounded queue
//! and one background task that drains it, and a full queue drops the event
//! for that sink alone and counts the drop. A task retries a failed delivery
//! with backoff (200 ms, doubling, at most 5 s), then counts the events as
//! failed and goes on; while it retries, its queue fills and drops, and the
//! other sinks are not affected. A retried batch may arrive twice, when
//! the first attempt got through but its answer did not. [`Sinks::stats`]
//! reports every count.
//!
//! Each event arrives as one compact JSON object in an `Arc<str>`, so all
//! sinks share one allocation.

mod http;
mod lines;
mod syslog;

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::mpsc;

/// The syslog facility audit events go to unless configured: 10,
/// `authpriv` (security and authorization messages), which syslog daemons
/// usually route to a file only administrators read.
pub const DEFAULT_FACILITY: u8 = 10;

/// One configured sink.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    /// Names the sink in stats, logs and errors; unique among the sinks.
    pub name: String,
    /// Events that may wait for delivery; one more is dropped. At least 1.
    pub queue: usize,
    pub kind: SinkKind,
}

/// Where a sink delivers, and how.
#[derive(Debug, Clone)]
pub enum SinkKind {
    /// One event per line on standard output.
    Stdout,
    /// One event per line, appended to `path`. When a line would take the
    /// file past `max_bytes`, the file is renamed `path.1` (`path.1` to
    /// `path.2`, …, keeping `keep` of them, the oldest deleted) and a fresh
    /// one is started. Written and flushed once per batch.
    Jsonl {
        path: PathBuf,
        max_bytes: u64,
        keep: usize,
    },
    /// RFC 5424 messages, the event JSON as MSG and its `kind` as MSGID.
    Syslog {
        /// `host:port`.
        address: String,
        transport: SyslogTransport,
        /// APP-NAME, e.g. `sluice`.
        app_name: String,
        /// 0 to 23; see [`DEFAULT_FACILITY`].
        facility: u8,
        /// HOSTNAME, this machine's name; empty sends `-`.
        hostname: String,
    },
    /// Batches POSTed to `url`.
    Http {
        /// The full URL; for Splunk, the collector's, e.g.
        /// `https://splunk:8088/services/collector/event`.
        url: String,
        format: HttpFormat,
        /// Sent as `Authorization: Bearer <token>` (JSON) or
        /// `Authorization: Splunk <token>` (HEC).
        token: Option<Secret>,
        /// Events per request, at most. At least 1.
        batch_max: usize,
        /// How long the first event of a batch waits for others.
        flush_interval: Duration,
        /// The whole request, connecting included.
        timeout: Duration,
        /// Retries after a connection error, a timeout, 429 or 5xx; other
        /// answers are final.
        max_retries: u32,
    },
}

impl SinkKind {
    /// The kind's name in [`SinkStats`].
    fn label(&self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Jsonl { .. } => "jsonl",
            Self::Syslog { .. } => "syslog",
            Self::Http { .. } => "http",
        }
    }
}

/// How syslog messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogTransport {
    /// One datagram per message (RFC 5426).
    Udp,
    /// Octet-counted frames, `LEN SP MSG` (RFC 6587), reconnecting after
    /// an error.
    Tcp,
}

/// The body of an HTTP sink's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFormat {
    /// `application/json`: a JSON array of the batch's events.
    Json,
    /// Splunk HTTP Event Collector: one envelope per event, newline
    /// separated, with `time` from the event's `at_ms`, `host` from its
    /// `instance`, `source` `sluice` and `sourcetype` `sluice:audit`.
    SplunkHec,
}

/// A credential a sink sends. `Debug` shows `Secret([redacted])`, and no
/// error or log line quotes it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Why the sinks did not start.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("audit sink {sink:?}: {why}")]
    Invalid { sink: String, why: String },
    #[error(
        "audit sink {sink:?} cannot open {path}: {source}; check that its folder exists and \
         Sluice may write there"
    )]
    Open {
        sink: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("audit sinks run on a Tokio runtime: start them from within one")]
    NoRuntime,
}

/// One sink's counts, as [`Sinks::stats`] reports them. Every event given
/// to [`Sinks::send`] is in exactly one of `queued`, `in_flight`, `sent`,
/// `failed` and `dropped` (the counts are read one after the other, so
/// while events move the sum may be off by those moving).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkStats {
    pub name: String,
    /// `stdout`, `jsonl`, `syslog` or `http`.
    pub kind: &'static str,
    /// Waiting in the queue now.
    pub queued: u64,
    /// Taken from the queue, not yet delivered or given up.
    pub in_flight: u64,
    /// Delivered.
    pub sent: u64,
    /// Given up after the retries.
    pub failed: u64,
    /// Not queued: the queue was full.
    pub dropped: u64,
}

/// The running sinks. Cheap to clone; the tasks end once every clone is
/// dropped and the queues are drained.
#[derive(Debug, Clone, Default)]
pub struct Sinks {
    sinks: Arc<[Sink]>,
}

#[derive(Debug)]
struct Sink {
    name: String,
    kind: &'static str,
    queue: mpsc::Sender<Arc<str>>,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    fn unsettled(&self) -> u64 {
        let settled = self.sent.load(Relaxed) + self.failed.load(Relaxed);
        self.accepted.load(Relaxed).saturating_sub(settled)
    }
}

impl Sinks {
    /// Checks `specs`, opens the JSON-lines files and starts one task per
    /// sink on the current Tokio runtime. Nothing starts unless all can.
    pub fn start(specs: Vec<SinkSpec>) -> Result<Sinks, SinkError> {
        if specs.is_empty() {
            return Ok(Self::default());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SinkError::NoRuntime)?;
        let mut names = HashSet::new();
        let mut prepared = Vec::with_capacity(specs.len());
        for spec in specs {
            let invalid = |why: &str| SinkError::Invalid {
                sink: spec.name.clone(),
                why: why.to_owned(),
            };
            if !names.insert(spec.name.clone()) {
                return Err(invalid("the name is used twice; give each sink its own"));
            }
            if spec.queue == 0 {
                return Err(invalid("queue must be at least 1"));
            }
            let delivery = Delivery::prepare(&spec)?;
            prepared.push((spec, delivery));
        }
        let sinks = prepared
            .into_iter()
            .map(|(spec, delivery)| {
                let (queue, events) = mpsc::channel(spec.queue);
                let counters = Arc::new(Counters::default());
                let feed = Feed {
                    name: spec.name.clone(),
                    events,
                    counters: counters.clone(),
                };
                runtime.spawn(delivery.run(feed));
                Sink {
                    name: spec.name,
                    kind: spec.kind.label(),
                    queue,
                    counters,
                }
            })
            .collect();
        Ok(Self { sinks })
    }

    /// True with no sinks: the caller may skip serializing events.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Queues `event`, one compact JSON object, for every sink; never
    /// waits. A sink whose queue is full drops it and counts the drop.
    pub fn send(&self, event: Arc<str>) {
        for sink in self.sinks.iter() {
            // Counted before it is queued, so the task never settles an
            // event that is not counted yet.
            sink.counters.accepted.fetch_add(1, Relaxed);
            if sink.queue.try_send(event.clone()).is_ok() {
                continue;
            }
            sink.counters.accepted.fetch_sub(1, Relaxed);
            let dropped = sink.counters.dropped.fetch_add(1, Relaxed) + 1;
            // The 1st, 2nd, 4th, 8th… drop: a dead sink does not flood the log.
            if dropped.is_power_of_two() {
                tracing::warn!(sink = %sink.name, dropped, "audit sink is behind: events dropped");
            }
        }
    }

    /// Every sink's counts, in configuration order.
    pub fn stats(&self) -> Vec<SinkStats> {
        self.sinks
            .iter()
            .map(|sink| {
                let queued = (sink.queue.max_capacity() - sink.queue.capacity()) as u64;
                SinkStats {
                    name: sink.name.clone(),
                    kind: sink.kind,
                    queued,
                    in_flight: sink.counters.unsettled().saturating_sub(queued),
                    sent: sink.counters.sent.load(Relaxed),
                    failed: sink.counters.failed.load(Relaxed),
                    dropped: sink.counters.dropped.load(Relaxed),
                }
            })
            .collect()
    }

    /// Waits until every event queued so far is delivered or given up, or
    /// until `within` has passed: best effort, for shutdown.
    pub async fn flush(&self, within: Duration) {
        let settled = async {
            while self.sinks.iter().any(|sink| sink.counters.unsettled() > 0) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let _ = tokio::time::timeout(within, settled).await;
    }
}

/// A sink's delivery, checked and opened, ready to run.
enum Delivery {
    Stdout,
    Jsonl(lines::Jsonl),
    Syslog(syslog::Syslog),
    Http(http::Http),
}

impl Delivery {
    fn prepare(spec: &SinkSpec) -> Result<Self, SinkError> {
        let invalid = |why: String| SinkError::Invalid {
            sink: spec.name.clone(),
            why,
        };
        Ok(match &spec.kind {
            SinkKind::Stdout => Self::Stdout,
            SinkKind::Jsonl {
                path,
                max_bytes,
                keep,
            } => Self::Jsonl(lines::Jsonl::open(path.clone(), *max_bytes, *keep).map_err(
                |source| SinkError::Open {
                    sink: spec.name.clone(),
                    path: path.clone(),
                    source,
                },
            )?),
            SinkKind::Syslog { .. } => {
                Self::Syslog(syslog::Syslog::new(&spec.kind).map_err(invalid)?)
            }
            SinkKind::Http { .. } => Self::Http(http::Http::new(&spec.kind).map_err(invalid)?),
        })
    }

    async fn run(self, feed: Feed) {
        match self {
            Self::Stdout => lines::run_stdout(feed).await,
            Self::Jsonl(jsonl) => jsonl.run(feed).await,
            Self::Syslog(syslog) => syslog.run(feed).await,
            Self::Http(http) => http.run(feed).await,
        }
    }
}

/// What a sink's task drains, and where it counts the outcome.
struct Feed {
    name: String,
    events: mpsc::Receiver<Arc<str>>,
    counters: Arc<Counters>,
}

impl Feed {
    /// The events waiting, at most `max`, once there is one; more if they
    /// arrive within `linger`. `None` once every sender is gone and the
    /// queue is empty.
    async fn next_batch(&mut self, max: usize, linger: Duration) -> Option<Vec<Arc<str>>> {
        let mut batch = Vec::new();
        if self.events.recv_many(&mut batch, max).await == 0 {
            return None;
        }
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max && !linger.is_zero() {
            let room = max - batch.len();
            let more = self.events.recv_many(&mut batch, room);
            match tokio::time::timeout_at(deadline, more).await {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        Some(batch)
    }

    /// Counts `n` events sent, or failed with a warning.
    fn settle(&self, n: usize, result: Result<(), impl fmt::Display>) {
        match result {
            Ok(()) => self.counters.sent.fetch_add(n as u64, Relaxed),
            Err(err) => {
                tracing::warn!(sink = %self.name, events = n, %err, "audit events not delivered");
                self.counters.failed.fetch_add(n as u64, Relaxed)
            }
        };
    }
}

/// The wait before retry `attempt` (0-based): 200 ms, doubling, at most 5 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 << attempt.min(5)).min(Duration::from_secs(5))
}
