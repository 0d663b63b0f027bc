//! Evident's HTTP service: the API, tenants and API keys, rate limits, the
//! batching writer, the background verifier, metrics and health.
//!
//! [`serve`] runs the server until SIGTERM or SIGINT: it stops accepting,
//! finishes the requests in flight and every queued batch (each with its
//! signed checkpoint), records the stop in the system log and returns.
#![forbid(unsafe_code)]

pub mod apikey;
pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod error;
pub mod keycache;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod pause;
pub mod pool;
pub mod routes;
pub mod sealer;
pub mod state;
pub mod system;
pub mod verifier;
pub mod webhooks;
pub mod writer;

pub use config::Config;
pub use error::ApiError;

/// The version and commit, for logs and `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit the binary was built from ("unknown" outside git).
pub const GIT_HASH: &str = env!("EVIDENT_GIT_HASH");

/// Runs the server on a new tokio runtime until a shutdown signal.
pub fn serve(config: Config) -> Result<(), bootstrap::StartError> {
    bootstrap::init_logging(&config.log_level);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // One core is the writer thread's under load: HTTP workers on every
    // core made them contend with it (batches of 1,000 on two cores: 4%
    // more entries/s and a lower p99 with one worker; single appends the
    // same). TOKIO_WORKER_THREADS still decides when set.
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        builder.worker_threads(cores.saturating_sub(1).max(1));
    }
    let runtime = builder
        .enable_all()
        .thread_name("evident-http")
        .build()
        .map_err(|e| bootstrap::StartError::Runtime(e.to_string()))?;
    runtime.block_on(bootstrap::run(config, bootstrap::shutdown_signal()))
}
