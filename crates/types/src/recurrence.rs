//! The canonical key of one instance of a recurring event (RFC 5545 §3.8.4.4
//! RECURRENCE-ID), the key under which the event state orders its revisions.

use std::fmt;

use crate::datetime::{DateTime, DateTimeError};

/// Why a RECURRENCE-ID has no key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecurrenceKeyError {
    /// The value is relative to a TZID (`RECURRENCE-ID;TZID=Europe/Berlin:20260601T100000`).
    /// Keying it needs the calendar's VTIMEZONE evaluated to UTC, which is not supported:
    /// keying the local text would make `Europe/Berlin` and `America/New_York` at the same
    /// wall-clock time one instance (a false `stale-sequence`) and the same instant written
    /// in UTC and in a zone two instances (a hole in replay protection). Reason code
    /// `unsupported-recurrence-id`.
    #[error(
        "RECURRENCE-ID relative to TZID {tzid:?} is not supported (only UTC, DATE and \
         floating values can be keyed without evaluating a VTIMEZONE)"
    )]
    TzidRelative {
        /// The TZID parameter, cut to 64 characters.
        tzid: String,
    },
    /// Not a DATE or DATE-TIME value.
    #[error("RECURRENCE-ID value: {0}")]
    Invalid(#[from] DateTimeError),
}

/// A RECURRENCE-ID in canonical form: one text per instance, different texts for different
/// instances.
///
/// - a UTC DATE-TIME (`20260601T080000Z`) keys its instant;
/// - a DATE (`VALUE=DATE:20260601`) keys the day, `20260601`;
/// - a floating DATE-TIME (`20260601T100000`, no `Z`, no TZID: the event's DTSTART is
///   floating too, RFC 5545 §3.8.4.4) keys the wall-clock time, without `Z`, so it never
///   equals a UTC key;
/// - a TZID-relative value is refused ([`RecurrenceKeyError::TzidRelative`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecurrenceKey(String);

/// Longest TZID echoed back in an error.
const TZID_ECHO: usize = 64;

impl RecurrenceKey {
    /// Keys a RECURRENCE-ID `value` with its TZID parameter, if any.
    pub fn new(value: &str, tzid: Option<&str>) -> Result<RecurrenceKey, RecurrenceKeyError> {
        if let Some(tzid) = tzid {
            return Err(RecurrenceKeyError::TzidRelative {
                tzid: tzid.chars().take(TZID_ECHO).collect(),
            });
        }
        let parsed = if value.len() == 8 {
            DateTime::parse_date(value)?
        } else {
            DateTime::parse_date_time(value)?
        };
        if parsed.is_utc() {
            // Through the instant, so that the text is the one canonical form of it.
            parsed.to_utc_timestamp()?;
        }
        Ok(RecurrenceKey(parsed.canonical()))
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The canonical text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for RecurrenceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two zones at the same wall-clock time are different instants: they must never share
    /// a key (issue 15: a false `stale-sequence`). Until VTIMEZONE evaluation exists, both
    /// are refused.
    #[test]
    fn tzid_relative_recurrence_ids_of_two_zones_never_collide() {
        let berlin = RecurrenceKey::new("20260601T100000", Some("Europe/Berlin"));
        let new_york = RecurrenceKey::new("20260601T100000", Some("America/New_York"));
        assert!(
            matches!(berlin, Err(RecurrenceKeyError::TzidRelative { ref tzid }) if tzid == "Europe/Berlin")
        );
        assert!(new_york.is_err());
    }

    #[test]
    fn utc_date_and_floating_forms_have_distinct_canonical_keys() {
        let utc = RecurrenceKey::new("20260601T100000Z", None).unwrap();
        let floating = RecurrenceKey::new("20260601T100000", None).unwrap();
        let date = RecurrenceKey::new("20260601", None).unwrap();
        assert_eq!(utc.as_str(), "20260601T100000Z");
        assert_eq!(floating.as_str(), "20260601T100000");
        assert_eq!(date.as_str(), "20260601");
        assert_ne!(utc, floating);
        assert_ne!(floating, date);
    }

    #[test]
    fn malformed_values_have_no_key() {
        for value in [
            "",
            "2026-06-01",
            "20260601T1000Z",
            "20260631",
            "20260601t100000z",
        ] {
            assert!(
                matches!(
                    RecurrenceKey::new(value, None),
                    Err(RecurrenceKeyError::Invalid(_))
                ),
                "{value}"
            );
        }
    }
}
