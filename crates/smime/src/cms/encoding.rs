//! The X.690 encoding rules `rasn` 0.30 does not enforce, checked on the received bytes
//! before `rasn` decodes them (issue #15).
//!
//! `rasn`'s BER and DER decoders read a length in the long form where the short form fits,
//! or with leading zero octets, and an OBJECT IDENTIFIER arc with a leading `0x80` octet: two
//! encodings of one value that both decode, which X.690 §10.1 (DER lengths) and §8.19.2 (arcs,
//! "the leading octet ... shall not have the value 0x80", in BER too) forbid. The own reader
//! this crate had before was more lenient still (it dropped an unterminated last arc and
//! saturated huge arcs). This is the one piece of hand-written ASN.1 left in this crate:
//! it decodes nothing, it only refuses encodings, so that what `rasn` then decodes has exactly
//! one encoding a stricter reader (OpenSSL, gpgsm) reads the same way:
//! - every length minimal (short form below 128, no leading zero octet in the long form,
//!   at most four length octets);
//! - every OBJECT IDENTIFIER non-empty, each arc minimal, terminated and within `u32` (the
//!   largest arc `rasn` decodes);
//! - no high tag numbers (CMS has none);
//! - [`Rules::Der`] (the signed attributes, RFC 5652 §5.3): no indefinite length and no
//!   constructed string encodings either.
//!
//! Nesting is bounded by [`MAX_NESTING`]; every error is the byte offset of the offending
//! element in `input`.
// Untrusted input reaches every function here: no indexing or slicing that can panic
// (get / split_at_checked / patterns instead), issue #11 item 1.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

/// Deepest nesting of constructed encodings followed (certificates nest about ten deep).
pub(crate) const MAX_NESTING: usize = 32;

/// Which encoding rules `check` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rules {
    /// BER with minimal lengths and strict OIDs: indefinite lengths and constructed strings,
    /// which streaming encoders produce for the outer CMS structure, are allowed.
    Ber,
    /// DER: definite lengths only, primitive strings only.
    Der,
}

const OID: u8 = 0x06;
const CONSTRUCTED: u8 = 0x20;

/// Check every element of `input` (a sequence of whole elements) under `rules`.
pub(crate) fn check(input: &[u8], rules: Rules) -> Result<(), usize> {
    elements(input, 0, rules, 0)
}

/// The elements of `input` (whose first byte is at `base`), until its end.
fn elements(mut input: &[u8], mut base: usize, rules: Rules, depth: usize) -> Result<(), usize> {
    while !input.is_empty() {
        let used = element(input, base, rules, depth)?;
        input = input.get(used..).ok_or(base)?;
        base += used;
    }
    Ok(())
}

/// Check the element at the start of `input`; returns its whole encoded length.
fn element(input: &[u8], base: usize, rules: Rules, depth: usize) -> Result<usize, usize> {
    if depth > MAX_NESTING {
        return Err(base);
    }
    let [identifier, first_length, rest @ ..] = input else {
        return Err(base);
    };
    let (identifier, first_length) = (*identifier, *first_length);
    if identifier & 0x1f == 0x1f {
        return Err(base);
    }
    let constructed = identifier & CONSTRUCTED != 0;
    if rules == Rules::Der && constructed && is_string(identifier) {
        return Err(base);
    }
    let (header, length) = match first_length {
        0x00..=0x7f => (2usize, Some(usize::from(first_length))),
        0x80 if constructed && rules == Rules::Ber => (2, None),
        0x81..=0x84 => {
            let count = usize::from(first_length & 0x7f);
            let octets = rest.get(..count).ok_or(base)?;
            // Minimal: no leading zero octet, and the short form when it fits.
            if octets.first() == Some(&0) {
                return Err(base);
            }
            let length = octets
                .iter()
                .fold(0usize, |length, &octet| (length << 8) | usize::from(octet));
            if length < 0x80 {
                return Err(base);
            }
            (2 + count, Some(length))
        }
        _ => return Err(base),
    };
    let content_base = base + header;
    match length {
        Some(length) => {
            let end = header.checked_add(length).ok_or(base)?;
            let content = input.get(header..end).ok_or(base)?;
            if constructed {
                elements(content, content_base, rules, depth + 1)?;
            } else if identifier == OID {
                object_identifier(content).map_err(|at| content_base + at)?;
            }
            Ok(end)
        }
        None => {
            // Indefinite: elements until the end-of-contents octets.
            let mut position = header;
            loop {
                let rest = input.get(position..).ok_or(base)?;
                if rest.starts_with(&[0, 0]) {
                    return Ok(position + 2);
                }
                position += element(rest, base + position, rules, depth + 1)?;
            }
        }
    }
}

/// Universal string types, whose constructed form DER forbids (X.690 §10.2): BIT STRING,
/// OCTET STRING and the character strings.
fn is_string(identifier: u8) -> bool {
    identifier & 0xc0 == 0
        && matches!(
            identifier & 0x1f,
            0x03 | 0x04 | 0x0c | 0x12..=0x16 | 0x19..=0x1e
        )
}

/// X.690 §8.19: the contents of an OBJECT IDENTIFIER, non-empty, each subidentifier minimal
/// (no leading 0x80 octet), terminated (the last octet has bit 8 clear) and within `u32`.
/// Returns the offset of the offending octet in `content`.
fn object_identifier(content: &[u8]) -> Result<(), usize> {
    if content.is_empty() {
        return Err(0);
    }
    let mut start = true;
    let mut value: u32 = 0;
    for (at, &octet) in content.iter().enumerate() {
        if start && octet == 0x80 {
            return Err(at);
        }
        if value > u32::MAX >> 7 {
            return Err(at);
        }
        value = (value << 7) | u32::from(octet & 0x7f);
        start = octet & 0x80 == 0;
        if start {
            value = 0;
        }
    }
    if start {
        Ok(())
    } else {
        Err(content.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_definite_and_indefinite_lengths() {
        assert_eq!(check(&[0x30, 0x03, 0x02, 0x01, 0x05], Rules::Der), Ok(()));
        let indefinite = [0x30, 0x80, 0x02, 0x01, 0x05, 0x00, 0x00];
        assert_eq!(check(&indefinite, Rules::Ber), Ok(()));
        assert_eq!(check(&indefinite, Rules::Der), Err(0));
        // 0x81 0x03: the long form where the short form fits.
        assert_eq!(
            check(&[0x30, 0x81, 0x03, 0x02, 0x01, 0x05], Rules::Ber),
            Err(0)
        );
        // A leading zero length octet.
        let mut long = vec![0x04, 0x82, 0x00, 0x80];
        long.extend([0u8; 0x80]);
        assert_eq!(check(&long, Rules::Ber), Err(0));
        let mut minimal = vec![0x04, 0x81, 0x80];
        minimal.extend([0u8; 0x80]);
        assert_eq!(check(&minimal, Rules::Der), Ok(()));
    }

    #[test]
    fn truncated_and_deep_are_errors_not_panics() {
        for input in [
            &[0x30][..],
            &[0x30, 0x05, 0x01],
            &[0x30, 0x80, 0x02, 0x01],
            &[0x30, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            &[0x1f, 0x01, 0x00],
        ] {
            assert!(check(input, Rules::Ber).is_err());
        }
        let mut deep = [0x30, 0x80].repeat(1000);
        deep.extend([0, 0].repeat(1000));
        assert!(check(&deep, Rules::Ber).is_err());
    }

    #[test]
    fn object_identifiers_are_strict() {
        // id-signedData.
        let good = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
        assert_eq!(object_identifier(&good), Ok(()));
        assert_eq!(object_identifier(&[]), Err(0));
        // Unterminated last arc.
        assert_eq!(object_identifier(&[0x2a, 0x86]), Err(1));
        // A leading 0x80 octet.
        assert_eq!(object_identifier(&[0x2a, 0x80, 0x01]), Err(1));
        // 2^32 does not fit u32; 2^32 - 1 does.
        assert!(object_identifier(&[0x2a, 0x90, 0x80, 0x80, 0x80, 0x00]).is_err());
        assert_eq!(
            object_identifier(&[0x2a, 0x8f, 0xff, 0xff, 0xff, 0x7f]),
            Ok(())
        );
    }

    #[test]
    fn der_refuses_constructed_strings() {
        let constructed = [0x24, 0x03, 0x04, 0x01, b'a'];
        assert_eq!(check(&constructed, Rules::Ber), Ok(()));
        assert_eq!(check(&constructed, Rules::Der), Err(0));
    }
}
