//! Query parameters become typed literals.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use serde_json::json;

use super::{positional, request, rows, run_request};
use sluice_warehouse::{ParameterType, ParameterValue, QueryParameter, QueryRequest};

fn scalar_type(name: &str) -> ParameterType {
    ParameterType {
        type_name: name.to_string(),
        array_type: None,
        struct_types: Vec::new(),
        range_element_type: None,
    }
}

fn param(name: Option<&str>, ty: ParameterType, value: ParameterValue) -> QueryParameter {
    QueryParameter {
        name: name.map(str::to_string),
        parameter_type: ty,
        parameter_value: value,
    }
}

fn value(v: serde_json::Value) -> ParameterValue {
    ParameterValue {
        value: Some(v),
        ..Default::default()
    }
}

/// Runs `SELECT @p` with one named parameter: (value, Arrow type).
async fn select_param(ty: ParameterType, v: ParameterValue) -> Result<(String, DataType), String> {
    let mut query = request("SELECT @p");
    query.parameters = vec![param(Some("p"), ty, v)];
    let batches = run_request(&query).await?;
    Ok((
        rows(&batches)[0][0].clone(),
        batches[0].schema().field(0).data_type().clone(),
    ))
}

#[tokio::test]
async fn every_scalar_type_is_typed() {
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let cases = [
        ("INT64", json!("42"), "42", DataType::Int64),
        ("INT64", json!(-7), "-7", DataType::Int64),
        ("FLOAT64", json!(1.5), "1.5", DataType::Float64),
        ("FLOAT64", json!("2.25"), "2.25", DataType::Float64),
        (
            "NUMERIC",
            json!("12.5"),
            "12.500000000",
            DataType::Decimal128(38, 9),
        ),
        (
            "BIGNUMERIC",
            json!("1.25"),
            "1.25000000000000000000000000000000000000",
            DataType::Decimal256(76, 38),
        ),
        ("BOOL", json!(true), "true", DataType::Boolean),
        ("BOOL", json!("false"), "false", DataType::Boolean),
        ("STRING", json!("it's"), "it's", DataType::Utf8),
        ("BYTES", json!("aGk="), "6869", DataType::Binary),
        ("DATE", json!("2024-05-01"), "2024-05-01", DataType::Date32),
        (
            "DATETIME",
            json!("2024-05-01T12:30:00"),
            "2024-05-01T12:30:00",
            DataType::Timestamp(TimeUnit::Microsecond, None),
        ),
        (
            "TIME",
            json!("12:30:00.5"),
            "12:30:00.500",
            DataType::Time64(TimeUnit::Microsecond),
        ),
        (
            "TIMESTAMP",
            json!("2024-05-01 12:00:00+02:00"),
            "2024-05-01T10:00:00Z",
            utc.clone(),
        ),
        (
            "TIMESTAMP",
            json!("2024-05-01T12:00:00Z"),
            "2024-05-01T12:00:00Z",
            utc.clone(),
        ),
        (
            "TIMESTAMP",
            json!("2024-05-01 12:00:00.123456 UTC"),
            "2024-05-01T12:00:00.123456Z",
            utc.clone(),
        ),
    ];
    for (ty, v, expected, arrow) in cases {
        let (got, got_type) = select_param(scalar_type(ty), value(v.clone()))
            .await
            .unwrap_or_else(|e| panic!("{ty} {v}: {e}"));
        assert_eq!(got, expected, "{ty} {v}");
        assert_eq!(got_type, arrow, "{ty} {v}");
    }
}

#[tokio::test]
async fn null_values_are_typed_nulls() {
    for (ty, arrow) in [
        ("INT64", DataType::Int64),
        ("STRING", DataType::Utf8View),
        (
            "TIMESTAMP",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ),
        ("DATE", DataType::Date32),
    ] {
        let (got, got_type) = select_param(scalar_type(ty), ParameterValue::default())
            .await
            .unwrap();
        assert_eq!(got, "NULL", "{ty}");
        assert_eq!(got_type, arrow, "{ty}");
    }
}

#[tokio::test]
async fn arrays_and_structs() {
    let array = ParameterType {
        array_type: Some(Box::new(scalar_type("INT64"))),
        ..scalar_type("ARRAY")
    };
    let values = ParameterValue {
        array_values: Some(vec![value(json!("1")), value(json!(2))]),
        ..Default::default()
    };
    let (got, ty) = select_param(array.clone(), values).await.unwrap();
    assert_eq!(got, "[1, 2]");
    assert_eq!(ty, DataType::new_list(DataType::Int64, true));
    let empty = ParameterValue {
        array_values: Some(vec![]),
        ..Default::default()
    };
    let (got, ty) = select_param(array, empty).await.unwrap();
    assert_eq!(got, "[]");
    assert_eq!(ty, DataType::new_list(DataType::Int64, true));

    let record = ParameterType {
        struct_types: vec![
            sluice_warehouse::StructParameterType {
                name: Some("n".into()),
                field_type: scalar_type("INT64"),
                description: None,
            },
            sluice_warehouse::StructParameterType {
                name: Some("s".into()),
                field_type: scalar_type("STRING"),
                description: None,
            },
        ],
        ..scalar_type("STRUCT")
    };
    let fields = json!({"n": {"value": "5"}, "s": {"value": "x"}});
    let v = ParameterValue {
        struct_values: fields.as_object().cloned(),
        ..Default::default()
    };
    let (got, ty) = select_param(record.clone(), v.clone()).await.unwrap();
    assert_eq!(got, "{n: 5, s: x}");
    assert!(matches!(ty, DataType::Struct(_)));

    let mut fields = request("SELECT @p.n, @P.S");
    fields.parameters = vec![param(Some("p"), record, v)];
    assert_eq!(
        rows(&run_request(&fields).await.unwrap()),
        vec![vec!["5", "x"]]
    );
}

#[tokio::test]
async fn array_parameters_in_unnest() {
    let ids = |values: Vec<serde_json::Value>| ParameterValue {
        array_values: Some(values.into_iter().map(value).collect()),
        ..Default::default()
    };
    let array = ParameterType {
        array_type: Some(Box::new(scalar_type("INT64"))),
        ..scalar_type("ARRAY")
    };
    for (values, expected) in [
        (vec![json!("2"), json!(3)], vec![vec!["2"], vec!["3"]]),
        (vec![], vec![]),
    ] {
        let mut query = request("SELECT id FROM shop.orders WHERE id IN UNNEST(@ids) ORDER BY id");
        query.parameters = vec![param(Some("ids"), array.clone(), ids(values))];
        assert_eq!(rows(&run_request(&query).await.unwrap()), expected);
    }
    let mut query = request("SELECT x FROM UNNEST(@ids) AS x WITH OFFSET AS i ORDER BY i DESC");
    query.parameters = vec![param(Some("ids"), array, ids(vec![json!(7), json!(8)]))];
    assert_eq!(
        rows(&run_request(&query).await.unwrap()),
        vec![vec!["8"], vec!["7"]]
    );
}

#[tokio::test]
async fn named_parameters_filter_rows() {
    let mut query =
        request("SELECT id FROM shop.orders WHERE customer = @who AND amount > @min ORDER BY id");
    query.parameters = vec![
        param(Some("who"), scalar_type("STRING"), value(json!("ann"))),
        param(Some("MIN"), scalar_type("FLOAT64"), value(json!(1))),
    ];
    assert_eq!(rows(&run_request(&query).await.unwrap()), vec![vec!["1"]]);
}

#[tokio::test]
async fn positional_parameters_go_in_text_order() {
    let mut query =
        positional("SELECT id FROM shop.orders WHERE id > ? AND customer = ? ORDER BY id");
    query.parameters = vec![
        param(None, scalar_type("INT64"), value(json!(1))),
        param(None, scalar_type("STRING"), value(json!("ann"))),
    ];
    assert_eq!(rows(&run_request(&query).await.unwrap()), vec![vec!["3"]]);
}

async fn fails(query: &QueryRequest, needle: &str) {
    let e = run_request(query).await.unwrap_err();
    assert!(e.contains(needle), "expected {needle:?} in {e:?}");
}

#[tokio::test]
async fn bad_parameters_are_invalid_queries() {
    fails(&request("SELECT @missing"), "missing").await;
    let mut q = request("SELECT @p");
    q.parameters = vec![param(Some("p"), scalar_type("INT64"), value(json!("abc")))];
    fails(&q, "Invalid value for query parameter p").await;
    q.parameters = vec![param(
        Some("p"),
        scalar_type("DATE"),
        value(json!("2024-13-01")),
    )];
    fails(&q, "p").await;
    q.parameters = vec![param(
        Some("p"),
        scalar_type("GEOGRAPHY"),
        value(json!("POINT(1 1)")),
    )];
    fails(&q, "unsupported type GEOGRAPHY").await;
    let mut p = positional("SELECT ?, ?");
    p.parameters = vec![param(None, scalar_type("INT64"), value(json!(1)))];
    fails(&p, "2 positional parameters but 1").await;
}

#[tokio::test]
async fn a_string_parameter_is_never_sql() {
    let mut q = request("SELECT COUNT(*) FROM shop.orders WHERE customer = @p");
    q.parameters = vec![param(
        Some("p"),
        scalar_type("STRING"),
        value(json!("x' OR '1'='1")),
    )];
    assert_eq!(rows(&run_request(&q).await.unwrap()), vec![vec!["0"]]);
}
