//! Benchmarks of the verifier core, each beside a raw SHA-256 baseline over
//! the same bytes measured in the same run, so the ratio in BENCHMARKS.md
//! says how far each operation is from the hashing it cannot avoid.
//!
//! Run: `cargo bench -p evident-core --bench core`, then
//! `python3 scripts/bench-report.py` for the table.
#![allow(clippy::cast_possible_truncation, clippy::unwrap_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use common::{ORIGIN, SampleLog};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use evident_core::entry::{Body, Envelope, Limits, parse_entry, parse_entry_reference};
use evident_core::hash::{Hash, leaf_hash, node_hash, sha256};
use evident_core::merkle::{CompactTree, inclusion_proof, root_at, verify_inclusion};
use evident_core::receipt::{RECEIPT_FORMAT, Receipt, encode_salt};
use evident_core::verify::LogVerifier;
use sha2::{Digest, Sha256};

/// Entries per log-level measurement: enough that per-entry cost dominates.
const LOG_SIZE: u64 = 100_000;

fn sample() -> SampleLog {
    SampleLog::batches(LOG_SIZE / 1000, 1000)
}

/// SHA-256 over exactly the bytes a verifier must hash per entry: the
/// leaf (0x00 ‖ envelope), the body digest (salt ‖ body) and one interior
/// node (0x01 ‖ two hashes), amortised one per leaf.
fn raw_sha256_per_entry(envelope: &[u8], salt: &[u8], body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(envelope);
    let a: [u8; 32] = h.finalize().into();
    let mut h = Sha256::new();
    h.update(salt);
    h.update(body);
    let b: [u8; 32] = h.finalize().into();
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(a);
    h.update(b);
    h.finalize().into()
}

fn bench_append(c: &mut Criterion) {
    let log = sample();
    let envelopes: Vec<Envelope> = log
        .rows
        .iter()
        .map(|r| Envelope::parse(&r.envelope).unwrap())
        .collect();
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(envelopes.len() as u64));
    g.bench_function("encode_hash_append", |b| {
        b.iter(|| {
            let mut tree = CompactTree::new();
            for e in &envelopes {
                tree.append(leaf_hash(&e.to_bytes()));
            }
            black_box(tree.root())
        })
    });
    g.bench_function("raw_sha256", |b| {
        b.iter(|| {
            let mut acc = [0u8; 32];
            for r in &log.rows {
                let l = leaf_hash(&r.envelope);
                acc = node_hash(&Hash(acc), &l).0;
            }
            black_box(acc)
        })
    });
    g.finish();
}

fn bench_root_and_proofs(c: &mut Criterion) {
    let log = sample();
    let size = log.tree.size();
    let mut g = c.benchmark_group("tree");
    g.bench_function("compact_root", |b| b.iter(|| black_box(log.tree.root())));
    g.bench_function("root_at_from_nodes", |b| {
        b.iter(|| black_box(root_at(size - 3, &log.nodes).unwrap()))
    });
    let index = size / 3;
    let proof = inclusion_proof(index, size, &log.nodes).unwrap();
    let root = log.tree.root();
    g.bench_function("inclusion_proof_generate", |b| {
        b.iter(|| black_box(inclusion_proof(black_box(index), size, &log.nodes).unwrap()))
    });
    g.bench_function("inclusion_proof_verify", |b| {
        b.iter(|| {
            verify_inclusion(&log.rows[index as usize].leaf, index, size, &proof, &root).unwrap()
        })
    });
    // The hashing an inclusion check cannot avoid: one node hash per proof step.
    g.bench_function("raw_sha256_proof_steps", |b| {
        b.iter(|| {
            let mut acc = log.rows[index as usize].leaf;
            for p in &proof {
                acc = node_hash(&acc, p);
            }
            black_box(acc)
        })
    });
    g.finish();
}

fn bench_receipt(c: &mut Criterion) {
    let log = sample();
    let size = log.tree.size();
    let index = size / 2;
    let row = &log.rows[index as usize];
    let receipt = Receipt {
        format: RECEIPT_FORMAT.into(),
        index,
        leaf_hash: row.leaf,
        envelope: Envelope::parse(&row.envelope).unwrap(),
        body: Some(evident_core::entry::Body::parse(&row.body).unwrap()),
        salt: Some(encode_salt(&row.salt)),
        checkpoint: String::from_utf8(log.checkpoints.last().unwrap().clone()).unwrap(),
        inclusion_proof: inclusion_proof(index, size, &log.nodes).unwrap(),
    };
    let json = receipt.to_json();
    let verifiers = log.verifiers();
    let mut g = c.benchmark_group("receipt");
    g.bench_function("parse_and_verify", |b| {
        b.iter(|| {
            black_box(
                Receipt::parse(json.as_bytes())
                    .unwrap()
                    .verify(&verifiers)
                    .unwrap(),
            )
        })
    });
    g.bench_function("raw_sha256_same_bytes", |b| {
        b.iter(|| black_box(sha256(json.as_bytes())))
    });
    g.finish();
}

fn bench_verify_log(c: &mut Criterion) {
    let log = sample();
    let mut g = c.benchmark_group("verify_log");
    g.throughput(Throughput::Elements(log.rows.len() as u64));
    g.sample_size(20);
    // Opening the checkpoints (one Ed25519 verification per batch of 1,000)
    // is part of the measured work, as it is in a real verification.
    g.bench_function("evident", |b| {
        b.iter(|| {
            let mut v = LogVerifier::new(ORIGIN, log.verifiers());
            v.add_checkpoints(log.checkpoints.iter().map(Vec::as_slice));
            for r in &log.rows {
                v.push(r.as_entry_row());
            }
            let report = v.finish();
            assert!(report.valid);
            report
        })
    });
    g.bench_function("raw_sha256", |b| {
        b.iter(|| {
            let mut acc = [0u8; 32];
            for r in &log.rows {
                acc = raw_sha256_per_entry(&r.envelope, &r.salt, &r.body);
            }
            black_box(acc)
        })
    });
    g.finish();
}

/// Client lines shaped like `scripts/bench-store`'s input
/// (`crates/store/examples/bench_input.rs`): eight short string fields and
/// a small `data` object, ~260 bytes, varying from line to line.
fn bench_lines(n: u64) -> Vec<String> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    (0..n)
        .map(|i| {
            let r = next();
            format!(
                concat!(
                    r#"{{"kind":"record.updated","actor":"user-{:06}","action":"update","#,
                    r#""resource":"invoice/{:07}","outcome":"success","#,
                    r#""occurred_at":"2026-11-22T00:00:{:02}.{:06}Z","#,
                    r#""request_id":"req-{:010}-{:08x}","#,
                    r#""data":{{"ip":"10.{}.{}.{}","session":"{:08x}","attempt":{}}}}}"#
                ),
                r % 200_000,
                r % 10_000_000,
                r % 60,
                r % 1_000_000,
                i,
                r >> 32,
                r % 256,
                (r >> 8) % 256,
                (r >> 16) % 256,
                next() >> 32,
                1 + r % 3,
            )
        })
        .collect()
}

/// Reading client entries: the one-pass reader against the reference
/// path it must agree with, and a plain serde_json parse of the same
/// lines (no duplicate or number checks, no canonical bytes) for scale.
/// Reading stored bodies back (`Body::parse`, as verification and export
/// do) is measured beside them.
fn bench_parse_entry(c: &mut Criterion) {
    let lines = bench_lines(1000);
    let limits = Limits::default();
    let bodies: Vec<Vec<u8>> = lines
        .iter()
        .map(|l| parse_entry(l.as_bytes(), &limits).unwrap().body_bytes)
        .collect();
    let mut g = c.benchmark_group("parse_entry");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("one_pass", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(parse_entry(l.as_bytes(), &limits).unwrap());
            }
        })
    });
    g.bench_function("reference", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(parse_entry_reference(l.as_bytes(), &limits).unwrap());
            }
        })
    });
    g.bench_function("plain_serde_json_value", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(serde_json::from_slice::<serde_json::Value>(l.as_bytes()).unwrap());
            }
        })
    });
    g.bench_function("body_parse", |b| {
        b.iter(|| {
            for body in &bodies {
                black_box(Body::parse(body).unwrap());
            }
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_parse_entry,
    bench_append,
    bench_root_and_proofs,
    bench_receipt,
    bench_verify_log
);
criterion_main!(benches);
