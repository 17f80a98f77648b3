//! Decryption of CMS EnvelopedData (RFC 5652 §6) and AuthEnvelopedData (RFC 5083) with
//! OpenSSL's `CMS_decrypt`: RSA key transport (PKCS#1 v1.5, OAEP), ECDH key agreement,
//! AES-CBC and AES-GCM content encryption.
//!
//! **No oracle** (issue #11 item 8). Whatever makes decryption fail (the message is not for
//! us, a key-transport block with bad PKCS#1 v1.5 padding, a wrong content-encryption key, a
//! bad CBC padding, a failed GCM tag), [`decrypt`] returns the one value
//! [`Failure::DecryptionFailed`], with one text, and never looks at OpenSSL's error messages.
//! `CMS_decrypt` is called without the recipient certificate (`cert` NULL, the `openssl`
//! crate's `decrypt_without_cert_check`): only then does OpenSSL apply its countermeasure
//! against the Million Message Attack (Bleichenbacher 1998) on PKCS#1 v1.5 key transport:
//! it tries the key on every key-transport RecipientInfo, requires a recovered key of the
//! cipher's exact length, and on failure continues with a random key, so a padding error and
//! a wrong key both end in the same failed content decryption, with no early exit.
//! Which of our identities to try is decided beforehand from the RecipientInfos' public
//! identifiers (issuer and serial number, or subject key identifier), so a key that is not a
//! recipient's never meets the ciphertext (with CBC, a random key yields valid padding about
//! once in 256 tries: garbage that would pass for a plaintext). Only "no key configured at
//! all" (`no-decryption-key`) is different, and it depends on our configuration, not on
//! the message.
// Untrusted input reaches every function here: no indexing or slicing that can panic
// (get / split_at_checked / patterns instead), issue #11 item 1.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use openssl::cms::CmsContentInfo;

use rasn::types::Any;

use crate::cms::decode::{self, children, contents};
use crate::cms::oid;
use crate::error::Failure;
use crate::keys::Identity;

/// Decrypt with the identities the message names as recipients, in the order given. OpenSSL
/// only returns the plaintext when decryption (and, for AuthEnvelopedData, the GCM tag check)
/// succeeded, so a failed tag never yields partial plaintext. Every failure that depends on
/// the message's cryptographic content is [`Failure::DecryptionFailed`] (module docs); a
/// structure that does not parse is `malformed-cms` (its shape is public anyway).
pub(crate) fn decrypt(der: &[u8], identities: &[Identity]) -> Result<Vec<u8>, Failure> {
    if identities.is_empty() {
        return Err(Failure::NoDecryptionKey);
    }
    check_gcm_tag_length(der)?;
    let recipients = recipient_ids(der)?;
    let content = CmsContentInfo::from_der(der).map_err(|_| Failure::MalformedCms { offset: 0 })?;
    for identity in identities {
        if !recipients
            .iter()
            .any(|rid| rid.names(identity.certificate()))
        {
            continue;
        }
        // The error stack is deliberately not read: every failure is the same failure.
        if let Ok(plaintext) = content.decrypt_without_cert_check(identity.private_key()) {
            return Ok(plaintext);
        }
    }
    Err(Failure::DecryptionFailed)
}

/// A RecipientInfo's identifier of the recipient's certificate (RFC 5652 §6.2.1, §6.2.2).
#[derive(Debug, PartialEq, Eq)]
enum RecipientId {
    /// IssuerAndSerialNumber: the issuer Name's DER and the serialNumber INTEGER contents.
    IssuerSerial { issuer: Vec<u8>, serial: Vec<u8> },
    /// A subjectKeyIdentifier.
    KeyId(Vec<u8>),
}

impl RecipientId {
    /// Whether `certificate` is the one this identifier names.
    fn names(&self, certificate: &openssl::x509::X509Ref) -> bool {
        match self {
            RecipientId::IssuerSerial { issuer, serial } => {
                let Ok(der_bytes) = certificate.to_der() else {
                    return false;
                };
                x509_parser::parse_x509_certificate(&der_bytes).is_ok_and(|(_, parsed)| {
                    parsed.tbs_certificate.issuer.as_raw() == issuer.as_slice()
                        && parsed.raw_serial() == serial.as_slice()
                })
            }
            RecipientId::KeyId(key_id) => certificate
                .subject_key_id()
                .is_some_and(|ski| ski.as_slice() == key_id.as_slice()),
        }
    }
}

/// The recipient identifiers of every key-transport (`ktri`) and key-agreement (`kari`)
/// RecipientInfo of an EnvelopedData or AuthEnvelopedData (other kinds name no certificate),
/// decoded with `rasn` (`cms::decode`: strict lengths and OIDs first).
fn recipient_ids(der_bytes: &[u8]) -> Result<Vec<RecipientId>, Failure> {
    let malformed = || Failure::MalformedCms { offset: 0 };
    let (content_type, content) = decode::content_info(der_bytes)?;
    if content_type != oid::ENVELOPED_DATA && content_type != oid::AUTH_ENVELOPED_DATA {
        return Err(Failure::UnexpectedContentType { oid: content_type });
    }
    // EnvelopedData / AuthEnvelopedData ::= SEQUENCE { version, originatorInfo [0] IMPLICIT
    //   OPTIONAL, recipientInfos SET OF RecipientInfo, ... }
    let fields = sequence(&content).ok_or_else(malformed)?;
    let mut fields = fields.iter();
    if tag_of(fields.next()) != Some(INTEGER) {
        return Err(malformed());
    }
    let mut recipient_infos = fields.next();
    if tag_of(recipient_infos) == Some(0xa0) {
        recipient_infos = fields.next();
    }
    let recipient_infos = recipient_infos
        .filter(|set| tag_of(Some(set)) == Some(SET))
        .and_then(|set| children(set.as_bytes()))
        .ok_or_else(malformed)?;
    let mut ids = Vec::new();
    for info in &recipient_infos {
        match tag_of(Some(info)) {
            // KeyTransRecipientInfo ::= SEQUENCE { version, rid RecipientIdentifier, ... }
            Some(SEQUENCE) => {
                let parts = children(info.as_bytes()).ok_or_else(malformed)?;
                ids.push(recipient_id(parts.get(1).ok_or_else(malformed)?)?);
            }
            // [1] KeyAgreeRecipientInfo ::= SEQUENCE { version, originator [0] EXPLICIT,
            //   ukm [1] EXPLICIT OPTIONAL, keyEncryptionAlgorithm, recipientEncryptedKeys
            //   SEQUENCE OF RecipientEncryptedKey { rid KeyAgreeRecipientIdentifier, ... } }
            Some(0xa1) => {
                let parts = children(info.as_bytes()).ok_or_else(malformed)?;
                let mut parts = parts.iter().skip(1);
                if tag_of(parts.next()) != Some(0xa0) {
                    return Err(malformed());
                }
                let mut next = parts.next();
                if tag_of(next) == Some(0xa1) {
                    next = parts.next();
                }
                if tag_of(next) != Some(SEQUENCE) {
                    return Err(malformed());
                }
                let keys = parts
                    .next()
                    .filter(|keys| tag_of(Some(keys)) == Some(SEQUENCE))
                    .and_then(|keys| children(keys.as_bytes()))
                    .ok_or_else(malformed)?;
                for key in &keys {
                    let rid = sequence(key)
                        .and_then(|parts| parts.into_iter().next())
                        .ok_or_else(malformed)?;
                    ids.push(recipient_id(&rid)?);
                }
            }
            // KEKRecipientInfo [2], PasswordRecipientInfo [3], OtherRecipientInfo [4]: no
            // certificate; never ours.
            _ => {}
        }
    }
    Ok(ids)
}

const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;

/// The identifier octet of an element, as received.
fn tag_of(element: Option<&Any>) -> Option<u8> {
    element.and_then(|element| element.as_bytes().first().copied())
}

/// The elements of a SEQUENCE.
fn sequence(element: &Any) -> Option<Vec<Any>> {
    if tag_of(Some(element)) != Some(SEQUENCE) {
        return None;
    }
    children(element.as_bytes())
}

/// RecipientIdentifier (`[0]` IMPLICIT SubjectKeyIdentifier) or KeyAgreeRecipientIdentifier
/// (`[0]` IMPLICIT RecipientKeyIdentifier SEQUENCE { subjectKeyIdentifier, ... }), or
/// IssuerAndSerialNumber in both.
fn recipient_id(rid: &Any) -> Result<RecipientId, Failure> {
    let malformed = || Failure::MalformedCms { offset: 0 };
    match tag_of(Some(rid)) {
        Some(SEQUENCE) => {
            let parts = children(rid.as_bytes()).ok_or_else(malformed)?;
            let (Some(issuer), Some(serial)) = (parts.first(), parts.get(1)) else {
                return Err(malformed());
            };
            if tag_of(Some(issuer)) != Some(SEQUENCE) || tag_of(Some(serial)) != Some(INTEGER) {
                return Err(malformed());
            }
            Ok(RecipientId::IssuerSerial {
                issuer: issuer.as_bytes().to_vec(),
                serial: contents(serial.as_bytes()).ok_or_else(malformed)?,
            })
        }
        Some(0x80) => Ok(RecipientId::KeyId(
            contents(rid.as_bytes()).ok_or_else(malformed)?,
        )),
        Some(0xa0) => {
            let key_id = children(rid.as_bytes())
                .and_then(|parts| parts.into_iter().next())
                .filter(|key_id| tag_of(Some(key_id)) == Some(OCTET_STRING))
                .ok_or_else(malformed)?;
            Ok(RecipientId::KeyId(
                contents(key_id.as_bytes()).ok_or_else(malformed)?,
            ))
        }
        _ => Err(malformed()),
    }
}

/// RFC 5084 section 3.2: the GCM ICV (the AuthEnvelopedData `mac`) is 12 to 16 octets,
/// `aes-ICVlen` in GCMParameters says which ("AES-GCM-ICVlen ::= INTEGER (12 | 13 | 14 | 15 |
/// 16)", DEFAULT 12). OpenSSL's `CMS_decrypt` hands the tag to the cipher with the `mac`'s
/// own length, so a `mac` cut down to one byte was checked only that far: a forger needed
/// 256 guesses, and the layer was still reported `authenticated`. Found by the attack suite
/// (crates/pipeline/tests/attacks.rs, `gcm_tag_flipped_or_truncated_is_decryption_failed`).
/// A `mac` outside 12..=16 octets, or not as long as an explicit `aes-ICVlen`, is a failed
/// decryption. (Without `aes-ICVlen`, a 16-octet tag is accepted: longer than the default,
/// and what some encoders write without the parameter.)
fn check_gcm_tag_length(der_bytes: &[u8]) -> Result<(), Failure> {
    let malformed = || Failure::MalformedCms { offset: 0 };
    let (content_type, content) = decode::content_info(der_bytes)?;
    if content_type != oid::AUTH_ENVELOPED_DATA {
        return Ok(());
    }
    // AuthEnvelopedData ::= SEQUENCE { version, originatorInfo [0] OPTIONAL, recipientInfos,
    //   authEncryptedContentInfo, authAttrs [1] OPTIONAL, mac, unauthAttrs [2] OPTIONAL }
    let mut declared_icv_length = None;
    let mut mac_length = None;
    let mut seen_encrypted_content_info = false;
    for field in &sequence(&content).ok_or_else(malformed)? {
        if !seen_encrypted_content_info {
            if tag_of(Some(field)) == Some(SEQUENCE) {
                seen_encrypted_content_info = true;
                // EncryptedContentInfo ::= SEQUENCE { contentType, contentEncryptionAlgorithm
                //   SEQUENCE { algorithm, GCMParameters SEQUENCE { aes-nonce, aes-ICVlen } }, ... }
                let algorithm = children(field.as_bytes())
                    .and_then(|parts| parts.into_iter().nth(1))
                    .and_then(|algorithm| children(algorithm.as_bytes()))
                    .ok_or_else(malformed)?;
                if let Some(parameters) = algorithm.get(1)
                    && tag_of(Some(parameters)) == Some(SEQUENCE)
                    && let Some(icv) = children(parameters.as_bytes())
                        .ok_or_else(malformed)?
                        .get(1)
                {
                    if tag_of(Some(icv)) != Some(INTEGER) {
                        return Err(malformed());
                    }
                    declared_icv_length =
                        Some(match contents(icv.as_bytes()).ok_or_else(malformed)?[..] {
                            [length] => usize::from(length),
                            _ => 0,
                        });
                }
            }
            continue;
        }
        if tag_of(Some(field)) == Some(OCTET_STRING) {
            mac_length = Some(contents(field.as_bytes()).ok_or_else(malformed)?.len());
            break;
        }
    }
    let Some(mac_length) = mac_length else {
        return Err(malformed());
    };
    let icv_in_range = |length: usize| (12..=16).contains(&length);
    let consistent = match declared_icv_length {
        Some(declared) => icv_in_range(declared) && mac_length == declared,
        None => icv_in_range(mac_length),
    };
    if consistent {
        Ok(())
    } else {
        Err(Failure::DecryptionFailed)
    }
}

#[cfg(test)]
mod tests {
    use openssl::symm::Cipher;

    use super::*;
    use crate::keys::certificates_from_pem;

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/../../certs/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    /// DER of a tag-length-value with a definite length.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            let length = (content.len() as u16).to_be_bytes();
            out.extend_from_slice(&[0x82, length[0], length[1]]);
        }
        out.extend_from_slice(content);
        out
    }

    /// Regression: a truncated GCM tag (AuthEnvelopedData `mac`) was accepted because
    /// OpenSSL checks only as many tag bytes as the `mac` holds (see `check_gcm_tag_length`).
    #[test]
    fn truncated_gcm_tag_is_refused() {
        let recipient = certificates_from_pem(&read("rsa2048/attendee.cert.pem")).unwrap();
        let mut stack = openssl::stack::Stack::new().unwrap();
        stack.push(recipient[0].clone()).unwrap();
        let cms = CmsContentInfo::encrypt(
            &stack,
            b"Content-Type: text/plain\r\n\r\nhello\r\n",
            Cipher::aes_256_gcm(),
            openssl::cms::CMSOptions::BINARY,
        )
        .unwrap();
        let der_bytes = cms.to_der().unwrap();
        let mut identity_pem = read("rsa2048/attendee.key.pem");
        identity_pem.extend(read("rsa2048/attendee.chain.pem"));
        let identity = Identity::from_pem(&identity_pem).unwrap();
        assert!(decrypt(&der_bytes, std::slice::from_ref(&identity)).is_ok());

        // Rebuild the ContentInfo with the mac (the last field) cut to `keep` bytes.
        let (_, content) = decode::content_info(&der_bytes).unwrap();
        let fields = children(content.as_bytes()).unwrap();
        let (mac, rest) = fields.split_last().unwrap();
        let mac = contents(mac.as_bytes()).unwrap();
        assert_eq!(mac.len(), 16);
        for keep in [15, 12, 4, 1] {
            let mut body: Vec<u8> = rest.iter().flat_map(|f| f.as_bytes().to_vec()).collect();
            body.extend(tlv(OCTET_STRING, &mac[..keep]));
            let info = [
                tlv(
                    0x06,
                    &[
                        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17,
                    ],
                ),
                tlv(0xa0, &tlv(SEQUENCE, &body)),
            ]
            .concat();
            let truncated = tlv(SEQUENCE, &info);
            assert!(
                matches!(
                    decrypt(&truncated, std::slice::from_ref(&identity)),
                    Err(Failure::DecryptionFailed)
                ),
                "tag cut to {keep} bytes"
            );
        }
    }
}
