//! Every node a hash tile determines, computed once and shared.
//!
//! A tile stores only every eighth level of the tree; a node between two
//! stored levels is hashed up from up to 128 stored hashes. An inclusion
//! proof needs one such node per level, so a proof into a large log hashes
//! ~250 nodes per tile level (~750 in a log of a few million entries),
//! and that hashing was most of what a receipt cost the server
//! (BENCHMARKS.md, issue 4). Receipts handed out together are for
//! neighbouring entries at the same tree size: they need the same tiles,
//! so the levels above each tile are computed once ([`TilePyramid`]) and
//! kept in a [`PyramidCache`] that outlives a request.
//!
//! What is cached is a fact about a correct log: a tile's first `w` hashes
//! never change once written, so a pyramid of a wider copy of a tile
//! serves a narrower one. Tiles come from storage, which is not trusted:
//! callers check what they build against a signed root, and clear the
//! cache when that check fails ([`PyramidCache::clear`]), so that damaged
//! data read once is not served again after a repair.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::hash::{Hash, node_hash};

/// A tile's hashes and, above them, each level of complete pairs inside the
/// tile, up to the single top node of a full tile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TilePyramid {
    /// `levels[k]` holds the nodes `k` levels above the tile's own hashes.
    levels: Vec<Vec<Hash>>,
}

impl TilePyramid {
    /// Hashes every level above `hashes` (one tile's, in order).
    pub fn new(hashes: Vec<Hash>) -> Self {
        let mut levels = vec![hashes];
        loop {
            let below = &levels[levels.len() - 1];
            if below.len() < 2 {
                break;
            }
            let up: Vec<Hash> = below
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
            levels.push(up);
        }
        TilePyramid { levels }
    }

    /// How many hashes the tile itself has.
    pub fn width(&self) -> usize {
        self.levels[0].len()
    }

    /// The node `up` levels above the tile's hashes whose leftmost tile
    /// hash is at `offset`; `None` when the tile does not determine it.
    pub fn node(&self, up: u8, offset: usize) -> Option<Hash> {
        self.levels.get(usize::from(up))?.get(offset >> up).copied()
    }
}

/// Where a tile sits: a namespace the caller chooses (one per log), the
/// tile level and the tile index.
type Position = (u64, u8, u64);

/// Pyramids shared between requests, one per tile position: the widest
/// seen. Bounded: past `max` positions it starts over, which costs only
/// hashing again.
#[derive(Debug)]
pub struct PyramidCache {
    map: Mutex<HashMap<Position, Arc<TilePyramid>>>,
    max: usize,
}

impl PyramidCache {
    /// A cache of at most `max` tile positions (a full tile's pyramid is
    /// ~16 KiB).
    pub fn new(max: usize) -> Self {
        PyramidCache {
            map: Mutex::new(HashMap::new()),
            max: max.max(1),
        }
    }

    /// The pyramid at `(ns, level, index)` if one at least `width` wide is
    /// cached.
    pub fn get(&self, ns: u64, level: u8, index: u64, width: usize) -> Option<Arc<TilePyramid>> {
        let map = self.map.lock().ok()?;
        map.get(&(ns, level, index))
            .filter(|p| p.width() >= width)
            .cloned()
    }

    /// Keeps `pyramid` for `(ns, level, index)` unless a wider one is
    /// there already.
    pub fn put(&self, ns: u64, level: u8, index: u64, pyramid: Arc<TilePyramid>) {
        let Ok(mut map) = self.map.lock() else { return };
        let key = (ns, level, index);
        if map.get(&key).is_some_and(|p| p.width() >= pyramid.width()) {
            return;
        }
        if map.len() >= self.max && !map.contains_key(&key) {
            map.clear();
        }
        map.insert(key, pyramid);
    }

    /// Forgets everything of namespace `ns` (after a check against a
    /// signed root failed: the stored tiles may have been damaged, or
    /// repaired since).
    pub fn clear(&self, ns: u64) {
        if let Ok(mut map) = self.map.lock() {
            map.retain(|k, _| k.0 != ns);
        }
    }

    /// Tile positions cached.
    pub fn len(&self) -> usize {
        self.map.lock().map_or(0, |m| m.len())
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::merkle::CompactTree;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn every_level_matches_the_tree() {
        // Node k levels up over leaves [o, o + 2^k) is the root of that
        // subtree, computed here by the compact tree independently.
        let hashes = leaves(200);
        let p = TilePyramid::new(hashes.clone());
        assert_eq!(p.width(), 200);
        for up in 0..8u8 {
            let span = 1usize << up;
            for start in (0..200).step_by(span) {
                if start + span > 200 {
                    assert_eq!(p.node(up, start), None, "incomplete node {up}/{start}");
                    continue;
                }
                let mut t = CompactTree::new();
                for h in &hashes[start..start + span] {
                    t.append(*h);
                }
                assert_eq!(p.node(up, start), Some(t.root()), "node {up}/{start}");
            }
        }
        assert_eq!(p.node(8, 0), None);
    }

    #[test]
    fn a_wider_pyramid_serves_narrower_requests_and_is_kept() {
        let cache = PyramidCache::new(10);
        let narrow = Arc::new(TilePyramid::new(leaves(10)));
        let wide = Arc::new(TilePyramid::new(leaves(20)));
        cache.put(1, 0, 0, Arc::clone(&narrow));
        assert!(cache.get(1, 0, 0, 20).is_none());
        assert_eq!(cache.get(1, 0, 0, 10).unwrap().width(), 10);
        cache.put(1, 0, 0, Arc::clone(&wide));
        cache.put(1, 0, 0, narrow);
        assert_eq!(cache.get(1, 0, 0, 10).unwrap().width(), 20);
        // Other namespaces and positions are apart.
        assert!(cache.get(2, 0, 0, 1).is_none());
        assert!(cache.get(1, 1, 0, 1).is_none());
        cache.put(2, 0, 0, wide);
        cache.clear(1);
        assert!(cache.get(1, 0, 0, 1).is_none());
        assert!(cache.get(2, 0, 0, 1).is_some());
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = PyramidCache::new(3);
        for i in 0..3 {
            cache.put(0, 0, i, Arc::new(TilePyramid::new(leaves(2))));
        }
        assert_eq!(cache.len(), 3);
        cache.put(0, 0, 3, Arc::new(TilePyramid::new(leaves(2))));
        assert_eq!(cache.len(), 1);
        assert!(cache.get(0, 0, 3, 2).is_some());
    }
}
