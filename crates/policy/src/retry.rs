//! Retrying what SQLite answers busy without waiting.
//!
//! SQLite's busy handler (`busy_timeout`) covers the common case, a lock another
//! connection holds. It is not called in the cases where waiting could deadlock or where
//! SQLite cannot tell whether waiting helps: a WAL recovery run by another connection
//! (`SQLITE_BUSY_RECOVERY`), a snapshot that went stale before a read transaction wanted to
//! write (`SQLITE_BUSY_SNAPSHOT`), a journal-mode switch, a connection closing the WAL.
//! Under CPU load these windows widen and concurrent processes failed (issue #16). Each
//! attempt here is a whole unit of work (open step, transaction), so running it again is
//! safe: a failed attempt has written nothing.
//!
//! The monotonic clock bounds the retries; it is not the evaluation time (which stays an
//! argument everywhere).

use std::time::{Duration, Instant};

use crate::error::StoreError;

/// Longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Runs `attempt` until it succeeds, fails with anything but [`StoreError::Busy`], or
/// `timeout` has passed since the first attempt (then the last busy error is returned).
pub(crate) fn retry<T>(
    timeout: Duration,
    mut attempt: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let start = Instant::now();
    // Processes started together back off by different amounts.
    let mut pause = Duration::from_micros(500 + u64::from(std::process::id() % 997));
    loop {
        match attempt() {
            Err(StoreError::Busy) => {
                let left = timeout.saturating_sub(start.elapsed());
                if left.is_zero() {
                    return Err(StoreError::Busy);
                }
                std::thread::sleep(pause.min(left));
                pause = (pause * 2).min(MAX_PAUSE);
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_retried_until_it_clears() {
        let mut left = 3;
        let value = retry(Duration::from_secs(5), || {
            if left == 0 {
                Ok(7)
            } else {
                left -= 1;
                Err(StoreError::Busy)
            }
        });
        assert_eq!(value.unwrap(), 7);
    }

    #[test]
    fn busy_past_the_timeout_is_returned() {
        let mut attempts = 0;
        let value: Result<(), _> = retry(Duration::from_millis(20), || {
            attempts += 1;
            Err(StoreError::Busy)
        });
        assert!(matches!(value, Err(StoreError::Busy)));
        assert!(attempts > 1);
    }

    #[test]
    fn other_errors_are_not_retried() {
        let mut attempts = 0;
        let value: Result<(), _> = retry(Duration::from_secs(5), || {
            attempts += 1;
            Err(StoreError::Corrupt)
        });
        assert!(matches!(value, Err(StoreError::Corrupt)));
        assert_eq!(attempts, 1);
    }
}
