//! E-mail addresses: `local@domain.tld`, found from each `@` outwards.
//!
//! The local part takes the characters addresses use in practice (letters,
//! digits, `. _ % + -`, no leading, trailing or doubled dot); the domain
//! takes at least two labels of letters, digits and inner hyphens, and a
//! top-level label of two or more letters. A trailing dot (the end of a
//! sentence) is not part of the address.

use super::{Class, Match};

fn local_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn domain_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

pub(super) fn find(b: &[u8], found: &mut Vec<Match>) {
    let mut resume = 0;
    for at in 0..b.len() {
        if b[at] != b'@' || at < resume {
            continue;
        }
        let mut start = at;
        while start > resume && local_char(b[start - 1]) {
            start -= 1;
        }
        while start < at && b[start] == b'.' {
            start += 1;
        }
        let mut end = at + 1;
        while end < b.len() && domain_char(b[end]) {
            end += 1;
        }
        while end > at + 1 && matches!(b[end - 1], b'.' | b'-') {
            end -= 1;
        }
        let local = &b[start..at];
        let domain = &b[at + 1..end];
        if valid_local(local) && valid_domain(domain) {
            found.push(Match {
                start,
                end,
                class: Class::Email,
            });
            resume = end;
        }
    }
}

fn valid_local(local: &[u8]) -> bool {
    !local.is_empty()
        && local.len() <= 64
        && local.last() != Some(&b'.')
        && !local.windows(2).any(|w| w == b"..")
}

fn valid_domain(domain: &[u8]) -> bool {
    if domain.len() > 253 {
        return false;
    }
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in domain.split(|b| *b == b'.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label[0] != b'-'
            && label[label.len() - 1] != b'-';
        if !ok {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && last.len() >= 2 && last.iter().all(u8::is_ascii_alphabetic)
}
