//! The walk over a parsed AST that builds [`QueryFacts`].
//!
//! sqlparser's visitor reaches every statement (nested ones too), query,
//! `SELECT`, table factor, relation name and expression. Statements decide
//! what is written ([`statements`], [`ddl`]); queries, `SELECT`s and table factors
//! have their clauses checked ([`queries`]); table factors in
//! `FROM`/`JOIN`/`USING` are the reads. Any relation name the visitor
//! reports that neither accounted for is counted as a read, so a construct
//! this walk does not know errs towards more tables, not fewer.
//!
//! Every statement, query and `SELECT` the walk accepts is destructured
//! with all of its fields named, so a field a later sqlparser adds does not
//! compile until this walk decides what it means; a field of another SQL
//! dialect that is present makes the facts incomplete.

mod ddl;
mod queries;
mod statements;

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectName,
    ObjectNamePart, Query, Select, Statement, TableFactor, Visit, Visitor,
};

use crate::facts::{Defaults, Flag, QueryFacts, StatementFacts, StatementKind};
use crate::name::{TableName, check_part};
use crate::routine::{Callee, RoutineName, callee, persistent_routine};
use crate::{MAX_DYNAMIC_DEPTH, analyze_at_depth};

/// Names visible as CTEs at one level of query nesting.
#[derive(Debug)]
struct Frame {
    names: Vec<String>,
    /// Set on the frame of a CTE body: the enclosing `WITH` frame is not
    /// visible from it (only the earlier CTEs, already in `names`).
    hides_enclosing_with: bool,
}

/// Builds [`QueryFacts`] while visiting statements.
#[derive(Debug)]
pub(crate) struct Walker<'a> {
    defaults: &'a Defaults,
    depth: usize,
    facts: QueryFacts,
    frames: Vec<Frame>,
    pushed_per_query: Vec<usize>,
    /// CTE bodies not yet entered, by address, with the frame they see.
    cte_bodies: HashMap<usize, Frame>,
    /// Relation names already classified, by address.
    accounted: HashSet<usize>,
    /// Temporary functions created so far, upper-cased (function names
    /// are case-insensitive).
    temporary_functions: HashSet<String>,
}

fn addr<T>(value: &T) -> usize {
    std::ptr::from_ref(value) as usize
}

/// The dot-separated parts of a name as BigQuery reads it: a quoted part
/// holding dots (`` `p.d.f` ``) is several parts. `None` for a name with a
/// computed part.
fn parts(name: &ObjectName) -> Option<Vec<&str>> {
    let mut parts = Vec::with_capacity(name.0.len());
    for part in &name.0 {
        match part {
            ObjectNamePart::Identifier(ident) => parts.extend(ident.value.split('.')),
            ObjectNamePart::Function(_) => return None,
        }
    }
    Some(parts)
}

fn upper_name(name: &ObjectName) -> String {
    name.to_string().replace('`', "").to_uppercase()
}

impl<'a> Walker<'a> {
    pub(crate) fn new(defaults: &'a Defaults, depth: usize) -> Self {
        Self {
            defaults,
            depth,
            facts: QueryFacts::default(),
            frames: Vec::new(),
            pushed_per_query: Vec::new(),
            cte_bodies: HashMap::new(),
            accounted: HashSet::new(),
            temporary_functions: HashSet::new(),
        }
    }

    pub(crate) fn walk(&mut self, statements: &[Statement]) {
        for statement in statements {
            // The walker never breaks, so the result carries nothing.
            let _ = statement.visit(self);
        }
    }

    pub(crate) fn into_facts(self) -> QueryFacts {
        self.facts
    }

    fn incomplete(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        if !self.facts.incomplete.contains(&reason) {
            self.facts.incomplete.push(reason);
        }
    }

    /// A clause analysis does not follow (most belong to other SQL
    /// dialects): present, it makes the facts incomplete.
    fn unsupported(&mut self, present: bool, clause: &str) {
        if present {
            self.incomplete(format!("{clause} is not analyzed"));
        }
    }

    fn resolve(&mut self, name: &ObjectName) -> Option<TableName> {
        let Some(parts) = parts(name) else {
            self.incomplete(format!("table name `{name}` is computed"));
            return None;
        };
        match TableName::resolve(&parts, self.defaults) {
            Ok(table) => {
                if table.is_information_schema() {
                    self.facts.flags.insert(Flag::InformationSchema);
                }
                if table.is_wildcard() {
                    self.facts.flags.insert(Flag::WildcardTable);
                }
                Some(table)
            }
            Err(why) => {
                self.incomplete(why);
                None
            }
        }
    }

    fn read(&mut self, name: &ObjectName) {
        self.accounted.insert(addr(name));
        if let Some(table) = self.resolve(name) {
            self.facts.reads.insert(table);
        }
    }

    fn write(&mut self, name: &ObjectName) -> Option<String> {
        self.accounted.insert(addr(name));
        let table = self.resolve(name)?;
        let shown = table.to_string();
        self.facts.writes.insert(table);
        Some(shown)
    }

    /// A dataset named by DDL: `project.dataset`, for display and for
    /// policy's dataset check.
    fn schema(&mut self, name: &ObjectName) -> String {
        self.accounted.insert(addr(name));
        let Some(parts) = parts(name) else {
            self.incomplete(format!("dataset name `{name}` is computed"));
            return name.to_string();
        };
        let written = parts.join(".");
        let resolved = match parts.as_slice() {
            [dataset] => Ok((self.defaults.project.as_str(), *dataset)),
            [project, dataset] => Ok((*project, *dataset)),
            _ => Err(format!("dataset name `{written}` is not understood")),
        };
        let checked = resolved.and_then(|(project, dataset)| {
            check_part(project, false, &written)?;
            check_part(dataset, false, &written)?;
            Ok(format!("{project}.{dataset}"))
        });
        checked.unwrap_or_else(|why| {
            self.incomplete(why);
            written
        })
    }

    /// A persistent routine created, dropped or called by a statement,
    /// resolved for display and for policy's write check.
    fn routine(&mut self, name: &ObjectName) -> Option<RoutineName> {
        self.accounted.insert(addr(name));
        let Some(parts) = parts(name) else {
            self.incomplete(format!("routine name `{name}` is computed"));
            return None;
        };
        match persistent_routine(&parts, self.defaults) {
            Ok(routine) => Some(routine),
            Err(why) => {
                self.incomplete(why);
                None
            }
        }
    }

    /// What a called name stands for; `None` (and incomplete facts) when
    /// it cannot be read.
    fn callee(&mut self, name: &ObjectName) -> Option<Callee> {
        let Some(parts) = parts(name) else {
            self.incomplete(format!("function name `{name}` is computed"));
            return None;
        };
        match callee(&parts, self.defaults) {
            Ok(found) => Some(found),
            Err(why) => {
                self.incomplete(why);
                None
            }
        }
    }

    fn is_cte(&self, name: &ObjectName) -> bool {
        let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() else {
            return false;
        };
        let mut skip_next = false;
        for frame in self.frames.iter().rev() {
            if skip_next {
                skip_next = false;
                continue;
            }
            if frame
                .names
                .iter()
                .any(|cte| cte.eq_ignore_ascii_case(&ident.value))
            {
                return true;
            }
            skip_next = frame.hides_enclosing_with;
        }
        false
    }

    fn push(&mut self, kind: StatementKind, object: Option<String>) {
        self.push_statement(kind, object, false);
    }

    fn push_statement(&mut self, kind: StatementKind, object: Option<String>, temporary: bool) {
        self.facts.statements.push(StatementFacts {
            kind,
            object,
            temporary,
        });
    }

    fn execute_immediate(&mut self, parameters: &[Expr]) {
        self.facts.flags.insert(Flag::DynamicSql);
        self.incomplete("dynamic SQL (EXECUTE IMMEDIATE) is only known at run time");
        self.push(StatementKind::ExecuteImmediate, None);
        let [sql] = parameters else {
            return;
        };
        let Some(sql) = constant_string(sql) else {
            return;
        };
        if self.depth >= MAX_DYNAMIC_DEPTH {
            self.incomplete("dynamic SQL is nested too deeply to analyze");
            return;
        }
        // The constant text is analyzed as well, so its statements and
        // tables reach the guardrails; the facts stay incomplete regardless.
        let inner = analyze_at_depth(&sql, self.defaults, self.depth + 1);
        self.facts.statements.extend(inner.statements);
        self.facts.reads.extend(inner.reads);
        self.facts.writes.extend(inner.writes);
        self.facts.functions.extend(inner.functions);
        self.facts.routines.extend(inner.routines);
        self.facts.flags.extend(inner.flags);
        for reason in inner.incomplete {
            self.incomplete(format!("in dynamic SQL: {reason}"));
        }
    }

    /// A function called in `FROM` or by `|> CALL`: a persistent table
    /// function is a routine (always SQL), `EXTERNAL_QUERY` is federated,
    /// and a built-in table function is not analyzed.
    fn table_function(&mut self, name: &ObjectName) {
        self.accounted.insert(addr(name));
        let upper = upper_name(name);
        match self.callee(name) {
            Some(Callee::ExternalQuery) => self.external_query(),
            Some(Callee::BuiltIn) => {
                self.incomplete(format!("table function {upper} is not analyzed"));
            }
            Some(Callee::Routine(routine)) => {
                self.facts.routines.insert(routine);
            }
            None => {}
        }
        self.facts.functions.insert(upper);
    }

    /// A function called in an expression. A persistent one may be a
    /// JavaScript (or Python) UDF; nothing in the SQL says it is not.
    fn scalar_function(&mut self, name: &ObjectName) {
        match self.callee(name) {
            Some(Callee::ExternalQuery) => self.external_query(),
            Some(Callee::Routine(routine)) => {
                if matches!(routine, RoutineName::Persistent { .. }) {
                    self.facts.flags.insert(Flag::JavascriptUdf);
                }
                self.facts.routines.insert(routine);
            }
            Some(Callee::BuiltIn) | None => {}
        }
        self.facts.functions.insert(upper_name(name));
    }

    fn external_query(&mut self) {
        self.facts.flags.insert(Flag::ExternalQuery);
        self.incomplete("EXTERNAL_QUERY runs SQL on a federated database that is not analyzed");
    }

    fn enter_query(&mut self, query: &Query) {
        let mut pushed = 0;
        if let Some(frame) = self.cte_bodies.remove(&addr(query)) {
            self.frames.push(frame);
            pushed += 1;
        }
        if let Some(with) = &query.with {
            let names: Vec<String> = with
                .cte_tables
                .iter()
                .map(|cte| cte.alias.name.value.clone())
                .collect();
            for (index, cte) in with.cte_tables.iter().enumerate() {
                let visible = if with.recursive {
                    names.clone()
                } else {
                    names[..index].to_vec()
                };
                let frame = Frame {
                    names: visible,
                    hides_enclosing_with: true,
                };
                self.cte_bodies.insert(addr(&*cte.query), frame);
            }
            self.frames.push(Frame {
                names,
                hides_enclosing_with: false,
            });
            pushed += 1;
        }
        self.pushed_per_query.push(pushed);
    }

    fn leave_query(&mut self) {
        let pushed = self.pushed_per_query.pop().unwrap_or_default();
        for _ in 0..pushed {
            self.frames.pop();
        }
    }

    fn expr(&mut self, expr: &Expr) {
        match expr {
            Expr::Function(function) => self.scalar_function(&function.name),
            Expr::Identifier(ident) => self.identifier(&ident.value),
            Expr::CompoundIdentifier(idents) => {
                if let Some(last) = idents.last() {
                    self.identifier(&last.value);
                }
            }
            _ => {}
        }
    }

    fn identifier(&mut self, name: &str) {
        if name.eq_ignore_ascii_case("_TABLE_SUFFIX") {
            self.facts.flags.insert(Flag::WildcardTable);
        }
    }
}

/// The value of a constant string expression: a literal, `CONCAT` of
/// constants, or `||` of constants.
fn constant_string(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(value) => value.value.clone().into_string(),
        Expr::Nested(inner) => constant_string(inner),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::StringConcat,
            right,
        } => Some(constant_string(left)? + &constant_string(right)?),
        Expr::Function(function) if upper_name(&function.name) == "CONCAT" => {
            let FunctionArguments::List(list) = &function.args else {
                return None;
            };
            let mut out = String::new();
            for arg in &list.args {
                let FunctionArg::Unnamed(FunctionArgExpr::Expr(arg)) = arg else {
                    return None;
                };
                out.push_str(&constant_string(arg)?);
            }
            Some(out)
        }
        _ => None,
    }
}

impl Visitor for Walker<'_> {
    type Break = ();

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        self.classify(statement);
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        self.enter_query(query);
        self.query_clauses(query);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.leave_query();
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        self.select_clauses(select);
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        self.table_factor(factor);
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        if !self.accounted.contains(&addr(relation)) {
            self.read(relation);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        self.expr(expr);
        ControlFlow::Continue(())
    }
}
