//! The MIME walk: find every security layer of a message and report, for every leaf part,
//! which layers enclose it.

use std::sync::Arc;

use time::OffsetDateTime;

mod walk;

use walk::mime_error;

use crate::calendar::CalendarEvidence;
use crate::cms::{self, Context, SignerReport, VerifiedSigner};
use crate::error::{Failure, SmimeError};
use crate::keys::Identity;
use crate::limits::{Budget, LimitKind, Limits};
use crate::mime;
use crate::policy::AlgorithmPolicy;
use crate::revocation::{RevocationMode, RevocationSource};
use crate::trust::{Revocation, TrustStore};

impl std::fmt::Debug for InspectOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InspectOptions")
            .field("trust", &self.trust)
            .field("at", &self.at)
            .field("revocation", &self.revocation)
            .field("revocation_source", &self.revocation_source.is_some())
            .field("policy", &self.policy)
            .field("identities", &self.identities.len())
            .field("limits", &self.limits)
            .field("danger_decrypt_non_root", &self.danger_decrypt_non_root)
            .field("openpgp", &self.openpgp)
            .finish()
    }
}

/// Everything [`inspect`] needs besides the message: trust, time, revocation, policy, keys,
/// limits.
#[derive(Clone)]
pub struct InspectOptions<'a> {
    /// Trust anchors and CRLs.
    pub trust: &'a TrustStore,
    /// Evaluation time for certificate validity and CRLs (the library never reads the clock).
    pub at: OffsetDateTime,
    /// How a certificate without a usable revocation answer is treated.
    pub revocation: RevocationMode,
    /// Where OCSP responses and CRLs come from beyond the given and embedded CRLs (`None`:
    /// only those). Every answer is validated here before it counts.
    pub revocation_source: Option<Arc<dyn RevocationSource>>,
    /// Acceptable algorithms.
    pub policy: &'a AlgorithmPolicy,
    /// Keys to decrypt with (may be empty: encrypted layers are then `no-decryption-key`).
    pub identities: &'a [Identity],
    /// Bounds on the work.
    pub limits: &'a Limits,
    /// Decrypt encrypted parts that are not the root of the message. Off by default: EFAIL's
    /// direct exfiltration wraps a captured ciphertext in attacker-controlled MIME
    /// ("Re: What's up Johnny?", USENIX Security 2018).
    pub danger_decrypt_non_root: bool,
    /// OpenPGP certificates the operator vouches for and secret keys to decrypt with, for
    /// PGP/MIME layers (RFC 3156). `None`: a PGP/MIME signature fails `untrusted-certificate`
    /// (no signer can be trusted) and PGP/MIME encryption is `no-decryption-key`. The
    /// algorithm policy and `danger_decrypt_non_root` apply to them as to S/MIME.
    pub openpgp: Option<&'a imipsec_openpgp::Keyring>,
}

/// The kind of a security layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LayerKind {
    /// `multipart/signed` (RFC 1847 §2.1, RFC 8551 §3.5.3): detached signature.
    MultipartSigned,
    /// `application/pkcs7-mime; smime-type=signed-data` (RFC 8551 §3.5.2): opaque signature.
    OpaqueSigned,
    /// `application/pkcs7-mime; smime-type=enveloped-data` (RFC 8551 §3.3): CBC, unauthenticated.
    Enveloped,
    /// `application/pkcs7-mime; smime-type=authEnveloped-data` (RFC 8551 §3.4, RFC 5083).
    AuthEnveloped,
    /// `multipart/encrypted` (RFC 1847 §2.2) with a protocol other than PGP/MIME's: not
    /// processed.
    MultipartEncrypted,
    /// `multipart/signed; protocol="application/pgp-signature"` (RFC 3156 §5): an OpenPGP
    /// detached signature.
    PgpMultipartSigned,
    /// `multipart/encrypted; protocol="application/pgp-encrypted"` (RFC 3156 §4): an OpenPGP
    /// encrypted message (SEIPD: integrity protected, so [`LayerOutcome::Decrypted`] is
    /// always `authenticated`).
    PgpMultipartEncrypted,
    /// The signatures inside a PGP/MIME encrypted message (RFC 3156 §6.2, signed and
    /// encrypted in one OpenPGP message): a signature layer at the same path as its
    /// [`LayerKind::PgpMultipartEncrypted`] layer, enclosing the decrypted content.
    PgpEncryptedSigned,
}

impl LayerKind {
    /// Whether this is a signature layer (its outcome is `Verified` or `SignatureFailed`).
    pub fn is_signature(self) -> bool {
        matches!(
            self,
            LayerKind::MultipartSigned
                | LayerKind::OpaqueSigned
                | LayerKind::PgpMultipartSigned
                | LayerKind::PgpEncryptedSigned
        )
    }

    /// Whether this is an OpenPGP (RFC 3156) layer rather than S/MIME (RFC 8551).
    pub fn is_openpgp(self) -> bool {
        matches!(
            self,
            LayerKind::PgpMultipartSigned
                | LayerKind::PgpMultipartEncrypted
                | LayerKind::PgpEncryptedSigned
        )
    }
}

/// One security layer found in the message.
#[derive(Debug, Clone)]
pub struct Layer {
    /// What kind of layer.
    pub(crate) kind: LayerKind,
    /// Position of the layer's entity in the MIME tree: child indexes from the root entity.
    /// The content of an opaque-signed or decrypted layer is its child 0.
    pub(crate) path: Vec<usize>,
    /// What verification or decryption gave.
    pub(crate) outcome: LayerOutcome,
}

/// The result of processing one layer.
#[derive(Debug, Clone)]
pub enum LayerOutcome {
    /// Every SignerInfo verified and chains to a trust anchor.
    Verified {
        /// The proofs, one per SignerInfo.
        signers: Vec<VerifiedSigner>,
    },
    /// The signature layer did not verify; `failure` is the first reason (SignerInfo order).
    SignatureFailed {
        /// Why.
        failure: Failure,
        /// Per-SignerInfo diagnostics (empty when the SignedData itself was unusable).
        signers: Vec<SignerReport>,
    },
    /// Decrypted. `authenticated` is `false` for CBC EnvelopedData, whose ciphertext is
    /// malleable (EFAIL CBC gadgets): only a signature inside it authenticates the content.
    Decrypted {
        /// AES-GCM AuthEnvelopedData (`true`) or unauthenticated EnvelopedData (`false`).
        authenticated: bool,
    },
    /// Not decrypted: the content of the layer is not reported.
    NotDecrypted {
        /// Why.
        failure: Failure,
    },
}

impl LayerOutcome {
    /// `true` for [`LayerOutcome::Verified`].
    pub fn is_verified(&self) -> bool {
        matches!(self, LayerOutcome::Verified { .. })
    }

    /// The failure, if the layer failed.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            LayerOutcome::SignatureFailed { failure, .. }
            | LayerOutcome::NotDecrypted { failure } => Some(failure),
            _ => None,
        }
    }
}

/// A leaf MIME part (not multipart, not a security layer).
#[derive(Debug, Clone)]
pub struct Leaf {
    /// Lowercased `type/subtype`.
    pub(crate) content_type: String,
    /// Content-Type parameters, names lowercased, values as given.
    pub(crate) params: Vec<(String, String)>,
    /// The body after transfer decoding (base64 / quoted-printable), charset untouched.
    pub(crate) body: Vec<u8>,
    /// Position in the MIME tree (see [`Layer::path`]).
    pub(crate) path: Vec<usize>,
    /// Indexes into [`Inspection::layers`] of the layers enclosing this leaf, outermost first.
    pub(crate) enclosing: Vec<usize>,
    /// Whether, and why, this leaf is calendar content ([`crate::calendar`]): the one
    /// definition the pipeline, the gate and the audit share.
    pub(crate) calendar: Option<CalendarEvidence>,
    /// The leaf lies inside a forwarded message (a `message/rfc822` or `message/global` part
    /// that is not the whole content of a security layer, or the body of the message itself).
    /// Signatures inside a forwarded message are not evaluated: its leaves are never signed
    /// by this message's layers in the sense of its own iTIP.
    pub(crate) forwarded: bool,
    /// The leaf's body (before transfer decoding) as offsets into the received message, for
    /// comparison with another parser's reading; `None` inside decrypted or opaque-signed
    /// content, which no MIME parser sees.
    pub(crate) body_range: Option<std::ops::Range<usize>>,
    /// The [`Inspection`] this leaf belongs to.
    pub(crate) owner: InspectionToken,
}

impl Layer {
    /// What kind of layer.
    pub fn kind(&self) -> LayerKind {
        self.kind
    }

    /// Position of the layer's entity in the MIME tree: child indexes from the root entity.
    /// The content of an opaque-signed or decrypted layer is its child 0.
    pub fn path(&self) -> &[usize] {
        &self.path
    }

    /// What verification or decryption gave.
    pub fn outcome(&self) -> &LayerOutcome {
        &self.outcome
    }
}

impl Leaf {
    /// Lowercased `type/subtype`.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// Content-Type parameters, names lowercased, values as given.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The body after transfer decoding (base64 / quoted-printable), charset untouched.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Position in the MIME tree (see [`Layer::path`]).
    pub fn path(&self) -> &[usize] {
        &self.path
    }

    /// Indexes into [`Inspection::layers`] of the layers enclosing this leaf, outermost
    /// first.
    pub fn enclosing(&self) -> &[usize] {
        &self.enclosing
    }

    /// Whether, and why, this leaf is calendar content ([`crate::calendar`]): the one
    /// definition the pipeline, the gate and the audit share.
    pub fn calendar(&self) -> Option<&CalendarEvidence> {
        self.calendar.as_ref()
    }

    /// The leaf lies inside a forwarded message (a `message/rfc822` or `message/global`
    /// part that is not the whole content of a security layer, or the body of the message
    /// itself). Signatures inside a forwarded message are not evaluated.
    pub fn is_forwarded(&self) -> bool {
        self.forwarded
    }

    /// The leaf's body (before transfer decoding) as offsets into the received message;
    /// `None` inside decrypted or opaque-signed content, which no MIME parser sees.
    pub fn body_range(&self) -> Option<std::ops::Range<usize>> {
        self.body_range.clone()
    }

    /// A Content-Type parameter by name (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether the leaf lies inside at least one verified signature layer and inside no failed
    /// one. Always `false` against another message's inspection: a leaf is judged only by
    /// the layers of the walk that found it.
    pub fn is_signed(&self, inspection: &Inspection) -> bool {
        if self.owner != inspection.token {
            return false;
        }
        let mut verified = false;
        for &index in &self.enclosing {
            match inspection.layers.get(index).map(|layer| &layer.outcome) {
                Some(LayerOutcome::Verified { .. }) => verified = true,
                Some(LayerOutcome::SignatureFailed { .. }) | None => return false,
                _ => {}
            }
        }
        verified
    }

    /// The verified signers covering this leaf (of every enclosing signature layer, outermost
    /// first); empty unless [`Leaf::is_signed`].
    pub fn signers<'a>(&self, inspection: &'a Inspection) -> Vec<&'a VerifiedSigner> {
        if !self.is_signed(inspection) {
            return Vec::new();
        }
        self.enclosing
            .iter()
            .filter_map(|&index| inspection.layers.get(index))
            .flat_map(|layer| match &layer.outcome {
                LayerOutcome::Verified { signers } => signers.as_slice(),
                _ => &[],
            })
            .collect()
    }

    /// Whether an enclosing layer is unauthenticated encryption (CBC EnvelopedData).
    pub fn in_unauthenticated_encryption(&self, inspection: &Inspection) -> bool {
        // Fail closed across messages: another message's layers say nothing about this leaf.
        if self.owner != inspection.token {
            return true;
        }
        self.enclosing.iter().any(|&index| {
            matches!(
                inspection.layers.get(index).map(|layer| &layer.outcome),
                Some(LayerOutcome::Decrypted {
                    authenticated: false
                })
            )
        })
    }
}

/// A header field checked for header protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderField {
    /// From (compared as a set of addr-specs, domains lowercased).
    From,
    /// To (compared as a set of addr-specs, domains lowercased).
    To,
    /// Subject (compared exactly, surrounding white space ignored).
    Subject,
}

/// A protected header field (in the signed content) that differs from the outer message header
/// (RFC 9788 §4, RFC 8551 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMismatch {
    /// Index of the signature layer whose content carries the protected header.
    pub layer: usize,
    /// Which field.
    pub field: HeaderField,
    /// The outer value (addresses joined with `, `; empty when absent).
    pub outer: String,
    /// The protected value.
    pub inner: String,
}

/// Header fields of the received message (the outermost entity), unprotected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OuterHeaders {
    /// addr-specs of every From header field, in order.
    pub from: Vec<String>,
    /// addr-specs of every To header field.
    pub to: Vec<String>,
    /// The Subject.
    pub subject: Option<String>,
    /// The Date.
    pub date: Option<OffsetDateTime>,
}

/// The result of [`inspect`].
#[derive(Debug, Clone)]
pub struct Inspection {
    /// Every security layer, in walk order (an enclosing layer before the layers inside it).
    pub(crate) layers: Vec<Layer>,
    /// Every leaf part reached.
    pub(crate) leaves: Vec<Leaf>,
    /// Protected headers differing from the outer ones.
    pub(crate) header_mismatches: Vec<HeaderMismatch>,
    /// The outer headers.
    pub(crate) outer: OuterHeaders,
    /// The message had bare LF line endings and was canonicalised to CRLF before the walk.
    pub(crate) canonicalized: bool,
    /// Which walk made this inspection: its leaves carry the same token, so a leaf is only
    /// ever judged against the layers of its own message ([`Leaf::is_signed`]).
    pub(crate) token: InspectionToken,
    /// [`calendar::mail_parser_calendars`](crate::calendar::mail_parser_calendars) of the
    /// received message, when the walk parsed it with mail-parser (for the decoder
    /// comparison of a transfer-encoded part of the message as received).
    pub(crate) mail_parser_calendars: Option<Vec<crate::calendar::ParsedCalendar>>,
}

/// The identity of one [`inspect`] run (a process-wide counter): ties leaves to their
/// inspection. Only this module makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InspectionToken(u64);

impl InspectionToken {
    fn next() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        InspectionToken(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// One leaf the inspection found inside verified signatures, with its signers and where its
/// body lies in the received message: what the calendar layer may process. Only this crate
/// builds one, through [`Inspection::signed_parts`].
///
/// ```compile_fail
/// // A signed part cannot be made up outside the S/MIME crate.
/// fn forge(leaf: &imipsec_smime::Leaf) -> imipsec_smime::SignedPart<'_> {
///     imipsec_smime::SignedPart { leaf, signers: Vec::new() }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct SignedPart<'a> {
    leaf: &'a Leaf,
    signers: Vec<&'a VerifiedSigner>,
}

impl<'a> SignedPart<'a> {
    /// The leaf.
    pub fn leaf(&self) -> &'a Leaf {
        self.leaf
    }

    /// The verified signers whose signatures cover it (every enclosing signature layer,
    /// outermost first); never empty.
    pub fn signers(&self) -> &[&'a VerifiedSigner] {
        &self.signers
    }

    /// The body (before transfer decoding) as offsets into the received message; `None`
    /// inside decrypted or opaque-signed content.
    pub fn body_range(&self) -> Option<std::ops::Range<usize>> {
        self.leaf.body_range()
    }
}

impl Inspection {
    /// Every security layer, in walk order (an enclosing layer before the layers inside
    /// it).
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Every leaf part reached.
    pub fn leaves(&self) -> &[Leaf] {
        &self.leaves
    }

    /// Protected headers differing from the outer ones.
    pub fn header_mismatches(&self) -> &[HeaderMismatch] {
        &self.header_mismatches
    }

    /// The outer headers.
    pub fn outer(&self) -> &OuterHeaders {
        &self.outer
    }

    /// The message had bare LF line endings and was canonicalised to CRLF before the walk
    /// (offsets then refer to the canonical copy).
    pub fn canonicalized(&self) -> bool {
        self.canonicalized
    }

    /// [`calendar::mail_parser_calendars`](crate::calendar::mail_parser_calendars) of the
    /// message given to [`inspect`], as received, when the walk already had mail-parser parse
    /// it (it does for a message with a transfer-encoded part and CRLF line endings):
    /// the accept direction then needs no second parse (issue 17). `None`: not parsed here.
    pub fn mail_parser_calendars(&self) -> Option<&[crate::calendar::ParsedCalendar]> {
        self.mail_parser_calendars.as_deref()
    }

    /// [`Self::mail_parser_calendars`] moved out (`None` afterwards), for a caller that
    /// keeps the list past the inspection: the pipeline hands it to the gate, whose
    /// accept-direction check on the same bytes then needs no parse of its own (issue 17).
    pub fn take_mail_parser_calendars(&mut self) -> Option<Vec<crate::calendar::ParsedCalendar>> {
        self.mail_parser_calendars.take()
    }

    /// Leaves that [`Leaf::is_signed`].
    pub fn signed_leaves(&self) -> impl Iterator<Item = &Leaf> {
        self.leaves.iter().filter(|leaf| leaf.is_signed(self))
    }

    /// The calendar-facing view: every leaf inside verified signatures (and no failed one),
    /// with its signers and its byte range in the received message.
    pub fn signed_parts(&self) -> impl Iterator<Item = SignedPart<'_>> {
        self.leaves
            .iter()
            .filter(|leaf| leaf.is_signed(self))
            .map(|leaf| SignedPart {
                leaf,
                signers: leaf.signers(self),
            })
    }

    /// Whether the content of some opaque signature could not be read at all: its content
    /// (child `path + [0]`) produced neither a leaf nor an inner layer, so whatever it holds,
    /// calendar data included, is unknown.
    pub fn opaque_content_unread(&self) -> bool {
        self.layers.iter().any(|layer| {
            layer.kind == LayerKind::OpaqueSigned && {
                let mut content = layer.path.clone();
                content.push(0);
                let below = |path: &[usize]| path.starts_with(&content);
                !self.leaves.iter().any(|leaf| below(&leaf.path))
                    && !self.layers.iter().any(|inner| below(&inner.path))
            }
        })
    }
}

/// Verify a CMS SignedData (DER or BER ContentInfo) on its own: the CMS half of `inspect`,
/// for differential tests and benchmarks. `detached_content` is the signed content of a
/// detached signature (`None` for opaque signing: the content is the eContent). Revocation is
/// the default mode with the given and embedded CRLs only; see
/// [`verify_signed_data_with`] for the rest of the options.
pub fn verify_signed_data(
    der: &[u8],
    detached_content: Option<&[u8]>,
    trust: &TrustStore,
    at: OffsetDateTime,
    policy: &AlgorithmPolicy,
    limits: &Limits,
) -> Result<Vec<VerifiedSigner>, Failure> {
    verify_signed_data_with(
        der,
        detached_content,
        &InspectOptions {
            trust,
            at,
            revocation: RevocationMode::default(),
            revocation_source: None,
            policy,
            identities: &[],
            limits,
            danger_decrypt_non_root: false,
            openpgp: None,
        },
    )
}

/// [`verify_signed_data`] with every verification option of [`InspectOptions`] (its
/// `identities` and `danger_decrypt_non_root` are not used).
pub fn verify_signed_data_with(
    der: &[u8],
    detached_content: Option<&[u8]>,
    options: &InspectOptions<'_>,
) -> Result<Vec<VerifiedSigner>, Failure> {
    let budget = Budget::new(
        options.limits,
        der.len()
            .saturating_add(detached_content.map_or(0, <[u8]>::len)),
    );
    let context = Context {
        trust: options.trust,
        at: options.at,
        revocation: Revocation {
            mode: options.revocation,
            source: options.revocation_source.as_deref(),
        },
        policy: options.policy,
        limits: options.limits,
        budget: &budget,
    };
    cms::check_signed_data(der, detached_content, &context).outcome
}

/// Walk `raw` (an RFC 5322 message) and verify / decrypt every security layer.
///
/// Returns `Err` only when the message as a whole cannot be walked (malformed MIME, a limit);
/// per-layer failures are inside the [`Inspection`].
///
/// Line endings: when the first line of the message ends in a bare LF (mbox / Maildir storage),
/// the whole message is canonicalised to CRLF first (RFC 8551 §3.1.1 canonical form);
/// otherwise bytes are used exactly as received. Either way every offset reported (a
/// [`SmimeError::MalformedMime`] of the message, a leaf's `body_range`, a
/// [`Failure::MalformedContent`] of a layer's content) counts the bytes as received, never
/// the canonical copy's inserted CRs.
///
/// `message/rfc822` parts: only a message/rfc822 entity that is the entire content of the
/// message or of a security layer (the RFC 8551 §3.1 header-protection wrapper) is walked
/// into. Any other message/rfc822 part (a forwarded message attachment) is one opaque leaf: its
/// inner signatures belong to the attachment, not to this message, and are not evaluated; call
/// `inspect` on the leaf body to examine it on its own.
pub fn inspect(raw: &[u8], options: &InspectOptions<'_>) -> Result<Inspection, SmimeError> {
    if raw.len() > options.limits.message_bytes {
        return Err(SmimeError::LimitExceeded(LimitKind::MessageBytes));
    }
    let canonicalized = mime::line_endings(raw).map_err(|error| mime_error(error, None))?
        == mime::LineEndings::BareLf;
    let canonical = canonicalized.then(|| mime::Canonical::new(raw));
    let buffer: &[u8] = canonical.as_ref().map_or(raw, |canonical| &canonical.bytes);
    let mut inspection = walk::walk_message(buffer, options, canonicalized).map_err(|error| {
        match (&canonical, error) {
            // Offsets of the received message count its bytes as received (issue #12),
            // not the canonical copy's inserted CRs.
            (
                Some(canonical),
                SmimeError::MalformedMime {
                    offset,
                    kind,
                    layer: None,
                },
            ) => SmimeError::MalformedMime {
                offset: canonical.original_offset(offset),
                kind,
                layer: None,
            },
            (_, error) => error,
        }
    })?;
    if let Some(canonical) = &canonical {
        // Offsets into the received (bare-LF) bytes, not the canonical copy.
        for leaf in &mut inspection.leaves {
            if let Some(range) = &mut leaf.body_range {
                *range =
                    canonical.original_offset(range.start)..canonical.original_offset(range.end);
            }
        }
    }
    Ok(inspection)
}
