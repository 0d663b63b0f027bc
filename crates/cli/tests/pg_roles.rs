#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
//! The documented PostgreSQL role layout, on a throwaway cluster.
//!
//! `docs/postgres-roles.sql` is run as written: the owner role migrates
//! and initialises the database through the real binary, then a real
//! `evident serve` runs as the service role and does everything a server
//! does (tenants, API keys and their revocation, batched appends that
//! widen a tile, reads, receipts, verification), while every attempt of
//! the service role to change the schema or get round the append-only
//! triggers is refused by PostgreSQL with `insufficient_privilege`. The
//! same statement by the owner gets through (inside a rolled-back
//! transaction), which shows the refusal comes from the role and not from
//! something else. Skips, saying so, when PostgreSQL is not installed,
//! unless EVIDENT_REQUIRE_POSTGRES=1.
#![cfg(unix)]

mod run;
mod server;

use evident_pgtest::Cluster;
use evident_pgtest::postgres::error::SqlState;
use evident_pgtest::postgres::{Client, NoTls};
use serde_json::{Value, json};
use server::Server;

/// The layout script the documentation gives.
const ROLES_SQL: &str = include_str!("../../../docs/postgres-roles.sql");

/// The database name the script grants on.
const DB: &str = "evident";

fn role_url(cluster: &Cluster, role: &str) -> String {
    format!("postgres://{role}@127.0.0.1:{}/{DB}", cluster.port())
}

fn connect(url: &str) -> Client {
    Client::connect(url, NoTls).unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

/// `evident ARGS…` against `url` with data directory `dir`.
fn evident_at(url: &str, dir: &std::path::Path, args: &[&str]) -> run::Run {
    let mut all = args.to_vec();
    all.extend(["--data-dir", dir.to_str().unwrap(), "--database-url", url]);
    run::evident(&all)
}

/// Creates the two roles and the owner's database as the superuser.
fn create_roles_and_database(cluster: &Cluster) {
    let mut su = cluster.client("postgres");
    su.batch_execute("CREATE ROLE evident_owner LOGIN; CREATE ROLE evident_service LOGIN")
        .unwrap();
    su.batch_execute(&format!("CREATE DATABASE {DB} OWNER evident_owner"))
        .unwrap();
    cluster
        .client(DB)
        .batch_execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        .unwrap();
}

/// Appends `n` entries in one request; the answer's entries.
fn append(s: &Server, token: &str, log: &str, from: u64, n: u64) -> Vec<Value> {
    let body = json!({"entries": (from..from + n).map(|i| json!({
        "kind": "role.test",
        "request_id": format!("r-{i}"),
        "data": {"i": i},
    })).collect::<Vec<_>>()});
    let r = s
        .post(&format!("/v1/logs/{log}/entries"))
        .bearer(token)
        .json(&body)
        .send();
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    r.json()["entries"].as_array().unwrap().clone()
}

#[test]
fn service_role_serves_but_cannot_change_schema_or_triggers() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    create_roles_and_database(cluster);
    let owner_url = role_url(cluster, "evident_owner");
    let service_url = role_url(cluster, "evident_service");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");

    // The owner migrates and initialises; the service could do neither.
    let m = evident_at(&owner_url, &data, &["migrate", "up", "--format", "json"]);
    assert_eq!(m.code, 0, "{m:?}");
    let init = evident_at(&owner_url, &data, &["init", "--format", "json"]);
    assert_eq!(init.code, 0, "{init:?}");
    connect(&owner_url).batch_execute(ROLES_SQL).unwrap();

    // A server as the service role.
    let s = Server::start(&data, &[("EVIDENT_DATABASE_URL", service_url.as_str())]);
    assert_eq!(s.started["fields"]["backend"], "postgres", "{}", s.started);
    s.tenant("acme");
    let key = s.key("acme", &["append", "read", "verify"]);
    let spare = s.key("acme", &["append", "read"]);

    // Two batches: the second widens the partial tile 0/0 (an UPDATE of
    // tiles), and a repeated request id is answered from the log.
    let first = append(&s, &key.token, "audit", 0, 30);
    let second = append(&s, &key.token, "audit", 30, 50);
    assert_eq!(first[29]["index"], 29);
    assert_eq!(second[49]["index"], 79);
    let again = append(&s, &key.token, "audit", 10, 1);
    assert_eq!(again[0]["index"], 10);
    assert_eq!(s.size(&key.token, "audit"), 80);
    let stored = s.entries(&key.token, "audit");
    assert_eq!(stored.len(), 80);
    assert_eq!(stored[42]["body"]["request_id"], "r-42");
    let receipt = s
        .get("/v1/logs/audit/receipts/42")
        .bearer(&key.token)
        .send();
    assert_eq!(receipt.status, 200, "{}", receipt.text());
    let verify = s.get("/v1/logs/audit/verify").bearer(&key.token).send();
    assert_eq!(verify.status, 200, "{}", verify.text());
    assert_eq!(verify.json()["valid"], true, "{}", verify.text());

    // Suspension and resumption (UPDATE of tenants), revocation (UPDATE
    // of api_keys): the revoked key is refused from then on.
    s.admin("/v1/admin/tenants/acme/suspend", &json!({}), 200);
    s.get("/v1/logs")
        .bearer(&spare.token)
        .send()
        .assert_error(403, "tenant.suspended");
    s.admin("/v1/admin/tenants/acme/resume", &json!({}), 200);
    assert_eq!(s.size(&spare.token, "audit"), 80);
    s.admin(
        &format!("/v1/admin/api-keys/{}/revoke", spare.id),
        &json!({}),
        200,
    );
    s.get("/v1/logs")
        .bearer(&spare.token)
        .send()
        .assert_error(401, "auth.revoked");
    assert_eq!(s.size(&key.token, "audit"), 80);

    // The writes pause (a row of meta, set and cleared): appends are
    // refused while it holds, and go on after.
    s.admin(
        "/v1/admin/writes",
        &json!({"paused": true, "reason": "role test"}),
        200,
    );
    s.post("/v1/logs/audit/entries")
        .bearer(&key.token)
        .json(&json!({"kind": "t.paused"}))
        .send()
        .assert_error(503, "writes.paused");
    s.admin("/v1/admin/writes", &json!({"paused": false}), 200);
    let after = s
        .post("/v1/logs/audit/entries")
        .bearer(&key.token)
        .json(&json!({"kind": "t.resumed"}))
        .send();
    assert_eq!(after.status, 201, "{}", after.text());
    assert_eq!(s.size(&key.token, "audit"), 81);

    // What the service role must not do, each refused by PostgreSQL for
    // lack of privilege (not by a trigger, which an owner could disable).
    let mut svc = connect(&service_url);
    let forbidden = [
        "DROP TABLE entries",
        "TRUNCATE entries",
        "TRUNCATE checkpoints",
        "ALTER TABLE entries DISABLE TRIGGER ALL",
        "ALTER TABLE checkpoints DISABLE TRIGGER checkpoints_no_change",
        "DROP TRIGGER entries_no_delete ON entries",
        "SET session_replication_role = replica",
        "CREATE TABLE shadow (x int)",
        "CREATE OR REPLACE FUNCTION evident_append_only() RETURNS trigger \
         LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        "UPDATE entries SET body = NULL WHERE idx = 1",
        "DELETE FROM entries WHERE idx = 79",
        "UPDATE checkpoints SET note = 'x'",
        "DELETE FROM keys",
        "UPDATE logs SET origin = 'x'",
        "DELETE FROM schema_migrations",
        "UPDATE meta SET key = 'x'",
        "ALTER TABLE entries OWNER TO evident_service",
        "ALTER ROLE evident_service SUPERUSER",
    ];
    for sql in forbidden {
        let err = svc
            .batch_execute(sql)
            .err()
            .unwrap_or_else(|| panic!("the service role could run {sql}"));
        assert_eq!(
            err.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {err:?}"
        );
    }
    drop(svc);

    // The owner could (rolled back here): the boundary is the role.
    let mut owner = connect(&owner_url);
    let mut tx = owner.transaction().unwrap();
    tx.batch_execute(
        "ALTER TABLE entries DISABLE TRIGGER USER; DELETE FROM entries WHERE idx = 80",
    )
    .unwrap();
    tx.rollback().unwrap();

    // Nothing changed, and the log still verifies from the CLI as the
    // service role.
    assert_eq!(s.size(&key.token, "audit"), 81);
    let v = evident_at(
        &service_url,
        &data,
        &["verify", "--log", "acme/audit", "--format", "json"],
    );
    assert_eq!(v.code, 0, "{v:?}");
    assert_eq!(v.json()["valid"], true);
    assert_eq!(v.json()["total_count"], 81);
}
