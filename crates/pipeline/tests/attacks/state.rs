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
