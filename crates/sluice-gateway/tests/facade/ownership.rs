//! Whose a job is: the principal that ran it, admitted by a policy that
//! still admits the caller. Many runs share one subject — every job of a
//! GitHub environment, every pull request of a repository — so a run that
//! shares the subject but not the policy sees nothing of the job.

use serde_json::json;

use super::harness::{TestGateway, assert_error, insert_as};

/// The subject every job of the repository's `prod` environment gets,
/// whatever branch it runs on.
const SHARED_SUBJECT: &str = "repo:acme/etl:environment:prod";

#[tokio::test]
async fn a_run_that_shares_the_subject_but_not_the_policy_sees_nothing_of_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    // The main-branch run is in `testers` (policy testers-read); the
    // feature-branch run of the same environment is not, but another
    // policy (outsiders) admits it.
    let main_run = gw.token_for(SHARED_SUBJECT, &["testers"]);
    let branch_run = gw.token_for(SHARED_SUBJECT, &["outsiders"]);
    let nobody = gw.token_for(SHARED_SUBJECT, &[]);

    let (status, job) = gw.call_as(
        &main_run,
        "POST",
        "/bigquery/v2/projects/proj/jobs",
        Some(json!({
            "jobReference": {"projectId": "proj", "jobId": "main-run-job"},
            "configuration": {"query": {"query": "SELECT name FROM ds.people ORDER BY id", "useLegacySql": false}}
        })),
    )
    .await;
    assert_eq!(status, 200, "{job}");

    let job_paths = [
        ("GET", "/bigquery/v2/projects/proj/jobs/main-run-job"),
        ("GET", "/bigquery/v2/projects/proj/queries/main-run-job"),
        (
            "POST",
            "/bigquery/v2/projects/proj/jobs/main-run-job/cancel",
        ),
    ];
    for other in [&branch_run, &nobody] {
        for (method, path) in job_paths {
            let (status, body) = gw.call_as(other, method, path, None).await;
            assert_error(status, &body, 404, "notFound");
        }
        let (status, list) = gw
            .call_as(other, "GET", "/bigquery/v2/projects/proj/jobs", None)
            .await;
        assert_eq!(status, 200, "{list}");
        let listed = list["jobs"].as_array().map_or(0, Vec::len);
        assert_eq!(listed, 0, "{list}");
    }

    // The job's own run, with a fresh token of the same policy, reads it.
    let main_again = gw.token_for(SHARED_SUBJECT, &["testers"]);
    let (status, rows) = gw
        .call_as(
            &main_again,
            "GET",
            "/bigquery/v2/projects/proj/queries/main-run-job",
            None,
        )
        .await;
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows["jobComplete"], true, "{rows}");
    assert!(
        rows["rows"].as_array().is_some_and(|r| !r.is_empty()),
        "{rows}"
    );
    let (status, list) = gw
        .call_as(&main_again, "GET", "/bigquery/v2/projects/proj/jobs", None)
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["jobs"][0]["jobReference"]["jobId"], "main-run-job",
        "{list}"
    );

    // A retried jobs.query with the main run's requestId does not hand the
    // branch run the main run's job.
    let query = |token: &str| {
        let token = token.to_owned();
        let gw = &gw;
        async move {
            gw.call_as(
                &token,
                "POST",
                "/bigquery/v2/projects/proj/queries",
                Some(json!({"query": "SELECT 1 AS one", "useLegacySql": false, "requestId": "req-shared"})),
            )
            .await
        }
    };
    let (status, first) = query(&main_run).await;
    assert_eq!(status, 200, "{first}");
    let (status, body) = query(&branch_run).await;
    assert_error(status, &body, 409, "duplicate");
    gw.stop().await;
}

/// Issue: nothing is minted for strangers, and they learn nothing: a
/// caller no policy names is refused every metadata call.
#[tokio::test]
async fn a_caller_no_policy_names_is_refused_every_metadata_call() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let stranger = gw.token_for("any-workflow-anywhere", &["no-policy-names-this"]);
    for path in [
        "/bigquery/v2/projects",
        "/bigquery/v2/projects/proj/datasets",
        "/bigquery/v2/projects/proj/datasets/ds",
        "/bigquery/v2/projects/proj/datasets/ds/tables",
        "/bigquery/v2/projects/proj/datasets/ds/tables/people",
        "/bigquery/v2/projects/proj/datasets/ds/tables/people/data",
    ] {
        let (status, body) = gw.call_as(&stranger, "GET", path, None).await;
        assert_error(status, &body, 403, "accessDenied");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("default-deny"), "{path}: {message}");
    }
    gw.stop().await;
}

/// Issue: where a job runs and who pays is policy. The URL's project
/// becomes the job's project and billing account, so a project no policy
/// of the caller's lists is refused before anything is planned or run.
#[tokio::test]
async fn a_job_runs_only_in_a_project_the_policy_lists() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let tester = gw.token_for("tess", &["testers"]);
    for (method, path, body) in [
        (
            "POST",
            "/bigquery/v2/projects/someone-elses-billing/queries",
            json!({"query": "SELECT name FROM proj.ds.people", "useLegacySql": false}),
        ),
        (
            "POST",
            "/bigquery/v2/projects/someone-elses-billing/jobs",
            json!({"configuration": {"query": {"query": "SELECT name FROM proj.ds.people", "useLegacySql": false}}}),
        ),
    ] {
        let (status, error) = gw.call_as(&tester, method, path, Some(body)).await;
        assert_error(status, &error, 403, "accessDenied");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("policies.projects"), "{message}");
        assert!(message.contains("someone-elses-billing"), "{message}");
    }
    // The project its table patterns name is the default.
    let (status, result) = gw
        .call_as(
            &tester,
            "POST",
            "/bigquery/v2/projects/proj/queries",
            Some(json!({"query": "SELECT name FROM proj.ds.people", "useLegacySql": false})),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    gw.stop().await;
}

/// A query that runs until cancelled on the test warehouse.
const ENDLESS: &str =
    "SELECT SUM(a.id * b.id + c.id) AS s FROM proj.ds.people a, proj.ds.people b, proj.ds.people c";

/// Issue: bounded spending and resources. One principal may have only so
/// many jobs running at once; the next is 429 `rateLimitExceeded` (which
/// the clients retry with backoff), other principals are not held up, and
/// a finished job frees its place.
#[tokio::test]
async fn one_principal_runs_a_bounded_number_of_jobs_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_with(dir.path(), |c| c.max_running_jobs_per_principal = 1).await;
    let tess = gw.token_for("tess", &["testers"]);
    let tom = gw.token_for("tom", &["testers"]);
    let insert =
        |sql: &str| json!({"configuration": {"query": {"query": sql, "useLegacySql": false}}});
    let (status, running) = insert_as(&gw, &tess, insert(ENDLESS)).await;
    assert_eq!(status, 200, "{running}");
    let (status, error) = insert_as(&gw, &tess, insert("SELECT 1")).await;
    assert_error(status, &error, 429, "rateLimitExceeded");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("limits.max_running_jobs_per_principal"),
        "{message}"
    );

    let (status, other) = insert_as(&gw, &tom, insert("SELECT 1")).await;
    assert_eq!(status, 200, "{other}");

    let job = running["jobReference"]["jobId"].as_str().unwrap();
    let (status, cancelled) = gw
        .call_as(
            &tess,
            "POST",
            &format!("/bigquery/v2/projects/proj/jobs/{job}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    let (status, next) = insert_as(&gw, &tess, insert("SELECT 1")).await;
    assert_eq!(status, 200, "{next}");
    gw.stop().await;
}

/// Issue: bounded resources. Finished jobs' results are kept for the
/// retention, then removed (files and memory); reading them afterwards is
/// a clear `notFound`, not a failure of the gateway.
#[tokio::test]
async fn finished_results_are_removed_after_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_with(dir.path(), |c| {
        c.result_retention = std::time::Duration::ZERO
    })
    .await;
    let tess = gw.token_for("tess", &["testers"]);
    let query = |sql: &str| Some(json!({"query": sql, "useLegacySql": false}));
    let (status, first) = gw
        .call_as(
            &tess,
            "POST",
            "/bigquery/v2/projects/proj/queries",
            query("SELECT name FROM proj.ds.people"),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    let job = first["jobReference"]["jobId"].as_str().unwrap().to_owned();
    let results = dir.path().join("results");
    let files = || std::fs::read_dir(&results).unwrap().count();
    assert!(files() > 0, "the first job's results are on disk");

    // The next query sweeps: the first job is past its (zero) retention.
    let (status, second) = gw
        .call_as(
            &tess,
            "POST",
            "/bigquery/v2/projects/proj/queries",
            query("SELECT 1 AS one"),
        )
        .await;
    assert_eq!(status, 200, "{second}");
    let second_job = second["jobReference"]["jobId"].as_str().unwrap();
    let (status, error) = gw
        .call_as(
            &tess,
            "GET",
            &format!("/bigquery/v2/projects/proj/queries/{job}"),
            None,
        )
        .await;
    assert_error(status, &error, 404, "notFound");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("no longer kept"), "{message}");
    // The job itself is still on record, DONE.
    let (status, resource) = gw
        .call_as(
            &tess,
            "GET",
            &format!("/bigquery/v2/projects/proj/jobs/{job}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{resource}");
    assert_eq!(resource["status"]["state"], "DONE");
    assert!(!second_job.is_empty());
    gw.stop().await;
}
