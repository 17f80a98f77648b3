//! Throughput of `Pipeline::evaluate` on signed iMIP REQUESTs (RSA-2048, SHA-256), with no
//! store, with a read-only state check, and with recording (each message a new UID), on an
//! in-memory SQLite store. Run: `cargo bench -p imipsec-pipeline --bench evaluate`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::time::Instant;

use imipsec_pipeline::compose::{CalendarPart, Envelope, calendar_entity, message};
use imipsec_pipeline::policy::SqliteStore;
use imipsec_pipeline::smime::TrustStore;
use imipsec_pipeline::smime::keys::Identity;
use imipsec_pipeline::smime::sign::{SignOptions, sign_detached};
use imipsec_pipeline::{Evaluation, Pipeline, Settings, Stores};
use time::macros::datetime;

const MESSAGES: usize = 2000;

fn main() {
    let certs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../certs");
    let trust =
        TrustStore::from_pem_files(&[certs.join("root.cert.pem")], &[] as &[PathBuf]).unwrap();
    let pipeline = Pipeline::new(Settings::new(trust));
    let mut pem = std::fs::read(certs.join("rsa2048/organizer.key.pem")).unwrap();
    pem.extend(std::fs::read(certs.join("rsa2048/organizer.chain.pem")).unwrap());
    let identity = Identity::from_pem(&pem).unwrap();
    let at = datetime!(2026-06-01 00:00:00 UTC);

    let messages: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|index| {
            let calendar = format!(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//bench//EN\r\nMETHOD:REQUEST\r\n\
                 BEGIN:VEVENT\r\nUID:bench-{index}@example.com\r\nDTSTAMP:20260601T000000Z\r\n\
                 ORGANIZER:mailto:organizer@example.com\r\nDTSTART:20260615T100000Z\r\n\
                 SUMMARY:Planning\r\nSEQUENCE:0\r\n\
                 ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:attendee@example.com\r\n\
                 END:VEVENT\r\nEND:VCALENDAR\r\n"
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
                &Envelope {
                    from: "organizer@example.com".into(),
                    to: vec!["attendee@example.com".into()],
                    subject: "bench".into(),
                    date: at.unix_timestamp(),
                    message_id: format!("bench-{index}@example.com"),
                },
                &signed,
            )
            .unwrap()
        })
        .collect();

    let store = SqliteStore::open_in_memory().unwrap();
    let cases: [(&str, Option<&dyn Stores>, bool); 3] = [
        ("no store", None, false),
        ("state check (read-only)", Some(&store), false),
        ("state check + record", Some(&store), true),
    ];
    println!("{MESSAGES} signed REQUESTs of {} bytes", messages[0].len());
    for (name, store, record) in cases {
        let ctx = Evaluation {
            at,
            recipient: Some("attendee@example.com"),
            record,
        };
        let start = Instant::now();
        for raw in &messages {
            let verdict = pipeline.evaluate(raw, &ctx, store).unwrap();
            assert!(verdict.is_accept(), "{:?}", verdict.reasons());
        }
        let elapsed = start.elapsed();
        println!(
            "{name:>26}: {:>7.0} messages/s ({:.1} us/message)",
            MESSAGES as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 / MESSAGES as f64
        );
    }
}
