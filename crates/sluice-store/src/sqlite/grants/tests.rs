use std::sync::Arc;

use crate::{GrantRecord, SqliteStore, Store, Usage};

fn grant(id: &str, holder: &str, start_ms: i64, expire_ms: i64) -> GrantRecord {
    GrantRecord {
        id: id.into(),
        holder: holder.into(),
        principal: "bob".into(),
        rule: "shop-access".into(),
        datasets: vec!["demo.shop".into()],
        tables: vec!["demo.ops.logs".into()],
        reason: "incident 42".into(),
        approved_by: "alice".into(),
        start_ms,
        expire_ms,
        revoked_ms: None,
        revoked_by: None,
    }
}

async fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("sluice.db"))
        .await
        .expect("open");
    (dir, Arc::new(store))
}

#[tokio::test]
async fn a_grant_is_recorded_once_and_read_back_whole() {
    let (_dir, store) = store().await;
    let first = grant("acc_1", "iss#bob", 1_000, 5_000);
    assert!(store.insert_grant(&first).await.unwrap());
    let mut again = first.clone();
    again.expire_ms = 99_000;
    assert!(
        !store.insert_grant(&again).await.unwrap(),
        "a retry changes nothing"
    );
    assert_eq!(store.get_grant("acc_1").await.unwrap(), Some(first));
    assert_eq!(store.get_grant("acc_2").await.unwrap(), None);
}

#[tokio::test]
async fn only_grants_in_force_are_active() {
    let (_dir, store) = store().await;
    store
        .insert_grant(&grant("acc_1", "iss#bob", 1_000, 5_000))
        .await
        .unwrap();
    store
        .insert_grant(&grant("acc_2", "iss#bob", 2_000, 9_000))
        .await
        .unwrap();
    store
        .insert_grant(&grant("acc_3", "iss#carol", 1_000, 9_000))
        .await
        .unwrap();
    let ids = |grants: Vec<GrantRecord>| grants.into_iter().map(|g| g.id).collect::<Vec<_>>();
    let active = store
        .list_grants(Some("iss#bob"), Some(4_000), 10)
        .await
        .unwrap();
    assert_eq!(ids(active), ["acc_2", "acc_1"]);
    // Expiry is exclusive.
    let later = store
        .list_grants(Some("iss#bob"), Some(5_000), 10)
        .await
        .unwrap();
    assert_eq!(ids(later), ["acc_2"]);
    let before = store
        .list_grants(Some("iss#bob"), Some(1_500), 10)
        .await
        .unwrap();
    assert_eq!(ids(before), ["acc_1"]);
    let everyone = store.list_grants(None, None, 10).await.unwrap();
    assert_eq!(everyone.len(), 3);

    assert!(store.revoke_grant("acc_2", "alice", 4_000).await.unwrap());
    assert!(
        !store.revoke_grant("acc_2", "alice", 4_001).await.unwrap(),
        "once"
    );
    assert!(
        !store.revoke_grant("acc_1", "alice", 6_000).await.unwrap(),
        "expired"
    );
    let active = store
        .list_grants(Some("iss#bob"), Some(4_500), 10)
        .await
        .unwrap();
    assert_eq!(ids(active), ["acc_1"]);
    let revoked = store.get_grant("acc_2").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_by.as_deref(), Some("alice"));
    assert!(!revoked.is_active(4_500));
}

#[tokio::test]
async fn usage_adds_up_per_budget_key_and_period_even_from_many_tasks() {
    let (_dir, store) = store().await;
    assert_eq!(
        store.usage("daily", "bob", "2026-12-03").await.unwrap(),
        Usage::default()
    );
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .add_usage("daily", "bob", "2026-12-03", 1_000, 2)
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    store
        .add_usage("daily", "bob", "2026-12-04", 7, 1)
        .await
        .unwrap();
    store
        .add_usage("daily", "carol", "2026-12-03", 5, 1)
        .await
        .unwrap();
    assert_eq!(
        store.usage("daily", "bob", "2026-12-03").await.unwrap(),
        Usage {
            bytes: 20_000,
            rows: 40
        }
    );
    assert_eq!(
        store
            .usage("daily", "bob", "2026-12-04")
            .await
            .unwrap()
            .bytes,
        7
    );
    store
        .add_usage("daily", "bob", "2026-12-03", u64::MAX, 0)
        .await
        .unwrap();
    assert_eq!(
        store
            .usage("daily", "bob", "2026-12-03")
            .await
            .unwrap()
            .bytes,
        i64::MAX as u64,
        "saturates instead of failing"
    );
}

#[tokio::test]
async fn an_expiry_is_claimed_once_across_racing_sweepers_and_never_for_a_revoked_grant() {
    let (_dir, store) = store().await;
    for (id, expire_ms) in [("acc_1", 5_000), ("acc_2", 6_000), ("acc_3", 9_000)] {
        store
            .insert_grant(&grant(id, "iss#bob", 1_000, expire_ms))
            .await
            .unwrap();
    }
    assert!(store.revoke_grant("acc_2", "alice", 4_000).await.unwrap());
    assert!(
        store
            .claim_expired_grants(4_999, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Two sweepers at once (two replicas over one store): one gets it.
    let (a, b) = tokio::join!(
        store.claim_expired_grants(7_000, 10),
        store.claim_expired_grants(7_000, 10)
    );
    let mut claimed: Vec<String> = a
        .unwrap()
        .into_iter()
        .chain(b.unwrap())
        .map(|g| g.id)
        .collect();
    claimed.sort();
    assert_eq!(claimed, ["acc_1"], "acc_2 was revoked, acc_3 is in force");
    // A claim whose event could not be written is given back, once.
    store.unclaim_expired_grant("acc_1").await.unwrap();
    let again = store.claim_expired_grants(7_000, 10).await.unwrap();
    assert_eq!(
        again.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
        ["acc_1"]
    );
    // A revoked grant is never given back to be announced as expired.
    store.unclaim_expired_grant("acc_2").await.unwrap();
    assert!(
        store
            .claim_expired_grants(7_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let later = store.claim_expired_grants(10_000, 10).await.unwrap();
    assert_eq!(
        later.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
        ["acc_3"]
    );
    assert!(
        store
            .claim_expired_grants(20_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
