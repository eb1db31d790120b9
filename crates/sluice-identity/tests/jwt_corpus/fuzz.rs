//! Bounded fuzzing of bearer-token verification. The seeds are every token
//! the corpus builds (valid ones and attacks) and tokens of the development
//! issuer; mutations flip, cut, repeat and splice them. Each mutated input
//! is also encoded as the header, then as the claims, of a valid token, so
//! the JSON read before any signature is checked meets arbitrary bytes. The
//! verifier must never panic, and must refuse every token unless it is
//! byte for byte one that verified as a seed.
//!
//! `SLUICE_FUZZ_SECONDS=600 cargo test -p sluice-identity --test jwt_corpus
//! fuzz -- --nocapture` runs longer; `SLUICE_FUZZ_SEED=N` replays a printed
//! seed.

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::world::{CaseConfig, Corpus, Keys, World};

const DICTIONARY: &[&[u8]] = &[
    b".",
    b"..",
    b"=",
    b"==",
    b"+",
    b"/",
    b"-",
    b"_",
    b" ",
    b"\t",
    b"\0",
    b"Bearer ",
    // base64url of JSON fragments: `{"alg":"none"`, `{"alg":"HS256"`,
    // `{"kid":"../`, `"iss":"`, `"exp":`, `"aud":[`
    b"eyJhbGciOiJub25lIi",
    b"eyJhbGciOiJIUzI1NiIs",
    b"eyJraWQiOiIuLi8",
    b"ImlzcyI6I",
    b"ImV4cCI6",
    b"ImF1ZCI6Ww",
    b"e30",
    b"W10",
    b"bnVsbA",
    "é".as_bytes(),
    b"\xff",
];

#[test]
fn mutated_tokens_are_refused_unless_identical_to_a_valid_one() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let keys = Keys::generate();
    let dev_dir = tempfile::tempdir().unwrap();
    let config = CaseConfig {
        dev: true,
        b_algorithms: None,
    };
    let world = runtime.block_on(World::new(&keys, &config, dev_dir.path()));
    let verify = |token: &str| runtime.block_on(world.verifier.verify(token));

    let corpus: Corpus = serde_json::from_str(include_str!("../corpus/jwt_attacks.json"))
        .expect("the corpus parses");
    let mut seeds: Vec<String> = corpus.cases.iter().map(|c| world.build(&c.build)).collect();
    for (subject, groups) in [
        ("etl-agent", &["agents"][..]),
        ("root", &["admins", "agents"]),
        ("x", &[]),
    ] {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        seeds.push(world.dev.mint(subject, &groups, Duration::from_secs(3600)));
    }
    let valid: HashSet<String> = seeds
        .iter()
        .filter(|t| verify(t).is_ok())
        .cloned()
        .collect();
    assert!(
        valid.len() >= 5,
        "the corpus and the development issuer give valid seeds"
    );

    // A valid token's three parts (the corpus's first, issuer A's RS256),
    // for splicing arbitrary headers and claims.
    let template = seeds.iter().find(|t| valid.contains(*t)).unwrap().clone();
    let parts: Vec<&str> = template.split('.').collect();
    let check = |token: &str| match verify(token) {
        Ok(principal) => assert!(
            valid.contains(token),
            "a token no issuer signed was accepted as {principal:?}"
        ),
        // Refusals are shown and logged: short, whatever came in.
        Err(refusal) => assert!(
            refusal.reason.len() < 1024,
            "{} bytes",
            refusal.reason.len()
        ),
    };

    let seeds: Vec<Vec<u8>> = seeds.into_iter().map(String::into_bytes).collect();
    let report = sluice_fuzz::run(
        "bearer tokens",
        &seeds,
        DICTIONARY,
        Duration::from_secs(5),
        |input| {
            check(&String::from_utf8_lossy(input));
            let encoded = URL_SAFE_NO_PAD.encode(input);
            check(&format!("{encoded}.{}.{}", parts[1], parts[2]));
            check(&format!("{}.{encoded}.{}", parts[0], parts[2]));
        },
    );
    assert!(report.cases as usize > seeds.len(), "{report:?}");
}
