//! Known-answer tests for the Merkle tree and its proofs.
//!
//! Every hash value below is copied from `github.com/transparency-dev/merkle`:
//! - leaves, node hashes, roots and compact frontiers:
//!   `testonly/constants.go` (`LeafInputs`, `NodeHashes`, `RootHashes`,
//!   `CompactTrees`), the RFC 6962 reference tree shared by CT
//!   implementations;
//! - inclusion/consistency proofs, the corruption probes and the edge-case
//!   tables: `proof/verify_test.go` (`inclusionProofs`, `consistencyProofs`,
//!   `corruptInclusionProof`, `corruptConsistencyProof`,
//!   `TestVerifyInclusionSingleEntry`, `TestVerifyInclusion`,
//!   `TestVerifyConsistency`). The probes are the same ones that repository
//!   stores as JSON under `testdata/inclusion/` and `testdata/consistency/`.
//!
//! Go passes hashes as byte slices of any length (`[]byte("WrongLeaf")`,
//! `[]byte{}`); our API takes 32-byte [`Hash`]es, so such values are padded
//! with zeros to 32 bytes. They stay wrong, which is all those probes need.
#![allow(clippy::cast_possible_truncation, clippy::unwrap_used)]

use evident_core::ErrorCode;
use evident_core::hash::{Hash, empty_root, leaf_hash};
use evident_core::merkle::{
    CompactTree, MemoryNodes, NodeSource, consistency_proof, inclusion_proof, root_at,
    verify_consistency, verify_inclusion,
};

fn h(hex_str: &str) -> Hash {
    Hash::from_slice(&hex::decode(hex_str).unwrap()).unwrap()
}

/// Go test values that are not 32 bytes, padded with zeros.
fn padded(bytes: &[u8]) -> Hash {
    let mut out = [0u8; 32];
    out[..bytes.len()].copy_from_slice(bytes);
    Hash(out)
}

// testonly/constants.go: LeafInputs().
const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

// testonly/constants.go: NodeHashes(), by level then index.
const NODE_HASHES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

// testonly/constants.go: RootHashes(), indexed by tree size 0..=8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

// testonly/constants.go: CompactTrees(), as (level, index) into NODE_HASHES.
const COMPACT: [&[(usize, usize)]; 9] = [
    &[],
    &[(0, 0)],
    &[(1, 0)],
    &[(1, 0), (0, 2)],
    &[(2, 0)],
    &[(2, 0), (0, 4)],
    &[(2, 0), (1, 2)],
    &[(2, 0), (1, 2), (0, 6)],
    &[(3, 0)],
];

// proof/verify_test.go: sha256SomeHash.
const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

// proof/verify_test.go: inclusionProofs as (1-based leaf, size, proof).
const INCLUSION: [(u64, u64, &[&str]); 6] = [
    (0, 0, &[]),
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        3,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        2,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

// proof/verify_test.go: consistencyProofs as (size1, size2, proof).
const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn reference_tree() -> MemoryNodes {
    MemoryNodes::from_leaves(
        LEAF_INPUTS
            .iter()
            .map(|l| leaf_hash(&hex::decode(l).unwrap())),
    )
}

fn hashes(list: &[&str]) -> Vec<Hash> {
    list.iter().map(|s| h(s)).collect()
}

#[test]
fn empty_root_known_answer() {
    assert_eq!(empty_root(), h(ROOTS[0]));
    assert_eq!(root_at(0, &MemoryNodes::new()).unwrap(), h(ROOTS[0]));
}

#[test]
fn leaf_and_node_hashes_known_answer() {
    let tree = reference_tree();
    for (level, row) in NODE_HASHES.iter().enumerate() {
        for (index, want) in row.iter().enumerate() {
            let got = tree.node(level as u8, index as u64).unwrap();
            assert_eq!(got, h(want), "node ({level}, {index})");
        }
    }
    // Level 0 really is the RFC 6962 leaf hash of each input.
    for (i, input) in LEAF_INPUTS.iter().enumerate() {
        assert_eq!(
            leaf_hash(&hex::decode(input).unwrap()),
            h(NODE_HASHES[0][i])
        );
    }
}

#[test]
fn roots_of_every_prefix_known_answer() {
    let tree = reference_tree();
    let mut compact = CompactTree::new();
    assert_eq!(compact.root(), h(ROOTS[0]));
    for size in 1..=8u64 {
        assert_eq!(
            root_at(size, &tree).unwrap(),
            h(ROOTS[size as usize]),
            "size {size}"
        );
        compact.append(tree.node(0, size - 1).unwrap());
        assert_eq!(
            compact.root(),
            h(ROOTS[size as usize]),
            "compact size {size}"
        );
    }
}

#[test]
fn compact_frontiers_known_answer() {
    let tree = reference_tree();
    let mut compact = CompactTree::new();
    for size in 0..=8u64 {
        let want: Vec<Hash> = COMPACT[size as usize]
            .iter()
            .map(|&(l, i)| h(NODE_HASHES[l][i]))
            .collect();
        assert_eq!(compact.frontier(), want.as_slice(), "size {size}");
        assert_eq!(CompactTree::from_source(size, &tree).unwrap(), compact);
        if size < 8 {
            compact.append(tree.node(0, size).unwrap());
        }
    }
}

#[test]
fn generated_proofs_match_vectors() {
    let tree = reference_tree();
    for &(leaf, size, proof) in &INCLUSION[1..] {
        assert_eq!(
            inclusion_proof(leaf - 1, size, &tree).unwrap(),
            hashes(proof),
            "inclusion {leaf} {size}"
        );
    }
    for &(m, n, proof) in &CONSISTENCY {
        assert_eq!(
            consistency_proof(m, n, &tree).unwrap(),
            hashes(proof),
            "consistency {m} {n}"
        );
    }
    // inclusionProofs[0] is (0, 0): an index that cannot exist.
    assert_eq!(
        inclusion_proof(0, 0, &tree).unwrap_err().code(),
        "merkle.index_out_of_range"
    );
}

/// One corrupted inclusion probe: (index, size, root, leaf, proof, desc).
type InclusionProbe = (u64, u64, Hash, Hash, Vec<Hash>, String);

/// The probes of `corruptInclusionProof` in proof/verify_test.go.
fn corrupt_inclusion(
    index: u64,
    size: u64,
    proof: &[Hash],
    root: Hash,
    leaf: Hash,
) -> Vec<InclusionProbe> {
    let some = h(SOME_HASH);
    let garbage = padded(&[]);
    let with = |p: Vec<Hash>, d: &str| (index, size, root, leaf, p, d.to_owned());
    let ext = |x: Hash| {
        let mut p = proof.to_vec();
        p.push(x);
        p
    };
    let pre = |x: Hash| {
        let mut p = vec![x];
        p.extend_from_slice(proof);
        p
    };
    let mut out = vec![
        (
            index.wrapping_sub(1),
            size,
            root,
            leaf,
            proof.to_vec(),
            "leafIndex - 1".into(),
        ),
        (
            index + 1,
            size,
            root,
            leaf,
            proof.to_vec(),
            "leafIndex + 1".into(),
        ),
        (
            index ^ 2,
            size,
            root,
            leaf,
            proof.to_vec(),
            "leafIndex ^ 2".into(),
        ),
        (
            index,
            size * 2,
            root,
            leaf,
            proof.to_vec(),
            "treeSize * 2".into(),
        ),
        (
            index,
            size / 2,
            root,
            leaf,
            proof.to_vec(),
            "treeSize / 2".into(),
        ),
        (
            index,
            size,
            root,
            padded(b"WrongLeaf"),
            proof.to_vec(),
            "wrong leaf".into(),
        ),
        (
            index,
            size,
            empty_root(),
            leaf,
            proof.to_vec(),
            "empty root".into(),
        ),
        (
            index,
            size,
            some,
            leaf,
            proof.to_vec(),
            "random root".into(),
        ),
        with(ext(garbage), "trailing garbage"),
        with(ext(root), "trailing root"),
        with(pre(garbage), "preceding garbage"),
        with(pre(root), "preceding root"),
    ];
    for i in 0..proof.len() {
        let mut p = proof.to_vec();
        p[i].0[0] ^= 8;
        out.push(with(p, &format!("modified proof[{i}] bit 3")));
    }
    if !proof.is_empty() {
        out.push(with(proof[..proof.len() - 1].to_vec(), "removed component"));
    }
    if proof.len() > 1 {
        let mut p = vec![some, proof[0]];
        p.extend_from_slice(&proof[1..]);
        out.push(with(p, "inserted component"));
    }
    out
}

/// One corrupted consistency probe: (size1, size2, root1, root2, proof, desc).
type ConsistencyProbe = (u64, u64, Hash, Hash, Vec<Hash>, String);

/// The probes of `corruptConsistencyProof` in proof/verify_test.go.
fn corrupt_consistency(
    m: u64,
    n: u64,
    r1: Hash,
    r2: Hash,
    proof: &[Hash],
) -> Vec<ConsistencyProbe> {
    let wrong = padded(b"WrongRoot");
    let garbage = padded(&[]);
    let with = |p: Vec<Hash>, d: &str| (m, n, r1, r2, p, d.to_owned());
    let ext = |x: Hash| {
        let mut p = proof.to_vec();
        p.push(x);
        p
    };
    let pre = |x: Hash| {
        let mut p = vec![x];
        p.extend_from_slice(proof);
        p
    };
    let mut out = vec![
        (
            m.wrapping_sub(1),
            n,
            r1,
            r2,
            proof.to_vec(),
            "size1 - 1".into(),
        ),
        (m + 1, n, r1, r2, proof.to_vec(), "size1 + 1".into()),
        (m ^ 2, n, r1, r2, proof.to_vec(), "size1 ^ 2".into()),
        (m, n * 2, r1, r2, proof.to_vec(), "size2 * 2".into()),
        (m, n / 2, r1, r2, proof.to_vec(), "size2 / 2".into()),
        (m, n, wrong, r2, proof.to_vec(), "wrong root1".into()),
        (m, n, r1, wrong, proof.to_vec(), "wrong root2".into()),
        (m, n, r2, r1, proof.to_vec(), "swapped roots".into()),
        with(Vec::new(), "empty proof"),
        with(ext(garbage), "trailing garbage"),
        with(ext(r1), "trailing root1"),
        with(ext(r2), "trailing root2"),
        with(pre(garbage), "preceding garbage"),
        with(pre(r1), "preceding root1"),
        with(pre(r2), "preceding root2"),
        with(pre(proof[0]), "preceding proof[0]"),
    ];
    if !proof.is_empty() {
        out.push(with(proof[..proof.len() - 1].to_vec(), "truncated proof"));
    }
    for i in 0..proof.len() {
        let mut p = proof.to_vec();
        p[i].0[0] ^= 16;
        out.push(with(p, &format!("modified proof[{i}] bit 4")));
    }
    out
}

#[test]
fn inclusion_vectors_verify_and_corruptions_fail() {
    let tree = reference_tree();
    // verify_test.go skips inclusionProofs[0], an invalid (0-based -1) leaf.
    for &(leaf, size, proof) in &INCLUSION[1..] {
        let index = leaf - 1;
        let proof = hashes(proof);
        let root = h(ROOTS[size as usize]);
        let leaf_h = tree.node(0, index).unwrap();
        verify_inclusion(&leaf_h, index, size, &proof, &root)
            .unwrap_or_else(|e| panic!("vector {leaf}/{size}: {e}"));
        for (i, n, r, l, p, desc) in corrupt_inclusion(index, size, &proof, root, leaf_h) {
            assert!(
                verify_inclusion(&l, i, n, &p, &r).is_err(),
                "vector {leaf}/{size}: probe {desc:?} verified"
            );
        }
    }
}

#[test]
fn consistency_vectors_verify_and_corruptions_fail() {
    for &(m, n, proof) in &CONSISTENCY {
        let proof = hashes(proof);
        let (r1, r2) = (h(ROOTS[m as usize]), h(ROOTS[n as usize]));
        verify_consistency(m, n, &proof, &r1, &r2)
            .unwrap_or_else(|e| panic!("vector {m}/{n}: {e}"));
        // Like verify_test.go, only non-trivial proofs are corrupted.
        if proof.is_empty() {
            continue;
        }
        for (a, b, x, y, p, desc) in corrupt_consistency(m, n, r1, r2, &proof) {
            assert!(
                verify_consistency(a, b, &p, &x, &y).is_err(),
                "vector {m}/{n}: probe {desc:?} verified"
            );
        }
    }
}

// verify_test.go: TestVerifyInclusionSingleEntry.
#[test]
fn inclusion_single_entry() {
    let hash = leaf_hash(b"data");
    let empty = padded(&[]);
    assert_eq!(verify_inclusion(&hash, 0, 1, &[], &hash), Ok(()));
    assert!(verify_inclusion(&empty, 0, 1, &[], &hash).is_err());
    assert!(verify_inclusion(&hash, 0, 1, &[], &empty).is_err());
    let e = verify_inclusion(&leaf_hash(b"other"), 0, 1, &[], &hash).unwrap_err();
    assert_eq!(e.code(), "merkle.root_mismatch");
}

// verify_test.go: TestVerifyInclusion, the index/size probes.
#[test]
fn inclusion_bad_index_or_size() {
    let some = h(SOME_HASH);
    let empty = padded(&[]);
    for (index, size) in [(0, 0), (0, 1), (1, 0), (2, 1)] {
        assert!(verify_inclusion(&some, index, size, &[], &empty).is_err());
        assert!(verify_inclusion(&empty, index, size, &[], &empty_root()).is_err());
        assert!(verify_inclusion(&some, index, size, &[], &empty_root()).is_err());
    }
    assert_eq!(
        verify_inclusion(&some, 1, 1, &[], &some)
            .unwrap_err()
            .code(),
        "merkle.index_out_of_range"
    );
}

// verify_test.go: TestVerifyConsistency, the edge-case table.
#[test]
fn consistency_edge_cases() {
    let r1 = padded(b"don't care 1");
    let r2 = padded(b"don't care 2");
    let e = empty_root();
    let none: &[Hash] = &[];
    let one: &[Hash] = &[e];
    // (size1, size2, root1, root2, proof, want ok)
    type Case<'a> = (u64, u64, Hash, Hash, &'a [Hash], bool);
    let cases: [Case; 13] = [
        (0, 0, r1, r2, none, false),
        (1, 1, r1, r2, none, false),
        // Sizes that are always consistent.
        (0, 0, r1, r1, none, true),
        (0, 1, r1, r2, none, true),
        (1, 1, r2, r2, none, true),
        // Time travel to the past.
        (1, 0, r1, r2, none, false),
        (2, 1, r1, r2, none, false),
        // Empty proof.
        (1, 2, r1, r2, none, false),
        // Roots don't match.
        (0, 0, e, r2, none, false),
        (1, 1, e, r2, none, false),
        // Roots match but the proof is not empty.
        (0, 0, e, e, one, false),
        (0, 1, e, e, one, false),
        (1, 1, e, e, one, false),
    ];
    for (i, (m, n, a, b, p, ok)) in cases.into_iter().enumerate() {
        assert_eq!(
            verify_consistency(m, n, p, &a, &b).is_ok(),
            ok,
            "case {i}: {m}->{n}"
        );
    }
    assert_eq!(
        verify_consistency(2, 1, none, &r1, &r2).unwrap_err().code(),
        "merkle.size_order"
    );
    assert_eq!(
        verify_consistency(1, 2, none, &r1, &r2).unwrap_err().code(),
        "merkle.bad_proof"
    );
}

/// proof/proof_test.go (TestInclusion / TestConsistency) describes, for the
/// 7-leaf tree of its diagram, which nodes each proof is made of. The same
/// shapes, expressed with our node hashes: `l` for size 7 is hash(i, j).
#[test]
fn proof_shapes_for_size_seven() {
    let tree = reference_tree();
    let n = |l: u8, i: u64| tree.node(l, i).unwrap();
    let l7 = evident_core::hash::node_hash(&n(1, 2), &n(0, 6));
    // size 7, index 0: b h l
    assert_eq!(
        inclusion_proof(0, 7, &tree).unwrap(),
        vec![n(0, 1), n(1, 1), l7]
    );
    // size 7, index 4: f j k
    assert_eq!(
        inclusion_proof(4, 7, &tree).unwrap(),
        vec![n(0, 5), n(0, 6), n(2, 0)]
    );
    // size 7, index 6: i k
    assert_eq!(
        inclusion_proof(6, 7, &tree).unwrap(),
        vec![n(1, 2), n(2, 0)]
    );
    // 5 -> 7: e f j k
    assert_eq!(
        consistency_proof(5, 7, &tree).unwrap(),
        vec![n(0, 4), n(0, 5), n(0, 6), n(2, 0)]
    );
    // 6 -> 7: i j k
    assert_eq!(
        consistency_proof(6, 7, &tree).unwrap(),
        vec![n(1, 2), n(0, 6), n(2, 0)]
    );
    // 7 -> 8: j leaf#7 i k
    assert_eq!(
        consistency_proof(7, 8, &tree).unwrap(),
        vec![n(0, 6), n(0, 7), n(1, 2), n(2, 0)]
    );
    // 4 -> 7: l (= hash(i, j))
    assert_eq!(consistency_proof(4, 7, &tree).unwrap(), vec![l7]);
    // Same size and empty old tree: empty proofs.
    for s in 0..=8 {
        assert!(consistency_proof(s, s, &tree).unwrap().is_empty());
        assert!(consistency_proof(0, s, &tree).unwrap().is_empty());
    }
    assert_eq!(
        consistency_proof(9, 8, &tree).unwrap_err().code(),
        "merkle.size_order"
    );
}
