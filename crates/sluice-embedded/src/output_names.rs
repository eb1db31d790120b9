//! BigQuery's names for a query's output columns.
//!
//! BigQuery names a column after its alias or the column it selects
//! (`address.city` is `city`), and every other expression `f0_`, `f1_`, …
//! in order. DataFusion would name them after the expression's text
//! (`count(*)`), which clients then see as the field name; so the outermost
//! SELECT list is given BigQuery's names before planning.

use datafusion::sql::sqlparser::ast::{Expr, Ident, Query, SelectItem, SetExpr, Statement};

/// Aliases the unnamed items of the statement's outermost SELECT list.
pub fn name_output_columns(statement: &mut Statement) {
    if let Statement::Query(query) = statement {
        name_query(query);
    }
}

fn name_query(query: &mut Query) {
    name_set_expr(&mut query.body);
}

fn name_set_expr(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            let mut anonymous = 0;
            for item in &mut select.projection {
                let SelectItem::UnnamedExpr(expr) = item else {
                    continue;
                };
                let alias = match expr {
                    Expr::Identifier(_) => continue,
                    Expr::CompoundIdentifier(parts) => match parts.last() {
                        Some(last) => Ident::new(last.value.clone()),
                        None => continue,
                    },
                    _ => {
                        let name = format!("f{anonymous}_");
                        anonymous += 1;
                        Ident::new(name)
                    }
                };
                let expr = std::mem::replace(
                    expr,
                    Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
                );
                *item = SelectItem::ExprWithAlias { expr, alias };
            }
        }
        // The left-most branch of a set operation names its columns.
        SetExpr::SetOperation { left, .. } => name_set_expr(left),
        SetExpr::Query(query) => name_query(query),
        _ => {}
    }
}
