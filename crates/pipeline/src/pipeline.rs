//! [`Pipeline::evaluate`]: verify, then process, then (on accept, when asked) record.

use imipsec_itip::{
    CorrelateOptions, Correlation, DelegationPolicy, DenyAllDelegations, ItipMessage, MimeParams,
    ParseOptions, Role, correlate, parse_itip_all,
};
use imipsec_policy::{
    AddressField, DelegationStore, EventStateStore, EventUpdate, StateDecision, StateFinding,
    StoreError, Timestamp,
};
use imipsec_types::RecurrenceKeyError;
use thiserror::Error;

use crate::delegation::StoreDelegationPolicy;
use crate::reason::{Finding, Reason, Warning};
use crate::settings::Settings;
use crate::verdict::{ItipReport, LayerReport, Verdict};
use crate::verified::{Authentication, VerifiedCalendar, VerifiedMessage, part_name, verify};

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

    /// Evaluate one received message (RFC 5322 bytes).
    ///
    /// Returns a [`Verdict`] when the message could be judged (accept or reject, with every
    /// reason found), and an [`EvaluateError`] when it could not (store unavailable or
    /// busy): a failure to evaluate never turns into an accept or a reject. With
    /// `ctx.record`, an accepted message's event state is recorded in the same transaction
    /// that checks it; nothing is recorded on reject or error.
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
        let limit = self.settings.limits.message_bytes();
        if raw.len() > limit {
            return Ok(Verdict::reject(
                Reason::LimitExceeded,
                format!("message is larger than the limit of {limit} bytes"),
            ));
        }
        let options = self.settings.inspect_options(ctx.at);
        let inspection = match imipsec_smime::inspect(raw, &options) {
            Ok(inspection) => inspection,
            Err(error) => {
                let reason = Reason::from(&error);
                return Ok(Verdict::reject(reason, error.to_string()));
            }
        };
        // Revocation that could not be had under `require` is no verdict (issue #13): the
        // message is evaluated again later (a gate tempfails, the CLI exits 2).
        if let Some(failure) = inspection.layers.iter().find_map(|layer| {
            layer.outcome.failure().filter(|failure| {
                matches!(
                    failure,
                    imipsec_smime::Failure::RevocationUnavailable { .. }
                )
            })
        }) {
            return Err(EvaluateError::RevocationUnavailable {
                detail: failure.to_string(),
            });
        }
        let verification = verify(
            &inspection,
            ctx.at,
            self.settings.signing_time_tolerance,
            self.settings.danger_allow_unsigned,
        );
        match verification.message {
            // The accept direction (issue #11), before anything is processed or recorded:
            // every calendar part mail-parser (the calendar server's parser) finds must be
            // one this verification authorised, at the same bytes.
            Some(message) if let Some(finding) = unauthorised_calendar(raw, &message) => {
                Ok(Verdict::from_findings(
                    vec![finding],
                    verification.warnings,
                    verification.layers,
                    Vec::new(),
                ))
            }
            Some(message) => self
                .process(
                    &message,
                    ctx,
                    store,
                    verification.warnings,
                    verification.layers,
                )
                .map(|mut verdict| {
                    verdict.calendar_ranges = message
                        .calendars()
                        .iter()
                        .filter_map(VerifiedCalendar::body_range)
                        .collect();
                    verdict
                }),
            None => Ok(Verdict::from_findings(
                verification.reasons,
                verification.warnings,
                verification.layers,
                Vec::new(),
            )),
        }
    }

    /// The processing step: iTIP validation, correlation, event state. Takes only a
    /// [`VerifiedMessage`].
    fn process(
        &self,
        message: &VerifiedMessage,
        ctx: &Evaluation<'_>,
        store: Option<&dyn Stores>,
        warnings: Vec<Finding<Warning>>,
        layers: Vec<LayerReport>,
    ) -> Result<Verdict, EvaluateError> {
        let at = Timestamp::from_unix_seconds(ctx.at.unix_timestamp());
        let store_policy = store.map(|store| StoreDelegationPolicy::new(store, at));
        let policy: &dyn DelegationPolicy = match &store_policy {
            Some(policy) => policy,
            None => &DenyAllDelegations,
        };
        let signed = message.authentication() == Authentication::Signed;
        let mut reasons = Vec::new();
        let mut reports = Vec::new();
        let mut updates = Vec::new();

        let mut deviations = Vec::new();
        for calendar in message.calendars() {
            let itip = match self.parse(calendar) {
                Ok(itip) => itip,
                Err(mut findings) => {
                    reasons.append(&mut findings);
                    continue;
                }
            };
            // Bounded like the findings: thousands of tolerated blank lines must not make the
            // verdict thousands of warnings long; the rest is counted.
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
            let signers: Vec<&str> = if signed {
                calendar.signer_emails()
            } else {
                named_actors(&itip)
            };
            let options = CorrelateOptions {
                strict_local_part: self.settings.strict_local_part,
            };
            let correlation = correlate(&itip, &signers, policy, &options);
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
            self.judge_correlation(&itip, &correlation, ctx, &mut reasons, &mut reports);
            if correlation.is_authorized() {
                let check_state = store.is_some() && ctx.recipient.is_some();
                match event_updates(&itip, &correlation, signed, check_state) {
                    Ok(mut built) => updates.append(&mut built),
                    Err(finding) => reasons.push(finding),
                }
            }
        }

        let mut warnings = warnings;
        warnings.append(&mut deviations);
        let mut recorded = false;
        let mut state_checked = false;
        match (store, ctx.recipient) {
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
            && let (Some(store), Some(scope)) = (store, ctx.recipient)
        {
            let findings = if ctx.record {
                match store.decide_and_record(scope, &updates, at) {
                    Ok(StateDecision::Recorded) => {
                        recorded = true;
                        Vec::new()
                    }
                    Ok(StateDecision::Rejected(findings)) => findings,
                    Err(error) => {
                        return state_error(error).map(|finding| {
                            Verdict::from_findings(vec![finding], warnings, layers, reports)
                        });
                    }
                }
            } else {
                match store.evaluate(scope, &updates) {
                    Ok(findings) => findings,
                    Err(error) => {
                        return state_error(error).map(|finding| {
                            Verdict::from_findings(vec![finding], warnings, layers, reports)
                        });
                    }
                }
            };
            reasons.extend(findings.iter().map(state_finding));
            state_checked = true;
        }
        let mut verdict = Verdict::from_findings(reasons, warnings, layers, reports);
        verdict.recorded = recorded;
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
        ctx: &Evaluation<'_>,
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
                        let delivered_to_delegate = ctx.recipient.is_some_and(|recipient| {
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
                                    ctx.recipient.unwrap_or("an unknown recipient")
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

/// The first calendar part mail-parser finds in `raw` that `message` did not authorise, as a
/// reason (`unprotected-calendar`).
fn unauthorised_calendar(raw: &[u8], message: &VerifiedMessage) -> Option<Finding<Reason>> {
    let authorised: Vec<std::ops::Range<usize>> = message
        .calendars()
        .iter()
        .filter_map(VerifiedCalendar::body_range)
        .collect();
    let unauthorised = imipsec_smime::calendar::unauthorised_calendars(raw, &authorised);
    let part = unauthorised.first()?;
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
        send_sync::<EvaluateError>();
    }
}
