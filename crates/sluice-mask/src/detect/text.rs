//! Byte-level helpers the scanners share: which scanners a cell can
//! interest at all, where a number may start and end, and keyword context.

/// What one pass over a cell found, deciding which scanners run.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Triggers {
    pub digit: bool,
    pub upper: bool,
    pub dot: bool,
    pub colon: bool,
    pub at: bool,
    /// The first two bytes of a token prefix (`AK`, `AS`, `AI`, `gh`,
    /// `gi`, `xo`).
    pub key_prefix: bool,
    /// Five dashes in a row, as PEM armour has.
    pub dashes: bool,
}

impl Triggers {
    pub(super) fn of(bytes: &[u8]) -> Self {
        let mut t = Triggers::default();
        let mut dash_run = 0u8;
        let mut prev = 0u8;
        for &b in bytes {
            match b {
                b'0'..=b'9' => t.digit = true,
                b'A'..=b'Z' => t.upper = true,
                b'.' => t.dot = true,
                b':' => t.colon = true,
                b'@' => t.at = true,
                _ => {}
            }
            if b == b'-' {
                dash_run = dash_run.saturating_add(1);
                t.dashes |= dash_run >= 5;
            } else {
                dash_run = 0;
            }
            t.key_prefix |= matches!(
                (prev, b),
                (b'A', b'K' | b'S' | b'I') | (b'g', b'h' | b'i') | (b'x', b'o')
            );
            prev = b;
        }
        t
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn joins_numbers(b: u8) -> bool {
    matches!(b, b'.' | b'-' | b'/' | b',' | b':')
}

/// Whether a number may start at `i`: not inside a word, and not the
/// continuation of another number (`12-` or `3.` right before).
pub(super) fn starts_number(b: &[u8], i: usize) -> bool {
    if i == 0 {
        return true;
    }
    let p = b[i - 1];
    let continues = joins_numbers(p) && i >= 2 && b[i - 2].is_ascii_digit();
    !is_word(p) && p != b'+' && !continues
}

/// Whether a number may end at `j` (exclusive): the mirror of
/// [`starts_number`].
pub(super) fn ends_number(b: &[u8], j: usize) -> bool {
    if j >= b.len() {
        return true;
    }
    let n = b[j];
    let continues = joins_numbers(n) && b.get(j + 1).is_some_and(u8::is_ascii_digit);
    !is_word(n) && !continues
}

/// Whether one of `keywords` (lowercase ASCII) appears as a word, in any
/// case, within `window` bytes before `pos`.
pub(super) fn keyword_before(b: &[u8], pos: usize, window: usize, keywords: &[&str]) -> bool {
    let from = pos.saturating_sub(window);
    let hay = &b[from..pos];
    keywords.iter().any(|k| {
        let k = k.as_bytes();
        hay.windows(k.len()).enumerate().any(|(i, w)| {
            // Word boundaries are judged on the whole text, not the window.
            let at = from + i;
            w.eq_ignore_ascii_case(k)
                && (at == 0 || !b[at - 1].is_ascii_alphabetic())
                && b.get(at + k.len())
                    .is_none_or(|next| !next.is_ascii_alphabetic())
        })
    })
}

/// The end of the run of ASCII digits starting at `i`.
pub(super) fn digits_end(b: &[u8], i: usize) -> usize {
    let mut j = i;
    while j < b.len() && b[j].is_ascii_digit() {
        j += 1;
    }
    j
}

/// The value of the ASCII digit `b`.
pub(super) fn digit(b: u8) -> u32 {
    u32::from(b - b'0')
}
