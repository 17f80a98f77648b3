//! The proxy's client side: the connection to the real LMTP server (Dovecot, Cyrus), its
//! replies, and dot-stuffing of the message handed on.

use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::config::LmtpConfig;
use crate::io::{Line, read_line};

/// Most lines in one backend reply.
pub(super) const MAX_REPLY_LINES: usize = 100;
/// One (possibly multi-line) reply.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub(super) code: u16,
    pub(super) lines: Vec<String>,
}

impl Reply {
    pub(super) fn new(code: u16, text: &str) -> Self {
        Self {
            code,
            lines: vec![text.to_owned()],
        }
    }
    pub(super) fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }
    /// The reply on one line, for a log: code and text, lines joined by a space.
    pub(super) fn summary(&self) -> String {
        let mut text = self.code.to_string();
        for line in &self.lines {
            text.push(' ');
            text.push_str(line);
        }
        text
    }
    pub(super) fn render(&self) -> Vec<u8> {
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
pub(super) enum BackendError {
    #[error("backend i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("backend timed out")]
    Timeout,
    #[error("backend closed the connection")]
    Closed,
    #[error("backend sent a malformed reply")]
    Malformed,
    /// A new connection, made between transactions to replace one the backend had closed,
    /// did not accept the client's LHLO or offered other extensions than the client was told.
    #[error("backend no longer accepts the session as greeted (LHLO refused or other extensions)")]
    Changed,
}

/// The connection to the real LMTP server.
pub(super) struct Backend {
    pub(super) reader: BufReader<OwnedReadHalf>,
    pub(super) writer: OwnedWriteHalf,
    pub(super) timeout: Duration,
    pub(super) line_cap: usize,
    /// Whether the backend's `LHLO` reply offered CHUNKING (RFC 3030): a message for one
    /// recipient then goes as one `BDAT ... LAST` ([`Backend::data`]).
    pub(super) chunking: bool,
    /// Pipelined commands not written yet ([`Backend::queue`]): written with the next write,
    /// and always before a reply is awaited.
    queued: Vec<u8>,
}

impl Backend {
    pub(super) async fn connect(
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
            chunking: false,
            queued: Vec::new(),
        };
        let greeting = backend.reply().await?;
        if greeting.code != 220 {
            return Err(BackendError::Malformed);
        }
        Ok(backend)
    }

    /// The next reply. Commands still queued are written first: a reply is never awaited
    /// for a command the backend has not been sent.
    pub(super) async fn reply(&mut self) -> Result<Reply, BackendError> {
        self.send(&[]).await?;
        tokio::time::timeout(self.timeout, self.reply_inner())
            .await
            .map_err(|_| BackendError::Timeout)?
    }

    pub(super) async fn reply_inner(&mut self) -> Result<Reply, BackendError> {
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

    pub(super) async fn command(&mut self, line: &[u8]) -> Result<Reply, BackendError> {
        self.send(line).await?;
        self.reply().await
    }

    /// Writes the queued commands and `bytes`, in one write.
    pub(super) async fn send(&mut self, bytes: &[u8]) -> Result<(), BackendError> {
        let out = if self.queued.is_empty() {
            bytes
        } else {
            self.queued.extend_from_slice(bytes);
            &self.queued
        };
        if out.is_empty() {
            return Ok(());
        }
        tokio::time::timeout(self.timeout, self.writer.write_all(out))
            .await
            .map_err(|_| BackendError::Timeout)?
            .map_err(BackendError::from)?;
        self.queued.clear();
        Ok(())
    }

    /// Queues a pipelined command (RFC 2920): it goes out with the next write, so the
    /// commands a client pipelined reach the backend in one segment instead of one each
    /// (issue 17: each segment is a wake-up of the backend on a machine busy with the MTA).
    /// A queued command is always answered by a reply the proxy awaits ([`Backend::reply`]
    /// writes the queue first); the proxy reads those replies before it waits on a client
    /// with nothing more buffered, so nothing stays queued while both sides wait.
    pub(super) fn queue(&mut self, bytes: &[u8]) {
        self.queued.extend_from_slice(bytes);
    }

    /// Whether the connection is idle and still open, as far as this side can tell without
    /// a round trip: nothing queued, nothing unread, and the socket neither readable nor
    /// closed by the backend (a peek that would block). A backend that went away while the
    /// connection sat idle (a restart, its idle timeout) has sent its FIN, or a `421`,
    /// and then this is false.
    pub(super) fn idle_and_open(&self) -> bool {
        if !self.queued.is_empty() || !self.reader.buffer().is_empty() {
            return false;
        }
        let stream: &TcpStream = self.reader.get_ref().as_ref();
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
        // The socket is non-blocking (tokio's): an idle, open connection has nothing to peek.
        matches!(
            socket2::SockRef::from(stream).peek(&mut byte),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock
        )
    }

    /// `DATA`, the dot-stuffed message, and one reply per recipient of the transaction.
    ///
    /// For one recipient, a backend that offers CHUNKING gets `BDAT <size> LAST` and the
    /// message in the same write instead (RFC 3030 §2, RFC 2033 §4.2): one round trip to the
    /// backend fewer than `DATA` and its 354 (issue 17: each round trip is a wake-up of the
    /// backend and of the proxy on a machine busy with the MTA). Its one reply is unambiguous
    /// for one recipient, whether it refuses the command or answers for the recipient. The
    /// backend stores the same bytes either way: only a message whose every line ends in
    /// CRLF goes as BDAT (DATA's dot-stuffing is undone exactly for those, and what a
    /// backend makes of a bare LF in DATA is its own), and it ends in CRLF as `dot_stuff`
    /// makes it.
    ///
    /// When this returns `Ok`, the backend holds no transaction: the end of the data ends it
    /// whatever the replies (RFC 5321 section 4.1.1.4), and a refused `DATA` or a refused
    /// `BDAT ... LAST` (which may have refused the command rather than the delivery) is
    /// followed by `RSET`. The proxy relies on it to answer a client's `RSET` between
    /// transactions itself.
    pub(super) async fn data(
        &mut self,
        message: &[u8],
        recipients: usize,
    ) -> Result<Vec<Reply>, BackendError> {
        if self.chunking && recipients == 1 && crlf_only(message) {
            let mut chunk = Vec::with_capacity(message.len() + 32);
            let ends_in_crlf = message.is_empty() || message.ends_with(b"\r\n");
            let size = message.len() + if ends_in_crlf { 0 } else { 2 };
            chunk.extend_from_slice(format!("BDAT {size} LAST\r\n").as_bytes());
            chunk.extend_from_slice(message);
            if !ends_in_crlf {
                chunk.extend_from_slice(b"\r\n");
            }
            self.send(&chunk).await?;
            let reply = self.reply().await?;
            if !reply.is_positive() {
                self.command(b"RSET\r\n").await?;
            }
            return Ok(vec![reply]);
        }
        let go = self.command(b"DATA\r\n").await?;
        if go.code != 354 {
            self.command(b"RSET\r\n").await?;
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

/// Whether every line of `message` ends in CRLF with no other CR or LF in it (the rule the
/// proxy holds DATA lines to, [`super::is_crlf_line`]); a last line without a line end may
/// hold neither.
pub(super) fn crlf_only(message: &[u8]) -> bool {
    message.split_inclusive(|&byte| byte == b'\n').all(|line| {
        if line.ends_with(b"\n") {
            super::is_crlf_line(line)
        } else {
            !line.contains(&b'\r')
        }
    })
}

/// RFC 5321 section 4.5.2 transparency, plus the terminating `.` line.
pub(super) fn dot_stuff(message: &[u8]) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 17: pipelined commands queued for the backend are not written one by one; they
    /// go out together, in one write, when their first reply is awaited.
    #[tokio::test]
    async fn queued_commands_go_out_together_when_a_reply_is_awaited() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_side = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let (read, writer) = proxy_side.into_split();
        let mut backend = Backend {
            reader: BufReader::new(read),
            writer,
            timeout: Duration::from_secs(10),
            line_cap: 1000,
            chunking: false,
            queued: Vec::new(),
        };
        backend.queue(b"MAIL FROM:<a@example.net>\r\n");
        backend.queue(b"RCPT TO:<b@example.org>\r\n");
        let mut buffer = [0u8; 256];
        let early = tokio::time::timeout(Duration::from_millis(100), server.read(&mut buffer));
        assert!(
            early.await.is_err(),
            "a queued command was written on its own"
        );
        server.write_all(b"250 2.1.0 ok\r\n").await.unwrap();
        assert_eq!(backend.reply().await.unwrap().code, 250);
        let read = server.read(&mut buffer).await.unwrap();
        assert_eq!(
            &buffer[..read],
            b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n"
        );
        // Written once: a later send carries only its own bytes.
        backend.send(b"RSET\r\n").await.unwrap();
        let read = server.read(&mut buffer).await.unwrap();
        assert_eq!(&buffer[..read], b"RSET\r\n");
    }

    /// The log line of a refused quarantine delivery carries the backend's whole reply.
    #[test]
    fn a_reply_summary_has_the_code_and_every_line() {
        let reply = Reply {
            code: 550,
            lines: vec!["5.1.1 <q@example.org>".into(), "User doesn't exist".into()],
        };
        assert_eq!(
            reply.summary(),
            "550 5.1.1 <q@example.org> User doesn't exist"
        );
        assert_eq!(
            Reply {
                code: 451,
                lines: Vec::new()
            }
            .summary(),
            "451"
        );
    }

    #[test]
    fn only_crlf_line_breaks_are_crlf_only() {
        for good in [&b""[..], b"a", b"a\r\n", b"a\r\nb", b"\r\n\r\n"] {
            assert!(crlf_only(good), "{good:?}");
        }
        for bad in [
            &b"\n"[..],
            b"a\nb",
            b"a\r",
            b"a\rb\r\n",
            b"\r\r\n",
            b"a\r\n\n",
        ] {
            assert!(!crlf_only(bad), "{bad:?}");
        }
    }
}
