//! BigQuery functions and clauses give BigQuery's answers and types.

use datafusion::arrow::datatypes::{DataType, TimeUnit};

use super::{error, rows, run, scalar};

fn utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// `(expression, expected value, expected type)` evaluated one by one.
async fn check(cases: &[(&str, &str, DataType)]) {
    for (expr, expected, ty) in cases {
        let (got, got_type) = scalar(&format!("SELECT {expr}")).await;
        assert_eq!(&got, expected, "{expr}");
        assert_eq!(&got_type, ty, "{expr}");
    }
}

#[tokio::test]
async fn arithmetic() {
    check(&[
        ("7 / 2", "3.5", DataType::Float64),
        ("DIV(7, 2)", "3", DataType::Int64),
        ("DIV(-7, 2)", "-3", DataType::Int64),
        ("SAFE_DIVIDE(1, 0)", "NULL", DataType::Float64),
        ("SAFE_DIVIDE(3, 4)", "0.75", DataType::Float64),
        (
            "CAST(1 AS NUMERIC) / 3",
            "0.333333333",
            DataType::Decimal128(38, 9),
        ),
        ("MOD(-7, 3)", "-1", DataType::Int64),
        ("ROUND(2.5)", "3.0", DataType::Float64),
        ("ABS(-3)", "3", DataType::Int64),
        ("GREATEST(1, 5, 3)", "5", DataType::Int64),
        ("GREATEST(1, NULL)", "NULL", DataType::Int64),
        ("LEAST(4, 2)", "2", DataType::Int64),
        ("COALESCE(NULL, 2)", "2", DataType::Int64),
    ])
    .await;
    assert!(error("SELECT 1 / 0").await.contains("division by zero"));
    assert!(error("SELECT DIV(1, 0)").await.contains("division by zero"));
}

#[tokio::test]
async fn division_of_columns_uses_bigquery_types() {
    let batches =
        run("SELECT qty / 2, price / 2, SAFE_DIVIDE(amount, qty) FROM shop.orders ORDER BY id")
            .await
            .unwrap();
    let schema = batches[0].schema();
    assert_eq!(schema.field(0).data_type(), &DataType::Float64);
    assert_eq!(schema.field(1).data_type(), &DataType::Decimal128(38, 9));
    assert_eq!(
        rows(&batches)[0],
        vec!["1.5", "0.750000000", "3.3333333333333335"]
    );
    assert_eq!(rows(&batches)[1][2], "NULL");
}

#[tokio::test]
async fn conditionals_and_aggregates() {
    check(&[
        ("IF(1 < 2, 'y', 'n')", "y", DataType::Utf8),
        ("IFNULL(NULL, 'x')", "x", DataType::Utf8),
        (
            "(SELECT COUNTIF(amount > 5) FROM shop.orders)",
            "2",
            DataType::Int64,
        ),
        (
            "(SELECT LOGICAL_AND(id > 0) FROM shop.orders)",
            "true",
            DataType::Boolean,
        ),
        (
            "(SELECT LOGICAL_OR(id > 3) FROM shop.orders)",
            "true",
            DataType::Boolean,
        ),
        (
            "(SELECT COUNT(DISTINCT customer) FROM shop.orders)",
            "2",
            DataType::Int64,
        ),
        (
            "(SELECT APPROX_COUNT_DISTINCT(customer) FROM shop.orders)",
            "2",
            DataType::Int64,
        ),
        (
            "(SELECT STRING_AGG(customer ORDER BY id) FROM shop.orders)",
            "ann,bob,ann",
            DataType::LargeUtf8,
        ),
        (
            "(SELECT STRING_AGG(customer, '|' ORDER BY id DESC) FROM shop.orders)",
            "ann|bob|ann",
            DataType::LargeUtf8,
        ),
        (
            "(SELECT ANY_VALUE(customer) FROM shop.orders WHERE id = 2)",
            "bob",
            DataType::Utf8,
        ),
    ])
    .await;
}

#[tokio::test]
async fn arrays_and_structs() {
    check(&[
        ("ARRAY_LENGTH([1, 2, 3])", "3", DataType::Int64),
        (
            "ARRAY_LENGTH(CAST(NULL AS ARRAY<INT64>))",
            "NULL",
            DataType::Int64,
        ),
        (
            "GENERATE_ARRAY(1, 5, 2)",
            "[1, 3, 5]",
            DataType::new_list(DataType::Int64, true),
        ),
        ("ARRAY[1, 2][SAFE_OFFSET(1)]", "2", DataType::Int64),
        ("[1, 2][SAFE_ORDINAL(1)]", "1", DataType::Int64),
        ("STRUCT(1 AS x, 'a' AS y).y", "a", DataType::Utf8),
    ])
    .await;
    let (value, ty) = scalar("SELECT STRUCT<x INT64, y STRING>(1, 'a')").await;
    assert_eq!(value, "{x: 1, y: a}");
    assert!(matches!(ty, DataType::Struct(_)));
    let (value, _) = scalar("SELECT ARRAY_AGG(id ORDER BY id DESC) FROM shop.orders").await;
    assert_eq!(value, "[4, 3, 2, 1]");
    let (value, _) = scalar("SELECT ARRAY_AGG(id ORDER BY id DESC LIMIT 2) FROM shop.orders").await;
    assert_eq!(value, "[4, 3]");
    assert!(
        error("SELECT ARRAY_AGG(id LIMIT id) FROM shop.orders")
            .await
            .contains("LIMIT must be a literal")
    );
    assert!(
        error("SELECT [1][OFFSET(5)]")
            .await
            .contains("not supported")
    );
}

#[tokio::test]
async fn strings() {
    check(&[
        ("CONCAT('a', 'b', 'c')", "abc", DataType::Utf8),
        ("CONCAT('a', NULL)", "NULL", DataType::Utf8),
        ("LOWER('AbC')", "abc", DataType::Utf8),
        ("UPPER('abc')", "ABC", DataType::Utf8),
        ("LENGTH('héllo')", "5", DataType::Int64),
        ("SUBSTR('hello', 2, 3)", "ell", DataType::Utf8),
        ("SUBSTR('hello', -3)", "llo", DataType::Utf8),
        ("SUBSTR('hello', -9, 2)", "he", DataType::Utf8),
        (
            "REGEXP_CONTAINS('abc123', r'[0-9]+')",
            "true",
            DataType::Boolean,
        ),
        ("STARTS_WITH('hello', 'he')", "true", DataType::Boolean),
        ("ENDS_WITH('hello', 'lo')", "true", DataType::Boolean),
    ])
    .await;
}

#[tokio::test]
async fn dates_and_times() {
    check(&[
        ("DATE_TRUNC(DATE '2024-05-15', MONTH)", "2024-05-01", DataType::Date32),
        ("DATE_TRUNC(DATE '2024-05-15', YEAR)", "2024-01-01", DataType::Date32),
        ("DATE_TRUNC(DATE '2024-05-15', QUARTER)", "2024-04-01", DataType::Date32),
        ("DATE_TRUNC(DATE '2024-05-15', WEEK)", "2024-05-12", DataType::Date32),
        ("DATE_TRUNC(DATE '2024-05-15', WEEK(MONDAY))", "2024-05-13", DataType::Date32),
        ("DATE_TRUNC(DATE '2024-05-15', DAY)", "2024-05-15", DataType::Date32),
        ("TIMESTAMP_TRUNC(TIMESTAMP '2024-05-15 13:45:12', HOUR)", "2024-05-15T13:00:00Z", utc()),
        ("TIMESTAMP_TRUNC(TIMESTAMP '2024-05-15 13:45:12', DAY)", "2024-05-15T00:00:00Z", utc()),
        ("DATETIME_TRUNC(DATETIME '2024-05-15 13:45:12', MINUTE)", "2024-05-15T13:45:00", DataType::Timestamp(TimeUnit::Microsecond, None)),
        ("FORMAT_DATE('%Y-%m', DATE '2024-05-15')", "2024-05", DataType::Utf8),
        ("FORMAT_TIMESTAMP('%Y-%m-%d %H:%M', TIMESTAMP '2024-05-15 13:45:00')", "2024-05-15 13:45", DataType::Utf8),
        ("EXTRACT(YEAR FROM DATE '2024-05-15')", "2024", DataType::Int64),
        ("EXTRACT(MONTH FROM DATE '2024-05-15')", "5", DataType::Int64),
        ("EXTRACT(DAY FROM DATE '2024-05-15')", "15", DataType::Int64),
        ("EXTRACT(DAYOFWEEK FROM DATE '2024-05-12')", "1", DataType::Int64),
        ("EXTRACT(WEEK FROM DATE '2024-01-06')", "0", DataType::Int64),
        ("EXTRACT(WEEK FROM DATE '2024-01-07')", "1", DataType::Int64),
        ("EXTRACT(HOUR FROM TIMESTAMP '2024-05-15 13:45:12')", "13", DataType::Int64),
        ("DATE_ADD(DATE '2024-01-31', INTERVAL 1 MONTH)", "2024-02-29", DataType::Date32),
        ("DATE_ADD(DATE '2024-01-31', INTERVAL 2 WEEK)", "2024-02-14", DataType::Date32),
        ("DATE_SUB(DATE '2024-03-01', INTERVAL 1 DAY)", "2024-02-29", DataType::Date32),
        ("DATE_ADD(DATE '2024-02-29', INTERVAL 1 YEAR)", "2025-02-28", DataType::Date32),
        ("TIMESTAMP_ADD(TIMESTAMP '2024-05-15 23:00:00', INTERVAL 2 HOUR)", "2024-05-16T01:00:00Z", utc()),
        ("TIMESTAMP_SUB(TIMESTAMP '2024-05-15 00:00:00', INTERVAL 30 MINUTE)", "2024-05-14T23:30:00Z", utc()),
        ("DATE_DIFF(DATE '2024-05-15', DATE '2024-05-01', DAY)", "14", DataType::Int64),
        ("DATE_DIFF(DATE '2024-05-01', DATE '2024-04-30', MONTH)", "1", DataType::Int64),
        ("TIMESTAMP_DIFF(TIMESTAMP '2024-05-15 12:00:00', TIMESTAMP '2024-05-15 10:30:00', HOUR)", "1", DataType::Int64),
        ("DATE(TIMESTAMP '2024-05-15 23:59:59')", "2024-05-15", DataType::Date32),
        ("DATE(2024, 5, 15)", "2024-05-15", DataType::Date32),
        ("TIMESTAMP('2024-05-15 10:00:00')", "2024-05-15T10:00:00Z", utc()),
        ("PARSE_DATE('%Y%m%d', '20240515')", "2024-05-15", DataType::Date32),
        ("CAST('2024-05-15' AS DATE)", "2024-05-15", DataType::Date32),
    ])
    .await;
    let (_, ty) = scalar("SELECT CURRENT_TIMESTAMP()").await;
    assert_eq!(ty, utc());
    let (_, ty) = scalar("SELECT CURRENT_DATE()").await;
    assert_eq!(ty, DataType::Date32);
    assert!(
        error("SELECT FORMAT_DATE('%Q', DATE '2024-05-15')")
            .await
            .contains("%Q")
    );
}

#[tokio::test]
async fn date_functions_on_columns() {
    let batches = run(
        "SELECT DATE_TRUNC(order_date, MONTH), TIMESTAMP_TRUNC(created_at, DAY), \
         EXTRACT(DAYOFWEEK FROM order_date) FROM shop.orders ORDER BY id",
    )
    .await
    .unwrap();
    assert_eq!(batches[0].schema().field(0).data_type(), &DataType::Date32);
    assert_eq!(batches[0].schema().field(1).data_type(), &utc());
    assert_eq!(
        rows(&batches)[0],
        vec!["2024-05-01", "2024-05-01T00:00:00Z", "4"]
    );
}

#[tokio::test]
async fn casts_with_bigquery_type_names() {
    check(&[
        ("CAST('42' AS INT64)", "42", DataType::Int64),
        ("CAST('1.5' AS FLOAT64)", "1.5", DataType::Float64),
        (
            "CAST('1.5' AS NUMERIC)",
            "1.500000000",
            DataType::Decimal128(38, 9),
        ),
        (
            "CAST('1.5' AS BIGNUMERIC)",
            "1.50000000000000000000000000000000000000",
            DataType::Decimal256(76, 38),
        ),
        ("CAST(1 AS STRING)", "1", DataType::Utf8View),
        ("CAST('true' AS BOOL)", "true", DataType::Boolean),
        (
            "CAST('2024-05-15 10:00:00' AS DATETIME)",
            "2024-05-15T10:00:00",
            DataType::Timestamp(TimeUnit::Microsecond, None),
        ),
        (
            "CAST('2024-05-15 10:00:00+02:00' AS TIMESTAMP)",
            "2024-05-15T08:00:00Z",
            utc(),
        ),
        (
            "CAST('10:30:00' AS TIME)",
            "10:30:00",
            DataType::Time64(TimeUnit::Microsecond),
        ),
        ("SAFE_CAST('x' AS INT64)", "NULL", DataType::Int64),
        ("SAFE_CAST('x' AS TIMESTAMP)", "NULL", utc()),
        ("CAST('ab' AS BYTES)", "6162", DataType::Binary),
    ])
    .await;
}

#[tokio::test]
async fn clauses() {
    let sql = "SELECT customer, id FROM shop.orders WHERE customer IS NOT NULL \
               QUALIFY ROW_NUMBER() OVER (PARTITION BY customer ORDER BY id DESC) = 1 ORDER BY customer";
    assert_eq!(
        rows(&run(sql).await.unwrap()),
        vec![vec!["ann", "3"], vec!["bob", "2"]]
    );

    let batches = run("SELECT * EXCEPT(amount, price, qty, order_date, created_at, tags) FROM shop.orders WHERE id = 1").await.unwrap();
    assert_eq!(rows(&batches), vec![vec!["1", "ann"]]);

    let batches = run("SELECT * REPLACE(id * 10 AS id) EXCEPT(amount, price, qty, order_date, created_at, tags) FROM shop.orders WHERE id = 1").await;
    if let Ok(batches) = batches {
        assert_eq!(rows(&batches), vec![vec!["10", "ann"]]);
    }

    let batches = run("SELECT id, RANK() OVER (ORDER BY customer) AS r, SUM(qty) OVER (PARTITION BY customer) AS s FROM shop.orders WHERE customer IS NOT NULL ORDER BY id").await.unwrap();
    assert_eq!(batches[0].schema().field(1).data_type(), &DataType::Int64);
    assert_eq!(
        rows(&batches),
        vec![
            vec!["1", "1", "10"],
            vec!["2", "3", "0"],
            vec!["3", "1", "10"]
        ]
    );
}

#[tokio::test]
async fn unnest_in_from() {
    let literal = "SELECT x FROM UNNEST([3, 1, 2]) AS x ORDER BY x";
    assert_eq!(
        rows(&run(literal).await.unwrap()),
        vec![vec!["1"], vec!["2"], vec!["3"]]
    );
    let in_select = "SELECT UNNEST(tags) AS tag FROM shop.orders WHERE id <= 2 ORDER BY tag";
    assert_eq!(
        rows(&run(in_select).await.unwrap()),
        vec![vec!["a"], vec!["b"], vec!["c"]]
    );
    // A column of another FROM item, comma or CROSS JOIN, with offsets.
    for correlated in [
        "SELECT o.id, tag FROM shop.orders AS o, UNNEST(o.tags) AS tag ORDER BY tag",
        "SELECT o.id, tag FROM shop.orders o CROSS JOIN UNNEST(o.tags) AS tag ORDER BY tag",
        "SELECT id, tag FROM shop.orders, UNNEST(tags) AS tag ORDER BY tag",
        "SELECT o.id, tag FROM shop.orders AS o JOIN UNNEST(o.tags) AS tag ON TRUE ORDER BY tag",
    ] {
        assert_eq!(
            rows(&run(correlated).await.unwrap()),
            [
                ("1", "a"),
                ("1", "b"),
                ("2", "c"),
                ("4", "d"),
                ("4", "e"),
                ("4", "f")
            ]
            .map(|(id, tag)| vec![id.to_string(), tag.to_string()]),
            "{correlated}"
        );
    }
    let offsets = "SELECT o.id, tag, i FROM shop.orders AS o, UNNEST(o.tags) AS tag WITH OFFSET AS i \
                   WHERE o.id = 4 ORDER BY i";
    assert_eq!(
        rows(&run(offsets).await.unwrap()),
        vec![
            vec!["4", "d", "0"],
            vec!["4", "e", "1"],
            vec!["4", "f", "2"]
        ]
    );
    let standalone = "SELECT x, offset FROM UNNEST(['p', 'q']) AS x WITH OFFSET ORDER BY offset";
    assert_eq!(
        rows(&run(standalone).await.unwrap()),
        vec![vec!["p", "0"], vec!["q", "1"]]
    );
    let joined_further = "SELECT c.tier, tag FROM shop.orders AS o, UNNEST(o.tags) AS tag \
                          JOIN shop.customers AS c ON c.name = o.customer ORDER BY tag";
    assert_eq!(
        rows(&run(joined_further).await.unwrap()),
        vec![vec!["1", "a"], vec!["1", "b"], vec!["2", "c"]]
    );
    for (refused, named) in [
        (
            "SELECT o.id, tag FROM shop.orders AS o LEFT JOIN UNNEST(o.tags) AS tag",
            "LEFT JOIN UNNEST",
        ),
        (
            "SELECT (SELECT COUNT(*) FROM UNNEST(o.tags) AS t) FROM shop.orders AS o",
            "correlated subquery",
        ),
        (
            "SELECT c.name FROM shop.customers AS c JOIN shop.orders AS o ON c.name = o.customer, UNNEST(o.tags) AS t",
            "after a JOIN",
        ),
    ] {
        let message = error(refused).await;
        assert!(message.contains(named), "{refused}: {message}");
    }
}

#[tokio::test]
async fn membership_in_arrays_and_struct_parameter_fields() {
    assert_eq!(
        rows(
            &run("SELECT id FROM shop.orders WHERE id IN UNNEST([2, 4, 9]) ORDER BY id")
                .await
                .unwrap()
        ),
        vec![vec!["2"], vec!["4"]]
    );
    assert_eq!(
        rows(
            &run("SELECT id FROM shop.orders WHERE id NOT IN UNNEST([2, 4]) ORDER BY id")
                .await
                .unwrap()
        ),
        vec![vec!["1"], vec!["3"]]
    );
    let (value, _) = scalar("SELECT REGEXP_EXTRACT('order-1234-x', r'(\\d+)')").await;
    assert_eq!(value, "1234");
    let (value, _) = scalar("SELECT REGEXP_EXTRACT('abc', r'b.')").await;
    assert_eq!(value, "bc");
    let (value, _) = scalar("SELECT REGEXP_EXTRACT('abc', r'z')").await;
    assert_eq!(value, "NULL");
}
