//! Gate decisions for one signed iMIP REQUEST with 1 and with 10 recipients, through the real
//! [`PipelineEngine`] over an in-memory SQLite event-state store (issue #15: the
//! recipient-independent work, MIME, S/MIME verification and iTIP parsing, runs once per
//! message; only the judgement, correlation and the read-only state check, runs per
//! recipient). For comparison, the old shape: one whole evaluation per recipient.
//! Run: `cargo bench -p imipsec-gate --bench recipients`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use imipsec_gate::{Decide, Envelope, Outcome, PipelineEngine};
use imipsec_pipeline::compose::{CalendarPart, Envelope as MailEnvelope, calendar_entity, message};
use imipsec_pipeline::policy::SqliteStore;
use imipsec_pipeline::smime::TrustStore;
use imipsec_pipeline::smime::keys::Identity;
use imipsec_pipeline::smime::sign::{SignOptions, sign_detached};
use imipsec_pipeline::{Pipeline, Settings};
use time::macros::datetime;

const MESSAGES: usize = 300;

fn pipeline() -> Pipeline {
    let certs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../certs");
    let trust =
        TrustStore::from_pem_files(&[certs.join("root.cert.pem")], &[] as &[PathBuf]).unwrap();
    Pipeline::new(Settings::new(trust))
}

fn signed_request(index: usize, recipients: &[String]) -> Vec<u8> {
    let certs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../certs");
    let mut pem = std::fs::read(certs.join("rsa2048/organizer.key.pem")).unwrap();
    pem.extend(std::fs::read(certs.join("rsa2048/organizer.chain.pem")).unwrap());
    let identity = Identity::from_pem(&pem).unwrap();
    let at = datetime!(2026-06-01 00:00:00 UTC);
    let attendees: String = recipients
        .iter()
        .map(|r| format!("ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{r}\r\n"))
        .collect();
    let calendar = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//bench//EN\r\nMETHOD:REQUEST\r\n\
         BEGIN:VEVENT\r\nUID:bench-{index}@example.com\r\nDTSTAMP:20260601T000000Z\r\n\
         ORGANIZER:mailto:organizer@example.com\r\nDTSTART:20260615T100000Z\r\n\
         SUMMARY:Planning\r\nSEQUENCE:0\r\n{attendees}END:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    let entity = calendar_entity(&[CalendarPart {
        text: calendar,
        method: "REQUEST".into(),
        component: "VEVENT".into(),
        filename: "invite.ics".into(),
        description: "Invitation".into(),
    }])
    .unwrap();
    let options = SignOptions {
        signing_time: Some(at),
        ..SignOptions::default()
    };
    let signed = sign_detached(&entity, &identity, &options).unwrap();
    message(
        &MailEnvelope {
            from: "organizer@example.com".into(),
            to: recipients.iter().map(|r| r.as_str().into()).collect(),
            subject: "bench".into(),
            date: at.unix_timestamp(),
            message_id: format!("bench-{index}@example.com"),
        },
        &signed,
    )
    .unwrap()
}

fn run(
    engine: &PipelineEngine,
    messages: &[Vec<u8>],
    recipients: &[String],
    split: bool,
) -> Duration {
    let at = datetime!(2026-06-01 00:00:00 UTC);
    let envelope = Envelope {
        mail_from: "organizer@example.com".into(),
        recipients: recipients.to_vec(),
    };
    let start = Instant::now();
    for raw in messages {
        let verdicts = if split {
            // The old shape: the whole evaluation once per recipient.
            recipients
                .iter()
                .flat_map(|r| engine.decide(raw, &envelope, std::slice::from_ref(r), at))
                .collect::<Vec<_>>()
        } else {
            engine.decide(raw, &envelope, recipients, at)
        };
        assert_eq!(verdicts.len(), recipients.len());
        for verdict in verdicts {
            assert_eq!(verdict.unwrap().verdict.outcome, Outcome::Accept);
        }
    }
    start.elapsed()
}

fn main() {
    let ten: Vec<String> = (0..10)
        .map(|i| format!("attendee{i}@example.com"))
        .collect();
    let messages: Vec<Vec<u8>> = (0..MESSAGES).map(|i| signed_request(i, &ten)).collect();
    let engine = PipelineEngine::new(
        pipeline(),
        Some(Box::new(SqliteStore::open_in_memory().unwrap())),
    );
    println!(
        "{MESSAGES} signed REQUESTs of {} bytes (10 ATTENDEEs), PipelineEngine::decide with \
         an in-memory event-state store (read-only check)",
        messages[0].len()
    );
    // Warm up.
    run(&engine, &messages[..20], &ten[..1], false);
    let per_message = |elapsed: Duration| elapsed.as_secs_f64() * 1e6 / MESSAGES as f64;
    let one = per_message(run(&engine, &messages, &ten[..1], false));
    let many = per_message(run(&engine, &messages, &ten, false));
    let split = per_message(run(&engine, &messages, &ten, true));
    println!("{:>44}: {one:>8.1} us/message", "1 recipient");
    println!(
        "{:>44}: {many:>8.1} us/message",
        "10 recipients (prepared once)"
    );
    println!(
        "{:>44}: {split:>8.1} us/message",
        "10 recipients, one evaluation each (old)"
    );
    println!(
        "ratio 10/1 recipients: {:.2} (old shape: {:.2})",
        many / one,
        split / one
    );
}
