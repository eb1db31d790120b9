//! BigQuery Standard SQL → DataFusion: parse with the BigQuery dialect and
//! rewrite the tree into what DataFusion plans.
//!
//! The rewrite works on sqlparser's tree, never on text: table names are
//! resolved to quoted `project.dataset.table`, parameters become typed
//! literals, and BigQuery functions whose name, argument order or result
//! type differ from DataFusion's become the DataFusion equivalent (or one of
//! the `bq_` functions in [`super::functions`]). Whatever cannot be made to
//! give BigQuery's answer is refused with an error naming the construct.

mod build;
mod calls;
mod datetime;
mod names;
mod params;
mod rewrite;
mod sql_types;
#[cfg(test)]
mod tests;
mod unnest;

use datafusion::sql::sqlparser::ast::{Statement, Visit, Visitor};
use datafusion::sql::sqlparser::parser::ParserError;
use std::ops::ControlFlow;

use sluice_warehouse::{QueryRequest, TableRef, WarehouseError};

/// Nesting deeper than this is refused: the rewrite, DataFusion's planner
/// and dropping the tree all recurse once per level.
const MAX_EXPRESSION_DEPTH: usize = 256;
/// Longer `IN (…)` lists are refused rather than planned element by element.
const MAX_IN_LIST: usize = 10_000;
/// BigQuery's own limit on the length of a query's text.
const MAX_SQL_BYTES: usize = 1024 * 1024;

/// Parses `query.sql` with sqlparser's BigQueryDialect and rewrites it into
/// a single statement DataFusion can plan.
pub fn translate(query: &QueryRequest) -> Result<Statement, WarehouseError> {
    let mut statement = parse_query(&query.sql)?;
    rewrite::rewrite(&mut statement, query)?;
    Ok(statement)
}

/// Every table the statement reads, fully qualified after the same name
/// resolution [`translate`] applies (CTE names excluded), sorted, once each.
pub fn referenced_tables(query: &QueryRequest) -> Result<Vec<TableRef>, WarehouseError> {
    let statement = translate(query)?;
    let mut collector = TableCollector(Vec::new());
    let _ = statement.visit(&mut collector);
    let mut tables = collector.0;
    tables.sort();
    tables.dedup();
    Ok(tables)
}

struct TableCollector(Vec<TableRef>);

impl Visitor for TableCollector {
    type Break = ();

    fn pre_visit_relation(
        &mut self,
        relation: &datafusion::sql::sqlparser::ast::ObjectName,
    ) -> ControlFlow<()> {
        let parts: Vec<&str> = relation
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(|i| i.value.as_str()))
            .collect();
        // Only resolved names have three parts; CTE references have one.
        if let [project, dataset, table] = parts.as_slice() {
            self.0.push(TableRef::new(*project, *dataset, *table));
        }
        ControlFlow::Continue(())
    }
}

/// Parses exactly one query statement.
fn parse_query(sql: &str) -> Result<Statement, WarehouseError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(WarehouseError::invalid_query(format!(
            "The query is too large. The maximum standard SQL query length is {MAX_SQL_BYTES} bytes."
        )));
    }
    // The analysis' bounded parse: token limits first, then a budget of
    // parser steps, so the warehouse accepts no text the gateway's
    // analysis would refuse, even when called on its own.
    let mut statements = sluice_sql::parse(sql).map_err(|failure| match failure {
        sluice_sql::ParseFailure::Limit(exceeded) => {
            WarehouseError::invalid_query(format!("The query is too complex: {exceeded}."))
        }
        sluice_sql::ParseFailure::Syntax(error) => parse_error(error),
    })?;
    match statements.len() {
        0 => {
            return Err(WarehouseError::invalid_query(
                "Syntax error: Unexpected end of script",
            ));
        }
        1 => {}
        _ => {
            return Err(WarehouseError::unsupported(
                "Multi-statement queries (scripts)",
            ));
        }
    }
    let statement = statements.remove(0);
    match &statement {
        Statement::Query(_) => Ok(statement),
        other => Err(WarehouseError::unsupported(statement_kind(other))),
    }
}

fn parse_error(error: ParserError) -> WarehouseError {
    let message = match error {
        ParserError::RecursionLimitExceeded => {
            "Syntax error: the query is nested too deeply".to_string()
        }
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => {
            format!("Syntax error: {m}")
        }
    };
    WarehouseError::invalid_query(message)
}

/// A human name for a statement kind, as a refusal names it.
fn statement_kind(statement: &Statement) -> String {
    let name = match statement {
        Statement::Insert(_) => "INSERT statements",
        Statement::Update(_) => "UPDATE statements",
        Statement::Delete(_) => "DELETE statements",
        Statement::Merge(_) => "MERGE statements",
        Statement::Truncate(_) => "TRUNCATE TABLE statements",
        Statement::CreateTable(_) => "CREATE TABLE statements",
        Statement::CreateView(_) => "CREATE VIEW statements",
        Statement::CreateFunction(_) => "CREATE FUNCTION statements",
        Statement::CreateSchema { .. } => "CREATE SCHEMA statements",
        Statement::AlterTable(_) => "ALTER TABLE statements",
        Statement::Drop { object_type, .. } => {
            return format!("DROP {object_type} statements");
        }
        Statement::ExportData(_) => "EXPORT DATA statements",
        Statement::Declare { .. } | Statement::Set(_) => "Scripting statements",
        Statement::Call(_) => "CALL statements",
        Statement::Execute { .. } => "EXECUTE IMMEDIATE statements",
        Statement::Grant(_) | Statement::Revoke(_) => "GRANT and REVOKE statements",
        _ => {
            // Name it after its leading keywords, e.g. "CREATE MODEL".
            let text = statement.to_string();
            let words: Vec<&str> = text.split_whitespace().take(2).collect();
            return format!("{} statements", words.join(" ").to_ascii_uppercase());
        }
    };
    name.to_string()
}

/// Whether an expression reads a column (as opposed to literals and query
/// parameters, which are `@name` identifiers until they are rewritten).
fn references_columns(expr: &datafusion::sql::sqlparser::ast::Expr) -> bool {
    use datafusion::sql::sqlparser::ast::Expr;
    let mut found = false;
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(expr, |e| {
        let column = match e {
            Expr::Identifier(ident) => !ident.value.starts_with('@'),
            Expr::CompoundIdentifier(idents) => !idents[0].value.starts_with('@'),
            Expr::CompoundFieldAccess { .. } => false,
            _ => false,
        };
        if column {
            found = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    found
}
