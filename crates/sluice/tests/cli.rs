//! The `sluice` binary as a user runs it from a shell: output into pipes
//! that close early, the token command `sluice serve` prints, what
//! `sluice policy explain` says of issuers and projects, and the reviewer's
//! `sluice approvals`.

#[path = "cli/approvals.rs"]
mod approvals;
#[path = "cli/closed_pipe.rs"]
mod closed_pipe;
#[path = "cli/explain_circumstances.rs"]
mod explain_circumstances;
#[path = "cli/explain_issuer.rs"]
mod explain_issuer;
#[path = "cli/serve_banner.rs"]
mod serve_banner;

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The binary under test, run in `cwd`, quiet but for warnings.
pub fn sluice(cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .current_dir(cwd)
        .env("SLUICE_LOG", "warn")
        .env_remove("SLUICE_MASTER_KEY")
        .stdin(Stdio::null());
    command
}

/// Runs `command` to the end and insists it succeeded.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("sluice runs");
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
