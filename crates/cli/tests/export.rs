//! `evident export` and `evident verify-export`, driven as an operator and
//! an auditor would: the real binary on a fresh data directory, exports on
//! disk, and an independent verifier of the C2SP formats.
//!
//! The independent verifier is `tests/interop/go/verify_export.go`, built
//! against Go's `golang.org/x/mod/sumdb/{note,tlog}` from Debian's
//! `golang-go` and `golang-golang-x-mod-dev`, offline in GOPATH mode:
//!
//! ```text
//! GO111MODULE=off GOPATH=/usr/share/gocode go build crates/cli/tests/interop/go/verify_export.go
//! ```
//!
//! Without the toolchain the Go checks print `skipped: Go toolchain not
//! installed` and the rest of each test still runs; with
//! `EVIDENT_REQUIRE_INTEROP=1` (set by `scripts/test`) a missing toolchain
//! fails the test instead.
//!
//! Every tampering case checks that `verify-export` finds the problem at
//! the exact index with the exact reason, and that Go rejects the export
//! too where the change is one the C2SP formats can see.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

#[path = "../../core/tests/interop/go_build.rs"]
mod go_build;
mod run;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use run::{Run, evident};
use serde_json::{Value, json};

const LOG: &str = "acme/audit";
/// Size of the second export: a few thousand entries, with partial tiles
/// at both levels (`tile/0/015.p/160`, `tile/1/000.p/15`). 70,000 would
/// also give a full level-1 tile, but appending that many takes about 15 s
/// in a debug build; the tile streaming past 65,536 is covered by the
/// store's own tests, and Go checks a 70,000-entry tree in the core's
/// interop tests.
const BIG: u64 = 4_000;

// ---------------------------------------------------------------------------
// Running the binary.

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// One NDJSON line per entry `first..first+count`: varied shapes, with a
/// producer sequence, and a `parent` now and then.
fn ndjson(first: u64, count: u64) -> String {
    let mut out = String::new();
    for i in first..first + count {
        let parent = if i > 0 && i % 9 == 0 {
            format!(r#","parent":{}"#, i - 3)
        } else {
            String::new()
        };
        writeln!(
            out,
            r#"{{"kind":"user.login","actor":"user-{i}","action":"login","resource":"app/{}","outcome":"{}","source":{{"id":"gateway","seq":{i}}},"data":{{"i":{i},"pad":"{}"}}{parent}}}"#,
            i % 5,
            if i % 4 == 0 { "failure" } else { "success" },
            "z".repeat((i % 11) as usize),
        )
        .unwrap();
    }
    out
}

/// A data directory with one log, filled through `evident append`.
struct Data {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    dir: PathBuf,
    vkey: String,
    size: u64,
}

impl Data {
    fn new() -> Data {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        let dir = root.join("data");
        let init = evident(&["init", "--data-dir", s(&dir), "--format", "json"]);
        assert_eq!(init.code, 0, "{}", init.stderr);
        let vkey = init.json()["vkey"].as_str().unwrap().to_owned();
        Data {
            _tmp: tmp,
            root,
            dir,
            vkey,
            size: 0,
        }
    }

    /// Appends `count` entries in batches of `batch`.
    fn append(&mut self, count: u64, batch: u64) {
        let input = self.root.join(format!("in-{}.ndjson", self.size));
        fs::write(&input, ndjson(self.size, count)).unwrap();
        let r = evident(&[
            "append",
            "--data-dir",
            s(&self.dir),
            "--log",
            LOG,
            "--batch-size",
            &batch.to_string(),
            "--format",
            "json",
            s(&input),
        ]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        self.size += count;
        assert_eq!(r.json()["size"], self.size);
    }

    /// Exports into `root/name` and returns the directory and the summary.
    fn export(&self, name: &str) -> (PathBuf, Value) {
        let out = self.root.join(name);
        let r = evident(&[
            "export",
            "--data-dir",
            s(&self.dir),
            "--log",
            LOG,
            "--out",
            s(&out),
            "--format",
            "json",
        ]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        (out, r.json())
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.join("evident.db")).unwrap()
    }
}

/// A log of 600 entries appended in three batches, and its export: two
/// level-0 full tiles, a partial one of 88, and `tile/1/000.p/2`.
fn exported600() -> (Data, PathBuf) {
    let mut d = Data::new();
    d.append(250, 250);
    d.append(250, 250);
    d.append(100, 100);
    let (dir, _) = d.export("export-600");
    (d, dir)
}

fn verify_export(dir: &Path, vkey: Option<&str>) -> Run {
    let mut args = vec!["verify-export", s(dir), "--format", "json"];
    if let Some(k) = vkey {
        args.extend(["--vkey", k]);
    }
    evident(&args)
}

fn first_break(r: &Run) -> (u64, String) {
    let v = r.json();
    let b = &v["first_break"];
    assert!(b.is_object(), "no first_break:\n{}", r.stdout);
    (
        b["index"].as_u64().unwrap(),
        b["reason"].as_str().unwrap().to_owned(),
    )
}

fn flip(path: &Path, offset: usize) {
    let mut b = fs::read(path).unwrap();
    b[offset] ^= 0x01;
    fs::write(path, b).unwrap();
}

// ---------------------------------------------------------------------------
// The Go verifier.

/// The built Go verifier, or `None` (after saying so) when the toolchain
/// is missing and interop is not required.
fn go() -> Option<&'static Path> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    go_build::or_skip(BIN.get_or_init(|| {
        go_build::build(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/go/verify_export.go"),
            &Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-export"),
            "verify_export",
        )
    }))
}

/// Runs the Go verifier on `dir` (and `old`, for a consistency proof).
fn run_go(bin: &Path, dir: &Path, vkey: &str, old: Option<&Path>) -> Run {
    let mut cmd = Command::new(bin);
    if let Some(old) = old {
        cmd.arg("-old").arg(old);
    }
    let out = cmd.arg(dir).arg(vkey).output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Go must reject `dir`, saying each of `needles`.
fn go_rejects(dir: &Path, vkey: &str, needles: &[&str]) {
    let Some(bin) = go() else { return };
    let r = run_go(bin, dir, vkey, None);
    assert_eq!(
        r.code, 1,
        "Go accepted a bad export:\n{}{}",
        r.stdout, r.stderr
    );
    for n in needles {
        assert!(r.stdout.contains(n), "Go should say {n:?}:\n{}", r.stdout);
    }
}

// ---------------------------------------------------------------------------
// Exports that verify.

#[test]
fn exports_verify_here_and_in_go_with_a_consistency_proof() {
    let (mut d, small) = exported600();
    let summary = evident(&[
        "export",
        "--data-dir",
        s(&d.dir),
        "--log",
        LOG,
        "--out",
        s(&d.root.join("again")),
        "--format",
        "json",
    ])
    .json();
    let checkpoint = evident(&["checkpoint", "--data-dir", s(&d.dir), "--log", LOG]);
    assert_eq!(
        summary,
        json!({
            "log": LOG,
            "origin": "evident.local/acme/audit",
            "size": 600,
            "root": checkpoint.stdout.lines().nth(2).unwrap(),
            "dir": s(&d.root.join("again")),
            "tiles": 4,
            "bundles": 3,
            "bodies": 600,
            "entries": 600,
            "complete": true,
            "missing_from": null,
            "keys": 1,
            "tree_matches_checkpoint": true,
        })
    );
    // The layout, file by file.
    let mut files = Vec::new();
    for e in walk(&small) {
        files.push(e.strip_prefix(&small).unwrap().to_str().unwrap().to_owned());
    }
    files.sort();
    assert_eq!(
        files,
        [
            "bodies.ndjson",
            "checkpoint",
            "key-history.json",
            "keys",
            "tile/0/000",
            "tile/0/001",
            "tile/0/002.p/88",
            "tile/1/000.p/2",
            "tile/entries/000",
            "tile/entries/001",
            "tile/entries/002.p/88",
        ]
    );
    assert_eq!(
        fs::read_to_string(small.join("checkpoint")).unwrap(),
        checkpoint.stdout
    );
    assert_eq!(
        fs::read_to_string(small.join("keys")).unwrap(),
        format!("{}\n", d.vkey)
    );
    let bodies = fs::read_to_string(small.join("bodies.ndjson")).unwrap();
    assert_eq!(bodies.lines().count(), 600);
    let line7: Value = serde_json::from_str(bodies.lines().nth(7).unwrap()).unwrap();
    assert_eq!(line7["index"], 7);
    assert_eq!(line7["body"]["actor"], "user-7");
    assert_eq!(line7["salt"].as_str().unwrap().len(), 24);

    // The log grows, in batches; a second export.
    d.append(BIG - 600 - 1400, 1000);
    d.append(1400, 700);
    let (big, summary) = d.export("export-big");
    assert_eq!(summary["size"], BIG);
    assert_eq!(summary["complete"], true);
    assert!(big.join("tile/0/015.p/160").is_file());
    assert!(big.join("tile/1/000.p/15").is_file());

    for (dir, size) in [(&small, 600), (&big, BIG)] {
        let r = verify_export(dir, Some(&d.vkey));
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        let v = r.json();
        assert_eq!(v["valid"], true);
        assert_eq!(v["total_count"], size);
        assert_eq!(v["verified_count"], size);
        assert_eq!(v["checkpoints_verified"], 1);
        assert_eq!(v["tile_mismatches"], json!([]));
        assert_eq!(v["trusted_keys"], "vkey");
        assert_eq!(v["first_break"], Value::Null);
    }
    // Trusting the export's keys file, and in text.
    let r = evident(&["verify-export", s(&small)]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .starts_with(&format!("{}: valid — 600 entries", small.display())),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("pass --vkey"), "{}", r.stdout);

    let Some(bin) = go() else { return };
    let r = run_go(bin, &small, &d.vkey, None);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout.trim(),
        format!(
            "ok size=600 root={} tiles=4 bundles=3",
            checkpoint.stdout.lines().nth(2).unwrap()
        )
    );
    let r = run_go(bin, &big, &d.vkey, Some(&small));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.starts_with(&format!(
            "ok size={BIG} root={} ",
            summary["root"].as_str().unwrap()
        )) && r.stdout.trim_end().ends_with("consistent_from=600"),
        "{}",
        r.stdout
    );
    // The check can fail: swapped, the "older" export is the larger one.
    let r = run_go(bin, &small, &d.vkey, Some(&big));
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("older export has size 4000, more than 600"),
        "{}",
        r.stdout
    );
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Tampered exports.

/// Offset in a bundle of entry `j`'s bytes, and those bytes' length.
fn entry_in_bundle(bundle: &[u8], j: usize) -> (usize, usize) {
    let mut at = 0;
    for _ in 0..j {
        at += 2 + usize::from(u16::from_be_bytes([bundle[at], bundle[at + 1]]));
    }
    let len = usize::from(u16::from_be_bytes([bundle[at], bundle[at + 1]]));
    (at + 2, len)
}

#[test]
fn flipped_byte_in_an_entry_bundle_is_found_at_its_entry() {
    let (d, dir) = exported600();
    // Entry 300 is entry 44 of bundle 1; change its kind from user.login
    // to user.logim: still a canonical envelope, another hash.
    let path = dir.join("tile/entries/001");
    let bundle = fs::read(&path).unwrap();
    let (at, len) = entry_in_bundle(&bundle, 44);
    let entry = &bundle[at..at + len];
    assert!(String::from_utf8_lossy(entry).contains(r#""index":300,"#));
    let kind = String::from_utf8_lossy(entry).find("user.login").unwrap();
    flip(&path, at + kind + "user.login".len() - 1);

    let r = verify_export(&dir, Some(&d.vkey));
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(first_break(&r), (300, "entry.leaf_hash_mismatch".into()));
    let v = r.json();
    assert_eq!(v["valid"], false);
    let reasons: Vec<(u64, &str)> = v["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["index"].as_u64().unwrap(), x["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            (300, "entry.leaf_hash_mismatch"),
            (300, "checkpoint.root_mismatch"),
            (301, "chain.prev_mismatch"),
        ]
    );
    // The tiles rebuilt from the bundles differ from the files.
    assert_eq!(
        v["tile_mismatches"],
        json!([
            {"path": "tile/0/001", "problem": "differs"},
            {"path": "tile/1/000.p/2", "problem": "differs"},
        ])
    );
    go_rejects(&dir, &d.vkey, &["entry 300: record hash"]);
}

#[test]
fn flipped_byte_in_a_level1_tile_is_a_tile_mismatch() {
    let (d, dir) = exported600();
    flip(&dir.join("tile/1/000.p/2"), 40);
    let r = verify_export(&dir, Some(&d.vkey));
    assert_eq!(r.code, 1, "{}", r.stdout);
    let v = r.json();
    assert_eq!(v["valid"], false);
    // The entries and the signed root are fine: only the tile is wrong.
    assert_eq!(v["first_break"], Value::Null);
    assert_eq!(v["violation_count"], 0);
    assert_eq!(
        v["tile_mismatches"],
        json!([{"path": "tile/1/000.p/2", "problem": "differs"}])
    );
    assert_eq!(v["tile_mismatch_count"], 1);
    let text = evident(&["verify-export", s(&dir), "--vkey", &d.vkey]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout
            .contains("INVALID — the entries verify, but 1 tile files do not match")
            && text.stdout.contains("tile/1/000.p/2"),
        "{}",
        text.stdout
    );
    go_rejects(&dir, &d.vkey, &["tile tile/1/000.p/2 differs"]);
}

#[test]
fn missing_and_extra_tile_files_are_reported() {
    let (d, dir) = exported600();
    fs::remove_file(dir.join("tile/0/002.p/88")).unwrap();
    fs::write(dir.join("tile/0/002.p/87"), [0u8; 87 * 32]).unwrap();
    fs::write(dir.join("tile/notes.txt"), "hello").unwrap();
    let r = verify_export(&dir, Some(&d.vkey));
    assert_eq!(r.code, 1, "{}", r.stdout);
    let v = r.json();
    assert_eq!(
        v["tile_mismatches"],
        json!([
            {"path": "tile/0/002.p/88", "problem": "missing"},
            {"path": "tile/0/002.p/87", "problem": "unexpected"},
            {"path": "tile/notes.txt", "problem": "unexpected"},
        ])
    );
    // The entries still verify against the signature; without the level-0
    // tile there is simply no stored hash to compare with.
    assert_eq!(v["violation_count"], 0);
    go_rejects(
        &dir,
        &d.vkey,
        &[
            "unexpected file tile/0/002.p/87",
            "unexpected file tile/notes.txt",
        ],
    );
}

#[test]
fn a_foreign_key_is_a_bad_signature() {
    let (d, dir) = exported600();
    let other = Data::new();
    assert_ne!(other.vkey, d.vkey);
    let r = verify_export(&dir, Some(&other.vkey));
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(first_break(&r), (0, "checkpoint.bad_signature".into()));
    assert_eq!(r.json()["signature_failures"].as_array().unwrap().len(), 1);
    // The same when the export's own keys file is swapped.
    fs::write(dir.join("keys"), format!("{}\n", other.vkey)).unwrap();
    let r = verify_export(&dir, None);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(first_break(&r), (0, "checkpoint.bad_signature".into()));
    go_rejects(&dir, &other.vkey, &["checkpoint signature"]);
}

#[test]
fn an_edited_or_removed_body_is_found_at_its_entry() {
    let (d, dir) = exported600();
    let path = dir.join("bodies.ndjson");
    let text = fs::read_to_string(&path).unwrap();
    let edited = text.replace(r#""actor":"user-123","#, r#""actor":"mallory","#);
    assert_ne!(edited, text);
    fs::write(&path, &edited).unwrap();
    let r = verify_export(&dir, Some(&d.vkey));
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(first_break(&r), (123, "body.digest_mismatch".into()));
    assert_eq!(r.json()["violation_count"], 1);

    // A line removed: the body is missing, and no redaction covers it.
    let removed: String = text
        .lines()
        .filter(|l| !l.starts_with(r#"{"index":456,"#))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&path, removed).unwrap();
    let r = verify_export(&dir, Some(&d.vkey));
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(first_break(&r), (456, "body.missing".into()));
}

#[test]
fn unusable_exports_exit_2() {
    let (d, dir) = exported600();
    let check = |dir: &Path, vkey: Option<&str>, code: &str| {
        let r = verify_export(dir, vkey);
        assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
        assert_eq!(r.json()["error"]["code"], code, "{}", r.stdout);
    };
    check(&dir, Some("not-a-key"), "key.malformed");
    check(&d.root.join("nowhere"), Some(&d.vkey), "export.unreadable");

    // A bodies line that is not JSON.
    let bodies = dir.join("bodies.ndjson");
    let good = fs::read(&bodies).unwrap();
    fs::write(&bodies, b"{\"index\":0,\"salt\n").unwrap();
    check(&dir, Some(&d.vkey), "export.bad_bodies");
    fs::remove_file(&bodies).unwrap();
    check(&dir, Some(&d.vkey), "export.missing_file");
    fs::write(&bodies, good).unwrap();

    fs::remove_file(dir.join("keys")).unwrap();
    check(&dir, None, "export.missing_file");
    fs::remove_file(dir.join("checkpoint")).unwrap();
    check(&dir, Some(&d.vkey), "export.missing_file");
    let text = evident(&["verify-export", s(&dir), "--vkey", &d.vkey]);
    assert_eq!(text.code, 2);
    assert!(
        text.stderr.contains("has no checkpoint file"),
        "{}",
        text.stderr
    );
}

// ---------------------------------------------------------------------------
// A damaged store, exported as it is.

/// Runs SQL on the database with the append-only triggers out of the way,
/// as an attacker with write access to the file could.
fn tamper(d: &Data, sql: &str) {
    let db = d.db();
    db.execute_batch("DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete;")
        .unwrap();
    db.execute_batch(sql).unwrap();
}

#[test]
fn an_edited_row_is_exported_as_stored_and_found() {
    let mut d = Data::new();
    d.append(300, 100);
    // Entry 10's envelope, kind changed in place (same length).
    tamper(
        &d,
        "UPDATE entries SET envelope = CAST(replace(CAST(envelope AS TEXT), 'user.login', 'user.logim') AS BLOB) WHERE idx = 10;",
    );
    let (dir, summary) = d.export("export");
    assert_eq!(summary["complete"], true);
    assert_eq!(summary["tree_matches_checkpoint"], false);
    let r = verify_export(&dir, Some(&d.vkey));
    assert_eq!(r.code, 1, "{}", r.stdout);
    // The tiles were made from the edited bytes, so the edit shows where
    // the next entry's `prev` no longer matches, inside the signed range.
    assert_eq!(first_break(&r), (11, "chain.prev_mismatch".into()));
    let v = r.json();
    assert_eq!(
        v["checkpoint_mismatches"][0]["reason"],
        "checkpoint.root_mismatch"
    );
    assert_eq!(v["tile_mismatches"], json!([]));
    go_rejects(&dir, &d.vkey, &["tree hash from tiles"]);
}

#[test]
fn a_deleted_row_ends_the_export_and_is_reported() {
    let mut d = Data::new();
    d.append(600, 200);
    tamper(&d, "DELETE FROM entries WHERE idx = 300;");
    let (dir, summary) = d.export("export");
    assert_eq!(summary["complete"], false);
    assert_eq!(summary["missing_from"], 300);
    assert_eq!(summary["entries"], 300);
    assert_eq!(summary["bundles"], 2);
    assert_eq!(summary["bodies"], 300);
    assert_eq!(summary["size"], 600);
    assert!(dir.join("tile/entries/001.p/44").is_file());

    let r = verify_export(&dir, Some(&d.vkey));
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(first_break(&r), (300, "gap.truncated".into()));
    let v = r.json();
    assert_eq!(v["entries_read"], 300);
    assert_eq!(v["rows_checked"], 300);
    // The signed tree's tiles past the gap are missing; the prefix's
    // partial tiles stand where they should not.
    let mismatches = v["tile_mismatches"].as_array().unwrap();
    for want in [
        json!({"path": "tile/entries/001", "problem": "missing"}),
        json!({"path": "tile/entries/002.p/88", "problem": "missing"}),
        json!({"path": "tile/0/002.p/88", "problem": "missing"}),
        json!({"path": "tile/entries/001.p/44", "problem": "unexpected"}),
    ] {
        assert!(mismatches.contains(&want), "{want} not in {mismatches:?}");
    }
    go_rejects(&dir, &d.vkey, &["tile/entries/001"]);
}

// ---------------------------------------------------------------------------
// Refusals and help.

#[test]
fn export_refuses_what_it_cannot_do_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let nodata = tmp.path().join("nodata");
    let r = evident(&[
        "export",
        "--data-dir",
        s(&nodata),
        "--log",
        LOG,
        "--out",
        s(&tmp.path().join("x")),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["error"]["code"], "store.not_initialized");
    assert!(!tmp.path().join("x").exists());

    let (d, _) = exported600();
    let export_to = |out: &Path, log: &str| {
        evident(&[
            "export",
            "--data-dir",
            s(&d.dir),
            "--log",
            log,
            "--out",
            s(out),
            "--format",
            "json",
        ])
    };
    let r = export_to(&d.root.join("x"), "acme/other");
    assert_eq!(r.json()["error"]["code"], "log.not_found");

    let busy = d.root.join("busy");
    fs::create_dir(&busy).unwrap();
    fs::write(busy.join("old-file"), "keep me").unwrap();
    let r = export_to(&busy, LOG);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["error"]["code"], "export.out_not_empty");
    assert_eq!(fs::read_dir(&busy).unwrap().count(), 1);
    // No staging directory left behind.
    let stray: Vec<_> = fs::read_dir(&d.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert_eq!(stray, Vec::<String>::new());

    // An empty directory is fine, and replaced by the export.
    let empty = d.root.join("empty");
    fs::create_dir(&empty).unwrap();
    let r = export_to(&empty, LOG);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(empty.join("checkpoint").is_file());
}

#[test]
fn help_explains_both_commands() {
    let r = evident(&["export", "--help"]);
    assert_eq!(r.code, 0);
    for needle in ["tlog-tiles", "bodies.ndjson", "--out", "missing index"] {
        assert!(r.stdout.contains(needle), "{needle}: {}", r.stdout);
    }
    let r = evident(&["verify-export", "--help"]);
    assert_eq!(r.code, 0);
    for needle in ["--vkey", "independent", "tile_mismatches", "Exit status"] {
        assert!(r.stdout.contains(needle), "{needle}: {}", r.stdout);
    }
}
