//! IBANs: a country code, two check digits and the national account
//! number, either in one run or printed in groups of four; the length must
//! be the country's and the ISO 7064 mod-97 check must hold.

use super::text::digit;
use super::{Class, Match};

/// IBAN lengths by country (the IBAN registry's SEPA and common non-SEPA
/// countries). A country not listed is not matched: guessing its length
/// would only add false positives.
const LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
];

fn country_length(code: &[u8]) -> Option<usize> {
    LENGTHS
        .iter()
        .find(|(c, _)| c.as_slice() == code)
        .map(|(_, len)| *len)
}

fn iban_char(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

pub(super) fn find(b: &[u8], found: &mut Vec<Match>) {
    let mut compact = [0u8; 34];
    let mut i = 0;
    while i + 4 <= b.len() {
        let head = &b[i..i + 4];
        let starts = head[0].is_ascii_uppercase()
            && head[1].is_ascii_uppercase()
            && head[2].is_ascii_digit()
            && head[3].is_ascii_digit()
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric());
        let Some(len) = starts.then(|| country_length(&head[..2])).flatten() else {
            i += 1;
            continue;
        };
        if let Some(end) = read(b, i, len, &mut compact)
            && mod97(&compact[..len])
        {
            found.push(Match {
                start: i,
                end,
                class: Class::Iban,
            });
            i = end;
        } else {
            i += 1;
        }
    }
}

/// Reads `len` IBAN characters from `start`, either in one run or in
/// groups of four separated by single spaces; the end, if the text holds
/// exactly that many and then stops.
fn read(b: &[u8], start: usize, len: usize, out: &mut [u8; 34]) -> Option<usize> {
    // Runs are counted only as far as an IBAN can reach, so a long run of
    // capitals and digits is not re-read from every position in it.
    let run = b[start..]
        .iter()
        .take(35)
        .take_while(|c| iban_char(**c))
        .count();
    if run == len {
        out[..len].copy_from_slice(&b[start..start + len]);
        return Some(start + len);
    }
    if run != 4 {
        return None;
    }
    // Printed form: "DE89 3704 0044 0532 0130 00".
    let mut n = 0;
    let mut j = start;
    loop {
        let group = b[j..].iter().take(5).take_while(|c| iban_char(**c)).count();
        if group == 0 || group > 4 || n + group > len {
            return None;
        }
        out[n..n + group].copy_from_slice(&b[j..j + group]);
        n += group;
        j += group;
        if n == len {
            let glued = b.get(j).is_some_and(|c| c.is_ascii_alphanumeric());
            return (!glued).then_some(j);
        }
        if group != 4 || b.get(j) != Some(&b' ') {
            return None;
        }
        j += 1;
    }
}

/// ISO 7064 mod 97-10: the first four characters moved to the end,
/// letters as 10–35, the number modulo 97 must be 1.
fn mod97(iban: &[u8]) -> bool {
    let mut rem = 0u32;
    for &c in iban[4..].iter().chain(&iban[..4]) {
        rem = if c.is_ascii_digit() {
            (rem * 10 + digit(c)) % 97
        } else {
            (rem * 100 + u32::from(c - b'A') + 10) % 97
        };
    }
    rem == 1
}
