//! Time-of-day and day-of-week conditions of approval rules
//! (`when.days`, `when.hours`, `when.utc_offset`), read against the
//! decision's [`crate::Circumstances::now_ms`].

use crate::policy_set::PolicyError;

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const LONG_DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A validated window of days and hours, in a fixed offset from UTC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Window {
    /// Bit `d` set: the window includes day `d` (0 = Monday). Zero: every day.
    days: u8,
    /// Minutes of the day `[start, end)`; a start after the end wraps
    /// past midnight.
    hours: Option<(u16, u16)>,
    /// Seconds east of UTC.
    offset: i32,
}

impl Window {
    /// Validates `days`, `hours` and `utc_offset` (at `key`); `None` when
    /// neither days nor hours are given.
    pub(crate) fn build(
        days: &[String],
        hours: Option<&str>,
        utc_offset: Option<&str>,
        key: &str,
        errors: &mut Vec<PolicyError>,
    ) -> Option<Window> {
        let mut window = Window::default();
        for (i, day) in days.iter().enumerate() {
            let lower = day.trim().to_ascii_lowercase();
            let index = DAY_NAMES
                .iter()
                .zip(LONG_DAY_NAMES)
                .position(|(short, long)| lower == *short || lower == long);
            match index {
                Some(index) => window.days |= 1 << index,
                None => errors.push(error(
                    format!("{key}.days[{i}]"),
                    format!("`{day}` is not a day: write mon, tue, wed, thu, fri, sat or sun"),
                )),
            }
        }
        if let Some(text) = hours {
            match parse_hours(text) {
                Some(range) => window.hours = Some(range),
                None => errors.push(error(
                    format!("{key}.hours"),
                    format!("\"{text}\" is not a time range: write HH:MM-HH:MM, such as 09:00-17:00 or 18:00-08:00"),
                )),
            }
        }
        if let Some(text) = utc_offset {
            match parse_offset(text) {
                Some(offset) => window.offset = offset,
                None => errors.push(error(
                    format!("{key}.utc_offset"),
                    format!("\"{text}\" is not an offset from UTC: write +HH:MM or -HH:MM, such as +02:00"),
                )),
            }
        }
        (!days.is_empty() || hours.is_some()).then_some(window)
    }

    /// Whether `now_ms` falls in the window: why, or why not.
    pub(crate) fn contains(&self, now_ms: i64) -> Result<String, String> {
        let local = now_ms.div_euclid(1000) + i64::from(self.offset);
        let day = usize::try_from((local.div_euclid(86_400) + 3).rem_euclid(7)).unwrap_or(0);
        let minute = u16::try_from(local.rem_euclid(86_400) / 60).unwrap_or(0);
        let at = format!(
            "{} {:02}:{:02} (UTC{})",
            DAY_NAMES[day],
            minute / 60,
            minute % 60,
            offset_text(self.offset)
        );
        if self.days != 0 && self.days & (1 << day) == 0 {
            return Err(format!("{at} is not on when.days"));
        }
        if let Some((start, end)) = self.hours {
            let inside = if start <= end {
                (start..end).contains(&minute)
            } else {
                minute >= start || minute < end
            };
            let range = format!("{}-{}", clock(start), clock(end));
            if !inside {
                return Err(format!("{at} is outside when.hours {range}"));
            }
            return Ok(format!("{at} is within when.hours {range}"));
        }
        Ok(format!("{at} is on when.days"))
    }
}

fn parse_hours(text: &str) -> Option<(u16, u16)> {
    let (start, end) = text.trim().split_once('-')?;
    let (start, end) = (minutes(start)?, minutes(end)?);
    (start != end).then_some((start, end))
}

/// `HH:MM` as minutes of the day; `24:00` is the end of the day.
fn minutes(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn parse_offset(text: &str) -> Option<i32> {
    let text = text.trim();
    let sign = match text.chars().next()? {
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    let minutes = i32::from(minutes(&text[1..])?);
    (minutes <= 14 * 60).then_some(sign * minutes * 60)
}

fn clock(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

fn offset_text(offset: i32) -> String {
    if offset == 0 {
        return String::new();
    }
    let sign = if offset < 0 { '-' } else { '+' };
    let minutes = offset.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

fn error(key: String, reason: String) -> PolicyError {
    PolicyError { key, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(days: &[&str], hours: Option<&str>, offset: Option<&str>) -> Window {
        let days: Vec<String> = days.iter().map(|d| d.to_string()).collect();
        let mut errors = Vec::new();
        let built = Window::build(&days, hours, offset, "w", &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        built.expect("a window")
    }

    /// 2026-12-05 is a Saturday; this is 23:30 UTC on it.
    const SATURDAY_2330: i64 = 1_796_513_400_000;

    #[test]
    fn days_are_read_in_the_offset() {
        let weekend = window(&["sat", "sunday"], None, None);
        assert!(weekend.contains(SATURDAY_2330).is_ok());
        // An hour later in UTC+01:00 it is already Sunday: still weekend.
        let east = window(&["sat", "sun"], None, Some("+01:00"));
        assert!(
            east.contains(SATURDAY_2330)
                .unwrap()
                .starts_with("sun 00:30")
        );
        // Monday 00:30 in UTC+01:00 is Sunday 23:30 UTC.
        let monday = SATURDAY_2330 + 86_400_000;
        assert!(east.contains(monday).is_err());
        let weekdays = window(&["mon", "tue", "wed", "thu", "fri"], None, None);
        assert!(weekdays.contains(SATURDAY_2330).is_err());
    }

    #[test]
    fn hour_ranges_wrap_past_midnight() {
        let night = window(&[], Some("18:00-08:00"), None);
        assert!(night.contains(SATURDAY_2330).is_ok());
        let office = window(&[], Some("09:00-17:00"), None);
        let why = office.contains(SATURDAY_2330).unwrap_err();
        assert!(why.contains("outside when.hours 09:00-17:00"), "{why}");
        let noon = SATURDAY_2330 - (11 * 60 + 30) * 60_000;
        assert!(office.contains(noon).is_ok());
        // The end is excluded.
        let five = SATURDAY_2330 - (6 * 60 + 30) * 60_000;
        assert!(office.contains(five).is_err());
    }

    #[test]
    fn mistakes_are_reported_with_their_keys() {
        let mut errors = Vec::new();
        let days = vec!["someday".to_owned(), "mo".to_owned()];
        Window::build(&days, Some("9-17"), Some("UTC+2"), "r", &mut errors);
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["r.days[0]", "r.days[1]", "r.hours", "r.utc_offset"]);
        let mut errors = Vec::new();
        Window::build(&[], Some("25:00-26:00"), Some("+15:00"), "r", &mut errors);
        assert_eq!(errors.len(), 2);
        assert!(Window::build(&[], None, Some("+02:00"), "r", &mut Vec::new()).is_none());
    }
}
