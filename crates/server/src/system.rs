//! The system event log: the `_system/events` log, tamper-evident like
//! any other, where the server records what an operator investigating an
//! incident needs: start and stop, authentication failures, denials, rate
//! limiting, failed verifications and refused writes.
//!
//! Events are written through the same writer as client entries, without
//! waiting: recording an event must never slow or fail the request that
//! caused it. So that a flood of bad requests cannot flood the log (or the
//! writer), repeats of the same event (kind and error code) for the same
//! key are recorded at most once per [`REPEAT_WINDOW`]; every occurrence
//! is still counted in the metrics, and an event that cannot be queued is
//! counted as dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use evident_core::entry::{Limits, format_ts, parse_entry};
use evident_store::LogInfo;
use serde_json::{Value, json};

use crate::metrics::Metrics;
use crate::writer::Writer;

pub use evident_core::entry::SYSTEM_TENANT;
/// The system event log's name inside [`SYSTEM_TENANT`].
pub const SYSTEM_LOG: &str = "events";
/// At most one event per kind and subject in this window.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(60);

/// One event to record.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// `evident.…` kind, e.g. `evident.auth.failed`.
    pub kind: &'static str,
    /// Who: an API key id, `anonymous`, or `server`.
    pub actor: &'a str,
    /// What was attempted (method and route, or the server's action).
    pub action: &'a str,
    /// On what (a log path, a tenant).
    pub resource: &'a str,
    /// How it ended: `denied`, `failed`, `ok`.
    pub outcome: &'a str,
    /// Details: error code, request id, counts.
    pub data: Value,
}

/// What makes two events repeats of each other: kind, actor and error
/// code (`data.code`).
type Repeat = (String, String, String);

/// Writes system events.
#[derive(Debug, Clone)]
pub struct SystemLog {
    log: LogInfo,
    writer: Arc<Writer>,
    metrics: Arc<Metrics>,
    recent: Arc<Mutex<HashMap<Repeat, Instant>>>,
}

impl SystemLog {
    /// Events go to `log` through `writer`.
    pub fn new(log: LogInfo, writer: Arc<Writer>, metrics: Arc<Metrics>) -> SystemLog {
        SystemLog {
            log,
            writer,
            metrics,
            recent: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The system log.
    pub fn log(&self) -> &LogInfo {
        &self.log
    }

    /// Records `event`, unless the same kind with the same `data.code` for
    /// the same actor was recorded within [`REPEAT_WINDOW`]. Another code
    /// is another event: a key refused as revoked and then for its
    /// suspended tenant leaves both in the log.
    pub fn record_throttled(&self, event: Event<'_>) {
        let code = event.data["code"].as_str().unwrap_or_default().to_owned();
        let key = (event.kind.to_owned(), event.actor.to_owned(), code);
        let now = Instant::now();
        if let Ok(mut recent) = self.recent.lock() {
            if recent
                .get(&key)
                .is_some_and(|t| now.duration_since(*t) < REPEAT_WINDOW)
            {
                return;
            }
            if recent.len() > 10_000 {
                recent.retain(|_, t| now.duration_since(*t) < REPEAT_WINDOW);
            }
            recent.insert(key, now);
        }
        self.record(event);
    }

    /// Records `event` now (queued to the writer; not awaited).
    pub fn record(&self, event: Event<'_>) {
        let line = json!({
            "kind": event.kind,
            "actor": event.actor,
            "action": event.action,
            "resource": event.resource,
            "outcome": event.outcome,
            "occurred_at": format_ts(evident_store::sequencer::system_clock()),
            "data": event.data,
        })
        .to_string();
        let limits = Limits {
            allow_reserved_kinds: true,
            ..Limits::default()
        };
        let draft = match parse_entry(line.as_bytes(), &limits) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(kind = event.kind, error = %e, "system event not recorded: it does not parse");
                self.metrics.system_event_dropped();
                return;
            }
        };
        if !self.writer.append_detached(self.log.clone(), vec![draft]) {
            self.metrics.system_event_dropped();
        }
    }
}
