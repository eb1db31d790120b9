//! Time to analyze and decide realistic agent queries, against sqlparser's
//! bare parse of the same text measured in the same run.
//!
//! cargo bench -p sluice-policy --bench analyze_decide --profile dev

use std::hint::black_box;
use std::time::{Duration, Instant};

use sluice_policy::{Estimate, PolicySet, RawGuardrails, RawPolicy, Who};
use sluice_sql::{Defaults, LineageOptions, TableName, analyze, lineage};
use sqlparser::dialect::BigQueryDialect;
use sqlparser::parser::Parser;

/// Queries the way agents write them against an analytics dataset.
const QUERIES: &[&str] = &[
    "SELECT id, name, email FROM `demo.shop.customers` WHERE id < 100",
    "SELECT COUNT(*) AS n FROM demo.shop.orders",
    "SELECT customer_id, SUM(amount) AS total FROM demo.shop.orders GROUP BY customer_id ORDER BY total DESC LIMIT 20",
    "SELECT DATE_TRUNC(DATE(ts), MONTH) AS month, COUNTIF(kind = 'purchase') AS purchases, SAFE_DIVIDE(COUNTIF(kind = 'purchase'), COUNT(*)) AS rate FROM demo.shop.events GROUP BY month ORDER BY month",
    "WITH recent AS (SELECT * FROM demo.shop.orders WHERE ordered_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 30 DAY)), top AS (SELECT customer_id, COUNT(*) AS n FROM recent GROUP BY customer_id) SELECT c.name, t.n FROM top AS t JOIN demo.shop.customers AS c ON c.id = t.customer_id ORDER BY t.n DESC LIMIT 10",
    "SELECT * EXCEPT(ssn, card_number) FROM demo.shop.customers WHERE state IN ('CA', 'NY') QUALIFY ROW_NUMBER() OVER (PARTITION BY state ORDER BY id) <= 5",
    "SELECT o.id, o.amount, c.email FROM demo.shop.orders o LEFT JOIN demo.shop.customers c USING (id) WHERE o.amount > @min_amount AND c.state = @state",
    "SELECT kind, APPROX_QUANTILES(value, 4) AS q, ARRAY_AGG(STRUCT(id, ts) ORDER BY ts DESC LIMIT 3) AS latest FROM demo.shop.events WHERE ts BETWEEN @start AND @end GROUP BY kind",
    "SELECT table_name, column_name, data_type FROM demo.shop.INFORMATION_SCHEMA.COLUMNS WHERE table_name = 'orders'",
    "SELECT e.kind, EXTRACT(HOUR FROM e.ts) AS hour, COUNT(DISTINCT e.customer_id) AS users FROM demo.shop.events AS e, UNNEST([1, 2, 3]) AS x WHERE x = 1 GROUP BY 1, 2 HAVING users > 10 ORDER BY 3 DESC",
    "SELECT FORMAT_DATE('%Y-%m', DATE(ordered_at)) AS ym, IFNULL(SUM(amount), 0) AS revenue, LAG(SUM(amount)) OVER (ORDER BY FORMAT_DATE('%Y-%m', DATE(ordered_at))) AS previous FROM demo.shop.orders GROUP BY ym",
    "SELECT id FROM demo.shop.customers WHERE id IN (SELECT customer_id FROM demo.shop.orders WHERE amount > (SELECT AVG(amount) FROM demo.shop.orders))",
];

const POLICIES: &str = r#"
- name: agents-read-shop
  who: { groups: [agents] }
  allow:
    read: ["demo.shop"]
    statements: [select]
  limits: { max_bytes_billed: 1GiB, max_rows: 1000000 }
- name: admins
  who: { groups: [admins] }
  allow:
    read: ["demo"]
    write: ["demo"]
    statements: [select, dml, create, script]
"#;

const GUARDRAILS: &[&str] = &[
    "drop",
    "alter",
    "truncate",
    "grant",
    "revoke",
    "delete_without_where",
    "update_without_where",
    "export_data",
    "load_data",
    "dynamic_sql",
    "external_query",
    "javascript_udf",
    "call",
];

const ROUNDS: u32 = 7;
const PASSES_PER_ROUND: u32 = 200;

fn main() {
    let policies: Vec<RawPolicy> = serde_saphyr::from_str(POLICIES).expect("policies");
    let guardrails = RawGuardrails {
        deny: GUARDRAILS.iter().map(|g| g.to_string()).collect(),
    };
    let set = PolicySet::build(&policies, &guardrails).expect("a valid policy set");
    let groups = vec!["agents".to_string()];
    let who = Who {
        name: "bench-agent",
        groups: &groups,
        issuer: "",
    };
    let defaults = Defaults {
        project: "demo".into(),
        dataset: Some("shop".into()),
    };
    let estimate = Estimate {
        bytes_processed: 10 << 20,
    };
    // Every query parses and is allowed: the bench measures the path a
    // permitted query takes, not an early refusal.
    for sql in QUERIES {
        Parser::parse_sql(&BigQueryDialect, sql).expect("parses");
        let facts = analyze(sql, &defaults);
        let decision = set.decide(&who, &facts, Some(&estimate));
        assert!(decision.is_allowed(), "{sql}: {}", decision.message);
    }

    // The demo tables' columns, as the gateway hands them to lineage.
    let columns = |table: &TableName| -> Option<Vec<String>> {
        let names: &[&str] = match table.table.as_str() {
            "customers" => &[
                "id",
                "name",
                "email",
                "ssn",
                "card_number",
                "phone",
                "address",
                "state",
            ],
            "orders" => &["id", "customer_id", "amount", "ordered_at"],
            "events" => &["id", "customer_id", "kind", "value", "ts"],
            _ => return None,
        };
        Some(names.iter().map(|n| n.to_string()).collect())
    };
    let options = LineageOptions {
        counting_aggregates: vec!["COUNT".into()],
    };
    for sql in QUERIES {
        let traced = lineage(sql, &defaults, &columns, &options);
        assert!(
            traced.columns.is_some() || sql.contains("INFORMATION_SCHEMA"),
            "{sql}: {:?}",
            traced.reasons
        );
    }

    let mut parse = Vec::new();
    let mut full = Vec::new();
    let mut traced = Vec::new();
    for _ in 0..ROUNDS {
        parse.push(time(|| {
            for sql in QUERIES {
                black_box(Parser::parse_sql(&BigQueryDialect, black_box(sql)).unwrap());
            }
        }));
        full.push(time(|| {
            for sql in QUERIES {
                let facts = analyze(black_box(sql), &defaults);
                // The gateway decides twice: on the facts, then with the estimate.
                black_box(set.decide(&who, &facts, None));
                black_box(set.decide(&who, &facts, Some(&estimate)));
            }
        }));
        traced.push(time(|| {
            for sql in QUERIES {
                black_box(lineage(black_box(sql), &defaults, &columns, &options));
            }
        }));
    }
    let per_query =
        |d: Duration| d.as_secs_f64() * 1e6 / f64::from(PASSES_PER_ROUND) / QUERIES.len() as f64;
    let parse = median(parse);
    let full = median(full);
    let traced = median(traced);
    println!(
        "{} realistic queries, median of {ROUNDS} rounds of {PASSES_PER_ROUND} passes",
        QUERIES.len()
    );
    println!("| step | per query | ratio |");
    println!("|---|---|---|");
    println!(
        "| sqlparser parse (baseline) | {:.1} µs | 1.00 |",
        per_query(parse)
    );
    println!(
        "| analyze + decide twice | {:.1} µs | **{:.2}** |",
        per_query(full),
        full.as_secs_f64() / parse.as_secs_f64()
    );
    println!(
        "| lineage (parse + follow every output column) | {:.1} µs | **{:.2}** |",
        per_query(traced),
        traced.as_secs_f64() / parse.as_secs_f64()
    );
}

fn time(mut pass: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..PASSES_PER_ROUND {
        pass();
    }
    start.elapsed()
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}
