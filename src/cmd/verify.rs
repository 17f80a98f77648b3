//! `imipsec verify` (owned by the pipeline work; this is the frame's placeholder).

use crate::cli::VerifyArgs;
use crate::cmd::Exit;

/// Why `verify` could not evaluate.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Placeholder until the pipeline lands.
    #[error("`imipsec verify` is not yet built")]
    NotYetBuilt,
}

/// Runs `imipsec verify`.
pub fn run(_args: &VerifyArgs) -> Result<Exit, VerifyError> {
    Err(VerifyError::NotYetBuilt)
}
