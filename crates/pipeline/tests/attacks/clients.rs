//! Real client invitations (issue #12): calendars written by real clients, kept under
//! `testdata/clients/` with their source and licence (its README), re-signed here with the
//! `openssl cms` CLI by the test PKI identity that stands for the client's sender, and run
//! through the pipeline. Every verdict, and every deviation warning, is asserted.
//!
//! Re-signing needs the sender to be a test identity: the client's ORGANIZER and replying
//! ATTENDEE addresses are mapped onto organizer@example.com and attendee@example.com (the
//! only rewrite); the text is put in canonical form (CRLF) as S/MIME requires of text
//! (RFC 8551 §3.1.1) and as the mail transport delivers it.

use super::*;

fn client(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/clients")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The calendar with the client's parties mapped onto the test identities, in CRLF.
fn mapped(ics: &str, organizer: &str, attendee: Option<&str>) -> String {
    let mut text = ics.replace(
        &format!("mailto:{organizer}"),
        &format!("mailto:{ORGANIZER}"),
    );
    if let Some(attendee) = attendee {
        text = text.replace(&format!("mailto:{attendee}"), &format!("mailto:{ATTENDEE}"));
    }
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// `entity` signed by the test identity `signer` with `openssl cms -sign` (detached,
/// SHA-256, the chain included), as a whole message from `from`.
fn openssl_signed(signer: &str, from: &str, entity: &[u8]) -> Vec<u8> {
    let chain = certs()
        .join("intermediate.cert.pem")
        .to_string_lossy()
        .into_owned();
    let cms = openssl(
        &[
            "cms",
            "-sign",
            "-binary",
            "-md",
            "sha256",
            "-signer",
            &cert_path(signer),
            "-inkey",
            &key_path(signer),
            "-certfile",
            &chain,
            "-outform",
            "DER",
        ],
        entity,
    );
    message(from, &multipart_signed(entity, &cms))
}

fn base64_entity(calendar: &str, method: &str) -> Vec<u8> {
    let mut out = format!(
        "Content-Type: text/calendar; method={method}; charset=UTF-8\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(base64(calendar.as_bytes()).as_bytes());
    out
}

fn deviations(verdict: &Verdict) -> Vec<String> {
    verdict
        .warnings()
        .iter()
        .filter(|w| w.code.to_string() == "icalendar-deviation")
        .map(|w| w.detail.clone())
        .collect()
}

/// Lotus Notes 6 REQUEST (vpim examples/ics/method-request/gpope2.ics): X-LOTUS-CHILD_UID,
/// quoted TZID, five attendees, folded parameters. Accepted with one deviation; strict
/// rejects it.
#[test]
fn lotus_notes_6_request_is_accepted_with_the_underscore_deviation() {
    let ics = mapped(
        &client("lotus-notes-6-request.ics"),
        "gpope@certicom.com",
        None,
    );
    let raw = openssl_signed("rsa2048/organizer", ORGANIZER, &entity(&ics, "REQUEST"));
    let verdict = evaluate(&raw);
    assert_accepted(&verdict);
    let details = deviations(&verdict);
    assert_eq!(details.len(), 1, "{details:?}");
    assert!(details[0].contains("X-LOTUS-CHILD_UID"), "{details:?}");
    assert_rejected(
        &super::profile::evaluate_strict(&raw),
        Reason::MalformedIcalendar,
    );
}

/// Apple iCal 1.5 REQUEST (vpim examples/ics/method-request/efung.ics): RFC conforming
/// apart from nothing the profile covers; accepted without a deviation, strict too.
#[test]
fn apple_ical_request_is_accepted_without_deviation() {
    let ics = mapped(
        &client("apple-ical-1.5-request.ics"),
        "aa152@hwcn.org",
        None,
    );
    let raw = openssl_signed("rsa2048/organizer", ORGANIZER, &entity(&ics, "REQUEST"));
    let verdict = evaluate(&raw);
    assert_accepted(&verdict);
    assert!(deviations(&verdict).is_empty(), "{:?}", verdict.warnings());
    assert_accepted(&super::profile::evaluate_strict(&raw));
}

/// Apple iCal 1.5 REPLY to the Lotus Notes invitation (vpim test/test_ical.rb, Rep_1),
/// sent base64-encoded and re-signed by the attendee: accepted without a deviation.
#[test]
fn apple_ical_reply_in_base64_is_accepted() {
    let ics = mapped(
        &client("apple-ical-1.5-reply.ics"),
        "gpope@certicom.com",
        Some("SRoberts@certicom.com"),
    );
    let raw = openssl_signed("rsa2048/attendee", ATTENDEE, &base64_entity(&ics, "REPLY"));
    let verdict = evaluate(&raw);
    assert_accepted(&verdict);
    assert!(deviations(&verdict).is_empty(), "{:?}", verdict.warnings());
    // The same reply signed by a stranger is not the attendee's.
    let forged = openssl_signed("rsa2048/stranger", ATTENDEE, &base64_entity(&ics, "REPLY"));
    assert_rejected(&evaluate(&forged), Reason::SignerNotCorrelated);
}
