//! The harness of the tamper tests: a real data directory filled by the
//! real binary, and the tools of an attacker who can write to its SQLite
//! file but does not hold the signing key.

use std::path::PathBuf;

use evident_core::entry::{Body, Envelope, body_digest};
use evident_core::hash::{Hash, leaf_hash};
use evident_core::merkle::CompactTree;
use rusqlite::{Connection, params};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The log every test tampers with.
pub(crate) const LOG: &str = "acme/audit";
/// Its origin under the default instance name.
pub(crate) const ORIGIN: &str = "evident.local/acme/audit";
/// Entries appended by [`Ledger::new`].
pub(crate) const ENTRIES: u64 = 100;
/// Entries per batch: one signed checkpoint at 20, 40, 60, 80 and 100.
pub(crate) const BATCH: u64 = 20;

pub(crate) use crate::run::{Run, evident};

/// The client line of entry `i`. Even entries come from producer `p` with
/// `seq = i/2 + 1`; entries 5, 15, 25, … name the entry three before them
/// as their `parent`.
pub(crate) fn input_line(i: u64) -> String {
    let kinds = ["access.granted", "access.denied", "crypto.encrypt"];
    let mut e = json!({
        "kind": kinds[(i % 3) as usize],
        "actor": format!("user-{}", i % 7),
        "request_id": format!("req-{i:03}"),
        "resource": format!("doc/{}", i % 11),
        "outcome": "success",
        "data": {"n": i},
    });
    if i.is_multiple_of(2) {
        e["source"] = json!({"id": "p", "seq": i / 2 + 1});
    }
    if i % 10 == 5 {
        e["parent"] = json!(i - 3);
    }
    e.to_string()
}

/// An initialised data directory holding [`ENTRIES`] entries of [`LOG`],
/// appended in batches of [`BATCH`].
#[derive(Debug)]
pub(crate) struct Ledger {
    dir: TempDir,
    data: PathBuf,
    /// The verifier key `init` printed: what an auditor keeps apart from
    /// the database.
    pub(crate) vkey: String,
}

impl Ledger {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let init = evident(&[
            "init",
            "--data-dir",
            data.to_str().unwrap(),
            "--format",
            "json",
        ]);
        assert_eq!(init.code, 0, "{init:?}");
        let vkey = init.json()["vkey"].as_str().unwrap().to_owned();
        let ledger = Ledger { dir, data, vkey };
        let lines: Vec<String> = (0..ENTRIES).map(input_line).collect();
        let out = ledger.append(&lines.join("\n"), Some(BATCH));
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.json()["size"], ENTRIES);
        ledger
    }

    /// The data directory, as a command-line argument.
    pub(crate) fn data_dir(&self) -> &str {
        self.data.to_str().unwrap()
    }

    /// The database file.
    pub(crate) fn db_path(&self) -> PathBuf {
        self.data.join("evident.db")
    }

    /// A direct connection to the database, as an attacker would open it.
    pub(crate) fn db(&self) -> Connection {
        Connection::open(self.db_path()).unwrap()
    }

    /// `evident append --format json` of NDJSON `input`.
    pub(crate) fn append(&self, input: &str, batch_size: Option<u64>) -> Run {
        let file = self.dir.path().join("input.ndjson");
        std::fs::write(&file, format!("{input}\n")).unwrap();
        let batch = batch_size.map(|b| b.to_string());
        let mut args = vec![
            "append",
            "--data-dir",
            self.data_dir(),
            "--log",
            LOG,
            file.to_str().unwrap(),
            "--format",
            "json",
        ];
        if let Some(b) = &batch {
            args.extend(["--batch-size", b]);
        }
        evident(&args)
    }

    /// `evident verify --format json`: exit status and report.
    pub(crate) fn verify(&self) -> (i32, Value) {
        self.verify_with(&[])
    }

    /// `evident verify --format json` with `extra` arguments.
    pub(crate) fn verify_with(&self, extra: &[&str]) -> (i32, Value) {
        let mut args = vec![
            "verify",
            "--data-dir",
            self.data_dir(),
            "--log",
            LOG,
            "--format",
            "json",
        ];
        args.extend(extra);
        let run = evident(&args);
        assert!(
            run.code == 0 || run.code == 1,
            "verify could not run (exit {}): {}{}",
            run.code,
            run.stdout,
            run.stderr
        );
        (run.code, run.json())
    }

    /// `evident verify` in text mode.
    pub(crate) fn verify_text(&self) -> Run {
        evident(&["verify", "--data-dir", self.data_dir(), "--log", LOG])
    }
}

/// The report's `first_break` as `(index, reason)`.
pub(crate) fn first_break(report: &Value) -> (u64, String) {
    let b = &report["first_break"];
    assert!(b.is_object(), "no first_break in {report:#}");
    (
        b["index"].as_u64().unwrap(),
        b["reason"].as_str().unwrap().to_owned(),
    )
}

/// One list of the report as `(index, reason)` pairs, in report order.
pub(crate) fn listed(report: &Value, list: &str) -> Vec<(u64, String)> {
    report[list]
        .as_array()
        .unwrap_or_else(|| panic!("no list {list:?} in {report:#}"))
        .iter()
        .map(|v| {
            (
                v["index"].as_u64().unwrap(),
                v["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Builds an expected `(index, reason)` list.
pub(crate) fn pairs(items: &[(u64, &str)]) -> Vec<(u64, String)> {
    items.iter().map(|&(i, r)| (i, r.to_owned())).collect()
}

/// The report lists, by name.
pub(crate) const LISTS: [&str; 5] = [
    "chain_breaks",
    "signature_failures",
    "retrocausation_violations",
    "gaps",
    "checkpoint_mismatches",
];

/// Asserts the verdict of a tampered log: exit status 1, `valid: false`,
/// `first_break` at `index` for `reason`, and that break listed first in
/// `list` and in `violations`.
pub(crate) fn assert_broken(code: i32, report: &Value, index: u64, reason: &str, list: &str) {
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["valid"], false, "{report:#}");
    assert_eq!(
        first_break(report),
        (index, reason.to_owned()),
        "{report:#}"
    );
    assert_eq!(
        listed(report, list).first(),
        Some(&(index, reason.to_owned())),
        "{list} in {report:#}"
    );
    assert_eq!(
        listed(report, "violations").first(),
        Some(&(index, reason.to_owned())),
        "{report:#}"
    );
}

/// Removes the append-only triggers named.
pub(crate) fn drop_triggers(db: &Connection, names: &[&str]) {
    for name in names {
        db.execute_batch(&format!("DROP TRIGGER {name}")).unwrap();
    }
}

/// The append-only triggers of the entries table.
pub(crate) const ENTRY_TRIGGERS: [&str; 2] = ["entries_no_update", "entries_no_delete"];
/// The append-only triggers of the checkpoints table.
pub(crate) const CHECKPOINT_TRIGGERS: [&str; 2] =
    ["checkpoints_no_update", "checkpoints_no_delete"];

/// Entry `idx`'s stored envelope bytes.
pub(crate) fn envelope_bytes(db: &Connection, idx: u64) -> Vec<u8> {
    db.query_row(
        "SELECT envelope FROM entries WHERE idx = ?1",
        params![idx as i64],
        |r| r.get(0),
    )
    .unwrap()
}

/// Entry `idx`'s envelope, parsed strictly (it must be canonical).
pub(crate) fn envelope(db: &Connection, idx: u64) -> Envelope {
    Envelope::parse(&envelope_bytes(db, idx)).unwrap()
}

/// Entry `idx`'s salt and body bytes.
pub(crate) fn salt_and_body(db: &Connection, idx: u64) -> ([u8; 16], Vec<u8>) {
    let (salt, body): (Vec<u8>, Vec<u8>) = db
        .query_row(
            "SELECT salt, body FROM entries WHERE idx = ?1",
            params![idx as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    (salt.try_into().unwrap(), body)
}

/// Every stored leaf hash, in index order.
pub(crate) fn stored_leaves(db: &Connection) -> Vec<Hash> {
    let mut stmt = db
        .prepare("SELECT leaf_hash FROM entries ORDER BY idx")
        .unwrap();
    stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|b| Hash::from_slice(&b.unwrap()).unwrap())
        .collect()
}

/// Replaces entry `idx`'s envelope bytes, and its stored leaf hash too
/// when `with_leaf_hash`. Needs the entries triggers dropped.
pub(crate) fn write_envelope(db: &Connection, idx: u64, bytes: &[u8], with_leaf_hash: bool) {
    let n = if with_leaf_hash {
        db.execute(
            "UPDATE entries SET envelope = ?1, leaf_hash = ?2 WHERE idx = ?3",
            params![bytes, leaf_hash(bytes).as_bytes().as_slice(), idx as i64],
        )
    } else {
        db.execute(
            "UPDATE entries SET envelope = ?1 WHERE idx = ?2",
            params![bytes, idx as i64],
        )
    }
    .unwrap();
    assert_eq!(n, 1);
}

/// Rewrites entry `idx`'s body (as canonical JSON) with `edit`; returns
/// the stored salt and the new body bytes.
pub(crate) fn edit_body(
    db: &Connection,
    idx: u64,
    edit: impl FnOnce(&mut Body),
) -> ([u8; 16], Vec<u8>) {
    let (salt, body) = salt_and_body(db, idx);
    let mut body = Body::parse(&body).unwrap();
    edit(&mut body);
    let bytes = body.to_bytes();
    let n = db
        .execute(
            "UPDATE entries SET body = ?1 WHERE idx = ?2",
            params![bytes, idx as i64],
        )
        .unwrap();
    assert_eq!(n, 1);
    (salt, bytes)
}

/// [`edit_body`], then the envelope's body digest recomputed with the
/// stored salt so that the body check passes: the envelope (returned, not
/// yet written) is what changed.
pub(crate) fn edit_body_and_digest(
    db: &Connection,
    idx: u64,
    edit: impl FnOnce(&mut Body),
) -> Envelope {
    let (salt, bytes) = edit_body(db, idx, edit);
    let mut env = envelope(db, idx);
    env.body = body_digest(&salt, &bytes);
    env
}

/// Writes `env` (canonical bytes) at its index with its leaf hash, then
/// re-links every later entry: `prev` set to the new hash of the entry
/// before, leaf hash recomputed. The hash chain and the stored leaf hashes
/// are then consistent again; only the signed roots can tell. Returns the
/// new root of the whole log.
pub(crate) fn write_and_rechain(db: &Connection, env: &Envelope) -> Hash {
    let bytes = env.to_bytes();
    write_envelope(db, env.index, &bytes, true);
    let mut prev = leaf_hash(&bytes);
    for idx in env.index + 1..ENTRIES {
        let mut later = envelope(db, idx);
        later.prev = prev;
        let bytes = later.to_bytes();
        write_envelope(db, idx, &bytes, true);
        prev = leaf_hash(&bytes);
    }
    let mut tree = CompactTree::new();
    for leaf in stored_leaves(db) {
        tree.append(leaf);
    }
    tree.root()
}

/// The stored checkpoint rows of the log as `(seq, size, note)`, oldest
/// first.
pub(crate) fn checkpoints(db: &Connection) -> Vec<(i64, u64, String)> {
    let mut stmt = db
        .prepare("SELECT seq, size, note FROM checkpoints ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Every row of `table`, rendered, for before/after comparisons.
pub(crate) fn dump(db: &Connection, table: &str) -> Vec<String> {
    let mut stmt = db.prepare(&format!("SELECT * FROM {table}")).unwrap();
    let columns = stmt.column_count();
    stmt.query_map([], |r| {
        (0..columns)
            .map(|i| {
                r.get::<_, rusqlite::types::Value>(i)
                    .map(|v| format!("{v:?}"))
            })
            .collect::<rusqlite::Result<Vec<_>>>()
            .map(|cols| cols.join("|"))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}
