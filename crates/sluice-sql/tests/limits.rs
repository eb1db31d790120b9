//! The analysis limits: hostile shapes are refused before parsing without
//! harm, and text just under each limit is parsed, walked, printed and
//! dropped on a 2 MiB stack — the size of a Tokio worker's — so nothing
//! the analyzer accepts can overflow a thread of the gateway.

use sluice_sql::{Defaults, LIMITS, QueryFacts, analyze};
use sqlparser::dialect::BigQueryDialect;
use sqlparser::parser::Parser;

/// A Tokio worker's default stack.
const WORKER_STACK: usize = 2 * 1024 * 1024;

fn on_worker_stack<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(work)
        .expect("spawn")
        .join()
        .expect("the analysis thread must not panic")
}

fn analyze_on_worker(sql: String) -> QueryFacts {
    on_worker_stack(move || {
        analyze(
            &sql,
            &Defaults {
                project: "proj".into(),
                dataset: Some("ds".into()),
            },
        )
    })
}

/// Parse, print and drop on a worker stack, as the gateway and the embedded
/// warehouse may do with any text the analysis accepted.
fn parse_print_drop_on_worker(sql: String) {
    on_worker_stack(move || {
        let statements = sluice_sql::parse(&sql).expect("parses within the budget");
        assert_eq!(
            statements,
            Parser::parse_sql(&BigQueryDialect, &sql).expect("parses"),
            "the budgeted parse is BigQuery's parse"
        );
        let printed: usize = statements.iter().map(|s| s.to_string().len()).sum();
        assert!(printed > 0);
        drop(statements);
    });
}

fn limit_of(facts: &QueryFacts) -> Option<&'static str> {
    facts.limit_exceeded.as_ref().map(|e| e.limit)
}

/// Regression: `SELECT 1+1+…` with 500,000 operators, just under the
/// 1 MiB text limit, overflowed a worker's stack and aborted the gateway.
#[test]
fn half_a_million_additions_are_refused_not_a_crash() {
    let sql = format!("SELECT 1{}", "+1".repeat(500_000));
    assert!(sql.len() < sluice_sql::MAX_SQL_BYTES);
    let facts = analyze_on_worker(sql);
    assert_eq!(limit_of(&facts), Some("max_depth"));
    assert!(!facts.is_complete());
    let shown = facts.limit_exceeded.unwrap().to_string();
    assert!(shown.contains("analysis.limits.max_depth"), "{shown}");
}

/// `head`, then `piece` repeated as often as fits in just under the 1 MiB
/// text limit, then `tail` repeated as often as `piece`.
fn fill(head: &str, piece: &str, tail: &str) -> String {
    let times = (sluice_sql::MAX_SQL_BYTES - head.len() - 64) / (piece.len() + tail.len());
    format!("{head}{}{}", piece.repeat(times), tail.repeat(times))
}

#[test]
fn hostile_chains_of_every_kind_are_refused() {
    let shapes = [
        ("postfix IS NULL", fill("SELECT x", " IS NULL", "")),
        ("unary minus", fill("SELECT ", "- ", "") + "1"),
        ("NOT", fill("SELECT ", "NOT ", "") + "TRUE"),
        ("AND chain", fill("SELECT 1 FROM t WHERE a", " AND a", "")),
        ("concatenation", fill("SELECT 'a'", " || 'a'", "")),
        ("comparison", fill("SELECT 1", " = 1", "")),
        ("UNION ALL", fill("SELECT 1", " UNION ALL SELECT 1", "")),
        (
            "UNION with lists",
            fill("SELECT 1, 2", " UNION ALL SELECT 1, 2", ""),
        ),
        ("parentheses", fill("SELECT ", "(", ")")),
        ("brackets", fill("SELECT ", "[", "]")),
        ("subscripts", fill("SELECT a", "[0]", "")),
        ("field access", fill("SELECT (a)", ".b", "")),
        ("casts", fill("SELECT 1", "::INT64", "")),
        (
            "chains in brackets",
            fill(
                "SELECT ",
                "(1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+",
                "",
            ),
        ),
        (
            "tokens",
            fill("SELECT 1 FROM t WHERE x IN (1", ",1", "") + ")",
        ),
    ];
    for (name, sql) in shapes {
        assert!(sql.len() <= sluice_sql::MAX_SQL_BYTES, "{name}");
        let facts = analyze_on_worker(sql);
        assert!(!facts.is_complete(), "{name}: must not be complete");
        assert!(
            facts.limit_exceeded.is_some() || facts.syntax_error.is_some(),
            "{name}: refused by a limit or the parser, got {:?}",
            facts.incomplete
        );
    }
}

#[test]
fn text_just_under_the_depth_limit_is_walked_printed_and_dropped() {
    // Each shape's own depth estimate stays under the limit, with the
    // margin the estimate keeps for the statement around it.
    // (repeated piece, the levels one piece counts in the estimate)
    let pieces = [
        ("+1", 1),
        (" IS NULL", 2),
        (" OR a = 1", 2),
        (" UNION ALL SELECT 1", 1),
        (" || 'a'", 1),
    ];
    let shapes = pieces.map(|(piece, levels)| {
        let times = (LIMITS.max_depth - 20) / levels;
        let head = if piece.contains("OR") {
            "SELECT 1 FROM t WHERE a = 1"
        } else {
            "SELECT x"
        };
        format!("{head}{}", piece.repeat(times))
    });
    for sql in shapes {
        let facts = analyze_on_worker(sql.clone());
        assert_eq!(limit_of(&facts), None, "{:?}", facts.limit_exceeded);
        assert!(facts.syntax_error.is_none(), "{:?}", facts.syntax_error);
        parse_print_drop_on_worker(sql);
    }
}

#[test]
fn large_flat_queries_real_agents_write_are_accepted() {
    let in_list = format!(
        "SELECT id FROM t WHERE id IN ({})",
        (0..50_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let wide_select = format!(
        "SELECT {} FROM t",
        (0..5_000)
            .map(|i| format!("c{i} + 1 AS x{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let long_case = format!(
        "SELECT CASE {} ELSE 'other' END FROM t",
        (0..2_000)
            .map(|i| format!("WHEN code = {i} THEN 'v{i}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let deep_fields = format!(
        "SELECT {} FROM `p.d.t`",
        (0..3_000)
            .map(|i| format!(
                "t.a.b.c.d[OFFSET({i})].e.f[SAFE_OFFSET(CAST(g.h.i AS INT64))] AS x{i}"
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let many_ors = format!(
        "SELECT 1 FROM t WHERE {}",
        (0..200)
            .map(|i| format!("id = {i}"))
            .collect::<Vec<_>>()
            .join(" OR ")
    );
    for sql in [in_list, wide_select, long_case, deep_fields, many_ors] {
        let facts = analyze_on_worker(sql.clone());
        assert_eq!(limit_of(&facts), None, "{:?}", facts.limit_exceeded);
        assert!(facts.is_complete(), "{:?}", facts.incomplete);
        parse_print_drop_on_worker(sql);
    }
}

/// The parser quotes the token it stumbled on; a refusal and its log line
/// stay short however long that token is, and do not carry the literal.
#[test]
fn a_syntax_error_at_a_huge_token_is_reported_briefly() {
    let literal = "x".repeat(100_000);
    let facts = analyze_on_worker(format!("SELECT 1 FROM t AS a {literal}"));
    let message = facts.syntax_error.expect("does not parse");
    assert!(message.chars().count() <= 301, "{} chars", message.len());
    assert!(facts.incomplete.iter().all(|r| r.len() < 400));
}

/// Regression: sqlparser backtracks at every `.` of a field access and
/// inside `NOT (`, `CAST(`, `INTERVAL` and subscripts, so a short text
/// that fails deep inside doubles the work per level: the fuzzer's
/// `SELECT SAFE.li.li.….li[b.f(1)` (143 bytes) held a thread for minutes.
/// Each shape below, at 40 levels, would take longer than the universe has
/// existed; the parser's step budget refuses it at once.
#[test]
fn texts_that_make_the_parser_backtrack_are_refused() {
    let shapes = [
        ("SELECT a", ".li", "[1 +]"),
        ("SELECT SAFE", ".li", "[b.f(1)"),
        ("SELECT a[1]", ".li", "[1"),
        ("SELECT f(x)", ".li[1]", "[1"),
        ("SELECT ", "CAST(", "1 +"),
        ("SELECT ", "NOT (", "1 +"),
        ("SELECT ", "DATE_ADD(x, INTERVAL ", "1 +"),
        ("SELECT ", "x.y[", "1 +"),
        ("SELECT ", "a[b.", "1 +"),
    ];
    for (head, piece, tail) in shapes {
        for times in [20, 40] {
            let sql = format!("{head}{}{tail}", piece.repeat(times));
            let facts = analyze_on_worker(sql.clone());
            assert!(!facts.is_complete(), "{sql}");
            assert!(
                limit_of(&facts) == Some("max_parse_work") || facts.syntax_error.is_some(),
                "{sql}: {:?}",
                facts.incomplete
            );
        }
    }
    let facts = analyze_on_worker(format!("SELECT a{}[1 +]", ".li".repeat(40)));
    let shown = facts.limit_exceeded.expect("over the budget").to_string();
    assert!(shown.contains("analysis.limits.max_parse_work"), "{shown}");
}

/// The budget wraps BigQuery's dialect without changing it: every query of
/// the guardrail corpus parses to the same tree, or fails the same way.
#[test]
fn the_budgeted_parser_is_bigquerys_parser() {
    #[derive(serde::Deserialize)]
    struct Case {
        sql: String,
    }
    let corpus: Vec<Case> =
        serde_json::from_str(include_str!("corpus/guardrails.json")).expect("corpus parses");
    assert!(corpus.len() > 50);
    for case in corpus {
        let ours = sluice_sql::parse(&case.sql);
        let theirs = Parser::parse_sql(&BigQueryDialect, &case.sql);
        match (ours, theirs) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", case.sql),
            (Err(sluice_sql::ParseFailure::Syntax(a)), Err(b)) => {
                assert_eq!(a, b, "{}", case.sql)
            }
            (ours, theirs) => panic!("{}: {ours:?} vs {theirs:?}", case.sql),
        }
    }
}
