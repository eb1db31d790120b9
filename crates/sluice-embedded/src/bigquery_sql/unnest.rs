//! `UNNEST` in FROM as DataFusion's select-list `unnest`.
//!
//! BigQuery flattens an array column with a correlated join:
//! `FROM t AS a, UNNEST(a.tags) AS tag [WITH OFFSET AS i]`. DataFusion
//! cannot join to an `UNNEST` that reads another FROM item, but it can
//! unnest in a select list, so the pair becomes one derived table under
//! the same name:
//!
//! ```sql
//! FROM (SELECT a.*, UNNEST(a.tags) AS tag,
//!              UNNEST(range(0, cardinality(a.tags))) AS i
//!       FROM t AS a) AS a
//! ```
//!
//! Two `unnest` calls in one select list advance together, so each element
//! keeps its offset. Rows whose array is empty or NULL disappear, as they
//! do in BigQuery's comma join. Forms with other meanings (`LEFT JOIN
//! UNNEST`, an `UNNEST` of an outer query's column) are refused by name.

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, JoinConstraint, JoinOperator, ObjectName, Query, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, Statement, TableAlias, TableFactor, TableWithJoins,
    WildcardAdditionalOptions,
};
use datafusion::sql::sqlparser::dialect::BigQueryDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::build::{call, number};
use super::names::unquote;
use super::references_columns;
use sluice_warehouse::WarehouseError;

/// Rewrites every `UNNEST` of `from` that needs it; leaves the rest alone.
pub fn rewrite_from(from: &mut Vec<TableWithJoins>) -> Result<(), WarehouseError> {
    let items = std::mem::take(from);
    for mut item in items {
        if let Some(unnest) = Unnest::of(&item.relation)? {
            if unnest.is_correlated() {
                let Some(previous) = from.last_mut() else {
                    return Err(WarehouseError::unsupported(
                        "UNNEST of an outer query's column (a correlated subquery over an array)",
                    ));
                };
                if !previous.joins.is_empty() {
                    return Err(WarehouseError::unsupported(
                        "UNNEST of a column after a JOIN in the same FROM list (put the UNNEST right after its table)",
                    ));
                }
                let relation = std::mem::replace(&mut previous.relation, placeholder());
                previous.relation = unnest.joined_to(relation)?;
                previous.joins = std::mem::take(&mut item.joins);
                rewrite_joins(previous)?;
                continue;
            }
            if unnest.offset.is_some() {
                item.relation = unnest.standing_alone()?;
            }
        }
        rewrite_joins(&mut item)?;
        from.push(item);
    }
    Ok(())
}

/// Folds the correlated `UNNEST`s that directly follow the first relation
/// into it; refuses one that comes later or with another join type.
fn rewrite_joins(item: &mut TableWithJoins) -> Result<(), WarehouseError> {
    let mut leading = true;
    let joins = std::mem::take(&mut item.joins);
    for mut join in joins {
        let Some(unnest) = Unnest::of(&join.relation)? else {
            leading = false;
            item.joins.push(join);
            continue;
        };
        if !unnest.is_correlated() {
            if unnest.offset.is_some() {
                join.relation = unnest.standing_alone()?;
            }
            leading = false;
            item.joins.push(join);
            continue;
        }
        if !is_cross(&join.join_operator) {
            return Err(WarehouseError::unsupported(format!(
                "{} UNNEST of a column (use a comma or CROSS JOIN)",
                join_name(&join.join_operator)
            )));
        }
        if !leading {
            return Err(WarehouseError::unsupported(
                "UNNEST of a column after a JOIN in the same FROM list (put the UNNEST right after its table)",
            ));
        }
        let relation = std::mem::replace(&mut item.relation, placeholder());
        item.relation = unnest.joined_to(relation)?;
    }
    Ok(())
}

fn is_cross(operator: &JoinOperator) -> bool {
    match operator {
        JoinOperator::CrossJoin(JoinConstraint::None)
        | JoinOperator::Join(JoinConstraint::None)
        | JoinOperator::Inner(JoinConstraint::None) => true,
        JoinOperator::Join(JoinConstraint::On(on))
        | JoinOperator::Inner(JoinConstraint::On(on)) => {
            matches!(on, Expr::Value(v) if v.value == datafusion::sql::sqlparser::ast::Value::Boolean(true))
        }
        _ => false,
    }
}

fn join_name(operator: &JoinOperator) -> &'static str {
    match operator {
        JoinOperator::Left(_) | JoinOperator::LeftOuter(_) => "LEFT JOIN",
        JoinOperator::Right(_) | JoinOperator::RightOuter(_) => "RIGHT JOIN",
        JoinOperator::FullOuter(_) => "FULL JOIN",
        _ => "A JOIN with a condition on an",
    }
}

/// One `UNNEST(array) AS name [WITH OFFSET [AS offset]]` FROM item.
struct Unnest {
    array: Expr,
    name: Ident,
    offset: Option<Ident>,
}

impl Unnest {
    fn of(factor: &TableFactor) -> Result<Option<Self>, WarehouseError> {
        let TableFactor::UNNEST {
            alias,
            array_exprs,
            with_offset,
            with_offset_alias,
            with_ordinality,
        } = factor
        else {
            return Ok(None);
        };
        if *with_ordinality {
            return Err(WarehouseError::unsupported("UNNEST … WITH ORDINALITY"));
        }
        let [array] = array_exprs.as_slice() else {
            return Err(WarehouseError::unsupported(
                "UNNEST of several arrays at once",
            ));
        };
        let offset = with_offset.then(|| {
            let mut name = with_offset_alias
                .clone()
                .unwrap_or_else(|| Ident::new("offset"));
            unquote(&mut name);
            name
        });
        let Some(alias) = alias else {
            if offset.is_none() && !references_columns(array) {
                // A bare `FROM UNNEST([…])` DataFusion plans as it is.
                return Ok(None);
            }
            return Err(WarehouseError::unsupported(
                "UNNEST in FROM without an alias (write UNNEST(…) AS name)",
            ));
        };
        let mut name = alias.name.clone();
        unquote(&mut name);
        Ok(Some(Self {
            array: array.clone(),
            name,
            offset,
        }))
    }

    fn is_correlated(&self) -> bool {
        references_columns(&self.array)
    }

    /// The select-list items that produce the element and its offset.
    fn items(&self) -> Vec<SelectItem> {
        let mut items = vec![SelectItem::ExprWithAlias {
            expr: call("unnest", vec![self.array.clone()]),
            alias: self.name.clone(),
        }];
        if let Some(offset) = &self.offset {
            let offsets = call(
                "range",
                vec![number(0), call("cardinality", vec![self.array.clone()])],
            );
            items.push(SelectItem::ExprWithAlias {
                expr: call("unnest", vec![offsets]),
                alias: offset.clone(),
            });
        }
        items
    }

    /// `relation, UNNEST(…)` as one derived table named like `relation`.
    fn joined_to(&self, mut relation: TableFactor) -> Result<TableFactor, WarehouseError> {
        let mut qualifier = match &mut relation {
            TableFactor::Table { alias: Some(a), .. }
            | TableFactor::Derived { alias: Some(a), .. } => a.name.clone(),
            // BigQuery lets the table's own name qualify its columns; the
            // derived table needs it as an explicit alias inside too.
            TableFactor::Table { name, alias, .. } => {
                let last = name
                    .0
                    .last()
                    .and_then(|part| part.as_ident())
                    .cloned()
                    .ok_or_else(|| {
                        WarehouseError::invalid_query(format!("Invalid table name {name}"))
                    })?;
                *alias = Some(TableAlias {
                    explicit: true,
                    name: last.clone(),
                    columns: Vec::new(),
                    at: None,
                });
                last
            }
            other => {
                return Err(WarehouseError::unsupported(format!(
                    "UNNEST of a column of {other} (give the FROM item an alias)"
                )));
            }
        };
        unquote(&mut qualifier);
        let mut projection = vec![SelectItem::QualifiedWildcard(
            SelectItemQualifiedWildcardKind::ObjectName(ObjectName::from(vec![qualifier.clone()])),
            WildcardAdditionalOptions::default(),
        )];
        projection.extend(self.items());
        derived(
            projection,
            vec![TableWithJoins {
                relation,
                joins: Vec::new(),
            }],
            qualifier,
        )
    }

    /// `UNNEST(array) AS x WITH OFFSET AS i` on its own, as a derived table.
    fn standing_alone(&self) -> Result<TableFactor, WarehouseError> {
        derived(self.items(), Vec::new(), self.name.clone())
    }
}

/// `(SELECT projection FROM from) AS name`, built from a parsed template so
/// every field sqlparser has keeps its default.
fn derived(
    projection: Vec<SelectItem>,
    from: Vec<TableWithJoins>,
    name: Ident,
) -> Result<TableFactor, WarehouseError> {
    let template = "SELECT 1 FROM (SELECT 1) AS t";
    let statement = Parser::parse_sql(&BigQueryDialect {}, template)
        .ok()
        .and_then(|mut all| all.pop())
        .ok_or_else(|| WarehouseError::internal("the UNNEST template does not parse"))?;
    let Statement::Query(query) = statement else {
        return Err(WarehouseError::internal(
            "the UNNEST template is not a query",
        ));
    };
    let Some(mut factor) = outer_select_from(*query) else {
        return Err(WarehouseError::internal("the UNNEST template has no FROM"));
    };
    if let TableFactor::Derived {
        subquery, alias, ..
    } = &mut factor
        && let SetExpr::Select(select) = subquery.body.as_mut()
        && let Some(alias) = alias
    {
        select.projection = projection;
        select.from = from;
        alias.name = name;
        return Ok(factor);
    }
    Err(WarehouseError::internal(
        "the UNNEST template has another shape",
    ))
}

fn outer_select_from(query: Query) -> Option<TableFactor> {
    match *query.body {
        SetExpr::Select(select) => select.from.into_iter().next().map(|t| t.relation),
        _ => None,
    }
}

/// Stands in for a relation while it is moved into a derived table.
fn placeholder() -> TableFactor {
    TableFactor::UNNEST {
        alias: None,
        array_exprs: Vec::new(),
        with_offset: false,
        with_offset_alias: None,
        with_ordinality: false,
    }
}
