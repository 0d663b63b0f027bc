//! Sequencing timestamps: one fixed-width spelling.
//!
//! `ts` is written as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, always 27 bytes, UTC,
//! microseconds. RFC 3339 allows many spellings of one instant (offsets,
//! any number of fraction digits, lowercase `t`/`z`); accepting them would
//! give one envelope several byte forms. With a single fixed-width form,
//! byte order equals time order, so stored timestamps sort as strings.
//!
//! The calendar arithmetic is the proleptic Gregorian "days from civil"
//! computation described by Howard Hinnant
//! (<https://howardhinnant.github.io/date_algorithms.html>), written here in
//! a few lines rather than pulling in a date crate. Leap seconds do not
//! exist in Unix time, so `:60` is refused.

use super::{EntryError, clip};

const MICROS_PER_SEC: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;

/// `0000-01-01T00:00:00.000000Z`, the earliest instant with a four-digit
/// year.
pub const MIN_TS_MICROS: i64 = -62_167_219_200_000_000;
/// `9999-12-31T23:59:59.999999Z`, the latest instant with a four-digit
/// year.
pub const MAX_TS_MICROS: i64 = 253_402_300_799_999_999;

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Count years from March, so the leap day is the last day of the year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719,468 days lie between 0000-03-01 and 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// Inverse of [`days_from_civil`]: `(year, month, day)`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Formats microseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
///
/// Values outside [`MIN_TS_MICROS`]..=[`MAX_TS_MICROS`] have no four-digit
/// year and are clamped to the nearest end; use [`try_format_ts`] to be told
/// instead.
pub fn format_ts(unix_micros: i64) -> String {
    let t = unix_micros.clamp(MIN_TS_MICROS, MAX_TS_MICROS);
    let days = t.div_euclid(MICROS_PER_DAY);
    let in_day = t.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let secs = in_day / MICROS_PER_SEC;
    let micros = in_day % MICROS_PER_SEC;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Like [`format_ts`], but refuses out-of-range values with
/// `entry.bad_timestamp`.
pub fn try_format_ts(unix_micros: i64) -> Result<String, EntryError> {
    if (MIN_TS_MICROS..=MAX_TS_MICROS).contains(&unix_micros) {
        Ok(format_ts(unix_micros))
    } else {
        Err(EntryError::BadTimestamp {
            value: unix_micros.to_string(),
        })
    }
}

/// Reads `n` ASCII digits at `at`.
fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let mut v = 0i64;
    for &c in b.get(at..at + n)? {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// Parses exactly `YYYY-MM-DDTHH:MM:SS.ffffffZ` into microseconds since the
/// Unix epoch. Anything else — another offset, another precision, lowercase
/// letters, a leap second, an impossible date — is `entry.bad_timestamp`.
pub fn parse_ts(s: &str) -> Result<i64, EntryError> {
    parse_ts_inner(s.as_bytes()).ok_or_else(|| EntryError::BadTimestamp { value: clip(s, 64) })
}

fn parse_ts_inner(b: &[u8]) -> Option<i64> {
    if b.len() != 27
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[26] != b'Z'
    {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    let micros = digits(b, 20, 6)?;
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(secs * MICROS_PER_SEC + micros)
}

/// Whether `s` is an RFC 3339 `date-time` (§5.6): any offset, any number of
/// fraction digits, `T`/`Z` in either case (§5.6 note), and second 60 for
/// a leap second. This is the client's own clock reading, kept as sent, so
/// it is only checked, never rewritten.
pub(super) fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return false;
    }
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        digits(b, 0, 4),
        digits(b, 5, 2),
        digits(b, 8, 2),
        digits(b, 11, 2),
        digits(b, 14, 2),
        digits(b, 17, 2),
    ) else {
        return false;
    };
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return false;
    }
    let mut rest = &b[19..];
    if let Some((b'.', r)) = rest.split_first() {
        let n = r.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &r[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', _, _, b':', _, _] => {
            matches!((digits(rest, 1, 2), digits(rest, 4, 2)), (Some(h), Some(m)) if h <= 23 && m <= 59)
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn range_ends_are_exact() {
        assert_eq!(format_ts(MIN_TS_MICROS), "0000-01-01T00:00:00.000000Z");
        assert_eq!(format_ts(MAX_TS_MICROS), "9999-12-31T23:59:59.999999Z");
        assert_eq!(format_ts(i64::MIN), "0000-01-01T00:00:00.000000Z");
        assert_eq!(format_ts(i64::MAX), "9999-12-31T23:59:59.999999Z");
        assert!(try_format_ts(MAX_TS_MICROS + 1).is_err());
        assert!(try_format_ts(MIN_TS_MICROS - 1).is_err());
    }

    #[test]
    fn rfc3339_checker() {
        for s in [
            "2026-11-22T18:03:07Z",
            "2026-11-22t18:03:07z",
            "2026-11-22T18:03:07.1+05:30",
            "2016-12-31T23:59:60Z",
            "2024-02-29T00:00:00-00:00",
        ] {
            assert!(is_rfc3339(s), "{s}");
        }
        for s in [
            "2026-11-22 18:03:07Z",
            "2026-11-22T18:03:07",
            "2026-11-22T18:03:07.Z",
            "2023-02-29T00:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T18:03:07+0530",
            "2026-11-22T18:03:07+05:30x",
            "2026-13-01T00:00:00Z",
        ] {
            assert!(!is_rfc3339(s), "{s}");
        }
    }
}
