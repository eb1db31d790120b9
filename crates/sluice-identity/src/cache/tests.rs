use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::*;

/// A JWKS holding EC keys with the given kids (the key material is a fixed,
/// valid P-256 point; these tests only look keys up).
fn key_set(kids: &[&str]) -> KeySet {
    let keys: Vec<_> = kids
        .iter()
        .map(|kid| {
            json!({"kty": "EC", "crv": "P-256", "kid": kid,
                   "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
                   "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"})
        })
        .collect();
    KeySet::from_jwks(&json!({ "keys": keys })).unwrap()
}

/// A fake issuer whose published kids can change, counting fetches.
#[derive(Default)]
struct Issuer {
    kids: Mutex<Vec<&'static str>>,
    down: Mutex<bool>,
    fetches: AtomicUsize,
}

impl Issuer {
    fn publishing(kids: &[&'static str]) -> Arc<Issuer> {
        let issuer = Issuer::default();
        *issuer.kids.lock().unwrap() = kids.to_vec();
        Arc::new(issuer)
    }

    async fn fetch(self: Arc<Self>) -> Result<KeySet, String> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        if *self.down.lock().unwrap() {
            return Err("down".into());
        }
        Ok(key_set(&self.kids.lock().unwrap()))
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn fetches_lazily_once_and_shares_the_first_fetch() {
    let issuer = Issuer::publishing(&["a"]);
    let cache = Arc::new(KeyCache::default());
    assert_eq!(issuer.fetches(), 0);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (cache, issuer) = (cache.clone(), issuer.clone());
        tasks.push(tokio::spawn(async move {
            cache.key("a", HOUR, || issuer.clone().fetch()).await
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap().is_ok());
    }
    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    let issuer = Issuer::publishing(&["a"]);
    let cache = Arc::new(KeyCache::default());
    cache
        .key("a", HOUR, || issuer.clone().fetch())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (cache, issuer) = (cache.clone(), issuer.clone());
        tasks.push(tokio::spawn(async move {
            let kid = format!("made-up-{i}");
            cache.key(&kid, HOUR, || issuer.clone().fetch()).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap_err(), KeyLookupError::NotFound);
    }
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn rotation_in_and_out_takes_effect_on_refetch() {
    let issuer = Issuer::publishing(&["old"]);
    let cache = KeyCache::default();
    cache
        .key("old", HOUR, || issuer.clone().fetch())
        .await
        .unwrap();
    *issuer.kids.lock().unwrap() = vec!["new"];
    // The new kid is unknown: one refetch finds it, and drops the old key.
    cache
        .key("new", HOUR, || issuer.clone().fetch())
        .await
        .unwrap();
    assert_eq!(
        cache
            .key("old", HOUR, || issuer.clone().fetch())
            .await
            .unwrap_err(),
        KeyLookupError::NotFound
    );
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn stale_keys_serve_while_the_issuer_is_down() {
    let issuer = Issuer::publishing(&["a"]);
    let cache = KeyCache::default();
    cache
        .key("a", Duration::ZERO, || issuer.clone().fetch())
        .await
        .unwrap();
    *issuer.down.lock().unwrap() = true;
    for _ in 0..3 {
        cache
            .key("a", Duration::ZERO, || issuer.clone().fetch())
            .await
            .unwrap();
    }
    // One failed refresh, then the stale keys serve without retrying at once.
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn a_failed_first_fetch_fails_closed_without_hammering() {
    let issuer = Issuer::publishing(&["a"]);
    *issuer.down.lock().unwrap() = true;
    let cache = KeyCache::default();
    for _ in 0..3 {
        assert_eq!(
            cache
                .key("a", HOUR, || issuer.clone().fetch())
                .await
                .unwrap_err(),
            KeyLookupError::Unavailable
        );
    }
    assert_eq!(issuer.fetches(), 1);
}
