//! A real log built through the public API, shared by the integration tests
//! and the benches: entries parsed from client JSON, sealed in a chain,
//! hashed into a Merkle tree, with a signed checkpoint after every batch.
//! Salts and timestamps are derived from the index so runs are repeatable.
#![allow(dead_code, clippy::unwrap_used, unreachable_pub)]

use ed25519_dalek::SigningKey;
use evident_core::checkpoint::{Checkpoint, sign_checkpoint};
use evident_core::entry::{Limits, SALT_SIZE, format_ts, genesis_prev, parse_entry};
use evident_core::hash::Hash;
use evident_core::merkle::{CompactTree, MemoryNodes};
use evident_core::note::{NoteSigner, VerifierKey, Verifiers};
use evident_core::verify::{BodyRow, EntryRow};

pub const ORIGIN: &str = "evident.local/acme/audit";

/// One stored entry.
#[derive(Debug, Clone)]
pub struct Row {
    pub index: u64,
    pub envelope: Vec<u8>,
    pub leaf: Hash,
    pub salt: [u8; SALT_SIZE],
    pub body: Vec<u8>,
    pub body_present: bool,
}

impl Row {
    pub fn as_entry_row(&self) -> EntryRow<'_> {
        EntryRow {
            index: self.index,
            envelope: &self.envelope,
            stored_leaf_hash: Some(self.leaf),
            body: if self.body_present {
                BodyRow::Present {
                    salt: &self.salt,
                    body: &self.body,
                }
            } else {
                BodyRow::Absent
            },
        }
    }
}

/// A log with its tree, checkpoints and key.
#[derive(Debug)]
pub struct SampleLog {
    pub rows: Vec<Row>,
    pub nodes: MemoryNodes,
    pub tree: CompactTree,
    pub checkpoints: Vec<Vec<u8>>,
    pub signer: NoteSigner,
    next_ts: i64,
}

pub fn signer(seed: u8, name: &str) -> NoteSigner {
    NoteSigner::new(name, SigningKey::from_bytes(&[seed; 32])).unwrap()
}

impl SampleLog {
    pub fn new() -> Self {
        SampleLog {
            rows: Vec::new(),
            nodes: MemoryNodes::new(),
            tree: CompactTree::new(),
            checkpoints: Vec::new(),
            signer: signer(7, "evident.local"),
            next_ts: 1_795_000_000_000_000,
        }
    }

    pub fn verifier_key(&self) -> VerifierKey {
        self.signer.verifier_key()
    }

    pub fn verifiers(&self) -> Verifiers {
        Verifiers::new([self.verifier_key()])
    }

    /// Appends one entry from client JSON (allowing reserved kinds, as the
    /// server does for its own entries) and returns its index.
    pub fn append_json(&mut self, json: &str) -> u64 {
        let limits = Limits {
            allow_reserved_kinds: true,
            ..Limits::default()
        };
        let draft = parse_entry(json.as_bytes(), &limits).unwrap();
        let index = self.rows.len() as u64;
        let prev = self
            .rows
            .last()
            .map_or_else(|| genesis_prev(ORIGIN), |r| r.leaf);
        let mut salt = [0u8; SALT_SIZE];
        salt[..8].copy_from_slice(&index.to_be_bytes());
        salt[8] = 0xA5;
        self.next_ts += 1_000;
        let ts = format_ts(self.next_ts);
        let sealed = draft.seal(ORIGIN, index, &ts, prev, &salt).unwrap();
        self.nodes.push(sealed.leaf_hash);
        self.tree.append(sealed.leaf_hash);
        self.rows.push(Row {
            index,
            envelope: sealed.envelope_bytes,
            leaf: sealed.leaf_hash,
            salt,
            body: draft.body_bytes,
            body_present: true,
        });
        index
    }

    /// Appends `n` ordinary entries.
    pub fn append_n(&mut self, n: u64) {
        for _ in 0..n {
            let i = self.rows.len();
            self.append_json(&format!(
                r#"{{"kind":"access.granted","actor":"user-{}","action":"read","resource":"doc/{i}","outcome":"ok","source":{{"id":"app-1","seq":{}}},"data":{{"n":{i}}}}}"#,
                i % 7,
                i + 1
            ));
        }
    }

    /// Signs a checkpoint of the current tree, as the end of a batch does.
    pub fn checkpoint(&mut self) -> Vec<u8> {
        let cp = Checkpoint {
            origin: ORIGIN.to_owned(),
            size: self.tree.size(),
            root: self.tree.root(),
            extensions: Vec::new(),
        };
        let note = sign_checkpoint(&cp, &[&self.signer]).unwrap().into_bytes();
        self.checkpoints.push(note.clone());
        note
    }

    /// `batches` batches of `per_batch` entries, each followed by a checkpoint.
    pub fn batches(batches: u64, per_batch: u64) -> Self {
        let mut log = SampleLog::new();
        for _ in 0..batches {
            log.append_n(per_batch);
            log.checkpoint();
        }
        log
    }
}
