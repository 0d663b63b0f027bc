//! `evident bench`: a load generator for the append API of `evident serve`.
//!
//! Each of `--connections` tasks holds one HTTP/1.1 keep-alive connection
//! and sends its next append as soon as the previous one is answered: a
//! closed loop, so the load offered is what the server can take, and every
//! request's latency runs from sending it to the last byte of its answer.
//! Entries carry request ids unique to the run (`bench-RUN-CONN-SEQ`), so
//! nothing is answered as a duplicate of an earlier run's entry.
//!
//! Latencies go into one HDR histogram per connection (microseconds, three
//! significant digits), merged at the end: quantiles without keeping or
//! sorting every sample.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::Format;
use crate::common::{CmdError, print_json};

/// Load-test a running `evident serve` with appends.
///
/// Opens `--connections` HTTP/1.1 keep-alive connections to `--url`; each
/// sends `POST /v1/logs/LOG/entries` with the API key and, as soon as the
/// answer is in, the next one. `--mode single` sends one entry per request,
/// `--mode batch` sends `{"entries":[…]}` of `--batch-size` entries. Every
/// entry is about `--entry-bytes` of JSON with a request id unique to the
/// run. With `--wait-receipt` each request asks for `?wait=receipt`, so the
/// answer comes once the entries are in a signed checkpoint, with their
/// receipts.
///
/// The run lasts `--duration` seconds, or until `--requests` requests have
/// been answered (default: 10 seconds). Then it reports requests and
/// entries sent and acknowledged (a 2xx answer), errors by HTTP status and
/// error code, throughput in entries per second, and the p50, p90, p99 and
/// maximum time from sending a request to its acknowledgement (to its
/// receipts with `--wait-receipt`). In text mode a progress line is
/// printed on stderr each second.
///
/// The key needs the `append` scope (and nothing else). Point it only at a
/// server you run: this is a load generator. For the full benchmark
/// (server, tenant, key, runs, verification) see scripts/bench-server.
///
/// Exit status: 0 when at least one request was acknowledged, 1 otherwise.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The server's base URL (http only).
    #[arg(long, default_value = "http://127.0.0.1:8700")]
    url: String,
    /// API key with the `append` scope.
    #[arg(long, env = "EVIDENT_API_KEY", hide_env_values = true)]
    api_key: String,
    /// The log to append to, in the key's tenant (created on first append).
    #[arg(long, default_value = "bench")]
    log: String,
    /// One entry per request, or `--batch-size` entries per request.
    #[arg(long, value_enum, default_value_t)]
    mode: Mode,
    /// Concurrent keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// Entries per request in batch mode.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch_size: u32,
    /// Run for this many seconds [default: 10 unless --requests].
    #[arg(long, conflicts_with = "requests")]
    duration: Option<f64>,
    /// Stop after this many requests (over all connections).
    #[arg(long)]
    requests: Option<u64>,
    /// Ask for receipts (`?wait=receipt`): latency is then time to receipt.
    #[arg(long)]
    wait_receipt: bool,
    /// Approximate size of each entry's JSON, in bytes (at least ~200: the
    /// fixed fields; the rest is padding in `data`).
    #[arg(long, default_value_t = 256)]
    entry_bytes: usize,
    /// Worker threads of the load generator (1 leaves the most CPU to a
    /// server on the same machine).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

/// How entries are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Mode {
    /// One entry per request.
    #[default]
    Single,
    /// `--batch-size` entries per request, as `{"entries":[…]}`.
    Batch,
}

/// Runs `bench` and prints its report: one JSON document with
/// `--format json` (with an `error` member when nothing was acknowledged),
/// lines otherwise. Exit status 0 when at least one request was
/// acknowledged.
pub fn bench(args: &BenchArgs) -> ExitCode {
    match measure(args) {
        Ok(report) => {
            let failed = report.failure();
            match args.format {
                Format::Json => {
                    let mut v = report.json();
                    if let Some(e) = &failed {
                        v["error"] = json!({"code": e.code, "message": e.message});
                    }
                    print_json(&v);
                }
                Format::Text => {
                    print!("{}", report.text());
                    if let Some(e) = &failed {
                        e.print(Format::Text);
                    }
                }
            }
            if failed.is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            e.print(args.format);
            ExitCode::FAILURE
        }
    }
}

fn measure(args: &BenchArgs) -> Result<Report, CmdError> {
    let plan = Arc::new(Plan::new(args)?);
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(args.threads))
            .enable_all()
            .build()
    }
    .map_err(|e| CmdError::new("bench.failed", format!("cannot start the runtime: {e}")))?;
    let progress = args.format == Format::Text;
    Ok(runtime.block_on(run(plan, args.connections, progress)))
}

/// What every connection needs to build and send its requests.
#[derive(Debug)]
struct Plan {
    /// `host:port` to connect to.
    addr: String,
    host: HeaderValue,
    auth: HeaderValue,
    /// Path and query of the append request.
    path_and_query: String,
    mode: Mode,
    batch_size: u32,
    wait_receipt: bool,
    entry_bytes: usize,
    /// Everything of an entry before its request id.
    entry_head: String,
    /// Everything of an entry after its request id.
    entry_tail: String,
    /// Unique to this run, in every request id.
    run_id: String,
    deadline: Deadline,
}

#[derive(Debug)]
enum Deadline {
    /// Stop sending after this long.
    Time(Duration),
    /// Stop after this many requests, counted here as they are taken.
    Requests { limit: u64, taken: AtomicU64 },
}

impl Plan {
    fn new(args: &BenchArgs) -> Result<Plan, CmdError> {
        let bad = |m: String| CmdError::new("bench.bad_argument", m);
        let uri: Uri = args
            .url
            .parse()
            .map_err(|e| bad(format!("--url {:?}: {e}", args.url)))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad(format!(
                "--url {:?}: only http:// URLs are supported",
                args.url
            )));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| bad(format!("--url {:?}: no host", args.url)))?;
        let addr = format!(
            "{}:{}",
            authority.host(),
            authority.port_u16().unwrap_or(80)
        );
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|e| bad(format!("--url {:?}: {e}", args.url)))?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", args.api_key.trim()))
            .map_err(|_| bad("--api-key: not a valid header value".to_owned()))?;
        auth.set_sensitive(true);
        if args.log.is_empty() || args.log.contains(['/', '?', '#', '%', ' ']) {
            return Err(bad(format!("--log {:?}: not a log name", args.log)));
        }
        let prefix = uri.path().trim_end_matches('/');
        let mut path_and_query = format!("{prefix}/v1/logs/{}/entries", args.log);
        if args.wait_receipt {
            path_and_query.push_str("?wait=receipt");
        }
        let deadline = match (args.duration, args.requests) {
            (Some(s), _) if !(s.is_finite() && s > 0.0) => {
                return Err(bad(format!("--duration {s}: must be a positive number")));
            }
            (Some(s), _) => Deadline::Time(Duration::from_secs_f64(s)),
            (None, Some(0)) => return Err(bad("--requests must be at least 1".to_owned())),
            (None, Some(n)) => Deadline::Requests {
                limit: n,
                taken: AtomicU64::new(0),
            },
            (None, None) => Deadline::Time(Duration::from_secs(10)),
        };
        let now = evident_store::sequencer::system_clock();
        let run_id = format!(
            "{:012x}",
            (now as u64 ^ u64::from(std::process::id())) & 0xffff_ffff_ffff
        );
        let occurred_at = evident_core::entry::format_ts(now);
        let entry_head = format!(
            concat!(
                r#"{{"kind":"bench.append","actor":"evident-bench","action":"append","#,
                r#""resource":"bench/{}","outcome":"success","occurred_at":"{}","#,
                r#""request_id":""#
            ),
            args.log, occurred_at
        );
        // The request id is `bench-RUN-CCCC-SSSSSSSSSS`: 34 bytes.
        let fixed = entry_head.len() + 34 + r#"","data":{"pad":""}}"#.len();
        let pad = "x".repeat(args.entry_bytes.saturating_sub(fixed));
        let entry_tail = format!(r#"","data":{{"pad":"{pad}"}}}}"#);
        Ok(Plan {
            addr,
            host,
            auth,
            path_and_query,
            mode: args.mode,
            batch_size: if args.mode == Mode::Batch {
                args.batch_size
            } else {
                1
            },
            wait_receipt: args.wait_receipt,
            entry_bytes: fixed.max(args.entry_bytes),
            entry_head,
            entry_tail,
            run_id,
            deadline,
        })
    }

    /// Whether a connection may send another request now.
    fn take(&self, started: Instant) -> bool {
        match &self.deadline {
            Deadline::Time(d) => started.elapsed() < *d,
            Deadline::Requests { limit, taken } => taken.fetch_add(1, Ordering::Relaxed) < *limit,
        }
    }

    /// Appends one entry with the given request id numbers to `out`.
    fn entry(&self, out: &mut Vec<u8>, conn: u32, seq: u64) {
        out.extend_from_slice(self.entry_head.as_bytes());
        let mut id = String::with_capacity(34);
        let _ = write!(id, "bench-{}-{conn:04}-{seq:010}", self.run_id);
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(self.entry_tail.as_bytes());
    }

    /// The body of the next request of connection `conn`, whose entries
    /// take sequence numbers from `seq`.
    fn body(&self, conn: u32, seq: &mut u64) -> Bytes {
        let n = self.batch_size as usize;
        let mut out = Vec::with_capacity(n * (self.entry_bytes + 1) + 16);
        match self.mode {
            Mode::Single => {
                self.entry(&mut out, conn, *seq);
                *seq += 1;
            }
            Mode::Batch => {
                out.extend_from_slice(br#"{"entries":["#);
                for i in 0..n {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.entry(&mut out, conn, *seq);
                    *seq += 1;
                }
                out.extend_from_slice(b"]}");
            }
        }
        Bytes::from(out)
    }

    fn request(&self, body: Bytes) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
        Request::post(self.path_and_query.as_str())
            .header(header::HOST, self.host.clone())
            .header(header::AUTHORIZATION, self.auth.clone())
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .body(Full::new(body))
    }
}

/// Counters the progress line reads while the run goes on.
#[derive(Debug, Default)]
struct Live {
    requests: AtomicU64,
    entries: AtomicU64,
    errors: AtomicU64,
}

/// What one connection saw.
#[derive(Debug)]
struct Tally {
    sent_requests: u64,
    acknowledged_requests: u64,
    sent_entries: u64,
    acknowledged_entries: u64,
    /// 2xx answers whose entries were already in the log.
    duplicates: u64,
    errors: BTreeMap<String, u64>,
    /// Microseconds from sending a request to its full answer, for
    /// acknowledged requests.
    latency: Histogram<u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            sent_requests: 0,
            acknowledged_requests: 0,
            sent_entries: 0,
            acknowledged_entries: 0,
            duplicates: 0,
            errors: BTreeMap::new(),
            latency: new_histogram(),
        }
    }

    fn error(&mut self, live: &Live, what: String) {
        *self.errors.entry(what).or_default() += 1;
        live.errors.fetch_add(1, Ordering::Relaxed);
    }

    fn merge(&mut self, other: Tally) {
        self.sent_requests += other.sent_requests;
        self.acknowledged_requests += other.acknowledged_requests;
        self.sent_entries += other.sent_entries;
        self.acknowledged_entries += other.acknowledged_entries;
        self.duplicates += other.duplicates;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
    }
}

/// Microseconds, 1 µs to 10 minutes, three significant digits.
fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, 600_000_000, 3) {
        Ok(h) => h,
        // The bounds are constants that hdrhistogram accepts.
        Err(_) => Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits")),
    }
}

/// Opens one keep-alive connection.
async fn connect(plan: &Plan) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(&plan.addr)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes.
        let _ = conn.await;
    });
    Ok(sender)
}

/// One connection's loop: send, wait for the answer, record, repeat.
async fn connection(plan: Arc<Plan>, live: Arc<Live>, conn: u32, started: Instant) -> Tally {
    let mut tally = Tally::new();
    let mut seq = 0u64;
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let n = u64::from(plan.batch_size);
    while plan.take(started) {
        if sender.as_ref().is_none_or(SendRequest::is_closed) {
            match connect(&plan).await {
                Ok(s) => sender = Some(s),
                Err(e) => {
                    // The request this turn was for counts as failed; wait
                    // a little so a server that is down is not spun on.
                    tally.sent_requests += 1;
                    tally.sent_entries += n;
                    tally.error(&live, e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else { continue };
        let body = plan.body(conn, &mut seq);
        let req = match plan.request(body) {
            Ok(r) => r,
            Err(e) => {
                tally.error(&live, format!("request: {e}"));
                break;
            }
        };
        tally.sent_requests += 1;
        tally.sent_entries += n;
        let t0 = Instant::now();
        let answer = match s.ready().await {
            Ok(()) => s.send_request(req).await,
            Err(e) => Err(e),
        };
        let res = match answer {
            Ok(r) => r,
            Err(e) => {
                sender = None;
                tally.error(&live, format!("transport: {e}"));
                continue;
            }
        };
        let status = res.status();
        let body = match res.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                sender = None;
                tally.error(&live, format!("transport: reading the answer: {e}"));
                continue;
            }
        };
        let elapsed = t0.elapsed();
        if status.is_success() {
            if plan.wait_receipt && !contains(&body, b"\"receipt\"") {
                tally.error(&live, format!("{} without receipts", status.as_u16()));
                continue;
            }
            tally.acknowledged_requests += 1;
            tally.acknowledged_entries += n;
            if contains(&body, b"\"duplicate\":true") {
                tally.duplicates += 1;
            }
            let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
            tally.latency.saturating_record(us.max(1));
            live.requests.fetch_add(1, Ordering::Relaxed);
            live.entries.fetch_add(n, Ordering::Relaxed);
        } else {
            let code = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "-".to_owned());
            tally.error(&live, format!("{} {code}", status.as_u16()));
        }
    }
    tally
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Prints a progress line on stderr each second until `done`.
async fn progress(live: Arc<Live>, done: Arc<AtomicBool>, started: Instant) {
    let terminal = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last = 0u64;
    while !done.load(Ordering::Relaxed) {
        tick.tick().await;
        let entries = live.entries.load(Ordering::Relaxed);
        let line = format!(
            "{:6.1} s  {} requests  {} entries acknowledged  {} entries/s  {} errors",
            started.elapsed().as_secs_f64(),
            thousands(live.requests.load(Ordering::Relaxed)),
            thousands(entries),
            thousands(entries - last),
            thousands(live.errors.load(Ordering::Relaxed)),
        );
        last = entries;
        let mut err = std::io::stderr().lock();
        let _ = if terminal {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
    if terminal {
        eprint!("\r\x1b[K");
    }
}

async fn run(plan: Arc<Plan>, connections: u32, show_progress: bool) -> Report {
    let live = Arc::new(Live::default());
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let ticker = show_progress
        .then(|| tokio::spawn(progress(Arc::clone(&live), Arc::clone(&done), started)));
    let tasks: Vec<_> = (0..connections)
        .map(|c| tokio::spawn(connection(Arc::clone(&plan), Arc::clone(&live), c, started)))
        .collect();
    let mut total = Tally::new();
    for t in tasks {
        match t.await {
            Ok(tally) => total.merge(tally),
            Err(e) => *total.errors.entry(format!("task: {e}")).or_default() += 1,
        }
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    if let Some(t) = ticker {
        t.abort();
        let _ = t.await;
        if std::io::stderr().is_terminal() {
            eprint!("\r\x1b[K");
        }
    }
    Report::new(&plan, connections, elapsed, total)
}

/// The outcome of a run.
#[derive(Debug)]
struct Report {
    mode: Mode,
    connections: u32,
    batch_size: u32,
    wait_receipt: bool,
    entry_bytes: usize,
    seconds: f64,
    sent_requests: u64,
    acknowledged_requests: u64,
    sent_entries: u64,
    acknowledged_entries: u64,
    duplicates: u64,
    errors: BTreeMap<String, u64>,
    latency: Histogram<u64>,
}

impl Report {
    fn new(plan: &Plan, connections: u32, elapsed: Duration, t: Tally) -> Report {
        Report {
            mode: plan.mode,
            connections,
            batch_size: plan.batch_size,
            wait_receipt: plan.wait_receipt,
            entry_bytes: plan.entry_bytes,
            seconds: elapsed.as_secs_f64(),
            sent_requests: t.sent_requests,
            acknowledged_requests: t.acknowledged_requests,
            sent_entries: t.sent_entries,
            acknowledged_entries: t.acknowledged_entries,
            duplicates: t.duplicates,
            errors: t.errors,
            latency: t.latency,
        }
    }

    /// Why the run failed: nothing was acknowledged.
    fn failure(&self) -> Option<CmdError> {
        if self.acknowledged_requests > 0 {
            return None;
        }
        let why = self
            .errors
            .iter()
            .max_by_key(|(_, n)| **n)
            .map_or_else(|| "no request was sent".to_owned(), |(e, _)| e.clone());
        Some(CmdError::new(
            "bench.failed",
            format!("no request was acknowledged ({why})"),
        ))
    }

    fn per_second(&self, n: u64) -> f64 {
        if self.seconds > 0.0 {
            n as f64 / self.seconds
        } else {
            0.0
        }
    }

    fn until(&self) -> &'static str {
        if self.wait_receipt {
            "receipt"
        } else {
            "acknowledgement"
        }
    }

    /// Milliseconds at quantile `q` (0 with no sample).
    fn ms(&self, q: f64) -> f64 {
        if self.latency.is_empty() {
            0.0
        } else {
            self.latency.value_at_quantile(q) as f64 / 1000.0
        }
    }

    fn max_ms(&self) -> f64 {
        if self.latency.is_empty() {
            0.0
        } else {
            self.latency.max() as f64 / 1000.0
        }
    }

    fn json(&self) -> Value {
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        json!({
            "mode": match self.mode { Mode::Single => "single", Mode::Batch => "batch" },
            "connections": self.connections,
            "batch_size": self.batch_size,
            "wait_receipt": self.wait_receipt,
            "entry_bytes": self.entry_bytes,
            "seconds": round(self.seconds),
            "requests": {
                "sent": self.sent_requests,
                "acknowledged": self.acknowledged_requests,
                "failed": self.sent_requests - self.acknowledged_requests,
                "duplicates": self.duplicates,
            },
            "entries": {
                "sent": self.sent_entries,
                "acknowledged": self.acknowledged_entries,
            },
            "errors": self.errors,
            "throughput": {
                "requests_per_second": round(self.per_second(self.acknowledged_requests)),
                "entries_per_second": round(self.per_second(self.acknowledged_entries)),
            },
            "latency_ms": {
                "until": self.until(),
                "samples": self.latency.len(),
                "p50": round(self.ms(0.50)),
                "p90": round(self.ms(0.90)),
                "p99": round(self.ms(0.99)),
                "max": round(self.max_ms()),
                "mean": round(self.latency.mean() / 1000.0),
            },
        })
    }

    fn text(&self) -> String {
        let mut s = String::new();
        let what = match self.mode {
            Mode::Single => "single entries".to_owned(),
            Mode::Batch => format!("batches of {}", self.batch_size),
        };
        let _ = writeln!(
            s,
            "evident bench: {what}, {} connections, {:.1} s, entries ~{} bytes{}",
            self.connections,
            self.seconds,
            self.entry_bytes,
            if self.wait_receipt {
                ", ?wait=receipt"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "requests:   {} sent, {} acknowledged, {} failed",
            thousands(self.sent_requests),
            thousands(self.acknowledged_requests),
            thousands(self.sent_requests - self.acknowledged_requests)
        );
        let _ = writeln!(
            s,
            "entries:    {} sent, {} acknowledged",
            thousands(self.sent_entries),
            thousands(self.acknowledged_entries)
        );
        let _ = writeln!(
            s,
            "throughput: {} entries/s ({} requests/s)",
            rate(self.per_second(self.acknowledged_entries)),
            rate(self.per_second(self.acknowledged_requests))
        );
        let _ = writeln!(
            s,
            "latency to {} (ms): p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            self.until(),
            self.ms(0.50),
            self.ms(0.90),
            self.ms(0.99),
            self.max_ms()
        );
        if self.duplicates > 0 {
            let _ = writeln!(
                s,
                "duplicates: {} requests answered as already stored",
                thousands(self.duplicates)
            );
        }
        if self.errors.is_empty() {
            let _ = writeln!(s, "errors:     none");
        } else {
            let _ = writeln!(s, "errors:");
            for (what, n) in &self.errors {
                let _ = writeln!(s, "  {what}: {}", thousands(*n));
            }
        }
        s
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    group(&n.to_string())
}

/// A rate, rounded to a whole number, with thousands separators.
fn rate(x: f64) -> String {
    group(&format!("{x:.0}"))
}

fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn plan(extra: &[&str]) -> Plan {
        let mut argv = vec!["bench", "--api-key", "k", "--url", "http://127.0.0.1:9/"];
        argv.extend_from_slice(extra);
        Plan::new(&Cli::parse_from(argv).bench).unwrap()
    }

    #[test]
    fn entries_are_valid_json_of_about_the_asked_size_with_unique_ids() {
        let p = plan(&["--entry-bytes", "256"]);
        let mut seq = 7;
        let a = p.body(3, &mut seq);
        let b = p.body(3, &mut seq);
        assert_eq!(seq, 9);
        assert_eq!(a.len(), 256, "{}", String::from_utf8_lossy(&a));
        let a: Value = serde_json::from_slice(&a).unwrap();
        let b: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(a["kind"], "bench.append");
        assert_ne!(a["request_id"], b["request_id"]);
        assert!(
            a["request_id"]
                .as_str()
                .unwrap()
                .ends_with("-0003-0000000007"),
            "{a}"
        );
    }

    #[test]
    fn batches_hold_batch_size_entries() {
        let p = plan(&["--mode", "batch", "--batch-size", "5"]);
        let mut seq = 0;
        let body: Value = serde_json::from_slice(&p.body(0, &mut seq)).unwrap();
        let ids: std::collections::HashSet<_> = body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["request_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 5);
        assert_eq!(seq, 5);
    }

    #[test]
    fn urls_and_paths() {
        let p = plan(&["--wait-receipt", "--log", "audit"]);
        assert_eq!(p.addr, "127.0.0.1:9");
        assert_eq!(p.path_and_query, "/v1/logs/audit/entries?wait=receipt");
        let cli = Cli::parse_from(["bench", "--api-key", "k", "--url", "https://x"]);
        assert_eq!(
            Plan::new(&cli.bench).unwrap_err().code,
            "bench.bad_argument"
        );
    }

    #[test]
    fn request_limit_is_shared() {
        let p = plan(&["--requests", "3"]);
        let t = Instant::now();
        assert!(p.take(t) && p.take(t) && p.take(t));
        assert!(!p.take(t));
    }

    #[test]
    fn quantiles_come_from_the_histogram() {
        let mut t = Tally::new();
        for us in 1..=1000u64 {
            t.latency.record(us * 10).unwrap();
        }
        let plan = plan(&[]);
        let r = Report::new(&plan, 1, Duration::from_secs(1), t);
        assert!((r.ms(0.5) - 5.0).abs() < 0.01, "{}", r.ms(0.5));
        assert!((r.ms(0.99) - 9.9).abs() < 0.01, "{}", r.ms(0.99));
        assert!((r.max_ms() - 10.0).abs() < 0.01);
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(rate(30_617.4), "30,617");
    }
}
