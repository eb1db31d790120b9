//! The BigQuery facade over HTTP: shapes, paging, job lifecycle, and every
//! kind of bad input answered in BigQuery's error shape.

#[path = "facade/approvals.rs"]
mod approvals;
#[path = "facade/cross_check.rs"]
mod cross_check;
#[path = "facade/grants.rs"]
mod grants;
#[path = "facade/harness.rs"]
mod harness;
#[path = "facade/hostile_bodies.rs"]
mod hostile_bodies;
#[path = "facade/hostile_sql.rs"]
mod hostile_sql;
#[path = "facade/mcp.rs"]
mod mcp;
#[path = "facade/observing.rs"]
mod observing;
#[path = "facade/ownership.rs"]
mod ownership;
#[path = "facade/tokens.rs"]
mod tokens;
#[path = "facade/ui.rs"]
mod ui;
#[path = "facade/upstream.rs"]
mod upstream;

use harness::{PEOPLE, TestGateway, assert_error, run_query};
use serde_json::{Value, json};

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[tokio::test]
async fn a_query_job_pages_through_its_whole_result() {
    let dir = temp();
    let gw = TestGateway::start(dir.path()).await;
    let job = run_query(&gw, "SELECT id, name FROM proj.ds.people ORDER BY id").await;

    let (status, first) = gw
        .get(&format!(
            "/bigquery/v2/projects/proj/queries/{job}?maxResults=0&timeoutMs=5000"
        ))
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["jobComplete"], true);
    assert_eq!(first["totalRows"], PEOPLE.to_string());
    assert!(first.get("rows").is_none(), "maxResults=0 returns no rows");
    assert_eq!(first["schema"]["fields"][0]["type"], "INTEGER");

    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/bigquery/v2/projects/proj/queries/{job}?maxResults=700");
        if let Some(t) = &token {
            path.push_str(&format!("&pageToken={t}"));
        }
        let (status, page) = gw.get(&path).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for row in page["rows"].as_array().unwrap() {
            ids.push(row["f"][0]["v"].as_str().unwrap().parse::<usize>().unwrap());
        }
        match page["pageToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, PEOPLE.div_ceil(700));
    assert_eq!(ids, (1..=PEOPLE).collect::<Vec<_>>());

    let (_, from_index) = gw
        .get(&format!(
            "/bigquery/v2/projects/proj/queries/{job}?startIndex=2499&maxResults=10"
        ))
        .await;
    assert_eq!(from_index["rows"].as_array().unwrap().len(), 1);
    assert!(from_index.get("pageToken").is_none());
    gw.stop().await;
}

#[tokio::test]
async fn pages_are_capped_by_the_configured_page_size() {
    let dir = temp();
    let gw = TestGateway::start(dir.path()).await;
    let job = run_query(&gw, "SELECT * FROM proj.ds.people").await;
    let (_, page) = gw
        .get(&format!("/bigquery/v2/projects/proj/queries/{job}"))
        .await;
    assert_eq!(
        page["rows"].as_array().unwrap().len(),
        1000,
        "page_max_rows is 1000"
    );
    assert_eq!(page["pageToken"], "o1000");
    gw.stop().await;
}

#[tokio::test]
async fn job_resources_look_like_bigquery_and_never_name_a_destination_table() {
    let dir = temp();
    let gw = TestGateway::start(dir.path()).await;
    let body = json!({
        "jobReference": {"jobId": "my_job-1", "projectId": "proj", "location": "US"},
        "configuration": {"query": {"query": "SELECT COUNT(*) FROM ds.people", "useLegacySql": false}}
    });
    let (status, job) = gw
        .post("/bigquery/v2/projects/proj/jobs", &body.to_string())
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["kind"], "bigquery#job");
    assert_eq!(job["id"], "proj:US.my_job-1");
    assert_eq!(
        job["jobReference"],
        json!({"projectId": "proj", "jobId": "my_job-1", "location": "US"})
    );

    let (_, results) = gw
        .get("/bigquery/v2/projects/proj/queries/my_job-1?timeoutMs=5000")
        .await;
    assert_eq!(results["rows"][0]["f"][0]["v"], PEOPLE.to_string());
    assert_eq!(
        results["schema"]["fields"][0]["name"], "f0_",
        "BigQuery names anonymous columns f0_"
    );

    let (status, job) = gw
        .get("/bigquery/v2/projects/proj/jobs/my_job-1?projection=full")
        .await;
    assert_eq!(status, 200);
    assert_eq!(job["status"]["state"], "DONE");
    assert!(
        job["configuration"]["query"]
            .get("destinationTable")
            .is_none()
    );
    assert_eq!(job["statistics"]["query"]["statementType"], "SELECT");
    assert_eq!(
        job["statistics"]["query"]["referencedTables"][0]["tableId"],
        "people"
    );
    assert!(
        job["statistics"]["creationTime"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );

    let (status, dup) = gw
        .post("/bigquery/v2/projects/proj/jobs", &body.to_string())
        .await;
    assert_error(status, &dup, 409, "duplicate");

    let (status, list) = gw.get("/bigquery/v2/projects/proj/jobs?maxResults=5").await;
    assert_eq!(status, 200);
    assert_eq!(list["jobs"][0]["jobReference"]["jobId"], "my_job-1");
    assert_eq!(list["jobs"][0]["state"], "DONE");
    gw.stop().await;
}

#[tokio::test]
async fn timestamps_are_int64_micros_only_when_asked() {
    let dir = temp();
    let gw = TestGateway::start(dir.path()).await;
    let (_, micros) = gw
        .post(
            "/bigquery/v2/projects/proj/queries",
            r#"{"query":"SELECT seen FROM proj.ds.people WHERE id = 1","useLegacySql":false,"formatOptions":{"useInt64Timestamp":true}}"#,
        )
        .await;
    assert_eq!(
        micros["rows"][0]["f"][0]["v"], "1714564801000000",
        "{micros}"
    );
    let (_, seconds) = gw
        .post(
            "/bigquery/v2/projects/proj/queries",
            r#"{"query":"SELECT seen FROM proj.ds.people WHERE id = 1","useLegacySql":false}"#,
        )
        .await;
    let text = seconds["rows"][0]["f"][0]["v"].as_str().unwrap();
    assert_eq!(text.parse::<f64>().unwrap(), 1714564801.0, "{text}");
    gw.stop().await;
}

#[tokio::test]
async fn jobs_and_their_results_survive_a_restart() {
    let dir = temp();
    let gw = TestGateway::start(dir.path()).await;
    let job = run_query(&gw, "SELECT id FROM proj.ds.people WHERE id <= 1500").await;
    let (_, done) = gw
        .get(&format!(
            "/bigquery/v2/projects/proj/queries/{job}?maxResults=0"
        ))
        .await;
    assert_eq!(done["jobComplete"], true);
    gw.stop().await;

    let gw = TestGateway::start(dir.path()).await;
    let (status, job_resource) = gw
        .get(&format!("/bigquery/v2/projects/proj/jobs/{job}"))
        .await;
    assert_eq!(status, 200, "{job_resource}");
    assert_eq!(job_resource["status"]["state"], "DONE");
    let (_, page) = gw
        .get(&format!(
            "/bigquery/v2/projects/proj/queries/{job}?startIndex=1200&maxResults=500"
        ))
        .await;
    assert_eq!(page["totalRows"], "1500");
    assert_eq!(page["rows"].as_array().unwrap().len(), 300);
    gw.stop().await;
}

#[tokio::test]
async fn metadata_methods_answer_in_bigquery_shapes() {
    let dir = temp();
    let gw = TestGateway::start(dir.path()).await;
    let (_, projects) = gw.get("/bigquery/v2/projects").await;
    assert_eq!(
        projects["projects"][0]["projectReference"]["projectId"],
        "proj"
    );
    let (_, datasets) = gw.get("/bigquery/v2/projects/proj/datasets").await;
    assert_eq!(
        datasets["datasets"][0]["datasetReference"]["datasetId"],
        "ds"
    );
    let (_, tables) = gw
        .get("/bigquery/v2/projects/proj/datasets/ds/tables")
        .await;
    assert_eq!(tables["tables"][0]["tableReference"]["tableId"], "people");
    let (_, table) = gw
        .get("/bigquery/v2/projects/proj/datasets/ds/tables/people")
        .await;
    assert_eq!(table["numRows"], PEOPLE.to_string());
    let types: Vec<&str> = table["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["INTEGER", "STRING", "DATE", "TIMESTAMP", "NUMERIC"],
        "the schema file's types"
    );
    assert_eq!(table["schema"]["fields"][0]["mode"], "REQUIRED");

    let (_, data) = gw
        .get("/bigquery/v2/projects/proj/datasets/ds/tables/people/data?maxResults=2&startIndex=10&selectedFields=name,balance")
        .await;
    assert_eq!(data["kind"], "bigquery#tableDataList");
    assert_eq!(data["totalRows"], PEOPLE.to_string());
    assert_eq!(data["rows"][0]["f"].as_array().unwrap().len(), 2);
    assert_eq!(data["rows"][0]["f"][0]["v"], "person \"11\"");
    assert_eq!(data["pageToken"], "o12");

    for path in [
        "/bigquery/v2/projects/nope/datasets",
        "/bigquery/v2/projects/proj/datasets/nope",
        "/bigquery/v2/projects/proj/datasets/ds/tables/nope",
        "/bigquery/v2/projects/proj/datasets/ds/tables/nope/data",
        "/bigquery/v2/projects/proj/jobs/no_such_job",
        "/bigquery/v2/projects/proj/queries/no_such_job",
    ] {
        let (status, body) = gw.get(path).await;
        assert_error(status, &body, 404, "notFound");
    }
    gw.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_bigquery_error() {
    let dir = temp();
    let gw = TestGateway::start(dir.path()).await;
    let jobs = "/bigquery/v2/projects/proj/jobs";
    let queries = "/bigquery/v2/projects/proj/queries";

    let cases: Vec<(&str, &str, u16, &str)> = vec![
        (jobs, "{not json", 400, "invalid"),
        (jobs, "", 400, "invalid"),
        (jobs, "[1,2]", 400, "invalid"),
        (
            jobs,
            r#"{"configuration":{"query":{"query":"SELECT 1","qurey":"x"}}}"#,
            400,
            "invalid",
        ),
        (
            jobs,
            r#"{"configuration":{"query":{"query":""}}}"#,
            400,
            "invalid",
        ),
        (
            jobs,
            r#"{"configuration":{"load":{}}}"#,
            501,
            "notImplemented",
        ),
        (
            jobs,
            r#"{"jobReference":{"jobId":"bad id!"},"configuration":{"query":{"query":"SELECT 1"}}}"#,
            400,
            "invalid",
        ),
        (
            jobs,
            r#"{"configuration":{"query":{"query":"SELECT 1","destinationTable":{"tableId":"x"}}}}"#,
            501,
            "notImplemented",
        ),
        (
            queries,
            r#"{"query":"SELECT 1","useLegacySql":true}"#,
            400,
            "invalidQuery",
        ),
        (
            queries,
            r#"{"query":"SELEC 1","useLegacySql":false}"#,
            400,
            "invalidQuery",
        ),
        (
            queries,
            r#"{"query":"DROP TABLE proj.ds.people","useLegacySql":false}"#,
            403,
            "accessDenied",
        ),
        (
            queries,
            r#"{"query":"DROP TABLE proj.ds.people (((","useLegacySql":false}"#,
            403,
            "accessDenied",
        ),
        (
            queries,
            r#"{"query":"SELECT * FROM proj.ds.missing","useLegacySql":false}"#,
            404,
            "notFound",
        ),
        (
            queries,
            r#"{"query":"SELECT @x","queryParameters":[{"name":"x","parameterType":{"type":"INT64"},"parameterValue":{"value":"abc"}}]}"#,
            400,
            "invalidQuery",
        ),
        (
            queries,
            r#"{"query":"SELECT 1","maxResults":-5}"#,
            400,
            "invalid",
        ),
        (queries, "\u{0}\u{1}garbage", 400, "invalid"),
    ];
    for (path, body, code, reason) in cases {
        let (status, error) = gw.post(path, body).await;
        assert_error(status, &error, code, reason);
    }

    let (status, body) = gw.get("/nowhere").await;
    assert_error(status, &body, 404, "notFound");
    let (status, body) = gw
        .call(
            "DELETE",
            "/bigquery/v2/projects/proj/datasets/ds",
            None,
            &[],
        )
        .await;
    assert_error(status, &body, 501, "notImplemented");
    let (status, body) = gw
        .get("/bigquery/v2/projects/proj/queries/x?maxResults=ten")
        .await;
    assert_error(status, &body, 400, "invalid");
    let (status, body) = gw
        .get("/bigquery/v2/projects/proj/queries/x?pageToken=%FF")
        .await;
    assert_eq!(status / 100, 4, "{body}");
    let (status, body) = gw
        .call(
            "GET",
            "/bigquery/v2/projects",
            None,
            &[("Authorization", "Basic abc")],
        )
        .await;
    assert_error(status, &body, 401, "unauthorized");
    gw.stop().await;
}

#[tokio::test]
async fn a_failed_insert_is_a_done_job_carrying_the_error() {
    let dir = temp();
    let gw = TestGateway::start(dir.path()).await;
    let (status, job) = gw
        .post(
            "/bigquery/v2/projects/proj/jobs",
            r#"{"jobReference":{"jobId":"broken"},"configuration":{"query":{"query":"SELECT nope FROM proj.ds.people","useLegacySql":false}}}"#,
        )
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["status"]["state"], "DONE");
    assert_eq!(job["status"]["errorResult"]["reason"], "invalidQuery");
    let (status, results) = gw.get("/bigquery/v2/projects/proj/queries/broken").await;
    assert_error(status, &results, 400, "invalidQuery");
    gw.stop().await;
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413_and_the_gateway_keeps_serving() {
    let dir = temp();
    let gw = TestGateway::start(dir.path()).await;
    let huge = format!(r#"{{"query":"SELECT '{}'"}}"#, "x".repeat(200 * 1024));
    let (status, body) = gw.post("/bigquery/v2/projects/proj/queries", &huge).await;
    assert_error(status, &body, 413, "invalid");
    let (status, _) = gw.get("/bigquery/v2/projects").await;
    assert_eq!(status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn hostile_sql_is_refused_without_harm() {
    let dir = temp();
    let gw = TestGateway::start(dir.path()).await;
    let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    let many_params = (0..2000)
        .map(|i| format!("@p{i}"))
        .collect::<Vec<_>>()
        .join(" + ");
    let cases = [
        deep,
        format!("SELECT {many_params}"),
        "SELECT 1; SELECT 2".to_string(),
        "EXECUTE IMMEDIATE 'SELECT 1'".to_string(),
        "SELECT * FROM `proj.ds.people`; DROP TABLE proj.ds.people".to_string(),
        "SELECT '\u{0}'".to_string() + &"\u{202e}".repeat(100),
    ];
    for sql in cases {
        let body = json!({"query": sql, "useLegacySql": false}).to_string();
        let (status, error) = gw.post("/bigquery/v2/projects/proj/queries", &body).await;
        assert!(
            (400..500).contains(&status),
            "{}: {status} {error}",
            sql.chars().take(60).collect::<String>()
        );
        assert!(error["error"]["errors"][0]["reason"].is_string(), "{error}");
    }
    let (status, _) = gw.get("/bigquery/v2/projects").await;
    assert_eq!(status, 200, "still serving");
    gw.stop().await;
}

#[tokio::test]
async fn cancelling_a_finished_job_leaves_it_done() {
    let dir = temp();
    let gw = TestGateway::start(dir.path()).await;
    let job = run_query(&gw, "SELECT 1").await;
    let _ = gw
        .get(&format!(
            "/bigquery/v2/projects/proj/queries/{job}?maxResults=0"
        ))
        .await;
    let (status, cancelled) = gw
        .post(&format!("/bigquery/v2/projects/proj/jobs/{job}/cancel"), "")
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["kind"], "bigquery#jobCancelResponse");
    assert_eq!(cancelled["job"]["status"]["state"], "DONE");
    assert!(cancelled["job"]["status"].get("errorResult").is_none());
    gw.stop().await;
}

#[tokio::test]
async fn a_dry_run_estimates_bytes_from_the_columns_read() {
    let dir = temp();
    let gw = TestGateway::start(dir.path()).await;
    let dry = |sql: &str| {
        json!({"configuration": {"dryRun": true, "query": {"query": sql, "useLegacySql": false}}})
            .to_string()
    };
    let (_, all) = gw
        .post(
            "/bigquery/v2/projects/proj/jobs",
            &dry("SELECT * FROM proj.ds.people"),
        )
        .await;
    let (_, one) = gw
        .post(
            "/bigquery/v2/projects/proj/jobs",
            &dry("SELECT id FROM proj.ds.people"),
        )
        .await;
    let bytes = |v: &Value| {
        v["statistics"]["query"]["totalBytesProcessed"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(bytes(&one), 8 * PEOPLE as u64, "INT64 is 8 bytes a row");
    assert!(bytes(&all) > bytes(&one));
    assert_eq!(all["status"]["state"], "DONE");
    assert_eq!(
        all["statistics"]["query"]["schema"]["fields"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let (status, _) = gw
        .get(&format!(
            "/bigquery/v2/projects/proj/jobs/{}",
            all["jobReference"]["jobId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 404, "a dry run is not a job");

    let limited = json!({"query": "SELECT * FROM proj.ds.people", "useLegacySql": false, "maximumBytesBilled": "10"}).to_string();
    let (status, error) = gw
        .post("/bigquery/v2/projects/proj/queries", &limited)
        .await;
    assert_error(status, &error, 400, "bytesBilledLimitExceeded");
    gw.stop().await;
}

/// A query that runs far longer than any test: a three-way cross join
/// summing 15.6 billion products.
const ENDLESS: &str =
    "SELECT SUM(a.id * b.id + c.id) AS s FROM proj.ds.people a, proj.ds.people b, proj.ds.people c";

#[tokio::test]
async fn an_unfinished_job_is_running_and_calls_hold_then_answer_incomplete() {
    let dir = temp();
    let gw = TestGateway::start(dir.path()).await;
    let job = run_query(&gw, ENDLESS).await;
    let results = format!("/bigquery/v2/projects/proj/queries/{job}");

    let (_, resource) = gw
        .get(&format!("/bigquery/v2/projects/proj/jobs/{job}"))
        .await;
    assert!(
        ["PENDING", "RUNNING"].contains(&resource["status"]["state"].as_str().unwrap()),
        "{resource}"
    );
    assert!(
        resource["statistics"].get("endTime").is_none(),
        "{resource}"
    );

    // Held for timeoutMs, then `jobComplete: false` and no rows.
    let started = std::time::Instant::now();
    let (status, page) = gw.get(&format!("{results}?timeoutMs=300")).await;
    assert_eq!(status, 200, "{page}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(page["kind"], "bigquery#getQueryResultsResponse");
    assert_eq!(page["jobComplete"], false);
    assert_eq!(page["jobReference"]["jobId"], job.as_str());
    assert!(page.get("rows").is_none() && page.get("totalRows").is_none());

    // A longer wait than the configured hold (5 s here) is cut to it.
    let started = std::time::Instant::now();
    let (_, page) = gw.get(&format!("{results}?timeoutMs=60000")).await;
    let held = started.elapsed();
    assert_eq!(page["jobComplete"], false);
    assert!(
        held >= std::time::Duration::from_secs(5) && held < std::time::Duration::from_secs(30),
        "held {held:?}"
    );

    // jobs.query holds the same way.
    let (status, page) = gw
        .post(
            "/bigquery/v2/projects/proj/queries",
            &json!({"query": ENDLESS, "useLegacySql": false, "timeoutMs": 200}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["jobComplete"], false);
    let second = page["jobReference"]["jobId"].as_str().unwrap().to_string();

    // Cancelling ends both: DONE, with BigQuery's `stopped` reason.
    for id in [&job, &second] {
        let (status, _) = gw
            .post(&format!("/bigquery/v2/projects/proj/jobs/{id}/cancel"), "")
            .await;
        assert_eq!(status, 200);
        let (status, error) = gw
            .get(&format!(
                "/bigquery/v2/projects/proj/queries/{id}?timeoutMs=5000"
            ))
            .await;
        assert_error(status, &error, 400, "stopped");
        let (_, resource) = gw
            .get(&format!("/bigquery/v2/projects/proj/jobs/{id}"))
            .await;
        assert_eq!(resource["status"]["state"], "DONE", "{resource}");
        assert_eq!(resource["status"]["errorResult"]["reason"], "stopped");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_query_over_the_memory_limit_fails_as_resources_exceeded() {
    let dir = temp();
    let gw =
        TestGateway::start_with(dir.path(), |config| config.query_memory_bytes = 16 * 1024).await;
    let (status, error) = gw
        .post(
            "/bigquery/v2/projects/proj/queries",
            r#"{"query":"SELECT COUNT(*) FROM proj.ds.people a JOIN proj.ds.people b ON a.name = b.name","useLegacySql":false}"#,
        )
        .await;
    assert_error(status, &error, 400, "resourcesExceeded");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more memory"),
        "{error}"
    );
    // The gateway keeps serving queries that fit.
    let (status, page) = gw
        .post(
            "/bigquery/v2/projects/proj/queries",
            r#"{"query":"SELECT COUNT(*) AS n FROM proj.ds.people","useLegacySql":false}"#,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["rows"][0]["f"][0]["v"], PEOPLE.to_string());
    gw.stop().await;
}

#[tokio::test]
async fn every_request_needs_a_verified_token() {
    let dir = temp();
    let gw = TestGateway::start(dir.path()).await;
    let response = gw
        .response_text("GET", "/bigquery/v2/projects", &[])
        .await
        .to_ascii_lowercase();
    assert!(response.starts_with("http/1.1 401"), "{response}");
    assert!(response.contains("www-authenticate: bearer"), "{response}");
    assert!(response.contains("\"unauthorized\""), "{response}");

    let token = gw.token_for("mallory", &["testers"]);
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged_claims = base64_url(br#"{"sub":"mallory","groups":["testers"]}"#);
    parts[1] = &forged_claims;
    let forged = parts.join(".");
    for bad in [forged.as_str(), "abc.def.ghi", "not a token at all"] {
        let header = format!("Bearer {bad}");
        let (status, body) = gw
            .call(
                "GET",
                "/bigquery/v2/projects",
                None,
                &[("Authorization", &header)],
            )
            .await;
        assert_error(status, &body, 401, "unauthorized");
        assert!(!body.to_string().contains(bad), "the token is never echoed");
    }
    gw.stop().await;
}

fn base64_url(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

#[tokio::test]
async fn the_policy_decides_queries_metadata_and_limits() {
    let dir = temp();
    let gw = TestGateway::start(dir.path()).await;
    let outsider = format!("Bearer {}", gw.token_for("olive", &["outsiders"]));
    let as_outsider = [("Authorization", outsider.as_str())];

    // metadata: only what the outsider may read is listed or described
    let (status, datasets) = gw
        .call(
            "GET",
            "/bigquery/v2/projects/proj/datasets",
            None,
            &as_outsider,
        )
        .await;
    assert_eq!(status, 200, "{datasets}");
    let ids: Vec<&str> = datasets["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["datasetReference"]["datasetId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["public"]);
    for path in [
        "/bigquery/v2/projects/proj/datasets/ds",
        "/bigquery/v2/projects/proj/datasets/ds/tables",
        "/bigquery/v2/projects/proj/datasets/ds/tables/people",
        "/bigquery/v2/projects/proj/datasets/ds/tables/people/data",
    ] {
        let (status, body) = gw.call("GET", path, None, &as_outsider).await;
        assert_error(status, &body, 403, "accessDenied");
    }
    // tabledata.list obeys max_rows (outsiders: 1): the first page is cut
    // at the limit and points on, and reading on is refused by name.
    let (status, page) = gw
        .call(
            "GET",
            "/bigquery/v2/projects/proj/datasets/public/tables/notes/data",
            None,
            &as_outsider,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["rows"].as_array().map(Vec::len), Some(1), "{page}");
    let token = page["pageToken"].as_str().expect("a page token").to_owned();
    for path in [
        format!("/bigquery/v2/projects/proj/datasets/public/tables/notes/data?pageToken={token}"),
        "/bigquery/v2/projects/proj/datasets/public/tables/notes/data?startIndex=1".to_owned(),
    ] {
        let (status, body) = gw.call("GET", &path, None, &as_outsider).await;
        assert_error(status, &body, 403, "accessDenied");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("limits.max_rows"), "{message}");
    }

    // a query reading outside the policy is refused naming the policy and table
    let query = |sql: &str| json!({"query": sql, "useLegacySql": false}).to_string();
    let (status, body) = gw
        .call(
            "POST",
            "/bigquery/v2/projects/proj/queries",
            Some(query("SELECT name FROM proj.ds.people").as_bytes()),
            &as_outsider,
        )
        .await;
    assert_error(status, &body, 403, "accessDenied");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("proj.ds.people"), "{message}");
    assert!(message.contains("outsiders"), "{message}");

    // max_rows: a result over the limit ends refused, its rows never served
    let (status, body) = gw
        .call(
            "POST",
            "/bigquery/v2/projects/proj/queries",
            Some(query("SELECT * FROM proj.public.notes").as_bytes()),
            &as_outsider,
        )
        .await;
    assert_error(status, &body, 403, "accessDenied");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limits.max_rows"),
        "{body}"
    );

    // max_bytes_billed is checked against the dry-run estimate
    let frugal = format!("Bearer {}", gw.token_for("fred", &["frugal"]));
    let (status, body) = gw
        .call(
            "POST",
            "/bigquery/v2/projects/proj/queries",
            Some(query("SELECT * FROM proj.ds.people").as_bytes()),
            &[("Authorization", frugal.as_str())],
        )
        .await;
    assert_error(status, &body, 403, "accessDenied");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_bytes_billed"),
        "{body}"
    );

    // jobs belong to whoever made them
    let job = run_query(&gw, "SELECT 1").await;
    let (status, body) = gw
        .call(
            "GET",
            &format!("/bigquery/v2/projects/proj/jobs/{job}"),
            None,
            &as_outsider,
        )
        .await;
    assert_error(status, &body, 404, "notFound");
    gw.stop().await;
}

/// Issue: labels tell the truth. A caller may not set a label key that
/// begins with `sluice` (in any case), on jobs.insert or jobs.query; other
/// labels pass.
#[tokio::test]
async fn caller_labels_beginning_with_sluice_are_refused() {
    let dir = temp();
    let gw = TestGateway::start(dir.path()).await;
    for key in ["sluice-principal", "Sluice_run", "sluicex"] {
        let insert = json!({"configuration": {"query": {"query": "SELECT 1", "useLegacySql": false}, "labels": {key: "someone-else"}}});
        let (status, body) = gw
            .post("/bigquery/v2/projects/proj/jobs", &insert.to_string())
            .await;
        assert_error(status, &body, 400, "invalid");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("labels.reserved"),
            "{body}"
        );
        let query = json!({"query": "SELECT 1", "useLegacySql": false, "labels": {key: "x"}});
        let (status, body) = gw
            .post("/bigquery/v2/projects/proj/queries", &query.to_string())
            .await;
        assert_error(status, &body, 400, "invalid");
    }
    let query = json!({"query": "SELECT 1", "useLegacySql": false, "labels": {"team": "etl"}});
    let (status, body) = gw
        .post("/bigquery/v2/projects/proj/queries", &query.to_string())
        .await;
    assert_eq!(status, 200, "{body}");
    gw.stop().await;
}
