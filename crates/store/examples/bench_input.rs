//! Writes the benchmark input: N NDJSON lines of about 256 bytes each, the
//! same bytes for the same N on every machine.
//!
//! `cargo run --release -p evident-store --example bench_input -- 1000000 > input.ndjson`
//!
//! Each line is one audit event as a client would send it: `kind`, `actor`,
//! `action`, `resource`, `outcome`, `occurred_at`, a `request_id` unique in
//! the file, and a small `data` object. Field values come from a fixed-seed
//! xorshift generator, so the input varies like real traffic (names,
//! numbers and lengths differ from line to line) yet is reproducible.

use std::io::{BufWriter, Write};

use evident_core::entry::format_ts;

/// xorshift64*: small, fast and fixed, so the input never changes with a
/// dependency's version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[usize::try_from(self.below(from.len() as u64)).unwrap_or(0)]
    }
}

const EVENTS: &[(&str, &str)] = &[
    ("auth.login", "login"),
    ("auth.logout", "logout"),
    ("auth.mfa", "verify"),
    ("access.granted", "read"),
    ("access.denied", "read"),
    ("record.updated", "update"),
    ("record.created", "create"),
    ("record.deleted", "delete"),
    ("admin.role_changed", "grant"),
    ("billing.invoice", "issue"),
];
const OUTCOMES: &[&str] = &["success", "success", "success", "failure", "denied"];
const RESOURCES: &[&str] = &[
    "customer", "invoice", "document", "project", "account", "report",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 1_000_000,
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let out = std::io::stdout().lock();
    let mut w = BufWriter::with_capacity(1 << 20, out);
    // 2026-11-22T00:00:00Z, in microseconds; events ~50 ms apart.
    let mut t: i64 = 1_795_305_600_000_000;
    for i in 0..n {
        let (kind, action) = EVENTS[usize::try_from(rng.below(EVENTS.len() as u64))?];
        t += i64::try_from(rng.below(100_000))?;
        let occurred_at = format_ts(t);
        writeln!(
            w,
            concat!(
                r#"{{"kind":"{}","actor":"user-{:06}","action":"{}","#,
                r#""resource":"{}/{:07}","outcome":"{}","#,
                r#""occurred_at":"{}","#,
                r#""request_id":"req-{:010}-{:08x}","#,
                r#""data":{{"ip":"10.{}.{}.{}","session":"{:08x}","attempt":{}}}}}"#
            ),
            kind,
            rng.below(200_000),
            action,
            rng.pick(RESOURCES),
            rng.below(10_000_000),
            rng.pick(OUTCOMES),
            occurred_at,
            i,
            rng.next() & 0xFFFF_FFFF,
            rng.below(256),
            rng.below(256),
            rng.below(256),
            rng.next() >> 32,
            1 + rng.below(3),
        )?;
    }
    w.flush()?;
    Ok(())
}
