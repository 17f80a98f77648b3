//! `imipsec verify`: evaluate one message and print the verdict.
//!
//! Exit status: 0 accepted, 1 rejected, 2 could not evaluate (usage, I/O, configuration,
//! store unavailable). The verdict goes to stdout (a short summary, or the JSON object with
//! `--json`); errors, and the main reason of a reject, go to stderr.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use imipsec_pipeline::{EvaluateError, Evaluation, Stores, Verdict};

use crate::cli::VerifyArgs;
use crate::cmd::Exit;
use crate::config::{Config, ConfigError};
use crate::setup::{SetupError, pipeline_with};

/// Why `verify` could not evaluate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The configuration file could not be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The pipeline could not be built.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The message could not be read.
    #[error("cannot read {}", display_input(.path.as_deref()))]
    Read {
        /// The file (`None`: standard input).
        path: Option<PathBuf>,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The input is empty: there is no message to judge.
    #[error("{} is empty: no message to verify", display_input(.path.as_deref()))]
    Empty {
        /// The file (`None`: standard input).
        path: Option<PathBuf>,
    },
    /// The pipeline could not evaluate the message (store unavailable, ...).
    #[error(transparent)]
    Evaluate(#[from] EvaluateError),
    /// `--record` needs a store.
    #[error("--record needs --store (or IMIPSEC_STORE, or [store] path)")]
    RecordWithoutStore,
    /// The verdict could not be written.
    #[error("cannot write the verdict")]
    Output(#[source] std::io::Error),
}

fn display_input(path: Option<&Path>) -> String {
    match path {
        Some(path) => path.display().to_string(),
        None => "standard input".to_owned(),
    }
}

/// Reads at most `limit + 1` bytes, so an oversized message is detected (and rejected as
/// `limit-exceeded` by the pipeline) without holding more than the limit in memory.
fn read_message(file: Option<&Path>, limit: usize) -> Result<Vec<u8>, VerifyError> {
    let path = file.filter(|path| path.as_os_str() != "-");
    let read_error = |source| VerifyError::Read {
        path: path.map(Path::to_path_buf),
        source,
    };
    let bound = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut buffer = Vec::new();
    match path {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(read_error)?;
            // Room for the file and one byte more (never past the bound): the read is then
            // two system calls instead of a growing buffer's dozen.
            let size = file.metadata().map_or(0, |metadata| metadata.len());
            buffer.reserve_exact(usize::try_from(size.saturating_add(1).min(bound)).unwrap_or(0));
            file.take(bound)
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
    if buffer.is_empty() {
        return Err(VerifyError::Empty {
            path: path.map(Path::to_path_buf),
        });
    }
    Ok(buffer)
}

/// Runs `imipsec verify`.
pub fn run(args: &VerifyArgs) -> Result<Exit, VerifyError> {
    let config = Config::load_optional(args.trust.config.as_deref())?;
    // Checked before the store is opened (and possibly created): nothing is written when
    // the command cannot run.
    if args.record && args.trust.store.is_none() && config.store.path.is_none() {
        return Err(VerifyError::RecordWithoutStore);
    }
    let setup = pipeline_with(&args.trust, &config, args.record)?;
    for warning in &setup.warnings {
        eprintln!("imipsec: warning: {warning}");
    }
    let limit = setup.pipeline.settings().limits.message_bytes();
    let message = read_message(args.file.as_deref(), limit)?;
    let ctx = Evaluation {
        at: setup.at,
        recipient: setup.recipient.as_deref(),
        record: args.record,
    };
    let store = setup.store.as_ref().map(|store| store as &dyn Stores);
    let verdict = setup.pipeline.evaluate(&message, &ctx, store)?;

    let mut stdout = std::io::stdout().lock();
    if args.json {
        let json = serde_json::to_string(&verdict)
            .map_err(|error| VerifyError::Output(std::io::Error::other(error)))?;
        writeln!(stdout, "{json}").map_err(VerifyError::Output)?;
    } else {
        write_summary(&mut stdout, &verdict).map_err(VerifyError::Output)?;
    }
    stdout.flush().map_err(VerifyError::Output)?;
    if let Some(reason) = verdict.reasons().first() {
        // The detail names a stale CRL or a missing revocation answer when that is the cause:
        // the anchors are then not the problem.
        let hint = match reason.code {
            imipsec_pipeline::Reason::UntrustedCertificate if reason.detail.contains("stale") => {
                " (hint: load a fresh CRL with --crl)"
            }
            imipsec_pipeline::Reason::UntrustedCertificate
                if reason.detail.contains("no revocation answer") =>
            {
                " (hint: give the issuer's CRL with --crl, or use --revocation if-available)"
            }
            imipsec_pipeline::Reason::UntrustedCertificate => {
                " (hint: is the signer's CA among --trust, and does the message, --intermediates \
                 or --trust carry the intermediate certificates?)"
            }
            _ => "",
        };
        eprintln!(
            "imipsec: rejected: {}: {}{hint}",
            reason.code, reason.detail
        );
        return Ok(Exit::Rejected);
    }
    Ok(Exit::Success)
}

/// The human summary: the decision, who acted, then every reason and warning.
fn write_summary(out: &mut impl Write, verdict: &Verdict) -> std::io::Result<()> {
    if verdict.is_accept() {
        write!(out, "accept")?;
        if let Some(component) = verdict.itip().first() {
            write!(out, ": {} {}", component.method, component.component)?;
            if let Some(uid) = &component.uid {
                write!(out, " {uid}")?;
            }
            if let (Some(actor), Some(role)) = (&component.actor, &component.role) {
                write!(out, " from {role} {actor}")?;
            }
            if let Some(via) = &component.via {
                write!(out, " (sent by {via})")?;
            }
        }
        if verdict.is_recorded() {
            write!(out, " [recorded]")?;
        }
        writeln!(out)?;
    } else {
        writeln!(out, "reject")?;
    }
    for reason in verdict.reasons() {
        writeln!(out, "  reason {}: {}", reason.code, reason.detail)?;
    }
    for warning in verdict.warnings() {
        writeln!(out, "  warning {}: {}", warning.code, warning.detail)?;
    }
    for layer in verdict.layers() {
        for signer in &layer.signers {
            writeln!(
                out,
                "  signer {} ({}), chain {}",
                signer.emails.join(", "),
                signer.subject,
                signer.chain
            )?;
        }
    }
    Ok(())
}
