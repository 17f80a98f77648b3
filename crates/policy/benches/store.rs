//! Throughput of delegation lookups and event-state decide+record on one
//! SQLite file holding 100,000 grants and 1,000,000 events.
//!
//! Run: `cargo bench -p imipsec-policy`. Plain `std::time` loops, one
//! thread; figures go to stdout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use imipsec_policy::{
    DelegationStore, EventStateStore, EventUpdate, Limits, Method, SqliteStore, StateDecision,
    StoreOptions, Timestamp,
};

const GRANTS: usize = 100_000;
const EVENTS: usize = 1_000_000;
const SCOPES: usize = 10;
const BATCH: usize = 10_000;
const LOOKUPS: usize = 300_000;
const DECISIONS: usize = 30_000;

/// CPU time this thread has used and time it waited for a CPU (Linux
/// `schedstat`), to report rates per core on a machine shared with other
/// work. `None` elsewhere.
fn cpu_seconds() -> Option<(f64, f64)> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut fields = text.split_whitespace();
    let running: f64 = fields.next()?.parse().ok()?;
    let waiting: f64 = fields.next()?.parse().ok()?;
    Some((running / 1e9, waiting / 1e9))
}

fn since(start: Option<(f64, f64)>) -> Option<(f64, f64)> {
    let (running, waiting) = start?;
    let (now_running, now_waiting) = cpu_seconds()?;
    Some((now_running - running, now_waiting - waiting))
}

/// Prints a rate by wall clock and by CPU time of this thread.
fn report(what: &str, count: usize, wall: f64, cpu: Option<(f64, f64)>) {
    let per_cpu = cpu.map_or_else(String::new, |(cpu, queued)| {
        format!(
            ", {:.0}/s per CPU-second ({cpu:.2} s on CPU, {queued:.2} s waiting for a CPU)",
            count as f64 / cpu
        )
    });
    println!(
        "{what}: {count} in {wall:.2} s wall = {:.0}/s{per_cpu}",
        count as f64 / wall
    );
}

/// Deterministic pseudo-random numbers (xorshift64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn update(uid: String, sequence: i64, dtstamp: i64) -> EventUpdate {
    EventUpdate {
        uid,
        recurrence_id: None,
        organizer: Some("mailto:organizer@example.com".into()),
        actor: "organizer@example.com".into(),
        actor_is_organizer: true,
        sequence,
        dtstamp: Timestamp::from_unix_seconds(dtstamp),
        attendees: vec!["a@example.com".into(), "b@example.com".into()],
        signed: true,
        method: Method::Request,
    }
}

fn scope(n: usize) -> String {
    format!("user{}@example.com", n % SCOPES)
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy-bench.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let options = StoreOptions {
        limits: Limits {
            updates_per_message: BATCH,
            ..Limits::default()
        },
        ..StoreOptions::default()
    };
    let store = SqliteStore::open(&path, &options).unwrap();

    // Populate: grants through one bulk import, events in batches of
    // 10,000 components per transaction.
    let started = Instant::now();
    let mut json = String::from(r#"{"format":"imipsec-delegations","version":1,"grants":["#);
    for n in 0..GRANTS {
        if n > 0 {
            json.push(',');
        }
        let methods = if n % 3 == 0 {
            r#","methods":["REQUEST","CANCEL"]"#
        } else {
            ""
        };
        write!(
            json,
            r#"{{"principal":"p{}@example.com","delegate":"d{n}@example.com","not_before":"2020-01-01T00:00:00Z","until":"2030-01-01T00:00:00Z"{methods}}}"#,
            n / 4
        )
        .unwrap();
    }
    json.push_str("]}");
    let imported = store
        .import_json(&json, "bench", Timestamp::from_unix_seconds(1_700_000_000))
        .unwrap();
    assert_eq!(imported, GRANTS);
    let grants_done = started.elapsed();
    for batch in 0..EVENTS / BATCH {
        let s = scope(batch);
        let updates: Vec<_> = (batch * BATCH..(batch + 1) * BATCH)
            .map(|n| update(format!("event-{n}"), 0, 1_000))
            .collect();
        let decision = store
            .decide_and_record(&s, &updates, Timestamp::from_unix_seconds(1))
            .unwrap();
        assert_eq!(decision, StateDecision::Recorded);
    }
    let populated = started.elapsed();
    println!(
        "populate: {GRANTS} grants in {:.1} s, {EVENTS} events in {:.1} s",
        grants_done.as_secs_f64(),
        (populated - grants_done).as_secs_f64()
    );

    // Lookups: half existing pairs, half unknown delegates.
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let at = Timestamp::from_unix_seconds(1_750_000_000);
    let pairs: Vec<(String, String)> = (0..LOOKUPS)
        .map(|i| {
            let n = rng.below(GRANTS);
            let delegate = if i % 2 == 0 { n } else { n + GRANTS };
            (
                format!("mailto:p{}@example.com", n / 4),
                format!("d{delegate}@example.com"),
            )
        })
        .collect();
    let started = Instant::now();
    let cpu = cpu_seconds();
    let mut allowed = 0usize;
    for (principal, delegate) in &pairs {
        allowed += usize::from(
            store
                .is_allowed(principal, delegate, Method::Request, at)
                .unwrap(),
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = since(cpu);
    assert_eq!(allowed, LOOKUPS / 2);
    report("is_allowed lookups", LOOKUPS, elapsed, cpu);

    // Decide+record, one component and one transaction each: half are
    // updates of existing events (SEQUENCE 1), half new events.
    let work: Vec<(String, EventUpdate)> = (0..DECISIONS)
        .map(|i| {
            if i % 2 == 0 {
                let n = rng.below(EVENTS);
                (
                    scope(n / BATCH),
                    update(format!("event-{n}"), 1 + i as i64, 2_000),
                )
            } else {
                (scope(i), update(format!("new-{i}"), 0, 2_000))
            }
        })
        .collect();
    let started = Instant::now();
    let cpu = cpu_seconds();
    let mut recorded = 0usize;
    for (s, u) in &work {
        let decision = store
            .decide_and_record(s, std::slice::from_ref(u), Timestamp::from_unix_seconds(2))
            .unwrap();
        recorded += usize::from(decision == StateDecision::Recorded);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = since(cpu);
    assert_eq!(recorded, DECISIONS);
    report("decide_and_record (recorded)", DECISIONS, elapsed, cpu);

    // Read-only evaluate of replays (all stale).
    let started = Instant::now();
    let cpu = cpu_seconds();
    let mut stale = 0usize;
    for (s, u) in work.iter().take(DECISIONS / 2) {
        stale += store.evaluate(s, std::slice::from_ref(u)).unwrap().len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = since(cpu);
    assert_eq!(stale, DECISIONS / 2);
    report("evaluate (replays, read-only)", DECISIONS / 2, elapsed, cpu);
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!("database file: {:.0} MiB", bytes as f64 / (1024.0 * 1024.0));
}
