//! Producing iMIP messages that a gate will accept (`imipsec sign`).
//!
//! RFC 6047 section 2 (the iMIP binding): a `text/calendar` part with `method` equal to the
//! METHOD, a `charset`, a human-readable alternative, `multipart/mixed` for several METHODs,
//! a transfer encoding for non-ASCII data; section 3: the message SHOULD be signed by the
//! calendar user it speaks for. [`sign_message`] refuses, with the reason code a gate would
//! give, to sign what a gate would reject: calendar text that is not valid iTIP, an identity
//! that is neither the acting ORGANIZER/ATTENDEE nor an allowed SENT-BY, and an identity whose
//! certificate a gate would not accept (expired, wrong purpose, weak key, untrusted by the
//! given anchors: [`imipsec_smime::keys::check_signing_identity`], verify's own checks).
//! There is no unsigned output: the identity is not optional.

use imipsec_itip::{
    CorrelateOptions, DelegationPolicy, ItipMessage, MimeParams, ParseOptions, Role, Side,
    correlate, parse_itip,
};
use imipsec_smime::keys::{Identity, check_signing_identity};
use imipsec_smime::{AlgorithmPolicy, TrustStore};
use mail_parser::{MessageParser, MimeHeaders};
use thiserror::Error;
use time::OffsetDateTime;

use crate::compose::{self, CalendarPart, ComposeError, Envelope, HeaderField, Mailbox};
use crate::content_line::canonical_calendar;
use crate::reason::{Finding, Reason};

/// Longest calendar content line accepted for signing (unfolded), in bytes.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Why no message was produced.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SignError {
    /// A gate would reject the message: the reason code and what was found.
    #[error("refused ({}): {}", .0.code, .0.detail)]
    Refused(Finding<Reason>),
    /// The delegation store could not decide a SENT-BY delegation.
    #[error("could not decide SENT-BY delegation: {detail}")]
    PolicyUnavailable {
        /// Why.
        detail: String,
    },
    /// Building the MIME message failed (bad address, header injection, no recipient).
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// The S/MIME signature could not be made.
    #[error("could not sign")]
    Sign(#[from] imipsec_smime::sign::SignError),
    /// A recipient certificate could not be read.
    #[error("could not read a recipient certificate")]
    Recipient(#[from] imipsec_smime::keys::KeyError),
    /// The message could not be encrypted.
    #[error("could not encrypt")]
    Encrypt(#[from] imipsec_smime::encrypt::EncryptError),
    /// The OpenPGP signature or encryption could not be made.
    #[error("could not sign or encrypt with OpenPGP")]
    OpenPgp(#[from] imipsec_smime::openpgp::WriteError),
}

impl SignError {
    fn refused(reason: Reason, detail: impl Into<String>) -> SignError {
        SignError::Refused(Finding::new(reason, detail))
    }
}

/// Whether the signing identity is checked the way a gate checks a signer.
#[derive(Debug, Clone, Copy)]
pub enum IdentityCheck<'a> {
    /// Refuse an identity a gate would reject at `at`: path validation against `trust` (or,
    /// `None`, against the identity's own chain: times, purpose and algorithms but not
    /// trust), and the algorithm policy.
    Gate {
        /// The anchors (and CRLs) a gate would use, when known.
        trust: Option<&'a TrustStore>,
        /// The algorithm policy a gate would apply.
        algorithms: &'a AlgorithmPolicy,
        /// The time the signature must be acceptable at.
        at: OffsetDateTime,
    },
    /// DANGER: sign with whatever identity is given (tests of a gate's rejections).
    DangerSkip,
}

/// Who signs: an S/MIME identity (certificate and key) or an OpenPGP secret key.
#[derive(Debug, Clone, Copy)]
pub enum SigningIdentity<'a> {
    /// S/MIME (RFC 8551): multipart/signed or opaque SignedData.
    Smime(&'a Identity),
    /// OpenPGP (RFC 3156 §5): PGP/MIME multipart/signed.
    OpenPgp(&'a imipsec_smime::openpgp::Identity),
}

/// What to produce.
pub struct SignRequest<'a> {
    /// The input: an iCalendar object, or an RFC 5322 message with `text/calendar` parts.
    pub input: &'a [u8],
    /// The signing identity. Required: an unsigned iMIP message is what a gate rejects.
    pub identity: SigningIdentity<'a>,
    /// How the identity's certificate is checked before it signs.
    pub identity_check: IdentityCheck<'a>,
    /// From override: `addr` or `Display Name <addr>`.
    pub from: Option<&'a str>,
    /// To override, each `addr` or `Display Name <addr>` (empty: from the calendar or the
    /// input message).
    pub to: &'a [String],
    /// Subject override (default: the input message's, else `Calendar METHOD`).
    pub subject: Option<&'a str>,
    /// Opaque (application/pkcs7-mime) instead of multipart/signed.
    pub opaque: bool,
    /// Signature options (digest, chain, signingTime).
    pub sign_options: imipsec_smime::sign::SignOptions,
    /// PEM recipient certificates (each may hold several) to encrypt to after signing;
    /// none: no encryption.
    pub encrypt_to: &'a [Vec<u8>],
    /// Content cipher for encryption.
    pub cipher: imipsec_smime::encrypt::ContentCipher,
    /// OpenPGP certificates to encrypt to after signing (PGP/MIME, RFC 3156 §4); only with
    /// an OpenPGP identity. `None` or empty: no OpenPGP encryption.
    pub encrypt_to_openpgp: Option<&'a imipsec_smime::openpgp::Certificates>,
    /// The Date header, Unix seconds.
    pub date: i64,
    /// The unique left-hand side of the Message-ID; the right-hand side is the domain of
    /// the From address.
    pub message_id_unique: &'a str,
    /// Decides SENT-BY: the delegation store, or deny-all.
    pub policy: &'a dyn DelegationPolicy,
}

/// One calendar found in the input, with the headers around it.
struct Input {
    calendars: Vec<Vec<u8>>,
    from: Option<String>,
    to: Vec<String>,
    subject: Option<String>,
}

fn is_icalendar(input: &[u8]) -> bool {
    let trimmed = input.strip_prefix(b"\xef\xbb\xbf").unwrap_or(input);
    let start = trimmed
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(trimmed.len());
    trimmed
        .get(start..start + 15)
        .is_some_and(|head| head.eq_ignore_ascii_case(b"BEGIN:VCALENDAR"))
}

fn read_input(input: &[u8]) -> Result<Input, SignError> {
    if is_icalendar(input) {
        let body = input.strip_prefix(b"\xef\xbb\xbf").unwrap_or(input);
        return Ok(Input {
            calendars: vec![body.to_vec()],
            from: None,
            to: Vec::new(),
            subject: None,
        });
    }
    let Some(message) = MessageParser::default().parse(input) else {
        return Err(SignError::refused(
            Reason::MalformedMime,
            "the input is neither an iCalendar object nor an RFC 5322 message",
        ));
    };
    let calendars: Vec<Vec<u8>> = message
        .parts
        .iter()
        .filter(|part| {
            part.content_type().is_some_and(|content_type| {
                content_type.ctype().eq_ignore_ascii_case("text")
                    && content_type
                        .subtype()
                        .is_some_and(|subtype| subtype.eq_ignore_ascii_case("calendar"))
            })
        })
        .map(|part| part.contents().to_vec())
        .collect();
    let first_address = |address: Option<&mail_parser::Address<'_>>| {
        address
            .and_then(|address| address.first())
            .and_then(|address| address.address())
            .map(str::to_owned)
    };
    let to = message
        .to()
        .map(|address| {
            address
                .iter()
                .filter_map(|address| address.address().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(Input {
        calendars,
        from: first_address(message.from()),
        to,
        subject: message.subject().map(str::to_owned),
    })
}

/// The e-mail addresses of an identity's certificate: subjectAltName rfc822Name entries
/// (RFC 8550 section 3), else the subject's emailAddress attributes.
pub fn identity_emails(identity: &Identity) -> Vec<String> {
    let certificate = identity.certificate();
    let mut emails: Vec<String> = Vec::new();
    if let Some(names) = certificate.subject_alt_names() {
        for name in names.iter() {
            if let Some(email) = name.email() {
                emails.push(email.to_owned());
            }
        }
    }
    if emails.is_empty() {
        for entry in certificate.subject_name().entries() {
            let is_email = entry
                .object()
                .nid()
                .short_name()
                .is_ok_and(|name| name == "emailAddress");
            if is_email && let Ok(value) = entry.data().to_string() {
                emails.push(value);
            }
        }
    }
    emails
}

/// One validated calendar and who it speaks for.
struct Checked {
    text: String,
    itip: ItipMessage,
    actor: Option<String>,
    via: Option<String>,
    counterparts: Vec<String>,
}

fn address_of(address: &imipsec_itip::CalAddress) -> Option<String> {
    address.addr_spec.clone().map(String::from)
}

fn check_calendar(
    bytes: &[u8],
    emails: &[String],
    policy: &dyn DelegationPolicy,
) -> Result<Checked, SignError> {
    let canonical = canonical_calendar(bytes, MAX_LINE_BYTES)
        .map_err(|error| SignError::refused(Reason::MalformedIcalendar, error.to_string()))?;
    let text = String::from_utf8(canonical)
        .map_err(|error| SignError::refused(Reason::MalformedIcalendar, error.to_string()))?;
    let options = ParseOptions::default();
    let itip = parse_itip(text.as_bytes(), &MimeParams::default(), &options).map_err(|error| {
        let reason = Reason::from(&error);
        SignError::refused(reason, error.to_string())
    })?;
    // Who the message goes to: the other side of the exchange.
    let mut counterparts: Vec<String> = Vec::new();
    for component in &itip.components {
        let addresses: Vec<Option<String>> = match itip.method.side() {
            Side::Organizer => component
                .attendees
                .iter()
                .map(|attendee| address_of(&attendee.address))
                .collect(),
            Side::Attendee => vec![
                component
                    .organizer
                    .as_ref()
                    .and_then(|organizer| address_of(&organizer.address)),
            ],
        };
        for address in addresses.into_iter().flatten() {
            if !counterparts.contains(&address) {
                counterparts.push(address);
            }
        }
    }
    let signers: Vec<&str> = emails.iter().map(String::as_str).collect();
    let correlation = correlate(&itip, &signers, policy, &CorrelateOptions::default());
    if let Some(failure) = correlation.failure() {
        if let imipsec_itip::Failure::PolicyUnavailable(unavailable) = failure {
            return Err(SignError::PolicyUnavailable {
                detail: unavailable.detail.clone(),
            });
        }
        let reason = Reason::from(failure);
        return Err(SignError::refused(
            reason,
            format!(
                "the identity ({}) may not send this: {failure}",
                emails.join(", ")
            ),
        ));
    }
    let authorization = correlation.authorization();
    if authorization.is_some_and(|authorization| authorization.role == Role::Delegator) {
        // A delegator's REQUEST goes to its delegates only (RFC 5546 section 3.2.2.3).
        counterparts = authorization
            .map(|authorization| {
                authorization
                    .delegates
                    .iter()
                    .filter_map(address_of)
                    .collect()
            })
            .unwrap_or_default();
    }
    Ok(Checked {
        text,
        actor: authorization.and_then(|authorization| address_of(&authorization.actor)),
        via: authorization
            .and_then(|authorization| authorization.via.as_ref())
            .and_then(address_of),
        counterparts,
        itip,
    })
}

fn filename(method: imipsec_itip::Method) -> &'static str {
    use imipsec_itip::Method;
    match method {
        Method::Publish => "event.ics",
        Method::Request | Method::Add => "invite.ics",
        Method::Reply => "reply.ics",
        Method::Cancel => "cancel.ics",
        Method::Refresh => "refresh.ics",
        Method::Counter => "counter.ics",
        Method::DeclineCounter => "declinecounter.ics",
    }
}

fn describe(checked: &Checked) -> String {
    use imipsec_itip::Method;
    let what = match checked.itip.method {
        Method::Publish => "publishes a calendar entry",
        Method::Request => "is an invitation or an update",
        Method::Reply => "is a reply to an invitation",
        Method::Add => "adds instances to a recurring entry",
        Method::Cancel => "cancels a calendar entry",
        Method::Refresh => "asks for the latest version of a calendar entry",
        Method::Counter => "proposes a change to a calendar entry",
        Method::DeclineCounter => "declines a proposed change",
    };
    let uids: Vec<&str> = checked
        .itip
        .components
        .iter()
        .filter_map(|component| component.uid.as_deref())
        .collect();
    let mut text = format!(
        "This message {what} (iTIP {}, {}).\r\n",
        checked.itip.method, checked.itip.kind
    );
    if let Some(actor) = &checked.actor {
        text.push_str(&format!("Sent for: {actor}\r\n"));
    }
    if let Some(via) = &checked.via {
        text.push_str(&format!("Sent by: {via}\r\n"));
    }
    if !uids.is_empty() {
        text.push_str(&format!("UID: {}\r\n", uids.join(", ")));
    }
    text.push_str("Open the attached calendar data with a calendar application.\r\n");
    text
}

/// Validate, compose, sign and (optionally) encrypt. Returns the complete RFC 5322 message.
pub fn sign_message(request: &SignRequest<'_>) -> Result<Vec<u8>, SignError> {
    let input = read_input(request.input)?;
    if input.calendars.is_empty() {
        return Err(SignError::refused(
            Reason::NoCalendar,
            "the input has no text/calendar part",
        ));
    }
    let emails = signer_emails(request)?;
    let mut checked = Vec::with_capacity(input.calendars.len());
    for calendar in &input.calendars {
        checked.push(check_calendar(calendar, &emails, request.policy)?);
    }

    let parts: Vec<CalendarPart> = checked
        .iter()
        .map(|checked| CalendarPart {
            text: checked.text.clone(),
            method: checked.itip.method.as_str().to_owned(),
            component: checked.itip.kind.as_str().to_owned(),
            filename: filename(checked.itip.method).to_owned(),
            description: describe(checked),
        })
        .collect();
    let mut entity = compose::calendar_entity(&parts)?;

    let identity = match request.identity {
        SigningIdentity::Smime(identity) => identity,
        SigningIdentity::OpenPgp(key) => {
            entity = openpgp_protect(request, key, &entity)?;
            return finish(request, input, &checked, &entity);
        }
    };
    entity = if request.opaque {
        imipsec_smime::sign::sign_opaque(&entity, identity, &request.sign_options)?
    } else {
        imipsec_smime::sign::sign_detached(&entity, identity, &request.sign_options)?
    };
    if !request.encrypt_to.is_empty() {
        let mut recipients = Vec::new();
        for pem in request.encrypt_to {
            recipients.extend(imipsec_smime::keys::certificates_from_pem(pem)?);
        }
        entity = imipsec_smime::encrypt::encrypt(&entity, &recipients, request.cipher)?;
    }
    finish(request, input, &checked, &entity)
}

/// The identity's emails after the checks a gate would make of its signature: S/MIME path
/// validation, or the OpenPGP certificate at the signing time. A refusal names the reason a
/// gate would give.
fn signer_emails(request: &SignRequest<'_>) -> Result<Vec<String>, SignError> {
    let emails = match (request.identity, request.identity_check) {
        (
            SigningIdentity::Smime(identity),
            IdentityCheck::Gate {
                trust,
                algorithms,
                at,
            },
        ) => {
            if let Err(failure) = check_signing_identity(identity, trust, algorithms, at) {
                let reason = Reason::from(&failure);
                return Err(SignError::refused(
                    reason,
                    format!("a gate would reject the identity's certificate: {failure}"),
                ));
            }
            identity_emails(identity)
        }
        (SigningIdentity::Smime(identity), IdentityCheck::DangerSkip) => identity_emails(identity),
        (SigningIdentity::OpenPgp(key), IdentityCheck::Gate { algorithms, at, .. }) => key
            .signer_emails(at, &openpgp_policy(algorithms))
            .map_err(|failure| {
                let reason = Reason::from(&imipsec_smime::Failure::OpenPgp(failure.clone()));
                SignError::refused(
                    reason,
                    format!("a gate would reject the OpenPGP key: {failure}"),
                )
            })?,
        (SigningIdentity::OpenPgp(key), IdentityCheck::DangerSkip) => key.user_id_emails(),
    };
    if emails.is_empty() {
        return Err(SignError::refused(
            Reason::SignerNotCorrelated,
            "the identity's certificate names no e-mail address",
        ));
    }
    Ok(emails)
}

fn openpgp_policy(algorithms: &AlgorithmPolicy) -> imipsec_smime::openpgp::Policy {
    imipsec_smime::openpgp::Policy {
        min_rsa_bits: algorithms.min_rsa_bits,
        danger_allow_sha1: algorithms.danger_allow_sha1,
    }
}

/// PGP/MIME: sign (RFC 3156 §5), then encrypt the signed entity when asked (§6.1, nested:
/// what every PGP/MIME reader understands).
fn openpgp_protect(
    request: &SignRequest<'_>,
    key: &imipsec_smime::openpgp::Identity,
    entity: &[u8],
) -> Result<Vec<u8>, SignError> {
    let (algorithms, at) = match request.identity_check {
        IdentityCheck::Gate { algorithms, at, .. } => (algorithms.clone(), at),
        IdentityCheck::DangerSkip => (
            AlgorithmPolicy::default(),
            request
                .sign_options
                .signing_time
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        ),
    };
    let policy = openpgp_policy(&algorithms);
    let boundary = |what: &str| format!("=_pgp-{what}-{}", request.message_id_unique);
    let signed = imipsec_smime::openpgp::pgp_mime_signed(entity, key, at, &policy, &boundary("s"))?;
    match request.encrypt_to_openpgp {
        Some(recipients) if !recipients.is_empty() => {
            Ok(imipsec_smime::openpgp::pgp_mime_encrypted(
                &signed,
                recipients,
                at,
                &policy,
                &boundary("e"),
            )?)
        }
        _ => Ok(signed),
    }
}

/// The outer headers around the finished entity.
fn finish(
    request: &SignRequest<'_>,
    input: Input,
    checked: &[Checked],
    entity: &[u8],
) -> Result<Vec<u8>, SignError> {
    let first = checked.first();
    // From and To: the flag, else the input message's header, else the calendar (the
    // sender is the signer acting as SENT-BY, else the actor; RFC 6047 section 2.2 and
    // section 3: REPLY, COUNTER and REFRESH go from the attendee to the organizer).
    let from = match request.from {
        Some(text) => Mailbox::parse(HeaderField::From, text)?,
        None => input
            .from
            .or_else(|| first.and_then(|checked| checked.via.clone()))
            .or_else(|| first.and_then(|checked| checked.actor.clone()))
            .map(Mailbox::address)
            .ok_or(ComposeError::NoSender)?,
    };
    let to: Vec<Mailbox> = if !request.to.is_empty() {
        request
            .to
            .iter()
            .map(|text| Mailbox::parse(HeaderField::To, text))
            .collect::<Result<_, _>>()?
    } else if !input.to.is_empty() {
        input.to.into_iter().map(Mailbox::address).collect()
    } else {
        let mut to: Vec<String> = Vec::new();
        for checked in checked {
            for address in &checked.counterparts {
                if !address.eq_ignore_ascii_case(&from.address) && !to.contains(address) {
                    to.push(address.clone());
                }
            }
        }
        to.into_iter().map(Mailbox::address).collect()
    };
    let subject = request
        .subject
        .map(str::to_owned)
        .or(input.subject)
        .unwrap_or_else(|| {
            let methods: Vec<&str> = checked
                .iter()
                .map(|checked| checked.itip.method.as_str())
                .collect();
            format!("Calendar {}", methods.join(", "))
        });
    let domain = from
        .address
        .rsplit_once('@')
        .map_or("imipsec.invalid", |(_, domain)| domain);
    let message_id = format!("{}@{domain}", request.message_id_unique);
    let envelope = Envelope {
        from,
        to,
        subject,
        date: request.date,
        message_id,
    };
    Ok(compose::message(&envelope, entity)?)
}
