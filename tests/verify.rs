//! End-to-end tests of `imipsec verify`: every reason code the pipeline can produce from a
//! crafted message, every exit status, bad input, and what is (not) written to the store.
//!
//! Messages are built at test time: well-formed ones with `imipsec sign`, forged and
//! defective ones with the `openssl cms` CLI and the test PKI in `certs/` (see
//! certs/README.md; every certificate is valid at the evaluation time `common::AT`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::Path;

use common::*;
use imipsec_pipeline::policy::{
    DelegationStore, EventStateStore, GrantScope, NewGrant, SqliteStore, StoreOptions, Timestamp,
};

/// A message signed with `openssl cms` by `identity`, carrying `calendar` as a bare
/// text/calendar entity, with From `from`.
fn openssl_signed_calendar(calendar: &str, method: &str, identity: &str, from: &str) -> Vec<u8> {
    let entity = calendar_entity(calendar, method);
    with_headers(from, ORGANIZER, &openssl_sign(&entity, identity, true, &[]))
}

/// `imipsec sign` with the RSA identity of `role`, asserting success.
fn signed(dir: &Path, role: &str, calendar: &str, extra: &[&str]) -> Vec<u8> {
    let identity = pem_identity(dir, &format!("rsa2048/{role}"));
    let run = sign(calendar.as_bytes(), &identity, extra);
    assert_eq!(run.status, 0, "sign failed: {}", run.stderr);
    run.stdout
}

fn assert_rejected(run: &Run, code: &str) {
    assert_eq!(
        run.status,
        1,
        "expected reject ({code}), got status {}: {}\n{}",
        run.status,
        run.stderr,
        run.stdout_text()
    );
    let reasons = run.reasons();
    assert_eq!(
        reasons.first().map(String::as_str),
        Some(code),
        "reasons {reasons:?}, stderr: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(code),
        "stderr does not name {code}: {}",
        run.stderr
    );
}

fn assert_accepted(run: &Run) {
    assert_eq!(
        run.status,
        0,
        "expected accept, got status {}: {}\n{}",
        run.status,
        run.stderr,
        run.stdout_text()
    );
    assert_eq!(run.json()["verdict"], "accept");
}

fn open_store(path: &Path) -> SqliteStore {
    SqliteStore::open(path, &StoreOptions::default()).unwrap()
}

/// The recorded state of `uid` for the recipient, if any.
fn recorded(store: &Path, uid: &str) -> bool {
    open_store(store)
        .event(ATTENDEE, uid, None)
        .unwrap()
        .is_some()
}

// ---------------------------------------------------------------------------------------
// Accepted messages (acceptance 2)

#[test]
fn every_method_signed_by_imipsec_is_accepted_and_from_change_only_warns() {
    let dir = tempfile::tempdir().unwrap();
    for method in METHODS {
        let role = if attendee_method(method) {
            "attendee"
        } else {
            "organizer"
        };
        let extra: &[&str] = if method == "PUBLISH" {
            &["--to", "list@example.com"]
        } else {
            &[]
        };
        let message = signed(
            dir.path(),
            role,
            &calendar(method, "u1@example.com", 1),
            extra,
        );
        let run = verify(&message, &[]);
        assert_accepted(&run);
        let json = run.json();
        assert_eq!(json["itip"][0]["method"], method);
        assert_eq!(json["itip"][0]["role"], role);
        // Store-less: the event state was not checked, and the verdict says so.
        assert_eq!(run.warnings(), ["event-state-unchecked"], "{method}");
        // Forwarded: From is not the signer. Still accepted, with the warning.
        let forwarded = replace_header(&message, "From", "forwarder@example.org");
        let run = verify(&forwarded, &[]);
        assert_accepted(&run);
        assert_eq!(
            run.warnings(),
            ["from-mismatch", "event-state-unchecked"],
            "{method}"
        );
    }
}

#[test]
fn p256_identity_and_every_digest_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let identity = pem_identity(dir.path(), "p256/organizer");
    for digest in ["sha256", "sha384", "sha512"] {
        let run = sign(
            calendar("REQUEST", "p256@example.com", 0).as_bytes(),
            &identity,
            &["--digest", digest],
        );
        assert_eq!(run.status, 0, "{}", run.stderr);
        assert_accepted(&verify(&run.stdout, &[]));
    }
}

#[test]
fn human_output_is_a_short_summary() {
    let dir = tempfile::tempdir().unwrap();
    let message = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "h@example.com", 0),
        &[],
    );
    let root = root_ca();
    let run = imipsec(
        ["verify", "--at", AT, "--trust", root.to_str().unwrap()],
        &message,
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let text = run.stdout_text();
    assert!(
        text.starts_with(
            "accept: REQUEST VEVENT h@example.com from organizer organizer@example.com"
        ),
        "{text}"
    );
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn file_argument_and_dash_read_the_same_message() {
    let dir = tempfile::tempdir().unwrap();
    let message = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "f@example.com", 0),
        &[],
    );
    let path = dir.path().join("message.eml");
    std::fs::write(&path, &message).unwrap();
    assert_accepted(&verify(b"", &[path.to_str().unwrap()]));
    assert_accepted(&verify(&message, &["-"]));
}

// ---------------------------------------------------------------------------------------
// Signature and certificate reasons

#[test]
fn tampered_signed_content_is_bad_signature() {
    let dir = tempfile::tempdir().unwrap();
    let message = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "t@example.com", 0),
        &[],
    );
    let text = String::from_utf8(message).unwrap();
    assert!(text.contains("Planning meeting"));
    let tampered = text.replacen("Planning meeting", "Planning meetinG", 1);
    assert_rejected(&verify(tampered.as_bytes(), &[]), "bad-signature");
}

#[test]
fn defective_certificates_have_their_own_codes() {
    let cases = [
        ("special/untrusted", &[][..], "untrusted-certificate"),
        ("special/expired", &[][..], "certificate-expired"),
        ("special/wrong-eku", &[][..], "certificate-purpose"),
        ("special/weak-rsa1024", &[][..], "weak-algorithm"),
    ];
    for (identity, extra, code) in cases {
        let message = openssl_signed_calendar(
            &calendar("REQUEST", "c@example.com", 0),
            "REQUEST",
            identity,
            ORGANIZER,
        );
        assert_rejected(&verify(&message, extra), code);
    }
    let crl = cert("intermediate.crl.pem");
    let message = openssl_signed_calendar(
        &calendar("REQUEST", "c@example.com", 0),
        "REQUEST",
        "special/revoked",
        ORGANIZER,
    );
    assert_rejected(
        &verify(&message, &["--crl", crl.to_str().unwrap()]),
        "certificate-revoked",
    );
}

#[test]
fn sha1_signature_is_weak_algorithm() {
    let message = openssl_sign(
        &calendar_entity(&calendar("REQUEST", "sha1@example.com", 0), "REQUEST"),
        "rsa2048/organizer",
        true,
        &["-md", "sha1"],
    );
    let message = with_headers(ORGANIZER, ATTENDEE, &message);
    assert_rejected(&verify(&message, &[]), "weak-algorithm");
}

#[test]
fn undecryptable_message_is_decryption_failed_and_cbc_only_warns() {
    let dir = tempfile::tempdir().unwrap();
    let attendee_cert = cert("rsa2048/attendee.cert.pem");
    let gcm = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "e@example.com", 0),
        &["--encrypt-to", attendee_cert.to_str().unwrap()],
    );
    // Without the attendee's key.
    assert_rejected(&verify(&gcm, &[]), "decryption-failed");
    // With it: accepted, the signature inside verified.
    let attendee = pem_identity(dir.path(), "rsa2048/attendee");
    let run = verify(&gcm, &["--identity", attendee.to_str().unwrap()]);
    assert_accepted(&run);
    assert_eq!(run.warnings(), ["event-state-unchecked"]);
    let layers = run.json()["layers"].clone();
    assert_eq!(layers[0]["kind"], "encrypted");
    assert_eq!(layers[0]["authenticated"], true);
    assert_eq!(layers[1]["kind"], "signed");

    let cbc = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "e@example.com", 0),
        &[
            "--encrypt-to",
            attendee_cert.to_str().unwrap(),
            "--cipher",
            "aes256-cbc",
        ],
    );
    let run = verify(&cbc, &["--identity", attendee.to_str().unwrap()]);
    assert_accepted(&run);
    assert_eq!(
        run.warnings(),
        ["unauthenticated-encryption", "event-state-unchecked"]
    );
}

#[test]
fn pkcs12_identity_with_password_from_environment_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let attendee_cert = cert("rsa2048/attendee.cert.pem");
    let message = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "p12@example.com", 0),
        &["--encrypt-to", attendee_cert.to_str().unwrap()],
    );
    let p12 = cert("rsa2048/attendee.p12");
    let root = root_ca();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_imipsec"));
    command
        .args(["verify", "--json", "--at", AT, "--trust"])
        .arg(&root)
        .arg("--identity")
        .arg(&p12)
        .args(["--identity-password-env", "IMIPSEC_TEST_P12"])
        .env("IMIPSEC_TEST_P12", "imipsec")
        .env_remove("IMIPSEC_STORE")
        .env_remove("IMIPSEC_CONFIG");
    let path = dir.path().join("m.eml");
    std::fs::write(&path, &message).unwrap();
    let output = command.arg(&path).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---------------------------------------------------------------------------------------
// Structure reasons

#[test]
fn unsigned_calendar_is_rejected_unless_danger_allowed() {
    let message = with_headers(
        ORGANIZER,
        ATTENDEE,
        &calendar_entity(&calendar("REQUEST", "un@example.com", 0), "REQUEST"),
    );
    assert_rejected(&verify(&message, &[]), "unsigned");
    let run = verify(&message, &["--danger-allow-unsigned"]);
    assert_accepted(&run);
}

#[test]
fn calendar_outside_the_signed_region_is_unprotected_calendar() {
    // A signed text/plain part next to an unsigned calendar: the calendar must not be
    // processed, and its presence rejects the message.
    let signed_text = openssl_sign(
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nSee the invitation.\r\n",
        "rsa2048/organizer",
        true,
        &[],
    );
    let signed_text = String::from_utf8(signed_text).unwrap();
    let signed_text = signed_text
        .strip_prefix("MIME-Version: 1.0\r\n")
        .unwrap_or(&signed_text);
    let calendar = calendar("REQUEST", "smuggled@example.com", 0);
    let body = format!(
        "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n{signed_text}\r\n--outer\r\n\
         Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n{calendar}\r\n--outer--\r\n"
    );
    let message = with_headers(ORGANIZER, ATTENDEE, body.as_bytes());
    assert_rejected(&verify(&message, &[]), "unprotected-calendar");
}

#[test]
fn signed_message_without_calendar_is_no_calendar() {
    let message = openssl_sign(
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nNo calendar here.\r\n",
        "rsa2048/organizer",
        true,
        &[],
    );
    let message = with_headers(ORGANIZER, ATTENDEE, &message);
    assert_rejected(&verify(&message, &[]), "no-calendar");
}

#[test]
fn broken_mime_is_malformed_mime() {
    let message = with_headers(
        ORGANIZER,
        ATTENDEE,
        b"Content-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n",
    );
    assert_rejected(&verify(&message, &[]), "malformed-mime");
}

#[test]
fn calendar_defects_have_their_own_codes() {
    let good = calendar("REQUEST", "d@example.com", 0);
    // Not iCalendar: the closing END:VCALENDAR is missing.
    let malformed = good.replace("END:VCALENDAR\r\n", "");
    // REQUEST without DTSTART (RFC 5546 section 3.2.2: DTSTART is required).
    let restricted = good.replace("DTSTART:20260615T100000Z\r\n", "");
    let cases = [
        (malformed.as_str(), "REQUEST", "malformed-icalendar"),
        (restricted.as_str(), "REQUEST", "restriction-violation"),
        (good.as_str(), "PUBLISH", "method-mismatch"),
    ];
    for (calendar, mime_method, code) in cases {
        let message =
            openssl_signed_calendar(calendar, mime_method, "rsa2048/organizer", ORGANIZER);
        assert_rejected(&verify(&message, &[]), code);
    }
}

// ---------------------------------------------------------------------------------------
// Correlation reasons (acceptance 2: signed by a non-organizer)

#[test]
fn forged_signers_are_rejected_with_the_right_code() {
    // Mallory signs the organizer's REQUEST: a valid signature of the wrong person.
    let request = calendar("REQUEST", "forged@example.com", 0);
    let message = openssl_signed_calendar(&request, "REQUEST", "rsa2048/stranger", ORGANIZER);
    let run = verify(&message, &[]);
    assert_rejected(&run, "signer-not-correlated");
    // The report shows the claim that failed.
    assert_eq!(run.json()["itip"][0]["actor"], ORGANIZER);
    assert_eq!(run.json()["layers"][0]["signers"][0]["emails"][0], STRANGER);
    // The attendee sends the organizer's REQUEST: a party, but not in that role.
    let message = openssl_signed_calendar(&request, "REQUEST", "rsa2048/attendee", ORGANIZER);
    assert_rejected(&verify(&message, &[]), "role-not-authorized");
    // The organizer answers in the attendee's name.
    let reply = calendar("REPLY", "forged@example.com", 0);
    let message = openssl_signed_calendar(&reply, "REPLY", "rsa2048/organizer", ATTENDEE);
    assert_rejected(&verify(&message, &[]), "role-not-authorized");
}

fn sent_by_request(uid: &str) -> String {
    calendar("REQUEST", uid, 0).replace(
        "ORGANIZER;CN=Organizer:mailto:organizer@example.com",
        "ORGANIZER;CN=Organizer;SENT-BY=\"mailto:delegate@example.com\":mailto:organizer@example.com",
    )
}

#[test]
fn sent_by_needs_a_grant_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = store_path(dir.path());
    let store_arg = store_path.to_str().unwrap().to_owned();
    let delegate = pem_identity(dir.path(), "rsa2048/delegate");
    let request = sent_by_request("sentby@example.com");

    // imipsec sign refuses without a grant.
    let run = sign(request.as_bytes(), &delegate, &[]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("sent-by-unauthorized"),
        "{}",
        run.stderr
    );

    // A message signed by the delegate anyway is rejected without a grant.
    let message = openssl_signed_calendar(&request, "REQUEST", "rsa2048/delegate", DELEGATE);
    assert_rejected(&verify(&message, &[]), "sent-by-unauthorized");

    // With a grant in force at the evaluation time, sign and verify accept.
    let store = open_store(&store_path);
    store
        .grant(&NewGrant {
            principal: ORGANIZER.into(),
            delegate: DELEGATE.into(),
            scope: GrantScope::all(),
            not_before: None,
            until: None,
            note: None,
            recorded_by: "test".into(),
            recorded_at: Timestamp::from_unix_seconds(1_780_000_000),
        })
        .unwrap();
    drop(store);
    let run = sign(request.as_bytes(), &delegate, &["--store", &store_arg]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let signed_message = run.stdout;
    assert!(String::from_utf8_lossy(&signed_message).contains("From: <delegate@example.com>"));
    let run = verify(&signed_message, &["--store", &store_arg]);
    assert_accepted(&run);
    assert_eq!(run.json()["itip"][0]["via"], DELEGATE);
    assert_eq!(run.json()["itip"][0]["actor"], ORGANIZER);
    // Without the store the same message is rejected: SENT-BY is denied by default.
    assert_rejected(&verify(&signed_message, &[]), "sent-by-unauthorized");
}

// ---------------------------------------------------------------------------------------
// Event state reasons, recording, and the store on reject or error

/// Issue #11 item 10: store-less `verify` used to accept without a word that organizer
/// pinning and replay were skipped. It now says so: `event_state` in the JSON, the
/// `event-state-unchecked` warning, and the warning in the human output.
#[test]
fn storeless_verify_says_event_state_unchecked_and_a_store_says_checked() {
    let dir = tempfile::tempdir().unwrap();
    let message = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "unchecked@example.com", 0),
        &[],
    );
    let run = verify(&message, &[]);
    assert_accepted(&run);
    assert_eq!(run.json()["event_state"], "not-checked");
    assert_eq!(run.warnings(), ["event-state-unchecked"]);

    let store_path = store_path(dir.path());
    let store_arg = store_path.to_str().unwrap().to_owned();
    let run = verify(
        &message,
        &["--store", &store_arg, "--recipient", ATTENDEE, "--record"],
    );
    assert_accepted(&run);
    assert_eq!(run.json()["event_state"], "checked");
    assert!(run.warnings().is_empty(), "{:?}", run.warnings());
}

#[test]
fn replay_is_stale_sequence_and_record_happens_only_on_accept() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = store_path(dir.path());
    let store_arg = store_path.to_str().unwrap().to_owned();
    let record = ["--store", &store_arg, "--recipient", ATTENDEE, "--record"];

    // A rejected message with --record creates no state.
    let forged = openssl_signed_calendar(
        &calendar("REQUEST", "state@example.com", 1),
        "REQUEST",
        "rsa2048/stranger",
        ORGANIZER,
    );
    assert_rejected(&verify(&forged, &record), "signer-not-correlated");
    assert!(!recorded(&store_path, "state@example.com"));

    let first = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "state@example.com", 1),
        &[],
    );
    let run = verify(&first, &record);
    assert_accepted(&run);
    assert!(recorded(&store_path, "state@example.com"));

    // The same message again is a replay.
    assert_rejected(&verify(&first, &record), "stale-sequence");
    // An older SEQUENCE is stale too, checked read-only (no --record) as well.
    let older = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "state@example.com", 0),
        &[],
    );
    assert_rejected(
        &verify(&older, &["--store", &store_arg, "--recipient", ATTENDEE]),
        "stale-sequence",
    );
    // A newer one is accepted.
    let newer = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "state@example.com", 2),
        &[],
    );
    assert_accepted(&verify(&newer, &record));
    let state = open_store(&store_path)
        .event(ATTENDEE, "state@example.com", None)
        .unwrap()
        .unwrap();
    assert_eq!(state.sequence, Some(2));
}

#[test]
fn another_organizer_for_a_recorded_uid_is_organizer_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = store_path(dir.path());
    let store_arg = store_path.to_str().unwrap().to_owned();
    let record = ["--store", &store_arg, "--recipient", ATTENDEE, "--record"];
    let first = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "pin@example.com", 0),
        &[],
    );
    assert_accepted(&verify(&first, &record));

    // Mallory, signing as herself and naming herself ORGANIZER, cancels Alice's meeting.
    let hijack = calendar("CANCEL", "pin@example.com", 5).replace(
        "ORGANIZER;CN=Organizer:mailto:organizer@example.com",
        "ORGANIZER;CN=Mallory:mailto:mallory@example.net",
    );
    let message = openssl_signed_calendar(&hijack, "CANCEL", "rsa2048/stranger", STRANGER);
    assert_rejected(&verify(&message, &record), "organizer-mismatch");
    let state = open_store(&store_path)
        .event(ATTENDEE, "pin@example.com", None)
        .unwrap()
        .unwrap();
    assert_eq!(state.organizer.as_deref(), Some(ORGANIZER));
}

#[test]
fn unsigned_update_after_signed_one_is_a_downgrade_even_with_danger() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = store_path(dir.path());
    let store_arg = store_path.to_str().unwrap().to_owned();
    let record = [
        "--store",
        &store_arg,
        "--recipient",
        ATTENDEE,
        "--record",
        "--danger-allow-unsigned",
    ];
    let first = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "down@example.com", 0),
        &[],
    );
    assert_accepted(&verify(&first, &record));
    let unsigned = with_headers(
        ORGANIZER,
        ATTENDEE,
        &calendar_entity(&calendar("REQUEST", "down@example.com", 1), "REQUEST"),
    );
    assert_rejected(&verify(&unsigned, &record), "unsigned");
    let state = open_store(&store_path)
        .event(ATTENDEE, "down@example.com", None)
        .unwrap()
        .unwrap();
    assert_eq!(state.sequence, Some(0), "the downgrade was recorded");
}

// ---------------------------------------------------------------------------------------
// Limits and bad input

#[test]
fn fifty_megabyte_message_is_limit_exceeded() {
    let mut message = with_headers(ORGANIZER, ATTENDEE, b"Content-Type: text/plain\r\n\r\n");
    message.resize(50 * 1024 * 1024, b'a');
    let run = verify(&message, &[]);
    assert_rejected(&run, "limit-exceeded");
    // Bounded reading: the binary stopped after the limit (32 MiB + 1 byte) and exited, so
    // the rest of the 50 MB could not be written to it.
    assert!(!run.stdin_consumed, "the whole 50 MB message was read");
    // The same from a file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.eml");
    std::fs::write(&path, &message).unwrap();
    assert_rejected(&verify(b"", &[path.to_str().unwrap()]), "limit-exceeded");
}

#[test]
fn garbage_input_is_rejected_not_an_error() {
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    let run = verify(&garbage, &[]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(!run.reasons().is_empty());
    assert!(run.stderr.contains("imipsec: rejected:"), "{}", run.stderr);
}

#[test]
fn could_not_evaluate_is_exit_two_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let message = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "err@example.com", 0),
        &[],
    );

    // Empty input.
    let run = verify(b"", &[]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("empty"), "{}", run.stderr);
    // Missing file.
    let run = verify(b"", &["/nonexistent/message.eml"]);
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("/nonexistent/message.eml"),
        "{}",
        run.stderr
    );
    // Bad evaluation time (usage).
    let run = imipsec(["verify", "--at", "yesterday"], &message);
    assert_eq!(run.status, 2, "{}", run.stderr);
    // No trust anchor.
    let run = imipsec(["verify", "--at", AT], &message);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("trust"), "{}", run.stderr);
    // Unreadable store: a file that is not a database, and a missing one without --record.
    let not_a_db = dir.path().join("not-a-db.sqlite");
    std::fs::write(&not_a_db, vec![b'x'; 8192]).unwrap();
    let run = verify(&message, &["--store", not_a_db.to_str().unwrap()]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("store"), "{}", run.stderr);
    let missing = dir.path().join("missing.sqlite");
    let run = verify(&message, &["--store", missing.to_str().unwrap()]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        !missing.exists(),
        "a store was created by a read-only verify"
    );
    // --record without a store.
    let run = verify(&message, &["--recipient", ATTENDEE, "--record"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--store"), "{}", run.stderr);
}

#[test]
fn store_in_a_missing_directory_is_exit_two_even_when_recording() {
    let dir = tempfile::tempdir().unwrap();
    let message = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "nodir@example.com", 0),
        &[],
    );
    let store = dir.path().join("no/such/dir/policy.sqlite");
    let run = verify(
        &message,
        &[
            "--store",
            store.to_str().unwrap(),
            "--recipient",
            ATTENDEE,
            "--record",
        ],
    );
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "a verdict was printed on error");
}

// ---------------------------------------------------------------------------------------
// Warnings

#[test]
fn protected_subject_differing_from_outer_is_header_mismatch() {
    // RFC 9788: header fields inside the signed entity protect the outer ones.
    let calendar = calendar("REQUEST", "hp@example.com", 0);
    let entity = format!(
        "Subject: Original subject\r\nContent-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n{calendar}"
    );
    let message = with_headers(
        ORGANIZER,
        ATTENDEE,
        &openssl_sign(entity.as_bytes(), "rsa2048/organizer", true, &[]),
    );
    let run = verify(&message, &[]);
    assert_accepted(&run);
    // (openssl stamps signingTime from the real clock, so signing-time-skew may come too.)
    assert!(
        run.warnings().contains(&"header-mismatch".to_owned()),
        "{:?}",
        run.warnings()
    );
}

#[test]
fn date_far_from_signing_time_is_signing_time_skew() {
    let dir = tempfile::tempdir().unwrap();
    let message = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "skew@example.com", 0),
        &[],
    );
    let run = verify(&message, &[]);
    assert_accepted(&run);
    assert_eq!(run.warnings(), ["event-state-unchecked"]);
    // Date is outside the signature: moving it two hours keeps the signature valid.
    let moved = replace_header(&message, "Date", "Sun, 31 May 2026 22:00:00 +0000");
    let run = verify(&moved, &[]);
    assert_accepted(&run);
    assert_eq!(
        run.warnings(),
        ["signing-time-skew", "event-state-unchecked"]
    );
    // A signingTime after the evaluation time warns too.
    let root = root_ca();
    let run = imipsec(
        [
            "verify",
            "--json",
            "--at",
            "2026-05-31T23:00:00Z",
            "--trust",
            root.to_str().unwrap(),
        ],
        &message,
    );
    assert_accepted(&run);
    assert_eq!(
        run.warnings(),
        ["signing-time-skew", "event-state-unchecked"]
    );
}

// ---------------------------------------------------------------------------------------
// Configuration file and environment

#[test]
fn configuration_file_and_imipsec_store_supply_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_path(dir.path());
    // Relative paths resolve against the configuration file's directory.
    std::fs::copy(root_ca(), dir.path().join("anchor.pem")).unwrap();
    let config = dir.path().join("imipsec.toml");
    std::fs::write(
        &config,
        format!(
            "[trust]\nanchors = [\"anchor.pem\"]\n\n[store]\npath = \"policy.sqlite\"\n\n\
             [recipient]\ndefault = \"{ATTENDEE}\"\n\n[limits]\nmessage_bytes = 65536\n"
        ),
    )
    .unwrap();
    let message = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "cfg@example.com", 0),
        &[],
    );
    let config_arg = config.to_str().unwrap();
    let run = imipsec(
        [
            "verify", "--json", "--at", AT, "--config", config_arg, "--record",
        ],
        &message,
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(recorded(&store, "cfg@example.com"));
    // The configured message limit applies.
    let mut big = message.clone();
    big.resize(65537, b'x');
    let run = imipsec(
        ["verify", "--json", "--at", AT, "--config", config_arg],
        &big,
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert_eq!(run.reasons(), ["limit-exceeded"]);

    // IMIPSEC_STORE names the store when --store is absent.
    let other = dir.path().join("env.sqlite");
    let root = root_ca();
    let message = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "env@example.com", 0),
        &[],
    );
    let path = dir.path().join("env.eml");
    std::fs::write(&path, &message).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_imipsec"))
        .args(["verify", "--at", AT, "--trust"])
        .arg(&root)
        .args(["--recipient", ATTENDEE, "--record"])
        .arg(&path)
        .env("IMIPSEC_STORE", &other)
        .env_remove("IMIPSEC_CONFIG")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(recorded(&other, "env@example.com"));
}

#[test]
fn message_stored_with_lf_line_ends_still_verifies() {
    // Mail stores (mbox, Maildir on Unix) often keep LF line ends; RFC 8551 section 3.1.1
    // canonical form is restored before verification.
    let dir = tempfile::tempdir().unwrap();
    for extra in [&[][..], &["--opaque"][..]] {
        let message = signed(
            dir.path(),
            "organizer",
            &calendar("REQUEST", "lf@example.com", 0),
            extra,
        );
        let lf = String::from_utf8(message).unwrap().replace("\r\n", "\n");
        assert_accepted(&verify(lf.as_bytes(), &[]));
    }
}

#[test]
fn without_recipient_the_state_is_checked_in_the_default_scope() {
    // No --recipient and no configured default: the store still pins the organizer, so a
    // signed CANCEL from another organizer for the same UID is caught (organizer-mismatch).
    let dir = tempfile::tempdir().unwrap();
    let store = store_path(dir.path());
    let store_arg = store.to_str().unwrap();
    let request = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "scope@example.com", 0),
        &[],
    );
    let run = verify(&request, &["--store", store_arg, "--record"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(store.exists(), "the accepted REQUEST was not recorded");
    let hijack = calendar("CANCEL", "scope@example.com", 1).replace(ORGANIZER, STRANGER);
    let forged = signed(dir.path(), "stranger", &hijack, &[]);
    let run = verify(&forged, &["--store", store_arg]);
    assert_rejected(&run, "organizer-mismatch");
}

// Issue #14 point 8: a hint where the fix is known. A message whose signer's intermediate
// is missing is untrusted; the line says what to look for. The same identity with its
// intermediate (the control) verifies.
#[test]
fn missing_intermediate_is_untrusted_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let mut leaf_only = std::fs::read(cert("rsa2048/organizer.key.pem")).unwrap();
    leaf_only.extend(std::fs::read(cert("rsa2048/organizer.cert.pem")).unwrap());
    let leaf_only_path = dir.path().join("leaf-only.pem");
    std::fs::write(&leaf_only_path, leaf_only).unwrap();
    let request = calendar("REQUEST", "hint@example.com", 0);
    // Without anchors `sign` cannot tell that the chain is incomplete; with them it can.
    let root = root_ca();
    let refused = sign(
        request.as_bytes(),
        &leaf_only_path,
        &["--trust", root.to_str().unwrap()],
    );
    assert_eq!(refused.status, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("intermediate"),
        "{}",
        refused.stderr
    );
    let signed = sign(request.as_bytes(), &leaf_only_path, &[]);
    assert_eq!(signed.status, 0, "{}", signed.stderr);
    let run = imipsec(
        ["verify", "--at", AT, "--trust", root.to_str().unwrap()],
        &signed.stdout,
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("rejected: untrusted-certificate"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("intermediate"), "{}", run.stderr);
    let control = sign(
        request.as_bytes(),
        &pem_identity(dir.path(), "rsa2048/organizer"),
        &[],
    );
    assert_eq!(verify(&control.stdout, &[]).status, 0);
}

// Issue #14 point 7: the password of a decryption identity can come from a file, and an
// encrypted PEM key (here PKCS#8, made by the openssl CLI) opens with it.
#[test]
fn encrypted_pem_decryption_identity_opens_with_a_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let attendee_cert = cert("rsa2048/attendee.cert.pem");
    let message = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "pwfile@example.com", 0),
        &["--encrypt-to", attendee_cert.to_str().unwrap()],
    );
    let key = dir.path().join("attendee.enc.key.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:hunter2",
        ])
        .arg("-in")
        .arg(cert("rsa2048/attendee.key.pem"))
        .arg("-out")
        .arg(&key)
        .status()
        .unwrap();
    assert!(status.success());
    let mut identity = std::fs::read(&key).unwrap();
    identity.extend(std::fs::read(cert("rsa2048/attendee.chain.pem")).unwrap());
    let identity_path = dir.path().join("attendee.enc.pem");
    std::fs::write(&identity_path, identity).unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "hunter2\n").unwrap();
    let run = verify(
        &message,
        &[
            "--identity",
            identity_path.to_str().unwrap(),
            "--password-file",
            password.to_str().unwrap(),
        ],
    );
    assert_accepted(&run);
    // Without the password: an error (exit 2) with the hint, not a silent decryption-failed.
    let run = verify(&message, &["--identity", identity_path.to_str().unwrap()]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("is --identity-password-env"),
        "{}",
        run.stderr
    );
}

/// Issue #12: every Google Calendar reply (it carries the event's VALARM, which RFC 5546
/// §3.2.3 lists as 0) was refused. Re-signed with `openssl cms` by the attendee, and
/// unsigned with --danger-allow-unsigned, it is accepted with the warning
/// icalendar-deviation; `--strict-icalendar` and `[policy] strict_icalendar = true`
/// reject it again.
#[test]
fn google_reply_with_valarm_is_a_deviation_and_strict_icalendar_rejects_it() {
    let reply = calendar("REPLY", "google-reply@example.com", 0).replace(
        "END:VEVENT",
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:This is an event reminder\r\n\
         TRIGGER:-P0DT0H10M0S\r\nEND:VALARM\r\nEND:VEVENT",
    );
    let signed = openssl_signed_calendar(&reply, "REPLY", "rsa2048/attendee", ATTENDEE);
    let run = verify(&signed, &[]);
    assert_accepted(&run);
    // openssl cms stamps the signing time of now: signing-time-skew comes along.
    let json = run.json();
    let deviations: Vec<&serde_json::Value> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["code"] == "icalendar-deviation")
        .collect();
    assert_eq!(deviations.len(), 1, "{:?}", run.warnings());
    let detail = deviations[0]["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("VALARM") && detail.contains("RFC 5546 §3.2.3"),
        "{detail}"
    );
    assert_rejected(
        &verify(&signed, &["--strict-icalendar"]),
        "restriction-violation",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("imipsec.toml");
    std::fs::write(&config, "[policy]\nstrict_icalendar = true\n").unwrap();
    assert_rejected(
        &verify(&signed, &["--config", config.to_str().unwrap()]),
        "restriction-violation",
    );

    let unsigned = with_headers(ATTENDEE, ORGANIZER, &calendar_entity(&reply, "REPLY"));
    let run = verify(&unsigned, &["--danger-allow-unsigned"]);
    assert_accepted(&run);
    assert!(run.warnings().contains(&"icalendar-deviation".to_owned()));
}

/// Runs the openssl CLI in `dir`, asserting success.
fn openssl_in(dir: &Path, args: &[&str]) {
    let output = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Issue #13: `--crl` rejected DER although help and man page said "PEM or DER", and
/// `--trust` given a directory failed with "Is a directory" and refused DER anchors.
#[test]
fn trust_takes_der_and_directories_and_crl_takes_der() {
    let dir = tempfile::tempdir().unwrap();
    let message = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "uid-trust-der", 0),
        &[],
    );
    let crl = cert("intermediate.crl.pem").display().to_string();
    openssl_in(
        dir.path(),
        &[
            "crl",
            "-in",
            &crl,
            "-outform",
            "DER",
            "-out",
            "intermediate.crl",
        ],
    );
    let der_crl = dir.path().join("intermediate.crl").display().to_string();
    assert_accepted(&verify(&message, &["--crl", &der_crl]));
    let anchors = dir.path().join("anchors");
    std::fs::create_dir_all(&anchors).unwrap();
    let root = root_ca().display().to_string();
    openssl_in(
        &anchors,
        &["x509", "-in", &root, "-outform", "DER", "-out", "root.der"],
    );
    for trust in [anchors.clone(), anchors.join("root.der")] {
        let run = imipsec(
            [
                "verify",
                "--json",
                "--at",
                AT,
                "--trust",
                &trust.display().to_string(),
                "--crl",
                &der_crl,
            ],
            &message,
        );
        assert_accepted(&run);
    }
}

/// Issue #13: `--revocation require` demands an answer for every certificate below the anchor
/// and names the one without; `off` / `if-available` accept; an unknown mode is a usage error.
#[test]
fn revocation_require_names_the_certificate_without_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let message = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "uid-revocation-require", 0),
        &[],
    );
    let crl = cert("intermediate.crl.pem").display().to_string();
    for mode in ["off", "if-available"] {
        assert_accepted(&verify(&message, &["--crl", &crl, "--revocation", mode]));
    }
    // The intermediate's CRL covers the organizer; the root publishes none for the
    // intermediate itself.
    let run = verify(&message, &["--crl", &crl, "--revocation", "require"]);
    assert_rejected(&run, "untrusted-certificate");
    let text = format!("{}{}", run.stdout_text(), run.stderr);
    assert!(
        text.contains("imipsec Test Intermediate CA") && text.contains("no CRL from its issuer"),
        "{text}"
    );
    let run = verify(&message, &["--revocation", "sometimes"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
}

/// Issue #13: a CRL past its nextUpdate silently made every signer of that CA
/// `untrusted-certificate`. Now it is reported at load and named in the reason.
#[test]
fn stale_crl_is_warned_at_load_and_named_in_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let message = signed(
        dir.path(),
        "organizer",
        &calendar("REQUEST", "uid-stale-crl", 0),
        &[],
    );
    std::fs::write(dir.path().join("index.txt"), "").unwrap();
    std::fs::write(dir.path().join("crlnumber"), "01\n").unwrap();
    std::fs::write(
        dir.path().join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\n",
    )
    .unwrap();
    let key = cert("intermediate.key.pem").display().to_string();
    let ca = cert("intermediate.cert.pem").display().to_string();
    openssl_in(
        dir.path(),
        &[
            "ca",
            "-config",
            "ca.cnf",
            "-gencrl",
            "-keyfile",
            &key,
            "-cert",
            &ca,
            "-crl_lastupdate",
            "20260101000000Z",
            "-crl_nextupdate",
            "20260501000000Z",
            "-out",
            "stale.crl.pem",
        ],
    );
    let stale = dir.path().join("stale.crl.pem").display().to_string();
    let run = verify(&message, &["--crl", &stale]);
    assert!(
        run.stderr.contains("warning") && run.stderr.contains("past its nextUpdate"),
        "{}",
        run.stderr
    );
    // The pipeline's reason for revocation-unknown is untrusted-certificate.
    assert_rejected(&run, "untrusted-certificate");
    let text = format!("{}{}", run.stdout_text(), run.stderr);
    assert!(
        text.contains("imipsec Test Intermediate CA") && text.contains("stale"),
        "{text}"
    );
}

/// Issue #13: `sign --intermediates` puts the intermediates into the SignedData, so that a
/// verifier without them can build the path; without, the missing issuer is named.
#[test]
fn sign_includes_intermediates_and_a_missing_issuer_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // An identity without its chain: key and certificate only.
    let bare = dir.path().join("bare.pem");
    let mut pem = std::fs::read(cert("rsa2048/organizer.key.pem")).unwrap();
    pem.extend(std::fs::read(cert("rsa2048/organizer.cert.pem")).unwrap());
    std::fs::write(&bare, pem).unwrap();
    let calendar = calendar("REQUEST", "uid-intermediates", 0);
    let intermediate = cert("intermediate.cert.pem").display().to_string();
    let root = root_ca().display().to_string();
    let without = sign(
        calendar.as_bytes(),
        &bare,
        &["--danger-skip-identity-checks"],
    );
    assert_eq!(without.status, 0, "{}", without.stderr);
    let run = verify(&without.stdout, &[]);
    assert_rejected(&run, "untrusted-certificate");
    let text = format!("{}{}", run.stdout_text(), run.stderr);
    assert!(
        text.contains("imipsec Test Intermediate CA") && !text.contains("verify error 20"),
        "{text}"
    );
    // The verifier's own --intermediates complete the path.
    assert_accepted(&verify(
        &without.stdout,
        &["--intermediates", &intermediate],
    ));
    // Signed with --intermediates: the message carries it.
    let with = sign(
        calendar.as_bytes(),
        &bare,
        &["--intermediates", &intermediate, "--trust", &root],
    );
    assert_eq!(with.status, 0, "{}", with.stderr);
    assert_accepted(&verify(&with.stdout, &[]));
}

/// Issue #12: all four deviation families real clients write are accepted through `verify`,
/// re-signed with `openssl cms` by their sender and unsigned with --danger-allow-unsigned,
/// each with one icalendar-deviation naming the property and the RFC rule;
/// --strict-icalendar rejects each.
#[test]
fn every_deviation_family_is_accepted_with_a_warning_and_rejected_strict() {
    for family in deviation_families("verify") {
        for signed in [true, false] {
            let raw = deviation_message(&family, signed);
            let mut extra = vec![];
            if !signed {
                extra.push("--danger-allow-unsigned");
            }
            let run = verify(&raw, &extra);
            assert_eq!(
                run.status, 0,
                "{} (signed {signed}): {}",
                family.name, run.stderr
            );
            let json = run.json();
            let details: Vec<String> = json["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|w| w["code"] == "icalendar-deviation")
                .map(|w| w["detail"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(details.len(), 1, "{}: {details:?}", family.name);
            assert!(
                details[0].contains(family.property) && details[0].contains("RFC"),
                "{}: {details:?}",
                family.name
            );
            extra.push("--strict-icalendar");
            let strict = verify(&raw, &extra);
            assert_ne!(strict.status, 0, "{}: strict accepted", family.name);
            assert_eq!(
                strict.reasons().first().map(String::as_str),
                Some(family.strict_reason),
                "{}",
                family.name
            );
        }
    }
}
