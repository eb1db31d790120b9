//! The `bq_` functions called directly, outside any translation.

use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;

async fn value(sql: &str) -> Result<String, String> {
    let ctx = SessionContext::new();
    super::register(&ctx);
    let frame = ctx.sql(sql).await.map_err(|e| e.to_string())?;
    let batches = frame.collect().await.map_err(|e| e.to_string())?;
    let options = FormatOptions::default().with_null("NULL");
    let f = ArrayFormatter::try_new(batches[0].column(0).as_ref(), &options).unwrap();
    Ok(f.value(0).to_string())
}

#[tokio::test]
async fn divide_returns_float_for_integers_and_errors_on_zero() {
    assert_eq!(value("SELECT bq_divide(1, 4)").await.unwrap(), "0.25");
    assert_eq!(value("SELECT bq_safe_divide(1, 0)").await.unwrap(), "NULL");
    assert!(
        value("SELECT bq_divide(1, 0)")
            .await
            .unwrap_err()
            .contains("division by zero: 1 / 0")
    );
    assert_eq!(value("SELECT bq_div(-7, 2)").await.unwrap(), "-3");
}

#[tokio::test]
async fn date_functions_keep_dates() {
    assert_eq!(
        value("SELECT bq_date_trunc(DATE '2024-02-29', 'ISOYEAR')")
            .await
            .unwrap(),
        "2024-01-01"
    );
    assert_eq!(
        value("SELECT bq_date_add(DATE '2024-03-31', -1, 'MONTH')")
            .await
            .unwrap(),
        "2024-02-29"
    );
    assert_eq!(
        value("SELECT bq_date_diff(DATE '2024-05-12', DATE '2024-05-11', 'WEEK')")
            .await
            .unwrap(),
        "1"
    );
    assert!(
        value("SELECT bq_date_add(DATE '2024-03-31', 1, 'HOUR')")
            .await
            .is_err()
    );
}
