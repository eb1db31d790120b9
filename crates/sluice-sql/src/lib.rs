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

mod budget;
mod facts;
mod fallback;
mod limits;
mod lineage;
mod name;
mod routine;
mod walk;

pub use facts::{
    Defaults, Flag, ObjectKind, QueryFacts, ScriptKind, StatementFacts, StatementKind,
};
pub use limits::{LIMITS, LimitExceeded, SqlLimits};
pub use lineage::{
    Derivation, Lineage, LineageOptions, OutputColumn, Schemas, Source, lineage, lineage_of,
};

pub use name::TableName;
pub use routine::{RoutineName, SPENDING_NAMESPACES};

use sqlparser::ast::Statement;
use sqlparser::dialect::BigQueryDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, Tokenizer};

use budget::Budgeted;

/// The longest SQL text analyzed; longer text is reported incomplete
/// without being parsed, so one request cannot make the gateway spend
/// unbounded time or memory here.
pub const MAX_SQL_BYTES: usize = 1024 * 1024;

/// How deep `EXECUTE IMMEDIATE` of a constant string is followed.
const MAX_DYNAMIC_DEPTH: usize = 3;

/// The parser's messages quote the offending token, which can be as long
/// as the SQL: keep refusals and log lines short, and SQL literals out.
fn shortened(message: &str) -> String {
    const MAX_CHARS: usize = 300;
    if message.chars().count() <= MAX_CHARS {
        return message.to_owned();
    }
    let kept: String = message.chars().take(MAX_CHARS).collect();
    format!("{kept}…")
}

/// Why [`parse`] returned no statements.
#[derive(Debug, Clone, PartialEq)]
pub enum ParseFailure {
    /// The text is over an analysis limit; nothing was (fully) parsed.
    Limit(LimitExceeded),
    /// The text is not BigQuery SQL sqlparser understands.
    Syntax(ParserError),
}

impl std::fmt::Display for ParseFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Limit(exceeded) => exceeded.fmt(f),
            Self::Syntax(err) => err.fmt(f),
        }
    }
}

/// Parse BigQuery-dialect `sql` within the analysis limits: the token
/// limits are checked before parsing, and the parser runs on a budget of
/// steps ([`budget`]), so no text makes it recurse too deep or backtrack
/// for long. For every component that parses request SQL (the analysis
/// here, the embedded warehouse).
pub fn parse(sql: &str) -> Result<Vec<Statement>, ParseFailure> {
    let tokens = Tokenizer::new(&BigQueryDialect, sql)
        .tokenize_with_location()
        .map_err(|err| ParseFailure::Syntax(err.into()))?;
    limits::check(&tokens, &LIMITS).map_err(ParseFailure::Limit)?;
    let counted = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .count();
    let dialect = Budgeted::for_tokens(counted);
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let parsed = parser.parse_statements();
    if dialect.exhausted() {
        return Err(ParseFailure::Limit(LimitExceeded {
            limit: "max_parse_work",
            max: usize::try_from(dialect.max()).unwrap_or(usize::MAX),
            line: parser.peek_token_ref().span.start.line,
            hint: "the parser would have to try too many readings of this text; look for an unclosed bracket or a malformed expression after a long chain of field accesses, NOT (…), CAST(…) or INTERVAL",
        }));
    }
    parsed.map_err(ParseFailure::Syntax)
}

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
    // The work a text may cause is bounded on its tokens before anything
    // is parsed (see `limits`): a tree too deep to walk or even drop on a
    // worker's stack is never built. The parser keeps its own recursion
    // limit for nested brackets and subqueries, and runs on a budget of
    // steps so it cannot backtrack for long (see `budget`). A panic inside the parser
    // is a bug there; it still must not take the gateway down.
    let parsed = std::panic::catch_unwind(|| parse(sql));
    let parsed = match parsed {
        Ok(Err(ParseFailure::Limit(exceeded))) => {
            facts
                .incomplete
                .push(format!("SQL was not analyzed: {exceeded}"));
            facts.limit_exceeded = Some(exceeded);
            return facts;
        }
        Ok(Ok(statements)) => Ok(Ok(statements)),
        Ok(Err(ParseFailure::Syntax(err))) => Ok(Err(err)),
        Err(panic) => Err(panic),
    };
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
            facts.incomplete.push(format!(
                "SQL could not be parsed: {}",
                shortened(&err.to_string())
            ));
            if depth == 0 {
                facts.syntax_error = Some(shortened(&err.to_string()));
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
