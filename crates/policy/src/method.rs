//! The eight iTIP methods and the side of the conversation that sends each.

use std::fmt;
use std::str::FromStr;

use crate::error::StoreError;

/// An iTIP method (RFC 5546 §1.4, "Methods").
///
/// > "PUBLISH, REQUEST, REPLY, ADD, CANCEL, REFRESH, COUNTER, DECLINECOUNTER"
///
/// Parsing is ASCII case-insensitive (the METHOD value is an `iana-token`,
/// RFC 5545 §3.7.2); anything else is [`StoreError::UnknownMethod`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// Post an event from the organizer; no reply expected.
    Publish,
    /// Invite attendees or update an event (organizer).
    Request,
    /// An attendee answers a REQUEST.
    Reply,
    /// Add instances to a recurring event (organizer).
    Add,
    /// Cancel an event or instances (organizer).
    Cancel,
    /// An attendee asks for the latest version.
    Refresh,
    /// An attendee proposes a change.
    Counter,
    /// The organizer declines a COUNTER.
    DeclineCounter,
}

/// Which party sends a method (RFC 5546 §3.2 / §3.3 tables: "Originator").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// PUBLISH, REQUEST, ADD, CANCEL, DECLINECOUNTER.
    Organizer,
    /// REPLY, COUNTER, REFRESH.
    Attendee,
}

impl Method {
    /// All eight methods in a fixed order (also the bit order in storage).
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

    /// The RFC 5546 name, upper case.
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

    /// The party that originates this method.
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

    /// The bit of this method in a [`MethodSet`].
    pub(crate) const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest unknown method name echoed back in [`StoreError::UnknownMethod`].
const ECHO_MAX: usize = 32;

impl FromStr for Method {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| StoreError::UnknownMethod {
                name: s.chars().take(ECHO_MAX).collect(),
            })
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

    /// Bit mask of every method on this side.
    pub(crate) fn mask(self) -> u8 {
        Method::ALL
            .into_iter()
            .filter(|m| m.side() == self)
            .fold(0, |acc, m| acc | m.bit())
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Side {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("organizer") {
            Ok(Side::Organizer)
        } else if s.eq_ignore_ascii_case("attendee") {
            Ok(Side::Attendee)
        } else {
            Err(StoreError::UnknownSide {
                name: s.chars().take(ECHO_MAX).collect(),
            })
        }
    }
}

/// A set of methods stored as one byte (bit `n` = `Method::ALL[n]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct MethodSet(pub(crate) u8);

impl MethodSet {
    pub(crate) fn from_methods(methods: &[Method]) -> Self {
        MethodSet(methods.iter().fold(0, |acc, m| acc | m.bit()))
    }

    pub(crate) fn methods(self) -> Vec<Method> {
        Method::ALL
            .into_iter()
            .filter(|m| self.0 & m.bit() != 0)
            .collect()
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
        assert!(matches!(
            "DELETE".parse::<Method>(),
            Err(StoreError::UnknownMethod { name }) if name == "DELETE"
        ));
        assert!("REQUEST ".parse::<Method>().is_err());
    }

    #[test]
    fn sides_partition_the_methods() {
        assert_eq!(
            Side::Organizer.mask() | Side::Attendee.mask(),
            0xff,
            "every method belongs to a side"
        );
        assert_eq!(Side::Organizer.mask() & Side::Attendee.mask(), 0);
        assert_eq!(Method::Counter.side(), Side::Attendee);
        assert_eq!(Method::DeclineCounter.side(), Side::Organizer);
    }
}
