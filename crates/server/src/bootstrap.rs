//! Start-up and shutdown: prepare the data directory (initialising an empty
//! one, with a bootstrap admin credential), open the database, start the
//! writer and the background verifier, listen, and drain on a signal.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use evident_core::ErrorCode;
use evident_core::entry::{format_ts, origin};
use evident_store::datadir::{DataDir, check_head, write_private_file};
use evident_store::postgres::PgStore;
use evident_store::sqlite::SqliteStore;
use evident_store::{LogInfo, Store, StoreError};
use serde_json::json;

use crate::apikey::{self, Scope};
use crate::config::Config;
use crate::keycache::KeyCache;
use crate::metrics::Metrics;
use crate::pool::{Opener, Pool};
use crate::routes::router;
use crate::state::AppState;
use crate::system::{Event, SYSTEM_LOG, SYSTEM_TENANT, SystemLog};
use crate::verifier::VerifierHealth;
use crate::writer::{Writer, WriterSettings};

/// The bootstrap admin credential, inside the data directory.
pub const ADMIN_KEY_FILE: &str = "admin.key";

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory or database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listen address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The admin credential file.
    #[error("cannot write the admin credential {}: {source}", path.display())]
    AdminKey {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The async runtime.
    #[error("cannot start the runtime: {0}")]
    Runtime(String),
    /// The HTTP server failed while running.
    #[error("the HTTP server failed: {0}")]
    Serve(String),
}

impl ErrorCode for StartError {
    fn code(&self) -> &'static str {
        match self {
            StartError::Store(e) => e.code(),
            StartError::Bind { .. } => "server.bind_failed",
            StartError::AdminKey { .. } => "io.failed",
            StartError::Runtime(_) | StartError::Serve(_) => "server.failed",
        }
    }
}

/// JSON logs on standard output, filtered by `level` (an `EnvFilter`
/// directive; `RUST_LOG` is not read, `EVIDENT_LOG_LEVEL` is, through the
/// config). Safe to call twice.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .try_init();
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!(signal = "SIGINT", "shutting down"),
        () = term => tracing::info!(signal = "SIGTERM", "shutting down"),
    }
}

fn now() -> String {
    format_ts(evident_store::sequencer::system_clock())
}

/// Opens SQLite connections to `path` for the pool and the writer.
/// `cache_kib` replaces the default page cache size when given.
fn sqlite_opener(path: PathBuf, busy_timeout: Duration, cache_kib: Option<u32>) -> Opener {
    Arc::new(move || {
        let s = SqliteStore::open(&path, false)?;
        let conn = s.connection();
        conn.busy_timeout(busy_timeout)
            .map_err(evident_store::sqlite::map_err)?;
        if let Some(kib) = cache_kib {
            conn.pragma_update(None, "cache_size", -i64::from(kib))
                .map_err(evident_store::sqlite::map_err)?;
        }
        Ok(Box::new(s) as Box<dyn Store>)
    })
}

/// The writer's page cache. SQLite walks its whole page cache when a
/// write transaction ends, so a large one costs every commit: with the
/// default 32 MiB, ~12% of the writer's time under single-entry load went
/// to that walk (BENCHMARKS.md, issue 4). A batch touches a few dozen
/// pages and what it reads (request-id index pages, the head) is recent;
/// readers keep the large caches.
const WRITER_CACHE_KIB: u32 = 2048;

/// Opens PostgreSQL connections to `url` for the pool and the writer.
fn postgres_opener(url: String, lock_timeout: Duration) -> Opener {
    Arc::new(move || {
        let mut s = PgStore::connect(&url)?;
        s.set_lock_timeout(lock_timeout)?;
        Ok(Box::new(s) as Box<dyn Store>)
    })
}

/// Brings the data directory (or the PostgreSQL database) to where the
/// server can open it; returns whether it was initialised now.
///
/// A SQLite data directory is initialised when empty, as before. A
/// PostgreSQL database must be at this binary's migration head unless
/// `auto_migrate` is set; once migrated, an empty one is initialised with
/// the key file's key (made if missing). Nodes starting together race for
/// that: the loser finds it initialised and goes on.
fn prepare_database(dir: &DataDir, config: &Config) -> Result<bool, StartError> {
    let Some(url) = dir.database_url() else {
        if dir.is_initialized() {
            return Ok(false);
        }
        dir.init(&config.instance)?;
        return Ok(true);
    };
    let mut store = PgStore::connect(url)?;
    if config.auto_migrate {
        let applied = store.migrate_up()?;
        if !applied.is_empty() {
            tracing::info!(event = "migrated", versions = ?applied, "applied migrations");
        }
    }
    check_head(&mut store)?;
    if store.instance()?.is_some() {
        return Ok(false);
    }
    match dir.init(&config.instance) {
        Ok(_) => Ok(true),
        Err(StoreError::AlreadyInitialized { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Makes sure the system tenant, its event log, and (when no admin key is
/// in use yet) the bootstrap admin credential exist. Returns the system log
/// and the credential file if one was written now.
fn prepare_system(
    store: &mut dyn Store,
    instance: &str,
    data_dir: &Path,
) -> Result<(LogInfo, Option<PathBuf>), StartError> {
    if store.find_tenant(SYSTEM_TENANT)?.is_none() {
        store.create_tenant(SYSTEM_TENANT, &now())?;
    }
    let log = match store.find_log(SYSTEM_TENANT, SYSTEM_LOG)? {
        Some(l) => l,
        None => {
            let o = origin(instance, SYSTEM_TENANT, SYSTEM_LOG).map_err(StoreError::Entry)?;
            store.create_log(SYSTEM_TENANT, SYSTEM_LOG, &o, &now())?
        }
    };
    let path = data_dir.join(ADMIN_KEY_FILE);
    let has_admin = store.api_keys()?.iter().any(|k| {
        k.tenant == SYSTEM_TENANT && k.revoked_at.is_none() && k.scopes.iter().any(|s| s == "admin")
    });
    if has_admin || path.exists() {
        return Ok((log, None));
    }
    let issued = apikey::issue(
        store,
        SYSTEM_TENANT,
        &[Scope::Admin, Scope::Read, Scope::Verify],
        &now(),
    )?;
    write_private_file(&path, format!("{}\n", issued.token).as_bytes()).map_err(|source| {
        StartError::AdminKey {
            path: path.clone(),
            source,
        }
    })?;
    Ok((log, Some(path)))
}

/// Runs the server until `shutdown` resolves, then drains.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let dir = DataDir::new(&config.data_dir, config.key_file.clone())
        .with_database_url(config.database_url.clone());
    // Blocking database work, off the async context: the PostgreSQL
    // client runs a runtime of its own, which tokio refuses to block on
    // inside this one.
    let (
        initialised_now,
        signer,
        instance,
        head,
        system_log,
        admin_file,
        backend,
        open,
        writer_open,
        inline,
        writer_store,
        pause,
    ) = tokio::task::block_in_place(|| -> Result<_, StartError> {
        let initialised_now = prepare_database(&dir, &config)?;
        if dir.database_url().is_some() {
            // The admin credential is written here even when the
            // database lives elsewhere.
            std::fs::create_dir_all(dir.dir()).map_err(|source| StartError::AdminKey {
                path: dir.dir().to_owned(),
                source,
            })?;
        }
        let mut opened = dir.open()?;
        let signer = dir.signer(&mut opened)?;
        let instance = opened.instance.clone();
        let head = opened.store.migration_status()?.current;
        let (system_log, admin_file) = prepare_system(&mut *opened.store, &instance, dir.dir())?;
        let backend = opened.store.backend();
        let pause = opened.store.writes_pause()?;
        let busy = Duration::from_millis(config.db_busy_timeout_ms);
        let (open, writer_open, inline) = match dir.database_url() {
            Some(url) => {
                let open = postgres_opener(url.to_owned(), busy);
                (Arc::clone(&open), open, None)
            }
            None => (
                sqlite_opener(dir.db_path(), busy, None),
                sqlite_opener(dir.db_path(), busy, Some(WRITER_CACHE_KIB)),
                // No busy timeout inline: an async worker must never wait.
                Some(sqlite_opener(dir.db_path(), Duration::ZERO, None)),
            ),
        };
        let writer_store = writer_open()?;
        Ok((
            initialised_now,
            signer,
            instance,
            head,
            system_log,
            admin_file,
            backend,
            open,
            writer_open,
            inline,
            writer_store,
            pause,
        ))
    })?;
    let vkey = signer.verifier_key().to_string();
    let metrics = Arc::new(Metrics::new());
    let writer = Writer::start(
        writer_store,
        writer_open,
        signer,
        WriterSettings {
            batch_max_entries: config.batch_max_entries,
            max_queued_entries: config.batch_max_entries.saturating_mul(20).max(100_000),
        },
        Arc::clone(&metrics),
        system_log.id,
    );
    // Known before the first request: a server started during a pause
    // must not take one append.
    writer.pause().set(pause);
    metrics.set_writes_paused(writer.pause().is_paused());
    let pool = match &inline {
        // One inline connection per async worker is all that can be in use.
        Some(inline) => Pool::with_inline(
            open,
            config.read_connections,
            Arc::clone(inline),
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
        ),
        None => Pool::new(open, config.read_connections),
    };
    let system = SystemLog::new(system_log, Arc::clone(&writer), Arc::clone(&metrics));
    let verify_interval = Duration::from_secs(config.verify_interval_secs);
    let verify_full_every = config.verify_full_every;
    let verifier = Arc::new(VerifierHealth::new(verify_interval));
    let listen = config.listen;
    let webhooks = crate::webhooks::Webhooks::start(&config.webhooks, &instance);
    let sealer = match &config.seal_anchors {
        Some(loc) => Some((
            evident_store::anchor::Anchor::open(loc)
                .map_err(|e| StartError::Serve(e.to_string()))?,
            crate::sealer::parse_seal_time(&config.seal_time).map_err(StartError::Serve)?,
        )),
        None => None,
    };
    // Key lookups are kept only on the embedded database (its auth stamp).
    let sqlite_db = dir.database_url().is_none().then(|| dir.db_path());
    let keys = KeyCache::open(sqlite_db.as_deref());
    let state = AppState::new(
        config,
        instance.clone(),
        backend,
        vkey.clone(),
        pool,
        Arc::clone(&writer),
        Arc::clone(&metrics),
        system.clone(),
        verifier,
        webhooks,
        keys,
    );

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| StartError::Bind {
        addr: listen,
        source,
    })?;

    tracing::info!(
        event = "started",
        instance = %instance,
        version = crate::VERSION,
        git_hash = crate::GIT_HASH,
        backend,
        migration_head = head,
        listen = %local,
        data_dir = %dir.dir().display(),
        verifier_key = %vkey,
        initialised = initialised_now,
        admin_key_file = admin_file.as_ref().map(|p| p.display().to_string()),
        "evident serving"
    );
    system.record(Event {
        kind: "evident.server.started",
        actor: "server",
        action: "start",
        resource: &instance,
        outcome: "ok",
        data: json!({"version": crate::VERSION, "git_hash": crate::GIT_HASH, "listen": local.to_string()}),
    });

    let verifier_task = tokio::spawn(crate::verifier::run(
        state.clone(),
        verify_interval,
        verify_full_every,
    ));
    let pause_task = tokio::spawn(watch_pause(state.clone()));
    let sealer_task = sealer.map(|(anchor, at)| {
        tracing::info!(anchor = anchor.location(), seal_time = %state.config.seal_time, "daily sealer on");
        tokio::spawn(crate::sealer::run(state.clone(), anchor, at))
    });
    let app = router(state.clone());
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;

    // Every request in flight has been answered. Record the stop, then let
    // the writer finish what is queued (each batch with its checkpoint).
    verifier_task.abort();
    pause_task.abort();
    if let Some(t) = sealer_task {
        t.abort();
    }
    system.record(Event {
        kind: "evident.server.stopped",
        actor: "server",
        action: "stop",
        resource: &instance,
        outcome: if served.is_ok() { "ok" } else { "failed" },
        data: json!({}),
    });
    let w = Arc::clone(&writer);
    let _ = tokio::task::spawn_blocking(move || w.shutdown()).await;
    tracing::info!(
        event = "stopped",
        "evident stopped; every acknowledged entry is committed"
    );
    served.map_err(|e| StartError::Serve(e.to_string()))
}

/// Reads the writes pause every [`POLL_INTERVAL`](crate::pause::POLL_INTERVAL),
/// so a pause set by the CLI or another node reaches this one. A failed
/// read keeps the last known state: the writer's own health covers a
/// database that is gone.
async fn watch_pause(state: AppState) {
    let mut tick = tokio::time::interval(crate::pause::POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let s = state.clone();
        let changed = state
            .pool
            .with(move |store| {
                s.writer
                    .pause()
                    .refresh(store)
                    .map_err(crate::error::ApiError::from)
            })
            .await;
        match changed {
            Ok(Some(pause)) => {
                state.metrics.set_writes_paused(pause.is_some());
                match &pause {
                    Some(p) => {
                        tracing::warn!(event = "writes_paused", by = %p.by, reason = %p.reason, since = %p.since, "writes paused: appends answer 503 writes.paused")
                    }
                    None => tracing::info!(event = "writes_resumed", "writes resumed"),
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "cannot read the writes pause"),
        }
    }
}
