//! Shared by `tests/corpora.rs`, `tests/differential.rs` and `tests/verify.rs`: where the external corpora are,
//! how to load their keys and anchors, and the tally that sorts every case into passed, known
//! divergence (listed with its reason in an exceptions file) or unexpected.
//!
//! Nothing here is corpus data: the corpora are read at test time from `IMIPSEC_CORPORA`.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use imipsec_smime::keys::Identity;
use imipsec_smime::{Inspection, LayerKind, LayerOutcome};
use openssl::pkey::PKey;
use openssl::x509::{X509, X509Crl};
use serde::Deserialize;

/// The workspace root, against which a relative `IMIPSEC_CORPORA` is resolved.
const WORKSPACE_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The corpora root. A relative `IMIPSEC_CORPORA` is meant from the workspace root (CI runs
/// `IMIPSEC_CORPORA=../shared/corpora cargo test --workspace -- --ignored` there), while cargo
/// runs test binaries in the crate directory.
pub fn corpora() -> PathBuf {
    let dir = std::env::var_os("IMIPSEC_CORPORA").expect(
        "IMIPSEC_CORPORA must point at the shared corpora (e.g. ../shared/corpora) for this ignored test",
    );
    let dir = PathBuf::from(dir);
    let dir = if dir.is_relative() {
        Path::new(WORKSPACE_ROOT).join(dir)
    } else {
        dir
    };
    assert!(
        dir.join("thunderbird/MANIFEST.md").is_file(),
        "IMIPSEC_CORPORA={} does not hold the shared corpora",
        dir.display()
    );
    dir
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// A certificate file in PEM or DER.
pub fn certificate(path: &Path) -> X509 {
    let bytes = read(path);
    X509::from_pem(&bytes)
        .or_else(|_| X509::from_der(&bytes))
        .unwrap_or_else(|error| panic!("{}: not a certificate: {error}", path.display()))
}

/// A CRL file in PEM or DER.
pub fn crl(path: &Path) -> X509Crl {
    let bytes = read(path);
    X509Crl::from_pem(&bytes)
        .or_else(|_| X509Crl::from_der(&bytes))
        .unwrap_or_else(|error| panic!("{}: not a CRL: {error}", path.display()))
}

/// An identity from a private key (PEM or DER PKCS#8) and a certificate (PEM or DER).
pub fn identity_from_parts(key: &Path, cert: &Path) -> Identity {
    let key_bytes = read(key);
    let key = PKey::private_key_from_pem(&key_bytes)
        .or_else(|_| PKey::private_key_from_pkcs8(&key_bytes))
        .unwrap_or_else(|error| panic!("{}: not a private key: {error}", key.display()));
    let mut pem = key.private_key_to_pem_pkcs8().unwrap();
    pem.extend(certificate(cert).to_pem().unwrap());
    Identity::from_pem(&pem).unwrap()
}

/// Wrap DER CMS as the single `application/pkcs7-mime` entity of a message, so that `inspect`
/// can walk it like received mail.
pub fn pkcs7_mime_message(der: &[u8], smime_type: &str) -> Vec<u8> {
    let mut out = format!(
        "MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type={smime_type}\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    let encoded = openssl::base64::encode_block(der);
    for line in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The outcome of the outermost signature layer of an inspection: `valid`,
/// `invalid:<code>`, or `none` when the message has no signature layer.
pub fn outermost_signature(inspection: &Inspection) -> String {
    let layer = inspection.layers().iter().find(|layer| {
        matches!(
            layer.kind(),
            LayerKind::MultipartSigned | LayerKind::OpaqueSigned
        )
    });
    match layer.map(|layer| layer.outcome()) {
        None => "none".to_string(),
        Some(LayerOutcome::Verified { .. }) => "valid".to_string(),
        Some(outcome) => format!(
            "invalid:{}",
            outcome
                .failure()
                .map(|failure| failure.code())
                .unwrap_or("?")
        ),
    }
}

/// One deliberate divergence: the verdict we give instead of the expected one, and why.
#[derive(Debug, Deserialize)]
pub struct Exception {
    pub expected: String,
    pub ours: String,
    pub reason: String,
}

/// Sorts the cases of one suite. Every case must either match its expectation or be listed in
/// the exceptions file with exactly the verdict we give; a listed case that now matches, or a
/// listed case that no longer exists, is unexpected too, so the file stays exact.
pub struct Tally {
    suite: String,
    exceptions: BTreeMap<String, Exception>,
    seen: BTreeSet<String>,
    passed: usize,
    divergences: Vec<String>,
    unexpected: Vec<String>,
}

impl Tally {
    /// `exceptions` is a JSON file `{ "<suite>": { "<case>": {expected, ours, reason} } }`.
    pub fn new(suite: &str, exceptions: &Path) -> Tally {
        let all: BTreeMap<String, BTreeMap<String, Exception>> =
            serde_json::from_slice(&read(exceptions))
                .unwrap_or_else(|error| panic!("{}: {error}", exceptions.display()));
        Tally {
            suite: suite.to_string(),
            exceptions: all
                .into_iter()
                .find(|(name, _)| name == suite)
                .map(|(_, cases)| cases)
                .unwrap_or_default(),
            seen: BTreeSet::new(),
            passed: 0,
            divergences: Vec::new(),
            unexpected: Vec::new(),
        }
    }

    /// Record one case. `detail` is printed with divergences and failures only.
    pub fn judge(&mut self, case: &str, expected: &str, observed: &str, detail: &str) {
        assert!(
            self.seen.insert(case.to_string()),
            "case {case} judged twice"
        );
        match (self.exceptions.get(case), expected == observed) {
            (None, true) => self.passed += 1,
            (None, false) => self.unexpected.push(format!(
                "{case}: expected {expected}, got {observed} ({detail})"
            )),
            (Some(exception), true) => self.unexpected.push(format!(
                "{case}: now matches the expectation {expected}; remove its exception ({})",
                exception.reason
            )),
            (Some(exception), false) => {
                if exception.expected == expected && exception.ours == observed {
                    self.divergences.push(format!(
                        "{case}: expected {expected}, ours {observed}: {}",
                        exception.reason
                    ));
                } else {
                    self.unexpected.push(format!(
                        "{case}: expected {expected}, got {observed} ({detail}); the exception says expected {}, ours {}",
                        exception.expected, exception.ours
                    ));
                }
            }
        }
    }

    /// Print the summary and fail on anything unexpected.
    pub fn finish(self) {
        if let Some(failure) = self.summarize() {
            panic!("{failure}");
        }
    }

    /// Print the summary; `Some(message)` when anything was unexpected.
    pub fn summarize(self) -> Option<String> {
        let mut unexpected = self.unexpected;
        for case in self.exceptions.keys() {
            if !self.seen.contains(case) {
                unexpected.push(format!("{case}: listed in the exceptions but not run"));
            }
        }
        println!(
            "[{}] passed {}, known divergences {}, unexpected {}",
            self.suite,
            self.passed,
            self.divergences.len(),
            unexpected.len()
        );
        for line in &self.divergences {
            println!("  known divergence  {line}");
        }
        for line in &unexpected {
            println!("  UNEXPECTED        {line}");
        }
        (!unexpected.is_empty()).then(|| {
            format!(
                "[{}] {} unexpected result(s):\n{}",
                self.suite,
                unexpected.len(),
                unexpected.join("\n")
            )
        })
    }
}
