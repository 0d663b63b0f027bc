//! `evident append`: NDJSON in, batches committed, one summary out.
//!
//! The input is read once and checked completely before anything is
//! stored, so one bad line rejects the whole input. Checking (parsing,
//! validating and canonicalising every line) is the costly part and runs on
//! every core, in chunks of lines whose results are put back in input
//! order. What it produces — each entry's kind, parent, source, canonical
//! body bytes and body fields — is kept in a temporary file rather than in
//! memory, so memory stays bounded whatever the input's size (the file
//! takes up to about twice the input's size on disk).
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
    crate::writes_cmd::refuse_if_paused(&mut *opened.store)?;
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

    // Pass 2: append in batches.
    let mut summary = Summary::default();
    spool.rewind().map_err(|e| read_err("temporary file", &e))?;
    let appended = append_in_batches(
        BufReader::with_capacity(1 << 20, spool),
        args.batch_size as usize,
        |batch| {
            append_batch(
                &mut seq,
                &mut *opened.store,
                &log,
                batch,
                &mut summary,
                &bar,
            )
        },
    )
    .map_err(|e| summary.partial_error(e));
    bar.finish_and_clear();
    appended?;
    if summary.appended == 0 {
        summary.size = start_size;
    }
    summary.print(args.format, &log.path());
    Ok(())
}

/// Pass 2: calls `append` with each batch of `batch_size` drafts (the
/// last one shorter) read back from the spool, while another thread reads
/// the next ones. It runs at most one batch (and at most [`READ_AHEAD`]
/// drafts) ahead, so memory is one batch plus that, whatever the batch
/// size. Appended batches go back to that thread, which frees their drafts.
///
/// The first error, from `append` or from reading, ends it. The channel's
/// receiver is moved into the closure the scope runs, so that an early
/// return from it drops the receiver before the scope joins the reading
/// thread, which, blocked on a full channel, wakes and stops. With the
/// receiver borrowed from outside the scope, a failed batch (a database
/// locked past the busy timeout) left the command waiting for that thread
/// for ever.
fn append_in_batches(
    spooled: impl Read + Send,
    batch_size: usize,
    mut append: impl FnMut(&[EntryDraft]) -> Result<(), CmdError>,
) -> Result<(), CmdError> {
    let read_chunk = READ_CHUNK.min(batch_size);
    let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Result<Vec<EntryDraft>, CmdError>>(
        (READ_AHEAD.min(batch_size) / read_chunk).max(1),
    );
    let (back_tx, back_rx) = mpsc::channel::<Vec<EntryDraft>>();
    std::thread::scope(move |scope| {
        scope.spawn(move || {
            let mut reader = spool::Reader::new(spooled);
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
                // Salted and digested here, so that sealing, which the
                // inserts wait for, only writes envelopes and hashes them.
                if failed.is_none()
                    && let Err(e) = evident_store::sequencer::salt_drafts(&mut chunk)
                {
                    failed = Some(CmdError::from(e));
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
        for chunk in chunk_rx {
            let mut drafts = chunk?.into_iter();
            loop {
                batch.extend(drafts.by_ref().take(batch_size - batch.len()));
                if batch.len() < batch_size {
                    break;
                }
                append(&batch)?;
                let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                let _ = back_tx.send(full);
            }
        }
        // The last, short batch.
        if !batch.is_empty() {
            append(&batch)?;
        }
        Ok(())
    })
}

/// The temporary file between the passes: each checked entry as pass 1
/// parsed it — kind, parent, source, canonical body bytes, and the body's
/// fields as values — so that pass 2 rebuilds the draft by copying, with
/// nothing parsed or checked twice. (Reading the body's fields back from
/// its canonical JSON cost pass 2 more than sealing the entry did.)
///
/// A record is a little-endian `u32` length and that many bytes. Strings
/// and byte strings are a `u32` length and their bytes; the body's `data`
/// is a tree of tagged values (see [`put_value`]). The file lives only as
/// long as the command, and is read only by the code that wrote it.
mod spool {
    use std::io::{self, Read};

    use evident_core::entry::{Body, EntryDraft, Source};
    use serde_json::{Map, Number, Value};

    fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
        // Kinds, producer ids and bodies are far below 4 GiB (the body is
        // capped by --max-body-bytes, checked before this).
        out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(b);
    }

    fn put_opt_str(out: &mut Vec<u8>, s: Option<&String>) {
        match s {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                put_bytes(out, s.as_bytes());
            }
        }
    }

    const NULL: u8 = 0;
    const FALSE: u8 = 1;
    const TRUE: u8 = 2;
    const U64: u8 = 3;
    const I64: u8 = 4;
    const F64: u8 = 5;
    const STRING: u8 = 6;
    const ARRAY: u8 = 7;
    const OBJECT: u8 = 8;

    /// A JSON value as a tag byte and its contents: numbers as the `u64`,
    /// `i64` or `f64` serde_json holds (so they read back as the same
    /// variant), strings as bytes, arrays and objects as a `u32` count and
    /// their items (an object's as name and value).
    fn put_value(out: &mut Vec<u8>, v: &Value) {
        match v {
            Value::Null => out.push(NULL),
            Value::Bool(false) => out.push(FALSE),
            Value::Bool(true) => out.push(TRUE),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    out.push(U64);
                    out.extend_from_slice(&u.to_le_bytes());
                } else if let Some(i) = n.as_i64() {
                    out.push(I64);
                    out.extend_from_slice(&i.to_le_bytes());
                } else {
                    out.push(F64);
                    let f = n.as_f64().unwrap_or_default();
                    out.extend_from_slice(&f.to_bits().to_le_bytes());
                }
            }
            Value::String(s) => {
                out.push(STRING);
                put_bytes(out, s.as_bytes());
            }
            Value::Array(a) => {
                out.push(ARRAY);
                put_len(out, a.len());
                for item in a {
                    put_value(out, item);
                }
            }
            Value::Object(m) => {
                out.push(OBJECT);
                put_len(out, m.len());
                for (k, item) in m {
                    put_bytes(out, k.as_bytes());
                    put_value(out, item);
                }
            }
        }
    }

    fn put_len(out: &mut Vec<u8>, n: usize) {
        out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
    }

    /// Appends one draft to `out`.
    pub(super) fn write(d: &EntryDraft, out: &mut Vec<u8>) {
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        put_bytes(out, d.kind.as_bytes());
        let flags = u8::from(d.parent.is_some())
            | (u8::from(d.source.is_some()) << 1)
            | (u8::from(d.body.data.is_some()) << 2);
        out.push(flags);
        if let Some(p) = d.parent {
            out.extend_from_slice(&p.to_le_bytes());
        }
        if let Some(s) = &d.source {
            put_bytes(out, s.id.as_bytes());
            out.extend_from_slice(&s.seq.to_le_bytes());
        }
        put_bytes(out, &d.body_bytes);
        let b = &d.body;
        for s in [
            &b.request_id,
            &b.actor,
            &b.action,
            &b.resource,
            &b.outcome,
            &b.occurred_at,
        ] {
            put_opt_str(out, s.as_ref());
        }
        if let Some(data) = &b.data {
            put_value(out, data);
        }
        let len = u32::try_from(out.len() - at - 4).unwrap_or(u32::MAX);
        out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }

    /// Reads drafts back in order.
    pub(super) struct Reader<R> {
        inner: R,
        record: Vec<u8>,
    }

    fn corrupt(what: &str) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, format!("spooled entry: {what}"))
    }

    /// Deeper than any value the entry reader accepts (serde_json stops at
    /// 128 levels); a guard against a damaged file, not a limit on input.
    const MAX_DEPTH: usize = 256;

    /// One record's bytes, read front to back.
    struct Cursor<'a>(&'a [u8]);

    impl Cursor<'_> {
        fn take(&mut self, n: usize) -> io::Result<&[u8]> {
            if self.0.len() < n {
                return Err(corrupt("cut short"));
            }
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            Ok(head)
        }

        fn u8(&mut self) -> io::Result<u8> {
            Ok(self.take(1)?[0])
        }

        fn u64(&mut self) -> io::Result<u64> {
            let b = self.take(8)?;
            Ok(u64::from_le_bytes(
                b.try_into().map_err(|_| corrupt("cut short"))?,
            ))
        }

        fn len(&mut self) -> io::Result<usize> {
            let b = self.take(4)?;
            Ok(u32::from_le_bytes(b.try_into().map_err(|_| corrupt("cut short"))?) as usize)
        }

        fn bytes(&mut self) -> io::Result<Vec<u8>> {
            let n = self.len()?;
            Ok(self.take(n)?.to_vec())
        }

        fn string(&mut self) -> io::Result<String> {
            String::from_utf8(self.bytes()?).map_err(|_| corrupt("not UTF-8"))
        }

        fn opt_string(&mut self) -> io::Result<Option<String>> {
            match self.u8()? {
                0 => Ok(None),
                1 => self.string().map(Some),
                _ => Err(corrupt("bad flag")),
            }
        }

        fn value(&mut self, depth: usize) -> io::Result<Value> {
            if depth > MAX_DEPTH {
                return Err(corrupt("nested too deep"));
            }
            Ok(match self.u8()? {
                NULL => Value::Null,
                FALSE => Value::Bool(false),
                TRUE => Value::Bool(true),
                U64 => Value::Number(self.u64()?.into()),
                I64 => Value::Number(i64::from_le_bytes(self.u64()?.to_le_bytes()).into()),
                F64 => Number::from_f64(f64::from_bits(self.u64()?))
                    .map(Value::Number)
                    .ok_or_else(|| corrupt("not a finite number"))?,
                STRING => Value::String(self.string()?),
                ARRAY => {
                    let n = self.len()?;
                    // Each item takes at least a byte: a damaged count
                    // cannot make a huge allocation.
                    let mut items = Vec::with_capacity(n.min(self.0.len()));
                    for _ in 0..n {
                        items.push(self.value(depth + 1)?);
                    }
                    Value::Array(items)
                }
                OBJECT => {
                    let n = self.len()?;
                    let mut map = Map::new();
                    for _ in 0..n {
                        let k = self.string()?;
                        map.insert(k, self.value(depth + 1)?);
                    }
                    Value::Object(map)
                }
                _ => return Err(corrupt("bad value tag")),
            })
        }
    }

    impl<R: Read> Reader<R> {
        pub(super) fn new(inner: R) -> Self {
            Reader {
                inner,
                record: Vec::new(),
            }
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
            self.record.resize(u32::from_le_bytes(n) as usize, 0);
            self.inner.read_exact(&mut self.record)?;
            let mut c = Cursor(&self.record);
            let kind = c.string()?;
            let flags = c.u8()?;
            let parent = if flags & 1 != 0 { Some(c.u64()?) } else { None };
            let source = if flags & 2 != 0 {
                let id = c.string()?;
                Some(Source { id, seq: c.u64()? })
            } else {
                None
            };
            let body_bytes = c.bytes()?;
            let body = Body {
                request_id: c.opt_string()?,
                actor: c.opt_string()?,
                action: c.opt_string()?,
                resource: c.opt_string()?,
                outcome: c.opt_string()?,
                occurred_at: c.opt_string()?,
                data: if flags & 4 != 0 {
                    Some(c.value(0)?)
                } else {
                    None
                },
            };
            if !c.0.is_empty() {
                return Err(corrupt("trailing bytes"));
            }
            Ok(Some(EntryDraft {
                kind,
                parent,
                source,
                body,
                body_bytes,
                salted: None,
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
    let out = seq.append(store, log, batch)?;
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

    /// Every kind of JSON value in `data` comes back as the same variant
    /// (an integer stays an integer, a double a double), deeply nested.
    #[test]
    fn spooled_values_of_every_kind_read_back() {
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let line = format!(
            r#"{{"kind":"k","data":{{"u":18446744073709551615,"i":-9223372036854775808e0,"f":0.5,"e":1e300,"t":true,"n":null,"s":"\u0000\"","a":[false,{{}},[]],"d":{deep}}}}}"#
        );
        let d = parse_entry(line.as_bytes(), &Limits::default());
        // u64::MAX has no double: the entry is refused, so use what is.
        assert!(d.is_err());
        let line = line.replace("18446744073709551615", "18446744073709552000");
        let line = line.replace("-9223372036854775808e0", "-9223372036854775000");
        let d = parse_entry(line.as_bytes(), &Limits::default()).unwrap();
        let mut out = Vec::new();
        spool::write(&d, &mut out);
        let mut r = spool::Reader::new(&out[..]);
        assert_eq!(r.next().unwrap(), Some(d));
        assert!(r.next().unwrap().is_none());
        // A damaged tag is an error.
        let at = out.iter().rposition(|&b| b == 7).unwrap();
        out[at] = 99;
        assert!(spool::Reader::new(&out[..]).next().is_err());
    }

    /// `count` drafts spooled, each with its number as its kind.
    fn spooled(count: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for n in 0..count {
            let line = format!(r#"{{"kind":"k{n}"}}"#);
            spool::write(
                &parse_entry(line.as_bytes(), &Limits::default()).unwrap(),
                &mut out,
            );
        }
        out
    }

    /// Runs `append_in_batches` on its own thread: a deadlock fails the
    /// test after a minute instead of hanging the suite (a guard against a
    /// hang, not a measure of speed).
    fn run_batches(
        spool: Vec<u8>,
        batch_size: usize,
        fail_at: Option<usize>,
    ) -> (Result<(), CmdError>, Vec<Vec<String>>) {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let out = append_in_batches(&spool[..], batch_size, |batch| {
                if fail_at == Some(seen.len()) {
                    return Err(CmdError::new("store.unavailable", "database is locked"));
                }
                seen.push(batch.iter().map(|d| d.kind.clone()).collect());
                Ok(())
            });
            let _ = tx.send((out, seen));
        });
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("append_in_batches did not return")
    }

    #[test]
    fn batches_come_in_order_with_the_last_one_short() {
        let (out, seen) = run_batches(spooled(2_345), 1_000, None);
        out.unwrap();
        let sizes: Vec<usize> = seen.iter().map(Vec::len).collect();
        assert_eq!(sizes, [1_000, 1_000, 345]);
        let kinds: Vec<String> = seen.into_iter().flatten().collect();
        let want: Vec<String> = (0..2_345).map(|n| format!("k{n}")).collect();
        assert_eq!(kinds, want);
    }

    /// A failed batch ends pass 2 with its error while the reading thread
    /// is blocked on a full channel (batches of 10 and 5,000 drafts
    /// spooled: it is); it used to wait for that thread for ever.
    #[test]
    fn a_failed_batch_returns_its_error_while_the_reader_waits() {
        for fail_at in [0, 3] {
            let (out, seen) = run_batches(spooled(5_000), 10, Some(fail_at));
            let e = out.unwrap_err();
            assert_eq!(e.code, "store.unavailable");
            assert_eq!(seen.len(), fail_at);
        }
    }

    /// A damaged spool is an error after the batches before the damage.
    #[test]
    fn a_cut_spool_is_an_error() {
        let mut spool = spooled(2_500);
        spool.truncate(spool.len() - 3);
        let (out, seen) = run_batches(spool, 1_000, None);
        assert_eq!(out.unwrap_err().code, "io.read_failed");
        assert_eq!(seen.len(), 2);
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
