//! The verification step: from an S/MIME [`Inspection`] to a [`VerifiedMessage`].
//!
//! RFC 6047 section 3 (Security Considerations): "Spoofing the Organizer ... Spoofing the
//! Attendee ... S/MIME ... SHOULD be used to authenticate". A calendar is only processed when
//! it lies inside a signature layer that verified; a calendar outside every verified signed
//! region rejects the whole message (`unprotected-calendar`) rather than being skipped, so a
//! forwarded signed invitation cannot smuggle an unsigned calendar next to it.
//!
//! What is a calendar is decided by [`imipsec_smime::calendar`], the one definition the gate
//! and the audit share: `text/calendar`, but also `application/ics`, `text/x-vcalendar`,
//! `.ics` attachments and bodies that begin with `BEGIN:VCALENDAR`. Every such part inside a
//! verified signed region is evaluated as iTIP like a `text/calendar` part (a server may act
//! on any of them); every one outside is `unprotected-calendar`.
//!
//! Forwarded messages: a calendar inside a forwarded `message/rfc822` or `message/global`
//! (attached, or the whole body of the message) is never evaluated as this message's iTIP
//! and always rejects the message (`unprotected-calendar`), signed or not, inside this
//! message's signed region or not: Cyrus processes the first calendar it finds in a forwarded
//! message, while the forward's own signature belongs to another message (its signer, date
//! and recipients are not this message's, and it was never checked against this message's
//! event state). Whoever wants a calendar processed sends it as the message itself.
//!
//! Charsets: only calendars whose `charset` is absent, UTF-8 or US-ASCII are evaluated; any
//! other charset is `malformed-mime` (a UTF-7 calendar is another calendar to mail-parser,
//! which decodes it, than to a reader that takes the bytes as UTF-8).

use imipsec_smime::{
    CalendarEvidence, HeaderField, Inspection, LayerOutcome, SignerReport as SmimeSignerReport,
    VerifiedSigner, calendar,
};

use crate::reason::{Finding, Reason, Warning};
use crate::verdict::{LayerKind, LayerReport, LayerStatus, SignerReport};

/// How the calendar parts of a [`VerifiedMessage`] were authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentication {
    /// Every calendar part lies inside a verified signature layer.
    Signed,
    /// DANGER: the message carried no signature and the caller allowed unsigned mail.
    DangerUnsigned,
}

/// One calendar part that may be processed, with who vouches for it. Fields are private to
/// this module: only the verification step fills them.
#[derive(Debug, Clone)]
pub struct VerifiedCalendar {
    body: Vec<u8>,
    media_type: String,
    body_range: Option<std::ops::Range<usize>>,
    method: Option<String>,
    charset: Option<String>,
    component: Option<String>,
    /// The proofs (S/MIME `VerifiedSigner`, constructible only by the S/MIME crate) of every
    /// verified signature covering this part; empty only in the danger-unsigned mode.
    signers: Vec<VerifiedSigner>,
    path: String,
    /// The body was received as it is but with bare LF line ends, which the canonical copy
    /// made CRLF (a message stored as mbox or Maildir, an untransformed part).
    received_with_bare_lf: bool,
}

impl VerifiedCalendar {
    /// `offset` into [`body`](Self::body) as an offset into the part as received: a body
    /// received with bare LF line ends and made CRLF counts each inserted CR back out
    /// (issue #12: diagnostics count the bytes as received). Otherwise `offset` itself.
    pub fn received_offset(&self, offset: usize) -> usize {
        if !self.received_with_bare_lf {
            return offset;
        }
        let before = self.body.get(..offset).unwrap_or(&self.body);
        offset - before.iter().filter(|&&byte| byte == b'\r').count()
    }

    /// The calendar bytes after transfer decoding, exactly as signed.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The Content-Type `method` parameter.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// The Content-Type `charset` parameter.
    pub fn charset(&self) -> Option<&str> {
        self.charset.as_deref()
    }

    /// The Content-Type `component` parameter.
    pub fn component(&self) -> Option<&str> {
        self.component.as_deref()
    }

    /// The verified signers whose signatures cover this part (empty when unsigned).
    pub fn signers(&self) -> &[VerifiedSigner] {
        &self.signers
    }

    /// The e-mail addresses of those signers (normalised, deduplicated), for correlation.
    pub fn signer_emails(&self) -> Vec<&str> {
        let mut emails: Vec<&str> = Vec::new();
        for signer in &self.signers {
            for email in signer.emails() {
                if !emails.contains(&email.normalized()) {
                    emails.push(email.normalized());
                }
            }
        }
        emails
    }

    /// The MIME part number (`"1.2"`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The part's media type (`text/calendar`, `application/ics`, ...), lowercase.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The part's body (before transfer decoding) as offsets into the received message;
    /// `None` inside decrypted or opaque-signed content.
    pub fn body_range(&self) -> Option<std::ops::Range<usize>> {
        self.body_range.clone()
    }
}

/// A message whose calendar parts passed the S/MIME step. Only the verification step of
/// [`Pipeline::evaluate`](crate::Pipeline::evaluate) builds one (the fields are private to
/// this module), so the processing step cannot be handed raw bytes.
#[derive(Debug, Clone)]
pub struct VerifiedMessage {
    calendars: Vec<VerifiedCalendar>,
    authentication: Authentication,
}

impl VerifiedMessage {
    /// The calendar parts, in MIME order.
    pub fn calendars(&self) -> &[VerifiedCalendar] {
        &self.calendars
    }

    /// How the calendars were authenticated.
    pub fn authentication(&self) -> Authentication {
        self.authentication
    }
}

/// What the verification step found.
#[derive(Debug)]
pub(crate) struct Verification {
    /// `Some` exactly when no reason was found.
    pub(crate) message: Option<VerifiedMessage>,
    pub(crate) reasons: Vec<Finding<Reason>>,
    pub(crate) warnings: Vec<Finding<Warning>>,
    pub(crate) layers: Vec<LayerReport>,
}

/// The reason a layer failure maps to (the typed conversion, kept as a function for the
/// callers that map over failures).
pub(crate) fn failure_reason(failure: &imipsec_smime::Failure) -> Reason {
    Reason::from(failure)
}

fn signer_report(signer: &VerifiedSigner) -> SignerReport {
    SignerReport {
        emails: signer
            .emails()
            .iter()
            .map(|email| email.normalized().to_owned())
            .collect(),
        subject: signer.subject().to_owned(),
        issuer: signer.issuer().to_owned(),
        serial: signer.serial_hex().to_owned(),
        chain: "valid".to_owned(),
    }
}

fn failed_signer_report(signer: &SmimeSignerReport, layer_failure: Reason) -> SignerReport {
    SignerReport {
        emails: signer
            .emails
            .iter()
            .map(|email| email.normalized().to_owned())
            .collect(),
        subject: signer.subject.clone().unwrap_or_default(),
        issuer: String::new(),
        serial: String::new(),
        chain: signer
            .failure
            .as_ref()
            .map_or(layer_failure, failure_reason)
            .code()
            .to_owned(),
    }
}

/// A MIME path as a dotted, one-based part number (`""` for the whole message, `"1.2"` for
/// the second child of the first child), like IMAP section numbers.
pub(crate) fn part_number(path: &[usize]) -> String {
    path.iter()
        .map(|index| (index + 1).to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// A part number for humans: `the message body` or `part 1.2`.
pub(crate) fn part_name(number: &str) -> String {
    if number.is_empty() {
        "the message body".to_owned()
    } else {
        format!("part {number}")
    }
}

fn layer_kind(kind: imipsec_smime::LayerKind) -> LayerKind {
    match (kind.is_openpgp(), kind.is_signature()) {
        (false, true) => LayerKind::Signed,
        (false, false) => LayerKind::Encrypted,
        (true, true) => LayerKind::PgpSigned,
        (true, false) => LayerKind::PgpEncrypted,
    }
}

/// The verification step. `from` and `date` are the outer header values, for the warnings.
pub(crate) fn verify(
    inspection: &Inspection,
    at: time::OffsetDateTime,
    tolerance: time::Duration,
    danger_allow_unsigned: bool,
) -> Verification {
    let mut reasons = Vec::new();
    let mut warnings = Vec::new();
    let mut layers = Vec::new();
    let mut any_signature = false;

    for layer in inspection.layers() {
        let path = part_number(layer.path());
        let report = match &layer.outcome() {
            LayerOutcome::Verified { signers } => {
                any_signature = true;
                LayerReport {
                    kind: layer_kind(layer.kind()),
                    path: path.clone(),
                    status: LayerStatus::Verified,
                    failure: None,
                    authenticated: None,
                    signers: signers.iter().map(signer_report).collect(),
                }
            }
            LayerOutcome::SignatureFailed { failure, signers } => {
                any_signature = true;
                let reason = failure_reason(failure);
                reasons.push(Finding::new(
                    reason,
                    format!("signature layer at {}: {failure}", part_name(&path)),
                ));
                LayerReport {
                    kind: layer_kind(layer.kind()),
                    path: path.clone(),
                    status: LayerStatus::SignatureFailed,
                    failure: Some(reason),
                    authenticated: None,
                    signers: signers
                        .iter()
                        .map(|signer| failed_signer_report(signer, reason))
                        .collect(),
                }
            }
            LayerOutcome::Decrypted { authenticated } => {
                if !authenticated {
                    warnings.push(Finding::new(
                        Warning::UnauthenticatedEncryption,
                        format!(
                            "encryption layer at {} uses a cipher without integrity (CBC)",
                            part_name(&path)
                        ),
                    ));
                }
                LayerReport {
                    kind: layer_kind(layer.kind()),
                    path: path.clone(),
                    status: LayerStatus::Decrypted,
                    failure: None,
                    authenticated: Some(*authenticated),
                    signers: Vec::new(),
                }
            }
            LayerOutcome::NotDecrypted { failure } => {
                let reason = failure_reason(failure);
                reasons.push(Finding::new(
                    reason,
                    format!("encryption layer at {}: {failure}", part_name(&path)),
                ));
                LayerReport {
                    kind: layer_kind(layer.kind()),
                    path: path.clone(),
                    status: LayerStatus::NotDecrypted,
                    failure: Some(reason),
                    authenticated: None,
                    signers: Vec::new(),
                }
            }
        };
        layers.push(report);
    }

    for mismatch in inspection.header_mismatches() {
        let field = match mismatch.field {
            HeaderField::From => "From",
            HeaderField::To => "To",
            HeaderField::Subject => "Subject",
            _ => "a protected header",
        };
        warnings.push(Finding::new(
            Warning::HeaderMismatch,
            format!(
                "{field}: outer {:?}, protected {:?} (RFC 9788)",
                mismatch.outer, mismatch.inner
            ),
        ));
    }

    let mut calendars = Vec::new();
    let mut all_signer_emails: Vec<String> = Vec::new();
    for leaf in inspection.leaves() {
        let Some(evidence) = leaf.calendar() else {
            continue;
        };
        let what = match evidence {
            CalendarEvidence::FileName => format!("{} named as a calendar", leaf.content_type()),
            CalendarEvidence::Content => {
                format!("{} holding a calendar", leaf.content_type())
            }
            _ => leaf.content_type().to_owned(),
        };
        let part = part_name(&part_number(leaf.path()));
        if leaf.is_forwarded() {
            reasons.push(Finding::new(
                Reason::UnprotectedCalendar,
                format!(
                    "{what} at {part} is inside a forwarded message: it is never evaluated \
                     as this message's iTIP"
                ),
            ));
            continue;
        }
        let signers: Vec<&VerifiedSigner> = leaf.signers(inspection);
        if signers.is_empty() && any_signature {
            reasons.push(Finding::new(
                Reason::UnprotectedCalendar,
                format!("{what} at {part} lies outside every verified signed region"),
            ));
            continue;
        }
        if !calendar::is_calendar_charset(leaf.param("charset")) {
            reasons.push(Finding::new(
                Reason::MalformedMime,
                format!(
                    "{what} at {part} has charset {:?}: only UTF-8 and US-ASCII calendars \
                     are evaluated",
                    leaf.param("charset").unwrap_or_default()
                ),
            ));
            continue;
        }
        for signer in &signers {
            for email in signer.emails() {
                let email = email.normalized().to_owned();
                if !all_signer_emails.contains(&email) {
                    all_signer_emails.push(email);
                }
            }
        }
        calendars.push(VerifiedCalendar {
            body: leaf.body().to_vec(),
            media_type: leaf.content_type().to_owned(),
            body_range: leaf.body_range().clone(),
            method: leaf.param("method").map(str::to_owned),
            charset: leaf.param("charset").map(str::to_owned),
            component: leaf.param("component").map(str::to_owned),
            signers: signers.into_iter().cloned().collect(),
            path: part_number(leaf.path()),
            // Untransformed (7bit, 8bit, binary) in a message received with bare LF: the
            // received range is the body without the CRs the canonical copy added.
            received_with_bare_lf: inspection.canonicalized()
                && leaf.body_range().is_some_and(|range| {
                    leaf.body().len() - leaf.body().iter().filter(|&&b| b == b'\r').count()
                        == range.len()
                }),
        });
    }

    let authentication = if any_signature {
        Authentication::Signed
    } else if danger_allow_unsigned {
        Authentication::DangerUnsigned
    } else {
        reasons.push(Finding::new(
            Reason::Unsigned,
            "the message carries no S/MIME signature",
        ));
        Authentication::DangerUnsigned
    };
    let layer_failed = layers.iter().any(|layer| layer.failure.is_some());
    if calendars.is_empty()
        && !layer_failed
        && !reasons
            .iter()
            .any(|r| r.code == Reason::UnprotectedCalendar)
    {
        reasons.push(Finding::new(
            Reason::NoCalendar,
            "no calendar part in the message",
        ));
    }

    // Warnings about the envelope: only meaningful for signed mail.
    if any_signature {
        let outer = &inspection.outer();
        for from in &outer.from {
            let from = imipsec_smime::normalize_email(from);
            if !all_signer_emails.is_empty() && !all_signer_emails.contains(&from) {
                warnings.push(Finding::new(
                    Warning::FromMismatch,
                    format!(
                        "From <{from}> is not a signer ({}); the message may be forwarded",
                        all_signer_emails.join(", ")
                    ),
                ));
            }
        }
        for layer in inspection.layers() {
            if let LayerOutcome::Verified { signers } = &layer.outcome() {
                for signer in signers {
                    if let Some(skew) = signing_time_skew(signer, outer.date, at, tolerance) {
                        warnings.push(Finding::new(Warning::SigningTimeSkew, skew));
                    }
                    for unchecked in signer.revocation_warnings() {
                        warnings.push(Finding::new(
                            Warning::RevocationUnchecked,
                            unchecked.clone(),
                        ));
                    }
                }
            }
        }
    }

    let message = if reasons.is_empty() {
        Some(VerifiedMessage {
            calendars,
            authentication,
        })
    } else {
        None
    };
    Verification {
        message,
        reasons,
        warnings,
        layers,
    }
}

/// The `signing-time-skew` detail, if the signer's signingTime is too far from Date or in the
/// future relative to the evaluation time.
fn signing_time_skew(
    signer: &VerifiedSigner,
    date: Option<time::OffsetDateTime>,
    at: time::OffsetDateTime,
    tolerance: time::Duration,
) -> Option<String> {
    let signing_time = signer.signing_time()?;
    if signing_time > at {
        return Some(format!(
            "signingTime {signing_time} is after the evaluation time {at}"
        ));
    }
    let date = date?;
    if (signing_time - date).abs() > tolerance {
        return Some(format!(
            "signingTime {signing_time} differs from Date {date} by more than {tolerance}"
        ));
    }
    None
}
