//! False positives on the demo's non-sensitive columns, and detection on
//! its sensitive ones.
//!
//! Every non-sensitive column's whole value domain (or, for the largest,
//! a dense sample) is rendered as BigQuery's REST JSON renders it — every
//! scalar a string — and scanned by every detector, whatever the
//! column's type: a cast to STRING must not turn a date or an amount
//! into a "phone number". The goal is zero matches.
//!
//! cargo nextest run --workspace -E 'test(false_positive)' --no-capture

use std::collections::BTreeMap;

use sluice_mask::Detectors;

use crate::demo::{self, NAMES_RS, TABLES_RS, strings};
use crate::rng::Rng;

/// 2020-01-01 and 2025-12-31 as days since the epoch (the demo's range).
const FIRST_DAY: i64 = 18_262;
const LAST_DAY: i64 = 20_453;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Timestamp cells in both REST renderings: int64 microseconds and float
/// seconds.
fn timestamps(rng: &mut Rng, per_day: usize) -> Vec<String> {
    let mut out = Vec::new();
    for day in FIRST_DAY..=LAST_DAY {
        for _ in 0..per_day {
            let micros = day * MICROS_PER_DAY + rng.range(0, MICROS_PER_DAY as u64 - 1) as i64;
            out.push(micros.to_string());
            out.push(format!("{:E}", micros as f64 / 1e6));
        }
    }
    out
}

fn cents(range: std::ops::RangeInclusive<u64>) -> Vec<String> {
    range
        .map(|c| format!("{}.{:02}", c / 100, c % 100))
        .collect()
}

fn numbers(range: std::ops::RangeInclusive<u64>) -> Vec<String> {
    range.map(|n| n.to_string()).collect()
}

/// The non-sensitive columns, by `table.column`, with their values.
fn non_sensitive_columns() -> BTreeMap<&'static str, Vec<String>> {
    let mut rng = Rng::new(0x5EED_FA15_E000_0001);
    let first = strings(NAMES_RS, "FIRST_NAMES");
    let last = strings(NAMES_RS, "LAST_NAMES");
    let dates: Vec<String> = (FIRST_DAY..=LAST_DAY).map(demo::date).collect();
    let mut columns = BTreeMap::new();
    columns.insert("customers.customer_id", numbers(1..=10_000));
    columns.insert(
        "customers.name",
        first
            .iter()
            .flat_map(|f| last.iter().map(move |l| format!("{f} {l}")))
            .collect(),
    );
    columns.insert("customers.signup_date", dates.clone());
    columns.insert("customers.created_at", timestamps(&mut rng, 10));
    columns.insert("customers.lifetime_value", cents(0..=500_000));
    columns.insert("customers.tags", strings(TABLES_RS, "TAGS"));
    columns.insert("customers.is_active", vec!["true".into(), "false".into()]);
    columns.insert("orders.order_id", numbers(1..=100_000));
    columns.insert("orders.order_date", dates);
    columns.insert("orders.status", strings(TABLES_RS, "ORDER_STATUSES"));
    columns.insert("orders.amount", cents(199..=199_990));
    columns.insert("orders.currency", vec!["USD".into()]);
    columns.insert("orders.items", numbers(1..=10));
    columns.insert("orders.created_at", timestamps(&mut rng, 10));
    columns.insert("events.event_id", numbers(1..=1_000_000));
    columns.insert("events.event_type", strings(TABLES_RS, "EVENT_TYPES"));
    let mut pages: Vec<String> = (1..=500).map(|p| format!("/products/{p}")).collect();
    pages.extend(strings(TABLES_RS, "SITE_PAGES"));
    pages.extend(["/search".into(), "/checkout/complete".into()]);
    columns.insert("events.page", pages);
    columns.insert("events.event_time", timestamps(&mut rng, 40));
    columns.insert("events.device", strings(TABLES_RS, "DEVICES"));
    columns.insert("events.country", strings(TABLES_RS, "COUNTRIES"));
    columns.insert("events.duration_ms", numbers(50..=120_050));
    columns.insert(
        "events.revenue",
        (500..=50_000)
            .map(|c| format!("{}", c as f64 / 100.0))
            .collect(),
    );
    columns
}

/// The address fields: sensitive in the demo's plan (masked by column),
/// but nothing in them is a detector's class, so detectors must not fire.
fn address_columns() -> BTreeMap<&'static str, Vec<String>> {
    let streets = strings(NAMES_RS, "STREETS");
    let kinds = strings(NAMES_RS, "STREET_KINDS");
    let cities = demo::cities();
    let mut columns = BTreeMap::new();
    let mut street = Vec::new();
    for n in 1..=9999 {
        for s in &streets {
            for k in &kinds {
                street.push(format!("{n} {s} {k}"));
            }
        }
    }
    columns.insert("customers.address.street", street);
    columns.insert(
        "customers.address.city",
        cities.iter().map(|c| c.0.clone()).collect(),
    );
    columns.insert(
        "customers.address.state",
        cities.iter().map(|c| c.1.clone()).collect(),
    );
    columns.insert(
        "customers.address.zip",
        cities
            .iter()
            .flat_map(|c| (0..100).map(move |n| format!("{:03}{n:02}", c.2)))
            .collect(),
    );
    columns
}

/// Scans every value; the values any detector matched, by column.
fn matched(columns: &BTreeMap<&'static str, Vec<String>>) -> (usize, Vec<String>) {
    let detectors = Detectors::all();
    let mut scanned = 0;
    let mut hits = Vec::new();
    for (column, values) in columns {
        for value in values {
            scanned += 1;
            for m in detectors.scan(value) {
                hits.push(format!("{column}: {value:?} as {}", m.class));
            }
        }
    }
    (scanned, hits)
}

#[test]
fn false_positives_on_non_sensitive_demo_columns_are_zero() {
    let (scanned, hits) = matched(&non_sensitive_columns());
    println!(
        "non-sensitive demo columns: {scanned} values scanned, {} matched",
        hits.len()
    );
    assert!(scanned > 2_000_000, "the measurement covers the domains");
    assert!(hits.is_empty(), "false positives: {hits:#?}");
}

#[test]
fn false_positives_on_demo_addresses_are_zero() {
    let (scanned, hits) = matched(&address_columns());
    println!(
        "demo address fields: {scanned} values scanned, {} matched",
        hits.len()
    );
    assert!(hits.is_empty(), "false positives: {hits:#?}");
}

#[test]
fn every_sensitive_demo_value_is_detected() {
    let detectors = Detectors::all();
    let mut rng = Rng::new(0xD3_7EC7);
    let mut values = Vec::new();
    for id in 1..=2_000 {
        values.push(("us_ssn", demo::ssn(&mut rng)));
        values.push(("credit_card", demo::card(&mut rng)));
        values.push(("email", demo::email(&mut rng, id)));
    }
    for n in 0..100 {
        values.push(("phone", format!("+1-555-01{n:02}")));
    }
    for (class, value) in &values {
        let found = detectors.scan(value);
        assert_eq!(found.len(), 1, "{class} {value:?}");
        assert_eq!(found[0].class.name(), *class, "{value:?}");
        assert_eq!(
            (found[0].start, found[0].end),
            (0, value.len()),
            "{value:?}"
        );
    }
    println!(
        "sensitive demo values: {} detected of {}",
        values.len(),
        values.len()
    );
}
