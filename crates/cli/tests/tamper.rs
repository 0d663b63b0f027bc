#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
//! Tampering with a real data directory, then asking the real binary.
//!
//! Each test fills a fresh data directory through `evident init` and
//! `evident append` (100 entries in batches of 20, so signed checkpoints
//! at sizes 20, 40, 60, 80 and 100), then plays an attacker who can write
//! to `evident.db` but does not hold the signing key: drop the
//! append-only triggers, change rows, and run `evident verify`. Every
//! expected `first_break` below was worked out from the rules of
//! `docs/design.md` ("Verification") and the reason table of
//! `evident_core::verify` before the test was first run; the comment at
//! each expectation says which rule gives it.

mod run;
mod support;
mod tamper_reports;

use ed25519_dalek::SigningKey;
use evident_core::checkpoint::{Checkpoint, sign_checkpoint};
use evident_core::entry::{Envelope, format_ts, parse_ts};
use evident_core::note::{NoteSigner, parse_note};
use rusqlite::params;
use support::{
    CHECKPOINT_TRIGGERS, ENTRIES, ENTRY_TRIGGERS, Ledger, ORIGIN, assert_broken, checkpoints,
    drop_triggers, dump, edit_body, edit_body_and_digest, envelope, envelope_bytes, input_line,
    listed, pairs, stored_leaves, write_and_rechain, write_envelope,
};

/// A key the attacker made: same name as the log's key, different key.
fn attacker_key() -> NoteSigner {
    NoteSigner::new("evident.local", SigningKey::from_bytes(&[0x42; 32])).unwrap()
}

#[test]
fn untouched_log_is_valid() {
    let ledger = Ledger::new();
    let (code, r) = ledger.verify();
    tamper_reports::untouched_log_is_valid(code, r);
}

/// (a) One entry's body edited in place; the envelope keeps the digest of
/// the original body.
#[test]
fn a_edited_body_is_a_digest_mismatch_at_the_entry() {
    let ledger = Ledger::new();
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    let (_, body) = edit_body(&db, 37, |b| {
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

/// (b) One envelope edited as raw bytes that are still canonical JSON:
/// a denied access rewritten as granted. The stored leaf hash is left.
#[test]
fn b_edited_envelope_is_a_leaf_hash_mismatch_at_the_entry() {
    let ledger = Ledger::new();
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    let original = String::from_utf8(envelope_bytes(&db, 46)).unwrap();
    assert!(
        original.contains("\"kind\":\"access.denied\""),
        "{original}"
    );
    let edited = original.replace("\"kind\":\"access.denied\"", "\"kind\":\"access.granted\"");
    // Still the one canonical spelling: only the bytes' hash can tell.
    assert_eq!(
        Envelope::parse(edited.as_bytes()).unwrap().to_bytes(),
        edited.as_bytes()
    );
    write_envelope(&db, 46, edited.as_bytes(), false);
    drop(db);

    let (code, r) = ledger.verify();
    // Reported at the entry: its bytes no longer hash to the stored leaf
    // hash. The next entry's `prev` names the old hash (a chain break at
    // 47), and the signed roots from 60 on differ; each root mismatch is
    // located at the first entry-level problem after the last matching
    // checkpoint (40), i.e. 46, where the entry's own reason ranks first.
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
        pairs(&[
            (46, "checkpoint.root_mismatch"),
            (46, "checkpoint.root_mismatch"),
            (46, "checkpoint.root_mismatch"),
        ])
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

/// (c) An envelope edited (its body too, with a recomputed digest) and
/// its leaf hash, every later `prev` and every later leaf hash rewritten:
/// the rows alone look intact.
#[test]
fn c_rechained_edit_is_located_to_its_batch() {
    let ledger = Ledger::new();
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    let env = edit_body_and_digest(&db, 47, |b| b.actor = Some("someone-else".into()));
    write_and_rechain(&db, &env);
    drop(db);

    let (code, r) = ledger.verify();
    // No entry-level problem is left, so the root mismatches of the
    // checkpoints at 60, 80 and 100 are reported at the first entry after
    // the last checkpoint that still matches (40): the start of the batch
    // that holds the edit, which is as precise as the signed data allows.
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
        pairs(&[
            (40, "checkpoint.root_mismatch"),
            (40, "checkpoint.root_mismatch"),
            (40, "checkpoint.root_mismatch"),
        ])
    );
    assert_eq!(r["verified_size"], 40);
    assert_eq!(r["last_verified_index"], 39);
}

/// (d) A middle entry deleted.
#[test]
fn d_deleted_middle_entry_is_a_gap() {
    let ledger = Ledger::new();
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    assert_eq!(
        db.execute("DELETE FROM entries WHERE idx = 50", [])
            .unwrap(),
        1
    );
    drop(db);

    let (code, r) = ledger.verify();
    // The missing row is reported at its index and ranks before the chain
    // break it causes at 51. Entry 50 was producer p's seq 26, so p's next
    // entry (52, seq 27) skips a number. The root mismatches at 60 and 80
    // are located at the first entry-level problem after 40 (50). With 99
    // rows the tree never reaches size 100: the checkpoint of 100 is
    // reported as truncation where the rows run out (tree size 99).
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
        pairs(&[
            (50, "checkpoint.root_mismatch"),
            (50, "checkpoint.root_mismatch"),
        ])
    );
    assert_eq!(r["total_count"], ENTRIES);
    assert_eq!(r["rows_checked"], ENTRIES - 1);
}

/// (e) The last 5 entries deleted; the checkpoint of 100 stays.
#[test]
fn e_deleted_tail_is_truncation() {
    let ledger = Ledger::new();
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    assert_eq!(
        db.execute("DELETE FROM entries WHERE idx >= 95", [])
            .unwrap(),
        5
    );
    drop(db);

    let (code, r) = ledger.verify();
    tamper_reports::e_deleted_tail_is_truncation(code, r);
}

/// (e, variant) The last 5 entries deleted and, to hide it, the
/// checkpoint that signed them.
#[test]
fn e_deleted_tail_and_its_checkpoint_leave_an_uncovered_tail() {
    let ledger = Ledger::new();
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    drop_triggers(&db, &CHECKPOINT_TRIGGERS);
    assert_eq!(
        db.execute("DELETE FROM entries WHERE idx >= 95", [])
            .unwrap(),
        5
    );
    assert_eq!(
        db.execute("DELETE FROM checkpoints WHERE size = 100", [])
            .unwrap(),
        1
    );
    drop(db);

    let (code, r) = ledger.verify();
    tamper_reports::e_deleted_tail_and_its_checkpoint_leave_an_uncovered_tail(code, r);
}

/// (f) Two entries of one batch swapped: each row moved whole (envelope,
/// leaf hash, body, salt, request id) to the other's position. A row's
/// position is its key `pos` (log_id and idx are computed from it).
#[test]
fn f_swapped_entries_are_index_mismatches() {
    let ledger = Ledger::new();
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    db.execute_batch(
        "UPDATE entries SET pos = -1 WHERE idx = 30;
         UPDATE entries SET pos = pos - 3 WHERE idx = 33;
         UPDATE entries SET pos = (SELECT pos + 3 FROM entries WHERE idx = 30) WHERE pos = -1;",
    )
    .unwrap();
    drop(db);

    let (code, r) = ledger.verify();
    tamper_reports::f_swapped_entries_are_index_mismatches(code, r);
}

/// (g) An entry's `ts` moved one microsecond before the entry preceding
/// it (rewritten as canonical JSON; the stored leaf hash is left).
#[test]
fn g_backdated_ts_is_time_decreasing() {
    let ledger = Ledger::new();
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    backdate_65(&db);
    drop(db);

    let (code, r) = ledger.verify();
    tamper_reports::g_backdated_ts_is_time_decreasing(code, r);
}

/// Case (g): entry 65's `ts` set one microsecond before entry 64's, the
/// envelope rewritten as canonical JSON, its stored leaf hash left.
fn backdate_65(db: &rusqlite::Connection) {
    let before = envelope(db, 64).ts;
    let mut env = envelope(db, 65);
    env.ts = format_ts(parse_ts(&before).unwrap() - 1);
    write_envelope(db, 65, &env.to_bytes(), false);
}

/// (g) An entry given a `parent` later than itself, with its leaf hash and
/// every later link recomputed so that only the content is wrong.
#[test]
fn g_parent_after_itself_is_a_causality_violation() {
    let ledger = Ledger::new();
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    let mut env = envelope(&db, 70);
    assert_eq!(env.parent, None);
    env.parent = Some(75);
    write_and_rechain(&db, &env);
    drop(db);

    let (code, r) = ledger.verify();
    tamper_reports::g_parent_after_itself_is_a_causality_violation(code, r);
}

/// (h) The last batch rewritten (an entry's body and digest, every later
/// link) and the latest checkpoint replaced by one of the new root, signed
/// with the attacker's own key.
#[test]
fn h_checkpoint_signed_by_another_key_is_a_bad_signature() {
    let ledger = Ledger::new();
    let db = ledger.db();
    rewrite_last_batch_under_forged_checkpoint(&db);
    drop(db);

    let (code, r) = ledger.verify();
    tamper_reports::h_checkpoint_signed_by_another_key_is_a_bad_signature(code, r);
}

/// (h, variant) Nothing but the latest checkpoint changed: the same
/// size and root, re-signed with the attacker's key.
#[test]
fn h_resigned_checkpoint_is_a_bad_signature() {
    let ledger = Ledger::new();
    let db = ledger.db();
    drop_triggers(&db, &CHECKPOINT_TRIGGERS);
    let root = latest_signed_root(&db);
    forge_latest_checkpoint(&db, root);
    drop(db);

    let (code, r) = ledger.verify();
    tamper_reports::h_resigned_checkpoint_is_a_bad_signature(code, r);
}

/// (h, variant) As (h), and the attacker's public key added to the
/// `keys` table (an insert, which the triggers allow).
#[test]
fn h_forged_checkpoint_with_inserted_key_fails_against_the_kept_key() {
    let ledger = Ledger::new();
    let db = ledger.db();
    rewrite_last_batch_under_forged_checkpoint(&db);
    let n = db
        .execute(
            "INSERT INTO keys (vkey, created_at) SELECT ?1, created_at FROM keys",
            params![attacker_key().verifier_key().to_string()],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);

    // Checked against the key printed at `init` (kept apart from the
    // database), the forged checkpoint has no trusted signature: as (h).
    // Without `--vkey` the inserted key is trusted and the log verifies;
    // `evident verify --help` says so, which is why auditors pin the key.
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

/// Case (h): entry 90's body and digest edited, every later link
/// recomputed, and the latest checkpoint replaced by one of the new root
/// signed with [`attacker_key`].
fn rewrite_last_batch_under_forged_checkpoint(db: &rusqlite::Connection) {
    drop_triggers(db, &ENTRY_TRIGGERS);
    drop_triggers(db, &CHECKPOINT_TRIGGERS);
    let env = edit_body_and_digest(db, 90, |b| b.outcome = Some("failure".into()));
    let root = write_and_rechain(db, &env);
    forge_latest_checkpoint(db, root);
}

/// Replaces the latest checkpoint row's note (and root column) with a
/// checkpoint of `root` at the same size signed by [`attacker_key`].
fn forge_latest_checkpoint(db: &rusqlite::Connection, root: evident_core::Hash) {
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
            "UPDATE checkpoints SET note = ?1, root = ?2 WHERE seq = ?3",
            params![note, root.as_bytes().as_slice(), seq],
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// The root the latest stored checkpoint signs.
fn latest_signed_root(db: &rusqlite::Connection) -> evident_core::Hash {
    let (_, _, note) = checkpoints(db).pop().unwrap();
    let (text, _) = parse_note(note.as_bytes()).unwrap();
    Checkpoint::parse(&text).unwrap().root
}

/// Case (i): a copy of the checkpoint row of size 60 inserted as the
/// latest. Inserting needs no trigger dropped: it is an append.
fn put_back_checkpoint_60(db: &rusqlite::Connection) {
    let n = db
        .execute(
            "INSERT INTO checkpoints (seq, log_id, size, root, note, created_at)
             SELECT (SELECT max(seq) FROM checkpoints) + 1, log_id, size, root, note, created_at
             FROM checkpoints WHERE size = 60",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// (i) An older checkpoint (size 60) put back as the latest: a copy of its
/// row inserted after the others.
#[test]
fn i_older_checkpoint_put_back_is_a_rollback() {
    let ledger = Ledger::new();
    let db = ledger.db();
    put_back_checkpoint_60(&db);
    drop(db);

    let (code, r) = ledger.verify();
    tamper_reports::i_older_checkpoint_put_back_is_a_rollback(code, r);
}

/// (i, variant) The latest checkpoint row overwritten with the older
/// checkpoint of 60 (size, root and note).
#[test]
fn i_latest_checkpoint_overwritten_with_an_older_one() {
    let ledger = Ledger::new();
    let db = ledger.db();
    drop_triggers(&db, &CHECKPOINT_TRIGGERS);
    let n = db
        .execute(
            "UPDATE checkpoints SET (size, root, note) =
               (SELECT size, root, note FROM checkpoints WHERE size = 60)
             WHERE seq = (SELECT max(seq) FROM checkpoints)",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);

    let (code, r) = ledger.verify();
    tamper_reports::i_latest_checkpoint_overwritten_with_an_older_one(code, r);
}

/// With the triggers in place, no UPDATE or DELETE of entries, checkpoints
/// or keys gets through, and nothing changes.
#[test]
fn triggers_refuse_update_and_delete() {
    let ledger = Ledger::new();
    let db = ledger.db();
    let before: Vec<Vec<String>> = ["entries", "checkpoints", "keys"]
        .iter()
        .map(|t| dump(&db, t))
        .collect();
    let attempts = [
        ("entries", "UPDATE entries SET body = x'00' WHERE idx = 3"),
        ("entries", "DELETE FROM entries WHERE idx = 99"),
        ("checkpoints", "UPDATE checkpoints SET note = 'x'"),
        ("checkpoints", "DELETE FROM checkpoints"),
        ("keys", "UPDATE keys SET vkey = 'x'"),
        ("keys", "DELETE FROM keys"),
    ];
    for (table, sql) in attempts {
        let err = db.execute(sql, []).unwrap_err();
        let rusqlite::Error::SqliteFailure(_, Some(msg)) = &err else {
            panic!("{sql}: unexpected error {err:?}");
        };
        assert!(msg.starts_with("evident:"), "{sql}: {msg}");
        assert!(msg.contains(table), "{sql}: {msg}");
    }
    let after: Vec<Vec<String>> = ["entries", "checkpoints", "keys"]
        .iter()
        .map(|t| dump(&db, t))
        .collect();
    assert_eq!(before, after);
    assert_eq!(before[0].len() as u64, ENTRIES);
    drop(db);
    let (code, r) = ledger.verify();
    assert_eq!(code, 0, "{r:#}");
}

/// Runs `evident append` of one more entry and asserts that it fails
/// (with error `code` when given) and writes nothing.
fn assert_append_refused(ledger: &Ledger, code: Option<&str>) {
    let db = ledger.db();
    let before: Vec<Vec<String>> = TABLES.iter().map(|t| dump(&db, t)).collect();
    let out = ledger.append(&input_line(ENTRIES), None);
    assert_eq!(out.code, 1, "{out:?}");
    if let Some(code) = code {
        assert_eq!(out.json()["error"]["code"], code, "{out:?}");
    }
    let after: Vec<Vec<String>> = TABLES.iter().map(|t| dump(&db, t)).collect();
    assert_eq!(before, after, "append wrote something");
}

/// Tables an append writes to.
const TABLES: [&str; 3] = ["entries", "checkpoints", "tiles"];

/// After (e): the latest checkpoint names entry 99, which is gone.
#[test]
fn append_to_truncated_log_is_refused() {
    let ledger = Ledger::new();
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    db.execute("DELETE FROM entries WHERE idx >= 95", [])
        .unwrap();
    drop(db);
    assert_append_refused(&ledger, Some("log.inconsistent"));
}

/// After (h): the rewritten entries no longer match the stored tiles.
#[test]
fn append_after_forged_checkpoint_is_refused() {
    let ledger = Ledger::new();
    rewrite_last_batch_under_forged_checkpoint(&ledger.db());
    assert_append_refused(&ledger, Some("log.inconsistent"));
}

/// After (i): the latest checkpoint is 60 while entries 60..100 are
/// stored. The append is refused, though by the database's primary key
/// (`db.error`), not by the sequencer's head check.
#[test]
fn append_after_rollback_is_refused() {
    let ledger = Ledger::new();
    let db = ledger.db();
    put_back_checkpoint_60(&db);
    drop(db);
    // Today's code is `db.error` (UNIQUE constraint on entries); see the
    // sequencer's head check.
    assert_append_refused(&ledger, None);
}

/// After the (h) variant that only re-signs the latest checkpoint, the
/// sequencer should refuse: the head it would extend is not signed by the
/// log's key.
#[test]
fn append_after_resigned_checkpoint_is_refused() {
    let ledger = Ledger::new();
    let db = ledger.db();
    drop_triggers(&db, &CHECKPOINT_TRIGGERS);
    let root = latest_signed_root(&db);
    forge_latest_checkpoint(&db, root);
    drop(db);
    assert_append_refused(&ledger, Some("log.inconsistent"));
}

/// The last batch rewritten with every link, the tiles and the latest
/// checkpoint row's `root` column made to agree, the genuine note left in
/// place. The sequencer should compare the tiles with the root the note
/// signs and refuse. Today it appends and signs a checkpoint of 101 over
/// the rewritten entries with the log's own key; once the attacker deletes
/// the genuine checkpoint of 100, `evident verify` calls the log valid.
#[test]
fn append_over_rewritten_batch_is_refused() {
    let ledger = Ledger::new();
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    drop_triggers(&db, &CHECKPOINT_TRIGGERS);
    let env = edit_body_and_digest(&db, 90, |b| b.outcome = Some("failure".into()));
    let root = write_and_rechain(&db, &env);
    // Tile 0/0 holds the 100 leaf hashes (the only tile of a 100-entry
    // tree).
    let leaves: Vec<u8> = stored_leaves(&db)
        .iter()
        .flat_map(|h| *h.as_bytes())
        .collect();
    let n = db
        .execute(
            "UPDATE tiles SET data = ?1 WHERE level = 0 AND idx = 0 AND width = 100",
            params![leaves],
        )
        .unwrap();
    assert_eq!(n, 1);
    let n = db
        .execute(
            "UPDATE checkpoints SET root = ?1 WHERE size = 100",
            params![root.as_bytes().as_slice()],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);
    assert_append_refused(&ledger, Some("log.inconsistent"));
}

/// The text report names the first break and exits 1.
#[test]
fn text_output_names_the_first_break() {
    let ledger = Ledger::new();
    let db = ledger.db();
    drop_triggers(&db, &ENTRY_TRIGGERS);
    backdate_65(&db);
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
