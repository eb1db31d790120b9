//! The plain-data result of analysis: [`QueryFacts`] and its parts.

use std::collections::BTreeSet;
use std::fmt;

use crate::name::TableName;
use crate::routine::RoutineName;

/// The request's defaults that unqualified names resolve against
/// (`jobs.insert`'s `defaultDataset`, the job's project).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Defaults {
    /// Project used when a name has no project part.
    pub project: String,
    /// Dataset used when a table name is a bare table; without it a bare
    /// table name cannot be resolved and the facts are incomplete.
    pub dataset: Option<String>,
}

/// Everything analysis learned about one request's SQL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryFacts {
    /// Every statement in source order; statements nested in scripting
    /// blocks (`BEGIN … END`, `IF`, `WHILE`, exception handlers) and in
    /// constant `EXECUTE IMMEDIATE` strings follow the statement holding
    /// them.
    pub statements: Vec<StatementFacts>,
    /// Tables read, fully qualified. DML targets are also reads (their
    /// `WHERE`/`ON` clauses read them).
    pub reads: BTreeSet<TableName>,
    /// Tables written: DML and `TRUNCATE` targets, created, altered and
    /// dropped tables and views.
    pub writes: BTreeSet<TableName>,
    /// Functions called, upper-cased, qualified as written
    /// (`SAFE.PARSE_DATE`, `MYDATASET.MY_UDF`).
    pub functions: BTreeSet<String>,
    /// Routines called that policy must allow by name: persistent
    /// functions, table functions and procedures (`project.dataset.name`,
    /// however they are called: in an expression, in `FROM`, by `|> CALL`
    /// or `CALL`), and built-ins billed outside the query's byte limit
    /// (`AI.GENERATE`, `ML.GENERATE_TEXT`). Temporary functions of the
    /// request and ordinary built-ins are not routines.
    pub routines: BTreeSet<RoutineName>,
    /// Facts guardrails look for.
    pub flags: BTreeSet<Flag>,
    /// Why the facts are not complete; empty when they are.
    pub incomplete: Vec<String>,
    /// The parser's message when the request's SQL is not valid syntax
    /// (the facts are then incomplete too); a query that does not parse is
    /// answered as bad SQL unless a guardrail already refuses it.
    pub syntax_error: Option<String>,
    /// Set when the text is over one of the analysis limits
    /// ([`crate::LIMITS`]) and was refused before parsing; the facts are
    /// then incomplete too, with no statements.
    pub limit_exceeded: Option<crate::LimitExceeded>,
}

impl QueryFacts {
    /// True when analysis accounted for everything in the SQL.
    pub fn is_complete(&self) -> bool {
        self.incomplete.is_empty()
    }

    /// The stable names of all statement kinds, in statement order.
    pub fn kind_names(&self) -> Vec<&'static str> {
        self.statements.iter().map(|s| s.kind.name()).collect()
    }
}

/// One statement of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementFacts {
    /// What the statement does.
    pub kind: StatementKind,
    /// The object a DDL, DCL or `CALL` statement acts on, resolved as far
    /// as possible (`project.dataset` for a schema, `project.dataset.name`
    /// for a table, view or routine, as written for a temporary function).
    pub object: Option<String>,
    /// The object lives only as long as the request: a temporary function
    /// created, or one the request created and drops again. Such a
    /// statement writes nothing that outlasts the request.
    pub temporary: bool,
}

/// What a statement does. [`StatementKind::name`] gives the stable name
/// policy guardrails match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementKind {
    /// `SELECT`, `WITH … SELECT`, set operations.
    Query,
    /// `INSERT`.
    Insert,
    /// `UPDATE`.
    Update {
        /// Whether a `WHERE` clause limits the rows.
        has_where: bool,
    },
    /// `DELETE`.
    Delete {
        /// Whether a `WHERE` clause limits the rows.
        has_where: bool,
    },
    /// `MERGE`.
    Merge,
    /// `TRUNCATE TABLE`.
    Truncate,
    /// `CREATE …`.
    Create {
        /// What is created.
        object: ObjectKind,
        /// Whether `OR REPLACE` was given.
        or_replace: bool,
    },
    /// `ALTER …`.
    Alter {
        /// What is altered.
        object: ObjectKind,
    },
    /// `DROP …`.
    Drop {
        /// What is dropped.
        object: ObjectKind,
    },
    /// `GRANT`.
    Grant,
    /// `REVOKE`.
    Revoke,
    /// `EXPORT DATA`.
    ExportData,
    /// `LOAD DATA`.
    LoadData,
    /// `CALL` of a stored procedure.
    Call,
    /// `EXECUTE IMMEDIATE` (dynamic SQL).
    ExecuteImmediate,
    /// A procedural-language statement.
    Script(ScriptKind),
    /// Anything else, named by its leading keyword(s) in lower case.
    Other(String),
}

impl StatementKind {
    /// The stable lower-case name used by policy guardrails.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Query => "select",
            Self::Insert => "insert",
            Self::Update { .. } => "update",
            Self::Delete { .. } => "delete",
            Self::Merge => "merge",
            Self::Truncate => "truncate",
            Self::Create { object, .. } => match object {
                ObjectKind::Table => "create_table",
                ObjectKind::View => "create_view",
                ObjectKind::MaterializedView => "create_materialized_view",
                ObjectKind::Function => "create_function",
                ObjectKind::Procedure => "create_procedure",
                ObjectKind::Schema => "create_schema",
                ObjectKind::Model => "create_model",
                ObjectKind::Other => "create_other",
            },
            Self::Alter { .. } => "alter",
            Self::Drop { .. } => "drop",
            Self::Grant => "grant",
            Self::Revoke => "revoke",
            Self::ExportData => "export_data",
            Self::LoadData => "load_data",
            Self::Call => "call",
            Self::ExecuteImmediate => "dynamic_sql",
            Self::Script(_) => "script",
            Self::Other(_) => "other",
        }
    }
}

impl fmt::Display for StatementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of object a DDL statement acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    /// A table (including external and snapshot tables).
    Table,
    /// A logical view.
    View,
    /// A materialized view.
    MaterializedView,
    /// A function (SQL, JavaScript or remote UDF, or table function).
    Function,
    /// A stored procedure.
    Procedure,
    /// A dataset (`SCHEMA` in BigQuery DDL).
    Schema,
    /// A BigQuery ML model.
    Model,
    /// Anything else (row access policy, index, reservation, …).
    Other,
}

/// A procedural-language statement kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScriptKind {
    /// `BEGIN … [EXCEPTION WHEN ERROR THEN …] END`.
    Begin,
    /// `DECLARE`.
    Declare,
    /// `SET`.
    Set,
    /// `IF`.
    If,
    /// `CASE` as a statement.
    Case,
    /// `LOOP`, `WHILE`, `REPEAT`, `FOR`, `BREAK`, `LEAVE`, `CONTINUE`, `ITERATE`.
    Loop,
    /// `RAISE`.
    Raise,
    /// `RETURN`.
    Return,
    /// `BEGIN TRANSACTION`, `COMMIT`, `ROLLBACK`.
    Transaction,
    /// `ASSERT`.
    Assert,
}

/// A fact about the SQL that policy guardrails look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    /// `EXECUTE IMMEDIATE`: the SQL run is decided at run time.
    DynamicSql,
    /// `EXTERNAL_QUERY`: SQL runs on a federated database.
    ExternalQuery,
    /// A JavaScript UDF is defined, or a persistent function is called:
    /// its language cannot be seen from the SQL, so it may be JavaScript
    /// (or Python) and counts as such. Table functions are SQL only.
    JavascriptUdf,
    /// A temporary function is defined.
    TemporaryFunction,
    /// A wildcard table (`events_*`) or `_TABLE_SUFFIX` is used.
    WildcardTable,
    /// An `INFORMATION_SCHEMA` view is read.
    InformationSchema,
    /// More than one statement (counting nested ones) is present.
    MultipleStatements,
    /// A `DELETE` without `WHERE`.
    DeleteWithoutWhere,
    /// An `UPDATE` without `WHERE`.
    UpdateWithoutWhere,
}

impl Flag {
    /// The stable snake-case name of the flag.
    pub fn name(self) -> &'static str {
        match self {
            Self::DynamicSql => "dynamic_sql",
            Self::ExternalQuery => "external_query",
            Self::JavascriptUdf => "javascript_udf",
            Self::TemporaryFunction => "temporary_function",
            Self::WildcardTable => "wildcard_table",
            Self::InformationSchema => "information_schema",
            Self::MultipleStatements => "multiple_statements",
            Self::DeleteWithoutWhere => "delete_without_where",
            Self::UpdateWithoutWhere => "update_without_where",
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
