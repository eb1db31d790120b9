//! BigQuery's dialect with a bound on the parser's work.
//!
//! sqlparser backtracks: after a `.` in a field access, after `NOT (`,
//! `CAST(`, `INTERVAL`, it tries one reading of the rest of the expression
//! and, when that fails, tries another from the same place. When the text
//! fails deep inside, every level of such nesting doubles the work, so a
//! 150-byte text like `SELECT a.b.c.….z[1` keeps a worker busy for
//! minutes. The token limits cannot see that (the text is short and
//! shallow), so the parser itself is metered: [`Budgeted`] counts the
//! expressions it starts and, once a text has used its budget, fails every
//! further one with sqlparser's recursion error, which no backtracking
//! point swallows. The parse then ends at once and the text is refused
//! under `analysis.limits.max_parse_work`.
//!
//! Everything else is BigQuery's dialect unchanged: the wrapper answers to
//! sqlparser's dialect checks as `BigQueryDialect`, and a test parses the
//! corpus with both and compares the trees.

use std::any::TypeId;
use std::cell::Cell;

use sqlparser::ast::{Expr, Statement};
use sqlparser::dialect::{BigQueryDialect, Dialect};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};

/// Expressions the parser may start for any text.
const BASE_STEPS: u64 = 20_000;
/// And for each token of the text. Real queries start well under one
/// expression per token (the corpus' worst is measured in `tests/limits.rs`).
const STEPS_PER_TOKEN: u64 = 16;

/// [`BigQueryDialect`] with a budget of parser steps.
#[derive(Debug)]
pub struct Budgeted {
    used: Cell<u64>,
    max: u64,
}

impl Budgeted {
    /// A budget for a text of `tokens` tokens.
    pub fn for_tokens(tokens: usize) -> Self {
        Self {
            used: Cell::new(0),
            max: BASE_STEPS.saturating_add(STEPS_PER_TOKEN.saturating_mul(tokens as u64)),
        }
    }

    /// The budget, for the refusal's figures.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Whether the parse ran out of budget (its error is then ours, not
    /// the text's).
    pub fn exhausted(&self) -> bool {
        self.used.get() > self.max
    }

    fn step(&self) -> bool {
        let used = self.used.get().saturating_add(1);
        self.used.set(used);
        used > self.max
    }
}

impl Dialect for Budgeted {
    fn dialect(&self) -> TypeId {
        TypeId::of::<BigQueryDialect>()
    }

    fn parse_prefix(&self, _parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        self.step()
            .then_some(Err(ParserError::RecursionLimitExceeded))
    }

    fn get_next_precedence(&self, _parser: &Parser) -> Option<Result<u8, ParserError>> {
        self.step()
            .then_some(Err(ParserError::RecursionLimitExceeded))
    }

    fn parse_statement(&self, parser: &mut Parser) -> Option<Result<Statement, ParserError>> {
        BigQueryDialect.parse_statement(parser)
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        BigQueryDialect.is_delimited_identifier_start(ch)
    }

    fn supports_projection_trailing_commas(&self) -> bool {
        BigQueryDialect.supports_projection_trailing_commas()
    }

    fn supports_column_definition_trailing_commas(&self) -> bool {
        BigQueryDialect.supports_column_definition_trailing_commas()
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        BigQueryDialect.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        BigQueryDialect.is_identifier_part(ch)
    }

    fn supports_triple_quoted_string(&self) -> bool {
        BigQueryDialect.supports_triple_quoted_string()
    }

    fn supports_window_function_null_treatment_arg(&self) -> bool {
        BigQueryDialect.supports_window_function_null_treatment_arg()
    }

    fn supports_string_literal_backslash_escape(&self) -> bool {
        BigQueryDialect.supports_string_literal_backslash_escape()
    }

    fn supports_window_clause_named_window_reference(&self) -> bool {
        BigQueryDialect.supports_window_clause_named_window_reference()
    }

    fn supports_parenthesized_set_variables(&self) -> bool {
        BigQueryDialect.supports_parenthesized_set_variables()
    }

    fn supports_select_wildcard_except(&self) -> bool {
        BigQueryDialect.supports_select_wildcard_except()
    }

    fn require_interval_qualifier(&self) -> bool {
        BigQueryDialect.require_interval_qualifier()
    }

    fn supports_struct_literal(&self) -> bool {
        BigQueryDialect.supports_struct_literal()
    }

    fn supports_select_expr_star(&self) -> bool {
        BigQueryDialect.supports_select_expr_star()
    }

    fn supports_execute_immediate(&self) -> bool {
        BigQueryDialect.supports_execute_immediate()
    }

    fn supports_table_versioning(&self) -> bool {
        BigQueryDialect.supports_table_versioning()
    }

    fn supports_group_by_expr(&self) -> bool {
        BigQueryDialect.supports_group_by_expr()
    }

    fn is_column_alias(&self, kw: &Keyword, parser: &mut Parser) -> bool {
        BigQueryDialect.is_column_alias(kw, parser)
    }

    fn supports_pipe_operator(&self) -> bool {
        BigQueryDialect.supports_pipe_operator()
    }

    fn supports_create_table_multi_schema_info_sources(&self) -> bool {
        BigQueryDialect.supports_create_table_multi_schema_info_sources()
    }

    fn supports_select_wildcard_replace(&self) -> bool {
        BigQueryDialect.supports_select_wildcard_replace()
    }

    fn supports_comma_separated_trim(&self) -> bool {
        BigQueryDialect.supports_comma_separated_trim()
    }
}
