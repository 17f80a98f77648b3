//! Running the decision engine for one message, off the async threads and under a timeout.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::decide::{Decide, DecideError, Envelope, GateVerdict, Outcome};
use crate::mime::{self, Inspection};

/// Source of the evaluation time: library code never reads the clock itself, the binary
/// passes `OffsetDateTime::now_utc` (tests pass a fixed instant).
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// What the engine said for one recipient.
#[derive(Debug)]
pub(crate) enum RecipientVerdict {
    /// No calendar data: pass. `None` when the gate's own MIME walk saw none (the message
    /// is passed untouched); the engine's verdict when it had to look inside S/MIME (the
    /// message is passed with `x-imip=none`).
    NotCalendar(Option<GateVerdict>),
    /// A verdict.
    Judged(GateVerdict),
    /// No verdict: tempfail.
    Failed(EvaluateFailure),
}

/// Why no verdict could be reached.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EvaluateFailure {
    #[error(transparent)]
    Engine(#[from] DecideError),
    #[error("decision took longer than {0:?}")]
    Timeout(Duration),
    #[error("decision thread failed")]
    Join,
    #[error("the decision engine panicked on this message")]
    Panicked,
}

/// The decision engine in force, replaced as a whole by a reload (`SIGHUP`). Each message
/// takes the engine current when its evaluation starts and keeps it to the end of that
/// evaluation; the lock is held only to clone or swap the `Arc`, never while deciding.
#[derive(Clone)]
pub(crate) struct EngineSlot(Arc<RwLock<Arc<dyn Decide>>>);

impl EngineSlot {
    pub(crate) fn new(engine: Arc<dyn Decide>) -> Self {
        Self(Arc::new(RwLock::new(engine)))
    }
    /// The engine in force now.
    pub(crate) fn current(&self) -> Arc<dyn Decide> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }
    /// Put `engine` in force for every evaluation that starts from now on.
    pub(crate) fn replace(&self, engine: Arc<dyn Decide>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = engine;
    }
}

/// Engine, clock and timeout, shared by every connection.
pub(crate) struct Evaluator {
    pub(crate) engine: EngineSlot,
    pub(crate) clock: Clock,
    pub(crate) timeout: Duration,
}

/// Verdicts for every recipient, with the time taken and the instant used.
pub(crate) struct Judgement {
    pub(crate) verdicts: Vec<RecipientVerdict>,
    pub(crate) at: OffsetDateTime,
    pub(crate) elapsed: Duration,
}

impl Evaluator {
    /// Judge `message` for each of `recipients`. Messages without calendar data never
    /// reach the engine.
    pub(crate) async fn judge(
        &self,
        message: Arc<Vec<u8>>,
        envelope: Arc<Envelope>,
        recipients: Vec<String>,
    ) -> Judgement {
        let started = Instant::now();
        let at = (self.clock)();
        let count = recipients.len();
        let inspection = {
            let message = Arc::clone(&message);
            tokio::task::spawn_blocking(move || mime::inspect(&message)).await
        };
        let verdicts = match inspection {
            Err(_) => (0..count)
                .map(|_| RecipientVerdict::Failed(EvaluateFailure::Join))
                .collect(),
            Ok(Inspection::NotCalendar) => (0..count)
                .map(|_| RecipientVerdict::NotCalendar(None))
                .collect(),
            Ok(Inspection::Calendar | Inspection::Opaque) => {
                let engine = self.engine.current();
                let task = tokio::task::spawn_blocking(move || {
                    recipients
                        .iter()
                        .map(|recipient| {
                            // A panic in the engine is a tempfail of this message for this
                            // recipient, never of the connection or of later messages.
                            let decided = catch_unwind(AssertUnwindSafe(|| {
                                engine.decide(&message, &envelope, recipient, at)
                            }));
                            match decided {
                                Ok(Ok(verdict)) if verdict.outcome == Outcome::NotCalendar => {
                                    RecipientVerdict::NotCalendar(Some(verdict))
                                }
                                Ok(Ok(verdict)) => RecipientVerdict::Judged(verdict),
                                Ok(Err(error)) => RecipientVerdict::Failed(error.into()),
                                Err(_) => RecipientVerdict::Failed(EvaluateFailure::Panicked),
                            }
                        })
                        .collect::<Vec<_>>()
                });
                match tokio::time::timeout(self.timeout, task).await {
                    Ok(Ok(verdicts)) => verdicts,
                    Ok(Err(_)) => (0..count)
                        .map(|_| RecipientVerdict::Failed(EvaluateFailure::Join))
                        .collect(),
                    Err(_) => (0..count)
                        .map(|_| RecipientVerdict::Failed(EvaluateFailure::Timeout(self.timeout)))
                        .collect(),
                }
            }
        };
        Judgement {
            verdicts,
            at,
            elapsed: started.elapsed(),
        }
    }

    /// Record the event state of an accepted message for `recipients`.
    pub(crate) async fn record(
        &self,
        message: Arc<Vec<u8>>,
        envelope: Arc<Envelope>,
        recipients: Vec<String>,
        at: OffsetDateTime,
    ) -> Result<(), EvaluateFailure> {
        // The engine in force now: after a reload between decision and recording, the new
        // engine re-evaluates while recording (`Decide::record`), so a message the new
        // trust state refuses is not recorded and is tempfailed.
        let engine = self.engine.current();
        let task = tokio::task::spawn_blocking(move || {
            catch_unwind(AssertUnwindSafe(|| {
                recipients
                    .iter()
                    .try_for_each(|recipient| engine.record(&message, &envelope, recipient, at))
            }))
        });
        match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(Ok(result))) => result.map_err(EvaluateFailure::from),
            Ok(Ok(Err(_))) => Err(EvaluateFailure::Panicked),
            Ok(Err(_)) => Err(EvaluateFailure::Join),
            Err(_) => Err(EvaluateFailure::Timeout(self.timeout)),
        }
    }
}
