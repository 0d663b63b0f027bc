//! The storage conformance suite, run against the PostgreSQL backend: one
//! throwaway cluster for this test binary (crates/pgtest), a new database
//! per case, dropped when the case ends. Skips, saying so, when PostgreSQL
//! is not installed, unless EVIDENT_REQUIRE_POSTGRES=1.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use evident_pgtest::Cluster;
use evident_store::postgres::{PgStore, map_err};
use evident_store::{Store, StoreError};

struct Postgres {
    cluster: &'static Cluster,
    db: String,
}

impl Postgres {
    fn new() -> Option<Self> {
        let cluster = Cluster::shared()?;
        let db = cluster.create_database();
        Some(Postgres { cluster, db })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.cluster.drop_database(&self.db);
    }
}

impl evident_store::conformance::Harness for Postgres {
    fn connect(&mut self) -> Box<dyn Store> {
        Box::new(PgStore::connect(&self.cluster.url(&self.db)).unwrap())
    }

    fn raw_sql(&mut self, sql: &str) -> Result<(), StoreError> {
        let mut store = PgStore::connect(&self.cluster.url(&self.db))?;
        store.client().batch_execute(sql).map_err(map_err)
    }
}

// Each case gets a fresh database, or returns at once (skipped, as
// Cluster::shared said on standard error) when PostgreSQL is absent.
evident_store::store_conformance_tests!(match Postgres::new() {
    Some(h) => h,
    None => return,
});
