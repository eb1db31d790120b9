//! Masking throughput on result pages shaped like the demo's `customers`,
//! against serde_json's parse-and-serialize of the same pages measured in
//! the same run.
//!
//! cargo bench --workspace --bench mask_pages --profile dev

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use serde_json::{Value, json};
use sluice_mask::schema::FieldMode::{Nullable, Repeated, Required};
use sluice_mask::{
    ColumnMask, Detectors, FieldSchema, FieldType, MaskPlan, PageMasker, PseudonymKey, Strategy,
};

const ROWS: usize = 100_000;
/// Rows per page: about 3 MB of JSON, under the gateway's 10 MiB pages.
const PAGE_ROWS: usize = 10_000;
const ROUNDS: usize = 5;

const FIRST: &[&str] = &[
    "Ada", "Alan", "Beatriz", "Chen", "Emeka", "Zoë", "Yusuf", "Priya",
];
const LAST: &[&str] = &[
    "Abara",
    "Berg",
    "Castillo",
    "Okafor",
    "Lindqvist",
    "Nakamura",
];
const STREETS: &[&str] = &["Maple", "Oak", "Cedar", "Harbor", "Willow"];
const CITIES: &[(&str, &str)] = &[("Springfield", "IL"), ("Portland", "OR"), ("Austin", "TX")];
const TAGS: &[&str] = &["vip", "newsletter", "churn_risk"];

/// SplitMix64, so the pages are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn card(rng: &mut Rng) -> String {
    let mut digits: Vec<u32> = vec![4, 1, 1, 1, 1, 1];
    while digits.len() < 15 {
        digits.push(rng.below(10) as u32);
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| match (i % 2, d * 2) {
            // The check digit will take the rightmost place: from the
            // right of the payload, every first, third, … digit doubles.
            (0, doubled) if doubled > 9 => doubled - 9,
            (0, doubled) => doubled,
            _ => *d,
        })
        .sum();
    digits.push((10 - sum % 10) % 10);
    digits.iter().map(|d| char::from(b'0' + *d as u8)).collect()
}

fn schema() -> Vec<FieldSchema> {
    let s = |n: &str, t| FieldSchema::new(n, t, Nullable);
    vec![
        FieldSchema::new("customer_id", FieldType::Integer, Required),
        s("name", FieldType::String),
        s("email", FieldType::String),
        s("ssn", FieldType::String),
        s("card_number", FieldType::String),
        s("phone", FieldType::String),
        FieldSchema::record(
            "address",
            Nullable,
            ["street", "city", "state", "zip"]
                .map(|n| s(n, FieldType::String))
                .to_vec(),
        ),
        s("signup_date", FieldType::Date),
        s("created_at", FieldType::Timestamp),
        s("lifetime_value", FieldType::Numeric),
        FieldSchema::new("tags", FieldType::String, Repeated),
        s("is_active", FieldType::Boolean),
    ]
}

/// The customers as BigQuery REST rows, in pages.
fn pages() -> Vec<Vec<Box<RawValue>>> {
    let mut rng = Rng(0x5EED);
    let rows: Vec<Box<RawValue>> = (1..=ROWS as u64)
        .map(|id| {
            let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
            let (city, state) = CITIES[rng.below(CITIES.len() as u64) as usize];
            let tags: Vec<Value> = TAGS
                .iter()
                .filter(|_| rng.below(5) == 0)
                .map(|t| json!({ "v": t }))
                .collect();
            let row = json!({"f": [
                {"v": id.to_string()},
                {"v": format!("{first} {last}")},
                {"v": format!("{}.{}.{id}@example.com", first.to_lowercase(), last.to_lowercase())},
                {"v": format!("9{:02}-{:02}-{:04}", rng.below(100), 1 + rng.below(99), 1 + rng.below(9999))},
                {"v": card(&mut rng)},
                {"v": format!("+1-555-01{:02}", rng.below(100))},
                {"v": {"f": [
                    {"v": format!("{} {} St", 1 + rng.below(9999), rng.pick(STREETS))},
                    {"v": city},
                    {"v": state},
                    {"v": format!("{:05}", rng.below(100_000))},
                ]}},
                {"v": format!("20{:02}-{:02}-{:02}", 20 + rng.below(6), 1 + rng.below(12), 1 + rng.below(28))},
                {"v": (1_577_836_800_000_000 + rng.below(189_302_400_000_000)).to_string()},
                {"v": format!("{}.{:02}", rng.below(5000), rng.below(100))},
                {"v": tags},
                {"v": (rng.below(100) < 85).to_string()},
            ]});
            serde_json::value::to_raw_value(&row).expect("serializes")
        })
        .collect();
    rows.chunks(PAGE_ROWS).map(<[_]>::to_vec).collect()
}

fn mask(column: &str, strategy: Strategy, class: &str) -> ColumnMask {
    ColumnMask {
        column: column.into(),
        strategy,
        class: Some(class.into()),
    }
}

/// What lineage would decide for the demo's sensitive columns.
fn lineage_plan() -> MaskPlan {
    MaskPlan {
        columns: vec![
            mask("ssn", Strategy::Redact, "us_ssn"),
            mask("card_number", Strategy::Last4, "credit_card"),
            mask("email", Strategy::EmailDomain, "email"),
            mask("phone", Strategy::Redact, "phone"),
            mask("address", Strategy::Redact, "address"),
        ],
        detect: Some(Strategy::Redact),
    }
}

fn pseudonym_plan() -> MaskPlan {
    let p = |c: &str| Strategy::Pseudonym { context: c.into() };
    MaskPlan {
        columns: vec![
            mask("ssn", p("us_ssn"), "us_ssn"),
            mask("card_number", p("credit_card"), "credit_card"),
            mask("email", p("email"), "email"),
            mask("phone", p("phone"), "phone"),
            mask("address", p("address"), "address"),
        ],
        detect: Some(Strategy::Redact),
    }
}

fn detectors_only_plan() -> MaskPlan {
    MaskPlan {
        columns: vec![],
        detect: Some(Strategy::Redact),
    }
}

fn main() {
    let pages = pages();
    let bytes: usize = pages.iter().flatten().map(|r| r.get().len()).sum();
    let schema = schema();
    let key = PseudonymKey::new(&[0x5A; 32]).expect("key");
    let plans = [
        ("lineage masks + all detectors", lineage_plan()),
        ("pseudonyms + all detectors", pseudonym_plan()),
        (
            "all detectors on every string cell, no column masks",
            detectors_only_plan(),
        ),
    ];
    // Every plan masks what it should before it is timed.
    for (name, plan) in &plans {
        let masker = PageMasker::new(&schema, plan, Detectors::all(), Some(&key)).expect("plan");
        let page = masker.mask_page(pages[0].clone()).expect("masks");
        let ssns = page.counts.get("ssn", "us_ssn");
        assert_eq!(ssns, PAGE_ROWS as u64, "{name}: every ssn masked");
    }

    let mut baseline = Vec::new();
    let mut measured: Vec<Vec<Duration>> = vec![Vec::new(); plans.len()];
    for _ in 0..ROUNDS {
        baseline.push(time(&pages, |page| {
            for raw in page {
                let row: Value = serde_json::from_str(raw.get()).expect("json");
                black_box(serde_json::value::to_raw_value(&row).expect("serializes"));
            }
        }));
        for (i, (_, plan)) in plans.iter().enumerate() {
            measured[i].push(time(&pages, |page| {
                let masker =
                    PageMasker::new(&schema, plan, Detectors::all(), Some(&key)).expect("plan");
                black_box(masker.mask_page(page).expect("masks"));
            }));
        }
    }
    let mb_s = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    let baseline = median(baseline);
    println!(
        "{ROWS} customers rows in {} pages, {:.1} MB of REST JSON, median of {ROUNDS} rounds, one core",
        pages.len(),
        bytes as f64 / 1e6
    );
    println!("| pass | time | throughput | ratio to baseline |");
    println!("|---|---|---|---|");
    println!(
        "| serde_json parse + serialize (baseline) | {} ms | {:.0} MB/s | 1.00 |",
        baseline.as_millis(),
        mb_s(baseline)
    );
    for ((name, _), runs) in plans.iter().zip(measured) {
        let d = median(runs);
        println!(
            "| {name} | {} ms | {:.0} MB/s | **{:.2}** |",
            d.as_millis(),
            mb_s(d),
            mb_s(d) / mb_s(baseline)
        );
    }
}

/// The time to pass every page (a fresh copy, made untimed) through `f`.
fn time(pages: &[Vec<Box<RawValue>>], mut f: impl FnMut(Vec<Box<RawValue>>)) -> Duration {
    let copies: Vec<_> = pages.to_vec();
    let start = Instant::now();
    for page in copies {
        f(page);
    }
    start.elapsed()
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}
