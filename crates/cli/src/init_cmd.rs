//! `evident init` and `evident migrate`.

use clap::{Args, Subcommand};
use evident_store::Store;
use serde_json::json;

use crate::Format;
use crate::common::{CmdError, DataArgs, print_json};

/// Create a data directory: a new Ed25519 signing key and an empty database.
///
/// Writes the signing key as a PKCS#8 PEM file with mode 0600 (never into
/// the database), creates `evident.db` at the current migration head, and
/// prints the verifier key that auditors use to check checkpoints and
/// receipts. Refuses to touch a directory that already has a database or a
/// key.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Instance name: the first part of every log's origin and the signing
    /// key's name (lowercase DNS-style labels).
    #[arg(long, env = "EVIDENT_INSTANCE", default_value = evident_store::datadir::DEFAULT_INSTANCE)]
    instance: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

/// Runs `init`.
pub fn init(args: &InitArgs) -> Result<(), CmdError> {
    let dd = args.data.data_dir();
    let done = dd.init(&args.instance)?;
    match args.format {
        Format::Json => print_json(&json!({
            "instance": done.instance,
            "data_dir": dd.dir(),
            "database": done.db_path,
            "key_file": done.key_file,
            "vkey": done.vkey.to_string(),
        })),
        Format::Text => {
            println!(
                "initialised {} (instance {})",
                dd.dir().display(),
                done.instance
            );
            println!(
                "signing key:  {} (private: keep it secret, back it up)",
                done.key_file.display()
            );
            println!("verifier key: {}", done.vkey);
        }
    }
    Ok(())
}

/// Show or apply database schema migrations.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    command: MigrateCommand,
}

#[derive(Debug, Subcommand)]
enum MigrateCommand {
    /// Show the database's migration head against this binary's.
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
    let dd = inner.data.data_dir();
    if !dd.is_initialized() {
        return Err(evident_store::StoreError::NotInitialized {
            dir: dd.dir().to_owned(),
        }
        .into());
    }
    let mut store = evident_store::sqlite::SqliteStore::open(&dd.db_path(), false)?;
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
