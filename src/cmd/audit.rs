//! `imipsec audit`: evaluate every message of mailboxes and report.

use crate::cli::AuditArgs;
use crate::cmd::Exit;
use crate::config::{Config, ConfigError};
use crate::setup::{SetupError, pipeline_from};

/// Why the audit could not run.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The configuration file could not be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The pipeline could not be built from flags and configuration.
    #[error(transparent)]
    Setup(#[from] SetupError),
}

/// Runs `imipsec audit`.
pub fn run(args: &AuditArgs) -> Result<Exit, AuditError> {
    let config = Config::load_optional(args.trust.config.as_deref())?;
    let _setup = pipeline_from(&args.trust, &config)?;
    Ok(Exit::Success)
}
