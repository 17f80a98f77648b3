//! A small, bounded BER/DER reader (ITU-T X.690), left for one use only: before OpenSSL's
//! `CMS_decrypt` runs, `decrypt` reads the RecipientInfos' identifiers (which of our keys to
//! try) and the AuthEnvelopedData `mac` length with it. Nothing verified is read here: SignedData
//! is decoded by `rasn-cms` alone (`cms::decode`, issue #15), and this reader is next in line to
//! be replaced by the same (see the crate README, limitations).
//!
//! Indefinite lengths (BER, as produced by streaming encoders) are accepted; nesting is bounded
//! by [`MAX_NESTING`]. Every error carries the byte offset into the outermost input.
// Untrusted input reaches every function here: no indexing or slicing that can panic
// (get / split_at_checked / patterns instead), issue #11 item 1.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

/// Deepest nesting of constructed indefinite-length encodings followed.
pub(crate) const MAX_NESTING: usize = 32;

/// Universal tags (first identifier octet) used by CMS.
pub(crate) mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OID: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
}

/// A malformed encoding at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DerError {
    pub offset: usize,
}

/// One tag-length-value element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    /// The identifier octet (high tag numbers are rejected).
    pub tag: u8,
    /// The whole element, identifier and length octets included (end-of-contents too).
    pub full: &'a [u8],
    /// The contents octets (without end-of-contents for indefinite lengths).
    pub content: &'a [u8],
    /// Offset of `content` in the outermost input.
    pub content_offset: usize,
    /// Offset of `full` in the outermost input.
    pub offset: usize,
}

impl<'a> Tlv<'a> {
    /// Iterate the children of a constructed element.
    pub fn children(&self) -> Children<'a> {
        Children {
            input: self.content,
            base: self.content_offset,
        }
    }

    /// Fail unless the tag is `expected`.
    pub fn expect(self, expected: u8) -> Result<Self, DerError> {
        if self.tag == expected {
            Ok(self)
        } else {
            Err(DerError {
                offset: self.offset,
            })
        }
    }
}

/// Iterator over consecutive elements of a byte range.
pub(crate) struct Children<'a> {
    input: &'a [u8],
    base: usize,
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<Tlv<'a>, DerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.input.is_empty() {
            return None;
        }
        match read(self.input, self.base) {
            Ok(tlv) => {
                let used = tlv.full.len();
                self.input = self.input.get(used..).unwrap_or_default();
                self.base += used;
                Some(Ok(tlv))
            }
            Err(error) => {
                self.input = &[];
                Some(Err(error))
            }
        }
    }
}

/// Read exactly one element that spans all of `input`.
pub(crate) fn read_all(input: &[u8]) -> Result<Tlv<'_>, DerError> {
    let tlv = read(input, 0)?;
    if tlv.full.len() != input.len() {
        return Err(DerError {
            offset: tlv.full.len(),
        });
    }
    Ok(tlv)
}

/// Read one element at the start of `input`, whose first byte is at `base` in the outermost input.
pub(crate) fn read(input: &[u8], base: usize) -> Result<Tlv<'_>, DerError> {
    read_nested(input, base, 0)
}

fn read_nested(input: &[u8], base: usize, depth: usize) -> Result<Tlv<'_>, DerError> {
    let error = DerError { offset: base };
    if depth > MAX_NESTING {
        return Err(error);
    }
    let tag = *input.first().ok_or(error)?;
    if tag & 0x1f == 0x1f {
        // High tag numbers never occur in CMS.
        return Err(error);
    }
    let first_length = *input.get(1).ok_or(error)?;
    let (header_len, length) = match first_length {
        0x00..=0x7f => (2usize, Some(usize::from(first_length))),
        0x80 => (2, None),
        0x81..=0x84 => {
            let count = usize::from(first_length & 0x7f);
            let bytes = input.get(2..2 + count).ok_or(error)?;
            let mut length = 0usize;
            for &byte in bytes {
                length = (length << 8) | usize::from(byte);
            }
            (2 + count, Some(length))
        }
        _ => return Err(error),
    };
    let content_offset = base + header_len;
    match length {
        Some(length) => {
            let end = header_len.checked_add(length).ok_or(error)?;
            let content = input.get(header_len..end).ok_or(error)?;
            let full = input.get(..end).ok_or(error)?;
            Ok(Tlv {
                tag,
                full,
                content,
                content_offset,
                offset: base,
            })
        }
        None => {
            if tag & 0x20 == 0 {
                // Indefinite length is only allowed for constructed encodings.
                return Err(error);
            }
            let mut position = header_len;
            loop {
                let rest = input.get(position..).ok_or(error)?;
                if rest.starts_with(&[0, 0]) {
                    let content = input.get(header_len..position).ok_or(error)?;
                    let full = input.get(..position + 2).ok_or(error)?;
                    return Ok(Tlv {
                        tag,
                        full,
                        content,
                        content_offset,
                        offset: base,
                    });
                }
                let child = read_nested(rest, base + position, depth + 1)?;
                position += child.full.len();
            }
        }
    }
}

/// Dotted form of an OBJECT IDENTIFIER's contents octets.
pub(crate) fn oid_string(content: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &byte in content {
        value = value
            .saturating_mul(128)
            .saturating_add(u64::from(byte & 0x7f));
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Read an OID element and return its dotted form.
pub(crate) fn read_oid(tlv: Tlv<'_>) -> Result<String, DerError> {
    let tlv = tlv.expect(tag::OID)?;
    if tlv.content.is_empty() {
        return Err(DerError { offset: tlv.offset });
    }
    Ok(oid_string(tlv.content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definite_and_indefinite_lengths() {
        let definite = [0x30, 0x03, 0x02, 0x01, 0x05];
        let tlv = read_all(&definite).unwrap();
        assert_eq!(tlv.content, &[0x02, 0x01, 0x05]);
        let indefinite = [0x30, 0x80, 0x02, 0x01, 0x05, 0x00, 0x00];
        let tlv = read_all(&indefinite).unwrap();
        assert_eq!(tlv.content, &[0x02, 0x01, 0x05]);
    }

    #[test]
    fn truncated_and_overlong_are_errors_not_panics() {
        assert!(read_all(&[0x30]).is_err());
        assert!(read_all(&[0x30, 0x05, 0x01]).is_err());
        assert!(read_all(&[0x30, 0x80, 0x02, 0x01]).is_err());
        assert!(read_all(&[0x30, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 1]).is_err());
        let mut deep = [0x30, 0x80].repeat(1000);
        deep.extend([0, 0].repeat(1000));
        assert!(read_all(&deep).is_err());
    }

    #[test]
    fn oid_dotted() {
        assert_eq!(
            oid_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]),
            "1.2.840.113549.1.7.2"
        );
    }
}
