//! The reports the tamper cases must produce, shared by the SQLite
//! (`tamper.rs`) and PostgreSQL (`pg_tamper.rs`) suites: the same attack
//! must be reported exactly alike whatever the backend, so each
//! expectation is written once. Each suite does its own tampering (the
//! SQL differs) and hands `evident verify`'s exit status and JSON report
//! here.

use serde_json::Value;

use crate::support::{ENTRIES, LISTS, ORIGIN, assert_broken, listed, pairs};

/// The report of case `untouched_log_is_valid`.
pub(crate) fn untouched_log_is_valid(code: i32, r: Value) {
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["valid"], true);
    assert!(r["first_break"].is_null(), "{r:#}");
    assert_eq!(r["origin"], ORIGIN);
    assert_eq!(r["total_count"], ENTRIES);
    assert_eq!(r["rows_checked"], ENTRIES);
    assert_eq!(r["verified_count"], ENTRIES);
    assert_eq!(r["checkpoints_checked"], 5);
    assert_eq!(r["checkpoints_verified"], 5);
    assert_eq!(r["verified_size"], ENTRIES);
    assert_eq!(r["last_verified_index"], ENTRIES - 1);
    assert_eq!(r["violation_count"], 0);
    for list in LISTS.iter().chain(&["violations", "acknowledged"]) {
        assert_eq!(listed(&r, list), pairs(&[]), "{list}");
    }
}

/// The report of case `a_edited_body_is_a_digest_mismatch_at_the_entry`.
pub(crate) fn a_edited_body_is_a_digest_mismatch_at_the_entry(code: i32, r: Value) {
    // Entry problems are reported at the entry: the body no longer hashes
    // to the envelope's digest. Envelopes, chain and tree are untouched,
    // so it is the only problem.
    assert_broken(code, &r, 37, "body.digest_mismatch", "chain_breaks");
    assert_eq!(
        listed(&r, "violations"),
        pairs(&[(37, "body.digest_mismatch")])
    );
    assert_eq!(r["checkpoints_verified"], 5);
    assert_eq!(r["last_verified_index"], 36);
}

/// The report of case `e_deleted_tail_is_truncation`.
pub(crate) fn e_deleted_tail_is_truncation(code: i32, r: Value) {
    // A signed checkpoint (100) covers entries the log no longer has:
    // reported at the first missing index. Everything up to 80 verifies.
    assert_broken(code, &r, 95, "gap.truncated", "gaps");
    assert_eq!(listed(&r, "violations"), pairs(&[(95, "gap.truncated")]));
    assert_eq!(r["gaps"][0]["missing_from"], 95);
    assert_eq!(r["gaps"][0]["missing_to"], 99);
    assert_eq!(r["gaps"][0]["checkpoint_size"], 100);
    assert_eq!(r["total_count"], ENTRIES);
}

/// The report of case `e_deleted_tail_and_its_checkpoint_leave_an_uncovered_tail`.
pub(crate) fn e_deleted_tail_and_its_checkpoint_leave_an_uncovered_tail(code: i32, r: Value) {
    // Every batch commits its checkpoint, so entries past the last valid
    // checkpoint (80) mean checkpoints were removed: `checkpoint.uncovered`
    // at the first entry no checkpoint vouches for.
    assert_broken(
        code,
        &r,
        80,
        "checkpoint.uncovered",
        "checkpoint_mismatches",
    );
    assert_eq!(
        listed(&r, "violations"),
        pairs(&[(80, "checkpoint.uncovered")])
    );
    assert_eq!(r["verified_size"], 80);
}

/// The report of case `f_swapped_entries_are_index_mismatches`.
pub(crate) fn f_swapped_entries_are_index_mismatches(code: i32, r: Value) {
    // At position 30 sits the envelope of 33: an index mismatch, which
    // ranks before the chain break at the same entry (its `prev` is 32's
    // hash). The same at 33, and `prev` breaks at 31 and 34. Producer p
    // (even entries) sees seq 17 (entry 32) after 15, then 16 after 17.
    // The root mismatches of 40 to 100 are located at 30, the first
    // entry-level problem after the last matching checkpoint (20).
    assert_broken(code, &r, 30, "entry.index_mismatch", "chain_breaks");
    assert_eq!(
        listed(&r, "chain_breaks"),
        pairs(&[
            (30, "entry.index_mismatch"),
            (30, "chain.prev_mismatch"),
            (31, "chain.prev_mismatch"),
            (33, "entry.index_mismatch"),
            (33, "chain.prev_mismatch"),
            (34, "chain.prev_mismatch"),
        ])
    );
    assert_eq!(
        listed(&r, "gaps"),
        pairs(&[(32, "source.seq_gap"), (33, "source.seq_regression")])
    );
    assert_eq!(
        listed(&r, "checkpoint_mismatches"),
        pairs(&[(30, "checkpoint.root_mismatch"); 4])
    );
    assert_eq!(r["verified_size"], 20);
}

/// The report of case `g_backdated_ts_is_time_decreasing`.
pub(crate) fn g_backdated_ts_is_time_decreasing(code: i32, r: Value) {
    // At the entry, a back-dated `ts` ranks before the leaf hash change it
    // causes. The chain breaks at 66, and the root mismatches of 80 and
    // 100 are located at 65 (first entry-level problem after 60).
    assert_broken(code, &r, 65, "time.decreasing", "retrocausation_violations");
    assert_eq!(
        listed(&r, "violations"),
        pairs(&[
            (65, "time.decreasing"),
            (65, "entry.leaf_hash_mismatch"),
            (65, "checkpoint.root_mismatch"),
            (65, "checkpoint.root_mismatch"),
            (66, "chain.prev_mismatch"),
        ])
    );
    assert_eq!(
        listed(&r, "retrocausation_violations"),
        pairs(&[(65, "time.decreasing")])
    );
}

/// The report of case `g_parent_after_itself_is_a_causality_violation`.
pub(crate) fn g_parent_after_itself_is_a_causality_violation(code: i32, r: Value) {
    // Reported at the entry even though the chain was recomputed; the root
    // mismatches of 80 and 100 are located there too (first entry-level
    // problem after 60) and rank after it.
    assert_broken(
        code,
        &r,
        70,
        "causality.parent_not_earlier",
        "retrocausation_violations",
    );
    assert_eq!(
        listed(&r, "violations"),
        pairs(&[
            (70, "causality.parent_not_earlier"),
            (70, "checkpoint.root_mismatch"),
            (70, "checkpoint.root_mismatch"),
        ])
    );
    assert_eq!(listed(&r, "chain_breaks"), pairs(&[]));
}

/// The report of case `h_checkpoint_signed_by_another_key_is_a_bad_signature`.
pub(crate) fn h_checkpoint_signed_by_another_key_is_a_bad_signature(code: i32, r: Value) {
    // A checkpoint with no valid signature by a trusted key is reported at
    // the first entry it alone vouched for: 80, the size of the last valid
    // checkpoint before it. Without it entries 80..100 are uncovered
    // (ranked after the signature failure that explains it).
    assert_broken(
        code,
        &r,
        80,
        "checkpoint.bad_signature",
        "signature_failures",
    );
    assert_eq!(r["signature_failures"][0]["checkpoint_size"], 100);
    assert_eq!(
        listed(&r, "violations"),
        pairs(&[
            (80, "checkpoint.bad_signature"),
            (80, "checkpoint.uncovered"),
        ])
    );
    assert_eq!(r["checkpoints_verified"], 4);
    assert_eq!(r["verified_size"], 80);
}

/// The report of case `h_resigned_checkpoint_is_a_bad_signature`.
pub(crate) fn h_resigned_checkpoint_is_a_bad_signature(code: i32, r: Value) {
    // As in (h): the bad signature at 80, which makes 80..100 uncovered.
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

/// The report of case `i_older_checkpoint_put_back_is_a_rollback`.
pub(crate) fn i_older_checkpoint_put_back_is_a_rollback(code: i32, r: Value) {
    // Its signature is valid but it is smaller than the 100 stored before
    // it: `checkpoint.rollback`, reported at the checkpoint's own size (the
    // first entry the rolled-back head disowns). The checkpoint of 100
    // still verifies, so nothing else is wrong.
    assert_broken(code, &r, 60, "checkpoint.rollback", "checkpoint_mismatches");
    assert_eq!(
        listed(&r, "violations"),
        pairs(&[(60, "checkpoint.rollback")])
    );
    assert_eq!(r["checkpoint_mismatches"][0]["checkpoint_size"], 60);
    assert_eq!(r["verified_size"], 100);
}

/// The report of case `i_latest_checkpoint_overwritten_with_an_older_one`.
pub(crate) fn i_latest_checkpoint_overwritten_with_an_older_one(code: i32, r: Value) {
    // The rollback is reported at its size (60). With the checkpoint of
    // 100 gone, entries 80..100 are past the last valid checkpoint (80):
    // uncovered, reported at 80, after the rollback.
    assert_broken(code, &r, 60, "checkpoint.rollback", "checkpoint_mismatches");
    assert_eq!(
        listed(&r, "checkpoint_mismatches"),
        pairs(&[(60, "checkpoint.rollback"), (80, "checkpoint.uncovered")])
    );
    assert_eq!(r["verified_size"], 80);
}
