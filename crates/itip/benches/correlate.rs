//! parse_itip + correlate per invitation, timed with std::time (no harness).
//! Run: `cargo bench -p imipsec-itip --bench correlate` (a release build).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use imipsec_itip::{
    CorrelateOptions, DenyAllDelegations, MimeParams, ParseOptions, correlate, parse_itip,
};

/// A REQUEST as a real client writes it: VTIMEZONE, folded DESCRIPTION, `attendees`
/// ATTENDEE lines with the usual parameters, padded towards `target_bytes`.
fn invite(attendees: usize, target_bytes: usize) -> Vec<u8> {
    let mut s = String::from(
        "BEGIN:VCALENDAR\r\nPRODID:-//imipsec//bench//EN\r\nVERSION:2.0\r\nCALSCALE:GREGORIAN\r\nMETHOD:REQUEST\r\n\
BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n\
DTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\nBEGIN:STANDARD\r\n\
TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\nDTSTART:19701025T030000\r\n\
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\n\
UID:2f1c7a52-5e0b-4d8e-9a38-bench@example.com\r\nDTSTAMP:20260101T120000Z\r\nSEQUENCE:0\r\n\
DTSTART;TZID=Europe/Berlin:20260301T100000\r\nDTEND;TZID=Europe/Berlin:20260301T110000\r\n\
SUMMARY:Quarterly planning\r\nLOCATION:Room 4.12\r\nSTATUS:CONFIRMED\r\nTRANSP:OPAQUE\r\n\
ORGANIZER;CN=\"Olivia Organizer\":mailto:olivia.organizer@example.com\r\n",
    );
    for i in 0..attendees {
        s.push_str(&format!(
            "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=\"Attendee {i}\":mailto:attendee{i}@example.com\r\n"
        ));
    }
    let mut description = String::from("DESCRIPTION:");
    while s.len() + description.len() + 60 < target_bytes {
        description.push_str("Agenda item, notes and links for the meeting. ");
    }
    // Fold at 75 octets as RFC 5545 section 3.1 asks.
    let mut folded = String::new();
    for (i, chunk) in description.as_bytes().chunks(74).enumerate() {
        if i > 0 {
            folded.push_str("\r\n ");
        }
        folded.push_str(std::str::from_utf8(chunk).unwrap());
    }
    s.push_str(&folded);
    s.push_str("\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n");
    s.into_bytes()
}

fn measure(label: &str, ics: &[u8], budget: Duration, options: ParseOptions) {
    let mime = MimeParams {
        method: Some("REQUEST"),
        charset: Some("UTF-8"),
        component: None,
    };
    let signers = ["olivia.organizer@example.com"];
    let run = || {
        let msg = parse_itip(black_box(ics), &mime, &options).unwrap();
        let c = correlate(
            &msg,
            &signers,
            &DenyAllDelegations,
            &CorrelateOptions::default(),
        );
        assert!(c.is_authorized());
        black_box(c);
    };
    for _ in 0..200 {
        run();
    }
    // Many short rounds of fixed length; the best is the least disturbed by other
    // processes (on a shared virtual machine the same binary measures up to 1.7x slower
    // from one run to the next), the median shows what a disturbed run looks like. Wall
    // time and this thread's on-CPU time (from /proc, so a loaded machine that preempts
    // us does not inflate the figure) are both reported; the verdict is on the best
    // on-CPU round.
    const ROUNDS: usize = 15;
    let (mut walls, mut cpus) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    let mut iterations = 0;
    for _ in 0..ROUNDS {
        let (start, cpu_start) = (Instant::now(), thread_cpu());
        let mut n = 0u32;
        while start.elapsed() < Duration::from_millis(150) {
            run();
            n += 1;
        }
        walls.push(start.elapsed() / n);
        if let (Some(a), Some(b)) = (cpu_start, thread_cpu()) {
            cpus.push(b.saturating_sub(a) / n);
        }
        iterations += n;
    }
    walls.sort();
    cpus.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (best_wall, median_wall) = (walls[0], walls[ROUNDS / 2]);
    let (figure, best_cpu, median_cpu) = match (cpus.first(), cpus.get(cpus.len() / 2)) {
        (Some(&best), Some(&median)) if cpus.len() == ROUNDS => (best, best, median),
        // No /proc: wall time stands in.
        _ => (best_wall, best_wall, median_wall),
    };
    let verdict = if figure <= budget { "within" } else { "OVER" };
    println!(
        "{label}: {} bytes, {:.1} us CPU best, {:.1} us median ({:.1} / {:.1} us wall) per parse+validate+correlate ({ROUNDS} rounds, {iterations} runs; target {} us: {verdict})",
        ics.len(),
        us(best_cpu),
        us(median_cpu),
        us(best_wall),
        us(median_wall),
        budget.as_micros()
    );
}

/// On-CPU time of this thread (Linux `/proc/thread-self/schedstat`, first field, ns).
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Profile mode (`IMIPSEC_BENCH_PROFILE=<label>:<runs>`, label `small`, `large`,
/// `small-skip` or `large-skip`): runs one case `runs` times without timing, for
/// `valgrind --tool=callgrind`, whose instruction counts do not depend on machine load.
fn profile(spec: &str, small: &[u8], large: &[u8]) {
    let (label, runs) = spec.split_once(':').unwrap_or((spec, "100"));
    let runs: u32 = runs.parse().expect("IMIPSEC_BENCH_PROFILE=<label>:<runs>");
    let (ics, skip) = match label {
        "small" => (small, false),
        "large" => (large, false),
        "small-skip" => (small, true),
        "large-skip" => (large, true),
        other => panic!("unknown profile case {other}"),
    };
    let options = ParseOptions {
        danger_skip_cross_check: skip,
        ..ParseOptions::default()
    };
    let mime = MimeParams {
        method: Some("REQUEST"),
        charset: Some("UTF-8"),
        component: None,
    };
    for _ in 0..runs {
        let msg = parse_itip(black_box(ics), &mime, &options).unwrap();
        let c = correlate(
            &msg,
            &["olivia.organizer@example.com"],
            &DenyAllDelegations,
            &CorrelateOptions::default(),
        );
        assert!(c.is_authorized());
        black_box(c);
    }
}

fn main() {
    let small = invite(10, 3 * 1024);
    let large = invite(200, 0);
    if let Ok(spec) = std::env::var("IMIPSEC_BENCH_PROFILE") {
        profile(&spec, &small, &large);
        return;
    }
    let default = ParseOptions::default();
    let skip = ParseOptions {
        danger_skip_cross_check: true,
        ..ParseOptions::default()
    };
    measure(
        "REQUEST, 10 attendees, default",
        &small,
        Duration::from_micros(50),
        default,
    );
    measure(
        "REQUEST, 200 attendees, default",
        &large,
        Duration::from_millis(1),
        default,
    );
    measure(
        "REQUEST, 10 attendees, danger_skip_cross_check",
        &small,
        Duration::from_micros(50),
        skip,
    );
    measure(
        "REQUEST, 200 attendees, danger_skip_cross_check",
        &large,
        Duration::from_millis(1),
        skip,
    );
}
