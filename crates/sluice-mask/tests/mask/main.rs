//! The crate's integration tests: masking never leaks a value or a simple
//! transform of it, pseudonyms behave as keyed functions, and detectors
//! stay quiet on the demo's non-sensitive columns.

mod demo;
mod docs;
mod false_positives;
mod leakage;
mod rng;
