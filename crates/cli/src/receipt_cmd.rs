//! `evident verify-receipt`: check a receipt offline.

use std::path::PathBuf;

use clap::Args;
use evident_core::ErrorCode;
use evident_core::note::{VerifierKey, Verifiers};
use evident_core::receipt::{Receipt, ReceiptError};
use serde_json::json;

use crate::{Format, Outcome};

/// Verify a receipt offline, with nothing but the log's verifier key.
///
/// Checks that the envelope hashes to the receipt's leaf hash, that the
/// checkpoint is signed by a trusted key and belongs to the entry's log,
/// that the inclusion proof leads from the leaf to the signed root, and,
/// when the receipt carries the body, that the body matches the envelope.
/// No data directory, server or network is used.
///
/// Exit status: 0 valid, 1 the receipt is invalid, 2 could not verify
/// (unreadable file, malformed key).
#[derive(Debug, Args)]
pub struct VerifyReceiptArgs {
    /// The receipt JSON file, or `-` for standard input.
    file: PathBuf,
    /// A trusted verifier key, `<name>+<hex key id>+<base64 key>`.
    /// Repeat for several keys (e.g. across a key rotation).
    #[arg(long = "vkey", required = true, env = "EVIDENT_VKEY")]
    vkeys: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Runs `verify-receipt` and prints its result.
pub fn verify_receipt(args: &VerifyReceiptArgs) -> Outcome {
    let fail = |code: &str, message: String| {
        print_error(args.format, code, &message);
        Outcome::CouldNotVerify
    };
    let mut keys = Vec::new();
    for k in &args.vkeys {
        match k.parse::<VerifierKey>() {
            Ok(key) => keys.push(key),
            Err(e) => return fail(e.code(), format!("--vkey {k:?}: {e}")),
        }
    }
    let bytes = if args.file.as_os_str() == "-" {
        let mut buf = Vec::new();
        match std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf) {
            Ok(_) => buf,
            Err(e) => return fail("io.read_failed", format!("standard input: {e}")),
        }
    } else {
        match std::fs::read(&args.file) {
            Ok(b) => b,
            Err(e) => {
                return fail("io.read_failed", format!("{}: {e}", args.file.display()));
            }
        }
    };
    let receipt = match Receipt::parse(&bytes) {
        Ok(r) => r,
        Err(e) => return report_invalid(args.format, &e),
    };
    match receipt.verify(&Verifiers::new(keys)) {
        Ok(v) => {
            match args.format {
                Format::Json => println!(
                    "{}",
                    json!({
                        "valid": true,
                        "origin": v.checkpoint.origin,
                        "index": receipt.index,
                        "leaf_hash": receipt.leaf_hash,
                        "checkpoint_size": v.checkpoint.size,
                        "checkpoint_root": v.checkpoint.root,
                        "signed_by": v.signed_by,
                        "body_verified": v.body_verified,
                    })
                ),
                Format::Text => println!(
                    "valid: entry {} of {} is in the tree of size {} signed by {}{}",
                    receipt.index,
                    v.checkpoint.origin,
                    v.checkpoint.size,
                    v.signed_by.join(", "),
                    if v.body_verified {
                        "; body matches"
                    } else {
                        "; no body in receipt"
                    }
                ),
            }
            Outcome::Valid
        }
        Err(e) => report_invalid(args.format, &e),
    }
}

fn report_invalid(format: Format, e: &ReceiptError) -> Outcome {
    match format {
        Format::Json => println!(
            "{}",
            json!({"valid": false, "error": {"code": e.code(), "message": e.to_string()}})
        ),
        Format::Text => println!("invalid: {} ({})", e, e.code()),
    }
    Outcome::Invalid
}

fn print_error(format: Format, code: &str, message: &str) {
    match format {
        Format::Json => println!("{}", json!({"error": {"code": code, "message": message}})),
        Format::Text => eprintln!("error: {message} ({code})"),
    }
}
