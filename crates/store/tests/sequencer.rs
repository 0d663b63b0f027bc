//! The sequencer against a tampered SQLite database: whoever edits a log's
//! stored head behind the triggers' back (dropping them first), the next
//! append refuses to extend it (`log.inconsistent`) and stores nothing.
//!
//! The sequencer's behaviour on an honest database — idempotent request
//! ids, a clock that goes backwards, a batch failing at any step of its
//! transaction, two sequencers on two connections, concurrent writers, a
//! bad `parent` — is part of the conformance suite (`sequencer_*` cases in
//! `evident_store::conformance`), which `sqlite_conformance.rs` runs on a
//! database file; the suite is what the PostgreSQL backend will run too.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use evident_core::ErrorCode;
use evident_core::checkpoint::{Checkpoint, sign_checkpoint};
use evident_core::entry::{EntryDraft, Limits, origin, parse_entry};
use evident_core::hash::sha256;
use evident_core::note::{NoteSigner, Verifiers};
use evident_store::reader::verify_log;
use evident_store::sqlite::SqliteStore;
use evident_store::{LogInfo, Sequencer, Store, StoreError, StoredCheckpoint};

const INSTANCE: &str = "tamper.test";

fn signer() -> NoteSigner {
    NoteSigner::new(INSTANCE, SigningKey::from_bytes(&[0x42; 32])).unwrap()
}

fn drafts(tag: &str, n: usize) -> Vec<EntryDraft> {
    (0..n)
        .map(|i| {
            let line = format!(r#"{{"kind":"t.e","request_id":"{tag}-{i}"}}"#);
            parse_entry(line.as_bytes(), &Limits::default()).unwrap()
        })
        .collect()
}

/// A log of `batches` committed through one sequencer, which is returned
/// warm (its cache holds the log's edge).
struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: SqliteStore,
    log: LogInfo,
    seq: Sequencer,
    size: u64,
}

impl Fixture {
    fn new(batches: &[usize]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evident.db");
        let mut store = SqliteStore::open(&path, true).unwrap();
        store.migrate_up().unwrap();
        let now = "2025-01-01T00:00:00.000000Z";
        store
            .initialize(INSTANCE, &signer().verifier_key().to_string(), now)
            .unwrap();
        let origin = origin(INSTANCE, "acme", "audit").unwrap();
        let log = store.create_log("acme", "audit", &origin, now).unwrap();
        let mut seq = Sequencer::new(signer());
        let mut size = 0;
        for (n, &count) in batches.iter().enumerate() {
            size = seq
                .append(&mut store, &log, &drafts(&format!("b{n}"), count))
                .unwrap()
                .size;
        }
        Fixture {
            _dir: dir,
            path,
            store,
            log,
            seq,
            size,
        }
    }

    /// Runs SQL as an attacker with direct access to the file.
    fn tamper(&self, sql: &str) {
        attacker(&self.path).execute_batch(sql).unwrap();
    }

    fn state(&mut self) -> (u64, Vec<StoredCheckpoint>) {
        (
            self.store.entry_count(self.log.id).unwrap(),
            self.store.checkpoints(self.log.id).unwrap(),
        )
    }

    /// The next append, by the warm sequencer or by a cold one: it must
    /// fail and store nothing. Returns the error.
    fn append_fails(&mut self, warm: bool) -> StoreError {
        let before = self.state();
        let mut cold = Sequencer::new(signer());
        let seq = if warm { &mut self.seq } else { &mut cold };
        let result = seq.append(&mut self.store, &self.log, &drafts("after", 3));
        let err = match result {
            Ok(out) => panic!(
                "the append to a tampered log succeeded: size {} (was {})",
                out.size, self.size
            ),
            Err(e) => e,
        };
        assert_eq!(self.state(), before, "nothing stored ({err})");
        err
    }

    fn last_leaf(&self) -> Vec<u8> {
        attacker(&self.path)
            .query_row(
                "SELECT leaf_hash FROM entries WHERE idx = ?1",
                [i64::try_from(self.size).unwrap() - 1],
                |r| r.get(0),
            )
            .unwrap()
    }
}

fn attacker(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

fn assert_inconsistent(err: &StoreError) {
    assert!(
        matches!(err, StoreError::Inconsistent { .. }),
        "expected log.inconsistent, got {} ({err})",
        err.code()
    );
    assert_eq!(err.code(), "log.inconsistent");
}

/// A checkpoint row for the same size with another root, signed with the
/// log's own key (inserting needs no trigger dropped): the stored tiles
/// disagree with it, warm or cold.
#[test]
fn forged_latest_checkpoint_is_refused() {
    for warm in [true, false] {
        let mut f = Fixture::new(&[200, 100]);
        forge_checkpoint(&f, f.size);
        let err = f.append_fails(warm);
        assert_inconsistent(&err);
    }
}

/// The entries of the latest batch deleted (triggers dropped first): a
/// cold sequencer finds the head's last entry missing.
#[test]
fn deleted_last_batch_is_refused_by_a_cold_sequencer() {
    for batches in [&[200, 100][..], &[256, 256]] {
        let mut f = Fixture::new(batches);
        f.tamper(&format!(
            "DROP TRIGGER entries_no_delete; DELETE FROM entries WHERE idx >= {}",
            batches[0]
        ));
        let err = f.append_fails(false);
        assert_inconsistent(&err);
    }
}

/// The same deletion under a sequencer that appended the batch and kept
/// its cache. The cached edge still matches the checkpoint's size and
/// root, and the head reports the missing last entry as `last_leaf: None`,
/// which the cache check accepts (`head.last_leaf.is_none_or(..)` in
/// `Sequencer::append`), so the batch is appended after a hole.
#[test]
fn deleted_last_batch_is_refused_by_a_warm_sequencer() {
    let mut f = Fixture::new(&[200, 100]);
    f.tamper("DROP TRIGGER entries_no_delete; DELETE FROM entries WHERE idx >= 200");
    let err = f.append_fails(true);
    assert_inconsistent(&err);
}

/// The head's partial level-0 tile changed (tiles have no triggers: they
/// are derived data): rebuilt from it, the tree's root is not the signed
/// one.
#[test]
fn changed_partial_tile_is_refused_by_a_cold_sequencer() {
    let mut f = Fixture::new(&[200, 100]);
    // Size 300: tile 0/001 holds leaves 256..299.
    f.tamper("UPDATE tiles SET data = zeroblob(length(data)) WHERE level = 0 AND idx = 1");
    let err = f.append_fails(false);
    assert_inconsistent(&err);
    // The level-1 tile (one hash: the full tile 0/000) matters as much.
    let mut f = Fixture::new(&[200, 100]);
    f.tamper("UPDATE tiles SET data = zeroblob(32) WHERE level = 1 AND idx = 0");
    let err = f.append_fails(false);
    assert_inconsistent(&err);
}

/// The last entry's stored leaf hash changed: it no longer continues the
/// chain the cache holds, nor the tree's last leaf, nor its own envelope.
#[test]
fn changed_last_leaf_hash_is_refused() {
    // 300: the last leaf is in a partial tile; 512: the size is a multiple
    // of 256, so only the envelope can say what the leaf should be.
    for batches in [&[200, 100][..], &[256, 256]] {
        for warm in [true, false] {
            let mut f = Fixture::new(batches);
            f.tamper(&format!(
                "DROP TRIGGER entries_no_update;
                 UPDATE entries SET leaf_hash = zeroblob(32) WHERE idx = {}",
                f.size - 1
            ));
            let err = f.append_fails(warm);
            assert_inconsistent(&err);
        }
    }
}

/// The last entry's envelope changed, its stored leaf hash kept: a cold
/// sequencer rehashes the envelope it continues from.
#[test]
fn changed_last_envelope_is_refused_by_a_cold_sequencer() {
    for batches in [&[200, 100][..], &[256, 256]] {
        let mut f = Fixture::new(batches);
        let leaf = f.last_leaf();
        f.tamper(&format!(
            "DROP TRIGGER entries_no_update;
             UPDATE entries SET envelope = CAST(replace(CAST(envelope AS TEXT), 't.e', 't.x') AS BLOB)
             WHERE idx = {}",
            f.size - 1
        ));
        assert_eq!(f.last_leaf(), leaf, "only the envelope changed");
        let err = f.append_fails(false);
        assert_inconsistent(&err);
    }
}

/// The latest checkpoint deleted (a rollback of the head to the batch
/// before): the batch's entries are still there, so the head's successor
/// index is taken. The append fails and stores nothing.
#[test]
fn rolled_back_checkpoint_is_refused() {
    for warm in [true, false] {
        let mut f = Fixture::new(&[200, 100]);
        f.tamper(
            "DROP TRIGGER checkpoints_no_delete;
             DELETE FROM checkpoints WHERE seq = (SELECT max(seq) FROM checkpoints)",
        );
        f.append_fails(warm);
    }
}

/// As above, and the refusal says why: the log is inconsistent with its
/// head (entries past the latest checkpoint), not a database failure.
#[test]
fn rolled_back_checkpoint_is_reported_as_inconsistent() {
    let mut f = Fixture::new(&[200, 100]);
    f.tamper(
        "DROP TRIGGER checkpoints_no_delete;
         DELETE FROM checkpoints WHERE seq = (SELECT max(seq) FROM checkpoints)",
    );
    let err = f.append_fails(false);
    assert_inconsistent(&err);
}

/// Signs and inserts a checkpoint of `size` with a made-up root.
fn forge_checkpoint(f: &Fixture, size: u64) {
    let cp = Checkpoint {
        origin: f.log.origin.clone(),
        size,
        root: sha256(b"forged"),
        extensions: Vec::new(),
    };
    let note = sign_checkpoint(&cp, &[&signer()]).unwrap();
    attacker(&f.path)
        .execute(
            "INSERT INTO checkpoints (log_id, size, root, note, created_at)
             VALUES (?1, ?2, ?3, ?4, 'now')",
            rusqlite::params![f.log.id, i64::try_from(size).unwrap(), &cp.root.0[..], note],
        )
        .unwrap();
}

/// A forged checkpoint claiming more entries than the log holds: the
/// append fails and stores nothing.
#[test]
fn forged_larger_checkpoint_is_refused() {
    for warm in [true, false] {
        let mut f = Fixture::new(&[200, 100]);
        forge_checkpoint(&f, f.size + 10);
        f.append_fails(warm);
    }
}

/// As above, and the refusal says why: the stored tiles and entries do not
/// reach the head's size.
#[test]
fn forged_larger_checkpoint_is_reported_as_inconsistent() {
    let mut f = Fixture::new(&[200, 100]);
    forge_checkpoint(&f, f.size + 10);
    let err = f.append_fails(false);
    assert_inconsistent(&err);
}

/// After every refused append above the untampered log is still what it
/// was: a control that the fixture's log verifies and appends.
#[test]
fn untampered_fixture_verifies_and_continues() {
    for warm in [true, false] {
        let mut f = Fixture::new(&[200, 100]);
        let mut cold = Sequencer::new(signer());
        let seq = if warm { &mut f.seq } else { &mut cold };
        let out = seq
            .append(&mut f.store, &f.log, &drafts("after", 3))
            .unwrap();
        assert_eq!(out.size, 303);
        let keys = Verifiers::new([signer().verifier_key()]);
        let report = verify_log(&mut f.store, &f.log, keys, &mut |_, _| {}).unwrap();
        assert!(report.valid, "{:?}", report.violations);
        assert_eq!(report.total_count, 303);
    }
}
