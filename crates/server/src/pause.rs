//! The writes pause, as this server knows it.
//!
//! The pause lives in the database ([`Store::writes_pause`]) so that an
//! operator's `evident writes pause` on the data directory and an admin
//! call to any node reach every node. Reading it on every append would
//! put a query in the hot path, so each server reads it once per
//! [`POLL_INTERVAL`] instead and keeps the answer here; an append checks
//! only this copy. A pause made through this server's own admin endpoint
//! is applied here at once as well.
//!
//! Only client appends are refused. The system event log goes on, so the
//! pause itself, and the appends refused meanwhile, are on record.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use evident_store::{Store, WritesPause};

use crate::error::ApiError;

/// How often a server reads the pause from the database: a pause takes
/// effect on every node within this.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// `Retry-After` on a refused append: a pause is an operator's decision,
/// so clients should back off for longer than a transient failure.
pub const RETRY_AFTER_SECS: u64 = 30;

/// The pause as last read.
#[derive(Debug, Default)]
pub struct PauseState {
    paused: AtomicBool,
    current: Mutex<Option<WritesPause>>,
}

impl PauseState {
    /// Whether appends are refused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Who paused, why and since when.
    pub fn current(&self) -> Option<WritesPause> {
        self.current.lock().ok().and_then(|g| g.clone())
    }

    /// Records what the database says; returns true when it changed
    /// (paused ↔ running, not a new reason).
    pub fn set(&self, pause: Option<WritesPause>) -> bool {
        let paused = pause.is_some();
        if let Ok(mut g) = self.current.lock() {
            *g = pause;
        }
        self.paused.swap(paused, Ordering::AcqRel) != paused
    }

    /// `Err(503 writes.paused)` while paused.
    pub fn check(&self) -> Result<(), ApiError> {
        if !self.is_paused() {
            return Ok(());
        }
        let detail = self
            .current()
            .map(|p| format!(" by {} since {}: {}", p.by, p.since, p.reason))
            .unwrap_or_default();
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "writes.paused",
            format!("writes are paused{detail}; nothing was stored, reads and verification go on"),
        )
        .retry_after(RETRY_AFTER_SECS))
    }

    /// Reads the pause from `store` into this state; the new state when
    /// it changed.
    pub fn refresh(
        &self,
        store: &mut dyn Store,
    ) -> evident_store::Result<Option<Option<WritesPause>>> {
        let pause = store.writes_pause()?;
        Ok(self.set(pause.clone()).then_some(pause))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pause(reason: &str) -> WritesPause {
        WritesPause {
            by: "oncall".into(),
            reason: reason.into(),
            since: "2025-01-01T00:00:00.000000Z".into(),
        }
    }

    #[test]
    fn refuses_only_while_paused_and_reports_transitions() {
        let s = PauseState::default();
        assert!(s.check().is_ok());
        assert!(s.set(Some(pause("incident"))));
        let e = s.check().unwrap_err();
        assert_eq!((e.status.as_u16(), &*e.code), (503, "writes.paused"));
        assert_eq!(e.retry_after, Some(RETRY_AFTER_SECS));
        assert!(e.message.contains("incident"), "{}", e.message);
        assert!(!s.set(Some(pause("another reason"))), "still paused");
        assert_eq!(s.current().unwrap().reason, "another reason");
        assert!(s.set(None));
        assert!(s.check().is_ok());
        assert!(!s.set(None));
    }

    #[test]
    fn refresh_reads_the_database() {
        let mut store = evident_store::sqlite::SqliteStore::open_in_memory().unwrap();
        store.migrate_up().unwrap();
        let s = PauseState::default();
        assert_eq!(s.refresh(&mut store).unwrap(), None);
        store.set_writes_pause(Some(&pause("backup"))).unwrap();
        assert_eq!(s.refresh(&mut store).unwrap(), Some(Some(pause("backup"))));
        assert_eq!(s.refresh(&mut store).unwrap(), None, "no change");
        assert!(s.is_paused());
    }
}
