//! A small, pure, bounded VTIMEZONE evaluator (RFC 5545 §3.6.5): the UTC instant of a local
//! DATE-TIME written relative to a TZID (`RECURRENCE-ID;TZID=W. Europe Standard Time:
//! 20260601T100000`), read through the calendar's own VTIMEZONE.
//!
//! # Why own code
//!
//! The decision needs one thing from a VTIMEZONE: the offset in force at one local time,
//! so that a RECURRENCE-ID written in a zone and the same instant written in UTC are one
//! key. The calendar crates that evaluate VTIMEZONEs (calcard, icalendar, rrule) expand
//! every recurrence rule in general, pull in a time-zone database or chrono-tz, and are not
//! bounded by limits this project names; none of that is needed for the shapes real zones
//! use. This module reads only that subset, computes each rule's onset in closed form for
//! the few years around the local time (no iteration over the years since DTSTART, so
//! Outlook's `DTSTART:16010101T...` costs what a 2026 DTSTART costs), never reads the
//! clock or a zone database (the calendar's VTIMEZONE is the only source: the sender states
//! what it means), and refuses everything else with a [`TimezoneError`] naming it.
//!
//! # The subset
//!
//! - the one VTIMEZONE whose TZID equals the parameter exactly (none, or more than one, is
//!   refused; RFC 5545 §3.6.5 names one TZID per VTIMEZONE and one VTIMEZONE per TZID);
//! - its STANDARD and DAYLIGHT observances, each with exactly one DTSTART (a local
//!   DATE-TIME), TZOFFSETFROM and TZOFFSETTO (`±HHMM[SS]`, `-0000` refused as RFC 5545
//!   §3.3.14 says), at most one RRULE and any RDATEs (local DATE-TIMEs);
//! - RRULE: `FREQ=YEARLY` with `INTERVAL=1` (or none), `BYMONTH` (one month), `BYDAY` (one
//!   weekday with an ordinal 1..4 or -1..-4: `-1SU`, `2SU`; or a weekday without an ordinal
//!   together with seven consecutive `BYMONTHDAY`s within 1..28, the older "Sunday on or
//!   after the 8th" form), `BYMONTHDAY` (one day within 1..28) alone, `UNTIL`, `COUNT`
//!   and `WKST`. Every such rule names exactly one day in every year, which is what lets
//!   the onsets be computed in closed form.
//!
//! # Which offset
//!
//! An onset is the observance's DTSTART, an RDATE or an RRULE occurrence, a local time in
//! the offset before it (TZOFFSETFROM); its instant is that local time minus TZOFFSETFROM,
//! and from that instant TZOFFSETTO is in force. A local time maps to the instant `local -
//! offset` for the offset in force at that instant. Around a transition RFC 5545 §3.3.5
//! decides: a local time that occurs twice (the overlap, daylight to standard time)
//! "refers to the first occurrence" (New York's 01:30 on 2007-11-04 is 01:30 EDT), and a
//! local time that does not occur (the gap, standard to daylight time) "is interpreted
//! using the UTC offset before the gap in local times" (New York's 02:30 on 2007-03-11 is
//! 07:30Z, 03:30 EDT). A local time before the first onset of every observance has no
//! offset in force and is refused ([`TimezoneError::BeforeFirstOnset`]).
//!
//! # Bounds
//!
//! [`MAX_OBSERVANCES`] and [`MAX_RDATES`] are checked before any value is read; each
//! observance then contributes at most [`MAX_RULE_YEARS`] rule occurrences, its DTSTART and
//! its RDATEs, so one evaluation is linear in the size of the VTIMEZONE.

use std::collections::BTreeMap;
use std::fmt;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, Weekday};

use crate::datetime::{DateTime, Timestamp};

/// Most STANDARD and DAYLIGHT observances read in one VTIMEZONE. Real zones as clients
/// write them (Outlook, Google, Apple, Thunderbird) have one or two; a full-history zone
/// (tzurl.org) a few dozen. Every key costs one pass over the observances, so this bounds
/// the work per RECURRENCE-ID (measured, release build: the heaviest calendar within the
/// parser's default limits, about 1,900 zoned keys through one zone at this bound and
/// [`MAX_RDATES`], parses in about 4 times the time of the same calendar keyed in UTC,
/// 0.1 to 0.2 s; `heaviest_zone_within_the_limits_costs_a_small_multiple_of_utc_keys`).
pub const MAX_OBSERVANCES: usize = 64;

/// Most RDATE values read in one VTIMEZONE (all observances together).
pub const MAX_RDATES: usize = 1_024;

/// Most years for which one observance's RRULE is evaluated per local time: the years
/// around it (three days either side) and the two before the rule's last year.
pub const MAX_RULE_YEARS: usize = 5;

/// Longest text echoed back in an error.
const ECHO: usize = 64;

/// Seconds either side of the local time within which every onset is collected: more than
/// any two UTC offsets (each under 24 hours) can move an instant from its local time.
const WINDOW: i64 = 3 * 86_400;

fn echo(text: &str) -> String {
    text.chars().take(ECHO).collect()
}

/// One VTIMEZONE component as written (RFC 5545 §3.6.5): what a parser hands the evaluator.
/// Nothing here is checked yet; [`resolve_local_time`] checks what it reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VTimezone {
    /// Every TZID property value (exactly one is valid).
    pub tzids: Vec<String>,
    /// The STANDARD and DAYLIGHT sub-components, in order.
    pub observances: Vec<Observance>,
}

/// STANDARD or DAYLIGHT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObservanceKind {
    /// STANDARD.
    Standard,
    /// DAYLIGHT.
    Daylight,
}

/// A STANDARD or DAYLIGHT sub-component as written: every property the evaluator reads,
/// all occurrences kept so that "exactly one" can be checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observance {
    /// STANDARD or DAYLIGHT.
    pub kind: ObservanceKind,
    /// Every DTSTART.
    pub dtstart: Vec<ZoneValue>,
    /// Every TZOFFSETFROM value.
    pub offset_from: Vec<String>,
    /// Every TZOFFSETTO value.
    pub offset_to: Vec<String>,
    /// Every RRULE value.
    pub rrules: Vec<String>,
    /// Every RDATE property.
    pub rdates: Vec<ZoneValue>,
}

impl Observance {
    /// An observance with no properties yet.
    pub fn new(kind: ObservanceKind) -> Observance {
        Observance {
            kind,
            dtstart: Vec::new(),
            offset_from: Vec::new(),
            offset_to: Vec::new(),
            rrules: Vec::new(),
            rdates: Vec::new(),
        }
    }
}

/// A DTSTART or RDATE property: its value text (an RDATE's may be a comma-separated list)
/// and the parameters that change its meaning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneValue {
    /// The value as written.
    pub value: String,
    /// The VALUE parameter, if any.
    pub value_type: Option<String>,
    /// True when the property carries a TZID parameter.
    pub has_tzid: bool,
}

impl ZoneValue {
    /// A value without parameters.
    pub fn plain(value: &str) -> ZoneValue {
        ZoneValue {
            value: value.to_owned(),
            value_type: None,
            has_tzid: false,
        }
    }
}

/// Why a local time could not be resolved through a VTIMEZONE. Every variant is outside
/// the supported subset (reason code `unsupported-recurrence-id` for a RECURRENCE-ID).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimezoneError {
    /// No VTIMEZONE has this TZID (RFC 5545 §3.2.19: it "MUST" be present).
    #[error("no VTIMEZONE with this TZID")]
    NoVtimezone,
    /// More than one VTIMEZONE has this TZID: which one is meant is not said.
    #[error("{count} VTIMEZONEs with this TZID")]
    SeveralVtimezones {
        /// How many.
        count: usize,
    },
    /// A named bound was exceeded (checked before the work).
    #[error("VTIMEZONE has more than {limit} {what}")]
    Limit {
        /// What was counted.
        what: &'static str,
        /// The bound.
        limit: usize,
    },
    /// A property or rule part outside the supported subset, or a value it cannot read.
    #[error("VTIMEZONE {property}: {detail}")]
    Unsupported {
        /// The property (or `RRULE` part) concerned.
        property: &'static str,
        /// What was found, cut to 64 characters.
        detail: String,
    },
    /// The local time lies before the first onset of every observance: no offset is in
    /// force.
    #[error("local time before the first observance onset")]
    BeforeFirstOnset,
    /// Two observances begin at one instant with different offsets.
    #[error("two observances begin at one instant with different offsets")]
    SimultaneousOnsets,
    /// The local time is not a DATE-TIME naming a second this evaluator can order (a DATE,
    /// a UTC value, a leap second, or an instant outside 0000..=9999).
    #[error("local time not resolvable: {0}")]
    LocalTime(&'static str),
}

fn unsupported(property: &'static str, detail: impl AsRef<str>) -> TimezoneError {
    TimezoneError::Unsupported {
        property,
        detail: echo(detail.as_ref()),
    }
}

/// The UTC instant of `local` (a DATE-TIME without `Z`) in the zone `tzid`, read through
/// the one VTIMEZONE of `timezones` whose TZID is exactly `tzid`. See the module doc for
/// the subset, the gap and overlap rule, and the bounds. To resolve many times through one
/// calendar's zones, read them once with [`TimeZones::read`].
pub fn resolve_local_time(
    timezones: &[VTimezone],
    tzid: &str,
    local: &DateTime,
) -> Result<Timestamp, TimezoneError> {
    let mut matching = timezones
        .iter()
        .filter(|zone| zone.tzids.iter().any(|id| id == tzid));
    let zone = matching.next().ok_or(TimezoneError::NoVtimezone)?;
    let others = matching.count();
    if others > 0 {
        return Err(TimezoneError::SeveralVtimezones { count: others + 1 });
    }
    Zone::read(zone)?.resolve(local)
}

/// The VTIMEZONEs of one calendar, each read and checked once, by TZID: what a parser
/// builds once per calendar to key every RECURRENCE-ID of it, so that the work per key is
/// one evaluation, not one reading of the zone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeZones {
    by_tzid: BTreeMap<String, Result<Zone, TimezoneError>>,
}

impl TimeZones {
    /// Reads every VTIMEZONE: its result (the checked zone, or why not) under each of its
    /// TZIDs; a TZID of several VTIMEZONEs is [`TimezoneError::SeveralVtimezones`].
    pub fn read(timezones: &[VTimezone]) -> TimeZones {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for id in timezones.iter().flat_map(|zone| &zone.tzids) {
            *counts.entry(id.as_str()).or_default() += 1;
        }
        let mut by_tzid = BTreeMap::new();
        for zone in timezones {
            for id in &zone.tzids {
                if by_tzid.contains_key(id) {
                    continue;
                }
                let read = match counts.get(id.as_str()).copied().unwrap_or(0) {
                    count if count > 1 => Err(TimezoneError::SeveralVtimezones { count }),
                    _ => Zone::read(zone),
                };
                by_tzid.insert(id.clone(), read);
            }
        }
        TimeZones { by_tzid }
    }

    /// The UTC instant of `local` in the zone `tzid` (see [`resolve_local_time`]).
    pub fn resolve(&self, tzid: &str, local: &DateTime) -> Result<Timestamp, TimezoneError> {
        match self.by_tzid.get(tzid) {
            None => Err(TimezoneError::NoVtimezone),
            Some(Err(error)) => Err(error.clone()),
            Some(Ok(zone)) => zone.resolve(local),
        }
    }
}

/// One VTIMEZONE, read and checked: its observances with their values parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Zone {
    observances: Vec<Parsed>,
}

impl Zone {
    /// Reads and checks one VTIMEZONE; the limits are checked before any value is read.
    fn read(zone: &VTimezone) -> Result<Zone, TimezoneError> {
        if zone.tzids.len() != 1 {
            return Err(unsupported("TZID", "not exactly one TZID property"));
        }
        if zone.observances.len() > MAX_OBSERVANCES {
            return Err(TimezoneError::Limit {
                what: "observances",
                limit: MAX_OBSERVANCES,
            });
        }
        if zone.observances.is_empty() {
            return Err(unsupported(
                "STANDARD",
                "no STANDARD or DAYLIGHT observance",
            ));
        }
        let rdates: usize = zone
            .observances
            .iter()
            .flat_map(|o| &o.rdates)
            .map(|rdate| rdate.value.split(',').count())
            .sum();
        if rdates > MAX_RDATES {
            return Err(TimezoneError::Limit {
                what: "RDATE values",
                limit: MAX_RDATES,
            });
        }
        let observances = zone
            .observances
            .iter()
            .map(Parsed::read)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Zone { observances })
    }

    fn resolve(&self, local: &DateTime) -> Result<Timestamp, TimezoneError> {
        let local = local_seconds(local)?;
        resolve_in(self, local).map(Timestamp::from_unix_seconds)
    }
}

/// Seconds since 1970-01-01T00:00:00 of a local DATE-TIME read as if it were UTC.
fn local_seconds(local: &DateTime) -> Result<i64, TimezoneError> {
    if local.is_utc() {
        return Err(TimezoneError::LocalTime("a UTC value with a TZID"));
    }
    local
        .local_seconds()
        .ok_or(TimezoneError::LocalTime("a DATE or a leap second"))
}

/// One transition: from the instant `at` (UTC seconds) the offset `to` is in force.
#[derive(Clone, Copy, Debug)]
struct Transition {
    at: i64,
    to: i64,
}

fn resolve_in(zone: &Zone, local: i64) -> Result<i64, TimezoneError> {
    let low = local.saturating_sub(WINDOW);
    let high = local.saturating_add(WINDOW);
    let (Some(low_year), Some(high_year)) = (year_of(low), year_of(high)) else {
        return Err(TimezoneError::LocalTime("outside the years 0000..=9999"));
    };
    let mut transitions = Vec::with_capacity(zone.observances.len() * 2);
    for observance in &zone.observances {
        observance.onsets_near((low, high), (low_year, high_year), &mut transitions)?;
    }
    transitions.sort_by_key(|t| t.at);
    for pair in transitions.windows(2) {
        if let [a, b] = pair
            && a.at == b.at
            && a.to != b.to
        {
            return Err(TimezoneError::SimultaneousOnsets);
        }
    }
    // The first occurrence: the earliest instant whose offset in force maps it to `local`.
    for (k, t) in transitions.iter().enumerate() {
        let candidate = local - t.to;
        let end = transitions.get(k + 1).map_or(i64::MAX, |next| next.at);
        if t.at <= candidate && candidate < end {
            return Ok(candidate);
        }
    }
    // No instant maps to `local`: it lies in a gap. Use the offset before the gap, the one
    // of the latest period that began at or before `local` read in that offset.
    transitions
        .iter()
        .rev()
        .find(|t| local - t.to >= t.at)
        .map(|t| local - t.to)
        .ok_or(TimezoneError::BeforeFirstOnset)
}

/// The day an RRULE names in each year.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Day {
    /// The n-th (negative: from the end) weekday of the month.
    Nth(i8, Weekday),
    /// The first such weekday on or after this day of the month.
    OnOrAfter(u8, Weekday),
    /// This day of the month.
    Fixed(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Until {
    Utc(i64),
    Local(i64),
    Date(Date),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rule {
    month: Month,
    day: Day,
    count: Option<u32>,
    until: Option<Until>,
}

/// One observance, read and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Parsed {
    /// DTSTART as local seconds.
    start: i64,
    start_date: Date,
    /// DTSTART's time of day in seconds.
    time_of_day: i64,
    from: i64,
    to: i64,
    rule: Option<Rule>,
    /// The year of the rule's first occurrence after DTSTART.
    first_year: i32,
    /// The year of the rule's last occurrence (`i32::MAX`: unbounded).
    last_year: i32,
    /// The RDATEs as local seconds.
    rdates: Vec<i64>,
}

fn exactly_one<'a, T>(values: &'a [T], property: &'static str) -> Result<&'a T, TimezoneError> {
    match values {
        [one] => Ok(one),
        [] => Err(unsupported(property, "missing")),
        _ => Err(unsupported(property, "more than one")),
    }
}

/// A local DATE-TIME value of DTSTART or RDATE (no `Z`, no TZID, no other VALUE type).
fn local_value(value: &str, property: &'static str) -> Result<DateTime, TimezoneError> {
    let parsed = DateTime::parse_date_time(value).map_err(|_| unsupported(property, value))?;
    if parsed.is_utc() {
        return Err(unsupported(property, format!("{value} is not local time")));
    }
    Ok(parsed)
}

fn check_params(value: &ZoneValue, property: &'static str) -> Result<(), TimezoneError> {
    if value.has_tzid {
        return Err(unsupported(property, "TZID parameter"));
    }
    match value.value_type.as_deref() {
        None => Ok(()),
        Some(t) if t.eq_ignore_ascii_case("DATE-TIME") => Ok(()),
        Some(t) => Err(unsupported(property, format!("VALUE={t}"))),
    }
}

/// A UTC-OFFSET (RFC 5545 §3.3.14): `±HHMM` or `±HHMMSS`, in seconds.
fn utc_offset(text: &str, property: &'static str) -> Result<i64, TimezoneError> {
    let bad = || unsupported(property, text);
    let bytes = text.as_bytes();
    let (sign, digits) = match bytes.split_first() {
        Some((b'+', rest)) => (1, rest),
        Some((b'-', rest)) => (-1, rest),
        _ => return Err(bad()),
    };
    if !matches!(digits.len(), 4 | 6) || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let pair = |i: usize| {
        digits
            .get(i..i + 2)
            .map(|p| p.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let (hours, minutes, seconds) = (
        pair(0),
        pair(2),
        if digits.len() == 6 { pair(4) } else { Some(0) },
    );
    let (Some(hours), Some(minutes), Some(seconds)) = (hours, minutes, seconds) else {
        return Err(bad());
    };
    if hours > 23 || minutes > 59 || seconds > 59 {
        return Err(bad());
    }
    let total = hours * 3_600 + minutes * 60 + seconds;
    if total == 0 && sign < 0 {
        // RFC 5545 §3.3.14: "-0000" and "-000000" are not allowed.
        return Err(bad());
    }
    Ok(sign * total)
}

fn weekday(text: &str) -> Option<Weekday> {
    Some(match text {
        "MO" => Weekday::Monday,
        "TU" => Weekday::Tuesday,
        "WE" => Weekday::Wednesday,
        "TH" => Weekday::Thursday,
        "FR" => Weekday::Friday,
        "SA" => Weekday::Saturday,
        "SU" => Weekday::Sunday,
        _ => return None,
    })
}

fn small_number(
    text: &str,
    part: &'static str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, TimezoneError> {
    let ok = !text.is_empty()
        && text.len() <= 4
        && text
            .strip_prefix(['+', '-'])
            .unwrap_or(text)
            .bytes()
            .all(|b| b.is_ascii_digit());
    text.parse::<i64>()
        .ok()
        .filter(|n| ok && range.contains(n))
        .ok_or_else(|| unsupported(part, text))
}

/// Reads an RRULE of the supported subset (see the module doc).
fn rule(text: &str, start: &DateTime) -> Result<Rule, TimezoneError> {
    let mut freq = None;
    let mut month = None;
    let mut by_day = None;
    let mut month_days: Option<Vec<i64>> = None;
    let mut count = None;
    let mut until = None;
    let mut seen: Vec<String> = Vec::new();
    for part in text.split(';') {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| unsupported("RRULE", part))?;
        let name = name.to_ascii_uppercase();
        let value = value.to_ascii_uppercase();
        if seen.contains(&name) {
            return Err(unsupported("RRULE", format!("{name} twice")));
        }
        if seen.len() >= 16 {
            return Err(unsupported("RRULE", "too many parts"));
        }
        seen.push(name.clone());
        match name.as_str() {
            "FREQ" if value == "YEARLY" => freq = Some(()),
            "FREQ" => return Err(unsupported("RRULE FREQ", value)),
            "INTERVAL" if value == "1" => {}
            "INTERVAL" => return Err(unsupported("RRULE INTERVAL", value)),
            "WKST" if weekday(&value).is_some() => {}
            "BYMONTH" => {
                let m = small_number(&value, "RRULE BYMONTH", 1..=12)?;
                month = u8::try_from(m).ok().and_then(|m| Month::try_from(m).ok());
            }
            "BYDAY" => {
                let split = value.len().saturating_sub(2);
                let (ordinal, day) = (value.get(..split), value.get(split..));
                let day = day
                    .and_then(weekday)
                    .ok_or_else(|| unsupported("RRULE BYDAY", &value))?;
                let ordinal = match ordinal {
                    Some("") | None => None,
                    Some(n) => Some(small_number(n, "RRULE BYDAY", -4..=4)?),
                };
                if ordinal == Some(0) {
                    return Err(unsupported("RRULE BYDAY", &value));
                }
                by_day = Some((ordinal, day));
            }
            "BYMONTHDAY" => {
                let days = value
                    .split(',')
                    .take(8)
                    .map(|d| small_number(d, "RRULE BYMONTHDAY", 1..=28))
                    .collect::<Result<Vec<_>, _>>()?;
                if value.split(',').count() > 7 {
                    return Err(unsupported("RRULE BYMONTHDAY", &value));
                }
                month_days = Some(days);
            }
            "COUNT" => {
                let n = small_number(&value, "RRULE COUNT", 1..=9_999)?;
                count = u32::try_from(n).ok();
            }
            "UNTIL" => {
                until = Some(if value.len() == 8 {
                    let date = DateTime::parse_date(&value)
                        .map_err(|_| unsupported("RRULE UNTIL", &value))?;
                    Until::Date(date.calendar_date())
                } else {
                    let parsed = DateTime::parse_date_time(&value)
                        .map_err(|_| unsupported("RRULE UNTIL", &value))?;
                    let seconds = parsed
                        .local_seconds()
                        .ok_or_else(|| unsupported("RRULE UNTIL", &value))?;
                    if parsed.is_utc() {
                        Until::Utc(seconds)
                    } else {
                        Until::Local(seconds)
                    }
                });
            }
            _ => return Err(unsupported("RRULE", format!("{name}={value}"))),
        }
    }
    if freq.is_none() {
        return Err(unsupported("RRULE FREQ", "missing"));
    }
    if count.is_some() && until.is_some() {
        // RFC 5545 §3.3.10: they "MUST NOT occur in the same 'recur'".
        return Err(unsupported("RRULE", "COUNT and UNTIL"));
    }
    let day = match (by_day, month_days.as_deref()) {
        (Some((Some(n), weekday)), None) => Day::Nth(
            i8::try_from(n).map_err(|_| unsupported("RRULE BYDAY", text))?,
            weekday,
        ),
        (Some((None, weekday)), Some(days)) => {
            // Seven consecutive days: exactly one of them is the weekday.
            let first = days.first().copied().unwrap_or(0);
            let consecutive =
                days.len() == 7 && days.iter().zip(first..).all(|(d, expected)| *d == expected);
            if !consecutive {
                return Err(unsupported("RRULE BYMONTHDAY", text));
            }
            Day::OnOrAfter(u8::try_from(first).unwrap_or(1), weekday)
        }
        (Some(_), _) => return Err(unsupported("RRULE BYDAY", text)),
        (None, Some([day])) => Day::Fixed(u8::try_from(*day).unwrap_or(1)),
        (None, Some(_)) => return Err(unsupported("RRULE BYMONTHDAY", text)),
        (None, None) => {
            let day = start.calendar_date().day();
            if day > 28 {
                return Err(unsupported("RRULE", "yearly on a day after the 28th"));
            }
            Day::Fixed(day)
        }
    };
    let month = match (month, day) {
        (Some(month), _) => month,
        (None, Day::Fixed(_)) => start.calendar_date().month(),
        (None, _) => return Err(unsupported("RRULE BYMONTH", "missing")),
    };
    Ok(Rule {
        month,
        day,
        count,
        until,
    })
}

impl Rule {
    /// The day the rule names in `year` (always one: see the module doc).
    fn day_in(&self, year: i32) -> Option<Date> {
        let first = Date::from_calendar_date(year, self.month, 1).ok()?;
        let length = self.month.length(year);
        let on_or_after = |day: u8, weekday: Weekday| {
            let date = Date::from_calendar_date(year, self.month, day).ok()?;
            let ahead = (weekday.number_days_from_monday() + 7
                - date.weekday().number_days_from_monday())
                % 7;
            Date::from_calendar_date(year, self.month, day + ahead).ok()
        };
        match self.day {
            Day::Fixed(day) => Date::from_calendar_date(year, self.month, day).ok(),
            Day::OnOrAfter(day, weekday) => on_or_after(day, weekday),
            Day::Nth(n, weekday) if n > 0 => {
                let day = 1 + 7 * (u8::try_from(n).ok()? - 1);
                on_or_after(day, weekday)
            }
            Day::Nth(n, weekday) => {
                let last = first.replace_day(length).ok()?;
                let back = (last.weekday().number_days_from_monday() + 7
                    - weekday.number_days_from_monday())
                    % 7;
                let day = length - back - 7 * (u8::try_from(-n).ok()? - 1);
                Date::from_calendar_date(year, self.month, day).ok()
            }
        }
    }
}

fn seconds_of(date: Date, time_of_day: i64) -> i64 {
    PrimitiveDateTime::new(date, Time::MIDNIGHT)
        .assume_utc()
        .unix_timestamp()
        + time_of_day
}

fn year_of(seconds: i64) -> Option<i32> {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .map(|t| t.year())
}

impl Parsed {
    fn read(observance: &Observance) -> Result<Parsed, TimezoneError> {
        let dtstart = exactly_one(&observance.dtstart, "DTSTART")?;
        check_params(dtstart, "DTSTART")?;
        let start = local_value(&dtstart.value, "DTSTART")?;
        let start_seconds = start
            .local_seconds()
            .ok_or_else(|| unsupported("DTSTART", &dtstart.value))?;
        let from = utc_offset(
            exactly_one(&observance.offset_from, "TZOFFSETFROM")?,
            "TZOFFSETFROM",
        )?;
        let to = utc_offset(
            exactly_one(&observance.offset_to, "TZOFFSETTO")?,
            "TZOFFSETTO",
        )?;
        let rule = match observance.rrules.as_slice() {
            [] => None,
            [one] => Some(rule(one, &start)?),
            _ => return Err(unsupported("RRULE", "more than one")),
        };
        let mut rdates = Vec::new();
        for rdate in &observance.rdates {
            check_params(rdate, "RDATE")?;
            for value in rdate.value.split(',') {
                let onset = local_value(value, "RDATE")?
                    .local_seconds()
                    .ok_or_else(|| unsupported("RDATE", value))?;
                rdates.push(onset);
            }
        }
        let start_date = start.calendar_date();
        let time_of_day = start_seconds - seconds_of(start_date, 0);
        let (first_year, last_year) = rule.as_ref().map_or((0, 0), |rule| {
            Parsed::rule_years(rule, start_seconds, start_date, time_of_day)
        });
        Ok(Parsed {
            first_year,
            last_year,
            start: start_seconds,
            start_date,
            time_of_day,
            from,
            to,
            rule,
            rdates,
        })
    }

    /// The transition of an onset at local time `onset` (in TZOFFSETFROM).
    fn transition(&self, onset: i64) -> Transition {
        Transition {
            at: onset - self.from,
            to: self.to,
        }
    }

    /// Pushes every onset whose local time lies in `(low, high]`, and the latest at or
    /// before `low` (the one whose offset is in force as the window opens).
    fn onsets_near(
        &self,
        (low, high): (i64, i64),
        (low_year, high_year): (i32, i32),
        out: &mut Vec<Transition>,
    ) -> Result<(), TimezoneError> {
        let mut latest_before: Option<i64> = None;
        let mut consider = |onset: i64, out: &mut Vec<Transition>| {
            if onset <= low {
                latest_before = latest_before.max(Some(onset));
            } else if onset <= high {
                out.push(self.transition(onset));
            }
        };
        consider(self.start, out);
        for &onset in &self.rdates {
            consider(onset, out);
        }
        if let Some(rule) = &self.rule {
            for onset in self
                .rule_onsets(rule, low_year, high_year)?
                .into_iter()
                .flatten()
            {
                consider(onset, out);
            }
        }
        if let Some(onset) = latest_before {
            out.push(self.transition(onset));
        }
        Ok(())
    }

    /// The rule's occurrence in `year` as a local onset, if it is one: after DTSTART
    /// (DTSTART is an onset of its own), within COUNT (DTSTART counted first, RFC 5545
    /// §3.3.10) and UNTIL.
    fn rule_onset(&self, rule: &Rule, year: i32, first_year: i32) -> Option<i64> {
        let onset = seconds_of(rule.day_in(year)?, self.time_of_day);
        if onset <= self.start || year < first_year {
            return None;
        }
        if let Some(count) = rule.count {
            // The occurrence of `first_year` is the second of the set.
            let index = i64::from(year) - i64::from(first_year) + 2;
            if index > i64::from(count) {
                return None;
            }
        }
        let within = match rule.until {
            None => true,
            Some(Until::Utc(until)) => onset - self.from <= until,
            Some(Until::Local(until)) => onset <= until,
            Some(Until::Date(until)) => rule.day_in(year).is_some_and(|d| d <= until),
        };
        within.then_some(onset)
    }

    /// The years of the rule's first occurrence after DTSTART and of its last (by COUNT and
    /// UNTIL; `i32::MAX` when unbounded): fixed for the observance, computed when read.
    fn rule_years(rule: &Rule, start: i64, start_date: Date, time_of_day: i64) -> (i32, i32) {
        let start_year = start_date.year();
        // One occurrence per year (see `Rule::day_in`).
        let first_year = match rule.day_in(start_year) {
            Some(day) if seconds_of(day, time_of_day) > start => start_year,
            _ => start_year.saturating_add(1),
        };
        let mut last_year = i32::MAX;
        if let Some(count) = rule.count {
            let count = i32::try_from(count).unwrap_or(i32::MAX);
            last_year = first_year.saturating_add(count.saturating_sub(2));
        }
        match rule.until {
            Some(Until::Utc(s) | Until::Local(s)) => {
                last_year = last_year.min(year_of(s).map_or(i32::MAX, |y| y.saturating_add(1)));
            }
            Some(Until::Date(d)) => last_year = last_year.min(d.year()),
            None => {}
        }
        (first_year, last_year)
    }

    /// The rule's onsets in the years `low_year..=high_year` around the local time, and its
    /// last two at or before the window: at most [`MAX_RULE_YEARS`] years are evaluated.
    fn rule_onsets(
        &self,
        rule: &Rule,
        low_year: i32,
        high_year: i32,
    ) -> Result<[Option<i64>; MAX_RULE_YEARS], TimezoneError> {
        let anchor = low_year.min(self.last_year);
        let mut years = [
            anchor.saturating_sub(1),
            anchor,
            low_year,
            high_year,
            high_year,
        ];
        if high_year.saturating_sub(low_year) > 1 {
            return Err(TimezoneError::Limit {
                what: "rule years",
                limit: MAX_RULE_YEARS,
            });
        }
        years.sort_unstable();
        let mut out = [None; MAX_RULE_YEARS];
        let mut previous = None;
        for (slot, year) in out.iter_mut().zip(years) {
            if previous == Some(year) || !(-9_999..=9_999).contains(&year) {
                continue;
            }
            previous = Some(year);
            *slot = self.rule_onset(rule, year, self.first_year);
        }
        Ok(out)
    }
}

impl fmt::Display for ObservanceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObservanceKind::Standard => "STANDARD",
            ObservanceKind::Daylight => "DAYLIGHT",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VTIMEZONE from its text (unfolded lines, test only: the real reader is itip's).
    fn zone(text: &str) -> VTimezone {
        let mut zone = VTimezone::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (head, value) = line.split_once(':').unwrap();
            let mut params = head.split(';');
            let name = params.next().unwrap();
            let params: Vec<&str> = params.collect();
            let zone_value = || ZoneValue {
                value: value.to_owned(),
                value_type: params
                    .iter()
                    .find_map(|p| p.strip_prefix("VALUE="))
                    .map(str::to_owned),
                has_tzid: params.iter().any(|p| p.starts_with("TZID=")),
            };
            match (name, value) {
                ("BEGIN", "STANDARD") => zone
                    .observances
                    .push(Observance::new(ObservanceKind::Standard)),
                ("BEGIN", "DAYLIGHT") => zone
                    .observances
                    .push(Observance::new(ObservanceKind::Daylight)),
                ("BEGIN" | "END", _) => {}
                ("TZID", id) => zone.tzids.push(id.to_owned()),
                _ => {
                    let o = zone.observances.last_mut().unwrap();
                    match name {
                        "DTSTART" => o.dtstart.push(zone_value()),
                        "RDATE" => o.rdates.push(zone_value()),
                        "TZOFFSETFROM" => o.offset_from.push(value.to_owned()),
                        "TZOFFSETTO" => o.offset_to.push(value.to_owned()),
                        "RRULE" => o.rrules.push(value.to_owned()),
                        _ => {}
                    }
                }
            }
        }
        zone
    }

    /// The instant of `local` in `zone` as a UTC DATE-TIME text.
    fn utc(zone: &VTimezone, local: &str) -> Result<String, TimezoneError> {
        let tzid = zone.tzids.first().unwrap().clone();
        let local = DateTime::parse_date_time(local).unwrap();
        resolve_local_time(std::slice::from_ref(zone), &tzid, &local)
            .map(|t| DateTime::from_timestamp_utc(t).unwrap().canonical())
    }

    const BERLIN: &str = "
        BEGIN:VTIMEZONE
        TZID:Europe/Berlin
        BEGIN:DAYLIGHT
        TZOFFSETFROM:+0100
        TZOFFSETTO:+0200
        DTSTART:19700329T020000
        RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
        END:DAYLIGHT
        BEGIN:STANDARD
        TZOFFSETFROM:+0200
        TZOFFSETTO:+0100
        DTSTART:19701025T030000
        RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
        END:STANDARD
        END:VTIMEZONE";

    /// As Outlook and Exchange write it (the shape of testdata/clients/exchange-2010-request.ics,
    /// "Romance Standard Time"): DTSTART in 1601, not on a rule day, INTERVAL=1, BYDAY first.
    const OUTLOOK_W_EUROPE: &str = "
        BEGIN:VTIMEZONE
        TZID:W. Europe Standard Time
        BEGIN:STANDARD
        DTSTART:16010101T030000
        TZOFFSETFROM:+0200
        TZOFFSETTO:+0100
        RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10
        END:STANDARD
        BEGIN:DAYLIGHT
        DTSTART:16010101T020000
        TZOFFSETFROM:+0100
        TZOFFSETTO:+0200
        RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3
        END:DAYLIGHT
        END:VTIMEZONE";

    /// America/New_York with its 1967-2006 and 2007- rules (tzurl.org shape, UNTIL in UTC).
    const NEW_YORK: &str = "
        BEGIN:VTIMEZONE
        TZID:America/New_York
        BEGIN:STANDARD
        DTSTART:19671029T020000
        RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU;UNTIL=20061029T060000Z
        TZOFFSETFROM:-0400
        TZOFFSETTO:-0500
        END:STANDARD
        BEGIN:DAYLIGHT
        DTSTART:19870405T020000
        RRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=1SU;UNTIL=20060402T070000Z
        TZOFFSETFROM:-0500
        TZOFFSETTO:-0400
        END:DAYLIGHT
        BEGIN:DAYLIGHT
        DTSTART:20070311T020000
        RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
        TZOFFSETFROM:-0500
        TZOFFSETTO:-0400
        END:DAYLIGHT
        BEGIN:STANDARD
        DTSTART:20071104T020000
        RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
        TZOFFSETFROM:-0400
        TZOFFSETTO:-0500
        END:STANDARD
        END:VTIMEZONE";

    const SYDNEY: &str = "
        BEGIN:VTIMEZONE
        TZID:Australia/Sydney
        BEGIN:STANDARD
        DTSTART:20080406T030000
        TZOFFSETFROM:+1100
        TZOFFSETTO:+1000
        RRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=1SU
        END:STANDARD
        BEGIN:DAYLIGHT
        DTSTART:20081005T020000
        TZOFFSETFROM:+1000
        TZOFFSETTO:+1100
        RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=1SU
        END:DAYLIGHT
        END:VTIMEZONE";

    const TOKYO: &str = "
        BEGIN:VTIMEZONE
        TZID:Asia/Tokyo
        BEGIN:STANDARD
        TZOFFSETFROM:+0900
        TZOFFSETTO:+0900
        DTSTART:19700101T000000
        END:STANDARD
        END:VTIMEZONE";

    #[test]
    fn berlin_summer_winter_gap_and_overlap() {
        let z = zone(BERLIN);
        assert_eq!(utc(&z, "20260601T100000").unwrap(), "20260601T080000Z");
        assert_eq!(utc(&z, "20260115T100000").unwrap(), "20260115T090000Z");
        // Gap (02:00-03:00 on 2026-03-29 does not exist): the offset before it, +01:00.
        assert_eq!(utc(&z, "20260329T023000").unwrap(), "20260329T013000Z");
        assert_eq!(utc(&z, "20260329T015959").unwrap(), "20260329T005959Z");
        assert_eq!(utc(&z, "20260329T030000").unwrap(), "20260329T010000Z");
        // Overlap (02:00-03:00 on 2026-10-25 occurs twice): the first, still +02:00.
        assert_eq!(utc(&z, "20261025T023000").unwrap(), "20261025T003000Z");
        assert_eq!(utc(&z, "20261025T020000").unwrap(), "20261025T000000Z");
        assert_eq!(utc(&z, "20261025T030000").unwrap(), "20261025T020000Z");
        assert_eq!(utc(&z, "20261025T015959").unwrap(), "20261024T235959Z");
    }

    /// Every quarter hour of a year maps back to its own local time under the offset in
    /// force (+1 or +2), except inside the gap.
    #[test]
    fn berlin_every_quarter_hour_of_a_year_round_trips() {
        let z = zone(BERLIN);
        let start = DateTime::parse_date_time("20260101T000000")
            .unwrap()
            .local_seconds()
            .unwrap();
        for step in 0..(365 * 96) {
            let local = start + step * 900;
            let instant = resolve_in(&Zone::read(&z).unwrap(), local).unwrap();
            let offset = local - instant;
            let in_gap = (1_774_749_600..1_774_753_200).contains(&local); // 2026-03-29 02:00..03:00
            if !in_gap {
                assert!(offset == 3_600 || offset == 7_200, "{local}: {offset}");
                let summer = (1_774_746_000..1_792_890_000).contains(&instant); // 01:00Z Mar 29 .. 01:00Z Oct 25
                assert_eq!(offset == 7_200, summer, "{local}");
            } else {
                assert_eq!(offset, 3_600);
            }
        }
    }

    #[test]
    fn outlook_w_europe_standard_time_from_1601() {
        let z = zone(OUTLOOK_W_EUROPE);
        assert_eq!(utc(&z, "20260601T100000").unwrap(), "20260601T080000Z");
        assert_eq!(utc(&z, "20261201T100000").unwrap(), "20261201T090000Z");
        assert_eq!(utc(&z, "20260329T023000").unwrap(), "20260329T013000Z");
        assert_eq!(utc(&z, "20261025T023000").unwrap(), "20261025T003000Z");
        // Agrees with the tzurl.org form of the same zone.
        let berlin = zone(BERLIN);
        for local in ["20300101T120000", "20300331T030000", "20991027T023000"] {
            assert_eq!(utc(&z, local), utc(&berlin, local), "{local}");
        }
    }

    /// RFC 5545 §3.3.5's own examples, and the rule change of 2007.
    #[test]
    fn new_york_rfc_examples_and_rule_change() {
        let z = zone(NEW_YORK);
        assert_eq!(utc(&z, "20071104T013000").unwrap(), "20071104T053000Z");
        assert_eq!(utc(&z, "20070311T023000").unwrap(), "20070311T073000Z");
        assert_eq!(utc(&z, "20050701T120000").unwrap(), "20050701T160000Z");
        assert_eq!(utc(&z, "20061029T013000").unwrap(), "20061029T053000Z");
        assert_eq!(utc(&z, "20060315T120000").unwrap(), "20060315T170000Z");
        // 2006: daylight time began on the first Sunday of April, not the second of March.
        assert_eq!(utc(&z, "20060320T120000").unwrap(), "20060320T170000Z");
        assert_eq!(utc(&z, "20260320T120000").unwrap(), "20260320T160000Z");
        assert_eq!(utc(&z, "20260615T100000").unwrap(), "20260615T140000Z");
        assert_eq!(utc(&z, "20261101T013000").unwrap(), "20261101T053000Z");
        assert_eq!(utc(&z, "20261101T020000").unwrap(), "20261101T070000Z");
    }

    /// The older "Sunday on or after the 8th" form names the same days as `2SU`.
    #[test]
    fn sunday_on_or_after_form_equals_the_ordinal_form() {
        let ordinal = zone(NEW_YORK);
        let on_or_after = zone(&NEW_YORK.replace(
            "BYMONTH=3;BYDAY=2SU",
            "BYMONTH=3;BYMONTHDAY=8,9,10,11,12,13,14;BYDAY=SU",
        ));
        for local in [
            "20260308T023000",
            "20260308T013000",
            "20260308T030000",
            "20270314T120000",
        ] {
            assert_eq!(utc(&ordinal, local), utc(&on_or_after, local), "{local}");
        }
        assert_eq!(
            utc(&on_or_after, "20260308T030000").unwrap(),
            "20260308T070000Z"
        );
    }

    #[test]
    fn southern_hemisphere_daylight_time_spans_the_new_year() {
        let z = zone(SYDNEY);
        assert_eq!(utc(&z, "20260115T100000").unwrap(), "20260114T230000Z");
        assert_eq!(utc(&z, "20260701T100000").unwrap(), "20260701T000000Z");
        assert_eq!(utc(&z, "20261231T235959").unwrap(), "20261231T125959Z");
        // Overlap on 2026-04-05 (03:00 back to 02:00): the first 02:30, still +11:00.
        assert_eq!(utc(&z, "20260405T023000").unwrap(), "20260404T153000Z");
        // Gap on 2026-10-04 (02:00 to 03:00): the offset before, +10:00.
        assert_eq!(utc(&z, "20261004T023000").unwrap(), "20261003T163000Z");
    }

    #[test]
    fn zone_without_daylight_time() {
        let z = zone(TOKYO);
        assert_eq!(utc(&z, "20260601T100000").unwrap(), "20260601T010000Z");
        assert_eq!(utc(&z, "19700101T000000").unwrap(), "19691231T150000Z");
    }

    #[test]
    fn rdate_only_zone() {
        let z = zone(
            "TZID:Custom/Rdates
            BEGIN:STANDARD
            DTSTART:19700101T000000
            TZOFFSETFROM:+0100
            TZOFFSETTO:+0100
            RDATE:20261025T030000
            END:STANDARD
            BEGIN:DAYLIGHT
            DTSTART:20260329T020000
            RDATE;VALUE=DATE-TIME:20270328T020000,20280326T020000
            TZOFFSETFROM:+0100
            TZOFFSETTO:+0200
            END:DAYLIGHT",
        );
        assert_eq!(utc(&z, "20260101T120000").unwrap(), "20260101T110000Z");
        assert_eq!(utc(&z, "20260601T120000").unwrap(), "20260601T100000Z");
        assert_eq!(utc(&z, "20261201T120000").unwrap(), "20261201T110000Z");
        assert_eq!(utc(&z, "20270601T120000").unwrap(), "20270601T100000Z");
        // No standard-time onset after 2026: daylight time stays in force.
        assert_eq!(utc(&z, "20281201T120000").unwrap(), "20281201T100000Z");
    }

    #[test]
    fn count_ends_the_rule() {
        let z = zone(
            "TZID:Custom/Count
            BEGIN:STANDARD
            DTSTART:20200101T000000
            TZOFFSETFROM:+0100
            TZOFFSETTO:+0100
            END:STANDARD
            BEGIN:DAYLIGHT
            DTSTART:20200601T000000
            RRULE:FREQ=YEARLY;COUNT=3
            TZOFFSETFROM:+0100
            TZOFFSETTO:+0200
            END:DAYLIGHT
            BEGIN:STANDARD
            DTSTART:20201001T000000
            RRULE:FREQ=YEARLY
            TZOFFSETFROM:+0200
            TZOFFSETTO:+0100
            END:STANDARD",
        );
        // DTSTART (2020), 2021 and 2022 are the three onsets; none in 2023.
        assert_eq!(utc(&z, "20220701T120000").unwrap(), "20220701T100000Z");
        assert_eq!(utc(&z, "20230701T120000").unwrap(), "20230701T110000Z");
    }

    #[test]
    fn local_time_before_the_first_onset_is_refused() {
        assert_eq!(
            utc(&zone(TOKYO), "19600101T000000"),
            Err(TimezoneError::BeforeFirstOnset)
        );
        assert_eq!(
            utc(&zone(SYDNEY), "20080101T000000"),
            Err(TimezoneError::BeforeFirstOnset)
        );
    }

    #[test]
    fn zones_outside_the_subset_are_refused_naming_what() {
        let refused = |text: String, what: &str| {
            let error = utc(&zone(&text), "20260601T100000").unwrap_err();
            assert!(error.to_string().contains(what), "{error} lacks {what}");
        };
        for (from, to, what) in [
            (
                "BYMONTH=3;BYDAY=-1SU",
                "BYMONTH=3;BYDAY=-1SU;BYSETPOS=1",
                "BYSETPOS",
            ),
            ("FREQ=YEARLY;BYMONTH=3", "FREQ=MONTHLY;BYMONTH=3", "FREQ"),
            ("BYMONTH=3;BYDAY=-1SU", "BYMONTH=3;BYDAY=5SU", "BYDAY"),
            ("BYMONTH=3;BYDAY=-1SU", "BYMONTH=3,4;BYDAY=-1SU", "BYMONTH"),
            ("BYMONTH=3;BYDAY=-1SU", "BYDAY=-1SU", "BYMONTH"),
            (
                "FREQ=YEARLY;BYMONTH=3",
                "FREQ=YEARLY;INTERVAL=2;BYMONTH=3",
                "INTERVAL",
            ),
            ("BYDAY=-1SU\n", "BYDAY=-1SU;BYDAY=1SU\n", "twice"),
            ("TZOFFSETTO:+0200", "TZOFFSETTO:+02", "TZOFFSETTO"),
            ("TZOFFSETTO:+0200", "TZOFFSETTO:-0000", "TZOFFSETTO"),
            ("TZOFFSETTO:+0200\n", "", "TZOFFSETTO"),
            (
                "DTSTART:19700329T020000",
                "DTSTART:19700329T020000Z",
                "DTSTART",
            ),
            (
                "DTSTART:19700329T020000",
                "DTSTART;VALUE=DATE:19700329",
                "DTSTART",
            ),
            (
                "DTSTART:19700329T020000",
                "DTSTART:19700329T020000\n RDATE;VALUE=PERIOD:19700329T020000/PT1H",
                "RDATE",
            ),
        ] {
            assert!(BERLIN.contains(from), "{from}");
            refused(BERLIN.replacen(from, to, 1), what);
        }
    }

    #[test]
    fn missing_duplicate_and_oversized_zones_are_refused() {
        let berlin = zone(BERLIN);
        let local = DateTime::parse_date_time("20260601T100000").unwrap();
        assert_eq!(
            resolve_local_time(std::slice::from_ref(&berlin), "Europe/Paris", &local),
            Err(TimezoneError::NoVtimezone)
        );
        assert_eq!(
            resolve_local_time(&[berlin.clone(), berlin.clone()], "Europe/Berlin", &local),
            Err(TimezoneError::SeveralVtimezones { count: 2 })
        );
        let mut many = berlin.clone();
        let first = many.observances.first().unwrap().clone();
        many.observances.resize(MAX_OBSERVANCES + 1, first);
        assert!(matches!(
            resolve_local_time(&[many], "Europe/Berlin", &local),
            Err(TimezoneError::Limit {
                what: "observances",
                ..
            })
        ));
        let mut rdates = berlin.clone();
        let list = vec!["20260101T000000"; MAX_RDATES + 1].join(",");
        rdates
            .observances
            .first_mut()
            .unwrap()
            .rdates
            .push(ZoneValue::plain(&list));
        assert!(matches!(
            resolve_local_time(&[rdates], "Europe/Berlin", &local),
            Err(TimezoneError::Limit {
                what: "RDATE values",
                ..
            })
        ));
        let empty = VTimezone {
            tzids: vec!["Empty".to_owned()],
            observances: Vec::new(),
        };
        assert!(resolve_local_time(&[empty], "Empty", &local).is_err());
    }

    #[test]
    fn extreme_local_times_do_not_panic() {
        let z = zone(BERLIN);
        for local in ["00000101T000000", "99991231T235959", "00000229T120000"] {
            if let Ok(local) = DateTime::parse_date_time(local) {
                let _ = resolve_local_time(std::slice::from_ref(&z), "Europe/Berlin", &local);
            }
        }
        let far = zone(&BERLIN.replace("19700329T020000", "99991231T230000"));
        let _ = utc(&far, "99991231T235959");
    }
}
