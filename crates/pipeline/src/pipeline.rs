//! [`Pipeline::evaluate`]: verify, then process, then (on accept, when asked) record.

use imipsec_itip::{
    CorrelateOptions, Correlation, DelegationPolicy, DenyAllDelegations, ItipMessage, MimeParams,
    ParseOptions, Role, correlate, parse_itip_all,
};
use imipsec_policy::{
    AddressField, DelegationStore, EventStateStore, EventUpdate, MessageDigest, StateDecision,
    StateFinding, StoreError, Timestamp,
};
use imipsec_types::RecurrenceKeyError;
use thiserror::Error;

use crate::delegation::StoreDelegationPolicy;
use crate::reason::{Finding, Reason, Warning};
use crate::settings::Settings;
use crate::verdict::{Accepted, EventState, ItipReport, LayerReport, Report, StateScope, Verdict};
use crate::verified::{Authentication, VerifiedCalendar, part_name, verify};

/// One message after the recipient-independent work ([`Pipeline::prepare`]): verified and
/// parsed once, judged per recipient ([`Pipeline::judge`]). Only the pipeline builds one.
#[derive(Debug)]
pub struct Prepared {
    at: time::OffsetDateTime,
    /// SHA-256 of the received bytes: the key of an idempotent record. `None` only for the
    /// preparation [`Pipeline::evaluate`] makes when it judges without a recipient, where
    /// nothing can be recorded (hashing every message was 2-3% of an audit, issue 17).
    digest: Option<MessageDigest>,
    stage: Stage,
}

impl Prepared {
    /// The evaluation time the message was verified at (and is judged at).
    pub fn at(&self) -> time::OffsetDateTime {
        self.at
    }

    /// Whether the message was rejected before any per-recipient step (the verdict is then
    /// the same for every recipient).
    pub fn is_rejected(&self) -> bool {
        matches!(self.stage, Stage::Rejected(_))
    }

    /// The calendar parts the verification authorised, as body byte ranges of the received
    /// message (empty when rejected before processing).
    pub fn calendar_ranges(&self) -> &[std::ops::Range<usize>] {
        match &self.stage {
            Stage::Ready(ready) => &ready.calendar_ranges,
            Stage::Rejected(_) | Stage::RevocationUnavailable(_) => &[],
        }
    }

    /// Every calendar part mail-parser (the calendar server's parser) finds in the received
    /// message, as the accept direction checked them against [`Self::calendar_ranges`]
    /// (`None` when no verdict can accept: rejected before processing, or revocation
    /// unavailable). A caller checking the same bytes again (the gate) uses this list
    /// instead of parsing them once more (issue 17).
    pub fn mail_parser_calendars(&self) -> Option<&[imipsec_smime::calendar::ParsedCalendar]> {
        match &self.stage {
            Stage::Ready(ready) => Some(&ready.mail_parser_calendars),
            Stage::Rejected(_) | Stage::RevocationUnavailable(_) => None,
        }
    }
}

#[derive(Debug)]
enum Stage {
    /// Rejected before processing (size, MIME, S/MIME, the accept direction).
    Rejected(Report),
    /// Under revocation mode `require`, a certificate's revocation status could not be had
    /// (issue #13): no verdict; the message is evaluated again later (a gate tempfails, the
    /// CLI exits 2). The detail names the certificate.
    RevocationUnavailable(String),
    /// Verified: the calendars to judge.
    Ready(Ready),
}

#[derive(Debug)]
struct Ready {
    signed: bool,
    calendars: Vec<PreparedCalendar>,
    warnings: Vec<Finding<Warning>>,
    layers: Vec<LayerReport>,
    calendar_ranges: Vec<std::ops::Range<usize>>,
    /// Every calendar part mail-parser finds in the received message: the list the accept
    /// direction checked (none of them unauthorised).
    mail_parser_calendars: Vec<imipsec_smime::calendar::ParsedCalendar>,
}

/// One verified calendar part: who signed it, and its iTIP parse (or every fatal finding).
#[derive(Debug)]
struct PreparedCalendar {
    signers: Vec<String>,
    parsed: Result<ItipMessage, Vec<Finding<Reason>>>,
}

/// The policy store a pipeline consults: SENT-BY delegations and event state. Implemented
/// for every type that is both (the SQLite store is).
pub trait Stores: DelegationStore + EventStateStore {}

impl<T: DelegationStore + EventStateStore + ?Sized> Stores for T {}

/// The circumstances of one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Evaluation<'a> {
    /// The evaluation time: certificate validity, CRLs, grants in force, signing-time skew.
    pub at: time::OffsetDateTime,
    /// The address the message was delivered to: the scope of the event state. Without it
    /// no event state is checked (and nothing can be recorded).
    pub recipient: Option<&'a str>,
    /// Record the event state when the message is accepted.
    pub record: bool,
}

/// The message could not be evaluated. Never a verdict: a gate tempfails, the CLI exits 2.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EvaluateError {
    /// The delegation store failed while deciding a SENT-BY delegation.
    #[error("could not evaluate: the delegation store is unavailable")]
    DelegationStore(#[source] StoreError),
    /// The SENT-BY policy could not decide (without a store error to show).
    #[error("could not evaluate: the SENT-BY policy is unavailable: {detail}")]
    PolicyUnavailable {
        /// Why.
        detail: String,
    },
    /// Under revocation mode `require`, a certificate's revocation status could not be had:
    /// the revocation source (OCSP responder, CRL server, cache) could not answer.
    #[error("could not evaluate: revocation status unavailable: {detail}")]
    RevocationUnavailable {
        /// Which certificate and why.
        detail: String,
    },
    /// The event state store failed.
    #[error("could not evaluate: the event state store is unavailable")]
    EventStore(#[source] StoreError),
    /// `record` was asked without a store.
    #[error("recording event state needs a store")]
    RecordWithoutStore,
    /// The recipient is not an address the store accepts as a state scope.
    #[error("the recipient is not a valid address for the event state scope")]
    InvalidRecipient(#[source] StoreError),
    /// `record` was asked without a recipient (the scope of the state).
    #[error("recording event state needs the recipient address (the state scope)")]
    RecordWithoutRecipient,
    /// A recipient was judged on a preparation made without the message digest (its
    /// state's record key). Only [`Pipeline::evaluate`] prepares so, and never judges a
    /// recipient on it: this is a misuse, refused rather than judged without the key.
    #[error("internal: a recipient was judged on a message prepared without its digest")]
    PreparedWithoutDigest,
    /// The store compares local parts under another rule than the pipeline's
    /// `strict_local_part`: the correlation and the organizer pin would disagree on who is
    /// the same calendar user (issue 15), so nothing is judged.
    #[error(
        "the store compares address local parts {store:?}, the pipeline {settings:?} \
         (strict_local_part): one rule must serve both"
    )]
    LocalPartRuleMismatch {
        /// The pipeline's rule.
        settings: imipsec_policy::LocalPartCase,
        /// The store's rule.
        store: imipsec_policy::LocalPartCase,
    },
}

/// The verify-then-process pipeline. Holds only configuration; each
/// [`evaluate`](Pipeline::evaluate) is independent.
#[derive(Debug)]
pub struct Pipeline {
    settings: Settings,
}

/// At most this many findings of one calendar part are listed in a verdict; the rest are
/// counted in one more finding.
const MAX_CALENDAR_FINDINGS: usize = 32;

impl Pipeline {
    /// A pipeline with these settings.
    pub fn new(settings: Settings) -> Pipeline {
        Pipeline { settings }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Evaluate one received message (RFC 5322 bytes): [`prepare`](Pipeline::prepare),
    /// [`judge`](Pipeline::judge) for `ctx.recipient`, and with `ctx.record`
    /// [`record`](Pipeline::record) an accept.
    ///
    /// Returns a [`Verdict`] when the message could be judged (accept or reject, with every
    /// reason found), and an [`EvaluateError`] when it could not (store unavailable or
    /// busy): a failure to evaluate never turns into an accept or a reject. With
    /// `ctx.record`, an accepted message's event state is recorded in one transaction that
    /// checks it again; nothing is recorded on reject or error.
    pub fn evaluate(
        &self,
        raw: &[u8],
        ctx: &Evaluation<'_>,
        store: Option<&dyn Stores>,
    ) -> Result<Verdict, EvaluateError> {
        if ctx.record {
            if store.is_none() {
                return Err(EvaluateError::RecordWithoutStore);
            }
            if ctx.recipient.is_none() {
                return Err(EvaluateError::RecordWithoutRecipient);
            }
        }
        let prepared = self.prepare_with(raw, ctx.at, ctx.recipient.is_some());
        let verdict = self.judge(&prepared, ctx.recipient, store)?;
        match (ctx.record, store, verdict) {
            (true, Some(store), Verdict::Accept(accepted)) => Self::record(accepted, store),
            (_, _, verdict) => Ok(verdict),
        }
    }

    /// The recipient-independent work on one received message, done once however many
    /// recipients it has: the size limit, the MIME walk, decryption, signature
    /// verification, the accept direction (every calendar part mail-parser finds is one
    /// the verification authorised) and iTIP parsing. Never touches a store.
    pub fn prepare(&self, raw: &[u8], at: time::OffsetDateTime) -> Prepared {
        self.prepare_with(raw, at, true)
    }

    /// [`prepare`](Pipeline::prepare), hashing the message only `with_digest`.
    fn prepare_with(&self, raw: &[u8], at: time::OffsetDateTime, with_digest: bool) -> Prepared {
        let digest = with_digest.then(|| MessageDigest::from_bytes(imipsec_smime::sha256(raw)));
        let rejected = |reasons, warnings, layers| Prepared {
            at,
            digest,
            stage: Stage::Rejected(Report {
                reasons,
                warnings,
                layers,
                itip: Vec::new(),
                event_state: EventState::NotChecked,
            }),
        };
        let limit = self.settings.limits.message_bytes();
        if raw.len() > limit {
            return rejected(
                vec![Finding::new(
                    Reason::LimitExceeded,
                    format!("message is larger than the limit of {limit} bytes"),
                )],
                Vec::new(),
                Vec::new(),
            );
        }
        let options = self.settings.inspect_options(at);
        let mut inspection = match imipsec_smime::inspect(raw, &options) {
            Ok(inspection) => inspection,
            Err(error) => {
                let reason = Reason::from(&error);
                return rejected(
                    vec![Finding::new(reason, error.to_string())],
                    Vec::new(),
                    Vec::new(),
                );
            }
        };
        // Revocation that could not be had under `require` is no verdict (issue #13): the
        // message is evaluated again later (a gate tempfails, the CLI exits 2).
        if let Some(failure) = inspection.layers().iter().find_map(|layer| {
            layer.outcome().failure().filter(|failure| {
                matches!(
                    failure,
                    imipsec_smime::Failure::RevocationUnavailable { .. }
                )
            })
        }) {
            return Prepared {
                at,
                digest,
                stage: Stage::RevocationUnavailable(failure.to_string()),
            };
        }
        let verification = verify(
            &inspection,
            at,
            self.settings.signing_time_tolerance,
            self.settings.danger_allow_unsigned,
        );
        let Some(message) = verification.message else {
            return rejected(
                verification.reasons,
                verification.warnings,
                verification.layers,
            );
        };
        // The accept direction (issue #11), before anything is processed or recorded: every
        // calendar part mail-parser (the calendar server's parser) finds must be one this
        // verification authorised, at the same bytes. The parse is the one the walk made
        // when it made one, so the message is parsed once (issue 17); the list is kept for
        // the gate's own check of the same bytes ([`Prepared::mail_parser_calendars`]).
        let calendar_ranges: Vec<std::ops::Range<usize>> = message
            .calendars()
            .iter()
            .filter_map(VerifiedCalendar::body_range)
            .collect();
        let parsed = inspection
            .take_mail_parser_calendars()
            .unwrap_or_else(|| imipsec_smime::calendar::mail_parser_calendars(raw));
        if let Some(finding) = unauthorised_calendar(&parsed, &calendar_ranges) {
            return rejected(vec![finding], verification.warnings, verification.layers);
        }
        let signed = message.authentication() == Authentication::Signed;
        let mut warnings = verification.warnings;
        let mut deviations = Vec::new();
        let calendars = message
            .calendars()
            .iter()
            .map(|calendar| {
                let parsed = self.parse(calendar);
                if let Ok(itip) = &parsed {
                    // Bounded like the findings: thousands of tolerated blank lines must not
                    // make the verdict thousands of warnings long; the rest is counted.
                    let part = part_name(calendar.path());
                    let tolerated = itip.warnings.iter().filter(|w| is_tolerated_deviation(w));
                    let count = tolerated.clone().count();
                    deviations.extend(tolerated.take(MAX_CALENDAR_FINDINGS).map(|warning| {
                        let mut warning = warning.clone();
                        warning.map_offsets(&|offset| calendar.received_offset(offset));
                        Finding::new(
                            Warning::IcalendarDeviation,
                            format!("text/calendar at {part}: {warning}"),
                        )
                    }));
                    if count > MAX_CALENDAR_FINDINGS {
                        deviations.push(Finding::new(
                            Warning::IcalendarDeviation,
                            format!(
                                "text/calendar at {part}: and {} more deviations",
                                count - MAX_CALENDAR_FINDINGS
                            ),
                        ));
                    }
                }
                PreparedCalendar {
                    signers: calendar
                        .signer_emails()
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                    parsed,
                }
            })
            .collect();
        warnings.append(&mut deviations);
        Prepared {
            at,
            digest,
            stage: Stage::Ready(Ready {
                signed,
                calendars,
                warnings,
                layers: verification.layers,
                calendar_ranges,
                mail_parser_calendars: parsed,
            }),
        }
    }

    /// The per-recipient judgement of a [`Prepared`] message: correlation of the signers
    /// with the iTIP roles, SENT-BY delegations, the delegator's delegates, and (with a
    /// store and a recipient) the event state, read-only. No cryptography runs here: a
    /// gate calls this under its store lock once per recipient.
    pub fn judge(
        &self,
        prepared: &Prepared,
        recipient: Option<&str>,
        store: Option<&dyn Stores>,
    ) -> Result<Verdict, EvaluateError> {
        // One local-part rule for the correlation and the store's organizer pin.
        let rule = imipsec_policy::LocalPartCase::from_strict(self.settings.strict_local_part);
        if let Some(store) = store
            && store.local_part_case() != rule
        {
            return Err(EvaluateError::LocalPartRuleMismatch {
                settings: rule,
                store: store.local_part_case(),
            });
        }
        // Only `evaluate` prepares without the digest, and only to judge without a recipient:
        // a recipient's state is never judged without its record key.
        if recipient.is_some() && prepared.digest.is_none() {
            return Err(EvaluateError::PreparedWithoutDigest);
        }
        match &prepared.stage {
            Stage::RevocationUnavailable(detail) => Err(EvaluateError::RevocationUnavailable {
                detail: detail.clone(),
            }),
            Stage::Rejected(report) => Ok(Verdict::from_findings(
                report.reasons.clone(),
                report.warnings.clone(),
                report.layers.clone(),
                Vec::new(),
            )),
            Stage::Ready(ready) => {
                let scope = recipient
                    .zip(prepared.digest)
                    .map(|(recipient, digest)| StateScope {
                        recipient: recipient.to_owned(),
                        digest,
                    });
                self.process(ready, prepared.at, scope, store)
            }
        }
    }

    /// Record an accept's event-state updates: consumes the [`Accepted`] the judgement
    /// made, without verifying again. The store checks the state once more in the same
    /// transaction that writes it: an update that lost a race to a concurrent one turns the
    /// accept into a reject and records nothing.
    ///
    /// # Errors
    /// [`EvaluateError`] when the store failed or the accept has no recipient scope.
    pub fn record(accepted: Accepted, store: &dyn Stores) -> Result<Verdict, EvaluateError> {
        let Some(scope) = accepted.scope().map(str::to_owned) else {
            return Err(EvaluateError::RecordWithoutRecipient);
        };
        match store.decide_and_record(&scope, accepted.updates(), accepted.at()) {
            Ok(StateDecision::Recorded | StateDecision::AlreadyRecorded) => {
                let mut accepted = accepted;
                accepted.mark_recorded();
                Ok(Verdict::Accept(accepted))
            }
            Ok(StateDecision::Rejected(findings)) => {
                Ok(accepted.into_rejected(findings.iter().map(state_finding).collect()))
            }
            Err(error) => state_error(error).map(|finding| accepted.into_rejected(vec![finding])),
        }
    }

    /// [`record`](Pipeline::record) for a gate that records before it delivers: idempotent
    /// per message (keyed by the SHA-256 of the received bytes and the recipient,
    /// [`EventStateStore::decide_and_record_message`]). The retry of a message whose
    /// delivery failed after it was recorded finds its own record and is accepted again,
    /// recording nothing twice; another message with the same SEQUENCE is still a replay.
    ///
    /// # Errors
    /// As [`record`](Pipeline::record).
    pub fn record_delivery(
        accepted: Accepted,
        store: &dyn Stores,
    ) -> Result<Verdict, EvaluateError> {
        let Some(StateScope { recipient, digest }) = accepted.state_scope().cloned() else {
            return Err(EvaluateError::RecordWithoutRecipient);
        };
        let decision =
            store.decide_and_record_message(&recipient, &digest, accepted.updates(), accepted.at());
        match decision {
            Ok(StateDecision::Recorded | StateDecision::AlreadyRecorded) => {
                let mut accepted = accepted;
                accepted.mark_recorded();
                Ok(Verdict::Accept(accepted))
            }
            Ok(StateDecision::Rejected(findings)) => {
                Ok(accepted.into_rejected(findings.iter().map(state_finding).collect()))
            }
            Err(error) => state_error(error).map(|finding| accepted.into_rejected(vec![finding])),
        }
    }

    /// The processing step: correlation, delegations, event state. Takes only what the
    /// verification step prepared.
    fn process(
        &self,
        ready: &Ready,
        at_time: time::OffsetDateTime,
        scope: Option<StateScope>,
        store: Option<&dyn Stores>,
    ) -> Result<Verdict, EvaluateError> {
        let recipient = scope.as_ref().map(|scope| scope.recipient.as_str());
        let at = Timestamp::from_unix_seconds(at_time.unix_timestamp());
        let store_policy = store.map(|store| StoreDelegationPolicy::new(store, at));
        let policy: &dyn DelegationPolicy = match &store_policy {
            Some(policy) => policy,
            None => &DenyAllDelegations,
        };
        let signed = ready.signed;
        let mut reasons = Vec::new();
        let mut reports = Vec::new();
        let mut updates = Vec::new();

        for calendar in &ready.calendars {
            let itip = match &calendar.parsed {
                Ok(itip) => itip,
                Err(findings) => {
                    reasons.extend(findings.iter().cloned());
                    continue;
                }
            };
            let signers: Vec<&str> = if signed {
                calendar.signers.iter().map(String::as_str).collect()
            } else {
                named_actors(itip)
            };
            let options = CorrelateOptions {
                strict_local_part: self.settings.strict_local_part,
            };
            let correlation = correlate(itip, &signers, policy, &options);
            if let Some(policy) = &store_policy
                && let Some(error) = policy.take_error()
            {
                return Err(EvaluateError::DelegationStore(error));
            }
            if let Some(imipsec_itip::Failure::PolicyUnavailable(unavailable)) =
                correlation.failure()
            {
                return Err(EvaluateError::PolicyUnavailable {
                    detail: unavailable.detail.clone(),
                });
            }
            self.judge_correlation(itip, &correlation, recipient, &mut reasons, &mut reports);
            if correlation.is_authorized() {
                let check_state = store.is_some() && recipient.is_some();
                match event_updates(itip, &correlation, signed, check_state) {
                    Ok(mut built) => updates.append(&mut built),
                    Err(finding) => reasons.push(finding),
                }
            }
        }

        let mut warnings = ready.warnings.clone();
        let layers = ready.layers.clone();
        let mut state_checked = false;
        match (store, recipient) {
            (Some(_), Some(_)) => {}
            (None, _) => warnings.push(Finding::new(
                Warning::EventStateUnchecked,
                "no event-state store: the organizer pinned to each UID and SEQUENCE/DTSTAMP \
                 replay were not checked",
            )),
            (Some(_), None) => warnings.push(Finding::new(
                Warning::EventStateUnchecked,
                "no recipient (the event-state scope): the organizer pinned to each UID and \
                 SEQUENCE/DTSTAMP replay were not checked",
            )),
        }
        if reasons.is_empty()
            && let (Some(store), Some(scope)) = (store, &scope)
        {
            match store.evaluate_message(&scope.recipient, &scope.digest, &updates) {
                Ok(findings) => reasons.extend(findings.iter().map(state_finding)),
                Err(error) => {
                    return state_error(error).map(|finding| {
                        Verdict::from_findings(vec![finding], warnings, layers, reports)
                    });
                }
            }
            state_checked = true;
        }
        let report = Report {
            reasons,
            warnings,
            layers,
            itip: reports,
            event_state: EventState::NotChecked,
        };
        let mut verdict = Verdict::build(report, updates, scope, at, ready.calendar_ranges.clone());
        if state_checked {
            verdict.mark_event_state_checked();
        }
        Ok(verdict)
    }

    /// Parses one calendar; a rejected one gives every fatal finding (every restriction
    /// violation, not just the first), each naming the part.
    fn parse(&self, calendar: &VerifiedCalendar) -> Result<ItipMessage, Vec<Finding<Reason>>> {
        let params = MimeParams {
            method: calendar.method(),
            charset: calendar.charset(),
            component: calendar.component(),
        };
        let options = ParseOptions {
            strict: self.settings.strict_icalendar,
            limits: self.settings.limits.itip,
            ..ParseOptions::default()
        };
        crate::content_line::check_line_breaks(calendar.body()).map_err(|error| {
            let property = error
                .offset()
                .map(|offset| crate::content_line::property_at(calendar.body(), offset))
                .filter(|property| !property.is_empty())
                .map(|property| format!("{property}: "))
                .unwrap_or_default();
            let error = error.map_offset(&|offset| calendar.received_offset(offset));
            vec![Finding::new(
                Reason::MalformedIcalendar,
                format!(
                    "text/calendar at {}: {property}{error}",
                    part_name(calendar.path())
                ),
            )]
        })?;
        parse_itip_all(calendar.body(), &params, &options).map_err(|mut errors| {
            let part = part_name(calendar.path());
            // Offsets into the part as received, not into its CRLF copy.
            for error in &mut errors {
                error.map_offsets(&|offset| calendar.received_offset(offset));
            }
            let mut findings: Vec<Finding<Reason>> = errors
                .iter()
                .take(MAX_CALENDAR_FINDINGS)
                .map(|error| {
                    let reason = Reason::from(error);
                    Finding::new(reason, format!("text/calendar at {part}: {error}"))
                })
                .collect();
            // Every violation is listed up to a bound, so that a calendar with thousands of
            // broken components cannot make the verdict (JSON, audit, report) thousands of
            // lines long; the rest is counted.
            if errors.len() > MAX_CALENDAR_FINDINGS
                && let Some(last) = findings.last()
            {
                let reason = last.code;
                findings.push(Finding::new(
                    reason,
                    format!(
                        "text/calendar at {part}: and {} more findings",
                        errors.len() - MAX_CALENDAR_FINDINGS
                    ),
                ));
            }
            findings
        })
    }

    /// Turn a correlation into reasons and per-component reports.
    fn judge_correlation(
        &self,
        itip: &ItipMessage,
        correlation: &Correlation,
        recipient: Option<&str>,
        reasons: &mut Vec<Finding<Reason>>,
        reports: &mut Vec<ItipReport>,
    ) {
        for outcome in &correlation.components {
            let mut report = ItipReport {
                method: itip.method.as_str().to_owned(),
                component: itip.kind.as_str().to_owned(),
                uid: outcome.uid.clone(),
                recurrence_id: outcome.recurrence_id.as_ref().map(|r| r.value.clone()),
                sequence: outcome.sequence,
                actor: None,
                role: None,
                via: None,
            };
            match &outcome.result {
                Ok(authorization) => {
                    report.actor = Some(address_text(&authorization.actor));
                    report.role = Some(authorization.role.side().as_str().to_owned());
                    report.via = authorization.via.as_ref().map(address_text);
                    // RFC 5546 section 3.2.2.3: a delegator may send the REQUEST only to its
                    // delegates; without a recipient that cannot be checked, so fail closed.
                    if authorization.role == Role::Delegator {
                        let delivered_to_delegate = recipient.is_some_and(|recipient| {
                            authorization
                                .delegates
                                .iter()
                                .any(|delegate| delegate.matches(recipient, false))
                        });
                        if !delivered_to_delegate {
                            reasons.push(Finding::new(
                                Reason::RoleNotAuthorized,
                                format!(
                                    "{} delegated its attendance and may send the REQUEST \
                                     only to its delegates, not to {}",
                                    address_text(&authorization.actor),
                                    recipient.unwrap_or("an unknown recipient")
                                ),
                            ));
                        }
                    }
                }
                Err(failure) => {
                    // Who the message claimed to act for, so reports show the claim that
                    // failed (the role only where the failure establishes it).
                    use imipsec_itip::Failure;
                    match failure {
                        Failure::SignerNotCorrelated {
                            actor: Some(actor), ..
                        } => report.actor = Some(address_text(actor)),
                        Failure::RoleNotAuthorized { actor, role, .. } => {
                            report.actor = Some(address_text(actor));
                            report.role = Some(role.side().as_str().to_owned());
                        }
                        Failure::SentByUnauthorized {
                            principal, sent_by, ..
                        } => {
                            report.actor = Some(address_text(principal));
                            report.via = Some(address_text(sent_by));
                        }
                        Failure::InconsistentActor { found, .. } => {
                            report.actor = Some(address_text(found));
                        }
                        _ => {}
                    }
                    let reason = Reason::from(failure);
                    let uid = outcome.uid.as_deref().unwrap_or("(no UID)");
                    reasons.push(Finding::new(reason, format!("UID {uid}: {failure}")));
                }
            }
            reports.push(report);
        }
    }
}

/// The first calendar part mail-parser finds (`parsed`, its calendar parts of the received
/// message) that is not among the verified calendars' body ranges (`authorised`), as a
/// reason (`unprotected-calendar`).
fn unauthorised_calendar(
    parsed: &[imipsec_smime::calendar::ParsedCalendar],
    authorised: &[std::ops::Range<usize>],
) -> Option<Finding<Reason>> {
    let part = parsed
        .iter()
        .find(|part| !part.is_authorised_by(authorised))?;
    Some(Finding::new(
        Reason::UnprotectedCalendar,
        match &part.body {
            Some(body) => format!(
                "mail-parser (the calendar server's parser) finds {} at bytes {}..{} that \
                 this verification did not authorise",
                part.media_type, body.start, body.end
            ),
            None => format!(
                "mail-parser (the calendar server's parser) finds {} where this verification \
                 cannot follow it",
                part.media_type
            ),
        },
    ))
}

fn address_text(address: &imipsec_itip::CalAddress) -> String {
    address
        .addr_spec
        .clone()
        .map_or_else(|| address.text.clone(), String::from)
}

/// DANGER mode only: the addresses an unsigned calendar claims to come from (the ORGANIZER
/// for organizer methods, the ATTENDEEs for attendee methods), used in place of signers.
fn named_actors(itip: &ItipMessage) -> Vec<&str> {
    let mut actors: Vec<&str> = Vec::new();
    for component in &itip.components {
        let candidates: Vec<&imipsec_itip::CalAddress> = match itip.method.side() {
            imipsec_itip::Side::Organizer => component
                .organizer
                .iter()
                .map(|organizer| &organizer.address)
                .collect(),
            imipsec_itip::Side::Attendee => component
                .attendees
                .iter()
                .map(|attendee| &attendee.address)
                .collect(),
        };
        for address in candidates {
            if let Some(addr_spec) = address.addr_spec.as_deref()
                && !actors.contains(&addr_spec)
            {
                actors.push(addr_spec);
            }
        }
    }
    actors
}

/// The event-state updates of an authorized message, one per component. `check_state`:
/// the updates will be judged by a store, so every RECURRENCE-ID must have a key.
fn event_updates(
    itip: &ItipMessage,
    correlation: &Correlation,
    signed: bool,
    check_state: bool,
) -> Result<Vec<EventUpdate>, Finding<Reason>> {
    let method = itip.method;
    let mut updates = Vec::with_capacity(itip.components.len());
    for (component, outcome) in itip.components.iter().zip(&correlation.components) {
        let Ok(authorization) = &outcome.result else {
            continue;
        };
        let uid = component
            .uid
            .clone()
            .ok_or_else(|| Finding::new(Reason::RestrictionViolation, "a component has no UID"))?;
        let dtstamp_text = component.dtstamp.as_deref().ok_or_else(|| {
            Finding::new(
                Reason::RestrictionViolation,
                format!("UID {uid}: no DTSTAMP"),
            )
        })?;
        let dtstamp = component.dtstamp_utc.ok_or_else(|| {
            Finding::new(
                Reason::MalformedIcalendar,
                format!("UID {uid}: DTSTAMP {dtstamp_text:?} is not a UTC instant"),
            )
        })?;
        let recurrence_id = match &component.recurrence_id {
            None => None,
            Some(recurrence) => match recurrence.key() {
                Ok(key) => Some(key.into_string()),
                // Without a store the key decides nothing.
                Err(_) if !check_state => None,
                Err(error) => {
                    let reason = match error {
                        RecurrenceKeyError::TzidRelative { .. } => Reason::UnsupportedRecurrenceId,
                        _ => Reason::MalformedIcalendar,
                    };
                    return Err(Finding::new(reason, format!("UID {uid}: {error}")));
                }
            },
        };
        let organizer = component
            .organizer
            .as_ref()
            .map(|organizer| address_text(&organizer.address));
        updates.push(EventUpdate {
            uid,
            recurrence_id,
            organizer,
            actor: address_text(&authorization.actor),
            actor_is_organizer: authorization.role == Role::Organizer,
            sequence: i64::from(component.sequence.unwrap_or(0)),
            dtstamp,
            attendees: component
                .attendees
                .iter()
                .map(|attendee| address_text(&attendee.address))
                .collect(),
            signed,
            method,
        });
    }
    Ok(updates)
}

/// A store error while checking state: input the store refuses (too many components, a UID
/// too long, an address it cannot normalise) is a reject of the message; anything else means
/// the store could not be used, which is an error.
fn state_error(error: StoreError) -> Result<Finding<Reason>, EvaluateError> {
    let detail = error.to_string();
    match error {
        StoreError::TooManyUpdates { .. }
        | StoreError::TooManyAttendees { .. }
        | StoreError::UidTooLong { .. }
        | StoreError::RecurrenceIdTooLong { .. } => Ok(Finding::new(Reason::LimitExceeded, detail)),
        // The scope is the caller's recipient, not message content: a usage error.
        StoreError::InvalidAddress {
            field: AddressField::Scope,
            ..
        } => Err(EvaluateError::InvalidRecipient(error)),
        StoreError::InvalidAddress { .. }
        | StoreError::EmptyUid
        | StoreError::EmptyRecurrenceId => Ok(Finding::new(Reason::MalformedIcalendar, detail)),
        other => Err(EvaluateError::EventStore(other)),
    }
}

fn state_finding(finding: &StateFinding) -> Finding<Reason> {
    let reason = Reason::from(finding);
    let detail = match finding {
        StateFinding::OrganizerMismatch {
            uid,
            pinned,
            claimed,
            ..
        } => format!("UID {uid} belongs to organizer {pinned}, not {claimed}"),
        StateFinding::StaleSequence {
            uid,
            actor,
            sequence,
            last_sequence,
            ..
        } => format!(
            "UID {uid}: SEQUENCE {sequence} from {actor} is not newer than the recorded \
             SEQUENCE {last_sequence} (RFC 5546 section 2.1.5)"
        ),
        StateFinding::Unsigned { uid, actor, .. } => format!(
            "UID {uid}: unsigned update from {actor} to an event previously updated by \
             signed mail (downgrade)"
        ),
        other => format!("{other:?}"),
    };
    Finding::new(reason, detail)
}

/// Whether an iTIP warning is a deviation that strict mode (`strict_icalendar`) would
/// refuse: the interoperability profile's four, and the lenient reader's tolerances (no
/// `charset` or `method` Content-Type parameter, a blank line, bare LF line ends). Each is
/// reported as `icalendar-deviation`, so that an accepted message says what strict mode
/// would reject. Non-mailto addresses and several UIDs in a PUBLISH are RFC-conforming and
/// not deviations.
fn is_tolerated_deviation(warning: &imipsec_itip::Warning) -> bool {
    use imipsec_itip::Warning as W;
    match warning {
        W::IcalendarDeviation { .. }
        | W::MissingCharset
        | W::MissingMethodParameter
        | W::BlankLine { .. }
        | W::BareLineFeed { .. } => true,
        W::NonMailtoAddress { .. } | W::SeveralUids => false,
        // A warning added later is reported until it is classified here.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gates and audits share one pipeline across worker threads.
    #[test]
    fn pipeline_and_verdict_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Pipeline>();
        send_sync::<Verdict>();
        send_sync::<Prepared>();
        send_sync::<EvaluateError>();
    }

    /// A preparation without the message digest (what `evaluate` makes to judge without a
    /// recipient) is refused for a recipient instead of judged without its record key.
    #[test]
    fn a_recipient_is_never_judged_without_the_message_digest() {
        let anchors =
            [std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../certs/root.cert.pem")];
        let trust = imipsec_smime::TrustStore::from_pem_files(&anchors, &[] as &[&str])
            .expect("the bundled test anchor loads");
        let pipeline = Pipeline::new(Settings::new(trust));
        let at = time::macros::datetime!(2026-06-01 00:00:00 UTC);
        let raw = b"From: organizer@example.com\r\nContent-Type: text/plain\r\n\r\nhello\r\n";
        let prepared = pipeline.prepare_with(raw, at, false);
        assert!(prepared.digest.is_none());
        assert!(matches!(
            pipeline.judge(&prepared, Some("attendee@example.com"), None),
            Err(EvaluateError::PreparedWithoutDigest)
        ));
        assert!(pipeline.judge(&prepared, None, None).is_ok());
    }
}
