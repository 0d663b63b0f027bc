//! Property tests for the Merkle tree: proofs verify and any single-bit
//! change breaks them, `ct-merkle` 0.3 (an independent implementation) agrees
//! with us, and `CompactTree` agrees with `root_at` over `MemoryNodes`.
#![allow(clippy::cast_possible_truncation, clippy::unwrap_used)]

use std::sync::OnceLock;

use ct_merkle::{ConsistencyProof, InclusionProof, RootHash, mem_backed_tree::MemoryBackedTree};
use evident_core::hash::{Hash, leaf_hash};
use evident_core::merkle::{
    CompactTree, MemoryNodes, NodeSource, consistency_proof, inclusion_proof, root_at,
    verify_consistency, verify_inclusion,
};
use proptest::prelude::*;
use sha2::Sha256;

const MAX: u64 = 5000;

fn leaf_data(i: u64) -> Vec<u8> {
    format!("evident test leaf {i}").into_bytes()
}

/// One shared tree of MAX leaves; every prefix of it is a valid tree.
fn big_tree() -> &'static MemoryNodes {
    static TREE: OnceLock<MemoryNodes> = OnceLock::new();
    TREE.get_or_init(|| MemoryNodes::from_leaves((0..MAX).map(|i| leaf_hash(&leaf_data(i)))))
}

fn flip(h: &Hash, bit: usize) -> Hash {
    let mut out = *h;
    out.0[bit / 8] ^= 1 << (bit % 8);
    out
}

/// Largest power of two strictly below `n` (n >= 2), RFC 9162 §2.1.1's `k`.
fn split(n: u64) -> u64 {
    if n.is_power_of_two() {
        n / 2
    } else {
        n.next_power_of_two() / 2
    }
}

/// Which side each inclusion-proof hash sits on (true = right of the running
/// hash), leaf upward, straight from the `PATH` recursion of RFC 9162
/// §2.1.3.1 — independent of the verifier's bit arithmetic.
fn inclusion_shape(index: u64, size: u64) -> Vec<bool> {
    let (mut lo, mut hi) = (0, size);
    let mut out = Vec::new();
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index - lo < k {
            out.push(true);
            hi = lo + k;
        } else {
            out.push(false);
            lo += k;
        }
    }
    out.reverse();
    out
}

/// Shape of a consistency proof from the `SUBPROOF` recursion of RFC 9162
/// §2.1.4.1: whether the old root is the implicit seed, and the side of each
/// further hash (true = right, i.e. only in the new tree).
fn consistency_shape(old: u64, new: u64) -> (bool, Vec<bool>) {
    let (mut lo, mut hi, mut m, mut whole) = (0u64, new, old, true);
    let mut out = Vec::new();
    while m != hi - lo {
        let n = hi - lo;
        let k = split(n);
        if m <= k {
            out.push(true);
            hi = lo + k;
        } else {
            out.push(false);
            lo += k;
            m -= k;
            whole = false;
        }
    }
    out.reverse();
    (whole, out)
}

fn sizes() -> impl Strategy<Value = (u64, u64)> {
    (1..=MAX).prop_flat_map(|n| (0..=n, Just(n)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn inclusion_proofs_verify_and_bit_flips_fail(
        (_, n) in sizes(),
        picks in proptest::collection::vec(any::<u64>(), 4),
        bit in 0usize..256,
        which in any::<usize>(),
        num_bit in 0u32..64,
    ) {
        let tree = big_tree();
        let root = root_at(n, tree).unwrap();
        let mut indices: Vec<u64> = picks.iter().map(|p| p % n).collect();
        indices.extend([0, n - 1]);
        for i in indices {
            let leaf = tree.node(0, i).unwrap();
            let proof = inclusion_proof(i, n, tree).unwrap();
            prop_assert_eq!(verify_inclusion(&leaf, i, n, &proof, &root), Ok(()));
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let j = which % bad.len();
                bad[j] = flip(&bad[j], bit);
                prop_assert!(verify_inclusion(&leaf, i, n, &bad, &root).is_err());
            }
            prop_assert!(verify_inclusion(&flip(&leaf, bit), i, n, &proof, &root).is_err());
            prop_assert!(verify_inclusion(&leaf, i, n, &proof, &flip(&root, bit)).is_err());
            // A different index is a different path from the root: never accepted.
            prop_assert!(verify_inclusion(&leaf, i ^ (1 << num_bit), n, &proof, &root).is_err());
            // Inclusion proofs do not bind the tree size beyond their shape
            // (RFC 9162: the size comes from the signed checkpoint), so a
            // changed size may only verify if it gives the identical hashing.
            let n2 = n ^ (1 << num_bit);
            if verify_inclusion(&leaf, i, n2, &proof, &root).is_ok() {
                prop_assert_eq!(inclusion_shape(i, n2), inclusion_shape(i, n));
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_and_bit_flips_fail(
        (m, n) in sizes(),
        bit in 0usize..256,
        which in any::<usize>(),
        num_bit in 0u32..64,
        flip_old in any::<bool>(),
    ) {
        let tree = big_tree();
        let (r1, r2) = (root_at(m, tree).unwrap(), root_at(n, tree).unwrap());
        let proof = consistency_proof(m, n, tree).unwrap();
        prop_assert_eq!(verify_consistency(m, n, &proof, &r1, &r2), Ok(()));
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let j = which % bad.len();
            bad[j] = flip(&bad[j], bit);
            prop_assert!(verify_consistency(m, n, &bad, &r1, &r2).is_err());
        }
        // The old root is unchecked only for the empty old tree (anything
        // extends it); the new root is unchecked never, except when m == 0.
        if m > 0 {
            prop_assert!(verify_consistency(m, n, &proof, &flip(&r1, bit), &r2).is_err());
            prop_assert!(verify_consistency(m, n, &proof, &r1, &flip(&r2, bit)).is_err());
        }
        // A changed size may only verify with the identical hashing shape.
        let (m2, n2) = if flip_old { (m ^ (1 << num_bit), n) } else { (m, n ^ (1 << num_bit)) };
        // (An empty old tree is consistent with anything, given no proof.)
        if verify_consistency(m2, n2, &proof, &r1, &r2).is_ok() && !(m2 == 0 && proof.is_empty()) {
            prop_assert!(m2 > 0 && m2 < n2 && m > 0 && m < n, "{} {}", m2, n2);
            prop_assert_eq!(consistency_shape(m2, n2), consistency_shape(m, n));
        }
    }

    #[test]
    fn ct_merkle_agrees(
        n in 1u64..=600,
        picks in proptest::collection::vec(any::<u64>(), 4),
    ) {
        let mut theirs: MemoryBackedTree<Sha256, Vec<u8>> = MemoryBackedTree::new();
        for i in 0..n {
            theirs.push(leaf_data(i));
        }
        let ours = big_tree();
        let root = root_at(n, ours).unwrap();
        let their_root = theirs.root();
        prop_assert_eq!(their_root.as_bytes().as_slice(), root.0.as_slice());

        for p in &picks {
            let i = p % n;
            let proof = inclusion_proof(i, n, ours).unwrap();
            let their_proof = theirs.prove_inclusion(i as usize);
            let ours_bytes: Vec<u8> = proof.iter().flat_map(|h| h.0).collect();
            prop_assert_eq!(their_proof.as_bytes(), ours_bytes.as_slice());
            // And each verifier accepts the other's proof.
            let cross = InclusionProof::<Sha256>::from_bytes(ours_bytes);
            prop_assert!(their_root.verify_inclusion(&leaf_data(i), i, &cross).is_ok());
            let theirs_as_ours: Vec<Hash> = their_proof
                .as_bytes()
                .chunks(32)
                .map(|c| Hash::from_slice(c).unwrap())
                .collect();
            let leaf = leaf_hash(&leaf_data(i));
            prop_assert_eq!(verify_inclusion(&leaf, i, n, &theirs_as_ours, &root), Ok(()));

            // Consistency from a non-empty older prefix (ct-merkle refuses m = 0).
            let m = 1 + p % n;
            if m < n {
                let proof = consistency_proof(m, n, ours).unwrap();
                let their_proof = theirs.prove_consistency((n - m) as usize);
                let ours_bytes: Vec<u8> = proof.iter().flat_map(|h| h.0).collect();
                prop_assert_eq!(their_proof.as_bytes(), ours_bytes.as_slice());
                let old_root = root_at(m, ours).unwrap();
                let their_old = RootHash::<Sha256>::new(old_root.0.into(), m);
                let cross = ConsistencyProof::<Sha256>::try_from_bytes(ours_bytes).unwrap();
                prop_assert!(their_root.verify_consistency(&their_old, &cross).is_ok());
                let theirs_as_ours: Vec<Hash> = their_proof
                    .as_bytes()
                    .chunks(32)
                    .map(|c| Hash::from_slice(c).unwrap())
                    .collect();
                prop_assert_eq!(
                    verify_consistency(m, n, &theirs_as_ours, &old_root, &root),
                    Ok(())
                );
            }
        }
    }
}

#[test]
fn shapes_are_sane() {
    // Sanity of the test helpers against the RFC 9162 figures: in the 7-leaf
    // tree, leaf 0's path is b (right), h (right), l (right); leaf 6's is
    // i (left), k (left).
    assert_eq!(inclusion_shape(0, 7), vec![true, true, true]);
    assert_eq!(inclusion_shape(6, 7), vec![false, false]);
    assert_eq!(inclusion_shape(4, 7), vec![true, true, false]);
    // 4 -> 7: old tree is perfect (implicit seed), then l on the right.
    assert_eq!(consistency_shape(4, 7), (true, vec![true]));
    // 3 -> 7: c (seed), then d (right), g (left), l (right).
    assert_eq!(consistency_shape(3, 7), (false, vec![true, false, true]));
    for n in 1..200 {
        for i in 0..n {
            assert_eq!(
                inclusion_shape(i, n).len(),
                inclusion_proof(i, n, big_tree()).unwrap().len()
            );
        }
    }
}

#[test]
fn compact_tree_matches_root_at_every_size() {
    let tree = big_tree();
    let mut mem = MemoryNodes::new();
    let mut compact = CompactTree::new();
    assert_eq!(compact.root(), root_at(0, tree).unwrap());
    for size in 1..=1100u64 {
        let leaf = tree.node(0, size - 1).unwrap();
        let before: Vec<u64> = (0..12).map(|l| level_len(&mem, l)).collect();
        mem.push(leaf);
        // Nodes MemoryNodes gained with this leaf, level 0 upward.
        let want: Vec<(u8, u64, Hash)> = (0..12u8)
            .filter(|&l| level_len(&mem, l) > before[usize::from(l)])
            .map(|l| {
                (
                    l,
                    before[usize::from(l)],
                    mem.node(l, before[usize::from(l)]).unwrap(),
                )
            })
            .collect();
        let mut got = Vec::new();
        compact.append_with(leaf, |l, i, h| got.push((l, i, *h)));
        assert_eq!(got, want, "append_with at size {size}");
        assert_eq!(compact.size(), size);
        assert_eq!(compact.frontier().len(), size.count_ones() as usize);
        assert_eq!(compact.root(), root_at(size, tree).unwrap(), "size {size}");
    }
}

fn level_len(mem: &MemoryNodes, level: u8) -> u64 {
    let mut n = 0;
    while mem.node(level, n).is_ok() {
        n += 1;
    }
    n
}

#[test]
fn compact_tree_restarts() {
    let tree = big_tree();
    for start in [0u64, 1, 2, 3, 7, 8, 255, 256, 257, 600, 1023, 1024, 1025] {
        let mut a = CompactTree::from_source(start, tree).unwrap();
        let mut reference = CompactTree::new();
        for i in 0..start {
            reference.append(tree.node(0, i).unwrap());
        }
        assert_eq!(a, reference, "from_source({start})");
        let mut b = CompactTree::from_parts(start, a.frontier().to_vec()).unwrap();
        assert_eq!(b, a);
        for size in start + 1..=start + 70 {
            let leaf = tree.node(0, size - 1).unwrap();
            a.append(leaf);
            b.append(leaf);
            assert_eq!(
                a.root(),
                root_at(size, tree).unwrap(),
                "restart {start}, size {size}"
            );
            assert_eq!(b, a);
        }
    }
    // A frontier that does not fit the size is refused.
    assert!(CompactTree::from_parts(5, vec![Hash::default()]).is_err());
    assert!(CompactTree::from_parts(0, vec![Hash::default()]).is_err());
    // A source missing the nodes is reported, not papered over.
    assert!(CompactTree::from_source(MAX + 1, tree).is_err());
}
