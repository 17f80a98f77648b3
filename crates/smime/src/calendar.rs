//! What counts as calendar content: the one definition the pipeline, the gate and the audit
//! share (issue #11).
//!
//! imipsec's promise is about what the next reader acts on. Calendar servers and clients do
//! not stop at `text/calendar`: Stalwart and Cyrus read `application/ics` attachments, older
//! clients send `text/x-vcalendar`, browsers save `.ics` files as
//! `application/x-extension-ics` or `application/octet-stream`, and Cyrus descends into a
//! forwarded `message/rfc822` and processes the first calendar it finds. Every part any of
//! them could read as calendar data is calendar content here, so that it is either evaluated
//! (inside a verified signed region) or rejects the message (`unprotected-calendar`).
//!
//! A leaf is calendar content when any of these holds:
//!
//! - its media type is in [`CALENDAR_MEDIA_TYPES`];
//! - its `name` (Content-Type) or `filename` (Content-Disposition) parameter ends in one of
//!   [`CALENDAR_FILE_EXTENSIONS`] (a client opens it by name whatever its type says);
//! - its transfer-decoded body begins, after an optional UTF-8 byte order mark and white
//!   space, with `BEGIN:VCALENDAR` in any case (a server that sniffs content reads it).
//!
//! Parts that are a whole message of their own ([`FORWARDED_MESSAGE_TYPES`]) are walked into
//! by readers like Cyrus; a calendar inside one is calendar content too.
//!
//! [`mail_parser_calendars`] applies the definition to the parts mail-parser finds, for the
//! accept-direction check ([`unauthorised_calendars`]) of the pipeline and the gate.

use std::ops::Range;

use mail_parser::{Encoding, Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// Media types read as iCalendar (RFC 5545 §8.1, RFC 6321, RFC 7265) or vCalendar 1.0 data by
/// calendar servers and clients, lowercase `type/subtype`.
pub const CALENDAR_MEDIA_TYPES: &[&str] = &[
    "text/calendar",
    "text/vcalendar",
    "text/x-vcalendar",
    "text/x-calendar",
    "application/ics",
    "application/x-ics",
    "application/x-extension-ics",
    "application/calendar",
    "application/calendar+xml",
    "application/calendar+json",
    "application/vnd.ms-outlook-ics",
];

/// File name extensions clients open as calendars, lowercase, without the dot.
pub const CALENDAR_FILE_EXTENSIONS: &[&str] = &["ics", "ical", "icalendar", "ifb", "vcs"];

/// Media types whose body is a whole message that readers walk into (RFC 2046 §5.2.1,
/// RFC 6532 §3.7); mail-parser 0.11 treats exactly these as nested messages.
pub const FORWARDED_MESSAGE_TYPES: &[&str] = &["message/rfc822", "message/global"];

/// The only charsets under which a calendar is evaluated (RFC 5545 §3.1.4: UTF-8 is the
/// default; US-ASCII is its subset). Another charset means another reader decodes other
/// characters than the ones imipsec checked (UTF-7 turns `+AEE-` into `A`).
pub const CALENDAR_CHARSETS: &[&str] = &["utf-8", "us-ascii"];

/// Why a part is calendar content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CalendarEvidence {
    /// The media type is in [`CALENDAR_MEDIA_TYPES`].
    MediaType,
    /// A `name` or `filename` parameter ends in a [`CALENDAR_FILE_EXTENSIONS`] extension.
    FileName,
    /// The body begins with `BEGIN:VCALENDAR`.
    Content,
}

/// Whether `media_type` (`type/subtype`, any case, no parameters) is a calendar media type.
pub fn is_calendar_media_type(media_type: &str) -> bool {
    CALENDAR_MEDIA_TYPES
        .iter()
        .any(|known| known.eq_ignore_ascii_case(media_type.trim()))
}

/// Whether `media_type` is a forwarded-message type ([`FORWARDED_MESSAGE_TYPES`]).
pub fn is_forwarded_message_type(media_type: &str) -> bool {
    FORWARDED_MESSAGE_TYPES
        .iter()
        .any(|known| known.eq_ignore_ascii_case(media_type.trim()))
}

/// Whether a file name ends in a calendar extension (case-insensitive, trailing white space
/// and dots ignored as Windows does).
pub fn is_calendar_file_name(name: &str) -> bool {
    let name = name.trim_end_matches(|c: char| c.is_whitespace() || c == '.');
    name.rsplit_once('.').is_some_and(|(_, extension)| {
        CALENDAR_FILE_EXTENSIONS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(extension))
    })
}

/// Whether a transfer-decoded body begins like an iCalendar or vCalendar object.
pub fn starts_like_calendar(body: &[u8]) -> bool {
    const BEGIN: &[u8] = b"BEGIN:VCALENDAR";
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let start = body
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(body.len());
    body.get(start..start + BEGIN.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(BEGIN))
}

/// Whether a calendar with this `charset` parameter is evaluated: absent (UTF-8 by RFC 5545
/// §3.1.4, and mail-parser's reading), or one of [`CALENDAR_CHARSETS`].
pub fn is_calendar_charset(charset: Option<&str>) -> bool {
    charset.is_none_or(|charset| {
        CALENDAR_CHARSETS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(charset.trim()))
    })
}

/// Classify a leaf: `media_type` (`type/subtype`), the values of its `name` and `filename`
/// parameters, and its transfer-decoded body. `None`: not calendar content.
pub fn classify<'a>(
    media_type: &str,
    file_names: impl IntoIterator<Item = &'a str>,
    decoded_body: &[u8],
) -> Option<CalendarEvidence> {
    if is_calendar_media_type(media_type) {
        Some(CalendarEvidence::MediaType)
    } else if file_names.into_iter().any(is_calendar_file_name) {
        Some(CalendarEvidence::FileName)
    } else if starts_like_calendar(decoded_body) {
        Some(CalendarEvidence::Content)
    } else {
        None
    }
}

/// A calendar part as mail-parser 0.11 (the Stalwart server's parser) finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCalendar {
    /// The body's byte range in the message (mail-parser's `offset_body..offset_end`), or
    /// `None` where no range in the message exists: inside a forward mail-parser decoded
    /// first, or a message it cannot parse or that nests too deep.
    pub body: Option<Range<usize>>,
    /// What mail-parser found there (`type/subtype`, or a description), for reports.
    pub media_type: String,
}

impl ParsedCalendar {
    /// Whether a verdict that evaluated the calendar bodies at `authorised` (byte ranges in
    /// the message) covers this part: only at exactly the same bytes, and never a part
    /// without a range.
    pub fn is_authorised_by(&self, authorised: &[Range<usize>]) -> bool {
        self.body
            .as_ref()
            .is_some_and(|body| authorised.contains(body))
    }
}

/// Forwarded-message levels [`mail_parser_calendars`] follows; deeper is reported as a
/// calendar without a range (fail closed).
pub const MAX_FORWARD_NESTING: usize = 8;

/// Every calendar part (by this module's definition) that mail-parser finds in `raw`,
/// forwarded messages included. A message mail-parser cannot parse yields one part without a
/// range (fail closed).
pub fn mail_parser_calendars(raw: &[u8]) -> Vec<ParsedCalendar> {
    ParsedMessage::parse(raw).calendars()
}

/// mail-parser's reading of one received message, parsed once (issue 17): the accept
/// direction's calendar parts ([`ParsedMessage::calendars`]) and, for the strict walk's
/// decoder comparison, what it decoded for each part ([`ParsedMessage::decoded_at`]).
pub(crate) struct ParsedMessage<'x> {
    message: Option<Message<'x>>,
}

impl<'x> ParsedMessage<'x> {
    pub(crate) fn parse(raw: &'x [u8]) -> Self {
        ParsedMessage {
            message: MessageParser::new().parse(raw),
        }
    }

    /// [`mail_parser_calendars`] of the message.
    pub(crate) fn calendars(&self) -> Vec<ParsedCalendar> {
        let mut found = Vec::new();
        match &self.message {
            Some(message) => collect(message, true, 0, &mut found),
            None => found.push(ParsedCalendar {
                body: None,
                media_type: "a message mail-parser cannot parse".to_owned(),
            }),
        }
        found
    }

    /// The transfer-decoded body of the leaf mail-parser reads at exactly the bytes `body` of
    /// the message, when it decoded one there without trouble. Only parts in place in the
    /// message are looked at (a forward's parts have offsets into the forward), so a range
    /// names the same bytes for both parsers.
    pub(crate) fn decoded_at(&self, body: Range<usize>) -> Option<&[u8]> {
        self.message
            .as_ref()?
            .parts
            .iter()
            .find(|part| {
                part.offset_body as usize == body.start
                    && part.offset_end as usize == body.end
                    && !part.is_encoding_problem
                    && !matches!(part.body, PartType::Multipart(_) | PartType::Message(_))
            })
            .map(MessagePart::contents)
    }
}

/// The accept direction (issue #11): the calendar parts mail-parser finds in `raw` that are
/// not among `authorised` (the body ranges of the calendar parts a verdict evaluated). An
/// accepted message must yield none: otherwise a calendar server whose parser is mail-parser
/// acts on calendar data nobody checked.
pub fn unauthorised_calendars(raw: &[u8], authorised: &[Range<usize>]) -> Vec<ParsedCalendar> {
    unauthorised_among(&mail_parser_calendars(raw), authorised)
}

/// [`unauthorised_calendars`] of a message whose calendar parts mail-parser already found
/// (`parsed`, [`mail_parser_calendars`] of it): for a caller that keeps that list, so the
/// message is not parsed again (issue 17).
pub fn unauthorised_among(
    parsed: &[ParsedCalendar],
    authorised: &[Range<usize>],
) -> Vec<ParsedCalendar> {
    parsed
        .iter()
        .filter(|part| !part.is_authorised_by(authorised))
        .cloned()
        .collect()
}

/// `type/subtype` of a mail-parser part (`text/plain` when untyped, RFC 2045 §5.2).
pub fn parsed_media_type(part: &MessagePart<'_>) -> String {
    part.content_type().map_or_else(
        || "text/plain".to_owned(),
        |ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()),
    )
}

/// Whether a mail-parser leaf is calendar content by this module's definition.
pub fn is_parsed_calendar(part: &MessagePart<'_>) -> bool {
    let names = part
        .content_type()
        .and_then(|ct| ct.attribute("name"))
        .into_iter()
        .chain(
            part.content_disposition()
                .and_then(|cd| cd.attribute("filename")),
        );
    classify(&parsed_media_type(part), names, part.contents()).is_some()
}

fn collect(message: &Message<'_>, in_place: bool, depth: usize, found: &mut Vec<ParsedCalendar>) {
    if depth > MAX_FORWARD_NESTING {
        found.push(ParsedCalendar {
            body: None,
            media_type: format!("a message nested deeper than {MAX_FORWARD_NESTING} levels"),
        });
        return;
    }
    for part in &message.parts {
        let media_type = parsed_media_type(part);
        match &part.body {
            PartType::Message(nested) => {
                // A forward mail-parser parsed in place has offsets into this message; one
                // it decoded first (a transfer encoding) does not.
                let in_place = in_place && part.encoding == Encoding::None;
                collect(nested, in_place, depth + 1, found);
            }
            PartType::Multipart(_) => {}
            // A forward mail-parser could not parse as one: another reader may.
            _ if is_forwarded_message_type(&media_type)
                && (contains_ignore_case(part.contents(), b"BEGIN:VCALENDAR")
                    || is_parsed_calendar(part)) =>
            {
                found.push(ParsedCalendar {
                    body: None,
                    media_type,
                });
            }
            _ if is_parsed_calendar(part) => found.push(ParsedCalendar {
                body: in_place.then_some(part.offset_body as usize..part.offset_end as usize),
                media_type,
            }),
            _ => {}
        }
    }
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_in_any_case() {
        for media_type in [
            "text/calendar",
            "TEXT/Calendar",
            "application/ics",
            "text/x-vcalendar",
            "application/x-extension-ics",
            "text/vcalendar",
        ] {
            assert!(is_calendar_media_type(media_type), "{media_type}");
        }
        for media_type in ["text/plain", "application/octet-stream", "text/calendarx"] {
            assert!(!is_calendar_media_type(media_type), "{media_type}");
        }
        assert!(is_forwarded_message_type("Message/RFC822"));
        assert!(is_forwarded_message_type("message/global"));
        assert!(!is_forwarded_message_type("message/delivery-status"));
    }

    #[test]
    fn file_names_and_content() {
        assert!(is_calendar_file_name("invite.ics"));
        assert!(is_calendar_file_name("Invite.ICS. "));
        assert!(is_calendar_file_name("old.vcs"));
        assert!(!is_calendar_file_name("ics"));
        assert!(!is_calendar_file_name("notes.txt"));
        assert!(starts_like_calendar(
            b"\xEF\xBB\xBF\r\n begin:vcalendar\r\n"
        ));
        assert!(!starts_like_calendar(b"Hello\r\nBEGIN:VCALENDAR\r\n"));
        assert_eq!(
            classify("application/octet-stream", ["x.ics"], b""),
            Some(CalendarEvidence::FileName)
        );
        assert_eq!(
            classify("text/plain", [], b"BEGIN:VCALENDAR\r\n"),
            Some(CalendarEvidence::Content)
        );
        assert_eq!(classify("text/plain", ["a.txt"], b"hello"), None);
    }

    /// Issue 17: mail-parser's reading of each part in place is found by the part's byte
    /// range; a forward's parts (offsets into the forward) and containers are not.
    #[test]
    fn decoded_parts_are_found_by_their_range() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8=\r\n\
--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na=3Db\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\n\
Content-Transfer-Encoding: base64\r\n\r\naGk=\r\n\
--b--\r\n";
        let body = |needle: &[u8]| {
            let start = raw
                .windows(needle.len())
                .position(|window| window == needle)
                .unwrap();
            start..start + needle.len()
        };
        let parsed = ParsedMessage::parse(raw);
        assert_eq!(
            parsed.decoded_at(body(b"aGVs\r\nbG8=")),
            Some(&b"hello"[..])
        );
        assert_eq!(parsed.decoded_at(body(b"a=3Db")), Some(&b"a=b"[..]));
        assert_eq!(parsed.decoded_at(body(b"aGk=")), None, "inside a forward");
        assert_eq!(parsed.decoded_at(0..raw.len()), None, "a container");
        assert_eq!(parsed.calendars(), mail_parser_calendars(raw));
    }

    #[test]
    fn charsets() {
        assert!(is_calendar_charset(None));
        assert!(is_calendar_charset(Some("UTF-8")));
        assert!(is_calendar_charset(Some("us-ascii")));
        assert!(!is_calendar_charset(Some("utf-7")));
        assert!(!is_calendar_charset(Some("iso-8859-1")));
        assert!(!is_calendar_charset(Some("utf8")));
    }
}
