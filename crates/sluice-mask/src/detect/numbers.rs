//! Numbers with rules: US SSNs, payment cards and ABA routing numbers.

use super::text::{digit, digits_end, ends_number, keyword_before, starts_number};
use super::{Class, Match};

/// Words that say a bare nine-digit number is an SSN or ITIN.
const SSN_KEYWORDS: &[&str] = &["ssn", "ss#", "social security", "itin", "taxpayer", "tin"];

/// Words that say a nine-digit number is a routing number.
const ROUTING_KEYWORDS: &[&str] = &["routing", "aba", "rtn", "transit"];

/// How far before a bare number its keyword may stand.
const KEYWORD_WINDOW: usize = 40;

/// The SSA's rules: no area 000 or 666, no group 00, no serial 0000.
///
/// Areas 900–999 are deliberately accepted. The SSA never issues them as
/// SSNs, but the IRS issues them as ITINs — taxpayer numbers just as
/// personal — and synthetic data (the demo's among it) uses them so that
/// no real person's number appears. Rejecting them would let exactly the
/// values a test corpus uses through unmasked.
fn ssn_parts_valid(b: &[u8]) -> bool {
    let n = |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |acc, d| acc * 10 + digit(*d));
    let area = n(0..3);
    area != 0 && area != 666 && n(3..5) != 0 && n(5..9) != 0
}

/// SSNs: `NNN-NN-NNNN` or `NNN NN NNNN` (one separator, used twice) on
/// its own; nine bare digits only after a keyword such as `SSN`, because
/// nine-digit numbers (order and account numbers, ZIP+4 without its dash)
/// are everywhere.
pub(super) fn ssn(b: &[u8], found: &mut Vec<Match>) {
    let mut i = 0;
    let mut nine = [0u8; 9];
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let end = digits_end(b, i);
        if !starts_number(b, i) {
            i = end;
            continue;
        }
        if end - i == 3 {
            if let Some(m) = separated_ssn(b, i, end, &mut nine) {
                found.push(m);
                i = m.end;
                continue;
            }
        } else if end - i == 9
            && ends_number(b, end)
            && ssn_parts_valid(&b[i..end])
            && keyword_before(b, i, KEYWORD_WINDOW, SSN_KEYWORDS)
        {
            found.push(Match {
                start: i,
                end,
                class: Class::UsSsn,
            });
        }
        i = end;
    }
}

fn separated_ssn(b: &[u8], start: usize, area_end: usize, nine: &mut [u8; 9]) -> Option<Match> {
    let sep = *b.get(area_end)?;
    if sep != b'-' && sep != b' ' {
        return None;
    }
    let group_end = digits_end(b, area_end + 1);
    if group_end - (area_end + 1) != 2 || b.get(group_end) != Some(&sep) {
        return None;
    }
    let serial_end = digits_end(b, group_end + 1);
    if serial_end - (group_end + 1) != 4 || !ends_number(b, serial_end) {
        return None;
    }
    nine[..3].copy_from_slice(&b[start..area_end]);
    nine[3..5].copy_from_slice(&b[area_end + 1..group_end]);
    nine[5..].copy_from_slice(&b[group_end + 1..serial_end]);
    ssn_parts_valid(nine).then_some(Match {
        start,
        end: serial_end,
        class: Class::UsSsn,
    })
}

/// The Luhn check over ASCII digits.
pub(super) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = digit(*d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Whether `digits` (at least four) start the way a card network's
/// numbers do: Visa 4; Mastercard 51–55 and 2221–2720; Maestro 50, 56–59
/// and 6; Discover and UnionPay 6; Amex 34, 37; Diners 300–305, 36, 38,
/// 39; JCB 3528–3589. Numbers starting 0, 1, 7, 8 or 9 — most ids,
/// epoch timestamps in microseconds — are never cards.
fn card_prefix(digits: &[u8]) -> bool {
    let n = |len: usize| {
        digits[..len]
            .iter()
            .fold(0u32, |acc, d| acc * 10 + digit(*d))
    };
    match digits[0] {
        b'4' | b'5' | b'6' => true,
        b'2' => (2221..=2720).contains(&n(4)),
        b'3' => {
            matches!(n(2), 34 | 36..=39)
                || (300..=305).contains(&n(3))
                || (3528..=3589).contains(&n(4))
        }
        _ => false,
    }
}

/// Whether a card's digit groups are laid out as printed cards are:
/// one run, groups of four (the last shorter), or Amex/Diners 4-6-5/4-6-4.
fn card_groups(groups: &[usize]) -> bool {
    match groups {
        [_] => true,
        [4, 6, 4 | 5] => true,
        [init @ .., last] => init.iter().all(|g| *g == 4) && (1..=4).contains(last),
        [] => false,
    }
}

/// Card numbers: 13 to 19 digits, in one run or in groups separated by
/// single spaces or single dashes, on a network's prefix, passing Luhn.
pub(super) fn card(b: &[u8], found: &mut Vec<Match>) {
    let mut digits = [0u8; 19];
    let mut groups = [0usize; 8];
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        if !starts_number(b, i) {
            i = digits_end(b, i);
            continue;
        }
        let mut n = 0;
        let mut g = 0;
        let mut sep = None;
        let mut j = i;
        let mut fits = true;
        let mut second_group = None;
        loop {
            let e = digits_end(b, j);
            let len = e - j;
            if n + len > digits.len() || g == groups.len() {
                fits = false;
                j = e;
                break;
            }
            digits[n..n + len].copy_from_slice(&b[j..e]);
            n += len;
            groups[g] = len;
            g += 1;
            j = e;
            let next_sep = b.get(j).copied().filter(|s| *s == b' ' || *s == b'-');
            match next_sep {
                Some(s)
                    if sep.is_none_or(|prev| prev == s)
                        && b.get(j + 1).is_some_and(u8::is_ascii_digit) =>
                {
                    sep = Some(s);
                    j += 1;
                    second_group.get_or_insert(j);
                }
                _ => break,
            }
        }
        let is_card = fits
            && (13..=19).contains(&n)
            && ends_number(b, j)
            && card_groups(&groups[..g])
            && card_prefix(&digits[..n])
            && luhn(&digits[..n]);
        if is_card {
            found.push(Match {
                start: i,
                end: j,
                class: Class::CreditCard,
            });
            i = j;
        } else {
            // A card may follow another number in the same spaced run
            // ("order 12 4111 1111 1111 1111"): try again from the next group.
            i = match (sep, second_group) {
                (Some(b' '), Some(next)) => next,
                _ => j,
            };
        }
    }
}

/// ABA routing numbers: nine digits on a Federal Reserve prefix (00–12,
/// 21–32, 61–72, 80), passing the 3-7-1 checksum, and only after a keyword
/// (`routing`, `ABA`, `RTN`, `transit`): one nine-digit number in ten
/// passes the checksum, so without context every order number would risk
/// being masked.
pub(super) fn routing(b: &[u8], found: &mut Vec<Match>) {
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let end = digits_end(b, i);
        if end - i == 9
            && starts_number(b, i)
            && ends_number(b, end)
            && routing_valid(&b[i..end])
            && keyword_before(b, i, KEYWORD_WINDOW, ROUTING_KEYWORDS)
        {
            found.push(Match {
                start: i,
                end,
                class: Class::UsRouting,
            });
        }
        i = end;
    }
}

fn routing_valid(d: &[u8]) -> bool {
    let prefix = digit(d[0]) * 10 + digit(d[1]);
    let prefix_ok = matches!(prefix, 0..=12 | 21..=32 | 61..=72 | 80);
    let sum: u32 = d
        .iter()
        .zip([3, 7, 1].iter().cycle())
        .map(|(x, w)| digit(*x) * w)
        .sum();
    prefix_ok && sum.is_multiple_of(10)
}
