use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, DictionaryArray,
    FixedSizeBinaryArray, Float64Array, Int32Array, Int64Array, ListArray, NullArray, StringArray,
    StringViewArray, StructArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{Int32Type, IntervalUnit, UnionFields, UnionMode};

use super::*;

fn nullable(name: &str, data_type: DataType) -> ArrowField {
    ArrowField::new(name, data_type, true)
}

fn list_of(data_type: DataType) -> DataType {
    DataType::List(Arc::new(ArrowField::new_list_field(data_type, true)))
}

fn bq(data_type: DataType) -> Result<Field, WarehouseError> {
    bigquery_field(&nullable("c", data_type))
}

fn bq_type(data_type: DataType) -> (FieldType, FieldMode) {
    let field = bq(data_type.clone()).unwrap_or_else(|e| panic!("{data_type}: {e}"));
    (field.field_type, field.mode)
}

#[test]
fn scalar_types_map_to_bigquery_names() {
    use FieldType as F;
    let utc = Some("UTC".into());
    let cases = [
        (DataType::Int8, F::Int64),
        (DataType::Int16, F::Int64),
        (DataType::Int32, F::Int64),
        (DataType::Int64, F::Int64),
        (DataType::UInt8, F::Int64),
        (DataType::UInt16, F::Int64),
        (DataType::UInt32, F::Int64),
        (DataType::UInt64, F::Int64),
        (DataType::Float16, F::Float64),
        (DataType::Float32, F::Float64),
        (DataType::Float64, F::Float64),
        (DataType::Decimal128(38, 9), F::Numeric),
        (DataType::Decimal128(10, 2), F::Numeric),
        (DataType::Decimal128(38, 10), F::BigNumeric),
        (DataType::Decimal256(76, 38), F::BigNumeric),
        (DataType::Decimal256(20, 2), F::BigNumeric),
        (DataType::Boolean, F::Bool),
        (DataType::Utf8, F::String),
        (DataType::LargeUtf8, F::String),
        (DataType::Utf8View, F::String),
        (
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            F::String,
        ),
        (DataType::Binary, F::Bytes),
        (DataType::LargeBinary, F::Bytes),
        (DataType::BinaryView, F::Bytes),
        (DataType::FixedSizeBinary(16), F::Bytes),
        (DataType::Date32, F::Date),
        (DataType::Date64, F::Date),
        (
            DataType::Timestamp(TimeUnit::Microsecond, utc.clone()),
            F::Timestamp,
        ),
        (
            DataType::Timestamp(TimeUnit::Nanosecond, Some("+02:00".into())),
            F::Timestamp,
        ),
        (DataType::Timestamp(TimeUnit::Second, None), F::Datetime),
        (DataType::Timestamp(TimeUnit::Nanosecond, None), F::Datetime),
        (DataType::Time32(TimeUnit::Second), F::Time),
        (DataType::Time64(TimeUnit::Microsecond), F::Time),
        (DataType::Time64(TimeUnit::Nanosecond), F::Time),
        (DataType::Interval(IntervalUnit::MonthDayNano), F::Interval),
        (DataType::Interval(IntervalUnit::YearMonth), F::Interval),
        (DataType::Duration(TimeUnit::Second), F::Interval),
        (DataType::Null, F::Int64),
    ];
    for (data_type, expected) in cases {
        assert_eq!(
            bq_type(data_type.clone()),
            (expected, FieldMode::Nullable),
            "{data_type}"
        );
    }
}

#[test]
fn nullability_becomes_the_mode() {
    let required = bigquery_field(&ArrowField::new("id", DataType::Int64, false)).unwrap();
    assert_eq!(required.mode, FieldMode::Required);
    assert_eq!(required.name, "id");
    // A list is REPEATED whatever its own nullability says.
    let list = bigquery_field(&ArrowField::new("tags", list_of(DataType::Utf8), false)).unwrap();
    assert_eq!(
        (list.field_type, list.mode),
        (FieldType::String, FieldMode::Repeated)
    );
}

#[test]
fn lists_are_repeated_of_their_element_type() {
    for data_type in [
        list_of(DataType::Int32),
        DataType::LargeList(Arc::new(ArrowField::new_list_field(DataType::Int32, true))),
        DataType::FixedSizeList(
            Arc::new(ArrowField::new_list_field(DataType::Int32, true)),
            3,
        ),
    ] {
        assert_eq!(bq_type(data_type), (FieldType::Int64, FieldMode::Repeated));
    }
}

#[test]
fn list_of_list_is_refused() {
    let err = bq(list_of(list_of(DataType::Int64))).unwrap_err();
    assert_eq!(err.kind, sluice_warehouse::WarehouseErrorKind::InvalidQuery);
    assert!(err.message.contains("ARRAY<ARRAY"), "{}", err.message);
}

#[test]
fn nested_struct_and_list_of_struct() {
    let address = DataType::Struct(Fields::from(vec![
        nullable("city", DataType::Utf8),
        nullable("zips", list_of(DataType::Int64)),
        ArrowField::new(
            "geo",
            DataType::Struct(Fields::from(vec![nullable("lat", DataType::Float64)])),
            true,
        ),
    ]));
    let schema = Schema::new(vec![
        ArrowField::new("id", DataType::Int64, false),
        nullable("addresses", list_of(address)),
    ]);
    let json = serde_json::to_value(bigquery_schema(&schema).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"fields": [
            {"name": "id", "type": "INTEGER", "mode": "REQUIRED"},
            {"name": "addresses", "type": "RECORD", "mode": "REPEATED", "fields": [
                {"name": "city", "type": "STRING", "mode": "NULLABLE"},
                {"name": "zips", "type": "INTEGER", "mode": "REPEATED"},
                {"name": "geo", "type": "RECORD", "mode": "NULLABLE", "fields": [
                    {"name": "lat", "type": "FLOAT", "mode": "NULLABLE"}
                ]}
            ]}
        ]})
    );
}

#[test]
fn unsupported_types_name_the_arrow_type() {
    let union = DataType::Union(UnionFields::empty(), UnionMode::Sparse);
    let map = DataType::Map(
        Arc::new(ArrowField::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                ArrowField::new("key", DataType::Utf8, false),
                nullable("value", DataType::Int64),
            ])),
            false,
        )),
        false,
    );
    for data_type in [union, map] {
        let err = bq(data_type.clone()).unwrap_err();
        assert!(err.message.contains("not supported"), "{}", err.message);
        assert!(err.message.contains("Column c"), "{}", err.message);
    }
    // Inside a struct, the error still surfaces.
    let nested = DataType::Struct(Fields::from(vec![nullable(
        "u",
        DataType::Union(UnionFields::empty(), UnionMode::Dense),
    )]));
    assert!(bq(nested).is_err());
}

#[test]
fn arrow_schema_declares_exact_types() {
    let mut record = Field::new("address", FieldType::Record, FieldMode::Nullable);
    record.fields = vec![Field::new("city", FieldType::String, FieldMode::Required)];
    let mut repeated_record = record.clone();
    repeated_record.name = "history".into();
    repeated_record.mode = FieldMode::Repeated;
    let fields = vec![
        Field::new("i", FieldType::Int64, FieldMode::Required),
        Field::new("f", FieldType::Float64, FieldMode::Nullable),
        Field::new("n", FieldType::Numeric, FieldMode::Nullable),
        Field::new("bn", FieldType::BigNumeric, FieldMode::Nullable),
        Field::new("b", FieldType::Bool, FieldMode::Nullable),
        Field::new("s", FieldType::String, FieldMode::Nullable),
        Field::new("by", FieldType::Bytes, FieldMode::Nullable),
        Field::new("d", FieldType::Date, FieldMode::Nullable),
        Field::new("dt", FieldType::Datetime, FieldMode::Nullable),
        Field::new("t", FieldType::Time, FieldMode::Nullable),
        Field::new("ts", FieldType::Timestamp, FieldMode::Nullable),
        Field::new("j", FieldType::Json, FieldMode::Nullable),
        Field::new("tags", FieldType::String, FieldMode::Repeated),
        record,
        repeated_record,
    ];
    let table = TableSchema { fields };
    let arrow = arrow_schema(&table).unwrap();
    let types: Vec<(&str, &DataType, bool)> = arrow
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type(), f.is_nullable()))
        .collect();
    let city = Fields::from(vec![ArrowField::new("city", DataType::Utf8, false)]);
    assert_eq!(
        types,
        vec![
            ("i", &DataType::Int64, false),
            ("f", &DataType::Float64, true),
            ("n", &DataType::Decimal128(38, 9), true),
            ("bn", &DataType::Decimal256(76, 38), true),
            ("b", &DataType::Boolean, true),
            ("s", &DataType::Utf8, true),
            ("by", &DataType::Binary, true),
            ("d", &DataType::Date32, true),
            (
                "dt",
                &DataType::Timestamp(TimeUnit::Microsecond, None),
                true
            ),
            ("t", &DataType::Time64(TimeUnit::Microsecond), true),
            (
                "ts",
                &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true
            ),
            ("j", &DataType::Utf8, true),
            ("tags", &list_of(DataType::Utf8), true),
            ("address", &DataType::Struct(city.clone()), true),
            ("history", &list_of(DataType::Struct(city)), true),
        ]
    );
    // And back: the declared schema survives the round trip, except JSON,
    // which Arrow can only hold as a string.
    let back = bigquery_schema(&arrow).unwrap();
    for (declared, returned) in table.fields.iter().zip(&back.fields) {
        let expected = if declared.field_type == FieldType::Json {
            FieldType::String
        } else {
            declared.field_type
        };
        assert_eq!(returned.field_type, expected, "{}", declared.name);
        assert_eq!(returned.mode, declared.mode, "{}", declared.name);
    }
}

#[test]
fn record_without_fields_is_invalid() {
    let table = TableSchema {
        fields: vec![Field::new("r", FieldType::Record, FieldMode::Nullable)],
    };
    assert_eq!(
        arrow_schema(&table).unwrap_err().kind,
        sluice_warehouse::WarehouseErrorKind::Invalid
    );
}

#[test]
fn fixed_widths() {
    use FieldType as F;
    for (field_type, width) in [
        (F::Int64, Some(8)),
        (F::Float64, Some(8)),
        (F::Date, Some(8)),
        (F::Datetime, Some(8)),
        (F::Time, Some(8)),
        (F::Timestamp, Some(8)),
        (F::Bool, Some(1)),
        (F::Numeric, Some(16)),
        (F::BigNumeric, Some(32)),
        (F::Interval, Some(16)),
        (F::String, None),
        (F::Bytes, None),
        (F::Record, None),
        (F::Json, None),
    ] {
        assert_eq!(fixed_width_bytes(field_type), width, "{field_type:?}");
    }
}

#[test]
fn column_bytes_counts_like_bigquery() {
    let ints: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None, Some(3)]));
    assert_eq!(column_bytes(ints.as_ref()), 16);
    let floats = Float64Array::from(vec![1.0, 2.0]);
    assert_eq!(column_bytes(&floats), 16);
    let bools = BooleanArray::from(vec![Some(true), None, Some(false)]);
    assert_eq!(column_bytes(&bools), 2);
    let decimals = Decimal128Array::from(vec![Some(1), None])
        .with_precision_and_scale(38, 9)
        .unwrap();
    assert_eq!(column_bytes(&decimals), 16);
    let dates = Date32Array::from(vec![Some(0), None]);
    assert_eq!(column_bytes(&dates), 8);
    let stamps = TimestampMicrosecondArray::from(vec![1, 2, 3]).with_timezone("UTC");
    assert_eq!(column_bytes(&stamps), 24);
    assert_eq!(column_bytes(&NullArray::new(5)), 0);

    // Strings and bytes: 2 + length per non-null value.
    let strings = StringArray::from(vec![Some("abc"), None, Some(""), Some("é")]);
    assert_eq!(column_bytes(&strings), (2 + 3) + 2 + (2 + 2));
    // A slice counts only its own rows.
    assert_eq!(column_bytes(&strings.slice(0, 1)), 5);
    let views = StringViewArray::from(vec![Some("a long string past twelve"), None]);
    assert_eq!(column_bytes(&views), 2 + 25);
    let binary = BinaryArray::from(vec![Some(&b"\x00\x01"[..]), None]);
    assert_eq!(column_bytes(&binary), 4);
    let fixed = FixedSizeBinaryArray::try_from_iter([[1u8, 2, 3], [4, 5, 6]].into_iter()).unwrap();
    assert_eq!(column_bytes(&fixed), 10);
    let dictionary: DictionaryArray<Int32Type> = vec![Some("ab"), None, Some("ab"), Some("c")]
        .into_iter()
        .collect();
    assert_eq!(column_bytes(&dictionary), 4 + 4 + 3);

    // Structs: the sum of their children.
    let structs = StructArray::from(vec![
        (
            Arc::new(nullable("a", DataType::Int64)),
            Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
        ),
        (
            Arc::new(nullable("b", DataType::Utf8)),
            Arc::new(StringArray::from(vec!["x", "yz"])) as ArrayRef,
        ),
    ]);
    assert_eq!(column_bytes(&structs), 16 + 3 + 4);

    // Arrays: the sum over their elements; a slice only its own.
    let lists = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(1), Some(2)]),
        None,
        Some(vec![Some(3), None]),
    ]);
    assert_eq!(column_bytes(&lists), 24);
    assert_eq!(column_bytes(&lists.slice(1, 2)), 8);
}
