//! The eight iTIP methods, the side of the conversation that sends each, and the role a
//! signer acts in.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// An iTIP method (RFC 5546 §1.4, "Methods"; the METHOD property of RFC 5545 §3.7.2).
///
/// > "PUBLISH, REQUEST, REPLY, ADD, CANCEL, REFRESH, COUNTER, DECLINECOUNTER"
///
/// Parsing is ASCII case-insensitive (the METHOD value is an `iana-token`,
/// RFC 5545 §3.7.2); anything else is [`UnknownMethod`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Method {
    /// "Post notification of an event" (RFC 5546 §3.2.1).
    Publish,
    /// "Make a request for an event" (§3.2.2).
    Request,
    /// "Reply to an event request" (§3.2.3).
    Reply,
    /// "Add one or more instances to an existing event" (§3.2.4).
    Add,
    /// "Cancel one or more instances of an existing event" (§3.2.5).
    Cancel,
    /// An Attendee asks the Organizer for the latest version (§3.2.6).
    Refresh,
    /// "Counter a REQUEST with an alternative proposal" (§3.2.7).
    Counter,
    /// "Decline a counter proposal" (§3.2.8).
    DeclineCounter,
}

/// Which side of a scheduling exchange sends a method (RFC 5546 §1.4: "PUBLISH, REQUEST,
/// ADD, CANCEL, DECLINECOUNTER" are Organizer methods, "REPLY, REFRESH, COUNTER" Attendee
/// methods).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Side {
    /// Sent by the Organizer: PUBLISH, REQUEST, ADD, CANCEL, DECLINECOUNTER.
    Organizer,
    /// Sent by an Attendee: REPLY, COUNTER, REFRESH.
    Attendee,
}

/// The role in which a signer acts for one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Role {
    /// The ORGANIZER of the component.
    Organizer,
    /// An ATTENDEE of the component.
    Attendee,
    /// An ATTENDEE that delegated its attendance and sends the REQUEST to its delegates
    /// (RFC 5546 §3.2.2.3).
    Delegator,
}

impl Method {
    /// Every method, in RFC 5546 order (also the bit order of the policy store's method sets).
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
    pub const fn as_str(self) -> &'static str {
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

    /// The side that sends this method (RFC 5546 §1.4).
    pub const fn side(self) -> Side {
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

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest unknown name echoed back in [`UnknownMethod`].
const ECHO_MAX: usize = 32;

/// The text is not one of the eight iTIP methods (or not one of the two sides).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown iTIP method {name:?}")]
pub struct UnknownMethod {
    /// The name as given, cut to 32 characters.
    pub name: String,
}

impl UnknownMethod {
    fn echo(s: &str) -> Self {
        UnknownMethod {
            name: s.chars().take(ECHO_MAX).collect(),
        }
    }
}

impl FromStr for Method {
    type Err = UnknownMethod;

    /// Case-insensitive, as iCalendar values of this kind are (RFC 5545 §3.1).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownMethod::echo(s))
    }
}

impl Side {
    /// Lower-case storage and JSON name: `organizer` or `attendee`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Organizer => "organizer",
            Side::Attendee => "attendee",
        }
    }

    /// Parses `organizer` or `attendee` (ASCII case-insensitive).
    pub fn parse(s: &str) -> Option<Side> {
        if s.eq_ignore_ascii_case("organizer") {
            Some(Side::Organizer)
        } else if s.eq_ignore_ascii_case("attendee") {
            Some(Side::Attendee)
        } else {
            None
        }
    }
}

/// The text is neither `organizer` nor `attendee`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown side {name:?} (organizer or attendee)")]
pub struct UnknownSide {
    /// The name as given, cut to 32 characters.
    pub name: String,
}

impl FromStr for Side {
    type Err = UnknownSide;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Side::parse(s).ok_or_else(|| UnknownSide {
            name: s.chars().take(ECHO_MAX).collect(),
        })
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Role {
    /// The side this role speaks for: a delegator is an attendee.
    pub const fn side(self) -> Side {
        match self {
            Role::Organizer => Side::Organizer,
            Role::Attendee | Role::Delegator => Side::Attendee,
        }
    }
}

/// The property the role is named by: `ORGANIZER`, `ATTENDEE`, `delegating ATTENDEE`.
impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Organizer => "ORGANIZER",
            Role::Attendee => "ATTENDEE",
            Role::Delegator => "delegating ATTENDEE",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_case_insensitively_and_rejects_unknown() {
        assert_eq!("request".parse::<Method>().unwrap(), Method::Request);
        assert_eq!(
            "DeclineCounter".parse::<Method>().unwrap(),
            Method::DeclineCounter
        );
        assert_eq!(
            "DELETE".parse::<Method>(),
            Err(UnknownMethod {
                name: "DELETE".into()
            })
        );
        assert!("REQUEST ".parse::<Method>().is_err());
    }

    #[test]
    fn sides_partition_the_methods() {
        let organizer: Vec<_> = Method::ALL
            .into_iter()
            .filter(|m| m.side() == Side::Organizer)
            .collect();
        assert_eq!(organizer.len(), 5);
        assert_eq!(Method::Counter.side(), Side::Attendee);
        assert_eq!(Method::DeclineCounter.side(), Side::Organizer);
        assert_eq!(Role::Delegator.side(), Side::Attendee);
        assert_eq!(Side::parse("ATTENDEE"), Some(Side::Attendee));
    }
}
