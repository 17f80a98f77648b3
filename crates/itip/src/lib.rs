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
    DelegationQuery, DenyAllDelegations, Failure, NotCorrelated, PolicyUnavailable, Role,
    correlate,
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

use serde::Serialize;

/// The iTIP method of an iCalendar object (RFC 5546 section 1.4, "METHOD" property of
/// RFC 5545 section 3.7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Method {
    /// "Post notification of an event" (RFC 5546 section 3.2.1).
    Publish,
    /// "Make a request for an event" (section 3.2.2).
    Request,
    /// "Reply to an event request" (section 3.2.3).
    Reply,
    /// "Add one or more instances to an existing event" (section 3.2.4).
    Add,
    /// "Cancel one or more instances of an existing event" (section 3.2.5).
    Cancel,
    /// An Attendee asks the Organizer for the latest version (section 3.2.6).
    Refresh,
    /// "Counter a REQUEST with an alternative proposal" (section 3.2.7).
    Counter,
    /// "Decline a counter proposal" (section 3.2.8).
    DeclineCounter,
}

/// Which side of a scheduling exchange sends a method (RFC 5546 section 1.4: "PUBLISH,
/// REQUEST, ADD, CANCEL, DECLINECOUNTER" are Organizer methods, "REPLY, REFRESH, COUNTER"
/// Attendee methods).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Side {
    /// Sent by the Organizer.
    Organizer,
    /// Sent by an Attendee.
    Attendee,
}

impl Method {
    /// Every method, in RFC 5546 order.
    pub const ALL: [Method; 8] = [
        Method::Publish,
        Method::Request,
        Method::Reply,
        Method::Add,
        Method::Cancel,
        Method::Refresh,
        Method::Counter,
        Method::DeclineCounter,
    ];

    /// The METHOD value as written in iCalendar (upper case).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Publish => "PUBLISH",
            Method::Request => "REQUEST",
            Method::Reply => "REPLY",
            Method::Add => "ADD",
            Method::Cancel => "CANCEL",
            Method::Refresh => "REFRESH",
            Method::Counter => "COUNTER",
            Method::DeclineCounter => "DECLINECOUNTER",
        }
    }

    /// The side that sends this method (RFC 5546 section 1.4).
    pub fn side(self) -> Side {
        match self {
            Method::Publish
            | Method::Request
            | Method::Add
            | Method::Cancel
            | Method::DeclineCounter => Side::Organizer,
            Method::Reply | Method::Refresh | Method::Counter => Side::Attendee,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The METHOD value is not one of the eight iTIP methods.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown iTIP method")]
pub struct UnknownMethod;

impl std::str::FromStr for Method {
    type Err = UnknownMethod;

    /// Case-insensitive, as iCalendar values of this kind are (RFC 5545 section 3.1).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or(UnknownMethod)
    }
}

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
            attendees: 5_000,
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
