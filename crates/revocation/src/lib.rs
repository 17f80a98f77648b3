#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod cache;
mod http;
mod source;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use time::OffsetDateTime;

pub use cache::CacheError;
pub use http::FetchError;

use cache::{DiskCache, Lookup, Question};

/// Named bounds on every fetch. Each is checked before or during the transfer, never after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Seconds to establish the TCP connection (name resolution included).
    pub connect_timeout_secs: u64,
    /// Seconds for the whole exchange: resolving, connecting, sending and reading the full
    /// answer. A responder that drips bytes is cut off here.
    pub transfer_timeout_secs: u64,
    /// Largest OCSP response read (RFC 6960 responses are a few kilobytes).
    pub ocsp_response_bytes: u64,
    /// Largest CRL read (the largest public CAs publish CRLs of a few megabytes).
    pub crl_bytes: u64,
    /// Longest URL fetched.
    pub url_bytes: usize,
    /// Seconds during which a URL that just failed is not asked again (the failure is
    /// answered from memory), so that a responder that is down costs one timeout per
    /// interval instead of one per message. Negative results are never written to disk.
    pub failure_memory_secs: u64,
    /// Most URLs remembered as failed; the memory is emptied when full.
    pub failure_memory_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect_timeout_secs: 5,
            transfer_timeout_secs: 10,
            ocsp_response_bytes: 64 * 1024,
            crl_bytes: 20 * 1024 * 1024,
            url_bytes: 2048,
            failure_memory_secs: 60,
            failure_memory_entries: 1024,
        }
    }
}

/// Fetches OCSP responses and CRLs over `http://`, with an optional disk cache of the
/// answers the S/MIME layer confirmed. Implements
/// [`imipsec_smime::RevocationSource`].
///
/// Order for each question: a cached answer whose nextUpdate is after the evaluation time
/// is served without network; otherwise the URL is fetched (unless it failed less than
/// [`Limits::failure_memory_secs`] before); an answer is written to the cache only when the
/// S/MIME layer calls `confirmed` after validating it. No lock is held during network I/O.
#[derive(Debug)]
pub struct Fetcher {
    http: http::Http,
    cache: Option<DiskCache>,
    limits: Limits,
    /// URL -> evaluation time of its last failure.
    failures: Mutex<HashMap<String, OffsetDateTime>>,
}

impl Fetcher {
    /// A fetcher with `limits`, caching in the folder `cache_dir` when one is given (created
    /// mode 0700 when missing; its parent must exist).
    ///
    /// # Errors
    /// [`CacheError`] when the cache folder cannot be created or is not a folder.
    pub fn new(limits: Limits, cache_dir: Option<&Path>) -> Result<Self, CacheError> {
        let largest = limits.ocsp_response_bytes.max(limits.crl_bytes);
        let cache = cache_dir
            .map(|dir| DiskCache::open(dir, largest))
            .transpose()?;
        Ok(Self {
            http: http::Http::new(&limits),
            cache,
            limits,
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn answer(&self, question: Question<'_>, at: OffsetDateTime) -> Result<Vec<u8>, String> {
        let url = match question {
            Question::Ocsp { url, .. } | Question::Crl { url } => url,
        };
        let mut expired = None;
        if let Some(cache) = &self.cache {
            match cache.get(&question, at) {
                Lookup::Fresh(answer) => return Ok(answer),
                Lookup::Expired(next_update) => expired = Some(next_update),
                Lookup::Miss => {}
            }
        }
        let cached_note = match (&self.cache, expired) {
            (None, _) => String::new(),
            (Some(_), None) => "; no cached answer".to_owned(),
            (Some(_), Some(next_update)) => {
                format!("; the cached answer expired at its nextUpdate {next_update}")
            }
        };
        if let Some(failed_at) = self.recent_failure(url, at) {
            return Err(format!(
                "{url} failed at {failed_at} (not asked again for {} s){cached_note}",
                self.limits.failure_memory_secs
            ));
        }
        let fetched = match question {
            Question::Ocsp { url, request } => self.http.post_ocsp(url, request),
            Question::Crl { url } => self.http.get_crl(url),
        };
        fetched.map_err(|error| {
            self.remember_failure(url, at);
            tracing::warn!(%error, "revocation fetch failed");
            format!("{error}{cached_note}")
        })
    }

    fn recent_failure(&self, url: &str, at: OffsetDateTime) -> Option<OffsetDateTime> {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let failed_at = *failures.get(url)?;
        let age = at - failed_at;
        let window = time::Duration::seconds(
            i64::try_from(self.limits.failure_memory_secs).unwrap_or(i64::MAX),
        );
        (age >= time::Duration::ZERO && age < window).then_some(failed_at)
    }

    fn remember_failure(&self, url: &str, at: OffsetDateTime) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if failures.len() >= self.limits.failure_memory_entries {
            failures.clear();
        }
        failures.insert(url.to_owned(), at);
    }

    fn forget_failure(&self, url: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.remove(url);
    }

    fn store(&self, question: Question<'_>, answer: &[u8], next_update: OffsetDateTime) {
        if let Some(cache) = &self.cache {
            cache.put(&question, answer, next_update);
        }
    }
}
