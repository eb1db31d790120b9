//! Phone numbers, conservatively: only shapes people write phone numbers
//! in, never bare digit runs (which are ids, amounts and timestamps).
//!
//! - international: `+`, a country code, 8–15 digits in all (E.164),
//!   separated by single spaces, dashes, dots or one pair of parentheses;
//! - US: `(NNN) NNN-NNNN`, `NNN-NNN-NNNN`, `NNN.NNN.NNNN`, optionally
//!   after `1-`/`1.`, with NANP rules (area and exchange start 2–9);
//! - UK and German national: a leading `0`, a first group of 3–5 digits,
//!   then groups after spaces, `/` or `-`, 10–12 digits in all
//!   (`020 7946 0018`, `07700 900123`, `030/12345678`, `0171-1234567`).

use super::text::{digits_end, ends_number, starts_number};
use super::{Class, Match};

pub(super) fn find(b: &[u8], found: &mut Vec<Match>) {
    let mut i = 0;
    while i < b.len() {
        let candidate = match b[i] {
            b'+' => international(b, i),
            b'(' => us_parenthesized(b, i),
            b'0' if starts_number(b, i) => national(b, i),
            b'1'..=b'9' if starts_number(b, i) => us_plain(b, i),
            _ => None,
        };
        match candidate {
            Some(end) => {
                found.push(Match {
                    start: i,
                    end,
                    class: Class::Phone,
                });
                i = end;
            }
            None if b[i].is_ascii_digit() => i = digits_end(b, i),
            None => i += 1,
        }
    }
}

fn word_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || matches!(b[i - 1], b'_' | b'+'))
}

fn word_after(b: &[u8], j: usize) -> bool {
    b.get(j)
        .is_some_and(|n| n.is_ascii_alphanumeric() || *n == b'_')
}

/// `+` at `i`: the end of an E.164-shaped number, if one starts here.
fn international(b: &[u8], i: usize) -> Option<usize> {
    if word_before(b, i) || !matches!(b.get(i + 1), Some(b'1'..=b'9')) {
        return None;
    }
    let mut j = i + 1;
    let mut digits = 0;
    let mut last_digit_end = j;
    let mut seps_in_a_row = 0;
    let mut parens = 0;
    while j < b.len() {
        match b[j] {
            b'0'..=b'9' => {
                digits += 1;
                seps_in_a_row = 0;
                last_digit_end = j + 1;
            }
            b' ' | b'-' | b'.' | b'(' | b')' => {
                seps_in_a_row += 1;
                if b[j] == b'(' {
                    parens += 1;
                }
                // ") " is the most two separators ever stand together.
                if seps_in_a_row > 2 || parens > 1 {
                    break;
                }
            }
            _ => break,
        }
        j += 1;
    }
    let shaped = (8..=15).contains(&digits) && !word_after(b, last_digit_end);
    let ends_cleanly = !(matches!(b.get(last_digit_end), Some(b'.' | b'-'))
        && b.get(last_digit_end + 1).is_some_and(u8::is_ascii_digit));
    (shaped && ends_cleanly).then_some(last_digit_end)
}

fn nanp(area: &[u8], exchange: &[u8]) -> bool {
    matches!(area[0], b'2'..=b'9') && matches!(exchange[0], b'2'..=b'9')
}

/// A run of exactly `len` digits at `i`: its end.
fn group(b: &[u8], i: usize, len: usize) -> Option<usize> {
    let end = digits_end(b, i);
    (end - i == len).then_some(end)
}

/// `(NNN) NNN-NNNN` or `(NNN)NNN-NNNN` (the last separator may also be a
/// dot or a space).
fn us_parenthesized(b: &[u8], i: usize) -> Option<usize> {
    if word_before(b, i) {
        return None;
    }
    let area_end = group(b, i + 1, 3)?;
    if b.get(area_end) != Some(&b')') {
        return None;
    }
    let mut j = area_end + 1;
    if b.get(j) == Some(&b' ') {
        j += 1;
    }
    let exchange_end = group(b, j, 3)?;
    if !matches!(b.get(exchange_end), Some(b'-' | b'.' | b' ')) {
        return None;
    }
    let end = group(b, exchange_end + 1, 4)?;
    (nanp(&b[i + 1..area_end], &b[j..exchange_end]) && ends_number(b, end)).then_some(end)
}

/// `NNN-NNN-NNNN` or `NNN.NNN.NNNN`, optionally after `1-` or `1.`.
fn us_plain(b: &[u8], i: usize) -> Option<usize> {
    let mut start = i;
    let mut sep = None;
    if b[i] == b'1' && matches!(b.get(i + 1), Some(b'-' | b'.')) {
        sep = Some(b[i + 1]);
        start = i + 2;
    }
    let area_end = group(b, start, 3)?;
    let s = *b.get(area_end)?;
    if !matches!(s, b'-' | b'.') || sep.is_some_and(|first| first != s) {
        return None;
    }
    let exchange_end = group(b, area_end + 1, 3)?;
    if b.get(exchange_end) != Some(&s) {
        return None;
    }
    let end = group(b, exchange_end + 1, 4)?;
    (nanp(&b[start..area_end], &b[area_end + 1..exchange_end]) && ends_number(b, end))
        .then_some(end)
}

/// UK and German national numbers: `0`, a 3–5 digit first group, then
/// groups of at least two digits; 10–12 digits in all.
fn national(b: &[u8], i: usize) -> Option<usize> {
    if !matches!(b.get(i + 1), Some(b'1'..=b'9')) {
        return None;
    }
    let first_end = digits_end(b, i);
    if !(3..=5).contains(&(first_end - i)) {
        return None;
    }
    let mut digits = first_end - i;
    let mut j = first_end;
    let mut groups = 1;
    let mut first_sep = None;
    while groups < 4 {
        let Some(&s) = b.get(j) else { break };
        let allowed = match first_sep {
            None => matches!(s, b' ' | b'/' | b'-'),
            Some(first) => s == b' ' || s == first,
        };
        let next_end = digits_end(b, j + 1);
        if !allowed || next_end - (j + 1) < 2 {
            break;
        }
        first_sep.get_or_insert(s);
        digits += next_end - (j + 1);
        j = next_end;
        groups += 1;
    }
    (groups >= 2 && (10..=12).contains(&digits) && ends_number(b, j)).then_some(j)
}
