//! Replays `corpus/jwt_attacks.json` against a verifier trusting two local
//! OIDC issuers (A and B), with an attacker's JWKS server on the side, then
//! fuzzes the verifier with mutations of the corpus's tokens.
//!
//! Every case starts fresh servers and a fresh verifier, so JWKS fetch counts
//! and the unknown-`kid` rate limit are per case.

#[path = "jwt_corpus/fuzz.rs"]
mod fuzz;
#[path = "jwt_corpus/world.rs"]
mod world;

use std::sync::Arc;

use serde_json::json;
use sluice_identity::Verifier;
use world::{Case, Corpus, Expect, Keys, World};

/// Verifies `token` `repeat` times concurrently; returns every outcome.
async fn verify_all(
    verifier: &Arc<Verifier>,
    token: &str,
    repeat: usize,
) -> Vec<Result<sluice_identity::Principal, sluice_identity::AuthError>> {
    let mut tasks = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let (verifier, token) = (verifier.clone(), token.to_string());
        tasks.push(tokio::spawn(async move { verifier.verify(&token).await }));
    }
    let mut outcomes = Vec::with_capacity(repeat);
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_attack_corpus() {
    let corpus: Corpus =
        serde_json::from_str(include_str!("corpus/jwt_attacks.json")).expect("the corpus parses");
    assert!(corpus.cases.len() >= 25);
    let keys = Keys::generate();
    let dev_dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for case in &corpus.cases {
        if let Err(why) = run_case(&keys, case, dev_dir.path()).await {
            failures.push(format!("{}: {why}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        corpus.cases.len(),
        failures.join("\n")
    );
}

async fn run_case(keys: &Keys, case: &Case, dev_dir: &std::path::Path) -> Result<(), String> {
    let world = World::new(keys, &case.config, dev_dir).await;
    for step in &case.before {
        if let Some(spec) = &step.verify {
            let outcome = world.verifier.verify(&world.build(spec)).await;
            if (outcome.is_ok()) != (step.expect == Some(Expect::Accept)) {
                return Err(format!("step {spec}: unexpected {outcome:?}"));
            }
        }
        if let Some(server) = &step.server {
            let server = world.server(server);
            if let Some(name) = &step.publish {
                server.jwks.lock().unwrap().push(keys.get(name).jwk());
            }
            if let Some(name) = &step.retire {
                let kid = keys.get(name).kid.clone();
                server
                    .jwks
                    .lock()
                    .unwrap()
                    .retain(|k| k["kid"] != json!(kid));
            }
        }
    }

    let token = world.build(&case.build);
    for outcome in verify_all(&world.verifier, &token, case.repeat).await {
        match (case.expect, outcome) {
            (Expect::Accept, Ok(principal)) => {
                if let Some(expected) = &case.principal
                    && (principal.name != expected.name || principal.groups != expected.groups)
                {
                    return Err(format!("accepted as {principal:?}"));
                }
                if principal.subject.is_empty() || principal.issuer.is_empty() {
                    return Err(format!("incomplete principal {principal:?}"));
                }
            }
            (Expect::Accept, Err(e)) => return Err(format!("refused: {e}")),
            (Expect::Reject, Ok(p)) => return Err(format!("ACCEPTED as {p:?}")),
            (Expect::Reject, Err(e)) => {
                let fragment = case.error_contains.as_deref().unwrap_or_default();
                if !e.reason.contains(fragment) {
                    return Err(format!(
                        "error {:?} does not contain {fragment:?}",
                        e.reason
                    ));
                }
                if let Some(reason) = &case.reason
                    && e.kind.as_str() != reason
                {
                    return Err(format!(
                        "refused as {:?}, not {reason}: {}",
                        e.kind, e.reason
                    ));
                }
                // The refusal never echoes the token or any part of it.
                for part in token.split('.').filter(|p| p.len() >= 12) {
                    if e.reason.contains(part) {
                        return Err(format!("error {:?} contains part of the token", e.reason));
                    }
                }
            }
        }
    }
    for (server, expected) in &case.jwks_fetches {
        let fetched = world.server(server).fetches();
        if fetched != *expected {
            return Err(format!(
                "server {server}: {fetched} JWKS fetches, expected {expected}"
            ));
        }
    }
    Ok(())
}
