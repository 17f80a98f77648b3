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
