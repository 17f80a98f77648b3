//! Calendar user addresses: the rule and the normal form are `imipsec-types`' (one
//! addr-spec rule, ASCII-only case folding), re-exported here so that the store's paths
//! stay as they were.

pub use imipsec_types::{AddressError, LocalPartCase, normalize_address};
