//! Amplification (issue #11 item 7): CPU time of the worst messages we can build within the
//! default `Limits`, against an ordinary detached-signed message of the same size, in one run
//! on the same thread.
//!
//! Run: `cargo bench -p imipsec-smime --bench amplification` (figures in BENCHMARKS.md).
//! `-- --quick` runs fewer rounds.
//!
//! CPU time is the thread's own (`/proc/thread-self/schedstat`, nanoseconds on the CPU), so
//! other processes on the machine change the figures little. Each figure is the CPU time per
//! message over a batch of at least 0.2 s of CPU; attack and baseline batches are interleaved,
//! five rounds each (one with `--quick`), and the medians are compared.
//!
//! Baseline: the organizer's RSA-2048 signature (certificate + intermediate in the SignedData)
//! over a text/calendar invite padded with DESCRIPTION lines to the attack message's size.
//! "cold": a fresh `TrustStore` per message (no parsed-certificate or chain cache: a sender
//! seen for the first time this minute, and what every attack message gets, since an attacker
//! can always send new certificates); "warm": one store for all rounds (a known sender).
//!
//! Each attack shape is grown (parts, layers, signers) until one more step would exceed a
//! limit: the figure is for the largest message of that shape that is processed in full and
//! verifies. The bench asserts it: every step up to the figure's must be processed in full
//! with every layer verified, and the next step must be refused `limit-exceeded` (a shape
//! refused for another reason, e.g. `malformed-mime` under a stricter MIME walk, panics
//! instead of being reported as a figure). The shapes must be refused
//! `limit-exceeded`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use imipsec_smime::keys::Identity;
use imipsec_smime::sign::{SignOptions, sign_detached};
use imipsec_smime::{
    AlgorithmPolicy, Failure, InspectOptions, Inspection, Limits, TrustStore, inspect,
};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::{MessageDigest, hash};
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use openssl::x509::{X509, X509Crl, X509NameBuilder};
use time::OffsetDateTime;
use time::macros::datetime;

const AT: OffsetDateTime = datetime!(2026-06-01 00:00:00 UTC);

fn certs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../certs")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(certs().join(name)).unwrap()
}

/// Thread CPU time in nanoseconds.
fn cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    stat.split_whitespace().next().unwrap().parse().unwrap()
}

// --- DER writer -------------------------------------------------------------------------------

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

fn integer(bytes: &[u8]) -> Vec<u8> {
    let mut content = bytes.to_vec();
    if content.first().is_none_or(|&b| b & 0x80 != 0) {
        content.insert(0, 0);
    }
    der(0x02, &content)
}

const ID_DATA: &str = "1.2.840.113549.1.7.1";
const ID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";

#[derive(Clone, Copy)]
enum Hash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn oid(self) -> &'static str {
        match self {
            Hash::Sha224 => "2.16.840.1.101.3.4.2.4",
            Hash::Sha256 => "2.16.840.1.101.3.4.2.1",
            Hash::Sha384 => "2.16.840.1.101.3.4.2.2",
            Hash::Sha512 => "2.16.840.1.101.3.4.2.3",
        }
    }
    fn md(self) -> MessageDigest {
        match self {
            Hash::Sha224 => MessageDigest::sha224(),
            Hash::Sha256 => MessageDigest::sha256(),
            Hash::Sha384 => MessageDigest::sha384(),
            Hash::Sha512 => MessageDigest::sha512(),
        }
    }
}

/// A signing key with its certificate.
struct Key {
    key: PKey<Private>,
    cert: X509,
}

impl Key {
    fn load(name: &str) -> Key {
        Key {
            key: PKey::private_key_from_pem(&read(&format!("{name}.key.pem"))).unwrap(),
            cert: X509::from_pem(&read(&format!("{name}.cert.pem"))).unwrap(),
        }
    }

    fn signature_algorithm(&self) -> Vec<u8> {
        if self.key.rsa().is_ok() {
            seq(&[oid("1.2.840.113549.1.1.1"), der(0x05, &[])])
        } else {
            seq(&[oid("1.2.840.10045.4.3.2")])
        }
    }

    /// A SignerInfo over `content` with `digest` (the signature over the attributes hashes
    /// with SHA-256 for EC, with `digest` for RSA PKCS #1 v1.5). `index` (below 60) is the
    /// second of its signingTime: identical SignerInfos are refused as malformed, so each
    /// SignerInfo of a SignedData gets its own.
    fn signer_info(&self, content: &[u8], digest: Hash, index: usize) -> Vec<u8> {
        let attributes = set(&[
            seq(&[oid("1.2.840.113549.1.9.3"), set(&[oid(ID_DATA)])]),
            seq(&[
                oid("1.2.840.113549.1.9.5"),
                set(&[der(0x17, format!("2605312359{index:02}Z").as_bytes())]),
            ]),
            seq(&[
                oid("1.2.840.113549.1.9.4"),
                set(&[der(0x04, &hash(digest.md(), content).unwrap())]),
            ]),
        ]);
        let md = if self.key.rsa().is_ok() {
            digest.md()
        } else {
            MessageDigest::sha256()
        };
        let mut signer = Signer::new(md, &self.key).unwrap();
        let signature = signer.sign_oneshot_to_vec(&attributes).unwrap();
        let mut implicit = attributes;
        implicit[0] = 0xa0;
        let serial = self.cert.serial_number().to_bn().unwrap().to_vec();
        let sid = seq(&[self.cert.issuer_name().to_der().unwrap(), integer(&serial)]);
        let signature_algorithm = if self.key.rsa().is_ok() {
            self.signature_algorithm()
        } else {
            seq(&[oid("1.2.840.10045.4.3.2")])
        };
        seq(&[
            der(0x02, &[1]),
            sid,
            seq(&[oid(digest.oid()), der(0x05, &[])]),
            implicit,
            signature_algorithm,
            der(0x04, &signature),
        ])
    }
}

/// ContentInfo(SignedData) with `signer_infos` and `certs` (DER), opaque when `econtent`.
fn signed_data(
    econtent: Option<&[u8]>,
    digests: &[Hash],
    signer_infos: &[Vec<u8>],
    certs: &[Vec<u8>],
) -> Vec<u8> {
    let mut encap = vec![oid(ID_DATA)];
    if let Some(content) = econtent {
        encap.push(der(0xa0, &der(0x04, content)));
    }
    let algorithms: Vec<Vec<u8>> = digests
        .iter()
        .map(|d| seq(&[oid(d.oid()), der(0x05, &[])]))
        .collect();
    let body = seq(&[
        der(0x02, &[1]),
        set(&algorithms),
        seq(&encap),
        der(0xa0, &certs.concat()),
        der(0x31, &signer_infos.concat()),
    ]);
    seq(&[oid(ID_SIGNED_DATA), der(0xa0, &body)])
}

fn base64_lines(bytes: &[u8]) -> Vec<u8> {
    let text = openssl::base64::encode_block(bytes);
    let mut out = Vec::new();
    for line in text.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// multipart/signed over `content` (an entity) with a hand-built SignedData.
fn detached(content: &[u8], cms: &[u8]) -> Vec<u8> {
    let mut out = b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; \
micalg=sha-256; boundary=\"sig\"\r\n\r\n--sig\r\n"
        .to_vec();
    out.extend_from_slice(content);
    out.extend_from_slice(
        b"\r\n--sig\r\nContent-Type: application/pkcs7-signature\r\n\
Content-Transfer-Encoding: base64\r\n\r\n",
    );
    out.extend_from_slice(&base64_lines(cms));
    out.extend_from_slice(b"--sig--\r\n");
    out
}

/// application/pkcs7-mime (opaque) around `cms`, base64 (binary CMS holds bare LFs and CRs,
/// which the strict MIME walk refuses in a CRLF message: `malformed-mime`).
fn opaque(cms: &[u8]) -> Vec<u8> {
    let mut out = b"Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n\
Content-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    out.extend_from_slice(&base64_lines(cms));
    out
}

/// multipart/signed layer `layer` (its own boundary) over `content` with a SignedData.
fn signed_layer(content: &[u8], cms: &[u8], layer: usize) -> Vec<u8> {
    let boundary = format!("layer-{layer}");
    let mut out = format!(
        "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n\
         \tmicalg=sha-256; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n"
    )
    .into_bytes();
    out.extend_from_slice(content);
    out.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Type: application/pkcs7-signature; \
             name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(&base64_lines(cms));
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

fn mixed(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n".to_vec();
    for part in parts {
        out.extend_from_slice(b"--mix\r\n");
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"--mix--\r\n");
    out
}

fn message(entity: &[u8]) -> Vec<u8> {
    let mut out = b"From: organizer@example.com\r\nTo: attendee@example.com\r\n\
Subject: Planning\r\nDate: Mon, 01 Jun 2026 00:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        .to_vec();
    out.extend_from_slice(entity);
    out
}

/// A text/calendar REQUEST entity of about `size` bytes (DESCRIPTION lines as padding).
fn invite(size: usize) -> Vec<u8> {
    let mut ics = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//bench//EN\r\nMETHOD:REQUEST\r\n\
         BEGIN:VEVENT\r\nUID:amplification@example.com\r\nDTSTAMP:20260601T000000Z\r\n\
         DTSTART:20260615T100000Z\r\nSUMMARY:Planning\r\n\
         ORGANIZER:mailto:organizer@example.com\r\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:attendee@example.com\r\nDESCRIPTION:agenda\r\n",
    );
    while ics.len() + 80 < size {
        ics.push_str(" and another item of the agenda, to be discussed at some length. ok\r\n");
    }
    ics.push_str("END:VEVENT\r\nEND:VCALENDAR\r\n");
    let mut entity = b"Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n".to_vec();
    entity.extend_from_slice(ics.as_bytes());
    entity
}

/// An ordinary message of `size` bytes: the organizer's RSA-2048 signature over an invite.
fn ordinary(size: usize, identity: &Identity) -> Vec<u8> {
    let options = SignOptions {
        signing_time: Some(AT),
        ..SignOptions::default()
    };
    let overhead = message(&sign_detached(&invite(0), identity, &options).unwrap()).len();
    message(&sign_detached(&invite(size.saturating_sub(overhead)), identity, &options).unwrap())
}

struct Setup {
    roots: Vec<X509>,
    crl_pem: Vec<u8>,
    limits: Limits,
    policy: AlgorithmPolicy,
}

/// How a message came out of `inspect`.
#[derive(Debug)]
enum Outcome {
    /// Processed in full, every layer verified.
    Verified,
    /// Refused `limit-exceeded` (the whole message or a layer), with the limit.
    LimitExceeded(String),
    /// Processed in full, every signature verified, but the signer's certificate is not
    /// certified by a trust anchor (an attacker's own key: no CA needed).
    Untrusted,
    /// Anything else: a shape the bench must not report.
    Other(#[allow(dead_code, reason = "read through Debug when a shape panics")] String),
}

impl Setup {
    fn store(&self) -> TrustStore {
        let crl = X509Crl::from_pem(&self.crl_pem).unwrap();
        TrustStore::new(self.roots.clone(), vec![crl]).unwrap()
    }

    fn run(&self, trust: &TrustStore, raw: &[u8]) -> Result<Inspection, imipsec_smime::SmimeError> {
        inspect(
            raw,
            &InspectOptions {
                trust,
                at: AT,
                revocation: imipsec_smime::RevocationMode::default(),
                revocation_source: None,
                policy: &self.policy,
                identities: &[],
                limits: &self.limits,
                danger_decrypt_non_root: false,
                openpgp: None,
            },
        )
    }

    fn outcome(&self, raw: &[u8]) -> Outcome {
        match self.run(&self.store(), raw) {
            Err(imipsec_smime::SmimeError::LimitExceeded(kind)) => {
                Outcome::LimitExceeded(kind.to_string())
            }
            Err(other) => Outcome::Other(other.to_string()),
            Ok(inspection) if inspection.layers().is_empty() => Outcome::Other("no layer".into()),
            Ok(inspection) => {
                let failure = inspection
                    .layers()
                    .iter()
                    .find_map(|layer| layer.outcome().failure().cloned());
                match failure {
                    Some(Failure::LimitExceeded(kind)) => Outcome::LimitExceeded(kind.to_string()),
                    Some(failure)
                        if failure.code() == "untrusted-certificate"
                            && inspection.layers().iter().all(|l| {
                                l.outcome()
                                    .failure()
                                    .is_some_and(|f| f.code() == "untrusted-certificate")
                            }) =>
                    {
                        Outcome::Untrusted
                    }
                    Some(other) => Outcome::Other(format!("{other:?}")),
                    None if inspection
                        .layers()
                        .iter()
                        .all(|l| l.outcome().is_verified()) =>
                    {
                        Outcome::Verified
                    }
                    None => Outcome::Other(format!("{:?}", inspection.layers())),
                }
            }
        }
    }

    /// The largest `n` in 1..=max for which `build(n)` is processed in full and verifies,
    /// with the limit that refuses `n + 1` (None when `max` itself is within the limits).
    /// Panics when a step is refused for anything but a limit, or `n = 1` is refused.
    /// With `untrusted`, every layer must fail on the signer's chain only, after its
    /// signatures verified (an attacker's own certificates), instead of verifying.
    fn largest(
        &self,
        name: &str,
        max: usize,
        untrusted: bool,
        build: &dyn Fn(usize) -> Vec<u8>,
    ) -> (usize, Vec<u8>, Option<String>) {
        let mut best = None;
        for n in 1..=max {
            let raw = build(n);
            match self.outcome(&raw) {
                Outcome::Verified if !untrusted => best = Some((n, raw)),
                Outcome::Untrusted if untrusted => best = Some((n, raw)),
                Outcome::LimitExceeded(limit) => {
                    let (n, raw) = best.unwrap_or_else(|| {
                        panic!("{name}: refused at n = 1 ({limit}): not an attack within limits")
                    });
                    return (n, raw, Some(limit));
                }
                other => {
                    panic!("{name}: n = {n} refused for another reason than a limit: {other:?}")
                }
            }
        }
        let (n, raw) = best.unwrap();
        (n, raw, None)
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    values[values.len() / 2]
}

/// CPU nanoseconds per call of `step`, over a batch of at least `BATCH_NS` of CPU time (the
/// kernel's per-thread accounting is exact over a batch, to a scheduler tick at each end).
fn per_call(mut step: impl FnMut()) -> f64 {
    const BATCH_NS: u64 = 200_000_000;
    let start = cpu_ns();
    let mut calls = 0u64;
    while cpu_ns() - start < BATCH_NS || calls < 3 {
        step();
        calls += 1;
    }
    (cpu_ns() - start) as f64 / calls as f64
}

/// (attack cold, baseline cold, baseline warm): median CPU nanoseconds per message over
/// `rounds` interleaved batches. The fresh trust stores of the cold runs are built outside
/// the measured calls' own work only in that their construction (cloning one anchor and
/// parsing one CRL) is counted for both attack and baseline alike.
fn measure(setup: &Setup, attack: &[u8], baseline: &[u8], rounds: usize) -> (f64, f64, f64) {
    let warm = setup.store();
    black_box(setup.run(&warm, baseline).unwrap());
    let (mut a, mut b, mut w) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(per_call(|| {
            let store = setup.store();
            black_box(setup.run(&store, attack).ok());
        }));
        b.push(per_call(|| {
            let store = setup.store();
            black_box(setup.run(&store, baseline).unwrap());
        }));
        w.push(per_call(|| {
            black_box(setup.run(&warm, baseline).unwrap());
        }));
    }
    (median(a), median(b), median(w))
}

/// `count` distinct self-signed RSA-2048 certificates (one key), as a sender can make offline.
fn junk_certificates(count: usize) -> Vec<Vec<u8>> {
    let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    (0..count)
        .map(|index| {
            let mut name = X509NameBuilder::new().unwrap();
            name.append_entry_by_text("CN", &format!("junk {index}"))
                .unwrap();
            let name = name.build();
            let mut builder = X509::builder().unwrap();
            builder.set_version(2).unwrap();
            let serial = BigNum::from_u32(index as u32 + 1)
                .unwrap()
                .to_asn1_integer()
                .unwrap();
            builder.set_serial_number(&serial).unwrap();
            builder.set_subject_name(&name).unwrap();
            builder.set_issuer_name(&name).unwrap();
            builder.set_pubkey(&key).unwrap();
            builder
                .set_not_before(&Asn1Time::from_unix(1_735_689_600).unwrap())
                .unwrap();
            builder
                .set_not_after(&Asn1Time::from_unix(2_366_841_600).unwrap())
                .unwrap();
            builder.sign(&key, MessageDigest::sha256()).unwrap();
            builder.build().to_der().unwrap()
        })
        .collect()
}

/// A self-signed P-384 certificate for organizer@example.com with its key.
fn self_signed_p384() -> Key {
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).unwrap();
    let key = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "own P-384 key").unwrap();
    let name = name.build();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    let serial = BigNum::from_u32(7).unwrap().to_asn1_integer().unwrap();
    builder.set_serial_number(&serial).unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder
        .set_not_before(&Asn1Time::from_unix(1_735_689_600).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::from_unix(2_366_841_600).unwrap())
        .unwrap();
    let san = openssl::x509::extension::SubjectAlternativeName::new()
        .email("organizer@example.com")
        .build(&builder.x509v3_context(None, None))
        .unwrap();
    builder.append_extension(san).unwrap();
    builder.sign(&key, MessageDigest::sha384()).unwrap();
    Key {
        key,
        cert: builder.build(),
    }
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let rounds = if quick { 1 } else { 5 };
    let setup = Setup {
        roots: vec![
            X509::from_pem(&read("root.cert.pem")).unwrap(),
            X509::from_pem(&read("amplification/p384-root.cert.pem")).unwrap(),
        ],
        crl_pem: read("intermediate.crl.pem"),
        limits: Limits::default(),
        policy: AlgorithmPolicy::default(),
    };
    let der_of = |name: &str| X509::from_pem(&read(name)).unwrap().to_der().unwrap();
    let intermediate = der_of("intermediate.cert.pem");
    let p384_ca1 = der_of("amplification/p384-ca1.cert.pem");
    let p384_ca2 = der_of("amplification/p384-ca2.cert.pem");
    let organizer = Key::load("rsa2048/organizer");
    let p256 = Key::load("p256/organizer");
    let exp32 = Key::load("amplification/exp32");
    let rsa8192 = Key::load("amplification/rsa8192");
    let p384_1 = Key::load("amplification/p384-signer1");
    let p384_2 = Key::load("amplification/p384-signer2");
    let mut identity_pem = read("rsa2048/organizer.key.pem");
    identity_pem.extend(read("rsa2048/organizer.chain.pem"));
    let identity = Identity::from_pem(&identity_pem).unwrap();
    let small = invite(2_000);
    let large = invite(200_000);

    // Detached parts, each signed by `signers` SignerInfos of `key` (with `chain`, its
    // intermediates), the invite last.
    let parts = |key: &Key, chain: &[&[u8]], signers: usize, content: &[u8], n: usize| {
        let mut certs = vec![key.cert.to_der().unwrap()];
        certs.extend(chain.iter().map(|c| c.to_vec()));
        let infos: Vec<Vec<u8>> = (0..signers)
            .map(|index| key.signer_info(content, Hash::Sha256, index))
            .collect();
        let cms = signed_data(None, &[Hash::Sha256], &infos, &certs);
        let part = detached(content, &cms);
        message(&mixed(&vec![part; n]))
    };
    // `n` nested layers, each with `signers` SignerInfos of the organizer per digest of
    // `digests`, every SignerInfo over the whole layer below: opaque (base64) or
    // multipart/signed (only the signature is base64, so the message grows by the signature
    // while the bytes to hash grow with the square of the depth).
    let nested = |signers: usize, digests: &[Hash], opaque_layers: bool, content: &[u8], n| {
        let cert = organizer.cert.to_der().unwrap();
        let mut entity = content.to_vec();
        for layer in 0..n {
            let mut infos = Vec::new();
            for &digest in digests {
                for index in 0..signers {
                    infos.push(organizer.signer_info(&entity, digest, index));
                }
            }
            let econtent = opaque_layers.then_some(entity.as_slice());
            let cms = signed_data(
                econtent,
                digests,
                &infos,
                &[cert.clone(), intermediate.clone()],
            );
            entity = if opaque_layers {
                opaque(&cms)
            } else {
                signed_layer(&entity, &cms, layer)
            };
        }
        message(&entity)
    };
    let junk = junk_certificates(64);
    let cert_bag = |content: &[u8], n: usize| {
        let info = organizer.signer_info(content, Hash::Sha256, 0);
        let mut certs = vec![organizer.cert.to_der().unwrap(), intermediate.clone()];
        certs.extend(junk.iter().take(n).cloned());
        let cms = signed_data(None, &[Hash::Sha256], &[info], &certs);
        message(&detached(content, &cms))
    };
    let all = [Hash::Sha224, Hash::Sha256, Hash::Sha384, Hash::Sha512];
    let rsa = [intermediate.as_slice()];
    let p384_one = [p384_ca1.as_slice()];
    let p384_two = [p384_ca2.as_slice(), p384_ca1.as_slice()];
    // `--profile-nested`: only the nested base64 shape, for `perf record`.
    if std::env::args().any(|arg| arg == "--profile-nested") {
        let raw = nested(8, &[Hash::Sha512], true, &large, 8);
        for _ in 0..20 {
            black_box(setup.run(&setup.store(), &raw).ok());
        }
        return;
    }

    // An attacker's own P-384 key and self-signed certificate: every signature is verified
    // (charged 40 units each) before the chain is found untrusted.
    let own_p384 = self_signed_p384();
    type Shape<'a> = (&'a str, usize, Box<dyn Fn(usize) -> Vec<u8> + 'a>);
    let shapes: Vec<Shape<'_>> = vec![
        (
            "parts, RSA-2048 signer, 2 KB invite each",
            300,
            Box::new(|n| parts(&organizer, &rsa, 1, &small, n)),
        ),
        (
            "parts, P-256 signer",
            300,
            Box::new(|n| parts(&p256, &rsa, 1, &small, n)),
        ),
        (
            "parts, RSA-2048 e=2^32-1 signer",
            300,
            Box::new(|n| parts(&exp32, &rsa, 1, &small, n)),
        ),
        (
            "parts, 8 SignerInfos RSA-2048 e=2^32-1",
            300,
            Box::new(|n| parts(&exp32, &rsa, 8, &small, n)),
        ),
        (
            "SignerInfos, RSA-8192 signer, one part",
            9,
            Box::new(|n| parts(&rsa8192, &rsa, n, &small, 1)),
        ),
        (
            "parts, RSA-8192 signer",
            300,
            Box::new(|n| parts(&rsa8192, &rsa, 1, &small, n)),
        ),
        (
            "SignerInfos, P-384 signer under P-384 CA",
            9,
            Box::new(|n| parts(&p384_1, &p384_one, n, &small, 1)),
        ),
        (
            "parts, P-384 signer under 2 P-384 CAs",
            300,
            Box::new(|n| parts(&p384_2, &p384_two, 1, &small, n)),
        ),
        (
            "nested signed layers, 200 KB, 8 signers",
            16,
            Box::new(|n| nested(8, &[Hash::Sha512], false, &large, n)),
        ),
        (
            "nested signed layers, 200 KB, 4 digests x 2",
            16,
            Box::new(|n| nested(2, &all, false, &large, n)),
        ),
        (
            "nested signed layers, 2 KB, 8 signers",
            16,
            Box::new(|n| nested(8, &[Hash::Sha512], false, &small, n)),
        ),
        (
            "nested base64 layers, 200 KB, 8 signers",
            16,
            Box::new(|n| nested(8, &[Hash::Sha512], true, &large, n)),
        ),
        (
            "nested base64 layers, 2 KB, 8 signers",
            16,
            Box::new(|n| nested(8, &[Hash::Sha512], true, &small, n)),
        ),
        (
            "untrusted: SignerInfos, own P-384 key",
            9,
            Box::new(|n| parts(&own_p384, &[], n, &small, 1)),
        ),
        (
            "certificate bag (distinct certificates)",
            64,
            Box::new(|n| cert_bag(&small, n)),
        ),
    ];

    println!(
        "{:<44} {:>4} {:>8} {:>9} {:>8} {:>8} {:>6} {:>6}  next step refused by",
        "shape (largest within the default limits)",
        "n",
        "bytes",
        "attack us",
        "cold us",
        "warm us",
        "x cold",
        "x warm"
    );
    for (name, max, build) in &shapes {
        let untrusted = name.starts_with("untrusted");
        let (n, raw, next) = setup.largest(name, *max, untrusted, build.as_ref());
        let baseline = ordinary(raw.len(), &identity);
        assert!(matches!(setup.outcome(&baseline), Outcome::Verified));
        let (attack, cold, warm) = measure(&setup, &raw, &baseline, rounds);
        println!(
            "{name:<44} {n:>4} {:>8} {:>9.0} {:>8.0} {:>8.0} {:>6.1} {:>6.1}  {}",
            raw.len(),
            attack / 1e3,
            cold / 1e3,
            warm / 1e3,
            attack / cold,
            attack / warm,
            next.unwrap_or_else(|| format!("(none up to n = {max})")),
        );
    }

    // The shapes, now refused: CPU time until the refusal. Each must be refused
    // `limit-exceeded`.
    let bigexp = Key::load("amplification/bigexp");
    let refused: Vec<(&str, Vec<u8>)> = vec![
        (
            "issue: 85 parts, RSA-3072 3070-bit exponent",
            parts(&bigexp, &rsa, 1, &small, 85),
        ),
        (
            "issue: 15 nested layers x 8 SHA-512 signers",
            nested(8, &[Hash::Sha512], false, &large, 15),
        ),
        (
            "15 nested base64 layers x 8 SHA-512 signers",
            nested(8, &[Hash::Sha512], true, &large, 15),
        ),
    ];
    for (name, raw) in &refused {
        let Outcome::LimitExceeded(limit) = setup.outcome(raw) else {
            panic!(
                "{name}: not refused limit-exceeded: {:?}",
                setup.outcome(raw)
            );
        };
        let baseline = ordinary(raw.len(), &identity);
        let (attack, cold, warm) = measure(&setup, raw, &baseline, rounds.min(3));
        println!(
            "{name:<44} {:>4} {:>8} {:>9.0} {:>8.0} {:>8.0} {:>6.1} {:>6.1}  refused: {limit}",
            "-",
            raw.len(),
            attack / 1e3,
            cold / 1e3,
            warm / 1e3,
            attack / cold,
            attack / warm,
        );
    }
}
