//! Certificates the operator vouches for, and their evaluation at a given time.
//!
//! rPGP parses certificates and checks single signatures; what a certificate means at an
//! instant (which self-signatures count, expiry, revocation, which subkey may sign, which user
//! IDs are identities) is decided here, in one place, in the spirit of sequoia's `ValidCert`:
//!
//! - the primary key must exist at the evaluation time, pass the [`Policy`], and not be revoked
//!   by a Key Revocation signature (0x20) its own key made: a revocation without reason or
//!   with reason "compromised" (or any other not "superseded"/"retired") applies whatever its
//!   date (RFC 9580 §5.2.3.31: hard revocation); "superseded"/"retired" applies from its date;
//! - a user ID counts only with a valid self-certification (0x10–0x13 by the primary key,
//!   created at or before the evaluation time, not expired, hash under the policy) not
//!   followed by a valid Certification Revocation (0x30); only the email of such a user ID is
//!   an identity ([`VerifiedKey::emails`](crate::VerifiedKey::emails));
//! - the newest valid self-certification (a primary user ID first) gives the key's expiration
//!   time and key flags (RFC 9580 §5.2.3.10 / §5.2.3.29);
//! - a subkey signs only with a valid Subkey Binding (0x18) carrying the sign flag and a valid
//!   embedded Primary Key Binding back-signature (0x19), not revoked (0x28), not expired.

use pgp::composed::{SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{KeyFlags, RevocationCode, Signature, SignatureType, SubpacketData};
use pgp::types::{KeyDetails, Tag};

use crate::error::Failure;
use crate::policy::Policy;

/// Hex of a fingerprint or key ID, uppercase (as GnuPG prints them).
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02X}");
            out
        })
}

/// Seconds since the epoch of a signature's creation time (`None`: no creation time, which
/// RFC 9580 §5.2.3.11 requires: such a signature counts for nothing).
pub(crate) fn created(signature: &Signature) -> Option<i64> {
    signature
        .created()
        .map(|timestamp| i64::from(timestamp.as_secs()))
}

/// The newest of `candidates` (by creation time) that `verifies`, with its creation time; a
/// candidate no newer than one already verified is not verified at all.
fn newest_verified<'s>(
    candidates: impl Iterator<Item = &'s Signature>,
    verifies: impl Fn(&Signature) -> bool,
) -> Option<(i64, &'s Signature)> {
    let mut newest: Option<(i64, &Signature)> = None;
    for signature in candidates {
        let Some(when) = created(signature) else {
            continue;
        };
        if newest.is_some_and(|(seen, _)| seen >= when) {
            continue;
        }
        if verifies(signature) {
            newest = Some((when, signature));
        }
    }
    newest
}

/// Whether `signature` exists and is not expired at `at`.
pub(crate) fn alive_at(signature: &Signature, at: i64) -> bool {
    let Some(created) = created(signature) else {
        return false;
    };
    if created > at {
        return false;
    }
    match signature.signature_expiration_time() {
        Some(expires) if expires.as_secs() != 0 => created + i64::from(expires.as_secs()) > at,
        _ => true,
    }
}

/// A revocation that applies whatever its date: no reason, "compromised", or a reason this
/// crate does not know (RFC 9580 §5.2.3.31 treats only superseded and retired as soft).
fn hard_revocation(signature: &Signature) -> bool {
    !matches!(
        signature.revocation_reason_code(),
        Some(RevocationCode::KeySuperseded | RevocationCode::KeyRetired)
    )
}

fn revocation_applies(signature: &Signature, at: i64) -> bool {
    hard_revocation(signature) || created(signature).is_some_and(|created| created <= at)
}

/// The email of a user ID: the text between the one `<` and the `>` that ends the user ID
/// (`Alice <alice@example.org>`, RFC 9580 §5.11's convention), or the whole user ID when it is
/// a bare address; `None` for a user ID that names no address (a name only) or that could be
/// read two ways (two `<`, text after the `>`): such a user ID is no identity. The address is
/// checked as an addr-spec by the caller (the S/MIME crate's one rule).
pub(crate) fn user_id_email(user_id: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(user_id).ok()?.trim();
    if text.contains('<') || text.contains('>') {
        let open = text.find('<')?;
        if text.matches('<').count() != 1 || text.matches('>').count() != 1 {
            return None;
        }
        let inner = text.get(open + 1..)?.strip_suffix('>')?;
        return Some(inner.to_owned());
    }
    (text.contains('@') && !text.contains(char::is_whitespace)).then(|| text.to_owned())
}

/// A certificate as it stands at the evaluation time: valid, with the identities it names.
#[derive(Debug)]
pub(crate) struct ValidCertificate<'c> {
    pub(crate) certificate: &'c SignedPublicKey,
    pub(crate) fingerprint: String,
    /// Emails of user IDs with a valid self-signature, in certificate order, deduplicated.
    pub(crate) emails: Vec<String>,
    /// The primary user ID (or the first valid one), as text.
    pub(crate) primary_user_id: String,
    /// Key flags of the newest valid self-certification.
    primary_flags: KeyFlags,
}

/// Evaluate `certificate` at `at` (seconds since the epoch).
pub(crate) fn evaluate<'c>(
    certificate: &'c SignedPublicKey,
    at: i64,
    policy: &Policy,
) -> Result<ValidCertificate<'c>, Failure> {
    let primary = &certificate.primary_key;
    let fingerprint = hex(primary.fingerprint().as_bytes());
    policy.check_key(primary)?;
    let created_at = i64::from(primary.created_at().as_secs());
    if created_at > at {
        return Err(Failure::CertificateExpired {
            fingerprint,
            not_yet_valid: true,
        });
    }
    for revocation in &certificate.details.revocation_signatures {
        if revocation.typ() == Some(SignatureType::KeyRevocation)
            && revocation_applies(revocation, at)
            && revocation.verify_key(primary).is_ok()
        {
            return Err(Failure::CertificateRevoked { fingerprint });
        }
    }
    let mut emails: Vec<String> = Vec::new();
    let mut primary_user_id: Option<(bool, i64, String)> = None;
    let mut newest: Option<(bool, i64, &Signature)> = None;
    let mut weak: Option<Failure> = None;
    for user in &certificate.details.users {
        let certifications = user.signatures.iter().filter(|signature| {
            let certification = matches!(
                signature.typ(),
                Some(
                    SignatureType::CertGeneric
                        | SignatureType::CertPersona
                        | SignatureType::CertCasual
                        | SignatureType::CertPositive
                )
            );
            if !certification || !alive_at(signature, at) {
                return false;
            }
            match signature.hash_alg().map(|hash| policy.check_hash(hash)) {
                Some(Err(failure)) => {
                    // Remember why, should no user ID be left (a SHA-1 self-signed key is
                    // `weak-algorithm`, not `untrusted-certificate`).
                    weak.get_or_insert(failure);
                    false
                }
                _ => true,
            }
        });
        let binding = newest_verified(certifications, |signature| {
            signature
                .verify_certification(primary, Tag::UserId, &user.id)
                .is_ok()
        });
        let Some((when, binding)) = binding else {
            continue;
        };
        let revoked = user.signatures.iter().any(|signature| {
            signature.typ() == Some(SignatureType::CertRevocation)
                && created(signature).is_some_and(|revoked| revoked >= when && revoked <= at)
                && signature
                    .verify_certification(primary, Tag::UserId, &user.id)
                    .is_ok()
        });
        if revoked {
            continue;
        }
        let text = String::from_utf8_lossy(user.id.id()).into_owned();
        if let Some(email) = user_id_email(user.id.id())
            && !emails.contains(&email)
        {
            emails.push(email);
        }
        let is_primary = binding.is_primary();
        if primary_user_id
            .as_ref()
            .is_none_or(|(primary, _, _)| is_primary && !primary)
        {
            primary_user_id = Some((is_primary, when, text));
        }
        if newest
            .is_none_or(|(primary, newest_when, _)| (is_primary, when) > (primary, newest_when))
        {
            newest = Some((is_primary, when, binding));
        }
    }
    let (Some((_, _, binding)), Some((_, _, primary_user_id))) = (newest, primary_user_id) else {
        return Err(weak.unwrap_or(Failure::NoValidUserId { fingerprint }));
    };
    // RFC 9580 §5.2.3.10: a v6 key keeps its expiration and flags in a Direct Key
    // signature (0x1F); v4 keys may too. The newest valid one counts beside the user ID
    // binding, and an expiration in either ends the key (fail closed).
    let direct = newest_direct_signature(certificate, at, policy);
    for signature in [Some(binding), direct].into_iter().flatten() {
        if let Some(expires) = signature.key_expiration_time()
            && expires.as_secs() != 0
            && created_at + i64::from(expires.as_secs()) <= at
        {
            return Err(Failure::CertificateExpired {
                fingerprint,
                not_yet_valid: false,
            });
        }
    }
    let has_flags = |signature: &Signature| {
        signature.config().is_some_and(|config| {
            config
                .hashed_subpackets()
                .any(|subpacket| matches!(subpacket.data, SubpacketData::KeyFlags(_)))
        })
    };
    let primary_flags = match direct {
        Some(direct) if !has_flags(binding) => direct.key_flags(),
        _ => binding.key_flags(),
    };
    Ok(ValidCertificate {
        certificate,
        fingerprint,
        emails,
        primary_user_id,
        primary_flags,
    })
}

/// The newest Direct Key signature (0x1F) by the primary key itself, alive at `at`, under the
/// policy.
fn newest_direct_signature<'c>(
    certificate: &'c SignedPublicKey,
    at: i64,
    policy: &Policy,
) -> Option<&'c Signature> {
    let primary = &certificate.primary_key;
    certificate
        .details
        .direct_signatures
        .iter()
        .filter(|signature| {
            signature.typ() == Some(SignatureType::Key)
                && alive_at(signature, at)
                && signature
                    .hash_alg()
                    .is_some_and(|hash| policy.check_hash(hash).is_ok())
                && signature.verify_key(primary).is_ok()
        })
        .max_by_key(|signature| created(signature))
}

/// The key that made a signature, as a key of a valid certificate.
pub(crate) enum SigningKey<'c> {
    /// The primary key.
    Primary,
    /// A subkey with a valid signing binding.
    Subkey(&'c SignedPublicSubKey),
}

impl<'c> ValidCertificate<'c> {
    /// Check that the primary key may sign at `at`.
    pub(crate) fn primary_may_sign(&self) -> Result<SigningKey<'c>, Failure> {
        if !self.primary_flags.sign() {
            return Err(Failure::NotSigningKey {
                fingerprint: self.fingerprint.clone(),
            });
        }
        Ok(SigningKey::Primary)
    }

    /// The newest valid binding of `subkey` at `at` (not revoked, not expired, key policy).
    fn subkey_binding(
        &self,
        subkey: &'c SignedPublicSubKey,
        at: i64,
        policy: &Policy,
    ) -> Result<&'c Signature, Failure> {
        let primary = &self.certificate.primary_key;
        let fingerprint = hex(subkey.key.fingerprint().as_bytes());
        policy.check_key(&subkey.key)?;
        let created_at = i64::from(subkey.key.created_at().as_secs());
        if created_at > at {
            return Err(Failure::CertificateExpired {
                fingerprint,
                not_yet_valid: true,
            });
        }
        for revocation in &subkey.signatures {
            if revocation.typ() == Some(SignatureType::SubkeyRevocation)
                && revocation_applies(revocation, at)
                && revocation
                    .verify_subkey_binding(primary, &subkey.key)
                    .is_ok()
            {
                return Err(Failure::CertificateRevoked { fingerprint });
            }
        }
        let bindings = subkey.signatures.iter().filter(|signature| {
            signature.typ() == Some(SignatureType::SubkeyBinding)
                && alive_at(signature, at)
                && signature
                    .hash_alg()
                    .is_none_or(|hash| policy.check_hash(hash).is_ok())
        });
        let binding = newest_verified(bindings, |signature| {
            signature
                .verify_subkey_binding(primary, &subkey.key)
                .is_ok()
        });
        let Some((_, binding)) = binding else {
            return Err(Failure::NotSigningKey { fingerprint });
        };
        if let Some(expires) = binding.key_expiration_time()
            && expires.as_secs() != 0
            && created_at + i64::from(expires.as_secs()) <= at
        {
            return Err(Failure::CertificateExpired {
                fingerprint,
                not_yet_valid: false,
            });
        }
        Ok(binding)
    }

    /// Check that `subkey` is bound as a signing key at `at` and neither expired nor revoked.
    pub(crate) fn subkey_may_sign(
        &self,
        subkey: &'c SignedPublicSubKey,
        at: i64,
        policy: &Policy,
    ) -> Result<SigningKey<'c>, Failure> {
        let primary = &self.certificate.primary_key;
        let binding = self.subkey_binding(subkey, at, policy)?;
        // RFC 9580 §5.2.3.34: a signing subkey's binding carries the subkey's own Primary Key
        // Binding signature (0x19), so that nobody binds someone else's signing key.
        let back_signed = binding.key_flags().sign()
            && binding.embedded_signature().is_some_and(|back| {
                back.typ() == Some(SignatureType::KeyBinding)
                    && back
                        .hash_alg()
                        .is_some_and(|hash| policy.check_hash(hash).is_ok())
                    && back
                        .verify_primary_key_binding(&subkey.key, primary)
                        .is_ok()
            });
        if !back_signed {
            return Err(Failure::NotSigningKey {
                fingerprint: hex(subkey.key.fingerprint().as_bytes()),
            });
        }
        Ok(SigningKey::Subkey(subkey))
    }

    /// Whether `subkey` is bound for encryption at `at` and neither expired nor revoked.
    pub(crate) fn subkey_may_encrypt(
        &self,
        subkey: &'c SignedPublicSubKey,
        at: i64,
        policy: &Policy,
    ) -> bool {
        self.subkey_binding(subkey, at, policy)
            .is_ok_and(|binding| {
                let flags = binding.key_flags();
                flags.encrypt_comms() || flags.encrypt_storage()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attack on expiry: an expiration set only in a Direct Key signature (where RFC 9580 v6
    /// keys keep it) must end the key; reading only the user ID binding would keep an expired
    /// key valid forever.
    #[test]
    fn an_expiration_in_a_direct_key_signature_ends_the_key() {
        use pgp::composed::{Deserializable, SignedSecretKey};
        use pgp::crypto::hash::HashAlgorithm;
        use pgp::packet::{SignatureConfig, Subpacket};
        use pgp::types::{Duration, Password, Timestamp};

        let armored = include_bytes!(
            "../../../testdata/openpgp/thunderbird/alice@openpgp.example-0xf231550c4f47e38e-secret.asc"
        );
        let (secret, _) = SignedSecretKey::from_reader_single(&armored[..]).unwrap();
        let mut public = secret.to_public_key();
        let at = 1_780_272_000; // 2026-06-01
        let policy = Policy::default();
        assert!(evaluate(&public, at, &policy).is_ok());
        let created = public.primary_key.created_at().as_secs();
        let mut config = SignatureConfig::v4(
            SignatureType::Key,
            public.primary_key.algorithm(),
            HashAlgorithm::Sha256,
        );
        config.hashed_subpackets = vec![
            Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
                created + 86_400,
            )))
            .unwrap(),
            Subpacket::regular(SubpacketData::IssuerFingerprint(
                public.primary_key.fingerprint(),
            ))
            .unwrap(),
            Subpacket::regular(SubpacketData::KeyExpirationTime(Duration::from_secs(
                365 * 86_400,
            )))
            .unwrap(),
        ];
        let direct = config
            .sign_key(&secret.primary_key, &Password::empty(), &public.primary_key)
            .unwrap();
        public.details.direct_signatures.push(direct);
        assert!(matches!(
            evaluate(&public, at, &policy),
            Err(Failure::CertificateExpired {
                not_yet_valid: false,
                ..
            })
        ));
        // Within the year it is valid.
        // (The user ID self-signature dates from 2019-10-15, 266 days after the key.)
        let within = evaluate(&public, i64::from(created) + 300 * 86_400, &policy);
        assert!(within.is_ok(), "{:?}", within.err());
    }

    #[test]
    fn the_email_of_a_user_id() {
        assert_eq!(
            user_id_email(b"Alice Organizer <alice@example.org>").as_deref(),
            Some("alice@example.org")
        );
        assert_eq!(
            user_id_email(b"alice@example.org").as_deref(),
            Some("alice@example.org")
        );
        assert_eq!(user_id_email(b"Alice Organizer"), None);
        assert_eq!(user_id_email(b"Alice <unterminated"), None);
        // Two readings (which bracket names the address?): no identity at all.
        assert_eq!(
            user_id_email(b"Mallory <mallory@evil.example> <alice@example.org>"),
            None
        );
        assert_eq!(user_id_email(b"<alice@example.org> trailing"), None);
    }
}
