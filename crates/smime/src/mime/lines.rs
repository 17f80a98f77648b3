//! Line endings of a buffer: CRLF as received, or bare LF (mbox / Maildir storage) turned
//! into the canonical CRLF form with a map back to the received offsets; headerless content.

use super::{MimeError, find};
use crate::error::MimeErrorKind;

/// How the lines of a buffer end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineEndings {
    /// CRLF only (or no line break at all): used as received.
    Crlf,
    /// LF only, no CR anywhere (stored mail: mbox, Maildir): canonicalised before the walk.
    BareLf,
}

/// The line endings of `raw`, decided on its first line break: a bare LF there is stored
/// mail (mbox, Maildir, files written by `openssl smime` on Unix), canonicalised before the
/// walk (RFC 8551 §3.1.1); otherwise CRLF. A bare CR is malformed anywhere.
///
/// In a CRLF message a bare LF is malformed where lines carry meaning: in a header section
/// ([`parse_entity`]: a header section ended by CRLF then a bare LF starts mail-parser's body
/// hundreds of bytes before a strict reader's), on a delimiter line ([`split_multipart`]:
/// the boundary is then stray) and in an identity or quoted-printable body
/// ([`Entity::decoded_body`]). It is tolerated only inside base64 bodies, where line breaks
/// are white space to every decoder: `openssl cms -sign -crlfeol` writes the signature's
/// base64 with bare LF.
///
/// Both scans run over every received byte, so they look only at the CRs and LFs (`memchr`)
/// instead of stepping through each byte (issue 17); the tests hold them to the byte-wise
/// definition on every short input.
pub(crate) fn line_endings(raw: &[u8]) -> Result<LineEndings, MimeError> {
    if let Some(offset) =
        memchr::memchr_iter(b'\r', raw).find(|&at| raw.get(at + 1) != Some(&b'\n'))
    {
        return Err(MimeError {
            offset,
            kind: MimeErrorKind::MixedLineEndings,
        });
    }
    Ok(match memchr::memchr(b'\n', raw) {
        Some(at) if !follows_cr(raw, at) => LineEndings::BareLf,
        _ => LineEndings::Crlf,
    })
}

/// The offset of the first bare LF in `bytes` (CRLF line endings expected), if any.
pub(super) fn bare_lf(bytes: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', bytes).find(|&at| !follows_cr(bytes, at))
}

/// Whether the byte before `at` is a CR.
fn follows_cr(bytes: &[u8], at: usize) -> bool {
    at.checked_sub(1).and_then(|before| bytes.get(before)) == Some(&b'\r')
}

/// A copy in RFC 5322 / RFC 5751 §3.1.1 canonical form (every bare LF becomes CRLF) that
/// maps its offsets back to the original: a diagnostic reports the original's offset, the
/// bytes as received (issue #12).
#[derive(Debug)]
pub(crate) struct Canonical {
    pub bytes: Vec<u8>,
    /// Offsets in `bytes` of the CRs that were inserted, ascending.
    pub(super) inserted: Vec<usize>,
}

impl Canonical {
    pub fn new(raw: &[u8]) -> Canonical {
        let mut bytes = Vec::with_capacity(raw.len() + raw.len() / 32);
        let mut inserted = Vec::new();
        let mut previous = 0u8;
        for &byte in raw {
            if byte == b'\n' && previous != b'\r' {
                inserted.push(bytes.len());
                bytes.push(b'\r');
            }
            bytes.push(byte);
            previous = byte;
        }
        Canonical { bytes, inserted }
    }

    /// The offset in the original of offset `canonical` of the copy (an inserted CR maps to
    /// the LF it precedes).
    pub fn original_offset(&self, canonical: usize) -> usize {
        canonical - self.inserted.partition_point(|&at| at < canonical)
    }
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

/// Whether `content` is US-ASCII text: printable characters, TAB, CR and LF only. What
/// decrypted header-less content must be when no integrity protects it (the walker's
/// `walk_content`): RFC 2045 §5.2 makes such content `text/plain; charset=us-ascii`, and a
/// random byte is one of these 98 values with a probability of 0.38.
pub(crate) fn is_ascii_text(content: &[u8]) -> bool {
    content
        .iter()
        .all(|&byte| matches!(byte, b' '..=b'~' | b'\t' | b'\r' | b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-wise definitions the `memchr` scans replaced.
    fn line_endings_bytewise(raw: &[u8]) -> Result<LineEndings, MimeError> {
        let mut first = None;
        let mut previous = 0u8;
        for (index, &byte) in raw.iter().enumerate() {
            match byte {
                b'\n' => {
                    first.get_or_insert(if previous == b'\r' {
                        LineEndings::Crlf
                    } else {
                        LineEndings::BareLf
                    });
                }
                _ if previous == b'\r' => {
                    return Err(MimeError {
                        offset: index - 1,
                        kind: MimeErrorKind::MixedLineEndings,
                    });
                }
                _ => {}
            }
            previous = byte;
        }
        if previous == b'\r' {
            return Err(MimeError {
                offset: raw.len() - 1,
                kind: MimeErrorKind::MixedLineEndings,
            });
        }
        Ok(first.unwrap_or(LineEndings::Crlf))
    }

    fn bare_lf_bytewise(bytes: &[u8]) -> Option<usize> {
        let mut previous = 0u8;
        bytes.iter().enumerate().find_map(|(index, &byte)| {
            let bare = byte == b'\n' && previous != b'\r';
            previous = byte;
            bare.then_some(index)
        })
    }

    /// Every input of up to 9 bytes over CR, LF and one other byte, and each of those after
    /// 40 plain bytes (past `memchr`'s vector width): the same answer as byte by byte.
    #[test]
    fn the_scans_agree_with_the_bytewise_definition() {
        let alphabet = [b'\r', b'\n', b'a'];
        let mut checked = 0;
        for length in 0..=9u32 {
            for mut code in 0..3usize.pow(length) {
                let mut input = Vec::new();
                for _ in 0..length {
                    input.push(alphabet[code % 3]);
                    code /= 3;
                }
                let mut padded = vec![b'x'; 40];
                padded.extend_from_slice(&input);
                for bytes in [&input, &padded] {
                    assert_eq!(
                        line_endings(bytes),
                        line_endings_bytewise(bytes),
                        "{bytes:?}"
                    );
                    assert_eq!(bare_lf(bytes), bare_lf_bytewise(bytes), "{bytes:?}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 2 * (0..=9).map(|n| 3usize.pow(n)).sum::<usize>());
    }
}
