//! The clauses of queries, `SELECT`s and `FROM` items.
//!
//! Each is destructured with all of its fields named. A clause that
//! writes or locks (`SELECT … INTO`, `FOR UPDATE`) or belongs to another
//! SQL dialect makes the facts incomplete; `|> CALL` and table functions
//! are routines.

use sqlparser::ast::{
    Cte, PipeOperator, Query, Select, SelectInto, SetExpr, TableFactor, TableFunctionArgs,
    TableVersion, With,
};

use super::Walker;

impl Walker<'_> {
    /// Check the clauses of one query; the queries nested in it are
    /// visited, and checked, on their own.
    pub(super) fn query_clauses(&mut self, query: &Query) {
        let Query {
            with,
            body,
            order_by: _,
            limit_clause: _,
            fetch: _,
            locks,
            for_clause,
            settings,
            format_clause,
            pipe_operators,
        } = query;
        if let Some(With {
            with_token: _,
            recursive: _,
            cte_tables,
        }) = with
        {
            for Cte {
                alias: _,
                query: _,
                from,
                materialized,
                closing_paren_token: _,
            } in cte_tables
            {
                self.unsupported(
                    from.is_some() || materialized.is_some(),
                    "a CTE marked MATERIALIZED",
                );
            }
        }
        self.unsupported(
            !locks.is_empty(),
            "a locking clause (FOR UPDATE, FOR SHARE), which BigQuery does not have,",
        );
        self.unsupported(for_clause.is_some(), "FOR XML / FOR JSON / FOR BROWSE");
        self.unsupported(
            settings.is_some() || format_clause.is_some(),
            "SETTINGS / FORMAT",
        );
        for operator in pipe_operators {
            self.pipe_operator(operator);
        }
        self.set_expr(body);
    }

    /// The set operations of a query body, walked with an explicit stack
    /// (a long `UNION` chain is deep). `SELECT`s and nested queries are
    /// checked when the visitor reaches them.
    fn set_expr(&mut self, body: &SetExpr) {
        let mut pending = vec![body];
        while let Some(expr) = pending.pop() {
            match expr {
                SetExpr::Select(_) | SetExpr::Query(_) | SetExpr::Values(_) => {}
                SetExpr::SetOperation {
                    left,
                    op: _,
                    set_quantifier: _,
                    right,
                } => {
                    pending.push(left);
                    pending.push(right);
                }
                SetExpr::Insert(_)
                | SetExpr::Update(_)
                | SetExpr::Delete(_)
                | SetExpr::Merge(_) => {
                    self.incomplete("a query whose body changes data is not analyzed");
                }
                SetExpr::Table(_) => self.incomplete("a `TABLE name` query is not analyzed"),
            }
        }
    }

    fn pipe_operator(&mut self, operator: &PipeOperator) {
        match operator {
            PipeOperator::Call { function, alias: _ } => self.table_function(&function.name),
            // Filters, projections, joins, set operations and renames of
            // the piped table: their tables and expressions are visited.
            PipeOperator::Limit { .. }
            | PipeOperator::Where { .. }
            | PipeOperator::OrderBy { .. }
            | PipeOperator::Select { .. }
            | PipeOperator::Extend { .. }
            | PipeOperator::Set { .. }
            | PipeOperator::Drop { .. }
            | PipeOperator::As { .. }
            | PipeOperator::Aggregate { .. }
            | PipeOperator::TableSample { .. }
            | PipeOperator::Rename { .. }
            | PipeOperator::Union { .. }
            | PipeOperator::Intersect { .. }
            | PipeOperator::Except { .. }
            | PipeOperator::Pivot { .. }
            | PipeOperator::Unpivot { .. }
            | PipeOperator::Join(_) => {}
        }
    }

    /// Check the clauses of one `SELECT`.
    pub(super) fn select_clauses(&mut self, select: &Select) {
        let Select {
            select_token: _,
            optimizer_hints,
            distinct: _,
            select_modifiers,
            top,
            top_before_distinct: _,
            projection: _,
            exclude,
            into,
            from: _,
            lateral_views,
            prewhere,
            selection: _,
            connect_by,
            group_by: _,
            cluster_by,
            distribute_by,
            sort_by,
            having: _,
            named_window: _,
            qualify: _,
            window_before_qualify: _,
            value_table_mode: _,
            flavor: _,
        } = select;
        if let Some(SelectInto {
            temporary: _,
            unlogged: _,
            table: _,
            name,
        }) = into
        {
            // A write the statement kind does not show: recorded, and the
            // facts are incomplete, so it is never allowed as a read.
            let target = self.write(name).unwrap_or_else(|| name.to_string());
            self.incomplete(format!(
                "SELECT … INTO {target} writes a table; use CREATE TABLE … AS SELECT or INSERT … SELECT"
            ));
        }
        self.unsupported(!optimizer_hints.is_empty(), "an optimizer hint");
        self.unsupported(
            select_modifiers.is_some() || top.is_some() || exclude.is_some(),
            "SELECT modifiers of other dialects (TOP, EXCLUDE, …)",
        );
        self.unsupported(
            !lateral_views.is_empty()
                || prewhere.is_some()
                || !connect_by.is_empty()
                || !cluster_by.is_empty()
                || !distribute_by.is_empty()
                || !sort_by.is_empty(),
            "SELECT clauses of other dialects (LATERAL VIEW, PREWHERE, CONNECT BY, …)",
        );
    }

    /// A `FROM` item: a table is read (unless it names a CTE), a function
    /// is a table function, subqueries, joins, `UNNEST` and pivots are
    /// visited; anything else is not analyzed.
    pub(super) fn table_factor(&mut self, factor: &TableFactor) {
        match factor {
            TableFactor::Table {
                name,
                alias: _,
                args,
                with_hints,
                version,
                with_ordinality,
                partitions,
                json_path,
                sample: _,
                index_hints,
            } => {
                self.unsupported(
                    !with_hints.is_empty() || !index_hints.is_empty(),
                    "a table hint",
                );
                self.unsupported(
                    *with_ordinality || !partitions.is_empty() || json_path.is_some(),
                    "table clauses of other dialects",
                );
                self.unsupported(
                    !matches!(version, None | Some(TableVersion::ForSystemTimeAsOf(_))),
                    "a time-travel clause other than FOR SYSTEM_TIME AS OF",
                );
                match args {
                    None if self.is_cte(name) => {
                        self.accounted.insert(super::addr(name));
                    }
                    None => self.read(name),
                    Some(TableFunctionArgs { args: _, settings }) => {
                        self.unsupported(settings.is_some(), "SETTINGS of a table function");
                        self.table_function(name);
                    }
                }
            }
            TableFactor::Function {
                lateral: _,
                name,
                args: _,
                with_ordinality,
                alias: _,
            } => {
                self.unsupported(*with_ordinality, "WITH ORDINALITY");
                self.table_function(name);
            }
            TableFactor::Derived { .. }
            | TableFactor::NestedJoin { .. }
            | TableFactor::UNNEST { .. }
            | TableFactor::Pivot { .. }
            | TableFactor::Unpivot { .. } => {}
            TableFactor::TableFunction { .. }
            | TableFactor::JsonTable { .. }
            | TableFactor::OpenJsonTable { .. }
            | TableFactor::MatchRecognize { .. }
            | TableFactor::XmlTable { .. }
            | TableFactor::SemanticView { .. } => {
                self.incomplete("a FROM item of this kind is not analyzed");
            }
        }
    }
}
