//! The calcard cross-check: inputs that this crate and calcard read differently, in what
//! the decision depends on, are rejected as a parser differential; inputs they read
//! alike are not, whatever the free text around them holds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use imipsec_itip::{
    CorrelateOptions, DenyAllDelegations, Diagnostic, ItipError, Malformed, MimeParams,
    ParseOptions, correlate, diagnose, parse_itip,
};

const MIME: MimeParams<'static> = MimeParams {
    method: Some("REPLY"),
    charset: Some("UTF-8"),
    component: None,
};

/// A REPLY from mallory@evil.example; `attendee` is its ATTENDEE line, `extra` more lines
/// of the VEVENT.
fn reply(attendee: &str, extra: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\n\
UID:event-1@example.com\r\nDTSTAMP:20260101T000000Z\r\nSEQUENCE:2\r\n{extra}\
ORGANIZER:mailto:olivia@example.com\r\n{attendee}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn differential(text: &str) -> Option<String> {
    diagnose(text.as_bytes(), &MIME, &ParseOptions::default())
        .into_iter()
        .find_map(|d| match d {
            Diagnostic::Error(ItipError::Malformed(Malformed::ParserDifferential { detail })) => {
                Some(detail)
            }
            _ => None,
        })
}

fn skip_cross_check() -> ParseOptions {
    ParseOptions {
        danger_skip_cross_check: true,
        ..ParseOptions::default()
    }
}

#[test]
fn a_backslash_before_a_quote_is_an_address_differential() {
    // RFC 5545 has no escapes in parameter values, so the scanner ends CN at the second
    // quote and reads X-Y as a parameter and mallory as the attendee. calcard honours the
    // backslash, keeps CN open over `;X-Y=` and reads the attendee address from the
    // text the scanner saw inside X-Y.
    let text = reply(
        "ATTENDEE;PARTSTAT=ACCEPTED;CN=\"a\\\";X-Y=\":mailto:victim@example.com\":mailto:mallory@evil.example",
        "",
    );
    // Without the cross-check the scanner alone accepts it, and mallory, who signed,
    // is authorized: this is the forgery the check exists for.
    let msg = parse_itip(text.as_bytes(), &MIME, &skip_cross_check()).unwrap();
    let c = correlate(
        &msg,
        &["mallory@evil.example"],
        &DenyAllDelegations,
        &CorrelateOptions::default(),
    );
    assert!(c.is_authorized());

    let detail = differential(&text).expect("a parser differential");
    assert!(detail.contains("ATTENDEE"), "{detail}");
    let err = parse_itip(text.as_bytes(), &MIME, &ParseOptions::default()).unwrap_err();
    assert_eq!(err.code(), "malformed-icalendar");
}

#[test]
fn differentials_in_every_compared_field_are_found() {
    let cases = [
        // A TEXT escape in the UID: calcard unescapes it, the event state would key
        // another UID than the store.
        (
            "ATTENDEE;PARTSTAT=ACCEPTED:mailto:mallory@evil.example",
            "X-UID-CASE:1\r\n",
            Some(("UID:event-1@example.com", "UID:event\\,1@example.com")),
            "UID",
        ),
        // Leading white space in PARTSTAT: calcard trims it.
        (
            "ATTENDEE;PARTSTAT= DECLINED:mailto:mallory@evil.example",
            "",
            None,
            "PARTSTAT",
        ),
        // A SENT-BY the scanner decodes (RFC 6868) and calcard does not.
        (
            "ATTENDEE;PARTSTAT=ACCEPTED;SENT-BY=\"mailto:a^'b@evil.example\":mailto:mallory@evil.example",
            "",
            None,
            "SENT-BY",
        ),
        // DELEGATED-TO with a backslash escape.
        (
            "ATTENDEE;PARTSTAT=DELEGATED;DELEGATED-TO=\"mailto:x\\@evil.example\":mailto:mallory@evil.example",
            "",
            None,
            "DELEGATED-TO",
        ),
        // An address with a backslash escape in the value.
        (
            "ATTENDEE;PARTSTAT=ACCEPTED:mailto:mallory\\,x@evil.example",
            "",
            None,
            "ATTENDEE",
        ),
        // A RECURRENCE-ID whose RANGE calcard reads another way.
        (
            "ATTENDEE;PARTSTAT=ACCEPTED:mailto:mallory@evil.example",
            "RECURRENCE-ID;RANGE=\" THISANDFUTURE\":20260102T100000Z\r\n",
            None,
            "RANGE",
        ),
        // A METHOD with trailing white space: a REPLY to the scanner, which trims it, an
        // unknown method to calcard.
        (
            "ATTENDEE;PARTSTAT=ACCEPTED:mailto:mallory@evil.example",
            "",
            Some(("METHOD:REPLY\r\n", "METHOD:REPLY \r\n")),
            "METHOD",
        ),
        // A SEQUENCE with white space: 2 to the scanner, text to calcard (whose store
        // would then not see the update move forward).
        (
            "ATTENDEE;PARTSTAT=ACCEPTED:mailto:mallory@evil.example",
            "",
            Some(("SEQUENCE:2\r\n", "SEQUENCE: 2\r\n")),
            "SEQUENCE",
        ),
    ];
    for (attendee, extra, replace, field) in cases {
        let mut text = reply(attendee, extra);
        if let Some((from, to)) = replace {
            text = text.replace(from, to);
        }
        let detail = differential(&text).unwrap_or_else(|| panic!("{field}: none in {text}"));
        assert!(detail.contains(field), "{field}: {detail}");
    }
}

#[test]
fn what_both_read_alike_passes_whatever_the_free_text_holds() {
    // Every compared field in use, quoted and multi-valued parameters, a folded
    // attendee line, and free text that calcard never sees (it would unescape it).
    let text = reply(
        "ATTENDEE;PARTSTAT=DELEGATED;SENT-BY=\"mailto:assistant@evil.example\";DELEGATED-TO=\"mailto:a@evil.example\",\"mai\r\n lto:b@evil.example\";CN=\"M ^'Q^'\":mailto:mallory@evil.example",
        "RECURRENCE-ID;TZID=Europe/Berlin;RANGE=THISANDFUTURE:20260102T100000\r\nDESCRIPTION:a\\, b\\; c\\\\ d\\n\r\nCOMMENT;X-A=\"\\\":x\r\n",
    );
    let diagnostics = diagnose(text.as_bytes(), &MIME, &ParseOptions::default());
    assert!(
        !diagnostics
            .iter()
            .any(|d| matches!(d, Diagnostic::Error(_))),
        "{diagnostics:?}"
    );
    let msg = parse_itip(text.as_bytes(), &MIME, &ParseOptions::default()).unwrap();
    let c = &msg.components[0];
    assert_eq!(c.attendees[0].delegated_to.len(), 2);
    assert!(c.recurrence_id.as_ref().unwrap().this_and_future);
}

#[test]
fn component_trees_are_compared_in_full() {
    // The seed examples and a message with nested VALARMs and a VTIMEZONE pass: the
    // tree comparison does not reject a tree both parsers read alike.
    let nested = reply(
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:mallory@evil.example",
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nDESCRIPTION:x\r\nEND:VALARM\r\nBEGIN:VALARM\r\nACTION:AUDIO\r\nTRIGGER:-PT1M\r\nEND:VALARM\r\n",
    )
    .replace(
        "METHOD:REPLY\r\n",
        "METHOD:REPLY\r\nBEGIN:VTIMEZONE\r\nTZID:X\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n",
    );
    assert_eq!(differential(&nested), None);
}
