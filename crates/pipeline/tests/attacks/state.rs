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

/// An organizer REQUEST for one instance, `recurrence_id` being the whole property line after
/// `RECURRENCE-ID` (parameters included), with VTIMEZONEs for both zones used below.
fn instance_request(uid: &str, sequence: u32, recurrence_id: &str) -> Vec<u8> {
    let zone = |tzid: &str, offset: &str| {
        format!(
            "BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n\
             TZOFFSETFROM:{offset}\r\nTZOFFSETTO:{offset}\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
        )
    };
    let calendar = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//attacks//EN\r\nMETHOD:REQUEST\r\n\
         {}{}BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260601T000000Z\r\n\
         RECURRENCE-ID{recurrence_id}\r\nORGANIZER:mailto:{ORGANIZER}\r\n\
         DTSTART:20260615T080000Z\r\nSUMMARY:Planning\r\nSEQUENCE:{sequence}\r\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{ATTENDEE}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        zone("Europe/Berlin", "+0200"),
        zone("America/New_York", "-0400"),
    );
    message(
        ORGANIZER,
        &signed("rsa2048/organizer", &entity(&calendar, "REQUEST")),
    )
}

/// Issue 15: RECURRENCE-ID reached the store as its bare value, without its TZID, so
/// 10:00 in New York and 10:00 in Berlin (six hours apart) were one key: the Berlin
/// instance's first revision was refused as a `stale-sequence` of the New York one. Keying
/// a TZID-relative value needs its VTIMEZONE evaluated; until then it is refused with its own
/// code, never confused with another instance.
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
    assert_ne!(berlin.primary_reason(), Some(Reason::StaleSequence));
    assert_rejected(&new_york, Reason::UnsupportedRecurrenceId);
    assert_rejected(&berlin, Reason::UnsupportedRecurrenceId);
    // Control: the same instants in UTC are two instances, both accepted.
    assert_accepted(&evaluate_recorded(
        &pipeline,
        &store,
        &instance_request(uid, 1, ":20260615T140000Z"),
    ));
    assert_accepted(&evaluate_recorded(
        &pipeline,
        &store,
        &instance_request(uid, 1, ":20260615T080000Z"),
    ));
}

/// Issue 15: one instance written two ways was two keys, a hole in replay protection: after
/// the organizer's SEQUENCE 2 for the 08:00Z instance, a replay of his older SEQUENCE 1 for
/// the same instance written as 10:00 Europe/Berlin was a fresh key and accepted. The zoned
/// form is now refused (`unsupported-recurrence-id`), and the UTC replay is stale.
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
    assert_rejected(&replay, Reason::UnsupportedRecurrenceId);
    // Control: the replay in the same UTC form is refused by the order itself.
    assert_rejected(
        &evaluate_recorded(
            &pipeline,
            &store,
            &instance_request(uid, 1, ":20260615T080000Z"),
        ),
        Reason::StaleSequence,
    );
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
