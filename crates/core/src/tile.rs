//! C2SP tlog-tiles: the static, cacheable form in which the log publishes its
//! Merkle tree and entries. <https://c2sp.org/tlog-tiles>
//!
//! A tile is 256 consecutive hashes at one tree level (height 8): a level-L
//! tile holds hashes of tree level 8L, and everything between two tile levels
//! is recomputed by hashing within a tile. Each level of a tree of size `s`
//! has full tiles plus at most one partial tile, of width
//! `floor(s / 256^L) mod 256`, and none when that is zero. Entry bundles mirror
//! the level-0 tiles and carry the entries themselves.
//!
//! Paths are parsed strictly — only the exact spelling [`TileId::path`]
//! produces is accepted — so one tile can never be cached or signed for
//! under two names.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use crate::code::ErrorCode;
use crate::hash::{HASH_SIZE, Hash, node_hash};
use crate::merkle::{MerkleError, NodeSource};
use crate::pyramid::{PyramidCache, TilePyramid};

/// Tile height: each tile spans 8 tree levels.
/// <https://c2sp.org/tlog-tiles#merkle-tree>
pub const TILE_HEIGHT: u8 = 8;

/// Hashes (or entries) in a full tile.
/// <https://c2sp.org/tlog-tiles#merkle-tree>
pub const TILE_WIDTH: u16 = 256;

/// Highest tile level a path may name.
/// <https://c2sp.org/tlog-tiles#merkle-tree>
pub const MAX_TILE_LEVEL: u8 = 63;

/// Largest entry an entry bundle can carry (a big-endian u16 length prefix).
/// <https://c2sp.org/tlog-tiles#log-entries>
pub const MAX_ENTRY_SIZE: usize = u16::MAX as usize;

/// What exactly is wrong with a tile path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathProblem {
    /// Does not start with `tile/`.
    Prefix,
    /// Level is not a decimal 0..=63 without leading zeros, nor `entries`.
    Level,
    /// An index element is not `xDDD` (non-final) or `DDD` (final).
    IndexGroup,
    /// The index starts with a redundant `x000/` element.
    NonMinimalIndex,
    /// The index does not fit in 64 bits.
    IndexOverflow,
    /// The `.p/<W>` width is not a decimal 1..=255 without leading zeros.
    Width,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathProblem::Prefix => "missing tile/ prefix",
            PathProblem::Level => "bad level",
            PathProblem::IndexGroup => "bad index element",
            PathProblem::NonMinimalIndex => "index has a leading x000 element",
            PathProblem::IndexOverflow => "index overflows 64 bits",
            PathProblem::Width => "bad partial width",
        })
    }
}

/// What exactly is wrong with an entry bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BundleProblem {
    /// Data ends inside entry `entry` (in its length prefix or its body).
    Truncated {
        /// Zero-based index of the incomplete entry.
        entry: u16,
    },
    /// Data ends cleanly after `got` entries but `want` were expected.
    TooFew {
        /// Entries present.
        got: u16,
        /// Entries expected.
        want: u16,
    },
    /// `extra` bytes follow the last expected entry.
    Trailing {
        /// Number of unexpected bytes.
        extra: usize,
    },
}

impl fmt::Display for BundleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleProblem::Truncated { entry } => write!(f, "truncated in entry {entry}"),
            BundleProblem::TooFew { got, want } => write!(f, "{got} entries, expected {want}"),
            BundleProblem::Trailing { extra } => write!(f, "{extra} trailing bytes"),
        }
    }
}

/// Why a tile operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TileError {
    /// A tile path is not in the one canonical form.
    #[error("bad tile path {path:?}: {problem}")]
    BadPath {
        /// The rejected path.
        path: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// An entry bundle does not hold exactly the expected entries.
    #[error("bad entry bundle: {0}")]
    BadBundle(BundleProblem),
    /// An entry is too long for a bundle's u16 length prefix.
    #[error("entry {index} is {len} bytes, bundles allow at most 65535")]
    EntryTooLarge {
        /// Position of the entry in the bundle.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// A tile width (or bundle entry count) outside 1..=256.
    #[error("tile width {width} is outside 1..=256")]
    BadWidth {
        /// The rejected width.
        width: usize,
    },
    /// Hash tile data whose length is not 32 × width.
    #[error("hash tile is {len} bytes, width {width} needs {}", usize::from(*width) * HASH_SIZE)]
    BadTileSize {
        /// Bytes received.
        len: usize,
        /// Expected width in hashes.
        width: u16,
    },
    /// An entry bundle was used where a hash tile is needed.
    #[error("{path} is not a hash tile")]
    NotHashTile {
        /// Path of the offending tile.
        path: String,
    },
    /// A reader does not have the tile.
    #[error("tile {path} not found")]
    Missing {
        /// Path of the missing tile.
        path: String,
    },
    /// A reader failed for another reason.
    #[error("reading tile {path} failed: {reason}")]
    Read {
        /// Path of the tile.
        path: String,
        /// What went wrong, for people.
        reason: String,
    },
}

impl ErrorCode for TileError {
    fn code(&self) -> &'static str {
        match self {
            TileError::BadPath { .. } => "tile.bad_path",
            TileError::BadBundle(_) => "tile.bad_bundle",
            TileError::EntryTooLarge { .. } => "tile.entry_too_large",
            TileError::BadWidth { .. } => "tile.bad_width",
            TileError::BadTileSize { .. } => "tile.bad_size",
            TileError::NotHashTile { .. } => "tile.not_hash_tile",
            TileError::Missing { .. } => "tile.missing",
            TileError::Read { .. } => "tile.read_failed",
        }
    }
}

/// Which resource a tile is: Merkle hashes at a tile level, or entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TileKind {
    /// Hashes of tree level `8 * level`.
    Hashes {
        /// Tile level (0..=63).
        level: u8,
    },
    /// An entry bundle, parallel to the level-0 hash tiles.
    Entries,
}

/// One tile or entry bundle: kind, index within its level, and width
/// (1..=256; 256 is a full tile).
/// <https://c2sp.org/tlog-tiles#merkle-tree>
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TileId {
    /// Hash tile level, or entry bundle.
    pub kind: TileKind,
    /// Index of the tile within its level.
    pub index: u64,
    /// Number of hashes or entries, 1..=256.
    pub width: u16,
}

impl TileId {
    /// A hash tile.
    pub fn hashes(level: u8, index: u64, width: u16) -> Self {
        TileId {
            kind: TileKind::Hashes { level },
            index,
            width,
        }
    }

    /// An entry bundle.
    pub fn entries(index: u64, width: u16) -> Self {
        TileId {
            kind: TileKind::Entries,
            index,
            width,
        }
    }

    /// Whether the tile holds all 256 hashes or entries.
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// The tile's path below the log prefix, e.g. `tile/0/x001/x234/067`,
    /// `tile/1/000.p/5` or `tile/entries/x001/000.p/17`: the index in
    /// zero-padded three-digit elements, all but the last prefixed `x`, and
    /// `.p/<W>` only for partial tiles.
    /// <https://c2sp.org/tlog-tiles#merkle-tree>
    pub fn path(&self) -> String {
        let mut out = String::from("tile/");
        match self.kind {
            TileKind::Hashes { level } => out.push_str(&level.to_string()),
            TileKind::Entries => out.push_str("entries"),
        }
        let mut groups = Vec::new();
        let mut n = self.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        for (i, g) in groups.iter().rev().enumerate() {
            let last = i + 1 == groups.len();
            out.push_str(if last { "/" } else { "/x" });
            out.push_str(&format!("{g:03}"));
        }
        if !self.is_full() {
            out.push_str(&format!(".p/{}", self.width));
        }
        out
    }

    /// Parses a tile path, accepting exactly what [`path`](Self::path)
    /// produces for a valid tile: no leading `/`, level 0..=63 without
    /// leading zeros, three-digit index elements with no redundant leading
    /// `x000`, and a `.p/<W>` suffix only for widths 1..=255.
    /// <https://c2sp.org/tlog-tiles#merkle-tree>
    pub fn parse_path(path: &str) -> Result<TileId, TileError> {
        let bad = |problem| TileError::BadPath {
            path: path.to_owned(),
            problem,
        };
        let rest = path.strip_prefix("tile/").ok_or(bad(PathProblem::Prefix))?;
        let (level, rest) = rest.split_once('/').ok_or(bad(PathProblem::Level))?;
        let kind = if level == "entries" {
            TileKind::Entries
        } else {
            TileKind::Hashes {
                level: parse_small_decimal(level, 0, MAX_TILE_LEVEL.into())
                    .and_then(|l| u8::try_from(l).ok())
                    .ok_or(bad(PathProblem::Level))?,
            }
        };
        let (index_part, width) = match rest.split_once(".p/") {
            None => (rest, TILE_WIDTH),
            Some((idx, w)) => (
                idx,
                parse_small_decimal(w, 1, TILE_WIDTH - 1).ok_or(bad(PathProblem::Width))?,
            ),
        };
        let groups: Vec<&str> = index_part.split('/').collect();
        let mut index: u64 = 0;
        for (i, g) in groups.iter().enumerate() {
            let last = i + 1 == groups.len();
            let digits = if last { Some(*g) } else { g.strip_prefix('x') };
            let value = digits
                .filter(|d| d.len() == 3 && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<u64>().ok())
                .ok_or(bad(PathProblem::IndexGroup))?;
            if i == 0 && !last && value == 0 {
                return Err(bad(PathProblem::NonMinimalIndex));
            }
            index = index
                .checked_mul(1000)
                .and_then(|x| x.checked_add(value))
                .ok_or(bad(PathProblem::IndexOverflow))?;
        }
        Ok(TileId { kind, index, width })
    }
}

impl fmt::Display for TileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// A decimal in `min..=max` with no sign and no leading zeros.
fn parse_small_decimal(s: &str, min: u16, max: u16) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    let v: u16 = s.parse().ok()?;
    (min..=max).contains(&v).then_some(v)
}

/// `size / 256^level`, the number of hashes at tile level `level`.
fn hashes_at_level(size: u64, level: u8) -> u64 {
    size.checked_shr(u32::from(level) * u32::from(TILE_HEIGHT))
        .unwrap_or(0)
}

/// Tiles at one level holding `count` items: the full ones, then the
/// partial one if `count % 256 != 0`.
fn tiles_for_count(count: u64, make: impl Fn(u64, u16) -> TileId) -> impl Iterator<Item = TileId> {
    let full = count / u64::from(TILE_WIDTH);
    let rem = u16::try_from(count % u64::from(TILE_WIDTH)).expect("remainder below 256");
    (0..full)
        .map(move |n| (n, TILE_WIDTH))
        .chain((rem > 0).then_some((full, rem)))
        .map(move |(n, w)| make(n, w))
}

/// Every hash tile of the tree of `size` leaves — all levels, lowest first,
/// index ascending within a level, full tiles and the partial one.
/// <https://c2sp.org/tlog-tiles#partial-tiles>
pub fn hash_tiles_for_size(size: u64) -> impl Iterator<Item = TileId> {
    (0..=MAX_TILE_LEVEL)
        .map(move |level| (level, hashes_at_level(size, level)))
        .take_while(|&(_, count)| count > 0)
        .flat_map(|(level, count)| tiles_for_count(count, move |n, w| TileId::hashes(level, n, w)))
}

/// Every entry bundle of a log of `size` entries, index ascending.
/// <https://c2sp.org/tlog-tiles#log-entries>
pub fn entry_bundles_for_size(size: u64) -> impl Iterator<Item = TileId> {
    tiles_for_count(size, TileId::entries)
}

/// Tiles at one level that are new or wider with `new` items than `old`.
fn changed_at(old: u64, new: u64, make: impl Fn(u64, u16) -> TileId, out: &mut Vec<TileId>) {
    if new <= old {
        return;
    }
    let w = u64::from(TILE_WIDTH);
    for n in old / w..new.div_ceil(w) {
        let width = (new - n * w).min(w);
        out.push(make(n, u16::try_from(width).expect("width is at most 256")));
    }
}

/// The hash tiles and entry bundles that appear or get wider when the tree
/// grows from `old_size` to `new_size`, in the widths of the new tree: what a
/// writer must publish. Hash tiles come first (by level, then index), then
/// entry bundles. Empty when `new_size <= old_size`.
/// <https://c2sp.org/tlog-tiles#partial-tiles>
pub fn changed_tiles(old_size: u64, new_size: u64) -> Vec<TileId> {
    let mut out = Vec::new();
    if new_size <= old_size {
        return out;
    }
    for level in 0..=MAX_TILE_LEVEL {
        let new = hashes_at_level(new_size, level);
        if new == 0 {
            break;
        }
        changed_at(
            hashes_at_level(old_size, level),
            new,
            |n, w| TileId::hashes(level, n, w),
            &mut out,
        );
    }
    changed_at(old_size, new_size, TileId::entries, &mut out);
    out
}

fn check_width(width: usize) -> Result<(), TileError> {
    if (1..=usize::from(TILE_WIDTH)).contains(&width) {
        Ok(())
    } else {
        Err(TileError::BadWidth { width })
    }
}

/// Encodes an entry bundle: each entry as a big-endian u16 length and its
/// bytes. A bundle holds 1..=256 entries of at most 65535 bytes each.
/// <https://c2sp.org/tlog-tiles#log-entries>
pub fn encode_bundle(entries: &[&[u8]]) -> Result<Vec<u8>, TileError> {
    check_width(entries.len())?;
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.len() + 2).sum());
    for (index, e) in entries.iter().enumerate() {
        let len = u16::try_from(e.len()).map_err(|_| TileError::EntryTooLarge {
            index,
            len: e.len(),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Decodes an entry bundle that must hold exactly `width` entries and
/// nothing after them.
/// <https://c2sp.org/tlog-tiles#log-entries>
pub fn decode_bundle(data: &[u8], width: u16) -> Result<Vec<&[u8]>, TileError> {
    check_width(width.into())?;
    let mut out = Vec::with_capacity(width.into());
    let mut rest = data;
    for entry in 0..width {
        if rest.is_empty() {
            return Err(TileError::BadBundle(BundleProblem::TooFew {
                got: entry,
                want: width,
            }));
        }
        let truncated = TileError::BadBundle(BundleProblem::Truncated { entry });
        let (len, body) = rest.split_first_chunk::<2>().ok_or(truncated.clone())?;
        let len = usize::from(u16::from_be_bytes(*len));
        if body.len() < len {
            return Err(truncated);
        }
        let (e, tail) = body.split_at(len);
        out.push(e);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(TileError::BadBundle(BundleProblem::Trailing {
            extra: rest.len(),
        }));
    }
    Ok(out)
}

/// Splits hash tile data into its `width` hashes; the data must be exactly
/// 32 × `width` bytes.
/// <https://c2sp.org/tlog-tiles#merkle-tree>
pub fn split_tile_hashes(data: &[u8], width: u16) -> Result<Vec<Hash>, TileError> {
    check_width(width.into())?;
    if data.len() != usize::from(width) * HASH_SIZE {
        return Err(TileError::BadTileSize {
            len: data.len(),
            width,
        });
    }
    Ok(data
        .chunks_exact(HASH_SIZE)
        .map(|c| Hash(c.try_into().expect("chunks are HASH_SIZE bytes")))
        .collect())
}

/// The bytes of a hash tile — its hashes of tree level `8 × level`,
/// concatenated — computed from a node source.
/// <https://c2sp.org/tlog-tiles#merkle-tree>
pub fn tile_data(tile: &TileId, src: &impl NodeSource) -> Result<Vec<u8>, MerkleError> {
    let TileKind::Hashes { level } = tile.kind else {
        return Err(TileError::NotHashTile { path: tile.path() }.into());
    };
    check_width(tile.width.into())?;
    let tree_level = tree_level(level).ok_or(TileError::BadPath {
        path: tile.path(),
        problem: PathProblem::Level,
    })?;
    let first = tile
        .index
        .checked_mul(u64::from(TILE_WIDTH))
        .ok_or(MerkleError::MissingNode {
            level: tree_level,
            index: u64::MAX,
        })?;
    let mut out = Vec::with_capacity(usize::from(tile.width) * HASH_SIZE);
    for i in 0..u64::from(tile.width) {
        out.extend_from_slice(&src.node(tree_level, first + i)?.0);
    }
    Ok(out)
}

/// Tree level of the hashes in a tile of `level`, if it is below 64.
fn tree_level(level: u8) -> Option<u8> {
    level.checked_mul(TILE_HEIGHT).filter(|l| *l < 64)
}

/// Fetches tiles (from disk, HTTP, a database …) by id.
pub trait TileReader {
    /// The raw bytes of `tile`, at exactly the width asked for.
    fn read_tile(&self, tile: &TileId) -> Result<Vec<u8>, TileError>;
}

/// A [`NodeSource`] over tiles alone, for the tree of `size` leaves: any
/// complete-subtree hash is found in, or hashed up from, a single tile of the
/// right width for that tree size. Decoded tiles are cached, so this type is
/// not `Sync`; make one per task.
/// <https://c2sp.org/tlog-tiles#merkle-tree>
pub struct TileNodes<'a, R: TileReader> {
    reader: &'a R,
    size: u64,
    cache: RefCell<HashMap<TileId, Rc<[Hash]>>>,
    /// Pyramids shared beyond this source, and this log's namespace in it.
    shared: Option<(&'a PyramidCache, u64)>,
}

impl<R: TileReader> fmt::Debug for TileNodes<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TileNodes")
            .field("size", &self.size)
            .field("cached_tiles", &self.cache.borrow().len())
            .finish_non_exhaustive()
    }
}

impl<'a, R: TileReader> TileNodes<'a, R> {
    /// Node source for the tree of `size` leaves read through `reader`.
    pub fn new(reader: &'a R, size: u64) -> Self {
        TileNodes {
            reader,
            size,
            cache: RefCell::new(HashMap::new()),
            shared: None,
        }
    }

    /// Like [`TileNodes::new`], but nodes between stored levels come from
    /// tile pyramids kept in `shared` under namespace `ns` (one per log),
    /// computed once for every source that needs the same tile. See
    /// [`crate::pyramid`] for why, and for what the caller must check.
    pub fn with_shared(reader: &'a R, size: u64, shared: &'a PyramidCache, ns: u64) -> Self {
        TileNodes {
            shared: Some((shared, ns)),
            ..TileNodes::new(reader, size)
        }
    }

    /// The tree size this source serves.
    pub fn size(&self) -> u64 {
        self.size
    }

    fn tile_hashes(&self, tile: TileId) -> Result<Rc<[Hash]>, MerkleError> {
        if let Some(h) = self.cache.borrow().get(&tile) {
            return Ok(Rc::clone(h));
        }
        let data = self.reader.read_tile(&tile)?;
        let hashes: Rc<[Hash]> = split_tile_hashes(&data, tile.width)?.into();
        self.cache.borrow_mut().insert(tile, Rc::clone(&hashes));
        Ok(hashes)
    }

    /// The node `up` levels above `offset` in `tile` (of tile level
    /// `level`), from the shared pyramid, built and shared on first use.
    fn pyramid_node(
        &self,
        (shared, ns): (&PyramidCache, u64),
        tile: TileId,
        level: u8,
        up: u8,
        offset: usize,
    ) -> Result<Option<Hash>, MerkleError> {
        let pyramid = match shared.get(ns, level, tile.index, usize::from(tile.width)) {
            Some(p) => p,
            None => {
                let hashes = split_tile_hashes(&self.reader.read_tile(&tile)?, tile.width)?;
                let p = Arc::new(TilePyramid::new(hashes));
                shared.put(ns, level, tile.index, Arc::clone(&p));
                p
            }
        };
        Ok(pyramid.node(up, offset))
    }
}

impl<R: TileReader> NodeSource for TileNodes<'_, R> {
    fn node(&self, level: u8, index: u64) -> Result<Hash, MerkleError> {
        let missing = MerkleError::MissingNode { level, index };
        // Only complete subtrees inside the tree exist.
        let end = index
            .checked_add(1)
            .and_then(|e| e.checked_shl(u32::from(level)))
            .filter(|e| e >> level == index + 1)
            .ok_or(missing.clone())?;
        if level >= 64 || end > self.size {
            return Err(missing);
        }
        let tile_level = level / TILE_HEIGHT;
        let up = level % TILE_HEIGHT;
        // The node's leaves at tree level 8·tile_level, and the tile holding them.
        let first = index << up;
        let count = 1u64 << up;
        let w = u64::from(TILE_WIDTH);
        let tile_index = first / w;
        let at_level = hashes_at_level(self.size, tile_level);
        let width = (at_level - tile_index * w).min(w);
        let tile = TileId::hashes(
            tile_level,
            tile_index,
            u16::try_from(width).expect("width is at most 256"),
        );
        let start = usize::try_from(first % w).expect("offset below 256");
        if let Some(shared) = self.shared {
            return self
                .pyramid_node(shared, tile, tile_level, up, start)?
                .ok_or(missing);
        }
        let hashes = self.tile_hashes(tile)?;
        let mut row: Vec<Hash> =
            hashes[start..start + usize::try_from(count).expect("count at most 128")].to_vec();
        while row.len() > 1 {
            row = row
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
        }
        Ok(row[0])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn path_examples() {
        assert_eq!(
            TileId::hashes(0, 1_234_067, 256).path(),
            "tile/0/x001/x234/067"
        );
        assert_eq!(TileId::hashes(1, 0, 5).path(), "tile/1/000.p/5");
        assert_eq!(
            TileId::entries(1000, 17).path(),
            "tile/entries/x001/000.p/17"
        );
        assert_eq!(TileId::hashes(63, 0, 256).path(), "tile/63/000");
        assert_eq!(
            TileId::hashes(0, u64::MAX, 256).path(),
            "tile/0/x018/x446/x744/x073/x709/x551/615"
        );
    }

    #[test]
    fn bad_path_code() {
        let e = TileId::parse_path("/tile/0/000").unwrap_err();
        assert_eq!(e.code(), "tile.bad_path");
        assert_eq!(
            e,
            TileError::BadPath {
                path: "/tile/0/000".into(),
                problem: PathProblem::Prefix
            }
        );
    }
}
