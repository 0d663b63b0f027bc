//! The tlog-tiles read API of `evident serve`, checked over HTTP by an
//! implementation that shares no code with Evident:
//! `tests/interop/go/verify_export.go`, built against Go's
//! `golang.org/x/mod/sumdb/{note,tlog}` (see `tests/export.rs` for the
//! toolchain). Given the log's URL and a bearer token, it fetches the
//! checkpoint and verifies its signature with the verifier key alone, reads
//! the tree hash through `tlog.TileHashReader`, checks every entry bundle
//! against the level-0 tiles, rebuilds every tile from the bundles, asks
//! for the tile one wider than each level's last (404), and checks the
//! server's consistency proof from an older checkpoint with
//! `tlog.CheckTree`, comparing it with `tlog.ProveTree`'s.
//!
//! Sizes: 600 (partial tiles at levels 0 and 1, two subtrees sharing the
//! level-1 tile: the case Go's `TileHashReader` does not fully
//! authenticate) and then 70,000 (a full level-1 tile, partial tiles at
//! levels 0, 1 and 2), appended in requests of up to 10,000 entries.
//!
//! Without Go the test says `skipped` and passes, unless
//! `EVIDENT_REQUIRE_INTEROP=1`.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

#[path = "../../core/tests/interop/go_build.rs"]
mod go_build;
mod run;
mod server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::json;
use server::{Key, Server};

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

/// Runs the Go verifier on the served log; (exit code, stdout).
fn run_go(bin: &Path, url: &str, token: &str, vkey: &str, old: Option<&Path>) -> (i32, String) {
    let mut cmd = Command::new(bin);
    cmd.env("EVIDENT_TOKEN", token);
    if let Some(old) = old {
        cmd.arg("-old-checkpoint").arg(old);
    }
    let out = cmd.arg(url).arg(vkey).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    (out.status.code().unwrap(), format!("{stdout}{stderr}"))
}

/// Appends entries `from..to` in requests of at most 10,000.
fn grow(s: &Server, k: &Key, from: u64, to: u64) {
    let mut at = from;
    while at < to {
        let end = (at + 10_000).min(to);
        let body = json!({"entries": (at..end).map(|i| json!({
            "kind": "file.read",
            "actor": format!("svc-{}", i % 13),
            "resource": format!("f/{i}"),
            "source": {"id": "svc", "seq": i + 1},
        })).collect::<Vec<_>>()});
        let r = s
            .post("/v1/logs/audit/entries")
            .bearer(&k.token)
            .json(&body)
            .send();
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.json()["size"], end);
        at = end;
    }
}

fn checkpoint(s: &Server, k: &Key) -> String {
    let r = s.get("/v1/logs/audit/checkpoint").bearer(&k.token).send();
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

#[test]
fn go_checks_served_tiles_checkpoints_and_a_consistency_proof() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start(&tmp.path().join("data"), &[]);
    s.tenant("acme");
    let k = s.key("acme", &["append", "read"]);
    let url = format!("http://{}/v1/logs/audit", s.addr);
    let bin = go();

    grow(&s, &k, 0, 250);
    grow(&s, &k, 250, 500);
    grow(&s, &k, 500, 600);
    let note600 = checkpoint(&s, &k);
    let old = tmp.path().join("checkpoint-600");
    std::fs::write(&old, &note600).unwrap();
    if let Some(bin) = bin {
        let (code, out) = run_go(bin, &url, &k.token, &s.vkey, None);
        assert_eq!(code, 0, "{out}");
        assert_eq!(
            out.trim(),
            format!(
                "ok size=600 root={} tiles=4 bundles=3",
                note600.lines().nth(2).unwrap()
            )
        );
    }

    grow(&s, &k, 600, 70_000);
    let note = checkpoint(&s, &k);
    assert_eq!(note.lines().nth(1), Some("70000"));
    let Some(bin) = bin else { return };
    // Level 0: 273 full tiles and 273.p/112; level 1: 000 and 001.p/17;
    // level 2: 000.p/1. 274 bundles.
    let (code, out) = run_go(bin, &url, &k.token, &s.vkey, Some(&old));
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.trim(),
        format!(
            "ok size=70000 root={} tiles=277 bundles=274 consistent_from=600",
            note.lines().nth(2).unwrap()
        )
    );

    // The checks can fail. Another instance's key: the signature is refused.
    let init = run::evident(&[
        "init",
        "--data-dir",
        tmp.path().join("other").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(init.code, 0, "{init:?}");
    let other = init.json()["vkey"].as_str().unwrap().to_owned();
    assert_ne!(other, s.vkey);
    let (code, out) = run_go(bin, &url, &k.token, &other, None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("checkpoint signature"), "{out}");
    // One hash changed in a full level-0 tile the tree hash does not read
    // (tile/0/001, entry 300): the bundle check and the rebuild find it.
    let db = rusqlite::Connection::open(s.dir.join("evident.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
    let which = "level = 0 AND idx = 1 \
                 AND log_id = (SELECT id FROM logs WHERE tenant = 'acme' AND name = 'audit')";
    let mut tile: Vec<u8> = db
        .query_row(&format!("SELECT data FROM tiles WHERE {which}"), [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(tile.len(), 256 * 32);
    tile[44 * 32] ^= 0x01;
    let n = db
        .execute(
            &format!("UPDATE tiles SET data = ?1 WHERE {which}"),
            [&tile],
        )
        .unwrap();
    assert_eq!(n, 1);
    let (code, out) = run_go(bin, &url, &k.token, &s.vkey, None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entry 300: record hash"), "{out}");
    assert!(
        out.contains("tile tile/0/001 differs from the tile rebuilt"),
        "{out}"
    );
}
