//! Arrow record batches → BigQuery's `{"f":[{"v":…}]}` row JSON.
//!
//! This is the hot path of every query: each result row is written once,
//! straight into a byte buffer. The column types are resolved once per
//! batch into a tree of encoders, so the per-cell work is a virtual call, a
//! null check and the formatting of one value — no intermediate
//! `serde_json::Value`.
//!
//! Every scalar is a JSON string, in the text the official clients parse:
//! TIMESTAMP as integer microseconds (the clients ask for
//! `formatOptions.useInt64Timestamp`), DATETIME and TIME with six
//! fractional digits when there are any (older Python clients accept only
//! `HH:MM:SS` or `HH:MM:SS.ffffff`), BYTES as standard base64.

use datafusion::arrow::array::{Array, ArrayAccessor, AsArray, GenericListArray, OffsetSizeTrait};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type,
    DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType, DurationSecondType,
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    IntervalDayTimeType, IntervalMonthDayNanoType, IntervalUnit, IntervalYearMonthType,
    Time32MillisecondType, Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::value::RawValue;

use sluice_warehouse::WarehouseError;

mod format;

use format::{
    write_base64, write_date, write_datetime, write_decimal, write_decimal256, write_f32,
    write_f64, write_i64, write_i128, write_interval, write_str, write_time, write_u64,
};

/// Appends one BigQuery row object per row of `batch`, each followed by
/// `\n`. Strings are escaped, so `\n` only ever ends a row.
pub fn encode_batch(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), WarehouseError> {
    encode_each_row(batch, out, |_, _| {})
}

/// The rows of a small batch, one JSON value each (for `tabledata.list`
/// and other pages that never touch the disk).
pub fn encode_rows(batch: &RecordBatch) -> Result<Vec<Box<RawValue>>, WarehouseError> {
    let mut out = Vec::new();
    let mut starts = Vec::with_capacity(batch.num_rows() + 1);
    encode_each_row(batch, &mut out, |_, start| starts.push(start))?;
    starts.push(out.len());
    starts
        .windows(2)
        .map(|w| {
            // Drop the trailing '\n' of each line.
            let line = &out[w[0]..w[1] - 1];
            let text = String::from_utf8(line.to_vec())
                .map_err(|e| WarehouseError::internal(format!("row is not UTF-8: {e}")))?;
            RawValue::from_string(text)
                .map_err(|e| WarehouseError::internal(format!("row is not valid JSON: {e}")))
        })
        .collect()
}

/// Like [`encode_batch`], calling `before_row(row, out.len())` as each row
/// starts, so callers can index where rows begin in the buffer.
pub(super) fn encode_each_row(
    batch: &RecordBatch,
    out: &mut Vec<u8>,
    mut before_row: impl FnMut(usize, usize),
) -> Result<(), WarehouseError> {
    let columns = batch
        .columns()
        .iter()
        .map(|column| encoder(column.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    for row in 0..batch.num_rows() {
        before_row(row, out.len());
        write_record(&columns, row, out);
        out.push(b'\n');
    }
    Ok(())
}

/// Writes one value of a column, `null` included, as the JSON after `"v":`.
trait Encode {
    fn encode(&self, row: usize, out: &mut Vec<u8>);
}

type Encoder<'a> = Box<dyn Encode + 'a>;

/// `{"f":[{"v":…},…]}`: a row, or a STRUCT value.
fn write_record(fields: &[Encoder<'_>], row: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"f\":[");
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"v\":");
        field.encode(row, out);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
}

/// Any array whose values can be read one by one, with a writer for a
/// non-null value.
struct Scalar<A, F> {
    array: A,
    write: F,
}

impl<A, F> Encode for Scalar<A, F>
where
    A: ArrayAccessor,
    F: Fn(A::Item, &mut Vec<u8>),
{
    #[inline]
    fn encode(&self, row: usize, out: &mut Vec<u8>) {
        if self.array.is_null(row) {
            out.extend_from_slice(b"null");
        } else {
            (self.write)(self.array.value(row), out);
        }
    }
}

fn scalar<'a, A, F>(array: A, write: F) -> Encoder<'a>
where
    A: ArrayAccessor + 'a,
    F: Fn(A::Item, &mut Vec<u8>) + 'a,
{
    Box::new(Scalar { array, write })
}

/// A column of Arrow's `Null` type.
struct AlwaysNull;

impl Encode for AlwaysNull {
    fn encode(&self, _row: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(b"null");
    }
}

/// REPEATED: `[{"v":…},…]`. BigQuery has no NULL arrays, so a null list is
/// written as the empty array, as BigQuery returns it.
struct List<'a, O: OffsetSizeTrait> {
    array: &'a GenericListArray<O>,
    values: Encoder<'a>,
}

impl<O: OffsetSizeTrait> Encode for List<'_, O> {
    fn encode(&self, row: usize, out: &mut Vec<u8>) {
        if self.array.is_null(row) {
            out.extend_from_slice(b"[]");
            return;
        }
        let offsets = self.array.value_offsets();
        write_elements(
            &*self.values,
            offsets[row].as_usize()..offsets[row + 1].as_usize(),
            out,
        );
    }
}

struct FixedSizeList<'a> {
    nulls: Option<&'a NullBuffer>,
    size: usize,
    values: Encoder<'a>,
}

impl Encode for FixedSizeList<'_> {
    fn encode(&self, row: usize, out: &mut Vec<u8>) {
        if self.nulls.is_some_and(|n| n.is_null(row)) {
            out.extend_from_slice(b"[]");
            return;
        }
        write_elements(&*self.values, row * self.size..(row + 1) * self.size, out);
    }
}

fn write_elements(values: &dyn Encode, range: std::ops::Range<usize>, out: &mut Vec<u8>) {
    out.push(b'[');
    for (n, i) in range.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"v\":");
        values.encode(i, out);
        out.push(b'}');
    }
    out.push(b']');
}

/// RECORD: `{"f":[…]}`, or `null` for a null struct whatever its children
/// hold in that slot.
struct Struct<'a> {
    nulls: Option<&'a NullBuffer>,
    fields: Vec<Encoder<'a>>,
}

impl Encode for Struct<'_> {
    fn encode(&self, row: usize, out: &mut Vec<u8>) {
        if self.nulls.is_some_and(|n| n.is_null(row)) {
            out.extend_from_slice(b"null");
        } else {
            write_record(&self.fields, row, out);
        }
    }
}

/// A dictionary-encoded column, written as the values it stands for.
struct Dictionary<'a> {
    nulls: Option<&'a NullBuffer>,
    keys: Vec<usize>,
    values: Encoder<'a>,
}

impl Encode for Dictionary<'_> {
    fn encode(&self, row: usize, out: &mut Vec<u8>) {
        if self.nulls.is_some_and(|n| n.is_null(row)) {
            out.extend_from_slice(b"null");
        } else {
            self.values.encode(self.keys[row], out);
        }
    }
}

/// Resolves a column's type once, so encoding a cell needs no type test.
fn encoder(array: &dyn Array) -> Result<Encoder<'_>, WarehouseError> {
    use DataType as T;
    Ok(match array.data_type() {
        T::Null => Box::new(AlwaysNull),
        T::Boolean => scalar(array.as_boolean(), |v, out| {
            out.extend_from_slice(if v { b"\"true\"" } else { b"\"false\"" })
        }),
        T::Int8 => scalar(array.as_primitive::<Int8Type>(), |v, o| {
            write_i64(v.into(), o)
        }),
        T::Int16 => scalar(array.as_primitive::<Int16Type>(), |v, o| {
            write_i64(v.into(), o)
        }),
        T::Int32 => scalar(array.as_primitive::<Int32Type>(), |v, o| {
            write_i64(v.into(), o)
        }),
        T::Int64 => scalar(array.as_primitive::<Int64Type>(), write_i64),
        T::UInt8 => scalar(array.as_primitive::<UInt8Type>(), |v, o| {
            write_u64(v.into(), o)
        }),
        T::UInt16 => scalar(array.as_primitive::<UInt16Type>(), |v, o| {
            write_u64(v.into(), o)
        }),
        T::UInt32 => scalar(array.as_primitive::<UInt32Type>(), |v, o| {
            write_u64(v.into(), o)
        }),
        T::UInt64 => scalar(array.as_primitive::<UInt64Type>(), write_u64),
        T::Float16 => scalar(array.as_primitive::<Float16Type>(), |v, o| {
            write_f32(v.to_f32(), o)
        }),
        T::Float32 => scalar(array.as_primitive::<Float32Type>(), write_f32),
        T::Float64 => scalar(array.as_primitive::<Float64Type>(), write_f64),
        T::Decimal32(_, s) => {
            let s = *s;
            scalar(array.as_primitive::<Decimal32Type>(), move |v, o| {
                write_decimal(v.into(), s, o)
            })
        }
        T::Decimal64(_, s) => {
            let s = *s;
            scalar(array.as_primitive::<Decimal64Type>(), move |v, o| {
                write_decimal(v.into(), s, o)
            })
        }
        T::Decimal128(_, s) => {
            let s = *s;
            scalar(array.as_primitive::<Decimal128Type>(), move |v, o| {
                write_decimal(v, s, o)
            })
        }
        T::Decimal256(_, s) => {
            let s = *s;
            scalar(array.as_primitive::<Decimal256Type>(), move |v, o| {
                write_decimal256(v, s, o)
            })
        }
        T::Utf8 => scalar(array.as_string::<i32>(), write_str),
        T::LargeUtf8 => scalar(array.as_string::<i64>(), write_str),
        T::Utf8View => scalar(array.as_string_view(), write_str),
        T::Binary => scalar(array.as_binary::<i32>(), write_base64),
        T::LargeBinary => scalar(array.as_binary::<i64>(), write_base64),
        T::BinaryView => scalar(array.as_binary_view(), write_base64),
        T::FixedSizeBinary(_) => scalar(array.as_fixed_size_binary(), write_base64),
        T::Date32 => scalar(array.as_primitive::<Date32Type>(), |v, o| {
            write_date(v.into(), o)
        }),
        T::Date64 => scalar(array.as_primitive::<Date64Type>(), |v, o| {
            write_date(v.div_euclid(86_400_000), o)
        }),
        T::Timestamp(unit, Some(_)) => timestamp(array, *unit, |micros, o| {
            o.push(b'"');
            write_i128(micros, o);
            o.push(b'"');
        }),
        T::Timestamp(unit, None) => timestamp(array, *unit, write_datetime),
        T::Time32(TimeUnit::Second) => scalar(array.as_primitive::<Time32SecondType>(), |v, o| {
            write_time(i64::from(v) * 1_000_000, o)
        }),
        T::Time32(TimeUnit::Millisecond) => {
            scalar(array.as_primitive::<Time32MillisecondType>(), |v, o| {
                write_time(i64::from(v) * 1_000, o)
            })
        }
        T::Time64(TimeUnit::Microsecond) => {
            scalar(array.as_primitive::<Time64MicrosecondType>(), write_time)
        }
        T::Time64(TimeUnit::Nanosecond) => {
            scalar(array.as_primitive::<Time64NanosecondType>(), |v, o| {
                write_time(v.div_euclid(1_000), o)
            })
        }
        T::Interval(IntervalUnit::YearMonth) => {
            scalar(array.as_primitive::<IntervalYearMonthType>(), |v, o| {
                write_interval(v, 0, 0, o)
            })
        }
        T::Interval(IntervalUnit::DayTime) => {
            scalar(array.as_primitive::<IntervalDayTimeType>(), |v, o| {
                write_interval(0, v.days, i128::from(v.milliseconds) * 1_000_000, o)
            })
        }
        T::Interval(IntervalUnit::MonthDayNano) => {
            scalar(array.as_primitive::<IntervalMonthDayNanoType>(), |v, o| {
                write_interval(v.months, v.days, v.nanoseconds.into(), o)
            })
        }
        T::Duration(unit) => duration(array, *unit),
        T::List(_) => list(array.as_list::<i32>())?,
        T::LargeList(_) => list(array.as_list::<i64>())?,
        T::FixedSizeList(_, size) => {
            let list = array.as_fixed_size_list();
            Box::new(FixedSizeList {
                nulls: list.nulls(),
                size: usize::try_from(*size).unwrap_or(0),
                values: encoder(list.values().as_ref())?,
            })
        }
        T::Struct(_) => {
            let record = array.as_struct();
            Box::new(Struct {
                nulls: record.nulls(),
                fields: record
                    .columns()
                    .iter()
                    .map(|child| encoder(child.as_ref()))
                    .collect::<Result<_, _>>()?,
            })
        }
        T::Dictionary(..) => {
            let dictionary = array.as_any_dictionary();
            if dictionary.values().is_empty() {
                // Only possible when every key is null.
                Box::new(AlwaysNull)
            } else {
                Box::new(Dictionary {
                    nulls: dictionary.keys().nulls(),
                    keys: dictionary.normalized_keys(),
                    values: encoder(dictionary.values().as_ref())?,
                })
            }
        }
        other => {
            return Err(WarehouseError::unsupported(format!(
                "A result column of Arrow type {other}"
            )));
        }
    })
}

fn list<O: OffsetSizeTrait>(array: &GenericListArray<O>) -> Result<Encoder<'_>, WarehouseError> {
    Ok(Box::new(List {
        array,
        values: encoder(array.values().as_ref())?,
    }))
}

/// Timestamps of any unit as microseconds since the epoch (BigQuery's
/// precision; nanoseconds are truncated toward the past). Computed in
/// `i128` so seconds far from the epoch cannot overflow.
fn timestamp<'a>(
    array: &'a dyn Array,
    unit: TimeUnit,
    write: fn(i128, &mut Vec<u8>),
) -> Encoder<'a> {
    match unit {
        TimeUnit::Second => scalar(array.as_primitive::<TimestampSecondType>(), move |v, o| {
            write(i128::from(v) * 1_000_000, o)
        }),
        TimeUnit::Millisecond => scalar(
            array.as_primitive::<TimestampMillisecondType>(),
            move |v, o| write(i128::from(v) * 1_000, o),
        ),
        TimeUnit::Microsecond => scalar(
            array.as_primitive::<TimestampMicrosecondType>(),
            move |v, o| write(v.into(), o),
        ),
        TimeUnit::Nanosecond => scalar(
            array.as_primitive::<TimestampNanosecondType>(),
            move |v, o| write(v.div_euclid(1_000).into(), o),
        ),
    }
}

fn duration(array: &dyn Array, unit: TimeUnit) -> Encoder<'_> {
    let nanos = |v: i64, per: i128, o: &mut Vec<u8>| write_interval(0, 0, i128::from(v) * per, o);
    match unit {
        TimeUnit::Second => scalar(array.as_primitive::<DurationSecondType>(), move |v, o| {
            nanos(v, 1_000_000_000, o)
        }),
        TimeUnit::Millisecond => scalar(
            array.as_primitive::<DurationMillisecondType>(),
            move |v, o| nanos(v, 1_000_000, o),
        ),
        TimeUnit::Microsecond => scalar(
            array.as_primitive::<DurationMicrosecondType>(),
            move |v, o| nanos(v, 1_000, o),
        ),
        TimeUnit::Nanosecond => scalar(
            array.as_primitive::<DurationNanosecondType>(),
            move |v, o| nanos(v, 1, o),
        ),
    }
}

#[cfg(test)]
mod tests;
