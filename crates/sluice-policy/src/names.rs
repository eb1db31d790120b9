//! The names policy files use for statements and guardrails, their
//! aliases, and how a statement is described in a refusal.

use std::sync::LazyLock;

use sluice_sql::{ObjectKind, QueryFacts, ScriptKind, StatementFacts, StatementKind};

/// Every statement kind name `sluice-sql` produces
/// ([`StatementKind::name`]).
const KIND_NAMES: &[&str] = &[
    "select",
    "insert",
    "update",
    "delete",
    "merge",
    "truncate",
    "create_table",
    "create_view",
    "create_materialized_view",
    "create_function",
    "create_procedure",
    "create_schema",
    "create_model",
    "create_other",
    "alter",
    "drop",
    "grant",
    "revoke",
    "export_data",
    "load_data",
    "call",
    "dynamic_sql",
    "script",
    "other",
];

/// Aliases accepted in deny lists and `allow.statements`; see [`alias`].
const ALIASES: &[&str] = &["ddl", "dml", "dcl", "scripting", "create"];

/// Names of [`sluice_sql::Flag`]s ([`sluice_sql::Flag::name`]).
const FLAG_NAMES: &[&str] = &[
    "dynamic_sql",
    "external_query",
    "javascript_udf",
    "temporary_function",
    "wildcard_table",
    "information_schema",
    "multiple_statements",
    "delete_without_where",
    "update_without_where",
];

/// Kind names, then aliases.
static STATEMENT_NAMES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| KIND_NAMES.iter().chain(ALIASES).copied().collect());

/// Kind names, flags not already kind names, then aliases.
static GUARDRAIL_NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let flags = FLAG_NAMES.iter().filter(|f| !KIND_NAMES.contains(f));
    KIND_NAMES
        .iter()
        .chain(flags)
        .chain(ALIASES)
        .copied()
        .collect()
});

/// What an alias stands for.
fn alias(name: &str) -> Option<Vec<&'static str>> {
    let create = || {
        KIND_NAMES
            .iter()
            .copied()
            .filter(|k| k.starts_with("create_"))
    };
    Some(match name {
        "ddl" => create().chain(["alter", "drop", "truncate"]).collect(),
        "dml" => vec!["insert", "update", "delete", "merge"],
        "dcl" => vec!["grant", "revoke"],
        "scripting" => vec!["script"],
        "create" => create().collect(),
        _ => return None,
    })
}

/// The names valid in `allow.statements`: every statement kind name
/// (`select`, `insert`, …, `create_table`, …, `dynamic_sql`, `script`,
/// `other`) and the aliases `ddl` (`create_*`, `alter`, `drop`,
/// `truncate`), `dml` (`insert`, `update`, `delete`, `merge`), `dcl`
/// (`grant`, `revoke`), `scripting` (`script`) and `create` (`create_*`).
pub fn statement_names() -> &'static [&'static str] {
    &STATEMENT_NAMES
}

/// The names valid in `guardrails.deny` and a policy's `deny`: every
/// statement name of [`statement_names`] (aliases included) and every
/// analysis flag (`external_query`, `javascript_udf`,
/// `temporary_function`, `wildcard_table`, `information_schema`,
/// `multiple_statements`, `delete_without_where`, `update_without_where`;
/// `dynamic_sql` is both a kind and a flag).
pub fn guardrail_names() -> &'static [&'static str] {
    &GUARDRAIL_NAMES
}

/// The kind and flag names `name` stands for (itself, or an alias's
/// members); `None` for an unknown name.
pub(crate) fn expand(name: &str, allow_flags: bool) -> Option<Vec<&'static str>> {
    if let Some(members) = alias(name) {
        return Some(members);
    }
    let known = KIND_NAMES
        .iter()
        .chain(if allow_flags { FLAG_NAMES } else { &[] })
        .find(|known| **known == name)?;
    Some(vec![known])
}

/// `statement 2: DROP TABLE proj.shop.customers` (1-based `index`).
pub(crate) fn describe_statement(index: usize, statement: &StatementFacts) -> String {
    let verb = verb(&statement.kind);
    match &statement.object {
        Some(object) => format!("statement {}: {verb} {object}", index + 1),
        None => format!("statement {}: {verb}", index + 1),
    }
}

/// What a flag means, for a refusal that names it; for the flags tied to
/// one statement, the statement.
pub(crate) fn describe_flag(flag: &str, facts: &QueryFacts) -> String {
    let statement_where = |wanted: fn(&StatementKind) -> bool| {
        facts
            .statements
            .iter()
            .enumerate()
            .find(|(_, s)| wanted(&s.kind))
            .map(|(index, s)| describe_statement(index, s))
    };
    let found = match flag {
        "delete_without_where" => {
            statement_where(|kind| matches!(kind, StatementKind::Delete { has_where: false }))
                .map(|s| format!("{s} has no WHERE clause and would delete every row"))
        }
        "update_without_where" => {
            statement_where(|kind| matches!(kind, StatementKind::Update { has_where: false }))
                .map(|s| format!("{s} has no WHERE clause and would update every row"))
        }
        "dynamic_sql" => statement_where(|kind| matches!(kind, StatementKind::ExecuteImmediate))
            .map(|s| format!("{s} runs SQL built at run time")),
        _ => None,
    };
    found.unwrap_or_else(|| match flag {
        "external_query" => {
            "the SQL calls EXTERNAL_QUERY (SQL run on a federated database)".to_owned()
        }
        "javascript_udf" => "the SQL defines a JavaScript UDF or calls a persistent function, whose language the SQL does not show (it may be JavaScript or Python)".to_owned(),
        "temporary_function" => "the SQL defines a temporary function".to_owned(),
        "wildcard_table" => "the SQL reads a wildcard table (`*` or _TABLE_SUFFIX)".to_owned(),
        "information_schema" => "the SQL reads an INFORMATION_SCHEMA view".to_owned(),
        "multiple_statements" => format!(
            "the request holds {} statements (counting nested ones)",
            facts.statements.len()
        ),
        "delete_without_where" => "a DELETE has no WHERE clause".to_owned(),
        "update_without_where" => "an UPDATE has no WHERE clause".to_owned(),
        "dynamic_sql" => "the SQL uses EXECUTE IMMEDIATE".to_owned(),
        other => format!("the SQL has `{other}`"),
    })
}

fn verb(kind: &StatementKind) -> String {
    match kind {
        StatementKind::Query => "SELECT".to_owned(),
        StatementKind::Insert => "INSERT".to_owned(),
        StatementKind::Update { .. } => "UPDATE".to_owned(),
        StatementKind::Delete { .. } => "DELETE".to_owned(),
        StatementKind::Merge => "MERGE".to_owned(),
        StatementKind::Truncate => "TRUNCATE TABLE".to_owned(),
        StatementKind::Create { object, or_replace } => {
            let replace = if *or_replace { " OR REPLACE" } else { "" };
            format!("CREATE{replace} {}", object_word(*object))
        }
        StatementKind::Alter { object } => format!("ALTER {}", object_word(*object)),
        StatementKind::Drop { object } => format!("DROP {}", object_word(*object)),
        StatementKind::Grant => "GRANT".to_owned(),
        StatementKind::Revoke => "REVOKE".to_owned(),
        StatementKind::ExportData => "EXPORT DATA".to_owned(),
        StatementKind::LoadData => "LOAD DATA".to_owned(),
        StatementKind::Call => "CALL".to_owned(),
        StatementKind::ExecuteImmediate => "EXECUTE IMMEDIATE".to_owned(),
        StatementKind::Script(script) => script_word(*script).to_owned(),
        StatementKind::Other(words) => words.to_uppercase(),
    }
}

fn object_word(object: ObjectKind) -> &'static str {
    match object {
        ObjectKind::Table => "TABLE",
        ObjectKind::View => "VIEW",
        ObjectKind::MaterializedView => "MATERIALIZED VIEW",
        ObjectKind::Function => "FUNCTION",
        ObjectKind::Procedure => "PROCEDURE",
        ObjectKind::Schema => "SCHEMA",
        ObjectKind::Model => "MODEL",
        ObjectKind::Other => "(other object)",
    }
}

fn script_word(script: ScriptKind) -> &'static str {
    match script {
        ScriptKind::Begin => "BEGIN … END block",
        ScriptKind::Declare => "DECLARE",
        ScriptKind::Set => "SET",
        ScriptKind::If => "IF",
        ScriptKind::Case => "CASE",
        ScriptKind::Loop => "loop",
        ScriptKind::Raise => "RAISE",
        ScriptKind::Return => "RETURN",
        ScriptKind::Transaction => "transaction statement",
        ScriptKind::Assert => "ASSERT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sql::Flag;

    #[test]
    fn statement_names_are_kind_names_plus_aliases() {
        for name in KIND_NAMES {
            assert!(statement_names().contains(name), "{name}");
        }
        for alias in ALIASES {
            assert!(statement_names().contains(alias), "{alias}");
        }
        assert_eq!(statement_names().len(), KIND_NAMES.len() + ALIASES.len());
    }

    #[test]
    fn guardrail_names_add_flags() {
        for name in statement_names().iter().chain(FLAG_NAMES) {
            assert!(guardrail_names().contains(name), "{name}");
        }
        // dynamic_sql is both a kind and a flag, listed once.
        assert_eq!(
            guardrail_names().len(),
            KIND_NAMES.len() + ALIASES.len() + FLAG_NAMES.len() - 1
        );
    }

    #[test]
    fn names_agree_with_sluice_sql() {
        let kinds = [
            StatementKind::Query,
            StatementKind::Insert,
            StatementKind::Update { has_where: true },
            StatementKind::Delete { has_where: true },
            StatementKind::Merge,
            StatementKind::Truncate,
            StatementKind::Create {
                object: ObjectKind::Table,
                or_replace: false,
            },
            StatementKind::Create {
                object: ObjectKind::View,
                or_replace: false,
            },
            StatementKind::Create {
                object: ObjectKind::MaterializedView,
                or_replace: false,
            },
            StatementKind::Create {
                object: ObjectKind::Function,
                or_replace: false,
            },
            StatementKind::Create {
                object: ObjectKind::Procedure,
                or_replace: false,
            },
            StatementKind::Create {
                object: ObjectKind::Schema,
                or_replace: false,
            },
            StatementKind::Create {
                object: ObjectKind::Model,
                or_replace: false,
            },
            StatementKind::Create {
                object: ObjectKind::Other,
                or_replace: false,
            },
            StatementKind::Alter {
                object: ObjectKind::Table,
            },
            StatementKind::Drop {
                object: ObjectKind::Table,
            },
            StatementKind::Grant,
            StatementKind::Revoke,
            StatementKind::ExportData,
            StatementKind::LoadData,
            StatementKind::Call,
            StatementKind::ExecuteImmediate,
            StatementKind::Script(ScriptKind::Begin),
            StatementKind::Other("x".to_owned()),
        ];
        let names: Vec<&str> = kinds.iter().map(StatementKind::name).collect();
        assert_eq!(names, KIND_NAMES);
        let flags = [
            Flag::DynamicSql,
            Flag::ExternalQuery,
            Flag::JavascriptUdf,
            Flag::TemporaryFunction,
            Flag::WildcardTable,
            Flag::InformationSchema,
            Flag::MultipleStatements,
            Flag::DeleteWithoutWhere,
            Flag::UpdateWithoutWhere,
        ];
        let names: Vec<&str> = flags.iter().map(|f| f.name()).collect();
        assert_eq!(names, FLAG_NAMES);
    }

    #[test]
    fn aliases_expand() {
        for name in ALIASES {
            assert!(alias(name).is_some(), "{name}");
        }
        assert_eq!(
            expand("create", false).map(|v| v.len()),
            Some(8),
            "eight create_* kinds"
        );
        assert_eq!(expand("ddl", false).map(|v| v.len()), Some(11));
        assert_eq!(
            expand("dml", false),
            Some(vec!["insert", "update", "delete", "merge"])
        );
        assert!(
            expand("ddl", true).is_some_and(|v| v.contains(&"drop") && v.contains(&"create_view"))
        );
        assert_eq!(expand("scripting", false), Some(vec!["script"]));
        assert_eq!(
            expand("delete_without_where", true),
            Some(vec!["delete_without_where"])
        );
        assert_eq!(expand("delete_without_where", false), None);
        assert_eq!(expand("dorp", true), None);
        assert_eq!(expand("DROP", true), None);
    }

    #[test]
    fn statements_are_described_with_their_object() {
        let drop = StatementFacts {
            kind: StatementKind::Drop {
                object: ObjectKind::Table,
            },
            object: Some("proj.shop.customers".to_owned()),
            temporary: false,
        };
        assert_eq!(
            describe_statement(0, &drop),
            "statement 1: DROP TABLE proj.shop.customers"
        );
        let create = StatementFacts {
            kind: StatementKind::Create {
                object: ObjectKind::Table,
                or_replace: true,
            },
            object: None,
            temporary: false,
        };
        assert_eq!(
            describe_statement(2, &create),
            "statement 3: CREATE OR REPLACE TABLE"
        );
    }
}
