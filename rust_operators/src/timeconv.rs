//! Local market time -> UTC microseconds, with the same rules as `pmp.timeutil`.
//!
//! * [`localize`]: a wall-clock time; the fall-back ambiguity is resolved by the repeated-hour
//!   flag (`false` = first, daylight copy; `true` = second, standard copy); a time in the
//!   spring-forward gap is an error.
//! * [`hour_ending_start`]: hour ending 1..24 on a market day. Its start is local `he - 1`:00;
//!   when that start falls in the spring-forward gap, the hour is placed by its end instead.

use chrono::{Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

pub const MICROS: i64 = 1_000_000;

/// Why a local label could not be placed on the UTC timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeLabelError {
    Nonexistent(NaiveDateTime),
    HourOutOfRange(u32),
}

impl std::fmt::Display for TimeLabelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Nonexistent(t) => write!(f, "{} does not exist in local time (spring-forward gap)", t.format("%Y-%m-%dT%H:%M:%S")),
            Self::HourOutOfRange(h) => write!(f, "hour ending {h} outside 1..24"),
        }
    }
}

/// UTC microseconds of a local wall-clock time.
pub fn localize(tz: Tz, naive: NaiveDateTime, repeated: bool) -> Result<i64, TimeLabelError> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.timestamp() * MICROS),
        LocalResult::Ambiguous(first, second) => Ok(if repeated { second } else { first }.timestamp() * MICROS),
        LocalResult::None => Err(TimeLabelError::Nonexistent(naive)),
    }
}

/// UTC microseconds of the start of hour ending `he` (1..24) on local `day`.
pub fn hour_ending_start(tz: Tz, day: NaiveDate, he: u32, repeated: bool) -> Result<i64, TimeLabelError> {
    if !(1..=24).contains(&he) {
        return Err(TimeLabelError::HourOutOfRange(he));
    }
    let start = day.and_time(NaiveTime::MIN) + Duration::hours(i64::from(he) - 1);
    match localize(tz, start, repeated) {
        Err(TimeLabelError::Nonexistent(_)) => Ok(localize(tz, start + Duration::hours(1), false)? - 3600 * MICROS),
        other => other,
    }
}

/// Floor UTC microseconds (whole seconds) to a multiple of `minutes`, as `floor_minutes` does.
pub fn floor_minutes(micros: i64, minutes: i64) -> i64 {
    let secs = micros.div_euclid(MICROS);
    let step = minutes * 60;
    (secs - secs.rem_euclid(step)) * MICROS
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: Tz = chrono_tz::America::Chicago;

    fn utc(y: i32, m: u32, d: u32, h: u32, mi: u32) -> i64 {
        chrono::Utc.with_ymd_and_hms(y, m, d, h, mi, 0).unwrap().timestamp() * MICROS
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn hour_ending_24_ends_at_next_midnight() {
        assert_eq!(hour_ending_start(CT, day(2024, 6, 1), 24, false).unwrap(), utc(2024, 6, 2, 4, 0));
        assert_eq!(hour_ending_start(CT, day(2024, 6, 1), 1, false).unwrap(), utc(2024, 6, 1, 5, 0));
    }

    #[test]
    fn fall_back_repeated_hour_by_flag() {
        let d = day(2024, 11, 3);
        assert_eq!(hour_ending_start(CT, d, 2, false).unwrap(), utc(2024, 11, 3, 6, 0));
        assert_eq!(hour_ending_start(CT, d, 2, true).unwrap(), utc(2024, 11, 3, 7, 0));
        assert_eq!(hour_ending_start(CT, d, 3, false).unwrap(), utc(2024, 11, 3, 8, 0));
        // the flag means nothing outside the ambiguous hour
        assert_eq!(hour_ending_start(CT, d, 5, true).unwrap(), utc(2024, 11, 3, 10, 0));
    }

    #[test]
    fn spring_forward_label_after_gap_placed_by_its_end() {
        let d = day(2024, 3, 10);
        assert_eq!(hour_ending_start(CT, d, 2, false).unwrap(), utc(2024, 3, 10, 7, 0));
        assert_eq!(hour_ending_start(CT, d, 3, false).unwrap(), utc(2024, 3, 10, 7, 0));
        assert_eq!(hour_ending_start(CT, d, 4, false).unwrap(), utc(2024, 3, 10, 8, 0));
    }

    #[test]
    fn gap_time_is_an_error_and_hours_checked() {
        let t = day(2024, 3, 10).and_hms_opt(2, 30, 0).unwrap();
        assert!(matches!(localize(CT, t, false), Err(TimeLabelError::Nonexistent(_))));
        assert_eq!(hour_ending_start(CT, day(2024, 3, 9), 25, false), Err(TimeLabelError::HourOutOfRange(25)));
    }

    #[test]
    fn floor_to_five_minutes() {
        assert_eq!(floor_minutes(utc(2024, 1, 1, 0, 7) + 13 * MICROS, 5), utc(2024, 1, 1, 0, 5));
        assert_eq!(floor_minutes(utc(2024, 1, 1, 0, 5), 5), utc(2024, 1, 1, 0, 5));
    }
}
