//! One issuer's signing keys, fetched lazily, swapped whole, refreshed when
//! old, and refetched (rate-limited) when a token names an unknown `kid`.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::keys::{KeySet, SigningKey};

/// Unknown `kid`s trigger at most one refetch per this interval per issuer, so
/// a stream of made-up key ids cannot turn the gateway into a load generator
/// against the identity provider.
pub(crate) const UNKNOWN_KID_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// After a failed fetch, stale keys are served this long before trying again.
const STALE_RETRY_INTERVAL: Duration = Duration::from_secs(30);
/// After a failed first fetch, requests fail at once for this long.
const INITIAL_RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// Why no key could be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyLookupError {
    /// The keys could not be fetched (and there were none to fall back on).
    Unavailable,
    /// The keys are current and hold no key with that `kid`.
    NotFound,
}

#[derive(Debug)]
struct Snapshot {
    keys: KeySet,
    fetched_at: Instant,
    generation: u64,
}

#[derive(Debug, Default)]
struct FetchState {
    generation: u64,
    last_unknown_kid_fetch: Option<Instant>,
    last_failure: Option<Instant>,
}

/// The key cache of one issuer.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    current: RwLock<Option<Arc<Snapshot>>>,
    /// Held while fetching, so concurrent misses share one fetch.
    fetch: tokio::sync::Mutex<FetchState>,
}

impl KeyCache {
    /// The key for `kid`. `fetch` is called only when the keys must be
    /// (re)loaded; its error is logged by the caller.
    pub(crate) async fn key<F, Fut>(
        &self,
        kid: &str,
        refresh_every: Duration,
        fetch: F,
    ) -> Result<SigningKey, KeyLookupError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<KeySet, String>>,
    {
        let snapshot = match self.snapshot() {
            None => self.first_fetch(&fetch).await?,
            Some(s) if s.fetched_at.elapsed() >= refresh_every => {
                self.refresh_stale(s, &fetch).await
            }
            Some(s) => s,
        };
        if let Some(key) = snapshot.keys.keys.get(kid) {
            return Ok(key.clone());
        }
        let snapshot = self.refetch_for_unknown_kid(&snapshot, &fetch).await?;
        snapshot
            .keys
            .keys
            .get(kid)
            .cloned()
            .ok_or(KeyLookupError::NotFound)
    }

    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn install(&self, state: &mut FetchState, keys: KeySet) -> Arc<Snapshot> {
        state.generation += 1;
        state.last_failure = None;
        let snapshot = Arc::new(Snapshot {
            keys,
            fetched_at: Instant::now(),
            generation: state.generation,
        });
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(snapshot.clone());
        snapshot
    }

    async fn first_fetch<F, Fut>(&self, fetch: &F) -> Result<Arc<Snapshot>, KeyLookupError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<KeySet, String>>,
    {
        let mut state = self.fetch.lock().await;
        if let Some(snapshot) = self.snapshot() {
            return Ok(snapshot);
        }
        if state
            .last_failure
            .is_some_and(|t| t.elapsed() < INITIAL_RETRY_INTERVAL)
        {
            return Err(KeyLookupError::Unavailable);
        }
        match fetch().await {
            Ok(keys) => Ok(self.install(&mut state, keys)),
            Err(_) => {
                state.last_failure = Some(Instant::now());
                Err(KeyLookupError::Unavailable)
            }
        }
    }

    /// Refreshes old keys; while another request is already refreshing, or
    /// after a failed refresh, the old keys keep serving.
    async fn refresh_stale<F, Fut>(&self, stale: Arc<Snapshot>, fetch: &F) -> Arc<Snapshot>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<KeySet, String>>,
    {
        let Ok(mut state) = self.fetch.try_lock() else {
            return stale;
        };
        if state.generation != stale.generation
            || state
                .last_failure
                .is_some_and(|t| t.elapsed() < STALE_RETRY_INTERVAL)
        {
            return self.snapshot().unwrap_or(stale);
        }
        match fetch().await {
            Ok(keys) => self.install(&mut state, keys),
            Err(_) => {
                state.last_failure = Some(Instant::now());
                stale
            }
        }
    }

    async fn refetch_for_unknown_kid<F, Fut>(
        &self,
        seen: &Arc<Snapshot>,
        fetch: &F,
    ) -> Result<Arc<Snapshot>, KeyLookupError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<KeySet, String>>,
    {
        let mut state = self.fetch.lock().await;
        let current = self.snapshot().unwrap_or_else(|| seen.clone());
        if current.generation != seen.generation {
            // Someone fetched while this request waited: use their keys.
            return Ok(current);
        }
        if state
            .last_unknown_kid_fetch
            .is_some_and(|t| t.elapsed() < UNKNOWN_KID_REFETCH_INTERVAL)
        {
            return Ok(current);
        }
        state.last_unknown_kid_fetch = Some(Instant::now());
        match fetch().await {
            Ok(keys) => Ok(self.install(&mut state, keys)),
            Err(_) => {
                state.last_failure = Some(Instant::now());
                Err(KeyLookupError::Unavailable)
            }
        }
    }
}

#[cfg(test)]
mod tests;
