//! Message digests through algorithms fetched from OpenSSL's provider once per process.
//!
//! OpenSSL 3 resolves the legacy handles (`EVP_sha256()` and the like, what
//! `MessageDigest::sha256()` and `Md::sha256()` return) to a provider implementation on every
//! use: a fetch that takes the provider store's lock and hashes the algorithm's name. That
//! was about 2% of `imipsec audit`'s time, three digests per message (issue 17, `perf`:
//! `EVP_MD_fetch` under the content digest, the chain-cache key and the message digest). An
//! explicitly fetched algorithm skips it. When a fetch fails (a provider configuration
//! without the algorithm), the legacy handle is used, which fails or works exactly as before.

use std::sync::OnceLock;

use openssl::error::ErrorStack;
use openssl::md::{Md, MdRef};
use openssl::md_ctx::MdCtx;

/// One algorithm's fetched implementation, looked up on first use.
pub(crate) struct Fetched {
    name: &'static str,
    legacy: fn() -> &'static MdRef,
    slot: OnceLock<Option<Md>>,
}

impl Fetched {
    pub(crate) const fn new(name: &'static str, legacy: fn() -> &'static MdRef) -> Self {
        Self {
            name,
            legacy,
            slot: OnceLock::new(),
        }
    }

    /// The fetched algorithm, or the legacy handle when the fetch failed.
    pub(crate) fn md(&'static self) -> &'static MdRef {
        match self
            .slot
            .get_or_init(|| Md::fetch(None, self.name, None).ok())
        {
            Some(md) => md,
            None => (self.legacy)(),
        }
    }
}

pub(crate) static SHA256: Fetched = Fetched::new("SHA2-256", Md::sha256);

/// The digest of `parts`, concatenated, with `md`.
pub(crate) fn digest(md: &MdRef, parts: &[&[u8]]) -> Result<Vec<u8>, ErrorStack> {
    let mut context = MdCtx::new()?;
    context.digest_init(md)?;
    for part in parts {
        context.digest_update(part)?;
    }
    let mut out = vec![0; md.size()];
    let written = context.digest_final(&mut out)?;
    out.truncate(written);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetched_sha256_is_sha256() {
        let parts: [&[u8]; 2] = [b"ab", b"c"];
        let ours = digest(SHA256.md(), &parts).unwrap();
        assert_eq!(ours, openssl::sha::sha256(b"abc"));
        // The fetched handle, not the legacy fallback, on a default OpenSSL 3.
        assert!(SHA256.slot.get().is_some_and(Option::is_some));
    }
}
