//! Issue #16: concurrent processes on one SQLite store must never fail spuriously.
//!
//! Before the fix, 8 processes granting 50 times each while two busy loops loaded both cores
//! lost some grants with "store is busy: lock not obtained within the busy timeout", and 16
//! processes granting at once into a store that did not exist yet failed far more often
//! (a race of creators switching the journal mode, a read transaction upgrading to a write
//! one: busy answers SQLite gives without waiting on its busy handler).
//!
//! Both runs happen under CPU load (two spinning threads), which is what made the races
//! visible; CI runs this file as part of `cargo test --workspace`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

/// Two threads spinning until dropped: the load under which the races showed.
struct BusyLoops {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl BusyLoops {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..2)
            .map(|_| {
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        BusyLoops { stop, threads }
    }
}

impl Drop for BusyLoops {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Runs `grants` `delegate grant` commands one after another on `store`; returns the
/// failures (stderr of each).
fn grant_loop(store: &Path, worker: usize, grants: usize) -> Vec<String> {
    let mut failures = Vec::new();
    for n in 0..grants {
        let output = Command::new(env!("CARGO_BIN_EXE_imipsec"))
            .args(["delegate", "grant", "--store"])
            .arg(store)
            .args([
                "--principal",
                &format!("boss{worker}@example.org"),
                "--delegate",
                &format!("pa{n}@example.org"),
                "--methods",
                "REQUEST",
            ])
            .env_remove("IMIPSEC_STORE")
            .env_remove("IMIPSEC_CONFIG")
            .env("USER", "tester")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if !output.status.success() {
            failures.push(String::from_utf8_lossy(&output.stderr).into_owned());
        }
    }
    failures
}

fn grants_in(store: &Path) -> usize {
    let output = Command::new(env!("CARGO_BIN_EXE_imipsec"))
        .args(["delegate", "export", "--store"])
        .arg(store)
        .env_remove("IMIPSEC_STORE")
        .env_remove("IMIPSEC_CONFIG")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    json["grants"].as_array().unwrap().len()
}

/// Runs `workers` processes granting `grants` times each, all at once, on `store`.
fn race(store: &Path, workers: usize, grants: usize) -> Vec<String> {
    let handles: Vec<_> = (0..workers)
        .map(|worker| {
            let store = store.to_path_buf();
            thread::spawn(move || grant_loop(&store, worker, grants))
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|handle| handle.join().unwrap())
        .collect()
}

// Issue #16: 9 of 400 grants failed with "store is busy" under load (a read transaction
// upgrading to a write one, and the WAL switch on every open, answer busy without waiting).
#[test]
fn concurrent_grants_under_cpu_load_never_fail_as_busy() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("policy.db");
    let init = Command::new(env!("CARGO_BIN_EXE_imipsec"))
        .args(["store", "init", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let _load = BusyLoops::start();
    let failures = race(&store, 8, 50);
    assert!(
        failures.is_empty(),
        "{} of 400 grants failed; first: {}",
        failures.len(),
        failures[0]
    );
    assert_eq!(grants_in(&store), 400);
}

// Issue #16: 16 processes granting into a store that does not exist yet failed 2 to 17
// times in 20 rounds (creators racing on the schema and on the journal-mode switch).
#[test]
fn racing_creators_of_a_new_store_never_fail() {
    let _load = BusyLoops::start();
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("new.db");
        let failures = race(&store, 16, 2);
        assert!(
            failures.is_empty(),
            "round {round}: {} of 32 commands failed; first: {}",
            failures.len(),
            failures[0]
        );
        assert_eq!(grants_in(&store), 32, "round {round}");
    }
}
