//! `evident tenant …` and `evident api-key …` driven as an operator would,
//! on a fresh data directory: output parsed, exit codes and error codes
//! checked, and the database read behind the binary's back to see what it
//! really keeps.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod run;

use std::path::{Path, PathBuf};

use run::{Run, evident_with};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A working directory with an initialised `./evident-data`.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let r = evident_with(
            &["init", "--instance", "test.example"],
            Some(dir.path()),
            None,
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        Fixture { dir }
    }

    fn run(&self, args: &[&str]) -> Run {
        evident_with(args, Some(self.dir.path()), None)
    }

    /// Runs a command that must succeed.
    fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        r
    }

    /// Runs a command with `--format json` that must succeed; its document.
    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        self.ok(&args).json()
    }

    /// Runs a command that must fail with `code`, in text and JSON mode.
    fn fails(&self, args: &[&str], code: &str) {
        let r = self.run(args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stdout.is_empty(), "{args:?}: {r:?}");
        assert!(
            r.stderr.starts_with("error: ") && r.stderr.contains(&format!("({code})")),
            "{args:?}: {r:?}"
        );
        let mut json_args = args.to_vec();
        json_args.extend(["--format", "json"]);
        let r = self.run(&json_args);
        assert_eq!(r.code, 1, "{json_args:?}: {r:?}");
        assert_eq!(r.json()["error"]["code"], code, "{json_args:?}: {r:?}");
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("evident-data")
    }

    /// The key hashes as stored, by id, read with SQLite directly.
    fn stored_hashes(&self) -> Vec<(String, Vec<u8>)> {
        let db = rusqlite::Connection::open(self.data_dir().join("evident.db")).unwrap();
        let mut stmt = db
            .prepare("SELECT id, key_hash FROM api_keys ORDER BY rowid")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// Every byte the data directory holds (database, WAL, key file …).
    fn all_bytes(&self) -> Vec<u8> {
        fn walk(dir: &Path, out: &mut Vec<u8>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.extend(std::fs::read(&p).unwrap());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.data_dir(), &mut out);
        out
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn keys_of(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn is_ts(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 27 && s.ends_with('Z'))
}

#[test]
fn tenants_round_trip() {
    let f = Fixture::new();
    assert_eq!(f.ok(&["tenant", "list"]).stdout, "");
    assert_eq!(
        f.json(&["tenant", "list"])["tenants"],
        serde_json::json!([])
    );

    let r = f.ok(&["tenant", "create", "umbrella"]);
    assert_eq!(r.stdout, "created tenant umbrella (active)\n");
    let acme = f.json(&["tenant", "create", "acme"]);
    assert_eq!(
        keys_of(&acme),
        ["created_at", "name", "status", "updated_at"]
    );
    assert_eq!(
        (&acme["name"], &acme["status"]),
        (&"acme".into(), &"active".into())
    );
    assert!(is_ts(&acme["created_at"]), "{acme}");
    assert_eq!(acme["updated_at"], acme["created_at"]);
    f.fails(&["tenant", "create", "acme"], "tenant.exists");

    let listed = f.json(&["tenant", "list"]);
    assert_eq!(listed["tenants"][0], acme, "by name: acme first");
    assert_eq!(listed["tenants"][1]["name"], "umbrella");
    assert_eq!(listed["tenants"].as_array().unwrap().len(), 2);
    let text = f.ok(&["tenant", "list"]).stdout;
    let first: Vec<&str> = text.lines().next().unwrap().split('\t').collect();
    assert_eq!(first[..2], ["acme", "active"], "{text}");

    let suspended = f.json(&["tenant", "suspend", "acme"]);
    assert_eq!(suspended["status"], "suspended");
    assert_eq!(suspended["created_at"], acme["created_at"]);
    assert!(
        suspended["updated_at"].as_str() > acme["updated_at"].as_str(),
        "{suspended}"
    );
    // Idempotent: the time of the suspension stays.
    assert_eq!(f.json(&["tenant", "suspend", "acme"]), suspended);
    let r = f.ok(&["tenant", "suspend", "acme"]);
    assert!(
        r.stdout.starts_with("tenant acme: suspended (since "),
        "{r:?}"
    );
    assert_eq!(f.json(&["tenant", "list"])["tenants"][0], suspended);

    let resumed = f.json(&["tenant", "resume", "acme"]);
    assert_eq!(resumed["status"], "active");
    assert!(resumed["updated_at"].as_str() > suspended["updated_at"].as_str());
    assert_eq!(f.json(&["tenant", "resume", "acme"]), resumed);
}

#[test]
fn api_keys_round_trip() {
    let f = Fixture::new();
    f.ok(&["tenant", "create", "acme"]);

    // Text: the token alone on stdout, the warning on stderr.
    let r = f.ok(&[
        "api-key",
        "issue",
        "--tenant",
        "acme",
        "--scopes",
        "append,read,verify",
    ]);
    let token = r.stdout.strip_suffix('\n').unwrap().to_owned();
    assert!(!token.contains('\n'), "{r:?}");
    assert_eq!(token.len(), 64, "{token}");
    let id = token[4..20].to_owned();
    assert!(token.starts_with(&format!("evk_{id}_")), "{token}");
    assert!(r.stderr.contains("only time"), "{r:?}");
    assert!(r.stderr.contains(&id), "{r:?}");
    assert!(!r.stderr.contains(&token[21..]), "{r:?}");
    assert!(!r.stderr.contains("suspended"), "{r:?}");

    // JSON: exactly the documented members.
    let issued = f.json(&["api-key", "issue", "--tenant", "acme", "--scopes", "verify"]);
    assert_eq!(keys_of(&issued), ["api_key", "id", "scopes", "tenant"]);
    assert_eq!(issued["tenant"], "acme");
    assert_eq!(issued["scopes"], serde_json::json!(["verify"]));
    let token2 = issued["api_key"].as_str().unwrap().to_owned();
    assert_eq!(&token2[4..20], issued["id"].as_str().unwrap());
    assert_ne!(token, token2);

    let list = f.json(&["api-key", "list"]);
    let keys = list["api_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        keys_of(&keys[0]),
        ["created_at", "id", "revoked_at", "scopes", "tenant"]
    );
    assert_eq!(keys[0]["id"], id.as_str());
    assert_eq!(keys[0]["tenant"], "acme");
    assert_eq!(
        keys[0]["scopes"],
        serde_json::json!(["append", "read", "verify"])
    );
    assert!(is_ts(&keys[0]["created_at"]));
    assert_eq!(keys[0]["revoked_at"], Value::Null);
    assert_eq!(keys[1]["id"], issued["id"], "in the order issued");
    let text = f.ok(&["api-key", "list"]).stdout;
    let line: Vec<&str> = text.lines().next().unwrap().split('\t').collect();
    assert_eq!(
        (line[0], line[1], line[2], line[4]),
        (id.as_str(), "acme", "append,read,verify", "active"),
        "{text}"
    );

    // A suspended tenant may be given keys, with a note.
    f.ok(&["tenant", "suspend", "acme"]);
    let r = f.ok(&["api-key", "issue", "--tenant", "acme", "--scopes", "read"]);
    assert!(
        r.stderr.contains("suspended") && r.stderr.contains("evident tenant resume acme"),
        "{r:?}"
    );

    // Revoke by id; again (nothing changes); by the whole token.
    let revoked = f.json(&["api-key", "revoke", &id]);
    assert_eq!(revoked["already_revoked"], false);
    assert!(is_ts(&revoked["revoked_at"]), "{revoked}");
    let again = f.json(&["api-key", "revoke", &id]);
    assert_eq!(again["already_revoked"], true);
    assert_eq!(again["revoked_at"], revoked["revoked_at"]);
    let r = f.ok(&["api-key", "revoke", &id]);
    assert!(r.stdout.contains("already revoked"), "{r:?}");
    let r = f.ok(&["api-key", "revoke", &token2]);
    assert!(r.stdout.starts_with("revoked API key "), "{r:?}");

    let list = f.json(&["api-key", "list"]);
    let keys = list["api_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3, "revoked keys stay listed");
    assert_eq!(keys[0]["revoked_at"], revoked["revoked_at"]);
    assert!(is_ts(&keys[1]["revoked_at"]));
    assert_eq!(keys[2]["revoked_at"], Value::Null);
    let text = f.ok(&["api-key", "list"]).stdout;
    assert!(
        text.lines().next().unwrap().ends_with(&format!(
            "revoked {}",
            revoked["revoked_at"].as_str().unwrap()
        )),
        "{text}"
    );
}

#[test]
fn only_the_hash_of_a_token_is_kept_and_lists_never_show_it() {
    let f = Fixture::new();
    f.ok(&["tenant", "create", "acme"]);
    let mut tokens = Vec::new();
    for scopes in ["append", "read,verify", "verify"] {
        let r = f.ok(&["api-key", "issue", "--tenant", "acme", "--scopes", scopes]);
        tokens.push(r.stdout.trim_end().to_owned());
    }
    f.ok(&["api-key", "revoke", &tokens[2][4..20]]);

    // The stored hash is SHA-256 of the whole token.
    let stored = f.stored_hashes();
    assert_eq!(stored.len(), 3);
    for ((id, hash), token) in stored.iter().zip(&tokens) {
        assert_eq!(id, &token[4..20]);
        assert_eq!(hash.as_slice(), Sha256::digest(token.as_bytes()).as_slice());
    }

    let outputs = [
        f.ok(&["api-key", "list"]),
        f.ok(&["api-key", "list", "--format", "json"]),
        f.ok(&["tenant", "list", "--format", "json"]),
    ];
    let bytes = f.all_bytes();
    for token in &tokens {
        let secret = &token[21..];
        for out in &outputs {
            assert!(
                !out.stdout.contains(secret) && !out.stderr.contains(secret),
                "{out:?}"
            );
        }
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "a secret is in the data directory"
        );
    }
    // Nor is the hash ever printed, in hex or in base64.
    for (_, hash) in &stored {
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        for out in &outputs {
            assert!(!out.stdout.contains(&hex), "{out:?}");
        }
    }
}

#[test]
fn reserved_and_bad_names_are_refused() {
    let f = Fixture::new();
    for name in ["_system", "_", "_Bad"] {
        f.fails(&["tenant", "create", name], "tenant.reserved");
        f.fails(&["tenant", "suspend", name], "tenant.reserved");
        f.fails(&["tenant", "resume", name], "tenant.reserved");
    }
    for name in ["_", "_Bad"] {
        f.fails(
            &["api-key", "issue", "--tenant", name, "--scopes", "read"],
            "tenant.reserved",
        );
    }
    // The system tenant exists once a server has started; until then a key
    // for it cannot be issued. Only it may hold the admin scope.
    f.fails(
        &[
            "api-key", "issue", "--tenant", "_system", "--scopes", "admin",
        ],
        "tenant.not_found",
    );
    f.ok(&["tenant", "create", "acme"]);
    f.fails(
        &[
            "api-key",
            "issue",
            "--tenant",
            "acme",
            "--scopes",
            "read,admin",
        ],
        "api_key.bad_scopes",
    );
    let too_long = "a".repeat(64);
    for name in [
        "Acme",
        "acme ",
        "acme.example",
        "acme/audit",
        "é",
        too_long.as_str(),
    ] {
        f.fails(&["tenant", "create", name], "tenant.bad_name");
        f.fails(&["tenant", "suspend", name], "tenant.bad_name");
        f.fails(
            &["api-key", "issue", "--tenant", name, "--scopes", "read"],
            "tenant.bad_name",
        );
    }
    let r = f.run(&["tenant", "create", "--", "-acme"]);
    assert!(r.stderr.contains("(tenant.bad_name)"), "{r:?}");
    f.ok(&["tenant", "create", &"a".repeat(63)]);
    assert_eq!(
        f.json(&["tenant", "list"])["tenants"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "only the valid names (acme and the 63-byte one) were stored"
    );
}

#[test]
fn unknown_tenants_keys_and_bad_scopes_are_refused() {
    let f = Fixture::new();
    f.fails(&["tenant", "suspend", "nope"], "tenant.not_found");
    f.fails(&["tenant", "resume", "nope"], "tenant.not_found");
    f.fails(
        &["api-key", "issue", "--tenant", "nope", "--scopes", "read"],
        "tenant.not_found",
    );
    f.fails(
        &["api-key", "revoke", "0123456789abcdef"],
        "api_key.not_found",
    );
    f.fails(&["api-key", "revoke", ""], "api_key.not_found");
    f.ok(&["tenant", "create", "acme"]);
    for scopes in ["", "write", "read,read", "append,", "Read"] {
        f.fails(
            &["api-key", "issue", "--tenant", "acme", "--scopes", scopes],
            "api_key.bad_scopes",
        );
    }
    assert_eq!(
        f.json(&["api-key", "list"])["api_keys"],
        serde_json::json!([])
    );
}

#[test]
fn an_uninitialised_dir_says_to_run_init() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[&[&str]] = &[
        &["tenant", "create", "acme"],
        &["tenant", "list"],
        &["tenant", "suspend", "acme"],
        &["tenant", "resume", "acme"],
        &["api-key", "issue", "--tenant", "acme", "--scopes", "read"],
        &["api-key", "list"],
        &["api-key", "revoke", "0123456789abcdef"],
    ];
    for args in cases {
        let r = evident_with(args, Some(dir.path()), None);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains("run `evident init`") && r.stderr.contains("store.not_initialized"),
            "{args:?}: {r:?}"
        );
    }
    assert!(!dir.path().join("evident-data").exists());
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (&["tenant"][..], "suspended tenant"),
        (&["tenant", "create"], "tenant.reserved"),
        (&["tenant", "list"], "status"),
        (&["tenant", "suspend"], "refused"),
        (&["tenant", "resume"], "work again"),
        (&["api-key"], "SHA-256"),
        (&["api-key", "issue"], "--scopes"),
        (&["api-key", "list"], "Never a token"),
        (&["api-key", "revoke"], "Revocation is final"),
    ] {
        let mut args = args.to_vec();
        args.push("--help");
        let r = evident_with(&args, Some(dir.path()), None);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        assert!(r.stdout.contains(says), "{args:?}: {}", r.stdout);
    }
}

/// What a running server sees: its own long-lived connection, with a
/// reader in the middle of a long read, gets every change the CLI makes on
/// its next lookup.
#[test]
fn changes_reach_a_connection_that_stays_open() {
    use evident_store::sqlite::SqliteStore;
    use evident_store::{Store, TenantStatus};

    let f = Fixture::new();
    f.ok(&["tenant", "create", "acme"]);
    let token = f
        .ok(&["api-key", "issue", "--tenant", "acme", "--scopes", "read"])
        .stdout
        .trim_end()
        .to_owned();
    let id = &token[4..20];
    let db = f.data_dir().join("evident.db");
    let mut server = SqliteStore::open(&db, false).unwrap();
    let reader = rusqlite::Connection::open(&db).unwrap();
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM entries;")
        .unwrap();
    let seen = |s: &mut SqliteStore| {
        let (key, status) = s.find_api_key(id).unwrap().unwrap();
        (key.revoked_at.is_some(), status)
    };
    assert_eq!(seen(&mut server), (false, TenantStatus::Active));
    f.ok(&["tenant", "suspend", "acme"]);
    assert_eq!(seen(&mut server), (false, TenantStatus::Suspended));
    f.ok(&["tenant", "resume", "acme"]);
    assert_eq!(seen(&mut server), (false, TenantStatus::Active));
    f.ok(&["api-key", "revoke", id]);
    assert_eq!(seen(&mut server), (true, TenantStatus::Active));
    reader.execute_batch("COMMIT").unwrap();
}
