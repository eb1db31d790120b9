//! Statement kinds for SQL the parser rejected.
//!
//! The text is tokenized with the BigQuery dialect's tokenizer, so comments
//! and string literals are single tokens and never read as keywords
//! (`DROP/**/TABLE x` is still a drop, `SELECT 'DROP TABLE x'` is not).
//! Each `;`-separated segment is classified by its leading keywords. The
//! facts are already incomplete when this runs; the kinds only let
//! guardrails name what was attempted.

use sqlparser::dialect::BigQueryDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::facts::{Flag, ObjectKind, QueryFacts, ScriptKind, StatementFacts, StatementKind};

/// Add the statements found by a token-level scan of `sql` to `facts`.
pub(crate) fn classify(sql: &str, facts: &mut QueryFacts) {
    let tokens = match Tokenizer::new(&BigQueryDialect, sql).tokenize() {
        Ok(tokens) => tokens,
        Err(err) => {
            facts
                .incomplete
                .push(format!("SQL could not be tokenized: {err}"));
            facts.statements.push(StatementFacts {
                kind: StatementKind::Other("unparsed".to_owned()),
                object: None,
                temporary: false,
            });
            return;
        }
    };
    let mut segment: Vec<String> = Vec::new();
    let mut has_where = false;
    for token in tokens {
        match token {
            Token::SemiColon => {
                flush(&mut segment, has_where, facts);
                has_where = false;
            }
            Token::Whitespace(_) => {}
            Token::Word(word) if word.quote_style.is_none() => {
                if word.value.eq_ignore_ascii_case("WHERE") {
                    has_where = true;
                }
                segment.push(word.value.to_ascii_uppercase());
            }
            other => segment.push(other.to_string()),
        }
    }
    flush(&mut segment, has_where, facts);
}

/// Leading keywords of procedural statements whose body may follow in the
/// same `;`-separated segment (`IF c THEN DROP TABLE t;`).
const BLOCK_STARTS: &[&str] = &[
    "IF",
    "ELSEIF",
    "ELSE",
    "LOOP",
    "WHILE",
    "REPEAT",
    "FOR",
    "BEGIN",
    "EXCEPTION",
    "WHEN",
];

/// Keywords after which a procedural statement's body begins.
const BODY_STARTS: &[&str] = &["THEN", "ELSE", "DO", "LOOP", "BEGIN", "REPEAT"];

fn flush(segment: &mut Vec<String>, has_where: bool, facts: &mut QueryFacts) {
    let words: Vec<&str> = segment.iter().map(String::as_str).collect();
    push_words(&words, has_where, facts);
    segment.clear();
}

fn push_words(words: &[&str], has_where: bool, facts: &mut QueryFacts) {
    let Some(first) = words.first() else {
        return;
    };
    if BLOCK_STARTS.contains(first)
        && let Some(at) = words.iter().position(|w| BODY_STARTS.contains(w))
        && at + 1 < words.len()
        && words[at + 1] != "TRANSACTION"
    {
        let (head, body) = words.split_at(at + 1);
        push_words(head, false, facts);
        push_words(body, has_where, facts);
        return;
    }
    let kind = kind_of(words, has_where);
    match kind {
        StatementKind::Delete { has_where: false } => {
            facts.flags.insert(Flag::DeleteWithoutWhere);
        }
        StatementKind::Update { has_where: false } => {
            facts.flags.insert(Flag::UpdateWithoutWhere);
        }
        StatementKind::ExecuteImmediate => {
            facts.flags.insert(Flag::DynamicSql);
        }
        _ => {}
    }
    if words.contains(&"EXTERNAL_QUERY") {
        facts.flags.insert(Flag::ExternalQuery);
    }
    facts.statements.push(StatementFacts {
        kind,
        object: None,
        temporary: false,
    });
}

fn kind_of(words: &[&str], has_where: bool) -> StatementKind {
    use StatementKind as K;
    let first = words.first().copied().unwrap_or_default();
    match first {
        "SELECT" | "WITH" | "(" | "FROM" => K::Query,
        "INSERT" => K::Insert,
        "UPDATE" => K::Update { has_where },
        "DELETE" => K::Delete { has_where },
        "MERGE" => K::Merge,
        "TRUNCATE" => K::Truncate,
        "CREATE" => {
            let or_replace = words.get(1..3) == Some(&["OR", "REPLACE"][..]);
            K::Create {
                object: object_after(&words[1..]),
                or_replace,
            }
        }
        "ALTER" => K::Alter {
            object: object_after(&words[1..]),
        },
        "DROP" => K::Drop {
            object: object_after(&words[1..]),
        },
        "UNDROP" => K::Other("undrop".to_owned()),
        "GRANT" => K::Grant,
        "REVOKE" => K::Revoke,
        "EXPORT" => K::ExportData,
        "LOAD" => K::LoadData,
        "CALL" => K::Call,
        "EXECUTE" => K::ExecuteImmediate,
        "BEGIN" => K::Script(ScriptKind::Begin),
        "DECLARE" => K::Script(ScriptKind::Declare),
        "SET" => K::Script(ScriptKind::Set),
        "IF" | "ELSE" | "ELSEIF" | "END" => K::Script(ScriptKind::If),
        "CASE" => K::Script(ScriptKind::Case),
        "LOOP" | "WHILE" | "REPEAT" | "FOR" | "BREAK" | "LEAVE" | "CONTINUE" | "ITERATE" => {
            K::Script(ScriptKind::Loop)
        }
        "RAISE" => K::Script(ScriptKind::Raise),
        "RETURN" => K::Script(ScriptKind::Return),
        "COMMIT" | "ROLLBACK" => K::Script(ScriptKind::Transaction),
        "ASSERT" => K::Script(ScriptKind::Assert),
        "EXCEPTION" | "WHEN" => K::Script(ScriptKind::Begin),
        other => K::Other(other.to_lowercase()),
    }
}

/// The object kind named after `CREATE`/`ALTER`/`DROP`, skipping modifiers.
fn object_after(words: &[&str]) -> ObjectKind {
    const MODIFIERS: &[&str] = &[
        "OR",
        "REPLACE",
        "TEMP",
        "TEMPORARY",
        "EXTERNAL",
        "SNAPSHOT",
        "IF",
        "NOT",
        "EXISTS",
        "AGGREGATE",
    ];
    let mut rest = words.iter().skip_while(|w| MODIFIERS.contains(w));
    match rest.next().copied() {
        Some("TABLE") => ObjectKind::Table,
        Some("VIEW") => ObjectKind::View,
        Some("MATERIALIZED") => ObjectKind::MaterializedView,
        Some("FUNCTION") => ObjectKind::Function,
        Some("PROCEDURE") => ObjectKind::Procedure,
        Some("SCHEMA") => ObjectKind::Schema,
        Some("MODEL") => ObjectKind::Model,
        _ => ObjectKind::Other,
    }
}
