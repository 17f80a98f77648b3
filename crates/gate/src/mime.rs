//! Is this calendar mail, and how to defuse it: a walk of the MIME tree (RFC 2045/2046).
//!
//! What is calendar content is decided by `imipsec_smime::calendar` (re-exported by the
//! pipeline), the one definition the pipeline and the audit use too: calendar media types,
//! `.ics` names, bodies that begin with `BEGIN:VCALENDAR`, and calendars inside forwarded
//! messages. The gate applies it to the parts mail-parser (the Stalwart server's parser)
//! finds, and on accept checks the accept direction ([`unauthorised_calendars`]).

use std::ops::Range;

use imipsec_pipeline::smime::calendar;
use mail_parser::{HeaderName, Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// Nested `message/rfc822` levels walked before the message counts as calendar mail
/// (fail closed: too deep to inspect means the engine must look).
pub const MAX_NESTING: usize = 8;

/// The content type a rejected calendar part is renamed to when defused.
pub const DEFUSED_CALENDAR: &str = "application/x-imipsec-defused-calendar";
/// The content type a rejected opaque S/MIME part is renamed to when defused.
pub const DEFUSED_SMIME: &str = "application/x-imipsec-defused-smime";
/// The content type of a forwarded message holding calendar data when defused.
pub const DEFUSED_MESSAGE: &str = "application/x-imipsec-defused-message";

/// What the gate can tell about a message without keys or a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inspection {
    /// No `text/calendar` (or `application/ics`) anywhere, and nothing opaque.
    NotCalendar,
    /// Calendar data in the MIME tree, or a message too odd to walk (fail closed).
    Calendar,
    /// An `application/pkcs7-mime` part (opaque-signed or encrypted, RFC 8551 section 3.2):
    /// its content is invisible to a MIME walk, so the engine decides.
    Opaque,
}

/// Kinds of part the gate cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Calendar,
    Opaque,
    Other,
}

fn kind_of(ctype: &str, subtype: &str) -> Kind {
    let is = |t: &str, s: &str| ctype.eq_ignore_ascii_case(t) && subtype.eq_ignore_ascii_case(s);
    if calendar::is_calendar_media_type(&format!("{ctype}/{subtype}")) {
        Kind::Calendar
    } else if is("application", "pkcs7-mime")
        || is("application", "x-pkcs7-mime")
        // The control part of PGP/MIME multipart/encrypted (RFC 3156 §4): what follows it
        // is ciphertext the gate must not wave through as "no calendar".
        || is("application", "pgp-encrypted")
    {
        Kind::Opaque
    } else {
        Kind::Other
    }
}

/// The kind of one part mail-parser found: its media type, and for leaves also its `name` /
/// `filename` and decoded body (the shared definition, `calendar::classify`).
fn part_kind(part: &MessagePart<'_>) -> Kind {
    let (ctype, subtype) = part.content_type().map_or(("text", "plain"), |ct| {
        (ct.ctype(), ct.subtype().unwrap_or_default())
    });
    match kind_of(ctype, subtype) {
        Kind::Other if is_leaf(part) && is_calendar_leaf(part) => Kind::Calendar,
        kind => kind,
    }
}

fn is_leaf(part: &MessagePart<'_>) -> bool {
    !matches!(part.body, PartType::Multipart(_) | PartType::Message(_))
}

/// Whether a leaf is calendar content by the shared definition. A part this gate defused is
/// not: its type says so, and its bytes (which still begin with `BEGIN:VCALENDAR`, under a
/// name that may end in `.ics`) are kept for a human on purpose.
fn is_calendar_leaf(part: &MessagePart<'_>) -> bool {
    let media_type = calendar::parsed_media_type(part);
    let defused = [DEFUSED_CALENDAR, DEFUSED_SMIME, DEFUSED_MESSAGE]
        .iter()
        .any(|defused| defused.eq_ignore_ascii_case(&media_type));
    !defused && calendar::is_parsed_calendar(part)
}

/// A calendar part as mail-parser finds it (`imipsec_smime::calendar::ParsedCalendar`).
pub type CalendarPart = calendar::ParsedCalendar;

/// Every calendar part mail-parser finds in `raw`, forwarded messages included; a message
/// mail-parser cannot parse, or nests too deep, yields a part without a range (fail closed).
/// The shared walk, `imipsec_smime::calendar::mail_parser_calendars`.
pub fn calendar_parts(raw: &[u8]) -> Vec<CalendarPart> {
    calendar::mail_parser_calendars(raw)
}

/// The accept direction (issue #11): the calendar parts mail-parser finds in `raw` that are
/// not among `authorised`, the body ranges of the calendar parts the verdict evaluated. An
/// accepted message must yield none: otherwise the calendar server, whose parser is
/// mail-parser, would act on calendar data nobody checked. The pipeline runs the same check
/// before it records anything; the gate runs it again on the bytes it passes on.
pub fn unauthorised_calendars(raw: &[u8], authorised: &[Range<usize>]) -> Vec<CalendarPart> {
    calendar::unauthorised_calendars(raw, authorised)
}

/// [`unauthorised_calendars`] of a message whose calendar parts mail-parser already found
/// (`parsed`, `imipsec_pipeline::Prepared::mail_parser_calendars`).
pub fn unauthorised_among(
    parsed: &[CalendarPart],
    authorised: &[Range<usize>],
) -> Vec<CalendarPart> {
    calendar::unauthorised_among(parsed, authorised)
}

/// Classify `raw`. A message mail-parser cannot parse at all counts as calendar mail,
/// so it goes to the engine rather than through unchecked; so does one whose MIME tree,
/// as mail-parser reads it, holds no calendar part while some line of it is a
/// Content-Type field naming a calendar type (a part that another walk would find).
///
/// The line scan goes first: when it finds such a field the answer is `Calendar` whatever
/// the walk would say, so calendar mail (most of what reaches the engine) is classified
/// without a mail-parser parse (issue 17; the engine's walk parses it anyway).
pub fn inspect(raw: &[u8]) -> Inspection {
    if names_calendar_anywhere(raw) {
        return Inspection::Calendar;
    }
    match MessageParser::new().parse(raw) {
        Some(message) => inspect_message(&message, 0),
        None => Inspection::Calendar,
    }
}

/// Whether any line of `raw` starts a `Content-Type` header field (with its continuation
/// lines) that mail-parser's header parser reads as a calendar type, wherever the line
/// stands: in a part's header, in a body, past a boundary one parser honours and another
/// does not.
///
/// A MIME walk decides where parts begin, and walks differ exactly where attackers aim:
/// an unclosed inner multipart followed by the outer boundary is a calendar part to the
/// S/MIME layer's strict walk (and to calendar servers that read it the same way) and no
/// part at all to mail-parser (found by fuzz/gate_mime). Any calendar part some walk can
/// find has such a field at a line start, so this check makes the gate hand the message
/// to the engine whichever walk the calendar server uses; a message that only mentions
/// `text/calendar` in prose does not match.
fn names_calendar_anywhere(raw: &[u8]) -> bool {
    calendar_fields(raw).next().is_some()
}

/// The line starts of the fields [`names_calendar_anywhere`] looks for, in order.
fn calendar_fields(raw: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut start = 0;
    std::iter::from_fn(move || {
        while let Some(rest) = raw.get(start..).filter(|rest| !rest.is_empty()) {
            let here = start;
            start = line_end(raw, here);
            if is_content_type_field(rest) && field_names_calendar(raw, here, start) {
                return Some(here);
            }
        }
        None
    })
}

/// Whether the Content-Type field whose first line is `raw[start..next]` (continuation
/// lines follow, RFC 5322 section 2.2.3) names a calendar type to mail-parser's header parser.
fn field_names_calendar(raw: &[u8], start: usize, next: usize) -> bool {
    let mut end = next;
    while matches!(raw.get(end), Some(b' ' | b'\t')) {
        end = line_end(raw, end);
    }
    let mut field = raw.get(start..end).unwrap_or_default().to_vec();
    field.extend_from_slice(b"\r\n\r\n");
    MessageParser::default()
        .parse_headers(&field)
        .is_some_and(|headers| {
            headers.headers().iter().any(|header| {
                header.name == HeaderName::ContentType
                    && header.value.as_content_type().is_some_and(|ct| {
                        kind_of(ct.ctype(), ct.subtype().unwrap_or_default()) == Kind::Calendar
                    })
            })
        })
}

/// The name a calendar Content-Type field in the body gets when defused: as long as
/// `Content-Type`, so no offset moves; the part then has no type and reads as text/plain
/// (RFC 2045 section 5.2) to every walk, its bytes kept for a human.
const DEFUSED_FIELD_NAME: &[u8; 12] = b"X-Defused-CT";

/// Renames every calendar Content-Type field at or after `body_start` (see
/// [`DEFUSED_FIELD_NAME`]); those before it are the top-level header, which only the MTA
/// can change.
fn rename_calendar_fields(message: &mut [u8], body_start: usize) {
    let starts: Vec<usize> = calendar_fields(message)
        .filter(|&start| start >= body_start)
        .collect();
    for start in starts {
        if let Some(name) = message.get_mut(start..start + DEFUSED_FIELD_NAME.len()) {
            name.copy_from_slice(DEFUSED_FIELD_NAME);
        }
    }
}

/// The offset just past the line that starts at `start` (past its LF, or the end).
fn line_end(raw: &[u8], start: usize) -> usize {
    raw.get(start..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
        .map_or(raw.len(), |i| start + i + 1)
}

/// `Content-Type`, in any case, then optional white space and a colon.
fn is_content_type_field(line: &[u8]) -> bool {
    const NAME: &[u8] = b"content-type";
    line.get(..NAME.len())
        .is_some_and(|name| name.eq_ignore_ascii_case(NAME))
        && line
            .get(NAME.len()..)
            .unwrap_or_default()
            .iter()
            .find(|&&b| b != b' ' && b != b'\t')
            == Some(&b':')
}

fn inspect_message(message: &Message<'_>, depth: usize) -> Inspection {
    if depth > MAX_NESTING {
        return Inspection::Calendar;
    }
    let mut found = Inspection::NotCalendar;
    for part in &message.parts {
        match part_kind(part) {
            Kind::Calendar => return Inspection::Calendar,
            Kind::Opaque => found = Inspection::Opaque,
            Kind::Other => {}
        }
        if let PartType::Message(nested) = &part.body {
            match inspect_message(nested, depth + 1) {
                Inspection::Calendar => return Inspection::Calendar,
                Inspection::Opaque => found = Inspection::Opaque,
                Inspection::NotCalendar => {}
            }
        }
    }
    found
}

/// A message whose calendar (and opaque S/MIME) parts were renamed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defused {
    /// The whole rewritten message.
    pub message: Vec<u8>,
    /// Offset in [`Self::message`] where the top-level body starts.
    pub body_start: usize,
    /// Set when the top-level `Content-Type` itself was renamed: `(from, to)`, to be
    /// applied to the header as the MTA holds it (milter `chgheader`).
    pub top_level: Option<(String, &'static str)>,
}

impl Defused {
    /// The rewritten top-level body.
    pub fn body(&self) -> &[u8] {
        self.message.get(self.body_start..).unwrap_or_default()
    }
}

struct Edit {
    start: usize,
    end: usize,
    replacement: &'static str,
}

/// Rename every calendar part's content type so no calendar server processes it, keeping
/// the bytes for a human. `None` when the message cannot be shown to be defused: nothing
/// was renamed (the gate's parser sees no calendar part, yet the verdict found one), the
/// message does not parse, or a calendar is still visible after renaming. The caller then
/// must not deliver it (fail closed: quarantine or reject).
pub fn defuse(raw: &[u8]) -> Option<Defused> {
    let mut defused = defuse_once(raw)?;
    // A rename can change how the rest of the message parses: a forwarded message/rfc822
    // that reuses the outer boundary exposes its own parts, calendar included, once it is
    // no longer message/rfc822 (found by fuzz/gate_mime). Rename again until the gate sees
    // no calendar; each round renames at least one part, and the rounds are bounded.
    for _ in 0..4 * (MAX_NESTING + 1) {
        if inspect(&defused.message) != Inspection::Calendar {
            break;
        }
        let Some(again) = defuse_once(&defused.message) else {
            break;
        };
        // The top-level header as the MTA holds it is renamed at most once: a renamed type
        // is never renamed again.
        let top_level = again.top_level.or(defused.top_level);
        defused = Defused { top_level, ..again };
    }
    // Calendar fields left in the body are in parts mail-parser does not walk into (a
    // renamed forwarded message) or does not see as parts at all (fuzz/gate_mime); another
    // walk may, so they lose their name too.
    rename_calendar_fields(&mut defused.message, defused.body_start);
    (inspect(&defused.message) != Inspection::Calendar).then_some(defused)
}

/// One renaming pass over the parts mail-parser finds in `raw`.
fn defuse_once(raw: &[u8]) -> Option<Defused> {
    let message = MessageParser::new().parse(raw)?;
    let root_body = message
        .parts
        .first()
        .map_or(raw.len(), |root| root.offset_body as usize);
    let mut edits = Vec::new();
    let mut top_level = None;
    for part in &message.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let subtype = ct.subtype().unwrap_or_default();
        let replacement = match part_kind(part) {
            Kind::Calendar => DEFUSED_CALENDAR,
            Kind::Opaque => DEFUSED_SMIME,
            Kind::Other => match &part.body {
                PartType::Message(nested)
                    if inspect_message(nested, 1) != Inspection::NotCalendar =>
                {
                    DEFUSED_MESSAGE
                }
                _ => continue,
            },
        };
        let needle = format!("{}/{}", ct.ctype(), subtype);
        for header in &part.headers {
            if header.name != HeaderName::ContentType {
                continue;
            }
            let (start, end) = (header.offset_start as usize, header.offset_end as usize);
            let Some(value) = raw.get(start..end) else {
                continue;
            };
            if let Some(at) = find_ignore_case(value, needle.as_bytes()) {
                edits.push(Edit {
                    start: start + at,
                    end: start + at + needle.len(),
                    replacement,
                });
                if start < root_body {
                    top_level = Some((needle.clone(), replacement));
                }
            }
        }
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|edit| edit.start);
    let mut out = Vec::with_capacity(raw.len() + edits.len() * 32);
    let mut cursor = 0;
    let mut body_start = None;
    for edit in &edits {
        if edit.start < cursor {
            continue; // overlapping header ranges: already rewritten
        }
        if body_start.is_none() && edit.start >= root_body {
            body_start = Some(out.len() + (root_body - cursor));
        }
        out.extend_from_slice(raw.get(cursor..edit.start)?);
        out.extend_from_slice(edit.replacement.as_bytes());
        cursor = edit.end;
    }
    if body_start.is_none() {
        body_start = Some(out.len() + root_body.saturating_sub(cursor));
    }
    out.extend_from_slice(raw.get(cursor..)?);
    Some(Defused {
        message: out,
        body_start: body_start.unwrap_or(0),
        top_level,
    })
}

/// Case-insensitive byte search.
pub(crate) fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"From: a@example.net\r\nTo: b@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1\r\nContent-Type: TEXT/Calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n--b1--\r\n";

    #[test]
    fn plain_mail_is_not_calendar() {
        let raw =
            b"From: a@example.net\r\nSubject: hi\r\n\r\ntext/calendar mentioned in prose only\r\n";
        assert_eq!(inspect(raw), Inspection::NotCalendar);
    }

    #[test]
    fn nested_calendar_part_is_found() {
        assert_eq!(inspect(INVITE), Inspection::Calendar);
    }

    #[test]
    fn calendar_inside_forwarded_message_is_found() {
        let raw = b"From: a@example.net\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@example.net\r\nContent-Type: text/calendar; method=CANCEL\r\n\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n--o--\r\n";
        assert_eq!(inspect(raw), Inspection::Calendar);
        let defused = defuse(raw).unwrap();
        let text = String::from_utf8(defused.message).unwrap();
        assert!(text.contains("Content-Type: application/x-imipsec-defused-message"));
        // The forwarded message's own calendar field loses its name too.
        assert!(text.contains("X-Defused-CT: text/calendar; method=CANCEL"));
        assert!(defused.top_level.is_none());
    }

    /// Issue #18: PGP/MIME encrypted mail is ciphertext the gate cannot see into, like
    /// enveloped S/MIME: evaluated (and kept to the undecryptable policy), never passed as
    /// "no calendar" unseen.
    #[test]
    fn pgp_mime_encrypted_is_opaque() {
        let raw = b"From: a@example.net\r\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=e\r\n\r\n--e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--e\r\nContent-Type: application/octet-stream\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nhF4D\r\n-----END PGP MESSAGE-----\r\n--e--\r\n";
        assert_eq!(inspect(raw), Inspection::Opaque);
    }

    #[test]
    fn opaque_smime_is_opaque() {
        let raw = b"From: a@example.net\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIACAQAx\r\n";
        assert_eq!(inspect(raw), Inspection::Opaque);
    }

    #[test]
    fn defuse_renames_nested_part_in_body_only() {
        let defused = defuse(INVITE).unwrap();
        let text = String::from_utf8(defused.message.clone()).unwrap();
        assert!(
            text.contains("Content-Type: application/x-imipsec-defused-calendar; method=REQUEST")
        );
        assert!(!text.to_ascii_lowercase().contains("text/calendar"));
        assert!(defused.top_level.is_none());
        assert!(defused.body().starts_with(b"--b1\r\n"));
        assert_eq!(inspect(&defused.message), Inspection::NotCalendar);
    }

    #[test]
    fn defuse_reports_top_level_rename() {
        let raw = b"From: a@example.net\r\nContent-Type: text/calendar; method=CANCEL\r\n\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n";
        let defused = defuse(raw).unwrap();
        assert_eq!(
            defused.top_level,
            Some(("text/calendar".to_owned(), DEFUSED_CALENDAR))
        );
        assert_eq!(defused.body(), b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n");
    }

    /// Regression (fuzz/gate_mime): a forwarded message reusing the outer boundary holds a
    /// calendar; renaming the message/rfc822 part made its inner parts top-level parts of
    /// the outer multipart, so the "defused" message exposed a live calendar.
    #[test]
    fn defuse_leaves_no_calendar_exposed_by_a_reused_boundary() {
        let raw = b"From: a@example.net\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n\
--o\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
--o\r\nContent-Type: message/rfc822\r\n\r\n\
From: c@example.net\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n\
--o\r\nContent-Type: text/plain\r\n\r\ninner\r\n\
--o\r\nContent-Type: message/rfc822\r\n\r\n\
From: d@example.net\r\nContent-Type: text/calendar; method=CANCEL\r\n\r\n\
BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n\
--o--\r\n\
--o--\r\n";
        assert_eq!(inspect(raw), Inspection::Calendar);
        let defused = defuse(raw).unwrap();
        assert_ne!(inspect(&defused.message), Inspection::Calendar);
    }

    /// Regression (fuzz/gate_mime): an inner multipart that is never closed, then the
    /// outer boundary and a calendar part. The S/MIME walk ends the forwarded message at the
    /// outer boundary and finds the calendar; mail-parser's walk does not. Delivered
    /// untouched, it would reach a calendar server that reads it like the S/MIME walk.
    #[test]
    fn a_calendar_only_another_mime_walk_finds_goes_to_the_engine() {
        let raw = b"From: a@example.net\r\nContent-Type: multipart/report; boundary=o\r\n\r\n\
--o\r\nContent-Type: text/plain\r\n\r\nnote\r\n\
--o\r\nContent-Type: message/rfc822\r\n\r\n\
From: c@example.net\r\nContent-Type: multipart/mixed;\r\n boundary=i\r\n\r\n\
--i\r\nContent-Type: text/plain\r\n\r\ninner, never closed\r\n\
--o\r\nContent-Type: text/calendar; charset=utf-8\r\n\r\n\
BEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\nEND:VCALENDAR\r\n\
--j--\r\n\
--o--\r\n";
        let walked = MessageParser::new()
            .parse(&raw[..])
            .map(|message| inspect_message(&message, 0));
        assert_eq!(
            walked,
            Some(Inspection::NotCalendar),
            "mail-parser's walk misses the calendar (else this test shows nothing)"
        );
        assert_eq!(inspect(raw), Inspection::Calendar);
        // mail-parser sees no part to rename, so the message cannot be defused: the gate
        // then quarantines or refuses it rather than deliver it.
        assert!(defuse(raw).is_none());
    }

    #[test]
    fn content_type_fields_are_found_folded_spaced_and_in_any_case() {
        for text in [
            &b"x\r\nContent-Type: text/calendar\r\n"[..],
            b"x\ncontent-type :\n\tTEXT/Calendar; method=REQUEST\n",
            b"CONTENT-TYPE:application/ics\r\n",
        ] {
            assert!(
                names_calendar_anywhere(text),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        for text in [
            &b"see text/calendar in prose\r\n"[..],
            b"X-Content-Type: text/calendar\r\n",
            b"Content-Type: text/plain\r\n text/calendar is not a type here\r\n",
            b"Content-Type-Foo: text/calendar\r\n",
        ] {
            assert!(
                !names_calendar_anywhere(text),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    /// The accept direction with the real pipeline (issue #11): what it accepts, mail-parser
    /// reads at the same byte ranges; what mail-parser finds beyond them rejects.
    mod accept_direction {
        use std::ops::Range;

        use imipsec_pipeline::smime::TrustStore;
        use imipsec_pipeline::smime::keys::Identity;
        use imipsec_pipeline::smime::sign::{SignOptions, sign_detached};
        use imipsec_pipeline::{Pipeline, Settings};
        use time::macros::datetime;

        use crate::decide::{Decide, Envelope, Outcome};
        use crate::pipeline_engine::{PipelineEngine, accept_direction};

        use super::*;

        const AT: time::OffsetDateTime = datetime!(2026-06-01 00:00:00 UTC);

        fn certs() -> std::path::PathBuf {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../certs")
        }

        fn pipeline() -> Pipeline {
            let trust = TrustStore::from_pem_files(
                &[certs().join("root.cert.pem")],
                &[certs().join("intermediate.crl.pem")],
            )
            .unwrap();
            Pipeline::new(Settings::new(trust))
        }

        fn organizer_signed(entity: &[u8]) -> Vec<u8> {
            let mut pem = std::fs::read(certs().join("rsa2048/organizer.key.pem")).unwrap();
            pem.extend(std::fs::read(certs().join("rsa2048/organizer.chain.pem")).unwrap());
            let options = SignOptions {
                signing_time: Some(AT),
                ..SignOptions::default()
            };
            sign_detached(entity, &Identity::from_pem(&pem).unwrap(), &options).unwrap()
        }

        const CALENDAR: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//gate//EN\r\n\
METHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:gate-accept@example.com\r\nDTSTAMP:20260601T000000Z\r\n\
ORGANIZER:mailto:organizer@example.com\r\nDTSTART:20260615T100000Z\r\nSUMMARY:Planning\r\n\
SEQUENCE:0\r\nATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:attendee@example.com\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

        fn header(content_type: &str) -> Vec<u8> {
            format!(
                "From: organizer@example.com\r\nTo: attendee@example.com\r\nSubject: x\r\n\
Date: Mon, 01 Jun 2026 00:00:00 +0000\r\nMIME-Version: 1.0\r\n{content_type}"
            )
            .into_bytes()
        }

        /// The organizer's invitation in a multipart/mixed, then `extra` parts unsigned.
        fn message(calendar_entity: &[u8], extra: &[&[u8]]) -> Vec<u8> {
            with_signed(&organizer_signed(calendar_entity), extra)
        }

        fn with_signed(signed: &[u8], extra: &[&[u8]]) -> Vec<u8> {
            let mut raw = header("Content-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\n");
            raw.extend_from_slice(signed);
            for part in extra {
                raw.extend_from_slice(b"\r\n--o\r\n");
                raw.extend_from_slice(part);
            }
            raw.extend_from_slice(b"\r\n--o--\r\n");
            raw
        }

        fn evaluate(raw: &[u8]) -> (imipsec_pipeline::Verdict, Vec<Range<usize>>) {
            let verdict = pipeline()
                .evaluate(
                    raw,
                    &imipsec_pipeline::Evaluation {
                        at: AT,
                        recipient: Some("attendee@example.com"),
                        record: false,
                    },
                    None,
                )
                .unwrap();
            let ranges = verdict.calendar_ranges().to_vec();
            (verdict, ranges)
        }

        fn decide(raw: &[u8]) -> crate::decide::GateVerdict {
            PipelineEngine::new(pipeline(), None)
                .decide(
                    raw,
                    &Envelope::default(),
                    &["attendee@example.com".to_owned()],
                    AT,
                )
                .pop()
                .unwrap()
                .unwrap()
                .verdict
        }

        fn qp(text: &str) -> String {
            text.replace('=', "=3D")
        }

        /// Control: accepted messages pass the accept direction with every transfer
        /// encoding, with an application/ics copy beside text/calendar, and stored with bare
        /// LF (offsets into the received bytes, not the pipeline's canonical copy).
        #[test]
        fn accepted_messages_are_read_at_the_same_ranges_by_mail_parser() {
            let plain = format!(
                "Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n{CALENDAR}"
            );
            let base64 = format!(
                "Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                base64_lines(CALENDAR.as_bytes())
            );
            let quoted = format!(
                "Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\n{}",
                qp(CALENDAR)
            );
            let both = format!(
                "Content-Type: multipart/mixed; boundary=\"i\"\r\n\r\n--i\r\n{plain}\r\n--i\r\n\
Content-Type: application/ics; name=invite.ics\r\n\r\n{CALENDAR}\r\n--i--\r\n"
            );
            for (what, entity, calendars) in [
                ("7bit", plain.as_str(), 1),
                ("base64", &base64, 1),
                ("quoted-printable", &quoted, 1),
                ("text/calendar and application/ics", &both, 2),
            ] {
                let raw = message(entity.as_bytes(), &[]);
                let (verdict, ranges) = evaluate(&raw);
                assert!(verdict.is_accept(), "{what}: {:?}", verdict.reasons());
                assert_eq!(ranges.len(), calendars, "{what}");
                assert_eq!(unauthorised_calendars(&raw, &ranges), [], "{what}");
                assert_eq!(decide(&raw).outcome, Outcome::Accept, "{what}");
                // Stored with bare LF line endings (mbox): the ranges are the received bytes'.
                let stored: Vec<u8> = String::from_utf8(raw)
                    .unwrap()
                    .replace("\r\n", "\n")
                    .into_bytes();
                let (verdict, ranges) = evaluate(&stored);
                assert!(
                    verdict.is_accept(),
                    "{what} bare LF: {:?}",
                    verdict.reasons()
                );
                assert_eq!(
                    unauthorised_calendars(&stored, &ranges),
                    [],
                    "{what} bare LF"
                );
            }
        }

        fn base64_lines(bytes: &[u8]) -> String {
            const ALPHABET: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut out = String::new();
            for (index, chunk) in bytes.chunks(3).enumerate() {
                if index > 0 && index % 19 == 0 {
                    out.push_str("\r\n");
                }
                let b = [
                    chunk[0],
                    chunk.get(1).copied().unwrap_or(0),
                    chunk.get(2).copied().unwrap_or(0),
                ];
                let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
                for i in 0..4 {
                    if i <= chunk.len() {
                        out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
                    } else {
                        out.push('=');
                    }
                }
            }
            out
        }

        /// The gate's own check, independent of the pipeline's: a verdict that evaluated the
        /// signed invitation only (as the pipeline before issue #11 did) stays an accept only
        /// while mail-parser finds no other calendar. An unsigned application/ics, an .ics
        /// attachment, a forward holding a calendar beside it: rejected.
        #[test]
        fn calendar_data_the_verdict_did_not_evaluate_rejects_an_accept() {
            let invite = format!(
                "Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n{CALENDAR}"
            );
            let signed = organizer_signed(invite.as_bytes());
            let control = with_signed(&signed, &[]);
            let (verdict, authorised) = evaluate(&control);
            assert!(verdict.is_accept(), "{:?}", verdict.reasons());
            let accepted = crate::pipeline_engine::gate_verdict(&verdict, Inspection::Calendar);
            assert_eq!(
                accept_direction(accepted.clone(), &control, &authorised).outcome,
                Outcome::Accept
            );
            let cancel = CALENDAR.replace("REQUEST", "CANCEL");
            let extras = [
                format!("Content-Type: application/ics\r\n\r\n{cancel}"),
                format!("Content-Type: text/x-vcalendar\r\n\r\n{cancel}"),
                format!(
                    "Content-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=cancel.ics\r\n\r\n{cancel}"
                ),
                format!("Content-Type: text/plain\r\n\r\n{cancel}"),
                format!(
                    "Content-Type: message/rfc822\r\n\r\nFrom: m@example.net\r\n\
Content-Type: text/calendar; method=CANCEL\r\n\r\n{cancel}"
                ),
            ];
            for extra in &extras {
                // The signed part keeps its offsets: the extra part comes after it.
                let attack = with_signed(&signed, &[extra.as_bytes()]);
                assert!(attack.starts_with(&control[..control.len() - 7]));
                let judged = accept_direction(accepted.clone(), &attack, &authorised);
                assert_eq!(judged.outcome, Outcome::Reject, "{extra}");
                assert_eq!(judged.primary_code(), "unprotected-calendar", "{extra}");
                // And the pipeline itself rejects it too.
                assert_eq!(decide(&attack).outcome, Outcome::Reject, "{extra}");
            }
        }
    }

    /// Issue #11: the gate counted only text/calendar and application/ics as calendar
    /// content, so an unsigned text/x-vcalendar (or an .ics attachment, or a text/plain
    /// VCALENDAR) passed untouched without the engine ever seeing it.
    #[test]
    fn every_calendar_shape_of_the_shared_definition_goes_to_the_engine() {
        let calendar = "BEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\nEND:VCALENDAR\r\n";
        for headers in [
            "Content-Type: text/x-vcalendar\r\n",
            "Content-Type: application/x-extension-ics\r\n",
            "Content-Type: text/vcalendar\r\n",
            "Content-Type: application/octet-stream; name=\"invite.ics\"\r\n",
            "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=x.ICS\r\n",
            "Content-Type: text/plain\r\n",
        ] {
            let raw = format!(
                "From: a@example.net\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n\
--o\r\nContent-Type: text/plain\r\n\r\nhello\r\n--o\r\n{headers}\r\n{calendar}\r\n--o--\r\n"
            );
            assert_eq!(inspect(raw.as_bytes()), Inspection::Calendar, "{headers}");
            assert_eq!(calendar_parts(raw.as_bytes()).len(), 1, "{headers}");
        }
    }

    /// `inspect` checks the line scan before the walk (issue 17). The order must not change
    /// a classification: compared with walk-then-scan, the order before, on every message
    /// of the repository's test data and fuzz regressions and on the shapes where the two
    /// halves disagree (a calendar only the scan finds, one only the walk finds, an opaque
    /// part beside a calendar field).
    #[test]
    fn scanning_first_classifies_every_message_as_walking_first_did() {
        fn walk_then_scan(raw: &[u8]) -> Inspection {
            let walked = match MessageParser::new().parse(raw) {
                Some(message) => inspect_message(&message, 0),
                None => Inspection::Calendar,
            };
            if walked != Inspection::Calendar && names_calendar_anywhere(raw) {
                return Inspection::Calendar;
            }
            walked
        }
        fn files(dir: &std::path::Path, out: &mut Vec<Vec<u8>>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    files(&path, out);
                } else {
                    out.push(std::fs::read(&path).unwrap());
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut messages = Vec::new();
        files(&root.join("testdata"), &mut messages);
        files(&root.join("fuzz/regressions"), &mut messages);
        assert!(messages.len() > 40, "the test data was not found");
        // mail-parser 0.11.9's debug_assert on this input (fuzz/README.md) panics in a
        // debug build of the reference's parse.
        let known = std::fs::read(root.join("fuzz/regressions/mail-parser-0.11.9-debug-assert"));
        messages.retain(|raw| Some(raw) != known.as_ref().ok());
        let calendar = "BEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\nEND:VCALENDAR\r\n";
        for shape in [
            // only the walk: a calendar body under text/plain
            format!(
                "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n\
                 Content-Type: text/plain\r\n\r\n{calendar}\r\n--o--\r\n"
            ),
            // opaque, with a calendar field in prose at a line start
            "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\n\
             Content-Type: text/calendar\r\n--o\r\nContent-Type: application/pkcs7-mime\r\n\r\n\
             MIIB\r\n--o--\r\n"
                .to_owned(),
            // opaque alone, plain alone, unparseable
            "Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n\r\nMIIB\r\n"
                .to_owned(),
            "From: a@example.net\r\n\r\nhello\r\n".to_owned(),
            String::new(),
        ] {
            messages.push(shape.into_bytes());
        }
        messages.push(INVITE.to_vec());
        for raw in &messages {
            assert_eq!(
                inspect(raw),
                walk_then_scan(raw),
                "{}",
                String::from_utf8_lossy(&raw[..raw.len().min(300)])
            );
        }
    }

    #[test]
    fn nothing_to_defuse_in_plain_mail() {
        assert!(defuse(b"From: a@example.net\r\n\r\nhello\r\n").is_none());
    }
}
