//! Strict MIME entity splitting (RFC 2045, RFC 2046 §5.1) over byte offsets.
//!
//! mail-parser parses the header fields (Content-Type with RFC 2231 parameters, addresses,
//! encoded words). Body splitting is done here, strictly, because mail-parser is a
//! display-oriented parser: it recovers from broken structure and finds `--boundary` even in
//! the middle of a line, and such tolerance is what MIME wrapping attacks exploit. Here a
//! delimiter is `--boundary` at the start of a line followed only by optional linear white
//! space; the CRLF before it belongs to the delimiter (RFC 2046 §5.1.1); a multipart without
//! its close delimiter is malformed.

use std::borrow::Cow;

use mail_parser::{HeaderName, HeaderValue, MessageParser};

use crate::error::MimeErrorKind;

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

    /// The transfer-decoded body.
    pub fn decoded_body(&self) -> Result<Cow<'_, [u8]>, MimeError> {
        match self.encoding {
            TransferEncoding::Identity => Ok(Cow::Borrowed(self.body)),
            TransferEncoding::Base64 => decode_base64(self.body, self.body_start).map(Cow::Owned),
            TransferEncoding::QuotedPrintable => Ok(Cow::Owned(decode_quoted_printable(self.body))),
            TransferEncoding::Unknown => Err(MimeError {
                offset: self.start,
                kind: MimeErrorKind::UnknownTransferEncoding,
            }),
        }
    }
}

/// Whether the buffer uses bare LF line endings (stored mail: mbox, Maildir): decided on the
/// first line break.
pub(crate) fn has_bare_lf_endings(raw: &[u8]) -> bool {
    match raw.iter().position(|&b| b == b'\n') {
        Some(0) => true,
        Some(position) => raw.get(position - 1) != Some(&b'\r'),
        None => false,
    }
}

/// RFC 5322 / RFC 5751 §3.1.1 canonical form: every bare LF becomes CRLF.
pub(crate) fn canonicalize(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    let mut previous = 0u8;
    for &byte in raw {
        if byte == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(byte);
        previous = byte;
    }
    out
}

/// Whether `content` has no header section at all: it neither starts with the blank line of
/// an empty header section nor with a header field (`field-name ":"`, RFC 5322 §2.2 / §3.6.8:
/// printable US-ASCII but ":", optionally followed by white space before the colon).
pub(crate) fn is_headerless(content: &[u8]) -> bool {
    if content.starts_with(b"\r\n") {
        return false;
    }
    let line_end = find(content, b"\r\n").unwrap_or(content.len());
    let line = content.get(..line_end).unwrap_or_default();
    let Some(colon) = line.iter().position(|&byte| byte == b':') else {
        return true;
    };
    let name = line.get(..colon).unwrap_or_default();
    let name = name.trim_ascii_end();
    name.is_empty() || !name.iter().all(|&byte| (33..=126).contains(&byte))
}

/// Parse the entity occupying `buffer[start..end]`.
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
            None => (raw.len(), raw.len()),
        }
    };
    let header_bytes = raw.get(..header_len).unwrap_or_default();
    let body = raw.get(body_offset..).unwrap_or_default();

    let mut content_type = "text/plain".to_string();
    let mut params = Vec::new();
    let mut encoding = TransferEncoding::Identity;
    let mut headers = ProtectedHeaders::default();
    if !header_bytes.is_empty() {
        let mut with_blank = header_bytes.to_vec();
        with_blank.extend_from_slice(b"\r\n");
        let parsed = MessageParser::default()
            .parse_headers(&with_blank)
            .ok_or(MimeError {
                offset: start,
                kind: MimeErrorKind::NoHeaders,
            })?;
        let mut seen_type = false;
        let mut seen_encoding = false;
        for header in parsed.headers() {
            match &header.name {
                HeaderName::ContentType => {
                    if seen_type {
                        return Err(MimeError {
                            offset: start + header.offset_field as usize,
                            kind: MimeErrorKind::DuplicateHeader("Content-Type"),
                        });
                    }
                    seen_type = true;
                    let parsed_type = header.value.as_content_type().ok_or(MimeError {
                        offset: start + header.offset_field as usize,
                        kind: MimeErrorKind::BadContentType,
                    })?;
                    let subtype = parsed_type.c_subtype.as_deref().ok_or(MimeError {
                        offset: start + header.offset_field as usize,
                        kind: MimeErrorKind::BadContentType,
                    })?;
                    content_type =
                        format!("{}/{}", parsed_type.c_type, subtype).to_ascii_lowercase();
                    params = parsed_type
                        .attributes
                        .iter()
                        .flatten()
                        .map(|attribute| {
                            (
                                attribute.name.to_ascii_lowercase(),
                                attribute.value.to_string(),
                            )
                        })
                        .collect();
                }
                HeaderName::ContentTransferEncoding => {
                    if seen_encoding {
                        return Err(MimeError {
                            offset: start + header.offset_field as usize,
                            kind: MimeErrorKind::DuplicateHeader("Content-Transfer-Encoding"),
                        });
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
        encoding,
        headers,
    })
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

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Split a multipart body into its body parts: `(start, end)` offsets into the buffer, for the
/// entity whose body begins at `body_start`. RFC 2046 §5.1.1: the CRLF preceding a delimiter
/// belongs to the delimiter, so `end` stops before it.
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
        if let Some(rest) = line.strip_prefix(dash_boundary.as_slice()) {
            let (closing, padding) = match rest.strip_prefix(b"--") {
                Some(padding) => (true, padding),
                None => (false, rest),
            };
            if padding.iter().all(|&b| b == b' ' || b == b'\t') {
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
                    return Ok(parts);
                }
                current = Some(match line_end {
                    Some(end) => end + 2,
                    None => body.len(),
                });
            }
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

/// Strict base64 (RFC 2045 §6.8): whitespace is skipped, any other non-alphabet byte or bad
/// padding is an error.
pub(crate) fn decode_base64(input: &[u8], base: usize) -> Result<Vec<u8>, MimeError> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut quad = [0u8; 4];
    let mut filled = 0usize;
    let mut padding = 0usize;
    let mut index = 0usize;
    while index < input.len() {
        // Fast path (issue #11, amplification: nested base64 layers are decoded once each, and
        // this loop was most of their cost): four alphabet characters at a quad boundary decode
        // to three bytes, with no state to check. Everything else takes the byte path below.
        if filled == 0
            && padding == 0
            && let Some(&[a, b, c, d]) = input.get(index..index + 4)
        {
            let values = [
                BASE64_VALUES[usize::from(a)],
                BASE64_VALUES[usize::from(b)],
                BASE64_VALUES[usize::from(c)],
                BASE64_VALUES[usize::from(d)],
            ];
            if values.iter().all(|&value| value < 64) {
                let [a, b, c, d] = values;
                out.extend_from_slice(&[(a << 2) | (b >> 4), (b << 4) | (c >> 2), (c << 6) | d]);
                index += 4;
                continue;
            }
        }
        let Some(&byte) = input.get(index) else {
            break;
        };
        index += 1;
        let index = index - 1;
        let error = MimeError {
            offset: base + index,
            kind: MimeErrorKind::BadBase64,
        };
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                if filled < 2 {
                    return Err(error);
                }
                padding += 1;
                0
            }
            b'\r' | b'\n' | b' ' | b'\t' => continue,
            _ => return Err(error),
        };
        if padding > 0 && byte != b'=' {
            // Data after padding.
            return Err(error);
        }
        if let Some(slot) = quad.get_mut(filled) {
            *slot = value;
        }
        filled += 1;
        if filled == 4 {
            let [a, b, c, d] = quad;
            // RFC 4648 §3.5: the bits dropped by padding must be zero, so that one decoded
            // value has one encoding (a flipped pad bit must not go unnoticed).
            let dropped = match padding {
                2 => b & 0x0f,
                1 => c & 0x03,
                _ => 0,
            };
            if dropped != 0 {
                return Err(error);
            }
            out.push((a << 2) | (b >> 4));
            if padding < 2 {
                out.push((b << 4) | (c >> 2));
            }
            if padding < 1 {
                out.push((c << 6) | d);
            }
            filled = 0;
            if padding > 0 {
                padding = 3; // nothing but whitespace may follow
            }
        }
    }
    if filled != 0 {
        return Err(MimeError {
            offset: base + input.len(),
            kind: MimeErrorKind::BadBase64,
        });
    }
    Ok(out)
}

/// The value of each base64 alphabet character (RFC 4648 §4), 0xff for every other byte.
static BASE64_VALUES: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut value = 0;
    while value < 64 {
        table[alphabet[value] as usize] = value as u8;
        value += 1;
    }
    table
};

/// Quoted-printable (RFC 2045 §6.7); malformed `=` sequences are kept literally.
pub(crate) fn decode_quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut index = 0usize;
    let hex = |byte: u8| (byte as char).to_digit(16);
    while let Some(&byte) = input.get(index) {
        if byte == b'=' {
            match (input.get(index + 1), input.get(index + 2)) {
                (Some(b'\r'), Some(b'\n')) => {
                    index += 3;
                    continue;
                }
                (Some(b'\n'), _) => {
                    index += 2;
                    continue;
                }
                (Some(&high), Some(&low)) => {
                    if let (Some(high), Some(low)) = (hex(high), hex(low)) {
                        out.push((high * 16 + low) as u8);
                        index += 3;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(byte);
        index += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn delimiters_only_at_line_start_and_crlf_belongs_to_delimiter() {
        let body = b"preamble\r\n--b\r\nA: 1\r\n\r\nx --b not here\r\n--b \r\nB: 2\r\n\r\ny\r\n--b--\r\nepilogue";
        let parts = split_multipart(body, 100, "b", 10).unwrap();
        assert_eq!(parts.len(), 2);
        let (s, e) = parts[0];
        assert_eq!(&body[s - 100..e - 100], b"A: 1\r\n\r\nx --b not here");
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
        // A boundary prefix followed by text is not a delimiter.
        let error = split_multipart(b"--b\r\n\r\nx\r\n--bc--\r\n", 0, "b", 10).unwrap_err();
        assert_eq!(error.kind, MimeErrorKind::NoCloseDelimiter);
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

    #[test]
    fn quoted_printable() {
        assert_eq!(decode_quoted_printable(b"a=3Db=\r\nc"), b"a=bc");
        assert_eq!(decode_quoted_printable(b"a=zz"), b"a=zz");
    }

    #[test]
    fn canonicalization() {
        assert!(has_bare_lf_endings(b"A: b\nC: d\n"));
        assert!(!has_bare_lf_endings(b"A: b\r\nC: d\n"));
        assert_eq!(canonicalize(b"a\nb\r\nc"), b"a\r\nb\r\nc");
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
