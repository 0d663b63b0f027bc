//! The right edge of a log's Merkle tree, as a writer needs it.
//!
//! Appending needs the tree's frontier (for the new root) and the hashes of
//! the incomplete tile at every tile level (to write the tiles that grow).
//! Both are small — at most 255 hashes per level — so the sequencer keeps
//! them in memory between batches and rebuilds them from stored tiles when
//! another writer moved the log on.

use std::collections::HashMap;

use evident_core::Hash;
use evident_core::merkle::CompactTree;
use evident_core::tile::{
    TILE_HEIGHT, TILE_WIDTH, TileError, TileId, TileKind, TileNodes, TileReader, changed_tiles,
    split_tile_hashes,
};

use crate::error::{Result, StoreError};

const W: usize = TILE_WIDTH as usize;

/// Frontier plus the partial tile of every level.
#[derive(Debug, Clone, Default)]
pub struct TreeEdge {
    tree: CompactTree,
    /// `partial[L]`: the hashes of the last, incomplete tile of level `L`.
    partial: Vec<Vec<Hash>>,
    /// Tiles that became full since the last [`TreeEdge::take_tiles`].
    full: HashMap<(u8, u64), Vec<u8>>,
    /// Size at the last [`TreeEdge::take_tiles`].
    published: u64,
    last_leaf: Option<Hash>,
}

/// Number of hashes at tile level `level` in a tree of `size`.
fn at_level(size: u64, level: u8) -> u64 {
    size.checked_shr(u32::from(level) * u32::from(TILE_HEIGHT))
        .unwrap_or(0)
}

impl TreeEdge {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// The last leaf appended or, after [`TreeEdge::load`], read from the
    /// partial level-0 tile (`None` when the size is a multiple of 256).
    pub fn last_leaf(&self) -> Option<Hash> {
        self.last_leaf
    }

    /// Rebuilds the edge of the tree of `size` leaves from its stored
    /// partial tiles, read through `read(level, index)` at any width at
    /// least the one needed.
    pub fn load(
        size: u64,
        mut read: impl FnMut(u8, u64) -> Result<Option<(u16, Vec<u8>)>>,
    ) -> Result<Self> {
        let mut partial = Vec::new();
        let mut fetched: HashMap<TileId, Vec<u8>> = HashMap::new();
        let mut level = 0u8;
        while at_level(size, level) > 0 {
            let n = at_level(size, level);
            let width = u16::try_from(n % W as u64).expect("below 256");
            let mut hashes = Vec::new();
            if width > 0 {
                let id = TileId::hashes(level, n / W as u64, width);
                let data = crate::backend::tile_prefix(&id, read(level, id.index)?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                hashes = split_tile_hashes(&data, width)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                fetched.insert(id, data);
            }
            partial.push(hashes);
            level += 1;
        }
        let reader = MapReader(fetched);
        let tree = CompactTree::from_source(size, &TileNodes::new(&reader, size))?;
        let last_leaf = partial.first().and_then(|p: &Vec<Hash>| p.last().copied());
        Ok(TreeEdge {
            last_leaf,
            tree,
            partial,
            full: HashMap::new(),
            published: size,
        })
    }

    /// Appends one leaf hash.
    pub fn append(&mut self, leaf: Hash) {
        let index = self.tree.size();
        let mut done: [(u8, u64, Hash); 8] = [(0, 0, Hash::default()); 8];
        let mut n = 0;
        self.tree.append_with(leaf, |level, index, h| {
            // A complete node at tree level 8k (k ≥ 1) is the next hash of
            // tile level k.
            if level > 0 && level % TILE_HEIGHT == 0 && n < done.len() {
                done[n] = (level / TILE_HEIGHT, index, *h);
                n += 1;
            }
        });
        self.push(0, index, leaf);
        self.last_leaf = Some(leaf);
        for &(level, index, h) in &done[..n] {
            self.push(level, index, h);
        }
    }

    fn push(&mut self, level: u8, index: u64, hash: Hash) {
        let l = usize::from(level);
        if self.partial.len() <= l {
            self.partial.resize_with(l + 1, Vec::new);
        }
        let p = &mut self.partial[l];
        p.push(hash);
        if p.len() == W {
            let data: Vec<u8> = p.iter().flat_map(|h| h.0).collect();
            self.full.insert((level, index / W as u64), data);
            p.clear();
        }
    }

    /// The full hash tiles completed since the last call, draining them:
    /// for writers that stream a large tree out (an export) and write the
    /// partial tiles once, at the end, with [`TreeEdge::partial_tiles`].
    /// Do not mix with [`TreeEdge::take_tiles`] on the same edge.
    pub fn take_full_tiles(&mut self) -> Vec<(TileId, Vec<u8>)> {
        let mut out: Vec<(TileId, Vec<u8>)> = self
            .full
            .drain()
            .map(|((level, index), data)| (TileId::hashes(level, index, TILE_WIDTH), data))
            .collect();
        out.sort_by_key(|(id, _)| (id.index, id.width));
        out
    }

    /// The current partial hash tile of every level that has one, as
    /// C2SP tlog-tiles names them for the current size.
    pub fn partial_tiles(&self) -> Vec<(TileId, Vec<u8>)> {
        let mut out = Vec::new();
        for (level, p) in self.partial.iter().enumerate() {
            if p.is_empty() {
                continue;
            }
            let level = u8::try_from(level).expect("at most 64 levels");
            let index = at_level(self.size(), level) / W as u64;
            let width = u16::try_from(p.len()).expect("below 256");
            out.push((
                TileId::hashes(level, index, width),
                p.iter().flat_map(|h| h.0).collect(),
            ));
        }
        out
    }

    /// The hash tiles written or widened since the last call, as C2SP
    /// tlog-tiles defines them for the current size: `(id, data)`.
    pub fn take_tiles(&mut self) -> Result<Vec<(TileId, Vec<u8>)>> {
        let mut out = Vec::new();
        for id in changed_tiles(self.published, self.size()) {
            let TileKind::Hashes { level } = id.kind else {
                continue;
            };
            let data = if id.is_full() {
                self.full.remove(&(level, id.index))
            } else {
                self.partial
                    .get(usize::from(level))
                    .filter(|p| p.len() == usize::from(id.width))
                    .map(|p| p.iter().flat_map(|h| h.0).collect())
            };
            let data = data.ok_or_else(|| {
                StoreError::Corrupt(format!("tree edge has no data for tile {}", id.path()))
            })?;
            out.push((id, data));
        }
        self.full.clear();
        self.published = self.size();
        Ok(out)
    }
}

struct MapReader(HashMap<TileId, Vec<u8>>);

impl TileReader for MapReader {
    fn read_tile(&self, tile: &TileId) -> std::result::Result<Vec<u8>, TileError> {
        self.0
            .get(tile)
            .cloned()
            .ok_or_else(|| TileError::Missing { path: tile.path() })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use evident_core::hash::{leaf_hash, sha256};
    use evident_core::merkle::MemoryNodes;
    use evident_core::tile::tile_data;

    fn leaf(i: u64) -> Hash {
        leaf_hash(&i.to_be_bytes())
    }

    /// Tiles written batch by batch equal the tiles computed from the whole
    /// tree, and a reload from those tiles continues identically.
    #[test]
    fn tiles_and_reload_match_the_full_tree() {
        for batches in [
            vec![1u64, 1, 254, 1],
            vec![300, 65_536 - 300, 1, 700],
            vec![256, 256, 3],
        ] {
            let mut edge = TreeEdge::new();
            let mut all = MemoryNodes::new();
            let mut stored: HashMap<(u8, u64), (u16, Vec<u8>)> = HashMap::new();
            let mut i = 0;
            for b in batches {
                for _ in 0..b {
                    edge.append(leaf(i));
                    all.push(leaf(i));
                    i += 1;
                }
                for (id, data) in edge.take_tiles().unwrap() {
                    let TileKind::Hashes { level } = id.kind else {
                        unreachable!()
                    };
                    assert_eq!(data, tile_data(&id, &all).unwrap(), "tile {}", id.path());
                    stored.insert((level, id.index), (id.width, data));
                }
                assert_eq!(edge.root(), evident_core::merkle::root_at(i, &all).unwrap());
                assert_eq!(edge.last_leaf(), Some(leaf(i - 1)));
                let mut reloaded =
                    TreeEdge::load(i, |l, n| Ok(stored.get(&(l, n)).cloned())).unwrap();
                assert_eq!(reloaded.root(), edge.root());
                if !i.is_multiple_of(256) {
                    assert_eq!(reloaded.last_leaf(), edge.last_leaf());
                }
                // Both continue the same way.
                let extra = sha256(b"next");
                reloaded.append(extra);
                let mut copy = edge.clone();
                copy.append(extra);
                assert_eq!(reloaded.root(), copy.root());
                assert_eq!(reloaded.take_tiles().unwrap(), copy.take_tiles().unwrap());
            }
        }
    }

    /// Streaming full tiles out and the partial ones at the end gives the
    /// complete tile set of the tree.
    #[test]
    fn streamed_tiles_are_the_full_set() {
        let n = 70_000u64;
        let mut edge = TreeEdge::new();
        let mut all = MemoryNodes::new();
        let mut got = Vec::new();
        for i in 0..n {
            edge.append(leaf(i));
            all.push(leaf(i));
            if i % 1000 == 0 {
                got.extend(edge.take_full_tiles());
            }
        }
        got.extend(edge.take_full_tiles());
        got.extend(edge.partial_tiles());
        let mut want: Vec<TileId> = evident_core::tile::hash_tiles_for_size(n).collect();
        let mut ids: Vec<TileId> = got.iter().map(|(id, _)| *id).collect();
        want.sort_by_key(TileId::path);
        ids.sort_by_key(TileId::path);
        assert_eq!(ids, want);
        for (id, data) in got {
            assert_eq!(data, tile_data(&id, &all).unwrap(), "{}", id.path());
        }
    }

    #[test]
    fn missing_tile_is_an_error() {
        let err = TreeEdge::load(300, |_, _| Ok(None)).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    }
}
