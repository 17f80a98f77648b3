//! LMTP proxy mode (RFC 2033) in front of Dovecot or Cyrus LMTP.
//!
//! Envelope commands are relayed one by one, so the backend decides which recipients
//! exist. `DATA` is collected here (size-capped), judged per recipient, and only then
//! forwarded. Every recipient gets its own reply, and no recipient gets a 2xx that the
//! backend did not give first.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;

use crate::authres;
use crate::config::{LimitExceeded, LmtpConfig, OversizeAction, RejectAction, UndecryptableAction};
use crate::decide::{Envelope, GateVerdict, Outcome};
use crate::evaluate::RecipientVerdict;
use crate::io::{IdleTimeout, Line, read_line};
use crate::metrics::Action;
use crate::mime;
use crate::server::{Shared, audit};

/// Most lines in one backend reply.
const MAX_REPLY_LINES: usize = 100;
/// Extensions relayed from the backend's `LHLO` reply; anything else (CHUNKING,
/// BINARYMIME, STARTTLS, XCLIENT, ...) is not supported by the proxy and is dropped.
const RELAYED_EXTENSIONS: [&str; 5] = [
    "PIPELINING",
    "8BITMIME",
    "ENHANCEDSTATUSCODES",
    "SMTPUTF8",
    "DSN",
];

/// One (possibly multi-line) reply.
#[derive(Debug, Clone)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn new(code: u16, text: &str) -> Self {
        Self {
            code,
            lines: vec![text.to_owned()],
        }
    }
    fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }
    fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let last = self.lines.len().saturating_sub(1);
        for (index, line) in self.lines.iter().enumerate() {
            let separator = if index == last { ' ' } else { '-' };
            out.extend_from_slice(format!("{}{separator}{line}\r\n", self.code).as_bytes());
        }
        if self.lines.is_empty() {
            out.extend_from_slice(format!("{}\r\n", self.code).as_bytes());
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
enum BackendError {
    #[error("backend i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("backend timed out")]
    Timeout,
    #[error("backend closed the connection")]
    Closed,
    #[error("backend sent a malformed reply")]
    Malformed,
}

/// The connection to the real LMTP server.
struct Backend {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    timeout: Duration,
    line_cap: usize,
}

impl Backend {
    async fn connect(
        config: &LmtpConfig,
        timeout: Duration,
        line_cap: usize,
    ) -> Result<Self, BackendError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(config.backend))
            .await
            .map_err(|_| BackendError::Timeout)??;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let mut backend = Self {
            reader: BufReader::new(read),
            writer: write,
            timeout,
            line_cap,
        };
        let greeting = backend.reply().await?;
        if greeting.code != 220 {
            return Err(BackendError::Malformed);
        }
        Ok(backend)
    }

    async fn reply(&mut self) -> Result<Reply, BackendError> {
        tokio::time::timeout(self.timeout, self.reply_inner())
            .await
            .map_err(|_| BackendError::Timeout)?
    }

    async fn reply_inner(&mut self) -> Result<Reply, BackendError> {
        let mut lines = Vec::new();
        let mut buffer = Vec::new();
        loop {
            match read_line(&mut self.reader, &mut buffer, self.line_cap).await? {
                Line::Eof => return Err(BackendError::Closed),
                Line::TooLong => return Err(BackendError::Malformed),
                Line::Complete => {}
            }
            let text = String::from_utf8_lossy(&buffer);
            let text = text.trim_end_matches(['\r', '\n']);
            let code = text
                .get(..3)
                .and_then(|digits| digits.parse::<u16>().ok())
                .filter(|code| (200..600).contains(code))
                .ok_or(BackendError::Malformed)?;
            let more = text.get(3..4) == Some("-");
            lines.push(text.get(4..).unwrap_or_default().to_owned());
            if !more {
                return Ok(Reply { code, lines });
            }
            if lines.len() >= MAX_REPLY_LINES {
                return Err(BackendError::Malformed);
            }
        }
    }

    async fn command(&mut self, line: &[u8]) -> Result<Reply, BackendError> {
        self.send(line).await?;
        self.reply().await
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), BackendError> {
        tokio::time::timeout(self.timeout, self.writer.write_all(bytes))
            .await
            .map_err(|_| BackendError::Timeout)?
            .map_err(BackendError::from)
    }

    /// `DATA`, the dot-stuffed message, and one reply per recipient of the transaction.
    async fn data(
        &mut self,
        message: &[u8],
        recipients: usize,
    ) -> Result<Vec<Reply>, BackendError> {
        let go = self.command(b"DATA\r\n").await?;
        if go.code != 354 {
            return Ok(vec![go; recipients]);
        }
        self.send(&dot_stuff(message)).await?;
        let mut replies = Vec::with_capacity(recipients);
        for _ in 0..recipients {
            replies.push(self.reply().await?);
        }
        Ok(replies)
    }
}

/// RFC 5321 section 4.5.2 transparency, plus the terminating `.` line.
fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 8);
    let mut at_line_start = true;
    for &byte in message {
        if at_line_start && byte == b'.' {
            out.push(b'.');
        }
        out.push(byte);
        at_line_start = byte == b'\n';
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// What happens to one recipient's copy.
enum Disposition {
    /// Deliver these bytes; `record` when the engine accepted the message.
    Deliver { message: Arc<Vec<u8>>, record: bool },
    /// Deliver to the quarantine mailbox instead.
    Quarantine { message: Arc<Vec<u8>> },
    /// Answer without touching the backend.
    Answer(Reply),
}

struct Session {
    shared: Arc<Shared>,
    config: LmtpConfig,
    backend: Backend,
    mail_line: Option<Vec<u8>>,
    envelope: Envelope,
    rcpt_lines: Vec<Vec<u8>>,
}

enum Flow {
    Continue,
    Close,
}

/// Serve one LMTP client.
pub(crate) async fn connection(
    client: TcpStream,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(config) = shared.config.lmtp.clone() else {
        return;
    };
    let limits = shared.config.limits.clone();
    let (read, mut write) = client.into_split();
    let backend = match Backend::connect(
        &config,
        limits.backend_timeout(),
        limits.command_line_bytes,
    )
    .await
    {
        Ok(backend) => backend,
        Err(error) => {
            tracing::warn!(%error, backend = %config.backend, "LMTP backend unavailable");
            let _ = write
                .write_all(b"421 4.4.0 imipsec: mailbox server unavailable, try again later\r\n")
                .await;
            return;
        }
    };
    let mut reader = BufReader::new(IdleTimeout::new(read, limits.idle_timeout()));
    let greeting = format!("220 {} LMTP imipsec gate ready\r\n", config.hostname);
    if write.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    let mut session = Session {
        shared: Arc::clone(&shared),
        config,
        backend,
        mail_line: None,
        envelope: Envelope::default(),
        rcpt_lines: Vec::new(),
    };
    let mut line = Vec::new();
    loop {
        let idle = session.mail_line.is_none();
        let read = tokio::time::timeout(
            limits.line_timeout(),
            read_line(&mut reader, &mut line, limits.command_line_bytes),
        );
        let outcome = tokio::select! {
            outcome = read => outcome,
            _ = stop.changed(), if idle => {
                let _ = write.write_all(b"421 4.3.2 imipsec gate shutting down\r\n").await;
                break;
            }
        };
        let reply = match outcome {
            Err(_) => {
                let _ = write
                    .write_all(b"421 4.4.2 imipsec: command timeout\r\n")
                    .await;
                break;
            }
            Ok(Err(_)) | Ok(Ok(Line::Eof)) => break,
            Ok(Ok(Line::TooLong)) => {
                shared.metrics.protocol_error();
                Reply::new(500, "5.5.2 line too long")
            }
            Ok(Ok(Line::Complete)) if !is_crlf_line(&line) => {
                // Like Postfix smtpd_forbid_bare_newline: a command line must end in CRLF
                // and hold no other CR or LF (RFC 5321 section 2.3.8). Nothing is relayed,
                // and the session ends, since the peer's framing is not ours.
                shared.metrics.protocol_error();
                let _ = write
                    .write_all(
                        b"500 5.5.2 imipsec: bare LF or CR in a command; lines must end with CRLF\r\n",
                    )
                    .await;
                break;
            }
            Ok(Ok(Line::Complete)) => match session.handle(&line, &mut reader, &mut write).await {
                Ok((reply, Flow::Continue)) => reply,
                Ok((reply, Flow::Close)) => {
                    let _ = write.write_all(&reply.render()).await;
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "LMTP backend failed mid-session");
                    let _ = write
                        .write_all(b"421 4.4.2 imipsec: mailbox server failed, try again later\r\n")
                        .await;
                    break;
                }
            },
        };
        if write.write_all(&reply.render()).await.is_err() {
            break;
        }
        // Stop at a transaction boundary once asked to.
        if *stop.borrow() && session.mail_line.is_none() {
            let _ = write
                .write_all(b"421 4.3.2 imipsec gate shutting down\r\n")
                .await;
            break;
        }
    }
    let _ = session.backend.send(b"QUIT\r\n").await;
}

/// Whether `line` (one line as read, LF included) ends in CRLF and holds no other CR or LF:
/// the only line ending RFC 5321 section 2.3.8 allows. A bare LF or CR is where SMTP
/// smuggling lives (a `.` line ended by LF alone ends DATA to one reader and not another).
fn is_crlf_line(line: &[u8]) -> bool {
    line.strip_suffix(b"\r\n")
        .is_some_and(|content| !content.iter().any(|&b| b == b'\r' || b == b'\n'))
}

/// What the DATA section turned out to be.
enum Data {
    /// The message, un-stuffed.
    Message(Vec<u8>),
    /// Larger than [`crate::Limits::message_bytes`]: read to its end and dropped.
    Oversize,
    /// A line ended in a bare LF or held a bare CR: read to its end and dropped.
    BareLineEnding,
}

fn verb(line: &[u8]) -> String {
    let end = line
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(line.len());
    String::from_utf8_lossy(line.get(..end).unwrap_or_default()).to_ascii_uppercase()
}

/// The address inside `FROM:<...>` / `TO:<...>`.
fn path_of(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    match (text.find('<'), text.find('>')) {
        (Some(open), Some(close)) if open < close => {
            text.get(open + 1..close).unwrap_or_default().to_owned()
        }
        _ => text
            .split_once(':')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default(),
    }
}

impl Session {
    fn reset(&mut self) {
        self.mail_line = None;
        self.envelope = Envelope::default();
        self.rcpt_lines.clear();
    }

    async fn handle<R>(
        &mut self,
        line: &[u8],
        reader: &mut BufReader<R>,
        write: &mut OwnedWriteHalf,
    ) -> Result<(Reply, Flow), BackendError>
    where
        R: tokio::io::AsyncRead + Unpin,
    {
        let limits = &self.shared.config.limits;
        match verb(line).as_str() {
            "LHLO" => {
                let reply = self.backend.command(line).await?;
                Ok((self.filter_lhlo(reply), Flow::Continue))
            }
            "MAIL" => {
                let reply = self.backend.command(line).await?;
                if reply.is_positive() {
                    self.reset();
                    self.mail_line = Some(line.to_vec());
                    self.envelope.mail_from = path_of(line.get(5..).unwrap_or_default());
                }
                Ok((reply, Flow::Continue))
            }
            "RCPT" => {
                if self.rcpt_lines.len() >= limits.recipients {
                    let exceeded = LimitExceeded::Recipients {
                        limit: limits.recipients,
                    };
                    return Ok((
                        Reply::new(452, &format!("4.5.3 {exceeded}")),
                        Flow::Continue,
                    ));
                }
                let reply = self.backend.command(line).await?;
                if reply.is_positive() {
                    self.rcpt_lines.push(line.to_vec());
                    self.envelope
                        .recipients
                        .push(path_of(line.get(5..).unwrap_or_default()));
                }
                Ok((reply, Flow::Continue))
            }
            "DATA" => {
                if self.mail_line.is_none() || self.rcpt_lines.is_empty() {
                    return Ok((
                        Reply::new(503, "5.5.1 need MAIL and RCPT first"),
                        Flow::Continue,
                    ));
                }
                write
                    .write_all(b"354 go ahead, end with <CRLF>.<CRLF>\r\n")
                    .await?;
                let collected =
                    tokio::time::timeout(limits.data_timeout(), self.collect(reader)).await;
                let reply = match collected {
                    Err(_) => {
                        return Ok((Reply::new(421, "4.4.2 imipsec: data timeout"), Flow::Close));
                    }
                    Ok(Err(_)) => {
                        return Ok((
                            Reply::new(421, "4.4.2 imipsec: connection lost"),
                            Flow::Close,
                        ));
                    }
                    Ok(Ok(Data::Oversize)) => self.oversize(),
                    Ok(Ok(Data::BareLineEnding)) => {
                        // Refuse the transaction, then end the session (as Postfix does):
                        // a peer that frames lines differently from us must not go on.
                        self.shared.metrics.protocol_error();
                        tracing::warn!("LMTP DATA with a bare LF or CR refused");
                        let refusal = Reply::new(
                            550,
                            "5.5.2 imipsec: bare LF or CR in message data; lines must end \
                             with CRLF",
                        );
                        let count = self.rcpt_lines.len();
                        self.reset();
                        let mut replies = vec![refusal; count];
                        let last = replies
                            .pop()
                            .unwrap_or_else(|| Reply::new(451, "4.3.0 no recipients"));
                        for reply in replies {
                            write.write_all(&reply.render()).await?;
                        }
                        return Ok((last, Flow::Close));
                    }
                    Ok(Ok(Data::Message(message))) => self.deliver(message).await?,
                };
                self.reset();
                // All but the last reply are written here; the last goes through the caller.
                let mut replies = reply;
                let last = replies
                    .pop()
                    .unwrap_or_else(|| Reply::new(451, "4.3.0 no recipients"));
                for reply in replies {
                    write.write_all(&reply.render()).await?;
                }
                Ok((last, Flow::Continue))
            }
            "RSET" => {
                self.reset();
                Ok((self.backend.command(line).await?, Flow::Continue))
            }
            "NOOP" | "VRFY" => Ok((self.backend.command(line).await?, Flow::Continue)),
            "QUIT" => Ok((Reply::new(221, "2.0.0 bye"), Flow::Close)),
            "HELO" | "EHLO" => Ok((
                Reply::new(500, "5.5.1 this is LMTP, use LHLO"),
                Flow::Continue,
            )),
            _ => Ok((
                Reply::new(502, "5.5.1 command not implemented"),
                Flow::Continue,
            )),
        }
    }

    fn filter_lhlo(&self, reply: Reply) -> Reply {
        if !reply.is_positive() {
            return reply;
        }
        let mut lines = Vec::new();
        let mut iter = reply.lines.into_iter();
        if let Some(first) = iter.next() {
            lines.push(first);
        }
        for extension in iter {
            let keyword = extension
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            if RELAYED_EXTENSIONS.contains(&keyword.as_str()) {
                lines.push(extension);
            }
        }
        lines.push(format!("SIZE {}", self.shared.config.limits.message_bytes));
        Reply {
            code: reply.code,
            lines,
        }
    }

    /// Read the DATA section to its end: only `.` CRLF ends it (RFC 5321 section 4.1.1.4);
    /// `.` LF is a bare-LF line like any other. Every line must end in CRLF without another
    /// CR or LF; one that does not makes the whole message [`Data::BareLineEnding`]. An
    /// oversized or refused message is read to its end and dropped (memory stays bounded).
    async fn collect<R>(&self, reader: &mut BufReader<R>) -> std::io::Result<Data>
    where
        R: tokio::io::AsyncRead + Unpin,
    {
        let cap = self.shared.config.limits.message_bytes;
        let mut message = Vec::new();
        let mut line = Vec::new();
        let mut oversize = false;
        let mut bare = false;
        loop {
            let budget = if oversize || bare {
                1000
            } else {
                cap.saturating_sub(message.len()) + 3
            };
            match read_line(reader, &mut line, budget.max(3)).await? {
                Line::Eof => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Line::TooLong => oversize = true,
                Line::Complete => {
                    if line == b".\r\n" {
                        return Ok(if bare {
                            Data::BareLineEnding
                        } else if oversize {
                            Data::Oversize
                        } else {
                            Data::Message(message)
                        });
                    }
                    if !is_crlf_line(&line) {
                        bare = true;
                        message = Vec::new();
                    }
                    if oversize || bare {
                        continue;
                    }
                    let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
                    if message.len() + unstuffed.len() > cap {
                        oversize = true;
                        message = Vec::new();
                    } else {
                        message.extend_from_slice(unstuffed);
                    }
                }
            }
        }
    }

    fn oversize(&self) -> Vec<Reply> {
        let exceeded = LimitExceeded::MessageBytes {
            limit: self.shared.config.limits.message_bytes,
        };
        let reply = match self.shared.config.on_oversize {
            OversizeAction::Reject => Reply::new(552, &format!("5.3.4 imipsec: {exceeded}")),
            OversizeAction::Tempfail => Reply::new(452, &format!("4.3.4 imipsec: {exceeded}")),
        };
        audit(
            &self.shared,
            "lmtp",
            "",
            &self.envelope,
            Action::Oversize,
            None,
            None,
        );
        vec![reply; self.rcpt_lines.len()]
    }

    /// `message` with our Authentication-Results field on top, as one copy to hand on.
    fn with_authres(&self, verdict: &GateVerdict, message: &[u8]) -> Arc<Vec<u8>> {
        let mut out = format!(
            "{}: {}\r\n",
            authres::HEADER,
            authres::header_value(self.shared.config.authserv_id(), verdict)
        )
        .into_bytes();
        out.extend_from_slice(message);
        Arc::new(out)
    }

    /// Judge, then deliver each recipient's copy and collect one reply per recipient.
    async fn deliver(&mut self, raw: Vec<u8>) -> Result<Vec<Reply>, BackendError> {
        let shared = Arc::clone(&self.shared);
        let stripped = Arc::new(authres::strip_own(&raw, shared.config.authserv_id()));
        let raw = Arc::new(raw);
        let envelope = Arc::new(self.envelope.clone());
        let mut judgement = shared
            .evaluator
            .judge(
                Arc::clone(&raw),
                Arc::clone(&envelope),
                self.envelope.recipients.clone(),
            )
            .await;
        let mut recordings = judgement.take_recordings();
        let mut dispositions = Vec::with_capacity(judgement.verdicts.len());
        let mut actions = Vec::with_capacity(judgement.verdicts.len());
        let mut defused_cache: Option<Option<Arc<Vec<u8>>>> = None;
        for verdict in &judgement.verdicts {
            let (disposition, action) = match verdict {
                RecipientVerdict::NotCalendar(None) => (
                    Disposition::Deliver {
                        message: Arc::clone(&stripped),
                        record: false,
                    },
                    Action::Pass,
                ),
                RecipientVerdict::NotCalendar(Some(verdict)) => (
                    Disposition::Deliver {
                        message: self.with_authres(verdict, &stripped),
                        record: false,
                    },
                    Action::Pass,
                ),
                RecipientVerdict::Failed(error) => {
                    tracing::warn!(%error, "no verdict");
                    (
                        Disposition::Answer(Reply::new(
                            451,
                            "4.7.1 imipsec: cannot evaluate calendar message now, try again later",
                        )),
                        Action::Tempfail,
                    )
                }
                RecipientVerdict::Judged(verdict, _) if verdict.outcome == Outcome::Accept => {
                    let message = self.with_authres(verdict, &stripped);
                    (
                        Disposition::Deliver {
                            message,
                            record: true,
                        },
                        Action::Accept,
                    )
                }
                RecipientVerdict::Judged(verdict, _)
                    if verdict.outcome == Outcome::NotDecrypted =>
                {
                    let monitor = shared.config.on_reject == RejectAction::Monitor;
                    let tagged = Disposition::Deliver {
                        message: self.with_authres(verdict, &stripped),
                        record: false,
                    };
                    match (shared.config.on_undecryptable, monitor) {
                        (UndecryptableAction::Pass, _) => (tagged, Action::PassNotDecrypted),
                        (_, true) => (tagged, Action::MonitorWouldReject),
                        (UndecryptableAction::Reject, false) => {
                            (Disposition::Answer(rejected()), Action::Reject)
                        }
                        (UndecryptableAction::Quarantine, false) => {
                            let message = self.with_authres(verdict, &stripped);
                            (Disposition::Quarantine { message }, Action::Quarantine)
                        }
                    }
                }
                RecipientVerdict::Judged(verdict, _) => match shared.config.on_reject {
                    RejectAction::Reject => (Disposition::Answer(rejected()), Action::Reject),
                    // Rollout: delivered with the real result (`x-imip=fail`), logged as
                    // what `reject` would have done; no event state is recorded.
                    RejectAction::Monitor => (
                        Disposition::Deliver {
                            message: self.with_authres(verdict, &stripped),
                            record: false,
                        },
                        Action::MonitorWouldReject,
                    ),
                    RejectAction::Quarantine => {
                        let message = self.with_authres(verdict, &stripped);
                        (Disposition::Quarantine { message }, Action::Quarantine)
                    }
                    RejectAction::Defuse => {
                        let defused = defused_cache
                            .get_or_insert_with(|| {
                                // A panic while defusing leaves the message undefused:
                                // quarantine or refuse below, never deliver it as is.
                                std::panic::catch_unwind(|| mime::defuse(&stripped))
                                    .ok()
                                    .flatten()
                                    .map(|d| Arc::new(d.message))
                            })
                            .clone();
                        match defused {
                            Some(body) => {
                                let message = self.with_authres(verdict, &body);
                                (
                                    Disposition::Deliver {
                                        message,
                                        record: false,
                                    },
                                    Action::Defuse,
                                )
                            }
                            // The calendar could not be shown defused: never deliver it as
                            // it is (fail closed). Quarantine when a quarantine address is
                            // configured, else refuse (the sender is told; nothing is lost).
                            None if self.config.quarantine_address.is_some() => {
                                let message = self.with_authres(verdict, &stripped);
                                (Disposition::Quarantine { message }, Action::Quarantine)
                            }
                            None => (Disposition::Answer(rejected()), Action::Reject),
                        }
                    }
                },
            };
            dispositions.push(disposition);
            actions.push(action);
        }
        // Record before delivering (issue #15): the event state of an accepted recipient is
        // stored first, keyed by the message's digest, so a crash or a backend failure
        // between the two steps loses nothing (the retry of the same message finds its own
        // record and is accepted again) and duplicates nothing (the record is not written
        // twice). A recipient whose state could not be recorded is not delivered: 451.
        let mut order = Vec::new();
        let mut pending = Vec::new();
        for (index, (disposition, recording)) in
            dispositions.iter().zip(recordings.iter_mut()).enumerate()
        {
            if matches!(disposition, Disposition::Deliver { record: true, .. })
                && let Some(recording) = recording.take()
            {
                order.push(index);
                pending.push(recording);
            }
        }
        let results = shared.evaluator.record(pending).await;
        for (index, result) in order.into_iter().zip(results) {
            if let Err(error) = result {
                tracing::warn!(%error, "event state not recorded; not delivered");
                if let (Some(disposition), Some(action)) =
                    (dispositions.get_mut(index), actions.get_mut(index))
                {
                    *disposition = Disposition::Answer(Reply::new(
                        451,
                        "4.7.1 imipsec: cannot record calendar state now, try again later",
                    ));
                    *action = Action::Tempfail;
                }
            }
        }
        let replies = self.execute(&dispositions).await?;
        for (index, (action, recipient)) in
            actions.iter().zip(&self.envelope.recipients).enumerate()
        {
            let verdict = match judgement.verdicts.get(index) {
                Some(
                    RecipientVerdict::Judged(verdict, _)
                    | RecipientVerdict::NotCalendar(Some(verdict)),
                ) => Some(verdict),
                _ => None,
            };
            let single = Envelope {
                mail_from: self.envelope.mail_from.clone(),
                recipients: vec![recipient.clone()],
            };
            // A backend refusal overrides what we intended.
            let action = match replies.get(index) {
                Some(reply)
                    if !reply.is_positive()
                        && !matches!(action, Action::Reject | Action::Tempfail) =>
                {
                    Action::Tempfail
                }
                _ => *action,
            };
            audit(
                &shared,
                "lmtp",
                "",
                &single,
                action,
                verdict,
                Some(judgement.elapsed),
            );
        }
        Ok(replies)
    }

    /// Run the backend transactions the dispositions need; one reply per recipient.
    async fn execute(&mut self, dispositions: &[Disposition]) -> Result<Vec<Reply>, BackendError> {
        let count = dispositions.len();
        let mut replies: Vec<Option<Reply>> = vec![None; count];
        // Groups of recipients receiving identical bytes at one mailbox path.
        let mut groups: Vec<(Arc<Vec<u8>>, bool, Vec<usize>)> = Vec::new();
        for (index, disposition) in dispositions.iter().enumerate() {
            match disposition {
                Disposition::Answer(reply) => {
                    if let Some(slot) = replies.get_mut(index) {
                        *slot = Some(reply.clone());
                    }
                }
                Disposition::Deliver { message, .. } | Disposition::Quarantine { message } => {
                    let quarantine = matches!(disposition, Disposition::Quarantine { .. });
                    match groups.iter_mut().find(|(bytes, q, _)| {
                        *q == quarantine && (Arc::ptr_eq(bytes, message) || **bytes == **message)
                    }) {
                        Some((_, _, members)) => members.push(index),
                        None => groups.push((Arc::clone(message), quarantine, vec![index])),
                    }
                }
            }
        }
        let single_pass = groups.len() == 1
            && groups
                .first()
                .is_some_and(|(_, quarantine, members)| !quarantine && members.len() == count);
        if single_pass {
            // The backend already holds MAIL and every RCPT: send the data as is.
            if let Some((message, _, members)) = groups.first() {
                let answers = self.backend.data(message, members.len()).await?;
                return Ok(answers);
            }
        }
        // Otherwise start over on the backend, one transaction per group.
        self.backend.command(b"RSET\r\n").await?;
        let mail_line = self
            .mail_line
            .clone()
            .unwrap_or_else(|| b"MAIL FROM:<>\r\n".to_vec());
        for (message, quarantine, members) in &groups {
            let answers = self
                .transaction(&mail_line, message, *quarantine, members)
                .await?;
            for (member, answer) in members.iter().zip(answers) {
                if let Some(slot) = replies.get_mut(*member) {
                    *slot = Some(answer);
                }
            }
        }
        Ok(replies
            .into_iter()
            .map(|reply| reply.unwrap_or_else(|| Reply::new(451, "4.3.0 imipsec: internal error")))
            .collect())
    }

    /// One backend transaction delivering `message` to `members` (or, for quarantine, to
    /// the quarantine mailbox on their behalf). Returns one reply per member.
    async fn transaction(
        &mut self,
        mail_line: &[u8],
        message: &Arc<Vec<u8>>,
        quarantine: bool,
        members: &[usize],
    ) -> Result<Vec<Reply>, BackendError> {
        let mail = self.backend.command(mail_line).await?;
        if !mail.is_positive() {
            return Ok(vec![mail; members.len()]);
        }
        if quarantine {
            let address = self.config.quarantine_address.clone().unwrap_or_default();
            let rcpt = self
                .backend
                .command(format!("RCPT TO:<{address}>\r\n").as_bytes())
                .await?;
            if !rcpt.is_positive() {
                self.backend.command(b"RSET\r\n").await?;
                return Ok(vec![
                    Reply::new(
                        451,
                        "4.3.0 imipsec: quarantine mailbox refused the message"
                    );
                    members.len()
                ]);
            }
            let mut replies = self.backend.data(message, 1).await?;
            let reply = replies
                .pop()
                .unwrap_or_else(|| Reply::new(451, "4.3.0 imipsec: no reply"));
            let answer = if reply.is_positive() {
                Reply::new(250, "2.1.5 imipsec: held in quarantine")
            } else {
                Reply::new(451, "4.3.0 imipsec: quarantine delivery failed")
            };
            return Ok(vec![answer; members.len()]);
        }
        let mut answers: Vec<Option<Reply>> = vec![None; members.len()];
        let mut accepted = Vec::new();
        for (slot, member) in members.iter().enumerate() {
            let Some(line) = self.rcpt_lines.get(*member).cloned() else {
                continue;
            };
            let reply = self.backend.command(&line).await?;
            if reply.is_positive() {
                accepted.push(slot);
            } else if let Some(answer) = answers.get_mut(slot) {
                *answer = Some(reply);
            }
        }
        if accepted.is_empty() {
            self.backend.command(b"RSET\r\n").await?;
        } else {
            let data_replies = self.backend.data(message, accepted.len()).await?;
            for (slot, reply) in accepted.into_iter().zip(data_replies) {
                if let Some(answer) = answers.get_mut(slot) {
                    *answer = Some(reply);
                }
            }
        }
        Ok(answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Reply::new(451, "4.3.0 imipsec: internal error")))
            .collect())
    }
}

/// The refusal of a rejected calendar message: one text, no reason (see
/// [`crate::server::REJECT_TEXT`]).
fn rejected() -> Reply {
    Reply::new(550, &format!("5.7.1 {}", crate::server::REJECT_TEXT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_escapes_leading_dots_and_terminates() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n..\r\n"), b"a\r\n..b\r\n...\r\n.\r\n");
        assert_eq!(dot_stuff(b"no newline"), b"no newline\r\n.\r\n");
    }

    #[test]
    fn only_crlf_ends_a_line() {
        assert!(is_crlf_line(b"NOOP\r\n"));
        assert!(is_crlf_line(b".\r\n"));
        assert!(is_crlf_line(b"\r\n"));
        assert!(!is_crlf_line(b".\n"));
        assert!(!is_crlf_line(b"NOOP\n"));
        assert!(!is_crlf_line(b"a\rb\r\n"));
        assert!(!is_crlf_line(b"a\r\r\n"));
        assert!(!is_crlf_line(b"no terminator"));
    }

    #[test]
    fn paths_are_extracted() {
        assert_eq!(
            path_of(b"FROM:<a@example.net> SIZE=10\r\n"),
            "a@example.net"
        );
        assert_eq!(path_of(b"TO:b@example.org\r\n"), "b@example.org");
        assert_eq!(path_of(b"FROM:<>\r\n"), "");
    }

    #[test]
    fn multi_line_reply_renders() {
        let reply = Reply {
            code: 250,
            lines: vec!["a".into(), "b".into()],
        };
        assert_eq!(reply.render(), b"250-a\r\n250 b\r\n");
    }
}
