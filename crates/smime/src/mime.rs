//! Strict MIME entity splitting (RFC 2045, RFC 2046 §5.1) over byte offsets.
//!
//! mail-parser parses the header fields (Content-Type with RFC 2231 parameters, addresses,
//! encoded words). Body splitting is done here, strictly, because mail-parser is a
//! display-oriented parser: it recovers from broken structure and finds `--boundary` even in
//! the middle of a line, and such tolerance is what MIME wrapping attacks exploit. Here a
//! delimiter is `--boundary` at the start of a line followed only by optional linear white
//! space; the CRLF before it belongs to the delimiter (RFC 2046 §5.1.1); a multipart without
//! its close delimiter is malformed.
//!
//! Strict where another parser could read differently (issue #11): every construct on which
//! this walk and mail-parser 0.11 (the Stalwart server's parser, whose source was read for
//! this list) can disagree is `malformed-mime` rather than read one way:
//!
//! | construct | mail-parser 0.11 | here |
//! |---|---|---|
//! | `--boundary` mid-line, or followed by other text (`--bc` for boundary `b`) | a delimiter; the next part starts right after it | [`StrayBoundary`](MimeErrorKind::StrayBoundary) |
//! | bare LF or bare CR in a CRLF message | LF ends a line, CR is dropped | [`MixedLineEndings`](MimeErrorKind::MixedLineEndings) |
//! | a white-space-only line in a header section | ends the header section | [`BadHeaderSection`](MimeErrorKind::BadHeaderSection) |
//! | a parameter given twice | keeps both; `attribute()` takes the first | [`DuplicateParameter`](MimeErrorKind::DuplicateParameter) |
//! | `name*0`/`name*1`, `name*=` (RFC 2231) | appends sections to a plain `name`, decodes charsets | [`ExtendedParameter`](MimeErrorKind::ExtendedParameter) |
//! | `\` or `(comment)` outside quotes in Content-Type | escapes / skips them inside a value | [`ExtendedParameter`](MimeErrorKind::ExtendedParameter) |
//! | `=?..?=` in boundary, charset, method, component, protocol, smime-type | decodes the encoded word | [`ExtendedParameter`](MimeErrorKind::ExtendedParameter) |
//! | QP `=` + white space, `=` + non-hex, `==`, `=` at the end, trailing white space | soft break, literal, undecoded fallback, drops bytes, deletes it | [`BadQuotedPrintable`](MimeErrorKind::BadQuotedPrintable) |
//! | base64 with non-alphabet bytes | skipped | [`BadBase64`](MimeErrorKind::BadBase64) |
//! | transfer encoding on multipart / message | ignored on multipart, decoded on message | [`EncodedComposite`](MimeErrorKind::EncodedComposite) |
//! | a part in `multipart/digest` without Content-Type | `message/rfc822` (RFC 2046 §5.1.5) | the same (see `inspect`) |
//!
//! Decoded bodies are also compared with mail-parser's own decoders
//! ([`DecoderDisagreement`](MimeErrorKind::DecoderDisagreement)).

use std::borrow::Cow;

use mail_parser::{HeaderName, HeaderValue, MessageParser};

use crate::error::MimeErrorKind;

mod decode;
mod lines;

pub(crate) use decode::{decode_base64, decode_quoted_printable};
use lines::bare_lf;
pub(crate) use lines::{Canonical, LineEndings, is_ascii_text, is_headerless, line_endings};

/// A malformed entity: what and where (offset relative to the buffer being walked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MimeError {
    pub offset: usize,
    pub kind: MimeErrorKind,
}

/// How the body is transfer-encoded (RFC 2045 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransferEncoding {
    Identity,
    Base64,
    QuotedPrintable,
    Unknown,
}

/// One MIME entity: offsets into the buffer it was parsed from.
#[derive(Debug)]
pub(crate) struct Entity<'a> {
    /// The whole entity, headers included (`start..end` of the buffer).
    pub raw: &'a [u8],
    pub start: usize,
    /// The body (after the blank line).
    pub body: &'a [u8],
    pub body_start: usize,
    /// Lowercased `type/subtype`; `text/plain` when absent (RFC 2045 §5.2).
    pub content_type: String,
    /// Content-Type parameters, names lowercased.
    pub params: Vec<(String, String)>,
    /// Whether the entity has a Content-Type field (`multipart/digest` gives untyped parts
    /// another default, RFC 2046 §5.1.5).
    pub typed: bool,
    /// The `filename` parameter of Content-Disposition, if any.
    pub file_name: Option<String>,
    pub encoding: TransferEncoding,
    /// Header fields relevant to header protection.
    pub headers: ProtectedHeaders,
}

/// The header fields compared for header protection (RFC 9788) and reported as outer headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProtectedHeaders {
    pub from: Option<Vec<String>>,
    pub to: Option<Vec<String>>,
    pub subject: Option<String>,
    pub date: Option<i64>,
}

impl Entity<'_> {
    /// A Content-Type parameter by lowercase name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The transfer-decoded body. Strict decoding, then mail-parser's decoder on the same
    /// bytes: a body the two read differently is malformed.
    pub fn decoded_body(&self) -> Result<Cow<'_, [u8]>, MimeError> {
        self.decoded_body_agreeing(None)
    }

    /// The body's byte range in the buffer walked (after the blank line, to the entity's
    /// end).
    pub fn body_range(&self) -> std::ops::Range<usize> {
        self.body_start..self.start + self.raw.len()
    }

    /// Whether the body is transfer-encoded (base64 or quoted-printable): only then does
    /// decoding compare two readings.
    pub fn is_transfer_encoded(&self) -> bool {
        matches!(
            self.encoding,
            TransferEncoding::Base64 | TransferEncoding::QuotedPrintable
        )
    }

    /// [`decoded_body`](Self::decoded_body), where `parsed` is what mail-parser's parse of the
    /// whole received message decoded for this very part (the same byte range), if that is
    /// known: when it equals the strict decoding, the calendar server's parser reads these
    /// bytes as this walk does, and mail-parser's decoder is not run a second time (issue 17).
    /// Otherwise the decoder comparison runs as always.
    pub fn decoded_body_agreeing(&self, parsed: Option<&[u8]>) -> Result<Cow<'_, [u8]>, MimeError> {
        let disagreement = MimeError {
            offset: self.body_start,
            kind: MimeErrorKind::DecoderDisagreement,
        };
        if self.encoding != TransferEncoding::Base64
            && let Some(offset) = bare_lf(self.body)
        {
            return Err(MimeError {
                offset: self.body_start + offset,
                kind: MimeErrorKind::MixedLineEndings,
            });
        }
        match self.encoding {
            TransferEncoding::Identity => Ok(Cow::Borrowed(self.body)),
            TransferEncoding::Base64 => {
                let decoded = decode_base64(self.body, self.body_start)?;
                if parsed != Some(decoded.as_slice())
                    && mail_parser::decoders::base64::base64_decode(self.body).as_ref()
                        != Some(&decoded)
                {
                    return Err(disagreement);
                }
                Ok(Cow::Owned(decoded))
            }
            TransferEncoding::QuotedPrintable => {
                let decoded = decode_quoted_printable(self.body, self.body_start)?;
                if parsed != Some(decoded.as_slice())
                    && mail_parser::decoders::quoted_printable::quoted_printable_decode(self.body)
                        .as_ref()
                        != Some(&decoded)
                {
                    return Err(disagreement);
                }
                Ok(Cow::Owned(decoded))
            }
            TransferEncoding::Unknown => Err(MimeError {
                offset: self.start,
                kind: MimeErrorKind::UnknownTransferEncoding,
            }),
        }
    }

    /// The `name` and `filename` parameters: what a client shows and opens the part as.
    pub fn file_names(&self) -> impl Iterator<Item = &str> {
        self.param("name")
            .into_iter()
            .chain(self.file_name.as_deref())
    }
}

/// Parse the entity occupying `buffer[start..end]` (CRLF line endings, see [`line_endings`]).
///
/// The header section is the bytes up to the first empty line, or, for an entity without a
/// body, the whole entity when it ends in CRLF (the CRLF of the next delimiter then ends it).
/// Every line of it must be a header field or a continuation line.
pub(crate) fn parse_entity(
    buffer: &[u8],
    start: usize,
    end: usize,
) -> Result<Entity<'_>, MimeError> {
    let raw = buffer.get(start..end).ok_or(MimeError {
        offset: start,
        kind: MimeErrorKind::NoHeaders,
    })?;
    let (header_len, body_offset) = if raw.starts_with(b"\r\n") {
        (0, 2)
    } else {
        match find(raw, b"\r\n\r\n") {
            Some(position) => (position + 2, position + 4),
            None if raw.is_empty() || raw.ends_with(b"\r\n") => (raw.len(), raw.len()),
            None => {
                return Err(MimeError {
                    offset: start + raw.len(),
                    kind: MimeErrorKind::BadHeaderSection,
                });
            }
        }
    };
    let header_bytes = raw.get(..header_len).unwrap_or_default();
    check_header_section(header_bytes, start)?;
    let body = raw.get(body_offset..).unwrap_or_default();

    let mut content_type = "text/plain".to_string();
    let mut params = Vec::new();
    let mut typed = false;
    let mut file_name = None;
    let mut encoding = TransferEncoding::Identity;
    let mut headers = ProtectedHeaders::default();
    if !header_bytes.is_empty() {
        // The header section with the blank line that ends it: the received bytes when the
        // body follows, a copy only for an entity without one.
        let owned;
        let with_blank = match raw.get(..body_offset) {
            Some(section) if body_offset == header_len + 2 => section,
            _ => {
                let mut copy = header_bytes.to_vec();
                copy.extend_from_slice(b"\r\n");
                owned = copy;
                &owned
            }
        };
        let parsed = MessageParser::default()
            .parse_headers(with_blank)
            .ok_or(MimeError {
                offset: start,
                kind: MimeErrorKind::NoHeaders,
            })?;
        let mut seen_encoding = false;
        let mut seen_disposition = false;
        for header in parsed.headers() {
            let at = |kind| MimeError {
                offset: start + header.offset_field as usize,
                kind,
            };
            match &header.name {
                HeaderName::ContentType => {
                    if typed {
                        return Err(at(MimeErrorKind::DuplicateHeader("Content-Type")));
                    }
                    typed = true;
                    let parsed_type = header
                        .value
                        .as_content_type()
                        .ok_or(at(MimeErrorKind::BadContentType))?;
                    let subtype = parsed_type
                        .c_subtype
                        .as_deref()
                        .ok_or(at(MimeErrorKind::BadContentType))?;
                    let value = with_blank
                        .get(header.offset_start as usize..header.offset_end as usize)
                        .unwrap_or_default();
                    if has_extended_parameter(value) {
                        return Err(at(MimeErrorKind::ExtendedParameter));
                    }
                    content_type =
                        format!("{}/{}", parsed_type.c_type, subtype).to_ascii_lowercase();
                    params = parameters(parsed_type)
                        .ok_or(at(MimeErrorKind::DuplicateParameter("Content-Type")))?;
                }
                HeaderName::ContentDisposition => {
                    if seen_disposition {
                        return Err(at(MimeErrorKind::DuplicateHeader("Content-Disposition")));
                    }
                    seen_disposition = true;
                    if let Some(disposition) = header.value.as_content_type() {
                        let disposition_params = parameters(disposition)
                            .ok_or(at(MimeErrorKind::DuplicateParameter("Content-Disposition")))?;
                        file_name = disposition_params
                            .into_iter()
                            .find(|(name, _)| name == "filename")
                            .map(|(_, value)| value);
                    }
                }
                HeaderName::ContentTransferEncoding => {
                    if seen_encoding {
                        return Err(at(MimeErrorKind::DuplicateHeader(
                            "Content-Transfer-Encoding",
                        )));
                    }
                    seen_encoding = true;
                    let value = match &header.value {
                        HeaderValue::Text(text) => text.trim().to_ascii_lowercase(),
                        _ => String::new(),
                    };
                    encoding = match value.as_str() {
                        "7bit" | "8bit" | "binary" | "" => TransferEncoding::Identity,
                        "base64" => TransferEncoding::Base64,
                        "quoted-printable" => TransferEncoding::QuotedPrintable,
                        _ => TransferEncoding::Unknown,
                    };
                }
                HeaderName::From => {
                    headers
                        .from
                        .get_or_insert_with(Vec::new)
                        .extend(addresses(&header.value));
                }
                HeaderName::To => {
                    headers
                        .to
                        .get_or_insert_with(Vec::new)
                        .extend(addresses(&header.value));
                }
                HeaderName::Subject => {
                    if let Some(text) = header.value.as_text() {
                        headers.subject = Some(text.to_string());
                    }
                }
                HeaderName::Date => {
                    if let Some(date) = header.value.as_datetime() {
                        headers.date = Some(date.to_timestamp());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(Entity {
        raw,
        start,
        body,
        body_start: start + body_offset,
        content_type,
        params,
        typed,
        file_name,
        encoding,
        headers,
    })
}

/// Every line of a header section (CRLF-terminated lines, RFC 5322 §2.2) is a field
/// (`name:` with a printable name, white space before the colon tolerated as mail-parser
/// does) or a continuation line (white space, then something else). mail-parser ends a
/// header section at a white-space-only line and skips lines without a colon; a strict
/// reader does neither, so both are malformed.
fn check_header_section(header: &[u8], base: usize) -> Result<(), MimeError> {
    let mut offset = 0usize;
    for line in header.split(|&byte| byte == b'\n') {
        let line_start = offset;
        offset += line.len() + 1;
        let Some(line) = line.strip_suffix(b"\r") else {
            // The empty tail after the last CRLF.
            if line.is_empty() && line_start == header.len() {
                continue;
            }
            return Err(MimeError {
                offset: base + line_start,
                kind: MimeErrorKind::BadHeaderSection,
            });
        };
        let ok = match line.first() {
            Some(b' ' | b'\t') => line_start > 0 && !line.trim_ascii().is_empty(),
            Some(_) => line
                .iter()
                .position(|&byte| byte == b':')
                .is_some_and(|colon| {
                    let name = line.get(..colon).unwrap_or_default().trim_ascii_end();
                    !name.is_empty() && name.iter().all(|&byte| (33..=126).contains(&byte))
                }),
            None => false,
        };
        if !ok {
            return Err(MimeError {
                offset: base + line_start,
                kind: MimeErrorKind::BadHeaderSection,
            });
        }
    }
    Ok(())
}

/// The parameters of a parsed Content-Type or Content-Disposition, names lowercased; `None`
/// when a name occurs twice (RFC 6838 §4.3).
fn parameters(parsed: &mail_parser::ContentType<'_>) -> Option<Vec<(String, String)>> {
    let mut params: Vec<(String, String)> = Vec::new();
    for attribute in parsed.attributes.iter().flatten() {
        let name = attribute.name.to_ascii_lowercase();
        if params.iter().any(|(known, _)| *known == name) {
            return None;
        }
        params.push((name, attribute.value.to_string()));
    }
    Some(params)
}

/// Parameters whose value decides the structure of the message or how a calendar is read:
/// an RFC 2047 encoded word in one is decoded by mail-parser and by no RFC 2045 reader.
const DECIDING_PARAMETERS: &[&str] = &[
    "boundary",
    "charset",
    "method",
    "component",
    "protocol",
    "smime-type",
];

/// Whether a raw Content-Type value has a parameter that readers split or decode differently:
/// a name with `*` (RFC 2231 §3-4 sections and charsets: mail-parser appends `name*1` to a
/// plain `name`), a backslash or a comment outside a quoted string (mail-parser escapes and
/// skips them in unquoted values, RFC 2045 readers end the token there), or an RFC 2047
/// encoded word (`=?`) in a [`DECIDING_PARAMETERS`] value (mail-parser decodes it).
fn has_extended_parameter(value: &[u8]) -> bool {
    let mut in_quote = false;
    let mut escaped = false;
    let mut in_name = false;
    let mut name = Vec::new();
    let mut previous = 0u8;
    for &byte in value {
        if escaped {
            escaped = false;
            previous = 0;
            continue;
        }
        if in_quote {
            match byte {
                b'\\' => escaped = true,
                b'"' => in_quote = false,
                b'?' if previous == b'=' && is_deciding(&name) => return true,
                _ => {}
            }
            previous = byte;
            continue;
        }
        match byte {
            b'"' => in_quote = true,
            b'(' | b'\\' => return true,
            b';' => {
                in_name = true;
                name.clear();
            }
            b'=' if in_name => in_name = false,
            b'*' if in_name => return true,
            b'?' if previous == b'=' && !in_name && is_deciding(&name) => return true,
            _ if in_name && !byte.is_ascii_whitespace() => name.push(byte.to_ascii_lowercase()),
            _ => {}
        }
        previous = byte;
    }
    false
}

fn is_deciding(name: &[u8]) -> bool {
    DECIDING_PARAMETERS
        .iter()
        .any(|deciding| deciding.as_bytes() == name)
}

fn addresses(value: &HeaderValue<'_>) -> Vec<String> {
    match value.as_address() {
        Some(address) => address
            .iter()
            .filter_map(|addr| addr.address.as_deref())
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    }
}

/// Substring search in linear time (the boundary is looked for on every line of every
/// multipart body, so a quadratic search would let a crafted body cost boundary length
/// times its size).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    // `memmem::find` builds a searcher per call, which cost more than the search on the
    // short lines this is called for (issue 17). Needles of at most 4 bytes (CRLF, CRLFCRLF):
    // memchr on the first byte and compare, linear in the haystack (at most 4 compares per
    // candidate). Longer needles keep the linear-time searcher.
    if needle.len() > 4 {
        return memchr::memmem::find(haystack, needle);
    }
    let Some((&first, tail)) = needle.split_first() else {
        return Some(0);
    };
    let mut from = 0;
    while let Some(offset) = haystack
        .get(from..)
        .and_then(|rest| memchr::memchr(first, rest))
    {
        let at = from + offset;
        if haystack
            .get(at + 1..)
            .is_some_and(|rest| rest.starts_with(tail))
        {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Split a multipart body into its body parts: `(start, end)` offsets into the buffer, for the
/// entity whose body begins at `body_start`. RFC 2046 §5.1.1: the CRLF preceding a delimiter
/// belongs to the delimiter, so `end` stops before it.
///
/// Every occurrence of `--boundary` in the body, preamble and epilogue included, must be a
/// whole delimiter line: mail-parser splits on `--boundary` wherever it occurs (mid-line, or
/// followed by other text), so any other occurrence is a part boundary to it and none here.
pub(crate) fn split_multipart(
    body: &[u8],
    body_start: usize,
    boundary: &str,
    max_parts: usize,
) -> Result<Vec<(usize, usize)>, MimeError> {
    let error = |offset, kind| MimeError { offset, kind };
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(error(body_start, MimeErrorKind::MissingBoundary));
    }
    let mut dash_boundary = b"--".to_vec();
    dash_boundary.extend_from_slice(boundary.as_bytes());
    // One searcher for the whole body, not one per line.
    let boundary_finder = memchr::memmem::Finder::new(&dash_boundary);
    let stray = |line: &[u8], from: usize, line_start: usize| match line
        .get(from..)
        .and_then(|rest| boundary_finder.find(rest))
    {
        Some(at) => Err(error(
            body_start + line_start + from + at,
            MimeErrorKind::StrayBoundary,
        )),
        None => Ok(()),
    };

    let mut parts = Vec::new();
    // Start of the current body part (after its delimiter line), once the first delimiter is seen.
    let mut current: Option<usize> = None;
    let mut line_start = 0usize;
    loop {
        let line_end = find(body.get(line_start..).unwrap_or_default(), b"\r\n")
            .map(|position| line_start + position);
        let line = body
            .get(line_start..line_end.unwrap_or(body.len()))
            .unwrap_or_default();
        let delimiter = line
            .strip_prefix(dash_boundary.as_slice())
            .and_then(|rest| {
                let (closing, padding) = match rest.strip_prefix(b"--") {
                    Some(padding) => (true, padding),
                    None => (false, rest),
                };
                padding
                    .iter()
                    .all(|&b| b == b' ' || b == b'\t')
                    .then_some(closing)
            });
        match delimiter {
            Some(closing) => {
                if let Some(part_start) = current {
                    // The CRLF before this delimiter line is part of the delimiter.
                    let part_end = line_start.saturating_sub(2).max(part_start);
                    parts.push((body_start + part_start, body_start + part_end));
                    if parts.len() > max_parts {
                        return Err(error(body_start + line_start, MimeErrorKind::TooLarge));
                    }
                }
                if closing {
                    if current.is_none() {
                        return Err(error(body_start + line_start, MimeErrorKind::NoDelimiter));
                    }
                    // The epilogue may not hold the boundary either.
                    let epilogue = line_end.map_or(body.len(), |end| end + 2);
                    let rest = body.get(epilogue..).unwrap_or_default();
                    stray(rest, 0, epilogue)?;
                    return Ok(parts);
                }
                current = Some(match line_end {
                    Some(end) => end + 2,
                    None => body.len(),
                });
            }
            None => stray(line, 0, line_start)?,
        }
        match line_end {
            Some(end) => line_start = end + 2,
            None => break,
        }
    }
    Err(error(
        body_start + body.len(),
        if current.is_none() {
            MimeErrorKind::NoDelimiter
        } else {
            MimeErrorKind::NoCloseDelimiter
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Issue 17: the short-needle search must find exactly what the linear-time searcher finds.
    #[test]
    fn short_needle_find_agrees_with_memmem() {
        let haystacks: [&[u8]; 9] = [
            b"",
            b"\r",
            b"\r\n",
            b"abc\r\ndef\r\n",
            b"\r\r\r\n",
            b"a\r\n\r\nb",
            b"\r\n\r\r\n\r\n",
            b"no line end\r",
            b"\n\r\n\r",
        ];
        let needles: [&[u8]; 5] = [b"", b"\r", b"\r\n", b"\r\n\r\n", b"\n\r"];
        for haystack in haystacks {
            for needle in needles {
                assert_eq!(
                    find(haystack, needle),
                    memchr::memmem::find(haystack, needle),
                    "{haystack:?} {needle:?}"
                );
            }
        }
    }

    #[test]
    fn headerless_only_without_any_header_section() {
        assert!(is_headerless(b"This is some sample content."));
        assert!(is_headerless(b"Note to self: bring cake\r\n"));
        assert!(is_headerless(b": no field name\r\n\r\nbody"));
        assert!(!is_headerless(b"Content-Type: text/plain\r\n\r\nbody"));
        assert!(!is_headerless(
            b"Subject : obsolete white space\r\n\r\nbody"
        ));
        // An empty header section (RFC 2046 §5.1.1) is a header section.
        assert!(!is_headerless(b"\r\nbody"));
        assert!(is_ascii_text(b"This is some sample content.\r\n\t~ end"));
        assert!(!is_ascii_text(b"Z\xc3\xbcrich (UTF-8)"));
        assert!(!is_ascii_text(b"text\x00"));
        assert!(!is_ascii_text(b"\x1b[31m"));
        assert!(!is_ascii_text(b"\xc2\x85 next line (C1)"));
        assert!(!is_ascii_text(b"\x9c\x01 not UTF-8"));
    }

    #[test]
    fn delimiters_only_at_line_start_and_crlf_belongs_to_delimiter() {
        let body = b"preamble\r\n--b\r\nA: 1\r\n\r\nx - b not here\r\n--b \r\nB: 2\r\n\r\ny\r\n--b--\r\nepilogue";
        let parts = split_multipart(body, 100, "b", 10).unwrap();
        assert_eq!(parts.len(), 2);
        let (s, e) = parts[0];
        assert_eq!(&body[s - 100..e - 100], b"A: 1\r\n\r\nx - b not here");
        let (s, e) = parts[1];
        assert_eq!(&body[s - 100..e - 100], b"B: 2\r\n\r\ny");
    }

    #[test]
    fn missing_close_delimiter_is_malformed() {
        let body = b"--b\r\n\r\nx\r\n";
        let error = split_multipart(body, 0, "b", 10).unwrap_err();
        assert_eq!(error.kind, MimeErrorKind::NoCloseDelimiter);
        let error = split_multipart(b"no parts", 0, "b", 10).unwrap_err();
        assert_eq!(error.kind, MimeErrorKind::NoDelimiter);
        // A boundary prefix followed by text is not a delimiter here, and one to mail-parser.
        let error = split_multipart(b"--b\r\n\r\nx\r\n--bc--\r\n", 0, "b", 10).unwrap_err();
        assert_eq!(error.kind, MimeErrorKind::StrayBoundary);
    }

    #[test]
    fn base64_is_strict() {
        assert_eq!(decode_base64(b"aGVs\r\nbG8=", 0).unwrap(), b"hello");
        assert_eq!(decode_base64(b"aGk=", 0).unwrap(), b"hi");
        assert!(decode_base64(b"aGVs!G8=", 0).is_err());
        assert!(decode_base64(b"aGk=aGk=", 0).is_err());
        assert!(decode_base64(b"aGk", 0).is_err());
        // "aGl=" decodes like "aGk=" but sets a pad bit.
        assert!(decode_base64(b"aGl=", 0).is_err());
    }

    /// The four-character fast path and the byte path agree: every byte value, whitespace at
    /// every position, and errors at the same offsets whichever path meets them.
    #[test]
    fn base64_fast_path_agrees_with_the_byte_path() {
        let data: Vec<u8> = (0..=255u8).cycle().take(3 * 300).collect();
        let encoded = openssl::base64::encode_block(&data);
        assert_eq!(decode_base64(encoded.as_bytes(), 0).unwrap(), data);
        for split in [1, 2, 3, 5, 7] {
            let mut broken = Vec::new();
            for (index, byte) in encoded.bytes().enumerate() {
                if index % split == 0 {
                    broken.extend_from_slice(b"\r\n");
                }
                broken.push(byte);
            }
            assert_eq!(decode_base64(&broken, 0).unwrap(), data, "split {split}");
        }
        for position in [0, 1, 2, 3, 4, 5, 401] {
            let mut bad = encoded.clone().into_bytes();
            bad[position] = b'!';
            assert_eq!(decode_base64(&bad, 10).unwrap_err().offset, 10 + position);
        }
        assert_eq!(decode_base64(b"aGk=\r\n", 0).unwrap(), b"hi");
        assert_eq!(decode_base64(b"aGk=aGk=", 0).unwrap_err().offset, 4);
    }

    /// Issue 17: mail-parser's whole-message reading of a part stands in for its decoder only
    /// when it equals the strict decoding; any other reading leaves the decoder comparison to
    /// run, and the strict decoder's verdict stands either way.
    #[test]
    fn another_reading_stands_in_only_when_it_is_the_same() {
        let raw = b"Content-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8=";
        let entity = parse_entity(raw, 0, raw.len()).unwrap();
        for parsed in [None, Some(&b"hello"[..]), Some(b"other"), Some(b"")] {
            assert_eq!(
                entity.decoded_body_agreeing(parsed).unwrap().as_ref(),
                b"hello",
                "{parsed:?}"
            );
        }
        let raw = b"Content-Transfer-Encoding: quoted-printable\r\n\r\na=3Db";
        let entity = parse_entity(raw, 0, raw.len()).unwrap();
        assert!(entity.is_transfer_encoded());
        for parsed in [None, Some(&b"a=b"[..]), Some(b"a=3Db")] {
            assert_eq!(
                entity.decoded_body_agreeing(parsed).unwrap().as_ref(),
                b"a=b"
            );
        }
        // A strict-decoding error is not undone by a reading that agrees with the bytes.
        let raw = b"Content-Transfer-Encoding: base64\r\n\r\naGVs!G8=";
        let entity = parse_entity(raw, 0, raw.len()).unwrap();
        assert_eq!(
            entity.decoded_body_agreeing(Some(b"hel")).unwrap_err().kind,
            MimeErrorKind::BadBase64
        );
        let raw = b"Content-Transfer-Encoding: 7bit\r\n\r\nplain";
        let entity = parse_entity(raw, 0, raw.len()).unwrap();
        assert!(!entity.is_transfer_encoded());
    }

    #[test]
    fn quoted_printable_is_strict() {
        assert_eq!(decode_quoted_printable(b"a=3Db=\r\nc", 0).unwrap(), b"a=bc");
        for bad in [
            &b"a=zz"[..],
            b"a==",
            b"a= \r\nb",
            b"a=\tb",
            b"abc=",
            b"trailing \r\nx",
            b"trailing\t",
        ] {
            assert_eq!(
                decode_quoted_printable(bad, 0).unwrap_err().kind,
                MimeErrorKind::BadQuotedPrintable,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn line_endings_and_canonicalization() {
        assert_eq!(line_endings(b"A: b\nC: d\n").unwrap(), LineEndings::BareLf);
        assert_eq!(
            line_endings(b"A: b\r\nC: d\r\n").unwrap(),
            LineEndings::Crlf
        );
        assert_eq!(line_endings(b"no break").unwrap(), LineEndings::Crlf);
        // Decided on the first line break.
        assert_eq!(
            line_endings(b"A: b\nC: d\r\n").unwrap(),
            LineEndings::BareLf
        );
        assert_eq!(line_endings(b"A: b\r\nC: d\n").unwrap(), LineEndings::Crlf);
        for bare_cr in [&b"a\rb"[..], b"a\r", b"a\r\r\n"] {
            assert_eq!(
                line_endings(bare_cr).unwrap_err().kind,
                MimeErrorKind::MixedLineEndings
            );
        }
        // In a CRLF message a bare LF ends no header line and no identity body line.
        let raw = b"Content-Type: text/plain\r\n\nX: y\r\n\r\nbody";
        assert_eq!(
            parse_entity(raw, 0, raw.len()).unwrap_err().kind,
            MimeErrorKind::BadHeaderSection
        );
        let raw = b"Content-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR\nEND:VCALENDAR\r\n";
        let entity = parse_entity(raw, 0, raw.len()).unwrap();
        assert_eq!(
            entity.decoded_body().unwrap_err().kind,
            MimeErrorKind::MixedLineEndings
        );
        // Base64 line breaks are white space to every decoder (openssl cms -crlfeol).
        let raw = b"Content-Transfer-Encoding: base64\r\n\r\naGVs\nbG8=\r\n";
        let entity = parse_entity(raw, 0, raw.len()).unwrap();
        assert_eq!(entity.decoded_body().unwrap().as_ref(), b"hello");
        let original = b"a\nbc\r\n\nd";
        let canonical = Canonical::new(original);
        assert_eq!(canonical.bytes, b"a\r\nbc\r\n\r\nd");
        for (index, &byte) in canonical.bytes.iter().enumerate() {
            let mapped = canonical.original_offset(index);
            let expected = if canonical.inserted.contains(&index) {
                b'\n'
            } else {
                byte
            };
            assert_eq!(original[mapped], expected, "offset {index}");
        }
    }

    #[test]
    fn boundary_anywhere_but_a_delimiter_line_is_stray() {
        for body in [
            &b"x --b\r\n--b\r\n\r\nx\r\n--b--\r\n"[..],
            b"--b\r\n\r\nx --b\r\n--b--\r\n",
            b"--b\r\n\r\nx\r\n--bc\r\n--b--\r\n",
            b"--b\r\n\r\nx\r\n--b--\r\nepilogue --b\r\n",
            b"--b\r\n\r\nx\r\n--b--x\r\n",
        ] {
            assert_eq!(
                split_multipart(body, 0, "b", 10).unwrap_err().kind,
                MimeErrorKind::StrayBoundary,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn header_sections_are_strict() {
        for raw in [
            &b"Content-Type: text/plain\r\n \r\nX: y\r\n\r\nbody"[..],
            b"Content-Type: text/plain\r\ngarbage line\r\n\r\nbody",
            b" leading: continuation\r\n\r\nbody",
            b"Content-Type: text/calendar",
        ] {
            assert_eq!(
                parse_entity(raw, 0, raw.len()).unwrap_err().kind,
                MimeErrorKind::BadHeaderSection,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        // Headers only, ended by the CRLF of the next delimiter: an entity without a body.
        let raw = b"Content-Type: text/plain\r\n";
        assert_eq!(parse_entity(raw, 0, raw.len()).unwrap().body, b"");
    }

    #[test]
    fn parameters_given_twice_or_extended_are_malformed() {
        for (raw, kind) in [
            (
                &b"Content-Type: multipart/mixed; boundary=a; boundary=b\r\n\r\n"[..],
                MimeErrorKind::DuplicateParameter("Content-Type"),
            ),
            (
                b"Content-Type: text/calendar; METHOD=REQUEST; method=CANCEL\r\n\r\n",
                MimeErrorKind::DuplicateParameter("Content-Type"),
            ),
            (
                b"Content-Type: multipart/mixed; boundary=a; boundary*1=b\r\n\r\n",
                MimeErrorKind::ExtendedParameter,
            ),
            (
                b"Content-Type: text/calendar; charset*=utf-7''x\r\n\r\n",
                MimeErrorKind::ExtendedParameter,
            ),
            (
                b"Content-Type: multipart/mixed; boundary=a\\;b\r\n\r\n",
                MimeErrorKind::ExtendedParameter,
            ),
            (
                b"Content-Type: multipart/mixed; boundary=(x)a\r\n\r\n",
                MimeErrorKind::ExtendedParameter,
            ),
            (
                b"Content-Type: text/calendar; charset=\"=?us-ascii?q?utf-7?=\"\r\n\r\n",
                MimeErrorKind::ExtendedParameter,
            ),
            (
                b"Content-Type: multipart/mixed; Boundary==?utf-8?q?b?=\r\n\r\n",
                MimeErrorKind::ExtendedParameter,
            ),
            (
                b"Content-Disposition: attachment; filename=a; filename=b.ics\r\n\r\n",
                MimeErrorKind::DuplicateParameter("Content-Disposition"),
            ),
            (
                b"Content-Disposition: inline\r\nContent-Disposition: attachment\r\n\r\n",
                MimeErrorKind::DuplicateHeader("Content-Disposition"),
            ),
        ] {
            assert_eq!(
                parse_entity(raw, 0, raw.len()).unwrap_err().kind,
                kind,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        // A `*` inside a quoted value is no parameter name; an encoded word in a file name
        // decides nothing (Thunderbird and Outlook write them).
        let raw = b"Content-Type: text/plain; name=\"a*b;c*=d\"\r\n\r\n";
        assert_eq!(
            parse_entity(raw, 0, raw.len()).unwrap().param("name"),
            Some("a*b;c*=d")
        );
        let raw = b"Content-Type: application/pdf; name=\"=?UTF-8?B?w6k=?=.pdf\"\r\n\r\n";
        assert!(parse_entity(raw, 0, raw.len()).is_ok());
    }

    #[test]
    fn entity_headers() {
        let raw = b"Content-Type: Multipart/Signed; boundary=\"x y\"; Protocol=\"application/pkcs7-signature\"\r\nFrom: A <a@example.org>\r\n\r\nbody";
        let entity = parse_entity(raw, 0, raw.len()).unwrap();
        assert_eq!(entity.content_type, "multipart/signed");
        assert_eq!(entity.param("boundary"), Some("x y"));
        assert_eq!(
            entity.param("protocol"),
            Some("application/pkcs7-signature")
        );
        assert_eq!(entity.body, b"body");
        assert_eq!(entity.headers.from, Some(vec!["a@example.org".to_string()]));
        let duplicate = b"Content-Type: text/plain\r\nContent-Type: text/calendar\r\n\r\nx";
        assert!(parse_entity(duplicate, 0, duplicate.len()).is_err());
    }
}
