//! A typed second reading of every SignedData with `rasn-cms` (RFC 5652 §5.1, §5.3), compared
//! with the structure this crate's bounded BER reader (`der.rs`) found.
//!
//! The own reader stays authoritative for *where* the received bytes are (the signed
//! attributes are verified over their received encoding, certificates and CRLs are handed to
//! OpenSSL as received), which a decode/re-encode would not guarantee. But two parsers reading
//! the same bytes differently is how signature-confusion attacks work, so the decision only
//! proceeds when both agree on everything it uses: the SignedData version, digestAlgorithms,
//! eContentType, the eContent, the number of certificates and of CRLs, and per SignerInfo the
//! sid, digestAlgorithm, signatureAlgorithm, the signed attribute types in order and the
//! signature value. Any disagreement, or content `rasn` cannot decode, is `malformed-cms`
//! ([`Failure::CmsParserDisagreement`]).
//!
//! Certificates and CRLs are decoded as opaque elements (the rasn-cms field types for
//! everything else): only their number is compared, OpenSSL parses them itself for the trust
//! decision, and decoding them through `rasn-pkix` cost about a quarter of a warm verification
//! in the `verify` bench and fails on valid input: `rasn-pkix` 0.30 declares
//! `TbsCertList.version` mandatory, while RFC 5280 §5.1.2.1 makes it OPTIONAL (absent in v1
//! CRLs, as in RFC 4134 examples 4.4 and 4.11, which OpenSSL accepts).
//!
//! Hostile input: `rasn` only ever sees bytes the own reader accepted first, which bounds their
//! size (`Limits::cms_bytes`, checked before either parser runs) and their BER nesting
//! ([`crate::der::MAX_NESTING`], including inside indefinite lengths).
// Untrusted input reaches every function here: no indexing or slicing that can panic
// (get / split_at_checked / patterns instead), issue #11 item 1.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use rasn::Decoder as _;
use rasn::types::{Any, SetOf};
use rasn_cms::{
    CmsVersion, ContentInfo, DigestAlgorithmIdentifiers, EncapsulatedContentInfo, SignerIdentifier,
    SignerInfo, SignerInfos,
};

use crate::der::{self, Tlv, tag};
use crate::error::{CmsField, Failure, contain_panic};

/// What the own reader found, in the terms compared.
pub(crate) struct Structure<'a> {
    /// SignedData version (already restricted to 1, 3, 4, 5).
    pub version: u8,
    /// digestAlgorithms OIDs in received order.
    pub digest_algorithms: Vec<String>,
    /// eContentType OID.
    pub econtent_type: &'a str,
    /// eContent octets, if present.
    pub econtent: Option<&'a [u8]>,
    /// CertificateChoices elements (every choice, not only X.509 certificates).
    pub certificates: usize,
    /// RevocationInfoChoice elements.
    pub crls: usize,
    /// The SignerInfo TLVs in received order.
    pub signer_infos: &'a [Tlv<'a>],
}

/// Compare the own reading of `der_bytes` (a ContentInfo holding SignedData) with rasn-cms's.
pub(crate) fn agree(
    der_bytes: &[u8],
    ours: &Structure<'_>,
    max_octets: usize,
) -> Result<(), Failure> {
    let differ = |field| Failure::CmsParserDisagreement { field };
    // rasn runs inside `contain_panic`: a panic in its decoder is a failed decode.
    let decoded = contain_panic(|| -> Result<SignedDataShape, rasn::error::DecodeError> {
        let content_info: ContentInfo = rasn::ber::decode(der_bytes)?;
        rasn::ber::decode(content_info.content.as_bytes())
    });
    let Some(Ok(signed_data)) = decoded else {
        return Err(differ(CmsField::Decode));
    };

    if i128::try_from(&signed_data.version).ok() != Some(i128::from(ours.version)) {
        return Err(differ(CmsField::Version));
    }
    let digest_algorithms: Vec<String> = signed_data
        .digest_algorithms
        .iter()
        .map(|algorithm| algorithm.algorithm.to_string())
        .collect();
    if digest_algorithms != ours.digest_algorithms {
        return Err(differ(CmsField::DigestAlgorithms));
    }
    let encapsulated = &signed_data.encap_content_info;
    if encapsulated.content_type.to_string() != ours.econtent_type {
        return Err(differ(CmsField::EContentType));
    }
    if encapsulated.content.as_deref() != ours.econtent {
        return Err(differ(CmsField::EContent));
    }
    let certificates = signed_data.certificates.as_ref().map_or(0, |set| set.len());
    if certificates != ours.certificates {
        return Err(differ(CmsField::Certificates));
    }
    if signed_data.crls.as_ref().map_or(0, |set| set.len()) != ours.crls {
        return Err(differ(CmsField::Crls));
    }
    if signed_data.signer_infos.len() != ours.signer_infos.len() {
        return Err(differ(CmsField::SignerCount));
    }
    for (theirs, ours) in signed_data.signer_infos.iter().zip(ours.signer_infos) {
        agree_signer(theirs, *ours, max_octets)?;
    }
    Ok(())
}

/// `rasn_cms::SignedData` (RFC 5652 §5.1) with each certificate and CRL an opaque element
/// (see the module docs).
#[derive(rasn::AsnType, rasn::Decode, Debug)]
struct SignedDataShape {
    version: CmsVersion,
    digest_algorithms: DigestAlgorithmIdentifiers,
    encap_content_info: EncapsulatedContentInfo,
    #[rasn(tag(0))]
    certificates: Option<SetOf<Any>>,
    #[rasn(tag(1))]
    crls: Option<SetOf<Any>>,
    signer_infos: SignerInfos,
}

/// One SignerInfo (RFC 5652 §5.3) as both readers see it.
fn agree_signer(theirs: &SignerInfo, ours: Tlv<'_>, max_octets: usize) -> Result<(), Failure> {
    let differ = |field| Failure::CmsParserDisagreement { field };
    let mut fields = ours.children();
    let mut field = |name| match fields.next() {
        Some(Ok(tlv)) => Ok(tlv),
        _ => Err(differ(name)),
    };
    field(CmsField::SignerId)?; // version: checked by the verifier itself
    let sid = field(CmsField::SignerId)?;
    let sid_agrees = match (&theirs.sid, sid.tag) {
        (SignerIdentifier::IssuerAndSerialNumber(issuer_serial), tag::SEQUENCE) => {
            let mut parts = sid.children();
            match (parts.next(), parts.next()) {
                (Some(Ok(issuer)), Some(Ok(serial))) => {
                    rasn::der::encode(&issuer_serial.issuer).is_ok_and(|der| der == issuer.full)
                        && rasn::der::encode(&issuer_serial.serial_number)
                            .is_ok_and(|der| der == serial.full)
                }
                _ => false,
            }
        }
        (SignerIdentifier::SubjectKeyIdentifier(key_id), 0x80) => key_id.as_ref() == sid.content,
        (SignerIdentifier::SubjectKeyIdentifier(key_id), 0xa0) => sid
            .children()
            .next()
            .and_then(Result::ok)
            .and_then(|octets| octets.octets(max_octets).ok())
            .is_some_and(|octets| octets == key_id.as_ref()),
        _ => false,
    };
    if !sid_agrees {
        return Err(differ(CmsField::SignerId));
    }
    let digest = field(CmsField::SignerDigestAlgorithm)?;
    if algorithm_oid(digest).as_deref() != Some(&theirs.digest_algorithm.algorithm.to_string()) {
        return Err(differ(CmsField::SignerDigestAlgorithm));
    }
    let mut next = field(CmsField::SignedAttributes)?;
    let ours_attributes = if next.tag == 0xa0 {
        let attributes = next;
        next = field(CmsField::SignerSignatureAlgorithm)?;
        let mut types = Vec::new();
        for attribute in attributes.children() {
            let oid = attribute
                .ok()
                .and_then(|attribute| attribute.children().next())
                .and_then(Result::ok)
                .and_then(|oid| der::read_oid(oid).ok())
                .ok_or(differ(CmsField::SignedAttributes))?;
            types.push(oid);
        }
        Some(types)
    } else {
        None
    };
    let theirs_attributes: Option<Vec<String>> = theirs.signed_attrs.as_ref().map(|attributes| {
        attributes
            .iter()
            .map(|attribute| attribute.r#type.to_string())
            .collect()
    });
    if ours_attributes != theirs_attributes {
        return Err(differ(CmsField::SignedAttributes));
    }
    if algorithm_oid(next).as_deref() != Some(&theirs.signature_algorithm.algorithm.to_string()) {
        return Err(differ(CmsField::SignerSignatureAlgorithm));
    }
    let signature = field(CmsField::Signature)?
        .octets(max_octets)
        .map_err(|_| differ(CmsField::Signature))?;
    if signature != theirs.signature.as_ref() {
        return Err(differ(CmsField::Signature));
    }
    Ok(())
}

/// The OID of an AlgorithmIdentifier SEQUENCE.
fn algorithm_oid(tlv: Tlv<'_>) -> Option<String> {
    let oid = tlv.children().next()?.ok()?;
    der::read_oid(oid).ok()
}

#[cfg(test)]
mod tests {
    use openssl::cms::{CMSOptions, CmsContentInfo};
    use openssl::pkey::PKey;
    use openssl::x509::X509;

    use super::*;
    use crate::cms::content_info;

    const SHA256: &str = "2.16.840.1.101.3.4.2.1";
    const DATA: &str = "1.2.840.113549.1.7.1";

    fn signed(content: &[u8]) -> Vec<u8> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../certs/rsa2048");
        let cert =
            X509::from_pem(&std::fs::read(format!("{dir}/organizer.cert.pem")).unwrap()).unwrap();
        let key =
            PKey::private_key_from_pem(&std::fs::read(format!("{dir}/organizer.key.pem")).unwrap())
                .unwrap();
        CmsContentInfo::sign(
            Some(&cert),
            Some(&key),
            None,
            Some(content),
            CMSOptions::BINARY,
        )
        .unwrap()
        .to_der()
        .unwrap()
    }

    /// The SignerInfo TLVs: the last SET of the SignedData.
    fn signer_infos(der_bytes: &[u8]) -> Vec<Tlv<'_>> {
        let (_, signed_data) = content_info(der_bytes).unwrap();
        let set = signed_data.children().map(Result::unwrap).last().unwrap();
        set.children().map(Result::unwrap).collect()
    }

    fn check<'a>(
        der_bytes: &'a [u8],
        signers: &'a [Tlv<'a>],
        change: impl FnOnce(&mut Structure<'a>),
    ) -> Result<(), Failure> {
        let mut ours = Structure {
            version: 1,
            digest_algorithms: vec![SHA256.to_string()],
            econtent_type: DATA,
            econtent: Some(b"hello"),
            certificates: 1,
            crls: 0,
            signer_infos: signers,
        };
        change(&mut ours);
        agree(der_bytes, &ours, 1 << 20)
    }

    fn field(result: Result<(), Failure>) -> CmsField {
        match result {
            Err(Failure::CmsParserDisagreement { field }) => field,
            other => panic!("expected a disagreement, got {other:?}"),
        }
    }

    #[test]
    fn agrees_with_the_own_reader_on_openssl_output() {
        let der = signed(b"hello");
        assert_eq!(check(&der, &signer_infos(&der), |_| {}), Ok(()));
    }

    #[test]
    fn every_compared_field_can_disagree() {
        let der = signed(b"hello");
        let signers = signer_infos(&der);
        assert_eq!(
            field(check(&der, &signers, |s| s.version = 3)),
            CmsField::Version
        );
        assert_eq!(
            field(check(&der, &signers, |s| s
                .digest_algorithms
                .push(SHA256.into()))),
            CmsField::DigestAlgorithms
        );
        assert_eq!(
            field(check(&der, &signers, |s| s.econtent_type = SHA256)),
            CmsField::EContentType
        );
        assert_eq!(
            field(check(&der, &signers, |s| s.econtent = Some(b"hellO"))),
            CmsField::EContent
        );
        assert_eq!(
            field(check(&der, &signers, |s| s.econtent = None)),
            CmsField::EContent
        );
        assert_eq!(
            field(check(&der, &signers, |s| s.certificates = 2)),
            CmsField::Certificates
        );
        assert_eq!(field(check(&der, &signers, |s| s.crls = 1)), CmsField::Crls);
        assert_eq!(
            field(check(&der, &signers, |s| s.signer_infos = &[])),
            CmsField::SignerCount
        );
        // The same structure, but the SignerInfo of another signature: the signature octets
        // (and signingTime-dependent attributes) differ.
        let other = signed(b"other");
        let foreign = signer_infos(&other);
        assert_eq!(
            field(check(&der, &signers, |s| s.signer_infos = &foreign)),
            CmsField::Signature
        );
    }

    #[test]
    fn undecodable_input_is_a_disagreement() {
        let full = signed(b"hello");
        let signers = signer_infos(&full);
        // Truncated inside the SignerInfos: the length fields no longer fit.
        let cut = &full[..full.len() - 10];
        assert_eq!(field(check(cut, &signers, |_| {})), CmsField::Decode);
    }
}
