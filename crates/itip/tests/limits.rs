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
