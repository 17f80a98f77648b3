//! Shared test support.
pub mod cms;
pub mod panicking_store;
pub mod test_engine;
