//! Reading a tampered SQLite database: what `reader` hands out must still
//! be what the signed checkpoints prove, or an error.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use ed25519_dalek::SigningKey;
use evident_core::ErrorCode;
use evident_core::entry::{Limits, origin, parse_entry};
use evident_core::note::{NoteSigner, Verifiers};
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
