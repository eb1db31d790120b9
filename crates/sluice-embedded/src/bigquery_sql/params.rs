//! Query parameters (`@name`, `?`) as typed literals in the tree.
//!
//! A parameter's value is parsed here, in Rust, against its declared type
//! and put into the tree as a literal of exactly that type; it is never
//! spliced into SQL text. `parameterValue.value` may be a JSON string (the
//! Python client) or a bare number or boolean (the Node client).

use std::collections::HashMap;

use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use datafusion::sql::sqlparser::ast::{Array, DataType, ExactNumberInfo, Expr, Value};
use datafusion::sql::sqlparser::tokenizer::Location;

use super::build::{
    DATETIME_ARROW, TIME_ARROW, TIMESTAMP_ARROW, arrow_cast, boolean, call, case_when, cast, null,
    number, string,
};
use super::sql_types::{bignumeric, numeric};
use sluice_warehouse::{
    ParameterMode, ParameterType, ParameterValue, QueryParameter, QueryRequest, WarehouseError,
};

/// The most parameter values (array elements and struct fields counted
/// one by one) a query may bring: each becomes a literal in the plan, at
/// tens of microseconds and kilobytes apiece, so an unbounded array within
/// the body size limit could hold a worker for half a minute and take
/// gigabytes.
pub const MAX_PARAMETER_VALUES: usize = 10_000;

/// How many values `parameters` hold, counted without recursion.
fn value_count(parameters: &[QueryParameter]) -> usize {
    let mut pending: Vec<&ParameterValue> = parameters.iter().map(|p| &p.parameter_value).collect();
    let mut count = 0usize;
    while let Some(value) = pending.pop() {
        match &value.array_values {
            Some(elements) => pending.extend(elements),
            None => count += 1,
        }
        if let Some(fields) = &value.struct_values {
            count += fields.len();
        }
    }
    count
}

/// The request's parameters, looked up as the rewrite meets them.
pub struct Parameters<'a> {
    mode: ParameterMode,
    named: HashMap<String, &'a QueryParameter>,
    positional: &'a [QueryParameter],
    /// Where each `?` stands in the text, in textual order.
    positions: Vec<(u64, u64)>,
}

impl<'a> Parameters<'a> {
    pub fn new(query: &'a QueryRequest, positions: Vec<Location>) -> Result<Self, WarehouseError> {
        let values = value_count(&query.parameters);
        if values > MAX_PARAMETER_VALUES {
            return Err(WarehouseError::invalid_query(format!(
                "The query parameters hold {values} values; the embedded warehouse accepts at most \
                 {MAX_PARAMETER_VALUES}. Send fewer values, or load them into a table and join it."
            )));
        }
        let mut named = HashMap::new();
        if query.parameter_mode == ParameterMode::Named {
            for parameter in &query.parameters {
                let Some(name) = parameter.name.as_deref().filter(|n| !n.is_empty()) else {
                    return Err(WarehouseError::invalid_query(
                        "Named query parameters must have a name.",
                    ));
                };
                // BigQuery's parameter names are case-insensitive.
                if named.insert(name.to_ascii_lowercase(), parameter).is_some() {
                    return Err(WarehouseError::invalid_query(format!(
                        "Duplicate query parameter name: {name}"
                    )));
                }
            }
        }
        let mut positions: Vec<(u64, u64)> = positions.iter().map(|l| (l.line, l.column)).collect();
        positions.sort_unstable();
        if query.parameter_mode == ParameterMode::Positional
            && positions.len() != query.parameters.len()
        {
            return Err(WarehouseError::invalid_query(format!(
                "The query has {} positional parameters but {} values were supplied.",
                positions.len(),
                query.parameters.len()
            )));
        }
        Ok(Self {
            mode: query.parameter_mode,
            named,
            positional: &query.parameters,
            positions,
        })
    }

    /// The literal for `@name`.
    pub fn named(&self, name: &str) -> Result<Expr, WarehouseError> {
        if self.mode != ParameterMode::Named {
            return Err(WarehouseError::invalid_query(format!(
                "Query parameter @{name} is named, but the request's parameter mode is POSITIONAL."
            )));
        }
        let Some(parameter) = self.named.get(&name.to_ascii_lowercase()) else {
            return Err(WarehouseError::invalid_query(format!(
                "Query parameter '{name}' not found"
            )));
        };
        literal(name, &parameter.parameter_type, &parameter.parameter_value)
    }

    /// The literal for the `?` at `at`.
    pub fn positional(&self, at: Location) -> Result<Expr, WarehouseError> {
        if self.mode != ParameterMode::Positional {
            return Err(WarehouseError::invalid_query(
                "The query uses positional parameters (?), but the request's parameter mode is NAMED.",
            ));
        }
        let index = self
            .positions
            .binary_search(&(at.line, at.column))
            .map_err(|_| WarehouseError::internal("positional parameter out of place"))?;
        let parameter = &self.positional[index];
        literal(
            &format!("#{}", index + 1),
            &parameter.parameter_type,
            &parameter.parameter_value,
        )
    }
}

fn bad_value(name: &str, type_name: &str, detail: impl std::fmt::Display) -> WarehouseError {
    WarehouseError::invalid_query(format!(
        "Invalid value for query parameter {name} of type {type_name}: {detail}"
    ))
}

/// A literal of the parameter's type holding its value (typed NULL when absent).
fn literal(name: &str, ty: &ParameterType, value: &ParameterValue) -> Result<Expr, WarehouseError> {
    let type_name = ty.type_name.to_ascii_uppercase();
    match type_name.as_str() {
        "ARRAY" => array_literal(name, ty, value),
        "STRUCT" | "RECORD" => struct_literal(name, ty, value),
        _ => {
            let text = match &value.value {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
                Some(other) => return Err(bad_value(name, &type_name, other)),
            };
            scalar(name, &type_name, text.as_deref())
        }
    }
}

fn scalar(name: &str, type_name: &str, text: Option<&str>) -> Result<Expr, WarehouseError> {
    let bad = |detail: &dyn std::fmt::Display| bad_value(name, type_name, detail);
    let Some(text) = text else {
        return typed_null(name, type_name);
    };
    let trimmed = text.trim();
    Ok(match type_name {
        "INT64" | "INTEGER" => {
            let v: i64 = trimmed.parse().map_err(|e| bad(&e))?;
            cast(string(v.to_string()), DataType::BigInt(None))
        }
        "FLOAT64" | "FLOAT" => {
            let v: f64 = match trimmed.to_ascii_lowercase().as_str() {
                "infinity" | "+infinity" | "inf" => f64::INFINITY,
                "-infinity" | "-inf" => f64::NEG_INFINITY,
                "nan" => f64::NAN,
                _ => trimmed.parse().map_err(|e| bad(&e))?,
            };
            if v.is_nan() {
                cast(string("NaN"), DataType::Double(ExactNumberInfo::None))
            } else if v.is_infinite() {
                let s = if v > 0.0 { "inf" } else { "-inf" };
                cast(string(s), DataType::Double(ExactNumberInfo::None))
            } else {
                cast(
                    string(format!("{v:?}")),
                    DataType::Double(ExactNumberInfo::None),
                )
            }
        }
        "NUMERIC" | "BIGNUMERIC" | "BIGDECIMAL" | "DECIMAL" => {
            if !is_decimal(trimmed) {
                return Err(bad(&format!("'{text}' is not a number")));
            }
            let target = if type_name == "NUMERIC" || type_name == "DECIMAL" {
                numeric()
            } else {
                bignumeric()
            };
            cast(string(trimmed), target)
        }
        "BOOL" | "BOOLEAN" => match trimmed.to_ascii_lowercase().as_str() {
            "true" => boolean(true),
            "false" => boolean(false),
            _ => return Err(bad(&format!("'{text}' is not a boolean"))),
        },
        "STRING" => string(text),
        "BYTES" => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(trimmed)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(trimmed))
                .map_err(|e| bad(&format!("not base64: {e}")))?;
            let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
            Expr::value(Value::HexStringLiteral(hex))
        }
        "DATE" => {
            let d = NaiveDate::parse_from_str(trimmed, "%Y-%m-%d").map_err(|e| bad(&e))?;
            cast(string(d.format("%Y-%m-%d").to_string()), DataType::Date)
        }
        "DATETIME" => {
            let dt = parse_datetime(trimmed).ok_or_else(|| bad(&format!("'{text}'")))?;
            micros_as(dt.and_utc().timestamp_micros(), DATETIME_ARROW)
        }
        "TIMESTAMP" => {
            let ts = parse_timestamp(trimmed).ok_or_else(|| bad(&format!("'{text}'")))?;
            micros_as(ts, TIMESTAMP_ARROW)
        }
        "TIME" => {
            let t = parse_time(trimmed).ok_or_else(|| bad(&format!("'{text}'")))?;
            let micros = i64::from(t.num_seconds_from_midnight()) * 1_000_000
                + i64::from(t.nanosecond() / 1_000);
            micros_as(micros, TIME_ARROW)
        }
        other => {
            return Err(WarehouseError::invalid_query(format!(
                "Query parameter {name} has an unsupported type {other}"
            )));
        }
    })
}

/// An INT64 count of microseconds relabelled as a time type.
fn micros_as(micros: i64, arrow_type: &str) -> Expr {
    arrow_cast(
        cast(string(micros.to_string()), DataType::BigInt(None)),
        arrow_type,
    )
}

fn typed_null(name: &str, type_name: &str) -> Result<Expr, WarehouseError> {
    Ok(match type_name {
        "INT64" | "INTEGER" => cast(null(), DataType::BigInt(None)),
        "FLOAT64" | "FLOAT" => cast(null(), DataType::Double(ExactNumberInfo::None)),
        "NUMERIC" | "DECIMAL" => cast(null(), numeric()),
        "BIGNUMERIC" | "BIGDECIMAL" => cast(null(), bignumeric()),
        "BOOL" | "BOOLEAN" => cast(null(), DataType::Boolean),
        "STRING" => cast(null(), DataType::String(None)),
        "BYTES" => cast(null(), DataType::Bytea),
        "DATE" => cast(null(), DataType::Date),
        "DATETIME" => arrow_cast(null(), DATETIME_ARROW),
        "TIMESTAMP" => arrow_cast(null(), TIMESTAMP_ARROW),
        "TIME" => arrow_cast(null(), TIME_ARROW),
        other => {
            return Err(WarehouseError::invalid_query(format!(
                "Query parameter {name} has an unsupported type {other}"
            )));
        }
    })
}

fn array_literal(
    name: &str,
    ty: &ParameterType,
    value: &ParameterValue,
) -> Result<Expr, WarehouseError> {
    let Some(element_type) = ty.array_type.as_deref() else {
        return Err(WarehouseError::invalid_query(format!(
            "Query parameter {name} is an ARRAY without an arrayType"
        )));
    };
    let elements = match &value.array_values {
        Some(values) => values
            .iter()
            .map(|v| literal(name, element_type, v))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    // A typed element stands in when there is none, so the array's type is
    // known: `CASE WHEN FALSE THEN [x] END` is a NULL array of x's type and
    // the slice past the only element of `[x]` is an empty one.
    let sample = || -> Result<Expr, WarehouseError> {
        let null_element = literal(name, element_type, &ParameterValue::default())?;
        Ok(Expr::Array(Array {
            elem: vec![null_element],
            named: true,
        }))
    };
    if value.array_values.is_none() {
        return Ok(case_when(boolean(false), sample()?, None));
    }
    if elements.is_empty() {
        return Ok(call("array_slice", vec![sample()?, number(2), number(1)]));
    }
    Ok(Expr::Array(Array {
        elem: elements,
        named: true,
    }))
}

fn struct_literal(
    name: &str,
    ty: &ParameterType,
    value: &ParameterValue,
) -> Result<Expr, WarehouseError> {
    let mut args = Vec::new();
    for (index, field) in ty.struct_types.iter().enumerate() {
        let field_name = field
            .name
            .clone()
            .unwrap_or_else(|| format!("_field_{}", index + 1));
        let field_value = match value
            .struct_values
            .as_ref()
            .and_then(|m| m.get(&field_name))
        {
            Some(v) => serde_json::from_value::<ParameterValue>(v.clone())
                .map_err(|e| bad_value(name, "STRUCT", e))?,
            None => ParameterValue::default(),
        };
        args.push(string(field_name.clone()));
        args.push(literal(
            &format!("{name}.{field_name}"),
            &field.field_type,
            &field_value,
        )?);
    }
    if args.is_empty() {
        return Err(WarehouseError::invalid_query(format!(
            "Query parameter {name} is a STRUCT without fields"
        )));
    }
    let value_present = value.struct_values.is_some() || value.value.is_some();
    let built = call("named_struct", args);
    Ok(if value_present {
        built
    } else {
        case_when(boolean(false), built, None)
    })
}

fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let mut pieces = mantissa.splitn(2, '.');
    let whole = pieces.next().unwrap_or("");
    let fraction = pieces.next().unwrap_or("");
    let digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    !(whole.is_empty() && fraction.is_empty()) && digits(whole) && digits(fraction) && exponent_ok
}

fn parse_time(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M:%S%.f").ok()
}

/// `2024-05-01T12:00:00` → `2024-05-01 12:00:00` (only the date/time separator).
fn space_separated(s: &str) -> String {
    if s.as_bytes()
        .get(10)
        .is_some_and(|b| b.eq_ignore_ascii_case(&b'T'))
    {
        format!("{} {}", &s[..10], &s[11..])
    } else {
        s.to_string()
    }
}

fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    let normalized = space_separated(s);
    NaiveDateTime::parse_from_str(&normalized, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(&normalized, "%Y-%m-%d %H:%M").ok())
        .or_else(|| {
            NaiveDate::parse_from_str(&normalized, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(NaiveTime::MIN))
        })
}

/// Microseconds since the epoch for BigQuery's timestamp spellings:
/// `2024-05-01 12:00:00+00:00`, `2024-05-01T12:00:00Z`,
/// `2024-05-01 12:00:00.123456 UTC`, or no zone at all (UTC).
fn parse_timestamp(s: &str) -> Option<i64> {
    let mut text = space_separated(s.trim());
    for suffix in [" UTC", "UTC", "Z", "z"] {
        if let Some(stripped) = text.strip_suffix(suffix) {
            text = format!("{}+00:00", stripped.trim_end());
            break;
        }
    }
    let zoned = [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M:%S%.f %#z",
        "%Y-%m-%d %H:%M%#z",
    ]
    .iter()
    .find_map(|format| DateTime::parse_from_str(&text, format).ok());
    match zoned {
        Some(ts) => Some(ts.timestamp_micros()),
        None => parse_datetime(&text).map(|dt| dt.and_utc().timestamp_micros()),
    }
}
