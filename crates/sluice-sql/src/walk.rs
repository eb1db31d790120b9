//! The walk over a parsed AST that builds [`QueryFacts`].
//!
//! sqlparser's visitor reaches every statement (nested ones too), query,
//! table factor, relation name and expression. Statements decide what is
//! written; table factors in `FROM`/`JOIN`/`USING` are the reads. Any
//! relation name the visitor reports that neither accounted for is counted
//! as a read, so a construct this walk does not know errs towards more
//! tables, not fewer.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, CreateFunction, Expr, FromTable, FunctionArg, FunctionArgExpr,
    FunctionArguments, ObjectName, ObjectNamePart, ObjectType, Query, SchemaName, Statement,
    TableFactor, TableObject, Visit, Visitor,
};

use crate::facts::{
    Defaults, Flag, ObjectKind, QueryFacts, ScriptKind, StatementFacts, StatementKind,
};
use crate::name::TableName;
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
}

fn addr<T>(value: &T) -> usize {
    std::ptr::from_ref(value) as usize
}

fn parts(name: &ObjectName) -> Option<Vec<&str>> {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => Some(ident.value.as_str()),
            ObjectNamePart::Function(_) => None,
        })
        .collect()
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

    /// A DDL object that is not a table (schema, routine, model): resolved
    /// for display only.
    fn object(&mut self, name: &ObjectName, is_schema: bool) -> String {
        self.accounted.insert(addr(name));
        let Some(parts) = parts(name) else {
            self.incomplete(format!("object name `{name}` is computed"));
            return name.to_string();
        };
        let project = self.defaults.project.as_str();
        match (is_schema, parts.as_slice()) {
            (true, [dataset]) => format!("{project}.{dataset}"),
            (true, [project, dataset]) => format!("{project}.{dataset}"),
            (false, [_, _] | [_, _, _]) => match TableName::resolve(&parts, self.defaults) {
                Ok(name) => name.to_string(),
                Err(_) => name.to_string(),
            },
            _ => {
                if is_schema {
                    self.incomplete(format!("schema name `{name}` is not understood"));
                }
                name.to_string()
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
        self.facts.statements.push(StatementFacts { kind, object });
    }

    fn classify(&mut self, statement: &Statement) {
        use StatementKind as K;
        match statement {
            Statement::Query(_) => self.push(K::Query, None),
            Statement::Insert(insert) => {
                let object = match &insert.table {
                    TableObject::TableName(name) => self.write(name),
                    _ => {
                        self.incomplete("INSERT into a table function is not analyzed");
                        None
                    }
                };
                self.push(K::Insert, object);
            }
            Statement::Update(update) => {
                let has_where = update.selection.is_some();
                if !has_where {
                    self.facts.flags.insert(Flag::UpdateWithoutWhere);
                }
                let object = self.dml_target(&update.table.relation);
                self.push(K::Update { has_where }, object);
            }
            Statement::Delete(delete) => {
                let has_where = delete.selection.is_some();
                if !has_where {
                    self.facts.flags.insert(Flag::DeleteWithoutWhere);
                }
                let mut object = None;
                for name in &delete.tables {
                    object = self.write(name);
                    self.read(name);
                }
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) =
                    &delete.from;
                if let Some(first) = from.first() {
                    object = object.or_else(|| self.dml_target(&first.relation));
                }
                self.push(K::Delete { has_where }, object);
            }
            Statement::Merge(merge) => {
                let object = self.dml_target(&merge.table);
                self.push(K::Merge, object);
            }
            Statement::Truncate(truncate) => {
                let mut object = None;
                for target in &truncate.table_names {
                    object = self.write(&target.name);
                }
                self.push(K::Truncate, object);
            }
            Statement::CreateTable(create) => {
                let object = self.write(&create.name);
                if let Some(like) = &create.like {
                    let (sqlparser::ast::CreateTableLikeKind::Parenthesized(like)
                    | sqlparser::ast::CreateTableLikeKind::Plain(like)) = like;
                    self.read(&like.name);
                }
                if let Some(clone) = &create.clone {
                    self.read(clone);
                }
                let kind = K::Create {
                    object: ObjectKind::Table,
                    or_replace: create.or_replace,
                };
                self.push(kind, object);
            }
            Statement::CreateView(view) => {
                let object = self.write(&view.name);
                let kind = if view.materialized {
                    ObjectKind::MaterializedView
                } else {
                    ObjectKind::View
                };
                let or_replace = view.or_replace;
                self.push(
                    K::Create {
                        object: kind,
                        or_replace,
                    },
                    object,
                );
            }
            Statement::CreateFunction(function) => self.create_function(function),
            Statement::CreateProcedure { name, .. } => {
                let object = self.object(name, false);
                let kind = K::Create {
                    object: ObjectKind::Procedure,
                    or_replace: false,
                };
                self.push(kind, Some(object));
            }
            Statement::CreateSchema { schema_name, .. } => {
                let object = match schema_name {
                    SchemaName::Simple(name) | SchemaName::NamedAuthorization(name, _) => {
                        Some(self.object(name, true))
                    }
                    SchemaName::UnnamedAuthorization(_) => {
                        self.incomplete("CREATE SCHEMA without a name");
                        None
                    }
                };
                let kind = K::Create {
                    object: ObjectKind::Schema,
                    or_replace: false,
                };
                self.push(kind, object);
            }
            Statement::AlterTable(alter) => {
                let object = self.write(&alter.name);
                self.push(
                    K::Alter {
                        object: ObjectKind::Table,
                    },
                    object,
                );
            }
            Statement::AlterView { name, .. } => {
                let object = self.write(name);
                self.push(
                    K::Alter {
                        object: ObjectKind::View,
                    },
                    object,
                );
            }
            Statement::AlterSchema(alter) => {
                let object = self.object(&alter.name, true);
                self.push(
                    K::Alter {
                        object: ObjectKind::Schema,
                    },
                    Some(object),
                );
            }
            Statement::Drop {
                object_type, names, ..
            } => self.drop(*object_type, names),
            Statement::DropFunction(drop) => {
                let mut object = None;
                for desc in &drop.func_desc {
                    object = Some(self.object(&desc.name, false));
                }
                self.push(
                    K::Drop {
                        object: ObjectKind::Function,
                    },
                    object,
                );
            }
            Statement::DropProcedure { proc_desc, .. } => {
                let mut object = None;
                for desc in proc_desc {
                    object = Some(self.object(&desc.name, false));
                }
                self.push(
                    K::Drop {
                        object: ObjectKind::Procedure,
                    },
                    object,
                );
            }
            Statement::Grant(_) => {
                self.incomplete("GRANT objects and grantees are not analyzed");
                self.push(K::Grant, None);
            }
            Statement::Revoke(_) => {
                self.incomplete("REVOKE objects and grantees are not analyzed");
                self.push(K::Revoke, None);
            }
            Statement::ExportData(_) => self.push(K::ExportData, None),
            Statement::LoadData { .. } => {
                self.incomplete("LOAD DATA is not analyzed");
                self.push(K::LoadData, None);
            }
            Statement::Call(function) => {
                let object = self.object(&function.name, false);
                self.incomplete(format!(
                    "CALL {object} runs a procedure whose body is not analyzed"
                ));
                self.push(K::Call, Some(object));
            }
            Statement::Execute {
                immediate: true,
                parameters,
                ..
            } => self.execute_immediate(parameters),
            Statement::StartTransaction {
                begin,
                transaction,
                statements,
                exception,
                ..
            } => {
                let block = *begin
                    && transaction.is_none()
                    && (!statements.is_empty() || exception.is_some());
                let kind = if block {
                    ScriptKind::Begin
                } else {
                    ScriptKind::Transaction
                };
                self.push(K::Script(kind), None);
            }
            Statement::Commit { .. } | Statement::Rollback { .. } => {
                self.push(K::Script(ScriptKind::Transaction), None);
            }
            Statement::Declare { .. } => self.push(K::Script(ScriptKind::Declare), None),
            Statement::Set(_) => self.push(K::Script(ScriptKind::Set), None),
            Statement::If(_) => self.push(K::Script(ScriptKind::If), None),
            Statement::Case(_) => self.push(K::Script(ScriptKind::Case), None),
            Statement::While(_) => self.push(K::Script(ScriptKind::Loop), None),
            Statement::Raise(_) => self.push(K::Script(ScriptKind::Raise), None),
            Statement::Return(_) => self.push(K::Script(ScriptKind::Return), None),
            Statement::Assert { .. } => self.push(K::Script(ScriptKind::Assert), None),
            other => {
                let keyword = other
                    .to_string()
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_lowercase();
                self.incomplete(format!(
                    "`{}` statements are not analyzed",
                    keyword.to_uppercase()
                ));
                self.push(K::Other(keyword), None);
            }
        }
    }

    /// The target of `UPDATE`, `DELETE` or `MERGE`: written, and read too
    /// (the visit of the table factor records the read).
    fn dml_target(&mut self, factor: &TableFactor) -> Option<String> {
        match factor {
            TableFactor::Table {
                name, args: None, ..
            } => self.write(name),
            _ => {
                self.incomplete("DML target is not a plain table");
                None
            }
        }
    }

    fn drop(&mut self, object_type: ObjectType, names: &[ObjectName]) {
        let object = match object_type {
            ObjectType::Table => ObjectKind::Table,
            ObjectType::View => ObjectKind::View,
            ObjectType::MaterializedView => ObjectKind::MaterializedView,
            ObjectType::Schema | ObjectType::Database => ObjectKind::Schema,
            _ => ObjectKind::Other,
        };
        let mut shown = None;
        for name in names {
            shown = match object {
                ObjectKind::Table | ObjectKind::View | ObjectKind::MaterializedView => {
                    self.write(name)
                }
                ObjectKind::Schema => Some(self.object(name, true)),
                _ => {
                    self.incomplete(format!("DROP {object_type} is not analyzed"));
                    Some(self.object(name, false))
                }
            };
        }
        self.push(StatementKind::Drop { object }, shown);
    }

    fn create_function(&mut self, function: &CreateFunction) {
        let javascript = function
            .language
            .as_ref()
            .is_some_and(|l| l.value.eq_ignore_ascii_case("js"));
        if javascript {
            self.facts.flags.insert(Flag::JavascriptUdf);
        }
        let object = if function.temporary {
            self.facts.flags.insert(Flag::TemporaryFunction);
            self.accounted.insert(addr(&function.name));
            function.name.to_string()
        } else {
            self.object(&function.name, false)
        };
        let kind = StatementKind::Create {
            object: ObjectKind::Function,
            or_replace: function.or_replace,
        };
        self.push(kind, Some(object));
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
        self.facts.flags.extend(inner.flags);
        for reason in inner.incomplete {
            self.incomplete(format!("in dynamic SQL: {reason}"));
        }
    }

    fn table_factor(&mut self, factor: &TableFactor) {
        match factor {
            TableFactor::Table {
                name, args: None, ..
            } => {
                if self.is_cte(name) {
                    self.accounted.insert(addr(name));
                } else {
                    self.read(name);
                }
            }
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => {
                self.accounted.insert(addr(name));
                self.table_function(name);
            }
            TableFactor::Function { name, .. } => self.table_function(name),
            TableFactor::Derived { .. }
            | TableFactor::NestedJoin { .. }
            | TableFactor::UNNEST { .. }
            | TableFactor::Pivot { .. }
            | TableFactor::Unpivot { .. } => {}
            _ => self.incomplete("a FROM item of this kind is not analyzed"),
        }
    }

    fn table_function(&mut self, name: &ObjectName) {
        let upper = upper_name(name);
        if upper == "EXTERNAL_QUERY" {
            self.external_query();
        } else {
            self.incomplete(format!("table function {upper} is not analyzed"));
        }
        self.facts.functions.insert(upper);
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
            Expr::Function(function) => {
                let upper = upper_name(&function.name);
                if upper == "EXTERNAL_QUERY" {
                    self.external_query();
                }
                self.facts.functions.insert(upper);
            }
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
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.leave_query();
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
