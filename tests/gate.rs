//! `imipsec gate`: the command refuses configurations that cannot run safely before it
//! listens on anything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::{imipsec, root_ca};

/// Issue #11 item 10: without a store the gate used to skip organizer pinning and replay
/// detection without a word. It now refuses to start, naming the store and the `danger_` key.
#[test]
fn gate_without_event_state_store_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("imipsec.toml");
    std::fs::write(
        &config,
        format!(
            "[trust]\nanchors = [{:?}]\n[gate]\nauthserv_id = \"mx.gate.test\"\n\
             [gate.milter]\nlisten = \"127.0.0.1:0\"\n",
            root_ca()
        ),
    )
    .unwrap();
    let run = imipsec(["gate", "--config", config.to_str().unwrap()], b"");
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("danger_no_event_state") && run.stderr.contains("[store]"),
        "{}",
        run.stderr
    );
}
