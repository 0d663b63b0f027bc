//! `evident init`.

use clap::Args;
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
