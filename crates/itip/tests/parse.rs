//! parse_itip at the boundary: Content-Type checks, one object / one component type,
//! named limits, and a deterministic mutation loop asserting that no input panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use imipsec_itip::{
    Diagnostic, ItipError, LimitExceeded, LimitKind, Limits, Malformed, MimeParams, ParseOptions,
    Warning, diagnose, parse_itip,
};

const REQUEST: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:u\r\n\
DTSTAMP:20260101T000000Z\r\nDTSTART:20260102T100000Z\r\nSUMMARY:s\r\nORGANIZER;CN=\"A ^'B^'\":mailto:o@example.com\r\n\
ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT:mailto:a@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

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

#[test]
fn a_well_formed_request_builds_the_typed_model() {
    let msg = parse_itip(REQUEST.as_bytes(), &MIME, &strict()).unwrap();
    assert!(msg.warnings.is_empty(), "{:?}", msg.warnings);
    let c = &msg.components[0];
    let organizer = c.organizer.as_ref().unwrap();
    assert_eq!(
        organizer.common_name.as_deref(),
        Some("A \"B\""),
        "RFC 6868 decoded"
    );
    assert_eq!(organizer.address.text, "mailto:o@example.com");
    let a = &c.attendees[0];
    assert_eq!(
        a.partstat,
        Some(imipsec_itip::ParticipationStatus::NeedsAction)
    );
    assert_eq!(
        a.role,
        Some(imipsec_itip::ParticipationRole::RequiredParticipant)
    );
    assert_eq!(a.rsvp, Some(true));
    assert_eq!(a.cutype.as_deref(), Some("INDIVIDUAL"));
    assert_eq!(c.dtstamp.as_deref(), Some("20260101T000000Z"));
}

#[test]
fn content_type_method_must_equal_method() {
    let reply = MimeParams {
        method: Some("REPLY"),
        ..MIME
    };
    let err = parse_itip(REQUEST.as_bytes(), &reply, &ParseOptions::default()).unwrap_err();
    assert_eq!(err.code(), "method-mismatch");
    assert!(
        matches!(err, ItipError::MethodMismatch { content_type: Some(ref m), .. } if m == "REPLY")
    );
    // Missing: a warning when lenient, method-mismatch when strict.
    let none = MimeParams {
        method: None,
        ..MIME
    };
    let msg = parse_itip(REQUEST.as_bytes(), &none, &ParseOptions::default()).unwrap();
    assert!(msg.warnings.contains(&Warning::MissingMethodParameter));
    assert_eq!(
        parse_itip(REQUEST.as_bytes(), &none, &strict())
            .unwrap_err()
            .code(),
        "method-mismatch"
    );
    // Case-insensitive as MIME parameter values are.
    assert!(
        parse_itip(
            REQUEST.as_bytes(),
            &MimeParams {
                method: Some("request"),
                ..MIME
            },
            &strict()
        )
        .is_ok()
    );
}

#[test]
fn charset_missing_is_a_warning_lenient_an_error_strict() {
    let none = MimeParams {
        charset: None,
        ..MIME
    };
    let msg = parse_itip(REQUEST.as_bytes(), &none, &ParseOptions::default()).unwrap();
    assert!(msg.warnings.contains(&Warning::MissingCharset));
    assert_eq!(
        parse_itip(REQUEST.as_bytes(), &none, &strict()).unwrap_err(),
        ItipError::MissingCharset
    );
}

#[test]
fn content_type_component_must_match() {
    let todo = MimeParams {
        component: Some("VTODO"),
        ..MIME
    };
    let err = parse_itip(REQUEST.as_bytes(), &todo, &ParseOptions::default()).unwrap_err();
    assert!(
        matches!(err, ItipError::ComponentMismatch { .. }),
        "{err:?}"
    );
}

#[test]
fn one_component_type_per_object() {
    let mixed = REQUEST.replace(
        "END:VCALENDAR",
        "BEGIN:VTODO\r\nUID:t\r\nDTSTAMP:20260101T000000Z\r\nEND:VTODO\r\nEND:VCALENDAR",
    );
    let err = parse_itip(mixed.as_bytes(), &MIME, &ParseOptions::default()).unwrap_err();
    let ItipError::Restriction(v) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (v.component.as_str(), v.property, v.found),
        ("VCALENDAR", "VTODO", 1)
    );
}

#[test]
fn one_calendar_object_only() {
    let two = format!("{REQUEST}{REQUEST}");
    let err = parse_itip(two.as_bytes(), &MIME, &ParseOptions::default()).unwrap_err();
    assert!(
        matches!(err, ItipError::Malformed(Malformed::SecondCalendar { offset }) if offset == REQUEST.len()),
        "{err:?}"
    );
}

#[test]
fn structure_errors_are_named() {
    type Check = fn(&Malformed) -> bool;
    let cases: [(&[u8], Check); 6] = [
        (b"", |m| matches!(m, Malformed::NoCalendar)),
        (b"BEGIN:VEVENT\r\nEND:VEVENT\r\n", |m| {
            matches!(m, Malformed::NotCalendar { .. })
        }),
        (b"X:1\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", |m| {
            matches!(m, Malformed::ContentOutsideCalendar { offset: 0, .. })
        }),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n", |m| {
            matches!(m, Malformed::Unclosed { .. })
        }),
        (b"BEGIN:VCALENDAR\r\nA\x01:b\r\nEND:VCALENDAR\r\n", |m| {
            matches!(m, Malformed::ControlCharacter { offset: 17, .. })
        }),
        (b"BEGIN:VCALENDAR\r\nA:\xff\r\nEND:VCALENDAR\r\n", |m| {
            matches!(m, Malformed::NotUtf8 { offset: 17, .. })
        }),
    ];
    for (text, check) in cases {
        match parse_itip(text, &MIME, &ParseOptions::default()) {
            Err(ItipError::Malformed(m)) => assert!(check(&m), "{text:?}: {m:?}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn every_limit_has_its_own_error() {
    let big_line = REQUEST.replace("SUMMARY:s", &format!("SUMMARY:{}", "x".repeat(200)));
    let many_attendees = REQUEST.replace(
        "END:VEVENT",
        &format!(
            "{}END:VEVENT",
            "ATTENDEE:mailto:b@example.com\r\n".repeat(20)
        ),
    );
    let nested = REQUEST.replace(
        "END:VEVENT",
        "BEGIN:VALARM\r\nBEGIN:X-A\r\nEND:X-A\r\nEND:VALARM\r\nEND:VEVENT",
    );
    let small = Limits {
        bytes: 10_000,
        components: 3,
        properties: 100,
        attendees: 10,
        line_length: 100,
        nesting: 3,
    };
    let cases = [
        (REQUEST.repeat(40), LimitKind::Bytes),
        (big_line, LimitKind::LineLength),
        (many_attendees.clone(), LimitKind::Attendees),
        (nested.clone(), LimitKind::Nesting),
    ];
    for (text, kind) in cases {
        let options = ParseOptions {
            danger_skip_cross_check: false,
            strict: false,
            limits: Limits {
                components: 100,
                ..small
            },
        };
        match parse_itip(text.as_bytes(), &MIME, &options) {
            Err(ItipError::Limit(LimitExceeded { limit, .. })) => assert_eq!(limit, kind),
            other => panic!("{kind:?}: {other:?}"),
        }
    }
    let options = ParseOptions {
        danger_skip_cross_check: false,
        strict: false,
        limits: Limits {
            nesting: 10,
            ..small
        },
    };
    let err = parse_itip(nested.as_bytes(), &MIME, &options).unwrap_err();
    assert!(
        matches!(
            err,
            ItipError::Limit(LimitExceeded {
                limit: LimitKind::Components,
                ..
            })
        ),
        "{err:?}"
    );
    let options = ParseOptions {
        danger_skip_cross_check: false,
        strict: false,
        limits: Limits {
            properties: 10,
            attendees: 100,
            ..small
        },
    };
    let err = parse_itip(many_attendees.as_bytes(), &MIME, &options).unwrap_err();
    assert!(
        matches!(
            err,
            ItipError::Limit(LimitExceeded {
                limit: LimitKind::Properties,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "limit-exceeded");
}

/// Regression guard for the `icalendar` crate's failure mode (stack overflow at ~2,000
/// nested components): even with the nesting and component limits raised far beyond the
/// defaults, scanning, the calcard cross-check and dropping the tree do not recurse.
#[test]
fn deep_nesting_with_raised_limits_does_not_overflow_the_stack() {
    let depth = 20_000;
    let mut text =
        String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nMETHOD:PUBLISH\r\n");
    text.push_str(&"BEGIN:X-N\r\n".repeat(depth));
    text.push_str(&"END:X-N\r\n".repeat(depth));
    text.push_str("END:VCALENDAR\r\n");
    let limits = Limits {
        components: depth + 10,
        nesting: depth + 10,
        ..Limits::default()
    };
    let run = move || {
        diagnose(
            text.as_bytes(),
            &MIME,
            &ParseOptions {
                limits,
                ..ParseOptions::default()
            },
        )
    };
    // A small stack makes a recursive implementation fail here rather than in production.
    let diagnostics = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(run)
        .unwrap()
        .join();
    let diagnostics = diagnostics.expect("no stack overflow or panic");
    assert!(
        diagnostics.iter().any(|d| matches!(
            d,
            Diagnostic::Error(ItipError::Malformed(Malformed::NoSchedulingComponent))
        )),
        "{diagnostics:?}"
    );
}

#[test]
fn bare_lf_is_a_warning_lenient_and_an_error_strict() {
    let lf = REQUEST.replace("\r\n", "\n");
    let msg = parse_itip(lf.as_bytes(), &MIME, &ParseOptions::default()).unwrap();
    assert!(matches!(
        msg.warnings.first(),
        Some(Warning::BareLineFeed { .. })
    ));
    assert!(parse_itip(lf.as_bytes(), &MIME, &strict()).is_err());
}

/// xorshift64*: deterministic, so a failure reproduces from the printed iteration.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    const INTERESTING: &[u8] = b":;,=\"^'n\r\n \t\xc3\xa9\xff\x00BEGIN:END:VEVENT";
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            2 => {
                let end = (at + rng.below(40)).min(out.len());
                out.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(200)).min(out.len());
                let copy = out[at..end].to_vec();
                let to = rng.below(out.len() + 1);
                out.splice(to..to, copy);
            }
            4 => out.truncate(at),
            _ => {
                let fold = b"\r\n ";
                out.splice(at..at, fold.iter().copied());
            }
        }
    }
    out
}

#[test]
fn mutated_inputs_never_panic() {
    let mut seeds: Vec<Vec<u8>> = vec![REQUEST.as_bytes().to_vec()];
    let dir = format!("{}/../../testdata/seed", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(&dir).unwrap() {
        seeds.push(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let codes = [
        "limit-exceeded",
        "malformed-icalendar",
        "method-mismatch",
        "restriction-violation",
        "organizer-mismatch",
        "warning",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut rejected) = (0, 0);
    for iteration in 0..6_000 {
        let seed = &seeds[iteration % seeds.len()];
        let input = mutate(seed, &mut rng);
        for d in diagnose(&input, &MIME, &ParseOptions::default()) {
            assert!(codes.contains(&d.code()), "iteration {iteration}: {d:?}");
        }
        match parse_itip(&input, &MIME, &ParseOptions::default()) {
            Ok(msg) => {
                ok += 1;
                let c = imipsec_itip::correlate(
                    &msg,
                    &["o@example.com"],
                    &imipsec_itip::DenyAllDelegations,
                    &Default::default(),
                );
                let _ = c.failure().map(|f| f.code());
            }
            Err(_) => rejected += 1,
        }
    }
    println!("mutations: {ok} accepted, {rejected} rejected");
    assert!(
        ok > 0 && rejected > 0,
        "the mutations should hit both sides: {ok} / {rejected}"
    );
}

/// Errors and warnings end up in human report text (the pipeline's `detail`): each names
/// method, component, property and rule in words, never a Debug struct.
#[test]
fn errors_and_warnings_display_in_plain_words() {
    let no_organizer = REQUEST.replace("ORGANIZER;CN=\"A ^'B^'\":mailto:o@example.com\r\n", "");
    let error = parse_itip(no_organizer.as_bytes(), &MIME, &strict()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "REQUEST VEVENT: ORGANIZER must occur exactly once (RFC 5546 §3.2.2), found 0"
    );

    let twice = REQUEST.replace("SUMMARY:s\r\n", "SUMMARY:s\r\nSUMMARY:t\r\n");
    let error = parse_itip(twice.as_bytes(), &MIME, &strict()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "REQUEST VEVENT: SUMMARY must occur exactly once (RFC 5546 §3.2.2), found 2"
    );

    let version = REQUEST.replace("VERSION:2.0", "VERSION:3.0");
    let error = parse_itip(version.as_bytes(), &MIME, &strict()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "byte 17: VERSION:3.0 is not RFC 5545 iCalendar 2.0 (vCalendar 1.0 or unknown \
         version; RFC 5545 §3.7.4 VERSION:2.0, §3.2.7 ENCODING)"
    );

    let publish = MimeParams {
        method: Some("PUBLISH"),
        ..MIME
    };
    let error = parse_itip(REQUEST.as_bytes(), &publish, &strict()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the text/calendar Content-Type says method=PUBLISH, the calendar METHOD:REQUEST \
         (RFC 6047 §2.4: they must be equal)"
    );

    let limits = ParseOptions {
        limits: Limits {
            line_length: 40,
            ..Limits::default()
        },
        ..ParseOptions::default()
    };
    let error = parse_itip(REQUEST.as_bytes(), &MIME, &limits).unwrap_err();
    let offset = REQUEST.find("ORGANIZER").unwrap();
    assert_eq!(
        error.to_string(),
        format!(
            "byte {offset}: an unfolded content line longer than 40 bytes (Limits::line_length)"
        )
    );

    let no_charset = MimeParams {
        charset: None,
        ..MIME
    };
    let findings = diagnose(REQUEST.as_bytes(), &no_charset, &ParseOptions::default());
    assert_eq!(
        findings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "warning: the text/calendar Content-Type has no charset parameter; UTF-8 is \
         assumed (RFC 6047 §2.4)"
        ]
    );
}

/// Whatever is wrong, the message is prose: no Debug formatting of our types leaks.
#[test]
fn no_diagnostic_prints_a_debug_struct() {
    let broken = [
        REQUEST.replace(
            "ORGANIZER;CN=\"A ^'B^'\":mailto:o@example.com",
            "ORGANIZER:o@example.com",
        ),
        REQUEST.replace("END:VEVENT", "END:VTODO"),
        REQUEST.replace("DTSTAMP:20260101T000000Z", "DTSTAMP:2026"),
        REQUEST.replace("METHOD:REQUEST", "METHOD:SHOUT"),
        REQUEST.replace("ATTENDEE;", "ATTENDEE;SENT-BY=\"urn:x\";"),
        REQUEST.replace("\r\n", "\n"),
    ];
    let mut seen = 0;
    for text in &broken {
        for finding in diagnose(text.as_bytes(), &MIME, &ParseOptions::default()) {
            let message = finding.to_string();
            seen += 1;
            for debug in ["Some(", "None", " { ", "Presence(", "CalAddress"] {
                assert!(!message.contains(debug), "{message}");
            }
        }
    }
    assert!(seen >= broken.len(), "every input has a finding");
}

// ---- The interoperability profile (issue #12): each tolerated deviation is accepted with
// the warning IcalendarDeviation naming property and rule, and refused in strict mode. ----

fn mime(method: &'static str) -> MimeParams<'static> {
    MimeParams {
        method: Some(method),
        ..MIME
    }
}

fn deviations(msg: &imipsec_itip::ItipMessage) -> Vec<(imipsec_itip::Deviation, String)> {
    msg.warnings
        .iter()
        .filter_map(|w| match w {
            Warning::IcalendarDeviation {
                deviation,
                property,
                ..
            } => Some((*deviation, property.clone())),
            _ => None,
        })
        .collect()
}

/// Outlook for Mac 2011 (`X-ENTOURAGE_UUID`) and Lotus Notes 8.5 (`X-LOTUS-CHILD_UID`):
/// an `_` in an X- name. calcard reads the line as the same X- property, so the full-text
/// cross-check (which compares every property name) agrees.
#[test]
fn underscore_in_an_x_name_is_a_deviation_and_calcard_agrees() {
    let ics = REQUEST.replace(
        "SUMMARY:s\r\n",
        "SUMMARY:s\r\nX-ENTOURAGE_UUID:7f0c\r\nX-LOTUS-CHILD_UID:ab12\r\n",
    );
    let msg = parse_itip(ics.as_bytes(), &MIME, &ParseOptions::default()).unwrap();
    assert_eq!(
        deviations(&msg),
        [
            (
                imipsec_itip::Deviation::UnderscoreInXName,
                "X-ENTOURAGE_UUID".to_owned()
            ),
            (
                imipsec_itip::Deviation::UnderscoreInXName,
                "X-LOTUS-CHILD_UID".to_owned()
            )
        ]
    );
    let shown = msg.warnings.last().unwrap().to_string();
    assert!(
        shown.contains("X-LOTUS-CHILD_UID") && shown.contains("RFC 5545 §3.1"),
        "{shown}"
    );
    let err = parse_itip(ics.as_bytes(), &MIME, &strict()).unwrap_err();
    assert!(
        matches!(&err, ItipError::Malformed(Malformed::ContentLine { property, .. }) if property == "X-ENTOURAGE_UUID"),
        "{err:?}"
    );
}

/// The tolerance is for X- names only: an `_` in any other name (one a decision might
/// read, or an IANA name a reader could map) stays a malformed line naming the property.
#[test]
fn underscore_outside_an_x_name_stays_malformed() {
    for line in [
        "ATTENDEE_X:mailto:m@example.net\r\n",
        "X_ORGANIZER:mailto:m@example.net\r\n",
        "SUMMARY_1:s\r\n",
        "X-A;CN_X=y:z\r\n",
    ] {
        let ics = REQUEST.replace("SUMMARY:s\r\n", &format!("SUMMARY:s\r\n{line}"));
        let err = parse_itip(ics.as_bytes(), &MIME, &ParseOptions::default()).unwrap_err();
        assert!(
            matches!(&err, ItipError::Malformed(Malformed::ContentLine { .. })),
            "{line}: {err:?}"
        );
        assert!(err.to_string().contains("RFC 5545 §3.1"), "{err}");
    }
}

const REPLY_WITH_ALARM: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\n\
METHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:u\r\nDTSTAMP:20260101T000000Z\r\nORGANIZER:mailto:o@example.com\r\n\
ATTENDEE;PARTSTAT=ACCEPTED:mailto:a@example.com\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\n\
DESCRIPTION:This is an event reminder\r\nTRIGGER:-P0DT0H10M0S\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

/// Google Calendar and Outlook for Mac copy the event's alarm into their REPLY.
#[test]
fn alarm_in_a_reply_is_a_deviation() {
    let msg = parse_itip(
        REPLY_WITH_ALARM.as_bytes(),
        &mime("REPLY"),
        &ParseOptions::default(),
    )
    .unwrap();
    assert_eq!(
        deviations(&msg),
        [(
            imipsec_itip::Deviation::AlarmInReply,
            "VALARM in VEVENT".to_owned()
        )]
    );
    let err = parse_itip(REPLY_WITH_ALARM.as_bytes(), &mime("REPLY"), &strict()).unwrap_err();
    assert!(
        matches!(&err, ItipError::Restriction(v) if v.property == "VALARM"),
        "{err:?}"
    );
}

/// The alarm must still be a well-formed VALARM (its own table applies) standing in the
/// VEVENT: a VALARM without ACTION, or one in the VCALENDAR, is still refused.
#[test]
fn alarm_in_a_reply_must_still_be_a_well_formed_and_well_placed_valarm() {
    let no_action = REPLY_WITH_ALARM.replace("ACTION:DISPLAY\r\n", "");
    let err = parse_itip(
        no_action.as_bytes(),
        &mime("REPLY"),
        &ParseOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ItipError::Restriction(v) if v.component == "VALARM" && v.property == "ACTION"),
        "{err:?}"
    );
    let misplaced = REPLY_WITH_ALARM
        .replace(
            "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:This is an event reminder\r\nTRIGGER:-P0DT0H10M0S\r\nEND:VALARM\r\n",
            "",
        )
        .replace(
            "METHOD:REPLY\r\n",
            "METHOD:REPLY\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:d\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\n",
        );
    let err = parse_itip(
        misplaced.as_bytes(),
        &mime("REPLY"),
        &ParseOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            &err,
            ItipError::Malformed(Malformed::MisplacedComponent { .. })
        ),
        "{err:?}"
    );
}

/// Android's mail client writes a REQUEST without SUMMARY ("Can be null" in RFC 5546).
#[test]
fn request_without_summary_is_a_deviation_but_two_summaries_are_not() {
    let ics = REQUEST.replace("SUMMARY:s\r\n", "");
    let msg = parse_itip(ics.as_bytes(), &MIME, &ParseOptions::default()).unwrap();
    assert_eq!(
        deviations(&msg),
        [(
            imipsec_itip::Deviation::RequestWithoutSummary,
            "SUMMARY in VEVENT".to_owned()
        )]
    );
    let err = parse_itip(ics.as_bytes(), &MIME, &strict()).unwrap_err();
    assert!(
        matches!(&err, ItipError::Restriction(v) if v.property == "SUMMARY" && v.found == 0),
        "{err:?}"
    );
    let two = REQUEST.replace("SUMMARY:s\r\n", "SUMMARY:s\r\nSUMMARY:t\r\n");
    let err = parse_itip(two.as_bytes(), &MIME, &ParseOptions::default()).unwrap_err();
    assert!(
        matches!(&err, ItipError::Restriction(v) if v.property == "SUMMARY" && v.found == 2),
        "{err:?}"
    );
}

const COUNTER: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nMETHOD:COUNTER\r\nBEGIN:VEVENT\r\nUID:u\r\n\
DTSTAMP:20260101T000000Z\r\nDTSTART:20260102T110000Z\r\nSUMMARY:s\r\nORGANIZER:mailto:o@example.com\r\n\
ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:a@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

/// COUNTER and DECLINECOUNTER without SEQUENCE: RFC 5545 §3.8.7.4 makes it 0.
#[test]
fn counter_and_declinecounter_without_sequence_are_a_deviation_read_as_zero() {
    let decline = COUNTER.replace("METHOD:COUNTER", "METHOD:DECLINECOUNTER");
    for (ics, method) in [(COUNTER, "COUNTER"), (decline.as_str(), "DECLINECOUNTER")] {
        let msg = parse_itip(ics.as_bytes(), &mime(method), &ParseOptions::default())
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        assert_eq!(
            deviations(&msg),
            [(
                imipsec_itip::Deviation::CounterWithoutSequence,
                "SEQUENCE in VEVENT".to_owned()
            )],
            "{method}"
        );
        assert_eq!(msg.components[0].sequence, None, "absent, read as 0");
        let err = parse_itip(ics.as_bytes(), &mime(method), &strict()).unwrap_err();
        assert!(
            matches!(&err, ItipError::Restriction(v) if v.property == "SEQUENCE" && v.found == 0),
            "{method}: {err:?}"
        );
        let twice = ics.replace("SUMMARY:s\r\n", "SUMMARY:s\r\nSEQUENCE:1\r\nSEQUENCE:2\r\n");
        assert!(
            parse_itip(twice.as_bytes(), &mime(method), &ParseOptions::default()).is_err(),
            "{method}: two SEQUENCEs"
        );
    }
}

/// A value that fails its type is named as such, not blamed on a parser differential
/// (issue #12: `DTSTAMP:20260601T1254140` was a calcard "parser differential").
#[test]
fn a_value_that_fails_its_type_says_so() {
    let ics = REQUEST.replace("DTSTAMP:20260101T000000Z", "DTSTAMP:20260601T1254140");
    let err = parse_itip(ics.as_bytes(), &MIME, &ParseOptions::default()).unwrap_err();
    assert!(
        matches!(&err, ItipError::Malformed(Malformed::InvalidDateTime { property, .. }) if property == "DTSTAMP"),
        "{err:?}"
    );
    let shown = err.to_string();
    assert!(
        shown.contains("DTSTAMP: invalid DATE-TIME") && shown.contains("RFC 5545 §3.3.5"),
        "{shown}"
    );
    let ics = REQUEST.replace("SUMMARY:s\r\n", "SUMMARY:s\r\nSEQUENCE:1x\r\n");
    let err = parse_itip(ics.as_bytes(), &MIME, &ParseOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("SEQUENCE: invalid INTEGER"),
        "{err}"
    );
}

/// Every restriction violation is listed, not just the first.
#[test]
fn every_restriction_violation_is_listed() {
    let ics = REQUEST
        .replace("UID:u\r\n", "")
        .replace("DTSTAMP:20260101T000000Z\r\n", "");
    let errors =
        imipsec_itip::parse_itip_all(ics.as_bytes(), &MIME, &ParseOptions::default()).unwrap_err();
    let properties: Vec<&str> = errors
        .iter()
        .filter_map(|e| match e {
            ItipError::Restriction(v) => Some(v.property),
            _ => None,
        })
        .collect();
    assert!(
        properties.contains(&"UID") && properties.contains(&"DTSTAMP"),
        "{errors:?}"
    );
}

/// "malformed content line" names the property and the rule.
#[test]
fn a_malformed_content_line_names_property_and_rule() {
    for (line, property, rule) in [
        (
            "ATTENDEE;CN=\"x:mailto:a@example.com\r\n",
            "ATTENDEE",
            "quoted",
        ),
        ("DESCRIPTION no colon\r\n", "DESCRIPTION no colon", "no ':'"),
        ("X-A;PARTSTAT=A;PARTSTAT=B:x\r\n", "X-A", "given twice"),
    ] {
        let ics = REQUEST.replace("SUMMARY:s\r\n", &format!("SUMMARY:s\r\n{line}"));
        let err = parse_itip(ics.as_bytes(), &MIME, &ParseOptions::default()).unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains(&format!("{property}: malformed content line"))
                && shown.contains(rule)
                && shown.contains("RFC 5545 §3"),
            "{shown}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// VTIMEZONEs in the typed model (issue 15): kept as written, and the key of a TZID-relative
// RECURRENCE-ID resolved through them.

/// Outlook's "W. Europe Standard Time" as Outlook writes it (DTSTART in 1601).
const W_EUROPE: &str = "BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\nBEGIN:STANDARD\r\n\
DTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n\
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\n\
DTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n\
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n";

fn exception(recurrence_id: &str, zones: &str) -> String {
    REQUEST
        .replace("METHOD:REQUEST\r\n", &format!("METHOD:REQUEST\r\n{zones}"))
        .replace(
            "UID:u\r\n",
            &format!("UID:u\r\nRECURRENCE-ID{recurrence_id}\r\n"),
        )
}

fn key_of(text: &str) -> Result<imipsec_types::RecurrenceKey, imipsec_types::RecurrenceKeyError> {
    let msg = parse_itip(text.as_bytes(), &MIME, &strict()).unwrap();
    msg.components[0].recurrence_id.as_ref().unwrap().key()
}

#[test]
fn exchange_vtimezone_is_kept_in_the_typed_model() {
    let path = format!(
        "{}/../../testdata/clients/exchange-2010-request.ics",
        env!("CARGO_MANIFEST_DIR")
    );
    let ics = std::fs::read(&path).unwrap();
    let msg = parse_itip(&ics, &MIME, &ParseOptions::default()).unwrap();
    assert_eq!(msg.timezones.len(), 1);
    let zone = &msg.timezones[0];
    assert_eq!(zone.tzids, ["Romance Standard Time"]);
    let kinds: Vec<_> = zone.observances.iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        [
            imipsec_types::ObservanceKind::Standard,
            imipsec_types::ObservanceKind::Daylight
        ]
    );
    assert_eq!(
        zone.observances[0].rrules,
        ["FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10"]
    );
    // The event's DTSTART, 09:30 in Paris in February, is 08:30Z.
    let local = imipsec_types::DateTime::parse_date_time("20150220T093000").unwrap();
    let instant =
        imipsec_types::resolve_local_time(&msg.timezones, "Romance Standard Time", &local).unwrap();
    assert_eq!(instant.to_rfc3339().unwrap(), "2015-02-20T08:30:00Z");
}

/// Issue 15: the key of a TZID-relative RECURRENCE-ID is its UTC instant, equal to the same
/// instant written in UTC; a quoted TZID parameter names the same zone.
#[test]
fn zoned_recurrence_id_keys_its_utc_instant() {
    let zoned = key_of(&exception(
        ";TZID=W. Europe Standard Time:20260601T100000",
        W_EUROPE,
    ));
    let quoted = key_of(&exception(
        ";TZID=\"W. Europe Standard Time\":20260601T100000",
        W_EUROPE,
    ));
    let utc = key_of(&exception(":20260601T080000Z", ""));
    assert_eq!(zoned.as_ref().unwrap().as_str(), "20260601T080000Z");
    assert_eq!(zoned, utc);
    assert_eq!(quoted, utc);
    // DATE and floating forms keep their own keys.
    assert_eq!(
        key_of(&exception(";VALUE=DATE:20260601", ""))
            .unwrap()
            .as_str(),
        "20260601"
    );
    assert_eq!(
        key_of(&exception(":20260601T100000", "")).unwrap().as_str(),
        "20260601T100000"
    );
}

/// Without its VTIMEZONE, or with one outside the evaluated subset, a zoned RECURRENCE-ID
/// parses (the text is valid iCalendar) but has no key.
#[test]
fn zoned_recurrence_id_without_an_evaluable_vtimezone_has_no_key() {
    let rid = ";TZID=W. Europe Standard Time:20260601T100000";
    let monthly = W_EUROPE.replace(
        "FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3",
        "FREQ=MONTHLY",
    );
    for zones in [String::new(), monthly, W_EUROPE.repeat(2)] {
        assert!(
            matches!(
                key_of(&exception(rid, &zones)),
                Err(imipsec_types::RecurrenceKeyError::TzidRelative { .. })
            ),
            "{zones}"
        );
    }
}
