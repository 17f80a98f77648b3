//! `imipsec store`: the policy store's lifecycle. `init` creates an empty store or migrates
//! an existing one, so that commands which only read a store can refuse a missing file
//! instead of silently creating an empty one that grants nothing.

use std::path::PathBuf;

use imipsec_policy::{SCHEMA_VERSION, Store, StoreError, StoreInit, StoreOptions};

use crate::cli::{StoreArgs, StoreCommand, StoreCommandArgs};
use crate::cmd::Exit;
use crate::config::{Config, ConfigError};

/// Why a store command failed (exit status 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreCommandError {
    /// The configuration file could not be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Neither `--store`, `IMIPSEC_STORE` nor the configuration names a store.
    #[error(
        "no policy store: give --store PATH, set IMIPSEC_STORE, or set [store] path in --config"
    )]
    NoStore,
    /// The store location cannot be used (a password on the command line).
    #[error(transparent)]
    Setup(#[from] crate::setup::SetupError),
    /// The store could not be created or migrated.
    #[error("cannot initialise policy store {}", .path.display())]
    Init {
        /// The store file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: StoreError,
    },
}

/// Runs `imipsec store`.
pub fn run(args: &StoreCommandArgs) -> Result<Exit, StoreCommandError> {
    match &args.command {
        StoreCommand::Init(args) => init(args),
    }
}

fn init(args: &StoreArgs) -> Result<Exit, StoreCommandError> {
    let config = Config::load_optional(args.config.as_deref())?;
    let path = args
        .store
        .clone()
        .or(config.store.path)
        .ok_or(StoreCommandError::NoStore)?;
    let location = crate::setup::store_location(&path)?;
    let path = PathBuf::from(location.to_string());
    let (_, outcome) = Store::init(&location, &StoreOptions::default()).map_err(|source| {
        StoreCommandError::Init {
            path: path.clone(),
            source,
        }
    })?;
    let what = match outcome {
        StoreInit::Created => "created".to_owned(),
        StoreInit::Migrated { from } => format!("migrated from schema version {from}"),
        StoreInit::Current => "already current".to_owned(),
    };
    println!(
        "{}: {what} (schema version {SCHEMA_VERSION})",
        path.display()
    );
    Ok(Exit::Success)
}
