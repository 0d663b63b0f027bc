//! Tenants, keys and limits of `evident serve`, driven over HTTP against
//! the real binary: a tenant never sees another's logs (they answer
//! exactly as a log that does not exist), the tenant comes from the key and
//! never from a header, revocation and suspension apply from the very next
//! request, scopes hold, `_system` is the server's alone, every failure
//! and denial and every admin change lands in the system event log, and
//! the per-key rate limit answers 429 with `Retry-After`.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod run;
mod server;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server::{Key, Resp, Server};

const ALL: &[&str] = &["append", "read", "verify"];

fn start(env: &[(&str, &str)]) -> (tempfile::TempDir, Server) {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start(&tmp.path().join("data"), env);
    (tmp, s)
}

fn entries(n: u64, tag: &str) -> Value {
    json!({"entries": (0..n).map(|i| json!({
        "kind": "doc.read",
        "request_id": format!("{tag}-{i}"),
        "actor": tag,
    })).collect::<Vec<_>>()})
}

fn append(s: &Server, token: &str, log: &str, body: &Value) -> Resp {
    s.post(&format!("/v1/logs/{log}/entries"))
        .bearer(token)
        .json(body)
        .send()
}

/// A server with tenants acme and globex, and a key of each with every
/// tenant scope.
fn two_tenants() -> (tempfile::TempDir, Server, Key, Key) {
    let (tmp, s) = start(&[]);
    s.tenant("acme");
    s.tenant("globex");
    let acme = s.key("acme", ALL);
    let globex = s.key("globex", ALL);
    (tmp, s, acme, globex)
}

/// The paths of every read of log `log`.
fn reads(log: &str) -> Vec<String> {
    [
        "entries",
        "entries?from=0&limit=5",
        "entries/0",
        "receipts/0",
        "checkpoint",
        "tile/0/000.p/1",
        "tile/entries/000.p/1",
        "proofs/consistency?from=1&to=3",
        "verify",
    ]
    .iter()
    .map(|p| format!("/v1/logs/{log}/{p}"))
    .collect()
}

/// Status, error body without its request id, and content type.
fn answer(r: &Resp) -> (u16, Value, Option<String>) {
    let (status, body) = r.without_request_id();
    (status, body, r.header("content-type").map(str::to_owned))
}

#[test]
fn another_tenants_log_answers_exactly_like_a_missing_one() {
    let (_tmp, s, acme, globex) = two_tenants();

    // What acme gets for "ledger" while no tenant has one.
    let before: Vec<_> = reads("ledger")
        .iter()
        .map(|p| {
            let r = s.get(p).bearer(&acme.token).send();
            r.assert_error(404, "log.not_found");
            answer(&r)
        })
        .collect();
    // globex makes one; acme's answers do not change by a byte.
    let r = append(&s, &globex.token, "ledger", &entries(3, "g"));
    assert_eq!(r.status, 201, "{}", r.text());
    for (p, want) in reads("ledger").iter().zip(&before) {
        let r = s.get(p).bearer(&acme.token).send();
        assert_eq!(&answer(&r), want, "{p}");
        // …while globex reads its own log there.
        let own = s.get(p).bearer(&globex.token).send();
        assert_eq!(own.status, 200, "{p}: {}", own.text());
    }
    // And a name nobody has answers the same, but for the name.
    for (p, want) in reads("ghost").iter().zip(&before) {
        let r = s.get(p).bearer(&acme.token).send();
        let (status, body, ctype) = answer(&r);
        let body: Value =
            serde_json::from_str(&body.to_string().replace("ghost", "ledger")).unwrap();
        assert_eq!(&(status, body, ctype), want, "{p}");
    }
    assert_eq!(s.size(&acme.token, "ledger"), 0);

    // Same log name in both tenants: two logs.
    assert_eq!(
        append(&s, &acme.token, "audit", &entries(2, "a")).status,
        201
    );
    assert_eq!(
        append(&s, &globex.token, "audit", &entries(5, "g")).status,
        201
    );
    let mine = s.entries(&acme.token, "audit");
    let theirs = s.entries(&globex.token, "audit");
    assert_eq!((mine.len(), theirs.len()), (2, 5));
    assert!(mine.iter().all(
        |e| e["envelope"]["origin"] == "evident.local/acme/audit" && e["body"]["actor"] == "a"
    ));
    assert!(
        theirs
            .iter()
            .all(|e| e["envelope"]["origin"] == "evident.local/globex/audit")
    );
    // An append to "ledger" by acme makes acme's own; globex's is as it was.
    let r = append(&s, &acme.token, "ledger", &entries(1, "a"));
    assert_eq!(
        (r.status, &r.json()["entries"][0]["index"]),
        (201, &json!(0))
    );
    assert_eq!(s.size(&globex.token, "ledger"), 3);
    assert!(
        s.entries(&globex.token, "ledger")
            .iter()
            .all(|e| e["body"]["actor"] == "g")
    );
    let names = |token: &str| -> Vec<String> {
        s.get("/v1/logs").bearer(token).send().json()["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&acme.token), ["audit", "ledger"]);
    assert_eq!(names(&globex.token), ["audit", "ledger"]);
    // The admin key is the system tenant's: it sees only the event log.
    assert_eq!(names(&s.admin), ["events"]);
    s.get("/v1/logs/audit/entries")
        .bearer(&s.admin)
        .send()
        .assert_error(404, "log.not_found");
}

#[test]
fn the_tenant_comes_from_the_key_never_from_a_header() {
    let (_tmp, s, acme, globex) = two_tenants();
    assert_eq!(
        append(&s, &globex.token, "audit", &entries(1, "g")).status,
        201
    );

    let r = s
        .get("/v1/logs")
        .bearer(&acme.token)
        .header("X-Tenant-ID", "acme")
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    for claimed in ["globex", "_system", "ACME", ""] {
        s.get("/v1/logs/audit/entries")
            .bearer(&acme.token)
            .header("X-Tenant-ID", claimed)
            .send()
            .assert_error(403, "auth.tenant_mismatch");
        s.post("/v1/logs/audit/entries")
            .bearer(&acme.token)
            .header("X-Tenant-ID", claimed)
            .json(&entries(2, "spoof"))
            .send()
            .assert_error(403, "auth.tenant_mismatch");
    }
    assert_eq!(s.size(&acme.token, "audit"), 0);
    assert_eq!(s.size(&globex.token, "audit"), 1);
}

#[test]
fn missing_malformed_unknown_and_revoked_keys_are_refused() {
    let (_tmp, s) = start(&[]);
    s.tenant("acme");
    let k = s.key("acme", ALL);
    assert_eq!(append(&s, &k.token, "audit", &entries(1, "a")).status, 201);

    s.get("/v1/logs").send().assert_error(401, "auth.missing");
    s.post("/v1/logs/audit/entries")
        .json(&entries(1, "x"))
        .send()
        .assert_error(401, "auth.missing");
    for header in [
        "Basic YWxhZGRpbjpvcGVuc2VzYW1l".to_owned(),
        "Bearer".to_owned(),
        "Bearer nope".to_owned(),
        format!("Token {}", k.token),
        format!("Bearer {}x", k.token),
        format!("Bearer {}", &k.token[..k.token.len() - 1]),
    ] {
        s.get("/v1/logs")
            .header("Authorization", &header)
            .send()
            .assert_error(401, "auth.invalid");
    }
    // A well-formed key nobody issued and a known id with the wrong secret
    // answer alike: the answer does not say which ids exist.
    let secret = &k.token[k.token.len() - 43..];
    let unknown = format!("evk_0123456789abcdef_{secret}");
    let mut flipped = k.token.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let wrong_secret = String::from_utf8(flipped).unwrap();
    let a = s.get("/v1/logs").bearer(&unknown).send();
    let b = s.get("/v1/logs").bearer(&wrong_secret).send();
    a.assert_error(401, "auth.invalid");
    b.assert_error(401, "auth.invalid");
    assert_eq!(a.without_request_id(), b.without_request_id());

    // Revoked over HTTP: refused from the very next request.
    let r = s.get("/v1/logs").bearer(&k.token).send();
    assert_eq!(r.status, 200);
    let revoked = s.admin(
        &format!("/v1/admin/api-keys/{}/revoke", k.id),
        &json!({}),
        200,
    );
    assert_eq!(revoked["id"], k.id.as_str());
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    s.get("/v1/logs")
        .bearer(&k.token)
        .send()
        .assert_error(401, "auth.revoked");
    s.post("/v1/logs/audit/entries")
        .bearer(&k.token)
        .json(&entries(1, "late"))
        .send()
        .assert_error(401, "auth.revoked");
    let list = s.get("/v1/admin/api-keys").bearer(&s.admin).send().json();
    let listed = list["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == k.id.as_str())
        .unwrap();
    assert_eq!(listed["revoked_at"], revoked["revoked_at"]);
    assert!(
        !list.to_string().contains(secret),
        "a listed key shows its secret"
    );
    s.post("/v1/admin/api-keys/0123456789abcdef/revoke")
        .bearer(&s.admin)
        .send()
        .assert_error(404, "api_key.not_found");

    // Nothing was stored by a refused key: a new key sees one entry.
    let k2 = s.key("acme", ALL);
    assert_eq!(s.size(&k2.token, "audit"), 1);
}

/// `evident api-key revoke` on the data directory while the server runs
/// on it: the server refuses the key from its next request, though it
/// had just used (and kept) that key's lookup.
#[test]
fn revoked_with_the_cli_while_the_server_runs() {
    let (_tmp, s) = start(&[]);
    s.tenant("acme");
    let k = s.key("acme", ALL);
    assert_eq!(append(&s, &k.token, "audit", &entries(1, "a")).status, 201);
    assert_eq!(s.size(&k.token, "audit"), 1);
    let out = run::evident(&[
        "api-key",
        "revoke",
        "--data-dir",
        s.dir.to_str().unwrap(),
        &k.id,
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.json()["revoked_at"].is_string(), "{out:?}");
    s.get("/v1/logs")
        .bearer(&k.token)
        .send()
        .assert_error(401, "auth.revoked");
    // Suspension through the CLI applies at once too.
    let k2 = s.key("acme", ALL);
    assert_eq!(s.size(&k2.token, "audit"), 1);
    let out = run::evident(&[
        "tenant",
        "suspend",
        "--data-dir",
        s.dir.to_str().unwrap(),
        "acme",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    s.get("/v1/logs")
        .bearer(&k2.token)
        .send()
        .assert_error(403, "tenant.suspended");
}

#[test]
fn a_suspended_tenant_is_refused_until_resumed() {
    let (_tmp, s, acme, globex) = two_tenants();
    assert_eq!(
        append(&s, &acme.token, "audit", &entries(2, "a")).status,
        201
    );

    let t = s.admin("/v1/admin/tenants/acme/suspend", &json!({}), 200);
    assert_eq!(
        (&t["name"], &t["status"]),
        (&json!("acme"), &json!("suspended"))
    );
    for r in [
        s.get("/v1/logs").bearer(&acme.token).send(),
        s.get("/v1/logs/audit/entries").bearer(&acme.token).send(),
        append(&s, &acme.token, "audit", &entries(3, "during")),
    ] {
        r.assert_error(403, "tenant.suspended");
    }
    // A key issued while suspended is refused too; other tenants go on.
    let fresh = s.key("acme", ALL);
    s.get("/v1/logs")
        .bearer(&fresh.token)
        .send()
        .assert_error(403, "tenant.suspended");
    assert_eq!(
        append(&s, &globex.token, "audit", &entries(1, "g")).status,
        201
    );
    let list = s.get("/v1/admin/tenants").bearer(&s.admin).send().json();
    let status = |name: &str| {
        list["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(
        (status("acme"), status("globex")),
        (json!("suspended"), json!("active"))
    );

    let t = s.admin("/v1/admin/tenants/acme/resume", &json!({}), 200);
    assert_eq!(t["status"], "active");
    assert_eq!(
        s.size(&acme.token, "audit"),
        2,
        "nothing stored while suspended"
    );
    assert_eq!(
        append(&s, &fresh.token, "audit", &entries(1, "after")).status,
        201
    );

    s.post("/v1/admin/tenants/nobody/suspend")
        .bearer(&s.admin)
        .send()
        .assert_error(404, "tenant.not_found");
}

#[test]
fn scopes_limit_what_a_key_may_do() {
    let (_tmp, s) = start(&[]);
    s.tenant("acme");
    let writer = s.key("acme", &["append"]);
    let reader = s.key("acme", &["read"]);
    let verifier = s.key("acme", &["verify"]);
    let full = s.key("acme", ALL);

    assert_eq!(
        append(&s, &writer.token, "audit", &entries(2, "w")).status,
        201
    );
    for k in [&reader, &verifier] {
        append(&s, &k.token, "audit", &entries(1, "x")).assert_error(403, "auth.scope");
    }
    for p in [
        "/v1/logs",
        "/v1/logs/audit/entries",
        "/v1/logs/audit/checkpoint",
    ] {
        for k in [&writer, &verifier] {
            s.get(p)
                .bearer(&k.token)
                .send()
                .assert_error(403, "auth.scope");
        }
        assert_eq!(s.get(p).bearer(&reader.token).send().status, 200, "{p}");
    }
    for k in [&writer, &reader] {
        s.get("/v1/logs/audit/verify")
            .bearer(&k.token)
            .send()
            .assert_error(403, "auth.scope");
    }
    let r = s
        .get("/v1/logs/audit/verify")
        .bearer(&verifier.token)
        .send();
    assert_eq!((r.status, &r.json()["valid"]), (200, &json!(true)));

    // A tenant key, whatever its scopes, is no admin.
    for (method, path) in [
        ("GET", "/v1/admin/tenants"),
        ("POST", "/v1/admin/tenants"),
        ("POST", "/v1/admin/tenants/acme/suspend"),
        ("POST", "/v1/admin/tenants/acme/resume"),
        ("GET", "/v1/admin/api-keys"),
        ("POST", "/v1/admin/api-keys"),
        ("POST", &format!("/v1/admin/api-keys/{}/revoke", full.id)),
    ] {
        s.req(method, path)
            .bearer(&full.token)
            .json(&json!({"name": "evil", "tenant": "acme", "scopes": ["append"]}))
            .send()
            .assert_error(403, "auth.scope");
    }
    // Nothing changed: no tenant "evil", the key still works.
    let list = s.get("/v1/admin/tenants").bearer(&s.admin).send().json();
    assert!(!list.to_string().contains("evil"), "{list}");
    assert_eq!(s.get("/v1/logs").bearer(&full.token).send().status, 200);
    // And the admin key cannot append: admin does not imply append.
    append(&s, &s.admin, "events", &entries(1, "adm")).assert_error(403, "auth.scope");
    // Scopes a tenant key cannot have.
    for scopes in [json!(["admin"]), json!(["write"]), json!([])] {
        s.post("/v1/admin/api-keys")
            .bearer(&s.admin)
            .json(&json!({"tenant": "acme", "scopes": scopes}))
            .send()
            .assert_error(400, "api_key.bad_scopes");
    }
    s.post("/v1/admin/api-keys")
        .bearer(&s.admin)
        .json(&json!({"tenant": "nobody", "scopes": ["read"]}))
        .send()
        .assert_error(404, "tenant.not_found");
    assert_eq!(s.size(&reader.token, "audit"), 2);
}

#[test]
fn system_names_are_the_servers_alone() {
    let (_tmp, s) = start(&[]);
    for name in ["_system", "_anything"] {
        s.post("/v1/admin/tenants")
            .bearer(&s.admin)
            .json(&json!({"name": name}))
            .send()
            .assert_error(400, "tenant.reserved");
    }
    s.post("/v1/admin/tenants")
        .bearer(&s.admin)
        .json(&json!({"name": "Bad Name"}))
        .send()
        .assert_error(400, "tenant.bad_name");
    s.tenant("acme");
    s.post("/v1/admin/tenants")
        .bearer(&s.admin)
        .json(&json!({"name": "acme"}))
        .send()
        .assert_error(409, "tenant.exists");
    s.post("/v1/admin/api-keys")
        .bearer(&s.admin)
        .json(&json!({"tenant": "_system", "scopes": ["read"]}))
        .send()
        .assert_error(400, "tenant.reserved");
    for action in ["suspend", "resume"] {
        s.post(&format!("/v1/admin/tenants/_system/{action}"))
            .bearer(&s.admin)
            .send()
            .assert_error(400, "tenant.reserved");
    }

    let k = s.key("acme", ALL);
    for log in ["_system", "_events"] {
        append(&s, &k.token, log, &entries(1, "a")).assert_error(400, "log.bad_name");
        s.get(&format!("/v1/logs/{log}/entries"))
            .bearer(&k.token)
            .send()
            .assert_error(400, "log.bad_name");
    }
    // The system event log's name inside a tenant is an ordinary name: the
    // tenant's own (missing) log, never the system's.
    s.get("/v1/logs/events/entries")
        .bearer(&k.token)
        .send()
        .assert_error(404, "log.not_found");
    s.get("/v1/logs")
        .bearer(&k.token)
        .header("X-Tenant-ID", "_system")
        .send()
        .assert_error(403, "auth.tenant_mismatch");
    append(
        &s,
        &k.token,
        "audit",
        &json!({"kind": "evident.server.stopped"}),
    )
    .assert_error(400, "entry.reserved_kind");
    let tenants = s.get("/v1/admin/tenants").bearer(&s.admin).send().json();
    let names: Vec<&str> = tenants["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["_system", "acme"]);
}

/// One event of the system log as one line: kind, actor, action,
/// resource, outcome and error code, separated by " | ".
fn event(e: &Value) -> String {
    let b = &e["body"];
    [
        &e["envelope"]["kind"],
        &b["actor"],
        &b["action"],
        &b["resource"],
        &b["outcome"],
        &b["data"]["code"],
    ]
    .map(|v| v.as_str().unwrap_or(""))
    .join(" | ")
}

#[test]
fn the_system_log_records_failures_denials_and_admin_changes() {
    let (_tmp, s) = start(&[]);
    s.tenant("acme");
    let k = s.key("acme", ALL);
    let reader = s.key("acme", &["read"]);
    let doomed = s.key("acme", ALL);
    let admin = &s.admin[4..20];
    let (kid, rid, did) = (&k.id, &reader.id, &doomed.id);
    let forged = format!("evk_0123456789abcdef_{}", &k.token[21..]);

    // Each refusal and the event it must leave, with its request id.
    let refusals = [
        (
            s.get("/v1/logs").send(),
            401,
            "evident.auth.failed | anonymous | GET /v1/logs |  | denied | auth.missing".to_owned(),
        ),
        (
            s.get("/v1/logs/x/entries")
                .header("Authorization", "Bearer nope")
                .send(),
            401,
            "evident.auth.failed | anonymous | GET /v1/logs/x/entries |  | denied | auth.invalid"
                .into(),
        ),
        (
            s.get("/v1/logs").bearer(&forged).send(),
            401,
            "evident.auth.failed | 0123456789abcdef | GET /v1/logs |  | denied | auth.invalid"
                .into(),
        ),
        (
            s.get("/v1/logs")
                .bearer(&k.token)
                .header("X-Tenant-ID", "globex")
                .send(),
            403,
            format!(
                "evident.auth.denied | {kid} | GET /v1/logs |  | denied | auth.tenant_mismatch"
            ),
        ),
        (
            append(&s, &reader.token, "audit", &entries(1, "r")),
            403,
            format!(
                "evident.auth.denied | {rid} | POST /v1/logs/audit/entries | acme | denied | auth.scope"
            ),
        ),
        (
            {
                s.admin(&format!("/v1/admin/api-keys/{did}/revoke"), &json!({}), 200);
                s.get("/v1/logs").bearer(&doomed.token).send()
            },
            401,
            format!("evident.auth.failed | {did} | GET /v1/logs |  | denied | auth.revoked"),
        ),
        (
            {
                s.admin("/v1/admin/tenants/acme/suspend", &json!({}), 200);
                s.get("/v1/logs").bearer(&k.token).send()
            },
            403,
            format!("evident.auth.denied | {kid} | GET /v1/logs |  | denied | tenant.suspended"),
        ),
    ];
    s.admin("/v1/admin/tenants/acme/resume", &json!({}), 200);
    let mut want: Vec<(String, Option<&str>)> = [
        "evident.server.started | server | start | evident.local | ok | ".to_owned(),
        format!("evident.admin.change | {admin} | tenant create | acme | ok | "),
        format!("evident.admin.change | {admin} | api-key issue | acme/{kid} | ok | "),
        format!("evident.admin.change | {admin} | api-key issue | acme/{rid} | ok | "),
        format!("evident.admin.change | {admin} | api-key issue | acme/{did} | ok | "),
        format!("evident.admin.change | {admin} | api-key revoke | {did} | ok | "),
        format!("evident.admin.change | {admin} | tenant suspended | acme | ok | "),
        format!("evident.admin.change | {admin} | tenant active | acme | ok | "),
    ]
    .into_iter()
    .map(|w| (w, None))
    .collect();
    for (r, status, line) in &refusals {
        r.assert_error(*status, line.rsplit(" | ").next().unwrap());
        want.push((line.clone(), Some(r.request_id())));
    }

    // Events are written without holding up the request: wait for them.
    let deadline = Instant::now() + Duration::from_secs(30);
    let found = loop {
        let got = s.entries(&s.admin, "events");
        let lines: Vec<String> = got.iter().map(event).collect();
        let missing: Vec<&str> = want
            .iter()
            .filter(|(w, _)| !lines.contains(w))
            .map(|(w, _)| w.as_str())
            .collect();
        if missing.is_empty() {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "not in the system log:\n{}\nthe log:\n{}",
            missing.join("\n"),
            lines.join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(event(&found[0]), want[0].0);
    // Each refusal's event names the request id the client was given.
    for (w, request_id) in &want {
        let Some(request_id) = request_id else {
            continue;
        };
        let e = found.iter().find(|e| event(e) == *w).unwrap();
        assert_eq!(e["body"]["data"]["request_id"], *request_id, "{e}");
    }
    // No token's secret is written.
    let text = serde_json::to_string(&found).unwrap();
    for token in [&k.token, &reader.token, &doomed.token, &s.admin] {
        assert!(
            !text.contains(&token[21..]),
            "a secret is in the system log"
        );
    }
    // The system log is a log like any other: it verifies.
    let r = s.get("/v1/logs/events/verify").bearer(&s.admin).send();
    assert_eq!(
        (r.status, &r.json()["valid"]),
        (200, &json!(true)),
        "{}",
        r.text()
    );
}

#[test]
fn the_rate_limit_answers_429_with_retry_after() {
    let (_tmp, s) = start(&[
        ("EVIDENT_RATE_LIMIT_PER_SECOND", "1"),
        ("EVIDENT_RATE_LIMIT_BURST", "2"),
    ]);
    // The admin key has its own bucket: two calls fit its burst.
    s.tenant("acme");
    let k = s.key("acme", ALL);

    let first = s.get("/v1/logs").bearer(&k.token).send();
    let second = append(&s, &k.token, "audit", &entries(1, "a"));
    let third = append(&s, &k.token, "audit", &entries(1, "b"));
    assert_eq!(
        (first.status, second.status),
        (200, 201),
        "{}",
        second.text()
    );
    third.assert_error(429, "rate.limited");
    let wait: u64 = third
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {third:?}"))
        .parse()
        .unwrap();
    assert!(wait >= 1, "{wait}");
    // Unauthenticated endpoints are not the key's: still served.
    for _ in 0..3 {
        assert_eq!(s.get("/health").send().status, 200);
    }
    let metrics = s.get("/metrics").send().text();
    assert!(
        metrics.contains("evident_rate_limited_requests_total 1"),
        "{metrics}"
    );
    // After waiting as told, the key is served again; the refused entry
    // was never stored.
    std::thread::sleep(Duration::from_secs(wait));
    assert_eq!(s.size(&k.token, "audit"), 1);
    // The refusal is in the system log, under the key and the request id.
    let events = s.entries(&s.admin, "events");
    let want = format!(
        "evident.rate.limited | {} | POST /v1/logs/audit/entries | acme | denied | rate.limited",
        k.id
    );
    assert!(
        events
            .iter()
            .any(|e| event(e) == want && e["body"]["data"]["request_id"] == third.request_id()),
        "{events:#?}"
    );
}
