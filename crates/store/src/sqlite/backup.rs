//! Online backup of a SQLite database: a consistent snapshot taken while a
//! server goes on writing, with SQLite's backup API
//! (<https://www.sqlite.org/backup.html>).
//!
//! The copy is made in steps so that progress can be shown, each step
//! under a short read lock that never blocks writers (WAL). SQLite starts
//! the copy over when another connection writes between two steps; on a
//! busy database that could go on for ever, so after a few restarts the
//! rest is copied in one step, which holds one read snapshot for the whole
//! copy and so always finishes with a consistent image.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};

use crate::error::{Result, StoreError};
use crate::sqlite::map_err;

/// Pages per step: 8 MiB at the 8 KiB pages a new database gets (see
/// `PAGE_SIZE` in the parent module), 4 MiB at the 4 KiB of older ones.
const PAGES_PER_STEP: i32 = 1024;

/// Restarts tolerated before the rest is copied in one step.
const MAX_RESTARTS: u32 = 3;

/// How long a step waits for a lock before it tries again.
const LOCKED_WAIT: Duration = Duration::from_millis(50);

/// Copies the database `from` into a new file at `to` (which must not
/// exist), calling `progress(pages done, pages total)` as it goes.
/// Returns the number of pages copied.
pub fn backup_database(
    from: &Connection,
    to: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64> {
    if to.exists() {
        return Err(StoreError::Io {
            path: to.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "file exists"),
        });
    }
    let mut dest = Connection::open(to).map_err(map_err)?;
    let pages = {
        let b = Backup::new(from, &mut dest).map_err(map_err)?;
        let mut restarts = 0u32;
        let mut last_remaining: Option<i32> = None;
        loop {
            let n = if restarts >= MAX_RESTARTS {
                -1
            } else {
                PAGES_PER_STEP
            };
            let step = b.step(n).map_err(map_err)?;
            let p = b.progress();
            if last_remaining.is_some_and(|r| p.remaining > r) {
                restarts += 1;
            }
            last_remaining = Some(p.remaining);
            let total = u64::try_from(p.pagecount).unwrap_or(0);
            let left = u64::try_from(p.remaining).unwrap_or(0);
            progress(total.saturating_sub(left), total);
            match step {
                StepResult::Done => break total,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked => std::thread::sleep(LOCKED_WAIT),
                // StepResult is non-exhaustive.
                _ => std::thread::sleep(LOCKED_WAIT),
            }
        }
    };
    // Durable before anyone is told the backup exists.
    dest.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .map_err(map_err)?;
    dest.close().map_err(|(_, e)| map_err(e))?;
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(|source| StoreError::Io {
            path: to.to_owned(),
            source,
        })?;
    Ok(pages)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn copies_every_row_and_refuses_to_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let src = Connection::open(tmp.path().join("a.db")).unwrap();
        src.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (x BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000)
             INSERT INTO t SELECT randomblob(1000) FROM n;",
        )
        .unwrap();
        let to = tmp.path().join("b.db");
        let mut calls = Vec::new();
        let pages = backup_database(&src, &to, &mut |d, t| calls.push((d, t))).unwrap();
        assert!(pages > u64::try_from(PAGES_PER_STEP).unwrap(), "{pages}");
        assert!(calls.len() >= 2, "progress in steps: {calls:?}");
        assert_eq!(calls.last(), Some(&(pages, pages)));
        let copy = Connection::open(&to).unwrap();
        let (n, sum): (i64, i64) = copy
            .query_row("SELECT count(*), sum(length(x)) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((n, sum), (6000, 6_000_000));
        let again = backup_database(&src, &to, &mut |_, _| {});
        assert!(matches!(again, Err(StoreError::Io { .. })), "{again:?}");
    }
}
