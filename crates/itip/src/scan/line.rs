//! The content-line grammar (RFC 5545 §3.1): one unfolded line into a property name,
//! parameters (RFC 6868 caret decoding) and value, strictly; the one copy of the grammar, used
//! by the scanner and by the signing side's check (`check_content_line`).

use std::borrow::Cow;

use super::{Property, name};
use crate::error::LineDefect;

pub(super) fn written_name(text: &str) -> String {
    let end = text
        .bytes()
        .position(|b| b == b';' || b == b':')
        .unwrap_or(text.len())
        .min(64);
    let mut end = end;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default().to_owned()
}

/// Whether `name` is a valid property name: letters, digits and `-` (RFC 5545 §3.1
/// iana-token, x-name), plus `_` in an X- name (the [`Deviation::UnderscoreInXName`]
/// tolerance; the caller reports it).
fn property_name_ok(name: &str) -> bool {
    let x_name = name.len() > 2 && name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("X-"));
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || (x_name && b == b'_'))
}

/// Checks one unfolded content line against the grammar of RFC 5545 section 3.1, the one
/// this crate parses with (the signing side checks what it signs with it too); the error
/// names the rule broken. `_` is let through in X- names only (the interoperability
/// profile's `UnderscoreInXName` deviation: the caller decides whether to tolerate it).
pub fn check_content_line(line: &str) -> Result<(), LineDefect> {
    content_line(line, 0).map(|_| ())
}

/// Parses `name *(";" param) ":" value` (RFC 5545 section 3.1); the error names the
/// rule broken.
pub(super) fn content_line(text: &str, offset: usize) -> Result<Property<'_>, LineDefect> {
    use LineDefect::{NoValue, ParameterName, PropertyName, Quote, RepeatedParameter};
    let name_end = text
        .bytes()
        .position(|b| b == b';' || b == b':')
        .ok_or(NoValue)?;
    let property_name = text.get(..name_end).ok_or(NoValue)?;
    if !property_name_ok(property_name) {
        return Err(PropertyName);
    }
    let mut params = Vec::new();
    let mut groups = 0usize;
    let mut rest = text.get(name_end..).ok_or(NoValue)?;
    if rest.starts_with(';') {
        // Room for the parameters of a typical ATTENDEE line without regrowing.
        params.reserve(6);
    }
    while let Some(after) = rest.strip_prefix(';') {
        let eq = after.find('=').ok_or(ParameterName)?;
        let pname = after.get(..eq).ok_or(ParameterName)?;
        if pname.is_empty()
            || !pname
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(ParameterName);
        }
        let pname = name(pname);
        if params.last().is_some_and(|(last, _)| *last == pname) {
            // The same parameter twice in a row (`B=x;B=y`); see below.
            return Err(RepeatedParameter);
        }
        let mut cursor = after.get(eq + 1..).ok_or(ParameterName)?;
        loop {
            let value = if let Some(quoted) = cursor.strip_prefix('"') {
                let close = quoted.find('"').ok_or(Quote)?;
                cursor = quoted.get(close + 1..).ok_or(Quote)?;
                decode_caret(quoted.get(..close).ok_or(Quote)?)
            } else {
                let end = cursor
                    .bytes()
                    .position(|b| matches!(b, b',' | b';' | b':'))
                    .ok_or(NoValue)?;
                let raw = cursor.get(..end).ok_or(NoValue)?;
                if raw.contains('"') {
                    return Err(Quote);
                }
                cursor = cursor.get(end..).ok_or(NoValue)?;
                decode_caret(raw)
            };
            params.push((pname.clone(), value));
            match cursor.strip_prefix(',') {
                Some(next) => cursor = next,
                None => break,
            }
        }
        rest = cursor;
        groups += 1;
    }
    // The same parameter twice (`PARTSTAT=ACCEPTED;PARTSTAT=DECLINED`): readers differ on
    // which one counts (this crate's model takes the first, others the last), so it is
    // refused as malformed. Sorting the names keeps a line with thousands of parameters
    // linear-logarithmic; a line with one parameter costs nothing.
    if groups > 1 {
        let mut names: Vec<&str> = Vec::with_capacity(groups);
        let mut previous: Option<&str> = None;
        for (name, _) in &params {
            // Consecutive entries of one group share the name; count each group once
            // (two groups in a row with one name were refused above).
            if previous != Some(name.as_ref()) {
                names.push(name.as_ref());
            }
            previous = Some(name.as_ref());
        }
        names.sort_unstable();
        if names.windows(2).any(|w| w.first() == w.get(1)) {
            return Err(RepeatedParameter);
        }
    }
    let value = rest.strip_prefix(':').ok_or(NoValue)?;
    Ok(Property {
        name: name(property_name),
        params,
        value: Cow::Borrowed(value),
        offset,
    })
}

/// RFC 6868 section 3: `^n` is a newline, `^'` a double quote, `^^` a caret; a caret
/// before anything else is kept as it is.
fn decode_caret(raw: &str) -> Cow<'_, str> {
    if !raw.as_bytes().contains(&b'^') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '^' {
            match chars.peek() {
                Some('n') => {
                    out.push('\n');
                    chars.next();
                }
                Some('\'') => {
                    out.push('"');
                    chars.next();
                }
                Some('^') => {
                    out.push('^');
                    chars.next();
                }
                _ => out.push('^'),
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}
