//! Reading a tampered SQLite database: what `reader` hands out must still
//! be what the signed checkpoints prove, or an error.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use ed25519_dalek::SigningKey;
use evident_core::ErrorCode;
use evident_core::entry::{Limits, origin, parse_entry};
use evident_core::note::{NoteSigner, Verifiers};
use evident_core::verify::Report;
use evident_store::reader::Resume;
use evident_store::sqlite::SqliteStore;
use evident_store::{Sequencer, Store, StoreError, reader};

const INSTANCE: &str = "reader.test";

/// A log of 300 entries: tile 0/000 is full, 0/001 is partial (44).
fn fixture() -> (
    tempfile::TempDir,
    SqliteStore,
    evident_store::LogInfo,
    Verifiers,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evident.db");
    let mut store = SqliteStore::open(&path, true).unwrap();
    store.migrate_up().unwrap();
    let signer = NoteSigner::new(INSTANCE, SigningKey::from_bytes(&[7; 32])).unwrap();
    let now = "2025-01-01T00:00:00.000000Z";
    store
        .initialize(INSTANCE, &signer.verifier_key().to_string(), now)
        .unwrap();
    let origin = origin(INSTANCE, "acme", "audit").unwrap();
    let log = store.create_log("acme", "audit", &origin, now).unwrap();
    let drafts: Vec<_> = (0..300)
        .map(|i| {
            let line = format!(r#"{{"kind":"t.e","data":{{"i":{i}}}}}"#);
            parse_entry(line.as_bytes(), &Limits::default()).unwrap()
        })
        .collect();
    Sequencer::new(signer.clone())
        .append(&mut store, &log, &drafts)
        .unwrap();
    let keys = Verifiers::new([signer.verifier_key()]);
    (dir, store, log, keys)
}

/// A full hash tile overwritten (tiles are derived data, without
/// triggers): neither the next append nor `verify` reads it, so the
/// receipt path must not hand out a proof built from it.
#[test]
fn receipt_from_a_tampered_tile_is_refused() {
    let (_dir, mut store, log, keys) = fixture();
    store
        .connection()
        .execute_batch("UPDATE tiles SET data = zeroblob(8192) WHERE level = 0 AND idx = 0")
        .unwrap();
    let err = reader::receipt(&mut store, &log, 5, true).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert_eq!(err.code(), "store.corrupt");
    // An entry whose proof does not touch that tile is still served, and
    // its receipt verifies.
    let ok = reader::receipt(&mut store, &log, 299, true).unwrap();
    ok.verify(&keys).unwrap();
}

/// Every receipt of an untampered log verifies (the control).
#[test]
fn receipts_of_an_honest_log_verify() {
    let (_dir, mut store, log, keys) = fixture();
    for i in [0, 5, 255, 256, 299] {
        let r = reader::receipt(&mut store, &log, i, false).unwrap();
        let v = r.verify(&keys).unwrap();
        assert!(!v.body_verified);
        assert_eq!(v.checkpoint.size, 300);
    }
}

fn append_more(store: &mut SqliteStore, log: &evident_store::LogInfo, n: u64) {
    let signer = NoteSigner::new(INSTANCE, SigningKey::from_bytes(&[7; 32])).unwrap();
    let drafts: Vec<_> = (0..n)
        .map(|i| {
            let line = format!(r#"{{"kind":"t.more","data":{{"i":{i}}}}}"#);
            parse_entry(line.as_bytes(), &Limits::default()).unwrap()
        })
        .collect();
    Sequencer::new(signer).append(store, log, &drafts).unwrap();
}

/// Edits the envelope of the row at `idx` (one of `append_more`'s), with
/// the append-only trigger dropped first, as an attacker would.
fn edit_row(store: &mut SqliteStore, idx: u64) {
    store
        .connection()
        .execute_batch(&format!(
            "DROP TRIGGER entries_no_update;
             UPDATE entries SET envelope = CAST(replace(CAST(envelope AS TEXT), 't.more', 't.mxre') AS BLOB) WHERE idx = {idx};"
        ))
        .unwrap();
}

/// One unbounded incremental run: the report and where the next continues.
fn incremental(
    store: &mut SqliteStore,
    log: &evident_store::LogInfo,
    keys: &Verifiers,
    from: Option<&Resume>,
) -> (Report, Option<Resume>) {
    let out = reader::verify_incremental(store, log, keys.clone(), from, u64::MAX).unwrap();
    assert!(out.caught_up);
    (out.report, out.resume)
}

/// The background verifier's incremental run: only the rows after the
/// verified prefix are read, and the result is the full run's.
#[test]
fn incremental_verification_continues_from_the_prefix() {
    let (_dir, mut store, log, keys) = fixture();
    let (r, prefix) = incremental(&mut store, &log, &keys, None);
    assert!(r.valid, "{r:#?}");
    let prefix = prefix.unwrap();
    assert_eq!(prefix.prefix.size, 300);

    // Nothing new: nothing read, still valid.
    let (r, same) = incremental(&mut store, &log, &keys, Some(&prefix));
    assert!(r.valid, "{r:#?}");
    assert_eq!(r.rows_checked, 0);
    assert_eq!(same.as_ref(), Some(&prefix));

    append_more(&mut store, &log, 500);
    let (r, next) = incremental(&mut store, &log, &keys, Some(&prefix));
    assert!(r.valid, "{r:#?}");
    assert_eq!(r.rows_checked, 500);
    assert_eq!(r.total_count, 800);
    let next = next.unwrap();
    assert_eq!(next.prefix.size, 800);
    let (full, from_scratch) = incremental(&mut store, &log, &keys, None);
    assert!(full.valid);
    assert_eq!(from_scratch.unwrap(), next);
}

/// Bounded steps stop at stored checkpoints within the bound (or the
/// first past it), continue from there, and end where one unbounded run
/// ends; a row edited inside a later step is found by that step.
#[test]
fn incremental_verification_goes_in_bounded_steps() {
    let (_dir, mut store, log, keys) = fixture();
    let (_, prefix) = incremental(&mut store, &log, &keys, None);
    // Checkpoints at 400, 500, 600, 700 and 800.
    for _ in 0..5 {
        append_more(&mut store, &log, 100);
    }
    let step = |store: &mut SqliteStore, from: &Resume, max_rows: u64| {
        reader::verify_incremental(store, &log, keys.clone(), Some(from), max_rows).unwrap()
    };
    // Nothing within 50 rows: the first checkpoint past the bound.
    let first = step(&mut store, prefix.as_ref().unwrap(), 50);
    assert!(first.report.valid, "{:#?}", first.report);
    assert_eq!(first.report.rows_checked, 100);
    assert!(!first.caught_up);
    assert_eq!(first.resume.as_ref().unwrap().prefix.size, 400);

    let mut sizes = Vec::new();
    let mut from = prefix.unwrap();
    loop {
        let out = step(&mut store, &from, 250);
        assert!(out.report.valid, "{:#?}", out.report);
        from = out.resume.unwrap();
        sizes.push((from.prefix.size, out.caught_up));
        if out.caught_up {
            break;
        }
    }
    assert_eq!(sizes, [(500, false), (700, false), (800, true)]);
    let (_, whole) = incremental(&mut store, &log, &keys, None);
    assert_eq!(whole.unwrap(), from);

    // A row inside the second step edited, as an attacker would.
    let (_, prefix) = incremental(&mut store, &log, &keys, None);
    let prefix = prefix.unwrap();
    append_more(&mut store, &log, 100);
    append_more(&mut store, &log, 100);
    edit_row(&mut store, 950);
    let clean = step(&mut store, &prefix, 100);
    assert!(clean.report.valid, "{:#?}", clean.report);
    let broken = step(&mut store, &clean.resume.unwrap(), 100);
    assert!(broken.resume.is_none());
    let first = broken.report.first_break.unwrap();
    assert_eq!(
        (first.index, first.reason.code()),
        (950, "entry.leaf_hash_mismatch")
    );
}

/// The level-1 tile, which holds the root of the first 256 entries (a node
/// of the consistency proof from 300 to 400), rewritten: the rows after
/// the prefix are fine, but the proof from stored tiles fails.
#[test]
fn incremental_verification_checks_tiles_with_a_consistency_proof() {
    let (_dir, mut store, log, keys) = fixture();
    let (_, prefix) = incremental(&mut store, &log, &keys, None);
    let prefix = prefix.unwrap();
    append_more(&mut store, &log, 100);
    store
        .connection()
        .execute_batch("UPDATE tiles SET data = zeroblob(length(data)) WHERE level = 1 AND idx = 0")
        .unwrap();
    let (r, next) = incremental(&mut store, &log, &keys, Some(&prefix));
    assert!(!r.valid, "{r:#?}");
    let first = r.first_break.unwrap();
    assert_eq!(
        (first.index, first.reason.code()),
        (300, "checkpoint.root_mismatch")
    );
    assert!(next.is_none());
}

/// A row after the prefix edited (triggers dropped first, as an attacker
/// would): found at its index.
#[test]
fn incremental_verification_finds_an_edited_new_row() {
    let (_dir, mut store, log, keys) = fixture();
    let (_, prefix) = incremental(&mut store, &log, &keys, None);
    append_more(&mut store, &log, 100);
    edit_row(&mut store, 350);
    let (r, _) = incremental(&mut store, &log, &keys, prefix.as_ref());
    let first = r.first_break.unwrap();
    assert_eq!(
        (first.index, first.reason.code()),
        (350, "entry.leaf_hash_mismatch")
    );
}

/// Receipts built from shared tile pyramids: the same receipts as without,
/// a pyramid built from a tampered tile is refused rather than served, and
/// once the tile is put back the next receipt is right again, not built
/// from the bad pyramid.
#[test]
fn shared_pyramids_never_serve_a_tampered_tile() {
    use evident_core::pyramid::PyramidCache;
    let (_dir, mut store, log, keys) = fixture();
    let cache = PyramidCache::new(64);
    for i in [0, 5, 255, 256, 299] {
        let shared = reader::receipt_shared(&mut store, &log, i, true, Some(&cache)).unwrap();
        let plain = reader::receipt(&mut store, &log, i, true).unwrap();
        assert_eq!(shared.to_json(), plain.to_json());
        shared.verify(&keys).unwrap();
    }
    assert!(!cache.is_empty());

    let conn = store.connection();
    let good: Vec<u8> = conn
        .query_row(
            "SELECT data FROM tiles WHERE level = 0 AND idx = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute_batch("UPDATE tiles SET data = zeroblob(8192) WHERE level = 0 AND idx = 0")
        .unwrap();
    // A fresh cache builds its pyramid from the zeroed tile: refused, and
    // the log's pyramids are dropped.
    let fresh = PyramidCache::new(64);
    let err = reader::receipt_shared(&mut store, &log, 5, true, Some(&fresh)).unwrap_err();
    assert_eq!(err.code(), "store.corrupt", "{err}");
    assert!(fresh.is_empty());
    // A bad pyramid left in the cache (as if built before the check) is
    // dropped too, and the receipt comes from the tiles alone.
    store
        .connection()
        .execute(
            "UPDATE tiles SET data = ?1 WHERE level = 0 AND idx = 0",
            [&good],
        )
        .unwrap();
    let bad = evident_core::pyramid::TilePyramid::new(vec![evident_core::Hash::default(); 256]);
    fresh.put(
        u64::try_from(log.id).unwrap(),
        0,
        0,
        std::sync::Arc::new(bad),
    );
    let r = reader::receipt_shared(&mut store, &log, 5, true, Some(&fresh)).unwrap();
    r.verify(&keys).unwrap();
    assert!(fresh.is_empty());
}

/// A second connection to the fixture's database file.
fn second_connection(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("evident.db"), false).unwrap()
}

/// A read that goes in steps waits between them only when the WAL grew
/// during the step (SQLite's WAL cannot start over while a snapshot holds
/// it, so another connection's commits went past its end), and the
/// renewed snapshot sees that commit.
#[test]
fn a_renewed_snapshot_pauses_only_when_the_wal_grew() {
    use std::time::Duration;
    let (dir, mut store, log, _keys) = fixture();
    let mut other = second_connection(&dir);
    store.begin_snapshot().unwrap();
    assert_eq!(store.entry_count(log.id).unwrap(), 300);
    assert!(!store.renew_snapshot(Duration::ZERO).unwrap(), "no commit");
    // A snapshot begins at its first read.
    assert_eq!(store.entry_count(log.id).unwrap(), 300);
    append_more(&mut other, &log, 5);
    assert_eq!(store.entry_count(log.id).unwrap(), 300, "the old snapshot");
    assert!(
        store.renew_snapshot(Duration::ZERO).unwrap(),
        "after a commit"
    );
    assert_eq!(store.entry_count(log.id).unwrap(), 305, "the new snapshot");
    assert!(!store.renew_snapshot(Duration::ZERO).unwrap(), "none since");
    store.end_snapshot().unwrap();
    // Its own commits, made with no snapshot open, are not the step's.
    store.begin_snapshot().unwrap();
    store.end_snapshot().unwrap();
    append_more(&mut store, &log, 1);
    store.begin_snapshot().unwrap();
    assert!(!store.renew_snapshot(Duration::ZERO).unwrap(), "own commit");
    store.end_snapshot().unwrap();
}

/// `verify_log` reads in snapshots of a bounded number of rows; batches
/// another connection commits during the pass (here at each progress
/// call, between chunks and steps) are not part of its report, which is
/// the log as it was when the pass began, and are verified next time.
#[test]
fn a_stepped_verification_reports_the_state_it_began_with() {
    let (dir, mut store, log, keys) = fixture();
    let mut other = second_connection(&dir);
    for step_rows in [1, 7, 100, 299, 300, u64::MAX] {
        let before = store.entry_count(log.id).unwrap();
        let mut calls = 0;
        let report = reader::verify_log_in_steps(
            &mut store,
            &log,
            keys.clone(),
            &mut |_, _| {
                calls += 1;
                append_more(&mut other, &log, 3);
            },
            step_rows,
        )
        .unwrap();
        assert!(calls > 0);
        assert!(report.valid, "{step_rows}: {:?}", report.violations);
        assert_eq!(
            (report.total_count, report.rows_checked),
            (before, before),
            "{step_rows}"
        );
        assert_eq!(
            store.entry_count(log.id).unwrap(),
            before + 3 * calls,
            "{step_rows}: the commits are there after the pass"
        );
    }
    // What came in during the passes verifies as a whole.
    let report = reader::verify_log(&mut store, &log, keys, &mut |_, _| {}).unwrap();
    assert!(report.valid, "{:?}", report.violations);
}
