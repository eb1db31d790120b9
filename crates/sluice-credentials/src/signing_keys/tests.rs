use super::*;
use crate::test_util::jwks_kids;

const NOW: u64 = 1_800_000_000;
const HOUR: u64 = 3600;

#[test]
fn a_new_ring_has_one_active_published_key() {
    let keys = SigningKeys::generate(NOW).unwrap();
    let kid = keys.active_kid(NOW).unwrap().to_owned();
    let jwks = keys.jwks(NOW);
    assert_eq!(jwks_kids(&jwks), std::slice::from_ref(&kid));
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    // Public halves only.
    assert!(key.get("d").is_none(), "{key}");
    assert_eq!(keys.describe(NOW)[0].state, KeyState::Active);
    assert_eq!(kid.len(), 43, "a base64url SHA-256 thumbprint");
}

#[test]
fn the_ring_survives_the_store_and_hides_its_keys_in_debug() {
    let keys = SigningKeys::generate(NOW)
        .unwrap()
        .rotate(NOW + 10, Duration::ZERO, false)
        .unwrap();
    let stored = keys.to_json().unwrap();
    let again = SigningKeys::from_json(&stored).unwrap();
    assert_eq!(again.describe(NOW + 10), keys.describe(NOW + 10));
    assert_eq!(again.jwks(NOW + 10), keys.jwks(NOW + 10));

    let text = std::str::from_utf8(&stored).unwrap();
    let value: Value = serde_json::from_str(text).unwrap();
    let private = value["keys"][0]["pkcs8"].as_str().unwrap();
    let shown = format!("{keys:?}");
    assert!(shown.contains("[redacted]"), "{shown}");
    assert!(!shown.contains(&private[40..72]), "{shown}");
}

#[test]
fn after_a_rotation_the_new_key_signs_and_the_old_one_stays_published_for_a_day() {
    let first = SigningKeys::generate(NOW).unwrap();
    let old = first.active_kid(NOW).unwrap().to_owned();
    let rotated = first.rotate(NOW + HOUR, Duration::ZERO, false).unwrap();
    let new = rotated.active_kid(NOW + HOUR).unwrap().to_owned();
    assert_ne!(old, new);

    let jwks = rotated.jwks(NOW + HOUR);
    assert_eq!(jwks_kids(&jwks), [new.clone(), old.clone()]);
    let states: Vec<KeyState> = rotated
        .describe(NOW + HOUR)
        .iter()
        .map(|k| k.state)
        .collect();
    let until = NOW + HOUR + RETIRED_KEYS_PUBLISHED_FOR.as_secs();
    assert_eq!(states, [KeyState::Active, KeyState::Retired { until }]);

    // A day later the old key is no longer published, and the next
    // rotation drops it from the store.
    assert_eq!(jwks_kids(&rotated.jwks(until)), std::slice::from_ref(&new));
    let next = rotated.rotate(until, Duration::ZERO, false).unwrap();
    let remaining: Vec<String> = next.describe(until).into_iter().map(|k| k.kid).collect();
    assert_eq!(remaining.len(), 2);
    assert!(remaining.contains(&new) && !remaining.contains(&old));
}

#[test]
fn a_delayed_key_is_published_first_and_signs_from_its_time() {
    let first = SigningKeys::generate(NOW).unwrap();
    let old = first.active_kid(NOW).unwrap().to_owned();
    let staged = first.rotate(NOW, Duration::from_secs(HOUR), false).unwrap();
    let states: Vec<KeyState> = staged.describe(NOW).iter().map(|k| k.state).collect();
    assert_eq!(states, [KeyState::Pending, KeyState::Active]);
    assert_eq!(staged.active_kid(NOW).unwrap(), old);
    assert_eq!(
        jwks_kids(&staged.jwks(NOW)).len(),
        2,
        "published before it signs"
    );
    assert_ne!(staged.active_kid(NOW + HOUR).unwrap(), old);
}

#[test]
fn dropping_the_previous_keys_unpublishes_them_at_once() {
    let first = SigningKeys::generate(NOW).unwrap();
    let fresh = first.rotate(NOW + 1, Duration::ZERO, true).unwrap();
    assert_eq!(jwks_kids(&fresh.jwks(NOW + 1)).len(), 1);
    assert_ne!(
        fresh.active_kid(NOW + 1).unwrap(),
        first.active_kid(NOW + 1).unwrap()
    );
    // Nothing would sign until the delay is over: refused.
    let error = first
        .rotate(NOW, Duration::from_secs(60), true)
        .unwrap_err();
    assert!(
        error.message.contains("nothing to sign"),
        "{}",
        error.message
    );
}

#[test]
fn damaged_rings_are_refused_without_quoting_them() {
    let keys = SigningKeys::generate(NOW).unwrap();
    let stored = keys.to_json().unwrap();
    let mut value: Value = serde_json::from_slice(&stored).unwrap();
    let private = value["keys"][0]["pkcs8"].as_str().unwrap().to_owned();

    let mut wrong_kid = value.clone();
    wrong_kid["keys"][0]["kid"] = json!("someone-elses");
    let mut bad_key = value.clone();
    bad_key["keys"][0]["pkcs8"] = json!(format!("{}AAAA", &private[..private.len() - 8]));
    value["format"] = json!("other/9");
    for (bytes, why) in [
        (b"not json".to_vec(), "not JSON"),
        (serde_json::to_vec(&value).unwrap(), "unknown format"),
        (serde_json::to_vec(&wrong_kid).unwrap(), "does not match"),
        (serde_json::to_vec(&bad_key).unwrap(), "private key"),
    ] {
        let error = SigningKeys::from_json(&bytes).unwrap_err();
        assert!(error.message.contains(why), "{}", error.message);
        assert!(error.message.contains(SIGNING_KEYS_SECRET));
        assert!(!error.message.contains(&private[..16]), "{}", error.message);
    }
}
