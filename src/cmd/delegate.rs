//! `imipsec delegate`: manage SENT-BY delegations in the policy store.

use crate::cli::DelegateArgs;
use crate::cmd::Exit;

/// Why a delegate command failed.
#[derive(Debug, thiserror::Error)]
pub enum DelegateError {
    /// Placeholder until the policy store lands.
    #[error("`imipsec delegate` is not yet built")]
    NotYetBuilt,
}

/// Runs `imipsec delegate`.
pub fn run(_args: &DelegateArgs) -> Result<Exit, DelegateError> {
    Err(DelegateError::NotYetBuilt)
}
