//! LMTP proxy mode (RFC 2033) in front of Dovecot or Cyrus LMTP.
//!
//! Envelope commands are relayed in order, so the backend decides which recipients
//! exist. When the backend offers PIPELINING (RFC 2920), the envelope commands a client
//! pipelines (MAIL, RCPT, RSET) are passed on as they arrive and their replies are read
//! when the client has nothing more buffered or sends another command: one round trip to
//! the backend for a whole envelope instead of one per command (issue 17). An `RSET`
//! between transactions is answered here when the backend connection is idle and open
//! (Postfix checks a cached connection with one); within a transaction it is
//! relayed. A backend connection the backend closed while idle (a restart, its idle
//! timeout) is replaced between transactions, greeted with the client's LHLO, so the
//! client's next message is not deferred for it. `DATA` is collected here
//! (size-capped), judged per recipient, and only then
//! forwarded: as `DATA`, or, for one recipient at a backend that offers CHUNKING (RFC 3030;
//! Dovecot does), as one `BDAT <size> LAST` written with the message, a round trip fewer.
//! Every recipient gets its own reply, and no recipient gets a 2xx that the backend did not
//! give first.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::watch;

use crate::config::{LimitExceeded, LmtpConfig, OversizeAction};
use crate::decide::Envelope;
use crate::io::{IdleTimeout, Line, read_line};
use crate::metrics::Action;
use crate::server::{Shared, audit};

mod backend;
mod deliver;

use backend::{Backend, BackendError, Reply};

/// Extensions relayed from the backend's `LHLO` reply; anything else (CHUNKING,
/// BINARYMIME, STARTTLS, XCLIENT, ...) is not supported by the proxy and is dropped.
const RELAYED_EXTENSIONS: [&str; 5] = [
    "PIPELINING",
    "8BITMIME",
    "ENHANCEDSTATUSCODES",
    "SMTPUTF8",
    "DSN",
];

/// What happens to one recipient's copy.
enum Disposition {
    /// Deliver these bytes (an accepted recipient's event state is already recorded).
    Deliver { message: Arc<Vec<u8>> },
    /// Deliver to the quarantine mailbox instead.
    Quarantine { message: Arc<Vec<u8>> },
    /// Answer without touching the backend.
    Answer(Reply),
}

struct Session {
    shared: Arc<Shared>,
    config: LmtpConfig,
    backend: Backend,
    /// Whether the backend's `LHLO` reply offered SIZE (RFC 1870). The proxy offers SIZE
    /// itself, so a client's `SIZE=` parameter is the proxy's to check; it is passed on
    /// only to a backend that offered SIZE too (Dovecot's LMTP does not, and refuses a MAIL
    /// carrying it with 555 5.5.4: every message Postfix delivered through the proxy bounced).
    backend_size: bool,
    /// Whether the backend's `LHLO` reply offered PIPELINING.
    backend_pipelining: bool,
    /// Envelope commands sent on to the backend whose replies are not read yet, in order.
    pending: VecDeque<Pending>,
    /// The client's accepted LHLO line and the extension lines the proxy answered with: a
    /// backend connection made again between transactions is greeted with the same line and
    /// must offer the same ([`Session::replace_closed_backend`]).
    greeted: Option<(Vec<u8>, Vec<String>)>,
    mail_line: Option<Vec<u8>>,
    envelope: Envelope,
    rcpt_lines: Vec<Vec<u8>>,
}

/// A command passed on to a pipelining backend, its reply still to be read and relayed.
enum Pending {
    /// `MAIL`, the line as sent.
    Mail(Vec<u8>),
    /// `RCPT`, the line as sent.
    Rcpt(Vec<u8>),
    Rset,
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
    let mut reader = BufReader::new(IdleTimeout::new(
        crate::io::QuickAck::new(read),
        limits.idle_timeout(),
    ));
    let greeting = format!("220 {} LMTP imipsec gate ready\r\n", config.hostname);
    if write.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    let mut session = Session {
        shared: Arc::clone(&shared),
        config,
        backend,
        backend_size: false,
        backend_pipelining: false,
        pending: VecDeque::new(),
        greeted: None,
        mail_line: None,
        envelope: Envelope::default(),
        rcpt_lines: Vec::new(),
    };
    let mut line = Vec::new();
    loop {
        // Replies still owed go out before waiting for a client that may be waiting too.
        if !session.pending.is_empty()
            && !reader.buffer().contains(&b'\n')
            && let Err(error) = session.drain(&mut write).await
        {
            backend_failed(&mut write, &error).await;
            break;
        }
        let idle = session.mail_line.is_none() && session.pending.is_empty();
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
                // passed on to the backend; its reply is relayed by `drain`
                Ok((None, _)) => continue,
                Ok((Some(reply), Flow::Continue)) => reply,
                Ok((Some(reply), Flow::Close)) => {
                    let _ = session.drain(&mut write).await;
                    let _ = write.write_all(&reply.render()).await;
                    break;
                }
                Err(error) => {
                    backend_failed(&mut write, &error).await;
                    break;
                }
            },
        };
        // In order: the replies of commands passed on before this one come first.
        if let Err(error) = session.drain(&mut write).await {
            backend_failed(&mut write, &error).await;
            break;
        }
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

/// The backend failed mid-session: logged, and the client told to try again later (the
/// session ends).
async fn backend_failed(write: &mut OwnedWriteHalf, error: &BackendError) {
    tracing::warn!(%error, "LMTP backend failed mid-session");
    let _ = write
        .write_all(b"421 4.4.2 imipsec: mailbox server failed, try again later\r\n")
        .await;
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

/// Whether an `LHLO` reply offers the extension `keyword`.
fn offers(reply: &Reply, keyword: &str) -> bool {
    reply
        .lines
        .iter()
        .skip(1)
        .any(|line| extension_keyword(line).eq_ignore_ascii_case(keyword))
}

/// The extension lines of an `LHLO` reply (all but the greeting line).
fn extension_lines(reply: &Reply) -> Vec<String> {
    reply.lines.iter().skip(1).cloned().collect()
}

/// The keyword of one extension line of an `LHLO` reply (its first word).
fn extension_keyword(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or_default()
}

/// The `SIZE=` value of a `MAIL FROM:<path> parameters` line (`None` when absent or not a
/// number), and the line without that parameter. The reverse-path is skipped as RFC 5321
/// section 4.1.2 writes it (a quoted local part may hold spaces or `>`), so only a
/// parameter token is ever removed; a line of another shape is returned unchanged.
fn size_parameter(line: &[u8]) -> (Option<u64>, Vec<u8>) {
    let unchanged = || (None, line.to_vec());
    let Some(open) = line.iter().position(|&byte| byte == b'<') else {
        return unchanged();
    };
    let mut quoted = false;
    let mut escaped = false;
    let mut close = None;
    for (index, &byte) in line.iter().enumerate().skip(open + 1) {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'>' if !quoted => {
                close = Some(index);
                break;
            }
            _ => {}
        }
    }
    let Some(close) = close else {
        return unchanged();
    };
    let (path, rest) = line.split_at(close + 1);
    let rest = rest.strip_suffix(b"\r\n").unwrap_or(rest);
    let mut declared = None;
    let mut kept = path.to_vec();
    for token in rest
        .split(|&byte| byte == b' ')
        .filter(|token| !token.is_empty())
    {
        match token.get(..5) {
            Some(name) if name.eq_ignore_ascii_case(b"SIZE=") => {
                declared = std::str::from_utf8(token.get(5..).unwrap_or_default())
                    .ok()
                    .and_then(|digits| digits.parse().ok());
            }
            _ => {
                kept.push(b' ');
                kept.extend_from_slice(token);
            }
        }
    }
    kept.extend_from_slice(b"\r\n");
    (declared, kept)
}

impl Session {
    fn reset(&mut self) {
        self.mail_line = None;
        self.envelope = Envelope::default();
        self.rcpt_lines.clear();
    }

    /// Read the replies of the commands passed on to the backend and not answered yet,
    /// apply them, and relay them to the client in one write.
    async fn drain(&mut self, write: &mut OwnedWriteHalf) -> Result<(), BackendError> {
        let out = self.owed_replies().await?;
        if !out.is_empty() {
            write.write_all(&out).await?;
        }
        Ok(())
    }

    /// [`Session::drain`] without the write: the replies owed, rendered (empty when none).
    async fn owed_replies(&mut self) -> Result<Vec<u8>, BackendError> {
        let mut out = Vec::new();
        while let Some(pending) = self.pending.pop_front() {
            let reply = self.backend.reply().await?;
            match pending {
                Pending::Mail(line) => self.mail_answered(line, &reply),
                Pending::Rcpt(line) => self.rcpt_answered(line, &reply),
                Pending::Rset => self.reset(),
            }
            out.extend_from_slice(&reply.render());
        }
        Ok(out)
    }

    /// The backend answered `MAIL` (`line` as sent): a new transaction when it agreed.
    fn mail_answered(&mut self, line: Vec<u8>, reply: &Reply) {
        if reply.is_positive() {
            self.reset();
            self.envelope.mail_from = path_of(line.get(5..).unwrap_or_default());
            self.mail_line = Some(line);
        }
    }

    /// The backend answered `RCPT`: the recipient is in the transaction when it agreed.
    fn rcpt_answered(&mut self, line: Vec<u8>, reply: &Reply) {
        if reply.is_positive() {
            self.envelope
                .recipients
                .push(path_of(line.get(5..).unwrap_or_default()));
            self.rcpt_lines.push(line);
        }
    }

    /// `Ok((None, _))`: the command was passed on to the backend and its reply is owed
    /// (relayed by [`Session::drain`]).
    async fn handle<R>(
        &mut self,
        line: &[u8],
        reader: &mut BufReader<R>,
        write: &mut OwnedWriteHalf,
    ) -> Result<(Option<Reply>, Flow), BackendError>
    where
        R: tokio::io::AsyncRead + Unpin,
    {
        let verb = verb(line);
        if matches!(verb.as_str(), "MAIL" | "RSET")
            && self.between_transactions()
            && !self.backend.idle_and_open()
        {
            self.replace_closed_backend().await?;
        }
        let pipelined =
            self.backend_pipelining && matches!(verb.as_str(), "MAIL" | "RCPT" | "RSET");
        let mut owed = Vec::new();
        if !pipelined {
            // Every other command reads or changes the transaction: the replies owed
            // first, so its state is the backend's.
            owed = self.owed_replies().await?;
        }
        if verb != "DATA" && !owed.is_empty() {
            write.write_all(&owed).await?;
            owed.clear();
        }
        self.command(&verb, line, owed, reader, write).await
    }

    /// `owed`: the replies owed for pipelined commands, rendered, not written yet (only
    /// for `DATA`, whose 354 goes out with them in one write).
    async fn command<R>(
        &mut self,
        verb: &str,
        line: &[u8],
        owed: Vec<u8>,
        reader: &mut BufReader<R>,
        write: &mut OwnedWriteHalf,
    ) -> Result<(Option<Reply>, Flow), BackendError>
    where
        R: tokio::io::AsyncRead + Unpin,
    {
        let limits = &self.shared.config.limits;
        match verb {
            "LHLO" => {
                let answer = self.greet_backend(line).await?;
                if answer.is_positive() {
                    // LHLO resets the backend's transaction (RFC 5321 section 4.1.4).
                    self.reset();
                    self.greeted = Some((line.to_vec(), extension_lines(&answer)));
                }
                Ok((Some(answer), Flow::Continue))
            }
            "MAIL" => {
                let (declared, without_size) = size_parameter(line);
                if declared.is_some_and(|size| size > limits.message_bytes as u64) {
                    // RFC 1870 section 6.1: refused before any data is sent.
                    return Ok((
                        Some(Reply::new(
                            552,
                            &format!(
                                "5.3.4 message size exceeds the limit of {} bytes",
                                limits.message_bytes
                            ),
                        )),
                        Flow::Continue,
                    ));
                }
                let line = if self.backend_size {
                    line.to_vec()
                } else {
                    without_size
                };
                if self.backend_pipelining {
                    self.backend.queue(&line);
                    self.pending.push_back(Pending::Mail(line));
                    return Ok((None, Flow::Continue));
                }
                let reply = self.backend.command(&line).await?;
                self.mail_answered(line, &reply);
                Ok((Some(reply), Flow::Continue))
            }
            "RCPT" => {
                // Recipients still awaiting the backend's answer count: never more than
                // the limit in one transaction.
                let owed = self
                    .pending
                    .iter()
                    .filter(|pending| matches!(pending, Pending::Rcpt(_)))
                    .count();
                if self.rcpt_lines.len() + owed >= limits.recipients {
                    let exceeded = LimitExceeded::Recipients {
                        limit: limits.recipients,
                    };
                    return Ok((
                        Some(Reply::new(452, &format!("4.5.3 {exceeded}"))),
                        Flow::Continue,
                    ));
                }
                if self.backend_pipelining {
                    self.backend.queue(line);
                    self.pending.push_back(Pending::Rcpt(line.to_vec()));
                    return Ok((None, Flow::Continue));
                }
                let reply = self.backend.command(line).await?;
                self.rcpt_answered(line.to_vec(), &reply);
                Ok((Some(reply), Flow::Continue))
            }
            "DATA" => {
                // The replies to the envelope and the 354 (or the 503) in one write: a
                // pipelining client gets them in one segment, one wake-up (issue 17).
                let mut out = owed;
                if self.mail_line.is_none() || self.rcpt_lines.is_empty() {
                    if !out.is_empty() {
                        write.write_all(&out).await?;
                    }
                    return Ok((
                        Some(Reply::new(503, "5.5.1 need MAIL and RCPT first")),
                        Flow::Continue,
                    ));
                }
                out.extend_from_slice(b"354 go ahead, end with <CRLF>.<CRLF>\r\n");
                write.write_all(&out).await?;
                let collected =
                    tokio::time::timeout(limits.data_timeout(), self.collect(reader)).await;
                let reply = match collected {
                    Err(_) => {
                        return Ok((
                            Some(Reply::new(421, "4.4.2 imipsec: data timeout")),
                            Flow::Close,
                        ));
                    }
                    Ok(Err(_)) => {
                        return Ok((
                            Some(Reply::new(421, "4.4.2 imipsec: connection lost")),
                            Flow::Close,
                        ));
                    }
                    Ok(Ok(Data::Oversize)) => {
                        // The backend holds MAIL and the RCPTs; nothing is delivered, so
                        // its transaction ends here too: the client's next MAIL need not
                        // be preceded by RSET (RFC 5321 section 4.1.1.4).
                        self.backend.command(b"RSET\r\n").await?;
                        self.oversize()
                    }
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
                        return Ok((Some(last), Flow::Close));
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
                Ok((Some(last), Flow::Continue))
            }
            // Between transactions the answer is the proxy's, when the backend connection
            // is idle and still open: the backend holds no transaction then (every MAIL it
            // accepted has ended in data or RSET, `Backend::data`), so RSET would change
            // nothing there. Postfix checks a cached connection with RSET; relaying it
            // cost a backend round trip per message (issue 17). A backend
            // connection found closed here has been replaced already (`handle` checks it
            // for every RSET and MAIL between transactions); when that failed, the client
            // got a tempfail.
            "RSET" if self.between_transactions() => {
                self.reset();
                Ok((Some(Reply::new(250, "2.0.0 OK")), Flow::Continue))
            }
            "RSET" if self.backend_pipelining => {
                self.backend.queue(line);
                self.pending.push_back(Pending::Rset);
                Ok((None, Flow::Continue))
            }
            "RSET" => {
                self.reset();
                Ok((Some(self.backend.command(line).await?), Flow::Continue))
            }
            "NOOP" | "VRFY" => Ok((Some(self.backend.command(line).await?), Flow::Continue)),
            "QUIT" => Ok((Some(Reply::new(221, "2.0.0 bye")), Flow::Close)),
            "HELO" | "EHLO" => Ok((
                Some(Reply::new(500, "5.5.1 this is LMTP, use LHLO")),
                Flow::Continue,
            )),
            _ => Ok((
                Some(Reply::new(502, "5.5.1 command not implemented")),
                Flow::Continue,
            )),
        }
    }

    /// No envelope open and no reply owed: the backend holds no transaction either (every
    /// MAIL it accepted has ended in data or RSET, `Backend::data`).
    fn between_transactions(&self) -> bool {
        self.mail_line.is_none() && self.pending.is_empty()
    }

    /// Sends the client's `LHLO` line to the backend, learns what its reply offers that the
    /// proxy uses, and returns the reply as the client is to see it ([`Session::filter_lhlo`]).
    /// The client's own LHLO and the greeting of a replaced connection go through here alike.
    async fn greet_backend(&mut self, line: &[u8]) -> Result<Reply, BackendError> {
        let reply = self.backend.command(line).await?;
        self.backend_size = reply.is_positive() && offers(&reply, "SIZE");
        self.backend_pipelining = reply.is_positive() && offers(&reply, "PIPELINING");
        self.backend.chunking = reply.is_positive() && offers(&reply, "CHUNKING");
        Ok(self.filter_lhlo(reply))
    }

    /// Between transactions, a backend connection that is no longer idle and open is
    /// replaced by a new one, greeted with the client's LHLO. The backend closes a connection
    /// when it restarts or after its idle timeout, while the client (Postfix's connection
    /// cache) keeps its own to the proxy: without this, the client's next MAIL met a dead
    /// backend and the message was deferred. No transaction is open on either side, so
    /// nothing is lost or repeated; the new backend must accept the LHLO and offer the
    /// extensions the client was told, or the session ends with a tempfail as before.
    async fn replace_closed_backend(&mut self) -> Result<(), BackendError> {
        let limits = &self.shared.config.limits;
        let backend = Backend::connect(
            &self.config,
            limits.backend_timeout(),
            limits.command_line_bytes,
        )
        .await?;
        // The old connection is closed as it is dropped here.
        self.backend = backend;
        if let Some((line, extensions)) = self.greeted.clone() {
            let answer = self.greet_backend(&line).await?;
            if !answer.is_positive() || extension_lines(&answer) != extensions {
                return Err(BackendError::Changed);
            }
        }
        tracing::info!(backend = %self.config.backend, "LMTP backend had closed the idle connection; connected again");
        Ok(())
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
            let keyword = extension_keyword(&extension).to_ascii_uppercase();
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
}

/// The refusal of a rejected calendar message: one text, no reason (see
/// [`crate::server::REJECT_TEXT`]).
fn rejected() -> Reply {
    Reply::new(550, &format!("5.7.1 {}", crate::server::REJECT_TEXT))
}

#[cfg(test)]
mod tests {
    use super::backend::dot_stuff;
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
    fn the_size_parameter_is_read_and_removed_and_nothing_else() {
        assert_eq!(
            size_parameter(b"MAIL FROM:<a@example.net> SIZE=4844 BODY=8BITMIME\r\n"),
            (
                Some(4844),
                b"MAIL FROM:<a@example.net> BODY=8BITMIME\r\n".to_vec()
            )
        );
        assert_eq!(
            size_parameter(b"MAIL FROM:<> size=10\r\n"),
            (Some(10), b"MAIL FROM:<>\r\n".to_vec())
        );
        // A quoted local part may hold what looks like a parameter: it is the path's.
        let quoted = b"MAIL FROM:<\"x> SIZE=1\"@example.net> BODY=7BIT\r\n";
        assert_eq!(size_parameter(quoted), (None, quoted.to_vec()));
        let no_size = b"MAIL FROM:<a@example.net> BODY=8BITMIME RET=HDRS\r\n";
        assert_eq!(size_parameter(no_size), (None, no_size.to_vec()));
        assert_eq!(
            size_parameter(b"MAIL FROM:<a@example.net> SIZE=x\r\n"),
            (None, b"MAIL FROM:<a@example.net>\r\n".to_vec())
        );
        let malformed = b"MAIL FROM:a@example.net SIZE=1\r\n";
        assert_eq!(size_parameter(malformed), (None, malformed.to_vec()));
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
