//! Verifies a log of N entries (default 10,000,000) streamed from a
//! generator, never holding it, and prints throughput and peak memory.
//! Shows that verification state does not grow with the log.
//!
//! `cargo run --release -p evident-core --example verify_stream -- 10000000`
//!
//! The log is generated twice from the same seed: once to sign a checkpoint
//! every million entries, once to feed the verifier.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::time::Instant;

use ed25519_dalek::SigningKey;
use evident_core::checkpoint::{Checkpoint, sign_checkpoint};
use evident_core::entry::{Limits, SALT_SIZE, format_ts, genesis_prev, parse_entry};
use evident_core::hash::{Hash, leaf_hash};
use evident_core::merkle::CompactTree;
use evident_core::note::{NoteSigner, Verifiers};
use evident_core::verify::{BodyRow, EntryRow, LogVerifier};

const ORIGIN: &str = "evident.local/bench/stream";

/// Calls `f` with each entry's (index, envelope bytes, salt, body bytes).
fn generate(n: u64, mut f: impl FnMut(u64, &[u8], &[u8; SALT_SIZE], &[u8])) {
    let draft = parse_entry(
        br#"{"kind":"access.granted","actor":"svc","action":"read","resource":"doc/1","outcome":"ok","data":{"bytes":1024}}"#,
        &Limits::default(),
    )
    .unwrap();
    let mut prev = genesis_prev(ORIGIN);
    for i in 0..n {
        let mut salt = [0u8; SALT_SIZE];
        salt[..8].copy_from_slice(&i.to_le_bytes());
        let ts = format_ts(1_795_000_000_000_000 + i as i64);
        let sealed = draft.seal(ORIGIN, i, &ts, prev, &salt).unwrap();
        f(i, &sealed.envelope_bytes, &salt, &draft.body_bytes);
        prev = sealed.leaf_hash;
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(10_000_000, |s| s.parse().unwrap());
    let signer = NoteSigner::new("evident.local", SigningKey::from_bytes(&[7; 32])).unwrap();
    let mut tree = CompactTree::new();
    let mut checkpoints: Vec<Vec<u8>> = Vec::new();
    let t = Instant::now();
    generate(n, |i, env, _, _| {
        tree.append(leaf_hash(env));
        if (i + 1) % 1_000_000 == 0 || i + 1 == n {
            let cp = Checkpoint {
                origin: ORIGIN.into(),
                size: tree.size(),
                root: tree.root(),
                extensions: vec![],
            };
            checkpoints.push(sign_checkpoint(&cp, &[&signer]).unwrap().into_bytes());
        }
    });
    eprintln!("generated and signed {n} entries in {:.1?}", t.elapsed());
    let after_generation = peak_rss_kib();

    let mut v = LogVerifier::new(ORIGIN, Verifiers::new([signer.verifier_key()]));
    v.add_checkpoints(checkpoints.iter().map(Vec::as_slice));
    let t = Instant::now();
    let mut stored = Hash::default();
    generate(n, |i, env, salt, body| {
        stored = leaf_hash(env);
        v.push(EntryRow {
            index: i,
            envelope: env,
            stored_leaf_hash: Some(stored),
            body: BodyRow::Present { salt, body },
        });
    });
    let report = v.finish();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "entries={n} valid={} checkpoints_verified={} generate+verify={secs:.1}s peak_rss_kib={} (after generation {after_generation})",
        report.valid,
        report.checkpoints_verified,
        peak_rss_kib()
    );
    assert!(report.valid);
}
