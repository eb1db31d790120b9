//! Column lineage: for every output column of a query, the source columns
//! it derives from (DESIGN.md §5, invariant 5).
//!
//! [`lineage`] follows values through aliases, expressions and function
//! calls, CASE/IF/COALESCE, casts, CTEs, subqueries (scalar, correlated,
//! `ARRAY(SELECT …)`), joins, set operations, `SELECT *` with
//! `EXCEPT`/`REPLACE`, whole-row references (`SELECT t`,
//! `TO_JSON_STRING(t)`), STRUCT field access, `UNNEST` and window
//! functions. Every column an expression mentions counts, the conditions of
//! a CASE among them: `CASE WHEN ssn LIKE '1%' THEN 1 END` tells a digit of
//! the SSN.
//!
//! Besides the output columns, it reports the sources a query filters,
//! joins or groups on ([`Lineage::filtered`]: an equality oracle on a
//! sensitive column), and those it passes through an unkeyed hash
//! ([`Lineage::hashed`]).
//!
//! Like the rest of the crate it is pure, and it errs one way only: what it
//! cannot follow is reported as unknown ([`Derivation::unknown`], or no
//! output columns at all), never as "derives from nothing". The caller
//! treats unknown as sensitive.

use std::collections::{BTreeSet, HashSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    AccessExpr, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident,
    JoinConstraint, JoinOperator, NamedWindowExpr, ObjectName, ObjectNamePart, Query, Select,
    SelectItem, SelectItemQualifiedWildcardKind, SetExpr, SetOperator, Statement, TableFactor,
    TableWithJoins, Value, Visit, Visitor, WildcardAdditionalOptions,
};

use crate::facts::Defaults;
use crate::name::TableName;

/// A source column: a table and the path of a column in it, lower-cased
/// (`["address", "zip"]` for a nested field; empty for the whole row).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Source {
    pub table: TableName,
    pub path: Vec<String>,
}

/// Where one value comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Derivation {
    /// Every source column the value depends on.
    pub sources: BTreeSet<Source>,
    /// The value is exactly this source, passed through unchanged (by
    /// aliases, subqueries, CTEs, `UNNEST` of it, field access).
    pub identity: Option<Source>,
    /// Part of the value's derivation could not be followed.
    pub unknown: bool,
}

impl Derivation {
    fn of(source: Source) -> Self {
        let mut sources = BTreeSet::new();
        sources.insert(source.clone());
        Self {
            sources,
            identity: Some(source),
            unknown: false,
        }
    }

    fn unknown() -> Self {
        Self {
            unknown: true,
            ..Self::default()
        }
    }

    /// `self` and `other` together: no longer an identity.
    fn merge(&mut self, other: &Derivation) {
        self.sources.extend(other.sources.iter().cloned());
        self.unknown |= other.unknown;
        self.identity = None;
    }

    /// A union of alternatives (UNION branches): an identity only when
    /// every branch is the same one.
    fn union(mut self, other: &Derivation) -> Self {
        let identity = match (&self.identity, &other.identity) {
            (Some(a), Some(b)) if a == b => Some(a.clone()),
            _ => None,
        };
        self.merge(other);
        self.identity = identity;
        self
    }

    /// A field of this value. An identity follows the path; anything else
    /// keeps its sources whole, which is the conservative reading.
    fn field(self, fields: &[String]) -> Self {
        match self.identity {
            Some(mut source) if !fields.is_empty() => {
                source.path.extend(fields.iter().cloned());
                let mut derived = Self::of(source);
                derived.unknown = self.unknown;
                derived
            }
            identity => Self { identity, ..self },
        }
    }
}

/// One output column of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputColumn {
    /// The name BigQuery gives it, where the query fixes one (an alias, a
    /// column or field name, a `*` expansion); `None` for an anonymous
    /// expression (`f0_`).
    pub name: Option<String>,
    pub derivation: Derivation,
}

/// What [`lineage`] learned about a query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lineage {
    /// The output columns in order, or `None` when they cannot be known
    /// (a script, a statement that is not a query, `SELECT *` over a table
    /// whose columns are not given, a construct not followed); `reasons`
    /// says why.
    pub columns: Option<Vec<OutputColumn>>,
    /// What the query filters, joins, groups or compares on: `WHERE`,
    /// `JOIN … ON`/`USING`, `GROUP BY`, `HAVING`, `QUALIFY`, named windows,
    /// and both sides of `INTERSECT`/`EXCEPT`.
    pub filtered: Derivation,
    /// Sources passed through an unkeyed hash function anywhere.
    pub hashed: BTreeSet<Source>,
    /// Every table the query reads columns of (base tables only).
    pub tables: BTreeSet<TableName>,
    /// Why something was not followed.
    pub reasons: Vec<String>,
}

/// The columns of a table, for `SELECT *` and for telling which table an
/// unqualified column belongs to.
pub trait Schemas {
    /// The table's top-level column names in order, or `None` when not
    /// known.
    fn columns(&self, table: &TableName) -> Option<Vec<String>>;
}

impl<F: Fn(&TableName) -> Option<Vec<String>>> Schemas for F {
    fn columns(&self, table: &TableName) -> Option<Vec<String>> {
        self(table)
    }
}

/// How lineage reads a query.
#[derive(Debug, Clone, Default)]
pub struct LineageOptions {
    /// Aggregates whose result, applied to a plain column, does not carry
    /// its value (`COUNT`): `COUNT(DISTINCT ssn)` derives from nothing.
    /// Upper-case names.
    pub counting_aggregates: Vec<String>,
}

/// Unkeyed hash functions: anyone can hash every candidate value and
/// compare.
const UNKEYED_HASHES: &[&str] = &[
    "MD5",
    "SHA1",
    "SHA256",
    "SHA512",
    "FARM_FINGERPRINT",
    "HASH",
    "FINGERPRINT",
];

/// Date parts written as bare names in function arguments
/// (`DATE_TRUNC(d, MONTH)`): they name no column.
const DATE_PARTS: &[&str] = &[
    "microsecond",
    "millisecond",
    "second",
    "minute",
    "hour",
    "day",
    "dayofweek",
    "dayofyear",
    "week",
    "isoweek",
    "month",
    "quarter",
    "year",
    "isoyear",
    "date",
    "time",
    "datetime",
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

/// How deep queries may nest before lineage gives up (as unknown).
const MAX_DEPTH: usize = 48;

/// The lineage of the query in `sql` (one query statement), with the
/// request's `defaults` and the `schemas` of the tables it reads.
pub fn lineage(
    sql: &str,
    defaults: &Defaults,
    schemas: &dyn Schemas,
    options: &LineageOptions,
) -> Lineage {
    let statements = match std::panic::catch_unwind(|| crate::parse(sql)) {
        Ok(Ok(statements)) => statements,
        Ok(Err(err)) => {
            return Lineage {
                reasons: vec![format!("SQL could not be parsed: {err}")],
                ..Lineage::default()
            };
        }
        Err(_) => {
            return Lineage {
                reasons: vec!["SQL parser failed unexpectedly".to_owned()],
                ..Lineage::default()
            };
        }
    };
    lineage_of(&statements, defaults, schemas, options)
}

/// [`lineage`] of parsed statements.
pub fn lineage_of(
    statements: &[Statement],
    defaults: &Defaults,
    schemas: &dyn Schemas,
    options: &LineageOptions,
) -> Lineage {
    let mut cx = Cx {
        defaults,
        schemas,
        options,
        out: Lineage::default(),
        depth: 0,
    };
    match statements {
        [Statement::Query(query)] => {
            let columns = cx.query(query, &[], None);
            cx.out.columns = columns;
        }
        [_] => cx
            .out
            .reasons
            .push("the statement is not a query".to_owned()),
        _ => cx
            .out
            .reasons
            .push("a script's result columns are not followed".to_owned()),
    }
    if cx.out.columns.is_none() && cx.out.reasons.is_empty() {
        cx.out
            .reasons
            .push("the output columns could not be followed".to_owned());
    }
    cx.out
}

/// A CTE visible by name: its columns, when known.
type Cte = (String, Option<Vec<OutputColumn>>);

/// What a `FROM` item makes visible.
#[derive(Debug, Clone)]
enum Rel {
    /// Columns of a subquery or CTE.
    Columns(Vec<OutputColumn>),
    /// A base table; its columns when known.
    Table {
        table: TableName,
        columns: Option<Vec<String>>,
    },
    /// A value table (`UNNEST(…) AS x`): the element.
    Value(Derivation),
    /// Something not followed: anything read through it is unknown.
    Opaque,
}

#[derive(Debug, Clone)]
struct Relation {
    alias: Option<String>,
    rel: Rel,
}

/// Whether a relation has a column.
enum Has {
    Yes(Derivation),
    Maybe(Derivation),
    No,
}

impl Relation {
    fn whole(&self) -> Derivation {
        match &self.rel {
            Rel::Columns(columns) => {
                let mut all = Derivation::default();
                for column in columns {
                    all.merge(&column.derivation);
                }
                all
            }
            Rel::Table { table, .. } => Derivation::of(Source {
                table: table.clone(),
                path: Vec::new(),
            }),
            Rel::Value(derivation) => derivation.clone(),
            Rel::Opaque => Derivation::unknown(),
        }
    }

    fn column(&self, name: &str) -> Has {
        match &self.rel {
            Rel::Columns(columns) => columns
                .iter()
                .find(|c| {
                    c.name
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
                .map_or(Has::No, |c| Has::Yes(c.derivation.clone())),
            Rel::Table { table, columns } => {
                let source = Derivation::of(Source {
                    table: table.clone(),
                    path: vec![name.to_ascii_lowercase()],
                });
                match columns {
                    Some(names) if names.iter().any(|n| n.eq_ignore_ascii_case(name)) => {
                        Has::Yes(source)
                    }
                    Some(_) => Has::No,
                    None => Has::Maybe(source),
                }
            }
            // A value table of STRUCTs exposes its fields by name.
            Rel::Value(derivation) => {
                Has::Maybe(derivation.clone().field(&[name.to_ascii_lowercase()]))
            }
            Rel::Opaque => Has::Maybe(Derivation::unknown()),
        }
    }

    /// Its columns for `*`, when known.
    fn star(&self) -> Option<Vec<OutputColumn>> {
        match &self.rel {
            Rel::Columns(columns) => Some(columns.clone()),
            Rel::Table { table, columns } => columns.as_ref().map(|names| {
                names
                    .iter()
                    .map(|n| OutputColumn {
                        name: Some(n.clone()),
                        derivation: Derivation::of(Source {
                            table: table.clone(),
                            path: vec![n.to_ascii_lowercase()],
                        }),
                    })
                    .collect()
            }),
            // A value table's `*` is its fields when the element is a
            // STRUCT, else one column: not known without types.
            Rel::Value(_) | Rel::Opaque => None,
        }
    }
}

/// The names visible at one level of query nesting.
struct Scope<'s> {
    relations: Vec<Relation>,
    /// `SELECT *` of the `FROM` clause, in BigQuery's order (`USING`
    /// columns first), when known.
    star: Option<Vec<OutputColumn>>,
    /// The select list's aliases, for `GROUP BY`, `HAVING`, `QUALIFY`.
    aliases: Vec<(String, Derivation)>,
    outer: Option<&'s Scope<'s>>,
}

impl Scope<'_> {
    fn new<'o>(outer: Option<&'o Scope<'o>>) -> Scope<'o> {
        Scope {
            relations: Vec::new(),
            star: Some(Vec::new()),
            aliases: Vec::new(),
            outer,
        }
    }

    fn alias(&self, name: &str) -> Option<&Relation> {
        self.relations.iter().rev().find(|r| {
            r.alias
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(name))
        })
    }

    /// A name as written (`col`, `alias`, `alias.col.field`,
    /// `col.field`), looked up from the innermost scope out.
    fn resolve(&self, parts: &[String]) -> Derivation {
        let mut found = Derivation::default();
        let mut any = false;
        let mut scope = Some(self);
        while let Some(here) = scope {
            match here.resolve_here(parts) {
                Some((derivation, true)) => {
                    if any {
                        found.merge(&derivation);
                        return found;
                    }
                    return derivation;
                }
                Some((derivation, false)) => {
                    // Only possibly here: an outer column of that name may
                    // be the one meant, so keep looking and take both.
                    if any {
                        found.merge(&derivation);
                    } else {
                        found = derivation;
                        any = true;
                    }
                }
                None => {}
            }
            scope = here.outer;
        }
        if any {
            return found;
        }
        if parts.len() == 1 && DATE_PARTS.contains(&parts[0].as_str()) {
            return Derivation::default();
        }
        Derivation::unknown()
    }

    /// `Some((derivation, definite))` when the name may be resolved here.
    fn resolve_here(&self, parts: &[String]) -> Option<(Derivation, bool)> {
        let (first, rest) = parts.split_first()?;
        if let Some(relation) = self.alias(first) {
            let Some((column, fields)) = rest.split_first() else {
                return Some((relation.whole(), true));
            };
            match relation.column(column) {
                Has::Yes(d) => return Some((d.field(fields), true)),
                Has::Maybe(d) => return Some((d.field(fields), true)),
                Has::No => {}
            }
        }
        let mut definite: Option<Derivation> = None;
        let mut maybe: Option<Derivation> = None;
        for relation in &self.relations {
            match relation.column(first) {
                Has::Yes(d) => {
                    let d = d.field(rest);
                    match &mut definite {
                        Some(all) => all.merge(&d),
                        None => definite = Some(d),
                    }
                }
                Has::Maybe(d) => {
                    let d = d.field(rest);
                    match &mut maybe {
                        Some(all) => all.merge(&d),
                        None => maybe = Some(d),
                    }
                }
                Has::No => {}
            }
        }
        // A select-list alias (in GROUP BY, HAVING, QUALIFY) may be meant
        // as well as a column of the same name: take both.
        let alias = self
            .aliases
            .iter()
            .find(|(a, _)| parts.len() == 1 && a.eq_ignore_ascii_case(first))
            .map(|(_, d)| d.clone());
        // A column some relation surely has is the one meant: were another
        // relation to have it as well, BigQuery would refuse the name as
        // ambiguous.
        let resolved = match (definite, maybe) {
            (Some(d), _) => Some((d, true)),
            (None, Some(m)) => Some((m, false)),
            (None, None) => None,
        };
        match (resolved, alias) {
            (Some((mut d, _)), Some(a)) => {
                d.merge(&a);
                Some((d, true))
            }
            (None, Some(a)) => Some((a, true)),
            (resolved, None) => resolved,
        }
    }
}

struct Cx<'a> {
    defaults: &'a Defaults,
    schemas: &'a dyn Schemas,
    options: &'a LineageOptions,
    out: Lineage,
    depth: usize,
}

fn lower(ident: &Ident) -> String {
    ident.value.to_ascii_lowercase()
}

/// The parts of a name as BigQuery reads it (a quoted part with dots is
/// several parts); `None` with a computed part.
fn name_parts(name: &ObjectName) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    for part in &name.0 {
        match part {
            ObjectNamePart::Identifier(ident) => {
                parts.extend(ident.value.split('.').map(str::to_owned));
            }
            ObjectNamePart::Function(_) => return None,
        }
    }
    Some(parts)
}

fn ident_parts(idents: &[Ident]) -> Vec<String> {
    idents
        .iter()
        .flat_map(|i| i.value.split('.').map(str::to_ascii_lowercase))
        .collect()
}

impl Cx<'_> {
    fn note(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        if !self.out.reasons.contains(&reason) {
            self.out.reasons.push(reason);
        }
    }

    fn filtered(&mut self, derivation: &Derivation) {
        self.out.filtered.merge(derivation);
    }

    /// The output columns of a query, `None` when not known.
    fn query(
        &mut self,
        query: &Query,
        ctes: &[Cte],
        outer: Option<&Scope<'_>>,
    ) -> Option<Vec<OutputColumn>> {
        if self.depth >= MAX_DEPTH {
            self.note("the query nests too deep to follow");
            return None;
        }
        self.depth += 1;
        let columns = self.query_inner(query, ctes, outer);
        self.depth -= 1;
        columns
    }

    fn query_inner(
        &mut self,
        query: &Query,
        ctes: &[Cte],
        outer: Option<&Scope<'_>>,
    ) -> Option<Vec<OutputColumn>> {
        if !query.pipe_operators.is_empty() {
            self.note("pipe syntax is not followed");
            return None;
        }
        let mut visible: Vec<Cte> = ctes.to_vec();
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                let columns = if with.recursive {
                    self.note("a recursive CTE is not followed");
                    None
                } else {
                    self.query(&cte.query, &visible, None)
                };
                visible.push((cte.alias.name.value.clone(), columns));
            }
        }
        self.set_expr(&query.body, &visible, outer)
    }

    fn set_expr(
        &mut self,
        body: &SetExpr,
        ctes: &[Cte],
        outer: Option<&Scope<'_>>,
    ) -> Option<Vec<OutputColumn>> {
        // A long chain of set operations is deep on its left: walk it with
        // a loop.
        let mut operands = Vec::new();
        let mut left = body;
        while let SetExpr::SetOperation {
            left: l, op, right, ..
        } = left
        {
            operands.push((op, right.as_ref()));
            left = l;
        }
        let mut columns = self.set_operand(left, ctes, outer);
        while let Some((op, right)) = operands.pop() {
            let right = self.set_operand(right, ctes, outer);
            if matches!(
                op,
                SetOperator::Intersect | SetOperator::Except | SetOperator::Minus
            ) {
                // Rows are kept by comparing every column: an oracle.
                for side in [&columns, &right] {
                    match side {
                        Some(cols) => {
                            for c in cols {
                                self.filtered(&c.derivation.clone());
                            }
                        }
                        None => self.out.filtered.unknown = true,
                    }
                }
            }
            columns = match (columns, right) {
                (Some(l), Some(r)) if l.len() == r.len() => Some(
                    l.into_iter()
                        .zip(r)
                        .map(|(l, r)| OutputColumn {
                            name: l.name,
                            derivation: l.derivation.union(&r.derivation),
                        })
                        .collect(),
                ),
                _ => None,
            };
        }
        columns
    }

    fn set_operand(
        &mut self,
        body: &SetExpr,
        ctes: &[Cte],
        outer: Option<&Scope<'_>>,
    ) -> Option<Vec<OutputColumn>> {
        match body {
            SetExpr::Select(select) => self.select(select, ctes, outer),
            SetExpr::Query(query) => self.query(query, ctes, outer),
            SetExpr::SetOperation { .. } => self.set_expr(body, ctes, outer),
            _ => {
                self.note("a query body that is not a SELECT is not followed");
                None
            }
        }
    }

    fn select(
        &mut self,
        select: &Select,
        ctes: &[Cte],
        outer: Option<&Scope<'_>>,
    ) -> Option<Vec<OutputColumn>> {
        let mut scope = Scope::new(outer);
        for from in &select.from {
            self.add_from_item(from, ctes, &mut scope);
        }
        if let Some(selection) = &select.selection {
            let d = self.expr(selection, &scope, ctes);
            self.filtered(&d);
        }
        for window in &select.named_window {
            if let NamedWindowExpr::WindowSpec(spec) = &window.1 {
                for e in &spec.partition_by {
                    let d = self.expr(e, &scope, ctes);
                    self.filtered(&d);
                }
            }
        }
        // The select list.
        let mut columns: Option<Vec<OutputColumn>> = Some(Vec::new());
        for item in &select.projection {
            let produced = self.select_item(item, &scope, ctes);
            match (&mut columns, produced) {
                (Some(all), Some(more)) => all.extend(more),
                _ => columns = None,
            }
        }
        if let Some(columns) = &columns {
            scope.aliases = columns
                .iter()
                .filter_map(|c| c.name.clone().map(|n| (n, c.derivation.clone())))
                .collect();
        }
        match &select.group_by {
            GroupByExpr::All(_) => match &columns {
                Some(all) => {
                    for c in all {
                        self.filtered(&c.derivation.clone());
                    }
                }
                None => self.out.filtered.unknown = true,
            },
            GroupByExpr::Expressions(exprs, _) => {
                for e in exprs {
                    let d = match (ordinal(e), &columns) {
                        (Some(n), Some(all)) => all
                            .get(n.wrapping_sub(1))
                            .map_or_else(Derivation::unknown, |c| c.derivation.clone()),
                        (Some(_), None) => Derivation::unknown(),
                        (None, _) => self.expr(e, &scope, ctes),
                    };
                    self.filtered(&d);
                }
            }
        }
        for e in [&select.having, &select.qualify].into_iter().flatten() {
            let d = self.expr(e, &scope, ctes);
            self.filtered(&d);
        }
        if select.value_table_mode.is_some() {
            // SELECT AS STRUCT / AS VALUE: one column.
            let mut all = Derivation::default();
            match &columns {
                Some(cols) => cols.iter().for_each(|c| all.merge(&c.derivation)),
                None => all.unknown = true,
            }
            return Some(vec![OutputColumn {
                name: None,
                derivation: all,
            }]);
        }
        columns
    }

    fn select_item(
        &mut self,
        item: &SelectItem,
        scope: &Scope<'_>,
        ctes: &[Cte],
    ) -> Option<Vec<OutputColumn>> {
        match item {
            SelectItem::UnnamedExpr(expr) => Some(vec![OutputColumn {
                name: implicit_name(expr),
                derivation: self.expr(expr, scope, ctes),
            }]),
            SelectItem::ExprWithAlias { expr, alias } => Some(vec![OutputColumn {
                name: Some(alias.value.clone()),
                derivation: self.expr(expr, scope, ctes),
            }]),
            SelectItem::Wildcard(options) => {
                let Some(star) = scope.star.clone() else {
                    self.note("SELECT * over a table whose columns are not known");
                    return None;
                };
                self.wildcard(star, options, scope, ctes)
            }
            SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(name),
                options,
            ) => {
                let parts = name_parts(name)?;
                let relation = match parts.as_slice() {
                    [alias] => scope.alias(alias),
                    _ => None,
                };
                let Some(star) = relation.and_then(Relation::star) else {
                    self.note(format!("{name}.* is not followed"));
                    return None;
                };
                self.wildcard(star, options, scope, ctes)
            }
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::Expr(_), _)
            | SelectItem::ExprWithAliases { .. } => {
                self.note("this form of select item is not followed");
                None
            }
        }
    }

    fn wildcard(
        &mut self,
        mut star: Vec<OutputColumn>,
        options: &WildcardAdditionalOptions,
        scope: &Scope<'_>,
        ctes: &[Cte],
    ) -> Option<Vec<OutputColumn>> {
        if options.opt_ilike.is_some()
            || options.opt_exclude.is_some()
            || options.opt_rename.is_some()
            || options.opt_alias.is_some()
        {
            self.note("this form of SELECT * is not followed");
            return None;
        }
        if let Some(except) = &options.opt_except {
            let names: Vec<&Ident> = std::iter::once(&except.first_element)
                .chain(&except.additional_elements)
                .collect();
            star.retain(|c| {
                !names.iter().any(|n| {
                    c.name
                        .as_deref()
                        .is_some_and(|name| name.eq_ignore_ascii_case(&n.value))
                })
            });
        }
        if let Some(replace) = &options.opt_replace {
            for element in &replace.items {
                let derivation = self.expr(&element.expr, scope, ctes);
                let target = star.iter_mut().find(|c| {
                    c.name
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(&element.column_name.value))
                });
                match target {
                    Some(column) => column.derivation = derivation,
                    None => return None,
                }
            }
        }
        Some(star)
    }

    /// One `FROM` item and its joins, added to `scope`.
    fn add_from_item(&mut self, from: &TableWithJoins, ctes: &[Cte], scope: &mut Scope<'_>) {
        let first = self.factor(&from.relation, ctes, scope);
        self.add_relations(first, None, scope);
        for join in &from.joins {
            let added = self.factor(&join.relation, ctes, scope);
            let constraint = match &join.join_operator {
                JoinOperator::Join(c)
                | JoinOperator::Inner(c)
                | JoinOperator::Left(c)
                | JoinOperator::LeftOuter(c)
                | JoinOperator::Right(c)
                | JoinOperator::RightOuter(c)
                | JoinOperator::FullOuter(c)
                | JoinOperator::CrossJoin(c)
                | JoinOperator::Semi(c)
                | JoinOperator::LeftSemi(c)
                | JoinOperator::RightSemi(c)
                | JoinOperator::Anti(c)
                | JoinOperator::LeftAnti(c)
                | JoinOperator::RightAnti(c)
                | JoinOperator::StraightJoin(c) => Some(c),
                _ => None,
            };
            match constraint {
                Some(JoinConstraint::On(on)) => {
                    self.add_relations(added, None, scope);
                    let d = self.expr(on, scope, ctes);
                    self.filtered(&d);
                }
                Some(JoinConstraint::Using(names)) => {
                    let names: Vec<String> = names
                        .iter()
                        .filter_map(|n| name_parts(n).and_then(|p| p.last().cloned()))
                        .collect();
                    self.add_relations(added, Some(&names), scope);
                }
                Some(JoinConstraint::None) => self.add_relations(added, None, scope),
                Some(JoinConstraint::Natural) | None => {
                    self.note("this kind of join is not followed");
                    self.add_relations(added, None, scope);
                    scope.star = None;
                    self.out.filtered.unknown = true;
                }
            }
        }
    }

    /// Adds a join's right side to `scope`; with `USING`, its columns are
    /// compared (an oracle) and come first in `*`, once.
    fn add_relations(
        &mut self,
        added: Vec<Relation>,
        using: Option<&[String]>,
        scope: &mut Scope<'_>,
    ) {
        let mut right_star: Option<Vec<OutputColumn>> = Some(Vec::new());
        for relation in &added {
            match (&mut right_star, relation.star()) {
                (Some(all), Some(more)) => all.extend(more),
                _ => right_star = None,
            }
        }
        match using {
            None => match (&mut scope.star, right_star) {
                (Some(all), Some(more)) => all.extend(more),
                _ => scope.star = None,
            },
            Some(names) => {
                let left_relations = scope.relations.clone();
                let mut coalesced = Vec::new();
                for name in names {
                    let mut d = Derivation::default();
                    let mut found = false;
                    for relation in left_relations.iter().chain(&added) {
                        match relation.column(name) {
                            Has::Yes(x) | Has::Maybe(x) => {
                                d.merge(&x);
                                found = true;
                            }
                            Has::No => {}
                        }
                    }
                    if !found {
                        d.unknown = true;
                    }
                    self.filtered(&d);
                    coalesced.push(OutputColumn {
                        name: Some(name.clone()),
                        derivation: d,
                    });
                }
                scope.star = match (scope.star.take(), right_star) {
                    (Some(left), Some(right)) => {
                        let is_using = |c: &OutputColumn| {
                            c.name
                                .as_deref()
                                .is_some_and(|n| names.iter().any(|u| u.eq_ignore_ascii_case(n)))
                        };
                        let mut all = coalesced;
                        all.extend(left.into_iter().filter(|c| !is_using(c)));
                        all.extend(right.into_iter().filter(|c| !is_using(c)));
                        Some(all)
                    }
                    _ => None,
                };
            }
        }
        scope.relations.extend(added);
    }

    /// The relations one `FROM` item makes visible (an `UNNEST … WITH
    /// OFFSET` makes two; a nested join, all of its own).
    fn factor(&mut self, factor: &TableFactor, ctes: &[Cte], scope: &Scope<'_>) -> Vec<Relation> {
        match factor {
            TableFactor::Table {
                name,
                alias,
                args,
                version: _,
                ..
            } => {
                let alias_name = alias.as_ref().map(|a| a.name.value.clone());
                if args.is_some() || alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
                    self.note(format!("{name} is not followed"));
                    return vec![Relation {
                        alias: alias_name,
                        rel: Rel::Opaque,
                    }];
                }
                let Some(parts) = name_parts(name) else {
                    return vec![Relation {
                        alias: alias_name,
                        rel: Rel::Opaque,
                    }];
                };
                // A CTE, by its one-part name.
                if let [single] = parts.as_slice()
                    && let Some((cte_name, columns)) = ctes
                        .iter()
                        .rev()
                        .find(|(n, _)| n.eq_ignore_ascii_case(single))
                {
                    let rel = columns.clone().map_or(Rel::Opaque, Rel::Columns);
                    return vec![Relation {
                        alias: alias_name.or_else(|| Some(cte_name.clone())),
                        rel,
                    }];
                }
                // `FROM t, t.array_column AS x`: an implicit UNNEST.
                if parts.len() >= 2 && scope_has_alias(scope, &parts[0]) {
                    let lowered: Vec<String> =
                        parts.iter().map(|p| p.to_ascii_lowercase()).collect();
                    let element = scope.resolve(&lowered);
                    return vec![Relation {
                        alias: alias_name.or_else(|| parts.last().cloned()),
                        rel: Rel::Value(element),
                    }];
                }
                let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
                match TableName::resolve(&refs, self.defaults) {
                    Ok(table) => {
                        self.out.tables.insert(table.clone());
                        let columns = self.schemas.columns(&table);
                        vec![Relation {
                            alias: alias_name.or_else(|| Some(table.table.clone())),
                            rel: Rel::Table { table, columns },
                        }]
                    }
                    Err(_) => {
                        self.note(format!("table {name} could not be resolved"));
                        vec![Relation {
                            alias: alias_name,
                            rel: Rel::Opaque,
                        }]
                    }
                }
            }
            TableFactor::Derived {
                subquery, alias, ..
            } => {
                let columns = self.query(subquery, ctes, Some(scope));
                let rel = match (columns, alias.as_ref().map(|a| &a.columns)) {
                    (Some(columns), None) => Rel::Columns(columns),
                    (Some(columns), Some(renamed)) if renamed.is_empty() => Rel::Columns(columns),
                    (Some(mut columns), Some(renamed)) if renamed.len() == columns.len() => {
                        for (column, name) in columns.iter_mut().zip(renamed) {
                            column.name = Some(name.name.value.clone());
                        }
                        Rel::Columns(columns)
                    }
                    _ => Rel::Opaque,
                };
                vec![Relation {
                    alias: alias.as_ref().map(|a| a.name.value.clone()),
                    rel,
                }]
            }
            TableFactor::UNNEST {
                alias,
                array_exprs,
                with_offset,
                with_offset_alias,
                ..
            } => {
                let mut element = Derivation::default();
                for (i, e) in array_exprs.iter().enumerate() {
                    let d = self.expr(e, scope, ctes);
                    if i == 0 {
                        element = d;
                    } else {
                        element.merge(&d);
                    }
                }
                let mut relations = vec![Relation {
                    alias: alias.as_ref().map(|a| a.name.value.clone()),
                    rel: Rel::Value(element),
                }];
                if *with_offset {
                    relations.push(Relation {
                        alias: None,
                        rel: Rel::Columns(vec![OutputColumn {
                            name: Some(
                                with_offset_alias
                                    .as_ref()
                                    .map_or_else(|| "offset".to_owned(), |a| a.value.clone()),
                            ),
                            derivation: Derivation::default(),
                        }]),
                    });
                }
                relations
            }
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                if alias.is_some() {
                    self.note("an aliased parenthesized join is not followed");
                    return vec![Relation {
                        alias: alias.as_ref().map(|a| a.name.value.clone()),
                        rel: Rel::Opaque,
                    }];
                }
                let mut inner = Scope::new(Some(scope));
                self.add_from_item(table_with_joins, ctes, &mut inner);
                let mut relations = inner.relations;
                // Keep the nested join's `*` order: fold it into one
                // relation when its relations' stars do not tell it.
                if inner.star.is_none() {
                    relations.push(Relation {
                        alias: None,
                        rel: Rel::Opaque,
                    });
                }
                relations
            }
            other => {
                self.note(format!("the FROM item {other} is not followed"));
                vec![Relation {
                    alias: None,
                    rel: Rel::Opaque,
                }]
            }
        }
    }

    /// Where an expression's value comes from.
    fn expr(&mut self, expr: &Expr, scope: &Scope<'_>, ctes: &[Cte]) -> Derivation {
        let mut visitor = ExprVisitor {
            cx: self,
            scope,
            ctes,
            found: Vec::new(),
            query_depth: 0,
            hash_depth: 0,
            skip: HashSet::new(),
        };
        let _ = expr.visit(&mut visitor);
        let found = visitor.found;
        // A plain reference is an identity; anything else is derived.
        match found.as_slice() {
            [single] if is_reference(expr) => single.clone(),
            _ => {
                let mut all = Derivation::default();
                for d in &found {
                    all.merge(d);
                }
                all
            }
        }
    }
}

fn scope_has_alias(scope: &Scope<'_>, name: &str) -> bool {
    let mut here = Some(scope);
    while let Some(s) = here {
        if s.alias(name).is_some() {
            return true;
        }
        here = s.outer;
    }
    false
}

/// `GROUP BY 2`: the second output column.
fn ordinal(expr: &Expr) -> Option<usize> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// A column reference, possibly with field access: its value is the
/// source's.
fn is_reference(expr: &Expr) -> bool {
    match expr {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => true,
        Expr::Nested(inner) => is_reference(inner),
        Expr::CompoundFieldAccess { root, access_chain } => {
            is_reference(root)
                && access_chain
                    .iter()
                    .all(|a| matches!(a, AccessExpr::Dot(Expr::Identifier(_))))
        }
        _ => false,
    }
}

/// The name BigQuery gives an unaliased select item, where it gives one.
fn implicit_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) => Some(ident.value.clone()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|p| {
            p.value
                .rsplit('.')
                .next()
                .unwrap_or(p.value.as_str())
                .to_owned()
        }),
        Expr::CompoundFieldAccess { access_chain, .. } => match access_chain.last() {
            Some(AccessExpr::Dot(Expr::Identifier(ident))) => Some(ident.value.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn addr<T>(value: &T) -> usize {
    std::ptr::from_ref(value) as usize
}

fn function_name(name: &ObjectName) -> String {
    name.0
        .last()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => i.value.to_ascii_uppercase(),
            ObjectNamePart::Function(_) => String::new(),
        })
        .unwrap_or_default()
}

/// Finds every column reference of one expression, in its scope; the
/// queries nested in it are followed on their own, in a scope that sees
/// this one (correlated subqueries).
struct ExprVisitor<'c, 'a, 's, 'o> {
    cx: &'c mut Cx<'a>,
    scope: &'s Scope<'o>,
    ctes: &'s [Cte],
    found: Vec<Derivation>,
    query_depth: usize,
    hash_depth: usize,
    /// Expressions (by address) that are not column references: the field
    /// names of an access chain, the argument of a counting aggregate.
    skip: HashSet<usize>,
}

impl ExprVisitor<'_, '_, '_, '_> {
    fn add(&mut self, derivation: Derivation) {
        if self.hash_depth > 0 {
            self.cx
                .out
                .hashed
                .extend(derivation.sources.iter().cloned());
        }
        self.found.push(derivation);
    }

    fn is_unkeyed_hash(expr: &Expr) -> bool {
        match expr {
            Expr::Function(f) => UNKEYED_HASHES.contains(&function_name(&f.name).as_str()),
            _ => false,
        }
    }
}

impl Visitor for ExprVisitor<'_, '_, '_, '_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if self.query_depth == 0 {
            let columns = self.cx.query(query, self.ctes, Some(self.scope));
            let mut all = Derivation::default();
            match columns {
                Some(columns) => columns.iter().for_each(|c| all.merge(&c.derivation)),
                None => all.unknown = true,
            }
            self.add(all);
        }
        self.query_depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.query_depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if self.query_depth > 0 || self.skip.contains(&addr(expr)) {
            return ControlFlow::Continue(());
        }
        match expr {
            // `@name` query parameters and `@@` system variables.
            Expr::Identifier(ident) if ident.value.starts_with('@') => {}
            Expr::Identifier(ident) => {
                let d = self.scope.resolve(&[lower(ident)]);
                self.add(d);
            }
            Expr::CompoundIdentifier(idents) => {
                let d = self.scope.resolve(&ident_parts(idents));
                self.add(d);
            }
            Expr::CompoundFieldAccess { root, access_chain } => {
                // `a[OFFSET(0)].b`: the root is visited as a reference; the
                // names after a dot are fields, not columns.
                let fields: Option<Vec<String>> = access_chain
                    .iter()
                    .map(|a| match a {
                        AccessExpr::Dot(Expr::Identifier(i)) => Some(lower(i)),
                        _ => None,
                    })
                    .collect();
                for access in access_chain {
                    if let AccessExpr::Dot(field @ Expr::Identifier(_)) = access {
                        self.skip.insert(addr(field));
                    }
                }
                if let (Some(fields), Expr::Identifier(_) | Expr::CompoundIdentifier(_)) =
                    (fields, root.as_ref())
                {
                    let parts = match root.as_ref() {
                        Expr::Identifier(i) => vec![lower(i)],
                        Expr::CompoundIdentifier(ids) => ident_parts(ids),
                        _ => Vec::new(),
                    };
                    let base = self.scope.resolve(&parts);
                    self.skip.insert(addr(root.as_ref()));
                    self.add(base.field(&fields));
                }
            }
            Expr::Function(function) => {
                if Self::is_unkeyed_hash(expr) {
                    self.hash_depth += 1;
                }
                let name = function_name(&function.name);
                if self.cx.options.counting_aggregates.contains(&name)
                    && function.filter.is_none()
                    && function.over.is_none()
                    && let FunctionArguments::List(list) = &function.args
                    && list.clauses.is_empty()
                    && let [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] = list.args.as_slice()
                    && matches!(arg, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
                {
                    self.skip.insert(addr(arg));
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if self.query_depth == 0 && Self::is_unkeyed_hash(expr) {
            self.hash_depth = self.hash_depth.saturating_sub(1);
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests;
