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
