//! The disk cache of revocation answers the S/MIME layer confirmed.
//!
//! One file per answer, named by the SHA-256 of what was asked (kind, URL and, for OCSP, the
//! DER request), holding a short header (format, nextUpdate, URL, request) and the answer
//! bytes. Files are written to a temporary file in the cache folder and renamed into place,
//! so a reader sees a whole entry or none. An entry is served while the evaluation time is
//! before its nextUpdate, and removed when found expired. The URL and request stored in the
//! header must equal the ones asked for, so a hash collision or a file put in the wrong
//! place is a miss, never another question's answer.
//!
//! Nothing here is trusted: a served answer goes through the S/MIME layer's full validation
//! again (signature, responder or CRL issuer, thisUpdate/nextUpdate against the evaluation
//! time), so a tampered cache can at worst withhold an answer or replay one that is still
//! valid.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The first line of every entry.
const MAGIC: &[u8] = b"imipsec-revocation-cache 1\n";

/// Longest entry header (magic, nextUpdate, URL, hex request) read back.
const MAX_HEADER_BYTES: u64 = 16 * 1024;

/// What was asked.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Question<'a> {
    /// An OCSP request to a responder.
    Ocsp { url: &'a str, request: &'a [u8] },
    /// A CRL at a distribution point.
    Crl { url: &'a str },
}

impl Question<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Question::Ocsp { .. } => "ocsp",
            Question::Crl { .. } => "crl",
        }
    }
    fn url(&self) -> &str {
        match self {
            Question::Ocsp { url, .. } | Question::Crl { url } => url,
        }
    }
    fn request_hex(&self) -> String {
        match self {
            Question::Ocsp { request, .. } => hex(request),
            Question::Crl { .. } => "-".to_owned(),
        }
    }
    fn file_name(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(self.kind().as_bytes());
        hash.update([0]);
        hash.update(self.url().as_bytes());
        hash.update([0]);
        if let Question::Ocsp { request, .. } = self {
            hash.update(request);
        }
        format!("{}.{}", hex(&hash.finalize()), self.kind())
    }
    fn header(&self, next_update: OffsetDateTime) -> Vec<u8> {
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(
            format!(
                "next_update {}\nurl {}\nrequest {}\n\n",
                next_update.unix_timestamp(),
                self.url(),
                self.request_hex()
            )
            .as_bytes(),
        );
        header
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Why the cache folder cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("revocation cache {}: {source}", .path.display())]
pub struct CacheError {
    /// The folder.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// A cache folder.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    /// Largest answer kept or read back.
    max_answer_bytes: u64,
}

/// An answer found in the cache.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// Valid until its nextUpdate, which is after the evaluation time.
    Fresh(Vec<u8>),
    /// No entry, or an unreadable one.
    Miss,
    /// An entry whose nextUpdate is not after the evaluation time (now removed).
    Expired(OffsetDateTime),
}

impl DiskCache {
    /// Opens the cache folder `dir`, creating it (mode 0700 on Unix) when missing; its parent
    /// must exist (a mistyped path is an error, not a new tree of folders).
    pub(crate) fn open(dir: &Path, max_answer_bytes: u64) -> Result<Self, CacheError> {
        let error = |source| CacheError {
            path: dir.to_path_buf(),
            source,
        };
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(dir) {
            Ok(()) => {}
            Err(exists) if exists.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(other) => return Err(error(other)),
        }
        if !std::fs::metadata(dir).map_err(error)?.is_dir() {
            return Err(error(std::io::Error::other("not a directory")));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            max_answer_bytes,
        })
    }

    /// The answer to `question` if one is cached and its nextUpdate is after `at`.
    pub(crate) fn get(&self, question: &Question<'_>, at: OffsetDateTime) -> Lookup {
        let path = self.dir.join(question.file_name());
        let Ok(file) = std::fs::File::open(&path) else {
            return Lookup::Miss;
        };
        let mut bytes = Vec::new();
        if file
            .take(MAX_HEADER_BYTES + self.max_answer_bytes + 1)
            .read_to_end(&mut bytes)
            .is_err()
        {
            return Lookup::Miss;
        }
        let Some((next_update, answer)) = parse(&bytes, question) else {
            tracing::warn!(file = %path.display(), "revocation cache: unreadable entry ignored");
            return Lookup::Miss;
        };
        if next_update <= at {
            // Past its nextUpdate: never served again. Removal is best effort (another
            // process may have replaced it with a fresh answer meanwhile, which a later
            // lookup then simply misses).
            let _ = std::fs::remove_file(&path);
            return Lookup::Expired(next_update);
        }
        if answer.len() as u64 > self.max_answer_bytes || answer.is_empty() {
            return Lookup::Miss;
        }
        Lookup::Fresh(answer.to_vec())
    }

    /// Stores `answer` for `question` until `next_update`, atomically (temporary file in the
    /// folder, then rename). Errors are logged, not returned: a cache that cannot be written
    /// costs a refetch, never a verdict.
    pub(crate) fn put(&self, question: &Question<'_>, answer: &[u8], next_update: OffsetDateTime) {
        if answer.is_empty() || answer.len() as u64 > self.max_answer_bytes {
            return;
        }
        let path = self.dir.join(question.file_name());
        let written = (|| -> std::io::Result<()> {
            let mut temporary = tempfile::Builder::new()
                .prefix(".incoming-")
                .tempfile_in(&self.dir)?;
            temporary.write_all(&question.header(next_update))?;
            temporary.write_all(answer)?;
            temporary.as_file().sync_all()?;
            temporary.persist(&path).map_err(|error| error.error)?;
            Ok(())
        })();
        if let Err(error) = written {
            tracing::warn!(file = %path.display(), %error, "revocation cache: cannot store answer");
        }
    }
}

/// The nextUpdate and answer of an entry, if its header matches `question`.
fn parse<'a>(bytes: &'a [u8], question: &Question<'_>) -> Option<(OffsetDateTime, &'a [u8])> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let end = rest.windows(2).position(|pair| pair == b"\n\n")?;
    let (header, answer) = rest.split_at_checked(end)?;
    let answer = answer.get(2..)?;
    let header = std::str::from_utf8(header).ok()?;
    let mut lines = header.split('\n');
    let next_update: i64 = lines.next()?.strip_prefix("next_update ")?.parse().ok()?;
    let url = lines.next()?.strip_prefix("url ")?;
    let request = lines.next()?.strip_prefix("request ")?;
    if lines.next().is_some() || url != question.url() || request != question.request_hex() {
        return None;
    }
    let next_update = OffsetDateTime::from_unix_timestamp(next_update).ok()?;
    Some((next_update, answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn an_entry_is_served_until_its_next_update_and_then_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 1000).unwrap();
        let question = Question::Ocsp {
            url: "http://ocsp.example/",
            request: b"\x30\x03\x02\x01\x01",
        };
        let next = datetime!(2026-06-01 12:00:00 UTC);
        cache.put(&question, b"answer", next);
        assert!(
            matches!(cache.get(&question, datetime!(2026-06-01 11:59:59 UTC)), Lookup::Fresh(a) if a == b"answer")
        );
        assert!(matches!(cache.get(&question, next), Lookup::Expired(_)));
        assert!(matches!(
            cache.get(&question, datetime!(2026-06-01 11:00:00 UTC)),
            Lookup::Miss
        ));
    }

    /// Another question's entry under this question's file name (a collision, or a file
    /// copied in) is a miss: the header names what was asked.
    #[test]
    fn cache_entry_for_another_question_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 1000).unwrap();
        let asked = Question::Ocsp {
            url: "http://ocsp.example/",
            request: b"request-a",
        };
        let other = Question::Ocsp {
            url: "http://ocsp.example/",
            request: b"request-b",
        };
        let next = datetime!(2030-01-01 00:00:00 UTC);
        cache.put(&other, b"answer-b", next);
        std::fs::rename(
            dir.path().join(other.file_name()),
            dir.path().join(asked.file_name()),
        )
        .unwrap();
        let at = datetime!(2026-01-01 00:00:00 UTC);
        assert!(matches!(cache.get(&asked, at), Lookup::Miss));
        // The CRL and OCSP entries of one URL are different files.
        let crl = Question::Crl {
            url: "http://ocsp.example/",
        };
        assert_ne!(crl.file_name(), asked.file_name());
    }

    #[test]
    fn oversized_and_empty_answers_are_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 4).unwrap();
        let question = Question::Crl { url: "http://c/" };
        let next = datetime!(2030-01-01 00:00:00 UTC);
        cache.put(&question, b"12345", next);
        cache.put(&question, b"", next);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
