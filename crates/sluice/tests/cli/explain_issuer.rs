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
