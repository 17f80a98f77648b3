//! End-to-end tests of the policy store's lifecycle (issue #14 point 5): `imipsec store init`
//! creates or migrates a store on purpose; commands that only read a store refuse a missing
//! one with one line saying how to create it; commands that write keep creating it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;

fn one_line_with_init_hint(run: &Run, store: &std::path::Path) {
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "create it with `imipsec store init --store {}`",
            store.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("unable to open database file"),
        "{}",
        run.stderr
    );
    assert!(!store.exists(), "a read-only command created the store");
}

fn signed_request(uid: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let identity = pem_identity(dir.path(), "rsa2048/organizer");
    let run = sign(calendar("REQUEST", uid, 0).as_bytes(), &identity, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    run.stdout
}

// Issue #14: `verify --store new.sqlite`, `delegate list` and `export` failed with a
// triple-repeated "unable to open database file".
#[test]
fn read_only_commands_refuse_a_missing_store_with_the_init_hint() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("new.sqlite");
    let store = missing.to_str().unwrap();
    let message = signed_request("ro@example.com");
    one_line_with_init_hint(&verify(&message, &["--store", store]), &missing);
    for args in [
        vec!["delegate", "list", "--store", store],
        vec!["delegate", "export", "--store", store],
        vec![
            "delegate",
            "history",
            "--store",
            store,
            "--principal",
            "a@example.org",
        ],
    ] {
        one_line_with_init_hint(&imipsec(&args, b""), &missing);
    }
}

// Issue #14: there was no way to create an empty store on purpose.
#[test]
fn store_init_creates_an_empty_store_that_read_only_commands_then_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.db");
    let store = path.to_str().unwrap();
    let run = imipsec(["store", "init", "--store", store], b"");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stdout_text().contains("created"),
        "{}",
        run.stdout_text()
    );
    assert!(path.exists());
    let run = imipsec(["store", "init", "--store", store], b"");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stdout_text().contains("already current"),
        "{}",
        run.stdout_text()
    );

    let run = imipsec(["delegate", "list", "--store", store, "--json"], b"");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.json(), serde_json::json!([]));
    let run = verify(&signed_request("init@example.com"), &["--store", store]);
    assert_eq!(run.status, 0, "{}", run.stderr);
}

#[test]
fn store_init_refuses_what_is_not_an_imipsec_store() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a_u8; 8192]).unwrap();
    let run = imipsec(["store", "init", "--store", garbage.to_str().unwrap()], b"");
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("garbage.db"), "{}", run.stderr);
    let run = imipsec(["store", "init"], b"");
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("no policy store"), "{}", run.stderr);
}

// Commands that write keep creating the store.
#[test]
fn writing_commands_still_create_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let recorded = dir.path().join("recorded.db");
    let run = verify(
        &signed_request("rec@example.com"),
        &["--store", recorded.to_str().unwrap(), "--record"],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(recorded.exists());
    let granted = dir.path().join("granted.db");
    let run = imipsec(
        [
            "delegate",
            "grant",
            "--store",
            granted.to_str().unwrap(),
            "--principal",
            "a@example.org",
            "--delegate",
            "b@example.org",
        ],
        b"",
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(granted.exists());
}
