//! Every named limit of [`Limits`] at the limit (accepted) and one past it (its own
//! [`StoreError`] variant), through the public traits on an in-memory store. `store.rs`
//! checks some of them only past the limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use imipsec_policy::{
    AddressError, DelegationStore, EventStateStore, EventUpdate, GrantScope, Limits, Method,
    NewGrant, SqliteStore, StoreError, StoreOptions, TextField, Timestamp,
};

const SCOPE: &str = "me@example.com";

fn store(limits: Limits) -> SqliteStore {
    let options = StoreOptions {
        limits,
        ..StoreOptions::default()
    };
    SqliteStore::open_in_memory_with(&options).unwrap()
}

fn t(seconds: i64) -> Timestamp {
    Timestamp::from_unix_seconds(1_780_272_000 + seconds)
}

fn grant(delegate: &str, note: Option<String>) -> NewGrant {
    NewGrant {
        principal: "mailto:alice@example.com".into(),
        delegate: delegate.into(),
        scope: GrantScope::all(),
        not_before: None,
        until: None,
        note,
        recorded_by: "admin".into(),
        recorded_at: t(0),
    }
}

fn update(uid: &str, recurrence_id: Option<&str>, attendees: usize) -> EventUpdate {
    EventUpdate {
        uid: uid.into(),
        recurrence_id: recurrence_id.map(str::to_owned),
        organizer: Some("alice@example.com".into()),
        actor: "alice@example.com".into(),
        actor_is_organizer: true,
        sequence: 0,
        dtstamp: t(0),
        attendees: (0..attendees)
            .map(|i| format!("a{i}@example.com"))
            .collect(),
        signed: true,
        method: Method::Request,
    }
}

/// An address of exactly `len` bytes after `mailto:`.
fn address_of(len: usize) -> String {
    let domain = "@example.com";
    format!("mailto:{}{domain}", "d".repeat(len - domain.len()))
}

#[test]
fn address_bytes_at_and_past_the_limit() {
    let limits = Limits {
        address_bytes: 40,
        ..Limits::default()
    };
    store(limits.clone())
        .grant(&grant(&address_of(40), None))
        .unwrap();
    match store(limits).grant(&grant(&address_of(41), None)) {
        Err(StoreError::InvalidAddress {
            reason: AddressError::TooLong { len: 41, max: 40 },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn text_bytes_at_and_past_the_limit() {
    let limits = Limits {
        text_bytes: 16,
        ..Limits::default()
    };
    store(limits.clone())
        .grant(&grant("d@example.com", Some("n".repeat(16))))
        .unwrap();
    match store(limits).grant(&grant("d@example.com", Some("n".repeat(17)))) {
        Err(StoreError::TextTooLong {
            field: TextField::Note,
            len: 17,
            max: 16,
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn uid_bytes_at_and_past_the_limit() {
    let limits = Limits {
        uid_bytes: 32,
        ..Limits::default()
    };
    let store = store(limits);
    assert!(
        store
            .evaluate(SCOPE, &[update(&"u".repeat(32), None, 1)])
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.evaluate(SCOPE, &[update(&"u".repeat(33), None, 1)]),
        Err(StoreError::UidTooLong { len: 33, max: 32 })
    ));
}

#[test]
fn recurrence_id_bytes_at_and_past_the_limit() {
    let limits = Limits {
        recurrence_id_bytes: 16,
        ..Limits::default()
    };
    let store = store(limits);
    // 16 bytes: 20261201T100000Z
    assert!(
        store
            .evaluate(SCOPE, &[update("u", Some("20261201T100000Z"), 1)])
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.evaluate(SCOPE, &[update("u", Some("20261201T100000ZZ"), 1)]),
        Err(StoreError::RecurrenceIdTooLong { len: 17, max: 16 })
    ));
}

#[test]
fn updates_per_message_at_and_past_the_limit() {
    let limits = Limits {
        updates_per_message: 5,
        ..Limits::default()
    };
    let store = store(limits);
    let five: Vec<EventUpdate> = (0..5).map(|i| update(&format!("u{i}"), None, 1)).collect();
    assert!(store.evaluate(SCOPE, &five).unwrap().is_empty());
    let six: Vec<EventUpdate> = (0..6).map(|i| update(&format!("u{i}"), None, 1)).collect();
    assert!(matches!(
        store.decide_and_record(SCOPE, &six, t(1)),
        Err(StoreError::TooManyUpdates { count: 6, max: 5 })
    ));
}

#[test]
fn attendees_per_update_at_and_past_the_limit() {
    let limits = Limits {
        attendees_per_update: 7,
        ..Limits::default()
    };
    let store = store(limits);
    assert!(
        store
            .evaluate(SCOPE, &[update("u", None, 7)])
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.decide_and_record(SCOPE, &[update("u", None, 8)], t(1)),
        Err(StoreError::TooManyAttendees { count: 8, max: 7 })
    ));
}

fn import(grants: usize) -> String {
    let rows: Vec<String> = (0..grants)
        .map(|i| format!(r#"{{"principal":"p{i}@example.com","delegate":"d@example.com"}}"#))
        .collect();
    format!(
        r#"{{"format":"imipsec-delegations","version":1,"grants":[{}]}}"#,
        rows.join(",")
    )
}

#[test]
fn import_bytes_at_and_past_the_limit() {
    let json = import(2);
    let limits = Limits {
        import_bytes: json.len(),
        ..Limits::default()
    };
    assert_eq!(store(limits).import_json(&json, "admin", t(1)).unwrap(), 2);
    let limits = Limits {
        import_bytes: json.len() - 1,
        ..Limits::default()
    };
    assert!(matches!(
        store(limits).import_json(&json, "admin", t(1)),
        Err(StoreError::ImportTooLarge { .. })
    ));
}

#[test]
fn import_grants_at_and_past_the_limit() {
    let limits = Limits {
        import_grants: 3,
        ..Limits::default()
    };
    assert_eq!(
        store(limits.clone())
            .import_json(&import(3), "admin", t(1))
            .unwrap(),
        3
    );
    assert!(matches!(
        store(limits).import_json(&import(4), "admin", t(1)),
        Err(StoreError::TooManyImportGrants { count: 4, max: 3 })
    ));
}
