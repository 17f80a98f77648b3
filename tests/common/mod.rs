//! Shared helpers for the root integration tests: the test PKI in `certs/`, running the built
//! `imipsec` binary, building calendars and messages, and signing with the `openssl cms` CLI
//! (an independent implementation, so forged and defective messages do not depend on imipsec's
//! own signer).
#![allow(
    dead_code,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The evaluation time every certificate in `certs/` is built around (see certs/README.md).
pub const AT: &str = "2026-06-01T00:00:00Z";
/// The same time as an iCalendar DTSTAMP.
pub const DTSTAMP: &str = "20260601T000000Z";

pub const ORGANIZER: &str = "organizer@example.com";
pub const ATTENDEE: &str = "attendee@example.com";
pub const DELEGATE: &str = "delegate@example.com";
pub const STRANGER: &str = "mallory@example.net";

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the test PKI, e.g. `cert("rsa2048/organizer.key.pem")`.
pub fn cert(relative: &str) -> PathBuf {
    repo().join("certs").join(relative)
}

/// The trust anchor of the test PKI.
pub fn root_ca() -> PathBuf {
    cert("root.cert.pem")
}

/// The PEM identity (key then certificate chain) of a role, written into `dir`, as
/// `imipsec sign --identity` and `imipsec verify --identity` take it.
pub fn pem_identity(dir: &Path, name: &str) -> PathBuf {
    let mut pem = std::fs::read(cert(&format!("{name}.key.pem"))).unwrap();
    pem.extend(std::fs::read(cert(&format!("{name}.chain.pem"))).unwrap());
    let path = dir.join(format!("{}.identity.pem", name.replace('/', "-")));
    std::fs::write(&path, pem).unwrap();
    path
}

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Run {
    /// Whether the child read all of standard input (false: it stopped reading early).
    pub stdin_consumed: bool,
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|error| {
            panic!(
                "stdout is not JSON ({error}): {}\nstderr: {}",
                self.stdout_text(),
                self.stderr
            )
        })
    }

    /// The reason codes of a `--json` verdict.
    pub fn reasons(&self) -> Vec<String> {
        codes(&self.json()["reasons"])
    }

    /// The warning codes of a `--json` verdict.
    pub fn warnings(&self) -> Vec<String> {
        codes(&self.json()["warnings"])
    }
}

fn codes(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item["code"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the built `imipsec` with `args`, feeding `stdin`, with no ambient configuration.
pub fn imipsec<I, S>(args: I, stdin: &[u8]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut child = Command::new(env!("CARGO_BIN_EXE_imipsec"))
        .args(args)
        .env_remove("IMIPSEC_STORE")
        .env_remove("IMIPSEC_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // A writer thread, so a child that stops reading early (a size limit) cannot deadlock us.
    let writer = std::thread::spawn(move || input.write_all(&stdin).is_ok());
    let output = child.wait_with_output().unwrap();
    let stdin_consumed = writer.join().unwrap_or(false);
    Run {
        stdin_consumed,
        status: output.status.code().unwrap_or(-1),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `imipsec gate --config CONFIG --check-config`.
pub fn check_config(config: &Path) -> Run {
    imipsec(
        [
            "gate".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            "--check-config".as_ref(),
        ],
        b"",
    )
}

/// `imipsec verify --json --at AT --trust root` plus `extra`, on `message`.
pub fn verify(message: &[u8], extra: &[&str]) -> Run {
    let root = root_ca();
    let mut args = vec![
        "verify".to_owned(),
        "--json".to_owned(),
        "--at".to_owned(),
        AT.to_owned(),
        "--trust".to_owned(),
        root.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    imipsec(args, message)
}

/// `imipsec sign --at AT --identity <identity>` plus `extra`, on `input`.
pub fn sign(input: &[u8], identity: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "sign".to_owned(),
        "--at".to_owned(),
        AT.to_owned(),
        "--identity".to_owned(),
        identity.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    imipsec(args, input)
}

/// A valid iTIP calendar for `method`, from the organizer to one attendee (RFC 5546 section 3.2
/// restriction tables), CRLF line ends.
pub fn calendar(method: &str, uid: &str, sequence: u32) -> String {
    let organizer = format!("ORGANIZER;CN=Organizer:mailto:{ORGANIZER}");
    let attendee = |partstat: &str| {
        format!("ATTENDEE;CN=Attendee;PARTSTAT={partstat};ROLE=REQ-PARTICIPANT:mailto:{ATTENDEE}")
    };
    let sequence_line = format!("SEQUENCE:{sequence}");
    let mut lines: Vec<String> = vec![
        "BEGIN:VCALENDAR".into(),
        "VERSION:2.0".into(),
        "PRODID:-//imipsec//tests//EN".into(),
        format!("METHOD:{method}"),
        "BEGIN:VEVENT".into(),
        format!("UID:{uid}"),
        format!("DTSTAMP:{DTSTAMP}"),
        organizer,
    ];
    let event = |lines: &mut Vec<String>| {
        lines.push("DTSTART:20260615T100000Z".into());
        lines.push("DTEND:20260615T110000Z".into());
        lines.push("SUMMARY:Planning meeting".into());
    };
    match method {
        "PUBLISH" => {
            event(&mut lines);
            lines.push(sequence_line);
        }
        "REQUEST" | "ADD" => {
            event(&mut lines);
            lines.push(sequence_line);
            lines.push(attendee("NEEDS-ACTION"));
        }
        "CANCEL" => {
            lines.push(sequence_line);
            lines.push(attendee("NEEDS-ACTION"));
            lines.push("STATUS:CANCELLED".into());
        }
        "REPLY" => {
            lines.push(sequence_line);
            lines.push(attendee("ACCEPTED"));
        }
        "REFRESH" => {
            lines.push(attendee("NEEDS-ACTION"));
        }
        "COUNTER" => {
            event(&mut lines);
            lines.push(sequence_line);
            lines.push(attendee("NEEDS-ACTION"));
        }
        "DECLINECOUNTER" => {
            lines.push(sequence_line);
            lines.push(attendee("NEEDS-ACTION"));
        }
        other => panic!("no template for {other}"),
    }
    lines.push("END:VEVENT".into());
    lines.push("END:VCALENDAR".into());
    let mut text = lines.join("\r\n");
    text.push_str("\r\n");
    text
}

/// Every iTIP method.
pub const METHODS: [&str; 8] = [
    "PUBLISH",
    "REQUEST",
    "REPLY",
    "ADD",
    "CANCEL",
    "REFRESH",
    "COUNTER",
    "DECLINECOUNTER",
];

/// Whether the attendee sends `method` (RFC 5546 section 1.4).
pub fn attendee_method(method: &str) -> bool {
    matches!(method, "REPLY" | "REFRESH" | "COUNTER")
}

/// A bare `text/calendar` MIME entity (headers and body, CRLF) carrying `calendar`.
pub fn calendar_entity(calendar: &str, method: &str) -> Vec<u8> {
    format!(
        "Content-Type: text/calendar; method={method}; charset=utf-8; component=VEVENT\r\n\
         Content-Transfer-Encoding: 7bit\r\n\r\n{calendar}"
    )
    .into_bytes()
}

/// Mail headers (From, To, Subject, Date, Message-ID) followed by `body`, which starts with its
/// own MIME headers.
pub fn with_headers(from: &str, to: &str, body: &[u8]) -> Vec<u8> {
    let mut message = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: test\r\nDate: Mon, 01 Jun 2026 00:00:00 +0000\r\n\
         Message-ID: <test@example.com>\r\n"
    )
    .into_bytes();
    if !body.starts_with(b"MIME-Version") {
        message.extend_from_slice(b"MIME-Version: 1.0\r\n");
    }
    message.extend_from_slice(body);
    message
}

/// Signs `entity` with `openssl cms -sign` as `identity` (a `certs/` name like
/// `rsa2048/stranger`): multipart/signed when `detached`, else application/pkcs7-mime.
/// `extra` adds openssl arguments (e.g. `["-md", "sha1"]`). Returns the S/MIME entity with
/// CRLF line ends, starting with its MIME-Version header.
pub fn openssl_sign(entity: &[u8], identity: &str, detached: bool, extra: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("entity");
    std::fs::write(&input, entity).unwrap();
    let signer = cert(&format!("{identity}.cert.pem"));
    let key = cert(&format!("{identity}.key.pem"));
    // The chain file starts with the signer's own certificate; openssl adds that one
    // itself, so pass only the issuers.
    let chain_pem = std::fs::read_to_string(cert(&format!("{identity}.chain.pem"))).unwrap();
    let marker = "-----BEGIN CERTIFICATE-----";
    let issuers = chain_pem
        .match_indices(marker)
        .nth(1)
        .map(|(index, _)| chain_pem[index..].to_owned())
        .unwrap_or_default();
    let chain = dir.path().join("issuers.pem");
    std::fs::write(&chain, issuers).unwrap();
    let mut command = Command::new("openssl");
    command
        .args(["cms", "-sign", "-binary", "-crlfeol", "-md", "sha256"])
        .arg("-in")
        .arg(&input)
        .arg("-signer")
        .arg(&signer)
        .arg("-inkey")
        .arg(&key)
        .arg("-certfile")
        .arg(&chain);
    if !detached {
        command.arg("-nodetach");
    }
    // Later -md wins, so callers can override the digest.
    command.args(extra);
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "openssl cms -sign failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Encrypts `entity` to `recipient` (a certificate path) with `openssl cms -encrypt`.
pub fn openssl_encrypt(entity: &[u8], recipient: &Path, cipher: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("entity");
    std::fs::write(&input, entity).unwrap();
    let output = Command::new("openssl")
        .args([
            "cms",
            "-encrypt",
            "-binary",
            "-crlfeol",
            &format!("-{cipher}"),
        ])
        .arg("-in")
        .arg(&input)
        .arg(recipient)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl cms -encrypt failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Checks `message` with `openssl cms -verify` against the test root at the evaluation time
/// (the cross-check that imipsec's signature is standard CMS). Returns the verified content.
pub fn openssl_verify(message: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("message");
    std::fs::write(&input, message).unwrap();
    let output = Command::new("openssl")
        // No -binary: with it, OpenSSL 3.0 misreads CRLF multipart/signed input (even its
        // own -crlfeol output fails), while text mode verifies the exact CRLF content.
        .args(["cms", "-verify", "-purpose", "smimesign"])
        .args(["-attime", "1780272000"])
        .arg("-CAfile")
        .arg(root_ca())
        .arg("-in")
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl cms -verify failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Replaces the first header line starting with `name:` (case-sensitive) by `name: value`.
pub fn replace_header(message: &[u8], name: &str, value: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(message);
    let prefix = format!("{name}:");
    let mut done = false;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive("\r\n") {
        if !done && line.starts_with(&prefix) {
            out.push_str(&format!("{name}: {value}\r\n"));
            done = true;
        } else {
            out.push_str(line);
        }
    }
    assert!(done, "no {name} header");
    out.into_bytes()
}

/// A fresh, empty policy store path inside `dir` (the file does not exist yet).
pub fn store_path(dir: &Path) -> PathBuf {
    dir.join("policy.sqlite")
}

/// One tolerated deviation family of the interoperability profile (issue #12).
pub struct DeviationFamily {
    /// What real clients write it.
    pub name: &'static str,
    pub method: &'static str,
    /// The `certs/` identity of the party that sends `method`.
    pub identity: &'static str,
    pub from: &'static str,
    pub calendar: String,
    /// What the `icalendar-deviation` detail names.
    pub property: &'static str,
    /// The reason code strict mode rejects it with.
    pub strict_reason: &'static str,
}

/// The four families of deviations real clients write (COUNTER and DECLINECOUNTER for the
/// last), each as the party that sends it writes it; `tag` makes the UIDs unique.
pub fn deviation_families(tag: &str) -> Vec<DeviationFamily> {
    let uid = |family: &str| format!("{tag}-{family}@example.com");
    vec![
        DeviationFamily {
            name: "X- name with an underscore (Outlook for Mac 2011, Lotus Notes 8.5)",
            method: "REQUEST",
            identity: "rsa2048/organizer",
            from: ORGANIZER,
            calendar: calendar("REQUEST", &uid("underscore"), 0)
                .replace("END:VEVENT", "X-ENTOURAGE_UUID:D6DE7D9C\r\nEND:VEVENT"),
            property: "X-ENTOURAGE_UUID",
            strict_reason: "malformed-icalendar",
        },
        DeviationFamily {
            name: "VALARM in a REPLY (Google Calendar, Outlook for Mac)",
            method: "REPLY",
            identity: "rsa2048/attendee",
            from: ATTENDEE,
            calendar: calendar("REPLY", &uid("alarm"), 0).replace(
                "END:VEVENT",
                "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:This is an event reminder\r\n\
                 TRIGGER:-P0DT0H10M0S\r\nEND:VALARM\r\nEND:VEVENT",
            ),
            property: "VALARM",
            strict_reason: "restriction-violation",
        },
        DeviationFamily {
            name: "REQUEST without SUMMARY (Android)",
            method: "REQUEST",
            identity: "rsa2048/organizer",
            from: ORGANIZER,
            calendar: calendar("REQUEST", &uid("summary"), 0)
                .replace("SUMMARY:Planning meeting\r\n", ""),
            property: "SUMMARY",
            strict_reason: "restriction-violation",
        },
        DeviationFamily {
            name: "COUNTER without SEQUENCE",
            method: "COUNTER",
            identity: "rsa2048/attendee",
            from: ATTENDEE,
            calendar: calendar("COUNTER", &uid("counter"), 0).replace("SEQUENCE:0\r\n", ""),
            property: "SEQUENCE",
            strict_reason: "restriction-violation",
        },
        DeviationFamily {
            name: "DECLINECOUNTER without SEQUENCE",
            method: "DECLINECOUNTER",
            identity: "rsa2048/organizer",
            from: ORGANIZER,
            calendar: calendar("DECLINECOUNTER", &uid("declinecounter"), 0)
                .replace("SEQUENCE:0\r\n", ""),
            property: "SEQUENCE",
            strict_reason: "restriction-violation",
        },
    ]
}

/// `family` signed by its sender with `openssl cms -sign` (`signed`) or not, as a message.
pub fn deviation_message(family: &DeviationFamily, signed: bool) -> Vec<u8> {
    let entity = calendar_entity(&family.calendar, family.method);
    let to = if family.from == ORGANIZER {
        ATTENDEE
    } else {
        ORGANIZER
    };
    if signed {
        with_headers(
            family.from,
            to,
            &openssl_sign(&entity, family.identity, true, &[]),
        )
    } else {
        with_headers(family.from, to, &entity)
    }
}
