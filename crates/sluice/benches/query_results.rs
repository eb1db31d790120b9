//! Rows per second returned through `jobs.getQueryResults` for a
//! one-million-row result, against the warehouse's own execution time of
//! the same query in the same run, and the gateway's peak memory.
//!
//! ```sh
//! cargo bench -p sluice --bench query_results --profile dev
//! ```
//!
//! It starts the real `sluice serve` on the demo data in a temporary
//! folder, runs `SELECT * FROM demo.shop.events` as a query job several
//! times, and for each run takes:
//!
//! - the warehouse's execution time: the job's own `startTime` to
//!   `endTime` (planning, scanning and writing the result), and
//! - the paging time: every page of the finished result fetched with
//!   `getQueryResults` the way the client libraries do (no `maxResults`,
//!   following `pageToken`), over HTTP, decoded as JSON.
//!
//! The ratio paging/execution is the facade's cost relative to the
//! warehouse's. Memory is the server process's resident size before the
//! first query and its peak (`VmHWM`) after the last page; a ten times
//! smaller result, in a fresh server, shows whether the peak follows the
//! result size or the page size.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde::de::IgnoredAny;

const RUNS: usize = 3;

/// The measured query (pages as large as the server allows, like the
/// client libraries ask), the same result in pages of 10,000 rows, and a
/// ten times smaller result: if memory followed the result size, the last
/// peak would be a tenth of the first; if it follows the page size, the
/// second is the smallest.
const QUERIES: [(&str, &str, u64, Option<u32>); 3] = [
    ("1M rows", "SELECT * FROM demo.shop.events", 1_000_000, None),
    (
        "1M rows, maxResults=10000",
        "SELECT * FROM demo.shop.events",
        1_000_000,
        Some(10_000),
    ),
    (
        "100k rows",
        "SELECT * FROM demo.shop.events WHERE event_id <= 100000",
        100_000,
        None,
    ),
];

struct Measured {
    execution: Duration,
    paging: Paging,
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut results = Vec::new();
    for (index, (label, sql, expected_rows, max_results)) in QUERIES.into_iter().enumerate() {
        // A fresh server for each size, so each peak is that result's own.
        let server = Server::start(dir.path());
        let idle_kib = server.memory_kib("VmRSS");
        let mut runs = Vec::new();
        for run in 0..RUNS {
            let job = server.insert_job(&format!("bench_{index}_{run}"), sql);
            let execution = server.wait_for(&job);
            let paging = server.fetch_all(&job, max_results);
            assert_eq!(paging.rows, expected_rows, "the whole result came back");
            println!(
                "{label}, run {run}: execution {:.0} ms, paging {:.0} ms, {} pages, {:.1} MB of JSON",
                execution.as_secs_f64() * 1e3,
                paging.elapsed.as_secs_f64() * 1e3,
                paging.pages,
                paging.bytes as f64 / 1e6
            );
            runs.push(Measured { execution, paging });
        }
        let peak_kib = server.memory_kib("VmHWM");
        results.push((label, runs, idle_kib, peak_kib));
    }

    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!();
    println!(
        "| result | warehouse execution | getQueryResults paging | paging / execution | server RSS idle → peak | JSON transferred |"
    );
    println!("|---|---|---|---|---|---|");
    for (label, runs, idle_kib, peak_kib) in &results {
        let execution = median(runs.iter().map(|r| r.execution.as_secs_f64()).collect());
        let paging = median(
            runs.iter()
                .map(|r| r.paging.elapsed.as_secs_f64())
                .collect(),
        );
        let rows = runs[0].paging.rows as f64;
        println!(
            "| {label} | {:.0} ms ({:.0} rows/s) | {:.0} ms ({:.0} rows/s, {} pages) | {:.2} | {} → {} MiB | {:.1} MB |",
            execution * 1e3,
            rows / execution,
            paging * 1e3,
            rows / paging,
            runs[0].paging.pages,
            paging / execution,
            idle_kib / 1024,
            peak_kib / 1024,
            runs[0].paging.bytes as f64 / 1e6,
        );
    }
    authentication_latency(dir.path());
    masking_cost(dir.path());
}

/// What masking adds to paging: the demo's `customers` (10,000 rows with
/// SSNs, cards, e-mail, phones, addresses) read whole by an `admins`
/// token (exempt: the rows pass untouched) and by an `agents` token
/// (lineage masks on six columns and every detector on the other text
/// cells), in the same server, alternately, seven times each.
fn masking_cost(dir: &std::path::Path) {
    const ROUNDS: usize = 7;
    let sql = "SELECT * FROM demo.shop.customers";
    let mut server = Server::start(dir);
    let exempt = server.token.clone();
    let agent = server.mint("agents");
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..ROUNDS {
        for (which, token) in [&exempt, &agent].into_iter().enumerate() {
            server.token = token.clone();
            let job = server.insert_job(&format!("mask_{round}_{which}"), sql);
            server.wait_for(&job);
            let paging = server.fetch_all(&job, None);
            assert_eq!(paging.rows, 10_000, "the whole table came back");
            times[which].push(paging.elapsed.as_secs_f64());
        }
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let plain = median(&mut times[0]);
    let masked = median(&mut times[1]);
    println!();
    println!("| customers, 10,000 rows, getQueryResults paging | median of {ROUNDS} | ratio |");
    println!("|---|---|---|");
    println!(
        "| exempt (`admins`, rows untouched) | {:.1} ms | 1.00 |",
        plain * 1e3
    );
    println!(
        "| masked (`agents`: 6 column masks + all detectors) | {:.1} ms | **{:.2}** |",
        masked * 1e3,
        masked / plain
    );
}

/// The latency authentication adds, with the issuer's keys already cached:
/// the same `datasets.get` without a token (refused before any
/// verification), with a token whose signature is broken (parsed, its key
/// looked up and its signature checked, then refused), and with a valid
/// token (verified, decided and answered).
fn authentication_latency(dir: &std::path::Path) {
    const REQUESTS: usize = 400;
    let server = Server::start(dir);
    let path = "/bigquery/v2/projects/demo/datasets/shop";
    // One character inside the signature changed (not the last, whose
    // padding bits would make it malformed rather than wrong).
    let mut forged = server.token.clone();
    let at = forged.len() - 5;
    let flipped = if &forged[at..=at] == "A" { "B" } else { "A" };
    forged.replace_range(at..=at, flipped);
    let cases: [(&str, Option<&str>, u16); 3] = [
        ("no token (baseline)", None, 401),
        ("broken signature", Some(&forged), 401),
        ("valid token", Some(&server.token), 200),
    ];
    // Warm up: connection paths, the key set, the store.
    for (_, token, status) in &cases {
        assert_eq!(server.http_as(*token, "GET", path, "").0, *status);
    }
    let mut medians = Vec::new();
    for (label, token, status) in &cases {
        let mut times = Vec::with_capacity(REQUESTS);
        for _ in 0..REQUESTS {
            let start = Instant::now();
            let (got, _) = server.http_as(*token, "GET", path, "");
            times.push(start.elapsed());
            assert_eq!(got, *status, "{label}");
        }
        times.sort();
        medians.push((*label, times[REQUESTS / 2]));
    }
    let baseline = medians[0].1.as_secs_f64();
    println!();
    println!("datasets.get, median of {REQUESTS} requests each, keys cached:");
    println!("| request | median latency | ratio to no token |");
    println!("|---|---|---|");
    for (label, median) in &medians {
        println!(
            "| {label} | {:.0} µs | {:.2} |",
            median.as_secs_f64() * 1e6,
            median.as_secs_f64() / baseline
        );
    }
    println!(
        "signature verification adds {:.0} µs per request",
        (medians[1].1.as_secs_f64() - baseline) * 1e6
    );
}

struct Server {
    child: Child,
    addr: String,
    /// A development-issuer token for group `admins` (may read all of `demo`).
    token: String,
    data_dir: std::path::PathBuf,
}

struct Paging {
    rows: u64,
    pages: u64,
    bytes: u64,
    elapsed: Duration,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    page_token: Option<String>,
    job_complete: bool,
    #[serde(default)]
    rows: Vec<IgnoredAny>,
}

impl Server {
    fn start(dir: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .env("SLUICE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sluice starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the listening line");
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let addr = line
            .trim()
            .strip_prefix("Sluice is listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let mut server = Self {
            child,
            addr,
            token: String::new(),
            data_dir: dir.to_path_buf(),
        };
        server.token = server.mint("admins");
        server
    }

    /// A development-issuer token for `group`.
    fn mint(&self, group: &str) -> String {
        let minted = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args([
                "token",
                "--sub",
                "bench",
                "--group",
                group,
                "--ttl",
                "1h",
                "--data-dir",
            ])
            .arg(&self.data_dir)
            .output()
            .expect("sluice token runs");
        assert!(minted.status.success(), "sluice token: {minted:?}");
        String::from_utf8(minted.stdout)
            .expect("a token")
            .trim()
            .to_string()
    }

    /// A memory figure of the server process (`VmRSS`, `VmHWM`), in KiB.
    fn memory_kib(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status (Linux)");
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{key} in /proc/PID/status"))
    }

    fn insert_job(&self, id: &str, sql: &str) -> String {
        let body = serde_json::json!({
            "jobReference": {"jobId": id},
            "configuration": {"query": {"query": sql, "useLegacySql": false}},
        });
        let (status, _) = self.http("POST", "/bigquery/v2/projects/demo/jobs", &body.to_string());
        assert_eq!(status, 200, "jobs.insert");
        id.to_string()
    }

    /// Waits for the job and returns its own execution time.
    fn wait_for(&self, job: &str) -> Duration {
        loop {
            let (_, body) = self.http("GET", &format!("/bigquery/v2/projects/demo/jobs/{job}"), "");
            let value: serde_json::Value = serde_json::from_slice(&body).expect("a job");
            if value["status"]["state"] == "DONE" {
                assert!(value["status"]["errorResult"].is_null(), "{value}");
                let ms = |key: &str| -> u64 {
                    value["statistics"][key]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or_else(|| panic!("statistics.{key} in {value}"))
                };
                return Duration::from_millis(ms("endTime") - ms("startTime"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn fetch_all(&self, job: &str, max_results: Option<u32>) -> Paging {
        let start = Instant::now();
        let mut paging = Paging {
            rows: 0,
            pages: 0,
            bytes: 0,
            elapsed: Duration::ZERO,
        };
        let mut token: Option<String> = None;
        loop {
            let mut path = format!(
                "/bigquery/v2/projects/demo/queries/{job}?formatOptions.useInt64Timestamp=true"
            );
            if let Some(n) = max_results {
                path.push_str(&format!("&maxResults={n}"));
            }
            if let Some(token) = &token {
                path.push_str("&pageToken=");
                path.push_str(token);
            }
            let (status, body) = self.http("GET", &path, "");
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            let page: Page = serde_json::from_slice(&body).expect("a page");
            assert!(page.job_complete);
            paging.rows += page.rows.len() as u64;
            paging.pages += 1;
            paging.bytes += body.len() as u64;
            match page.page_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        paging.elapsed = start.elapsed();
        paging
    }

    /// One HTTP/1.1 request on a fresh connection: (status, body).
    fn http(&self, method: &str, path: &str, body: &str) -> (u16, Vec<u8>) {
        self.http_as(Some(&self.token), method, path, body)
    }

    /// One request with the given bearer token, or none.
    fn http_as(&self, token: Option<&str>, method: &str, path: &str, body: &str) -> (u16, Vec<u8>) {
        let authorization =
            token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{authorization}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        stream.write_all(request.as_bytes()).expect("send");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("receive");
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP response");
        let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        let mut body = response[split + 4..].to_vec();
        if head.contains("transfer-encoding: chunked") {
            body = dechunk(&body);
        }
        (status, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .expect("a chunk size");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
    out
}
