//! Points in time: `imipsec-types`' [`Timestamp`], re-exported here so that the store's
//! paths stay as they were.

pub use imipsec_types::Timestamp;
