//! `imipsec sign` (owned by the pipeline work; this is the frame's placeholder).

use crate::cli::SignArgs;
use crate::cmd::Exit;

/// Why `sign` failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// Placeholder until the signing side lands.
    #[error("`imipsec sign` is not yet built")]
    NotYetBuilt,
}

/// Runs `imipsec sign`.
pub fn run(_args: &SignArgs) -> Result<Exit, SignError> {
    Err(SignError::NotYetBuilt)
}
