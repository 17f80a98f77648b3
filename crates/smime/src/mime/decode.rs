//! Strict transfer decoding (RFC 2045 §6.7, §6.8): base64 and quoted-printable, each refusing
//! what another decoder could read differently (the table in the parent module).

use super::MimeError;
use crate::error::MimeErrorKind;

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
        // this loop was most of their cost): at a quad boundary, every run of four alphabet
        // characters decodes to three bytes with no state to check, in one inner loop over the
        // line (issue 17: a signature part is decoded on every message). Everything else takes
        // the byte path below.
        if filled == 0 && padding == 0 {
            let start = index;
            while let Some(&[a, b, c, d]) = input.get(index..index + 4) {
                let (a, b, c, d) = (
                    BASE64_VALUES[usize::from(a)],
                    BASE64_VALUES[usize::from(b)],
                    BASE64_VALUES[usize::from(c)],
                    BASE64_VALUES[usize::from(d)],
                );
                // A non-alphabet byte is 0xff in the table, so one test covers all four.
                if a | b | c | d >= 64 {
                    break;
                }
                out.extend_from_slice(&[(a << 2) | (b >> 4), (b << 4) | (c >> 2), (c << 6) | d]);
                index += 4;
            }
            if index > start {
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

/// Strict quoted-printable (RFC 2045 §6.7, CRLF line breaks): `=` is followed by two hex
/// digits or by the CRLF of a soft line break, and no line ends in white space. Anything else
/// is read differently by different decoders (mail-parser treats `=` + white space as a soft
/// break, keeps `=zz` literally, falls back to the undecoded body on `==`, deletes trailing
/// white space, and a final `=` before a delimiter makes it drop bytes), so it is an error.
pub(crate) fn decode_quoted_printable(input: &[u8], base: usize) -> Result<Vec<u8>, MimeError> {
    let mut out = Vec::with_capacity(input.len());
    let mut index = 0usize;
    let hex = |byte: u8| (byte as char).to_digit(16);
    let error = |offset: usize| MimeError {
        offset: base + offset,
        kind: MimeErrorKind::BadQuotedPrintable,
    };
    while let Some(&byte) = input.get(index) {
        match byte {
            b'=' => match (input.get(index + 1), input.get(index + 2)) {
                (Some(b'\r'), Some(b'\n')) => index += 3,
                (Some(&high), Some(&low)) => match (hex(high), hex(low)) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        index += 3;
                    }
                    _ => return Err(error(index)),
                },
                _ => return Err(error(index)),
            },
            b' ' | b'\t' if matches!(input.get(index + 1), Some(b'\r') | None) => {
                return Err(error(index));
            }
            _ => {
                out.push(byte);
                index += 1;
            }
        }
    }
    Ok(out)
}
