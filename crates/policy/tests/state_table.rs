//! One test per row of the README's table "What each method reads and writes": RFC 5546
//! §2.1.5 orders revisions (the organizer's PUBLISH, REQUEST, ADD, CANCEL) and responses
//! (each attendee's REPLY); every other method only reads the state (issue 15).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use imipsec_policy::{
    EventStateStore, EventUpdate, Method, SqliteStore, StateDecision, StateFinding, Timestamp,
};

const ME: &str = "me@example.com";
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const MALLORY: &str = "mallory@evil.example";

fn t(seconds: i64) -> Timestamp {
    Timestamp::from_unix_seconds(seconds)
}

/// A component as the pipeline builds it: `actor` correlated in the role `actor_is_organizer`.
fn update(
    method: Method,
    uid: &str,
    organizer: &str,
    actor: &str,
    sequence: i64,
    dtstamp: i64,
) -> EventUpdate {
    EventUpdate {
        uid: uid.into(),
        recurrence_id: None,
        organizer: Some(organizer.into()),
        actor: actor.into(),
        actor_is_organizer: actor == organizer,
        sequence,
        dtstamp: t(dtstamp),
        attendees: vec![BOB.into()],
        signed: true,
        method,
    }
}

/// The same component sent by an attendee who names herself ORGANIZER as well (the
/// correlation of an attendee method checks only that she is an ATTENDEE).
fn as_attendee(mut update: EventUpdate) -> EventUpdate {
    update.actor_is_organizer = false;
    update
}

fn record(store: &SqliteStore, update: EventUpdate) -> Vec<&'static str> {
    match store.decide_and_record(ME, &[update], t(1)).unwrap() {
        StateDecision::Recorded => Vec::new(),
        StateDecision::Rejected(findings) => findings.iter().map(StateFinding::code).collect(),
        // Only decide_and_record_message answers this (a message's own retry).
        StateDecision::AlreadyRecorded => unreachable!("decide_and_record never answers it"),
    }
}

/// Pin, organizer SEQUENCE, DTSTAMP and method of an event.
type OrganizerState = (
    Option<String>,
    Option<i64>,
    Option<Timestamp>,
    Option<Method>,
);

/// The organizer order and pin of `uid`, as a comparable tuple.
fn organizer_state(store: &SqliteStore, uid: &str) -> Option<OrganizerState> {
    store
        .event(ME, uid, None)
        .unwrap()
        .map(|state| (state.organizer, state.sequence, state.dtstamp, state.method))
}

/// Rows PUBLISH, REQUEST, ADD, CANCEL share this check: a revision is refused when not newer
/// than the last revision (whichever method wrote it), pins the organizer, and records its
/// order and method.
fn revision_row(method: Method) {
    let store = SqliteStore::open_in_memory().unwrap();
    let uid = format!("{method}-row");
    assert!(record(&store, update(Method::Request, &uid, ALICE, ALICE, 1, 100)).is_empty());
    assert_eq!(
        record(&store, update(method, &uid, ALICE, ALICE, 1, 100)),
        ["stale-sequence"],
        "reads the organizer order"
    );
    assert_eq!(
        record(&store, update(method, &uid, MALLORY, MALLORY, 9, 900)),
        ["organizer-mismatch"],
        "reads the pin"
    );
    assert!(record(&store, update(method, &uid, ALICE, ALICE, 2, 50)).is_empty());
    assert_eq!(
        organizer_state(&store, &uid),
        Some((Some(ALICE.into()), Some(2), Some(t(50)), Some(method))),
        "writes the order and the method"
    );
    // A revision is the one thing that pins a fresh UID.
    let fresh = format!("{method}-fresh");
    assert!(record(&store, update(method, &fresh, ALICE, ALICE, 0, 100)).is_empty());
    assert_eq!(
        record(
            &store,
            update(Method::Request, &fresh, MALLORY, MALLORY, 1, 200)
        ),
        ["organizer-mismatch"]
    );
}

#[test]
fn row_publish_is_a_revision_read_and_written() {
    revision_row(Method::Publish);
}

#[test]
fn row_request_is_a_revision_read_and_written() {
    revision_row(Method::Request);
}

#[test]
fn row_add_is_a_revision_read_and_written() {
    revision_row(Method::Add);
}

#[test]
fn row_cancel_is_a_revision_read_and_written() {
    revision_row(Method::Cancel);
}

/// Row REPLY: ordered per attendee, writes that attendee's order, reads the pin, and never
/// pins. Issue 15 (same class as REFRESH): a stranger's REPLY naming herself ORGANIZER of a
/// UID nobody had pinned yet pinned it to her, so the real organizer's REQUEST then failed
/// `organizer-mismatch`.
#[test]
fn row_reply_is_a_response_per_attendee_and_a_strangers_reply_never_pins() {
    let store = SqliteStore::open_in_memory().unwrap();
    assert!(
        record(
            &store,
            as_attendee(update(Method::Reply, "fresh", MALLORY, MALLORY, 0, 100))
        )
        .is_empty()
    );
    assert!(
        record(
            &store,
            update(Method::Request, "fresh", ALICE, ALICE, 0, 200)
        )
        .is_empty(),
        "the real organizer's REQUEST after a stranger's REPLY"
    );
    assert_eq!(
        organizer_state(&store, "fresh"),
        Some((
            Some(ALICE.into()),
            Some(0),
            Some(t(200)),
            Some(Method::Request)
        ))
    );
    // Ordered per attendee; a reply does not move the organizer order.
    assert!(record(&store, update(Method::Reply, "fresh", ALICE, BOB, 0, 300)).is_empty());
    assert_eq!(
        record(&store, update(Method::Reply, "fresh", ALICE, BOB, 0, 300)),
        ["stale-sequence"]
    );
    assert_eq!(
        record(&store, update(Method::Reply, "fresh", MALLORY, BOB, 1, 400)),
        ["organizer-mismatch"]
    );
    let state = store.event(ME, "fresh", None).unwrap().unwrap();
    assert_eq!((state.sequence, state.dtstamp), (Some(0), Some(t(200))));
    assert_eq!(state.replies.len(), 2);
}

/// Row REFRESH, attack 1 (issue 15): a REFRESH carries no SEQUENCE or event data (RFC 5546
/// §3.2.6) but was recorded: a stranger's REFRESH naming herself ORGANIZER pinned a fresh
/// UID to her, and the real organizer's REQUEST then failed `organizer-mismatch`.
#[test]
fn row_refresh_writes_nothing_so_a_strangers_refresh_cannot_pin_a_fresh_uid() {
    let store = SqliteStore::open_in_memory().unwrap();
    assert!(
        record(
            &store,
            as_attendee(update(Method::Refresh, "fresh", MALLORY, MALLORY, 0, 100))
        )
        .is_empty()
    );
    assert_eq!(organizer_state(&store, "fresh"), None, "nothing written");
    assert!(
        record(
            &store,
            update(Method::Request, "fresh", ALICE, ALICE, 0, 200)
        )
        .is_empty()
    );
    // Reads the pin.
    assert_eq!(
        record(
            &store,
            update(Method::Refresh, "fresh", MALLORY, MALLORY, 0, 300)
        ),
        ["organizer-mismatch"]
    );
}

/// Row REFRESH, attack 2 (issue 15): an attendee's REFRESH was recorded in his reply order,
/// so his own earlier REPLY, delivered later, became `stale-sequence`.
#[test]
fn row_refresh_writes_nothing_so_the_attendees_earlier_reply_delivered_later_is_not_stale() {
    let store = SqliteStore::open_in_memory().unwrap();
    assert!(record(&store, update(Method::Request, "u", ALICE, ALICE, 0, 100)).is_empty());
    assert!(record(&store, update(Method::Refresh, "u", ALICE, BOB, 0, 300)).is_empty());
    assert!(
        record(&store, update(Method::Refresh, "u", ALICE, BOB, 0, 300)).is_empty(),
        "not ordered"
    );
    assert!(
        record(&store, update(Method::Reply, "u", ALICE, BOB, 0, 200)).is_empty(),
        "Bob's REPLY, sent before his REFRESH, delivered after it"
    );
    assert!(
        store
            .event(ME, "u", None)
            .unwrap()
            .unwrap()
            .replies
            .iter()
            .all(|r| r.dtstamp == t(200))
    );
}

/// Row COUNTER: a proposal (RFC 5546 §3.2.7), not a response: reads the pin, writes nothing,
/// so the attendee's earlier REPLY delivered after it is not stale (same class as REFRESH).
#[test]
fn row_counter_writes_nothing_so_the_attendees_earlier_reply_delivered_later_is_not_stale() {
    let store = SqliteStore::open_in_memory().unwrap();
    assert!(record(&store, update(Method::Request, "u", ALICE, ALICE, 0, 100)).is_empty());
    assert!(record(&store, update(Method::Counter, "u", ALICE, BOB, 0, 300)).is_empty());
    assert!(record(&store, update(Method::Reply, "u", ALICE, BOB, 0, 200)).is_empty());
    assert_eq!(
        record(&store, update(Method::Counter, "u", MALLORY, BOB, 0, 400)),
        ["organizer-mismatch"]
    );
}

/// Row DECLINECOUNTER: answers a proposal (RFC 5546 §3.2.8), revises nothing: reads the pin,
/// writes nothing, so the organizer's revision with the same SEQUENCE and an earlier
/// DTSTAMP, delivered after it, is not stale (it was, when DECLINECOUNTER wrote the order).
#[test]
fn row_declinecounter_writes_nothing_so_the_organizers_earlier_revision_is_not_stale() {
    let store = SqliteStore::open_in_memory().unwrap();
    assert!(record(&store, update(Method::Request, "u", ALICE, ALICE, 0, 100)).is_empty());
    assert!(
        record(
            &store,
            update(Method::DeclineCounter, "u", ALICE, ALICE, 1, 300)
        )
        .is_empty()
    );
    assert!(record(&store, update(Method::Request, "u", ALICE, ALICE, 1, 200)).is_empty());
    assert_eq!(organizer_state(&store, "u").unwrap().1, Some(1));
    assert_eq!(
        record(
            &store,
            update(Method::DeclineCounter, "u", MALLORY, MALLORY, 1, 400)
        ),
        ["organizer-mismatch"]
    );
}

/// Row REQUEST forwarded by a delegating attendee (RFC 5546 §3.2.2.3): a copy of the
/// organizer's revision, sent by an attendee: reads the pin, writes nothing (neither the
/// organizer order nor the delegator's reply order).
#[test]
fn row_request_forwarded_by_a_delegator_reads_the_pin_and_writes_nothing() {
    let store = SqliteStore::open_in_memory().unwrap();
    assert!(record(&store, update(Method::Request, "u", ALICE, ALICE, 0, 100)).is_empty());
    let forwarded = update(Method::Request, "u", ALICE, BOB, 0, 100);
    assert!(!forwarded.actor_is_organizer);
    assert!(record(&store, forwarded.clone()).is_empty());
    assert!(record(&store, forwarded).is_empty(), "not ordered");
    assert!(record(&store, update(Method::Reply, "u", ALICE, BOB, 0, 50)).is_empty());
    assert_eq!(
        record(&store, update(Method::Request, "u", MALLORY, BOB, 0, 100)),
        ["organizer-mismatch"]
    );
}
