//! The delegation store as itip's SENT-BY policy.
//!
//! RFC 5545 section 3.2.18 SENT-BY names "the calendar user that is acting on behalf of the
//! calendar user specified by the property"; the iMIP draft (section 3) requires that the
//! recipient decide whether to accept that before applying changes. The decision lives in the
//! policy store ([`DelegationStore`]); this adapter asks it at the evaluation time.

use std::cell::RefCell;

use imipsec_itip::{DelegationPolicy, DelegationQuery, PolicyUnavailable};
use imipsec_policy::{DelegationStore, StoreError, Timestamp};

/// A [`DelegationPolicy`] answered by a [`DelegationStore`] at a fixed evaluation time.
///
/// A store error never becomes a "no": it is [`PolicyUnavailable`], and the first error is
/// kept so the pipeline can report why it could not evaluate.
pub struct StoreDelegationPolicy<'a> {
    store: &'a dyn DelegationStore,
    at: Timestamp,
    error: RefCell<Option<StoreError>>,
}

impl<'a> StoreDelegationPolicy<'a> {
    /// Ask `store` about grants in force at `at`.
    pub fn new(store: &'a dyn DelegationStore, at: Timestamp) -> Self {
        StoreDelegationPolicy {
            store,
            at,
            error: RefCell::new(None),
        }
    }

    /// The first store error met, if any (taking it out).
    pub fn take_error(&self) -> Option<StoreError> {
        self.error.borrow_mut().take()
    }
}

impl DelegationPolicy for StoreDelegationPolicy<'_> {
    fn sent_by_allowed(&self, query: &DelegationQuery<'_>) -> Result<bool, PolicyUnavailable> {
        // Only plain mailto: addresses can be named in a grant.
        let (Some(principal), Some(delegate)) = (
            query.principal.addr_spec.as_deref(),
            query.delegate.addr_spec.as_deref(),
        ) else {
            return Ok(false);
        };
        // The two crates spell the eight methods the same way; failing to map one is a
        // programming error, so fail closed as "could not decide", never as "allowed".
        let Ok(method) = query.method.as_str().parse::<imipsec_policy::Method>() else {
            return Err(PolicyUnavailable {
                detail: format!("the policy store does not know method {}", query.method),
            });
        };
        match self.store.is_allowed(principal, delegate, method, self.at) {
            Ok(allowed) => Ok(allowed),
            Err(error) => {
                let detail = error.to_string();
                let mut slot = self.error.borrow_mut();
                if slot.is_none() {
                    *slot = Some(error);
                }
                Err(PolicyUnavailable { detail })
            }
        }
    }
}
