use std::sync::Arc;

use serde_json::json;

use crate::{ApprovalRecord, ApprovalState, SqliteStore, Store, StoreError, Vote};

fn approval(id: &str, job_id: &str, created_ms: i64) -> ApprovalRecord {
    ApprovalRecord {
        id: id.into(),
        project_id: "demo".into(),
        job_id: job_id.into(),
        principal: "alice".into(),
        requester: "https://idp.example#alice".into(),
        state: ApprovalState::Pending,
        rule: "large-scan".into(),
        reviewers: vec!["group:data-owners".into(), "bob@example.com".into()],
        min_approvals: 2,
        justification_required: true,
        details: json!({
            "sql": "SELECT * FROM sales.orders",
            "estimate": {"bytes": 5_000_000_000_u64},
            "limits": {"max_rows": 1000},
            "ci": {"repository": "acme/etl", "ref": "refs/heads/main"},
            "why": "scans more than 1 GB",
        }),
        created_ms,
        expire_ms: created_ms + 900_000,
        closed_ms: None,
        closed_by: None,
        reason: None,
        votes: Vec::new(),
    }
}

fn vote(voter: &str, approve: bool, at_ms: i64) -> Vote {
    Vote {
        voter: voter.into(),
        voter_id: format!("https://idp.example#{voter}"),
        approve,
        reason: format!("{voter} checked it"),
        at_ms,
    }
}

fn ids(approvals: &[ApprovalRecord]) -> Vec<&str> {
    approvals.iter().map(|a| a.id.as_str()).collect()
}

/// A store in a SQLite file of its own; the directory lives as long as the
/// returned guard.
async fn file_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("sluice.db"))
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test]
async fn an_approval_round_trips_with_its_details_reviewers_and_votes() {
    let (_dir, store) = file_store().await;
    let mut a = approval("apr_1", "job_1", 10);
    store.insert_approval(&a).await.unwrap();
    assert_eq!(store.get_approval("apr_1").await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.approval_for_job("demo", "job_1").await.unwrap(),
        Some(a.clone())
    );

    // Votes come back by time, then voter id.
    assert!(
        store
            .add_vote("apr_1", &vote("carol", true, 30))
            .await
            .unwrap()
    );
    assert!(
        store
            .add_vote("apr_1", &vote("bob", false, 20))
            .await
            .unwrap()
    );
    assert!(
        store
            .add_vote("apr_1", &vote("alan", true, 30))
            .await
            .unwrap()
    );
    a.votes = vec![
        vote("bob", false, 20),
        vote("alan", true, 30),
        vote("carol", true, 30),
    ];
    assert_eq!(store.get_approval("apr_1").await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.approval_for_job("demo", "job_1").await.unwrap(),
        Some(a)
    );

    assert_eq!(store.get_approval("apr_missing").await.unwrap(), None);
    assert_eq!(
        store.approval_for_job("other", "job_1").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn inserting_ignores_the_votes_of_the_record() {
    let (_dir, store) = file_store().await;
    let mut a = approval("apr_1", "job_1", 10);
    a.votes = vec![vote("bob", true, 11)];
    store.insert_approval(&a).await.unwrap();
    let stored = store.get_approval("apr_1").await.unwrap().unwrap();
    assert_eq!(stored.votes, []);
}

#[tokio::test]
async fn a_reused_id_or_a_second_approval_for_a_job_is_a_duplicate() {
    let (_dir, store) = file_store().await;
    store
        .insert_approval(&approval("apr_1", "job_1", 10))
        .await
        .unwrap();
    let same_id = store
        .insert_approval(&approval("apr_1", "job_2", 11))
        .await
        .unwrap_err();
    assert!(matches!(same_id, StoreError::Duplicate(_)), "{same_id:?}");
    let same_job = store
        .insert_approval(&approval("apr_2", "job_1", 11))
        .await
        .unwrap_err();
    assert!(matches!(same_job, StoreError::Duplicate(_)), "{same_job:?}");
    // The same job id in another project is another job.
    let mut elsewhere = approval("apr_3", "job_1", 12);
    elsewhere.project_id = "other".into();
    store.insert_approval(&elsewhere).await.unwrap();
}

#[tokio::test]
async fn a_voter_votes_once_and_the_first_vote_stands() {
    let (_dir, store) = file_store().await;
    store
        .insert_approval(&approval("apr_1", "job_1", 10))
        .await
        .unwrap();
    assert!(
        store
            .add_vote("apr_1", &vote("bob", true, 20))
            .await
            .unwrap()
    );
    let mut again = vote("bob", false, 21);
    again.voter = "Bob (renamed)".into();
    assert!(!store.add_vote("apr_1", &again).await.unwrap());
    let stored = store.get_approval("apr_1").await.unwrap().unwrap();
    assert_eq!(stored.votes, [vote("bob", true, 20)]);
}

#[tokio::test]
async fn a_closed_or_missing_approval_takes_no_votes() {
    let (_dir, store) = file_store().await;
    store
        .insert_approval(&approval("apr_1", "job_1", 10))
        .await
        .unwrap();
    assert!(
        store
            .close_approval("apr_1", ApprovalState::Withdrawn, "alice", "cancelled", 15)
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_vote("apr_1", &vote("bob", true, 20))
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_vote("apr_missing", &vote("bob", true, 20))
            .await
            .unwrap()
    );
    let stored = store.get_approval("apr_1").await.unwrap().unwrap();
    assert_eq!(stored.votes, []);
}

/// Reviewers, the expiry sweep and the requester close one request at
/// once: exactly one closes it, and the record is the winner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_closes_exactly_one_wins() {
    let (dir, store) = file_store().await;
    let first = Arc::new(store);
    first
        .insert_approval(&approval("apr_race", "job_1", 10))
        .await
        .unwrap();
    let states = [
        ApprovalState::Approved,
        ApprovalState::Denied,
        ApprovalState::Expired,
        ApprovalState::Withdrawn,
    ];
    let mut tasks = Vec::new();
    for i in 0..8 {
        // Half through a second connection pool, as another replica would.
        let store = if i % 2 == 0 {
            first.clone()
        } else {
            Arc::new(
                SqliteStore::open(&dir.path().join("sluice.db"))
                    .await
                    .unwrap(),
            )
        };
        let state = states[i % states.len()];
        tasks.push(tokio::spawn(async move {
            let closer = format!("closer-{i}");
            let won = store
                .close_approval("apr_race", state, &closer, "raced", 20 + i as i64)
                .await
                .unwrap();
            won.then_some((state, closer, 20 + i as i64))
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let (state, closer, closed_ms) = winners.pop().unwrap();
    let stored = first.get_approval("apr_race").await.unwrap().unwrap();
    assert_eq!(stored.state, state);
    assert_eq!(stored.closed_by, Some(closer));
    assert_eq!(stored.closed_ms, Some(closed_ms));
    assert_eq!(stored.reason.as_deref(), Some("raced"));
}

#[tokio::test]
async fn closing_to_pending_is_refused_and_changes_nothing() {
    let (_dir, store) = file_store().await;
    let a = approval("apr_1", "job_1", 10);
    store.insert_approval(&a).await.unwrap();
    let err = store
        .close_approval("apr_1", ApprovalState::Pending, "bob", "oops", 20)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.get_approval("apr_1").await.unwrap(), Some(a));
    assert!(
        !store
            .close_approval("apr_missing", ApprovalState::Denied, "bob", "no", 20)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn approvals_are_listed_by_state_newest_first() {
    let (_dir, store) = file_store().await;
    for (i, id) in ["apr_a", "apr_b", "apr_c", "apr_d"].iter().enumerate() {
        store
            .insert_approval(&approval(id, &format!("job_{i}"), i as i64))
            .await
            .unwrap();
    }
    store
        .close_approval("apr_b", ApprovalState::Approved, "bob", "looks fine", 9)
        .await
        .unwrap();
    store
        .add_vote("apr_c", &vote("bob", true, 5))
        .await
        .unwrap();

    let all = store.list_approvals(None, 10).await.unwrap();
    assert_eq!(all[1].votes, [vote("bob", true, 5)]);
    assert_eq!(ids(&all), ["apr_d", "apr_c", "apr_b", "apr_a"]);
    let pending = store
        .list_approvals(Some(ApprovalState::Pending), 2)
        .await
        .unwrap();
    assert_eq!(ids(&pending), ["apr_d", "apr_c"]);
    let approved = store
        .list_approvals(Some(ApprovalState::Approved), 10)
        .await
        .unwrap();
    assert_eq!(ids(&approved), ["apr_b"]);
    let denied = store
        .list_approvals(Some(ApprovalState::Denied), 10)
        .await
        .unwrap();
    assert_eq!(denied, []);
}

#[tokio::test]
async fn only_pending_approvals_past_their_expiry_are_expired() {
    let (_dir, store) = file_store().await;
    let due = |id: &str, job: &str, expire_ms: i64| ApprovalRecord {
        expire_ms,
        ..approval(id, job, 0)
    };
    for a in [
        due("apr_late", "job_1", 200),
        due("apr_due", "job_2", 100),
        due("apr_now", "job_3", 150),
        due("apr_closed", "job_4", 50),
        due("apr_early", "job_5", 120),
    ] {
        store.insert_approval(&a).await.unwrap();
    }
    store
        .close_approval("apr_closed", ApprovalState::Denied, "bob", "no", 60)
        .await
        .unwrap();

    let expired = store.expired_approvals(150, 10).await.unwrap();
    assert_eq!(ids(&expired), ["apr_due", "apr_early", "apr_now"]);
    let first = store.expired_approvals(150, 1).await.unwrap();
    assert_eq!(ids(&first), ["apr_due"]);
    assert_eq!(store.expired_approvals(99, 10).await.unwrap(), []);
}

#[tokio::test]
async fn approvals_and_votes_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.db");
    let mut a = approval("apr_1", "job_1", 10);
    let store = SqliteStore::open(&path).await.unwrap();
    store.insert_approval(&a).await.unwrap();
    store
        .add_vote("apr_1", &vote("bob", true, 20))
        .await
        .unwrap();
    store
        .close_approval("apr_1", ApprovalState::Approved, "bob", "approved", 25)
        .await
        .unwrap();
    store.close().await.unwrap();
    drop(store);

    let reopened = SqliteStore::open(&path).await.unwrap();
    a.state = ApprovalState::Approved;
    a.closed_ms = Some(25);
    a.closed_by = Some("bob".into());
    a.reason = Some("approved".into());
    a.votes = vec![vote("bob", true, 20)];
    assert_eq!(reopened.get_approval("apr_1").await.unwrap(), Some(a));
}
