//! `imipsec gate`: glue from the configuration to `imipsec_gate::run_until_signal`, which
//! holds all of the gate's logic.

use std::sync::Arc;

use imipsec_gate::{GateConfig, LmtpConfig, MilterConfig, PipelineEngine, ServeError, logging};
use imipsec_pipeline::Stores;
use time::OffsetDateTime;

use crate::cli::{GateArgs, TrustArgs};
use crate::cmd::Exit;
use crate::config::{Config, ConfigError};
use crate::setup::{SetupError, pipeline_with};

/// Why the gate could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GateCommandError {
    /// The configuration file could not be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The pipeline could not be built.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// `--lmtp` without a backend (`--lmtp-backend` or `[gate.lmtp] backend`), or the reverse.
    #[error("the LMTP proxy needs both --lmtp and --lmtp-backend (or a [gate.lmtp] table)")]
    LmtpIncomplete,
    /// The gate failed to start.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Runs the gate until SIGTERM.
pub fn run(args: &GateArgs) -> Result<Exit, GateCommandError> {
    let config = Config::load(&args.config)?;
    let gate = with_overrides(config.gate.clone(), args)?;
    logging::init(if args.log_json {
        logging::LogFormat::Json
    } else {
        logging::LogFormat::Text
    });
    let trust = TrustArgs {
        config: Some(args.config.clone()),
        strict_icalendar: args.strict_icalendar,
        ..TrustArgs::default()
    };
    let setup = pipeline_with(&trust, &config, true)?;
    let store = setup
        .store
        .map(|store| Box::new(store) as Box<dyn Stores + Send>);
    let engine = Arc::new(PipelineEngine::new(setup.pipeline, store));
    imipsec_gate::run_until_signal(gate, engine, Arc::new(OffsetDateTime::now_utc))?;
    // The last line of a clean shutdown, so that a log reader knows the drain completed and
    // the process did not just die.
    tracing::info!("gate stopped");
    Ok(Exit::Success)
}

fn with_overrides(mut gate: GateConfig, args: &GateArgs) -> Result<GateConfig, GateCommandError> {
    if let Some(listen) = args.milter {
        gate.milter = Some(MilterConfig { listen });
    }
    match (&mut gate.lmtp, args.lmtp, args.lmtp_backend) {
        (_, None, None) => {}
        (Some(lmtp), listen, backend) => {
            lmtp.listen = listen.unwrap_or(lmtp.listen);
            lmtp.backend = backend.unwrap_or(lmtp.backend);
        }
        (None, Some(listen), Some(backend)) => {
            gate.lmtp = Some(LmtpConfig {
                listen,
                backend,
                quarantine_address: None,
                hostname: "localhost".to_owned(),
            });
        }
        (None, _, _) => return Err(GateCommandError::LmtpIncomplete),
    }
    Ok(gate)
}
