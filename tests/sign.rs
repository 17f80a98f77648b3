//! End-to-end tests of `imipsec sign`: the iMIP structure of RFC 6047 section 2, address
//! defaults, refusals with reason codes (exit 1), bad input (exit 2), and cross-checks of the
//! signature with `openssl cms -verify`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;

fn identity(dir: &std::path::Path, role: &str) -> std::path::PathBuf {
    pem_identity(dir, &format!("rsa2048/{role}"))
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    let head = message.split("\r\n\r\n").next()?;
    head.split("\r\n")
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
}

#[test]
fn every_method_has_the_imip_structure_and_role_addresses() {
    let dir = tempfile::tempdir().unwrap();
    for method in METHODS {
        let attendee_sends = attendee_method(method);
        let role = if attendee_sends {
            "attendee"
        } else {
            "organizer"
        };
        let extra: &[&str] = if method == "PUBLISH" {
            &["--to", "list@example.com"]
        } else {
            &[]
        };
        let run = sign(
            calendar(method, "s@example.com", 1).as_bytes(),
            &identity(dir.path(), role),
            extra,
        );
        assert_eq!(run.status, 0, "{method}: {}", run.stderr);
        let text = run.stdout_text();
        // RFC 6047 section 2.4: method parameter equal to METHOD, charset, component.
        assert!(
            text.contains(&format!("method=\"{method}\"")),
            "{method}: {text}"
        );
        assert!(text.contains("charset=\"utf-8\""), "{method}");
        assert!(text.contains("component=\"VEVENT\""), "{method}");
        assert!(text.contains("multipart/alternative"), "{method}");
        assert!(text.contains("Content-Type: text/plain"), "{method}");
        assert!(text.contains("filename=\""), "{method}");
        assert!(text.contains("application/pkcs7-signature"), "{method}");
        assert!(header(&text, "MIME-Version").is_some(), "{method}");
        assert!(
            header(&text, "Date").unwrap().contains("1 Jun 2026"),
            "{method}"
        );
        let (from, to) = if attendee_sends {
            (ATTENDEE, ORGANIZER)
        } else if method == "PUBLISH" {
            (ORGANIZER, "list@example.com")
        } else {
            (ORGANIZER, ATTENDEE)
        };
        assert_eq!(
            header(&text, "From"),
            Some(format!("<{from}>").as_str()),
            "{method}"
        );
        assert_eq!(
            header(&text, "To"),
            Some(format!("<{to}>").as_str()),
            "{method}"
        );
        // The signature is standard CMS: OpenSSL verifies it, and the content it verified
        // holds the calendar as given.
        let content = openssl_verify(&run.stdout);
        assert!(
            String::from_utf8_lossy(&content).contains(&format!("METHOD:{method}")),
            "{method}"
        );
    }
}

#[test]
fn from_and_to_overrides_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let run = sign(
        calendar("REQUEST", "o@example.com", 0).as_bytes(),
        &identity(dir.path(), "organizer"),
        &[
            "--from",
            "assistant@example.com",
            "--to",
            "a@example.org",
            "--to",
            "b@example.org",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let text = run.stdout_text();
    assert_eq!(header(&text, "From"), Some("<assistant@example.com>"));
    let to = header(&text, "To").unwrap();
    assert!(
        to.contains("a@example.org") && to.contains("b@example.org"),
        "{to}"
    );
    // Verified as signed by the organizer, From differing only warns.
    let run = verify(&run.stdout, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.warnings(), ["from-mismatch", "event-state-unchecked"]);
}

#[test]
fn non_ascii_is_transfer_encoded_and_lf_input_is_canonicalised() {
    let dir = tempfile::tempdir().unwrap();
    let calendar = calendar("REQUEST", "utf8@example.com", 0)
        .replace("Planning meeting", "Caf\u{e9} \u{4f1a}\u{8b70}")
        .replace("\r\n", "\n");
    let run = sign(calendar.as_bytes(), &identity(dir.path(), "organizer"), &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let text = run.stdout_text();
    assert!(
        text.contains("Content-Transfer-Encoding: quoted-printable")
            || text.contains("Content-Transfer-Encoding: base64"),
        "{text}"
    );
    assert!(text.is_ascii(), "detached signed content must be 7-bit");
    let run = verify(&run.stdout, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
}

#[test]
fn message_input_keeps_headers_and_several_methods_become_mixed() {
    let dir = tempfile::tempdir().unwrap();
    let request = calendar("REQUEST", "mix-1@example.com", 0);
    let cancel = calendar("CANCEL", "mix-2@example.com", 1);
    let input = format!(
        "From: organizer@example.com\r\nTo: attendee@example.com\r\nSubject: Two changes\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n{request}\r\n\
         --b\r\nContent-Type: text/calendar; method=CANCEL; charset=utf-8\r\n\r\n{cancel}\r\n--b--\r\n"
    );
    let run = sign(input.as_bytes(), &identity(dir.path(), "organizer"), &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let text = run.stdout_text();
    assert_eq!(header(&text, "Subject"), Some("Two changes"));
    assert!(text.contains("multipart/mixed"), "{text}");
    assert!(text.contains("method=\"REQUEST\"") && text.contains("method=\"CANCEL\""));
    let run = verify(&run.stdout, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let methods: Vec<_> = run.json()["itip"]
        .as_array()
        .unwrap()
        .iter()
        .map(|component| component["method"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(methods, ["REQUEST", "CANCEL"]);
}

#[test]
fn opaque_signature_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let run = sign(
        calendar("REQUEST", "opaque@example.com", 0).as_bytes(),
        &identity(dir.path(), "organizer"),
        &["--opaque"],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stdout_text().contains("smime-type=signed-data"));
    openssl_verify(&run.stdout);
    let run = verify(&run.stdout, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.json()["layers"][0]["kind"], "signed");
}

#[test]
fn refuses_what_a_gate_would_reject() {
    let dir = tempfile::tempdir().unwrap();
    let request = calendar("REQUEST", "refuse@example.com", 0);
    let cases: Vec<(String, &str, &str)> = vec![
        // Not the organizer.
        (request.clone(), "stranger", "signer-not-correlated"),
        // A party, but an attendee may not send REQUEST.
        (request.clone(), "attendee", "role-not-authorized"),
        // CRLF injection: a bare CR inside a value would let a lenient reader see a second
        // ORGANIZER line.
        (
            request.replace(
                "SUMMARY:Planning meeting",
                "SUMMARY:Planning\rORGANIZER:mailto:mallory@example.net",
            ),
            "organizer",
            "malformed-icalendar",
        ),
        (
            request.replace("DTSTART:20260615T100000Z\r\n", ""),
            "organizer",
            "restriction-violation",
        ),
        (
            "From: a@example.com\r\nContent-Type: text/plain\r\n\r\nno calendar\r\n".to_owned(),
            "organizer",
            "no-calendar",
        ),
    ];
    for (input, role, code) in cases {
        let run = sign(input.as_bytes(), &identity(dir.path(), role), &[]);
        assert_eq!(run.status, 1, "{code}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("refused: {code}")),
            "{code}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{code}: a message was written");
    }
}

#[test]
fn header_injection_and_bad_input_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let organizer = identity(dir.path(), "organizer");
    let request = calendar("REQUEST", "inj@example.com", 0);
    for extra in [
        ["--to", "attendee@example.com\r\nBcc: spy@example.net"],
        ["--from", "organizer@example.com\nBcc: spy@example.net"],
    ] {
        let run = sign(request.as_bytes(), &organizer, &extra);
        assert_eq!(run.status, 2, "{}", run.stderr);
        assert!(run.stderr.contains("control character"), "{}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    // Empty input, missing identity, wrong PKCS#12 password.
    let run = sign(b"", &organizer, &[]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("empty"), "{}", run.stderr);
    let run = sign(
        request.as_bytes(),
        std::path::Path::new("/nonexistent/identity.pem"),
        &[],
    );
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("/nonexistent/identity.pem"),
        "{}",
        run.stderr
    );
    let run = sign(request.as_bytes(), &cert("rsa2048/organizer.p12"), &[]);
    assert_eq!(run.status, 2, "{}", run.stderr);
}

#[test]
fn pkcs12_identity_signs() {
    let p12 = cert("rsa2048/organizer.p12");
    let root = root_ca();
    let request = calendar("REQUEST", "p12sign@example.com", 0);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("invite.ics");
    std::fs::write(&input, &request).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_imipsec"))
        .args(["sign", "--at", AT, "--identity"])
        .arg(&p12)
        .args(["--identity-password-env", "IMIPSEC_TEST_P12"])
        .env("IMIPSEC_TEST_P12", "imipsec")
        .env_remove("IMIPSEC_STORE")
        .env_remove("IMIPSEC_CONFIG")
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run = verify(&output.stdout, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let _ = root;
}

#[test]
fn without_identity_the_message_is_unsigned_and_verify_says_so() {
    let run = imipsec(
        ["sign", "--at", AT],
        calendar("REQUEST", "plain@example.com", 0).as_bytes(),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(!run.stdout_text().contains("pkcs7"));
    let verdict = verify(&run.stdout, &[]);
    assert_eq!(verdict.status, 1);
    assert_eq!(verdict.reasons(), ["unsigned"]);
}

#[test]
fn invalid_recipient_is_an_error_not_a_reject() {
    let dir = tempfile::tempdir().unwrap();
    let message = sign(
        calendar("REQUEST", "rcpt@example.com", 0).as_bytes(),
        &identity(dir.path(), "organizer"),
        &[],
    );
    let store = store_path(dir.path());
    let store_arg = store.to_str().unwrap();
    let run = verify(
        &message.stdout,
        &[
            "--store",
            store_arg,
            "--recipient",
            "not an address",
            "--record",
        ],
    );
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("recipient"), "{}", run.stderr);
}
