//! Named bounds on the OpenPGP work, checked before the work.

/// Bounds on one OpenPGP operation. The defaults fit iMIP (an invitation is kilobytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest `application/pgp-signature` part (armored) accepted for parsing.
    pub signature_bytes: usize,
    /// Largest encrypted OpenPGP message (armored) accepted for parsing.
    pub encrypted_bytes: usize,
    /// Largest plaintext a decryption may produce (decompression included: a compression
    /// bomb stops here).
    pub plaintext_bytes: usize,
    /// Most signatures in one signature part or one signed message.
    pub signatures: usize,
}

/// Default [`Limits::signature_bytes`]: 64 KiB (a signature is a few hundred bytes; 16 RSA-4096
/// signatures armored fit easily).
pub const SIGNATURE_BYTES_MAX: usize = 64 * 1024;
/// Default [`Limits::signatures`].
pub const SIGNATURES_MAX: usize = 16;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            signature_bytes: SIGNATURE_BYTES_MAX,
            encrypted_bytes: 16 * 1024 * 1024,
            plaintext_bytes: 16 * 1024 * 1024,
            signatures: SIGNATURES_MAX,
        }
    }
}

/// Which limit was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum LimitKind {
    /// [`Limits::signature_bytes`].
    #[error("OpenPGP signature part size")]
    SignatureBytes,
    /// [`Limits::encrypted_bytes`].
    #[error("OpenPGP encrypted message size")]
    EncryptedBytes,
    /// [`Limits::plaintext_bytes`].
    #[error("OpenPGP plaintext size")]
    PlaintextBytes,
    /// [`Limits::signatures`].
    #[error("number of OpenPGP signatures")]
    Signatures,
}
