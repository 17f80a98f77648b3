//! Decryption of CMS EnvelopedData (RFC 5652 §6) and AuthEnvelopedData (RFC 5083) with
//! OpenSSL's `CMS_decrypt`: RSA key transport (PKCS#1 v1.5, OAEP), ECDH key agreement,
//! AES-CBC and AES-GCM content encryption.

use openssl::cms::CmsContentInfo;

use crate::error::Failure;
use crate::keys::Identity;

/// Decrypt with the first identity that is a recipient. OpenSSL only returns the plaintext when
/// decryption (and, for AuthEnvelopedData, the GCM tag check) succeeded, so a failed tag never
/// yields partial plaintext.
pub(crate) fn decrypt(der: &[u8], identities: &[Identity]) -> Result<Vec<u8>, Failure> {
    if identities.is_empty() {
        return Err(Failure::NoDecryptionKey);
    }
    let content = CmsContentInfo::from_der(der).map_err(|_| Failure::MalformedCms { offset: 0 })?;
    let mut any_recipient = false;
    for identity in identities {
        let certificate = identity.certificate().to_owned();
        match content.decrypt(identity.private_key(), &certificate) {
            Ok(plaintext) => return Ok(plaintext),
            Err(stack) => {
                // OpenSSL's CMS_R_NO_MATCHING_RECIPIENT: this identity is not a recipient.
                let not_recipient = stack
                    .errors()
                    .iter()
                    .any(|error| error.reason() == Some("no matching recipient"));
                any_recipient |= !not_recipient;
            }
        }
    }
    if any_recipient {
        Err(Failure::DecryptionFailed)
    } else {
        Err(Failure::NoDecryptionKey)
    }
}
