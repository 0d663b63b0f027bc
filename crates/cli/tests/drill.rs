#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
//! The incident drill of docs/runbook.md, end to end on a running
//! `evident serve`: an application appends over HTTP with its API key, the
//! day's seal goes to a directory anchor and an export is kept as the
//! trusted copy; then an attacker with write access to evident.db (but not
//! the signing key) drops the append-only triggers and edits one entry's
//! body and another's envelope. The on-call steps follow, each checked for
//! exactly what the runbook says the operator sees: verify finds the first
//! break, writes are paused on the running server, a backup keeps the
//! evidence, repair restores the originals from the export, verify is
//! valid again with the repair on record, writes resume, and the seals
//! made before the incident still verify against the repaired log.

mod run;
mod server;

use std::path::{Path, PathBuf};
use std::time::Duration;

use evident_core::entry::{Body, Envelope, body_digest};
use evident_core::hash::leaf_hash;
use rusqlite::{Connection, params};
use serde_json::{Value, json};
use server::{Key, Server, eventually};

/// How long a running server may take to see a change made by the CLI
/// (it polls the pause every 500 ms): a liveness bound, not a target.
const LIMIT: Duration = Duration::from_secs(30);

/// The log the application writes, and its name as the CLI spells it.
const LOG: &str = "audit";
const CLI_LOG: &str = "acme/audit";

/// The entries tampered with: a body, and another entry's envelope.
const BODY_EDITED: u64 = 30;
const ENVELOPE_EDITED: u64 = 60;
/// The append-only triggers the attacker drops first.
const DROPPED: [&str; 2] = ["entries_no_delete", "entries_no_update"];

/// Client entry `i`, as the application sends it.
fn entry(i: u64) -> Value {
    json!({
        "kind": if i.is_multiple_of(2) { "access.granted" } else { "payment.approved" },
        "request_id": format!("req-{i:04}"),
        "actor": format!("user-{}", i % 5),
        "action": "read",
        "resource": format!("doc/{i}"),
        "outcome": "success",
        "data": {"n": i},
    })
}

/// Appends client entries `range` as one HTTP batch (one signed
/// checkpoint); they must be stored from index `at` on.
fn append_batch(s: &Server, k: &Key, range: std::ops::Range<u64>, at: u64) {
    let entries: Vec<Value> = range.clone().map(entry).collect();
    let r = s
        .post(&format!("/v1/logs/{LOG}/entries"))
        .bearer(&k.token)
        .json(&json!({"entries": entries}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["size"], at + (range.end - range.start), "{v}");
    let first = &v["entries"][0];
    assert_eq!(
        (&first["index"], &first["duplicate"]),
        (&json!(at), &json!(false)),
        "{v}"
    );
}

/// `evident ARGS… --data-dir DIR --format json`.
fn cli(s: &Server, args: &[&str]) -> run::Run {
    let mut all = args.to_vec();
    all.extend(["--data-dir", s.dir.to_str().unwrap(), "--format", "json"]);
    run::evident(&all)
}

/// `evident verify --log acme/audit`: exit status and report.
fn verify(s: &Server, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["verify", "--log", CLI_LOG];
    args.extend(extra);
    let r = cli(s, &args);
    assert!(r.code == 0 || r.code == 1, "verify could not run: {r:?}");
    (r.code, r.json())
}

/// One list of a verify report as `(index, reason)` pairs.
fn listed(report: &Value, list: &str) -> Vec<(u64, String)> {
    report[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {report:#}"))
        .iter()
        .map(|v| {
            (
                v["index"].as_u64().unwrap(),
                v["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(items: &[(u64, &str)]) -> Vec<(u64, String)> {
    items.iter().map(|&(i, r)| (i, r.to_owned())).collect()
}

/// What the attacker can do: open evident.db and write rows of one log.
struct Attacker {
    db: Connection,
    log_id: i64,
}

impl Attacker {
    fn open(data: &Path) -> Attacker {
        let db = Connection::open(data.join("evident.db")).unwrap();
        db.busy_timeout(Duration::from_secs(30)).unwrap();
        let log_id = db
            .query_row(
                "SELECT id FROM logs WHERE tenant = 'acme' AND name = ?1",
                params![LOG],
                |r| r.get(0),
            )
            .unwrap();
        Attacker { db, log_id }
    }

    fn drop_triggers(&self) {
        self.db
            .execute_batch("DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete;")
            .unwrap();
    }

    /// Entry `idx`'s `(envelope, salt, body)` as stored.
    fn row(&self, idx: u64) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        self.db
            .query_row(
                "SELECT envelope, salt, body FROM entries WHERE log_id = ?1 AND idx = ?2",
                params![self.log_id, idx as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    }

    /// Rewrites entry `idx`'s body with `edit`; returns the salt and the
    /// new body bytes.
    fn edit_body(&self, idx: u64, edit: impl FnOnce(&mut Body)) -> (Vec<u8>, Vec<u8>) {
        let (_, salt, body) = self.row(idx);
        let mut body = Body::parse(&body).unwrap();
        edit(&mut body);
        let bytes = body.to_bytes();
        let n = self
            .db
            .execute(
                "UPDATE entries SET body = ?1 WHERE log_id = ?2 AND idx = ?3",
                params![bytes, self.log_id, idx as i64],
            )
            .unwrap();
        assert_eq!(n, 1);
        (salt, bytes)
    }

    /// Rewrites entry `idx`'s body and, so that its digest matches again,
    /// its envelope and stored leaf hash: the envelope is what changed.
    fn edit_envelope(&self, idx: u64, edit: impl FnOnce(&mut Body)) {
        let (salt, body) = self.edit_body(idx, edit);
        let mut env = Envelope::parse(&self.row(idx).0).unwrap();
        env.body = body_digest(&salt.try_into().unwrap(), &body);
        let bytes = env.to_bytes();
        let n = self
            .db
            .execute(
                "UPDATE entries SET envelope = ?1, leaf_hash = ?2 WHERE log_id = ?3 AND idx = ?4",
                params![
                    bytes,
                    leaf_hash(&bytes).as_bytes().as_slice(),
                    self.log_id,
                    idx as i64
                ],
            )
            .unwrap();
        assert_eq!(n, 1);
    }

    /// The quarantine rows of the log: `(idx, envelope, body)`.
    fn quarantine(&self) -> Vec<(u64, Vec<u8>, Vec<u8>)> {
        let mut stmt = self
            .db
            .prepare("SELECT idx, envelope, body FROM quarantine WHERE log_id = ?1 ORDER BY id")
            .unwrap();
        stmt.query_map(params![self.log_id], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }
}

/// The system event log over HTTP with the admin key: `(index, kind,
/// body)` of each event.
fn system_events(s: &Server) -> Vec<(u64, String, Value)> {
    s.entries(&s.admin, "events")
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["envelope"]["kind"].as_str().unwrap().to_owned(),
                e["body"].clone(),
            )
        })
        .collect()
}

/// The one event of `kind`.
fn event<'a>(events: &'a [(u64, String, Value)], kind: &str) -> &'a (u64, String, Value) {
    let found: Vec<_> = events.iter().filter(|e| e.1 == kind).collect();
    assert_eq!(found.len(), 1, "{kind} in {events:#?}");
    found[0]
}

/// An entry as the server reads it.
fn read_entry(s: &Server, k: &Key, idx: u64) -> Value {
    let r = s
        .get(&format!("/v1/logs/{LOG}/entries/{idx}"))
        .bearer(&k.token)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The server's own verification of the log.
fn server_verify(s: &Server, k: &Key) -> Value {
    let r = s
        .get(&format!("/v1/logs/{LOG}/verify"))
        .bearer(&k.token)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_tamper_drill_from_first_break_to_sealed_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let anchors = tmp.path().join("anchors");
    let export: PathBuf = tmp.path().join("export-monday");
    let backup = tmp.path().join("incident.db");

    // Before the incident: an application appends over HTTP, 20 entries a
    // request (one signed checkpoint each: 20, 40, … 100).
    let s = Server::start(&data, &[]);
    s.tenant("acme");
    let k = s.key("acme", &["append", "read", "verify"]);
    for start in (0..100).step_by(20) {
        append_batch(&s, &k, start..start + 20, start);
    }
    // The day's seal, published to the anchor directory.
    let sealed = cli(&s, &["seal", "--log", CLI_LOG, "--anchors", path(&anchors)]);
    assert_eq!(sealed.code, 0, "{sealed:?}");
    let seal0 = &sealed.json()["sealed"][0];
    assert_eq!((&seal0["seq"], &seal0["size"]), (&json!(0), &json!(100)));
    // More traffic, then the export kept as the trusted copy (size 120),
    // then more traffic the copy does not have (size 130).
    append_batch(&s, &k, 100..120, 100);
    let exported = cli(&s, &["export", "--log", CLI_LOG, "--out", path(&export)]);
    assert_eq!(exported.code, 0, "{exported:?}");
    append_batch(&s, &k, 120..130, 120);
    let (code, report) = verify(&s, &[]);
    assert_eq!((code, &report["valid"]), (0, &json!(true)), "{report:#}");

    // The incident: an attacker with write access to the file, while the
    // server runs, drops the triggers and edits two entries.
    let attacker = Attacker::open(&data);
    let original = [attacker.row(BODY_EDITED), attacker.row(ENVELOPE_EDITED)];
    attacker.drop_triggers();
    attacker.edit_body(BODY_EDITED, |b| b.actor = Some("mallory".into()));
    attacker.edit_envelope(ENVELOPE_EDITED, |b| b.outcome = Some("denied".into()));
    let tampered = [attacker.row(BODY_EDITED), attacker.row(ENVELOPE_EDITED)];
    assert_ne!(original[0].2, tampered[0].2);
    assert_ne!(original[1].0, tampered[1].0);

    // Step 1, detect: verify finds the first break and scopes it. Entry
    // 30's body no longer matches its digest; entry 60's envelope hashes
    // to a new leaf, so 61's `prev` breaks and every signed root from 80
    // on disagrees (located at 61, the first entry-level problem after
    // the last matching checkpoint, 60).
    let (code, report) = verify(&s, &[]);
    // The reports are the drill's record (the closing notes and the
    // runbook quote them): shown with --nocapture.
    eprintln!("drill: verify before the repair:\n{report:#}");
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["valid"], false);
    assert_eq!(
        (
            &report["first_break"]["index"],
            &report["first_break"]["reason"]
        ),
        (&json!(BODY_EDITED), &json!("body.digest_mismatch")),
        "{report:#}"
    );
    assert_eq!(
        listed(&report, "chain_breaks"),
        pairs(&[
            (BODY_EDITED, "body.digest_mismatch"),
            (ENVELOPE_EDITED + 1, "chain.prev_mismatch"),
        ])
    );
    assert_eq!(
        listed(&report, "checkpoint_mismatches"),
        pairs(&[(ENVELOPE_EDITED + 1, "checkpoint.root_mismatch"); 4])
    );
    let sizes: Vec<u64> = report["checkpoint_mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["checkpoint_size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [80, 100, 120, 130]);
    assert_eq!(report["verified_size"], 60, "{report:#}");
    assert_eq!(report["total_count"], 130);
    assert_eq!(report["violation_count"], 6, "{report:#}");
    // The dropped triggers are reported too, beside the verdict.
    assert_eq!(
        report["append_only_guards"],
        json!({"missing": DROPPED, "altered": [], "unexpected": []}),
        "{report:#}"
    );
    // The running server reaches the same verdict from the same rows.
    let on_server = server_verify(&s, &k);
    assert_eq!(on_server["valid"], false);
    assert_eq!(on_server["first_break"], report["first_break"]);
    assert_eq!(on_server["violations"], report["violations"]);

    // Step 2, contain: pause writes. The running server refuses appends
    // within its poll; reads and verification go on.
    let paused = cli(
        &s,
        &[
            "writes",
            "pause",
            "--reason",
            "incident drill: tampered entries",
            "--by",
            "oncall",
        ],
    );
    assert_eq!(paused.code, 0, "{paused:?}");
    assert_eq!(
        (&paused.json()["paused"], &paused.json()["event_recorded"]),
        (&json!(true), &json!(true))
    );
    // The probe is a retry of a stored entry: until the pause is seen it
    // answers the original (200, a duplicate) and stores nothing.
    let refused = eventually(LIMIT, "appends refused while paused", || {
        let r = s
            .post(&format!("/v1/logs/{LOG}/entries"))
            .bearer(&k.token)
            .json(&entry(129))
            .send();
        assert!(r.status == 200 || r.status == 503, "{}", r.text());
        (r.status == 503).then_some(r)
    });
    let msg = refused.assert_error(503, "writes.paused");
    assert!(msg.contains("oncall"), "{msg}");
    assert_eq!(s.size(&k.token, LOG), 130);
    assert_eq!(read_entry(&s, &k, BODY_EDITED)["body"]["actor"], "mallory");
    assert_eq!(server_verify(&s, &k)["first_break"], report["first_break"]);

    // Step 3, preserve: a backup of the tampered state, the pause with it.
    let b = cli(&s, &["backup", "--out", path(&backup)]);
    assert_eq!(b.code, 0, "{b:?}");
    assert_eq!(b.json()["integrity"], "ok");
    let checked = run::evident(&[
        "restore-check",
        path(&backup),
        "--vkey",
        &s.vkey,
        "--format",
        "json",
    ]);
    assert_eq!(checked.code, 1, "{checked:?}");
    let c = checked.json();
    assert_eq!(c["writes_paused"], true);
    let audit = c["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["origin"] == "evident.local/acme/audit")
        .unwrap();
    assert_eq!(audit["first_break"], report["first_break"]);

    // Step 4, repair from the trusted copy (the export, size 120): both
    // entries restored, the tampered rows quarantined, the repair recorded
    // as entry 130 of the log.
    let repaired = cli(
        &s,
        &["repair", "--log", CLI_LOG, "--from", path(&export), "--yes"],
    );
    assert_eq!(repaired.code, 0, "{repaired:?}");
    let r = repaired.json();
    assert_eq!(r["restored"], json!([BODY_EDITED, ENVELOPE_EDITED]), "{r}");
    assert_eq!((&r["quarantined"], &r["inserted"]), (&json!(2), &json!(0)));
    assert_eq!(r["size"], 130);
    assert_eq!(r["repair_index"], 130);
    assert_eq!(r["guards_restored"], json!(DROPPED));

    // Step 5, re-verify: valid, byte for byte the originals, the tampered
    // rows kept as evidence, the repair an entry of the log.
    let (code, after) = verify(&s, &["--vkey", &s.vkey]);
    eprintln!("drill: verify after the repair:\n{after:#}");
    assert_eq!(
        after["repairs"],
        serde_json::json!([{"index": 130, "restored": [30, 60]}]),
        "the report shows the repair: {after:#}"
    );
    assert_eq!(code, 0, "{after:#}");
    assert_eq!(
        (
            &after["valid"],
            &after["total_count"],
            &after["violation_count"]
        ),
        (&json!(true), &json!(131), &json!(0)),
        "{after:#}"
    );
    assert_eq!(attacker.row(BODY_EDITED), original[0]);
    assert_eq!(attacker.row(ENVELOPE_EDITED), original[1]);
    assert_eq!(
        attacker.quarantine(),
        [
            (BODY_EDITED, tampered[0].0.clone(), tampered[0].2.clone()),
            (
                ENVELOPE_EDITED,
                tampered[1].0.clone(),
                tampered[1].2.clone()
            ),
        ]
    );
    let marker = read_entry(&s, &k, 130);
    assert_eq!(marker["envelope"]["kind"], "evident.chain_repaired");
    assert_eq!(
        marker["body"]["data"]["restored"],
        json!([BODY_EDITED, ENVELOPE_EDITED])
    );
    assert_eq!(marker["body"]["data"]["quarantined"], 2);
    assert_eq!(marker["body"]["data"]["guards_restored"], json!(DROPPED));
    // The triggers are back: the attacker's next edit is refused, and
    // verify no longer warns.
    assert!(after.get("append_only_guards").is_none(), "{after:#}");
    let again = attacker.db.execute(
        "UPDATE entries SET body = x'00' WHERE log_id = ?1 AND idx = ?2",
        params![attacker.log_id, BODY_EDITED as i64],
    );
    assert!(
        again
            .unwrap_err()
            .to_string()
            .contains("entries are append-only (UPDATE refused)")
    );
    assert!(
        attacker
            .db
            .execute(
                "DELETE FROM entries WHERE log_id = ?1 AND idx = 0",
                params![attacker.log_id],
            )
            .is_err()
    );
    // The running server serves the repaired rows and verifies them valid.
    assert_eq!(read_entry(&s, &k, BODY_EDITED)["body"]["actor"], "user-0");
    assert_eq!(
        read_entry(&s, &k, ENVELOPE_EDITED)["body"]["outcome"],
        "success"
    );
    let on_server = server_verify(&s, &k);
    assert_eq!(
        (&on_server["valid"], &on_server["total_count"]),
        (&json!(true), &json!(131)),
        "{on_server:#}"
    );

    // Step 6, resume: appends work again and extend the repaired log.
    let resumed = cli(&s, &["writes", "resume", "--by", "oncall"]);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert_eq!(resumed.json()["paused"], false);
    eventually(LIMIT, "appends accepted after resume", || {
        let r = s
            .post(&format!("/v1/logs/{LOG}/entries"))
            .bearer(&k.token)
            .json(&entry(130))
            .send();
        (r.status == 201).then(|| assert_eq!(r.json()["index"], 131, "{}", r.text()))
    });
    append_batch(&s, &k, 131..140, 132);
    assert_eq!(s.size(&k.token, LOG), 141);

    // Step 7, seal and check against every seal: the one made before the
    // incident (size 100) and today's.
    let sealed = cli(&s, &["seal", "--log", CLI_LOG, "--anchors", path(&anchors)]);
    assert_eq!(sealed.code, 0, "{sealed:?}");
    let seal1 = &sealed.json()["sealed"][0];
    assert_eq!((&seal1["seq"], &seal1["size"]), (&json!(1), &json!(141)));
    let (code, anchored) = verify(&s, &["--anchors", path(&anchors), "--vkey", &s.vkey]);
    assert_eq!(code, 0, "{anchored:#}");
    assert_eq!(anchored["valid"], true);
    assert_eq!(
        (
            &anchored["anchors"]["seals_checked"],
            &anchored["anchors"]["last_sealed_size"],
            &anchored["anchors"]["violations"]
        ),
        (&json!(2), &json!(141), &json!([])),
        "{anchored:#}"
    );

    // The system event log has the incident on record, in order: the
    // failed verification the server ran, the pause, the repair, the
    // resume.
    let events = system_events(&s);
    let failed = events
        .iter()
        .find(|e| e.1 == "evident.verify.failed")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(failed.2["data"]["first_break"], report["first_break"]);
    let pause = event(&events, "evident.writes.paused");
    assert_eq!(
        (&pause.2["actor"], &pause.2["data"]["reason"]),
        (&json!("oncall"), &json!("incident drill: tampered entries"))
    );
    let repair = event(&events, "evident.repair");
    assert_eq!(
        (
            &repair.2["resource"],
            &repair.2["data"]["restored"],
            &repair.2["data"]["repair_index"]
        ),
        (
            &json!(CLI_LOG),
            &json!([BODY_EDITED, ENVELOPE_EDITED]),
            &json!(130)
        )
    );
    let resume = event(&events, "evident.writes.resumed");
    assert_eq!(resume.2["actor"], "oncall");
    assert!(
        failed.0 < pause.0 && pause.0 < repair.0 && repair.0 < resume.0,
        "{events:#?}"
    );
}

/// `evident verify-export DIR --vkey KEY`: exit status and report.
fn verify_export(dir: &Path, vkey: &str) -> (i32, Value) {
    let r = run::evident(&[
        "verify-export",
        path(dir),
        "--vkey",
        vkey,
        "--format",
        "json",
    ]);
    assert!(r.code == 0 || r.code == 1, "{r:?}");
    (r.code, r.json())
}

/// The signing key is feared leaked during an incident: writes are paused,
/// the key is rotated while the server still runs (on the retired key),
/// the server is restarted on the new key, writes resume, and the log
/// verifies through the transition pinned to the old key or the new one,
/// as stored, as exported, and against the seal made before the rotation.
#[test]
fn the_key_rotation_drill_rotate_while_paused_restart_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let anchors = tmp.path().join("anchors");
    let mut s = Server::start(&data, &[]);
    let old = s.vkey.clone();
    s.tenant("acme");
    let k = s.key("acme", &["append", "read", "verify"]);
    append_batch(&s, &k, 0..20, 0);
    append_batch(&s, &k, 20..40, 20);
    let sealed = cli(&s, &["seal", "--log", CLI_LOG, "--anchors", path(&anchors)]);
    assert_eq!(sealed.code, 0, "{sealed:?}");
    assert_eq!(sealed.json()["sealed"][0]["size"], 40);

    // Contain first.
    let paused = cli(
        &s,
        &[
            "writes",
            "pause",
            "--reason",
            "INC-7 key exposure",
            "--by",
            "oncall",
        ],
    );
    assert_eq!(paused.code, 0, "{paused:?}");
    eventually(LIMIT, "appends refused while paused", || {
        let r = s
            .post(&format!("/v1/logs/{LOG}/entries"))
            .bearer(&k.token)
            .json(&entry(39))
            .send();
        (r.status == 503).then(|| r.assert_error(503, "writes.paused"))
    });

    // Rotate while paused, the server still running on the retired key.
    let rotated = cli(&s, &["keys", "rotate"]);
    assert_eq!(rotated.code, 0, "{rotated:?}");
    let r = rotated.json();
    assert_eq!(r["retired"], old.as_str());
    let new = r["vkey"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    // Both logs with checkpoints (acme/audit and the system log) get a
    // transition checkpoint signed by both keys.
    assert_eq!(r["transition_checkpoints"], 2, "{r}");
    // The running server still answers reads; appends stay refused.
    assert_eq!(s.size(&k.token, LOG), 40);
    assert_eq!(read_entry(&s, &k, 0)["body"]["actor"], "user-0");

    // Restart on the new key: still paused (read before listening).
    let stopped = s.terminate();
    assert!(stopped.success(), "{stopped:?}: {}", s.stderr());
    let s = Server::start(&data, &[]);
    assert_eq!(s.vkey, new);
    let r = s
        .post(&format!("/v1/logs/{LOG}/entries"))
        .bearer(&k.token)
        .json(&entry(40))
        .send();
    r.assert_error(503, "writes.paused");

    // Resume: appends are signed with the new key.
    let resumed = cli(&s, &["writes", "resume", "--by", "oncall"]);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    eventually(LIMIT, "appends accepted after resume", || {
        let r = s
            .post(&format!("/v1/logs/{LOG}/entries"))
            .bearer(&k.token)
            .json(&entry(40))
            .send();
        (r.status == 201).then(|| assert_eq!(r.json()["index"], 40, "{}", r.text()))
    });
    append_batch(&s, &k, 41..60, 41);

    // Valid through the transition, pinned to either key: as stored...
    for vkey in [&old, &new] {
        let (code, report) = verify(&s, &["--vkey", vkey]);
        assert_eq!(code, 0, "--vkey {vkey}: {report:#}");
        assert_eq!(report["total_count"], 60);
    }
    // ... as exported, with no database ...
    let export = tmp.path().join("export");
    let exported = cli(&s, &["export", "--log", CLI_LOG, "--out", path(&export)]);
    assert_eq!(exported.code, 0, "{exported:?}");
    for vkey in [&old, &new] {
        let (code, report) = verify_export(&export, vkey);
        assert_eq!(code, 0, "--vkey {vkey}: {report:#}");
        assert_eq!(report["total_count"], 60, "{report:#}");
    }
    // ... and against the seal made before the rotation and one after.
    let sealed = cli(&s, &["seal", "--log", CLI_LOG, "--anchors", path(&anchors)]);
    assert_eq!(sealed.code, 0, "{sealed:?}");
    assert_eq!(sealed.json()["sealed"][0]["seq"], 1);
    for vkey in [&old, &new] {
        let (code, report) = verify(&s, &["--anchors", path(&anchors), "--vkey", vkey]);
        assert_eq!(code, 0, "--vkey {vkey}: {report:#}");
        assert_eq!(report["anchors"]["seals_checked"], 2, "{report:#}");
    }

    // The system log has the pause and the resume, and verifies too.
    let events = system_events(&s);
    assert_eq!(
        event(&events, "evident.writes.paused").2["data"]["reason"],
        "INC-7 key exposure"
    );
    event(&events, "evident.writes.resumed");
    let sys = cli(&s, &["verify", "--log", "_system/events", "--vkey", &old]);
    assert_eq!(sys.code, 0, "{sys:?}");
}
