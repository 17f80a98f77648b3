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

// Issue #14 point 1: without --identity, `sign` wrote an unsigned message (and with
// --encrypt-to an encrypted-but-unsigned one) and exited 0. A usage error now: exit 2,
// nothing on standard output, whatever the other flags.
#[test]
fn without_identity_sign_is_a_usage_error_and_writes_nothing() {
    let request = calendar("REQUEST", "plain@example.com", 0);
    let attendee = cert("rsa2048/attendee.cert.pem");
    let attendee = attendee.to_str().unwrap();
    for extra in [
        vec![],
        vec!["--opaque"],
        vec!["--encrypt-to", attendee],
        vec!["--opaque", "--encrypt-to", attendee],
    ] {
        let mut args = vec!["sign", "--at", AT];
        args.extend(&extra);
        let run = imipsec(&args, request.as_bytes());
        assert_eq!(run.status, 2, "{extra:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{extra:?}: something was written");
        assert!(
            run.stderr.contains("--identity"),
            "{extra:?}: {}",
            run.stderr
        );
    }
}

/// `sign` with a special (defective) identity of the test PKI, each claiming the organizer.
fn sign_special(name: &str, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let identity = pem_identity(dir.path(), &format!("special/{name}"));
    sign(
        calendar("REQUEST", &format!("{name}@example.com"), 0).as_bytes(),
        &identity,
        extra,
    )
}

// Issue #14 point 1: `sign` signed with an expired identity, one without the emailProtection
// EKU, an RSA-1024 key: all things a gate rejects. The control case (the regular organizer,
// with and without anchors) shows the same command signs when the identity is acceptable.
#[test]
fn identity_a_gate_would_reject_is_refused_with_its_reason_code() {
    let root = root_ca();
    let root = root.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let organizer = identity(dir.path(), "organizer");
    let request = calendar("REQUEST", "control@example.com", 0);
    for extra in [vec![], vec!["--trust", root]] {
        let run = sign(request.as_bytes(), &organizer, &extra);
        assert_eq!(run.status, 0, "control {extra:?}: {}", run.stderr);
    }
    let cases: [(&str, Vec<&str>, &str); 6] = [
        ("expired", vec![], "certificate-expired"),
        ("expired", vec!["--trust", root], "certificate-expired"),
        ("wrong-eku", vec![], "certificate-purpose"),
        ("weak-rsa1024", vec![], "weak-algorithm"),
        ("weak-rsa1024", vec!["--trust", root], "weak-algorithm"),
        // Trust can only be judged against anchors: with them, a foreign CA is refused.
        ("untrusted", vec!["--trust", root], "untrusted-certificate"),
    ];
    for (name, extra, code) in cases {
        let run = sign_special(name, &extra);
        assert_eq!(run.status, 1, "{name} {extra:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("refused: {code}")),
            "{name} {extra:?}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{name}: a message was written");
    }
    // Not yet valid at --at (the test PKI starts in 2025).
    let run = imipsec(
        [
            "sign",
            "--at",
            "2024-06-01T00:00:00Z",
            "--identity",
            organizer.to_str().unwrap(),
        ],
        request.as_bytes(),
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("refused: certificate-expired"),
        "{}",
        run.stderr
    );
}

#[test]
fn revoked_identity_is_refused_with_the_configured_crl() {
    let root = root_ca();
    let crl = cert("intermediate.crl.pem");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("imipsec.toml");
    std::fs::write(
        &config,
        format!(
            "[trust]\nanchors = [{:?}]\ncrls = [{:?}]\n",
            root.display().to_string(),
            crl.display().to_string()
        ),
    )
    .unwrap();
    let run = sign_special("revoked", &["--config", config.to_str().unwrap()]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("refused: certificate-revoked"),
        "{}",
        run.stderr
    );
}

// The override is named as the danger it is, and what it produces is what a gate rejects.
#[test]
fn danger_override_signs_anyway_and_verify_rejects_it() {
    let run = sign_special("expired", &["--danger-skip-identity-checks"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let verdict = verify(&run.stdout, &[]);
    assert_eq!(verdict.status, 1);
    assert_eq!(
        verdict.reasons().first().map(String::as_str),
        Some("certificate-expired")
    );
}

// Issue #14: `--opaque` and `--encrypt-to` keep working with an identity.
#[test]
fn opaque_and_encrypted_with_identity_verify_after_decryption() {
    let dir = tempfile::tempdir().unwrap();
    let attendee_cert = cert("rsa2048/attendee.cert.pem");
    let run = sign(
        calendar("REQUEST", "enc@example.com", 0).as_bytes(),
        &identity(dir.path(), "organizer"),
        &["--opaque", "--encrypt-to", attendee_cert.to_str().unwrap()],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stdout_text().contains("smime-type=authEnveloped-data"));
    let attendee = identity(dir.path(), "attendee");
    let verdict = verify(&run.stdout, &["--identity", attendee.to_str().unwrap()]);
    assert_eq!(verdict.status, 0, "{}", verdict.stderr);
}

/// Runs the built `imipsec` with an extra environment variable.
fn imipsec_env(args: &[&str], env: (&str, &str), stdin: &[u8]) -> Run {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_imipsec"))
        .args(args)
        .env(env.0, env.1)
        .env_remove("IMIPSEC_STORE")
        .env_remove("IMIPSEC_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    Run {
        stdin_consumed: true,
        status: output.status.code().unwrap_or(-1),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The organizer's key encrypted by the `openssl` CLI (an independent implementation),
/// followed by its chain: `pkcs8` (ENCRYPTED PRIVATE KEY, PBES2) or `traditional`
/// (Proc-Type: 4,ENCRYPTED).
fn encrypted_identity(dir: &std::path::Path, form: &str, password: &str) -> std::path::PathBuf {
    let key = cert("rsa2048/organizer.key.pem");
    let out = dir.join(format!("organizer-{form}.key.pem"));
    let pass = format!("pass:{password}");
    let args: Vec<&str> = match form {
        "pkcs8" => vec!["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", &pass],
        _ => vec!["rsa", "-traditional", "-aes128", "-passout", &pass],
    };
    let status = std::process::Command::new("openssl")
        .args(&args)
        .arg("-in")
        .arg(&key)
        .arg("-out")
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut pem = std::fs::read(&out).unwrap();
    let text = String::from_utf8_lossy(&pem).into_owned();
    match form {
        "pkcs8" => assert!(text.contains("ENCRYPTED PRIVATE KEY"), "{text}"),
        _ => assert!(text.contains("Proc-Type: 4,ENCRYPTED"), "{text}"),
    }
    pem.extend(std::fs::read(cert("rsa2048/organizer.chain.pem")).unwrap());
    std::fs::write(&out, pem).unwrap();
    out
}

// Issue #14 point 7: encrypted PEM keys failed although --help said the password variable
// serves them; the password could only come from an environment variable.
#[test]
fn encrypted_pem_keys_sign_with_env_or_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let request = calendar("REQUEST", "encpem@example.com", 0);
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "s3cret pass\n").unwrap();
    for form in ["pkcs8", "traditional"] {
        let identity = encrypted_identity(dir.path(), form, "s3cret pass");
        let identity = identity.to_str().unwrap();
        let base = ["sign", "--at", AT, "--identity", identity];
        let with_env = [&base[..], &["--identity-password-env", "IMIPSEC_TEST_PW"]].concat();
        let run = imipsec_env(
            &with_env,
            ("IMIPSEC_TEST_PW", "s3cret pass"),
            request.as_bytes(),
        );
        assert_eq!(run.status, 0, "{form} env: {}", run.stderr);
        assert_eq!(verify(&run.stdout, &[]).status, 0, "{form}");
        let with_file = [
            &base[..],
            &["--password-file", password_file.to_str().unwrap()],
        ]
        .concat();
        let run = imipsec(&with_file, request.as_bytes());
        assert_eq!(run.status, 0, "{form} file: {}", run.stderr);
        assert_eq!(verify(&run.stdout, &[]).status, 0, "{form}");
        // No password, or the wrong one: exit 2, one line, with the hint.
        for (args, env) in [
            (base.to_vec(), ("UNUSED", "")),
            (with_env.clone(), ("IMIPSEC_TEST_PW", "wrong")),
        ] {
            let run = imipsec_env(&args, env, request.as_bytes());
            assert_eq!(run.status, 2, "{form}: {}", run.stderr);
            assert!(run.stdout.is_empty());
            assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
            assert!(
                run.stderr.contains("is --identity-password-env"),
                "{form}: {}",
                run.stderr
            );
        }
    }
}

// Issue #14 point 8: a wrong PKCS#12 password showed OpenSSL's source path
// (`mac verify failure:../crypto/pkcs12/p12_kiss.c:71:`) and no hint.
#[test]
fn wrong_pkcs12_password_is_one_line_with_a_hint_and_no_source_path() {
    let p12 = cert("rsa2048/organizer.p12");
    let args = [
        "sign",
        "--at",
        AT,
        "--identity",
        p12.to_str().unwrap(),
        "--identity-password-env",
        "IMIPSEC_TEST_PW",
    ];
    let run = imipsec_env(
        &args,
        ("IMIPSEC_TEST_PW", "wrong"),
        calendar("REQUEST", "p12@example.com", 0).as_bytes(),
    );
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    assert!(!run.stderr.contains(".c:"), "{}", run.stderr);
    assert!(!run.stderr.contains("crypto/"), "{}", run.stderr);
    assert!(
        run.stderr.contains("is --identity-password-env"),
        "{}",
        run.stderr
    );
}

// Issue #14 point 8: "No such file or directory (os error 2): No such file or directory (os
// error 2)" (an error that prints its source and also chains it, here the trust store's).
#[test]
fn missing_files_are_said_once() {
    let request = calendar("REQUEST", "missing@example.com", 0);
    let dir = tempfile::tempdir().unwrap();
    let organizer = identity(dir.path(), "organizer");
    for run in [
        sign(
            request.as_bytes(),
            &organizer,
            &["--trust", "/nonexistent/root.pem"],
        ),
        verify(
            b"From: a@b\r\n\r\nx\r\n",
            &["--trust", "/nonexistent/root.pem"],
        ),
        imipsec(["verify", "--trust", "/nonexistent/root.pem"], b"x"),
    ] {
        assert_eq!(run.status, 2, "{}", run.stderr);
        assert_eq!(
            run.stderr.matches("os error 2").count(),
            1,
            "{}",
            run.stderr
        );
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    }
    let run = sign(
        calendar("REQUEST", "missing@example.com", 0).as_bytes(),
        std::path::Path::new("/nonexistent/identity.pem"),
        &[],
    );
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("os error 2").count(),
        1,
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
}

// Issue #14 point 7: `--from 'Alice Example <alice@example.org>'` was refused; there was no
// `--subject`. Non-ASCII display names are RFC 2047 encoded-words that a reader decodes.
#[test]
fn display_names_and_subject_are_encoded_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let run = sign(
        calendar("REQUEST", "names@example.com", 0).as_bytes(),
        &identity(dir.path(), "organizer"),
        &[
            "--from",
            "Orgänizer Example <organizer@example.com>",
            "--to",
            "\"Attendee, The\" <attendee@example.com>",
            "--subject",
            "Réunion: planning",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stdout.is_ascii());
    let parsed = mail_parser::MessageParser::default()
        .parse(&run.stdout)
        .unwrap();
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Orgänizer Example"));
    assert_eq!(from.address(), Some(ORGANIZER));
    let to = parsed.to().unwrap().first().unwrap();
    assert_eq!(to.name(), Some("Attendee, The"));
    assert_eq!(to.address(), Some(ATTENDEE));
    assert_eq!(parsed.subject(), Some("Réunion: planning"));
    let verdict = verify(&run.stdout, &[]);
    assert_eq!(verdict.status, 0, "{}", verdict.stderr);
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
