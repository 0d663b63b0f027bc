//! A plain driver, not a criterion benchmark: parses every line of an
//! NDJSON file with `parse_entry`, so that a profiler or
//! `valgrind --tool=callgrind` sees the entry reader and little else, with
//! instruction counts that do not depend on what else runs on the machine.
//!
//! ```sh
//! cargo run --release -p evident-store --example bench_input -- 20000 > /tmp/lines.ndjson
//! cargo bench -p evident-core --bench parse_lines --no-run
//! valgrind --tool=callgrind target/release/deps/parse_lines-* /tmp/lines.ndjson
//! ```
//!
//! Modes (second argument): `parse` (default) parses each line; `reread`
//! also reads each draft's body back from its canonical bytes, as
//! `evident append` did between its two passes.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use evident_core::entry::{Body, Limits, parse_entry};

fn main() {
    // `cargo bench` passes `--bench`; only the positional arguments count.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(path) = args.first() else {
        eprintln!("usage: parse_lines FILE.ndjson [parse|reread]");
        return;
    };
    let mode = args.get(1).map_or("parse", String::as_str);
    let text = std::fs::read(path).unwrap();
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let limits = Limits::default();
    let start = Instant::now();
    let mut bytes = 0usize;
    for line in &lines {
        let draft = parse_entry(line, &limits).unwrap();
        bytes += draft.body_bytes.len();
        if mode == "reread" {
            let body: Body = serde_json::from_slice(&draft.body_bytes).unwrap();
            assert_eq!(body, draft.body);
        }
        black_box(draft);
    }
    let took = start.elapsed();
    println!(
        "mode={mode} lines={} body_bytes={bytes} {:.3} us/line",
        lines.len(),
        took.as_secs_f64() * 1e6 / lines.len() as f64
    );
}
