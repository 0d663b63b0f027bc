//! Read connections for request handlers.
//!
//! The `Store` trait is synchronous (SQLite and the `postgres` crate both
//! block), so every database call runs on tokio's blocking pool, on a
//! connection taken from here and put back afterwards. A semaphore bounds
//! how many run at once; a connection that failed with `db.unavailable` is
//! dropped rather than put back, so the next call opens a fresh one and the
//! server recovers by itself when the database comes back.
//!
//! Hand-offs to the blocking pool are not free: in this VM the futex
//! wake-ups and context switches of one `spawn_blocking` round trip cost
//! several times what an indexed SQLite read does (BENCHMARKS.md, issue 4:
//! ~30% of a single append's CPU went to authenticating through it). So
//! a pool may also hold *inline* connections, for short indexed reads that
//! run on the async worker itself ([`Pool::quick`]). Only backends whose
//! reads never wait on a network or another writer qualify: SQLite in WAL
//! mode, whose readers never wait for the writer. Those connections have
//! no busy timeout, so the rare moment SQLite would make a reader wait
//! (WAL recovery, say) fails at once and the call goes the blocking way
//! instead of stalling a worker. PostgreSQL, a network round trip, has
//! none, and its quick calls take the blocking path.
//!
//! Work that must not take a core from the writer or the request handlers
//! (the background verifier, which re-hashes every appended row) runs on
//! a thread of the pool's own at a lower CPU priority ([`Pool::background`]):
//! at the same priority, a verification pass slowed 1,000-entry batch
//! appends by a third while it ran (BENCHMARKS.md, issue 4).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};

use evident_store::{Store, StoreError};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Opens one more connection to the database.
pub type Opener = Arc<dyn Fn() -> Result<Box<dyn Store>, StoreError> + Send + Sync>;

/// A bounded set of store connections.
pub struct Pool {
    idle: Mutex<Vec<Box<dyn Store>>>,
    open: Opener,
    permits: Semaphore,
    inline: Option<Inline>,
    /// The background thread's queue, started by the first background call.
    background: OnceLock<mpsc::Sender<Job>>,
}

/// A call handed to the background thread.
type Job = Box<dyn FnOnce() + Send>;

/// The background thread's niceness: it still gets about a tenth of a
/// core next to each busy thread at the default priority (so its lag
/// stays bounded under a sustained load), and a core that is idle.
const BACKGROUND_NICE: i32 = 10;

/// Connections used on the async workers themselves.
struct Inline {
    idle: Mutex<Vec<Box<dyn Store>>>,
    open: Opener,
    /// Most connections kept: one per async worker is all that can be in
    /// use at once.
    max: usize,
    /// Connections open (idle or in use).
    count: AtomicUsize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("available", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool of at most `size` connections opened by `open`.
    pub fn new(open: Opener, size: usize) -> Arc<Pool> {
        Arc::new(Pool {
            idle: Mutex::new(Vec::new()),
            open,
            permits: Semaphore::new(size.max(1)),
            inline: None,
            background: OnceLock::new(),
        })
    }

    /// A pool that also runs [`Pool::quick`] calls inline, on at most
    /// `max` connections from `open`. `open` must make connections whose
    /// reads never wait (see the module's doc): SQLite with no busy
    /// timeout.
    pub fn with_inline(open: Opener, size: usize, inline: Opener, max: usize) -> Arc<Pool> {
        Arc::new(Pool {
            idle: Mutex::new(Vec::new()),
            open,
            permits: Semaphore::new(size.max(1)),
            inline: Some(Inline {
                idle: Mutex::new(Vec::new()),
                open: inline,
                max: max.max(1),
                count: AtomicUsize::new(0),
            }),
            background: OnceLock::new(),
        })
    }

    /// Runs `f`, a short indexed read, on the calling async worker when
    /// the pool has inline connections, and on the blocking pool
    /// otherwise. `f` may run twice: when the inline attempt finds the
    /// database busy or unavailable it is tried again the blocking way,
    /// which waits and reports as [`Pool::with`] does. So `f` must only
    /// read.
    pub async fn quick<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: Fn(&mut dyn Store) -> Result<T, ApiError> + Send + 'static,
    {
        if let Some(inline) = &self.inline {
            if let Some(out) = inline.run(&f) {
                return out;
            }
            self.add_inline();
        }
        self.with(move |s| f(s)).await
    }

    /// One of the `size` slots a call holds while it runs.
    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        self.permits
            .acquire()
            .await
            .map_err(|_| ApiError::internal("the connection pool is closed"))
    }

    /// Runs `f` on a connection, on the blocking pool.
    pub async fn with<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Store) -> Result<T, ApiError> + Send + 'static,
    {
        let _permit = self.permit().await?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || pool.run(f))
            .await
            .map_err(|e| ApiError::internal(format!("database task failed: {e}")))?
    }

    /// Runs `f` on a connection, on the pool's background thread, which
    /// runs one call at a time at a lower CPU priority (niceness
    /// [`BACKGROUND_NICE`]): for long reads that must yield the CPU to
    /// appends and requests.
    pub async fn background<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Store) -> Result<T, ApiError> + Send + 'static,
    {
        let _permit = self.permit().await?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let pool = Arc::clone(self);
        let job: Job = Box::new(move || {
            let _ = tx.send(pool.run(f));
        });
        let queue = self.background.get_or_init(start_background);
        queue
            .send(job)
            .map_err(|_| ApiError::internal("the background thread stopped"))?;
        rx.await
            .map_err(|_| ApiError::internal("the background thread stopped"))?
    }

    /// Opens one more inline connection, on the blocking pool: opening
    /// reads the schema and may wait on a lock, which an async worker
    /// must not. Until it is there, quick reads take the blocking way.
    fn add_inline(self: &Arc<Self>) {
        let Some(inline) = &self.inline else { return };
        if inline.count.fetch_add(1, Ordering::AcqRel) >= inline.max {
            inline.count.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let Some(inline) = &pool.inline else { return };
            match (inline.open)() {
                Ok(conn) => {
                    if let Ok(mut idle) = inline.idle.lock() {
                        idle.push(conn);
                    }
                }
                Err(_) => {
                    inline.count.fetch_sub(1, Ordering::AcqRel);
                }
            }
        });
    }

    fn run<T>(&self, f: impl FnOnce(&mut dyn Store) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let taken = self.idle.lock().ok().and_then(|mut v| v.pop());
        let mut conn = match taken {
            Some(c) => c,
            None => (self.open)()?,
        };
        let out = f(conn.as_mut());
        let broken = matches!(&out, Err(e) if e.code == "db.unavailable");
        if !broken && let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
        out
    }
}

/// Starts the background thread. It ends when the pool, which holds the
/// queue, is dropped. Should the priority not be lowered (a platform
/// without niceness), the work runs all the same, at the default one.
fn start_background() -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    let started = std::thread::Builder::new()
        .name("evident-background".into())
        .spawn(move || {
            lower_priority();
            for job in rx {
                job();
            }
        });
    if let Err(e) = started {
        tracing::error!(error = %e, "cannot start the background thread");
    }
    tx
}

/// Sets the calling thread's niceness to [`BACKGROUND_NICE`]. On Linux a
/// thread has a niceness of its own, so this leaves the process's other
/// threads as they are.
fn lower_priority() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    // The crate maps 0..=99 onto niceness 19..=-20; 22 is niceness 10
    // (checked by a test against /proc).
    let value = ThreadPriorityValue::try_from(22u8);
    let set = value.map_err(|e| e.to_string()).and_then(|v| {
        set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Crossplatform(v),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other),
        )
        .map_err(|e| e.to_string())
    });
    if let Err(e) = set {
        tracing::warn!(error = %e, nice = BACKGROUND_NICE, "cannot lower the background thread's priority");
    }
}

impl Inline {
    /// `None` when the call should go the blocking way instead: no idle
    /// connection (all in use, or not opened yet), or the database was
    /// busy or unavailable.
    fn run<T>(
        &self,
        f: &impl Fn(&mut dyn Store) -> Result<T, ApiError>,
    ) -> Option<Result<T, ApiError>> {
        let mut conn = self.idle.lock().ok().and_then(|mut v| v.pop())?;
        let out = f(conn.as_mut());
        if matches!(&out, Err(e) if e.code == "db.unavailable") {
            // Dropped: a fresh one is opened later, as the pool does.
            self.count.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use evident_store::sqlite::SqliteStore;

    use super::*;

    fn opener(path: &Path, busy: Duration, opened: Arc<AtomicUsize>) -> Opener {
        let path = path.to_owned();
        Arc::new(move || {
            opened.fetch_add(1, Ordering::SeqCst);
            let s = SqliteStore::open(&path, false)?;
            s.connection().busy_timeout(busy).unwrap();
            Ok(Box::new(s) as Box<dyn Store>)
        })
    }

    fn database() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evident.db");
        let mut s = SqliteStore::open(&path, true).unwrap();
        s.migrate_up().unwrap();
        (dir, path)
    }

    /// The thread a read ran on, and what it read.
    fn read_logs(s: &mut dyn Store) -> Result<(std::thread::ThreadId, usize), ApiError> {
        let logs = s.logs().map_err(ApiError::from)?;
        Ok((std::thread::current().id(), logs.len()))
    }

    async fn wait_for_inline(pool: &Pool) {
        for _ in 0..500 {
            let ready = pool.inline.as_ref().unwrap().idle.lock().unwrap().len();
            if ready > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no inline connection was opened");
    }

    /// The calling thread's name and niceness, as the kernel reports them.
    fn thread_nice() -> (String, i32) {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let (_, rest) = stat.rsplit_once(") ").unwrap();
        // Field 19 of stat(5); `rest` begins with field 3.
        let nice = rest.split(' ').nth(16).unwrap().parse().unwrap();
        let name = std::thread::current().name().unwrap_or("").to_owned();
        (name, nice)
    }

    /// Background calls run one thread, at niceness 10, on pooled
    /// connections; the other calls stay at the process's priority.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "current_thread")]
    async fn background_calls_run_at_a_lower_priority() {
        let (_dir, path) = database();
        let opened = Arc::new(AtomicUsize::new(0));
        let pool = Pool::new(
            opener(&path, Duration::from_secs(5), Arc::clone(&opened)),
            2,
        );
        let (name, nice) = pool.background(|_| Ok(thread_nice())).await.unwrap();
        assert_eq!(name, "evident-background");
        assert_eq!(nice, BACKGROUND_NICE);
        let (first, n) = pool.background(read_logs).await.unwrap();
        assert_eq!(n, 0);
        let (again, _) = pool.background(read_logs).await.unwrap();
        assert_eq!(first, again);
        assert_eq!(opened.load(Ordering::SeqCst), 1);
        let (_, nice) = pool.with(|_| Ok(thread_nice())).await.unwrap();
        assert_eq!(nice, thread_nice().1);
        assert_ne!(nice, BACKGROUND_NICE);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn quick_reads_run_on_the_calling_worker() {
        let (_dir, path) = database();
        let (blocking, inline) = (Arc::default(), Arc::default());
        let pool = Pool::with_inline(
            opener(&path, Duration::from_secs(5), Arc::clone(&blocking)),
            2,
            opener(&path, Duration::ZERO, Arc::clone(&inline)),
            1,
        );
        // The first read hands off while the inline connection is opened.
        let (thread, _) = pool.quick(read_logs).await.unwrap();
        assert_ne!(thread, std::thread::current().id());
        wait_for_inline(&pool).await;
        for _ in 0..3 {
            let (thread, n) = pool.quick(read_logs).await.unwrap();
            assert_eq!(thread, std::thread::current().id());
            assert_eq!(n, 0);
        }
        // One inline connection, reused.
        assert_eq!(inline.load(Ordering::SeqCst), 1);
        assert_eq!(blocking.load(Ordering::SeqCst), 1);
        // `with` still hands off.
        let (thread, _) = pool.with(read_logs).await.unwrap();
        assert_ne!(thread, std::thread::current().id());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn without_inline_connections_quick_reads_hand_off() {
        let (_dir, path) = database();
        let opened = Arc::default();
        let pool = Pool::new(opener(&path, Duration::from_secs(5), opened), 1);
        let (thread, _) = pool.quick(read_logs).await.unwrap();
        assert_ne!(thread, std::thread::current().id());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_busy_inline_read_is_retried_the_blocking_way() {
        let (_dir, path) = database();
        let (blocking, inline) = (Arc::default(), Arc::default());
        let pool = Pool::with_inline(
            opener(&path, Duration::from_secs(5), Arc::clone(&blocking)),
            1,
            opener(&path, Duration::ZERO, Arc::clone(&inline)),
            1,
        );
        pool.quick(read_logs).await.unwrap();
        wait_for_inline(&pool).await;
        // What SQLite answers an inline reader that would have to wait
        // (it has no busy timeout): SQLITE_BUSY, mapped to db.unavailable.
        let caller = std::thread::current().id();
        let attempts = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&attempts);
        let (thread, n) = pool
            .quick(move |s| {
                seen.fetch_add(1, Ordering::SeqCst);
                if std::thread::current().id() == caller {
                    return Err(ApiError::from(evident_store::StoreError::Unavailable(
                        "database is locked".into(),
                    )));
                }
                read_logs(s)
            })
            .await
            .unwrap();
        assert_ne!(thread, caller);
        assert_eq!(n, 0);
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        // The failed inline connection was dropped and a new one opened.
        wait_for_inline(&pool).await;
        assert_eq!(inline.load(Ordering::SeqCst), 2);
        let (thread, _) = pool.quick(read_logs).await.unwrap();
        assert_eq!(thread, caller);
    }
}
