//! The storage conformance suite, run against the SQLite backend on a
//! database file (several connections, WAL, real locking), one fresh file
//! per case.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::path::PathBuf;

use evident_store::conformance::{Harness, sqlite_execute};
use evident_store::sqlite::SqliteStore;
use evident_store::{Store, StoreError};

struct Sqlite {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Sqlite {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evident.db");
        Sqlite { _dir: dir, path }
    }
}

impl Harness for Sqlite {
    fn connect(&mut self) -> Box<dyn Store> {
        Box::new(SqliteStore::open(&self.path, true).unwrap())
    }

    fn raw_sql(&mut self, sql: &str) -> Result<(), StoreError> {
        let store = SqliteStore::open(&self.path, false)?;
        sqlite_execute(&store, sql)
    }

    /// Entries are keyed by `pos` (migration 6); `idx` is computed from it.
    fn position_column(&self) -> &'static str {
        "pos"
    }
}

evident_store::store_conformance_tests!(Sqlite::new());
