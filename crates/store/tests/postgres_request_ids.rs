//! Request ids on PostgreSQL cost one probe of their unique index per
//! entry: the batch's COPY checks them against the index anyway, so the
//! sequencer skips the separate lookup, and only when the COPY finds a
//! stored id (and rolls the batch back) does it redo the batch with the
//! lookup, answering stored ids as duplicates with their original entry.
//!
//! Index probes are counted by PostgreSQL itself (`idx_scan` of the
//! `entries_request_id` index, flushed with `pg_stat_force_next_flush`);
//! the COPY's uniqueness check is not an index scan, the lookup is.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use ed25519_dalek::SigningKey;
use evident_core::entry::{EntryDraft, Limits, origin, parse_entry};
use evident_core::note::{NoteSigner, Verifiers};
use evident_pgtest::Cluster;
use evident_store::postgres::PgStore;
use evident_store::reader::verify_log;
use evident_store::{LogInfo, Sequencer, Store};

const INSTANCE: &str = "pg.request-ids";
const NOW: &str = "2025-01-01T00:00:00.000000Z";

fn signer() -> NoteSigner {
    NoteSigner::new(INSTANCE, SigningKey::from_bytes(&[0x17; 32])).unwrap()
}

fn drafts(tag: &str, n: usize) -> Vec<EntryDraft> {
    (0..n)
        .map(|i| {
            let line = format!(r#"{{"kind":"t.e","request_id":"{tag}-{i}"}}"#);
            parse_entry(line.as_bytes(), &Limits::default()).unwrap()
        })
        .collect()
}

fn ids(tags: &[&str]) -> Vec<EntryDraft> {
    tags.iter()
        .map(|t| {
            let line = format!(r#"{{"kind":"t.e","request_id":"{t}"}}"#);
            parse_entry(line.as_bytes(), &Limits::default()).unwrap()
        })
        .collect()
}

struct Db {
    cluster: &'static Cluster,
    name: String,
}

impl Db {
    fn new() -> Option<Db> {
        let cluster = Cluster::shared()?;
        Some(Db {
            cluster,
            name: cluster.create_database(),
        })
    }

    /// A connection that never plans the lookup as a sequential scan, so
    /// a lookup always shows as a scan of the request-id index.
    fn connect(&self) -> PgStore {
        let mut store = PgStore::connect(&self.cluster.url(&self.name)).unwrap();
        store
            .client()
            .batch_execute("SET enable_seqscan = off")
            .unwrap();
        store
    }

    /// Scans of the request-id index so far, after `store` flushed its
    /// statistics.
    fn request_id_scans(&self, store: &mut PgStore) -> i64 {
        store
            .client()
            .batch_execute("SELECT pg_stat_force_next_flush()")
            .unwrap();
        self.cluster
            .client(&self.name)
            .query_one(
                "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'entries_request_id'",
                &[],
            )
            .unwrap()
            .get(0)
    }

    fn verify(&self, log: &LogInfo, size: u64) {
        let mut store = self.connect();
        let report = verify_log(
            &mut store,
            log,
            Verifiers::new([signer().verifier_key()]),
            &mut |_, _| {},
        )
        .unwrap();
        assert!(report.valid, "{:?}", report.violations);
        assert_eq!(report.total_count, size);
        assert_eq!(store.entry_count(log.id).unwrap(), size);
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.cluster.drop_database(&self.name);
    }
}

fn ready(db: &Db) -> (PgStore, LogInfo) {
    let mut store = db.connect();
    store.migrate_up().unwrap();
    store
        .initialize(INSTANCE, &signer().verifier_key().to_string(), NOW)
        .unwrap();
    let log = store
        .create_log(
            "acme",
            "audit",
            &origin(INSTANCE, "acme", "audit").unwrap(),
            NOW,
        )
        .unwrap();
    (store, log)
}

#[test]
fn new_request_ids_are_not_looked_up_before_the_copy() {
    let Some(db) = Db::new() else { return };
    let (mut store, log) = ready(&db);
    let mut seq = Sequencer::new(signer());
    seq.append(&mut store, &log, &drafts("a", 50)).unwrap();
    let before = db.request_id_scans(&mut store);
    let out = seq.append(&mut store, &log, &drafts("b", 300)).unwrap();
    assert_eq!((out.size, out.appended()), (350, 300));
    assert_eq!(
        db.request_id_scans(&mut store),
        before,
        "no lookup: the COPY alone probed the index"
    );
    db.verify(&log, 350);
}

#[test]
fn a_stored_request_id_is_answered_with_the_original_after_the_copy_refuses_it() {
    let Some(db) = Db::new() else { return };
    let (mut store, log) = ready(&db);
    let mut seq = Sequencer::new(signer());
    let first = seq
        .append(&mut store, &log, &ids(&["x", "y", "z"]))
        .unwrap();
    let before = db.request_id_scans(&mut store);

    let out = seq
        .append(&mut store, &log, &ids(&["n1", "y", "n2", "n1", "x"]))
        .unwrap();
    assert!(
        db.request_id_scans(&mut store) > before,
        "the redone batch looked the ids up"
    );
    let got: Vec<(u64, bool)> = out.entries.iter().map(|e| (e.index, e.duplicate)).collect();
    assert_eq!(
        got,
        vec![(3, false), (1, true), (4, false), (3, true), (0, true)]
    );
    assert_eq!(out.entries[1].leaf_hash, first.entries[1].leaf_hash);
    assert_eq!(out.entries[1].ts, first.entries[1].ts);
    assert_eq!(out.entries[4].leaf_hash, first.entries[0].leaf_hash);
    assert_eq!((out.size, out.appended()), (5, 2));
    // The refused attempt left nothing: one checkpoint per batch.
    assert_eq!(
        store
            .checkpoints(log.id)
            .unwrap()
            .iter()
            .map(|c| c.size)
            .collect::<Vec<_>>(),
        vec![3, 5]
    );
    // And the sequencer goes on from there.
    let next = seq.append(&mut store, &log, &ids(&["n3"])).unwrap();
    assert_eq!((next.entries[0].index, next.size), (5, 6));

    // A batch large enough to be inserted in several COPYs, the stored id
    // in the last of them.
    let mut big = drafts("big", 5000);
    big.extend(ids(&["z"]));
    let out = seq.append(&mut store, &log, &big).unwrap();
    assert_eq!((out.size, out.appended()), (5006, 5000));
    assert_eq!(
        (out.entries[5000].index, out.entries[5000].duplicate),
        (2, true)
    );
    assert_eq!(out.entries[4999].index, 5005);
    db.verify(&log, 5006);
}

#[test]
fn two_connections_racing_one_request_id_store_it_once() {
    let Some(db) = Db::new() else { return };
    let (mut one, log) = ready(&db);
    let mut two = db.connect();
    let (mut s1, mut s2) = (Sequencer::new(signer()), Sequencer::new(signer()));
    // Each warms its cache, then the other moves the head; the second
    // batch on connection two meets an id connection one stored meanwhile.
    s1.append(&mut one, &log, &ids(&["a"])).unwrap();
    s2.append(&mut two, &log, &ids(&["b"])).unwrap();
    let won = s1.append(&mut one, &log, &ids(&["shared", "c"])).unwrap();
    let lost = s2
        .append(&mut two, &log, &ids(&["d", "shared", "e"]))
        .unwrap();
    assert_eq!(
        (lost.entries[1].index, lost.entries[1].duplicate),
        (won.entries[0].index, true)
    );
    assert_eq!(lost.entries[1].leaf_hash, won.entries[0].leaf_hash);
    assert_eq!(
        lost.entries
            .iter()
            .map(|e| (e.index, e.duplicate))
            .collect::<Vec<_>>(),
        vec![(4, false), (2, true), (5, false)]
    );
    // Many threads at once, each batch holding one id all of them send.
    std::thread::scope(|s| {
        for t in 0..4 {
            let db = &db;
            let log = &log;
            s.spawn(move || {
                let mut store = db.connect();
                let mut seq = Sequencer::new(signer());
                for b in 0..6 {
                    let mut batch = drafts(&format!("t{t}-b{b}"), 20);
                    batch.extend(ids(&[&format!("race-{b}")]));
                    let out = seq.append(&mut store, log, &batch).unwrap();
                    assert_eq!(out.entries.len(), 21);
                }
            });
        }
    });
    let size = 6 + 4 * 6 * 20 + 6;
    db.verify(&log, size);
}
