//! Trust and revocation (issue #13): evaluation time to the second and a chain cache that never
//! changes a verdict, revocation modes, OCSP response validation (responses made by the real
//! `openssl ocsp` responder code from the real request), CRLs fetched from distribution
//! points, stale CRLs named, DER CRLs and anchor directories, missing intermediates named.
//!
//! The PKI is built in-process (openssl crate) in a scratch directory; CRLs and OCSP responses
//! by the `openssl ca` / `openssl ocsp` CLI. The network side (HTTP fetching, the on-disk
//! cache) is not tested here: the [`RevocationSource`] is a test double that hands back what
//! the CLI produced.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use imipsec_smime::{
    AlgorithmPolicy, Failure, Fetched, InspectOptions, Limits, RevocationMode, RevocationSource,
    TrustStore, VerifiedSigner, load_certificates, load_crls, verify_signed_data_with,
};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509Builder, X509Crl, X509NameBuilder};
use time::OffsetDateTime;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "imipsec-smime-revocation-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const OCSP_URL: &str = "http://ocsp.example.test/";
const CRL_URL: &str = "http://crl.example.test/ca.crl";
const CONTENT: &[u8] = b"Content-Type: text/plain\r\n\r\nsigned\r\n";

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

/// Serial numbers unique within a test process (OCSP CertIDs and CRL entries use them).
static SERIAL: AtomicUsize = AtomicUsize::new(1000);

struct Issued {
    cert: X509,
    key: PKey<Private>,
}

#[derive(Clone, Copy)]
enum Kind {
    Ca,
    /// An S/MIME signer with AIA OCSP and a CRL distribution point.
    Signer,
    /// An OCSP responder certificate; `true`: with id-kp-OCSPSigning.
    Responder(bool),
}

/// A certificate for `cn` issued by `issuer` (self-signed when `None`), valid
/// `[not_before, not_after]` (Unix seconds).
#[allow(deprecated)] // X509Extension::new: the AIA and CRL DP extensions have no builder
fn issue(cn: &str, issuer: Option<&Issued>, kind: Kind, not_before: i64, not_after: i64) -> Issued {
    let key = key();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut builder = X509Builder::new().unwrap();
    builder.set_version(2).unwrap();
    let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
    builder
        .set_serial_number(
            &Asn1Integer::from_bn(&BigNum::from_u32(u32::try_from(serial).unwrap()).unwrap())
                .unwrap(),
        )
        .unwrap();
    builder.set_subject_name(&name).unwrap();
    builder
        .set_issuer_name(issuer.map_or(&*name, |issuer| issuer.cert.subject_name()))
        .unwrap();
    builder.set_pubkey(&key).unwrap();
    builder
        .set_not_before(&Asn1Time::from_unix(not_before).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::from_unix(not_after).unwrap())
        .unwrap();
    match kind {
        Kind::Ca => {
            builder
                .append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            builder
                .append_extension(
                    KeyUsage::new()
                        .critical()
                        .key_cert_sign()
                        .crl_sign()
                        .build()
                        .unwrap(),
                )
                .unwrap();
        }
        Kind::Signer => {
            builder
                .append_extension(
                    KeyUsage::new()
                        .critical()
                        .digital_signature()
                        .build()
                        .unwrap(),
                )
                .unwrap();
            builder
                .append_extension(ExtendedKeyUsage::new().email_protection().build().unwrap())
                .unwrap();
            let context = builder.x509v3_context(issuer.map(|i| &*i.cert), None);
            let san = SubjectAlternativeName::new()
                .email(&format!("{cn}@example.org"))
                .build(&context)
                .unwrap();
            let aia = openssl::x509::X509Extension::new(
                None,
                Some(&context),
                "authorityInfoAccess",
                &format!("OCSP;URI:{OCSP_URL}"),
            )
            .unwrap();
            let crldp = openssl::x509::X509Extension::new(
                None,
                Some(&context),
                "crlDistributionPoints",
                &format!("URI:{CRL_URL}"),
            )
            .unwrap();
            builder.append_extension(san).unwrap();
            builder.append_extension(aia).unwrap();
            builder.append_extension(crldp).unwrap();
        }
        Kind::Responder(ocsp_signing) => {
            builder
                .append_extension(
                    KeyUsage::new()
                        .critical()
                        .digital_signature()
                        .build()
                        .unwrap(),
                )
                .unwrap();
            if ocsp_signing {
                builder
                    .append_extension(
                        ExtendedKeyUsage::new()
                            .other("OCSPSigning")
                            .build()
                            .unwrap(),
                    )
                    .unwrap();
            }
        }
    }
    let signing_key = issuer.map_or(&key, |issuer| &issuer.key);
    builder.sign(signing_key, MessageDigest::sha256()).unwrap();
    Issued {
        cert: builder.build(),
        key,
    }
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

const DAY: i64 = 86_400;

/// A detached CMS SignedData over [`CONTENT`] by `signer`, carrying `extra` certificates.
fn sign(signer: &Issued, extra: &[&X509]) -> Vec<u8> {
    let mut certs = Stack::new().unwrap();
    for cert in extra {
        certs.push((*cert).clone()).unwrap();
    }
    CmsContentInfo::sign(
        Some(&signer.cert),
        Some(&signer.key),
        Some(&certs),
        Some(CONTENT),
        CMSOptions::DETACHED | CMSOptions::BINARY,
    )
    .unwrap()
    .to_der()
    .unwrap()
}

fn verify(
    der: &[u8],
    trust: &TrustStore,
    at: i64,
    revocation: RevocationMode,
    source: Option<Arc<dyn RevocationSource>>,
) -> Result<Vec<VerifiedSigner>, Failure> {
    let policy = AlgorithmPolicy::default();
    let limits = Limits::default();
    verify_signed_data_with(
        der,
        Some(CONTENT),
        &InspectOptions {
            trust,
            at: OffsetDateTime::from_unix_timestamp(at).unwrap(),
            revocation,
            revocation_source: source,
            policy: &policy,
            identities: &[],
            limits: &limits,
            danger_decrypt_non_root: false,
            openpgp: None,
        },
    )
}

fn write_pem(path: &Path, cert: &X509) {
    std::fs::write(path, cert.to_pem().unwrap()).unwrap();
}

fn write_key(path: &Path, key: &PKey<Private>) {
    std::fs::write(path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
}

fn hex_serial(cert: &X509) -> String {
    let hex = cert.serial_number().to_bn().unwrap().to_hex_str().unwrap();
    let hex = hex.to_string();
    if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex
    }
}

/// An `openssl ca` index line: `V` (valid) or `R` (revoked).
fn index_line(cert: &X509, revoked: bool) -> String {
    let subject = format!(
        "/CN={}",
        cert.subject_name()
            .entries()
            .next()
            .unwrap()
            .data()
            .to_string()
            .unwrap()
    );
    if revoked {
        format!(
            "R\t491231235959Z\t200101000000Z\t{}\tunknown\t{subject}\n",
            hex_serial(cert)
        )
    } else {
        format!(
            "V\t491231235959Z\t\t{}\tunknown\t{subject}\n",
            hex_serial(cert)
        )
    }
}

/// Run the openssl CLI in `dir`; panics with its stderr on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl CLI");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An OCSP responder as `openssl ocsp` runs it: `index` lists certificate statuses, the
/// response is signed by `responder` (with `ca` as the CA the CertIDs must name).
struct Responder {
    dir: PathBuf,
    ndays: u32,
}

impl Responder {
    fn new(ca: &Issued, responder: &Issued, index: &str, ndays: u32) -> Responder {
        let dir = scratch();
        write_pem(&dir.join("ca.pem"), &ca.cert);
        write_pem(&dir.join("rsigner.pem"), &responder.cert);
        write_key(&dir.join("rkey.pem"), &responder.key);
        std::fs::write(dir.join("index.txt"), index).unwrap();
        Responder { dir, ndays }
    }

    fn answer(&self, request: &[u8]) -> Vec<u8> {
        std::fs::write(self.dir.join("req.der"), request).unwrap();
        let ndays = self.ndays.to_string();
        openssl(
            &self.dir,
            &[
                "ocsp",
                "-index",
                "index.txt",
                "-CA",
                "ca.pem",
                "-rsigner",
                "rsigner.pem",
                "-rkey",
                "rkey.pem",
                "-reqin",
                "req.der",
                "-respout",
                "resp.der",
                "-ndays",
                &ndays,
            ],
        );
        std::fs::read(self.dir.join("resp.der")).unwrap()
    }
}

/// A DER CRL by `ca` listing `revoked`, with explicit lastUpdate / nextUpdate.
fn crl(ca: &Issued, revoked: &[&X509], last_update: &str, next_update: &str) -> Vec<u8> {
    let dir = scratch();
    write_pem(&dir.join("ca.pem"), &ca.cert);
    write_key(&dir.join("ca.key"), &ca.key);
    let index: String = revoked.iter().map(|cert| index_line(cert, true)).collect();
    std::fs::write(dir.join("index.txt"), index).unwrap();
    std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\n",
    )
    .unwrap();
    openssl(
        &dir,
        &[
            "ca",
            "-config",
            "ca.cnf",
            "-gencrl",
            "-keyfile",
            "ca.key",
            "-cert",
            "ca.pem",
            "-crl_lastupdate",
            last_update,
            "-crl_nextupdate",
            next_update,
            "-out",
            "crl.pem",
        ],
    );
    openssl(
        &dir,
        &[
            "crl", "-in", "crl.pem", "-outform", "DER", "-out", "crl.der",
        ],
    );
    std::fs::read(dir.join("crl.der")).unwrap()
}

/// `YYYYMMDDHHMMSSZ` for the CLI.
fn generalized(unix: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix).unwrap();
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

type OcspAnswer = Box<dyn Fn(&[u8]) -> Fetched + Send + Sync>;

/// The revocation source test double: answers from closures, records every call.
#[derive(Default)]
struct Double {
    ocsp: Option<OcspAnswer>,
    crl: Option<Box<dyn Fn() -> Fetched + Send + Sync>>,
    calls: Mutex<Vec<String>>,
    confirmed: Mutex<Vec<String>>,
}

impl RevocationSource for Double {
    fn ocsp(&self, url: &str, request_der: &[u8], _at: OffsetDateTime) -> Fetched {
        self.calls.lock().unwrap().push(format!("ocsp {url}"));
        match &self.ocsp {
            Some(answer) => answer(request_der),
            None => Fetched::Unavailable("no responder".to_owned()),
        }
    }

    fn crl(&self, url: &str, _at: OffsetDateTime) -> Fetched {
        self.calls.lock().unwrap().push(format!("crl {url}"));
        match &self.crl {
            Some(answer) => answer(),
            None => Fetched::Unavailable("no CRL server".to_owned()),
        }
    }

    fn confirmed(
        &self,
        url: &str,
        request_der: Option<&[u8]>,
        _answer: &[u8],
        _next_update: OffsetDateTime,
    ) {
        let kind = if request_der.is_some() { "ocsp" } else { "crl" };
        self.confirmed.lock().unwrap().push(format!("{kind} {url}"));
    }
}

/// A root CA and a signer under it, valid ±30 days around now.
struct Pki {
    root: Issued,
    signer: Issued,
    trust: TrustStore,
}

fn pki() -> Pki {
    let t = now();
    let root = issue("Root CA", None, Kind::Ca, t - 30 * DAY, t + 365 * DAY);
    let signer = issue(
        "alice",
        Some(&root),
        Kind::Signer,
        t - 30 * DAY,
        t + 30 * DAY,
    );
    let trust = TrustStore::new(vec![root.cert.clone()], Vec::new()).unwrap();
    Pki {
        root,
        signer,
        trust,
    }
}

/// A source whose OCSP responder is `responder` and whose CRL server answers with something
/// that is not a CRL (reachable, but no answer: so that a missing answer is
/// `untrusted-certificate`, not "could not evaluate").
fn with_ocsp(responder: Responder) -> Arc<Double> {
    Arc::new(Double {
        ocsp: Some(Box::new(move |request: &[u8]| {
            Fetched::Answer(responder.answer(request))
        })),
        crl: Some(not_found()),
        ..Double::default()
    })
}

fn not_found() -> Box<dyn Fn() -> Fetched + Send + Sync> {
    Box::new(|| Fetched::Answer(b"<html>404</html>".to_vec()))
}

fn code(result: &Result<Vec<VerifiedSigner>, Failure>) -> &'static str {
    match result {
        Ok(_) => "valid",
        Err(failure) => failure.code(),
    }
}

// ---------------------------------------------------------------------------------------------
// Time to the second (issue #13: validation ran at the evaluation time rounded down to the
// minute, so a certificate issued seconds ago was "not yet valid" and one expired seconds ago
// passed).

#[test]
fn certificate_validity_is_checked_to_the_second() {
    // T in the middle of a minute, so that T-1 s and T+1 s share the minute.
    let t = (now() / 60) * 60 - 10 * DAY + 30;
    let root = issue("Root CA", None, Kind::Ca, t - 30 * DAY, t + 365 * DAY);
    let signer = issue("alice", Some(&root), Kind::Signer, t, t + 3600);
    let der = sign(&signer, &[]);
    let trust = TrustStore::new(vec![root.cert.clone()], Vec::new()).unwrap();
    let fresh = || TrustStore::new(vec![root.cert.clone()], Vec::new()).unwrap();
    let off = RevocationMode::IfAvailable;
    // One store for all, in an order where a cached earlier verdict would leak into a later
    // one, and a fresh store each time: both must agree with RFC 5280 §4.1.2.5 to the second
    // (OpenSSL: valid iff notBefore <= t < notAfter).
    let cases = [
        (t + 1, "valid"),
        (t - 1, "certificate-expired"),
        (t, "valid"),
        (t + 3599, "valid"),
        (t + 3601, "certificate-expired"),
        (t + 3600, "certificate-expired"),
        (t + 3598, "valid"),
    ];
    for (at, expected) in cases {
        assert_eq!(
            code(&verify(&der, &trust, at, off, None)),
            expected,
            "shared store at T{:+}",
            at - t
        );
        assert_eq!(
            code(&verify(&der, &fresh(), at, off, None)),
            expected,
            "fresh store at T{:+}",
            at - t
        );
    }
    let not_yet = verify(&der, &fresh(), t - 1, off, None).unwrap_err();
    assert_eq!(
        not_yet,
        Failure::CertificateExpired {
            depth: 0,
            not_yet_valid: true
        }
    );
}

/// The chain cache must never change a verdict: everything that matters is in its key or its
/// validity interval (time to the second, CRLs of the message, revocation mode, source).
#[test]
fn chain_cache_never_changes_a_verdict() {
    let t = now();
    let root = issue("Root CA", None, Kind::Ca, t - 30 * DAY, t + 365 * DAY);
    let signer = issue("alice", Some(&root), Kind::Signer, t - DAY, t + DAY);
    let der = sign(&signer, &[]);
    let shared = TrustStore::new(vec![root.cert.clone()], Vec::new()).unwrap();
    let times = [
        t,
        t + DAY - 1,
        t + DAY,
        t - DAY,
        t - DAY - 1,
        t + 5,
        t + DAY + 1,
        t,
    ];
    let modes = [
        RevocationMode::Require,
        RevocationMode::Off,
        RevocationMode::IfAvailable,
        RevocationMode::Require,
    ];
    for at in times {
        for mode in modes {
            let fresh = TrustStore::new(vec![root.cert.clone()], Vec::new()).unwrap();
            assert_eq!(
                code(&verify(&der, &shared, at, mode, None)),
                code(&verify(&der, &fresh, at, mode, None)),
                "at T{:+}, {mode}",
                at - t
            );
        }
    }
    let (hits, _) = shared.cache_stats();
    assert!(hits > 0, "the cache was used");
    // A store with a CRL revoking the signer: the mode is in the key, so `off`'s "valid"
    // is never served to `if-available` and the reverse.
    let revoking = crl(
        &root,
        &[&signer.cert],
        &generalized(t - 3600),
        &generalized(t + DAY),
    );
    let store_with_crl = TrustStore::new(
        vec![root.cert.clone()],
        vec![X509Crl::from_der(&revoking).unwrap()],
    )
    .unwrap();
    assert_eq!(
        code(&verify(
            &der,
            &store_with_crl,
            t,
            RevocationMode::IfAvailable,
            None
        )),
        "certificate-revoked"
    );
    assert_eq!(
        code(&verify(&der, &store_with_crl, t, RevocationMode::Off, None)),
        "valid"
    );
    assert_eq!(
        code(&verify(
            &der,
            &store_with_crl,
            t,
            RevocationMode::IfAvailable,
            None
        )),
        "certificate-revoked"
    );
}

// ---------------------------------------------------------------------------------------------
// Revocation modes and OCSP validation.

/// Control: a good answer from the issuer's responder satisfies `require`, and is confirmed
/// to the source (so that it may be cached).
#[test]
fn ocsp_good_answer_from_the_issuer_satisfies_require() {
    let pki = pki();
    let der = sign(&pki.signer, &[]);
    let source = with_ocsp(Responder::new(
        &pki.root,
        &pki.root,
        &index_line(&pki.signer.cert, false),
        1,
    ));
    let result = verify(
        &der,
        &pki.trust,
        now(),
        RevocationMode::Require,
        Some(source.clone()),
    );
    assert_eq!(code(&result), "valid", "{result:?}");
    assert_eq!(
        *source.confirmed.lock().unwrap(),
        [format!("ocsp {OCSP_URL}")]
    );
}

/// Control for the delegated case: a responder certificate with id-kp-OCSPSigning issued by
/// the CA may answer (RFC 6960 §4.2.2.2).
#[test]
fn ocsp_good_answer_from_an_authorised_responder_satisfies_require() {
    let pki = pki();
    let t = now();
    let responder = issue(
        "OCSP responder",
        Some(&pki.root),
        Kind::Responder(true),
        t - DAY,
        t + DAY,
    );
    let der = sign(&pki.signer, &[]);
    let source = with_ocsp(Responder::new(
        &pki.root,
        &responder,
        &index_line(&pki.signer.cert, false),
        1,
    ));
    let result = verify(&der, &pki.trust, t, RevocationMode::Require, Some(source));
    assert_eq!(code(&result), "valid", "{result:?}");
}

#[test]
fn ocsp_revoked_answer_is_certificate_revoked() {
    let pki = pki();
    let der = sign(&pki.signer, &[]);
    for mode in [RevocationMode::IfAvailable, RevocationMode::Require] {
        let source = with_ocsp(Responder::new(
            &pki.root,
            &pki.root,
            &index_line(&pki.signer.cert, true),
            1,
        ));
        let result = verify(&der, &pki.trust, now(), mode, Some(source.clone()));
        assert_eq!(
            result.unwrap_err(),
            Failure::CertificateRevoked { depth: 0 },
            "{mode}"
        );
        assert!(source.confirmed.lock().unwrap().is_empty());
    }
}

/// Attack/defect class: an answer that is not a usable "good" for exactly this certificate,
/// by someone entitled to give it, at this time, must never count as one. Each case is
/// `untrusted-certificate` under `require` (the detail says what was wrong) and is never
/// confirmed to the cache.
#[test]
fn ocsp_answers_that_are_not_usable_never_satisfy_require() {
    let pki = pki();
    let t = now();
    let der = sign(&pki.signer, &[]);
    let good_index = index_line(&pki.signer.cert, false);
    let other_ca = issue("Other CA", None, Kind::Ca, t - DAY, t + DAY);
    let not_a_responder = issue(
        "no OCSPSigning",
        Some(&pki.root),
        Kind::Responder(false),
        t - DAY,
        t + DAY,
    );
    let other_signer = issue("bob", Some(&pki.root), Kind::Signer, t - DAY, t + DAY);
    let other_request = {
        let mut request = openssl::ocsp::OcspRequest::new().unwrap();
        request
            .add_id(
                openssl::ocsp::OcspCertId::from_cert(
                    MessageDigest::sha1(),
                    &other_signer.cert,
                    &pki.root.cert,
                )
                .unwrap(),
            )
            .unwrap();
        request.to_der().unwrap()
    };
    let cases: Vec<(&str, Arc<Double>, i64, &str)> = vec![
        (
            "status unknown (not in the responder's index)",
            with_ocsp(Responder::new(&pki.root, &pki.root, "", 1)),
            t,
            "status unknown",
        ),
        (
            "signed by another CA's key",
            with_ocsp(Responder::new(&pki.root, &other_ca, &good_index, 1)),
            t,
            "signature or signer",
        ),
        (
            "signed by a certificate of the CA without id-kp-OCSPSigning",
            with_ocsp(Responder::new(&pki.root, &not_a_responder, &good_index, 1)),
            t,
            "signature or signer",
        ),
        (
            "stale: nextUpdate (1 day) long past at the evaluation time",
            with_ocsp(Responder::new(&pki.root, &pki.root, &good_index, 1)),
            t + 3 * DAY,
            "stale",
        ),
        (
            "thisUpdate in the future of the evaluation time",
            with_ocsp(Responder::new(&pki.root, &pki.root, &good_index, 1)),
            t - 2 * DAY,
            "thisUpdate is in the future",
        ),
        (
            "an answer about another certificate (CertID)",
            {
                let responder = Responder::new(
                    &pki.root,
                    &pki.root,
                    &index_line(&other_signer.cert, false),
                    1,
                );
                Arc::new(Double {
                    ocsp: Some(Box::new(move |_: &[u8]| {
                        Fetched::Answer(responder.answer(&other_request))
                    })),
                    crl: Some(not_found()),
                    ..Double::default()
                })
            },
            t,
            "no answer for this certificate",
        ),
        (
            "not an OCSP response",
            Arc::new(Double {
                ocsp: Some(Box::new(|_: &[u8]| Fetched::Answer(b"<html>".to_vec()))),
                crl: Some(not_found()),
                ..Double::default()
            }),
            t,
            "not a DER OCSP response",
        ),
    ];
    for (name, source, at, why) in cases {
        let result = verify(
            &der,
            &pki.trust,
            at,
            RevocationMode::Require,
            Some(source.clone()),
        );
        match result {
            Err(Failure::RevocationMissing {
                depth: 0,
                ref subject,
                ref missing,
            }) => {
                assert!(subject.contains("alice"), "{name}: {subject}");
                assert!(missing.contains(why), "{name}: {missing}");
            }
            other => panic!("{name}: {other:?}"),
        }
        assert!(
            source
                .confirmed
                .lock()
                .unwrap()
                .iter()
                .all(|url| !url.starts_with("ocsp")),
            "{name}: an unusable answer was confirmed"
        );
    }
}

/// Under `require`, a source that could not answer means the message cannot be evaluated
/// (the pipeline tempfails); under `if-available` the signer passes with a warning.
#[test]
fn unreachable_revocation_source_cannot_be_evaluated_under_require() {
    let pki = pki();
    let der = sign(&pki.signer, &[]);
    let down: Arc<dyn RevocationSource> = Arc::new(Double::default());
    let result = verify(
        &der,
        &pki.trust,
        now(),
        RevocationMode::Require,
        Some(down.clone()),
    );
    let failure = result.unwrap_err();
    assert_eq!(failure.code(), "revocation-unavailable", "{failure:?}");
    assert!(failure.to_string().contains("alice"), "{failure}");
    let accepted = verify(
        &der,
        &pki.trust,
        now(),
        RevocationMode::IfAvailable,
        Some(down),
    )
    .expect("if-available accepts");
    let warnings = accepted[0].revocation_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("unavailable"), "{warnings:?}");
}

/// `require` without any source or CRL: untrusted, naming the certificate and what was missing.
#[test]
fn require_without_an_answer_names_the_certificate() {
    let pki = pki();
    let der = sign(&pki.signer, &[]);
    match verify(&der, &pki.trust, now(), RevocationMode::Require, None) {
        Err(Failure::RevocationMissing {
            depth: 0,
            subject,
            missing,
        }) => {
            assert_eq!(subject, "CN=alice");
            assert!(missing.contains("no CRL from its issuer"), "{missing}");
        }
        other => panic!("{other:?}"),
    }
    // Control: off and if-available accept the same message.
    for mode in [RevocationMode::Off, RevocationMode::IfAvailable] {
        assert_eq!(code(&verify(&der, &pki.trust, now(), mode, None)), "valid");
    }
}

/// OCSP first, then the CRL distribution point: a fetched CRL is processed like a given one
/// (good: accepted and confirmed; listing the signer: revoked; signed by another CA: not an
/// answer).
#[test]
fn fetched_crl_counts_like_a_given_one() {
    let pki = pki();
    let t = now();
    let der = sign(&pki.signer, &[]);
    let other_ca = issue("Other CA", None, Kind::Ca, t - DAY, t + DAY);
    let (last, next) = (generalized(t - 3600), generalized(t + DAY));
    let cases = [
        (crl(&pki.root, &[], &last, &next), "valid"),
        (
            crl(&pki.root, &[&pki.signer.cert], &last, &next),
            "certificate-revoked",
        ),
        (crl(&other_ca, &[], &last, &next), "untrusted-certificate"),
    ];
    for (answer, expected) in cases {
        let source = Arc::new(Double {
            ocsp: Some(Box::new(|_: &[u8]| Fetched::Answer(b"<html>".to_vec()))),
            crl: Some(Box::new(move || Fetched::Answer(answer.clone()))),
            ..Double::default()
        });
        let result = verify(
            &der,
            &pki.trust,
            t,
            RevocationMode::Require,
            Some(source.clone()),
        );
        assert_eq!(code(&result), expected, "{result:?}");
        assert_eq!(
            *source.calls.lock().unwrap(),
            [format!("ocsp {OCSP_URL}"), format!("crl {CRL_URL}")],
            "OCSP first, then the distribution point"
        );
        let confirmed = source.confirmed.lock().unwrap().clone();
        if expected == "valid" {
            assert_eq!(confirmed, [format!("crl {CRL_URL}")]);
        } else {
            assert!(confirmed.is_empty(), "{confirmed:?}");
        }
    }
}

/// A given CRL past its nextUpdate: reported at load and named in the failure.
#[test]
fn stale_crl_is_reported_and_named() {
    let pki = pki();
    let t = now();
    let dir = scratch();
    let stale = crl(
        &pki.root,
        &[],
        &generalized(t - 3 * DAY),
        &generalized(t - DAY),
    );
    std::fs::write(dir.join("stale.crl"), &stale).unwrap();
    let root_pem = dir.join("root.pem");
    write_pem(&root_pem, &pki.root.cert);
    let trust = TrustStore::from_pem_files(&[&root_pem], &[dir.join("stale.crl")]).unwrap();
    let status = trust.crl_status(OffsetDateTime::from_unix_timestamp(t).unwrap());
    assert_eq!(status.len(), 1);
    assert!(status[0].stale);
    assert_eq!(status[0].issuer, "CN=Root CA");
    let der = sign(&pki.signer, &[]);
    match verify(&der, &trust, t, RevocationMode::IfAvailable, None) {
        Err(Failure::StaleCrl {
            depth: 0,
            crl_issuer,
            detail,
        }) => {
            assert_eq!(crl_issuer, "CN=Root CA");
            assert!(detail.contains("nextUpdate"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    // With a source, a fresh CRL from the distribution point replaces the stale one.
    let fresh = crl(
        &pki.root,
        &[],
        &generalized(t - 3600),
        &generalized(t + DAY),
    );
    let source = Arc::new(Double {
        crl: Some(Box::new(move || Fetched::Answer(fresh.clone()))),
        ..Double::default()
    });
    let result = verify(&der, &trust, t, RevocationMode::Require, Some(source));
    assert_eq!(code(&result), "valid", "{result:?}");
    // And a fresh CRL is not stale.
    let status = trust.crl_status(OffsetDateTime::from_unix_timestamp(t - 2 * DAY).unwrap());
    assert!(!status[0].stale);
}

// ---------------------------------------------------------------------------------------------
// Loading: DER and PEM CRLs, anchors as PEM bundle, DER or directory; intermediates.

#[test]
fn crls_load_as_der_and_pem() {
    let pki = pki();
    let t = now();
    let dir = scratch();
    let der = crl(
        &pki.root,
        &[&pki.signer.cert],
        &generalized(t - 3600),
        &generalized(t + DAY),
    );
    std::fs::write(dir.join("ca.crl"), &der).unwrap();
    let pem = X509Crl::from_der(&der).unwrap().to_pem().unwrap();
    std::fs::write(dir.join("ca.crl.pem"), [pem.clone(), pem].concat()).unwrap();
    assert_eq!(load_crls(&dir.join("ca.crl")).unwrap().len(), 1);
    assert_eq!(load_crls(&dir.join("ca.crl.pem")).unwrap().len(), 2);
    let root_pem = dir.join("root.pem");
    write_pem(&root_pem, &pki.root.cert);
    let message = sign(&pki.signer, &[]);
    for file in ["ca.crl", "ca.crl.pem"] {
        let trust = TrustStore::from_pem_files(&[&root_pem], &[dir.join(file)]).unwrap();
        assert_eq!(
            code(&verify(&message, &trust, t, RevocationMode::Require, None)),
            "certificate-revoked",
            "{file}"
        );
    }
    std::fs::write(dir.join("garbage.crl"), b"not a CRL").unwrap();
    assert!(load_crls(&dir.join("garbage.crl")).is_err());
}

#[test]
fn anchors_load_from_pem_der_and_directories() {
    let pki = pki();
    let t = now();
    let other = issue("Other CA", None, Kind::Ca, t - DAY, t + DAY);
    let dir = scratch();
    let anchors = dir.join("anchors");
    std::fs::create_dir_all(&anchors).unwrap();
    std::fs::write(anchors.join("root.der"), pki.root.cert.to_der().unwrap()).unwrap();
    write_pem(&anchors.join("other.crt"), &other.cert);
    // OpenSSL's hashed-directory layout: a symlink named by the subject hash.
    #[cfg(unix)]
    std::os::unix::fs::symlink("root.der", anchors.join("0badcafe.0")).unwrap();
    std::fs::write(anchors.join("README"), b"not a certificate").unwrap();
    let loaded = load_certificates(&anchors).unwrap();
    assert_eq!(
        loaded.len(),
        2,
        "duplicates (the symlink) dropped, README ignored"
    );
    let message = sign(&pki.signer, &[]);
    let empty: &[PathBuf] = &[];
    for path in [anchors.clone(), anchors.join("root.der")] {
        let trust = TrustStore::from_pem_files(&[&path], empty).unwrap();
        assert_eq!(
            code(&verify(
                &message,
                &trust,
                t,
                RevocationMode::IfAvailable,
                None
            )),
            "valid",
            "{}",
            path.display()
        );
    }
    // A bundle of both in one PEM file.
    let bundle = dir.join("bundle.pem");
    std::fs::write(
        &bundle,
        [
            other.cert.to_pem().unwrap(),
            pki.root.cert.to_pem().unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    let trust = TrustStore::from_pem_files(&[&bundle], empty).unwrap();
    assert_eq!(trust.anchors().len(), 2);
    assert_eq!(
        code(&verify(
            &message,
            &trust,
            t,
            RevocationMode::IfAvailable,
            None
        )),
        "valid"
    );
    // A directory with nothing usable is an error, not an empty store.
    let empty_dir = dir.join("empty");
    std::fs::create_dir_all(&empty_dir).unwrap();
    assert!(TrustStore::from_pem_files(&[&empty_dir], empty).is_err());
}

/// A message without the intermediate its signer needs: the failure names the missing issuer
/// (was "OpenSSL verify error 20 at depth 0"); the configured intermediates complete the path,
/// without becoming anchors.
#[test]
fn missing_intermediate_is_named_and_configured_intermediates_complete_the_chain() {
    let t = now();
    let root = issue("Root CA", None, Kind::Ca, t - DAY, t + DAY);
    let intermediate = issue("Issuing CA", Some(&root), Kind::Ca, t - DAY, t + DAY);
    let signer = issue("carol", Some(&intermediate), Kind::Signer, t - DAY, t + DAY);
    let message = sign(&signer, &[]);
    let trust = TrustStore::new(vec![root.cert.clone()], Vec::new()).unwrap();
    let failure = verify(&message, &trust, t, RevocationMode::IfAvailable, None).unwrap_err();
    assert_eq!(
        failure,
        Failure::IssuerNotFound {
            depth: 0,
            issuer: "CN=Issuing CA".to_owned()
        }
    );
    assert_eq!(failure.code(), "untrusted-certificate");
    assert!(failure.to_string().contains("Issuing CA"), "{failure}");
    let completed = TrustStore::new(vec![root.cert.clone()], Vec::new())
        .unwrap()
        .with_intermediates(vec![intermediate.cert.clone()]);
    let signers = verify(&message, &completed, t, RevocationMode::IfAvailable, None).unwrap();
    assert_eq!(signers[0].chain().len(), 3);
    // An intermediate is never an anchor: alone it trusts nothing.
    let only_intermediate = TrustStore::new(vec![root.cert.clone()], Vec::new())
        .unwrap()
        .with_intermediates(vec![intermediate.cert.clone()]);
    let other_root = issue("Other Root", None, Kind::Ca, t - DAY, t + DAY);
    let stranger = TrustStore::new(vec![other_root.cert.clone()], Vec::new())
        .unwrap()
        .with_intermediates(vec![intermediate.cert.clone()]);
    assert!(
        verify(
            &message,
            &only_intermediate,
            t,
            RevocationMode::IfAvailable,
            None
        )
        .is_ok()
    );
    assert_eq!(
        code(&verify(
            &message,
            &stranger,
            t,
            RevocationMode::IfAvailable,
            None
        )),
        "untrusted-certificate"
    );
}

/// The chain cache is keyed by the offered certificates too (by their fingerprints since
/// issue 17): the same signer with its intermediate, without it, and with a stranger of the
/// same name must each get the verdict a fresh store gives, in any order on a shared store.
#[test]
fn chain_cache_key_covers_the_offered_certificates() {
    let t = now();
    let root = issue("Root CA", None, Kind::Ca, t - DAY, t + DAY);
    let intermediate = issue("Issuing CA", Some(&root), Kind::Ca, t - DAY, t + DAY);
    let other_root = issue("Other Root", None, Kind::Ca, t - DAY, t + DAY);
    let namesake = issue("Issuing CA", Some(&other_root), Kind::Ca, t - DAY, t + DAY);
    let signer = issue("carol", Some(&intermediate), Kind::Signer, t - DAY, t + DAY);
    let with = sign(&signer, &[&intermediate.cert]);
    let without = sign(&signer, &[]);
    let with_namesake = sign(&signer, &[&namesake.cert]);
    let with_both = sign(&signer, &[&namesake.cert, &intermediate.cert]);
    let shared = TrustStore::new(vec![root.cert.clone()], Vec::new()).unwrap();
    let mut seen = Vec::new();
    for (name, message) in [
        ("with", &with),
        ("without", &without),
        ("with the namesake", &with_namesake),
        ("with both", &with_both),
        ("with", &with),
        ("with the namesake", &with_namesake),
        ("without", &without),
    ] {
        let fresh = TrustStore::new(vec![root.cert.clone()], Vec::new()).unwrap();
        let expected = code(&verify(message, &fresh, t, RevocationMode::Off, None));
        assert_eq!(
            code(&verify(message, &shared, t, RevocationMode::Off, None)),
            expected,
            "{name}"
        );
        seen.push((name, expected));
    }
    assert_eq!(seen[0], ("with", "valid"));
    assert_eq!(seen[1], ("without", "untrusted-certificate"));
    assert_eq!(seen[2].1, "untrusted-certificate", "{seen:?}");
    let (hits, misses) = shared.cache_stats();
    assert_eq!(
        (hits, misses),
        (3, 4),
        "the repeats were served from the cache"
    );
}

/// `--policy`: a named initial policy set requires a chain valid for it (explicit policy); the
/// default anyPolicy accepts a chain without policies.
#[test]
fn named_initial_policy_set_requires_that_policy() {
    let pki = pki();
    let message = sign(&pki.signer, &[]);
    let t = now();
    assert_eq!(
        code(&verify(&message, &pki.trust, t, RevocationMode::Off, None)),
        "valid"
    );
    let strict = TrustStore::new(vec![pki.root.cert.clone()], Vec::new())
        .unwrap()
        .with_policies(vec!["1.3.6.1.4.1.99999.1".to_owned()])
        .unwrap();
    assert_eq!(
        code(&verify(&message, &strict, t, RevocationMode::Off, None)),
        "untrusted-certificate"
    );
    for bad in ["anyPolicy", "1", "1..2", "1.2.x", ""] {
        assert!(
            TrustStore::new(vec![pki.root.cert.clone()], Vec::new())
                .unwrap()
                .with_policies(vec![bad.to_owned()])
                .is_err(),
            "{bad:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The email-trust anchor recipe (contrib/nss-email-anchors.sh).

/// The recipe writes Mozilla's email-trusted roots (NSS builtins, S/MIME trust bit), which
/// differ from Debian's TLS-only system store both ways: roots trusted for email only are in
/// it, roots trusted for TLS only are not. Using the TLS store as S/MIME anchors would trust
/// CAs Mozilla does not trust for email.
#[test]
#[ignore = "needs certutil and modutil (apt-get install libnss3-tools); .ci/run installs them"]
fn nss_email_anchor_recipe_builds_the_email_trust_list() {
    let dir = scratch();
    let out = dir.join("email-anchors.pem");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/nss-email-anchors.sh");
    let output = Command::new("sh")
        .arg(&script)
        .arg(&out)
        .output()
        .expect("sh");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    let empty: &[PathBuf] = &[];
    let store = TrustStore::from_pem_files(&[&out], empty).unwrap();
    let email: std::collections::HashSet<Vec<u8>> = store
        .anchors()
        .iter()
        .map(|cert| cert.to_der().unwrap())
        .collect();
    // 108 with NSS 3.87 (Debian 12); Mozilla adds and removes a few roots a year.
    assert!(
        (80..=160).contains(&email.len()),
        "{} roots: {report}",
        email.len()
    );
    for cert in store.anchors() {
        assert_eq!(
            cert.subject_name().to_der().unwrap(),
            cert.issuer_name().to_der().unwrap(),
            "every anchor is a root"
        );
        let subject = format!("{:?}", cert.subject_name());
        assert!(
            !subject.contains("DigiNotar"),
            "a distrusted root: {subject}"
        );
    }
    let system = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if system.exists() {
        let tls: std::collections::HashSet<Vec<u8>> = load_certificates(system)
            .unwrap()
            .iter()
            .map(|cert| cert.to_der().unwrap())
            .collect();
        let email_only = email.difference(&tls).count();
        let tls_only = tls.difference(&email).count();
        assert!(
            email_only >= 10,
            "email-only roots: {email_only} ({report})"
        );
        assert!(tls_only >= 10, "TLS-only roots: {tls_only} ({report})");
    }
}

/// A certificate that names no OCSP responder or distribution point gives the source nothing
/// to ask: under `if-available` it passes as without a source (no warning, cacheable); under
/// `require` it is untrusted, and the detail says there was nothing to ask.
#[test]
fn certificate_without_revocation_pointers_is_not_a_source_question() {
    let pki = pki();
    let t = now();
    let plain = issue(
        "no pointers",
        Some(&pki.root),
        Kind::Responder(false),
        t - DAY,
        t + DAY,
    );
    let der = sign(&plain, &[]);
    let source = Arc::new(Double::default());
    for _ in 0..2 {
        let signers = verify(
            &der,
            &pki.trust,
            t,
            RevocationMode::IfAvailable,
            Some(source.clone()),
        )
        .unwrap();
        assert!(signers[0].revocation_warnings().is_empty());
    }
    assert!(source.calls.lock().unwrap().is_empty());
    assert_eq!(
        pki.trust.cache_stats().0,
        1,
        "the second run is a cache hit"
    );
    match verify(&der, &pki.trust, t, RevocationMode::Require, Some(source)) {
        Err(Failure::RevocationMissing { missing, .. }) => {
            assert!(missing.contains("no OCSP URL"), "{missing}");
            assert!(missing.contains("no CRL distribution point"), "{missing}");
        }
        other => panic!("{other:?}"),
    }
}
