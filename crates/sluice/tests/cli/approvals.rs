//! `sluice approvals` as a reviewer runs it: what it says without a token,
//! with a bad argument, or when the gateway is out of reach or refuses;
//! and how it shows what a gateway answers (a one-shot stub here; the
//! approval flow against a real gateway is the Python end-to-end suite's).
//! The token never appears in anything it prints.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Output;

use super::sluice;

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.do-not-print-me.c2lnbmF0dXJl";

/// `sluice approvals ARGS` with neither SLUICE_TOKEN nor SLUICE_ENDPOINT
/// from the environment of the test run.
fn approvals(args: &[&str], token: Option<&str>) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = sluice(dir.path());
    command
        .arg("approvals")
        .args(args)
        .env_remove("SLUICE_TOKEN")
        .env_remove("SLUICE_ENDPOINT");
    if let Some(token) = token {
        command.env("SLUICE_TOKEN", token);
    }
    command.output().expect("sluice runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// An endpoint where nothing listens: a port just given back.
fn closed_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A gateway stand-in that answers one request with `status` and `body`;
/// the request it got comes back from the thread.
fn stub(status: &str, body: &str) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (status, body) = (status.to_owned(), body.to_owned());
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut request = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            request.push_str(&line);
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let mut content = vec![0; length];
        reader.read_exact(&mut content).unwrap();
        request.push_str(&String::from_utf8_lossy(&content));
        let mut stream = reader.into_inner();
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        request
    });
    (endpoint, server)
}

const APPROVAL: &str = r#"{"id": "apr_3f2a", "state": "PENDING",
 "jobReference": {"projectId": "demo", "jobId": "job_x", "location": "US"},
 "principal": "e2e-agent", "sql": "SELECT name,\n  email FROM demo.shop.customers WHERE country = 'DE' ORDER BY name",
 "sqlHash": "ab12", "estimate": {"bytes": "14680064", "usd": 0.0000834},
 "limits": {"maxBytesBilled": "1073741824", "maxRows": null},
 "rule": "large-scan", "policy": "agents-read-shop", "why": "estimated 14.0 MiB, over 10.0 MiB",
 "reviewers": {"groups": ["reviewers"], "principals": []},
 "minApprovals": 2, "justificationRequired": false,
 "createTime": "2026-12-03T05:40:00Z", "expireTime": "2999-12-03T05:55:00Z",
 "closeTime": null, "closedBy": null, "reason": null, "ci": null,
 "votes": [{"reviewer": "alice", "decision": "APPROVE", "reason": "ok", "time": "2026-12-03T05:41:00Z"}]}"#;

#[test]
fn without_a_token_it_says_how_to_get_one() {
    for args in [&["list"][..], &["show", "apr_1"], &["approve", "apr_1"]] {
        let output = approvals(args, None);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = stderr(&output);
        assert!(err.starts_with("Error: no token"), "{err}");
        assert!(err.contains("SLUICE_TOKEN=$("), "{err}");
        assert!(
            err.contains(" token --sub alice --group reviewers)"),
            "{err}"
        );
    }
    // A blank token is no token.
    let output = approvals(&["list"], Some("  \n"));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("no token"), "{}", stderr(&output));
}

#[test]
fn deny_needs_a_reason() {
    for args in [&["deny", "apr_1"][..], &["deny", "apr_1", "--reason", ""]] {
        let output = approvals(args, Some(TOKEN));
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: clap's usage error"
        );
        assert!(stderr(&output).contains("--reason"), "{}", stderr(&output));
    }
}

#[test]
fn help_never_shows_the_token_from_the_environment() {
    let output = approvals(&["list", "--help"], Some(TOKEN));
    assert!(output.status.success());
    let help = stdout(&output);
    assert!(help.contains("SLUICE_TOKEN"), "{help}");
    assert!(!help.contains(TOKEN), "{help}");
}

#[test]
fn an_unreachable_gateway_is_named_and_the_token_is_not() {
    let endpoint = closed_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let token_file = token_file.to_str().unwrap();
    let cases: [(&[&str], Option<&str>); 4] = [
        (&["list", "--endpoint", &endpoint], Some(TOKEN)),
        (&["--endpoint", &endpoint, "show", "apr_1"], Some(TOKEN)),
        (
            &[
                "approve",
                "apr_1",
                "--endpoint",
                &endpoint,
                "--token",
                TOKEN,
            ],
            None,
        ),
        (
            &[
                "deny",
                "apr_1",
                "--reason",
                "no",
                "--endpoint",
                &endpoint,
                "--token-file",
                token_file,
            ],
            None,
        ),
    ];
    for (args, token) in cases {
        let output = approvals(args, token);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = stderr(&output);
        assert!(
            err.contains(&format!("cannot reach the Sluice gateway at {endpoint}")),
            "{err}"
        );
        assert!(!err.contains("do-not-print-me"), "{err}");
        assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    }
}

#[test]
fn a_refusal_prints_the_gateways_message_and_status() {
    let (endpoint, server) = stub(
        "403 Forbidden",
        r#"{"error": {"code": 403, "message": "alice may not review apr_1: the rule names group reviewers", "errors": [{"message": "…", "domain": "global", "reason": "accessDenied"}], "status": "PERMISSION_DENIED"}}"#,
    );
    let output = approvals(
        &[
            "approve",
            "apr_1",
            "--reason",
            "looks fine",
            "--endpoint",
            &endpoint,
        ],
        Some(TOKEN),
    );
    let request = server.join().unwrap();
    assert!(
        request.starts_with("POST /sluice/v1/approvals/apr_1:approve HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains(&format!("uthorization: Bearer {TOKEN}\r\n")),
        "{request}"
    );
    assert!(request.ends_with(r#"{"reason":"looks fine"}"#), "{request}");
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "{endpoint} answered HTTP 403 Forbidden: alice may not review apr_1"
        )),
        "{err}"
    );
}

#[test]
fn list_show_and_votes_print_what_the_gateway_answered() {
    let (endpoint, server) = stub("200 OK", &format!(r#"{{"approvals": [{APPROVAL}]}}"#));
    let output = approvals(&["list", "--endpoint", &endpoint], Some(TOKEN));
    let request = server.join().unwrap();
    assert!(
        request.starts_with("GET /sluice/v1/approvals?state=PENDING HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let line = stdout(&output);
    for part in [
        "apr_3f2a\tPENDING\te2e-agent\tlarge-scan\t14.0 MiB ≈ $0.0001\texpires in ",
        "\tSELECT name, email FROM demo.shop.customers WHERE country =…\n",
    ] {
        assert!(line.contains(part), "{part:?} in {line}");
    }

    let (endpoint, server) = stub("200 OK", r#"{"approvals": []}"#);
    let output = approvals(
        &["list", "--state", "all", "--endpoint", &endpoint],
        Some(TOKEN),
    );
    assert!(
        server
            .join()
            .unwrap()
            .starts_with("GET /sluice/v1/approvals HTTP/1.1\r\n")
    );
    assert_eq!(stdout(&output), "no approvals\n");

    let (endpoint, server) = stub("200 OK", APPROVAL);
    let output = approvals(&["show", "apr_3f2a", "--endpoint", &endpoint], Some(TOKEN));
    assert!(
        server
            .join()
            .unwrap()
            .starts_with("GET /sluice/v1/approvals/apr_3f2a HTTP/1.1\r\n")
    );
    let view = stdout(&output);
    for part in [
        "job:         demo.job_x (US)",
        "why:         estimated 14.0 MiB, over 10.0 MiB",
        "limits:      bytes billed 1.0 GiB, rows none",
        "reviewers:   group reviewers; 2 approvals needed",
        "alice APPROVE at 2026-12-03T05:41:00Z: ok",
        "    SELECT name,\n      email FROM",
    ] {
        assert!(view.contains(part), "{part:?} in {view}");
    }

    let (endpoint, server) = stub("200 OK", APPROVAL);
    let output = approvals(
        &["show", "apr_3f2a", "--json", "--endpoint", &endpoint],
        Some(TOKEN),
    );
    server.join().unwrap();
    assert_eq!(stdout(&output), format!("{APPROVAL}\n"));

    let (endpoint, server) = stub("200 OK", APPROVAL);
    let output = approvals(
        &["approve", "apr_3f2a", "--endpoint", &endpoint],
        Some(TOKEN),
    );
    assert!(server.join().unwrap().ends_with("\r\n\r\n{}"));
    assert_eq!(stdout(&output), "apr_3f2a PENDING: 1 of 2 approvals\n");
}

#[test]
fn an_id_that_is_not_one_goes_nowhere() {
    let output = approvals(
        &["approve", "../../admin", "--endpoint", &closed_endpoint()],
        Some(TOKEN),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("is not an id"),
        "{}",
        stderr(&output)
    );
}
