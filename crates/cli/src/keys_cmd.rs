//! `evident keys public|list|rotate`: the signing key's public half, the
//! key history, and key rotation.

use clap::{Args, Subcommand};
use evident_store::KeyRecord;
use serde_json::{Value, json};

use crate::Format;
use crate::common::{CmdError, DataArgs, print_json};
use crate::exception_cmd::record_system_event;

/// Kind of the system event a rotation records in `_system/events`.
pub const ROTATED_EVENT_KIND: &str = "evident.key.rotated";

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
    Public(KeysInner),
    /// List every key the data directory has signed with, oldest first,
    /// with the range of checkpoints (by their global storage number,
    /// `seq`) each may sign and when it was added and retired.
    ///
    /// Verification checks each checkpoint against the keys whose range
    /// covers it: a checkpoint signed only by a key outside its range (a
    /// retired key) is a signature failure.
    List(KeysInner),
    /// Replace the signing key with a new one.
    ///
    /// Makes a new Ed25519 key and, in one transaction, re-signs every
    /// log's latest checkpoint with both the old and the new key (the
    /// transition checkpoint: a verifier trusting either key accepts it,
    /// which carries trust from the old key to the new), adds the new key
    /// and retires the old one: it signs nothing after the transition.
    /// The new private key replaces the key file (mode 0600); the retired
    /// private key is destroyed, since nothing needs it any more.
    ///
    /// A server running with the old key refuses writes (`key.retired`)
    /// until it is restarted, so it never signs with a retired key.
    ///
    /// The rotation is recorded in the `_system/events` log as an
    /// `evident.key.rotated` event naming both verifier keys, signed with
    /// the new key.
    Rotate(KeysInner),
}

#[derive(Debug, Args)]
struct KeysInner {
    #[command(flatten)]
    data: DataArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

impl KeysArgs {
    /// The output format of the subcommand.
    pub fn format(&self) -> Format {
        match &self.command {
            KeysCommand::Public(a) | KeysCommand::List(a) | KeysCommand::Rotate(a) => a.format,
        }
    }
}

/// A key history row as JSON.
pub(crate) fn key_json(k: &KeyRecord, current: bool) -> Value {
    json!({
        "vkey": k.vkey,
        "status": if current { "current" } else { "retired" },
        "created_at": k.created_at,
        "retired_at": k.retired_at,
        "first_seq": k.first_seq,
        "last_seq": k.last_seq,
    })
}

fn range_text(k: &KeyRecord) -> String {
    let from = k
        .first_seq
        .map(|s| s.to_string())
        .unwrap_or_else(|| "1".into());
    match k.last_seq {
        Some(l) if l < k.first_seq.unwrap_or(1) => "none".to_owned(),
        Some(l) => format!("{from}..={l}"),
        None => format!("{from}.."),
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
        KeysCommand::List(a) => {
            let mut opened = a.data.open()?;
            let keys = opened.store.keys()?;
            let last = keys.len().saturating_sub(1);
            match a.format {
                Format::Json => print_json(&json!({
                    "keys": keys.iter().enumerate().map(|(i, k)| key_json(k, i == last)).collect::<Vec<_>>(),
                })),
                Format::Text => {
                    for (i, k) in keys.iter().enumerate() {
                        println!(
                            "{}  {:<7}  checkpoints {:<12} added {}{}",
                            k.vkey,
                            if i == last { "current" } else { "retired" },
                            range_text(k),
                            k.created_at,
                            k.retired_at
                                .as_ref()
                                .map(|r| format!(", retired {r}"))
                                .unwrap_or_default()
                        );
                    }
                }
            }
            Ok(())
        }
        KeysCommand::Rotate(a) => {
            let dd = a.data.data_dir();
            let mut opened = dd.open()?;
            let done = dd.rotate(&mut opened)?;
            // The rotation is committed; an event that cannot be recorded
            // is reported, not a failure of the rotation.
            let event = record_system_event(
                &dd,
                &mut opened,
                json!({
                    "kind": ROTATED_EVENT_KIND,
                    "actor": "evident-cli",
                    "action": "keys rotate",
                    "resource": "signing-key",
                    "outcome": "ok",
                    "data": {
                        "retired": done.old.to_string(),
                        "vkey": done.new.to_string(),
                        "transition_checkpoints": done.transitions,
                    },
                }),
            );
            let event_index = match event {
                Ok(e) => Some(e.index),
                Err(e) => {
                    eprintln!(
                        "warning: the rotation is done, but its system event was not recorded: {}: {}",
                        e.code, e.message
                    );
                    None
                }
            };
            match a.format {
                Format::Json => print_json(&json!({
                    "retired": done.old.to_string(),
                    "vkey": done.new.to_string(),
                    "transition_checkpoints": done.transitions,
                    "key_file": done.key_file,
                    "system_event_index": event_index,
                })),
                Format::Text => {
                    println!("retired key:  {}", done.old);
                    println!("new key:      {}", done.new);
                    println!(
                        "{} logs got a transition checkpoint signed by both keys; the new private key is in {}",
                        done.transitions,
                        done.key_file.display()
                    );
                    if let Some(i) = event_index {
                        println!("recorded as entry {i} of _system/events ({ROTATED_EVENT_KIND})");
                    }
                    println!(
                        "restart any running `evident serve` so that it signs with the new key"
                    );
                }
            }
            Ok(())
        }
    }
}
