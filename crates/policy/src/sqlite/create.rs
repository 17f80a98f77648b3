//! Creating a store safely against a race of creators.
//!
//! Sixteen processes granting at once into a store that did not exist yet used to race:
//! each created the file, one switched it to WAL while the others read its header, one
//! migrated while the others saw version 0 (issue #16). Now a creator builds the complete
//! store (WAL mode, current schema) under a private name in the same directory, closes it,
//! and links it into place with `link(2)`, which fails if the name exists: exactly one
//! creator wins, and every process only ever opens a finished store.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OpenFlags};

use super::{StoreOptions, db, ensure_wal, migrate};
use crate::error::StoreError;

/// Distinguishes the private names of several creators in one process.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Creates the store at `path` unless something is there; says whether this call created
/// it. A missing parent directory is [`StoreError::Unavailable`] (never created: a
/// mistyped path should not grow directories).
pub(super) fn create_if_missing(path: &Path, options: &StoreOptions) -> Result<bool, StoreError> {
    if !matches!(path.try_exists(), Ok(false)) {
        return Ok(false);
    }
    let parent = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => parent,
        None => Path::new("."),
    };
    if matches!(parent.try_exists(), Ok(false)) {
        return Err(unavailable(io::Error::new(
            io::ErrorKind::NotFound,
            format!("directory {} does not exist", parent.display()),
        )));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let private = parent.join(format!(
        ".{name}.creating.{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let built = build(&private, options);
    let linked = built.and_then(|()| match std::fs::hard_link(&private, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(unavailable(e)),
    });
    remove_private(&private);
    linked
}

/// Builds a complete store at the private name and closes it (the close checkpoints the
/// WAL into the file and removes it; WAL mode stays recorded in the header).
fn build(private: &Path, options: &StoreOptions) -> Result<(), StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut connection = Connection::open_with_flags(private, flags).map_err(db)?;
    connection.busy_timeout(options.busy_timeout).map_err(db)?;
    ensure_wal(&connection)?;
    migrate::migrate(&mut connection)?;
    connection.close().map_err(|(_, e)| db(e))
}

fn remove_private(private: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = PathBuf::from(private);
        file.as_mut_os_string().push(suffix);
        // Best effort: a leftover private file is harmless (never opened by name).
        let _ = std::fs::remove_file(file);
    }
}

fn unavailable(error: io::Error) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}
