use serde_json::json;

use super::*;

fn job(id: &str, principal: &str, created_ms: i64) -> JobRecord {
    JobRecord {
        project_id: "demo".into(),
        job_id: id.into(),
        location: "US".into(),
        principal: principal.into(),
        state: JobState::Running,
        request_id: None,
        warehouse_key: format!("wk-{id}"),
        configuration: json!({"query": {"query": "SELECT 1"}}),
        statistics: None,
        error: None,
        created_ms,
        started_ms: Some(created_ms),
        ended_ms: None,
        max_rows: Some(1000),
        admitted_by: vec!["agents".into()],
        admitted_groups: vec!["ci".into()],
        request: Some(json!({"version": 1, "query": {"sql": "SELECT 1"}})),
    }
}

/// An audit event of `kind` for job `job`, written by `instance`.
fn event(kind: &str, job: &str, instance: &str, at_ms: i64) -> crate::AuditEvent {
    crate::AuditEvent {
        at_ms,
        kind: kind.into(),
        principal: "iss#alice".into(),
        request_id: job.into(),
        instance: instance.into(),
        session: "s".into(),
        detail: json!({"job": job}),
    }
}

fn won(transition: JobTransition) -> bool {
    matches!(transition, JobTransition::Won { .. })
}

async fn store() -> SqliteStore {
    SqliteStore::open_url("sqlite::memory:").await.unwrap()
}

#[tokio::test]
async fn a_job_round_trips_and_updates() {
    let store = store().await;
    let mut j = job("a", "alice", 1);
    store.insert_job(&j).await.unwrap();
    assert_eq!(store.get_job("demo", "a").await.unwrap(), Some(j.clone()));

    j.state = JobState::Done;
    j.statistics = Some(json!({"totalBytesProcessed": "10"}));
    j.error = Some(json!({"reason": "stopped"}));
    j.ended_ms = Some(5);
    assert!(won(store.finish_job(&j, &[], &[]).await.unwrap()));
    assert_eq!(store.get_job("demo", "a").await.unwrap(), Some(j.clone()));
    // A finished job stays as it was finished.
    let mut late = j.clone();
    late.error = None;
    late.statistics = Some(json!({"totalBytesProcessed": "99"}));
    assert!(!won(store.finish_job(&late, &[], &[]).await.unwrap()));
    assert_eq!(store.get_job("demo", "a").await.unwrap(), Some(j));
    assert_eq!(store.get_job("demo", "missing").await.unwrap(), None);
    assert_eq!(store.get_job("other", "a").await.unwrap(), None);
}

/// Several callers settle one job at once (the watcher, a polling caller,
/// a cancel): exactly one finishes it.
#[tokio::test]
async fn of_concurrent_finishes_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let first = std::sync::Arc::new(SqliteStore::open(&path).await.unwrap());
    first.insert_job(&job("race", "alice", 1)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        // Half through a second connection pool, as another process would.
        let store = if i % 2 == 0 {
            first.clone()
        } else {
            std::sync::Arc::new(SqliteStore::open(&path).await.unwrap())
        };
        tasks.push(tokio::spawn(async move {
            let mut j = job("race", "alice", 1);
            j.state = JobState::Done;
            j.error = Some(json!({"reason": "stopped", "message": format!("by {i}")}));
            // Each settler would count the job: only the winner's counts.
            let usage = crate::UsageAdd {
                budget: "daily".into(),
                key: "alice".into(),
                period: "2026-12-03".into(),
                bytes: 1000,
                rows: 3,
            };
            let finished = event("query.finished", "race", &format!("settler-{i}"), i);
            store.finish_job(&j, &[usage], &[finished]).await.unwrap()
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        if let JobTransition::Won { events } = task.await.unwrap() {
            winners.push(events);
        }
    }
    assert_eq!(winners.len(), 1);
    let events = first.audit_events(0, 100).await.unwrap();
    assert_eq!(
        events.len(),
        1,
        "only the settler that won recorded its end"
    );
    assert_eq!(events[0].event.instance, winners[0][0].event.instance);
    assert_eq!(
        first.usage("daily", "alice", "2026-12-03").await.unwrap(),
        crate::Usage {
            bytes: 1000,
            rows: 3
        },
        "counted once, by the one settler that finished the job"
    );
}

#[tokio::test]
async fn a_reused_job_id_is_a_duplicate() {
    let store = store().await;
    store.insert_job(&job("a", "alice", 1)).await.unwrap();
    let err = store.insert_job(&job("a", "bob", 2)).await.unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
}

#[tokio::test]
async fn a_request_id_finds_its_job() {
    let store = store().await;
    let mut j = job("a", "alice", 1);
    j.request_id = Some("req-1".into());
    store.insert_job(&j).await.unwrap();
    let found = store.find_job_by_request_id("demo", "req-1").await.unwrap();
    assert_eq!(found.map(|j| j.job_id), Some("a".into()));
    assert_eq!(
        store.find_job_by_request_id("demo", "req-2").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn jobs_are_listed_per_principal_newest_first_in_pages() {
    let store = store().await;
    for i in 0..5 {
        store
            .insert_job(&job(&format!("a{i}"), "alice", i))
            .await
            .unwrap();
    }
    store.insert_job(&job("b0", "bob", 10)).await.unwrap();

    let first = store.list_jobs("demo", "alice", 3, None).await.unwrap();
    let ids: Vec<_> = first.jobs.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(ids, ["a4", "a3", "a2"]);
    let token = first.next_page_token.expect("a second page");
    let second = store
        .list_jobs("demo", "alice", 3, Some(&token))
        .await
        .unwrap();
    let ids: Vec<_> = second.jobs.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(ids, ["a1", "a0"]);
    assert_eq!(second.next_page_token, None);

    let err = store
        .list_jobs("demo", "alice", 3, Some("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidPageToken));
}

#[tokio::test]
async fn jobs_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.db");
    SqliteStore::open(&path)
        .await
        .unwrap()
        .insert_job(&job("a", "alice", 1))
        .await
        .unwrap();
    let reopened = SqliteStore::open(&path).await.unwrap();
    assert!(reopened.get_job("demo", "a").await.unwrap().is_some());
}

#[tokio::test]
async fn concurrent_audit_appends_form_one_verifiable_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(&dir.path().join("a.db")).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let event = crate::AuditEvent {
                at_ms: i,
                kind: "request".into(),
                principal: format!("iss#p{}", i % 3),
                request_id: format!("r{i}"),
                instance: "test".into(),
                session: format!("s{}", i % 3),
                detail: serde_json::json!({"i": i}),
            };
            store.append_audit(&event).await.unwrap()
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let first = store.audit_events(0, 25).await.unwrap();
    let rest = store.audit_events(25, 100).await.unwrap();
    assert_eq!((first.len(), rest.len()), (25, 15));
    let all: Vec<_> = first.into_iter().chain(rest).collect();
    assert_eq!(crate::audit::verify(&all, 1, crate::audit::GENESIS), Ok(40));
    let ids: std::collections::BTreeSet<_> =
        all.iter().map(|r| r.event.request_id.clone()).collect();
    assert_eq!(ids.len(), 40);
}

#[tokio::test]
async fn sessions_checkpoints_pages_and_retention() {
    use crate::audit::{CheckpointKey, GENESIS, check_checkpoints, verify};
    let store = store().await;
    for i in 0..6 {
        let event = crate::AuditEvent {
            at_ms: 1_000 * (i + 1),
            kind: if i % 2 == 0 {
                "query.started"
            } else {
                "request"
            }
            .into(),
            principal: "iss#agent".into(),
            request_id: format!("r{i}"),
            instance: "test".into(),
            session: if i < 4 { "run-1" } else { "run-2" }.into(),
            detail: serde_json::json!({"status": if i == 3 { 403 } else { 200 }}),
        };
        match i {
            1 => {
                store
                    .append_audit_recorded(&event, Some("{\"rows\":[]}"))
                    .await
            }
            5 => {
                store
                    .append_audit_recorded(&event, Some("{\"rows\":[1]}"))
                    .await
            }
            _ => store.append_audit(&event).await,
        }
        .unwrap();
    }
    let sessions = store.audit_sessions(0, 10).await.unwrap();
    let summary: Vec<_> = sessions
        .iter()
        .map(|s| (s.session.as_str(), s.events, s.queries, s.refused))
        .collect();
    assert_eq!(summary, [("run-2", 2, 1, 0), ("run-1", 4, 2, 1)]);
    let of_one = store.audit_session_events("run-1", 0, 100).await.unwrap();
    assert_eq!(of_one.len(), 4);

    assert_eq!(
        store.recorded_page(2).await.unwrap().as_deref(),
        Some("{\"rows\":[]}")
    );

    let key = CheckpointKey::from_pkcs8(&CheckpointKey::generate().unwrap()).unwrap();
    let (head, hash) = store.audit_head().await.unwrap().unwrap();
    assert_eq!(head, 6);
    let all = store.audit_events(0, 100).await.unwrap();
    store
        .append_checkpoint(&key.sign(4, &all[3].hash, 4_500))
        .await
        .unwrap();
    store
        .append_checkpoint(&key.sign(6, &hash, 9_000))
        .await
        .unwrap();
    // Twice the same checkpoint is one.
    store
        .append_checkpoint(&key.sign(6, &hash, 9_001))
        .await
        .unwrap();
    assert_eq!(store.audit_checkpoints().await.unwrap().len(), 2);

    // Retention at 5 000 ms: pages before it, events before the checkpoint
    // signed before it (event 4).
    let pruned = store.prune_audit(5_000).await.unwrap();
    assert_eq!((pruned.events, pruned.pages), (3, 1));
    assert_eq!(store.recorded_page(2).await.unwrap(), None);
    assert!(store.recorded_page(6).await.unwrap().is_some());
    let left = store.audit_events(0, 100).await.unwrap();
    assert_eq!(left.first().map(|r| r.seq), Some(4));
    assert_eq!(verify(&left, 4, &left[0].prev_hash), Ok(3));
    let checkpoints = store.audit_checkpoints().await.unwrap();
    let signed = check_checkpoints(&checkpoints, &key.public_key(), 4, 6, |seq| {
        left.iter().find(|r| r.seq == seq).map(|r| r.hash.clone())
    })
    .unwrap();
    assert_eq!(signed.through, Some((6, 9_000)));
    // Appends go on from the last event.
    let next = store
        .append_audit(&crate::AuditEvent {
            at_ms: 10_000,
            kind: "request".into(),
            principal: String::new(),
            request_id: "r7".into(),
            instance: "test".into(),
            session: String::new(),
            detail: serde_json::json!({}),
        })
        .await
        .unwrap();
    assert_eq!((next.seq, next.prev_hash.as_str()), (7, hash.as_str()));
    assert_ne!(next.prev_hash, GENESIS);
}

#[tokio::test]
async fn racing_starts_run_a_job_once_and_record_one_write_ahead_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(&dir.path().join("s.db")).await.unwrap());
    let mut pending = job("j1", "iss#alice", 1);
    pending.state = JobState::Pending;
    pending.started_ms = None;
    store.insert_job(&pending).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let instance = format!("replica-{i}");
            let write_ahead = [
                event("token.minted", "j1", &instance, i),
                event("query.started", "j1", &instance, i),
            ];
            store
                .start_job("demo", "j1", 100 + i, &write_ahead)
                .await
                .unwrap()
        }));
    }
    let mut won = Vec::new();
    for task in tasks {
        if let JobTransition::Won { events } = task.await.unwrap() {
            won.push(events);
        }
    }
    assert_eq!(won.len(), 1, "exactly one caller starts the job");
    let events = store.audit_events(0, 100).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.event.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["token.minted", "query.started"],
        "the losers wrote no event"
    );
    assert!(
        events
            .iter()
            .all(|e| e.event.instance == won[0][0].event.instance)
    );
    let stored = store.get_job("demo", "j1").await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Running);
    assert_eq!(stored.started_ms, Some(100 + events[0].event.at_ms));
    // A started job is not started again, with or without an event.
    assert!(matches!(
        store.start_job("demo", "j1", 500, &[]).await.unwrap(),
        JobTransition::Lost
    ));
}
