//! Writing: a detached signature for PGP/MIME signing (RFC 3156 §5) and an encrypted message
//! for PGP/MIME encryption (§4). The MIME around them is built by the caller.

use pgp::composed::{ArmorOptions, DetachedSignature, MessageBuilder, SubpacketConfig};
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::packet::{Subpacket, SubpacketData};
use pgp::types::{KeyDetails, KeyVersion, Password, Timestamp};
use time::OffsetDateTime;

use crate::certificate::{self, SigningKey, hex};
use crate::error::Failure;
use crate::keys::{Certificates, Identity};
use crate::policy::Policy;

/// The hash every signature this crate writes uses (`micalg=pgp-sha256`).
pub const SIGNING_HASH: &str = "pgp-sha256";

/// Why a signature or an encrypted message could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The key is not usable at the signing time (expired, revoked, no valid user ID, weak,
    /// no signing key): what a verifier would reject is not written.
    #[error("OpenPGP key not usable: {0}")]
    Key(Failure),
    /// The recipient certificate has no valid encryption subkey at the time.
    #[error("OpenPGP certificate {fingerprint} has no valid encryption subkey")]
    NoEncryptionKey {
        /// The certificate's fingerprint.
        fingerprint: String,
    },
    /// The time is outside OpenPGP's 32-bit timestamps.
    #[error("time outside the OpenPGP timestamp range")]
    Time,
    /// rPGP failed.
    #[error("OpenPGP: {0}")]
    Openpgp(String),
}

fn openpgp(error: impl std::fmt::Display) -> WriteError {
    WriteError::Openpgp(error.to_string())
}

/// Sign `data` (the first body part of a multipart/signed, exactly as it will be sent, CRLF)
/// with `identity` at `at`: an ASCII-armored binary signature (type 0x00) by a signing
/// (sub)key valid at `at`, with SHA-256, creation time `at` (the library never reads the
/// clock). Returns the armored signature and the `micalg` value.
pub fn sign_detached(
    data: &[u8],
    identity: &Identity,
    at: OffsetDateTime,
    policy: &Policy,
) -> Result<(String, &'static str), WriteError> {
    let seconds = u32::try_from(at.unix_timestamp()).map_err(|_| WriteError::Time)?;
    let public = identity.key.to_public_key();
    let valid =
        certificate::evaluate(&public, i64::from(seconds), policy).map_err(WriteError::Key)?;
    // A valid signing subkey first (GnuPG's default), else the primary key.
    let chosen = public.public_subkeys.iter().find_map(|subkey| {
        match valid.subkey_may_sign(subkey, i64::from(seconds), policy) {
            Ok(SigningKey::Subkey(subkey)) => Some(subkey.key.fingerprint()),
            _ => None,
        }
    });
    let hashed = |fingerprint| -> Result<Vec<Subpacket>, WriteError> {
        Ok(vec![
            Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
                seconds,
            )))
            .map_err(openpgp)?,
            Subpacket::regular(SubpacketData::IssuerFingerprint(fingerprint)).map_err(openpgp)?,
        ])
    };
    let mut rng = rand::thread_rng();
    let signature = match chosen {
        Some(fingerprint) => {
            let secret = identity
                .key
                .secret_subkeys
                .iter()
                .find(|secret| secret.key.fingerprint() == fingerprint)
                .ok_or_else(|| {
                    WriteError::Key(Failure::NotSigningKey {
                        fingerprint: hex(fingerprint.as_bytes()),
                    })
                })?;
            let unhashed = issuer_key_id(&secret.key)?;
            DetachedSignature::sign_binary_data_with_subpackets(
                &mut rng,
                &secret.key,
                &Password::empty(),
                HashAlgorithm::Sha256,
                data,
                SubpacketConfig::UserDefined {
                    hashed: hashed(fingerprint)?,
                    unhashed,
                },
            )
            .map_err(openpgp)?
        }
        None => {
            valid.primary_may_sign().map_err(WriteError::Key)?;
            let primary = &identity.key.primary_key;
            let unhashed = issuer_key_id(primary)?;
            DetachedSignature::sign_binary_data_with_subpackets(
                &mut rng,
                primary,
                &Password::empty(),
                HashAlgorithm::Sha256,
                data,
                SubpacketConfig::UserDefined {
                    hashed: hashed(primary.fingerprint())?,
                    unhashed,
                },
            )
            .map_err(openpgp)?
        }
    };
    let armored = signature
        .to_armored_string(ArmorOptions::default())
        .map_err(openpgp)?;
    Ok((armored, SIGNING_HASH))
}

/// v4 signatures carry the issuer key ID unhashed (RFC 9580 §5.2.3.12), as GnuPG 2.2 expects.
fn issuer_key_id(key: &impl KeyDetails) -> Result<Vec<Subpacket>, WriteError> {
    if key.version() == KeyVersion::V6 {
        return Ok(Vec::new());
    }
    Ok(vec![
        Subpacket::regular(SubpacketData::IssuerKeyId(key.legacy_key_id())).map_err(openpgp)?,
    ])
}

/// Encrypt `plaintext` (the MIME entity to protect) to every certificate of `recipients`
/// (each to its encryption subkeys valid at `at`), as SEIPD v1 with AES-256 (what GnuPG 2.2
/// reads; RFC 9580 SEIPD v2 is not read by GnuPG 2.2). Returns the ASCII-armored message.
pub fn encrypt(
    plaintext: &[u8],
    recipients: &Certificates,
    at: OffsetDateTime,
    policy: &Policy,
) -> Result<String, WriteError> {
    let seconds = at.unix_timestamp();
    let mut rng = rand::thread_rng();
    let mut builder = MessageBuilder::from_bytes("", plaintext.to_vec())
        .seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    let mut any = false;
    for certificate in recipients.iter() {
        let valid = certificate::evaluate(certificate, seconds, policy).map_err(WriteError::Key)?;
        let mut this = false;
        for subkey in &certificate.public_subkeys {
            if valid.subkey_may_encrypt(subkey, seconds, policy) {
                builder
                    .encrypt_to_key(&mut rng, &subkey.key)
                    .map_err(openpgp)?;
                this = true;
            }
        }
        if !this {
            return Err(WriteError::NoEncryptionKey {
                fingerprint: valid.fingerprint.clone(),
            });
        }
        any = true;
    }
    if !any {
        return Err(WriteError::Openpgp("no recipient".to_owned()));
    }
    builder
        .to_armored_string(&mut rng, ArmorOptions::default())
        .map_err(openpgp)
}

impl Identity {
    /// The emails of the identity's user IDs with a valid self-signature at `at`, after
    /// checking that a verifier would accept a signature it makes then (a valid signing key,
    /// not expired, not revoked, under `policy`): what `imipsec sign` correlates before it
    /// signs.
    pub fn signer_emails(
        &self,
        at: OffsetDateTime,
        policy: &Policy,
    ) -> Result<Vec<String>, Failure> {
        let seconds = at.unix_timestamp();
        let public = self.key.to_public_key();
        let valid = certificate::evaluate(&public, seconds, policy)?;
        let subkey = public
            .public_subkeys
            .iter()
            .any(|subkey| valid.subkey_may_sign(subkey, seconds, policy).is_ok());
        if !subkey {
            valid.primary_may_sign()?;
        }
        Ok(valid.emails.clone())
    }

    /// The emails of every user ID, unchecked (for `--danger-skip-identity-checks`).
    pub fn user_id_emails(&self) -> Vec<String> {
        self.key
            .details
            .users
            .iter()
            .filter_map(|user| certificate::user_id_email(user.id.id()))
            .collect()
    }
}

/// LF (rPGP's armor) to CRLF, the canonical form of MIME text (RFC 3156 §3).
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n")
        .trim_end_matches('\n')
        .replace('\n', "\r\n")
}

/// RFC 3156 §5: `entity` (headers and body, CRLF, 7-bit as §3 asks) signed by `identity` at
/// `at`, as a `multipart/signed` entity (its Content-Type header first). `boundary` must not
/// occur in `entity`.
pub fn pgp_mime_signed(
    entity: &[u8],
    identity: &Identity,
    at: OffsetDateTime,
    policy: &Policy,
    boundary: &str,
) -> Result<Vec<u8>, WriteError> {
    check_boundary(entity, boundary)?;
    let (signature, micalg) = sign_detached(entity, identity, at, policy)?;
    let mut out = format!(
        "Content-Type: multipart/signed; micalg={micalg};\r\n\
         \tprotocol=\"application/pgp-signature\"; boundary=\"{boundary}\"\r\n\r\n\
         This is an OpenPGP/MIME signed message (RFC 3156).\r\n--{boundary}\r\n"
    )
    .into_bytes();
    out.extend_from_slice(entity);
    out.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Type: application/pgp-signature; name=\"signature.asc\"\r\n\
             Content-Description: OpenPGP digital signature\r\n\
             Content-Disposition: attachment; filename=\"signature.asc\"\r\n\r\n{}\r\n--{boundary}--\r\n",
            crlf(&signature)
        )
        .as_bytes(),
    );
    Ok(out)
}

/// RFC 3156 §4: `entity` encrypted to `recipients` at `at`, as a `multipart/encrypted`
/// entity (its Content-Type header first).
pub fn pgp_mime_encrypted(
    entity: &[u8],
    recipients: &Certificates,
    at: OffsetDateTime,
    policy: &Policy,
    boundary: &str,
) -> Result<Vec<u8>, WriteError> {
    let armored = encrypt(entity, recipients, at, policy)?;
    Ok(format!(
        "Content-Type: multipart/encrypted;\r\n\
         \tprotocol=\"application/pgp-encrypted\"; boundary=\"{boundary}\"\r\n\r\n\
         This is an OpenPGP/MIME encrypted message (RFC 3156).\r\n--{boundary}\r\n\
         Content-Type: application/pgp-encrypted\r\n\
         Content-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n\
         --{boundary}\r\n\
         Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\
         Content-Description: OpenPGP encrypted message\r\n\
         Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n{}\r\n--{boundary}--\r\n",
        crlf(&armored)
    )
    .into_bytes())
}

fn check_boundary(entity: &[u8], boundary: &str) -> Result<(), WriteError> {
    let valid = !boundary.is_empty()
        && boundary.len() <= 70
        && boundary
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"'()+_,-./:=?".contains(&byte));
    let delimiter = format!("--{boundary}");
    if !valid
        || entity
            .windows(delimiter.len())
            .any(|window| window == delimiter.as_bytes())
    {
        return Err(WriteError::Openpgp(format!(
            "boundary {boundary:?} is not usable for this entity"
        )));
    }
    Ok(())
}
