//! Calendar user addresses (RFC 5545 section 3.3.3 CAL-ADDRESS) and how they are compared
//! with signer e-mail addresses.

use serde::Serialize;

/// A CAL-ADDRESS as found in the calendar, with the addr-spec it names if it is a plain
/// `mailto:` URI (RFC 6047 section 3: iMIP calendar users are addressed by `mailto:`).
///
/// Comparison (see [`CalAddress::matches`]) uses only the addr-spec, never a CN or other
/// display name: the `mailto:` scheme and the domain are compared case-insensitively
/// (ASCII only, so that no Unicode case folding can make two different addresses equal),
/// the local part case-insensitively by default (the iMIP draft's example 4.4 writes
/// addresses in upper case) or exactly with `strict_local_part`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct CalAddress {
    /// The value exactly as found (after unfolding and RFC 6868 decoding).
    pub text: String,
    /// `local@domain` as written after `mailto:`; `None` when the value is not a plain
    /// `mailto:` address (another scheme, `?` header fields, `%` escapes, several
    /// addresses, or no `@`), such an address never matches a signer.
    pub addr_spec: Option<String>,
    /// The comparison form: `addr_spec` in ASCII lower case.
    pub normalized: Option<String>,
}

impl CalAddress {
    /// Reads a CAL-ADDRESS value.
    pub fn parse(text: &str) -> CalAddress {
        let addr_spec = mailto_addr_spec(text).map(str::to_owned);
        let normalized = addr_spec.as_deref().map(str::to_ascii_lowercase);
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
        match &self.addr_spec {
            Some(mine) => addr_specs_equal(mine, signer, strict_local_part),
            None => false,
        }
    }

    /// The key under which [`CalAddress::same_user`] compares: the addr-spec with the
    /// domain (and, unless `strict_local_part`, the local part) in ASCII lower case.
    pub fn comparison_key(&self, strict_local_part: bool) -> Option<String> {
        let spec = self.addr_spec.as_deref()?;
        if !strict_local_part {
            return self.normalized.clone();
        }
        let (local, domain) = spec.split_once('@')?;
        Some(format!("{local}@{}", domain.to_ascii_lowercase()))
    }

    /// Whether two calendar addresses name the same calendar user (same comparison rules).
    pub fn same_user(&self, other: &CalAddress, strict_local_part: bool) -> bool {
        match (&self.addr_spec, &other.addr_spec) {
            (Some(a), Some(b)) => addr_specs_equal(a, b, strict_local_part),
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

/// True for a plain `mailto:` address, without allocating.
pub(crate) fn is_plain_mailto(text: &str) -> bool {
    mailto_addr_spec(text).is_some()
}

fn mailto_addr_spec(text: &str) -> Option<&str> {
    let scheme = text.get(..7)?;
    if !scheme.eq_ignore_ascii_case("mailto:") {
        return None;
    }
    let addr = text.get(7..)?;
    plain_addr_spec(addr).then_some(addr)
}

/// ASCII bytes an addr-spec may not contain: controls, space and the characters that
/// would let one string name several or differently-decoded mailboxes.
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

/// A deliberately narrow addr-spec: exactly one `@`, non-empty sides, and none of the
/// characters that would let one string name several or differently-decoded mailboxes.
/// One pass over the bytes with a bit set; non-ASCII text takes the char-wise path.
fn plain_addr_spec(addr: &str) -> bool {
    let mut at = None;
    for (i, &b) in addr.as_bytes().iter().enumerate() {
        if b >= 0x80 {
            return plain_addr_spec_unicode(addr);
        }
        if b == b'@' {
            if at.is_some() {
                return false;
            }
            at = Some(i);
        } else if FORBIDDEN_ASCII & (1 << b) != 0 {
            return false;
        }
    }
    matches!(at, Some(i) if i > 0 && i + 1 < addr.len())
}

fn plain_addr_spec_unicode(addr: &str) -> bool {
    let Some((local, domain)) = addr.split_once('@') else {
        return false;
    };
    let forbidden = |c: char| {
        c.is_whitespace()
            || c.is_control()
            || u8::try_from(c).is_ok_and(|b| b < 0x80 && FORBIDDEN_ASCII & (1 << b) != 0)
    };
    !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !addr.chars().any(forbidden)
}

fn addr_specs_equal(a: &str, b: &str, strict_local_part: bool) -> bool {
    if !plain_addr_spec(a) || !plain_addr_spec(b) {
        return false;
    }
    let (Some((la, da)), Some((lb, db))) = (a.split_once('@'), b.split_once('@')) else {
        return false;
    };
    let local_equal = if strict_local_part {
        la == lb
    } else {
        la.eq_ignore_ascii_case(lb)
    };
    local_equal && da.eq_ignore_ascii_case(db)
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
    fn byte_wise_check_agrees_with_the_char_wise_rule() {
        for b in 0u8..0x80 {
            let c = char::from(b);
            let addr = format!("a{c}b@example.com");
            let by_char =
                c == '@' || c.is_whitespace() || c.is_control() || ",?%<>\"();:\\[]".contains(c);
            assert_eq!(plain_addr_spec(&addr), !by_char, "{b:#x}");
            assert_eq!(plain_addr_spec_unicode(&addr), !by_char, "{b:#x}");
        }
        assert!(plain_addr_spec("j\u{fc}rgen@example.com"));
        assert!(
            !plain_addr_spec("j\u{a0}rgen@example.com"),
            "NO-BREAK SPACE"
        );
        assert!(!plain_addr_spec("a@b@c") && !plain_addr_spec("@b") && !plain_addr_spec("a@"));
    }

    #[test]
    fn scheme_detection() {
        assert!(has_uri_scheme("mailto:a@b"));
        assert!(has_uri_scheme("urn:uuid:x"));
        assert!(!has_uri_scheme("foo1@example.com"));
        assert!(!has_uri_scheme("1x:y"));
    }
}
