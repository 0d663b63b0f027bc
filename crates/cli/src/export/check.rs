//! Verifying an export offline: the same [`LogVerifier`] as `evident
//! verify`, fed from the export's files instead of a database, plus a check
//! that the hash tiles are the ones the entries make.
//!
//! One streaming pass over the entry bundles, in order. Each entry goes to
//! the verifier with the level-0 tile's hash at its position as its stored
//! leaf hash and its body (if any) from `bodies.ndjson`, and into a
//! [`TreeEdge`] that rebuilds every hash tile. Each rebuilt tile is
//! compared with the export's file as soon as it is complete. Then the
//! `tile/` tree is walked for files that are not tiles of the signed tree.
//! Memory is one bundle, one tile and the tree's right edge.
//!
//! The tiles are checked even though the verifier needs only the bundles:
//! the tiles are what C2SP clients read, and a tile that does not match
//! the entries would mislead one (Go's `TileHashReader`, for one, does not
//! authenticate every tile it reads).
//!
//! A missing bundle ends the stream: the entries after it cannot be placed
//! in the tree. When a narrower partial bundle stands at that index (an
//! export that stopped at a missing row), its entries are read first, so
//! the truncation is reported at the exact index where the entries end.

use std::fs;
use std::path::Path;

use evident_core::checkpoint::Checkpoint;
use evident_core::hash::leaf_hash;
use evident_core::note::{VerifierKey, Verifiers, parse_note};
use evident_core::tile::{
    MAX_TILE_LEVEL, TILE_WIDTH, TileId, TileKind, decode_bundle, entry_bundles_for_size,
    hash_tiles_for_size, split_tile_hashes,
};
use evident_core::verify::{
    BodyRow, EntryRow, KeyHistory, KeyPeriod, LogVerifier, MAX_LISTED, Report,
};
use evident_core::{ErrorCode, Hash};
use evident_store::edge::TreeEdge;
use indicatif::ProgressBar;
use serde_json::{Value, json};

use super::bodies::BodyReader;
use super::layout::{
    BODIES, CHECKPOINT, KEY_HISTORY, KEYS, TILE_DIR, is_tile_of, items_at, partial_at, read_opt,
    rebuilt_by,
};
use crate::common::CmdError;

/// What is wrong with one file of the tile tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    /// A tile or bundle of the signed tree is not there.
    Missing,
    /// A hash tile is not the one rebuilt from the entry bundles.
    Differs,
    /// A file that is not a tile or bundle of the signed tree (another
    /// width, a stray name).
    Unexpected,
    /// An entry bundle that does not hold exactly its entries.
    Malformed,
}

impl Problem {
    fn code(self) -> &'static str {
        match self {
            Problem::Missing => "missing",
            Problem::Differs => "differs",
            Problem::Unexpected => "unexpected",
            Problem::Malformed => "malformed",
        }
    }
}

/// The tile files that do not match, listed up to
/// [`MAX_LISTED`] and counted exactly.
#[derive(Debug, Default)]
pub(crate) struct Mismatches {
    pub(crate) listed: Vec<(String, Problem)>,
    pub(crate) count: u64,
}

impl Mismatches {
    fn add(&mut self, path: String, problem: Problem) {
        self.count += 1;
        if self.listed.len() < MAX_LISTED {
            self.listed.push((path, problem));
        }
    }

    /// The JSON list of the report.
    pub(crate) fn to_json(&self) -> Value {
        Value::Array(
            self.listed
                .iter()
                .map(|(path, p)| json!({"path": path, "problem": p.code()}))
                .collect(),
        )
    }
}

/// Where the trusted keys came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// `--vkey` on the command line.
    Pinned,
    /// The export's own `keys` file.
    Export,
}

/// The outcome of checking an export.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The log verifier's report.
    pub(crate) report: Report,
    /// Tile files that are missing, differ or should not be there.
    pub(crate) tiles: Mismatches,
    /// Size the checkpoint signs.
    pub(crate) size: u64,
    /// Entries read from the bundles.
    pub(crate) entries: u64,
    /// Where the trusted keys came from.
    pub(crate) keys: KeySource,
}

impl Checked {
    /// Valid only when the log verified and every tile file matched.
    pub(crate) fn valid(&self) -> bool {
        self.report.valid && self.tiles.count == 0
    }
}

fn unusable(code: &str, message: impl Into<String>) -> CmdError {
    CmdError::new(code, message)
}

/// The trusted keys: the pinned ones, or the export's `keys` file.
fn trusted_keys(dir: &Path, pinned: Option<Verifiers>) -> Result<(Verifiers, KeySource), CmdError> {
    if let Some(v) = pinned {
        return Ok((v, KeySource::Pinned));
    }
    let text = read_opt(dir, KEYS)?.ok_or_else(|| {
        unusable(
            "export.missing_file",
            format!(
                "{} has no {KEYS} file; pass the verifier key with --vkey",
                dir.display()
            ),
        )
    })?;
    let text = String::from_utf8(text)
        .map_err(|_| unusable("export.bad_keys", format!("{KEYS} is not UTF-8")))?;
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let key = line.parse::<VerifierKey>().map_err(|e| CmdError {
            code: e.code().to_owned(),
            message: format!("{KEYS}: {line:?}: {e}"),
            line: Some(n as u64 + 1),
        })?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(unusable(
            "export.bad_keys",
            format!("{KEYS} lists no key; pass the verifier key with --vkey"),
        ));
    }
    Ok((Verifiers::new(keys), KeySource::Export))
}

/// What `key-history.json` says (untrusted: it only tells which key may
/// sign which checkpoint and offers the transitions; the signatures decide).
struct ExportedHistory {
    checkpoint_seq: u64,
    keys: KeyHistory,
    transitions: Vec<(u64, String)>,
}

fn read_key_history(dir: &Path) -> Result<Option<ExportedHistory>, CmdError> {
    let Some(bytes) = read_opt(dir, KEY_HISTORY)? else {
        return Ok(None);
    };
    let bad = |why: String| unusable("export.bad_keys", format!("{KEY_HISTORY}: {why}"));
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let seq = |v: &Value| -> Result<Option<u64>, CmdError> {
        match v {
            Value::Null => Ok(None),
            v => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| bad(format!("{v} is not a checkpoint number"))),
        }
    };
    let checkpoint_seq =
        seq(&v["checkpoint_seq"])?.ok_or_else(|| bad("no checkpoint_seq".into()))?;
    let mut periods = Vec::new();
    for k in v["keys"].as_array().ok_or_else(|| bad("no keys".into()))? {
        let text = k["vkey"]
            .as_str()
            .ok_or_else(|| bad("a key has no vkey".into()))?;
        let key = text
            .parse::<VerifierKey>()
            .map_err(|e| CmdError::new(e.code(), format!("{KEY_HISTORY}: {text:?}: {e}")))?;
        periods.push(KeyPeriod {
            key,
            first_seq: seq(&k["first_seq"])?,
            last_seq: seq(&k["last_seq"])?,
        });
    }
    let mut transitions = Vec::new();
    for t in v["transitions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let s = seq(&t["seq"])?.ok_or_else(|| bad("a transition has no seq".into()))?;
        let note = t["note"]
            .as_str()
            .ok_or_else(|| bad("a transition has no note".into()))?;
        transitions.push((s, note.to_owned()));
    }
    Ok(Some(ExportedHistory {
        checkpoint_seq,
        keys: KeyHistory::new(periods),
        transitions,
    }))
}

/// Reads and parses the checkpoint, unverified: its origin and size say
/// what to read; the verifier checks its signature.
fn read_checkpoint(dir: &Path) -> Result<(Vec<u8>, Checkpoint), CmdError> {
    let bytes = read_opt(dir, CHECKPOINT)?.ok_or_else(|| {
        unusable(
            "export.missing_file",
            format!("{} has no {CHECKPOINT} file", dir.display()),
        )
    })?;
    let (text, _) =
        parse_note(&bytes).map_err(|e| unusable(e.code(), format!("{CHECKPOINT}: {e}")))?;
    let cp =
        Checkpoint::parse(&text).map_err(|e| unusable(e.code(), format!("{CHECKPOINT}: {e}")))?;
    Ok((bytes, cp))
}

/// Compares rebuilt hash tiles with the export's files.
fn compare(
    dir: &Path,
    tiles: Vec<(TileId, Vec<u8>)>,
    out: &mut Mismatches,
) -> Result<(), CmdError> {
    for (id, data) in tiles {
        let path = id.path();
        match read_opt(dir, &path)? {
            None => out.add(path, Problem::Missing),
            Some(file) if file != data => out.add(path, Problem::Differs),
            Some(_) => {}
        }
    }
    Ok(())
}

/// A narrower partial bundle at `id`'s index, standing in for a missing
/// one: `(its id, its data)`.
fn narrower_bundle(dir: &Path, id: TileId) -> Result<Option<(TileId, Vec<u8>)>, CmdError> {
    for width in (1..id.width).rev() {
        let other = TileId { width, ..id };
        if let Some(data) = read_opt(dir, &other.path())? {
            return Ok(Some((other, data)));
        }
    }
    Ok(None)
}

/// The level-0 hashes stored for a bundle, if its tile is there and well
/// formed (otherwise the tile comparison reports it).
fn stored_leaves(dir: &Path, bundle: TileId) -> Result<Vec<Hash>, CmdError> {
    let id = TileId::hashes(0, bundle.index, bundle.width);
    Ok(read_opt(dir, &id.path())?
        .and_then(|d| split_tile_hashes(&d, id.width).ok())
        .unwrap_or_default())
}

/// Checks the export in `dir`.
pub(crate) fn check_export(
    dir: &Path,
    pinned: Option<Verifiers>,
    bar: &ProgressBar,
) -> Result<Checked, CmdError> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(unusable(
                "export.unreadable",
                format!("{} is not a directory", dir.display()),
            ));
        }
        Err(e) => {
            return Err(unusable(
                "export.unreadable",
                format!("{}: {e}", dir.display()),
            ));
        }
    }
    let (note, cp) = read_checkpoint(dir)?;
    let (verifiers, keys) = trusted_keys(dir, pinned)?;
    let bodies_file = fs::File::open(dir.join(BODIES)).map_err(|e| {
        unusable(
            "export.missing_file",
            format!("{}: {e}", dir.join(BODIES).display()),
        )
    })?;
    let mut bodies = BodyReader::new(bodies_file);

    let n = cp.size;
    let history = read_key_history(dir)?;
    let mut v = LogVerifier::new(&cp.origin, verifiers);
    v.set_claimed_size(n);
    match &history {
        None => v.add_checkpoints([note.as_slice()]),
        Some(h) => v.add_checkpoints_at(
            h.transitions
                .iter()
                .map(|(seq, t)| (*seq, t.as_bytes()))
                .chain([(h.checkpoint_seq, note.as_slice())]),
            &h.keys,
        ),
    }
    let mut edge = TreeEdge::new();
    let mut tiles = Mismatches::default();
    bar.set_length(n);

    // Entry bundles, in order, until one is missing or malformed.
    let mut attempted = 0usize;
    for id in entry_bundles_for_size(n) {
        attempted += 1;
        let (bundle, data) = match read_opt(dir, &id.path())? {
            Some(data) => (id, data),
            None => {
                tiles.add(id.path(), Problem::Missing);
                match narrower_bundle(dir, id)? {
                    Some(found) => found,
                    None => break,
                }
            }
        };
        let Ok(entries) = decode_bundle(&data, bundle.width) else {
            tiles.add(bundle.path(), Problem::Malformed);
            break;
        };
        let leaves = stored_leaves(dir, bundle)?;
        let first = bundle.index * u64::from(TILE_WIDTH);
        for (j, envelope) in entries.iter().enumerate() {
            let index = first + j as u64;
            let has_body = bodies.has(index)?;
            let body = if has_body {
                BodyRow::Present {
                    salt: &bodies.salt,
                    body: &bodies.body,
                }
            } else {
                BodyRow::Absent
            };
            v.push(EntryRow {
                index,
                envelope,
                stored_leaf_hash: leaves.get(j).copied(),
                body,
            });
            if has_body {
                bodies.consume();
            }
            edge.append(leaf_hash(envelope));
        }
        compare(dir, edge.take_full_tiles(), &mut tiles)?;
        bar.set_position(edge.size());
        if bundle != id {
            break;
        }
    }
    let rebuilt = edge.size();
    if rebuilt == n
        && let Some((index, line)) = bodies.leftover()?
    {
        return Err(CmdError {
            code: "export.bad_bodies".to_owned(),
            message: format!(
                "bodies.ndjson: a body for index {index}, but the export has {n} entries"
            ),
            line: Some(line),
        });
    }

    // The partial tiles of the rebuilt tree, where they are tiles of the
    // signed one.
    let partial: Vec<_> = edge
        .partial_tiles()
        .into_iter()
        .filter(|(id, _)| is_tile_of(id, n))
        .collect();
    compare(dir, partial, &mut tiles)?;

    // Tiles and bundles the stream did not reach must at least exist, and
    // nothing else may be there. Both are found from the files on disk, so
    // a checkpoint claiming a huge size costs no more than the files do.
    let examined = Examined {
        rebuilt,
        bundles: attempted as u64,
    };
    let mut unexpected = Mismatches::default();
    let present = walk(dir, TILE_DIR, n, examined, &mut unexpected)?;
    let missing = unexamined(n, examined).saturating_sub(present);
    list_missing(dir, n, examined, missing, &mut tiles);
    tiles.count += unexpected.count;
    for (path, p) in unexpected.listed {
        if tiles.listed.len() < MAX_LISTED {
            tiles.listed.push((path, p));
        }
    }

    Ok(Checked {
        report: v.finish(),
        tiles,
        size: n,
        entries: rebuilt,
        keys,
    })
}

/// What the entry stream examined: the hash tiles rebuilt from its first
/// `rebuilt` entries, and its first `bundles` bundles (read, or reported
/// missing or malformed).
#[derive(Debug, Clone, Copy)]
struct Examined {
    rebuilt: u64,
    bundles: u64,
}

impl Examined {
    fn covers(&self, id: &TileId) -> bool {
        match id.kind {
            TileKind::Entries => id.index < self.bundles,
            TileKind::Hashes { .. } => rebuilt_by(id, self.rebuilt),
        }
    }
}

/// How many tiles and bundles of the tree of `n` the stream did not
/// examine, counted without listing them.
fn unexamined(n: u64, ex: Examined) -> u64 {
    let w = u64::from(TILE_WIDTH);
    let mut total = n.div_ceil(w).saturating_sub(ex.bundles);
    for level in 0..=MAX_TILE_LEVEL {
        let kind = TileKind::Hashes { level };
        let count = items_at(kind, n);
        if count == 0 {
            break;
        }
        let rebuilt_full = items_at(kind, ex.rebuilt) / w;
        let rebuilt_partial = partial_at(kind, ex.rebuilt).is_some_and(|p| is_tile_of(&p, n));
        total += count.div_ceil(w) - rebuilt_full - u64::from(rebuilt_partial);
    }
    total
}

/// Adds the `missing` unexamined tiles and bundles to `out`, listing them
/// in order until the list is full. Only absent files and present ones
/// (bounded by the disk) are looked at, so this ends early for any size.
fn list_missing(dir: &Path, n: u64, ex: Examined, missing: u64, out: &mut Mismatches) {
    let mut found = 0;
    for id in hash_tiles_for_size(n).chain(entry_bundles_for_size(n)) {
        if found == missing || out.listed.len() >= MAX_LISTED {
            break;
        }
        if ex.covers(&id) {
            continue;
        }
        let path = id.path();
        if fs::symlink_metadata(dir.join(&path)).is_err() {
            out.listed.push((path, Problem::Missing));
            found += 1;
        }
    }
    out.count += missing;
}

/// Walks the files under `rel` in name order: adds each that is not a
/// tile or bundle of the tree of `size` to `unexpected`, and returns how
/// many are tiles or bundles the stream did not examine.
fn walk(
    dir: &Path,
    rel: &str,
    size: u64,
    ex: Examined,
    unexpected: &mut Mismatches,
) -> Result<u64, CmdError> {
    let path = dir.join(rel);
    let read = match fs::read_dir(&path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(CmdError::new(
                "io.read_failed",
                format!("{}: {e}", path.display()),
            ));
        }
    };
    let mut names = Vec::new();
    for e in read {
        let e =
            e.map_err(|e| CmdError::new("io.read_failed", format!("{}: {e}", path.display())))?;
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        names.push((e.file_name().to_string_lossy().into_owned(), is_dir));
    }
    names.sort();
    let mut present = 0;
    for (name, is_dir) in names {
        let child = format!("{rel}/{name}");
        if is_dir {
            present += walk(dir, &child, size, ex, unexpected)?;
            continue;
        }
        match TileId::parse_path(&child) {
            Ok(id) if is_tile_of(&id, size) => present += u64::from(!ex.covers(&id)),
            _ => unexpected.add(child, Problem::Unexpected),
        }
    }
    Ok(present)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use evident_core::checkpoint::sign_checkpoint;
    use evident_core::note::NoteSigner;

    /// The arithmetic count equals the tiles a full enumeration finds.
    #[test]
    fn unexamined_matches_enumeration() {
        for n in [0u64, 1, 255, 256, 300, 600, 65_536, 70_000] {
            for rebuilt in [0u64, 1, 256, 299, 300, 512, 600, 65_536, 70_000] {
                if rebuilt > n {
                    continue;
                }
                let bundles = rebuilt.div_ceil(256);
                for ex in [
                    Examined { rebuilt, bundles },
                    Examined {
                        rebuilt,
                        bundles: (bundles + 1).min(n.div_ceil(256)),
                    },
                ] {
                    let want = hash_tiles_for_size(n)
                        .chain(entry_bundles_for_size(n))
                        .filter(|id| !ex.covers(id))
                        .count() as u64;
                    assert_eq!(unexamined(n, ex), want, "n {n}, {ex:?}");
                }
            }
        }
    }

    /// A checkpoint may claim any size; checking an export that has no
    /// entries for it lists what is missing without enumerating it all.
    #[test]
    fn a_huge_claimed_size_is_counted_not_walked() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let signer = NoteSigner::new("huge.example", SigningKey::from_bytes(&[9; 32])).unwrap();
        let size = 1u64 << 40;
        let cp = Checkpoint {
            origin: "huge.example/t/l".into(),
            size,
            root: Hash([1; 32]),
            extensions: vec![],
        };
        fs::write(
            dir.join(CHECKPOINT),
            sign_checkpoint(&cp, &[&signer]).unwrap(),
        )
        .unwrap();
        fs::write(dir.join(KEYS), format!("{}\n", signer.verifier_key())).unwrap();
        fs::write(dir.join(BODIES), "").unwrap();
        let got = check_export(dir, None, &ProgressBar::hidden()).unwrap();
        // 2^32 bundles; hash tiles 2^32 + 2^24 + 2^16 + 2^8 at levels 0-3,
        // the full tile/4/000 and, for its single hash, tile/5/000.p/1.
        let want = (1u64 << 32) * 2 + (1 << 24) + (1 << 16) + (1 << 8) + 1 + 1;
        assert_eq!(got.tiles.count, want);
        assert_eq!(got.tiles.listed.len(), MAX_LISTED);
        assert_eq!(
            got.tiles.listed[0],
            ("tile/entries/000".to_owned(), Problem::Missing)
        );
        assert_eq!(
            got.tiles.listed[1],
            ("tile/0/000".to_owned(), Problem::Missing)
        );
        assert_eq!(
            got.report.first_break.unwrap().reason.code(),
            "gap.truncated"
        );
    }
}
