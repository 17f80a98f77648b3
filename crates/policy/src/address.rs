//! Calendar user addresses: validation and the normal form used as a key.

use thiserror::Error;

/// Why an address was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Nothing left after removing `mailto:`.
    #[error("address is empty")]
    Empty,
    /// Longer than [`Limits::address_bytes`](crate::Limits::address_bytes).
    #[error("address is {len} bytes, limit {max}")]
    TooLong {
        /// Length in bytes (after removing `mailto:`).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// No `@`.
    #[error("address has no '@'")]
    MissingAt,
    /// More than one `@` (quoted local parts are not supported).
    #[error("address has a second '@' at byte {offset}")]
    SecondAt {
        /// Byte offset of the second `@` in the input.
        offset: usize,
    },
    /// Nothing before the `@`.
    #[error("address has an empty local part")]
    EmptyLocalPart,
    /// Nothing after the `@`.
    #[error("address has an empty domain")]
    EmptyDomain,
    /// Whitespace or a control character (CR, LF, NUL, ...).
    #[error("address has whitespace or a control character at byte {offset}")]
    ForbiddenCharacter {
        /// Byte offset in the input.
        offset: usize,
    },
}

/// How the local part (before `@`) is compared.
///
/// RFC 5321 §2.4 lets a server treat local parts as case-sensitive, but
/// practically every mail system folds case, and a case-sensitive store
/// would let `Alice@example.com` miss a revocation recorded for
/// `alice@example.com`. The default therefore folds the local part.
/// A database must keep one choice for its whole life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LocalPartCase {
    /// Lower-case the local part (default).
    #[default]
    Insensitive,
    /// Keep the local part as written.
    Sensitive,
}

/// Normalises a calendar user address for lookup.
///
/// Strips one leading `mailto:` (any case; RFC 6047 §2.2 uses `mailto:`
/// CAL-ADDRESS values), lower-cases the domain (RFC 5321 §2.4: domains are
/// case-insensitive) and, per `case`, the local part. Rejects empty parts,
/// a missing or second `@`, whitespace and control characters (so CR/LF
/// can never reach a log line or a query), and anything longer than
/// `max_bytes`.
pub fn normalize_address(
    input: &str,
    case: LocalPartCase,
    max_bytes: usize,
) -> Result<String, AddressError> {
    const SCHEME: &str = "mailto:";
    let skipped = match input.get(..SCHEME.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(SCHEME) => SCHEME.len(),
        _ => 0,
    };
    let rest = input.get(skipped..).unwrap_or_default();
    if rest.is_empty() {
        return Err(AddressError::Empty);
    }
    if rest.len() > max_bytes {
        return Err(AddressError::TooLong {
            len: rest.len(),
            max: max_bytes,
        });
    }
    if let Some((offset, _)) = rest
        .char_indices()
        .find(|(_, c)| c.is_whitespace() || c.is_control())
    {
        return Err(AddressError::ForbiddenCharacter {
            offset: skipped + offset,
        });
    }
    let Some((local, domain)) = rest.split_once('@') else {
        return Err(AddressError::MissingAt);
    };
    if let Some(second) = domain.find('@') {
        return Err(AddressError::SecondAt {
            offset: skipped + local.len() + 1 + second,
        });
    }
    if local.is_empty() {
        return Err(AddressError::EmptyLocalPart);
    }
    if domain.is_empty() {
        return Err(AddressError::EmptyDomain);
    }
    let local = match case {
        LocalPartCase::Insensitive => local.to_lowercase(),
        LocalPartCase::Sensitive => local.to_owned(),
    };
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> Result<String, AddressError> {
        normalize_address(s, LocalPartCase::Insensitive, 320)
    }

    #[test]
    fn strips_mailto_and_folds_case() {
        assert_eq!(
            norm("MAILTO:Alice@Example.COM").unwrap(),
            "alice@example.com"
        );
        assert_eq!(norm("mailto:bob@example.com").unwrap(), "bob@example.com");
        assert_eq!(
            normalize_address("Alice@Example.COM", LocalPartCase::Sensitive, 320).unwrap(),
            "Alice@example.com"
        );
    }

    #[test]
    fn rejects_invalid_addresses() {
        assert_eq!(norm("mailto:"), Err(AddressError::Empty));
        assert_eq!(norm("alice"), Err(AddressError::MissingAt));
        assert_eq!(norm("@example.com"), Err(AddressError::EmptyLocalPart));
        assert_eq!(norm("alice@"), Err(AddressError::EmptyDomain));
        assert_eq!(norm("a@b@c"), Err(AddressError::SecondAt { offset: 3 }));
        assert_eq!(
            norm("alice@example.com\r\nBcc: x"),
            Err(AddressError::ForbiddenCharacter { offset: 17 })
        );
        assert_eq!(
            norm("mailto:al ice@x"),
            Err(AddressError::ForbiddenCharacter { offset: 9 })
        );
        assert_eq!(
            normalize_address("abcdef@x", LocalPartCase::Insensitive, 4),
            Err(AddressError::TooLong { len: 8, max: 4 })
        );
    }
}
