//! The writes pause (containment) end to end: `evident writes pause` on the
//! data directory reaches a running server, whose appends then answer 503
//! `writes.paused` with `Retry-After` while reads, verification and
//! `/ready` go on; `evident append` refuses too; the admin endpoint pauses
//! and resumes; both are recorded in the `_system/events` log.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod run;
mod server;

use std::time::Duration;

use serde_json::{Value, json};
use server::{Key, Resp, Server, eventually};

const LIMIT: Duration = Duration::from_secs(30);

fn acme() -> (tempfile::TempDir, Server, Key) {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start(&tmp.path().join("data"), &[]);
    s.tenant("acme");
    let k = s.key("acme", &["append", "read", "verify"]);
    (tmp, s, k)
}

fn append(s: &Server, k: &Key, i: u64) -> Resp {
    s.post("/v1/logs/audit/entries")
        .bearer(&k.token)
        .json(&json!({"kind": "user.login", "request_id": format!("r-{i}"), "actor": "a"}))
        .send()
}

fn cli(s: &Server, args: &[&str]) -> run::Run {
    let mut all = args.to_vec();
    all.extend(["--data-dir", s.dir.to_str().unwrap(), "--format", "json"]);
    run::evident(&all)
}

/// The kinds of the system log's entries, in order.
fn system_kinds(s: &Server) -> Vec<(String, Value)> {
    s.entries(&s.admin, "events")
        .iter()
        .map(|e| {
            (
                e["envelope"]["kind"].as_str().unwrap().to_owned(),
                e["body"].clone(),
            )
        })
        .collect()
}

#[test]
fn cli_pause_reaches_a_running_server_and_resume_lifts_it() {
    let (_tmp, s, k) = acme();
    assert_eq!(append(&s, &k, 0).status, 201);

    let paused = cli(
        &s,
        &[
            "writes",
            "pause",
            "--reason",
            "incident 42",
            "--by",
            "alice",
        ],
    );
    assert_eq!(paused.code, 0, "{paused:?}");
    let v = paused.json();
    assert_eq!(
        (&v["paused"], &v["by"], &v["reason"], &v["event_recorded"]),
        (
            &json!(true),
            &json!("alice"),
            &json!("incident 42"),
            &json!(true)
        )
    );

    // The server reads the pause from the database on its own. Until it
    // does, the retry of entry 0 stores nothing new.
    let refused = eventually(LIMIT, "append refused while paused", || {
        let r = append(&s, &k, 0);
        (r.status == 503).then_some(r)
    });
    let msg = refused.assert_error(503, "writes.paused");
    assert!(
        msg.contains("incident 42") && msg.contains("alice"),
        "{msg}"
    );
    assert_eq!(refused.header("retry-after"), Some("30"));
    // A refused append stores nothing, not even a new log.
    let other = s
        .post("/v1/logs/other/entries")
        .bearer(&k.token)
        .json(&json!({"kind": "user.login"}))
        .send();
    other.assert_error(503, "writes.paused");
    assert_eq!(s.size(&k.token, "other"), 0);
    assert_eq!(s.size(&k.token, "audit"), 1);

    // Reads, receipts and verification go on.
    assert_eq!(s.entries(&k.token, "audit").len(), 1);
    let r = s.get("/v1/logs/audit/receipts/0").bearer(&k.token).send();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.get("/v1/logs/audit/verify").bearer(&k.token).send();
    assert_eq!(
        (r.status, &r.json()["valid"]),
        (200, &json!(true)),
        "{}",
        r.text()
    );

    // Ready, reporting the pause without failing.
    let r = s.get("/ready").send();
    assert_eq!(r.status, 200, "{}", r.text());
    let w = &r.json()["checks"]["writes"];
    assert_eq!(
        (&w["status"], &w["paused"], &w["by"]),
        (&json!("ok"), &json!(true), &json!("alice"))
    );
    let r = s.get("/metrics").send();
    assert!(r.text().contains("evident_writes_paused 1"), "{}", r.text());

    // The CLI's own appends are refused as well, and store nothing.
    let input = s.dir.parent().unwrap().join("in.ndjson");
    std::fs::write(&input, "{\"kind\":\"user.login\"}\n").unwrap();
    let a = cli(
        &s,
        &["append", "--log", "acme/audit", input.to_str().unwrap()],
    );
    assert_eq!(a.code, 1, "{a:?}");
    assert_eq!(a.json()["error"]["code"], "writes.paused", "{a:?}");
    assert_eq!(s.size(&k.token, "audit"), 1);

    let status = cli(&s, &["writes", "status"]);
    assert_eq!(status.json()["paused"], true, "{status:?}");

    let resumed = cli(&s, &["writes", "resume", "--by", "bob"]);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert_eq!(resumed.json()["paused"], false);
    assert_eq!(resumed.json()["was"]["reason"], "incident 42");
    eventually(LIMIT, "append accepted after resume", || {
        (append(&s, &k, 1).status == 201).then_some(())
    });
    assert_eq!(s.size(&k.token, "audit"), 2);

    let kinds = system_kinds(&s);
    let paused_ev = kinds
        .iter()
        .find(|(kind, _)| kind == "evident.writes.paused")
        .unwrap_or_else(|| panic!("{kinds:?}"));
    assert_eq!(paused_ev.1["actor"], "alice");
    assert_eq!(paused_ev.1["data"]["reason"], "incident 42");
    let resumed_ev = kinds
        .iter()
        .find(|(kind, _)| kind == "evident.writes.resumed")
        .unwrap_or_else(|| panic!("{kinds:?}"));
    assert_eq!(resumed_ev.1["actor"], "bob");
}

#[test]
fn admin_endpoint_pauses_and_resumes_at_once() {
    let (_tmp, s, k) = acme();
    let r = s.get("/v1/admin/writes").bearer(&s.admin).send();
    assert_eq!((r.status, r.json()), (200, json!({"paused": false})));

    // A reason is required, and only the admin credential may switch.
    let r = s
        .post("/v1/admin/writes")
        .bearer(&s.admin)
        .json(&json!({"paused": true}))
        .send();
    r.assert_error(400, "writes.reason_required");
    let r = s
        .post("/v1/admin/writes")
        .bearer(&k.token)
        .json(&json!({"paused": true, "reason": "x"}))
        .send();
    r.assert_error(403, "auth.scope");
    assert_eq!(append(&s, &k, 0).status, 201);

    let v = s.admin(
        "/v1/admin/writes",
        &json!({"paused": true, "reason": "backup"}),
        200,
    );
    assert_eq!(
        (&v["paused"], &v["reason"]),
        (&json!(true), &json!("backup"))
    );
    // This node applies its own pause at once, without waiting for a poll.
    append(&s, &k, 1).assert_error(503, "writes.paused");
    let r = s.get("/v1/admin/writes").bearer(&s.admin).send();
    assert_eq!(r.json()["reason"], "backup");
    // The database holds it, for the CLI and other nodes.
    let st = cli(&s, &["writes", "status"]);
    assert_eq!(st.json()["reason"], "backup", "{st:?}");

    let v = s.admin("/v1/admin/writes", &json!({"paused": false}), 200);
    assert_eq!(v, json!({"paused": false}));
    assert_eq!(append(&s, &k, 1).status, 201);
    let kinds: Vec<String> = system_kinds(&s).into_iter().map(|(k, _)| k).collect();
    let at = |want: &str| {
        kinds
            .iter()
            .position(|k| k == want)
            .unwrap_or_else(|| panic!("{kinds:?}"))
    };
    assert!(
        at("evident.writes.paused") < at("evident.writes.resumed"),
        "{kinds:?}"
    );
}

#[test]
fn a_server_started_while_paused_refuses_its_first_append() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let init = run::evident(&["init", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(init.code, 0, "{init:?}");
    let p = run::evident(&[
        "writes",
        "pause",
        "--reason",
        "hold",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(p.code, 0, "{p:?}");
    assert!(p.stdout.contains("writes paused by"), "{p:?}");
    // No system log yet: the switch is stored, the event is not.
    assert!(p.stderr.contains("not recorded"), "{p:?}");
    let s = Server::start(&data, &[]);
    s.tenant("acme");
    let k = s.key("acme", &["append", "read"]);
    append(&s, &k, 0).assert_error(503, "writes.paused");
}
