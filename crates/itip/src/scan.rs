//! The strict line and structure scanner (RFC 5545 section 3.1): byte-level unfolding,
//! content-line syntax, RFC 6868 parameter decoding and the BEGIN/END tree.
//!
//! Every step is linear in the input; the tree is built with an explicit stack and its
//! depth is bounded by [`Limits::nesting`], so neither building nor dropping it recurses
//! deeper than that bound.

use crate::Limits;
use crate::error::{
    Deviation, Diagnostic, ItipError, LimitExceeded, LimitKind, LineDefect, Malformed, Warning,
};

/// An upper-cased property or parameter name; the common ones are borrowed from a static
/// list so that a 200-attendee invitation does not allocate a name per line.
pub(crate) type Name = Cow<'static, str>;

use std::borrow::Cow;

mod line;

pub use line::check_content_line;
use line::{content_line, written_name};

/// Sorted by length, then bytes (searched by [`name`]; a unit test keeps it sorted).
const KNOWN_NAMES: &[&str] = &[
    "CN",
    "DUE",
    "END",
    "UID",
    "URL",
    "ROLE",
    "RSVP",
    "TZID",
    "BEGIN",
    "CLASS",
    "DTEND",
    "EMAIL",
    "RANGE",
    "RDATE",
    "RRULE",
    "VALUE",
    "ATTACH",
    "CUTYPE",
    "EXDATE",
    "METHOD",
    "PRODID",
    "STATUS",
    "TRANSP",
    "TZNAME",
    "COMMENT",
    "CREATED",
    "DTSTAMP",
    "DTSTART",
    "SENT-BY",
    "SUMMARY",
    "VERSION",
    "ATTENDEE",
    "CALSCALE",
    "DURATION",
    "LANGUAGE",
    "LOCATION",
    "PARTSTAT",
    "PRIORITY",
    "SEQUENCE",
    "ORGANIZER",
    "CATEGORIES",
    "TZOFFSETTO",
    "DESCRIPTION",
    "DELEGATED-TO",
    "TZOFFSETFROM",
    "X-NUM-GUESTS",
    "LAST-MODIFIED",
    "RECURRENCE-ID",
    "DELEGATED-FROM",
    "REQUEST-STATUS",
    "SCHEDULE-STATUS",
];

/// The longest name in [`KNOWN_NAMES`] plus one.
const NAME_LENGTHS: usize = 16;

/// `KNOWN_NAMES[BY_LENGTH[n]..BY_LENGTH[n + 1]]` are the known names of length `n`.
const BY_LENGTH: [usize; NAME_LENGTHS + 1] = {
    let mut starts = [KNOWN_NAMES.len(); NAME_LENGTHS + 1];
    let mut i = KNOWN_NAMES.len();
    while i > 0 {
        i -= 1;
        let len = KNOWN_NAMES[i].len();
        // Every length up to this one starts at or before `i`.
        let mut n = 0;
        while n <= len {
            if starts[n] > i {
                starts[n] = i;
            }
            n += 1;
        }
    }
    starts
};

/// Looks `raw` up case-insensitively among the known names of its length (every line
/// has a name and most have several parameters, so a scan of the whole list was a hot
/// spot).
fn name(raw: &str) -> Name {
    let group = BY_LENGTH
        .get(raw.len())
        .zip(BY_LENGTH.get(raw.len() + 1))
        .and_then(|(&from, &to)| KNOWN_NAMES.get(from..to))
        .unwrap_or_default();
    match group.iter().find(|k| k.eq_ignore_ascii_case(raw)) {
        Some(known) => Name::Borrowed(known),
        None => Name::Owned(raw.to_ascii_uppercase()),
    }
}

/// A content line other than BEGIN/END. Value and parameter values borrow from the input
/// when the line was not folded and needed no RFC 6868 decoding (the common case), so
/// scanning allocates per line, not per value.
#[derive(Debug, Clone)]
pub(crate) struct Property<'a> {
    pub name: Name,
    /// One entry per parameter value (unquoted and RFC 6868 decoded) with its parameter's
    /// upper-cased name, in order: `A=x,y;B=z` is `[(A, x), (A, y), (B, z)]`, so that a
    /// line costs one list, not one per parameter.
    params: Vec<(Name, Cow<'a, str>)>,
    pub value: Cow<'a, str>,
    pub offset: usize,
}

impl<'a> Property<'a> {
    /// The first value of the named parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// All values of the named parameter (all occurrences).
    pub fn param_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.params
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// The same property owning all its text (for a line unfolded into a scratch buffer).
    fn into_owned(self) -> Property<'static> {
        Property {
            name: self.name,
            params: self
                .params
                .into_iter()
                .map(|(n, v)| (n, Cow::Owned(v.into_owned())))
                .collect(),
            value: Cow::Owned(self.value.into_owned()),
            offset: self.offset,
        }
    }
}

/// A component and what it contains.
#[derive(Debug, Clone)]
pub(crate) struct Node<'a> {
    pub name: String,
    pub offset: usize,
    pub properties: Vec<Property<'a>>,
    pub children: Vec<Node<'a>>,
}

/// Dropping a tree recursively could exhaust the stack for a deep (if limit-raised) nest;
/// children are moved out onto a heap stack instead.
impl Drop for Node<'_> {
    fn drop(&mut self) {
        let mut pending = std::mem::take(&mut self.children);
        while let Some(mut node) = pending.pop() {
            pending.append(&mut node.children);
        }
    }
}

impl<'a> Node<'a> {
    pub fn first(&self, property: &str) -> Option<&Property<'a>> {
        self.properties.iter().find(|p| p.name == property)
    }
}

/// The result of scanning: the VCALENDAR tree (if one was found) and the whole text, for
/// the calcard cross-check.
pub(crate) struct Scanned<'a> {
    pub root: Option<Node<'a>>,
    /// The input as text, exactly as received (the server's parser reads all of it);
    /// `None` when it is not UTF-8 as a whole.
    pub text: Option<&'a str>,
    /// True when a structural error was reported (the tree is then best effort).
    pub broken: bool,
}

/// Where RFC 5545 (sections 3.4, 3.6) lets a component stand, by its name and its
/// parent's (`None`: at the top). VCALENDAR only at the top; VEVENT, VTODO, VJOURNAL,
/// VFREEBUSY and VTIMEZONE only in the VCALENDAR; VALARM only in a VEVENT or VTODO;
/// STANDARD and DAYLIGHT only in a VTIMEZONE. Any other (X- or IANA) component may
/// stand in the VCALENDAR, in a scheduling component (RFC 9073 puts PARTICIPANT,
/// VLOCATION and VRESOURCE there) or in another such component, never in a VTIMEZONE,
/// observance or VALARM; the rules above keep every known component out of it.
///
/// A recursive reader (Stalwart treats every VEVENT as a scheduling component) would
/// otherwise act on a VEVENT nested where this crate does not look for one.
fn component_allowed(name: &str, parent: Option<&str>) -> bool {
    match (name, parent) {
        ("VCALENDAR", None) => true,
        (_, None) | ("VCALENDAR", Some(_)) => false,
        ("VEVENT" | "VTODO" | "VJOURNAL" | "VFREEBUSY" | "VTIMEZONE", Some(parent)) => {
            parent == "VCALENDAR"
        }
        ("VALARM", Some(parent)) => matches!(parent, "VEVENT" | "VTODO"),
        ("STANDARD" | "DAYLIGHT", Some(parent)) => parent == "VTIMEZONE",
        (_, Some(parent)) => !matches!(parent, "VTIMEZONE" | "STANDARD" | "DAYLIGHT" | "VALARM"),
    }
}

fn is_scheduling_component(name: &str) -> bool {
    matches!(name, "VEVENT" | "VTODO" | "VJOURNAL" | "VFREEBUSY")
}

/// Where the properties that name parties or identify the object may stand: only where
/// the decision reads them. METHOD in the VCALENDAR; ORGANIZER and RECURRENCE-ID in a
/// scheduling component; ATTENDEE there and in a VALARM (RFC 5545 §3.6.6, the e-mail
/// alarm's recipients); UID there and in a VALARM (RFC 9074 §4). An ORGANIZER in an X-
/// component, a VTIMEZONE or at the VCALENDAR level is refused rather than ignored,
/// because a reader that looks for it there would find a party no one authorized.
fn property_allowed(property: &str, component: &str) -> bool {
    match property {
        "METHOD" => component == "VCALENDAR",
        "ORGANIZER" | "RECURRENCE-ID" => is_scheduling_component(component),
        "ATTENDEE" | "UID" => is_scheduling_component(component) || component == "VALARM",
        _ => true,
    }
}

/// vCalendar 1.0 constructs, which RFC 5545 dropped and lenient readers still honour
/// (calcard joins the next physical line into a QUOTED-PRINTABLE value ending in `=`,
/// decodes values in a CHARSET, base64-decodes after a bare BASE64 parameter): a
/// VERSION other than 2.0, an ENCODING other than RFC 5545's `8BIT` and `BASE64`
/// (section 3.2.7), and the CHARSET and BASE64 parameters. `Some(what)` names it.
fn legacy_construct(property: &Property<'_>) -> Option<String> {
    if property.name == "VERSION" && property.value != "2.0" {
        return Some(format!("VERSION:{}", property.value));
    }
    for (name, value) in &property.params {
        match name.as_ref() {
            "ENCODING"
                if !value.eq_ignore_ascii_case("8BIT") && !value.eq_ignore_ascii_case("BASE64") =>
            {
                return Some(format!("ENCODING={value}"));
            }
            "CHARSET" | "BASE64" => return Some(format!("{name} parameter")),
            _ => {}
        }
    }
    None
}

/// Scans `input`; findings go to `out`. A limit stops the scan at once (returns `None`).
pub(crate) fn scan<'a>(
    input: &'a [u8],
    limits: &Limits,
    strict: bool,
    out: &mut Vec<Diagnostic>,
) -> Option<Scanned<'a>> {
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
    // The server decodes the part as a whole: a UTF-8 sequence that only becomes valid
    // once a fold is removed (RFC 5545 §3.1 asks readers to rejoin it) is invalid text to
    // it, so the two would read different values. Checked once here, reported below
    // unless a line already was.
    let text = std::str::from_utf8(input);
    let mut utf8_reported = false;
    let mut stack: Vec<Node<'a>> = Vec::new();
    let mut root: Option<Node<'a>> = None;
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
        // The first physical line, borrowed; copied into `logical` only if a
        // continuation line follows.
        let mut first: &'a [u8] = &[];
        let mut folded = false;
        loop {
            let rest = input.get(pos..).unwrap_or_default();
            let (line_len, next) = match memchr::memchr(b'\n', rest) {
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
                        Malformed::BareLineFeed {
                            property: line_name_at(input, start),
                            offset: pos + line_len,
                        },
                    );
                    broken = true;
                } else {
                    out.push(Diagnostic::Warning(Warning::BareLineFeed {
                        property: line_name_at(input, start),
                        offset: pos + line_len,
                    }));
                }
            }
            let piece = if pos == start {
                line
            } else {
                line.get(1..).unwrap_or_default()
            };
            let gathered = if folded { logical.len() } else { first.len() };
            if gathered + piece.len() > limits.line_length {
                out.push(Diagnostic::Error(limit(
                    LimitKind::LineLength,
                    limits.line_length,
                    start,
                )));
                return None;
            }
            if pos == start {
                first = piece;
            } else {
                if !folded {
                    logical.extend_from_slice(first);
                    folded = true;
                }
                logical.extend_from_slice(piece);
            }
            pos = next;
            match input.get(pos) {
                Some(b' ') | Some(b'\t') => continue,
                _ => break,
            }
        }
        let line: &[u8] = if folded { &logical } else { first };
        if line.is_empty() {
            if strict {
                fail(
                    out,
                    Malformed::ContentLine {
                        property: String::new(),
                        defect: LineDefect::Blank,
                        offset: start,
                    },
                );
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
        // Not folded: the text borrows `input` for 'a, and so may the property.
        let decoded = if folded {
            std::str::from_utf8(&logical).map(|t| (t, None))
        } else {
            std::str::from_utf8(first).map(|t| (t, Some(t)))
        };
        let Ok((text, unfolded_in_input)) = decoded else {
            fail(
                out,
                Malformed::NotUtf8 {
                    property: line_name_at(input, start),
                    offset: start,
                },
            );
            utf8_reported = true;
            broken = true;
            continue;
        };
        if has_control_character(text.as_bytes()) {
            fail(
                out,
                Malformed::ControlCharacter {
                    property: line_name_at(input, start),
                    offset: start,
                },
            );
            broken = true;
            continue;
        }
        let parsed = match unfolded_in_input {
            Some(text) => content_line(text, start),
            None => content_line(text, start).map(Property::into_owned),
        };
        let property = match parsed {
            Ok(property) => property,
            Err(defect) => {
                fail(
                    out,
                    Malformed::ContentLine {
                        property: written_name(text),
                        defect,
                        offset: start,
                    },
                );
                broken = true;
                continue;
            }
        };
        // An `_` in an X- name (Outlook for Mac's X-ENTOURAGE_UUID, Lotus Notes'
        // X-LOTUS-CHILD_UID): content_line only lets it through in X- names, which no
        // decision reads; calcard reads the line as the same X- property (the full-text
        // cross-check compares every name). A deviation of the profile.
        if property.name.contains('_') {
            if strict {
                fail(
                    out,
                    Malformed::ContentLine {
                        property: property.name.to_string(),
                        defect: LineDefect::PropertyName,
                        offset: start,
                    },
                );
                broken = true;
                continue;
            }
            out.push(Diagnostic::Warning(Warning::IcalendarDeviation {
                deviation: Deviation::UnderscoreInXName,
                property: property.name.to_string(),
                offset: start,
            }));
        }
        if let Some(construct) = legacy_construct(&property) {
            fail(
                out,
                Malformed::LegacyVCalendar {
                    construct,
                    offset: start,
                },
            );
            broken = true;
            continue;
        }
        if property.name == "BEGIN" || property.name == "END" {
            let name = property.value.to_ascii_uppercase();
            // No parameters either: RFC 5545 gives BEGIN and END none, and readers differ
            // on whether a quoted `:` in one ends the name.
            if name.is_empty()
                || !property.params.is_empty()
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
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
                            fail(
                                out,
                                Malformed::ContentOutsideCalendar {
                                    property: line_name_at(input, start),
                                    offset: start,
                                },
                            );
                        }
                        broken = true;
                        return Some(Scanned {
                            root,
                            text: None,
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
                            text: None,
                            broken: true,
                        });
                    }
                }
                let parent = stack.last().map(|p| p.name.as_str());
                if !component_allowed(&name, parent) {
                    fail(
                        out,
                        Malformed::MisplacedComponent {
                            component: name,
                            parent: parent.unwrap_or_default().to_owned(),
                            offset: start,
                        },
                    );
                    broken = true;
                    return Some(Scanned {
                        root: None,
                        text: None,
                        broken,
                    });
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
            fail(
                out,
                Malformed::ContentOutsideCalendar {
                    property: line_name_at(input, start),
                    offset: start,
                },
            );
            broken = true;
            continue;
        };
        if !property_allowed(&property.name, &node.name) {
            fail(
                out,
                Malformed::MisplacedProperty {
                    property: property.name.to_string(),
                    component: node.name.clone(),
                    offset: start,
                },
            );
            broken = true;
            continue;
        }
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
    if let Err(error) = text
        && !utf8_reported
    {
        fail(
            out,
            Malformed::NotUtf8 {
                property: line_name_at(input, line_start(input, error.valid_up_to())),
                offset: error.valid_up_to(),
            },
        );
        broken = true;
    }
    if root.is_none() && !broken {
        fail(out, Malformed::NoCalendar);
        broken = true;
    }
    Some(Scanned {
        root,
        text: text.ok(),
        broken,
    })
}

/// Whether `line` holds a control character other than HTAB (RFC 5545 section 3.1:
/// CONTROL is not allowed in a content line). A fold of `|` over the bytes rather than
/// `any`, so that the compiler can vectorize it: this runs on every byte of the input.
fn has_control_character(line: &[u8]) -> bool {
    line.iter().fold(false, |found, &b| {
        found | ((b < 0x20 && b != b'\t') | (b == 0x7f))
    })
}

/// The property name as written at the start of a line, for a report (at most 64 bytes).
/// The property name of the content line starting at `start` of `input`, for a report: its
/// leading bytes up to `;`, `:` or the line end, at most 64, anything but printable ASCII
/// shown as `?` (the line may be the broken one: not UTF-8, a control character).
fn line_name_at(input: &[u8], start: usize) -> String {
    input
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| !matches!(b, b';' | b':' | b'\r' | b'\n'))
        .take(64)
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

/// The start of the (folded) content line holding byte `offset` of `input`: after the last
/// LF before it that is not followed by a continuation (space or HTAB).
fn line_start(input: &[u8], offset: usize) -> usize {
    let mut end = offset.min(input.len());
    loop {
        let start = input
            .get(..end)
            .unwrap_or_default()
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |lf| lf + 1);
        match input.get(start) {
            Some(b' ' | b'\t') if start > 0 => end = start - 1,
            _ => return start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_ok(text: &[u8]) -> (Option<Scanned<'_>>, Vec<Diagnostic>) {
        let mut out = Vec::new();
        let s = scan(text, &Limits::default(), false, &mut out);
        (s, out)
    }

    #[test]
    fn fold_inside_utf8_sequence_is_joined_but_refused() {
        // "é" is C3 A9; the fold splits it. The line is rejoined as RFC 5545 §3.1 asks,
        // but the text as a whole, which the server decodes, is not UTF-8.
        let text = b"BEGIN:VCALENDAR\r\nX-A:caf\xC3\r\n \xA9\r\nEND:VCALENDAR\r\n";
        let (s, out) = scan_ok(text);
        assert!(
            matches!(
                out.as_slice(),
                [Diagnostic::Error(ItipError::Malformed(
                    Malformed::NotUtf8 { offset: 24, .. }
                ))]
            ),
            "{out:?}"
        );
        let s = s.unwrap();
        assert!(s.broken && s.text.is_none());
        assert_eq!(s.root.unwrap().first("X-A").unwrap().value, "café");
    }

    #[test]
    fn known_names_are_sorted_for_binary_search() {
        assert!(
            KNOWN_NAMES
                .windows(2)
                .all(|w| (w[0].len(), w[0]) < (w[1].len(), w[1]))
        );
        assert!(KNOWN_NAMES.iter().all(|k| k.len() < NAME_LENGTHS));
        for known in KNOWN_NAMES {
            assert!(matches!(name(&known.to_ascii_lowercase()), Name::Borrowed(k) if k == *known));
        }
        assert!(matches!(name("attendee"), Name::Borrowed("ATTENDEE")));
        assert!(matches!(name("Dtstart"), Name::Borrowed("DTSTART")));
        assert_eq!(name("x-Custom"), "X-CUSTOM");
    }

    #[test]
    fn folded_and_unfolded_lines_give_the_same_property() {
        let (s, out) = scan_ok(
            b"BEGIN:VCALENDAR\r\nX-WHO;CN=A;ROLE=CHAIR:mailto:a@b\r\nX-WHO;CN=A;RO\r\n LE=CHAIR:mail\r\n to:a@b\r\nEND:VCALENDAR\r\n",
        );
        assert!(out.is_empty(), "{out:?}");
        let root = s.unwrap().root.unwrap();
        let [plain, folded] = &root.properties[..] else {
            panic!("two properties expected")
        };
        for p in [plain, folded] {
            assert_eq!(p.value, "mailto:a@b");
            assert_eq!(p.param("CN"), Some("A"));
            assert_eq!(p.param("ROLE"), Some("CHAIR"));
        }
        assert!(matches!(plain.value, Cow::Borrowed(_)));
    }

    #[test]
    fn control_characters_are_found_anywhere_but_htab_is_allowed() {
        assert!(!has_control_character(b"SUMMARY:a\tb ~"));
        for bad in [0x00u8, 0x08, 0x0a, 0x0d, 0x1f, 0x7f] {
            for at in [0, 5, 40] {
                let mut line = vec![b'x'; 48];
                line[at] = bad;
                assert!(has_control_character(&line), "{bad:#x} at {at}");
            }
        }
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
            "A;B=x;B=y:c",
            "A;B=x;C=y;b=z:c",
            "A;B=x,y;C=z;D=\"w\",v;C=u:c",
            // `_` only in X- names (the UnderscoreInXName tolerance), never elsewhere.
            "A_B:c",
            "X_B:c",
            "ATTENDEE_X:mailto:a@b",
            "X-A;B_C=x:c",
        ] {
            assert!(content_line(line, 0).is_err(), "{line}");
        }
        for line in [
            "A;B=x,y;C=z:c",
            "A;B=x;C=y;D=z:c",
            "X-ENTOURAGE_UUID:a",
            "x-lotus-child_uid:b",
        ] {
            assert!(content_line(line, 0).is_ok(), "{line}");
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
