//! The background verifier: re-verifies every log on an interval and
//! drives the chain-break, signature-failure and violation counters that
//! alerts page on.
//!
//! Each pass continues every log from the prefix the last pass verified
//! (`reader::verify_incremental`: a stored checkpoint's signature, a
//! consistency proof from stored tiles between the verified size and it,
//! and only the rows appended since), and every `verify_full_every` passes (60)
//! verifies every log in full, so a change inside a verified prefix is
//! found too. Each finding is counted once, by what it is (index, reason,
//! checkpoint size), not by how many a run found: an incremental pass sees
//! only the rows appended since, so comparing counts would forget a break
//! inside the prefix and count it again at the next full pass. An
//! unrepaired break therefore pages once; a new one, or one that comes
//! back after a repair, pages again.
//!
//! Passes go in steps of a few thousand rows, each its own read snapshot
//! with a pause after it, on a thread at a lower CPU priority
//! ([`crate::pool::Pool::background`]): one snapshot held for a whole pass
//! stopped SQLite's WAL from starting over, and a verifier at the writer's
//! priority took the CPU the writer needed. Between two steps the writer
//! may add rows; a pass stops once it has verified what was there when it
//! began.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use evident_core::verify::{Reason, Report, Violation};
use evident_store::reader::{self, Resume};
use evident_store::{LogId, LogInfo};
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
    /// Per log, the findings already counted in the metrics.
    counted: Mutex<HashMap<LogId, Counted>>,
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

    /// Counts what a verification of `log` found that was not counted
    /// before, by this verifier or by `GET …/verify`, so an operator
    /// re-running verify during an incident does not page again. `full`:
    /// the run saw every row.
    pub fn count(&self, metrics: &Metrics, log: LogId, report: &Report, full: bool) -> Fresh {
        let fresh = match self.counted.lock() {
            Ok(mut g) => g.entry(log).or_default().absorb(report, full),
            // A panic elsewhere while counting: count this run as new
            // rather than lose a break.
            Err(_) => Counted::default().absorb(report, full),
        };
        metrics.observe_verification(
            if report.valid { "valid" } else { "invalid" },
            fresh.breaks,
            fresh.signature_failures,
            fresh.violations,
        );
        fresh
    }
}

/// What the verifier remembers of a log between passes.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// Where the next pass continues from.
    resume: Option<Resume>,
    /// The latest checkpoint size seen (verified or not).
    size: u64,
}

/// Identifies one finding across runs.
type FindingKey = (u64, Reason, Option<u64>);

fn key(v: &Violation) -> FindingKey {
    (v.index, v.reason, v.checkpoint_size)
}

/// The findings of one log already counted in the metrics.
#[derive(Debug, Default)]
struct Counted {
    /// Every listed finding counted since the last full pass, and those
    /// that pass found.
    known: HashSet<FindingKey>,
    /// Findings past the listed ones of a truncated report: known only
    /// by number.
    unlisted: u64,
}

/// Findings of one run not counted before.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fresh {
    /// Entry-level and checkpoint problems other than signatures.
    pub breaks: u64,
    /// Checkpoints without a valid trusted signature.
    pub signature_failures: u64,
    /// Every new problem.
    pub violations: u64,
}

impl Counted {
    /// Takes in a run's report and says what it found that is new. A full
    /// pass sees every row, so what it did not find is forgotten (a
    /// repaired break that comes back is new again); an incremental pass
    /// only adds.
    fn absorb(&mut self, report: &Report, full: bool) -> Fresh {
        let sigs: HashSet<FindingKey> = report.signature_failures.iter().map(key).collect();
        let mut found = HashSet::with_capacity(report.violations.len());
        let mut fresh = Fresh::default();
        for v in &report.violations {
            let k = key(v);
            if found.insert(k) && !self.known.contains(&k) {
                fresh.violations += 1;
                if sigs.contains(&k) {
                    fresh.signature_failures += 1;
                } else {
                    fresh.breaks += 1;
                }
            }
        }
        let unlisted = report
            .violation_count
            .saturating_sub(report.violations.len() as u64);
        let more = unlisted.saturating_sub(self.unlisted);
        fresh.violations += more;
        fresh.breaks += more;
        if full {
            self.known = found;
            self.unlisted = unlisted;
        } else {
            self.known.extend(found);
            self.unlisted = self.unlisted.max(unlisted);
        }
        fresh
    }
}

/// Runs until the process ends. Every `full_every` passes (the first
/// included), each log is verified in full again, so a change to rows
/// inside the verified prefix is found too.
pub async fn run(state: AppState, interval: Duration, full_every: u64) {
    if interval.is_zero() {
        return;
    }
    let mut seen: HashMap<LogId, Seen> = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    let mut passes: u64 = 0;
    loop {
        tick.tick().await;
        state.limits.forget_idle();
        let full = passes.is_multiple_of(full_every.max(1));
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
            .and_then(|s: &Seen| s.resume.as_ref().map(|r| r.prefix.size))
            .unwrap_or(0)
    };
    let lag: u64 = logs
        .iter()
        .map(|(log, size)| size.saturating_sub(verified(seen, log.id)))
        .sum();
    state.metrics.set_verification_lag(lag);
    for (log, size) in logs {
        let before = seen.get(&log.id).cloned().unwrap_or_default();
        let up_to_date = before
            .resume
            .as_ref()
            .is_some_and(|r| r.prefix.size == size);
        if up_to_date && !full {
            continue;
        }
        let from = if full { None } else { before.resume.clone() };
        let (report, next) = match verify_steps(state, &log, from, size).await {
            Ok(r) => r,
            Err(e) => {
                state.metrics.observe_verification("error", 0, 0, 0);
                return Err(e);
            }
        };
        let fresh = state.verifier.count(&state.metrics, log.id, &report, full);
        if fresh.breaks > 0 {
            state.webhooks.notify(
                "chain_break",
                json!({"log": log.path(), "origin": log.origin, "new": fresh.breaks, "first_break": report.first_break, "violation_count": report.violation_count}),
            );
        }
        if fresh.signature_failures > 0 {
            state.webhooks.notify(
                "signature_failure",
                json!({"log": log.path(), "origin": log.origin, "new": fresh.signature_failures, "signature_failures": report.signature_failures}),
            );
        }
        if !report.valid && fresh.violations > 0 {
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
                resume: next.or(before.resume),
                size,
            },
        );
    }
    let lag: u64 = seen
        .values()
        .map(|s| {
            s.size
                .saturating_sub(s.resume.as_ref().map_or(0, |r| r.prefix.size))
        })
        .sum();
    state.metrics.set_verification_lag(lag);
    Ok(())
}

/// Rows verified per read snapshot: about 20 ms of work. A snapshot held
/// for a whole pass over millions of rows kept SQLite's WAL from starting
/// over, which grew it by hundreds of megabytes and cut the writer's rate
/// by nearly half while it lasted; in steps of 16,384 rows with
/// [`reader::STEP_GAP`] between them, the WAL stayed near 100 MB
/// (BENCHMARKS.md, issue 4).
const STEP_ROWS: u64 = 16_384;

/// Verifies `log` from `from` (in full when `None`) up to at least the
/// size `size` seen when the pass began, in steps of [`STEP_ROWS`], each
/// its own snapshot, on the pool's background thread (at a lower CPU
/// priority: the appends come first). Returns the last step's report
/// (every earlier step was valid) and where the next pass continues from.
/// A step that finds a problem is done again without the bound, from the
/// same place, so that the report lists every problem after the prefix,
/// as one run would.
async fn verify_steps(
    state: &AppState,
    log: &LogInfo,
    mut from: Option<Resume>,
    size: u64,
) -> Result<(Report, Option<Resume>), ApiError> {
    let mut max_rows = STEP_ROWS;
    loop {
        let (l, start) = (log.clone(), from.clone());
        let step = state
            .pool
            .background(move |s| {
                let verifiers = stored_verifiers(s).map_err(ApiError::from)?;
                reader::verify_incremental(s, &l, verifiers, start.as_ref(), max_rows)
                    .map_err(ApiError::from)
            })
            .await?;
        match step.resume {
            Some(next) if !step.caught_up && next.prefix.size < size => {
                from = Some(next);
                tokio::time::sleep(reader::STEP_GAP).await;
            }
            None if from.is_some() && max_rows != u64::MAX => max_rows = u64::MAX,
            next => return Ok((step.report, next)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A report listing `breaks` (index, reason code) and signature
    /// failures at `sigs` (checkpoint sizes), with `unlisted` more
    /// problems past the listed ones.
    fn report(breaks: &[(u64, &str)], sigs: &[u64], unlisted: u64) -> Report {
        let v = |index: u64, reason: &str, size: Option<u64>| {
            let mut v = json!({"index": index, "reason": reason, "detail": "x"});
            if let Some(s) = size {
                v["checkpoint_size"] = json!(s);
            }
            v
        };
        let chain: Vec<_> = breaks.iter().map(|&(i, r)| v(i, r, None)).collect();
        let sig: Vec<_> = sigs
            .iter()
            .map(|&s| v(s, "checkpoint.bad_signature", Some(s)))
            .collect();
        let all: Vec<_> = chain.iter().chain(&sig).cloned().collect();
        let count = all.len() as u64 + unlisted;
        serde_json::from_value(json!({
            "valid": count == 0,
            "origin": "o",
            "total_count": 100,
            "rows_checked": 100,
            "verified_count": 100,
            "checkpoints_checked": 1,
            "checkpoints_verified": 1,
            "chain_breaks": chain,
            "signature_failures": sig,
            "retrocausation_violations": [],
            "gaps": [],
            "checkpoint_mismatches": [],
            "first_break": all.first(),
            "acknowledged": [],
            "redacted_count": 0,
            "last_verified_index": null,
            "last_verified_timestamp": null,
            "violation_count": count,
            "truncated": unlisted > 0,
            "violations": all,
        }))
        .unwrap()
    }

    fn fresh(breaks: u64, signature_failures: u64, violations: u64) -> Fresh {
        Fresh {
            breaks,
            signature_failures,
            violations,
        }
    }

    #[test]
    fn an_unrepaired_break_is_counted_once_across_full_and_incremental_passes() {
        let mut c = Counted::default();
        let broken = report(&[(5, "body.digest_mismatch")], &[], 0);
        // The full pass finds the break inside the verified prefix.
        assert_eq!(c.absorb(&broken, true), fresh(1, 0, 1));
        // Appends go on; incremental passes only see the new rows.
        assert_eq!(c.absorb(&report(&[], &[], 0), false), fresh(0, 0, 0));
        assert_eq!(c.absorb(&report(&[], &[], 0), false), fresh(0, 0, 0));
        // The next full pass finds the same break: nothing new to page on.
        assert_eq!(c.absorb(&broken, true), fresh(0, 0, 0));
        // The same from an operator's `GET …/verify`, run twice.
        assert_eq!(c.absorb(&broken, true), fresh(0, 0, 0));
    }

    #[test]
    fn a_new_break_or_one_back_after_a_repair_counts_again() {
        let mut c = Counted::default();
        assert_eq!(
            c.absorb(&report(&[(5, "body.digest_mismatch")], &[], 0), true),
            fresh(1, 0, 1)
        );
        // A second break at another index, and a second reason at the same
        // index, are both new; the old one is not.
        let more = report(
            &[
                (5, "body.digest_mismatch"),
                (5, "entry.leaf_hash_mismatch"),
                (9, "chain.prev_mismatch"),
            ],
            &[],
            0,
        );
        assert_eq!(c.absorb(&more, false), fresh(2, 0, 2));
        // Repaired: a full pass finds nothing, and forgets them.
        assert_eq!(c.absorb(&report(&[], &[], 0), true), fresh(0, 0, 0));
        // Tampered again the same way: it pages again.
        assert_eq!(
            c.absorb(&report(&[(5, "body.digest_mismatch")], &[], 0), true),
            fresh(1, 0, 1)
        );
    }

    #[test]
    fn signature_failures_are_told_apart_and_counted_once() {
        let mut c = Counted::default();
        let r = report(&[(3, "time.decreasing")], &[40, 50], 0);
        assert_eq!(c.absorb(&r, true), fresh(1, 2, 3));
        assert_eq!(c.absorb(&r, false), fresh(0, 0, 0));
        let r2 = report(&[(3, "time.decreasing")], &[40, 50, 60], 0);
        assert_eq!(c.absorb(&r2, true), fresh(0, 1, 1));
    }

    #[test]
    fn problems_past_the_listed_ones_are_counted_by_number() {
        let mut c = Counted::default();
        let r = report(&[(1, "chain.prev_mismatch")], &[], 4);
        assert_eq!(c.absorb(&r, true), fresh(5, 0, 5));
        assert_eq!(c.absorb(&r, true), fresh(0, 0, 0));
        let r = report(&[(1, "chain.prev_mismatch")], &[], 6);
        assert_eq!(c.absorb(&r, true), fresh(2, 0, 2));
    }

    #[test]
    fn the_shared_record_counts_a_log_once_for_both_callers() {
        let health = VerifierHealth::new(Duration::from_secs(60));
        let metrics = Metrics::default();
        let broken = report(&[(5, "body.digest_mismatch")], &[], 0);
        let log: LogId = 1;
        assert_eq!(health.count(&metrics, log, &broken, true), fresh(1, 0, 1));
        assert_eq!(health.count(&metrics, log, &broken, true), fresh(0, 0, 0));
        // Another log with the same break is its own finding.
        assert_eq!(health.count(&metrics, 2, &broken, true), fresh(1, 0, 1));
    }
}
