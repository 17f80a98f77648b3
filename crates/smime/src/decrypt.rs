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

use crate::cms::oid;
use crate::der::{self, Tlv, tag};

/// The content type OID of a ContentInfo (RFC 5652 §3), and its `[0] EXPLICIT` content, read
/// by the bounded reader in `der` (which stays for EnvelopedData only, see there).
fn content_info(der_bytes: &[u8]) -> Result<(String, Tlv<'_>), Failure> {
    let malformed = |error: der::DerError| Failure::MalformedCms {
        offset: error.offset,
    };
    let outer = der::read_all(der_bytes)
        .and_then(|tlv| tlv.expect(tag::SEQUENCE))
        .map_err(malformed)?;
    let mut children = outer.children();
    let content_type = next(&mut children, outer.offset).and_then(der::read_oid);
    let content_type = content_type.map_err(malformed)?;
    let explicit = next(&mut children, outer.offset)
        .and_then(|tlv| tlv.expect(0xa0))
        .map_err(malformed)?;
    let mut inner = explicit.children();
    let content = next(&mut inner, explicit.offset).map_err(malformed)?;
    Ok((content_type, content))
}

fn next<'a>(children: &mut der::Children<'a>, offset: usize) -> Result<Tlv<'a>, der::DerError> {
    children.next().unwrap_or(Err(der::DerError { offset }))
}

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
enum RecipientId<'a> {
    /// IssuerAndSerialNumber: the issuer Name's DER and the serialNumber INTEGER contents.
    IssuerSerial { issuer: &'a [u8], serial: &'a [u8] },
    /// A subjectKeyIdentifier.
    KeyId(&'a [u8]),
}

impl RecipientId<'_> {
    /// Whether `certificate` is the one this identifier names.
    fn names(&self, certificate: &openssl::x509::X509Ref) -> bool {
        match self {
            RecipientId::IssuerSerial { issuer, serial } => {
                let Ok(der_bytes) = certificate.to_der() else {
                    return false;
                };
                x509_parser::parse_x509_certificate(&der_bytes).is_ok_and(|(_, parsed)| {
                    parsed.tbs_certificate.issuer.as_raw() == *issuer
                        && parsed.raw_serial() == *serial
                })
            }
            RecipientId::KeyId(key_id) => certificate
                .subject_key_id()
                .is_some_and(|ski| ski.as_slice() == *key_id),
        }
    }
}

/// The recipient identifiers of every key-transport (`ktri`) and key-agreement (`kari`)
/// RecipientInfo of an EnvelopedData or AuthEnvelopedData (other kinds name no certificate).
fn recipient_ids(der_bytes: &[u8]) -> Result<Vec<RecipientId<'_>>, Failure> {
    let malformed = |error: der::DerError| Failure::MalformedCms {
        offset: error.offset,
    };
    let (content_type, content) = content_info(der_bytes)?;
    if content_type != oid::ENVELOPED_DATA && content_type != oid::AUTH_ENVELOPED_DATA {
        return Err(Failure::UnexpectedContentType { oid: content_type });
    }
    // EnvelopedData / AuthEnvelopedData ::= SEQUENCE { version, originatorInfo [0] IMPLICIT
    //   OPTIONAL, recipientInfos SET OF RecipientInfo, ... }
    let content = content.expect(tag::SEQUENCE).map_err(malformed)?;
    let mut fields = content.children();
    let mut field = || -> Result<Tlv<'_>, Failure> {
        fields
            .next()
            .unwrap_or(Err(der::DerError {
                offset: content.offset,
            }))
            .map_err(malformed)
    };
    field()?.expect(tag::INTEGER).map_err(malformed)?;
    let mut recipient_infos = field()?;
    if recipient_infos.tag == 0xa0 {
        recipient_infos = field()?;
    }
    let recipient_infos = recipient_infos.expect(tag::SET).map_err(malformed)?;
    let mut ids = Vec::new();
    for info in recipient_infos.children() {
        let info = info.map_err(malformed)?;
        let mut parts = info.children();
        let mut part = || -> Result<Tlv<'_>, Failure> {
            parts
                .next()
                .unwrap_or(Err(der::DerError {
                    offset: info.offset,
                }))
                .map_err(malformed)
        };
        match info.tag {
            // KeyTransRecipientInfo ::= SEQUENCE { version, rid RecipientIdentifier, ... }
            tag::SEQUENCE => {
                part()?;
                ids.push(recipient_id(part()?)?);
            }
            // [1] KeyAgreeRecipientInfo ::= SEQUENCE { version, originator [0] EXPLICIT,
            //   ukm [1] EXPLICIT OPTIONAL, keyEncryptionAlgorithm, recipientEncryptedKeys
            //   SEQUENCE OF RecipientEncryptedKey { rid KeyAgreeRecipientIdentifier, ... } }
            0xa1 => {
                part()?;
                part()?.expect(0xa0).map_err(malformed)?;
                let mut next = part()?;
                if next.tag == 0xa1 {
                    next = part()?;
                }
                next.expect(tag::SEQUENCE).map_err(malformed)?;
                let keys = part()?.expect(tag::SEQUENCE).map_err(malformed)?;
                for key in keys.children() {
                    let key = key
                        .and_then(|k| k.expect(tag::SEQUENCE))
                        .map_err(malformed)?;
                    let rid = key
                        .children()
                        .next()
                        .unwrap_or(Err(der::DerError { offset: key.offset }));
                    ids.push(recipient_id(rid.map_err(malformed)?)?);
                }
            }
            // KEKRecipientInfo [2], PasswordRecipientInfo [3], OtherRecipientInfo [4]: no
            // certificate; never ours.
            _ => {}
        }
    }
    Ok(ids)
}

/// RecipientIdentifier (`[0]` IMPLICIT SubjectKeyIdentifier) or KeyAgreeRecipientIdentifier
/// (`[0]` IMPLICIT RecipientKeyIdentifier SEQUENCE { subjectKeyIdentifier, ... }), or
/// IssuerAndSerialNumber in both.
fn recipient_id(rid: Tlv<'_>) -> Result<RecipientId<'_>, Failure> {
    let malformed = |error: der::DerError| Failure::MalformedCms {
        offset: error.offset,
    };
    let missing = der::DerError { offset: rid.offset };
    match rid.tag {
        tag::SEQUENCE => {
            let mut parts = rid.children();
            let issuer = parts.next().unwrap_or(Err(missing));
            let issuer = issuer
                .and_then(|t| t.expect(tag::SEQUENCE))
                .map_err(malformed)?;
            let serial = parts.next().unwrap_or(Err(missing));
            let serial = serial
                .and_then(|t| t.expect(tag::INTEGER))
                .map_err(malformed)?;
            Ok(RecipientId::IssuerSerial {
                issuer: issuer.full,
                serial: serial.content,
            })
        }
        0x80 => Ok(RecipientId::KeyId(rid.content)),
        0xa0 => {
            let key_id = rid.children().next().unwrap_or(Err(missing));
            let key_id = key_id
                .and_then(|t| t.expect(tag::OCTET_STRING))
                .map_err(malformed)?;
            Ok(RecipientId::KeyId(key_id.content))
        }
        _ => Err(Failure::MalformedCms { offset: rid.offset }),
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
    let malformed = |error: der::DerError| Failure::MalformedCms {
        offset: error.offset,
    };
    let (content_type, content) = content_info(der_bytes)?;
    if content_type != oid::AUTH_ENVELOPED_DATA {
        return Ok(());
    }
    // AuthEnvelopedData ::= SEQUENCE { version, originatorInfo [0] OPTIONAL, recipientInfos,
    //   authEncryptedContentInfo, authAttrs [1] OPTIONAL, mac, unauthAttrs [2] OPTIONAL }
    let mut declared_icv_length = None;
    let mut mac_length = None;
    let mut seen_encrypted_content_info = false;
    for field in content.expect(tag::SEQUENCE).map_err(malformed)?.children() {
        let field = field.map_err(malformed)?;
        if !seen_encrypted_content_info {
            if field.tag == tag::SEQUENCE {
                seen_encrypted_content_info = true;
                // EncryptedContentInfo ::= SEQUENCE { contentType, contentEncryptionAlgorithm
                //   SEQUENCE { algorithm, GCMParameters SEQUENCE { aes-nonce, aes-ICVlen } }, ... }
                let algorithm = field.children().nth(1).ok_or(Failure::MalformedCms {
                    offset: field.offset,
                });
                let algorithm = algorithm?.map_err(malformed)?;
                if let Some(parameters) = algorithm.children().nth(1) {
                    let parameters = parameters.map_err(malformed)?;
                    if parameters.tag == tag::SEQUENCE
                        && let Some(icv) = parameters.children().nth(1)
                    {
                        let icv = icv.map_err(malformed)?.expect(tag::INTEGER);
                        declared_icv_length = Some(match icv.map_err(malformed)?.content {
                            [length] => usize::from(*length),
                            _ => 0,
                        });
                    }
                }
            }
            continue;
        }
        if field.tag == tag::OCTET_STRING {
            mac_length = Some(field.content.len());
            break;
        }
    }
    let Some(mac_length) = mac_length else {
        return Err(Failure::MalformedCms {
            offset: content.offset,
        });
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
        let (_, content) = content_info(&der_bytes).unwrap();
        let fields: Vec<_> = content.children().map(|f| f.unwrap()).collect();
        let (mac, rest) = fields.split_last().unwrap();
        assert_eq!((mac.tag, mac.content.len()), (tag::OCTET_STRING, 16));
        for keep in [15, 12, 4, 1] {
            let mut body: Vec<u8> = rest.iter().flat_map(|f| f.full.to_vec()).collect();
            body.extend(tlv(tag::OCTET_STRING, &mac.content[..keep]));
            let info = [
                tlv(
                    tag::OID,
                    &[
                        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17,
                    ],
                ),
                tlv(0xa0, &tlv(tag::SEQUENCE, &body)),
            ]
            .concat();
            let truncated = tlv(tag::SEQUENCE, &info);
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
