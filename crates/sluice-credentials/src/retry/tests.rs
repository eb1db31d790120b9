use std::cell::Cell;
use std::time::Duration;

use tokio::time::Instant;

use super::*;

fn quick(deadline_ms: u64) -> Backoff {
    Backoff {
        initial: Duration::from_millis(5),
        max: Duration::from_millis(20),
        deadline: Duration::from_millis(deadline_ms),
    }
}

#[derive(Debug, PartialEq)]
enum Failure {
    Transient,
    Permanent,
}

#[test]
fn ceilings_double_up_to_the_maximum() {
    let backoff = quick(1000);
    assert_eq!(backoff.ceiling(0), Duration::from_millis(5));
    assert_eq!(backoff.ceiling(1), Duration::from_millis(10));
    assert_eq!(backoff.ceiling(2), Duration::from_millis(20));
    assert_eq!(backoff.ceiling(3), Duration::from_millis(20));
    assert_eq!(backoff.ceiling(200), Duration::from_millis(20));
}

#[test]
fn pauses_stay_below_their_ceiling_and_vary() {
    let backoff = quick(1000);
    let pauses: Vec<Duration> = (0..50).map(|_| backoff.pause(4)).collect();
    assert!(pauses.iter().all(|p| *p <= backoff.ceiling(4)));
    assert!(pauses.iter().any(|p| *p != pauses[0]), "{pauses:?}");
}

#[tokio::test]
async fn returns_the_first_success() {
    let attempts = Cell::new(0);
    let result: Result<u32, Failure> = with_retries(
        &quick(1000),
        || {
            attempts.set(attempts.get() + 1);
            let n = attempts.get();
            async move {
                if n < 3 {
                    Err(Failure::Transient)
                } else {
                    Ok(n)
                }
            }
        },
        |e| *e == Failure::Transient,
    )
    .await;
    assert_eq!(result, Ok(3));
    assert_eq!(attempts.get(), 3);
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let attempts = Cell::new(0);
    let result: Result<(), Failure> = with_retries(
        &quick(1000),
        || {
            attempts.set(attempts.get() + 1);
            async { Err(Failure::Permanent) }
        },
        |e| *e == Failure::Transient,
    )
    .await;
    assert_eq!(result, Err(Failure::Permanent));
    assert_eq!(attempts.get(), 1);
}

#[tokio::test]
async fn gives_up_before_the_deadline() {
    let attempts = Cell::new(0);
    let start = Instant::now();
    let result: Result<(), Failure> = with_retries(
        &quick(1000),
        || {
            attempts.set(attempts.get() + 1);
            async { Err(Failure::Transient) }
        },
        |e| *e == Failure::Transient,
    )
    .await;
    let elapsed = start.elapsed();
    assert_eq!(result, Err(Failure::Transient));
    // Pauses of at most 20 ms within a second: many attempts, even on a
    // loaded machine.
    assert!(attempts.get() > 1, "retried {} times", attempts.get());
    // The last pause ends before the deadline; allow for a slow scheduler.
    assert!(
        elapsed < Duration::from_millis(1000) + Duration::from_millis(1000),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_zero_deadline_allows_one_attempt() {
    let attempts = Cell::new(0);
    let _: Result<(), Failure> = with_retries(
        &quick(0),
        || {
            attempts.set(attempts.get() + 1);
            async { Err(Failure::Transient) }
        },
        |e| *e == Failure::Transient,
    )
    .await;
    assert_eq!(attempts.get(), 1);
}
