#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod address;
mod correlate;
mod cross_check;
mod error;
mod model;
mod parse;
pub mod restrictions;
mod scan;
#[rustfmt::skip]
mod table;

pub use address::CalAddress;
pub use correlate::{
    Authorization, ComponentOutcome, CorrelateOptions, Correlation, DelegationPolicy,
    DelegationQuery, DenyAllDelegations, Failure, NotCorrelated, PolicyUnavailable, correlate,
};
pub use error::{
    Deviation, Diagnostic, ItipError, LimitExceeded, LimitKind, LineDefect, Malformed, Rule,
    Violation, Warning,
};
pub use model::{
    Attendee, Component, ItipMessage, Organizer, ParticipationRole, ParticipationStatus,
    RecurrenceId,
};
pub use parse::{diagnose, parse_itip, parse_itip_all};
pub use scan::check_content_line;

use serde::Serialize;

pub use imipsec_types::{Method, Role, Side, UnknownMethod};

/// The scheduling component type an iTIP message carries (RFC 5546 sections 3.2-3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ComponentKind {
    /// VEVENT (section 3.2).
    Event,
    /// VTODO (section 3.4).
    Todo,
    /// VJOURNAL (section 3.5).
    Journal,
    /// VFREEBUSY (section 3.3).
    FreeBusy,
}

impl ComponentKind {
    /// The component name as written after BEGIN:.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Event => "VEVENT",
            ComponentKind::Todo => "VTODO",
            ComponentKind::Journal => "VJOURNAL",
            ComponentKind::FreeBusy => "VFREEBUSY",
        }
    }

    /// Parses a component name (case-insensitive); `None` for anything that is not a
    /// scheduling component (VTIMEZONE, VALARM, X- and IANA components).
    pub fn from_name(name: &str) -> Option<ComponentKind> {
        [
            ComponentKind::Event,
            ComponentKind::Todo,
            ComponentKind::Journal,
            ComponentKind::FreeBusy,
        ]
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Named bounds on untrusted input; each has its own [`LimitKind`] in
/// [`ItipError::Limit`]. The defaults are generous for real invitations (hundreds of
/// attendees, dozens of overrides) and keep work linear and small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of the calendar text in bytes.
    pub bytes: usize,
    /// Maximum number of components (every BEGIN, VCALENDAR included).
    pub components: usize,
    /// Maximum number of content lines (properties, BEGIN/END included) in the object.
    pub properties: usize,
    /// Maximum number of ATTENDEE properties in one component.
    pub attendees: usize,
    /// Maximum length in bytes of one unfolded content line.
    pub line_length: usize,
    /// Maximum component nesting depth (VCALENDAR > VEVENT > VALARM is 3).
    pub nesting: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            bytes: 4 * 1024 * 1024,
            components: 2_000,
            properties: 50_000,
            attendees: imipsec_types::DEFAULT_ATTENDEES_PER_COMPONENT,
            line_length: 64 * 1024,
            nesting: 8,
        }
    }
}

/// How strictly [`parse_itip`] reads its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseOptions {
    /// Turn the tolerable defects (missing `charset` or `method` Content-Type parameter,
    /// blank lines, bare LF line ends) from warnings into errors.
    pub strict: bool,
    /// Input bounds.
    pub limits: Limits,
    /// Skip the calcard second opinion: calcard parsing the whole text and agreeing on the
    /// component tree, every property's name and order, and every property the decision
    /// reads. It guards against parser differentials (the store seeing another organizer,
    /// attendee or UID than the gate) and is more than half the cost of [`parse_itip`];
    /// skip it only if the calendar store that consumes accepted messages re-parses them
    /// with this crate's model. The scanner's strict rules (placement, vCalendar 1.0,
    /// UTF-8) apply either way.
    pub danger_skip_cross_check: bool,
}

/// Parameters of the `text/calendar` Content-Type the calendar text came in
/// (RFC 6047 section 2.4: "method" is required and must match METHOD; "charset").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MimeParams<'a> {
    /// The `method` parameter.
    pub method: Option<&'a str>,
    /// The `charset` parameter.
    pub charset: Option<&'a str>,
    /// The `component` parameter (RFC 5545 section 8.1), if any.
    pub component: Option<&'a str>,
}
