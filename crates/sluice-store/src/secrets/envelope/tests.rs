use super::*;

fn sealed(master: &MasterKey, name: &str, version: i64, plaintext: &[u8]) -> SealedSecret {
    seal(master, name, version, plaintext).unwrap()
}

fn assert_corrupt(result: Result<Zeroizing<Vec<u8>>, SecretError>, name: &str, version: i64) {
    match result {
        Err(SecretError::Corrupt {
            name: n,
            version: v,
        }) => {
            assert_eq!((n.as_str(), v), (name, version));
        }
        Err(other) => panic!("expected Corrupt, got {other:?}"),
        Ok(_) => panic!("expected Corrupt, but the record opened"),
    }
}

#[test]
fn a_sealed_secret_opens_to_its_plaintext_and_holds_none_of_it() {
    let master = MasterKey::generate();
    let plaintext = b"{\"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIE...\"}";
    let s = sealed(&master, "bq-key", 1, plaintext);
    assert_eq!(s.master_key_id, master.id());
    assert_eq!(s.wrapped_key.len(), NONCE_LEN + DATA_KEY_LEN + TAG_LEN);
    assert_eq!(s.ciphertext.len(), NONCE_LEN + plaintext.len() + TAG_LEN);
    assert!(
        !s.ciphertext
            .windows(8)
            .any(|w| plaintext.windows(8).any(|p| p == w))
    );
    assert_eq!(open(&master, &s).unwrap().as_slice(), plaintext);
}

#[test]
fn sealing_twice_uses_fresh_data_keys_and_nonces() {
    let master = MasterKey::generate();
    let a = sealed(&master, "bq-key", 1, b"same plaintext");
    let b = sealed(&master, "bq-key", 1, b"same plaintext");
    assert_ne!(a.wrapped_key, b.wrapped_key);
    assert_ne!(a.ciphertext, b.ciphertext);
    assert_ne!(a.ciphertext[..NONCE_LEN], b.ciphertext[..NONCE_LEN]);
}

#[test]
fn an_empty_secret_round_trips() {
    let master = MasterKey::generate();
    let s = sealed(&master, "empty", 1, b"");
    assert!(open(&master, &s).unwrap().is_empty());
}

#[test]
fn ciphertexts_swapped_between_names_do_not_open() {
    let master = MasterKey::generate();
    let a = sealed(&master, "alpha", 1, b"secret of alpha");
    let b = sealed(&master, "beta", 1, b"secret of beta");

    // b's whole record presented as alpha's.
    let moved = SealedSecret {
        name: "alpha".into(),
        ..b.clone()
    };
    assert_corrupt(open(&master, &moved), "alpha", 1);

    // alpha's data key with beta's ciphertext, and the other way round.
    let mixed = SealedSecret {
        ciphertext: b.ciphertext.clone(),
        ..a.clone()
    };
    assert_corrupt(open(&master, &mixed), "alpha", 1);
    let mixed = SealedSecret {
        wrapped_key: a.wrapped_key.clone(),
        ..b.clone()
    };
    assert_corrupt(open(&master, &mixed), "beta", 1);
}

#[test]
fn ciphertexts_swapped_between_versions_do_not_open() {
    let master = MasterKey::generate();
    let v1 = sealed(&master, "bq-key", 1, b"first key");
    let v2 = sealed(&master, "bq-key", 2, b"second key");

    let relabelled = SealedSecret {
        version: 2,
        ..v1.clone()
    };
    assert_corrupt(open(&master, &relabelled), "bq-key", 2);
    let mixed = SealedSecret {
        ciphertext: v1.ciphertext.clone(),
        ..v2.clone()
    };
    assert_corrupt(open(&master, &mixed), "bq-key", 2);
}

#[test]
fn a_wrapped_key_cannot_be_opened_as_a_secret() {
    // The purpose labels keep the two kinds of ciphertext apart: under the
    // same key and name, a wrapped data key is not a valid secret.
    let master = MasterKey::generate();
    let s = sealed(&master, "bq-key", 1, b"payload");
    let aad = associated_data(SECRET_LABEL, "bq-key", 1);
    assert!(decrypt(master.bytes(), &aad, &s.wrapped_key).is_none());
    let aad = associated_data(DATA_KEY_LABEL, "bq-key", 1);
    assert!(decrypt(master.bytes(), &aad, &s.wrapped_key).is_some());
}

#[test]
fn any_flipped_bit_in_ciphertext_or_wrapped_key_is_corrupt() {
    let master = MasterKey::generate();
    let s = sealed(&master, "bq-key", 3, b"a service account key");
    // Nonce, body and tag of both fields.
    for index in [0, NONCE_LEN + 2, s.ciphertext.len() - 1] {
        let mut tampered = s.clone();
        tampered.ciphertext[index] ^= 0x01;
        assert_corrupt(open(&master, &tampered), "bq-key", 3);
    }
    for index in [0, NONCE_LEN + 5, s.wrapped_key.len() - 1] {
        let mut tampered = s.clone();
        tampered.wrapped_key[index] ^= 0x80;
        assert_corrupt(open(&master, &tampered), "bq-key", 3);
    }
}

#[test]
fn truncated_or_empty_records_are_corrupt() {
    let master = MasterKey::generate();
    let s = sealed(&master, "bq-key", 1, b"a service account key");
    let mut short = s.clone();
    short.ciphertext.truncate(NONCE_LEN + TAG_LEN - 1);
    assert_corrupt(open(&master, &short), "bq-key", 1);
    let mut empty = s.clone();
    empty.wrapped_key.clear();
    assert_corrupt(open(&master, &empty), "bq-key", 1);
}

#[test]
fn a_wrong_master_key_is_named_not_reported_as_corruption() {
    let right = MasterKey::generate();
    let wrong = MasterKey::generate();
    let s = sealed(&right, "bq-key", 1, b"payload");
    let err = open(&wrong, &s).unwrap_err();
    match &err {
        SecretError::WrongMasterKey {
            name,
            sealed_with,
            given,
        } => {
            assert_eq!(name, "bq-key");
            assert_eq!(sealed_with, &right.id());
            assert_eq!(given, &wrong.id());
        }
        other => panic!("expected WrongMasterKey, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&right.id()), "{message}");
    assert!(message.contains(&wrong.id()), "{message}");
    assert!(message.contains("SLUICE_MASTER_KEY"), "{message}");
    assert!(message.contains("master_key_file"), "{message}");

    // A record whose id was edited to match the wrong key still fails its
    // integrity check.
    let relabelled = SealedSecret {
        master_key_id: wrong.id(),
        ..s
    };
    assert_corrupt(open(&wrong, &relabelled), "bq-key", 1);
}

#[test]
fn rewrap_moves_the_data_key_and_keeps_the_ciphertext() {
    let old = MasterKey::generate();
    let new = MasterKey::generate();
    let s = sealed(&old, "bq-key", 4, b"payload");
    let r = rewrap(&old, &new, &s).unwrap();
    assert_eq!(r.ciphertext, s.ciphertext);
    assert_eq!(
        (r.name.as_str(), r.version, r.created_ms),
        ("bq-key", 4, s.created_ms)
    );
    assert_eq!(r.master_key_id, new.id());
    assert_ne!(r.wrapped_key, s.wrapped_key);
    assert_eq!(open(&new, &r).unwrap().as_slice(), b"payload");
    assert!(matches!(
        open(&old, &r),
        Err(SecretError::WrongMasterKey { .. })
    ));
    // Re-wrapping needs the key the record is under.
    assert!(matches!(
        rewrap(&new, &old, &s),
        Err(SecretError::WrongMasterKey { .. })
    ));
}

#[test]
fn names_follow_the_naming_rule() {
    for good in ["bq-key", "a", "prod.sa_reader-2", &"x".repeat(128)] {
        check_name(good).unwrap();
    }
    for bad in [
        "",
        "a b",
        "a/b",
        "caf\u{e9}",
        "a\0b",
        "a:b",
        &"x".repeat(129),
    ] {
        let err = check_name(bad).unwrap_err();
        assert!(
            matches!(err, SecretError::InvalidName(_)),
            "{bad:?}: {err:?}"
        );
        assert!(err.to_string().contains("1 to 128 characters"), "{err}");
    }
    let master = MasterKey::generate();
    assert!(matches!(
        seal(&master, "no spaces", 1, b"x"),
        Err(SecretError::InvalidName(_))
    ));
}

#[test]
fn a_long_invalid_name_is_not_repeated_in_the_error() {
    // Someone who pastes a key where the name belongs must not see it
    // echoed into logs.
    let pasted =
        "{\"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\"}";
    let message = check_name(pasted).unwrap_err().to_string();
    assert!(!message.contains("MIIEvQ"), "{message}");
    assert!(message.contains("characters)"), "{message}");
}

#[test]
fn debug_of_a_sealed_secret_shows_lengths_not_bytes() {
    let master = MasterKey::generate();
    let s = sealed(&master, "bq-key", 1, b"payload");
    let debug = format!("{s:?}");
    assert!(debug.contains("ciphertext_len"), "{debug}");
    assert!(!debug.contains(&format!("{:?}", s.ciphertext)), "{debug}");
}
