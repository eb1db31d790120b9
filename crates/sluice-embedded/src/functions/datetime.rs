//! BigQuery's date and time arithmetic, on DATE (`Date32`), DATETIME
//! (`Timestamp` without a zone) and TIMESTAMP (`Timestamp` in UTC).
//!
//! DataFusion's `date_trunc` turns a DATE into a timestamp and starts weeks
//! on Monday, and it has no `date_add`/`date_diff` with BigQuery's calendar
//! rules (adding a month clamps to the month's last day, `DATE_DIFF` counts
//! boundaries crossed). These functions keep the argument's type and follow
//! BigQuery's rules; the date part arrives as an upper-case string literal
//! (`'MONTH'`, `'WEEK(MONDAY)'`).

use std::sync::Arc;

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveDateTime, TimeDelta, Timelike, Weekday};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{DATE_ADD, DATE_DIFF, DATE_TRUNC};

/// Which of BigQuery's three time types a column holds.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Date,
    /// DATETIME when `zoned` is false, TIMESTAMP (UTC) when true.
    Timestamp {
        unit: TimeUnit,
        zoned: bool,
    },
}

fn kind_of(data_type: &DataType, function: &str) -> Result<Kind> {
    match data_type {
        DataType::Date32 => Ok(Kind::Date),
        DataType::Timestamp(unit, tz) => match tz.as_deref() {
            None => Ok(Kind::Timestamp {
                unit: *unit,
                zoned: false,
            }),
            Some("UTC" | "+00:00" | "Z" | "+00") => Ok(Kind::Timestamp {
                unit: *unit,
                zoned: true,
            }),
            Some(other) => {
                plan_err!("{function} on timestamps in time zone {other} is not supported")
            }
        },
        other => plan_err!("No matching signature for {function} with an argument of type {other}"),
    }
}

/// The column's values as i64 (days for dates, ticks of `unit` otherwise).
fn raw_values(array: &ArrayRef) -> Result<Int64Array> {
    let as_int = match array.data_type() {
        DataType::Date32 => cast(&cast(array, &DataType::Int32)?, &DataType::Int64)?,
        _ => cast(array, &DataType::Int64)?,
    };
    Ok(as_int.as_primitive::<Int64Type>().clone())
}

/// Turns raw i64 values back into a column of `data_type`.
fn from_raw(values: Int64Array, data_type: &DataType) -> Result<ArrayRef> {
    let values: ArrayRef = Arc::new(values);
    Ok(match data_type {
        DataType::Date32 => cast(&cast(&values, &DataType::Int32)?, data_type)?,
        _ => cast(&values, data_type)?,
    })
}

fn decode(kind: &Kind, value: i64) -> Option<NaiveDateTime> {
    match kind {
        Kind::Date => {
            DateTime::from_timestamp(value.checked_mul(86_400)?, 0).map(|d| d.naive_utc())
        }
        Kind::Timestamp { unit, .. } => match unit {
            TimeUnit::Second => DateTime::from_timestamp(value, 0),
            TimeUnit::Millisecond => DateTime::from_timestamp_millis(value),
            TimeUnit::Microsecond => DateTime::from_timestamp_micros(value),
            TimeUnit::Nanosecond => Some(DateTime::from_timestamp_nanos(value)),
        }
        .map(|d| d.naive_utc()),
    }
}

fn encode(kind: &Kind, value: NaiveDateTime) -> Option<i64> {
    let utc = value.and_utc();
    match kind {
        Kind::Date => Some(utc.timestamp().div_euclid(86_400)),
        Kind::Timestamp { unit, .. } => match unit {
            TimeUnit::Second => Some(utc.timestamp()),
            TimeUnit::Millisecond => Some(utc.timestamp_millis()),
            TimeUnit::Microsecond => Some(utc.timestamp_micros()),
            TimeUnit::Nanosecond => utc.timestamp_nanos_opt(),
        },
    }
}

/// The date part argument: always a string literal the translation wrote.
fn part_argument(args: &ScalarFunctionArgs, index: usize, function: &str) -> Result<String> {
    match args.args.get(index) {
        Some(ColumnarValue::Scalar(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
        )) => Ok(s.to_ascii_uppercase()),
        _ => exec_err!("{function} needs a literal date part"),
    }
}

/// Microseconds in one unit of a fixed-length part.
fn fixed_micros(part: &str) -> Option<i64> {
    Some(match part {
        "MICROSECOND" => 1,
        "MILLISECOND" => 1_000,
        "SECOND" => 1_000_000,
        "MINUTE" => 60_000_000,
        "HOUR" => 3_600_000_000,
        "DAY" => 86_400_000_000,
        _ => return None,
    })
}

fn week_start(part: &str) -> Option<Weekday> {
    Some(match part {
        "WEEK" | "WEEK(SUNDAY)" => Weekday::Sun,
        "ISOWEEK" | "WEEK(MONDAY)" => Weekday::Mon,
        "WEEK(TUESDAY)" => Weekday::Tue,
        "WEEK(WEDNESDAY)" => Weekday::Wed,
        "WEEK(THURSDAY)" => Weekday::Thu,
        "WEEK(FRIDAY)" => Weekday::Fri,
        "WEEK(SATURDAY)" => Weekday::Sat,
        _ => return None,
    })
}

fn midnight(date: NaiveDate) -> NaiveDateTime {
    date.and_time(chrono::NaiveTime::MIN)
}

/// Truncates to the start of `part`, as BigQuery's `*_TRUNC` does.
fn truncate(kind: &Kind, value: NaiveDateTime, part: &str) -> Result<NaiveDateTime> {
    let date = value.date();
    let sub_day = |nanos_per_unit: u32| -> Result<NaiveDateTime> {
        if *kind == Kind::Date {
            return plan_err!("{part} is not a valid date part for a DATE");
        }
        let nanos = value.nanosecond() % 1_000_000_000;
        Ok(value
            .with_nanosecond(nanos - nanos % nanos_per_unit)
            .unwrap_or(value))
    };
    Ok(match part {
        "MICROSECOND" => sub_day(1_000)?,
        "MILLISECOND" => sub_day(1_000_000)?,
        "SECOND" => sub_day(1_000_000_000)?,
        "MINUTE" => sub_day(1_000_000_000)?.with_second(0).unwrap_or(value),
        "HOUR" => sub_day(1_000_000_000)?
            .with_second(0)
            .and_then(|v| v.with_minute(0))
            .unwrap_or(value),
        "DAY" => midnight(date),
        "MONTH" => midnight(date.with_day(1).unwrap_or(date)),
        "QUARTER" => {
            let month = (date.month0() / 3) * 3 + 1;
            midnight(NaiveDate::from_ymd_opt(date.year(), month, 1).unwrap_or(date))
        }
        "YEAR" => midnight(NaiveDate::from_ymd_opt(date.year(), 1, 1).unwrap_or(date)),
        "ISOYEAR" => midnight(
            NaiveDate::from_isoywd_opt(date.iso_week().year(), 1, Weekday::Mon).unwrap_or(date),
        ),
        other => match week_start(other) {
            Some(start) => {
                let back = date.weekday().days_since(start);
                midnight(date - TimeDelta::days(i64::from(back)))
            }
            None => return plan_err!("Unsupported date part {other}"),
        },
    })
}

/// One `(function name, signature)` pair per UDF; the three share a shape.
macro_rules! udf_struct {
    ($name:ident, $arity:expr) => {
        #[derive(Debug, PartialEq, Eq, Hash)]
        pub struct $name {
            signature: Signature,
        }

        impl $name {
            pub fn new() -> Self {
                Self {
                    signature: Signature::any($arity, Volatility::Immutable),
                }
            }
        }
    };
}

udf_struct!(DateTrunc, 2);
udf_struct!(DateAdd, 3);
udf_struct!(DateDiff, 3);

impl ScalarUDFImpl for DateTrunc {
    fn name(&self) -> &str {
        DATE_TRUNC
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        kind_of(&arg_types[0], "DATE_TRUNC")?;
        Ok(arg_types[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let part = part_argument(&args, 1, "DATE_TRUNC")?;
        let input = args.args[0].to_array(args.number_rows)?;
        let kind = kind_of(input.data_type(), "DATE_TRUNC")?;
        let values: Result<Int64Array> = raw_values(&input)?
            .iter()
            .map(|v| match v.and_then(|v| decode(&kind, v)) {
                Some(dt) => Ok(encode(&kind, truncate(&kind, dt, &part)?)),
                None => Ok(None),
            })
            .collect();
        Ok(ColumnarValue::Array(from_raw(values?, input.data_type())?))
    }
}

/// Adds `amount` of `part`: calendar parts clamp to the month's last day.
fn add(
    kind: &Kind,
    value: NaiveDateTime,
    amount: i64,
    part: &str,
) -> Result<Option<NaiveDateTime>> {
    let months = match part {
        "MONTH" => Some(amount),
        "QUARTER" => amount.checked_mul(3),
        "YEAR" => amount.checked_mul(12),
        _ => None,
    };
    let zoned = matches!(kind, Kind::Timestamp { zoned: true, .. });
    if let Some(months) = months.filter(|_| !zoned) {
        let magnitude = u32::try_from(months.unsigned_abs()).ok().map(Months::new);
        return Ok(magnitude.and_then(|m| {
            if months >= 0 {
                value.checked_add_months(m)
            } else {
                value.checked_sub_months(m)
            }
        }));
    }
    let micros = match (part, kind) {
        ("DAY", _) => 86_400_000_000,
        ("WEEK", Kind::Date | Kind::Timestamp { zoned: false, .. }) => 7 * 86_400_000_000,
        (_, Kind::Date) => {
            return plan_err!("{part} is not a valid date part for DATE_ADD on a DATE");
        }
        (other, _) => match fixed_micros(other) {
            Some(micros) => micros,
            None => return plan_err!("{other} is not a valid date part for TIMESTAMP_ADD"),
        },
    };
    Ok(amount
        .checked_mul(micros)
        .and_then(|m| value.checked_add_signed(TimeDelta::microseconds(m))))
}

impl ScalarUDFImpl for DateAdd {
    fn name(&self) -> &str {
        DATE_ADD
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        kind_of(&arg_types[0], "DATE_ADD")?;
        if !(arg_types[1].is_integer() || arg_types[1].is_null()) {
            return plan_err!("DATE_ADD needs an INT64 interval, not {}", arg_types[1]);
        }
        Ok(arg_types[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let part = part_argument(&args, 2, "DATE_ADD")?;
        let input = args.args[0].to_array(args.number_rows)?;
        let amounts = raw_values(&args.args[1].to_array(args.number_rows)?)?;
        let kind = kind_of(input.data_type(), "DATE_ADD")?;
        let values: Result<Int64Array> = raw_values(&input)?
            .iter()
            .zip(amounts.iter())
            .map(|(v, n)| match (v.and_then(|v| decode(&kind, v)), n) {
                (Some(dt), Some(n)) => {
                    match add(&kind, dt, n, &part)?.and_then(|r| encode(&kind, r)) {
                        Some(result) => Ok(Some(result)),
                        None => Err(DataFusionError::Execution(format!(
                            "DATE_ADD overflow: {dt} + {n} {part} is out of range"
                        ))),
                    }
                }
                _ => Ok(None),
            })
            .collect();
        Ok(ColumnarValue::Array(from_raw(values?, input.data_type())?))
    }
}

/// `a - b` in `part`s: whole elapsed units for TIMESTAMP, boundaries
/// crossed for DATE and DATETIME (as BigQuery counts them).
fn difference(kind: &Kind, a: NaiveDateTime, b: NaiveDateTime, part: &str) -> Result<i64> {
    let month_index = |d: NaiveDateTime| i64::from(d.year()) * 12 + i64::from(d.month0());
    match (kind, part) {
        (Kind::Timestamp { zoned: true, .. }, _) => match fixed_micros(part) {
            Some(unit) => Ok(micros_between(a, b)? / unit),
            None => plan_err!("{part} is not a valid date part for TIMESTAMP_DIFF"),
        },
        (_, "MONTH") => Ok(month_index(a) - month_index(b)),
        (_, "QUARTER") => Ok(month_index(a).div_euclid(3) - month_index(b).div_euclid(3)),
        (_, "YEAR") => Ok(i64::from(a.year()) - i64::from(b.year())),
        (_, "ISOYEAR") => {
            Ok(i64::from(a.date().iso_week().year()) - i64::from(b.date().iso_week().year()))
        }
        (_, p) if week_start(p).is_some() => {
            let days = (truncate(kind, a, p)? - truncate(kind, b, p)?).num_days();
            Ok(days / 7)
        }
        (_, p) => match fixed_micros(p) {
            Some(unit) => {
                let elapsed = micros_between(truncate(kind, a, p)?, truncate(kind, b, p)?)?;
                Ok(elapsed / unit)
            }
            None => plan_err!("Unsupported date part {p}"),
        },
    }
}

fn micros_between(a: NaiveDateTime, b: NaiveDateTime) -> Result<i64> {
    (a - b)
        .num_microseconds()
        .ok_or_else(|| DataFusionError::Execution("DATE_DIFF overflow".to_string()))
}

impl ScalarUDFImpl for DateDiff {
    fn name(&self) -> &str {
        DATE_DIFF
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let a = kind_of(&arg_types[0], "DATE_DIFF")?;
        let b = kind_of(&arg_types[1], "DATE_DIFF")?;
        let same = match (&a, &b) {
            (Kind::Date, Kind::Date) => true,
            (Kind::Timestamp { zoned: x, .. }, Kind::Timestamp { zoned: y, .. }) => x == y,
            _ => false,
        };
        if !same {
            return plan_err!(
                "DATE_DIFF needs two arguments of the same type, not {} and {}",
                arg_types[0],
                arg_types[1]
            );
        }
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let part = part_argument(&args, 2, "DATE_DIFF")?;
        let left = args.args[0].to_array(args.number_rows)?;
        let right = args.args[1].to_array(args.number_rows)?;
        let (left_kind, right_kind) = (
            kind_of(left.data_type(), "DATE_DIFF")?,
            kind_of(right.data_type(), "DATE_DIFF")?,
        );
        let values: Result<Int64Array> = raw_values(&left)?
            .iter()
            .zip(raw_values(&right)?.iter())
            .map(|(a, b)| {
                match (
                    a.and_then(|a| decode(&left_kind, a)),
                    b.and_then(|b| decode(&right_kind, b)),
                ) {
                    (Some(a), Some(b)) => difference(&left_kind, a, b, &part).map(Some),
                    _ => Ok(None),
                }
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(values?)))
    }
}
