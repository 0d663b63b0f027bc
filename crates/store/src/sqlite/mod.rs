//! The embedded SQLite backend, Evident's default.
//!
//! One database file in WAL mode with `synchronous = FULL`: a batch is
//! acknowledged only once its commit is on disk, and WAL lets readers
//! (verify, export, the HTTP read API) run while a batch is being written.
//! `NORMAL` would be faster but can lose the last acknowledged batches on
//! power loss, which a ledger that hands out receipts cannot allow.
//!
//! Appends take SQLite's write lock with `BEGIN IMMEDIATE` before reading
//! the head, so concurrent writers (a CLI append while a server runs) queue
//! on the lock and never sequence from a stale head.
//!
//! A connection that appends hands WAL checkpoints (copying committed pages
//! from the WAL into the database file) to a thread of its own with its
//! own connection, woken after each commit, instead of running them inside
//! the commit every 1,000 pages. A commit is durable once the WAL is
//! synced, either way; the checkpoint only bounds the WAL's size, and off
//! the writer's thread it overlaps with the next batch.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use evident_core::Hash;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::backend::{AppendTxn, Store};
use crate::error::{Result, StoreError};
use crate::migrate::{self, Migration};
use crate::model::{
    ApiKeyRecord, EntryRef, Existing, Head, KeyRecord, KeyRotation, LogId, LogInfo,
    MigrationStatus, NewApiKey, NewEntry, NewTile, Restore, StoredCheckpoint, TenantInfo,
    TenantStatus, WritesPause,
};
use request_ids::{Claim, Tail, Tails};

mod auth;
pub mod auth_stamp;
pub mod backup;
mod curate;
mod guards;
mod request_ids;

pub use guards::GuardCheck;

/// SQLite's migrations, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "tenants",
        sql: include_str!("../../migrations/sqlite/0002_tenants.sql"),
    },
    Migration {
        version: 3,
        name: "keys_redaction_repair",
        sql: include_str!("../../migrations/sqlite/0003_keys_redaction_repair.sql"),
    },
    Migration {
        version: 4,
        name: "meta_guard",
        sql: include_str!("../../migrations/sqlite/0004_meta_guard.sql"),
    },
    Migration {
        version: 5,
        name: "request_id_runs",
        sql: include_str!("../../migrations/sqlite/0005_request_id_runs.sql"),
    },
    Migration {
        version: 6,
        name: "entries_by_position",
        sql: include_str!("../../migrations/sqlite/0006_entries_by_position.sql"),
    },
];

/// How long a writer waits for another's lock before giving up with
/// `db.unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Prepared statements kept per connection: more than the store has, so
/// that the per-request API key lookup is never evicted by the appends.
const STATEMENT_CACHE: usize = 64;

/// A connection to one SQLite database file.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    /// The database file; `None` in memory.
    path: Option<PathBuf>,
    /// Started on the first append to a database file.
    checkpointer: Option<Checkpointer>,
    /// What this connection knows of each log's newest request ids.
    tails: Tails,
    /// The WAL file's length when the open snapshot began
    /// ([`Store::renew_snapshot`]).
    snapshot_wal: Option<u64>,
}

/// A thread with its own connection that runs a passive WAL checkpoint
/// whenever it is woken, so that commits do not run them.
///
/// SQLite starts the WAL over only when a write transaction begins after
/// a checkpoint has copied every frame. A writer that begins its next
/// batch at once never sees that, so the WAL would grow for as long as
/// the writer keeps busy; past [`WAL_LIMIT_BYTES`] the writer waits for
/// the checkpoint of its last commit before it begins the next.
#[derive(Debug)]
struct Checkpointer {
    wake: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    progress: Arc<(Mutex<CheckpointProgress>, Condvar)>,
    /// [`WAL_LIMIT_BYTES`] in pages (WAL frames), but for tests.
    wal_limit: i64,
}

#[derive(Debug, Default)]
struct CheckpointProgress {
    /// Wake-ups sent (one per commit).
    requested: u64,
    /// Wake-ups a finished checkpoint has covered.
    done: u64,
    /// Frames in the WAL at the last checkpoint.
    wal_frames: i64,
    /// Bytes of entries committed since the last checkpoint began.
    pending_bytes: usize,
    /// What the thread is doing, which says whether a commit wakes it.
    state: CheckpointState,
}

/// Where the checkpoint thread is. Only a commit that finds it `Idle`, or
/// that takes `Waiting` past [`CHECKPOINT_NOW_BYTES`], wakes it: waking
/// it at every commit (1,600 a second under single-entry appends) cost a
/// context switch each, which took a core from the threads answering
/// requests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum CheckpointState {
    /// Waiting for a first commit since the last checkpoint.
    #[default]
    Idle,
    /// Waiting out [`CHECKPOINT_INTERVAL`].
    Waiting,
    /// Woken, or checkpointing: commits only count.
    Busy,
}

/// WAL size past which the writer lets the checkpoint catch up, as
/// [`Checkpointer::wal_limit`] counts it in pages of the database's size.
const WAL_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// The page size of a database this backend creates. SQLite fixes it when
/// the first table is made, and a WAL database keeps it for good, so
/// databases created before (at SQLite's 4 KiB) keep theirs; nothing
/// depends on which it is.
///
/// Larger pages mean fewer WAL frames for a batch to checksum and write
/// (two `pwrite`s each), fewer b-tree splits and fewer pages for the
/// checkpoint to copy; but every commit writes whole pages, and a commit
/// of a few single entries touches about seven (the entries' last leaf,
/// the checkpoint row and its index, a tile, the header page), so small
/// commits write more and wait longer on `fsync`. Measured on 1M CLI
/// appends and on the HTTP benchmark (BENCHMARKS.md, issues 3 and 4, with
/// the inserts below run without statement journals):
///
/// | page | 1M append | single entries/s | 1,000-entry batches/s |
/// |---|---|---|---|
/// | 4 KiB | 3.09-3.23 s | 34,172 | 236,077 |
/// | 8 KiB | 2.68-2.84 s | 34,519 | 264,064 |
/// | 16 KiB | 2.41-2.68 s | 30,041-30,083 | 253,332-263,921 |
///
/// 32 and 64 KiB appended more slowly again. 8 KiB takes most of the gain
/// and costs single entries nothing.
const PAGE_SIZE: u32 = 8_192;

/// The shortest time between two checkpoints. A checkpoint copies every
/// page the commits since the last one changed and syncs the database
/// file; small commits change the same few pages over and over (the
/// request-id index's hot leaves, the partial tiles, the head), so
/// checkpointing after each of hundreds of commits a second copied and
/// synced those pages hundreds of times (17% of the server's CPU under
/// single-entry appends, BENCHMARKS.md, issue 4). Waiting a little lets
/// one copy serve them all; the WAL stays bounded by [`WAL_LIMIT_BYTES`].
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(50);

/// Bytes of entries committed since the last checkpoint from which the
/// next one starts without waiting out [`CHECKPOINT_INTERVAL`]: large
/// batches write mostly new pages, which gain nothing from waiting, and a
/// checkpoint held back behind several of them copied megabytes at once
/// while the writer wrote, doubling the p99 latency of 1,000-entry
/// requests. It also keeps the WAL's growth between two checkpoints small
/// next to [`WAL_LIMIT_BYTES`].
const CHECKPOINT_NOW_BYTES: usize = 512 * 1024;

/// The longest a writer waits for that.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(10);

impl Checkpointer {
    fn start(path: &Path) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(map_err)?;
        conn.execute_batch("PRAGMA synchronous = FULL;")
            .map_err(map_err)?;
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(map_err)?;
        let progress = Arc::new((Mutex::new(CheckpointProgress::default()), Condvar::new()));
        let shared = Arc::clone(&progress);
        let (wake, woken) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let mut last = Instant::now();
                loop {
                    // Sleeps until a commit comes, unless some came while
                    // the last checkpoint ran.
                    let idle = shared.0.lock().is_ok_and(|mut p| {
                        let idle = p.done == p.requested;
                        p.state = if idle {
                            CheckpointState::Idle
                        } else {
                            CheckpointState::Busy
                        };
                        idle
                    });
                    if idle && woken.recv().is_err() {
                        break;
                    }
                    // Checkpoints at most every CHECKPOINT_INTERVAL: the
                    // commits that came in meanwhile need one between them.
                    loop {
                        let left = CHECKPOINT_INTERVAL.saturating_sub(last.elapsed());
                        let wait = shared.0.lock().is_ok_and(|mut p| {
                            let wait = !left.is_zero() && p.pending_bytes < CHECKPOINT_NOW_BYTES;
                            p.state = if wait {
                                CheckpointState::Waiting
                            } else {
                                CheckpointState::Busy
                            };
                            wait
                        });
                        if !wait
                            || matches!(
                                woken.recv_timeout(left),
                                Err(mpsc::RecvTimeoutError::Disconnected)
                            )
                        {
                            break;
                        }
                    }
                    while woken.try_recv().is_ok() {}
                    last = Instant::now();
                    let covers = shared.0.lock().map_or(0, |mut p| {
                        p.state = CheckpointState::Busy;
                        p.pending_bytes = 0;
                        p.requested
                    });
                    // PASSIVE never waits for readers or the writer; what it
                    // cannot copy now, the next one will. An error (a busy
                    // database, a full disk) is the writer's to report.
                    let frames = conn
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1))
                        .unwrap_or(0);
                    if let Ok(mut p) = shared.0.lock() {
                        p.done = covers;
                        p.wal_frames = frames;
                    }
                    shared.1.notify_all();
                }
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start a thread: {e}")))?;
        Ok(Checkpointer {
            wake: Some(wake),
            thread: Some(thread),
            progress,
            wal_limit: WAL_LIMIT_BYTES / page_size.max(512),
        })
    }

    /// After a commit that wrote about `bytes` of entries.
    fn wake(&self, bytes: usize) {
        let send = self.progress.0.lock().map_or(true, |mut p| {
            p.requested += 1;
            p.pending_bytes += bytes;
            let send = match p.state {
                CheckpointState::Idle => true,
                CheckpointState::Waiting => p.pending_bytes >= CHECKPOINT_NOW_BYTES,
                CheckpointState::Busy => false,
            };
            if send {
                p.state = CheckpointState::Busy;
            }
            send
        });
        if let (true, Some(w)) = (send, &self.wake) {
            let _ = w.send(());
        }
    }

    /// Before a write transaction: if the WAL is large, waits until the
    /// last commit is checkpointed, so that this transaction starts the
    /// WAL over.
    fn keep_wal_bounded(&self) {
        let (lock, cond) = &*self.progress;
        let Ok(p) = lock.lock() else { return };
        if p.wal_frames <= self.wal_limit {
            return;
        }
        // Bounded, should the thread ever stop answering.
        let Ok((mut p, _)) = cond.wait_timeout_while(p, CHECKPOINT_WAIT, |p| p.done < p.requested)
        else {
            return;
        };
        p.wal_frames = 0;
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Closing the channel ends the thread after its current checkpoint.
        self.wake = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl SqliteStore {
    /// Opens (creating if `create`) the database at `path` and sets the
    /// connection up. Does not migrate.
    pub fn open(path: &Path, create: bool) -> Result<Self> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        let mut store = Self::setup(conn)?;
        store.path = Some(path.to_owned());
        Ok(store)
    }

    /// Opens a database file read-only, changing nothing in it (not even
    /// its journal mode): for reading a backup copy, e.g. as a repair's
    /// source.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
        Ok(SqliteStore {
            conn,
            path: None,
            checkpointer: None,
            tails: Tails::default(),
            snapshot_wal: None,
        })
    }

    /// A private in-memory database (tests, benchmarks).
    pub fn open_in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(map_err)?;
        Self::setup(conn)
    }

    fn setup(conn: Connection) -> Result<Self> {
        conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Takes effect only on a new, empty database (see PAGE_SIZE).
        conn.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE};"))
            .map_err(map_err)?;
        // journal_mode answers with a row, so it is read, not executed.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(map_err)?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA cache_size = -32768;
             PRAGMA temp_store = MEMORY;",
        )
        .map_err(map_err)?;
        Ok(SqliteStore {
            conn,
            path: None,
            checkpointer: None,
            tails: Tails::default(),
            snapshot_wal: None,
        })
    }

    /// Tells servers that keep API-key lookups that tenants or keys
    /// changed ([`auth_stamp`]); called after the change committed.
    /// A failure is not the caller's: the change stands, and servers see it
    /// within their lookups' age limit instead of at once.
    fn auth_changed(&self) {
        if let Some(path) = &self.path {
            let _ = auth_stamp::bump(path);
        }
    }

    /// The length of the database's WAL file; 0 in memory, read-only or
    /// when there is none. The file does not shrink when the WAL starts
    /// over, so growth means commits went past its old end.
    fn wal_len(&self) -> u64 {
        self.path.as_ref().map_or(0, |p| {
            let mut wal = p.clone().into_os_string();
            wal.push("-wal");
            std::fs::metadata(wal).map_or(0, |m| m.len())
        })
    }

    /// The underlying connection, for tests that play the attacker.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn applied(&self) -> Result<Vec<(u32, String, String)>> {
        let exists: bool = self
            .conn
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
                [],
                |r| r.get(0),
            )
            .map_err(map_err)?;
        if !exists {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
            .map_err(map_err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(map_err)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_err)
    }
}

/// Maps SQLite errors to the store's: locks, I/O and a read-only or full
/// disk mean the database is unavailable; a trigger's refusal is an
/// append-only violation.
pub fn map_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        let text = msg.clone().unwrap_or_else(|| e.to_string());
        if text.starts_with("evident:") {
            return StoreError::AppendOnly(text);
        }
        return match f.code {
            C::DatabaseBusy
            | C::DatabaseLocked
            | C::CannotOpen
            | C::SystemIoFailure
            | C::DiskFull
            | C::ReadOnly
            | C::PermissionDenied
            | C::NotADatabase
            | C::DatabaseCorrupt
            | C::FileLockingProtocolFailed => StoreError::Unavailable(text),
            _ => StoreError::Database(text),
        };
    }
    StoreError::Database(e.to_string())
}

/// `entries` is keyed by one integer (migration 6): a log's entries are
/// the range of `pos` from `log << POS_SHIFT`, entry `idx` at `+ idx`.
const POS_SHIFT: u32 = 40;

/// Entries a log can hold in that range.
const POS_SPAN: u64 = 1 << POS_SHIFT;

/// The `pos` of entry `idx` of `log`, for reads: an index past the range
/// is clamped to its end, where no row is.
pub(crate) fn pos(log: LogId, idx: u64) -> i64 {
    log.saturating_mul(1 << POS_SHIFT)
        .saturating_add(to_i64(idx.min(POS_SPAN)))
}

/// The first `pos` past `log`'s range.
pub(crate) fn pos_end(log: LogId) -> i64 {
    pos(log, POS_SPAN)
}

/// The `pos` of entry `idx` of `log`, for lookups of one entry: `None`
/// (bound as NULL, which matches no row) past the log's range, where
/// [`pos`] would name the next log's first entry.
pub(crate) fn pos_at(log: LogId, idx: u64) -> Option<i64> {
    (idx < POS_SPAN && (0..1 << (63 - POS_SHIFT)).contains(&log)).then(|| pos(log, idx))
}

/// The `pos` of a new entry: refused (`db.error`) past what the key holds,
/// 2^40 entries in each of 2^23 logs.
pub(crate) fn new_pos(log: LogId, idx: u64) -> Result<i64> {
    pos_at(log, idx).ok_or_else(|| {
        StoreError::Database(format!(
            "entry {idx} of log {log} is past what the SQLite store can hold \
             (2^40 entries in each of 2^23 logs)"
        ))
    })
}

pub(crate) fn to_i64(n: u64) -> i64 {
    // Indices and sizes are at most 2^53 (MAX_SAFE_INTEGER).
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative index or size {n}")))
}

fn hash_col(bytes: &[u8], what: &str) -> Result<Hash> {
    Hash::from_slice(bytes).map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

fn log_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LogInfo> {
    Ok(LogInfo {
        id: r.get(0)?,
        tenant: r.get(1)?,
        name: r.get(2)?,
        origin: r.get(3)?,
        created_at: r.get(4)?,
    })
}

fn checkpoint_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, i64, Vec<u8>, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn checkpoint(row: (i64, i64, Vec<u8>, String)) -> Result<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        seq: row.0,
        size: to_u64(row.1)?,
        root: hash_col(&row.2, "checkpoint root")?,
        note: row.3,
    })
}

fn read_tile(
    conn: &Connection,
    log: LogId,
    level: u8,
    index: u64,
) -> Result<Option<(u16, Vec<u8>)>> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT width, data FROM tiles WHERE log_id = ?1 AND level = ?2 AND idx = ?3",
        )
        .map_err(map_err)?
        .query_row(params![log, level, to_i64(index)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(map_err)?;
    match row {
        None => Ok(None),
        Some((w, data)) => {
            let w = u16::try_from(w)
                .ok()
                .filter(|w| (1..=256).contains(w) && data.len() == usize::from(*w) * 32)
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "tile {level}/{index} has width {w} and {} bytes",
                        data.len()
                    ))
                })?;
            Ok(Some((w, data)))
        }
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn migration_status(&mut self) -> Result<MigrationStatus> {
        Ok(migrate::status(self.applied()?, MIGRATIONS))
    }

    fn migrate_up(&mut self) -> Result<Vec<u32>> {
        let status = self.migration_status()?;
        if status.current > status.expected {
            return Err(StoreError::MigrationHeadMismatch {
                expected: status.expected,
                actual: status.current,
                hint: "; the database was migrated by a newer Evident",
            });
        }
        let mut done = Vec::new();
        for m in MIGRATIONS.iter().filter(|m| m.version > status.current) {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version    INTEGER PRIMARY KEY,
                     name       TEXT NOT NULL,
                     applied_at TEXT NOT NULL
                 ) STRICT;",
            )
            .map_err(map_err)?;
            tx.execute_batch(m.sql).map_err(map_err)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at)
                 VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                params![m.version, m.name],
            )
            .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            done.push(m.version);
        }
        Ok(done)
    }

    fn instance(&mut self) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'instance'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(map_err)
    }

    fn initialize(&mut self, instance: &str, vkey: &str, now: &str) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err)?;
        let existing: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'instance'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(map_err)?;
        if existing.is_some() {
            return Err(StoreError::AlreadyInitialized {
                path: "database".into(),
            });
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('instance', ?1)",
            [instance],
        )
        .map_err(map_err)?;
        tx.execute(
            "INSERT INTO keys (vkey, created_at) VALUES (?1, ?2)",
            [vkey, now],
        )
        .map_err(map_err)?;
        tx.commit().map_err(map_err)
    }

    fn keys(&mut self) -> Result<Vec<KeyRecord>> {
        curate::keys(&self.conn)
    }

    fn add_key(&mut self, vkey: &str, now: &str) -> Result<KeyRecord> {
        self.conn
            .execute(
                "INSERT INTO keys (vkey, created_at) VALUES (?1, ?2)",
                [vkey, now],
            )
            .map_err(map_err)?;
        Ok(KeyRecord {
            id: self.conn.last_insert_rowid(),
            vkey: vkey.to_owned(),
            created_at: now.to_owned(),
            first_seq: None,
            last_seq: None,
            retired_at: None,
        })
    }

    fn rotate_key(&mut self, rotation: &KeyRotation<'_>) -> Result<KeyRecord> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err)?;
        let key = curate::rotate_key(&tx, rotation)?;
        tx.commit().map_err(map_err)?;
        Ok(key)
    }

    fn redact_body(&mut self, log: LogId, index: u64, by: u64, now: &str) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err)?;
        curate::redact_body(&tx, log, index, by, now)?;
        tx.commit().map_err(map_err)
    }

    fn repair_entries(&mut self, log: LogId, restores: &[Restore<'_>], now: &str) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err)?;
        curate::repair_entries(&tx, log, restores, now)?;
        tx.commit().map_err(map_err)
    }

    fn logs(&mut self) -> Result<Vec<LogInfo>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, tenant, name, origin, created_at FROM logs ORDER BY tenant, name",
            )
            .map_err(map_err)?;
        let rows = stmt.query_map([], log_from_row).map_err(map_err)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_err)
    }

    fn find_log(&mut self, tenant: &str, name: &str) -> Result<Option<LogInfo>> {
        self.conn
            .prepare_cached("SELECT id, tenant, name, origin, created_at FROM logs WHERE tenant = ?1 AND name = ?2")
            .map_err(map_err)?
            .query_row([tenant, name], log_from_row)
            .optional()
            .map_err(map_err)
    }

    fn create_log(&mut self, tenant: &str, name: &str, origin: &str, now: &str) -> Result<LogInfo> {
        self.conn
            .execute(
                "INSERT INTO logs (tenant, name, origin, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant, name) DO NOTHING",
                [tenant, name, origin, now],
            )
            .map_err(map_err)?;
        self.find_log(tenant, name)?.ok_or_else(|| {
            StoreError::Database(format!("log {tenant}/{name} vanished after insert"))
        })
    }

    fn checkpoints_after(
        &mut self,
        log: LogId,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<StoredCheckpoint>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, size, root, note FROM checkpoints
                 WHERE log_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(map_err)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(
                rusqlite::params![log, after_seq, limit],
                checkpoint_from_row,
            )
            .map_err(map_err)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(checkpoint(r.map_err(map_err)?)?);
        }
        Ok(out)
    }

    fn latest_checkpoint(&mut self, log: LogId) -> Result<Option<StoredCheckpoint>> {
        latest_checkpoint(&self.conn, log)
    }

    fn entry_count(&mut self, log: LogId) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM entries WHERE pos >= ?1 AND pos < ?2",
                params![pos(log, 0), pos_end(log)],
                |r| r.get(0),
            )
            .map_err(map_err)?;
        to_u64(n)
    }

    fn scan_entries(
        &mut self,
        log: LogId,
        from: u64,
        f: &mut dyn FnMut(EntryRef<'_>) -> Result<bool>,
    ) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT idx, envelope, leaf_hash, salt, body FROM entries
                 WHERE pos >= ?1 AND pos < ?2 ORDER BY pos",
            )
            .map_err(map_err)?;
        let mut rows = stmt
            .query(params![pos(log, from), pos_end(log)])
            .map_err(map_err)?;
        while let Some(row) = rows.next().map_err(map_err)? {
            let index = to_u64(row.get(0).map_err(map_err)?)?;
            let envelope = blob(row, 1)?.unwrap_or_default();
            let leaf_hash = blob(row, 2)?.and_then(|b| Hash::from_slice(b).ok());
            let entry = EntryRef {
                index,
                envelope,
                leaf_hash,
                salt: blob(row, 3)?,
                body: blob(row, 4)?,
            };
            if !f(entry)? {
                break;
            }
        }
        Ok(())
    }

    /// `BEGIN DEFERRED`: the snapshot is taken at the first read (in WAL
    /// mode writers go on meanwhile).
    fn begin_snapshot(&mut self) -> Result<()> {
        // Read before the snapshot begins: a commit in between only makes
        // the next renewal pause when it need not have.
        self.snapshot_wal = Some(self.wal_len());
        self.conn.execute_batch("BEGIN DEFERRED").map_err(map_err)
    }

    fn end_snapshot(&mut self) -> Result<()> {
        self.snapshot_wal = None;
        let ended = self.conn.execute_batch("COMMIT").map_err(map_err);
        // Never leave the connection inside the snapshot: it would go on
        // reading an old state.
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        ended
    }

    fn renew_snapshot(&mut self, pause: std::time::Duration) -> Result<bool> {
        let began = self.snapshot_wal;
        self.end_snapshot()?;
        // SQLite starts the WAL over only once a checkpoint has copied every
        // frame and a writer begins while no reader holds a snapshot. While
        // this one held it, other connections' commits went on past the
        // WAL's end, and the file grew: then wait, for the checkpoint and
        // the writer. Otherwise there is nothing to wait for (the CLI
        // reading alone, or a writer whose WAL still wraps within its
        // length).
        let paused = began.is_some_and(|len| self.wal_len() > len);
        if paused {
            std::thread::sleep(pause);
        }
        self.begin_snapshot()?;
        Ok(paused)
    }

    fn read_tile(&mut self, log: LogId, level: u8, index: u64) -> Result<Option<(u16, Vec<u8>)>> {
        read_tile(&self.conn, log, level, index)
    }

    fn begin_append(&mut self, log: LogId) -> Result<Box<dyn AppendTxn + '_>> {
        if self.checkpointer.is_none()
            && let Some(path) = &self.path
            // Without the thread, SQLite's own checkpoints in the commit
            // stay on.
            && let Ok(c) = Checkpointer::start(path)
        {
            self.conn
                .execute_batch("PRAGMA wal_autocheckpoint = 0;")
                .map_err(map_err)?;
            self.checkpointer = Some(c);
        }
        if let Some(c) = &self.checkpointer {
            c.keep_wal_bounded();
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err)?;
        Ok(Box::new(SqliteAppend {
            tx,
            log,
            checkpointer: self.checkpointer.as_ref(),
            inserted: 0,
            tails: &mut self.tails,
            tail: None,
            unchecked: Vec::new(),
            looked_up: false,
            refused: false,
        }))
    }

    fn create_tenant(&mut self, name: &str, now: &str) -> Result<TenantInfo> {
        let t = auth::create_tenant(&self.conn, name, now)?;
        self.auth_changed();
        Ok(t)
    }

    fn tenants(&mut self) -> Result<Vec<TenantInfo>> {
        auth::tenants(&self.conn)
    }

    fn find_tenant(&mut self, name: &str) -> Result<Option<TenantInfo>> {
        auth::find_tenant(&self.conn, name)
    }

    /// One row of the `meta` table, `writes_paused`, holding the pause as
    /// JSON; no row means writes go on.
    fn writes_pause(&mut self) -> Result<Option<WritesPause>> {
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = 'writes_paused'")
            .map_err(map_err)?
            .query_row([], |r| r.get(0))
            .optional()
            .map_err(map_err)?;
        text.map(|t| {
            serde_json::from_str(&t)
                .map_err(|e| StoreError::Corrupt(format!("meta writes_paused {t:?}: {e}")))
        })
        .transpose()
    }

    fn set_writes_pause(&mut self, pause: Option<&WritesPause>) -> Result<()> {
        match pause {
            Some(p) => {
                let text = serde_json::to_string(p)
                    .map_err(|e| StoreError::Database(format!("writes pause: {e}")))?;
                self.conn
                    .execute(
                        "INSERT INTO meta (key, value) VALUES ('writes_paused', ?1)
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        [text],
                    )
                    .map_err(map_err)?;
            }
            None => {
                self.conn
                    .execute("DELETE FROM meta WHERE key = 'writes_paused'", [])
                    .map_err(map_err)?;
            }
        }
        Ok(())
    }

    fn set_tenant_status(
        &mut self,
        name: &str,
        status: TenantStatus,
        now: &str,
    ) -> Result<TenantInfo> {
        let t = auth::set_tenant_status(&self.conn, name, status, now)?;
        self.auth_changed();
        Ok(t)
    }

    fn insert_api_key(&mut self, key: &NewApiKey<'_>) -> Result<ApiKeyRecord> {
        let k = auth::insert_api_key(&self.conn, key)?;
        self.auth_changed();
        Ok(k)
    }

    fn api_keys(&mut self) -> Result<Vec<ApiKeyRecord>> {
        auth::api_keys(&self.conn)
    }

    fn find_api_key(&mut self, id: &str) -> Result<Option<(ApiKeyRecord, TenantStatus)>> {
        auth::find_api_key(&self.conn, id)
    }

    fn revoke_api_key(&mut self, id: &str, now: &str) -> Result<ApiKeyRecord> {
        let k = auth::revoke_api_key(&self.conn, id, now)?;
        self.auth_changed();
        Ok(k)
    }
}

/// A column as bytes, whether the attacker stored it as BLOB or TEXT; NULL
/// is `None`. Other types are refused.
pub(crate) fn blob<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<Option<&'r [u8]>> {
    use rusqlite::types::ValueRef;
    match row.get_ref(i).map_err(map_err)? {
        ValueRef::Null => Ok(None),
        ValueRef::Blob(b) | ValueRef::Text(b) => Ok(Some(b)),
        other => Err(StoreError::Corrupt(format!(
            "column {i} holds {:?}, not bytes",
            other.data_type()
        ))),
    }
}

fn latest_checkpoint(conn: &Connection, log: LogId) -> Result<Option<StoredCheckpoint>> {
    let row = conn
        .prepare_cached(
            "SELECT seq, size, root, note FROM checkpoints WHERE log_id = ?1 ORDER BY seq DESC LIMIT 1",
        )
        .map_err(map_err)?
        .query_row([log], checkpoint_from_row)
        .optional()
        .map_err(map_err)?;
    row.map(checkpoint).transpose()
}

/// Rows per multi-row INSERT: one statement step for many rows.
const INSERT_ROWS: usize = 32;

/// `OR FAIL`, not SQLite's default `OR ABORT`: a statement that writes
/// several rows and may abort half-way opens a statement journal, a copy
/// of every page it changes, so that an abort can undo its own rows. Here
/// nothing needs that: any refused insert refuses the whole transaction
/// ([`SqliteAppend::refused`]), which rolls back. The journal cost a page
/// copy per statement and, since SQLite allocates it with `malloc` and
/// frees it at each statement's end, the C heap shrinking and growing
/// again, a page fault per page: under single-entry appends at 16 KiB
/// pages, `perf` put a fifth of the writer's time there. The error code a
/// conflict gives is the same.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT OR FAIL INTO entries (pos, leaf_hash, envelope, salt, body, request_id) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?)");
    }
    sql
}

/// Inserts `entries`, [`INSERT_ROWS`] to a statement.
fn insert_rows(tx: &Connection, log: LogId, entries: &[NewEntry<'_>]) -> Result<()> {
    let mut chunks = entries.chunks_exact(INSERT_ROWS);
    if chunks.len() > 0 {
        let mut stmt = tx
            .prepare_cached(&insert_sql(INSERT_ROWS))
            .map_err(map_err)?;
        for chunk in &mut chunks {
            bind_entries(&mut stmt, log, chunk)?;
            stmt.raw_execute().map_err(map_err)?;
        }
    }
    let mut stmt = tx.prepare_cached(&insert_sql(1)).map_err(map_err)?;
    for e in chunks.remainder() {
        bind_entries(&mut stmt, log, std::slice::from_ref(e))?;
        stmt.raw_execute().map_err(map_err)?;
    }
    Ok(())
}

fn bind_entries(
    stmt: &mut rusqlite::Statement<'_>,
    log: LogId,
    rows: &[NewEntry<'_>],
) -> Result<()> {
    for (r, e) in rows.iter().enumerate() {
        let at = r * 6;
        stmt.raw_bind_parameter(at + 1, new_pos(log, e.index)?)
            .map_err(map_err)?;
        stmt.raw_bind_parameter(at + 2, &e.leaf_hash.0[..])
            .map_err(map_err)?;
        stmt.raw_bind_parameter(at + 3, e.envelope)
            .map_err(map_err)?;
        stmt.raw_bind_parameter(at + 4, e.salt).map_err(map_err)?;
        stmt.raw_bind_parameter(at + 5, e.body).map_err(map_err)?;
        stmt.raw_bind_parameter(at + 6, e.request_id)
            .map_err(map_err)?;
    }
    Ok(())
}

struct SqliteAppend<'c> {
    tx: rusqlite::Transaction<'c>,
    log: LogId,
    checkpointer: Option<&'c Checkpointer>,
    /// Bytes of entries inserted, for the checkpoint thread.
    inserted: usize,
    /// The writer's request-id tails, and this log's, once taken.
    tails: &'c mut Tails,
    tail: Option<Tail>,
    /// Where in the tail the ids inserted without any check against
    /// `request_ids` are: checked at commit
    /// ([`SqliteAppend::settle_request_ids`]).
    unchecked: Vec<usize>,
    /// Whether this transaction looked its request ids up first.
    looked_up: bool,
    /// Set when an insert was refused: the transaction must not commit.
    refused: bool,
}

impl SqliteAppend<'_> {
    /// The log's request-id tail, taken out of the transaction to be used
    /// beside it; put back with `self.tail = Some(…)`. A transaction that
    /// fails before putting it back reads it again next time.
    fn take_tail(&mut self) -> Result<Tail> {
        match self.tail.take() {
            Some(t) => Ok(t),
            None => self.tails.take(&self.tx, self.log),
        }
    }

    /// Refuses, before any row goes in, a request id the tail already
    /// holds (or the batch holds twice); records the others in the tail.
    /// An id no lookup of this transaction saw is checked against
    /// `request_ids` at commit, so that the transaction fails as a unique
    /// index would have failed the insert.
    fn check_request_ids(&mut self, entries: &[NewEntry<'_>]) -> Result<()> {
        let mut tail = self.take_tail()?;
        for e in entries {
            let Some(id) = e.request_id else {
                tail.extend_to(e.index);
                continue;
            };
            match tail.claim(id, e.index) {
                Claim::Reserved => {}
                Claim::Unseen(at) => self.unchecked.push(at),
                Claim::Taken => {
                    self.refused = true;
                    return Err(taken(self.log, id));
                }
            }
        }
        self.tail = Some(tail);
        Ok(())
    }

    /// The check of the unchecked ids against `request_ids`, before the
    /// commit. When the tail now holds a run, writing it is the check:
    /// its INSERT fails on an id already there, and that one probe per id
    /// is all a batch pays (looking each id up as well took 11% of the
    /// writer's time under 1,000-entry batches, BENCHMARKS.md, issue 4).
    /// Otherwise the ids are looked up, as few as one batch holds.
    fn settle_request_ids(&mut self) -> Result<()> {
        let Some(tail) = self.tail.as_mut() else {
            return Ok(());
        };
        if tail.run_due() {
            // After a lookup an id it did not find may still have a row
            // here (its entry deleted by an attacker): replaced, so that
            // it does not stop every later append.
            return tail.write_run(&self.tx, self.log, self.looked_up);
        }
        if self.unchecked.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = self
            .unchecked
            .iter()
            .filter_map(|&k| tail.id_at(k))
            .collect();
        let found = request_ids::find_merged(&self.tx, self.log, &ids)?;
        match ids.iter().zip(found).find(|(_, f)| f.is_some()) {
            Some((id, _)) => Err(taken(self.log, id)),
            None => Ok(()),
        }
    }
}

fn taken(log: LogId, id: &str) -> StoreError {
    StoreError::RequestIdTaken(format!("log {log} already holds request id {id:?}"))
}

impl AppendTxn for SqliteAppend<'_> {
    fn head(&mut self) -> Result<Head> {
        let cp = latest_checkpoint(&self.tx, self.log)?;
        let size = cp.as_ref().map_or(0, |c| c.size);
        let rows_past_head: bool = self
            .tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM entries WHERE pos >= ?1 AND pos < ?2)")
            .map_err(map_err)?
            .query_row(params![pos(self.log, size), pos_end(self.log)], |r| {
                r.get(0)
            })
            .map_err(map_err)?;
        let Some(cp) = cp else {
            return Ok(Head {
                rows_past_head,
                current_key: curate::current_key(&self.tx)?,
                ..Head::default()
            });
        };
        let current_key = curate::current_key(&self.tx)?;
        let mut head = Head {
            size: cp.size,
            root: Some(cp.root),
            note: Some(cp.note),
            rows_past_head,
            current_key,
            ..Head::default()
        };
        if cp.size > 0 {
            let last: Option<(Vec<u8>, Vec<u8>)> = self
                .tx
                .prepare_cached("SELECT leaf_hash, envelope FROM entries WHERE pos = ?1")
                .map_err(map_err)?
                .query_row(params![pos_at(self.log, cp.size - 1)], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(map_err)?;
            if let Some((leaf, env)) = last {
                head.last_leaf = Hash::from_slice(&leaf).ok();
                head.last_envelope = Some(env);
            }
        }
        Ok(head)
    }

    /// Ids of the entries past the log's mark from the writer's memory of
    /// them (see [`request_ids`]); the others in one statement against
    /// `request_ids`.
    fn lookup_request_ids(&mut self, ids: &[&str]) -> Result<Vec<Option<Existing>>> {
        self.looked_up = true;
        let mut out = vec![None; ids.len()];
        if ids.is_empty() {
            return Ok(out);
        }
        let mut tail = self.take_tail()?;
        let mut rest = Vec::new();
        for (k, id) in ids.iter().enumerate() {
            match tail.get(id) {
                Some(index) => match request_ids::entry_at(&self.tx, self.log, index)? {
                    Some(found) => out[k] = Some(found),
                    None => tail.forget(id),
                },
                None => rest.push(k),
            }
        }
        if !rest.is_empty() {
            let asked: Vec<&str> = rest.iter().map(|&k| ids[k]).collect();
            let found = request_ids::find_merged(&self.tx, self.log, &asked)?;
            for (k, f) in rest.into_iter().zip(found) {
                out[k] = f;
            }
        }
        for (id, found) in ids.iter().zip(&out) {
            if found.is_none() {
                tail.reserve(id);
            }
        }
        self.tail = Some(tail);
        Ok(out)
    }

    /// Ids no lookup saw are checked at commit, and a stored one fails
    /// the commit ([`SqliteAppend::settle_request_ids`]).
    fn refuses_stored_request_ids(&self) -> bool {
        true
    }

    fn read_tile(&mut self, level: u8, index: u64) -> Result<Option<(u16, Vec<u8>)>> {
        read_tile(&self.tx, self.log, level, index)
    }

    fn insert_entries(&mut self, entries: &[NewEntry<'_>]) -> Result<()> {
        if self.refused {
            return Err(StoreError::Database(
                "an earlier insert of this transaction was refused".into(),
            ));
        }
        self.check_request_ids(entries)?;
        self.inserted += entries
            .iter()
            .map(|e| e.envelope.len() + e.body.len() + e.salt.len() + 64)
            .sum::<usize>();
        let inserted = insert_rows(&self.tx, self.log, entries);
        // The rows of a statement before a refused one stay in the
        // transaction (see `insert_sql`): it must not commit.
        self.refused |= inserted.is_err();
        inserted
    }

    fn put_tiles(&mut self, tiles: &[NewTile<'_>]) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "INSERT INTO tiles (log_id, level, idx, width, data) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (log_id, level, idx) DO UPDATE SET width = excluded.width, data = excluded.data
                 WHERE excluded.width > tiles.width",
            )
            .map_err(map_err)?;
        for t in tiles {
            let evident_core::tile::TileKind::Hashes { level } = t.id.kind else {
                return Err(StoreError::Database("only hash tiles are stored".into()));
            };
            stmt.execute(params![
                self.log,
                level,
                to_i64(t.id.index),
                t.id.width,
                t.data
            ])
            .map_err(map_err)?;
        }
        Ok(())
    }

    fn insert_checkpoint(&mut self, size: u64, root: &Hash, note: &str) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO checkpoints (log_id, size, root, note, created_at)
                 VALUES (?1, ?2, ?3, ?4, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
            )
            .map_err(map_err)?
            .execute(params![self.log, to_i64(size), &root.0[..], note])
            .map_err(map_err)?;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        if self.refused {
            return Err(StoreError::Database(
                "an insert of this transaction was refused; it was rolled back".into(),
            ));
        }
        // A refusal here drops the transaction, which rolls it back.
        self.settle_request_ids()?;
        self.tx.commit().map_err(map_err)?;
        if let Some(mut tail) = self.tail.take() {
            tail.release();
            self.tails.put(self.log, tail);
        }
        if let Some(c) = self.checkpointer {
            c.wake(self.inserted);
        }
        Ok(())
    }
}

/// A private in-memory database with only the first `n` migrations
/// applied, recorded as an older binary would have: for tests of the
/// migrations after it.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
impl SqliteStore {
    pub(crate) fn in_memory_at_migration(n: usize) -> SqliteStore {
        let s = SqliteStore::open_in_memory().unwrap();
        s.conn
            .execute_batch(
                "CREATE TABLE schema_migrations (
                     version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL
                 ) STRICT;",
            )
            .unwrap();
        for m in &MIGRATIONS[..n] {
            s.conn.execute_batch(m.sql).unwrap();
            s.conn
                .execute(
                    "INSERT INTO schema_migrations VALUES (?1, ?2, 'then')",
                    rusqlite::params![m.version, m.name],
                )
                .unwrap();
        }
        s
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Rows at `indices` whose envelope and body are both `body`, without
    /// a salt or a request id.
    fn plain_rows<'a>(
        indices: impl IntoIterator<Item = u64>,
        body: &'a [u8],
        leaf: &'a Hash,
    ) -> Vec<NewEntry<'a>> {
        indices
            .into_iter()
            .map(|index| NewEntry {
                index,
                envelope: body,
                leaf_hash: leaf,
                salt: &[],
                body,
                request_id: None,
            })
            .collect()
    }

    /// Commits 60 batches back to back with the WAL limit at `limit`
    /// frames; returns the WAL's largest size. A second connection then
    /// reads every committed row.
    fn busy_writer(limit: i64) -> u64 {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.db");
        let mut s = SqliteStore::open(&path, true).unwrap();
        s.migrate_up().unwrap();
        let log = s.create_log("t", "l", "test.example/t/l", "x").unwrap();
        let body = vec![b'x'; 2_000];
        let leaf = Hash::default();
        let mut largest = 0;
        for b in 0..60u64 {
            let mut tx = s.begin_append(log.id).unwrap();
            tx.insert_entries(&plain_rows(b * 100..(b + 1) * 100, &body, &leaf))
                .unwrap();
            tx.commit().unwrap();
            s.checkpointer.as_mut().unwrap().wal_limit = limit;
            largest = largest.max(
                std::fs::metadata(tmp.path().join("t.db-wal"))
                    .unwrap()
                    .len(),
            );
        }
        let mut reader = SqliteStore::open(&path, false).unwrap();
        assert_eq!(reader.entry_count(log.id).unwrap(), 6_000);
        largest
    }

    /// A writer that never pauses still has its WAL started over. (With
    /// no limit, this WAL grows to ~30 MB: SQLite restarts a WAL only when
    /// a transaction begins after every frame was checkpointed.)
    #[test]
    fn the_wal_stays_bounded_under_a_busy_writer() {
        // 6,000 rows of 4 KB: 24 MB in all, ~400 KB per batch; a limit
        // of 1 MiB of pages.
        let largest = busy_writer(1024 * 1024 / i64::from(PAGE_SIZE));
        assert!(largest < 6_000_000, "WAL grew to {largest} bytes");
    }

    /// The entries INSERT runs `OR FAIL`, without a statement journal, so
    /// the rows of a multi-row statement before a refused one stay in the
    /// transaction: the transaction itself must then refuse to commit.
    #[test]
    fn a_refused_row_mid_statement_refuses_the_commit() {
        let mut s = SqliteStore::open_in_memory().unwrap();
        s.migrate_up().unwrap();
        let log = s.create_log("t", "l", "test.example/t/l", "x").unwrap();
        let body = b"{}".to_vec();
        let leaf = Hash::default();
        let mut tx = s.begin_append(log.id).unwrap();
        tx.insert_entries(&plain_rows([0, 1], &body, &leaf))
            .unwrap();
        tx.commit().unwrap();

        // One statement of INSERT_ROWS rows, the 21st already stored.
        let mut indices: Vec<u64> = (2..22).collect();
        indices.push(1);
        indices.extend(22..22 + (INSERT_ROWS as u64 - 21));
        assert_eq!(indices.len(), INSERT_ROWS);
        let mut tx = s.begin_append(log.id).unwrap();
        assert!(
            tx.insert_entries(&plain_rows(indices, &body, &leaf))
                .is_err()
        );
        let committed = tx.commit();
        assert!(committed.is_err(), "committed: {committed:?}");
        assert_eq!(s.entry_count(log.id).unwrap(), 2);
    }

    /// The checkpoint thread is woken only by the first commit after a
    /// checkpoint, yet every commit is covered in the end: the ones made
    /// while it waited out the interval or while it ran, too.
    #[test]
    fn every_commit_is_checkpointed_without_a_wake_up_each() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.db");
        let mut s = SqliteStore::open(&path, true).unwrap();
        s.migrate_up().unwrap();
        let log = s.create_log("t", "l", "test.example/t/l", "x").unwrap();
        let leaf = Hash::default();
        let covered = |s: &SqliteStore| {
            let c = s.checkpointer.as_ref().unwrap();
            let p = c.progress.0.lock().unwrap();
            (p.requested, p.done)
        };
        for round in 0..3u64 {
            for i in 0..20u64 {
                let index = round * 20 + i;
                let mut tx = s.begin_append(log.id).unwrap();
                tx.insert_entries(&[NewEntry {
                    index,
                    envelope: b"e",
                    leaf_hash: &leaf,
                    salt: &[],
                    body: b"b",
                    request_id: None,
                }])
                .unwrap();
                tx.commit().unwrap();
            }
            // Not a timing assertion: a bound on how long to look, far
            // past the 50-ms interval, so a missed commit fails the test
            // instead of hanging it.
            let deadline = Instant::now() + Duration::from_secs(20);
            while covered(&s).1 < covered(&s).0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(covered(&s), ((round + 1) * 20, (round + 1) * 20));
        }
        let frames: (i64, i64) = s
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(frames.0, frames.1, "frames left in the WAL: {frames:?}");
    }

    fn plan(s: &SqliteStore, sql: &str, args: impl rusqlite::Params) -> Vec<String> {
        s.conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(args, |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// The batched request-id lookup probes `request_ids` once per id and
    /// reads the tail by primary key; it never scans the log.
    #[test]
    fn request_id_lookups_use_primary_keys() {
        let mut s = SqliteStore::open_in_memory().unwrap();
        s.migrate_up().unwrap();
        let merged = plan(
            &s,
            request_ids::LOOKUP_MERGED,
            params![1, "[]", 1_i64 << 40],
        );
        assert_eq!(merged.len(), 3, "{merged:?}");
        assert!(merged[0].starts_with("SCAN j"), "{merged:?}");
        assert!(
            merged[1].starts_with("SEARCH r USING PRIMARY KEY (log_id=? AND request_id=?)"),
            "{merged:?}"
        );
        assert!(
            merged[2].starts_with("SEARCH e USING INTEGER PRIMARY KEY (rowid=?)"),
            "{merged:?}"
        );
        let tail = plan(
            &s,
            request_ids::TAIL_ROWS,
            params![1_i64 << 40, 2_i64 << 40],
        );
        assert_eq!(
            tail,
            ["SEARCH entries USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"],
            "{tail:?}"
        );
    }

    /// Appends `n` single-entry transactions from `clients` interleaved id
    /// sequences, looking each batch's ids up first as the sequencer does.
    fn append_singles(s: &mut SqliteStore, log: LogId, from: u64, n: u64, clients: u64) {
        let leaf = Hash::default();
        for index in from..from + n {
            let id = format!("client-{:02}-{:06}", index % clients, index / clients);
            let mut tx = s.begin_append(log).unwrap();
            assert_eq!(tx.lookup_request_ids(&[&id]).unwrap(), vec![None]);
            tx.insert_entries(&[NewEntry {
                index,
                envelope: id.as_bytes(),
                leaf_hash: &leaf,
                salt: &[],
                body: b"{}",
                request_id: Some(&id),
            }])
            .unwrap();
            tx.commit().unwrap();
        }
    }

    fn count(s: &SqliteStore, sql: &str) -> i64 {
        s.conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Ids reach `request_ids` in whole runs, and every id is found
    /// whether it is there or still only in its entry's row.
    #[test]
    fn request_ids_move_to_their_table_in_runs_and_stay_found() {
        let mut s = SqliteStore::open_in_memory().unwrap();
        s.migrate_up().unwrap();
        let log = s.create_log("t", "l", "test.example/t/l", "x").unwrap().id;
        let other = s.create_log("t", "m", "test.example/t/m", "x").unwrap().id;
        let run = request_ids::REQUEST_ID_RUN;
        append_singles(&mut s, log, 0, run - 1, 7);
        assert_eq!(count(&s, "SELECT count(*) FROM request_ids"), 0);
        append_singles(&mut s, log, run - 1, 1, 7);
        assert_eq!(count(&s, "SELECT count(*) FROM request_ids"), to_i64(run));
        append_singles(&mut s, log, run, run / 2, 7);
        assert_eq!(count(&s, "SELECT count(*) FROM request_ids"), to_i64(run));
        assert_eq!(
            count(&s, "SELECT upto FROM request_id_marks WHERE log_id = 1"),
            to_i64(run)
        );

        let total = run + run / 2;
        let ids: Vec<String> = (0..total)
            .map(|i| format!("client-{:02}-{:06}", i % 7, i / 7))
            .collect();
        let mut asked: Vec<&str> = ids.iter().map(String::as_str).collect();
        asked.push("nope");
        let mut tx = s.begin_append(log).unwrap();
        let found = tx.lookup_request_ids(&asked).unwrap();
        for (i, f) in found.iter().enumerate().take(ids.len()) {
            let f = f.as_ref().unwrap_or_else(|| panic!("{} not found", ids[i]));
            assert_eq!(
                (f.index, f.envelope.as_slice()),
                (i as u64, ids[i].as_bytes())
            );
        }
        assert_eq!(found.last(), Some(&None));
        drop(tx);
        // Stored once per log, merged or not: inserting either again is
        // refused, the one in the tail at insert, the one merged at commit.
        for (id, index, at_insert) in [(&ids[3], total, false), (&ids[ids.len() - 1], total, true)]
        {
            let mut tx = s.begin_append(log).unwrap();
            let leaf = Hash::default();
            let inserted = tx.insert_entries(&[NewEntry {
                index,
                envelope: b"x",
                leaf_hash: &leaf,
                salt: &[],
                body: b"{}",
                request_id: Some(id),
            }]);
            assert_eq!(inserted.is_err(), at_insert, "{inserted:?}");
            let e = tx.commit().unwrap_err();
            let e = inserted.err().unwrap_or(e);
            assert!(matches!(e, StoreError::RequestIdTaken(_)), "{e:?}");
        }
        let stored = count(&s, "SELECT count(*) FROM entries WHERE pos >> 40 = 1");
        assert_eq!(
            stored,
            to_i64(total),
            "nothing of the refused batches stayed"
        );
        // Another log's ids are its own.
        let mut tx = s.begin_append(other).unwrap();
        assert_eq!(tx.lookup_request_ids(&[&ids[0]]).unwrap(), vec![None]);
    }

    /// Two connections append to one file in turn (a CLI beside the
    /// server): each sees the other's ids, though it keeps its own in
    /// memory.
    #[test]
    fn another_writers_request_ids_are_seen() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.db");
        let mut a = SqliteStore::open(&path, true).unwrap();
        a.migrate_up().unwrap();
        let log = a.create_log("t", "l", "test.example/t/l", "x").unwrap().id;
        let mut b = SqliteStore::open(&path, false).unwrap();
        append_singles(&mut a, log, 0, 3, 1);
        append_singles(&mut b, log, 3, 3, 1);
        append_singles(&mut a, log, 6, 3, 1);
        for s in [&mut a, &mut b] {
            let mut tx = s.begin_append(log).unwrap();
            let ids: Vec<String> = (0..9).map(|i| format!("client-00-{i:06}")).collect();
            let asked: Vec<&str> = ids.iter().map(String::as_str).collect();
            let found: Vec<Option<u64>> = tx
                .lookup_request_ids(&asked)
                .unwrap()
                .into_iter()
                .map(|f| f.map(|f| f.index))
                .collect();
            assert_eq!(found, (0..9).map(Some).collect::<Vec<_>>());
        }
        let leaf = Hash::default();
        let mut tx = a.begin_append(log).unwrap();
        let e = tx
            .insert_entries(&[NewEntry {
                index: 9,
                envelope: b"x",
                leaf_hash: &leaf,
                salt: &[],
                body: b"{}",
                request_id: Some("client-00-000004"),
            }])
            .unwrap_err();
        assert!(matches!(e, StoreError::RequestIdTaken(_)), "{e:?}");
    }

    /// A database at migration 5 keeps every entry row, byte for byte and
    /// in order, when migration 6 keys them by position; the rows stay
    /// append-only and the store reads them by their new key.
    #[test]
    fn migration_6_keys_entries_by_position() {
        let mut s = SqliteStore::in_memory_at_migration(5);
        s.conn
            .execute_batch(
                "INSERT INTO logs (tenant, name, origin, created_at) VALUES ('a', 'b', 'x/a/b', 'then');
                 INSERT INTO logs (tenant, name, origin, created_at) VALUES ('a', 'c', 'x/a/c', 'then');
                 INSERT INTO entries (log_id, idx, leaf_hash, envelope, salt, body, request_id) VALUES
                     (2, 0, zeroblob(32), x'31', x'02', x'03', 'r0'),
                     (1, 1, zeroblob(32), x'11', NULL, NULL, NULL),
                     (1, 0, zeroblob(32), x'01', x'02', x'03', 'r0'),
                     (1, 2, zeroblob(32), x'21', x'02', x'03', 'r2');",
            )
            .unwrap();
        type Row = (i64, i64, Vec<u8>, Option<Vec<u8>>, Option<String>);
        let rows = |s: &SqliteStore| -> Vec<Row> {
            s.conn
                .prepare("SELECT log_id, idx, envelope, salt, request_id FROM entries ORDER BY log_id, idx")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let before = rows(&s);
        assert_eq!(s.migrate_up().unwrap(), vec![6]);
        assert_eq!(rows(&s), before);
        assert_eq!(
            count(
                &s,
                "SELECT count(*) FROM entries WHERE pos = (1 << 40) + 2 AND envelope = x'21'"
            ),
            1
        );
        for sql in [
            "UPDATE entries SET envelope = x'ff' WHERE idx = 1",
            "UPDATE entries SET pos = pos + 5",
            "DELETE FROM entries WHERE log_id = 2",
        ] {
            let e = s.conn.execute_batch(sql).unwrap_err();
            assert!(e.to_string().contains("append-only"), "{sql}: {e}");
        }
        assert_eq!(s.entry_count(1).unwrap(), 3);
        assert_eq!(s.entry_count(2).unwrap(), 1);
        // Index 2^40 of log 1 would be log 2's first row if it were not
        // kept out of the range: it is nobody's.
        assert!(request_ids::entry_at(&s.conn, 2, 0).unwrap().is_some());
        assert!(
            request_ids::entry_at(&s.conn, 1, 1 << 40)
                .unwrap()
                .is_none()
        );
        let mut past = 0;
        s.scan_entries(1, 1 << 40, &mut |_| {
            past += 1;
            Ok(true)
        })
        .unwrap();
        assert_eq!(past, 0);
        assert!(matches!(new_pos(1, 1 << 40), Err(StoreError::Database(_))));
        let mut seen = Vec::new();
        s.scan_entries(1, 1, &mut |e| {
            seen.push((e.index, e.envelope.to_vec()));
            Ok(true)
        })
        .unwrap();
        assert_eq!(seen, vec![(1, vec![0x11]), (2, vec![0x21])]);
        let mut tx = s.begin_append(1).unwrap();
        assert_eq!(
            tx.lookup_request_ids(&["r2", "r0", "r1"])
                .unwrap()
                .into_iter()
                .map(|e| e.map(|e| e.index))
                .collect::<Vec<_>>(),
            vec![Some(2), Some(0), None]
        );
    }

    /// A database at migration 4 keeps its ids: migration 5 copies them to
    /// `request_ids`, sets each log's mark, and drops the old index.
    #[test]
    fn migration_5_moves_request_ids_out_of_the_entries_index() {
        let mut s = SqliteStore::in_memory_at_migration(4);
        s.conn
            .execute_batch(
                "INSERT INTO logs (tenant, name, origin, created_at) VALUES ('a', 'b', 'x/a/b', 'then');
                 INSERT INTO logs (tenant, name, origin, created_at) VALUES ('a', 'c', 'x/a/c', 'then');
                 INSERT INTO entries (log_id, idx, leaf_hash, envelope, salt, body, request_id) VALUES
                     (1, 0, zeroblob(32), x'01', x'02', x'03', 'r0'),
                     (1, 1, zeroblob(32), x'11', x'02', x'03', NULL),
                     (1, 2, zeroblob(32), x'21', x'02', x'03', 'r2'),
                     (2, 0, zeroblob(32), x'31', x'02', x'03', 'r0');",
            )
            .unwrap();
        assert_eq!(s.migrate_up().unwrap(), vec![5, 6]);
        assert_eq!(
            count(
                &s,
                "SELECT count(*) FROM sqlite_schema WHERE name = 'entries_request_id'"
            ),
            0
        );
        let marks: Vec<(i64, i64)> = s
            .conn
            .prepare("SELECT log_id, upto FROM request_id_marks ORDER BY log_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(marks, [(1, 3), (2, 1)]);
        let mut tx = s.begin_append(1).unwrap();
        let found = tx.lookup_request_ids(&["r2", "r1", "r0"]).unwrap();
        let at: Vec<Option<(u64, Vec<u8>)>> = found
            .into_iter()
            .map(|f| f.map(|f| (f.index, f.envelope)))
            .collect();
        assert_eq!(at, [Some((2, vec![0x21])), None, Some((0, vec![0x01]))]);
        drop(tx);
        let mut tx = s.begin_append(2).unwrap();
        let found = tx.lookup_request_ids(&["r0", "r2"]).unwrap();
        assert_eq!(found[0].as_ref().map(|f| f.index), Some(0));
        assert_eq!(
            found[0].as_ref().map(|f| f.envelope.clone()),
            Some(vec![0x31])
        );
        assert_eq!(found[1], None);
    }
}
