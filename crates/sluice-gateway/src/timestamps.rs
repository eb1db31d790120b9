//! TIMESTAMP cells for clients that did not ask for int64 microseconds.
//!
//! Rows are kept with TIMESTAMP as int64 microseconds (what the official
//! clients ask for with `formatOptions.useInt64Timestamp`). Without that
//! option BigQuery sends seconds as a floating-point string
//! (`"1.7145648E9"`), so those pages are rewritten here.

use serde_json::Value;
use serde_json::value::RawValue;
use sluice_warehouse::{Field, FieldMode, FieldType, TableSchema};

use crate::error::GatewayError;

fn has_timestamp(fields: &[Field]) -> bool {
    fields
        .iter()
        .any(|f| f.field_type == FieldType::Timestamp || has_timestamp(&f.fields))
}

/// Rewrites every TIMESTAMP cell of `rows` from microseconds to seconds.
pub fn to_float_seconds(
    rows: Vec<Box<RawValue>>,
    schema: &TableSchema,
) -> Result<Vec<Box<RawValue>>, GatewayError> {
    if !has_timestamp(&schema.fields) {
        return Ok(rows);
    }
    rows.into_iter()
        .map(|row| {
            let mut value: Value =
                serde_json::from_str(row.get()).map_err(GatewayError::internal)?;
            convert_record(&mut value, &schema.fields);
            serde_json::value::to_raw_value(&value).map_err(GatewayError::internal)
        })
        .collect()
}

fn convert_record(record: &mut Value, fields: &[Field]) {
    let Some(cells) = record.get_mut("f").and_then(Value::as_array_mut) else {
        return;
    };
    for (cell, field) in cells.iter_mut().zip(fields) {
        if let Some(v) = cell.get_mut("v") {
            convert_cell(v, field, field.mode == FieldMode::Repeated);
        }
    }
}

fn convert_cell(value: &mut Value, field: &Field, repeated: bool) {
    if repeated {
        if let Some(items) = value.as_array_mut() {
            for item in items {
                if let Some(v) = item.get_mut("v") {
                    convert_cell(v, field, false);
                }
            }
        }
        return;
    }
    match field.field_type {
        FieldType::Timestamp => {
            if let Some(micros) = value.as_str().and_then(|s| s.parse::<i64>().ok()) {
                *value = Value::String(format!("{:E}", micros as f64 / 1_000_000.0));
            }
        }
        FieldType::Record => convert_record(value, &field.fields),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_become_float_seconds_at_every_depth() {
        let mut inner = Field::new("at", FieldType::Timestamp, FieldMode::Repeated);
        inner.fields = vec![];
        let mut record = Field::new("r", FieldType::Record, FieldMode::Nullable);
        record.fields = vec![inner];
        let schema = TableSchema {
            fields: vec![
                Field::new("ts", FieldType::Timestamp, FieldMode::Nullable),
                Field::new("n", FieldType::Int64, FieldMode::Nullable),
                record,
            ],
        };
        let row = RawValue::from_string(
            r#"{"f":[{"v":"1714564800000000"},{"v":"5"},{"v":{"f":[{"v":[{"v":"1500000"}]}]}}]}"#
                .into(),
        )
        .unwrap();
        let out = to_float_seconds(vec![row], &schema).unwrap();
        let value: Value = serde_json::from_str(out[0].get()).unwrap();
        let seconds: f64 = value["f"][0]["v"].as_str().unwrap().parse().unwrap();
        assert_eq!(seconds, 1714564800.0);
        assert_eq!(value["f"][1]["v"], "5");
        let nested: f64 = value["f"][2]["v"]["f"][0]["v"][0]["v"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(nested, 1.5);
    }
}
