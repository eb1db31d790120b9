//! `sluice policy explain --at` and `--grant`: approval rules with days or
//! hours, and tables readable only under a just-in-time grant, explained
//! as they would be decided then, or with that grant.

use super::sluice;

const CONFIG: &str = r#"
policies:
  - name: agents
    who: { groups: [agents] }
    allow: { read: ["demo.shop"], statements: [select] }
    approvals:
      - name: after-hours
        when: { hours: "18:00-08:00", utc_offset: "+01:00" }
        reviewers: { groups: [oncall] }
  - name: contractors
    who: { groups: [contractors] }
    allow: { statements: [select] }
    projects: [demo]
    grants:
      - name: shop-access
        datasets: [demo.shop]
        reviewers: { groups: [reviewers] }
"#;

#[test]
fn explain_decides_at_a_given_time_and_with_a_given_grant() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let explain = |group: &str, extra: &[&str]| {
        let output = sluice(dir.path())
            .args(["policy", "explain", "--group", group, "--sql"])
            .arg("SELECT id FROM demo.shop.orders")
            .arg("--config")
            .arg(&config)
            .args(extra)
            .output()
            .expect("sluice runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    let (_, evening, _) = explain("agents", &["--at", "2026-12-08T19:30:00Z"]);
    assert!(evening.contains("verdict: needs approval"), "{evening}");
    assert!(
        evening.contains("tue 20:30 (UTC+01:00) is within when.hours 18:00-08:00"),
        "{evening}"
    );
    let (_, morning, _) = explain("agents", &["--at", "2026-12-08T09:00:00Z"]);
    assert!(morning.contains("verdict: allow"), "{morning}");
    let (ok, _, err) = explain("agents", &["--at", "tuesday evening"]);
    assert!(!ok && err.contains("RFC 3339"), "{err}");

    let (allowed, without, _) = explain("contractors", &[]);
    assert!(!allowed, "{without}");
    assert!(without.contains("rule:    grants.shop-access"), "{without}");
    let (allowed, with, _) = explain("contractors", &["--grant", "shop-access=demo.shop"]);
    assert!(allowed, "{with}");
    assert!(
        with.contains("grant explain-1 covers demo.shop.orders"),
        "{with}"
    );
}
