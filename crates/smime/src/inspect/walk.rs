//! The walk itself: [`walk_message`] descends the MIME tree of one message, verifies and
//! decrypts each security layer, and records every layer and leaf in an [`Inspection`].

use std::borrow::Cow;

use time::OffsetDateTime;

mod openpgp;

use crate::calendar::{self, ParsedMessage};
use crate::cms::{self, Context, SignerReport, VerifiedSigner, oid};
use crate::decrypt;
use crate::error::{Failure, MimeErrorKind, SmimeError};
use crate::limits::{Budget, LimitKind};
use crate::mime::{self, Entity, MimeError, ProtectedHeaders};
use crate::trust::{Revocation, normalize_email};

use super::{
    HeaderField, HeaderMismatch, InspectOptions, Inspection, InspectionToken, Layer, LayerKind,
    LayerOutcome, Leaf, OuterHeaders,
};

/// Walk `buffer` (the message, canonicalised to CRLF when `canonicalized`).
pub(super) fn walk_message(
    buffer: &[u8],
    options: &InspectOptions<'_>,
    canonicalized: bool,
) -> Result<Inspection, SmimeError> {
    let mut walker = Walker {
        options,
        inspection: Inspection {
            layers: Vec::new(),
            leaves: Vec::new(),
            header_mismatches: Vec::new(),
            outer: OuterHeaders::default(),
            canonicalized,
            token: InspectionToken::next(),
            mail_parser_calendars: None,
        },
        outer: ProtectedHeaders::default(),
        parts: 0,
        budget: Budget::new(options.limits, buffer.len()),
        received: (!canonicalized).then_some(buffer),
        parsed: None,
    };
    let root = Position {
        path: Vec::new(),
        depth: 1,
        enclosing: Vec::new(),
        root_like: true,
        // A message whose body is a message/rfc822 is a forward, like an attached one: only
        // the content of a security layer is a wrapper to walk into (RFC 8551 §3.1).
        unwrap_message: false,
        protected_by: None,
        buffer_layer: None,
        forwarded: false,
        digest: false,
    };
    walker.walk(buffer, 0, buffer.len(), root)?;
    walker.budget_left()?;
    walker.inspection.mail_parser_calendars = walker.parsed.as_ref().map(ParsedMessage::calendars);
    Ok(walker.inspection)
}

#[derive(Debug, Clone)]
struct Position {
    path: Vec<usize>,
    depth: usize,
    enclosing: Vec<usize>,
    /// Every ancestor is a security layer whose entire content this entity is.
    root_like: bool,
    /// A message/rfc822 here is a wrapper to walk into, not an attachment.
    unwrap_message: bool,
    /// This entity is the direct content of this signature layer (header protection).
    protected_by: Option<usize>,
    /// The buffer is the content of this layer (for error offsets); `None`: the message.
    buffer_layer: Option<usize>,
    /// Inside a forwarded message: structure only, no layer is evaluated.
    forwarded: bool,
    /// The parent is multipart/digest (untyped parts are message/rfc822).
    digest: bool,
}

impl Position {
    fn child(&self, index: usize) -> Position {
        let mut path = self.path.clone();
        path.push(index);
        Position {
            path,
            depth: self.depth + 1,
            enclosing: self.enclosing.clone(),
            root_like: false,
            unwrap_message: false,
            protected_by: None,
            buffer_layer: self.buffer_layer,
            forwarded: self.forwarded,
            digest: false,
        }
    }

    /// The content of a security layer: it stands in for the layer itself.
    fn content_of(&self, layer: usize, signed: bool, new_buffer: bool) -> Position {
        let mut child = self.child(0);
        child.enclosing.push(layer);
        child.root_like = self.root_like;
        child.unwrap_message = true;
        child.protected_by = signed.then_some(layer);
        if new_buffer {
            child.buffer_layer = Some(layer);
        }
        child
    }
}

struct Walker<'o, 'b> {
    options: &'o InspectOptions<'o>,
    inspection: Inspection,
    outer: ProtectedHeaders,
    parts: usize,
    /// What the message may still spend on public-key operations, hashing and decoding.
    budget: Budget,
    /// The message as received, when the walk reads it as received (not a canonical copy).
    received: Option<&'b [u8]>,
    /// mail-parser's parse of `received`, made on first need ([`Walker::decoded_body`]).
    parsed: Option<ParsedMessage<'b>>,
}

impl Walker<'_, '_> {
    /// `entity`'s transfer-decoded body. In the message as received (`layer` is `None` and
    /// the message was not canonicalised), the strict decoding is compared with what
    /// mail-parser's parse of the whole message decoded for the same bytes; that parse is
    /// made once, on first need, and is the one the accept direction reads
    /// ([`Inspection::mail_parser_calendars`]). Elsewhere, or where that parse read the
    /// bytes otherwise, mail-parser's decoder runs on the part as before
    /// ([`Entity::decoded_body_agreeing`]).
    fn decoded_body<'e>(
        &mut self,
        entity: &'e Entity<'_>,
        layer: Option<usize>,
    ) -> Result<Cow<'e, [u8]>, MimeError> {
        let parsed = match self.received {
            Some(received) if layer.is_none() && entity.is_transfer_encoded() => self
                .parsed
                .get_or_insert_with(|| ParsedMessage::parse(received))
                .decoded_at(entity.body_range()),
            _ => None,
        };
        entity.decoded_body_agreeing(parsed)
    }
}

pub(super) fn mime_error(error: MimeError, layer: Option<usize>) -> SmimeError {
    if error.kind == MimeErrorKind::TooLarge {
        return SmimeError::LimitExceeded(LimitKind::Parts);
    }
    SmimeError::MalformedMime {
        offset: error.offset,
        kind: error.kind,
        layer,
    }
}

impl Walker<'_, '_> {
    fn context(&self) -> Context<'_> {
        Context {
            trust: self.options.trust,
            at: self.options.at,
            revocation: Revocation {
                mode: self.options.revocation,
                source: self.options.revocation_source.as_deref(),
            },
            policy: self.options.policy,
            limits: self.options.limits,
            budget: &self.budget,
        }
    }

    fn push_layer(&mut self, kind: LayerKind, path: &[usize], outcome: LayerOutcome) -> usize {
        self.inspection.layers.push(Layer {
            kind,
            path: path.to_vec(),
            outcome,
        });
        self.inspection.layers.len() - 1
    }

    /// `Err` once the message's work budget ran out (in a signature check): the whole message
    /// then exceeds its limits, and nothing more of it is looked at.
    fn budget_left(&self) -> Result<(), SmimeError> {
        match self.budget.exhausted() {
            Some(kind) => Err(SmimeError::LimitExceeded(kind)),
            None => Ok(()),
        }
    }

    fn count_part(&mut self) -> Result<(), SmimeError> {
        self.parts += 1;
        if self.parts > self.options.limits.parts {
            return Err(SmimeError::LimitExceeded(LimitKind::Parts));
        }
        Ok(())
    }

    fn walk(
        &mut self,
        buffer: &[u8],
        start: usize,
        end: usize,
        position: Position,
    ) -> Result<(), SmimeError> {
        if position.depth > self.options.limits.mime_depth {
            return Err(SmimeError::LimitExceeded(LimitKind::MimeDepth));
        }
        self.budget_left()?;
        self.count_part()?;
        let layer = position.buffer_layer;
        let entity =
            mime::parse_entity(buffer, start, end).map_err(|error| mime_error(error, layer))?;
        if position.path.is_empty() && layer.is_none() {
            self.record_outer(&entity);
        }
        if let Some(signature_layer) = position.protected_by {
            self.compare_protected(signature_layer, &entity.headers);
        }
        // RFC 2046 §5.1.5: an untyped part of multipart/digest is message/rfc822 (so it is
        // to mail-parser).
        let content_type = if !entity.typed && position.digest {
            "message/rfc822"
        } else {
            entity.content_type.as_str()
        };
        let composite = content_type.starts_with("multipart/")
            || calendar::is_forwarded_message_type(content_type);
        if composite && entity.encoding != mime::TransferEncoding::Identity {
            return Err(mime_error(
                MimeError {
                    offset: entity.start,
                    kind: MimeErrorKind::EncodedComposite,
                },
                layer,
            ));
        }
        if position.forwarded {
            // Inside a forwarded message: structure only. Its signatures belong to the
            // forwarded message, not to this one, and are not evaluated.
            return match content_type {
                multipart if multipart.starts_with("multipart/") => {
                    self.multipart(buffer, &entity, position)
                }
                message if calendar::is_forwarded_message_type(message) => {
                    self.forwarded(buffer, &entity, &position)
                }
                _ => self.leaf(&entity, position),
            };
        }
        match content_type {
            "multipart/signed" if openpgp::is_pgp_signed(&entity) => {
                self.pgp_multipart_signed(buffer, &entity, position)
            }
            "multipart/encrypted" if openpgp::is_pgp_encrypted(&entity) => {
                self.pgp_multipart_encrypted(buffer, &entity, position)
            }
            "multipart/signed" => self.multipart_signed(buffer, &entity, position),
            "multipart/encrypted" => {
                let protocol = entity.param("protocol").unwrap_or("").to_ascii_lowercase();
                self.push_layer(
                    LayerKind::MultipartEncrypted,
                    &position.path,
                    LayerOutcome::NotDecrypted {
                        failure: Failure::UnsupportedProtocol { protocol },
                    },
                );
                Ok(())
            }
            "application/pkcs7-mime" | "application/x-pkcs7-mime" => {
                self.pkcs7_mime(&entity, position)
            }
            multipart if multipart.starts_with("multipart/") => {
                self.multipart(buffer, &entity, position)
            }
            message if calendar::is_forwarded_message_type(message) && position.unwrap_message => {
                let mut inner = position.child(0);
                inner.root_like = position.root_like;
                inner.protected_by = position.protected_by;
                self.walk(
                    buffer,
                    entity.body_start,
                    entity.start + entity.raw.len(),
                    inner,
                )
            }
            message if calendar::is_forwarded_message_type(message) => {
                self.forwarded(buffer, &entity, &position)
            }
            _ => self.leaf(&entity, position),
        }
    }

    /// Pay for transfer-decoding `entity`'s body (its encoded size, before the work).
    fn charge_decoding(&self, entity: &Entity<'_>) -> Result<(), SmimeError> {
        if entity.encoding == mime::TransferEncoding::Identity {
            return Ok(());
        }
        self.budget
            .decode(entity.body.len())
            .map_err(SmimeError::LimitExceeded)
    }

    /// The `(start, end)` offsets of a multipart entity's body parts (RFC 2046 §5.1.1).
    fn body_parts(
        &self,
        entity: &Entity<'_>,
        layer: Option<usize>,
    ) -> Result<Vec<(usize, usize)>, SmimeError> {
        let boundary = entity.param("boundary").ok_or(SmimeError::MalformedMime {
            offset: entity.start,
            kind: MimeErrorKind::MissingBoundary,
            layer,
        })?;
        mime::split_multipart(
            entity.body,
            entity.body_start,
            boundary,
            self.options.limits.parts,
        )
        .map_err(|error| mime_error(error, layer))
    }

    /// The body parts of a multipart entity, walked in turn.
    fn multipart(
        &mut self,
        buffer: &[u8],
        entity: &Entity<'_>,
        position: Position,
    ) -> Result<(), SmimeError> {
        let parts = self.body_parts(entity, position.buffer_layer)?;
        let digest = entity.content_type == "multipart/digest";
        for (index, (part_start, part_end)) in parts.into_iter().enumerate() {
            let mut child = position.child(index);
            child.digest = digest;
            self.walk(buffer, part_start, part_end, child)?;
        }
        Ok(())
    }

    /// A forwarded message (a `message/rfc822` or `message/global` part that is not the whole
    /// content of a security layer): walked for its structure, so that calendar content in it
    /// is reported (Cyrus processes the first calendar it finds in one), with every leaf
    /// marked [`Leaf::forwarded`] and no signature in it evaluated.
    fn forwarded(
        &mut self,
        buffer: &[u8],
        entity: &Entity<'_>,
        position: &Position,
    ) -> Result<(), SmimeError> {
        let mut inner = position.child(0);
        inner.forwarded = true;
        self.walk(
            buffer,
            entity.body_start,
            entity.start + entity.raw.len(),
            inner,
        )
    }

    fn leaf(&mut self, entity: &Entity<'_>, position: Position) -> Result<(), SmimeError> {
        self.charge_decoding(entity)?;
        let body = self
            .decoded_body(entity, position.buffer_layer)
            .map_err(|error| mime_error(error, position.buffer_layer))?
            .into_owned();
        let calendar = calendar::classify(&entity.content_type, entity.file_names(), &body);
        // Offsets in the received message exist only outside decrypted or opaque-signed
        // content (mail-parser cannot see into those either).
        let body_range = position.buffer_layer.is_none().then(|| entity.body_range());
        self.inspection.leaves.push(Leaf {
            content_type: entity.content_type.clone(),
            params: entity.params.clone(),
            body,
            path: position.path,
            enclosing: position.enclosing,
            calendar,
            forwarded: position.forwarded,
            body_range,
            owner: self.inspection.token,
        });
        Ok(())
    }

    fn multipart_signed(
        &mut self,
        buffer: &[u8],
        entity: &Entity<'_>,
        position: Position,
    ) -> Result<(), SmimeError> {
        let layer = position.buffer_layer;
        let [content, signature] = self.signed_parts(entity, layer)?;
        let protocol = entity.param("protocol").unwrap_or("").to_ascii_lowercase();
        let outcome = if matches!(
            protocol.as_str(),
            "application/pkcs7-signature" | "application/x-pkcs7-signature"
        ) {
            let signature = self.signature_part(buffer, signature, layer)?;
            let signed = buffer.get(content.0..content.1).unwrap_or_default();
            self.verify_detached(&signature, signed, layer)
        } else {
            LayerOutcome::SignatureFailed {
                failure: Failure::UnsupportedProtocol { protocol },
                signers: Vec::new(),
            }
        };
        self.signed_layer(
            buffer,
            LayerKind::MultipartSigned,
            position,
            outcome,
            content,
        )
    }

    /// The two body parts of a multipart/signed, the signed content and the signature
    /// (RFC 1847 §2.1, RFC 3156 §5); any other count is malformed MIME. The signed bytes are
    /// the first part exactly as received, headers included, up to (not including) the
    /// CRLF before the next delimiter.
    fn signed_parts(
        &self,
        entity: &Entity<'_>,
        layer: Option<usize>,
    ) -> Result<[(usize, usize); 2], SmimeError> {
        match self.body_parts(entity, layer)?[..] {
            [content, signature] => Ok([content, signature]),
            _ => Err(SmimeError::MalformedMime {
                offset: entity.start,
                kind: MimeErrorKind::SignedPartCount,
                layer,
            }),
        }
    }

    /// The signature part of a multipart/signed: counted as a part, parsed, and its
    /// decoding charged to the budget.
    fn signature_part<'b>(
        &mut self,
        buffer: &'b [u8],
        (start, end): (usize, usize),
        layer: Option<usize>,
    ) -> Result<Entity<'b>, SmimeError> {
        self.count_part()?;
        let signature =
            mime::parse_entity(buffer, start, end).map_err(|error| mime_error(error, layer))?;
        self.charge_decoding(&signature)?;
        Ok(signature)
    }

    /// The multipart/signed layer with its `outcome`, then the signed `content` walked
    /// inside it.
    fn signed_layer(
        &mut self,
        buffer: &[u8],
        kind: LayerKind,
        position: Position,
        outcome: LayerOutcome,
        (start, end): (usize, usize),
    ) -> Result<(), SmimeError> {
        let index = self.push_layer(kind, &position.path, outcome);
        let content = position.content_of(index, true, false);
        self.walk(buffer, start, end, content)
    }

    fn verify_detached(
        &mut self,
        signature: &Entity<'_>,
        signed: &[u8],
        layer: Option<usize>,
    ) -> LayerOutcome {
        if !matches!(
            signature.content_type.as_str(),
            "application/pkcs7-signature" | "application/x-pkcs7-signature"
        ) {
            return LayerOutcome::SignatureFailed {
                failure: Failure::UnsupportedProtocol {
                    protocol: signature.content_type.clone(),
                },
                signers: Vec::new(),
            };
        }
        let der = match self.decoded_body(signature, layer) {
            Ok(der) => der,
            Err(error) => {
                return LayerOutcome::SignatureFailed {
                    failure: Failure::MalformedCms {
                        offset: error.offset,
                    },
                    signers: Vec::new(),
                };
            }
        };
        let checked = cms::check_signed_data(&der, Some(signed), &self.context());
        signature_outcome(checked.outcome, checked.reports)
    }

    fn pkcs7_mime(&mut self, entity: &Entity<'_>, position: Position) -> Result<(), SmimeError> {
        let smime_type = entity
            .param("smime-type")
            .unwrap_or("")
            .to_ascii_lowercase();
        self.charge_decoding(entity)?;
        let der = self.decoded_body(entity, position.buffer_layer);
        // The CMS content type decides what is processed; smime-type is only a hint used when
        // the content does not parse (RFC 8551 §3.2.2).
        let sniffed = der
            .as_ref()
            .ok()
            .and_then(|der| cms::decode::content_type(der));
        let kind = match sniffed.as_deref() {
            Some(oid::SIGNED_DATA) => LayerKind::OpaqueSigned,
            Some(oid::ENVELOPED_DATA) => LayerKind::Enveloped,
            Some(oid::AUTH_ENVELOPED_DATA) => LayerKind::AuthEnveloped,
            Some(_) => return self.leaf(entity, position),
            None => match smime_type.as_str() {
                "signed-data" => LayerKind::OpaqueSigned,
                "enveloped-data" => LayerKind::Enveloped,
                "authenveloped-data" => LayerKind::AuthEnveloped,
                _ => return self.leaf(entity, position),
            },
        };
        let der = match der {
            Ok(der) => der,
            Err(error) => {
                let failure = Failure::MalformedCms {
                    offset: error.offset,
                };
                let outcome = match kind {
                    LayerKind::OpaqueSigned => LayerOutcome::SignatureFailed {
                        failure,
                        signers: Vec::new(),
                    },
                    _ => LayerOutcome::NotDecrypted { failure },
                };
                self.push_layer(kind, &position.path, outcome);
                return Ok(());
            }
        };
        if sniffed.is_none() {
            let failure = Failure::MalformedCms { offset: 0 };
            let outcome = match kind {
                LayerKind::OpaqueSigned => LayerOutcome::SignatureFailed {
                    failure,
                    signers: Vec::new(),
                },
                _ => LayerOutcome::NotDecrypted { failure },
            };
            self.push_layer(kind, &position.path, outcome);
            return Ok(());
        }
        match kind {
            LayerKind::OpaqueSigned => {
                let checked = cms::check_signed_data(&der, None, &self.context());
                let content = checked.econtent;
                let outcome = signature_outcome(checked.outcome, checked.reports);
                let index = self.push_layer(kind, &position.path, outcome);
                match content {
                    Some(content) => {
                        self.walk_content(index, content, position.content_of(index, true, true))
                    }
                    None => Ok(()),
                }
            }
            _ => {
                let authenticated = kind == LayerKind::AuthEnveloped;
                if !position.root_like && !self.options.danger_decrypt_non_root {
                    self.push_layer(
                        kind,
                        &position.path,
                        LayerOutcome::NotDecrypted {
                            failure: Failure::NotDecryptedNonRoot,
                        },
                    );
                    return Ok(());
                }
                if der.len() > self.options.limits.cms_bytes {
                    self.push_layer(
                        kind,
                        &position.path,
                        LayerOutcome::NotDecrypted {
                            failure: Failure::LimitExceeded(LimitKind::CmsBytes),
                        },
                    );
                    return Ok(());
                }
                self.budget
                    .decode(der.len())
                    .map_err(SmimeError::LimitExceeded)?;
                match decrypt::decrypt(&der, self.options.identities) {
                    Ok(plaintext) => {
                        let index = self.push_layer(
                            kind,
                            &position.path,
                            LayerOutcome::Decrypted { authenticated },
                        );
                        self.walk_content(index, plaintext, position.content_of(index, false, true))
                    }
                    Err(failure) => {
                        self.push_layer(
                            kind,
                            &position.path,
                            LayerOutcome::NotDecrypted { failure },
                        );
                        Ok(())
                    }
                }
            }
        }
    }

    /// Walk decrypted or opaque-signed content: a MIME entity of its own.
    ///
    /// Content with no header section at all (OpenSSL's `cms -encrypt` / `-sign` without
    /// `-text` produce such content) is one `text/plain` leaf: RFC 2045 §5.2 makes
    /// `text/plain; charset=us-ascii` the default of an entity without Content-Type, and RFC
    /// 8551 §3.1 asks for a MIME entity but does not say what to do with bare content. Such a
    /// leaf can never be a calendar (that takes a `text/calendar` Content-Type).
    ///
    /// Content that is malformed otherwise fails this layer only
    /// ([`Failure::MalformedContent`]): what it held so far is dropped from the inspection and
    /// the rest of the message is still walked. Limits still end the whole inspection.
    ///
    /// **Content decrypted without integrity (CBC) must read as a MIME entity, or as
    /// header-less US-ASCII text, or its layer is [`Failure::DecryptionFailed`]**, the one
    /// failure every other decryption error gives (see `decrypt`). A wrong content-encryption
    /// key (including the random key OpenSSL 3.0 substitutes after a bad PKCS#1 v1.5 block)
    /// passes the CBC padding check about once in 256 tries and yields garbage; reporting that
    /// garbage as malformed MIME, or as a header-less text leaf, told the two apart: a
    /// padding-oracle bit for the Million Message Attack. Header-less content stays tolerated
    /// when it is the `text/plain; charset=us-ascii` it is read as (printable ASCII, TAB, CR,
    /// LF: what `openssl cms -encrypt` of a text file gives, as in RFC 4134 §5.1 and RFC
    /// 9216). Random bytes are that about once in 2·10^6 for the shortest content an attacker
    /// can make (15 bytes, one block), and such a leaf can never be a calendar anyway.
    /// Authenticated content (GCM) is the sender's own and keeps its precise failure.
    fn walk_content(
        &mut self,
        layer: usize,
        content: Vec<u8>,
        position: Position,
    ) -> Result<(), SmimeError> {
        if content.len() > self.options.limits.message_bytes {
            return Err(SmimeError::LimitExceeded(LimitKind::MessageBytes));
        }
        // Offsets of a defect in bare-LF content count the content as it was, not the
        // canonical copy walked (issue #12).
        let mut canonical = None;
        let content = match mime::line_endings(&content) {
            Ok(mime::LineEndings::BareLf) => {
                self.budget
                    .decode(content.len())
                    .map_err(SmimeError::LimitExceeded)?;
                let mut copy = mime::Canonical::new(&content);
                let bytes = std::mem::take(&mut copy.bytes);
                canonical = Some(copy);
                bytes
            }
            Ok(mime::LineEndings::Crlf) => content,
            Err(error) => {
                self.fail_content(
                    layer,
                    Failure::MalformedContent {
                        offset: error.offset,
                        kind: error.kind,
                    },
                );
                return Ok(());
            }
        };
        if mime::is_headerless(&content) {
            if self.decrypted_without_integrity(layer) && !mime::is_ascii_text(&content) {
                self.fail_content(layer, Failure::DecryptionFailed);
                return Ok(());
            }
            if position.depth > self.options.limits.mime_depth {
                return Err(SmimeError::LimitExceeded(LimitKind::MimeDepth));
            }
            self.count_part()?;
            if let Some(signature_layer) = position.protected_by {
                self.compare_protected(signature_layer, &ProtectedHeaders::default());
            }
            self.inspection.leaves.push(Leaf {
                content_type: "text/plain".to_string(),
                params: vec![("charset".to_string(), "us-ascii".to_string())],
                calendar: calendar::classify("text/plain", None, &content),
                body: content,
                path: position.path,
                enclosing: position.enclosing,
                forwarded: false,
                body_range: None,
                owner: self.inspection.token,
            });
            return Ok(());
        }
        let layers = self.inspection.layers.len();
        let leaves = self.inspection.leaves.len();
        let mismatches = self.inspection.header_mismatches.len();
        match self.walk(&content, 0, content.len(), position) {
            Err(SmimeError::MalformedMime {
                offset,
                kind,
                layer: Some(found),
            }) if found == layer => {
                self.inspection.layers.truncate(layers);
                self.inspection.leaves.truncate(leaves);
                self.inspection.header_mismatches.truncate(mismatches);
                let offset = canonical
                    .as_ref()
                    .map_or(offset, |canonical| canonical.original_offset(offset));
                self.fail_content(layer, Failure::MalformedContent { offset, kind });
                Ok(())
            }
            other => other,
        }
    }

    /// Whether `layer` is an encryption layer that decrypted without integrity (CBC).
    fn decrypted_without_integrity(&self, layer: usize) -> bool {
        matches!(
            self.inspection.layers.get(layer),
            Some(Layer {
                outcome: LayerOutcome::Decrypted {
                    authenticated: false
                },
                ..
            })
        )
    }

    /// Fails `layer` for its content ([`Walker::walk_content`]): a signature layer becomes
    /// `SignatureFailed` with `failure`, an encryption layer `NotDecrypted` with `failure`,
    /// except that content decrypted without integrity fails as the one
    /// [`Failure::DecryptionFailed`], whatever was wrong with it.
    fn fail_content(&mut self, layer: usize, failure: Failure) {
        let without_integrity = self.decrypted_without_integrity(layer);
        let Some(failed) = self.inspection.layers.get_mut(layer) else {
            return;
        };
        failed.outcome = match &failed.outcome {
            LayerOutcome::Verified { .. } | LayerOutcome::SignatureFailed { .. } => {
                LayerOutcome::SignatureFailed {
                    failure,
                    signers: Vec::new(),
                }
            }
            _ if without_integrity => LayerOutcome::NotDecrypted {
                failure: Failure::DecryptionFailed,
            },
            _ => LayerOutcome::NotDecrypted { failure },
        };
    }

    fn record_outer(&mut self, entity: &Entity<'_>) {
        self.outer = entity.headers.clone();
        let headers = &entity.headers;
        self.inspection.outer = OuterHeaders {
            from: headers.from.clone().unwrap_or_default(),
            to: headers.to.clone().unwrap_or_default(),
            subject: headers.subject.clone(),
            date: headers
                .date
                .and_then(|timestamp| OffsetDateTime::from_unix_timestamp(timestamp).ok()),
        };
    }

    fn compare_protected(&mut self, layer: usize, inner: &ProtectedHeaders) {
        let address_set = |list: &Option<Vec<String>>| -> Vec<String> {
            let mut set: Vec<String> = list
                .iter()
                .flatten()
                .map(|address| normalize_email(address))
                .collect();
            set.sort();
            set.dedup();
            set
        };
        let mut mismatch = |field, outer: String, inner: String| {
            self.inspection.header_mismatches.push(HeaderMismatch {
                layer,
                field,
                outer,
                inner,
            });
        };
        if inner.from.is_some() && address_set(&inner.from) != address_set(&self.outer.from) {
            mismatch(
                HeaderField::From,
                self.outer.from.clone().unwrap_or_default().join(", "),
                inner.from.clone().unwrap_or_default().join(", "),
            );
        }
        if inner.to.is_some() && address_set(&inner.to) != address_set(&self.outer.to) {
            mismatch(
                HeaderField::To,
                self.outer.to.clone().unwrap_or_default().join(", "),
                inner.to.clone().unwrap_or_default().join(", "),
            );
        }
        if let Some(subject) = &inner.subject {
            let outer = self.outer.subject.clone().unwrap_or_default();
            if subject.trim() != outer.trim() {
                mismatch(HeaderField::Subject, outer, subject.clone());
            }
        }
    }
}

fn signature_outcome(
    outcome: Result<Vec<VerifiedSigner>, Failure>,
    reports: Vec<SignerReport>,
) -> LayerOutcome {
    match outcome {
        Ok(signers) => LayerOutcome::Verified { signers },
        Err(failure) => LayerOutcome::SignatureFailed {
            failure,
            signers: reports,
        },
    }
}
