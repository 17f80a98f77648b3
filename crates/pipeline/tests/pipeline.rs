//! Integration tests of the pipeline crate: ranking of reasons, unprotected calendars,
//! signature downgrade, store failures (an error, never a verdict), and recording only on
//! accept. Messages are built with the crate's own composer and the S/MIME crate's signer,
//! with the test PKI in `certs/` at its evaluation time (certs/README.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;

use imipsec_pipeline::compose::{CalendarPart, Envelope, calendar_entity, message};
use imipsec_pipeline::policy::{
    DelegationStore, EventStateStore, EventUpdate, Grant, GrantFilter, GrantId, HistoryEntry,
    NewGrant, SqliteStore, StateDecision, StateFinding, StoreError, Timestamp,
};
use imipsec_pipeline::smime::TrustStore;
use imipsec_pipeline::smime::keys::Identity;
use imipsec_pipeline::smime::sign::{SignOptions, sign_detached};
use imipsec_pipeline::{
    EvaluateError, Evaluation, Pipeline, Reason, Settings, Stores, Verdict, Warning,
};
use time::macros::datetime;

const AT: time::OffsetDateTime = datetime!(2026-06-01 00:00:00 UTC);
const ORGANIZER: &str = "organizer@example.com";
const ATTENDEE: &str = "attendee@example.com";

fn certs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../certs")
}

fn pipeline(danger_allow_unsigned: bool) -> Pipeline {
    let trust =
        TrustStore::from_pem_files(&[certs().join("root.cert.pem")], &[] as &[PathBuf]).unwrap();
    let mut settings = Settings::new(trust);
    settings.danger_allow_unsigned = danger_allow_unsigned;
    Pipeline::new(settings)
}

fn identity(name: &str) -> Identity {
    let mut pem = std::fs::read(certs().join(format!("{name}.key.pem"))).unwrap();
    pem.extend(std::fs::read(certs().join(format!("{name}.chain.pem"))).unwrap());
    Identity::from_pem(&pem).unwrap()
}

fn calendar(method: &str, uid: &str, sequence: u32) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//tests//EN\r\nMETHOD:{method}\r\n\
         BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260601T000000Z\r\n\
         ORGANIZER:mailto:{ORGANIZER}\r\nDTSTART:20260615T100000Z\r\nSUMMARY:Planning\r\n\
         SEQUENCE:{sequence}\r\nATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{ATTENDEE}\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn entity(calendar: &str) -> Vec<u8> {
    calendar_entity(&[CalendarPart {
        text: calendar.to_owned(),
        method: "REQUEST".into(),
        component: "VEVENT".into(),
        filename: "invite.ics".into(),
        description: "Invitation".into(),
    }])
    .unwrap()
}

fn wrap(entity: &[u8]) -> Vec<u8> {
    message(
        &Envelope {
            from: ORGANIZER.into(),
            to: vec![ATTENDEE.into()],
            subject: "test".into(),
            date: AT.unix_timestamp(),
            message_id: "test@example.com".into(),
        },
        entity,
    )
    .unwrap()
}

/// A REQUEST signed (detached) by `signer`.
fn signed_request(signer: &str, uid: &str, sequence: u32) -> Vec<u8> {
    let options = SignOptions {
        signing_time: Some(AT),
        ..SignOptions::default()
    };
    let signed = sign_detached(
        &entity(&calendar("REQUEST", uid, sequence)),
        &identity(signer),
        &options,
    )
    .unwrap();
    wrap(&signed)
}

fn unsigned_request(uid: &str, sequence: u32) -> Vec<u8> {
    wrap(&entity(&calendar("REQUEST", uid, sequence)))
}

fn evaluation(record: bool) -> Evaluation<'static> {
    Evaluation {
        at: AT,
        recipient: Some(ATTENDEE),
        record,
    }
}

fn codes(verdict: &Verdict) -> Vec<Reason> {
    verdict
        .reasons()
        .iter()
        .map(|finding| finding.code)
        .collect()
}

#[test]
fn signed_request_from_the_organizer_is_accepted() {
    let verdict = pipeline(false)
        .evaluate(
            &signed_request("rsa2048/organizer", "a@example.com", 0),
            &evaluation(false),
            None,
        )
        .unwrap();
    assert!(verdict.is_accept(), "{:?}", verdict.reasons());
    assert_eq!(verdict.itip().len(), 1);
    assert_eq!(verdict.itip()[0].actor.as_deref(), Some(ORGANIZER));
    assert!(!verdict.is_recorded());
}

#[test]
fn reasons_are_ranked_most_specific_first() {
    // A tampered signed part next to an unsigned calendar: the broken signature is the most
    // specific reason, the unprotected calendar comes after it.
    let options = SignOptions::default();
    let signed = sign_detached(
        b"Content-Type: text/plain\r\n\r\nSee the invitation.\r\n",
        &identity("rsa2048/organizer"),
        &options,
    )
    .unwrap();
    let signed = String::from_utf8(signed).unwrap().replacen(
        "See the invitation.",
        "See the invitatioN.",
        1,
    );
    let calendar = calendar("REQUEST", "rank@example.com", 0);
    let body = format!(
        "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n{signed}\r\n--outer\r\n\
         Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n{calendar}\r\n--outer--\r\n"
    );
    let verdict = pipeline(false)
        .evaluate(&wrap(body.as_bytes()), &evaluation(false), None)
        .unwrap();
    assert_eq!(
        codes(&verdict),
        [Reason::BadSignature, Reason::UnprotectedCalendar]
    );
    assert_eq!(verdict.primary_reason(), Some(Reason::BadSignature));
    // Verify-then-process: nothing of the calendar was evaluated.
    assert!(verdict.itip().is_empty());
}

#[test]
fn calendar_outside_the_signed_region_is_never_processed() {
    let signed = sign_detached(
        b"Content-Type: text/plain\r\n\r\nSee the invitation.\r\n",
        &identity("rsa2048/organizer"),
        &SignOptions::default(),
    )
    .unwrap();
    let signed = String::from_utf8(signed).unwrap();
    let calendar = calendar("REQUEST", "smuggle@example.com", 0);
    let body = format!(
        "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n{signed}\r\n--outer\r\n\
         Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n{calendar}\r\n--outer--\r\n"
    );
    let store = SqliteStore::open_in_memory().unwrap();
    let verdict = pipeline(true)
        .evaluate(&wrap(body.as_bytes()), &evaluation(true), Some(&store))
        .unwrap();
    assert_eq!(codes(&verdict), [Reason::UnprotectedCalendar]);
    assert!(verdict.itip().is_empty());
    assert!(
        store
            .event(ATTENDEE, "smuggle@example.com", None)
            .unwrap()
            .is_none()
    );
}

#[test]
fn record_only_on_accept() {
    let store = SqliteStore::open_in_memory().unwrap();
    let pipeline = pipeline(false);
    // Rejected (Mallory signs the organizer's REQUEST): nothing recorded.
    let verdict = pipeline
        .evaluate(
            &signed_request("rsa2048/stranger", "rec@example.com", 1),
            &evaluation(true),
            Some(&store),
        )
        .unwrap();
    assert_eq!(codes(&verdict), [Reason::SignerNotCorrelated]);
    assert!(!verdict.is_recorded());
    assert!(
        store
            .event(ATTENDEE, "rec@example.com", None)
            .unwrap()
            .is_none()
    );
    // Accepted without record: nothing recorded either.
    let message = signed_request("rsa2048/organizer", "rec@example.com", 1);
    let verdict = pipeline
        .evaluate(&message, &evaluation(false), Some(&store))
        .unwrap();
    assert!(verdict.is_accept());
    assert!(!verdict.is_recorded());
    assert!(
        store
            .event(ATTENDEE, "rec@example.com", None)
            .unwrap()
            .is_none()
    );
    // Accepted with record: recorded, and the replay is then stale.
    let verdict = pipeline
        .evaluate(&message, &evaluation(true), Some(&store))
        .unwrap();
    assert!(verdict.is_accept() && verdict.is_recorded());
    assert_eq!(
        store
            .event(ATTENDEE, "rec@example.com", None)
            .unwrap()
            .unwrap()
            .sequence,
        Some(1)
    );
    let verdict = pipeline
        .evaluate(&message, &evaluation(true), Some(&store))
        .unwrap();
    assert_eq!(codes(&verdict), [Reason::StaleSequence]);
    assert!(!verdict.is_recorded());
}

#[test]
fn unsigned_is_rejected_and_downgrade_is_rejected_even_with_danger() {
    let store = SqliteStore::open_in_memory().unwrap();
    let verdict = pipeline(false)
        .evaluate(
            &unsigned_request("down@example.com", 0),
            &evaluation(true),
            Some(&store),
        )
        .unwrap();
    assert_eq!(codes(&verdict), [Reason::Unsigned]);

    let danger = pipeline(true);
    // With danger, an unsigned first message is accepted ...
    let verdict = danger
        .evaluate(
            &unsigned_request("fresh@example.com", 0),
            &evaluation(true),
            Some(&store),
        )
        .unwrap();
    assert!(verdict.is_accept(), "{:?}", verdict.reasons());
    // ... but not an unsigned update after a signed one.
    let verdict = danger
        .evaluate(
            &signed_request("rsa2048/organizer", "down@example.com", 0),
            &evaluation(true),
            Some(&store),
        )
        .unwrap();
    assert!(verdict.is_accept() && verdict.is_recorded());
    let verdict = danger
        .evaluate(
            &unsigned_request("down@example.com", 1),
            &evaluation(true),
            Some(&store),
        )
        .unwrap();
    assert_eq!(codes(&verdict), [Reason::Unsigned]);
    assert_eq!(
        store
            .event(ATTENDEE, "down@example.com", None)
            .unwrap()
            .unwrap()
            .sequence,
        Some(0)
    );
}

/// A store whose every operation fails as if another writer held the lock.
struct BusyStore;

impl DelegationStore for BusyStore {
    fn grant(&self, _: &NewGrant) -> Result<GrantId, StoreError> {
        Err(StoreError::Busy)
    }
    fn revoke(&self, _: GrantId, _: Timestamp, _: &str, _: Option<&str>) -> Result<(), StoreError> {
        Err(StoreError::Busy)
    }
    fn revoke_matching(
        &self,
        _: &str,
        _: &str,
        _: Timestamp,
        _: &str,
    ) -> Result<usize, StoreError> {
        Err(StoreError::Busy)
    }
    fn is_allowed(
        &self,
        _: &str,
        _: &str,
        _: imipsec_pipeline::policy::Method,
        _: Timestamp,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Busy)
    }
    fn list(&self, _: &GrantFilter, _: Option<Timestamp>) -> Result<Vec<Grant>, StoreError> {
        Err(StoreError::Busy)
    }
    fn history(&self, _: Option<&str>) -> Result<Vec<HistoryEntry>, StoreError> {
        Err(StoreError::Busy)
    }
    fn export_json(&self) -> Result<String, StoreError> {
        Err(StoreError::Busy)
    }
    fn import_json(&self, _: &str, _: &str, _: Timestamp) -> Result<usize, StoreError> {
        Err(StoreError::Busy)
    }
}

impl EventStateStore for BusyStore {
    fn local_part_case(&self) -> imipsec_pipeline::policy::LocalPartCase {
        imipsec_pipeline::policy::LocalPartCase::Insensitive
    }

    fn evaluate(&self, _: &str, _: &[EventUpdate]) -> Result<Vec<StateFinding>, StoreError> {
        Err(StoreError::Busy)
    }
    fn decide_and_record(
        &self,
        _: &str,
        _: &[EventUpdate],
        _: Timestamp,
    ) -> Result<StateDecision, StoreError> {
        Err(StoreError::Busy)
    }
    fn evaluate_message(
        &self,
        _: &str,
        _: &imipsec_pipeline::policy::MessageDigest,
        _: &[EventUpdate],
    ) -> Result<Vec<StateFinding>, StoreError> {
        Err(StoreError::Busy)
    }
    fn decide_and_record_message(
        &self,
        _: &str,
        _: &imipsec_pipeline::policy::MessageDigest,
        _: &[EventUpdate],
        _: Timestamp,
    ) -> Result<StateDecision, StoreError> {
        Err(StoreError::Busy)
    }
    fn event(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
    ) -> Result<Option<imipsec_pipeline::policy::EventState>, StoreError> {
        Err(StoreError::Busy)
    }
}

#[test]
fn store_unavailable_is_an_error_not_a_verdict() {
    let pipeline = pipeline(false);
    let store: &dyn Stores = &BusyStore;
    // Event state cannot be checked.
    let error = pipeline
        .evaluate(
            &signed_request("rsa2048/organizer", "busy@example.com", 0),
            &evaluation(false),
            Some(store),
        )
        .unwrap_err();
    assert!(
        matches!(error, EvaluateError::EventStore(StoreError::Busy)),
        "{error:?}"
    );
    // A SENT-BY delegation cannot be decided: the delegate's message is neither accepted nor
    // rejected.
    let sent_by = calendar("REQUEST", "busy-sentby@example.com", 0).replace(
        "ORGANIZER:mailto:organizer@example.com",
        "ORGANIZER;SENT-BY=\"mailto:delegate@example.com\":mailto:organizer@example.com",
    );
    let signed = sign_detached(
        &entity(&sent_by),
        &identity("rsa2048/delegate"),
        &SignOptions::default(),
    )
    .unwrap();
    let error = pipeline
        .evaluate(&wrap(&signed), &evaluation(true), Some(store))
        .unwrap_err();
    assert!(
        matches!(error, EvaluateError::DelegationStore(StoreError::Busy)),
        "{error:?}"
    );
    // Without any store, the same message is judged: SENT-BY is denied by default.
    let verdict = pipeline
        .evaluate(&wrap(&signed), &evaluation(false), None)
        .unwrap();
    assert_eq!(codes(&verdict), [Reason::SentByUnauthorized]);
}

#[test]
fn record_needs_a_store_and_a_recipient() {
    let pipeline = pipeline(false);
    let message = signed_request("rsa2048/organizer", "need@example.com", 0);
    assert!(matches!(
        pipeline.evaluate(&message, &evaluation(true), None),
        Err(EvaluateError::RecordWithoutStore)
    ));
    let store = SqliteStore::open_in_memory().unwrap();
    let ctx = Evaluation {
        at: AT,
        recipient: None,
        record: true,
    };
    assert!(matches!(
        pipeline.evaluate(&message, &ctx, Some(&store)),
        Err(EvaluateError::RecordWithoutRecipient)
    ));
}

/// The SHA-256 of the received bytes keys a recipient's idempotent record. `evaluate` skips
/// it when judging without a recipient (issue 17: an audit without a store hashed every
/// message for nothing); such an accept has no digest and cannot be recorded, and a
/// preparation without a digest is never judged for a recipient.
#[test]
fn the_message_digest_is_made_exactly_when_a_recipient_can_record() {
    let pipeline = pipeline(false);
    let message = signed_request("rsa2048/organizer", "digest@example.com", 0);
    let digest = imipsec_pipeline::policy::MessageDigest::from_bytes(
        imipsec_pipeline::smime::sha256(&message),
    );
    let accepted = |verdict: Verdict| match verdict {
        Verdict::Accept(accepted) => accepted,
        Verdict::Reject(rejected) => panic!("rejected: {rejected:?}"),
    };

    // With a recipient: the digest of exactly the received bytes.
    let with = pipeline
        .evaluate(&message, &evaluation(false), None)
        .unwrap();
    assert_eq!(accepted(with).digest(), Some(digest));
    // `prepare` (the gate's path, judged per recipient) always hashes.
    let prepared = pipeline.prepare(&message, AT);
    let judged = pipeline.judge(&prepared, Some(ATTENDEE), None).unwrap();
    assert_eq!(accepted(judged).digest(), Some(digest));

    // Without one: no digest, and recording it is refused, not keyed by a made-up digest.
    let ctx = Evaluation {
        at: AT,
        recipient: None,
        record: false,
    };
    let without = accepted(pipeline.evaluate(&message, &ctx, None).unwrap());
    assert_eq!(without.digest(), None);
    let store = SqliteStore::open_in_memory().unwrap();
    assert!(matches!(
        Pipeline::record_delivery(without, &store),
        Err(EvaluateError::RecordWithoutRecipient)
    ));
}

#[test]
fn oversized_message_is_limit_exceeded_before_parsing() {
    let trust =
        TrustStore::from_pem_files(&[certs().join("root.cert.pem")], &[] as &[PathBuf]).unwrap();
    let mut settings = Settings::new(trust);
    settings.limits.smime.message_bytes = 1024;
    let verdict = Pipeline::new(settings)
        .evaluate(&vec![b'a'; 1025], &evaluation(false), None)
        .unwrap();
    assert_eq!(codes(&verdict), [Reason::LimitExceeded]);
}

#[test]
fn signing_time_far_from_date_warns() {
    let options = SignOptions {
        signing_time: Some(datetime!(2026-05-31 20:00:00 UTC)),
        ..SignOptions::default()
    };
    let signed = sign_detached(
        &entity(&calendar("REQUEST", "skew@example.com", 0)),
        &identity("rsa2048/organizer"),
        &options,
    )
    .unwrap();
    let verdict = pipeline(false)
        .evaluate(&wrap(&signed), &evaluation(false), None)
        .unwrap();
    assert!(verdict.is_accept());
    assert!(verdict.has_warning(Warning::SigningTimeSkew));
}

/// Standard base64 (RFC 4648), for a transfer-encoded body that keeps a bare CR intact.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn bare_cr_inside_a_signed_base64_calendar_is_malformed_icalendar() {
    // Line-ending canonicalisation cannot remove a CR hidden by base64: the signed, decoded
    // calendar holds `SUMMARY:x<CR>ATTENDEE:...`, which a CR-splitting parser would read as
    // one more ATTENDEE than this one.
    let calendar = calendar("REQUEST", "cr@example.com", 0).replace(
        "SUMMARY:Planning\r\n",
        "SUMMARY:Planning\rATTENDEE:mailto:mallory@example.net\r\n",
    );
    let part = |text: &str| {
        format!(
            "Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            base64(text.as_bytes())
        )
    };
    let sign = |entity: String| {
        wrap(
            &sign_detached(
                entity.as_bytes(),
                &identity("rsa2048/organizer"),
                &SignOptions::default(),
            )
            .unwrap(),
        )
    };
    // Control: the same structure without the CR is accepted.
    let control = pipeline(false)
        .evaluate(
            &sign(part(
                &calendar.replace('\r', "\r\n").replace("\r\n\n", "\r\n"),
            )),
            &evaluation(false),
            None,
        )
        .unwrap();
    assert!(control.is_accept(), "{:?}", control.reasons());
    let verdict = pipeline(false)
        .evaluate(&sign(part(&calendar)), &evaluation(false), None)
        .unwrap();
    assert_eq!(codes(&verdict), [Reason::MalformedIcalendar]);
}

#[test]
fn truncated_and_bit_flipped_messages_never_panic_and_never_accept_a_change() {
    let message = signed_request("rsa2048/organizer", "mangle@example.com", 0);
    let pipeline = pipeline(false);
    let store = SqliteStore::open_in_memory().unwrap();
    // Every prefix (in steps, plus the last bytes one by one): a verdict, never a panic.
    let mut cuts: Vec<usize> = (0..message.len()).step_by(37).collect();
    cuts.extend(message.len().saturating_sub(40)..message.len());
    for cut in cuts {
        let verdict = pipeline
            .evaluate(&message[..cut], &evaluation(true), Some(&store))
            .unwrap();
        if verdict.is_accept() {
            // Only a cut inside the trailing epilogue may keep the message intact.
            assert!(cut + 4 >= message.len(), "prefix of {cut} bytes accepted");
        }
    }
    // Flipping one bit inside the signed calendar never yields an accept.
    let start = message
        .windows(15)
        .position(|window| window == b"BEGIN:VCALENDAR")
        .unwrap();
    for offset in (start..start + 300).step_by(7) {
        let mut flipped = message.clone();
        flipped[offset] ^= 0x04;
        let verdict = pipeline
            .evaluate(&flipped, &evaluation(false), None)
            .unwrap();
        assert!(!verdict.is_accept(), "bit flip at {offset} accepted");
    }
}

/// A revocation source that can never answer (responders down, nothing cached).
struct Unreachable;

impl imipsec_pipeline::smime::RevocationSource for Unreachable {
    fn ocsp(
        &self,
        _url: &str,
        _request_der: &[u8],
        _at: time::OffsetDateTime,
    ) -> imipsec_pipeline::smime::Fetched {
        imipsec_pipeline::smime::Fetched::Unavailable("connection refused".to_owned())
    }
    fn crl(&self, _url: &str, _at: time::OffsetDateTime) -> imipsec_pipeline::smime::Fetched {
        imipsec_pipeline::smime::Fetched::Unavailable("connection refused".to_owned())
    }
    fn confirmed(
        &self,
        _url: &str,
        _request_der: Option<&[u8]>,
        _answer: &[u8],
        _next_update: time::OffsetDateTime,
    ) {
    }
}

/// Runs the openssl CLI in `dir`, asserting success.
fn openssl_in(dir: &std::path::Path, args: &[&str]) {
    let output = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Issue #13: under revocation mode `require`, a signer whose status cannot be had because the
/// responder is unreachable makes the message unevaluable (an error, never a verdict: the gate
/// answers 451, `verify` exits 2); under `if-available` it is accepted with the warning
/// `revocation-unchecked`; `off` asks nothing.
#[test]
fn unreachable_revocation_source_is_an_error_under_require_and_a_warning_otherwise() {
    let dir = std::env::temp_dir().join(format!(
        "imipsec-pipeline-revocation-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    openssl_in(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-days",
            "30",
            "-subj",
            "/CN=Root CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=emailProtection\nsubjectAltName=email:organizer@example.com\n\
         authorityInfoAccess=OCSP;URI:http://ocsp.example.test/\n",
    )
    .unwrap();
    openssl_in(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=Organizer",
        ],
    );
    openssl_in(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ],
    );
    let mut pem = std::fs::read(dir.join("leaf.key")).unwrap();
    pem.extend(std::fs::read(dir.join("leaf.pem")).unwrap());
    let organizer = Identity::from_pem(&pem).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let signed = sign_detached(
        &entity(&calendar("REQUEST", "revocation@example.com", 0)),
        &organizer,
        &SignOptions {
            signing_time: Some(now),
            ..SignOptions::default()
        },
    )
    .unwrap();
    let raw = wrap(&signed);
    let ctx = Evaluation {
        at: now,
        recipient: Some(ATTENDEE),
        record: false,
    };
    let pipeline = |mode: imipsec_pipeline::smime::RevocationMode| {
        let trust = TrustStore::from_pem_files(&[dir.join("root.pem")], &[] as &[PathBuf]).unwrap();
        let mut settings = Settings::new(trust);
        settings.revocation = mode;
        settings.revocation_source = Some(std::sync::Arc::new(Unreachable));
        Pipeline::new(settings)
    };
    use imipsec_pipeline::smime::RevocationMode;
    let error = pipeline(RevocationMode::Require)
        .evaluate(&raw, &ctx, None)
        .unwrap_err();
    assert!(
        matches!(error, EvaluateError::RevocationUnavailable { ref detail } if detail.contains("Organizer")),
        "{error:?}"
    );
    let warnings = |verdict: &Verdict| -> Vec<String> {
        verdict
            .warnings()
            .iter()
            .map(|warning| warning.code.code().to_owned())
            .collect()
    };
    let verdict = pipeline(RevocationMode::IfAvailable)
        .evaluate(&raw, &ctx, None)
        .unwrap();
    assert!(verdict.reasons().is_empty(), "{:?}", verdict.reasons());
    assert!(warnings(&verdict).contains(&"revocation-unchecked".to_owned()));
    let verdict = pipeline(RevocationMode::Off)
        .evaluate(&raw, &ctx, None)
        .unwrap();
    assert!(verdict.reasons().is_empty(), "{:?}", verdict.reasons());
    assert!(!warnings(&verdict).contains(&"revocation-unchecked".to_owned()));
    std::fs::remove_dir_all(&dir).ok();
}

/// An unsigned REQUEST (one VEVENT with many lines before `last`) as a whole message whose
/// every line ends in `eol`.
fn message_with_eol(last: &str, eol: &str) -> Vec<u8> {
    let mut lines = vec![
        "From: organizer@example.com".to_owned(),
        "To: attendee@example.com".to_owned(),
        "Subject: offsets".to_owned(),
        "MIME-Version: 1.0".to_owned(),
        "Content-Type: text/calendar; method=REQUEST; charset=UTF-8".to_owned(),
        "Content-Transfer-Encoding: 8bit".to_owned(),
        String::new(),
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//x//EN".to_owned(),
        "METHOD:REQUEST".to_owned(),
        "BEGIN:VEVENT".to_owned(),
        "UID:offsets@example.com".to_owned(),
        "DTSTART:20260615T100000Z".to_owned(),
        "SEQUENCE:0".to_owned(),
        "SUMMARY:s".to_owned(),
        format!("ORGANIZER:mailto:{ORGANIZER}"),
        format!("ATTENDEE:mailto:{ATTENDEE}"),
    ];
    lines.extend((0..30).map(|i| format!("X-FILLER-{i}:{i}")));
    lines.push(last.to_owned());
    lines.extend([
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
        String::new(),
    ]);
    lines.join(eol).into_bytes()
}

/// The `byte N` of a detail, as an offset into the received message (the calendar part
/// starts at its BEGIN:VCALENDAR).
fn received_position(raw: &[u8], detail: &str) -> usize {
    let part = raw
        .windows(15)
        .position(|w| w == b"BEGIN:VCALENDAR")
        .unwrap();
    let number: String = detail
        .split("byte ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    part + number.parse::<usize>().unwrap()
}

/// Issue #12: the offsets of a calendar finding count the part as received. A message
/// stored with bare LF line ends (mbox, Maildir) is evaluated in its CRLF form; the `byte N`
/// of a rejection (a DTSTAMP that is no DATE-TIME) and of a deviation warning (an `_` in an
/// X- name) still points at the offending line in the received bytes, as it does for the
/// same message in CRLF.
#[test]
fn calendar_offsets_point_into_the_part_as_received() {
    for eol in ["\n", "\r\n"] {
        let raw = message_with_eol("DTSTAMP:20260601T1254140", eol);
        let verdict = pipeline(true)
            .evaluate(&raw, &evaluation(false), None)
            .unwrap();
        let detail = &verdict
            .reasons()
            .iter()
            .find(|r| r.detail.contains("invalid DATE-TIME"))
            .unwrap_or_else(|| panic!("{eol:?}: {:?}", verdict.reasons()))
            .detail;
        let at = received_position(&raw, detail);
        assert!(
            raw[at..].starts_with(b"DTSTAMP:20260601T1254140"),
            "{eol:?}: {detail} -> {:?}",
            String::from_utf8_lossy(&raw[at..(at + 30).min(raw.len())])
        );

        let raw =
            message_with_eol("DTSTAMP:20260601T120000Z\nX-LOTUS-CHILD_UID:1", eol).replace_lf(eol);
        let verdict = pipeline(true)
            .evaluate(&raw, &evaluation(false), None)
            .unwrap();
        assert!(verdict.is_accept(), "{eol:?}: {:?}", verdict.reasons());
        let detail = &verdict
            .warnings()
            .iter()
            .find(|w| w.detail.contains("X-LOTUS-CHILD_UID"))
            .unwrap_or_else(|| panic!("{eol:?}: {:?}", verdict.warnings()))
            .detail;
        let at = received_position(&raw, detail);
        assert!(
            raw[at..].starts_with(b"X-LOTUS-CHILD_UID:1"),
            "{eol:?}: {detail}"
        );
    }
}

trait ReplaceLf {
    fn replace_lf(self, eol: &str) -> Vec<u8>;
}

impl ReplaceLf for Vec<u8> {
    /// Bare LFs (from a joined line) as `eol`.
    fn replace_lf(self, eol: &str) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replace("\r\n", "\n")
            .replace('\n', eol)
            .into_bytes()
    }
}

/// Issue #12: every reason of a broken calendar message names the property (or MIME header)
/// it is about and the RFC rule, whichever layer finds it: the MIME walk, the receiving
/// side's line check, the iTIP parser and tables, correlation. Unsigned calendars are
/// allowed so that each message reaches the layer its defect is in.
#[test]
fn every_reason_detail_names_the_property_or_header_and_the_rfc_rule() {
    let good = message_with_eol("DTSTAMP:20260601T120000Z", "\r\n");
    let good = String::from_utf8(good).unwrap();
    let cases: Vec<(&str, String)> = vec![
        (
            "bare CR in a value",
            good.replace(
                "SUMMARY:s\r\n",
                "SUMMARY:s\rATTENDEE:mailto:x@example.net\r\n",
            ),
        ),
        (
            "control character in a value",
            good.replace("SUMMARY:s\r\n", "SUMMARY:s\u{1}\r\n"),
        ),
        (
            "DTSTAMP that is no DATE-TIME",
            good.replace("DTSTAMP:20260601T120000Z", "DTSTAMP:20260601T1254140"),
        ),
        (
            "several restriction violations",
            good.replace("DTSTAMP:20260601T120000Z\r\n", "")
                .replace("UID:offsets@example.com\r\n", ""),
        ),
        (
            "underscore in a property a decision reads",
            good.replace("ORGANIZER:", "ORGANI_ZER:"),
        ),
        (
            "method parameter differs from METHOD",
            good.replace("method=REQUEST", "method=CANCEL"),
        ),
        (
            "duplicate Content-Type",
            good.replace(
                "Content-Transfer-Encoding: 8bit",
                "Content-Type: text/plain\r\nContent-Transfer-Encoding: 8bit",
            ),
        ),
        (
            "invalid base64",
            good.replace(
                "Content-Transfer-Encoding: 8bit",
                "Content-Transfer-Encoding: base64",
            ),
        ),
        (
            "ORGANIZER without mailto:",
            good.replace(
                "ORGANIZER:mailto:organizer@example.com",
                "ORGANIZER:organizer@example.com",
            ),
        ),
    ];
    let names = [
        "UID",
        "DTSTAMP",
        "SUMMARY",
        "ORGANIZER",
        "ATTENDEE",
        "METHOD",
        "ORGANI_ZER",
        "Content-",
        "method",
        "line endings",
    ];
    let mut failures = Vec::new();
    let signed: Vec<(&str, Vec<u8>)> = vec![
        // Signed by the attendee, by a stranger: correlation's reasons.
        (
            "REQUEST signed by the attendee",
            signed_request("rsa2048/attendee", "diag-attendee@example.com", 0),
        ),
        (
            "REQUEST signed by a stranger",
            signed_request("rsa2048/stranger", "diag-stranger@example.com", 0),
        ),
    ];
    let unsigned = cases
        .iter()
        .map(|(name, raw)| (*name, raw.clone().into_bytes(), true));
    let all = unsigned.chain(signed.into_iter().map(|(name, raw)| (name, raw, false)));
    for (name, raw, allow_unsigned) in all {
        let verdict = pipeline(allow_unsigned)
            .evaluate(&raw, &evaluation(false), None)
            .unwrap();
        if verdict.is_accept() {
            failures.push(format!("{name}: accepted"));
        }
        for reason in verdict.reasons() {
            let detail = &reason.detail;
            if !detail.contains("RFC") || !names.iter().any(|n| detail.contains(n)) {
                failures.push(format!("{name}: {}: {detail}", reason.code));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The deviation warnings of one calendar are bounded like its findings: a calendar with
/// thousands of tolerated blank lines must not fill the verdict (JSON, audit report, logs)
/// with thousands of `icalendar-deviation` warnings; the rest is counted.
#[test]
fn thousands_of_blank_lines_do_not_make_thousands_of_warnings() {
    let blank_lines = "\r\n".repeat(5000);
    let raw = String::from_utf8(message_with_eol("DTSTAMP:20260601T120000Z", "\r\n"))
        .unwrap()
        .replace("SUMMARY:s\r\n", &format!("SUMMARY:s\r\n{blank_lines}"));
    let verdict = pipeline(true)
        .evaluate(raw.as_bytes(), &evaluation(false), None)
        .unwrap();
    assert!(verdict.is_accept(), "{:?}", verdict.reasons());
    let deviations: Vec<&str> = verdict
        .warnings()
        .iter()
        .filter(|w| w.code == Warning::IcalendarDeviation)
        .map(|w| w.detail.as_str())
        .collect();
    assert!(deviations.len() <= 33, "{} warnings", deviations.len());
    assert!(
        deviations.last().unwrap().contains("4968 more"),
        "{:?}",
        deviations.last()
    );
}

/// The gate checks the accept direction again against `Prepared::mail_parser_calendars`
/// instead of parsing the bytes once more (issue 17). That list must be mail-parser's
/// calendar parts of exactly the received bytes, whichever way the pipeline came by it:
/// the S/MIME walk's parse (a signed message: its signature part is base64), the
/// pipeline's own (an unsigned 8bit message under `danger_allow_unsigned`: nothing for the
/// walk to compare), or a message with bare LF line ends (walked as a canonical copy); and
/// there is none when no verdict can accept (a tampered signed message).
#[test]
fn the_calendar_parts_kept_for_the_gate_are_mail_parsers_reading_of_the_received_bytes() {
    let signed = signed_request("rsa2048/organizer", "kept@example.com", 0);
    let signed_lf = String::from_utf8(signed.clone())
        .unwrap()
        .replace("\r\n", "\n")
        .into_bytes();
    for (what, raw, danger) in [
        ("signed", signed, false),
        ("signed, bare LF", signed_lf, false),
        (
            "unsigned, 8bit",
            message_with_eol("SUMMARY:s", "\r\n"),
            true,
        ),
        (
            "unsigned, bare LF",
            message_with_eol("SUMMARY:s", "\n"),
            true,
        ),
    ] {
        let prepared = pipeline(danger).prepare(&raw, AT);
        assert!(!prepared.is_rejected(), "{what}: rejected");
        let fresh = imipsec_pipeline::smime::calendar::mail_parser_calendars(&raw);
        assert!(
            !fresh.is_empty(),
            "{what}: no calendar part (else this shows nothing)"
        );
        assert_eq!(prepared.mail_parser_calendars(), Some(&fresh[..]), "{what}");
    }
    let mut tampered = signed_request("rsa2048/organizer", "kept@example.com", 0);
    let at = tampered
        .windows(8)
        .position(|window| window == b"SEQUENCE")
        .unwrap();
    tampered[at + 9] = b'7';
    let rejected = pipeline(false).prepare(&tampered, AT);
    assert!(rejected.is_rejected());
    assert_eq!(rejected.mail_parser_calendars(), None);
}
