//! The append-only triggers ("guards") of a SQLite database, checked
//! against the ones its migrations create, and put back.
//!
//! An attacker who can write the file drops the triggers before editing
//! rows; verification finds the edits, and repair puts the rows back, but
//! the triggers stay gone unless something puts them back too. The
//! reference is not parsed out of the migration files: the migrations the
//! database has applied are run on a private in-memory database, and the
//! triggers SQLite itself recorded there are the expected ones, name and
//! text. A trigger missing, replaced by another with the same name (a
//! no-op, say), or added outside the migrations is reported.

use rusqlite::{Connection, TransactionBehavior};

use super::{MIGRATIONS, SqliteStore, map_err};
use crate::error::Result;

/// How a database's triggers differ from those its migrations create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardCheck {
    /// Expected triggers that are not there.
    pub missing: Vec<String>,
    /// Triggers with an expected name but another definition.
    pub altered: Vec<String>,
    /// Triggers no migration creates.
    pub unexpected: Vec<String>,
}

impl GuardCheck {
    /// True when the triggers are exactly those of the migrations.
    pub fn intact(&self) -> bool {
        self.missing.is_empty() && self.altered.is_empty() && self.unexpected.is_empty()
    }

    /// Every trigger named, sorted: what a restore changes.
    pub fn names(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .missing
            .iter()
            .chain(&self.altered)
            .chain(&self.unexpected)
            .cloned()
            .collect();
        all.sort();
        all
    }
}

/// `(name, sql)` of every trigger of `conn`, by name.
fn triggers(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
        .map_err(map_err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(map_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_err)
}

impl SqliteStore {
    /// The triggers the migrations up to `version` create.
    fn expected_triggers(version: u32) -> Result<Vec<(String, String)>> {
        let conn = Connection::open_in_memory().map_err(map_err)?;
        for m in MIGRATIONS.iter().filter(|m| m.version <= version) {
            conn.execute_batch(m.sql).map_err(map_err)?;
        }
        triggers(&conn)
    }

    /// Compares the database's triggers with those of its migrations.
    pub fn check_guards(&self) -> Result<GuardCheck> {
        let version = self.applied()?.iter().map(|m| m.0).max().unwrap_or(0);
        let expected = Self::expected_triggers(version)?;
        let found = triggers(&self.conn)?;
        let mut check = GuardCheck::default();
        for (name, sql) in &expected {
            match found.iter().find(|f| f.0 == *name) {
                None => check.missing.push(name.clone()),
                Some(f) if f.1 != *sql => check.altered.push(name.clone()),
                Some(_) => {}
            }
        }
        for (name, _) in &found {
            if !expected.iter().any(|e| e.0 == *name) {
                check.unexpected.push(name.clone());
            }
        }
        Ok(check)
    }

    /// Puts the migrations' triggers back, in one transaction: missing ones
    /// created, altered ones recreated, unexpected ones dropped. Returns
    /// what it found (and so changed); nothing when they were intact.
    pub fn restore_guards(&mut self) -> Result<GuardCheck> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err)?;
        // Compared under the write lock, so a concurrent change is seen.
        let found = triggers(&tx)?;
        let version = {
            let mut stmt = tx
                .prepare("SELECT coalesce(max(version), 0) FROM schema_migrations")
                .map_err(map_err)?;
            stmt.query_row([], |r| r.get::<_, u32>(0))
                .map_err(map_err)?
        };
        let expected = Self::expected_triggers(version)?;
        let mut check = GuardCheck::default();
        for (name, sql) in &expected {
            let now = found.iter().find(|f| f.0 == *name);
            if now.is_some_and(|f| f.1 == *sql) {
                continue;
            }
            if now.is_some() {
                check.altered.push(name.clone());
            } else {
                check.missing.push(name.clone());
            }
            tx.execute_batch(&format!("DROP TRIGGER IF EXISTS \"{name}\"; {sql};"))
                .map_err(map_err)?;
        }
        for (name, _) in &found {
            if !expected.iter().any(|e| e.0 == *name) {
                check.unexpected.push(name.clone());
                tx.execute_batch(&format!("DROP TRIGGER \"{}\"", name.replace('"', "\"\"")))
                    .map_err(map_err)?;
            }
        }
        tx.commit().map_err(map_err)?;
        Ok(check)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::Store;
    use crate::sqlite::SqliteStore;

    use super::GuardCheck;

    fn migrated() -> SqliteStore {
        let mut s = SqliteStore::open_in_memory().unwrap();
        s.migrate_up().unwrap();
        s
    }

    /// Refuses an UPDATE of an entry row (as the guards must).
    fn update_refused(s: &SqliteStore) -> bool {
        s.conn
            .execute_batch(
                "INSERT OR IGNORE INTO logs (id, tenant, name, origin, created_at)
                     VALUES (1, 'a', 'b', 'x/a/b', 'then');
                 INSERT OR IGNORE INTO entries (pos, leaf_hash, envelope)
                     VALUES (1 << 40, x'00', x'00');",
            )
            .unwrap();
        s.conn
            .execute("UPDATE entries SET envelope = x'01' WHERE idx = 0", [])
            .is_err()
    }

    #[test]
    fn a_migrated_database_is_intact_and_guarded() {
        let s = migrated();
        let check = s.check_guards().unwrap();
        assert!(check.intact(), "{check:?}");
        assert!(update_refused(&s));
    }

    #[test]
    fn dropped_replaced_and_added_triggers_are_found_and_put_back() {
        let mut s = migrated();
        s.conn
            .execute_batch(
                "DROP TRIGGER entries_no_update;
                 DROP TRIGGER checkpoints_no_delete;
                 DROP TRIGGER entries_no_delete;
                 CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries BEGIN SELECT 1; END;
                 CREATE TRIGGER \"sneaky\" AFTER INSERT ON keys BEGIN SELECT 1; END;",
            )
            .unwrap();
        assert!(!update_refused(&s));
        let want = GuardCheck {
            missing: vec!["checkpoints_no_delete".into(), "entries_no_update".into()],
            altered: vec!["entries_no_delete".into()],
            unexpected: vec!["sneaky".into()],
        };
        assert_eq!(s.check_guards().unwrap(), want);
        assert_eq!(
            want.names(),
            [
                "checkpoints_no_delete",
                "entries_no_delete",
                "entries_no_update",
                "sneaky"
            ]
        );

        assert_eq!(s.restore_guards().unwrap(), want);
        assert!(s.check_guards().unwrap().intact());
        assert!(update_refused(&s));
        assert!(
            s.conn
                .execute("DELETE FROM entries WHERE idx = 0", [])
                .is_err()
        );
        // Restoring an intact database changes nothing.
        assert!(s.restore_guards().unwrap().intact());
    }
}
