//! The writer: one thread that owns the write connection and the
//! sequencer, and turns concurrent append requests into batches (group
//! commit).
//!
//! Requests queue here; the thread takes everything queued (up to
//! `batch_max_entries`), groups it by log, and appends each group as one
//! batch: one transaction and one signed checkpoint for many requests.
//! Once a group's log lock is held, the batch also takes that log's
//! requests that queued while the lock was awaited (another node or
//! process holding it), so nodes sharing a log keep large batches. A
//! request is answered only after its batch committed, so every 2xx is
//! durable. When a group fails for a reason that is one request's own (a
//! `parent` that is not earlier, say), its requests are retried one by one
//! so the others are not refused with it. When the database fails, the
//! connection is dropped, every waiting request gets `db.unavailable`, and
//! the thread probes the database each second until a write lock can be
//! taken again.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use evident_core::entry::EntryDraft;
use evident_core::note::NoteSigner;
use evident_store::{Appended, LogId, LogInfo, Sequencer, Store, StoreError};
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::pause::PauseState;
use crate::pool::Opener;

/// What a committed request gets back.
#[derive(Debug, Clone)]
pub struct WriteResult {
    /// One result per entry of the request, in order.
    pub entries: Vec<Appended>,
    /// The log's size after the batch.
    pub size: u64,
    /// The batch's drafts, handed back so that the request's thread frees
    /// them: dropping a 2,000-entry batch's drafts took ~5% of the
    /// writer's time, and the writer's time bounds the rate of appends.
    _spent: Vec<EntryDraft>,
}

type Reply = oneshot::Sender<Result<WriteResult, ApiError>>;

struct Job {
    log: LogInfo,
    drafts: Vec<EntryDraft>,
    reply: Option<Reply>,
}

/// The writer's health, read by `/ready`.
#[derive(Debug, Default)]
pub struct WriterHealth {
    db_ok: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// Microseconds since the epoch of the thread's last sign of life.
    heartbeat: AtomicI64,
    stopped: AtomicBool,
}

impl WriterHealth {
    /// Whether the last write (or probe) succeeded.
    pub fn db_ok(&self) -> bool {
        self.db_ok.load(Ordering::Acquire)
    }

    /// The last database error, while unhealthy.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|g| g.clone())
    }

    /// Seconds since the thread was last seen alive.
    pub fn heartbeat_age(&self) -> f64 {
        let then = self.heartbeat.load(Ordering::Acquire);
        (evident_store::sequencer::system_clock() - then) as f64 / 1e6
    }

    /// Whether the thread has ended.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    fn beat(&self) {
        self.heartbeat
            .store(evident_store::sequencer::system_clock(), Ordering::Release);
    }

    fn set(&self, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.db_ok.store(true, Ordering::Release);
                if let Ok(mut g) = self.last_error.lock() {
                    *g = None;
                }
            }
            Err(e) => {
                self.db_ok.store(false, Ordering::Release);
                if let Ok(mut g) = self.last_error.lock() {
                    *g = Some(e);
                }
            }
        }
    }
}

/// Settings of the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    /// Most entries per batch (a single larger request is still one batch).
    pub batch_max_entries: usize,
    /// Most entries waiting; beyond it appends answer 503
    /// `writer.overloaded` rather than queue without bound.
    pub max_queued_entries: usize,
}

/// Handle to the writer thread.
pub struct Writer {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    queued: Arc<AtomicUsize>,
    settings: WriterSettings,
    health: Arc<WriterHealth>,
    pause: Arc<PauseState>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the thread. `store` is the first write connection (already
    /// open, so start-up fails early when it cannot be); `open` makes new
    /// ones after a failure. `probe_log` is a log whose write lock the
    /// thread takes (and releases) to tell when the database is back.
    pub fn start(
        store: Box<dyn Store>,
        open: Opener,
        signer: NoteSigner,
        settings: WriterSettings,
        metrics: Arc<Metrics>,
        probe_log: LogId,
    ) -> Arc<Writer> {
        let (tx, rx) = mpsc::channel();
        let health = Arc::new(WriterHealth::default());
        health.set(Ok(()));
        health.beat();
        let queued = Arc::new(AtomicUsize::new(0));
        let mut worker = Worker {
            store: Some(store),
            open,
            seq: Sequencer::new(signer),
            health: Arc::clone(&health),
            queued: Arc::clone(&queued),
            metrics,
            batch_max: settings.batch_max_entries,
            probe_log,
        };
        let thread = std::thread::Builder::new()
            .name("evident-writer".into())
            .spawn(move || worker.run(rx));
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                health.set(Err(format!("cannot start the writer thread: {e}")));
                health.stopped.store(true, Ordering::Release);
                None
            }
        };
        Arc::new(Writer {
            tx: Mutex::new(Some(tx)),
            queued,
            settings,
            health,
            pause: Arc::new(PauseState::default()),
            thread: Mutex::new(thread),
        })
    }

    /// The writer's health.
    pub fn health(&self) -> &WriterHealth {
        &self.health
    }

    /// The writes pause: client appends are refused while it is on.
    pub fn pause(&self) -> &PauseState {
        &self.pause
    }

    /// Entries waiting to be written.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    fn enqueue(&self, job: Job) -> Result<(), ApiError> {
        let n = job.drafts.len();
        let before = self.queued.fetch_add(n, Ordering::AcqRel);
        if before > 0 && before + n > self.settings.max_queued_entries {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "writer.overloaded",
                format!("{before} entries are waiting to be written; retry shortly"),
            )
            .retry_after(1));
        }
        let sent = self
            .tx
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|tx| tx.send(job).is_ok()));
        if sent == Some(true) {
            Ok(())
        } else {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "server.shutting_down",
                "the server is shutting down and takes no more writes",
            ))
        }
    }

    /// Appends `drafts` to `log` and waits for the commit; 503
    /// `writes.paused` while writes are paused.
    pub async fn append(
        &self,
        log: LogInfo,
        drafts: Vec<EntryDraft>,
    ) -> Result<WriteResult, ApiError> {
        self.pause.check()?;
        let (reply, rx) = oneshot::channel();
        self.enqueue(Job {
            log,
            drafts,
            reply: Some(reply),
        })?;
        rx.await
            .map_err(|_| ApiError::internal("the writer stopped before answering"))?
    }

    /// Appends without waiting (system events). Returns false when the
    /// writer refused it (overloaded or stopping). A writes pause does not
    /// stop these: the system log records the incident, pause included.
    pub fn append_detached(&self, log: LogInfo, drafts: Vec<EntryDraft>) -> bool {
        self.enqueue(Job {
            log,
            drafts,
            reply: None,
        })
        .is_ok()
    }

    /// Stops taking writes, lets the thread finish what is queued (each
    /// batch with its signed checkpoint) and waits for it.
    pub fn shutdown(&self) {
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
        let handle = self.thread.lock().ok().and_then(|mut g| g.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

struct Worker {
    store: Option<Box<dyn Store>>,
    open: Opener,
    seq: Sequencer,
    health: Arc<WriterHealth>,
    queued: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    batch_max: usize,
    probe_log: LogId,
}

impl Worker {
    fn run(&mut self, rx: mpsc::Receiver<Job>) {
        // Jobs taken off the channel while gathering for another log's
        // batch: they go first next round, in the order they came.
        let mut held: VecDeque<Job> = VecDeque::new();
        loop {
            self.health.beat();
            let first = match held.pop_front() {
                Some(job) => job,
                None => match rx.recv_timeout(Duration::from_secs(1)) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) => {
                        if !self.health.db_ok() {
                            self.probe();
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            let mut n = first.drafts.len();
            let mut jobs = vec![first];
            while n < self.batch_max {
                let Some(job) = held.pop_front().or_else(|| rx.try_recv().ok()) else {
                    break;
                };
                n += job.drafts.len();
                jobs.push(job);
            }
            self.queued.fetch_sub(n, Ordering::AcqRel);
            for group in group_by_log(jobs) {
                self.write_group(group, &rx, &mut held);
            }
        }
        self.health.stopped.store(true, Ordering::Release);
    }

    /// Tries to take the write lock, to learn whether the database is back.
    fn probe(&mut self) {
        let probe_log = self.probe_log;
        let result = self.connection().and_then(|s| {
            let tx = s.begin_append(probe_log)?;
            drop(tx);
            Ok(())
        });
        self.record(
            result.as_ref().map(|_| ()).map_err(ToString::to_string),
            result.err(),
        );
    }

    fn connection(&mut self) -> Result<&mut Box<dyn Store>, StoreError> {
        if self.store.is_none() {
            self.store = Some((self.open)()?);
        }
        self.store
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("no connection".into()))
    }

    fn record(&mut self, state: Result<(), String>, err: Option<StoreError>) {
        if let Some(StoreError::Unavailable(_)) = err {
            self.store = None;
        }
        let was_ok = self.health.db_ok();
        match &state {
            Ok(()) if !was_ok => tracing::info!("database writable again"),
            Err(e) if was_ok => {
                tracing::error!(error = %e, "database write failed; appends answer 503 until it recovers")
            }
            _ => {}
        }
        self.metrics.set_db_up(state.is_ok());
        self.health.set(state);
    }

    /// Appends one log's jobs as one batch. Once the log's lock is held,
    /// the batch also takes that log's jobs that queued meanwhile (up to
    /// `batch_max` entries in all): while another node or process holds
    /// the lock, requests pile up here, and sealing them now rather than
    /// after another turn on the lock is what keeps batches large when
    /// several nodes share a log.
    fn write_group(
        &mut self,
        mut jobs: Vec<Job>,
        rx: &mpsc::Receiver<Job>,
        held: &mut VecDeque<Job>,
    ) {
        let log = jobs[0].log.clone();
        let mut sizes: Vec<usize> = jobs.iter().map(|j| j.drafts.len()).collect();
        let mut drafts: Vec<EntryDraft> = if jobs.len() == 1 {
            std::mem::take(&mut jobs[0].drafts)
        } else {
            jobs.iter_mut()
                .flat_map(|j| std::mem::take(&mut j.drafts))
                .collect()
        };
        let started = Instant::now();
        let mut gathered: Vec<Job> = Vec::new();
        let mut more = {
            let queued = Arc::clone(&self.queued);
            let batch_max = self.batch_max;
            let gathered = &mut gathered;
            let sizes = &mut sizes;
            move |drafts: &mut Vec<EntryDraft>| {
                let before = drafts.len();
                gather(log.id, rx, held, batch_max, drafts, gathered, sizes);
                queued.fetch_sub(drafts.len() - before, Ordering::AcqRel);
            }
        };
        let result = self.append_more(&log, &mut drafts, &mut more);
        jobs.append(&mut gathered);
        match result {
            Ok(out) => {
                self.metrics
                    .observe_batch(out.entries.len(), out.appended(), started.elapsed());
                let mut rest = out.entries.into_iter();
                let last = jobs.len() - 1;
                for (k, (job, n)) in jobs.into_iter().zip(sizes).enumerate() {
                    let entries: Vec<Appended> = rest.by_ref().take(n).collect();
                    let spent = if k == last {
                        std::mem::take(&mut drafts)
                    } else {
                        Vec::new()
                    };
                    reply(
                        job.reply,
                        Ok(WriteResult {
                            entries,
                            size: out.size,
                            _spent: spent,
                        }),
                    );
                }
            }
            Err(e) if jobs.len() > 1 && !matches!(e, StoreError::Unavailable(_)) => {
                // One request's own fault must not fail the others: retry
                // each alone, so each gets its own answer.
                let mut offset = 0;
                for (job, n) in jobs.into_iter().zip(sizes) {
                    let mine = &drafts[offset..offset + n];
                    offset += n;
                    let res = self.append(&log, mine).map(|out| {
                        self.metrics.observe_batch(
                            out.entries.len(),
                            out.appended(),
                            Duration::ZERO,
                        );
                        WriteResult {
                            entries: out.entries,
                            size: out.size,
                            _spent: Vec::new(),
                        }
                    });
                    reply(job.reply, res.map_err(ApiError::from));
                }
            }
            Err(e) => {
                let api = ApiError::from(e);
                for job in jobs {
                    reply(job.reply, Err(api.clone()));
                }
            }
        }
    }

    /// One batch of `drafts` alone.
    fn append(
        &mut self,
        log: &LogInfo,
        drafts: &[EntryDraft],
    ) -> Result<evident_store::BatchOutcome, StoreError> {
        self.with_store(log, |seq, store| seq.append(store, log, drafts))
    }

    /// One batch of `drafts` and whatever `more` adds once the lock is held.
    fn append_more(
        &mut self,
        log: &LogInfo,
        drafts: &mut Vec<EntryDraft>,
        more: &mut dyn FnMut(&mut Vec<EntryDraft>),
    ) -> Result<evident_store::BatchOutcome, StoreError> {
        self.with_store(log, |seq, store| {
            seq.append_with_more(store, log, drafts, more)
        })
    }

    /// Runs one batch on the write connection (opening one if the last
    /// failed) and records the database's health from its outcome.
    fn with_store(
        &mut self,
        log: &LogInfo,
        batch: impl FnOnce(
            &mut Sequencer,
            &mut dyn Store,
        ) -> Result<evident_store::BatchOutcome, StoreError>,
    ) -> Result<evident_store::BatchOutcome, StoreError> {
        let result = match self.connection() {
            Ok(_) => match self.store.as_deref_mut() {
                Some(s) => batch(&mut self.seq, s),
                None => Err(StoreError::Unavailable("no connection".into())),
            },
            Err(e) => Err(e),
        };
        match &result {
            Ok(_) => self.record(Ok(()), None),
            Err(StoreError::Unavailable(msg)) => {
                let msg = msg.clone();
                self.record(Err(msg.clone()), Some(StoreError::Unavailable(msg)));
            }
            Err(e) => {
                if e.to_string().contains("append-only")
                    || matches!(e, StoreError::Inconsistent { .. })
                {
                    tracing::error!(log = %log.path(), error = %e, "append refused: the stored log disagrees with its own signed head");
                }
            }
        }
        result
    }
}

/// Moves `log`'s waiting jobs into the batch being sealed, while it holds
/// fewer than `batch_max` drafts: first those in `held` (they came
/// before anything still in the channel), then the channel's. Jobs of
/// other logs met in the channel are kept in `held`, in order, for the
/// next round; at most `batch_max` entries of them are taken per call, so
/// gathering stays bounded when other logs are busy.
fn gather(
    log: LogId,
    rx: &mpsc::Receiver<Job>,
    held: &mut VecDeque<Job>,
    batch_max: usize,
    drafts: &mut Vec<EntryDraft>,
    gathered: &mut Vec<Job>,
    sizes: &mut Vec<usize>,
) {
    let mut take = |mut job: Job, drafts: &mut Vec<EntryDraft>| {
        sizes.push(job.drafts.len());
        drafts.append(&mut job.drafts);
        gathered.push(job);
    };
    while drafts.len() < batch_max {
        let Some(at) = held.iter().position(|j| j.log.id == log) else {
            break;
        };
        if let Some(job) = held.remove(at) {
            take(job, drafts);
        }
    }
    let mut others = 0;
    while drafts.len() < batch_max && others < batch_max {
        let Ok(job) = rx.try_recv() else { break };
        if job.log.id == log {
            take(job, drafts);
        } else {
            others += job.drafts.len();
            held.push_back(job);
        }
    }
}

fn reply(to: Option<Reply>, result: Result<WriteResult, ApiError>) {
    if let Some(tx) = to {
        // The client may have gone; the entries are stored either way and a
        // retry with the same request_id gets them back.
        let _ = tx.send(result);
    }
}

/// Splits jobs by log, keeping each log's requests in arrival order.
fn group_by_log(jobs: Vec<Job>) -> Vec<Vec<Job>> {
    let mut order: Vec<LogId> = Vec::new();
    let mut groups: HashMap<LogId, Vec<Job>> = HashMap::new();
    for job in jobs {
        let id = job.log.id;
        groups
            .entry(id)
            .or_insert_with(|| {
                order.push(id);
                Vec::new()
            })
            .push(job);
    }
    order
        .into_iter()
        .filter_map(|id| groups.remove(&id))
        .collect()
}
