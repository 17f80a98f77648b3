//! Trust: certificate path validation for S/MIME signers (RFC 5280 §6 via OpenSSL's
//! `X509_verify_cert`, RFC 8550 §4 for the email-protection purpose), certificate policies
//! (RFC 5280 §6.1), revocation against CRLs and OCSP ([`crate::revocation`]), and a cache of
//! validated chains that never changes a verdict.
// Untrusted input reaches every function here: no indexing or slicing that can panic
// (get / split_at_checked / patterns instead), issue #11 item 1.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openssl::asn1::{Asn1Object, Asn1Time, Asn1TimeRef};
use openssl::md_ctx::MdCtx;
use openssl::pkey::Public;
use openssl::pkey_ctx::PkeyCtx;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509, X509Crl, X509CrlRef, X509NameRef, X509PurposeId, X509StoreContext};
use time::OffsetDateTime;

use crate::cms::Scheme;
use crate::error::{Failure, contain_panic};
use crate::ffi::{self, CrlGap};
use crate::revocation::{self, RevocationMode, RevocationSource};

mod address;
mod load;

pub(crate) use address::emails_of;
pub use address::{EmailAddress, MalformedAddress, normalize_email};
use load::dedup_certificates;
pub use load::{load_certificates, load_crls};

/// Entries kept in the validated-chain cache before it is emptied.
pub const CHAIN_CACHE_CAPACITY: usize = 4096;

/// Files read from one `--trust` / `--intermediates` directory, at most.
pub const TRUST_DIRECTORY_FILES_MAX: usize = 10_000;

/// Largest certificate or CRL file read, in bytes (a Mozilla root bundle is about 250 KiB).
pub const TRUST_FILE_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Initial policy OIDs accepted, at most.
pub const POLICIES_MAX: usize = 64;

/// A cached validation result and the evaluation times `[from, until)` for which it holds:
/// no certificate or CRL involved changes validity inside that interval, so a validation at
/// any instant of it gives this result (see [`TrustStore`]).
#[derive(Clone)]
struct CacheEntry {
    result: Result<Validated, Failure>,
    from: i64,
    until: i64,
}

/// A validated chain and what was noticed on the way.
#[derive(Debug, Clone)]
pub(crate) struct Validated {
    /// Signer first, anchor last.
    pub(crate) chain: Arc<[X509]>,
    /// Revocation checks that could not be done under `if-available` (a source that could not
    /// answer, an unusable answer): accepted, but worth a warning.
    pub(crate) revocation_warnings: Vec<String>,
}

/// Trust anchors, untrusted intermediates, CRLs and the initial policy set against which signer
/// certificates are validated, with a cache of validated chains.
///
/// Validation uses OpenSSL's path building with purpose `smimesign` (extendedKeyUsage, where
/// present, must contain emailProtection; keyUsage, where present, digitalSignature or
/// nonRepudiation; RFC 8550 §4.4.2 / §4.4.4) at the evaluation time passed by the caller, to
/// the second.
///
/// Certificate policies are processed (RFC 5280 §6.1, OpenSSL's `X509_V_FLAG_POLICY_CHECK`):
/// requireExplicitPolicy, inhibitPolicyMapping and inhibitAnyPolicy of the CAs are enforced.
/// The initial policy set is anyPolicy with initial-explicit-policy off unless
/// [`TrustStore::with_policies`] names one; then a valid policy from that set is required
/// (initial-explicit-policy on).
///
/// Revocation (RFC 5280 §6.3) is OpenSSL's: the CRLs given here, those embedded in the
/// SignedData `crls` field and those fetched from distribution points are handed to the same
/// `X509_verify_cert` run (flags `CRL_CHECK`, `CRL_CHECK_ALL`, `EXTENDED_CRL_SUPPORT`,
/// `USE_DELTAS`), which validates each CRL's signer (including a separate CRL-signing key or a
/// rolled-over key of the CA), its validity period, issuingDistributionPoint and indirect-CRL
/// (cRLIssuer) scope, delta CRLs against their base, and rejects unknown critical CRL and CRL
/// entry extensions. A certificate without a usable CRL is then looked up by OCSP and CRL
/// distribution point through the [`RevocationSource`] when one is given (in that order,
/// after the given CRLs); [`RevocationMode`] decides what a certificate without any usable
/// answer gets.
///
/// Cache: keyed by the SHA-256 of the signer certificate, the other certificates offered by the
/// message, the embedded CRLs, the revocation mode and whether a source is present. An entry
/// holds for the evaluation times between the nearest validity boundaries (notBefore,
/// notAfter, thisUpdate, nextUpdate) of every certificate and CRL that could take part (the
/// message's, the anchors', the intermediates', the store's CRLs) around the time it was
/// computed at: OpenSSL's verdict depends on the time only through those comparisons, so a
/// hit gives the verdict a fresh validation would. Results that consulted a revocation
/// source (external state) are never cached. Each `TrustStore` owns its cache, so its
/// anchors, intermediates, CRLs and policies are part of the key implicitly. At
/// [`CHAIN_CACHE_CAPACITY`] entries the cache is emptied.
pub struct TrustStore {
    anchors: Vec<X509>,
    intermediates: Vec<X509>,
    crls: Vec<X509Crl>,
    /// The RFC 5280 §6.1.1 policy inputs.
    policy: PolicyConstraints,
    /// Accept a chain ending at an anchor that is not self-signed (OpenSSL's
    /// `X509_V_FLAG_PARTIAL_CHAIN`); only for [`TrustStore::self_anchored`].
    partial_chain: bool,
    /// Validity boundaries (Unix seconds, sorted) of the anchors, intermediates and CRLs;
    /// `None` when one of them could not be read (then nothing is cached).
    fixed_events: Option<Vec<i64>>,
    cache: Mutex<HashMap<[u8; 32], CacheEntry>>,
    /// Keyed by the exact DER, hashed with foldhash (seeded per process) rather than SipHash:
    /// every lookup hashes each received certificate whole (SipHash over two 1.2 KB
    /// certificates: 0.48% of audit's instructions for set inter, 0.09% with foldhash; issue
    /// 17). The cache is bounded ([`PARSED_CACHE_CAPACITY`]), so keys made to collide cost at
    /// most a bounded scan.
    parsed: Mutex<HashMap<Arc<[u8]>, Arc<ParsedCertificate>, foldhash::fast::RandomState>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// A certificate of a SignedData with everything verification reads from it, computed once per
/// distinct DER: the OpenSSL parse, the received DER (chain-cache key), the issuer name and
/// serial as encoded (sid matching, RFC 5652 §5.3), and the identities and names reported.
pub(crate) struct ParsedCertificate {
    pub(crate) certificate: X509,
    pub(crate) der: Arc<[u8]>,
    /// SHA-256 of `der`, made once per parse: the chain-cache key hashes these instead of
    /// every certificate's whole DER on every message (issue 17).
    fingerprint: [u8; 32],
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
    /// notBefore and notAfter in Unix seconds (`None` when OpenSSL cannot compare them): the
    /// instants at which this certificate's validity changes, for the chain cache.
    events: Option<[i64; 2]>,
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
        let events = certificate_events(&certificate);
        let fingerprint = crate::sha256(&der);
        Ok(ParsedCertificate {
            events,
            certificate,
            fingerprint,
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
            .field("intermediates", &self.intermediates.len())
            .field("crls", &self.crls.len())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The revocation options of one validation: the mode and the optional source of OCSP
/// responses and CRLs beyond the given and embedded CRLs.
#[derive(Clone, Copy)]
pub(crate) struct Revocation<'a> {
    pub(crate) mode: RevocationMode,
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
    /// A file holds no PEM or DER certificate / CRL, or one that does not parse.
    #[error("no valid PEM or DER {what} in {path}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// `certificate` or `CRL`.
        what: &'static str,
    },
    /// A file or directory is larger than the named limits allow.
    #[error("{path}: {what}")]
    TooLarge {
        /// The file or directory.
        path: PathBuf,
        /// Which limit.
        what: String,
    },
    /// An anchor list was empty: nothing could ever be trusted.
    #[error("no trust anchors")]
    NoAnchors,
    /// A policy is not a dotted OID.
    #[error("not a policy OID: {0:?}")]
    BadPolicy(String),
}

/// The RFC 5280 §6.1.1 policy inputs of path validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyConstraints {
    /// user-initial-policy-set as dotted OIDs (empty: anyPolicy).
    pub policies: Vec<String>,
    /// initial-explicit-policy.
    pub require_explicit: bool,
    /// initial-policy-mapping-inhibit.
    pub inhibit_mapping: bool,
    /// initial-any-policy-inhibit.
    pub inhibit_any: bool,
}

/// A CRL of the store as loaded: its issuer, its nextUpdate and whether that is already past
/// at the time asked ([`TrustStore::crl_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlStatus {
    /// The CRL issuer (RFC 4514 style).
    pub issuer: String,
    /// thisUpdate.
    pub this_update: Option<OffsetDateTime>,
    /// nextUpdate (`None` when the CRL has none).
    pub next_update: Option<OffsetDateTime>,
    /// nextUpdate is at or before the time asked: OpenSSL treats the CRL as expired, so every
    /// certificate it covers is `revocation-unknown` until a fresh one is loaded or fetched.
    pub stale: bool,
}

impl TrustStore {
    /// A store trusting `anchors` (root or intermediate certificates used as anchors) and
    /// consulting `crls`.
    pub fn new(anchors: Vec<X509>, crls: Vec<X509Crl>) -> Result<Self, TrustStoreError> {
        if anchors.is_empty() {
            return Err(TrustStoreError::NoAnchors);
        }
        Ok(TrustStore::build(anchors, crls, false))
    }

    /// A store with no S/MIME trust anchor at all: every S/MIME signer is untrusted. For a
    /// deployment that trusts OpenPGP certificates only (`--openpgp-certs` without
    /// `--trust`); never the fallback of a missing configuration.
    pub fn without_anchors() -> Self {
        TrustStore::build(Vec::new(), Vec::new(), false)
    }

    fn build(anchors: Vec<X509>, crls: Vec<X509Crl>, partial_chain: bool) -> Self {
        let mut store = TrustStore {
            anchors,
            intermediates: Vec::new(),
            crls,
            policy: PolicyConstraints::default(),
            partial_chain,
            fixed_events: None,
            cache: Mutex::new(HashMap::new()),
            parsed: Mutex::new(HashMap::with_hasher(foldhash::fast::RandomState::default())),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        };
        store.fixed_events = store.compute_fixed_events();
        store
    }

    fn compute_fixed_events(&self) -> Option<Vec<i64>> {
        let mut events = Vec::new();
        for cert in self.anchors.iter().chain(&self.intermediates) {
            events.extend(certificate_events(cert)?);
        }
        for crl in &self.crls {
            events.extend(crl_events(crl)?);
        }
        events.sort_unstable();
        events.dedup();
        Some(events)
    }

    /// Load anchors and CRLs from files: each anchor path may be a PEM bundle, a DER
    /// certificate or a directory (every `.pem`, `.crt`, `.cer`, `.der` file and every
    /// OpenSSL hashed name `xxxxxxxx.N` in it; duplicates dropped); each CRL file PEM (one or
    /// more) or DER.
    pub fn from_pem_files(
        anchor_files: &[impl AsRef<Path>],
        crl_files: &[impl AsRef<Path>],
    ) -> Result<Self, TrustStoreError> {
        let mut anchors = Vec::new();
        for file in anchor_files {
            anchors.extend(load_certificates(file.as_ref())?);
        }
        dedup_certificates(&mut anchors);
        let mut crls = Vec::new();
        for file in crl_files {
            crls.extend(load_crls(file.as_ref())?);
        }
        TrustStore::new(anchors, crls)
    }

    /// Untrusted intermediate certificates used for path building (never as anchors), e.g. a
    /// CA's issuing certificate that senders leave out of their messages.
    pub fn with_intermediates(mut self, intermediates: Vec<X509>) -> Self {
        self.intermediates = intermediates;
        self.fixed_events = self.compute_fixed_events();
        self.cache = Mutex::new(HashMap::new());
        self
    }

    /// The initial policy set (RFC 5280 §6.1.1 user-initial-policy-set) as dotted OIDs. An
    /// empty list is anyPolicy without an explicit-policy requirement (the default); a
    /// non-empty one also sets initial-explicit-policy, so a chain must be valid for one of
    /// these policies (what an operator naming policies expects).
    pub fn with_policies(self, policies: Vec<String>) -> Result<Self, TrustStoreError> {
        let require_explicit = !policies.is_empty();
        self.with_policy_constraints(PolicyConstraints {
            policies,
            require_explicit,
            inhibit_mapping: false,
            inhibit_any: false,
        })
    }

    /// All four RFC 5280 §6.1.1 policy inputs (as `openssl verify -policy -explicit_policy
    /// -inhibit_map -inhibit_any`).
    pub fn with_policy_constraints(
        mut self,
        constraints: PolicyConstraints,
    ) -> Result<Self, TrustStoreError> {
        if constraints.policies.len() > POLICIES_MAX {
            return Err(TrustStoreError::TooLarge {
                path: PathBuf::new(),
                what: format!("more than {POLICIES_MAX} policies"),
            });
        }
        for policy in &constraints.policies {
            let dotted = policy.split('.').count() >= 2
                && policy.split('.').all(|arc| {
                    !arc.is_empty() && arc.len() <= 20 && arc.bytes().all(|b| b.is_ascii_digit())
                });
            if !dotted || Asn1Object::from_str(policy.as_str()).is_err() {
                return Err(TrustStoreError::BadPolicy(policy.clone()));
            }
        }
        self.policy = constraints;
        self.cache = Mutex::new(HashMap::new());
        Ok(self)
    }

    /// A store anchored at `anchors` themselves, whether or not they are self-signed, for checking a
    /// signing identity when the caller gave no trust anchors
    /// ([`crate::keys::check_signing_identity`]): validity times, purpose and algorithms are
    /// still checked by the same path validation, only trust is assumed.
    pub(crate) fn self_anchored(anchors: Vec<X509>) -> Self {
        TrustStore::build(anchors, Vec::new(), true)
    }

    /// The trust anchors.
    pub fn anchors(&self) -> &[X509] {
        &self.anchors
    }

    /// The untrusted intermediates.
    pub fn intermediates(&self) -> &[X509] {
        &self.intermediates
    }

    /// The initial policy set (empty: anyPolicy).
    pub fn policies(&self) -> &[String] {
        &self.policy.policies
    }

    /// Every CRL of the store with its issuer, thisUpdate, nextUpdate and whether it is stale at
    /// `at`: for the CLI to warn and the gate to log and export at load.
    pub fn crl_status(&self, at: OffsetDateTime) -> Vec<CrlStatus> {
        let at = at.unix_timestamp();
        self.crls
            .iter()
            .map(|crl| {
                let next = crl.next_update().and_then(unix_seconds);
                CrlStatus {
                    issuer: name_text(crl.issuer_name()),
                    this_update: unix_seconds(crl.last_update())
                        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()),
                    next_update: next.and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()),
                    stale: next.is_some_and(|next| next <= at),
                }
            })
            .collect()
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

    /// The interval `[from, until)` around `at` in which no certificate or CRL that can take
    /// part in validating this input changes validity; `None` when a time could not be read.
    fn stable_interval(
        &self,
        signer: &ParsedCertificate,
        offered: &[Arc<ParsedCertificate>],
        embedded_crls: &[X509Crl],
        at: i64,
    ) -> Option<(i64, i64)> {
        let mut from = i64::MIN;
        let mut until = i64::MAX;
        let mut see = |event: i64| {
            if event <= at {
                from = from.max(event);
            } else {
                until = until.min(event);
            }
        };
        for event in self.fixed_events.as_ref()? {
            see(*event);
        }
        for cert in std::iter::once(signer).chain(offered.iter().map(|c| &**c)) {
            for event in cert.events? {
                see(event);
            }
        }
        for crl in embedded_crls {
            for event in crl_events(crl)? {
                see(event);
            }
        }
        Some((from, until))
    }

    /// Validate `signer` with the `offered` certificates (and the store's intermediates) as
    /// untrusted intermediates and the `embedded_crls` (received as `embedded_crl_ders`), at
    /// `at` to the second, with `revocation`. Returns the chain, signer first, anchor last.
    pub(crate) fn validate(
        &self,
        signer: &ParsedCertificate,
        offered: &[Arc<ParsedCertificate>],
        embedded_crls: &[X509Crl],
        embedded_crl_ders: &[&[u8]],
        at: OffsetDateTime,
        revocation: &Revocation<'_>,
    ) -> Result<Validated, Failure> {
        let seconds = at.unix_timestamp();
        let key = cache_key(signer, offered, embedded_crl_ders, revocation);
        if let Some(key) = key
            && let Ok(cache) = self.cache.lock()
            && let Some(found) = cache.get(&key)
            && found.from <= seconds
            && seconds < found.until
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return found.result.clone();
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let interval = self.stable_interval(signer, offered, embedded_crls, seconds);
        let offered: Vec<X509> = offered
            .iter()
            .map(|parsed| parsed.certificate.clone())
            .collect();
        let (result, consulted) =
            self.validate_uncached(&signer.certificate, &offered, embedded_crls, at, revocation);
        if !consulted
            && let Some(key) = key
            && let Some((from, until)) = interval
            && let Ok(mut cache) = self.cache.lock()
        {
            if cache.len() >= CHAIN_CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(
                key,
                CacheEntry {
                    result: result.clone(),
                    from,
                    until,
                },
            );
        }
        result
    }

    /// One `X509_verify_cert` run with the store's CRLs, the embedded ones and `extra_crls`
    /// (fetched). Returns the chain or the failure, and the CRL gaps the callback recorded.
    fn verify_once(
        &self,
        signer: &X509,
        offered: &[X509],
        crls: &[&X509CrlRef],
        at: i64,
        mode: RevocationMode,
        forgive_unusable: bool,
    ) -> (Result<Vec<X509>, Failure>, CrlGaps) {
        // An internal OpenSSL failure (allocation) is reported as untrusted, never as trusted.
        let internal = || Failure::UntrustedCertificate {
            verify_error: -1,
            depth: 0,
        };
        let check_crls = mode != RevocationMode::Off;
        let build = || -> Result<Result<Vec<X509>, Failure>, openssl::error::ErrorStack> {
            let mut builder = X509StoreBuilder::new()?;
            for anchor in &self.anchors {
                builder.add_cert(anchor.clone())?;
            }
            // RFC 5280 §6.3 by OpenSSL: the CRL issuer's own path, issuingDistributionPoint
            // and indirect-CRL scope, delta CRLs, critical CRL (entry) extensions. The CRLs
            // offered by the message (and fetched ones) are untrusted like its certificates:
            // they count only if OpenSSL validates their signer. They go into the context's
            // list (where OpenSSL also finds indirect CRLs) and into the store, where the CRL
            // callback looks up whether a certificate's issuer published any CRL.
            if check_crls {
                for crl in crls {
                    ffi::add_crl(&mut builder, crl)?;
                }
            }
            let mut param = X509VerifyParam::new()?;
            param.set_time(at);
            param.set_purpose(X509PurposeId::SMIME_SIGN)?;
            param.set_depth(16);
            // RFC 5280 §6.1 policy processing.
            let mut flags = X509VerifyFlags::POLICY_CHECK;
            if self.policy.require_explicit {
                flags |= X509VerifyFlags::EXPLICIT_POLICY;
            }
            if self.policy.inhibit_mapping {
                flags |= X509VerifyFlags::INHIBIT_MAP;
            }
            if self.policy.inhibit_any {
                flags |= X509VerifyFlags::INHIBIT_ANY;
            }
            if !self.policy.policies.is_empty() {
                let mut set = Stack::new()?;
                for policy in &self.policy.policies {
                    set.push(Asn1Object::from_str(policy.as_str())?)?;
                }
                ffi::set_policies(&mut param, &set)?;
            }
            if self.partial_chain {
                flags |= X509VerifyFlags::PARTIAL_CHAIN;
            }
            if check_crls {
                flags |= X509VerifyFlags::CRL_CHECK
                    | X509VerifyFlags::CRL_CHECK_ALL
                    | X509VerifyFlags::EXTENDED_CRL_SUPPORT
                    | X509VerifyFlags::USE_DELTAS;
                ffi::install_crl_callback(&mut builder);
            }
            param.set_flags(flags)?;
            builder.set_param(&param)?;
            let store = builder.build();
            let mut untrusted = Stack::new()?;
            for cert in offered.iter().chain(&self.intermediates) {
                untrusted.push(cert.clone())?;
            }
            let mut context = X509StoreContext::new()?;
            let no_crls: [&X509CrlRef; 0] = [];
            let context_crls: &[&X509CrlRef] = if check_crls { crls } else { &no_crls };
            context.init(&store, signer, &untrusted, |context| {
                if ffi::verify_cert_with_crls(context, context_crls)? {
                    let chain = context
                        .chain()
                        .map(|chain| chain.iter().map(|cert| cert.to_owned()).collect())
                        .unwrap_or_default();
                    Ok(Ok(chain))
                } else {
                    let code = context.error().as_raw();
                    let depth = context.error_depth();
                    let current = context.current_cert();
                    Ok(Err(map_verify_error(code, depth, current, crls, at)))
                }
            })
        };
        let (built, gaps) = ffi::record_crl_gaps(forgive_unusable, build);
        let result = match built {
            Ok(Ok(chain)) if !chain.is_empty() => Ok(chain),
            Ok(Ok(_)) | Err(_) => Err(internal()),
            Ok(Err(failure)) => Err(failure),
        };
        (result, gaps)
    }

    /// Validation itself; the flag says whether the revocation source was consulted (then the
    /// result depends on external state and is not cached).
    fn validate_uncached(
        &self,
        signer: &X509,
        offered: &[X509],
        embedded_crls: &[X509Crl],
        at: OffsetDateTime,
        revocation: &Revocation<'_>,
    ) -> (Result<Validated, Failure>, bool) {
        let seconds = at.unix_timestamp();
        let mode = revocation.mode;
        let mut crls: Vec<&X509CrlRef> = self
            .crls
            .iter()
            .chain(embedded_crls)
            .map(|crl| &**crl)
            .collect();
        let source = revocation.source;
        let (first, gaps) =
            self.verify_once(signer, offered, &crls, seconds, mode, source.is_some());
        let chain = match first {
            Ok(chain) => chain,
            Err(failure) => return (Err(failure), false),
        };
        // Depths that still need an answer, and why.
        let mut open: Vec<(u32, CrlGap)> = Vec::new();
        for (depth, gap) in gaps {
            let anchor_depth = u32::try_from(chain.len().saturating_sub(1)).unwrap_or(u32::MAX);
            if depth >= anchor_depth || open.iter().any(|(seen, _)| *seen == depth) {
                continue;
            }
            let needs = !matches!(
                (gap, mode, source.is_some()),
                (CrlGap::Unpublished, RevocationMode::IfAvailable, false)
            );
            if needs {
                open.push((depth, gap));
            }
        }
        if open.is_empty() {
            return (
                Ok(Validated {
                    chain: chain.into(),
                    revocation_warnings: Vec::new(),
                }),
                false,
            );
        }
        let mut warnings = Vec::new();
        let mut fetched_crls: Vec<(u32, String, Vec<u8>, X509Crl)> = Vec::new();
        // Per open depth: what was tried, whether the source was unavailable, and whether it
        // was asked at all (a certificate without OCSP URL or distribution point is not).
        let mut tried: Vec<(u32, CrlGap, Vec<String>, bool, bool)> = Vec::new();
        let mut consulted = false;
        for (depth, gap) in &open {
            let index = usize::try_from(*depth).unwrap_or(usize::MAX);
            let (Some(cert), Some(issuer)) = (chain.get(index), chain.get(index.saturating_add(1)))
            else {
                tried.push((
                    *depth,
                    *gap,
                    vec!["no issuer in the chain".to_owned()],
                    false,
                    false,
                ));
                continue;
            };
            let mut notes = vec![match gap {
                CrlGap::Unpublished => "no CRL from its issuer".to_owned(),
                CrlGap::NoneUsable => "no usable CRL from its issuer".to_owned(),
                CrlGap::Stale => "its issuer's CRL is stale".to_owned(),
            }];
            let mut unavailable = false;
            let mut covered = false;
            let mut asked = false;
            if let Some(source) = source {
                let ocsp_urls = revocation::ocsp_urls(cert);
                if ocsp_urls.is_empty() {
                    notes.push("no OCSP URL (http) in the certificate".to_owned());
                }
                for url in ocsp_urls {
                    let Ok(request) = revocation::OcspQuestion::new(cert, issuer) else {
                        notes.push("OCSP request could not be built".to_owned());
                        break;
                    };
                    asked = true;
                    consulted = true;
                    match source.ocsp(&url, request.der(), at) {
                        crate::revocation::Fetched::Unavailable(why) => {
                            unavailable = true;
                            notes.push(format!("OCSP {url}: unavailable: {why}"));
                        }
                        crate::revocation::Fetched::Answer(answer) => {
                            match request.check(&answer, &chain, &self.anchors, seconds) {
                                revocation::OcspVerdict::Good { next_update } => {
                                    source.confirmed(
                                        &url,
                                        Some(request.der()),
                                        &answer,
                                        next_update,
                                    );
                                    covered = true;
                                    break;
                                }
                                revocation::OcspVerdict::Revoked => {
                                    return (
                                        Err(Failure::CertificateRevoked { depth: *depth }),
                                        true,
                                    );
                                }
                                revocation::OcspVerdict::Unusable(why) => {
                                    notes.push(format!("OCSP {url}: {why}"));
                                }
                            }
                        }
                    }
                }
                if !covered {
                    let crl_urls = revocation::crl_urls(cert);
                    if crl_urls.is_empty() {
                        notes
                            .push("no CRL distribution point (http) in the certificate".to_owned());
                    }
                    for url in crl_urls {
                        asked = true;
                        consulted = true;
                        match source.crl(&url, at) {
                            crate::revocation::Fetched::Unavailable(why) => {
                                unavailable = true;
                                notes.push(format!("CRL {url}: unavailable: {why}"));
                            }
                            crate::revocation::Fetched::Answer(answer) => {
                                match X509Crl::from_der(&answer) {
                                    Ok(crl) => fetched_crls.push((*depth, url, answer, crl)),
                                    Err(_) => notes.push(format!("CRL {url}: not a DER CRL")),
                                }
                            }
                        }
                    }
                }
            }
            if !covered {
                tried.push((*depth, *gap, notes, unavailable, asked));
            }
        }
        if tried.is_empty() {
            return (
                Ok(Validated {
                    chain: chain.into(),
                    revocation_warnings: warnings,
                }),
                consulted,
            );
        }
        let mut chain = chain;
        if !fetched_crls.is_empty() {
            crls.extend(fetched_crls.iter().map(|(_, _, _, crl)| &**crl));
            let (second, gaps) = self.verify_once(signer, offered, &crls, seconds, mode, true);
            match second {
                Ok(again) => chain = again,
                Err(failure) => return (Err(failure), true),
            }
            // A depth the second run no longer reports is covered by a fetched CRL, which
            // OpenSSL validated: confirm the CRLs fetched for it.
            tried.retain(|(depth, ..)| gaps.iter().any(|(gap_depth, _)| gap_depth == depth));
            for (depth, url, answer, crl) in &fetched_crls {
                if !tried.iter().any(|(open_depth, ..)| open_depth == depth)
                    && let Some(next) = crl.next_update().and_then(unix_seconds)
                    && let Ok(next) = OffsetDateTime::from_unix_timestamp(next)
                    && let Some(source) = source
                {
                    source.confirmed(url, None, answer, next);
                }
            }
            if tried.is_empty() {
                return (
                    Ok(Validated {
                        chain: chain.into(),
                        revocation_warnings: warnings,
                    }),
                    true,
                );
            }
        }
        for (depth, gap, notes, unavailable, asked) in tried {
            let index = usize::try_from(depth).unwrap_or(usize::MAX);
            let subject = chain
                .get(index)
                .map(|cert| name_text(cert.subject_name()))
                .unwrap_or_default();
            let detail = notes.join("; ");
            match (mode, gap) {
                (RevocationMode::Require, _) if unavailable => {
                    return (
                        Err(Failure::RevocationUnavailable {
                            depth,
                            subject,
                            detail,
                        }),
                        consulted,
                    );
                }
                (RevocationMode::Require, CrlGap::Unpublished | CrlGap::NoneUsable) => {
                    return (
                        Err(Failure::RevocationMissing {
                            depth,
                            subject,
                            missing: detail,
                        }),
                        consulted,
                    );
                }
                (_, CrlGap::Stale) => {
                    return (
                        Err(stale_failure(depth, chain.get(index), &crls, seconds)),
                        consulted,
                    );
                }
                (_, CrlGap::NoneUsable) => {
                    return (Err(Failure::RevocationUnknown { depth }), consulted);
                }
                // `if-available`, nothing published by the issuer: accepted as without a
                // source, with a warning when the source was asked and had no answer.
                _ if asked => {
                    warnings.push(format!("revocation of {subject:?} not checked: {detail}"));
                }
                _ => {}
            }
        }
        (
            Ok(Validated {
                chain: chain.into(),
                revocation_warnings: warnings,
            }),
            consulted,
        )
    }
}

/// The CRL gaps of one verification, by depth.
type CrlGaps = Vec<(u32, CrlGap)>;

/// Unix seconds of an ASN.1 time (OpenSSL's own comparison, no clock read).
pub(crate) fn unix_seconds(time: &Asn1TimeRef) -> Option<i64> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let diff = epoch.diff(time).ok()?;
    i64::from(diff.days)
        .checked_mul(86_400)?
        .checked_add(i64::from(diff.secs))
}

/// notBefore and notAfter of a certificate in Unix seconds.
fn certificate_events(cert: &X509) -> Option<[i64; 2]> {
    Some([
        unix_seconds(cert.not_before())?,
        unix_seconds(cert.not_after())?,
    ])
}

/// thisUpdate and nextUpdate (when present) of a CRL in Unix seconds.
fn crl_events(crl: &X509CrlRef) -> Option<Vec<i64>> {
    let mut events = vec![unix_seconds(crl.last_update())?];
    if let Some(next) = crl.next_update() {
        events.push(unix_seconds(next)?);
    }
    Some(events)
}

/// A distinguished name for messages: `CN=..., O=...` in the certificate's order.
pub(crate) fn name_text(name: &X509NameRef) -> String {
    let mut parts = Vec::new();
    for entry in name.entries() {
        let key = entry.object().nid().short_name().unwrap_or("?");
        let value = entry
            .data()
            .to_string()
            .map(|value| value.escape_debug().to_string())
            .unwrap_or_else(|_| "?".to_owned());
        parts.push(format!("{key}={value}"));
    }
    parts.join(", ")
}

/// The failure for a stale CRL: which CRL of the certificate's issuer, and its times.
fn stale_failure(depth: u32, cert: Option<&X509>, crls: &[&X509CrlRef], at: i64) -> Failure {
    let Some(cert) = cert else {
        return Failure::RevocationUnknown { depth };
    };
    stale_crl_of(depth, cert, crls, at).unwrap_or(Failure::RevocationUnknown { depth })
}

fn stale_crl_of(
    depth: u32,
    cert: &openssl::x509::X509Ref,
    crls: &[&X509CrlRef],
    at: i64,
) -> Option<Failure> {
    let issuer = cert.issuer_name();
    for crl in crls {
        if crl.issuer_name().try_cmp(issuer).ok()? != std::cmp::Ordering::Equal {
            continue;
        }
        let this = unix_seconds(crl.last_update());
        let next = crl.next_update().and_then(unix_seconds);
        let when = |seconds: Option<i64>| {
            seconds
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                .map_or_else(|| "?".to_owned(), |t| t.to_string())
        };
        let detail = if next.is_some_and(|next| next <= at) {
            format!("nextUpdate {} is past", when(next))
        } else if this.is_some_and(|this| this > at) {
            format!("thisUpdate {} is in the future", when(this))
        } else {
            continue;
        };
        return Some(Failure::StaleCrl {
            depth,
            crl_issuer: name_text(crl.issuer_name()),
            detail,
        });
    }
    None
}

/// SHA-256 over the signer's and the offered certificates' fingerprints (SHA-256 of their
/// received DER, made once per parse), the embedded CRLs' received DER, the revocation mode
/// and whether a source is present: the inputs of one validation besides the time (the
/// store's own anchors, intermediates, CRLs and policies are fixed per `TrustStore`; the time
/// is the entry's interval). Each input is length-prefixed and marked by its kind, so no two
/// different inputs hash the same bytes.
fn cache_key(
    signer: &ParsedCertificate,
    offered: &[Arc<ParsedCertificate>],
    embedded_crl_ders: &[&[u8]],
    revocation: &Revocation<'_>,
) -> Option<[u8; 32]> {
    let mut hasher = MdCtx::new().ok()?;
    hasher.digest_init(crate::digest::SHA256.md()).ok()?;
    hasher
        .digest_update(revocation.mode.as_str().as_bytes())
        .ok()?;
    hasher
        .digest_update(&[u8::from(revocation.source.is_some())])
        .ok()?;
    let mut push = |bytes: &[u8], marker: u8| -> Option<()> {
        hasher.digest_update(&[marker]).ok()?;
        hasher
            .digest_update(&(bytes.len() as u64).to_be_bytes())
            .ok()?;
        hasher.digest_update(bytes).ok()
    };
    push(&signer.fingerprint, 0)?;
    for cert in offered {
        push(&cert.fingerprint, 1)?;
    }
    for crl in embedded_crl_ders {
        push(crl, 2)?;
    }
    let mut digest = [0u8; 32];
    (hasher.digest_final(&mut digest).ok()? == digest.len()).then_some(digest)
}

/// Map an OpenSSL `X509_V_ERR_*` code to a typed failure; `current` is the certificate the
/// error is about, `crls` the CRLs in use (to name a stale one).
fn map_verify_error(
    code: i32,
    depth: u32,
    current: Option<&openssl::x509::X509Ref>,
    crls: &[&X509CrlRef],
    at: i64,
) -> Failure {
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
        sys::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
        | sys::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY => match current {
            Some(cert) => Failure::IssuerNotFound {
                depth,
                issuer: name_text(cert.issuer_name()),
            },
            None => Failure::UntrustedCertificate {
                verify_error: code,
                depth,
            },
        },
        sys::X509_V_ERR_CRL_NOT_YET_VALID | sys::X509_V_ERR_CRL_HAS_EXPIRED => current
            .and_then(|cert| stale_crl_of(depth, cert, crls, at))
            .unwrap_or(Failure::RevocationUnknown { depth }),
        // No usable CRL for the certificate at `depth`: none in scope, or the CRL (or its
        // issuer's path) failed. The status is unknown, which is never "not revoked".
        sys::X509_V_ERR_UNABLE_TO_GET_CRL
        | sys::X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE
        | sys::X509_V_ERR_CRL_SIGNATURE_FAILURE
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
