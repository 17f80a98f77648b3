//! Every named limit of [`Limits`] at the limit (the calendar parses) and one past it (the
//! error names that limit's [`LimitKind`]). The existing `parse.rs` limit test checks only
//! past-the-limit inputs with small limits; these pin the exact boundary of each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use imipsec_itip::{
    ItipError, LimitExceeded, LimitKind, Limits, MimeParams, ParseOptions, parse_itip,
};

const MIME: MimeParams<'static> = MimeParams {
    method: Some("REQUEST"),
    charset: Some("UTF-8"),
    component: None,
};

/// A valid REQUEST: 3 components (VCALENDAR > VEVENT > VALARM, nesting 3), 3 attendees,
/// and one folded DESCRIPTION that is the longest unfolded line.
fn request() -> String {
    let description = format!("DESCRIPTION:{}\r\n {}", "a".repeat(60), "b".repeat(60));
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//limits//EN\r\nMETHOD:REQUEST\r\n\
         BEGIN:VEVENT\r\nUID:limits@example.com\r\nDTSTAMP:20260601T000000Z\r\n\
         DTSTART:20260615T100000Z\r\nSEQUENCE:0\r\nSUMMARY:Limits\r\n{description}\r\n\
         ORGANIZER:mailto:organizer@example.com\r\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:a@example.com\r\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:b@example.com\r\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:c@example.com\r\n\
         BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nDESCRIPTION:Soon\r\nEND:VALARM\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn parse(text: &str, limits: Limits) -> Result<(), ItipError> {
    let options = ParseOptions {
        limits,
        ..ParseOptions::default()
    };
    parse_itip(text.as_bytes(), &MIME, &options).map(|_| ())
}

/// `limit(n)` sets the limit under test to `n`; `measure` is the input's size in that unit.
#[track_caller]
fn at_and_past(kind: LimitKind, measure: usize, limit: impl Fn(usize) -> Limits) {
    let text = request();
    if let Err(error) = parse(&text, limit(measure)) {
        panic!("{kind:?} at the limit ({measure}): {error:?}");
    }
    match parse(&text, limit(measure - 1)) {
        Err(ItipError::Limit(LimitExceeded { limit, .. })) => assert_eq!(limit, kind),
        other => panic!("{kind:?} one past the limit ({}): {other:?}", measure - 1),
    }
}

#[test]
fn the_request_is_valid_with_default_limits() {
    parse(&request(), Limits::default()).unwrap();
}

#[test]
fn bytes_at_and_past_the_limit() {
    at_and_past(LimitKind::Bytes, request().len(), |bytes| Limits {
        bytes,
        ..Limits::default()
    });
}

#[test]
fn components_at_and_past_the_limit() {
    let count = request().matches("BEGIN:").count();
    assert_eq!(count, 3);
    at_and_past(LimitKind::Components, count, |components| Limits {
        components,
        ..Limits::default()
    });
}

#[test]
fn properties_at_and_past_the_limit() {
    // Content lines after unfolding, BEGIN and END included.
    let unfolded = request().replace("\r\n ", "");
    let count = unfolded.lines().filter(|line| !line.is_empty()).count();
    at_and_past(LimitKind::Properties, count, |properties| Limits {
        properties,
        ..Limits::default()
    });
}

#[test]
fn attendees_at_and_past_the_limit() {
    at_and_past(LimitKind::Attendees, 3, |attendees| Limits {
        attendees,
        ..Limits::default()
    });
}

#[test]
fn line_length_at_and_past_the_limit() {
    // The longest unfolded content line, without its CRLF.
    let unfolded = request().replace("\r\n ", "");
    let longest = unfolded.split("\r\n").map(str::len).max().unwrap();
    assert_eq!(longest, "DESCRIPTION:".len() + 120);
    at_and_past(LimitKind::LineLength, longest, |line_length| Limits {
        line_length,
        ..Limits::default()
    });
}

#[test]
fn nesting_at_and_past_the_limit() {
    at_and_past(LimitKind::Nesting, 3, |nesting| Limits {
        nesting,
        ..Limits::default()
    });
}

/// A calendar that makes the VTIMEZONE evaluator work hardest within the limits: one zone
/// at `imipsec_types::MAX_OBSERVANCES` observances (half with an RRULE) and
/// `imipsec_types::MAX_RDATES` RDATE values, and as many overrides as the component limit
/// leaves, each with a RECURRENCE-ID in that zone (`zoned`) or in UTC (the baseline).
fn zone_heavy(zoned: bool) -> String {
    let mut text = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//limits//EN\r\nMETHOD:REQUEST\r\n\
         BEGIN:VTIMEZONE\r\nTZID:Heavy\r\n",
    );
    // RFC 5546 §3.1.2: an observance has an RRULE or RDATEs, not both; half of each.
    let observances = imipsec_types::MAX_OBSERVANCES;
    let rdates_each = imipsec_types::MAX_RDATES / (observances / 2);
    for i in 0..observances {
        let recurrence = if i % 2 == 0 {
            "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU".to_owned()
        } else {
            let rdates = (0..rdates_each)
                .map(|k| format!("{:04}0301T020000", 1800 + i % 100 + k * 50))
                .collect::<Vec<_>>()
                .join(",");
            format!("RDATE:{rdates}")
        };
        text.push_str(&format!(
            "BEGIN:STANDARD\r\nDTSTART:{:04}0101T000000\r\nTZOFFSETFROM:+0100\r\n\
             TZOFFSETTO:+0100\r\n{recurrence}\r\nEND:STANDARD\r\n",
            1700 + i
        ));
    }
    text.push_str("END:VTIMEZONE\r\n");
    let overrides = Limits::default().components - observances - 3;
    for i in 0..overrides {
        let rid = if zoned {
            format!(";TZID=Heavy:2026{:02}{:02}T100000", 1 + i % 12, 1 + i % 28)
        } else {
            format!(":2026{:02}{:02}T100000Z", 1 + i % 12, 1 + i % 28)
        };
        text.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:heavy@example.com\r\nDTSTAMP:20260601T000000Z\r\n\
             RECURRENCE-ID{rid}\r\nDTSTART:20260615T100000Z\r\nSEQUENCE:{i}\r\n\
             ORGANIZER:mailto:organizer@example.com\r\nSUMMARY:s\r\n\
             ATTENDEE:mailto:a@example.com\r\nEND:VEVENT\r\n"
        ));
    }
    text.push_str("END:VCALENDAR\r\n");
    text
}

/// Amplification guard for the VTIMEZONE evaluator: each zone is read once per calendar and
/// each RECURRENCE-ID costs one bounded evaluation, so the heaviest zoned calendar within
/// the limits costs a small multiple of the same calendar keyed in UTC. (Before zones were
/// read once, every key re-read all the observances and RDATEs.)
#[test]
fn heaviest_zone_within_the_limits_costs_a_small_multiple_of_utc_keys() {
    let options = ParseOptions {
        danger_skip_cross_check: true,
        ..ParseOptions::default()
    };
    let time = |text: &str| {
        let start = std::time::Instant::now();
        let message = parse_itip(text.as_bytes(), &MIME, &options).unwrap();
        let elapsed = start.elapsed();
        (message, elapsed)
    };
    let (zoned, zoned_time) = time(&zone_heavy(true));
    let (_, utc_time) = time(&zone_heavy(false));
    let keys = zoned
        .components
        .iter()
        .filter(|c| c.recurrence_id.as_ref().is_some_and(|r| r.key().is_ok()))
        .count();
    assert_eq!(keys, zoned.components.len(), "every zoned key resolves");
    eprintln!("zoned {zoned_time:?}, utc {utc_time:?}");
    assert!(
        zoned_time < utc_time * 20 + std::time::Duration::from_millis(500),
        "zoned {zoned_time:?} against utc {utc_time:?}"
    );
}
