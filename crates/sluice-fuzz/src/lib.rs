//! A seeded mutation fuzzer for Sluice's tests, on stable Rust.
//!
//! Every input parser that faces the network (SQL analysis, request
//! bodies, bearer tokens) has a test that calls [`run`]: it starts from a
//! corpus of seeds, mutates them at the byte and token level, and hands
//! each case to a check that must neither panic nor hang. The run is
//! bounded by time, so the test command stays quick, and reproducible: the
//! seed of the random stream is printed, and `SLUICE_FUZZ_SEED` replays it.
//!
//! - `SLUICE_FUZZ_SECONDS=N` runs each target for N seconds (default: the
//!   target's own budget, a few seconds).
//! - `SLUICE_FUZZ_SEED=N` fixes the random stream.
//! - A case that runs longer than `SLUICE_FUZZ_CASE_SECONDS` (default 20)
//!   is a hang: its number is printed and the process aborts.
//!   `SLUICE_FUZZ_SHOW_CASE=N` with the same seed prints case N's input.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A small, fast pseudo-random stream (xorshift64*): enough to drive
/// mutations, and identical on every machine for one seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A stream started from `seed` (zero is replaced, xorshift needs a set bit).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// True once in `n` calls on average.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// How long each target runs: `SLUICE_FUZZ_SECONDS`, else `default`.
pub fn budget(default: Duration) -> Duration {
    std::env::var("SLUICE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(default)
}

/// The seed of this run: `SLUICE_FUZZ_SEED`, else the clock.
pub fn seed() -> u64 {
    env_u64("SLUICE_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    })
}

/// JSON's punctuation, the start of a dictionary for any JSON target:
/// `[JSON_PUNCTUATION, OWN_WORDS].concat()`.
pub const JSON_PUNCTUATION: &[&[u8]] = &[b"{", b"}", b"[", b"]", b",", b":", b"\""];

/// One mutation of `input`: byte flips, insertions, deletions, repeats of
/// a slice (to grow deep or long shapes), and splices of `dictionary`
/// entries (keywords, operators, JSON fragments) or of another seed.
pub fn mutate(rng: &mut Rng, input: &[u8], dictionary: &[&[u8]], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let at = rng.below(out.len() + 1);
        match rng.below(8) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.insert(at, rng.next_u64() as u8),
            2 if !out.is_empty() => {
                let len = 1 + rng.below(out.len().min(16));
                let start = rng.below(out.len() - len + 1);
                out.drain(start..start + len);
            }
            3 if !out.is_empty() => {
                // Repeat a slice many times: the way deep and long inputs arise.
                let len = 1 + rng.below(out.len().min(8));
                let start = rng.below(out.len() - len + 1);
                let piece = out[start..start + len].to_vec();
                let most = if rng.one_in(8) { 4096 } else { 16 };
                let times = 1 + rng.below(most);
                let grown: Vec<u8> = piece.iter().copied().cycle().take(len * times).collect();
                out.splice(start..start, grown);
            }
            4 | 5 if !dictionary.is_empty() => {
                let word = rng.pick(dictionary);
                out.splice(at..at, word.iter().copied());
            }
            6 if !seeds.is_empty() => {
                let other = rng.pick(seeds);
                let start = rng.below(other.len() + 1);
                let end = start + rng.below(other.len() - start + 1);
                out.splice(at..at, other[start..end].iter().copied());
            }
            _ => out.truncate(at),
        }
    }
    out
}

/// What a run did, for the test's output.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    /// Cases checked, seeds included.
    pub cases: u64,
    /// The seed of the random stream.
    pub seed: u64,
}

/// Fuzz `check` for the target's budget: every seed first, then
/// mutations of them. A panic in `check` fails the test after printing the
/// seed and the input (escaped), so the case can be replayed.
pub fn run(
    name: &str,
    seeds: &[Vec<u8>],
    dictionary: &[&[u8]],
    default_budget: Duration,
    mut check: impl FnMut(&[u8]),
) -> Report {
    let seed = seed();
    let budget = budget(default_budget);
    let show = env_u64("SLUICE_FUZZ_SHOW_CASE");
    let mut rng = Rng::new(seed);
    // Printed first, so a case that hangs can be replayed too.
    eprintln!("fuzz {name}: starting (SLUICE_FUZZ_SEED={seed})");
    let watchdog = Watchdog::start(name, seed);
    let started = Instant::now();
    let mut cases = 0u64;
    let mut current: Vec<u8> = Vec::new();
    let mut guard = FailureNote {
        name,
        seed,
        input: &mut current,
        armed: true,
    };
    let mut one = |input: &mut Vec<u8>, cases: &mut u64| {
        *cases += 1;
        if show == Some(*cases) {
            eprintln!(
                "fuzz {name}: case {cases} ({} bytes): {}",
                input.len(),
                escaped(input)
            );
        }
        watchdog.begin(*cases);
        check(input);
    };
    for input in seeds {
        guard.input.clone_from(input);
        one(guard.input, &mut cases);
    }
    let empty = [Vec::new()];
    let pool = if seeds.is_empty() { &empty[..] } else { seeds };
    while started.elapsed() < budget {
        let base = rng.pick(pool).clone();
        // Stack a few generations so inputs drift away from the seeds.
        let mut input = base;
        for _ in 0..1 + rng.below(3) {
            input = mutate(&mut rng, &input, dictionary, pool);
            if input.len() > 2 * 1024 * 1024 {
                input.truncate(2 * 1024 * 1024);
            }
        }
        *guard.input = input;
        one(guard.input, &mut cases);
    }
    guard.armed = false;
    watchdog.stop();
    eprintln!(
        "fuzz {name}: {cases} cases in {:.1} s (SLUICE_FUZZ_SEED={seed})",
        started.elapsed().as_secs_f64()
    );
    Report { cases, seed }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn escaped(input: &[u8]) -> String {
    input
        .iter()
        .take(4096)
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect()
}

/// Turns a hang into a failure: a thread that watches the case number and
/// aborts, naming the case, when one case outlives its time.
struct Watchdog {
    case: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(name: &str, seed: u64) -> Self {
        let limit = std::env::var("SLUICE_FUZZ_CASE_SECONDS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(Duration::from_secs(20));
        let case = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let (case, done, name) = (case.clone(), done.clone(), name.to_owned());
            std::thread::spawn(move || {
                let mut seen = (0, Instant::now());
                while !done.load(Ordering::Relaxed) {
                    std::thread::park_timeout(Duration::from_millis(200));
                    let now = case.load(Ordering::Relaxed);
                    if now != seen.0 {
                        seen = (now, Instant::now());
                    } else if now != 0 && seen.1.elapsed() > limit && !done.load(Ordering::Relaxed)
                    {
                        eprintln!(
                            "fuzz {name}: case {now} has run for over {limit:?}: a hang. \
                             Print it with SLUICE_FUZZ_SEED={seed} SLUICE_FUZZ_SHOW_CASE={now}"
                        );
                        std::process::abort();
                    }
                }
            })
        };
        Self {
            case,
            done,
            thread: Some(thread),
        }
    }

    fn begin(&self, case: u64) {
        self.case.store(case, Ordering::Relaxed);
    }

    fn stop(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// Prints the failing case when a check panics (on unwind).
struct FailureNote<'a> {
    name: &'a str,
    seed: u64,
    input: &'a mut Vec<u8>,
    armed: bool,
}

impl Drop for FailureNote<'_> {
    fn drop(&mut self) {
        if self.armed && std::thread::panicking() {
            let shown = escaped(self.input);
            eprintln!(
                "fuzz {}: failing case (SLUICE_FUZZ_SEED={}, {} bytes): {shown}",
                self.name,
                self.seed,
                self.input.len()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_gives_one_stream() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a[0], a[1]);
    }

    #[test]
    fn mutations_grow_repeats_and_splice_words() {
        let mut rng = Rng::new(42);
        let mut longest = 0;
        let mut spliced = false;
        for _ in 0..2000 {
            let out = mutate(&mut rng, b"SELECT 1+1", &[b"UNION ALL"], &[]);
            longest = longest.max(out.len());
            spliced |= out.windows(9).any(|w| w == b"UNION ALL");
        }
        assert!(
            longest > 1000,
            "repeats should grow inputs, longest {longest}"
        );
        assert!(spliced);
    }
}
