//! The bodies of imipsec's fuzz targets, with the fixtures they share (the test PKI in
//! `certs/` at its evaluation time, certs/README.md). Each `fuzz_targets/*.rs` is one line
//! calling a function here, so the targets read like rustls' `fuzz/fuzzers/*.rs`.
//!
//! Beyond "no panic, no hang, no unbounded allocation" (libFuzzer's own checks), each target
//! asserts the invariants a security gate relies on; a failed assertion is a finding.
//! Fixture loading uses `expect`: the fixtures are this repository's files, not input, and a
//! missing one must stop the run loudly.
#![forbid(unsafe_code)]
#![allow(clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use imipsec_gate::{
    Decide, DecideError, Envelope, Gate, GateConfig, GateVerdict, ItipSummary, LmtpConfig,
    MilterConfig, Outcome, Reason as GateReason, RejectAction, SmimeResult,
};
use imipsec_itip::{
    CorrelateOptions, DelegationPolicy, DelegationQuery, DenyAllDelegations, Diagnostic,
    MimeParams, ParseOptions, correlate, diagnose, parse_itip,
};
use imipsec_pipeline::policy::SqliteStore;
use imipsec_pipeline::{Evaluation, Pipeline, Settings};
use imipsec_smime::keys::Identity;
use imipsec_smime::sign::{SignOptions, sign_detached};
use imipsec_smime::{AlgorithmPolicy, InspectOptions, Limits, TrustStore, inspect};
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The evaluation time of the test PKI (certs/README.md).
pub const AT: OffsetDateTime = datetime!(2026-06-01 00:00:00 UTC);

fn certs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../certs")
}

fn trust_store() -> TrustStore {
    TrustStore::from_pem_files(
        &[certs().join("root.cert.pem")],
        &[certs().join("intermediate.crl.pem")],
    )
    .expect("certs/root.cert.pem and certs/intermediate.crl.pem load")
}

fn identity(name: &str) -> Identity {
    let mut pem = std::fs::read(certs().join(format!("{name}.key.pem"))).expect("test key");
    pem.extend(std::fs::read(certs().join(format!("{name}.chain.pem"))).expect("test chain"));
    Identity::from_pem(&pem).expect("test identity parses")
}

static TRUST: LazyLock<TrustStore> = LazyLock::new(trust_store);

/// Decryption identities: the recipients of the seed messages, so encrypted inputs reach
/// the decryption path and the walk of decrypted content.
static IDENTITIES: LazyLock<Vec<Identity>> = LazyLock::new(|| {
    vec![
        identity("rsa2048/attendee"),
        identity("p256/attendee"),
        identity("rsa2048/organizer"),
    ]
});

static PIPELINE: LazyLock<Pipeline> = LazyLock::new(|| {
    let mut settings = Settings::new(trust_store());
    settings.identities = IDENTITIES.clone();
    Pipeline::new(settings)
});

fn inspect_options() -> InspectOptions<'static> {
    static POLICY: LazyLock<AlgorithmPolicy> = LazyLock::new(AlgorithmPolicy::default);
    static LIMITS: LazyLock<Limits> = LazyLock::new(Limits::default);
    InspectOptions {
        trust: &TRUST,
        at: AT,
        policy: &POLICY,
        identities: &IDENTITIES,
        limits: &LIMITS,
        danger_decrypt_non_root: false,
    }
}

/// The MIME walk, CMS verification and decryption of `smime::inspect` on arbitrary bytes.
///
/// Invariants: a leaf reported signed has at least one signer proof; a leaf never claims an
/// enclosing layer that does not exist; a leaf's body range lies inside the message.
pub fn mime_walk(data: &[u8]) {
    let Ok(inspection) = inspect(data, &inspect_options()) else {
        return;
    };
    for leaf in &inspection.leaves {
        if let Some(range) = &leaf.body_range {
            assert!(
                range.start <= range.end && range.end <= data.len(),
                "a leaf body range outside the message: {range:?} of {}",
                data.len()
            );
        }
        for &layer in &leaf.enclosing {
            assert!(
                layer < inspection.layers.len(),
                "leaf names a missing layer"
            );
        }
        let signers = leaf.signers(&inspection);
        if leaf.is_signed(&inspection) {
            assert!(!signers.is_empty(), "a signed leaf without a signer proof");
        }
        let _ = leaf.in_unauthenticated_encryption(&inspection);
    }
}

/// `verify_signed_data` on arbitrary DER, with and without detached content.
///
/// Input: byte 0 bit 0 chooses detached; if set, bytes 1-2 (big endian) are the length of the
/// detached content that follows, and the rest is the DER. Invariant: success names a signer.
pub fn cms_verify(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (detached, der) = if mode & 1 == 1 {
        let Some((length, rest)) = rest.split_first_chunk::<2>() else {
            return;
        };
        let length = usize::from(u16::from_be_bytes(*length)).min(rest.len());
        let (content, der) = rest.split_at(length);
        (Some(content), der)
    } else {
        (None, rest)
    };
    let options = inspect_options();
    if let Ok(signers) = imipsec_smime::verify_signed_data(
        der,
        detached,
        options.trust,
        AT,
        options.policy,
        options.limits,
    ) {
        assert!(
            !signers.is_empty(),
            "a verified SignedData without a signer"
        );
    }
}

/// A SENT-BY policy that allows everything, so the fuzzer reaches the delegation paths.
struct AllowAllDelegations;

impl DelegationPolicy for AllowAllDelegations {
    fn sent_by_allowed(
        &self,
        _query: &DelegationQuery<'_>,
    ) -> Result<bool, imipsec_itip::PolicyUnavailable> {
        Ok(true)
    }
}

/// iCalendar parsing, validation and correlation: `parse_itip`, `diagnose`, `correlate`.
///
/// Input: byte 0 chooses the Content-Type parameters and strictness, the rest is the
/// calendar. Invariants: `parse_itip` succeeds exactly when `diagnose` finds no error;
/// correlation's verdict is consistent (`is_authorized` iff no failure).
pub fn itip(data: &[u8]) {
    let Some((&selector, ics)) = data.split_first() else {
        return;
    };
    const METHODS: [Option<&str>; 8] = [
        None,
        Some("REQUEST"),
        Some("REPLY"),
        Some("CANCEL"),
        Some("PUBLISH"),
        Some("COUNTER"),
        Some("REFRESH"),
        Some("DECLINECOUNTER"),
    ];
    let method = METHODS.get(usize::from(selector & 7)).copied().flatten();
    let mime = MimeParams {
        method,
        charset: (selector & 8 == 0).then_some("UTF-8"),
        component: (selector & 16 == 16).then_some("VEVENT"),
    };
    let options = ParseOptions {
        strict: selector & 32 == 32,
        ..ParseOptions::default()
    };
    let parsed = parse_itip(ics, &mime, &options);
    let diagnostics = diagnose(ics, &mime, &options);
    let has_error = diagnostics
        .iter()
        .any(|diagnostic| matches!(diagnostic, Diagnostic::Error(_)));
    assert_eq!(
        parsed.is_ok(),
        !has_error,
        "parse_itip and diagnose disagree: {parsed:?} vs {diagnostics:?}"
    );
    let Ok(message) = parsed else {
        return;
    };
    // Sign as every address the message names, and as a stranger.
    let mut signers: Vec<String> = vec!["mallory@example.net".to_owned()];
    for component in &message.components {
        if let Some(organizer) = &component.organizer {
            signers.extend(organizer.address.addr_spec.clone());
            signers.extend(organizer.sent_by.as_ref().and_then(|a| a.addr_spec.clone()));
        }
        for attendee in &component.attendees {
            signers.extend(attendee.address.addr_spec.clone());
            signers.extend(attendee.sent_by.as_ref().and_then(|a| a.addr_spec.clone()));
        }
    }
    let signers: Vec<&str> = signers.iter().map(String::as_str).collect();
    for policy in [
        &DenyAllDelegations as &dyn DelegationPolicy,
        &AllowAllDelegations,
    ] {
        for strict_local_part in [false, true] {
            let correlation = correlate(
                &message,
                &signers,
                policy,
                &CorrelateOptions { strict_local_part },
            );
            assert_eq!(
                correlation.is_authorized(),
                correlation.failure().is_none(),
                "correlation is both authorized and failed (or neither)"
            );
        }
    }
}

/// The whole pipeline on a whole message, with a fresh in-memory store (record on accept).
///
/// Invariants: a verdict accepts exactly when it has no reason; it serialises to JSON; the
/// accept direction (issue #11): an accepted message holds no calendar data that mail-parser
/// (the calendar server's parser) finds and the verdict did not evaluate at the same bytes.
pub fn pipeline(data: &[u8]) {
    let store = SqliteStore::open_in_memory().expect("in-memory store opens");
    let ctx = Evaluation {
        at: AT,
        recipient: Some("attendee@example.com"),
        record: true,
    };
    if let Ok(verdict) = PIPELINE.evaluate(data, &ctx, Some(&store)) {
        assert_eq!(verdict.is_accept(), verdict.reasons.is_empty());
        serde_json::to_string(&verdict).expect("a verdict serialises");
        if verdict.is_accept() {
            let unauthorised =
                imipsec_smime::calendar::unauthorised_calendars(data, &verdict.calendar_ranges);
            assert!(
                unauthorised.is_empty(),
                "accepted, but mail-parser finds calendar data the verdict did not evaluate: \
                 {unauthorised:?} (evaluated: {:?})",
                verdict.calendar_ranges
            );
        }
    }
}

static ORGANIZER_RSA: LazyLock<Identity> = LazyLock::new(|| identity("rsa2048/organizer"));
static ORGANIZER_P256: LazyLock<Identity> = LazyLock::new(|| identity("p256/organizer"));

/// The round trip: sign a calendar chosen by the input, the pipeline must accept it; flip
/// one byte of the signed region (position and XOR value chosen by the input), the
/// pipeline must reject it.
///
/// Input: bytes 0-3 the position (modulo the signed region's length), byte 4 the XOR mask
/// (0 becomes 1), byte 5 bit 0 the key (RSA or P-256), the rest the SUMMARY and
/// DESCRIPTION text (mapped onto printable ASCII that needs no iCalendar escaping).
pub fn sign_verify_roundtrip(data: &[u8]) {
    let Some((header, text)) = data.split_first_chunk::<6>() else {
        return;
    };
    let position = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let mask = if header[4] == 0 { 1 } else { header[4] };
    let identity: &Identity = if header[5] & 1 == 0 {
        &ORGANIZER_RSA
    } else {
        &ORGANIZER_P256
    };
    let text: String = text
        .iter()
        .take(2000)
        .map(|&byte| {
            const ALPHABET: &[u8] =
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-_!?()/";
            char::from(ALPHABET[usize::from(byte) % ALPHABET.len()])
        })
        .collect();
    let (summary, description) = text.split_at(text.len() / 2);
    let calendar = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//fuzz//EN\r\nMETHOD:REQUEST\r\n\
         BEGIN:VEVENT\r\nUID:fuzz-roundtrip@example.com\r\nDTSTAMP:20260601T000000Z\r\n\
         ORGANIZER:mailto:organizer@example.com\r\nDTSTART:20260615T100000Z\r\n\
         SUMMARY:x{summary}\r\nDESCRIPTION:x{description}\r\nSEQUENCE:0\r\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:attendee@example.com\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    let mut entity =
        b"Content-Type: text/calendar; method=REQUEST; charset=utf-8; component=VEVENT\r\n\
Content-Transfer-Encoding: 7bit\r\n\r\n"
            .to_vec();
    entity.extend_from_slice(calendar.as_bytes());
    let options = SignOptions {
        signing_time: Some(AT),
        ..SignOptions::default()
    };
    let signed = sign_detached(&entity, identity, &options).expect("a 7-bit entity signs");
    let mut message = b"From: organizer@example.com\r\nTo: attendee@example.com\r\n\
Subject: fuzz\r\nDate: Mon, 01 Jun 2026 00:00:00 +0000\r\nMessage-ID: <fuzz@example.com>\r\n\
MIME-Version: 1.0\r\n"
        .to_vec();
    let signed_start =
        message.len() + find(&signed, &entity).expect("sign_detached places the entity verbatim");
    message.extend_from_slice(&signed);

    let ctx = Evaluation {
        at: AT,
        recipient: Some("attendee@example.com"),
        record: false,
    };
    let verdict = PIPELINE
        .evaluate(&message, &ctx, None)
        .expect("no store, no evaluation error");
    assert!(
        verdict.is_accept(),
        "a freshly signed REQUEST is rejected: {:?}",
        verdict.reasons
    );

    let offset = signed_start + position as usize % entity.len();
    let mut tampered = message;
    tampered[offset] ^= mask;
    let verdict = PIPELINE
        .evaluate(&tampered, &ctx, None)
        .expect("no store, no evaluation error");
    assert!(
        !verdict.is_accept(),
        "byte {offset} of the signed region XOR {mask:#04x} is still accepted"
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The gate's pure MIME functions: calendar detection, defusing, `Authentication-Results`
/// stripping.
///
/// Invariants: a defused message is no longer calendar mail to the gate; a message the gate
/// lets through untouched (`NotCalendar`) has no calendar leaf (by the shared definition,
/// `imipsec_smime::calendar`) for the S/MIME walk either (no parser differential that
/// smuggles a calendar past the gate; an empty leaf is left out: it carries no iTIP); after
/// stripping, no `Authentication-Results` header claims our authserv-id. The accept
/// direction, which needs a verdict, is the `pipeline` target's invariant.
pub fn gate_mime(data: &[u8]) {
    use imipsec_gate::{authres, mime};
    let class = mime::inspect(data);
    if let Some(defused) = mime::defuse(data) {
        assert_ne!(
            mime::inspect(&defused.message),
            mime::Inspection::Calendar,
            "a defused message is still calendar mail"
        );
        let _ = defused.body();
    }
    if class == mime::Inspection::NotCalendar
        && let Ok(inspection) = inspect(data, &inspect_options())
    {
        assert!(
            !inspection
                .leaves
                .iter()
                .any(|leaf| leaf.calendar.is_some() && !leaf.body.is_empty()),
            "the gate passes untouched a message whose S/MIME walk finds a calendar"
        );
    }
    let stripped = authres::strip_own(data, "mx.example.org");
    let _ = authres::claims_authserv_id(&String::from_utf8_lossy(data), "mx.example.org");
    assert!(stripped.len() <= data.len(), "stripping added bytes");
}

/// A decision engine for the protocol target: its verdict is a function of the message
/// length, so every outcome (accept, reject, not calendar, error) is reached.
struct LengthEngine;

impl Decide for LengthEngine {
    fn decide(
        &self,
        message: &[u8],
        _envelope: &Envelope,
        _recipient: &str,
        _at: OffsetDateTime,
    ) -> Result<GateVerdict, DecideError> {
        let verdict = |outcome, smime| GateVerdict {
            outcome,
            reasons: vec![GateReason {
                code: "fuzz".to_owned(),
                detail: "length-driven".to_owned(),
            }],
            smime,
            signer: Some("organizer@example.com".to_owned()),
            itip: vec![ItipSummary {
                method: "REQUEST".to_owned(),
                role: "organizer".to_owned(),
                delegation: None,
            }],
        };
        match message.len() % 4 {
            0 => Ok(verdict(Outcome::Accept, SmimeResult::Pass)),
            1 => Ok(verdict(Outcome::Reject, SmimeResult::Fail)),
            2 => Ok(verdict(Outcome::NotCalendar, SmimeResult::None)),
            _ => Err(DecideError::StoreBusy),
        }
    }

    fn record(
        &self,
        _message: &[u8],
        _envelope: &Envelope,
        _recipient: &str,
        _at: OffsetDateTime,
    ) -> Result<(), DecideError> {
        Ok(())
    }
}

/// A running gate on loopback (milter and LMTP) in front of a minimal LMTP backend.
struct GateHarness {
    runtime: tokio::runtime::Runtime,
    milter: SocketAddr,
    lmtp: SocketAddr,
}

/// A minimal LMTP server (RFC 2033): 250 to everything, 354 to DATA, one 250 per
/// recipient after the dot.
async fn lmtp_backend(listener: tokio::net::TcpListener) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = tokio::io::BufReader::new(read);
            let _ = write.write_all(b"220 backend LMTP\r\n").await;
            let mut recipients = 0usize;
            let mut in_data = false;
            let mut line = Vec::new();
            loop {
                line.clear();
                match tokio::io::AsyncBufReadExt::read_until(&mut lines, b'\n', &mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let reply: Vec<u8> = if in_data {
                    if line == b".\r\n" {
                        in_data = false;
                        let count = std::mem::take(&mut recipients).max(1);
                        b"250 2.0.0 ok\r\n".repeat(count)
                    } else {
                        continue;
                    }
                } else {
                    let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                    match verb.as_slice() {
                        b"LHLO" => b"250-backend\r\n250-PIPELINING\r\n250 8BITMIME\r\n".to_vec(),
                        b"RCPT" => {
                            recipients += 1;
                            b"250 2.1.5 ok\r\n".to_vec()
                        }
                        b"DATA" => {
                            in_data = true;
                            b"354 go\r\n".to_vec()
                        }
                        b"QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        b"RSET" => {
                            recipients = 0;
                            b"250 ok\r\n".to_vec()
                        }
                        _ => b"250 ok\r\n".to_vec(),
                    }
                };
                if write.write_all(&reply).await.is_err() {
                    break;
                }
            }
        });
    }
}

static GATE: LazyLock<GateHarness> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (milter, lmtp) = runtime.block_on(async {
        let backend = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let backend_addr = backend.local_addr().expect("backend address");
        tokio::spawn(lmtp_backend(backend));
        let loopback: SocketAddr = "127.0.0.1:0".parse().expect("loopback address");
        let mut config = GateConfig {
            authserv_id: "mx.example.org".to_owned(),
            milter: Some(MilterConfig { listen: loopback }),
            lmtp: Some(LmtpConfig {
                listen: loopback,
                backend: backend_addr,
                quarantine_address: Some("quarantine@example.org".to_owned()),
                hostname: "gate.example.org".to_owned(),
            }),
            on_reject: RejectAction::Defuse,
            ..GateConfig::default()
        };
        // Small bounds so the fuzzer reaches every limit quickly, and short timeouts so a
        // stalled session ends well inside libFuzzer's -timeout.
        config.limits.message_bytes = 64 * 1024;
        config.limits.command_line_bytes = 512;
        config.limits.milter_packet_bytes = 16 * 1024;
        config.limits.recipients = 8;
        config.limits.headers = 64;
        config.limits.idle_timeout_secs = 2;
        config.limits.line_timeout_secs = 2;
        config.limits.data_timeout_secs = 2;
        config.limits.decide_timeout_secs = 2;
        config.limits.backend_timeout_secs = 2;
        let clock: imipsec_gate::Clock = Arc::new(|| AT);
        let bound = Gate::new(config, Arc::new(LengthEngine), clock)
            .bind()
            .await
            .expect("gate binds on loopback");
        let milter = bound.milter_addr().expect("milter listener");
        let lmtp = bound.lmtp_addr().expect("LMTP listener");
        tokio::spawn(bound.serve(std::future::pending()));
        (milter, lmtp)
    });
    GateHarness {
        runtime,
        milter,
        lmtp,
    }
});

/// The milter and LMTP protocol readers of the gate, fed an arbitrary byte stream over a
/// loopback connection (their readers are not exposed as functions over bytes).
///
/// Input: byte 0 bit 0 chooses milter or LMTP; the rest is what the MTA sends, then our
/// side closes for writing. Invariants: the gate never panics (libFuzzer aborts on a panic
/// in any task), ends the session within its timeouts, and keeps accepting connections.
pub fn gate_protocols(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let harness = &*GATE;
    let address = if selector & 1 == 0 {
        harness.milter
    } else {
        harness.lmtp
    };
    harness.runtime.block_on(async {
        let mut connection = tokio::net::TcpStream::connect(address)
            .await
            .expect("the gate keeps accepting connections");
        // The gate may close early (limits, protocol errors): a failed write is its answer.
        let _ = connection.write_all(stream).await;
        let _ = connection.shutdown().await;
        let mut replies = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(8), connection.read_to_end(&mut replies))
                .await;
        assert!(read.is_ok(), "the gate did not end the session within 8 s");
    });
}
