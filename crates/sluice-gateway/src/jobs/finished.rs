//! Finished jobs, remembered. A DONE job never changes again — every
//! transition out of DONE is refused by the store's conditional updates, on
//! every replica — so its record can be answered from memory: clients poll
//! `jobs.get` and `getQueryResults` on finished jobs constantly, and each
//! poll would otherwise be a store read. Ownership is still checked on
//! every request, against the caller of that request.
//!
//! Bounded by two generations: lookups read the current map, then the
//! previous one (moving a hit forward); when the current map is full it
//! becomes the previous one and the oldest generation is dropped. So at
//! most `2 × capacity` records are kept, and the jobs polled recently stay.
//!
//! Since the record never changes, neither does its `jobs.get` resource:
//! it is rendered once, on the first poll, and the same bytes answer every
//! poll after it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use sluice_store::{JobRecord, JobState};

type Key = (String, String);

/// A finished job's record and, once a poll asked for it, its resource.
#[derive(Debug)]
pub struct FinishedJob {
    pub record: JobRecord,
    resource: OnceLock<Bytes>,
}

impl FinishedJob {
    /// The job's resource as `render` encodes it, rendered on the first
    /// call only: the record is final, so the encoding is too.
    pub fn resource(&self, render: impl FnOnce(&JobRecord) -> Bytes) -> Bytes {
        self.resource.get_or_init(|| render(&self.record)).clone()
    }
}

#[derive(Debug, Default)]
struct Generations {
    current: HashMap<Key, Arc<FinishedJob>>,
    previous: HashMap<Key, Arc<FinishedJob>>,
}

/// A bounded memory of finished job records, keyed by project and job id.
#[derive(Debug)]
pub struct FinishedJobs {
    capacity: usize,
    maps: Mutex<Generations>,
}

/// How many finished job records one generation holds.
const KEPT: usize = 4096;

impl Default for FinishedJobs {
    fn default() -> Self {
        Self::new(KEPT)
    }
}

impl FinishedJobs {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            maps: Mutex::new(Generations::default()),
        }
    }

    /// The finished job, if it is remembered.
    pub fn get(&self, project_id: &str, job_id: &str) -> Option<Arc<FinishedJob>> {
        let key = (project_id.to_owned(), job_id.to_owned());
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(job) = maps.current.get(&key) {
            return Some(job.clone());
        }
        let job = maps.previous.remove(&key)?;
        Self::insert(&mut maps, self.capacity, key, job.clone());
        Some(job)
    }

    /// Remembers `job` if it is finished; an unfinished job may still
    /// change and is never kept.
    pub fn remember(&self, job: &JobRecord) {
        if job.state != JobState::Done {
            return;
        }
        let key = (job.project_id.clone(), job.job_id.clone());
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        let job = FinishedJob {
            record: job.clone(),
            resource: OnceLock::new(),
        };
        Self::insert(&mut maps, self.capacity, key, Arc::new(job));
    }

    fn insert(maps: &mut Generations, capacity: usize, key: Key, job: Arc<FinishedJob>) {
        if maps.current.len() >= capacity && !maps.current.contains_key(&key) {
            maps.previous = std::mem::take(&mut maps.current);
        }
        maps.current.insert(key, job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, state: JobState) -> JobRecord {
        JobRecord {
            project_id: "p".into(),
            job_id: id.into(),
            location: "US".into(),
            principal: "someone".into(),
            state,
            request_id: None,
            warehouse_key: format!("key-{id}"),
            configuration: serde_json::json!({}),
            statistics: None,
            error: None,
            created_ms: 0,
            started_ms: None,
            ended_ms: None,
            max_rows: None,
            admitted_by: vec!["policy".into()],
            admitted_groups: vec![],
            request: None,
        }
    }

    #[test]
    fn only_finished_jobs_are_remembered() {
        let finished = FinishedJobs::new(8);
        finished.remember(&job("pending", JobState::Pending));
        finished.remember(&job("running", JobState::Running));
        finished.remember(&job("done", JobState::Done));
        assert!(finished.get("p", "pending").is_none());
        assert!(finished.get("p", "running").is_none());
        assert_eq!(finished.get("p", "done").unwrap().record.job_id, "done");
        assert!(finished.get("other", "done").is_none());
    }

    #[test]
    fn memory_is_bounded_and_keeps_the_jobs_polled_recently() {
        let finished = FinishedJobs::new(2);
        for id in ["a", "b"] {
            finished.remember(&job(id, JobState::Done));
        }
        // "a" is polled: it moves forward as "c" and "d" arrive.
        finished.remember(&job("c", JobState::Done));
        assert!(finished.get("p", "a").is_some());
        finished.remember(&job("d", JobState::Done));
        finished.remember(&job("e", JobState::Done));
        assert!(
            finished.get("p", "b").is_none(),
            "the oldest generation is dropped"
        );
        assert!(finished.get("p", "a").is_some());
        let maps = finished.maps.lock().unwrap();
        assert!(maps.current.len() + maps.previous.len() <= 4);
    }

    #[test]
    fn a_finished_jobs_resource_is_rendered_once() {
        let finished = FinishedJobs::new(8);
        finished.remember(&job("done", JobState::Done));
        let renders = std::cell::Cell::new(0);
        let render = |job: &JobRecord| {
            renders.set(renders.get() + 1);
            Bytes::from(job.job_id.clone())
        };
        let first = finished.get("p", "done").unwrap().resource(render);
        let again = finished.get("p", "done").unwrap().resource(render);
        assert_eq!((first, again), (Bytes::from("done"), Bytes::from("done")));
        assert_eq!(renders.get(), 1);
    }
}
