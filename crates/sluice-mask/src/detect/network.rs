//! IP addresses: dotted-quad IPv4 and colon-hex IPv6.
//!
//! IPv4 needs four octets of at most 255 without leading zeros, standing
//! alone (`1.2.3.4.5` and `v1.2.3.4` are versions, not addresses). IPv6 is
//! whatever the standard library parses as one, with at least four hex
//! digits, so `::1` and clock times are left alone.

use std::net::Ipv6Addr;

use super::text::digits_end;
use super::{Class, Match};

fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

pub(super) fn ipv4(b: &[u8], found: &mut Vec<Match>) {
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let standalone = i == 0 || !(word(b[i - 1]) || b[i - 1] == b'.');
        match standalone.then(|| quad(b, i)).flatten() {
            Some(end) => {
                found.push(Match {
                    start: i,
                    end,
                    class: Class::Ipv4,
                });
                i = end;
            }
            None => i = digits_end(b, i),
        }
    }
}

/// Four octets from `i`: the end, if they stand alone.
fn quad(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    for n in 0..4 {
        if n > 0 {
            if b.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
        let end = digits_end(b, j);
        let octet = &b[j..end];
        // The length first: a long digit run must not reach the sum.
        if octet.is_empty() || octet.len() > 3 || (octet.len() > 1 && octet[0] == b'0') {
            return None;
        }
        let value = octet
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
        if value > 255 {
            return None;
        }
        j = end;
    }
    let glued = b
        .get(j)
        .is_some_and(|n| word(*n) || (*n == b'.' && b.get(j + 1).is_some_and(u8::is_ascii_digit)));
    (!glued).then_some(j)
}

fn ipv6_char(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

pub(super) fn ipv6(text: &str, found: &mut Vec<Match>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !ipv6_char(b[i]) {
            i += 1;
            continue;
        }
        let mut end = i;
        while end < b.len() && ipv6_char(b[end]) {
            end += 1;
        }
        let run_end = end;
        // A sentence's full stop is not part of the address.
        if end > i && b[end - 1] == b'.' {
            end -= 1;
        }
        let run = &b[i..end];
        let standalone = (i == 0 || !word(b[i - 1])) && !b.get(run_end).is_some_and(|n| word(*n));
        let shaped = standalone
            && run.iter().filter(|c| **c == b':').count() >= 2
            && run.iter().filter(|c| c.is_ascii_hexdigit()).count() >= 4;
        // The run is ASCII, so the slice is on character boundaries.
        if shaped && text[i..end].parse::<Ipv6Addr>().is_ok() {
            found.push(Match {
                start: i,
                end,
                class: Class::Ipv6,
            });
        }
        i = run_end;
    }
}
