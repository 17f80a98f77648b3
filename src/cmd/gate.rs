//! `imipsec gate`: glue from the configuration to `imipsec_gate::run_until_signal`, which
//! holds all of the gate's logic.

use std::sync::Arc;

use imipsec_gate::{
    ConfigError as GateConfigError, CrlStatus, Gate, GateConfig, LmtpConfig, Load, Loaded,
    MilterConfig, PipelineEngine, ServeError,
};
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
    /// The `[gate]` table is refused (no authserv_id, a remote listener, ...).
    #[error("{}: {}", .1.display(), .0)]
    Gate(GateConfigError, std::path::PathBuf),
    /// No event-state store and no `danger_no_event_state` (the same check the gate makes).
    #[error("{}: {}", .0.display(), ServeError::EventStateUnchecked)]
    EventStateUnchecked(std::path::PathBuf),
    /// The store's folder does not exist, so the gate could not create the store.
    #[error("{}: [store] path {}: its folder does not exist", .0.display(), .1.display())]
    StoreFolderMissing(std::path::PathBuf, std::path::PathBuf),
    /// The revocation cache is not a folder, or its parent folder does not exist.
    #[error("{}: revocation cache {}: not a folder, and cannot be created", .0.display(), .1.display())]
    RevocationCacheUnusable(std::path::PathBuf, std::path::PathBuf),
    /// The gate failed to start.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Runs the gate until SIGTERM; SIGHUP reloads the configuration file, anchors and CRLs
/// ([`GateLoader`]).
pub fn run(args: &GateArgs) -> Result<Exit, GateCommandError> {
    let config = Config::load(&args.config)?;
    let gate = with_overrides(config.gate.clone(), args)?;
    gate.validate()
        .map_err(|error| GateCommandError::Gate(error, args.config.clone()))?;
    if args.check_config {
        return check_config(&config, &gate, args);
    }
    crate::logging::init(if args.log_json {
        crate::logging::LogFormat::Json
    } else {
        crate::logging::LogFormat::Text
    });
    let loader = GateLoader { args: args.clone() };
    let loaded = loader.load_with(config, gate)?;
    let gate = Gate::new(
        loaded.config,
        loaded.engine,
        Arc::new(OffsetDateTime::now_utc),
    )
    .with_crls(loaded.crls)
    .with_loader(Arc::new(loader));
    imipsec_gate::run_until_signal(gate)?;
    // The last line of a clean shutdown, so that a log reader knows the drain completed and
    // the process did not just die.
    tracing::info!("gate stopped");
    Ok(Exit::Success)
}

/// Builds the gate's state from the configuration file and the flags: at start and on every
/// SIGHUP (the file is read again; the flags stay as given).
pub struct GateLoader {
    args: GateArgs,
}

impl GateLoader {
    fn load_with(&self, config: Config, gate: GateConfig) -> Result<Loaded, GateCommandError> {
        // At start and on every reload: what the configuration does that may not be meant.
        for warning in gate.warnings() {
            tracing::warn!(%warning, "gate configuration");
        }
        let args = &self.args;
        let trust = gate_trust_args(args, &config);
        let setup = pipeline_with(&trust, &config, true)?;
        let crls = crl_statuses(&setup, &config);
        let store = setup
            .store
            .map(|store| Box::new(store) as Box<dyn Stores + Send>);
        Ok(Loaded {
            config: gate,
            engine: Arc::new(PipelineEngine::new(setup.pipeline, store)),
            crls,
        })
    }
}

impl Load for GateLoader {
    fn load(&self) -> Result<Loaded, Box<dyn std::error::Error + Send + Sync>> {
        let config = Config::load(&self.args.config)?;
        let gate = with_overrides(config.gate.clone(), &self.args)?;
        gate.validate()
            .map_err(|error| GateCommandError::Gate(error, self.args.config.clone()))?;
        Ok(self.load_with(config, gate)?)
    }
}

/// The CRLs of the trust store with their nextUpdate, for the gate's log and metrics (the
/// gate warns about a stale one itself, at start and on every reload, so the setup's
/// stale-CRL warnings are not logged twice).
fn crl_statuses(setup: &crate::setup::PipelineSetup, config: &Config) -> Vec<CrlStatus> {
    // A file may hold several CRLs, and the store does not say which file each came from:
    // name the file when there is one, else the key.
    let source = match config.trust.crls.as_slice() {
        [one] => one.display().to_string(),
        _ => "[trust] crls".to_owned(),
    };
    setup
        .pipeline
        .settings()
        .trust
        .crl_status(setup.at)
        .into_iter()
        .map(|crl| CrlStatus {
            source: source.clone(),
            issuer: crl.issuer,
            next_update: crl.next_update,
        })
        .collect()
}

/// The trust flags of the gate: the configuration file, `--strict-icalendar`, the fetch
/// flags, and the gate's default revocation cache (`revocation-cache` beside the store) when
/// fetching is on and no cache is named.
fn gate_trust_args(args: &GateArgs, config: &Config) -> TrustArgs {
    let mut trust = TrustArgs {
        config: Some(args.config.clone()),
        strict_icalendar: args.strict_icalendar,
        fetch_revocation: args.fetch_revocation,
        revocation_cache: args.revocation_cache.clone(),
        ..TrustArgs::default()
    };
    if crate::setup::revocation_cache(&trust, config).is_none() {
        trust.revocation_cache = config.store.path.as_ref().map(|store| {
            store
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("revocation-cache")
        });
    }
    trust
}

/// `--check-config`: everything the gate checks before it listens, without listening or
/// creating anything: the file parses, `[gate]` validates (authserv_id, loopback listeners,
/// metrics, quarantine mailbox), anchors, CRLs and identities open, the store opens (or its
/// folder exists, for a store the gate would create), and event state is checked or
/// explicitly waived. One line on stdout, exit 0 (warnings, such as the backscatter of
/// refusals after the queue, on stderr); otherwise one line on stderr, exit 2.
fn check_config(
    config: &Config,
    gate: &GateConfig,
    args: &GateArgs,
) -> Result<Exit, GateCommandError> {
    let mut config = config.clone();
    if let Some(path) = config.store.path.clone()
        && !path.to_str().is_some_and(crate::config::is_store_url)
        && !path.exists()
    {
        let folder = path
            .parent()
            .filter(|folder| !folder.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !folder.is_dir() {
            return Err(GateCommandError::StoreFolderMissing(
                args.config.clone(),
                path,
            ));
        }
        // The gate creates it on start; nothing to open yet, and nothing is created here.
        config.store.path = None;
        config.gate.danger_no_event_state = true;
    }
    let mut trust = gate_trust_args(args, &config);
    // The revocation cache folder is created on start; here it must be a folder or creatable.
    if trust.fetch_revocation || config.trust.fetch_revocation {
        if let Some(cache) = crate::setup::revocation_cache(&trust, &config)
            && !cache.is_dir()
        {
            let parent = cache
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            if cache.exists() || !parent.is_dir() {
                return Err(GateCommandError::RevocationCacheUnusable(
                    args.config.clone(),
                    cache,
                ));
            }
        }
        trust.fetch_revocation = false;
        config.trust.fetch_revocation = false;
    }
    let setup = pipeline_with(&trust, &config, false)?;
    for warning in setup.warnings.iter().chain(&gate.warnings()) {
        eprintln!("imipsec: warning: {warning}");
    }
    if setup.store.is_none() && !config.gate.danger_no_event_state {
        return Err(GateCommandError::EventStateUnchecked(args.config.clone()));
    }
    let listeners: Vec<String> = [
        gate.milter.as_ref().map(|m| format!("milter {}", m.listen)),
        gate.lmtp
            .as_ref()
            .map(|l| format!("lmtp {} -> {}", l.listen, l.backend)),
    ]
    .into_iter()
    .flatten()
    .collect();
    println!(
        "{}: configuration OK ({}, authserv_id {})",
        args.config.display(),
        listeners.join(", "),
        gate.authserv_id()
    );
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
