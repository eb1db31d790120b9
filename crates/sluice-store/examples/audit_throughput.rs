//! How many audit events per second the SQLite store takes, against a
//! baseline of the same number of job records inserted (one write
//! transaction each, like an append) in the same run, on the same disk.
//!
//!     cargo run -p sluice-store --example audit_throughput [EVENTS] [WRITERS]
//!
//! Each writer is a task appending one event at a time, as concurrent
//! requests do; appends are serialized (the chain is one line).

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use sluice_store::{AuditEvent, JobRecord, JobState, SqliteStore, Store};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let writers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("bench.db"))
            .await
            .expect("the store opens"),
    );
    let per_writer = events / writers;

    let started = Instant::now();
    run(writers, |w| {
        let store = store.clone();
        async move {
            for i in 0..per_writer {
                store.insert_job(&job(w, i)).await.expect("insert");
            }
        }
    })
    .await;
    let jobs_per_s = (per_writer * writers) as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    run(writers, |w| {
        let store = store.clone();
        async move {
            for i in 0..per_writer {
                store.append_audit(&event(w, i)).await.expect("append");
            }
        }
    })
    .await;
    let events_per_s = (per_writer * writers) as f64 / started.elapsed().as_secs_f64();

    println!("| writers | audit events/s | job inserts/s (baseline) | events / inserts |");
    println!("|---|---|---|---|");
    println!(
        "| {writers} | {events_per_s:.0} | {jobs_per_s:.0} | {:.2} |",
        events_per_s / jobs_per_s
    );
}

async fn run<F, Fut>(writers: usize, task: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let handles: Vec<_> = (0..writers).map(|w| tokio::spawn(task(w))).collect();
    for handle in handles {
        handle.await.expect("a writer");
    }
}

/// An event of a typical size: a query's request event.
fn event(writer: usize, i: usize) -> AuditEvent {
    AuditEvent {
        at_ms: 1_700_000_000_000 + i as i64,
        kind: "request".into(),
        principal: "https://token.actions.githubusercontent.com#repo:acme/etl".into(),
        request_id: format!("r-{writer}-{i}"),
        instance: "sluice-bench".into(),
        session: format!("run-{writer:016x}"),
        detail: json!({
            "method": "jobs.query",
            "status": 200,
            "duration_ms": 12,
            "sql": "SELECT customer_id, ssn FROM demo.shop.customers ORDER BY customer_id LIMIT 3",
            "tables": ["demo.shop.customers"],
            "decision": {"verdict": "Allow", "rule": "policy agents", "policy": "agents"},
            "bytes_estimated": 123_456,
            "job": format!("job_{writer}_{i}"),
            "claims": {"repository": "acme/etl", "run_id": "4242", "run_attempt": "1"},
        }),
    }
}

fn job(writer: usize, i: usize) -> JobRecord {
    JobRecord {
        project_id: "demo".into(),
        job_id: format!("job_{writer}_{i}"),
        location: "US".into(),
        principal: "https://token.actions.githubusercontent.com#repo:acme/etl".into(),
        state: JobState::Running,
        request_id: None,
        warehouse_key: format!("wk-{writer}-{i}"),
        configuration: json!({"query": {"query": "SELECT customer_id, ssn FROM demo.shop.customers"}}),
        statistics: None,
        error: None,
        created_ms: 1_700_000_000_000,
        started_ms: Some(1_700_000_000_000),
        ended_ms: None,
        max_rows: Some(1000),
        admitted_by: vec!["agents".into()],
        admitted_groups: vec!["ci".into()],
        request: Some(
            json!({"version": 1, "query": {"sql": "SELECT customer_id, ssn FROM demo.shop.customers"}}),
        ),
    }
}
