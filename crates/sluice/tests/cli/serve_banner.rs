//! Regression: after `cargo run -- serve` the banner said `TOKEN=$(sluice
//! token …)`, but no `sluice` is on the PATH then. The banner now names this
//! binary by a path that works from where the server was started, with the
//! server's own `--config` and `--data-dir`; the command, run as printed,
//! yields a token the server accepts.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::sluice;

/// A `sluice serve` child, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    /// The command inside `TOKEN=$(…)`.
    token_command: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sluice serve ARGS --listen 127.0.0.1:0` in `cwd` and reads its
/// banner up to the token command.
fn serve(cwd: &Path, args: &[&str]) -> Server {
    let mut child = sluice(cwd)
        .arg("serve")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sluice serve starts");
    let stdout = child.stdout.take().unwrap();
    let (lines, banner) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut server = Server {
        child,
        port: 0,
        token_command: String::new(),
    };
    let mut seen = Vec::new();
    while server.token_command.is_empty() {
        let line = banner
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("no token command in the banner:\n{}", seen.join("\n")));
        if let Some(url) = line.strip_prefix("Sluice is listening on http://127.0.0.1:") {
            server.port = url.trim().parse().unwrap();
        }
        if let Some(command) = line.trim().strip_prefix("TOKEN=$(") {
            server.token_command = command.strip_suffix(')').unwrap().to_string();
        }
        seen.push(line);
    }
    assert_ne!(server.port, 0, "{}", seen.join("\n"));
    server
}

/// Runs the banner's command as a user would paste it, from the folder the
/// server was started in, and returns the token it printed.
fn run_as_printed(cwd: &Path, command: &str) -> String {
    let program = command.split_whitespace().next().unwrap();
    assert!(
        program != "sluice" && cwd.join(program).is_file(),
        "the banner names a binary that is here: {command}"
    );
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(cwd)
        .env("SLUICE_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// `GET path` with a bearer token; the status and the body.
fn get(port: u16, path: &str, token: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (status, body.unwrap_or_default())
}

#[test]
fn the_demo_banner_prints_a_token_command_that_works_from_here() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    // As after `cargo run -- serve --data-dir state`: a relative folder.
    let server = serve(cwd, &["--data-dir", "state"]);
    assert!(
        server.token_command.contains(" token ")
            && server.token_command.ends_with("--data-dir state"),
        "{}",
        server.token_command
    );
    let token = run_as_printed(cwd, &server.token_command);
    let (status, body) = get(server.port, "/bigquery/v2/projects", &token);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"demo\""), "{body}");
}

#[test]
fn with_a_configuration_the_command_carries_it() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::write(
        cwd.join("my sluice.yaml"),
        "data_dir: my-state\n\
         warehouse: { kind: embedded, demo_data: false }\n\
         identity:\n  development_issuer: { enabled: true, audience: mine }\n\
         policies:\n  - name: agents\n    who: { groups: [agents] }\n    allow: { read: [demo], statements: [select] }\n",
    )
    .unwrap();
    let server = serve(cwd, &["--config", "my sluice.yaml"]);
    assert!(
        server.token_command.ends_with("--config 'my sluice.yaml'"),
        "{}",
        server.token_command
    );
    let token = run_as_printed(cwd, &server.token_command);
    let (status, body) = get(server.port, "/bigquery/v2/projects", &token);
    assert_eq!(status, 200, "{body}");
}
