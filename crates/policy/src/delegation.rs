//! SENT-BY delegation grants: types, the store trait and the JSON format.
//!
//! RFC 5545 §3.2.18 (SENT-BY): "the calendar user that is acting on behalf
//! of the calendar user specified by the property". The iMIP draft: an
//! implementation "MUST provide mechanisms for the Calendar Users to make
//! that decision before applying changes from someone working on behalf of
//! a Calendar User". A [`Grant`] records that decision.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Limits;
use crate::address::{LocalPartCase, normalize_address};
use crate::error::{AddressField, StoreError, TextField};
use crate::method::{Method, MethodBits, MethodSet, Side};
use crate::timestamp::Timestamp;

/// Identifier of a grant, assigned by the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantId(pub i64);

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Which methods a delegate may sign for.
///
/// `methods: None` means all eight; `side` further restricts to the
/// organizer-side (PUBLISH REQUEST ADD CANCEL DECLINECOUNTER) or
/// attendee-side (REPLY COUNTER REFRESH) methods (RFC 5546 §1.4).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct GrantScope {
    /// `None`: every method; `Some(list)`: only these.
    pub methods: Option<Vec<Method>>,
    /// Only methods of this side.
    pub side: Option<Side>,
}

impl GrantScope {
    /// Every method.
    pub fn all() -> Self {
        GrantScope::default()
    }

    /// Only the listed methods.
    pub fn methods(methods: &[Method]) -> Self {
        GrantScope {
            methods: Some(methods.to_vec()),
            side: None,
        }
    }

    /// Only methods of one side.
    pub fn side(side: Side) -> Self {
        GrantScope {
            methods: None,
            side: Some(side),
        }
    }

    /// The effective set: list intersected with side.
    pub(crate) fn allowed(&self) -> MethodSet {
        let listed = self
            .methods
            .as_deref()
            .map_or(0xff, |m| MethodSet::from_methods(m).0);
        let side = self.side.map_or(0xff, MethodBits::bits);
        MethodSet(listed & side)
    }

    /// Whether `method` is in scope.
    pub fn allows(&self, method: Method) -> bool {
        self.allowed().0 & method.bits() != 0
    }

    /// The same scope with the method list sorted and de-duplicated.
    pub(crate) fn canonical(&self) -> GrantScope {
        GrantScope {
            methods: self
                .methods
                .as_deref()
                .map(|m| MethodSet::from_methods(m).methods()),
            side: self.side,
        }
    }
}

/// A grant to record: `delegate` may sign (as SENT-BY) for `principal`.
///
/// The validity window is half-open: valid at `t` when
/// `not_before <= t < until` (either bound may be absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewGrant {
    /// The calendar user on whose behalf the delegate acts.
    pub principal: String,
    /// Who may act (sign) for the principal.
    pub delegate: String,
    /// Which methods.
    pub scope: GrantScope,
    /// Valid from this time on (inclusive).
    pub not_before: Option<Timestamp>,
    /// Valid strictly before this time.
    pub until: Option<Timestamp>,
    /// Free text for the audit trail.
    pub note: Option<String>,
    /// Who recorded the grant (operator name or address).
    pub recorded_by: String,
    /// When it was recorded (the caller's clock).
    pub recorded_at: Timestamp,
}

/// A revocation: the grant is not valid at any `t >= at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// From when on the grant is void.
    pub at: Timestamp,
    /// Who revoked it.
    pub by: String,
    /// Why.
    pub reason: Option<String>,
}

/// A stored grant, with its revocation if any (history is never deleted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Store-assigned id.
    pub id: GrantId,
    /// Normalised principal address.
    pub principal: String,
    /// Normalised delegate address.
    pub delegate: String,
    /// Which methods (canonical order).
    pub scope: GrantScope,
    /// Valid from (inclusive).
    pub not_before: Option<Timestamp>,
    /// Valid until (exclusive).
    pub until: Option<Timestamp>,
    /// Audit note.
    pub note: Option<String>,
    /// Who recorded it.
    pub recorded_by: String,
    /// When it was recorded.
    pub recorded_at: Timestamp,
    /// The revocation, if revoked.
    pub revocation: Option<Revocation>,
}

impl Grant {
    /// Whether the grant was in force at `at`: inside its window and
    /// before any revocation. The SQL lookup implements the same rule.
    pub fn is_valid_at(&self, at: Timestamp) -> bool {
        self.not_before.is_none_or(|nb| nb <= at)
            && self.until.is_none_or(|u| at < u)
            && self.revocation.as_ref().is_none_or(|r| at < r.at)
    }
}

/// Which grants [`DelegationStore::list`] returns.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct GrantFilter {
    /// Only for this principal.
    pub principal: Option<String>,
    /// Only for this delegate.
    pub delegate: Option<String>,
    /// Without an evaluation time: also list revoked grants. With one,
    /// validity at that time decides and this flag is ignored.
    pub include_revoked: bool,
}

/// What happened to a grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryAction {
    /// Recorded with [`DelegationStore::grant`].
    Granted,
    /// Created by [`DelegationStore::import_json`].
    Imported,
    /// Revoked.
    Revoked,
}

impl HistoryAction {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            HistoryAction::Granted => "granted",
            HistoryAction::Imported => "imported",
            HistoryAction::Revoked => "revoked",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [
            HistoryAction::Granted,
            HistoryAction::Imported,
            HistoryAction::Revoked,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// One line of the audit trail, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Position in the trail (increasing).
    pub sequence: i64,
    /// The grant concerned.
    pub grant_id: GrantId,
    /// What happened.
    pub action: HistoryAction,
    /// When it took effect (grant: `recorded_at`; revocation: its time;
    /// import: the import time).
    pub at: Timestamp,
    /// Who did it.
    pub by: String,
    /// The grant's principal.
    pub principal: String,
    /// The grant's delegate.
    pub delegate: String,
    /// Note (grant) or reason (revocation).
    pub detail: Option<String>,
}

/// The delegation policy store. Implementations must not read the clock:
/// every time is an argument. Nothing here assumes a particular database.
pub trait DelegationStore {
    /// Records a grant and returns its id.
    fn grant(&self, grant: &NewGrant) -> Result<GrantId, StoreError>;

    /// Revokes a grant from `at` on; history keeps it.
    fn revoke(
        &self,
        id: GrantId,
        at: Timestamp,
        by: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Revokes every unrevoked grant from `principal` to `delegate`;
    /// returns how many.
    fn revoke_matching(
        &self,
        principal: &str,
        delegate: &str,
        at: Timestamp,
        by: &str,
    ) -> Result<usize, StoreError>;

    /// Whether some grant lets `delegate` sign `method` for `principal`
    /// at time `at`.
    fn is_allowed(
        &self,
        principal: &str,
        delegate: &str,
        method: Method,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Grants matching `filter`; with `at`, only those valid at `at`.
    fn list(&self, filter: &GrantFilter, at: Option<Timestamp>) -> Result<Vec<Grant>, StoreError>;

    /// The audit trail, oldest first, optionally for one principal.
    fn history(&self, principal: Option<&str>) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Every grant (revoked ones too) as JSON, in id order.
    fn export_json(&self) -> Result<String, StoreError>;

    /// Imports grants all-or-nothing; returns how many.
    fn import_json(&self, json: &str, by: &str, at: Timestamp) -> Result<usize, StoreError>;
}

/// Checks a free-text field: no control characters, bounded length.
pub(crate) fn check_text(text: &str, field: TextField, max: usize) -> Result<(), StoreError> {
    if text.len() > max {
        return Err(StoreError::TextTooLong {
            field,
            len: text.len(),
            max,
        });
    }
    if let Some((offset, _)) = text.char_indices().find(|(_, c)| c.is_control()) {
        return Err(StoreError::InvalidText { field, offset });
    }
    Ok(())
}

/// Checks a required free-text field (recorder names).
pub(crate) fn check_required_text(
    text: &str,
    field: TextField,
    max: usize,
) -> Result<(), StoreError> {
    if text.is_empty() {
        return Err(StoreError::EmptyText { field });
    }
    check_text(text, field, max)
}

/// Normalises an address field or says which field was wrong.
pub(crate) fn address(
    text: &str,
    field: AddressField,
    case: LocalPartCase,
    limits: &Limits,
) -> Result<String, StoreError> {
    normalize_address(text, case, limits.address_bytes)
        .map_err(|reason| StoreError::InvalidAddress { field, reason })
}

/// A grant checked and normalised, ready to store.
pub(crate) struct ValidGrant {
    pub(crate) grant: NewGrant,
    pub(crate) allowed: MethodSet,
}

/// Validates and normalises a new grant.
pub(crate) fn validate_grant(
    grant: &NewGrant,
    case: LocalPartCase,
    limits: &Limits,
) -> Result<ValidGrant, StoreError> {
    let principal = address(&grant.principal, AddressField::Principal, case, limits)?;
    let delegate = address(&grant.delegate, AddressField::Delegate, case, limits)?;
    if let (Some(not_before), Some(until)) = (grant.not_before, grant.until)
        && until <= not_before
    {
        return Err(StoreError::InvalidWindow { not_before, until });
    }
    let allowed = grant.scope.allowed();
    if allowed.0 == 0 {
        return Err(StoreError::EmptyScope);
    }
    if let Some(note) = &grant.note {
        check_text(note, TextField::Note, limits.text_bytes)?;
    }
    check_required_text(&grant.recorded_by, TextField::RecordedBy, limits.text_bytes)?;
    Ok(ValidGrant {
        grant: NewGrant {
            principal,
            delegate,
            scope: grant.scope.canonical(),
            not_before: grant.not_before,
            until: grant.until,
            note: grant.note.clone(),
            recorded_by: grant.recorded_by.clone(),
            recorded_at: grant.recorded_at,
        },
        allowed,
    })
}

/// Validates a revocation's free text.
pub(crate) fn validate_revocation(r: &Revocation, limits: &Limits) -> Result<(), StoreError> {
    check_required_text(&r.by, TextField::RecordedBy, limits.text_bytes)?;
    if let Some(reason) = &r.reason {
        check_text(reason, TextField::Reason, limits.text_bytes)?;
    }
    Ok(())
}

/// `format` value of the JSON export.
pub const EXPORT_FORMAT: &str = "imipsec-delegations";
/// `version` value of the JSON export.
pub const EXPORT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportFile {
    format: String,
    version: u32,
    grants: Vec<ExportGrant>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportGrant {
    principal: String,
    delegate: String,
    #[serde(default)]
    methods: Option<Vec<String>>,
    #[serde(default)]
    side: Option<String>,
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    recorded_by: Option<String>,
    #[serde(default)]
    recorded_at: Option<String>,
    #[serde(default)]
    revoked: Option<ExportRevocation>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportRevocation {
    at: String,
    by: String,
    #[serde(default)]
    reason: Option<String>,
}

fn optional_time(t: Option<Timestamp>) -> Result<Option<String>, StoreError> {
    Ok(t.map(Timestamp::to_rfc3339).transpose()?)
}

/// Serialises grants (already in id order) to the export format.
pub(crate) fn to_json(grants: &[Grant]) -> Result<String, StoreError> {
    let grants = grants
        .iter()
        .map(|g| {
            Ok(ExportGrant {
                principal: g.principal.clone(),
                delegate: g.delegate.clone(),
                methods: g
                    .scope
                    .methods
                    .as_ref()
                    .map(|m| m.iter().map(|m| m.as_str().to_owned()).collect()),
                side: g.scope.side.map(|s| s.as_str().to_owned()),
                not_before: optional_time(g.not_before)?,
                until: optional_time(g.until)?,
                note: g.note.clone(),
                recorded_by: Some(g.recorded_by.clone()),
                recorded_at: Some(g.recorded_at.to_rfc3339()?),
                revoked: g
                    .revocation
                    .as_ref()
                    .map(|r| {
                        Ok::<_, StoreError>(ExportRevocation {
                            at: r.at.to_rfc3339()?,
                            by: r.by.clone(),
                            reason: r.reason.clone(),
                        })
                    })
                    .transpose()?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let file = ExportFile {
        format: EXPORT_FORMAT.to_owned(),
        version: EXPORT_VERSION,
        grants,
    };
    serde_json::to_string_pretty(&file).map_err(|e| StoreError::Backend(Box::new(e)))
}

/// One import entry, validated.
pub(crate) struct ImportedGrant {
    pub(crate) valid: ValidGrant,
    pub(crate) revocation: Option<Revocation>,
}

/// Parses and validates a whole import before anything is written.
/// Missing `recorded_by`/`recorded_at` default to the importer and the
/// import time.
pub(crate) fn parse_import(
    json: &str,
    by: &str,
    at: Timestamp,
    case: LocalPartCase,
    limits: &Limits,
) -> Result<Vec<ImportedGrant>, StoreError> {
    if json.len() > limits.import_bytes {
        return Err(StoreError::ImportTooLarge {
            len: json.len(),
            max: limits.import_bytes,
        });
    }
    check_required_text(by, TextField::RecordedBy, limits.text_bytes)?;
    let file: ExportFile = serde_json::from_str(json).map_err(StoreError::ImportSyntax)?;
    if file.format != EXPORT_FORMAT || file.version != EXPORT_VERSION {
        return Err(StoreError::ImportFormat {
            format: file.format.chars().take(64).collect(),
            version: file.version,
        });
    }
    if file.grants.len() > limits.import_grants {
        return Err(StoreError::TooManyImportGrants {
            count: file.grants.len(),
            max: limits.import_grants,
        });
    }
    file.grants
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            import_entry(entry, by, at, case, limits).map_err(|source| StoreError::ImportEntry {
                index,
                source: Box::new(source),
            })
        })
        .collect()
}

fn import_entry(
    entry: ExportGrant,
    by: &str,
    at: Timestamp,
    case: LocalPartCase,
    limits: &Limits,
) -> Result<ImportedGrant, StoreError> {
    let time = |t: Option<String>| t.as_deref().map(Timestamp::parse_rfc3339).transpose();
    let methods = entry
        .methods
        .map(|list| {
            list.iter()
                .map(|m| m.parse::<Method>())
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let side = entry.side.map(|s| s.parse::<Side>()).transpose()?;
    let grant = NewGrant {
        principal: entry.principal,
        delegate: entry.delegate,
        scope: GrantScope { methods, side },
        not_before: time(entry.not_before)?,
        until: time(entry.until)?,
        note: entry.note,
        recorded_by: entry.recorded_by.unwrap_or_else(|| by.to_owned()),
        recorded_at: time(entry.recorded_at)?.unwrap_or(at),
    };
    let valid = validate_grant(&grant, case, limits)?;
    let revocation = entry
        .revoked
        .map(|r| {
            let revocation = Revocation {
                at: Timestamp::parse_rfc3339(&r.at)?,
                by: r.by,
                reason: r.reason,
            };
            validate_revocation(&revocation, limits)?;
            Ok::<_, StoreError>(revocation)
        })
        .transpose()?;
    Ok(ImportedGrant { valid, revocation })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(not_before: Option<i64>, until: Option<i64>, revoked: Option<i64>) -> Grant {
        Grant {
            id: GrantId(1),
            principal: "a@x".into(),
            delegate: "b@x".into(),
            scope: GrantScope::all(),
            not_before: not_before.map(Timestamp::from_unix_seconds),
            until: until.map(Timestamp::from_unix_seconds),
            note: None,
            recorded_by: "op".into(),
            recorded_at: Timestamp::from_unix_seconds(0),
            revocation: revoked.map(|r| Revocation {
                at: Timestamp::from_unix_seconds(r),
                by: "op".into(),
                reason: None,
            }),
        }
    }

    #[test]
    fn window_is_half_open_and_revocation_cuts_it() {
        let g = grant(Some(100), Some(200), Some(150));
        let at = |t| g.is_valid_at(Timestamp::from_unix_seconds(t));
        assert!(!at(99));
        assert!(at(100));
        assert!(at(149));
        assert!(!at(150));
        assert!(!at(199));
        assert!(!at(200));
        let open = grant(None, None, None);
        assert!(open.is_valid_at(Timestamp::from_unix_seconds(i64::MIN)));
    }

    #[test]
    fn scope_intersects_list_and_side() {
        let scope = GrantScope {
            methods: Some(vec![Method::Reply, Method::Request, Method::Reply]),
            side: Some(Side::Attendee),
        };
        assert!(scope.allows(Method::Reply));
        assert!(!scope.allows(Method::Request));
        assert_eq!(
            scope.canonical().methods,
            Some(vec![Method::Request, Method::Reply])
        );
        assert!(GrantScope::side(Side::Organizer).allows(Method::DeclineCounter));
        assert!(!GrantScope::side(Side::Organizer).allows(Method::Counter));
        assert!(GrantScope::all().allows(Method::Counter));
    }
}
