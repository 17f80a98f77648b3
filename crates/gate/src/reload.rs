//! Reloading anchors, CRLs and configuration on `SIGHUP` without dropping connections.
//!
//! The binary hands the gate a [`Load`]: whatever builds the configuration and the decision
//! engine from files (the configuration file, anchors, CRLs, identities, the store). A reload
//! calls it again and, only when everything loaded and validated, puts the result in force:
//!
//! - the **engine** (trust anchors, CRLs, revocation settings, policy) is swapped at once:
//!   every message whose evaluation starts after the swap, on any connection, old or new, is
//!   decided by the new engine; an evaluation already running finishes with the old one;
//! - the **`[gate]` settings** (actions, limits, authserv-id, LMTP backend) apply to
//!   connections accepted after the swap; a connection already open keeps the settings it
//!   started with until it closes. Listener addresses, `metrics_listen` and
//!   `limits.connections` are bound at start: a reload that changes them is refused
//!   ([`ReloadError::NeedsRestart`]);
//! - a reload that fails (unreadable file, bad configuration, anchors that do not load)
//!   changes nothing: the gate goes on with the state it had and logs why.
//!
//! Each load reports the CRLs it read ([`CrlStatus`]); the gate logs each one's nextUpdate,
//! warns about a CRL past it (every certificate it covers is then refused until a fresh CRL
//! is loaded), and exports it as the metric `imipsec_gate_crl_next_update_seconds`.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use time::OffsetDateTime;

use crate::config::{ConfigError, GateConfig};
use crate::decide::Decide;
use crate::evaluate::{Clock, EngineSlot, Evaluator};
use crate::metrics::Metrics;
use crate::server::Shared;

/// One CRL a load read: where from, whose, and until when it is current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlStatus {
    /// Where it was read (a file path).
    pub source: String,
    /// Its issuer, as text.
    pub issuer: String,
    /// Its nextUpdate (`None`: the CRL has none).
    pub next_update: Option<OffsetDateTime>,
}

/// What a load produces: everything a gate decides with.
pub struct Loaded {
    /// The `[gate]` settings.
    pub config: GateConfig,
    /// The decision engine (anchors, CRLs, policy, store).
    pub engine: Arc<dyn Decide>,
    /// The CRLs the engine was built with.
    pub crls: Vec<CrlStatus>,
}

/// Builds the gate's state from its files; called at every reload (`SIGHUP`), on a blocking
/// thread.
pub trait Load: Send + Sync {
    /// Read and check everything; an error leaves the running gate as it is.
    ///
    /// # Errors
    /// Whatever prevents a complete, valid state (it is logged, with its causes).
    fn load(&self) -> Result<Loaded, Box<dyn std::error::Error + Send + Sync>>;
}

/// Why a reload was not put in force (the gate keeps its state).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The gate was started without a [`Load`].
    #[error("this gate has nothing to reload from")]
    NotConfigured,
    /// Loading failed.
    #[error("{0}")]
    Load(String),
    /// The new `[gate]` table is refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The new configuration changes something bound at start.
    #[error("{key} changed: it takes effect only when the gate is restarted")]
    NeedsRestart {
        /// The key.
        key: &'static str,
    },
    /// The new engine checks no event state and `danger_no_event_state` is not set.
    #[error("the new configuration has no event-state store (see `[gate] danger_no_event_state`)")]
    EventStateUnchecked,
}

/// The state every connection draws from, and what replaces it.
pub(crate) struct Live {
    current: RwLock<Arc<Shared>>,
    engine: EngineSlot,
    pub(crate) metrics: Arc<Metrics>,
    clock: Clock,
    loader: Option<Arc<dyn Load>>,
    /// One reload at a time (held while loading, which does file I/O but no network, and
    /// never by a connection).
    reloading: Mutex<()>,
}

impl Live {
    pub(crate) fn new(
        config: GateConfig,
        engine: Arc<dyn Decide>,
        clock: Clock,
        loader: Option<Arc<dyn Load>>,
    ) -> Self {
        let engine = EngineSlot::new(engine);
        let metrics = Arc::new(Metrics::default());
        let shared = Arc::new(shared_for(config, &engine, &clock, &metrics));
        Self {
            current: RwLock::new(shared),
            engine,
            metrics,
            clock,
            loader,
            reloading: Mutex::new(()),
        }
    }

    /// The state for a connection accepted now.
    pub(crate) fn current(&self) -> Arc<Shared> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn set_loader(&mut self, loader: Arc<dyn Load>) {
        self.loader = Some(loader);
    }

    /// Log and export the CRLs of the state in force.
    pub(crate) fn report_crls(&self, crls: &[CrlStatus], when: &'static str) {
        let now = (self.clock)();
        for crl in crls {
            match crl.next_update {
                Some(next_update) if next_update <= now => tracing::warn!(
                    crl = %crl.source,
                    issuer = %crl.issuer,
                    %next_update,
                    when,
                    "CRL is past its nextUpdate: every certificate it covers is refused \
                     (revocation status unknown) until a current CRL is loaded; replace \
                     the file and send SIGHUP"
                ),
                Some(next_update) => tracing::info!(
                    crl = %crl.source,
                    issuer = %crl.issuer,
                    %next_update,
                    when,
                    "CRL loaded"
                ),
                None => tracing::info!(
                    crl = %crl.source,
                    issuer = %crl.issuer,
                    when,
                    "CRL loaded (it has no nextUpdate)"
                ),
            }
        }
        self.metrics.set_crls(crls);
    }

    /// Load again and put the result in force, or keep everything as it is. Blocking: call
    /// it off the async threads.
    pub(crate) fn reload(&self) -> Result<(), ReloadError> {
        let result = self.try_reload();
        match &result {
            Ok(()) => {
                self.metrics.reloaded(true);
                tracing::info!("reload: new configuration, anchors and CRLs in force");
            }
            Err(error) => {
                self.metrics.reloaded(false);
                tracing::error!(%error, "reload failed: the gate keeps its running configuration");
            }
        }
        result
    }

    fn try_reload(&self) -> Result<(), ReloadError> {
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let loader = self.loader.as_ref().ok_or(ReloadError::NotConfigured)?;
        let loaded = loader.load().map_err(|error| {
            let mut text = error.to_string();
            let mut source = error.source();
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            ReloadError::Load(text)
        })?;
        loaded.config.validate()?;
        let running = self.current();
        let old = &running.config;
        let new = &loaded.config;
        if old.milter.as_ref().map(|m| m.listen) != new.milter.as_ref().map(|m| m.listen) {
            return Err(ReloadError::NeedsRestart {
                key: "[gate.milter] listen",
            });
        }
        if old.lmtp.as_ref().map(|l| l.listen) != new.lmtp.as_ref().map(|l| l.listen) {
            return Err(ReloadError::NeedsRestart {
                key: "[gate.lmtp] listen",
            });
        }
        if old.metrics_listen != new.metrics_listen {
            return Err(ReloadError::NeedsRestart {
                key: "[gate] metrics_listen",
            });
        }
        if old.limits.connections != new.limits.connections {
            return Err(ReloadError::NeedsRestart {
                key: "[gate.limits] connections",
            });
        }
        if !loaded.engine.checks_event_state() && !new.danger_no_event_state {
            return Err(ReloadError::EventStateUnchecked);
        }
        // In force: the engine for every evaluation from now on, the settings for every
        // connection accepted from now on.
        self.engine.replace(loaded.engine);
        let shared = Arc::new(shared_for(
            loaded.config,
            &self.engine,
            &self.clock,
            &self.metrics,
        ));
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = shared;
        self.report_crls(&loaded.crls, "reload");
        Ok(())
    }
}

fn shared_for(
    config: GateConfig,
    engine: &EngineSlot,
    clock: &Clock,
    metrics: &Arc<Metrics>,
) -> Shared {
    let timeout = config.limits.decide_timeout();
    Shared {
        config,
        evaluator: Evaluator {
            engine: engine.clone(),
            clock: Arc::clone(clock),
            timeout,
        },
        metrics: Arc::clone(metrics),
    }
}

/// Reloads a running gate: what `SIGHUP` calls. Cheap to clone.
#[derive(Clone)]
pub struct Reloader(pub(crate) Arc<Live>);

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

impl Reloader {
    /// Load the configuration, anchors and CRLs again and put them in force, or keep the
    /// running state and log why not. Blocking (file I/O): from async code, call it through
    /// `spawn_blocking`.
    ///
    /// # Errors
    /// [`ReloadError`]: nothing changed.
    pub fn reload(&self) -> Result<(), ReloadError> {
        self.0.reload()
    }
}
