//! Signing: detached `multipart/signed` (RFC 1847 §2.1, RFC 8551 §3.5.3) and opaque
//! `application/pkcs7-mime; smime-type=signed-data` (RFC 8551 §3.5.2).
//!
//! # Why the CMS structure is built here rather than by `CMS_sign`
//!
//! OpenSSL's `CMS_sign` (the only signing entry point the safe `openssl` crate
//! exposes) always picks the key's default digest and stamps a `signingTime`
//! attribute read from the system clock. Library code in imipsec never reads the
//! clock, and the digest must be selectable, so this module encodes the RFC 5652 §5
//! `SignedData` itself in DER (a few dozen lines in a private `der` module) and uses OpenSSL only
//! for the digest and the signature primitive. The result is a plain CMS structure
//! that `openssl cms -verify` and `gpgsm --verify` accept (see `tests/interop.rs`).
//!
//! The signed attributes are exactly (RFC 5652 §5.3, §11; RFC 8551 §2.5):
//! `contentType` (id-data), `messageDigest`, `signingTime` when
//! [`SignOptions::signing_time`] is set (and only then: no clock is read), and
//! `smimeCapabilities` announcing AES-256-GCM then AES-256-CBC (RFC 8551 §2.5.2).

use openssl::hash::{MessageDigest, hash};
use openssl::pkey::Id;
use openssl::sign::Signer;
use openssl::x509::X509Ref;
use rasn::types::{Any, GeneralizedTime, Integer, ObjectIdentifier, OctetString, SetOf, UtcTime};
use rasn::{AsnType, Encode};
use rasn_cms::{Attribute, ContentInfo, EncapsulatedContentInfo};
use rasn_pkix::AlgorithmIdentifier;
use time::OffsetDateTime;

use crate::keys::Identity;

/// A digest algorithm for the signature (RFC 8551 §2.1: agents "MUST support
/// SHA-256" and "MUST support SHA-512"; SHA-384 is offered for P-384-era policies). The `micalg` parameter of `multipart/signed` is
/// derived from the digest actually used (RFC 8551 §3.5.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Digest {
    /// SHA-256 (`micalg=sha-256`), the default.
    #[default]
    Sha256,
    /// SHA-384 (`micalg=sha-384`).
    Sha384,
    /// SHA-512 (`micalg=sha-512`).
    Sha512,
}

impl Digest {
    /// The `micalg` value of RFC 8551 §3.5.3.2 ("sha-256", "sha-384", "sha-512").
    pub fn micalg(self) -> &'static str {
        match self {
            Digest::Sha256 => "sha-256",
            Digest::Sha384 => "sha-384",
            Digest::Sha512 => "sha-512",
        }
    }

    fn message_digest(self) -> MessageDigest {
        match self {
            Digest::Sha256 => MessageDigest::sha256(),
            Digest::Sha384 => MessageDigest::sha384(),
            Digest::Sha512 => MessageDigest::sha512(),
        }
    }

    /// The digest algorithm OID (RFC 5754 §2).
    fn oid(self) -> &'static str {
        match self {
            Digest::Sha256 => oid::SHA256,
            Digest::Sha384 => oid::SHA384,
            Digest::Sha512 => oid::SHA512,
        }
    }

    /// The ecdsa-with-SHA* OID (RFC 5754 §3.3).
    fn ecdsa_oid(self) -> &'static str {
        match self {
            Digest::Sha256 => oid::ECDSA_SHA256,
            Digest::Sha384 => oid::ECDSA_SHA384,
            Digest::Sha512 => oid::ECDSA_SHA512,
        }
    }
}

/// How to sign (RFC 8551 §2.4, §2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOptions {
    /// The digest algorithm; SHA-256 by default.
    pub digest: Digest,
    /// Include the identity's chain certificates besides the signer's certificate
    /// (RFC 8550 §2.3: a sending agent SHOULD include at least one chain). The signer's
    /// own certificate is always included. Default `true`.
    pub include_chain: bool,
    /// The `signingTime` signed attribute (RFC 5652 §11.3, RFC 8551 §2.5.1). `None`
    /// (the default) omits the attribute: this crate never reads the clock, so the
    /// caller passes the time it wants asserted.
    pub signing_time: Option<OffsetDateTime>,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            digest: Digest::Sha256,
            include_chain: true,
            signing_time: None,
        }
    }
}

/// Why a message could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The entity has no header/body separator (an empty line); RFC 5322 §2.1 /
    /// RFC 2045 §2.4: header fields, an empty line, the body. An entity without headers starts with CRLF.
    #[error("the input is not a MIME entity: no empty line ends the header section")]
    NotAMimeEntity,
    /// A detached signature covers bytes that transports may rewrite: RFC 8551
    /// §3.1.3 requires the signed part of `multipart/signed` to be 7-bit, so 8-bit
    /// or NUL bytes must be transfer-encoded (quoted-printable or base64) first.
    #[error(
        "byte {byte:#04x} at offset {offset} is not 7-bit safe; transfer-encode the entity (RFC 8551 §3.1.3)"
    )]
    NotSevenBit {
        /// Offset of the first offending byte in the canonicalised entity.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// The signing time has a year outside 0..=9999 and cannot be encoded as
    /// GeneralizedTime (RFC 5652 §11.3).
    #[error("signing time year {year} cannot be encoded")]
    SigningTimeOutOfRange {
        /// The year given.
        year: i32,
    },
    /// The signer certificate could not be parsed to take its issuer and serial
    /// number (RFC 5652 §10.2.4 IssuerAndSerialNumber).
    #[error("the signer certificate cannot be parsed")]
    SignerCertificate,
    /// No fresh boundary avoiding the content was found (practically impossible
    /// with 128 random bits; reported rather than looped on).
    #[error("could not pick a multipart boundary absent from the content")]
    BoundaryCollision,
    /// An OpenSSL primitive (digest, signature, random) failed.
    #[error("OpenSSL error while signing")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    /// The DER encoder refused a value (a bug: every value is built here).
    #[error("the SignedData could not be DER-encoded")]
    Encoding,
}

/// Signs `entity` and returns a `multipart/signed` entity (RFC 1847 §2.1, RFC 8551
/// §3.5.3) with `protocol="application/pkcs7-signature"` and `micalg` from
/// [`SignOptions::digest`].
///
/// RFC 1847 §2.1: "The multipart/signed content type contains exactly two body
/// parts. The first body part is the body part over which the digital signature
/// was created, including its MIME headers. The second body part contains the
/// control information necessary to verify the digital signature."
///
/// `entity` is a MIME entity (headers, empty line, body). It is canonicalised to CRLF
/// line endings (RFC 8551 §3.1.1) and must then be 7-bit (RFC 8551 §3.1.3); the
/// canonical bytes are what is signed and what is placed, unchanged, in the first
/// part ("The MIME entity is inserted into the first part of a multipart/signed
/// message with no processing other than that described in Section 3.1", RFC 8551
/// §3.5.3.2 step 3). The second part is the detached SignedData, base64 in 76-char
/// lines. The boundary is random and checked to be absent from the content.
///
/// The result holds only the `Content-Type` header and body: the caller adds the
/// RFC 5322 headers (From, To, Date, Subject) and `MIME-Version: 1.0`.
pub fn sign_detached(
    entity: &[u8],
    identity: &Identity,
    options: &SignOptions,
) -> Result<Vec<u8>, SignError> {
    let content = prepare_entity(entity)?;
    if let Some(offset) = content.iter().position(|&b| b == 0 || b >= 0x80) {
        return Err(SignError::NotSevenBit {
            offset,
            byte: content.get(offset).copied().unwrap_or(0),
        });
    }
    let signed_data = signed_data(&content, identity, options, false)?;
    let boundary = fresh_boundary(&content)?;

    let mut out = Vec::with_capacity(content.len() + signed_data.len() * 2 + 512);
    out.extend_from_slice(
        format!(
            "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n\
             \tmicalg={}; boundary=\"{boundary}\"\r\n\r\n\
             This is a cryptographically signed message in MIME format.\r\n\r\n--{boundary}\r\n",
            options.digest.micalg()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&content);
    out.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\n\
             Content-Type: application/pkcs7-signature; name=smime.p7s\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=smime.p7s\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(&base64_lines(&signed_data));
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(out)
}

/// Signs `entity` and returns an opaque `application/pkcs7-mime;
/// smime-type=signed-data; name=smime.p7m` entity (RFC 8551 §3.5.2), the SignedData
/// carrying the canonicalised entity as its eContent, base64 in 76-char lines.
///
/// Opaque signing survives transports that rewrite text, at the cost that
/// non-S/MIME clients cannot read the content (RFC 8551 §3.5.1). No 7-bit
/// requirement applies since the content travels inside base64. The result holds
/// only the MIME headers of the entity and its body.
pub fn sign_opaque(
    entity: &[u8],
    identity: &Identity,
    options: &SignOptions,
) -> Result<Vec<u8>, SignError> {
    let content = prepare_entity(entity)?;
    let signed_data = signed_data(&content, identity, options, true)?;
    Ok(pkcs7_mime_entity("signed-data", &signed_data))
}

/// An `application/pkcs7-mime` entity around DER (RFC 8551 §3.2, §3.2.1 file names).
pub(crate) fn pkcs7_mime_entity(smime_type: &str, der: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "Content-Type: application/pkcs7-mime; smime-type={smime_type}; name=smime.p7m\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=smime.p7m\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(&base64_lines(der));
    out
}

/// Canonicalises line endings to CRLF (RFC 8551 §3.1.1: text "MUST have both their
/// line endings and character set canonicalized"; line endings are the part a
/// sending agent can do without knowing the media type) and checks the entity has
/// a header section ended by an empty line.
pub(crate) fn prepare_entity(entity: &[u8]) -> Result<Vec<u8>, SignError> {
    let mut content = Vec::with_capacity(entity.len() + entity.len() / 32 + 2);
    let mut bytes = entity.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        match byte {
            b'\r' => {
                if bytes.peek() == Some(&b'\n') {
                    bytes.next();
                }
                content.extend_from_slice(b"\r\n");
            }
            b'\n' => content.extend_from_slice(b"\r\n"),
            other => content.push(other),
        }
    }
    let has_separator =
        content.starts_with(b"\r\n") || content.windows(4).any(|window| window == b"\r\n\r\n");
    if !has_separator {
        return Err(SignError::NotAMimeEntity);
    }
    Ok(content)
}

/// Base64 (RFC 2045 §6.8) in lines of at most 76 characters, each ended by CRLF.
pub(crate) fn base64_lines(der: &[u8]) -> Vec<u8> {
    let encoded = openssl::base64::encode_block(der);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for line in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A random boundary (RFC 2046 §5.1.1 bchars) that occurs nowhere in `content`.
fn fresh_boundary(content: &[u8]) -> Result<String, SignError> {
    const ATTEMPTS: usize = 4;
    for _ in 0..ATTEMPTS {
        let mut random = [0u8; 16];
        openssl::rand::rand_bytes(&mut random)?;
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let boundary = format!("----=_imipsec_{hex}");
        if !content
            .windows(boundary.len())
            .any(|window| window == boundary.as_bytes())
        {
            return Ok(boundary);
        }
    }
    Err(SignError::BoundaryCollision)
}

/// Encodes a CMS ContentInfo holding SignedData (RFC 5652 §3, §5.1) over `content`,
/// with the content embedded (`embed`) or detached (eContent absent, RFC 5652 §5.2).
///
/// One encoder: `rasn`'s DER encoder writes the whole structure (issue #15; a second,
/// hand-written DER encoder did before). The signed attributes are encoded once, as the SET OF
/// the signature covers (RFC 5652 §5.4), and the SignerInfo carries that very SET under
/// `[0] IMPLICIT` (DER is deterministic, so the contents octets are the signed ones). The
/// certificates and the signer's issuer and serial number are copied as encoded (`Any`).
fn signed_data(
    content: &[u8],
    identity: &Identity,
    options: &SignOptions,
    embed: bool,
) -> Result<Vec<u8>, SignError> {
    let digest = options.digest;
    let digest_algorithm = algorithm(digest.oid(), None)?;
    let content_digest = hash(digest.message_digest(), content)?;

    // Signed attributes (RFC 5652 §5.3, §11; RFC 8551 §2.5). A SET OF: DER sorts it.
    let mut attributes = SetOf::new();
    attributes.insert(attribute(
        oid::CONTENT_TYPE,
        encode(&object_identifier(oid::DATA)?)?,
    )?);
    attributes.insert(attribute(
        oid::MESSAGE_DIGEST,
        encode(&OctetString::from(content_digest.to_vec()))?,
    )?);
    attributes.insert(attribute(oid::SMIME_CAPABILITIES, smime_capabilities()?)?);
    if let Some(time) = options.signing_time {
        attributes.insert(attribute(oid::SIGNING_TIME, signing_time(time)?)?);
    }
    // RFC 5652 §5.4: the signature covers the DER of the attributes with an explicit
    // SET OF tag, while the SignerInfo carries them under [0] IMPLICIT.
    let signed_attributes = encode(&attributes)?;
    let mut signer = Signer::new(digest.message_digest(), identity.private_key())?;
    signer.update(&signed_attributes)?;
    let signature = signer.sign_to_vec()?;
    let signature_algorithm = match identity.private_key().id() {
        // RFC 5754 §3.2 / RFC 3370 §3.2: rsaEncryption with NULL parameters, the
        // form OpenSSL and most agents emit.
        Id::RSA => algorithm(oid::RSA_ENCRYPTION, Some(Any::new(encode(&())?)))?,
        // Identity only admits RSA and EC keys; EC uses ecdsa-with-SHA* without
        // parameters (RFC 5754 §3.3).
        _ => algorithm(digest.ecdsa_oid(), None)?,
    };

    let signer_certificate = identity.certificate();
    let signer_info = SignerInfoOut {
        version: Integer::from(1),
        sid: issuer_and_serial_number(signer_certificate)?,
        digest_algorithm: digest_algorithm.clone(),
        signed_attrs: attributes,
        signature_algorithm,
        signature: OctetString::from(signature),
    };

    let mut certificates = SetOf::new();
    certificates.insert(Any::new(signer_certificate.to_der()?));
    if options.include_chain {
        for certificate in identity.chain() {
            certificates.insert(Any::new(certificate.to_der()?));
        }
    }
    let mut digest_algorithms = SetOf::new();
    digest_algorithms.insert(digest_algorithm);
    let mut signer_infos = SetOf::new();
    signer_infos.insert(signer_info);
    let signed_data = SignedDataOut {
        version: Integer::from(1),
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            content_type: object_identifier(oid::DATA)?,
            content: embed.then(|| OctetString::from(content.to_vec())),
        },
        certificates,
        signer_infos,
    };
    encode(&ContentInfo {
        content_type: object_identifier(oid::SIGNED_DATA)?,
        content: Any::new(encode(&signed_data)?),
    })
}

/// SignedData (RFC 5652 §5.1) as this signer writes it: certificates always present.
#[derive(AsnType, Encode, Debug, Clone, PartialEq, Eq, Hash)]
struct SignedDataOut {
    version: Integer,
    digest_algorithms: SetOf<AlgorithmIdentifier>,
    encap_content_info: EncapsulatedContentInfo,
    #[rasn(tag(0))]
    certificates: SetOf<Any>,
    signer_infos: SetOf<SignerInfoOut>,
}

/// SignerInfo (RFC 5652 §5.3) with the sid as copied from the certificate and signed
/// attributes always present.
#[derive(AsnType, Encode, Debug, Clone, PartialEq, Eq, Hash)]
struct SignerInfoOut {
    version: Integer,
    sid: IssuerSerialOut,
    digest_algorithm: AlgorithmIdentifier,
    #[rasn(tag(0))]
    signed_attrs: SetOf<Attribute>,
    signature_algorithm: AlgorithmIdentifier,
    signature: OctetString,
}

/// IssuerAndSerialNumber (RFC 5652 §10.2.4) with both fields as the certificate encodes them.
#[derive(AsnType, Encode, Debug, Clone, PartialEq, Eq, Hash)]
struct IssuerSerialOut {
    issuer: Any,
    serial_number: Any,
}

/// Object identifiers the signer writes, dotted.
mod oid {
    pub(super) use crate::cms::oid::{
        CONTENT_TYPE, DATA, ECDSA_SHA256, ECDSA_SHA384, ECDSA_SHA512, MESSAGE_DIGEST,
        RSA_ENCRYPTION, SHA256, SHA384, SHA512, SIGNED_DATA, SIGNING_TIME,
    };
    /// smimeCapabilities (RFC 8551 §2.5.2).
    pub(super) const SMIME_CAPABILITIES: &str = "1.2.840.113549.1.9.15";
    /// id-aes256-GCM (RFC 5084).
    pub(super) const AES256_GCM: &str = "2.16.840.1.101.3.4.1.46";
    /// id-aes256-CBC (RFC 3565).
    pub(super) const AES256_CBC: &str = "2.16.840.1.101.3.4.1.42";
}

/// DER with `rasn`; an encoding error is a bug here (every value is built by this module).
fn encode<T: rasn::Encode>(value: &T) -> Result<Vec<u8>, SignError> {
    rasn::der::encode(value).map_err(|_| SignError::Encoding)
}

fn object_identifier(dotted: &str) -> Result<ObjectIdentifier, SignError> {
    let arcs: Option<Vec<u32>> = dotted.split('.').map(|arc| arc.parse().ok()).collect();
    arcs.and_then(ObjectIdentifier::new)
        .ok_or(SignError::Encoding)
}

fn algorithm(dotted: &str, parameters: Option<Any>) -> Result<AlgorithmIdentifier, SignError> {
    Ok(AlgorithmIdentifier {
        algorithm: object_identifier(dotted)?,
        parameters,
    })
}

/// An Attribute with a single value, given as its DER (RFC 5652 §5.3).
fn attribute(dotted: &str, value: Vec<u8>) -> Result<Attribute, SignError> {
    let mut values = SetOf::new();
    values.insert(Any::new(value));
    Ok(Attribute {
        r#type: object_identifier(dotted)?,
        values,
    })
}

/// SMIMECapabilities (RFC 8551 §2.5.2), in order of preference: AES-256-GCM, then
/// AES-256-CBC, the content ciphers [`crate::encrypt`] produces.
fn smime_capabilities() -> Result<Vec<u8>, SignError> {
    encode(&vec![
        algorithm(oid::AES256_GCM, None)?,
        algorithm(oid::AES256_CBC, None)?,
    ])
}

/// signingTime (RFC 5652 §11.3): UTCTime for 1950..=2049, GeneralizedTime otherwise, in
/// the DER forms of X.690 §11.7, §11.8 (seconds, `Z`).
fn signing_time(time: OffsetDateTime) -> Result<Vec<u8>, SignError> {
    let year = time.to_offset(time::UtcOffset::UTC).year();
    let out_of_range = SignError::SigningTimeOutOfRange { year };
    let utc = UtcTime::from_timestamp(time.unix_timestamp(), 0).ok_or(out_of_range)?;
    match year {
        1950..=2049 => encode(&utc),
        0..=9999 => encode(&GeneralizedTime::from(utc.fixed_offset())),
        _ => Err(SignError::SigningTimeOutOfRange { year }),
    }
}

/// IssuerAndSerialNumber (RFC 5652 §10.2.4) copied byte-for-byte from the
/// certificate, so it matches whatever encoding the issuer used.
fn issuer_and_serial_number(certificate: &X509Ref) -> Result<IssuerSerialOut, SignError> {
    let certificate_der = certificate.to_der()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&certificate_der)
        .map_err(|_| SignError::SignerCertificate)?;
    let serial = parsed.tbs_certificate.raw_serial();
    // The serial's INTEGER as encoded: tag, length, the received contents octets.
    let serial_length = u8::try_from(serial.len())
        .ok()
        .filter(|length| *length < 0x80)
        .ok_or(SignError::SignerCertificate)?;
    let mut serial_number = vec![0x02, serial_length];
    serial_number.extend_from_slice(serial);
    Ok(IssuerSerialOut {
        issuer: Any::new(parsed.issuer().as_raw().to_vec()),
        serial_number: Any::new(serial_number),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::cms::{CMSOptions, CmsContentInfo};
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::verify::X509VerifyParam;
    use std::path::PathBuf;

    const ENTITY: &[u8] = b"Content-Type: text/plain\n\nHello\nWorld\n";

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../certs")
                .join(path),
        )
        .unwrap()
    }

    fn identity(alg: &str) -> Identity {
        Identity::from_pkcs12(&read(&format!("{alg}/organizer.p12")), "imipsec").unwrap()
    }

    /// Verifies DER SignedData with OpenSSL against the test root at 2026-06-01.
    fn openssl_verify(der: &[u8], detached: Option<&[u8]>) -> Vec<u8> {
        try_openssl_verify(der, detached, false).unwrap()
    }

    /// Like `openssl_verify`, optionally offering the intermediate out of band.
    fn try_openssl_verify(
        der: &[u8],
        detached: Option<&[u8]>,
        offer_intermediate: bool,
    ) -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut cms = CmsContentInfo::from_der(der).unwrap();
        let mut store = X509StoreBuilder::new().unwrap();
        for c in crate::keys::certificates_from_pem(&read("root.cert.pem")).unwrap() {
            store.add_cert(c).unwrap();
        }
        if offer_intermediate {
            // CMS_verify builds chains from the store and the SignedData's own
            // certificates only, so an out-of-band intermediate goes in the store.
            for c in crate::keys::certificates_from_pem(&read("intermediate.cert.pem")).unwrap() {
                store.add_cert(c).unwrap();
            }
        }
        let mut param = X509VerifyParam::new().unwrap();
        param.set_time(1_780_272_000);
        store.set_param(&param).unwrap();
        let store = store.build();
        let mut out = Vec::new();
        let certs = Stack::new().unwrap();
        cms.verify(
            Some(&certs),
            Some(&store),
            detached,
            Some(&mut out),
            CMSOptions::BINARY,
        )?;
        Ok(out)
    }

    fn part_after_blank_line(entity: &[u8]) -> &[u8] {
        let at = entity.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        &entity[at + 4..]
    }

    fn debase64(body: &[u8]) -> Vec<u8> {
        let text: String = String::from_utf8(body.to_vec())
            .unwrap()
            .split("\r\n")
            .take_while(|l| !l.starts_with("--"))
            .collect();
        openssl::base64::decode_block(&text).unwrap()
    }

    #[test]
    fn canonicalises_line_endings() {
        assert_eq!(
            prepare_entity(b"A: b\n\nx\ry\r\nz").unwrap(),
            b"A: b\r\n\r\nx\r\ny\r\nz"
        );
        assert!(matches!(
            prepare_entity(b"no separator"),
            Err(SignError::NotAMimeEntity)
        ));
        assert!(prepare_entity(b"\nheaderless body").is_ok());
    }

    #[test]
    fn base64_lines_are_76_chars() {
        let lines = base64_lines(&[0xAB; 200]);
        let text = String::from_utf8(lines).unwrap();
        let lengths: Vec<usize> = text.split_terminator("\r\n").map(str::len).collect();
        assert_eq!(lengths, [76, 76, 76, 40]);
    }

    #[test]
    fn detached_rejects_eight_bit_content() {
        let err = sign_detached(
            "Content-Type: text/plain\r\n\r\nCaf\u{e9}".as_bytes(),
            &identity("rsa2048"),
            &SignOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            SignError::NotSevenBit {
                offset: 31,
                byte: 0xC3
            }
        ));
    }

    #[test]
    fn signing_time_encodings() {
        let t = time::macros::datetime!(2026-06-01 12:34:56 +02:00);
        assert_eq!(signing_time(t).unwrap(), b"\x17\x0d260601103456Z");
        let t = time::macros::datetime!(2050-01-01 00:00:00 UTC);
        assert_eq!(signing_time(t).unwrap(), b"\x18\x0f20500101000000Z");
    }

    #[test]
    fn opaque_signatures_verify_with_openssl_for_every_digest_and_key_type() {
        for alg in ["rsa2048", "p256"] {
            for digest in [Digest::Sha256, Digest::Sha384, Digest::Sha512] {
                let options = SignOptions {
                    digest,
                    ..SignOptions::default()
                };
                let entity = sign_opaque(ENTITY, &identity(alg), &options).unwrap();
                let der = debase64(part_after_blank_line(&entity));
                let content = openssl_verify(&der, None);
                assert_eq!(
                    content,
                    b"Content-Type: text/plain\r\n\r\nHello\r\nWorld\r\n"
                );
            }
        }
    }

    #[test]
    fn detached_multipart_structure_and_signature() {
        let options = SignOptions {
            digest: Digest::Sha384,
            include_chain: false,
            signing_time: Some(time::macros::datetime!(2026-06-01 00:00:00 UTC)),
        };
        let signed = sign_detached(ENTITY, &identity("p256"), &options).unwrap();
        let text = String::from_utf8(signed.clone()).unwrap();
        assert!(text.starts_with("Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n\tmicalg=sha-384; boundary=\"----=_imipsec_"));
        let boundary = text
            .split("boundary=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let delimiter = format!("\r\n--{boundary}\r\n");
        let first = text.find(&format!("--{boundary}\r\n")).unwrap() + boundary.len() + 4;
        let second = first + text[first..].find(&delimiter).unwrap();
        let content = &text.as_bytes()[first..second];
        assert_eq!(
            content,
            b"Content-Type: text/plain\r\n\r\nHello\r\nWorld\r\n"
        );
        let signature_part = &text.as_bytes()[second + delimiter.len()..];
        assert!(signature_part.starts_with(b"Content-Type: application/pkcs7-signature"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        let der = debase64(part_after_blank_line(signature_part));
        // include_chain: false left the intermediate out, so OpenSSL needs it
        // offered out of band.
        assert!(try_openssl_verify(&der, Some(content), false).is_err());
        try_openssl_verify(&der, Some(content), true).unwrap();
        // A single altered byte breaks the signature.
        let mut tampered = content.to_vec();
        tampered[30] ^= 1;
        let mut cms = CmsContentInfo::from_der(&der).unwrap();
        let store = X509StoreBuilder::new().unwrap().build();
        assert!(
            cms.verify(
                None,
                Some(&store),
                Some(&tampered),
                None,
                CMSOptions::BINARY | CMSOptions::NOVERIFY
            )
            .is_err()
        );
    }
}
