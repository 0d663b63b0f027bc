//! The storage baseline for the append benchmark: what it costs SQLite alone
//! to store the same NDJSON lines durably.
//!
//! `cargo run --release -p evident-store --example sqlite_baseline -- input.ndjson baseline.db [--pad BYTES]`
//!
//! What it does: opens (creating) `baseline.db` in WAL mode with
//! `synchronous = FULL` and otherwise SQLite's defaults (4 KiB pages, 2 MiB
//! cache), creates `lines (id INTEGER PRIMARY KEY, request_id TEXT UNIQUE,
//! line TEXT)`, reads the input line by line, takes `request_id` out of
//! each line with a serde_json parse into a struct that borrows that one
//! field (the rest is scanned and skipped), and inserts `(request_id, line)`
//! with one prepared statement, committing every 10,000 rows. Each commit
//! is on disk before the next batch starts, as in Evident.
//!
//! What it does not do: validate or canonicalise the JSON, check for
//! unknown fields or lossy numbers, look request ids up before inserting
//! (the UNIQUE index enforces them, and a duplicate would be an error, not
//! an idempotent answer), hash, chain, build a Merkle tree or tiles, sign a
//! checkpoint, or store anything but the line. It is the floor that storage
//! alone sets on this machine.
//!
//! `--pad BYTES` stores BYTES of padding after each line (in the same
//! column), so the database can be made as large as Evident's for the same
//! input. A ledger stores more per entry than the line (envelope, canonical
//! body, salt, leaf hash); the padded run says what storing that many bytes
//! costs with the baseline's own method, which separates the cost of the
//! record's size from the cost of Evident's work on it.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::time::Instant;

use rusqlite::{Connection, params};
use serde::Deserialize;

const ROWS_PER_TXN: usize = 10_000;

#[derive(Deserialize)]
struct RequestId<'a> {
    #[serde(borrow)]
    request_id: Cow<'a, str>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: sqlite_baseline INPUT.ndjson DATABASE [--pad BYTES]";
    let (Some(input), Some(db)) = (args.next(), args.next()) else {
        return Err(usage.into());
    };
    let pad = match (args.next().as_deref(), args.next()) {
        (None, _) => String::new(),
        (Some("--pad"), Some(n)) => " ".repeat(n.parse().map_err(|_| usage)?),
        _ => return Err(usage.into()),
    };
    let mut stored = String::with_capacity(4096);
    let started = Instant::now();
    let mut conn = Connection::open(&db)?;
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         CREATE TABLE lines (id INTEGER PRIMARY KEY, request_id TEXT UNIQUE, line TEXT);",
    )?;
    let mut reader = BufReader::with_capacity(1 << 20, File::open(&input)?);
    let mut buf = String::with_capacity(4096);
    let mut rows = 0u64;
    let mut done = false;
    while !done {
        let tx = conn.transaction()?;
        {
            let mut stmt =
                tx.prepare_cached("INSERT INTO lines (request_id, line) VALUES (?1, ?2)")?;
            let mut in_txn = 0;
            while in_txn < ROWS_PER_TXN {
                buf.clear();
                if reader.read_line(&mut buf)? == 0 {
                    done = true;
                    break;
                }
                let line = buf.trim_end_matches('\n');
                if line.is_empty() {
                    continue;
                }
                let id: RequestId<'_> = serde_json::from_str(line)?;
                let line = if pad.is_empty() {
                    line
                } else {
                    stored.clear();
                    stored.push_str(line);
                    stored.push_str(&pad);
                    stored.as_str()
                };
                stmt.execute(params![id.request_id.as_ref(), line])?;
                in_txn += 1;
            }
            rows += in_txn as u64;
        }
        tx.commit()?;
    }
    println!(
        "{{\"rows\":{rows},\"seconds\":{:.3}}}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
