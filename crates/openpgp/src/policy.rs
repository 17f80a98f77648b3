//! Algorithm policy: the same rules, and the same escape hatch, as the S/MIME layer.

use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::public_key::PublicKeyAlgorithm;
use pgp::types::{KeyDetails, PublicParams};

use crate::error::Failure;

/// Acceptable algorithms for signatures (on documents and on the certificate itself) and keys.
///
/// The default denies MD5, SHA-1 and RIPEMD-160 (RFC 9580 §9.5: "MUST NOT" create, SHA-1
/// collisions: SHAttered, "SHA-1 is a Shambles"), RSA under 2048 bits, DSA and ElGamal (RFC
/// 9580 §9.1 deprecates them); it accepts RSA ≥ 2048, ECDSA (NIST curves, brainpool), EdDSA
/// (legacy Ed25519 and RFC 9580 Ed25519/Ed448) and ECDH/X25519/X448 — the algorithms RFC 9580
/// lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Smallest accepted RSA modulus in bits (signing key and primary key).
    pub min_rsa_bits: u32,
    /// Accept SHA-1 signatures (documents and self-signatures). MD5 and RIPEMD-160 are never
    /// accepted.
    pub danger_allow_sha1: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_rsa_bits: 2048,
            danger_allow_sha1: false,
        }
    }
}

impl Policy {
    /// `Err(WeakAlgorithm)` unless `hash` is acceptable.
    pub(crate) fn check_hash(&self, hash: HashAlgorithm) -> Result<(), Failure> {
        match hash {
            HashAlgorithm::Sha256
            | HashAlgorithm::Sha384
            | HashAlgorithm::Sha512
            | HashAlgorithm::Sha224
            | HashAlgorithm::Sha3_256
            | HashAlgorithm::Sha3_512 => Ok(()),
            HashAlgorithm::Sha1 if self.danger_allow_sha1 => Ok(()),
            other => Err(Failure::WeakAlgorithm {
                algorithm: hash_name(other),
            }),
        }
    }

    /// `Err(WeakAlgorithm)` unless the key's algorithm and size are acceptable.
    pub(crate) fn check_key(&self, key: &impl KeyDetails) -> Result<(), Failure> {
        match key.public_params() {
            PublicParams::RSA(rsa) => {
                use rsa::traits::PublicKeyParts;
                let bits = rsa.key.n().bits();
                if u64::try_from(bits).unwrap_or(u64::MAX) < u64::from(self.min_rsa_bits) {
                    return Err(Failure::WeakAlgorithm {
                        algorithm: format!("rsa-{bits}"),
                    });
                }
                Ok(())
            }
            PublicParams::ECDSA(_)
            | PublicParams::ECDH(_)
            | PublicParams::EdDSALegacy(_)
            | PublicParams::Ed25519(_)
            | PublicParams::X25519(_)
            | PublicParams::X448(_)
            | PublicParams::Ed448(_) => Ok(()),
            _ => Err(Failure::WeakAlgorithm {
                algorithm: algorithm_name(key.algorithm()),
            }),
        }
    }
}

/// `sha256`, `sha1`, ... (lowercase, as in `micalg=pgp-sha256`, RFC 3156 §5).
pub(crate) fn hash_name(hash: HashAlgorithm) -> String {
    match hash {
        HashAlgorithm::Md5 => "md5".to_owned(),
        HashAlgorithm::Sha1 => "sha1".to_owned(),
        HashAlgorithm::Ripemd160 => "ripemd160".to_owned(),
        HashAlgorithm::Sha256 => "sha256".to_owned(),
        HashAlgorithm::Sha384 => "sha384".to_owned(),
        HashAlgorithm::Sha512 => "sha512".to_owned(),
        HashAlgorithm::Sha224 => "sha224".to_owned(),
        HashAlgorithm::Sha3_256 => "sha3-256".to_owned(),
        HashAlgorithm::Sha3_512 => "sha3-512".to_owned(),
        other => format!("hash-{}", u8::from(other)),
    }
}

fn algorithm_name(algorithm: PublicKeyAlgorithm) -> String {
    match algorithm {
        PublicKeyAlgorithm::DSA => "dsa".to_owned(),
        PublicKeyAlgorithm::ElgamalEncrypt | PublicKeyAlgorithm::Elgamal => "elgamal".to_owned(),
        other => format!("openpgp-algorithm-{}", u8::from(other)),
    }
}
