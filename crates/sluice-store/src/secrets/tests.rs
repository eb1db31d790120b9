use std::collections::HashSet;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::SqliteStore;

/// A service-account key file shaped like the ones Google issues, with a
/// private key body of fresh random bytes.
fn service_account_key(client: &str) -> Vec<u8> {
    let mut der = [0u8; 1190];
    aws_lc_rs::rand::fill(&mut der).unwrap();
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let json = serde_json::json!({
        "type": "service_account",
        "project_id": "acme-prod",
        "private_key_id": "5c1f0e3a9b7d2e4f6a8c0b1d3e5f7a9c2b4d6e8f",
        "private_key": pem,
        "client_email": format!("{client}@acme-prod.iam.gserviceaccount.com"),
        "client_id": "104729384756102938475",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": format!(
            "https://www.googleapis.com/robot/v1/metadata/x509/{client}%40acme-prod.iam.gserviceaccount.com"
        ),
        "universe_domain": "googleapis.com"
    });
    serde_json::to_vec_pretty(&json).unwrap()
}

/// A copy of `key` (the type is deliberately not `Clone`).
fn copy(key: &MasterKey) -> MasterKey {
    MasterKey::from_base64(&key.to_base64()).unwrap()
}

async fn memory_store() -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open_url("sqlite::memory:").await.unwrap())
}

/// A store in a file of its own directory, so every file SQLite writes
/// for it can be read back.
async fn file_store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("sluice.db"))
        .await
        .unwrap();
    (dir, Arc::new(store))
}

/// A store holding "bq-key" (`b"payload"`) under the first key, and a
/// second, unrelated key.
async fn one_secret_and_two_keys() -> (Arc<SqliteStore>, MasterKey, MasterKey) {
    let store = memory_store().await;
    let right = MasterKey::generate();
    secrets(&store, &right)
        .put("bq-key", b"payload")
        .await
        .unwrap();
    (store, right, MasterKey::generate())
}

fn secrets(store: &Arc<SqliteStore>, master: &MasterKey) -> SecretStore {
    SecretStore::new(store.clone(), copy(master))
}

/// The labels of the `needles` that occur (as any 16-byte run) in a file
/// under `dir`, with the file's name.
fn found_in_files(dir: &Path, needles: &[(&str, &[u8])]) -> Vec<String> {
    let mut windows: Vec<(&[u8], &str)> = Vec::new();
    for (label, needle) in needles {
        assert!(needle.len() >= 16, "{label} is shorter than a window");
        windows.extend(needle.windows(16).map(|w| (w, *label)));
    }
    let wanted: HashSet<&[u8]> = windows.iter().map(|(w, _)| *w).collect();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for window in bytes.windows(16) {
            if wanted.contains(window) {
                let label = windows.iter().find(|(w, _)| *w == window).unwrap().1;
                let hit = format!("{label} in {file}");
                if !found.contains(&hit) {
                    found.push(hit);
                }
            }
        }
    }
    found
}

#[tokio::test]
async fn a_service_account_key_never_reaches_the_store_files_in_the_clear() {
    let (dir, sqlite) = file_store().await;
    let master = MasterKey::generate();
    let master_base64 = master.to_base64();
    let master_bytes = STANDARD.decode(master_base64.as_bytes()).unwrap();
    let secrets = secrets(&sqlite, &master);

    // The name shares no 16-byte run with the key file, so it can serve as
    // a marker of what the store wrote.
    let name = "warehouse-upstream-credentials";
    let first = service_account_key("agent-reader");
    let second = service_account_key("agent-reader");
    secrets.put(name, &first).await.unwrap();
    secrets.put(name, &second).await.unwrap();
    assert_eq!(secrets.get(name).await.unwrap().as_slice(), second);

    let forbidden: [(&str, &[u8]); 4] = [
        ("the first key file", &first),
        ("the second key file", &second),
        ("the master key", &master_bytes),
        ("the master key in base64", master_base64.as_bytes()),
    ];
    // The scan sees what the store wrote: the secret's name is there.
    let marker = [("the secret's name", name.as_bytes())];

    // While the store is open the rows sit in the write-ahead log.
    assert_eq!(found_in_files(dir.path(), &forbidden), Vec::<String>::new());
    assert!(!found_in_files(dir.path(), &marker).is_empty());

    sqlite.close().await.unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(!files.is_empty());
    assert_eq!(found_in_files(dir.path(), &forbidden), Vec::<String>::new());
    assert!(!found_in_files(dir.path(), &marker).is_empty());
}

#[tokio::test]
async fn a_rotated_away_wrapped_key_does_not_stay_in_the_store_files() {
    let (dir, sqlite) = file_store().await;
    let old = MasterKey::generate();
    let new = MasterKey::generate();
    secrets(&sqlite, &old)
        .put("bq-key", &service_account_key("reader"))
        .await
        .unwrap();
    let before = sqlite.latest_secret("bq-key").await.unwrap().unwrap();
    let found = found_in_files(dir.path(), &[("wrapped key", &before.wrapped_key)]);
    assert!(
        !found.is_empty(),
        "the scan must see the stored wrapped key"
    );

    secrets(&sqlite, &old).rotate(&new).await.unwrap();
    let old_wrapped_key = [("the old wrapped key", &before.wrapped_key[NONCE_OFFSET..])];
    // Still open: the rotation itself emptied the write-ahead log.
    assert_eq!(
        found_in_files(dir.path(), &old_wrapped_key),
        Vec::<String>::new()
    );
    sqlite.close().await.unwrap();
    assert_eq!(
        found_in_files(dir.path(), &old_wrapped_key),
        Vec::<String>::new()
    );
}

/// Skips the nonce, which is short and not secret, to test the encrypted
/// data key itself.
const NONCE_OFFSET: usize = 12;

#[tokio::test]
async fn versions_count_up_and_the_latest_is_read_and_listed() {
    let store = memory_store().await;
    let master = MasterKey::generate();
    let secrets = secrets(&store, &master);

    let v1 = secrets.put("bq-key", b"first").await.unwrap();
    let v2 = secrets.put("bq-key", b"second").await.unwrap();
    let other = secrets.put("audit-webhook", b"token").await.unwrap();
    assert_eq!((v1.version, v2.version, other.version), (1, 2, 1));
    assert_eq!(v2.master_key_id, master.id());
    assert_eq!(secrets.get("bq-key").await.unwrap().as_slice(), b"second");

    let listed = secrets.list().await.unwrap();
    assert_eq!(listed, vec![other, v2]);
    assert_eq!(store.all_secret_versions().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_missing_secret_says_how_to_import_it() {
    let store = memory_store().await;
    let secrets = secrets(&store, &MasterKey::generate());
    let err = secrets.get("bq-key").await.unwrap_err();
    assert!(matches!(err, SecretError::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string().contains("sluice secrets put bq-key --file"),
        "{err}"
    );
    let err = secrets.get("not a name").await.unwrap_err();
    assert!(matches!(err, SecretError::InvalidName(_)), "{err:?}");
}

#[tokio::test]
async fn the_wrong_master_key_is_refused_with_both_ids_and_the_fix() {
    let (store, right, wrong) = one_secret_and_two_keys().await;

    let err = secrets(&store, &wrong).get("bq-key").await.unwrap_err();
    let SecretError::WrongMasterKey {
        name,
        sealed_with,
        given,
    } = &err
    else {
        panic!("expected WrongMasterKey, got {err:?}");
    };
    assert_eq!(
        (name.as_str(), sealed_with, given),
        ("bq-key", &right.id(), &wrong.id())
    );
    assert_eq!(
        err.to_string(),
        format!(
            "secret \"bq-key\" was sealed with master key {}, but the master key given is {}: \
             set SLUICE_MASTER_KEY (or master_key_file) to the key the store was created with",
            right.id(),
            wrong.id()
        )
    );
}

#[tokio::test]
async fn a_put_under_another_master_key_is_refused() {
    let (store, _, wrong) = one_secret_and_two_keys().await;

    let err = secrets(&store, &wrong)
        .put("other", b"x")
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::WrongMasterKey { .. }), "{err:?}");
    // The store refuses it on its own too, for a put racing a rotation.
    let sealed = seal(&wrong, "other", 1, b"x").unwrap();
    let err = store.put_secret(&sealed).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.all_secret_versions().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_version_cannot_be_stored_twice() {
    let store = memory_store().await;
    let master = MasterKey::generate();
    let sealed = seal(&master, "bq-key", 1, b"payload").unwrap();
    store.put_secret(&sealed).await.unwrap();
    let err = store.put_secret(&sealed).await.unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
}

/// Three names with one to three versions each.
async fn several_secrets(secrets: &SecretStore) -> Vec<(String, i64, Vec<u8>)> {
    let mut written = Vec::new();
    for (name, versions) in [("bq-reader", 3), ("bq-writer", 1), ("audit.webhook", 2)] {
        for _ in 0..versions {
            let plaintext = service_account_key(name);
            let info = secrets.put(name, &plaintext).await.unwrap();
            written.push((name.to_owned(), info.version, plaintext));
        }
    }
    written
}

#[tokio::test]
async fn rotation_keeps_every_version_readable_under_the_new_key_only() {
    let store = memory_store().await;
    let old = MasterKey::generate();
    let new = MasterKey::generate();
    let written = several_secrets(&secrets(&store, &old)).await;
    let before = store.all_secret_versions().await.unwrap();

    let rotated = secrets(&store, &old).rotate(&new).await.unwrap();
    assert_eq!(rotated, written.len());

    let after = store.all_secret_versions().await.unwrap();
    assert_eq!(after.len(), before.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!((&a.name, a.version), (&b.name, b.version));
        assert_eq!(a.ciphertext, b.ciphertext, "{} v{}", a.name, a.version);
        assert_eq!(a.created_ms, b.created_ms);
        assert_eq!(a.master_key_id, new.id());
        assert_ne!(a.wrapped_key, b.wrapped_key);
    }
    for (name, version, plaintext) in &written {
        let sealed = after
            .iter()
            .find(|s| &s.name == name && s.version == *version)
            .unwrap();
        assert_eq!(open(&new, sealed).unwrap().as_slice(), plaintext.as_slice());
        assert!(matches!(
            open(&old, sealed),
            Err(SecretError::WrongMasterKey { .. })
        ));
    }

    let with_new = secrets(&store, &new);
    let latest = &written.iter().rfind(|(n, ..)| n == "bq-reader").unwrap().2;
    assert_eq!(with_new.get("bq-reader").await.unwrap().as_slice(), latest);
    let err = secrets(&store, &old).get("bq-reader").await.unwrap_err();
    assert!(matches!(err, SecretError::WrongMasterKey { .. }), "{err:?}");
    // New versions go in under the new key.
    assert_eq!(with_new.put("bq-writer", b"v2").await.unwrap().version, 2);
}

#[tokio::test]
async fn a_rotation_started_with_the_wrong_key_changes_nothing() {
    let store = memory_store().await;
    let current = MasterKey::generate();
    let wrong = MasterKey::generate();
    let next = MasterKey::generate();
    several_secrets(&secrets(&store, &current)).await;
    let before = store.all_secret_versions().await.unwrap();

    let err = secrets(&store, &wrong).rotate(&next).await.unwrap_err();
    assert!(matches!(err, SecretError::WrongMasterKey { .. }), "{err:?}");
    assert_eq!(store.all_secret_versions().await.unwrap(), before);
}

#[tokio::test]
async fn a_rotation_meeting_a_damaged_record_changes_nothing() {
    let store = memory_store().await;
    let current = MasterKey::generate();
    let next = MasterKey::generate();
    several_secrets(&secrets(&store, &current)).await;
    let mut damaged = seal(&current, "zz-damaged", 1, b"payload").unwrap();
    let last = damaged.ciphertext.len() - 1;
    damaged.ciphertext[last] ^= 1;
    store.put_secret(&damaged).await.unwrap();
    let before = store.all_secret_versions().await.unwrap();

    let err = secrets(&store, &current).rotate(&next).await.unwrap_err();
    assert!(
        matches!(&err, SecretError::Corrupt { name, version: 1 } if name == "zz-damaged"),
        "{err:?}"
    );
    assert_eq!(store.all_secret_versions().await.unwrap(), before);
}

#[tokio::test]
async fn rotating_to_the_current_key_is_refused() {
    let store = memory_store().await;
    let current = MasterKey::generate();
    let secrets = secrets(&store, &current);
    secrets.put("bq-key", b"payload").await.unwrap();
    let err = secrets.rotate(&copy(&current)).await.unwrap_err();
    assert!(matches!(err, SecretError::BadMasterKey(_)), "{err:?}");
    assert!(err.to_string().contains("sluice secrets init-key"), "{err}");
}

#[tokio::test]
async fn an_empty_store_rotates_to_nothing() {
    let store = memory_store().await;
    let rotated = secrets(&store, &MasterKey::generate())
        .rotate(&MasterKey::generate())
        .await
        .unwrap();
    assert_eq!(rotated, 0);
}

#[tokio::test]
async fn replacing_wrapped_keys_must_cover_every_version() {
    let store = memory_store().await;
    let old = MasterKey::generate();
    let new = MasterKey::generate();
    several_secrets(&secrets(&store, &old)).await;
    let before = store.all_secret_versions().await.unwrap();
    let rewrapped: Vec<_> = before
        .iter()
        .map(|s| rewrap(&old, &new, s).unwrap())
        .collect();

    // One version missing, as when a put lands during a rotation.
    let err = store
        .replace_wrapped_keys(&rewrapped[1..])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.all_secret_versions().await.unwrap(), before);

    // One version that is not stored.
    let mut unknown = rewrapped.clone();
    unknown[0].version = 99;
    let err = store.replace_wrapped_keys(&unknown).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.all_secret_versions().await.unwrap(), before);

    store.replace_wrapped_keys(&rewrapped).await.unwrap();
    assert_eq!(store.all_secret_versions().await.unwrap(), rewrapped);
}

#[tokio::test]
async fn no_error_shows_key_material() {
    let (store, master, other) = one_secret_and_two_keys().await;
    let mut damaged = store.latest_secret("bq-key").await.unwrap().unwrap();
    damaged.ciphertext[20] ^= 1;

    let text = master.to_base64();
    let errors = vec![
        secrets(&store, &other).get("bq-key").await.unwrap_err(),
        secrets(&store, &other).rotate(&master).await.unwrap_err(),
        open(&master, &damaged).unwrap_err(),
        MasterKey::from_base64(&text[..43]).unwrap_err(),
        MasterKey::from_base64(&text.replace('=', "")).unwrap_err(),
        MasterKey::from_base64(&format!("{}QUFB", text.as_str())).unwrap_err(),
        MasterKey::load(Some(&text[1..]), None).unwrap_err(),
        MasterKey::load(None, None).unwrap_err(),
        secrets(&store, &master)
            .rotate(&copy(&master))
            .await
            .unwrap_err(),
    ];
    let bytes = STANDARD.decode(text.as_bytes()).unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    for err in &errors {
        let printed = format!("{err}\n{err:?}");
        for window in text.as_bytes().windows(8) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(!printed.contains(window), "{printed}");
        }
        for window in hex.as_bytes().windows(16) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(!printed.contains(window), "{printed}");
        }
        assert!(!printed.contains("payload"), "{printed}");
    }
}

#[tokio::test]
async fn put_version_is_a_compare_and_set_and_latest_names_the_version() {
    let store = memory_store().await;
    let master = MasterKey::generate();
    let secrets = secrets(&store, &master);
    assert!(secrets.latest("ring").await.unwrap().is_none());

    let first = secrets.put_version("ring", 1, b"one").await.unwrap();
    assert_eq!(first.unwrap().version, 1);
    // A second writer that read "nothing stored" too loses, and changes nothing.
    assert!(
        secrets
            .put_version("ring", 1, b"other")
            .await
            .unwrap()
            .is_none()
    );
    let (info, plaintext) = secrets.latest("ring").await.unwrap().unwrap();
    assert_eq!((info.version, plaintext.as_slice()), (1, &b"one"[..]));

    secrets
        .put_version("ring", 2, b"two")
        .await
        .unwrap()
        .unwrap();
    let (info, plaintext) = secrets.latest("ring").await.unwrap().unwrap();
    assert_eq!((info.version, plaintext.as_slice()), (2, &b"two"[..]));
    assert_eq!(secrets.get("ring").await.unwrap().as_slice(), b"two");

    // Under another master key, nothing is written.
    let other = SecretStore::new(store.clone(), MasterKey::generate());
    let err = other.put_version("ring", 3, b"x").await.unwrap_err();
    assert!(matches!(err, SecretError::WrongMasterKey { .. }), "{err:?}");
}
