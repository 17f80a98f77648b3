//! `imipsec audit`: evaluate every message of mailboxes and report.
//!
//! Streaming: one reader thread splits the mailboxes into messages and hands them over a
//! bounded channel to one worker per core; each worker evaluates a message and drops it.
//! The main thread puts results back in mailbox order (a reorder buffer that holds only
//! what finished ahead of a slower message), writes the reports row by row and keeps
//! counts, so memory does not grow with the mailbox. Evaluation is read-only unless
//! `--record`.
//!
//! Each message is classed (`imipsec_audit::classify`): accept, reject, not-calendar (no calendar
//! content), not-decrypted (encrypted to a key the audit does not have) or error. Reports are
//! written to temporary files beside their targets and renamed over them only when the audit
//! completed, so a failed run leaves no partial report (and an older one intact). A target
//! that exists and is not a regular file (`/dev/null`, a FIFO, `/dev/stdout`) is written
//! straight to: renaming over it would replace it, and as root that replaced `/dev/null`
//! itself with a regular file. A symbolic link to a file is followed, and the file it names
//! is replaced, not the link.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use imipsec_audit::mailbox::{self, MailboxError};
use imipsec_audit::report::csv::CsvReport;
use imipsec_audit::report::html::HtmlReport;
use imipsec_audit::report::{Row, RunInfo, Summary, write_jsonl};
use imipsec_audit::{audit, evaluate_message};
use imipsec_pipeline::policy::Store;
use imipsec_pipeline::{Evaluation, Stores};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tempfile::NamedTempFile;

use crate::cli::AuditArgs;
use crate::cmd::Exit;
use crate::config::{Config, ConfigError};
use crate::setup::{SetupError, open_store, pipeline_with};

/// Why the audit could not run (exit status 2). Problems with single messages are not
/// errors: they are rows with verdict `error` or a reason, and the audit goes on.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The configuration file could not be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The pipeline could not be built from flags and configuration.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// A mailbox path could not be read.
    #[error(transparent)]
    Mailbox(#[from] MailboxError),
    /// A report file could not be created.
    #[error("cannot create report {path}")]
    CreateReport {
        /// The report file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A report could not be written.
    #[error("cannot write report {path}")]
    WriteReport {
        /// The report file (`-` for standard output).
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A worker thread panicked (a bug; the audit is incomplete).
    #[error("an audit worker stopped unexpectedly; the audit is incomplete")]
    WorkerPanicked,
}

impl From<imipsec_audit::Error> for AuditError {
    fn from(error: imipsec_audit::Error) -> Self {
        match error {
            imipsec_audit::Error::Mailbox(error) => AuditError::Mailbox(error),
            _ => AuditError::WorkerPanicked,
        }
    }
}

/// Runs `imipsec audit`.
pub fn run(args: &AuditArgs) -> Result<Exit, AuditError> {
    let config = Config::load_optional(args.trust.config.as_deref())?;
    // Recording creates the store when missing; a read-only audit needs an existing one.
    let setup = pipeline_with(&args.trust, &config, args.record)?;
    for warning in &setup.warnings {
        eprintln!("imipsec: warning: {warning}");
    }
    let store_path = args.trust.store.clone().or(config.store.path.clone());
    let info = run_info(args, &config, &setup, store_path.as_deref());
    let limits = mailbox::Limits {
        message_bytes: setup.pipeline.settings().limits.message_bytes(),
    };
    // Recording makes each message change the state the next one is judged against (a
    // REPLY needs its REQUEST recorded first), so it runs in mailbox order on one worker.
    let jobs = if args.record {
        1
    } else {
        args.jobs
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, usize::from)
    };
    let mut reports = Reports::create(args)?;
    // Each worker opens its own connection (a SQLite connection is not shared across
    // threads); the store the setup opened proves the path is usable before any work.
    drop(setup.store);
    let pipeline = &setup.pipeline;
    let recipient = setup.recipient.as_deref();
    let at = setup.at;
    let record = args.record;
    let make_worker = || -> Result<_, AuditError> {
        let store: Option<Store> = match &store_path {
            Some(path) => Some(open_store(path, record)?),
            None => None,
        };
        Ok(move |raw: &[u8]| {
            let context = Evaluation {
                at,
                recipient,
                record,
            };
            let store = store.as_ref().map(|store| store as &dyn Stores);
            evaluate_message(pipeline, raw, &context, store)
        })
    };
    let progress = progress_bar(args);
    let started = Instant::now();
    let mut summary = audit(&args.paths, limits, jobs, make_worker, &mut |row| {
        progress.inc(row.input_bytes);
        reports.write(row)
    })?;
    summary.event_state_store = store_path.is_some() && recipient.is_some();
    progress.finish_and_clear();
    let elapsed = started.elapsed();
    reports.finish(&summary, elapsed, &info)?;
    let mut out = std::io::stdout().lock();
    summary
        .print(&mut out, elapsed, &info)
        .and_then(|()| out.flush())
        .map_err(|source| AuditError::WriteReport {
            path: PathBuf::from("-"),
            source,
        })?;
    Ok(Exit::Success)
}

/// A progress bar on stderr, only when stderr is a terminal.
fn progress_bar(args: &AuditArgs) -> ProgressBar {
    if args.no_progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    // Standard input has no size known in advance: a spinner with a byte count then.
    let reads_stdin = args
        .paths
        .iter()
        .any(|path| path.as_os_str() == mailbox::STDIN_PATH);
    let total = (!reads_stdin).then(|| mailbox::total_bytes(&args.paths));
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

/// The circumstances of this run, as the reports state them.
fn run_info(
    args: &AuditArgs,
    config: &Config,
    setup: &crate::setup::PipelineSetup,
    store: Option<&Path>,
) -> RunInfo {
    let shown = |paths: &[PathBuf]| -> Vec<String> {
        paths
            .iter()
            .map(|path| path.display().to_string())
            .collect()
    };
    // The same choice as setup: flags override the configuration.
    let pick = |flags: &[PathBuf], configured: &[PathBuf]| {
        shown(if flags.is_empty() { configured } else { flags })
    };
    RunInfo {
        version: env!("CARGO_PKG_VERSION"),
        at: setup.at,
        // The CLI reads the clock (library code never does): when the report was made.
        generated: time::OffsetDateTime::now_utc(),
        inputs: shown(&args.paths),
        anchors: pick(&args.trust.trust, &config.trust.anchors),
        crls: pick(&args.trust.crl, &config.trust.crls),
        identities: setup.pipeline.settings().identities.len(),
        store: store.map(|path| path.display().to_string()),
        recipient: setup.recipient.clone(),
        record: args.record,
    }
}

/// Where a report's bytes go until the audit completes.
enum Sink {
    /// A temporary file in the target's directory (so the final rename stays on one file
    /// system), renamed over this path at the end.
    Temporary(NamedTempFile, PathBuf),
    /// The target itself, which exists and is not a regular file.
    Direct(std::fs::File),
}

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Temporary(file, _) => file.write(bytes),
            Sink::Direct(file) => file.write(bytes),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Temporary(file, _) => file.flush(),
            Sink::Direct(file) => file.flush(),
        }
    }
}

/// A report being written, buffered.
type Pending = BufWriter<Sink>;

/// How the report at `path` is written: `Ok(Some(file))` to replace `file` (the path, or
/// the file a symbolic link names) by rename; `Ok(None)` to write straight to an existing
/// target that is not a regular file.
fn replaced_file(path: &Path) -> std::io::Result<Option<PathBuf>> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => {
            let is_link = std::fs::symlink_metadata(path)?.file_type().is_symlink();
            Ok(Some(if is_link {
                std::fs::canonicalize(path)?
            } else {
                path.to_path_buf()
            }))
        }
        Ok(_) => Ok(None),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Some(path.to_path_buf())),
        Err(error) => Err(error),
    }
}

/// Opens the report at `path`: a temporary file beside the file it replaces, with the
/// permissions a plain `File::create` would give (0666 less the umask), or the target itself
/// when it is not a regular file.
fn pending(path: &Path) -> Result<Pending, AuditError> {
    let replaced = replaced_file(path).map_err(|source| AuditError::CreateReport {
        path: path.to_path_buf(),
        source,
    })?;
    pending_replacing(path, replaced)
}

/// [`pending`] with the target already resolved by [`replaced_file`] (resolved once, so
/// that everything placed beside the report goes beside the same file).
fn pending_replacing(path: &Path, replaced: Option<PathBuf>) -> Result<Pending, AuditError> {
    let create_error = |source| AuditError::CreateReport {
        path: path.to_path_buf(),
        source,
    };
    let Some(path) = replaced else {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(create_error)?;
        return Ok(BufWriter::new(Sink::Direct(file)));
    };
    let path = path.as_path();
    let name = path.file_name().ok_or_else(|| {
        create_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the report path names no file",
        ))
    })?;
    let mut builder = tempfile::Builder::new();
    let prefix = format!(".{}.", name.to_string_lossy());
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder
        .tempfile_in(directory_of(path))
        .map(|file| BufWriter::new(Sink::Temporary(file, path.to_path_buf())))
        .map_err(create_error)
}

/// The directory a report file goes in (`.` for a bare file name).
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Flushes a finished report; a temporary file is synced to disk and then renamed into
/// place by [`commit`].
fn complete(path: &Path, out: Pending) -> Result<Option<(PathBuf, NamedTempFile)>, AuditError> {
    let failed = |source| AuditError::WriteReport {
        path: path.to_path_buf(),
        source,
    };
    match out
        .into_inner()
        .map_err(|error| failed(error.into_error()))?
    {
        Sink::Temporary(file, replaced) => {
            file.as_file().sync_all().map_err(failed)?;
            Ok(Some((replaced, file)))
        }
        Sink::Direct(_) => Ok(None),
    }
}

/// Renames every completed report over its target.
fn commit(done: Vec<Option<(PathBuf, NamedTempFile)>>) -> Result<(), AuditError> {
    for (path, file) in done.into_iter().flatten() {
        file.persist(&path)
            .map_err(|error| AuditError::WriteReport {
                path: path.clone(),
                source: error.error,
            })?;
    }
    Ok(())
}

/// The report files asked for. Dropped without [`Reports::finish`] (the audit failed), the
/// temporary files are removed and no report appears.
struct Reports {
    jsonl: Option<(PathBuf, Pending)>,
    csv: Option<(PathBuf, CsvReport<Pending>)>,
    html: Option<(PathBuf, HtmlReport<Pending>)>,
}

impl Reports {
    /// Creates every report's temporary file before the audit starts, so a bad path fails
    /// fast.
    fn create(args: &AuditArgs) -> Result<Self, AuditError> {
        let write_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AuditError::WriteReport { path, source }
        };
        let jsonl = match &args.jsonl {
            Some(path) => Some((path.clone(), pending(path)?)),
            None => None,
        };
        let csv = match &args.csv {
            Some(path) => {
                let report = CsvReport::new(pending(path)?)
                    .map_err(|error| write_error(path)(csv_io(error)))?;
                Some((path.clone(), report))
            }
            None => None,
        };
        let html = match &args.html {
            Some(path) => {
                // The rows wait in an unnamed spool file until the summary, which comes first
                // in the document, is known: beside the file the report replaces, or in the
                // temporary directory when the target is not a regular file.
                let create_error = |source| AuditError::CreateReport {
                    path: path.clone(),
                    source,
                };
                let replaced = replaced_file(path).map_err(create_error)?;
                let spool_directory = match &replaced {
                    Some(file) => directory_of(file).to_path_buf(),
                    None => std::env::temp_dir(),
                };
                let spool = tempfile::tempfile_in(spool_directory).map_err(create_error)?;
                Some((
                    path.clone(),
                    HtmlReport::new(pending_replacing(path, replaced)?, spool)
                        .map_err(write_error(path))?,
                ))
            }
            None => None,
        };
        Ok(Reports { jsonl, csv, html })
    }

    fn write(&mut self, row: &Row) -> Result<(), AuditError> {
        if let Some((path, out)) = &mut self.jsonl {
            write_jsonl(out, row).map_err(|source| AuditError::WriteReport {
                path: path.clone(),
                source,
            })?;
        }
        if let Some((path, report)) = &mut self.csv {
            report.write(row).map_err(|error| AuditError::WriteReport {
                path: path.clone(),
                source: csv_io(error),
            })?;
        }
        if let Some((path, report)) = &mut self.html {
            report
                .write(row)
                .map_err(|source| AuditError::WriteReport {
                    path: path.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Completes every report, then renames them all into place.
    fn finish(
        self,
        summary: &Summary,
        elapsed: Duration,
        info: &RunInfo,
    ) -> Result<(), AuditError> {
        let failed = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AuditError::WriteReport { path, source }
        };
        let mut done = Vec::new();
        if let Some((path, out)) = self.jsonl {
            done.push(complete(&path, out)?);
        }
        if let Some((path, report)) = self.csv {
            let out = report.finish().map_err(failed(&path))?;
            done.push(complete(&path, out)?);
        }
        if let Some((path, report)) = self.html {
            let out = report
                .finish(summary, elapsed, info)
                .map_err(failed(&path))?;
            done.push(complete(&path, out)?);
        }
        commit(done)
    }
}

fn csv_io(error: csv::Error) -> std::io::Error {
    match error.into_kind() {
        csv::ErrorKind::Io(error) => error,
        other => std::io::Error::other(format!("{other:?}")),
    }
}
