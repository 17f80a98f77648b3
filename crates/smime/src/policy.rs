//! Algorithm policy: which digests, signature algorithms and key sizes are acceptable.
//!
//! Like sequoia's `StandardPolicy`, the policy is a value passed in, and the default denies:
//! MD5 and SHA-1 (RFC 8551 §2.1 "SHOULD NOT" / RFC 6151, SHAttered) and RSA keys under 2048 bits
//! (RFC 8551 §4.1: receiving agents "SHOULD" support 2048 and above).

/// Acceptable algorithms for signatures and certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgorithmPolicy {
    /// Smallest accepted RSA modulus in bits (signer and every certificate of its chain).
    pub min_rsa_bits: u32,
    /// Accept SHA-1 as message digest and in signature algorithms (needed for legacy corpora
    /// such as Thunderbird's SHA-1 suite). MD5 is never accepted.
    pub danger_allow_sha1: bool,
}

impl Default for AlgorithmPolicy {
    fn default() -> Self {
        AlgorithmPolicy {
            min_rsa_bits: 2048,
            danger_allow_sha1: false,
        }
    }
}
