//! Log field values as the gate's log lines carry them (the subscriber that writes the
//! lines is installed by the binary, `imipsec gate`, not by this library):
//! - in JSON, lists are JSON arrays (`"codes":["unsigned"]`), never a string holding Rust's
//!   debug rendering of one (`"codes":"[\"unsigned\"]"`): log them with [`List`], under one of
//!   the names in [`LIST_FIELDS`];
//! - values in their plain Display form (`127.0.0.1:8891`, `none`), never Rust debug
//!   formatting (`Some(127.0.0.1:8891)`): log optional values with [`OrNone`].

use std::fmt;

/// Field names whose values are lists: logged with [`List`], they are JSON arrays in the JSON
/// format. Only these names are read as lists, so a sender-controlled string that happens to
/// look like a JSON array (a MAIL FROM of `["x"]`) stays a string.
pub const LIST_FIELDS: &[&str] = &["recipients", "methods", "codes"];

/// A list for a log field: shown as a JSON array (`["a","b"]`) in both formats, and a real
/// array in the JSON format when the field name is in [`LIST_FIELDS`].
pub struct List<'a, T>(pub &'a [T]);

impl<T: AsRef<str>> fmt::Display for List<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<&str> = self.0.iter().map(AsRef::as_ref).collect();
        let text = serde_json::to_string(&items).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

/// An optional value for a log field: its Display form, or `none`.
pub struct OrNone<T>(pub Option<T>);

impl<T: fmt::Display> fmt::Display for OrNone<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("none"),
        }
    }
}
