//! Byte sizes as people write them in policy files (`10GiB`, `500 MB`,
//! `1024`) and as people read them in refusals (`81.2 MiB`).

/// Units accepted after the number, matched case-insensitively, with their
/// factor in bytes. Decimal units are powers of 1000, binary (`…iB`) units
/// powers of 1024, as BigQuery and most tools use them.
const UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("pb", 1_000_000_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
    ("pib", 1 << 50),
];

/// Parse a byte size: a non-negative number (integer, or with a decimal
/// fraction such as `1.5`), optionally followed by spaces and a unit
/// (`B`, `KB`, `MB`, `GB`, `TB`, `PB`, `KiB`, `MiB`, `GiB`, `TiB`, `PiB`;
/// case-insensitive). A bare number is bytes. Fractions of a byte are
/// rounded down.
///
/// ```
/// use sluice_policy::parse_byte_size;
/// assert_eq!(parse_byte_size("10GiB"), Ok(10 * 1024 * 1024 * 1024));
/// assert_eq!(parse_byte_size("500 MB"), Ok(500_000_000));
/// assert_eq!(parse_byte_size("1024"), Ok(1024));
/// assert!(parse_byte_size("ten gigs").is_err());
/// ```
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    let unit = unit.trim_start();
    let factor = if unit.is_empty() {
        1
    } else {
        UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))
            .map(|(_, factor)| *factor)
            .ok_or_else(|| {
                format!(
                    "`{text}` has an unknown unit `{unit}`; use B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB or PiB"
                )
            })?
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (number, ""),
    };
    if whole.is_empty() || fraction.contains('.') || (number.contains('.') && fraction.is_empty()) {
        return Err(format!(
            "`{text}` is not a byte size; write a number with an optional unit, e.g. 10GiB, 500 MB or 1024"
        ));
    }
    let too_large = || format!("`{text}` is too large for a byte size");
    let whole: u64 = whole.parse().map_err(|_| too_large())?;
    let mut bytes = u128::from(whole) * u128::from(factor);
    if !fraction.is_empty() {
        // Keep at most 18 fractional digits so the arithmetic stays in u128.
        let digits = &fraction[..fraction.len().min(18)];
        let numerator: u128 = digits.parse().map_err(|_| too_large())?;
        let denominator = 10u128.pow(u32::try_from(digits.len()).unwrap_or(18));
        bytes += numerator * u128::from(factor) / denominator;
    }
    u64::try_from(bytes).map_err(|_| too_large())
}

/// Format `bytes` for people, in binary units with one decimal
/// (`512 B`, `81.2 MiB`, `1.0 TiB`).
pub fn human_bytes(bytes: u64) -> String {
    const NAMES: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Precision loss is irrelevant at one decimal.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < NAMES.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", NAMES[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_decimal_and_binary() {
        assert_eq!(parse_byte_size("1024"), Ok(1024));
        assert_eq!(parse_byte_size("0"), Ok(0));
        assert_eq!(parse_byte_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_byte_size("500 MB"), Ok(500_000_000));
        assert_eq!(parse_byte_size("1TiB"), Ok(1 << 40));
        assert_eq!(parse_byte_size("1tib"), Ok(1 << 40));
        assert_eq!(parse_byte_size("2 kb"), Ok(2000));
        assert_eq!(parse_byte_size("7B"), Ok(7));
        assert_eq!(parse_byte_size(" 1.5GiB "), Ok(3 << 29));
        assert_eq!(parse_byte_size("0.5 KiB"), Ok(512));
    }

    #[test]
    fn malformed_sizes_are_errors() {
        for bad in [
            "", "GiB", "ten", "10 GiBs", "10 G", "-1", "1.2.3", "1.", ".5", "10 Gi B",
        ] {
            assert!(parse_byte_size(bad).is_err(), "{bad:?} should be rejected");
        }
        let message = parse_byte_size("10 XB").unwrap_err();
        assert!(message.contains("unknown unit `XB`"), "{message}");
    }

    #[test]
    fn overflow_is_an_error() {
        assert!(parse_byte_size("18446744073709551616").is_err());
        assert!(parse_byte_size("20000 PiB").is_err());
        assert_eq!(parse_byte_size("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(50 << 20), "50.0 MiB");
        assert_eq!(human_bytes(85_144_371), "81.2 MiB");
        assert_eq!(human_bytes(1 << 40), "1.0 TiB");
        assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
    }
}
