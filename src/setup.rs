//! Builds a ready pipeline from flags and configuration, for `verify` and `audit`.
//!
//! Flags override the configuration file; the clock is read here (and only here) when
//! `--at` is absent.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use imipsec_pipeline::policy::{Store, StoreError, StoreLocation, StoreOptions};
use imipsec_pipeline::smime::keys::{Identity, KeyError};
use imipsec_pipeline::smime::openpgp;
use imipsec_pipeline::smime::{AlgorithmPolicy, RevocationMode, TrustStore, TrustStoreError};
use imipsec_pipeline::{Pipeline, Settings};
use time::OffsetDateTime;

use crate::cli::TrustArgs;
use crate::config::{Config, ConfigError};

/// Largest identity file read (a PEM bundle or PKCS#12 is a few kilobytes).
pub const MAX_IDENTITY_BYTES: u64 = 1 << 20;

/// The event-state scope used when neither `--recipient` nor `[recipient] default` names the
/// receiving calendar user. `.invalid` (RFC 2606) can never be a real mailbox.
pub const DEFAULT_SCOPE: &str = "default@imipsec.invalid";

/// A pipeline ready to evaluate, with its optional store and evaluation circumstances.
pub struct PipelineSetup {
    /// The pipeline.
    pub pipeline: Pipeline,
    /// The policy store, when `--store`, `IMIPSEC_STORE` or the configuration names one.
    pub store: Option<Store>,
    /// The recipient (state scope), from `--recipient` or the configuration.
    pub recipient: Option<String>,
    /// The evaluation time: `--at`, else now.
    pub at: OffsetDateTime,
    /// What the operator should hear about the loaded trust configuration (a CRL past its
    /// nextUpdate): printed by the CLI, logged by the gate.
    pub warnings: Vec<String>,
}

/// The `[trust] revocation` mode of the configuration (default `if-available`).
pub fn revocation_mode(config: &Config) -> Result<RevocationMode, SetupError> {
    match config.trust.revocation.as_deref() {
        None => Ok(RevocationMode::default()),
        Some(text) => text.parse().map_err(
            |error: imipsec_pipeline::smime::revocation::UnknownRevocationMode| {
                SetupError::Revocation(error)
            },
        ),
    }
}

/// Loads anchors (PEM, DER or directories), intermediates, CRLs (PEM or DER) and the initial
/// policy set into a trust store.
pub fn trust_store(
    anchors: &[PathBuf],
    intermediates: &[PathBuf],
    crls: &[PathBuf],
    policies: &[String],
) -> Result<TrustStore, SetupError> {
    let mut untrusted = Vec::new();
    for path in intermediates {
        untrusted
            .extend(imipsec_pipeline::smime::load_certificates(path).map_err(SetupError::Trust)?);
    }
    TrustStore::from_pem_files(anchors, crls)
        .and_then(|store| {
            store
                .with_intermediates(untrusted)
                .with_policies(policies.to_vec())
        })
        .map_err(SetupError::Trust)
}

/// One warning per CRL that is past its nextUpdate at `at`: every certificate it covers is
/// `revocation-unknown` until a fresh CRL is loaded (or fetched).
pub fn stale_crl_warnings(store: &TrustStore, at: OffsetDateTime) -> Vec<String> {
    store
        .crl_status(at)
        .into_iter()
        .filter(|status| status.stale)
        .map(|status| {
            let next = status
                .next_update
                .map_or_else(|| "?".to_owned(), |next| next.to_string());
            format!(
                "the CRL of {:?} is past its nextUpdate ({next}): certificates it covers are \
                 revocation-unknown until a fresh CRL is loaded",
                status.issuer
            )
        })
        .collect()
}

impl std::fmt::Debug for PipelineSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineSetup")
            .field("pipeline", &self.pipeline)
            .field("store", &self.store.is_some())
            .field("recipient", &self.recipient)
            .field("at", &self.at)
            .finish()
    }
}

/// Why the pipeline could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The configuration file could not be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No trust anchor was given: nothing could ever verify.
    #[error(
        "no trust anchors: give --trust PEM or [trust] anchors (or --openpgp-certs / [openpgp] certs) in the configuration"
    )]
    NoTrustAnchors,
    /// OpenPGP certificates or secret keys could not be loaded.
    #[error("OpenPGP: {source}")]
    OpenPgp {
        /// Why.
        source: openpgp::LoadError,
    },
    /// The trust anchors or CRLs could not be loaded.
    #[error("cannot load trust anchors, intermediates, CRLs or policies")]
    Trust(#[source] TrustStoreError),
    /// `[trust] revocation` is not a revocation mode.
    #[error("invalid [trust] revocation")]
    Revocation(#[source] imipsec_pipeline::smime::revocation::UnknownRevocationMode),
    /// An identity file could not be read.
    #[error("cannot read identity {path}")]
    IdentityRead {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An identity file is larger than [`MAX_IDENTITY_BYTES`].
    #[error("identity {path} is larger than {MAX_IDENTITY_BYTES} bytes")]
    IdentityTooLarge {
        /// The file.
        path: PathBuf,
    },
    /// An identity file could not be used.
    #[error("cannot load identity {path}")]
    Identity {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: KeyError,
    },
    /// The password environment variable is not set.
    #[error("the identity password variable {variable} is not set")]
    PasswordMissing {
        /// The variable name.
        variable: String,
    },
    /// The password file could not be read.
    #[error("cannot read password file {path}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The password file is larger than [`MAX_PASSWORD_BYTES`] or not UTF-8.
    #[error("password file {path} is not one line of UTF-8 text under {MAX_PASSWORD_BYTES} bytes")]
    PasswordFileContent {
        /// The file.
        path: PathBuf,
    },
    /// A command that only reads the store was pointed at a missing one.
    #[error(
        "policy store {} does not exist; create it with `imipsec store init --store {}`",
        .path.display(),
        .path.display()
    )]
    StoreMissing {
        /// The file.
        path: PathBuf,
    },
    /// A PostgreSQL URL with a password was given on the command line, where `ps` and
    /// shell histories show it.
    #[error(
        "the store URL {location} carries a password on the command line; pass it in \
         PGPASSWORD or a PGPASSFILE (~/.pgpass) line instead, or put the URL in \
         IMIPSEC_STORE or the configuration's [store] url"
    )]
    StorePasswordOnCommandLine {
        /// The URL, password hidden.
        location: StoreLocation,
    },
    /// The store could not be opened.
    #[error("cannot open the policy store {path}")]
    Store {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// The revocation cache folder cannot be used.
    #[error(transparent)]
    RevocationCache(#[from] imipsec_revocation::CacheError),
    /// A configured limit does not fit this platform.
    #[error("limit {name} = {value} is out of range")]
    Limit {
        /// Which limit.
        name: &'static str,
        /// Its value.
        value: u64,
    },
}

/// Largest password file read.
pub const MAX_PASSWORD_BYTES: u64 = 4096;

/// Where an identity's password comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PasswordSource<'a> {
    /// No password: unencrypted PEM, or PKCS#12 with an empty password.
    #[default]
    None,
    /// An environment variable (`--identity-password-env`, `password_env`).
    Env(&'a str),
    /// The first line of a file (`--password-file`, `password_file`).
    File(&'a Path),
}

impl<'a> PasswordSource<'a> {
    /// The flags' source: the variable, else the file, else none.
    pub fn from_flags(env: Option<&'a str>, file: Option<&'a Path>) -> Self {
        match (env, file) {
            (Some(variable), _) => PasswordSource::Env(variable),
            (None, Some(path)) => PasswordSource::File(path),
            (None, None) => PasswordSource::None,
        }
    }

    /// The password, or `None` when no source is given.
    fn read(self) -> Result<Option<String>, SetupError> {
        match self {
            PasswordSource::None => Ok(None),
            PasswordSource::Env(variable) => {
                std::env::var(variable)
                    .map(Some)
                    .map_err(|_| SetupError::PasswordMissing {
                        variable: variable.to_owned(),
                    })
            }
            PasswordSource::File(path) => {
                let read_error = |source| SetupError::PasswordFile {
                    path: path.to_path_buf(),
                    source,
                };
                let mut bytes = Vec::new();
                std::fs::File::open(path)
                    .and_then(|file| {
                        std::io::Read::read_to_end(
                            &mut std::io::Read::take(file, MAX_PASSWORD_BYTES + 1),
                            &mut bytes,
                        )
                    })
                    .map_err(read_error)?;
                let content = || SetupError::PasswordFileContent {
                    path: path.to_path_buf(),
                };
                if bytes.len() as u64 > MAX_PASSWORD_BYTES {
                    return Err(content());
                }
                let text = String::from_utf8(bytes).map_err(|_| content())?;
                // The first line, without its line end (as `openssl -passin file:` reads it).
                let line = text.split(['\n', '\r']).next().unwrap_or("");
                Ok(Some(line.to_owned()))
            }
        }
    }
}

/// Read a small file with a size bound.
fn read_bounded(path: &Path) -> Result<Vec<u8>, SetupError> {
    let read_error = |source| SetupError::IdentityRead {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_IDENTITY_BYTES {
        return Err(SetupError::IdentityTooLarge {
            path: path.to_path_buf(),
        });
    }
    std::fs::read(path).map_err(read_error)
}

/// Load an identity: PEM (key and certificates, the key possibly encrypted) when the file
/// looks like PEM, else PKCS#12; the password from `password` (PKCS#12: empty when none).
pub fn load_identity(path: &Path, password: PasswordSource<'_>) -> Result<Identity, SetupError> {
    let bytes = read_bounded(path)?;
    let identity_error = |source| SetupError::Identity {
        path: path.to_path_buf(),
        source,
    };
    let password = password.read()?;
    if bytes.windows(11).any(|window| window == b"-----BEGIN ") {
        return Identity::from_pem_with_password(&bytes, password.as_deref().map(str::as_bytes))
            .map_err(identity_error);
    }
    Identity::from_pkcs12(&bytes, password.as_deref().unwrap_or("")).map_err(identity_error)
}

/// Load an OpenPGP secret key (`--openpgp-identity`, `[[openpgp.identities]]`) with the same
/// password sources as an S/MIME identity.
pub fn load_openpgp_identity(
    path: &Path,
    password: PasswordSource<'_>,
) -> Result<openpgp::Identity, SetupError> {
    let password = password.read()?;
    openpgp::Identity::load(path, password.as_deref().map(str::as_bytes))
        .map_err(|source| SetupError::OpenPgp { source })
}

/// The OpenPGP certificates and decryption keys: flags over the configuration.
fn openpgp_keyring(
    certs: &[PathBuf],
    trust: &TrustArgs,
    config: &Config,
) -> Result<openpgp::Keyring, SetupError> {
    let certificates = if certs.is_empty() {
        openpgp::Certificates::default()
    } else {
        openpgp::Certificates::load(certs).map_err(|source| SetupError::OpenPgp { source })?
    };
    let mut identities = Vec::new();
    if trust.openpgp_identity.is_empty() {
        for identity in &config.openpgp.identities {
            let password = PasswordSource::from_flags(
                identity.password_env.as_deref(),
                identity.password_file.as_deref(),
            );
            identities.push(load_openpgp_identity(&identity.path, password)?);
        }
    } else {
        for path in &trust.openpgp_identity {
            let password = PasswordSource::from_flags(
                trust.identity_password_env.as_deref(),
                trust.password_file.as_deref(),
            );
            identities.push(load_openpgp_identity(path, password)?);
        }
    }
    Ok(openpgp::Keyring {
        certificates,
        identities,
    })
}

/// Open the policy store at `path`: a SQLite file, or a PostgreSQL database when it is a
/// `postgresql://` URL. `create`: create the file (or the schema) when missing (only when
/// something will be recorded; otherwise a mistyped path is an error, not an empty store
/// that silently grants nothing).
pub fn open_store(path: &Path, create: bool) -> Result<Store, SetupError> {
    let location = store_location(path)?;
    let options = StoreOptions {
        create,
        ..StoreOptions::default()
    };
    Store::open(&location, &options).map_err(|source| match source {
        StoreError::FileNotFound => SetupError::StoreMissing {
            path: PathBuf::from(location.to_string()),
        },
        source => SetupError::Store {
            path: PathBuf::from(location.to_string()),
            source,
        },
    })
}

/// Reads a `--store`/`IMIPSEC_STORE`/`[store]` value; refuses a URL whose password is on
/// this process's command line.
pub fn store_location(path: &Path) -> Result<StoreLocation, SetupError> {
    let location = match path.to_str() {
        Some(text) => StoreLocation::parse(text),
        None => StoreLocation::path(path),
    };
    if location.has_password()
        && std::env::args_os().any(|arg| {
            arg.to_str()
                .is_some_and(|arg| path.to_str().is_some_and(|url| arg.contains(url)))
        })
    {
        return Err(SetupError::StorePasswordOnCommandLine { location });
    }
    Ok(location)
}

/// The algorithm policy of `[policy]` (the library default where absent).
pub fn algorithm_policy(config: &Config) -> AlgorithmPolicy {
    let mut algorithms = AlgorithmPolicy::default();
    if let Some(bits) = config.policy.min_rsa_bits {
        algorithms.min_rsa_bits = bits;
    }
    algorithms.danger_allow_sha1 = config.policy.danger_allow_sha1;
    algorithms
}

fn limit(
    name: &'static str,
    value: Option<impl Into<u64> + Copy>,
    default: usize,
) -> Result<usize, SetupError> {
    match value {
        None => Ok(default),
        Some(value) => {
            let value: u64 = value.into();
            usize::try_from(value).map_err(|_| SetupError::Limit { name, value })
        }
    }
}

/// The revocation cache folder: `--revocation-cache`, else `[trust] revocation_cache`.
pub fn revocation_cache(trust: &TrustArgs, config: &Config) -> Option<PathBuf> {
    trust
        .revocation_cache
        .clone()
        .or_else(|| config.trust.revocation_cache.clone())
}

/// The OCSP and CRL fetcher of `--fetch-revocation` / `[trust] fetch_revocation`, with the
/// default limits ([`imipsec_revocation::Limits`]) and the cache of [`revocation_cache`].
fn revocation_fetcher(
    trust: &TrustArgs,
    config: &Config,
) -> Result<Arc<dyn imipsec_pipeline::smime::RevocationSource>, SetupError> {
    let cache = revocation_cache(trust, config);
    let fetcher =
        imipsec_revocation::Fetcher::new(imipsec_revocation::Limits::default(), cache.as_deref())?;
    Ok(Arc::new(fetcher))
}

/// Builds the pipeline from `trust` flags over `config`. `create_store`: create the store
/// file when missing (for callers that record event state).
pub fn pipeline_with(
    trust: &TrustArgs,
    config: &Config,
    create_store: bool,
) -> Result<PipelineSetup, SetupError> {
    let anchors: Vec<PathBuf> = if trust.trust.is_empty() {
        config.trust.anchors.clone()
    } else {
        trust.trust.clone()
    };
    let openpgp_certs: &[PathBuf] = if trust.openpgp_certs.is_empty() {
        &config.openpgp.certs
    } else {
        &trust.openpgp_certs
    };
    // OpenPGP certificates alone are trust enough (an OpenPGP-only organisation).
    if anchors.is_empty() && openpgp_certs.is_empty() {
        return Err(SetupError::NoTrustAnchors);
    }
    let crls: Vec<PathBuf> = if trust.crl.is_empty() {
        config.trust.crls.clone()
    } else {
        trust.crl.clone()
    };
    let intermediates: &[PathBuf] = if trust.intermediates.is_empty() {
        &config.trust.intermediates
    } else {
        &trust.intermediates
    };
    let policies: &[String] = if trust.policy.is_empty() {
        &config.trust.policies
    } else {
        &trust.policy
    };
    let revocation = match trust.revocation {
        Some(mode) => mode,
        None => revocation_mode(config)?,
    };
    // OpenPGP-only: no S/MIME anchor, so no S/MIME signer is trusted (CRLs and intermediates
    // would have nothing to chain to and are refused as a configuration mistake).
    let trust_store = if anchors.is_empty() {
        if !crls.is_empty() || !intermediates.is_empty() || !policies.is_empty() {
            return Err(SetupError::NoTrustAnchors);
        }
        TrustStore::without_anchors()
    } else {
        trust_store(&anchors, intermediates, &crls, policies)?
    };
    let at = trust.at.unwrap_or_else(OffsetDateTime::now_utc);
    let warnings = stale_crl_warnings(&trust_store, at);

    let mut identities = Vec::new();
    if trust.identity.is_empty() {
        for identity in &config.identities {
            let password = PasswordSource::from_flags(
                identity.password_env.as_deref(),
                identity.password_file.as_deref(),
            );
            identities.push(load_identity(&identity.path, password)?);
        }
    } else {
        for path in &trust.identity {
            let password = PasswordSource::from_flags(
                trust.identity_password_env.as_deref(),
                trust.password_file.as_deref(),
            );
            identities.push(load_identity(path, password)?);
        }
    }

    let openpgp = openpgp_keyring(openpgp_certs, trust, config)?;

    let mut settings = Settings::new(trust_store);
    settings.revocation = revocation;
    settings.identities = identities;
    settings.openpgp = openpgp;
    settings.algorithms = algorithm_policy(config);
    settings.danger_allow_unsigned =
        trust.danger_allow_unsigned || config.policy.danger_allow_unsigned;
    settings.strict_icalendar = trust.strict_icalendar || config.policy.strict_icalendar;
    if trust.fetch_revocation || config.trust.fetch_revocation {
        settings.revocation_source = Some(revocation_fetcher(trust, config)?);
    }

    let limits = &config.limits;
    let defaults = imipsec_pipeline::Limits::default();
    let mut pipeline_limits = defaults.clone();
    // One bound, the S/MIME layer's: the whole message and any decrypted content.
    pipeline_limits.smime.message_bytes = limit(
        "message_bytes",
        limits.message_bytes,
        defaults.smime.message_bytes,
    )?;
    pipeline_limits.smime.mime_depth =
        limit("mime_depth", limits.mime_depth, defaults.smime.mime_depth)?;
    pipeline_limits.smime.parts = limit("parts", limits.parts, defaults.smime.parts)?;
    pipeline_limits.smime.certificates = limit(
        "certificates",
        limits.certificates,
        defaults.smime.certificates,
    )?;
    pipeline_limits.itip.components =
        limit("components", limits.components, defaults.itip.components)?;
    pipeline_limits.itip.attendees = limit("attendees", limits.attendees, defaults.itip.attendees)?;
    settings.limits = pipeline_limits;

    let store_path = trust.store.clone().or_else(|| config.store.path.clone());
    let store = match store_path {
        Some(path) => Some(open_store(&path, create_store)?),
        None => None,
    };
    // The state is scoped per receiving calendar user. Without --recipient or a configured
    // default, a store still gets checked and recorded, under one default scope: skipping the
    // state checks would let an organizer hijack or a replay through unnoticed.
    let recipient = trust
        .recipient
        .clone()
        .or_else(|| config.recipient.default.clone())
        .or_else(|| store.is_some().then(|| DEFAULT_SCOPE.to_owned()));
    Ok(PipelineSetup {
        pipeline: Pipeline::new(settings),
        store,
        recipient,
        at,
        warnings,
    })
}
