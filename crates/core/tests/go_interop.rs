//! Interoperability with an independent implementation: Go's
//! `golang.org/x/mod/sumdb/note` and `golang.org/x/mod/sumdb/tlog`.
//!
//! Each test builds a real log through this crate's API (parsed client
//! entries, sealed with a chained `prev`, RFC 6962 tree, C2SP tiles and entry
//! bundles, a checkpoint signed as a C2SP note), writes it out as a
//! tlog-tiles directory and runs `tests/interop/go/verify_tiles.go` on it.
//! Untouched logs must be accepted; tampered ones (a flipped byte in a hash
//! tile or an entry bundle, a foreign signing key, a wrong signed root, a
//! missing partial tile, a stray `.p/0` file, a wrong old root) must be
//! rejected with the matching reason.
//!
//! The Go program is built once per test run, offline, from Debian's
//! packages in GOPATH mode:
//!
//! ```text
//! apt-get install golang-go golang-golang-x-mod-dev
//! GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=<dir> \
//!     go build -o verify_tiles crates/core/tests/interop/go/verify_tiles.go
//! ```
//!
//! When `go` or `/usr/share/gocode/src/golang.org/x/mod` is missing, each
//! test prints `skipped: Go toolchain not installed` to stderr and passes,
//! unless `EVIDENT_REQUIRE_INTEROP=1` is set, in which case it fails and
//! says what to install.
#![allow(clippy::unwrap_used)]

#[path = "interop/go_build.rs"]
mod go_build;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use ed25519_dalek::SigningKey;
use evident_core::checkpoint::{Checkpoint, sign_checkpoint};
use evident_core::entry::{Limits, SALT_SIZE, format_ts, genesis_prev, parse_entry};
use evident_core::hash::{Hash, leaf_hash};
use evident_core::merkle::{CompactTree, MemoryNodes, root_at};
use evident_core::note::NoteSigner;
use evident_core::tile::{
    TILE_WIDTH, TileId, encode_bundle, entry_bundles_for_size, hash_tiles_for_size, tile_data,
};

const ORIGIN: &str = "interop.example/acme/audit";
/// Largest log the tests use; smaller logs are its prefixes.
const MAX_SIZE: u64 = 70_000;

// ---------------------------------------------------------------------------
// The Go verifier.

/// The built Go program, or `None` when the toolchain is missing and the
/// tests may be skipped.
fn go_verifier() -> Option<&'static Path> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    go_build::or_skip(BIN.get_or_init(|| {
        go_build::build(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/go/verify_tiles.go"),
            &Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-interop"),
            "verify_tiles",
        )
    }))
}

/// Exit code and stdout of one run of the verifier.
struct GoRun {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_go(bin: &Path, dir: &Path, vkey: &str, old: Option<(u64, Hash)>) -> GoRun {
    let mut cmd = Command::new(bin);
    cmd.arg(dir).arg(vkey);
    if let Some((size, root)) = old {
        cmd.arg(size.to_string()).arg(root.to_base64());
    }
    let out = cmd.output().unwrap();
    GoRun {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl GoRun {
    fn assert_ok(&self, size: u64, root: Hash) {
        let tiles = hash_tiles_for_size(size).count();
        let want = format!("ok size={size} root={} tiles={tiles} ", root.to_base64());
        assert!(
            self.code == Some(0)
                && self.stdout.starts_with(&want)
                && self.stdout.lines().count() == 1,
            "Go rejected our log of size {size} (exit {:?}), want a line starting {want:?}:\n{}{}",
            self.code,
            self.stdout,
            self.stderr
        );
    }

    fn assert_fails(&self, needles: &[&str]) {
        assert_eq!(
            self.code,
            Some(1),
            "Go should have rejected this log:\n{}{}",
            self.stdout,
            self.stderr
        );
        for n in needles {
            assert!(
                self.stdout.contains(n),
                "Go's failure should mention {n:?}:\n{}{}",
                self.stdout,
                self.stderr
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Logs built through our API.

/// Entries 0..MAX_SIZE of one deterministic log: envelope bytes and leaf
/// hashes. A log of size n is the first n of them.
struct Entries {
    envelopes: Vec<Vec<u8>>,
    leaves: Vec<Hash>,
}

fn entries() -> &'static Entries {
    static E: OnceLock<Entries> = OnceLock::new();
    E.get_or_init(|| make_entries(MAX_SIZE))
}

fn make_entries(n: u64) -> Entries {
    let limits = Limits::default();
    let mut prev = genesis_prev(ORIGIN);
    let mut envelopes = Vec::new();
    let mut leaves = Vec::new();
    for i in 0..n {
        // Varying shapes and lengths, including entries with a parent.
        let parent = if i > 0 && i % 5 == 0 {
            format!(r#","parent":{}"#, i / 2)
        } else {
            String::new()
        };
        let input = format!(
            r#"{{"kind":"user.login","actor":"user-{}","action":"login","resource":"app/{}","outcome":"{}","data":{{"i":{i},"pad":"{}"}}{parent}}}"#,
            i % 97,
            i % 7,
            if i % 3 == 0 { "failure" } else { "success" },
            "x".repeat(usize::try_from(i % 13).unwrap()),
        );
        let draft = parse_entry(input.as_bytes(), &limits).unwrap();
        let ts = format_ts(1_750_000_000_000_000 + i64::try_from(i).unwrap() * 1_000);
        let mut salt = [0u8; SALT_SIZE];
        salt[..8].copy_from_slice(&i.to_be_bytes());
        salt[8..].copy_from_slice(&(!i).to_le_bytes());
        let sealed = draft.seal(ORIGIN, i, &ts, prev, &salt).unwrap();
        assert_eq!(sealed.leaf_hash, leaf_hash(&sealed.envelope_bytes));
        prev = sealed.leaf_hash;
        envelopes.push(sealed.envelope_bytes);
        leaves.push(sealed.leaf_hash);
    }
    Entries { envelopes, leaves }
}

fn signer() -> NoteSigner {
    NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[7u8; 32])).unwrap()
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap()
}

/// The first `size` entries as a tree.
fn nodes(size: u64) -> MemoryNodes {
    MemoryNodes::from_leaves(entries().leaves[..usize_of(size)].iter().copied())
}

/// Root of the first `size` entries, cross-checked with `CompactTree`.
fn root(size: u64) -> Hash {
    let r = root_at(size, &nodes(size)).unwrap();
    let mut ct = CompactTree::new();
    for l in &entries().leaves[..usize_of(size)] {
        ct.append(*l);
    }
    assert_eq!(
        ct.root(),
        r,
        "CompactTree and MemoryNodes disagree at {size}"
    );
    r
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "evident-go-interop-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn write(dir: &Path, rel: &str, data: &[u8]) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

/// Writes the tlog-tiles layout of the first `size` entries (tiles, bundles,
/// and a checkpoint of `root` signed by `key`) and returns the verifier key
/// string.
fn write_log_with(dir: &Path, size: u64, signed_root: Hash, key: &NoteSigner) -> String {
    let nodes = nodes(size);
    for id in hash_tiles_for_size(size) {
        write(dir, &id.path(), &tile_data(&id, &nodes).unwrap());
    }
    let e = entries();
    for id in entry_bundles_for_size(size) {
        let first = usize_of(id.index) * usize::from(TILE_WIDTH);
        let batch: Vec<&[u8]> = e.envelopes[first..first + usize::from(id.width)]
            .iter()
            .map(Vec::as_slice)
            .collect();
        write(dir, &id.path(), &encode_bundle(&batch).unwrap());
    }
    let cp = Checkpoint {
        origin: ORIGIN.to_owned(),
        size,
        root: signed_root,
        extensions: vec![],
    };
    write(
        dir,
        "checkpoint",
        sign_checkpoint(&cp, &[key]).unwrap().as_bytes(),
    );
    key.verifier_key().to_string()
}

fn write_log(dir: &Path, size: u64) -> (String, Hash) {
    let r = root(size);
    (write_log_with(dir, size, r, &signer()), r)
}

fn flip_byte(path: &Path, offset: usize) {
    let mut b = fs::read(path).unwrap();
    b[offset] ^= 0x01;
    fs::write(path, b).unwrap();
}

fn check_size(size: u64) {
    let Some(go) = go_verifier() else { return };
    let dir = TempDir::new(&format!("ok{size}"));
    let (vkey, root) = write_log(&dir.0, size);
    run_go(go, &dir.0, &vkey, None).assert_ok(size, root);
}

// ---------------------------------------------------------------------------
// Accepted logs.

#[test]
fn go_accepts_small_logs() {
    // Size 0: no tiles at all, and the RFC 6962 empty root (x/mod's tlog
    // would say all zeros; the Go program checks SHA-256("") itself).
    for size in [0, 1, 2, 255, 256, 257] {
        check_size(size);
    }
}

#[test]
fn go_accepts_600() {
    // Two root subtrees share a tile here.
    check_size(600);
}

#[test]
fn go_accepts_65536() {
    check_size(65_536);
}

#[test]
fn go_accepts_70000_and_consistency_from_older_trees() {
    let Some(go) = go_verifier() else { return };
    let dir = TempDir::new("ok70000");
    let (vkey, root70k) = write_log(&dir.0, MAX_SIZE);
    run_go(go, &dir.0, &vkey, None).assert_ok(MAX_SIZE, root70k);
    for old in [1, 256, 600, 65_536, MAX_SIZE] {
        // The old root as we signed it in an older checkpoint.
        let old_dir = TempDir::new(&format!("old{old}"));
        let (old_vkey, old_root) = write_log(&old_dir.0, old);
        assert_eq!(old_vkey, vkey);
        let run = run_go(go, &dir.0, &vkey, Some((old, old_root)));
        run.assert_ok(MAX_SIZE, root70k);
        assert!(
            run.stdout.contains(&format!("consistent_from={old}")),
            "{}",
            run.stdout
        );
    }
}

// ---------------------------------------------------------------------------
// Rejected logs.

/// A fresh, valid log of 600 entries to tamper with.
fn log600(tag: &str) -> (TempDir, String) {
    let dir = TempDir::new(tag);
    let (vkey, _) = write_log(&dir.0, 600);
    (dir, vkey)
}

#[test]
fn go_rejects_flipped_byte_in_hash_tile() {
    let Some(go) = go_verifier() else { return };
    // A tile Go's TileHashReader authenticates against the root.
    let (dir, vkey) = log600("flip-partial");
    flip_byte(&dir.0.join("tile/0/002.p/88"), 5);
    run_go(go, &dir.0, &vkey, None).assert_fails(&[
        "tile hash reader: TreeHash(600): downloaded inconsistent tile",
        "hash tile tile/0/002.p/88 differs from the tile rebuilt from entries at byte 5",
    ]);
    // A full tile below the shared parent tile, which TileHashReader (x/mod
    // 0.7) does not authenticate: the rebuild from entries catches it.
    let (dir, vkey) = log600("flip-full");
    flip_byte(&dir.0.join("tile/0/001"), 100);
    run_go(go, &dir.0, &vkey, None).assert_fails(&[
        "hash tile tile/0/001 differs from the tile rebuilt from entries at byte 100",
    ]);
    // A level-1 tile.
    let (dir, vkey) = log600("flip-level1");
    flip_byte(&dir.0.join("tile/1/000.p/2"), 33);
    run_go(go, &dir.0, &vkey, None).assert_fails(&[
        "hash tile tile/1/000.p/2 differs from the tile rebuilt from entries at byte 33",
    ]);
}

#[test]
fn go_rejects_flipped_byte_in_entry_bundle() {
    let Some(go) = go_verifier() else { return };
    let (dir, vkey) = log600("flip-bundle");
    let path = dir.0.join("tile/entries/001");
    // A byte inside the first entry's JSON, not its length prefix.
    let b = fs::read(&path).unwrap();
    let len = usize::from(u16::from_be_bytes([b[0], b[1]]));
    flip_byte(&path, 2 + len / 2);
    run_go(go, &dir.0, &vkey, None).assert_fails(&[
        "root rebuilt from entry bundles",
        "!= checkpoint root",
        "hash tile tile/0/001 differs from the tile rebuilt from entries at byte",
        "(hash 0)",
    ]);
}

#[test]
fn go_rejects_entry_bundle_with_trailing_byte() {
    let Some(go) = go_verifier() else { return };
    let (dir, vkey) = log600("bundle-trailing");
    let path = dir.0.join("tile/entries/002.p/88");
    let mut b = fs::read(&path).unwrap();
    b.push(0);
    fs::write(&path, b).unwrap();
    run_go(go, &dir.0, &vkey, None)
        .assert_fails(&["entry bundle tile/entries/002.p/88: 1 trailing bytes after 88 entries"]);
}

#[test]
fn go_rejects_checkpoint_signed_by_another_key() {
    let Some(go) = go_verifier() else { return };
    let dir = TempDir::new("other-key");
    let other = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[8u8; 32])).unwrap();
    write_log_with(&dir.0, 600, root(600), &other);
    let vkey = signer().verifier_key().to_string();
    run_go(go, &dir.0, &vkey, None)
        .assert_fails(&["checkpoint signature", "note has no verifiable signatures"]);
}

#[test]
fn go_rejects_wrong_signed_root() {
    let Some(go) = go_verifier() else { return };
    let dir = TempDir::new("wrong-root");
    // Correctly signed, but the root of 599 entries over 600 entries' tiles.
    let vkey = write_log_with(&dir.0, 600, root(599), &signer());
    run_go(go, &dir.0, &vkey, None).assert_fails(&[
        "tile hash reader: TreeHash(600): downloaded inconsistent tile",
        "root rebuilt from entry bundles",
    ]);
}

#[test]
fn go_rejects_missing_partial_tile() {
    let Some(go) = go_verifier() else { return };
    let (dir, vkey) = log600("missing-partial");
    fs::remove_file(dir.0.join("tile/0/002.p/88")).unwrap();
    run_go(go, &dir.0, &vkey, None).assert_fails(&["missing file tile/0/002.p/88"]);
}

#[test]
fn go_rejects_extra_p0_file() {
    let Some(go) = go_verifier() else { return };
    let (dir, vkey) = log600("extra-p0");
    write(&dir.0, "tile/0/002.p/0", b"");
    run_go(go, &dir.0, &vkey, None)
        .assert_fails(&["unexpected file tile/0/002.p/0 (not a tile of a tree of size 600)"]);
}

#[test]
fn go_rejects_wrong_old_root() {
    let Some(go) = go_verifier() else { return };
    let (dir, vkey) = log600("wrong-old-root");
    run_go(go, &dir.0, &vkey, Some((256, root(255)))).assert_fails(&[
        "CheckTree(600, 256)",
        "old root",
        "!= root of the first 256 entries",
    ]);
}

/// Sanity check of the helper: TileId paths are the C2SP form the Go
/// program reads.
#[test]
fn tile_paths_are_c2sp() {
    assert_eq!(
        TileId::hashes(0, 1_234_067, 256).path(),
        "tile/0/x001/x234/067"
    );
    assert_eq!(TileId::entries(2, 88).path(), "tile/entries/002.p/88");
}
