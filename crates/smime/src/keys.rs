//! Signing identities and recipient certificates, loaded from PEM or PKCS#12.
//!
//! An [`Identity`] is what a sending agent needs to produce a SignedData
//! (RFC 8551 §2.4.2, RFC 5652 §5): the private key, the signer's certificate and
//! the certificates that chain it towards a trust anchor, which RFC 8550 §2.3 asks
//! a sending agent to include.
//!
//! Loading is strict: the private key must match the certificate's public key, so a
//! bundle that pairs the wrong key and certificate fails here rather than producing
//! signatures nobody can verify.

use std::sync::Arc;

use openssl::pkcs12::Pkcs12;
use openssl::pkey::{Id, PKey, PKeyRef, Private};
use openssl::x509::X509;
use time::OffsetDateTime;

use crate::error::Failure;
use crate::policy::AlgorithmPolicy;
use crate::trust::{ParsedCertificate, TrustStore};

/// An OpenSSL error stack shown as its reason strings only ("mac verify failure"), never
/// with OpenSSL's source file and line (`../crypto/pkcs12/p12_kiss.c:71`), which tell a user
/// nothing and a reader of logs more than they need.
#[derive(Debug)]
pub struct OpenSslReasons(openssl::error::ErrorStack);

impl OpenSslReasons {
    /// The wrapped stack.
    pub fn stack(&self) -> &openssl::error::ErrorStack {
        &self.0
    }
}

impl From<openssl::error::ErrorStack> for OpenSslReasons {
    fn from(stack: openssl::error::ErrorStack) -> Self {
        OpenSslReasons(stack)
    }
}

impl std::fmt::Display for OpenSslReasons {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut reasons: Vec<&str> = Vec::new();
        for error in self.0.errors() {
            let reason = error.reason().unwrap_or("unknown OpenSSL error");
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
        if reasons.is_empty() {
            f.write_str("OpenSSL reported no reason")
        } else {
            f.write_str(&reasons.join("; "))
        }
    }
}

impl std::error::Error for OpenSslReasons {}

/// Why an identity or a certificate list could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM input holds no `PRIVATE KEY` block.
    #[error("no private key in the PEM input")]
    NoPrivateKey,
    /// The PEM private key is encrypted (PKCS#8 `ENCRYPTED PRIVATE KEY` or a traditional
    /// `Proc-Type: 4,ENCRYPTED` block) and no password was given. Never prompted for.
    #[error("the private key is encrypted and no password was given")]
    PasswordNeeded,
    /// The password does not decrypt the PEM private key.
    #[error("the password does not decrypt the private key")]
    WrongPassword,
    /// The input holds no certificate.
    #[error("no certificate in the input")]
    NoCertificate,
    /// None of the certificates carries the public key matching the private key.
    #[error("no certificate matches the private key")]
    KeyCertificateMismatch,
    /// The key is neither RSA nor EC. RFC 8551 §2.2 also lists EdDSA (Ed25519),
    /// which this crate does not support.
    #[error("unsupported private key type (only RSA and EC keys are supported)")]
    UnsupportedKeyType,
    /// A certificate block in the PEM input is malformed.
    #[error("malformed certificate in PEM input: {0}")]
    MalformedCertificate(OpenSslReasons),
    /// The input is not a PKCS#12 (PFX) structure.
    #[error("not a PKCS#12 file: {0}")]
    Pkcs12Malformed(OpenSslReasons),
    /// The PKCS#12 structure does not open with the password (its MAC does not verify, or
    /// its bags do not decrypt): almost always a wrong or missing password.
    #[error("the password does not open the PKCS#12 file ({0})")]
    Pkcs12WrongPassword(OpenSslReasons),
    /// The PKCS#12 structure decrypted but lacks a private key.
    #[error("PKCS#12 input holds no private key")]
    Pkcs12WithoutKey,
    /// OpenSSL failed while comparing keys.
    #[error("OpenSSL error while checking the key: {0}")]
    OpenSsl(OpenSslReasons),
}

impl KeyError {
    /// Whether a (different) password could fix this error: the caller can then hint at
    /// where the password comes from.
    pub fn is_password_problem(&self) -> bool {
        matches!(
            self,
            KeyError::PasswordNeeded | KeyError::WrongPassword | KeyError::Pkcs12WrongPassword(_)
        )
    }
}

/// Whether PEM text holds an encrypted private key: PKCS#8 `ENCRYPTED PRIVATE KEY` (RFC 5958
/// §3) or a traditional OpenSSL key with `Proc-Type: 4,ENCRYPTED` (RFC 1421 §4.6.1.1).
fn pem_key_is_encrypted(pem: &[u8]) -> bool {
    let contains = |needle: &[u8]| pem.windows(needle.len()).any(|window| window == needle);
    contains(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || contains(b"Proc-Type: 4,ENCRYPTED")
}

/// A signing (and decrypting) identity: private key, certificate and chain.
///
/// RFC 8550 §2.3: "A sending agent SHOULD include at least one chain of
/// certificates up to, but not including, a CA that it believes that the
/// recipient may trust as authoritative." [`Identity::chain`]
/// holds those certificates (intermediates; a root, if present, is kept as given).
#[derive(Clone)]
pub struct Identity {
    private_key: PKey<Private>,
    certificate: X509,
    chain: Vec<X509>,
}

impl std::fmt::Debug for Identity {
    /// Shows the certificate subject only; never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("certificate", &self.certificate.subject_name())
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Loads an identity from one PEM bundle holding an unencrypted private key
    /// (`PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`) and certificates in
    /// any order.
    ///
    /// The certificate whose public key matches the private key becomes the
    /// identity's certificate; every other certificate becomes the chain, in the
    /// order given. An encrypted key is [`KeyError::PasswordNeeded`] (never prompted
    /// for); see [`Identity::from_pem_with_password`].
    pub fn from_pem(pem: &[u8]) -> Result<Identity, KeyError> {
        Identity::from_pem_with_password(pem, None)
    }

    /// As [`Identity::from_pem`], and an encrypted private key is decrypted with
    /// `password`: PKCS#8 `ENCRYPTED PRIVATE KEY` (PBES2, RFC 8018) or a traditional
    /// `Proc-Type: 4,ENCRYPTED` key. A password given for an unencrypted key is ignored.
    pub fn from_pem_with_password(
        pem: &[u8],
        password: Option<&[u8]>,
    ) -> Result<Identity, KeyError> {
        let encrypted = pem_key_is_encrypted(pem);
        // An explicit callback stops OpenSSL's default callback from prompting on the
        // terminal: it hands over the password (or none) and nothing else.
        let private_key = PKey::private_key_from_pem_callback(pem, |buffer| {
            let Some(password) = password else {
                return Ok(0);
            };
            match buffer.get_mut(..password.len()) {
                Some(target) => {
                    target.copy_from_slice(password);
                    Ok(password.len())
                }
                // Longer than OpenSSL's buffer (1 KiB): it cannot be the password.
                None => Ok(0),
            }
        })
        .map_err(|_| match (encrypted, password) {
            (true, None) => KeyError::PasswordNeeded,
            (true, Some(_)) => KeyError::WrongPassword,
            (false, _) => KeyError::NoPrivateKey,
        })?;
        let certificates = certificates_from_pem(pem)?;
        Identity::from_parts(private_key, certificates)
    }

    /// Loads an identity from a DER-encoded PKCS#12 (PFX) file and its password.
    ///
    /// The PKCS#12 end-entity certificate becomes the identity's certificate and
    /// the other certificates the chain. A wrong password yields
    /// [`KeyError::Pkcs12WrongPassword`].
    pub fn from_pkcs12(der: &[u8], password: &str) -> Result<Identity, KeyError> {
        let parsed = Pkcs12::from_der(der)
            .map_err(|stack| KeyError::Pkcs12Malformed(stack.into()))?
            .parse2(password)
            .map_err(|stack| KeyError::Pkcs12WrongPassword(stack.into()))?;
        let private_key = parsed.pkey.ok_or(KeyError::Pkcs12WithoutKey)?;
        let mut certificates: Vec<X509> = parsed.cert.into_iter().collect();
        if let Some(ca) = parsed.ca {
            certificates.extend(ca);
        }
        Identity::from_parts(private_key, certificates)
    }

    /// Builds an identity from a key and candidate certificates, picking the
    /// certificate that matches the key.
    fn from_parts(
        private_key: PKey<Private>,
        certificates: Vec<X509>,
    ) -> Result<Identity, KeyError> {
        if !matches!(private_key.id(), Id::RSA | Id::EC) {
            return Err(KeyError::UnsupportedKeyType);
        }
        if certificates.is_empty() {
            return Err(KeyError::NoCertificate);
        }
        let mut matching = None;
        for (index, certificate) in certificates.iter().enumerate() {
            let public_key = certificate
                .public_key()
                .map_err(|stack| KeyError::OpenSsl(stack.into()))?;
            if public_key.public_eq(&private_key) {
                matching = Some(index);
                break;
            }
        }
        let index = matching.ok_or(KeyError::KeyCertificateMismatch)?;
        let mut chain = certificates;
        let certificate = chain.remove(index);
        Ok(Identity {
            private_key,
            certificate,
            chain,
        })
    }

    /// The signer's end-entity certificate.
    pub fn certificate(&self) -> &X509 {
        &self.certificate
    }

    /// The other certificates of the bundle (intermediates), in input order.
    pub fn chain(&self) -> &[X509] {
        &self.chain
    }

    /// This identity with `intermediates` appended to its chain (those not already in it, nor
    /// the identity's own certificate): `sign --intermediates`, so that the SignedData carries
    /// the path recipients need (RFC 8550 §2.3).
    pub fn with_intermediates(mut self, intermediates: &[X509]) -> Self {
        let mut seen: Vec<Vec<u8>> = std::iter::once(&self.certificate)
            .chain(&self.chain)
            .filter_map(|cert| cert.to_der().ok())
            .collect();
        for cert in intermediates {
            if let Ok(der) = cert.to_der()
                && !seen.contains(&der)
            {
                seen.push(der);
                self.chain.push(cert.clone());
            }
        }
        self
    }

    /// The private key (RSA or EC). Crate-internal: callers sign and decrypt
    /// through this crate rather than handling the key.
    pub(crate) fn private_key(&self) -> &PKeyRef<Private> {
        &self.private_key
    }
}

/// Whether a gate would reject signatures made with `identity` at `at`, decided by the very
/// checks verification applies to a signer (`crate::cms`): path validation with the S/MIME
/// signing purpose (validity times of every certificate, extendedKeyUsage emailProtection,
/// keyUsage digitalSignature or nonRepudiation; RFC 8550 §4.4), revocation against the
/// store's CRLs, and the [`AlgorithmPolicy`] on every key and certificate signature of the
/// chain.
///
/// `trust`: the anchors a gate would use. `None` (the signer has no anchors configured):
/// the identity's own chain certificates (or its certificate, when it has no chain) are
/// taken as anchors, so everything but trust is still checked. A sending agent that cannot
/// produce an acceptable signature should not produce one at all (RFC 8551 §2.4, §4.1).
pub fn check_signing_identity(
    identity: &Identity,
    trust: Option<&TrustStore>,
    policy: &AlgorithmPolicy,
    at: OffsetDateTime,
) -> Result<(), Failure> {
    // An internal OpenSSL failure (allocation, re-encoding) is never "acceptable".
    let internal = |_| Failure::UntrustedCertificate {
        verify_error: -1,
        depth: 0,
    };
    let own_anchors;
    let store = match trust {
        Some(store) => store,
        None => {
            let anchors = if identity.chain.is_empty() {
                vec![identity.certificate.clone()]
            } else {
                identity.chain.clone()
            };
            own_anchors = TrustStore::self_anchored(anchors);
            &own_anchors
        }
    };
    let parse = |certificate: &X509| -> Result<Arc<ParsedCertificate>, Failure> {
        let der = certificate.to_der().map_err(internal)?;
        store.parse_certificate(&der).map_err(internal)
    };
    let signer = parse(&identity.certificate)?;
    let offered = identity
        .chain
        .iter()
        .map(parse)
        .collect::<Result<Vec<_>, _>>()?;
    // The signing side checks its own identity against the given CRLs where they apply; it
    // fetches nothing (a signer needs no network to sign).
    let revocation = crate::trust::Revocation {
        mode: crate::RevocationMode::IfAvailable,
        source: None,
    };
    let chain = store.validate(&signer, &offered, &[], &[], at, &revocation)?;
    crate::cms::check_chain(&chain.chain, policy)
}

/// Reads every certificate from PEM input (for recipient certificates and trust
/// anchors). Non-certificate blocks (keys, CRLs) are skipped.
///
/// Fails with [`KeyError::NoCertificate`] when there is none, so an empty or wrong
/// file is never silently taken as "no recipients" or "no anchors".
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<X509>, KeyError> {
    let certificates =
        X509::stack_from_pem(pem).map_err(|stack| KeyError::MalformedCertificate(stack.into()))?;
    if certificates.is_empty() {
        return Err(KeyError::NoCertificate);
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::x509::X509Ref;
    use std::path::PathBuf;

    fn certs_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../certs")
    }

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(certs_dir().join(path)).unwrap()
    }

    fn email(certificate: &X509Ref) -> String {
        let names = certificate.subject_alt_names().unwrap();
        names
            .iter()
            .find_map(|n| n.email().map(str::to_owned))
            .unwrap()
    }

    #[test]
    fn pem_bundle_in_any_order_picks_the_matching_certificate() {
        for alg in ["rsa2048", "p256"] {
            // Chain first, key last: the matching certificate is still found.
            let mut pem = read(&format!("{alg}/organizer.chain.pem"));
            pem.extend(read(&format!("{alg}/organizer.key.pem")));
            let identity = Identity::from_pem(&pem).unwrap();
            assert_eq!(email(identity.certificate()), "organizer@example.com");
            assert_eq!(identity.chain().len(), 1);
            let intermediate = certificates_from_pem(&read("intermediate.cert.pem")).unwrap();
            assert_eq!(
                identity.chain()[0].to_der().unwrap(),
                intermediate[0].to_der().unwrap()
            );
        }
    }

    #[test]
    fn pkcs12_with_password() {
        for alg in ["rsa2048", "p256"] {
            let der = read(&format!("{alg}/attendee.p12"));
            let identity = Identity::from_pkcs12(&der, "imipsec").unwrap();
            assert_eq!(email(identity.certificate()), "attendee@example.com");
            assert_eq!(identity.chain().len(), 1);
        }
    }

    #[test]
    fn pkcs12_wrong_password_is_an_error() {
        let der = read("rsa2048/attendee.p12");
        assert!(matches!(
            Identity::from_pkcs12(&der, "wrong"),
            Err(KeyError::Pkcs12WrongPassword(_))
        ));
        assert!(matches!(
            Identity::from_pkcs12(b"not der", "imipsec"),
            Err(KeyError::Pkcs12Malformed(_))
        ));
    }

    #[test]
    fn mismatched_key_and_certificate_is_refused() {
        let mut pem = read("rsa2048/organizer.cert.pem");
        pem.extend(read("rsa2048/attendee.key.pem"));
        assert!(matches!(
            Identity::from_pem(&pem),
            Err(KeyError::KeyCertificateMismatch)
        ));
    }

    #[test]
    fn missing_parts_are_typed_errors() {
        assert!(matches!(
            Identity::from_pem(&read("rsa2048/organizer.cert.pem")),
            Err(KeyError::NoPrivateKey)
        ));
        assert!(matches!(
            Identity::from_pem(&read("rsa2048/organizer.key.pem")),
            Err(KeyError::NoCertificate)
        ));
        assert!(matches!(
            certificates_from_pem(b""),
            Err(KeyError::NoCertificate)
        ));
        assert!(matches!(
            certificates_from_pem(&read("rsa2048/organizer.key.pem")),
            Err(KeyError::NoCertificate)
        ));
    }

    #[test]
    fn certificates_from_pem_reads_every_certificate() {
        let certificates = certificates_from_pem(&read("p256/delegate.chain.pem")).unwrap();
        assert_eq!(certificates.len(), 2);
    }

    fn identity_of(name: &str) -> Identity {
        let mut pem = read(&format!("{name}.key.pem"));
        pem.extend(read(&format!("{name}.chain.pem")));
        Identity::from_pem(&pem).unwrap()
    }

    fn at() -> OffsetDateTime {
        // certs/README.md: the evaluation time of the test PKI.
        OffsetDateTime::from_unix_timestamp(1_780_272_000).unwrap()
    }

    fn anchors() -> TrustStore {
        TrustStore::from_pem_files(&[certs_dir().join("root.cert.pem")], &[] as &[PathBuf]).unwrap()
    }

    fn codes_for(name: &str) -> [Result<(), &'static str>; 2] {
        let identity = identity_of(name);
        let policy = AlgorithmPolicy::default();
        let store = anchors();
        [
            check_signing_identity(&identity, Some(&store), &policy, at()).map_err(|f| f.code()),
            check_signing_identity(&identity, None, &policy, at()).map_err(|f| f.code()),
        ]
    }

    // Issue #14: `sign` made signatures a gate rejects. The checks are verify's own, with
    // anchors and, without anchors, on the identity's own chain.
    #[test]
    fn signing_identity_a_gate_accepts_passes_both_ways() {
        for name in ["rsa2048/organizer", "p256/attendee"] {
            assert_eq!(codes_for(name), [Ok(()), Ok(())], "{name}");
        }
    }

    #[test]
    fn signing_identity_expired_is_refused() {
        assert_eq!(
            codes_for("special/expired"),
            [Err("certificate-expired"), Err("certificate-expired")]
        );
        // Not yet valid: the test PKI starts in 2025.
        let identity = identity_of("rsa2048/organizer");
        let early = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let result = check_signing_identity(&identity, None, &AlgorithmPolicy::default(), early);
        assert_eq!(result.map_err(|f| f.code()), Err("certificate-expired"));
    }

    #[test]
    fn signing_identity_without_email_protection_is_refused() {
        assert_eq!(
            codes_for("special/wrong-eku"),
            [Err("certificate-purpose"), Err("certificate-purpose")]
        );
    }

    #[test]
    fn signing_identity_with_weak_key_is_refused() {
        assert_eq!(
            codes_for("special/weak-rsa1024"),
            [Err("weak-algorithm"), Err("weak-algorithm")]
        );
    }

    #[test]
    fn signing_identity_untrusted_by_the_anchors_is_refused() {
        // Without anchors trust cannot be judged; with them it is.
        assert_eq!(
            codes_for("special/untrusted"),
            [Err("untrusted-certificate"), Ok(())]
        );
    }

    #[test]
    fn signing_identity_revoked_by_a_configured_crl_is_refused() {
        let store = TrustStore::from_pem_files(
            &[certs_dir().join("root.cert.pem")],
            &[certs_dir().join("intermediate.crl.pem")],
        )
        .unwrap();
        let result = check_signing_identity(
            &identity_of("special/revoked"),
            Some(&store),
            &AlgorithmPolicy::default(),
            at(),
        );
        assert_eq!(result.map_err(|f| f.code()), Err("certificate-revoked"));
    }

    // Issue #14: encrypted PEM keys failed although --help said the password serves them.
    #[test]
    fn encrypted_pem_keys_open_with_the_password_only() {
        let key_pem = read("rsa2048/organizer.key.pem");
        let key = PKey::private_key_from_pem(&key_pem).unwrap();
        let chain = read("rsa2048/organizer.chain.pem");
        let pkcs8 = key
            .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"s3cret")
            .unwrap();
        let traditional = key
            .rsa()
            .unwrap()
            .private_key_to_pem_passphrase(openssl::symm::Cipher::aes_128_cbc(), b"s3cret")
            .unwrap();
        assert!(String::from_utf8_lossy(&traditional).contains("Proc-Type: 4,ENCRYPTED"));
        for encrypted in [pkcs8, traditional] {
            let mut pem = encrypted;
            pem.extend(&chain);
            let identity = Identity::from_pem_with_password(&pem, Some(b"s3cret")).unwrap();
            assert_eq!(email(identity.certificate()), "organizer@example.com");
            assert!(matches!(
                Identity::from_pem(&pem),
                Err(KeyError::PasswordNeeded)
            ));
            assert!(matches!(
                Identity::from_pem_with_password(&pem, Some(b"wrong")),
                Err(KeyError::WrongPassword)
            ));
        }
    }

    #[test]
    fn openssl_reasons_carry_no_source_paths() {
        let der = read("rsa2048/attendee.p12");
        let error = Identity::from_pkcs12(&der, "wrong").unwrap_err();
        let text = error.to_string();
        assert!(error.is_password_problem());
        assert!(!text.contains(".c:"), "{text}");
        assert!(!text.contains("crypto/"), "{text}");
        assert!(text.contains("mac verify failure"), "{text}");
    }
}
