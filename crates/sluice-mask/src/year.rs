//! The `year` strategy: a DATE, DATETIME or TIMESTAMP cut back to the
//! first instant of its year, rendered the way BigQuery's REST JSON
//! rendered the input.
//!
//! - DATE `2026-12-03` → `2026-01-01`
//! - DATETIME `2026-12-03T10:20:30.5` → `2026-01-01T00:00:00` (the
//!   separator, `T` or space, is kept)
//! - TIMESTAMP as int64 microseconds (`formatOptions.useInt64Timestamp`)
//!   `1796256000000000` → `1767225600000000`; as float seconds (the
//!   default) `1.796256E9` → `1.7672256E9`; as text (`2026-12-03 10:20:30
//!   UTC`) → `2026-01-01 00:00:00 UTC`.
//!
//! Anything else answers `None`, and the caller renders NULL: a value
//! this cannot read is not passed on.

use crate::schema::FieldType;

const MICROS_PER_DAY: i64 = 86_400_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// `value` reduced to its year, or `None` if it is not a value of `ty`.
pub fn truncate_to_year(value: &str, ty: FieldType) -> Option<String> {
    match ty {
        FieldType::Date => {
            let year = leading_year(value)?;
            (value.len() == 10).then(|| format!("{year}-01-01"))
        }
        FieldType::Datetime => {
            let year = leading_year(value)?;
            let sep = *value.as_bytes().get(10)?;
            (sep == b'T' || sep == b' ').then(|| format!("{year}-01-01{}00:00:00", char::from(sep)))
        }
        FieldType::Timestamp => timestamp(value),
        _ => None,
    }
}

fn timestamp(value: &str) -> Option<String> {
    if leading_year(value).is_some() {
        let year = &value[..4];
        return Some(format!("{year}-01-01 00:00:00 UTC"));
    }
    let digits = value.strip_prefix('-').unwrap_or(value);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let micros: i64 = value.parse().ok()?;
        let year = year_of_day(micros.div_euclid(MICROS_PER_DAY));
        return day_of_year_start(year)
            .checked_mul(MICROS_PER_DAY)
            .map(|m| m.to_string());
    }
    let seconds: f64 = value.parse().ok()?;
    if !seconds.is_finite() || seconds.abs() > 1e15 {
        return None;
    }
    let year = year_of_day((seconds.floor() as i64).div_euclid(SECONDS_PER_DAY));
    let start = day_of_year_start(year) * SECONDS_PER_DAY;
    Some(format!("{:E}", start as f64))
}

/// The year of a `YYYY-MM-DD…` text whose date part is well formed.
fn leading_year(value: &str) -> Option<&str> {
    let b = value.as_bytes();
    let shape = b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit);
    shape.then(|| &value[..4])
}

/// The proleptic Gregorian year of a day counted from 1970-01-01.
fn year_of_day(day: i64) -> i64 {
    // Shift to an era starting on 0000-03-01, so the leap day ends a year.
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let march_based_month = (5 * doy + 2) / 153;
    let year = yoe + era * 400;
    // Months 10 and 11 of a March-based year are January and February.
    if march_based_month >= 10 {
        year + 1
    } else {
        year
    }
}

/// The day (from 1970-01-01) of January 1st of `year`.
fn day_of_year_start(year: i64) -> i64 {
    // January belongs to the previous March-based year.
    let y = year - 1;
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    // March 1st to January 1st is 306 days.
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + 306;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_datetimes_keep_their_format() {
        assert_eq!(
            truncate_to_year("2026-12-03", FieldType::Date).as_deref(),
            Some("2026-01-01")
        );
        assert_eq!(
            truncate_to_year("2026-12-03T10:20:30.123456", FieldType::Datetime).as_deref(),
            Some("2026-01-01T00:00:00")
        );
        assert_eq!(
            truncate_to_year("2026-12-03 10:20:30", FieldType::Datetime).as_deref(),
            Some("2026-01-01 00:00:00")
        );
    }

    #[test]
    fn timestamps_in_both_rest_renderings() {
        // 2026-12-03T00:00:00Z and 2026-01-01T00:00:00Z.
        assert_eq!(
            truncate_to_year("1796256000000000", FieldType::Timestamp).as_deref(),
            Some("1767225600000000")
        );
        assert_eq!(
            truncate_to_year("1.796256E9", FieldType::Timestamp).as_deref(),
            Some("1.7672256E9")
        );
        assert_eq!(
            truncate_to_year("1796256000.25", FieldType::Timestamp).as_deref(),
            Some("1.7672256E9")
        );
        // 1969-07-20 is before the epoch: 1969-01-01 is -31536000 s.
        assert_eq!(
            truncate_to_year("-14182940000000", FieldType::Timestamp).as_deref(),
            Some("-31536000000000")
        );
        assert_eq!(
            truncate_to_year("2026-12-03 10:20:30 UTC", FieldType::Timestamp).as_deref(),
            Some("2026-01-01 00:00:00 UTC")
        );
    }

    #[test]
    fn year_boundaries_and_leap_years() {
        for year in [1900, 1970, 1999, 2000, 2024, 2100, 2400, 1] {
            let start = day_of_year_start(year);
            assert_eq!(year_of_day(start), year, "{year}");
            assert_eq!(year_of_day(start - 1), year - 1, "{year}");
        }
        assert_eq!(day_of_year_start(1970), 0);
        assert_eq!(day_of_year_start(2025) - day_of_year_start(2024), 366);
    }

    #[test]
    fn what_is_not_a_temporal_value_answers_none() {
        assert_eq!(truncate_to_year("yesterday", FieldType::Date), None);
        assert_eq!(truncate_to_year("2026-12-3", FieldType::Date), None);
        assert_eq!(truncate_to_year("NaN", FieldType::Timestamp), None);
        assert_eq!(truncate_to_year("inf", FieldType::Timestamp), None);
        assert_eq!(truncate_to_year("2026-12-03", FieldType::String), None);
        // The largest int64 is far beyond year 9999 and still answers.
        assert!(truncate_to_year("9223372036854775807", FieldType::Timestamp).is_some());
    }
}
