//! Differential check against OpenSSL's `CMS_verify` (through the `openssl` crate): for every
//! signed message, imipsec and OpenSSL, given the same trust anchors, CRLs, evaluation time and
//! purpose (smimesign), must agree on valid / invalid. Each disagreement is listed with its
//! reason in `tests/differential/exceptions.json` (SHA-1 and RSA-1024 are rejected by our
//! policy but accepted by OpenSSL; MIME-level attacks OpenSSL cannot see; ...), and a listed
//! disagreement that disappears fails too.
//!
//! Two parts: messages generated here with the test PKI of `certs/` (normal test suite), and
//! every signed message of the external corpora (ignored test, needs `IMIPSEC_CORPORA`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "corpora/shared.rs"]
mod shared;

use std::path::{Path, PathBuf};
use std::process::Command;

use imipsec_smime::{
    AlgorithmPolicy, InspectOptions, Limits, RevocationMode, TrustStore, inspect,
    verify_signed_data_with,
};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkcs7::Pkcs7;
use openssl::pkey::PKey;
use openssl::ssl::SslFiletype;
use openssl::stack::Stack;
use openssl::x509::store::{X509Lookup, X509Store, X509StoreBuilder};
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509, X509Crl, X509PurposeId};
use shared::{Tally, corpora, read};
use time::OffsetDateTime;
use time::macros::datetime;

fn exceptions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential/exceptions.json")
}

/// Both sides' trust: the same anchors and CRLs, the same time, purpose smimesign, and the
/// same revocation demand (`RevocationMode::IfAvailable` with CRLs = `X509_V_FLAG_CRL_CHECK`,
/// `Require` = `CRL_CHECK | CRL_CHECK_ALL`; with `IfAvailable` and no CRL OpenSSL checks none),
/// each with `EXTENDED_CRL_SUPPORT | USE_DELTAS` (indirect and delta CRLs, as `TrustStore`
/// and PKITS's `openssl cms -verify -extended_crl -use_deltas` process them).
struct Trust {
    ours: TrustStore,
    theirs: X509Store,
    revocation: RevocationMode,
    at: OffsetDateTime,
}

impl Trust {
    fn new(
        anchors: Vec<X509>,
        crl_files: &[PathBuf],
        revocation: RevocationMode,
        at: OffsetDateTime,
    ) -> Trust {
        let mut builder = X509StoreBuilder::new().unwrap();
        for anchor in &anchors {
            builder.add_cert(anchor.clone()).unwrap();
        }
        let mut param = X509VerifyParam::new().unwrap();
        param.set_time(at.unix_timestamp());
        param.set_purpose(X509PurposeId::SMIME_SIGN).unwrap();
        // TrustStore processes certificate policies (RFC 5280 §6.1, initial set anyPolicy).
        param.set_flags(X509VerifyFlags::POLICY_CHECK).unwrap();
        let crls: Vec<X509Crl> = crl_files.iter().map(|path| shared::crl(path)).collect();
        if !crl_files.is_empty() {
            let lookup = builder.add_lookup(X509Lookup::file()).unwrap();
            for path in crl_files {
                let kind = if read(path).starts_with(b"-----") {
                    SslFiletype::PEM
                } else {
                    SslFiletype::ASN1
                };
                lookup.load_crl_file(path, kind).unwrap();
            }
        }
        let extended = X509VerifyFlags::EXTENDED_CRL_SUPPORT | X509VerifyFlags::USE_DELTAS;
        match revocation {
            // The own PKI's CRL covers the signer only, and its root publishes none.
            RevocationMode::IfAvailable if !crl_files.is_empty() => param
                .set_flags(X509VerifyFlags::CRL_CHECK | extended)
                .unwrap(),
            RevocationMode::Require => param
                .set_flags(X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL | extended)
                .unwrap(),
            _ => {}
        }
        builder.set_param(&param).unwrap();
        Trust {
            ours: TrustStore::new(anchors, crls).unwrap(),
            revocation,
            theirs: builder.build(),
            at,
        }
    }

    /// imipsec on DER SignedData (`detached`: the signed content of a detached signature).
    fn ours_der(&self, der: &[u8], detached: Option<&[u8]>) -> String {
        let policy = AlgorithmPolicy::default();
        let limits = Limits::default();
        let result = verify_signed_data_with(
            der,
            detached,
            &InspectOptions {
                trust: &self.ours,
                at: self.at,
                revocation: self.revocation,
                revocation_source: None,
                policy: &policy,
                identities: &[],
                limits: &limits,
                danger_decrypt_non_root: false,
                openpgp: None,
            },
        );
        match result {
            Ok(_) => "valid".to_string(),
            Err(failure) => format!("invalid:{}", failure.code()),
        }
    }

    /// imipsec on a whole message: the outermost signature layer.
    fn ours_message(&self, raw: &[u8]) -> String {
        let policy = AlgorithmPolicy::default();
        let limits = Limits::default();
        let options = InspectOptions {
            trust: &self.ours,
            at: self.at,
            revocation: self.revocation,
            revocation_source: None,
            policy: &policy,
            identities: &[],
            limits: &limits,
            danger_decrypt_non_root: false,
            openpgp: None,
        };
        match inspect(raw, &options) {
            Ok(inspection) => shared::outermost_signature(&inspection),
            Err(error) => format!("invalid:{}", error.code()),
        }
    }

    /// OpenSSL on DER SignedData, the content exactly as given (`CMS_BINARY`).
    fn theirs_der(&self, der: &[u8], detached: Option<&[u8]>) -> String {
        match CmsContentInfo::from_der(der) {
            Ok(mut cms) => {
                verdict(cms.verify(None, Some(&self.theirs), detached, None, CMSOptions::BINARY))
            }
            Err(_) => "invalid:unparseable".to_string(),
        }
    }

    /// OpenSSL on an S/MIME message (`SMIME_read_CMS`; the detached content as split and
    /// CRLF-canonicalised by `SMIME_read_PKCS7`), flags as `openssl cms -verify` uses them.
    fn theirs_message(&self, raw: &[u8]) -> String {
        let Ok(mut cms) = CmsContentInfo::smime_read_cms(raw) else {
            return "invalid:not-smime".to_string();
        };
        let content = Pkcs7::from_smime(raw).ok().and_then(|(_, content)| content);
        verdict(cms.verify(
            None,
            Some(&self.theirs),
            content.as_deref(),
            None,
            CMSOptions::empty(),
        ))
    }
}

fn verdict(result: Result<(), openssl::error::ErrorStack>) -> String {
    match result {
        Ok(()) => "valid".to_string(),
        Err(stack) => format!(
            "invalid:{}",
            stack
                .errors()
                .first()
                .and_then(|error| error.reason())
                .unwrap_or("?")
        ),
    }
}

/// Compare on valid / invalid; the reasons go to the detail line.
fn judge(tally: &mut Tally, case: &str, ours: &str, theirs: &str) {
    let class = |verdict: &str| {
        if verdict == "valid" {
            "valid"
        } else {
            "invalid"
        }
    };
    tally.judge(
        case,
        class(theirs),
        class(ours),
        &format!("ours {ours}, OpenSSL {theirs}"),
    );
}

// ---------------------------------------------------------------------------------------------
// Own PKI

const AT: OffsetDateTime = datetime!(2026-06-01 00:00:00 UTC);

fn certs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../certs")
}

const INVITE: &[u8] = b"Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n\
BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//differential//EN\r\nMETHOD:REQUEST\r\n\
BEGIN:VEVENT\r\nUID:differential@example.com\r\nDTSTAMP:20260601T080000Z\r\n\
DTSTART:20260615T090000Z\r\nSUMMARY:Planning\r\n\
ORGANIZER:mailto:organizer@example.com\r\nATTENDEE:mailto:attendee@example.com\r\n\
END:VEVENT\r\nEND:VCALENDAR\r\n";

/// Detached DER SignedData by `role` (e.g. `rsa2048/organizer`) over `content`, made by
/// OpenSSL's `CMS_sign` (SHA-256), the signer's chain included.
fn cms_sign(role: &str, content: &[u8]) -> Vec<u8> {
    let key = PKey::private_key_from_pem(&read(&certs().join(format!("{role}.key.pem")))).unwrap();
    let chain = X509::stack_from_pem(&read(&certs().join(format!("{role}.chain.pem")))).unwrap();
    let mut extra = Stack::new().unwrap();
    for cert in chain.iter().skip(1) {
        extra.push(cert.clone()).unwrap();
    }
    CmsContentInfo::sign(
        Some(&chain[0]),
        Some(&key),
        Some(&extra),
        Some(content),
        CMSOptions::DETACHED | CMSOptions::BINARY,
    )
    .unwrap()
    .to_der()
    .unwrap()
}

/// The same with SHA-1 as digest, through the `openssl cms` CLI (the crate's `CMS_sign` has
/// no digest choice).
fn cli_sign_sha1(role: &str, content: &[u8]) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("imipsec-differential-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, output) = (dir.join("in"), dir.join("out"));
    std::fs::write(&input, content).unwrap();
    let path = |kind: &str| certs().join(format!("{role}.{kind}.pem"));
    // The chain file starts with the signer, which -certfile must not add a second time.
    let issuers = dir.join("issuers.pem");
    let chain = X509::stack_from_pem(&read(&path("chain"))).unwrap();
    let mut pem = Vec::new();
    for cert in chain.iter().skip(1) {
        pem.extend(cert.to_pem().unwrap());
    }
    std::fs::write(&issuers, pem).unwrap();
    let status = Command::new("openssl")
        .args(["cms", "-sign", "-binary", "-md", "sha1", "-outform", "DER"])
        .arg("-signer")
        .arg(path("cert"))
        .arg("-inkey")
        .arg(path("key"))
        .arg("-certfile")
        .arg(&issuers)
        .arg("-in")
        .arg(&input)
        .arg("-out")
        .arg(&output)
        .status()
        .expect("openssl CLI");
    assert!(status.success());
    let der = read(&output);
    std::fs::remove_dir_all(&dir).ok();
    der
}

#[test]
fn own_pki_agrees_with_cms_verify() {
    let root = shared::certificate(&certs().join("root.cert.pem"));
    let crl = certs().join("intermediate.crl.pem");
    let trust = Trust::new(vec![root], &[crl], RevocationMode::IfAvailable, AT);
    let mut tally = Tally::new("own-pki", &exceptions());
    let mut tampered = INVITE.to_vec();
    let last = tampered.len() - 3;
    tampered[last] ^= 0x01;
    let mut cases: Vec<(String, Vec<u8>, Vec<u8>)> = Vec::new();
    for role in [
        "rsa2048/organizer",
        "rsa2048/attendee",
        "p256/organizer",
        "p256/stranger",
        "special/expired",
        "special/wrong-eku",
        "special/untrusted",
        "special/revoked",
        "special/weak-rsa1024",
        "special/subject-email-only",
    ] {
        cases.push((role.to_string(), cms_sign(role, INVITE), INVITE.to_vec()));
    }
    cases.push((
        "rsa2048/organizer tampered content".into(),
        cms_sign("rsa2048/organizer", INVITE),
        tampered.clone(),
    ));
    cases.push((
        "p256/organizer tampered content".into(),
        cms_sign("p256/organizer", INVITE),
        tampered,
    ));
    let mut bad_signature = cms_sign("rsa2048/organizer", INVITE);
    let last = bad_signature.len() - 1;
    bad_signature[last] ^= 0x01;
    cases.push((
        "rsa2048/organizer tampered signature".into(),
        bad_signature,
        INVITE.to_vec(),
    ));
    cases.push((
        "rsa2048/organizer sha1".into(),
        cli_sign_sha1("rsa2048/organizer", INVITE),
        INVITE.to_vec(),
    ));
    // Our own writer, read by both.
    for role in ["rsa2048/organizer", "p256/organizer"] {
        let mut pem = read(&certs().join(format!("{role}.key.pem")));
        pem.extend(read(&certs().join(format!("{role}.chain.pem"))));
        let identity = imipsec_smime::keys::Identity::from_pem(&pem).unwrap();
        let entity = imipsec_smime::sign::sign_detached(
            INVITE,
            &identity,
            &imipsec_smime::sign::SignOptions::default(),
        )
        .unwrap();
        let mut message = b"From: organizer@example.com\r\nMIME-Version: 1.0\r\n".to_vec();
        message.extend_from_slice(&entity);
        let ours = trust.ours_message(&message);
        let theirs = trust.theirs_message(&message);
        judge(
            &mut tally,
            &format!("{role} imipsec sign_detached"),
            &ours,
            &theirs,
        );
    }
    for (case, der, content) in &cases {
        let ours = trust.ours_der(der, Some(content));
        let theirs = trust.theirs_der(der, Some(content));
        judge(&mut tally, case, &ours, &theirs);
    }
    tally.finish();
}

// ---------------------------------------------------------------------------------------------
// External corpora

fn eml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            eml_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "eml") {
            out.push(path);
        }
    }
}

fn messages(tally: &mut Tally, trust: &Trust, root: &Path, files: &[PathBuf]) {
    for path in files {
        let raw = read(path);
        let ours = trust.ours_message(&raw);
        // A message without an S/MIME signature at its root is outside CMS_verify's view.
        if ours == "none" && CmsContentInfo::smime_read_cms(&raw).is_err() {
            continue;
        }
        let theirs = trust.theirs_message(&raw);
        let case = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        judge(tally, &case, &ours, &theirs);
    }
}

#[test]
#[ignore = "needs IMIPSEC_CORPORA=../shared/corpora"]
fn corpora_agree_with_cms_verify() {
    let corpora = corpora();
    // Every suite runs and prints before the test fails on any of them.
    let mut failures: Vec<String> = Vec::new();

    let root = corpora.join("thunderbird");
    let trust = Trust::new(
        vec![shared::certificate(&root.join("smime/TestCA.pem"))],
        &[],
        RevocationMode::IfAvailable,
        AT,
    );
    let mut tally = Tally::new("thunderbird", &exceptions());
    let mut files = Vec::new();
    eml_files(&root.join("smime"), &mut files);
    eml_files(&root.join("smime-manual"), &mut files);
    messages(&mut tally, &trust, &root, &files);
    failures.extend(tally.summarize());

    let root = corpora.join("rfc4134");
    let trust = Trust::new(
        vec![
            shared::certificate(&root.join("CarlRSASelf.cer")),
            shared::certificate(&root.join("CarlDSSSelf.cer")),
        ],
        &[],
        RevocationMode::IfAvailable,
        datetime!(2005-01-01 00:00:00 UTC),
    );
    let mut tally = Tally::new("rfc4134", &exceptions());
    let content = read(&root.join("ExContent.bin"));
    for file in [
        "4.1.bin", "4.2.bin", "4.3.bin", "4.4.bin", "4.5.bin", "4.6.bin", "4.7.bin", "4.10.bin",
    ] {
        let der = read(&root.join(file));
        let detached = (file == "4.3.bin").then_some(content.as_slice());
        let (ours, theirs) = (
            trust.ours_der(&der, detached),
            trust.theirs_der(&der, detached),
        );
        judge(&mut tally, file, &ours, &theirs);
    }
    messages(
        &mut tally,
        &trust,
        &root,
        &[root.join("4.8.eml"), root.join("4.9.eml")],
    );
    failures.extend(tally.summarize());

    let root = corpora.join("rfc9216-examples-cms");
    let trust = Trust::new(
        vec![shared::certificate(
            &root.join("certs-and-keys/rfc9216-ca.rsa.crt"),
        )],
        &[],
        RevocationMode::IfAvailable,
        AT,
    );
    let mut tally = Tally::new("rfc9216", &exceptions());
    let sample: &[u8] = b"This is some sample content.";
    for (name, detached) in [
        ("signedByAliceRSA", None),
        ("signedByAliceRSAPSS", None),
        ("signedByCarlosEd25519", None),
        ("signedByCarlosDetached", Some(sample)),
        ("signedByAliceAndCarlosNoCerts", None),
    ] {
        let der = read(&root.join(format!("binary-files/{name}.p7m")));
        let (ours, theirs) = (
            trust.ours_der(&der, detached),
            trust.theirs_der(&der, detached),
        );
        judge(&mut tally, name, &ours, &theirs);
    }
    failures.extend(tally.summarize());

    let root = corpora.join("openssl");
    let trust = Trust::new(
        vec![shared::certificate(&root.join("smime-certs/smroot.pem"))],
        &[],
        RevocationMode::IfAvailable,
        AT,
    );
    let mut tally = Tally::new("openssl", &exceptions());
    for file in [
        "bad_signtime_attr.cms",
        "no_ct_attr.cms",
        "no_md_attr.cms",
        "ct_multiple_attr.cms",
    ] {
        let der = read(&root.join("80-test_cms_data").join(file));
        let (ours, theirs) = (trust.ours_der(&der, None), trust.theirs_der(&der, None));
        judge(&mut tally, file, &ours, &theirs);
    }
    failures.extend(tally.summarize());

    let root = corpora.join("johnny-you-are-fired");
    let trust = Trust::new(
        vec![
            shared::certificate(Path::new("/etc/ssl/certs/GlobalSign_Root_CA_-_R3.pem")),
            shared::certificate(&root.join("assets/certificates/intermediate_ca.crt")),
        ],
        &[],
        RevocationMode::IfAvailable,
        datetime!(2019-05-01 00:00:00 UTC),
    );
    let mut tally = Tally::new("johnny", &exceptions());
    let mut files = Vec::new();
    eml_files(&root, &mut files);
    messages(&mut tally, &trust, &root, &files);
    failures.extend(tally.summarize());

    let root = corpora.join("pkits");
    let trust = Trust::new(
        vec![shared::certificate(
            &root.join("certs/TrustAnchorRootCertificate.crt"),
        )],
        &[root.join("crls/TrustAnchorRootCRL.crl")],
        RevocationMode::Require,
        AT,
    );
    let mut tally = Tally::new("pkits", &exceptions());
    let mut files = Vec::new();
    eml_files(&root.join("smime"), &mut files);
    messages(&mut tally, &trust, &root, &files);
    failures.extend(tally.summarize());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
