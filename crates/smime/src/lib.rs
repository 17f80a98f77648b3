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
mod der;
mod error;
#[allow(unsafe_code)]
mod ffi;
mod inspect;
mod limits;
mod mime;
mod policy;
mod second_opinion;
mod trust;

pub use calendar::CalendarEvidence;
pub use cms::{DigestAlgorithm, SID_CANDIDATES_MAX, SignerReport, VerifiedSigner};
pub use error::{BadSignatureReason, CmsField, Failure, MimeErrorKind, SmimeError};
pub use inspect::{
    HeaderField, HeaderMismatch, InspectOptions, Inspection, Layer, LayerKind, LayerOutcome, Leaf,
    OuterHeaders, SignedPart, inspect, verify_signed_data,
};
pub use limits::{LimitKind, Limits};
pub use policy::AlgorithmPolicy;
pub use trust::{
    CHAIN_CACHE_CAPACITY, EmailAddress, MalformedAddress, RevocationMode, TrustStore,
    TrustStoreError, normalize_email,
};

/// The SHA-256 digest of `data`: a gate keys the messages whose event state it recorded by
/// the digest of the received bytes (this crate is the only one linking a hash
/// implementation).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    openssl::sha::sha256(data)
}
