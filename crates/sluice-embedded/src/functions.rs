//! BigQuery functions DataFusion lacks, as DataFusion user-defined functions.
//!
//! The SQL translation ([`super::bigquery_sql`]) rewrites a BigQuery call into
//! one of these whenever the right behaviour depends on argument types that
//! are only known once the plan is built: `/` divides integers as floats but
//! keeps NUMERIC exact, `DATE_TRUNC` keeps a DATE a DATE, and so on. Each
//! name is prefixed `bq_` so it never shadows a DataFusion built-in.

mod arithmetic;
mod datetime;
#[cfg(test)]
mod tests;

use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

/// `a / b` with BigQuery's result types: FLOAT64 unless a NUMERIC is involved.
pub const DIVIDE: &str = "bq_divide";
/// `SAFE_DIVIDE(a, b)`: like [`DIVIDE`], NULL instead of a division-by-zero error.
pub const SAFE_DIVIDE: &str = "bq_safe_divide";
/// `DIV(a, b)`: INT64 division truncating toward zero.
pub const INT_DIVIDE: &str = "bq_div";
/// `DATE_TRUNC`/`DATETIME_TRUNC`/`TIMESTAMP_TRUNC(x, 'PART')`, keeping x's type.
pub const DATE_TRUNC: &str = "bq_date_trunc";
/// `DATE_ADD`/`TIMESTAMP_ADD`/…`(x, n, 'PART')`, keeping x's type.
pub const DATE_ADD: &str = "bq_date_add";
/// `DATE_DIFF`/`TIMESTAMP_DIFF`/`DATETIME_DIFF(a, b, 'PART')` as INT64.
pub const DATE_DIFF: &str = "bq_date_diff";

/// Registers every UDF the translation relies on.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(arithmetic::Divide::new(false)));
    ctx.register_udf(ScalarUDF::from(arithmetic::Divide::new(true)));
    ctx.register_udf(ScalarUDF::from(arithmetic::IntDivide::new()));
    ctx.register_udf(ScalarUDF::from(datetime::DateTrunc::new()));
    ctx.register_udf(ScalarUDF::from(datetime::DateAdd::new()));
    ctx.register_udf(ScalarUDF::from(datetime::DateDiff::new()));
}
