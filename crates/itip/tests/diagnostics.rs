//! Diagnostics people can act on (issue #12): every finding of a broken calendar names the
//! property, component or Content-Type parameter it is about and the RFC rule it breaks. The
//! issue's examples: "malformed content line" named neither; a broken DTSTAMP was blamed on a
//! parser differential; only the first restriction violation was listed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use imipsec_itip::{Diagnostic, MimeParams, ParseOptions, diagnose};

/// A REQUEST with `body` as the VEVENT's properties (CRLF added).
fn request_with(body: &[&str]) -> String {
    let mut text = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n",
    );
    for line in body {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("END:VEVENT\r\nEND:VCALENDAR\r\n");
    text
}

const GOOD: &[&str] = &[
    "UID:u1",
    "DTSTAMP:20260601T120000Z",
    "DTSTART:20260615T100000Z",
    "SEQUENCE:0",
    "SUMMARY:Planning",
    "ORGANIZER:mailto:olivia@example.com",
    "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:alice@example.com",
];

/// GOOD with `line` replacing the line starting with `prefix` (or added when `prefix` is "").
fn good_but(prefix: &str, line: &str) -> String {
    let mut body: Vec<&str> = GOOD
        .iter()
        .copied()
        .filter(|l| prefix.is_empty() || !l.starts_with(prefix))
        .collect();
    if !line.is_empty() {
        body.push(line);
    }
    request_with(&body)
}

const MIME: MimeParams<'static> = MimeParams {
    method: Some("REQUEST"),
    charset: Some("UTF-8"),
    component: None,
};

fn strict() -> ParseOptions {
    ParseOptions {
        strict: true,
        ..ParseOptions::default()
    }
}

/// Each broken input, its Content-Type parameters and options, and the name every finding
/// must mention.
fn cases() -> Vec<(
    &'static str,
    Vec<u8>,
    MimeParams<'static>,
    ParseOptions,
    &'static str,
)> {
    let lenient = ParseOptions::default;
    vec![
        (
            "DTSTAMP that is no DATE-TIME",
            good_but("DTSTAMP", "DTSTAMP:20260601T1254140").into_bytes(),
            MIME,
            lenient(),
            "DTSTAMP",
        ),
        (
            "SEQUENCE that is no INTEGER",
            good_but("SEQUENCE", "SEQUENCE:one").into_bytes(),
            MIME,
            lenient(),
            "SEQUENCE",
        ),
        (
            "underscore in a property a decision reads",
            good_but("ORGANIZER", "ORGANI_ZER:mailto:olivia@example.com").into_bytes(),
            MIME,
            lenient(),
            "ORGANI_ZER",
        ),
        (
            "parameter given twice",
            good_but(
                "ATTENDEE",
                "ATTENDEE;PARTSTAT=ACCEPTED;PARTSTAT=DECLINED:mailto:alice@example.com",
            )
            .into_bytes(),
            MIME,
            lenient(),
            "ATTENDEE",
        ),
        (
            "unclosed quote",
            good_but("ATTENDEE", "ATTENDEE;CN=\"Alice:mailto:alice@example.com").into_bytes(),
            MIME,
            lenient(),
            "ATTENDEE",
        ),
        (
            "no colon",
            good_but("SUMMARY", "SUMMARY").into_bytes(),
            MIME,
            lenient(),
            "SUMMARY",
        ),
        (
            "control character in a value",
            good_but("SUMMARY", "SUMMARY:Plan\u{1}ning").into_bytes(),
            MIME,
            lenient(),
            "SUMMARY",
        ),
        (
            "a line that is not UTF-8",
            {
                let mut bytes = good_but("SUMMARY", "SUMMARY:Plan##ing").into_bytes();
                let at = bytes.windows(2).position(|w| w == b"##").unwrap();
                bytes[at] = 0xff;
                bytes[at + 1] = 0xfe;
                bytes
            },
            MIME,
            lenient(),
            "SUMMARY",
        ),
        (
            "bare LF line ends in strict mode",
            good_but("", "").replace("\r\n", "\n").into_bytes(),
            MIME,
            strict(),
            "BEGIN",
        ),
        (
            "missing charset in strict mode",
            good_but("", "").into_bytes(),
            MimeParams {
                charset: None,
                ..MIME
            },
            strict(),
            "charset",
        ),
        (
            "missing method parameter in strict mode",
            good_but("", "").into_bytes(),
            MimeParams {
                method: None,
                ..MIME
            },
            strict(),
            "method",
        ),
        (
            "method parameter differs from METHOD",
            good_but("", "").into_bytes(),
            MimeParams {
                method: Some("CANCEL"),
                ..MIME
            },
            lenient(),
            "METHOD",
        ),
        (
            "component parameter differs",
            good_but("", "").into_bytes(),
            MimeParams {
                component: Some("VTODO"),
                ..MIME
            },
            lenient(),
            "component",
        ),
        (
            "STATUS not of the component",
            good_but("", "STATUS:NEEDS-ACTION").into_bytes(),
            MIME,
            lenient(),
            "STATUS",
        ),
        (
            "ORGANIZER without mailto:",
            good_but("ORGANIZER", "ORGANIZER:olivia@example.com").into_bytes(),
            MIME,
            lenient(),
            "ORGANIZER",
        ),
        (
            "every restriction violation of a REQUEST",
            request_with(&["SUMMARY:x", "ORGANIZER:mailto:olivia@example.com"]).into_bytes(),
            MIME,
            lenient(),
            "",
        ),
        (
            "VERSION other than 2.0",
            good_but("", "")
                .replace("VERSION:2.0", "VERSION:1.0")
                .into_bytes(),
            MIME,
            lenient(),
            "VERSION",
        ),
        (
            "unknown METHOD",
            good_but("", "")
                .replace("METHOD:REQUEST", "METHOD:INVITE")
                .into_bytes(),
            MimeParams {
                method: Some("INVITE"),
                ..MIME
            },
            lenient(),
            "METHOD",
        ),
        (
            "no METHOD",
            good_but("", "")
                .replace("METHOD:REQUEST\r\n", "")
                .into_bytes(),
            MIME,
            lenient(),
            "METHOD",
        ),
        (
            "BEGIN:VTODO closed by END:VEVENT",
            good_but("", "")
                .replace("BEGIN:VEVENT", "BEGIN:VTODO")
                .into_bytes(),
            MIME,
            lenient(),
            "VTODO",
        ),
        (
            "VEVENT never closed",
            good_but("", "").replace("END:VEVENT\r\n", "").into_bytes(),
            MIME,
            lenient(),
            "VEVENT",
        ),
        (
            "content after END:VCALENDAR",
            format!("{}X-TRAILER:1\r\n", good_but("", "")).into_bytes(),
            MIME,
            lenient(),
            "X-TRAILER",
        ),
        (
            "a second VCALENDAR",
            format!("{}{}", good_but("", ""), good_but("", "")).into_bytes(),
            MIME,
            lenient(),
            "VCALENDAR",
        ),
        (
            "VEVENT nested in a VEVENT",
            good_but(
                "",
                "BEGIN:VEVENT\r\nUID:u2\r\nDTSTAMP:20260601T120000Z\r\nEND:VEVENT",
            )
            .into_bytes(),
            MIME,
            lenient(),
            "VEVENT",
        ),
        (
            "ORGANIZER in the VCALENDAR",
            good_but("", "")
                .replace(
                    "METHOD:REQUEST\r\n",
                    "METHOD:REQUEST\r\nORGANIZER:mailto:mallory@example.net\r\n",
                )
                .into_bytes(),
            MIME,
            lenient(),
            "ORGANIZER",
        ),
        (
            "two organizers in one object",
            format!(
                "{}BEGIN:VEVENT\r\nUID:u1\r\nRECURRENCE-ID:20260622T100000Z\r\n\
                 DTSTAMP:20260601T120000Z\r\nDTSTART:20260622T100000Z\r\nSEQUENCE:0\r\n\
                 SUMMARY:x\r\nORGANIZER:mailto:mallory@example.net\r\n\
                 ATTENDEE:mailto:alice@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
                good_but("", "").trim_end_matches("END:VCALENDAR\r\n")
            )
            .into_bytes(),
            MIME,
            lenient(),
            "ORGANIZER",
        ),
        (
            "no scheduling component",
            b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nMETHOD:REQUEST\r\n\
              END:VCALENDAR\r\n"
                .to_vec(),
            MIME,
            lenient(),
            "VEVENT",
        ),
        (
            "blank line in strict mode",
            good_but("", "")
                .replace("SUMMARY:Planning\r\n", "SUMMARY:Planning\r\n\r\n")
                .into_bytes(),
            MIME,
            strict(),
            "empty line",
        ),
    ]
}

/// What a finding may name: a property, a component, a Content-Type parameter.
const NAMES: &[&str] = &[
    "UID",
    "DTSTAMP",
    "DTSTART",
    "SEQUENCE",
    "SUMMARY",
    "ORGANIZER",
    "ATTENDEE",
    "STATUS",
    "METHOD",
    "VERSION",
    "VCALENDAR",
    "VEVENT",
    "VTODO",
    "BEGIN",
    "X-",
    "ORGANI_ZER",
    "Content-Type",
    "empty line",
];

#[track_caller]
fn text(diagnostic: &Diagnostic) -> String {
    match diagnostic {
        Diagnostic::Error(error) => error.to_string(),
        Diagnostic::Warning(warning) => warning.to_string(),
    }
}

/// Every finding (errors and warnings) of every broken input names what it is about and the
/// RFC rule; each input has at least one error.
#[test]
fn every_finding_names_the_property_and_the_rfc_rule() {
    let mut failures = Vec::new();
    for (name, ics, mime, options, subject) in cases() {
        let findings = diagnose(&ics, &mime, &options);
        if !findings.iter().any(|d| matches!(d, Diagnostic::Error(_))) {
            failures.push(format!("{name}: no error at all: {findings:?}"));
        }
        for finding in &findings {
            let text = text(finding);
            if !text.contains("RFC") {
                failures.push(format!("{name}: no RFC rule: {text}"));
            }
            if !NAMES.iter().any(|n| text.contains(n)) {
                failures.push(format!("{name}: names no property or parameter: {text}"));
            }
        }
        if !findings.iter().any(|f| text(f).contains(subject)) {
            failures.push(format!("{name}: no finding names {subject}: {findings:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The DTSTAMP: an invalid DATE-TIME, not a parser differential.
#[test]
fn broken_dtstamp_is_an_invalid_date_time_not_a_differential() {
    let ics = good_but("DTSTAMP", "DTSTAMP:20260601T1254140");
    let findings = diagnose(ics.as_bytes(), &MIME, &ParseOptions::default());
    let texts: Vec<String> = findings.iter().map(text).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("DTSTAMP") && t.contains("invalid DATE-TIME")),
        "{texts:?}"
    );
    assert!(
        !texts.iter().any(|t| t.contains("differential")),
        "{texts:?}"
    );
}

/// Every restriction violation is listed, each naming its property and RFC 5546 section.
#[test]
fn every_restriction_violation_is_listed() {
    // A REQUEST VEVENT without UID, DTSTAMP and DTSTART: three rows of RFC 5546 §3.2.2.
    let ics = request_with(&[
        "SUMMARY:x",
        "SEQUENCE:0",
        "ORGANIZER:mailto:olivia@example.com",
        "ATTENDEE:mailto:alice@example.com",
    ]);
    let findings = diagnose(ics.as_bytes(), &MIME, &ParseOptions::default());
    let texts: Vec<String> = findings.iter().map(text).collect();
    for property in ["UID", "DTSTAMP", "DTSTART"] {
        assert!(
            texts
                .iter()
                .any(|t| t.contains(property) && t.contains("RFC 5546 §3.2.2")),
            "{property}: {texts:?}"
        );
    }
}
