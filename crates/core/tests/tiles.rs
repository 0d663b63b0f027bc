//! C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>): path spelling, which
//! tiles a tree has, entry bundles, and proofs computed from tiles alone.
//!
//! The expectations for size 70,000 are the worked example in the spec
//! (C2SP/C2SP `tlog-tiles.md`, "Partial Tiles"): 273 full level-0 tiles, a
//! level-0 partial of width 112, one full level-1 tile, a level-1 partial of
//! width 17 and a level-2 partial of width 1; and size 256 has a full level-0
//! tile plus `tile/1/000.p/1`.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use evident_core::ErrorCode;
use evident_core::hash::{Hash, leaf_hash};
use evident_core::merkle::{
    CompactTree, MemoryNodes, MerkleError, NodeSource, consistency_proof, inclusion_proof, root_at,
};
use evident_core::pyramid::PyramidCache;
use evident_core::tile::{
    BundleProblem, PathProblem, TileError, TileId, TileKind, TileNodes, TileReader, changed_tiles,
    decode_bundle, encode_bundle, entry_bundles_for_size, hash_tiles_for_size, split_tile_hashes,
    tile_data,
};
use proptest::prelude::*;

// ---------------------------------------------------------------- paths ----

#[test]
fn path_round_trips() {
    let ids = [
        TileId::hashes(0, 0, 256),
        TileId::hashes(0, 0, 1),
        TileId::hashes(0, 999, 255),
        TileId::hashes(0, 1000, 256),
        TileId::hashes(0, 1_234_067, 256),
        TileId::hashes(1, 5, 128),
        TileId::hashes(63, u64::MAX, 7),
        TileId::entries(0, 256),
        TileId::entries(1000, 17),
        TileId::entries(u64::MAX, 256),
    ];
    for id in ids {
        assert_eq!(TileId::parse_path(&id.path()), Ok(id), "{}", id.path());
    }
    let spelled = [
        ("tile/0/x001/x234/067", TileId::hashes(0, 1_234_067, 256)),
        ("tile/1/000.p/5", TileId::hashes(1, 0, 5)),
        ("tile/entries/x001/000.p/17", TileId::entries(1000, 17)),
        ("tile/2/x001/000", TileId::hashes(2, 1000, 256)),
        ("tile/0/x001/x000/000", TileId::hashes(0, 1_000_000, 256)),
    ];
    for (path, id) in spelled {
        assert_eq!(id.path(), path);
        assert_eq!(TileId::parse_path(path), Ok(id));
    }
    assert!(TileId::hashes(0, 0, 256).is_full());
    assert!(!TileId::hashes(0, 0, 255).is_full());
}

fn problem(path: &str) -> PathProblem {
    match TileId::parse_path(path) {
        Err(TileError::BadPath { path: p, problem }) => {
            assert_eq!(p, path);
            problem
        }
        other => panic!("{path:?} gave {other:?}"),
    }
}

#[test]
fn parse_rejects_prefix() {
    for p in [
        "",
        "/tile/0/000",
        "tiles/0/000",
        "Tile/0/000",
        "x/tile/0/000",
        "tile",
    ] {
        assert_eq!(problem(p), PathProblem::Prefix, "{p:?}");
    }
    assert_eq!(
        TileId::parse_path("/tile/0/000").unwrap_err().code(),
        "tile.bad_path"
    );
}

#[test]
fn parse_rejects_level() {
    for p in [
        "tile/00/000",
        "tile/01/000",
        "tile/64/000",
        "tile/255/000",
        "tile/-1/000",
        "tile/+1/000",
        "tile//000",
        "tile/entry/000",
        "tile/Entries/000",
        "tile/0",
        "tile/",
    ] {
        assert_eq!(problem(p), PathProblem::Level, "{p:?}");
    }
    assert!(TileId::parse_path("tile/63/000").is_ok());
}

#[test]
fn parse_rejects_index_group() {
    for p in [
        "tile/0/",
        "tile/0/00",
        "tile/0/0000",
        "tile/0/x001",
        "tile/0/001/002",
        "tile/0/x01/002",
        "tile/0/x0001/002",
        "tile/0/000/",
        "tile/0/x001/x234/67",
        "tile/0/+01",
        "tile/0/ 01",
        "tile/0/X001/002",
        "tile/0/x001//002",
        "tile/entries/1",
        "tile/0/000.p",
        "tile/0/000.q/5",
    ] {
        assert_eq!(problem(p), PathProblem::IndexGroup, "{p:?}");
    }
}

#[test]
fn parse_rejects_non_minimal_index() {
    for p in [
        "tile/0/x000/001",
        "tile/0/x000/000",
        "tile/entries/x000/x001/000",
    ] {
        assert_eq!(problem(p), PathProblem::NonMinimalIndex, "{p:?}");
    }
}

#[test]
fn parse_rejects_index_overflow() {
    // u64::MAX is 18446744073709551615; one more overflows.
    assert!(TileId::parse_path("tile/0/x018/x446/x744/x073/x709/x551/615").is_ok());
    for p in [
        "tile/0/x018/x446/x744/x073/x709/x551/616",
        "tile/0/x999/x999/x999/x999/x999/x999/x999/999",
    ] {
        assert_eq!(problem(p), PathProblem::IndexOverflow, "{p:?}");
    }
}

#[test]
fn parse_rejects_width() {
    for p in [
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/05",
        "tile/0/000.p/",
        "tile/0/000.p/1/",
        "tile/0/000.p/x1",
        "tile/0/000.p/+1",
        "tile/0/000.p/5.p/6",
        "tile/entries/000.p/1000",
    ] {
        assert_eq!(problem(p), PathProblem::Width, "{p:?}");
    }
    assert_eq!(TileId::parse_path("tile/0/000.p/255").unwrap().width, 255);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_ids_round_trip(
        level in 0u8..=63,
        entries in any::<bool>(),
        index in any::<u64>(),
        width in 1u16..=256,
    ) {
        let kind = if entries { TileKind::Entries } else { TileKind::Hashes { level } };
        let id = TileId { kind, index, width };
        prop_assert_eq!(TileId::parse_path(&id.path()), Ok(id));
    }

    /// Strictness: whatever parses is spelled exactly as `path()` spells it.
    #[test]
    fn parsed_paths_are_canonical(
        s in "(/?tile/)?((entries|0|00|1|[0-9]{1,3})/)?(x[0-9]{2,4}/){0,3}x?[0-9]{1,4}(\\.p/[0-9]{1,3})?/?"
    ) {
        if let Ok(id) = TileId::parse_path(&s) {
            prop_assert_eq!(id.path(), s);
        }
    }
}

// ---------------------------------------------------- tiles for a size ----

/// Expands (level, full tiles, partial width) into the expected tile list.
fn expect(levels: &[(u8, u64, u16)]) -> Vec<TileId> {
    let mut out = Vec::new();
    for &(level, full, partial) in levels {
        out.extend((0..full).map(|n| TileId::hashes(level, n, 256)));
        if partial > 0 {
            out.push(TileId::hashes(level, full, partial));
        }
    }
    out
}

#[test]
fn hash_tiles_for_sizes_by_hand() {
    // (size, [(level, full tiles, partial width)])
    type Case = (u64, &'static [(u8, u64, u16)]);
    let cases: [Case; 8] = [
        (0, &[]),
        (1, &[(0, 0, 1)]),
        (255, &[(0, 0, 255)]),
        (256, &[(0, 1, 0), (1, 0, 1)]),
        (257, &[(0, 1, 1), (1, 0, 1)]),
        (65536, &[(0, 256, 0), (1, 1, 0), (2, 0, 1)]),
        (65537, &[(0, 256, 1), (1, 1, 0), (2, 0, 1)]),
        (70000, &[(0, 273, 112), (1, 1, 17), (2, 0, 1)]),
    ];
    for (size, levels) in cases {
        let got: Vec<TileId> = hash_tiles_for_size(size).collect();
        assert_eq!(got, expect(levels), "size {size}");
    }
    let paths: Vec<String> = hash_tiles_for_size(70000)
        .filter(|t| !t.is_full())
        .map(|t| t.path())
        .collect();
    assert_eq!(
        paths,
        ["tile/0/273.p/112", "tile/1/001.p/17", "tile/2/000.p/1"]
    );
    let paths: Vec<String> = hash_tiles_for_size(256).map(|t| t.path()).collect();
    assert_eq!(paths, ["tile/0/000", "tile/1/000.p/1"]);
}

#[test]
fn hash_tiles_for_big_sizes() {
    // 256^3 - 1: levels 0, 1 and 2 each end in a partial tile of width 255.
    let partials: Vec<TileId> = hash_tiles_for_size(16_777_215)
        .filter(|t| !t.is_full())
        .collect();
    assert_eq!(
        partials,
        [
            TileId::hashes(0, 65535, 255),
            TileId::hashes(1, 255, 255),
            TileId::hashes(2, 0, 255)
        ]
    );
    // The iterator is lazy even for the largest tree.
    assert_eq!(
        hash_tiles_for_size(u64::MAX).next(),
        Some(TileId::hashes(0, 0, 256))
    );
}

#[test]
fn entry_bundles_for_sizes() {
    assert_eq!(entry_bundles_for_size(0).count(), 0);
    assert_eq!(
        entry_bundles_for_size(1).collect::<Vec<_>>(),
        [TileId::entries(0, 1)]
    );
    assert_eq!(
        entry_bundles_for_size(256).collect::<Vec<_>>(),
        [TileId::entries(0, 256)]
    );
    let b: Vec<TileId> = entry_bundles_for_size(70000).collect();
    assert_eq!(b.len(), 274);
    assert!(
        b[..273]
            .iter()
            .enumerate()
            .all(|(i, t)| *t == TileId::entries(i as u64, 256))
    );
    assert_eq!(b[273].path(), "tile/entries/273.p/112");
}

#[test]
fn changed_tiles_by_hand() {
    assert!(changed_tiles(5, 5).is_empty());
    assert!(changed_tiles(6, 5).is_empty());
    assert_eq!(
        changed_tiles(0, 1),
        [TileId::hashes(0, 0, 1), TileId::entries(0, 1)]
    );
    assert_eq!(
        changed_tiles(255, 256),
        [
            TileId::hashes(0, 0, 256),
            TileId::hashes(1, 0, 1),
            TileId::entries(0, 256)
        ]
    );
    // Level 1 still holds one hash: only the new level-0 tile and bundle.
    assert_eq!(
        changed_tiles(256, 257),
        [TileId::hashes(0, 1, 1), TileId::entries(1, 1)]
    );
    assert_eq!(
        changed_tiles(100, 600),
        [
            TileId::hashes(0, 0, 256),
            TileId::hashes(0, 1, 256),
            TileId::hashes(0, 2, 88),
            TileId::hashes(1, 0, 2),
            TileId::entries(0, 256),
            TileId::entries(1, 256),
            TileId::entries(2, 88),
        ]
    );
}

fn all_tiles(size: u64) -> BTreeSet<TileId> {
    hash_tiles_for_size(size)
        .chain(entry_bundles_for_size(size))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Changed tiles are exactly the tiles (with their widths) of the new
    /// tree that the old tree did not have; and per level there is at most
    /// one partial tile, of width floor(s / 256^L) mod 256, never 0.
    #[test]
    fn changed_tiles_is_set_difference(old in 0u64..200_000, grow in 0u64..70_000) {
        let new = old + grow;
        let want: BTreeSet<TileId> = all_tiles(new).difference(&all_tiles(old)).copied().collect();
        let got = changed_tiles(old, new);
        prop_assert_eq!(got.iter().copied().collect::<BTreeSet<_>>(), want);
        prop_assert_eq!(got.len(), got.iter().collect::<BTreeSet<_>>().len());

        for level in 0u8..8 {
            let partial: Vec<TileId> = hash_tiles_for_size(new)
                .filter(|t| t.kind == TileKind::Hashes { level } && !t.is_full())
                .collect();
            let w = (new >> (8 * u32::from(level))) % 256;
            if w == 0 {
                prop_assert!(partial.is_empty());
            } else {
                prop_assert_eq!(partial.len(), 1);
                prop_assert_eq!(u64::from(partial[0].width), w);
            }
        }
    }
}

// -------------------------------------------------------------- bundles ----

#[test]
fn bundle_round_trip() {
    let big = vec![7u8; 65535];
    let entries: Vec<&[u8]> = vec![b"", b"a", b"hello", &big];
    let data = encode_bundle(&entries).unwrap();
    assert_eq!(&data[..5], &[0, 0, 0, 1, b'a']);
    assert_eq!(data.len(), 2 + 3 + 7 + 2 + 65535);
    assert_eq!(decode_bundle(&data, 4).unwrap(), entries);
}

fn bundle_problem(data: &[u8], width: u16) -> BundleProblem {
    match decode_bundle(data, width) {
        Err(e @ TileError::BadBundle(p)) => {
            assert_eq!(e.code(), "tile.bad_bundle");
            p
        }
        other => panic!("{data:?}/{width}: {other:?}"),
    }
}

#[test]
fn bundle_decode_errors() {
    let ok = encode_bundle(&[b"ab", b"c"]).unwrap();
    // Truncated inside a length prefix, and inside a body.
    assert_eq!(
        bundle_problem(&[0], 1),
        BundleProblem::Truncated { entry: 0 }
    );
    assert_eq!(
        bundle_problem(&ok[..ok.len() - 1], 2),
        BundleProblem::Truncated { entry: 1 }
    );
    assert_eq!(
        bundle_problem(&ok[..5], 2),
        BundleProblem::Truncated { entry: 1 }
    );
    // Too few entries.
    assert_eq!(
        bundle_problem(&ok, 3),
        BundleProblem::TooFew { got: 2, want: 3 }
    );
    assert_eq!(
        bundle_problem(&[], 1),
        BundleProblem::TooFew { got: 0, want: 1 }
    );
    // Trailing bytes, including a whole extra entry.
    let mut extra = ok.clone();
    extra.push(0);
    assert_eq!(
        bundle_problem(&extra, 2),
        BundleProblem::Trailing { extra: 1 }
    );
    assert_eq!(bundle_problem(&ok, 1), BundleProblem::Trailing { extra: 3 });
    // Width outside 1..=256.
    assert_eq!(decode_bundle(&ok, 0), Err(TileError::BadWidth { width: 0 }));
    assert_eq!(
        decode_bundle(&ok, 257).unwrap_err().code(),
        "tile.bad_width"
    );
}

#[test]
fn bundle_encode_errors() {
    let big = vec![0u8; 65536];
    let e = encode_bundle(&[b"ok", &big]).unwrap_err();
    assert_eq!(
        e,
        TileError::EntryTooLarge {
            index: 1,
            len: 65536
        }
    );
    assert_eq!(e.code(), "tile.entry_too_large");
    assert_eq!(encode_bundle(&[]), Err(TileError::BadWidth { width: 0 }));
    let many: Vec<&[u8]> = vec![b"x"; 257];
    assert_eq!(
        encode_bundle(&many),
        Err(TileError::BadWidth { width: 257 })
    );
    assert!(encode_bundle(&many[..256]).is_ok());
}

#[test]
fn split_hashes() {
    let hs: Vec<Hash> = (0u8..3).map(|i| leaf_hash(&[i])).collect();
    let data: Vec<u8> = hs.iter().flat_map(|h| h.0).collect();
    assert_eq!(split_tile_hashes(&data, 3).unwrap(), hs);
    let e = split_tile_hashes(&data, 2).unwrap_err();
    assert_eq!(e, TileError::BadTileSize { len: 96, width: 2 });
    assert_eq!(e.code(), "tile.bad_size");
    assert!(split_tile_hashes(&data[..95], 3).is_err());
    assert_eq!(
        split_tile_hashes(&[], 0),
        Err(TileError::BadWidth { width: 0 })
    );
}

// ------------------------------------------------- proofs from tiles ----

const MAX_LEAVES: u64 = 70_000;

fn memory() -> &'static MemoryNodes {
    static MEM: OnceLock<MemoryNodes> = OnceLock::new();
    MEM.get_or_init(|| {
        MemoryNodes::from_leaves((0..MAX_LEAVES).map(|i| leaf_hash(&i.to_be_bytes())))
    })
}

/// A tile store holding every tile of the listed tree sizes, recording reads.
struct Store {
    tiles: HashMap<TileId, Vec<u8>>,
    reads: RefCell<Vec<TileId>>,
}

impl Store {
    fn for_sizes(sizes: &[u64]) -> Self {
        let mut tiles = HashMap::new();
        for &s in sizes {
            for t in hash_tiles_for_size(s) {
                tiles
                    .entry(t)
                    .or_insert_with(|| tile_data(&t, memory()).unwrap());
            }
        }
        Store {
            tiles,
            reads: RefCell::new(Vec::new()),
        }
    }
}

impl TileReader for Store {
    fn read_tile(&self, tile: &TileId) -> Result<Vec<u8>, TileError> {
        self.reads.borrow_mut().push(*tile);
        self.tiles
            .get(tile)
            .cloned()
            .ok_or(TileError::Missing { path: tile.path() })
    }
}

fn spread(n: u64, k: u64, seed: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..k)
        .map(|j| {
            (seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(j.wrapping_mul(1_442_695_040_888_963_407))
                >> 11)
                % n
        })
        .collect();
    v.extend([0, n - 1, n / 2]);
    v
}

/// Root, inclusion and consistency proofs from tiles alone equal those from
/// memory, for a tree of `size` and older sizes `olds` whose tiles exist too.
fn check_tiles_match_memory(size: u64, olds: &[u64]) {
    let mem = memory();
    let mut sizes = olds.to_vec();
    sizes.push(size);
    let store = Store::for_sizes(&sizes);
    let tiles = TileNodes::new(&store, size);
    assert_eq!(
        root_at(size, &tiles).unwrap(),
        root_at(size, mem).unwrap(),
        "root {size}"
    );
    assert_eq!(
        CompactTree::from_source(size, &tiles).unwrap(),
        CompactTree::from_source(size, mem).unwrap()
    );
    for i in spread(size, 6, size) {
        assert_eq!(
            inclusion_proof(i, size, &tiles).unwrap(),
            inclusion_proof(i, size, mem).unwrap(),
            "inclusion {i} in {size}"
        );
    }
    for m in spread(size, 6, size ^ 0x5555) {
        assert_eq!(
            consistency_proof(m, size, &tiles).unwrap(),
            consistency_proof(m, size, mem).unwrap(),
            "consistency {m} -> {size}"
        );
        // Every old root is also computable from the new tree's tiles.
        assert_eq!(root_at(m, &tiles).unwrap(), root_at(m, mem).unwrap());
    }
    for &old in olds {
        let old_tiles = TileNodes::new(&store, old);
        assert_eq!(
            root_at(old, &old_tiles).unwrap(),
            root_at(old, mem).unwrap()
        );
        for i in spread(old, 3, old) {
            assert_eq!(
                inclusion_proof(i, old, &old_tiles).unwrap(),
                inclusion_proof(i, old, mem).unwrap()
            );
        }
    }
    // Everything read was a tile of the tree being served, at its width.
    let served = all_tiles(size);
    let old_sets: Vec<BTreeSet<TileId>> = olds.iter().map(|&o| all_tiles(o)).collect();
    for t in store.reads.borrow().iter() {
        assert!(
            served.contains(t) || old_sets.iter().any(|s| s.contains(t)),
            "read unexpected tile {}",
            t.path()
        );
    }
}

#[test]
fn tiles_match_memory_at_awkward_sizes() {
    for (size, olds) in [
        (1u64, &[][..]),
        (255, &[1][..]),
        (256, &[255][..]),
        (257, &[256, 1][..]),
        (600, &[257, 512][..]),
        (65535, &[600][..]),
        (65536, &[65535][..]),
        (70000, &[65536, 65537, 256][..]),
    ] {
        check_tiles_match_memory(size, olds);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn tiles_match_memory_at_random_sizes(size in 1..=MAX_LEAVES, old_frac in 0u64..1000) {
        let old = (size * old_frac / 1000).max(1);
        check_tiles_match_memory(size, &[old]);
    }
}

#[test]
fn size_256_uses_the_level_1_partial_tile() {
    let store = Store::for_sizes(&[256]);
    let tiles = TileNodes::new(&store, 256);
    assert_eq!(tiles.node(8, 0).unwrap(), memory().node(8, 0).unwrap());
    assert_eq!(store.reads.borrow().as_slice(), [TileId::hashes(1, 0, 1)]);
    assert_eq!(TileId::hashes(1, 0, 1).path(), "tile/1/000.p/1");
    // Decoded tiles are cached: a second lookup reads nothing.
    tiles.node(8, 0).unwrap();
    assert_eq!(store.reads.borrow().len(), 1);
}

#[test]
fn tile_nodes_errors() {
    let store = Store::for_sizes(&[300]);
    let tiles = TileNodes::new(&store, 300);
    // Outside the tree, or not a complete subtree inside it.
    for (level, index) in [
        (0u8, 300u64),
        (2, 75),
        (9, 0),
        (64, 0),
        (200, 0),
        (0, u64::MAX),
    ] {
        assert_eq!(
            tiles.node(level, index),
            Err(MerkleError::MissingNode { level, index }),
            "({level}, {index})"
        );
    }
    // Tiles the store lacks: a 301-leaf view needs tile/0/001.p/45.
    let bigger = TileNodes::new(&store, 301);
    let e = bigger.node(0, 300).unwrap_err();
    assert_eq!(e.code(), "tile.missing");
    // Tiles of the wrong length are rejected, not truncated.
    struct Short;
    impl TileReader for Short {
        fn read_tile(&self, _: &TileId) -> Result<Vec<u8>, TileError> {
            Ok(vec![0; 31])
        }
    }
    let e = TileNodes::new(&Short, 10).node(0, 0).unwrap_err();
    assert_eq!(
        e,
        MerkleError::Tile(TileError::BadTileSize { len: 31, width: 10 })
    );
    assert_eq!(e.code(), "tile.bad_size");
}

#[test]
fn tile_data_matches_memory_and_refuses_bundles() {
    let mem = memory();
    let data = tile_data(&TileId::hashes(0, 1, 5), mem).unwrap();
    let want: Vec<u8> = (256..261).flat_map(|i| mem.node(0, i).unwrap().0).collect();
    assert_eq!(data, want);
    let data = tile_data(&TileId::hashes(1, 0, 3), mem).unwrap();
    let want: Vec<u8> = (0..3).flat_map(|i| mem.node(8, i).unwrap().0).collect();
    assert_eq!(data, want);
    let e = tile_data(&TileId::entries(0, 5), mem).unwrap_err();
    assert_eq!(e.code(), "tile.not_hash_tile");
    let e = tile_data(&TileId::hashes(0, 1000, 256), mem).unwrap_err();
    assert_eq!(e.code(), "merkle.missing_node");
}

/// Shared tile pyramids give the nodes memory gives, at growing sizes and
/// back at older ones (a wider pyramid serving a narrower tile), and a
/// second source at a size the cache has seen reads no tile.
#[test]
fn shared_pyramids_match_memory_and_spare_reads() {
    let mem = memory();
    let sizes = [
        1u64, 2, 255, 256, 257, 300, 511, 600, 65_535, 65_536, 70_000,
    ];
    let store = Store::for_sizes(&sizes);
    let cache = PyramidCache::new(1024);
    let check = |size: u64| {
        let tiles = TileNodes::with_shared(&store, size, &cache, 7);
        assert_eq!(root_at(size, &tiles).unwrap(), root_at(size, mem).unwrap());
        for i in spread(size, 5, size)
            .into_iter()
            .chain(size.saturating_sub(3)..size)
        {
            assert_eq!(
                inclusion_proof(i, size, &tiles).unwrap(),
                inclusion_proof(i, size, mem).unwrap(),
                "inclusion {i} in {size}"
            );
        }
        for m in spread(size, 4, size ^ 0x33) {
            assert_eq!(
                consistency_proof(m, size, &tiles).unwrap(),
                consistency_proof(m, size, mem).unwrap(),
                "consistency {m} -> {size}"
            );
        }
    };
    for &size in &sizes {
        check(size);
    }
    for &size in sizes.iter().rev() {
        check(size);
    }
    // Warm: the same proofs again at one size read nothing.
    let size = 70_000;
    check(size);
    store.reads.borrow_mut().clear();
    check(size);
    assert_eq!(store.reads.borrow().len(), 0, "{:?}", store.reads.borrow());
    // Another namespace shares nothing.
    let other = TileNodes::with_shared(&store, size, &cache, 8);
    inclusion_proof(size - 1, size, &other).unwrap();
    assert!(!store.reads.borrow().is_empty());
}
