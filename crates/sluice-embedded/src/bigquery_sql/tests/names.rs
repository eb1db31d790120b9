//! Statement checks and name resolution.

use super::{error, request, rows, run, run_request, scalar};
use crate::bigquery_sql::{referenced_tables, translate};
use sluice_warehouse::{TableRef, WarehouseErrorKind};

#[tokio::test]
async fn table_names_resolve_in_every_spelling() {
    for sql in [
        "SELECT COUNT(*) FROM demo.shop.orders",
        "SELECT COUNT(*) FROM `demo.shop.orders`",
        "SELECT COUNT(*) FROM `demo`.shop.orders",
        "SELECT COUNT(*) FROM shop.orders",
        "SELECT COUNT(*) FROM `acme-prod.sales.orders`",
        "SELECT COUNT(*) FROM `acme-prod`.sales.orders",
    ] {
        assert_eq!(scalar(sql).await.0, "4", "{sql}");
    }
    let mut with_default = request("SELECT COUNT(*) FROM orders");
    with_default.default_dataset = Some(("demo".into(), "shop".into()));
    assert_eq!(
        rows(&run_request(&with_default).await.unwrap()),
        vec![vec!["4"]]
    );
}

#[tokio::test]
async fn one_part_name_needs_a_default_dataset() {
    let e = error("SELECT * FROM orders").await;
    assert_eq!(
        e,
        "Table name \"orders\" missing dataset while no default dataset is set in the request."
    );
}

#[test]
fn information_schema_resolves_to_the_dataset_view() {
    let tables = referenced_tables(&request(
        "SELECT * FROM shop.information_schema.tables, demo.shop.INFORMATION_SCHEMA.COLUMNS",
    ))
    .unwrap();
    assert_eq!(
        tables,
        vec![
            TableRef::new("demo", "shop", "INFORMATION_SCHEMA.COLUMNS"),
            TableRef::new("demo", "shop", "INFORMATION_SCHEMA.TABLES"),
        ]
    );
    let e = translate(&request(
        "SELECT * FROM `region-us`.INFORMATION_SCHEMA.JOBS",
    ))
    .unwrap_err();
    assert!(
        e.message.contains("Region-qualified INFORMATION_SCHEMA"),
        "{e}"
    );
}

#[tokio::test]
async fn information_schema_is_queried_under_its_registered_name() {
    assert_eq!(
        scalar("SELECT COUNT(*) FROM shop.INFORMATION_SCHEMA.TABLES")
            .await
            .0,
        "2"
    );
}

#[test]
fn ctes_are_not_qualified_and_tables_are_listed_once() {
    let tables = referenced_tables(&request(
        "WITH big AS (SELECT * FROM shop.orders WHERE amount > 5) \
         SELECT * FROM big JOIN `demo.shop.orders` o ON big.id = o.id",
    ))
    .unwrap();
    assert_eq!(tables, vec![TableRef::new("demo", "shop", "orders")]);
}

#[tokio::test]
async fn cte_queries_run() {
    let sql = "WITH big AS (SELECT id FROM shop.orders WHERE amount > 5) SELECT COUNT(*) FROM big";
    assert_eq!(scalar(sql).await.0, "2");
}

#[test]
fn wildcard_tables_are_refused() {
    let e = translate(&request("SELECT * FROM `demo.shop.events_*`")).unwrap_err();
    assert!(e.message.contains("Wildcard tables"), "{e}");
}

#[test]
fn only_a_single_query_is_accepted() {
    for (sql, construct) in [
        ("DROP TABLE demo.shop.orders", "DROP TABLE statements"),
        (
            "INSERT INTO shop.orders (id) VALUES (1)",
            "INSERT statements",
        ),
        ("DELETE FROM shop.orders WHERE true", "DELETE statements"),
        ("CREATE TABLE shop.x (a INT64)", "CREATE TABLE statements"),
        ("SELECT 1; SELECT 2", "Multi-statement"),
        (
            "EXPORT DATA OPTIONS(uri='gs://b/*.csv', format='CSV') AS SELECT 1",
            "EXPORT DATA statements",
        ),
    ] {
        let e = translate(&request(sql)).unwrap_err();
        assert_eq!(e.kind, WarehouseErrorKind::InvalidQuery);
        assert!(e.message.starts_with(construct), "{sql}: {e}");
        assert!(
            e.message.ends_with("is not supported by this warehouse"),
            "{sql}: {e}"
        );
    }
}

#[test]
fn syntax_errors_say_so() {
    let e = translate(&request("SELEC 1")).unwrap_err();
    assert_eq!(e.kind, WarehouseErrorKind::InvalidQuery);
    assert!(e.message.starts_with("Syntax error:"), "{e}");
}

#[tokio::test]
async fn backticked_columns_are_case_insensitive() {
    let batches = run("SELECT `ID`, o.`Customer` FROM shop.orders AS `O` WHERE `Id` = 2")
        .await
        .unwrap();
    assert_eq!(rows(&batches), vec![vec!["2", "bob"]]);
}

#[test]
fn hostile_nesting_is_an_error_not_a_crash() {
    let deep = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
    assert!(translate(&request(&deep)).is_err());
    let chain = format!("SELECT 1{}", "+1".repeat(4_000));
    let e = translate(&request(&chain)).unwrap_err();
    assert!(e.message.contains("too complex"), "{e}");
    let long_chain = format!("SELECT 1{}", "+1".repeat(100_000));
    assert!(
        translate(&request(&long_chain))
            .unwrap_err()
            .message
            .contains("too complex")
    );
    let list: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
    let huge_in = format!("SELECT 1 FROM shop.orders WHERE id IN ({})", list.join(","));
    assert!(
        translate(&request(&huge_in))
            .unwrap_err()
            .message
            .contains("IN list")
    );
}

#[test]
fn a_chain_just_under_the_limit_is_walked_on_a_small_stack() {
    // Tokio's worker threads have 2 MiB stacks; the tree must be walkable
    // (and droppable) there.
    let chain = format!("SELECT 1{}", " AND TRUE".repeat(4_900));
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || translate(&request(&chain)).map(|_| ()))
        .unwrap();
    assert!(handle.join().unwrap().is_err());
}
