//! The operator commands driven as a user would: a fresh data directory,
//! NDJSON on disk or standard input, JSON output parsed, exit codes
//! checked.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod run;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use run::{Run, evident_with};
use serde_json::Value;

fn evident_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    evident_with(args, Some(dir), stdin)
}

/// A working directory with an initialised `./evident-data`.
struct Fixture {
    dir: tempfile::TempDir,
    vkey: String,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let r = evident_in(
            dir.path(),
            &["init", "--instance", "test.example", "--format", "json"],
            None,
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let vkey = r.json()["vkey"].as_str().unwrap().to_owned();
        Fixture { dir, vkey }
    }

    fn run(&self, args: &[&str]) -> Run {
        evident_in(self.dir.path(), args, None)
    }

    fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        evident_in(self.dir.path(), args, Some(stdin))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, contents).unwrap();
        p.to_str().unwrap().to_owned()
    }

    fn size(&self, log: &str) -> u64 {
        let r = self.run(&["checkpoint", "--log", log, "--format", "json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.json()["size"].as_u64().unwrap()
    }
}

fn lines(n: usize, prefix: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"kind\":\"access.granted\",\"actor\":\"user{i}\",\"resource\":\"doc/{i}\",\"request_id\":\"{prefix}-{i}\"}}\n"
            )
        })
        .collect()
}

#[test]
fn init_writes_a_private_pem_key_and_prints_the_verifier_key() {
    let f = Fixture::new();
    assert!(f.vkey.starts_with("test.example+"), "{}", f.vkey);
    let key = f.path("evident-data/signing-key.pem");
    let pem = std::fs::read_to_string(&key).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(f.path("evident-data/evident.db").exists());
    // The database never holds the private key: only its public half.
    let db = std::fs::read(f.path("evident-data/evident.db")).unwrap();
    let b64 = pem.lines().nth(1).unwrap();
    assert!(!db.windows(b64.len()).any(|w| w == b64.as_bytes()));

    // `keys public` prints the same key; a second init refuses.
    let r = f.run(&["keys", "public"]);
    assert_eq!(r.stdout.trim(), f.vkey);
    let again = f.run(&["init", "--format", "json"]);
    assert_eq!(again.code, 1);
    assert_eq!(again.json()["error"]["code"], "store.already_initialized");
}

#[test]
fn key_file_and_data_dir_can_be_moved() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("secrets/k.pem");
    let r = evident_in(
        dir.path(),
        &[
            "init",
            "--data-dir",
            "elsewhere",
            "--key-file",
            key.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(key.exists());
    assert!(dir.path().join("elsewhere/evident.db").exists());
    assert!(!dir.path().join("elsewhere/signing-key.pem").exists());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_evident"));
    let out = cmd
        .args(["append", "--log", "a/b", "-"])
        .current_dir(dir.path())
        .env("EVIDENT_DATA_DIR", "elsewhere")
        .env("EVIDENT_KEY_FILE", &key)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the moved key, writing is refused with a clear code.
    let r = evident_in(
        dir.path(),
        &[
            "append",
            "--data-dir",
            "elsewhere",
            "--log",
            "a/b",
            "--format",
            "json",
            "-",
        ],
        Some("{\"kind\":\"x\"}\n"),
    );
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["error"]["code"], "key.missing");
}

#[test]
fn every_command_on_an_uninitialised_dir_says_to_run_init() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[&[&str]] = &[
        &["append", "--log", "a/b", "-"],
        &["verify", "--log", "a/b"],
        &["verify", "--all"],
        &["checkpoint", "--log", "a/b"],
        &["entries", "--log", "a/b"],
        &["logs"],
        &["receipt", "--log", "a/b", "--index", "0"],
        &["keys", "public"],
        &["migrate", "status"],
        &["export", "--log", "a/b", "--out", "x"],
    ];
    for args in cases {
        let r = evident_in(dir.path(), args, Some(""));
        assert_ne!(r.code, 0, "{args:?}");
        assert!(
            r.stderr.contains("run `evident init`") && r.stderr.contains("store.not_initialized"),
            "{args:?}: {}",
            r.stderr
        );
    }
    // Nothing was created by trying.
    assert!(!dir.path().join("evident-data").exists());
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        "init",
        "append",
        "verify",
        "checkpoint",
        "entries",
        "logs",
        "export",
        "verify-export",
        "receipt",
        "verify-receipt",
        "keys",
        "migrate",
    ] {
        let r = evident_in(dir.path(), &[cmd, "--help"], None);
        assert_eq!(r.code, 0, "{cmd}: {}", r.stderr);
        assert!(
            r.stdout.len() > 200,
            "{cmd} --help is too thin: {}",
            r.stdout
        );
    }
}

#[test]
fn append_prints_the_summary_and_repeats_are_idempotent() {
    let f = Fixture::new();
    let input = f.write("in.ndjson", &lines(25, "r"));
    let r = f.run(&[
        "append",
        "--log",
        "acme/audit",
        &input,
        "--batch-size",
        "10",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["appended"], 25);
    assert_eq!(j["first_index"], 0);
    assert_eq!(j["last_index"], 24);
    assert_eq!(j["size"], 25);
    // Three batches: three checkpoints, the latest at 25.
    assert_eq!(f.size("acme/audit"), 25);

    // The same input again stores nothing and reports duplicates.
    let r = f.run(&["append", "--log", "acme/audit", &input, "--format", "json"]);
    let j = r.json();
    assert_eq!(j["appended"], 0);
    assert_eq!(j["duplicates"], 25);
    assert_eq!(j["first_index"], Value::Null);
    assert_eq!(j["size"], 25);

    // Half old, half new, from standard input.
    let mixed = format!("{}{}", lines(5, "r"), lines(5, "s"));
    let r = f.run_stdin(
        &["append", "--log", "acme/audit", "--format", "json"],
        &mixed,
    );
    let j = r.json();
    assert_eq!(
        (j["appended"].as_u64(), j["duplicates"].as_u64()),
        (Some(5), Some(5))
    );
    assert_eq!(
        (j["first_index"].as_u64(), j["last_index"].as_u64()),
        (Some(25), Some(29))
    );
    let v = f.run(&["verify", "--log", "acme/audit", "--format", "json"]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    assert_eq!(v.json()["total_count"], 30);
}

#[test]
fn a_bad_line_rejects_the_whole_input_and_stores_nothing() {
    let f = Fixture::new();
    let good = f.write("good.ndjson", &lines(3, "g"));
    assert_eq!(f.run(&["append", "--log", "acme/audit", &good]).code, 0);
    let cases = [
        (
            "{\"kind\":\"a\"}\n{\"kind\":\"a\",\"nope\":1}\n",
            2,
            "entry.unknown_field",
        ),
        (
            "{\"kind\":\"a\"}\n\n{\"actor\":\"x\"}\n",
            3,
            "entry.missing_kind",
        ),
        ("{\"kind\":\"a\"}\nnot json\n", 2, "entry.invalid_json"),
        (
            "{\"kind\":\"evident.exception\"}\n",
            1,
            "entry.reserved_kind",
        ),
        (
            "{\"kind\":\"a\",\"data\":{\"n\":9007199254740993}}\n",
            1,
            "entry.lossy_number",
        ),
        (
            "{\"kind\":\"a\",\"data\":{\"a\":1,\"a\":2}}\n",
            1,
            "entry.duplicate_key",
        ),
        // Index 3 would be this entry's: a parent must be earlier.
        ("{\"kind\":\"a\",\"parent\":3}\n", 1, "entry.bad_field"),
    ];
    for (input, line, code) in cases {
        let r = f.run_stdin(
            &["append", "--log", "acme/audit", "--format", "json"],
            input,
        );
        assert_eq!(r.code, 1, "{input:?}");
        let e = &r.json()["error"];
        assert_eq!(e["code"], code, "{input:?}: {e}");
        assert_eq!(e["line"], line, "{input:?}: {e}");
        // Text mode names the line too.
        let t = f.run_stdin(&["append", "--log", "acme/audit"], input);
        assert!(t.stderr.contains(&format!("line {line}:")), "{}", t.stderr);
        assert_eq!(f.size("acme/audit"), 3, "{input:?} stored something");
    }
    // A log that did not exist is not created by rejected input.
    let r = f.run_stdin(&["append", "--log", "acme/other"], "bad\n");
    assert_eq!(r.code, 1);
    let logs = f.run(&["logs", "--format", "json"]).json();
    assert_eq!(logs["logs"].as_array().unwrap().len(), 1);
}

#[test]
fn bad_log_names_are_refused() {
    let f = Fixture::new();
    for (name, code) in [
        ("nolog", "log.bad_name"),
        ("Acme/audit", "entry.bad_name"),
        ("a/b/c", "entry.bad_name"),
    ] {
        let r = f.run_stdin(
            &["append", "--log", name, "--format", "json"],
            "{\"kind\":\"a\"}\n",
        );
        assert_eq!(r.code, 1, "{name}");
        assert_eq!(r.json()["error"]["code"], code, "{name}");
    }
    let r = f.run(&["verify", "--log", "acme/none", "--format", "json"]);
    assert_eq!(r.code, 2);
    assert_eq!(r.json()["error"]["code"], "log.not_found");
}

#[test]
fn receipts_verify_offline_and_name_what_they_prove() {
    let f = Fixture::new();
    let input = f.write("in.ndjson", &lines(40, "r"));
    f.run(&[
        "append",
        "--log",
        "acme/audit",
        &input,
        "--batch-size",
        "16",
    ]);
    let out = f.path("r.json");
    let r = f.run(&[
        "receipt",
        "--log",
        "acme/audit",
        "--index",
        "17",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = f.run(&[
        "verify-receipt",
        out.to_str().unwrap(),
        "--vkey",
        &f.vkey,
        "--format",
        "json",
    ]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    let j = v.json();
    assert_eq!(j["index"], 17);
    assert_eq!(j["checkpoint_size"], 40);
    assert_eq!(j["body_verified"], true);

    // Without the body the receipt still proves the envelope.
    let r = f.run(&[
        "receipt",
        "--log",
        "acme/audit",
        "--index",
        "0",
        "--no-body",
    ]);
    let receipt: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(receipt.get("body").is_none() || receipt["body"].is_null());
    let p = f.write("nobody.json", &r.stdout);
    let v = f.run(&["verify-receipt", &p, "--vkey", &f.vkey, "--format", "json"]);
    assert_eq!(v.json()["body_verified"], false);

    // Out of range: a clear error.
    let r = f.run(&["receipt", "--log", "acme/audit", "--index", "40"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("entry.not_found"), "{}", r.stderr);
}

#[test]
fn checkpoint_entries_and_logs_show_what_is_stored() {
    let f = Fixture::new();
    let mut input = lines(3, "r");
    input.push_str("{\"kind\":\"crypto.encrypt\",\"actor\":\"svc\",\"data\":{\"bytes\":512}}\n");
    let p = f.write("in.ndjson", &input);
    f.run(&["append", "--log", "acme/audit", &p]);

    let cp = f.run(&["checkpoint", "--log", "acme/audit"]);
    assert!(
        cp.stdout.starts_with("test.example/acme/audit\n4\n"),
        "{}",
        cp.stdout
    );
    assert!(cp.stdout.contains("\n\n— test.example "), "{}", cp.stdout);

    let e = f
        .run(&[
            "entries",
            "--log",
            "acme/audit",
            "--kind",
            "crypto.encrypt",
            "--format",
            "json",
        ])
        .json();
    let list = e["entries"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["index"], 3);
    assert_eq!(list[0]["envelope"]["kind"], "crypto.encrypt");
    assert_eq!(list[0]["body"]["data"]["bytes"], 512);

    let e = f
        .run(&[
            "entries",
            "--log",
            "acme/audit",
            "--from",
            "1",
            "--limit",
            "2",
            "--format",
            "json",
        ])
        .json();
    let idx: Vec<u64> = e["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, [1, 2]);
    assert_eq!(e["next"], 3);

    let logs = f.run(&["logs", "--format", "json"]).json();
    assert_eq!(logs["logs"][0]["log"], "acme/audit");
    assert_eq!(logs["logs"][0]["size"], 4);
    assert_eq!(logs["logs"][0]["origin"], "test.example/acme/audit");

    let m = f.run(&["migrate", "status", "--format", "json"]).json();
    assert_eq!(m["current"], m["expected"]);
    assert_eq!(m["pending"].as_array().unwrap().len(), 0);
}

#[test]
fn verify_all_and_a_pinned_foreign_key() {
    let f = Fixture::new();
    for log in ["acme/audit", "acme/billing", "beta/audit"] {
        let p = f.write("in.ndjson", &lines(5, log));
        assert_eq!(f.run(&["append", "--log", log, &p]).code, 0);
    }
    let r = f.run(&["verify", "--all", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let j = r.json();
    assert_eq!(j["valid"], true);
    assert_eq!(j["logs"].as_array().unwrap().len(), 3);

    // Trusting only a key that did not sign: every checkpoint fails.
    let other = Fixture::new();
    let r = f.run(&[
        "verify",
        "--log",
        "acme/audit",
        "--vkey",
        &other.vkey,
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(
        r.json()["first_break"]["reason"],
        "checkpoint.bad_signature"
    );
    let r = f.run(&["verify", "--log", "acme/audit", "--vkey", &f.vkey]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("acme/audit: valid"), "{}", r.stdout);
}
