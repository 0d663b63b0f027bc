//! `evident migrate status|up`: the schema's migration head, on either
//! backend.

use clap::{Args, Subcommand};
use serde_json::json;

use crate::Format;
use crate::common::{CmdError, DataArgs, print_json};

/// Show or apply database schema migrations.
///
/// `status` compares the database's migration head with the one this
/// binary expects; `up` applies the pending migrations, each in its own
/// transaction (on PostgreSQL under an advisory lock, so two operators or
/// nodes never apply one twice). Works on the data directory's SQLite file
/// or, with --database-url / EVIDENT_DATABASE_URL, on PostgreSQL, where it
/// should run as the schema's owner role: the service role has no DDL
/// rights (docs/design.md).
#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    command: MigrateCommand,
}

#[derive(Debug, Subcommand)]
enum MigrateCommand {
    /// Show the database's migration head against this binary's (exit 0
    /// either way; `current` and `expected` say where it stands).
    Status(MigrateInner),
    /// Apply pending migrations.
    Up(MigrateInner),
}

#[derive(Debug, Args)]
struct MigrateInner {
    #[command(flatten)]
    data: DataArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

impl MigrateArgs {
    /// The output format of the subcommand.
    pub fn format(&self) -> Format {
        match &self.command {
            MigrateCommand::Status(i) | MigrateCommand::Up(i) => i.format,
        }
    }
}

/// Runs `migrate …`.
pub fn migrate(args: &MigrateArgs) -> Result<(), CmdError> {
    let (inner, up) = match &args.command {
        MigrateCommand::Status(i) => (i, false),
        MigrateCommand::Up(i) => (i, true),
    };
    let mut store = inner.data.data_dir().connect()?;
    let applied = if up { store.migrate_up()? } else { Vec::new() };
    let s = store.migration_status()?;
    match inner.format {
        Format::Json => print_json(&json!({
            "backend": store.backend(),
            "current": s.current,
            "expected": s.expected,
            "applied_now": applied,
            "applied": s.applied.iter().map(|(v, n, at)| json!({"version": v, "name": n, "applied_at": at})).collect::<Vec<_>>(),
            "pending": s.pending.iter().map(|(v, n)| json!({"version": v, "name": n})).collect::<Vec<_>>(),
        })),
        Format::Text => {
            for v in &applied {
                println!("applied migration {v}");
            }
            println!(
                "schema at {} of {} ({})",
                s.current,
                s.expected,
                if s.current == s.expected {
                    "up to date"
                } else if s.current < s.expected {
                    "run `evident migrate up`"
                } else {
                    "newer than this binary"
                }
            );
        }
    }
    Ok(())
}
