#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
//! Key rotation with the real binary: `keys rotate`, `keys list`, verify
//! and verify-export across a rotation, and a retired key that signs again.

mod run;
mod server;
#[allow(dead_code)]
mod support;

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use evident_core::checkpoint::{Checkpoint, sign_checkpoint};
use evident_core::note::{NoteSigner, parse_note};
use rusqlite::params;
use support::{
    CHECKPOINT_TRIGGERS, ENTRIES, LOG, Ledger, assert_broken, checkpoints, drop_triggers, evident,
    input_line,
};

fn keys_json(ledger: &Ledger, sub: &str) -> serde_json::Value {
    let run = evident(&[
        "keys",
        sub,
        "--data-dir",
        ledger.data_dir(),
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    run.json()
}

fn key_file(ledger: &Ledger) -> std::path::PathBuf {
    std::path::Path::new(ledger.data_dir()).join("signing-key.pem")
}

/// Rotates; returns the new verifier key.
fn rotate(ledger: &Ledger) -> String {
    let out = keys_json(ledger, "rotate");
    assert_eq!(out["retired"], ledger.vkey.as_str());
    assert_eq!(out["transition_checkpoints"], 1);
    assert_eq!(out["system_event_index"], 0, "{out}");
    out["vkey"].as_str().unwrap().to_owned()
}

/// The entries of `_system/events`, as `evident entries` prints them.
fn system_events(ledger: &Ledger) -> Vec<serde_json::Value> {
    let run = evident(&[
        "entries",
        "--data-dir",
        ledger.data_dir(),
        "--log",
        "_system/events",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    run.json()["entries"].as_array().unwrap().clone()
}

fn append_more(ledger: &Ledger, from: u64, n: u64) {
    let lines: Vec<String> = (from..from + n).map(input_line).collect();
    let out = ledger.append(&lines.join("\n"), Some(10));
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn rotate_then_append_verifies_and_keys_list_shows_ranges() {
    let ledger = Ledger::new();
    let old_pem = std::fs::read(key_file(&ledger)).unwrap();
    let new = rotate(&ledger);
    assert_ne!(new, ledger.vkey);
    // `keys public` prints the new key; the key file holds it; the retired
    // private key is gone.
    assert_eq!(keys_json(&ledger, "public")["vkey"], new.as_str());
    assert_ne!(std::fs::read(key_file(&ledger)).unwrap(), old_pem);
    let leftovers: Vec<_> = std::fs::read_dir(ledger.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("signing-key"))
        .collect();
    assert_eq!(leftovers, ["signing-key.pem"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(key_file(&ledger))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The rotation is in the system log, naming both keys, signed with
    // the new one.
    let events = system_events(&ledger);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["envelope"]["kind"], "evident.key.rotated");
    assert_eq!(events[0]["body"]["data"]["retired"], ledger.vkey.as_str());
    assert_eq!(events[0]["body"]["data"]["vkey"], new.as_str());
    let run = evident(&[
        "verify",
        "--data-dir",
        ledger.data_dir(),
        "--log",
        "_system/events",
        "--vkey",
        &new,
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");

    append_more(&ledger, ENTRIES, 20);
    let (code, r) = ledger.verify();
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["total_count"], ENTRIES + 20);
    // 5 batches, the transition, 2 batches after.
    assert_eq!(r["checkpoints_verified"], 8);

    // Checkpoints 1..=5 by the old key, 6 (the transition, size 100) by
    // both, then the system event's (7) and 8 and 9 by the new key alone.
    let cps = checkpoints(&ledger.db());
    assert_eq!(cps.len(), 9);
    assert_eq!((cps[5].0, cps[5].1), (6, ENTRIES));
    let signers = |note: &str| parse_note(note.as_bytes()).unwrap().1.len();
    assert_eq!(signers(&cps[5].2), 2);
    assert_eq!(signers(&cps[6].2), 1);

    let list = keys_json(&ledger, "list");
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["vkey"], ledger.vkey.as_str());
    assert_eq!(keys[0]["status"], "retired");
    assert_eq!(keys[0]["first_seq"], serde_json::Value::Null);
    assert_eq!(keys[0]["last_seq"], 6);
    assert!(keys[0]["retired_at"].is_string());
    assert_eq!(keys[1]["vkey"], new.as_str());
    assert_eq!(keys[1]["status"], "current");
    assert_eq!(keys[1]["first_seq"], 6);
    assert_eq!(keys[1]["last_seq"], serde_json::Value::Null);

    let text = evident(&["keys", "list", "--data-dir", ledger.data_dir()]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(
        text.stdout.contains("retired  checkpoints 1..=6"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("current  checkpoints 6.."),
        "{}",
        text.stdout
    );

    // Pinned to either key, the linked signatures carry trust across.
    for vkey in [&ledger.vkey, &new] {
        let (code, r) = ledger.verify_with(&["--vkey", vkey]);
        assert_eq!(code, 0, "--vkey {vkey}: {r:#}");
    }
}

#[test]
fn export_after_rotation_verifies_with_the_old_or_the_new_key() {
    let ledger = Ledger::new();
    let new = rotate(&ledger);
    append_more(&ledger, ENTRIES, 20);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("export");
    let run = evident(&[
        "export",
        "--data-dir",
        ledger.data_dir(),
        "--log",
        LOG,
        "--out",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let history: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("key-history.json")).unwrap()).unwrap();
    // Seq 7 is the rotation's system event, in `_system/events`.
    assert_eq!(history["checkpoint_seq"], 9);
    assert_eq!(history["transitions"].as_array().unwrap().len(), 1);
    assert_eq!(history["transitions"][0]["seq"], 6);

    for vkey in [&ledger.vkey, &new] {
        let run = evident(&[
            "verify-export",
            dir.to_str().unwrap(),
            "--vkey",
            vkey,
            "--format",
            "json",
        ]);
        assert_eq!(run.code, 0, "--vkey {vkey}: {run:?}");
        assert_eq!(run.json()["checkpoints_verified"], 2);
    }
    // A key unrelated to either is refused.
    let stranger = NoteSigner::new("evident.local", SigningKey::from_bytes(&[0x42; 32]))
        .unwrap()
        .verifier_key()
        .to_string();
    let run = evident(&[
        "verify-export",
        dir.to_str().unwrap(),
        "--vkey",
        &stranger,
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.json()["first_break"]["reason"],
        "checkpoint.bad_signature"
    );

    // Without the transition, the old key cannot reach the new one.
    let mut h = history.clone();
    h["transitions"] = serde_json::json!([]);
    std::fs::write(dir.join("key-history.json"), h.to_string()).unwrap();
    let run = evident(&[
        "verify-export",
        dir.to_str().unwrap(),
        "--vkey",
        &ledger.vkey,
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.json()["first_break"]["reason"],
        "checkpoint.bad_signature"
    );
}

#[test]
fn checkpoint_signed_by_the_retired_key_after_retirement_is_a_signature_failure() {
    let ledger = Ledger::new();
    // The attacker kept a copy of the old private key.
    let stolen =
        SigningKey::from_pkcs8_pem(&std::fs::read_to_string(key_file(&ledger)).unwrap()).unwrap();
    let stolen = NoteSigner::new("evident.local", stolen).unwrap();
    rotate(&ledger);
    append_more(&ledger, ENTRIES, 20);

    // Re-sign the latest checkpoint (seq 8, size 120) with the retired key
    // alone: same size and root, a signature that verifies.
    let db = ledger.db();
    drop_triggers(&db, &CHECKPOINT_TRIGGERS);
    let (seq, size, note) = checkpoints(&db).pop().unwrap();
    let (text, _) = parse_note(note.as_bytes()).unwrap();
    let cp = Checkpoint::parse(&text).unwrap();
    assert_eq!(cp.size, size);
    let forged = sign_checkpoint(&cp, &[&stolen]).unwrap();
    db.execute(
        "UPDATE checkpoints SET note = ?1 WHERE seq = ?2",
        params![forged, seq],
    )
    .unwrap();

    // Checkpoint 8 alone vouched for entries 110..120.
    let (code, r) = ledger.verify();
    assert_broken(
        code,
        &r,
        110,
        "checkpoint.bad_signature",
        "signature_failures",
    );
    assert_eq!(r["signature_failures"].as_array().unwrap().len(), 1);
    let detail = r["signature_failures"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("may sign only checkpoints ..=6"),
        "{detail}"
    );
    // Pinned to the retired key it is refused just the same.
    let (code, r) = ledger.verify_with(&["--vkey", &ledger.vkey]);
    assert_broken(
        code,
        &r,
        110,
        "checkpoint.bad_signature",
        "signature_failures",
    );
}

#[test]
fn an_append_with_the_retired_key_is_refused() {
    let ledger = Ledger::new();
    let old = std::path::Path::new(ledger.data_dir()).join("old-key.pem");
    std::fs::copy(key_file(&ledger), &old).unwrap();
    rotate(&ledger);
    let input = std::path::Path::new(ledger.data_dir()).join("more.ndjson");
    std::fs::write(&input, format!("{}\n", input_line(ENTRIES))).unwrap();
    let run = evident(&[
        "append",
        "--data-dir",
        ledger.data_dir(),
        "--key-file",
        old.to_str().unwrap(),
        "--log",
        LOG,
        input.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.json()["error"]["code"], "key.retired");
    // The five batches, the transition and the rotation's system event.
    assert_eq!(checkpoints(&ledger.db()).len(), 7);
}

#[test]
fn a_server_started_after_a_rotation_signs_with_the_new_key() {
    let ledger = Ledger::new();
    let dir = std::path::PathBuf::from(ledger.data_dir());
    // A server running during the rotation refuses to sign with the
    // retired key.
    let s = server::Server::start(&dir, &[]);
    assert_eq!(s.vkey, ledger.vkey);
    s.tenant("acme");
    let k = s.key("acme", &["append", "read"]);
    let post = |s: &server::Server, i: u64| {
        s.post("/v1/logs/audit/entries")
            .bearer(&k.token)
            .json(&serde_json::from_str(&input_line(i)).unwrap())
            .send()
    };
    assert_eq!(post(&s, ENTRIES).status, 201, "before the rotation");
    let new = keys_json(&ledger, "rotate")["vkey"]
        .as_str()
        .unwrap()
        .to_owned();
    post(&s, ENTRIES + 1).assert_error(503, "key.retired");
    drop(s);

    let s = server::Server::start(&dir, &[]);
    assert_eq!(s.vkey, new);
    let r = post(&s, ENTRIES + 1);
    assert_eq!(r.status, 201, "{}", r.text());
    drop(s);
    for vkey in [&ledger.vkey, &new] {
        let (code, r) = ledger.verify_with(&["--vkey", vkey]);
        assert_eq!(code, 0, "--vkey {vkey}: {r:#}");
        assert_eq!(r["total_count"], ENTRIES + 2);
    }
}
