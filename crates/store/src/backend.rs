//! The storage trait every backend implements.
//!
//! The trait is synchronous: SQLite is an in-process library and a blocking
//! PostgreSQL client keeps one code path for both. The server calls it from
//! blocking worker threads.
//!
//! Appends go through [`AppendTxn`], one database transaction that takes the
//! log's write lock *before* it reads the head, so sequencing is serialised
//! by the database, never by process memory: two processes (or two server
//! nodes) appending to one log queue on the lock and each sees the other's
//! committed head. SQLite's lock is `BEGIN IMMEDIATE`; PostgreSQL's is a row
//! lock on the log.

use evident_core::tile::TileId;

use crate::error::Result;
use crate::model::{
    ApiKeyRecord, EntryRef, Existing, Head, KeyRecord, KeyRotation, LogId, LogInfo,
    MigrationStatus, NewApiKey, NewEntry, NewTile, Restore, StoredCheckpoint, TenantInfo,
    TenantStatus, WritesPause,
};

/// Storage for logs, entries, checkpoints, tiles and keys, and for the
/// tenants and API keys of the HTTP service.
///
/// Rows of entries, checkpoints and keys are never updated or deleted
/// through this trait, and the backends' triggers refuse it from anywhere
/// else. Hash tiles are derived data: a partial tile is replaced by its
/// wider successor. Tenants are never deleted, only suspended; API keys are
/// never deleted or changed, only revoked.
pub trait Store: Send {
    /// Backend name for logs and `/ready`: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Where the schema stands against this binary's migrations.
    fn migration_status(&mut self) -> Result<MigrationStatus>;

    /// Applies pending migrations; returns the versions applied.
    fn migrate_up(&mut self) -> Result<Vec<u32>>;

    /// The instance name set at initialisation, if any.
    fn instance(&mut self) -> Result<Option<String>>;

    /// Records the instance name and the first public key. Fails if the
    /// database is already initialised.
    fn initialize(&mut self, instance: &str, vkey: &str, now: &str) -> Result<()>;

    /// Every public key, oldest first.
    fn keys(&mut self) -> Result<Vec<KeyRecord>>;

    /// Adds a public key with no rotation record (valid from the start,
    /// like the first key); returns it as stored. Rotations use
    /// [`Store::rotate_key`].
    fn add_key(&mut self, vkey: &str, now: &str) -> Result<KeyRecord>;

    /// Rotates the signing key, all or nothing, in one transaction holding
    /// the write lock appends take: checks that `old_vkey` is the newest
    /// key and that every log with a checkpoint has exactly one transition
    /// whose `after_seq` is still that log's latest checkpoint
    /// ([`StoreError::RotationConflict`](crate::StoreError::RotationConflict)
    /// otherwise); stores each transition as the log's next checkpoint (in
    /// the order given), adds the new key with `first_seq` = the first
    /// transition's seq (or, with none, the next seq to be assigned) and
    /// records the old key's retirement with `last_seq` = the last
    /// transition's seq (or `first_seq - 1`). Returns the new key's record.
    fn rotate_key(&mut self, rotation: &KeyRotation<'_>) -> Result<KeyRecord>;

    /// Erases the salt and body of entry `index` (a redaction), recording
    /// that the signed `evident.redaction` entry at `by` (same log)
    /// authorises it. Nothing else of the row changes. Fails with
    /// [`StoreError::NoSuchEntry`](crate::StoreError::NoSuchEntry) if the
    /// row is not there, and
    /// [`StoreError::RedactRefused`](crate::StoreError::RedactRefused) if it
    /// has no body or was redacted before.
    fn redact_body(&mut self, log: LogId, index: u64, by: u64, now: &str) -> Result<()>;

    /// Restores entry rows from a trusted copy, all or nothing: for each
    /// restore, checks the row is still exactly `current` (else
    /// [`StoreError::RepairRefused`](crate::StoreError::RepairRefused)),
    /// copies it (request id included) into quarantine with the restored
    /// leaf hash, then rewrites its leaf hash, envelope, salt and body.
    /// The caller has proven the restored bytes against the signed tree.
    fn repair_entries(&mut self, log: LogId, restores: &[Restore<'_>], now: &str) -> Result<()>;

    /// Every log, ordered by tenant then name.
    fn logs(&mut self) -> Result<Vec<LogInfo>>;

    /// The log `tenant/name`, if it exists.
    fn find_log(&mut self, tenant: &str, name: &str) -> Result<Option<LogInfo>>;

    /// Creates the log `tenant/name` with `origin`, or returns it if it
    /// already exists.
    fn create_log(&mut self, tenant: &str, name: &str, origin: &str, now: &str) -> Result<LogInfo>;

    /// Every stored checkpoint of a log, in the order stored.
    fn checkpoints(&mut self, log: LogId) -> Result<Vec<StoredCheckpoint>> {
        self.checkpoints_after(log, i64::MIN, usize::MAX)
    }

    /// Up to `limit` of a log's checkpoints stored after `after_seq` (a
    /// [`StoredCheckpoint::seq`]; `i64::MIN` for the first page), in the order
    /// stored: for readers that must not hold every checkpoint at once.
    fn checkpoints_after(
        &mut self,
        log: LogId,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<StoredCheckpoint>>;

    /// The most recently stored checkpoint of a log.
    fn latest_checkpoint(&mut self, log: LogId) -> Result<Option<StoredCheckpoint>>;

    /// Number of entry rows of a log (not trusted: a count, not a size).
    fn entry_count(&mut self, log: LogId) -> Result<u64>;

    /// Calls `f` on each entry row with index ≥ `from`, in index order,
    /// until `f` returns `Ok(false)` or the rows run out.
    fn scan_entries(
        &mut self,
        log: LogId,
        from: u64,
        f: &mut dyn FnMut(EntryRef<'_>) -> Result<bool>,
    ) -> Result<()>;

    /// Starts a read snapshot: until [`Store::end_snapshot`], every read on
    /// this connection sees one committed state of the database, so a
    /// reader of a log's checkpoints and then of its rows does not see a
    /// batch committed in between in part (rows without their
    /// checkpoint). Not for use inside an append.
    fn begin_snapshot(&mut self) -> Result<()>;

    /// Ends the snapshot [`Store::begin_snapshot`] started; later reads see
    /// the latest commit again. Ends it even when it returns an error.
    fn end_snapshot(&mut self) -> Result<()>;

    /// Ends the snapshot and begins another, for a long read that goes in
    /// steps. A snapshot held open keeps what it reads from being
    /// reclaimed (SQLite's WAL cannot start over while it is read), so
    /// between steps a backend may wait up to `pause` to let that happen —
    /// SQLite does only when its WAL file grew during the step (other
    /// connections committed past its end), since otherwise there is
    /// nothing to reclaim. Returns whether it waited.
    fn renew_snapshot(&mut self, pause: std::time::Duration) -> Result<bool> {
        let _ = pause;
        self.end_snapshot()?;
        self.begin_snapshot()?;
        Ok(false)
    }

    /// A stored hash tile `(level, index)` at whatever width it was last
    /// written: `(width, data)`.
    fn read_tile(&mut self, log: LogId, level: u8, index: u64) -> Result<Option<(u16, Vec<u8>)>>;

    /// Starts an append to `log`, holding the log's write lock until commit
    /// or drop (drop rolls back).
    fn begin_append(&mut self, log: LogId) -> Result<Box<dyn AppendTxn + '_>>;

    /// Creates the tenant `name`, active, after checking the name with
    /// [`check_tenant_name`](crate::check_tenant_name).
    /// [`StoreError::TenantExists`](crate::StoreError::TenantExists) if it
    /// is already there (the stored tenant is left as it was).
    fn create_tenant(&mut self, name: &str, now: &str) -> Result<TenantInfo>;

    /// Every tenant, by name in byte order.
    fn tenants(&mut self) -> Result<Vec<TenantInfo>>;

    /// The tenant `name`, if it exists.
    fn find_tenant(&mut self, name: &str) -> Result<Option<TenantInfo>>;

    /// Sets a tenant's status and returns the tenant as stored.
    /// Idempotent: setting the status it already has changes nothing, not
    /// even `updated_at`.
    /// [`StoreError::TenantNotFound`](crate::StoreError::TenantNotFound) if
    /// there is no such tenant.
    fn set_tenant_status(
        &mut self,
        name: &str,
        status: TenantStatus,
        now: &str,
    ) -> Result<TenantInfo>;

    /// Stores a new API key for an existing tenant (active or suspended);
    /// returns it as stored.
    /// [`StoreError::TenantNotFound`](crate::StoreError::TenantNotFound)
    /// if the tenant does not exist,
    /// [`StoreError::ApiKeyExists`](crate::StoreError::ApiKeyExists) if the
    /// id is taken.
    fn insert_api_key(&mut self, key: &NewApiKey<'_>) -> Result<ApiKeyRecord>;

    /// Every API key, revoked ones included, in the order they were issued.
    fn api_keys(&mut self) -> Result<Vec<ApiKeyRecord>>;

    /// The API key `id` and its tenant's current status, in one read.
    ///
    /// The HTTP service calls this on every request, so backends keep it
    /// one prepared query, and it must see a revocation or a suspension
    /// committed by any connection as soon as it is committed: nothing is
    /// cached above the database.
    fn find_api_key(&mut self, id: &str) -> Result<Option<(ApiKeyRecord, TenantStatus)>>;

    /// Revokes the API key `id` at `now` and returns it. Revoking a revoked
    /// key returns it unchanged (its first revocation time stays).
    /// [`StoreError::ApiKeyNotFound`](crate::StoreError::ApiKeyNotFound) if
    /// there is no such key.
    fn revoke_api_key(&mut self, id: &str, now: &str) -> Result<ApiKeyRecord>;

    /// The writes pause in force, if any. Servers poll this about once a
    /// second, so backends keep it one cheap read, and it must see a
    /// change committed by any connection as soon as it is committed.
    fn writes_pause(&mut self) -> Result<Option<WritesPause>>;

    /// Pauses appends (`Some`) or resumes them (`None`). Pausing while
    /// paused replaces who, why and since; resuming while not paused
    /// changes nothing. Entries are never touched: the pause is a
    /// setting beside the logs, not part of them.
    fn set_writes_pause(&mut self, pause: Option<&WritesPause>) -> Result<()>;
}

/// One append transaction on one log. Nothing is visible to readers until
/// [`AppendTxn::commit`]; dropping it rolls back.
pub trait AppendTxn {
    /// The log's head as committed by the previous batch.
    fn head(&mut self) -> Result<Head>;

    /// For each request id, the entry already holding it, if any.
    fn lookup_request_ids(&mut self, ids: &[&str]) -> Result<Vec<Option<Existing>>>;

    /// True when [`AppendTxn::insert_entries`] or [`AppendTxn::commit`]
    /// itself refuses a request id that is already stored in the log,
    /// failing with
    /// [`StoreError::RequestIdTaken`](crate::StoreError::RequestIdTaken)
    /// (after which nothing of the transaction is stored). The sequencer
    /// then skips [`AppendTxn::lookup_request_ids`] and looks up only after
    /// such a refusal, so the common batch, with no id stored before,
    /// probes the request-id index once per entry instead of twice. False
    /// by default: look up first.
    fn refuses_stored_request_ids(&self) -> bool {
        false
    }

    /// A stored hash tile, as [`Store::read_tile`], inside the transaction.
    fn read_tile(&mut self, level: u8, index: u64) -> Result<Option<(u16, Vec<u8>)>>;

    /// Inserts sealed entries.
    fn insert_entries(&mut self, entries: &[NewEntry<'_>]) -> Result<()>;

    /// Writes hash tiles, replacing narrower versions of the same tile.
    fn put_tiles(&mut self, tiles: &[NewTile<'_>]) -> Result<()>;

    /// Stores the batch's signed checkpoint.
    fn insert_checkpoint(&mut self, size: u64, root: &evident_core::Hash, note: &str)
    -> Result<()>;

    /// Makes the batch durable and visible, all of it or none.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// Reads hash tiles through a closure, giving back exactly the width asked
/// for: the first `w` hashes of a wider stored tile are the same hashes, so
/// proofs to an older checkpoint work from tiles written later.
pub(crate) fn tile_prefix(
    id: &TileId,
    stored: Option<(u16, Vec<u8>)>,
) -> std::result::Result<Vec<u8>, evident_core::tile::TileError> {
    use evident_core::tile::TileError;
    let want = usize::from(id.width) * evident_core::hash::HASH_SIZE;
    match stored {
        Some((w, mut data)) if w >= id.width && data.len() >= want => {
            data.truncate(want);
            Ok(data)
        }
        _ => Err(TileError::Missing { path: id.path() }),
    }
}
