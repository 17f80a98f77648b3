//! End-to-end tests of `imipsec delegate`: every subcommand through the built binary, exit
//! statuses (0 done, 2 error) and clear messages on bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn imipsec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imipsec"))
        .args(args)
        .env_remove("IMIPSEC_STORE")
        .env_remove("IMIPSEC_CONFIG")
        .env("USER", "tester")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let output = imipsec(args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs a command that must fail with exit status 2 and returns its stderr.
fn fails(args: &[&str]) -> String {
    let output = imipsec(args);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.trim().is_empty(), "{args:?}: no message on stderr");
    stderr
}

fn store_in(dir: &Path) -> String {
    dir.join("policy.db").to_str().unwrap().to_string()
}

#[test]
fn grant_list_revoke_history_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let out = ok(&[
        "delegate",
        "grant",
        "--store",
        &store,
        "--principal",
        "boss@example.org",
        "--delegate",
        "pa@example.org",
        "--methods",
        "REQUEST,CANCEL",
        "--from",
        "2026-01-01T00:00:00Z",
        "--until",
        "2027-01-01T00:00:00Z",
        "--note",
        "holiday cover",
    ]);
    assert!(out.contains("granted #1"), "{out}");
    ok(&[
        "delegate",
        "grant",
        "--store",
        &store,
        "--principal",
        "boss@example.org",
        "--delegate",
        "deputy@example.org",
        "--methods",
        "organizer",
        "--from",
        "2026-01-01T00:00:00Z",
    ]);

    let table = ok(&[
        "delegate",
        "list",
        "--store",
        &store,
        "--at",
        "2026-06-01T00:00:00Z",
    ]);
    assert!(
        table.contains("pa@example.org") && table.contains("REQUEST,CANCEL"),
        "{table}"
    );
    assert!(
        table.contains("organizer methods") && table.contains("in force"),
        "{table}"
    );

    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "delegate",
        "list",
        "--store",
        &store,
        "--json",
        "--principal",
        "boss@example.org",
        "--at",
        "2026-06-01T00:00:00Z",
    ]))
    .unwrap();
    let grants = json.as_array().unwrap();
    assert_eq!(grants.len(), 2);
    assert_eq!(
        grants[0]["methods"],
        serde_json::json!(["REQUEST", "CANCEL"])
    );
    assert_eq!(grants[0]["note"], "holiday cover");
    assert_eq!(grants[0]["recorded_by"], "tester");
    assert_eq!(grants[1]["side"], "organizer");

    // Outside its window the first grant is not listed as in force.
    let later: serde_json::Value = serde_json::from_str(&ok(&[
        "delegate",
        "list",
        "--store",
        &store,
        "--json",
        "--at",
        "2027-06-01T00:00:00Z",
    ]))
    .unwrap();
    assert_eq!(later.as_array().unwrap().len(), 1);

    let out = ok(&[
        "delegate",
        "revoke",
        "--store",
        &store,
        "--id",
        "1",
        "--note",
        "back from holiday",
        "--at",
        "2026-07-01T00:00:00Z",
    ]);
    assert!(out.contains("revoked #1"), "{out}");
    let out = ok(&[
        "delegate",
        "revoke",
        "--store",
        &store,
        "--principal",
        "boss@example.org",
        "--delegate",
        "deputy@example.org",
        "--at",
        "2026-07-01T00:00:00Z",
    ]);
    assert!(out.contains("revoked 1 grant"), "{out}");
    let after: serde_json::Value = serde_json::from_str(&ok(&[
        "delegate",
        "list",
        "--store",
        &store,
        "--json",
        "--at",
        "2026-08-01T00:00:00Z",
    ]))
    .unwrap();
    assert!(after.as_array().unwrap().is_empty());
    let all: serde_json::Value = serde_json::from_str(&ok(&[
        "delegate", "list", "--store", &store, "--json", "--all",
    ]))
    .unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(all[0]["revoke_reason"], "back from holiday");

    let history: serde_json::Value = serde_json::from_str(&ok(&[
        "delegate",
        "history",
        "--store",
        &store,
        "--principal",
        "boss@example.org",
        "--json",
    ]))
    .unwrap();
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["granted", "granted", "revoked", "revoked"]);
    let table = ok(&[
        "delegate",
        "history",
        "--store",
        &store,
        "--principal",
        "boss@example.org",
    ]);
    assert!(table.contains("back from holiday"), "{table}");
}

#[test]
fn export_then_import_into_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    ok(&[
        "delegate",
        "grant",
        "--store",
        &store,
        "--principal",
        "a@example.org",
        "--delegate",
        "b@example.org",
    ]);
    let export = dir.path().join("export.json");
    ok(&[
        "delegate",
        "export",
        "--store",
        &store,
        export.to_str().unwrap(),
    ]);
    let stdout = ok(&["delegate", "export", "--store", &store]);
    assert_eq!(
        stdout.trim(),
        std::fs::read_to_string(&export).unwrap().trim()
    );
    let second = dir.path().join("second.db");
    let out = ok(&[
        "delegate",
        "import",
        "--store",
        second.to_str().unwrap(),
        export.to_str().unwrap(),
    ]);
    assert!(out.contains("imported 1 grant"), "{out}");
    let listed: serde_json::Value = serde_json::from_str(&ok(&[
        "delegate",
        "list",
        "--store",
        second.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    assert_eq!(listed[0]["delegate"], "b@example.org");
}

#[test]
fn the_store_can_come_from_the_environment_or_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let status = Command::new(env!("CARGO_BIN_EXE_imipsec"))
        .args([
            "delegate",
            "grant",
            "--principal",
            "a@example.org",
            "--delegate",
            "b@example.org",
        ])
        .env("IMIPSEC_STORE", &store)
        .env_remove("IMIPSEC_CONFIG")
        .status()
        .unwrap();
    assert!(status.success());
    let config = dir.path().join("imipsec.toml");
    std::fs::write(&config, "[store]\npath = \"policy.db\"\n").unwrap();
    let out = ok(&[
        "delegate",
        "list",
        "--config",
        config.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.contains("b@example.org"), "{out}");
}

#[test]
fn errors_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    ok(&[
        "delegate",
        "grant",
        "--store",
        &store,
        "--principal",
        "a@example.org",
        "--delegate",
        "b@example.org",
    ]);

    let message = fails(&["delegate", "list"]);
    assert!(message.contains("no policy store"), "{message}");

    let missing = dir.path().join("missing.db");
    let message = fails(&["delegate", "list", "--store", missing.to_str().unwrap()]);
    // Issue #14: one line saying how to create it (was SQLite's text three times).
    assert!(
        message.contains("does not exist; create it with `imipsec store init --store"),
        "{message}"
    );
    assert_eq!(message.trim_end().lines().count(), 1, "{message}");
    assert!(!missing.exists(), "list must not create a store");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a_u8; 8192]).unwrap();
    let message = fails(&["delegate", "list", "--store", garbage.to_str().unwrap()]);
    assert!(message.contains("garbage.db"), "{message}");

    let folder = dir.path().to_str().unwrap();
    fails(&[
        "delegate",
        "history",
        "--store",
        folder,
        "--principal",
        "a@example.org",
    ]);

    let message = fails(&[
        "delegate",
        "grant",
        "--store",
        &store,
        "--principal",
        "a@example.org",
        "--delegate",
        "b@example.org",
        "--methods",
        "INVITE",
    ]);
    assert!(message.contains("INVITE"), "{message}");

    let message = fails(&[
        "delegate",
        "grant",
        "--store",
        &store,
        "--principal",
        "not-an-address",
        "--delegate",
        "b@example.org",
    ]);
    assert!(message.contains("address"), "{message}");

    let message = fails(&["delegate", "revoke", "--store", &store, "--id", "99"]);
    assert!(message.contains("no grant with id 99"), "{message}");

    let message = fails(&[
        "delegate",
        "import",
        "--store",
        &store,
        dir.path().join("nope.json").to_str().unwrap(),
    ]);
    assert!(message.contains("cannot read import file"), "{message}");

    let bad_json = dir.path().join("bad.json");
    std::fs::write(&bad_json, "{ this is not an export").unwrap();
    fails(&[
        "delegate",
        "import",
        "--store",
        &store,
        bad_json.to_str().unwrap(),
    ]);

    let message = fails(&[
        "delegate",
        "grant",
        "--store",
        &store,
        "--principal",
        "a@example.org",
        "--delegate",
        "b@example.org",
        "--until",
        "next week",
    ]);
    assert!(message.contains("RFC 3339"), "{message}");

    let bad_config = dir.path().join("bad.toml");
    std::fs::write(&bad_config, "[store]\npaht = 'x.db'\n").unwrap();
    let message = fails(&["delegate", "list", "--config", bad_config.to_str().unwrap()]);
    assert!(message.contains("invalid configuration"), "{message}");
}

#[test]
fn help_documents_examples_and_exit_statuses() {
    for command in ["grant", "revoke", "list", "history", "import", "export"] {
        let help = ok(&["delegate", command, "--help"]);
        assert!(help.contains("Examples:"), "{command}: {help}");
        assert!(help.contains("Exit status:"), "{command}: {help}");
    }
}
