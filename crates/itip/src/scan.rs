//! The strict line and structure scanner (RFC 5545 section 3.1): byte-level unfolding,
//! content-line syntax, RFC 6868 parameter decoding and the BEGIN/END tree.
//!
//! Every step is linear in the input; the tree is built with an explicit stack and its
//! depth is bounded by [`Limits::nesting`], so neither building nor dropping it recurses
//! deeper than that bound.

use crate::Limits;
use crate::error::{Diagnostic, ItipError, LimitExceeded, LimitKind, Malformed, Warning};

/// An upper-cased property or parameter name; the common ones are borrowed from a static
/// list so that a 200-attendee invitation does not allocate a name per line.
pub(crate) type Name = std::borrow::Cow<'static, str>;

const KNOWN_NAMES: &[&str] = &[
    "BEGIN",
    "END",
    "ATTENDEE",
    "ORGANIZER",
    "DTSTAMP",
    "DTSTART",
    "DTEND",
    "DUE",
    "UID",
    "SEQUENCE",
    "SUMMARY",
    "DESCRIPTION",
    "LOCATION",
    "STATUS",
    "TRANSP",
    "METHOD",
    "PRODID",
    "VERSION",
    "CALSCALE",
    "RRULE",
    "RDATE",
    "EXDATE",
    "TZID",
    "TZOFFSETFROM",
    "TZOFFSETTO",
    "TZNAME",
    "RECURRENCE-ID",
    "CLASS",
    "CREATED",
    "LAST-MODIFIED",
    "PRIORITY",
    "URL",
    "COMMENT",
    "ATTACH",
    "CATEGORIES",
    "DURATION",
    "REQUEST-STATUS",
    "CN",
    "PARTSTAT",
    "ROLE",
    "RSVP",
    "CUTYPE",
    "SENT-BY",
    "DELEGATED-TO",
    "DELEGATED-FROM",
    "VALUE",
    "RANGE",
    "X-NUM-GUESTS",
    "LANGUAGE",
    "EMAIL",
    "SCHEDULE-STATUS",
];

fn name(raw: &str) -> Name {
    match KNOWN_NAMES.iter().find(|k| k.eq_ignore_ascii_case(raw)) {
        Some(known) => Name::Borrowed(known),
        None => Name::Owned(raw.to_ascii_uppercase()),
    }
}

/// A property parameter; the name is upper-cased, values are unquoted and RFC 6868
/// decoded.
#[derive(Debug, Clone)]
pub(crate) struct Param {
    pub name: Name,
    pub values: Vec<String>,
}

/// A content line other than BEGIN/END.
#[derive(Debug, Clone)]
pub(crate) struct Property {
    pub name: Name,
    pub params: Vec<Param>,
    pub value: String,
    pub offset: usize,
}

impl Property {
    /// The first value of the named parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.values.first())
            .map(String::as_str)
    }

    /// All values of the named parameter (all occurrences).
    pub fn param_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.params
            .iter()
            .filter(move |p| p.name == name)
            .flat_map(|p| p.values.iter().map(String::as_str))
    }
}

/// A component and what it contains.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub name: String,
    pub offset: usize,
    pub properties: Vec<Property>,
    pub children: Vec<Node>,
}

/// Dropping a tree recursively could exhaust the stack for a deep (if limit-raised) nest;
/// children are moved out onto a heap stack instead.
impl Drop for Node {
    fn drop(&mut self) {
        let mut pending = std::mem::take(&mut self.children);
        while let Some(mut node) = pending.pop() {
            pending.append(&mut node.children);
        }
    }
}

impl Node {
    pub fn first(&self, property: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name == property)
    }
}

/// The result of scanning: the VCALENDAR tree (if one was found) and the unfolded text
/// for the calcard cross-check.
pub(crate) struct Scanned {
    pub root: Option<Node>,
    pub unfolded: String,
    /// True when a structural error was reported (the tree is then best effort).
    pub broken: bool,
}

/// Scans `input`; findings go to `out`. A limit stops the scan at once (returns `None`).
/// `keep_unfolded` collects the unfolded text for the calcard cross-check.
pub(crate) fn scan(
    input: &[u8],
    limits: &Limits,
    strict: bool,
    keep_unfolded: bool,
    out: &mut Vec<Diagnostic>,
) -> Option<Scanned> {
    let limit = |limit, max, offset| ItipError::Limit(LimitExceeded { limit, max, offset });
    if input.len() > limits.bytes {
        out.push(Diagnostic::Error(limit(
            LimitKind::Bytes,
            limits.bytes,
            limits.bytes,
        )));
        return None;
    }
    let mut broken = false;
    let fail = |out: &mut Vec<Diagnostic>, m: Malformed| {
        out.push(Diagnostic::Error(ItipError::Malformed(m)));
    };
    let mut unfolded = String::with_capacity(if keep_unfolded { input.len() } else { 0 });
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut components = 0usize;
    let mut lines = 0usize;
    let mut bare_lf_reported = false;
    let mut attendees_in: Vec<usize> = Vec::new();

    let mut pos = 0usize;
    let mut logical: Vec<u8> = Vec::new();
    while pos < input.len() {
        // Gather one logical line: a physical line plus the continuation lines that
        // start with SP or HTAB, joined at byte level (a fold may split a UTF-8
        // sequence, so decoding waits until the line is whole).
        let start = pos;
        logical.clear();
        loop {
            let rest = input.get(pos..).unwrap_or_default();
            let (line_len, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (i, pos + i + 1),
                None => (rest.len(), input.len()),
            };
            let mut line = rest.get(..line_len).unwrap_or_default();
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            } else if next <= input.len() && rest.get(line_len) == Some(&b'\n') && !bare_lf_reported
            {
                bare_lf_reported = true;
                if strict {
                    fail(
                        out,
                        Malformed::ControlCharacter {
                            offset: pos + line_len,
                        },
                    );
                    broken = true;
                } else {
                    out.push(Diagnostic::Warning(Warning::BareLineFeed {
                        offset: pos + line_len,
                    }));
                }
            }
            let piece = if pos == start {
                line
            } else {
                line.get(1..).unwrap_or_default()
            };
            if logical.len() + piece.len() > limits.line_length {
                out.push(Diagnostic::Error(limit(
                    LimitKind::LineLength,
                    limits.line_length,
                    start,
                )));
                return None;
            }
            logical.extend_from_slice(piece);
            pos = next;
            match input.get(pos) {
                Some(b' ') | Some(b'\t') => continue,
                _ => break,
            }
        }
        if logical.is_empty() {
            if strict {
                fail(out, Malformed::ContentLine { offset: start });
                broken = true;
            } else {
                out.push(Diagnostic::Warning(Warning::BlankLine { offset: start }));
            }
            continue;
        }
        lines += 1;
        if lines > limits.properties {
            out.push(Diagnostic::Error(limit(
                LimitKind::Properties,
                limits.properties,
                start,
            )));
            return None;
        }
        let Ok(text) = std::str::from_utf8(&logical) else {
            fail(out, Malformed::NotUtf8 { offset: start });
            broken = true;
            continue;
        };
        if text.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            fail(out, Malformed::ControlCharacter { offset: start });
            broken = true;
            continue;
        }
        if keep_unfolded {
            unfolded.push_str(text);
            unfolded.push_str("\r\n");
        }
        let Some(property) = content_line(text, start) else {
            fail(out, Malformed::ContentLine { offset: start });
            broken = true;
            continue;
        };
        if property.name == "BEGIN" || property.name == "END" {
            let name = property.value.to_ascii_uppercase();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                fail(out, Malformed::ComponentName { offset: start });
                broken = true;
                continue;
            }
            if property.name == "BEGIN" {
                components += 1;
                if components > limits.components {
                    out.push(Diagnostic::Error(limit(
                        LimitKind::Components,
                        limits.components,
                        start,
                    )));
                    return None;
                }
                if stack.len() >= limits.nesting {
                    out.push(Diagnostic::Error(limit(
                        LimitKind::Nesting,
                        limits.nesting,
                        start,
                    )));
                    return None;
                }
                if stack.is_empty() {
                    if root.is_some() {
                        if name == "VCALENDAR" {
                            fail(out, Malformed::SecondCalendar { offset: start });
                        } else {
                            fail(out, Malformed::ContentOutsideCalendar { offset: start });
                        }
                        broken = true;
                        return Some(Scanned {
                            root,
                            unfolded,
                            broken,
                        });
                    }
                    if name != "VCALENDAR" {
                        fail(
                            out,
                            Malformed::NotCalendar {
                                offset: start,
                                name,
                            },
                        );
                        return Some(Scanned {
                            root: None,
                            unfolded,
                            broken: true,
                        });
                    }
                }
                stack.push(Node {
                    name,
                    offset: start,
                    properties: Vec::new(),
                    children: Vec::new(),
                });
                attendees_in.push(0);
            } else {
                let Some(node) = stack.pop() else {
                    fail(
                        out,
                        Malformed::UnexpectedEnd {
                            end: name,
                            offset: start,
                        },
                    );
                    broken = true;
                    continue;
                };
                attendees_in.pop();
                if node.name != name {
                    // Reported, then treated as closing the open component so that
                    // diagnose() can go on and report what else is wrong.
                    fail(
                        out,
                        Malformed::MismatchedEnd {
                            begin: node.name.clone(),
                            begin_offset: node.offset,
                            end: name,
                            offset: start,
                        },
                    );
                    broken = true;
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            continue;
        }
        let Some(node) = stack.last_mut() else {
            fail(out, Malformed::ContentOutsideCalendar { offset: start });
            broken = true;
            continue;
        };
        if property.name == "ATTENDEE"
            && let Some(count) = attendees_in.last_mut()
        {
            *count += 1;
            if *count > limits.attendees {
                out.push(Diagnostic::Error(limit(
                    LimitKind::Attendees,
                    limits.attendees,
                    start,
                )));
                return None;
            }
        }
        node.properties.push(property);
    }
    // Close what is left open, innermost first, so the report names each.
    while let Some(node) = stack.pop() {
        fail(
            out,
            Malformed::Unclosed {
                component: node.name.clone(),
                offset: node.offset,
            },
        );
        broken = true;
        match stack.last_mut() {
            Some(parent) => parent.children.push(node),
            None => root = Some(node),
        }
    }
    if root.is_none() && !broken {
        fail(out, Malformed::NoCalendar);
        broken = true;
    }
    Some(Scanned {
        root,
        unfolded,
        broken,
    })
}

/// Parses `name *(";" param) ":" value` (RFC 5545 section 3.1). `None` if malformed.
fn content_line(text: &str, offset: usize) -> Option<Property> {
    let name_end = text.bytes().position(|b| b == b';' || b == b':')?;
    let property_name = text.get(..name_end)?;
    if property_name.is_empty()
        || !property_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return None;
    }
    let mut params = Vec::new();
    let mut rest = text.get(name_end..)?;
    while let Some(after) = rest.strip_prefix(';') {
        let eq = after.find('=')?;
        let pname = after.get(..eq)?;
        if pname.is_empty()
            || !pname
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return None;
        }
        let mut values = Vec::new();
        let mut cursor = after.get(eq + 1..)?;
        loop {
            if let Some(quoted) = cursor.strip_prefix('"') {
                let close = quoted.find('"')?;
                values.push(decode_caret(quoted.get(..close)?));
                cursor = quoted.get(close + 1..)?;
            } else {
                let end = cursor
                    .bytes()
                    .position(|b| matches!(b, b',' | b';' | b':'))?;
                let raw = cursor.get(..end)?;
                if raw.contains('"') {
                    return None;
                }
                values.push(decode_caret(raw));
                cursor = cursor.get(end..)?;
            }
            match cursor.strip_prefix(',') {
                Some(next) => cursor = next,
                None => break,
            }
        }
        params.push(Param {
            name: name(pname),
            values,
        });
        rest = cursor;
    }
    let value = rest.strip_prefix(':')?;
    Some(Property {
        name: name(property_name),
        params,
        value: value.to_owned(),
        offset,
    })
}

/// RFC 6868 section 3: `^n` is a newline, `^'` a double quote, `^^` a caret; a caret
/// before anything else is kept as it is.
fn decode_caret(raw: &str) -> String {
    if !raw.contains('^') {
        return raw.to_owned();
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_ok(text: &[u8]) -> (Option<Scanned>, Vec<Diagnostic>) {
        let mut out = Vec::new();
        let s = scan(text, &Limits::default(), false, true, &mut out);
        (s, out)
    }

    #[test]
    fn fold_inside_utf8_sequence_is_joined_before_decoding() {
        // "é" is C3 A9; the fold splits it.
        let text = b"BEGIN:VCALENDAR\r\nX-A:caf\xC3\r\n \xA9\r\nEND:VCALENDAR\r\n";
        let (s, out) = scan_ok(text);
        assert!(out.is_empty(), "{out:?}");
        let root = s.unwrap().root.unwrap();
        assert_eq!(root.first("X-A").unwrap().value, "café");
    }

    #[test]
    fn rfc6868_escapes_are_decoded() {
        let p = content_line("ATTENDEE;CN=\"a ^'b^' ^^ ^n c ^x\":mailto:a@b", 0).unwrap();
        assert_eq!(p.param("CN"), Some("a \"b\" ^ \n c ^x"));
    }

    #[test]
    fn quoted_parameter_lists_split_on_commas_outside_quotes() {
        let p = content_line(
            "ATTENDEE;DELEGATED-TO=\"mailto:a,@b\",\"mailto:c@d\":mailto:x@y",
            0,
        )
        .unwrap();
        assert_eq!(
            p.param_values("DELEGATED-TO").collect::<Vec<_>>(),
            ["mailto:a,@b", "mailto:c@d"]
        );
    }

    #[test]
    fn malformed_lines_are_rejected() {
        for line in [
            "NOCOLON",
            ";A=b:c",
            "A;=b:c",
            "A;B:c",
            "A;B=\"x:c",
            "A;B=x\"y:c",
            "A B:c",
        ] {
            assert!(content_line(line, 0).is_none(), "{line}");
        }
    }

    #[test]
    fn nesting_limit_stops_deep_input_without_recursion() {
        let mut text = b"BEGIN:VCALENDAR\r\n".to_vec();
        for _ in 0..100_000 {
            text.extend_from_slice(b"BEGIN:X\r\n");
        }
        let (s, out) = scan_ok(&text);
        assert!(s.is_none());
        assert!(matches!(
            out.last(),
            Some(Diagnostic::Error(ItipError::Limit(LimitExceeded {
                limit: LimitKind::Nesting,
                ..
            })))
        ));
    }
}
