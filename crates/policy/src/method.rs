//! The eight iTIP methods and the side that sends each are `imipsec-types`'; this module
//! adds only the storage encoding of method sets (one bit per method).

pub use imipsec_types::{Method, Side};

/// The storage bit of a method or the mask of a side (bit `n` = `Method::ALL[n]`, a
/// storage format: never reorder `Method::ALL`).
pub(crate) trait MethodBits {
    /// The bits.
    fn bits(self) -> u8;
}

impl MethodBits for Method {
    fn bits(self) -> u8 {
        Method::ALL
            .into_iter()
            .position(|m| m == self)
            .map_or(0, |n| 1 << n)
    }
}

impl MethodBits for Side {
    fn bits(self) -> u8 {
        Method::ALL
            .into_iter()
            .filter(|m| m.side() == self)
            .fold(0, |acc, m| acc | m.bits())
    }
}

/// A set of methods stored as one byte (bit `n` = `Method::ALL[n]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct MethodSet(pub(crate) u8);

impl MethodSet {
    pub(crate) fn from_methods(methods: &[Method]) -> Self {
        MethodSet(methods.iter().fold(0, |acc, m| acc | m.bits()))
    }

    pub(crate) fn methods(self) -> Vec<Method> {
        Method::ALL
            .into_iter()
            .filter(|m| self.0 & m.bits() != 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreError;

    #[test]
    fn parses_case_insensitively_and_rejects_unknown() {
        assert_eq!("request".parse::<Method>().unwrap(), Method::Request);
        let error: StoreError = "DELETE".parse::<Method>().unwrap_err().into();
        assert!(matches!(error, StoreError::UnknownMethod { name } if name == "DELETE"));
        assert!("REQUEST ".parse::<Method>().is_err());
    }

    #[test]
    fn sides_partition_the_methods() {
        assert_eq!(
            Side::Organizer.bits() | Side::Attendee.bits(),
            0xff,
            "every method belongs to a side"
        );
        assert_eq!(Side::Organizer.bits() & Side::Attendee.bits(), 0);
        assert_eq!(Method::Request.bits(), 0b10, "storage bit order");
    }
}
