//! `sluice policy explain` takes the caller's issuer (`--issuer`) for
//! policies pinned with `who.issuers`, and says whether the caller may run
//! a job in the `--project`.

use super::sluice;

const CONFIG: &str = r#"
policies:
  - name: ci-load
    who:
      issuers: [https://token.actions.githubusercontent.com]
      groups: [ci]
    allow:
      read: ["demo.shop"]
      statements: [select]
    projects: [demo-billing]
"#;

#[test]
fn explain_matches_issuers_and_reports_the_job_project() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let explain = |extra: &[&str]| {
        let output = sluice(dir.path())
            .args(["policy", "explain", "--group", "ci", "--sql"])
            .arg("SELECT name FROM demo.shop.customers")
            .arg("--config")
            .arg(&config)
            .args(extra)
            .output()
            .expect("sluice runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };

    let github = ["--issuer", "https://token.actions.githubusercontent.com"];
    let (allowed, out) = explain(&github);
    assert!(allowed, "{out}");
    assert!(
        out.contains("demo: the caller may not run jobs here"),
        "{out}"
    );
    let (allowed, out) = explain(&[&github[..], &["--project", "demo-billing"]].concat());
    assert!(allowed, "{out}");
    assert!(
        out.contains("demo-billing: the caller may run jobs here"),
        "{out}"
    );

    // Without the issuer, or with another, the pinned policy does not match.
    for other in [&[][..], &["--issuer", "https://accounts.google.com"]] {
        let (allowed, out) = explain(other);
        assert!(!allowed, "{out}");
        assert!(out.contains("default-deny"), "{out}");
        assert!(out.contains("another issuer"), "{out}");
    }
}

/// With `--estimate`, the demo's approval rule for scans over 10 MiB shows
/// in the decision: a query that waits for a reviewer is not refused.
#[test]
fn explain_with_an_estimate_names_the_reviewers_a_query_waits_for() {
    let dir = tempfile::tempdir().unwrap();
    let explain = |estimate: &str| {
        let output = sluice(dir.path())
            .args(["policy", "explain", "--group", "agents", "--sql"])
            .arg("SELECT * FROM demo.shop.events")
            .args(["--estimate", estimate])
            .output()
            .expect("sluice runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (ok, out) = explain("20MiB");
    assert!(ok, "a query that needs approval is not a refusal: {out}");
    assert!(out.contains("verdict: needs approval"), "{out}");
    assert!(out.contains("rule:    approvals.large-scan"), "{out}");
    assert!(out.contains("review:  1 of reviewers within 900s"), "{out}");
    let (ok, out) = explain("5MiB");
    assert!(ok, "{out}");
    assert!(out.contains("verdict: allow"), "{out}");
    let (ok, out) = explain("2GiB");
    assert!(
        !ok,
        "over the policy's byte limit: refused, not reviewed: {out}"
    );
    assert!(out.contains("limits.max_bytes_billed"), "{out}");
}
