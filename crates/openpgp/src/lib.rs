#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod certificate;
mod decrypt;
mod error;
mod keys;
mod limits;
mod policy;
mod verify;
mod write;

pub use decrypt::{COMPRESSION_DEPTH_MAX, Decrypted, check_control_part, decrypt};
pub use error::{Failure, LoadError};
pub use keys::{
    CERTIFICATES_MAX, Certificates, Identity, KEY_DIRECTORY_FILES_MAX, KEY_FILE_BYTES_MAX,
};
pub use limits::{LimitKind, Limits, SIGNATURE_BYTES_MAX, SIGNATURES_MAX};
pub use policy::Policy;
pub use verify::{VerifiedKey, verify_detached};
pub use write::{
    SIGNING_HASH, WriteError, encrypt, pgp_mime_encrypted, pgp_mime_signed, sign_detached,
};

/// What the MIME walk needs to process OpenPGP layers: the certificates the operator vouches
/// for and the secret keys to decrypt with.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    /// Certificates whose self-signed user IDs are trusted identities.
    pub certificates: Certificates,
    /// Secret keys to decrypt with.
    pub identities: Vec<Identity>,
}
