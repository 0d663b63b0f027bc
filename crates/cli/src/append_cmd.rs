//! `evident append`: NDJSON in, batches committed, one summary out.
//!
//! The input is read once and checked completely before anything is
//! stored, so one bad line rejects the whole input. Checking (parsing,
//! validating and canonicalising every line) is the costly part and runs on
//! every core, in chunks of lines whose results are put back in input
//! order. What it produces — each entry's kind, parent, source and
//! canonical body bytes — is kept in a temporary file rather than in
//! memory, so memory stays bounded whatever the input's size (the file
//! takes about as much disk as the input).
//!
//! The second pass reads that file back and appends in batches, each one
//! transaction with one signed checkpoint, while another thread reads the
//! next entries back (at most a batch, and at most [`READ_AHEAD`], ahead):
//! the costly checks are not repeated, and memory is one batch of parsed
//! entries plus that.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Mutex, mpsc};

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

/// Non-blank lines per chunk handed to a checking thread.
const CHUNK_LINES: usize = 1024;

/// Lines of the input, with their physical line numbers.
#[derive(Debug, Default)]
struct Chunk {
    /// Position of the chunk in the input.
    seq: u64,
    /// How many non-blank lines come before the chunk.
    first: u64,
    text: Vec<u8>,
    /// Line number and place in `text` of each non-blank line, without its
    /// newline.
    lines: Vec<(u64, Range<usize>)>,
}

impl Chunk {
    /// Refills the chunk with up to [`CHUNK_LINES`] non-blank lines;
    /// `line` counts physical lines across calls.
    fn fill(&mut self, reader: &mut impl BufRead, line: &mut u64) -> std::io::Result<()> {
        self.text.clear();
        self.lines.clear();
        while self.lines.len() < CHUNK_LINES {
            let start = self.text.len();
            if reader.read_until(b'\n', &mut self.text)? == 0 {
                break;
            }
            *line += 1;
            let mut end = self.text.len();
            if self.text[end - 1] == b'\n' {
                end -= 1;
            }
            if self.text[start..end].iter().all(u8::is_ascii_whitespace) {
                self.text.truncate(start);
                continue;
            }
            self.lines.push((*line, start..end));
        }
        Ok(())
    }
}

/// What a checking thread made of a chunk: the spooled entries, or the
/// chunk's first bad line.
struct Checked {
    seq: u64,
    result: Result<(Vec<u8>, u64), CmdError>,
    chunk: Chunk,
}

/// Checks every line of a chunk as `append` would store it (the
/// entry's rules and its parent against the index it would get), writing
/// the drafts to `out`. Stops at the first bad line.
fn check_chunk(
    chunk: &Chunk,
    start_size: u64,
    limits: &Limits,
    out: &mut Vec<u8>,
) -> Result<u64, CmdError> {
    for (k, (n, range)) in chunk.lines.iter().enumerate() {
        let draft = parse_entry(&chunk.text[range.clone()], limits).map_err(|e| CmdError {
            code: e.code().to_owned(),
            message: format!("{e}; nothing was appended"),
            line: Some(*n),
        })?;
        // Indices this input would get if no line were a duplicate: an
        // upper bound, enough to reject a `parent` that can never be
        // earlier.
        let index = start_size + chunk.first + k as u64;
        if let Some(p) = draft.parent.filter(|p| *p >= index) {
            return Err(CmdError {
                code: "entry.bad_field".to_owned(),
                message: format!(
                    "bad field \"parent\": parent {p} is not before this entry's index {index}; nothing was appended"
                ),
                line: Some(*n),
            });
        }
        spool::write(&draft, out);
    }
    Ok(chunk.lines.len() as u64)
}

/// Pass 1: reads and checks the whole input on `workers` threads, writing
/// the drafts to `spool` in input order. Returns the number of entries,
/// or the input's first bad line.
fn check_input(
    source: impl Read,
    what: &str,
    start_size: u64,
    limits: &Limits,
    spool: &mut impl Write,
) -> Result<u64, CmdError> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let (work_tx, work_rx) = mpsc::sync_channel::<Chunk>(workers);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::channel::<Checked>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let done_tx = done_tx.clone();
            let work_rx = &work_rx;
            scope.spawn(move || {
                loop {
                    // A poisoned lock or a closed channel both mean stop.
                    let next = work_rx.lock().ok().and_then(|rx| rx.recv().ok());
                    let Some(chunk) = next else { break };
                    let mut out = Vec::with_capacity(chunk.text.len() + chunk.text.len() / 4);
                    let result =
                        check_chunk(&chunk, start_size, limits, &mut out).map(|n| (out, n));
                    let seq = chunk.seq;
                    if done_tx.send(Checked { seq, result, chunk }).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let result = merge_checked(source, what, workers, &work_tx, &done_rx, spool);
        // Closing the work channel stops the threads, whatever happened.
        drop(work_tx);
        result
    })
}

/// Feeds chunks to the checking threads and writes their results in input
/// order; the first bad line in that order is the error.
fn merge_checked(
    source: impl Read,
    what: &str,
    workers: usize,
    work: &mpsc::SyncSender<Chunk>,
    done: &mpsc::Receiver<Checked>,
    spool: &mut impl Write,
) -> Result<u64, CmdError> {
    let mut reader = BufReader::with_capacity(1 << 20, source);
    let mut line = 0u64;
    let mut lines = 0u64;
    let mut sent = 0u64;
    let mut written = 0u64;
    let mut eof = false;
    let mut free: Vec<Chunk> = Vec::new();
    let mut ready: BTreeMap<u64, Checked> = BTreeMap::new();
    loop {
        // Keep every thread busy with a chunk queued behind it.
        while !eof && sent - written - (ready.len() as u64) < 2 * workers as u64 {
            let mut chunk = free.pop().unwrap_or_default();
            chunk
                .fill(&mut reader, &mut line)
                .map_err(|e| read_err(what, &e))?;
            if chunk.lines.is_empty() {
                eof = true;
                break;
            }
            chunk.seq = sent;
            chunk.first = lines;
            lines += chunk.lines.len() as u64;
            sent += 1;
            work.send(chunk)
                .map_err(|_| CmdError::new("cli.internal", "the checking threads stopped"))?;
        }
        if written == sent {
            return Ok(lines);
        }
        let checked = done
            .recv()
            .map_err(|_| CmdError::new("cli.internal", "the checking threads stopped"))?;
        ready.insert(checked.seq, checked);
        while let Some(checked) = ready.remove(&written) {
            let (out, _) = checked.result?;
            spool
                .write_all(&out)
                .map_err(|e| read_err("temporary file", &e))?;
            written += 1;
            free.push(checked.chunk);
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

    let start_size = match opened.find_log(&args.log)? {
        Some(log) => opened
            .store
            .latest_checkpoint(log.id)?
            .map_or(0, |c| c.size),
        None => 0,
    };

    // Pass 1: check every line, keeping the drafts for pass 2.
    let source: Box<dyn Read> = if args.input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(&args.input).map_err(|e| read_err(&what, &e))?)
    };
    let mut spool = tempfile::tempfile().map_err(|e| read_err("temporary file", &e))?;
    let count = {
        let mut w = BufWriter::with_capacity(1 << 20, &mut spool);
        let count = check_input(source, &what, start_size, &limits, &mut w)?;
        w.flush().map_err(|e| read_err("temporary file", &e))?;
        count
    };

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

    // Pass 2: append in batches, while another thread reads the next
    // drafts back in chunks. It runs at most one batch (and at most
    // [`READ_AHEAD`] drafts) ahead, so memory is one batch plus that,
    // whatever the batch size. Appended batches go back to that thread,
    // which frees their drafts.
    spool.rewind().map_err(|e| read_err("temporary file", &e))?;
    let batch_size = args.batch_size as usize;
    let mut summary = Summary::default();
    let read_chunk = READ_CHUNK.min(batch_size);
    let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Result<Vec<EntryDraft>, CmdError>>(
        (READ_AHEAD.min(batch_size) / read_chunk).max(1),
    );
    let (back_tx, back_rx) = mpsc::channel::<Vec<EntryDraft>>();
    let appended = std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut reader = spool::Reader::new(BufReader::with_capacity(1 << 20, spool));
            loop {
                // Drop what was appended here, off the appending thread.
                while let Ok(done) = back_rx.try_recv() {
                    drop(done);
                }
                let mut chunk = Vec::with_capacity(read_chunk);
                let mut failed = None;
                while chunk.len() < read_chunk {
                    match reader.next() {
                        Ok(Some(d)) => chunk.push(d),
                        Ok(None) => break,
                        Err(e) => {
                            failed = Some(read_err("temporary file", &e));
                            break;
                        }
                    }
                }
                let msg = match failed {
                    Some(e) => Err(e),
                    None if chunk.is_empty() => break,
                    None => Ok(chunk),
                };
                let stop = msg.is_err();
                if chunk_tx.send(msg).is_err() || stop {
                    break;
                }
            }
        });
        let mut batch: Vec<EntryDraft> = Vec::with_capacity(batch_size);
        for chunk in chunk_rx.iter() {
            let mut drafts = chunk.map_err(|e| summary.partial_error(e))?.into_iter();
            loop {
                batch.extend(drafts.by_ref().take(batch_size - batch.len()));
                if batch.len() < batch_size {
                    break;
                }
                append_batch(
                    &mut seq,
                    &mut opened.store,
                    &log,
                    &batch,
                    &mut summary,
                    &bar,
                )?;
                let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                let _ = back_tx.send(full);
            }
        }
        // The last, short batch.
        if !batch.is_empty() {
            append_batch(
                &mut seq,
                &mut opened.store,
                &log,
                &batch,
                &mut summary,
                &bar,
            )?;
        }
        Ok::<(), CmdError>(())
    });
    bar.finish_and_clear();
    appended?;
    if summary.appended == 0 {
        summary.size = start_size;
    }
    summary.print(args.format, &log.path());
    Ok(())
}

/// The temporary file between the passes: each checked entry's kind,
/// parent, source and canonical body bytes. The body's fields are read
/// back from its canonical bytes (what the parser itself keeps), so a
/// draft read back equals the one the input line parsed to.
mod spool {
    use std::io::{self, Read};

    use evident_core::entry::{Body, EntryDraft, Source};

    fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
        // Kinds, producer ids and bodies are far below 4 GiB (the body is
        // capped by --max-body-bytes, checked before this).
        out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(b);
    }

    /// Appends one draft to `out`.
    pub(super) fn write(d: &EntryDraft, out: &mut Vec<u8>) {
        put_bytes(out, d.kind.as_bytes());
        let flags = u8::from(d.parent.is_some()) | (u8::from(d.source.is_some()) << 1);
        out.push(flags);
        if let Some(p) = d.parent {
            out.extend_from_slice(&p.to_le_bytes());
        }
        if let Some(s) = &d.source {
            put_bytes(out, s.id.as_bytes());
            out.extend_from_slice(&s.seq.to_le_bytes());
        }
        put_bytes(out, &d.body_bytes);
    }

    /// Reads drafts back in order.
    pub(super) struct Reader<R> {
        inner: R,
    }

    fn corrupt(what: &str) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, format!("spooled entry: {what}"))
    }

    impl<R: Read> Reader<R> {
        pub(super) fn new(inner: R) -> Self {
            Reader { inner }
        }

        fn u64(&mut self) -> io::Result<u64> {
            let mut b = [0u8; 8];
            self.inner.read_exact(&mut b)?;
            Ok(u64::from_le_bytes(b))
        }

        fn bytes(&mut self) -> io::Result<Vec<u8>> {
            let mut n = [0u8; 4];
            self.inner.read_exact(&mut n)?;
            let mut b = vec![0u8; u32::from_le_bytes(n) as usize];
            self.inner.read_exact(&mut b)?;
            Ok(b)
        }

        fn string(&mut self) -> io::Result<String> {
            String::from_utf8(self.bytes()?).map_err(|_| corrupt("not UTF-8"))
        }

        /// The next draft, or `None` at the end.
        pub(super) fn next(&mut self) -> io::Result<Option<EntryDraft>> {
            // The end is only clean between entries.
            let mut first = [0u8];
            loop {
                match self.inner.read(&mut first) {
                    Ok(0) => return Ok(None),
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            let mut n = [first[0], 0, 0, 0];
            self.inner.read_exact(&mut n[1..])?;
            let mut kind = vec![0u8; u32::from_le_bytes(n) as usize];
            self.inner.read_exact(&mut kind)?;
            let kind = String::from_utf8(kind).map_err(|_| corrupt("not UTF-8"))?;
            let mut flags = [0u8];
            self.inner.read_exact(&mut flags)?;
            let parent = if flags[0] & 1 != 0 {
                Some(self.u64()?)
            } else {
                None
            };
            let source = if flags[0] & 2 != 0 {
                let id = self.string()?;
                Some(Source {
                    id,
                    seq: self.u64()?,
                })
            } else {
                None
            };
            let body_bytes = self.bytes()?;
            let body: Body =
                serde_json::from_slice(&body_bytes).map_err(|e| corrupt(&e.to_string()))?;
            Ok(Some(EntryDraft {
                kind,
                parent,
                source,
                body,
                body_bytes,
            }))
        }
    }
}

/// Drafts per chunk read back from the spool in pass 2 (fewer when the
/// batch is smaller).
const READ_CHUNK: usize = 1000;

/// How far the reading thread may run ahead of the appending one.
const READ_AHEAD: usize = 10_000;

fn append_batch(
    seq: &mut Sequencer,
    store: &mut dyn Store,
    log: &evident_store::LogInfo,
    batch: &[EntryDraft],
    summary: &mut Summary,
    bar: &ProgressBar,
) -> Result<(), CmdError> {
    let out = seq
        .append(store, log, batch)
        .map_err(|e| summary.partial_error(e.into()))?;
    summary.add(&out);
    bar.inc(batch.len() as u64);
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A draft read back from the spool equals the one its line parsed to,
    /// for bodies whose canonical form differs from the input.
    #[test]
    fn spooled_drafts_read_back_equal() {
        let inputs = [
            r#"{"kind":"a"}"#,
            r#"{"kind":"a.b","parent":3,"source":{"id":"node-1","seq":9007199254740992}}"#,
            r#"{"request_id":"r1","kind":"k","data":null}"#,
            r#"{"kind":"k","data":{"z":1.0,"a":[-0,1e2,0.5,"\u00e9\n\ud83d\ude00"],"m":{"y":{},"x":[]}},"actor":"\u0041"}"#,
            r#"{"kind":"k","occurred_at":"2026-01-01T00:00:00+01:00","outcome":"ok","resource":"r","action":"x"}"#,
        ];
        let mut out = Vec::new();
        let mut want = Vec::new();
        for line in inputs {
            let d = parse_entry(line.as_bytes(), &Limits::default()).unwrap();
            spool::write(&d, &mut out);
            want.push(d);
        }
        let mut r = spool::Reader::new(&out[..]);
        for w in &want {
            assert_eq!(r.next().unwrap().as_ref(), Some(w));
        }
        assert!(r.next().unwrap().is_none());
        // A cut record is an error, not a short input.
        let mut r = spool::Reader::new(&out[..out.len() - 1]);
        for _ in 1..want.len() {
            r.next().unwrap();
        }
        assert!(r.next().is_err());
    }

    #[test]
    fn chunks_skip_blank_lines_and_count_every_line() {
        let text = "a\n\n  \nb\r\nc";
        let mut reader = text.as_bytes();
        let mut chunk = Chunk::default();
        let mut line = 0;
        chunk.fill(&mut reader, &mut line).unwrap();
        let got: Vec<(u64, &[u8])> = chunk
            .lines
            .iter()
            .map(|(n, r)| (*n, &chunk.text[r.clone()]))
            .collect();
        assert_eq!(got, [(1, &b"a"[..]), (4, b"b\r"), (5, b"c")]);
        chunk.fill(&mut reader, &mut line).unwrap();
        assert!(chunk.lines.is_empty());
    }
}
