//! What every handler shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use evident_core::entry::origin;
use evident_core::pyramid::PyramidCache;
use evident_store::{LogInfo, Store, StoreError};

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::limits::RateLimits;
use crate::metrics::Metrics;
use crate::pool::Pool;
use crate::system::SystemLog;
use crate::verifier::VerifierHealth;
use crate::writer::Writer;

/// Tile positions whose pyramids are kept: at ~16 KiB for a full tile,
/// at most ~16 MiB. Receipts for recent entries need about three per log
/// (the right edge at each tile level).
const PYRAMID_POSITIONS: usize = 1024;

/// Shared state, cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

/// The shared parts.
#[derive(Debug)]
pub struct Inner {
    /// Settings.
    pub config: Config,
    /// The instance name (origin prefix).
    pub instance: String,
    /// The storage backend's name.
    pub backend: &'static str,
    /// The signing key's verifier key.
    pub vkey: String,
    /// Read connections.
    pub pool: Arc<Pool>,
    /// API-key lookups kept while tenants and keys are unchanged.
    pub keys: crate::keycache::KeyCache,
    /// The writer thread.
    pub writer: Arc<Writer>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Per-key rate limits.
    pub limits: RateLimits,
    /// The `_system` event log.
    pub system: SystemLog,
    /// The background verifier's health.
    pub verifier: Arc<VerifierHealth>,
    /// Integrity event receivers.
    pub webhooks: crate::webhooks::Webhooks,
    /// Tile pyramids shared by the receipts of every log (namespace: the
    /// log's id): see `evident_core::pyramid`.
    pub pyramids: Arc<PyramidCache>,
    /// Logs by (tenant, name): logs are never renamed or removed, so a
    /// found log can be remembered for the process's life.
    logs: Mutex<HashMap<(String, String), LogInfo>>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Assembles the state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        instance: String,
        backend: &'static str,
        vkey: String,
        pool: Arc<Pool>,
        writer: Arc<Writer>,
        metrics: Arc<Metrics>,
        system: SystemLog,
        verifier: Arc<VerifierHealth>,
        webhooks: crate::webhooks::Webhooks,
        keys: crate::keycache::KeyCache,
    ) -> AppState {
        let limits = RateLimits::new(config.rate_limit_per_second, config.rate_limit_burst);
        AppState(Arc::new(Inner {
            config,
            instance,
            backend,
            vkey,
            pool,
            keys,
            writer,
            metrics,
            limits,
            system,
            verifier,
            webhooks,
            pyramids: Arc::new(PyramidCache::new(PYRAMID_POSITIONS)),
            logs: Mutex::new(HashMap::new()),
        }))
    }

    fn cached(&self, tenant: &str, name: &str) -> Option<LogInfo> {
        self.logs
            .lock()
            .ok()
            .and_then(|m| m.get(&(tenant.to_owned(), name.to_owned())).cloned())
    }

    fn remember(&self, log: &LogInfo) {
        if let Ok(mut m) = self.logs.lock() {
            m.insert((log.tenant.clone(), log.name.clone()), log.clone());
        }
    }

    /// The tenant's log `name`. A log of another tenant is never looked
    /// up: the tenant is part of the key, so it answers as a missing one.
    pub async fn log(&self, tenant: &str, name: &str) -> ApiResult<LogInfo> {
        check_name(&self.instance, tenant, name)?;
        if let Some(log) = self.cached(tenant, name) {
            return Ok(log);
        }
        let (t, n) = (tenant.to_owned(), name.to_owned());
        let found = self
            .pool
            .with(move |s| s.find_log(&t, &n).map_err(ApiError::from))
            .await?;
        let log = found.ok_or_else(|| ApiError::log_not_found(name))?;
        self.remember(&log);
        Ok(log)
    }

    /// The tenant's log `name`, created on first append.
    pub async fn log_or_create(&self, tenant: &str, name: &str) -> ApiResult<LogInfo> {
        let origin = check_name(&self.instance, tenant, name)?;
        if let Some(log) = self.cached(tenant, name) {
            return Ok(log);
        }
        let (t, n) = (tenant.to_owned(), name.to_owned());
        let log = self
            .pool
            .with(move |s| find_or_create(s, &t, &n, &origin).map_err(ApiError::from))
            .await?;
        self.remember(&log);
        Ok(log)
    }
}

fn find_or_create(
    s: &mut dyn Store,
    tenant: &str,
    name: &str,
    origin: &str,
) -> Result<LogInfo, StoreError> {
    if let Some(log) = s.find_log(tenant, name)? {
        return Ok(log);
    }
    let now = evident_core::entry::format_ts(evident_store::sequencer::system_clock());
    match s.create_log(tenant, name, origin, &now) {
        Ok(log) => Ok(log),
        // Two requests raced to create it: the other one won.
        Err(e) => s.find_log(tenant, name)?.ok_or(e),
    }
}

/// Checks a log name and returns the log's origin.
fn check_name(instance: &str, tenant: &str, name: &str) -> ApiResult<String> {
    origin(instance, tenant, name)
        .map_err(|e| ApiError::bad_request("log.bad_name", format!("bad log name {name:?}: {e}")))
}
