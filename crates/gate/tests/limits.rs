//! The gate's per-message and per-line limits at the limit and one past it, over loopback
//! with hand-written milter and LMTP clients (the protocol readers are not exposed as
//! functions over bytes). `gate.rs` checks these limits far past their values; these pin
//! the boundary. Messages here carry no calendar, so the decision engine is never asked
//! (the one below would refuse everything if it were).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use imipsec_gate::{
    Decide, DecideError, Envelope, Gate, GateConfig, Judged, LmtpConfig, MilterConfig,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Never consulted for mail without calendar data; fails loudly if it is.
struct Unreachable;

impl Decide for Unreachable {
    fn checks_event_state(&self) -> bool {
        true
    }

    fn decide(
        &self,
        _: &[u8],
        _: &Envelope,
        _: &[String],
        _: time::OffsetDateTime,
    ) -> Vec<Result<Judged, DecideError>> {
        panic!("the engine was asked about mail without calendar data")
    }
}

async fn start(config: GateConfig) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let clock: imipsec_gate::Clock = Arc::new(|| time::macros::datetime!(2026-06-01 12:00 UTC));
    let bound = Gate::new(config, Arc::new(Unreachable), clock)
        .bind()
        .await
        .unwrap();
    let addresses = (bound.milter_addr(), bound.lmtp_addr());
    tokio::spawn(bound.serve(std::future::pending()));
    addresses
}

fn config() -> GateConfig {
    let mut config = GateConfig {
        authserv_id: Some("mx.limits.test".into()),
        ..GateConfig::default()
    };
    config.limits.idle_timeout_secs = 5;
    config.limits.line_timeout_secs = 5;
    config
}

// ---------------------------------------------------------------- LMTP

/// An LMTP backend that accepts everything and answers one 250 per recipient after DATA.
async fn backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                write.write_all(b"220 backend\r\n").await.unwrap();
                let mut recipients = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let upper = line.to_ascii_uppercase();
                    let reply = if upper.starts_with("LHLO") {
                        "250-backend\r\n250 PIPELINING\r\n".to_owned()
                    } else if upper.starts_with("RCPT") {
                        recipients += 1;
                        "250 2.1.5 ok\r\n".to_owned()
                    } else if upper.starts_with("DATA") {
                        write.write_all(b"354 go\r\n").await.unwrap();
                        loop {
                            let mut data = String::new();
                            reader.read_line(&mut data).await.unwrap();
                            if data == ".\r\n" {
                                break;
                            }
                        }
                        "250 2.0.0 delivered\r\n".repeat(std::mem::take(&mut recipients))
                    } else {
                        "250 ok\r\n".to_owned()
                    };
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

async fn lmtp_gate(configure: impl FnOnce(&mut GateConfig)) -> SocketAddr {
    let mut config = config();
    config.lmtp = Some(LmtpConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        backend: backend().await,
        quarantine_address: None,
        hostname: "gate.limits.test".into(),
    });
    configure(&mut config);
    start(config).await.1.unwrap()
}

struct Lmtp {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Lmtp {
    async fn connect(address: SocketAddr) -> Self {
        let (read, writer) = TcpStream::connect(address).await.unwrap().into_split();
        let mut client = Lmtp {
            reader: BufReader::new(read),
            writer,
        };
        assert!(client.reply().await.starts_with("220"));
        assert!(client.line("LHLO client.test\r\n").await.starts_with("250"));
        client
    }

    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            tokio::time::timeout(Duration::from_secs(10), self.reader.read_line(&mut line))
                .await
                .expect("a reply in time")
                .unwrap();
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    /// Sends `line` exactly as given (CRLF included) and returns the reply.
    async fn line(&mut self, line: &str) -> String {
        self.writer.write_all(line.as_bytes()).await.unwrap();
        self.reply().await
    }

    /// One transaction with a message of exactly `message` bytes (no dot-stuffing needed).
    async fn deliver(&mut self, message: &[u8]) -> String {
        assert!(
            self.line("MAIL FROM:<a@example.net>\r\n")
                .await
                .starts_with("250")
        );
        assert!(
            self.line("RCPT TO:<b@example.org>\r\n")
                .await
                .starts_with("250")
        );
        assert!(self.line("DATA\r\n").await.starts_with("354"));
        self.writer.write_all(message).await.unwrap();
        self.line(".\r\n").await
    }
}

/// A message without calendar data of exactly `len` bytes, CRLF line ends.
fn plain_message(len: usize) -> Vec<u8> {
    let mut message = b"From: a@example.net\r\nSubject: size\r\n\r\n".to_vec();
    while message.len() + 80 <= len {
        message.extend_from_slice(&[b'x'; 78]);
        message.extend_from_slice(b"\r\n");
    }
    let rest = len - message.len();
    assert!(rest >= 2);
    message.extend(std::iter::repeat_n(b'y', rest - 2));
    message.extend_from_slice(b"\r\n");
    assert_eq!(message.len(), len);
    message
}

#[tokio::test]
async fn lmtp_command_line_bytes_at_and_past_the_limit() {
    let address = lmtp_gate(|c| c.limits.command_line_bytes = 64).await;
    let mut client = Lmtp::connect(address).await;
    // "NOOP " + padding + CRLF: the limit counts the CRLF.
    let at = format!("NOOP {}\r\n", "x".repeat(64 - 7));
    assert_eq!(at.len(), 64);
    assert!(client.line(&at).await.starts_with("250"));
    let past = format!("NOOP {}\r\n", "x".repeat(64 - 6));
    assert!(client.line(&past).await.starts_with("500 5.5.2"));
    // The session survives.
    assert!(client.line("NOOP\r\n").await.starts_with("250"));
}

#[tokio::test]
async fn lmtp_recipients_at_and_past_the_limit() {
    let address = lmtp_gate(|c| c.limits.recipients = 3).await;
    let mut client = Lmtp::connect(address).await;
    assert!(
        client
            .line("MAIL FROM:<a@example.net>\r\n")
            .await
            .starts_with("250")
    );
    for i in 0..3 {
        let reply = client
            .line(&format!("RCPT TO:<r{i}@example.org>\r\n"))
            .await;
        assert!(reply.starts_with("250"), "{reply}");
    }
    let reply = client.line("RCPT TO:<r3@example.org>\r\n").await;
    assert!(reply.starts_with("452 4.5.3"), "{reply}");
}

#[tokio::test]
async fn lmtp_message_bytes_at_and_past_the_limit() {
    let limit = 4096;
    let address = lmtp_gate(|c| c.limits.message_bytes = limit).await;
    let mut client = Lmtp::connect(address).await;
    let reply = client.deliver(&plain_message(limit)).await;
    assert!(reply.starts_with("250"), "{reply}");
    let reply = client.deliver(&plain_message(limit + 1)).await;
    assert!(reply.starts_with("452 4.3.4"), "{reply}");
}

// ---------------------------------------------------------------- milter

async fn milter_gate(configure: impl FnOnce(&mut GateConfig)) -> SocketAddr {
    let mut config = config();
    config.milter = Some(MilterConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
    });
    configure(&mut config);
    start(config).await.0.unwrap()
}

struct Milter {
    stream: TcpStream,
}

impl Milter {
    async fn connect(address: SocketAddr) -> Self {
        let mut client = Milter {
            stream: TcpStream::connect(address).await.unwrap(),
        };
        // No protocol flags offered: every stage is sent and answered, so each limit's
        // answer is seen where it is given (tests/gate.rs covers the negotiated
        // no-reply conversation).
        let mut optneg = 6u32.to_be_bytes().to_vec();
        optneg.extend_from_slice(&0x1ffu32.to_be_bytes());
        optneg.extend_from_slice(&0u32.to_be_bytes());
        assert_eq!(client.exchange(b'O', &optneg).await.unwrap().0, b'O');
        assert_eq!(
            client.exchange(b'M', b"<a@example.net>\0").await.unwrap().0,
            b'c'
        );
        assert_eq!(
            client.exchange(b'R', b"<b@example.org>\0").await.unwrap().0,
            b'c'
        );
        client
    }

    async fn send(&mut self, code: u8, data: &[u8]) {
        let mut packet = u32::try_from(data.len() + 1)
            .unwrap()
            .to_be_bytes()
            .to_vec();
        packet.push(code);
        packet.extend_from_slice(data);
        let _ = self.stream.write_all(&packet).await;
    }

    /// The next packet, or `None` when the gate closed the connection.
    async fn receive(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut len = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(10), self.stream.read_exact(&mut len))
            .await
            .expect("the gate answers or closes in time")
            .ok()?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).await.ok()?;
        Some((*body.first()?, body.get(1..).unwrap_or_default().to_vec()))
    }

    async fn exchange(&mut self, code: u8, data: &[u8]) -> Option<(u8, Vec<u8>)> {
        self.send(code, data).await;
        self.receive().await
    }

    /// Headers (name, value), end of headers, body, end of message: the final reply.
    async fn message(&mut self, headers: &[(String, String)], body: &[u8]) -> (u8, String) {
        for (name, value) in headers {
            let packet = format!("{name}\0{value}\0");
            assert_eq!(
                self.exchange(b'L', packet.as_bytes()).await.unwrap().0,
                b'c'
            );
        }
        assert_eq!(self.exchange(b'N', b"").await.unwrap().0, b'c');
        assert_eq!(self.exchange(b'B', body).await.unwrap().0, b'c');
        self.send(b'E', b"").await;
        loop {
            let (code, data) = self.receive().await.expect("an end-of-message reply");
            if code != b'h' && code != b'm' && code != b'i' && code != b'q' {
                return (code, String::from_utf8_lossy(&data).into_owned());
            }
        }
    }
}

fn headers(count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|i| (format!("X-Header-{i}"), "value".to_owned()))
        .collect()
}

#[tokio::test]
async fn milter_headers_at_and_past_the_limit() {
    let address = milter_gate(|c| c.limits.headers = 5).await;
    let mut client = Milter::connect(address).await;
    let (code, text) = client.message(&headers(5), b"hello\r\n").await;
    assert_eq!(code, b'c', "{text}");
    let mut client = Milter::connect(address).await;
    let (code, text) = client.message(&headers(6), b"hello\r\n").await;
    assert_eq!(code, b'y', "{text}");
    assert!(text.starts_with("452 4.3.4"), "{text}");
}

#[tokio::test]
async fn milter_message_bytes_at_and_past_the_limit() {
    let limit = 2048;
    let address = milter_gate(|c| c.limits.message_bytes = limit).await;
    // The gate rebuilds "Name: value\r\n" per header, an empty line, then the body.
    let fields = headers(2);
    let head: usize = fields
        .iter()
        .map(|(n, v)| n.len() + 2 + v.len() + 2)
        .sum::<usize>()
        + 2;
    let mut client = Milter::connect(address).await;
    let (code, text) = client.message(&fields, &vec![b'z'; limit - head]).await;
    assert_eq!(code, b'c', "{text}");
    let mut client = Milter::connect(address).await;
    let (code, text) = client.message(&fields, &vec![b'z'; limit - head + 1]).await;
    assert_eq!(code, b'y', "{text}");
    assert!(text.starts_with("452 4.3.4"), "{text}");
}

#[tokio::test]
async fn milter_packet_bytes_at_and_past_the_limit() {
    let limit = 1024;
    let address = milter_gate(|c| c.limits.milter_packet_bytes = limit).await;
    // The limit bounds the packet as the length prefix counts it: command byte and data.
    let mut client = Milter::connect(address).await;
    let body = vec![b'z'; limit - 1];
    assert_eq!(client.exchange(b'B', &body).await.map(|p| p.0), Some(b'c'));
    let mut client = Milter::connect(address).await;
    let body = vec![b'z'; limit];
    assert_eq!(client.exchange(b'B', &body).await.map(|p| p.0), None);
}
