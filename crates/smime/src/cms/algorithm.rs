//! Algorithms of a SignerInfo (RFC 5652 §5.3, RFC 5754, RFC 4055, RFC 8410): object
//! identifiers, digest algorithms, signature schemes and their parameters, the key policy and
//! the key maxima, and the public-key operation itself (OpenSSL).
// Untrusted input reaches every function here: no indexing or slicing that can panic
// (get / split_at_checked / patterns instead), issue #11 item 1.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use openssl::error::ErrorStack;
use openssl::md::{Md, MdRef};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use openssl::x509::X509;
use rasn::Decoder as _;
use rasn::types::{Any, Integer};
use rasn_pkix::AlgorithmIdentifier;

use crate::error::Failure;
use crate::limits::{LimitKind, Limits};
use crate::policy::AlgorithmPolicy;
use crate::trust::ParsedCertificate;

/// `oid` as dotted text ("1.2.840.113549.1.7.1"), the form compared with [`oid`]'s constants.
/// Written digit by digit rather than through `rasn`'s `Display`: one `write!` per arc was
/// about 2% of `imipsec audit`'s time (issue 17), for a dozen OIDs per message.
pub(crate) fn oid_text(oid: &rasn::types::Oid) -> String {
    let mut text = String::with_capacity(oid.len() * 4);
    for (index, arc) in oid.iter().enumerate() {
        if index > 0 {
            text.push('.');
        }
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        let mut rest = *arc;
        loop {
            at -= 1;
            // `rest % 10` is below 10: the digit's ASCII code, never out of range.
            if let Some(slot) = digits.get_mut(at) {
                *slot = b'0' + (rest % 10) as u8;
            }
            rest /= 10;
            if rest == 0 || at == 0 {
                break;
            }
        }
        for &digit in digits.get(at..).unwrap_or_default() {
            text.push(char::from(digit));
        }
    }
    text
}

/// Object identifiers used here, dotted.
pub(crate) mod oid {
    pub const DATA: &str = "1.2.840.113549.1.7.1";
    pub const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
    pub const ENVELOPED_DATA: &str = "1.2.840.113549.1.7.3";
    pub const AUTH_ENVELOPED_DATA: &str = "1.2.840.113549.1.9.16.1.23";
    pub const CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
    pub const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
    pub const SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
    pub const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
    pub const MD5_WITH_RSA: &str = "1.2.840.113549.1.1.4";
    pub const SHA1_WITH_RSA: &str = "1.2.840.113549.1.1.5";
    pub const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
    pub const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
    pub const SHA384_WITH_RSA: &str = "1.2.840.113549.1.1.12";
    pub const SHA512_WITH_RSA: &str = "1.2.840.113549.1.1.13";
    pub const SHA224_WITH_RSA: &str = "1.2.840.113549.1.1.14";
    pub const MGF1: &str = "1.2.840.113549.1.1.8";
    pub const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    pub const ECDSA_SHA1: &str = "1.2.840.10045.4.1";
    pub const ECDSA_SHA224: &str = "1.2.840.10045.4.3.1";
    pub const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
    pub const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
    pub const ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";
    pub const ED25519: &str = "1.3.101.112";
    pub const MD5: &str = "1.2.840.113549.2.5";
    pub const SHA1: &str = "1.3.14.3.2.26";
    pub const SHA256: &str = "2.16.840.1.101.3.4.2.1";
    pub const SHA384: &str = "2.16.840.1.101.3.4.2.2";
    pub const SHA512: &str = "2.16.840.1.101.3.4.2.3";
    pub const SHA224: &str = "2.16.840.1.101.3.4.2.4";
}

/// A message digest algorithm (RFC 5754).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// MD5 (never accepted).
    Md5,
    /// SHA-1 (accepted only with `danger_allow_sha1`).
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA3-256: only from an OpenPGP signature (RFC 9580 section 9.5); CMS signatures
    /// with it are not read.
    Sha3_256,
    /// SHA3-512: as [`DigestAlgorithm::Sha3_256`].
    Sha3_512,
}

impl DigestAlgorithm {
    fn from_oid(oid: &str) -> Option<Self> {
        Some(match oid {
            oid::MD5 => DigestAlgorithm::Md5,
            oid::SHA1 => DigestAlgorithm::Sha1,
            oid::SHA224 => DigestAlgorithm::Sha224,
            oid::SHA256 => DigestAlgorithm::Sha256,
            oid::SHA384 => DigestAlgorithm::Sha384,
            oid::SHA512 => DigestAlgorithm::Sha512,
            _ => return None,
        })
    }

    /// Lowercase name, as used in `weak-algorithm` failures.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "md5",
            DigestAlgorithm::Sha1 => "sha1",
            DigestAlgorithm::Sha224 => "sha224",
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha384 => "sha384",
            DigestAlgorithm::Sha512 => "sha512",
            DigestAlgorithm::Sha3_256 => "sha3-256",
            DigestAlgorithm::Sha3_512 => "sha3-512",
        }
    }

    /// The algorithm as OpenSSL implements it, fetched once per process (see
    /// [`crate::digest`]).
    fn md(self) -> &'static MdRef {
        use crate::digest::{Fetched, SHA256};
        static MD5: Fetched = Fetched::new("MD5", Md::md5);
        static SHA1: Fetched = Fetched::new("SHA1", Md::sha1);
        static SHA224: Fetched = Fetched::new("SHA2-224", Md::sha224);
        static SHA384: Fetched = Fetched::new("SHA2-384", Md::sha384);
        static SHA512: Fetched = Fetched::new("SHA2-512", Md::sha512);
        static SHA3_256: Fetched = Fetched::new("SHA3-256", Md::sha3_256);
        static SHA3_512: Fetched = Fetched::new("SHA3-512", Md::sha3_512);
        match self {
            DigestAlgorithm::Md5 => MD5.md(),
            DigestAlgorithm::Sha1 => SHA1.md(),
            DigestAlgorithm::Sha224 => SHA224.md(),
            DigestAlgorithm::Sha256 => SHA256.md(),
            DigestAlgorithm::Sha384 => SHA384.md(),
            DigestAlgorithm::Sha512 => SHA512.md(),
            DigestAlgorithm::Sha3_256 => SHA3_256.md(),
            DigestAlgorithm::Sha3_512 => SHA3_512.md(),
        }
    }

    /// The digest of `data` with this algorithm.
    pub(crate) fn digest(self, data: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
        crate::digest::digest(self.md(), &[data])
    }

    pub(crate) fn check(self, policy: &AlgorithmPolicy) -> Result<(), Failure> {
        let weak = match self {
            DigestAlgorithm::Md5 => true,
            DigestAlgorithm::Sha1 => !policy.danger_allow_sha1,
            _ => false,
        };
        if weak {
            Err(Failure::WeakAlgorithm {
                algorithm: self.name().to_string(),
            })
        } else {
            Ok(())
        }
    }
}

/// How a signature value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Pkcs1(DigestAlgorithm),
    Pss {
        hash: DigestAlgorithm,
        mgf1: DigestAlgorithm,
        salt: i32,
    },
    Ecdsa(DigestAlgorithm),
    Ed25519,
}

/// The NULL parameters of an AlgorithmIdentifier, as encoded.
const NULL: [u8; 2] = [0x05, 0x00];

/// The digest algorithm of an AlgorithmIdentifier whose parameters are absent or NULL (RFC
/// 5754 §2: both occur). Neither the SignedData's digestAlgorithms nor a SignerInfo's
/// digestAlgorithm is covered by a signature, so other parameters are `malformed-cms`.
pub(crate) fn digest_algorithm(
    identifier: &AlgorithmIdentifier,
) -> Result<DigestAlgorithm, Failure> {
    if identifier
        .parameters
        .as_ref()
        .is_some_and(|parameters| parameters.as_bytes() != NULL)
    {
        return Err(Failure::MalformedCms { offset: 0 });
    }
    digest_from_identifier(identifier)
}

fn digest_from_identifier(identifier: &AlgorithmIdentifier) -> Result<DigestAlgorithm, Failure> {
    let oid = oid_text(&identifier.algorithm);
    DigestAlgorithm::from_oid(&oid).ok_or(Failure::UnsupportedAlgorithm { oid })
}

/// RSASSA-PSS-params (RFC 4055 §3.1), all four fields optional, in this order:
/// `hashAlgorithm [0]`, `maskGenAlgorithm [1]`, `saltLength [2]`, `trailerField [3]`.
#[derive(rasn::AsnType, rasn::Decode, Debug)]
struct PssParameters {
    #[rasn(tag(explicit(0)))]
    hash_algorithm: Option<AlgorithmIdentifier>,
    #[rasn(tag(explicit(1)))]
    mask_gen_algorithm: Option<AlgorithmIdentifier>,
    #[rasn(tag(explicit(2)))]
    salt_length: Option<Integer>,
    #[rasn(tag(explicit(3)))]
    trailer_field: Option<Integer>,
}

/// RSASSA-PSS-params (RFC 4055 §3.1), defaults SHA-1 / MGF1-SHA-1 / 20.
fn pss_parameters(parameters: Option<&Any>) -> Result<Scheme, Failure> {
    let malformed = Failure::MalformedCms { offset: 0 };
    let mut hash = DigestAlgorithm::Sha1;
    let mut mgf1 = DigestAlgorithm::Sha1;
    let mut salt = 20i32;
    if let Some(parameters) = parameters {
        let parameters: PssParameters =
            crate::cms::decode::der(parameters.as_bytes()).ok_or(malformed.clone())?;
        if let Some(algorithm) = &parameters.hash_algorithm {
            hash = digest_from_identifier(algorithm)?;
        }
        if let Some(mgf) = &parameters.mask_gen_algorithm {
            let oid = oid_text(&mgf.algorithm);
            if oid != oid::MGF1 {
                return Err(Failure::UnsupportedAlgorithm { oid });
            }
            let mgf_hash: AlgorithmIdentifier = mgf
                .parameters
                .as_ref()
                .and_then(|p| crate::cms::decode::der(p.as_bytes()))
                .ok_or(malformed.clone())?;
            mgf1 = digest_from_identifier(&mgf_hash)?;
        }
        if let Some(length) = &parameters.salt_length {
            salt = i32::try_from(length)
                .ok()
                .filter(|salt| (0..=0xffff).contains(salt))
                .ok_or(malformed.clone())?;
        }
        // trailerField must be 1 (trailerFieldBC).
        if let Some(trailer) = &parameters.trailer_field
            && i32::try_from(trailer).ok() != Some(1)
        {
            return Err(malformed);
        }
    }
    Ok(Scheme::Pss { hash, mgf1, salt })
}

/// The scheme of a SignerInfo's signatureAlgorithm, with its digestAlgorithm `digest`.
pub(crate) fn scheme(
    identifier: &AlgorithmIdentifier,
    digest: DigestAlgorithm,
) -> Result<Scheme, Failure> {
    use DigestAlgorithm as D;
    let algorithm = oid_text(&identifier.algorithm);
    let parameters = identifier.parameters.as_ref();
    // Only PSS has parameters; elsewhere they are absent or NULL (RFC 3370 §3.2, RFC 5758 §3.2).
    // The field is not covered by the signature, so anything else is rejected, not ignored.
    if algorithm != oid::RSASSA_PSS
        && let Some(parameters) = parameters
        && parameters.as_bytes() != NULL
    {
        return Err(Failure::MalformedCms { offset: 0 });
    }
    Ok(match algorithm.as_str() {
        oid::RSA_ENCRYPTION => Scheme::Pkcs1(digest),
        oid::MD5_WITH_RSA => Scheme::Pkcs1(D::Md5),
        oid::SHA1_WITH_RSA => Scheme::Pkcs1(D::Sha1),
        oid::SHA224_WITH_RSA => Scheme::Pkcs1(D::Sha224),
        oid::SHA256_WITH_RSA => Scheme::Pkcs1(D::Sha256),
        oid::SHA384_WITH_RSA => Scheme::Pkcs1(D::Sha384),
        oid::SHA512_WITH_RSA => Scheme::Pkcs1(D::Sha512),
        oid::RSASSA_PSS => pss_parameters(parameters)?,
        oid::EC_PUBLIC_KEY => Scheme::Ecdsa(digest),
        oid::ECDSA_SHA1 => Scheme::Ecdsa(D::Sha1),
        oid::ECDSA_SHA224 => Scheme::Ecdsa(D::Sha224),
        oid::ECDSA_SHA256 => Scheme::Ecdsa(D::Sha256),
        oid::ECDSA_SHA384 => Scheme::Ecdsa(D::Sha384),
        oid::ECDSA_SHA512 => Scheme::Ecdsa(D::Sha512),
        oid::ED25519 => Scheme::Ed25519,
        other => {
            return Err(Failure::UnsupportedAlgorithm {
                oid: other.to_string(),
            });
        }
    })
}

/// Policy on a public key: RSA modulus size; EC keys below 256 bits.
pub(crate) fn check_key(key: &PKey<Public>, policy: &AlgorithmPolicy) -> Result<(), Failure> {
    let id = key.id();
    if (id == Id::RSA || id == Id::RSA_PSS) && key.bits() < policy.min_rsa_bits {
        return Err(Failure::WeakAlgorithm {
            algorithm: format!("rsa-{}", key.bits()),
        });
    }
    if id == Id::EC && key.bits() < 256 {
        return Err(Failure::WeakAlgorithm {
            algorithm: format!("ec-{}", key.bits()),
        });
    }
    Ok(())
}

/// The key maxima of [`Limits`] and the cost of one verification with `key`, in RSA-2048
/// verifications (measured with `openssl speed`, see `limits`). RSA: modulus and public
/// exponent within the limits, exponent odd and at least 3; EC: only the named curves P-256,
/// P-384 and P-521 (explicit curve parameters, other curves are refused); Ed25519; any other
/// key type (DSA, whose verification cost grows with its parameters) is unsupported.
pub(crate) fn key_weight(key: &PKey<Public>, limits: &Limits) -> Result<u64, Failure> {
    let id = key.id();
    if id == Id::RSA || id == Id::RSA_PSS {
        let bits = key.bits();
        if bits > limits.rsa_modulus_bits {
            return Err(Failure::LimitExceeded(LimitKind::RsaModulusBits));
        }
        let rsa = key.rsa().map_err(|_| Failure::UnsupportedAlgorithm {
            oid: oid::RSA_ENCRYPTION.to_string(),
        })?;
        let exponent = rsa.e();
        let exponent_bits = u32::try_from(exponent.num_bits()).unwrap_or(u32::MAX);
        if exponent_bits > limits.rsa_exponent_bits {
            return Err(Failure::LimitExceeded(LimitKind::RsaExponentBits));
        }
        // e = 1 makes every signature forgeable; an even e is no RSA key (RFC 8017 §3.1).
        if exponent_bits < 2 || !exponent.is_bit_set(0) {
            return Err(Failure::WeakAlgorithm {
                algorithm: format!(
                    "rsa-exponent-{}",
                    exponent
                        .to_dec_str()
                        .map(|e| e.to_string())
                        .unwrap_or_default()
                ),
            });
        }
        let ones: u32 = exponent.to_vec().iter().map(|byte| byte.count_ones()).sum();
        // Square-and-multiply: one squaring per bit after the first, one multiplication per
        // set bit after the first (17 for 65537).
        let multiplications = u64::from(exponent_bits - 1 + ones.saturating_sub(1)).max(1);
        let bits = u64::from(bits);
        let work = bits * bits * multiplications;
        let unit = 2048 * 2048 * 17;
        return Ok(work.div_ceil(unit).max(1));
    }
    if id == Id::EC {
        // RFC 5480 §2.1.1: only namedCurve; OpenSSL maps explicit parameters equal to a
        // named curve to its name, so the encoding is checked too.
        let curve = key.ec_key().ok().and_then(|ec| {
            let group = ec.group();
            let named = group.asn1_flag() == openssl::ec::Asn1Flag::NAMED_CURVE;
            group.curve_name().filter(|_| named)
        });
        return match curve {
            Some(Nid::X9_62_PRIME256V1) => Ok(4),
            Some(Nid::SECP384R1) => Ok(40),
            Some(Nid::SECP521R1) => Ok(30),
            _ if key.bits() < 256 => Err(Failure::WeakAlgorithm {
                algorithm: format!("ec-{}", key.bits()),
            }),
            Some(other) => Err(Failure::UnsupportedAlgorithm {
                oid: other.short_name().unwrap_or("unknown-curve").to_string(),
            }),
            None => Err(Failure::UnsupportedAlgorithm {
                oid: "explicit-curve-parameters".to_string(),
            }),
        };
    }
    if id == Id::ED25519 {
        return Ok(7);
    }
    Err(Failure::UnsupportedAlgorithm {
        oid: Nid::from_raw(id.as_raw())
            .short_name()
            .unwrap_or("unknown-key-type")
            .to_string(),
    })
}

/// Policy on the validated chain: keys of every certificate, signature algorithms of every
/// certificate below the anchor (the anchor's self-signature is not relied on).
pub(crate) fn check_chain(chain: &[X509], policy: &AlgorithmPolicy) -> Result<(), Failure> {
    let below_anchor = chain.len().saturating_sub(1);
    for (depth, cert) in chain.iter().enumerate() {
        if let Ok(key) = cert.public_key() {
            check_key(&key, policy)?;
        }
        if depth < below_anchor {
            let name = cert
                .signature_algorithm()
                .object()
                .nid()
                .short_name()
                .unwrap_or("")
                .to_ascii_lowercase();
            if name.contains("md5") {
                return Err(Failure::WeakAlgorithm {
                    algorithm: "md5".to_string(),
                });
            }
            if name.contains("sha1") && !policy.danger_allow_sha1 {
                return Err(Failure::WeakAlgorithm {
                    algorithm: "sha1".to_string(),
                });
            }
        }
    }
    Ok(())
}

pub(crate) fn verify_signature(
    signer: &ParsedCertificate,
    key: &PKey<Public>,
    scheme: Scheme,
    data: &[u8],
    signature: &[u8],
) -> Result<bool, ()> {
    let id = key.id();
    let algorithm = match scheme {
        Scheme::Pkcs1(algorithm) if id == Id::RSA => algorithm,
        Scheme::Pss {
            hash: algorithm, ..
        } if id == Id::RSA || id == Id::RSA_PSS => algorithm,
        Scheme::Ecdsa(algorithm) if id == Id::EC => algorithm,
        Scheme::Ed25519 if id == Id::ED25519 => {
            let result = Verifier::new_without_digest(key)
                .and_then(|mut verifier| verifier.verify_oneshot(signature, data));
            return Ok(result.unwrap_or(false));
        }
        _ => return Err(()),
    };
    // RFC 5652 §5.6: the signature is over the digest of `data`; verifying the digest with
    // EVP_PKEY_verify is what EVP_DigestVerify does, minus the per-call algorithm fetch and
    // context set-up, which a context reused per signer key and scheme avoids.
    let Ok(digest) = algorithm.digest(data) else {
        return Ok(false);
    };
    let Some(mut context) = signer
        .take_verifier(scheme)
        .or_else(|| verify_context(key, scheme).ok())
    else {
        return Ok(false);
    };
    match context.verify(&digest, signature) {
        Ok(verified) => {
            signer.return_verifier(scheme, context);
            Ok(verified)
        }
        // An OpenSSL error while verifying (malformed signature encoding) is a failed
        // signature; the context is dropped rather than reused after an error.
        Err(_) => Ok(false),
    }
}

/// A verify context for `key` set up for `scheme` (never Ed25519, which has no prehash).
fn verify_context(key: &PKey<Public>, scheme: Scheme) -> Result<PkeyCtx<Public>, ErrorStack> {
    let mut context = PkeyCtx::new(key)?;
    context.verify_init()?;
    match scheme {
        Scheme::Pkcs1(hash) => {
            context.set_rsa_padding(Padding::PKCS1)?;
            context.set_signature_md(hash.md())?;
        }
        Scheme::Pss { hash, mgf1, salt } => {
            context.set_rsa_padding(Padding::PKCS1_PSS)?;
            context.set_signature_md(hash.md())?;
            context.set_rsa_mgf1_md(mgf1.md())?;
            context.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt))?;
        }
        Scheme::Ecdsa(hash) => context.set_signature_md(hash.md())?,
        Scheme::Ed25519 => {}
    }
    Ok(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::LimitKind;

    #[test]
    fn oid_text_is_rasns_dotted_form() {
        for arcs in [
            &[1u32, 2, 840, 113_549, 1, 7, 1][..],
            &[2, 16, 840, 1, 101, 3, 4, 2, 1],
            &[0, 0],
            &[1, 3, 6, 1, 4, 1, u32::MAX, 0, 9, 10, 99, 100, 1_000_000_000],
        ] {
            let oid = rasn::types::Oid::new(arcs).unwrap();
            assert_eq!(oid_text(oid), oid.to_string());
        }
    }

    /// An RSA public key with a random odd modulus of exactly `bits` bits and exponent `e`
    /// (no private key: the maxima are checked on public keys alone).
    fn rsa_public(bits: i32, exponent: &openssl::bn::BigNumRef) -> PKey<Public> {
        use openssl::bn::{BigNum, MsbOption};
        let mut modulus = BigNum::new().unwrap();
        modulus.rand(bits, MsbOption::ONE, true).unwrap();
        let exponent = exponent.to_owned().unwrap();
        let rsa = openssl::rsa::Rsa::from_public_components(modulus, exponent).unwrap();
        PKey::from_rsa(rsa).unwrap()
    }

    fn number(text: &str) -> openssl::bn::BigNum {
        openssl::bn::BigNum::from_dec_str(text).unwrap()
    }

    /// Issue #11 item 7: the maxima are exact. RSA modulus 8192 bits accepted, 8193 refused;
    /// public exponent 2^32 - 1 accepted, 2^32 + 1 (the next odd one) refused; e = 1 and an
    /// even e are no RSA keys.
    #[test]
    fn rsa_key_maxima_are_exact() {
        let limits = Limits::default();
        let f4 = number("65537");
        assert_eq!(key_weight(&rsa_public(2048, &f4), &limits), Ok(1));
        assert_eq!(key_weight(&rsa_public(8192, &f4), &limits), Ok(16));
        assert_eq!(
            key_weight(&rsa_public(8193, &f4), &limits),
            Err(Failure::LimitExceeded(LimitKind::RsaModulusBits))
        );
        assert_eq!(
            key_weight(&rsa_public(2048, &number("4294967295")), &limits),
            Ok(4)
        );
        assert_eq!(
            key_weight(&rsa_public(8192, &number("4294967295")), &limits),
            Ok(59)
        );
        assert_eq!(
            key_weight(&rsa_public(2048, &number("4294967297")), &limits),
            Err(Failure::LimitExceeded(LimitKind::RsaExponentBits))
        );
        assert_eq!(key_weight(&rsa_public(2048, &number("3")), &limits), Ok(1));
        for weak in ["1", "65536"] {
            assert!(matches!(
                key_weight(&rsa_public(2048, &number(weak)), &limits),
                Err(Failure::WeakAlgorithm { .. })
            ));
        }
    }

    /// EC keys only on the named curves P-256, P-384, P-521; explicit parameters (even of
    /// P-256) and other curves are refused before any operation.
    #[test]
    fn ec_keys_only_on_named_curves() {
        use openssl::ec::{Asn1Flag, EcGroup, EcKey};
        let limits = Limits::default();
        let weight = |nid: Nid, explicit: bool| {
            let mut group = EcGroup::from_curve_name(nid).unwrap();
            if explicit {
                group.set_asn1_flag(Asn1Flag::EXPLICIT_CURVE);
            }
            let private = EcKey::generate(&group).unwrap();
            let public = EcKey::from_public_key(&group, private.public_key()).unwrap();
            let der = PKey::from_ec_key(public)
                .unwrap()
                .public_key_to_der()
                .unwrap();
            key_weight(&PKey::public_key_from_der(&der).unwrap(), &limits)
        };
        assert_eq!(weight(Nid::X9_62_PRIME256V1, false), Ok(4));
        assert_eq!(weight(Nid::SECP384R1, false), Ok(40));
        assert_eq!(weight(Nid::SECP521R1, false), Ok(30));
        assert!(matches!(
            weight(Nid::X9_62_PRIME256V1, true),
            Err(Failure::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            weight(Nid::SECP256K1, false),
            Err(Failure::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            weight(Nid::X9_62_PRIME192V1, false),
            Err(Failure::WeakAlgorithm { .. })
        ));
    }
}
