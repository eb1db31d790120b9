//! Translation tests: each query is translated, planned and run by a real
//! DataFusion session over small in-memory tables in `demo.shop`, and the
//! answer is checked against what BigQuery returns.

mod calls;
mod names;
mod params;

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider,
};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;

use super::translate;
use crate::functions;
use sluice_warehouse::{ParameterMode, QueryRequest, WarehouseError};

fn utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// 2024-05-01 is a Wednesday.
fn orders() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("price", DataType::Decimal128(38, 9), true),
        Field::new("qty", DataType::Int64, true),
        Field::new("order_date", DataType::Date32, true),
        Field::new("created_at", utc(), true),
        Field::new("tags", DataType::new_list(DataType::Utf8, true), true),
    ]));
    // 2024-05-01 = day 19844 since the epoch.
    let day = 19_844;
    let micros = |d: i32, h: i64| i64::from(d) * 86_400_000_000 + h * 3_600_000_000;
    let tags = {
        let mut b = datafusion::arrow::array::ListBuilder::new(
            datafusion::arrow::array::StringBuilder::new(),
        );
        for row in [vec!["a", "b"], vec!["c"], vec![], vec!["d", "e", "f"]] {
            for t in row {
                b.values().append_value(t);
            }
            b.append(true);
        }
        b.finish()
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
        Arc::new(StringArray::from(vec![
            Some("ann"),
            Some("bob"),
            Some("ann"),
            None,
        ])),
        Arc::new(Float64Array::from(vec![
            Some(10.0),
            Some(20.5),
            None,
            Some(4.0),
        ])),
        Arc::new(
            Decimal128Array::from(vec![
                Some(1_500_000_000),
                Some(2_000_000_000),
                Some(1),
                None,
            ])
            .with_precision_and_scale(38, 9)
            .unwrap(),
        ),
        Arc::new(Int64Array::from(vec![Some(3), Some(0), Some(7), None])),
        Arc::new(Date32Array::from(vec![
            Some(day),
            Some(day + 31),
            Some(day - 1),
            None,
        ])),
        Arc::new(
            TimestampMicrosecondArray::from(vec![
                Some(micros(day, 13)),
                Some(micros(day + 1, 0)),
                Some(micros(day - 1, 23)),
                None,
            ])
            .with_timezone("UTC"),
        ),
        Arc::new(tags),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

fn customers() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("tier", DataType::Int64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["ann", "bob"])),
            Arc::new(Int64Array::from(vec![1, 2])),
        ],
    )
    .unwrap()
}

fn table(batch: RecordBatch) -> Arc<MemTable> {
    Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap())
}

/// A session with `demo.shop.{orders,customers}` and `acme-prod.sales.orders`.
pub fn session() -> SessionContext {
    let ctx = SessionContext::new();
    let shop = Arc::new(MemorySchemaProvider::new());
    shop.register_table("orders".into(), table(orders()))
        .unwrap();
    shop.register_table("customers".into(), table(customers()))
        .unwrap();
    shop.register_table("INFORMATION_SCHEMA.TABLES".into(), table(customers()))
        .unwrap();
    let demo = Arc::new(MemoryCatalogProvider::new());
    demo.register_schema("shop", shop).unwrap();
    ctx.register_catalog("demo", demo);
    let sales = Arc::new(MemorySchemaProvider::new());
    sales
        .register_table("orders".into(), table(orders()))
        .unwrap();
    let acme = Arc::new(MemoryCatalogProvider::new());
    acme.register_schema("sales", sales).unwrap();
    ctx.register_catalog("acme-prod", acme);
    functions::register(&ctx);
    ctx
}

pub fn request(sql: &str) -> QueryRequest {
    QueryRequest {
        sql: sql.to_string(),
        default_project: "demo".to_string(),
        default_dataset: None,
        ..Default::default()
    }
}

/// Translates, plans and runs a request; errors of either side as text.
pub async fn run_request(query: &QueryRequest) -> Result<Vec<RecordBatch>, String> {
    let ctx = session();
    let statement = translate(query).map_err(|e: WarehouseError| e.message)?;
    let state = ctx.state();
    let plan = state
        .statement_to_plan(DFStatement::Statement(Box::new(statement)))
        .await
        .map_err(|e| e.to_string())?;
    let frame = ctx
        .execute_logical_plan(plan)
        .await
        .map_err(|e| e.to_string())?;
    frame.collect().await.map_err(|e| e.to_string())
}

pub async fn run(sql: &str) -> Result<Vec<RecordBatch>, String> {
    run_request(&request(sql)).await
}

/// Every row as display strings (NULL as "NULL").
pub fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for row in 0..batch.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect(),
            );
        }
    }
    out
}

/// The single value of a one-row, one-column query, and its Arrow type.
pub async fn scalar(sql: &str) -> (String, DataType) {
    let batches = run(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let all = rows(&batches);
    assert_eq!(all.len(), 1, "{sql}: {all:?}");
    (
        all[0][0].clone(),
        batches[0].schema().field(0).data_type().clone(),
    )
}

/// The error text of a query that must fail.
pub async fn error(sql: &str) -> String {
    match run(sql).await {
        Ok(batches) => panic!("{sql} should fail, got {:?}", rows(&batches)),
        Err(e) => e,
    }
}

pub fn positional(sql: &str) -> QueryRequest {
    QueryRequest {
        parameter_mode: ParameterMode::Positional,
        ..request(sql)
    }
}
