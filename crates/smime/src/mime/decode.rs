//! Strict transfer decoding (RFC 2045 §6.7, §6.8): base64 and quoted-printable, each refusing
//! what another decoder could read differently (the table in the parent module).

use super::MimeError;
use crate::error::MimeErrorKind;

/// Strict base64 (RFC 2045 §6.8): whitespace is skipped, any other non-alphabet byte or bad
/// padding is an error.
///
/// Most bodies are canonical base64 in CRLF lines (every signature part is): those are read
/// by [`decode_canonical_lines`], and only what it does not accept goes to the byte-by-byte
/// decoder, which gives the answer (and the error offset) for everything else. The two agree
/// wherever the first accepts (`base64_line_path_agrees_with_the_byte_path`).
pub(crate) fn decode_base64(input: &[u8], base: usize) -> Result<Vec<u8>, MimeError> {
    match decode_canonical_lines(input) {
        Some(decoded) => Ok(decoded),
        None => decode_base64_bytes(input, base),
    }
}

/// The body with its line breaks removed (every LF, and the CR just before one), decoded by
/// the `base64` crate's strict engine: the alphabet only, padding exactly where the length
/// needs it, zero pad bits (`STANDARD`: `RequireCanonical`, no trailing bits). What that
/// accepts is a canonical encoding, which the byte decoder, skipping the same line breaks,
/// reads to the same bytes. `None` for anything else (white space inside a line, a lone CR,
/// any non-alphabet byte, bad padding), and then the byte decoder decides.
///
/// Why: a signature part is decoded on every message, and the byte decoder's one-quad-at-a-
/// time loop was about 5% of `audit`'s time (issue 17). One contiguous input lets the
/// `base64` crate decode eight characters per step, which per 64-76 character line it could
/// not (its per-call cost was more than the gain, BENCHMARKS.md seventh round).
fn decode_canonical_lines(input: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let mut compact = Vec::with_capacity(input.len());
    let mut rest = input;
    while let Some(end) = memchr::memchr(b'\n', rest) {
        let line = rest.get(..end).unwrap_or_default();
        compact.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    compact.extend_from_slice(rest);
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .ok()
}

/// The byte-by-byte strict decoder: the reference for [`decode_base64`], and the one that
/// reads (or refuses, at the offending byte) whatever is not canonical base64 in lines.
fn decode_base64_bytes(input: &[u8], base: usize) -> Result<Vec<u8>, MimeError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64*), so a failure names its case.
    struct Cases(u64);

    impl Cases {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, bound: usize) -> usize {
            usize::try_from(self.next() % bound as u64).unwrap()
        }
    }

    /// The line path accepts only what the byte decoder reads to the same bytes, and
    /// `decode_base64` answers exactly as the byte decoder does (value or error offset) on
    /// canonical bodies in lines of every length, and on each of them with one byte changed,
    /// inserted or removed: white space, a lone CR or LF, padding, a non-alphabet byte.
    #[test]
    fn base64_line_path_agrees_with_the_byte_path() {
        let mut cases = Cases(0x9e37_79b9_7f4a_7c15);
        let noise = b"=\r\n \t!-A/+z09\x00\xff.";
        let mut accepted = 0;
        for case in 0..20_000 {
            let length = cases.below(200);
            let data: Vec<u8> = (0..length).map(|_| cases.next() as u8).collect();
            let encoded = openssl::base64::encode_block(&data).into_bytes();
            let width = 1 + cases.below(80);
            let mut body = Vec::new();
            for (index, chunk) in encoded.chunks(width).enumerate() {
                if index > 0 {
                    body.extend_from_slice(if cases.below(8) == 0 { b"\n" } else { b"\r\n" });
                }
                body.extend_from_slice(chunk);
            }
            if cases.below(2) == 0 {
                body.extend_from_slice(b"\r\n");
            }
            if case % 2 == 1 && !body.is_empty() {
                let at = cases.below(body.len() + 1);
                let byte = noise[cases.below(noise.len())];
                match cases.below(3) {
                    0 => body.insert(at, byte),
                    1 if at < body.len() => body[at] = byte,
                    _ if at < body.len() => {
                        body.remove(at);
                    }
                    _ => body.push(byte),
                }
            }
            let reference = decode_base64_bytes(&body, 7);
            if let Some(fast) = decode_canonical_lines(&body) {
                accepted += 1;
                assert_eq!(Ok(&fast), reference.as_ref(), "case {case}: {body:?}");
            }
            assert_eq!(decode_base64(&body, 7), reference, "case {case}: {body:?}");
        }
        // Both kinds of body were seen: the unchanged ones all take the line path.
        assert!((10_000..20_000).contains(&accepted), "{accepted}");
    }
}
