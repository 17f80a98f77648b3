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

use openssl::pkcs12::Pkcs12;
use openssl::pkey::{Id, PKey, PKeyRef, Private};
use openssl::x509::X509;

/// Why an identity or a certificate list could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM input holds no `PRIVATE KEY` block (or only an encrypted one, which
    /// [`Identity::from_pem`] deliberately does not prompt for; use PKCS#12 instead).
    #[error("no usable unencrypted private key in the PEM input")]
    NoPrivateKey,
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
    #[error("malformed certificate in PEM input")]
    MalformedCertificate(#[source] openssl::error::ErrorStack),
    /// The PKCS#12 structure is malformed, or the password is wrong (PKCS#12 does
    /// not distinguish the two: a wrong password fails the MAC check).
    #[error("PKCS#12 input is malformed or the password is wrong")]
    Pkcs12(#[source] openssl::error::ErrorStack),
    /// The PKCS#12 structure decrypted but lacks a private key.
    #[error("PKCS#12 input holds no private key")]
    Pkcs12WithoutKey,
    /// OpenSSL failed while comparing keys.
    #[error("OpenSSL error while checking the key")]
    OpenSsl(#[source] openssl::error::ErrorStack),
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
    /// order given. Encrypted keys are refused rather than prompted for.
    pub fn from_pem(pem: &[u8]) -> Result<Identity, KeyError> {
        // An explicit callback returning no password stops OpenSSL's default
        // callback from prompting on the terminal for an encrypted key.
        let private_key = PKey::private_key_from_pem_callback(pem, |_| Ok(0))
            .map_err(|_| KeyError::NoPrivateKey)?;
        let certificates = certificates_from_pem(pem)?;
        Identity::from_parts(private_key, certificates)
    }

    /// Loads an identity from a DER-encoded PKCS#12 (PFX) file and its password.
    ///
    /// The PKCS#12 end-entity certificate becomes the identity's certificate and
    /// the other certificates the chain. A wrong password yields
    /// [`KeyError::Pkcs12`].
    pub fn from_pkcs12(der: &[u8], password: &str) -> Result<Identity, KeyError> {
        let parsed = Pkcs12::from_der(der)
            .and_then(|pkcs12| pkcs12.parse2(password))
            .map_err(KeyError::Pkcs12)?;
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
            let public_key = certificate.public_key().map_err(KeyError::OpenSsl)?;
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

    /// The private key (RSA or EC). Crate-internal: callers sign and decrypt
    /// through this crate rather than handling the key.
    pub(crate) fn private_key(&self) -> &PKeyRef<Private> {
        &self.private_key
    }
}

/// Reads every certificate from PEM input (for recipient certificates and trust
/// anchors). Non-certificate blocks (keys, CRLs) are skipped.
///
/// Fails with [`KeyError::NoCertificate`] when there is none, so an empty or wrong
/// file is never silently taken as "no recipients" or "no anchors".
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<X509>, KeyError> {
    let certificates = X509::stack_from_pem(pem).map_err(KeyError::MalformedCertificate)?;
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
            Err(KeyError::Pkcs12(_))
        ));
        assert!(matches!(
            Identity::from_pkcs12(b"not der", "imipsec"),
            Err(KeyError::Pkcs12(_))
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
}
