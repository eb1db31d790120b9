//! Credentials: cloud and SaaS access tokens by their documented prefixes
//! and lengths, and PEM private-key blocks.
//!
//! AWS secret access keys (40 characters of base64 with no prefix) cannot
//! be told from other base64 without context and are not matched; the
//! access key id beside them is.

use super::{Class, Detectors, Match};

fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The length of the run from `i` of bytes `allowed` accepts, counted no
/// further than `limit`: a failed match must not read a long run again
/// from every prefix inside it.
fn run(b: &[u8], i: usize, limit: usize, allowed: impl Fn(u8) -> bool) -> usize {
    b[i.min(b.len())..]
        .iter()
        .take(limit)
        .take_while(|c| allowed(**c))
        .count()
}

/// Longer than any token of the kinds matched here.
const LONGEST_TOKEN: usize = 1024;

const GITHUB_PREFIXES: [&[u8]; 5] = [b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"];

/// The class and end of a token starting at `i`, if one does.
fn token_at(b: &[u8], i: usize) -> Option<(Class, usize)> {
    let rest = &b[i..];
    if rest.starts_with(b"AKIA") || rest.starts_with(b"ASIA") {
        let body = run(b, i + 4, 17, |c| {
            c.is_ascii_uppercase() || c.is_ascii_digit()
        });
        let end = i + 4 + body;
        return (body == 16 && !b.get(end).is_some_and(|n| word(*n)))
            .then_some((Class::AwsAccessKey, end));
    }
    if rest.starts_with(b"AIza") {
        let key_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        let body = run(b, i + 4, 36, key_char);
        return (body == 35).then_some((Class::GcpApiKey, i + 4 + body));
    }
    if GITHUB_PREFIXES.iter().any(|p| rest.starts_with(p)) {
        let body = run(b, i + 4, 252, |c| c.is_ascii_alphanumeric());
        let end = i + 4 + body;
        return ((36..=251).contains(&body) && !b.get(end).is_some_and(|n| word(*n)))
            .then_some((Class::GithubToken, end));
    }
    if rest.starts_with(b"github_pat_") {
        let body = run(b, i + 11, LONGEST_TOKEN, word);
        return (body >= 22).then_some((Class::GithubToken, i + 11 + body));
    }
    if rest.len() > 4
        && rest.starts_with(b"xox")
        && matches!(rest[3], b'a' | b'b' | b'e' | b'o' | b'p' | b'r' | b's')
        && rest[4] == b'-'
    {
        let body = run(b, i + 5, LONGEST_TOKEN, |c| {
            c.is_ascii_alphanumeric() || c == b'-'
        });
        return (body >= 10).then_some((Class::SlackToken, i + 5 + body));
    }
    None
}

pub(super) fn tokens(b: &[u8], enabled: &Detectors, found: &mut Vec<Match>) {
    let mut i = 0;
    while i < b.len() {
        let may_start = matches!(b[i], b'A' | b'g' | b'x') && (i == 0 || !word(b[i - 1]));
        match may_start.then(|| token_at(b, i)).flatten() {
            Some((class, end)) => {
                if enabled.contains(class) {
                    found.push(Match {
                        start: i,
                        end,
                        class,
                    });
                }
                i = end;
            }
            None => i += 1,
        }
    }
}

const BEGIN: &str = "-----BEGIN ";
const ARMOUR: &str = "-----";
const LONGEST_LABEL: usize = 64;
/// Far longer than any PEM private key (an RSA-16384 key is about 12 KB):
/// the `-----END` line is looked for no further.
const LONGEST_BLOCK: usize = 64 * 1024;

/// The largest character boundary of `text` at or below `at`.
fn floor_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// `-----BEGIN … PRIVATE KEY-----` up to and including its `-----END …`
/// line; a block whose end is missing (a value cut short) is masked to
/// the end of the text (or of the JSON string it sits in), since half a
/// key is still a key.
pub(super) fn private_keys(text: &str, found: &mut Vec<Match>) {
    let mut from = 0;
    while let Some(pos) = text[from..].find(BEGIN) {
        let start = from + pos;
        let label_start = start + BEGIN.len();
        let label_window =
            &text[label_start..floor_boundary(text, label_start + LONGEST_LABEL + 5)];
        let Some(label_len) = label_window.find(ARMOUR) else {
            from = label_start;
            continue;
        };
        let label = &text[label_start..label_start + label_len];
        let header_end = label_start + label_len + ARMOUR.len();
        if label_len > LONGEST_LABEL || !label.contains("PRIVATE KEY") {
            from = label_start;
            continue;
        }
        let end_marker = format!("-----END {label}-----");
        // A block cut short ends at the text's end, or at a double quote
        // (which base64 never holds): in a JSON column's text the rest of
        // the document stays well formed.
        let limit = floor_boundary(text, header_end + LONGEST_BLOCK);
        let quote = text[header_end..limit].find('"').map(|p| header_end + p);
        let end = text[header_end..quote.unwrap_or(limit)]
            .find(&end_marker)
            .map(|p| header_end + p + end_marker.len())
            .or(quote)
            .unwrap_or(text.len());
        found.push(Match {
            start,
            end,
            class: Class::PrivateKey,
        });
        from = end;
    }
}
