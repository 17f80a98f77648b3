//! The gate's logs as an operator's tools see them (issue #14 point 9): no ANSI colour when
//! stderr is not a terminal, JSON lines with real arrays and plain values, and a final
//! "stopped" line after SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Runs `imipsec gate` (milter on an ephemeral loopback port) with stderr on a pipe, waits
/// for its "gate listening" line, sends SIGTERM and returns (exit status, stderr lines).
fn gate_run(extra: &[&str]) -> (i32, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("imipsec.toml");
    std::fs::write(
        &config,
        format!(
            "[trust]\nanchors = [{:?}]\n[store]\npath = {:?}\n[gate]\nauthserv_id = \"mx.example.org\"\n[gate.milter]\nlisten = \"127.0.0.1:0\"\n",
            root_ca().display().to_string(),
            dir.path().join("policy.sqlite").display().to_string()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_imipsec"))
        .args(["gate", "--config", config.to_str().unwrap()])
        .args(extra)
        .env_remove("IMIPSEC_STORE")
        .env_remove("IMIPSEC_CONFIG")
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = Vec::new();
    let started = Instant::now();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("gate exited before listening: {lines:?}");
        }
        let listening = line.contains("gate listening");
        lines.push(line.trim_end().to_owned());
        if listening {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{lines:?}");
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    for line in stderr.lines() {
        lines.push(line.unwrap());
    }
    let status = child.wait().unwrap().code().unwrap_or(-1);
    (status, lines)
}

#[test]
fn text_logs_to_a_pipe_have_no_colour_plain_values_and_a_stopped_line() {
    let (status, lines) = gate_run(&[]);
    assert_eq!(status, 0, "{lines:?}");
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "ANSI escape in {line:?}");
        assert!(!line.contains("Some("), "debug formatting in {line:?}");
    }
    let listening = lines.iter().find(|l| l.contains("gate listening")).unwrap();
    assert!(listening.contains("milter=127.0.0.1:0"), "{listening}");
    assert!(listening.contains("lmtp=none"), "{listening}");
    assert!(lines.last().unwrap().contains("gate stopped"), "{lines:?}");
}

#[test]
fn json_logs_are_json_lines_with_plain_values_and_a_stopped_line() {
    let (status, lines) = gate_run(&["--log-json"]);
    assert_eq!(status, 0, "{lines:?}");
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let listening = parsed
        .iter()
        .find(|line| line["fields"]["message"] == "gate listening")
        .unwrap();
    assert_eq!(listening["fields"]["milter"], "127.0.0.1:0");
    assert_eq!(
        parsed.last().unwrap()["fields"]["message"],
        "gate stopped",
        "{lines:?}"
    );
}
