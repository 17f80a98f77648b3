//! Cross-checks against two other S/MIME implementations, run for real:
//!
//! - imipsec → CLIs: messages signed (detached, opaque) and encrypted (AES-256-GCM
//!   AuthEnvelopedData, AES-256-CBC EnvelopedData) here, with RSA-2048 and P-256
//!   identities, verify and decrypt with `openssl cms` and verify with `gpgsm`.
//! - CLIs → imipsec: messages made by `openssl cms -sign/-encrypt` verify and
//!   decrypt with [`imipsec_smime::inspect`].
//!
//! Needs the `openssl` (3.0+) and `gpgsm` (2.2+) executables on PATH; a missing
//! tool fails the test loudly rather than skipping it. Certificates come from
//! `certs/` (see certs/README.md); everything is evaluated at 2026-06-01T00:00:00Z.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use imipsec_smime::encrypt::{ContentCipher, encrypt, sign_and_encrypt};
use imipsec_smime::keys::{Identity, certificates_from_pem};
use imipsec_smime::sign::{Digest, SignOptions, sign_detached, sign_opaque};
use imipsec_smime::{
    AlgorithmPolicy, InspectOptions, Inspection, LayerKind, LayerOutcome, Limits, TrustStore,
    inspect,
};
use openssl::hash::MessageDigest;
use time::OffsetDateTime;
use time::macros::datetime;

/// The evaluation time of every test (certs/README.md).
const AT: OffsetDateTime = datetime!(2026-06-01 00:00:00 UTC);
const AT_EPOCH: &str = "1780272000";
const AT_GPGSM: &str = "20260601T000000";

/// An iMIP-like entity with LF line endings, which signing canonicalises to CRLF.
const ENTITY: &str = "Content-Type: text/calendar; charset=utf-8; method=REQUEST\n\
Content-Transfer-Encoding: 7bit\n\
\n\
BEGIN:VCALENDAR\n\
VERSION:2.0\n\
PRODID:-//imipsec//interop test//EN\n\
METHOD:REQUEST\n\
BEGIN:VEVENT\n\
UID:interop-1@example.com\n\
DTSTAMP:20260601T000000Z\n\
DTSTART:20260610T090000Z\n\
ORGANIZER:mailto:organizer@example.com\n\
ATTENDEE:mailto:attendee@example.com\n\
SUMMARY:Interop\n\
END:VEVENT\n\
END:VCALENDAR\n";

const HEADERS: &str = "From: organizer@example.com\r\n\
To: attendee@example.com\r\n\
Subject: Interop\r\n\
Date: Mon, 1 Jun 2026 00:00:00 +0000\r\n\
MIME-Version: 1.0\r\n";

const ALGORITHMS: [&str; 2] = ["rsa2048", "p256"];

fn canonical_entity() -> Vec<u8> {
    ENTITY.replace('\n', "\r\n").into_bytes()
}

fn canonical_body() -> Vec<u8> {
    let entity = canonical_entity();
    let at = find(&entity, b"\r\n\r\n").unwrap();
    entity[at + 4..].to_vec()
}

fn certs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../certs")
}

fn cert_path(path: &str) -> String {
    certs().join(path).to_str().unwrap().to_owned()
}

fn identity(alg: &str, role: &str) -> Identity {
    let der = std::fs::read(certs().join(format!("{alg}/{role}.p12"))).unwrap();
    Identity::from_pkcs12(&der, "imipsec").unwrap()
}

fn certificate(path: &str) -> openssl::x509::X509 {
    let pem = std::fs::read(certs().join(path)).unwrap();
    certificates_from_pem(&pem).unwrap().remove(0)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A fresh, empty scratch directory per call.
fn scratch(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("interop-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?} (is it installed?): {e}"))
}

fn run_ok(command: &mut Command) -> Output {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

fn message(entity: &[u8]) -> Vec<u8> {
    let mut message = HEADERS.as_bytes().to_vec();
    message.extend_from_slice(entity);
    message
}

/// `openssl cms -verify` of an S/MIME message against the test root; returns the content.
fn openssl_verify(dir: &Path, message_bytes: &[u8]) -> Vec<u8> {
    let input = write(dir, "signed.eml", message_bytes);
    let out = dir.join("verified.out");
    // No `-binary`: OpenSSL 3.0's multipart splitter in binary mode keeps the CR of the
    // CRLF that RFC 2046 §5.1.1 assigns to the boundary delimiter (observed with 3.0.19),
    // so it would hash one byte too many; text mode re-canonicalises and gets it right.
    run_ok(Command::new("openssl").args([
        "cms",
        "-verify",
        "-in",
        &input,
        "-CAfile",
        &cert_path("root.cert.pem"),
        "-attime",
        AT_EPOCH,
        "-purpose",
        "smimesign",
        "-out",
        out.to_str().unwrap(),
    ]));
    std::fs::read(out).unwrap()
}

/// `openssl cms -cmsout -print` of an S/MIME message: the structure as text.
fn openssl_print(dir: &Path, message_bytes: &[u8]) -> String {
    let input = write(dir, "print.eml", message_bytes);
    let output =
        run_ok(Command::new("openssl").args(["cms", "-cmsout", "-print", "-noout", "-in", &input]));
    String::from_utf8(output.stdout).unwrap()
}

/// Splits our `multipart/signed` entity into (signed content, signature DER).
fn split_detached(entity: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let text = std::str::from_utf8(entity).unwrap();
    let boundary = text
        .split("boundary=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let open = format!("\r\n--{boundary}\r\n");
    let first = find(entity, open.as_bytes()).unwrap() + open.len();
    let second = first + find(&entity[first..], open.as_bytes()).unwrap();
    let content = entity[first..second].to_vec();
    let signature_part = &entity[second + open.len()..];
    let body = find(signature_part, b"\r\n\r\n").unwrap() + 4;
    let base64: String = std::str::from_utf8(&signature_part[body..])
        .unwrap()
        .lines()
        .take_while(|line| !line.starts_with("--"))
        .collect();
    (content, openssl::base64::decode_block(&base64).unwrap())
}

// ------------------------------------------------------------------------------------------
// imipsec -> openssl cms
// ------------------------------------------------------------------------------------------

#[test]
fn detached_signatures_verify_with_openssl_cms() {
    for alg in ALGORITHMS {
        for digest in [Digest::Sha256, Digest::Sha384, Digest::Sha512] {
            let dir = scratch("detached");
            let options = SignOptions {
                digest,
                signing_time: Some(datetime!(2026-05-31 12:00:00 UTC)),
                ..SignOptions::default()
            };
            let signed =
                sign_detached(ENTITY.as_bytes(), &identity(alg, "organizer"), &options).unwrap();
            let micalg = format!("micalg={};", digest.micalg());
            assert!(
                find(&signed, micalg.as_bytes()).is_some(),
                "{alg} {digest:?}"
            );
            let content = openssl_verify(&dir, &message(&signed));
            assert_eq!(content, canonical_entity(), "{alg} {digest:?}");
            let printed = openssl_print(&dir, &message(&signed));
            assert!(printed.contains("signingTime"), "{printed}");
            assert!(
                printed.contains("UTCTIME:May 31 12:00:00 2026 GMT"),
                "{printed}"
            );
        }
    }
}

#[test]
fn tampered_detached_content_fails_openssl_cms() {
    let dir = scratch("tampered");
    let signed = sign_detached(
        ENTITY.as_bytes(),
        &identity("rsa2048", "organizer"),
        &SignOptions::default(),
    )
    .unwrap();
    let text = String::from_utf8(signed).unwrap();
    let tampered = text.replace("SUMMARY:Interop", "SUMMARY:Intercept");
    assert_ne!(tampered, text);
    let input = write(&dir, "tampered.eml", &message(tampered.as_bytes()));
    let output = run(Command::new("openssl").args([
        "cms",
        "-verify",
        "-in",
        &input,
        "-CAfile",
        &cert_path("root.cert.pem"),
        "-attime",
        AT_EPOCH,
        "-out",
        "/dev/null",
    ]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("content verify error"), "{stderr}");
}

#[test]
fn opaque_signatures_verify_with_openssl_cms() {
    for alg in ALGORITHMS {
        let dir = scratch("opaque");
        let signed = sign_opaque(
            ENTITY.as_bytes(),
            &identity(alg, "organizer"),
            &SignOptions::default(),
        )
        .unwrap();
        assert!(signed.starts_with(
            b"Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\n"
        ));
        let content = openssl_verify(&dir, &message(&signed));
        assert_eq!(content, canonical_entity(), "{alg}");
        // No signing time was passed, so none is claimed.
        assert!(!openssl_print(&dir, &message(&signed)).contains("signingTime"));
    }
}

#[test]
fn encrypted_messages_decrypt_with_openssl_cms() {
    let recipients = [
        certificate("rsa2048/attendee.cert.pem"),
        certificate("p256/attendee.cert.pem"),
    ];
    for (cipher, content_type) in [
        (ContentCipher::Aes256Gcm, "id-smime-ct-authEnvelopedData"),
        (ContentCipher::Aes256Cbc, "pkcs7-envelopedData"),
    ] {
        let dir = scratch("encrypted");
        let encrypted = encrypt(ENTITY.as_bytes(), &recipients, cipher).unwrap();
        let input = write(&dir, "encrypted.eml", &message(&encrypted));
        let printed = openssl_print(&dir, &message(&encrypted));
        assert!(
            printed.contains(&format!("contentType: {content_type}")),
            "{printed}"
        );
        for alg in ALGORITHMS {
            let out = dir.join(format!("{alg}.out"));
            run_ok(Command::new("openssl").args([
                "cms",
                "-decrypt",
                "-binary",
                "-in",
                &input,
                "-recip",
                &cert_path(&format!("{alg}/attendee.cert.pem")),
                "-inkey",
                &cert_path(&format!("{alg}/attendee.key.pem")),
                "-out",
                out.to_str().unwrap(),
            ]));
            assert_eq!(
                std::fs::read(out).unwrap(),
                canonical_entity(),
                "{alg} {cipher:?}"
            );
        }
        // A key that is not a recipient's cannot decrypt.
        let output = run(Command::new("openssl").args([
            "cms",
            "-decrypt",
            "-in",
            &input,
            "-inkey",
            &cert_path("rsa2048/stranger.key.pem"),
            "-out",
            "/dev/null",
        ]));
        assert!(!output.status.success());
    }
}

#[test]
fn signed_then_encrypted_round_trips_through_openssl_cms() {
    for alg in ALGORITHMS {
        let dir = scratch("sign-encrypt");
        let recipient = certificate(&format!("{alg}/attendee.cert.pem"));
        let sealed = sign_and_encrypt(
            ENTITY.as_bytes(),
            &identity(alg, "organizer"),
            &SignOptions::default(),
            &[recipient],
            ContentCipher::Aes256Gcm,
        )
        .unwrap();
        let input = write(&dir, "sealed.eml", &message(&sealed));
        let decrypted = dir.join("decrypted.eml");
        run_ok(Command::new("openssl").args([
            "cms",
            "-decrypt",
            "-binary",
            "-in",
            &input,
            "-recip",
            &cert_path(&format!("{alg}/attendee.cert.pem")),
            "-inkey",
            &cert_path(&format!("{alg}/attendee.key.pem")),
            "-out",
            decrypted.to_str().unwrap(),
        ]));
        let inner = std::fs::read(decrypted).unwrap();
        assert!(inner.starts_with(b"Content-Type: multipart/signed;"));
        assert_eq!(openssl_verify(&dir, &inner), canonical_entity(), "{alg}");
    }
}

/// The defective identities of certs/special sign fine (signing does not judge
/// certificates) but `openssl cms -verify` rejects each for its documented reason.
#[test]
fn special_identities_are_rejected_by_openssl_cms_for_their_reason() {
    for (name, reason, extra) in [
        ("expired", "certificate has expired", None),
        ("wrong-eku", "unsuitable certificate purpose", None),
        // The PKCS#12 carries the untrusted root, which travels in the SignedData.
        (
            "untrusted",
            "self-signed certificate in certificate chain",
            None,
        ),
        (
            "revoked",
            "certificate revoked",
            Some("intermediate.crl.pem"),
        ),
        ("weak-rsa1024", "EE certificate key too weak", None),
    ] {
        let dir = scratch("special");
        let der = std::fs::read(certs().join(format!("special/{name}.p12"))).unwrap();
        let signer = Identity::from_pkcs12(&der, "imipsec").unwrap();
        let signed = sign_detached(ENTITY.as_bytes(), &signer, &SignOptions::default()).unwrap();
        let input = write(&dir, "special.eml", &message(&signed));
        // `openssl cms` has no -CRLfile: CRLs are read from the -CAfile bundle.
        let mut ca_file = std::fs::read(certs().join("root.cert.pem")).unwrap();
        if let Some(crl) = extra {
            ca_file.extend(std::fs::read(certs().join(crl)).unwrap());
        }
        let ca_file = write(&dir, "ca-and-crl.pem", &ca_file);
        let mut command = Command::new("openssl");
        command.args([
            "cms",
            "-verify",
            "-in",
            &input,
            "-CAfile",
            &ca_file,
            "-attime",
            AT_EPOCH,
            "-purpose",
            "smimesign",
            "-out",
            "/dev/null",
        ]);
        if extra.is_some() {
            command.arg("-crl_check");
        }
        if name == "weak-rsa1024" {
            command.args(["-auth_level", "2"]);
        }
        let output = run(&mut command);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name} verified");
        assert!(stderr.contains(reason), "{name}: {stderr}");
    }
}

// ------------------------------------------------------------------------------------------
// imipsec -> gpgsm
// ------------------------------------------------------------------------------------------

/// A throw-away GnuPG home trusting only the test root, with a faked clock.
struct Gpgsm {
    home: PathBuf,
}

impl Gpgsm {
    fn new() -> Gpgsm {
        let home = scratch("gnupg");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        // No CRL service in tests (revocation is imipsec's own test subject).
        std::fs::write(home.join("gpgsm.conf"), "disable-crl-checks\n").unwrap();
        let root = certificate("root.cert.pem");
        let fingerprint = root
            .digest(MessageDigest::sha1())
            .unwrap()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        // gpg-agent's trustlist: the root is trusted for S/MIME ("S"); "relax" accepts
        // our root's missing policy and flags.
        std::fs::write(
            home.join("trustlist.txt"),
            format!("{fingerprint} S relax\n"),
        )
        .unwrap();
        let gpgsm = Gpgsm { home };
        run_ok(gpgsm.command().args([
            "--import",
            &cert_path("root.cert.pem"),
            &cert_path("intermediate.cert.pem"),
        ]));
        gpgsm
    }

    fn command(&self) -> Command {
        let mut command = Command::new("gpgsm");
        command.env("GNUPGHOME", &self.home).args([
            "--batch",
            "--no-tty",
            "--faked-system-time",
            AT_GPGSM,
        ]);
        command
    }

    /// Runs `gpgsm --verify --output OUT SIGNED` on opaque SignedData; returns (exit
    /// success, status lines, extracted content).
    fn verify_opaque(&self, signed_data: &[u8]) -> (bool, String, Vec<u8>) {
        let input = write(&self.home, "opaque.p7m", signed_data);
        let out = self.home.join("opaque.out");
        let _ = std::fs::remove_file(&out);
        let output = run(self.command().args([
            "--status-fd",
            "1",
            "--output",
            out.to_str().unwrap(),
            "--verify",
            &input,
        ]));
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
            std::fs::read(out).unwrap_or_default(),
        )
    }

    /// Runs `gpgsm --verify SIGNATURE CONTENT`; returns (exit success, status lines).
    fn verify_detached(&self, signature: &[u8], content: &[u8]) -> (bool, String) {
        let signature = write(&self.home, "sig.p7s", signature);
        let content = write(&self.home, "content", content);
        let output =
            run(self
                .command()
                .args(["--status-fd", "1", "--verify", &signature, &content]));
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    }
}

impl Drop for Gpgsm {
    fn drop(&mut self) {
        // Stop the gpg-agent that gpgsm started for this home (and only that one).
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", &self.home)
            .args(["--kill", "all"])
            .output();
    }
}

#[test]
fn detached_signatures_verify_with_gpgsm() {
    let gpgsm = Gpgsm::new();
    for alg in ALGORITHMS {
        for digest in [Digest::Sha256, Digest::Sha512] {
            let options = SignOptions {
                digest,
                signing_time: Some(datetime!(2026-05-31 12:00:00 UTC)),
                ..SignOptions::default()
            };
            let signed =
                sign_detached(ENTITY.as_bytes(), &identity(alg, "organizer"), &options).unwrap();
            let (content, signature) = split_detached(&signed);
            assert_eq!(content, canonical_entity());
            let (ok, status) = gpgsm.verify_detached(&signature, &content);
            assert!(ok, "{alg} {digest:?}: {status}");
            assert!(status.contains("[GNUPG:] GOODSIG"), "{status}");
            assert!(status.contains("[GNUPG:] TRUST_FULLY"), "{status}");

            // The same signature over one changed byte is a BADSIG.
            let mut tampered = content.clone();
            let at = find(&tampered, b"Interop").unwrap();
            tampered[at] = b'X';
            let (ok, status) = gpgsm.verify_detached(&signature, &tampered);
            assert!(!ok, "{status}");
            assert!(status.contains("[GNUPG:] BADSIG"), "{status}");
        }
    }
}

#[test]
fn opaque_signatures_verify_with_gpgsm() {
    let gpgsm = Gpgsm::new();
    for alg in ALGORITHMS {
        let signed = sign_opaque(
            ENTITY.as_bytes(),
            &identity(alg, "organizer"),
            &SignOptions::default(),
        )
        .unwrap();
        let body = find(&signed, b"\r\n\r\n").unwrap() + 4;
        let base64: String = std::str::from_utf8(&signed[body..])
            .unwrap()
            .lines()
            .collect();
        let der = openssl::base64::decode_block(&base64).unwrap();
        let (ok, status, content) = gpgsm.verify_opaque(&der);
        assert!(ok, "{alg}: {status}");
        assert!(status.contains("[GNUPG:] GOODSIG"), "{status}");
        assert_eq!(content, canonical_entity(), "{alg}");
    }
}

// ------------------------------------------------------------------------------------------
// openssl cms -> imipsec, and imipsec -> imipsec
// ------------------------------------------------------------------------------------------

fn trust() -> TrustStore {
    TrustStore::new(vec![certificate("root.cert.pem")], Vec::new()).unwrap()
}

fn inspect_with(raw: &[u8], identities: &[Identity]) -> Inspection {
    let trust = trust();
    let policy = AlgorithmPolicy::default();
    let limits = Limits::default();
    let options = InspectOptions {
        trust: &trust,
        at: AT,
        revocation: imipsec_smime::RevocationMode::default(),
        revocation_source: None,
        policy: &policy,
        identities,
        limits: &limits,
        danger_decrypt_non_root: false,
        openpgp: None,
    };
    inspect(raw, &options).unwrap()
}

/// Asserts the layers are `expected` (outermost first), signatures verified by
/// organizer@example.com, decryption as expected, and the calendar leaf intact.
fn assert_inspection(inspection: &Inspection, expected: &[LayerKind], what: &str) {
    let kinds: Vec<LayerKind> = inspection
        .layers()
        .iter()
        .map(|layer| layer.kind())
        .collect();
    assert_eq!(kinds, expected, "{what}: {inspection:#?}");
    for layer in inspection.layers() {
        match &layer.outcome() {
            LayerOutcome::Verified { signers } => {
                assert_eq!(signers.len(), 1, "{what}");
                assert!(
                    signers[0]
                        .emails()
                        .iter()
                        .any(|e| e.matches("organizer@example.com")),
                    "{what}: {:?}",
                    signers[0].emails()
                );
            }
            LayerOutcome::Decrypted { authenticated } => {
                assert_eq!(
                    *authenticated,
                    layer.kind() == LayerKind::AuthEnveloped,
                    "{what}"
                );
            }
            other => panic!("{what}: layer {:?} failed: {other:?}", layer.kind()),
        }
    }
    let calendar: Vec<_> = inspection
        .leaves()
        .iter()
        .filter(|leaf| leaf.content_type() == "text/calendar")
        .collect();
    assert_eq!(calendar.len(), 1, "{what}: {inspection:#?}");
    assert_eq!(calendar[0].body(), canonical_body(), "{what}");
    if expected
        .iter()
        .any(|k| matches!(k, LayerKind::MultipartSigned | LayerKind::OpaqueSigned))
    {
        assert!(calendar[0].is_signed(inspection), "{what}");
    }
}

/// `openssl cms -sign` (detached unless `opaque`) of the entity with an organizer key.
fn openssl_sign(dir: &Path, alg: &str, entity: &[u8], opaque: bool, md: &str) -> Vec<u8> {
    let input = write(dir, "entity.txt", entity);
    let out = dir.join("openssl-signed.eml");
    let mut command = Command::new("openssl");
    command.args([
        "cms",
        "-sign",
        "-binary",
        "-crlfeol",
        "-md",
        md,
        "-in",
        &input,
        "-signer",
        &cert_path(&format!("{alg}/organizer.cert.pem")),
        "-inkey",
        &cert_path(&format!("{alg}/organizer.key.pem")),
        "-certfile",
        &cert_path("intermediate.cert.pem"),
        "-out",
        out.to_str().unwrap(),
    ]);
    if opaque {
        command.arg("-nodetach");
    }
    run_ok(&mut command);
    std::fs::read(out).unwrap()
}

/// `openssl cms -encrypt` of the entity to the attendee of `alg`.
fn openssl_encrypt(dir: &Path, alg: &str, entity: &[u8], cipher: &str) -> Vec<u8> {
    let input = write(dir, "to-encrypt.txt", entity);
    let out = dir.join("openssl-encrypted.eml");
    run_ok(Command::new("openssl").args([
        "cms",
        "-encrypt",
        "-binary",
        "-crlfeol",
        cipher,
        "-in",
        &input,
        "-out",
        out.to_str().unwrap(),
        &cert_path(&format!("{alg}/attendee.cert.pem")),
    ]));
    std::fs::read(out).unwrap()
}

#[test]
fn openssl_signed_messages_verify_with_imipsec() {
    for alg in ALGORITHMS {
        for md in ["sha256", "sha384", "sha512"] {
            let dir = scratch("openssl-signed");
            let detached = openssl_sign(&dir, alg, &canonical_entity(), false, md);
            let inspection = inspect_with(&message(&detached), &[]);
            assert_inspection(
                &inspection,
                &[LayerKind::MultipartSigned],
                &format!("openssl detached {alg} {md}"),
            );
            let opaque = openssl_sign(&dir, alg, &canonical_entity(), true, md);
            let inspection = inspect_with(&message(&opaque), &[]);
            assert_inspection(
                &inspection,
                &[LayerKind::OpaqueSigned],
                &format!("openssl opaque {alg} {md}"),
            );
        }
    }
}

#[test]
fn openssl_encrypted_messages_decrypt_with_imipsec() {
    for alg in ALGORITHMS {
        for (cipher, kind) in [
            ("-aes-256-gcm", LayerKind::AuthEnveloped),
            ("-aes-256-cbc", LayerKind::Enveloped),
        ] {
            let dir = scratch("openssl-encrypted");
            let encrypted = openssl_encrypt(&dir, alg, &canonical_entity(), cipher);
            let inspection = inspect_with(&message(&encrypted), &[identity(alg, "attendee")]);
            assert_inspection(&inspection, &[kind], &format!("openssl {cipher} {alg}"));

            // Signed by openssl, then encrypted by openssl.
            let signed = openssl_sign(&dir, alg, &canonical_entity(), false, "sha256");
            let sealed = openssl_encrypt(&dir, alg, &signed, cipher);
            let inspection = inspect_with(&message(&sealed), &[identity(alg, "attendee")]);
            assert_inspection(
                &inspection,
                &[kind, LayerKind::MultipartSigned],
                &format!("openssl sign+{cipher} {alg}"),
            );
        }
    }
}

#[test]
fn imipsec_made_messages_verify_with_imipsec() {
    for alg in ALGORITHMS {
        let organizer = identity(alg, "organizer");
        let options = SignOptions::default();
        let detached = sign_detached(ENTITY.as_bytes(), &organizer, &options).unwrap();
        let inspection = inspect_with(&message(&detached), &[]);
        assert_inspection(&inspection, &[LayerKind::MultipartSigned], "detached");

        let opaque = sign_opaque(ENTITY.as_bytes(), &organizer, &options).unwrap();
        let inspection = inspect_with(&message(&opaque), &[]);
        assert_inspection(&inspection, &[LayerKind::OpaqueSigned], "opaque");

        let recipient = certificate(&format!("{alg}/attendee.cert.pem"));
        for (cipher, kind) in [
            (ContentCipher::Aes256Gcm, LayerKind::AuthEnveloped),
            (ContentCipher::Aes256Cbc, LayerKind::Enveloped),
        ] {
            let sealed = sign_and_encrypt(
                ENTITY.as_bytes(),
                &organizer,
                &options,
                std::slice::from_ref(&recipient),
                cipher,
            )
            .unwrap();
            let inspection = inspect_with(&message(&sealed), &[identity(alg, "attendee")]);
            assert_inspection(
                &inspection,
                &[kind, LayerKind::MultipartSigned],
                &format!("sign+encrypt {cipher:?}"),
            );
        }
    }
}
