//! The crate's only unsafe code: the two OpenSSL calls revocation checking needs that the safe
//! `openssl` crate does not wrap (STYLE.md: "`#![forbid(unsafe_code)]` everywhere except one
//! small, documented FFI module if OpenSSL needs it").
//!
//! - [`add_crl`]: `X509_STORE_add_crl`, so that OpenSSL's own RFC 5280 §6.3 CRL processing
//!   (CRL issuer path, issuingDistributionPoint scope, indirect and delta CRLs, critical CRL
//!   extensions) decides revocation instead of a partial reimplementation.
//! - [`verify_cert_with_crls`]: `X509_STORE_CTX_set0_crls` around `X509_verify_cert`, because
//!   OpenSSL looks CRLs up in the store by the certificate's issuer name only, so an indirect
//!   CRL (RFC 5280 §5.2.5, issued under another name) is found only in the context's list,
//!   as `CMS_verify` passes a SignedData's CRLs.
//! - [`install_crl_callback`]: `X509_STORE_set_verify_cb` with a callback that records, per
//!   depth, a certificate without a usable CRL (none published by its issuer, none usable, or
//!   a stale one) and lets it pass where the caller will decide (a revocation mode, an OCSP
//!   answer, a fetched CRL): how [`crate::RevocationMode`] is expressed on top of
//!   `CRL_CHECK_ALL`.
//! - [`set_policies`]: `X509_VERIFY_PARAM_set1_policies` (the initial policy set, RFC 5280
//!   §6.1.1), which the `openssl` crate does not wrap.
//! - [`generalized_as_time`]: an OCSP GeneralizedTime viewed as an `ASN1_TIME` to compare it.
//!
//! Pointers: the `openssl` crate's reference types (`X509StoreBuilderRef`, `X509CrlRef`,
//! `X509StoreContextRef`, `X509Ref`) are `foreign-types` 0.3 opaque references, whose contract
//! is that the address of the Rust reference *is* the C pointer (`ForeignTypeRef::as_ptr` is
//! `self as *const _ as *mut _`, `from_ptr` is `&*(ptr as *mut _)`). The casts below rely on
//! exactly that, instead of adding `foreign-types` as a dependency for two calls.

use std::ffi::c_int;

use openssl::error::ErrorStack;
use openssl::x509::store::X509StoreBuilderRef;
use openssl::x509::{X509CrlRef, X509Ref, X509StoreContextRef};
use openssl_sys as sys;

unsafe extern "C" {
    // OpenSSL 1.1+/3.x, x509_lu.c. Takes its own reference on `crl` (X509_CRL_up_ref via
    // X509_OBJECT); the caller keeps its reference.
    fn X509_STORE_add_crl(store: *mut sys::X509_STORE, crl: *mut sys::X509_CRL) -> c_int;
    // OpenSSL 1.1+/3.x, x509_lu.c: stored in the store and copied into every context
    // initialised from it (X509_STORE_CTX_init).
    fn X509_STORE_set_verify_cb(
        store: *mut sys::X509_STORE,
        callback: Option<unsafe extern "C" fn(c_int, *mut sys::X509_STORE_CTX) -> c_int>,
    );
    // OpenSSL 1.1+/3.x, x509_lu.c: the CRLs of the context's store whose issuer name equals
    // `name` (X509_NAME_cmp), each up-referenced; NULL when there is none or on failure.
    fn X509_STORE_CTX_get1_crls(
        ctx: *const sys::X509_STORE_CTX,
        name: *const sys::X509_NAME,
    ) -> *mut sys::stack_st_X509_CRL;
    fn X509_CRL_free(crl: *mut sys::X509_CRL);
    // OpenSSL 1.1+/3.x, x509_vfy.c: `ctx->crls = sk`. Despite the name it takes no ownership:
    // X509_STORE_CTX_cleanup/free never free the stack (CMS_verify frees its own after use).
    fn X509_STORE_CTX_set0_crls(ctx: *mut sys::X509_STORE_CTX, crls: *mut sys::stack_st_X509_CRL);
}

/// A stack that borrows its CRLs: freed with `OPENSSL_sk_free`, never `pop_free`.
struct BorrowedCrlStack(*mut sys::OPENSSL_STACK);

impl Drop for BorrowedCrlStack {
    fn drop(&mut self) {
        // SAFETY: the pointer is the non-null stack from OPENSSL_sk_new_null, freed once here;
        // its elements are borrowed CRLs and are not freed.
        unsafe { sys::OPENSSL_sk_free(self.0) }
    }
}

/// `X509_verify_cert` with `crls` as the context's CRL list (`X509_STORE_CTX_set0_crls`), which
/// OpenSSL searches before the store, indirect CRLs included. The list is detached again before
/// returning, so the context never holds a pointer to the stack beyond this call.
pub(crate) fn verify_cert_with_crls(
    context: &mut X509StoreContextRef,
    crls: &[&X509CrlRef],
) -> Result<bool, ErrorStack> {
    // SAFETY: plain allocation; NULL is handled below.
    let stack = unsafe { sys::OPENSSL_sk_new_null() };
    if stack.is_null() {
        return Err(ErrorStack::get());
    }
    let stack = BorrowedCrlStack(stack);
    for crl in crls {
        let crl = std::ptr::from_ref(*crl).cast::<std::ffi::c_void>();
        // SAFETY: `stack.0` is live; the element is a CRL that outlives this function (it is
        // borrowed for its duration) and the stack never frees it (see BorrowedCrlStack).
        if unsafe { sys::OPENSSL_sk_push(stack.0, crl) } <= 0 {
            return Err(ErrorStack::get());
        }
    }
    let ctx = std::ptr::from_mut(context).cast::<sys::X509_STORE_CTX>();
    // SAFETY: `ctx` is the live, initialised context borrowed mutably here; the stack stays
    // alive until after the list is detached below. OpenSSL only reads the list (it up-refs a
    // CRL it keeps), so sharing the borrowed CRLs is sound.
    unsafe { X509_STORE_CTX_set0_crls(ctx, stack.0.cast::<sys::stack_st_X509_CRL>()) };
    let verified = context.verify_cert();
    // SAFETY: as above; resetting to NULL is what X509_STORE_CTX_init leaves.
    unsafe { X509_STORE_CTX_set0_crls(ctx, std::ptr::null_mut()) };
    drop(stack);
    verified
}

/// Add `crl` to the store being built (`X509_STORE_add_crl`). The store takes its own
/// reference, so `crl` may be dropped afterwards.
pub(crate) fn add_crl(
    builder: &mut X509StoreBuilderRef,
    crl: &X509CrlRef,
) -> Result<(), ErrorStack> {
    let store = std::ptr::from_mut(builder).cast::<sys::X509_STORE>();
    let crl = std::ptr::from_ref(crl).cast::<sys::X509_CRL>().cast_mut();
    // SAFETY: both pointers come from live `foreign-types` references (module docs: the
    // reference address is the C pointer), so they are valid for the call. OpenSSL does not
    // mutate the CRL's contents (it up-references it), and `&mut` on the builder gives the
    // exclusive access that adding an object to the store needs.
    let added = unsafe { X509_STORE_add_crl(store, crl) };
    if added == 1 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}

/// Why a certificate of the chain had no usable CRL, as the CRL callback saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CrlGap {
    /// No CRL under the certificate's issuer name at all (`UNABLE_TO_GET_CRL`, none published).
    Unpublished,
    /// CRLs under that name exist but none is in scope or usable (`UNABLE_TO_GET_CRL`).
    NoneUsable,
    /// The CRL found is past its nextUpdate or not yet valid.
    Stale,
}

/// What the CRL callback records during one `X509_verify_cert` on this thread, and which gaps
/// it lets pass so that the caller can look for another answer (OCSP, a fetched CRL) or decide
/// by its revocation mode. Set by [`record_crl_gaps`] only.
struct Recorder {
    /// Let `NoneUsable` and `Stale` pass too (a revocation source may still answer).
    forgive_unusable: bool,
    gaps: Vec<(u32, CrlGap)>,
}

thread_local! {
    static RECORDER: std::cell::RefCell<Option<Recorder>> = const { std::cell::RefCell::new(None) };
}

/// Clears the recorder even when `run` unwinds.
struct RecorderGuard;

impl Drop for RecorderGuard {
    fn drop(&mut self) {
        RECORDER.with(|recorder| {
            if let Ok(mut recorder) = recorder.try_borrow_mut() {
                *recorder = None;
            }
        });
    }
}

/// Run `run` (one `X509_verify_cert` with a store from [`install_crl_callback`]) and return
/// the CRL gaps the callback saw, by depth. `Unpublished` gaps always pass (the caller decides);
/// `NoneUsable` and `Stale` pass only when `forgive_unusable`, else they fail the verification
/// as OpenSSL reports them (and are still recorded, for the detail).
pub(crate) fn record_crl_gaps<T>(
    forgive_unusable: bool,
    run: impl FnOnce() -> T,
) -> (T, Vec<(u32, CrlGap)>) {
    RECORDER.with(|recorder| {
        if let Ok(mut recorder) = recorder.try_borrow_mut() {
            *recorder = Some(Recorder {
                forgive_unusable,
                gaps: Vec::new(),
            });
        }
    });
    let guard = RecorderGuard;
    let result = run();
    let gaps = RECORDER.with(|recorder| {
        recorder
            .try_borrow_mut()
            .ok()
            .and_then(|mut recorder| recorder.take())
            .map(|recorder| recorder.gaps)
            .unwrap_or_default()
    });
    drop(guard);
    (result, gaps)
}

/// Install the CRL callback on the store: see [`record_crl_gaps`]. Outside a recording it lets
/// `X509_V_ERR_UNABLE_TO_GET_CRL` pass for a certificate whose issuer has no CRL in the store
/// and nothing else. Every other error, including a CRL that exists but is out of scope,
/// expired or badly signed, still fails unless the recording forgives it.
pub(crate) fn install_crl_callback(builder: &mut X509StoreBuilderRef) {
    let store = std::ptr::from_mut(builder).cast::<sys::X509_STORE>();
    let callback: unsafe extern "C" fn(c_int, *mut sys::X509_STORE_CTX) -> c_int = crl_callback;
    // SAFETY: `store` is the live store of `builder` (module docs); the callback is a plain
    // function with the `X509_STORE_CTX_verify_cb` signature that does not unwind.
    unsafe { X509_STORE_set_verify_cb(store, Some(callback)) }
}

unsafe extern "C" fn crl_callback(ok: c_int, ctx: *mut sys::X509_STORE_CTX) -> c_int {
    // SAFETY: OpenSSL calls the verify callback with the live context it is verifying.
    unsafe { crl_decision(ok, ctx) }
}

/// The verify callback's decision. Fails closed: anything it cannot establish keeps `ok`.
///
/// # Safety
/// `ctx` must be the live `X509_STORE_CTX` OpenSSL passes to its verify callback.
unsafe fn crl_decision(ok: c_int, ctx: *mut sys::X509_STORE_CTX) -> c_int {
    if ok != 0 || ctx.is_null() {
        return ok;
    }
    // SAFETY: `ctx` is non-null and live for the duration of the callback (caller contract);
    // the reference is dropped before returning.
    let context: &X509StoreContextRef = unsafe { &*ctx.cast::<X509StoreContextRef>() };
    let error = context.error().as_raw();
    let depth = context.error_depth();
    let gap = match error {
        sys::X509_V_ERR_UNABLE_TO_GET_CRL => {
            let Some(certificate) = context.current_cert() else {
                return ok;
            };
            if issuer_published_crl(context, certificate) {
                CrlGap::NoneUsable
            } else {
                CrlGap::Unpublished
            }
        }
        sys::X509_V_ERR_CRL_HAS_EXPIRED | sys::X509_V_ERR_CRL_NOT_YET_VALID => CrlGap::Stale,
        _ => return ok,
    };
    let recorded = RECORDER.with(|recorder| {
        let Ok(mut recorder) = recorder.try_borrow_mut() else {
            return None;
        };
        let recorder = recorder.as_mut()?;
        recorder.gaps.push((depth, gap));
        Some(recorder.forgive_unusable)
    });
    let forgive = match (gap, recorded) {
        (CrlGap::Unpublished, _) => true,
        (_, Some(forgive_unusable)) => forgive_unusable,
        (_, None) => false,
    };
    if forgive { 1 } else { ok }
}

/// Whether the store holds any CRL issued under the certificate's issuer name. `true` (do not
/// forgive) when OpenSSL cannot say: a NULL answer is only taken as "none" after checking that
/// the store's lookup itself works.
fn issuer_published_crl(context: &X509StoreContextRef, certificate: &X509Ref) -> bool {
    let ctx = std::ptr::from_ref(context).cast::<sys::X509_STORE_CTX>();
    let name = std::ptr::from_ref(certificate.issuer_name()).cast::<sys::X509_NAME>();
    // Errors queued by earlier, unrelated calls must not read as a failed lookup below.
    drop(ErrorStack::get());
    // SAFETY: `ctx` and `name` come from live references (module docs); the returned stack is
    // owned by us and freed below together with the CRL references it holds.
    let crls = unsafe { X509_STORE_CTX_get1_crls(ctx, name) };
    if crls.is_null() {
        // NULL is both "no CRL" and "allocation failed"; an allocation failure leaves an entry
        // on OpenSSL's error queue, so only a clean queue means "none".
        return !ErrorStack::get().errors().is_empty();
    }
    let stack = crls.cast::<sys::OPENSSL_STACK>();
    // SAFETY: `stack` is the non-null stack just returned to us.
    let count = unsafe { sys::OPENSSL_sk_num(stack) };
    for index in 0..count.max(0) {
        // SAFETY: `index` is within the stack's length; each element is an X509_CRL whose
        // reference X509_STORE_CTX_get1_crls handed to us.
        unsafe { X509_CRL_free(sys::OPENSSL_sk_value(stack, index).cast::<sys::X509_CRL>()) };
    }
    // SAFETY: the elements were released above; this frees the stack itself.
    unsafe { sys::OPENSSL_sk_free(stack) };
    count > 0
}

unsafe extern "C" {
    // OpenSSL 1.1+/3.x, x509_vpm.c: copies the stack (and its objects); NULL clears.
    fn X509_VERIFY_PARAM_set1_policies(
        param: *mut sys::X509_VERIFY_PARAM,
        policies: *mut sys::stack_st_ASN1_OBJECT,
    ) -> c_int;
}

/// `X509_VERIFY_PARAM_set1_policies`: the RFC 5280 §6.1.1 user-initial-policy-set.
pub(crate) fn set_policies(
    param: &mut openssl::x509::verify::X509VerifyParamRef,
    policies: &openssl::stack::StackRef<openssl::asn1::Asn1Object>,
) -> Result<(), ErrorStack> {
    let param = std::ptr::from_mut(param).cast::<sys::X509_VERIFY_PARAM>();
    let policies = std::ptr::from_ref(policies)
        .cast::<sys::stack_st_ASN1_OBJECT>()
        .cast_mut();
    // SAFETY: both pointers come from live `foreign-types` references (module docs); OpenSSL
    // duplicates the stack and its objects, so nothing is retained beyond the call.
    if unsafe { X509_VERIFY_PARAM_set1_policies(param, policies) } == 1 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}

/// An OCSP GeneralizedTime as an `ASN1_TIME` (both are `ASN1_STRING` in OpenSSL, and every
/// `ASN1_TIME_*` function accepts a GeneralizedTime), so that it can be compared with
/// [`openssl::asn1::Asn1TimeRef::diff`] against a time the caller chose.
pub(crate) fn generalized_as_time(
    time: &openssl::asn1::Asn1GeneralizedTimeRef,
) -> &openssl::asn1::Asn1TimeRef {
    let pointer = std::ptr::from_ref(time).cast::<openssl::asn1::Asn1TimeRef>();
    // SAFETY: module docs (the reference address is the C pointer); ASN1_GENERALIZEDTIME and
    // ASN1_TIME are the same C type (`asn1_string_st`), and the lifetime is the input's.
    unsafe { &*pointer }
}
