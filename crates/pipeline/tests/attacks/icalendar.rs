//! iCalendar parser differentials and one ORGANIZER and UID per object (issue #11 item 4 and 10).
//!
//! The attacker, mallory, holds a valid certificate and genuinely signs a REQUEST for her own
//! event; inside it she hides a construct that this crate did not read but a recursive or more
//! lenient consumer (calcard, the parser of the Stalwart server; libical; sabre-vobject) does:
//! a second VEVENT naming the organizer's UID, or an ORGANIZER that replaces her own. Each test
//! has the honest control next to it: the same REQUEST without the construct is accepted.

use super::*;

const VICTIM_UID: &str = "board-meeting@example.com";

/// A REQUEST for mallory's own event, organized and genuinely signed by her; `extra` goes
/// before END:VEVENT, `top` before END:VCALENDAR.
fn mallory_request(extra: &str, top: &str) -> Vec<u8> {
    let ics = calendar("REQUEST", "mallory-lunch@example.net", 0, MALLORY, extra)
        .replace("END:VCALENDAR\r\n", &format!("{top}END:VCALENDAR\r\n"));
    message(
        MALLORY,
        &signed("rsa2048/stranger", &entity(&ics, "REQUEST")),
    )
}

/// The event a recursive consumer would schedule: the organizer's UID and name, a later
/// SEQUENCE.
fn hidden_vevent() -> String {
    format!(
        "BEGIN:VEVENT\r\nUID:{VICTIM_UID}\r\nDTSTAMP:20260601T000000Z\r\n\
         ORGANIZER:mailto:{ORGANIZER}\r\nDTSTART:20260615T100000Z\r\nSUMMARY:Cancelled\r\n\
         SEQUENCE:9\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n"
    )
}

#[test]
fn control_mallorys_own_request_is_accepted() {
    assert_accepted(&evaluate(&mallory_request("", "")));
}

/// RFC 5545 §3.6.1 allows only VALARM inside a VEVENT; Stalwart treats every VEVENT as a
/// scheduling component, so one nested in mallory's event would update the organizer's.
#[test]
fn vevent_nested_in_a_vevent_is_malformed() {
    let raw = mallory_request(&hidden_vevent(), "");
    assert_rejected(&evaluate(&raw), Reason::MalformedIcalendar);
}

/// The same hidden VEVENT wrapped in an X- component at the top of the VCALENDAR.
#[test]
fn vevent_inside_an_x_component_is_malformed() {
    let top = format!("BEGIN:X-WRAPPER\r\n{}END:X-WRAPPER\r\n", hidden_vevent());
    let raw = mallory_request("", &top);
    assert_rejected(&evaluate(&raw), Reason::MalformedIcalendar);
}

/// An X- (or IANA) component nested in the VEVENT carrying an ORGANIZER and ATTENDEE the
/// decision never reads.
#[test]
fn organizer_inside_an_x_component_is_malformed() {
    let extra = format!(
        "BEGIN:X-PARTY\r\nORGANIZER:mailto:{ORGANIZER}\r\nATTENDEE:mailto:{ATTENDEE}\r\nEND:X-PARTY\r\n"
    );
    let raw = mallory_request(&extra, "");
    assert_rejected(&evaluate(&raw), Reason::MalformedIcalendar);
}

/// A scheduling component where RFC 5545 puts none: a VEVENT in a VTIMEZONE's STANDARD
/// observance, a VTODO inside a VALARM.
#[test]
fn scheduling_components_in_timezones_and_alarms_are_malformed() {
    let timezone = format!(
        "BEGIN:VTIMEZONE\r\nTZID:X\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n\
         TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n{}END:STANDARD\r\nEND:VTIMEZONE\r\n",
        hidden_vevent()
    );
    assert_rejected(
        &evaluate(&mallory_request("", &timezone)),
        Reason::MalformedIcalendar,
    );
    let alarm = format!(
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nDESCRIPTION:x\r\n{}END:VALARM\r\n",
        hidden_vevent().replace("VEVENT", "VTODO")
    );
    assert_rejected(
        &evaluate(&mallory_request(&alarm, "")),
        Reason::MalformedIcalendar,
    );
}

/// calcard joins the next physical line into a value that carries
/// `ENCODING=QUOTED-PRINTABLE` and ends in `=` (vCalendar 1.0 soft line breaks). Here it
/// swallows mallory's ORGANIZER line and the BEGIN/END of an X- component, so the server
/// reads the ORGANIZER this crate saw inside the X- component as the event's organizer,
/// while the scanner read mallory. The old projection to calcard (structure and decision
/// lines only) never contained the X- lines, so it agreed.
#[test]
fn quoted_printable_soft_break_swallowing_lines_is_malformed() {
    let ics = calendar("REQUEST", VICTIM_UID, 9, MALLORY, "").replace(
        &format!("ORGANIZER:mailto:{MALLORY}\r\n"),
        &format!(
            "X-A;ENCODING=QUOTED-PRINTABLE:x=\r\nORGANIZER:mailto:{MALLORY}\r\n\
             X-B;ENCODING=QUOTED-PRINTABLE:y=\r\nBEGIN:X-C\r\nORGANIZER:mailto:{ORGANIZER}\r\n\
             X-D;ENCODING=QUOTED-PRINTABLE:z=\r\nEND:X-C\r\n"
        ),
    );
    let raw = message(
        MALLORY,
        &signed("rsa2048/stranger", &entity(&ics, "REQUEST")),
    );
    assert_rejected(&evaluate(&raw), Reason::MalformedIcalendar);
}

/// A vCalendar 1.0 object: its QUOTED-PRINTABLE, CHARSET and line rules are not RFC 5545's,
/// and consumers that still speak 1.0 read it by those.
#[test]
fn vcalendar_1_0_is_malformed() {
    let ics = calendar("REQUEST", "mallory-lunch@example.net", 0, MALLORY, "")
        .replace("VERSION:2.0", "VERSION:1.0");
    let raw = message(
        MALLORY,
        &signed("rsa2048/stranger", &entity(&ics, "REQUEST")),
    );
    assert_rejected(&evaluate(&raw), Reason::MalformedIcalendar);
}

/// vCalendar 1.0 parameters on an otherwise plain line: `CHARSET` (calcard decodes the
/// value with it), a bare `BASE64` parameter name (calcard then base64-decodes the value)
/// and ENCODING values RFC 5545 does not define (`Q`, `B`).
#[test]
fn vcalendar_1_0_parameters_are_malformed() {
    for parameters in [
        ";CHARSET=UTF-7",
        ";BASE64=x",
        ";ENCODING=Q",
        ";ENCODING=B",
        ";ENCODING=QUOTED-PRINTABLE",
    ] {
        let extra = format!("X-NOTE{parameters}:x\r\n");
        assert_rejected(
            &evaluate(&mallory_request(&extra, "")),
            Reason::MalformedIcalendar,
        );
    }
}

/// A UTF-8 sequence split by a fold: RFC 5545 §3.1 asks readers to rejoin it, but the
/// server receives the text decoded as a whole, where the split sequence is invalid (and
/// becomes U+FFFD or a refusal). Whatever one reader makes of it, the two disagree.
#[test]
fn utf8_sequence_split_by_a_fold_is_malformed() {
    let ics = calendar("REQUEST", "mallory-lunch@example.net", 0, MALLORY, "")
        .replace("SUMMARY:Planning", "SUMMARY:Caf\u{e9}");
    let mut bytes = ics.into_bytes();
    let at = find(&bytes, "\u{e9}".as_bytes()).unwrap();
    bytes.splice(at + 1..at + 1, *b"\r\n ");
    let mut part =
        b"Content-Type: text/calendar; method=REQUEST; charset=utf-8; component=VEVENT\r\n\
Content-Transfer-Encoding: 8bit\r\n\r\n"
            .to_vec();
    part.extend_from_slice(&bytes);
    // The crate's signer refuses 8-bit text that is not UTF-8; the hand-built SignedData
    // signs the bytes as they are.
    let info = signer_info("rsa2048/stranger", &honest_attributes(&part), false);
    let cms = signed_data(None, &[info], &["rsa2048/stranger"]);
    let raw = message(MALLORY, &multipart_signed(&part, &cms));
    assert_rejected(&evaluate(&raw), Reason::MalformedIcalendar);
}

/// An instance override of the organizer's series, added by an attendee to her REPLY, that
/// names another ORGANIZER: RFC 5546 §3.2.3 makes ORGANIZER the organizer of the original
/// event in every component, so the two components speak of two events.
#[test]
fn reply_with_two_organizers_is_organizer_mismatch() {
    let reply = calendar("REPLY", "series@example.com", 0, ORGANIZER, "");
    let mut override_component = reply
        .split("BEGIN:VEVENT\r\n")
        .nth(1)
        .unwrap()
        .split("END:VEVENT\r\n")
        .next()
        .unwrap()
        .replace(
            &format!("ORGANIZER:mailto:{ORGANIZER}"),
            &format!("ORGANIZER:mailto:{MALLORY}"),
        );
    override_component.push_str("RECURRENCE-ID:20260622T100000Z\r\n");
    let control = message(
        ATTENDEE,
        &signed("rsa2048/attendee", &entity(&reply, "REPLY")),
    );
    assert_accepted(&evaluate(&control));
    let two = reply.replace(
        "END:VCALENDAR\r\n",
        &format!("BEGIN:VEVENT\r\n{override_component}END:VEVENT\r\nEND:VCALENDAR\r\n"),
    );
    let raw = message(
        ATTENDEE,
        &signed("rsa2048/attendee", &entity(&two, "REPLY")),
    );
    assert_rejected(&evaluate(&raw), Reason::OrganizerMismatch);
}

/// mallory's REQUEST carries a second VEVENT with the organizer's UID, both naming mallory
/// as ORGANIZER: RFC 5546 §3.2.2 "All components MUST have the same UID". Without a store
/// nothing pins the victim's UID, so the object rule is what refuses it.
#[test]
fn request_with_two_uids_is_restriction_violation() {
    let second = hidden_vevent().replace(
        &format!("ORGANIZER:mailto:{ORGANIZER}\r\n"),
        &format!("ORGANIZER:mailto:{MALLORY}\r\nATTENDEE:mailto:{ATTENDEE}\r\n"),
    );
    // Control: the same second VEVENT as an instance override of mallory's own event
    // (her UID, a RECURRENCE-ID) is accepted.
    let same_uid = second
        .replace(VICTIM_UID, "mallory-lunch@example.net")
        .replace(
            "SEQUENCE:9\r\n",
            "SEQUENCE:0\r\nRECURRENCE-ID:20260622T100000Z\r\n",
        );
    assert_accepted(&evaluate(&mallory_request("", &same_uid)));
    let raw = mallory_request("", &second);
    assert_rejected(&evaluate(&raw), Reason::RestrictionViolation);
}

/// PUBLISH may carry several events (RFC 5546 §3.2.1: "VEVENT 1+" without the same-UID
/// rule), each authorized on its own; they must still name one ORGANIZER.
#[test]
fn publish_of_several_events_needs_one_organizer() {
    let publish = |second_organizer: &str| {
        let one = calendar("PUBLISH", "talk-1@example.net", 0, MALLORY, "").replace(
            &format!("ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{ATTENDEE}\r\n"),
            "",
        );
        let component = one
            .split("BEGIN:VEVENT\r\n")
            .nth(1)
            .unwrap()
            .split("END:VEVENT\r\n")
            .next()
            .unwrap()
            .replace("talk-1@", "talk-2@")
            .replace(
                &format!("ORGANIZER:mailto:{MALLORY}"),
                &format!("ORGANIZER:mailto:{second_organizer}"),
            );
        let ics = one.replace(
            "END:VCALENDAR\r\n",
            &format!("BEGIN:VEVENT\r\n{component}END:VEVENT\r\nEND:VCALENDAR\r\n"),
        );
        let part = entity(&ics, "PUBLISH");
        message(MALLORY, &signed("rsa2048/stranger", &part))
    };
    assert_accepted(&evaluate(&publish(MALLORY)));
    assert_rejected(&evaluate(&publish(ORGANIZER)), Reason::OrganizerMismatch);
}

/// The same parameter twice on the attendee's line: this crate's model took the first
/// PARTSTAT, a reader that keeps the last records another answer than the verdict did.
#[test]
fn parameter_given_twice_is_malformed() {
    let reply = |partstat: &str| {
        let ics = calendar("REPLY", "series@example.com", 0, ORGANIZER, "").replace(
            "ATTENDEE;PARTSTAT=ACCEPTED:",
            &format!("ATTENDEE;{partstat}:"),
        );
        message(
            ATTENDEE,
            &signed("rsa2048/attendee", &entity(&ics, "REPLY")),
        )
    };
    assert_accepted(&evaluate(&reply("PARTSTAT=DECLINED")));
    assert_rejected(
        &evaluate(&reply("PARTSTAT=ACCEPTED;CN=A;PARTSTAT=DECLINED")),
        Reason::MalformedIcalendar,
    );
}

/// A byte-order mark, a NUL and a bare CR: calcard skips the first and the last (it
/// accepts `\u{feff}BEGIN` and ignores CR anywhere), so the server would read lines this
/// crate did not; all are refused. (The scanner refused these before issue #11 too: a
/// regression guard for the strict line rules, not a new mechanism.) The bare CR is now
/// refused one layer earlier, by the strict MIME walk, as a mixed line ending.
#[test]
fn bom_nul_and_bare_cr_are_malformed() {
    for (from, to, reason) in [
        (
            "BEGIN:VCALENDAR",
            "\u{feff}BEGIN:VCALENDAR",
            Reason::MalformedIcalendar,
        ),
        (
            "SUMMARY:Planning",
            "SUMMARY:Plan\0ning",
            Reason::MalformedIcalendar,
        ),
        (
            "SUMMARY:Planning\r\n",
            "SUMMARY:Planning\rORGANIZER:mailto:x@example.com\r\n",
            Reason::MalformedMime,
        ),
    ] {
        let ics =
            calendar("REQUEST", "mallory-lunch@example.net", 0, MALLORY, "").replace(from, to);
        let part = entity(&ics, "REQUEST");
        let info = signer_info("rsa2048/stranger", &honest_attributes(&part), false);
        let cms = signed_data(None, &[info], &["rsa2048/stranger"]);
        let raw = message(MALLORY, &multipart_signed(&part, &cms));
        assert_rejected(&evaluate(&raw), reason);
    }
}
