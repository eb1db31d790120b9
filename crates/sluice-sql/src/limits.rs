//! Bounds on the work one SQL text may cause, checked on its tokens before
//! it is parsed.
//!
//! sqlparser builds left-associative operator chains (`1+1+1+…`,
//! `x IS NULL IS NULL …`, `… UNION ALL SELECT …`) in a loop, so its own
//! recursion limit does not stop them, but the tree it builds is as deep as
//! the chain is long — and walking, printing and even dropping that tree
//! recurse once per level. A chain of half a million operators fits in the
//! 1 MiB text limit and overflows any thread's stack, which aborts the whole
//! process: no `catch_unwind` can stop that. So the depth a text *could*
//! produce is estimated from its tokens, and text over a bound is refused
//! before a tree exists.
//!
//! The estimate is deliberately high: every token that is not an operand
//! (name, literal, parameter) counts as one level at its bracket depth until
//! a comma or a clause keyword starts a new, flat sibling; set operators
//! (`UNION`, `INTERSECT`, `EXCEPT`) count until the statement ends; and the
//! levels of every open bracket add up. Real queries sit far below the
//! bounds; `tests/limits.rs` checks that text just under them is walked,
//! printed and dropped on a 2 MiB stack.

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan};

/// The bounds [`check`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlLimits {
    /// Tokens in the whole text, whitespace and comments excluded.
    pub max_tokens: usize,
    /// Brackets (`(`, `[`, `{`) open at once.
    pub max_nesting: usize,
    /// The estimated depth of the tree the text would parse into.
    pub max_depth: usize,
}

/// The bounds the gateway applies.
pub const LIMITS: SqlLimits = SqlLimits {
    max_tokens: 250_000,
    max_nesting: 64,
    max_depth: 1_000,
};

/// Which bound a text exceeded, with the figures, for the refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded {
    /// The bound's stable name (`analysis.limits.<name>`).
    pub limit: &'static str,
    /// The bound.
    pub max: usize,
    /// Where the text is when the bound is passed (1-based line).
    pub line: u64,
    /// What a user can change.
    pub hint: &'static str,
}

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the SQL exceeds the analysis limit analysis.limits.{} (at most {}; passed at line {}); {}",
            self.limit, self.max, self.line, self.hint
        )
    }
}

/// One bracket level: the running chain of its current expression and of
/// its set operators.
#[derive(Debug, Default, Clone, Copy)]
struct Level {
    chain: usize,
    set_ops: usize,
}

impl Level {
    fn depth(self) -> usize {
        self.chain + self.set_ops + 1
    }
}

/// Check `tokens` against `limits` without building anything deeper than a
/// stack of bracket levels.
pub fn check(tokens: &[TokenWithSpan], limits: &SqlLimits) -> Result<(), LimitExceeded> {
    let mut levels = vec![Level::default()];
    // The sum of the depths of every open level, kept as it changes.
    let mut depth = 1usize;
    let mut counted = 0usize;
    for token in tokens {
        let line = token.span.start.line;
        let exceeded = |limit, max, hint| LimitExceeded {
            limit,
            max,
            line,
            hint,
        };
        if matches!(token.token, Token::Whitespace(_) | Token::EOF) {
            continue;
        }
        counted += 1;
        if counted > limits.max_tokens {
            return Err(exceeded(
                "max_tokens",
                limits.max_tokens,
                "split the work into several queries, or pass long lists as an array parameter (IN UNNEST(@values))",
            ));
        }
        let current = levels.len() - 1;
        match &token.token {
            Token::LParen | Token::LBracket | Token::LBrace => {
                // The bracket is an operand of the enclosing chain (a call,
                // a subscript, a subquery) and opens a level of its own.
                levels[current].chain += 1;
                levels.push(Level::default());
                depth += 2;
                if levels.len() - 1 > limits.max_nesting {
                    return Err(exceeded(
                        "max_nesting",
                        limits.max_nesting,
                        "nest fewer brackets, for example with WITH clauses",
                    ));
                }
            }
            Token::RParen | Token::RBracket | Token::RBrace => {
                if levels.len() > 1
                    && let Some(level) = levels.pop()
                {
                    depth -= level.depth();
                }
            }
            Token::Comma => {
                depth -= levels[current].chain;
                levels[current].chain = 0;
            }
            Token::SemiColon => {
                levels.clear();
                levels.push(Level::default());
                depth = 1;
            }
            Token::Word(word) if word.quote_style.is_none() && is_clause(word.keyword) => {
                depth -= levels[current].chain;
                levels[current].chain = 0;
            }
            Token::Word(word)
                if word.quote_style.is_none()
                    && matches!(
                        word.keyword,
                        Keyword::UNION | Keyword::INTERSECT | Keyword::EXCEPT
                    ) =>
            {
                levels[current].set_ops += 1;
                depth += 1;
            }
            other if is_operand(other) => {}
            _ => {
                levels[current].chain += 1;
                depth += 1;
            }
        }
        if depth > limits.max_depth {
            return Err(exceeded(
                "max_depth",
                limits.max_depth,
                "shorten the chain of operators or set operations in one expression (a long OR of equalities is IN (…) or IN UNNEST(@values); many UNION ALL branches are fewer queries)",
            ));
        }
    }
    Ok(())
}

/// Keywords after which the parser starts a new sibling, not a deeper
/// node: select-list items, clauses, `CASE` branches, joins.
fn is_clause(keyword: Keyword) -> bool {
    matches!(
        keyword,
        Keyword::SELECT
            | Keyword::FROM
            | Keyword::WHERE
            | Keyword::GROUP
            | Keyword::HAVING
            | Keyword::QUALIFY
            | Keyword::WINDOW
            | Keyword::ORDER
            | Keyword::LIMIT
            | Keyword::OFFSET
            | Keyword::JOIN
            | Keyword::ON
            | Keyword::USING
            | Keyword::WHEN
            | Keyword::THEN
            | Keyword::ELSE
            | Keyword::END
    )
}

/// Names, literals and parameters: leaves of the tree.
fn is_operand(token: &Token) -> bool {
    match token {
        Token::Word(word) => word.quote_style.is_some() || word.keyword == Keyword::NoKeyword,
        Token::Number(..)
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::TripleSingleQuotedString(_)
        | Token::TripleDoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::TripleSingleQuotedByteStringLiteral(_)
        | Token::TripleDoubleQuotedByteStringLiteral(_)
        | Token::SingleQuotedRawStringLiteral(_)
        | Token::DoubleQuotedRawStringLiteral(_)
        | Token::TripleSingleQuotedRawStringLiteral(_)
        | Token::TripleDoubleQuotedRawStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_)
        | Token::Placeholder(_) => true,
        _ => false,
    }
}
