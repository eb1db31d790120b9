use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryArray, BinaryViewArray, BooleanArray, Date32Array, Date64Array,
    Decimal128Array, Decimal256Array, DictionaryArray, DurationSecondArray, FixedSizeBinaryArray,
    FixedSizeListArray, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Int64Array,
    IntervalDayTimeArray, IntervalMonthDayNanoArray, IntervalYearMonthArray, LargeListArray,
    LargeStringArray, ListArray, NullArray, StringArray, StringViewArray, StructArray,
    Time32SecondArray, Time64MicrosecondArray, Time64NanosecondArray, TimestampMicrosecondArray,
    TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray, UInt64Array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{
    Field, Fields, Int32Type, IntervalDayTime, IntervalMonthDayNano, Schema, UnionFields, i256,
};
use serde_json::{Value, json};

use super::*;

fn batch(columns: Vec<ArrayRef>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// The encoded lines of a batch, checked to be one valid JSON object each.
fn lines(batch: &RecordBatch) -> Vec<String> {
    let mut out = Vec::new();
    encode_batch(batch, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with('\n') || text.is_empty());
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), batch.num_rows());
    for line in &lines {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    lines
}

/// The `"v"` of each cell of each row of a one-column batch.
fn values(column: ArrayRef) -> Vec<Value> {
    lines(&batch(vec![column]))
        .iter()
        .map(|line| {
            let row: Value = serde_json::from_str(line).unwrap();
            row["f"][0]["v"].clone()
        })
        .collect()
}

#[test]
fn one_row_of_every_scalar_type_is_byte_exact() {
    let b = batch(vec![
        Arc::new(Int64Array::from(vec![1])),
        Arc::new(Float64Array::from(vec![1.5])),
        Arc::new(BooleanArray::from(vec![true])),
        Arc::new(StringArray::from(vec!["a"])),
        Arc::new(
            Decimal128Array::from(vec![100_000_000_000_000])
                .with_precision_and_scale(38, 9)
                .unwrap(),
        ),
        Arc::new(Date32Array::from(vec![18_276])),
        Arc::new(TimestampMicrosecondArray::from(vec![1_714_564_800_000_000]).with_timezone("UTC")),
        Arc::new(TimestampMicrosecondArray::from(vec![1_579_082_400_000_000])),
        Arc::new(Time64MicrosecondArray::from(vec![36_000_000_000])),
        Arc::new(BinaryArray::from(vec![&b"\x00\x01\xff"[..]])),
        Arc::new(NullArray::new(1)),
    ]);
    assert_eq!(
        lines(&b),
        vec![concat!(
            r#"{"f":[{"v":"1"},{"v":"1.5"},{"v":"true"},{"v":"a"},{"v":"100000"},"#,
            r#"{"v":"2020-01-15"},{"v":"1714564800000000"},{"v":"2020-01-15T10:00:00"},"#,
            r#"{"v":"10:00:00"},{"v":"AAH/"},{"v":null}]}"#
        )]
    );
}

#[test]
fn integers_of_every_width() {
    assert_eq!(
        values(Arc::new(Int8Array::from(vec![-128, 127]))),
        [json!("-128"), json!("127")]
    );
    assert_eq!(values(Arc::new(Int16Array::from(vec![-3]))), [json!("-3")]);
    assert_eq!(values(Arc::new(Int32Array::from(vec![0]))), [json!("0")]);
    assert_eq!(
        values(Arc::new(Int64Array::from(vec![i64::MIN, i64::MAX]))),
        [json!("-9223372036854775808"), json!("9223372036854775807")]
    );
    assert_eq!(
        values(Arc::new(UInt64Array::from(vec![u64::MAX]))),
        [json!("18446744073709551615")]
    );
}

#[test]
fn floats_read_back_exactly() {
    let samples = [
        1.5,
        1.0,
        0.1,
        -2.25,
        3e-5,
        1e100,
        5e-324,
        f64::MAX,
        123_456_789.123,
    ];
    let got = values(Arc::new(Float64Array::from(samples.to_vec())));
    for (v, text) in samples.iter().zip(&got) {
        let text = text.as_str().unwrap();
        assert_eq!(text.parse::<f64>().unwrap(), *v, "{text}");
        // JSON numbers are plain digits, '.', 'e', '+', '-': all of which
        // Python's float() and JavaScript's Number() read.
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_digit() || b"-+.e".contains(&b)),
            "{text}"
        );
    }
    assert_eq!(got[0], json!("1.5"));
    assert_eq!(
        values(Arc::new(Float64Array::from(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY
        ]))),
        [json!("NaN"), json!("Infinity"), json!("-Infinity")]
    );
    // FLOAT32 keeps its own shortest text.
    assert_eq!(
        values(Arc::new(Float32Array::from(vec![0.1f32]))),
        [json!("0.1")]
    );
    let half =
        datafusion::arrow::compute::cast(&Float32Array::from(vec![0.5f32]), &DataType::Float16);
    assert_eq!(values(half.unwrap()), [json!("0.5")]);
}

#[test]
fn numerics_are_plain_trimmed_decimals() {
    let numeric = Decimal128Array::from(vec![
        Some(100_000_000_000_000),
        Some(1_500_000_000),
        Some(-1),
        Some(0),
        Some(-12_345_678_900),
        None,
        Some(i128::from(i64::MAX) * 1_000_000_000),
    ])
    .with_precision_and_scale(38, 9)
    .unwrap();
    assert_eq!(
        values(Arc::new(numeric)),
        [
            json!("100000"),
            json!("1.5"),
            json!("-0.000000001"),
            json!("0"),
            json!("-12.3456789"),
            Value::Null,
            json!("9223372036854775807"),
        ]
    );
    let negative_scale = Decimal128Array::from(vec![12, 0])
        .with_precision_and_scale(10, -2)
        .unwrap();
    assert_eq!(
        values(Arc::new(negative_scale)),
        [json!("1200"), json!("0")]
    );
    let big = Decimal256Array::from(vec![
        i256::from_i128(-15).wrapping_mul(i256::from_i128(10).wrapping_pow(37)),
        i256::MAX,
    ])
    .with_precision_and_scale(76, 38)
    .unwrap();
    assert_eq!(
        values(Arc::new(big)),
        [
            json!("-1.5"),
            json!("578960446186580977117854925043439539266.34992332820282019728792003956564819967"),
        ]
    );
}

#[test]
fn dates_across_the_calendar() {
    let days = vec![0, -1, 18_276, 11_016, -719_162, 2_932_896, 19_782];
    assert_eq!(
        values(Arc::new(Date32Array::from(days))),
        [
            json!("1970-01-01"),
            json!("1969-12-31"),
            json!("2020-01-15"),
            json!("2000-02-29"),
            json!("0001-01-01"),
            json!("9999-12-31"),
            json!("2024-02-29"),
        ]
    );
    let millis = Date64Array::from(vec![1_579_046_400_000, -1]);
    assert_eq!(
        values(Arc::new(millis)),
        [json!("2020-01-15"), json!("1969-12-31")]
    );
}

#[test]
fn timestamps_are_epoch_microseconds_in_any_unit() {
    let expected = json!("1714564800123000");
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(vec![1_714_564_800_123]).with_timezone("UTC")),
        Arc::new(
            TimestampMicrosecondArray::from(vec![1_714_564_800_123_000]).with_timezone("+02:00"),
        ),
        Arc::new(
            TimestampNanosecondArray::from(vec![1_714_564_800_123_000_999]).with_timezone("UTC"),
        ),
    ];
    for column in columns {
        assert_eq!(values(column), std::slice::from_ref(&expected));
    }
    let seconds = TimestampSecondArray::from(vec![-1]).with_timezone("UTC");
    assert_eq!(values(Arc::new(seconds)), [json!("-1000000")]);
    // Nanoseconds before the epoch truncate toward the past.
    let before = TimestampNanosecondArray::from(vec![-1]).with_timezone("UTC");
    assert_eq!(values(Arc::new(before)), [json!("-1")]);
}

#[test]
fn datetimes_and_times_show_micros_only_when_present() {
    let datetimes = TimestampMicrosecondArray::from(vec![
        1_579_082_400_000_000,
        1_579_082_400_123_456,
        1_579_082_400_000_001,
        -1,
    ]);
    assert_eq!(
        values(Arc::new(datetimes)),
        [
            json!("2020-01-15T10:00:00"),
            json!("2020-01-15T10:00:00.123456"),
            json!("2020-01-15T10:00:00.000001"),
            json!("1969-12-31T23:59:59.999999"),
        ]
    );
    let nanos = TimestampNanosecondArray::from(vec![1_579_082_400_120_000_999]);
    assert_eq!(
        values(Arc::new(nanos)),
        [json!("2020-01-15T10:00:00.120000")]
    );
    let seconds = TimestampSecondArray::from(vec![86_399]);
    assert_eq!(values(Arc::new(seconds)), [json!("1970-01-01T23:59:59")]);

    let times = Time64MicrosecondArray::from(vec![36_000_000_000, 36_000_000_001, 86_399_999_999]);
    assert_eq!(
        values(Arc::new(times)),
        [
            json!("10:00:00"),
            json!("10:00:00.000001"),
            json!("23:59:59.999999")
        ]
    );
    assert_eq!(
        values(Arc::new(Time32SecondArray::from(vec![3_723]))),
        [json!("01:02:03")]
    );
    let nanos = Time64NanosecondArray::from(vec![1_500_000_000]);
    assert_eq!(values(Arc::new(nanos)), [json!("00:00:01.500000")]);
}

#[test]
fn intervals_in_canonical_form() {
    let month_day_nano = IntervalMonthDayNanoArray::from(vec![
        IntervalMonthDayNano::new(14, 3, 14_706_789_000_000),
        IntervalMonthDayNano::new(-14, -3, -1_000),
        IntervalMonthDayNano::new(0, 0, 0),
    ]);
    assert_eq!(
        values(Arc::new(month_day_nano)),
        [
            json!("1-2 3 4:5:6.789000"),
            json!("-1-2 -3 -0:0:0.000001"),
            json!("0-0 0 0:0:0")
        ]
    );
    assert_eq!(
        values(Arc::new(IntervalYearMonthArray::from(vec![25]))),
        [json!("2-1 0 0:0:0")]
    );
    let day_time = IntervalDayTimeArray::from(vec![IntervalDayTime::new(2, 1_500)]);
    assert_eq!(values(Arc::new(day_time)), [json!("0-0 2 0:0:1.500000")]);
    let duration = DurationSecondArray::from(vec![90_061]);
    assert_eq!(values(Arc::new(duration)), [json!("0-0 0 25:1:1")]);
}

#[test]
fn bytes_are_standard_base64() {
    let binary = BinaryArray::from(vec![Some(&b""[..]), Some(&[0xfb, 0xff][..]), None]);
    assert_eq!(
        values(Arc::new(binary)),
        [json!(""), json!("+/8="), Value::Null]
    );
    let view = BinaryViewArray::from(vec![&b"hello"[..]]);
    assert_eq!(values(Arc::new(view)), [json!("aGVsbG8=")]);
    let fixed = FixedSizeBinaryArray::try_from_iter([[0u8, 1, 2]].into_iter()).unwrap();
    assert_eq!(values(Arc::new(fixed)), [json!("AAEC")]);
}

#[test]
fn strings_escape_every_character_json_requires() {
    let samples = [
        "plain",
        "quote \" and backslash \\",
        "line\nbreak\r\ttab",
        "nul \u{0} bell \u{7} unit \u{1f} del \u{7f}",
        "\u{8}\u{c}",
        "emoji 🦀 and accents éß and U+2028 \u{2028}",
        "",
    ];
    let got = values(Arc::new(StringArray::from(samples.to_vec())));
    for (sample, value) in samples.iter().zip(&got) {
        assert_eq!(value.as_str(), Some(*sample));
    }
    let line = &lines(&batch(vec![Arc::new(StringArray::from(vec![
        "a\"\\\n\u{0}\u{1f}\u{8}",
    ]))]))[0];
    assert_eq!(line, r#"{"f":[{"v":"a\"\\\n\u0000\u001f\b"}]}"#);
    // Every string array flavour goes through the same escaping.
    let large = LargeStringArray::from(vec!["\"🦀\""]);
    assert_eq!(values(Arc::new(large)), [json!("\"🦀\"")]);
    let view = StringViewArray::from(vec![Some("a string longer than twelve bytes \n"), None]);
    assert_eq!(
        values(Arc::new(view)),
        [json!("a string longer than twelve bytes \n"), Value::Null]
    );
}

#[test]
fn nulls_of_every_scalar_type() {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![None])),
        Arc::new(Float64Array::from(vec![None])),
        Arc::new(BooleanArray::from(vec![None])),
        Arc::new(StringArray::from(vec![None::<&str>])),
        Arc::new(BinaryArray::from(vec![None::<&[u8]>])),
        Arc::new(Date32Array::from(vec![None])),
        Arc::new(TimestampMicrosecondArray::from(vec![None]).with_timezone("UTC")),
        Arc::new(Time64MicrosecondArray::from(vec![None])),
    ];
    let width = columns.len();
    let line = &lines(&batch(columns))[0];
    let cells = vec![r#"{"v":null}"#; width].join(",");
    assert_eq!(line, &format!(r#"{{"f":[{cells}]}}"#));
}

#[test]
fn dictionaries_write_their_values() {
    let dictionary: DictionaryArray<Int32Type> = vec![Some("red"), None, Some("blue"), Some("red")]
        .into_iter()
        .collect();
    assert_eq!(
        values(Arc::new(dictionary)),
        [json!("red"), Value::Null, json!("blue"), json!("red")]
    );
}

/// `ARRAY<STRUCT<name STRING, tags ARRAY<STRING>>>` with a NULL at every
/// level.
fn people() -> ArrayRef {
    let tags = ListArray::new(
        Arc::new(Field::new_list_field(DataType::Utf8, true)),
        OffsetBuffer::from_lengths([2, 0, 0, 1]),
        Arc::new(StringArray::from(vec![Some("x"), None, Some("y")])),
        Some(NullBuffer::from(vec![true, false, true, true])),
    );
    let person_fields = Fields::from(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("tags", tags.data_type().clone(), true),
    ]);
    let people = StructArray::new(
        person_fields.clone(),
        vec![
            Arc::new(StringArray::from(vec![
                Some("ann"),
                None,
                Some("ghost"),
                Some("bo"),
            ])),
            Arc::new(tags),
        ],
        Some(NullBuffer::from(vec![true, true, false, true])),
    );
    // Rows: [ann, null-named], NULL list, [], [null struct, bo].
    Arc::new(ListArray::new(
        Arc::new(Field::new_list_field(DataType::Struct(person_fields), true)),
        OffsetBuffer::from_lengths([2, 0, 0, 2]),
        Arc::new(people),
        Some(NullBuffer::from(vec![true, false, true, true])),
    ))
}

#[test]
fn nested_lists_of_structs_with_nulls_at_every_level() {
    let got = lines(&batch(vec![people()]));
    assert_eq!(
        got,
        vec![
            r#"{"f":[{"v":[{"v":{"f":[{"v":"ann"},{"v":[{"v":"x"},{"v":null}]}]}},{"v":{"f":[{"v":null},{"v":[]}]}}]}]}"#,
            r#"{"f":[{"v":[]}]}"#,
            r#"{"f":[{"v":[]}]}"#,
            r#"{"f":[{"v":[{"v":null},{"v":{"f":[{"v":"bo"},{"v":[{"v":"y"}]}]}}]}]}"#,
        ]
    );
    // A slice starts at its own offset.
    let sliced = batch(vec![people()]).slice(3, 1);
    assert_eq!(lines(&sliced), vec![got[3].clone()]);
}

#[test]
fn other_list_flavours() {
    let large = LargeListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(1), Some(2)]),
        None,
    ]);
    assert_eq!(
        values(Arc::new(large)),
        [json!([{"v": "1"}, {"v": "2"}]), json!([])]
    );
    let fixed = FixedSizeListArray::from_iter_primitive::<Int32Type, _, _>(
        vec![
            Some(vec![Some(1), Some(2)]),
            None,
            Some(vec![Some(3), None]),
        ],
        2,
    );
    assert_eq!(
        values(Arc::new(fixed.clone())),
        [
            json!([{"v": "1"}, {"v": "2"}]),
            json!([]),
            json!([{"v": "3"}, {"v": null}])
        ]
    );
    assert_eq!(
        values(Arc::new(fixed.slice(2, 1))),
        [json!([{"v": "3"}, {"v": null}])]
    );
}

#[test]
fn structs_and_null_structs() {
    let record = StructArray::new(
        Fields::from(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
        ]),
        vec![
            Arc::new(Int64Array::from(vec![Some(1), Some(2), None])),
            Arc::new(StringArray::from(vec![Some("x"), Some("hidden"), None])),
        ],
        Some(NullBuffer::from(vec![true, false, true])),
    );
    assert_eq!(
        values(Arc::new(record)),
        [
            json!({"f": [{"v": "1"}, {"v": "x"}]}),
            Value::Null,
            json!({"f": [{"v": null}, {"v": null}]}),
        ]
    );
}

#[test]
fn encode_rows_gives_one_raw_value_per_row() {
    let b = batch(vec![
        Arc::new(Int64Array::from(vec![1, 2, 3])),
        Arc::new(StringArray::from(vec!["a\nb", "", "c"])),
    ]);
    let rows = encode_rows(&b).unwrap();
    let texts: Vec<&str> = rows.iter().map(|r| r.get()).collect();
    assert_eq!(texts, lines(&b));
    assert_eq!(texts[0], r#"{"f":[{"v":"1"},{"v":"a\nb"}]}"#);
    assert!(encode_rows(&b.slice(0, 0)).unwrap().is_empty());
}

#[test]
fn unsupported_columns_are_refused_not_mangled() {
    let union = datafusion::arrow::array::UnionArray::try_new(
        UnionFields::try_new(vec![0], vec![Field::new("i", DataType::Int32, true)]).unwrap(),
        vec![0i8].into(),
        None,
        vec![Arc::new(Int32Array::from(vec![1])) as ArrayRef],
    )
    .unwrap();
    let err = encode_rows(&batch(vec![Arc::new(union)])).unwrap_err();
    assert!(err.message.contains("Union"), "{}", err.message);
}
