//! Running the decision engine for one message, off the async threads and under a timeout.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::decide::{Decide, DecideError, Envelope, GateVerdict, Judged, Outcome, Recording};
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
    /// A verdict, with how to record it when it is an accept with event state (`None`
    /// once recorded, see [`Record`]).
    Judged(GateVerdict, Option<Box<dyn Recording>>),
    /// An accept whose event state could not be recorded (see [`Record`]): not to be
    /// delivered (tempfail); the verdict is kept for the audit line.
    Unrecorded(GateVerdict, EvaluateFailure),
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

/// When [`Evaluator::judge`] records the event state of an accepted recipient: in the
/// decision's own blocking task, right after the verdicts. One hand-off to the blocking pool
/// instead of two: each costs a thread wake-up, which under load is milliseconds of
/// queueing per message (issue 17). Nothing is recorded once the judgement has timed out
/// (the message is tempfailed); a recording already under way then completes (a blocking
/// task cannot be cancelled). Through LMTP that is harmless: records are keyed by the
/// message's digest, so the retry of the same bytes finds its own record and is accepted
/// again. Through the milter the retry carries a new `Received` field and is refused as
/// `stale-sequence`, the residual the gate README and SECURITY.md list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// For every recipient whose verdict is accept (LMTP: such a recipient is delivered
    /// exactly when its state is recorded).
    OnAccept,
    /// For every recipient whose verdict is accept, when the message as a whole is
    /// accepted ([`message_accepted`]; milter: one recipient's reject can refuse the whole
    /// message, and then nothing is recorded). `enforce`: `on_reject = reject`.
    IfMessageAccepted { enforce: bool },
}

/// Whether the milter may remove the rejected recipients and deliver to the others
/// (issue #15): only when it rejects (`enforce`), every recipient has a verdict and at
/// least one is not a reject.
pub(crate) fn rejects_removable(verdicts: &[RecipientVerdict], enforce: bool) -> bool {
    enforce
        && !verdicts.iter().any(RecipientVerdict::is_failure)
        && !verdicts.iter().all(RecipientVerdict::is_reject)
}

/// Whether the milter accepts the message as a whole, which is when it records the
/// accepted recipients' event state: every recipient has a verdict, none is "not
/// decrypted", and there is no reject or the rejects are removed (see
/// [`rejects_removable`]).
pub(crate) fn message_accepted(verdicts: &[RecipientVerdict], enforce: bool) -> bool {
    let outcome = |wanted: Outcome| {
        verdicts
            .iter()
            .any(|v| matches!(v, RecipientVerdict::Judged(v, _) if v.outcome == wanted))
    };
    !verdicts.iter().any(RecipientVerdict::is_failure)
        && !outcome(Outcome::NotDecrypted)
        && (!outcome(Outcome::Reject) || rejects_removable(verdicts, enforce))
}

impl RecipientVerdict {
    /// No verdict, or an accept that could not be recorded: a tempfail.
    pub(crate) fn is_failure(&self) -> bool {
        matches!(self, Self::Failed(_) | Self::Unrecorded(..))
    }
    /// A reject verdict.
    pub(crate) fn is_reject(&self) -> bool {
        matches!(self, Self::Judged(verdict, _) if verdict.outcome == Outcome::Reject)
    }
}

/// Engine, clock and timeout, shared by every connection.
pub(crate) struct Evaluator {
    pub(crate) engine: EngineSlot,
    pub(crate) clock: Clock,
    pub(crate) timeout: Duration,
}

/// Verdicts for every recipient, with the time taken.
pub(crate) struct Judgement {
    pub(crate) verdicts: Vec<RecipientVerdict>,
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
        record: Record,
    ) -> Judgement {
        let started = Instant::now();
        let at = (self.clock)();
        let count = recipients.len();
        let engine = self.engine.current();
        let abandoned = Arc::new(AtomicBool::new(false));
        let too_late = Arc::clone(&abandoned);
        // The gate's own MIME look and the engine's decision in one blocking task: each
        // hand-off to the blocking pool waits for a thread to be scheduled, which on a
        // machine busy with the MTA cost milliseconds for a fraction of a millisecond of
        // work (issue 17). A message without calendar data never reaches the engine.
        let task = tokio::task::spawn_blocking(move || {
            // A panic in the MIME look or the engine is a tempfail of this message, never
            // of the connection or of later messages.
            let decided = catch_unwind(AssertUnwindSafe(|| match mime::inspect(&message) {
                Inspection::NotCalendar => None,
                Inspection::Calendar | Inspection::Opaque => {
                    // One call for every recipient: the recipient-independent work
                    // (MIME, crypto, iTIP) runs once.
                    Some(engine.decide(&message, &envelope, &recipients, at))
                }
            }));
            let verdicts = match decided {
                Ok(None) => (0..count)
                    .map(|_| RecipientVerdict::NotCalendar(None))
                    .collect(),
                Ok(Some(decided)) if decided.len() == count => decided
                    .into_iter()
                    .map(|decided| match decided {
                        Ok(Judged { verdict, .. }) if verdict.outcome == Outcome::NotCalendar => {
                            RecipientVerdict::NotCalendar(Some(verdict))
                        }
                        Ok(Judged { verdict, recording }) => {
                            RecipientVerdict::Judged(verdict, recording)
                        }
                        Err(error) => RecipientVerdict::Failed(error.into()),
                    })
                    .collect::<Vec<_>>(),
                // An engine that answers for other recipients than asked: no verdict.
                Ok(Some(_)) => (0..count)
                    .map(|_| RecipientVerdict::Failed(EvaluateFailure::Join))
                    .collect(),
                Err(_) => (0..count)
                    .map(|_| RecipientVerdict::Failed(EvaluateFailure::Panicked))
                    .collect(),
            };
            let now = match record {
                _ if too_late.load(Ordering::SeqCst) => false,
                Record::OnAccept => true,
                Record::IfMessageAccepted { enforce } => message_accepted(&verdicts, enforce),
            };
            if now {
                verdicts.into_iter().map(record_if_accepted).collect()
            } else {
                verdicts
            }
        });
        let verdicts = match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(verdicts)) => verdicts,
            Ok(Err(_)) => (0..count)
                .map(|_| RecipientVerdict::Failed(EvaluateFailure::Join))
                .collect(),
            Err(_) => {
                abandoned.store(true, Ordering::SeqCst);
                (0..count)
                    .map(|_| RecipientVerdict::Failed(EvaluateFailure::Timeout(self.timeout)))
                    .collect()
            }
        };
        Judgement {
            verdicts,
            elapsed: started.elapsed(),
        }
    }
}

/// [`Record`]: record one recipient's event state now if its verdict is accept.
fn record_if_accepted(verdict: RecipientVerdict) -> RecipientVerdict {
    match verdict {
        RecipientVerdict::Judged(verdict, Some(recording))
            if verdict.outcome == Outcome::Accept =>
        {
            match catch_unwind(AssertUnwindSafe(|| recording.record())) {
                Ok(Ok(())) => RecipientVerdict::Judged(verdict, None),
                Ok(Err(error)) => RecipientVerdict::Unrecorded(verdict, error.into()),
                Err(_) => RecipientVerdict::Unrecorded(verdict, EvaluateFailure::Panicked),
            }
        }
        other => other,
    }
}
