//! The PostgreSQL backend: one database shared by any number of Evident
//! server nodes.
//!
//! It uses the blocking `postgres` client, so the [`Store`] trait stays
//! synchronous for both backends (the server calls it from blocking worker
//! threads either way).
//!
//! Appends lock their log's row with `SELECT … FOR NO KEY UPDATE` in the
//! batch's own transaction, before the head is read. Writers of one log —
//! threads of one node or nodes on different machines — queue on that
//! lock and each reads the head the previous one committed (`READ
//! COMMITTED` takes a new snapshot per statement, after the lock is
//! granted). `NO KEY UPDATE` rather than `UPDATE` because it does not
//! block the foreign-key checks of checkpoint and tile rows referencing the
//! log. Nothing about sequencing is held in process memory.
//!
//! A batch is one transaction: its entries go in with one binary `COPY`
//! (one stream however large the batch), then its tiles and its
//! checkpoint, then one commit.
//!
//! Errors of the connection (refused, reset, a server shutting down or in
//! recovery, a lock not granted in time) map to
//! [`StoreError::Unavailable`] (`db.unavailable`), as SQLite's busy and I/O
//! errors do; the server then drops the connection and opens a new one.

use std::collections::HashMap;
use std::time::Duration;

use evident_core::Hash;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::error::SqlState;
use postgres::types::Type;
use postgres::{Client, GenericClient, NoTls, Statement};

use crate::backend::{AppendTxn, Store};
use crate::error::{Result, StoreError};
use crate::migrate::{self, Migration};
use crate::model::{
    ApiKeyRecord, EntryRef, Existing, Head, KeyRecord, KeyRotation, LogId, LogInfo,
    MigrationStatus, NewApiKey, NewEntry, NewTile, Restore, StoredCheckpoint, TenantInfo,
    TenantStatus, WritesPause,
};

mod auth;
mod curate;

/// PostgreSQL's migrations, in order (the same versions as SQLite's).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "tenants",
        sql: include_str!("../../migrations/postgres/0002_tenants.sql"),
    },
    Migration {
        version: 3,
        name: "keys_redaction_repair",
        sql: include_str!("../../migrations/postgres/0003_keys_redaction_repair.sql"),
    },
    Migration {
        version: 4,
        name: "meta_guard",
        sql: include_str!("../../migrations/postgres/0004_meta_guard.sql"),
    },
    Migration {
        version: 5,
        name: "request_id_runs",
        sql: include_str!("../../migrations/postgres/0005_request_id_runs.sql"),
    },
    Migration {
        version: 6,
        name: "entries_by_position",
        sql: include_str!("../../migrations/postgres/0006_entries_by_position.sql"),
    },
];

/// How long a writer waits for another's lock (the log row, a migration)
/// before giving up with `db.unavailable`: SQLite's busy timeout.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting may take before the database counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Rows per round trip of [`Store::scan_entries`]: bounds memory on logs
/// of any size.
const SCAN_PAGE: i64 = 2048;

/// Serialises `migrate_up` across connections and nodes (a transaction
/// advisory lock; the number is arbitrary but fixed).
const MIGRATION_LOCK: i64 = 0x6576_6964_656e_7401;

/// The canonical timestamp spelling, computed by the server.
const NOW_SQL: &str =
    r#"to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#;

/// The unique index on `entries (log_id, request_id)`, whose violation by
/// an append's COPY means a request id of the batch is already stored.
const REQUEST_ID_INDEX: &str = "entries_request_id";

/// Statements prepared once per connection, by their text.
type Statements = HashMap<&'static str, Statement>;

/// A connection to one PostgreSQL database.
pub struct PgStore {
    client: OwnedClient,
    stmts: Statements,
}

/// The client, closed where closing is allowed.
///
/// Closing a `postgres::Client` blocks on its own small runtime, which
/// tokio forbids on a thread that drives another runtime's tasks (a server
/// dropping its last pooled connection at shutdown). There the client is
/// closed on a thread of its own instead.
struct OwnedClient(Option<Client>);

impl std::ops::Deref for OwnedClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.0.as_ref().expect("the client is taken only by drop")
    }
}

impl std::ops::DerefMut for OwnedClient {
    fn deref_mut(&mut self) -> &mut Client {
        self.0.as_mut().expect("the client is taken only by drop")
    }
}

impl Drop for OwnedClient {
    fn drop(&mut self) {
        let Some(client) = self.0.take() else { return };
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new()
                .name("pg-close".into())
                .spawn(move || drop(client));
        } else {
            drop(client);
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("closed", &self.client.is_closed())
            .finish_non_exhaustive()
    }
}

/// Checks a `postgres://` URL (key=value strings are accepted too) without
/// connecting.
pub fn parse_url(url: &str) -> Result<postgres::Config> {
    url.parse::<postgres::Config>()
        .map_err(|e| StoreError::BadDatabaseUrl(e.to_string()))
}

impl PgStore {
    /// Connects to the database at `url`. Does not migrate.
    pub fn connect(url: &str) -> Result<Self> {
        let mut config = parse_url(url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("evident");
        }
        let mut client = config
            .connect(NoTls)
            .map_err(|e| StoreError::Unavailable(format!("cannot connect: {e}")))?;
        client
            .batch_execute(&format!(
                "SET lock_timeout = '{}ms'",
                LOCK_TIMEOUT.as_millis()
            ))
            .map_err(map_err)?;
        Ok(PgStore {
            client: OwnedClient(Some(client)),
            stmts: HashMap::new(),
        })
    }

    /// How long this connection waits for a lock (another writer's log
    /// row) before the statement fails with `db.unavailable`.
    pub fn set_lock_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.client
            .batch_execute(&format!("SET lock_timeout = '{}ms'", timeout.as_millis()))
            .map_err(map_err)
    }

    /// The underlying client, for tests that play the attacker.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    fn applied(&mut self) -> Result<Vec<(u32, String, String)>> {
        applied(&mut *self.client)
    }
}

/// Maps PostgreSQL errors to the store's: a trigger's refusal is an
/// append-only violation; a lost or refused connection, a server shutting
/// down, starting, in recovery or out of resources, and a lock wait that
/// timed out mean the database is unavailable.
pub fn map_err(e: postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        if db.message().starts_with("evident:") {
            return StoreError::AppendOnly(db.message().to_owned());
        }
        let code = db.code().code();
        let unavailable = ["08", "53", "57", "58"]
            .iter()
            .any(|class| code.starts_with(class))
            || code == "55P03" // lock_not_available (lock_timeout)
            || code == "25006"; // read-only transaction: a standby
        // The client's own text is only "db error"; the server's message
        // and SQLSTATE are what an operator needs (e.g. "permission denied
        // for table logs (42501)").
        let text = format!("{} ({code})", db.message());
        return if unavailable {
            StoreError::Unavailable(text)
        } else {
            StoreError::Database(text)
        };
    }
    // Not from the server: the client's own errors. Those of the
    // connection say so; the rest (types, encoding) are ours.
    let text = e.to_string();
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    if e.is_closed()
        || io
        || text.starts_with("error connecting")
        || text.starts_with("timeout")
        || text.starts_with("error communicating")
        || text.starts_with("connection closed")
    {
        StoreError::Unavailable(text)
    } else {
        StoreError::Database(text)
    }
}

/// Maps an error of an append's COPY: a violation of the request-id
/// index is [`StoreError::RequestIdTaken`] (the sequencer then redoes the
/// batch with the lookup), the rest as [`map_err`].
fn copy_err(e: postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db)
            if *db.code() == SqlState::UNIQUE_VIOLATION
                && db.constraint() == Some(REQUEST_ID_INDEX) =>
        {
            StoreError::RequestIdTaken(db.detail().unwrap_or_default().to_owned())
        }
        _ => map_err(e),
    }
}

/// The statement `sql`, prepared on first use on this connection.
fn stmt<C: GenericClient>(
    c: &mut C,
    cache: &mut Statements,
    sql: &'static str,
) -> Result<Statement> {
    if let Some(s) = cache.get(sql) {
        return Ok(s.clone());
    }
    let s = c.prepare(sql).map_err(map_err)?;
    cache.insert(sql, s.clone());
    Ok(s)
}

fn to_i64(n: u64) -> i64 {
    // Indices and sizes are at most 2^53 (MAX_SAFE_INTEGER).
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative index or size {n}")))
}

fn hash_col(bytes: &[u8], what: &str) -> Result<Hash> {
    Hash::from_slice(bytes).map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

fn applied(c: &mut impl GenericClient) -> Result<Vec<(u32, String, String)>> {
    let exists: bool = c
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .map_err(map_err)?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = c
        .query(
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY version",
            &[],
        )
        .map_err(map_err)?;
    rows.iter()
        .map(|r| {
            let v: i32 = r.get(0);
            let v = u32::try_from(v)
                .map_err(|_| StoreError::Corrupt(format!("migration version {v}")))?;
            Ok((v, r.get(1), r.get(2)))
        })
        .collect()
}

fn log_from_row(r: &postgres::Row) -> LogInfo {
    LogInfo {
        id: r.get(0),
        tenant: r.get(1),
        name: r.get(2),
        origin: r.get(3),
        created_at: r.get(4),
    }
}

fn checkpoint_from_row(r: &postgres::Row) -> Result<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        seq: r.get(0),
        size: to_u64(r.get(1))?,
        root: hash_col(r.get(2), "checkpoint root")?,
        note: r.get(3),
    })
}

const LATEST_CHECKPOINT: &str =
    "SELECT seq, size, root, note FROM checkpoints WHERE log_id = $1 ORDER BY seq DESC LIMIT 1";

fn latest_checkpoint<C: GenericClient>(
    c: &mut C,
    cache: &mut Statements,
    log: LogId,
) -> Result<Option<StoredCheckpoint>> {
    let s = stmt(c, cache, LATEST_CHECKPOINT)?;
    c.query_opt(&s, &[&log])
        .map_err(map_err)?
        .as_ref()
        .map(checkpoint_from_row)
        .transpose()
}

const READ_TILE: &str =
    "SELECT width, data FROM tiles WHERE log_id = $1 AND level = $2 AND idx = $3";

fn read_tile<C: GenericClient>(
    c: &mut C,
    cache: &mut Statements,
    log: LogId,
    level: u8,
    index: u64,
) -> Result<Option<(u16, Vec<u8>)>> {
    let s = stmt(c, cache, READ_TILE)?;
    let Some(row) = c
        .query_opt(&s, &[&log, &i16::from(level), &to_i64(index)])
        .map_err(map_err)?
    else {
        return Ok(None);
    };
    let w: i32 = row.get(0);
    let data: Vec<u8> = row.get(1);
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

const FIND_LOG: &str =
    "SELECT id, tenant, name, origin, created_at FROM logs WHERE tenant = $1 AND name = $2";

impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn migration_status(&mut self) -> Result<MigrationStatus> {
        Ok(migrate::status(self.applied()?, MIGRATIONS))
    }

    /// Each migration is one transaction holding an advisory lock, so
    /// nodes started together with `--migrate` apply each version once.
    fn migrate_up(&mut self) -> Result<Vec<u32>> {
        let mut done = Vec::new();
        loop {
            let mut tx = self.client.transaction().map_err(map_err)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .map_err(map_err)?;
            let status = migrate::status(applied(&mut tx)?, MIGRATIONS);
            if status.current > status.expected {
                return Err(StoreError::MigrationHeadMismatch {
                    expected: status.expected,
                    actual: status.current,
                    hint: "; the database was migrated by a newer Evident",
                });
            }
            let Some(m) = MIGRATIONS.iter().find(|m| m.version > status.current) else {
                tx.commit().map_err(map_err)?;
                return Ok(done);
            };
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version    integer PRIMARY KEY,
                     name       text NOT NULL,
                     applied_at text NOT NULL
                 );",
            )
            .map_err(map_err)?;
            tx.batch_execute(m.sql).map_err(map_err)?;
            let version = i32::try_from(m.version).unwrap_or(i32::MAX);
            tx.execute(
                &format!(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, {NOW_SQL})"
                ),
                &[&version, &m.name],
            )
            .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            done.push(m.version);
        }
    }

    fn instance(&mut self) -> Result<Option<String>> {
        Ok(self
            .client
            .query_opt("SELECT value FROM meta WHERE key = 'instance'", &[])
            .map_err(map_err)?
            .map(|r| r.get(0)))
    }

    fn initialize(&mut self, instance: &str, vkey: &str, now: &str) -> Result<()> {
        let mut tx = self.client.transaction().map_err(map_err)?;
        let added = tx
            .execute(
                "INSERT INTO meta (key, value) VALUES ('instance', $1) ON CONFLICT (key) DO NOTHING",
                &[&instance],
            )
            .map_err(map_err)?;
        if added == 0 {
            return Err(StoreError::AlreadyInitialized {
                path: "database".into(),
            });
        }
        tx.execute(
            "INSERT INTO keys (vkey, created_at) VALUES ($1, $2)",
            &[&vkey, &now],
        )
        .map_err(map_err)?;
        tx.commit().map_err(map_err)
    }

    fn keys(&mut self) -> Result<Vec<KeyRecord>> {
        curate::keys(&mut *self.client)
    }

    fn add_key(&mut self, vkey: &str, now: &str) -> Result<KeyRecord> {
        let r = self
            .client
            .query_one(
                "INSERT INTO keys (vkey, created_at) VALUES ($1, $2) RETURNING id, vkey, created_at",
                &[&vkey, &now],
            )
            .map_err(map_err)?;
        Ok(KeyRecord {
            id: r.get(0),
            vkey: r.get(1),
            created_at: r.get(2),
            first_seq: None,
            last_seq: None,
            retired_at: None,
        })
    }

    fn rotate_key(&mut self, rotation: &KeyRotation<'_>) -> Result<KeyRecord> {
        let mut tx = self.client.transaction().map_err(map_err)?;
        let key = curate::rotate_key(&mut tx, rotation)?;
        tx.commit().map_err(map_err)?;
        Ok(key)
    }

    fn redact_body(&mut self, log: LogId, index: u64, by: u64, now: &str) -> Result<()> {
        let mut tx = self.client.transaction().map_err(map_err)?;
        curate::redact_body(&mut tx, log, index, by, now)?;
        tx.commit().map_err(map_err)
    }

    fn repair_entries(&mut self, log: LogId, restores: &[Restore<'_>], now: &str) -> Result<()> {
        let mut tx = self.client.transaction().map_err(map_err)?;
        curate::repair_entries(&mut tx, log, restores, now)?;
        tx.commit().map_err(map_err)
    }

    fn logs(&mut self) -> Result<Vec<LogInfo>> {
        let rows = self
            .client
            .query(
                "SELECT id, tenant, name, origin, created_at FROM logs ORDER BY tenant, name",
                &[],
            )
            .map_err(map_err)?;
        Ok(rows.iter().map(log_from_row).collect())
    }

    fn find_log(&mut self, tenant: &str, name: &str) -> Result<Option<LogInfo>> {
        let s = stmt(&mut *self.client, &mut self.stmts, FIND_LOG)?;
        Ok(self
            .client
            .query_opt(&s, &[&tenant, &name])
            .map_err(map_err)?
            .as_ref()
            .map(log_from_row))
    }

    fn create_log(&mut self, tenant: &str, name: &str, origin: &str, now: &str) -> Result<LogInfo> {
        self.client
            .execute(
                "INSERT INTO logs (tenant, name, origin, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant, name) DO NOTHING",
                &[&tenant, &name, &origin, &now],
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
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client
            .query(
                "SELECT seq, size, root, note FROM checkpoints
                 WHERE log_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&log, &after_seq, &limit],
            )
            .map_err(map_err)?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    fn latest_checkpoint(&mut self, log: LogId) -> Result<Option<StoredCheckpoint>> {
        latest_checkpoint(&mut *self.client, &mut self.stmts, log)
    }

    fn entry_count(&mut self, log: LogId) -> Result<u64> {
        let n: i64 = self
            .client
            .query_one("SELECT count(*) FROM entries WHERE log_id = $1", &[&log])
            .map_err(map_err)?
            .get(0);
        to_u64(n)
    }

    /// Reads in pages by index (keyset pagination), so memory stays
    /// bounded on any log; inside a snapshot every page reads the same
    /// committed state.
    fn scan_entries(
        &mut self,
        log: LogId,
        from: u64,
        f: &mut dyn FnMut(EntryRef<'_>) -> Result<bool>,
    ) -> Result<()> {
        let s = stmt(
            &mut *self.client,
            &mut self.stmts,
            "SELECT idx, envelope, leaf_hash, salt, body FROM entries
             WHERE log_id = $1 AND idx >= $2 ORDER BY idx LIMIT $3",
        )?;
        let mut next = to_i64(from);
        loop {
            let rows = self
                .client
                .query(&s, &[&log, &next, &SCAN_PAGE])
                .map_err(map_err)?;
            for row in &rows {
                let idx: i64 = row.get(0);
                let envelope: Option<&[u8]> = row.get(1);
                let leaf: Option<&[u8]> = row.get(2);
                let entry = EntryRef {
                    index: to_u64(idx)?,
                    envelope: envelope.unwrap_or_default(),
                    leaf_hash: leaf.and_then(|b| Hash::from_slice(b).ok()),
                    salt: row.get(3),
                    body: row.get(4),
                };
                if !f(entry)? {
                    return Ok(());
                }
                next = idx.saturating_add(1);
            }
            if i64::try_from(rows.len()).unwrap_or(i64::MAX) < SCAN_PAGE {
                return Ok(());
            }
        }
    }

    /// A `REPEATABLE READ` read-only transaction: every statement until
    /// its end reads the snapshot its first statement took.
    fn begin_snapshot(&mut self) -> Result<()> {
        self.client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .map_err(map_err)
    }

    fn end_snapshot(&mut self) -> Result<()> {
        let ended = self.client.batch_execute("COMMIT").map_err(map_err);
        if ended.is_err() {
            // Never leave the connection inside the snapshot.
            let _ = self.client.batch_execute("ROLLBACK");
        }
        ended
    }

    fn read_tile(&mut self, log: LogId, level: u8, index: u64) -> Result<Option<(u16, Vec<u8>)>> {
        read_tile(&mut *self.client, &mut self.stmts, log, level, index)
    }

    fn begin_append(&mut self, log: LogId) -> Result<Box<dyn AppendTxn + '_>> {
        let PgStore { client, stmts } = self;
        let mut tx = client.transaction().map_err(map_err)?;
        let lock = stmt(
            &mut tx,
            stmts,
            "SELECT id FROM logs WHERE id = $1 FOR NO KEY UPDATE",
        )?;
        if tx.query_opt(&lock, &[&log]).map_err(map_err)?.is_none() {
            return Err(StoreError::LogNotFound(format!("#{log}")));
        }
        Ok(Box::new(PgAppend { tx, stmts, log }))
    }

    /// One row of the `meta` table, `writes_paused`, holding the pause as
    /// JSON (as on SQLite); no row means writes go on.
    fn writes_pause(&mut self) -> Result<Option<WritesPause>> {
        let text: Option<String> = self
            .client
            .query_opt("SELECT value FROM meta WHERE key = 'writes_paused'", &[])
            .map_err(map_err)?
            .map(|r| r.get(0));
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
                self.client
                    .execute(
                        "INSERT INTO meta (key, value) VALUES ('writes_paused', $1)
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        &[&text],
                    )
                    .map_err(map_err)?;
            }
            None => {
                self.client
                    .execute("DELETE FROM meta WHERE key = 'writes_paused'", &[])
                    .map_err(map_err)?;
            }
        }
        Ok(())
    }

    fn create_tenant(&mut self, name: &str, now: &str) -> Result<TenantInfo> {
        auth::create_tenant(&mut self.client, name, now)
    }

    fn tenants(&mut self) -> Result<Vec<TenantInfo>> {
        auth::tenants(&mut self.client)
    }

    fn find_tenant(&mut self, name: &str) -> Result<Option<TenantInfo>> {
        auth::find_tenant(&mut self.client, &mut self.stmts, name)
    }

    fn set_tenant_status(
        &mut self,
        name: &str,
        status: TenantStatus,
        now: &str,
    ) -> Result<TenantInfo> {
        auth::set_tenant_status(&mut self.client, &mut self.stmts, name, status, now)
    }

    fn insert_api_key(&mut self, key: &NewApiKey<'_>) -> Result<ApiKeyRecord> {
        auth::insert_api_key(&mut self.client, &mut self.stmts, key)
    }

    fn api_keys(&mut self) -> Result<Vec<ApiKeyRecord>> {
        auth::api_keys(&mut self.client)
    }

    fn find_api_key(&mut self, id: &str) -> Result<Option<(ApiKeyRecord, TenantStatus)>> {
        auth::find_api_key(&mut self.client, &mut self.stmts, id)
    }

    fn revoke_api_key(&mut self, id: &str, now: &str) -> Result<ApiKeyRecord> {
        auth::revoke_api_key(&mut self.client, id, now)
    }
}

struct PgAppend<'c> {
    tx: postgres::Transaction<'c>,
    stmts: &'c mut Statements,
    log: LogId,
}

impl AppendTxn for PgAppend<'_> {
    fn head(&mut self) -> Result<Head> {
        let cp = latest_checkpoint(&mut self.tx, self.stmts, self.log)?;
        let size = cp.as_ref().map_or(0, |c| c.size);
        let past = stmt(
            &mut self.tx,
            self.stmts,
            "SELECT EXISTS (SELECT 1 FROM entries WHERE log_id = $1 AND idx >= $2)",
        )?;
        let rows_past_head: bool = self
            .tx
            .query_one(&past, &[&self.log, &to_i64(size)])
            .map_err(map_err)?
            .get(0);
        // Read after the log's lock: a rotation committed while this
        // append waited is seen, and the sequencer refuses the old key.
        let current_key = curate::current_key(&mut self.tx)?;
        let Some(cp) = cp else {
            return Ok(Head {
                rows_past_head,
                current_key,
                ..Head::default()
            });
        };
        let mut head = Head {
            size: cp.size,
            root: Some(cp.root),
            note: Some(cp.note),
            rows_past_head,
            current_key,
            ..Head::default()
        };
        if cp.size > 0 {
            let last = stmt(
                &mut self.tx,
                self.stmts,
                "SELECT leaf_hash, envelope FROM entries WHERE log_id = $1 AND idx = $2",
            )?;
            if let Some(r) = self
                .tx
                .query_opt(&last, &[&self.log, &to_i64(cp.size - 1)])
                .map_err(map_err)?
            {
                let leaf: &[u8] = r.get(0);
                head.last_leaf = Hash::from_slice(leaf).ok();
                head.last_envelope = Some(r.get(1));
            }
        }
        Ok(head)
    }

    /// One statement for the whole batch: the ids go in as one array and
    /// each probes the request-id index.
    fn lookup_request_ids(&mut self, ids: &[&str]) -> Result<Vec<Option<Existing>>> {
        let mut out = vec![None; ids.len()];
        if ids.is_empty() {
            return Ok(out);
        }
        let s = stmt(
            &mut self.tx,
            self.stmts,
            "SELECT j.i, e.idx, e.leaf_hash, e.envelope
             FROM unnest($2::text[]) WITH ORDINALITY AS j (rid, i)
             JOIN entries AS e ON e.log_id = $1 AND e.request_id = j.rid
             WHERE e.request_id IS NOT NULL",
        )?;
        for row in self.tx.query(&s, &[&self.log, &ids]).map_err(map_err)? {
            let i: i64 = row.get(0);
            let slot = usize::try_from(i - 1)
                .ok()
                .and_then(|k| out.get_mut(k))
                .ok_or_else(|| StoreError::Database(format!("ordinality {i}")))?;
            *slot = Some(Existing {
                index: to_u64(row.get(1))?,
                leaf_hash: hash_col(row.get(2), "leaf hash")?,
                envelope: row.get(3),
            });
        }
        Ok(out)
    }

    /// The COPY checks every row against the unique request-id index
    /// anyway, so a stored id is found there: the separate lookup (a
    /// second probe of the same index per id, about 1 µs an entry) is only
    /// needed after the COPY refused one.
    fn refuses_stored_request_ids(&self) -> bool {
        true
    }

    fn read_tile(&mut self, level: u8, index: u64) -> Result<Option<(u16, Vec<u8>)>> {
        read_tile(&mut self.tx, self.stmts, self.log, level, index)
    }

    /// Every row in one `COPY … FROM STDIN (FORMAT binary)`, inside the
    /// batch's transaction: one stream however large the batch, and
    /// measured faster than one `INSERT … SELECT FROM unnest(…)` of the
    /// same rows (BENCHMARKS.md, issue 5). COPY fires no row triggers
    /// the schema has (they are on UPDATE, DELETE and TRUNCATE only) and
    /// checks the primary key and the request-id index as an INSERT does;
    /// a request id already stored fails it with
    /// [`StoreError::RequestIdTaken`].
    fn insert_entries(&mut self, entries: &[NewEntry<'_>]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let sink = self
            .tx
            .copy_in(
                "COPY entries (log_id, idx, leaf_hash, envelope, salt, body, request_id) \
                 FROM STDIN (FORMAT binary)",
            )
            .map_err(map_err)?;
        let mut rows = BinaryCopyInWriter::new(
            sink,
            &[
                Type::INT8,
                Type::INT8,
                Type::BYTEA,
                Type::BYTEA,
                Type::BYTEA,
                Type::BYTEA,
                Type::TEXT,
            ],
        );
        for e in entries {
            let leaf: &[u8] = &e.leaf_hash.0;
            rows.write(&[
                &self.log,
                &to_i64(e.index),
                &leaf,
                &e.envelope,
                &e.salt,
                &e.body,
                &e.request_id,
            ])
            .map_err(copy_err)?;
        }
        rows.finish().map_err(copy_err)?;
        Ok(())
    }

    fn put_tiles(&mut self, tiles: &[NewTile<'_>]) -> Result<()> {
        let s = stmt(
            &mut self.tx,
            self.stmts,
            "INSERT INTO tiles (log_id, level, idx, width, data) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (log_id, level, idx) DO UPDATE
             SET width = excluded.width, data = excluded.data
             WHERE excluded.width > tiles.width",
        )?;
        for t in tiles {
            let evident_core::tile::TileKind::Hashes { level } = t.id.kind else {
                return Err(StoreError::Database("only hash tiles are stored".into()));
            };
            self.tx
                .execute(
                    &s,
                    &[
                        &self.log,
                        &i16::from(level),
                        &to_i64(t.id.index),
                        &i32::from(t.id.width),
                        &t.data,
                    ],
                )
                .map_err(map_err)?;
        }
        Ok(())
    }

    fn insert_checkpoint(&mut self, size: u64, root: &Hash, note: &str) -> Result<()> {
        let s = stmt(
            &mut self.tx,
            self.stmts,
            concat!(
                "INSERT INTO checkpoints (log_id, size, root, note, created_at) VALUES ($1, $2, $3, $4, ",
                r#"to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))"#
            ),
        )?;
        self.tx
            .execute(&s, &[&self.log, &to_i64(size), &&root.0[..], &note])
            .map_err(map_err)?;
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().map_err(map_err)
    }
}
