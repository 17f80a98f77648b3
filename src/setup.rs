//! Builds a ready pipeline from flags and configuration (owned by the pipeline work; this is
//! the frame's placeholder so `verify` and `audit` share one construction).

use crate::cli::TrustArgs;
use crate::config::Config;

/// A pipeline ready to evaluate, with its optional store.
#[derive(Debug)]
pub struct PipelineSetup {
    _private: (),
}

/// Why the pipeline could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Placeholder until the pipeline lands.
    #[error("the pipeline is not yet built")]
    NotYetBuilt,
}

/// Builds the pipeline from `trust` flags over `config`.
pub fn pipeline_from(_trust: &TrustArgs, _config: &Config) -> Result<PipelineSetup, SetupError> {
    Err(SetupError::NotYetBuilt)
}
