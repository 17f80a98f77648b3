//! Verification, trust, decryption and MIME-walk tests against the test PKI in `certs/`
//! (see certs/README.md), with messages generated at test time by the `openssl cms` CLI.
//! Evaluation time 2026-06-01T00:00:00Z.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "corpora/shared.rs"]
mod shared;

use imipsec_smime::keys::Identity;
use imipsec_smime::{
    AlgorithmPolicy, Failure, InspectOptions, Inspection, LayerKind, LayerOutcome, Limits,
    RevocationMode, SmimeError, TrustStore, inspect, verify_signed_data,
};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use time::OffsetDateTime;
use time::macros::datetime;

const AT: OffsetDateTime = datetime!(2026-06-01 00:00:00 UTC);

fn certs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../certs")
}

fn trust() -> TrustStore {
    TrustStore::from_pem_files(
        &[certs().join("root.cert.pem")],
        &[certs().join("intermediate.crl.pem")],
    )
    .unwrap()
}

fn identity(role: &str) -> Identity {
    let mut pem = std::fs::read(certs().join(format!("{role}.key.pem"))).unwrap();
    pem.extend(std::fs::read(certs().join(format!("{role}.chain.pem"))).unwrap());
    Identity::from_pem(&pem).unwrap()
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "imipsec-smime-verify-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run `openssl cms <args> -in <input> -out <output>` and return the output bytes.
fn openssl_cms(input: &[u8], args: &[&str]) -> Vec<u8> {
    let dir = scratch();
    let (in_path, out_path) = (dir.join("in"), dir.join("out"));
    std::fs::write(&in_path, input).unwrap();
    let status = Command::new("openssl")
        .arg("cms")
        .args(args)
        .arg("-in")
        .arg(&in_path)
        .arg("-out")
        .arg(&out_path)
        .status()
        .expect("openssl CLI");
    assert!(status.success(), "openssl cms {args:?} failed");
    let out = std::fs::read(&out_path).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    out
}

fn path(role: &str, kind: &str) -> String {
    certs()
        .join(format!("{role}.{kind}.pem"))
        .to_string_lossy()
        .into_owned()
}

/// DER SignedData over `content` exactly as given (`-binary`), detached unless `opaque`.
fn sign(content: &[u8], role: &str, extra: &[&str], opaque: bool) -> Vec<u8> {
    let (cert, key, intermediate) = (
        path(role, "cert"),
        path(role, "key"),
        certs()
            .join("intermediate.cert.pem")
            .to_string_lossy()
            .into_owned(),
    );
    let mut args = vec![
        "-sign",
        "-binary",
        "-outform",
        "DER",
        "-signer",
        &cert,
        "-inkey",
        &key,
        "-certfile",
        &intermediate,
    ];
    if opaque {
        args.push("-nodetach");
    }
    args.extend_from_slice(extra);
    openssl_cms(content, &args)
}

fn encrypt(content: &[u8], recipient: &str, cipher: &str) -> Vec<u8> {
    let cert = path(recipient, "cert");
    openssl_cms(
        content,
        &[
            "-encrypt", "-binary", "-outform", "DER", cipher, "-recip", &cert,
        ],
    )
}

fn base64(der: &[u8]) -> String {
    let encoded = openssl::base64::encode_block(der);
    let mut out = String::new();
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push_str("\r\n");
    }
    out
}

const CALENDAR: &[u8] = b"Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\
Content-Transfer-Encoding: 7bit\r\n\r\n\
BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:1@example.com\r\n\
ORGANIZER:mailto:organizer@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

const CALENDAR_TEXT: &[u8] =
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:1@example.com\r\n\
ORGANIZER:mailto:organizer@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

/// A multipart/signed entity (no outer headers) around `content` with `der` as signature.
fn multipart_signed_entity(content: &[u8], der: &[u8]) -> Vec<u8> {
    let mut out = b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"sig-boundary\"\r\n\r\n\
This is an S/MIME signed message\r\n--sig-boundary\r\n"
        .to_vec();
    out.extend_from_slice(content);
    out.extend_from_slice(b"\r\n--sig-boundary\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    out.extend_from_slice(base64(der).as_bytes());
    out.extend_from_slice(b"\r\n--sig-boundary--\r\n");
    out
}

fn pkcs7_mime_entity(smime_type: &str, der: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "Content-Type: application/pkcs7-mime; smime-type={smime_type}; name=smime.p7m\r\n\
Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(base64(der).as_bytes());
    out
}

fn message(entity: &[u8]) -> Vec<u8> {
    let mut out =
        b"From: organizer@example.com\r\nTo: attendee@example.com\r\nSubject: Invitation\r\n\
Date: Mon, 01 Jun 2026 00:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            .to_vec();
    out.extend_from_slice(entity);
    out
}

fn detached_message(role: &str, extra: &[&str]) -> Vec<u8> {
    let der = sign(CALENDAR, role, extra, false);
    message(&multipart_signed_entity(CALENDAR, &der))
}

fn run(raw: &[u8], identities: &[Identity]) -> Result<Inspection, SmimeError> {
    run_with(raw, identities, &AlgorithmPolicy::default(), false)
}

fn run_with(
    raw: &[u8],
    identities: &[Identity],
    policy: &AlgorithmPolicy,
    danger_decrypt_non_root: bool,
) -> Result<Inspection, SmimeError> {
    let trust = trust();
    let limits = Limits::default();
    inspect(
        raw,
        &InspectOptions {
            trust: &trust,
            at: AT,
            revocation: imipsec_smime::RevocationMode::default(),
            revocation_source: None,
            policy,
            identities,
            limits: &limits,
            danger_decrypt_non_root,
            openpgp: None,
        },
    )
}

fn signed_calendar(inspection: &Inspection) -> bool {
    inspection.leaves().iter().any(|leaf| {
        leaf.content_type() == "text/calendar"
            && leaf.is_signed(inspection)
            && leaf.body() == CALENDAR_TEXT
    })
}

fn failure_code(inspection: &Inspection) -> Option<&'static str> {
    inspection
        .layers()
        .iter()
        .find_map(|layer| layer.outcome().failure().map(Failure::code))
}

#[test]
fn valid_detached_rsa_and_p256() {
    for role in ["rsa2048/organizer", "p256/organizer"] {
        let inspection = run(&detached_message(role, &["-md", "sha256"]), &[]).unwrap();
        assert_eq!(inspection.layers().len(), 1, "{role}");
        assert_eq!(inspection.layers()[0].kind(), LayerKind::MultipartSigned);
        assert!(
            inspection.layers()[0].outcome().is_verified(),
            "{role}: {:?}",
            inspection.layers()[0].outcome()
        );
        assert!(signed_calendar(&inspection));
        let leaf = &inspection.leaves()[0];
        let signers = leaf.signers(&inspection);
        assert_eq!(signers.len(), 1);
        assert_eq!(signers[0].emails()[0].normalized(), "organizer@example.com");
        assert!(signers[0].signing_time().is_some());
        assert!(signers[0].subject().contains("Organizer"));
        assert_eq!(leaf.param("method"), Some("REQUEST"));
    }
}

#[test]
fn valid_opaque_signed() {
    for role in ["rsa2048/attendee", "p256/attendee"] {
        let der = sign(CALENDAR, role, &[], true);
        let inspection = run(&message(&pkcs7_mime_entity("signed-data", &der)), &[]).unwrap();
        assert_eq!(inspection.layers()[0].kind(), LayerKind::OpaqueSigned);
        assert!(
            inspection.layers()[0].outcome().is_verified(),
            "{:?}",
            inspection.layers()[0].outcome()
        );
        assert!(signed_calendar(&inspection));
        // Without smime-type the CMS content type is sniffed.
        let untyped = pkcs7_mime_entity("signed-data", &der);
        let untyped = String::from_utf8(untyped)
            .unwrap()
            .replace(" smime-type=signed-data;", "");
        let inspection = run(&message(untyped.as_bytes()), &[]).unwrap();
        assert!(signed_calendar(&inspection));
    }
}

#[test]
fn rsassa_pss_verifies() {
    let raw = detached_message(
        "rsa2048/organizer",
        &[
            "-keyopt",
            "rsa_padding_mode:pss",
            "-keyopt",
            "rsa_pss_saltlen:32",
        ],
    );
    let inspection = run(&raw, &[]).unwrap();
    assert!(
        inspection.layers()[0].outcome().is_verified(),
        "{:?}",
        inspection.layers()[0].outcome()
    );
}

#[test]
fn signed_inside_encrypted_gcm_and_cbc() {
    let bob = identity("rsa2048/attendee");
    for (cipher, authenticated, kind) in [
        ("-aes-256-gcm", true, LayerKind::AuthEnveloped),
        ("-aes-256-cbc", false, LayerKind::Enveloped),
    ] {
        let der = sign(CALENDAR, "rsa2048/organizer", &[], false);
        let inner = multipart_signed_entity(CALENDAR, &der);
        let smime_type = if authenticated {
            "authEnveloped-data"
        } else {
            "enveloped-data"
        };
        let raw = message(&pkcs7_mime_entity(
            smime_type,
            &encrypt(&inner, "rsa2048/attendee", cipher),
        ));
        let inspection = run(&raw, std::slice::from_ref(&bob)).unwrap();
        assert_eq!(inspection.layers()[0].kind(), kind);
        assert!(
            matches!(inspection.layers()[0].outcome(), LayerOutcome::Decrypted { authenticated: a } if *a == authenticated)
        );
        assert!(inspection.layers()[1].outcome().is_verified());
        assert!(signed_calendar(&inspection));
        assert_eq!(inspection.leaves()[0].enclosing(), vec![0, 1]);
        assert_eq!(
            inspection.leaves()[0].in_unauthenticated_encryption(&inspection),
            !authenticated
        );
        // Without a key: reported, nothing inside.
        let inspection = run(&raw, &[]).unwrap();
        assert_eq!(failure_code(&inspection), Some("no-decryption-key"));
        assert!(inspection.leaves().is_empty());
    }
}

#[test]
fn ecdh_recipient_decrypts() {
    let carol = identity("p256/attendee");
    let raw = message(&pkcs7_mime_entity(
        "enveloped-data",
        &encrypt(CALENDAR, "p256/attendee", "-aes-128-cbc"),
    ));
    let inspection = run(&raw, std::slice::from_ref(&carol)).unwrap();
    assert!(
        matches!(
            inspection.layers()[0].outcome(),
            LayerOutcome::Decrypted { .. }
        ),
        "{:?}",
        inspection.layers()[0].outcome()
    );
    assert_eq!(inspection.leaves()[0].body(), CALENDAR_TEXT);
    assert!(!inspection.leaves()[0].is_signed(&inspection));
}

#[test]
fn encrypted_inside_signed_and_signed_twice() {
    let bob = identity("rsa2048/attendee");
    let enveloped = pkcs7_mime_entity(
        "authEnveloped-data",
        &encrypt(CALENDAR, "rsa2048/attendee", "-aes-256-gcm"),
    );
    let der = sign(&enveloped, "rsa2048/organizer", &[], false);
    let raw = message(&multipart_signed_entity(&enveloped, &der));
    let inspection = run(&raw, std::slice::from_ref(&bob)).unwrap();
    assert!(inspection.layers()[0].outcome().is_verified());
    assert!(matches!(
        inspection.layers()[1].outcome(),
        LayerOutcome::Decrypted {
            authenticated: true
        }
    ));
    assert!(signed_calendar(&inspection));

    // Signed twice: attendee's opaque signature around organizer's detached one.
    let inner_der = sign(CALENDAR, "rsa2048/organizer", &[], false);
    let inner = multipart_signed_entity(CALENDAR, &inner_der);
    let outer = sign(&inner, "p256/attendee", &[], true);
    let inspection = run(&message(&pkcs7_mime_entity("signed-data", &outer)), &[]).unwrap();
    assert_eq!(inspection.layers().len(), 2);
    let leaf = &inspection.leaves()[0];
    let emails: Vec<&str> = leaf
        .signers(&inspection)
        .iter()
        .map(|s| s.emails()[0].normalized())
        .collect();
    assert_eq!(emails, ["attendee@example.com", "organizer@example.com"]);
}

#[test]
fn lf_only_stored_copy_verifies_after_canonicalisation() {
    let raw = detached_message("rsa2048/organizer", &[]);
    let stored: Vec<u8> = String::from_utf8(raw)
        .unwrap()
        .replace("\r\n", "\n")
        .into_bytes();
    let inspection = run(&stored, &[]).unwrap();
    assert!(inspection.canonicalized());
    assert!(signed_calendar(&inspection));
}

#[test]
fn calendar_beside_a_signed_part_is_not_signed() {
    let note = b"Content-Type: text/plain\r\n\r\nhello";
    let der = sign(note, "rsa2048/organizer", &[], false);
    let mut mixed =
        b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n".to_vec();
    mixed.extend_from_slice(CALENDAR);
    mixed.extend_from_slice(b"\r\n--outer\r\n");
    mixed.extend_from_slice(&multipart_signed_entity(note, &der));
    mixed.extend_from_slice(b"\r\n--outer--\r\n");
    let inspection = run(&message(&mixed), &[]).unwrap();
    assert!(inspection.layers()[0].outcome().is_verified());
    let calendar = inspection
        .leaves()
        .iter()
        .find(|l| l.content_type() == "text/calendar")
        .unwrap();
    assert!(!calendar.is_signed(&inspection));
    assert!(calendar.signers(&inspection).is_empty());
    let text = inspection
        .leaves()
        .iter()
        .find(|l| l.content_type() == "text/plain")
        .unwrap();
    assert!(text.is_signed(&inspection));
}

/// A forwarded message is walked for its structure only (issue #11: Cyrus processes the first
/// calendar inside one): its calendar is reported, marked forwarded, and its signature is
/// not evaluated (it belongs to the forwarded message, not to this one).
#[test]
fn forwarded_signed_message_is_walked_for_structure_only() {
    let inner = message(&multipart_signed_entity(
        CALENDAR,
        &sign(CALENDAR, "rsa2048/organizer", &[], false),
    ));
    let mut mixed = b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\n".to_vec();
    mixed.extend_from_slice(&inner);
    mixed.extend_from_slice(b"\r\n--outer--\r\n");
    let inspection = run(&message(&mixed), &[]).unwrap();
    assert!(inspection.layers().is_empty());
    let calendar = inspection
        .leaves()
        .iter()
        .find(|l| l.content_type() == "text/calendar")
        .unwrap();
    assert!(calendar.is_forwarded());
    assert!(calendar.calendar().is_some());
    assert!(inspection.signed_leaves().next().is_none());
    assert!(
        !inspection
            .leaves()
            .iter()
            .any(|l| !l.is_forwarded() && l.calendar().is_some())
    );
}

fn special(name: &str, policy: &AlgorithmPolicy, extra: &[&str]) -> &'static str {
    let raw = detached_message(&format!("special/{name}"), extra);
    let inspection = run_with(&raw, &[], policy, false).unwrap();
    assert!(!signed_calendar(&inspection));
    failure_code(&inspection).unwrap()
}

#[test]
fn certificate_failures_are_typed() {
    let policy = AlgorithmPolicy::default();
    assert_eq!(special("expired", &policy, &[]), "certificate-expired");
    assert_eq!(special("untrusted", &policy, &[]), "untrusted-certificate");
    assert_eq!(special("revoked", &policy, &[]), "certificate-revoked");
    assert_eq!(special("wrong-eku", &policy, &[]), "certificate-purpose");
    assert_eq!(special("weak-rsa1024", &policy, &[]), "weak-algorithm");
}

#[test]
fn subject_email_only_identity_is_read() {
    let inspection = run(&detached_message("special/subject-email-only", &[]), &[]).unwrap();
    let signers = inspection.leaves()[0].signers(&inspection);
    assert_eq!(signers[0].emails()[0].normalized(), "organizer@example.com");
}

#[test]
fn sha1_is_weak_unless_allowed() {
    let raw = detached_message("rsa2048/organizer", &["-md", "sha1"]);
    let inspection = run(&raw, &[]).unwrap();
    match &inspection.layers()[0].outcome() {
        LayerOutcome::SignatureFailed {
            failure: Failure::WeakAlgorithm { algorithm },
            ..
        } => {
            assert_eq!(algorithm, "sha1")
        }
        other => panic!("{other:?}"),
    }
    let allow = AlgorithmPolicy {
        danger_allow_sha1: true,
        ..AlgorithmPolicy::default()
    };
    let inspection = run_with(&raw, &[], &allow, false).unwrap();
    assert!(signed_calendar(&inspection));
}

#[test]
fn certs_only_is_not_a_signature() {
    let dir = scratch();
    let out = dir.join("p7");
    let status = Command::new("openssl")
        .args(["crl2pkcs7", "-nocrl", "-outform", "DER", "-certfile"])
        .arg(path("rsa2048/organizer", "cert"))
        .arg("-out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let der = std::fs::read(&out).unwrap();
    let inspection = run(&message(&multipart_signed_entity(CALENDAR, &der)), &[]).unwrap();
    assert_eq!(failure_code(&inspection), Some("no-signers"));
    assert!(!signed_calendar(&inspection));
}

#[test]
fn detached_signature_with_econtent_is_rejected() {
    let der = sign(CALENDAR, "rsa2048/organizer", &[], true);
    let inspection = run(&message(&multipart_signed_entity(CALENDAR, &der)), &[]).unwrap();
    assert_eq!(failure_code(&inspection), Some("econtent-confusion"));
    assert!(!signed_calendar(&inspection));
}

#[test]
fn every_signer_must_verify() {
    let (cert, key) = (
        path("special/expired", "cert"),
        path("special/expired", "key"),
    );
    let raw = detached_message("rsa2048/organizer", &["-signer", &cert, "-inkey", &key]);
    let inspection = run(&raw, &[]).unwrap();
    match &inspection.layers()[0].outcome() {
        LayerOutcome::SignatureFailed { failure, signers } => {
            assert_eq!(failure.code(), "certificate-expired");
            assert_eq!(signers.len(), 2);
            assert!(signers[0].failure.is_none());
            assert!(signers[1].failure.is_some());
        }
        other => panic!("{other:?}"),
    }
    assert!(!signed_calendar(&inspection));
}

#[test]
fn non_root_encrypted_part_is_not_decrypted() {
    let bob = identity("rsa2048/attendee");
    let enveloped = pkcs7_mime_entity(
        "enveloped-data",
        &encrypt(CALENDAR, "rsa2048/attendee", "-aes-256-cbc"),
    );
    let mut mixed = b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: text/html\r\n\r\n<img src=\"http://attacker.example/\r\n--outer\r\n".to_vec();
    mixed.extend_from_slice(&enveloped);
    mixed.extend_from_slice(b"\r\n--outer--\r\n");
    let raw = message(&mixed);
    let inspection = run(&raw, std::slice::from_ref(&bob)).unwrap();
    assert_eq!(failure_code(&inspection), Some("not-decrypted-non-root"));
    assert!(
        !inspection
            .leaves()
            .iter()
            .any(|l| l.body() == CALENDAR_TEXT)
    );
    let opted_in = run_with(
        &raw,
        std::slice::from_ref(&bob),
        &AlgorithmPolicy::default(),
        true,
    )
    .unwrap();
    assert!(opted_in.leaves().iter().any(|l| l.body() == CALENDAR_TEXT));
}

#[test]
fn gcm_tag_flip_yields_no_plaintext() {
    let bob = identity("rsa2048/attendee");
    let mut der = encrypt(CALENDAR, "rsa2048/attendee", "-aes-256-gcm");
    // The MAC (GCM tag) is the last element of AuthEnvelopedData.
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let inspection = run(
        &message(&pkcs7_mime_entity("authEnveloped-data", &der)),
        &[bob],
    )
    .unwrap();
    assert_eq!(failure_code(&inspection), Some("decryption-failed"));
    assert!(inspection.leaves().is_empty());
}

#[test]
fn header_protection_mismatch_reported() {
    let content =
        b"From: mallory@example.net\r\nSubject: Invitation\r\nContent-Type: text/plain\r\n\r\nhi";
    let der = sign(content, "rsa2048/organizer", &[], false);
    let inspection = run(&message(&multipart_signed_entity(content, &der)), &[]).unwrap();
    assert!(inspection.layers()[0].outcome().is_verified());
    assert_eq!(inspection.header_mismatches().len(), 1);
    assert_eq!(
        inspection.header_mismatches()[0].inner,
        "mallory@example.net"
    );
    assert_eq!(inspection.outer().from, ["organizer@example.com"]);
}

/// Issue 17: the walk's decoder comparison of the signature part used mail-parser's parse of
/// the whole message, and the inspection hands that parse's calendar parts on, equal to a
/// parse of its own; a bare-LF message (walked as a canonical copy) hands none on.
#[test]
fn the_walks_mail_parser_reading_is_the_accept_directions() {
    let raw = detached_message("rsa2048/organizer", &[]);
    let inspection = run(&raw, &[]).unwrap();
    let handed_on = inspection
        .mail_parser_calendars()
        .expect("parsed by the walk");
    assert_eq!(
        handed_on,
        imipsec_smime::calendar::mail_parser_calendars(&raw)
    );
    assert_eq!(handed_on.len(), 1);
    let calendar = handed_on[0].body.clone().unwrap();
    assert_eq!(inspection.leaves()[0].body_range(), Some(calendar));
    let bare_lf: Vec<u8> = String::from_utf8(raw)
        .unwrap()
        .replace("\r\n", "\n")
        .into_bytes();
    let inspection = run(&bare_lf, &[]).unwrap();
    assert!(inspection.canonicalized());
    assert_eq!(inspection.mail_parser_calendars(), None);
}

#[test]
fn verify_signed_data_alone_and_chain_cache() {
    let der = sign(CALENDAR, "rsa2048/organizer", &[], false);
    let trust = trust();
    let policy = AlgorithmPolicy::default();
    let limits = Limits::default();
    let signers = verify_signed_data(&der, Some(CALENDAR), &trust, AT, &policy, &limits).unwrap();
    assert_eq!(signers.len(), 1);
    assert_eq!(trust.cache_stats(), (0, 1));
    verify_signed_data(&der, Some(CALENDAR), &trust, AT, &policy, &limits).unwrap();
    assert_eq!(trust.cache_stats(), (1, 1));
    let bad = verify_signed_data(&der, Some(b"other"), &trust, AT, &policy, &limits).unwrap_err();
    assert_eq!(bad.code(), "bad-signature");
}

#[test]
fn limits_are_enforced() {
    let raw = detached_message("rsa2048/organizer", &[]);
    let trust = trust();
    let policy = AlgorithmPolicy::default();
    let run_limits = |limits: Limits| {
        inspect(
            &raw,
            &InspectOptions {
                trust: &trust,
                at: AT,
                revocation: imipsec_smime::RevocationMode::default(),
                revocation_source: None,
                policy: &policy,
                identities: &[],
                limits: &limits,
                danger_decrypt_non_root: false,
                openpgp: None,
            },
        )
    };
    let code = |r: Result<Inspection, SmimeError>| r.unwrap_err().code();
    assert_eq!(
        code(run_limits(Limits {
            message_bytes: 100,
            ..Limits::default()
        })),
        "limit-exceeded"
    );
    assert_eq!(
        code(run_limits(Limits {
            mime_depth: 1,
            ..Limits::default()
        })),
        "limit-exceeded"
    );
    assert_eq!(
        code(run_limits(Limits {
            parts: 2,
            ..Limits::default()
        })),
        "limit-exceeded"
    );
    let certs = run_limits(Limits {
        certificates: 1,
        ..Limits::default()
    })
    .unwrap();
    assert_eq!(failure_code(&certs), Some("limit-exceeded"));
}

/// Acceptance point 4: flipping any bit-0 of any byte of the signed part (headers included) or
/// of the signature part must leave no verified layer covering the original calendar.
#[test]
fn tampering_any_byte_is_detected() {
    let raw = detached_message("rsa2048/organizer", &[]);
    let start = find(&raw, b"--sig-boundary\r\n") + b"--sig-boundary\r\n".len();
    let end = find(&raw, b"\r\n--sig-boundary--");
    assert!(signed_calendar(&run(&raw, &[]).unwrap()));
    let mut detected = 0usize;
    for position in start..end {
        // The delimiter between the two parts is checked too: it must not let anything pass.
        let mut mutated = raw.clone();
        mutated[position] ^= 0x01;
        match run(&mutated, &[]) {
            Err(_) => detected += 1,
            Ok(inspection) => {
                assert!(
                    !inspection
                        .layers()
                        .iter()
                        .any(|l| l.outcome().is_verified()),
                    "flip at {position} ({:?}) still verified: {:?}",
                    raw[position] as char,
                    String::from_utf8_lossy(
                        &raw[position.saturating_sub(60)..(position + 20).min(raw.len())]
                    )
                );
                detected += 1;
            }
        }
    }
    assert_eq!(detected, end - start);
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

/// Thunderbird's corpus: Alice is identified only by the subject emailAddress.
#[test]
#[ignore = "needs IMIPSEC_CORPORA=../shared/corpora"]
fn thunderbird_alice_sha256_detached() {
    // Regression: this test read a relative IMIPSEC_CORPORA against the crate directory (cargo
    // runs tests there) while CI gives it relative to the workspace root; the shared helper
    // resolves it against the workspace root like every other corpus reader of this crate.
    let dir = shared::corpora().join("thunderbird/smime");
    let trust = TrustStore::from_pem_files(&[dir.join("TestCA.pem")], &[] as &[PathBuf]).unwrap();
    let policy = AlgorithmPolicy::default();
    let limits = Limits::default();
    let raw = std::fs::read(dir.join("alice.dsig.SHA256.multipart.eml")).unwrap();
    let options = InspectOptions {
        trust: &trust,
        at: AT,
        revocation: imipsec_smime::RevocationMode::default(),
        revocation_source: None,
        policy: &policy,
        identities: &[],
        limits: &limits,
        danger_decrypt_non_root: false,
        openpgp: None,
    };
    let inspection = inspect(&raw, &options).unwrap();
    assert!(
        inspection.layers()[0].outcome().is_verified(),
        "{:?}",
        inspection.layers()[0].outcome()
    );
    let signers = inspection.leaves()[0].signers(&inspection);
    assert_eq!(signers[0].emails()[0].normalized(), "Alice@example.com");
    let bad = std::fs::read(dir.join("alice.dsig.SHA256.multipart.bad.eml")).unwrap();
    assert_eq!(
        failure_code(&inspect(&bad, &options).unwrap()),
        Some("bad-signature")
    );
    let confused =
        std::fs::read(dir.join("alice.dsig.SHA256.multipart.mismatch-econtent.eml")).unwrap();
    assert_eq!(
        failure_code(&inspect(&confused, &options).unwrap()),
        Some("econtent-confusion")
    );
}

/// Ed25519 (RFC 8419): a leaf issued by the test intermediate at test time. Its validity starts
/// when the test runs, so this test evaluates at 2030-01-01 (the CA certificates and the CRL are
/// valid until 2045).
#[test]
fn ed25519_signer_verifies() {
    let dir = scratch();
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "openssl {args:?}");
    };
    std::fs::write(
        dir.join("ext.cnf"),
        "[v3]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
extendedKeyUsage=emailProtection\nsubjectAltName=email:ed@example.com\n",
    )
    .unwrap();
    let intermediate = certs().join("intermediate.cert.pem");
    let intermediate_key = certs().join("intermediate.key.pem");
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", "ed.key.pem"]);
    openssl(&[
        "req",
        "-new",
        "-key",
        "ed.key.pem",
        "-subj",
        "/O=imipsec test PKI/CN=Ed",
        "-out",
        "ed.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "ed.csr",
        "-CA",
        intermediate.to_str().unwrap(),
        "-CAkey",
        intermediate_key.to_str().unwrap(),
        "-set_serial",
        "0x7777",
        "-days",
        "3650",
        "-extfile",
        "ext.cnf",
        "-extensions",
        "v3",
        "-out",
        "ed.cert.pem",
    ]);
    // OpenSSL 3.0's CMS cannot sign with Ed25519, so the SignedData is built here by hand.
    let cert = X509::from_pem(&std::fs::read(dir.join("ed.cert.pem")).unwrap()).unwrap();
    let key = PKey::private_key_from_pem(&std::fs::read(dir.join("ed.key.pem")).unwrap()).unwrap();
    let intermediate_der = X509::from_pem(&std::fs::read(&intermediate).unwrap())
        .unwrap()
        .to_der()
        .unwrap();
    let der = ed25519_signed_data(&cert, &key, &intermediate_der, CALENDAR);
    let trust = trust();
    let policy = AlgorithmPolicy::default();
    let limits = Limits::default();
    let at = datetime!(2030-01-01 00:00:00 UTC);
    let signers = verify_signed_data(&der, Some(CALENDAR), &trust, at, &policy, &limits).unwrap();
    assert_eq!(signers[0].emails()[0].normalized(), "ed@example.com");
    let tampered = verify_signed_data(&der, Some(b"other"), &trust, at, &policy, &limits);
    assert_eq!(tampered.unwrap_err().code(), "bad-signature");
    std::fs::remove_dir_all(&dir).ok();
}

/// RFC 8551 §3.1 wrapper: the signed content is a message/rfc822 whose headers are protected.
#[test]
fn message_rfc822_wrapper_is_walked_and_its_headers_compared() {
    let mut content = b"Content-Type: message/rfc822\r\n\r\nFrom: mallory@example.net\r\n\
To: attendee@example.com\r\nSubject: Invitation\r\nMIME-Version: 1.0\r\n"
        .to_vec();
    content.extend_from_slice(CALENDAR);
    let der = sign(&content, "rsa2048/organizer", &[], false);
    let inspection = run(&message(&multipart_signed_entity(&content, &der)), &[]).unwrap();
    assert!(signed_calendar(&inspection));
    let fields: Vec<_> = inspection
        .header_mismatches()
        .iter()
        .map(|m| m.field)
        .collect();
    assert_eq!(fields, [imipsec_smime::HeaderField::From]);
}

/// No truncation of a nested (encrypted, signed) message panics; every prefix is either an
/// error or an inspection without a verified calendar.
#[test]
fn truncated_messages_never_panic() {
    let bob = identity("rsa2048/attendee");
    let der = sign(CALENDAR, "rsa2048/organizer", &[], false);
    let inner = multipart_signed_entity(CALENDAR, &der);
    let raw = message(&pkcs7_mime_entity(
        "authEnveloped-data",
        &encrypt(&inner, "rsa2048/attendee", "-aes-256-gcm"),
    ));
    assert!(signed_calendar(
        &run(&raw, std::slice::from_ref(&bob)).unwrap()
    ));
    for length in (0..raw.len()).step_by(7) {
        if let Ok(inspection) = run(&raw[..length], std::slice::from_ref(&bob)) {
            assert!(
                !signed_calendar(&inspection),
                "prefix of {length} bytes verified"
            );
        }
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let length = content.len();
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes: Vec<u8> = length
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

const OID_SHA512: &[u8] = &[
    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
];
const OID_DATA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
];
const OID_SIGNED_DATA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
];
const OID_CONTENT_TYPE: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03,
];
const OID_MESSAGE_DIGEST: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04,
];
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// RFC 8419 SignedData: signed attributes, SHA-512 digest, pure Ed25519 over the attributes.
fn ed25519_signed_data(
    cert: &X509,
    key: &PKey<Private>,
    intermediate: &[u8],
    content: &[u8],
) -> Vec<u8> {
    let digest = openssl::hash::hash(openssl::hash::MessageDigest::sha512(), content).unwrap();
    let mut attributes = tlv(0x30, &[OID_CONTENT_TYPE, &tlv(0x31, OID_DATA)].concat());
    attributes.extend(tlv(
        0x30,
        &[OID_MESSAGE_DIGEST, &tlv(0x31, &tlv(0x04, &digest))].concat(),
    ));
    let mut signer = openssl::sign::Signer::new_without_digest(key).unwrap();
    let signature = signer.sign_oneshot_to_vec(&tlv(0x31, &attributes)).unwrap();
    let mut serial = cert.serial_number().to_bn().unwrap().to_vec();
    if serial.first().is_some_and(|b| b & 0x80 != 0) {
        serial.insert(0, 0);
    }
    let sid = tlv(
        0x30,
        &[cert.issuer_name().to_der().unwrap(), tlv(0x02, &serial)].concat(),
    );
    let signer_info = tlv(
        0x30,
        &[
            tlv(0x02, &[1]),
            sid,
            tlv(0x30, OID_SHA512),
            tlv(0xa0, &attributes),
            tlv(0x30, OID_ED25519),
            tlv(0x04, &signature),
        ]
        .concat(),
    );
    let signed_data = tlv(
        0x30,
        &[
            tlv(0x02, &[1]),
            tlv(0x31, &tlv(0x30, OID_SHA512)),
            tlv(0x30, OID_DATA),
            tlv(
                0xa0,
                &[cert.to_der().unwrap(), intermediate.to_vec()].concat(),
            ),
            tlv(0x31, &signer_info),
        ]
        .concat(),
    );
    tlv(0x30, &[OID_SIGNED_DATA, &tlv(0xa0, &signed_data)].concat())
}

#[test]
fn revocation_modes() {
    let raw = detached_message("rsa2048/organizer", &[]);
    let policy = AlgorithmPolicy::default();
    let limits = Limits::default();
    let root = certs().join("root.cert.pem");
    let crl = certs().join("intermediate.crl.pem");
    let check = |trust: TrustStore, revocation: RevocationMode| {
        let options = InspectOptions {
            trust: &trust,
            at: AT,
            revocation,
            revocation_source: None,
            policy: &policy,
            identities: &[],
            limits: &limits,
            danger_decrypt_non_root: false,
            openpgp: None,
        };
        failure_code(&inspect(&raw, &options).unwrap())
    };
    let no_crl = || TrustStore::from_pem_files(&[&root], &[] as &[PathBuf]).unwrap();
    let with_crl = || TrustStore::from_pem_files(&[&root], &[&crl]).unwrap();
    assert_eq!(check(no_crl(), RevocationMode::IfAvailable), None);
    assert_eq!(check(no_crl(), RevocationMode::Off), None);
    // Issue #13: under `require` a certificate without any revocation answer is untrusted
    // (the detail names it; see tests/revocation.rs).
    assert_eq!(
        check(no_crl(), RevocationMode::Require),
        Some("untrusted-certificate")
    );
    assert_eq!(check(with_crl(), RevocationMode::IfAvailable), None);
    // The root publishes no CRL for the intermediate.
    assert_eq!(
        check(with_crl(), RevocationMode::Require),
        Some("untrusted-certificate")
    );
}

/// Regression: decrypted or opaque-signed content without a MIME header section (OpenSSL's
/// `cms -encrypt` / `-sign` without `-text`) made the whole `inspect` fail as malformed-mime
/// (Thunderbird interop, RFC 4134 5.1/5.3, RFC 9216, OpenSSL ciphertext_from_1_1_1). It is one
/// text/plain leaf (RFC 2045 §5.2 default), never a calendar.
#[test]
fn headerless_layer_content_is_a_text_plain_leaf() {
    let bob = identity("rsa2048/attendee");
    let bare = b"This is some sample content.\r\nIt has no header section.\r\n";
    let raw = message(&pkcs7_mime_entity(
        "authEnveloped-data",
        &encrypt(bare, "rsa2048/attendee", "-aes-256-gcm"),
    ));
    let inspection = run(&raw, std::slice::from_ref(&bob)).unwrap();
    assert!(matches!(
        inspection.layers()[0].outcome(),
        LayerOutcome::Decrypted {
            authenticated: true
        }
    ));
    assert_eq!(inspection.leaves().len(), 1);
    assert_eq!(inspection.leaves()[0].content_type(), "text/plain");
    assert_eq!(inspection.leaves()[0].body(), bare);
    assert!(!signed_calendar(&inspection));
    // Opaque-signed bare content: verified, and still only text/plain.
    let der = sign(bare, "rsa2048/organizer", &[], true);
    let inspection = run(&message(&pkcs7_mime_entity("signed-data", &der)), &[]).unwrap();
    assert!(inspection.layers()[0].outcome().is_verified());
    assert_eq!(inspection.leaves()[0].content_type(), "text/plain");
    assert!(!signed_calendar(&inspection));
    // Bare iCalendar text: its first line reads as a header field, so it is a header section
    // without body; either way no text/calendar leaf comes out of it.
    let body = CALENDAR.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let der = sign(&CALENDAR[body..], "rsa2048/organizer", &[], true);
    let inspection = run(&message(&pkcs7_mime_entity("signed-data", &der)), &[]).unwrap();
    assert!(inspection.layers()[0].outcome().is_verified());
    assert!(
        inspection
            .leaves()
            .iter()
            .all(|leaf| leaf.content_type() != "text/calendar")
    );
}

/// Malformed content inside a security layer fails that layer (`malformed-mime`), not the
/// whole message: a calendar beside it is still reported (as unsigned).
#[test]
fn malformed_layer_content_fails_only_that_layer() {
    let inner = b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\r\nno close\r\n";
    let der = sign(inner, "rsa2048/organizer", &[], true);
    let opaque = pkcs7_mime_entity("signed-data", &der);
    let mut mixed =
        b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n".to_vec();
    mixed.extend_from_slice(&opaque);
    mixed.extend_from_slice(b"\r\n--outer\r\nContent-Type: text/calendar\r\n\r\n");
    mixed.extend_from_slice(CALENDAR);
    mixed.extend_from_slice(b"\r\n--outer--\r\n");
    let inspection = run(&message(&mixed), &[]).unwrap();
    assert_eq!(inspection.layers().len(), 1);
    assert_eq!(failure_code(&inspection), Some("malformed-mime"));
    assert!(matches!(
        inspection.layers()[0].outcome().failure(),
        Some(Failure::MalformedContent { .. })
    ));
    assert_eq!(inspection.leaves().len(), 1);
    assert_eq!(inspection.leaves()[0].content_type(), "text/calendar");
    assert!(!inspection.leaves()[0].is_signed(&inspection));
}

/// Issue #15: `Leaf::is_signed` judged a leaf against whatever inspection it was handed, so
/// a leaf of a message whose signature failed, held against the inspection of another,
/// validly signed message with the same layer numbering, counted as signed (leaves of two
/// messages mixed). A leaf is now tied to the walk that found it.
#[test]
fn leaf_of_one_message_is_not_signed_by_another_messages_layers() {
    let genuine = run(&detached_message("rsa2048/organizer", &[]), &[]).unwrap();
    assert!(
        signed_calendar(&genuine),
        "control: the genuine message is signed"
    );
    // The same signature over other content: the signature layer fails.
    let mut forged = detached_message("rsa2048/organizer", &[]);
    let at = forged
        .windows(b"UID:1".len())
        .rposition(|w| w == b"UID:1")
        .unwrap();
    forged[at + b"UID:".len()] = b'2';
    let forged = run(&forged, &[]).unwrap();
    assert!(
        !signed_calendar(&forged),
        "control: the forged message is not signed"
    );
    let forged_calendar = forged
        .leaves()
        .iter()
        .find(|leaf| leaf.content_type() == "text/calendar")
        .unwrap();
    assert_eq!(forged_calendar.enclosing(), genuine.leaves()[0].enclosing());
    assert!(!forged_calendar.is_signed(&genuine));
    assert!(forged_calendar.signers(&genuine).is_empty());
    assert!(forged_calendar.in_unauthenticated_encryption(&genuine));
    // The calendar-facing view yields only the genuine message's own parts.
    assert!(
        genuine
            .signed_parts()
            .all(|part| part.leaf().is_signed(&genuine))
    );
    assert_eq!(forged.signed_parts().count(), 0);
}

/// A message with a duplicate Content-Type deep in its body, every line ended by `eol`; the
/// second Content-Type field is the offending byte.
fn duplicate_content_type_message(eol: &str) -> Vec<u8> {
    let mut text = String::new();
    for line in [
        "From: organizer@example.com",
        "To: attendee@example.com",
        "Subject: Invitation",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=\"b\"",
        "",
    ] {
        text.push_str(line);
        text.push_str(eol);
    }
    for index in 0..40 {
        text.push_str(&format!(
            "--b{eol}Content-Type: text/plain{eol}{eol}line {index}{eol}"
        ));
    }
    for line in [
        "--b",
        "Content-Type: text/plain",
        "Content-Type: text/calendar; method=REQUEST",
        "",
        "BEGIN:VCALENDAR",
        "--b--",
        "",
    ] {
        text.push_str(line);
        text.push_str(eol);
    }
    text.into_bytes()
}

/// MIME diagnostics give byte offsets into the message as received (issue #12: "byte 2172"
/// in a 2094-byte mbox file, because the offset counted a CRLF-converted copy). A message
/// stored with bare LF line ends and the same message in CRLF both report the offset of the
/// offending header field in their own bytes.
#[test]
fn malformed_mime_offsets_point_into_the_bytes_as_received() {
    for eol in ["\n", "\r\n"] {
        let raw = duplicate_content_type_message(eol);
        let error = run(&raw, &[]).unwrap_err();
        let SmimeError::MalformedMime { offset, layer, .. } = error else {
            panic!("{eol:?}: {error:?}");
        };
        assert_eq!(layer, None);
        assert!(
            offset < raw.len(),
            "{eol:?}: byte {offset} of {}",
            raw.len()
        );
        assert!(
            raw[offset..].starts_with(b"Content-Type: text/calendar"),
            "{eol:?}: byte {offset} is {:?}",
            String::from_utf8_lossy(&raw[offset..(offset + 40).min(raw.len())])
        );
    }
}

/// The same inside a security layer: opaque-signed content stored with bare LF line ends
/// reports the defect at its offset in the signed content as it is, not in a CRLF copy.
#[test]
fn malformed_layer_content_offsets_count_the_content_as_signed() {
    for eol in ["\n", "\r\n"] {
        let content = duplicate_content_type_message(eol);
        let der = sign(&content, "rsa2048/attendee", &[], true);
        let inspection = run(&message(&pkcs7_mime_entity("signed-data", &der)), &[]).unwrap();
        let Some(Failure::MalformedContent { offset, .. }) =
            inspection.layers()[0].outcome().failure()
        else {
            panic!("{eol:?}: {:?}", inspection.layers()[0].outcome());
        };
        let offset = *offset;
        assert!(
            offset < content.len(),
            "{eol:?}: byte {offset} of {}",
            content.len()
        );
        assert!(
            content[offset..].starts_with(b"Content-Type: text/calendar"),
            "{eol:?}: byte {offset}"
        );
    }
}
