//! `evident append`: NDJSON in, batches committed, one summary out.
//!
//! The input is read twice. The first pass parses and checks every line
//! and stores nothing, so one bad line rejects the whole input; the second
//! pass appends in batches, each one transaction with one signed
//! checkpoint. Standard input is spooled to a temporary file for the second
//! pass, so memory stays bounded whatever the input's size.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::path::PathBuf;

use clap::Args;
use evident_core::ErrorCode;
use evident_core::entry::{EntryDraft, Limits, parse_entry};
use evident_store::{Sequencer, Store};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::Format;
use crate::common::{CmdError, DataArgs, print_json};

/// Append entries to a log from NDJSON: one JSON object per line.
///
/// Each line needs `kind`; `parent`, `source`, `request_id`, `actor`,
/// `action`, `resource`, `outcome`, `occurred_at` and `data` are optional.
/// The log is created on first use. A line that fails to parse rejects the
/// whole input (with its line number and error code) and nothing is
/// stored. A line whose `request_id` is already in the log is answered with
/// the original entry and stored again nowhere. Blank lines are skipped.
///
/// Prints `{appended, duplicates, first_index, last_index, size}`.
#[derive(Debug, Args)]
pub struct AppendArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The log, as TENANT/LOG.
    #[arg(long)]
    log: String,
    /// NDJSON input file, or `-` for standard input.
    #[arg(default_value = "-")]
    input: PathBuf,
    /// Entries per batch (one transaction and one signed checkpoint each).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch_size: u32,
    /// Largest accepted body, in canonical bytes.
    #[arg(long, default_value_t = evident_core::entry::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

/// Reads lines into a reused buffer, counting physical lines.
struct Lines<R> {
    reader: R,
    buf: Vec<u8>,
    line: u64,
}

impl<R: BufRead> Lines<R> {
    fn new(reader: R) -> Self {
        Lines {
            reader,
            buf: Vec::with_capacity(4096),
            line: 0,
        }
    }

    /// The next non-blank line (without its newline) and its number.
    fn next_line(&mut self) -> std::io::Result<Option<(u64, &[u8])>> {
        loop {
            self.buf.clear();
            if self.reader.read_until(b'\n', &mut self.buf)? == 0 {
                return Ok(None);
            }
            self.line += 1;
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let mut end = self.buf.len();
            if self.buf[end - 1] == b'\n' {
                end -= 1;
            }
            return Ok(Some((self.line, &self.buf[..end])));
        }
    }
}

fn read_err(what: &str, e: &std::io::Error) -> CmdError {
    CmdError::new("io.read_failed", format!("{what}: {e}"))
}

/// Runs `append`.
pub fn append(args: &AppendArgs) -> Result<(), CmdError> {
    let dd = args.data.data_dir();
    let mut opened = dd.open()?;
    let signer = dd.signer(&mut opened)?;
    let limits = Limits {
        max_body_bytes: args.max_body_bytes,
        allow_reserved_kinds: false,
    };
    let what = args.input.display().to_string();

    // Pass 1: check every line; spool standard input for pass 2.
    let (mut source, spooled): (Box<dyn Read>, Option<File>) = if args.input.as_os_str() == "-" {
        let spool = tempfile::tempfile().map_err(|e| read_err("temporary file", &e))?;
        (Box::new(std::io::stdin().lock()), Some(spool))
    } else {
        let f = File::open(&args.input).map_err(|e| read_err(&what, &e))?;
        (Box::new(f), None)
    };
    let mut spool_writer = spooled
        .as_ref()
        .map(|f| std::io::BufWriter::with_capacity(1 << 20, f));
    // Indices this input would get if no line were a duplicate: an upper
    // bound, enough to reject a `parent` that can never be earlier.
    let start_size = match opened.find_log(&args.log)? {
        Some(log) => opened
            .store
            .latest_checkpoint(log.id)?
            .map_or(0, |c| c.size),
        None => 0,
    };
    let mut count = 0u64;
    {
        let mut lines = Lines::new(BufReader::with_capacity(1 << 20, &mut source));
        while let Some((n, line)) = lines.next_line().map_err(|e| read_err(&what, &e))? {
            if let Some(w) = spool_writer.as_mut() {
                w.write_all(line)
                    .and_then(|()| w.write_all(b"\n"))
                    .map_err(|e| read_err("temporary file", &e))?;
            }
            let draft = parse_entry(line, &limits).map_err(|e| CmdError {
                code: e.code().to_owned(),
                message: format!("{e}; nothing was appended"),
                line: Some(n),
            })?;
            let index = start_size + count;
            if let Some(p) = draft.parent.filter(|p| *p >= index) {
                return Err(CmdError {
                    code: "entry.bad_field".to_owned(),
                    message: format!(
                        "bad field \"parent\": parent {p} is not before this entry's index {index}; nothing was appended"
                    ),
                    line: Some(n),
                });
            }
            count += 1;
        }
    }
    drop(spool_writer);

    if count == 0 {
        Summary {
            size: start_size,
            ..Summary::default()
        }
        .print(args.format, &args.log);
        return Ok(());
    }
    let log = opened.log_or_create(&args.log)?;
    let mut seq = Sequencer::new(signer);
    let bar = progress_bar(args.format, count);

    // Pass 2: append in batches.
    let input: Box<dyn Read> = match spooled {
        Some(mut f) => {
            f.rewind().map_err(|e| read_err("temporary file", &e))?;
            Box::new(f)
        }
        None => Box::new(File::open(&args.input).map_err(|e| read_err(&what, &e))?),
    };
    let mut lines = Lines::new(BufReader::with_capacity(1 << 20, input));
    let mut batch: Vec<EntryDraft> = Vec::with_capacity(args.batch_size as usize);
    let mut summary = Summary::default();
    loop {
        let next = lines.next_line().map_err(|e| read_err(&what, &e))?;
        let done = next.is_none();
        if let Some((n, line)) = next {
            let draft = parse_entry(line, &limits).map_err(|e| CmdError {
                code: e.code().to_owned(),
                message: format!("{e} (input changed while being read?)"),
                line: Some(n),
            })?;
            batch.push(draft);
        }
        if batch.len() == args.batch_size as usize || (done && !batch.is_empty()) {
            let out = seq
                .append(&mut opened.store, &log, &batch)
                .map_err(|e| summary.partial_error(e.into()))?;
            summary.add(&out);
            bar.inc(batch.len() as u64);
            batch.clear();
        }
        if done {
            break;
        }
    }
    bar.finish_and_clear();
    if summary.appended == 0 {
        summary.size = start_size;
    }
    summary.print(args.format, &log.path());
    Ok(())
}

fn progress_bar(format: Format, total: u64) -> ProgressBar {
    // Only for people: JSON mode and non-terminals get no bar (indicatif
    // hides itself when stderr is not a terminal).
    if format == Format::Json || total < 50_000 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} appending {bar:40} {pos}/{len} entries ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

#[derive(Debug, Default)]
struct Summary {
    appended: u64,
    duplicates: u64,
    first_index: Option<u64>,
    last_index: Option<u64>,
    size: u64,
    clock_clamped: bool,
}

impl Summary {
    fn add(&mut self, out: &evident_store::BatchOutcome) {
        for e in &out.entries {
            if e.duplicate {
                self.duplicates += 1;
            } else {
                self.appended += 1;
                self.first_index.get_or_insert(e.index);
                self.last_index = Some(e.index);
            }
        }
        self.size = out.size;
        self.clock_clamped |= out.clock_clamped;
    }

    /// An error after some batches committed must say so: those entries
    /// are in the log.
    fn partial_error(&self, mut e: CmdError) -> CmdError {
        if self.appended > 0 {
            e.message = format!(
                "{}; {} entries appended before the error stay in the log (last index {})",
                e.message,
                self.appended,
                self.last_index.unwrap_or_default()
            );
        } else {
            e.message = format!("{}; nothing was appended", e.message);
        }
        e
    }

    fn print(&self, format: Format, log: &str) {
        match format {
            Format::Json => print_json(&json!({
                "appended": self.appended,
                "duplicates": self.duplicates,
                "first_index": self.first_index,
                "last_index": self.last_index,
                "size": self.size,
                "clock_clamped": self.clock_clamped,
            })),
            Format::Text => {
                match (self.first_index, self.last_index) {
                    (Some(a), Some(b)) => println!(
                        "appended {} entries to {log} (indices {a}..={b}); log size {}",
                        self.appended, self.size
                    ),
                    _ => println!("appended nothing to {log}; log size {}", self.size),
                }
                if self.duplicates > 0 {
                    println!(
                        "{} entries had a request_id already in the log and were not stored again",
                        self.duplicates
                    );
                }
                if self.clock_clamped {
                    eprintln!(
                        "warning: the clock was behind the log's last timestamp; ts was held at it"
                    );
                }
            }
        }
    }
}
