//! Mapping between Arrow types and BigQuery types.
//!
//! DataFusion describes tables and query results in Arrow types; clients
//! expect BigQuery's schema vocabulary (`INTEGER`, `RECORD`, mode
//! `REPEATED`, …). This module translates both ways and counts the bytes a
//! column would be billed for, so dry runs can estimate like BigQuery does.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, AsArray, GenericByteArray, GenericListArray, OffsetSizeTrait,
};
use datafusion::arrow::datatypes::{
    ArrowNativeType, BinaryType, ByteArrayType, DataType, Field as ArrowField, Fields,
    IntervalUnit, LargeBinaryType, LargeUtf8Type, Schema, SchemaRef, TimeUnit, Utf8Type,
};

use sluice_warehouse::{Field, FieldMode, FieldType, TableSchema, WarehouseError};

/// The output schema of a query or table in BigQuery terms.
pub fn bigquery_schema(schema: &Schema) -> Result<TableSchema, WarehouseError> {
    let fields = schema
        .fields()
        .iter()
        .map(|field| bigquery_field(field))
        .collect::<Result<_, _>>()?;
    Ok(TableSchema { fields })
}

/// One Arrow field as a BigQuery column.
pub fn bigquery_field(field: &ArrowField) -> Result<Field, WarehouseError> {
    let mode = if field.is_nullable() {
        FieldMode::Nullable
    } else {
        FieldMode::Required
    };
    match list_item(field.data_type()) {
        Some(item) => {
            if list_item(value_type(item.data_type())).is_some() {
                // BigQuery has no arrays of arrays; saying so beats
                // flattening the value into something the client misreads.
                return Err(WarehouseError::unsupported(format!(
                    "Column {} of type ARRAY<ARRAY<…>> ({})",
                    field.name(),
                    field.data_type()
                )));
            }
            let (field_type, fields) = scalar_type(field.name(), item.data_type())?;
            Ok(column(
                field.name(),
                field_type,
                FieldMode::Repeated,
                fields,
            ))
        }
        None => {
            let (field_type, fields) = scalar_type(field.name(), field.data_type())?;
            Ok(column(field.name(), field_type, mode, fields))
        }
    }
}

fn column(name: &str, field_type: FieldType, mode: FieldMode, fields: Vec<Field>) -> Field {
    let mut column = Field::new(name, field_type, mode);
    column.fields = fields;
    column
}

/// The element field of any Arrow list type.
fn list_item(data_type: &DataType) -> Option<&ArrowField> {
    match data_type {
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            Some(item)
        }
        _ => None,
    }
}

/// What a dictionary-encoded column holds; other types are themselves.
fn value_type(data_type: &DataType) -> &DataType {
    match data_type {
        DataType::Dictionary(_, values) => value_type(values),
        other => other,
    }
}

/// The BigQuery type of a non-list Arrow type, with sub-fields for structs.
fn scalar_type(
    name: &str,
    data_type: &DataType,
) -> Result<(FieldType, Vec<Field>), WarehouseError> {
    let field_type = match data_type {
        DataType::Struct(children) => {
            let fields = children
                .iter()
                .map(|child| bigquery_field(child))
                .collect::<Result<_, _>>()?;
            return Ok((FieldType::Record, fields));
        }
        DataType::Dictionary(_, values) if list_item(values).is_none() => {
            return scalar_type(name, values);
        }
        other => scalar_field_type(other).ok_or_else(|| {
            WarehouseError::unsupported(format!("Column {name} of Arrow type {other}"))
        })?,
    };
    Ok((field_type, Vec::new()))
}

/// The BigQuery type of an Arrow scalar type, `None` when BigQuery has no
/// counterpart.
fn scalar_field_type(data_type: &DataType) -> Option<FieldType> {
    Some(match data_type {
        // BigQuery types a bare NULL literal as INT64.
        DataType::Null
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => FieldType::Int64,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => FieldType::Float64,
        DataType::Decimal32(_, scale) | DataType::Decimal64(_, scale) if *scale <= 9 => {
            FieldType::Numeric
        }
        DataType::Decimal128(precision, scale) if *scale <= 9 && *precision <= 38 => {
            FieldType::Numeric
        }
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => FieldType::BigNumeric,
        DataType::Boolean => FieldType::Bool,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => FieldType::String,
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => FieldType::Bytes,
        DataType::Date32 | DataType::Date64 => FieldType::Date,
        // A zone means the value is an instant; without one it is a
        // wall-clock reading, which is what DATETIME is.
        DataType::Timestamp(_, Some(_)) => FieldType::Timestamp,
        DataType::Timestamp(_, None) => FieldType::Datetime,
        DataType::Time32(_) | DataType::Time64(_) => FieldType::Time,
        DataType::Interval(_) | DataType::Duration(_) => FieldType::Interval,
        _ => return None,
    })
}

/// The Arrow schema for a table whose BigQuery schema is declared, so CSV
/// and JSON files are read with exactly the types their schema file names.
pub fn arrow_schema(schema: &TableSchema) -> Result<SchemaRef, WarehouseError> {
    let fields = schema
        .fields
        .iter()
        .map(arrow_field)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

fn arrow_field(field: &Field) -> Result<ArrowField, WarehouseError> {
    let data_type = match field.field_type {
        FieldType::Int64 => DataType::Int64,
        FieldType::Float64 => DataType::Float64,
        FieldType::Numeric => DataType::Decimal128(38, 9),
        FieldType::BigNumeric => DataType::Decimal256(76, 38),
        FieldType::Bool => DataType::Boolean,
        // JSON and GEOGRAPHY travel as text (JSON documents, WKT).
        FieldType::String | FieldType::Json | FieldType::Geography => DataType::Utf8,
        FieldType::Bytes => DataType::Binary,
        FieldType::Date => DataType::Date32,
        FieldType::Datetime => DataType::Timestamp(TimeUnit::Microsecond, None),
        FieldType::Time => DataType::Time64(TimeUnit::Microsecond),
        FieldType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        FieldType::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
        FieldType::Record => {
            if field.fields.is_empty() {
                return Err(WarehouseError::invalid(format!(
                    "Field {} is a RECORD without sub-fields",
                    field.name
                )));
            }
            let children = field
                .fields
                .iter()
                .map(arrow_field)
                .collect::<Result<Vec<_>, _>>()?;
            DataType::Struct(Fields::from(children))
        }
    };
    Ok(match field.mode {
        FieldMode::Nullable => ArrowField::new(&field.name, data_type, true),
        FieldMode::Required => ArrowField::new(&field.name, data_type, false),
        // A missing repeated value reads as an empty array, so the list
        // itself may be null in the file.
        FieldMode::Repeated => ArrowField::new(
            &field.name,
            DataType::List(Arc::new(ArrowField::new_list_field(data_type, true))),
            true,
        ),
    })
}

/// Bytes BigQuery bills for one value of a fixed-size type; `None` for the
/// types whose size depends on the value.
pub fn fixed_width_bytes(field_type: FieldType) -> Option<u64> {
    match field_type {
        FieldType::Int64
        | FieldType::Float64
        | FieldType::Date
        | FieldType::Datetime
        | FieldType::Time
        | FieldType::Timestamp => Some(8),
        FieldType::Bool => Some(1),
        FieldType::Numeric | FieldType::Interval => Some(16),
        FieldType::BigNumeric => Some(32),
        FieldType::String
        | FieldType::Bytes
        | FieldType::Record
        | FieldType::Json
        | FieldType::Geography => None,
    }
}

/// Logical bytes of one Arrow column as BigQuery counts them: strings and
/// bytes 2 + length per non-null value, fixed-size types their width per
/// non-null value, structs the sum of their children, arrays the sum of
/// their elements. Types BigQuery cannot hold count nothing.
pub fn column_bytes(array: &dyn Array) -> u64 {
    let non_null = (array.len() - array.null_count()) as u64;
    match array.data_type() {
        // Every value is NULL, and NULLs are free.
        DataType::Null => 0,
        DataType::Utf8 => byte_array_bytes(array.as_bytes::<Utf8Type>()),
        DataType::LargeUtf8 => byte_array_bytes(array.as_bytes::<LargeUtf8Type>()),
        DataType::Binary => byte_array_bytes(array.as_bytes::<BinaryType>()),
        DataType::LargeBinary => byte_array_bytes(array.as_bytes::<LargeBinaryType>()),
        DataType::Utf8View => array
            .as_string_view()
            .iter()
            .flatten()
            .map(|s| 2 + s.len() as u64)
            .sum(),
        DataType::BinaryView => array
            .as_binary_view()
            .iter()
            .flatten()
            .map(|b| 2 + b.len() as u64)
            .sum(),
        DataType::FixedSizeBinary(width) => non_null * (2 + *width as u64),
        DataType::Struct(_) => array
            .as_struct()
            .columns()
            .iter()
            .map(|child| column_bytes(child.as_ref()))
            .sum(),
        DataType::List(_) => list_bytes(array.as_list::<i32>()),
        DataType::LargeList(_) => list_bytes(array.as_list::<i64>()),
        // Sliced fixed-size lists slice their values too.
        DataType::FixedSizeList(..) => column_bytes(array.as_fixed_size_list().values().as_ref()),
        DataType::Dictionary(_, values) => {
            // Measure what the column means, not how it is encoded: expand
            // the dictionary. Dictionaries are rare here (Parquet strings
            // are decoded to plain arrays by DataFusion's default options).
            match datafusion::arrow::compute::cast(array, values) {
                Ok(plain) => column_bytes(plain.as_ref()),
                Err(_) => 0,
            }
        }
        other => match scalar_field_type(other).and_then(fixed_width_bytes) {
            Some(width) => width * non_null,
            None => 0,
        },
    }
}

/// Sums value lengths from the offsets alone, without touching the values.
fn byte_array_bytes<T: ByteArrayType>(array: &GenericByteArray<T>) -> u64 {
    let offsets = array.value_offsets();
    let rows = array.len();
    if rows == 0 {
        return 0;
    }
    let length = |i: usize| (offsets[i + 1].as_usize() - offsets[i].as_usize()) as u64;
    match array.nulls() {
        // Null slots usually have zero length but are not required to.
        Some(nulls) if nulls.null_count() > 0 => (0..rows)
            .filter(|&i| nulls.is_valid(i))
            .map(|i| 2 + length(i))
            .sum(),
        _ => 2 * rows as u64 + (offsets[rows].as_usize() - offsets[0].as_usize()) as u64,
    }
}

fn list_bytes<O: OffsetSizeTrait>(list: &GenericListArray<O>) -> u64 {
    let offsets = list.value_offsets();
    let (Some(first), Some(last)) = (offsets.first(), offsets.last()) else {
        return 0;
    };
    let (first, last) = (first.as_usize(), last.as_usize());
    column_bytes(list.values().slice(first, last - first).as_ref())
}

#[cfg(test)]
mod tests;
