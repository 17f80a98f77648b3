//! RFC 1847 / S/MIME layer (module layout; see the crate README once written).
//!
//! Module ownership while the crate is being built:
//! reading side (MIME walk, CMS verification, trust, decryption): every module but the three
//! below; writing side: `keys` (identities from PEM / PKCS#12), `sign`, `encrypt`.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod encrypt;
pub mod keys;
pub mod sign;
