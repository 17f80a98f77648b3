//! Decryption of a PGP/MIME encrypted part (RFC 3156 §4), with the signatures of a
//! signed-and-encrypted message (§6.2).
//!
//! EFAIL rules: only Symmetrically Encrypted Integrity Protected Data (SEIPD v1 with its MDC,
//! or v2 with AEAD) is decrypted; legacy Symmetrically Encrypted Data (tag 9, malleable) and
//! GnuPG's non-standard OCB packet are refused. rPGP reads a SEIPD v1 packet in full and checks
//! its MDC before releasing any plaintext (its default "check first" mode); any failure is one
//! uniform [`Failure::DecryptionFailed`] and no plaintext leaves this module.

use std::io::Read;

use pgp::composed::{DecryptionOptions, Message, TheRing};
use time::OffsetDateTime;

use crate::error::{Failure, contain_panic};
use crate::keys::{Certificates, Identity};
use crate::limits::{LimitKind, Limits};
use crate::policy::Policy;
use crate::verify::{Check, VerifiedKey, check_signature};

/// Nested compressed packets followed before giving up (GnuPG writes one).
pub const COMPRESSION_DEPTH_MAX: usize = 2;

/// What decrypting gave.
#[derive(Debug)]
pub struct Decrypted {
    /// The plaintext: the MIME entity of RFC 3156 §4 (walked by the caller).
    pub plaintext: Vec<u8>,
    /// The signatures of a signed-and-encrypted message (§6.2): `None` when the message was
    /// not signed, else the verified signers, or the first failure (every signature must
    /// verify).
    pub signatures: Option<Result<Vec<VerifiedKey>, Failure>>,
}

/// Check the control part of multipart/encrypted (RFC 3156 §4: `application/pgp-encrypted`
/// whose body is `Version: 1`).
pub fn check_control_part(body: &[u8]) -> Result<(), Failure> {
    let text = std::str::from_utf8(body).map_err(|_| Failure::Structure {
        detail: "the application/pgp-encrypted part is not text",
    })?;
    if text
        .lines()
        .any(|line| line.trim().eq_ignore_ascii_case("version: 1"))
    {
        Ok(())
    } else {
        Err(Failure::Structure {
            detail: "the application/pgp-encrypted part does not say Version: 1",
        })
    }
}

/// Decrypt an ASCII-armored OpenPGP message (the second part of a PGP/MIME
/// multipart/encrypted) with `identities`, and verify the signatures inside it against
/// `certificates` at `at`.
pub fn decrypt(
    armored: &[u8],
    identities: &[Identity],
    certificates: &Certificates,
    at: OffsetDateTime,
    policy: &Policy,
    limits: &Limits,
) -> Result<Decrypted, Failure> {
    if armored.len() > limits.encrypted_bytes {
        return Err(Failure::LimitExceeded(LimitKind::EncryptedBytes));
    }
    if identities.is_empty() {
        return Err(Failure::NoDecryptionKey);
    }
    contain_panic(std::panic::AssertUnwindSafe(|| {
        decrypt_inner(armored, identities, certificates, at, policy, limits)
    }))
    .unwrap_or(Err(Failure::DecryptionFailed))
}

fn decrypt_inner(
    armored: &[u8],
    identities: &[Identity],
    certificates: &Certificates,
    at: OffsetDateTime,
    policy: &Policy,
    limits: &Limits,
) -> Result<Decrypted, Failure> {
    let (message, _) =
        Message::from_armor(armored).map_err(|error| Failure::MalformedEncrypted {
            detail: error.to_string(),
        })?;
    if !message.is_encrypted() {
        return Err(Failure::MalformedEncrypted {
            detail: "the application/octet-stream part is not an encrypted OpenPGP message"
                .to_owned(),
        });
    }
    let ring = TheRing {
        secret_keys: identities.iter().map(|identity| &identity.key).collect(),
        key_passwords: Vec::new(),
        // No legacy SED, no GnuPG OCB: SEIPD v1 (MDC, read in full first) and v2 (AEAD).
        decrypt_options: DecryptionOptions::new(),
        ..Default::default()
    };
    let (mut message, _) = message
        .decrypt_the_ring(ring, true)
        .map_err(|error| match error {
            pgp::errors::Error::MissingKey => Failure::NoDecryptionKey,
            _ => Failure::DecryptionFailed,
        })?;
    let mut depth = 0;
    while message.is_compressed() {
        depth += 1;
        if depth > COMPRESSION_DEPTH_MAX {
            return Err(Failure::DecryptionFailed);
        }
        message = message
            .decompress()
            .map_err(|_| Failure::DecryptionFailed)?;
    }
    if message.is_encrypted() {
        // An encrypted message inside an encrypted message is not RFC 3156.
        return Err(Failure::DecryptionFailed);
    }
    let mut plaintext = Vec::new();
    let cap = u64::try_from(limits.plaintext_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    (&mut message)
        .take(cap)
        .read_to_end(&mut plaintext)
        .map_err(|_| Failure::DecryptionFailed)?;
    if plaintext.len() > limits.plaintext_bytes {
        return Err(Failure::LimitExceeded(LimitKind::PlaintextBytes));
    }
    // Read to the end: the trailing signature packets and the MDC are consumed too.
    let mut rest = [0u8; 1];
    if message
        .read(&mut rest)
        .map_err(|_| Failure::DecryptionFailed)?
        != 0
    {
        return Err(Failure::LimitExceeded(LimitKind::PlaintextBytes));
    }
    let signatures = match &message {
        Message::Signed { reader, .. } => {
            let count = reader.num_signatures();
            Some(if count == 0 {
                Err(Failure::Malformed {
                    detail: "signed message without signatures".to_owned(),
                })
            } else if count > limits.signatures {
                Err(Failure::LimitExceeded(LimitKind::Signatures))
            } else {
                (0..count)
                    .map(|index| {
                        let Some(signature) = reader.signature(index) else {
                            return Err(Failure::Malformed {
                                detail: "signature packet missing".to_owned(),
                            });
                        };
                        let check = Check::Inline {
                            message: &message,
                            index,
                        };
                        check_signature(signature, &check, certificates, at, policy)
                    })
                    .collect()
            })
        }
        _ => None,
    };
    Ok(Decrypted {
        plaintext,
        signatures,
    })
}
