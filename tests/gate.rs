//! `imipsec gate`: the command refuses configurations that cannot run safely before it
//! listens on anything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::{check_config, imipsec, root_ca};

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

/// A configuration file in a fresh folder: `[trust]` with the test root, a store path in
/// the folder, and `gate` appended.
fn config_with(gate: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("imipsec.toml");
    std::fs::write(
        &config,
        format!(
            "[trust]\nanchors = [{:?}]\n[store]\npath = \"policy.db\"\n{gate}",
            root_ca()
        ),
    )
    .unwrap();
    (dir, config)
}

/// Issue #14 item 6: there was no configuration check. `--check-config` validates and exits:
/// 0 with one line on stdout, binding nothing (the port stays free) and creating no store.
#[test]
fn check_config_accepts_a_usable_configuration_without_listening() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = port.local_addr().unwrap();
    drop(port);
    let (dir, config) = config_with(&format!(
        "[gate]\nauthserv_id = \"mx.gate.test\"\n[gate.milter]\nlisten = \"{address}\"\n"
    ));
    let run = check_config(&config);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("configuration OK"), "{stdout}");
    assert!(!dir.path().join("policy.db").exists(), "created the store");
    // nothing was bound: the address is still free
    assert!(std::net::TcpListener::bind(address).is_ok());
}

/// `--check-config` refuses with one line and exit 2: no authserv_id (issue #14: it silently
/// defaulted to `localhost`), a milter or LMTP proxy on a non-loopback address without
/// allow_remote_clients, missing anchors, a garbled key.
#[test]
fn check_config_refuses_with_one_line_and_exit_2() {
    let cases = [
        (
            "[gate]\n[gate.milter]\nlisten = \"127.0.0.1:8891\"\n",
            "authserv_id is required",
        ),
        (
            "[gate]\nauthserv_id = \"mx.gate.test\"\n[gate.milter]\nlisten = \"0.0.0.0:8891\"\n",
            "allow_remote_clients",
        ),
        (
            "[gate]\nauthserv_id = \"mx.gate.test\"\n[gate.lmtp]\nlisten = \"192.0.2.1:2424\"\nbackend = \"127.0.0.1:24\"\n",
            "allow_remote_clients",
        ),
        (
            "[gate]\nauthserv_id = \"mx.gate.test\"\non_reject = \"log\"\n[gate.milter]\nlisten = \"127.0.0.1:8891\"\n",
            "unknown variant `log`",
        ),
    ];
    for (gate, expected) in cases {
        let (_dir, config) = config_with(gate);
        let run = check_config(&config);
        assert_eq!(
            run.status,
            2,
            "{gate}: {}",
            String::from_utf8_lossy(&run.stdout)
        );
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains(expected), "{gate}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    // control: the same with allow_remote_clients passes the check
    let (_dir, config) = config_with(
        "[gate]\nauthserv_id = \"mx.gate.test\"\nallow_remote_clients = true\n[gate.milter]\nlisten = \"0.0.0.0:8891\"\n",
    );
    let run = check_config(&config);
    assert_eq!(run.status, 0, "{}", run.stderr);
}

/// The LMTP proxy refuses after the queue, so `reject` there makes the MTA bounce refused
/// mail to its envelope sender, which a forger chooses (backscatter): `--check-config` says
/// so on stderr and still passes; with `quarantine` it says nothing. The same for
/// `on_oversize = "reject"`.
#[test]
fn check_config_warns_about_bounces_of_refusals_after_the_queue() {
    let lmtp = "[gate.lmtp]\nlisten = \"127.0.0.1:2424\"\nbackend = \"127.0.0.1:24\"\n\
                quarantine_address = \"quarantine@example.org\"\n";
    for (on_reject, warned) in [("reject", true), ("quarantine", false)] {
        let (_dir, config) = config_with(&format!(
            "[gate]\nauthserv_id = \"mx.gate.test\"\non_reject = \"{on_reject}\"\n{lmtp}"
        ));
        let run = check_config(&config);
        assert_eq!(run.status, 0, "{on_reject}: {}", run.stderr);
        assert_eq!(String::from_utf8_lossy(&run.stdout).lines().count(), 1);
        assert_eq!(
            run.stderr.contains("backscatter"),
            warned,
            "{on_reject}: {}",
            run.stderr
        );
    }
    // Oversize mail refused after the queue bounces too; the advice is the MTA's size limit.
    let (_dir, config) = config_with(&format!(
        "[gate]\nauthserv_id = \"mx.gate.test\"\non_reject = \"quarantine\"\n\
         on_oversize = \"reject\"\n{lmtp}"
    ));
    let run = check_config(&config);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("on_oversize") && run.stderr.contains("message_size_limit"),
        "{}",
        run.stderr
    );
}

/// The running gate refuses a non-loopback listener and a missing authserv_id the same way,
/// before it listens.
#[test]
fn gate_refuses_remote_listener_and_missing_authserv_id_at_startup() {
    for gate in [
        "[gate]\nauthserv_id = \"mx.gate.test\"\n[gate.milter]\nlisten = \"0.0.0.0:0\"\n",
        "[gate]\n[gate.milter]\nlisten = \"127.0.0.1:0\"\n",
    ] {
        let (_dir, config) = config_with(gate);
        let run = imipsec(["gate", "--config", config.to_str().unwrap()], b"");
        assert_eq!(run.status, 2, "{}", run.stderr);
        assert!(
            run.stderr.contains("allow_remote_clients")
                || run.stderr.contains("authserv_id is required"),
            "{}",
            run.stderr
        );
    }
}
