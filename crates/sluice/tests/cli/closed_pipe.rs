//! Regression: `sluice policy explain … | head` panicked with "failed
//! printing to stdout: Broken pipe". Every command that prints now ends
//! quietly, with status 0, when the reader of its output has gone; and no
//! failure prints a backtrace, even with `RUST_BACKTRACE=1`.

use std::process::Stdio;

use super::{run_ok, sluice};

/// Runs `args` with stdout a pipe whose reader closed before the command
/// started, so the first line it prints meets a broken pipe.
fn into_closed_pipe(cwd: &std::path::Path, args: &[&str], master_key: &str) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = sluice(cwd)
        .args(args)
        .env("SLUICE_MASTER_KEY", master_key)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("sluice runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for sign in ["panicked", "Broken pipe", "backtrace", "Error"] {
        assert!(
            !stderr.contains(sign),
            "sluice {args:?} printed {sign:?}:\n{stderr}"
        );
    }
    assert!(
        output.status.success(),
        "sluice {args:?} ended with {} on a closed pipe:\n{stderr}",
        output.status
    );
}

#[test]
fn every_command_that_prints_ends_quietly_when_its_reader_has_gone() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let key_file = cwd.join("master.key");
    run_ok(
        sluice(cwd)
            .args(["secrets", "init-key", "--out"])
            .arg(&key_file),
    );
    let master_key = std::fs::read_to_string(&key_file).unwrap();

    let explain = ["policy", "explain", "--group", "agents", "--sql"];
    let cases: [&[&str]; 9] = [
        &[
            "token",
            "--sub",
            "agent",
            "--group",
            "agents",
            "--data-dir",
            "data",
        ],
        &[&explain[..], &["SELECT name FROM demo.shop.customers"]].concat(),
        // Refused: exit status 1 when read in full, 0 when the reader left.
        &[&explain[..], &["DROP TABLE demo.shop.customers"]].concat(),
        &["policy", "check"],
        &["secrets", "list", "--data-dir", "data"],
        &["secrets", "init-key", "--out", "second.key"],
        &["demo-data", "--warehouse-dir", "warehouse"],
        &["--help"],
        &["--version"],
    ];
    for args in cases {
        into_closed_pipe(cwd, args, master_key.trim());
    }
}

#[test]
fn a_refused_decision_read_in_full_still_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let output = sluice(dir.path())
        .args([
            "policy",
            "explain",
            "--group",
            "agents",
            "--sql",
            "DROP TABLE demo.shop.customers",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("guardrails"), "{stdout}");
}

#[test]
fn an_error_is_one_message_never_a_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let output = sluice(dir.path())
        .args(["token", "--sub", "agent", "--config", "missing.yaml"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("Error: "), "{stderr}");
    assert!(stderr.contains("missing.yaml"), "{stderr}");
    for sign in ["backtrace", "panicked", "main.rs"] {
        assert!(!stderr.contains(sign), "{stderr}");
    }
}
