//! The demo's value domains, read from the demo generator's own source
//! (`sluice-embedded/src/demo/`), so these tests follow the demo when its
//! word lists change, without this crate depending on the embedded
//! warehouse.

use crate::rng::Rng;

pub const NAMES_RS: &str = include_str!("../../../sluice-embedded/src/demo/names.rs");
pub const TABLES_RS: &str = include_str!("../../../sluice-embedded/src/demo/tables.rs");

/// The body of `const NAME: … = [ … ];` in `source`.
fn const_body<'s>(source: &'s str, name: &str) -> &'s str {
    let start = source
        .find(&format!("const {name}:"))
        .unwrap_or_else(|| panic!("the demo source defines {name}"));
    let open = start + source[start..].find("= &[").expect("a slice") + 4;
    let close = open + source[open..].find("];").expect("the slice's end");
    &source[open..close]
}

/// The string literals of a `const` slice (for a weighted list, its
/// items; for a tuple list, every string of every tuple).
pub fn strings(source: &str, name: &str) -> Vec<String> {
    const_body(source, name)
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// `CITIES`: (city, state, first three ZIP digits).
pub fn cities() -> Vec<(String, String, u32)> {
    const_body(NAMES_RS, "CITIES")
        .split('(')
        .skip(1)
        .map(|tuple| {
            let tuple = tuple.split(')').next().expect("a tuple");
            let parts: Vec<&str> = tuple.split(',').map(str::trim).collect();
            (
                parts[0].trim_matches('"').to_string(),
                parts[1].trim_matches('"').to_string(),
                parts[2].parse().expect("a ZIP prefix"),
            )
        })
        .collect()
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01.
pub fn date(day: i64) -> String {
    let (mut y, mut d) = (1970i64, day);
    loop {
        let len = if is_leap(y) { 366 } else { 365 };
        if d < len {
            break;
        }
        d -= len;
        y += 1;
    }
    let mut m = 1;
    loop {
        let len = month_len(y, m);
        if d < len {
            break;
        }
        d -= len;
        m += 1;
    }
    format!("{y:04}-{m:02}-{:02}", d + 1)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn month_len(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// An SSN as the demo makes them: area 900–999.
pub fn ssn(rng: &mut Rng) -> String {
    format!(
        "{:03}-{:02}-{:04}",
        rng.range(900, 999),
        rng.range(1, 99),
        rng.range(1, 9999)
    )
}

/// A card number as the demo makes them: a test prefix, random digits,
/// the Luhn check digit.
pub fn card(rng: &mut Rng) -> String {
    let prefixes = strings(NAMES_RS, "CARD_PREFIXES");
    let mut out = rng.pick(&prefixes).clone();
    while out.len() < 15 {
        out.push(char::from(b'0' + rng.range(0, 9) as u8));
    }
    out.push(char::from(b'0' + luhn_check_digit(&out)));
    out
}

/// Any card: a network prefix, length, and the Luhn check digit.
pub fn any_card(rng: &mut Rng) -> String {
    let (prefix, len) = *rng.pick(&[
        ("4", 16),
        ("4", 13),
        ("51", 16),
        ("55", 16),
        ("2221", 16),
        ("2720", 16),
        ("34", 15),
        ("37", 15),
        ("6011", 16),
        ("65", 19),
        ("3530", 16),
    ]);
    let mut out = prefix.to_string();
    while out.len() < len - 1 {
        out.push(char::from(b'0' + rng.range(0, 9) as u8));
    }
    out.push(char::from(b'0' + luhn_check_digit(&out)));
    out
}

pub fn luhn_check_digit(payload: &str) -> u8 {
    let sum: u32 = payload
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// An e-mail address as the demo makes them.
pub fn email(rng: &mut Rng, customer_id: u64) -> String {
    let first = strings(NAMES_RS, "FIRST_NAMES");
    let last = strings(NAMES_RS, "LAST_NAMES");
    let domain = if rng.range(0, 99) < 80 {
        "example.com"
    } else {
        "example.org"
    };
    format!(
        "{}.{}.{customer_id}@{domain}",
        rng.pick(&first).to_lowercase(),
        rng.pick(&last).to_lowercase()
    )
}
