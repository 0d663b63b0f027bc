#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
//! U+0000 in client input, on both backends through the real binary.
//!
//! PostgreSQL's `text` cannot hold NUL, and `request_id` is the one
//! client string stored in a text column (for its unique index), so a
//! NUL there is refused by the entry parser itself (`entry.bad_field`)
//! on SQLite and PostgreSQL alike, before anything is stored. Everywhere
//! else a NUL is just a character of a body, which both backends store
//! as bytes. The PostgreSQL half skips, saying so, when PostgreSQL is not
//! installed, unless EVIDENT_REQUIRE_POSTGRES=1.
#![cfg(unix)]

mod run;

use evident_pgtest::Cluster;
use serde_json::Value;
use tempfile::TempDir;

const LOG: &str = "acme/audit";

/// A data directory, on its SQLite file or on a PostgreSQL database.
struct Backend {
    dir: TempDir,
    url: Option<String>,
}

impl Backend {
    fn new(url: Option<String>) -> Backend {
        let b = Backend {
            dir: tempfile::tempdir().unwrap(),
            url,
        };
        let init = b.evident(&["init", "--format", "json"]);
        assert_eq!(init.code, 0, "{init:?}");
        b
    }

    fn evident(&self, args: &[&str]) -> run::Run {
        let (cmd, rest) = args.split_first().unwrap();
        let data = self.dir.path().join("data");
        let mut all = vec![*cmd, "--data-dir", data.to_str().unwrap()];
        if let Some(url) = &self.url {
            all.extend(["--database-url", url]);
        }
        all.extend(rest);
        run::evident(&all)
    }

    /// `evident append --format json` of one NDJSON line.
    fn append(&self, line: &str) -> run::Run {
        let file = self.dir.path().join("input.ndjson");
        std::fs::write(&file, format!("{line}\n")).unwrap();
        self.evident(&[
            "append",
            "--log",
            LOG,
            file.to_str().unwrap(),
            "--format",
            "json",
        ])
    }

    fn verify(&self) -> Value {
        let r = self.evident(&["verify", "--log", LOG, "--format", "json"]);
        assert_eq!(r.code, 0, "{r:?}");
        r.json()
    }
}

/// The same behaviour, whichever backend `b` is.
fn nul_in_request_id_is_refused_and_nul_in_a_body_is_kept(b: &Backend) {
    // A NUL inside a body field and its data is stored and verifies.
    let first = b.append(
        r#"{"kind":"x.y","actor":"a\u0000b","data":{"k\u0000":"\u0000"},"request_id":"r-1"}"#,
    );
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(first.json()["size"], 1);

    // A NUL in request_id: refused by the parser, with its field named.
    for rid in [r"a\u0000b", r"\u0000", r"r-1\u0000"] {
        let out = b.append(&format!(r#"{{"kind":"x.y","request_id":"{rid}"}}"#));
        assert_eq!(out.code, 1, "{rid}: {out:?}");
        let err = &out.json()["error"];
        assert_eq!(err["code"], "entry.bad_field", "{rid}: {out:?}");
        let msg = err["message"].as_str().unwrap();
        assert!(msg.contains("request_id"), "{msg}");
        assert!(msg.contains("U+0000"), "{msg}");
    }

    // Nothing of the refused lines was stored; the first entry is intact
    // and its request id still deduplicates.
    let r = b.verify();
    assert_eq!(r["valid"], true, "{r:#}");
    assert_eq!(r["total_count"], 1, "{r:#}");
    let again = b.append(r#"{"kind":"x.y","request_id":"r-1"}"#);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.json()["duplicates"], 1, "{again:?}");
    assert_eq!(again.json()["size"], 1, "{again:?}");
}

#[test]
fn sqlite_refuses_nul_in_request_id() {
    nul_in_request_id_is_refused_and_nul_in_a_body_is_kept(&Backend::new(None));
}

#[test]
fn postgres_refuses_nul_in_request_id() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let url = cluster.url(&cluster.create_database());
    nul_in_request_id_is_refused_and_nul_in_a_body_is_kept(&Backend::new(Some(url)));
}
