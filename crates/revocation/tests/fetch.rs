//! The fetcher against a small HTTP server on loopback (std::net, one thread): what it
//! sends, what it refuses, its limits, and its cache. Validation of the answers is the
//! S/MIME layer's (tests/revocation in the binary run it with a real `openssl ocsp`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use imipsec_revocation::{Fetcher, Limits};
use imipsec_smime::{Fetched, RevocationSource};
use time::OffsetDateTime;
use time::macros::datetime;

/// What the server saw of one request.
#[derive(Debug, Clone, Default)]
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// A loopback HTTP/1.1 server answering every request with `respond(head, body)`.
struct Server {
    url: String,
    requests: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    /// Stops listening: the port refuses connections afterwards.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Respond = dyn Fn(&Seen, &mut TcpStream) + Send + Sync;

impl Server {
    fn start(respond: Box<Respond>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (count, log) = (Arc::clone(&requests), Arc::clone(&seen));
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        listener.set_nonblocking(true).unwrap();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                let mut stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                log.lock().unwrap().push(request.clone());
                respond(&request, &mut stream);
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            requests,
            seen,
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn ok(body: Vec<u8>) -> Self {
        Self::start(Box::new(move |_, stream| {
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            let _ = stream.write_all(&body);
        }))
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        head,
        body: buffer[head_end..].to_vec(),
    })
}

fn answer(fetched: Fetched) -> Vec<u8> {
    match fetched {
        Fetched::Answer(bytes) => bytes,
        Fetched::Unavailable(reason) => panic!("unavailable: {reason}"),
    }
}

fn unavailable(fetched: Fetched) -> String {
    match fetched {
        Fetched::Answer(bytes) => panic!("answered {} bytes", bytes.len()),
        Fetched::Unavailable(reason) => reason,
    }
}

const AT: OffsetDateTime = datetime!(2026-06-01 12:00:00 UTC);

fn fetcher(cache: Option<&std::path::Path>) -> Fetcher {
    Fetcher::new(Limits::default(), cache).unwrap()
}

/// RFC 6960 Appendix A.1: POST with `Content-Type: application/ocsp-request` and the DER
/// request as the body.
#[test]
fn ocsp_is_posted_as_application_ocsp_request() {
    let server = Server::ok(b"ocsp-answer".to_vec());
    let fetcher = fetcher(None);
    let got = answer(fetcher.ocsp(&server.url, b"\x30\x03\x02\x01\x07", AT));
    assert_eq!(got, b"ocsp-answer");
    let seen = server.seen.lock().unwrap()[0].clone();
    assert!(
        seen.head.starts_with("POST / HTTP/1.1\r\n"),
        "{}",
        seen.head
    );
    assert!(
        seen.head
            .to_ascii_lowercase()
            .contains("content-type: application/ocsp-request"),
        "{}",
        seen.head
    );
    assert_eq!(seen.body, b"\x30\x03\x02\x01\x07");
}

#[test]
fn crl_is_fetched_with_get() {
    let server = Server::ok(b"crl-bytes".to_vec());
    let got = answer(fetcher(None).crl(&format!("{}/ca.crl", server.url), AT));
    assert_eq!(got, b"crl-bytes");
    let seen = server.seen.lock().unwrap()[0].clone();
    assert!(
        seen.head.starts_with("GET /ca.crl HTTP/1.1\r\n"),
        "{}",
        seen.head
    );
}

/// RFC 5280 section 8 / issue #13: only http. A certificate naming an https, ldap or file
/// URL gets no fetch at all (not even a connection).
#[test]
fn non_http_distribution_points_are_refused_without_io() {
    let server = Server::ok(b"x".to_vec());
    let fetcher = fetcher(None);
    for url in [
        format!("https://127.0.0.1:{}/ca.crl", server.port),
        format!("ldap://127.0.0.1:{}/cn=ca", server.port),
        "file:///etc/passwd".to_owned(),
        format!("http://user@127.0.0.1:{}/", server.port),
    ] {
        let reason = unavailable(fetcher.crl(&url, AT));
        assert!(reason.contains("only http://"), "{url}: {reason}");
    }
    assert_eq!(server.requests(), 0);
}

/// A redirect (here to `file:` and to another http URL) is never followed: the fetcher
/// asks one URL, the one in the certificate.
#[test]
fn redirects_are_not_followed_to_any_scheme() {
    for location in ["file:///etc/passwd", "https://example.org/ca.crl"] {
        let target = Server::ok(b"should not be fetched".to_vec());
        let location = if location.starts_with("https") {
            format!("{}/elsewhere", target.url)
        } else {
            location.to_owned()
        };
        let redirect = Server::start(Box::new(move |_, stream| {
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\
                     Connection: close\r\n\r\n"
                )
                .as_bytes(),
            );
        }));
        let reason = unavailable(fetcher(None).crl(&redirect.url, AT));
        assert!(reason.contains("302"), "{reason}");
        assert_eq!(target.requests(), 0);
    }
}

/// A CRL larger than `Limits::crl_bytes` is cut off while reading, not after.
#[test]
fn oversized_crl_is_refused() {
    let limits = Limits {
        crl_bytes: 1000,
        ..Limits::default()
    };
    let server = Server::ok(vec![0x30; 5000]);
    let fetcher = Fetcher::new(limits, None).unwrap();
    let reason = unavailable(fetcher.crl(&server.url, AT));
    assert!(reason.contains("larger than 1000 bytes"), "{reason}");
    // The same bytes are refused as an OCSP response under its own (default 64 KiB) limit
    // only when larger: 5000 bytes pass.
    let server = Server::ok(vec![0x30; 5000]);
    let fetcher = Fetcher::new(
        Limits {
            ocsp_response_bytes: 4999,
            ..Limits::default()
        },
        None,
    )
    .unwrap();
    let reason = unavailable(fetcher.ocsp(&server.url, b"r", AT));
    assert!(reason.contains("larger than 4999 bytes"), "{reason}");
}

/// A responder that accepts the connection and then drips (or says nothing) is cut off at
/// `Limits::transfer_timeout_secs`.
#[test]
fn silent_responder_is_cut_off_by_the_transfer_timeout() {
    let server = Server::start(Box::new(|_, stream| {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
        std::thread::sleep(Duration::from_secs(2));
    }));
    let fetcher = Fetcher::new(
        Limits {
            transfer_timeout_secs: 1,
            ..Limits::default()
        },
        None,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let _ = unavailable(fetcher.crl(&server.url, AT));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn error_status_is_unavailable() {
    let server = Server::start(Box::new(|_, stream| {
        let _ = stream.write_all(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n");
    }));
    let reason = unavailable(fetcher(None).ocsp(&server.url, b"r", AT));
    assert!(reason.contains("500"), "{reason}");
}

/// Only confirmed answers are cached; a fresh cached answer is served without network; a
/// still-valid one is served when the responder is gone; an expired one never is.
#[test]
fn cache_serves_confirmed_answers_until_next_update() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::ok(b"ocsp-answer".to_vec());
    let url = server.url.clone();
    let fetcher = fetcher(Some(dir.path()));
    // Fetched but not confirmed (smime found it invalid, say): not cached.
    answer(fetcher.ocsp(&url, b"req", AT));
    answer(fetcher.ocsp(&url, b"req", AT));
    assert_eq!(server.requests(), 2);
    // Confirmed until 13:00: served from disk, no request.
    let next_update = datetime!(2026-06-01 13:00:00 UTC);
    fetcher.confirmed(&url, Some(b"req"), b"ocsp-answer", next_update);
    assert_eq!(answer(fetcher.ocsp(&url, b"req", AT)), b"ocsp-answer");
    assert_eq!(server.requests(), 2);
    // Another request to the same responder is another question.
    answer(fetcher.ocsp(&url, b"other", AT));
    assert_eq!(server.requests(), 3);

    // A new process (another fetcher on the same folder) with the responder gone.
    let port = server.port;
    drop(server);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    let later = fetcher_on(dir.path());
    assert_eq!(
        answer(later.ocsp(&url, b"req", datetime!(2026-06-01 12:59:59 UTC))),
        b"ocsp-answer"
    );
    // At nextUpdate the entry is expired: not served, and the reason says so.
    let reason = unavailable(later.ocsp(&url, b"req", next_update));
    assert!(reason.contains("expired"), "{reason}");
}

fn fetcher_on(dir: &std::path::Path) -> Fetcher {
    fetcher(Some(dir))
}

/// The CRL cache, keyed by URL alone.
#[test]
fn confirmed_crl_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::ok(b"crl".to_vec());
    let url = format!("{}/ca.crl", server.url);
    let fetcher = fetcher(Some(dir.path()));
    answer(fetcher.crl(&url, AT));
    fetcher.confirmed(&url, None, b"crl", datetime!(2026-06-02 00:00:00 UTC));
    assert_eq!(answer(fetcher.crl(&url, AT)), b"crl");
    assert_eq!(server.requests(), 1);
    // Not served as the OCSP answer of the same URL.
    answer(fetcher.ocsp(&url, b"", AT));
    assert_eq!(server.requests(), 2);
}

/// A responder that is down costs one attempt per `failure_memory_secs`, not one per
/// message (the gate's decision timeout would otherwise go to waiting on it).
#[test]
fn a_failed_url_is_not_asked_again_within_the_failure_memory() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let fetcher = fetcher(None);
    let first = unavailable(fetcher.crl(&url, AT));
    assert!(!first.contains("not asked again"), "{first}");
    let second = unavailable(fetcher.crl(&url, AT + Duration::from_secs(30)));
    assert!(second.contains("not asked again"), "{second}");
    let third = unavailable(fetcher.crl(&url, AT + Duration::from_secs(61)));
    assert!(!third.contains("not asked again"), "{third}");
}

/// A cache folder that cannot be created is an error at construction, not at the first
/// message.
#[test]
fn unusable_cache_folder_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();
    assert!(Fetcher::new(Limits::default(), Some(&file)).is_err());
    assert!(Fetcher::new(Limits::default(), Some(&file.join("below"))).is_err());
}
