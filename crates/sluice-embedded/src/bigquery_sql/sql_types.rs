//! BigQuery type names → the types DataFusion plans with.
//!
//! DataFusion does not know `INT64`, `FLOAT64`, `BYTES` or `DATETIME`, and
//! gives a bare `NUMERIC` scale 10 where BigQuery's has 9. TIMESTAMP and
//! TIME have no SQL spelling for the Arrow types BigQuery's map to
//! (microseconds, UTC), so casts to them go through `arrow_cast`.

use datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, CastKind, DataType, ExactNumberInfo, Expr, StructField, TimezoneInfo,
};

use super::build::{TIME_ARROW, TIMESTAMP_ARROW, arrow_cast, call, cast_kind, string};
use sluice_warehouse::WarehouseError;

/// BigQuery's NUMERIC: precision 38, scale 9.
pub fn numeric() -> DataType {
    DataType::Decimal(ExactNumberInfo::PrecisionAndScale(38, 9))
}

/// BigQuery's BIGNUMERIC, as the widest decimal DataFusion has.
pub fn bignumeric() -> DataType {
    DataType::Decimal(ExactNumberInfo::PrecisionAndScale(76, 38))
}

/// DATETIME: microseconds without a zone.
pub fn datetime() -> DataType {
    DataType::Timestamp(Some(6), TimezoneInfo::None)
}

/// A type DataFusion's SQL planner accepts, for one that is not TIMESTAMP
/// or TIME at its top level (those need [`cast_to`]).
pub fn convert(data_type: &DataType) -> Result<DataType, WarehouseError> {
    Ok(match data_type {
        DataType::Int64 | DataType::BigInt(_) | DataType::Integer(_) | DataType::Int(_) => {
            DataType::BigInt(None)
        }
        DataType::Float64 | DataType::Double(ExactNumberInfo::None) | DataType::DoublePrecision => {
            DataType::Double(ExactNumberInfo::None)
        }
        DataType::Numeric(ExactNumberInfo::None) | DataType::Decimal(ExactNumberInfo::None) => {
            numeric()
        }
        DataType::Numeric(info) | DataType::Decimal(info) => DataType::Decimal(*info),
        DataType::BigNumeric(ExactNumberInfo::None)
        | DataType::BigDecimal(ExactNumberInfo::None) => bignumeric(),
        DataType::BigNumeric(info) | DataType::BigDecimal(info) => DataType::Decimal(*info),
        DataType::String(_) => DataType::String(None),
        DataType::Bytes(_) => DataType::Bytea,
        DataType::Bool | DataType::Boolean => DataType::Boolean,
        DataType::Date => DataType::Date,
        DataType::Datetime(_) => datetime(),
        DataType::Array(ArrayElemTypeDef::AngleBracket(inner))
        | DataType::Array(ArrayElemTypeDef::SquareBracket(inner, None)) => {
            DataType::Array(ArrayElemTypeDef::AngleBracket(Box::new(nested(inner)?)))
        }
        DataType::Struct(fields, kind) => DataType::Struct(
            fields
                .iter()
                .map(|f| {
                    Ok(StructField {
                        field_name: f.field_name.clone(),
                        field_type: nested(&f.field_type)?,
                        options: f.options.clone(),
                    })
                })
                .collect::<Result<_, WarehouseError>>()?,
            *kind,
        ),
        other => return Err(WarehouseError::unsupported(format!("The type {other}"))),
    })
}

/// Element and field types: TIMESTAMP and TIME cannot be spelled there.
fn nested(data_type: &DataType) -> Result<DataType, WarehouseError> {
    match data_type {
        DataType::Timestamp(..) | DataType::Time(..) => Err(WarehouseError::unsupported(format!(
            "{data_type} inside ARRAY or STRUCT types"
        ))),
        other => convert(other),
    }
}

/// `CAST`/`SAFE_CAST(expr AS type)` with a BigQuery type name.
pub fn cast_to(expr: Expr, data_type: &DataType, kind: CastKind) -> Result<Expr, WarehouseError> {
    let safe = !matches!(kind, CastKind::Cast);
    let kind = if safe {
        CastKind::TryCast
    } else {
        CastKind::Cast
    };
    Ok(match data_type {
        // Parse (or convert) as a zone-less timestamp, whose values are
        // already UTC, then label it UTC: that relabelling cannot fail.
        DataType::Timestamp(_, _) => arrow_cast(cast_kind(expr, datetime(), kind), TIMESTAMP_ARROW),
        DataType::Time(_, _) => {
            let function = if safe { "arrow_try_cast" } else { "arrow_cast" };
            call(function, vec![expr, string(TIME_ARROW)])
        }
        other => cast_kind(expr, convert(other)?, kind),
    })
}
