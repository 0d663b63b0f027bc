//! The RFC 6962 / RFC 9162 Merkle tree: roots, inclusion and consistency
//! proofs, and an incremental (compact) tree.
//!
//! Proof generation never needs the whole tree in memory. It reads node
//! hashes through [`NodeSource`], and only ever asks for *complete* subtrees
//! lying inside the requested tree size: a range on the ragged right edge of
//! the tree is split into its maximal complete subtrees and those are hashed
//! together here, the way Go's `golang.org/x/mod/sumdb/tlog` does. That is
//! what lets the same code run over an in-memory tree ([`MemoryNodes`]),
//! a database, or C2SP tiles alone (`crate::tile::TileNodes`): all of them
//! store complete subtrees, and the hash of a complete subtree never changes
//! once the tree has grown past it.
//!
//! Verification follows the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2, and
//! the edge-case behaviour of `github.com/transparency-dev/merkle` (empty
//! trees, equal sizes, index ≥ size, wrong proof lengths), whose test vectors
//! are checked in `tests/merkle_vectors.rs`.

use crate::code::ErrorCode;
use crate::hash::{Hash, empty_root, node_hash};
use crate::tile::TileError;

/// Why a Merkle operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MerkleError {
    /// A leaf index is not inside the tree (`index >= size`).
    #[error("index {index} out of range for tree size {size}")]
    IndexOutOfRange {
        /// The offending leaf index.
        index: u64,
        /// The tree size it was checked against.
        size: u64,
    },
    /// A consistency check was asked to go from a larger tree to a smaller one.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizeOrder {
        /// The claimed older size.
        old_size: u64,
        /// The claimed newer size.
        new_size: u64,
    },
    /// The proof has the wrong number of hashes for the sizes given.
    #[error("proof has {got} hashes, expected {want}")]
    BadProof {
        /// Hashes supplied.
        got: usize,
        /// Hashes the sizes call for.
        want: usize,
    },
    /// The proof is well-formed but does not lead to the expected root.
    #[error("computed root {computed} does not match expected root {expected}")]
    RootMismatch {
        /// The root the caller expected.
        expected: Hash,
        /// The root the proof produced.
        computed: Hash,
    },
    /// A node source could not supply a node (not stored, or outside the tree).
    #[error("missing node at level {level}, index {index}")]
    MissingNode {
        /// Tree level of the node (0 = leaves).
        level: u8,
        /// Position of the node within its level.
        index: u64,
    },
    /// A compact-tree frontier does not fit the tree size.
    #[error("frontier of {got} hashes does not fit tree size {size} (needs {want})")]
    BadFrontier {
        /// The tree size.
        size: u64,
        /// Hashes supplied.
        got: usize,
        /// `size.count_ones()`.
        want: usize,
    },
    /// A tile needed to compute a node could not be read or decoded.
    #[error("tile: {0}")]
    Tile(#[from] TileError),
}

impl ErrorCode for MerkleError {
    fn code(&self) -> &'static str {
        match self {
            MerkleError::IndexOutOfRange { .. } => "merkle.index_out_of_range",
            MerkleError::SizeOrder { .. } => "merkle.size_order",
            MerkleError::BadProof { .. } => "merkle.bad_proof",
            MerkleError::RootMismatch { .. } => "merkle.root_mismatch",
            MerkleError::MissingNode { .. } => "merkle.missing_node",
            MerkleError::BadFrontier { .. } => "merkle.bad_frontier",
            // A tile failure keeps the tile's own, more specific code.
            MerkleError::Tile(e) => e.code(),
        }
    }
}

/// Somewhere complete-subtree hashes can be read from.
///
/// Implementations are only ever asked for complete subtrees inside the tree
/// size the caller is working with, so a store that keeps nothing but
/// complete subtrees (an append-only table, C2SP tiles) is enough.
pub trait NodeSource {
    /// Hash of the complete subtree at `level` (0 = leaf hashes) and position
    /// `index`, covering leaves [index << level, (index + 1) << level).
    fn node(&self, level: u8, index: u64) -> Result<Hash, MerkleError>;
}

impl<T: NodeSource + ?Sized> NodeSource for &T {
    fn node(&self, level: u8, index: u64) -> Result<Hash, MerkleError> {
        (**self).node(level, index)
    }
}

/// Largest power of two strictly less than `n` (`n >= 2`): the split point
/// `k` of RFC 9162 §2.1.1.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// ⌊log2 x⌋ for `x > 0`, as a tree level.
fn floor_log2(x: u64) -> u8 {
    u8::try_from(x.ilog2()).expect("log2 of a u64 is below 64")
}

/// `MTH(D[lo:hi])` for a range that is an RFC 6962 subtree: `lo` is a
/// multiple of a power of two at least `hi - lo`, which holds for every
/// range the RFC recursions produce. The range is decomposed into its
/// maximal complete subtrees (largest first, one per set bit of the length)
/// and those are folded together right to left.
/// <https://www.rfc-editor.org/rfc/rfc9162#section-2.1.1>
fn range_hash(lo: u64, hi: u64, src: &impl NodeSource) -> Result<Hash, MerkleError> {
    debug_assert!(lo < hi);
    let mut len = hi - lo;
    let mut start = lo;
    let mut parts: [Hash; 64] = [Hash::default(); 64];
    let mut n = 0;
    while len > 0 {
        let level = floor_log2(len);
        parts[n] = src.node(level, start >> level)?;
        n += 1;
        start += 1u64 << level;
        len -= 1u64 << level;
    }
    let mut acc = parts[n - 1];
    for part in parts[..n - 1].iter().rev() {
        acc = node_hash(part, &acc);
    }
    Ok(acc)
}

/// Root hash of the tree of `size` leaves whose nodes `src` holds; the empty
/// tree's root is SHA-256 of the empty string.
/// <https://www.rfc-editor.org/rfc/rfc9162#section-2.1.1>
pub fn root_at(size: u64, src: &impl NodeSource) -> Result<Hash, MerkleError> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(0, size, src)
}

/// Inclusion proof (audit path) for leaf `index` in the tree of `size`
/// leaves, ordered from the leaf's sibling upward, as `PATH(m, D[n])`.
/// <https://www.rfc-editor.org/rfc/rfc9162#section-2.1.3.1>
pub fn inclusion_proof(
    index: u64,
    size: u64,
    src: &impl NodeSource,
) -> Result<Vec<Hash>, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    // Walk down from the root, collecting the sibling subtree at each split;
    // the RFC's recursion appends them on the way back up, so reverse.
    let (mut lo, mut hi) = (0u64, size);
    let mut proof = Vec::with_capacity(64);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index - lo < k {
            proof.push(range_hash(lo + k, hi, src)?);
            hi = lo + k;
        } else {
            proof.push(range_hash(lo, lo + k, src)?);
            lo += k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Consistency proof between the trees of `old_size` and `new_size` leaves,
/// as `PROOF(m, D[n])`. Empty when `old_size` is 0 or equal to `new_size`,
/// matching transparency-dev/merkle.
/// <https://www.rfc-editor.org/rfc/rfc9162#section-2.1.4.1>
pub fn consistency_proof(
    old_size: u64,
    new_size: u64,
    src: &impl NodeSource,
) -> Result<Vec<Hash>, MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::SizeOrder { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled. `m` is relative to `lo`.
    let (mut lo, mut hi, mut m, mut whole) = (0u64, new_size, old_size, true);
    let mut proof = Vec::with_capacity(64);
    loop {
        let n = hi - lo;
        if m == n {
            if !whole {
                proof.push(range_hash(lo, hi, src)?);
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            proof.push(range_hash(lo + k, hi, src)?);
            hi = lo + k;
        } else {
            proof.push(range_hash(lo, lo + k, src)?);
            lo += k;
            m -= k;
            whole = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Number of hashes in an inclusion proof for `index` in a tree of `size`
/// (`index < size`): the sibling path below the point where the leaf's path
/// leaves the perfect left part of the tree ("inner"), plus one hash per
/// set bit of `index` above it ("border").
fn inclusion_len(index: u64, size: u64) -> usize {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    // `inner` is 64 when the path leaves at the root of a 2^64-leaf tree.
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// Number of hashes in a consistency proof for `0 < old < new`.
fn consistency_len(old: u64, new: u64) -> usize {
    let shift = old.trailing_zeros();
    let base = inclusion_len(old - 1, new) - shift as usize;
    // When the old tree is a perfect tree its root is the seed and is not sent.
    if old == 1u64 << shift { base } else { base + 1 }
}

fn check_root(computed: Hash, expected: &Hash) -> Result<(), MerkleError> {
    if computed == *expected {
        Ok(())
    } else {
        Err(MerkleError::RootMismatch {
            expected: *expected,
            computed,
        })
    }
}

/// Checks that `leaf` is the leaf hash at `index` in the tree of `size`
/// whose root is `root`. Rejects `index >= size` and proofs of the wrong
/// length before hashing, so a proof is accepted only in its one exact form.
/// <https://www.rfc-editor.org/rfc/rfc9162#section-2.1.3.2>
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let want = inclusion_len(index, size);
    if proof.len() != want {
        return Err(MerkleError::BadProof {
            got: proof.len(),
            want,
        });
    }
    // RFC 9162 §2.1.3.2, step by step: `fn` is the position of the running
    // hash within its level, `sn` the last position of that level.
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            // Unreachable after the length check; kept as the RFC's guard.
            return Err(MerkleError::BadProof {
                got: proof.len(),
                want,
            });
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(MerkleError::BadProof {
            got: proof.len(),
            want,
        });
    }
    check_root(r, root)
}

/// Checks that the tree of `new_size` with root `new_root` extends the tree
/// of `old_size` with root `old_root`.
///
/// Edge cases follow transparency-dev/merkle: equal sizes need an empty
/// proof and equal roots; an empty old tree is consistent with anything
/// given an empty proof (its root is not checked); otherwise the proof must
/// have exactly the expected length.
/// <https://www.rfc-editor.org/rfc/rfc9162#section-2.1.4.2>
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::SizeOrder { old_size, new_size });
    }
    if old_size == new_size || old_size == 0 {
        if !proof.is_empty() {
            return Err(MerkleError::BadProof {
                got: proof.len(),
                want: 0,
            });
        }
        if old_size == new_size {
            return check_root(*new_root, old_root);
        }
        return Ok(());
    }
    let want = consistency_len(old_size, new_size);
    if proof.len() != want {
        return Err(MerkleError::BadProof {
            got: proof.len(),
            want,
        });
    }
    // RFC 9162 §2.1.4.2. A perfect old tree is its own first proof node.
    let path: Vec<Hash> = if old_size.is_power_of_two() {
        std::iter::once(*old_root)
            .chain(proof.iter().copied())
            .collect()
    } else {
        proof.to_vec()
    };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return Err(MerkleError::BadProof {
                got: proof.len(),
                want,
            });
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(MerkleError::BadProof {
            got: proof.len(),
            want,
        });
    }
    check_root(fr, old_root)?;
    check_root(sr, new_root)
}

/// An incremental Merkle tree that keeps only its frontier: the hashes of
/// the maximal complete subtrees, leftmost (largest) first, so that
/// `frontier.len() == size.count_ones()`. This is all a log writer needs to
/// append leaves and produce roots without reading old nodes back.
/// <https://www.rfc-editor.org/rfc/rfc9162#section-2.1.1>
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CompactTree {
    size: u64,
    frontier: Vec<Hash>,
}

impl CompactTree {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a tree from a stored size and frontier.
    pub fn from_parts(size: u64, frontier: Vec<Hash>) -> Result<Self, MerkleError> {
        let want = size.count_ones() as usize;
        if frontier.len() != want {
            return Err(MerkleError::BadFrontier {
                size,
                got: frontier.len(),
                want,
            });
        }
        Ok(CompactTree { size, frontier })
    }

    /// Rebuilds the tree of `size` leaves by reading its frontier nodes (one
    /// per set bit of `size`) from `src`.
    pub fn from_source(size: u64, src: &impl NodeSource) -> Result<Self, MerkleError> {
        let mut frontier = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if size >> level & 1 == 1 {
                frontier.push(src.node(level, start >> level)?);
                start += 1u64 << level;
            }
        }
        Ok(CompactTree { size, frontier })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Hashes of the maximal complete subtrees, largest first.
    pub fn frontier(&self) -> &[Hash] {
        &self.frontier
    }

    /// The tree's root: the frontier folded right to left, or the empty
    /// root for size 0. O(log n) hashing.
    /// <https://www.rfc-editor.org/rfc/rfc9162#section-2.1.1>
    pub fn root(&self) -> Hash {
        let mut it = self.frontier.iter().rev();
        match it.next() {
            None => empty_root(),
            Some(last) => it.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }

    /// Appends a leaf hash. Amortised O(1) hashing.
    pub fn append(&mut self, leaf: Hash) {
        self.append_with(leaf, |_, _, _| {});
    }

    /// Like [`append`](Self::append), calling `completed(level, index, &hash)`
    /// for every complete-subtree node this append creates, the leaf itself
    /// (level 0) first, upward — so a writer can store exactly the new nodes.
    pub fn append_with(&mut self, leaf: Hash, mut completed: impl FnMut(u8, u64, &Hash)) {
        let old = self.size;
        let mut hash = leaf;
        let mut level = 0u8;
        completed(0, old, &hash);
        // Each trailing one bit of the old size is a complete subtree that
        // now gets a right sibling of the same height and merges with it.
        while old >> level & 1 == 1 {
            let left = self
                .frontier
                .pop()
                .expect("frontier holds one hash per set bit of size");
            hash = node_hash(&left, &hash);
            level += 1;
            completed(level, old >> level, &hash);
        }
        self.frontier.push(hash);
        self.size = old + 1;
    }
}

/// Every complete-subtree hash of a tree, in memory, one `Vec` per level.
/// Built by pushing leaf hashes; meant for tests and small callers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryNodes {
    levels: Vec<Vec<Hash>>,
}

impl MemoryNodes {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree holding `leaves` (leaf hashes) in order.
    pub fn from_leaves(leaves: impl IntoIterator<Item = Hash>) -> Self {
        let mut nodes = Self::new();
        for leaf in leaves {
            nodes.push(leaf);
        }
        nodes
    }

    /// Appends a leaf hash and every node it completes.
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(hash);
            let n = row.len();
            if n % 2 == 1 {
                break;
            }
            hash = node_hash(&row[n - 2], &row[n - 1]);
            level += 1;
        }
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl NodeSource for MemoryNodes {
    fn node(&self, level: u8, index: u64) -> Result<Hash, MerkleError> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.levels.get(usize::from(level))?.get(i))
            .copied()
            .ok_or(MerkleError::MissingNode { level, index })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// MTH straight from the RFC 9162 §2.1.1 definition, recursively.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    /// A source that refuses anything not a complete subtree inside `size`.
    struct Strict<'a> {
        inner: &'a MemoryNodes,
        size: u64,
    }
    impl NodeSource for Strict<'_> {
        fn node(&self, level: u8, index: u64) -> Result<Hash, MerkleError> {
            let end = (index + 1) << level;
            assert!(
                end <= self.size,
                "asked for ({level},{index}) beyond {}",
                self.size
            );
            self.inner.node(level, index)
        }
    }

    #[test]
    fn roots_match_reference_definition() {
        let ls = leaves(70);
        let mem = MemoryNodes::from_leaves(ls.iter().copied());
        for n in 0..=70u64 {
            let strict = Strict {
                inner: &mem,
                size: n,
            };
            assert_eq!(
                root_at(n, &strict).unwrap(),
                reference_root(&ls[..n as usize])
            );
        }
    }

    #[test]
    fn proofs_only_touch_complete_subtrees_inside_size() {
        let mem = MemoryNodes::from_leaves(leaves(40));
        for n in 1..=40u64 {
            let strict = Strict {
                inner: &mem,
                size: n,
            };
            let root = root_at(n, &strict).unwrap();
            for i in 0..n {
                let p = inclusion_proof(i, n, &strict).unwrap();
                assert_eq!(p.len(), inclusion_len(i, n));
                verify_inclusion(&mem.node(0, i).unwrap(), i, n, &p, &root).unwrap();
            }
            for m in 1..n {
                let p = consistency_proof(m, n, &strict).unwrap();
                assert_eq!(p.len(), consistency_len(m, n), "{m} {n}");
                let old = root_at(m, &mem).unwrap();
                verify_consistency(m, n, &p, &old, &root).unwrap();
            }
        }
    }

    #[test]
    fn errors_and_codes() {
        let mem = MemoryNodes::from_leaves(leaves(3));
        let e = inclusion_proof(3, 3, &mem).unwrap_err();
        assert_eq!(e, MerkleError::IndexOutOfRange { index: 3, size: 3 });
        assert_eq!(e.code(), "merkle.index_out_of_range");
        let e = consistency_proof(4, 3, &mem).unwrap_err();
        assert_eq!(e.code(), "merkle.size_order");
        let e = root_at(5, &mem).unwrap_err();
        assert_eq!(e.code(), "merkle.missing_node");
        let e = verify_inclusion(&leaves(1)[0], 0, 2, &[], &empty_root()).unwrap_err();
        assert_eq!(e, MerkleError::BadProof { got: 0, want: 1 });
        assert_eq!(e.code(), "merkle.bad_proof");
        let e = verify_consistency(1, 1, &[], &leaves(1)[0], &empty_root()).unwrap_err();
        assert_eq!(e.code(), "merkle.root_mismatch");
        let e = CompactTree::from_parts(3, vec![empty_root()]).unwrap_err();
        assert_eq!(
            e,
            MerkleError::BadFrontier {
                size: 3,
                got: 1,
                want: 2
            }
        );
        assert_eq!(e.code(), "merkle.bad_frontier");
        let e = MerkleError::from(TileError::Missing {
            path: "tile/0/000".into(),
        });
        assert_eq!(e.code(), "tile.missing");
    }

    #[test]
    fn huge_sizes_do_not_panic() {
        let h = leaf_hash(b"x");
        for (i, n) in [(0, u64::MAX), (u64::MAX - 1, u64::MAX), (1 << 63, u64::MAX)] {
            let want = inclusion_len(i, n);
            assert!(want <= 64);
            let proof = vec![h; want];
            assert_eq!(
                verify_inclusion(&h, i, n, &proof, &h).unwrap_err().code(),
                "merkle.root_mismatch"
            );
            assert_eq!(
                verify_inclusion(&h, i, n, &[], &h).unwrap_err().code(),
                "merkle.bad_proof"
            );
        }
        for (m, n) in [(1, u64::MAX), (u64::MAX - 1, u64::MAX), (1 << 63, u64::MAX)] {
            let proof = vec![h; consistency_len(m, n)];
            assert!(verify_consistency(m, n, &proof, &h, &h).is_err());
            assert!(verify_consistency(m, n, &[], &h, &h).is_err());
        }
    }

    #[test]
    fn compact_tree_append_with_reports_new_nodes() {
        let ls = leaves(20);
        let mem = MemoryNodes::from_leaves(ls.iter().copied());
        let mut t = CompactTree::new();
        assert_eq!(t.root(), empty_root());
        for (i, l) in ls.iter().enumerate() {
            let mut seen = Vec::new();
            t.append_with(*l, |lv, ix, h| seen.push((lv, ix, *h)));
            let i = i as u64;
            // Node (lv, i >> lv) is completed exactly when leaf i is the last
            // leaf under it, i.e. the low lv bits of i are all ones.
            let want: Vec<_> = (0..=(i + 1).trailing_zeros() as u8)
                .map(|lv| (lv, i >> lv, mem.node(lv, i >> lv).unwrap()))
                .collect();
            assert_eq!(seen, want, "leaf {i}");
            assert_eq!(t.root(), root_at(i + 1, &mem).unwrap());
        }
    }
}
