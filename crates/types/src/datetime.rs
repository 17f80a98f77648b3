//! iCalendar DATE and DATE-TIME values (RFC 5545 §3.3.4, §3.3.5), read once, and
//! [`Timestamp`], the UTC instant every decision compares.

use std::fmt;

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Why a DATE, DATE-TIME or RFC 3339 text was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DateTimeError {
    /// Not the grammar, or not a real calendar day or time; `offset` is the first byte
    /// found wrong.
    #[error("invalid date-time at byte {offset}")]
    Invalid {
        /// Byte offset in the value.
        offset: usize,
    },
    /// A DATE-TIME where a UTC one is required (RFC 5545 §3.8.7.2: DTSTAMP "MUST be
    /// specified in UTC time format").
    #[error("date-time is not in UTC")]
    NotUtc,
    /// A leap second (`60`): legal iCalendar syntax, but no instant this crate can order.
    #[error("date-time names a leap second")]
    LeapSecond,
    /// Outside the years 0000..=9999.
    #[error("time {seconds} s since the epoch is outside 0000..=9999")]
    OutOfRange {
        /// Seconds since the Unix epoch.
        seconds: i64,
    },
}

/// An iCalendar DATE (`19970714`) or DATE-TIME (`19970714T173000`, `19970714T173000Z`),
/// syntax checked and naming a real day and time (a leap second `60` is accepted as
/// RFC 5545 §3.3.5 allows; [`DateTime::to_utc_timestamp`] refuses it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DateTime {
    date: Date,
    /// Hour, minute, second; `None` for a DATE.
    time: Option<(u8, u8, u8)>,
    utc: bool,
}

/// Reads `to - from` ASCII digits at `from` of `bytes`.
fn number(bytes: &[u8], from: usize, to: usize) -> Result<i32, DateTimeError> {
    let mut value = 0i32;
    for offset in from..to {
        match bytes.get(offset) {
            Some(digit @ b'0'..=b'9') => value = value * 10 + i32::from(digit - b'0'),
            _ => return Err(DateTimeError::Invalid { offset }),
        }
    }
    Ok(value)
}

fn invalid(offset: usize) -> DateTimeError {
    DateTimeError::Invalid { offset }
}

impl DateTime {
    /// Parses a DATE (RFC 5545 §3.3.4): `YYYYMMDD` naming a real calendar day.
    pub fn parse_date(text: &str) -> Result<DateTime, DateTimeError> {
        let bytes = text.as_bytes();
        if bytes.len() != 8 {
            return Err(invalid(bytes.len().min(8)));
        }
        Ok(DateTime {
            date: Self::date(bytes)?,
            time: None,
            utc: false,
        })
    }

    /// Parses a DATE-TIME (RFC 5545 §3.3.5): `YYYYMMDD "T" HHMMSS` with an optional `Z`
    /// (FORM #1 floating / FORM #3 local when not `Z`, FORM #2 UTC with it).
    pub fn parse_date_time(text: &str) -> Result<DateTime, DateTimeError> {
        let bytes = text.as_bytes();
        let utc = match bytes.len() {
            15 => false,
            16 if bytes.get(15) == Some(&b'Z') => true,
            16 => return Err(invalid(15)),
            len => return Err(invalid(len.min(16))),
        };
        if bytes.get(8) != Some(&b'T') {
            return Err(invalid(8));
        }
        let date = Self::date(bytes)?;
        let hour = number(bytes, 9, 11)?;
        let minute = number(bytes, 11, 13)?;
        let second = number(bytes, 13, 15)?;
        if hour > 23 {
            return Err(invalid(9));
        }
        if minute > 59 {
            return Err(invalid(11));
        }
        if second > 60 {
            return Err(invalid(13));
        }
        let [hour, minute, second] =
            [hour, minute, second].map(|n| u8::try_from(n).unwrap_or(u8::MAX));
        Ok(DateTime {
            date,
            time: Some((hour, minute, second)),
            utc,
        })
    }

    fn date(bytes: &[u8]) -> Result<Date, DateTimeError> {
        let year = number(bytes, 0, 4)?;
        let month = number(bytes, 4, 6)?;
        let month = u8::try_from(month)
            .ok()
            .and_then(|m| Month::try_from(m).ok())
            .ok_or(invalid(4))?;
        let day = u8::try_from(number(bytes, 6, 8)?).map_err(|_| invalid(6))?;
        Date::from_calendar_date(year, month, day).map_err(|_| invalid(6))
    }

    /// True for a DATE value (no time of day).
    pub fn is_date(&self) -> bool {
        self.time.is_none()
    }

    /// True for a DATE-TIME in UTC (`Z`).
    pub fn is_utc(&self) -> bool {
        self.utc
    }

    /// The UTC instant of a UTC DATE-TIME; a DATE, a floating or local time (no `Z`) is
    /// [`DateTimeError::NotUtc`], a leap second [`DateTimeError::LeapSecond`].
    pub fn to_utc_timestamp(&self) -> Result<Timestamp, DateTimeError> {
        let (Some((hour, minute, second)), true) = (self.time, self.utc) else {
            return Err(DateTimeError::NotUtc);
        };
        if second == 60 {
            return Err(DateTimeError::LeapSecond);
        }
        let time = Time::from_hms(hour, minute, second).map_err(|_| invalid(9))?;
        Ok(Timestamp(
            PrimitiveDateTime::new(self.date, time)
                .assume_utc()
                .unix_timestamp(),
        ))
    }

    /// The calendar day.
    pub(crate) fn calendar_date(&self) -> Date {
        self.date
    }

    /// Seconds since 1970-01-01T00:00:00 of the wall-clock time as written, read as if it
    /// were UTC (the instant of a UTC value; for a local time, the number the VTIMEZONE
    /// evaluator subtracts an offset from). `None` for a DATE or a leap second.
    pub(crate) fn local_seconds(&self) -> Option<i64> {
        let (hour, minute, second) = self.time?;
        let time = Time::from_hms(hour, minute, second).ok()?;
        Some(
            PrimitiveDateTime::new(self.date, time)
                .assume_utc()
                .unix_timestamp(),
        )
    }

    /// The UTC DATE-TIME of an instant; [`DateTimeError::OutOfRange`] outside the years
    /// 0000..=9999.
    pub fn from_timestamp_utc(instant: Timestamp) -> Result<DateTime, DateTimeError> {
        let out_of_range = DateTimeError::OutOfRange {
            seconds: instant.unix_seconds(),
        };
        let t = OffsetDateTime::from_unix_timestamp(instant.unix_seconds())
            .map_err(|_| out_of_range.clone())?;
        if !(0..=9_999).contains(&t.year()) {
            return Err(out_of_range);
        }
        Ok(DateTime {
            date: t.date(),
            time: Some((t.hour(), t.minute(), t.second())),
            utc: true,
        })
    }

    /// The canonical text: `YYYYMMDD`, `YYYYMMDDTHHMMSS` or `YYYYMMDDTHHMMSSZ`.
    pub fn canonical(&self) -> String {
        let date = format!(
            "{:04}{:02}{:02}",
            self.date.year(),
            u8::from(self.date.month()),
            self.date.day()
        );
        match self.time {
            None => date,
            Some((h, m, s)) => format!(
                "{date}T{h:02}{m:02}{s:02}{}",
                if self.utc { "Z" } else { "" }
            ),
        }
    }
}

/// A point in time: whole seconds since 1970-01-01T00:00:00Z.
///
/// Chosen over `time::OffsetDateTime` because iTIP comparisons (RFC 5546 §2.1.5: SEQUENCE,
/// then DTSTAMP) and validity windows only need a total order at one-second resolution, and
/// an `i64` maps one-to-one onto an SQL integer column in any backend. DTSTAMP is a UTC
/// DATE-TIME (RFC 5545 §3.8.7.2), so no time zone is lost.
///
/// Nothing here reads the clock: every decision takes a `Timestamp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From seconds since the Unix epoch.
    pub const fn from_unix_seconds(seconds: i64) -> Self {
        Timestamp(seconds)
    }

    /// Seconds since the Unix epoch.
    pub const fn unix_seconds(self) -> i64 {
        self.0
    }

    /// This time plus `seconds` (saturating).
    pub const fn plus_seconds(self, seconds: i64) -> Self {
        Timestamp(self.0.saturating_add(seconds))
    }

    /// Parses an iCalendar UTC DATE-TIME, `19970324T120000Z` (RFC 5545 §3.3.5, "FORM #2:
    /// DATE WITH UTC TIME"), the form of DTSTAMP. Floating and TZID-qualified forms are
    /// rejected: DTSTAMP "MUST be specified in UTC time format" (RFC 5545 §3.8.7.2). A leap
    /// second (`60`) is rejected too. Errors carry the offset of the first wrong byte.
    pub fn parse_icalendar_utc(text: &str) -> Result<Self, DateTimeError> {
        if text.len() == 15 {
            // Shaped like a floating DATE-TIME: say where the `Z` is missing.
            return Err(invalid(15));
        }
        match DateTime::parse_date_time(text)?.to_utc_timestamp() {
            Err(DateTimeError::NotUtc) => Err(invalid(15)),
            Err(DateTimeError::LeapSecond) => Err(invalid(9)),
            other => other,
        }
    }

    /// Parses RFC 3339 (`2026-11-27T23:40:00Z`, offsets allowed). Fractional seconds are
    /// truncated.
    pub fn parse_rfc3339(text: &str) -> Result<Self, DateTimeError> {
        OffsetDateTime::parse(text, &Rfc3339)
            .map(|t| Timestamp(t.unix_timestamp()))
            .map_err(|_| invalid(0))
    }

    /// Formats as RFC 3339 in UTC, `2026-11-27T23:40:00Z`. Fails only for years outside
    /// 0000..=9999.
    pub fn to_rfc3339(self) -> Result<String, DateTimeError> {
        let out_of_range = DateTimeError::OutOfRange { seconds: self.0 };
        let t = OffsetDateTime::from_unix_timestamp(self.0).map_err(|_| out_of_range.clone())?;
        t.format(&Rfc3339).map_err(|_| out_of_range)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_rfc3339() {
            Ok(text) => f.write_str(&text),
            Err(_) => write!(f, "@{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_icalendar_utc() {
        let t = Timestamp::parse_icalendar_utc("19970324T120000Z").unwrap();
        assert_eq!(t.unix_seconds(), 859_204_800);
        assert_eq!(t.to_rfc3339().unwrap(), "1997-03-24T12:00:00Z");
        assert_eq!(Timestamp::parse_rfc3339("1997-03-24T12:00:00Z").unwrap(), t);
    }

    #[test]
    fn rejects_malformed_icalendar_with_offset() {
        for (text, offset) in [
            ("19970324T120000", 15),
            ("19970324 120000Z", 8),
            ("1997032XT120000Z", 7),
            ("19971324T120000Z", 4),
            ("19970230T120000Z", 6),
            ("19970324T250000Z", 9),
            ("19970324T235960Z", 9),
        ] {
            assert_eq!(
                Timestamp::parse_icalendar_utc(text),
                Err(DateTimeError::Invalid { offset }),
                "{text}"
            );
        }
    }

    #[test]
    fn date_time_syntax() {
        let ok = |s: &str| DateTime::parse_date_time(s).is_ok();
        assert!(
            ok("19970701T210000Z")
                && DateTime::parse_date_time("19970701T210000Z")
                    .unwrap()
                    .is_utc()
        );
        assert!(ok("19970701T210000"));
        assert!(ok("19970701T235960"), "leap second is iCalendar syntax");
        assert!(!ok("199706211T210000Z"));
        assert!(!ok("19970701T090000-0700"));
        assert!(!ok("19970231T090000"));
        assert!(!ok("+9970701T090000"));
        assert!(DateTime::parse_date("20240229").is_ok());
        assert!(DateTime::parse_date("20230229").is_err());
        assert!(DateTime::parse_date("2023+229").is_err());
        assert_eq!(
            DateTime::parse_date("20240229").unwrap().canonical(),
            "20240229"
        );
        assert_eq!(
            DateTime::parse_date_time("20240229T010203Z")
                .unwrap()
                .canonical(),
            "20240229T010203Z"
        );
    }
}
