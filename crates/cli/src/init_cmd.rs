//! `evident init` and `evident keys public`.

use clap::{Args, Subcommand};
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

/// Manage signing keys.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Print the current verifier key (the public half of the signing key),
    /// for auditors and for `verify-receipt --vkey`.
    Public(KeysPublicArgs),
}

#[derive(Debug, Args)]
struct KeysPublicArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
}

impl KeysArgs {
    /// The output format of the subcommand.
    pub fn format(&self) -> Format {
        match &self.command {
            KeysCommand::Public(a) => a.format,
        }
    }
}

/// Runs `keys …`.
pub fn keys(args: &KeysArgs) -> Result<(), CmdError> {
    match &args.command {
        KeysCommand::Public(a) => {
            let mut opened = a.data.open()?;
            let keys = opened.store.keys()?;
            let current = keys
                .last()
                .ok_or_else(|| CmdError::new("key.missing", "the database holds no keys"))?;
            match a.format {
                Format::Json => print_json(&json!({
                    "vkey": current.vkey,
                    "keys": keys.iter().map(|k| json!({"vkey": k.vkey, "created_at": k.created_at})).collect::<Vec<_>>(),
                })),
                Format::Text => println!("{}", current.vkey),
            }
            Ok(())
        }
    }
}
