//! Typed errors, warnings and diagnostics of parsing and validation.

use serde::Serialize;

use crate::restrictions::Presence;
use crate::{ComponentKind, Method};

/// Why [`crate::parse_itip`] rejected a calendar text. Every variant has a stable
/// [`code`](ItipError::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[non_exhaustive]
pub enum ItipError {
    /// A named [`crate::Limits`] bound was exceeded (`limit-exceeded`).
    #[error(transparent)]
    Limit(#[from] LimitExceeded),
    /// The text is not a well-formed iCalendar object (`malformed-icalendar`).
    #[error(transparent)]
    Malformed(#[from] Malformed),
    /// The Content-Type `method` parameter differs from METHOD, or is missing in strict
    /// mode (RFC 6047 section 2.4) (`method-mismatch`).
    #[error("{}", method_mismatch(content_type.as_deref(), *calendar))]
    MethodMismatch {
        /// The Content-Type parameter (`None`: absent).
        content_type: Option<String>,
        /// The METHOD of the calendar.
        calendar: Method,
    },
    /// The Content-Type `component` parameter names another component type
    /// (`method-mismatch`).
    #[error(
        "the text/calendar Content-Type says component={content_type}, the calendar carries \
         {calendar} (RFC 6047 §2.4: the component parameter names the calendar's component)"
    )]
    ComponentMismatch {
        /// The Content-Type parameter.
        content_type: String,
        /// The component type of the calendar.
        calendar: ComponentKind,
    },
    /// Strict mode: the Content-Type has no `charset` parameter (`malformed-icalendar`).
    #[error(
        "the text/calendar Content-Type has no charset parameter (RFC 6047 §2.4, RFC 2046 \
         §4.1.2: without it text/* is US-ASCII; strict mode requires charset=UTF-8)"
    )]
    MissingCharset,
    /// RFC 5546 defines no table for this method on this component type (for example
    /// REFRESH of a VJOURNAL) (`restriction-violation`).
    #[error("RFC 5546 does not define METHOD:{method} for {kind}")]
    MethodNotDefined {
        /// The METHOD.
        method: Method,
        /// The component type.
        kind: ComponentKind,
    },
    /// A row of an RFC 5546 section 3 restriction table is violated
    /// (`restriction-violation`).
    #[error(transparent)]
    Restriction(#[from] Violation),
    /// The components of one object name different ORGANIZERs (or some name one and some
    /// none): one object is about one event of one organizer, for every method, REPLY
    /// included (RFC 5546 §3.2.3: ORGANIZER "MUST be the Organizer of the original
    /// event") (`organizer-mismatch`).
    #[error(
        "byte {offset}: ORGANIZER: the components of one object name different organizers, \
         {first} and {other} (RFC 5546 §3.2.3: one object is about one event of its Organizer)"
    )]
    OrganizerMismatch {
        /// The first component's ORGANIZER (`none` when absent).
        first: String,
        /// The differing one.
        other: String,
        /// Offset of the BEGIN line of the component that differs.
        offset: usize,
    },
}

/// The value type a date property must have, with its rule, for a report.
fn date_time_type(property: &str) -> &'static str {
    match property {
        "DTSTAMP" | "CREATED" | "LAST-MODIFIED" | "COMPLETED" => {
            "DATE-TIME (RFC 5545 §3.3.5; UTC, §3.8.7.2)"
        }
        _ => "DATE or DATE-TIME (RFC 5545 §3.3.4, §3.3.5)",
    }
}

fn method_mismatch(content_type: Option<&str>, calendar: Method) -> String {
    match content_type {
        Some(m) => format!(
            "the text/calendar Content-Type says method={m}, the calendar METHOD:{calendar} \
             (RFC 6047 §2.4: they must be equal)"
        ),
        None => format!(
            "the text/calendar Content-Type has no method parameter (RFC 6047 §2.4 requires \
             one equal to METHOD:{calendar})"
        ),
    }
}

impl ItipError {
    /// The stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            ItipError::Limit(_) => "limit-exceeded",
            ItipError::Malformed(_) | ItipError::MissingCharset => "malformed-icalendar",
            ItipError::MethodMismatch { .. } | ItipError::ComponentMismatch { .. } => {
                "method-mismatch"
            }
            ItipError::MethodNotDefined { .. } | ItipError::Restriction(_) => {
                "restriction-violation"
            }
            ItipError::OrganizerMismatch { .. } => "organizer-mismatch",
        }
    }
}

/// Which [`crate::Limits`] field was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LimitKind {
    /// [`crate::Limits::bytes`].
    Bytes,
    /// [`crate::Limits::components`].
    Components,
    /// [`crate::Limits::properties`].
    Properties,
    /// [`crate::Limits::attendees`].
    Attendees,
    /// [`crate::Limits::line_length`].
    LineLength,
    /// [`crate::Limits::nesting`].
    Nesting,
}

impl LimitKind {
    /// The name of the [`crate::Limits`] field.
    pub fn field(self) -> &'static str {
        match self {
            LimitKind::Bytes => "bytes",
            LimitKind::Components => "components",
            LimitKind::Properties => "properties",
            LimitKind::Attendees => "attendees",
            LimitKind::LineLength => "line_length",
            LimitKind::Nesting => "nesting",
        }
    }
}

/// A bound of [`crate::Limits`] was exceeded at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("byte {offset}: {} (Limits::{})", limit_text(*limit, *max), limit.field())]
pub struct LimitExceeded {
    /// The limit.
    pub limit: LimitKind,
    /// Its configured value.
    pub max: usize,
    /// Byte offset where the input went over it.
    pub offset: usize,
}

fn limit_text(limit: LimitKind, max: usize) -> String {
    match limit {
        LimitKind::Bytes => format!("the calendar text is longer than {max} bytes"),
        LimitKind::Components => format!("more than {max} components"),
        LimitKind::Properties => format!("more than {max} content lines"),
        LimitKind::Attendees => format!("more than {max} ATTENDEE properties in one component"),
        LimitKind::LineLength => format!("an unfolded content line longer than {max} bytes"),
        LimitKind::Nesting => format!("components nested more than {max} deep"),
    }
}

impl LimitExceeded {
    /// The stable reason code, `limit-exceeded`.
    pub fn code(&self) -> &'static str {
        "limit-exceeded"
    }
}

impl Malformed {
    /// The stable reason code, `malformed-icalendar`.
    pub fn code(&self) -> &'static str {
        "malformed-icalendar"
    }

    /// Every byte offset of the finding, through `map`: a caller that parsed a converted
    /// copy of the text (line ends made CRLF) reports offsets into the text as received.
    /// The offsets inside a [`Malformed::ParserDifferential`]'s calcard detail are text and
    /// stay as they are.
    pub fn map_offsets(&mut self, map: &dyn Fn(usize) -> usize) {
        match self {
            Malformed::MismatchedEnd {
                begin_offset,
                offset,
                ..
            } => {
                *begin_offset = map(*begin_offset);
                *offset = map(*offset);
            }
            Malformed::NotCalendar { offset, .. }
            | Malformed::ContentOutsideCalendar { offset, .. }
            | Malformed::SecondCalendar { offset }
            | Malformed::UnexpectedEnd { offset, .. }
            | Malformed::Unclosed { offset, .. }
            | Malformed::NotUtf8 { offset, .. }
            | Malformed::ControlCharacter { offset, .. }
            | Malformed::ContentLine { offset, .. }
            | Malformed::BareLineFeed { offset, .. }
            | Malformed::ComponentName { offset }
            | Malformed::UnknownMethod { offset, .. }
            | Malformed::InvalidDateTime { offset, .. }
            | Malformed::InvalidStatus { offset, .. }
            | Malformed::InvalidSequence { offset, .. }
            | Malformed::CalAddressWithoutScheme { offset, .. }
            | Malformed::MisplacedComponent { offset, .. }
            | Malformed::MisplacedProperty { offset, .. }
            | Malformed::LegacyVCalendar { offset, .. } => *offset = map(*offset),
            Malformed::NoCalendar
            | Malformed::MissingMethod { .. }
            | Malformed::NoSchedulingComponent
            | Malformed::ParserDifferential { .. } => {}
        }
    }
}

impl ItipError {
    /// Every byte offset of the error, through `map` (see [`Malformed::map_offsets`]).
    pub fn map_offsets(&mut self, map: &dyn Fn(usize) -> usize) {
        match self {
            ItipError::Limit(limit) => limit.offset = map(limit.offset),
            ItipError::Malformed(malformed) => malformed.map_offsets(map),
            ItipError::Restriction(violation) => violation.offset = map(violation.offset),
            ItipError::OrganizerMismatch { offset, .. } => *offset = map(*offset),
            ItipError::MethodMismatch { .. }
            | ItipError::ComponentMismatch { .. }
            | ItipError::MissingCharset
            | ItipError::MethodNotDefined { .. } => {}
        }
    }
}

impl Warning {
    /// Every byte offset of the warning, through `map` (see [`Malformed::map_offsets`]).
    pub fn map_offsets(&mut self, map: &dyn Fn(usize) -> usize) {
        match self {
            Warning::BlankLine { offset }
            | Warning::BareLineFeed { offset, .. }
            | Warning::NonMailtoAddress { offset, .. }
            | Warning::IcalendarDeviation { offset, .. } => *offset = map(*offset),
            Warning::MissingCharset | Warning::MissingMethodParameter | Warning::SeveralUids => {}
        }
    }
}

impl Violation {
    /// The stable reason code, `restriction-violation`.
    pub fn code(&self) -> &'static str {
        "restriction-violation"
    }
}

/// Structural or value defects of the iCalendar text (RFC 5545). Offsets are byte
/// offsets of the start of the (folded) content line in the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[non_exhaustive]
pub enum Malformed {
    /// The text contains no BEGIN:VCALENDAR.
    #[error("no BEGIN:VCALENDAR object (RFC 5545 §3.4, §3.6)")]
    NoCalendar,
    /// The first component is not VCALENDAR.
    #[error("byte {offset}: top-level component is BEGIN:{name}, not VCALENDAR (RFC 5545 §3.4)")]
    NotCalendar {
        /// Offset of the BEGIN line.
        offset: usize,
        /// The component name found.
        name: String,
    },
    /// Content before BEGIN:VCALENDAR or after END:VCALENDAR.
    #[error(
        "byte {offset}: {property}: content line outside the VCALENDAR object (RFC 5545 §3.4: \
         the object is BEGIN:VCALENDAR ... END:VCALENDAR)"
    )]
    ContentOutsideCalendar {
        /// The line's property name as written (cut at 64 bytes).
        property: String,
        /// Offset of the line.
        offset: usize,
    },
    /// A second VCALENDAR object: one iTIP message is one iCalendar object.
    #[error(
        "byte {offset}: a second BEGIN:VCALENDAR object (RFC 6047 §2.4: one iTIP message, one \
         iCalendar object per text/calendar part)"
    )]
    SecondCalendar {
        /// Offset of the second BEGIN:VCALENDAR.
        offset: usize,
    },
    /// `BEGIN:<begin>` closed by `END:<end>` (the iMIP draft's example 4.5).
    #[error(
        "byte {offset}: BEGIN:{begin} (byte {begin_offset}) closed by END:{end} (RFC 5545 §3.6: \
         END names the component BEGIN opened)"
    )]
    MismatchedEnd {
        /// The open component.
        begin: String,
        /// Offset of its BEGIN line.
        begin_offset: usize,
        /// The name after END:.
        end: String,
        /// Offset of the END line.
        offset: usize,
    },
    /// END without an open component.
    #[error("byte {offset}: END:{end} without BEGIN (RFC 5545 §3.6)")]
    UnexpectedEnd {
        /// The name after END:.
        end: String,
        /// Offset of the END line.
        offset: usize,
    },
    /// A component is never closed.
    #[error("byte {offset}: BEGIN:{component} is never closed by END:{component} (RFC 5545 §3.6)")]
    Unclosed {
        /// The component name.
        component: String,
        /// Offset of its BEGIN line.
        offset: usize,
    },
    /// A content line (after unfolding) is not valid UTF-8.
    #[error(
        "byte {offset}: {property}: content line is not UTF-8 (RFC 5545 §3.1.4: iCalendar \
         text is UTF-8)"
    )]
    NotUtf8 {
        /// The line's property name as written (its leading letters, digits, `-` and `_`,
        /// cut at 64 bytes).
        property: String,
        /// Offset of the line.
        offset: usize,
    },
    /// A control character other than HTAB (bare CR included) inside a content line.
    #[error(
        "byte {offset}: {property}: control character in the content line (RFC 5545 §3.1, \
         §3.3.11: no CTL but HTAB)"
    )]
    ControlCharacter {
        /// The line's property name as written (cut at 64 bytes).
        property: String,
        /// Offset of the line.
        offset: usize,
    },
    /// The content line does not follow `name *(";" param) ":" value` (RFC 5545 3.1).
    #[error(
        "byte {offset}: {}malformed content line: {defect}",
        if property.is_empty() { String::new() } else { format!("{property}: ") }
    )]
    ContentLine {
        /// The property name as written (cut at 64 bytes; empty when the line has none,
        /// a blank line included).
        property: String,
        /// Which rule of RFC 5545 §3.1 the line breaks.
        defect: LineDefect,
        /// Offset of the line.
        offset: usize,
    },
    /// Strict mode: a line ends in a bare LF (lenient mode: [`Warning::BareLineFeed`]).
    #[error(
        "byte {offset}: {property}: the line ends in a bare LF (RFC 5545 §3.1: a content line \
         ends in CRLF)"
    )]
    BareLineFeed {
        /// The line's property name as written (cut at 64 bytes).
        property: String,
        /// Offset of the LF.
        offset: usize,
    },
    /// BEGIN or END without a valid component name.
    #[error("byte {offset}: BEGIN/END without a component name (RFC 5545 §3.6)")]
    ComponentName {
        /// Offset of the line.
        offset: usize,
    },
    /// No METHOD property. `profile` holds the value of a draft-era PROFILE property
    /// found instead (the iMIP draft's example 4.6 writes `PROFILE:REQUEST`).
    #[error("no METHOD property (RFC 5546 §3: every iTIP object has one; RFC 6047 §2.4){}", profile.as_ref().map(|p| format!(", found draft-era PROFILE:{p} instead")).unwrap_or_default())]
    MissingMethod {
        /// Value of a PROFILE property, if present.
        profile: Option<String>,
    },
    /// METHOD names no iTIP method.
    #[error(
        "byte {offset}: METHOD:{value} is no iTIP method (RFC 5546 §1.4: PUBLISH, REQUEST, \
         REPLY, ADD, CANCEL, REFRESH, COUNTER, DECLINECOUNTER)"
    )]
    UnknownMethod {
        /// The value.
        value: String,
        /// Offset of the line.
        offset: usize,
    },
    /// The object contains no VEVENT, VTODO, VJOURNAL or VFREEBUSY.
    #[error(
        "no scheduling component: VEVENT, VTODO, VJOURNAL or VFREEBUSY (RFC 5546 §3: every \
         method carries one)"
    )]
    NoSchedulingComponent,
    /// A DATE or DATE-TIME value that is not one (RFC 5545 sections 3.3.4, 3.3.5), like
    /// the draft's `DTEND:199706211T210000Z`.
    #[error(
        "byte {offset}: {property}: invalid {} {value:?}",
        date_time_type(property)
    )]
    InvalidDateTime {
        /// The property name.
        property: String,
        /// The value.
        value: String,
        /// Offset of the line.
        offset: usize,
    },
    /// A STATUS value not defined for the component (RFC 5545 section 3.8.1.11), like
    /// the draft's `STATUS:NEEDS ACTION` (the value is `NEEDS-ACTION`).
    #[error("byte {offset}: STATUS:{value} is not a {kind} status (RFC 5545 §3.8.1.11)")]
    InvalidStatus {
        /// The value.
        value: String,
        /// The component it is in.
        kind: ComponentKind,
        /// Offset of the line.
        offset: usize,
    },
    /// SEQUENCE is not a non-negative integer (RFC 5545 section 3.8.7.4).
    #[error(
        "byte {offset}: SEQUENCE: invalid INTEGER {value:?} (RFC 5545 §3.3.8, §3.8.7.4: a non-negative integer)"
    )]
    InvalidSequence {
        /// The value.
        value: String,
        /// Offset of the line.
        offset: usize,
    },
    /// A CAL-ADDRESS value (ORGANIZER, ATTENDEE, SENT-BY, DELEGATED-*) that is not a URI
    /// at all (no scheme), like the draft's `ORGANIZER:foo1@example.com` (RFC 5545
    /// section 3.3.3).
    #[error(
        "byte {offset}: {property} value {value:?} is not a URI (RFC 5545 §3.3.3 CAL-ADDRESS; mailto: missing)"
    )]
    CalAddressWithoutScheme {
        /// The property (or `PROPERTY;PARAMETER`).
        property: String,
        /// The value.
        value: String,
        /// Offset of the line.
        offset: usize,
    },
    /// A component where RFC 5545 allows none: a VEVENT nested in a VEVENT or in an X-
    /// component, a VALARM outside VEVENT and VTODO, a STANDARD outside a VTIMEZONE, a
    /// second VCALENDAR inside the first (RFC 5545 sections 3.4 and 3.6).
    #[error(
        "byte {offset}: BEGIN:{component} inside {parent} (RFC 5545 §3.6 allows it only elsewhere)"
    )]
    MisplacedComponent {
        /// The component.
        component: String,
        /// The component it was opened in.
        parent: String,
        /// Offset of its BEGIN line.
        offset: usize,
    },
    /// METHOD, ORGANIZER, ATTENDEE, UID or RECURRENCE-ID outside the components where
    /// the decision reads them (an ORGANIZER in an X- component or in a VTIMEZONE).
    #[error(
        "byte {offset}: {property} inside {component}, where the decision does not read it \
         (RFC 5545 §3.6, RFC 5546 §3: it belongs in the scheduling component)"
    )]
    MisplacedProperty {
        /// The property.
        property: String,
        /// The component it stands in.
        component: String,
        /// Offset of the line.
        offset: usize,
    },
    /// A construct of vCalendar 1.0 or of another version than RFC 5545's 2.0: VERSION
    /// other than 2.0, ENCODING other than 8BIT or BASE64 (QUOTED-PRINTABLE soft line
    /// breaks join physical lines in lenient readers), a CHARSET or BASE64 parameter.
    #[error(
        "byte {offset}: {construct} is not RFC 5545 iCalendar 2.0 (vCalendar 1.0 or unknown \
         version; RFC 5545 §3.7.4 VERSION:2.0, §3.2.7 ENCODING)"
    )]
    LegacyVCalendar {
        /// What was found.
        construct: String,
        /// Offset of the line.
        offset: usize,
    },
    /// The calcard parser, run as a second opinion, rejected the text or read its
    /// component tree or a property the decision depends on differently (a parser
    /// differential).
    #[error(
        "parser differential, the calcard cross-check disagrees: {detail} (text that two \
         RFC 5545 §3.1 readers read differently is refused)"
    )]
    ParserDifferential {
        /// What calcard reported.
        detail: String,
    },
}

/// Which rule of the content-line grammar (RFC 5545 §3.1) a line breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum LineDefect {
    /// An empty line (strict mode; otherwise a warning).
    Blank,
    /// No `:` before the value.
    NoValue,
    /// The property name is empty or holds a character other than a letter, digit or `-`
    /// (an `_` is tolerated in X- names only, see [`Deviation::UnderscoreInXName`]).
    PropertyName,
    /// A parameter name is empty or holds a character other than a letter, digit or `-`,
    /// or has no `=`.
    ParameterName,
    /// A quoted parameter value is not closed, or a `"` stands inside an unquoted one.
    Quote,
    /// The same parameter is given twice (readers differ on which one counts).
    RepeatedParameter,
}

impl std::fmt::Display for LineDefect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LineDefect::Blank => "empty line (RFC 5545 §3.1 allows none)",
            LineDefect::NoValue => "no ':' before the value (RFC 5545 §3.1 contentline)",
            LineDefect::PropertyName => {
                "the name is not letters, digits and '-' (RFC 5545 §3.1 iana-token / x-name)"
            }
            LineDefect::ParameterName => {
                "a parameter is not name=value with a name of letters, digits and '-' \
                 (RFC 5545 §3.1 param)"
            }
            LineDefect::Quote => {
                "a quoted parameter value is not closed, or '\"' stands in an unquoted one \
                 (RFC 5545 §3.1 param-value)"
            }
            LineDefect::RepeatedParameter => {
                "a parameter given twice (RFC 5545 §3.2: readers differ on which one counts)"
            }
        })
    }
}

/// A deviation from RFC 5545/5546 that real clients write, that no decision reads and on
/// which the parsers behind the gate (calcard, libical) agree: accepted with the warning
/// [`Warning::IcalendarDeviation`], refused in strict mode. The interoperability profile
/// in the crate README lists each with the clients that need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum Deviation {
    /// An `_` in the name of an X- property (`X-ENTOURAGE_UUID`, `X-LOTUS-CHILD_UID`).
    UnderscoreInXName,
    /// A VALARM in a REPLY (RFC 5546 §3.2.3 and §3.4.3 list VALARM as 0).
    AlarmInReply,
    /// A REQUEST without SUMMARY (RFC 5546 §3.2.2, §3.4.2 list it as 1).
    RequestWithoutSummary,
    /// A COUNTER or DECLINECOUNTER without SEQUENCE (RFC 5546 §3.2.7, §3.2.8, §3.4.8 list
    /// it as 1; RFC 5545 §3.8.7.4 makes an absent SEQUENCE 0).
    CounterWithoutSequence,
}

impl Deviation {
    /// Every tolerated deviation, in the order of the profile table.
    pub const ALL: [Deviation; 4] = [
        Deviation::UnderscoreInXName,
        Deviation::AlarmInReply,
        Deviation::RequestWithoutSummary,
        Deviation::CounterWithoutSequence,
    ];

    /// The RFC rule it breaks.
    pub fn rule(self) -> &'static str {
        match self {
            Deviation::UnderscoreInXName => {
                "RFC 5545 §3.1: an x-name is letters, digits and '-' only"
            }
            Deviation::AlarmInReply => "RFC 5546 §3.2.3/§3.4.3: VALARM 0 in a REPLY",
            Deviation::RequestWithoutSummary => {
                "RFC 5546 §3.2.2/§3.4.2: SUMMARY 1 in a REQUEST (it may be empty)"
            }
            Deviation::CounterWithoutSequence => {
                "RFC 5546 §3.2.7/§3.2.8/§3.4.8: SEQUENCE 1 in a COUNTER or DECLINECOUNTER"
            }
        }
    }
}

/// The rule of a restriction table row that was broken. Its `Display` is the rule in
/// words, to follow the property name ("ORGANIZER must occur exactly once").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Rule {
    /// The presence count ("1", "1+", "0", "0 or 1") was not met.
    Presence(Presence),
    /// "If present, `<other>` MUST NOT be present."
    Excludes(&'static str),
    /// "If present, `<other>` MUST be present."
    Requires(&'static str),
    /// VERSION "Value MUST be 2.0."
    VersionTwo,
    /// "All components MUST have the same UID." (RFC 5546 sections 3.2.2, 3.2.3, 3.2.5,
    /// 3.2.8, 3.4.2, 3.4.3, 3.5.3); this crate applies it to every method but PUBLISH.
    SameUid,
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::Presence(Presence::One) => f.write_str("must occur exactly once"),
            Rule::Presence(Presence::OneOrMore) => f.write_str("must occur at least once"),
            Rule::Presence(Presence::Zero) => f.write_str("must not occur"),
            Rule::Presence(Presence::ZeroOrMore) => f.write_str("may occur any number of times"),
            Rule::Presence(Presence::ZeroOrOne) => f.write_str("may occur at most once"),
            Rule::Excludes(other) => write!(f, "must not occur together with {other}"),
            Rule::Requires(other) => write!(f, "requires {other} to be present"),
            Rule::VersionTwo => f.write_str("must be 2.0"),
            Rule::SameUid => f.write_str("must all have the same UID"),
        }
    }
}

/// One violated row of an RFC 5546 section 3 restriction table. Displayed as, for
/// example, `REQUEST VEVENT: ORGANIZER must occur exactly once (RFC 5546 §3.2.2), found 0`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error(
    "{}{component}: {property} {rule} (RFC 5546 §{section}){}",
    method.map(|m| format!("{m} ")).unwrap_or_default(),
    match rule { Rule::Presence(_) => format!(", found {found}"), _ => String::new() }
)]
pub struct Violation {
    /// The RFC 5546 section of the table.
    pub section: &'static str,
    /// The method of the table (`None` for the common VCALENDAR, VTIMEZONE, VALARM tables).
    pub method: Option<Method>,
    /// The component the row applies in (`VCALENDAR`, `VEVENT`, `VALARM`, ...).
    pub component: String,
    /// The property or sub-component of the row.
    pub property: &'static str,
    /// The rule broken.
    pub rule: Rule,
    /// How many instances were found.
    pub found: usize,
    /// Byte offset of the component's BEGIN line.
    pub offset: usize,
}

/// A tolerated defect, kept on the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[non_exhaustive]
pub enum Warning {
    /// The Content-Type has no `charset` parameter (an error in strict mode).
    #[error(
        "the text/calendar Content-Type has no charset parameter; UTF-8 is assumed \
         (RFC 6047 §2.4)"
    )]
    MissingCharset,
    /// The Content-Type has no `method` parameter (an error in strict mode).
    #[error("the text/calendar Content-Type has no method parameter (RFC 6047 §2.4 requires one)")]
    MissingMethodParameter,
    /// An empty line (RFC 5545 allows none) was skipped.
    #[error("byte {offset}: blank line skipped (RFC 5545 §3.1 allows none)")]
    BlankLine {
        /// Its offset.
        offset: usize,
    },
    /// Lines end in a bare LF instead of CRLF (reported once).
    #[error(
        "byte {offset}: {property}: lines end in a bare LF instead of CRLF (RFC 5545 §3.1), \
         the first here"
    )]
    BareLineFeed {
        /// The property of the first such line, as written (cut at 64 bytes).
        property: String,
        /// Offset of the first one.
        offset: usize,
    },
    /// A cal-address with a URI scheme other than `mailto:`: it never matches a signer.
    #[error(
        "byte {offset}: {property} value {value:?} is not a plain mailto: address and matches \
         no signer (RFC 6047 §2.3: iMIP addresses are mailto: URIs)"
    )]
    NonMailtoAddress {
        /// The property (or `PROPERTY;PARAMETER`).
        property: String,
        /// The value.
        value: String,
        /// Offset of the line.
        offset: usize,
    },
    /// Several UIDs in one PUBLISH object (RFC 5546 §3.2.1 allows several events; every
    /// other method must carry one UID, a [`Rule::SameUid`] violation).
    #[error(
        "UID: several UIDs in one PUBLISH object; each component is authorized on its own \
         (RFC 5546 §3.2.1)"
    )]
    SeveralUids,
    /// A deviation of the interoperability profile ([`Deviation`]): real clients write
    /// it, no decision reads it; an error in strict mode.
    #[error("byte {offset}: {property}: tolerated deviation from {} ({})", deviation.rule(), deviation_note(*deviation))]
    IcalendarDeviation {
        /// Which deviation.
        deviation: Deviation,
        /// The property (or component) that deviates, as written.
        property: String,
        /// Offset of its line (or of the component's BEGIN line).
        offset: usize,
    },
}

fn deviation_note(deviation: Deviation) -> &'static str {
    match deviation {
        Deviation::UnderscoreInXName => "an X- property no decision reads",
        Deviation::AlarmInReply => "an alarm decides nothing",
        Deviation::RequestWithoutSummary => "the title decides nothing",
        Deviation::CounterWithoutSequence => "absent means 0, RFC 5545 §3.8.7.4",
    }
}

/// One finding of [`crate::diagnose`]: an error that would make [`crate::parse_itip`]
/// fail, or a warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Diagnostic {
    /// Fatal for [`crate::parse_itip`].
    Error(ItipError),
    /// Tolerated.
    Warning(Warning),
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Diagnostic::Error(e) => write!(f, "error ({}): {e}", e.code()),
            Diagnostic::Warning(w) => write!(f, "warning: {w}"),
        }
    }
}

impl Diagnostic {
    /// The stable code: the error's code, or `warning`.
    pub fn code(&self) -> &'static str {
        match self {
            Diagnostic::Error(e) => e.code(),
            Diagnostic::Warning(_) => "warning",
        }
    }
}
