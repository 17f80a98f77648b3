//! End-to-end tests of `imipsec audit` through the built binary: the bundled sample mailbox
//! (testdata/sample-mailbox, see its generate.sh), the JSON Lines / CSV / HTML reports, and
//! bad input (missing paths, unreadable store, garbage, an empty mbox, a message beyond the
//! size limit), each with its exit status (0 the audit ran, 2 it could not) and message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The evaluation time every test pins (certs/README.md).
const AT: &str = "2026-06-01T00:00:00Z";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn path(relative: &str) -> String {
    root().join(relative).to_str().unwrap().to_string()
}

fn imipsec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imipsec"))
        .args(args)
        .env_remove("IMIPSEC_STORE")
        .env_remove("IMIPSEC_CONFIG")
        .output()
        .unwrap()
}

/// `audit PATHS --trust root --crl crl --at AT EXTRA...`
fn audit(paths: &[&str], extra: &[&str]) -> Output {
    let trust = path("certs/root.cert.pem");
    let crl = path("certs/intermediate.crl.pem");
    let mut args = vec!["audit"];
    args.extend_from_slice(paths);
    args.extend_from_slice(&["--trust", &trust, "--crl", &crl, "--at", AT]);
    args.extend_from_slice(extra);
    imipsec(&args)
}

fn succeeded(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn failed(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert!(stderr.contains("error"), "no message: {stderr:?}");
    stderr
}

fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn codes(row: &serde_json::Value) -> Vec<String> {
    row["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reason| reason["code"].as_str().unwrap().to_string())
        .collect()
}

/// The sample mailbox's Message-ID prefixes name what each message is (generate.sh).
#[test]
fn sample_mailbox_verdicts_match_what_each_message_is() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("out.jsonl");
    let csv = dir.path().join("out.csv");
    let html = dir.path().join("out.html");
    let output = audit(
        &[&path("testdata/sample-mailbox")],
        &[
            "--jsonl",
            jsonl.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    let stdout = succeeded(&output);
    assert!(stdout.contains("audited 36 messages"), "{stdout}");
    assert!(stdout.contains("messages/s"), "{stdout}");
    for heading in ["verdict", "reason", "signer", "method"] {
        assert!(
            stdout.lines().any(|line| line.starts_with(heading)),
            "{heading}: {stdout}"
        );
    }

    // Store-less: the summary says the event state was not checked (issue #11 item 10).
    assert!(
        stdout.contains("event-state checks were not done"),
        "{stdout}"
    );

    let rows = read_jsonl(&jsonl);
    assert_eq!(rows.len(), 36);
    for row in &rows {
        let id = row["message_id"].as_str().unwrap();
        let codes = codes(row);
        let expected: Option<&str> = match id.split('-').next().unwrap() {
            "req" | "reply" => None,
            "forged" => Some("signer-not-correlated"),
            "cancel" => Some("role-not-authorized"),
            "unsigned" => Some("unsigned"),
            "beside" => Some("unprotected-calendar"),
            "tampered" => Some("bad-signature"),
            "revoked" => Some("certificate-revoked"),
            other => panic!("unexpected message {other}"),
        };
        match expected {
            None => assert_eq!(row["verdict"], "accept", "{id}: {codes:?}"),
            Some(code) => {
                assert_eq!(row["verdict"], "reject", "{id}");
                assert_eq!(codes.first().map(String::as_str), Some(code), "{id}");
            }
        }
        assert!(row["source"].as_str().unwrap().contains("sample-mailbox"));
        assert!(row["date"].as_str().unwrap().starts_with("2026-0"));
        assert!(row["from"].as_str().unwrap().ends_with("@example.com"));
        assert!(row["layers"].is_array() && row["itip"].is_array(), "{row}");
        assert_eq!(row["event_state"], "not-checked", "{id}");
    }
    // mbox rows carry the byte offset of their separator.
    assert!(
        rows.iter()
            .any(|row| row["source"].as_str().unwrap().ends_with("inbox.mbox:0"))
    );

    let csv_text = std::fs::read_to_string(&csv).unwrap();
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    assert_eq!(reader.headers().unwrap().get(4), Some("verdict"));
    assert_eq!(reader.headers().unwrap().get(10), Some("event_state"));
    assert_eq!(reader.records().count(), 36);

    let html_text = std::fs::read_to_string(&html).unwrap();
    assert_eq!(html_text.matches("<tr class=").count(), 36);
    assert!(html_text.contains("<svg id=\"reason-chart\""));
}

#[test]
fn a_maildir_and_a_single_file_can_be_audited() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("out.jsonl");
    let maildir = path("testdata/sample-mailbox/archive");
    let output = audit(&[&maildir], &["--jsonl", jsonl.to_str().unwrap()]);
    assert!(succeeded(&output).contains("audited 6 messages"));
    assert!(
        read_jsonl(&jsonl)
            .iter()
            .all(|row| row["source"].as_str().unwrap().contains("/archive/"))
    );

    let eml = dir.path().join("one.eml");
    std::fs::write(
        &eml,
        std::fs::read(
            std::fs::read_dir(root().join("testdata/sample-mailbox/archive/cur"))
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path(),
        )
        .unwrap(),
    )
    .unwrap();
    let output = audit(&[eml.to_str().unwrap()], &[]);
    assert!(succeeded(&output).contains("audited 1 messages"));
}

#[test]
fn an_empty_mbox_audits_zero_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("empty.mbox");
    std::fs::write(&mbox, "").unwrap();
    let html = dir.path().join("r.html");
    let output = audit(
        &[mbox.to_str().unwrap()],
        &["--html", html.to_str().unwrap()],
    );
    assert!(succeeded(&output).contains("audited 0 messages"));
    assert!(
        std::fs::read_to_string(&html)
            .unwrap()
            .contains("No message has a usable Date header")
    );
}

#[test]
fn garbage_is_a_rejected_message_not_a_failed_audit() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.eml");
    let bytes: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&garbage, bytes).unwrap();
    let jsonl = dir.path().join("out.jsonl");
    let output = audit(
        &[garbage.to_str().unwrap()],
        &["--jsonl", jsonl.to_str().unwrap()],
    );
    succeeded(&output);
    let rows = read_jsonl(&jsonl);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["verdict"], "reject");
}

#[test]
fn a_message_beyond_the_limit_is_reported_and_the_audit_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let sample = std::fs::read(root().join("testdata/sample-mailbox/inbox.mbox")).unwrap();
    // One huge message between two signed ones.
    let mut mbox = Vec::new();
    mbox.extend_from_slice(b"From big@example.com Mon Jun  1 00:00:00 2026\nSubject: big\n\n");
    for _ in 0..20_000 {
        mbox.extend_from_slice(b"0123456789012345678901234567890123456789012345678901234567\n");
    }
    mbox.extend_from_slice(b"\n");
    mbox.extend_from_slice(&sample);
    let path_mbox = dir.path().join("big.mbox");
    std::fs::write(&path_mbox, &mbox).unwrap();
    let config = dir.path().join("imipsec.toml");
    std::fs::write(&config, "[limits]\nmessage_bytes = 200000\n").unwrap();
    let jsonl = dir.path().join("out.jsonl");
    let output = audit(
        &[path_mbox.to_str().unwrap()],
        &[
            "--config",
            config.to_str().unwrap(),
            "--jsonl",
            jsonl.to_str().unwrap(),
        ],
    );
    let stdout = succeeded(&output);
    assert!(stdout.contains("audited 31 messages"), "{stdout}");
    let rows = read_jsonl(&jsonl);
    assert_eq!(codes(&rows[0]), ["limit-exceeded"]);
    assert!(rows[0]["source"].as_str().unwrap().ends_with("big.mbox:0"));
    assert_eq!(rows[1]["verdict"], "accept", "{}", rows[1]);
}

#[test]
fn bad_invocations_exit_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let sample = path("testdata/sample-mailbox");

    let message = failed(&audit(&[dir.path().join("nope").to_str().unwrap()], &[]));
    assert!(message.contains("nope"), "{message}");

    // A store that cannot be opened: a folder, and a file that is not a database.
    failed(&audit(
        &[&sample],
        &["--store", dir.path().to_str().unwrap()],
    ));
    let garbage_store = dir.path().join("garbage.db");
    std::fs::write(&garbage_store, vec![0x42_u8; 8192]).unwrap();
    failed(&audit(
        &[&sample],
        &["--store", garbage_store.to_str().unwrap()],
    ));

    let message = failed(&imipsec(&["audit", &sample]));
    assert!(message.contains("trust"), "{message}");

    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[limits]\nmesage_bytes = 1\n").unwrap();
    let message = failed(&audit(&[&sample], &["--config", config.to_str().unwrap()]));
    assert!(message.contains("invalid configuration"), "{message}");

    let message = failed(&audit(
        &[&sample],
        &[
            "--html",
            dir.path().join("no/such/dir/r.html").to_str().unwrap(),
        ],
    ));
    assert!(message.contains("cannot create report"), "{message}");

    // Usage errors are exit 2 too (clap).
    assert_eq!(imipsec(&["audit"]).status.code(), Some(2));
    assert_eq!(
        imipsec(&["audit", &sample, "--at", "tomorrow"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn help_documents_examples_and_exit_statuses() {
    let output = imipsec(&["audit", "--help"]);
    let help = succeeded(&output);
    assert!(
        help.contains("Examples:") && help.contains("Exit status:"),
        "{help}"
    );
    let output = imipsec(&["--help"]);
    assert!(succeeded(&output).contains("Exit status:"));
}

#[test]
fn audit_is_read_only_unless_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("state.db");
    let store_arg = store.to_str().unwrap();
    let sample = path("testdata/sample-mailbox");
    let recipient = ["--recipient", "attendee@example.com"];

    // Without --record a missing store is an error, not created.
    let mut args = vec!["--store", store_arg];
    args.extend_from_slice(&recipient);
    failed(&audit(&[&sample], &args));
    assert!(!store.exists());

    let mut record = args.clone();
    record.push("--record");
    let stdout = succeeded(&audit(&[&sample], &record));
    assert!(stdout.contains("audited 36 messages"), "{stdout}");
    let recorded = std::fs::read(&store).unwrap();

    // A read-only audit against the recorded state sees every accepted message as a replay
    // and leaves the store as it was.
    let jsonl = dir.path().join("again.jsonl");
    let mut again = args.clone();
    again.extend_from_slice(&["--jsonl", jsonl.to_str().unwrap()]);
    succeeded(&audit(&[&sample], &again));
    let rows = read_jsonl(&jsonl);
    let replays = rows
        .iter()
        .filter(|row| codes(row).first().map(String::as_str) == Some("stale-sequence"))
        .count();
    assert_eq!(replays, 24);
    assert_eq!(std::fs::read(&store).unwrap(), recorded);
}
