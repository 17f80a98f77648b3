//! PGP/MIME layers (RFC 3156) in the walk: the MIME structure is read here, the OpenPGP work is
//! done by `imipsec-openpgp`, and its proofs become this crate's [`VerifiedSigner`]s, so that
//! the pipeline correlates OpenPGP and S/MIME signers alike.

use std::sync::LazyLock;

use crate::cms::VerifiedSigner;
use crate::error::{Failure, SmimeError};
use crate::inspect::{LayerKind, LayerOutcome};
use crate::limits::LimitKind;
use crate::mime::{self, Entity};

use super::{Position, Walker, mime_error};

/// The keyring used when the caller configured none: no certificate (every signer is
/// unknown: `untrusted-certificate`) and no key (`decryption-failed`).
static EMPTY: LazyLock<imipsec_openpgp::Keyring> = LazyLock::new(imipsec_openpgp::Keyring::default);

/// `multipart/signed; protocol="application/pgp-signature"` (RFC 3156 §5).
pub(super) fn is_pgp_signed(entity: &Entity<'_>) -> bool {
    entity
        .param("protocol")
        .is_some_and(|protocol| protocol.eq_ignore_ascii_case("application/pgp-signature"))
}

/// `multipart/encrypted; protocol="application/pgp-encrypted"` (RFC 3156 §4).
pub(super) fn is_pgp_encrypted(entity: &Entity<'_>) -> bool {
    entity
        .param("protocol")
        .is_some_and(|protocol| protocol.eq_ignore_ascii_case("application/pgp-encrypted"))
}

fn structure(detail: &'static str) -> Failure {
    Failure::OpenPgp(imipsec_openpgp::Failure::Structure { detail })
}

fn signature_outcome(
    verified: Result<Vec<imipsec_openpgp::VerifiedKey>, imipsec_openpgp::Failure>,
) -> LayerOutcome {
    let signers = verified.map_err(Failure::OpenPgp).and_then(|keys| {
        keys.into_iter()
            .enumerate()
            .map(|(index, key)| VerifiedSigner::from_openpgp(key, index))
            .collect::<Result<Vec<_>, _>>()
    });
    match signers {
        Ok(signers) => LayerOutcome::Verified { signers },
        Err(failure) => LayerOutcome::SignatureFailed {
            failure,
            signers: Vec::new(),
        },
    }
}

impl Walker<'_, '_> {
    fn keyring(&self) -> &imipsec_openpgp::Keyring {
        self.options.openpgp.unwrap_or(&EMPTY)
    }

    fn openpgp_policy(&self) -> imipsec_openpgp::Policy {
        imipsec_openpgp::Policy {
            min_rsa_bits: self.options.policy.min_rsa_bits,
            danger_allow_sha1: self.options.policy.danger_allow_sha1,
        }
    }

    fn openpgp_limits(&self) -> imipsec_openpgp::Limits {
        imipsec_openpgp::Limits {
            encrypted_bytes: self.options.limits.cms_bytes,
            plaintext_bytes: self.options.limits.message_bytes,
            ..imipsec_openpgp::Limits::default()
        }
    }

    /// RFC 3156 §5: two body parts, the second `application/pgp-signature`; the signed bytes
    /// are the first body part exactly as received (headers included, CRLF: the walk has
    /// canonicalised a bare-LF message), as for S/MIME (RFC 1847 §2.1).
    pub(super) fn pgp_multipart_signed(
        &mut self,
        buffer: &[u8],
        entity: &Entity<'_>,
        position: Position,
    ) -> Result<(), SmimeError> {
        let layer = position.buffer_layer;
        let [content, signature] = self.signed_parts(entity, layer)?;
        let signature = self.signature_part(buffer, signature, layer)?;
        let signed = buffer.get(content.0..content.1).unwrap_or_default();
        let outcome = if signature.content_type != "application/pgp-signature" {
            LayerOutcome::SignatureFailed {
                failure: structure(
                    "the second part of multipart/signed is not application/pgp-signature",
                ),
                signers: Vec::new(),
            }
        } else if let Err(kind) = self
            .budget
            .hash(signed.len())
            .and_then(|()| self.budget.verify(1))
        {
            LayerOutcome::SignatureFailed {
                failure: Failure::LimitExceeded(kind),
                signers: Vec::new(),
            }
        } else {
            match signature.decoded_body() {
                Ok(body) => signature_outcome(imipsec_openpgp::verify_detached(
                    &body,
                    signed,
                    entity.param("micalg"),
                    &self.keyring().certificates,
                    self.options.at,
                    &self.openpgp_policy(),
                    &self.openpgp_limits(),
                )),
                Err(error) => LayerOutcome::SignatureFailed {
                    failure: mime_failure(error),
                    signers: Vec::new(),
                },
            }
        };
        self.signed_layer(
            buffer,
            LayerKind::PgpMultipartSigned,
            position,
            outcome,
            content,
        )
    }

    /// RFC 3156 §4: two body parts, `application/pgp-encrypted` saying `Version: 1` and
    /// `application/octet-stream` holding the armored OpenPGP message; the plaintext is a MIME
    /// entity, walked like decrypted S/MIME content. A signed-and-encrypted message (§6.2)
    /// adds a [`LayerKind::PgpEncryptedSigned`] layer enclosing that content. EFAIL: not the
    /// root, not decrypted (unless `danger_decrypt_non_root`).
    pub(super) fn pgp_multipart_encrypted(
        &mut self,
        buffer: &[u8],
        entity: &Entity<'_>,
        position: Position,
    ) -> Result<(), SmimeError> {
        let layer = position.buffer_layer;
        let kind = LayerKind::PgpMultipartEncrypted;
        let parts = self.body_parts(entity, layer)?;
        let [(control_start, control_end), (data_start, data_end)] = parts[..] else {
            self.push_layer(
                kind,
                &position.path,
                LayerOutcome::NotDecrypted {
                    failure: structure("multipart/encrypted must have exactly two body parts"),
                },
            );
            return Ok(());
        };
        self.count_part()?;
        self.count_part()?;
        let control = mime::parse_entity(buffer, control_start, control_end)
            .map_err(|error| mime_error(error, layer))?;
        let data = mime::parse_entity(buffer, data_start, data_end)
            .map_err(|error| mime_error(error, layer))?;
        let not_decrypted = |walker: &mut Self, failure: Failure| {
            walker.push_layer(kind, &position.path, LayerOutcome::NotDecrypted { failure });
            Ok(())
        };
        if control.content_type != "application/pgp-encrypted" {
            return not_decrypted(
                self,
                structure("the first part of multipart/encrypted is not application/pgp-encrypted"),
            );
        }
        self.charge_decoding(&control)?;
        let control_body = match control.decoded_body() {
            Ok(body) => body,
            Err(error) => return not_decrypted(self, mime_failure(error)),
        };
        if let Err(failure) = imipsec_openpgp::check_control_part(&control_body) {
            return not_decrypted(self, Failure::OpenPgp(failure));
        }
        if data.content_type != "application/octet-stream" {
            return not_decrypted(
                self,
                structure("the second part of multipart/encrypted is not application/octet-stream"),
            );
        }
        if !position.root_like && !self.options.danger_decrypt_non_root {
            return not_decrypted(self, Failure::NotDecryptedNonRoot);
        }
        self.charge_decoding(&data)?;
        let armored = match data.decoded_body() {
            Ok(body) => body,
            Err(error) => return not_decrypted(self, mime_failure(error)),
        };
        if armored.len() > self.options.limits.cms_bytes {
            return not_decrypted(self, Failure::LimitExceeded(LimitKind::CmsBytes));
        }
        self.budget
            .decode(armored.len())
            .map_err(SmimeError::LimitExceeded)?;
        let keyring = self.keyring();
        let decrypted = imipsec_openpgp::decrypt(
            &armored,
            &keyring.identities,
            &keyring.certificates,
            self.options.at,
            &self.openpgp_policy(),
            &self.openpgp_limits(),
        );
        match decrypted {
            Ok(decrypted) => {
                let index = self.push_layer(
                    kind,
                    &position.path,
                    LayerOutcome::Decrypted {
                        authenticated: true,
                    },
                );
                let mut content = position.content_of(index, false, true);
                if let Some(signatures) = decrypted.signatures {
                    let signed = self.push_layer(
                        LayerKind::PgpEncryptedSigned,
                        &position.path,
                        signature_outcome(signatures),
                    );
                    content.enclosing.push(signed);
                    content.protected_by = Some(signed);
                }
                self.walk_content(index, decrypted.plaintext, content)
            }
            Err(failure) => not_decrypted(self, Failure::OpenPgp(failure)),
        }
    }
}

/// A transfer encoding that does not decode, as a layer failure.
fn mime_failure(error: mime::MimeError) -> Failure {
    Failure::MalformedContent {
        offset: error.offset,
        kind: error.kind,
    }
}
