//! Prometheus metrics, served at `/metrics` in the text exposition format.
//!
//! Labels are bounded by construction: routes are the router's templates
//! (`/v1/logs/{log}/entries`, never a log's name), statuses are HTTP codes,
//! reasons are fixed codes. No tenant, log or key appears in a label, so a
//! client cannot grow the series count.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 100 µs to ~26 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 19))
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    appended: Counter,
    batch_size: Histogram,
    batch_seconds: Histogram,
    append_seconds: Histogram,
    receipt_seconds: Histogram,
    checkpoint_age: Gauge<f64, AtomicU64>,
    queue_entries: Gauge,
    db_up: Gauge,
    writes_paused: Gauge,
    verification_runs: Family<ResultLabels, Counter>,
    verification_lag: Gauge,
    chain_breaks: Counter,
    signature_failures: Counter,
    violations: Counter,
    auth_failures: Family<ReasonLabels, Counter>,
    rate_limited: Counter,
    system_events_dropped: Counter,
    /// Microseconds since the epoch of the last committed batch.
    last_commit: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency),
            appended: Counter::default(),
            batch_size: Histogram::new(exponential_buckets(1.0, 4.0, 9)),
            batch_seconds: latency(),
            append_seconds: latency(),
            receipt_seconds: latency(),
            checkpoint_age: Gauge::default(),
            queue_entries: Gauge::default(),
            db_up: Gauge::default(),
            writes_paused: Gauge::default(),
            verification_runs: Family::default(),
            verification_lag: Gauge::default(),
            chain_breaks: Counter::default(),
            signature_failures: Counter::default(),
            violations: Counter::default(),
            auth_failures: Family::default(),
            rate_limited: Counter::default(),
            system_events_dropped: Counter::default(),
            last_commit: AtomicI64::new(evident_store::sequencer::system_clock()),
        };
        m.db_up.set(1);
        r.register(
            "evident_http_requests",
            "HTTP requests answered, by route template, method and status",
            m.http_requests.clone(),
        );
        r.register(
            "evident_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            m.http_duration.clone(),
        );
        r.register(
            "evident_appended_entries",
            "Entries appended (duplicates not counted)",
            m.appended.clone(),
        );
        r.register(
            "evident_batch_size_entries",
            "Entries per committed batch",
            m.batch_size.clone(),
        );
        r.register(
            "evident_batch_commit_seconds",
            "Time to seal, store and sign one batch",
            m.batch_seconds.clone(),
        );
        r.register(
            "evident_append_duration_seconds",
            "Time from an append request's arrival to its durable acknowledgement",
            m.append_seconds.clone(),
        );
        r.register(
            "evident_receipt_duration_seconds",
            "Time from an append request's arrival to its receipts (?wait=receipt)",
            m.receipt_seconds.clone(),
        );
        r.register(
            "evident_checkpoint_age_seconds",
            "While entries wait to be written: seconds since the last checkpoint was signed (0 when none wait)",
            m.checkpoint_age.clone(),
        );
        r.register(
            "evident_writer_queue_entries",
            "Entries waiting for the writer",
            m.queue_entries.clone(),
        );
        r.register(
            "evident_db_up",
            "1 when the last database write or probe succeeded",
            m.db_up.clone(),
        );
        r.register(
            "evident_writes_paused",
            "1 while appends are paused (evident writes pause, POST /v1/admin/writes)",
            m.writes_paused.clone(),
        );
        r.register(
            "evident_verification_runs",
            "Log verifications run (background and on request), by result",
            m.verification_runs.clone(),
        );
        r.register(
            "evident_verification_lag_entries",
            "Entries appended but not yet checked by the background verifier, over all logs",
            m.verification_lag.clone(),
        );
        r.register(
            "evident_chain_breaks",
            "Chain breaks found by verification (entry, chain, gap and checkpoint-root problems)",
            m.chain_breaks.clone(),
        );
        r.register(
            "evident_signature_failures",
            "Checkpoints whose signature did not verify",
            m.signature_failures.clone(),
        );
        r.register(
            "evident_audit_chain_violations",
            "Every violation found by verification, of any kind",
            m.violations.clone(),
        );
        r.register(
            "evident_auth_failures",
            "Requests refused by authentication or authorisation, by reason code",
            m.auth_failures.clone(),
        );
        r.register(
            "evident_rate_limited_requests",
            "Requests refused by a rate limit",
            m.rate_limited.clone(),
        );
        r.register(
            "evident_system_events_dropped",
            "System events not written because the writer was overloaded or stopping",
            m.system_events_dropped.clone(),
        );
        if let Ok(mut g) = m.registry.lock() {
            *g = r;
        }
        m
    }

    /// The text exposition, with the gauges computed now.
    pub fn render(&self, queued: usize) -> String {
        let now = evident_store::sequencer::system_clock();
        let last = self.last_commit.load(std::sync::atomic::Ordering::Acquire);
        let age = if queued == 0 {
            0.0
        } else {
            (now - last).max(0) as f64 / 1e6
        };
        self.checkpoint_age.set(age);
        self.queue_entries
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            let _ = encode(&mut out, &r);
        }
        out
    }

    /// One answered HTTP request.
    pub fn observe_http(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// One committed batch.
    pub fn observe_batch(&self, entries: usize, appended: usize, elapsed: Duration) {
        self.appended.inc_by(appended as u64);
        self.batch_size.observe(entries as f64);
        if !elapsed.is_zero() {
            self.batch_seconds.observe(elapsed.as_secs_f64());
        }
        self.last_commit.store(
            evident_store::sequencer::system_clock(),
            std::sync::atomic::Ordering::Release,
        );
    }

    /// One acknowledged append request.
    pub fn observe_append(&self, elapsed: Duration, with_receipts: bool) {
        self.append_seconds.observe(elapsed.as_secs_f64());
        if with_receipts {
            self.receipt_seconds.observe(elapsed.as_secs_f64());
        }
    }

    /// Database health as the writer last saw it.
    pub fn set_db_up(&self, up: bool) {
        self.db_up.set(i64::from(up));
    }

    /// Whether appends are paused, as last read from the database.
    pub fn set_writes_paused(&self, paused: bool) {
        self.writes_paused.set(i64::from(paused));
    }

    /// One verification and what it found.
    pub fn observe_verification(
        &self,
        result: &str,
        breaks: u64,
        signature_failures: u64,
        violations: u64,
    ) {
        self.verification_runs
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
        self.chain_breaks.inc_by(breaks);
        self.signature_failures.inc_by(signature_failures);
        self.violations.inc_by(violations);
    }

    /// Entries not yet verified in the background.
    pub fn set_verification_lag(&self, entries: u64) {
        self.verification_lag
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    /// One refused request.
    pub fn auth_failure(&self, reason: &str) {
        self.auth_failures
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// One rate-limited request.
    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// One system event that could not be queued.
    pub fn system_event_dropped(&self) {
        self.system_events_dropped.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels() {
        let m = Metrics::new();
        m.observe_http(
            "/v1/logs/{log}/entries",
            "POST",
            201,
            Duration::from_millis(3),
        );
        m.auth_failure("auth.invalid");
        m.observe_verification("invalid", 2, 1, 3);
        let text = m.render(0);
        assert!(
            text.contains(r#"evident_http_requests_total{route="/v1/logs/{log}/entries",method="POST",status="201"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"evident_auth_failures_total{reason="auth.invalid"} 1"#));
        assert!(text.contains("evident_chain_breaks_total 2"));
        assert!(text.contains("evident_signature_failures_total 1"));
        assert!(text.contains("evident_audit_chain_violations_total 3"));
        assert!(text.contains("evident_db_up 1"));
    }
}
