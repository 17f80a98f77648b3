//! `imipsec sign`: build, sign and optionally encrypt an iMIP message.
//!
//! Exit status: 0 the message was written to stdout; 1 refused because a gate would reject
//! it (the reason code is printed on stderr); 2 could not sign (usage, unreadable identity or
//! input, store unavailable).

use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use imipsec_pipeline::itip::{DelegationPolicy, DenyAllDelegations};
use imipsec_pipeline::policy::Timestamp;
use imipsec_pipeline::signer::{
    IdentityCheck, SignError as SignerError, SignRequest, SigningIdentity, sign_message,
};
use imipsec_pipeline::smime::encrypt::ContentCipher;
use imipsec_pipeline::smime::openpgp;
use imipsec_pipeline::smime::sign::{Digest, SignOptions};
use imipsec_pipeline::smime::{TrustStore, TrustStoreError, load_certificates};
use imipsec_pipeline::{Limits, Reason, StoreDelegationPolicy};
use time::OffsetDateTime;

use crate::cli::{CipherArg, DigestArg, SignArgs};
use crate::cmd::Exit;
use crate::config::{Config, ConfigError};
use crate::setup::{
    PasswordSource, SetupError, algorithm_policy, load_identity, load_openpgp_identity, open_store,
};

/// Largest recipient certificate file read.
const MAX_CERTIFICATE_BYTES: u64 = 1 << 20;

/// Why `sign` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The configuration file could not be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The identity or the store could not be loaded.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// `--identity` was not given (clap enforces it; kept for callers of [`run`]).
    #[error("no signing identity: give --identity FILE (imipsec never writes unsigned mail)")]
    NoIdentity,
    /// The trust anchors or CRLs could not be loaded.
    #[error("cannot load trust anchors or CRLs")]
    Trust(#[source] TrustStoreError),
    /// A file could not be read.
    #[error("cannot read {}", display_input(.path.as_deref()))]
    Read {
        /// The file (`None`: standard input).
        path: Option<PathBuf>,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The input is empty or larger than the message limit.
    #[error("{} is {what}", display_input(.path.as_deref()))]
    BadSize {
        /// The file (`None`: standard input).
        path: Option<PathBuf>,
        /// `empty` or `larger than the limit`.
        what: &'static str,
    },
    /// Building, signing or encrypting failed (a refusal is reported separately).
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// The message could not be written.
    #[error("cannot write the message")]
    Output(#[source] std::io::Error),
}

fn display_input(path: Option<&Path>) -> String {
    match path {
        Some(path) => path.display().to_string(),
        None => "standard input".to_owned(),
    }
}

fn read_bounded(path: Option<&Path>, limit: u64) -> Result<Vec<u8>, SignError> {
    let path = path.filter(|path| path.as_os_str() != "-");
    let read_error = |source| SignError::Read {
        path: path.map(Path::to_path_buf),
        source,
    };
    let mut buffer = Vec::new();
    let bound = limit.saturating_add(1);
    match path {
        Some(path) => {
            std::fs::File::open(path)
                .map_err(read_error)?
                .take(bound)
                .read_to_end(&mut buffer)
                .map_err(read_error)?;
        }
        None => {
            std::io::stdin()
                .lock()
                .take(bound)
                .read_to_end(&mut buffer)
                .map_err(read_error)?;
        }
    }
    let what = if buffer.is_empty() {
        "empty"
    } else if buffer.len() as u64 > limit {
        "larger than the limit"
    } else {
        return Ok(buffer);
    };
    Err(SignError::BadSize {
        path: path.map(Path::to_path_buf),
        what,
    })
}

/// 128 bits from the standard library's per-process random hash keys: unique enough for a
/// Message-ID without another dependency.
fn unique_token(at: OffsetDateTime) -> String {
    let mut parts = [0u64; 2];
    for part in &mut parts {
        let mut hasher = std::hash::RandomState::new().build_hasher();
        hasher.write_i128(at.unix_timestamp_nanos());
        *part = hasher.finish();
    }
    format!(
        "{}.{:016x}{:016x}.imipsec",
        at.unix_timestamp(),
        parts[0],
        parts[1]
    )
}

/// Runs `imipsec sign`.
pub fn run(args: &SignArgs) -> Result<Exit, SignError> {
    let config = Config::load_optional(args.config.as_deref())?;
    let at = args.at.unwrap_or_else(OffsetDateTime::now_utc);
    let password = PasswordSource::from_flags(
        args.identity_password_env.as_deref(),
        args.password_file.as_deref(),
    );
    let mut openpgp_key = None;
    let mut openpgp_recipients = None;
    let mut smime_identity = None;
    let mut trust = None;
    if let Some(path) = args.openpgp_key.as_deref() {
        openpgp_key = Some(load_openpgp_identity(path, password)?);
        if !args.encrypt_to_openpgp.is_empty() {
            openpgp_recipients = Some(
                openpgp::Certificates::load(&args.encrypt_to_openpgp)
                    .map_err(|source| SetupError::OpenPgp { source })?,
            );
        }
    } else {
        let identity_path = args.identity.as_deref().ok_or(SignError::NoIdentity)?;
        let identity = load_identity(identity_path, password)?;
        let intermediate_paths = if args.intermediates.is_empty() {
            config.trust.intermediates.clone()
        } else {
            args.intermediates.clone()
        };
        let mut intermediates = Vec::new();
        for path in &intermediate_paths {
            intermediates.extend(load_certificates(path).map_err(SignError::Trust)?);
        }
        smime_identity = Some(identity.with_intermediates(&intermediates));
        let anchors = if args.trust.is_empty() {
            config.trust.anchors.clone()
        } else {
            args.trust.clone()
        };
        let crls = if args.crl.is_empty() {
            config.trust.crls.clone()
        } else {
            args.crl.clone()
        };
        if !anchors.is_empty() {
            trust = Some(
                TrustStore::from_pem_files(&anchors, &crls)
                    .map_err(SignError::Trust)?
                    .with_intermediates(intermediates),
            );
        }
    }
    let identity = match (&smime_identity, &openpgp_key) {
        (Some(identity), _) => SigningIdentity::Smime(identity),
        (None, Some(key)) => SigningIdentity::OpenPgp(key),
        (None, None) => return Err(SignError::NoIdentity),
    };
    let algorithms = algorithm_policy(&config);
    let identity_check = if args.danger_skip_identity_checks {
        IdentityCheck::DangerSkip
    } else {
        IdentityCheck::Gate {
            trust: trust.as_ref(),
            algorithms: &algorithms,
            at,
        }
    };
    let mut recipients = Vec::with_capacity(args.encrypt_to.len());
    for path in &args.encrypt_to {
        recipients.push(read_bounded(Some(path), MAX_CERTIFICATE_BYTES)?);
    }
    let store_path = args.store.clone().or_else(|| config.store.path.clone());
    let store = match &store_path {
        Some(path) => Some(open_store(path, false)?),
        None => None,
    };
    let limit = config
        .limits
        .message_bytes
        .unwrap_or(Limits::default().message_bytes() as u64);
    let input = read_bounded(args.file.as_deref(), limit)?;

    let store_policy = store.as_ref().map(|store| {
        StoreDelegationPolicy::new(store, Timestamp::from_unix_seconds(at.unix_timestamp()))
    });
    let policy: &dyn DelegationPolicy = match &store_policy {
        Some(policy) => policy,
        None => &DenyAllDelegations,
    };
    let unique = unique_token(at);
    let request = SignRequest {
        input: &input,
        identity,
        identity_check,
        from: args.from.as_deref(),
        to: &args.to,
        subject: args.subject.as_deref(),
        opaque: args.opaque,
        sign_options: SignOptions {
            digest: match args.digest {
                DigestArg::Sha256 => Digest::Sha256,
                DigestArg::Sha384 => Digest::Sha384,
                DigestArg::Sha512 => Digest::Sha512,
            },
            include_chain: true,
            signing_time: Some(at),
        },
        encrypt_to: &recipients,
        encrypt_to_openpgp: openpgp_recipients.as_ref(),
        cipher: match args.cipher {
            CipherArg::Aes256Gcm => ContentCipher::Aes256Gcm,
            CipherArg::Aes256Cbc => ContentCipher::Aes256Cbc,
        },
        date: at.unix_timestamp(),
        message_id_unique: &unique,
        policy,
    };
    match sign_message(&request) {
        Ok(message) => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&message).map_err(SignError::Output)?;
            stdout.flush().map_err(SignError::Output)?;
            Ok(Exit::Success)
        }
        Err(SignerError::Refused(finding)) => {
            let hint = match finding.code {
                Reason::UntrustedCertificate => {
                    " (hint: does the identity file hold the intermediate certificates, and is \
                     --trust the CA that issued them?)"
                }
                Reason::CertificateExpired => " (hint: renew the certificate, or check --at)",
                _ => "",
            };
            eprintln!(
                "imipsec: refused: {}: {}{hint}",
                finding.code, finding.detail
            );
            Ok(Exit::Rejected)
        }
        Err(error) => Err(error.into()),
    }
}
