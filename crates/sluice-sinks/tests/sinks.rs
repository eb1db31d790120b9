//! Each sink against a real receiver on a local socket: a file, a syslog
//! listener over UDP and TCP, an HTTP collector.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use sluice_sinks::{
    HttpFormat, Secret, SinkError, SinkKind, SinkSpec, SinkStats, Sinks, SyslogTransport,
};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};

fn spec(name: &str, queue: usize, kind: SinkKind) -> SinkSpec {
    SinkSpec {
        name: name.into(),
        queue,
        kind,
    }
}

fn event(n: usize) -> Arc<str> {
    json!({"at_ms": 1_700_000_000_000_i64 + n as i64, "kind": "query.started", "instance": "sluice-1", "n": n})
        .to_string()
        .into()
}

fn stats(sinks: &Sinks, name: &str) -> SinkStats {
    sinks.stats().into_iter().find(|s| s.name == name).unwrap()
}

/// Polls `done` until it holds, for 10 s at most.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("waited 10 s for {what}");
}

fn jsonl(path: &Path, max_bytes: u64, keep: usize) -> SinkKind {
    SinkKind::Jsonl {
        path: path.to_owned(),
        max_bytes,
        keep,
    }
}

fn lines_of(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn jsonl_rotates_at_max_bytes_and_keeps_keep_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let line = event(10).len() as u64 + 1;
    // Three lines fit a file, a fourth would not.
    let sinks = Sinks::start(vec![spec("file", 100, jsonl(&path, line * 3 + 1, 2))]).unwrap();
    for n in 10..30 {
        sinks.send(event(n));
    }
    wait_until("20 lines", || stats(&sinks, "file").sent == 20).await;
    let numbers = |suffix: &str| -> Vec<u64> {
        let path = dir.path().join(format!("audit.jsonl{suffix}"));
        lines_of(&path)
            .iter()
            .map(|e| e["n"].as_u64().unwrap())
            .collect()
    };
    // 10–12, 13–15, … 25–27 filled a file each; the oldest are gone.
    assert_eq!(numbers(""), [28, 29]);
    assert_eq!(numbers(".1"), [25, 26, 27]);
    assert_eq!(numbers(".2"), [22, 23, 24]);
    assert!(!dir.path().join("audit.jsonl.3").exists());
}

#[tokio::test]
async fn a_jsonl_file_that_cannot_be_opened_stops_the_start() {
    let path = Path::new("/nonexistent-folder/audit.jsonl");
    let err = Sinks::start(vec![spec("file", 1, jsonl(path, 1000, 1))]).unwrap_err();
    assert!(matches!(err, SinkError::Open { .. }));
    let shown = err.to_string();
    assert!(shown.contains("\"file\"") && shown.contains("/nonexistent-folder/audit.jsonl"));
}

fn syslog(address: String, transport: SyslogTransport) -> SinkKind {
    SinkKind::Syslog {
        address,
        transport,
        app_name: "sluice".into(),
        facility: sluice_sinks::DEFAULT_FACILITY,
        hostname: "gw-1".into(),
    }
}

/// Checks the RFC 5424 header and returns the JSON message.
fn parse_rfc5424(message: &str) -> Value {
    let parts: Vec<&str> = message.splitn(8, ' ').collect();
    assert_eq!(parts[0], "<86>1", "PRI 10 × 8 + 6, version 1");
    assert!(
        parts[1].ends_with('Z') && parts[1].len() == 24,
        "{}",
        parts[1]
    );
    assert_eq!(
        parts[2..5],
        ["gw-1", "sluice", &std::process::id().to_string()]
    );
    assert_eq!(parts[5], "query.started", "MSGID is the kind");
    assert_eq!(parts[6], "-", "no structured data");
    serde_json::from_str(parts[7]).unwrap()
}

#[tokio::test]
async fn syslog_udp_sends_one_datagram_per_event() {
    let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = receiver.local_addr().unwrap().to_string();
    let sinks = Sinks::start(vec![spec("udp", 10, syslog(address, SyslogTransport::Udp))]).unwrap();
    for n in 0..3 {
        sinks.send(event(n));
    }
    let mut buf = vec![0; 70_000];
    for n in 0..3 {
        let len = receiver.recv(&mut buf).await.unwrap();
        let message = std::str::from_utf8(&buf[..len]).unwrap();
        assert_eq!(parse_rfc5424(message)["n"], n);
    }
}

#[tokio::test]
async fn syslog_tcp_frames_by_octet_counting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let sinks = Sinks::start(vec![spec("tcp", 10, syslog(address, SyslogTransport::Tcp))]).unwrap();
    for n in 0..5 {
        sinks.send(event(n));
    }
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut received = Vec::new();
    let mut frames = Vec::new();
    while frames.len() < 5 {
        let mut chunk = [0; 4096];
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the sink closed the connection");
        received.extend_from_slice(&chunk[..read]);
        // Takes every complete `LEN SP MSG` frame from the front.
        while let Some(space) = received.iter().position(|&b| b == b' ') {
            let len: usize = std::str::from_utf8(&received[..space])
                .unwrap()
                .parse()
                .unwrap();
            if received.len() < space + 1 + len {
                break;
            }
            let frame: Vec<u8> = received.drain(..space + 1 + len).skip(space + 1).collect();
            frames.push(String::from_utf8(frame).unwrap());
        }
    }
    for (n, frame) in frames.iter().enumerate() {
        assert_eq!(parse_rfc5424(frame)["n"], n);
    }
}

/// A request as the collector saw it: its `Authorization` header and body.
type Request = (Option<String>, String);

#[derive(Clone, Default)]
struct Collector {
    requests: Arc<Mutex<Vec<Request>>>,
    /// The answers to the first requests; 200 after them.
    answers: Arc<Mutex<VecDeque<StatusCode>>>,
}

impl Collector {
    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

async fn collect(
    State(collector): State<Collector>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let authorization = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    collector
        .requests
        .lock()
        .unwrap()
        .push((authorization, body));
    collector
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(StatusCode::OK)
}

/// A collector on a local port giving `answers` first; the URL of its
/// HEC endpoint.
async fn collector(answers: &[StatusCode]) -> (String, Collector) {
    let collector = Collector::default();
    collector.answers.lock().unwrap().extend(answers);
    let app = axum::Router::new()
        .route("/services/collector/event", axum::routing::post(collect))
        .with_state(collector.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/services/collector/event",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, collector)
}

fn http(url: String, format: HttpFormat, batch_max: usize, max_retries: u32) -> SinkKind {
    SinkKind::Http {
        url,
        format,
        token: Some(Secret::new("t0ken-value")),
        batch_max,
        flush_interval: Duration::from_millis(100),
        timeout: Duration::from_secs(5),
        max_retries,
    }
}

#[tokio::test]
async fn http_json_posts_batches_of_batch_max() {
    let (url, collector) = collector(&[]).await;
    let sinks = Sinks::start(vec![spec("http", 100, http(url, HttpFormat::Json, 10, 0))]).unwrap();
    for n in 0..25 {
        sinks.send(event(n));
    }
    wait_until("25 events", || stats(&sinks, "http").sent == 25).await;
    let requests = collector.requests();
    assert_eq!(requests.len(), 3);
    let mut numbers = Vec::new();
    for (authorization, body) in requests {
        assert_eq!(authorization.as_deref(), Some("Bearer t0ken-value"));
        let events: Vec<Value> = serde_json::from_str(&body).unwrap();
        numbers.extend(events.iter().map(|e| e["n"].as_u64().unwrap()));
    }
    assert_eq!(numbers, (0..25).collect::<Vec<_>>());
}

#[tokio::test]
async fn splunk_hec_is_retried_after_a_503() {
    let (url, collector) = collector(&[StatusCode::SERVICE_UNAVAILABLE]).await;
    let sinks = Sinks::start(vec![spec(
        "hec",
        100,
        http(url, HttpFormat::SplunkHec, 10, 3),
    )])
    .unwrap();
    for n in 0..3 {
        sinks.send(event(n));
    }
    sinks.flush(Duration::from_secs(10)).await;
    let requests = collector.requests();
    assert_eq!(requests.len(), 2, "one 503, then the same batch again");
    assert_eq!(requests[0], requests[1]);
    let (authorization, body) = &requests[1];
    assert_eq!(authorization.as_deref(), Some("Splunk t0ken-value"));
    let envelopes: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(envelopes.len(), 3);
    assert_eq!(envelopes[1]["time"], 1_700_000_000.001);
    assert_eq!(envelopes[1]["host"], "sluice-1");
    assert_eq!(envelopes[1]["source"], "sluice");
    assert_eq!(envelopes[1]["sourcetype"], "sluice:audit");
    assert_eq!(envelopes[1]["event"].to_string(), *event(1));
    let hec = stats(&sinks, "hec");
    assert_eq!((hec.sent, hec.failed), (3, 0));
}

#[tokio::test]
async fn a_4xx_other_than_429_fails_without_retry() {
    let (url, collector) = collector(&[StatusCode::BAD_REQUEST]).await;
    let sinks = Sinks::start(vec![spec("http", 10, http(url, HttpFormat::Json, 10, 3))]).unwrap();
    sinks.send(event(0));
    sinks.flush(Duration::from_secs(10)).await;
    assert_eq!(collector.requests().len(), 1);
    assert_eq!(stats(&sinks, "http").failed, 1);
}

#[tokio::test]
async fn a_dead_sink_drops_without_holding_up_send_or_the_other_sinks() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    // Refuses connections.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = http(
        format!("http://{}/", closed.local_addr().unwrap()),
        HttpFormat::Json,
        4,
        1,
    );
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut dead = http(url, HttpFormat::Json, 4, 0);
    if let SinkKind::Http { timeout, .. } = &mut dead {
        *timeout = Duration::from_secs(600);
    }
    let sinks = Sinks::start(vec![
        spec("dead", 8, dead),
        spec("refused", 8, refused),
        spec("file", 10_000, jsonl(&path, u64::MAX, 1)),
    ])
    .unwrap();

    for n in 0..10_000 {
        sinks.send(event(n));
    }

    wait_until("the file sink", || stats(&sinks, "file").sent == 10_000).await;
    assert_eq!(lines_of(&path).len(), 10_000);
    let dead = stats(&sinks, "dead");
    assert!(dead.dropped > 0, "{dead:?}");
    assert_eq!((dead.sent, dead.failed), (0, 0), "{dead:?}");
    assert!(dead.queued + dead.in_flight <= 8, "{dead:?}");
    assert_eq!(
        dead.queued + dead.in_flight + dead.dropped,
        10_000,
        "{dead:?}"
    );
    let refused = stats(&sinks, "refused");
    assert!(refused.dropped > 0 && refused.sent == 0, "{refused:?}");
    let counted = refused.queued + refused.in_flight + refused.failed + refused.dropped;
    assert_eq!(counted, 10_000, "{refused:?}");
}

#[test]
fn the_token_stays_out_of_debug_output() {
    let spec = spec(
        "hec",
        1,
        http("https://splunk:8088/".into(), HttpFormat::SplunkHec, 1, 0),
    );
    let shown = format!("{spec:?}");
    assert!(!shown.contains("t0ken-value"), "{shown}");
    assert!(shown.contains("Secret([redacted])"), "{shown}");
}

#[tokio::test]
async fn invalid_specs_are_refused_naming_the_sink() {
    let refused = |specs: Vec<SinkSpec>| Sinks::start(specs).unwrap_err().to_string();
    let twice = refused(vec![
        spec("out", 1, SinkKind::Stdout),
        spec("out", 1, SinkKind::Stdout),
    ]);
    assert!(
        twice.contains("\"out\"") && twice.contains("used twice"),
        "{twice}"
    );
    let empty = refused(vec![spec("out", 0, SinkKind::Stdout)]);
    assert!(empty.contains("queue must be at least 1"), "{empty}");
    let url = refused(vec![spec(
        "hec",
        1,
        http("ftp://x/".into(), HttpFormat::SplunkHec, 1, 0),
    )]);
    assert!(
        url.contains("\"hec\"") && !url.contains("t0ken-value"),
        "{url}"
    );
}

#[test]
fn sinks_start_only_on_a_runtime() {
    assert!(Sinks::start(Vec::new()).unwrap().is_empty());
    let err = Sinks::start(vec![spec("out", 1, SinkKind::Stdout)]).unwrap_err();
    assert!(matches!(err, SinkError::NoRuntime), "{err}");
}
