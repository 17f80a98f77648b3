//! Verified messages per second for a ~3 KB signed iMIP invite, imipsec beside OpenSSL's own
//! in-process `CMS_verify` on the very same DER, single thread, in one run.
//!
//! Run: `cargo bench -p imipsec-smime --bench verify` (figures recorded in BENCHMARKS.md).
//!
//! Setup, identical for both verifiers: the test PKI of `certs/` (README there); trust anchor
//! `root.cert.pem`; the message carries the signer certificate and the intermediate
//! (root -> intermediate -> EE, the only chain the PKI has: the EE is signed by the
//! intermediate CA, which the anchor signed); evaluation time 2026-06-01; purpose smimesign.
//! imipsec's verifier has seen the signer before, so its chain cache is warm; OpenSSL has no
//! such cache and builds the path each time (that is what `CMS_verify` does).
//!
//! Figures printed:
//! - `verify_signed_data`: imipsec's CMS half (parse, digest, signature, chain cache, policy).
//! - `inspect`: the whole message (MIME walk + the same).
//! - `CMS_verify`: OpenSSL (`d2i_CMS_ContentInfo` + `CMS_verify`, `CMS_BINARY`).
//! - `raw verify`: one bare signature verification with the signer key (`EVP_DigestVerify`
//!   over the signed attributes), the floor any CMS verifier pays per message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use imipsec_smime::keys::Identity;
use imipsec_smime::sign::{SignOptions, sign_detached};
use imipsec_smime::{
    AlgorithmPolicy, InspectOptions, Limits, TrustStore, inspect, verify_signed_data,
};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::{Signer, Verifier};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509PurposeId};
use time::OffsetDateTime;
use time::macros::datetime;

const AT: OffsetDateTime = datetime!(2026-06-01 00:00:00 UTC);
const RUN_FOR: Duration = Duration::from_secs(3);

fn certs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../certs")
}

/// A realistic invite: an iTIP REQUEST with a description, six attendees and an alarm.
fn invite() -> Vec<u8> {
    let mut ics = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//bench//EN\r\nMETHOD:REQUEST\r\n\
         BEGIN:VEVENT\r\nUID:4f6c1d2e-8a9b-4c3d-9e0f-112233445566@example.com\r\n\
         DTSTAMP:20260601T080000Z\r\nDTSTART:20260615T090000Z\r\nDTEND:20260615T100000Z\r\n\
         SEQUENCE:0\r\nSUMMARY:Quarterly planning\r\nLOCATION:Room 4.12\r\n\
         DESCRIPTION:Agenda: review of the last quarter\\, budget for the next one\\, hiring\\n\r\n \
         and the roadmap. Please bring your numbers.\r\n\
         ORGANIZER;CN=Organizer:mailto:organizer@example.com\r\n",
    );
    for name in ["attendee", "delegate", "alice", "bob", "carol", "dave"] {
        ics.push_str(&format!(
            "ATTENDEE;CN={name};ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:\r\n mailto:{name}@example.com\r\n"
        ));
    }
    ics.push_str(
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Reminder\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n",
    );
    let mut entity = b"Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n".to_vec();
    entity.extend_from_slice(ics.as_bytes());
    entity
}

fn identity(folder: &str) -> Identity {
    let mut pem = std::fs::read(certs().join(format!("{folder}/organizer.key.pem"))).unwrap();
    pem.extend(std::fs::read(certs().join(format!("{folder}/organizer.chain.pem"))).unwrap());
    Identity::from_pem(&pem).unwrap()
}

/// Calls `step` until `RUN_FOR` has passed; returns calls per second.
fn rate(mut step: impl FnMut()) -> f64 {
    for _ in 0..50 {
        step();
    }
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < RUN_FOR {
        for _ in 0..50 {
            step();
        }
        count += 50;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

/// The first body part and the DER of the second of a `multipart/signed` entity we built.
fn split_signed(entity: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let text = std::str::from_utf8(entity).unwrap();
    let boundary = text
        .split("boundary=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let delimiter = format!("\r\n--{boundary}");
    let first = text.find(&format!("--{boundary}\r\n")).unwrap() + boundary.len() + 4;
    let first_end = first + text[first..].find(&delimiter).unwrap();
    let content = entity[first..first_end].to_vec();
    let second = first_end + delimiter.len() + 2;
    let body_start = second + text[second..].find("\r\n\r\n").unwrap() + 4;
    let body_end = body_start + text[body_start..].find(&delimiter).unwrap();
    let base64: String = text[body_start..body_end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    (content, openssl::base64::decode_block(&base64).unwrap())
}

fn bench(folder: &str, trust: &TrustStore) {
    let identity = identity(folder);
    let options = SignOptions {
        signing_time: Some(AT),
        ..SignOptions::default()
    };
    let signed = sign_detached(&invite(), &identity, &options).unwrap();
    let mut message = b"From: organizer@example.com\r\nTo: attendee@example.com\r\n\
        Subject: Invitation: Quarterly planning\r\nDate: Mon, 01 Jun 2026 08:00:00 +0000\r\n\
        MIME-Version: 1.0\r\n"
        .to_vec();
    message.extend_from_slice(&signed);
    let (content, der) = split_signed(&signed);
    let policy = AlgorithmPolicy::default();
    let limits = Limits::default();

    // Both verifiers must accept the message, or the figures mean nothing.
    verify_signed_data(&der, Some(&content), trust, AT, &policy, &limits).unwrap();
    let inspect_options = InspectOptions {
        trust,
        at: AT,
        revocation: imipsec_smime::RevocationMode::default(),
        revocation_source: None,
        policy: &policy,
        identities: &[],
        limits: &limits,
        danger_decrypt_non_root: false,
        openpgp: None,
    };
    let inspection = inspect(&message, &inspect_options).unwrap();
    assert_eq!(inspection.signed_leaves().count(), 1);

    let root = X509::from_pem(&std::fs::read(certs().join("root.cert.pem")).unwrap()).unwrap();
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(root).unwrap();
    let mut param = X509VerifyParam::new().unwrap();
    param.set_time(AT.unix_timestamp());
    param.set_purpose(X509PurposeId::SMIME_SIGN).unwrap();
    store.set_param(&param).unwrap();
    let store = store.build();
    let openssl_verify = || {
        let mut cms = CmsContentInfo::from_der(&der).unwrap();
        cms.verify(None, Some(&store), Some(&content), None, CMSOptions::BINARY)
            .unwrap();
    };
    openssl_verify();

    // The floor: one signature check with the signer's key over data the size of the
    // signed attributes (~100 bytes, as in the SignedData above).
    let key = PKey::private_key_from_pem(
        &std::fs::read(certs().join(format!("{folder}/organizer.key.pem"))).unwrap(),
    )
    .unwrap();
    let public = PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
    let attributes = [0x31u8; 105];
    let mut signer = Signer::new(MessageDigest::sha256(), &key).unwrap();
    let signature = signer.sign_oneshot_to_vec(&attributes).unwrap();

    // `--profile` / `--profile-inspect`: only imipsec's verifier or whole-message walk, a fixed
    // count, for `perf record` or `valgrind --tool=callgrind`.
    if std::env::args().any(|arg| arg == "--profile-inspect") {
        for _ in 0..300 {
            black_box(inspect(&message, &inspect_options).unwrap());
        }
        return;
    }
    if std::env::args().any(|arg| arg == "--profile") {
        for _ in 0..300 {
            black_box(
                verify_signed_data(&der, Some(&content), trust, AT, &policy, &limits).unwrap(),
            );
        }
        return;
    }
    let ours = rate(|| {
        black_box(verify_signed_data(&der, Some(&content), trust, AT, &policy, &limits).unwrap());
    });
    let walk = rate(|| {
        black_box(inspect(&message, &inspect_options).unwrap());
    });
    let theirs = rate(openssl_verify);
    let raw = rate(|| {
        let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
        assert!(verifier.verify_oneshot(&signature, &attributes).unwrap());
    });
    println!(
        "{folder:>8}: message {} bytes (SignedData {} bytes)\n\
         {:>10} imipsec verify_signed_data  {ours:>9.0} msg/s  ({:.2}x CMS_verify, {:.2}x slower than raw)\n\
         {:>10} imipsec inspect (whole mail) {walk:>8.0} msg/s  ({:.2}x CMS_verify)\n\
         {:>10} OpenSSL CMS_verify           {theirs:>9.0} msg/s\n\
         {:>10} raw signature verify         {raw:>9.0} /s",
        message.len(),
        der.len(),
        "",
        ours / theirs,
        raw / ours,
        "",
        walk / theirs,
        "",
        "",
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this binary too: keep that
    // quick by checking the setup only.
    let trust =
        TrustStore::from_pem_files(&[certs().join("root.cert.pem")], &[] as &[PathBuf]).unwrap();
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("run with `cargo bench -p imipsec-smime --bench verify` for figures");
        return;
    }
    println!(
        "imipsec-smime verify benchmark: single thread, {} s per figure, anchor root.cert.pem, \
         chain EE <- intermediate <- root carried in the message, warm chain cache",
        RUN_FOR.as_secs()
    );
    bench("rsa2048", &trust);
    if std::env::args().any(|arg| arg.starts_with("--profile")) {
        return;
    }
    bench("p256", &trust);
    let (hits, misses) = trust.cache_stats();
    println!("chain cache: {hits} hits, {misses} misses");
}
