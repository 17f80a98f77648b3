//! The typed iTIP model (RFC 5546 section 3, properties of RFC 5545 section 3.8).

use serde::Serialize;

use imipsec_types::{
    Observance, ObservanceKind, RecurrenceKey, RecurrenceKeyError, TimeZones, VTimezone, ZoneValue,
};

use crate::address::CalAddress;
use crate::error::Warning;
use crate::{ComponentKind, Method};

/// A validated iTIP message: one iCalendar object with one METHOD and one scheduling
/// component type (RFC 5546 section 3: VTIMEZONE aside, "MUST NOT" mix types).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItipMessage {
    /// METHOD.
    pub method: Method,
    /// The one scheduling component type.
    pub kind: ComponentKind,
    /// Every scheduling component (master and overrides), in document order.
    pub components: Vec<Component>,
    /// Tolerated defects.
    pub warnings: Vec<Warning>,
    /// Every VTIMEZONE of the calendar as written (RFC 5545 §3.6.5): what a TZID-relative
    /// RECURRENCE-ID is resolved through ([`RecurrenceId::key`]).
    #[serde(skip)]
    pub timezones: Vec<VTimezone>,
}

/// One VEVENT, VTODO, VJOURNAL or VFREEBUSY with the properties scheduling relies on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    /// Its type.
    pub kind: ComponentKind,
    /// Byte offset of its BEGIN line.
    pub offset: usize,
    /// UID (RFC 5545 3.8.4.7).
    pub uid: Option<String>,
    /// RECURRENCE-ID (RFC 5545 3.8.4.4): present on an override of one instance.
    pub recurrence_id: Option<RecurrenceId>,
    /// SEQUENCE (RFC 5545 3.8.7.4).
    pub sequence: Option<u32>,
    /// DTSTAMP as written (RFC 5545 3.8.7.2).
    pub dtstamp: Option<String>,
    /// DTSTAMP read once as the UTC instant the event state orders by (RFC 5546 §2.1.5);
    /// `None` when absent or not a UTC DATE-TIME naming an instant (a leap second).
    #[serde(skip)]
    pub dtstamp_utc: Option<imipsec_types::Timestamp>,
    /// ORGANIZER (RFC 5545 3.8.4.3).
    pub organizer: Option<Organizer>,
    /// Every ATTENDEE (RFC 5545 3.8.4.1).
    pub attendees: Vec<Attendee>,
}

/// RECURRENCE-ID value and its RANGE parameter (RFC 5545 3.2.13), keyed in the context of
/// its own calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecurrenceId {
    /// The value as written.
    pub value: String,
    /// TZID parameter.
    pub tzid: Option<String>,
    /// `RANGE=THISANDFUTURE`.
    pub this_and_future: bool,
    /// The key, resolved when the calendar was parsed, through that calendar's VTIMEZONEs
    /// only: built here, so a key can never be resolved through another message's zones.
    #[serde(skip)]
    key: Result<RecurrenceKey, RecurrenceKeyError>,
}

impl RecurrenceId {
    /// The canonical key of the instance ([`imipsec_types::RecurrenceKey`]): UTC, DATE and
    /// floating values have one text each; a TZID-relative value keys its UTC instant,
    /// resolved through the calendar's VTIMEZONE, and is refused
    /// ([`RecurrenceKeyError::TzidRelative`], `unsupported-recurrence-id`) when that
    /// VTIMEZONE is missing, ambiguous or outside the evaluator's subset.
    pub fn key(&self) -> Result<RecurrenceKey, RecurrenceKeyError> {
        self.key.clone()
    }
}

/// The ORGANIZER property (RFC 5545 3.8.4.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organizer {
    /// The cal-address.
    pub address: CalAddress,
    /// CN (display only; never compared).
    pub common_name: Option<String>,
    /// SENT-BY (RFC 5545 3.2.18): who sends on the organizer's behalf.
    pub sent_by: Option<CalAddress>,
}

/// The ATTENDEE property (RFC 5545 3.8.4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attendee {
    /// The cal-address.
    pub address: CalAddress,
    /// CN (display only; never compared).
    pub common_name: Option<String>,
    /// PARTSTAT (RFC 5545 3.2.12).
    pub partstat: Option<ParticipationStatus>,
    /// ROLE (RFC 5545 3.2.16).
    pub role: Option<ParticipationRole>,
    /// RSVP (RFC 5545 3.2.17).
    pub rsvp: Option<bool>,
    /// SENT-BY (RFC 5545 3.2.18).
    pub sent_by: Option<CalAddress>,
    /// DELEGATED-TO (RFC 5545 3.2.5).
    pub delegated_to: Vec<CalAddress>,
    /// DELEGATED-FROM (RFC 5545 3.2.4).
    pub delegated_from: Vec<CalAddress>,
    /// CUTYPE as written (RFC 5545 3.2.3).
    pub cutype: Option<String>,
}

/// PARTSTAT values (RFC 5545 section 3.2.12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ParticipationStatus {
    /// NEEDS-ACTION.
    NeedsAction,
    /// ACCEPTED.
    Accepted,
    /// DECLINED.
    Declined,
    /// TENTATIVE.
    Tentative,
    /// DELEGATED.
    Delegated,
    /// COMPLETED (VTODO).
    Completed,
    /// IN-PROCESS (VTODO).
    InProcess,
    /// An x-name or iana-token, as written.
    Other(String),
}

impl ParticipationStatus {
    fn parse(s: &str) -> Self {
        let known = [
            ("NEEDS-ACTION", Self::NeedsAction),
            ("ACCEPTED", Self::Accepted),
            ("DECLINED", Self::Declined),
            ("TENTATIVE", Self::Tentative),
            ("DELEGATED", Self::Delegated),
            ("COMPLETED", Self::Completed),
            ("IN-PROCESS", Self::InProcess),
        ];
        known
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map_or_else(|| Self::Other(s.to_owned()), |(_, v)| v)
    }
}

/// ROLE values (RFC 5545 section 3.2.16).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ParticipationRole {
    /// CHAIR.
    Chair,
    /// REQ-PARTICIPANT.
    RequiredParticipant,
    /// OPT-PARTICIPANT.
    OptionalParticipant,
    /// NON-PARTICIPANT.
    NonParticipant,
    /// An x-name or iana-token, as written.
    Other(String),
}

impl ParticipationRole {
    fn parse(s: &str) -> Self {
        let known = [
            ("CHAIR", Self::Chair),
            ("REQ-PARTICIPANT", Self::RequiredParticipant),
            ("OPT-PARTICIPANT", Self::OptionalParticipant),
            ("NON-PARTICIPANT", Self::NonParticipant),
        ];
        known
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map_or_else(|| Self::Other(s.to_owned()), |(_, v)| v)
    }
}

impl Component {
    pub(crate) fn from_node(
        kind: ComponentKind,
        node: &crate::scan::Node,
        timezones: &TimeZones,
    ) -> Component {
        let text = |name: &str| node.first(name).map(|p| p.value.to_string());
        let recurrence_id = node.first("RECURRENCE-ID").map(|p| {
            let tzid = p.param("TZID").map(str::to_owned);
            RecurrenceId {
                key: RecurrenceKey::new(&p.value, tzid.as_deref(), timezones),
                value: p.value.to_string(),
                tzid,
                this_and_future: p
                    .param("RANGE")
                    .is_some_and(|r| r.eq_ignore_ascii_case("THISANDFUTURE")),
            }
        });
        let sequence = node
            .first("SEQUENCE")
            .and_then(|p| p.value.trim().parse().ok());
        let addresses = |p: &crate::scan::Property, name: &str| {
            p.param_values(name)
                .map(CalAddress::parse)
                .collect::<Vec<_>>()
        };
        let organizer = node.first("ORGANIZER").map(|p| Organizer {
            address: CalAddress::parse(&p.value),
            common_name: p.param("CN").map(str::to_owned),
            sent_by: p.param("SENT-BY").map(CalAddress::parse),
        });
        let attendees = node
            .properties
            .iter()
            .filter(|p| p.name == "ATTENDEE")
            .map(|p| Attendee {
                address: CalAddress::parse(&p.value),
                common_name: p.param("CN").map(str::to_owned),
                partstat: p.param("PARTSTAT").map(ParticipationStatus::parse),
                role: p.param("ROLE").map(ParticipationRole::parse),
                rsvp: p.param("RSVP").map(|v| v.eq_ignore_ascii_case("TRUE")),
                sent_by: p.param("SENT-BY").map(CalAddress::parse),
                delegated_to: addresses(p, "DELEGATED-TO"),
                delegated_from: addresses(p, "DELEGATED-FROM"),
                cutype: p.param("CUTYPE").map(str::to_owned),
            })
            .collect();
        Component {
            kind,
            offset: node.offset,
            uid: text("UID"),
            recurrence_id,
            sequence,
            dtstamp_utc: node
                .first("DTSTAMP")
                .and_then(|p| imipsec_types::Timestamp::parse_icalendar_utc(&p.value).ok()),
            dtstamp: text("DTSTAMP"),
            organizer,
            attendees,
        }
    }
}

/// The VTIMEZONE data the evaluator reads, from a scanned VTIMEZONE node: its TZIDs and its
/// STANDARD and DAYLIGHT observances with every DTSTART, TZOFFSETFROM, TZOFFSETTO, RRULE and
/// RDATE (all occurrences kept, so that the evaluator can insist on exactly one where RFC
/// 5545 §3.6.5 does). Other properties and components decide nothing and are not kept.
pub(crate) fn vtimezone_from_node(node: &crate::scan::Node) -> VTimezone {
    let values = |node: &crate::scan::Node, name: &str| -> Vec<String> {
        node.properties
            .iter()
            .filter(|p| p.name == name)
            .map(|p| p.value.to_string())
            .collect()
    };
    let zone_values = |node: &crate::scan::Node, name: &str| -> Vec<ZoneValue> {
        node.properties
            .iter()
            .filter(|p| p.name == name)
            .map(|p| ZoneValue {
                value: p.value.to_string(),
                value_type: p.param("VALUE").map(str::to_owned),
                has_tzid: p.param("TZID").is_some(),
            })
            .collect()
    };
    let observances = node
        .children
        .iter()
        .filter_map(|child| {
            let kind = if child.name.eq_ignore_ascii_case("STANDARD") {
                ObservanceKind::Standard
            } else if child.name.eq_ignore_ascii_case("DAYLIGHT") {
                ObservanceKind::Daylight
            } else {
                return None;
            };
            let mut observance = Observance::new(kind);
            observance.dtstart = zone_values(child, "DTSTART");
            observance.offset_from = values(child, "TZOFFSETFROM");
            observance.offset_to = values(child, "TZOFFSETTO");
            observance.rrules = values(child, "RRULE");
            observance.rdates = zone_values(child, "RDATE");
            Some(observance)
        })
        .collect();
    VTimezone {
        tzids: values(node, "TZID"),
        observances,
    }
}
