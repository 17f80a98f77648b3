//! Issue #13: `kill -HUP` on the real `imipsec gate` reloads the configuration file, anchors
//! and CRLs without dropping connections (it used to kill the gate); a reload that fails
//! keeps the running state and says why in the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// An LMTP backend (one thread per connection) that delivers everything.
fn backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let _ = writer.write_all(b"220 backend\r\n");
                let mut rcpts = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let upper = line.to_ascii_uppercase();
                    let reply = if upper.starts_with("LHLO") {
                        "250-backend\r\n250 PIPELINING\r\n".to_owned()
                    } else if upper.starts_with("RCPT") {
                        rcpts += 1;
                        "250 ok\r\n".to_owned()
                    } else if upper.starts_with("DATA") {
                        let _ = writer.write_all(b"354 go\r\n");
                        loop {
                            let mut data = String::new();
                            if reader.read_line(&mut data).unwrap_or(0) == 0 || data == ".\r\n" {
                                break;
                            }
                        }
                        "250 2.0.0 delivered\r\n".repeat(std::mem::take(&mut rcpts))
                    } else if upper.starts_with("QUIT") {
                        let _ = writer.write_all(b"221 bye\r\n");
                        return;
                    } else {
                        "250 ok\r\n".to_owned()
                    };
                    if writer.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

struct Lmtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Lmtp {
    fn connect(address: SocketAddr) -> Self {
        let stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut client = Self {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        };
        assert!(client.reply().starts_with("220"));
        assert!(client.command("LHLO client.test").starts_with("250"));
        client
    }
    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).unwrap_or(0);
            all.push_str(&line);
            if n == 0 || line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }
    fn command(&mut self, line: &str) -> String {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.reply()
    }
    fn deliver(&mut self, message: &[u8]) -> String {
        assert!(
            self.command("MAIL FROM:<organizer@example.com>")
                .starts_with("250")
        );
        assert!(
            self.command("RCPT TO:<attendee@example.com>")
                .starts_with("250")
        );
        assert!(self.command("DATA").starts_with("354"));
        self.writer.write_all(message).unwrap();
        self.writer.write_all(b".\r\n").unwrap();
        self.reply()
    }
}

/// A REQUEST for `uid` signed by the RSA organizer (multipart/signed).
fn signed_request(uid: &str) -> Vec<u8> {
    let entity = calendar_entity(&calendar("REQUEST", uid, 0), "REQUEST");
    let message = with_headers(
        "organizer@example.com",
        "attendee@example.com",
        &openssl_sign(&entity, "rsa2048/organizer", true, &[]),
    );
    // CRLF on the wire, as an MTA sends it.
    String::from_utf8(message)
        .unwrap()
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct RunningGate {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl RunningGate {
    /// Wait for a log line containing `needle`.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no log line with {needle:?}: {:#?}", self.seen),
            }
        }
    }
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for RunningGate {
    /// A test that fails midway must not leave its gate running.
    fn drop(&mut self) {
        if self.alive() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Follow the stderr lines of a gate child.
fn running(mut child: Child) -> RunningGate {
    let stderr = child.stderr.take().unwrap();
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if send.send(line).is_err() {
                return;
            }
        }
    });
    RunningGate {
        child,
        lines,
        seen: Vec::new(),
    }
}

fn config_text(
    anchor: &std::path::Path,
    store: &std::path::Path,
    listen: u16,
    backend: SocketAddr,
) -> String {
    format!(
        "[trust]\nanchors = [{:?}]\n[store]\npath = {:?}\n[gate]\nauthserv_id = \"mx.example.org\"\n\
         [gate.lmtp]\nlisten = \"127.0.0.1:{listen}\"\nbackend = \"{backend}\"\n",
        anchor.display().to_string(),
        store.display().to_string()
    )
}

/// Issue #13: SIGHUP killed the gate (default action), so new anchors or CRLs needed a
/// restart that dropped every connection. Now the same process reloads: after the anchor
/// file is replaced and SIGHUP sent, the new anchors decide, on a connection opened before
/// the reload as on a new one; a broken configuration on a later SIGHUP is refused, logged,
/// and the gate goes on with what it had.
#[test]
fn sighup_reloads_anchors_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let anchor = dir.path().join("anchor.pem");
    std::fs::copy(root_ca(), &anchor).unwrap();
    let config = dir.path().join("imipsec.toml");
    let port = free_port();
    let backend = backend();
    let store = dir.path().join("policy.sqlite");
    std::fs::write(&config, config_text(&anchor, &store, port, backend)).unwrap();

    let child = Command::new(env!("CARGO_BIN_EXE_imipsec"))
        .args(["gate", "--config", config.to_str().unwrap()])
        .env_remove("IMIPSEC_STORE")
        .env_remove("IMIPSEC_CONFIG")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut gate = running(child);
    gate.wait_for("gate listening");
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // Control: the organizer chains to the configured anchor.
    let mut before = Lmtp::connect(address);
    let reply = before.deliver(&signed_request("hup-1@example.com"));
    assert!(reply.starts_with("250 2.0.0 delivered"), "{reply}");

    // The operator replaces the anchor and sends SIGHUP.
    std::fs::copy(cert("untrusted-root.cert.pem"), &anchor).unwrap();
    gate.signal("HUP");
    gate.wait_for("reload: new configuration");
    assert!(
        gate.alive(),
        "SIGHUP must not end the gate: {:#?}",
        gate.seen
    );

    let reply = before.deliver(&signed_request("hup-2@example.com"));
    assert!(reply.starts_with("550"), "{reply}");
    let mut after = Lmtp::connect(address);
    let reply = after.deliver(&signed_request("hup-3@example.com"));
    assert!(reply.starts_with("550"), "{reply}");

    // A broken configuration (and the good anchor back): refused, the running state stays.
    std::fs::copy(root_ca(), &anchor).unwrap();
    std::fs::write(&config, "[gate\nauthserv_id = ").unwrap();
    gate.signal("HUP");
    let failed = gate.wait_for("reload failed");
    assert!(failed.contains("imipsec.toml"), "{failed}");
    assert!(gate.alive());
    let reply = before.deliver(&signed_request("hup-4@example.com"));
    assert!(reply.starts_with("550"), "{reply}");

    // Fixed file, SIGHUP: the good anchor is in force again, on the same old connection.
    std::fs::write(&config, config_text(&anchor, &store, port, backend)).unwrap();
    gate.signal("HUP");
    gate.wait_for("reload: new configuration");
    let reply = before.deliver(&signed_request("hup-5@example.com"));
    assert!(reply.starts_with("250 2.0.0 delivered"), "{reply}");

    assert!(before.command("QUIT").starts_with("221"));
    gate.signal("TERM");
    gate.wait_for("gate stopped");
    let status = gate.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    drop(gate);
}

/// A CRL past its nextUpdate (made here with `openssl ca -crl_nextupdate`), DER.
fn stale_crl(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = c\n[c]\ndatabase = ./index.txt\ncrlnumber = ./crlnumber\n\
         certificate = ./stale-ca.pem\nprivate_key = ./stale-ca.key\ndefault_md = sha256\n",
    )
    .unwrap();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "stale-ca.key",
        "-out",
        "stale-ca.pem",
        "-subj",
        "/CN=Stale CRL CA",
        "-days",
        "30",
    ]);
    run(&[
        "ca",
        "-config",
        "ca.cnf",
        "-gencrl",
        "-crl_lastupdate",
        "20240101000000Z",
        "-crl_nextupdate",
        "20250101000000Z",
        "-out",
        "stale.crl.pem",
    ]);
    run(&[
        "crl",
        "-in",
        "stale.crl.pem",
        "-outform",
        "DER",
        "-out",
        "stale.crl",
    ]);
    dir.join("stale.crl")
}

/// Issue #13: a CRL past its nextUpdate silently made every signer of its CA untrusted.
/// The gate now logs each CRL's nextUpdate at start, warns about a stale one, and exports
/// each nextUpdate as `imipsec_gate_crl_next_update_seconds`.
#[test]
fn gate_logs_and_exports_each_crl_next_update_and_warns_about_a_stale_one() {
    let dir = tempfile::tempdir().unwrap();
    let stale = stale_crl(dir.path());
    let (port, metrics_port) = (free_port(), free_port());
    let config = dir.path().join("imipsec.toml");
    std::fs::write(
        &config,
        format!(
            "[trust]\nanchors = [{:?}]\ncrls = [{:?}, {:?}]\n[store]\npath = {:?}\n[gate]\n\
             authserv_id = \"mx.example.org\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n\
             [gate.lmtp]\nlisten = \"127.0.0.1:{port}\"\nbackend = \"{}\"\n",
            root_ca().display().to_string(),
            cert("intermediate.crl.pem").display().to_string(),
            stale.display().to_string(),
            dir.path().join("policy.sqlite").display().to_string(),
            backend()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_imipsec"))
        .args(["gate", "--config", config.to_str().unwrap()])
        .env_remove("IMIPSEC_STORE")
        .env_remove("IMIPSEC_CONFIG")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut gate = running(child);
    gate.wait_for("gate listening");
    let loaded = gate
        .seen
        .iter()
        .find(|line| line.contains("CRL loaded"))
        .cloned()
        .unwrap_or_else(|| panic!("{:#?}", gate.seen));
    assert!(loaded.contains("imipsec Test Intermediate CA"), "{loaded}");
    assert!(loaded.contains("2045-01-01"), "{loaded}");
    let warning = gate
        .seen
        .iter()
        .find(|line| line.contains("past its nextUpdate"))
        .cloned()
        .unwrap_or_else(|| panic!("{:#?}", gate.seen));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("Stale CRL CA"), "{warning}");

    let mut stream = TcpStream::connect(("127.0.0.1", metrics_port)).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stream, &mut text).unwrap();
    let gauges: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("imipsec_gate_crl_next_update_seconds{"))
        .collect();
    assert_eq!(gauges.len(), 2, "{text}");
    assert!(
        gauges
            .iter()
            .any(|line| line.contains("imipsec Test Intermediate CA")
                && line.ends_with(" 2366841600")),
        "{gauges:?}"
    );
    assert!(
        gauges
            .iter()
            .any(|line| line.contains("Stale CRL CA") && line.ends_with(" 1735689600")),
        "{gauges:?}"
    );
    gate.signal("TERM");
    gate.wait_for("gate stopped");
}
