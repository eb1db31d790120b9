//! Anonymous result datasets and the `INFORMATION_SCHEMA` job views are
//! granted only by patterns that name them: under a credential shared by
//! several principals they hold the others' results and SQL.

use super::*;

fn reader_of(read: &[&str]) -> PolicySet {
    PolicySet::build(
        &[policy("readers", &["readers"], read, &[], &["select"])],
        &RawGuardrails::default(),
    )
    .expect("valid")
}

fn reads(read: &[&str], sql: &str) -> Decision {
    decide(&reader_of(read), &["readers"], sql, None)
}

#[test]
fn a_wildcard_does_not_grant_an_anonymous_result_dataset() {
    let sql = "SELECT * FROM proj._abc.t";
    for wide in [
        &["proj.*.*"][..],
        &["proj.*"],
        &["*"],
        &["proj"],
        &["proj._*"],
    ] {
        assert_denied(&reads(wide, sql), "policies.allow.read");
    }
    assert!(reads(&["proj._abc"], sql).is_allowed());
    assert!(reads(&["proj._abc.*"], sql).is_allowed());
    assert!(reads(&["proj._abc.t"], sql).is_allowed());
    // The dataset is not listed either, unless named.
    let groups = strings(&["readers"]);
    let who = Who {
        name: "tester",
        groups: &groups,
        issuer: "",
    };
    assert!(!reader_of(&["proj.*"]).may_see_dataset(&who, "proj", "_abc"));
    assert!(reader_of(&["proj._abc.*"]).may_see_dataset(&who, "proj", "_abc"));
}

#[test]
fn a_wildcard_does_not_grant_a_job_view() {
    for sql in [
        "SELECT query FROM `region-us`.INFORMATION_SCHEMA.JOBS",
        "SELECT query FROM `proj.region-us.INFORMATION_SCHEMA.JOBS_BY_USER`",
        "SELECT query FROM `region-us`.information_schema.jobs_by_project",
        "SELECT query FROM `region-eu`.INFORMATION_SCHEMA.JOBS_BY_ORGANIZATION",
        "SELECT query FROM `region-us`.INFORMATION_SCHEMA.JOBS_TIMELINE_BY_FOLDER",
    ] {
        for wide in [
            &["*"][..],
            &["proj"],
            &["proj.region-us", "proj.region-eu"],
            &[
                "proj.region-us.INFORMATION_SCHEMA",
                "proj.region-eu.INFORMATION_SCHEMA",
            ],
            &[
                "proj.region-us.INFORMATION_SCHEMA.*",
                "proj.region-eu.INFORMATION_SCHEMA.JOBS*",
            ],
        ] {
            assert_denied(&reads(wide, sql), "policies.allow.read");
        }
    }
    let sql = "SELECT query FROM `region-us`.INFORMATION_SCHEMA.JOBS_BY_USER";
    assert!(reads(&["proj.region-us.INFORMATION_SCHEMA.JOBS_BY_USER"], sql).is_allowed());
    assert_denied(
        &reads(&["proj.region-us.INFORMATION_SCHEMA.JOBS"], sql),
        "policies.allow.read",
    );
    // Other metadata keeps its prefix grant.
    assert!(
        reads(
            &["proj.region-us"],
            "SELECT * FROM `region-us`.INFORMATION_SCHEMA.TABLES"
        )
        .is_allowed()
    );
}
