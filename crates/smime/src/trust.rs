//! Trust: certificate path validation for S/MIME signers (RFC 5280 §6 via OpenSSL's
//! `X509_verify_cert`, RFC 8550 §4 for the email-protection purpose), revocation against CRLs,
//! and a bounded cache of validated chains.
// Untrusted input reaches every function here: no indexing or slicing that can panic
// (get / split_at_checked / patterns instead), issue #11 item 1.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openssl::hash::{Hasher, MessageDigest};
use openssl::pkey::Public;
use openssl::pkey_ctx::PkeyCtx;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509, X509Crl, X509CrlRef, X509PurposeId, X509StoreContext};
use time::OffsetDateTime;

use crate::cms::Scheme;
use crate::error::{Failure, contain_panic};
use crate::ffi;
use crate::revocation::{RevocationMode, RevocationSource};

/// Entries kept in the validated-chain cache before it is emptied.
pub const CHAIN_CACHE_CAPACITY: usize = 4096;

/// A cached validation result: the chain (signer first) or why there is none.
type ChainResult = Result<Arc<[X509]>, Failure>;

/// Trust anchors and CRLs against which signer certificates are validated, with a cache of
/// validated chains.
///
/// Validation uses OpenSSL's path building with purpose `smimesign` (extendedKeyUsage, where
/// present, must contain emailProtection; keyUsage, where present, digitalSignature or
/// nonRepudiation; RFC 8550 §4.4.2 / §4.4.4) at the evaluation time passed by the caller.
///
/// Revocation (RFC 5280 §6.3) is OpenSSL's: the CRLs given here and those embedded in the
/// SignedData `crls` field are handed to the same `X509_verify_cert` run (flags `CRL_CHECK`,
/// `CRL_CHECK_ALL`, `EXTENDED_CRL_SUPPORT`, `USE_DELTAS`), which validates each CRL's signer
/// (including a separate CRL-signing key or a rolled-over key of the CA), its validity period,
/// issuingDistributionPoint and indirect-CRL (cRLIssuer) scope, delta CRLs against their base,
/// and rejects unknown critical CRL and CRL entry extensions. [`RevocationMode`] says which
/// certificates may pass when their issuer published no CRL. No CRL distribution point
/// fetching, no OCSP.
///
/// Cache: keyed by the SHA-256 of the signer certificate, the other certificates offered by the
/// message, the embedded CRLs, and the evaluation time truncated to the minute. Validation on a
/// miss runs at that truncated time, so a result is a pure function of its key: evaluation time
/// has a granularity of one minute. Each `TrustStore` owns its cache, so the trust store identity
/// is part of the key implicitly. At [`CHAIN_CACHE_CAPACITY`] entries the cache is emptied.
pub struct TrustStore {
    anchors: Vec<X509>,
    crls: Vec<X509Crl>,
    /// Accept a chain ending at an anchor that is not self-signed (OpenSSL's
    /// `X509_V_FLAG_PARTIAL_CHAIN`); only for [`TrustStore::self_anchored`].
    partial_chain: bool,
    cache: Mutex<HashMap<[u8; 32], ChainResult>>,
    parsed: Mutex<HashMap<Arc<[u8]>, Arc<ParsedCertificate>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// A certificate of a SignedData with everything verification reads from it, computed once per
/// distinct DER: the OpenSSL parse, the received DER (chain-cache key), the issuer name and
/// serial as encoded (sid matching, RFC 5652 §5.3), and the identities and names reported.
pub(crate) struct ParsedCertificate {
    pub(crate) certificate: X509,
    pub(crate) der: Arc<[u8]>,
    /// OpenSSL's encoding of the issuer name (the received one for a parsed certificate).
    pub(crate) issuer_der: Vec<u8>,
    /// The serialNumber INTEGER contents as received; `None` when x509-parser rejects the
    /// certificate (it can then not be matched by issuerAndSerialNumber).
    pub(crate) raw_serial: Option<Vec<u8>>,
    /// The certificate's addresses, or why it has none that may be used: one is not a plain
    /// addr-spec, or the names could not be read (x509-parser rejects the certificate).
    pub(crate) emails: Result<Vec<EmailAddress>, MalformedAddress>,
    pub(crate) subject: String,
    pub(crate) issuer: String,
    /// Idle verify contexts for this certificate's key, one per scheme in use (a pool, so
    /// that threads verifying the same signer do not wait for each other).
    verifiers: Mutex<Vec<(Scheme, PkeyCtx<Public>)>>,
}

/// Idle verify contexts kept per certificate.
const VERIFIERS_PER_CERTIFICATE: usize = 8;

impl ParsedCertificate {
    /// An idle verify context for `scheme`, if one is kept.
    pub(crate) fn take_verifier(&self, scheme: Scheme) -> Option<PkeyCtx<Public>> {
        let mut pool = self.verifiers.lock().ok()?;
        let index = pool.iter().position(|(kept, _)| *kept == scheme)?;
        Some(pool.swap_remove(index).1)
    }

    /// Keep a context set up for `scheme` (by `crate::cms`) after a verification.
    pub(crate) fn return_verifier(&self, scheme: Scheme, context: PkeyCtx<Public>) {
        if let Ok(mut pool) = self.verifiers.lock()
            && pool.len() < VERIFIERS_PER_CERTIFICATE
        {
            pool.push((scheme, context));
        }
    }
}

impl ParsedCertificate {
    fn new(der: Arc<[u8]>) -> Result<Self, openssl::error::ErrorStack> {
        let certificate = X509::from_der(&der)?;
        let issuer_der = certificate.issuer_name().to_der()?;
        // x509-parser runs inside `contain_panic`: a panic in it reads as an unreadable
        // certificate (no identity, no issuer-and-serial match), never a crash.
        let read = contain_panic(|| {
            x509_parser::parse_x509_certificate(&der).map(|(_, parsed)| {
                (
                    Some(parsed.raw_serial().to_vec()),
                    emails_of(&parsed),
                    parsed.subject().to_string(),
                    parsed.issuer().to_string(),
                )
            })
        });
        let (raw_serial, emails, subject, issuer) = match read {
            Some(Ok(read)) => read,
            Some(Err(_)) | None => (
                None,
                Err(MalformedAddress {
                    text: "<unreadable certificate>".to_owned(),
                }),
                String::new(),
                String::new(),
            ),
        };
        Ok(ParsedCertificate {
            certificate,
            der,
            issuer_der,
            raw_serial,
            emails,
            subject,
            issuer,
            verifiers: Mutex::new(Vec::new()),
        })
    }
}

/// Parsed certificates kept (by their exact DER) before that cache is emptied, and the largest
/// DER kept: together they bound its memory (about 8 MiB of DER, shared by key and value).
const PARSED_CACHE_CAPACITY: usize = 1024;
const PARSED_CACHE_MAX_DER: usize = 8 * 1024;

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("anchors", &self.anchors.len())
            .field("crls", &self.crls.len())
            .finish_non_exhaustive()
    }
}

/// The revocation options of one validation: the mode and the optional source of OCSP
/// responses and CRLs beyond the given and embedded CRLs.
#[derive(Clone, Copy)]
pub(crate) struct Revocation<'a> {
    pub(crate) mode: RevocationMode,
    #[allow(
        dead_code,
        reason = "consulted once OCSP and CRL fetching land (next commits)"
    )]
    pub(crate) source: Option<&'a dyn RevocationSource>,
}

/// Why a [`TrustStore`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustStoreError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file holds no PEM certificate / CRL, or one that does not parse.
    #[error("no valid PEM {what} in {path}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// `certificate` or `CRL`.
        what: &'static str,
    },
    /// An anchor list was empty: nothing could ever be trusted.
    #[error("no trust anchors")]
    NoAnchors,
}

impl TrustStore {
    /// A store trusting `anchors` (root or intermediate certificates used as anchors) and
    /// consulting `crls`.
    pub fn new(anchors: Vec<X509>, crls: Vec<X509Crl>) -> Result<Self, TrustStoreError> {
        if anchors.is_empty() {
            return Err(TrustStoreError::NoAnchors);
        }
        Ok(TrustStore {
            anchors,
            crls,
            partial_chain: false,
            cache: Mutex::new(HashMap::new()),
            parsed: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// Load anchors and CRLs from PEM files (each file may hold several).
    pub fn from_pem_files(
        anchor_files: &[impl AsRef<Path>],
        crl_files: &[impl AsRef<Path>],
    ) -> Result<Self, TrustStoreError> {
        let mut anchors = Vec::new();
        for file in anchor_files {
            let path = file.as_ref();
            let pem = read(path)?;
            let certs = X509::stack_from_pem(&pem).map_err(|_| TrustStoreError::Pem {
                path: path.to_path_buf(),
                what: "certificate",
            })?;
            if certs.is_empty() {
                return Err(TrustStoreError::Pem {
                    path: path.to_path_buf(),
                    what: "certificate",
                });
            }
            anchors.extend(certs);
        }
        let mut crls = Vec::new();
        for file in crl_files {
            let path = file.as_ref();
            let pem = read(path)?;
            let crl = X509Crl::from_pem(&pem).map_err(|_| TrustStoreError::Pem {
                path: path.to_path_buf(),
                what: "CRL",
            })?;
            crls.push(crl);
        }
        TrustStore::new(anchors, crls)
    }

    /// A store anchored at `anchors` themselves, whether or not they are self-signed, for checking a
    /// signing identity when the caller gave no trust anchors
    /// ([`crate::keys::check_signing_identity`]): validity times, purpose and algorithms are
    /// still checked by the same path validation, only trust is assumed.
    pub(crate) fn self_anchored(anchors: Vec<X509>) -> Self {
        TrustStore {
            anchors,
            crls: Vec::new(),
            partial_chain: true,
            cache: Mutex::new(HashMap::new()),
            parsed: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The trust anchors.
    pub fn anchors(&self) -> &[X509] {
        &self.anchors
    }

    /// Parse a certificate of a SignedData, reusing the parse of identical DER seen before:
    /// OpenSSL 3's `d2i_X509` decodes the public key through its provider decoder framework and
    /// was 70% of a warm verification (profiled with the `verify` bench), and the x509-parser
    /// parses for identities, names and serial another ~15%. A parse is a pure function of the
    /// bytes, so sharing it changes no result.
    pub(crate) fn parse_certificate(
        &self,
        der: &[u8],
    ) -> Result<Arc<ParsedCertificate>, openssl::error::ErrorStack> {
        if let Ok(cache) = self.parsed.lock()
            && let Some(found) = cache.get(der)
        {
            return Ok(Arc::clone(found));
        }
        let parsed = Arc::new(ParsedCertificate::new(Arc::from(der))?);
        if der.len() <= PARSED_CACHE_MAX_DER
            && let Ok(mut cache) = self.parsed.lock()
        {
            if cache.len() >= PARSED_CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(Arc::clone(&parsed.der), Arc::clone(&parsed));
        }
        Ok(parsed)
    }

    /// `(hits, misses)` of the validated-chain cache since creation.
    pub fn cache_stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Validate `signer` with the `offered` certificates as untrusted intermediates and the
    /// `embedded_crls` (received as `embedded_crl_ders`), at `at` (truncated to the minute).
    /// Returns the chain, signer first, anchor last.
    pub(crate) fn validate(
        &self,
        signer: &ParsedCertificate,
        offered: &[Arc<ParsedCertificate>],
        embedded_crls: &[X509Crl],
        embedded_crl_ders: &[&[u8]],
        at: OffsetDateTime,
        revocation: &Revocation<'_>,
    ) -> Result<Arc<[X509]>, Failure> {
        let mode = revocation.mode;
        let minute = at.unix_timestamp().div_euclid(60) * 60;
        let key = cache_key(signer, offered, embedded_crl_ders, minute, mode);
        if let Some(key) = key
            && let Ok(cache) = self.cache.lock()
            && let Some(found) = cache.get(&key)
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return found.clone();
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let offered: Vec<X509> = offered
            .iter()
            .map(|parsed| parsed.certificate.clone())
            .collect();
        let result =
            self.validate_uncached(&signer.certificate, &offered, embedded_crls, minute, mode);
        if let Some(key) = key
            && let Ok(mut cache) = self.cache.lock()
        {
            if cache.len() >= CHAIN_CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(key, result.clone());
        }
        result
    }

    fn validate_uncached(
        &self,
        signer: &X509,
        offered: &[X509],
        embedded_crls: &[X509Crl],
        at: i64,
        mode: RevocationMode,
    ) -> Result<Arc<[X509]>, Failure> {
        // An internal OpenSSL failure (allocation) is reported as untrusted, never as trusted.
        let internal = Failure::UntrustedCertificate {
            verify_error: -1,
            depth: 0,
        };
        let have_crls = !self.crls.is_empty() || !embedded_crls.is_empty();
        // Without any CRL, `CheckAvailable` has nothing to check; the other modes still ask
        // OpenSSL so that the missing CRL is reported as `revocation-unknown`.
        let check_crls = match mode {
            RevocationMode::Off => false,
            RevocationMode::IfAvailable => have_crls,
            RevocationMode::Require => true,
        };
        let build = || -> Result<Result<Vec<X509>, Failure>, openssl::error::ErrorStack> {
            let mut builder = X509StoreBuilder::new()?;
            for anchor in &self.anchors {
                builder.add_cert(anchor.clone())?;
            }
            // RFC 5280 §6.3 by OpenSSL: the CRL issuer's own path, issuingDistributionPoint
            // and indirect-CRL scope, delta CRLs, critical CRL (entry) extensions. The CRLs
            // offered by the message are untrusted like its certificates: they count only if
            // OpenSSL validates their signer. They go into the context's list (where OpenSSL
            // also finds indirect CRLs) and into the store, where the `CheckAvailable` callback
            // looks up whether a certificate's issuer published any CRL.
            for crl in self.crls.iter().chain(embedded_crls) {
                ffi::add_crl(&mut builder, crl)?;
            }
            let mut param = X509VerifyParam::new()?;
            param.set_time(at);
            param.set_purpose(X509PurposeId::SMIME_SIGN)?;
            param.set_depth(16);
            if self.partial_chain {
                param.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
            }
            if check_crls {
                param.set_flags(
                    X509VerifyFlags::CRL_CHECK
                        | X509VerifyFlags::CRL_CHECK_ALL
                        | X509VerifyFlags::EXTENDED_CRL_SUPPORT
                        | X509VerifyFlags::USE_DELTAS,
                )?;
                if mode == RevocationMode::IfAvailable {
                    ffi::forgive_unpublished_crl(&mut builder);
                }
            }
            builder.set_param(&param)?;
            let store = builder.build();
            let mut untrusted = Stack::new()?;
            for cert in offered {
                untrusted.push(cert.clone())?;
            }
            let mut context = X509StoreContext::new()?;
            let crls: Vec<&X509CrlRef> = self
                .crls
                .iter()
                .chain(embedded_crls)
                .map(|crl| &**crl)
                .collect();
            context.init(&store, signer, &untrusted, |context| {
                if ffi::verify_cert_with_crls(context, &crls)? {
                    let chain = context
                        .chain()
                        .map(|chain| chain.iter().map(|cert| cert.to_owned()).collect())
                        .unwrap_or_default();
                    Ok(Ok(chain))
                } else {
                    Ok(Err(map_verify_error(
                        context.error().as_raw(),
                        context.error_depth(),
                    )))
                }
            })
        };
        let chain = match build() {
            Ok(Ok(chain)) => chain,
            Ok(Err(failure)) => return Err(failure),
            Err(_) => return Err(internal),
        };
        if chain.is_empty() {
            return Err(internal);
        }
        Ok(chain.into())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TrustStoreError> {
    std::fs::read(path).map_err(|source| TrustStoreError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// SHA-256 over the received DER of the signer, the offered certificates and the embedded
/// CRLs, and the minute: the inputs of one validation (the store's own anchors and CRLs are
/// fixed per `TrustStore`).
fn cache_key(
    signer: &ParsedCertificate,
    offered: &[Arc<ParsedCertificate>],
    embedded_crl_ders: &[&[u8]],
    minute: i64,
    mode: RevocationMode,
) -> Option<[u8; 32]> {
    let mut hasher = Hasher::new(MessageDigest::sha256()).ok()?;
    hasher.update(&minute.to_be_bytes()).ok()?;
    hasher.update(mode.as_str().as_bytes()).ok()?;
    let mut push = |der: &[u8], marker: u8| -> Option<()> {
        hasher.update(&[marker]).ok()?;
        hasher.update(&(der.len() as u64).to_be_bytes()).ok()?;
        hasher.update(der).ok()
    };
    push(&signer.der, 0)?;
    for cert in offered {
        push(&cert.der, 1)?;
    }
    for crl in embedded_crl_ders {
        push(crl, 2)?;
    }
    let digest = hasher.finish().ok()?;
    digest.as_ref().try_into().ok()
}

/// Map an OpenSSL `X509_V_ERR_*` code to a typed failure.
fn map_verify_error(code: i32, depth: u32) -> Failure {
    use openssl_sys as sys;
    match code {
        sys::X509_V_ERR_CERT_HAS_EXPIRED => Failure::CertificateExpired {
            depth,
            not_yet_valid: false,
        },
        sys::X509_V_ERR_CERT_NOT_YET_VALID => Failure::CertificateExpired {
            depth,
            not_yet_valid: true,
        },
        sys::X509_V_ERR_CERT_REVOKED => Failure::CertificateRevoked { depth },
        // No usable CRL for the certificate at `depth`: none in scope, or the CRL (or its
        // issuer's path) failed. The status is unknown, which is never "not revoked".
        sys::X509_V_ERR_UNABLE_TO_GET_CRL
        | sys::X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE
        | sys::X509_V_ERR_CRL_SIGNATURE_FAILURE
        | sys::X509_V_ERR_CRL_NOT_YET_VALID
        | sys::X509_V_ERR_CRL_HAS_EXPIRED
        | sys::X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD
        | sys::X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD
        | sys::X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER
        | sys::X509_V_ERR_KEYUSAGE_NO_CRL_SIGN
        | sys::X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION
        | sys::X509_V_ERR_DIFFERENT_CRL_SCOPE
        | sys::X509_V_ERR_CRL_PATH_VALIDATION_ERROR => Failure::RevocationUnknown { depth },
        sys::X509_V_ERR_INVALID_PURPOSE | sys::X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE => {
            Failure::CertificatePurpose { depth }
        }
        _ => Failure::UntrustedCertificate {
            verify_error: code,
            depth,
        },
    }
}

/// An email address of a certificate (rfc822Name SAN or subject emailAddress), RFC 8550 §3:
/// always a plain RFC 5321 §4.1.2 `Mailbox`, exactly as the certificate wrote it.
///
/// Certificate addresses are never rewritten (trimmed, unquoted, cut at a NUL, case-folded in
/// the local part): OpenSSL checks a CA's name constraints (RFC 5280 §4.2.1.10) on the bytes
/// of the certificate, so any rewrite after that check can turn an address the constraint did
/// not cover (`alice@example.com ` under `excluded;email:example.com`) into one it forbids.
/// Only [`EmailAddress::parse`] builds one, and it refuses everything that is not:
///
/// - ASCII (an rfc822Name is an IA5String; internationalised mailboxes are the RFC 8398
///   `SmtpUTF8Mailbox` otherName, which is not read as an identity);
/// - a `Dot-string` local part of `atext` (no quoted string: `"a"@x` and `a@x` are one
///   mailbox written two ways, and a quoted string can hide spaces and `@`), 1 to 64 octets;
/// - one `@`;
/// - a `Domain` of LDH labels (`Let-dig [Ldh-str]`, 1 to 63 octets each, no empty label, no
///   trailing dot), 1 to 253 octets: no address literal (`[192.0.2.1]`);
/// - at most 254 octets in all (RFC 5321 §4.5.3.1.3 path limit less the angle brackets).
///
/// So no white space, control character, comment, display name or angle bracket can appear.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress {
    display: String,
    normalized: String,
}

/// A certificate address that is not a plain addr-spec (see [`EmailAddress`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a plain addr-spec: {text:?}")]
pub struct MalformedAddress {
    /// The address as found (shown escaped by `Debug`).
    pub text: String,
}

/// RFC 5322 §3.2.3 `atext` (RFC 5321's `Atom` is `1*atext`).
fn is_atext(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&byte)
}

/// RFC 5321 §4.1.2 `Dot-string`.
fn is_dot_string(local: &[u8]) -> bool {
    (1..=64).contains(&local.len())
        && local
            .split(|&byte| byte == b'.')
            .all(|atom| !atom.is_empty() && atom.iter().all(|&byte| is_atext(byte)))
}

/// RFC 5321 §4.1.2 `Domain` (no address literal), RFC 1035 label lengths.
fn is_domain(domain: &[u8]) -> bool {
    (1..=253).contains(&domain.len())
        && domain.split(|&byte| byte == b'.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .iter()
                    .all(|&byte| byte.is_ascii_alphanumeric() || byte == b'-')
                && label.first().is_some_and(u8::is_ascii_alphanumeric)
                && label.last().is_some_and(u8::is_ascii_alphanumeric)
        })
}

impl EmailAddress {
    /// An address as found in a certificate, if it is a plain addr-spec (see the type docs);
    /// never trimmed or otherwise rewritten.
    pub fn parse(text: &str) -> Result<Self, MalformedAddress> {
        let malformed = || MalformedAddress {
            text: text.to_owned(),
        };
        let bytes = text.as_bytes();
        if bytes.len() > 254 {
            return Err(malformed());
        }
        let mut parts = bytes.split(|&byte| byte == b'@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed());
        };
        if !is_dot_string(local) || !is_domain(domain) {
            return Err(malformed());
        }
        // Both sides are ASCII now, so the split at the one `@` is a char boundary.
        let (local, domain) = text.split_once('@').ok_or_else(malformed)?;
        Ok(EmailAddress {
            display: text.to_owned(),
            normalized: format!("{local}@{}", domain.to_ascii_lowercase()),
        })
    }

    /// As written in the certificate.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// For comparison: the domain lowercased (RFC 5321 §2.4: domains are case-insensitive);
    /// the local part is kept as written (it is case-sensitive).
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// Whether `address`, a bare addr-spec that [`EmailAddress::parse`] accepts, names the
    /// same mailbox (compares normalized forms). Anything else never matches.
    pub fn matches(&self, address: &str) -> bool {
        EmailAddress::parse(address).is_ok_and(|other| other.normalized == self.normalized)
    }
}

/// The comparison form of a header address (a From or To address as mail-parser returns it):
/// the [`EmailAddress::normalized`] form when it is a plain addr-spec, else the text unchanged
/// (never trimmed or otherwise rewritten, so a malformed address can never equal a
/// certificate's, which are always plain). For warnings and header-protection reports only:
/// identities come from certificates through [`EmailAddress::parse`].
pub fn normalize_email(address: &str) -> String {
    match EmailAddress::parse(address) {
        Ok(parsed) => parsed.normalized,
        Err(_) => address.to_owned(),
    }
}

/// OID of the PKCS #9 emailAddress attribute (RFC 5280 §4.1.2.6, legacy).
const EMAIL_ADDRESS_ATTRIBUTE: &str = "1.2.840.113549.1.9.1";

/// Every rfc822Name of the subjectAltName and every emailAddress of the subject, deduplicated;
/// `Err` when one of them is not a plain addr-spec, or when the names cannot be read (a
/// subjectAltName x509-parser cannot decode, a non-IA5String emailAddress): OpenSSL's name
/// constraint check saw names that would then not be the ones reported, so none is used.
fn emails_of(
    cert: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<Vec<EmailAddress>, MalformedAddress> {
    use x509_parser::der_parser::asn1_rs::Tag;
    use x509_parser::extensions::GeneralName;
    let unreadable = |what: &str| MalformedAddress {
        text: what.to_owned(),
    };
    let mut emails: Vec<EmailAddress> = Vec::new();
    let san = cert
        .subject_alternative_name()
        .map_err(|_| unreadable("<unreadable subjectAltName>"))?;
    for name in san.iter().flat_map(|san| &san.value.general_names) {
        match name {
            GeneralName::RFC822Name(address) => emails.push(EmailAddress::parse(address)?),
            // An entry x509-parser could not decode; [1] is rfc822Name.
            GeneralName::Invalid(tag, _) if tag.0 == 1 => {
                return Err(unreadable("<undecodable rfc822Name>"));
            }
            _ => {}
        }
    }
    for rdn in cert.subject().iter() {
        for attribute in rdn.iter() {
            if attribute.attr_type().to_id_string() != EMAIL_ADDRESS_ATTRIBUTE {
                continue;
            }
            // RFC 5280 Appendix A: emailAddress is an IA5String (OpenSSL's name constraint
            // check refuses other types only when there are constraints).
            if attribute.attr_value().tag() != Tag::Ia5String {
                return Err(unreadable("<emailAddress not an IA5String>"));
            }
            let address = std::str::from_utf8(attribute.attr_value().data)
                .map_err(|_| unreadable("<emailAddress not ASCII>"))?;
            emails.push(EmailAddress::parse(address)?);
        }
    }
    let mut seen = std::collections::HashSet::new();
    emails.retain(|email| seen.insert(email.normalized.clone()));
    Ok(emails)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_lowercased_local_part_kept() {
        let email = EmailAddress::parse("Alice.Smith@Example.ORG").unwrap();
        assert_eq!(email.normalized(), "Alice.Smith@example.org");
        assert_eq!(email.display(), "Alice.Smith@Example.ORG");
        assert!(email.matches("Alice.Smith@EXAMPLE.org"));
        assert!(!email.matches("alice.smith@example.org"));
        // Not a bare addr-spec: never matches, nothing is stripped.
        assert!(!email.matches("mailto:Alice.Smith@EXAMPLE.org"));
        assert!(!email.matches(" Alice.Smith@example.org"));
    }

    /// Regression (issue #11 item 5): certificate addresses are refused, never rewritten.
    #[test]
    fn only_plain_addr_specs_are_certificate_addresses() {
        for good in [
            "a@b",
            "alice@example.com",
            "Alice@EXAMPLE.com",
            "first.last+tag@sub.example.org",
            "!#$%&'*+-/=?^_`{|}~@xn--bcher-kva.example",
        ] {
            assert!(EmailAddress::parse(good).is_ok(), "{good:?}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_label = format!("a@{}.com", "b".repeat(64));
        for bad in [
            "",
            "alice@example.com ",
            " alice@example.com",
            "alice@example.com\0",
            "alice@example.com\0.example.org",
            "alice@example.com\t",
            "alice @example.com",
            "\"alice\"@example.com",
            "\"a b\"@example.com",
            "Alice <alice@example.com>",
            "<alice@example.com>",
            "alice@example.com (Alice)",
            "(c)alice@example.com",
            "alice@@example.com",
            "alice@example.com@example.org",
            "alice",
            "@example.com",
            "alice@",
            ".alice@example.com",
            "alice.@example.com",
            "al..ice@example.com",
            "alice@example.com.",
            "alice@.example.com",
            "alice@exa..mple.com",
            "alice@-example.com",
            "alice@example-.com",
            "alice@exa_mple.com",
            "alice@[192.0.2.1]",
            "alice@[IPv6:2001:db8::1]",
            "alice@b\u{fc}cher.example",
            "j\u{f6}rg@example.com",
            "alice@example.com\r\nBcc: x@y",
            &long_local,
            &long_label,
        ] {
            let bad = bad.to_owned();
            assert!(EmailAddress::parse(&bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn header_addresses_are_not_trimmed_for_comparison() {
        assert_eq!(normalize_email("Bob@Example.COM"), "Bob@example.com");
        assert_eq!(normalize_email("bob@example.com "), "bob@example.com ");
        assert_eq!(
            normalize_email("mailto:bob@example.com"),
            "mailto:bob@example.com"
        );
    }

    #[test]
    fn empty_anchor_list_rejected() {
        assert!(matches!(
            TrustStore::new(Vec::new(), Vec::new()),
            Err(TrustStoreError::NoAnchors)
        ));
    }
}
