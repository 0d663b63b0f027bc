//! What every data-directory command shares: where the data is, how errors
//! are printed, and how outcomes map to exit codes.

use std::path::PathBuf;

use clap::Args;
use evident_core::ErrorCode;
use evident_core::note::{VerifierKey, Verifiers};
use evident_store::{DataDir, Opened, StoreError};
use serde_json::json;

use crate::Format;

/// Where the embedded data lives.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// The data directory (database `evident.db`, and by default the
    /// signing key).
    #[arg(long, env = "EVIDENT_DATA_DIR", default_value = evident_store::datadir::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// The Ed25519 signing key, PKCS#8 PEM [default: <data-dir>/signing-key.pem].
    #[arg(long, env = "EVIDENT_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// A PostgreSQL database instead of <data-dir>/evident.db, as
    /// postgres://USER[:PASSWORD]@HOST:PORT/DATABASE; the data directory
    /// then holds only the signing key.
    #[arg(long, env = "EVIDENT_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl DataArgs {
    /// The data directory these arguments name.
    pub fn data_dir(&self) -> DataDir {
        DataDir::new(self.data_dir.clone(), self.key_file.clone())
            .with_database_url(self.database_url.clone())
    }

    /// Opens the data directory for reading.
    pub fn open(&self) -> Result<Opened, CmdError> {
        Ok(self.data_dir().open()?)
    }
}

/// An error as the CLI prints it: a stable code, a message, and optionally
/// the input line it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdError {
    /// Stable dotted code.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
    /// 1-based input line, for input errors.
    pub line: Option<u64>,
}

impl CmdError {
    /// An error with a code and message.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        CmdError {
            code: code.to_owned(),
            message: message.into(),
            line: None,
        }
    }

    /// Prints the error: JSON on stdout in JSON mode (so scripts read one
    /// document either way), a line on stderr otherwise.
    pub fn print(&self, format: Format) {
        match format {
            Format::Json => {
                let mut e = json!({"code": self.code, "message": self.message});
                if let Some(line) = self.line {
                    e["line"] = json!(line);
                }
                println!("{}", json!({ "error": e }));
            }
            Format::Text => match self.line {
                Some(line) => eprintln!("error: line {line}: {} ({})", self.message, self.code),
                None => eprintln!("error: {} ({})", self.message, self.code),
            },
        }
    }
}

impl From<StoreError> for CmdError {
    fn from(e: StoreError) -> Self {
        CmdError::new(e.code(), e.to_string())
    }
}

/// Parses `--vkey` values.
pub fn parse_vkeys(vkeys: &[String]) -> Result<Verifiers, CmdError> {
    let mut keys = Vec::new();
    for k in vkeys {
        let key = k
            .parse::<VerifierKey>()
            .map_err(|e| CmdError::new(e.code(), format!("--vkey {k:?}: {e}")))?;
        keys.push(key);
    }
    Ok(Verifiers::new(keys))
}

/// Prints a JSON value on stdout.
pub fn print_json(v: &serde_json::Value) {
    println!("{v}");
}
