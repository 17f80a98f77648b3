//! Reload (issue #13): the gate swaps its configuration, anchors and CRLs from the same
//! entry point `SIGHUP` calls ([`imipsec_gate::Reloader::reload`]) without dropping
//! connections; a reload that fails keeps the old state. The real signal on the real binary
//! is tested in the root crate's `tests/gate_reload.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imipsec_gate::{
    CrlStatus, Gate, GateConfig, LmtpConfig, Load, Loaded, PipelineEngine, ReloadError,
};
use imipsec_pipeline::policy::SqliteStore;
use imipsec_pipeline::smime::TrustStore;
use imipsec_pipeline::{Pipeline, Settings};
use time::macros::datetime;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

fn certs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../certs")
}

/// Builds the gate from files in a folder, as the binary does from its configuration:
/// `gate.json` (the `[gate]` table), `anchor.pem`, and `crl-next-update` (the nextUpdate
/// the loaded CRL reports, Unix seconds).
struct FolderLoader {
    dir: PathBuf,
    loads: Mutex<usize>,
}

impl Load for FolderLoader {
    fn load(&self) -> Result<Loaded, Box<dyn std::error::Error + Send + Sync>> {
        let config: GateConfig =
            serde_json::from_slice(&std::fs::read(self.dir.join("gate.json"))?)?;
        let no_crls: [PathBuf; 0] = [];
        let trust = TrustStore::from_pem_files(&[self.dir.join("anchor.pem")], &no_crls)?;
        let store = SqliteStore::open_in_memory()?;
        let engine =
            PipelineEngine::new(Pipeline::new(Settings::new(trust)), Some(Box::new(store)));
        let next_update: i64 = std::fs::read_to_string(self.dir.join("crl-next-update"))?
            .trim()
            .parse()?;
        *self.loads.lock().unwrap() += 1;
        Ok(Loaded {
            config,
            engine: Arc::new(engine),
            crls: vec![CrlStatus {
                source: "intermediate.crl".to_owned(),
                issuer: "CN=imipsec Test Intermediate CA".to_owned(),
                next_update: Some(time::OffsetDateTime::from_unix_timestamp(next_update)?),
            }],
        })
    }
}

fn gate_config(backend: SocketAddr) -> GateConfig {
    let mut config = GateConfig {
        authserv_id: Some("mx.gate.test".into()),
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        lmtp: Some(LmtpConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            backend,
            quarantine_address: None,
            hostname: "gate.test".into(),
        }),
        ..GateConfig::default()
    };
    config.limits.decide_timeout_secs = 10;
    config.limits.drain_timeout_secs = 5;
    config
}

/// A message signed by `openssl cms` with the test PKI's RSA organizer, for event `uid`.
fn signed_request(uid: &str) -> String {
    let calendar = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//reload-test//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260601T100000Z\r\nDTSTART:20260602T100000Z\r\nSEQUENCE:0\r\nSUMMARY:reload\r\nORGANIZER:mailto:organizer@example.com\r\nATTENDEE:mailto:bob@example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    let entity = format!(
        "Content-Type: text/calendar; method=REQUEST; charset=utf-8; component=VEVENT\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{calendar}"
    );
    let dir = certs();
    let output = std::process::Command::new("openssl")
        .args([
            "cms", "-sign", "-binary", "-crlfeol", "-md", "sha256", "-signer",
        ])
        .arg(dir.join("rsa2048/organizer.cert.pem"))
        .arg("-inkey")
        .arg(dir.join("rsa2048/organizer.key.pem"))
        .arg("-certfile")
        .arg(dir.join("intermediate.cert.pem"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(entity.as_bytes())?;
            child.wait_with_output()
        })
        .expect("openssl runs");
    assert!(output.status.success(), "openssl cms -sign failed");
    let body = String::from_utf8(output.stdout)
        .unwrap()
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    format!(
        "From: organizer@example.com\r\nTo: bob@example.org\r\nSubject: reload\r\nDate: Mon, 01 Jun 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n{body}"
    )
}

/// An LMTP backend that delivers everything.
async fn backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                let _ = write.write_all(b"220 backend\r\n").await;
                let mut rcpts = 0;
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
                        rcpts += 1;
                        "250 ok\r\n".to_owned()
                    } else if upper.starts_with("DATA") {
                        let _ = write.write_all(b"354 go\r\n").await;
                        loop {
                            let mut data = String::new();
                            if reader.read_line(&mut data).await.unwrap_or(0) == 0
                                || data == ".\r\n"
                            {
                                break;
                            }
                        }
                        "250 2.0.0 delivered\r\n".repeat(std::mem::take(&mut rcpts))
                    } else if upper.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
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

struct Lmtp {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Lmtp {
    async fn connect(address: SocketAddr) -> Self {
        let (read, writer) = TcpStream::connect(address).await.unwrap().into_split();
        let mut client = Self {
            reader: BufReader::new(read),
            writer,
        };
        assert!(client.reply().await.starts_with("220"));
        assert!(client.command("LHLO client.test").await.starts_with("250"));
        client
    }
    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(20), self.reader.read_line(&mut line))
                .await
                .expect("reply in time")
                .unwrap();
            all.push_str(&line);
            if n == 0 || line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }
    async fn command(&mut self, line: &str) -> String {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.reply().await
    }
    /// One transaction to bob@example.org; the reply to the message.
    async fn deliver(&mut self, message: &str) -> String {
        assert!(
            self.command("MAIL FROM:<organizer@example.com>")
                .await
                .starts_with("250")
        );
        assert!(
            self.command("RCPT TO:<bob@example.org>")
                .await
                .starts_with("250")
        );
        assert!(self.command("DATA").await.starts_with("354"));
        self.writer.write_all(message.as_bytes()).await.unwrap();
        self.writer.write_all(b".\r\n").await.unwrap();
        self.reply().await
    }
}

async fn metrics_text(address: SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text
}

struct Started {
    lmtp: SocketAddr,
    metrics: SocketAddr,
    reloader: imipsec_gate::Reloader,
    dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start() -> Started {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(certs().join("root.cert.pem"), dir.path().join("anchor.pem")).unwrap();
    std::fs::write(dir.path().join("crl-next-update"), "1780358400").unwrap();
    let config = gate_config(backend().await);
    std::fs::write(
        dir.path().join("gate.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
    let loader = Arc::new(FolderLoader {
        dir: dir.path().to_path_buf(),
        loads: Mutex::new(0),
    });
    let gate = Gate::load(loader, Arc::new(|| datetime!(2026-06-01 12:00 UTC))).unwrap();
    let bound = gate.bind().await.unwrap();
    let (lmtp, metrics) = (bound.lmtp_addr().unwrap(), bound.metrics_addr().unwrap());
    let reloader = bound.reloader();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        bound
            .serve(async {
                let _ = stopped.await;
            })
            .await;
    });
    Started {
        lmtp,
        metrics,
        reloader,
        dir,
        _stop: stop,
    }
}

async fn reload(reloader: &imipsec_gate::Reloader) -> Result<(), ReloadError> {
    let reloader = reloader.clone();
    tokio::task::spawn_blocking(move || reloader.reload())
        .await
        .unwrap()
}

/// Issue #13: replacing the anchor file and reloading puts the new trust in force for the
/// next message, on a connection opened before the reload as on a new one, and the old
/// connection keeps working. Before this, the only way to new anchors or CRLs was a restart
/// (`kill -HUP` killed the gate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_puts_new_anchors_in_force_and_keeps_open_connections() {
    let gate = start().await;
    let mut before = Lmtp::connect(gate.lmtp).await;
    // Control: trusted now.
    let reply = before
        .deliver(&signed_request("reload-1@example.com"))
        .await;
    assert!(reply.starts_with("250 2.0.0 delivered"), "{reply}");
    let text = metrics_text(gate.metrics).await;
    assert!(
        text.contains(
            "imipsec_gate_crl_next_update_seconds{crl=\"intermediate.crl\",issuer=\"CN=imipsec Test Intermediate CA\"} 1780358400"
        ),
        "{text}"
    );

    // The operator replaces the anchor: the test root is no longer trusted.
    std::fs::copy(
        certs().join("untrusted-root.cert.pem"),
        gate.dir.path().join("anchor.pem"),
    )
    .unwrap();
    std::fs::write(gate.dir.path().join("crl-next-update"), "1780444800").unwrap();
    reload(&gate.reloader).await.unwrap();

    // The connection opened before the reload still works, and the new anchors decide.
    let reply = before
        .deliver(&signed_request("reload-2@example.com"))
        .await;
    assert!(reply.starts_with("550"), "{reply}");
    let mut after = Lmtp::connect(gate.lmtp).await;
    let reply = after.deliver(&signed_request("reload-3@example.com")).await;
    assert!(reply.starts_with("550"), "{reply}");
    let text = metrics_text(gate.metrics).await;
    assert!(text.contains("} 1780444800"), "{text}");
    assert!(
        text.contains("imipsec_gate_reloads_total{result=\"ok\"} 1"),
        "{text}"
    );
    assert!(before.command("QUIT").await.starts_with("221"));
}

/// Issue #13: a reload that fails keeps the running state: a configuration that does not
/// parse, anchors that do not load, a listener that would need a restart. Each is refused,
/// counted, and the old anchors go on deciding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_reload_keeps_the_running_state() {
    let gate = start().await;
    let mut client = Lmtp::connect(gate.lmtp).await;
    let good_config = std::fs::read(gate.dir.path().join("gate.json")).unwrap();

    // A broken configuration file, with an anchor change that must not take effect.
    std::fs::copy(
        certs().join("untrusted-root.cert.pem"),
        gate.dir.path().join("anchor.pem"),
    )
    .unwrap();
    std::fs::write(gate.dir.path().join("gate.json"), b"{\"lmtp\": ").unwrap();
    let error = reload(&gate.reloader).await.unwrap_err();
    assert!(matches!(error, ReloadError::Load(_)), "{error}");

    // Anchors that do not load.
    std::fs::write(gate.dir.path().join("gate.json"), &good_config).unwrap();
    std::fs::write(gate.dir.path().join("anchor.pem"), b"not a certificate").unwrap();
    let error = reload(&gate.reloader).await.unwrap_err();
    assert!(matches!(error, ReloadError::Load(_)), "{error}");

    // A configuration that validates but moves the LMTP listener.
    std::fs::copy(
        certs().join("root.cert.pem"),
        gate.dir.path().join("anchor.pem"),
    )
    .unwrap();
    let mut moved: GateConfig = serde_json::from_slice(&good_config).unwrap();
    if let Some(lmtp) = moved.lmtp.as_mut() {
        lmtp.listen = "127.0.0.1:1".parse().unwrap();
    }
    std::fs::copy(
        certs().join("untrusted-root.cert.pem"),
        gate.dir.path().join("anchor.pem"),
    )
    .unwrap();
    std::fs::write(
        gate.dir.path().join("gate.json"),
        serde_json::to_vec(&moved).unwrap(),
    )
    .unwrap();
    let error = reload(&gate.reloader).await.unwrap_err();
    assert!(matches!(error, ReloadError::NeedsRestart { .. }), "{error}");

    // A [gate] table the gate refuses (no authserv_id).
    let mut invalid: GateConfig = serde_json::from_slice(&good_config).unwrap();
    invalid.authserv_id = None;
    std::fs::write(
        gate.dir.path().join("gate.json"),
        serde_json::to_vec(&invalid).unwrap(),
    )
    .unwrap();
    let error = reload(&gate.reloader).await.unwrap_err();
    assert!(matches!(error, ReloadError::Config(_)), "{error}");

    // Still the original anchors, on the old connection and on a new one.
    let reply = client.deliver(&signed_request("kept-1@example.com")).await;
    assert!(reply.starts_with("250 2.0.0 delivered"), "{reply}");
    let mut fresh = Lmtp::connect(gate.lmtp).await;
    let reply = fresh.deliver(&signed_request("kept-2@example.com")).await;
    assert!(reply.starts_with("250 2.0.0 delivered"), "{reply}");
    let text = metrics_text(gate.metrics).await;
    assert!(
        text.contains("imipsec_gate_reloads_total{result=\"failed\"} 4"),
        "{text}"
    );
    assert!(
        text.contains("imipsec_gate_reloads_total{result=\"ok\"} 0"),
        "{text}"
    );
}
