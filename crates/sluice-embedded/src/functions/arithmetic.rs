//! BigQuery's division operators.
//!
//! BigQuery's `/` never divides integers as integers: INT64 / INT64 is a
//! FLOAT64. NUMERIC stays exact (NUMERIC / NUMERIC is NUMERIC, rounded half
//! away from zero to nine digits). Dividing by zero is an error, except in
//! `SAFE_DIVIDE`, which answers NULL. `DIV` is the integer division.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int64Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type, i256};
use datafusion::common::{DataFusionError, Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{DIVIDE, INT_DIVIDE, SAFE_DIVIDE};

/// NUMERIC's Arrow type: BigQuery's NUMERIC has precision 38, scale 9.
pub const NUMERIC: DataType = DataType::Decimal128(38, 9);
const NUMERIC_SCALE_FACTOR: i128 = 1_000_000_000;
const NUMERIC_MAX: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

fn is_integer(t: &DataType) -> bool {
    t.is_integer() || matches!(t, DataType::Null)
}

/// BigQuery's result type of `a / b`, or why there is none.
fn division_type(left: &DataType, right: &DataType) -> Result<DataType> {
    let numeric_or_int = |t: &DataType| is_integer(t) || matches!(t, DataType::Decimal128(_, _));
    match (left, right) {
        (DataType::Decimal256(_, _), _) | (_, DataType::Decimal256(_, _)) => {
            plan_err!("Division of BIGNUMERIC values is not supported by this warehouse")
        }
        (l, r) if is_integer(l) && is_integer(r) => Ok(DataType::Float64),
        (l, r) if numeric_or_int(l) && numeric_or_int(r) => Ok(NUMERIC),
        (l, r) if (l.is_numeric() || l.is_null()) && (r.is_numeric() || r.is_null()) => {
            Ok(DataType::Float64)
        }
        (l, r) => plan_err!("No matching signature for operator / for argument types: {l}, {r}"),
    }
}

/// `a / b` (`safe == false`) or `SAFE_DIVIDE(a, b)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Divide {
    safe: bool,
    signature: Signature,
}

impl Divide {
    pub fn new(safe: bool) -> Self {
        Self {
            safe,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Divide {
    fn name(&self) -> &str {
        if self.safe { SAFE_DIVIDE } else { DIVIDE }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        division_type(&arg_types[0], &arg_types[1])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let result_type = division_type(arrays[0].data_type(), arrays[1].data_type())?;
        let result: ArrayRef = if result_type == NUMERIC {
            Arc::new(divide_numeric(&arrays[0], &arrays[1], self.safe)?)
        } else {
            Arc::new(divide_float(&arrays[0], &arrays[1], self.safe)?)
        };
        Ok(ColumnarValue::Array(result))
    }
}

fn division_by_zero(
    left: impl std::fmt::Display,
    right: impl std::fmt::Display,
) -> DataFusionError {
    DataFusionError::Execution(format!("division by zero: {left} / {right}"))
}

fn divide_float(left: &ArrayRef, right: &ArrayRef, safe: bool) -> Result<Float64Array> {
    let left = cast(left, &DataType::Float64)?;
    let right = cast(right, &DataType::Float64)?;
    let (left, right) = (
        left.as_primitive::<Float64Type>(),
        right.as_primitive::<Float64Type>(),
    );
    left.iter()
        .zip(right.iter())
        .map(|pair| match pair {
            (Some(a), Some(b)) if b == 0.0 => {
                if safe {
                    Ok(None)
                } else {
                    Err(division_by_zero(a, b))
                }
            }
            (Some(a), Some(b)) => Ok(Some(a / b)),
            _ => Ok(None),
        })
        .collect()
}

fn divide_numeric(left: &ArrayRef, right: &ArrayRef, safe: bool) -> Result<Decimal128Array> {
    let left = cast(left, &NUMERIC)?;
    let right = cast(right, &NUMERIC)?;
    let (left, right) = (
        left.as_primitive::<Decimal128Type>(),
        right.as_primitive::<Decimal128Type>(),
    );
    let values: Result<Vec<Option<i128>>> = left
        .iter()
        .zip(right.iter())
        .map(|pair| match pair {
            (Some(_), Some(0)) if safe => Ok(None),
            (Some(a), Some(0)) => Err(division_by_zero(show_numeric(a), show_numeric(0))),
            (Some(a), Some(b)) => match numeric_quotient(a, b) {
                Some(q) => Ok(Some(q)),
                None if safe => Ok(None),
                None => exec_err!(
                    "numeric overflow: {} / {}",
                    show_numeric(a),
                    show_numeric(b)
                ),
            },
            _ => Ok(None),
        })
        .collect();
    Ok(Decimal128Array::from(values?).with_precision_and_scale(38, 9)?)
}

/// `a / b` for two NUMERIC raw values (both scaled by 10^9), rounded half
/// away from zero; `None` on overflow.
fn numeric_quotient(a: i128, b: i128) -> Option<i128> {
    let numerator = i256::from_i128(a).checked_mul(i256::from_i128(NUMERIC_SCALE_FACTOR))?;
    let denominator = i256::from_i128(b);
    let quotient = numerator.checked_div(denominator)?;
    let remainder = numerator.checked_rem(denominator)?;
    let twice = remainder.wrapping_abs().checked_mul(i256::from_i128(2))?;
    let rounded = if twice >= denominator.wrapping_abs() {
        let away = if (a < 0) != (b < 0) { -1 } else { 1 };
        quotient.checked_add(i256::from_i128(away))?
    } else {
        quotient
    };
    let value = rounded.to_i128()?;
    (value.abs() <= NUMERIC_MAX).then_some(value)
}

fn show_numeric(raw: i128) -> String {
    let sign = if raw < 0 { "-" } else { "" };
    let abs = raw.unsigned_abs();
    let whole = abs / NUMERIC_SCALE_FACTOR as u128;
    let fraction = abs % NUMERIC_SCALE_FACTOR as u128;
    if fraction == 0 {
        format!("{sign}{whole}")
    } else {
        let digits = format!("{fraction:09}");
        format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// `DIV(a, b)`: INT64 only; NUMERIC `DIV` is refused rather than guessed.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IntDivide {
    signature: Signature,
}

impl IntDivide {
    pub fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for IntDivide {
    fn name(&self) -> &str {
        INT_DIVIDE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.iter().all(is_integer) {
            Ok(DataType::Int64)
        } else {
            plan_err!(
                "DIV is supported only for INT64 arguments by this warehouse, not {}, {}",
                arg_types[0],
                arg_types[1]
            )
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let left = cast(&arrays[0], &DataType::Int64)?;
        let right = cast(&arrays[1], &DataType::Int64)?;
        let (left, right) = (
            left.as_primitive::<Int64Type>(),
            right.as_primitive::<Int64Type>(),
        );
        let result: Result<Int64Array> = left
            .iter()
            .zip(right.iter())
            .map(|pair| match pair {
                (Some(a), Some(0)) => Err(division_by_zero(a, 0)),
                (Some(a), Some(b)) => a.checked_div(b).map(Some).ok_or_else(|| {
                    DataFusionError::Execution(format!("integer overflow: DIV({a}, {b})"))
                }),
                _ => Ok(None),
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(result?)))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn numeric_quotient_rounds_half_away_from_zero() {
        let n = |x: i128| x * NUMERIC_SCALE_FACTOR;
        // 2 / 3 = 0.666666667
        assert_eq!(numeric_quotient(n(2), n(3)), Some(666_666_667));
        assert_eq!(numeric_quotient(n(-2), n(3)), Some(-666_666_667));
        assert_eq!(numeric_quotient(n(1), n(8)), Some(125_000_000));
        assert_eq!(show_numeric(-1_500_000_000), "-1.5");
    }
}
