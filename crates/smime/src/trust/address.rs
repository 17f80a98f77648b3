//! Certificate email addresses: the one plain addr-spec rule for what a certificate may
//! name (no display names, comments or address literals), its normalisation, and reading them
//! from the subjectAltName and the subject.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

/// An email address of a certificate (rfc822Name SAN or subject emailAddress), RFC 8550 §3:
/// always a plain RFC 5321 §4.1.2 `Mailbox`, exactly as the certificate wrote it.
///
/// Certificate addresses are never rewritten (trimmed, unquoted, cut at a NUL, case-folded in
/// the local part): OpenSSL checks a CA's name constraints (RFC 5280 §4.2.1.10) on the bytes
/// of the certificate, so any rewrite after that check can turn an address the constraint did
/// not cover (`alice@example.com ` under `excluded;email:example.com`) into one it forbids.
/// Only [`EmailAddress::parse`] builds one, and it refuses everything that is not:
///
/// - ASCII (an rfc822Name is an IA5String; internationalised mailboxes are the RFC 8398
///   `SmtpUTF8Mailbox` otherName, which is not read as an identity);
/// - a `Dot-string` local part of `atext` (no quoted string: `"a"@x` and `a@x` are one
///   mailbox written two ways, and a quoted string can hide spaces and `@`), 1 to 64 octets;
/// - one `@`;
/// - a `Domain` of LDH labels (`Let-dig [Ldh-str]`, 1 to 63 octets each, no empty label, no
///   trailing dot), 1 to 253 octets: no address literal (`[192.0.2.1]`);
/// - at most 254 octets in all (RFC 5321 §4.5.3.1.3 path limit less the angle brackets).
///
/// So no white space, control character, comment, display name or angle bracket can appear.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress {
    display: String,
    normalized: String,
}

/// A certificate address that is not a plain addr-spec (see [`EmailAddress`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a plain addr-spec: {text:?}")]
pub struct MalformedAddress {
    /// The address as found (shown escaped by `Debug`).
    pub text: String,
}

/// RFC 5322 §3.2.3 `atext` (RFC 5321's `Atom` is `1*atext`).
fn is_atext(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&byte)
}

/// RFC 5321 §4.1.2 `Dot-string`.
fn is_dot_string(local: &[u8]) -> bool {
    (1..=64).contains(&local.len())
        && local
            .split(|&byte| byte == b'.')
            .all(|atom| !atom.is_empty() && atom.iter().all(|&byte| is_atext(byte)))
}

/// RFC 5321 §4.1.2 `Domain` (no address literal), RFC 1035 label lengths.
fn is_domain(domain: &[u8]) -> bool {
    (1..=253).contains(&domain.len())
        && domain.split(|&byte| byte == b'.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .iter()
                    .all(|&byte| byte.is_ascii_alphanumeric() || byte == b'-')
                && label.first().is_some_and(u8::is_ascii_alphanumeric)
                && label.last().is_some_and(u8::is_ascii_alphanumeric)
        })
}

impl EmailAddress {
    /// An address as found in a certificate, if it is a plain addr-spec (see the type docs);
    /// never trimmed or otherwise rewritten.
    pub fn parse(text: &str) -> Result<Self, MalformedAddress> {
        let malformed = || MalformedAddress {
            text: text.to_owned(),
        };
        let bytes = text.as_bytes();
        if bytes.len() > 254 {
            return Err(malformed());
        }
        let mut parts = bytes.split(|&byte| byte == b'@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed());
        };
        if !is_dot_string(local) || !is_domain(domain) {
            return Err(malformed());
        }
        // Both sides are ASCII now, so the split at the one `@` is a char boundary.
        let (local, domain) = text.split_once('@').ok_or_else(malformed)?;
        Ok(EmailAddress {
            display: text.to_owned(),
            normalized: format!("{local}@{}", domain.to_ascii_lowercase()),
        })
    }

    /// As written in the certificate.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// For comparison: the domain lowercased (RFC 5321 §2.4: domains are case-insensitive);
    /// the local part is kept as written (it is case-sensitive).
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// Whether `address`, a bare addr-spec that [`EmailAddress::parse`] accepts, names the
    /// same mailbox (compares normalized forms). Anything else never matches.
    pub fn matches(&self, address: &str) -> bool {
        EmailAddress::parse(address).is_ok_and(|other| other.normalized == self.normalized)
    }
}

/// The comparison form of a header address (a From or To address as mail-parser returns it):
/// the [`EmailAddress::normalized`] form when it is a plain addr-spec, else the text unchanged
/// (never trimmed or otherwise rewritten, so a malformed address can never equal a
/// certificate's, which are always plain). For warnings and header-protection reports only:
/// identities come from certificates through [`EmailAddress::parse`].
pub fn normalize_email(address: &str) -> String {
    match EmailAddress::parse(address) {
        Ok(parsed) => parsed.normalized,
        Err(_) => address.to_owned(),
    }
}

/// OID of the PKCS #9 emailAddress attribute (RFC 5280 §4.1.2.6, legacy).
const EMAIL_ADDRESS_ATTRIBUTE: &str = "1.2.840.113549.1.9.1";

/// Every rfc822Name of the subjectAltName and every emailAddress of the subject, deduplicated;
/// `Err` when one of them is not a plain addr-spec, or when the names cannot be read (a
/// subjectAltName x509-parser cannot decode, a non-IA5String emailAddress): OpenSSL's name
/// constraint check saw names that would then not be the ones reported, so none is used.
pub(crate) fn emails_of(
    cert: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<Vec<EmailAddress>, MalformedAddress> {
    use x509_parser::der_parser::asn1_rs::Tag;
    use x509_parser::extensions::GeneralName;
    let unreadable = |what: &str| MalformedAddress {
        text: what.to_owned(),
    };
    let mut emails: Vec<EmailAddress> = Vec::new();
    let san = cert
        .subject_alternative_name()
        .map_err(|_| unreadable("<unreadable subjectAltName>"))?;
    for name in san.iter().flat_map(|san| &san.value.general_names) {
        match name {
            GeneralName::RFC822Name(address) => emails.push(EmailAddress::parse(address)?),
            // An entry x509-parser could not decode; [1] is rfc822Name.
            GeneralName::Invalid(tag, _) if tag.0 == 1 => {
                return Err(unreadable("<undecodable rfc822Name>"));
            }
            _ => {}
        }
    }
    for rdn in cert.subject().iter() {
        for attribute in rdn.iter() {
            if attribute.attr_type().to_id_string() != EMAIL_ADDRESS_ATTRIBUTE {
                continue;
            }
            // RFC 5280 Appendix A: emailAddress is an IA5String (OpenSSL's name constraint
            // check refuses other types only when there are constraints).
            if attribute.attr_value().tag() != Tag::Ia5String {
                return Err(unreadable("<emailAddress not an IA5String>"));
            }
            let address = std::str::from_utf8(attribute.attr_value().data)
                .map_err(|_| unreadable("<emailAddress not ASCII>"))?;
            emails.push(EmailAddress::parse(address)?);
        }
    }
    let mut seen = std::collections::HashSet::new();
    emails.retain(|email| seen.insert(email.normalized.clone()));
    Ok(emails)
}
