//! Every named limit of [`Limits`] at the limit (passes) and one past it (its own
//! [`LimitKind`]), on messages signed here with the test PKI (certs/README.md) through the
//! crate's signer and, for two SignerInfos, the `openssl cms` CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use imipsec_smime::keys::Identity;
use imipsec_smime::sign::{SignOptions, sign_detached};
use imipsec_smime::{
    AlgorithmPolicy, Failure, InspectOptions, Inspection, LayerOutcome, LimitKind, Limits,
    SmimeError, TrustStore, inspect, verify_signed_data,
};
use time::OffsetDateTime;
use time::macros::datetime;

const AT: OffsetDateTime = datetime!(2026-06-01 00:00:00 UTC);
const ENTITY: &[u8] = b"Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n\
BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n";

fn certs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../certs")
}

fn trust() -> TrustStore {
    TrustStore::from_pem_files(&[certs().join("root.cert.pem")], &[] as &[PathBuf]).unwrap()
}

fn identity(name: &str) -> Identity {
    let mut pem = std::fs::read(certs().join(format!("{name}.key.pem"))).unwrap();
    pem.extend(std::fs::read(certs().join(format!("{name}.chain.pem"))).unwrap());
    Identity::from_pem(&pem).unwrap()
}

/// A message whose root is multipart/signed over ENTITY: three entities, depth 2, two
/// certificates (signer and intermediate) in one SignerInfo's SignedData.
fn signed_message() -> Vec<u8> {
    let signed = sign_detached(
        ENTITY,
        &identity("rsa2048/organizer"),
        &SignOptions::default(),
    )
    .unwrap();
    let mut raw = b"From: organizer@example.com\r\nTo: attendee@example.com\r\n\
MIME-Version: 1.0\r\n"
        .to_vec();
    raw.extend_from_slice(&signed);
    raw
}

fn run(raw: &[u8], limits: &Limits) -> Result<Inspection, SmimeError> {
    let trust = trust();
    inspect(
        raw,
        &InspectOptions {
            trust: &trust,
            at: AT,
            revocation: imipsec_smime::RevocationMode::default(),
            revocation_source: None,
            policy: &AlgorithmPolicy::default(),
            identities: &[],
            limits,
            danger_decrypt_non_root: false,
            openpgp: None,
        },
    )
}

fn verified(inspection: &Inspection) -> bool {
    !inspection.layers().is_empty()
        && inspection
            .layers()
            .iter()
            .all(|l| l.outcome().is_verified())
}

#[track_caller]
fn assert_whole_message_limit(result: Result<Inspection, SmimeError>, kind: LimitKind) {
    match result {
        Err(SmimeError::LimitExceeded(found)) => assert_eq!(found, kind),
        other => panic!("expected {kind:?}, got {other:?}"),
    }
}

#[track_caller]
fn assert_layer_limit(inspection: &Inspection, kind: LimitKind) {
    match &inspection.layers()[0].outcome() {
        LayerOutcome::SignatureFailed {
            failure: Failure::LimitExceeded(found),
            ..
        } => assert_eq!(*found, kind),
        other => panic!("expected {kind:?}, got {other:?}"),
    }
}

#[test]
fn message_bytes_at_and_past_the_limit() {
    let raw = signed_message();
    let at = Limits {
        message_bytes: raw.len(),
        ..Limits::default()
    };
    assert!(verified(&run(&raw, &at).unwrap()));
    let past = Limits {
        message_bytes: raw.len() - 1,
        ..Limits::default()
    };
    assert_whole_message_limit(run(&raw, &past), LimitKind::MessageBytes);
}

#[test]
fn mime_depth_at_and_past_the_limit() {
    let raw = signed_message();
    let at = Limits {
        mime_depth: 2,
        ..Limits::default()
    };
    assert!(verified(&run(&raw, &at).unwrap()));
    let past = Limits {
        mime_depth: 1,
        ..Limits::default()
    };
    assert_whole_message_limit(run(&raw, &past), LimitKind::MimeDepth);
}

#[test]
fn parts_at_and_past_the_limit() {
    let raw = signed_message();
    let at = Limits {
        parts: 3,
        ..Limits::default()
    };
    assert!(verified(&run(&raw, &at).unwrap()));
    let past = Limits {
        parts: 2,
        ..Limits::default()
    };
    assert_whole_message_limit(run(&raw, &past), LimitKind::Parts);
}

#[test]
fn certificates_at_and_past_the_limit() {
    let raw = signed_message();
    let at = Limits {
        certificates: 2,
        ..Limits::default()
    };
    assert!(verified(&run(&raw, &at).unwrap()));
    let past = Limits {
        certificates: 1,
        ..Limits::default()
    };
    assert_layer_limit(&run(&raw, &past).unwrap(), LimitKind::Certificates);
}

/// A detached SignedData over ENTITY with two SignerInfos (organizer and attendee), DER.
fn two_signer_der() -> Vec<u8> {
    let path = |name: &str| certs().join(name).to_string_lossy().into_owned();
    let mut child = Command::new("openssl")
        .args([
            "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER",
        ])
        .args(["-signer", &path("rsa2048/organizer.cert.pem")])
        .args(["-inkey", &path("rsa2048/organizer.key.pem")])
        .args(["-signer", &path("rsa2048/attendee.cert.pem")])
        .args(["-inkey", &path("rsa2048/attendee.key.pem")])
        .args(["-certfile", &path("intermediate.cert.pem")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the openssl CLI is installed");
    child.stdin.take().unwrap().write_all(ENTITY).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    output.stdout
}

fn verify(der: &[u8], limits: &Limits) -> Result<usize, Failure> {
    verify_signed_data(
        der,
        Some(ENTITY),
        &trust(),
        AT,
        &AlgorithmPolicy::default(),
        limits,
    )
    .map(|signers| signers.len())
}

#[test]
fn signer_infos_at_and_past_the_limit() {
    let der = two_signer_der();
    let at = Limits {
        signer_infos: 2,
        ..Limits::default()
    };
    assert_eq!(verify(&der, &at), Ok(2));
    let past = Limits {
        signer_infos: 1,
        ..Limits::default()
    };
    assert!(matches!(
        verify(&der, &past),
        Err(Failure::LimitExceeded(LimitKind::SignerInfos))
    ));
}

#[test]
fn cms_bytes_at_and_past_the_limit() {
    let der = two_signer_der();
    let at = Limits {
        cms_bytes: der.len(),
        ..Limits::default()
    };
    assert_eq!(verify(&der, &at), Ok(2));
    let past = Limits {
        cms_bytes: der.len() - 1,
        ..Limits::default()
    };
    assert!(matches!(
        verify(&der, &past),
        Err(Failure::LimitExceeded(LimitKind::CmsBytes))
    ));
}

// ---------------------------------------------------------------------------------------------
// The per-message work budget (issue #11 item 7): each at the limit and one unit past it.

/// (tag, whole length, content) of the DER TLV at the start of `bytes`.
fn tlv(bytes: &[u8]) -> (u8, usize, &[u8]) {
    let (header, len) = if bytes[1] < 0x80 {
        (2, usize::from(bytes[1]))
    } else {
        let n = usize::from(bytes[1] & 0x7f);
        let len = bytes[2..2 + n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (2 + n, len)
    };
    (bytes[0], header + len, &bytes[header..header + len])
}

fn children(mut content: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (_, total, _) = tlv(content);
        out.push(&content[..total]);
        content = &content[total..];
    }
    out
}

/// Total length of the signed attributes of every SignerInfo of a ContentInfo(SignedData).
fn signed_attributes_len(der: &[u8]) -> usize {
    let (_, _, content_info) = tlv(der);
    let (_, _, explicit) = tlv(children(content_info)[1]);
    let (_, _, signed_data) = tlv(explicit);
    let signer_infos = *children(signed_data).last().unwrap();
    let (_, _, signer_infos) = tlv(signer_infos);
    children(signer_infos)
        .into_iter()
        .map(|info| {
            let (_, _, info) = tlv(info);
            let attributes = children(info).into_iter().find(|f| f[0] == 0xa0).unwrap();
            tlv(attributes).1
        })
        .sum()
}

fn verify_with(der: &[u8], limits: &Limits) -> Result<usize, Failure> {
    verify(der, limits)
}

/// One public-key operation per signer at its key's weight (RSA-2048: 1) and, once per
/// SignedData and signer certificate, three per other offered certificate for its chain
/// validation: two RSA-2048 signers with three certificates cost 2 x (1 + 6) = 14.
#[test]
fn signature_verifications_at_and_past_the_limit() {
    let der = two_signer_der();
    let at = Limits {
        signature_verifications: 14,
        ..Limits::default()
    };
    assert_eq!(verify_with(&der, &at), Ok(2));
    let past = Limits {
        signature_verifications: 13,
        ..Limits::default()
    };
    assert_eq!(
        verify_with(&der, &past),
        Err(Failure::LimitExceeded(LimitKind::SignatureVerifications))
    );
    // The same through `inspect`: one signer, two certificates, 1 + 3. A budget that runs
    // out ends the whole message.
    let raw = signed_message();
    let at = Limits {
        signature_verifications: 4,
        ..Limits::default()
    };
    assert!(verified(&run(&raw, &at).unwrap()));
    let past = Limits {
        signature_verifications: 3,
        ..Limits::default()
    };
    assert_whole_message_limit(run(&raw, &past), LimitKind::SignatureVerifications);
}

/// Certificates (and CRLs) parsed over the whole message, counted before each parse.
#[test]
fn certificates_per_message_at_and_past_the_limit() {
    let der = two_signer_der();
    let at = Limits {
        certificates_per_message: 3,
        ..Limits::default()
    };
    assert_eq!(verify_with(&der, &at), Ok(2));
    let past = Limits {
        certificates_per_message: 2,
        ..Limits::default()
    };
    assert_eq!(
        verify_with(&der, &past),
        Err(Failure::LimitExceeded(LimitKind::MessageCertificates))
    );
    let raw = signed_message();
    let at = Limits {
        certificates_per_message: 2,
        ..Limits::default()
    };
    assert!(verified(&run(&raw, &at).unwrap()));
    let past = Limits {
        certificates_per_message: 1,
        ..Limits::default()
    };
    assert_whole_message_limit(run(&raw, &past), LimitKind::MessageCertificates);
}

/// Bytes hashed: the content once per digest algorithm (both signers use SHA-256 and share
/// the digest), plus each signer's signed attributes.
#[test]
fn hashed_bytes_at_and_past_the_limit() {
    let der = two_signer_der();
    let hashed = ENTITY.len() + signed_attributes_len(&der);
    let at = Limits {
        hashed_bytes: hashed,
        hashed_bytes_factor: 0,
        ..Limits::default()
    };
    assert_eq!(verify_with(&der, &at), Ok(2));
    let past = Limits {
        hashed_bytes: hashed - 1,
        hashed_bytes_factor: 0,
        ..Limits::default()
    };
    assert_eq!(
        verify_with(&der, &past),
        Err(Failure::LimitExceeded(LimitKind::HashedBytes))
    );
    // The factor scales with the message (DER + detached content): one pass fits in 1x.
    let scaled = Limits {
        hashed_bytes: 0,
        hashed_bytes_factor: 1,
        ..Limits::default()
    };
    assert_eq!(verify_with(&der, &scaled), Ok(2));
    let none = Limits {
        hashed_bytes: 0,
        hashed_bytes_factor: 0,
        ..Limits::default()
    };
    assert_eq!(
        verify_with(&der, &none),
        Err(Failure::LimitExceeded(LimitKind::HashedBytes))
    );
}

/// Bytes decoded: signed_message's only transfer-encoded part is the base64 signature, whose
/// encoded body (up to the CRLF before the close delimiter) is charged before decoding.
#[test]
fn decoded_bytes_at_and_past_the_limit() {
    let raw = signed_message();
    let text = String::from_utf8(raw.clone()).unwrap();
    let header = text.find("Content-Transfer-Encoding: base64").unwrap();
    let start = header + text[header..].find("\r\n\r\n").unwrap() + 4;
    let end = start + text[start..].find("\r\n--").unwrap();
    let encoded = end - start;
    let at = Limits {
        decoded_bytes: encoded,
        decoded_bytes_factor: 0,
        ..Limits::default()
    };
    assert!(verified(&run(&raw, &at).unwrap()));
    let past = Limits {
        decoded_bytes: encoded - 1,
        decoded_bytes_factor: 0,
        ..Limits::default()
    };
    assert_whole_message_limit(run(&raw, &past), LimitKind::DecodedBytes);
}

/// The key maxima are limits too: an RSA-2048 signer passes with `rsa_modulus_bits` 2048 and
/// is refused at 2047; its exponent 65537 (17 bits) passes at 17 and is refused at 16.
#[test]
fn rsa_key_maxima_at_and_past_the_limit() {
    let der = two_signer_der();
    for (at, past, kind) in [
        (
            Limits {
                rsa_modulus_bits: 2048,
                ..Limits::default()
            },
            Limits {
                rsa_modulus_bits: 2047,
                ..Limits::default()
            },
            LimitKind::RsaModulusBits,
        ),
        (
            Limits {
                rsa_exponent_bits: 17,
                ..Limits::default()
            },
            Limits {
                rsa_exponent_bits: 16,
                ..Limits::default()
            },
            LimitKind::RsaExponentBits,
        ),
    ] {
        assert_eq!(verify_with(&der, &at), Ok(2));
        assert_eq!(verify_with(&der, &past), Err(Failure::LimitExceeded(kind)));
    }
}

// ---------------------------------------------------------------------------------------------
// Real PKIs within the default limits (issue #11 bounds): P-384 CAs are common in government
// and enterprise PKIs, and a default that refuses their mail would switch imipsec off there.
// The chains are in certs/amplification/ (certs/generate-amplification.sh).

/// A message signed (detached, through the crate's signer) by `certs/amplification/NAME`,
/// whose chain file holds its intermediates, inspected with `limits` against `root`.
fn run_chain(name: &str, root: &str, limits: &Limits) -> Result<Inspection, SmimeError> {
    // rsa8192-under4096 is a second certificate for the key of rsa8192.
    let key = name.strip_suffix("-under4096").unwrap_or(name);
    let dir = certs().join("amplification");
    let mut pem = std::fs::read(dir.join(format!("{key}.key.pem"))).unwrap();
    pem.extend(std::fs::read(dir.join(format!("{name}.chain.pem"))).unwrap());
    let signed = sign_detached(
        ENTITY,
        &Identity::from_pem(&pem).unwrap(),
        &SignOptions::default(),
    )
    .unwrap();
    let mut raw = b"From: organizer@example.com\r\nTo: attendee@example.com\r\n\
MIME-Version: 1.0\r\n"
        .to_vec();
    raw.extend_from_slice(&signed);
    let trust = TrustStore::from_pem_files(&[certs().join(root)], &[] as &[PathBuf]).unwrap();
    inspect(
        &raw,
        &InspectOptions {
            trust: &trust,
            at: AT,
            revocation: imipsec_smime::RevocationMode::default(),
            revocation_source: None,
            policy: &AlgorithmPolicy::default(),
            identities: &[],
            limits,
            danger_decrypt_non_root: false,
            openpgp: None,
        },
    )
}

const P384_ROOT: &str = "amplification/p384-root.cert.pem";

/// P-384 signer under one P-384 intermediate: 40 (signature) + 3 x 40 (the intermediate's key
/// in the chain validation) = 160 units, refused by the old default of 128.
#[test]
fn p384_signer_under_one_p384_intermediate_is_accepted_by_default() {
    let inspection = run_chain("p384-signer1", P384_ROOT, &Limits::default()).unwrap();
    assert!(verified(&inspection), "{inspection:?}");
}

/// P-384 signer under two P-384 intermediates: 40 + 2 x 3 x 40 = 280 units, the default
/// `signature_verifications` exactly; one unit less is refused before the work.
#[test]
fn p384_signer_under_two_p384_intermediates_at_and_past_the_default_budget() {
    let at = Limits::default();
    assert_eq!(at.signature_verifications, 280);
    let inspection = run_chain("p384-signer2", P384_ROOT, &at).unwrap();
    assert!(verified(&inspection), "{inspection:?}");
    let past = Limits {
        signature_verifications: at.signature_verifications - 1,
        ..Limits::default()
    };
    assert_whole_message_limit(
        run_chain("p384-signer2", P384_ROOT, &past),
        LimitKind::SignatureVerifications,
    );
}

/// RSA-4096 signer under two RSA-4096 intermediates (4 + 2 x 3 x 4 = 28 units) and the
/// largest modulus, RSA-8192, under an RSA-4096 intermediate (16 + 3 x 4 = 28).
#[test]
fn large_rsa_chains_are_accepted_by_default() {
    for name in ["rsa4096-signer2", "rsa8192-under4096"] {
        let inspection = run_chain(name, "root.cert.pem", &Limits::default()).unwrap();
        assert!(verified(&inspection), "{name}: {inspection:?}");
        let past = Limits {
            signature_verifications: 27,
            ..Limits::default()
        };
        assert_whole_message_limit(
            run_chain(name, "root.cert.pem", &past),
            LimitKind::SignatureVerifications,
        );
    }
}
