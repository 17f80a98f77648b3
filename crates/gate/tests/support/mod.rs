//! Shared test support.
pub mod test_engine;
