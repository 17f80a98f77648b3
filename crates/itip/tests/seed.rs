//! The six examples of the iMIP draft (testdata/seed, cut from /work/shared/seed/examples
//! with CRLF kept): each gets its precise diagnosis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use imipsec_itip::{
    ComponentKind, Diagnostic, ItipError, Malformed, Method, MimeParams, ParseOptions, Rule,
    Violation, diagnose, parse_itip, restrictions::Presence,
};

fn seed(name: &str) -> Vec<u8> {
    let path = format!("{}/../../testdata/seed/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const REQUEST: MimeParams<'static> = MimeParams {
    method: Some("REQUEST"),
    charset: Some("US-ASCII"),
    component: None,
};

fn errors(d: &[Diagnostic]) -> Vec<&ItipError> {
    d.iter()
        .filter_map(|d| match d {
            Diagnostic::Error(e) => Some(e),
            Diagnostic::Warning(_) => None,
        })
        .collect()
}

#[test]
fn examples_4_1_to_4_3_and_4_5a_parse_as_requests() {
    for name in ["4.1.ics", "4.2.ics", "4.3.ics", "4.5a.ics"] {
        let msg = parse_itip(&seed(name), &REQUEST, &ParseOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(msg.method, Method::Request, "{name}");
        assert_eq!(msg.kind, ComponentKind::Event, "{name}");
        assert_eq!(msg.components.len(), 1, "{name}");
        let c = &msg.components[0];
        assert!(c.organizer.as_ref().unwrap().address.is_mailto(), "{name}");
        assert_eq!(c.attendees.len(), 2, "{name}");
    }
}

#[test]
fn example_4_1_tolerates_the_draft_era_attstat_parameter() {
    let msg = parse_itip(&seed("4.1.ics"), &REQUEST, &ParseOptions::default()).unwrap();
    assert_eq!(
        msg.components[0].attendees[0].partstat, None,
        "ATTSTAT is not PARTSTAT"
    );
    assert_eq!(
        msg.components[0].uid.as_deref(),
        Some("www.acme.com-873970198738777")
    );
}

#[test]
fn example_4_2_blank_line_is_a_warning_lenient_and_an_error_strict() {
    let lenient = diagnose(&seed("4.2.ics"), &REQUEST, &ParseOptions::default());
    assert!(errors(&lenient).is_empty(), "{lenient:?}");
    assert!(lenient.iter().any(|d| matches!(
        d,
        Diagnostic::Warning(imipsec_itip::Warning::BlankLine { .. })
    )));
    let strict = ParseOptions {
        strict: true,
        ..ParseOptions::default()
    };
    let err = parse_itip(&seed("4.2.ics"), &REQUEST, &strict).unwrap_err();
    assert_eq!(err.code(), "malformed-icalendar");
}

/// 4.4 parses (its structure and values are sound), but RFC 5546 section 3.2.2 requires
/// ORGANIZER exactly once in every VEVENT of a REQUEST, and the second VEVENT has none.
/// We do not inherit the first component's ORGANIZER: who organizes a component must be
/// stated in it, or it cannot be authorized. The diagnosis names exactly that row.
#[test]
fn example_4_4_second_vevent_without_organizer_is_a_restriction_violation() {
    let ics = seed("4.4.ics");
    let err = parse_itip(&ics, &REQUEST, &ParseOptions::default()).unwrap_err();
    assert_eq!(err.code(), "restriction-violation");
    let ItipError::Restriction(Violation {
        section,
        method,
        component,
        property,
        rule,
        found,
        offset,
    }) = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (*section, *method, component.as_str(), *property),
        ("3.2.2", Some(Method::Request), "VEVENT", "ORGANIZER")
    );
    assert_eq!((rule, *found), (&Rule::Presence(Presence::One), 0));
    assert_eq!(&ics[*offset..*offset + 12], b"BEGIN:VEVENT");
    assert!(*offset > 400, "the second VEVENT, not the first");
    // The missing ORGANIZER, seen twice: by the table row, and as one object naming an
    // organizer in one component and none in the other (organizer-mismatch). And the
    // two VEVENTs carry two UIDs, which a REQUEST may not (RFC 5546 §3.2.2).
    let all = diagnose(&ics, &REQUEST, &ParseOptions::default());
    let errs = errors(&all);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert_eq!(errs[0], &err);
    assert!(
        matches!(errs[1], ItipError::OrganizerMismatch { other, offset: o, .. } if other == "none" && o == offset),
        "{errs:#?}"
    );
    assert!(
        matches!(
            errs[2],
            ItipError::Restriction(Violation {
                rule: Rule::SameUid,
                found: 2,
                section: "3.2.2",
                ..
            })
        ),
        "{errs:#?}"
    );
}

#[test]
fn example_4_5b_names_the_mismatched_end_and_the_status_value() {
    let ics = seed("4.5b.ics");
    let err = parse_itip(&ics, &REQUEST, &ParseOptions::default()).unwrap_err();
    assert!(
        matches!(&err, ItipError::Malformed(Malformed::MismatchedEnd { begin, end, .. }) if begin == "VTODO" && end == "VEVENT"),
        "{err:?}"
    );
    let all = diagnose(&ics, &REQUEST, &ParseOptions::default());
    let errs = errors(&all);
    assert!(errs.iter().any(|e| matches!(e, ItipError::Malformed(Malformed::InvalidStatus { value, kind: ComponentKind::Todo, .. }) if value == "NEEDS ACTION")), "{errs:#?}");
    // Found on the way: a DUE with a numeric UTC offset, which DATE-TIME does not allow,
    // and no DTSTAMP, which RFC 5546 section 3.4.2 requires in a REQUEST VTODO.
    assert!(errs.iter().any(|e| matches!(e, ItipError::Malformed(Malformed::InvalidDateTime { property, .. }) if property == "DUE")));
    assert!(errs.iter().any(
        |e| matches!(e, ItipError::Restriction(v) if v.property == "DTSTAMP" && v.found == 0)
    ));
}

#[test]
fn example_4_6_names_profile_organizer_without_mailto_and_the_impossible_dtend() {
    let ics = seed("4.6.ics");
    let mime = MimeParams {
        component: Some("vevent"),
        ..REQUEST
    };
    let err = parse_itip(&ics, &mime, &ParseOptions::default()).unwrap_err();
    assert_eq!(
        err,
        ItipError::Malformed(Malformed::MissingMethod {
            profile: Some("REQUEST".into())
        })
    );
    let all = diagnose(&ics, &mime, &ParseOptions::default());
    let errs = errors(&all);
    assert!(errs.iter().any(|e| matches!(e, ItipError::Malformed(Malformed::CalAddressWithoutScheme { property, value, .. }) if property == "ORGANIZER" && value == "foo1@example.com")), "{errs:#?}");
    assert!(errs.iter().any(|e| matches!(e, ItipError::Malformed(Malformed::CalAddressWithoutScheme { property, .. }) if property == "ATTENDEE")));
    assert!(errs.iter().any(|e| matches!(e, ItipError::Malformed(Malformed::InvalidDateTime { property, value, .. }) if property == "DTEND" && value == "199706211T210000Z")));
    assert_eq!(errs.len(), 4, "{errs:#?}");
}
