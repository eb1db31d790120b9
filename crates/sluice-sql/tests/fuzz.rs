//! Bounded fuzzing of the SQL analyzer and of column lineage: seeds from the guardrail corpus and
//! hostile shapes, mutated at byte and keyword level, each analyzed on a
//! 2 MiB stack (a Tokio worker's). The analyzer must never panic, abort or
//! claim complete facts for text it did not fully parse.
//!
//! Runs a few seconds in the test command; `SLUICE_FUZZ_SECONDS=600 cargo
//! test -p sluice-sql --test fuzz -- --nocapture` runs longer, and
//! `SLUICE_FUZZ_SEED=N` replays a printed seed (docs/security.md).

use std::time::Duration;

use serde::Deserialize;
use sluice_sql::{Defaults, LineageOptions, TableName, analyze, lineage};

#[derive(Deserialize)]
struct Case {
    sql: String,
}

const DICTIONARY: &[&[u8]] = &[
    b"SELECT ",
    b" FROM ",
    b" WHERE ",
    b" UNION ALL ",
    b" JOIN ",
    b" ON ",
    b"(",
    b")",
    b"[",
    b"]",
    b"+",
    b" || ",
    b" IS NULL",
    b" NOT ",
    b"- ",
    b" AND ",
    b" OR ",
    b"CASE WHEN ",
    b" THEN ",
    b" END",
    b" IN (",
    b",",
    b";",
    b"`p.d.t`",
    b"@p",
    b"?",
    b"'s'",
    b"\"s\"",
    b"'''",
    b"r'\\'",
    b"b'x'",
    b"--",
    b"/*",
    b"*/",
    b"#",
    b"EXECUTE IMMEDIATE ",
    b"BEGIN ",
    b" EXCEPTION WHEN ERROR THEN ",
    b"DECLARE x INT64;",
    b"SET @@dataset_id = 'x';",
    b"DROP TABLE ",
    b"CREATE TEMP FUNCTION f(x INT64) AS (x);",
    b"WITH a AS (SELECT 1) ",
    b"UNNEST(",
    b"STRUCT(",
    b"ARRAY<",
    b">",
    b"::",
    b".",
    b"*",
    b"EXCEPT(",
    b"|> ",
    b"\\",
    b"\0",
    "é".as_bytes(),
    b"\xff",
];

#[test]
fn analyzer_survives_mutated_sql() {
    let corpus: Vec<Case> =
        serde_json::from_str(include_str!("corpus/guardrails.json")).expect("corpus parses");
    let mut seeds: Vec<Vec<u8>> = corpus.into_iter().map(|c| c.sql.into_bytes()).collect();
    seeds.extend(
        [
            "SELECT 1+1+1+1",
            "SELECT x IS NULL IS NULL",
            "SELECT ((((1))))",
            "SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3",
            "SELECT a[0][1].b.c FROM t",
            "WITH c AS (SELECT ssn AS s FROM t) SELECT * EXCEPT (s), TO_JSON_STRING(x) FROM c, UNNEST(c.arr) AS x WITH OFFSET o",
            "SELECT (SELECT MAX(ssn) FROM t u WHERE u.id = v.id), v.* REPLACE (1 AS id) FROM t v JOIN w USING (id) GROUP BY 1",
        ]
        .map(|s| s.as_bytes().to_vec()),
    );
    let report = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let defaults = Defaults {
                project: "proj".into(),
                dataset: Some("ds".into()),
            };
            let columns = |_: &TableName| Some(vec!["id".to_owned(), "ssn".to_owned()]);
            let options = LineageOptions {
                counting_aggregates: vec!["COUNT".into()],
            };
            sluice_fuzz::run("sql", &seeds, DICTIONARY, Duration::from_secs(6), |input| {
                let sql = String::from_utf8_lossy(input);
                let facts = analyze(&sql, &defaults);
                // Lineage reads the same text: it must not panic either,
                // and text that is not one parsed query has no columns.
                let traced = lineage(&sql, &defaults, &columns, &options);
                if !facts.is_complete() && facts.syntax_error.is_some() {
                    assert!(
                        traced.columns.is_none(),
                        "unparsed text has no lineage: {sql:?}"
                    );
                }
                if facts.limit_exceeded.is_some() || facts.syntax_error.is_some() {
                    assert!(
                        !facts.is_complete(),
                        "refused text must be incomplete: {sql:?}"
                    );
                }
                if facts.is_complete() {
                    assert!(
                        !facts.statements.is_empty(),
                        "complete facts name statements"
                    );
                }
            })
        })
        .expect("spawn")
        .join()
        .expect("the analyzer must not panic");
    assert!(report.cases > 100, "ran only {} cases", report.cases);
}
