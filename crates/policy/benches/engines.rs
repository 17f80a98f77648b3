//! Decide+record and lookups per second, SQLite against PostgreSQL on this machine
//! (issue #16). `cargo bench -p imipsec-policy --bench engines`: starts its own PostgreSQL
//! 15 (the tests' harness: initdb in a temporary folder, loopback TCP, fsync on as a
//! server would run) and a SQLite file with the default options (WAL, synchronous=NORMAL),
//! one connection each, one thread. Each decision is its own transaction with one
//! component, as the gate makes them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/support/mod.rs"]
#[allow(unused_macros)]
mod support;

use std::path::PathBuf;
use std::time::Instant;

use imipsec_policy::{
    DelegationStore, EventStateStore, EventUpdate, GrantScope, Method, NewGrant, StateDecision,
    Store, StoreLocation, StoreOptions, Timestamp,
};

const GRANTS: usize = 1_000;
const DECISIONS: usize = 4_000;
const LOOKUPS: usize = 10_000;

fn update(uid: String, sequence: i64) -> EventUpdate {
    EventUpdate {
        uid,
        recurrence_id: None,
        organizer: Some("org@example.com".into()),
        actor: "org@example.com".into(),
        actor_is_organizer: true,
        sequence,
        dtstamp: Timestamp::from_unix_seconds(1_000 + sequence),
        attendees: vec!["a@example.com".into(), "b@example.com".into()],
        signed: true,
        method: Method::Request,
    }
}

fn run(name: &str, store: &Store) {
    for n in 0..GRANTS {
        store
            .grant(&NewGrant {
                principal: format!("p{}@example.com", n / 4),
                delegate: format!("d{n}@example.com"),
                scope: GrantScope::all(),
                not_before: None,
                until: None,
                note: None,
                recorded_by: "bench".into(),
                recorded_at: Timestamp::from_unix_seconds(1),
            })
            .unwrap();
    }
    let started = Instant::now();
    for i in 0..DECISIONS {
        // Half new events, half updates of an earlier one (a higher SEQUENCE).
        let (uid, sequence) = if i % 2 == 0 {
            (format!("new-{i}"), 0)
        } else {
            (format!("new-{}", i - 1), 1)
        };
        let scope = format!("user{}@example.com", i % 50);
        let decision = store
            .decide_and_record(
                &scope,
                &[update(uid, sequence)],
                Timestamp::from_unix_seconds(2),
            )
            .unwrap();
        assert_eq!(decision, StateDecision::Recorded);
    }
    let decide = DECISIONS as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut allowed = 0;
    for i in 0..LOOKUPS {
        let n = i % GRANTS;
        allowed += usize::from(
            store
                .is_allowed(
                    &format!("p{}@example.com", n / 4),
                    &format!("d{n}@example.com"),
                    Method::Cancel,
                    Timestamp::from_unix_seconds(5),
                )
                .unwrap(),
        );
    }
    assert_eq!(allowed, LOOKUPS);
    let lookups = LOOKUPS as f64 / started.elapsed().as_secs_f64();
    println!("{name}: decide+record {decide:.0}/s, is_allowed {lookups:.0}/s");
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("engines-bench-{}.sqlite", std::process::id()));
    let sqlite = Store::init(&StoreLocation::path(&path), &StoreOptions::default())
        .unwrap()
        .0;
    run("sqlite", &sqlite);
    drop(sqlite);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let cluster = support::Cluster::start_with(true);
    let url = cluster.new_database();
    let postgres = Store::init(&StoreLocation::parse(&url), &StoreOptions::default())
        .unwrap()
        .0;
    run("postgresql", &postgres);
}
