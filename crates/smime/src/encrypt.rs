//! Encryption: `application/pkcs7-mime` with AuthEnvelopedData (RFC 8551 §3.4,
//! RFC 5083) or EnvelopedData (RFC 8551 §3.3, RFC 5652 §6), and sign-then-encrypt
//! (RFC 8551 §3.7).
//!
//! OpenSSL's `CMS_encrypt` does the work: from OpenSSL 3.0 it produces
//! AuthEnvelopedData when given an AEAD cipher (AES-256-GCM here) and EnvelopedData
//! otherwise. It picks the recipient info per certificate: KeyTransRecipientInfo
//! with RSAES-PKCS1-v1_5 for RSA keys (RFC 8551 §2.3: "MUST- support RSA
//! encryption, as specified in \[RFC3370\]"; RSAES-OAEP, a SHOULD+, is not
//! reachable through the safe `openssl` API), KeyAgreeRecipientInfo with ephemeral-static ECDH
//! (dhSinglePass-stdDH-sha1kdf-scheme, AES key wrap; RFC 5753) for EC keys.
//! Content encryption does not involve the clock.

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::Id;
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::X509;

use crate::keys::Identity;
use crate::sign::{SignError, SignOptions, pkcs7_mime_entity, prepare_entity, sign_detached};

/// The content-encryption algorithm (RFC 8551 §2.7).
///
/// RFC 8551 §2.7: agents "MUST support encryption and decryption with AES-128 GCM
/// and AES-256 GCM" and "MUST- support … AES-128 CBC". AES-256-CBC is offered for
/// clients that predate AuthEnvelopedData.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ContentCipher {
    /// AES-256-GCM in AuthEnvelopedData (RFC 5083, RFC 5084), `smime-type=
    /// authEnveloped-data` (RFC 8551 §3.2.2). The default: the content is
    /// authenticated as well as encrypted.
    #[default]
    Aes256Gcm,
    /// AES-256-CBC in EnvelopedData (RFC 5652 §6), `smime-type=enveloped-data`.
    /// Not integrity-protected by itself (RFC 8551 §3.3: "it is possible to replace
    /// ciphertext in such a way that the processed message will still be valid, but
    /// the meaning can be altered"); for clients without AuthEnvelopedData support.
    Aes256Cbc,
}

impl ContentCipher {
    /// The `smime-type` parameter value (RFC 8551 §3.2.2).
    pub fn smime_type(self) -> &'static str {
        match self {
            ContentCipher::Aes256Gcm => "authEnveloped-data",
            ContentCipher::Aes256Cbc => "enveloped-data",
        }
    }

    fn cipher(self) -> Cipher {
        match self {
            ContentCipher::Aes256Gcm => Cipher::aes_256_gcm(),
            ContentCipher::Aes256Cbc => Cipher::aes_256_cbc(),
        }
    }
}

/// Why a message could not be encrypted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// No recipient certificate was given: encrypting to nobody is always a bug.
    #[error("no recipient certificates")]
    NoRecipients,
    /// A recipient certificate holds neither an RSA nor an EC key.
    #[error("recipient certificate {index} has an unsupported key type")]
    UnsupportedRecipientKey {
        /// Position of the certificate in the recipient list.
        index: usize,
    },
    /// The input is not a MIME entity, or signing (for [`sign_and_encrypt`]) failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// OpenSSL's CMS encryption failed.
    #[error("OpenSSL error while encrypting")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

/// Encrypts `entity` (a MIME entity: headers, empty line, body) for every
/// certificate in `recipients` and returns an `application/pkcs7-mime;
/// smime-type=authEnveloped-data|enveloped-data; name=smime.p7m` entity, base64 in
/// 76-char lines (RFC 8551 §3.3, §3.4).
///
/// The entity is canonicalised to CRLF line endings first (RFC 8551 §3.1.1:
/// "MIME entities MUST be canonicalized for enveloping"). Every recipient gets a
/// RecipientInfo; which certificates to encrypt to (and whether they are valid)
/// is the caller's policy. Remember to include the sender's own certificate if
/// the sender must read the message later. The result holds only the MIME
/// headers of the entity and its body.
pub fn encrypt(
    entity: &[u8],
    recipients: &[X509],
    cipher: ContentCipher,
) -> Result<Vec<u8>, EncryptError> {
    if recipients.is_empty() {
        return Err(EncryptError::NoRecipients);
    }
    let mut stack = Stack::new()?;
    for (index, recipient) in recipients.iter().enumerate() {
        let key = recipient.public_key()?;
        if !matches!(key.id(), Id::RSA | Id::EC) {
            return Err(EncryptError::UnsupportedRecipientKey { index });
        }
        stack.push(recipient.clone())?;
    }
    let content = prepare_entity(entity)?;
    // BINARY: the content is already canonical; OpenSSL must not translate it.
    let cms = CmsContentInfo::encrypt(&stack, &content, cipher.cipher(), CMSOptions::BINARY)?;
    let der = cms.to_der()?;
    Ok(pkcs7_mime_entity(cipher.smime_type(), &der))
}

/// Signs `entity` as `multipart/signed` ([`sign_detached`]) and encrypts the
/// result ([`encrypt`]). RFC 8551 §3.7: "When signing first, the signatories are
/// then securely obscured by the enveloping", and the signature stays verifiable
/// over the cleartext after decryption.
pub fn sign_and_encrypt(
    entity: &[u8],
    identity: &Identity,
    sign_options: &SignOptions,
    recipients: &[X509],
    cipher: ContentCipher,
) -> Result<Vec<u8>, EncryptError> {
    if recipients.is_empty() {
        return Err(EncryptError::NoRecipients);
    }
    let signed = sign_detached(entity, identity, sign_options)?;
    encrypt(&signed, recipients, cipher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::certificates_from_pem;
    use std::path::PathBuf;

    const ENTITY: &[u8] =
        b"Content-Type: text/calendar; method=REQUEST\n\nBEGIN:VCALENDAR\nEND:VCALENDAR\n";

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../certs")
                .join(path),
        )
        .unwrap()
    }

    fn der_of(entity: &[u8]) -> Vec<u8> {
        let at = entity.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let text: String = String::from_utf8(entity[at + 4..].to_vec())
            .unwrap()
            .split("\r\n")
            .collect();
        openssl::base64::decode_block(&text).unwrap()
    }

    #[test]
    fn every_recipient_can_decrypt_with_both_ciphers() {
        let recipients: Vec<X509> = ["rsa2048/attendee.cert.pem", "p256/delegate.cert.pem"]
            .iter()
            .flat_map(|p| certificates_from_pem(&read(p)).unwrap())
            .collect();
        for cipher in [ContentCipher::Aes256Gcm, ContentCipher::Aes256Cbc] {
            let entity = encrypt(ENTITY, &recipients, cipher).unwrap();
            let header = format!(
                "Content-Type: application/pkcs7-mime; smime-type={}; name=smime.p7m\r\n",
                cipher.smime_type()
            );
            assert!(entity.starts_with(header.as_bytes()));
            let der = der_of(&entity);
            for (alg, role) in [("rsa2048", "attendee"), ("p256", "delegate")] {
                let identity =
                    Identity::from_pkcs12(&read(&format!("{alg}/{role}.p12")), "imipsec").unwrap();
                let cms = CmsContentInfo::from_der(&der).unwrap();
                let plain = cms
                    .decrypt(identity.private_key(), identity.certificate())
                    .unwrap();
                assert_eq!(
                    plain,
                    b"Content-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
                );
            }
            // Someone not on the list cannot.
            let outsider = Identity::from_pkcs12(&read("rsa2048/stranger.p12"), "imipsec").unwrap();
            let cms = CmsContentInfo::from_der(&der).unwrap();
            assert!(
                cms.decrypt(outsider.private_key(), outsider.certificate())
                    .is_err()
            );
        }
    }

    #[test]
    fn no_recipients_is_an_error() {
        assert!(matches!(
            encrypt(ENTITY, &[], ContentCipher::default()),
            Err(EncryptError::NoRecipients)
        ));
    }
}
