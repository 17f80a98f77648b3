//! The OpenPGP layer on its own, with the real Thunderbird messages and sample keys of
//! `testdata/openpgp/` (see its README): time, policy, limits and failures as typed values.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use imipsec_openpgp::{
    Certificates, Failure, Identity, LimitKind, Limits, Policy, check_control_part, decrypt,
    sign_detached, verify_detached,
};
use time::OffsetDateTime;
use time::macros::datetime;

const AT: OffsetDateTime = datetime!(2026-06-01 00:00 UTC);

fn data(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/openpgp/thunderbird")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn bob() -> Certificates {
    Certificates::from_bytes(&data("bob@openpgp.example-0xfbfcc82a015e7330-pub.asc")).unwrap()
}

fn alice() -> (Certificates, Identity) {
    (
        Certificates::from_bytes(&data("alice@openpgp.example-0xf231550c4f47e38e-pub.asc"))
            .unwrap(),
        Identity::from_bytes(
            &data("alice@openpgp.example-0xf231550c4f47e38e-secret.asc"),
            None,
        )
        .unwrap(),
    )
}

/// Bob's signed message: (signed part exactly as sent, in CRLF; the armored signature).
fn bobs_signature() -> (Vec<u8>, Vec<u8>) {
    let text = String::from_utf8(data(
        "signed-by-0xfbfcc82a015e7330-to-0xf231550c4f47e38e-unencrypted.eml",
    ))
    .unwrap()
    .replace("\r\n", "\n")
    .replace('\n', "\r\n");
    let delimiter = "--rj47z8rbyl2MhEfaEZQptaxOOrVHArWV4";
    let mut parts = text.split(delimiter);
    parts.next();
    let signed = parts.next().unwrap();
    let signed = signed
        .strip_prefix("\r\n")
        .unwrap()
        .strip_suffix("\r\n")
        .unwrap();
    let signature = parts.next().unwrap();
    let body = &signature[signature.find("\r\n\r\n").unwrap() + 4..];
    (signed.as_bytes().to_vec(), body.as_bytes().to_vec())
}

fn verify_bob(at: OffsetDateTime, micalg: &str, limits: &Limits) -> Result<Vec<String>, Failure> {
    let (signed, signature) = bobs_signature();
    verify_detached(
        &signature,
        &signed,
        Some(micalg),
        &bob(),
        at,
        &Policy::default(),
        limits,
    )
    .map(|keys| keys[0].emails().to_vec())
}

#[test]
fn thunderbirds_signature_verifies_with_bobs_certificate() {
    assert_eq!(
        verify_bob(AT, "pgp-sha256", &Limits::default()),
        Ok(vec!["bob@openpgp.example".to_owned()])
    );
}

/// The evaluation time is an argument: before Bob's key existed (2019-10-15) nothing of it
/// is valid.
#[test]
fn before_the_key_existed_it_is_not_yet_valid() {
    assert!(matches!(
        verify_bob(
            datetime!(2019-01-01 00:00 UTC),
            "pgp-sha256",
            &Limits::default()
        ),
        Err(Failure::CertificateExpired {
            not_yet_valid: true,
            ..
        })
    ));
}

#[test]
fn a_micalg_naming_another_hash_fails() {
    let failure = verify_bob(AT, "pgp-sha1", &Limits::default()).unwrap_err();
    assert!(
        matches!(failure, Failure::MicalgMismatch { .. }),
        "{failure:?}"
    );
    assert_eq!(failure.code(), "bad-signature");
}

/// Limits are checked before rPGP parses anything.
#[test]
fn a_signature_part_over_its_limit_is_not_parsed() {
    let limits = Limits {
        signature_bytes: 100,
        ..Limits::default()
    };
    assert_eq!(
        verify_bob(AT, "pgp-sha256", &limits),
        Err(Failure::LimitExceeded(LimitKind::SignatureBytes))
    );
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    for garbage in [
        &b""[..],
        b"-----BEGIN PGP SIGNATURE-----\n\n////\n-----END PGP SIGNATURE-----\n",
        b"\xff\xff\xff\xff",
    ] {
        let failure = verify_detached(
            garbage,
            b"x",
            Some("pgp-sha256"),
            &bob(),
            AT,
            &Policy::default(),
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(failure.code(), "malformed-openpgp", "{failure:?}");
    }
}

#[test]
fn a_signature_this_crate_writes_verifies_and_any_change_breaks_it() {
    let (certificates, identity) = alice();
    let content = b"Content-Type: text/plain\r\n\r\nhello\r\n";
    let (signature, micalg) = sign_detached(content, &identity, AT, &Policy::default()).unwrap();
    let verify = |content: &[u8]| {
        verify_detached(
            signature.as_bytes(),
            content,
            Some(micalg),
            &certificates,
            AT,
            &Policy::default(),
            &Limits::default(),
        )
    };
    let keys = verify(content).unwrap();
    assert_eq!(keys[0].emails(), ["alice@openpgp.example"]);
    assert!(matches!(
        verify(b"Content-Type: text/plain\r\n\r\nhellO\r\n"),
        Err(Failure::BadSignature { .. })
    ));
    // Bob's certificate does not hold Alice's key.
    let failure = verify_detached(
        signature.as_bytes(),
        content,
        Some(micalg),
        &bob(),
        AT,
        &Policy::default(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(failure, Failure::UnknownSigner { .. }),
        "{failure:?}"
    );
    assert_eq!(failure.code(), "untrusted-certificate");
}

#[test]
fn decryption_without_a_key_or_of_garbage_fails_uniformly() {
    let (certificates, identity) = alice();
    let policy = Policy::default();
    let limits = Limits::default();
    assert_eq!(
        decrypt(b"x", &[], &certificates, AT, &policy, &limits).unwrap_err(),
        Failure::NoDecryptionKey
    );
    let failure = decrypt(
        b"-----BEGIN PGP MESSAGE-----\n\nhF4D\n-----END PGP MESSAGE-----\n",
        &[identity],
        &certificates,
        AT,
        &policy,
        &limits,
    )
    .unwrap_err();
    assert_eq!(failure.code(), "decryption-failed", "{failure:?}");
}

#[test]
fn the_control_part_must_say_version_1() {
    assert!(check_control_part(b"Version: 1\r\n").is_ok());
    assert!(check_control_part(b"Version: 2\r\n").is_err());
    assert!(check_control_part(b"").is_err());
}

// RFC 9580 section 9.5 lists SHA3-256 and SHA3-512 for signatures: a signature with either
// verifies and names its hash, which the S/MIME layer's signer maps (it refused them as
// `weak-algorithm` before). GnuPG 2.2 cannot write one; rPGP signs here.
#[test]
fn a_sha3_signature_verifies_and_names_its_hash() {
    use pgp::composed::{ArmorOptions, Deserializable, DetachedSignature, SignedSecretKey};
    use pgp::crypto::hash::HashAlgorithm;
    use pgp::types::Password;
    let (certificates, _) = alice();
    let (secret, _) = SignedSecretKey::from_armor_single(
        &data("alice@openpgp.example-0xf231550c4f47e38e-secret.asc")[..],
    )
    .unwrap();
    let content = b"Content-Type: text/plain\r\n\r\nhello\r\n";
    for (hash, name) in [
        (HashAlgorithm::Sha3_256, "sha3-256"),
        (HashAlgorithm::Sha3_512, "sha3-512"),
    ] {
        let signature = DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &secret.primary_key,
            &Password::empty(),
            hash,
            &content[..],
        )
        .unwrap();
        let armored = signature
            .to_armored_string(ArmorOptions::default())
            .unwrap();
        let keys = verify_detached(
            armored.as_bytes(),
            content,
            Some(&format!("pgp-{name}")),
            &certificates,
            // rPGP stamps the signature with the clock: evaluate just after it.
            OffsetDateTime::now_utc() + time::Duration::minutes(1),
            &Policy::default(),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(keys[0].hash(), name);
    }
}
