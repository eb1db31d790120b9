//! The text of one BigQuery value: each writer appends one non-null value
//! as a JSON string (quotes included) in the spelling the official clients
//! parse. Integers, dates and clocks are formatted by hand because they
//! dominate result sets and `write!` would cost several times more.

use base64::Engine;
use datafusion::arrow::datatypes::i256;

pub(super) fn write_i64(v: i64, out: &mut Vec<u8>) {
    out.push(b'"');
    if v < 0 {
        out.push(b'-');
    }
    write_digits(v.unsigned_abs().into(), out);
    out.push(b'"');
}

pub(super) fn write_u64(v: u64, out: &mut Vec<u8>) {
    out.push(b'"');
    write_digits(v.into(), out);
    out.push(b'"');
}

/// An integer without quotes (also used inside other formats).
pub(super) fn write_i128(v: i128, out: &mut Vec<u8>) {
    if v < 0 {
        out.push(b'-');
    }
    write_digits(v.unsigned_abs(), out);
}

fn write_digits(v: u128, out: &mut Vec<u8>) {
    let mut buf = [0u8; 39];
    out.extend_from_slice(digits(v, &mut buf));
}

/// The decimal digits of `v`, written into the end of `buf`.
fn digits(mut v: u128, buf: &mut [u8; 39]) -> &[u8] {
    let mut i = buf.len();
    // Narrow first: u128 division is much slower than u64's.
    if let Ok(mut small) = u64::try_from(v) {
        loop {
            i -= 1;
            buf[i] = b'0' + (small % 10) as u8;
            small /= 10;
            if small == 0 {
                break;
            }
        }
    } else {
        while v > 0 {
            i -= 1;
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    &buf[i..]
}

/// Shortest text that reads back as the same float; the special values in
/// the spelling BigQuery uses, which Python's `float()` and JavaScript's
/// `Number()` both accept.
pub(super) fn write_f64(v: f64, out: &mut Vec<u8>) {
    if !write_non_finite(v, out) {
        out.push(b'"');
        let mut formatter = serde_json::ser::CompactFormatter;
        // Writing into a Vec cannot fail.
        let _ = serde_json::ser::Formatter::write_f64(&mut formatter, out, v);
        out.push(b'"');
    }
}

/// `f32` keeps its own shortest text ("0.1", not "0.10000000149011612").
pub(super) fn write_f32(v: f32, out: &mut Vec<u8>) {
    if !write_non_finite(v.into(), out) {
        out.push(b'"');
        let mut formatter = serde_json::ser::CompactFormatter;
        let _ = serde_json::ser::Formatter::write_f32(&mut formatter, out, v);
        out.push(b'"');
    }
}

fn write_non_finite(v: f64, out: &mut Vec<u8>) -> bool {
    let text: &[u8] = if v.is_nan() {
        b"\"NaN\""
    } else if v == f64::INFINITY {
        b"\"Infinity\""
    } else if v == f64::NEG_INFINITY {
        b"\"-Infinity\""
    } else {
        return false;
    };
    out.extend_from_slice(text);
    true
}

/// Plain decimal text (never scientific), trailing fractional zeros
/// trimmed as BigQuery does ("1.5", "100000").
pub(super) fn write_decimal(v: i128, scale: i8, out: &mut Vec<u8>) {
    let mut buf = [0u8; 39];
    write_scaled(v < 0, digits(v.unsigned_abs(), &mut buf), scale, out);
}

pub(super) fn write_decimal256(v: i256, scale: i8, out: &mut Vec<u8>) {
    let text = v.to_string();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text.as_str()),
    };
    write_scaled(negative, digits.as_bytes(), scale, out);
}

/// Places the decimal point `scale` digits from the right of `digits`.
fn write_scaled(negative: bool, digits: &[u8], scale: i8, out: &mut Vec<u8>) {
    out.push(b'"');
    if negative {
        out.push(b'-');
    }
    if scale <= 0 {
        out.extend_from_slice(digits);
        if digits != b"0" {
            out.extend(std::iter::repeat_n(b'0', usize::from(scale.unsigned_abs())));
        }
    } else {
        let scale = usize::from(scale.unsigned_abs());
        let (int_part, fraction_digits) = if digits.len() > scale {
            digits.split_at(digits.len() - scale)
        } else {
            (&b"0"[..], digits)
        };
        out.extend_from_slice(int_part);
        let leading_zeros = scale - fraction_digits.len();
        let significant = match fraction_digits.iter().rposition(|&d| d != b'0') {
            Some(last) => &fraction_digits[..=last],
            None => &[],
        };
        if !significant.is_empty() {
            out.push(b'.');
            out.extend(std::iter::repeat_n(b'0', leading_zeros));
            out.extend_from_slice(significant);
        }
    }
    out.push(b'"');
}

/// Which bytes a JSON string must escape: `"`, `\\` and the controls.
const ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// A JSON string. Non-ASCII text is valid JSON as it is, so only quotes,
/// backslashes and control characters are escaped; clean runs are copied
/// in one piece.
pub(super) fn write_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !ESCAPE[usize::from(b)] {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

pub(super) fn write_base64(bytes: &[u8], out: &mut Vec<u8>) {
    let engine = &base64::engine::general_purpose::STANDARD;
    out.push(b'"');
    let start = out.len();
    let len = base64::encoded_len(bytes.len(), true).unwrap_or(0);
    out.resize(start + len, 0);
    let written = engine
        .encode_slice(bytes, &mut out[start..])
        .unwrap_or_default();
    out.truncate(start + written);
    out.push(b'"');
}

const MICROS_PER_DAY: i128 = 86_400_000_000;

/// `YYYY-MM-DD` from days since 1970-01-01 (proleptic Gregorian).
pub(super) fn write_date(days: i64, out: &mut Vec<u8>) {
    out.push(b'"');
    write_civil_date(days, out);
    out.push(b'"');
}

fn write_civil_date(days: i64, out: &mut Vec<u8>) {
    // Howard Hinnant's days-to-civil algorithm: exact for any i64 input
    // in range, with no table lookups.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if (0..=9999).contains(&year) {
        write_2(year / 100, out);
        write_2(year % 100, out);
    } else {
        write_i128(year.into(), out);
    }
    out.push(b'-');
    write_2(month, out);
    out.push(b'-');
    write_2(day, out);
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]` from microseconds since the epoch.
pub(super) fn write_datetime(micros: i128, out: &mut Vec<u8>) {
    let days = micros.div_euclid(MICROS_PER_DAY);
    out.push(b'"');
    write_civil_date(i64::try_from(days).unwrap_or(i64::MAX / 2), out);
    out.push(b'T');
    write_clock(micros.rem_euclid(MICROS_PER_DAY) as i64, out);
    out.push(b'"');
}

/// `HH:MM:SS[.ffffff]` from microseconds since midnight.
pub(super) fn write_time(micros: i64, out: &mut Vec<u8>) {
    out.push(b'"');
    write_clock(micros, out);
    out.push(b'"');
}

fn write_clock(micros: i64, out: &mut Vec<u8>) {
    let seconds = micros.div_euclid(1_000_000);
    write_2(seconds / 3_600, out);
    out.push(b':');
    write_2(seconds / 60 % 60, out);
    out.push(b':');
    write_2(seconds % 60, out);
    write_fraction(micros.rem_euclid(1_000_000), out);
}

/// `.ffffff` when there is a fraction: always six digits, the one length
/// every client parses.
fn write_fraction(micros: i64, out: &mut Vec<u8>) {
    if micros != 0 {
        out.push(b'.');
        write_2(micros / 10_000, out);
        write_2(micros / 100 % 100, out);
        write_2(micros % 100, out);
    }
}

/// Two digits, zero-padded (the value is always below 100 here).
fn write_2(v: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(&[b'0' + (v / 10) as u8, b'0' + (v % 10) as u8]);
}

/// BigQuery's canonical INTERVAL text, `[-]Y-M [-]D [-]H:M:S[.F]`, the
/// shape the Python client's parser expects.
pub(super) fn write_interval(months: i32, days: i32, nanos: i128, out: &mut Vec<u8>) {
    out.push(b'"');
    if months < 0 {
        out.push(b'-');
    }
    let months = i128::from(months.unsigned_abs());
    write_i128(months / 12, out);
    out.push(b'-');
    write_i128(months % 12, out);
    out.push(b' ');
    write_i128(days.into(), out);
    out.push(b' ');
    if nanos < 0 {
        out.push(b'-');
    }
    let micros = nanos.unsigned_abs() / 1_000;
    let seconds = micros / 1_000_000;
    write_i128((seconds / 3_600) as i128, out);
    out.push(b':');
    write_i128((seconds / 60 % 60) as i128, out);
    out.push(b':');
    write_i128((seconds % 60) as i128, out);
    write_fraction((micros % 1_000_000) as i64, out);
    out.push(b'"');
}
