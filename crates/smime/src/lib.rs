#![doc = include_str!("../README.md")]
//!
//! Module ownership while the crate is being built:
//! reading side (MIME walk, CMS verification, trust, decryption): every module but the three
//! below; writing side: `keys` (identities from PEM / PKCS#12), `sign`, `encrypt`.
// Unsafe code is denied (not forbidden, which no inner `allow` could lift) so that the one
// FFI module below can opt in; every other module stays free of it.
#![deny(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod calendar;
pub mod encrypt;
pub mod keys;
pub mod sign;

mod cms;
mod decrypt;
mod digest;
mod error;
#[allow(unsafe_code)]
mod ffi;
mod inspect;
mod limits;
mod mime;
mod policy;
pub mod revocation;
mod trust;

/// The OpenPGP layer (RFC 3156 PGP/MIME) the walk calls: its keyring, certificates and
/// identities are configured through [`InspectOptions::openpgp`].
pub use imipsec_openpgp as openpgp;

pub use calendar::CalendarEvidence;
pub use cms::{DigestAlgorithm, SID_CANDIDATES_MAX, SignerReport, VerifiedSigner};
pub use error::{BadSignatureReason, Failure, MimeErrorKind, SmimeError};
pub use inspect::{
    HeaderField, HeaderMismatch, InspectOptions, Inspection, Layer, LayerKind, LayerOutcome, Leaf,
    OuterHeaders, SignedPart, inspect, verify_signed_data, verify_signed_data_with,
};
pub use limits::{LimitKind, Limits};
pub use policy::AlgorithmPolicy;
pub use revocation::{Fetched, RevocationMode, RevocationSource};
pub use trust::{
    CHAIN_CACHE_CAPACITY, CrlStatus, EmailAddress, MalformedAddress, POLICIES_MAX,
    PolicyConstraints, TRUST_DIRECTORY_FILES_MAX, TRUST_FILE_BYTES_MAX, TrustStore,
    TrustStoreError, load_certificates, load_crls, normalize_email,
};

/// The SHA-256 digest of `data`: a gate keys the messages whose event state it recorded by
/// the digest of the received bytes (this crate is the only one linking a hash
/// implementation).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    digest::digest(digest::SHA256.md(), &[data])
        .ok()
        .and_then(|digest| <[u8; 32]>::try_from(digest).ok())
        .unwrap_or_else(|| openssl::sha::sha256(data))
}
