#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
//! The tamper cases of `tamper.rs`, on PostgreSQL.
//!
//! Each test fills a fresh database of a throwaway cluster
//! (crates/pgtest) through the real binary (`evident init` and `evident
//! append --database-url`: 100 entries in batches of 20, so signed
//! checkpoints at 20, 40, 60, 80 and 100), then plays an attacker who is
//! a PostgreSQL superuser but does not hold the signing key: disable the
//! append-only triggers (`ALTER TABLE … DISABLE TRIGGER USER`, or
//! `session_replication_role = replica` for the session), change rows,
//! and run `evident verify --database-url`.
//!
//! The verdicts must be exactly those of the SQLite suite: the same input
//! (`support::input_line`), the same assertions (`support::assert_broken`
//! and friends) and the same expected reports, case by case. Verification
//! reads rows through the `Store` trait, so a difference here is a
//! backend returning something other than what was stored. Each test
//! skips, saying so, when PostgreSQL is not installed, unless
//! EVIDENT_REQUIRE_POSTGRES=1.
#![cfg(unix)]

mod run;
// The SQLite harness is shared for its input and its assertions; its
// SQLite tools go unused here.
#[allow(dead_code)]
mod support;
mod tamper_reports;

use ed25519_dalek::SigningKey;
use evident_core::Hash;
use evident_core::checkpoint::{Checkpoint, sign_checkpoint};
use evident_core::entry::{Body, Envelope, body_digest, format_ts, parse_ts};
use evident_core::hash::leaf_hash;
use evident_core::merkle::CompactTree;
use evident_core::note::{NoteSigner, parse_note};
use evident_pgtest::Cluster;
use evident_pgtest::postgres::Client;
use serde_json::Value;
use support::{BATCH, ENTRIES, LOG, ORIGIN, assert_broken, input_line, listed, pairs};
use tempfile::TempDir;

/// A key the attacker made: same name as the log's key, different key.
fn attacker_key() -> NoteSigner {
    NoteSigner::new("evident.local", SigningKey::from_bytes(&[0x42; 32])).unwrap()
}

/// A database of the shared cluster holding [`ENTRIES`] entries of
/// [`LOG`], appended by the real binary in batches of [`BATCH`].
struct Ledger {
    cluster: &'static Cluster,
    db_name: String,
    url: String,
    dir: TempDir,
    /// The verifier key `init` printed, kept apart from the database.
    vkey: String,
}

impl Ledger {
    /// `None` (the test skips) when PostgreSQL is not installed.
    fn new() -> Option<Self> {
        let cluster = Cluster::shared()?;
        let db_name = cluster.create_database();
        let url = cluster.url(&db_name);
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger {
            cluster,
            db_name,
            url,
            dir,
            vkey: String::new(),
        };
        let init = ledger.evident(&["init", "--format", "json"]);
        assert_eq!(init.code, 0, "{init:?}");
        ledger.vkey = init.json()["vkey"].as_str().unwrap().to_owned();
        let lines: Vec<String> = (0..ENTRIES).map(input_line).collect();
        let out = ledger.append(&lines.join("\n"), Some(BATCH));
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.json()["size"], ENTRIES);
        Some(ledger)
    }

    /// `evident CMD --data-dir … --database-url … ARGS…`; the data
    /// directory holds only the signing key.
    fn evident(&self, args: &[&str]) -> run::Run {
        let (cmd, rest) = args.split_first().unwrap();
        let data = self.dir.path().join("data");
        let mut all = vec![
            *cmd,
            "--data-dir",
            data.to_str().unwrap(),
            "--database-url",
            &self.url,
        ];
        all.extend(rest);
        run::evident(&all)
    }

    /// A superuser connection to the database, as the attacker opens it.
    fn db(&self) -> Client {
        self.cluster.client(&self.db_name)
    }

    /// `evident append --format json` of NDJSON `input`.
    fn append(&self, input: &str, batch_size: Option<u64>) -> run::Run {
        let file = self.dir.path().join("input.ndjson");
        std::fs::write(&file, format!("{input}\n")).unwrap();
        let batch = batch_size.map(|b| b.to_string());
        let mut args = vec![
            "append",
            "--log",
            LOG,
            file.to_str().unwrap(),
            "--format",
            "json",
        ];
        if let Some(b) = &batch {
            args.extend(["--batch-size", b]);
        }
        self.evident(&args)
    }

    fn verify(&self) -> (i32, Value) {
        self.verify_with(&[])
    }

    fn verify_with(&self, extra: &[&str]) -> (i32, Value) {
        let mut args = vec!["verify", "--log", LOG, "--format", "json"];
        args.extend(extra);
        let run = self.evident(&args);
        assert!(
            run.code == 0 || run.code == 1,
            "verify could not run (exit {}): {}{}",
            run.code,
            run.stdout,
            run.stderr
        );
        (run.code, run.json())
    }

    fn verify_text(&self) -> run::Run {
        self.evident(&["verify", "--log", LOG])
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.cluster.drop_database(&self.db_name);
    }
}

/// The test's ledger, or return (skip) without PostgreSQL.
macro_rules! ledger {
    () => {
        match Ledger::new() {
            Some(l) => l,
            None => return,
        }
    };
}

// ---- The attacker's tools: those of tests/support, in PostgreSQL. ----

/// Turns off the append-only triggers of `table` for every session, as
/// the table's owner or a superuser can (the SQLite suite drops them).
fn disable_triggers(db: &mut Client, table: &str) {
    db.batch_execute(&format!("ALTER TABLE {table} DISABLE TRIGGER USER"))
        .unwrap();
}

/// Turns off every ordinary trigger for this session only: a superuser's
/// other way round the append-only rules.
fn as_replica(db: &mut Client) {
    db.batch_execute("SET session_replication_role = replica")
        .unwrap();
}

fn idx(i: u64) -> i64 {
    i64::try_from(i).unwrap()
}

fn envelope_bytes(db: &mut Client, i: u64) -> Vec<u8> {
    db.query_one("SELECT envelope FROM entries WHERE idx = $1", &[&idx(i)])
        .unwrap()
        .get(0)
}

fn envelope(db: &mut Client, i: u64) -> Envelope {
    Envelope::parse(&envelope_bytes(db, i)).unwrap()
}

fn salt_and_body(db: &mut Client, i: u64) -> ([u8; 16], Vec<u8>) {
    let row = db
        .query_one("SELECT salt, body FROM entries WHERE idx = $1", &[&idx(i)])
        .unwrap();
    let salt: Vec<u8> = row.get(0);
    (salt.try_into().unwrap(), row.get(1))
}

fn stored_leaves(db: &mut Client) -> Vec<Hash> {
    db.query("SELECT leaf_hash FROM entries ORDER BY idx", &[])
        .unwrap()
        .iter()
        .map(|r| Hash::from_slice(r.get::<_, &[u8]>(0)).unwrap())
        .collect()
}

fn write_envelope(db: &mut Client, i: u64, bytes: &[u8], with_leaf_hash: bool) {
    let n = if with_leaf_hash {
        db.execute(
            "UPDATE entries SET envelope = $1, leaf_hash = $2 WHERE idx = $3",
            &[&bytes, &leaf_hash(bytes).as_bytes().as_slice(), &idx(i)],
        )
    } else {
        db.execute(
            "UPDATE entries SET envelope = $1 WHERE idx = $2",
            &[&bytes, &idx(i)],
        )
    }
    .unwrap();
    assert_eq!(n, 1);
}

fn edit_body(db: &mut Client, i: u64, edit: impl FnOnce(&mut Body)) -> ([u8; 16], Vec<u8>) {
    let (salt, body) = salt_and_body(db, i);
    let mut body = Body::parse(&body).unwrap();
    edit(&mut body);
    let bytes = body.to_bytes();
    let n = db
        .execute(
            "UPDATE entries SET body = $1 WHERE idx = $2",
            &[&bytes, &idx(i)],
        )
        .unwrap();
    assert_eq!(n, 1);
    (salt, bytes)
}

fn edit_body_and_digest(db: &mut Client, i: u64, edit: impl FnOnce(&mut Body)) -> Envelope {
    let (salt, bytes) = edit_body(db, i, edit);
    let mut env = envelope(db, i);
    env.body = body_digest(&salt, &bytes);
    env
}

/// Writes `env` with its leaf hash and re-links every later entry, so
/// that only the signed roots can tell; returns the new root.
fn write_and_rechain(db: &mut Client, env: &Envelope) -> Hash {
    let bytes = env.to_bytes();
    write_envelope(db, env.index, &bytes, true);
    let mut prev = leaf_hash(&bytes);
    for i in env.index + 1..ENTRIES {
        let mut later = envelope(db, i);
        later.prev = prev;
        let bytes = later.to_bytes();
        write_envelope(db, i, &bytes, true);
        prev = leaf_hash(&bytes);
    }
    let mut tree = CompactTree::new();
    for leaf in stored_leaves(db) {
        tree.append(leaf);
    }
    tree.root()
}

/// The checkpoint rows as `(seq, size, note)`, oldest first.
fn checkpoints(db: &mut Client) -> Vec<(i64, u64, String)> {
    db.query("SELECT seq, size, note FROM checkpoints ORDER BY seq", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get::<_, i64>(1) as u64, r.get(2)))
        .collect()
}

/// Every row of `table` as text, sorted, for before/after comparisons.
fn dump(db: &mut Client, table: &str) -> Vec<String> {
    db.query(&format!("SELECT t::text FROM {table} AS t ORDER BY 1"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

// ---- The cases, in the order and with the verdicts of tamper.rs. ----

#[test]
fn untouched_log_is_valid() {
    let ledger = ledger!();
    let (code, r) = ledger.verify();
    tamper_reports::untouched_log_is_valid(code, r);
}

/// (a) One entry's body edited in place.
#[test]
fn a_edited_body_is_a_digest_mismatch_at_the_entry() {
    let ledger = ledger!();
    let mut db = ledger.db();
    disable_triggers(&mut db, "entries");
    let (_, body) = edit_body(&mut db, 37, |b| {
        assert_eq!(b.outcome.as_deref(), Some("success"));
        b.outcome = Some("failure".into());
    });
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("\"outcome\":\"failure\"")
    );
    drop(db);

    let (code, r) = ledger.verify();
    tamper_reports::a_edited_body_is_a_digest_mismatch_at_the_entry(code, r);
}

/// (b) One envelope's bytes edited, still canonical; leaf hash left.
#[test]
fn b_edited_envelope_is_a_leaf_hash_mismatch_at_the_entry() {
    let ledger = ledger!();
    let mut db = ledger.db();
    as_replica(&mut db);
    let original = String::from_utf8(envelope_bytes(&mut db, 46)).unwrap();
    assert!(
        original.contains("\"kind\":\"access.denied\""),
        "{original}"
    );
    let edited = original.replace("\"kind\":\"access.denied\"", "\"kind\":\"access.granted\"");
    assert_eq!(
        Envelope::parse(edited.as_bytes()).unwrap().to_bytes(),
        edited.as_bytes()
    );
    write_envelope(&mut db, 46, edited.as_bytes(), false);
    drop(db);

    let (code, r) = ledger.verify();
    assert_broken(code, &r, 46, "entry.leaf_hash_mismatch", "chain_breaks");
    assert_eq!(
        listed(&r, "chain_breaks"),
        pairs(&[
            (46, "entry.leaf_hash_mismatch"),
            (47, "chain.prev_mismatch")
        ])
    );
    assert_eq!(
        listed(&r, "checkpoint_mismatches"),
        pairs(&[(46, "checkpoint.root_mismatch"); 3])
    );
    let sizes: Vec<u64> = r["checkpoint_mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["checkpoint_size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [60, 80, 100]);
    assert_eq!(r["verified_size"], 40);
}

/// (c) An edit re-chained through every later entry.
#[test]
fn c_rechained_edit_is_located_to_its_batch() {
    let ledger = ledger!();
    let mut db = ledger.db();
    disable_triggers(&mut db, "entries");
    let env = edit_body_and_digest(&mut db, 47, |b| b.actor = Some("someone-else".into()));
    write_and_rechain(&mut db, &env);
    drop(db);

    let (code, r) = ledger.verify();
    assert_broken(
        code,
        &r,
        40,
        "checkpoint.root_mismatch",
        "checkpoint_mismatches",
    );
    assert_eq!(listed(&r, "chain_breaks"), pairs(&[]));
    assert_eq!(
        listed(&r, "violations"),
        pairs(&[(40, "checkpoint.root_mismatch"); 3])
    );
    assert_eq!(r["verified_size"], 40);
    assert_eq!(r["last_verified_index"], 39);
}

/// (d) A middle entry deleted.
#[test]
fn d_deleted_middle_entry_is_a_gap() {
    let ledger = ledger!();
    let mut db = ledger.db();
    as_replica(&mut db);
    assert_eq!(
        db.execute("DELETE FROM entries WHERE idx = 50", &[])
            .unwrap(),
        1
    );
    drop(db);

    let (code, r) = ledger.verify();
    assert_broken(code, &r, 50, "gap.missing_entries", "gaps");
    assert_eq!(
        listed(&r, "gaps"),
        pairs(&[
            (50, "gap.missing_entries"),
            (52, "source.seq_gap"),
            (99, "gap.truncated"),
        ])
    );
    assert_eq!(r["gaps"][0]["missing_from"], 50);
    assert_eq!(r["gaps"][0]["missing_to"], 50);
    assert_eq!(r["gaps"][1]["source"], "p");
    assert_eq!(r["gaps"][1]["missing_from"], 26);
    assert_eq!(
        listed(&r, "chain_breaks"),
        pairs(&[(51, "chain.prev_mismatch")])
    );
    assert_eq!(
        listed(&r, "checkpoint_mismatches"),
        pairs(&[(50, "checkpoint.root_mismatch"); 2])
    );
    assert_eq!(r["total_count"], ENTRIES);
    assert_eq!(r["rows_checked"], ENTRIES - 1);
}

/// (e) The last 5 entries deleted; the checkpoint of 100 stays.
#[test]
fn e_deleted_tail_is_truncation() {
    let ledger = ledger!();
    let mut db = ledger.db();
    disable_triggers(&mut db, "entries");
    assert_eq!(
        db.execute("DELETE FROM entries WHERE idx >= 95", &[])
            .unwrap(),
        5
    );
    drop(db);

    let (code, r) = ledger.verify();
    tamper_reports::e_deleted_tail_is_truncation(code, r);
}

/// (e, variant) The tail and the checkpoint that signed it deleted.
#[test]
fn e_deleted_tail_and_its_checkpoint_leave_an_uncovered_tail() {
    let ledger = ledger!();
    let mut db = ledger.db();
    disable_triggers(&mut db, "entries");
    disable_triggers(&mut db, "checkpoints");
    assert_eq!(
        db.execute("DELETE FROM entries WHERE idx >= 95", &[])
            .unwrap(),
        5
    );
    assert_eq!(
        db.execute("DELETE FROM checkpoints WHERE size = 100", &[])
            .unwrap(),
        1
    );
    drop(db);

    let (code, r) = ledger.verify();
    tamper_reports::e_deleted_tail_and_its_checkpoint_leave_an_uncovered_tail(code, r);
}

/// (f) Two whole rows of one batch swapped.
#[test]
fn f_swapped_entries_are_index_mismatches() {
    let ledger = ledger!();
    let mut db = ledger.db();
    disable_triggers(&mut db, "entries");
    db.batch_execute(
        "UPDATE entries SET idx = -1 WHERE idx = 30;
         UPDATE entries SET idx = 30 WHERE idx = 33;
         UPDATE entries SET idx = 33 WHERE idx = -1;",
    )
    .unwrap();
    drop(db);

    let (code, r) = ledger.verify();
    tamper_reports::f_swapped_entries_are_index_mismatches(code, r);
}

/// Case (g): entry 65's `ts` set one microsecond before entry 64's.
fn backdate_65(db: &mut Client) {
    let before = envelope(db, 64).ts;
    let mut env = envelope(db, 65);
    env.ts = format_ts(parse_ts(&before).unwrap() - 1);
    write_envelope(db, 65, &env.to_bytes(), false);
}

/// (g) A back-dated `ts`.
#[test]
fn g_backdated_ts_is_time_decreasing() {
    let ledger = ledger!();
    let mut db = ledger.db();
    disable_triggers(&mut db, "entries");
    backdate_65(&mut db);
    drop(db);

    let (code, r) = ledger.verify();
    tamper_reports::g_backdated_ts_is_time_decreasing(code, r);
}

/// (g) A `parent` later than the entry, the chain recomputed.
#[test]
fn g_parent_after_itself_is_a_causality_violation() {
    let ledger = ledger!();
    let mut db = ledger.db();
    disable_triggers(&mut db, "entries");
    let mut env = envelope(&mut db, 70);
    assert_eq!(env.parent, None);
    env.parent = Some(75);
    write_and_rechain(&mut db, &env);
    drop(db);

    let (code, r) = ledger.verify();
    tamper_reports::g_parent_after_itself_is_a_causality_violation(code, r);
}

/// Case (h): entry 90's body and digest edited, every later link
/// recomputed, and the latest checkpoint replaced by one of the new root
/// signed with [`attacker_key`].
fn rewrite_last_batch_under_forged_checkpoint(db: &mut Client) {
    disable_triggers(db, "entries");
    disable_triggers(db, "checkpoints");
    let env = edit_body_and_digest(db, 90, |b| b.outcome = Some("failure".into()));
    let root = write_and_rechain(db, &env);
    forge_latest_checkpoint(db, root);
}

/// Replaces the latest checkpoint row's note and root with a checkpoint
/// of `root` at the same size signed by [`attacker_key`].
fn forge_latest_checkpoint(db: &mut Client, root: Hash) {
    let (seq, size, _) = checkpoints(db).pop().unwrap();
    let forged = Checkpoint {
        origin: ORIGIN.to_owned(),
        size,
        root,
        extensions: Vec::new(),
    };
    let note = sign_checkpoint(&forged, &[&attacker_key()]).unwrap();
    let n = db
        .execute(
            "UPDATE checkpoints SET note = $1, root = $2 WHERE seq = $3",
            &[&note, &root.as_bytes().as_slice(), &seq],
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// The root the latest stored checkpoint signs.
fn latest_signed_root(db: &mut Client) -> Hash {
    let (_, _, note) = checkpoints(db).pop().unwrap();
    let (text, _) = parse_note(note.as_bytes()).unwrap();
    Checkpoint::parse(&text).unwrap().root
}

/// Case (i): a copy of the checkpoint row of size 60 inserted as the
/// latest (its `seq` comes from the sequence, after every other). An
/// insert: no trigger needs disabling.
fn put_back_checkpoint_60(db: &mut Client) {
    let n = db
        .execute(
            "INSERT INTO checkpoints (log_id, size, root, note, created_at)
             SELECT log_id, size, root, note, created_at FROM checkpoints WHERE size = 60",
            &[],
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// (h) The last batch rewritten under a checkpoint the attacker signed.
#[test]
fn h_checkpoint_signed_by_another_key_is_a_bad_signature() {
    let ledger = ledger!();
    rewrite_last_batch_under_forged_checkpoint(&mut ledger.db());

    let (code, r) = ledger.verify();
    tamper_reports::h_checkpoint_signed_by_another_key_is_a_bad_signature(code, r);
}

/// (h, variant) Only the latest checkpoint re-signed by the attacker.
#[test]
fn h_resigned_checkpoint_is_a_bad_signature() {
    let ledger = ledger!();
    let mut db = ledger.db();
    disable_triggers(&mut db, "checkpoints");
    let root = latest_signed_root(&mut db);
    forge_latest_checkpoint(&mut db, root);
    drop(db);

    let (code, r) = ledger.verify();
    tamper_reports::h_resigned_checkpoint_is_a_bad_signature(code, r);
}

/// (h, variant) As (h), and the attacker's key inserted into `keys`;
/// verified against the key `init` printed.
#[test]
fn h_forged_checkpoint_with_inserted_key_fails_against_the_kept_key() {
    let ledger = ledger!();
    let mut db = ledger.db();
    rewrite_last_batch_under_forged_checkpoint(&mut db);
    let n = db
        .execute(
            "INSERT INTO keys (vkey, created_at) SELECT $1, created_at FROM keys",
            &[&attacker_key().verifier_key().to_string()],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);

    let (code, r) = ledger.verify_with(&["--vkey", &ledger.vkey]);
    assert_broken(
        code,
        &r,
        80,
        "checkpoint.bad_signature",
        "signature_failures",
    );
    assert_eq!(
        listed(&r, "violations"),
        pairs(&[
            (80, "checkpoint.bad_signature"),
            (80, "checkpoint.uncovered"),
        ])
    );
}

/// (i) The checkpoint of 60 put back as the latest.
#[test]
fn i_older_checkpoint_put_back_is_a_rollback() {
    let ledger = ledger!();
    put_back_checkpoint_60(&mut ledger.db());

    let (code, r) = ledger.verify();
    tamper_reports::i_older_checkpoint_put_back_is_a_rollback(code, r);
}

/// (i, variant) The latest checkpoint row overwritten with the one of 60.
#[test]
fn i_latest_checkpoint_overwritten_with_an_older_one() {
    let ledger = ledger!();
    let mut db = ledger.db();
    disable_triggers(&mut db, "checkpoints");
    let n = db
        .execute(
            "UPDATE checkpoints SET (size, root, note) =
               (SELECT size, root, note FROM checkpoints WHERE size = 60)
             WHERE seq = (SELECT max(seq) FROM checkpoints)",
            &[],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);

    let (code, r) = ledger.verify();
    tamper_reports::i_latest_checkpoint_overwritten_with_an_older_one(code, r);
}

/// With the triggers in place, no UPDATE, DELETE or TRUNCATE of entries,
/// checkpoints or keys gets through, even from a superuser, and nothing
/// changes.
#[test]
fn triggers_refuse_update_delete_and_truncate() {
    let ledger = ledger!();
    let mut db = ledger.db();
    let tables = ["entries", "checkpoints", "keys"];
    let before: Vec<Vec<String>> = tables.iter().map(|t| dump(&mut db, t)).collect();
    let attempts = [
        ("entries", "UPDATE entries SET body = '\\x00' WHERE idx = 3"),
        ("entries", "DELETE FROM entries WHERE idx = 99"),
        ("entries", "TRUNCATE entries"),
        ("checkpoints", "UPDATE checkpoints SET note = 'x'"),
        ("checkpoints", "DELETE FROM checkpoints"),
        ("checkpoints", "TRUNCATE checkpoints"),
        ("keys", "UPDATE keys SET vkey = 'x'"),
        ("keys", "DELETE FROM keys"),
        // key_rotations references keys, so a plain TRUNCATE is refused
        // by the foreign key before any trigger runs (checked below);
        // with CASCADE it reaches the triggers.
        ("key", "TRUNCATE keys CASCADE"),
    ];
    let err = db.batch_execute("TRUNCATE keys").unwrap_err();
    assert_eq!(
        err.code(),
        Some(&evident_pgtest::postgres::error::SqlState::FEATURE_NOT_SUPPORTED),
        "TRUNCATE keys: {err:?}"
    );
    for (table, sql) in attempts {
        let err = db.batch_execute(sql).unwrap_err();
        let msg = err
            .as_db_error()
            .unwrap_or_else(|| panic!("{sql}: unexpected error {err:?}"))
            .message();
        assert!(msg.starts_with("evident:"), "{sql}: {msg}");
        assert!(msg.contains(table), "{sql}: {msg}");
    }
    let after: Vec<Vec<String>> = tables.iter().map(|t| dump(&mut db, t)).collect();
    assert_eq!(before, after);
    assert_eq!(before[0].len() as u64, ENTRIES);
    drop(db);
    let (code, r) = ledger.verify();
    assert_eq!(code, 0, "{r:#}");
}

/// Tables an append writes to.
const TABLES: [&str; 3] = ["entries", "checkpoints", "tiles"];

/// Runs `evident append` of one more entry and asserts that it fails
/// (with error `code` when given) and writes nothing.
fn assert_append_refused(ledger: &Ledger, code: Option<&str>) {
    let mut db = ledger.db();
    let before: Vec<Vec<String>> = TABLES.iter().map(|t| dump(&mut db, t)).collect();
    let out = ledger.append(&input_line(ENTRIES), None);
    assert_eq!(out.code, 1, "{out:?}");
    if let Some(code) = code {
        assert_eq!(out.json()["error"]["code"], code, "{out:?}");
    }
    let after: Vec<Vec<String>> = TABLES.iter().map(|t| dump(&mut db, t)).collect();
    assert_eq!(before, after, "append wrote something");
}

/// After (e): the latest checkpoint names entry 99, which is gone.
#[test]
fn append_to_truncated_log_is_refused() {
    let ledger = ledger!();
    let mut db = ledger.db();
    disable_triggers(&mut db, "entries");
    db.execute("DELETE FROM entries WHERE idx >= 95", &[])
        .unwrap();
    drop(db);
    assert_append_refused(&ledger, Some("log.inconsistent"));
}

/// After (h): the rewritten entries no longer match the stored tiles.
#[test]
fn append_after_forged_checkpoint_is_refused() {
    let ledger = ledger!();
    rewrite_last_batch_under_forged_checkpoint(&mut ledger.db());
    assert_append_refused(&ledger, Some("log.inconsistent"));
}

/// After (i): the latest checkpoint is 60 while entries 60..100 are
/// stored. Refused, as on SQLite, by the primary key of entries
/// (`db.error`), not by the sequencer's head check.
#[test]
fn append_after_rollback_is_refused() {
    let ledger = ledger!();
    put_back_checkpoint_60(&mut ledger.db());
    assert_append_refused(&ledger, None);
}

/// After the (h) variant that only re-signs the latest checkpoint.
#[test]
fn append_after_resigned_checkpoint_is_refused() {
    let ledger = ledger!();
    let mut db = ledger.db();
    disable_triggers(&mut db, "checkpoints");
    let root = latest_signed_root(&mut db);
    forge_latest_checkpoint(&mut db, root);
    drop(db);
    assert_append_refused(&ledger, Some("log.inconsistent"));
}

/// The last batch rewritten with every link, the tiles and the latest
/// checkpoint's `root` column made to agree, the genuine note left.
#[test]
fn append_over_rewritten_batch_is_refused() {
    let ledger = ledger!();
    let mut db = ledger.db();
    disable_triggers(&mut db, "entries");
    disable_triggers(&mut db, "checkpoints");
    let env = edit_body_and_digest(&mut db, 90, |b| b.outcome = Some("failure".into()));
    let root = write_and_rechain(&mut db, &env);
    let leaves: Vec<u8> = stored_leaves(&mut db)
        .iter()
        .flat_map(|h| *h.as_bytes())
        .collect();
    let n = db
        .execute(
            "UPDATE tiles SET data = $1 WHERE level = 0 AND idx = 0 AND width = 100",
            &[&leaves],
        )
        .unwrap();
    assert_eq!(n, 1);
    let n = db
        .execute(
            "UPDATE checkpoints SET root = $1 WHERE size = 100",
            &[&root.as_bytes().as_slice()],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);
    assert_append_refused(&ledger, Some("log.inconsistent"));
}

/// The text report names the first break and exits 1.
#[test]
fn text_output_names_the_first_break() {
    let ledger = ledger!();
    let mut db = ledger.db();
    disable_triggers(&mut db, "entries");
    backdate_65(&mut db);
    drop(db);

    let out = ledger.verify_text();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("INVALID"), "{}", out.stdout);
    assert!(
        out.stdout.contains("first break: index 65 time.decreasing"),
        "{}",
        out.stdout
    );
}
