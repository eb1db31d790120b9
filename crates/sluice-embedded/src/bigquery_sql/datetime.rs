//! BigQuery's date and time functions in DataFusion terms: `EXTRACT`
//! returns INT64 with BigQuery's numbering (DAYOFWEEK 1 = Sunday, WEEK
//! counted from the first Sunday), and the date-part arguments of the
//! `*_TRUNC`, `*_ADD`, `*_DIFF` families become the string literals the
//! `bq_` functions in [`crate::functions`] take.

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, DataType, DateTimeField, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    UnaryOperator,
};

use super::build::{binary, call, cast, nested, number, string};
use sluice_warehouse::WarehouseError;

fn date_part(part: &str, expr: Expr) -> Expr {
    cast(
        call("date_part", vec![string(part), expr]),
        DataType::BigInt(None),
    )
}

/// `EXTRACT(field FROM expr)`.
pub fn extract(field: &DateTimeField, expr: Expr) -> Result<Expr, WarehouseError> {
    Ok(match field {
        DateTimeField::Year => date_part("year", expr),
        DateTimeField::Quarter => date_part("quarter", expr),
        DateTimeField::Month => date_part("month", expr),
        DateTimeField::Day => date_part("day", expr),
        DateTimeField::Hour => date_part("hour", expr),
        DateTimeField::Minute => date_part("minute", expr),
        DateTimeField::Second => cast(
            call(
                "floor",
                vec![call("date_part", vec![string("second"), expr])],
            ),
            DataType::BigInt(None),
        ),
        // DataFusion counts milli- and microseconds from the minute's start.
        DateTimeField::Millisecond => binary(
            date_part("millisecond", expr),
            BinaryOperator::Modulo,
            number(1000),
        ),
        DateTimeField::Microsecond => binary(
            date_part("microsecond", expr),
            BinaryOperator::Modulo,
            number(1_000_000),
        ),
        DateTimeField::DayOfWeek => binary(date_part("dow", expr), BinaryOperator::Plus, number(1)),
        DateTimeField::DayOfYear => date_part("doy", expr),
        DateTimeField::IsoWeek => date_part("week", expr),
        // Weeks start on Sunday; days before the year's first Sunday are week 0.
        DateTimeField::Week(None) => binary(
            binary(
                binary(
                    date_part("doy", expr.clone()),
                    BinaryOperator::Plus,
                    number(6),
                ),
                BinaryOperator::Minus,
                date_part("dow", expr),
            ),
            BinaryOperator::Divide,
            number(7),
        ),
        DateTimeField::Date => cast(expr, DataType::Date),
        other => {
            return Err(WarehouseError::unsupported(format!(
                "EXTRACT({other} FROM …)"
            )));
        }
    })
}

/// The date part argument of `DATE_TRUNC(x, MONTH)` and friends, as the
/// upper-case string the `bq_` functions take (`WEEK(MONDAY)` included).
pub fn part_name(arg: &Expr, function: &str) -> Result<String, WarehouseError> {
    match arg {
        Expr::Identifier(ident) if ident.quote_style.is_none() => {
            Ok(ident.value.to_ascii_uppercase())
        }
        Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("WEEK") => {
            let FunctionArguments::List(list) = &f.args else {
                return Err(bad_part(arg, function));
            };
            match list.args.as_slice() {
                [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Identifier(day)))] => {
                    Ok(format!("WEEK({})", day.value.to_ascii_uppercase()))
                }
                _ => Err(bad_part(arg, function)),
            }
        }
        _ => Err(bad_part(arg, function)),
    }
}

fn bad_part(arg: &Expr, function: &str) -> WarehouseError {
    WarehouseError::invalid_query(format!(
        "A valid date part name is required but found {arg} in {function}"
    ))
}

/// `INTERVAL n PART` as (n as INT64, "PART"), negated for the `*_SUB` family.
pub fn interval(arg: Expr, negate: bool, function: &str) -> Result<(Expr, String), WarehouseError> {
    let Expr::Interval(interval) = arg else {
        return Err(WarehouseError::invalid_query(format!(
            "{function} needs an INTERVAL argument such as INTERVAL 1 DAY"
        )));
    };
    let part = match (&interval.leading_field, &interval.last_field) {
        (Some(field), None) => match field {
            DateTimeField::Microsecond => "MICROSECOND",
            DateTimeField::Millisecond => "MILLISECOND",
            DateTimeField::Second => "SECOND",
            DateTimeField::Minute => "MINUTE",
            DateTimeField::Hour => "HOUR",
            DateTimeField::Day => "DAY",
            DateTimeField::Week(None) => "WEEK",
            DateTimeField::Month => "MONTH",
            DateTimeField::Quarter => "QUARTER",
            DateTimeField::Year => "YEAR",
            other => {
                return Err(WarehouseError::unsupported(format!(
                    "{function} with INTERVAL … {other}"
                )));
            }
        },
        _ => {
            return Err(WarehouseError::unsupported(format!(
                "{function} with a compound INTERVAL"
            )));
        }
    };
    let amount = cast(*interval.value, DataType::BigInt(None));
    let amount = if negate {
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr: Box::new(nested(amount)),
        }
    } else {
        amount
    };
    Ok((amount, part.to_string()))
}

/// Format elements BigQuery has and chrono (behind DataFusion's
/// `to_char`) does not: refused rather than printed wrongly.
pub fn check_format(format: &Expr, function: &str) -> Result<(), WarehouseError> {
    let Expr::Value(value) = format else {
        return Err(WarehouseError::unsupported(format!(
            "{function} with a format that is not a string literal"
        )));
    };
    let Some(text) = value.value.clone().into_string() else {
        return Err(WarehouseError::invalid_query(format!(
            "{function} needs a STRING format"
        )));
    };
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        match chars.next() {
            Some(element @ ('E' | 'O' | 'Q' | 'J' | '#')) => {
                return Err(WarehouseError::unsupported(format!(
                    "The format element %{element} in {function}"
                )));
            }
            Some(_) => {}
            None => {
                return Err(WarehouseError::invalid_query(format!(
                    "Invalid format string in {function}: it ends with %"
                )));
            }
        }
    }
    Ok(())
}
