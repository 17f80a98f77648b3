//! Strict content-line check of calendar text before it is signed.
//!
//! RFC 5545 section 3.1:
//!
//! ```text
//! contentline   = name *(";" param ) ":" value CRLF
//! name          = iana-token / x-name
//! param         = param-name "=" param-value *("," param-value)
//! param-value   = paramtext / quoted-string
//! paramtext     = *SAFE-CHAR
//! value         = *VALUE-CHAR
//! quoted-string = DQUOTE *QSAFE-CHAR DQUOTE
//! ```
//!
//! `imipsec sign` signs the calendar bytes it was given, never a re-serialisation; this check
//! is what makes that safe. A line break can only end a content line: a bare CR, a NUL or any
//! other control character in a value is refused, so a value cannot smuggle in a second
//! ORGANIZER or ATTENDEE line (CRLF injection), and parameters must be well formed so a
//! quoted string cannot hide a `:` that moves the value boundary.
//!
//! The grammar of one content line is the iTIP layer's ([`imipsec_itip::check_content_line`],
//! the one the receiving side parses with); this module only splits, unfolds and
//! canonicalises line ends, and refuses the deviations that grammar tolerates.

use thiserror::Error;

/// Why calendar text is not a sequence of valid content lines. Every variant carries the byte
/// offset into the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ContentLineError {
    /// The text is empty.
    #[error(
        "the calendar text is empty (RFC 5545 §3.4: an iCalendar object is BEGIN:VCALENDAR ... END:VCALENDAR)"
    )]
    Empty,
    /// The text is not UTF-8 (RFC 5545 section 3.1.4 default charset).
    #[error("invalid UTF-8 at byte {offset} (RFC 5545 §3.1.4: iCalendar text is UTF-8)")]
    InvalidUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// A CR that does not start a CRLF line end.
    #[error(
        "bare CR at byte {offset} (RFC 5545 §3.1: a content line ends in CRLF; a reader that breaks on CR sees another property)"
    )]
    BareCarriageReturn {
        /// Byte offset of the CR.
        offset: usize,
    },
    /// A control character other than HTAB inside a line.
    #[error(
        "control character 0x{byte:02x} at byte {offset} (RFC 5545 §3.1, §3.3.11: no CTL but HTAB)"
    )]
    ControlCharacter {
        /// The character.
        byte: u8,
        /// Byte offset.
        offset: usize,
    },
    /// An empty line (RFC 5545 allows none between content lines).
    #[error("empty line at byte {offset} (RFC 5545 §3.1 allows none)")]
    EmptyLine {
        /// Byte offset of the line start.
        offset: usize,
    },
    /// The first line is a continuation (starts with a space or tab).
    #[error(
        "the text starts with a folded continuation line (RFC 5545 §3.1: a fold continues a content line)"
    )]
    LeadingContinuation,
    /// The property name is empty or has a character other than ALPHA, DIGIT, `-`.
    #[error("invalid property name at byte {offset} (RFC 5545 §3.1 name: letters, digits and '-')")]
    InvalidName {
        /// Byte offset of the offending character.
        offset: usize,
    },
    /// A parameter is not `name=value` with a valid name and value.
    #[error("invalid parameter at byte {offset} (RFC 5545 §3.1 param: name=value)")]
    InvalidParameter {
        /// Byte offset of the offending character.
        offset: usize,
    },
    /// The line has no `:` separating the value.
    #[error("content line without ':' at byte {offset} (RFC 5545 §3.1 contentline)")]
    MissingColon {
        /// Byte offset of the line start.
        offset: usize,
    },
    /// An unfolded line is longer than the limit.
    #[error("content line at byte {offset} is longer than {max} bytes (a limit of this reader)")]
    LineTooLong {
        /// Byte offset of the line start.
        offset: usize,
        /// The limit.
        max: usize,
    },
}

impl ContentLineError {
    /// The byte offset into the text, if the error has one.
    pub fn offset(self) -> Option<usize> {
        use ContentLineError as E;
        match self {
            E::InvalidUtf8 { offset }
            | E::BareCarriageReturn { offset }
            | E::ControlCharacter { offset, .. }
            | E::EmptyLine { offset }
            | E::InvalidName { offset }
            | E::InvalidParameter { offset }
            | E::MissingColon { offset }
            | E::LineTooLong { offset, .. } => Some(offset),
            E::Empty | E::LeadingContinuation => None,
        }
    }

    /// The byte offset, if any, through `map` (a caller that checked a CRLF copy of the text
    /// reports offsets into the text as received).
    #[must_use]
    pub fn map_offset(self, map: &dyn Fn(usize) -> usize) -> ContentLineError {
        use ContentLineError as E;
        match self {
            E::InvalidUtf8 { offset } => E::InvalidUtf8 {
                offset: map(offset),
            },
            E::BareCarriageReturn { offset } => E::BareCarriageReturn {
                offset: map(offset),
            },
            E::ControlCharacter { byte, offset } => E::ControlCharacter {
                byte,
                offset: map(offset),
            },
            E::EmptyLine { offset } => E::EmptyLine {
                offset: map(offset),
            },
            E::InvalidName { offset } => E::InvalidName {
                offset: map(offset),
            },
            E::InvalidParameter { offset } => E::InvalidParameter {
                offset: map(offset),
            },
            E::MissingColon { offset } => E::MissingColon {
                offset: map(offset),
            },
            E::LineTooLong { offset, max } => E::LineTooLong {
                offset: map(offset),
                max,
            },
            E::Empty | E::LeadingContinuation => self,
        }
    }
}

/// The receiving side's line check, before the iTIP parser sees the text: a CR that does not
/// start a CRLF, and any control character other than HTAB, CR and LF (RFC 5545 section 3.1:
/// values are "any textual character" but CONTROL), are refused. A bare CR is the CRLF
/// injection shape: a parser that breaks lines on CR would see one more property than this
/// one. Blank lines and bare LF line ends are left to the iTIP parser's own tolerance.
///
/// It reads every byte of every calendar part, so a textual byte costs one test and the rest
/// of the decision is made only for control characters (issue 17).
pub fn check_line_breaks(text: &[u8]) -> Result<(), ContentLineError> {
    for (offset, &byte) in text.iter().enumerate() {
        if byte >= 0x20 && byte != 0x7f {
            continue;
        }
        match byte {
            b'\r' if text.get(offset + 1) != Some(&b'\n') => {
                return Err(ContentLineError::BareCarriageReturn { offset });
            }
            b'\r' | b'\n' | b'\t' => {}
            byte => return Err(ContentLineError::ControlCharacter { byte, offset }),
        }
    }
    Ok(())
}

/// Check that `text` is a sequence of valid content lines and return it with every line
/// ending as CRLF (RFC 8551 section 3.1.1 canonical form; a bare LF line end is accepted and
/// made CRLF, nothing else is changed).
pub fn canonical_calendar(text: &[u8], max_line: usize) -> Result<Vec<u8>, ContentLineError> {
    if text.is_empty() {
        return Err(ContentLineError::Empty);
    }
    if let Err(error) = std::str::from_utf8(text) {
        return Err(ContentLineError::InvalidUtf8 {
            offset: error.valid_up_to(),
        });
    }
    let mut canonical = Vec::with_capacity(text.len() + text.len() / 40);
    // Physical lines with their start offsets; a trailing line end is required only in
    // canonical output, so a missing final CRLF is added.
    let mut physical: Vec<(usize, &[u8])> = Vec::new();
    let mut start = 0;
    let mut index = 0;
    while index < text.len() {
        match text.get(index) {
            Some(b'\n') => {
                physical.push((start, text.get(start..index).unwrap_or_default()));
                index += 1;
                start = index;
            }
            Some(b'\r') => {
                if text.get(index + 1) != Some(&b'\n') {
                    return Err(ContentLineError::BareCarriageReturn { offset: index });
                }
                physical.push((start, text.get(start..index).unwrap_or_default()));
                index += 2;
                start = index;
            }
            _ => index += 1,
        }
    }
    if start < text.len() {
        physical.push((start, text.get(start..).unwrap_or_default()));
    }

    // Unfold (RFC 5545 section 3.1) and check each logical line.
    let mut logical: Vec<u8> = Vec::new();
    let mut logical_start = 0;
    for (number, (offset, line)) in physical.iter().enumerate() {
        for (position, &byte) in line.iter().enumerate() {
            if byte != b'\t' && (byte < 0x20 || byte == 0x7f) {
                return Err(ContentLineError::ControlCharacter {
                    byte,
                    offset: offset + position,
                });
            }
        }
        match line.first() {
            None => return Err(ContentLineError::EmptyLine { offset: *offset }),
            Some(b' ' | b'\t') => {
                if number == 0 {
                    return Err(ContentLineError::LeadingContinuation);
                }
                logical.extend_from_slice(line.get(1..).unwrap_or_default());
            }
            Some(_) => {
                if number > 0 {
                    check_line(&logical, logical_start, max_line)?;
                }
                logical.clear();
                logical.extend_from_slice(line);
                logical_start = *offset;
            }
        }
        canonical.extend_from_slice(line);
        canonical.extend_from_slice(b"\r\n");
    }
    check_line(&logical, logical_start, max_line)?;
    Ok(canonical)
}

/// Check one unfolded content line with the iTIP layer's grammar (one grammar for what is
/// received and what is signed), and refuse the one deviation that grammar tolerates, `_`
/// in an X- name: nothing tolerated is signed. Offsets are those of the line start.
fn check_line(line: &[u8], start: usize, max_line: usize) -> Result<(), ContentLineError> {
    use imipsec_itip::LineDefect;
    if line.len() > max_line {
        return Err(ContentLineError::LineTooLong {
            offset: start,
            max: max_line,
        });
    }
    // UTF-8 was checked for the whole text; a fold never splits a character it keeps.
    let text = std::str::from_utf8(line).map_err(|error| ContentLineError::InvalidUtf8 {
        offset: start + error.valid_up_to(),
    })?;
    match imipsec_itip::check_content_line(text) {
        Ok(()) => {}
        Err(LineDefect::NoValue) => return Err(ContentLineError::MissingColon { offset: start }),
        Err(LineDefect::PropertyName) => {
            return Err(ContentLineError::InvalidName { offset: start });
        }
        Err(_) => return Err(ContentLineError::InvalidParameter { offset: start }),
    }
    let name_end = line
        .iter()
        .position(|&byte| matches!(byte, b';' | b':'))
        .unwrap_or(line.len());
    if line
        .get(..name_end)
        .is_some_and(|name| name.contains(&b'_'))
    {
        return Err(ContentLineError::InvalidName { offset: start });
    }
    Ok(())
}

/// The property name of the (folded) content line of `text` that holds byte `offset`, for a
/// report: its leading bytes up to `;`, `:` or the line end, at most 64, anything but
/// printable ASCII shown as `?`. Empty when the line has none.
pub fn property_at(text: &[u8], offset: usize) -> String {
    let mut end = offset.min(text.len());
    let start = loop {
        let start = text
            .get(..end)
            .unwrap_or_default()
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |lf| lf + 1);
        match text.get(start) {
            Some(b' ' | b'\t') if start > 0 => end = start - 1,
            _ => break start,
        }
    };
    text.get(start..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| !matches!(b, b';' | b':' | b'\r' | b'\n'))
        .take(64)
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 16;

    #[test]
    fn accepts_folded_lines_and_makes_lf_crlf() {
        let text = b"BEGIN:VCALENDAR\nATTENDEE;CN=\"Doe, J\";ROLE=REQ-PARTICIPANT:mailto:j@\n example.com\nEND:VCALENDAR";
        let canonical = canonical_calendar(text, MAX).unwrap();
        assert_eq!(
            canonical,
            b"BEGIN:VCALENDAR\r\nATTENDEE;CN=\"Doe, J\";ROLE=REQ-PARTICIPANT:mailto:j@\r\n example.com\r\nEND:VCALENDAR\r\n"
        );
    }

    #[test]
    fn line_break_check_refuses_bare_cr_and_controls_only() {
        assert_eq!(check_line_breaks(b"A:b\r\n\r\nC:d\n"), Ok(()));
        assert_eq!(
            check_line_breaks(b"A:b\rC:d\r\n"),
            Err(ContentLineError::BareCarriageReturn { offset: 3 })
        );
        assert_eq!(
            check_line_breaks(b"A:b\r"),
            Err(ContentLineError::BareCarriageReturn { offset: 3 })
        );
        assert_eq!(
            check_line_breaks(b"A:\x1bb"),
            Err(ContentLineError::ControlCharacter {
                byte: 0x1b,
                offset: 2
            })
        );
        // HTAB and non-ASCII (UTF-8) bytes are text; DEL and NUL are not; of CR CR LF the
        // first CR is the bare one.
        assert_eq!(check_line_breaks("A:\tb \u{e9}\r\n".as_bytes()), Ok(()));
        assert_eq!(
            check_line_breaks(b"A:b\x7f"),
            Err(ContentLineError::ControlCharacter {
                byte: 0x7f,
                offset: 3
            })
        );
        assert_eq!(
            check_line_breaks(b"\0"),
            Err(ContentLineError::ControlCharacter { byte: 0, offset: 0 })
        );
        assert_eq!(
            check_line_breaks(b"A:b\r\r\n"),
            Err(ContentLineError::BareCarriageReturn { offset: 3 })
        );
    }

    #[test]
    fn refuses_bare_cr_injection() {
        // The CRLF-injection shape used against other tools: a CR inside a value that a
        // lenient reader turns into a second ORGANIZER line.
        let text =
            b"BEGIN:VCALENDAR\r\nSUMMARY:x\rORGANIZER:mailto:evil@example.net\r\nEND:VCALENDAR\r\n";
        assert_eq!(
            canonical_calendar(text, MAX),
            Err(ContentLineError::BareCarriageReturn { offset: 26 })
        );
    }

    #[test]
    fn refuses_controls_empty_lines_and_bad_params() {
        assert!(matches!(
            canonical_calendar(b"SUMMARY:a\x00b\r\n", MAX),
            Err(ContentLineError::ControlCharacter { byte: 0, .. })
        ));
        assert!(matches!(
            canonical_calendar(b"A:b\r\n\r\nC:d\r\n", MAX),
            Err(ContentLineError::EmptyLine { offset: 5 })
        ));
        assert!(matches!(
            canonical_calendar(b"A;CN=\"x:y:b\r\n", MAX),
            Err(ContentLineError::InvalidParameter { .. })
        ));
        assert!(matches!(
            canonical_calendar(b"A;CN:b\r\n", MAX),
            Err(ContentLineError::InvalidParameter { .. })
        ));
        assert!(matches!(
            canonical_calendar(b"NOCOLON\r\n", MAX),
            Err(ContentLineError::MissingColon { offset: 0 })
        ));
        assert!(matches!(
            canonical_calendar(b" A:b\r\n", MAX),
            Err(ContentLineError::LeadingContinuation)
        ));
        assert!(matches!(
            canonical_calendar(b"A:\xff\r\n", MAX),
            Err(ContentLineError::InvalidUtf8 { offset: 2 })
        ));
        assert!(matches!(
            canonical_calendar(b"X-A_B:b\r\n", MAX),
            Err(ContentLineError::InvalidName { offset: 0 })
        ));
        assert!(matches!(
            canonical_calendar(b"A;B=x;B=y:b\r\n", MAX),
            Err(ContentLineError::InvalidParameter { offset: 0 })
        ));
        assert!(matches!(
            canonical_calendar(b"A:bcdef\r\n", 4),
            Err(ContentLineError::LineTooLong { offset: 0, max: 4 })
        ));
    }
}
