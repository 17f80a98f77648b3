//! The interoperability profile (issue #12): deviations real clients write and no decision
//! reads are accepted with the warning `icalendar-deviation` (naming property and rule), and
//! rejected with `strict_icalendar`. Each family is tested signed by the party that may send
//! it, tolerant and strict, next to the deviation's neighbours that must stay rejected
//! because a decision reads them or parsers could read them differently (issue #11 wins).

use super::*;

fn strict_pipeline() -> Pipeline {
    let trust = TrustStore::from_pem_files(
        &[certs().join("root.cert.pem")],
        &[certs().join("intermediate.crl.pem")],
    )
    .unwrap();
    let mut settings = Settings::new(trust);
    settings.identities = vec![identity("rsa2048/attendee")];
    settings.strict_icalendar = true;
    Pipeline::new(settings)
}

pub(super) fn evaluate_strict(raw: &[u8]) -> Verdict {
    strict_pipeline()
        .evaluate(
            raw,
            &Evaluation {
                at: AT,
                recipient: Some(ATTENDEE),
                record: false,
            },
            None,
        )
        .unwrap()
}

/// The details of the `icalendar-deviation` warnings.
fn deviations(verdict: &Verdict) -> Vec<String> {
    verdict
        .warnings()
        .iter()
        .filter(|w| w.code.to_string() == "icalendar-deviation")
        .map(|w| w.detail.clone())
        .collect()
}

/// A calendar signed by the party that sends `method` (the organizer for REQUEST and
/// DECLINECOUNTER, the attendee for REPLY and COUNTER).
fn signed_by_sender(ics: &str, method: &str) -> Vec<u8> {
    let (from, key) = match method {
        "REPLY" | "COUNTER" => (ATTENDEE, "rsa2048/attendee"),
        _ => (ORGANIZER, "rsa2048/organizer"),
    };
    message(from, &signed(key, &entity(ics, method)))
}

/// Accepted tolerant with exactly one deviation warning naming `property` and `rule`;
/// rejected strict with `strict_reason`.
#[track_caller]
fn tolerated(ics: &str, method: &str, property: &str, rule: &str, strict_reason: Reason) {
    let raw = signed_by_sender(ics, method);
    let verdict = evaluate(&raw);
    assert_accepted(&verdict);
    let details = deviations(&verdict);
    assert_eq!(details.len(), 1, "{details:?}");
    assert!(
        details[0].contains(property) && details[0].contains(rule),
        "{details:?}"
    );
    assert_rejected(&evaluate_strict(&raw), strict_reason);
}

#[test]
fn control_an_rfc_conforming_invitation_has_no_deviation_and_passes_strict() {
    let raw = signed_request("profile-control@example.com", 0);
    let verdict = evaluate(&raw);
    assert_accepted(&verdict);
    assert!(deviations(&verdict).is_empty(), "{:?}", verdict.warnings());
    assert_accepted(&evaluate_strict(&raw));
}

/// Outlook for Mac 2011 writes X-ENTOURAGE_UUID, Lotus Notes 8.5 X-LOTUS-CHILD_UID: an `_`
/// RFC 5545 §3.1 does not allow in an x-name. Was `malformed-icalendar: malformed content
/// line` even when correctly signed by the ORGANIZER.
#[test]
fn outlook_mac_underscore_x_name_is_accepted_with_a_deviation_warning() {
    for line in ["X-ENTOURAGE_UUID:6F5A3B1C", "X-LOTUS-CHILD_UID:4A2B9C"] {
        let name = line.split(':').next().unwrap();
        let ics = calendar(
            "REQUEST",
            "profile-x@example.com",
            0,
            ORGANIZER,
            &format!("{line}\r\n"),
        );
        tolerated(
            &ics,
            "REQUEST",
            name,
            "RFC 5545 §3.1",
            Reason::MalformedIcalendar,
        );
    }
}

/// The `_` is tolerated in X- names only: a name a decision could read (or a reader could
/// map onto one) with an `_` stays malformed, tolerant or not.
#[test]
fn underscore_outside_an_x_name_stays_malformed_icalendar() {
    for line in [
        "ORGANIZER_X:mailto:mallory@example.net",
        "X_ORGANIZER:mailto:mallory@example.net",
        "X-A;SENT_BY=\"mailto:mallory@example.net\":x",
    ] {
        let ics = calendar(
            "REQUEST",
            "profile-x@example.com",
            0,
            ORGANIZER,
            &format!("{line}\r\n"),
        );
        let verdict = evaluate(&signed_by_sender(&ics, "REQUEST"));
        assert_rejected(&verdict, Reason::MalformedIcalendar);
        assert!(
            verdict.reasons()[0]
                .detail
                .contains("malformed content line")
                && verdict.reasons()[0].detail.contains("RFC 5545 §3.1"),
            "{:?}",
            verdict.reasons()
        );
    }
}

const GOOGLE_ALARM: &str = "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:This is an event reminder\r\n\
TRIGGER:-P0DT0H10M0S\r\nEND:VALARM\r\n";

/// Google Calendar replies (and Outlook for Mac's) carry the event's VALARM; RFC 5546
/// §3.2.3 lists VALARM as 0 in a REPLY. Every Google Calendar reply was refused.
#[test]
fn google_reply_with_valarm_is_accepted_with_a_deviation_warning() {
    let ics = calendar(
        "REPLY",
        "profile-alarm@example.com",
        0,
        ORGANIZER,
        GOOGLE_ALARM,
    );
    tolerated(
        &ics,
        "REPLY",
        "VALARM",
        "RFC 5546 §3.2.3",
        Reason::RestrictionViolation,
    );
}

/// The alarm must still be a VALARM in the VEVENT: in the VCALENDAR it is misplaced
/// (a reader could take it for something else), and an alarm that breaks its own table
/// is still a restriction violation.
#[test]
fn reply_alarm_misplaced_or_malformed_stays_rejected() {
    let misplaced = calendar("REPLY", "profile-alarm@example.com", 0, ORGANIZER, "")
        .replace("END:VCALENDAR", &format!("{GOOGLE_ALARM}END:VCALENDAR"));
    assert_rejected(
        &evaluate(&signed_by_sender(&misplaced, "REPLY")),
        Reason::MalformedIcalendar,
    );
    let no_trigger = calendar(
        "REPLY",
        "profile-alarm@example.com",
        0,
        ORGANIZER,
        &GOOGLE_ALARM.replace("TRIGGER:-P0DT0H10M0S\r\n", ""),
    );
    assert_rejected(
        &evaluate(&signed_by_sender(&no_trigger, "REPLY")),
        Reason::RestrictionViolation,
    );
}

/// Android's mail client sends a REQUEST without SUMMARY (RFC 5546 §3.2.2: 1, "Can be
/// null").
#[test]
fn android_request_without_summary_is_accepted_with_a_deviation_warning() {
    let ics = request("profile-summary@example.com", 0).replace("SUMMARY:Planning\r\n", "");
    tolerated(
        &ics,
        "REQUEST",
        "SUMMARY",
        "RFC 5546 §3.2.2",
        Reason::RestrictionViolation,
    );
}

/// COUNTER and DECLINECOUNTER without SEQUENCE (absent means 0, RFC 5545 §3.8.7.4).
#[test]
fn counter_and_declinecounter_without_sequence_are_accepted_with_a_deviation_warning() {
    for method in ["COUNTER", "DECLINECOUNTER"] {
        let ics = calendar(method, "profile-seq@example.com", 0, ORGANIZER, "")
            .replace("SEQUENCE:0\r\n", "");
        tolerated(
            &ics,
            method,
            "SEQUENCE",
            "RFC 5546 §3.2.7/§3.2.8",
            Reason::RestrictionViolation,
        );
    }
}

/// A deviation is no licence for anything a decision reads: a REPLY with an alarm and no
/// ORGANIZER still fails its table, and the details list every violation, not the first.
#[test]
fn every_restriction_violation_is_listed_beside_a_tolerated_deviation() {
    let ics = calendar(
        "REPLY",
        "profile-alarm@example.com",
        0,
        ORGANIZER,
        GOOGLE_ALARM,
    )
    .replace("DTSTAMP:20260601T000000Z\r\n", "")
    .replace(&format!("ORGANIZER:mailto:{ORGANIZER}\r\n"), "");
    let verdict = evaluate(&signed_by_sender(&ics, "REPLY"));
    assert_rejected(&verdict, Reason::RestrictionViolation);
    let details: Vec<&str> = verdict
        .reasons()
        .iter()
        .map(|r| r.detail.as_str())
        .collect();
    assert!(
        details.iter().any(|d| d.contains("ORGANIZER must occur"))
            && details.iter().any(|d| d.contains("DTSTAMP must occur")),
        "{details:?}"
    );
}

/// A DATE-TIME that fails its type says so (was a calcard "parser differential").
#[test]
fn invalid_dtstamp_is_named_as_an_invalid_date_time() {
    let ics = request("profile-dtstamp@example.com", 0)
        .replace("DTSTAMP:20260601T000000Z", "DTSTAMP:20260601T1254140");
    let verdict = evaluate(&signed_by_sender(&ics, "REQUEST"));
    assert_rejected(&verdict, Reason::MalformedIcalendar);
    assert!(
        verdict.reasons()[0]
            .detail
            .contains("DTSTAMP: invalid DATE-TIME"),
        "{:?}",
        verdict.reasons()
    );
}

/// Listing every violation must not let one message fill the verdict: 60 components each
/// missing DTSTAMP and SUMMARY give 120 violations, of which 32 are listed and the rest
/// counted.
#[test]
fn listed_violations_are_bounded_per_calendar() {
    let mut events = String::new();
    for i in 0..60 {
        events.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:bounded@example.com\r\nRECURRENCE-ID:202606{:02}T100000Z\r\n\
             ORGANIZER:mailto:{ORGANIZER}\r\nDTSTART:20260615T100000Z\r\nSEQUENCE:0\r\n\
             ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{ATTENDEE}\r\nEND:VEVENT\r\n",
            i % 28 + 1
        ));
    }
    let ics = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//attacks//EN\r\nMETHOD:REQUEST\r\n\
         {events}END:VCALENDAR\r\n"
    );
    let verdict = evaluate_strict(&signed_by_sender(&ics, "REQUEST"));
    assert_rejected(&verdict, Reason::RestrictionViolation);
    assert_eq!(verdict.reasons().len(), 33, "{:?}", verdict.reasons());
    assert!(
        verdict.reasons()[32]
            .detail
            .ends_with("and 88 more findings"),
        "{:?}",
        verdict.reasons()[32]
    );
}
