//! Building iMIP messages (RFC 6047 section 2) for `imipsec sign`.
//!
//! Headers and MIME structure are produced by mail-builder, which encodes header values and
//! chooses a transfer encoding; calendar text is carried as the exact (checked, CRLF
//! canonical) bytes that were validated. Nothing here concatenates user values into
//! iCalendar or header syntax.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
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
    /// The From address.
    pub from: String,
    /// The To addresses.
    pub to: Vec<String>,
    /// The Subject.
    pub subject: String,
    /// The Date, as Unix seconds.
    pub date: i64,
    /// The Message-ID (without angle brackets).
    pub message_id: String,
}

/// Put the outer headers in front of a finished MIME entity (signed, encrypted, or plain).
pub fn message(envelope: &Envelope, entity: &[u8]) -> Result<Vec<u8>, ComposeError> {
    check_address(HeaderField::From, &envelope.from)?;
    if envelope.to.is_empty() {
        return Err(ComposeError::NoRecipient);
    }
    for to in &envelope.to {
        check_address(HeaderField::To, to)?;
    }
    check_header_value(HeaderField::Subject, &envelope.subject)?;
    check_header_value(HeaderField::MessageId, &envelope.message_id)?;
    let to: Vec<Address<'_>> = envelope
        .to
        .iter()
        .map(|to| Address::new_address(None::<&str>, to.as_str()))
        .collect();
    let builder = MessageBuilder::new()
        .from(Address::new_address(None::<&str>, envelope.from.as_str()))
        .to(Address::new_list(to))
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
            from: "a@example.com".into(),
            to: vec!["b@example.com\r\nBcc: c@example.net".into()],
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
            to: vec!["b@example.com".into()],
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
}
