//! Property-style checks over seeded random values: whatever strategy
//! masks an SSN, a card number or an e-mail address — by column or by
//! detector, inside text or alone — the output holds neither the value
//! nor a simple transform of it; and pseudonyms are keyed functions.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sluice_mask::schema::FieldMode;
use sluice_mask::strategy::apply;
use sluice_mask::{
    ColumnMask, Detectors, FieldSchema, FieldType, MaskPlan, MaskedCell, PageMasker, PseudonymKey,
    Strategy,
};

use crate::demo;
use crate::rng::Rng;

const CASES: usize = 2_000;

fn key(seed: u8) -> PseudonymKey {
    let bytes: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(31) ^ seed).collect();
    PseudonymKey::new(&bytes).expect("32 bytes")
}

/// The forms of `value` that must never appear in masked output.
fn forbidden_forms(value: &str) -> Vec<String> {
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    let mut forms = vec![
        value.to_string(),
        value.chars().rev().collect(),
        value.to_uppercase(),
        value.to_lowercase(),
        STANDARD.encode(value),
        hex(value.as_bytes()),
        hex(value.as_bytes()).to_uppercase(),
    ];
    if digits.len() >= 9 {
        forms.push(digits.chars().rev().collect());
        forms.push(digits);
    }
    forms
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn assert_clean(output: &str, value: &str, how: &str) {
    for form in forbidden_forms(value) {
        assert!(
            !output.contains(&form),
            "{how}: output {output:?} holds {form:?} (a form of {value:?})"
        );
    }
}

fn email(rng: &mut Rng) -> String {
    const LOCAL: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789._+-";
    let mut local = String::new();
    for i in 0..rng.range(3, 20) {
        let c = *rng.pick(LOCAL);
        // Keep the local part valid: letters at the ends, no dot pairs.
        let c = if i == 0 || matches!(c, b'.' | b'+' | b'-' | b'_') && local.ends_with('.') {
            b'a' + (rng.range(0, 25) as u8)
        } else {
            c
        };
        local.push(char::from(c));
    }
    local.push('z');
    let domain = rng.pick(&["example.com", "mail.example.org", "corp.example.co.uk"]);
    format!("{local}@{domain}")
}

fn ssn(rng: &mut Rng) -> String {
    let area = loop {
        let a = rng.range(1, 999);
        if a != 666 {
            break a;
        }
    };
    let sep = rng.pick(&["-", " "]);
    format!(
        "{area:03}{sep}{:02}{sep}{:04}",
        rng.range(1, 99),
        rng.range(1, 9999)
    )
}

fn spaced_card(rng: &mut Rng) -> String {
    let card = demo::any_card(rng);
    if card.len() != 16 || rng.range(0, 2) == 0 {
        return card;
    }
    let sep = rng.pick(&[" ", "-"]);
    let groups: Vec<&str> = (0..4).map(|g| &card[g * 4..g * 4 + 4]).collect();
    groups.join(sep)
}

/// Texts a value might hide in.
fn contexts(value: &str) -> [String; 4] {
    [
        value.to_string(),
        format!("note: {value} end"),
        format!("({value})"),
        format!("a, {value}. b"),
    ]
}

const SPAN_STRATEGIES: [Strategy; 6] = [
    Strategy::Redact,
    Strategy::Null,
    Strategy::Last4,
    Strategy::First4,
    Strategy::EmailDomain,
    Strategy::Year,
];

#[test]
fn detectors_leave_no_form_of_ssns_cards_or_emails() {
    let mut rng = Rng::new(0x1EA4_A6E5);
    let detectors = Detectors::all();
    let k = key(1);
    let mut strategies = SPAN_STRATEGIES.to_vec();
    strategies.push(Strategy::Pseudonym {
        context: String::new(),
    });
    for _ in 0..CASES {
        let values = [ssn(&mut rng), spaced_card(&mut rng), email(&mut rng)];
        for value in &values {
            for text in contexts(value) {
                for strategy in &strategies {
                    let out = detectors
                        .mask_text(&text, strategy, Some(&k))
                        .expect("masks");
                    assert_clean(&out, value, &format!("detector, {strategy}"));
                }
            }
        }
    }
}

#[test]
fn column_strategies_leave_no_form_of_the_value() {
    let mut rng = Rng::new(0xC01_0403);
    let k = key(2);
    let strategies = [
        Strategy::Redact,
        Strategy::Null,
        Strategy::Last4,
        Strategy::First4,
        Strategy::Year,
        Strategy::Pseudonym {
            context: "col".into(),
        },
    ];
    for _ in 0..CASES {
        let mut values = vec![ssn(&mut rng), spaced_card(&mut rng), email(&mut rng)];
        values.push(values[0].replace(['-', ' '], ""));
        for value in &values {
            for strategy in &strategies {
                let out =
                    apply(strategy, value, FieldType::String, None, Some(&k)).expect("applies");
                if let MaskedCell::Text(out) = out {
                    assert_clean(&out, value, &format!("column, {strategy}"));
                }
            }
        }
        let address = &values[2];
        let out = apply(
            &Strategy::EmailDomain,
            address,
            FieldType::String,
            None,
            None,
        )
        .expect("applies");
        let MaskedCell::Text(out) = out else {
            panic!("email_domain on text renders text");
        };
        assert_clean(&out, address, "column, email_domain");
    }
}

#[test]
fn a_masked_page_holds_no_form_of_its_sensitive_values() {
    let mut rng = Rng::new(0x9A6E);
    let schema = vec![
        FieldSchema::new("ssn", FieldType::String, FieldMode::Nullable),
        FieldSchema::new("notes", FieldType::String, FieldMode::Nullable),
        FieldSchema::new("ssn_digits", FieldType::Integer, FieldMode::Nullable),
    ];
    let plan = MaskPlan {
        columns: vec![
            ColumnMask {
                column: "ssn".into(),
                strategy: Strategy::Pseudonym {
                    context: "us_ssn".into(),
                },
                class: Some("us_ssn".into()),
            },
            ColumnMask {
                column: "ssn_digits".into(),
                strategy: Strategy::Pseudonym {
                    context: "us_ssn".into(),
                },
                class: Some("us_ssn".into()),
            },
        ],
        detect: Some(Strategy::Redact),
    };
    let k = key(3);
    let masker = PageMasker::new(&schema, &plan, Detectors::all(), Some(&k)).expect("plan");
    let mut values = Vec::new();
    let rows: Vec<_> = (0..CASES)
        .map(|_| {
            let (s, card, mail) = (ssn(&mut rng), spaced_card(&mut rng), email(&mut rng));
            let digits: String = s.chars().filter(char::is_ascii_digit).collect();
            let row = json!({"f": [
                {"v": s},
                {"v": format!("paid with {card}, mail {mail}")},
                {"v": digits.trim_start_matches('0')},
            ]});
            values.extend([s, card, mail]);
            serde_json::value::to_raw_value(&row).expect("raw")
        })
        .collect();
    let page = masker.mask_page(rows).expect("masks");
    let body: String = page.rows.iter().map(|r| r.get()).collect();
    for value in &values {
        assert_clean(&body, value, "page");
    }
    assert_eq!(page.counts.get("ssn", "us_ssn"), CASES as u64);
    assert_eq!(page.counts.get("notes", "credit_card"), CASES as u64);
    assert_eq!(page.counts.get("notes", "email"), CASES as u64);
}

#[test]
fn pseudonyms_are_deterministic_per_key_and_differ_across_keys() {
    let mut rng = Rng::new(0x95E0);
    let (a, a_again, b) = (key(10), key(10), key(11));
    let mut seen = std::collections::HashSet::new();
    for _ in 0..CASES {
        let value = ssn(&mut rng);
        let p = a.text("us_ssn", &value);
        assert_eq!(p, a_again.text("us_ssn", &value), "same key, same value");
        assert_ne!(p, b.text("us_ssn", &value), "another key");
        assert_ne!(p, a.text("email", &value), "another context");
        seen.insert((value, p));
        let n = rng.next_u64().to_string();
        assert_eq!(a.integer("id", &n), a_again.integer("id", &n));
        assert_ne!(a.integer("id", &n), b.integer("id", &n));
    }
    // Distinct values, distinct pseudonyms (no collision in the sample).
    let values: std::collections::HashSet<_> = seen.iter().map(|(v, _)| v).collect();
    let pseudonyms: std::collections::HashSet<_> = seen.iter().map(|(_, p)| p).collect();
    assert_eq!(values.len(), pseudonyms.len());
}

#[test]
fn a_pseudonymized_key_still_joins() {
    // The same customer id pseudonymized in two results (two pages, two
    // maskers) under the same context gives the same value.
    let schema = vec![FieldSchema::new(
        "customer_id",
        FieldType::Integer,
        FieldMode::Nullable,
    )];
    let plan = MaskPlan {
        columns: vec![ColumnMask {
            column: "customer_id".into(),
            strategy: Strategy::Pseudonym {
                context: "customer".into(),
            },
            class: None,
        }],
        detect: None,
    };
    let k = key(4);
    let run = |id: &str| -> Value {
        let masker = PageMasker::new(&schema, &plan, Detectors::none(), Some(&k)).expect("plan");
        let row = serde_json::value::to_raw_value(&json!({"f": [{"v": id}]})).expect("raw");
        let page = masker.mask_page(vec![row]).expect("masks");
        serde_json::from_str::<Value>(page.rows[0].get()).expect("json")["f"][0]["v"].clone()
    };
    assert_eq!(run("4711"), run("4711"));
    assert_ne!(run("4711"), run("4712"));
}
