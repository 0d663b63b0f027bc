//! The sealer: once a day, at `seal_time` (UTC), publishes every log's
//! latest signed checkpoint to the `seal_anchors` anchor (see
//! `evident_store::anchor`), each seal linking the one before.
//!
//! Before sealing a log it checks the log against the seals already
//! published; a log that is smaller than a seal or does not extend it
//! (the database was restored from an old backup, or cut) is not sealed:
//! the sealer reports a rollback (error log line, `evident.seal.rollback_detected`
//! system event, webhook) and goes on with the other logs.

use std::time::Duration;

use evident_core::entry::format_ts;
use evident_store::anchor::{Anchor, AnchorError, seal_log};
use evident_store::datadir::stored_verifiers;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;
use crate::system::Event;

const DAY_SECS: i64 = 86_400;

/// Parses `HH:MM` (UTC, 24-hour) into seconds after midnight.
pub fn parse_seal_time(s: &str) -> Result<u32, String> {
    let bad = || format!("{s:?} is not HH:MM (UTC, 00:00 to 23:59)");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 3600 + m * 60)
}

/// Time from `now` (microseconds since the epoch) to the next `at`
/// (seconds after midnight UTC); a full day when `now` is exactly `at`.
pub fn until_next(now_micros: i64, at: u32) -> Duration {
    let now_secs = now_micros.div_euclid(1_000_000);
    let into_day = now_secs.rem_euclid(DAY_SECS);
    let mut wait = i64::from(at) - into_day;
    if wait <= 0 {
        wait += DAY_SECS;
    }
    let micros = wait * 1_000_000 - now_micros.rem_euclid(1_000_000);
    Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

/// Seals every log at `at` each day, for ever.
pub async fn run(state: AppState, anchor: Anchor, at: u32) {
    loop {
        tokio::time::sleep(until_next(evident_store::sequencer::system_clock(), at)).await;
        seal_all(&state, &anchor).await;
    }
}

/// Seals every log once; returns how many were sealed.
pub async fn seal_all(state: &AppState, anchor: &Anchor) -> usize {
    let logs = match state.pool.with(|s| s.logs().map_err(ApiError::from)).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "sealer: cannot list the logs");
            return 0;
        }
    };
    let now = format_ts(evident_store::sequencer::system_clock());
    let mut sealed = 0;
    for log in logs {
        let (a, l, n) = (anchor.clone(), log.clone(), now.clone());
        let result = state
            .pool
            .with(move |s| {
                let keys = stored_verifiers(s).map_err(ApiError::from)?;
                Ok(seal_log(s, &l, &a, &keys, &n))
            })
            .await;
        match result {
            Ok(Ok(Some(s))) => {
                sealed += 1;
                tracing::info!(event = "sealed", log = %s.log, seq = s.seq, size = s.size, object = %s.object, "log sealed");
            }
            Ok(Ok(None)) => {}
            Ok(Err(AnchorError::Inconsistent { origin, violations })) => {
                tracing::error!(event = "rollback_detected", log = %log.path(), ?violations, "the log disagrees with its published seals: not sealed");
                let data = json!({"origin": origin, "anchor": anchor.location(), "violations": violations});
                state.system.record(Event {
                    kind: "evident.seal.rollback_detected",
                    actor: "server",
                    action: "seal",
                    resource: &log.path(),
                    outcome: "failed",
                    data: data.clone(),
                });
                state.webhooks.notify("rollback_detected", data);
            }
            Ok(Err(e)) => {
                tracing::error!(log = %log.path(), error = %e, "sealer: cannot seal");
            }
            Err(e) => tracing::error!(log = %log.path(), error = %e, "sealer: cannot seal"),
        }
    }
    sealed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seal_times() {
        assert_eq!(parse_seal_time("00:00").unwrap(), 0);
        assert_eq!(parse_seal_time("23:59").unwrap(), 86_340);
        for bad in ["24:00", "7:00", "07:60", "0700", "", "aa:bb"] {
            assert!(parse_seal_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_run() {
        let day = 86_400_000_000i64;
        let base = 20_000 * day; // a midnight
        assert_eq!(until_next(base, 3600), Duration::from_secs(3600));
        assert_eq!(until_next(base, 0), Duration::from_secs(86_400));
        assert_eq!(
            until_next(base + 3_600_000_000 + 500_000, 3600),
            Duration::from_micros(86_400_000_000 - 500_000)
        );
        assert_eq!(
            until_next(base + 7_200_000_000, 3600),
            Duration::from_secs(86_400 - 3600)
        );
    }
}
