//! Decoding a ContentInfo holding SignedData (RFC 5652 §3, §5.1, §5.3) with `rasn-cms`, the
//! one CMS reader of this crate (issue #15: before, an own BER reader decoded it and `rasn`
//! gave a second opinion).
//!
//! The shapes below are `rasn_cms::SignedData` and `rasn_cms::SignerInfo` with the elements
//! whose *received bytes* verification needs kept as [`Any`] (their whole encoding, as
//! received): each certificate and CRL (handed to OpenSSL as received), the signer's issuer
//! name and serial number (compared with the certificate's own encoding), the version
//! INTEGERs (one encoding each, checked exactly) and the signed attributes, whose signature is
//! over their received DER re-tagged as SET OF (RFC 5652 §5.4): never a re-encoding.
//!
//! Before `rasn` sees them, the bytes pass [`super::encoding::check`]: minimal lengths and
//! strict OIDs everywhere, DER for the signed attributes (which are also decoded with `rasn`'s
//! DER decoder and must re-encode to exactly the received bytes). Every `rasn` call runs
//! inside `contain_panic`: a panic in the decoder is a failed decode.
// Untrusted input reaches every function here: no indexing or slicing that can panic
// (get / split_at_checked / patterns instead), issue #11 item 1.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use rasn::Decoder as _;
use rasn::ber::de::{Decoder, DecoderOptions};
use rasn::types::{Any, ObjectIdentifier, OctetString, SequenceOf, SetOf, Tag};
use rasn_cms::{Attribute, EncapsulatedContentInfo, SignerIdentifier};
use rasn_pkix::AlgorithmIdentifier;

use super::algorithm::oid_text;
use super::encoding::{self, Rules};
use crate::error::{Failure, contain_panic};

/// A malformed CMS structure; `rasn` reports no position, so the offset is that of the
/// element being decoded when known, else 0.
fn malformed(offset: usize) -> Failure {
    Failure::MalformedCms { offset }
}

/// Decode `input` as DER with `rasn`, `None` on any error (or a panic in `rasn`).
pub(crate) fn der<T: rasn::Decode>(input: &[u8]) -> Option<T> {
    contain_panic(|| rasn::der::decode::<T>(input).ok()).flatten()
}

/// Decode `input` as BER with `rasn`, `None` on any error (or a panic in `rasn`).
fn ber<T: rasn::Decode>(input: &[u8]) -> Option<T> {
    contain_panic(|| rasn::ber::decode::<T>(input).ok()).flatten()
}

/// ContentInfo (RFC 5652 §3): the content type, and the content's whole encoding.
pub(crate) fn content_info(input: &[u8]) -> Result<(String, Any), Failure> {
    encoding::check(input, Rules::Ber).map_err(malformed)?;
    let content_info: rasn_cms::ContentInfo = ber(input).ok_or(malformed(0))?;
    Ok((oid_text(&content_info.content_type), content_info.content))
}

/// `rasn_cms::SignedData` (RFC 5652 §5.1) keeping the received encoding of the version, of
/// every CertificateChoices and RevocationInfoChoice, and of every SignerInfo.
#[derive(rasn::AsnType, rasn::Decode, Debug)]
struct SignedDataShape {
    version: Any,
    digest_algorithms: SetOf<AlgorithmIdentifier>,
    encap_content_info: EncapsulatedContentInfo,
    #[rasn(tag(0))]
    certificates: Option<SequenceOf<Any>>,
    #[rasn(tag(1))]
    crls: Option<SequenceOf<Any>>,
    signer_infos: SetOf<Any>,
}

/// A SignedData as decoded: structure only, nothing checked beyond the encoding.
pub(crate) struct SignedData {
    /// The version INTEGER's value, when it is encoded as one octet.
    pub version: Option<u8>,
    pub digest_algorithms: Vec<AlgorithmIdentifier>,
    pub econtent_type: String,
    pub econtent: Option<Vec<u8>>,
    /// CertificateChoices, each as received.
    pub certificates: Vec<Any>,
    /// RevocationInfoChoices, each as received.
    pub crls: Vec<Any>,
    /// SignerInfos, each as received (decoded by [`signer_info`]).
    pub signer_infos: Vec<Any>,
}

/// The SignedData in `content` (the `[0] EXPLICIT` content of a ContentInfo whose encoding
/// [`content_info`] checked).
pub(crate) fn signed_data(content: &Any) -> Result<SignedData, Failure> {
    let shape: SignedDataShape = ber(content.as_bytes()).ok_or(malformed(0))?;
    Ok(SignedData {
        version: small_integer(&shape.version),
        digest_algorithms: shape.digest_algorithms.iter().cloned().collect(),
        econtent_type: oid_text(&shape.encap_content_info.content_type),
        econtent: shape
            .encap_content_info
            .content
            .map(|octets| octets.to_vec()),
        certificates: shape.certificates.unwrap_or_default(),
        crls: shape.crls.unwrap_or_default(),
        signer_infos: shape.signer_infos.iter().cloned().collect(),
    })
}

/// The value of an INTEGER encoded in exactly one contents octet (`02 01 xx`), else `None`:
/// the version fields are covered by no signature, so exactly one encoding is accepted.
fn small_integer(integer: &Any) -> Option<u8> {
    match integer.as_bytes() {
        [0x02, 0x01, value] => Some(*value),
        _ => None,
    }
}

/// Who signed: the certificate's issuer and serial number, or its subjectKeyIdentifier.
pub(crate) enum SignerId {
    /// The issuer Name's whole encoding and the serial number's contents octets, as received.
    IssuerSerial { issuer: Vec<u8>, serial: Vec<u8> },
    /// `[0]` SubjectKeyIdentifier.
    KeyId(Vec<u8>),
}

/// IssuerAndSerialNumber (RFC 5652 §10.2.4) with both fields as received.
#[derive(rasn::AsnType, rasn::Decode, Debug)]
struct IssuerSerialShape {
    issuer: Any,
    serial_number: Any,
}

/// One SignerInfo (RFC 5652 §5.3).
pub(crate) struct SignerInfo {
    /// The version INTEGER's value, when encoded as one octet.
    pub version: Option<u8>,
    pub sid: SignerId,
    pub digest_algorithm: AlgorithmIdentifier,
    /// The received `[0] IMPLICIT` signed attributes, whole.
    pub signed_attributes: Option<Vec<u8>>,
    pub signature_algorithm: AlgorithmIdentifier,
    pub signature: Vec<u8>,
    /// The types of the unsigned attributes.
    pub unsigned_attribute_types: Vec<String>,
}

/// Decode one SignerInfo from its received encoding (an element of `SignedData::signer_infos`).
pub(crate) fn signer_info(encoded: &Any) -> Result<SignerInfo, Failure> {
    contain_panic(|| decode_signer_info(encoded.as_bytes()))
        .flatten()
        .ok_or(malformed(0))
}

fn decode_signer_info(encoded: &[u8]) -> Option<SignerInfo> {
    let mut outer = Decoder::new(encoded, DecoderOptions::ber());
    let contents = outer.decode_any(Tag::SEQUENCE).ok()?;
    if !outer.remaining().is_empty() {
        return None;
    }
    let mut fields = Decoder::new(contents.as_bytes(), DecoderOptions::ber());
    let version = small_integer(&<Any as rasn::Decode>::decode(&mut fields).ok()?);
    let sid = <Any as rasn::Decode>::decode(&mut fields).ok()?;
    let sid = match sid.as_bytes().first()? {
        0x30 => {
            let shape: IssuerSerialShape = ber(sid.as_bytes())?;
            let mut serial = Decoder::new(shape.serial_number.as_bytes(), DecoderOptions::ber());
            let serial = serial.decode_any(Tag::INTEGER).ok()?;
            SignerId::IssuerSerial {
                issuer: shape.issuer.as_bytes().to_vec(),
                serial: serial.as_bytes().to_vec(),
            }
        }
        0x80 | 0xa0 => match ber::<SignerIdentifier>(sid.as_bytes())? {
            SignerIdentifier::SubjectKeyIdentifier(key_id) => SignerId::KeyId(key_id.to_vec()),
            SignerIdentifier::IssuerAndSerialNumber(_) => return None,
        },
        _ => return None,
    };
    let digest_algorithm = <AlgorithmIdentifier as rasn::Decode>::decode(&mut fields).ok()?;
    let context = |number| Tag::new(rasn::types::Class::Context, number);
    let signed_attributes = if fields.peek_tag().ok() == Some(context(0)) {
        let attributes = <Any as rasn::Decode>::decode(&mut fields).ok()?;
        // `[0] IMPLICIT SET OF`: constructed.
        if attributes.as_bytes().first() != Some(&0xa0) {
            return None;
        }
        Some(attributes.as_bytes().to_vec())
    } else {
        None
    };
    let signature_algorithm = <AlgorithmIdentifier as rasn::Decode>::decode(&mut fields).ok()?;
    let signature = <OctetString as rasn::Decode>::decode(&mut fields).ok()?;
    let mut unsigned_attribute_types = Vec::new();
    if !fields.remaining().is_empty() {
        let unsigned = <Any as rasn::Decode>::decode(&mut fields).ok()?;
        let mut as_set = unsigned.as_bytes().to_vec();
        match as_set.first_mut() {
            Some(tag @ 0xa1) => *tag = 0x31,
            _ => return None,
        }
        let attributes: SetOf<Attribute> = ber(&as_set)?;
        unsigned_attribute_types = attributes
            .to_vec()
            .iter()
            .map(|attribute| oid_text(&attribute.r#type))
            .collect();
    }
    // Only unsignedAttrs [1] may follow the signature.
    if !fields.remaining().is_empty() {
        return None;
    }
    Some(SignerInfo {
        version,
        sid,
        digest_algorithm,
        signed_attributes,
        signature_algorithm,
        signature: signature.to_vec(),
        unsigned_attribute_types,
    })
}

/// The signed attributes a verifier reads (RFC 5652 §11), from the received `[0]` encoding.
pub(crate) struct SignedAttributes {
    /// The DER the signature covers: the received bytes with the `[0]` tag replaced by SET.
    pub covered: Vec<u8>,
    /// Each attribute: its type and its values, each value as received.
    pub attributes: Vec<(String, Vec<Any>)>,
}

/// Decode the received signed attributes. They must be DER (RFC 5652 §5.3): strict encoding
/// ([`Rules::Der`]), decoded by `rasn`'s DER decoder, and re-encoded by `rasn`'s DER encoder
/// to exactly the received bytes (which also refuses a SET OF out of DER order, X.690
/// §11.6). Anything else is `malformed-cms`; a BER encoding is never verified.
pub(crate) fn signed_attributes(received: &[u8]) -> Result<SignedAttributes, Failure> {
    let mut covered = received.to_vec();
    match covered.first_mut() {
        Some(tag @ 0xa0) => *tag = 0x31,
        _ => return Err(malformed(0)),
    }
    encoding::check(&covered, Rules::Der).map_err(malformed)?;
    let decoded: SetOf<Attribute> = der(&covered).ok_or(malformed(0))?;
    let reencoded = contain_panic(|| rasn::der::encode(&decoded).ok()).flatten();
    if reencoded.as_deref() != Some(covered.as_slice()) {
        return Err(malformed(0));
    }
    let attributes = decoded
        .to_vec()
        .iter()
        .map(|attribute| {
            let values = attribute.values.iter().cloned().collect();
            (oid_text(&attribute.r#type), values)
        })
        .collect();
    Ok(SignedAttributes {
        covered,
        attributes,
    })
}

/// A DER OBJECT IDENTIFIER value (an attribute value, as received), dotted.
pub(crate) fn object_identifier(value: &Any) -> Option<String> {
    der::<ObjectIdentifier>(value.as_bytes()).map(|oid| oid_text(&oid))
}

/// A DER OCTET STRING value (an attribute value, as received).
pub(crate) fn octet_string(value: &Any) -> Option<Vec<u8>> {
    der::<OctetString>(value.as_bytes()).map(|octets| octets.to_vec())
}

/// The elements of a constructed value (given whole, as received), each as received; `None`
/// when it does not decode or is not constructed.
pub(crate) fn children(encoded: &[u8]) -> Option<Vec<Any>> {
    contain_panic(|| {
        if encoded.first()? & 0x20 == 0 {
            return None;
        }
        let mut outer = Decoder::new(encoded, DecoderOptions::ber());
        let tag = outer.peek_tag().ok()?;
        let contents = outer.decode_any(tag).ok()?;
        if !outer.remaining().is_empty() {
            return None;
        }
        let mut inner = Decoder::new(contents.as_bytes(), DecoderOptions::ber());
        let mut out = Vec::new();
        while !inner.remaining().is_empty() {
            out.push(<Any as rasn::Decode>::decode(&mut inner).ok()?);
        }
        Some(out)
    })
    .flatten()
}

/// The contents octets of a primitive value (given whole, as received).
pub(crate) fn contents(encoded: &[u8]) -> Option<Vec<u8>> {
    contain_panic(|| {
        if encoded.first()? & 0x20 != 0 {
            return None;
        }
        let mut decoder = Decoder::new(encoded, DecoderOptions::ber());
        let tag = decoder.peek_tag().ok()?;
        let contents = decoder.decode_any(tag).ok()?;
        decoder
            .remaining()
            .is_empty()
            .then(|| contents.as_bytes().to_vec())
    })
    .flatten()
}

/// The content type of a ContentInfo, for reports (`None` when it does not decode).
pub(crate) fn content_type(input: &[u8]) -> Option<String> {
    content_info(input).ok().map(|(oid, _)| oid)
}
