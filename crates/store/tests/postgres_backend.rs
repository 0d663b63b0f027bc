//! What the PostgreSQL backend does beyond the shared conformance suite:
//! TRUNCATE (which SQLite lacks) is refused like DELETE, an unreachable or
//! restarted server is `db.unavailable`, and the per-request key lookup
//! and the batch's request-id lookup use their indexes.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use evident_core::ErrorCode;
use evident_pgtest::Cluster;
use evident_store::postgres::{PgStore, map_err};
use evident_store::{Store, StoreError};

fn migrated(cluster: &Cluster) -> (String, PgStore) {
    let db = cluster.create_database();
    let mut store = PgStore::connect(&cluster.url(&db)).unwrap();
    store.migrate_up().unwrap();
    (db, store)
}

#[test]
fn truncate_is_refused_on_every_append_only_table() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let (db, mut store) = migrated(cluster);
    store.initialize("pg.test", "k+00000000+AA", "t").unwrap();
    store.create_tenant("acme", "t").unwrap();
    for table in ["entries", "checkpoints", "keys", "tenants", "api_keys"] {
        let got = store
            .client()
            .batch_execute(&format!("TRUNCATE {table} CASCADE"))
            .map_err(map_err);
        assert!(
            matches!(&got, Err(StoreError::AppendOnly(m)) if m.starts_with("evident: ")),
            "TRUNCATE {table}: {got:?}"
        );
    }
    // Through the log table's cascade too.
    let got = store
        .client()
        .batch_execute("TRUNCATE logs CASCADE")
        .map_err(map_err);
    assert!(matches!(got, Err(StoreError::AppendOnly(_))), "{got:?}");
    assert_eq!(store.keys().unwrap().len(), 1);
    assert_eq!(store.tenants().unwrap().len(), 1);
    // Tiles are derived data.
    store.client().batch_execute("TRUNCATE tiles").unwrap();
    drop(store);
    cluster.drop_database(&db);
}

#[test]
fn an_unreachable_server_is_db_unavailable() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    // A port nobody listens on: the cluster's, plus one, is not promised
    // free, so bind one and close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let got = PgStore::connect(&format!("postgres://postgres@127.0.0.1:{port}/x"));
    let err = got.err().unwrap();
    assert_eq!(err.code(), "db.unavailable", "{err}");
    let bad = PgStore::connect("postgres://[::1").err().unwrap();
    assert_eq!(bad.code(), "db.bad_url", "{bad}");
    // An existing database, a connection that is then cut by the server
    // (pg_terminate_backend, as a restart does to every session).
    let (db, mut store) = migrated(cluster);
    let pid: i32 = store
        .client()
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    cluster
        .client(&db)
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap();
    let err = store.logs().err().unwrap();
    assert_eq!(err.code(), "db.unavailable", "{err}");
    // A new connection works.
    assert_eq!(
        PgStore::connect(&cluster.url(&db)).unwrap().logs().unwrap(),
        []
    );
    drop(store);
    cluster.drop_database(&db);
}

/// EXPLAIN of a statement, one line per plan node.
fn plan(store: &mut PgStore, sql: &str) -> String {
    store
        .client()
        .batch_execute("SET enable_seqscan = off")
        .unwrap();
    let rows = store
        .client()
        .query(&format!("EXPLAIN {sql}"), &[])
        .unwrap();
    rows.iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn lookups_use_their_indexes() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let (db, mut store) = migrated(cluster);
    let p = plan(
        &mut store,
        "SELECT j.i, e.idx FROM unnest(ARRAY['a','b']::text[]) WITH ORDINALITY AS j (rid, i)
         JOIN entries AS e ON e.log_id = 1 AND e.request_id = j.rid WHERE e.request_id IS NOT NULL",
    );
    assert!(p.contains("entries_request_id"), "{p}");
    let p = plan(
        &mut store,
        "SELECT k.id, t.status FROM api_keys AS k JOIN tenants AS t ON t.name = k.tenant WHERE k.id = 'x'",
    );
    assert!(
        p.contains("api_keys_pkey") && p.contains("tenants_pkey"),
        "{p}"
    );
    drop(store);
    cluster.drop_database(&db);
}
