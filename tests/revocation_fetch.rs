//! Issue #13, end to end with real components: `imipsec verify` and `imipsec gate` with
//! `--fetch-revocation` against a real `openssl ocsp` responder and a small HTTP server for
//! the CRL, both on loopback, for a test CA (made here with `openssl ca`) whose certificates
//! name them in their AIA and CRL distribution points.
//!
//! Paths: OCSP (good accepted, revoked rejected), CRL only (the responder is down: the CRL
//! distribution point decides), cache (responder and CRL server gone: the cached answer is
//! used), nothing reachable (`require`: verify exits 2, the gate answers 451;
//! `if-available`: accepted with a warning).
//!
//! Needs the `openssl` binary (OpenSSL 3) and loopback only. OpenSSL 3.0's responder spins
//! on a connection closed without a request, so its port is never probed: readiness is its
//! `ACCEPT` line, it is started with `-nrequest N` so that it ends, and it is killed by PID.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// A free loopback port (bound and released: the test CA must name the ports before the
/// servers start).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A test CA issuing a good and a revoked signer, both `organizer@example.com`, whose AIA
/// names an OCSP responder and whose CRL distribution point names an HTTP URL, both on
/// loopback ports chosen here.
struct Pki {
    dir: tempfile::TempDir,
    ocsp_port: u16,
    crl_port: u16,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (ocsp_port, crl_port) = (free_port(), free_port());
        let path = dir.path();
        std::fs::write(
            path.join("ca.cnf"),
            format!(
                "[ca]\ndefault_ca = test_ca\n[test_ca]\ndir = .\ndatabase = ./index.txt\n\
                 new_certs_dir = ./issued\nserial = ./serial\ncrlnumber = ./crlnumber\n\
                 certificate = ./root.pem\nprivate_key = ./root.key\ndefault_md = sha256\n\
                 default_crl_days = 1\npolicy = any\nunique_subject = no\n\
                 copy_extensions = none\n[any]\ncommonName = supplied\n\
                 organizationName = optional\n[leaf]\nbasicConstraints = critical, CA:false\n\
                 keyUsage = critical, digitalSignature, nonRepudiation\n\
                 extendedKeyUsage = emailProtection\n\
                 subjectAltName = email:organizer@example.com\n\
                 authorityInfoAccess = OCSP;URI:http://127.0.0.1:{ocsp_port}/\n\
                 crlDistributionPoints = URI:http://127.0.0.1:{crl_port}/root.crl\n\
                 [root]\nbasicConstraints = critical, CA:true\n\
                 keyUsage = critical, keyCertSign, cRLSign, digitalSignature\n\
                 subjectKeyIdentifier = hash\n"
            ),
        )
        .unwrap();
        std::fs::create_dir(path.join("issued")).unwrap();
        std::fs::write(path.join("index.txt"), "").unwrap();
        std::fs::write(path.join("serial"), "1000\n").unwrap();
        std::fs::write(path.join("crlnumber"), "1000\n").unwrap();
        let openssl = || {
            let mut command = Command::new("openssl");
            command.current_dir(path);
            command
        };
        run(openssl().args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-subj",
            "/O=fetch test/CN=Fetch Test Root",
            "-days",
            "30",
            "-config",
            "ca.cnf",
            "-extensions",
            "root",
        ]));
        for name in ["good", "revoked"] {
            run(openssl().args([
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/O=fetch test/CN={name}"),
            ]));
            run(openssl().args([
                "ca",
                "-batch",
                "-config",
                "ca.cnf",
                "-in",
                &format!("{name}.csr"),
                "-out",
                &format!("{name}.pem"),
                "-extensions",
                "leaf",
                "-startdate",
                "20250101000000Z",
                "-days",
                "30",
                "-notext",
            ]));
        }
        run(openssl().args([
            "ca",
            "-config",
            "ca.cnf",
            "-revoke",
            "revoked.pem",
            "-crl_reason",
            "keyCompromise",
        ]));
        run(openssl().args([
            "ca",
            "-config",
            "ca.cnf",
            "-gencrl",
            "-crldays",
            "1",
            "-out",
            "root.crl.pem",
        ]));
        // The distribution point serves DER (RFC 5280 section 4.2.1.13).
        run(openssl().args([
            "crl",
            "-in",
            "root.crl.pem",
            "-outform",
            "DER",
            "-out",
            "root.crl",
        ]));
        Self {
            dir,
            ocsp_port,
            crl_port,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A REQUEST from the organizer signed by `signer` (`good` or `revoked`), CRLF.
    fn signed(&self, signer: &str, uid: &str) -> Vec<u8> {
        let entity = calendar_entity(&calendar("REQUEST", uid, 0), "REQUEST");
        let output = Command::new("openssl")
            .args([
                "cms", "-sign", "-binary", "-crlfeol", "-md", "sha256", "-signer",
            ])
            .arg(self.path(&format!("{signer}.pem")))
            .arg("-inkey")
            .arg(self.path(&format!("{signer}.key")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                child.stdin.take().unwrap().write_all(&entity)?;
                child.wait_with_output()
            })
            .unwrap();
        assert!(output.status.success());
        let message = with_headers(ORGANIZER, ATTENDEE, &output.stdout);
        String::from_utf8(message)
            .unwrap()
            .replace("\r\n", "\n")
            .replace('\n', "\r\n")
            .into_bytes()
    }

    /// A real `openssl ocsp` responder for this CA, answering at most `requests` requests,
    /// signing with the CA key, nextUpdate one day ahead.
    fn responder(&self, requests: u32) -> Responder {
        let mut child = Command::new("openssl")
            .current_dir(self.dir.path())
            .args([
                "ocsp",
                "-index",
                "index.txt",
                "-CA",
                "root.pem",
                "-rsigner",
                "root.pem",
            ])
            .args(["-rkey", "root.key", "-ndays", "1", "-nrequest"])
            .arg(requests.to_string())
            .arg("-port")
            .arg(self.ocsp_port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Ready when it says ACCEPT (never probe the port: see the module comment).
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.starts_with("ACCEPT"), "openssl ocsp said {line:?}");
        std::thread::spawn(move || {
            let mut rest = Vec::new();
            let _ = stdout.read_to_end(&mut rest);
        });
        Responder { child }
    }

    /// The HTTP server of the CRL distribution point.
    fn crl_server(&self) -> CrlServer {
        CrlServer::start(self.crl_port, std::fs::read(self.path("root.crl")).unwrap())
    }

    fn url_of_ocsp(&self) -> String {
        format!("http://127.0.0.1:{}/", self.ocsp_port)
    }
}

/// The `openssl ocsp` child, killed by its PID when dropped.
struct Responder {
    child: Child,
}

impl Responder {
    /// Wait until it ended by itself (`-nrequest` reached), at most 10 s.
    fn wait_ended(mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("openssl ocsp did not end after its requests");
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET-only HTTP server serving one CRL; counts the requests; stops when dropped.
struct CrlServer {
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CrlServer {
    fn start(port: u16, crl: Vec<u8>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopping) = (Arc::clone(&requests), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                count.fetch_add(1, Ordering::SeqCst);
                let reply = if head.starts_with(b"GET /root.crl ") {
                    let mut reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n",
                        crl.len()
                    )
                    .into_bytes();
                    reply.extend_from_slice(&crl);
                    reply
                } else {
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
                };
                let _ = stream.write_all(&reply);
            }
        });
        Self {
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for CrlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `imipsec verify --json --trust <test CA> --fetch-revocation --revocation MODE` + extra,
/// at the current time (the responder signs with the current time).
fn verify_fetching(pki: &Pki, message: &[u8], mode: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "verify".to_owned(),
        "--json".to_owned(),
        "--trust".to_owned(),
        pki.path("root.pem").display().to_string(),
        "--fetch-revocation".to_owned(),
        "--revocation".to_owned(),
        mode.to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    imipsec(args, message)
}

fn describe(run: &Run) -> String {
    format!(
        "exit {}\nstdout {}\nstderr {}",
        run.status,
        run.stdout_text(),
        run.stderr
    )
}

/// OCSP path: the responder named in the AIA answers; good is accepted and revoked is
/// rejected under `require`, with no CRL server running at all.
#[test]
fn ocsp_from_aia_accepts_good_and_rejects_revoked_signer() {
    let pki = Pki::new();
    let responder = pki.responder(2);
    let good = verify_fetching(
        &pki,
        &pki.signed("good", "ocsp-good@example.com"),
        "require",
        &[],
    );
    assert_eq!(good.status, 0, "{}", describe(&good));
    let revoked = verify_fetching(
        &pki,
        &pki.signed("revoked", "ocsp-revoked@example.com"),
        "require",
        &[],
    );
    assert_eq!(revoked.status, 1, "{}", describe(&revoked));
    assert!(
        revoked.reasons().iter().any(|r| r == "certificate-revoked"),
        "{}",
        describe(&revoked)
    );
    responder.wait_ended();
}

/// CRL path: no OCSP responder listens; the CRL distribution point decides (DER over http).
#[test]
fn crl_distribution_point_decides_when_no_responder_answers() {
    let pki = Pki::new();
    let server = pki.crl_server();
    let good = verify_fetching(
        &pki,
        &pki.signed("good", "crl-good@example.com"),
        "require",
        &[],
    );
    assert_eq!(good.status, 0, "{}", describe(&good));
    let revoked = verify_fetching(
        &pki,
        &pki.signed("revoked", "crl-revoked@example.com"),
        "require",
        &[],
    );
    assert_eq!(revoked.status, 1, "{}", describe(&revoked));
    assert!(
        revoked.reasons().iter().any(|r| r == "certificate-revoked"),
        "{}",
        describe(&revoked)
    );
    assert!(server.requests() >= 2, "{}", server.requests());
}

/// Cache path: one verification with the responder up fills the cache; with the responder
/// gone (and no CRL server) the cached answer is used, by a new process.
#[test]
fn cached_ocsp_answer_is_used_when_the_responder_is_down() {
    let pki = Pki::new();
    let cache = pki.path("cache");
    let cache_arg = cache.display().to_string();
    let message = pki.signed("good", "cache@example.com");
    let responder = pki.responder(1);
    let first = verify_fetching(
        &pki,
        &message,
        "require",
        &["--revocation-cache", &cache_arg],
    );
    assert_eq!(first.status, 0, "{}", describe(&first));
    responder.wait_ended();
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        1,
        "one confirmed answer cached"
    );
    let second = verify_fetching(
        &pki,
        &message,
        "require",
        &["--revocation-cache", &cache_arg],
    );
    assert_eq!(second.status, 0, "{}", describe(&second));
    // Control: without the cache the same verification cannot be evaluated.
    let uncached = verify_fetching(&pki, &message, "require", &[]);
    assert_eq!(uncached.status, 2, "{}", describe(&uncached));
}

/// Nothing reachable: under `require` the message cannot be evaluated (exit 2, the
/// responder and distribution point named), never accepted or rejected; under
/// `if-available` it is accepted with a warning.
#[test]
fn nothing_reachable_is_could_not_evaluate_under_require_and_a_warning_otherwise() {
    let pki = Pki::new();
    let message = pki.signed("good", "unreachable@example.com");
    let required = verify_fetching(&pki, &message, "require", &[]);
    assert_eq!(required.status, 2, "{}", describe(&required));
    assert!(required.stdout.is_empty(), "{}", describe(&required));
    assert!(
        required.stderr.contains(&pki.url_of_ocsp()),
        "{}",
        describe(&required)
    );
    let available = verify_fetching(&pki, &message, "if-available", &[]);
    assert_eq!(available.status, 0, "{}", describe(&available));
    assert!(
        !available.warnings().is_empty(),
        "a warning says revocation could not be checked: {}",
        describe(&available)
    );
}

// ------------------------------------------------------------------ the gate

/// An LMTP backend that delivers everything.
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
                    let reply = if upper.starts_with("RCPT") {
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

/// A child process killed (by its PID) when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// One LMTP transaction through the gate at `address`; the reply to the message.
fn lmtp_deliver(address: SocketAddr, message: &[u8]) -> String {
    let stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut reply = || {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).unwrap_or(0);
            all.push_str(&line);
            if n == 0 || line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    };
    assert!(reply().starts_with("220"));
    for command in [
        "LHLO client.test",
        "MAIL FROM:<organizer@example.com>",
        "RCPT TO:<attendee@example.com>",
    ] {
        writer
            .write_all(format!("{command}\r\n").as_bytes())
            .unwrap();
        let answer = reply();
        assert!(answer.starts_with("250"), "{command}: {answer}");
    }
    writer.write_all(b"DATA\r\n").unwrap();
    assert!(reply().starts_with("354"));
    writer.write_all(message).unwrap();
    writer.write_all(b".\r\n").unwrap();
    reply()
}

/// The gate with `[trust] fetch_revocation = true` and `revocation = "require"`: an answer
/// from the responder lets the good signer through; with nothing reachable the message is
/// tempfailed (451), never accepted.
#[test]
fn gate_requires_revocation_and_tempfails_when_nothing_is_reachable() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("imipsec.toml");
    std::fs::write(
        &config,
        format!(
            "[trust]\nanchors = [{:?}]\nrevocation = \"require\"\nfetch_revocation = true\n\
             [store]\npath = {:?}\n[gate]\nauthserv_id = \"mx.example.org\"\n\
             [gate.lmtp]\nlisten = \"127.0.0.1:{port}\"\nbackend = \"{}\"\n",
            pki.path("root.pem").display().to_string(),
            dir.path().join("policy.sqlite").display().to_string(),
            backend()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_imipsec"))
        .args(["gate", "--config", config.to_str().unwrap()])
        .env_remove("IMIPSEC_STORE")
        .env_remove("IMIPSEC_CONFIG")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // Killed by PID if the test fails midway.
    let mut child = KillOnDrop(child);
    let mut stderr = BufReader::new(stderr);
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "gate exited: {seen:?}"
        );
        let listening = line.contains("gate listening");
        seen.push(line);
        if listening {
            break;
        }
    }
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
    });
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // The responder answers once: the good signer is accepted, and the answer cached.
    let responder = pki.responder(1);
    let first = lmtp_deliver(address, &pki.signed("good", "gate-1@example.com"));
    responder.wait_ended();
    // Nothing reachable for the other signer (its OCSP request is not cached, no CRL
    // server): tempfail, not a verdict.
    let unreachable = lmtp_deliver(address, &pki.signed("revoked", "gate-2@example.com"));
    // The good signer again: from the cache, with the responder gone.
    let cached = lmtp_deliver(address, &pki.signed("good", "gate-3@example.com"));
    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    let _ = child.0.wait();
    assert!(first.starts_with("250 2.0.0 delivered"), "{first}");
    assert!(unreachable.starts_with("451"), "{unreachable}");
    assert!(cached.starts_with("250 2.0.0 delivered"), "{cached}");
    assert!(
        dir.path().join("revocation-cache").is_dir(),
        "the gate's default cache is beside its store"
    );
}
