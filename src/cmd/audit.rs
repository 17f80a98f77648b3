//! `imipsec audit`: evaluate every message of mailboxes and report.
//!
//! Streaming: one reader thread splits the mailboxes into messages and hands them over a
//! bounded channel to one worker per core; each worker evaluates a message and drops it.
//! The main thread puts results back in mailbox order (a reorder buffer that holds only
//! what finished ahead of a slower message), writes the reports row by row and keeps
//! counts, so memory does not grow with the mailbox. Evaluation is read-only unless
//! `--record`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imipsec_pipeline::policy::SqliteStore;
use imipsec_pipeline::{Evaluation, Reason, Stores, Verdict};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::AuditArgs;
use crate::cmd::Exit;
use crate::config::{Config, ConfigError};
use crate::mailbox::{self, Item, MailboxError, Payload};
use crate::report::csv::CsvReport;
use crate::report::html::HtmlReport;
use crate::report::{Evaluated, Finding, Identity, Outcome, Row, Summary, write_jsonl};
use crate::setup::{SetupError, open_store, pipeline_with};

/// Messages in flight per worker on each channel: enough to keep every core busy, small
/// enough that memory stays bounded by a few messages per core.
const QUEUE_PER_WORKER: usize = 4;

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

/// Runs `imipsec audit`.
pub fn run(args: &AuditArgs) -> Result<Exit, AuditError> {
    let config = Config::load_optional(args.trust.config.as_deref())?;
    // Recording creates the store when missing; a read-only audit needs an existing one.
    let setup = pipeline_with(&args.trust, &config, args.record)?;
    let store_path = args.trust.store.clone().or(config.store.path.clone());
    let limits = mailbox::Limits {
        message_bytes: setup.pipeline.settings().limits.message_bytes,
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
        let store: Option<SqliteStore> = match &store_path {
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
            match pipeline.evaluate(raw, &context, store) {
                Ok(verdict) => evaluated(&verdict),
                Err(error) => Evaluated::single(Outcome::Error, "error", error_chain(&error)),
            }
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
    reports.finish(&summary, elapsed)?;
    let mut out = std::io::stdout().lock();
    summary
        .print(&mut out, elapsed)
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
    let bar = ProgressBar::with_draw_target(
        Some(mailbox::total_bytes(&args.paths)),
        ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Converts the pipeline's verdict into a report row's findings.
fn evaluated(verdict: &Verdict) -> Evaluated {
    let findings = |items: &mut dyn Iterator<Item = (&str, &str)>| -> Vec<Finding> {
        items
            .map(|(code, detail)| Finding {
                code: code.to_string(),
                detail: detail.to_string(),
            })
            .collect()
    };
    let verdict_json = match serde_json::to_value(verdict) {
        Ok(serde_json::Value::Object(object)) => Some(object),
        _ => None,
    };
    Evaluated {
        outcome: if verdict.is_accept() {
            Outcome::Accept
        } else {
            Outcome::Reject
        },
        reasons: findings(
            &mut verdict
                .reasons
                .iter()
                .map(|finding| (finding.code.code(), finding.detail.as_str())),
        ),
        warnings: findings(
            &mut verdict
                .warnings
                .iter()
                .map(|finding| (finding.code.code(), finding.detail.as_str())),
        ),
        signers: verdict
            .layers
            .iter()
            .flat_map(|layer| layer.signers.iter())
            .flat_map(|signer| signer.emails.iter().cloned())
            .collect(),
        methods: verdict
            .itip
            .iter()
            .map(|itip| itip.method.clone())
            .collect(),
        verdict_json,
        event_state: Some(verdict.event_state()),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The message identity from its headers (only the header block is parsed).
fn identity(raw: &[u8]) -> Identity {
    let Some(message) = mail_parser::MessageParser::new().parse_headers(raw) else {
        return Identity::default();
    };
    let date = message
        .date()
        .and_then(|date| time::OffsetDateTime::from_unix_timestamp(date.to_timestamp()).ok());
    let from = message
        .from()
        .and_then(|from| from.first())
        .and_then(|address| address.address())
        .map(str::to_string);
    Identity {
        message_id: message.message_id().map(str::to_string),
        date,
        from,
    }
}

/// Evaluates every message under `paths` with `jobs` workers, each built by `make_worker`
/// (in its own thread), handing each row to `sink` in mailbox order. Returns the counts.
pub fn audit<M, W>(
    paths: &[PathBuf],
    limits: mailbox::Limits,
    jobs: usize,
    make_worker: M,
    sink: &mut dyn FnMut(&Row) -> Result<(), AuditError>,
) -> Result<Summary, AuditError>
where
    M: Fn() -> Result<W, AuditError> + Sync,
    W: FnMut(&[u8]) -> Evaluated,
{
    let jobs = jobs.max(1);
    let (item_sender, item_receiver) = sync_channel::<(u64, Item)>(jobs * QUEUE_PER_WORKER);
    let (row_sender, row_receiver) =
        sync_channel::<Result<Row, AuditError>>(jobs * QUEUE_PER_WORKER);
    let item_receiver = Arc::new(Mutex::new(item_receiver));
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || read(paths, limits, &item_sender));
        let mut workers = Vec::new();
        for _ in 0..jobs {
            let items = Arc::clone(&item_receiver);
            let rows = row_sender.clone();
            let make_worker = &make_worker;
            workers.push(scope.spawn(move || work(&items, &rows, make_worker)));
        }
        drop(row_sender);
        let collected = collect(&row_receiver, sink);
        // Stop the reader and workers early if the sink failed: dropping the receivers
        // makes their sends fail.
        drop(row_receiver);
        drop(item_receiver);
        let read_result = reader.join().map_err(|_| AuditError::WorkerPanicked)?;
        for worker in workers {
            worker.join().map_err(|_| AuditError::WorkerPanicked)?;
        }
        let summary = collected?;
        match read_result {
            Ok(()) => Ok(summary),
            Err(error) => Err(error.into()),
        }
    })
}

fn read(
    paths: &[PathBuf],
    limits: mailbox::Limits,
    items: &SyncSender<(u64, Item)>,
) -> Result<(), MailboxError> {
    let mut sequence = 0u64;
    let result = mailbox::read_all(paths, limits, &mut |item| {
        let sent = items.send((sequence, item)).is_ok();
        sequence += 1;
        sent
    });
    match result {
        // The consumer went away: it reports its own error.
        Err(MailboxError::Stopped) => Ok(()),
        other => other,
    }
}

fn work<M, W>(
    items: &Mutex<Receiver<(u64, Item)>>,
    rows: &SyncSender<Result<Row, AuditError>>,
    make_worker: &M,
) where
    M: Fn() -> Result<W, AuditError>,
    W: FnMut(&[u8]) -> Evaluated,
{
    let mut evaluate = match make_worker() {
        Ok(evaluate) => evaluate,
        Err(error) => {
            let _ = rows.send(Err(error));
            return;
        }
    };
    loop {
        // Hold the lock only to take the next item, never while evaluating.
        let next = match items.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok((sequence, item)) = next else {
            return;
        };
        let row = evaluate_item(sequence, item, &mut evaluate);
        if rows.send(Ok(row)).is_err() {
            return;
        }
    }
}

fn evaluate_item(sequence: u64, item: Item, evaluate: &mut dyn FnMut(&[u8]) -> Evaluated) -> Row {
    let source = item.source.to_string();
    let (identity, evaluated) = match item.payload {
        Payload::Message(raw) => (identity(&raw), evaluate(&raw)),
        Payload::TooLarge { size, limit } => (
            Identity::default(),
            Evaluated::single(
                Outcome::Reject,
                Reason::LimitExceeded.code(),
                format!("message of {size} bytes is larger than the limit of {limit} bytes"),
            ),
        ),
        Payload::Unreadable(error) => (
            Identity::default(),
            Evaluated::single(
                Outcome::Error,
                "unreadable",
                format!("cannot read the message: {error}"),
            ),
        ),
    };
    Row {
        sequence,
        source,
        identity,
        evaluated,
        input_bytes: item.input_bytes,
    }
}

/// Receives rows, restores mailbox order and feeds `sink`.
fn collect(
    rows: &Receiver<Result<Row, AuditError>>,
    sink: &mut dyn FnMut(&Row) -> Result<(), AuditError>,
) -> Result<Summary, AuditError> {
    let mut summary = Summary::default();
    let mut waiting: BTreeMap<u64, Row> = BTreeMap::new();
    let mut next = 0u64;
    for row in rows {
        let row = row?;
        waiting.insert(row.sequence, row);
        while let Some(row) = waiting.remove(&next) {
            summary.add(&row);
            sink(&row)?;
            next += 1;
        }
    }
    Ok(summary)
}

/// The report files asked for.
struct Reports {
    jsonl: Option<(PathBuf, BufWriter<File>)>,
    csv: Option<(PathBuf, CsvReport<BufWriter<File>>)>,
    html: Option<(PathBuf, HtmlReport<BufWriter<File>>)>,
}

impl Reports {
    /// Creates every report file before the audit starts, so a bad path fails fast.
    fn create(args: &AuditArgs) -> Result<Self, AuditError> {
        let open = |path: &Path| {
            File::create(path)
                .map(BufWriter::new)
                .map_err(|source| AuditError::CreateReport {
                    path: path.to_path_buf(),
                    source,
                })
        };
        let write_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AuditError::WriteReport { path, source }
        };
        let jsonl = match &args.jsonl {
            Some(path) => Some((path.clone(), open(path)?)),
            None => None,
        };
        let csv = match &args.csv {
            Some(path) => {
                let report = CsvReport::new(open(path)?)
                    .map_err(|error| write_error(path)(csv_io(error)))?;
                Some((path.clone(), report))
            }
            None => None,
        };
        let html = match &args.html {
            Some(path) => Some((
                path.clone(),
                HtmlReport::new(open(path)?).map_err(write_error(path))?,
            )),
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

    fn finish(self, summary: &Summary, elapsed: Duration) -> Result<(), AuditError> {
        let failed = |path: PathBuf| move |source| AuditError::WriteReport { path, source };
        if let Some((path, mut out)) = self.jsonl {
            out.flush().map_err(failed(path))?;
        }
        if let Some((path, report)) = self.csv {
            report
                .finish()
                .and_then(|mut out| out.flush())
                .map_err(failed(path))?;
        }
        if let Some((path, report)) = self.html {
            report
                .finish(summary, elapsed)
                .and_then(|mut out| out.flush())
                .map_err(failed(path))?;
        }
        Ok(())
    }
}

fn csv_io(error: csv::Error) -> std::io::Error {
    match error.into_kind() {
        csv::ErrorKind::Io(error) => error,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_mbox(dir: &Path, count: usize) -> PathBuf {
        let path = dir.join("box.mbox");
        let mut text = String::new();
        for index in 0..count {
            text.push_str(&format!(
                "From a@x Mon Jan  1 00:00:00 2026\nMessage-ID: <{index}@x>\nDate: Fri, 01 May 2026 10:00:00 +0200\nFrom: a@x\n\nbody {index}\n\n"
            ));
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn rows_come_back_in_mailbox_order_with_every_core() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_mbox(dir.path(), 200);
        let mut seen = Vec::new();
        let summary = audit(
            &[path],
            mailbox::Limits {
                message_bytes: 1000,
            },
            4,
            || {
                Ok(|raw: &[u8]| {
                    // Uneven work so that workers finish out of order.
                    if raw.len().is_multiple_of(3) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    let accept = raw.ends_with(b"0\n");
                    Evaluated::single(
                        if accept {
                            Outcome::Accept
                        } else {
                            Outcome::Reject
                        },
                        "test-code",
                        String::new(),
                    )
                })
            },
            &mut |row| {
                seen.push((row.sequence, row.identity.message_id.clone()));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(summary.messages, 200);
        assert_eq!(summary.outcomes[&Outcome::Accept], 20);
        for (index, (sequence, message_id)) in seen.iter().enumerate() {
            assert_eq!(*sequence, index as u64);
            assert_eq!(message_id.as_deref(), Some(format!("{index}@x").as_str()));
        }
        let date = time::macros::date!(2026 - 05 - 01);
        assert_eq!(summary.days[&date].values().sum::<u64>(), 200);
    }

    #[test]
    fn worker_setup_failure_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_mbox(dir.path(), 50);
        let result = audit(
            &[path],
            mailbox::Limits { message_bytes: 100 },
            2,
            || -> Result<fn(&[u8]) -> Evaluated, AuditError> { Err(AuditError::WorkerPanicked) },
            &mut |_| Ok(()),
        );
        assert!(result.is_err());
    }
}
