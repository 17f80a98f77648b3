//! The canonical key of one instance of a recurring event (RFC 5545 §3.8.4.4
//! RECURRENCE-ID), the key under which the event state orders its revisions.

use std::fmt;

use crate::datetime::{DateTime, DateTimeError};
use crate::timezone::{TimeZones, TimezoneError};

/// Why a RECURRENCE-ID has no key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecurrenceKeyError {
    /// The value is relative to a TZID (`RECURRENCE-ID;TZID=Europe/Berlin:20260601T100000`)
    /// and could not be resolved to UTC through the calendar's VTIMEZONE: none or several
    /// with that TZID, one outside the evaluator's subset, a limit exceeded, or a value a
    /// TZID cannot qualify (a DATE, a UTC time). Keying the local text instead would make
    /// `Europe/Berlin` and `America/New_York` at the same wall-clock time one instance (a
    /// false `stale-sequence`) and the same instant written in UTC and in a zone two
    /// instances (a hole in replay protection). Reason code `unsupported-recurrence-id`.
    #[error("RECURRENCE-ID relative to TZID {tzid:?} cannot be resolved to UTC: {reason}")]
    TzidRelative {
        /// The TZID parameter, cut to 64 characters.
        tzid: String,
        /// What was not supported.
        reason: TimezoneError,
    },
    /// Not a DATE or DATE-TIME value.
    #[error("RECURRENCE-ID value: {0}")]
    Invalid(#[from] DateTimeError),
}

/// A RECURRENCE-ID in canonical form: one text per instance, different texts for different
/// instances.
///
/// - a UTC DATE-TIME (`20260601T080000Z`) keys its instant;
/// - a TZID-relative DATE-TIME (`TZID=Europe/Berlin:20260601T100000`) is resolved to its
///   instant through the calendar's VTIMEZONE ([`TimeZones::resolve`]) and keys that
///   instant in the UTC form, so it equals the key of the same instant written in UTC and
///   differs from the same wall-clock time in another zone; what the evaluator does not
///   support is refused ([`RecurrenceKeyError::TzidRelative`]);
/// - a DATE (`VALUE=DATE:20260601`) keys the day, `20260601`;
/// - a floating DATE-TIME (`20260601T100000`, no `Z`, no TZID: the event's DTSTART is
///   floating too, RFC 5545 §3.8.4.4) keys the wall-clock time, without `Z`, so it never
///   equals a UTC key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecurrenceKey(String);

/// Longest TZID echoed back in an error.
const TZID_ECHO: usize = 64;

impl RecurrenceKey {
    /// Keys a RECURRENCE-ID `value` with its TZID parameter, if any, resolving a
    /// TZID-relative value through `timezones`, the VTIMEZONEs of the same calendar.
    pub fn new(
        value: &str,
        tzid: Option<&str>,
        timezones: &TimeZones,
    ) -> Result<RecurrenceKey, RecurrenceKeyError> {
        let parsed = if value.len() == 8 {
            DateTime::parse_date(value)?
        } else {
            DateTime::parse_date_time(value)?
        };
        if let Some(tzid) = tzid {
            let zoned = |reason| RecurrenceKeyError::TzidRelative {
                tzid: tzid.chars().take(TZID_ECHO).collect(),
                reason,
            };
            // RFC 5545 §3.2.19: TZID "MUST NOT" qualify a DATE or a UTC time.
            if parsed.is_date() {
                return Err(zoned(TimezoneError::LocalTime("a DATE with a TZID")));
            }
            let instant = timezones.resolve(tzid, &parsed).map_err(zoned)?;
            let utc = DateTime::from_timestamp_utc(instant)?;
            return Ok(RecurrenceKey(utc.canonical()));
        }
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
    use crate::timezone::{Observance, ObservanceKind, VTimezone};

    /// A zone with one fixed offset, as a VTIMEZONE.
    fn fixed(tzid: &str, offset: &str) -> VTimezone {
        let mut standard = Observance::new(ObservanceKind::Standard);
        standard
            .dtstart
            .push(crate::timezone::ZoneValue::plain("19700101T000000"));
        standard.offset_from.push(offset.to_owned());
        standard.offset_to.push(offset.to_owned());
        VTimezone {
            tzids: vec![tzid.to_owned()],
            observances: vec![standard],
        }
    }

    /// Two zones at the same wall-clock time are different instants: they must never share
    /// a key (issue 15: a false `stale-sequence`).
    #[test]
    fn tzid_relative_recurrence_ids_of_two_zones_never_collide() {
        let zones = [
            fixed("Europe/Berlin", "+0200"),
            fixed("America/New_York", "-0400"),
        ];
        let berlin = RecurrenceKey::new(
            "20260601T100000",
            Some("Europe/Berlin"),
            &TimeZones::read(&zones),
        )
        .unwrap();
        let new_york = RecurrenceKey::new(
            "20260601T100000",
            Some("America/New_York"),
            &TimeZones::read(&zones),
        )
        .unwrap();
        assert_eq!(berlin.as_str(), "20260601T080000Z");
        assert_eq!(new_york.as_str(), "20260601T140000Z");
        assert_ne!(berlin, new_york);
    }

    /// One instant written in UTC and in a zone is one key (issue 15: otherwise a replay of
    /// an older SEQUENCE in the other form is a fresh instance).
    #[test]
    fn one_instant_in_utc_and_in_a_zone_is_one_key() {
        let zones = [fixed("Europe/Berlin", "+0200")];
        assert_eq!(
            RecurrenceKey::new(
                "20260601T100000",
                Some("Europe/Berlin"),
                &TimeZones::read(&zones)
            )
            .unwrap(),
            RecurrenceKey::new("20260601T080000Z", None, &TimeZones::default()).unwrap()
        );
    }

    /// Without a VTIMEZONE for the TZID, or with a TZID on a value it cannot qualify, there
    /// is no key: the error names the TZID and what was unsupported.
    #[test]
    fn unresolvable_tzid_relative_values_are_refused() {
        let zones = [fixed("Europe/Berlin", "+0200")];
        let missing = RecurrenceKey::new(
            "20260601T100000",
            Some("Europe/Paris"),
            &TimeZones::read(&zones),
        );
        assert!(matches!(
            missing,
            Err(RecurrenceKeyError::TzidRelative { ref tzid, reason: TimezoneError::NoVtimezone })
                if tzid == "Europe/Paris"
        ));
        for value in ["20260601", "20260601T100000Z", "20260601T235960"] {
            assert!(
                matches!(
                    RecurrenceKey::new(value, Some("Europe/Berlin"), &TimeZones::read(&zones)),
                    Err(RecurrenceKeyError::TzidRelative { .. })
                ),
                "{value}"
            );
        }
    }

    #[test]
    fn utc_date_and_floating_forms_have_distinct_canonical_keys() {
        let utc = RecurrenceKey::new("20260601T100000Z", None, &TimeZones::default()).unwrap();
        let floating = RecurrenceKey::new("20260601T100000", None, &TimeZones::default()).unwrap();
        let date = RecurrenceKey::new("20260601", None, &TimeZones::default()).unwrap();
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
                    RecurrenceKey::new(value, None, &TimeZones::default()),
                    Err(RecurrenceKeyError::Invalid(_))
                ),
                "{value}"
            );
        }
    }
}
