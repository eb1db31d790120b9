use super::*;

/// Strings that must not appear in anything printed about `key`: its
/// base64 (and any 8-character run of it) and its bytes in hex.
fn leaks(key: &MasterKey, printed: &str) -> Vec<String> {
    let base64 = key.to_base64();
    let hex: String = key.bytes().iter().map(|b| format!("{b:02x}")).collect();
    let mut found = Vec::new();
    for window in base64.as_bytes().windows(8) {
        let window = std::str::from_utf8(window).unwrap();
        if printed.contains(window) {
            found.push(format!("base64 run {window:?}"));
        }
    }
    for window in hex.as_bytes().windows(16) {
        let window = std::str::from_utf8(window).unwrap();
        if printed.contains(window) {
            found.push(format!("hex run {window:?}"));
        }
    }
    found
}

#[test]
fn a_key_round_trips_through_base64() {
    let key = MasterKey::generate();
    let text = key.to_base64();
    assert_eq!(text.len(), 44);
    let again = MasterKey::from_base64(&format!("  {}\n", text.as_str())).unwrap();
    assert_eq!(again.bytes(), key.bytes());
    assert_eq!(again.id(), key.id());
}

#[test]
fn ids_are_16_hex_characters_and_differ_between_keys() {
    let a = MasterKey::generate();
    let b = MasterKey::generate();
    for id in [a.id(), b.id()] {
        assert_eq!(id.len(), 16);
        assert!(
            id.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
    assert_ne!(a.id(), b.id());
    assert_eq!(a.id(), a.id());
}

#[test]
fn the_id_of_a_key_never_changes() {
    // Stores record this id; a change to how it is computed would make
    // every existing store report the wrong master key.
    let zero = MasterKey::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
    assert_eq!(zero.id(), "bba7c6eb5796782f");
    // It is a labelled hash, not the bare SHA-256 of the key.
    let plain = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &[0u8; 32]);
    let plain: String = plain.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_ne!(zero.id(), plain);
}

#[test]
fn bad_base64_is_refused_without_repeating_it() {
    let key = MasterKey::generate();
    let text = key.to_base64();
    let mut one_char_off = text.to_string();
    one_char_off.replace_range(5..6, "*");
    let cases = [
        String::new(),
        "   ".to_owned(),
        one_char_off,
        text[..40].to_owned(),
        format!("{}AAAA", &text[..43]),
        "c2hvcnQ=".to_owned(),
    ];
    for case in &cases {
        let err = MasterKey::from_base64(case).unwrap_err();
        assert!(matches!(err, SecretError::BadMasterKey(_)), "{err:?}");
        let printed = format!("{err} {err:?}");
        assert!(
            printed.contains("32 bytes") || printed.contains("exactly 32"),
            "{printed}"
        );
        assert!(leaks(&key, &printed).is_empty(), "{printed}");
        if case.trim().len() >= 8 {
            assert!(!printed.contains(case.trim()), "{printed}");
        }
    }
}

#[test]
fn the_environment_value_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let from_env = MasterKey::generate();
    let from_file = MasterKey::generate();
    let path = dir.path().join("master.key");
    std::fs::write(&path, format!("{}\n", from_file.to_base64().as_str())).unwrap();

    let loaded = MasterKey::load(Some(&from_env.to_base64()), Some(&path)).unwrap();
    assert_eq!(loaded.id(), from_env.id());
    let loaded = MasterKey::load(None, Some(&path)).unwrap();
    assert_eq!(loaded.id(), from_file.id());
    // A variable that is set but blank counts as not set.
    let loaded = MasterKey::load(Some("  "), Some(&path)).unwrap();
    assert_eq!(loaded.id(), from_file.id());
}

#[test]
fn no_key_at_all_says_how_to_create_one() {
    let err = MasterKey::load(None, None).unwrap_err();
    assert!(matches!(err, SecretError::NoMasterKey), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("SLUICE_MASTER_KEY"), "{message}");
    assert!(message.contains("master_key_file"), "{message}");
    assert!(message.contains("sluice secrets init-key"), "{message}");
}

#[test]
fn a_bad_key_names_its_source_but_not_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let short = &key.to_base64()[..20];

    let err = MasterKey::load(Some(short), None).unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("SLUICE_MASTER_KEY: "), "{message}");
    assert!(!message.contains(short), "{message}");

    let path = dir.path().join("master.key");
    std::fs::write(&path, short).unwrap();
    let message = MasterKey::load(None, Some(&path)).unwrap_err().to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(!message.contains(short), "{message}");

    let missing = dir.path().join("missing.key");
    let message = MasterKey::load(None, Some(&missing))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("cannot read the master key file"),
        "{message}"
    );
    assert!(message.contains("missing.key"), "{message}");
}

#[test]
fn debug_shows_the_id_and_nothing_of_the_key() {
    let key = MasterKey::generate();
    let debug = format!("{key:?} {key:#?}");
    assert!(debug.contains(&key.id()), "{debug}");
    assert!(leaks(&key, &debug).is_empty(), "{debug}");
    // The check above can fail: the key's own base64 is caught.
    assert!(!leaks(&key, &key.to_base64()).is_empty());
}
