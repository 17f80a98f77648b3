//! A TEST policy store: the real SQLite store, except that judging an update whose UID
//! contains [`PANIC_UID_MARK`] panics, while the gate's engine holds its store lock. It keeps
//! the gate's isolation test meaningful once no input reaches a panic in the pipeline any
//! more: a panic under the lock must not poison the engine for the messages after it.

use imipsec_pipeline::policy::{
    DelegationStore, EventState, EventStateStore, EventUpdate, Grant, GrantFilter, GrantId,
    HistoryEntry, MessageDigest, Method, NewGrant, SqliteStore, StateDecision, StateFinding,
    StoreError, Timestamp,
};

/// A UID containing this makes [`PanickingStore`] panic.
pub const PANIC_UID_MARK: &str = "panic-in-store";

/// See the module documentation.
pub struct PanickingStore(pub SqliteStore);

fn maybe_panic(updates: &[EventUpdate]) {
    if updates
        .iter()
        .any(|update| update.uid.contains(PANIC_UID_MARK))
    {
        panic!("test store told to panic");
    }
}

impl EventStateStore for PanickingStore {
    fn local_part_case(&self) -> imipsec_pipeline::policy::LocalPartCase {
        imipsec_pipeline::policy::LocalPartCase::Insensitive
    }

    fn evaluate(
        &self,
        scope: &str,
        updates: &[EventUpdate],
    ) -> Result<Vec<StateFinding>, StoreError> {
        maybe_panic(updates);
        self.0.evaluate(scope, updates)
    }

    fn decide_and_record(
        &self,
        scope: &str,
        updates: &[EventUpdate],
        at: Timestamp,
    ) -> Result<StateDecision, StoreError> {
        maybe_panic(updates);
        self.0.decide_and_record(scope, updates, at)
    }

    fn evaluate_message(
        &self,
        scope: &str,
        message: &MessageDigest,
        updates: &[EventUpdate],
    ) -> Result<Vec<StateFinding>, StoreError> {
        maybe_panic(updates);
        self.0.evaluate_message(scope, message, updates)
    }

    fn decide_and_record_message(
        &self,
        scope: &str,
        message: &MessageDigest,
        updates: &[EventUpdate],
        at: Timestamp,
    ) -> Result<StateDecision, StoreError> {
        maybe_panic(updates);
        self.0
            .decide_and_record_message(scope, message, updates, at)
    }

    fn event(
        &self,
        scope: &str,
        uid: &str,
        recurrence_id: Option<&str>,
    ) -> Result<Option<EventState>, StoreError> {
        self.0.event(scope, uid, recurrence_id)
    }
}

impl DelegationStore for PanickingStore {
    fn grant(&self, grant: &NewGrant) -> Result<GrantId, StoreError> {
        self.0.grant(grant)
    }
    fn revoke(
        &self,
        id: GrantId,
        at: Timestamp,
        by: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.0.revoke(id, at, by, reason)
    }
    fn revoke_matching(
        &self,
        principal: &str,
        delegate: &str,
        at: Timestamp,
        by: &str,
    ) -> Result<usize, StoreError> {
        self.0.revoke_matching(principal, delegate, at, by)
    }
    fn is_allowed(
        &self,
        principal: &str,
        delegate: &str,
        method: Method,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.0.is_allowed(principal, delegate, method, at)
    }
    fn list(&self, filter: &GrantFilter, at: Option<Timestamp>) -> Result<Vec<Grant>, StoreError> {
        self.0.list(filter, at)
    }
    fn history(&self, principal: Option<&str>) -> Result<Vec<HistoryEntry>, StoreError> {
        self.0.history(principal)
    }
    fn export_json(&self) -> Result<String, StoreError> {
        self.0.export_json()
    }
    fn import_json(&self, json: &str, by: &str, at: Timestamp) -> Result<usize, StoreError> {
        self.0.import_json(json, by, at)
    }
}
