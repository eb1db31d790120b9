//! Per-principal bounds on what one caller may hold at once: jobs running
//! and upstream tokens minted per minute. They apply to every warehouse
//! (the embedded one also has its own slots for queries as a whole), and
//! are counted in this replica's memory: several replicas each allow as
//! much.
//!
//! Going over a bound answers 429 `rateLimitExceeded`, the reason the
//! official clients retry with backoff: the request is fine, it only has
//! to wait for the caller's earlier work to finish.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::GatewayError;

/// Counts of one replica.
#[derive(Debug)]
pub struct Quota {
    max_running: usize,
    max_mints_per_minute: usize,
    max_waiting: usize,
    /// Each principal's running jobs: job key → when it may be forgotten
    /// (its start plus its longest run), in case nobody settles it.
    running: Mutex<HashMap<String, HashMap<String, Instant>>>,
    /// Each principal's jobs waiting for approval, the same way. They are
    /// not running: a principal with queries under review may still run
    /// others.
    waiting: Mutex<HashMap<String, HashMap<String, Instant>>>,
    /// Each principal's mints in the last minute.
    mints: Mutex<HashMap<String, VecDeque<Instant>>>,
}

const MINUTE: Duration = Duration::from_secs(60);

impl Quota {
    pub fn new(max_running: usize, max_mints_per_minute: usize) -> Self {
        Self {
            max_running,
            max_mints_per_minute,
            max_waiting: 100,
            running: Mutex::default(),
            waiting: Mutex::default(),
            mints: Mutex::default(),
        }
    }

    /// The most jobs one principal may have waiting for approval.
    pub fn with_max_waiting(mut self, max_waiting: usize) -> Self {
        self.max_waiting = max_waiting;
        self
    }

    /// Counts a job of `principal` as waiting for approval until
    /// [`Self::finished`] or [`Self::approved`] (or `longest` from now);
    /// refused when it already has as many waiting as allowed.
    pub fn start_waiting(
        &self,
        principal: &str,
        job: &str,
        longest: Duration,
    ) -> Result<(), GatewayError> {
        let now = Instant::now();
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let jobs = waiting.entry(principal.to_owned()).or_default();
        jobs.retain(|_, until| *until > now);
        if jobs.len() >= self.max_waiting {
            return Err(GatewayError::rate_limited(format!(
                "Rate limit exceeded: check limits.max_waiting_jobs_per_principal: {principal} already has {} queries \
                 waiting for a reviewer, the most Sluice allows one caller. Wait for a decision (or cancel one) and try again.",
                jobs.len()
            )));
        }
        jobs.insert(job.to_owned(), now + longest);
        Ok(())
    }

    /// A waiting job was approved and starts: it counts as running now,
    /// over the bound if need be (a reviewer let it run; refusing it here
    /// would undo that).
    pub fn approved(&self, principal: &str, job: &str, longest: Duration) {
        remove(&self.waiting, principal, job);
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running
            .entry(principal.to_owned())
            .or_default()
            .insert(job.to_owned(), Instant::now() + longest);
    }

    /// Counts a job of `principal` as running until [`Self::finished`] (or
    /// `longest` from now); refused when the principal already runs as
    /// many as allowed.
    pub fn start_job(
        &self,
        principal: &str,
        job: &str,
        longest: Duration,
    ) -> Result<(), GatewayError> {
        let now = Instant::now();
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let jobs = running.entry(principal.to_owned()).or_default();
        jobs.retain(|_, until| *until > now);
        if jobs.len() >= self.max_running {
            return Err(GatewayError::rate_limited(format!(
                "Rate limit exceeded: check limits.max_running_jobs_per_principal: {principal} already has {} jobs running, \
                 the most Sluice allows one caller. Wait for one to finish (or cancel one) and try again.",
                jobs.len()
            )));
        }
        jobs.insert(job.to_owned(), now + longest);
        Ok(())
    }

    /// The job is done (or never started, or refused while it waited).
    pub fn finished(&self, principal: &str, job: &str) {
        remove(&self.running, principal, job);
        remove(&self.waiting, principal, job);
    }

    /// Counts one upstream token minted for `principal`; refused when it
    /// has had as many as allowed in the last minute.
    pub fn mint(&self, principal: &str) -> Result<(), GatewayError> {
        let now = Instant::now();
        let mut mints = self.mints.lock().unwrap_or_else(|e| e.into_inner());
        mints.retain(|_, times| {
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= MINUTE)
            {
                times.pop_front();
            }
            !times.is_empty()
        });
        let times = mints.entry(principal.to_owned()).or_default();
        if times.len() >= self.max_mints_per_minute {
            return Err(GatewayError::rate_limited(format!(
                "Rate limit exceeded: check limits.max_mints_per_principal_per_minute: Sluice minted {} BigQuery credentials \
                 for {principal} in the last minute, the most it allows one caller. Try again in a minute.",
                times.len()
            )));
        }
        times.push_back(now);
        Ok(())
    }
}

/// Forgets `job` of `principal` in `map`.
fn remove(map: &Mutex<HashMap<String, HashMap<String, Instant>>>, principal: &str, job: &str) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(jobs) = map.get_mut(principal) {
        jobs.remove(job);
        if jobs.is_empty() {
            map.remove(principal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_jobs_are_bounded_per_principal_and_freed_when_done() {
        let quota = Quota::new(2, 100);
        let hour = Duration::from_secs(3600);
        quota.start_job("a", "j1", hour).unwrap();
        quota.start_job("a", "j2", hour).unwrap();
        let refused = quota.start_job("a", "j3", hour).unwrap_err();
        assert_eq!(refused.reason, "rateLimitExceeded");
        assert_eq!(refused.status.as_u16(), 429);
        assert!(refused.message.contains("max_running_jobs_per_principal"));
        // Another principal is not held up by a's jobs.
        quota.start_job("b", "j1", hour).unwrap();
        quota.finished("a", "j1");
        quota.start_job("a", "j3", hour).unwrap();
        // A job nobody settled is forgotten after its longest run.
        quota.start_job("c", "lost", Duration::ZERO).unwrap();
        quota.start_job("c", "next", hour).unwrap();
        quota.start_job("c", "third", hour).unwrap();
    }

    #[test]
    fn waiting_jobs_are_bounded_apart_and_run_once_approved() {
        let quota = Quota::new(1, 100).with_max_waiting(2);
        let hour = Duration::from_secs(3600);
        quota.start_waiting("a", "w1", hour).unwrap();
        quota.start_waiting("a", "w2", hour).unwrap();
        let err = quota.start_waiting("a", "w3", hour).unwrap_err();
        assert_eq!(err.reason, "rateLimitExceeded");
        assert!(
            err.message
                .contains("limits.max_waiting_jobs_per_principal")
        );
        // Waiting is not running: another job still runs.
        quota.start_job("a", "r1", hour).unwrap();
        // Approved, a waiting job runs even past the running bound, and
        // frees its waiting place.
        quota.approved("a", "w1", hour);
        quota.start_waiting("a", "w3", hour).unwrap();
        assert!(quota.start_job("a", "r2", hour).is_err());
        quota.finished("a", "w1");
        quota.finished("a", "r1");
        quota.start_job("a", "r2", hour).unwrap();
        // A refused waiting job frees its place too.
        quota.finished("a", "w2");
        quota.start_waiting("a", "w4", hour).unwrap();
    }

    #[test]
    fn mints_are_bounded_per_principal_per_minute() {
        let quota = Quota::new(10, 3);
        for _ in 0..3 {
            quota.mint("a").unwrap();
        }
        let refused = quota.mint("a").unwrap_err();
        assert_eq!(refused.reason, "rateLimitExceeded");
        assert!(
            refused
                .message
                .contains("max_mints_per_principal_per_minute")
        );
        quota.mint("b").unwrap();
    }
}
