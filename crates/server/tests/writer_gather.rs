//! The writer gathers after the lock: requests for a log that queue while
//! another connection (another node, another process) holds the log's
//! write lock join the batch the writer seals once it gets the lock,
//! instead of waiting for another turn on it.
//!
//! The lock is really held: a second connection to the same SQLite file
//! begins an append (`BEGIN IMMEDIATE`, the lock every writer takes) and
//! keeps it open while the test queues requests; the writer thread blocks
//! on it in `begin_append`. Which requests the writer had already taken is
//! read from its queue count, so no step depends on timing.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use evident_core::entry::{EntryDraft, Limits, parse_entry};
use evident_server::error::ApiError;
use evident_server::metrics::Metrics;
use evident_server::pool::Opener;
use evident_server::writer::{WriteResult, Writer, WriterSettings};
use evident_store::datadir::DataDir;
use evident_store::reader::verify_log;
use evident_store::sqlite::SqliteStore;
use evident_store::{LogInfo, Store};
use tokio::task::JoinHandle;

const NOW: &str = "2025-01-01T00:00:00.000000Z";

struct Setup {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    a: LogInfo,
    b: LogInfo,
    writer: Arc<Writer>,
    metrics: Arc<Metrics>,
    rt: tokio::runtime::Runtime,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path(), None);
    let init = data.init("writer.test").unwrap();
    let mut opened = data.open().unwrap();
    let signer = data.signer(&mut opened).unwrap();
    let a = opened
        .store
        .create_log("acme", "a", "writer.test/acme/a", NOW)
        .unwrap();
    let b = opened
        .store
        .create_log("acme", "b", "writer.test/acme/b", NOW)
        .unwrap();
    let path = init.db_path;
    let open_path = path.clone();
    let open: Opener = Arc::new(move || {
        SqliteStore::open(&open_path, false).map(|s| Box::new(s) as Box<dyn Store>)
    });
    let metrics = Arc::new(Metrics::new());
    let writer = Writer::start(
        opened.store,
        open,
        signer,
        WriterSettings {
            batch_max_entries: 10_000,
            max_queued_entries: 100_000,
        },
        Arc::clone(&metrics),
        a.id,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    Setup {
        _dir: dir,
        path,
        a,
        b,
        writer,
        metrics,
        rt,
    }
}

fn draft(line: &str) -> EntryDraft {
    parse_entry(line.as_bytes(), &Limits::default()).unwrap()
}

fn drafts(tag: &str, n: usize) -> Vec<EntryDraft> {
    (0..n)
        .map(|i| draft(&format!(r#"{{"kind":"t.e","request_id":"{tag}-{i}"}}"#)))
        .collect()
}

/// Polls until `cond` holds; the deadline only stops a hung test.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

type Pending = JoinHandle<Result<WriteResult, ApiError>>;

impl Setup {
    /// Queues one request; returns once the writer's queue holds
    /// `queued_after` entries (0: the writer has taken everything).
    fn send(&self, log: &LogInfo, drafts: Vec<EntryDraft>, queued_after: usize) -> Pending {
        let writer = Arc::clone(&self.writer);
        let log = log.clone();
        let mut fut = Box::pin(async move { writer.append(log, drafts).await });
        // The first poll queues the request, here and now; the runtime
        // then waits for the answer.
        let mut cx = Context::from_waker(Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        let h = self.rt.spawn(fut);
        wait_until(&format!("{queued_after} entries queued"), || {
            self.writer.queued() == queued_after
        });
        h
    }

    fn result(&self, h: Pending) -> Result<WriteResult, ApiError> {
        self.rt.block_on(h).unwrap()
    }

    /// `evident_batch_size_entries_count` from `/metrics`.
    fn batches(&self) -> u64 {
        let text = self.metrics.render(0);
        text.lines()
            .find_map(|l| l.strip_prefix("evident_batch_size_entries_count "))
            .map_or(0, |v| v.trim().parse().unwrap())
    }

    fn sizes_of_checkpoints(&self, log: &LogInfo) -> Vec<u64> {
        let mut store = SqliteStore::open(&self.path, false).unwrap();
        store
            .checkpoints(log.id)
            .unwrap()
            .iter()
            .map(|c| c.size)
            .collect()
    }

    fn verify(&self, log: &LogInfo, size: u64) {
        let mut store = SqliteStore::open(&self.path, false).unwrap();
        let keys = store.keys().unwrap();
        let verifiers =
            evident_core::note::Verifiers::new(keys.iter().map(|k| k.vkey.parse().unwrap()));
        let report = verify_log(&mut store, log, verifiers, &mut |_, _| {}).unwrap();
        assert!(report.valid, "{report:?}");
        assert_eq!(report.total_count, size);
    }
}

fn indices(r: &WriteResult) -> Vec<u64> {
    r.entries.iter().map(|e| e.index).collect()
}

#[test]
fn requests_queued_while_another_connection_holds_the_lock_join_one_batch() {
    let s = setup();
    let mut other = SqliteStore::open(&s.path, false).unwrap();
    let held = other.begin_append(s.a.id).unwrap();

    // The writer takes the first request and blocks on the lock with it.
    let first = s.send(&s.a, drafts("first", 3), 0);
    // While it waits: more for log a, and two for log b in between.
    let a2 = s.send(&s.a, drafts("a2", 4), 4);
    let b1 = s.send(&s.b, drafts("b1", 2), 6);
    let a3 = s.send(&s.a, drafts("a3", 1), 7);
    let b2 = s.send(&s.b, drafts("b2", 5), 12);
    let a4 = s.send(&s.a, drafts("a4", 2), 14);
    drop(held);

    let first = s.result(first).unwrap();
    let (a2, a3, a4) = (
        s.result(a2).unwrap(),
        s.result(a3).unwrap(),
        s.result(a4).unwrap(),
    );
    let (b1, b2) = (s.result(b1).unwrap(), s.result(b2).unwrap());

    // Each request gets its own entries, in the order it was queued.
    assert_eq!(indices(&first), vec![0, 1, 2]);
    assert_eq!(indices(&a2), vec![3, 4, 5, 6]);
    assert_eq!(indices(&a3), vec![7]);
    assert_eq!(indices(&a4), vec![8, 9]);
    for r in [&first, &a2, &a3, &a4] {
        assert_eq!(r.size, 10, "one batch: every request sees its size");
        assert!(r.entries.iter().all(|e| !e.duplicate));
    }
    assert_eq!(
        s.sizes_of_checkpoints(&s.a),
        vec![10],
        "one checkpoint covers the first request and those gathered after the lock"
    );
    // Log b's requests, taken off the queue while gathering for a, are
    // written next, in their order.
    assert_eq!(indices(&b1), vec![0, 1]);
    assert_eq!(indices(&b2), vec![2, 3, 4, 5, 6]);
    assert_eq!(s.sizes_of_checkpoints(&s.b), vec![7]);
    assert_eq!(s.batches(), 2);
    assert_eq!(s.writer.queued(), 0);
    s.verify(&s.a, 10);
    s.verify(&s.b, 7);
    s.writer.shutdown();
}

#[test]
fn a_bad_request_gathered_after_the_lock_fails_alone() {
    let s = setup();
    let mut other = SqliteStore::open(&s.path, false).unwrap();
    let held = other.begin_append(s.a.id).unwrap();

    let first = s.send(&s.a, drafts("first", 2), 0);
    let good = s.send(&s.a, drafts("good", 3), 3);
    // A parent at or after its own entry: this request's own fault.
    let bad = s.send(&s.a, vec![draft(r#"{"kind":"t.e","parent":100}"#)], 4);
    let last = s.send(&s.a, drafts("last", 1), 5);
    drop(held);

    let first = s.result(first).unwrap();
    let good = s.result(good).unwrap();
    let err = s.result(bad).unwrap_err();
    let last = s.result(last).unwrap();
    assert_eq!(err.code, "entry.bad_field", "{err:?}");
    assert_eq!(err.status.as_u16(), 400);
    assert_eq!(indices(&first), vec![0, 1]);
    assert_eq!(indices(&good), vec![2, 3, 4]);
    assert_eq!(indices(&last), vec![5]);
    // The gathered batch failed as a whole and its requests were retried
    // one by one: three batches stored, the bad one none.
    assert_eq!(s.sizes_of_checkpoints(&s.a), vec![2, 5, 6]);
    s.verify(&s.a, 6);
    s.writer.shutdown();
}

#[test]
fn a_request_id_repeated_across_gathered_requests_is_stored_once() {
    let s = setup();
    let mut other = SqliteStore::open(&s.path, false).unwrap();
    let held = other.begin_append(s.a.id).unwrap();

    let first = s.send(&s.a, drafts("same", 2), 0);
    let again = s.send(&s.a, drafts("same", 2), 2);
    drop(held);
    let first = s.result(first).unwrap();
    let again = s.result(again).unwrap();
    assert_eq!(indices(&first), vec![0, 1]);
    assert_eq!(indices(&again), vec![0, 1]);
    assert!(again.entries.iter().all(|e| e.duplicate));
    assert_eq!(s.sizes_of_checkpoints(&s.a), vec![2]);
    s.writer.shutdown();
}
