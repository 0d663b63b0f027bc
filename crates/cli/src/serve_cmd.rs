//! `evident serve`: the HTTP service.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use evident_core::ErrorCode;
use evident_server::Config;

use crate::common::CmdError;

/// Run the HTTP service: the append and read API, tenants and API keys,
/// health, readiness and metrics.
///
/// Settings come from defaults, then the config file (TOML, `--config` or
/// EVIDENT_CONFIG), then EVIDENT_* environment variables (EVIDENT_LISTEN,
/// EVIDENT_DATA_DIR, EVIDENT_KEY_FILE, EVIDENT_INSTANCE,
/// EVIDENT_RATE_LIMIT_PER_SECOND, … — one per setting, named after it in
/// upper case), then these flags.
///
/// With --database-url the database is PostgreSQL, shared by any number of
/// nodes; sequencing of each log is serialised in the database.
///
/// On an empty data directory the server initialises it as `evident init`
/// does and writes a bootstrap admin credential to `<data-dir>/admin.key`
/// (mode 0600): an API key with the admin, read and verify scopes for the
/// admin endpoints and the `_system/events` log. Logs are JSON lines on
/// standard output, the first one the start-up line with the listen
/// address. SIGTERM or SIGINT drains: no new connections, requests in
/// flight answered, queued batches committed and signed, exit 0.
///
/// With `seal_anchors` (EVIDENT_SEAL_ANCHORS, a directory or
/// s3://bucket/prefix with the AWS_* environment) the server
/// seals every log daily at `seal_time` (EVIDENT_SEAL_TIME, HH:MM UTC);
/// `[[webhooks]]` tables in the config file (url, secrets) receive signed
/// integrity events. Appends answer 503 writes.paused while `evident
/// writes pause` is in force. See docs/design.md.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8700; port 0 picks a free
    /// one, printed in the start-up line).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory (default ./evident-data; env EVIDENT_DATA_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Signing key file (default <data-dir>/signing-key.pem; env
    /// EVIDENT_KEY_FILE).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Instance name used if the data directory is initialised now
    /// (default evident.local; env EVIDENT_INSTANCE).
    #[arg(long)]
    instance: Option<String>,
    /// A PostgreSQL database (postgres://USER[:PASSWORD]@HOST:PORT/DB)
    /// instead of <data-dir>/evident.db; env EVIDENT_DATABASE_URL, config
    /// key database_url. Any number of nodes may serve one database, each
    /// with a copy of the same --key-file. The database must be at this
    /// binary's migration head (`evident migrate up`) unless --migrate.
    #[arg(long)]
    database_url: Option<String>,
    /// Apply pending PostgreSQL migrations at start-up (config key
    /// auto_migrate, env EVIDENT_AUTO_MIGRATE=true). Off by default: in
    /// production the owner role migrates, the service role cannot.
    #[arg(long)]
    migrate: bool,
    /// Config file (TOML; unknown keys are errors).
    #[arg(long, env = "EVIDENT_CONFIG")]
    config: Option<PathBuf>,
}

/// Runs `serve`.
pub fn serve(args: &ServeArgs) -> Result<(), CmdError> {
    let mut config =
        Config::load(args.config.as_deref()).map_err(|e| CmdError::new(e.code(), e.to_string()))?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(d) = &args.data_dir {
        config.data_dir.clone_from(d);
    }
    if let Some(k) = &args.key_file {
        config.key_file = Some(k.clone());
    }
    if let Some(u) = &args.database_url {
        config.database_url = Some(u.clone());
    }
    if args.migrate {
        config.auto_migrate = true;
    }
    if let Some(i) = &args.instance {
        config.instance.clone_from(i);
    }
    evident_server::serve(config).map_err(|e| CmdError::new(e.code(), e.to_string()))
}
