//! Server settings: defaults, then a TOML file, then `EVIDENT_*`
//! environment variables, then command-line flags (the caller applies
//! those last). Every setting has a default that is safe to run with, so
//! `evident serve` needs no file at all.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use evident_core::ErrorCode;
use evident_core::entry::DEFAULT_MAX_BODY_BYTES;
use evident_store::datadir::{DEFAULT_DATA_DIR, DEFAULT_INSTANCE};
use serde::Deserialize;

/// Default listen address: loopback only, so a fresh install is not
/// reachable from the network until an operator says so.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8700";

/// Every setting of `evident serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The data directory (database, keys, admin credential).
    pub data_dir: PathBuf,
    /// The signing key file; `<data_dir>/signing-key.pem` when unset.
    pub key_file: Option<PathBuf>,
    /// A PostgreSQL database (`postgres://USER@HOST:PORT/DB`) instead of
    /// the data directory's SQLite file; several nodes may name the same
    /// one (with copies of one key file).
    pub database_url: Option<String>,
    /// Whether start-up applies pending migrations to a PostgreSQL
    /// database. Off by default: a production database is migrated by an
    /// operator (`evident migrate up`, with the owner role), never by
    /// whichever node starts first. SQLite data directories are always
    /// brought up to date, as `evident init` would.
    pub auto_migrate: bool,
    /// Instance name used when the data directory is initialised.
    pub instance: String,
    /// Largest request body in bytes (413 beyond it).
    pub max_request_bytes: usize,
    /// Largest canonical entry body in bytes (DESIGN.md: 256 KiB).
    pub max_body_bytes: usize,
    /// Most entries in one append request.
    pub max_entries_per_request: usize,
    /// Requests that take longer answer 503 `request.timeout`.
    pub request_timeout_ms: u64,
    /// How long `?wait=receipt` waits for the entries to be integrated.
    pub receipt_wait_ms: u64,
    /// Most entries the writer puts in one batch (one transaction, one
    /// signature).
    pub batch_max_entries: usize,
    /// Per-key request rate (requests per second); 0 turns limiting off.
    pub rate_limit_per_second: u32,
    /// Per-key burst: requests allowed at once above the steady rate.
    pub rate_limit_burst: u32,
    /// Seconds between background verifications of every log; 0 turns
    /// the background verifier off.
    pub verify_interval_secs: u64,
    /// Every this many background passes verifies every log in full
    /// (the others continue from the verified prefix); at least 1.
    pub verify_full_every: u64,
    /// Log level filter (`info`, `debug`, `evident_server=debug,warn`, …).
    pub log_level: String,
    /// How many read connections the server keeps open.
    pub read_connections: usize,
    /// How long a database call waits for another process's lock before
    /// it fails with `db.unavailable` (a client should get an answer; an
    /// operator's CLI waits longer).
    pub db_busy_timeout_ms: u64,
    /// Where the daily sealer publishes every log's signed checkpoint (a
    /// directory, or file:///dir); unset turns the sealer off.
    pub seal_anchors: Option<String>,
    /// When the sealer runs each day, `HH:MM` UTC.
    pub seal_time: String,
    /// Receivers of integrity events (`[[webhooks]]` tables: `url`,
    /// `secrets = [{secret, expires_at}]`).
    pub webhooks: Vec<crate::webhooks::WebhookConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8700))),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            key_file: None,
            database_url: None,
            auto_migrate: false,
            instance: DEFAULT_INSTANCE.to_owned(),
            // Room for a full batch of 10,000 small entries.
            max_request_bytes: 16 * 1024 * 1024,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_entries_per_request: 10_000,
            request_timeout_ms: 30_000,
            receipt_wait_ms: 5_000,
            batch_max_entries: 10_000,
            rate_limit_per_second: 20_000,
            rate_limit_burst: 40_000,
            verify_interval_secs: 60,
            verify_full_every: 60,
            log_level: "info".to_owned(),
            read_connections: 4,
            db_busy_timeout_ms: 5_000,
            seal_anchors: None,
            seal_time: "00:00".to_owned(),
            webhooks: Vec::new(),
        }
    }
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for these settings.
    #[error("config file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// An environment variable holds a value its setting cannot take.
    #[error("environment variable {name}={value:?}: {reason}")]
    Env {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A setting is out of range.
    #[error("setting {name}: {reason}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

impl ErrorCode for ConfigError {
    fn code(&self) -> &'static str {
        "config.invalid"
    }
}

impl Config {
    /// Defaults, overlaid by `file` when given, then by the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a TOML file; unknown keys are errors (a typo must not be
    /// silently ignored by a ledger's operator).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Overlays `EVIDENT_<SETTING>` variables (upper case), read through
    /// `get` so tests need not touch the process environment.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parsed<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.trim().parse().map_err(|e: T::Err| ConfigError::Env {
                name: name.to_owned(),
                value: value.to_owned(),
                reason: e.to_string(),
            })
        }
        macro_rules! overlay {
            ($($field:ident => $var:literal),* $(,)?) => {
                $(if let Some(v) = get($var) { self.$field = parsed($var, &v)?; })*
            };
        }
        overlay!(
            listen => "EVIDENT_LISTEN",
            data_dir => "EVIDENT_DATA_DIR",
            instance => "EVIDENT_INSTANCE",
            max_request_bytes => "EVIDENT_MAX_REQUEST_BYTES",
            max_body_bytes => "EVIDENT_MAX_BODY_BYTES",
            max_entries_per_request => "EVIDENT_MAX_ENTRIES_PER_REQUEST",
            request_timeout_ms => "EVIDENT_REQUEST_TIMEOUT_MS",
            receipt_wait_ms => "EVIDENT_RECEIPT_WAIT_MS",
            batch_max_entries => "EVIDENT_BATCH_MAX_ENTRIES",
            rate_limit_per_second => "EVIDENT_RATE_LIMIT_PER_SECOND",
            rate_limit_burst => "EVIDENT_RATE_LIMIT_BURST",
            verify_interval_secs => "EVIDENT_VERIFY_INTERVAL_SECS",
            verify_full_every => "EVIDENT_VERIFY_FULL_EVERY",
            log_level => "EVIDENT_LOG_LEVEL",
            read_connections => "EVIDENT_READ_CONNECTIONS",
            db_busy_timeout_ms => "EVIDENT_DB_BUSY_TIMEOUT_MS",
            auto_migrate => "EVIDENT_AUTO_MIGRATE",
            seal_time => "EVIDENT_SEAL_TIME",
        );
        if let Some(v) = get("EVIDENT_DATABASE_URL") {
            self.database_url = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("EVIDENT_SEAL_ANCHORS") {
            self.seal_anchors = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("EVIDENT_KEY_FILE") {
            self.key_file = Some(PathBuf::from(v));
        }
        Ok(())
    }

    /// Refuses settings the server cannot run with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |name, v: u64| {
            if v == 0 {
                Err(ConfigError::Invalid {
                    name,
                    reason: "must be greater than 0".to_owned(),
                })
            } else {
                Ok(())
            }
        };
        positive("max_request_bytes", self.max_request_bytes as u64)?;
        positive("max_body_bytes", self.max_body_bytes as u64)?;
        positive(
            "max_entries_per_request",
            self.max_entries_per_request as u64,
        )?;
        positive("request_timeout_ms", self.request_timeout_ms)?;
        positive("batch_max_entries", self.batch_max_entries as u64)?;
        positive("read_connections", self.read_connections as u64)?;
        positive("verify_full_every", self.verify_full_every)?;
        if self.rate_limit_per_second > 0 && self.rate_limit_burst == 0 {
            return Err(ConfigError::Invalid {
                name: "rate_limit_burst",
                reason: "must be greater than 0 when rate limiting is on".to_owned(),
            });
        }
        crate::sealer::parse_seal_time(&self.seal_time).map_err(|reason| ConfigError::Invalid {
            name: "seal_time",
            reason,
        })?;
        if let Some(a) = &self.seal_anchors {
            evident_store::anchor::Anchor::open(a).map_err(|e| ConfigError::Invalid {
                name: "seal_anchors",
                reason: e.to_string(),
            })?;
        }
        for w in &self.webhooks {
            w.validate().map_err(|reason| ConfigError::Invalid {
                name: "webhooks",
                reason,
            })?;
        }
        if self.max_entries_per_request > 100_000 {
            return Err(ConfigError::Invalid {
                name: "max_entries_per_request",
                reason: "at most 100000".to_owned(),
            });
        }
        Ok(())
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The `?wait=receipt` bound.
    pub fn receipt_wait(&self) -> Duration {
        Duration::from_millis(self.receipt_wait_ms)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_are_valid_and_loopback() {
        let c = Config::default();
        c.validate().unwrap();
        assert!(c.listen.ip().is_loopback());
        assert_eq!(c.listen.port(), 8700);
    }

    #[test]
    fn file_then_env_overlay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evident.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nrate_limit_per_second = 5\nrate_limit_burst = 7\n",
        )
        .unwrap();
        let mut c = Config::from_file(&path).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.rate_limit_per_second, 5);
        c.apply_env(|k| (k == "EVIDENT_LISTEN").then(|| "127.0.0.1:9001".to_owned()))
            .unwrap();
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.rate_limit_burst, 7);
    }

    #[test]
    fn unknown_file_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evident.toml");
        std::fs::write(&path, "listne = \"127.0.0.1:9000\"\n").unwrap();
        let e = Config::from_file(&path).unwrap_err();
        assert!(e.to_string().contains("listne"), "{e}");
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let mut c = Config::default();
        let e = c
            .apply_env(|k| (k == "EVIDENT_REQUEST_TIMEOUT_MS").then(|| "soon".to_owned()))
            .unwrap_err();
        assert!(e.to_string().contains("EVIDENT_REQUEST_TIMEOUT_MS"), "{e}");
    }

    #[test]
    fn seal_and_webhook_settings_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evident.toml");
        std::fs::write(
            &path,
            "seal_anchors = \"/srv/seals\"\nseal_time = \"02:30\"\n\
             [[webhooks]]\nurl = \"http://127.0.0.1:9000/hook\"\n\
             secrets = [{secret = \"0123456789abcdef\"}, {secret = \"fedcba9876543210\", expires_at = \"2030-01-01T00:00:00.000000Z\"}]\n",
        )
        .unwrap();
        let c = Config::from_file(&path).unwrap();
        c.validate().unwrap();
        assert_eq!(c.seal_anchors.as_deref(), Some("/srv/seals"));
        assert_eq!(c.webhooks[0].secrets.len(), 2);
        let bad = Config {
            seal_time: "25:00".into(),
            ..c.clone()
        };
        assert!(bad.validate().is_err());
        let bad = Config {
            seal_anchors: Some("memory:".into()),
            ..c
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn zero_limits_are_refused() {
        let c = Config {
            batch_max_entries: 0,
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }
}
