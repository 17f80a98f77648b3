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
    Decide, DecideError, Envelope, EventState, Gate, GateConfig, GateVerdict, ItipSummary, Judged,
    LmtpConfig, MilterConfig, Outcome, Reason as GateReason, RejectAction, SmimeResult,
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

/// The OpenPGP certificate and key of the fuzz targets (fuzz/keys/generate.sh): the walk
/// verifies PGP/MIME signatures against it and decrypts PGP/MIME with it.
static OPENPGP: LazyLock<imipsec_smime::openpgp::Keyring> = LazyLock::new(|| {
    use imipsec_smime::openpgp::{Certificates, Identity, Keyring};
    Keyring {
        certificates: Certificates::from_bytes(include_bytes!("../keys/openpgp.cert"))
            .expect("fuzz/keys/openpgp.cert"),
        identities: vec![
            Identity::from_bytes(include_bytes!("../keys/openpgp.key"), None)
                .expect("fuzz/keys/openpgp.key"),
        ],
    }
});

fn inspect_options() -> InspectOptions<'static> {
    static POLICY: LazyLock<AlgorithmPolicy> = LazyLock::new(AlgorithmPolicy::default);
    static LIMITS: LazyLock<Limits> = LazyLock::new(Limits::default);
    InspectOptions {
        trust: &TRUST,
        at: AT,
        revocation: imipsec_smime::RevocationMode::default(),
        revocation_source: None,
        policy: &POLICY,
        identities: &IDENTITIES,
        limits: &LIMITS,
        danger_decrypt_non_root: false,
        openpgp: Some(&OPENPGP),
    }
}

/// `rest` after a two-byte big-endian length: (that many bytes, the rest).
fn split_length_prefixed(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let (length, rest) = rest.split_first_chunk::<2>()?;
    let length = usize::from(u16::from_be_bytes(*length)).min(rest.len());
    Some(rest.split_at(length))
}

/// The OpenPGP layer on arbitrary bytes (issue #18). Byte 0 chooses:
/// - 0: a detached signature (`rest` after a two-byte content length: content, then the
///   armored signature) verified against the fuzz certificate; a verified result names a
///   signer;
/// - 1: an armored encrypted message decrypted with the fuzz key; plaintext stays within its
///   limit, and verified inner signatures name a signer;
/// - 2: certificates parsed from `rest`, then a signature by the fuzz key checked against them;
/// - 3: round trip: `rest` signed with the fuzz key at the evaluation time verifies against the
///   fuzz certificate and names fuzz@example.com.
pub fn openpgp(data: &[u8]) {
    use imipsec_smime::openpgp::{
        Certificates, Limits as PgpLimits, Policy, decrypt, sign_detached, verify_detached,
    };
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let policy = Policy::default();
    let limits = PgpLimits::default();
    let keyring = &*OPENPGP;
    match mode % 4 {
        0 => {
            let Some((content, signature)) = split_length_prefixed(rest) else {
                return;
            };
            if let Ok(keys) = verify_detached(
                signature,
                content,
                Some("pgp-sha256"),
                &keyring.certificates,
                AT,
                &policy,
                &limits,
            ) {
                assert!(!keys.is_empty(), "a verified signature without a signer");
            }
        }
        1 => {
            if let Ok(decrypted) = decrypt(
                rest,
                &keyring.identities,
                &keyring.certificates,
                AT,
                &policy,
                &limits,
            ) {
                assert!(decrypted.plaintext.len() <= limits.plaintext_bytes);
                if let Some(Ok(keys)) = decrypted.signatures {
                    assert!(
                        !keys.is_empty(),
                        "verified inner signatures without a signer"
                    );
                }
            }
        }
        2 => {
            let Ok(certificates) = Certificates::from_bytes(rest) else {
                return;
            };
            if let Ok((signature, micalg)) =
                sign_detached(b"content", &keyring.identities[0], AT, &policy)
            {
                let _ = verify_detached(
                    signature.as_bytes(),
                    b"content",
                    Some(micalg),
                    &certificates,
                    AT,
                    &policy,
                    &limits,
                );
            }
        }
        _ => {
            let (signature, micalg) = sign_detached(rest, &keyring.identities[0], AT, &policy)
                .expect("the fuzz key signs at the evaluation time");
            let keys = verify_detached(
                signature.as_bytes(),
                rest,
                Some(micalg),
                &keyring.certificates,
                AT,
                &policy,
                &limits,
            )
            .expect("a signature made by the fuzz key verifies");
            assert_eq!(keys[0].emails(), ["fuzz@example.com"]);
        }
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
    for leaf in inspection.leaves() {
        if let Some(range) = &leaf.body_range() {
            assert!(
                range.start <= range.end && range.end <= data.len(),
                "a leaf body range outside the message: {range:?} of {}",
                data.len()
            );
        }
        for &layer in leaf.enclosing() {
            assert!(
                layer < inspection.layers().len(),
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

/// The VTIMEZONE evaluator on what the parser kept: a zoned RECURRENCE-ID that resolved keys
/// a UTC instant that keys itself; every zone's TZID resolves (or is refused) at local times
/// around transitions and at the ends of the calendar without panicking. Bounded: at most 8
/// zones, 2 TZIDs each, 6 local times.
fn recurrence_keys_and_timezones(message: &imipsec_itip::ItipMessage) {
    use imipsec_types::{DateTime, RecurrenceKey, TimeZones, resolve_local_time};
    for component in &message.components {
        if let Some(recurrence) = &component.recurrence_id
            && recurrence.tzid.is_some()
            && let Ok(key) = recurrence.key()
        {
            assert!(key.as_str().ends_with('Z'), "zoned key not UTC: {key}");
            assert_eq!(
                RecurrenceKey::new(key.as_str(), None, &TimeZones::default()).as_ref(),
                Ok(&key),
                "a resolved key is not its own canonical UTC form"
            );
        }
    }
    const LOCAL_TIMES: [&str; 6] = [
        "00000101T000000",
        "16010101T030000",
        "20260329T023000",
        "20261025T023000",
        "20261101T013000",
        "99991231T235959",
    ];
    for zone in message.timezones.iter().take(8) {
        for tzid in zone.tzids.iter().take(2) {
            for local in LOCAL_TIMES {
                let Ok(local) = DateTime::parse_date_time(local) else {
                    continue;
                };
                if let Ok(instant) = resolve_local_time(&message.timezones, tzid, &local) {
                    // Offsets are under 24 hours: the instant is within a day of the local time.
                    let shift = instant.unix_seconds() - local_as_utc(&local);
                    assert!(shift.abs() < 86_400, "offset of {shift} s");
                }
            }
        }
    }
}

/// The local time's digits read as UTC, in seconds.
fn local_as_utc(local: &imipsec_types::DateTime) -> i64 {
    let utc = format!("{}Z", local.canonical());
    imipsec_types::Timestamp::parse_icalendar_utc(&utc).map_or(0, |t| t.unix_seconds())
}

/// iCalendar parsing, validation and correlation: `parse_itip`, `diagnose`, `correlate`.
///
/// Input: byte 0 chooses the Content-Type parameters and strictness, the rest is the
/// calendar. Invariants: `parse_itip` succeeds exactly when `diagnose` finds no error;
/// correlation's verdict is consistent (`is_authorized` iff no failure); a zoned RECURRENCE-ID that
/// resolved keys its own UTC instant, and the VTIMEZONE evaluator never panics (see
/// `recurrence_keys_and_timezones`).
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
    recurrence_keys_and_timezones(&message);
    // Sign as every address the message names, and as a stranger.
    let mut signers: Vec<String> = vec!["mallory@example.net".to_owned()];
    for component in &message.components {
        if let Some(organizer) = &component.organizer {
            signers.extend(organizer.address.addr_spec.clone().map(String::from));
            let sent_by = organizer.sent_by.as_ref();
            signers.extend(sent_by.and_then(|a| a.addr_spec.clone()).map(String::from));
        }
        for attendee in &component.attendees {
            signers.extend(attendee.address.addr_spec.clone().map(String::from));
            let sent_by = attendee.sent_by.as_ref();
            signers.extend(sent_by.and_then(|a| a.addr_spec.clone()).map(String::from));
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
        assert_eq!(verdict.is_accept(), verdict.reasons().is_empty());
        serde_json::to_string(&verdict).expect("a verdict serialises");
        if verdict.is_accept() {
            let unauthorised =
                imipsec_smime::calendar::unauthorised_calendars(data, verdict.calendar_ranges());
            assert!(
                unauthorised.is_empty(),
                "accepted, but mail-parser finds calendar data the verdict did not evaluate: \
                 {unauthorised:?} (evaluated: {:?})",
                verdict.calendar_ranges()
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
        verdict.reasons()
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
                .leaves()
                .iter()
                .any(|leaf| leaf.calendar().is_some() && !leaf.body().is_empty()),
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
    fn checks_event_state(&self) -> bool {
        true
    }

    fn decide(
        &self,
        message: &[u8],
        _envelope: &Envelope,
        recipients: &[String],
        _at: OffsetDateTime,
    ) -> Vec<Result<Judged, DecideError>> {
        recipients
            .iter()
            .map(|_| self.decide_one(message).map(Judged::from))
            .collect()
    }
}

impl LengthEngine {
    fn decide_one(&self, message: &[u8]) -> Result<GateVerdict, DecideError> {
        let verdict = |outcome, smime| GateVerdict {
            outcome,
            reasons: vec![GateReason {
                code: imipsec_pipeline::Reason::SignerNotCorrelated,
                detail: "length-driven".to_owned(),
            }],
            smime,
            signer: Some("organizer@example.com".to_owned()),
            openpgp: None,
            itip: vec![ItipSummary {
                method: "REQUEST".to_owned(),
                role: "organizer".to_owned(),
                delegation: None,
            }],
            event_state: if message.len() % 8 < 4 {
                EventState::Checked
            } else {
                EventState::NotChecked
            },
        };
        match message.len() % 5 {
            0 => Ok(verdict(Outcome::Accept, SmimeResult::Pass)),
            1 => Ok(verdict(Outcome::Reject, SmimeResult::Fail)),
            2 => Ok(verdict(Outcome::NotCalendar, SmimeResult::None)),
            3 => Ok(verdict(Outcome::NotDecrypted, SmimeResult::None)),
            _ => Err(DecideError::StoreBusy),
        }
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
                // Invariant (issue #11 item 9): whatever the client sent, the gate hands the
                // backend only CRLF lines, with no bare LF or CR (SMTP smuggling).
                assert!(
                    line.strip_suffix(b"\r\n").is_some_and(
                        |content| !content.contains(&b'\r') && !content.contains(&b'\n')
                    ),
                    "the gate sent the LMTP backend a line with a bare LF or CR: {line:?}"
                );
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
            authserv_id: Some("mx.example.org".to_owned()),
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

/// Full text versus projection: for any calendar text `parse_itip` accepts, calcard (the
/// parser of the Stalwart server) reading the whole text as received agrees with the model
/// (the projection the decision is made on) on every decision field. The oracle is written
/// here against calcard's public API, independently of the crate's own cross-check.
///
/// Input: byte 0 chooses the method parameter (as in [`itip`]), the rest is the calendar.
/// Invariants, checked on calcard's tree:
/// - METHOD is the model's;
/// - the scheduling components (VEVENT, VTODO, VJOURNAL, VFREEBUSY) are exactly the
///   model's components, all children of the VCALENDAR (none nested anywhere else),
///   with the same UID, RECURRENCE-ID, SEQUENCE, ORGANIZER (value and SENT-BY) and
///   ATTENDEEs (value, PARTSTAT, SENT-BY, DELEGATED-TO/FROM), in order;
/// - no ORGANIZER, METHOD or RECURRENCE-ID anywhere else, and ATTENDEE only in VALARMs.
pub fn itip_full_text(data: &[u8]) {
    use calcard::common::IanaString;
    use calcard::icalendar::{
        ICalendar, ICalendarComponentType, ICalendarEntry, ICalendarParameterName,
        ICalendarParameterValue, ICalendarProperty, ICalendarValue, Uri,
    };
    let Some((&selector, ics)) = data.split_first() else {
        return;
    };
    const METHODS: [&str; 8] = [
        "REQUEST",
        "REPLY",
        "CANCEL",
        "PUBLISH",
        "COUNTER",
        "REFRESH",
        "DECLINECOUNTER",
        "ADD",
    ];
    let method = METHODS.get(usize::from(selector & 7)).copied();
    let mime = MimeParams {
        method,
        charset: Some("UTF-8"),
        component: None,
    };
    let Ok(message) = parse_itip(ics, &mime, &ParseOptions::default()) else {
        return;
    };
    let text = std::str::from_utf8(ics).expect("an accepted calendar is UTF-8 as a whole");
    let calendar = match ICalendar::parse(text) {
        Ok(calendar) => calendar,
        Err(entry) => panic!("accepted, but calcard reads no calendar: {entry:?}"),
    };
    let value_text = |entry: &ICalendarEntry| -> Option<String> {
        match entry.values.as_slice() {
            [ICalendarValue::Text(t)] => Some(t.clone()),
            [ICalendarValue::Uri(Uri::Location(l))] => Some(l.clone()),
            [ICalendarValue::Method(m)] => Some(m.as_str().to_owned()),
            [ICalendarValue::Integer(n)] => Some(n.to_string()),
            [ICalendarValue::PartialDateTime(dt)] => Some(format!(
                "{:04}{:02}{:02}{}",
                dt.year.unwrap_or_default(),
                dt.month.unwrap_or_default(),
                dt.day.unwrap_or_default(),
                match (dt.hour, dt.minute, dt.second) {
                    (Some(h), Some(m), Some(s)) => format!(
                        "T{h:02}{m:02}{s:02}{}",
                        if dt.tz_hour.is_some() { "Z" } else { "" }
                    ),
                    _ => String::new(),
                }
            )),
            _ => None,
        }
    };
    let params = |entry: &ICalendarEntry, name: ICalendarParameterName| -> Vec<String> {
        entry
            .params
            .iter()
            .filter(|p| p.name == name)
            .map(|p| match &p.value {
                ICalendarParameterValue::Text(t) => t.clone(),
                ICalendarParameterValue::Uri(Uri::Location(l)) => l.clone(),
                ICalendarParameterValue::Partstat(s) => s.as_str().to_owned(),
                other => format!("{other:?}"),
            })
            .collect()
    };
    let is_scheduling = |t: &ICalendarComponentType| {
        matches!(
            t,
            ICalendarComponentType::VEvent
                | ICalendarComponentType::VTodo
                | ICalendarComponentType::VJournal
                | ICalendarComponentType::VFreebusy
        )
    };
    let root = calendar.components.first().expect("calcard has a root");
    // Where calcard sees scheduling components and party properties.
    let mut scheduling = Vec::new();
    for (index, component) in calendar.components.iter().enumerate() {
        let top_level = root
            .component_ids
            .iter()
            .any(|&id| usize::try_from(id).is_ok_and(|id| id == index));
        if is_scheduling(&component.component_type) {
            assert!(
                top_level,
                "calcard sees a nested {:?}",
                component.component_type
            );
            scheduling.push(component);
            continue;
        }
        for entry in &component.entries {
            let allowed = match &entry.name {
                ICalendarProperty::Method => index == 0,
                ICalendarProperty::Organizer | ICalendarProperty::RecurrenceId => false,
                ICalendarProperty::Attendee => {
                    component.component_type == ICalendarComponentType::VAlarm
                }
                _ => true,
            };
            assert!(
                allowed,
                "calcard sees {:?} in {:?}",
                entry.name, component.component_type
            );
        }
    }
    let method = root
        .entries
        .iter()
        .find(|e| e.name == ICalendarProperty::Method)
        .and_then(value_text);
    assert!(
        method
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case(message.method.as_str())),
        "METHOD {method:?} to calcard, {} to the model",
        message.method
    );
    let ours: Vec<_> = message.components.iter().collect();
    assert_eq!(
        scheduling.len(),
        ours.len(),
        "calcard sees {} scheduling components, the model {}",
        scheduling.len(),
        ours.len()
    );
    for (theirs, ours) in scheduling.iter().zip(ours) {
        assert!(
            theirs
                .component_type
                .as_str()
                .eq_ignore_ascii_case(message.kind.as_str()),
            "component type"
        );
        let all = |property: ICalendarProperty| -> Vec<&ICalendarEntry> {
            theirs
                .entries
                .iter()
                .filter(|e| e.name == property)
                .collect()
        };
        let first = |property: ICalendarProperty| all(property).first().and_then(|e| value_text(e));
        assert_eq!(first(ICalendarProperty::Uid), ours.uid, "UID");
        assert_eq!(
            first(ICalendarProperty::RecurrenceId),
            ours.recurrence_id.as_ref().map(|r| r.value.clone()),
            "RECURRENCE-ID"
        );
        assert_eq!(
            first(ICalendarProperty::Sequence).and_then(|s| s.parse::<u32>().ok()),
            ours.sequence,
            "SEQUENCE"
        );
        let organizer = all(ICalendarProperty::Organizer);
        assert_eq!(
            organizer.first().and_then(|e| value_text(e)),
            ours.organizer.as_ref().map(|o| o.address.text.clone()),
            "ORGANIZER"
        );
        if let (Some(entry), Some(o)) = (organizer.first(), &ours.organizer) {
            assert_eq!(
                params(entry, ICalendarParameterName::SentBy),
                o.sent_by.iter().map(|a| a.text.clone()).collect::<Vec<_>>(),
                "ORGANIZER SENT-BY"
            );
        }
        let attendees = all(ICalendarProperty::Attendee);
        assert_eq!(attendees.len(), ours.attendees.len(), "ATTENDEE count");
        for (entry, a) in attendees.iter().zip(&ours.attendees) {
            assert_eq!(value_text(entry), Some(a.address.text.clone()), "ATTENDEE");
            assert_eq!(
                params(entry, ICalendarParameterName::SentBy),
                a.sent_by.iter().map(|s| s.text.clone()).collect::<Vec<_>>(),
                "ATTENDEE SENT-BY"
            );
            assert_eq!(
                params(entry, ICalendarParameterName::DelegatedTo),
                a.delegated_to
                    .iter()
                    .map(|s| s.text.clone())
                    .collect::<Vec<_>>(),
                "DELEGATED-TO"
            );
            assert_eq!(
                params(entry, ICalendarParameterName::DelegatedFrom),
                a.delegated_from
                    .iter()
                    .map(|s| s.text.clone())
                    .collect::<Vec<_>>(),
                "DELEGATED-FROM"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Structure-aware CMS mutation (issue #11): random bytes rarely get past the DER reader to the
// fields a verifier compares, so this target starts from valid SignedData, mutates chosen
// fields of its TLV tree and re-encodes it with correct DER lengths.

/// A DER TLV tree node. The seeds are OpenSSL's DER: one-byte tags, definite lengths.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    /// A primitive value: tag and contents octets.
    Primitive(u8, Vec<u8>),
    /// A constructed value: tag and children.
    Constructed(u8, Vec<Node>),
}

impl Node {
    fn tag(&self) -> u8 {
        match self {
            Node::Primitive(tag, _) | Node::Constructed(tag, _) => *tag,
        }
    }

    /// Parse one DER TLV tree from the start of `bytes`; `None` for anything else.
    fn parse(bytes: &[u8], depth: usize) -> Option<(Node, &[u8])> {
        let (&tag, rest) = bytes.split_first()?;
        if tag & 0x1f == 0x1f || depth > 64 {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let length = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return None;
            }
            let (octets, after) = rest.split_at_checked(count)?;
            rest = after;
            octets
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        let (mut content, after) = rest.split_at_checked(length)?;
        if tag & 0x20 == 0 {
            return Some((Node::Primitive(tag, content.to_vec()), after));
        }
        let mut children = Vec::new();
        while !content.is_empty() {
            let (child, remaining) = Node::parse(content, depth + 1)?;
            children.push(child);
            content = remaining;
        }
        Some((Node::Constructed(tag, children), after))
    }

    /// DER encoding with the lengths recomputed.
    fn encode(&self, out: &mut Vec<u8>) {
        let (tag, content) = match self {
            Node::Primitive(tag, content) => (*tag, content.clone()),
            Node::Constructed(tag, children) => {
                let mut content = Vec::new();
                for child in children {
                    child.encode(&mut content);
                }
                (*tag, content)
            }
        };
        out.push(tag);
        let length = content.len();
        if length < 0x80 {
            out.push(length as u8);
        } else {
            let octets: Vec<u8> = length
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            out.push(0x80 | octets.len() as u8);
            out.extend_from_slice(&octets);
        }
        out.extend_from_slice(&content);
    }

    fn at(&mut self, path: &[usize]) -> Option<&mut Node> {
        let Some((&first, rest)) = path.split_first() else {
            return Some(self);
        };
        match self {
            Node::Constructed(_, children) => children.get_mut(first)?.at(rest),
            Node::Primitive(..) => None,
        }
    }

    /// Paths of every node in pre-order. The children of a `[0]` certificates field (the
    /// fourth element of SignedData) are only descended into when `into_certificates`:
    /// without that, the certificates' hundreds of nodes would take most picks.
    fn paths(&self, path: &mut Vec<usize>, into_certificates: bool, out: &mut Vec<Vec<usize>>) {
        out.push(path.clone());
        if let Node::Constructed(tag, children) = self {
            // ContentInfo [1] = [0] EXPLICIT, its [0] = SignedData, whose [3] may be certs.
            let is_certificates = *tag == 0xa0 && path.len() == 3 && path[..2] == [1, 0];
            for (index, child) in children.iter().enumerate() {
                path.push(index);
                if is_certificates && !into_certificates {
                    out.push(path.clone());
                } else {
                    child.paths(path, into_certificates, out);
                }
                path.pop();
            }
        }
    }

    /// The normal form under which two SignedData are "unmodified-equivalent": what RFC 5652
    /// leaves unsigned and free, so that changing it changes nothing a verifier decides:
    /// the `certificates` and `crls` bags (the signer certificate and its identity are
    /// compared separately); the `digestAlgorithms` set (any
    /// number of elements, §5.1; the verifier requires the signer's to be among them); a
    /// SignerInfo's `unsignedAttrs` (§5.3, not interpreted beyond refusing contentType,
    /// messageDigest and signingTime there); an absent versus NULL AlgorithmIdentifier
    /// parameter; and a signatureAlgorithm written as the key's algorithm (rsaEncryption,
    /// id-ecPublicKey) or as the combined one (sha256WithRSAEncryption, ecdsa-with-SHA256),
    /// which RFC 5754 §3 both allows.
    fn normalized(&self, path: &mut Vec<usize>) -> Node {
        match self {
            Node::Primitive(0x06, oid) => Node::Primitive(0x06, oid_alias(oid)),
            Node::Primitive(..) => self.clone(),
            Node::Constructed(tag, children) => {
                let mut out: Vec<Node> = children
                    .iter()
                    .enumerate()
                    .map(|(index, child)| {
                        path.push(index);
                        let child = child.normalized(path);
                        path.pop();
                        child
                    })
                    .collect();
                let in_signed_data = path.len() >= 3 && path[..2] == [1, 0];
                // certificates [0] and crls [1]: a bag the sender may fill with more or fewer
                // certificates than needed (RFC 5652 §5.1); trust comes from path validation,
                // and the signer is compared separately (see `cms_structure`).
                if (*tag == 0xa0 || *tag == 0xa1) && path.len() == 3 && in_signed_data {
                    out.clear();
                }
                // digestAlgorithms: the second element of SignedData.
                if *tag == 0x31 && path.len() == 3 && in_signed_data && path[2] == 1 {
                    out.clear();
                }
                // A SignerInfo (in the SET that ends SignedData): drop unsignedAttrs [1].
                if *tag == 0x30 && path.len() == 4 && in_signed_data && out.len() > 5 {
                    out.retain(|child| child.tag() != 0xa1);
                }
                if *tag == 0x30
                    && out.len() == 2
                    && out[0].tag() == 0x06
                    && out[1] == Node::Primitive(0x05, Vec::new())
                {
                    out.pop();
                }
                Node::Constructed(*tag, out)
            }
        }
    }
}

/// The key algorithm a combined signature algorithm OID stands for in a SignerInfo (RFC 5754
/// §3): sha*WithRSAEncryption is rsaEncryption, ecdsa-with-SHA* is id-ecPublicKey.
fn oid_alias(oid: &[u8]) -> Vec<u8> {
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    match oid {
        [prefix @ .., last] if prefix == RSA && (11..=14).contains(last) => [RSA, &[0x01]].concat(),
        [prefix @ .., last] if prefix == ECDSA && (1..=4).contains(last) => {
            vec![0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]
        }
        _ => oid.to_vec(),
    }
}

/// Contents octets of OIDs a mutation may write (dotted form in the comment).
const MUTATION_OIDS: &[&[u8]] = &[
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01], // 1.2.840.113549.1.7.1 id-data
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02], // 1.2.840.113549.1.7.2 signedData
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03], // 1.2.840.113549.1.7.3 envelopedData
    &[
        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
    ], // id-ct-TSTInfo
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03], // contentType
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04], // messageDigest
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05], // signingTime
    &[0x2b, 0x0e, 0x03, 0x02, 0x1a],                         // 1.3.14.3.2.26 sha1
    &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01], // sha256
    &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03], // sha512
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05],       // md5
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01], // rsaEncryption
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b], // sha256WithRSAEncryption
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a], // RSASSA-PSS
    &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],       // ecdsa-with-SHA256
    &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01],             // id-ecPublicKey
    &[0x2b, 0x65, 0x70],                                     // 1.3.101.112 Ed25519
];

/// The valid SignedData the structure target mutates: (DER, detached content), detached
/// and opaque, signed by the test organizer (RSA and P-256) with the intermediate included.
static CMS_SEEDS: LazyLock<Vec<(Vec<u8>, Option<Vec<u8>>)>> = LazyLock::new(|| {
    use openssl::cms::{CMSOptions, CmsContentInfo};
    use openssl::pkey::PKey;
    use openssl::stack::Stack;
    use openssl::x509::X509;
    let read = |name: &str| std::fs::read(certs().join(name)).expect("test PKI file");
    let intermediate = X509::from_pem(&read("intermediate.cert.pem")).expect("intermediate");
    let content = b"Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n\
BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//fuzz//EN\r\nMETHOD:REQUEST\r\n\
BEGIN:VEVENT\r\nUID:fuzz-structure@example.com\r\nDTSTAMP:20260601T000000Z\r\n\
ORGANIZER:mailto:organizer@example.com\r\nDTSTART:20260615T100000Z\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n"
        .to_vec();
    let mut seeds = Vec::new();
    for signer in ["rsa2048/organizer", "p256/organizer"] {
        let cert = X509::from_pem(&read(&format!("{signer}.cert.pem"))).expect("signer cert");
        let key = PKey::private_key_from_pem(&read(&format!("{signer}.key.pem"))).expect("key");
        let mut chain = Stack::new().expect("stack");
        chain.push(intermediate.clone()).expect("push");
        for detached in [true, false] {
            let mut flags = CMSOptions::BINARY;
            if detached {
                flags |= CMSOptions::DETACHED;
            }
            let cms =
                CmsContentInfo::sign(Some(&cert), Some(&key), Some(&chain), Some(&content), flags)
                    .expect("the test organizer signs");
            let der = cms.to_der().expect("DER");
            // The seed itself must verify, or the target would check nothing.
            imipsec_smime::verify_signed_data(
                &der,
                detached.then_some(content.as_slice()),
                &TRUST,
                AT,
                &AlgorithmPolicy::default(),
                &Limits::default(),
            )
            .expect("the unmodified seed verifies");
            seeds.push((der, detached.then(|| content.clone())));
        }
    }
    seeds
});

/// Structure-aware CMS verification: one of four valid SignedData (RSA / P-256, detached /
/// opaque) is parsed into its TLV tree, mutated by up to 8 operations the input chooses, and
/// re-encoded with correct DER lengths, then verified.
///
/// Input: byte 0 picks the seed; then 4 bytes per operation: `op` (bit 7: also pick nodes
/// inside the certificates), a 16-bit node index (modulo the number of nodes), `arg`.
/// Operations (op & 7): 0 resize a primitive to `arg` octets (keep a prefix, pad with `arg`),
/// 1 write an OID from [`MUTATION_OIDS`] (or `arg` itself), 2 set an INTEGER to `arg` (or to
/// 0x00 `arg`, or empty), 3 XOR one contents octet, 4 swap a node with its next sibling,
/// 5 duplicate a node, 6 drop a node, 7 retag a node (`arg`, keeping primitive/constructed).
///
/// Invariants: no panic (libFuzzer's); a SignedData that verifies is unmodified-equivalent to
/// its seed ([`Node::normalized`]): whatever else changed was noticed.
pub fn cms_structure(data: &[u8]) {
    let Some((&pick, ops)) = data.split_first() else {
        return;
    };
    let seeds = &*CMS_SEEDS;
    let (seed_der, detached) = &seeds[usize::from(pick) % seeds.len()];
    let Some((original, _)) = Node::parse(seed_der, 0) else {
        panic!("the seed parses as a DER tree");
    };
    let mut tree = original.clone();
    for op in ops.chunks_exact(4).take(8) {
        let (kind, index, arg) = (
            op[0],
            usize::from(u16::from_be_bytes([op[1], op[2]])),
            op[3],
        );
        let mut paths = Vec::new();
        tree.paths(&mut Vec::new(), kind & 0x80 != 0, &mut paths);
        let path = paths[index % paths.len()].clone();
        mutate(&mut tree, &path, kind & 7, arg);
    }
    let mut der = Vec::new();
    tree.encode(&mut der);
    let verified = imipsec_smime::verify_signed_data(
        &der,
        detached.as_deref(),
        &TRUST,
        AT,
        &AlgorithmPolicy::default(),
        &Limits::default(),
    );
    if let Ok(signers) = verified {
        assert!(
            !signers.is_empty(),
            "a verified SignedData without a signer"
        );
        for signer in &signers {
            assert!(
                signer
                    .emails()
                    .iter()
                    .map(|email| email.display())
                    .eq(["organizer@example.com"]),
                "a mutated SignedData verifies as someone else: {:?}",
                signer.emails()
            );
        }
        assert!(
            tree.normalized(&mut Vec::new()) == original.normalized(&mut Vec::new()),
            "a modified SignedData verifies: {} bytes from a {}-byte seed, operations {:02x?}",
            der.len(),
            seed_der.len(),
            ops
        );
    }
}

fn mutate(tree: &mut Node, path: &[usize], kind: u8, arg: u8) {
    let Some(node) = tree.at(path) else {
        return;
    };
    match (kind, node) {
        (0, Node::Primitive(_, content)) => content.resize(usize::from(arg), arg),
        (1, Node::Primitive(_, content)) => {
            *content = match MUTATION_OIDS.get(usize::from(arg) % (MUTATION_OIDS.len() + 1)) {
                Some(oid) => oid.to_vec(),
                None => vec![arg],
            }
        }
        (2, Node::Primitive(_, content)) => {
            *content = match arg % 3 {
                0 => vec![arg >> 2],
                1 => vec![0x00, arg],
                _ => Vec::new(),
            }
        }
        (3, Node::Primitive(_, content)) if !content.is_empty() => {
            let at = usize::from(arg) % content.len();
            content[at] ^= arg | 1;
        }
        (7, Node::Primitive(tag, _)) => *tag = arg & !0x20,
        (7, Node::Constructed(tag, _)) => *tag = arg | 0x20,
        (4..=6, _) => {
            // Sibling operations act on the parent.
            let Some((&last, parent_path)) = path.split_last() else {
                return;
            };
            let Some(Node::Constructed(_, siblings)) = tree.at(parent_path) else {
                return;
            };
            match kind {
                4 if last + 1 < siblings.len() => siblings.swap(last, last + 1),
                5 if siblings.len() < 64 => {
                    let copy = siblings[last].clone();
                    siblings.insert(last, copy);
                }
                6 => {
                    siblings.remove(last);
                }
                _ => {}
            }
        }
        _ => {}
    }
}
