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
//! - [`forgive_unpublished_crl`]: `X509_STORE_set_verify_cb` with a callback that lets
//!   `X509_V_ERR_UNABLE_TO_GET_CRL` pass for a certificate whose issuer has no CRL at all in the
//!   store, which is how [`crate::RevocationMode::IfAvailable`] is expressed on top of
//!   `CRL_CHECK_ALL`.
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

/// Install the callback that lets `X509_V_ERR_UNABLE_TO_GET_CRL` pass for a certificate
/// whose issuer has no CRL in the store. Every other error,
/// including a CRL that exists but is out of scope, expired or badly signed, still fails.
pub(crate) fn forgive_unpublished_crl(builder: &mut X509StoreBuilderRef) {
    let store = std::ptr::from_mut(builder).cast::<sys::X509_STORE>();
    let callback: unsafe extern "C" fn(c_int, *mut sys::X509_STORE_CTX) -> c_int =
        forgive_any_depth;
    // SAFETY: `store` is the live store of `builder` (module docs); the callback is a plain
    // function with the `X509_STORE_CTX_verify_cb` signature that does not unwind.
    unsafe { X509_STORE_set_verify_cb(store, Some(callback)) }
}

unsafe extern "C" fn forgive_any_depth(ok: c_int, ctx: *mut sys::X509_STORE_CTX) -> c_int {
    // SAFETY: OpenSSL calls the verify callback with the live context it is verifying.
    unsafe { forgive_missing_crl(ok, ctx) }
}

/// The verify callback's decision. Fails closed: anything it cannot establish keeps `ok`.
///
/// # Safety
/// `ctx` must be the live `X509_STORE_CTX` OpenSSL passes to its verify callback.
unsafe fn forgive_missing_crl(ok: c_int, ctx: *mut sys::X509_STORE_CTX) -> c_int {
    if ok != 0 || ctx.is_null() {
        return ok;
    }
    // SAFETY: `ctx` is non-null and live for the duration of the callback (caller contract);
    // the reference is dropped before returning.
    let context: &X509StoreContextRef = unsafe { &*ctx.cast::<X509StoreContextRef>() };
    if context.error().as_raw() != sys::X509_V_ERR_UNABLE_TO_GET_CRL {
        return ok;
    }
    let Some(certificate) = context.current_cert() else {
        return ok;
    };
    if issuer_published_crl(context, certificate) {
        ok
    } else {
        1
    }
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
