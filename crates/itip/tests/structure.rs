//! Strict where another parser could read differently (issue #11 item 4), and one
//! ORGANIZER and one UID per object (item 10): components only where RFC 5545 puts them,
//! the properties that name parties only where the decision reads them, no vCalendar 1.0
//! constructs, no parameter given twice, UTF-8 as a whole. Each case has its honest
//! control next to it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use imipsec_itip::{
    Diagnostic, ItipError, Malformed, Method, MimeParams, ParseOptions, Rule, Violation, diagnose,
    parse_itip,
};

fn mime(method: &str) -> MimeParams<'_> {
    MimeParams {
        method: Some(method),
        charset: Some("UTF-8"),
        component: None,
    }
}

/// A REQUEST from the organizer; `inside` goes before END:VEVENT, `top` before
/// END:VCALENDAR.
fn request(inside: &str, top: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nMETHOD:REQUEST\r\n\
         BEGIN:VEVENT\r\nUID:u1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260201T100000Z\r\n\
         SUMMARY:s\r\nORGANIZER:mailto:olivia@example.com\r\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:alice@example.com\r\n{inside}END:VEVENT\r\n\
         {top}END:VCALENDAR\r\n"
    )
}

fn outcome(text: &str) -> Result<(), ItipError> {
    parse_itip(text.as_bytes(), &mime("REQUEST"), &ParseOptions::default()).map(|_| ())
}

fn skip_cross_check() -> ParseOptions {
    ParseOptions {
        danger_skip_cross_check: true,
        ..ParseOptions::default()
    }
}

const VEVENT: &str = "BEGIN:VEVENT\r\nUID:victim\r\nDTSTAMP:20260101T000000Z\r\n\
    ORGANIZER:mailto:mallory@evil.example\r\nEND:VEVENT\r\n";
const ALARM: &str = "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nDESCRIPTION:x\r\n";
const TIMEZONE: &str = "BEGIN:VTIMEZONE\r\nTZID:X\r\nBEGIN:STANDARD\r\n\
    DTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n";

#[test]
fn control_the_plain_request_and_allowed_nestings_parse() {
    for (inside, top) in [
        (String::new(), String::new()),
        (format!("{ALARM}END:VALARM\r\n"), String::new()),
        // RFC 5545 §3.6.6 e-mail alarm: ATTENDEE in a VALARM; RFC 9074: its UID.
        (
            format!("{ALARM}ATTENDEE:mailto:alice@example.com\r\nUID:alarm-1\r\nEND:VALARM\r\n"),
            String::new(),
        ),
        // X- components at the top, in the VEVENT (RFC 9073), in each other.
        (
            "BEGIN:X-A\r\nX-P:1\r\nBEGIN:X-B\r\nX-Q:2\r\nEND:X-B\r\nEND:X-A\r\n".to_owned(),
            "BEGIN:X-TOP\r\nX-R:3\r\nSEQUENCE:1\r\nEND:X-TOP\r\n".to_owned(),
        ),
        (
            String::new(),
            format!("{TIMEZONE}END:STANDARD\r\nEND:VTIMEZONE\r\n"),
        ),
        // RFC 5545 §3.2.7 encodings.
        (
            "ATTACH;ENCODING=BASE64;VALUE=BINARY:aGVsbG8=\r\nX-E;ENCODING=8BIT:x\r\n".to_owned(),
            String::new(),
        ),
    ] {
        let text = request(&inside, &top);
        assert_eq!(outcome(&text), Ok(()), "{text}");
    }
}

#[test]
fn components_stand_only_where_rfc5545_puts_them() {
    let cases: [(String, String, &str, &str); 8] = [
        (VEVENT.to_owned(), String::new(), "VEVENT", "VEVENT"),
        (
            String::new(),
            format!("BEGIN:X-WRAP\r\n{VEVENT}END:X-WRAP\r\n"),
            "VEVENT",
            "X-WRAP",
        ),
        (
            format!("BEGIN:X-PARTY\r\n{VEVENT}END:X-PARTY\r\n"),
            String::new(),
            "VEVENT",
            "X-PARTY",
        ),
        (
            format!("{ALARM}{}END:VALARM\r\n", VEVENT.replace("VEVENT", "VTODO")),
            String::new(),
            "VTODO",
            "VALARM",
        ),
        (
            String::new(),
            format!("{TIMEZONE}{VEVENT}END:STANDARD\r\nEND:VTIMEZONE\r\n"),
            "VEVENT",
            "STANDARD",
        ),
        (
            String::new(),
            format!("{ALARM}END:VALARM\r\n"),
            "VALARM",
            "VCALENDAR",
        ),
        (
            "BEGIN:STANDARD\r\nEND:STANDARD\r\n".to_owned(),
            String::new(),
            "STANDARD",
            "VEVENT",
        ),
        (
            "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".to_owned(),
            String::new(),
            "VCALENDAR",
            "VEVENT",
        ),
    ];
    for (inside, top, component, parent) in cases {
        let text = request(&inside, &top);
        for options in [ParseOptions::default(), skip_cross_check()] {
            let err = parse_itip(text.as_bytes(), &mime("REQUEST"), &options).unwrap_err();
            assert!(
                matches!(&err, ItipError::Malformed(Malformed::MisplacedComponent { component: c, parent: p, .. }) if c == component && p == parent),
                "{err:?} for {text}"
            );
            assert_eq!(err.code(), "malformed-icalendar");
        }
    }
}

#[test]
fn party_properties_stand_only_where_the_decision_reads_them() {
    let cases = [
        (
            "BEGIN:X-P\r\nORGANIZER:mailto:olivia@example.com\r\nEND:X-P\r\n",
            "",
            "ORGANIZER",
            "X-P",
        ),
        (
            "BEGIN:X-P\r\nATTENDEE:mailto:bob@example.com\r\nEND:X-P\r\n",
            "",
            "ATTENDEE",
            "X-P",
        ),
        ("BEGIN:X-P\r\nUID:victim\r\nEND:X-P\r\n", "", "UID", "X-P"),
        (
            "",
            "BEGIN:X-T\r\nRECURRENCE-ID:20260201T100000Z\r\nEND:X-T\r\n",
            "RECURRENCE-ID",
            "X-T",
        ),
        (
            "BEGIN:VALARM\r\nACTION:EMAIL\r\nTRIGGER:-PT5M\r\nORGANIZER:mailto:m@evil.example\r\nEND:VALARM\r\n",
            "",
            "ORGANIZER",
            "VALARM",
        ),
        ("METHOD:CANCEL\r\n", "", "METHOD", "VEVENT"),
    ];
    for (inside, top, property, component) in cases {
        let text = request(inside, top);
        let err = outcome(&text).unwrap_err();
        assert!(
            matches!(&err, ItipError::Malformed(Malformed::MisplacedProperty { property: p, component: c, .. }) if p == property && c == component),
            "{err:?} for {text}"
        );
    }
    // At the VCALENDAR level and in a VTIMEZONE.
    for (line, property, component) in [
        (
            "ORGANIZER:mailto:mallory@evil.example\r\n",
            "ORGANIZER",
            "VCALENDAR",
        ),
        (
            "ATTENDEE:mailto:mallory@evil.example\r\n",
            "ATTENDEE",
            "VCALENDAR",
        ),
        ("UID:victim\r\n", "UID", "VCALENDAR"),
    ] {
        let text =
            request("", "").replace("METHOD:REQUEST\r\n", &format!("METHOD:REQUEST\r\n{line}"));
        let err = outcome(&text).unwrap_err();
        assert!(
            matches!(&err, ItipError::Malformed(Malformed::MisplacedProperty { property: p, component: c, .. }) if p == property && c == component),
            "{err:?}"
        );
        let tz = request(
            "",
            &format!("{TIMEZONE}END:STANDARD\r\n{line}END:VTIMEZONE\r\n"),
        );
        assert!(
            matches!(outcome(&tz), Err(ItipError::Malformed(Malformed::MisplacedProperty { component: c, .. })) if c == "VTIMEZONE"),
            "{tz}"
        );
    }
}

#[test]
fn vcalendar_1_0_constructs_are_refused_even_without_the_cross_check() {
    for (inside, construct) in [
        (
            "X-N;ENCODING=QUOTED-PRINTABLE:a=\r\n",
            "ENCODING=QUOTED-PRINTABLE",
        ),
        (
            "X-N;ENCODING=quoted-printable:a\r\n",
            "ENCODING=quoted-printable",
        ),
        ("X-N;ENCODING=Q:a\r\n", "ENCODING=Q"),
        ("X-N;ENCODING=B:YQ==\r\n", "ENCODING=B"),
        ("X-N;ENCODING=\"BASE64 \":YQ==\r\n", "ENCODING=BASE64 "),
        ("X-N;CHARSET=UTF-7:a\r\n", "CHARSET parameter"),
        ("X-N;BASE64=x:YQ==\r\n", "BASE64 parameter"),
    ] {
        let text = request(inside, "");
        for options in [ParseOptions::default(), skip_cross_check()] {
            let err = parse_itip(text.as_bytes(), &mime("REQUEST"), &options).unwrap_err();
            assert!(
                matches!(&err, ItipError::Malformed(Malformed::LegacyVCalendar { construct: c, .. }) if c == construct),
                "{err:?} for {inside}"
            );
        }
    }
    let version = request("", "").replace("VERSION:2.0", "VERSION:1.0");
    assert!(matches!(
        outcome(&version),
        Err(ItipError::Malformed(Malformed::LegacyVCalendar { construct, offset: 17 })) if construct == "VERSION:1.0"
    ));
}

#[test]
fn begin_and_end_take_no_parameters_and_a_parameter_is_given_once() {
    for text in [
        request("", "").replace("BEGIN:VEVENT", "BEGIN;X-A=\":\":VEVENT"),
        request("", "").replace("END:VEVENT", "END;X=y:VEVENT"),
    ] {
        assert!(
            matches!(
                outcome(&text),
                Err(ItipError::Malformed(Malformed::ComponentName { .. }))
            ),
            "{text}"
        );
    }
    for attendee in [
        "ATTENDEE;PARTSTAT=ACCEPTED;PARTSTAT=DECLINED:mailto:alice@example.com",
        "ATTENDEE;SENT-BY=\"mailto:a@example.com\";CN=A;SENT-BY=\"mailto:m@evil.example\":mailto:alice@example.com",
    ] {
        let text = request("", "").replace(
            "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:alice@example.com",
            attendee,
        );
        assert!(
            matches!(
                outcome(&text),
                Err(ItipError::Malformed(Malformed::ContentLine { .. }))
            ),
            "{attendee}"
        );
    }
}

#[test]
fn the_text_must_be_utf8_as_a_whole() {
    // "é" split by a fold: each logical line is UTF-8 once unfolded, the text is not.
    let text = request("", "").replace("SUMMARY:s", "SUMMARY:caf\u{e9}");
    let mut bytes = text.into_bytes();
    let at = bytes.iter().position(|&b| b == 0xC3).unwrap();
    bytes.splice(at + 1..at + 1, *b"\r\n ");
    for options in [ParseOptions::default(), skip_cross_check()] {
        let err = parse_itip(&bytes, &mime("REQUEST"), &options).unwrap_err();
        assert!(
            matches!(err, ItipError::Malformed(Malformed::NotUtf8 { offset, .. }) if offset == at),
            "{err:?}"
        );
    }
}

/// Two components of one object: `second` replaces the UID, RECURRENCE-ID and ORGANIZER
/// lines of a copy of the first.
fn two_components(method: &str, uid2: &str, organizer2: &str) -> String {
    let attendee = if method == "REPLY" {
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@example.com\r\n"
    } else if method == "PUBLISH" {
        ""
    } else {
        "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:alice@example.com\r\n"
    };
    let sequence = if matches!(method, "CANCEL" | "DECLINECOUNTER") {
        "SEQUENCE:1\r\n"
    } else {
        ""
    };
    let component = |uid: &str, organizer: &str, rid: &str| {
        format!(
            "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260201T100000Z\r\n\
             SUMMARY:s\r\n{sequence}{rid}ORGANIZER:mailto:{organizer}\r\n{attendee}END:VEVENT\r\n"
        )
    };
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nMETHOD:{method}\r\n{}{}END:VCALENDAR\r\n",
        component("u1", "olivia@example.com", ""),
        component(uid2, organizer2, "RECURRENCE-ID:20260208T100000Z\r\n")
    )
}

fn parse_method(method: &str, text: &str) -> Result<(), ItipError> {
    parse_itip(text.as_bytes(), &mime(method), &ParseOptions::default()).map(|_| ())
}

#[test]
fn one_uid_per_object_for_every_method_but_publish() {
    for (method, section) in [
        ("REQUEST", "3.2.2"),
        ("REPLY", "3.2.3"),
        ("CANCEL", "3.2.5"),
        ("DECLINECOUNTER", "3.2.8"),
    ] {
        let same = two_components(method, "u1", "olivia@example.com");
        assert_eq!(parse_method(method, &same), Ok(()), "{method} control");
        let other = two_components(method, "u2", "olivia@example.com");
        let err = parse_method(method, &other).unwrap_err();
        assert!(
            matches!(&err, ItipError::Restriction(Violation { rule: Rule::SameUid, found: 2, section: s, method: Some(m), .. }) if *s == section && m.as_str() == method),
            "{method}: {err:?}"
        );
        assert_eq!(err.code(), "restriction-violation");
    }
    // PUBLISH: several events of one organizer (RFC 5546 §3.2.1), with a warning.
    let publish = two_components("PUBLISH", "u2", "olivia@example.com");
    let msg = parse_itip(
        publish.as_bytes(),
        &mime("PUBLISH"),
        &ParseOptions::default(),
    )
    .unwrap();
    assert_eq!(msg.method, Method::Publish);
    assert!(msg.warnings.contains(&imipsec_itip::Warning::SeveralUids));
}

#[test]
fn one_organizer_per_object_for_every_method_reply_included() {
    for method in ["REQUEST", "REPLY", "CANCEL", "PUBLISH", "DECLINECOUNTER"] {
        // The domain's case does not make another organizer...
        let same = two_components(method, "u1", "olivia@EXAMPLE.com");
        assert_eq!(parse_method(method, &same), Ok(()), "{method} control");
        // ...another address, or the local part in another case, does.
        for organizer in ["mallory@evil.example", "Olivia@example.com"] {
            let other = two_components(method, "u1", organizer);
            let err = parse_method(method, &other).unwrap_err();
            assert!(
                matches!(&err, ItipError::OrganizerMismatch { first, other, .. } if first == "mailto:olivia@example.com" && other == &format!("mailto:{organizer}")),
                "{method}: {err:?}"
            );
            assert_eq!(err.code(), "organizer-mismatch");
        }
    }
    // One component naming an organizer and one naming none.
    let none = two_components("REPLY", "u1", "x").replace("ORGANIZER:mailto:x\r\n", "");
    let all = diagnose(none.as_bytes(), &mime("REPLY"), &ParseOptions::default());
    assert!(
        all.iter().any(|d| matches!(d, Diagnostic::Error(ItipError::OrganizerMismatch { other, .. }) if other == "none")),
        "{all:?}"
    );
}
