//! The pipeline's own limit at and past its boundary, the crate limits it passes down, and
//! the cost of one message growing linearly with its size.
//!
//! Cost is measured in allocations (count and bytes) through a counting global allocator,
//! not in wall time, so the test is deterministic on a loaded machine. OpenSSL and SQLite
//! allocate through their own `malloc` and are not counted: what is measured is the Rust
//! side (MIME walk, CMS reading, iTIP parsing and cross-check, correlation, verdict).
//! Every test takes `SERIAL`, so no other test of this binary allocates during a
//! measurement.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::alloc::System;
use std::path::PathBuf;
use std::sync::Mutex;

use imipsec_pipeline::policy::SqliteStore;
use imipsec_pipeline::smime::TrustStore;
use imipsec_pipeline::smime::keys::Identity;
use imipsec_pipeline::smime::sign::{SignOptions, sign_detached};
use imipsec_pipeline::{Evaluation, Pipeline, Reason, Settings, Verdict};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use time::macros::datetime;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

static SERIAL: Mutex<()> = Mutex::new(());

const AT: time::OffsetDateTime = datetime!(2026-06-01 00:00:00 UTC);

fn certs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../certs")
}

fn pipeline_with(configure: impl FnOnce(&mut Settings)) -> Pipeline {
    let trust =
        TrustStore::from_pem_files(&[certs().join("root.cert.pem")], &[] as &[PathBuf]).unwrap();
    let mut settings = Settings::new(trust);
    configure(&mut settings);
    Pipeline::new(settings)
}

fn organizer() -> Identity {
    let mut pem = std::fs::read(certs().join("rsa2048/organizer.key.pem")).unwrap();
    pem.extend(std::fs::read(certs().join("rsa2048/organizer.chain.pem")).unwrap());
    Identity::from_pem(&pem).unwrap()
}

/// A signed REQUEST from the organizer: `attendees` ATTENDEE lines, `extra_lines` X-
/// properties, `description` bytes of folded DESCRIPTION, and `parts` text/plain parts
/// beside the calendar inside the signed multipart/mixed.
fn signed_request(
    identity: &Identity,
    attendees: usize,
    extra_lines: usize,
    description: usize,
    parts: usize,
) -> Vec<u8> {
    let mut ics = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//limits//EN\r\nMETHOD:REQUEST\r\n\
         BEGIN:VEVENT\r\nUID:linear@example.com\r\nDTSTAMP:20260601T000000Z\r\n\
         DTSTART:20260615T100000Z\r\nSEQUENCE:0\r\nSUMMARY:Linear\r\n\
         ORGANIZER:mailto:organizer@example.com\r\n",
    );
    for i in 0..attendees {
        ics.push_str(&format!(
            "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:a{i}@example.com\r\n"
        ));
    }
    for i in 0..extra_lines {
        ics.push_str(&format!("X-FILLER-{i}:value\r\n"));
    }
    if description > 0 {
        ics.push_str("DESCRIPTION:");
        for chunk in "d".repeat(description).as_bytes().chunks(70) {
            ics.push_str(std::str::from_utf8(chunk).unwrap());
            ics.push_str("\r\n ");
        }
        ics.push_str("end\r\n");
    }
    ics.push_str("END:VEVENT\r\nEND:VCALENDAR\r\n");
    let mut entity =
        b"Content-Type: multipart/mixed; boundary=\"linear-mixed\"\r\n\r\n--linear-mixed\r\n\
Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n"
            .to_vec();
    entity.extend_from_slice(ics.as_bytes());
    for i in 0..parts {
        entity.extend_from_slice(
            format!("\r\n--linear-mixed\r\nContent-Type: text/plain\r\n\r\nNote {i}.").as_bytes(),
        );
    }
    entity.extend_from_slice(b"\r\n--linear-mixed--\r\n");
    let options = SignOptions {
        signing_time: Some(AT),
        ..SignOptions::default()
    };
    let signed = sign_detached(&entity, identity, &options).unwrap();
    let mut raw = b"From: organizer@example.com\r\nTo: a0@example.com\r\nSubject: Linear\r\n\
Date: Mon, 01 Jun 2026 00:00:00 +0000\r\nMessage-ID: <linear@example.com>\r\nMIME-Version: 1.0\r\n"
        .to_vec();
    raw.extend_from_slice(&signed);
    raw
}

fn evaluate(pipeline: &Pipeline, store: &SqliteStore, raw: &[u8]) -> Verdict {
    pipeline
        .evaluate(
            raw,
            &Evaluation {
                at: AT,
                recipient: Some("a0@example.com"),
                record: false,
            },
            Some(store),
        )
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Limits

#[test]
fn message_bytes_at_and_past_the_limit() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let raw = signed_request(&organizer(), 2, 0, 0, 0);
    let store = SqliteStore::open_in_memory().unwrap();
    let at = pipeline_with(|s| s.limits.smime.message_bytes = raw.len());
    let verdict = evaluate(&at, &store, &raw);
    assert!(verdict.is_accept(), "{:?}", verdict.reasons());
    let past = pipeline_with(|s| s.limits.smime.message_bytes = raw.len() - 1);
    let verdict = evaluate(&past, &store, &raw);
    assert_eq!(verdict.primary_reason(), Some(Reason::LimitExceeded));
    assert!(
        verdict.reasons()[0]
            .detail
            .contains("larger than the limit")
    );
}

/// The S/MIME and iTIP limits in `Settings::limits` reach their layers: each one at the
/// message's measure accepts, one less is `limit-exceeded`.
#[test]
fn limits_passed_down_apply_at_their_boundary() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let store = SqliteStore::open_in_memory().unwrap();
    let raw = signed_request(&organizer(), 5, 0, 0, 3);
    type Set = fn(&mut Settings, usize);
    let cases: [(&str, usize, Set); 3] = [
        // root multipart/signed, multipart/mixed, calendar, 3 notes, signature
        ("smime parts", 7, |s, n| s.limits.smime.parts = n),
        ("itip attendees", 5, |s, n| s.limits.itip.attendees = n),
        // VCALENDAR > VEVENT
        ("itip nesting", 2, |s, n| s.limits.itip.nesting = n),
    ];
    for (name, measure, set) in cases {
        let verdict = evaluate(&pipeline_with(|s| set(s, measure)), &store, &raw);
        assert!(
            verdict.is_accept(),
            "{name} at {measure}: {:?}",
            verdict.reasons()
        );
        let verdict = evaluate(&pipeline_with(|s| set(s, measure - 1)), &store, &raw);
        assert_eq!(
            verdict.primary_reason(),
            Some(Reason::LimitExceeded),
            "{name} at {}: {:?}",
            measure - 1,
            verdict.reasons()
        );
    }
}

/// The layers' default limits agree: a REQUEST with as many attendees as the iTIP layer
/// admits is decided and recorded by the event-state store, not refused there as
/// `limit-exceeded` for a size the parser accepted (the store's cap was once 1,000).
#[test]
fn the_store_records_a_request_at_the_itip_attendee_limit() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let most = imipsec_pipeline::itip::Limits::default().attendees;
    let raw = signed_request(&organizer(), most, 0, 0, 0);
    let store = SqliteStore::open_in_memory().unwrap();
    let verdict = pipeline_with(|_| {})
        .evaluate(
            &raw,
            &Evaluation {
                at: AT,
                recipient: Some("a0@example.com"),
                record: true,
            },
            Some(&store),
        )
        .unwrap();
    assert!(verdict.is_accept(), "{:?}", verdict.reasons());
    // One more attendee is the iTIP layer's limit, not the store's.
    let raw = signed_request(&organizer(), most + 1, 0, 0, 0);
    let verdict = evaluate(&pipeline_with(|_| {}), &store, &raw);
    assert_eq!(verdict.primary_reason(), Some(Reason::LimitExceeded));
    assert!(
        verdict.reasons()[0].detail.contains("attendee"),
        "{:?}",
        verdict.reasons()
    );
}

// ---------------------------------------------------------------------------------------------
// Linear cost

#[derive(Debug, Clone, Copy)]
struct Cost {
    input: usize,
    allocations: usize,
    bytes: usize,
}

fn cost(pipeline: &Pipeline, store: &SqliteStore, raw: &[u8]) -> Cost {
    let region = Region::new(GLOBAL);
    let verdict = evaluate(pipeline, store, raw);
    let change = region.change();
    assert!(verdict.is_accept(), "{:?}", verdict.reasons());
    drop(verdict);
    Cost {
        input: raw.len(),
        allocations: change.allocations + change.reallocations,
        bytes: change.bytes_allocated + change.bytes_reallocated.max(0) as usize,
    }
}

/// Measures a message at 1x, 10x and 100x of one dimension and asserts the cost per added
/// unit does not grow: the marginal cost from 10x to 100x is at most twice the marginal
/// cost from 1x to 10x (a quadratic step would make it about ten times).
fn assert_linear(dimension: &str, build: impl Fn(usize) -> Vec<u8>, base: usize) {
    let pipeline = pipeline_with(|_| {});
    let store = SqliteStore::open_in_memory().unwrap();
    // Warm the trust store's caches so the first measurement is not charged for them.
    evaluate(&pipeline, &store, &build(base));
    let costs: Vec<Cost> = [base, base * 10, base * 100]
        .iter()
        .map(|&n| cost(&pipeline, &store, &build(n)))
        .collect();
    let units = [base as f64 * 9.0, base as f64 * 90.0];
    for (what, pick) in [
        (
            "allocations",
            (|c: &Cost| c.allocations) as fn(&Cost) -> usize,
        ),
        ("bytes", |c: &Cost| c.bytes),
    ] {
        let first = (pick(&costs[1]) as f64 - pick(&costs[0]) as f64) / units[0];
        let second = (pick(&costs[2]) as f64 - pick(&costs[1]) as f64) / units[1];
        println!(
            "{dimension}: {what} {} / {} / {} for {} / {} / {} input bytes; per unit {first:.1} then {second:.1}",
            pick(&costs[0]),
            pick(&costs[1]),
            pick(&costs[2]),
            costs[0].input,
            costs[1].input,
            costs[2].input,
        );
        assert!(
            second <= 2.0 * first.max(1.0),
            "{dimension}: {what} per unit grew from {first:.1} to {second:.1}: {costs:?}"
        );
    }
    // Bytes allocated stay within a constant factor of the input.
    let ratio = costs[2].bytes as f64 / costs[2].input as f64;
    println!("{dimension}: {ratio:.1} bytes allocated per input byte at 100x");
    assert!(
        ratio < 64.0,
        "{dimension}: {ratio:.1} bytes allocated per input byte"
    );
}

#[test]
fn cost_is_linear_in_attendees() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let identity = organizer();
    assert_linear("attendees", |n| signed_request(&identity, n, 0, 0, 0), 8);
}

#[test]
fn cost_is_linear_in_content_lines() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let identity = organizer();
    assert_linear(
        "content lines",
        |n| signed_request(&identity, 1, n, 0, 0),
        40,
    );
}

#[test]
fn cost_is_linear_in_folded_line_length() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let identity = organizer();
    assert_linear(
        "folded description bytes",
        |n| signed_request(&identity, 1, 0, n, 0),
        500,
    );
}

#[test]
fn cost_is_linear_in_mime_parts() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let identity = organizer();
    assert_linear("MIME parts", |n| signed_request(&identity, 1, 0, 0, n), 2);
}
