//! The calcard second opinion: a parser differential check on the whole text the
//! calendar server parses.
//!
//! An attacker who finds an input that this crate reads one way and the calendar store
//! another can get one identity authorized here and another acted on there. calcard
//! (the parser of the Stalwart server) therefore reads the same text, all of it, exactly
//! as received (not a projection of the lines the decision reads: a line that calcard
//! joins into the value of another, such as the next physical line after a
//! QUOTED-PRINTABLE value ending in `=`, would otherwise go unseen), and its reading must
//! agree with ours on:
//!
//! - the component tree: the same types, in the same order, with the same children;
//! - in every component, every property: the same names, in the same order, as many
//!   (so a line calcard reads as part of another property, or as an ORGANIZER where the
//!   scanner saw none, is a differential);
//! - for every property [`is_cross_checked`] names, its value and the parameters the
//!   decision uses (SENT-BY of ORGANIZER and ATTENDEE; DELEGATED-TO, DELEGATED-FROM and
//!   PARTSTAT of ATTENDEE; TZID and RANGE of RECURRENCE-ID).
//!
//! Any disagreement is fatal (`malformed-icalendar`), including calcard declining a
//! value both RFCs allow but that an honest client never writes (a UID with a backslash
//! escape, an RFC 6868 caret in an address): failing closed costs a rare odd message,
//! not a forged one.

use std::borrow::Cow;

use calcard::common::{IanaString, PartialDateTime};
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarEntry, ICalendarParameterValue, ICalendarValue, Uri,
};

use crate::scan::{Node, Property};

/// The properties whose reading the cross-check compares: every property the
/// correlation, authorization and event-state decisions read (the model of
/// [`crate::Component`], and METHOD). A `match`, which compiles to a switch on the
/// length: this runs for every line.
fn is_cross_checked(name: &str) -> bool {
    matches!(
        name,
        "METHOD" | "UID" | "RECURRENCE-ID" | "SEQUENCE" | "DTSTAMP" | "ORGANIZER" | "ATTENDEE"
    )
}

/// The parameters whose reading is compared, by property, each with whether its values
/// are case-insensitive tokens (PARTSTAT, RANGE) rather than text or addresses.
fn compared_params(property: &str) -> &'static [(&'static str, bool)] {
    match property {
        "ORGANIZER" => &[("SENT-BY", false)],
        "ATTENDEE" => &[
            ("SENT-BY", false),
            ("DELEGATED-TO", false),
            ("DELEGATED-FROM", false),
            ("PARTSTAT", true),
        ],
        "RECURRENCE-ID" => &[("TZID", false), ("RANGE", true)],
        _ => &[],
    }
}

/// Parses `text` (the whole calendar text, as received) with calcard and compares its
/// reading with `root`, the scanner's. `Err` describes the first disagreement.
pub(crate) fn cross_check(text: &str, root: &Node) -> Result<(), String> {
    let mut parser = calcard::Parser::new(text);
    match parser.entry() {
        calcard::Entry::ICalendar(calendar) => compare(&calendar, root),
        calcard::Entry::InvalidLine(line) => Err(format!(
            "calcard rejects the line {:?}",
            truncated(&line, 120)
        )),
        calcard::Entry::UnexpectedComponentEnd { expected, found } => Err(format!(
            "calcard sees END:{} where END:{} belongs",
            truncated(found.as_str(), 60),
            truncated(expected.as_str(), 60)
        )),
        calcard::Entry::UnterminatedComponent(name) => Err(format!(
            "calcard sees BEGIN:{} never closed",
            truncated(&name, 60)
        )),
        calcard::Entry::TooManyComponents => Err("calcard reports too many components".into()),
        calcard::Entry::Eof => Err("calcard finds no calendar object".into()),
        _ => Err("calcard reads something other than an iCalendar object".into()),
    }
}

/// calcard numbers components in the order their BEGIN lines come (index 0 is
/// VCALENDAR) and lists each one's children by number: the pre-order of our tree.
fn compare(calendar: &ICalendar, root: &Node) -> Result<(), String> {
    // Pre-order with an explicit stack (the tree's depth is bounded, but recursion
    // is not needed); a node's position in `order` is its pre-order number.
    let mut order: Vec<&Node> = Vec::new();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        order.push(node);
        stack.extend(node.children.iter().rev());
    }
    if order.len() != calendar.components.len() {
        return Err(format!(
            "calcard sees {} components, the scanner {}",
            calendar.components.len(),
            order.len()
        ));
    }
    // The pre-order number of each node's first child follows from subtree sizes;
    // computing them once keeps the comparison linear.
    let sizes = subtree_sizes(&order);
    for (index, (ours, theirs)) in order.iter().zip(&calendar.components).enumerate() {
        let name = theirs.component_type.as_str();
        if !name.eq_ignore_ascii_case(&ours.name) {
            return Err(format!(
                "component {index} is {} to calcard, {} to the scanner",
                truncated(name, 60),
                truncated(&ours.name, 60)
            ));
        }
        let mut child = index + 1;
        let mut children = Vec::with_capacity(ours.children.len());
        for _ in &ours.children {
            children.push(child);
            child += sizes.get(child).copied().unwrap_or(1);
        }
        let same_children = theirs.component_ids.len() == children.len()
            && theirs
                .component_ids
                .iter()
                .zip(&children)
                .all(|(&id, &c)| usize::try_from(id).is_ok_and(|id| id == c));
        if !same_children {
            return Err(format!(
                "{} (component {index}) has other children to calcard",
                ours.name
            ));
        }
        compare_properties(ours, theirs)?;
    }
    Ok(())
}

/// The number of nodes in each node's subtree, indexed by pre-order number.
fn subtree_sizes(order: &[&Node]) -> Vec<usize> {
    let mut sizes = vec![1usize; order.len()];
    // Walking backwards, every child's subtree is complete before its parent's.
    for (index, node) in order.iter().enumerate().rev() {
        let mut child = index + 1;
        let mut total = 1;
        for _ in &node.children {
            let size = sizes.get(child).copied().unwrap_or(1);
            total += size;
            child += size;
        }
        if let Some(slot) = sizes.get_mut(index) {
            *slot = total;
        }
    }
    sizes
}

/// Every property, in order: the same name; the decision's ones also the same reading.
fn compare_properties(ours: &Node, theirs: &ICalendarComponent) -> Result<(), String> {
    let mut mine = ours.properties.iter();
    let mut entries = theirs.entries.iter();
    loop {
        match (mine.next(), entries.next()) {
            (None, None) => return Ok(()),
            (Some(p), None) => {
                return Err(format!(
                    "calcard drops the {} line at byte {} of {}",
                    p.name, p.offset, ours.name
                ));
            }
            (None, Some(e)) => {
                return Err(format!(
                    "calcard sees an extra {} in {}",
                    truncated(e.name.as_str(), 60),
                    ours.name
                ));
            }
            (Some(p), Some(e)) if !is_cross_checked(&p.name) => {
                if !e.name.as_str().eq_ignore_ascii_case(&p.name) {
                    return Err(format!(
                        "{} at byte {} of {}: calcard reads it as {}",
                        p.name,
                        p.offset,
                        ours.name,
                        truncated(e.name.as_str(), 60)
                    ));
                }
            }
            (Some(p), Some(e)) => compare_property(p, e)
                .map_err(|what| format!("{} at byte {}: {what}", p.name, p.offset))?,
        }
    }
}

fn compare_property(p: &Property<'_>, e: &ICalendarEntry) -> Result<(), String> {
    if !e.name.as_str().eq_ignore_ascii_case(&p.name) {
        return Err(format!(
            "calcard reads it as {}",
            truncated(e.name.as_str(), 60)
        ));
    }
    let [value] = e.values.as_slice() else {
        return Err(format!("calcard reads {} values", e.values.len()));
    };
    let same_value = match p.name.as_ref() {
        // calcard must know the method, not keep it as text: `REPLY ` is a REPLY to the
        // scanner (which trims it) and an unknown method to calcard.
        "METHOD" => matches!(value, ICalendarValue::Method(m)
            if m.as_str().eq_ignore_ascii_case(p.value.trim())),
        "SEQUENCE" => match (value, p.value.trim().parse::<i64>()) {
            (ICalendarValue::Integer(n), Ok(m)) => *n == m,
            _ => false,
        },
        "DTSTAMP" | "RECURRENCE-ID" => match value {
            ICalendarValue::PartialDateTime(dt) => date_time_text(dt) == p.value,
            _ => false,
        },
        // UID, ORGANIZER, ATTENDEE: text or address, byte for byte.
        _ => value_text(value).is_some_and(|v| v == p.value),
    };
    if !same_value {
        return Err(format!(
            "calcard reads the value as {:?}",
            truncated(&value_text(value).unwrap_or(Cow::Borrowed("?")), 120)
        ));
    }
    for &(name, token) in compared_params(&p.name) {
        let mut ours = p.param_values(name);
        let mut theirs = e
            .params
            .iter()
            .filter(|q| q.name.as_str().eq_ignore_ascii_case(name));
        loop {
            let same = match (ours.next(), theirs.next()) {
                (None, None) => break,
                (Some(o), Some(q)) => match param_text(name, &q.value) {
                    Some(t) if token => t.eq_ignore_ascii_case(o),
                    Some(t) => t == o,
                    None => false,
                },
                _ => false,
            };
            if !same {
                return Err(format!("calcard reads {name} otherwise"));
            }
        }
    }
    Ok(())
}

/// A property value as text, where calcard keeps it as text, an address or a method.
fn value_text(value: &ICalendarValue) -> Option<Cow<'_, str>> {
    match value {
        ICalendarValue::Text(t) => Some(Cow::Borrowed(t)),
        ICalendarValue::Uri(Uri::Location(l)) => Some(Cow::Borrowed(l)),
        ICalendarValue::Method(m) => Some(Cow::Borrowed(m.as_str())),
        ICalendarValue::Integer(n) => Some(Cow::Owned(n.to_string())),
        ICalendarValue::PartialDateTime(dt) => Some(Cow::Owned(date_time_text(dt))),
        _ => None,
    }
}

/// A parameter value as text. RANGE is read by calcard as a flag that is set for
/// THISANDFUTURE (RFC 5545 3.2.13 allows no other value).
fn param_text<'v>(name: &str, value: &'v ICalendarParameterValue) -> Option<Cow<'v, str>> {
    match value {
        ICalendarParameterValue::Text(t) => Some(Cow::Borrowed(t)),
        ICalendarParameterValue::Uri(Uri::Location(l)) => Some(Cow::Borrowed(l)),
        ICalendarParameterValue::Partstat(s) => Some(Cow::Borrowed(s.as_str())),
        ICalendarParameterValue::Bool(true) if name == "RANGE" => {
            Some(Cow::Borrowed("THISANDFUTURE"))
        }
        _ => None,
    }
}

/// calcard's DATE or DATE-TIME written back in the RFC 5545 form (`YYYYMMDD`,
/// `YYYYMMDDTHHMMSS`, with `Z` for UTC); anything else (a partial or offset time, which
/// the scanner's value checks reject) gets a form no valid value has.
fn date_time_text(dt: &PartialDateTime) -> String {
    let (Some(year), Some(month), Some(day)) = (dt.year, dt.month, dt.day) else {
        return "(partial date)".into();
    };
    let date = format!("{year:04}{month:02}{day:02}");
    match (dt.hour, dt.minute, dt.second, dt.tz_hour, dt.tz_minute) {
        (None, None, None, None, None) => date,
        (Some(h), Some(m), Some(s), None, None) => format!("{date}T{h:02}{m:02}{s:02}"),
        (Some(h), Some(m), Some(s), Some(0), Some(0) | None) if !dt.tz_minus => {
            format!("{date}T{h:02}{m:02}{s:02}Z")
        }
        _ => "(offset or partial time)".into(),
    }
}

/// At most `max` characters of `text` (the detail is for humans, the input is hostile).
fn truncated(text: &str, max: usize) -> &str {
    text.char_indices()
        .nth(max)
        .and_then(|(end, _)| text.get(..end))
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_decision_properties_are_compared_by_value() {
        for name in [
            "METHOD",
            "UID",
            "RECURRENCE-ID",
            "SEQUENCE",
            "DTSTAMP",
            "ORGANIZER",
            "ATTENDEE",
        ] {
            assert!(is_cross_checked(name), "{name}");
        }
        for name in [
            "BEGIN",
            "DESCRIPTION",
            "ATTENDEES",
            "UID2",
            "COMMENT",
            "X-UID",
        ] {
            assert!(!is_cross_checked(name), "{name}");
        }
    }

    /// The scanner's tree of `text` (which must scan cleanly).
    fn tree(text: &str) -> crate::scan::Node<'_> {
        let mut out = Vec::new();
        let scanned =
            crate::scan::scan(text.as_bytes(), &crate::Limits::default(), false, &mut out).unwrap();
        assert!(out.is_empty() && !scanned.broken, "{out:?}");
        scanned.root.unwrap()
    }

    /// calcard joins the physical line after a QUOTED-PRINTABLE value ending in `=` into
    /// that value (issue #11 item 4). The scanner refuses QUOTED-PRINTABLE on its own;
    /// this shows that the cross-check, reading the whole text, catches such a join by
    /// itself: the scanner's reading of the same lines with ENCODING=8BIT (which calcard
    /// does not join) is held against calcard's reading of the QUOTED-PRINTABLE text.
    #[test]
    fn a_line_calcard_joins_into_a_value_is_a_differential() {
        let text = |encoding: &str| {
            format!(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nMETHOD:REQUEST\r\n\
                 BEGIN:VEVENT\r\nUID:u\r\nDTSTAMP:20260101T000000Z\r\n\
                 X-A;ENCODING={encoding}:x=\r\nORGANIZER:mailto:mallory@evil.example\r\n\
                 X-B;ENCODING={encoding}:y=\r\nBEGIN:X-C\r\nX-D:z\r\n\
                 X-E;ENCODING={encoding}:w=\r\nEND:X-C\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
            )
        };
        let plain = text("8BIT");
        let root = tree(&plain);
        assert_eq!(cross_check(&plain, &root), Ok(()));
        let joined = text("QUOTED-PRINTABLE");
        let detail = cross_check(&joined, &root).unwrap_err();
        assert!(detail.contains("calcard"), "{detail}");
        // A line calcard reads as part of another property: one property fewer.
        let with_f = plain.replace("X-D:z\r\n", "X-D:z\r\nX-F:v\r\n");
        let swallowed = plain.replace("X-D:z\r\n", "X-D;ENCODING=QUOTED-PRINTABLE:z=\r\nX-F:v\r\n");
        let root = tree(&with_f);
        assert_eq!(cross_check(&with_f, &root), Ok(()));
        let detail = cross_check(&swallowed, &root).unwrap_err();
        assert!(detail.contains("X-F"), "{detail}");
    }
}
