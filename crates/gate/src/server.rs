//! Listeners, connection limits, graceful shutdown and the audit line.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::config::{ConfigError, GateConfig};
use crate::decide::{Decide, Envelope, GateVerdict};
use crate::evaluate::{Clock, Evaluator};
use crate::io::IdleTimeout;
use crate::metrics::{self, Action, Metrics};
use crate::milter::GateMilter;
use crate::reload::{CrlStatus, Live, Load, Reloader};

/// The text of every `550 5.7.1` refusal of calendar mail, milter and LMTP alike.
///
/// It never names the reason (issue #11 item 8): whether an encrypted layer decrypted,
/// which layer failed, and every reason found inside decrypted content would otherwise be an
/// oracle for the SMTP peer (padding and format oracles on CBC, EFAIL-style probing), and
/// telling whether a message has an encryption layer takes the very parse an attacker aims
/// at. One text for every reject is the only reply that depends on nothing but "rejected".
/// The reason codes stay in the audit line, the logs and the quarantine tag.
pub(crate) const REJECT_TEXT: &str = "imipsec: calendar message rejected";

/// State shared by every connection accepted while it is in force (a reload puts a new one
/// in force for later connections; see [`crate::reload`]).
pub(crate) struct Shared {
    pub(crate) config: GateConfig,
    pub(crate) evaluator: Evaluator,
    pub(crate) metrics: Arc<Metrics>,
}

/// The gate could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration is refused ([`GateConfig::validate`]).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The async runtime could not be started.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The engine checks no event state (no store configured) and the configuration does
    /// not say `danger_no_event_state = true`.
    #[error(
        "no event-state store: without one the gate cannot detect a signed CANCEL or \
         REQUEST for another organizer's UID, or a replayed update; configure [store] path, \
         or set [gate] danger_no_event_state = true to run without (every verdict then says \
         policy.event-state=not-checked)"
    )]
    EventStateUnchecked,
}

/// A configured gate, not yet listening.
pub struct Gate {
    live: Live,
    crls: Vec<CrlStatus>,
}

impl Gate {
    /// A gate deciding with `engine`, reading evaluation time from `clock`.
    pub fn new(config: GateConfig, engine: Arc<dyn Decide>, clock: Clock) -> Self {
        Self {
            live: Live::new(config, engine, clock, None),
            crls: Vec::new(),
        }
    }

    /// A gate in the state `loader` builds, reloadable from it ([`Bound::reloader`],
    /// `SIGHUP` under [`run_until_signal`]).
    ///
    /// # Errors
    /// The loader's error, as text with its causes.
    pub fn load(
        loader: Arc<dyn Load>,
        clock: Clock,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let loaded = loader.load()?;
        Ok(Self::new(loaded.config, loaded.engine, clock)
            .with_loader(loader)
            .with_crls(loaded.crls))
    }

    /// Reload from `loader` ([`Bound::reloader`]).
    #[must_use]
    pub fn with_loader(mut self, loader: Arc<dyn Load>) -> Self {
        self.live.set_loader(loader);
        self
    }

    /// The CRLs the engine holds: logged (with a warning for one past its nextUpdate) and
    /// exported as metrics when the gate binds.
    #[must_use]
    pub fn with_crls(mut self, crls: Vec<CrlStatus>) -> Self {
        self.crls = crls;
        self
    }

    /// The counters (also served on `metrics_listen`).
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.live.metrics)
    }

    /// Bind every configured listener (port 0 picks a free port; see [`Bound`]).
    ///
    /// # Errors
    /// [`ServeError`] for a configuration that cannot run or an address in use.
    pub async fn bind(self) -> Result<Bound, ServeError> {
        let shared = self.live.current();
        let config = &shared.config;
        config.validate()?;
        if !shared.evaluator.engine.current().checks_event_state() {
            if !config.danger_no_event_state {
                return Err(ServeError::EventStateUnchecked);
            }
            tracing::warn!(
                "DANGER: danger_no_event_state: organizer pinning and replay detection are off"
            );
        }
        if config.on_reject == crate::config::RejectAction::Monitor {
            tracing::warn!(
                "on_reject = \"monitor\": rejected calendar mail is delivered (tagged \
                 x-imip=fail); only a calendar server that acts on x-imip=pass alone is protected"
            );
        }
        let milter = bind_opt(config.milter.as_ref().map(|m| m.listen)).await?;
        let lmtp = bind_opt(config.lmtp.as_ref().map(|l| l.listen)).await?;
        let metrics = bind_opt(config.metrics_listen).await?;
        self.live.report_crls(&self.crls, "start");
        Ok(Bound {
            milter,
            lmtp,
            metrics,
            live: Arc::new(self.live),
        })
    }
}

async fn bind_opt(address: Option<SocketAddr>) -> Result<Option<TcpListener>, ServeError> {
    match address {
        None => Ok(None),
        Some(address) => TcpListener::bind(address)
            .await
            .map(Some)
            .map_err(|source| ServeError::Bind { address, source }),
    }
}

/// A gate with its listeners bound.
pub struct Bound {
    milter: Option<TcpListener>,
    lmtp: Option<TcpListener>,
    metrics: Option<TcpListener>,
    live: Arc<Live>,
}

impl Bound {
    /// What `SIGHUP` calls: reload configuration, anchors and CRLs without dropping
    /// connections ([`crate::reload`]).
    pub fn reloader(&self) -> Reloader {
        Reloader(Arc::clone(&self.live))
    }

    /// The milter's local address.
    pub fn milter_addr(&self) -> Option<SocketAddr> {
        self.milter.as_ref().and_then(|l| l.local_addr().ok())
    }
    /// The LMTP proxy's local address.
    pub fn lmtp_addr(&self) -> Option<SocketAddr> {
        self.lmtp.as_ref().and_then(|l| l.local_addr().ok())
    }
    /// The metrics endpoint's local address.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serve until `shutdown` completes, then stop accepting, let transactions in flight
    /// finish (at most [`crate::Limits::drain_timeout_secs`]) and return.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let started = self.live.current();
        let limits = &started.config.limits;
        let mut tasks = Vec::new();
        let mut slots = Vec::new();
        if let Some(listener) = self.milter {
            let slot = Arc::new(Semaphore::new(limits.connections));
            slots.push(Arc::clone(&slot));
            tasks.push(tokio::spawn(accept_loop(
                listener,
                Arc::clone(&self.live),
                slot,
                stop_rx.clone(),
                Protocol::Milter,
            )));
        }
        if let Some(listener) = self.lmtp {
            let slot = Arc::new(Semaphore::new(limits.connections));
            slots.push(Arc::clone(&slot));
            tasks.push(tokio::spawn(accept_loop(
                listener,
                Arc::clone(&self.live),
                slot,
                stop_rx.clone(),
                Protocol::Lmtp,
            )));
        }
        let metrics_task = self
            .metrics
            .map(|listener| tokio::spawn(metrics::serve(listener, Arc::clone(&self.live.metrics))));
        tracing::info!(
            milter = %crate::logging::OrNone(started.config.milter.as_ref().map(|m| m.listen)),
            lmtp = %crate::logging::OrNone(started.config.lmtp.as_ref().map(|l| l.listen)),
            "gate listening"
        );
        shutdown.await;
        tracing::info!("shutting down: draining transactions in flight");
        let _ = stop_tx.send(true);
        for task in tasks {
            let _ = task.await;
        }
        let connections = u32::try_from(limits.connections).unwrap_or(u32::MAX);
        let drained = tokio::time::timeout(limits.drain_timeout(), async {
            for slot in &slots {
                let _ = slot.acquire_many(connections).await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("drain timeout: closing remaining connections");
        }
        if let Some(task) = metrics_task {
            task.abort();
        }
    }
}

#[derive(Clone, Copy)]
enum Protocol {
    Milter,
    Lmtp,
}

async fn accept_loop(
    listener: TcpListener,
    live: Arc<Live>,
    slots: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    protocol: Protocol,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let Ok((mut stream, peer)) = accepted else {
            // EMFILE and friends: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        // The state in force when the connection is accepted: its settings hold for the
        // connection's life; the engine is looked up again for every message.
        let shared = live.current();
        shared.metrics.connection();
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            shared.metrics.refused();
            tracing::warn!(%peer, "connection limit reached, refusing");
            if matches!(protocol, Protocol::Lmtp) {
                let _ = stream
                    .write_all(b"421 4.3.2 imipsec gate busy, try again later\r\n")
                    .await;
            }
            continue;
        };
        let stop = stop.clone();
        tokio::spawn(async move {
            match protocol {
                Protocol::Milter => milter_connection(stream, shared, stop).await,
                Protocol::Lmtp => crate::lmtp::connection(stream, shared, stop).await,
            }
            drop(permit);
        });
    }
}

async fn milter_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let limits = shared.config.limits.clone();
    let busy = Arc::new(AtomicBool::new(false));
    let mut milter = GateMilter::new(Arc::clone(&shared), Arc::clone(&busy));
    // Acknowledged at once: Postfix's next milter packet must not wait 40 ms for our ACK
    // of one we do not answer (`QuickAck`).
    let io = IdleTimeout::new(crate::io::QuickAck::new(stream), limits.idle_timeout());
    let connection = crate::milter::wire::serve(&mut milter, io, limits.milter_packet_bytes);
    tokio::pin!(connection);
    let mut draining = *stop.borrow();
    let mut idle_ticks = 0u8;
    loop {
        tokio::select! {
            result = &mut connection => {
                if let Err(error) = result {
                    shared.metrics.protocol_error();
                    tracing::debug!(%error, "milter connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if !draining => {
                draining = changed.is_err() || *stop.borrow();
            }
            _ = tokio::time::sleep(Duration::from_millis(50)), if draining => {
                // Close only between transactions. `busy` drops just before the
                // end-of-message reply is written, so require two idle ticks in a row
                // to let that write finish.
                if busy.load(Ordering::SeqCst) {
                    idle_ticks = 0;
                } else {
                    idle_ticks += 1;
                    if idle_ticks >= 2 {
                        return;
                    }
                }
            }
        }
    }
}

/// Run a gate on a multi-threaded runtime until SIGTERM/SIGINT, then drain: the whole
/// `imipsec gate` command, so the binary stays glue. `SIGHUP` reloads the configuration,
/// anchors and CRLs ([`Bound::reloader`]; a gate built without a loader logs that it has
/// nothing to reload and keeps running).
///
/// # Errors
/// [`ServeError`] when the runtime or a listener cannot start.
pub fn run_until_signal(gate: Gate) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async {
        // Install the SIGTERM/SIGINT handlers (on the future's first poll) before listening:
        // a signal that arrives as soon as the gate says it listens must drain and log
        // "stopped", not kill the process with the default action.
        let mut shutdown = std::pin::pin!(shutdown_signal());
        let early = std::future::poll_fn(|context| {
            std::task::Poll::Ready(shutdown.as_mut().poll(context).is_ready())
        })
        .await;
        // Likewise SIGHUP, whose default action would end the process.
        let hangups = hangup_signals();
        let bound = gate.bind().await?;
        let reloads = hangups.map(|hangups| tokio::spawn(reload_on(hangups, bound.reloader())));
        if early {
            bound.serve(std::future::ready(())).await;
        } else {
            bound.serve(shutdown).await;
        }
        if let Some(task) = reloads {
            task.abort();
        }
        Ok(())
    })
}

#[cfg(unix)]
type Hangups = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Hangups = ();

/// The SIGHUP stream, installed now (so that SIGHUP no longer ends the process).
fn hangup_signals() -> Option<Hangups> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(hangups) => Some(hangups),
            Err(error) => {
                tracing::warn!(%error, "cannot handle SIGHUP: reload needs a restart");
                None
            }
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Reload on every SIGHUP, one at a time, on a blocking thread; a reload that fails keeps
/// the running state (logged by [`Reloader::reload`]).
async fn reload_on(mut hangups: Hangups, reloader: Reloader) {
    #[cfg(unix)]
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading configuration, anchors and CRLs");
        let reloader = reloader.clone();
        let _ = tokio::task::spawn_blocking(move || reloader.reload()).await;
    }
    #[cfg(not(unix))]
    {
        let _ = (&mut hangups, reloader);
    }
}

/// Wait for SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The one audit line per decision (target `imipsec_gate::audit`).
pub(crate) fn audit(
    shared: &Shared,
    mode: &'static str,
    queue_id: &str,
    envelope: &Envelope,
    action: Action,
    verdict: Option<&GateVerdict>,
    decide_time: Option<Duration>,
) {
    shared.metrics.action(action, decide_time);
    let codes: Vec<&str> = verdict
        .map(|v| v.reasons.iter().map(|r| r.code.code()).collect())
        .unwrap_or_default();
    let methods: Vec<&str> = verdict
        .map(|v| v.itip.iter().map(|c| c.method.as_str()).collect())
        .unwrap_or_default();
    tracing::info!(
        target: "imipsec_gate::audit",
        mode,
        queue_id,
        mail_from = %envelope.mail_from,
        recipients = %crate::logging::List(&envelope.recipients),
        action = action.as_str(),
        signer = verdict.and_then(|v| v.signer.as_deref()).unwrap_or(""),
        event_state = verdict.map_or("", |v| v.event_state.keyword()),
        methods = %crate::logging::List(&methods),
        codes = %crate::logging::List(&codes),
        decide_us = decide_time.map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        "decision"
    );
}
