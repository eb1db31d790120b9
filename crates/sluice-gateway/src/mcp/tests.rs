use serde_json::json;

use super::*;

#[test]
fn ids_are_percent_encoded_into_one_path_segment() {
    assert_eq!(segment("demo-project"), "demo-project");
    assert_eq!(segment("../../x"), "..%2F..%2Fx");
    assert_eq!(segment("a b?c#d"), "a%20b%3Fc%23d");
    assert_eq!(segment("é"), "%C3%A9");
}

#[test]
fn a_bigquery_error_becomes_its_message_reason_and_status() {
    let body = json!({"error": {"code": 403, "message": "Access Denied: rule guardrails.deny.drop.",
        "errors": [{"reason": "accessDenied", "message": "…"}]}});
    assert_eq!(
        refusal_text(StatusCode::FORBIDDEN, &body),
        "Access Denied: rule guardrails.deny.drop. (accessDenied, HTTP 403)"
    );
    assert_eq!(
        refusal_text(StatusCode::BAD_GATEWAY, &Value::Null),
        "the request failed (HTTP 502)"
    );
}

#[test]
fn the_read_only_tool_takes_queries_and_nothing_else() {
    assert!(check_read_only("p", "SELECT 1").is_ok());
    assert!(check_read_only("p", "WITH a AS (SELECT 1 AS x) SELECT x FROM a").is_ok());
    for sql in [
        "DROP TABLE d.t",
        "DELETE FROM d.t WHERE true",
        "INSERT INTO d.t (x) VALUES (1)",
        "SELECT 1; DROP TABLE d.t",
        "CREATE TABLE d.t AS SELECT 1 AS x",
    ] {
        let refusal = check_read_only("p", sql).unwrap_err();
        assert!(
            refusal.0.contains("execute_sql_readonly"),
            "{sql}: {}",
            refusal.0
        );
    }
}

#[test]
fn numbers_are_taken_as_json_numbers_or_decimal_strings() {
    let args = Args(
        json!({"a": 5, "b": "7", "c": -1, "d": "x", "e": true})
            .as_object()
            .unwrap()
            .clone(),
    );
    assert_eq!(args.number("a").unwrap(), Some(5));
    assert_eq!(args.number("b").unwrap(), Some(7));
    assert_eq!(args.number("missing").unwrap(), None);
    for bad in ["c", "d", "e"] {
        assert!(args.number(bad).is_err(), "{bad}");
    }
    assert!(args.required("missing").unwrap_err().0.contains("required"));
    assert!(args.flag("e").unwrap());
    assert!(args.flag("a").is_err());
}

#[test]
fn the_call_window_refuses_past_the_limit_per_principal() {
    let window = CallWindow::default();
    for _ in 0..3 {
        window.admit("a", 3).unwrap();
    }
    let refusal = window.admit("a", 3).unwrap_err();
    assert!(refusal.0.contains("mcp.calls_per_minute"), "{}", refusal.0);
    window.admit("b", 3).unwrap();
}

fn answer(rows: usize) -> Value {
    json!({
        "schema": {"fields": [
            {"name": "id", "type": "INTEGER"},
            {"name": "tags", "type": "STRING", "mode": "REPEATED"},
            {"name": "address", "type": "RECORD", "fields": [
                {"name": "city", "type": "STRING"},
                {"name": "zip", "type": "STRING"}
            ]}
        ]},
        "rows": (0..rows).map(|i| json!({"f": [
            {"v": i.to_string()},
            {"v": [{"v": "a"}, {"v": "b"}]},
            {"v": {"f": [{"v": "Paris"}, {"v": null}]}}
        ]})).collect::<Vec<_>>(),
        "totalRows": rows.to_string(),
        "jobReference": {"projectId": "p", "jobId": "job_1"},
        "jobComplete": true,
        "totalBytesProcessed": "10",
    })
}

#[test]
fn rows_become_objects_keyed_by_column_name() {
    let out = results::rows(&answer(2), 0, 1 << 20);
    assert_eq!(
        out["rows"][1],
        json!({"id": "1", "tags": ["a", "b"], "address": {"city": "Paris", "zip": null}})
    );
    assert_eq!(out["jobId"], "job_1");
    assert_eq!(out["truncated"], false);
    assert!(out.get("pageToken").is_none());
}

#[test]
fn rows_past_the_byte_limit_are_cut_with_the_next_page_stated() {
    let one = results::rows(&answer(1), 0, 1 << 20)["rows"][0]
        .to_string()
        .len();
    let out = results::rows(&answer(10), 20, one * 3 + 1);
    assert_eq!(out["rows"].as_array().unwrap().len(), 3);
    assert_eq!(out["truncated"], true);
    assert_eq!(out["pageToken"], crate::params::page_token::encode(23));
    assert!(out["next"].as_str().unwrap().contains("get_query_results"));
}

#[test]
fn a_page_shorter_than_the_result_is_truncated_too() {
    let mut page = answer(2);
    page["totalRows"] = json!("5");
    let out = results::rows(&page, 0, 1 << 20);
    assert_eq!(out["truncated"], true);
    assert_eq!(out["pageToken"], crate::params::page_token::encode(2));
}

#[test]
fn every_tool_is_listed_once_with_googles_names_first() {
    let names: Vec<&str> = tools::all().iter().map(|t| &*t.name).collect();
    assert_eq!(
        &names[..9],
        &[
            "list_dataset_ids",
            "get_dataset_info",
            "list_table_ids",
            "get_table_info",
            "execute_sql",
            "execute_sql_readonly",
            "get_query_results",
            "get_job",
            "cancel_job"
        ]
    );
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len());
}
