//! External iTIP fixtures (read from IMIPSEC_CORPORA, never copied): sabre/vobject's
//! incoming iTIP messages and Apple CalendarServer's iMIP mails. Every calendar must parse
//! with calcard; parse_itip's outcome for each file must match
//! `tests/corpora/expectations.json` (valid, or the code and the named violation, with the
//! reason). An outcome that differs in either direction fails, an unexpected pass included.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;

use imipsec_itip::{Diagnostic, ItipError, MimeParams, ParseOptions, diagnose, parse_itip};
use mail_parser::{MessageParser, MimeHeaders};

fn corpora() -> std::path::PathBuf {
    let dir = std::env::var_os("IMIPSEC_CORPORA")
        .expect("IMIPSEC_CORPORA must point at the shared corpora (e.g. ../shared/corpora) for this ignored test");
    let dir = std::path::PathBuf::from(dir);
    if dir.is_relative() {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(dir)
    } else {
        dir
    }
}

#[derive(serde::Deserialize)]
struct Expectation {
    /// "valid" or a stable error code.
    outcome: String,
    /// For errors: the component and property of a restriction violation, or the
    /// Malformed variant name.
    #[serde(default)]
    detail: String,
    reason: String,
}

/// A calendar to check: its text and the Content-Type parameters it came with.
struct Case {
    name: String,
    ics: Vec<u8>,
    method: Option<String>,
    charset: Option<String>,
    /// The From address of the mail the calendar came in (CalendarServer fixtures).
    from: Option<String>,
}

/// sabre's BrokerTester replaces `%foo%` with the VERSION/PRODID/CALSCALE lines.
fn sabre_cases(dir: &std::path::Path) -> Vec<Case> {
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with("__itip.ics") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace(
            "%foo%",
            "VERSION:2.0\r\nPRODID:-//test//EN\r\nCALSCALE:GREGORIAN",
        );
        // The fixtures carry no Content-Type; give the one a sender would (method = METHOD).
        let method = text
            .lines()
            .find_map(|l| l.strip_prefix("METHOD:"))
            .map(|m| m.trim().to_owned());
        cases.push(Case {
            name,
            ics: text.into_bytes(),
            method,
            charset: Some("utf-8".into()),
            from: None,
        });
    }
    cases
}

fn ccs_cases(dir: &std::path::Path) -> (Vec<Case>, Vec<String>) {
    let (mut cases, mut without) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let raw = std::fs::read(&path).unwrap();
        let message = MessageParser::default()
            .parse(&raw)
            .unwrap_or_else(|| panic!("{name}: mail-parser"));
        let mut found = false;
        let mut messages = vec![message];
        // Walk nested message/rfc822 parts too (a DSN carries the bounced invitation).
        while let Some(message) = messages.pop() {
            let from = message
                .from()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .map(str::to_owned);
            for part in &message.parts {
                if let mail_parser::PartType::Message(inner) = &part.body {
                    messages.push(inner.clone());
                    continue;
                }
                let Some(ct) = part.content_type() else {
                    continue;
                };
                if !(ct.ctype().eq_ignore_ascii_case("text")
                    && ct
                        .subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case("calendar")))
                {
                    continue;
                }
                found = true;
                cases.push(Case {
                    name: name.clone(),
                    ics: part.contents().to_vec(),
                    method: ct.attribute("method").map(str::to_owned),
                    charset: ct.attribute("charset").map(str::to_owned),
                    from: from.clone(),
                });
            }
        }
        if !found {
            without.push(name);
        }
    }
    (cases, without)
}

/// The code parse_itip fails with ("valid" if it does not), and every error diagnose()
/// names: `COMPONENT PROPERTY` for restriction rows, the variant name otherwise.
fn outcome(case: &Case, mime: &MimeParams<'_>) -> (String, String) {
    let code = match parse_itip(&case.ics, mime, &ParseOptions::default()) {
        Ok(_) => "valid".to_owned(),
        Err(e) => e.code().to_owned(),
    };
    let details: Vec<String> = diagnose(&case.ics, mime, &ParseOptions::default())
        .into_iter()
        .filter_map(|d| match d {
            Diagnostic::Error(ItipError::Restriction(v)) => {
                Some(format!("{} {}", v.component, v.property))
            }
            Diagnostic::Error(e) => Some(
                format!("{e:?}")
                    .split([' ', '{', '('])
                    .nth(1)
                    .map(|s| s.to_owned())
                    .unwrap_or_else(|| format!("{e:?}")),
            ),
            Diagnostic::Warning(_) => None,
        })
        .collect();
    (code, details.join("; "))
}

#[test]
#[ignore = "needs IMIPSEC_CORPORA=../shared/corpora"]
fn sabre_and_ccs_fixtures_get_their_expected_diagnosis() {
    let root = corpora().join("itip");
    let expectations: BTreeMap<String, Expectation> =
        serde_json::from_str(include_str!("corpora/expectations.json"))
            .expect("expectations.json parses");
    let mut cases = sabre_cases(&root.join("sabre-vobject"));
    let (ccs, without_calendar) = ccs_cases(&root.join("ccs-imip"));
    cases.extend(ccs);
    cases.sort_by(|a, b| a.name.cmp(&b.name));

    let mut failures = Vec::new();
    let (mut valid, mut diagnosed) = (0, 0);
    for case in &cases {
        // Acceptance: calcard (our second-opinion parser) reads every calendar.
        let text = String::from_utf8_lossy(&case.ics);
        match calcard::Parser::new(&text).entry() {
            calcard::Entry::ICalendar(_) => {}
            other => failures.push(format!(
                "{}: calcard does not parse it: {other:?}",
                case.name
            )),
        }
        let mime = MimeParams {
            method: case.method.as_deref(),
            charset: case.charset.as_deref(),
            component: None,
        };
        let (code, detail) = outcome(case, &mime);
        let Some(expected) = expectations.get(&case.name) else {
            failures.push(format!(
                "{}: no expectation; actual {code} [{detail}]",
                case.name
            ));
            continue;
        };
        if expected.outcome != code || expected.detail != detail {
            failures.push(format!(
                "{}: expected {} [{}], got {code} [{detail}]",
                case.name, expected.outcome, expected.detail
            ));
            continue;
        }
        if code == "valid" {
            valid += 1;
            correlate_with_sender(case, &mime, &mut failures);
            println!("pass   {}", case.name);
        } else {
            diagnosed += 1;
            println!("named  {}: {code} {detail}: {}", case.name, expected.reason);
        }
    }
    for name in &without_calendar {
        match expectations.get(name) {
            Some(e) if e.outcome == "no-calendar-part" => println!("skip   {name}: {}", e.reason),
            _ => failures.push(format!(
                "{name}: has no text/calendar part but is not expected to lack one"
            )),
        }
    }
    for name in expectations.keys() {
        if !cases.iter().any(|c| &c.name == name) && !without_calendar.contains(name) {
            failures.push(format!(
                "{name}: expectation for a fixture that was not found"
            ));
        }
    }
    println!(
        "corpora: {} calendars, {valid} valid, {diagnosed} with a named violation",
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(cases.len() >= 25, "too few fixtures found: {}", cases.len());
}

/// A valid iMIP message must correlate to the mail's sender in the role its method needs:
/// the CalendarServer replies come from the replying attendee (folded across lines in the
/// fixture); the DSN's bounced REQUEST must not correlate (see below).
fn correlate_with_sender(case: &Case, mime: &MimeParams<'_>, failures: &mut Vec<String>) {
    use imipsec_itip::{CorrelateOptions, DenyAllDelegations, Side, correlate};
    let Some(from) = &case.from else { return };
    let msg = parse_itip(&case.ics, mime, &ParseOptions::default()).unwrap();
    let verdict = correlate(
        &msg,
        &[from],
        &DenyAllDelegations,
        &CorrelateOptions::default(),
    );
    let expected = match msg.method.side() {
        Side::Attendee => verdict.is_authorized(),
        // The bounced REQUEST's From is xyzzy@example.com but its ORGANIZER is the
        // sub-address xyzzy+<uuid>@example.com: we never strip "+tags", so these are two
        // addresses and no correlation is the right answer.
        Side::Organizer => verdict.failure().map(|f| f.code()) == Some("signer-not-correlated"),
    };
    if expected {
        println!(
            "       {} signed by {from}: {:?}",
            case.name,
            verdict.failure().map(|f| f.code()).unwrap_or("authorized")
        );
    } else {
        failures.push(format!(
            "{}: correlating with From {from} gave {:?}",
            case.name,
            verdict.failure()
        ));
    }
}
