//! `evident append` driven as a user would: NDJSON files and standard
//! input, the summary it prints, and what ends up in the log. The input
//! sizes cross the command's internal chunk and batch boundaries, so the
//! first bad line is found wherever it is and a rejected input stores
//! nothing.
#![allow(clippy::unwrap_used)]

mod run;

use std::path::{Path, PathBuf};

use run::evident_with;
use serde_json::Value;

struct Data {
    dir: tempfile::TempDir,
}

impl Data {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = Data { dir };
        let (code, out, err) = d.run(&["init"], None);
        assert_eq!(code, 0, "{out}{err}");
        d
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// Runs `evident CMD --data-dir DIR --format json ARGS…`.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
        let data = self.path().join("data");
        let mut full = vec![
            args[0],
            "--data-dir",
            data.to_str().unwrap(),
            "--format",
            "json",
        ];
        full.extend_from_slice(&args[1..]);
        let r = evident_with(&full, None, stdin);
        (r.code, r.stdout, r.stderr)
    }

    fn append_file(&self, file: &Path, extra: &[&str]) -> (i32, Value) {
        let mut args = vec!["append", "--log", "t/audit", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (code, out, err) = self.run(&args, None);
        (
            code,
            serde_json::from_str(&out).unwrap_or(Value::String(out + &err)),
        )
    }

    fn verify(&self) -> Value {
        let (code, out, err) = self.run(&["verify", "--log", "t/audit"], None);
        assert_eq!(code, 0, "{out}{err}");
        serde_json::from_str(&out).unwrap()
    }

    /// Every stored entry: (envelope, body).
    fn entries(&self) -> Vec<(Value, Value)> {
        let (code, out, err) =
            self.run(&["entries", "--log", "t/audit", "--limit", "1000000"], None);
        if code != 0 {
            // The log was never created.
            assert!(out.contains("log.not_found"), "{out}{err}");
            return Vec::new();
        }
        let v: Value = serde_json::from_str(&out).unwrap();
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["envelope"].clone(), e["body"].clone()))
            .collect()
    }
}

fn line(i: usize) -> String {
    format!(
        r#"{{"kind":"test.event","actor":"user-{i}","request_id":"req-{i}","data":{{"n":{i},"f":1.0,"s":"caf\u00e9 \"{i}\""}}}}"#
    )
}

fn lines(n: usize) -> String {
    (0..n).map(|i| line(i) + "\n").collect()
}

#[test]
fn appends_every_line_in_batches_and_verifies() {
    let d = Data::new();
    let n = 2_345;
    let f = d.file("in.ndjson", &lines(n));
    let (code, out) = d.append_file(&f, &["--batch-size", "1000"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["appended"], n);
    assert_eq!(out["duplicates"], 0);
    assert_eq!(out["first_index"], 0);
    assert_eq!(out["last_index"], n - 1);
    assert_eq!(out["size"], n);
    let report = d.verify();
    assert_eq!(report["valid"], true);
    assert_eq!(report["checkpoints_checked"], 3);
    let entries = d.entries();
    assert_eq!(entries.len(), n);
    for (i, (env, body)) in entries.iter().enumerate() {
        assert_eq!(env["index"], i);
        assert_eq!(env["kind"], "test.event");
        // The body is the canonical form of the input's body fields.
        let want: Value = serde_json::from_str(&line(i)).unwrap();
        assert_eq!(body["request_id"], want["request_id"]);
        assert_eq!(body["actor"], want["actor"]);
        assert_eq!(body["data"]["n"], want["data"]["n"]);
        assert_eq!(body["data"]["f"], 1);
        assert_eq!(body["data"]["s"], want["data"]["s"]);
    }
}

/// Batch sizes that do not line up with the command's internal chunks.
#[test]
fn any_batch_size_gives_full_batches_in_order() {
    for (batch, n) in [("1", 30), ("7", 1_100), ("700", 2_100), ("1500", 2_100)] {
        let d = Data::new();
        let f = d.file("in.ndjson", &lines(n));
        let (code, out) = d.append_file(&f, &["--batch-size", batch]);
        assert_eq!(code, 0, "{out}");
        assert_eq!(out["appended"], n);
        let b: usize = batch.parse().unwrap();
        let report = d.verify();
        assert_eq!(report["valid"], true);
        assert_eq!(report["checkpoints_checked"], n.div_ceil(b));
        for (i, (env, body)) in d.entries().iter().enumerate() {
            assert_eq!(env["index"], i);
            assert_eq!(body["request_id"], format!("req-{i}"));
        }
    }
}

#[test]
fn the_first_bad_line_rejects_the_whole_input() {
    let d = Data::new();
    let n = 5_000;
    let mut text: Vec<String> = (0..n).map(line).collect();
    // Two bad lines far apart; the earlier one is reported, whichever part
    // of the input is checked first.
    text[4_321] = r#"{"kind":"test.event","bogus":1}"#.to_owned();
    text[3_210] = r#"{"kind":"test.event","data":{"a":1,"a":2}}"#.to_owned();
    let f = d.file("bad.ndjson", &(text.join("\n") + "\n"));
    let (code, out) = d.append_file(&f, &[]);
    assert_eq!(code, 1);
    assert_eq!(out["error"]["code"], "entry.duplicate_key", "{out}");
    assert_eq!(out["error"]["line"], 3_211);
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("nothing was appended")
    );
    assert!(d.entries().is_empty());
}

#[test]
fn a_bad_last_line_stores_nothing_even_in_an_existing_log() {
    let d = Data::new();
    let f = d.file("first.ndjson", &lines(10));
    assert_eq!(d.append_file(&f, &[]).0, 0);
    let mut text = lines(3_000);
    text.push_str("{\"kind\": 7}\n");
    let f = d.file("second.ndjson", &text);
    let (code, out) = d.append_file(&f, &["--batch-size", "100"]);
    assert_eq!(code, 1);
    assert_eq!(out["error"]["code"], "entry.bad_field", "{out}");
    assert_eq!(out["error"]["line"], 3_001);
    assert_eq!(d.entries().len(), 10);
}

#[test]
fn a_parent_must_come_before_the_entry() {
    let d = Data::new();
    let f = d.file("first.ndjson", &lines(5));
    assert_eq!(d.append_file(&f, &[]).0, 0);
    // These lines would be indices 5 to 8: a parent must be below.
    let text = [
        r#"{"kind":"a"}"#,
        r#"{"kind":"a","parent":4}"#,
        r#"{"kind":"a","parent":6}"#,
        r#"{"kind":"a","parent":8}"#,
    ]
    .join("\n");
    let f = d.file("parents.ndjson", &text);
    let (code, out) = d.append_file(&f, &[]);
    assert_eq!(code, 1);
    assert_eq!(out["error"]["code"], "entry.bad_field", "{out}");
    assert_eq!(out["error"]["line"], 4);
    assert_eq!(d.entries().len(), 5);
    let f = d.file("parents-ok.ndjson", &text[..text.rfind('\n').unwrap()]);
    let (code, out) = d.append_file(&f, &[]);
    assert_eq!(code, 0, "{out}");
    let entries = d.entries();
    assert_eq!(entries[7].0["parent"], 6);
    assert_eq!(entries[6].0["parent"], 4);
}

#[test]
fn blank_lines_are_skipped_and_lines_keep_their_numbers() {
    let d = Data::new();
    let text = format!("\n{}\n   \n\n{}\n\t\n{{\"kind\":\"\"}}\n", line(0), line(1));
    let f = d.file("blank.ndjson", &text);
    let (code, out) = d.append_file(&f, &[]);
    assert_eq!(code, 1);
    assert_eq!(out["error"]["line"], 7, "{out}");
    let f = d.file("blank-ok.ndjson", &text[..text.rfind('{').unwrap()]);
    let (code, out) = d.append_file(&f, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["appended"], 2);
}

#[test]
fn request_ids_already_logged_are_answered_not_stored() {
    let d = Data::new();
    let f = d.file("a.ndjson", &lines(300));
    assert_eq!(d.append_file(&f, &["--batch-size", "64"]).0, 0);
    // 200..500: 100 already in the log; and 450..460 twice in this input,
    // across a batch boundary.
    let mut text: String = (200..500).map(|i| line(i) + "\n").collect();
    text.extend((450..460).map(|i| line(i) + "\n"));
    let f = d.file("b.ndjson", &text);
    let (code, out) = d.append_file(&f, &["--batch-size", "64"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["appended"], 200);
    assert_eq!(out["duplicates"], 110);
    assert_eq!(out["first_index"], 300);
    assert_eq!(out["last_index"], 499);
    assert_eq!(out["size"], 500);
    let entries = d.entries();
    assert_eq!(entries.len(), 500);
    assert_eq!(entries[300].1["request_id"], "req-300");
    assert_eq!(d.verify()["valid"], true);
    // The same input again appends nothing.
    let (code, out) = d.append_file(&f, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["appended"], 0);
    assert_eq!(out["duplicates"], 310);
    assert_eq!(out["size"], 500);
}

#[test]
fn standard_input_is_read_once() {
    let d = Data::new();
    let n = 1_500;
    let (code, out, err) = d.run(&["append", "--log", "t/audit", "-"], Some(&lines(n)));
    assert_eq!(code, 0, "{out}{err}");
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["appended"], n);
    assert_eq!(d.entries().len(), n);
    let mut bad = lines(n);
    bad.push_str("not json\n");
    let (code, out, _) = d.run(&["append", "--log", "t/audit", "-"], Some(&bad));
    assert_eq!(code, 1);
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["error"]["line"], n + 1);
    assert_eq!(d.entries().len(), n);
}

#[test]
fn empty_input_appends_nothing() {
    let d = Data::new();
    let f = d.file("empty.ndjson", "\n\n");
    let (code, out) = d.append_file(&f, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["appended"], 0);
    assert_eq!(out["size"], 0);
}
