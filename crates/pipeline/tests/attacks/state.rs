//! Event state: running without a store is explicit, and every verdict says whether state was checked (issue #11 item 10).

use super::*;
use imipsec_pipeline::EventState;

fn evaluate_with(
    pipeline: &Pipeline,
    store: Option<&SqliteStore>,
    recipient: Option<&str>,
    raw: &[u8],
) -> Verdict {
    pipeline
        .evaluate(
            raw,
            &Evaluation {
                at: AT,
                recipient,
                record: false,
            },
            store.map(|store| store as &dyn imipsec_pipeline::Stores),
        )
        .unwrap()
}

/// Issue #11 item 10: without a store a validly signed CANCEL of another organizer's UID
/// cannot be stopped (nothing pins the UID), so the verdict must say that state was not
/// checked, in the JSON and with a named warning, instead of a plain accept.
#[test]
fn storeless_cancel_of_another_organizers_uid_says_event_state_not_checked() {
    let cancel = calendar("CANCEL", "storeless-hijack@example.com", 1, MALLORY, "");
    let raw = message(
        MALLORY,
        &signed("rsa2048/stranger", &entity(&cancel, "CANCEL")),
    );
    let verdict = evaluate(&raw);
    assert_accepted(&verdict);
    assert_eq!(verdict.event_state(), EventState::NotChecked);
    assert!(
        verdict.has_warning(Warning::EventStateUnchecked),
        "{:?}",
        verdict.warnings()
    );
    let json = serde_json::to_value(&verdict).unwrap();
    assert_eq!(json["event_state"], "not-checked");
    assert!(
        json["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|warning| warning["code"] == "event-state-unchecked"),
        "{json}"
    );
}

/// Control: with a store the same kind of CANCEL is judged against the pinned organizer, and
/// the verdict says so (on the accept that pins the UID and on the reject of the hijack).
#[test]
fn store_judged_verdicts_say_event_state_checked() {
    let pipeline = pipeline();
    let store = SqliteStore::open_in_memory().unwrap();
    let pinned = evaluate_recorded(&pipeline, &store, &signed_request("checked@example.com", 0));
    assert_accepted(&pinned);
    assert_eq!(pinned.event_state(), EventState::Checked);
    assert!(!pinned.has_warning(Warning::EventStateUnchecked));
    assert_eq!(
        serde_json::to_value(&pinned).unwrap()["event_state"],
        "checked"
    );
    let cancel = calendar("CANCEL", "checked@example.com", 1, MALLORY, "");
    let raw = message(
        MALLORY,
        &signed("rsa2048/stranger", &entity(&cancel, "CANCEL")),
    );
    let hijack = evaluate_with(&pipeline, Some(&store), Some(ATTENDEE), &raw);
    assert_rejected(&hijack, Reason::OrganizerMismatch);
    assert_eq!(hijack.event_state(), EventState::Checked);
}

/// A store without a recipient (the state scope) checks nothing either: said, not implied.
#[test]
fn store_without_recipient_scope_says_event_state_not_checked() {
    let pipeline = pipeline();
    let store = SqliteStore::open_in_memory().unwrap();
    let verdict = evaluate_with(
        &pipeline,
        Some(&store),
        None,
        &signed_request("no-scope@example.com", 0),
    );
    assert_accepted(&verdict);
    assert_eq!(verdict.event_state(), EventState::NotChecked);
    assert!(verdict.has_warning(Warning::EventStateUnchecked));
}

/// A message rejected before the state step was not judged by the store, even though one is
/// configured: `not-checked`, and no warning (nothing was skipped for lack of a store).
#[test]
fn rejected_before_the_state_step_is_not_checked_without_warning() {
    let pipeline = pipeline();
    let store = SqliteStore::open_in_memory().unwrap();
    let unsigned = message(
        ORGANIZER,
        &entity(&request("unsigned@example.com", 0), "REQUEST"),
    );
    let verdict = evaluate_with(&pipeline, Some(&store), Some(ATTENDEE), &unsigned);
    assert_rejected(&verdict, Reason::Unsigned);
    assert_eq!(verdict.event_state(), EventState::NotChecked);
    assert!(!verdict.has_warning(Warning::EventStateUnchecked));
}

/// The fact cannot be forged by whoever builds a verdict outside the pipeline: the only
/// public constructor makes a reject, which is `not-checked` (an accept cannot be built
/// outside the pipeline at all: the `compile_fail` doc tests of `Accepted` and `Verdict`).
#[test]
fn verdict_built_outside_the_pipeline_is_never_checked() {
    let verdict = Verdict::rejected(
        imipsec_pipeline::Finding::new(Reason::Unsigned, "made up"),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    assert!(!verdict.is_accept());
    assert_eq!(verdict.event_state(), EventState::NotChecked);
}

/// Issue 15: a REFRESH "carries no SEQUENCE or event data" (RFC 5546 §3.2.6) but was recorded.
/// Mallory, a validly signed stranger, sends the recipient a REFRESH naming herself both
/// ATTENDEE (the requester) and ORGANIZER of a UID nobody has pinned yet; that pinned the UID
/// to her, and the real organizer's REQUEST then failed `organizer-mismatch`. Now a REFRESH
/// only reads the state (crates/policy/README.md, "What each method reads and writes").
#[test]
fn strangers_signed_refresh_cannot_pin_a_fresh_uid_against_the_real_organizer() {
    let pipeline = pipeline();
    let store = SqliteStore::open_in_memory().unwrap();
    let uid = "refresh-pin@example.com";
    let refresh = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//attacks//EN\r\nMETHOD:REFRESH\r\n\
         BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260601T000000Z\r\n\
         ORGANIZER:mailto:{MALLORY}\r\nATTENDEE:mailto:{MALLORY}\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    let raw = message(
        MALLORY,
        &signed("rsa2048/stranger", &entity(&refresh, "REFRESH")),
    );
    assert_accepted(&evaluate_recorded(&pipeline, &store, &raw));
    let request = evaluate_recorded(&pipeline, &store, &signed_request(uid, 0));
    assert_accepted(&request);
    // Control: the REFRESH still reads the pin the REQUEST wrote.
    assert_rejected(
        &evaluate_recorded(&pipeline, &store, &raw),
        Reason::OrganizerMismatch,
    );
}

/// A VTIMEZONE with one fixed offset since 1970.
fn fixed_zone(tzid: &str, offset: &str) -> String {
    format!(
        "BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n\
         TZOFFSETFROM:{offset}\r\nTZOFFSETTO:{offset}\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    )
}

/// An organizer REQUEST for one instance, `recurrence_id` being the whole property line after
/// `RECURRENCE-ID` (parameters included), with VTIMEZONEs for both zones used below
/// (Europe/Berlin at +02:00 and America/New_York at -04:00, their June offsets).
fn instance_request(uid: &str, sequence: u32, recurrence_id: &str) -> Vec<u8> {
    let zones = fixed_zone("Europe/Berlin", "+0200") + &fixed_zone("America/New_York", "-0400");
    instance_request_with_zones(uid, sequence, recurrence_id, &zones)
}

/// [`instance_request`] with the calendar's VTIMEZONEs given as text.
fn instance_request_with_zones(
    uid: &str,
    sequence: u32,
    recurrence_id: &str,
    zones: &str,
) -> Vec<u8> {
    let calendar = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//attacks//EN\r\nMETHOD:REQUEST\r\n\
         {zones}BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260601T000000Z\r\n\
         RECURRENCE-ID{recurrence_id}\r\nORGANIZER:mailto:{ORGANIZER}\r\n\
         DTSTART:20260615T080000Z\r\nSUMMARY:Planning\r\nSEQUENCE:{sequence}\r\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{ATTENDEE}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    );
    message(
        ORGANIZER,
        &signed("rsa2048/organizer", &entity(&calendar, "REQUEST")),
    )
}

/// Issue 15: RECURRENCE-ID reached the store as its bare value, without its TZID, so
/// 10:00 in New York and 10:00 in Berlin (six hours apart) were one key: the Berlin
/// instance's first revision was refused as a `stale-sequence` of the New York one. Each is
/// now keyed by its UTC instant, resolved through the calendar's VTIMEZONE: two instances,
/// each one the same key as its instant written in UTC.
#[test]
fn recurrence_ids_in_two_zones_at_the_same_wall_clock_time_are_not_one_instance() {
    let pipeline = pipeline();
    let store = SqliteStore::open_in_memory().unwrap();
    let uid = "two-zones@example.com";
    let new_york = evaluate_recorded(
        &pipeline,
        &store,
        &instance_request(uid, 1, ";TZID=America/New_York:20260615T100000"),
    );
    let berlin = evaluate_recorded(
        &pipeline,
        &store,
        &instance_request(uid, 1, ";TZID=Europe/Berlin:20260615T100000"),
    );
    assert_accepted(&new_york);
    assert_accepted(&berlin);
    // The keys are the two instants: a replay of either in UTC is the same instance.
    for utc in [":20260615T140000Z", ":20260615T080000Z"] {
        assert_rejected(
            &evaluate_recorded(&pipeline, &store, &instance_request(uid, 1, utc)),
            Reason::StaleSequence,
        );
    }
    // Control: a third instant is a third instance.
    assert_accepted(&evaluate_recorded(
        &pipeline,
        &store,
        &instance_request(uid, 1, ":20260615T120000Z"),
    ));
}

/// Issue 15: one instance written two ways was two keys, a hole in replay protection: after
/// the organizer's SEQUENCE 2 for the 08:00Z instance, a replay of his older SEQUENCE 1 for
/// the same instance written as 10:00 Europe/Berlin was a fresh key and accepted. Both forms
/// now key the instant, so the replay is stale, in either direction.
#[test]
fn one_instance_written_in_utc_and_in_a_zone_cannot_replay_an_older_sequence() {
    let pipeline = pipeline();
    let store = SqliteStore::open_in_memory().unwrap();
    let uid = "utc-and-zone@example.com";
    assert_accepted(&evaluate_recorded(
        &pipeline,
        &store,
        &instance_request(uid, 2, ":20260615T080000Z"),
    ));
    let replay = evaluate_recorded(
        &pipeline,
        &store,
        &instance_request(uid, 1, ";TZID=Europe/Berlin:20260615T100000"),
    );
    assert_rejected(&replay, Reason::StaleSequence);
    // Control: a newer revision of the same instance in the zoned form is accepted...
    assert_accepted(&evaluate_recorded(
        &pipeline,
        &store,
        &instance_request(uid, 3, ";TZID=Europe/Berlin:20260615T100000"),
    ));
    // ...and the other direction: written in the zone, replayed in UTC.
    assert_rejected(
        &evaluate_recorded(
            &pipeline,
            &store,
            &instance_request(uid, 2, ":20260615T080000Z"),
        ),
        Reason::StaleSequence,
    );
}

/// Issue 15: a TZID-relative RECURRENCE-ID whose VTIMEZONE cannot be evaluated (none with
/// that TZID, two with it, a rule outside the subset real zones use, an offset RFC 5545
/// forbids, a time before the zone's first onset) has no key; with event state checked it is refused with its own code rather
/// than keyed by its local text (which lets zones collide and instants split). Control: the
/// same message with an evaluable zone is accepted.
#[test]
fn recurrence_id_in_a_zone_outside_the_evaluated_subset_is_unsupported() {
    let pipeline = pipeline();
    let store = SqliteStore::open_in_memory().unwrap();
    let berlin = fixed_zone("Europe/Berlin", "+0200");
    let monthly = "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:DAYLIGHT\r\n\
                   DTSTART:19700329T020000\r\nRRULE:FREQ=MONTHLY;BYDAY=-1SU\r\n\
                   TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n";
    let minus_zero = berlin.replace("TZOFFSETTO:+0200", "TZOFFSETTO:-0000");
    let later = berlin.replace("19700101T000000", "20300101T000000");
    let rid = ";TZID=Europe/Berlin:20260615T100000";
    for (case, zones, detail) in [
        (
            "no VTIMEZONE",
            fixed_zone("Europe/Paris", "+0200"),
            "no VTIMEZONE",
        ),
        ("two VTIMEZONEs", berlin.repeat(2), "2 VTIMEZONEs"),
        ("monthly rule", monthly.to_owned(), "FREQ"),
        ("offset -0000", minus_zero, "TZOFFSETTO"),
        (
            "before the first onset",
            later,
            "before the first observance onset",
        ),
    ] {
        let uid = format!("unsupported-zone-{}@example.com", case.replace(' ', "-"));
        let verdict = evaluate_recorded(
            &pipeline,
            &store,
            &instance_request_with_zones(&uid, 1, rid, &zones),
        );
        assert_rejected(&verdict, Reason::UnsupportedRecurrenceId);
        assert!(
            verdict.reasons().iter().any(|r| r.detail.contains(detail)),
            "{case}: {:?}",
            verdict.reasons()
        );
        // Control: the same instance with an evaluable VTIMEZONE.
        assert_accepted(&evaluate_recorded(
            &pipeline,
            &store,
            &instance_request_with_zones(&uid, 1, rid, &berlin),
        ));
    }
}

/// Without a store the recurrence key decides nothing, so a TZID-relative RECURRENCE-ID is
/// no reason to reject (behaviour of store-less audits unchanged).
#[test]
fn tzid_recurrence_id_without_a_store_is_not_a_reason() {
    let verdict = evaluate(&instance_request(
        "storeless-zone@example.com",
        1,
        ";TZID=Europe/Berlin:20260615T100000",
    ));
    assert_accepted(&verdict);
}
