//! A stamp that changes whenever tenants or API keys change, so that a
//! server may keep the keys it has looked up and still see a revocation
//! or a suspension on the very next request.
//!
//! Why a file beside the database and not a row in it: in WAL mode every
//! commit by another connection makes a reader's next transaction throw
//! away its whole page cache, and the server's writer commits hundreds of
//! times a second. A key lookup per request therefore re-read its pages
//! through the WAL every time, about a fifth of the HTTP worker's CPU under
//! single-entry load (BENCHMARKS.md, issue 4). The stamp file changes only
//! when [`SqliteStore`](super::SqliteStore) changes a tenant or a key,
//! after the change is committed, whichever process made it (the server,
//! the CLI on the same data directory, a second server); reading it is one
//! `pread` of 16 bytes.
//!
//! Each change writes 16 fresh random bytes, never a counter: two
//! processes changing keys at once cannot write the same value, so a
//! reader never mistakes a second change for the first. A reader compares
//! the stamp it read *before* a lookup with the stamp now: if a change
//! committed after that lookup, the stamp differs. What this cannot see —
//! a process that dies between its commit and its stamp, an attacker who
//! edits the tables directly — is why the server also bounds how long it
//! keeps a lookup (`evident-server`'s key cache).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Bytes in a stamp.
pub const STAMP_LEN: usize = 16;

/// The stamp file of the database at `db`: `<db>-auth`, beside SQLite's
/// own `-wal` and `-shm`.
pub fn stamp_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-auth");
    PathBuf::from(p)
}

fn open(db: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(stamp_path(db))
}

/// An open stamp file, read on every authenticated request.
#[derive(Debug)]
pub struct AuthStamp {
    file: File,
}

impl AuthStamp {
    /// Opens (creating, if missing) the stamp file of the database at
    /// `db`.
    pub fn open(db: &Path) -> io::Result<Self> {
        Ok(AuthStamp { file: open(db)? })
    }

    /// The stamp now. A file not written yet reads as zeros, which is a
    /// stamp like any other: the first change replaces it.
    pub fn read(&self) -> io::Result<[u8; STAMP_LEN]> {
        let mut b = [0u8; STAMP_LEN];
        let n = self.file.read_at(&mut b, 0)?;
        // A short file (created, not yet written) keeps the zeros.
        b[n..].fill(0);
        Ok(b)
    }
}

/// Gives the stamp of the database at `db` a new value: called after a
/// change to tenants or API keys has committed.
pub fn bump(db: &Path) -> io::Result<()> {
    let mut b = [0u8; STAMP_LEN];
    getrandom::fill(&mut b).map_err(io::Error::other)?;
    open(db)?.write_all_at(&b, 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_bump_is_seen_by_an_open_reader() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("evident.db");
        let stamp = AuthStamp::open(&db).unwrap();
        assert_eq!(stamp.read().unwrap(), [0; STAMP_LEN], "not written yet");
        let mut seen = vec![stamp.read().unwrap()];
        for _ in 0..5 {
            bump(&db).unwrap();
            let now = stamp.read().unwrap();
            assert!(!seen.contains(&now), "{now:?} was seen before");
            assert_eq!(stamp.read().unwrap(), now, "stable between bumps");
            seen.push(now);
        }
        assert_eq!(
            stamp_path(&db).file_name().unwrap(),
            "evident.db-auth",
            "beside the database"
        );
    }

    #[test]
    fn the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        bump(&db).unwrap();
        let mode = std::fs::metadata(stamp_path(&db))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
