//! `evident verify-receipt` driven as a user would: a receipt file, the
//! verifier key on the command line, and the exit status.
#![allow(clippy::cast_possible_truncation, clippy::unwrap_used)]

#[path = "../../core/tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{SampleLog, signer};
use evident_core::entry::{Body, Envelope};
use evident_core::merkle::inclusion_proof;
use evident_core::receipt::{RECEIPT_FORMAT, Receipt, encode_salt};

fn receipt(log: &SampleLog, index: u64) -> Receipt {
    let row = &log.rows[index as usize];
    Receipt {
        format: RECEIPT_FORMAT.into(),
        index,
        leaf_hash: row.leaf,
        envelope: Envelope::parse(&row.envelope).unwrap(),
        body: Some(Body::parse(&row.body).unwrap()),
        salt: Some(encode_salt(&row.salt)),
        checkpoint: String::from_utf8(log.checkpoints.last().unwrap().clone()).unwrap(),
        inclusion_proof: inclusion_proof(index, log.tree.size(), &log.nodes).unwrap(),
    }
}

fn write(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("evident-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

fn evident(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_evident"))
        .args(args)
        .env_remove("EVIDENT_VKEY")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn valid_receipt_exits_0_with_the_facts() {
    let log = SampleLog::batches(2, 20);
    let file = write("ok.json", &receipt(&log, 17).to_json());
    let vkey = log.verifier_key().to_string();
    let (code, out, _) = evident(&[
        "verify-receipt",
        file.to_str().unwrap(),
        "--vkey",
        &vkey,
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["index"], 17);
    assert_eq!(v["checkpoint_size"], 40);
    assert_eq!(v["body_verified"], true);
    assert_eq!(v["origin"], common::ORIGIN);

    let (code, out, _) = evident(&["verify-receipt", file.to_str().unwrap(), "--vkey", &vkey]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("valid: entry 17 of evident.local/acme/audit"),
        "{out}"
    );
}

#[test]
fn tampered_receipt_exits_1_with_its_code() {
    let log = SampleLog::batches(2, 20);
    let mut r = receipt(&log, 3);
    r.body.as_mut().unwrap().outcome = Some("denied".into());
    let file = write("bad.json", &r.to_json());
    let (code, out, _) = evident(&[
        "verify-receipt",
        file.to_str().unwrap(),
        "--vkey",
        &log.verifier_key().to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["error"]["code"], "receipt.body_mismatch");
}

#[test]
fn wrong_key_exits_1() {
    let log = SampleLog::batches(1, 5);
    let file = write("wrongkey.json", &receipt(&log, 0).to_json());
    let other = signer(3, "evident.local").verifier_key().to_string();
    let (code, out, _) = evident(&["verify-receipt", file.to_str().unwrap(), "--vkey", &other]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("note.no_known_signature"), "{out}");
}

#[test]
fn unusable_input_exits_2() {
    let log = SampleLog::batches(1, 5);
    let file = write("fine.json", &receipt(&log, 0).to_json());
    let (code, _, err) = evident(&["verify-receipt", file.to_str().unwrap(), "--vkey", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("key.malformed"), "{err}");
    let (code, _, err) = evident(&[
        "verify-receipt",
        "/nonexistent/receipt.json",
        "--vkey",
        &log.verifier_key().to_string(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("io.read_failed"), "{err}");
}

#[test]
fn help_explains_the_command() {
    let (code, out, _) = evident(&["verify-receipt", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("inclusion proof"), "{out}");
    assert!(out.contains("Exit status"), "{out}");
}
