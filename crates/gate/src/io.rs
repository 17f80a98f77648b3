//! Transport helpers shared by both protocols: an idle timeout on reads and a
//! length-capped line reader.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A TCP connection (or its read half) that acknowledges every read at once (Linux
/// `TCP_QUICKACK`, set again after each read: the kernel drops it by itself).
///
/// An LMTP client such as Postfix writes a message as a full buffer and then the rest; with
/// Nagle's algorithm the rest waits for our ACK of the first part, and a receiver that has
/// nothing to send delays that ACK by 40 ms. Every message through the proxy waited that
/// long (issue 17: a 1 ms transaction took 44 ms; Postfix's delivery transfer through the
/// proxy 90-110 ms against 40 ms straight to Dovecot). Postfix's milter client does the
/// same: the header and body events the gate does not answer (negotiated away) left the
/// next packet waiting for a delayed ACK, 41 ms added to every message at concurrency 1.
#[derive(Debug)]
pub struct QuickAck<T = tokio::net::tcp::OwnedReadHalf> {
    inner: T,
}

/// What [`QuickAck`] wraps: something reading from one TCP connection.
pub trait OnTcp {
    /// The connection.
    fn tcp(&self) -> &tokio::net::TcpStream;
}

impl OnTcp for tokio::net::tcp::OwnedReadHalf {
    fn tcp(&self) -> &tokio::net::TcpStream {
        self.as_ref()
    }
}

impl OnTcp for tokio::net::TcpStream {
    fn tcp(&self) -> &tokio::net::TcpStream {
        self
    }
}

impl<T: OnTcp> QuickAck<T> {
    /// Wrap `inner`.
    pub fn new(inner: T) -> Self {
        let quick = Self { inner };
        quick.acknowledge();
        quick
    }

    fn acknowledge(&self) {
        #[cfg(target_os = "linux")]
        {
            // Best effort: without it the connection only answers later.
            let _ = socket2::SockRef::from(self.inner.tcp()).set_tcp_quickack(true);
        }
    }
}

impl<T: OnTcp + AsyncRead + Unpin> AsyncRead for QuickAck<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.acknowledge();
        }
        polled
    }
}

/// `AsyncWrite` straight through to the wrapped stream `inner`: the wrappers here change
/// only how reads behave.
macro_rules! write_through_inner {
    ($wrapper:ident<$param:ident>) => {
        impl<$param: AsyncWrite + Unpin> AsyncWrite for $wrapper<$param> {
            fn poll_write(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.inner).poll_write(cx, buf)
            }
            fn poll_write_vectored(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
            }
            fn is_write_vectored(&self) -> bool {
                self.inner.is_write_vectored()
            }
            fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut self.inner).poll_flush(cx)
            }
            fn poll_shutdown(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                Pin::new(&mut self.inner).poll_shutdown(cx)
            }
        }
    };
}

write_through_inner!(QuickAck<T>);

/// A stream whose reads fail with [`io::ErrorKind::TimedOut`] once the peer has been
/// silent for `idle`: a peer that stops talking cannot hold a connection open forever.
///
/// The silence is counted from the moment we start waiting for the peer, not from its last
/// bytes: time the gate spends judging a message (up to `decide_timeout_secs`) while the
/// peer waits for our reply is not the peer's idleness.
#[derive(Debug)]
pub struct IdleTimeout<S> {
    inner: S,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    /// Whether `deadline` belongs to the read in progress (false after a read completed).
    waiting: bool,
}

impl<S> IdleTimeout<S> {
    /// Wrap `inner`.
    pub fn new(inner: S, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            waiting: true,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.waiting {
            // A new wait for the peer begins now.
            this.waiting = true;
            let next = Instant::now() + this.idle;
            this.deadline.as_mut().reset(next);
        }
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.waiting = false;
                Poll::Ready(result)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "peer idle too long",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

write_through_inner!(IdleTimeout<S>);

use std::future::Future as _;

/// One line read by [`read_line`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A complete line, terminator included, in the caller's buffer.
    Complete,
    /// The line was longer than the cap; its bytes up to the terminator were discarded.
    TooLong,
    /// The peer closed the connection (possibly mid-line).
    Eof,
}

/// Read one LF-terminated line into `line` (cleared first), keeping at most `cap` bytes.
/// An overlong line is consumed to its end but not stored, so memory stays bounded.
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Line> {
    line.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::Eof);
        }
        let (chunk, done) = match memchr_lf(available) {
            Some(index) => (index + 1, true),
            None => (available.len(), false),
        };
        if !too_long {
            if line.len() + chunk > cap {
                too_long = true;
                line.clear();
            } else if let Some(bytes) = available.get(..chunk) {
                line.extend_from_slice(bytes);
            }
        }
        reader.consume(chunk);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

fn memchr_lf(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_capped_and_resynchronised() {
        let mut input: &[u8] = b"short\r\nthis line is far too long\r\nok\r\npartial";
        let mut reader = tokio::io::BufReader::with_capacity(4, &mut input);
        let mut line = Vec::new();
        assert_eq!(
            read_line(&mut reader, &mut line, 10).await.unwrap(),
            Line::Complete
        );
        assert_eq!(line, b"short\r\n");
        assert_eq!(
            read_line(&mut reader, &mut line, 10).await.unwrap(),
            Line::TooLong
        );
        assert!(line.is_empty());
        assert_eq!(
            read_line(&mut reader, &mut line, 10).await.unwrap(),
            Line::Complete
        );
        assert_eq!(line, b"ok\r\n");
        assert_eq!(
            read_line(&mut reader, &mut line, 10).await.unwrap(),
            Line::Eof
        );
    }
}
