//! The conformance suite every [`Store`] backend must pass.
//!
//! The suite is ordinary library code, so a backend's integration test
//! runs it in a few lines: implement [`Harness`] for one throwaway
//! database and let [`store_conformance_tests!`](crate::store_conformance_tests)
//! generate one `#[test]` per case, so a failure names the case:
//!
//! ```no_run
//! use evident_store::conformance::{Harness, sqlite_execute};
//! use evident_store::sqlite::SqliteStore;
//! use evident_store::{Store, StoreError};
//!
//! /// One database file per case.
//! struct Sqlite {
//!     _dir: tempfile::TempDir,
//!     path: std::path::PathBuf,
//! }
//!
//! impl Sqlite {
//!     fn new() -> Self {
//!         let dir = tempfile::tempdir().expect("a temporary directory");
//!         let path = dir.path().join("evident.db");
//!         Sqlite { _dir: dir, path }
//!     }
//! }
//!
//! impl Harness for Sqlite {
//!     fn connect(&mut self) -> Box<dyn Store> {
//!         Box::new(SqliteStore::open(&self.path, true).expect("open the database"))
//!     }
//!     fn raw_sql(&mut self, sql: &str) -> Result<(), StoreError> {
//!         sqlite_execute(&SqliteStore::open(&self.path, false)?, sql)
//!     }
//! }
//!
//! evident_store::store_conformance_tests!(Sqlite::new());
//! # fn main() {}
//! ```
//!
//! PostgreSQL's harness (`tests/postgres_conformance.rs`) does the same
//! with a new database per case (`CREATE DATABASE` on one throwaway
//! cluster per test binary, from `evident-pgtest`, dropped with the harness),
//! `connect` opening a new client to it, and `raw_sql` running the
//! statement on a client of its own with the backend's error mapping.
//!
//! What a backend is held to, beyond the trait's documentation:
//!
//! - the schema comes from `migrate_up`, which is idempotent;
//! - an append is one transaction: nothing of it is visible to any
//!   connection before `commit`, and dropping it leaves nothing;
//! - `begin_append` serialises writers of one log across connections, so
//!   concurrent sequencers neither fork nor repeat an index, and a request
//!   id is stored once however many writers race with it;
//! - entries, checkpoints and keys refuse `UPDATE` and `DELETE` from any
//!   SQL client, reported as [`StoreError::AppendOnly`]; API keys refuse
//!   every change but their revocation, and tenants refuse deletion and
//!   renaming;
//! - a revocation or suspension is seen by every other connection as
//!   soon as it is committed;
//! - between `begin_snapshot` and `end_snapshot` a connection reads one
//!   committed state, so verification never sees half of a batch another
//!   connection commits meanwhile;
//! - text is compared byte-wise (log names sort as bytes, whatever the
//!   database's collation);
//! - two logs in one database never see each other's rows.
//!
//! The sequencer cases run [`Sequencer`] over the backend and judge the
//! result with `evident-core` alone: [`reader::verify_log`], receipts
//! verified by [`Receipt::verify`](evident_core::receipt::Receipt::verify)
//! and consistency proofs by [`verify_consistency`].

use std::cell::Cell;
use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use evident_core::checkpoint::{Checkpoint, open_checkpoint};
use evident_core::entry::{
    EntryDraft, EnvelopeView, Limits, SALT_SIZE, body_digest, format_ts, origin, parse_entry,
};
use evident_core::hash::{leaf_hash, sha256};
use evident_core::merkle::verify_consistency;
use evident_core::note::{NoteSigner, Verifiers};
use evident_core::tile::TileId;
use evident_core::{ErrorCode, Hash};

use crate::backend::{AppendTxn, Store};
use crate::error::{Result, StoreError};
use crate::migrate::EXPECTED_HEAD;
use crate::model::{
    ApiKeyRecord, EntryRef, Existing, Head, KeyRecord, KeyRotation, LogId, LogInfo,
    MigrationStatus, NewApiKey, NewEntry, NewTile, Restore, StoredCheckpoint, StoredEntry,
    TenantInfo, TenantStatus, Transition, WritesPause,
};
use crate::reader;
use crate::sequencer::{Appended, BatchOutcome, Sequencer};

/// One throwaway database of the backend under test.
///
/// The suite makes a new harness for every case (the macro evaluates the
/// harness expression inside each generated test), so the first
/// [`Harness::connect`] sees an empty database without any schema.
pub trait Harness {
    /// A new connection to this harness's database. Called several times
    /// by the cases that need more than one writer; the stores it returns
    /// may be moved to other threads.
    fn connect(&mut self) -> Box<dyn Store>;

    /// Runs `sql` on a connection of its own, outside any transaction of
    /// the stores (they have none open when this is called), with errors
    /// mapped as the backend maps them for [`Store`] calls. Only the
    /// append-only cases use it, with plain SQL both backends accept
    /// (`UPDATE entries SET body = NULL`, `DELETE FROM checkpoints`, …)
    /// on the schema's shared names: `entries (idx, salt, body,
    /// request_id)`, `checkpoints (seq, size, note)`, `keys (id, vkey)`,
    /// `tiles (level, width)`, `tenants (name, status, created_at,
    /// updated_at)` and `api_keys (id, tenant, scopes, key_hash,
    /// created_at, revoked_at)`.
    fn raw_sql(&mut self, sql: &str) -> Result<()>;

    /// The column that places an entry in its log, which the append-only
    /// cases try to change: `idx` unless the backend keys entries by
    /// another column it derives `idx` from (SQLite's `pos`).
    fn position_column(&self) -> &'static str {
        "idx"
    }
}

/// Raw SQL on a [`SqliteStore`](crate::sqlite::SqliteStore)'s connection,
/// its errors mapped as the backend maps its own: the SQLite harness's
/// [`Harness::raw_sql`].
#[doc(hidden)]
pub fn sqlite_execute(store: &crate::sqlite::SqliteStore, sql: &str) -> Result<()> {
    store
        .connection()
        .execute_batch(sql)
        .map_err(crate::sqlite::map_err)
}

/// Generates one `#[test]` per conformance case, each on a fresh harness
/// made by evaluating `$harness` (see the [module docs](crate::conformance)
/// for a complete harness).
#[macro_export]
macro_rules! store_conformance_tests {
    ($harness:expr) => {
        $crate::store_conformance_tests!(@cases ($harness)
            migrations_bring_a_fresh_database_to_the_head,
            initialize_happens_once,
            keys_are_listed_oldest_first,
            logs_are_created_once_and_listed_in_byte_order,
            committed_append_is_visible,
            dropped_append_leaves_nothing,
            head_is_the_last_commit,
            request_ids_are_found_and_unique_per_log,
            duplicate_index_is_refused,
            tiles_widen_and_never_narrow,
            scan_entries_in_order_from_and_stop,
            checkpoints_in_stored_order,
            append_only_tables_refuse_update_and_delete,
            logs_are_isolated,
            appends_to_one_log_are_serialised,
            sequencer_batches_verify_with_receipts_and_proofs,
            sequencer_request_ids_are_idempotent,
            sequencer_large_batches_find_stored_ids,
            sequencer_keeps_salts_drawn_ahead,
            sequencer_time_never_goes_back,
            sequencer_failed_batch_leaves_nothing,
            sequencer_refuses_a_parent_not_before_the_entry,
            sequencer_two_connections_alternate,
            sequencer_concurrent_writers_share_one_log,
            verification_reads_one_committed_state,
            tenants_are_created_listed_and_suspended,
            tenant_names_are_checked,
            api_keys_are_issued_found_listed_and_revoked,
            api_keys_are_revoked_never_changed,
            revocation_is_seen_at_once_by_another_connection,
            key_rotation_is_checked_recorded_and_enforced,
            redaction_erases_only_body_and_salt_once,
            repair_quarantines_the_row_it_rewrites,
            writes_pause_is_set_seen_and_cleared,
        );
    };
    (@cases ($harness:expr) $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let mut harness = $harness;
                $crate::conformance::$case(&mut harness);
            }
        )*
    };
}

// ---------------------------------------------------------------------------
// Fixtures.

/// Instance name of every conformance database.
const INSTANCE: &str = "conformance.test";
/// A fixed creation time.
const NOW: &str = "2025-01-02T03:04:05.000006Z";

fn signer_from(seed: u8) -> NoteSigner {
    NoteSigner::new(INSTANCE, SigningKey::from_bytes(&[seed; 32]))
        .expect("the conformance instance name is a valid key name")
}

/// The key the sequencer cases sign with.
fn signer() -> NoteSigner {
    signer_from(0x5e)
}

fn verifiers() -> Verifiers {
    Verifiers::new([signer().verifier_key()])
}

/// Connects, migrates and initialises with [`signer`]'s key.
fn ready(h: &mut dyn Harness) -> Box<dyn Store> {
    let mut store = h.connect();
    store.migrate_up().expect("migrate_up on a fresh database");
    store
        .initialize(INSTANCE, &signer().verifier_key().to_string(), NOW)
        .expect("initialize a fresh database");
    store
}

fn log_origin(tenant: &str, name: &str) -> String {
    origin(INSTANCE, tenant, name).expect("test log names are valid")
}

fn new_log(store: &mut dyn Store, tenant: &str, name: &str) -> LogInfo {
    store
        .create_log(tenant, name, &log_origin(tenant, name), NOW)
        .expect("create_log")
}

/// A synthetic row: the store does not interpret envelopes, so any bytes
/// do for the storage cases.
#[derive(Debug, Clone)]
struct Row {
    index: u64,
    envelope: Vec<u8>,
    leaf: Hash,
    salt: Vec<u8>,
    body: Vec<u8>,
    request_id: Option<String>,
}

/// The body holds non-ASCII text and an escaped NUL: bytes must round-trip.
fn row(log: &LogInfo, index: u64, request_id: Option<&str>) -> Row {
    let envelope = format!("{{\"origin\":\"{}\",\"index\":{index}}}", log.origin).into_bytes();
    Row {
        index,
        leaf: leaf_hash(&envelope),
        envelope,
        salt: sha256(&index.to_be_bytes()).0[..16].to_vec(),
        body: format!("{{\"n\":{index},\"text\":\"é—\\u0000\"}}").into_bytes(),
        request_id: request_id.map(str::to_owned),
    }
}

fn new_entries(rows: &[Row]) -> Vec<NewEntry<'_>> {
    rows.iter()
        .map(|r| NewEntry {
            index: r.index,
            envelope: &r.envelope,
            leaf_hash: &r.leaf,
            salt: &r.salt,
            body: &r.body,
            request_id: r.request_id.as_deref(),
        })
        .collect()
}

fn stored(r: &Row) -> StoredEntry {
    StoredEntry {
        index: r.index,
        envelope: r.envelope.clone(),
        leaf_hash: Some(r.leaf),
        salt: Some(r.salt.clone()),
        body: Some(r.body.clone()),
    }
}

/// `width` distinct hashes for tile `(level, index)`, varied by `seed`.
fn tile_data(level: u8, index: u64, width: u16, seed: u8) -> Vec<u8> {
    (0..width)
        .flat_map(|j| {
            let mut b = vec![level, seed];
            b.extend_from_slice(&index.to_be_bytes());
            b.extend_from_slice(&j.to_be_bytes());
            sha256(&b).0
        })
        .collect()
}

/// A note-like text: stored and returned byte for byte.
fn note_text(log: &LogInfo, size: u64) -> String {
    format!(
        "{}\n{size}\nnot a real signature — stored verbatim\n",
        log.origin
    )
}

fn root_for(size: u64) -> Hash {
    sha256(&size.to_le_bytes())
}

/// Writes `rows`, their level-0 tile (when given) and a checkpoint of
/// `size` in one committed append.
fn commit_rows(
    store: &mut dyn Store,
    log: &LogInfo,
    rows: &[Row],
    tile: Option<(u8, u64, u16)>,
    size: u64,
) {
    let mut txn = store.begin_append(log.id).expect("begin_append");
    txn.insert_entries(&new_entries(rows))
        .expect("insert_entries");
    if let Some((level, index, width)) = tile {
        let data = tile_data(level, index, width, 0);
        txn.put_tiles(&[NewTile {
            id: TileId::hashes(level, index, width),
            data: &data,
        }])
        .expect("put_tiles");
    }
    txn.insert_checkpoint(size, &root_for(size), &note_text(log, size))
        .expect("insert_checkpoint");
    txn.commit().expect("commit");
}

fn entries(store: &mut dyn Store, log: LogId, from: u64) -> Vec<StoredEntry> {
    let mut out = Vec::new();
    store
        .scan_entries(log, from, &mut |e: EntryRef<'_>| {
            out.push(StoredEntry::from(e));
            Ok(true)
        })
        .expect("scan_entries");
    out
}

fn checkpoints(store: &mut dyn Store, log: LogId) -> Vec<StoredCheckpoint> {
    store.checkpoints(log).expect("checkpoints")
}

fn sizes(cps: &[StoredCheckpoint]) -> Vec<u64> {
    cps.iter().map(|c| c.size).collect()
}

/// Everything of a log a reader can see, to compare before and after.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    entries: Vec<StoredEntry>,
    checkpoints: Vec<StoredCheckpoint>,
    latest: Option<StoredCheckpoint>,
    count: u64,
    tiles: Vec<Option<(u16, Vec<u8>)>>,
    keys: Vec<KeyRecord>,
}

fn snapshot(store: &mut dyn Store, log: LogId) -> Snapshot {
    let mut tiles = Vec::new();
    for (level, index) in [(0, 0), (0, 1), (0, 2), (1, 0)] {
        tiles.push(store.read_tile(log, level, index).expect("read_tile"));
    }
    Snapshot {
        entries: entries(store, log, 0),
        checkpoints: checkpoints(store, log),
        latest: store.latest_checkpoint(log).expect("latest_checkpoint"),
        count: store.entry_count(log).expect("entry_count"),
        tiles,
        keys: store.keys().expect("keys"),
    }
}

// ---------------------------------------------------------------------------
// Storage cases.

/// A fresh database has no migration applied; `migrate_up` applies them
/// all, in order, once; the status then matches this binary's head, for
/// every connection.
pub fn migrations_bring_a_fresh_database_to_the_head(h: &mut dyn Harness) {
    let mut store = h.connect();
    let before = store
        .migration_status()
        .expect("status of a fresh database");
    assert_eq!(before.current, 0, "fresh database: {before:?}");
    assert_eq!(before.expected, EXPECTED_HEAD);
    assert!(before.applied.is_empty(), "{before:?}");
    let pending: Vec<u32> = before.pending.iter().map(|p| p.0).collect();
    assert_eq!(pending, (1..=EXPECTED_HEAD).collect::<Vec<_>>());

    let applied = store.migrate_up().expect("migrate_up");
    assert_eq!(applied, (1..=EXPECTED_HEAD).collect::<Vec<_>>());
    let check = |s: &MigrationStatus| {
        assert_eq!(s.current, EXPECTED_HEAD, "{s:?}");
        assert_eq!(s.expected, EXPECTED_HEAD, "{s:?}");
        assert!(s.pending.is_empty(), "{s:?}");
        let versions: Vec<u32> = s.applied.iter().map(|a| a.0).collect();
        assert_eq!(versions, (1..=EXPECTED_HEAD).collect::<Vec<_>>());
        assert!(s.applied.iter().all(|a| !a.1.is_empty() && !a.2.is_empty()));
    };
    let after = store.migration_status().expect("status after migrate_up");
    check(&after);

    assert_eq!(
        store.migrate_up().expect("a second migrate_up"),
        Vec::<u32>::new(),
        "migrate_up is idempotent"
    );
    assert_eq!(store.migration_status().expect("status"), after);
    let mut other = h.connect();
    check(
        &other
            .migration_status()
            .expect("status on another connection"),
    );
    assert_eq!(
        other
            .migrate_up()
            .expect("migrate_up on another connection"),
        Vec::<u32>::new()
    );
    assert_eq!(other.instance().expect("instance"), None);
}

/// `initialize` records the instance and the first key once; a second
/// call is refused and changes nothing.
pub fn initialize_happens_once(h: &mut dyn Harness) {
    let mut store = h.connect();
    store.migrate_up().expect("migrate_up");
    assert_eq!(store.instance().expect("instance"), None);
    assert_eq!(store.keys().expect("keys"), Vec::new());
    let vkey = signer().verifier_key().to_string();
    store.initialize(INSTANCE, &vkey, NOW).expect("initialize");
    assert_eq!(
        store.instance().expect("instance").as_deref(),
        Some(INSTANCE)
    );
    let keys = store.keys().expect("keys");
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(
        (keys[0].vkey.as_str(), keys[0].created_at.as_str()),
        (vkey.as_str(), NOW)
    );

    let other = signer_from(1).verifier_key().to_string();
    let again = store.initialize("other.test", &other, NOW);
    assert!(
        matches!(again, Err(StoreError::AlreadyInitialized { .. })),
        "second initialize: {again:?}"
    );
    let mut second = h.connect();
    for s in [&mut store, &mut second] {
        assert_eq!(s.instance().expect("instance").as_deref(), Some(INSTANCE));
        assert_eq!(s.keys().expect("keys"), keys);
    }
    let again = second.initialize(INSTANCE, &vkey, NOW);
    assert!(
        matches!(again, Err(StoreError::AlreadyInitialized { .. })),
        "initialize on another connection: {again:?}"
    );
}

/// Keys come back oldest first, as stored, with increasing ids.
pub fn keys_are_listed_oldest_first(h: &mut dyn Harness) {
    let mut store = ready(h);
    let first = store.keys().expect("keys");
    let mut want = first.clone();
    for (seed, at) in [
        (2u8, "2025-02-01T00:00:00.000000Z"),
        (3, "2024-01-01T00:00:00.000000Z"),
        (4, "2026-01-01T00:00:00.000000Z"),
    ] {
        let vkey = signer_from(seed).verifier_key().to_string();
        let added = store.add_key(&vkey, at).expect("add_key");
        assert_eq!(
            (added.vkey.as_str(), added.created_at.as_str()),
            (vkey.as_str(), at)
        );
        want.push(added);
    }
    let got = store.keys().expect("keys");
    assert_eq!(
        got, want,
        "keys in order of addition, as returned by add_key"
    );
    assert!(got.windows(2).all(|w| w[0].id < w[1].id), "{got:?}");
    assert_eq!(
        h.connect().keys().expect("keys on another connection"),
        want
    );
}

/// `create_log` is idempotent (the first creation wins), `find_log` finds
/// exactly the named log, and `logs` sorts by tenant then name as bytes.
pub fn logs_are_created_once_and_listed_in_byte_order(h: &mut dyn Harness) {
    let mut store = ready(h);
    assert_eq!(store.logs().expect("logs"), Vec::new());
    assert_eq!(store.find_log("acme", "audit").expect("find_log"), None);

    let audit = new_log(&mut *store, "acme", "audit");
    assert_eq!(
        (
            audit.tenant.as_str(),
            audit.name.as_str(),
            audit.created_at.as_str()
        ),
        ("acme", "audit", NOW)
    );
    assert_eq!(audit.origin, log_origin("acme", "audit"));
    let again = store
        .create_log(
            "acme",
            "audit",
            &audit.origin,
            "2030-01-01T00:00:00.000000Z",
        )
        .expect("create_log again");
    assert_eq!(
        again, audit,
        "a second create returns the first log unchanged"
    );
    assert_eq!(
        store.find_log("acme", "audit").expect("find_log"),
        Some(audit.clone())
    );
    assert_eq!(store.find_log("acme", "audi").expect("find_log"), None);
    assert_eq!(store.find_log("acm", "audit").expect("find_log"), None);
    assert_eq!(store.find_log("audit", "acme").expect("find_log"), None);

    // Byte order: '-' < '0' < '_' < 'a'. A collation that ignores
    // punctuation or sorts it elsewhere fails here.
    let mut made = vec![audit];
    for (tenant, name) in [
        ("b", "x"),
        ("a", "ab"),
        ("a", "a_b"),
        ("a", "a0"),
        ("a", "a-b"),
        ("a-z", "x"),
        ("a0", "x"),
    ] {
        made.push(new_log(&mut *store, tenant, name));
    }
    let paths: Vec<String> = store
        .logs()
        .expect("logs")
        .iter()
        .map(LogInfo::path)
        .collect();
    assert_eq!(
        paths,
        [
            "a/a-b",
            "a/a0",
            "a/a_b",
            "a/ab",
            "a-z/x",
            "a0/x",
            "acme/audit",
            "b/x"
        ]
    );
    let mut ids: Vec<LogId> = made.iter().map(|l| l.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), made.len(), "every log has its own id");
    let listed = h.connect().logs().expect("logs on another connection");
    for log in &made {
        assert!(listed.contains(log), "{log:?} missing from {listed:?}");
    }
}

/// Entries, tiles and a checkpoint written in one append are all visible
/// after commit, on this connection and on another.
pub fn committed_append_is_visible(h: &mut dyn Harness) {
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    let rows: Vec<Row> = (0..3)
        .map(|i| row(&log, i, Some(&format!("req-{i}"))))
        .collect();
    let data = tile_data(0, 0, 3, 0);
    let note = note_text(&log, 3);
    let mut txn = store.begin_append(log.id).expect("begin_append");
    assert_eq!(
        txn.head().expect("head"),
        Head {
            current_key: Some(signer().verifier_key().to_string()),
            ..Head::default()
        },
        "a new log's head"
    );
    txn.insert_entries(&new_entries(&rows))
        .expect("insert_entries");
    txn.put_tiles(&[NewTile {
        id: TileId::hashes(0, 0, 3),
        data: &data,
    }])
    .expect("put_tiles");
    assert_eq!(
        txn.read_tile(0, 0).expect("read_tile in the transaction"),
        Some((3, data.clone())),
        "a transaction reads its own tiles"
    );
    txn.insert_checkpoint(3, &root_for(3), &note)
        .expect("insert_checkpoint");
    txn.commit().expect("commit");

    let mut other = h.connect();
    for s in [&mut store, &mut other] {
        assert_eq!(
            entries(&mut **s, log.id, 0),
            rows.iter().map(stored).collect::<Vec<_>>()
        );
        assert_eq!(s.entry_count(log.id).expect("entry_count"), 3);
        let cps = checkpoints(&mut **s, log.id);
        assert_eq!(cps.len(), 1, "{cps:?}");
        assert_eq!(
            (cps[0].size, cps[0].root, cps[0].note.as_str()),
            (3, root_for(3), note.as_str())
        );
        assert_eq!(
            s.latest_checkpoint(log.id).expect("latest_checkpoint"),
            Some(cps[0].clone())
        );
        assert_eq!(
            s.read_tile(log.id, 0, 0).expect("read_tile"),
            Some((3, data.clone()))
        );
        assert_eq!(s.read_tile(log.id, 0, 1).expect("read_tile"), None);
        assert_eq!(s.read_tile(log.id, 1, 0).expect("read_tile"), None);
    }
}

/// An append dropped without commit leaves nothing, and nothing of it is
/// visible to another connection while it is open.
pub fn dropped_append_leaves_nothing(h: &mut dyn Harness) {
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    let first = vec![row(&log, 0, Some("kept"))];
    commit_rows(&mut *store, &log, &first, Some((0, 0, 1)), 1);
    let mut other = h.connect();
    let before = snapshot(&mut *other, log.id);

    let rows: Vec<Row> = (1..4)
        .map(|i| row(&log, i, Some(&format!("dropped-{i}"))))
        .collect();
    {
        let mut txn = store.begin_append(log.id).expect("begin_append");
        txn.insert_entries(&new_entries(&rows))
            .expect("insert_entries");
        let data = tile_data(0, 0, 4, 1);
        txn.put_tiles(&[NewTile {
            id: TileId::hashes(0, 0, 4),
            data: &data,
        }])
        .expect("put_tiles");
        txn.insert_checkpoint(4, &root_for(4), &note_text(&log, 4))
            .expect("insert_checkpoint");
        assert_eq!(
            snapshot(&mut *other, log.id),
            before,
            "an open append is invisible to other connections"
        );
        // Dropped here: rolled back.
    }
    assert_eq!(snapshot(&mut *store, log.id), before, "after the drop");
    assert_eq!(
        snapshot(&mut *other, log.id),
        before,
        "after the drop, elsewhere"
    );
    let mut txn = store.begin_append(log.id).expect("begin_append");
    assert_eq!(
        txn.lookup_request_ids(&["dropped-1"]).expect("lookup"),
        vec![None]
    );
    assert_eq!(txn.head().expect("head").size, 1);
    drop(txn);
    // The same rows go in cleanly: nothing of the dropped append remains
    // to conflict with them.
    commit_rows(&mut *store, &log, &rows, Some((0, 0, 4)), 4);
    assert_eq!(other.entry_count(log.id).expect("entry_count"), 4);
}

/// `head` is the latest checkpoint's size and root with the leaf hash and
/// envelope of the entry just before that size, read in the append's own
/// transaction.
pub fn head_is_the_last_commit(h: &mut dyn Harness) {
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    let rows: Vec<Row> = (0..5).map(|i| row(&log, i, None)).collect();
    commit_rows(&mut *store, &log, &rows[..2], None, 2);
    commit_rows(&mut *store, &log, &rows[2..], None, 5);
    let want = Head {
        size: 5,
        root: Some(root_for(5)),
        last_leaf: Some(rows[4].leaf),
        last_envelope: Some(rows[4].envelope.clone()),
        note: Some(note_text(&log, 5)),
        rows_past_head: false,
        current_key: Some(signer().verifier_key().to_string()),
    };
    let mut other = h.connect();
    for s in [&mut store, &mut other] {
        let mut txn = s.begin_append(log.id).expect("begin_append");
        assert_eq!(txn.head().expect("head"), want);
    }
    // A checkpoint whose last entry is absent: the head says so rather
    // than inventing it.
    let mut txn = store.begin_append(log.id).expect("begin_append");
    txn.insert_checkpoint(9, &root_for(9), &note_text(&log, 9))
        .expect("insert_checkpoint");
    txn.commit().expect("commit");
    let mut txn = store.begin_append(log.id).expect("begin_append");
    assert_eq!(
        txn.head().expect("head"),
        Head {
            size: 9,
            root: Some(root_for(9)),
            last_leaf: None,
            last_envelope: None,
            note: Some(note_text(&log, 9)),
            rows_past_head: false,
            current_key: Some(signer().verifier_key().to_string()),
        }
    );
    drop(txn);
    // Rows no checkpoint covers are flagged.
    let mut txn = store.begin_append(log.id).expect("begin_append");
    txn.insert_checkpoint(3, &root_for(3), &note_text(&log, 3))
        .expect("insert_checkpoint");
    txn.commit().expect("commit");
    let mut txn = store.begin_append(log.id).expect("begin_append");
    let head = txn.head().expect("head");
    drop(txn);
    assert_eq!(head.size, 3);
    assert!(head.rows_past_head, "entries 3 and 4 lie past the head");
}

/// `lookup_request_ids` answers in input order, `None` for unknown ids;
/// a request id is unique within a log and free in every other.
pub fn request_ids_are_found_and_unique_per_log(h: &mut dyn Harness) {
    let mut store = ready(h);
    let a = new_log(&mut *store, "acme", "audit");
    let b = new_log(&mut *store, "acme", "other");
    let rows = vec![
        row(&a, 0, Some("req-0")),
        row(&a, 1, Some("req-1")),
        row(&a, 2, None),
    ];
    commit_rows(&mut *store, &a, &rows, None, 3);

    let mut txn = store.begin_append(a.id).expect("begin_append");
    let found = txn
        .lookup_request_ids(&["req-1", "nope", "req-0", "REQ-0", "req-1"])
        .expect("lookup_request_ids");
    let existing = |r: &Row| Existing {
        index: r.index,
        leaf_hash: r.leaf,
        envelope: r.envelope.clone(),
    };
    assert_eq!(
        found,
        vec![
            Some(existing(&rows[1])),
            None,
            Some(existing(&rows[0])),
            None,
            Some(existing(&rows[1])),
        ]
    );
    assert_eq!(
        txn.lookup_request_ids(&[]).expect("empty lookup"),
        Vec::new()
    );
    let dup = txn.insert_entries(&new_entries(&[row(&a, 3, Some("req-0"))]));
    assert!(
        dup.is_err(),
        "a request id stored twice in one log: {dup:?}"
    );
    drop(txn);
    assert_eq!(store.entry_count(a.id).expect("entry_count"), 3);

    // The same id in one batch twice is refused too.
    let mut txn = store.begin_append(a.id).expect("begin_append");
    let dup = txn.insert_entries(&new_entries(&[
        row(&a, 3, Some("twice")),
        row(&a, 4, Some("twice")),
    ]));
    assert!(dup.is_err(), "a request id twice in one insert: {dup:?}");
    drop(txn);
    assert_eq!(store.entry_count(a.id).expect("entry_count"), 3);

    // Another log: the ids are its own.
    let mut txn = store.begin_append(b.id).expect("begin_append");
    assert_eq!(
        txn.lookup_request_ids(&["req-0"]).expect("lookup"),
        vec![None]
    );
    drop(txn);
    let b_rows = vec![row(&b, 0, Some("req-0"))];
    commit_rows(&mut *store, &b, &b_rows, None, 1);
    let mut txn = store.begin_append(b.id).expect("begin_append");
    assert_eq!(
        txn.lookup_request_ids(&["req-0", "req-1"]).expect("lookup"),
        vec![Some(existing(&b_rows[0])), None]
    );
    drop(txn);
    let mut txn = store.begin_append(a.id).expect("begin_append");
    assert_eq!(
        txn.lookup_request_ids(&["req-0"]).expect("lookup"),
        vec![Some(existing(&rows[0]))]
    );
}

/// An index is stored once per log: inserting it again is refused, and
/// the refused append leaves the first row as it was.
pub fn duplicate_index_is_refused(h: &mut dyn Harness) {
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    let rows: Vec<Row> = (0..2).map(|i| row(&log, i, None)).collect();
    commit_rows(&mut *store, &log, &rows, None, 2);
    let before = snapshot(&mut *store, log.id);
    let mut forged = row(&log, 1, Some("new-id"));
    forged.envelope = b"forged".to_vec();
    forged.leaf = leaf_hash(&forged.envelope);
    let mut txn = store.begin_append(log.id).expect("begin_append");
    let dup = txn.insert_entries(&new_entries(&[forged]));
    assert!(dup.is_err(), "index 1 stored twice: {dup:?}");
    drop(txn);
    assert_eq!(snapshot(&mut *store, log.id), before);
}

/// A tile is replaced by a wider version of itself and never by a
/// narrower one; tiles of other positions, levels and logs are apart.
pub fn tiles_widen_and_never_narrow(h: &mut dyn Harness) {
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    let other = new_log(&mut *store, "acme", "other");
    let put = |store: &mut dyn Store, tiles: &[(u8, u64, u16, u8)]| {
        let data: Vec<Vec<u8>> = tiles
            .iter()
            .map(|&(l, i, w, seed)| tile_data(l, i, w, seed))
            .collect();
        let new: Vec<NewTile<'_>> = tiles
            .iter()
            .zip(&data)
            .map(|(&(l, i, w, _), d)| NewTile {
                id: TileId::hashes(l, i, w),
                data: d,
            })
            .collect();
        let mut txn = store.begin_append(log.id).expect("begin_append");
        txn.put_tiles(&new).expect("put_tiles");
        txn.commit().expect("commit");
    };
    let read =
        |store: &mut dyn Store, l: u8, i: u64| store.read_tile(log.id, l, i).expect("read_tile");

    put(&mut *store, &[(0, 0, 5, 0), (1, 0, 1, 0), (0, 7, 2, 0)]);
    assert_eq!(read(&mut *store, 0, 0), Some((5, tile_data(0, 0, 5, 0))));
    assert_eq!(read(&mut *store, 1, 0), Some((1, tile_data(1, 0, 1, 0))));
    assert_eq!(read(&mut *store, 0, 7), Some((2, tile_data(0, 7, 2, 0))));
    assert_eq!(read(&mut *store, 0, 1), None);
    assert_eq!(read(&mut *store, 2, 0), None);

    // Narrower: ignored.
    put(&mut *store, &[(0, 0, 3, 1), (0, 7, 1, 1)]);
    assert_eq!(read(&mut *store, 0, 0), Some((5, tile_data(0, 0, 5, 0))));
    assert_eq!(read(&mut *store, 0, 7), Some((2, tile_data(0, 7, 2, 0))));

    // Wider: replaces, up to a full tile; then nothing narrows it.
    put(&mut *store, &[(0, 0, 9, 2)]);
    assert_eq!(read(&mut *store, 0, 0), Some((9, tile_data(0, 0, 9, 2))));
    put(&mut *store, &[(0, 0, 256, 3), (1, 0, 2, 3)]);
    assert_eq!(
        read(&mut *store, 0, 0),
        Some((256, tile_data(0, 0, 256, 3)))
    );
    assert_eq!(read(&mut *store, 1, 0), Some((2, tile_data(1, 0, 2, 3))));
    put(&mut *store, &[(0, 0, 255, 4)]);
    assert_eq!(
        read(&mut *store, 0, 0),
        Some((256, tile_data(0, 0, 256, 3)))
    );

    // Wide then narrow within one call ends wide.
    put(&mut *store, &[(0, 1, 4, 5), (0, 1, 2, 6)]);
    assert_eq!(read(&mut *store, 0, 1), Some((4, tile_data(0, 1, 4, 5))));

    assert_eq!(
        h.connect()
            .read_tile(log.id, 0, 0)
            .expect("read_tile on another connection"),
        Some((256, tile_data(0, 0, 256, 3)))
    );
    for (l, i) in [(0, 0), (1, 0), (0, 1), (0, 7)] {
        assert_eq!(
            store.read_tile(other.id, l, i).expect("read_tile"),
            None,
            "{l}/{i}"
        );
    }
}

/// `scan_entries` visits rows in index order whatever the insert order,
/// from the index asked, stops when told, and passes the closure's error
/// through.
pub fn scan_entries_in_order_from_and_stop(h: &mut dyn Harness) {
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    let rows: Vec<Row> = (0..12).map(|i| row(&log, i, None)).collect();
    let shuffled: Vec<Row> = [5usize, 0, 3, 1, 4, 2]
        .iter()
        .map(|&i| rows[i].clone())
        .collect();
    commit_rows(&mut *store, &log, &shuffled, None, 6);
    let rest: Vec<Row> = rows[6..].iter().rev().cloned().collect();
    commit_rows(&mut *store, &log, &rest, None, 12);

    let all: Vec<StoredEntry> = rows.iter().map(stored).collect();
    assert_eq!(entries(&mut *store, log.id, 0), all);
    assert_eq!(entries(&mut *store, log.id, 7), all[7..].to_vec());
    assert_eq!(entries(&mut *store, log.id, 11), all[11..].to_vec());
    assert_eq!(entries(&mut *store, log.id, 12), Vec::new());
    assert_eq!(entries(&mut *store, log.id, 1 << 53), Vec::new());

    let mut seen = Vec::new();
    store
        .scan_entries(log.id, 2, &mut |e| {
            seen.push(e.index);
            Ok(seen.len() < 3)
        })
        .expect("scan_entries");
    assert_eq!(seen, [2, 3, 4], "the scan stops at the first false");

    let mut calls = 0;
    let err = store.scan_entries(log.id, 0, &mut |_| {
        calls += 1;
        Err(StoreError::Corrupt("stop here".into()))
    });
    assert!(
        matches!(&err, Err(StoreError::Corrupt(m)) if m == "stop here"),
        "the closure's error is returned: {err:?}"
    );
    assert_eq!(calls, 1);
    // The connection is still usable after an aborted scan.
    assert_eq!(store.entry_count(log.id).expect("entry_count"), 12);
    assert_eq!(entries(&mut *store, log.id, 10), all[10..].to_vec());
}

/// Checkpoints come back in the order stored, not sorted by size, and the
/// latest is the last stored.
pub fn checkpoints_in_stored_order(h: &mut dyn Harness) {
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    assert_eq!(checkpoints(&mut *store, log.id), Vec::new());
    assert_eq!(store.latest_checkpoint(log.id).expect("latest"), None);
    let mut txn = store.begin_append(log.id).expect("begin_append");
    for size in [2u64, 5, 3] {
        txn.insert_checkpoint(size, &root_for(size), &note_text(&log, size))
            .expect("insert_checkpoint");
    }
    txn.commit().expect("commit");
    let mut txn = store.begin_append(log.id).expect("begin_append");
    txn.insert_checkpoint(4, &root_for(4), &note_text(&log, 4))
        .expect("insert_checkpoint");
    txn.commit().expect("commit");

    let mut other = h.connect();
    for s in [&mut store, &mut other] {
        let cps = checkpoints(&mut **s, log.id);
        assert_eq!(sizes(&cps), [2, 5, 3, 4]);
        for c in &cps {
            assert_eq!(
                (c.root, c.note.as_str()),
                (root_for(c.size), note_text(&log, c.size).as_str())
            );
        }
        assert!(cps.windows(2).all(|w| w[0].seq < w[1].seq), "{cps:?}");
        assert_eq!(
            s.latest_checkpoint(log.id).expect("latest"),
            cps.last().cloned()
        );
        // Pages after a seq give the same checkpoints, in the same order,
        // and only this log's.
        let mut paged = Vec::new();
        let mut after = i64::MIN;
        loop {
            let page = s.checkpoints_after(log.id, after, 3).expect("page");
            assert!(page.len() <= 3, "{page:?}");
            let Some(last) = page.last() else { break };
            after = last.seq;
            paged.extend(page);
        }
        assert_eq!(paged, cps);
        assert_eq!(
            s.checkpoints_after(log.id, cps[1].seq, 100).expect("page"),
            cps[2..].to_vec()
        );
        assert_eq!(
            s.checkpoints_after(log.id + 1, i64::MIN, 100)
                .expect("other log"),
            Vec::new()
        );
    }
}

/// Entries, checkpoints and keys refuse `UPDATE` and `DELETE` from plain
/// SQL with [`StoreError::AppendOnly`], and keep their data.
pub fn append_only_tables_refuse_update_and_delete(h: &mut dyn Harness) {
    let mut store = ready(h);
    store
        .add_key(&signer_from(9).verifier_key().to_string(), NOW)
        .expect("add_key");
    let log = new_log(&mut *store, "acme", "audit");
    let rows: Vec<Row> = (0..3)
        .map(|i| row(&log, i, Some(&format!("req-{i}"))))
        .collect();
    commit_rows(&mut *store, &log, &rows, Some((0, 0, 3)), 3);
    let before = snapshot(&mut *store, log.id);
    drop(store);

    let position = h.position_column();
    let move_entries = format!("UPDATE entries SET {position} = {position} + 100");
    for sql in [
        "UPDATE entries SET body = NULL",
        "UPDATE entries SET salt = NULL, body = NULL WHERE idx = 1",
        "UPDATE entries SET request_id = 'changed' WHERE idx = 0",
        &move_entries,
        "DELETE FROM entries",
        "DELETE FROM entries WHERE idx = 2",
        "UPDATE checkpoints SET note = 'forged'",
        "UPDATE checkpoints SET size = 1",
        "DELETE FROM checkpoints",
        "UPDATE keys SET vkey = 'forged'",
        "DELETE FROM keys",
        "DELETE FROM keys WHERE id = (SELECT max(id) FROM keys)",
    ] {
        let got = h.raw_sql(sql);
        assert!(
            matches!(got, Err(StoreError::AppendOnly(_))),
            "{sql}: {got:?}"
        );
    }
    let mut store = h.connect();
    assert_eq!(
        snapshot(&mut *store, log.id),
        before,
        "the data is unchanged"
    );
    // The harness reaches this very database: tiles are derived data,
    // not append-only, so deleting them works and shows.
    h.raw_sql("DELETE FROM tiles WHERE level = 0")
        .expect("tiles are not append-only");
    assert_eq!(store.read_tile(log.id, 0, 0).expect("read_tile"), None);
}

/// Two logs in one database never see each other's entries, tiles,
/// checkpoints, heads or request ids.
pub fn logs_are_isolated(h: &mut dyn Harness) {
    let mut store = ready(h);
    let a = new_log(&mut *store, "acme", "audit");
    let b = new_log(&mut *store, "acme", "billing");
    let c = new_log(&mut *store, "umbrella", "audit");
    let a_rows: Vec<Row> = (0..3).map(|i| row(&a, i, Some(&format!("r{i}")))).collect();
    let b_rows: Vec<Row> = (0..2).map(|i| row(&b, i, Some(&format!("r{i}")))).collect();
    commit_rows(&mut *store, &a, &a_rows, Some((0, 0, 3)), 3);
    commit_rows(&mut *store, &b, &b_rows, Some((0, 0, 2)), 2);

    assert_eq!(
        entries(&mut *store, a.id, 0),
        a_rows.iter().map(stored).collect::<Vec<_>>()
    );
    assert_eq!(
        entries(&mut *store, b.id, 0),
        b_rows.iter().map(stored).collect::<Vec<_>>()
    );
    assert_eq!(entries(&mut *store, c.id, 0), Vec::new());
    assert_eq!(store.entry_count(a.id).expect("count"), 3);
    assert_eq!(store.entry_count(b.id).expect("count"), 2);
    assert_eq!(store.entry_count(c.id).expect("count"), 0);
    assert_eq!(sizes(&checkpoints(&mut *store, a.id)), [3]);
    assert_eq!(sizes(&checkpoints(&mut *store, b.id)), [2]);
    assert_eq!(checkpoints(&mut *store, c.id), Vec::new());
    assert_eq!(store.latest_checkpoint(c.id).expect("latest"), None);
    assert_eq!(
        store.read_tile(a.id, 0, 0).expect("tile").map(|t| t.0),
        Some(3)
    );
    assert_eq!(
        store.read_tile(b.id, 0, 0).expect("tile").map(|t| t.0),
        Some(2)
    );
    assert_eq!(store.read_tile(c.id, 0, 0).expect("tile"), None);

    for (log, rows) in [(&a, &a_rows), (&b, &b_rows)] {
        let mut txn = store.begin_append(log.id).expect("begin_append");
        let head = txn.head().expect("head");
        let last = rows.last().expect("rows");
        assert_eq!(head.size, last.index + 1);
        assert_eq!(head.last_leaf, Some(last.leaf));
        let found = txn.lookup_request_ids(&["r0", "r2"]).expect("lookup");
        assert_eq!(found[0].as_ref().map(|e| e.leaf_hash), Some(rows[0].leaf));
        assert_eq!(
            found[1].as_ref().map(|e| e.leaf_hash),
            rows.get(2).map(|r| r.leaf)
        );
    }
    let mut txn = store.begin_append(c.id).expect("begin_append");
    assert_eq!(
        txn.head().expect("head"),
        Head {
            current_key: Some(signer().verifier_key().to_string()),
            ..Head::default()
        }
    );
    assert_eq!(txn.read_tile(0, 0).expect("tile"), None);
    drop(txn);

    // The same through the sequencer: interleaved batches, each log valid.
    let mut seq = Sequencer::new(signer());
    let x = new_log(&mut *store, "tenant-x", "log");
    let y = new_log(&mut *store, "tenant-y", "log");
    for round in 0..3 {
        append_ok(
            &mut seq,
            &mut *store,
            &x,
            &drafts(&format!("x{round}"), 100),
        );
        append_ok(&mut seq, &mut *store, &y, &drafts(&format!("y{round}"), 7));
    }
    check_log(&mut *store, &x, 300);
    check_log(&mut *store, &y, 21);
}

/// `begin_append` takes the log's write lock before the head is read: a
/// second connection's append waits for the first to commit and then sees
/// its head.
pub fn appends_to_one_log_are_serialised(h: &mut dyn Harness) {
    let mut first = ready(h);
    let log = new_log(&mut *first, "acme", "audit");
    let mut second = h.connect();
    let rows: Vec<Row> = (0..3).map(|i| row(&log, i, None)).collect();
    let mut txn = first.begin_append(log.id).expect("begin_append");
    assert_eq!(txn.head().expect("head").size, 0);
    txn.insert_entries(&new_entries(&rows))
        .expect("insert_entries");
    txn.insert_checkpoint(3, &root_for(3), &note_text(&log, 3))
        .expect("insert_checkpoint");
    let seen = std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let mut txn = second.begin_append(log.id).expect("begin_append (waiting)");
            let head = txn.head().expect("head");
            let next = row(&log, head.size, None);
            txn.insert_entries(&new_entries(std::slice::from_ref(&next)))
                .expect("insert_entries after the first commit");
            txn.insert_checkpoint(
                head.size + 1,
                &root_for(head.size + 1),
                &note_text(&log, head.size + 1),
            )
            .expect("insert_checkpoint");
            txn.commit().expect("commit");
            head.size
        });
        // Give the waiter time to queue on the lock. Not needed for the
        // assertion to hold when the backend is right; it only makes a
        // wrong one likelier to show.
        std::thread::sleep(std::time::Duration::from_millis(100));
        txn.commit().expect("first commit");
        waiter.join().expect("the waiting appender")
    });
    assert_eq!(
        seen, 3,
        "the second append read the head after the first commit"
    );
    assert_eq!(first.entry_count(log.id).expect("count"), 4);
    assert_eq!(sizes(&checkpoints(&mut *first, log.id)), [3, 4]);
}

// ---------------------------------------------------------------------------
// Tenant and API key cases.

/// Times for the tenant and key cases, in increasing order.
const T1: &str = "2025-03-01T00:00:00.000001Z";
const T2: &str = "2025-03-02T00:00:00.000002Z";
const T3: &str = "2025-03-03T00:00:00.000003Z";

fn tenant_info(name: &str, status: TenantStatus, created: &str, updated: &str) -> TenantInfo {
    TenantInfo {
        name: name.to_owned(),
        status,
        created_at: created.to_owned(),
        updated_at: updated.to_owned(),
    }
}

fn new_tenant(store: &mut dyn Store, name: &str) -> TenantInfo {
    store.create_tenant(name, NOW).expect("create_tenant")
}

fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Inserts a key whose hash is `[seed; 32]`.
fn new_key(
    store: &mut dyn Store,
    id: &str,
    tenant: &str,
    scope_list: &[&str],
    seed: u8,
    now: &str,
) -> ApiKeyRecord {
    let scope_list = scopes(scope_list);
    store
        .insert_api_key(&NewApiKey {
            id,
            tenant,
            scopes: &scope_list,
            key_hash: &[seed; 32],
            now,
        })
        .expect("insert_api_key")
}

/// `create_tenant` makes an active tenant once (a second create is
/// `TenantExists` and changes nothing), `tenants` sorts names as bytes,
/// and `set_tenant_status` round-trips, idempotently: repeating a status
/// keeps the time it was set.
pub fn tenants_are_created_listed_and_suspended(h: &mut dyn Harness) {
    let mut store = ready(h);
    assert_eq!(store.tenants().expect("tenants"), Vec::new());
    assert_eq!(store.find_tenant("acme").expect("find_tenant"), None);

    let acme = new_tenant(&mut *store, "acme");
    assert_eq!(acme, tenant_info("acme", TenantStatus::Active, NOW, NOW));
    let again = store.create_tenant("acme", T1);
    assert!(
        matches!(&again, Err(StoreError::TenantExists(n)) if n == "acme"),
        "second create: {again:?}"
    );
    assert_eq!(again.map_err(|e| e.code()).err(), Some("tenant.exists"));
    assert_eq!(
        store.find_tenant("acme").expect("find_tenant"),
        Some(acme.clone())
    );
    assert_eq!(store.find_tenant("acm").expect("find_tenant"), None);

    // Byte order: '-' < '0' < '_' < 'a'.
    for name in ["b", "a_b", "a0", "a-b", "ab", "a"] {
        new_tenant(&mut *store, name);
    }
    let names = |s: &mut dyn Store| -> Vec<String> {
        s.tenants()
            .expect("tenants")
            .into_iter()
            .map(|t| t.name)
            .collect()
    };
    assert_eq!(
        names(&mut *store),
        ["a", "a-b", "a0", "a_b", "ab", "acme", "b"]
    );

    let suspended = store
        .set_tenant_status("acme", TenantStatus::Suspended, T1)
        .expect("suspend");
    assert_eq!(
        suspended,
        tenant_info("acme", TenantStatus::Suspended, NOW, T1)
    );
    assert_eq!(
        store
            .set_tenant_status("acme", TenantStatus::Suspended, T2)
            .expect("suspend again"),
        suspended,
        "a repeated status changes nothing"
    );
    let mut other = h.connect();
    assert_eq!(
        other.find_tenant("acme").expect("find_tenant elsewhere"),
        Some(suspended)
    );
    let resumed = other
        .set_tenant_status("acme", TenantStatus::Active, T3)
        .expect("resume");
    assert_eq!(resumed, tenant_info("acme", TenantStatus::Active, NOW, T3));
    assert_eq!(
        store.find_tenant("acme").expect("find_tenant"),
        Some(resumed)
    );

    let missing = store.set_tenant_status("nope", TenantStatus::Suspended, T1);
    assert!(
        matches!(&missing, Err(StoreError::TenantNotFound(n)) if n == "nope"),
        "{missing:?}"
    );
    assert_eq!(
        missing.map_err(|e| e.code()).err(),
        Some("tenant.not_found")
    );
    assert_eq!(store.find_tenant("nope").expect("find_tenant"), None);
    assert_eq!(names(&mut *other), names(&mut *store));
}

/// Tenant names follow the rule of a log path's tenant part; a name
/// starting with `_` is the system's. Nothing is stored for a refused name.
pub fn tenant_names_are_checked(h: &mut dyn Harness) {
    let mut store = ready(h);
    let longest = "x".repeat(63);
    for good in ["0", "a", "a-", "a_", "9to5", longest.as_str()] {
        assert_eq!(new_tenant(&mut *store, good).name, good);
    }
    let too_long = "x".repeat(64);
    for bad in [
        "",
        "Acme",
        "-acme",
        "acme corp",
        "acme/audit",
        "acme.example",
        "é",
        "acme\n",
        too_long.as_str(),
    ] {
        let got = store.create_tenant(bad, NOW);
        assert!(
            matches!(got, Err(StoreError::BadTenantName { .. })),
            "{bad:?}: {got:?}"
        );
        assert_eq!(got.map_err(|e| e.code()).err(), Some("tenant.bad_name"));
    }
    for reserved in ["_", "_systems", "_Bad Name"] {
        let got = store.create_tenant(reserved, NOW);
        assert!(
            matches!(got, Err(StoreError::TenantReserved { .. })),
            "{reserved:?}: {got:?}"
        );
        assert_eq!(got.map_err(|e| e.code()).err(), Some("tenant.reserved"));
    }
    // The system tenant itself is the one reserved name the store takes:
    // the server creates it. Users are refused it by the CLI and the API.
    store.create_tenant("_system", NOW).expect("system tenant");
    let listed: Vec<String> = store
        .tenants()
        .expect("tenants")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(
        listed,
        ["0", "9to5", "_system", "a", "a-", "a_", longest.as_str()]
    );
}

/// An API key is stored for an existing tenant (suspended or not) and
/// found by id together with its tenant's current status; keys are listed
/// in the order issued; revoking is idempotent and keeps the first time.
pub fn api_keys_are_issued_found_listed_and_revoked(h: &mut dyn Harness) {
    let mut store = ready(h);
    new_tenant(&mut *store, "acme");
    new_tenant(&mut *store, "umbrella");
    assert_eq!(store.api_keys().expect("api_keys"), Vec::new());
    assert_eq!(store.find_api_key("k1").expect("find_api_key"), None);

    let k1 = new_key(&mut *store, "k1", "acme", &["append", "read"], 1, T2);
    assert_eq!(
        k1,
        ApiKeyRecord {
            id: "k1".to_owned(),
            tenant: "acme".to_owned(),
            scopes: scopes(&["append", "read"]),
            key_hash: [1; 32],
            created_at: T2.to_owned(),
            revoked_at: None,
        }
    );
    // Issued later with an earlier time, and with an id that sorts first:
    // the list is in the order of issue all the same.
    let k2 = new_key(&mut *store, "k2", "umbrella", &["admin"], 2, T1);
    let k0 = new_key(&mut *store, "k0", "acme", &["verify"], 3, T2);

    let missing = store.insert_api_key(&NewApiKey {
        id: "k9",
        tenant: "nope",
        scopes: &scopes(&["read"]),
        key_hash: &[9; 32],
        now: T1,
    });
    assert!(
        matches!(&missing, Err(StoreError::TenantNotFound(n)) if n == "nope"),
        "{missing:?}"
    );
    let taken = store.insert_api_key(&NewApiKey {
        id: "k1",
        tenant: "umbrella",
        scopes: &scopes(&["admin"]),
        key_hash: &[9; 32],
        now: T3,
    });
    assert!(
        matches!(&taken, Err(StoreError::ApiKeyExists(n)) if n == "k1"),
        "{taken:?}"
    );
    assert_eq!(taken.map_err(|e| e.code()).err(), Some("api_key.exists"));
    assert_eq!(
        store.api_keys().expect("api_keys"),
        [k1.clone(), k2.clone(), k0.clone()]
    );

    let found = |s: &mut dyn Store, id: &str| s.find_api_key(id).expect("find_api_key");
    assert_eq!(
        found(&mut *store, "k1"),
        Some((k1.clone(), TenantStatus::Active))
    );
    assert_eq!(found(&mut *store, "k"), None);
    assert_eq!(found(&mut *store, "K1"), None);

    // The tenant's status comes with the key, as it is now.
    store
        .set_tenant_status("acme", TenantStatus::Suspended, T3)
        .expect("suspend");
    assert_eq!(
        found(&mut *store, "k1"),
        Some((k1.clone(), TenantStatus::Suspended))
    );
    assert_eq!(
        found(&mut *store, "k2"),
        Some((k2.clone(), TenantStatus::Active))
    );
    // A suspended tenant may still be given keys.
    let k3 = new_key(&mut *store, "k3", "acme", &["read"], 4, T3);
    assert_eq!(
        found(&mut *store, "k3"),
        Some((k3.clone(), TenantStatus::Suspended))
    );
    store
        .set_tenant_status("acme", TenantStatus::Active, T3)
        .expect("resume");
    assert_eq!(
        found(&mut *store, "k1"),
        Some((k1.clone(), TenantStatus::Active))
    );

    let revoked = store.revoke_api_key("k1", T2).expect("revoke");
    let want = ApiKeyRecord {
        revoked_at: Some(T2.to_owned()),
        ..k1
    };
    assert_eq!(revoked, want);
    assert_eq!(
        store.revoke_api_key("k1", T3).expect("revoke again"),
        want,
        "revoking again keeps the first revocation"
    );
    assert_eq!(
        found(&mut *store, "k1"),
        Some((want.clone(), TenantStatus::Active))
    );
    let unknown = store.revoke_api_key("k7", T3);
    assert!(
        matches!(&unknown, Err(StoreError::ApiKeyNotFound(n)) if n == "k7"),
        "{unknown:?}"
    );
    assert_eq!(
        unknown.map_err(|e| e.code()).err(),
        Some("api_key.not_found")
    );
    assert_eq!(
        h.connect().api_keys().expect("api_keys elsewhere"),
        [want, k2, k0, k3]
    );
}

/// API keys refuse `DELETE` and every `UPDATE` but setting `revoked_at`
/// once, tenants refuse `DELETE` and renaming, from plain SQL, with
/// [`StoreError::AppendOnly`]; the data stays as it was.
pub fn api_keys_are_revoked_never_changed(h: &mut dyn Harness) {
    let mut store = ready(h);
    new_tenant(&mut *store, "acme");
    new_tenant(&mut *store, "umbrella");
    new_tenant(&mut *store, "spare");
    new_key(&mut *store, "k1", "acme", &["read"], 1, T1);
    new_key(&mut *store, "k2", "umbrella", &["append"], 2, T1);
    store.revoke_api_key("k2", T2).expect("revoke");
    let keys = store.api_keys().expect("api_keys");
    let tenants = store.tenants().expect("tenants");
    drop(store);

    for sql in [
        "DELETE FROM api_keys",
        "DELETE FROM api_keys WHERE id = 'k2'",
        "UPDATE api_keys SET key_hash = (SELECT key_hash FROM api_keys WHERE id = 'k2') WHERE id = 'k1'",
        "UPDATE api_keys SET tenant = 'umbrella' WHERE id = 'k1'",
        "UPDATE api_keys SET scopes = '[\"admin\"]' WHERE id = 'k1'",
        "UPDATE api_keys SET id = 'k9' WHERE id = 'k1'",
        "UPDATE api_keys SET created_at = 'later' WHERE id = 'k1'",
        "UPDATE api_keys SET revoked_at = NULL WHERE id = 'k2'",
        "UPDATE api_keys SET revoked_at = 'later' WHERE id = 'k2'",
        "UPDATE api_keys SET revoked_at = 'now', scopes = '[\"admin\"]' WHERE id = 'k1'",
        "UPDATE api_keys SET revoked_at = 'now', tenant = 'umbrella' WHERE id = 'k1'",
        "DELETE FROM tenants WHERE name = 'spare'",
        "UPDATE tenants SET name = 'other' WHERE name = 'spare'",
        "UPDATE tenants SET created_at = 'later' WHERE name = 'spare'",
    ] {
        let got = h.raw_sql(sql);
        assert!(
            matches!(got, Err(StoreError::AppendOnly(_))),
            "{sql}: {got:?}"
        );
    }
    let mut store = h.connect();
    assert_eq!(store.api_keys().expect("api_keys"), keys, "keys unchanged");
    assert_eq!(
        store.tenants().expect("tenants"),
        tenants,
        "tenants unchanged"
    );

    // What is allowed from SQL is exactly what the trait does.
    h.raw_sql("UPDATE api_keys SET revoked_at = 'now' WHERE id = 'k1'")
        .expect("revoking is allowed");
    h.raw_sql("UPDATE tenants SET status = 'suspended', updated_at = 'now' WHERE name = 'spare'")
        .expect("suspending is allowed");
    assert_eq!(
        store
            .find_api_key("k1")
            .expect("find_api_key")
            .map(|k| k.0.revoked_at),
        Some(Some("now".to_owned()))
    );
    assert_eq!(
        store
            .find_tenant("spare")
            .expect("find_tenant")
            .map(|t| t.status),
        Some(TenantStatus::Suspended)
    );
}

/// A revocation or a suspension committed on one connection is seen by
/// another's very next `find_api_key`, however often that connection
/// looked the key up before: the server holds one connection and relies
/// on it.
pub fn revocation_is_seen_at_once_by_another_connection(h: &mut dyn Harness) {
    let mut admin = ready(h);
    new_tenant(&mut *admin, "acme");
    let mut server = h.connect();
    assert_eq!(server.find_api_key("k1").expect("find_api_key"), None);
    let k1 = new_key(&mut *admin, "k1", "acme", &["append"], 1, T1);
    let status = |s: &mut dyn Store| {
        let (key, tenant) = s
            .find_api_key("k1")
            .expect("find_api_key")
            .expect("the key is there");
        (key.revoked_at, tenant)
    };
    for _ in 0..3 {
        assert_eq!(status(&mut *server), (None, TenantStatus::Active));
    }
    admin
        .set_tenant_status("acme", TenantStatus::Suspended, T2)
        .expect("suspend");
    assert_eq!(status(&mut *server), (None, TenantStatus::Suspended));
    admin
        .set_tenant_status("acme", TenantStatus::Active, T2)
        .expect("resume");
    assert_eq!(status(&mut *server), (None, TenantStatus::Active));
    admin.revoke_api_key(&k1.id, T3).expect("revoke");
    assert_eq!(
        status(&mut *server),
        (Some(T3.to_owned()), TenantStatus::Active)
    );
    // And the other way round, on a third connection.
    let mut third = h.connect();
    assert_eq!(
        status(&mut *third),
        (Some(T3.to_owned()), TenantStatus::Active)
    );
}

// ---------------------------------------------------------------------------
// Sequencer cases.

fn draft(json: &str) -> EntryDraft {
    parse_entry(json.as_bytes(), &Limits::default()).expect("test entry parses")
}

/// `n` entries with request ids `<prefix>-<i>`.
fn drafts(prefix: &str, n: usize) -> Vec<EntryDraft> {
    (0..n)
        .map(|i| {
            draft(&format!(
                r#"{{"kind":"conformance.test","request_id":"{prefix}-{i}","actor":"tester","data":{{"i":{i},"s":"é"}}}}"#
            ))
        })
        .collect()
}

fn append_ok(
    seq: &mut Sequencer,
    store: &mut dyn Store,
    log: &LogInfo,
    batch: &[EntryDraft],
) -> BatchOutcome {
    seq.append(store, log, batch)
        .unwrap_or_else(|e| panic!("append to {}: {e} ({})", log.path(), e.code()))
}

/// Verifies the log from its rows and signed checkpoints alone: valid, of
/// exactly `size` entries; a receipt for a spread of indices and a
/// consistency proof between every pair of checkpoints (a sample when there
/// are many), each checked by `evident-core`.
fn check_log(store: &mut dyn Store, log: &LogInfo, size: u64) {
    let keys = verifiers();
    let report =
        reader::verify_log(store, log, keys.clone(), &mut |_, _| {}).expect("verify_log runs");
    assert!(
        report.valid,
        "{} is invalid: {:?}",
        log.path(),
        report.violations
    );
    assert_eq!(
        (
            report.total_count,
            report.rows_checked,
            report.verified_count
        ),
        (size, size, size),
        "{}",
        log.path()
    );
    assert_eq!(report.checkpoints_verified, report.checkpoints_checked);
    assert_eq!(store.entry_count(log.id).expect("entry_count"), size);

    let mut signed: Vec<Checkpoint> = Vec::new();
    for c in checkpoints(store, log.id) {
        let (cp, _) = open_checkpoint(c.note.as_bytes(), &keys, Some(&log.origin))
            .expect("a stored checkpoint opens");
        assert_eq!(
            (c.size, c.root),
            (cp.size, cp.root),
            "stored columns match the note"
        );
        signed.push(cp);
    }
    let last = signed.last().expect("a non-empty log has a checkpoint");
    assert_eq!(last.size, size);

    let mut indices: Vec<u64> = vec![0, size / 2, size - 1];
    indices.extend([255, 256, 257, 511, 512].iter().filter(|&&i| i < size));
    for i in indices {
        let r = reader::receipt(store, log, i, true).expect("receipt");
        let v = r
            .verify(&keys)
            .unwrap_or_else(|e| panic!("receipt {i}: {e}"));
        assert!(v.body_verified, "receipt {i} carries its body");
        assert_eq!((r.index, v.checkpoint.size), (i, size));
    }

    let step = signed.len().div_ceil(8).max(1);
    let sample: Vec<&Checkpoint> = signed
        .iter()
        .step_by(step)
        .chain(std::iter::once(last))
        .collect();
    for (n, old) in sample.iter().enumerate() {
        for new in &sample[n..] {
            if old.size > new.size {
                continue;
            }
            let proof = reader::consistency(store, log, old.size, new.size)
                .unwrap_or_else(|e| panic!("consistency {}→{}: {e}", old.size, new.size));
            verify_consistency(old.size, new.size, &proof, &old.root, &new.root)
                .unwrap_or_else(|e| panic!("consistency {}→{}: {e}", old.size, new.size));
        }
    }
}

/// Batches of several sizes, across tile boundaries, verify; receipts and
/// consistency proofs from stored tiles verify with `evident-core`.
pub fn sequencer_batches_verify_with_receipts_and_proofs(h: &mut dyn Harness) {
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    let mut seq = Sequencer::new(signer());
    let mut size = 0u64;
    for (n, count) in [1usize, 2, 253, 1, 300, 200].into_iter().enumerate() {
        let out = append_ok(
            &mut seq,
            &mut *store,
            &log,
            &drafts(&format!("b{n}"), count),
        );
        let indices: Vec<u64> = out.entries.iter().map(|e| e.index).collect();
        assert_eq!(indices, (size..size + count as u64).collect::<Vec<_>>());
        assert!(out.entries.iter().all(|e| !e.duplicate));
        size += count as u64;
        assert_eq!(out.size, size);
        let note = out
            .checkpoint
            .expect("a batch that stores signs a checkpoint");
        assert_eq!(
            store
                .latest_checkpoint(log.id)
                .expect("latest")
                .map(|c| c.note),
            Some(note)
        );
        // Each leaf hash handed back is the stored one.
        let last = out.entries.last().expect("entries");
        let stored = reader::entry(&mut *store, &log, last.index)
            .expect("entry")
            .expect("the last entry is stored");
        assert_eq!(stored.leaf_hash, Some(last.leaf_hash));
    }
    check_log(&mut *store, &log, size);
    // A sequencer that starts cold (no cache) continues the same log.
    let mut cold = Sequencer::new(signer());
    append_ok(&mut cold, &mut *store, &log, &drafts("cold", 3));
    check_log(&mut *store, &log, size + 3);
}

/// A request id already in the log, or earlier in the same batch, is
/// answered with the original entry and stores nothing; a batch of only
/// duplicates writes no checkpoint.
pub fn sequencer_request_ids_are_idempotent(h: &mut dyn Harness) {
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    let mut seq = Sequencer::new(signer());
    let with_id = |id: &str| draft(&format!(r#"{{"kind":"t.e","request_id":"{id}"}}"#));

    let first = append_ok(
        &mut seq,
        &mut *store,
        &log,
        &[with_id("a"), with_id("b"), with_id("c")],
    );
    let original = |id: usize| Appended {
        duplicate: true,
        ..first.entries[id].clone()
    };

    let second = append_ok(
        &mut seq,
        &mut *store,
        &log,
        &[
            with_id("b"),
            with_id("d"),
            with_id("d"),
            draft(r#"{"kind":"t.e"}"#),
        ],
    );
    assert_eq!(
        second.entries[0],
        original(1),
        "b is answered with the original"
    );
    let d = &second.entries[1];
    assert_eq!((d.index, d.duplicate), (3, false));
    assert_eq!(
        second.entries[2],
        Appended {
            duplicate: true,
            ..d.clone()
        },
        "the second d in one batch is the first d"
    );
    assert_eq!(
        (second.entries[3].index, second.entries[3].duplicate),
        (4, false)
    );
    assert_eq!((second.size, second.appended()), (5, 2));
    assert!(second.checkpoint.is_some());
    assert_eq!(store.entry_count(log.id).expect("count"), 5);

    let before = snapshot(&mut *store, log.id);
    let third = append_ok(
        &mut seq,
        &mut *store,
        &log,
        &[with_id("a"), with_id("c"), with_id("d")],
    );
    assert_eq!(third.checkpoint, None, "nothing new, nothing signed");
    assert_eq!((third.size, third.appended()), (5, 0));
    assert_eq!(third.entries[0], original(0));
    assert_eq!(third.entries[1], original(2));
    assert_eq!(third.entries[2], second.entries[2]);
    assert_eq!(
        snapshot(&mut *store, log.id),
        before,
        "an all-duplicate batch stores nothing"
    );

    // A sequencer without a cache finds them in the database too.
    let mut cold = Sequencer::new(signer());
    let fourth = append_ok(&mut cold, &mut *store, &log, &[with_id("a"), with_id("e")]);
    assert_eq!(fourth.entries[0], original(0));
    assert_eq!((fourth.entries[1].index, fourth.size), (5, 6));
    check_log(&mut *store, &log, 6);
}

/// Batches large enough that a backend may check their ids only as it
/// stores them (SQLite writes a run of its request-id table, PostgreSQL
/// copies into its unique index) still answer a stored id with its
/// original, store the rest once, and leave a log that verifies.
pub fn sequencer_large_batches_find_stored_ids(h: &mut dyn Harness) {
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    let mut seq = Sequencer::new(signer());
    let n = 1_500;
    let first = append_ok(&mut seq, &mut *store, &log, &drafts("one", n));
    assert_eq!(first.appended(), n);

    // New ids but for one of the first batch's, in the middle.
    let mut batch = drafts("two", n);
    batch[700] = drafts("one", 3).remove(2);
    let second = append_ok(&mut seq, &mut *store, &log, &batch);
    assert_eq!(
        second.entries[700],
        Appended {
            duplicate: true,
            ..first.entries[2].clone()
        },
        "the stored id is answered with its original"
    );
    assert_eq!((second.appended(), second.size), (n - 1, 2 * n as u64 - 1));
    assert_eq!(second.entries[701].index, n as u64 + 700);

    // The same ids again, each now stored: nothing new, from a cold
    // sequencer too.
    let mut cold = Sequencer::new(signer());
    let third = append_ok(&mut cold, &mut *store, &log, &batch);
    assert_eq!((third.appended(), third.checkpoint), (0, None));
    assert_eq!(
        third.entries,
        second
            .entries
            .iter()
            .map(|e| Appended {
                duplicate: true,
                ..e.clone()
            })
            .collect::<Vec<_>>()
    );
    check_log(&mut *store, &log, 2 * n as u64 - 1);
}

/// Drafts salted before the sequencer ([`crate::sequencer::salt_drafts`],
/// as the server's request threads do) are stored with that salt and
/// their envelopes commit to that digest; drafts beside them without one
/// get the sequencer's own; the log verifies.
pub fn sequencer_keeps_salts_drawn_ahead(h: &mut dyn Harness) {
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    let mut seq = Sequencer::new(signer());
    let mut batch = drafts("s", 6);
    crate::sequencer::salt_drafts(&mut batch[..4]).expect("salts");
    let ahead: Vec<_> = batch.iter().map(|d| d.salted).collect();
    assert!(ahead[..4].iter().all(Option::is_some) && ahead[4..].iter().all(Option::is_none));
    assert_ne!(ahead[0], ahead[1], "each draft its own salt");
    append_ok(&mut seq, &mut *store, &log, &batch);

    let rows = entries(&mut *store, log.id, 0);
    assert_eq!(rows.len(), 6);
    for (row, (d, ahead)) in rows.iter().zip(batch.iter().zip(&ahead)) {
        let salt: [u8; SALT_SIZE] = row
            .salt
            .as_deref()
            .and_then(|s| s.try_into().ok())
            .expect("a stored salt");
        let view = EnvelopeView::parse(&row.envelope).expect("envelope");
        assert_eq!(view.body, body_digest(&salt, &d.body_bytes));
        match ahead {
            Some(a) => assert_eq!((salt, view.body), (a.salt, a.digest)),
            None => assert_ne!(salt, [0; SALT_SIZE]),
        }
    }
    check_log(&mut *store, &log, 6);
}

thread_local! {
    /// The test clock, per thread: cases run in parallel, each on its own
    /// thread.
    static CLOCK: Cell<i64> = const { Cell::new(0) };
}

fn test_clock() -> i64 {
    CLOCK.with(Cell::get)
}

/// `ts` never decreases: a clock behind the log's last `ts` is held at it
/// and reported, by a warm sequencer and by a cold one reading the last
/// `ts` from the database.
pub fn sequencer_time_never_goes_back(h: &mut dyn Harness) {
    const T0: i64 = 1_750_000_000_123_456;
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    let mut seq = Sequencer::new(signer()).with_clock(test_clock);
    let mut run = |seq: &mut Sequencer, at: i64, tag: &str| {
        CLOCK.with(|c| c.set(at));
        let out = append_ok(seq, &mut *store, &log, &drafts(tag, 2));
        let ts = out.entries[0].ts.clone();
        assert!(out.entries.iter().all(|e| e.ts == ts), "one ts per batch");
        (ts, out.clock_clamped)
    };
    assert_eq!(run(&mut seq, T0, "a"), (format_ts(T0), false));
    assert_eq!(run(&mut seq, T0 - 5_000_000, "b"), (format_ts(T0), true));
    assert_eq!(
        run(&mut seq, T0, "c"),
        (format_ts(T0), false),
        "equal is not behind"
    );
    assert_eq!(run(&mut seq, T0 + 1, "d"), (format_ts(T0 + 1), false));
    let mut cold = Sequencer::new(signer()).with_clock(test_clock);
    assert_eq!(
        run(&mut cold, T0 - 3_600_000_000, "e"),
        (format_ts(T0 + 1), true)
    );
    assert_eq!(run(&mut cold, T0 + 2, "f"), (format_ts(T0 + 2), false));
    check_log(&mut *store, &log, 12);
}

/// Where the injected failure strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Begin,
    Head,
    Lookup,
    InsertEntries,
    PutTiles,
    InsertCheckpoint,
    /// The commit fails and the transaction rolls back.
    Commit,
    /// The commit succeeds and its result is lost on the way back.
    AfterCommit,
}

fn injected(step: Step) -> StoreError {
    StoreError::Unavailable(format!("injected failure at {step:?}"))
}

/// A store that delegates to another and fails once at a chosen step.
struct Failing {
    inner: Box<dyn Store>,
    fail: Option<Step>,
}

struct FailingTxn<'a> {
    inner: Box<dyn AppendTxn + 'a>,
    fail: Option<Step>,
}

impl FailingTxn<'_> {
    fn check(&self, step: Step) -> Result<()> {
        if self.fail == Some(step) {
            return Err(injected(step));
        }
        Ok(())
    }
}

impl Store for Failing {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn migration_status(&mut self) -> Result<MigrationStatus> {
        self.inner.migration_status()
    }
    fn migrate_up(&mut self) -> Result<Vec<u32>> {
        self.inner.migrate_up()
    }
    fn instance(&mut self) -> Result<Option<String>> {
        self.inner.instance()
    }
    fn initialize(&mut self, instance: &str, vkey: &str, now: &str) -> Result<()> {
        self.inner.initialize(instance, vkey, now)
    }
    fn keys(&mut self) -> Result<Vec<KeyRecord>> {
        self.inner.keys()
    }
    fn add_key(&mut self, vkey: &str, now: &str) -> Result<KeyRecord> {
        self.inner.add_key(vkey, now)
    }
    fn rotate_key(&mut self, rotation: &KeyRotation<'_>) -> Result<KeyRecord> {
        self.inner.rotate_key(rotation)
    }
    fn redact_body(&mut self, log: LogId, index: u64, by: u64, now: &str) -> Result<()> {
        self.inner.redact_body(log, index, by, now)
    }
    fn repair_entries(&mut self, log: LogId, restores: &[Restore<'_>], now: &str) -> Result<()> {
        self.inner.repair_entries(log, restores, now)
    }
    fn logs(&mut self) -> Result<Vec<LogInfo>> {
        self.inner.logs()
    }
    fn find_log(&mut self, tenant: &str, name: &str) -> Result<Option<LogInfo>> {
        self.inner.find_log(tenant, name)
    }
    fn create_log(&mut self, tenant: &str, name: &str, origin: &str, now: &str) -> Result<LogInfo> {
        self.inner.create_log(tenant, name, origin, now)
    }
    fn checkpoints_after(
        &mut self,
        log: LogId,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<StoredCheckpoint>> {
        self.inner.checkpoints_after(log, after_seq, limit)
    }
    fn latest_checkpoint(&mut self, log: LogId) -> Result<Option<StoredCheckpoint>> {
        self.inner.latest_checkpoint(log)
    }
    fn entry_count(&mut self, log: LogId) -> Result<u64> {
        self.inner.entry_count(log)
    }
    fn scan_entries(
        &mut self,
        log: LogId,
        from: u64,
        f: &mut dyn FnMut(EntryRef<'_>) -> Result<bool>,
    ) -> Result<()> {
        self.inner.scan_entries(log, from, f)
    }
    fn begin_snapshot(&mut self) -> Result<()> {
        self.inner.begin_snapshot()
    }
    fn end_snapshot(&mut self) -> Result<()> {
        self.inner.end_snapshot()
    }
    fn renew_snapshot(&mut self, pause: std::time::Duration) -> Result<bool> {
        self.inner.renew_snapshot(pause)
    }
    fn read_tile(&mut self, log: LogId, level: u8, index: u64) -> Result<Option<(u16, Vec<u8>)>> {
        self.inner.read_tile(log, level, index)
    }
    fn begin_append(&mut self, log: LogId) -> Result<Box<dyn AppendTxn + '_>> {
        let fail = self.fail.take();
        if fail == Some(Step::Begin) {
            return Err(injected(Step::Begin));
        }
        let inner = self.inner.begin_append(log)?;
        Ok(Box::new(FailingTxn { inner, fail }))
    }
    fn create_tenant(&mut self, name: &str, now: &str) -> Result<TenantInfo> {
        self.inner.create_tenant(name, now)
    }
    fn tenants(&mut self) -> Result<Vec<TenantInfo>> {
        self.inner.tenants()
    }
    fn find_tenant(&mut self, name: &str) -> Result<Option<TenantInfo>> {
        self.inner.find_tenant(name)
    }
    fn set_tenant_status(
        &mut self,
        name: &str,
        status: TenantStatus,
        now: &str,
    ) -> Result<TenantInfo> {
        self.inner.set_tenant_status(name, status, now)
    }
    fn insert_api_key(&mut self, key: &NewApiKey<'_>) -> Result<ApiKeyRecord> {
        self.inner.insert_api_key(key)
    }
    fn api_keys(&mut self) -> Result<Vec<ApiKeyRecord>> {
        self.inner.api_keys()
    }
    fn find_api_key(&mut self, id: &str) -> Result<Option<(ApiKeyRecord, TenantStatus)>> {
        self.inner.find_api_key(id)
    }
    fn revoke_api_key(&mut self, id: &str, now: &str) -> Result<ApiKeyRecord> {
        self.inner.revoke_api_key(id, now)
    }
    fn writes_pause(&mut self) -> Result<Option<WritesPause>> {
        self.inner.writes_pause()
    }
    fn set_writes_pause(&mut self, pause: Option<&WritesPause>) -> Result<()> {
        self.inner.set_writes_pause(pause)
    }
}

impl AppendTxn for FailingTxn<'_> {
    fn head(&mut self) -> Result<Head> {
        self.check(Step::Head)?;
        self.inner.head()
    }
    fn lookup_request_ids(&mut self, ids: &[&str]) -> Result<Vec<Option<Existing>>> {
        self.check(Step::Lookup)?;
        self.inner.lookup_request_ids(ids)
    }
    fn read_tile(&mut self, level: u8, index: u64) -> Result<Option<(u16, Vec<u8>)>> {
        self.inner.read_tile(level, index)
    }
    fn insert_entries(&mut self, entries: &[NewEntry<'_>]) -> Result<()> {
        self.check(Step::InsertEntries)?;
        self.inner.insert_entries(entries)
    }
    fn put_tiles(&mut self, tiles: &[NewTile<'_>]) -> Result<()> {
        self.check(Step::PutTiles)?;
        self.inner.put_tiles(tiles)
    }
    fn insert_checkpoint(&mut self, size: u64, root: &Hash, note: &str) -> Result<()> {
        self.check(Step::InsertCheckpoint)?;
        self.inner.insert_checkpoint(size, root, note)
    }
    fn commit(self: Box<Self>) -> Result<()> {
        self.check(Step::Commit)?;
        let FailingTxn { inner, fail } = *self;
        inner.commit()?;
        if fail == Some(Step::AfterCommit) {
            return Err(injected(Step::AfterCommit));
        }
        Ok(())
    }
}

/// A batch that fails at any step of its transaction leaves nothing
/// visible (or, when only the commit's answer is lost, all of it); the
/// sequencer's cache never runs ahead of the database: retrying the batch
/// and appending the next one give a valid log of exactly the right size.
pub fn sequencer_failed_batch_leaves_nothing(h: &mut dyn Harness) {
    let mut store = Failing {
        inner: ready(h),
        fail: None,
    };
    for step in [
        Step::Begin,
        Step::Head,
        Step::Lookup,
        Step::InsertEntries,
        Step::PutTiles,
        Step::InsertCheckpoint,
        Step::Commit,
        Step::AfterCommit,
    ] {
        let name = format!("{step:?}").to_lowercase();
        let log = new_log(&mut store, "fail", &name);
        let mut seq = Sequencer::new(signer());
        // 200 + 100 crosses the first full tile, so the failed batch has
        // a full tile, a wider partial tile and a new level to write.
        append_ok(&mut seq, &mut store, &log, &drafts("one", 200));
        let before = snapshot(&mut store, log.id);

        store.fail = Some(step);
        let err = seq
            .append(&mut store, &log, &drafts("two", 100))
            .expect_err("the injected failure surfaces");
        assert!(
            matches!(&err, StoreError::Unavailable(m) if m.contains("injected")),
            "{step:?}: {err}"
        );
        let after = snapshot(&mut store, log.id);
        if step == Step::AfterCommit {
            assert_eq!(after.count, 300, "the commit went through");
        } else {
            assert_eq!(
                after, before,
                "{step:?}: nothing of the failed batch is visible"
            );
        }

        // Retrying the batch stores it exactly once; the next one follows.
        let retry = append_ok(&mut seq, &mut store, &log, &drafts("two", 100));
        let dup = step == Step::AfterCommit;
        assert!(retry.entries.iter().all(|e| e.duplicate == dup), "{step:?}");
        assert_eq!(retry.entries[0].index, 200, "{step:?}");
        let next = append_ok(&mut seq, &mut store, &log, &drafts("three", 70));
        assert_eq!((next.entries[0].index, next.size), (300, 370), "{step:?}");
        check_log(&mut store, &log, 370);
    }
}

/// An entry whose `parent` is not before its own index fails the whole
/// batch with `entry.bad_field` and stores nothing of it.
pub fn sequencer_refuses_a_parent_not_before_the_entry(h: &mut dyn Harness) {
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    let mut seq = Sequencer::new(signer());
    append_ok(&mut seq, &mut *store, &log, &drafts("a", 3));
    let before = snapshot(&mut *store, log.id);
    for bad in [
        vec![draft(r#"{"kind":"t.e","parent":3}"#)],
        vec![
            draft(r#"{"kind":"t.e","parent":0}"#),
            draft(r#"{"kind":"t.e","parent":4}"#),
        ],
        vec![draft(r#"{"kind":"t.e","parent":9007199254740992}"#)],
    ] {
        let err = seq
            .append(&mut *store, &log, &bad)
            .expect_err("a parent at or after the entry is refused");
        assert_eq!(err.code(), "entry.bad_field", "{err}");
        assert_eq!(snapshot(&mut *store, log.id), before, "nothing stored");
    }
    let ok = append_ok(
        &mut seq,
        &mut *store,
        &log,
        &[
            draft(r#"{"kind":"t.e","parent":2}"#),
            draft(r#"{"kind":"t.e","parent":3}"#),
        ],
    );
    assert_eq!(ok.size, 5);

    let empty = new_log(&mut *store, "acme", "empty");
    let err = seq
        .append(
            &mut *store,
            &empty,
            &[draft(r#"{"kind":"t.e","parent":0}"#)],
        )
        .expect_err("entry 0 has no earlier entry");
    assert_eq!(err.code(), "entry.bad_field", "{err}");
    assert_eq!(store.entry_count(empty.id).expect("count"), 0);
    assert_eq!(store.latest_checkpoint(empty.id).expect("latest"), None);
    check_log(&mut *store, &log, 5);
}

/// Two sequencers on two connections appending in turn: each notices the
/// other's batches (its cache no longer matches the head) and continues
/// from the database.
pub fn sequencer_two_connections_alternate(h: &mut dyn Harness) {
    let mut one = ready(h);
    let log = new_log(&mut *one, "acme", "audit");
    let mut two = h.connect();
    let mut seq_one = Sequencer::new(signer());
    let mut seq_two = Sequencer::new(signer());
    let mut size = 0u64;
    for round in 0..6usize {
        let (seq, store, n) = if round % 2 == 0 {
            (&mut seq_one, &mut one, 3 + round * 50)
        } else {
            (&mut seq_two, &mut two, 1 + round * 40)
        };
        let out = append_ok(seq, &mut **store, &log, &drafts(&format!("r{round}"), n));
        assert_eq!(out.entries[0].index, size, "round {round}");
        size += n as u64;
        assert_eq!(out.size, size);
    }
    check_log(&mut *two, &log, size);
    check_log(&mut *h.connect(), &log, size);
}

/// A batch another connection commits while a log is being verified is not
/// seen in part: verification reads the checkpoints and the rows of one
/// committed state, so it reports the log as it was at its start (valid),
/// never rows without their checkpoint (`checkpoint.uncovered`). The
/// progress callback, called between the two reads, commits the batch.
pub fn verification_reads_one_committed_state(h: &mut dyn Harness) {
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    append_ok(
        &mut Sequencer::new(signer()),
        &mut *store,
        &log,
        &drafts("a", 10),
    );
    let mut other = h.connect();
    let mut other_seq = Sequencer::new(signer());
    let mut committed = false;
    let report = reader::verify_log(&mut *store, &log, verifiers(), &mut |_, _| {
        if !committed {
            committed = true;
            append_ok(&mut other_seq, &mut *other, &log, &drafts("b", 5));
        }
    })
    .expect("verify_log runs");
    assert!(committed);
    assert!(report.valid, "{:?}", report.violations);
    assert_eq!((report.total_count, report.rows_checked), (10, 10));
    // Once it is over, the connection sees the new batch.
    check_log(&mut *store, &log, 15);
}

/// Several threads, each with its own connection and sequencer, append to
/// one log at once: no index is used twice or skipped, a request id raced
/// by every thread is stored once, and the log verifies.
pub fn sequencer_concurrent_writers_share_one_log(h: &mut dyn Harness) {
    // 4 × 8 × (20 + 1) = 672 entries: the writers race across two tile
    // boundaries, so each reloads partial tiles written by the others.
    const THREADS: usize = 4;
    const BATCHES: usize = 8;
    const PER_BATCH: usize = 20;
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    let stores: Vec<Box<dyn Store>> = (0..THREADS).map(|_| h.connect()).collect();
    let results: Vec<Vec<(String, Appended)>> = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .into_iter()
            .enumerate()
            .map(|(t, mut store)| {
                let log = &log;
                s.spawn(move || {
                    let mut seq = Sequencer::new(signer());
                    let mut got = Vec::new();
                    for b in 0..BATCHES {
                        let mut ids: Vec<String> =
                            (0..PER_BATCH).map(|i| format!("t{t}-b{b}-{i}")).collect();
                        ids.insert(t % PER_BATCH, format!("shared-{b}"));
                        let batch: Vec<EntryDraft> = ids
                            .iter()
                            .map(|id| draft(&format!(r#"{{"kind":"t.e","request_id":"{id}"}}"#)))
                            .collect();
                        let out = append_ok(&mut seq, &mut *store, log, &batch);
                        got.extend(ids.into_iter().zip(out.entries));
                    }
                    got
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|w| w.join().expect("writer thread"))
            .collect()
    });

    let mut by_id: BTreeMap<String, Vec<Appended>> = BTreeMap::new();
    for (id, a) in results.into_iter().flatten() {
        by_id.entry(id).or_default().push(a);
    }
    let mut stored: Vec<u64> = Vec::new();
    for (id, answers) in &by_id {
        let fresh: Vec<&Appended> = answers.iter().filter(|a| !a.duplicate).collect();
        assert_eq!(fresh.len(), 1, "{id} stored once: {answers:?}");
        for a in answers {
            assert_eq!(
                (a.index, a.leaf_hash, &a.ts),
                (fresh[0].index, fresh[0].leaf_hash, &fresh[0].ts),
                "{id}: every answer is the stored entry"
            );
        }
        stored.push(fresh[0].index);
    }
    let total = (THREADS * BATCHES * PER_BATCH + BATCHES) as u64;
    stored.sort_unstable();
    assert_eq!(stored, (0..total).collect::<Vec<_>>(), "every index once");
    check_log(&mut *store, &log, total);
}

// ---------------------------------------------------------------------------
// Key rotation, redaction and repair.

/// `rotate_key` refuses a stale old key or a stale transition and changes
/// nothing then; otherwise it stores the transition checkpoints, gives
/// both keys their ranges, makes the new key current (a sequencer with
/// the old key is refused), and the rotation record is append-only.
pub fn key_rotation_is_checked_recorded_and_enforced(h: &mut dyn Harness) {
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    let mut old_seq = Sequencer::new(signer());
    append_ok(&mut old_seq, &mut *store, &log, &drafts("a", 3));
    let latest = store
        .latest_checkpoint(log.id)
        .expect("latest")
        .expect("one");
    let new = signer_from(0x77);
    let (text, _) = evident_core::note::parse_note(latest.note.as_bytes()).expect("note");
    let cp = Checkpoint::parse(&text).expect("checkpoint");
    let note = evident_core::checkpoint::sign_checkpoint(&cp, &[&signer(), &new]).expect("sign");
    let old_vkey = signer().verifier_key().to_string();
    let new_vkey = new.verifier_key().to_string();
    let transition = |after_seq| Transition {
        log: log.id,
        after_seq,
        size: cp.size,
        root: &cp.root,
        note: &note,
    };
    let stale = [transition(latest.seq - 1)];
    let good = [transition(latest.seq)];
    for (old, transitions) in [
        (new_vkey.as_str(), &good[..]),
        (old_vkey.as_str(), &stale[..]),
        (old_vkey.as_str(), &[][..]),
    ] {
        let got = store.rotate_key(&KeyRotation {
            old_vkey: old,
            new_vkey: &new_vkey,
            transitions,
            now: NOW,
        });
        assert!(
            matches!(got, Err(StoreError::RotationConflict(_))),
            "{got:?}"
        );
    }
    assert_eq!(store.keys().expect("keys").len(), 1, "nothing changed");
    assert_eq!(checkpoints(&mut *store, log.id).len(), 1);

    let made = store
        .rotate_key(&KeyRotation {
            old_vkey: &old_vkey,
            new_vkey: &new_vkey,
            transitions: &good,
            now: NOW,
        })
        .expect("rotate_key");
    let cps = checkpoints(&mut *store, log.id);
    assert_eq!(cps.len(), 2);
    assert_eq!((cps[1].size, &cps[1].note), (cp.size, &note));
    assert_eq!(made.first_seq, Some(cps[1].seq));
    let keys = store.keys().expect("keys");
    assert_eq!(keys.len(), 2);
    assert_eq!(
        (
            keys[0].first_seq,
            keys[0].last_seq,
            keys[0].retired_at.as_deref()
        ),
        (None, Some(cps[1].seq), Some(NOW))
    );
    assert_eq!(keys[1], made);
    assert_eq!(keys[1].last_seq, None);

    let got = old_seq.append(&mut *store, &log, &drafts("b", 1));
    assert!(matches!(got, Err(StoreError::KeyRetired { .. })), "{got:?}");
    let mut new_seq = Sequencer::new(new.clone());
    append_ok(&mut new_seq, &mut *store, &log, &drafts("c", 2));
    let history = reader::key_history(&mut *store).expect("history");
    let trust = Verifiers::new([signer().verifier_key()]);
    let report = reader::verify_log(&mut *store, &log, trust, &mut |_, _| {}).expect("verify");
    assert!(report.valid, "{:?}", report.violations);
    assert_eq!(history.periods().len(), 2);
    for sql in [
        "UPDATE key_rotations SET last_seq = last_seq + 100",
        "DELETE FROM key_rotations",
    ] {
        let got = h.raw_sql(sql);
        assert!(
            matches!(got, Err(StoreError::AppendOnly(_))),
            "{sql}: {got:?}"
        );
    }
}

/// `redact_body` sets exactly salt and body to NULL, once, for a row that
/// exists; plain SQL can erase a body only where a redaction is recorded.
pub fn redaction_erases_only_body_and_salt_once(h: &mut dyn Harness) {
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    let rows: Vec<Row> = (0..3)
        .map(|i| row(&log, i, Some(&format!("r{i}"))))
        .collect();
    commit_rows(&mut *store, &log, &rows, Some((0, 0, 3)), 3);
    let got = store.redact_body(log.id, 7, 2, NOW);
    assert!(
        matches!(got, Err(StoreError::NoSuchEntry { index: 7, .. })),
        "{got:?}"
    );
    store.redact_body(log.id, 1, 2, NOW).expect("redact_body");
    let got = store.redact_body(log.id, 1, 2, NOW);
    assert!(
        matches!(got, Err(StoreError::RedactRefused { index: 1, .. })),
        "{got:?}"
    );
    let after = entries(&mut *store, log.id, 0);
    let mut want: Vec<StoredEntry> = rows.iter().map(stored).collect();
    want[1].salt = None;
    want[1].body = None;
    assert_eq!(after, want);
    for sql in [
        "UPDATE entries SET salt = NULL, body = NULL WHERE idx = 0",
        "UPDATE entries SET envelope = substr(envelope, 2) WHERE idx = 1",
        "DELETE FROM redactions",
    ] {
        let got = h.raw_sql(sql);
        assert!(
            matches!(got, Err(StoreError::AppendOnly(_))),
            "{sql}: {got:?}"
        );
    }
}

/// `repair_entries` refuses a row that is not as the caller saw it, and
/// otherwise moves the row to quarantine and rewrites it, or inserts a
/// missing one.
pub fn repair_quarantines_the_row_it_rewrites(h: &mut dyn Harness) {
    let mut store = ready(h);
    let log = new_log(&mut *store, "acme", "audit");
    let rows: Vec<Row> = (0..3).map(|i| row(&log, i, None)).collect();
    commit_rows(&mut *store, &log, &rows[..2], Some((0, 0, 2)), 2);
    let current = entries(&mut *store, log.id, 0);
    let original = stored(&rows[2]);
    let restore = |cur| Restore {
        index: 1,
        current: cur,
        envelope: &original.envelope,
        leaf_hash: &rows[2].leaf,
        salt: original.salt.as_deref(),
        body: original.body.as_deref(),
    };
    // The caller saw another row than the one stored: refused.
    let got = store.repair_entries(log.id, &[restore(Some(&current[0]))], NOW);
    assert!(matches!(got, Err(StoreError::RepairRefused(_))), "{got:?}");
    assert_eq!(entries(&mut *store, log.id, 0), current);
    store
        .repair_entries(log.id, &[restore(Some(&current[1]))], NOW)
        .expect("repair_entries");
    let after = entries(&mut *store, log.id, 0);
    assert_eq!(after[0], current[0]);
    assert_eq!(
        (&after[1].envelope, after[1].leaf_hash, &after[1].body),
        (&original.envelope, Some(rows[2].leaf), &original.body)
    );
    // A missing row is inserted.
    let missing = Restore {
        index: 2,
        ..restore(None)
    };
    store
        .repair_entries(log.id, &[missing], NOW)
        .expect("repair_entries inserts");
    assert_eq!(entries(&mut *store, log.id, 0).len(), 3);
    for sql in [
        "UPDATE quarantine SET body = NULL",
        "DELETE FROM quarantine",
    ] {
        let got = h.raw_sql(sql);
        assert!(
            matches!(got, Err(StoreError::AppendOnly(_))),
            "{sql}: {got:?}"
        );
    }
}

/// The writes pause: absent on a fresh database, seen by another
/// connection as soon as it is set, replaced by a second pause, cleared by
/// a resume (twice is harmless), and never touching a log's entries.
pub fn writes_pause_is_set_seen_and_cleared(h: &mut dyn Harness) {
    let mut a = ready(h);
    let mut b = h.connect();
    let log = new_log(&mut *a, "acme", "audit");
    let rows: Vec<Row> = (0..3).map(|i| row(&log, i, None)).collect();
    commit_rows(&mut *a, &log, &rows, None, 3);
    assert_eq!(a.writes_pause().expect("read the pause"), None);

    let first = WritesPause {
        by: "oncall".into(),
        reason: "incident 42".into(),
        since: NOW.into(),
    };
    a.set_writes_pause(Some(&first)).expect("pause");
    assert_eq!(b.writes_pause().expect("read"), Some(first.clone()));

    let second = WritesPause {
        by: "key-1".into(),
        reason: "backup \"nightly\" — ünïcode".into(),
        since: "2025-01-02T04:00:00.000000Z".into(),
    };
    b.set_writes_pause(Some(&second)).expect("pause again");
    assert_eq!(a.writes_pause().expect("read"), Some(second));

    a.set_writes_pause(None).expect("resume");
    a.set_writes_pause(None).expect("resume twice");
    assert_eq!(b.writes_pause().expect("read"), None);
    assert_eq!(entries(&mut *b, log.id, 0).len(), 3, "entries untouched");
    // The pause is the only meta row that changes: the instance name (the
    // first part of every origin) is fixed.
    let instance = a.instance().expect("instance");
    for sql in [
        "UPDATE meta SET value = 'elsewhere' WHERE key = 'instance'",
        "UPDATE meta SET key = 'writes_paused' WHERE key = 'instance'",
        "DELETE FROM meta WHERE key = 'instance'",
    ] {
        let got = h.raw_sql(sql);
        assert!(
            matches!(got, Err(StoreError::AppendOnly(_))),
            "{sql}: {got:?}"
        );
    }
    assert_eq!(b.instance().expect("instance"), instance);
}

#[cfg(test)]
mod tests {
    /// Every public case is generated by the macro, so none is forgotten.
    #[test]
    fn every_case_is_in_the_macro() {
        let src = include_str!("conformance.rs");
        let (macro_text, _) = src
            .split_once(
                "// ---------------------------------------------------------------------------",
            )
            .expect("the macro comes before the fixtures");
        let listed: std::collections::BTreeSet<&str> = macro_text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .collect();
        let mut cases = 0;
        for line in src.lines() {
            let Some(rest) = line.strip_prefix("pub fn ") else {
                continue;
            };
            if !rest.contains("(h: &mut dyn Harness)") {
                continue;
            }
            let name = &rest[..rest.find('(').expect("a parameter list")];
            assert!(
                listed.contains(name),
                "{name} is not in store_conformance_tests!"
            );
            cases += 1;
        }
        assert!(cases >= 20, "found only {cases} cases");
    }
}
