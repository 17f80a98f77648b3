//! Transport helpers shared by both protocols: an idle timeout on reads and a
//! length-capped line reader.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

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

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

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
