//! [`Decide`] for the real verify-then-process pipeline (`imipsec-pipeline`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};

use imipsec_pipeline::smime::{Failure, LayerOutcome, inspect};
use imipsec_pipeline::{
    Accepted, Decision, EvaluateError, EventState as PipelineEventState, LayerKind, LayerStatus,
    Pipeline, Prepared, Reason as PipelineReason, Stores, Verdict,
};
use time::OffsetDateTime;

use crate::decide::{
    Decide, DecideError, Envelope, EventState, GateVerdict, ItipSummary, Judged, OpenPgpResult,
    Outcome, Reason, Recording, SmimeResult,
};
use crate::mime::{self, Inspection};

/// The store an engine and its pending recordings share.
type SharedStore = Arc<Mutex<Box<dyn Stores + Send>>>;

/// The pipeline with its optional policy store. Only the per-recipient judgement and the
/// recording touch the store, serialised by a mutex (SQLite has one writer anyway); the
/// cryptography runs before the lock is taken, once per message.
pub struct PipelineEngine {
    pipeline: Pipeline,
    store: Option<SharedStore>,
}

impl std::fmt::Debug for PipelineEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineEngine")
            .field("pipeline", &self.pipeline)
            .field("store", &self.store.is_some())
            .finish()
    }
}

impl PipelineEngine {
    /// `store`: the SENT-BY delegation and event state store. Without one, no delegation
    /// is honoured, no event state is checked (every verdict says
    /// `policy.event-state=not-checked`), nothing is recorded, and a
    /// [`crate::Gate`] over this engine starts only with `danger_no_event_state = true`.
    pub fn new(pipeline: Pipeline, store: Option<Box<dyn Stores + Send>>) -> Self {
        Self {
            pipeline,
            store: store.map(|store| Arc::new(Mutex::new(store))),
        }
    }

    /// The judgement of `prepared` for every recipient: under the store lock, but without
    /// cryptography (that ran in [`Pipeline::prepare`]).
    fn judge_all(
        &self,
        prepared: &Prepared,
        recipients: &[String],
    ) -> Vec<Result<Verdict, DecideError>> {
        // A panic while judging (a bug reachable from one message) must cost that message
        // only: it is caught here, while the guard is held, so the mutex is never poisoned
        // and the next message is judged as usual (issue #11: one crafted signature must
        // not turn every later calendar message into 451).
        let judge = |recipient: &str, store: Option<&dyn Stores>| {
            catch_unwind(AssertUnwindSafe(|| {
                self.pipeline.judge(prepared, Some(recipient), store)
            }))
            .map_err(|_| DecideError::Engine("the pipeline panicked on this message".into()))
            .and_then(|judged| judged.map_err(map_error))
        };
        match &self.store {
            None => recipients.iter().map(|r| judge(r, None)).collect(),
            Some(store) => {
                // Poisoned only if a panic escaped elsewhere while the lock was held. The
                // store stays consistent through one: its writes are single transactions
                // that roll back when dropped during unwinding (`SqliteStore`
                // `decide_and_record`), so the lock is taken over rather than failing
                // every later message.
                let guard = store.lock().unwrap_or_else(PoisonError::into_inner);
                recipients
                    .iter()
                    .map(|r| judge(r, Some(&**guard)))
                    .collect()
            }
        }
    }
}

/// Recording one recipient's accept: consumes the pipeline's [`Accepted`].
struct PipelineRecording {
    accepted: Accepted,
    store: SharedStore,
}

impl std::fmt::Debug for PipelineRecording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineRecording")
            .field("scope", &self.accepted.scope())
            .field("updates", &self.accepted.updates().len())
            .finish()
    }
}

impl Recording for PipelineRecording {
    fn record(self: Box<Self>) -> Result<(), DecideError> {
        let PipelineRecording { accepted, store } = *self;
        let guard = store.lock().unwrap_or_else(PoisonError::into_inner);
        let recorded = catch_unwind(AssertUnwindSafe(|| {
            Pipeline::record_delivery(accepted, &**guard)
        }))
        .map_err(|_| DecideError::Engine("the pipeline panicked while recording".into()))?
        .map_err(map_error)?;
        drop(guard);
        if recorded.is_recorded() {
            Ok(())
        } else {
            // The state moved between decision and recording (a concurrent update won):
            // do not pass a message whose state could not be recorded.
            Err(DecideError::Engine(
                format!(
                    "event state not recorded: {}",
                    recorded.primary_reason().map_or("accepted", |r| r.code())
                )
                .into(),
            ))
        }
    }
}

impl PipelineEngine {
    /// What an S/MIME message holds when its layers are read without trusting them: the
    /// encapsulated content of an opaque signature is read whether or not the signature
    /// verifies ([`imipsec_smime`] `inspect` walks it either way). `None` keeps the reject.
    ///
    /// - any leaf is calendar content (`imipsec_smime::calendar`, [`Leaf::calendar`]): `None`;
    /// - an encryption layer failed for any reason other than "no key for any recipient"
    ///   (a key of ours that did not decrypt, malformed CMS, limits): `None`, fail closed and
    ///   without an oracle, since the outcome of our own decryption never changes the reply;
    /// - an opaque signature whose content could not be read at all: `None`;
    /// - an encryption layer we hold no key for: [`Outcome::NotDecrypted`];
    /// - everything read, no calendar: [`Outcome::NotCalendar`].
    ///
    /// [`Leaf::calendar`]: imipsec_pipeline::smime::Leaf::calendar
    fn look_inside(&self, message: &[u8], at: OffsetDateTime) -> Option<Outcome> {
        let options = self.pipeline.settings().inspect_options(at);
        let inspection = catch_unwind(AssertUnwindSafe(|| inspect(message, &options)))
            .ok()?
            .ok()?;
        if inspection
            .leaves()
            .iter()
            .any(|leaf| leaf.calendar().is_some())
        {
            return None;
        }
        let mut no_key = false;
        for layer in inspection.layers() {
            match &layer.outcome() {
                LayerOutcome::NotDecrypted {
                    failure:
                        Failure::NoDecryptionKey
                        | Failure::OpenPgp(imipsec_pipeline::smime::openpgp::Failure::NoDecryptionKey),
                } => no_key = true,
                LayerOutcome::NotDecrypted { .. } => return None,
                _ => {}
            }
        }
        if inspection.opaque_content_unread() {
            None
        } else if no_key {
            Some(Outcome::NotDecrypted)
        } else {
            Some(Outcome::NotCalendar)
        }
    }
}

fn map_error(error: EvaluateError) -> DecideError {
    match error {
        EvaluateError::DelegationStore(_) | EvaluateError::EventStore(_) => DecideError::StoreBusy,
        other => DecideError::Engine(Box::new(other)),
    }
}

/// Translate the pipeline's verdict into what the gate reports.
pub fn gate_verdict(verdict: &Verdict, inspection: Inspection) -> GateVerdict {
    let signed: Vec<_> = verdict
        .layers()
        .iter()
        .filter(|layer| layer.kind == LayerKind::Signed)
        .collect();
    let verified = signed
        .iter()
        .find(|layer| layer.status == LayerStatus::Verified);
    let smime = if verified.is_some() {
        SmimeResult::Pass
    } else if signed.is_empty() {
        SmimeResult::None
    } else {
        SmimeResult::Fail
    };
    let signer = verified.and_then(|layer| {
        layer
            .signers
            .iter()
            .find_map(|signer| signer.emails.first().cloned())
    });
    // OpenPGP layers get their own result (`x-pgp`), so that `smime=` keeps meaning S/MIME.
    let pgp: Vec<_> = verdict
        .layers()
        .iter()
        .filter(|layer| layer.kind == LayerKind::PgpSigned)
        .collect();
    let openpgp = (!pgp.is_empty()).then(|| {
        let verified = pgp
            .iter()
            .find(|layer| layer.status == LayerStatus::Verified);
        OpenPgpResult {
            result: if verified.is_some() {
                SmimeResult::Pass
            } else {
                SmimeResult::Fail
            },
            signer: verified.and_then(|layer| {
                layer
                    .signers
                    .iter()
                    .find_map(|signer| signer.emails.first().cloned())
            }),
        }
    });
    // `no-calendar` may only let a message through untouched when the gate could not see
    // inside it (opaque S/MIME): calendar data in the clear that the pipeline does not
    // find in a protected place stays rejected.
    let outcome = match verdict.decision() {
        Decision::Accept => Outcome::Accept,
        Decision::Reject
            if inspection == Inspection::Opaque
                && verdict.primary_reason() == Some(PipelineReason::NoCalendar) =>
        {
            Outcome::NotCalendar
        }
        Decision::Reject => Outcome::Reject,
    };
    GateVerdict {
        event_state: match verdict.event_state() {
            PipelineEventState::Checked => EventState::Checked,
            PipelineEventState::NotChecked => EventState::NotChecked,
        },
        outcome,
        reasons: verdict
            .reasons()
            .iter()
            .map(|finding| Reason {
                code: finding.code,
                detail: finding.detail.clone(),
            })
            .collect(),
        smime,
        signer,
        openpgp,
        itip: verdict
            .itip()
            .iter()
            .map(|report| ItipSummary {
                method: report.method.clone(),
                role: report.role.clone().unwrap_or_else(|| "unknown".to_owned()),
                delegation: report.via.as_ref().and(report.actor.clone()),
            })
            .collect(),
    }
}

/// The accept direction (issue #11): an accept stands only when every calendar part
/// mail-parser (the calendar server's parser) finds in `message` is one the pipeline
/// evaluated, at the same byte range (`authorised`, `Verdict::calendar_ranges`). Otherwise
/// the server would act on calendar data the verdict does not cover: reject,
/// `unprotected-calendar`.
pub fn accept_direction(
    verdict: GateVerdict,
    message: &[u8],
    authorised: &[std::ops::Range<usize>],
) -> GateVerdict {
    let unauthorised = mime::unauthorised_calendars(message, authorised);
    apply_accept_direction(verdict, &unauthorised)
}

/// [`accept_direction`] with `unauthorised` ([`mime::unauthorised_calendars`] of the message
/// and the verdict's ranges) computed once per message: the ranges are the same for every
/// recipient.
fn apply_accept_direction(
    mut verdict: GateVerdict,
    unauthorised: &[mime::CalendarPart],
) -> GateVerdict {
    if verdict.outcome != Outcome::Accept {
        return verdict;
    }
    if !unauthorised.is_empty() {
        verdict.outcome = Outcome::Reject;
        verdict.reasons = unauthorised
            .iter()
            .map(|part| Reason {
                code: PipelineReason::UnprotectedCalendar,
                detail: match &part.body {
                    Some(body) => format!(
                        "the calendar server's parser finds {} at bytes {}..{} that the \
                         verdict did not evaluate",
                        part.media_type, body.start, body.end
                    ),
                    None => format!(
                        "the calendar server's parser finds {} where the verdict cannot \
                         follow it",
                        part.media_type
                    ),
                },
            })
            .collect();
    }
    verdict
}

impl Decide for PipelineEngine {
    fn checks_event_state(&self) -> bool {
        self.store.is_some()
    }

    fn decide(
        &self,
        message: &[u8],
        _envelope: &Envelope,
        recipients: &[String],
        at: OffsetDateTime,
    ) -> Vec<Result<Judged, DecideError>> {
        // Once per message, outside the store lock: MIME, crypto, iTIP parsing.
        let Ok(prepared) = catch_unwind(AssertUnwindSafe(|| self.pipeline.prepare(message, at)))
        else {
            return recipients
                .iter()
                .map(|_| {
                    Err(DecideError::Engine(
                        "the pipeline panicked on this message".into(),
                    ))
                })
                .collect();
        };
        let inspection = mime::inspect(message);
        // The accept direction, once per message: the calendar parts mail-parser finds in
        // these bytes that the verification did not authorise (the same for every
        // recipient). The parts are the pipeline's list of these bytes, made for its own
        // accept direction (issue 17: the gate parsed the message again here).
        let unauthorised = match prepared.mail_parser_calendars() {
            Some(parsed) => mime::unauthorised_among(parsed, prepared.calendar_ranges()),
            None => Vec::new(),
        };
        // The second look inside a rejected opaque message: at most once per message.
        let mut inside: Option<Option<Outcome>> = None;
        let verdicts = self.judge_all(&prepared, recipients);
        verdicts
            .into_iter()
            .map(|verdict| {
                let verdict = verdict?;
                let mut gate = gate_verdict(&verdict, inspection);
                // Issue #14: mail without calendar content is never rejected for its
                // crypto. A rejection that names no calendar data and comes from a failed
                // S/MIME layer (untrusted or broken opaque signature, no key) is looked
                // into without trusting the signature, with the one definition of calendar
                // content.
                if gate.outcome == Outcome::Reject
                    && inspection == Inspection::Opaque
                    && verdict.itip().is_empty()
                    && !verdict.has_reason(PipelineReason::UnprotectedCalendar)
                    && verdict.layers().iter().any(|layer| layer.failure.is_some())
                    && let Some(outcome) =
                        *inside.get_or_insert_with(|| self.look_inside(message, at))
                {
                    gate.outcome = outcome;
                }
                let gate = apply_accept_direction(gate, &unauthorised);
                let recording = match (&self.store, gate.outcome, verdict) {
                    (Some(store), Outcome::Accept, Verdict::Accept(accepted)) => {
                        Some(Box::new(PipelineRecording {
                            accepted,
                            store: Arc::clone(store),
                        }) as Box<dyn Recording>)
                    }
                    _ => None,
                };
                Ok(Judged {
                    verdict: gate,
                    recording,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imipsec_pipeline::{Finding, LayerReport, SignerReport};

    fn signed(status: LayerStatus, email: &str) -> LayerReport {
        LayerReport {
            kind: LayerKind::Signed,
            path: String::new(),
            status,
            failure: None,
            authenticated: None,
            signers: vec![SignerReport {
                emails: vec![email.to_owned()],
                subject: String::new(),
                issuer: String::new(),
                serial: "01".to_owned(),
                chain: "valid".to_owned(),
            }],
        }
    }

    #[test]
    fn failed_signature_is_smime_fail_with_codes() {
        let verdict = Verdict::rejected(
            Finding::new(PipelineReason::BadSignature, "digest mismatch"),
            vec![],
            vec![signed(LayerStatus::SignatureFailed, "mallory@example.net")],
            vec![],
        );
        let gate = gate_verdict(&verdict, Inspection::Calendar);
        assert_eq!(gate.outcome, Outcome::Reject);
        assert_eq!(gate.smime, SmimeResult::Fail);
        assert_eq!(gate.signer, None);
        assert_eq!(gate.primary_code(), "bad-signature");
    }

    #[test]
    fn no_calendar_passes_only_when_the_gate_could_not_look_inside() {
        let verdict = Verdict::rejected(
            Finding::new(PipelineReason::NoCalendar, "none"),
            vec![],
            vec![],
            vec![],
        );
        assert_eq!(
            gate_verdict(&verdict, Inspection::Opaque).outcome,
            Outcome::NotCalendar
        );
        // calendar data in the clear that the pipeline does not accept stays rejected
        assert_eq!(
            gate_verdict(&verdict, Inspection::Calendar).outcome,
            Outcome::Reject
        );
        assert_eq!(
            gate_verdict(&verdict, Inspection::Calendar).smime,
            SmimeResult::None
        );
    }
}
