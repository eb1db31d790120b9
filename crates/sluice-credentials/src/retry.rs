//! Retries of transient failures: exponential backoff with full jitter, all
//! within one deadline. Used by the token flows here and by the BigQuery
//! REST client.

use std::time::Duration;

use tokio::time::Instant;

/// How long to wait between attempts, and for how long to keep trying.
///
/// The pause before retry `n` (counting from 0) is drawn uniformly from
/// `0..=min(max, initial · 2ⁿ)` ("full jitter"), so callers that failed
/// together do not come back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first pause.
    pub initial: Duration,
    /// The largest ceiling any pause may have.
    pub max: Duration,
    /// The time allowed for all attempts together, counted from the first.
    /// No retry starts if its pause would end past it.
    pub deadline: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(2),
            deadline: Duration::from_secs(20),
        }
    }
}

impl Backoff {
    /// The ceiling of the pause before retry `retry` (counting from 0).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// A pause drawn at random below [`Backoff::ceiling`].
    pub fn pause(&self, retry: u32) -> Duration {
        self.ceiling(retry).mul_f64(unit_random())
    }
}

/// A failed attempt: whether another one may succeed, and the error to
/// report if none does. `|a: &Attempt<_>| a.transient` is the matching
/// `is_transient` of [`with_retries`].
#[derive(Debug)]
pub struct Attempt<E> {
    pub transient: bool,
    pub error: E,
}

impl<E> Attempt<E> {
    /// A failure another attempt may not have.
    pub fn transient(error: E) -> Self {
        Self {
            transient: true,
            error,
        }
    }
}

/// Runs `op` until it succeeds, fails with an error `is_transient` rejects,
/// or the next pause would end past `backoff.deadline`; the last error is
/// returned then. Each attempt should bound its own duration (a request
/// timeout), since a running attempt is not interrupted.
pub async fn with_retries<T, E, F, Fut>(
    backoff: &Backoff,
    mut op: F,
    is_transient: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let mut retry = 0u32;
    loop {
        let error = match op().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if !is_transient(&error) {
            return Err(error);
        }
        let pause = backoff.pause(retry);
        if start.elapsed() + pause >= backoff.deadline {
            return Err(error);
        }
        tokio::time::sleep(pause).await;
        retry = retry.saturating_add(1);
    }
}

/// A number in `[0, 1)` from the system's cryptographic generator; jitter
/// needs no more than that, and the gateway already links it.
fn unit_random() -> f64 {
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // Without randomness, waiting the full ceiling is the safe choice.
        return 1.0;
    }
    // The top 53 bits fill an f64 mantissa exactly.
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests;
