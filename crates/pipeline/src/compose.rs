//! Building iMIP messages (RFC 6047 section 2) for `imipsec sign`.
//!
//! Headers and MIME structure are produced by mail-builder, which encodes header values and
//! chooses a transfer encoding; calendar text is carried as the exact (checked, CRLF
//! canonical) bytes that were validated. Nothing here concatenates user values into
//! iCalendar or header syntax.

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};
use thiserror::Error;

/// Why a message could not be composed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ComposeError {
    /// A header value holds a CR, LF or other control character (header injection).
    #[error("{field} contains a control character at byte {offset}")]
    HeaderControl {
        /// Which header.
        field: HeaderField,
        /// Byte offset in the value.
        offset: usize,
    },
    /// An address is not a plain `local@domain` address.
    #[error("{field} is not a plain e-mail address")]
    InvalidAddress {
        /// Which header.
        field: HeaderField,
    },
    /// No calendar to send.
    #[error("nothing to compose: no calendar")]
    NoCalendar,
    /// No recipient.
    #[error("no recipient: give --to or an ATTENDEE/ORGANIZER to send to")]
    NoRecipient,
    /// No sender.
    #[error("no sender: give --from or an ORGANIZER/ATTENDEE with a mailto: address")]
    NoSender,
    /// Writing the MIME structure failed.
    #[error("could not write the MIME structure: {0}")]
    Write(#[from] std::io::Error),
}

/// Which header a [`ComposeError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderField {
    /// From.
    From,
    /// To.
    To,
    /// Subject.
    Subject,
    /// A MIME parameter (method, component, filename).
    MimeParameter,
    /// Message-ID.
    MessageId,
}

impl std::fmt::Display for HeaderField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HeaderField::From => "From",
            HeaderField::To => "To",
            HeaderField::Subject => "Subject",
            HeaderField::MimeParameter => "a MIME parameter",
            HeaderField::MessageId => "Message-ID",
        })
    }
}

/// One `text/calendar` body part: a whole iCalendar object with one METHOD
/// (RFC 6047 section 2.4).
#[derive(Debug, Clone)]
pub struct CalendarPart {
    /// The calendar text, already checked by [`crate::canonical_calendar`].
    pub text: String,
    /// The METHOD, for the `method` parameter (must equal the calendar's METHOD).
    pub method: String,
    /// The component type, for the `component` parameter (`VEVENT`, ...).
    pub component: String,
    /// The file name offered in Content-Disposition (`invite.ics`).
    pub filename: String,
    /// The human-readable text shown by mail clients that do not understand calendars.
    pub description: String,
}

/// Check a header value: no CR, LF or other control character.
pub fn check_header_value(field: HeaderField, value: &str) -> Result<(), ComposeError> {
    match value
        .bytes()
        .position(|byte| (byte < 0x20 && byte != b'\t') || byte == 0x7f)
    {
        Some(offset) => Err(ComposeError::HeaderControl { field, offset }),
        None => Ok(()),
    }
}

/// Check a plain address (`local@domain`, no display name, no angle brackets or spaces).
pub fn check_address(field: HeaderField, address: &str) -> Result<(), ComposeError> {
    check_header_value(field, address)?;
    let plain = address.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && address
                .bytes()
                .all(|byte| byte > 0x20 && !matches!(byte, b'<' | b'>' | b'"' | b',' | b';'))
    });
    if plain {
        Ok(())
    } else {
        Err(ComposeError::InvalidAddress { field })
    }
}

/// A mailbox: an address with an optional display name (RFC 5322 §3.4 `name-addr`), as
/// `--from 'Alice Example <alice@example.org>'` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name, unencoded (any Unicode); `None` for a bare address.
    pub name: Option<String>,
    /// The plain `local@domain` address.
    pub address: String,
}

/// A bare address (no display name); checked when the message is composed.
impl From<&str> for Mailbox {
    fn from(address: &str) -> Self {
        Mailbox::address(address)
    }
}

/// A bare address (no display name); checked when the message is composed.
impl From<String> for Mailbox {
    fn from(address: String) -> Self {
        Mailbox::address(address)
    }
}

/// Longest display name accepted, in bytes: a name, not a paragraph.
pub const MAX_DISPLAY_NAME_BYTES: usize = 256;

impl Mailbox {
    /// A bare address.
    pub fn address(address: impl Into<String>) -> Mailbox {
        Mailbox {
            name: None,
            address: address.into(),
        }
    }

    /// Reads `local@domain`, `<local@domain>`, `Name <local@domain>` or
    /// `"Name, Title" <local@domain>` (a quoted name may escape `"` and `\` with `\`).
    /// Control characters anywhere, angle brackets inside the name and anything but a plain
    /// address between the brackets are refused.
    pub fn parse(field: HeaderField, text: &str) -> Result<Mailbox, ComposeError> {
        check_header_value(field, text)?;
        let text = text.trim();
        let Some(rest) = text.strip_suffix('>') else {
            check_address(field, text)?;
            return Ok(Mailbox::address(text));
        };
        let (name, address) = rest
            .rsplit_once('<')
            .ok_or(ComposeError::InvalidAddress { field })?;
        check_address(field, address)?;
        let name = name.trim();
        let name = match name
            .strip_prefix('"')
            .and_then(|quoted| quoted.strip_suffix('"'))
        {
            Some(quoted) => unquote(quoted).ok_or(ComposeError::InvalidAddress { field })?,
            None if name.contains('"') => return Err(ComposeError::InvalidAddress { field }),
            None => name.to_owned(),
        };
        if name.contains(['<', '>']) || name.len() > MAX_DISPLAY_NAME_BYTES {
            return Err(ComposeError::InvalidAddress { field });
        }
        Ok(Mailbox {
            name: (!name.is_empty()).then_some(name),
            address: address.to_owned(),
        })
    }

    /// The header value: `<addr>`, `"Name" <addr>`, or RFC 2047 encoded-words for a
    /// non-ASCII name (`=?utf-8?B?...?= <addr>`; RFC 2047 §5 (3): an encoded-word stands
    /// for a `word` of the phrase and never inside a quoted-string).
    fn header_value(&self) -> String {
        let Some(name) = &self.name else {
            return format!("<{}>", self.address);
        };
        if name.is_ascii() {
            let mut quoted = String::with_capacity(name.len() + 2);
            quoted.push('"');
            for character in name.chars() {
                if matches!(character, '"' | '\\') {
                    quoted.push('\\');
                }
                quoted.push(character);
            }
            quoted.push('"');
            return format!("{quoted} <{}>", self.address);
        }
        // RFC 2047 §2: an encoded-word is at most 75 characters; 45 bytes give 60 base64
        // characters plus 12 for `=?utf-8?B?` and `?=`. Words split at character boundaries
        // (§5: each word must decode to whole characters).
        let mut words = Vec::new();
        let mut chunk = String::new();
        for character in name.chars() {
            if chunk.len() + character.len_utf8() > 45 {
                words.push(format!("=?utf-8?B?{}?=", base64(chunk.as_bytes())));
                chunk.clear();
            }
            chunk.push(character);
        }
        if !chunk.is_empty() {
            words.push(format!("=?utf-8?B?{}?=", base64(chunk.as_bytes())));
        }
        format!("{} <{}>", words.join(" "), self.address)
    }
}

/// The content of a quoted-string (RFC 5322 §3.2.4): `\x` stands for `x`; a bare `"` or a
/// trailing `\` is not valid.
fn unquote(quoted: &str) -> Option<String> {
    let mut out = String::with_capacity(quoted.len());
    let mut characters = quoted.chars();
    while let Some(character) = characters.next() {
        match character {
            '\\' => out.push(characters.next()?),
            '"' => return None,
            other => out.push(other),
        }
    }
    Some(out)
}

/// Standard base64 (RFC 4648 §4) with padding, for encoded-words.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let symbol = |index: u32| char::from(ALPHABET[(index & 63) as usize]);
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let mut value = 0u32;
        for (position, byte) in group.iter().enumerate() {
            value |= u32::from(*byte) << (16 - 8 * position);
        }
        out.push(symbol(value >> 18));
        out.push(symbol(value >> 12));
        out.push(if group.len() > 1 {
            symbol(value >> 6)
        } else {
            '='
        });
        out.push(if group.len() > 2 { symbol(value) } else { '=' });
    }
    out
}

/// Build the MIME entity that is signed (and then encrypted): `multipart/alternative` of the
/// description and the calendar for one calendar; `multipart/mixed` of one such alternative per
/// calendar when there are several (RFC 6047 section 2.4: several METHODs need several
/// `text/calendar` parts). Returns the entity bytes (headers and body, CRLF line ends).
pub fn calendar_entity(calendars: &[CalendarPart]) -> Result<Vec<u8>, ComposeError> {
    let mut alternatives = Vec::with_capacity(calendars.len());
    for calendar in calendars {
        for value in [&calendar.method, &calendar.component, &calendar.filename] {
            check_header_value(HeaderField::MimeParameter, value)?;
        }
        let content_type = ContentType::new("text/calendar")
            .attribute("method", calendar.method.as_str())
            .attribute("charset", "utf-8")
            .attribute("component", calendar.component.as_str());
        let calendar_part =
            MimePart::new(content_type, BodyPart::Text(calendar.text.as_str().into())).header(
                "Content-Disposition",
                ContentType::new("inline").attribute("filename", calendar.filename.as_str()),
            );
        let text_part = MimePart::new(
            ContentType::new("text/plain").attribute("charset", "utf-8"),
            BodyPart::Text(calendar.description.as_str().into()),
        );
        alternatives.push(MimePart::new(
            "multipart/alternative",
            vec![text_part, calendar_part],
        ));
    }
    let entity = match alternatives.len() {
        0 => return Err(ComposeError::NoCalendar),
        1 => alternatives.pop().ok_or(ComposeError::NoCalendar)?,
        _ => MimePart::new("multipart/mixed", alternatives),
    };
    let mut bytes = Vec::new();
    entity.write_part(&mut bytes)?;
    Ok(bytes)
}

/// The outer headers of the message.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The From mailbox.
    pub from: Mailbox,
    /// The To mailboxes.
    pub to: Vec<Mailbox>,
    /// The Subject.
    pub subject: String,
    /// The Date, as Unix seconds.
    pub date: i64,
    /// The Message-ID (without angle brackets).
    pub message_id: String,
}

/// Put the outer headers in front of a finished MIME entity (signed, encrypted, or plain).
pub fn message(envelope: &Envelope, entity: &[u8]) -> Result<Vec<u8>, ComposeError> {
    let check_mailbox = |field, mailbox: &Mailbox| -> Result<(), ComposeError> {
        check_address(field, &mailbox.address)?;
        if let Some(name) = &mailbox.name {
            check_header_value(field, name)?;
            if name.contains(['<', '>']) || name.len() > MAX_DISPLAY_NAME_BYTES {
                return Err(ComposeError::InvalidAddress { field });
            }
        }
        Ok(())
    };
    check_mailbox(HeaderField::From, &envelope.from)?;
    if envelope.to.is_empty() {
        return Err(ComposeError::NoRecipient);
    }
    for to in &envelope.to {
        check_mailbox(HeaderField::To, to)?;
    }
    check_header_value(HeaderField::Subject, &envelope.subject)?;
    check_header_value(HeaderField::MessageId, &envelope.message_id)?;
    // Written by hand: mail-builder puts encoded-words for non-ASCII names inside a
    // quoted-string, which RFC 2047 §5 forbids (readers then show `=?utf-8?...`).
    let to: Vec<String> = envelope.to.iter().map(Mailbox::header_value).collect();
    let builder = MessageBuilder::new()
        .header("From", Raw::new(envelope.from.header_value()))
        .header("To", Raw::new(to.join(", ")))
        .subject(envelope.subject.as_str())
        .date(Date::new(envelope.date))
        .message_id(MessageId::new(envelope.message_id.as_str()))
        .body(MimePart::raw(BodyPart::Binary(entity.into())));
    Ok(builder.write_to_vec()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(method: &str) -> CalendarPart {
        CalendarPart {
            text: format!(
                "BEGIN:VCALENDAR\r\nMETHOD:{method}\r\nBEGIN:VEVENT\r\nSUMMARY:Caf\u{e9}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
            ),
            method: method.into(),
            component: "VEVENT".into(),
            filename: "invite.ics".into(),
            description: "Invitation".into(),
        }
    }

    #[test]
    fn one_calendar_is_an_alternative_with_method_and_encoding() {
        let entity = String::from_utf8(calendar_entity(&[part("REQUEST")]).unwrap()).unwrap();
        assert!(entity.starts_with("Content-Type: multipart/alternative"));
        assert!(entity.contains("method=\"REQUEST\"") || entity.contains("method=REQUEST"));
        assert!(entity.contains("component"));
        assert!(entity.contains("filename=\"invite.ics\""));
        // The non-ASCII SUMMARY forces a transfer encoding.
        assert!(
            entity.contains("Content-Transfer-Encoding: quoted-printable")
                || entity.contains("Content-Transfer-Encoding: base64")
        );
    }

    #[test]
    fn several_methods_are_mixed() {
        let entity =
            String::from_utf8(calendar_entity(&[part("REQUEST"), part("CANCEL")]).unwrap())
                .unwrap();
        assert!(entity.starts_with("Content-Type: multipart/mixed"));
        assert_eq!(entity.matches("multipart/alternative").count(), 2);
    }

    #[test]
    fn refuses_header_injection() {
        let envelope = Envelope {
            from: Mailbox::address("a@example.com"),
            to: vec![Mailbox::address("b@example.com\r\nBcc: c@example.net")],
            subject: "s".into(),
            date: 0,
            message_id: "x@example.com".into(),
        };
        assert!(matches!(
            message(&envelope, b"Content-Type: text/plain\r\n\r\nx"),
            Err(ComposeError::HeaderControl {
                field: HeaderField::To,
                ..
            })
        ));
        let envelope = Envelope {
            subject: "s\nBcc: c@example.net".into(),
            to: vec![Mailbox::address("b@example.com")],
            ..envelope
        };
        assert!(matches!(
            message(&envelope, b""),
            Err(ComposeError::HeaderControl {
                field: HeaderField::Subject,
                ..
            })
        ));
    }

    // Issue #14: `--from 'Alice Example <alice@example.org>'` was refused.
    #[test]
    fn mailboxes_with_display_names_parse() {
        let parse = |text| Mailbox::parse(HeaderField::From, text);
        assert_eq!(
            parse("a@example.org").unwrap(),
            Mailbox::address("a@example.org")
        );
        assert_eq!(
            parse("<a@example.org>").unwrap(),
            Mailbox::address("a@example.org")
        );
        let named = parse("Alice Example <alice@example.org>").unwrap();
        assert_eq!(named.name.as_deref(), Some("Alice Example"));
        assert_eq!(named.address, "alice@example.org");
        let quoted = parse(r#""Example, Alice \"Al\"" <alice@example.org>"#).unwrap();
        assert_eq!(quoted.name.as_deref(), Some(r#"Example, Alice "Al""#));
        for bad in [
            "Alice <alice@example.org",
            "Alice <a@b> <c@d>",
            "Al\"ice <a@example.org>",
            "\"Al\"ice\" <a@example.org>",
            "Alice <not an address>",
            "Alice\r\nBcc: x@y <a@example.org>",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn non_ascii_names_are_rfc2047_encoded_words_outside_quotes() {
        let envelope = Envelope {
            from: Mailbox::parse(
                HeaderField::From,
                "Jos\u{e9} M\u{fc}ller <jose@example.org>",
            )
            .unwrap(),
            to: vec![
                Mailbox::parse(
                    HeaderField::To,
                    &format!("{} <b@example.org>", "\u{e9}".repeat(40)),
                )
                .unwrap(),
                Mailbox::parse(HeaderField::To, r#""Bob \"B\" Jones" <c@example.org>"#).unwrap(),
            ],
            subject: "R\u{e9}union".into(),
            date: 0,
            message_id: "x@example.org".into(),
        };
        let bytes = message(&envelope, b"Content-Type: text/plain\r\n\r\nx").unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("\"=?"), "{text}");
        assert!(text.is_ascii());
        let parsed = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        let from = parsed.from().unwrap().first().unwrap();
        assert_eq!(from.name(), Some("Jos\u{e9} M\u{fc}ller"));
        assert_eq!(from.address(), Some("jose@example.org"));
        let to: Vec<_> = parsed.to().unwrap().iter().collect();
        assert_eq!(to.len(), 2);
        assert_eq!(to[0].name(), Some("\u{e9}".repeat(40).as_str()));
        assert_eq!(to[0].address(), Some("b@example.org"));
        assert_eq!(to[1].name(), Some("Bob \"B\" Jones"));
        assert_eq!(parsed.subject(), Some("R\u{e9}union"));
    }
}
