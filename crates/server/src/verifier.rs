//! The background verifier: re-verifies every log on an interval and
//! drives the chain-break, signature-failure and violation counters that
//! alerts page on.
//!
//! Each pass continues every log from the prefix the last pass verified
//! (`reader::verify_incremental`: the latest checkpoint's signature, a
//! consistency proof from stored tiles between the verified size and it,
//! and only the rows appended since), and every [`FULL_EVERY`] passes
//! verifies every log in full, so a change inside a verified prefix is
//! found too. Each finding is counted once: the counters grow by the
//! number of problems a run finds beyond those the previous run of the
//! same log already reported, so an unrepaired break does not page again
//! on every interval, and a new one does.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use evident_core::verify::{Reason, Report, VerifiedPrefix};
use evident_store::{LogId, reader};
use serde_json::json;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::system::Event;
use evident_store::datadir::stored_verifiers;

/// The verifier's liveness, read by `/ready`.
#[derive(Debug, Default)]
pub struct VerifierHealth {
    heartbeat: AtomicI64,
    interval_secs: AtomicI64,
    last_error: Mutex<Option<String>>,
}

impl VerifierHealth {
    /// A health record for a verifier running every `interval` (0: off).
    pub fn new(interval: Duration) -> VerifierHealth {
        let h = VerifierHealth::default();
        h.interval_secs.store(
            i64::try_from(interval.as_secs()).unwrap_or(i64::MAX),
            Ordering::Release,
        );
        h.beat();
        h
    }

    fn beat(&self) {
        self.heartbeat
            .store(evident_store::sequencer::system_clock(), Ordering::Release);
    }

    /// `Ok` while the verifier is off, or ran within three intervals (and
    /// at least a minute, so one slow run of a big log is not a failure).
    pub fn check(&self) -> Result<(), String> {
        let interval = self.interval_secs.load(Ordering::Acquire);
        if interval == 0 {
            return Ok(());
        }
        let age = (evident_store::sequencer::system_clock()
            - self.heartbeat.load(Ordering::Acquire))
            / 1_000_000;
        let allowed = (interval * 3).max(60);
        if age > allowed {
            return Err(format!(
                "the background verifier last ran {age} s ago (allowed {allowed} s)"
            ));
        }
        match self.last_error.lock().ok().and_then(|g| g.clone()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Counts a report's findings in the metrics.
pub fn count_report(metrics: &Metrics, report: &Report) {
    let (breaks, sigs) = split_counts(report);
    metrics.observe_verification(
        if report.valid { "valid" } else { "invalid" },
        breaks,
        sigs,
        report.violation_count,
    );
}

/// (chain breaks, signature failures) of a report.
fn split_counts(report: &Report) -> (u64, u64) {
    let sigs = report.signature_failures.len() as u64;
    let breaks = report
        .violations
        .iter()
        .filter(|v| v.reason != Reason::CheckpointBadSignature)
        .count() as u64;
    (breaks, sigs)
}

/// What the verifier remembers of a log between passes.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// The verified prefix to continue from.
    prefix: Option<VerifiedPrefix>,
    /// The latest checkpoint size seen (verified or not).
    size: u64,
    /// Findings of the last run, so the same ones are not counted again.
    violations: u64,
    signature_failures: u64,
    breaks: u64,
}

/// Every this many passes, each log is verified in full again, so a change
/// to rows inside the verified prefix is found too.
pub const FULL_EVERY: u64 = 60;

/// Runs until the process ends.
pub async fn run(state: AppState, interval: Duration) {
    if interval.is_zero() {
        return;
    }
    let mut seen: HashMap<LogId, Seen> = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    let mut passes: u64 = 0;
    loop {
        tick.tick().await;
        state.limits.forget_idle();
        let full = passes.is_multiple_of(FULL_EVERY);
        passes += 1;
        let result = pass(&state, &mut seen, full).await;
        if let Ok(mut g) = state.verifier.last_error.lock() {
            *g = result.err().map(|e| e.to_string());
        }
        state.verifier.beat();
    }
}

async fn pass(
    state: &AppState,
    seen: &mut HashMap<LogId, Seen>,
    full: bool,
) -> Result<(), ApiError> {
    let logs = state
        .pool
        .with(|s| {
            let mut out = Vec::new();
            for log in s.logs().map_err(ApiError::from)? {
                let size = s
                    .latest_checkpoint(log.id)
                    .map_err(ApiError::from)?
                    .map_or(0, |c| c.size);
                out.push((log, size));
            }
            Ok(out)
        })
        .await?;
    let verified = |seen: &HashMap<LogId, Seen>, id| {
        seen.get(&id)
            .and_then(|s: &Seen| s.prefix.as_ref().map(|p| p.size))
            .unwrap_or(0)
    };
    let lag: u64 = logs
        .iter()
        .map(|(log, size)| size.saturating_sub(verified(seen, log.id)))
        .sum();
    state.metrics.set_verification_lag(lag);
    for (log, size) in logs {
        let before = seen.get(&log.id).cloned().unwrap_or_default();
        let up_to_date = before.prefix.as_ref().is_some_and(|p| p.size == size);
        if up_to_date && !full {
            continue;
        }
        let l = log.clone();
        let prefix = if full { None } else { before.prefix.clone() };
        let result = state
            .pool
            .with(move |s| {
                let verifiers = stored_verifiers(s).map_err(ApiError::from)?;
                reader::verify_incremental(s, &l, verifiers, prefix.as_ref())
                    .map_err(ApiError::from)
            })
            .await;
        let (report, next) = match result {
            Ok(r) => r,
            Err(e) => {
                state.metrics.observe_verification("error", 0, 0, 0);
                return Err(e);
            }
        };
        let (breaks, sigs) = split_counts(&report);
        state.metrics.observe_verification(
            if report.valid { "valid" } else { "invalid" },
            breaks.saturating_sub(before.breaks),
            sigs.saturating_sub(before.signature_failures),
            report.violation_count.saturating_sub(before.violations),
        );
        let new_breaks = breaks.saturating_sub(before.breaks);
        let new_sigs = sigs.saturating_sub(before.signature_failures);
        if new_breaks > 0 {
            state.webhooks.notify(
                "chain_break",
                json!({"log": log.path(), "origin": log.origin, "new": new_breaks, "first_break": report.first_break, "violation_count": report.violation_count}),
            );
        }
        if new_sigs > 0 {
            state.webhooks.notify(
                "signature_failure",
                json!({"log": log.path(), "origin": log.origin, "new": new_sigs, "signature_failures": report.signature_failures}),
            );
        }
        if !report.valid && report.violation_count > before.violations {
            tracing::error!(
                log = %log.path(),
                first_break = ?report.first_break,
                violations = report.violation_count,
                "background verification found problems"
            );
            state.system.record(Event {
                kind: "evident.verify.failed",
                actor: "server",
                action: "background verify",
                resource: &log.path(),
                outcome: "failed",
                data: json!({"first_break": report.first_break, "violation_count": report.violation_count}),
            });
        }
        seen.insert(
            log.id,
            Seen {
                // An invalid run keeps the last good prefix: the next pass
                // checks again from there.
                prefix: next.or(before.prefix),
                size,
                violations: report.violation_count,
                signature_failures: sigs,
                breaks,
            },
        );
    }
    let lag: u64 = seen
        .values()
        .map(|s| {
            s.size
                .saturating_sub(s.prefix.as_ref().map_or(0, |p| p.size))
        })
        .sum();
    state.metrics.set_verification_lag(lag);
    Ok(())
}
