//! Calendar user addresses (RFC 5545 section 3.3.3 CAL-ADDRESS) and how they are compared
//! with signer e-mail addresses.

use imipsec_types::{AddrSpec, LocalPartCase};
use serde::Serialize;

/// A CAL-ADDRESS as found in the calendar, with the addr-spec it names if it is a plain
/// `mailto:` URI (RFC 6047 section 3: iMIP calendar users are addressed by `mailto:`).
///
/// The addr-spec rule and the comparison are `imipsec-types`' [`AddrSpec`] (the same that
/// the policy store normalises with): only the addr-spec is compared, never a CN or other
/// display name; the `mailto:` scheme and the domain case-insensitively (ASCII only, so
/// that no Unicode case folding can make two different addresses equal), the local part
/// case-insensitively by default (the iMIP draft's example 4.4 writes addresses in upper
/// case) or exactly with `strict_local_part`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct CalAddress {
    /// The value exactly as found (after unfolding and RFC 6868 decoding).
    pub text: String,
    /// `local@domain` as written after `mailto:`; `None` when the value is not a plain
    /// `mailto:` address (another scheme, `?` header fields, `%` escapes, several
    /// addresses, or no `@`), such an address never matches a signer.
    pub addr_spec: Option<AddrSpec>,
    /// The comparison form: `addr_spec` in ASCII lower case.
    pub normalized: Option<String>,
}

impl CalAddress {
    /// Reads a CAL-ADDRESS value.
    pub fn parse(text: &str) -> CalAddress {
        let addr_spec = AddrSpec::from_mailto(text);
        let normalized = addr_spec
            .as_ref()
            .map(|spec| spec.key(LocalPartCase::Insensitive));
        CalAddress {
            text: text.to_owned(),
            addr_spec,
            normalized,
        }
    }

    /// True when the value is a plain `mailto:` address.
    pub fn is_mailto(&self) -> bool {
        self.addr_spec.is_some()
    }

    /// Whether this address names the signer e-mail address `signer` (a bare addr-spec).
    pub fn matches(&self, signer: &str, strict_local_part: bool) -> bool {
        match (&self.addr_spec, AddrSpec::parse(signer)) {
            (Some(mine), Ok(signer)) => {
                mine.same(&signer, LocalPartCase::from_strict(strict_local_part))
            }
            _ => false,
        }
    }

    /// The key under which [`CalAddress::same_user`] compares: [`AddrSpec::key`] under
    /// the `strict_local_part` rule.
    pub fn comparison_key(&self, strict_local_part: bool) -> Option<String> {
        let case = LocalPartCase::from_strict(strict_local_part);
        self.addr_spec.as_ref().map(|spec| spec.key(case))
    }

    /// Whether two calendar addresses name the same calendar user (same comparison rules).
    pub fn same_user(&self, other: &CalAddress, strict_local_part: bool) -> bool {
        match (&self.addr_spec, &other.addr_spec) {
            (Some(a), Some(b)) => a.same(b, LocalPartCase::from_strict(strict_local_part)),
            _ => false,
        }
    }
}

/// The value as found in the calendar (`mailto:olivia@example.com`).
impl std::fmt::Display for CalAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Does URI scheme syntax appear (RFC 3986 section 3.1: ALPHA *( ALPHA / DIGIT / "+" /
/// "-" / "." ) ":")?
pub(crate) fn has_uri_scheme(text: &str) -> bool {
    let Some(colon) = text.find(':') else {
        return false;
    };
    let scheme = text.get(..colon).unwrap_or_default();
    let mut bytes = scheme.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// True for a plain `mailto:` address.
pub(crate) fn is_plain_mailto(text: &str) -> bool {
    AddrSpec::from_mailto(text).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_and_domain_case_insensitive_local_part_by_option() {
        let a = CalAddress::parse("MAILTO:FOO1@EXAMPLE.COM");
        assert!(a.matches("foo1@example.com", false));
        assert!(!a.matches("foo1@example.com", true));
        assert!(a.matches("FOO1@example.com", true));
        assert_eq!(a.normalized.as_deref(), Some("foo1@example.com"));
    }

    #[test]
    fn non_mailto_and_tricky_values_never_match() {
        for text in [
            "foo1@example.com",
            "urn:uuid:foo1@example.com",
            "mailto:foo1@example.com?subject=x",
            "mailto:foo1%40evil@example.com",
            "mailto:a@example.com,b@example.com",
            "mailto:\"a b\"@example.com",
            "mailto:@example.com",
            "mailto:a@",
            "mailto:a@b@c",
        ] {
            let a = CalAddress::parse(text);
            assert!(!a.is_mailto(), "{text}");
            assert!(!a.matches("foo1@example.com", false), "{text}");
        }
    }

    #[test]
    fn unicode_case_folding_is_not_applied() {
        // U+212A KELVIN SIGN lower-cases to "k" under Unicode rules; it must not match.
        let a = CalAddress::parse("mailto:\u{212A}im@example.com");
        assert!(!a.matches("kim@example.com", false));
    }

    #[test]
    fn scheme_detection() {
        assert!(has_uri_scheme("mailto:a@b"));
        assert!(has_uri_scheme("urn:uuid:x"));
        assert!(!has_uri_scheme("foo1@example.com"));
        assert!(!has_uri_scheme("1x:y"));
    }
}
