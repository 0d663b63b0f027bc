//! Versioned schema migrations.
//!
//! Each backend ships its migrations as numbered SQL files compiled into the
//! binary. Applied versions are recorded in the database's
//! `schema_migrations` table, so the binary can tell an older database
//! (migrations pending) from a newer one (a newer binary migrated it: this
//! one must not write to it).

use crate::model::MigrationStatus;

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Sequential version, from 1.
    pub version: u32,
    /// Short name, from the file name.
    pub name: &'static str,
    /// The SQL, run in one transaction with the version's record.
    pub sql: &'static str,
}

/// The migration head this binary expects every backend's database to be at.
pub const EXPECTED_HEAD: u32 = 6;

/// Status from the applied versions and a backend's migration list.
pub(crate) fn status(
    applied: Vec<(u32, String, String)>,
    migrations: &[Migration],
) -> MigrationStatus {
    let current = applied.iter().map(|a| a.0).max().unwrap_or(0);
    let pending = migrations
        .iter()
        .filter(|m| m.version > current)
        .map(|m| (m.version, m.name.to_owned()))
        .collect();
    MigrationStatus {
        current,
        expected: EXPECTED_HEAD,
        applied,
        pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_migrations_are_numbered_to_the_head() {
        let list = crate::sqlite::MIGRATIONS;
        for (i, m) in list.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{} is out of order", m.name);
        }
        assert_eq!(list.last().map(|m| m.version), Some(EXPECTED_HEAD));
    }

    /// Both backends have the same versions under the same names, so one
    /// head describes either.
    #[test]
    fn postgres_migrations_match_sqlite() {
        let pg: Vec<(u32, &str)> = crate::postgres::MIGRATIONS
            .iter()
            .map(|m| (m.version, m.name))
            .collect();
        let lite: Vec<(u32, &str)> = crate::sqlite::MIGRATIONS
            .iter()
            .map(|m| (m.version, m.name))
            .collect();
        assert_eq!(pg, lite);
    }
}
