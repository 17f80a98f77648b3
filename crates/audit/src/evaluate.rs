//! Evaluation order and classification: messages are read in mailbox order by one reader,
//! evaluated by `jobs` workers (each with its own store connection), and handed to the sink
//! in mailbox order again; each verdict is classed into an [`Outcome`] and turned into a
//! report [`Evaluated`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use imipsec_pipeline::smime::{LayerOutcome, inspect};
use imipsec_pipeline::{Evaluation, LayerStatus, Pipeline, Reason, Stores, Verdict};

use crate::mailbox::{self, Item, MailboxError, Payload};
use crate::report::{Evaluated, Finding, Identity, Outcome, Row, Summary, VerdictArrays};

/// Why an audit run stopped (problems with single messages are rows, not errors).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A mailbox path could not be read.
    #[error(transparent)]
    Mailbox(#[from] MailboxError),
    /// A worker thread panicked (a bug; the audit is incomplete).
    #[error("an audit worker stopped unexpectedly; the audit is incomplete")]
    WorkerPanicked,
}

/// Evaluate one message with `pipeline` and class the verdict (a second look inside when a
/// security layer failed, see [`classify`]). An evaluation error is an `error` row.
pub fn evaluate_message(
    pipeline: &Pipeline,
    raw: &[u8],
    context: &Evaluation<'_>,
    store: Option<&dyn Stores>,
) -> Evaluated {
    match pipeline.evaluate(raw, context, store) {
        Ok(verdict) => {
            let outcome = classify(&verdict, || look_inside(pipeline, raw, context.at));
            evaluated(&verdict, outcome)
        }
        Err(error) => Evaluated::single(Outcome::Error, "error", error_chain(&error)),
    }
}

/// Batches in flight per worker on each channel: enough to keep every core busy, small
/// enough that memory stays bounded by a few batches per core.
const QUEUE_PER_WORKER: usize = 2;

/// Messages handed from the reader to a worker at once. One message per hand-off cost a
/// thread wake-up per message and per row (issue 17: two cores gave 1.2x one core); a batch
/// pays it once per `BATCH_MESSAGES`. 64 rather than 16: on a host where audit verifies
/// 16,000 messages a second per core, the hand-offs of 16-message batches (channel wake-ups,
/// contended channel locks) cost the two-core run 4-5% of its time (12,000 messages: 0.431-0.444
/// s with 16, 0.413-0.420 s with 64, 0.407-0.413 s with 128), for 2.7 MB more peak memory
/// than 16 (5.9 MB with 128), flat in the mailbox's size.
const BATCH_MESSAGES: usize = 64;

/// Message bytes after which a batch is handed over even when it holds fewer than
/// [`BATCH_MESSAGES`]: with [`QUEUE_PER_WORKER`] this bounds the memory in flight to about
/// `jobs * QUEUE_PER_WORKER * BATCH_BYTES` plus one message per batch.
const BATCH_BYTES: usize = 1 << 20;

/// Items of the mailbox with their sequence numbers, handed over together.
type Batch = Vec<(u64, Item)>;

/// What a second look inside a message whose security layers failed found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inside {
    /// A `text/calendar` part was seen (in a failed layer or beside one).
    pub calendar: bool,
    /// Some content could not be seen: an encrypted layer that was not decrypted.
    pub encrypted_unread: bool,
    /// Some content could not be seen: an opaque signature whose content was not readable.
    pub opaque_unread: bool,
}

/// The message's MIME tree walked again (the pipeline's verdict does not list the parts of a
/// layer that failed). `None` when the message cannot be walked at all.
pub fn look_inside(pipeline: &Pipeline, raw: &[u8], at: time::OffsetDateTime) -> Option<Inside> {
    let options = pipeline.settings().inspect_options(at);
    let inspection = inspect(raw, &options).ok()?;
    // The one definition of calendar content the pipeline and the gate use
    // (`imipsec_smime::calendar`, computed per leaf by the walk): calendar media types,
    // `.ics` names, bodies beginning with `BEGIN:VCALENDAR`; not only `text/calendar`.
    let calendar = inspection
        .leaves()
        .iter()
        .any(|leaf| leaf.calendar().is_some());
    let encrypted_unread = inspection
        .layers()
        .iter()
        .any(|layer| matches!(layer.outcome(), LayerOutcome::NotDecrypted { .. }));
    Some(Inside {
        calendar,
        encrypted_unread,
        opaque_unread: inspection.opaque_content_unread(),
    })
}

/// The audit class of a verdict: the one place that decides what counts as calendar mail in
/// the reports, by the shared definition of calendar content (`imipsec_smime::calendar`).
///
/// - accepted: `accept`;
/// - calendar data was parsed, or a calendar part lay outside the signature: `reject`;
/// - every layer opened and no part is calendar content (`no-calendar`): `not-calendar`;
/// - a layer failed (signature or decryption): `look` walks the parts again. A calendar
///   seen anywhere is `reject`; content hidden by an encryption the audit has no key for is
///   `not-decrypted`; an opaque signature whose content could not be read, or a message
///   that cannot be walked, stays `reject` (fail closed: it may be calendar mail); everything
///   seen and no calendar is `not-calendar` (e.g. a note signed by a CA we do not trust).
pub fn classify(verdict: &Verdict, look: impl FnOnce() -> Option<Inside>) -> Outcome {
    if verdict.is_accept() {
        return Outcome::Accept;
    }
    if !verdict.itip().is_empty() || verdict.has_reason(Reason::UnprotectedCalendar) {
        return Outcome::Reject;
    }
    if verdict.has_reason(Reason::NoCalendar) {
        return Outcome::NotCalendar;
    }
    if !verdict.layers().iter().any(|layer| layer.failure.is_some()) {
        return Outcome::Reject;
    }
    match look() {
        Some(inside) if inside.calendar => Outcome::Reject,
        Some(inside) if inside.encrypted_unread => Outcome::NotDecrypted,
        Some(inside) if !inside.opaque_unread => Outcome::NotCalendar,
        _ => Outcome::Reject,
    }
}

/// Converts the pipeline's verdict, classed as `outcome`, into a report row's findings.
pub fn evaluated(verdict: &Verdict, outcome: Outcome) -> Evaluated {
    let findings = |items: &mut dyn Iterator<Item = (&str, &str)>| -> Vec<Finding> {
        items
            .map(|(code, detail)| Finding {
                code: code.to_string(),
                detail: detail.to_string(),
            })
            .collect()
    };
    let verdict_json = match (
        serde_json::value::to_raw_value(verdict.layers()),
        serde_json::value::to_raw_value(verdict.itip()),
    ) {
        (Ok(layers), Ok(itip)) => Some(VerdictArrays { layers, itip }),
        _ => None,
    };
    // Content the audit could not decrypt may well be signed: `unsigned` (and `no-calendar`)
    // would claim what nobody saw.
    let claims_unseen = |reason: Reason| {
        outcome == Outcome::NotDecrypted && matches!(reason, Reason::Unsigned | Reason::NoCalendar)
    };
    // Only signatures that verified credit their signer; the others only claim one.
    let signers_of = |status: LayerStatus| {
        let mut emails: Vec<String> = Vec::new();
        for layer in verdict
            .layers()
            .iter()
            .filter(|layer| layer.status == status)
        {
            for email in layer.signers.iter().flat_map(|signer| signer.emails.iter()) {
                if !emails.contains(email) {
                    emails.push(email.clone());
                }
            }
        }
        emails
    };
    let signers = signers_of(LayerStatus::Verified);
    let claimed_signers = signers_of(LayerStatus::SignatureFailed);
    Evaluated {
        outcome,
        reasons: findings(
            &mut verdict
                .reasons()
                .iter()
                .filter(|finding| !claims_unseen(finding.code))
                .map(|finding| (finding.code.code(), finding.detail.as_str())),
        ),
        warnings: findings(
            &mut verdict
                .warnings()
                .iter()
                .map(|finding| (finding.code.code(), finding.detail.as_str())),
        ),
        signers,
        claimed_signers,
        methods: verdict
            .itip()
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

/// The message identity from its headers (only the header block is parsed, and in it only
/// `Date`, `From` and `Message-ID`: every other field is skipped unparsed, as a report row
/// reads nothing else; these three are parsed exactly as `MessageParser::new` would).
pub fn identity(raw: &[u8]) -> Identity {
    use mail_parser::HeaderName;
    let parser = mail_parser::MessageParser::new()
        .header_date(HeaderName::Date)
        .header_address(HeaderName::From)
        .header_id(HeaderName::MessageId)
        .default_header_ignore();
    let Some(message) = parser.parse_headers(raw) else {
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
pub fn audit<M, W, E>(
    paths: &[PathBuf],
    limits: mailbox::Limits,
    jobs: usize,
    make_worker: M,
    sink: &mut dyn FnMut(&Row) -> Result<(), E>,
) -> Result<Summary, E>
where
    M: Fn() -> Result<W, E> + Sync,
    W: FnMut(&[u8]) -> Evaluated,
    E: From<Error> + Send,
{
    let jobs = jobs.max(1);
    if jobs == 1 {
        // One worker (one core allowed, or --record): read, evaluate and report on this
        // thread. A reader and a worker thread on one core only add hand-offs (issue 17).
        return audit_inline(paths, limits, &make_worker, sink);
    }
    let (item_sender, item_receiver) = sync_channel::<Batch>(jobs * QUEUE_PER_WORKER);
    let (row_sender, row_receiver) = sync_channel::<Result<Vec<Row>, E>>(jobs * QUEUE_PER_WORKER);
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
        let read_result = reader.join().map_err(|_| E::from(Error::WorkerPanicked))?;
        for worker in workers {
            worker.join().map_err(|_| E::from(Error::WorkerPanicked))?;
        }
        let summary = collected?;
        match read_result {
            Ok(()) => Ok(summary),
            Err(error) => Err(E::from(Error::Mailbox(error))),
        }
    })
}

/// [`audit`] with one worker, on the calling thread: the same rows in the same order.
fn audit_inline<M, W, E>(
    paths: &[PathBuf],
    limits: mailbox::Limits,
    make_worker: &M,
    sink: &mut dyn FnMut(&Row) -> Result<(), E>,
) -> Result<Summary, E>
where
    M: Fn() -> Result<W, E>,
    W: FnMut(&[u8]) -> Evaluated,
    E: From<Error>,
{
    let mut evaluate = make_worker()?;
    let mut summary = Summary::default();
    let mut sequence = 0u64;
    let mut failed = None;
    let result = mailbox::read_all(paths, limits, &mut |item| {
        let row = evaluate_item(sequence, item, &mut evaluate);
        sequence += 1;
        summary.add(&row);
        match sink(&row) {
            Ok(()) => true,
            Err(error) => {
                failed = Some(error);
                false
            }
        }
    });
    if let Some(error) = failed {
        return Err(error);
    }
    match result {
        Ok(()) => Ok(summary),
        Err(error) => Err(E::from(Error::Mailbox(error))),
    }
}

fn read(
    paths: &[PathBuf],
    limits: mailbox::Limits,
    items: &SyncSender<Batch>,
) -> Result<(), MailboxError> {
    let mut sequence = 0u64;
    let mut batch = Batch::with_capacity(BATCH_MESSAGES);
    let mut batch_bytes = 0usize;
    let result = mailbox::read_all(paths, limits, &mut |item| {
        if let Payload::Message(raw) = &item.payload {
            batch_bytes = batch_bytes.saturating_add(raw.len());
        }
        batch.push((sequence, item));
        sequence += 1;
        if batch.len() < BATCH_MESSAGES && batch_bytes < BATCH_BYTES {
            return true;
        }
        batch_bytes = 0;
        items
            .send(std::mem::replace(
                &mut batch,
                Batch::with_capacity(BATCH_MESSAGES),
            ))
            .is_ok()
    });
    if result.is_ok() && !batch.is_empty() && items.send(batch).is_err() {
        // The consumer went away: it reports its own error.
        return Ok(());
    }
    match result {
        // The consumer went away: it reports its own error.
        Err(MailboxError::Stopped) => Ok(()),
        other => other,
    }
}

fn work<M, W, E>(
    items: &Mutex<Receiver<Batch>>,
    rows: &SyncSender<Result<Vec<Row>, E>>,
    make_worker: &M,
) where
    M: Fn() -> Result<W, E>,
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
        let Ok(batch) = next else {
            return;
        };
        let evaluated = batch
            .into_iter()
            .map(|(sequence, item)| evaluate_item(sequence, item, &mut evaluate))
            .collect();
        if rows.send(Ok(evaluated)).is_err() {
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
fn collect<E>(
    rows: &Receiver<Result<Vec<Row>, E>>,
    sink: &mut dyn FnMut(&Row) -> Result<(), E>,
) -> Result<Summary, E> {
    let mut summary = Summary::default();
    // Batches are consecutive runs of sequence numbers: keyed by their first one.
    let mut waiting: BTreeMap<u64, Vec<Row>> = BTreeMap::new();
    let mut next = 0u64;
    for batch in rows {
        let batch = batch?;
        let Some(first) = batch.first().map(|row| row.sequence) else {
            continue;
        };
        waiting.insert(first, batch);
        while let Some(batch) = waiting.remove(&next) {
            for row in &batch {
                summary.add(row);
                sink(row)?;
                next = row.sequence + 1;
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use imipsec_pipeline::{LayerKind as VerdictLayer, LayerReport};

    fn failed_layer(kind: VerdictLayer, status: LayerStatus, failure: Reason) -> LayerReport {
        LayerReport {
            kind,
            path: String::new(),
            status,
            failure: Some(failure),
            authenticated: None,
            signers: Vec::new(),
        }
    }

    fn rejected(reasons: &[Reason], layers: Vec<LayerReport>) -> Verdict {
        let mut findings = reasons
            .iter()
            .map(|reason| imipsec_pipeline::Finding::new(*reason, "d"));
        let first = findings.next().expect("a reject has a reason");
        Verdict::rejected(first, findings.collect(), layers, Vec::new())
    }

    const NOTHING_HIDDEN: Inside = Inside {
        calendar: false,
        encrypted_unread: false,
        opaque_unread: false,
    };

    /// Fail closed: a failed signature whose content cannot be seen, or a message that
    /// cannot be walked again, may be calendar mail: it stays `reject`, never `not-calendar`.
    #[test]
    fn unreadable_content_behind_a_failed_signature_stays_reject() {
        let verdict = rejected(
            &[Reason::BadSignature],
            vec![failed_layer(
                VerdictLayer::Signed,
                LayerStatus::SignatureFailed,
                Reason::BadSignature,
            )],
        );
        let opaque = Inside {
            opaque_unread: true,
            ..NOTHING_HIDDEN
        };
        assert_eq!(classify(&verdict, || Some(opaque)), Outcome::Reject);
        assert_eq!(classify(&verdict, || None), Outcome::Reject);
        let calendar = Inside {
            calendar: true,
            ..NOTHING_HIDDEN
        };
        assert_eq!(classify(&verdict, || Some(calendar)), Outcome::Reject);
        // Control: everything seen and no calendar is not-calendar.
        assert_eq!(
            classify(&verdict, || Some(NOTHING_HIDDEN)),
            Outcome::NotCalendar
        );
    }

    /// A calendar seen beside an encrypted part the audit cannot open is calendar mail
    /// (`reject`), not `not-decrypted`; without one it is `not-decrypted`.
    #[test]
    fn a_visible_calendar_outweighs_an_undecrypted_part() {
        let verdict = rejected(
            &[Reason::DecryptionFailed],
            vec![failed_layer(
                VerdictLayer::Encrypted,
                LayerStatus::NotDecrypted,
                Reason::DecryptionFailed,
            )],
        );
        let hidden = Inside {
            encrypted_unread: true,
            ..NOTHING_HIDDEN
        };
        assert_eq!(classify(&verdict, || Some(hidden)), Outcome::NotDecrypted);
        let both = Inside {
            calendar: true,
            ..hidden
        };
        assert_eq!(classify(&verdict, || Some(both)), Outcome::Reject);
    }

    /// Rejects without a failed layer (malformed MIME, a limit) are not looked into again
    /// and stay `reject`; `no-calendar` is `not-calendar` without a second look.
    #[test]
    fn classes_from_the_verdict_alone() {
        let never = || -> Option<Inside> { panic!("looked inside") };
        assert_eq!(
            classify(&rejected(&[Reason::MalformedMime], Vec::new()), never),
            Outcome::Reject
        );
        assert_eq!(
            classify(
                &rejected(&[Reason::Unsigned, Reason::NoCalendar], Vec::new()),
                never
            ),
            Outcome::NotCalendar
        );
        assert_eq!(
            classify(&rejected(&[Reason::UnprotectedCalendar], Vec::new()), never),
            Outcome::Reject
        );
    }

    /// Follow-up of issue #11: the second look counted only `text/calendar` as calendar
    /// content, so an `application/ics` attachment (read by Stalwart and Cyrus) under an
    /// untrusted opaque signature was "no calendar here". It now uses the shared definition.
    /// Control: the same signature over the note alone holds no calendar.
    #[test]
    fn look_inside_sees_an_application_ics_attachment_as_calendar() {
        use imipsec_pipeline::Settings;
        use imipsec_pipeline::smime::TrustStore;
        let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../certs");
        let pipeline = Pipeline::new(Settings::new(
            TrustStore::from_pem_files(&[certs.join("root.cert.pem")], &[] as &[PathBuf]).unwrap(),
        ));
        let sign = |entity: &[u8]| -> Vec<u8> {
            let output = std::process::Command::new("openssl")
                .args(["cms", "-sign", "-nodetach", "-binary", "-md", "sha256"])
                .arg("-signer")
                .arg(certs.join("special/untrusted.cert.pem"))
                .arg("-inkey")
                .arg(certs.join("special/untrusted.key.pem"))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    child.stdin.take().unwrap().write_all(entity)?;
                    child.wait_with_output()
                })
                .unwrap();
            assert!(output.status.success());
            let body = String::from_utf8(output.stdout)
                .unwrap()
                .replace("\r\n", "\n")
                .replace('\n', "\r\n");
            format!("From: a@x\r\nTo: b@x\r\nSubject: s\r\n{body}").into_bytes()
        };
        let at = time::macros::datetime!(2026-06-01 12:00 UTC);
        let with_ics = sign(
            b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/ics\r\n\r\nBEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:CANCEL\r\nEND:VCALENDAR\r\n--b--\r\n",
        );
        let inside = look_inside(&pipeline, &with_ics, at).unwrap();
        assert!(inside.calendar && !inside.opaque_unread);
        let note = sign(b"Content-Type: text/plain\r\n\r\nhi\r\n");
        let inside = look_inside(&pipeline, &note, at).unwrap();
        assert!(!inside.calendar && !inside.opaque_unread);
    }

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
        let summary = audit::<_, _, Error>(
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
            || -> Result<fn(&[u8]) -> Evaluated, Error> { Err(Error::WorkerPanicked) },
            &mut |_| Ok(()),
        );
        assert!(result.is_err());
    }

    /// One report row as compared: sequence, Message-ID, outcome.
    type Seen = (u64, Option<String>, Outcome);

    /// Runs `audit` with `jobs` workers over `path`; returns the rows, the message count and
    /// the threads that evaluated.
    fn rows_with(path: &Path, jobs: usize) -> (Vec<Seen>, u64, Vec<std::thread::ThreadId>) {
        let threads = Mutex::new(Vec::new());
        let mut seen = Vec::new();
        let summary = audit::<_, _, Error>(
            &[path.to_path_buf()],
            mailbox::Limits {
                message_bytes: 1000,
            },
            jobs,
            || {
                Ok(|raw: &[u8]| {
                    if let Ok(mut threads) = threads.lock() {
                        threads.push(std::thread::current().id());
                    }
                    let outcome = if raw.ends_with(b"0\n") {
                        Outcome::Accept
                    } else {
                        Outcome::Reject
                    };
                    Evaluated::single(outcome, "test-code", String::new())
                })
            },
            &mut |row| {
                seen.push((
                    row.sequence,
                    row.identity.message_id.clone(),
                    row.evaluated.outcome,
                ));
                Ok(())
            },
        )
        .unwrap();
        (seen, summary.messages, threads.into_inner().unwrap())
    }

    // Issue 17: with one worker the audit runs on the calling thread (no reader/worker
    // hand-offs on one core); it must give exactly the rows the threaded path gives.
    #[test]
    fn one_worker_runs_on_the_calling_thread_with_the_same_rows_as_several() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_mbox(dir.path(), 120);
        let (inline, inline_count, inline_threads) = rows_with(&path, 1);
        let (threaded, threaded_count, threaded_threads) = rows_with(&path, 3);
        assert_eq!(inline_count, 120);
        assert_eq!(inline, threaded);
        assert_eq!(threaded_count, 120);
        let caller = std::thread::current().id();
        assert!(inline_threads.iter().all(|id| *id == caller));
        assert!(threaded_threads.iter().all(|id| *id != caller));
        let accepted = inline
            .iter()
            .filter(|(_, _, outcome)| *outcome == Outcome::Accept)
            .count();
        assert_eq!(accepted, 12);
    }

    #[test]
    fn one_worker_setup_failure_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_mbox(dir.path(), 10);
        let result = audit(
            &[path],
            mailbox::Limits { message_bytes: 100 },
            1,
            || -> Result<fn(&[u8]) -> Evaluated, Error> { Err(Error::WorkerPanicked) },
            &mut |_| Ok(()),
        );
        assert!(result.is_err());
    }

    #[test]
    fn one_worker_stops_at_the_first_sink_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_mbox(dir.path(), 50);
        let evaluated = std::sync::atomic::AtomicUsize::new(0);
        let mut delivered = 0;
        let result = audit(
            &[path],
            mailbox::Limits {
                message_bytes: 1000,
            },
            1,
            || {
                Ok(|_: &[u8]| {
                    evaluated.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Evaluated::single(Outcome::Reject, "test-code", String::new())
                })
            },
            &mut |_| {
                delivered += 1;
                if delivered == 5 {
                    Err(Error::WorkerPanicked)
                } else {
                    Ok(())
                }
            },
        );
        assert!(matches!(result, Err(Error::WorkerPanicked)));
        assert_eq!(delivered, 5);
        assert_eq!(evaluated.into_inner(), 5);
    }
}
