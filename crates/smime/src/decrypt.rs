//! Decryption of CMS EnvelopedData (RFC 5652 §6) and AuthEnvelopedData (RFC 5083) with
//! OpenSSL's `CMS_decrypt`: RSA key transport (PKCS#1 v1.5, OAEP), ECDH key agreement,
//! AES-CBC and AES-GCM content encryption.

use openssl::cms::CmsContentInfo;

use crate::cms::{self, oid};
use crate::der::{self, tag};
use crate::error::Failure;
use crate::keys::Identity;

/// Decrypt with the first identity that is a recipient. OpenSSL only returns the plaintext when
/// decryption (and, for AuthEnvelopedData, the GCM tag check) succeeded, so a failed tag never
/// yields partial plaintext.
pub(crate) fn decrypt(der: &[u8], identities: &[Identity]) -> Result<Vec<u8>, Failure> {
    if identities.is_empty() {
        return Err(Failure::NoDecryptionKey);
    }
    check_gcm_tag_length(der)?;
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
    let (content_type, content) = cms::content_info(der_bytes)?;
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
        let (_, content) = cms::content_info(&der_bytes).unwrap();
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
