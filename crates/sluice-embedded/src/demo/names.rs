//! Fake personal data for the demo's customers.
//!
//! Every value looks real enough for masking policies to have something to
//! act on, yet none can belong to anyone: SSN areas 900–999 are never
//! issued, card numbers use the payment networks' test prefixes, phone
//! numbers sit in the 555-01NN block reserved for fiction, and mail goes to
//! the reserved `example.com` / `example.org` domains.

use std::fmt::Write;

use super::rng::Rng;

const FIRST_NAMES: &[&str] = &[
    "Ada", "Alan", "Alice", "Amara", "Arjun", "Beatriz", "Bob", "Carmen", "Chen", "Dana", "Diego",
    "Elena", "Emeka", "Farah", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jamal", "Jonas", "Kofi",
    "Lena", "Liam", "Maya", "Mei", "Nadia", "Noah", "Olga", "Omar", "Priya", "Quinn", "Rosa",
    "Sam", "Sofia", "Tariq", "Uma", "Victor", "Wen", "Yara", "Yusuf", "Zoe",
];

const LAST_NAMES: &[&str] = &[
    "Abara",
    "Berg",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Mensah",
    "Novak",
    "Okafor",
    "Petrov",
    "Quispe",
    "Rossi",
    "Sato",
    "Tanaka",
    "Urquhart",
    "Varga",
    "Walker",
    "Xu",
    "Yilmaz",
    "Zhang",
    "Moreau",
    "Nakamura",
    "Oliveira",
    "Park",
    "Singh",
    "Santos",
    "Keller",
    "Lopez",
    "Murphy",
    "Nguyen",
    "Brennan",
    "Costa",
];

const STREETS: &[&str] = &[
    "Maple", "Oak", "Cedar", "Pine", "Elm", "Willow", "Lake", "Hill", "Park", "River", "Sunset",
    "Meadow", "Harbor", "Forest", "Spring", "Mill",
];

const STREET_KINDS: &[&str] = &["St", "Ave", "Rd", "Ln", "Blvd", "Way", "Ct", "Dr"];

/// A city, its state, and the first three digits of its ZIP codes, so the
/// generated ZIPs at least start where the city's do.
const CITIES: &[(&str, &str, u32)] = &[
    ("Springfield", "IL", 627),
    ("Portland", "OR", 972),
    ("Austin", "TX", 787),
    ("Madison", "WI", 537),
    ("Burlington", "VT", 54),
    ("Boulder", "CO", 803),
    ("Savannah", "GA", 314),
    ("Ann Arbor", "MI", 481),
    ("Durham", "NC", 277),
    ("Tucson", "AZ", 857),
    ("Spokane", "WA", 992),
    ("Albany", "NY", 122),
    ("Richmond", "VA", 232),
    ("Omaha", "NE", 681),
    ("Fresno", "CA", 937),
    ("Providence", "RI", 29),
];

/// Test-card prefixes (Visa and Mastercard documentation numbers start
/// this way), so a reader recognises the numbers as fake at a glance.
const CARD_PREFIXES: &[&str] = &["400000", "411111", "555555", "222300"];

/// A customer's name, split so the email can be built from the same parts.
pub(super) struct PersonName {
    pub first: &'static str,
    pub last: &'static str,
}

pub(super) fn person_name(rng: &mut Rng) -> PersonName {
    PersonName {
        first: rng.pick(FIRST_NAMES),
        last: rng.pick(LAST_NAMES),
    }
}

/// `first.last.N@example.com`: the customer id keeps every address unique
/// although names repeat.
pub(super) fn email(out: &mut String, name: &PersonName, customer_id: i64, rng: &mut Rng) {
    let domain = if rng.percent(80) {
        "example.com"
    } else {
        "example.org"
    };
    out.clear();
    for part in [name.first, ".", name.last] {
        out.extend(part.chars().map(|c| c.to_ascii_lowercase()));
    }
    // Writing into a `String` cannot fail.
    let _ = write!(out, ".{customer_id}@{domain}");
}

/// `9NN-NN-NNNN`: area numbers 900–999 are never issued.
pub(super) fn ssn(out: &mut String, rng: &mut Rng) {
    out.clear();
    let _ = write!(
        out,
        "{:03}-{:02}-{:04}",
        rng.range(900, 999),
        rng.range(1, 99),
        rng.range(1, 9999)
    );
}

/// Sixteen digits on a test prefix, ending in the Luhn check digit, so
/// card-number detectors that validate the checksum still fire.
pub(super) fn card_number(out: &mut String, rng: &mut Rng) {
    out.clear();
    out.push_str(rng.pick(CARD_PREFIXES));
    while out.len() < 15 {
        out.push(char::from(b'0' + rng.below(10) as u8));
    }
    out.push(char::from(b'0' + luhn_check_digit(out.as_bytes())));
}

/// The digit that makes `payload` followed by it pass the Luhn check:
/// counting from the right of the payload, every first, third, … digit is
/// doubled, because the check digit itself will take the rightmost place.
fn luhn_check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
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

/// `+1-555-01NN`: the block the North American numbering plan keeps for
/// fiction.
pub(super) fn phone(out: &mut String, rng: &mut Rng) {
    out.clear();
    let _ = write!(out, "+1-555-01{:02}", rng.below(100));
}

/// The parts of a postal address, in the order of the `address` struct.
pub(super) struct Address {
    pub street: String,
    pub city: &'static str,
    pub state: &'static str,
    pub zip: String,
}

pub(super) fn address(rng: &mut Rng) -> Address {
    let street = format!(
        "{} {} {}",
        rng.range(1, 9999),
        rng.pick(STREETS),
        rng.pick(STREET_KINDS)
    );
    let (city, state, zip3) = rng.pick(CITIES);
    Address {
        street,
        city,
        state,
        zip: format!("{zip3:03}{:02}", rng.below(100)),
    }
}
