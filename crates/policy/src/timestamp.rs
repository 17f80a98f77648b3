//! Points in time as whole seconds since the Unix epoch, UTC.

use std::fmt;

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::error::StoreError;

/// A point in time: whole seconds since 1970-01-01T00:00:00Z.
///
/// Chosen over `time::OffsetDateTime` because iTIP comparisons (RFC 5546
/// §2.1.5: SEQUENCE, then DTSTAMP) and validity windows only need a total
/// order at one-second resolution, and an `i64` maps one-to-one onto an
/// SQL integer column in any backend. DTSTAMP is a UTC DATE-TIME
/// (RFC 5545 §3.8.7.2), so no time zone is lost.
///
/// The crate never reads the clock: every decision takes a `Timestamp`.
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

    /// Parses an iCalendar UTC DATE-TIME, `19970324T120000Z`
    /// (RFC 5545 §3.3.5, "FORM #2: DATE WITH UTC TIME"). Floating and
    /// TZID-qualified forms are rejected: DTSTAMP "MUST be specified in
    /// UTC time format" (RFC 5545 §3.8.7.2). A leap second (`60`) is
    /// rejected too.
    pub fn parse_icalendar_utc(text: &str) -> Result<Self, StoreError> {
        let bytes = text.as_bytes();
        let bad = |offset: usize| StoreError::InvalidTimestamp { offset };
        if bytes.len() != 16 {
            return Err(bad(bytes.len().min(16)));
        }
        if bytes.get(8) != Some(&b'T') {
            return Err(bad(8));
        }
        if bytes.get(15) != Some(&b'Z') {
            return Err(bad(15));
        }
        let number = |from: usize, to: usize| -> Result<i32, StoreError> {
            let mut value = 0i32;
            for offset in from..to {
                match bytes.get(offset) {
                    Some(digit @ b'0'..=b'9') => value = value * 10 + i32::from(digit - b'0'),
                    _ => return Err(bad(offset)),
                }
            }
            Ok(value)
        };
        let year = number(0, 4)?;
        let month = u8::try_from(number(4, 6)?).map_err(|_| bad(4))?;
        let day = u8::try_from(number(6, 8)?).map_err(|_| bad(6))?;
        let hour = u8::try_from(number(9, 11)?).map_err(|_| bad(9))?;
        let minute = u8::try_from(number(11, 13)?).map_err(|_| bad(11))?;
        let second = u8::try_from(number(13, 15)?).map_err(|_| bad(13))?;
        let month = Month::try_from(month).map_err(|_| bad(4))?;
        let date = Date::from_calendar_date(year, month, day).map_err(|_| bad(6))?;
        let time = Time::from_hms(hour, minute, second).map_err(|_| bad(9))?;
        Ok(Timestamp(
            PrimitiveDateTime::new(date, time)
                .assume_utc()
                .unix_timestamp(),
        ))
    }

    /// Parses RFC 3339 (`2026-11-27T23:40:00Z`, offsets allowed), as used in
    /// the JSON export. Fractional seconds are truncated.
    pub fn parse_rfc3339(text: &str) -> Result<Self, StoreError> {
        OffsetDateTime::parse(text, &Rfc3339)
            .map(|t| Timestamp(t.unix_timestamp()))
            .map_err(|_| StoreError::InvalidTimestamp { offset: 0 })
    }

    /// Formats as RFC 3339 in UTC, `2026-11-27T23:40:00Z`. Fails only for
    /// years outside 0000..=9999.
    pub fn to_rfc3339(self) -> Result<String, StoreError> {
        let out_of_range = StoreError::TimestampOutOfRange { seconds: self.0 };
        let t = OffsetDateTime::from_unix_timestamp(self.0).map_err(|_| out_of_range)?;
        t.format(&Rfc3339)
            .map_err(|_| StoreError::TimestampOutOfRange { seconds: self.0 })
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
            assert!(
                matches!(
                    Timestamp::parse_icalendar_utc(text),
                    Err(StoreError::InvalidTimestamp { offset: o }) if o == offset
                ),
                "{text}"
            );
        }
    }
}
