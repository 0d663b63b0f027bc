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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("evident-http")
        .build()
        .map_err(|e| bootstrap::StartError::Runtime(e.to_string()))?;
    runtime.block_on(bootstrap::run(config, bootstrap::shutdown_signal()))
}
