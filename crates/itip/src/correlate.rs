//! Who is acting, in which role, and may that role perform the method.
//!
//! RFC 5546 section 1.4 splits the methods by sender: PUBLISH, REQUEST, ADD, CANCEL and
//! DECLINECOUNTER come from the Organizer, REPLY, REFRESH and COUNTER from an Attendee.
//! For every component (master and overrides alike) [`correlate`] finds the *actor* the
//! message claims, and accepts it only if one signer identity is that actor's address
//! (the signer acts directly) or that actor's SENT-BY address (RFC 5545 section 3.2.18;
//! the signer acts on the actor's behalf, and a [`DelegationPolicy`] must allow it).
//!
//! Delegation of attendance (RFC 5546 section 3.2.2.3, RFC 5545 sections 3.2.4, 3.2.5):
//! an Attendee "A" that delegates sends the delegate "B" a REQUEST, although A is not the
//! Organizer. We accept a REQUEST as sent by a [`Role::Delegator`] only when all of this
//! holds in the component:
//! * the signer is A's address (or A's SENT-BY, with the policy's consent);
//! * A's ATTENDEE has `PARTSTAT=DELEGATED` and a non-empty `DELEGATED-TO`;
//! * every address in A's `DELEGATED-TO` is itself an ATTENDEE of the component whose
//!   `DELEGATED-FROM` names A.
//!
//! The authorization then lists those delegates in [`Authorization::delegates`]: the
//! caller must check that the message went to one of them (a delegator may not send the
//! event to anyone else). The delegate's REPLY needs no special case: the delegate is the
//! single ATTENDEE of its REPLY and signs it as its own ([`Role::Attendee`]).
//!
//! A REQUEST forwarded by an Attendee to an uninvited user (section 3.2.2.6) is *not*
//! accepted: only the Organizer (or a delegator as above) may send a REQUEST.

// `Failure` is the verdict itself, carried in every outcome, not an error propagated up a
// call stack; boxing it would only add allocations.
#![allow(clippy::result_large_err)]

use serde::Serialize;

use crate::address::CalAddress;
use crate::model::{Attendee, Component, ItipMessage, ParticipationStatus, RecurrenceId};
use crate::{Method, Role, Side};

/// The delegation policy store did not answer; the caller must retry later (tempfail),
/// not reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("delegation policy unavailable: {detail}")]
pub struct PolicyUnavailable {
    /// Operator-facing description of why.
    pub detail: String,
}

impl PolicyUnavailable {
    /// The stable reason code, `policy-unavailable`.
    pub fn code(&self) -> &'static str {
        "policy-unavailable"
    }
}

/// What a [`DelegationPolicy`] is asked: may `delegate` act for `principal`, sending
/// `method` on the principal's `side`?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelegationQuery<'a> {
    /// The calendar user named in the calendar data (ORGANIZER or ATTENDEE).
    pub principal: &'a CalAddress,
    /// Its SENT-BY address, which equals a signer identity.
    pub delegate: &'a CalAddress,
    /// The method.
    pub method: Method,
    /// [`Side::Organizer`] when the principal is the ORGANIZER, [`Side::Attendee`] when it
    /// is an ATTENDEE (a replying attendee or a delegator sending its REQUEST).
    pub side: Side,
}

/// Decides SENT-BY delegations (RFC 5545 section 3.2.18). Implemented by the policy store.
pub trait DelegationPolicy {
    /// `Ok(true)` to allow, `Ok(false)` to deny, `Err` when the decision cannot be made now.
    fn sent_by_allowed(&self, query: &DelegationQuery<'_>) -> Result<bool, PolicyUnavailable>;
}

/// The default policy: no SENT-BY delegation is allowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct DenyAllDelegations;

impl DelegationPolicy for DenyAllDelegations {
    fn sent_by_allowed(&self, _: &DelegationQuery<'_>) -> Result<bool, PolicyUnavailable> {
        Ok(false)
    }
}

/// Options of [`correlate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CorrelateOptions {
    /// Compare the local part of addresses exactly (RFC 5321 section 2.4 leaves its case
    /// significance to the receiving host); by default it is compared case-insensitively.
    pub strict_local_part: bool,
}

/// A component is authorized: who acted, in which role, and through whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authorization {
    /// The calendar user the message speaks for (ORGANIZER or ATTENDEE address).
    pub actor: CalAddress,
    /// The role of the actor.
    pub role: Role,
    /// The SENT-BY address the signer matched, when the signer acted on the actor's
    /// behalf (and the policy allowed it); `None` when the signer is the actor.
    pub via: Option<CalAddress>,
    /// The signer identity that matched.
    pub signer: String,
    /// For [`Role::Delegator`]: the delegates the REQUEST may be sent to. Empty otherwise.
    pub delegates: Vec<CalAddress>,
}

/// Why no signer identity correlates to the actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NotCorrelated {
    /// No signer identity was given.
    NoSigner,
    /// The component names no actor (no ORGANIZER, or no ATTENDEE for an Attendee method).
    NoActor,
    /// The actor's address is not a plain `mailto:` address, so it matches no signer.
    ActorNotMailto,
    /// No signer identity equals the actor's address or its SENT-BY.
    NoMatch,
}

/// Why a component is not authorized. [`Failure::code`] gives the stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[non_exhaustive]
pub enum Failure {
    /// `signer-not-correlated`: no signer is the actor (nor its SENT-BY).
    #[error("{}", not_correlated(actor.as_ref(), *role, *reason))]
    SignerNotCorrelated {
        /// The actor the message claims, if any.
        actor: Option<CalAddress>,
        /// The role the actor is named in (ORGANIZER for Organizer methods, ATTENDEE for
        /// Attendee methods); `None` when there was no signer to try.
        role: Option<Role>,
        /// Why.
        reason: NotCorrelated,
    },
    /// `role-not-authorized`: the signer is a party of the component, but its role may
    /// not send this method (an Attendee sending REQUEST, the Organizer sending REPLY).
    #[error(
        "{role} {actor} may not send {method} (RFC 5546 §1.4: {method} is sent by the {})",
        match method.side() { Side::Organizer => "Organizer", Side::Attendee => "Attendee" }
    )]
    RoleNotAuthorized {
        /// The party the signer correlates to.
        actor: CalAddress,
        /// Its role.
        role: Role,
        /// The method.
        method: Method,
    },
    /// `role-not-authorized`: this component names another actor (or organizer) than the
    /// first component (an override naming another organizer, a REPLY for two people).
    #[error(
        "ORGANIZER/ATTENDEE: this component is the act of {found}, the first one of \
         {expected}: all components must have the same actor (RFC 6047 §2.2.1: one signed \
         message, one party's act)"
    )]
    InconsistentActor {
        /// The actor (or ORGANIZER) of the first component.
        expected: CalAddress,
        /// The one of this component.
        found: CalAddress,
    },
    /// `sent-by-unauthorized`: the signer is the actor's SENT-BY but the policy denies it.
    #[error(
        "SENT-BY {sent_by} may not send {method} for {principal}: the delegation policy \
         denies it (RFC 6047 §2.2.1: whether a calendar user authorized someone to act on \
         their behalf is the implementation's decision)"
    )]
    SentByUnauthorized {
        /// The actor.
        principal: CalAddress,
        /// Its SENT-BY (the signer).
        sent_by: CalAddress,
        /// The method.
        method: Method,
    },
    /// `policy-unavailable`: the delegation policy could not decide; tempfail.
    #[error(transparent)]
    PolicyUnavailable(#[from] PolicyUnavailable),
    /// `malformed-icalendar`: the message has no scheduling component.
    #[error("no component to authorize: VEVENT, VTODO, VJOURNAL or VFREEBUSY (RFC 5546 §3)")]
    NoComponents,
}

fn not_correlated(actor: Option<&CalAddress>, role: Option<Role>, reason: NotCorrelated) -> String {
    let rule = "(RFC 6047 §2.2.1, §2.2.2: the S/MIME signer must be the party that acts, \
                or its SENT-BY)";
    let role = role.map_or("ORGANIZER/ATTENDEE".to_owned(), |r| r.to_string());
    let text = match (reason, actor) {
        (NotCorrelated::NoSigner, _) => "no verified signer identity to correlate".to_owned(),
        (NotCorrelated::NoActor, _) => format!("the component has no {role}, so no signer can act"),
        (NotCorrelated::ActorNotMailto, Some(actor)) => {
            format!("{role} {actor} is not a plain mailto: address, so no signer can match it")
        }
        (NotCorrelated::ActorNotMailto, None) => {
            format!("the {role} is not a plain mailto: address, so no signer can match it")
        }
        (NotCorrelated::NoMatch, Some(actor)) => format!("{role} {actor} is not a signer"),
        (NotCorrelated::NoMatch, None) => format!("no signer is an {role} of the component"),
    };
    format!("{text} {rule}")
}

impl Failure {
    /// The stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Failure::SignerNotCorrelated { .. } => "signer-not-correlated",
            Failure::RoleNotAuthorized { .. } | Failure::InconsistentActor { .. } => {
                "role-not-authorized"
            }
            Failure::SentByUnauthorized { .. } => "sent-by-unauthorized",
            Failure::PolicyUnavailable(_) => "policy-unavailable",
            Failure::NoComponents => "malformed-icalendar",
        }
    }

    /// Specificity, as webpki ranks chain errors: when several signers (or components)
    /// fail, the highest rank is reported. An unavailable policy outranks everything, so
    /// the caller tempfails instead of rejecting.
    pub fn rank(&self) -> u8 {
        match self {
            Failure::PolicyUnavailable(_) => 6,
            Failure::SentByUnauthorized { .. } => 5,
            Failure::InconsistentActor { .. } => 4,
            Failure::RoleNotAuthorized { .. } => 3,
            Failure::SignerNotCorrelated {
                reason: NotCorrelated::ActorNotMailto | NotCorrelated::NoActor,
                ..
            } => 2,
            Failure::NoComponents => 2,
            Failure::SignerNotCorrelated { .. } => 1,
        }
    }
}

/// The verdict for one component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentOutcome {
    /// Its UID.
    pub uid: Option<String>,
    /// Its RECURRENCE-ID (overrides).
    pub recurrence_id: Option<RecurrenceId>,
    /// Its SEQUENCE.
    pub sequence: Option<u32>,
    /// Authorized, or why not.
    pub result: Result<Authorization, Failure>,
}

/// The verdict for a whole message: authorized only if every component is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Correlation {
    /// The method.
    pub method: Method,
    /// Its side.
    pub side: Side,
    /// One outcome per component, in document order.
    pub components: Vec<ComponentOutcome>,
    failure: Option<Failure>,
}

impl Correlation {
    /// True when every component is authorized (and there is at least one).
    pub fn is_authorized(&self) -> bool {
        self.failure.is_none()
    }

    /// The most specific failure over all components ([`Failure::rank`]), if any.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// True when the failure is that the delegation policy was unavailable (tempfail).
    pub fn policy_unavailable(&self) -> bool {
        matches!(self.failure, Some(Failure::PolicyUnavailable(_)))
    }

    /// The authorization of the first component (all components share actor and role
    /// when the message is authorized).
    pub fn authorization(&self) -> Option<&Authorization> {
        match self.failure {
            None => self.components.first().and_then(|c| c.result.as_ref().ok()),
            Some(_) => None,
        }
    }
}

/// Decides, for each component of `msg`, whether one of the `signers` (bare addr-specs
/// from the verified signature) may send it, consulting `policy` for SENT-BY.
pub fn correlate(
    msg: &ItipMessage,
    signers: &[&str],
    policy: &dyn DelegationPolicy,
    options: &CorrelateOptions,
) -> Correlation {
    let strict = options.strict_local_part;
    let mut components: Vec<ComponentOutcome> = msg
        .components
        .iter()
        .map(|c| ComponentOutcome {
            uid: c.uid.clone(),
            recurrence_id: c.recurrence_id.clone(),
            sequence: c.sequence,
            result: best_of_signers(c, msg.method, signers, policy, strict),
        })
        .collect();

    // Organizer methods: every component must name the same ORGANIZER.
    if msg.method.side() == Side::Organizer {
        let first = msg.components.first().and_then(|c| c.organizer.as_ref());
        for (component, outcome) in msg.components.iter().zip(components.iter_mut()).skip(1) {
            if let (Some(first), Some(this)) = (first, component.organizer.as_ref())
                && !first.address.same_user(&this.address, strict)
                && !first.address.text.eq_ignore_ascii_case(&this.address.text)
            {
                outcome.result = Err(Failure::InconsistentActor {
                    expected: first.address.clone(),
                    found: this.address.clone(),
                });
            }
        }
    }
    // Every authorized component must be the act of the same actor in the same role.
    let first_ok = components
        .iter()
        .find_map(|c| c.result.as_ref().ok())
        .map(|a| (a.actor.clone(), a.role));
    if let Some((actor, role)) = first_ok {
        for outcome in components.iter_mut() {
            if let Ok(a) = &outcome.result
                && (!a.actor.same_user(&actor, strict) || a.role != role)
            {
                outcome.result = Err(Failure::InconsistentActor {
                    expected: actor.clone(),
                    found: a.actor.clone(),
                });
            }
        }
    }

    let failure = if components.is_empty() {
        Some(Failure::NoComponents)
    } else {
        components
            .iter()
            .filter_map(|c| c.result.as_ref().err())
            .fold(None::<&Failure>, |best, f| match best {
                Some(b) if b.rank() >= f.rank() => Some(b),
                _ => Some(f),
            })
            .cloned()
    };
    Correlation {
        method: msg.method,
        side: msg.method.side(),
        components,
        failure,
    }
}

fn best_of_signers(
    c: &Component,
    method: Method,
    signers: &[&str],
    policy: &dyn DelegationPolicy,
    strict: bool,
) -> Result<Authorization, Failure> {
    let mut best: Option<Failure> = None;
    for signer in signers {
        match evaluate(c, method, signer, policy, strict) {
            Ok(a) => return Ok(a),
            Err(f) => {
                if best.as_ref().is_none_or(|b| f.rank() > b.rank()) {
                    best = Some(f);
                }
            }
        }
    }
    Err(best.unwrap_or(Failure::SignerNotCorrelated {
        actor: None,
        role: None,
        reason: NotCorrelated::NoSigner,
    }))
}

/// The signer is `principal` itself, or `principal`'s SENT-BY and the policy allows it.
/// `None`: the signer is neither.
fn acts_for(
    principal: &CalAddress,
    sent_by: Option<&CalAddress>,
    role: Role,
    method: Method,
    signer: &str,
    policy: &dyn DelegationPolicy,
    strict: bool,
) -> Option<Result<Authorization, Failure>> {
    let authorization = |via| Authorization {
        actor: principal.clone(),
        role,
        via,
        signer: signer.to_owned(),
        delegates: Vec::new(),
    };
    if principal.matches(signer, strict) {
        return Some(Ok(authorization(None)));
    }
    let sent_by = sent_by.filter(|s| s.matches(signer, strict))?;
    if !principal.is_mailto() {
        return Some(Err(Failure::SignerNotCorrelated {
            actor: Some(principal.clone()),
            role: Some(role),
            reason: NotCorrelated::ActorNotMailto,
        }));
    }
    let side = match role {
        Role::Organizer => Side::Organizer,
        Role::Attendee | Role::Delegator => Side::Attendee,
    };
    let query = DelegationQuery {
        principal,
        delegate: sent_by,
        method,
        side,
    };
    Some(match policy.sent_by_allowed(&query) {
        Ok(true) => Ok(authorization(Some(sent_by.clone()))),
        Ok(false) => Err(Failure::SentByUnauthorized {
            principal: principal.clone(),
            sent_by: sent_by.clone(),
            method,
        }),
        Err(e) => Err(Failure::PolicyUnavailable(e)),
    })
}

fn evaluate(
    c: &Component,
    method: Method,
    signer: &str,
    policy: &dyn DelegationPolicy,
    strict: bool,
) -> Result<Authorization, Failure> {
    match method.side() {
        Side::Organizer => evaluate_organizer_side(c, method, signer, policy, strict),
        Side::Attendee => evaluate_attendee_side(c, method, signer, policy, strict),
    }
}

fn evaluate_organizer_side(
    c: &Component,
    method: Method,
    signer: &str,
    policy: &dyn DelegationPolicy,
    strict: bool,
) -> Result<Authorization, Failure> {
    let Some(organizer) = &c.organizer else {
        return Err(Failure::SignerNotCorrelated {
            actor: None,
            role: Some(Role::Organizer),
            reason: NotCorrelated::NoActor,
        });
    };
    if let Some(result) = acts_for(
        &organizer.address,
        organizer.sent_by.as_ref(),
        Role::Organizer,
        method,
        signer,
        policy,
        strict,
    ) {
        return result;
    }
    for attendee in &c.attendees {
        let speaks_for = attendee.address.matches(signer, strict)
            || attendee
                .sent_by
                .as_ref()
                .is_some_and(|s| s.matches(signer, strict));
        if !speaks_for {
            continue;
        }
        // Decide the role before consulting the policy: an Attendee that is not a
        // consistent delegator may not send this method whoever signs for it.
        if method != Method::Request || !is_consistent_delegator(c, attendee, strict) {
            return Err(Failure::RoleNotAuthorized {
                actor: attendee.address.clone(),
                role: Role::Attendee,
                method,
            });
        }
        if let Some(result) = acts_for(
            &attendee.address,
            attendee.sent_by.as_ref(),
            Role::Delegator,
            method,
            signer,
            policy,
            strict,
        ) {
            let mut authorization = result?;
            authorization.delegates = attendee.delegated_to.clone();
            return Ok(authorization);
        }
    }
    let reason = if organizer.address.is_mailto() {
        NotCorrelated::NoMatch
    } else {
        NotCorrelated::ActorNotMailto
    };
    Err(Failure::SignerNotCorrelated {
        actor: Some(organizer.address.clone()),
        role: Some(Role::Organizer),
        reason,
    })
}

/// RFC 5546 section 3.2.2.3 as modelled in the module docs. Linear in the size of the
/// component: the attendees naming the delegator in DELEGATED-FROM are collected once into
/// a set, so that thousands of DELEGATED-TO and DELEGATED-FROM values cannot make the check
/// quadratic.
fn is_consistent_delegator(c: &Component, delegator: &Attendee, strict: bool) -> bool {
    if delegator.partstat != Some(ParticipationStatus::Delegated)
        || delegator.delegated_to.is_empty()
    {
        return false;
    }
    let Some(delegator_key) = delegator.address.comparison_key(strict) else {
        return false;
    };
    let acknowledged: std::collections::HashSet<String> = c
        .attendees
        .iter()
        .filter(|a| {
            a.delegated_from
                .iter()
                .any(|from| from.comparison_key(strict).as_deref() == Some(delegator_key.as_str()))
        })
        .filter_map(|a| a.address.comparison_key(strict))
        .collect();
    delegator.delegated_to.iter().all(|delegate| {
        delegate
            .comparison_key(strict)
            .is_some_and(|k| acknowledged.contains(&k))
    })
}

fn evaluate_attendee_side(
    c: &Component,
    method: Method,
    signer: &str,
    policy: &dyn DelegationPolicy,
    strict: bool,
) -> Result<Authorization, Failure> {
    // REPLY and REFRESH carry exactly one ATTENDEE (the tables say "1"); a COUNTER may
    // list several, then the one the signer speaks for is the actor.
    for attendee in &c.attendees {
        if let Some(result) = acts_for(
            &attendee.address,
            attendee.sent_by.as_ref(),
            Role::Attendee,
            method,
            signer,
            policy,
            strict,
        ) {
            return result;
        }
    }
    if let Some(organizer) = &c.organizer
        && (organizer.address.matches(signer, strict)
            || organizer
                .sent_by
                .as_ref()
                .is_some_and(|s| s.matches(signer, strict)))
    {
        return Err(Failure::RoleNotAuthorized {
            actor: organizer.address.clone(),
            role: Role::Organizer,
            method,
        });
    }
    match c.attendees.as_slice() {
        [] => Err(Failure::SignerNotCorrelated {
            actor: None,
            role: Some(Role::Attendee),
            reason: NotCorrelated::NoActor,
        }),
        [only] if !only.address.is_mailto() => Err(Failure::SignerNotCorrelated {
            actor: Some(only.address.clone()),
            role: Some(Role::Attendee),
            reason: NotCorrelated::ActorNotMailto,
        }),
        [only] => Err(Failure::SignerNotCorrelated {
            actor: Some(only.address.clone()),
            role: Some(Role::Attendee),
            reason: NotCorrelated::NoMatch,
        }),
        _ => Err(Failure::SignerNotCorrelated {
            actor: None,
            role: Some(Role::Attendee),
            reason: NotCorrelated::NoMatch,
        }),
    }
}
