//! Signature verification: detached (RFC 3156 §5) and inside an encrypted message (§6.2).

use pgp::composed::{
    Deserializable, DetachedSignature, Message, SignedPublicKey, SignedPublicSubKey,
};
use pgp::packet::{Signature, SignatureType};
use pgp::types::KeyDetails;
use time::OffsetDateTime;

use crate::certificate::{self, SigningKey, ValidCertificate, hex};
use crate::error::{Failure, contain_panic};
use crate::keys::Certificates;
use crate::limits::{LimitKind, Limits};
use crate::policy::{Policy, hash_name};

/// A signer whose OpenPGP signature verified with a key of a certificate the operator vouches
/// for, valid at the evaluation time, under the algorithm policy.
///
/// Only this crate can construct one (private fields): holding a `VerifiedKey` is proof that
/// verification ran. The S/MIME crate's MIME walk turns it into its `VerifiedSigner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKey {
    fingerprint: String,
    signing_key: String,
    emails: Vec<String>,
    user_id: String,
    hash: String,
    created: Option<OffsetDateTime>,
}

impl VerifiedKey {
    /// The certificate's primary key fingerprint (hex, uppercase).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
    /// The fingerprint of the key that made the signature (the primary key or a subkey).
    pub fn signing_key(&self) -> &str {
        &self.signing_key
    }
    /// Emails of the user IDs with a valid self-signature at the evaluation time (not yet
    /// checked as addr-specs: the S/MIME crate's one rule does that).
    pub fn emails(&self) -> &[String] {
        &self.emails
    }
    /// The primary user ID (or the first valid one).
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
    /// The signature's hash algorithm (`sha256`, ...).
    pub fn hash(&self) -> &str {
        &self.hash
    }
    /// The signature creation time (claimed by the signer).
    pub fn created(&self) -> Option<OffsetDateTime> {
        self.created
    }
}

/// How a candidate key is tried on a signature.
pub(crate) enum Check<'m, 'a> {
    /// A detached signature over `data`.
    Detached {
        signature: &'m Signature,
        data: &'m [u8],
    },
    /// Signature `index` of a signed message read to its end.
    Inline {
        message: &'m Message<'a>,
        index: usize,
    },
}

impl Check<'_, '_> {
    fn run(&self, certificate: &SignedPublicKey, key: &SigningKey<'_>) -> bool {
        let verified = contain_panic(std::panic::AssertUnwindSafe(|| match (self, key) {
            (Check::Detached { signature, data }, SigningKey::Primary) => {
                signature.verify(&certificate.primary_key, *data).is_ok()
            }
            (Check::Detached { signature, data }, SigningKey::Subkey(subkey)) => {
                signature.verify(&subkey.key, *data).is_ok()
            }
            (Check::Inline { message, index }, SigningKey::Primary) => message
                .verify_nested_explicit(*index, &certificate.primary_key)
                .is_ok(),
            (Check::Inline { message, index }, SigningKey::Subkey(subkey)) => {
                message.verify_nested_explicit(*index, &subkey.key).is_ok()
            }
        }));
        verified == Some(true)
    }
}

/// The keys of `certificates` that `signature` names as its issuer: (certificate, `None` for
/// the primary key or the subkey).
fn candidates<'c>(
    signature: &Signature,
    certificates: &'c Certificates,
) -> Vec<(&'c SignedPublicKey, Option<&'c SignedPublicSubKey>)> {
    let fingerprints: Vec<Vec<u8>> = signature
        .issuer_fingerprint()
        .iter()
        .map(|fingerprint| fingerprint.as_bytes().to_vec())
        .collect();
    let key_ids: Vec<Vec<u8>> = signature
        .issuer_key_id()
        .iter()
        .map(|key_id| key_id.as_ref().to_vec())
        .collect();
    let names = |key: &dyn KeyDetails| {
        if fingerprints.is_empty() {
            let id = key.legacy_key_id();
            key_ids
                .iter()
                .any(|wanted| wanted.as_slice() == id.as_ref())
        } else {
            let fingerprint = key.fingerprint();
            fingerprints
                .iter()
                .any(|wanted| wanted.as_slice() == fingerprint.as_bytes())
        }
    };
    let mut found = Vec::new();
    for certificate in certificates.iter() {
        if names(&certificate.primary_key) {
            found.push((certificate, None));
        }
        for subkey in &certificate.public_subkeys {
            if names(&subkey.key) {
                found.push((certificate, Some(subkey)));
            }
        }
    }
    found
}

fn issuer_name(signature: &Signature) -> String {
    signature
        .issuer_fingerprint()
        .first()
        .map(|fingerprint| hex(fingerprint.as_bytes()))
        .or_else(|| {
            signature
                .issuer_key_id()
                .first()
                .map(|key_id| hex(key_id.as_ref()))
        })
        .unwrap_or_else(|| "<none>".to_owned())
}

/// Check one document signature: its type and hash, the certificate and key that made it at
/// `at`, then the signature value. Failures are ranked by the first candidate (a key ID
/// collision is tried in turn).
pub(crate) fn check_signature(
    signature: &Signature,
    check: &Check<'_, '_>,
    certificates: &Certificates,
    at: OffsetDateTime,
    policy: &Policy,
) -> Result<VerifiedKey, Failure> {
    if !matches!(
        signature.typ(),
        Some(SignatureType::Binary | SignatureType::Text)
    ) {
        return Err(Failure::UnusableSignature {
            reason: "not a signature over a document (RFC 9580 §5.2.1 types 0x00, 0x01)",
        });
    }
    let Some(hash) = signature.hash_alg() else {
        return Err(Failure::Malformed {
            detail: "signature of an unknown version".to_owned(),
        });
    };
    policy.check_hash(hash)?;
    let at_seconds = at.unix_timestamp();
    let mut first_failure = None;
    for (certificate, subkey) in candidates(signature, certificates) {
        match check_with(signature, check, certificate, subkey, at_seconds, policy) {
            Ok((valid, signing_key)) => {
                return Ok(VerifiedKey {
                    fingerprint: valid.fingerprint.clone(),
                    signing_key,
                    emails: valid.emails.clone(),
                    user_id: valid.primary_user_id.clone(),
                    hash: hash_name(hash),
                    created: certificate::created(signature)
                        .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok()),
                });
            }
            Err(failure) => {
                first_failure.get_or_insert(failure);
            }
        }
    }
    Err(first_failure.unwrap_or_else(|| Failure::UnknownSigner {
        key_id: issuer_name(signature),
    }))
}

fn check_with<'c>(
    signature: &Signature,
    check: &Check<'_, '_>,
    certificate: &'c SignedPublicKey,
    subkey: Option<&'c SignedPublicSubKey>,
    at: i64,
    policy: &Policy,
) -> Result<(ValidCertificate<'c>, String), Failure> {
    let valid = certificate::evaluate(certificate, at, policy)?;
    let (key, created_at, fingerprint) = match subkey {
        None => (
            valid.primary_may_sign()?,
            certificate.primary_key.created_at(),
            valid.fingerprint.clone(),
        ),
        Some(subkey) => (
            valid.subkey_may_sign(subkey, at, policy)?,
            subkey.key.created_at(),
            hex(subkey.key.fingerprint().as_bytes()),
        ),
    };
    // A signature dated before its key existed, after the evaluation time, or expired at it
    // is not one the key made in its lifetime (RFC 9580 §5.2.3.11, §5.2.3.18).
    if !certificate::alive_at(signature, at) {
        return Err(Failure::UnusableSignature {
            reason: "signature created after the evaluation time, expired, or without creation time",
        });
    }
    if certificate::created(signature).is_some_and(|made| made < i64::from(created_at.as_secs())) {
        return Err(Failure::UnusableSignature {
            reason: "signature older than the key that made it",
        });
    }
    if !check.run(certificate, &key) {
        return Err(Failure::BadSignature {
            key_id: fingerprint,
        });
    }
    Ok((valid, fingerprint))
}

/// Verify a PGP/MIME detached signature (RFC 3156 §5).
///
/// `signature_part` is the body of the `application/pgp-signature` part (ASCII armor);
/// `signed` is the first body part of the multipart/signed exactly as received, headers
/// included, in canonical CRLF form; `micalg` the multipart/signed parameter, which must name
/// the hash algorithm of every signature (`pgp-sha256`, RFC 3156 §5). Every signature must
/// verify (one bad signature among several fails the layer, as for S/MIME).
pub fn verify_detached(
    signature_part: &[u8],
    signed: &[u8],
    micalg: Option<&str>,
    certificates: &Certificates,
    at: OffsetDateTime,
    policy: &Policy,
    limits: &Limits,
) -> Result<Vec<VerifiedKey>, Failure> {
    if signature_part.len() > limits.signature_bytes {
        return Err(Failure::LimitExceeded(LimitKind::SignatureBytes));
    }
    let signatures = contain_panic(|| -> Result<Vec<DetachedSignature>, Failure> {
        let (parsed, _) = DetachedSignature::from_armor_many(signature_part).map_err(|error| {
            Failure::Malformed {
                detail: error.to_string(),
            }
        })?;
        let mut out = Vec::new();
        for signature in parsed {
            out.push(signature.map_err(|error| Failure::Malformed {
                detail: error.to_string(),
            })?);
            if out.len() > limits.signatures {
                return Err(Failure::LimitExceeded(LimitKind::Signatures));
            }
        }
        Ok(out)
    })
    .unwrap_or_else(|| {
        Err(Failure::Malformed {
            detail: "the OpenPGP parser panicked".to_owned(),
        })
    })?;
    if signatures.is_empty() {
        return Err(Failure::Malformed {
            detail: "no signature packet".to_owned(),
        });
    }
    let declared = micalg.unwrap_or("").trim().to_ascii_lowercase();
    let mut verified = Vec::new();
    for detached in &signatures {
        let signature = &detached.signature;
        if let Some(hash) = signature.hash_alg() {
            let actual = format!("pgp-{}", hash_name(hash));
            if actual != declared {
                return Err(Failure::MicalgMismatch {
                    declared: declared.clone(),
                    actual,
                });
            }
        }
        let check = Check::Detached {
            signature,
            data: signed,
        };
        verified.push(check_signature(
            signature,
            &check,
            certificates,
            at,
            policy,
        )?);
    }
    Ok(verified)
}
