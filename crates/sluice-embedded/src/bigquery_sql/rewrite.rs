//! The walk over the parsed statement that applies every rewrite rule:
//! CTE scopes and table names on the way down, expressions on the way up
//! (children first, so a rule sees arguments that are already rewritten).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, CastKind, Expr, Query, Select, SelectItem, Statement, Subscript,
    TableAliasColumnDef, TableFactor, Value, ValueWithSpan, Visit, VisitMut, Visitor, VisitorMut,
    WildcardAdditionalOptions,
};
use datafusion::sql::sqlparser::tokenizer::Location;

use super::build::{binary, call, nested, null, number, string};
use super::names::{CteScopes, resolve_table, unquote};
use super::params::Parameters;
use super::{
    MAX_EXPRESSION_DEPTH, MAX_IN_LIST, calls, datetime, references_columns, sql_types, unnest,
};
use sluice_warehouse::{QueryRequest, WarehouseError};

/// Applies every rule to `statement` in place.
pub fn rewrite(statement: &mut Statement, query: &QueryRequest) -> Result<(), WarehouseError> {
    let mut finder = PlaceholderFinder(Vec::new());
    let _ = Visit::visit(&*statement, &mut finder);
    let mut rewriter = Rewriter {
        query,
        params: Parameters::new(query, finder.0)?,
        ctes: CteScopes::default(),
        depth: 0,
    };
    match statement.visit(&mut rewriter) {
        ControlFlow::Break(error) => Err(error),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// Where the `?` placeholders are, so each gets its value by text order.
struct PlaceholderFinder(Vec<Location>);

impl Visitor for PlaceholderFinder {
    type Break = ();

    fn pre_visit_value(&mut self, value: &ValueWithSpan) -> ControlFlow<()> {
        if matches!(&value.value, Value::Placeholder(p) if p == "?") {
            self.0.push(value.span.start);
        }
        ControlFlow::Continue(())
    }
}

struct Rewriter<'a> {
    query: &'a QueryRequest,
    params: Parameters<'a>,
    ctes: CteScopes,
    depth: usize,
}

fn flow(result: Result<(), WarehouseError>) -> ControlFlow<WarehouseError> {
    match result {
        Ok(()) => ControlFlow::Continue(()),
        Err(error) => ControlFlow::Break(error),
    }
}

impl VisitorMut for Rewriter<'_> {
    type Break = WarehouseError;

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<WarehouseError> {
        let names = query
            .with
            .iter()
            .flat_map(|with| with.cte_tables.iter())
            .map(|cte| cte.alias.name.value.clone())
            .collect();
        self.ctes.push(names);
        if query.with.as_ref().is_some_and(|w| w.recursive) {
            return ControlFlow::Break(WarehouseError::unsupported("WITH RECURSIVE"));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &mut Query) -> ControlFlow<WarehouseError> {
        self.ctes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<WarehouseError> {
        if select.value_table_mode.is_some() {
            return ControlFlow::Break(WarehouseError::unsupported("SELECT AS STRUCT / AS VALUE"));
        }
        if let Err(error) = unnest::rewrite_from(&mut select.from) {
            return ControlFlow::Break(error);
        }
        for item in &mut select.projection {
            if let SelectItem::Wildcard(options) | SelectItem::QualifiedWildcard(_, options) = item
            {
                unquote_wildcard_options(options);
            }
        }
        for table in &mut select.from {
            for join in &mut table.joins {
                use datafusion::sql::sqlparser::ast::{JoinConstraint, JoinOperator as J};
                let constraint = match &mut join.join_operator {
                    J::Join(c)
                    | J::Inner(c)
                    | J::Left(c)
                    | J::LeftOuter(c)
                    | J::Right(c)
                    | J::RightOuter(c)
                    | J::FullOuter(c) => Some(c),
                    _ => None,
                };
                if let Some(JoinConstraint::Using(columns)) = constraint {
                    for column in columns {
                        for part in &mut column.0 {
                            if let datafusion::sql::sqlparser::ast::ObjectNamePart::Identifier(i) =
                                part
                            {
                                unquote(i);
                            }
                        }
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<WarehouseError> {
        flow(self.table_factor(factor))
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<WarehouseError> {
        self.depth += 1;
        if self.depth > MAX_EXPRESSION_DEPTH {
            return ControlFlow::Break(WarehouseError::invalid_query(format!(
                "The query is too complex: expressions are nested more than {MAX_EXPRESSION_DEPTH} levels deep."
            )));
        }
        if let Expr::InList { list, .. } = expr
            && list.len() > MAX_IN_LIST
        {
            return ControlFlow::Break(WarehouseError::invalid_query(format!(
                "The query is too complex: an IN list has {} elements, more than the {MAX_IN_LIST} this warehouse accepts.",
                list.len()
            )));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<WarehouseError> {
        self.depth -= 1;
        let taken = std::mem::replace(expr, null());
        match self.expr(taken) {
            Ok(rewritten) => {
                *expr = rewritten;
                ControlFlow::Continue(())
            }
            Err(error) => ControlFlow::Break(error),
        }
    }
}

fn unquote_wildcard_options(options: &mut WildcardAdditionalOptions) {
    if let Some(except) = &mut options.opt_except {
        unquote(&mut except.first_element);
        except.additional_elements.iter_mut().for_each(unquote);
    }
    if let Some(replace) = &mut options.opt_replace {
        for element in &mut replace.items {
            unquote(&mut element.column_name);
        }
    }
}

impl Rewriter<'_> {
    fn table_factor(&mut self, factor: &mut TableFactor) -> Result<(), WarehouseError> {
        match factor {
            TableFactor::Table {
                name,
                alias,
                args,
                version,
                ..
            } => {
                if args.is_some() {
                    return Err(WarehouseError::unsupported(format!(
                        "Table-valued function {name}"
                    )));
                }
                if version.is_some() {
                    return Err(WarehouseError::unsupported("FOR SYSTEM_TIME AS OF"));
                }
                resolve_table(name, self.query, &self.ctes)?;
                if let Some(alias) = alias {
                    unquote(&mut alias.name);
                }
            }
            TableFactor::Derived { alias, .. } => {
                if let Some(alias) = alias {
                    unquote(&mut alias.name);
                }
            }
            TableFactor::UNNEST {
                alias,
                with_offset,
                array_exprs,
                ..
            } => {
                if *with_offset {
                    return Err(WarehouseError::unsupported("UNNEST … WITH OFFSET"));
                }
                // `unnest::rewrite_from` has already turned every UNNEST of
                // another FROM item's column into a select-list unnest.
                if array_exprs.iter().any(references_columns) {
                    return Err(WarehouseError::unsupported(
                        "UNNEST of a column in FROM (a correlated UNNEST; use SELECT UNNEST(column) instead)",
                    ));
                }
                if let Some(alias) = alias {
                    unquote(&mut alias.name);
                    // In BigQuery the alias names the element column itself.
                    if alias.columns.is_empty() {
                        alias.columns =
                            vec![TableAliasColumnDef::from_name(alias.name.value.clone())];
                    }
                }
            }
            TableFactor::NestedJoin { .. } => {}
            other => {
                return Err(WarehouseError::unsupported(format!(
                    "The FROM item {other}"
                )));
            }
        }
        Ok(())
    }

    fn expr(&self, expr: Expr) -> Result<Expr, WarehouseError> {
        Ok(match expr {
            Expr::Identifier(ident)
                if ident.quote_style.is_none() && ident.value.starts_with("@@") =>
            {
                return Err(WarehouseError::unsupported(format!(
                    "System variable {}",
                    ident.value
                )));
            }
            Expr::Identifier(ident)
                if ident.quote_style.is_none() && ident.value.starts_with('@') =>
            {
                self.params.named(&ident.value[1..])?
            }
            Expr::Value(ValueWithSpan {
                value: Value::Placeholder(p),
                span,
            }) => {
                if p == "?" {
                    self.params.positional(span.start)?
                } else if let Some(name) = p.strip_prefix('@') {
                    self.params.named(name)?
                } else {
                    return Err(WarehouseError::invalid_query(format!(
                        "Unexpected parameter {p}"
                    )));
                }
            }
            Expr::Identifier(mut ident) => {
                unquote(&mut ident);
                Expr::Identifier(ident)
            }
            // `@s.x`: a field of a STRUCT parameter.
            Expr::CompoundIdentifier(idents)
                if idents[0].quote_style.is_none() && idents[0].value.starts_with('@') =>
            {
                let root = self.params.named(&idents[0].value[1..])?;
                Expr::CompoundFieldAccess {
                    root: Box::new(nested(root)),
                    access_chain: idents[1..]
                        .iter()
                        .map(|field| AccessExpr::Dot(string(field.value.to_ascii_lowercase())))
                        .collect(),
                }
            }
            Expr::CompoundIdentifier(mut idents) => {
                idents.iter_mut().for_each(unquote);
                Expr::CompoundIdentifier(idents)
            }
            // `x IN UNNEST(array)` is membership in the array.
            Expr::InUnnest {
                expr,
                array_expr,
                negated,
            } => {
                let member = call("array_has", vec![*array_expr, *expr]);
                if negated {
                    Expr::UnaryOp {
                        op: datafusion::sql::sqlparser::ast::UnaryOperator::Not,
                        expr: Box::new(nested(member)),
                    }
                } else {
                    member
                }
            }
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Divide,
                right,
            } => call(crate::functions::DIVIDE, vec![*left, *right]),
            Expr::Function(f) => calls::rewrite(f)?,
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![*expr];
                args.extend(substring_from.map(|e| *e));
                args.extend(substring_for.map(|e| *e));
                calls::substr(args)?
            }
            Expr::Extract { field, expr, .. } => datetime::extract(&field, *expr)?,
            Expr::Cast {
                kind,
                expr,
                data_type,
                format,
                ..
            } => {
                if format.is_some() {
                    return Err(WarehouseError::unsupported("CAST … FORMAT"));
                }
                sql_types::cast_to(*expr, &data_type, kind)?
            }
            Expr::TypedString(typed) => {
                sql_types::cast_to(Expr::Value(typed.value), &typed.data_type, CastKind::Cast)?
            }
            Expr::Struct { values, fields } => struct_expr(values, fields)?,
            Expr::Value(ValueWithSpan { value, span }) => Expr::Value(ValueWithSpan {
                value: plain_string(value),
                span,
            }),
            Expr::CompoundFieldAccess { root, access_chain } => Expr::CompoundFieldAccess {
                root,
                access_chain: access_chain
                    .into_iter()
                    .map(subscript)
                    .collect::<Result<_, _>>()?,
            },
            other => other,
        })
    }
}

/// BigQuery's other string spellings (`r'…'`, `"…"`, `'''…'''`) as the
/// plain string DataFusion plans; a raw string's text is already its value.
fn plain_string(value: Value) -> Value {
    match value {
        Value::SingleQuotedRawStringLiteral(s)
        | Value::DoubleQuotedRawStringLiteral(s)
        | Value::TripleSingleQuotedRawStringLiteral(s)
        | Value::TripleDoubleQuotedRawStringLiteral(s)
        | Value::DoubleQuotedString(s)
        | Value::TripleSingleQuotedString(s)
        | Value::TripleDoubleQuotedString(s) => Value::SingleQuotedString(s),
        other => other,
    }
}

/// `STRUCT(a AS x, b)` / `STRUCT<x INT64>(a)` as `named_struct('x', a, …)`.
fn struct_expr(
    values: Vec<Expr>,
    fields: Vec<datafusion::sql::sqlparser::ast::StructField>,
) -> Result<Expr, WarehouseError> {
    if !fields.is_empty() && fields.len() != values.len() {
        return Err(WarehouseError::invalid_query(
            "STRUCT has a different number of field types and values",
        ));
    }
    let mut args = Vec::with_capacity(values.len() * 2);
    for (index, value) in values.into_iter().enumerate() {
        let (name, value) = match value {
            Expr::Named { expr, name } => (Some(name.value), *expr),
            Expr::Identifier(ref ident) => (Some(ident.value.to_ascii_lowercase()), value),
            other => (None, other),
        };
        let field = fields.get(index);
        let name = field
            .and_then(|f| f.field_name.as_ref().map(|n| n.value.clone()))
            .or(name)
            .unwrap_or_else(|| format!("_field_{}", index + 1));
        let value = match field {
            Some(f) => sql_types::cast_to(value, &f.field_type, CastKind::Cast)?,
            None => value,
        };
        args.push(string(name));
        args.push(value);
    }
    if args.is_empty() {
        return Err(WarehouseError::unsupported("An empty STRUCT()"));
    }
    Ok(call("named_struct", args))
}

/// `arr[OFFSET(i)]`, `arr[ORDINAL(i)]`, `arr[i]` (an offset) as
/// DataFusion's one-based index.
fn subscript(access: AccessExpr) -> Result<AccessExpr, WarehouseError> {
    let index = match access {
        // `STRUCT(…).y`: DataFusion takes the field name as a string.
        AccessExpr::Dot(Expr::Identifier(ident)) => {
            return Ok(AccessExpr::Dot(string(ident.value.to_ascii_lowercase())));
        }
        AccessExpr::Subscript(Subscript::Index { index }) => index,
        other => return Ok(other),
    };
    let one_based = match index {
        Expr::Function(f) => {
            let name = f.name.to_string().to_ascii_uppercase();
            let arg = match &f.args {
                datafusion::sql::sqlparser::ast::FunctionArguments::List(list)
                    if list.args.len() == 1 =>
                {
                    match &list.args[0] {
                        datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                            datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(e),
                        ) => e.clone(),
                        _ => {
                            return Err(WarehouseError::invalid_query(format!(
                                "Invalid array subscript {f}"
                            )));
                        }
                    }
                }
                _ => {
                    return Err(WarehouseError::invalid_query(format!(
                        "Invalid array subscript {f}"
                    )));
                }
            };
            match name.as_str() {
                "SAFE_OFFSET" => binary(arg, BinaryOperator::Plus, number(1)),
                "SAFE_ORDINAL" => arg,
                // Out of range is an error in BigQuery and NULL in DataFusion.
                "OFFSET" | "ORDINAL" => {
                    return Err(WarehouseError::unsupported(format!(
                        "Array subscript {name}() (use SAFE_{name}())"
                    )));
                }
                _ => binary(Expr::Function(f), BinaryOperator::Plus, number(1)),
            }
        }
        other => {
            return Err(WarehouseError::unsupported(format!(
                "Array subscript [{other}] (use [SAFE_OFFSET(…)])"
            )));
        }
    };
    Ok(AccessExpr::Subscript(Subscript::Index { index: one_based }))
}
