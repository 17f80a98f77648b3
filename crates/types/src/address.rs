//! Calendar user addresses: the one addr-spec rule and the one normal form.
//!
//! Every layer that compares addresses (the signer-to-ORGANIZER/ATTENDEE correlation, the
//! delegation grants, the event state's organizer pin) reads an address with
//! [`AddrSpec::parse`] and compares [`AddrSpec::key`]s under one [`LocalPartCase`]. Case
//! folding is ASCII only: Unicode folding would make distinct mailboxes equal (U+212A
//! KELVIN SIGN lower-cases to `k`, so `\u{212A}im@` would pin as `kim@`).

use std::fmt;

use serde::Serialize;
use thiserror::Error;

/// Why an address was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Nothing left after removing `mailto:`.
    #[error("address is empty")]
    Empty,
    /// Longer than the caller's limit.
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
    /// Whitespace, a control character (CR, LF, NUL, ...) or one of the characters that
    /// would let one string name several or differently decoded mailboxes
    /// (`, ? % < > " ( ) ; : \ [ ]`).
    #[error("address has a forbidden character at byte {offset}")]
    ForbiddenCharacter {
        /// Byte offset in the input.
        offset: usize,
    },
}

/// How the local part (before `@`) is compared. Set once per deployment and used by the
/// correlation and the store alike.
///
/// RFC 5321 §2.4 lets a server treat local parts as case-sensitive, but practically every
/// mail system folds case, and a case-sensitive comparison would let `Alice@example.com`
/// miss a revocation recorded for `alice@example.com`. The default therefore folds the
/// local part (ASCII only). A store must keep one choice for its whole life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum LocalPartCase {
    /// Fold ASCII case in the local part (default).
    #[default]
    Insensitive,
    /// Keep the local part as written (`strict_local_part`).
    Sensitive,
}

impl LocalPartCase {
    /// `Sensitive` when `strict_local_part`.
    pub const fn from_strict(strict_local_part: bool) -> Self {
        if strict_local_part {
            LocalPartCase::Sensitive
        } else {
            LocalPartCase::Insensitive
        }
    }
}

/// ASCII bytes an addr-spec may not contain: controls, space and the characters that would
/// let one string name several or differently decoded mailboxes.
const FORBIDDEN_ASCII: u128 = {
    let mut set = 0u128;
    let mut b = 0u8;
    while b < 0x80 {
        if b <= b' '
            || b == 0x7f
            || matches!(
                b,
                b',' | b'?'
                    | b'%'
                    | b'<'
                    | b'>'
                    | b'"'
                    | b'('
                    | b')'
                    | b';'
                    | b':'
                    | b'\\'
                    | b'['
                    | b']'
            )
        {
            set |= 1 << b;
        }
        b += 1;
    }
    set
};

fn forbidden(c: char) -> bool {
    match u8::try_from(c) {
        Ok(b) if b < 0x80 => FORBIDDEN_ASCII & (1 << b) != 0,
        _ => c.is_whitespace() || c.is_control(),
    }
}

/// A deliberately narrow addr-spec (`local@domain`): exactly one `@`, non-empty sides, no
/// whitespace, no control character and none of `, ? % < > " ( ) ; : \ [ ]`. Quoted local
/// parts, comments and address lists are refused rather than interpreted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AddrSpec(String);

impl AddrSpec {
    /// Reads a bare addr-spec. `offset` is added to the byte offsets of errors.
    fn check(text: &str, offset: usize) -> Result<(), AddressError> {
        if text.is_empty() {
            return Err(AddressError::Empty);
        }
        if text.is_ascii() {
            if let Some(at) = text.bytes().position(|b| FORBIDDEN_ASCII & (1 << b) != 0) {
                return Err(AddressError::ForbiddenCharacter {
                    offset: offset + at,
                });
            }
        } else if let Some((at, _)) = text.char_indices().find(|&(_, c)| forbidden(c)) {
            return Err(AddressError::ForbiddenCharacter {
                offset: offset + at,
            });
        }
        let Some((local, domain)) = text.split_once('@') else {
            return Err(AddressError::MissingAt);
        };
        if let Some(second) = domain.find('@') {
            return Err(AddressError::SecondAt {
                offset: offset + local.len() + 1 + second,
            });
        }
        if local.is_empty() {
            return Err(AddressError::EmptyLocalPart);
        }
        if domain.is_empty() {
            return Err(AddressError::EmptyDomain);
        }
        Ok(())
    }

    /// A bare addr-spec (`alice@example.com`), as a certificate or an envelope names it.
    pub fn parse(text: &str) -> Result<AddrSpec, AddressError> {
        AddrSpec::check(text, 0)?;
        Ok(AddrSpec(text.to_owned()))
    }

    /// A CAL-ADDRESS that is a plain `mailto:` URI (scheme in any case, RFC 6047 §3);
    /// `None` for another scheme or anything that is not one plain addr-spec.
    pub fn from_mailto(text: &str) -> Option<AddrSpec> {
        let scheme = text.get(..7)?;
        if !scheme.eq_ignore_ascii_case("mailto:") {
            return None;
        }
        let addr = text.get(7..)?;
        AddrSpec::check(addr, 7).ok()?;
        Some(AddrSpec(addr.to_owned()))
    }

    /// The addr-spec as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The local part (before `@`).
    pub fn local_part(&self) -> &str {
        self.0.split_once('@').map_or("", |(local, _)| local)
    }

    /// The domain (after `@`).
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, domain)| domain)
    }

    /// The comparison key: the domain in ASCII lower case (RFC 5321 §2.4: domains are
    /// case-insensitive), the local part in ASCII lower case unless `case` is
    /// [`LocalPartCase::Sensitive`]. Non-ASCII characters are kept as they are.
    pub fn key(&self, case: LocalPartCase) -> String {
        // Built in one allocation without `format!`: the key is made for every address of
        // every message (correlation, event state), and the formatting machinery cost more
        // than the copy.
        let local = self.local_part();
        let domain = self.domain();
        let mut key = String::with_capacity(local.len() + 1 + domain.len());
        key.push_str(local);
        if case == LocalPartCase::Insensitive {
            key.make_ascii_lowercase();
        }
        key.push('@');
        let domain_start = key.len();
        key.push_str(domain);
        if let Some(domain) = key.get_mut(domain_start..) {
            domain.make_ascii_lowercase();
        }
        key
    }

    /// Whether two addr-specs name the same calendar user under `case`.
    pub fn same(&self, other: &AddrSpec, case: LocalPartCase) -> bool {
        let local_equal = match case {
            LocalPartCase::Insensitive => {
                self.local_part().eq_ignore_ascii_case(other.local_part())
            }
            LocalPartCase::Sensitive => self.local_part() == other.local_part(),
        };
        local_equal && self.domain().eq_ignore_ascii_case(other.domain())
    }
}

impl std::ops::Deref for AddrSpec {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<AddrSpec> for String {
    fn from(spec: AddrSpec) -> String {
        spec.0
    }
}

impl fmt::Display for AddrSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Normalises an address for lookup and storage: strips one leading `mailto:` (any case;
/// RFC 6047 §2.2 uses `mailto:` CAL-ADDRESS values), checks the length against
/// `max_bytes`, reads the rest with the [`AddrSpec`] rule and returns its
/// [`key`](AddrSpec::key) under `case`.
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
    AddrSpec::check(rest, skipped)?;
    Ok(AddrSpec(rest.to_owned()).key(case))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> Result<String, AddressError> {
        normalize_address(s, LocalPartCase::Insensitive, 320)
    }

    #[test]
    fn strips_mailto_and_folds_ascii_case() {
        assert_eq!(
            norm("MAILTO:Alice@Example.COM").unwrap(),
            "alice@example.com"
        );
        assert_eq!(
            normalize_address("Alice@Example.COM", LocalPartCase::Sensitive, 320).unwrap(),
            "Alice@example.com"
        );
    }

    /// Unicode case folding would merge distinct mailboxes (U+212A KELVIN SIGN folds to
    /// `k`; `İ` folds to `i̇`): only ASCII is folded, everywhere.
    #[test]
    fn unicode_case_is_never_folded() {
        assert_eq!(
            norm("\u{212A}im@example.com").unwrap(),
            "\u{212A}im@example.com"
        );
        assert_ne!(norm("\u{212A}im@example.com"), norm("kim@example.com"));
        assert_eq!(
            norm("J\u{dc}rgen@B\u{dc}RO.de").unwrap(),
            "j\u{dc}rgen@b\u{dc}ro.de"
        );
        let a = AddrSpec::from_mailto("mailto:\u{212A}im@example.com").unwrap();
        let b = AddrSpec::parse("kim@example.com").unwrap();
        assert!(!a.same(&b, LocalPartCase::Insensitive));
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
            norm("mailto:a@example.com,b@example.com"),
            Err(AddressError::ForbiddenCharacter { offset: 20 })
        );
        assert_eq!(
            normalize_address("abcdef@x", LocalPartCase::Insensitive, 4),
            Err(AddressError::TooLong { len: 8, max: 4 })
        );
    }

    #[test]
    fn mailto_parse_and_key_agree_with_normalize() {
        for text in ["mailto:Alice@Example.com", "MAILTO:bob@x.org"] {
            let spec = AddrSpec::from_mailto(text).unwrap();
            for case in [LocalPartCase::Insensitive, LocalPartCase::Sensitive] {
                assert_eq!(spec.key(case), normalize_address(text, case, 320).unwrap());
            }
        }
        for text in [
            "foo1@example.com",
            "urn:uuid:foo1@example.com",
            "mailto:foo1@example.com?subject=x",
            "mailto:foo1%40evil@example.com",
            "mailto:\"a b\"@example.com",
            "mailto:j\u{a0}rgen@example.com",
        ] {
            assert!(AddrSpec::from_mailto(text).is_none(), "{text}");
        }
    }

    #[test]
    fn byte_wise_check_agrees_with_the_char_wise_rule() {
        for b in 0u8..0x80 {
            let c = char::from(b);
            let ascii = format!("a{c}b@example.com");
            let unicode = format!("a{c}b\u{fc}@example.com");
            let by_char =
                c == '@' || c.is_whitespace() || c.is_control() || ",?%<>\"();:\\[]".contains(c);
            assert_eq!(AddrSpec::parse(&ascii).is_ok(), !by_char, "{b:#x}");
            assert_eq!(AddrSpec::parse(&unicode).is_ok(), !by_char, "{b:#x}");
        }
    }
}
