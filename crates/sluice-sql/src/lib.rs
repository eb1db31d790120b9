//! BigQuery SQL analysis for Sluice's `analyze` phase (DESIGN.md §1).
//!
//! [`analyze`] turns the SQL of a request, plus the request's default
//! project and dataset, into [`QueryFacts`]: every statement and its kind,
//! every table read and written (fully qualified), the functions called and
//! a set of [`Flag`]s policy guardrails care about.
//!
//! The analysis fails closed: whatever it cannot fully account for (a parse
//! failure, dynamic SQL, a procedure call, a federated query, a construct it
//! does not know) is recorded as a reason in [`QueryFacts::incomplete`], and
//! incomplete facts must never lead to a plain allow (DESIGN.md §5.2).
//!
//! The crate is pure: plain data in, plain data out, no I/O, and
//! [`analyze`] never panics and never returns an error.

mod facts;
mod fallback;
mod name;
mod walk;

pub use facts::{
    Defaults, Flag, ObjectKind, QueryFacts, ScriptKind, StatementFacts, StatementKind,
};
pub use name::TableName;

use sqlparser::dialect::BigQueryDialect;
use sqlparser::parser::Parser;

/// The longest SQL text analyzed; longer text is reported incomplete
/// without being parsed, so one request cannot make the gateway spend
/// unbounded time or memory here.
pub const MAX_SQL_BYTES: usize = 1024 * 1024;

/// How deep `EXECUTE IMMEDIATE` of a constant string is followed.
const MAX_DYNAMIC_DEPTH: usize = 3;

/// Analyze BigQuery-dialect `sql` with the request's `defaults`.
///
/// Never panics and never errors: when the text cannot be parsed, the
/// statement kinds come from a token-level scan of the leading keywords
/// (comments and string literals are never mistaken for keywords), and the
/// facts are incomplete with the parser's message as the reason.
pub fn analyze(sql: &str, defaults: &Defaults) -> QueryFacts {
    analyze_at_depth(sql, defaults, 0)
}

pub(crate) fn analyze_at_depth(sql: &str, defaults: &Defaults, depth: usize) -> QueryFacts {
    let mut facts = QueryFacts::default();
    if sql.len() > MAX_SQL_BYTES {
        facts.incomplete.push(format!(
            "SQL is too long to analyze ({} bytes, limit {MAX_SQL_BYTES})",
            sql.len()
        ));
        return facts;
    }
    // The parser keeps its default recursion limit, so deeply nested input
    // ends as a parse error rather than a stack overflow. A panic inside the
    // parser is a bug there; it still must not take the gateway down.
    let parsed = std::panic::catch_unwind(|| Parser::parse_sql(&BigQueryDialect, sql));
    match parsed {
        Ok(Ok(statements)) => {
            let mut walker = walk::Walker::new(defaults, depth);
            walker.walk(&statements);
            facts = walker.into_facts();
            if statements.is_empty() {
                facts.incomplete.push("no SQL statement found".to_owned());
            }
        }
        Ok(Err(err)) => {
            facts
                .incomplete
                .push(format!("SQL could not be parsed: {err}"));
            if depth == 0 {
                facts.syntax_error = Some(err.to_string());
            }
            fallback::classify(sql, &mut facts);
        }
        Err(_) => {
            facts
                .incomplete
                .push("SQL parser failed unexpectedly".to_owned());
            fallback::classify(sql, &mut facts);
        }
    }
    if facts.statements.len() > 1 {
        facts.flags.insert(Flag::MultipleStatements);
    }
    facts
}
