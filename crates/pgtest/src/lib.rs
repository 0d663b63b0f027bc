//! A throwaway PostgreSQL cluster for Evident's tests, without containers.
//!
//! [`Cluster::start`] runs Debian's (or any local) PostgreSQL binaries:
//! `initdb` into a new temporary directory, then the server on a free
//! loopback port with its socket directory inside that temporary directory,
//! so nothing outside it is touched. PostgreSQL refuses to run as root, so
//! when the tests run as root the directory is handed to the `postgres` OS
//! user and every server command runs through `runuser`.
//!
//! Clean-up does not depend on `Drop`: a test binary shares one cluster
//! through a `static` ([`Cluster::shared`]), and statics are never dropped.
//! Each cluster has a small watchdog shell process that waits for end of
//! file on a pipe held by the test process; when the test process ends, for
//! whatever reason (even `kill -9`), the pipe closes and the watchdog stops
//! the server and deletes the directory. Dropping a [`Cluster`] closes the
//! pipe too and waits for the watchdog, so a test that owns one gets it
//! removed before it returns.
//!
//! When PostgreSQL is not installed, [`Cluster::start`] returns `None` with
//! a message on standard error and the tests skip, unless
//! `EVIDENT_REQUIRE_POSTGRES=1` (set by `scripts/test`, which installs the
//! `postgresql` package first): then it panics, so CI cannot pass by
//! skipping.
#![forbid(unsafe_code)]

/// The client crate [`Cluster::client`] returns, so that tests which play
/// a database user need no dependency of their own on it.
pub use postgres;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The environment variable that turns a missing PostgreSQL into a failure.
pub const REQUIRE_ENV: &str = "EVIDENT_REQUIRE_POSTGRES";

/// The cluster's superuser (trust authentication on loopback only).
pub const SUPERUSER: &str = "postgres";

/// A running throwaway cluster.
#[derive(Debug)]
pub struct Cluster {
    /// The temporary directory holding everything.
    root: PathBuf,
    /// `root/data`, the cluster.
    data: PathBuf,
    /// The PostgreSQL binaries.
    bin: PathBuf,
    /// Whether server commands run as the `postgres` OS user.
    as_postgres: bool,
    port: u16,
    /// The watchdog and the write end of its pipe.
    watchdog: Option<(Child, ChildStdin)>,
    next_db: AtomicU32,
}

/// Whether a missing PostgreSQL must fail the tests.
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// The directory of `initdb`, `pg_ctl` and `postgres`: `pg_config --bindir`
/// first, then Debian's `/usr/lib/postgresql/<version>/bin` (newest
/// version), which is not on `PATH`.
pub fn find_bindir() -> Option<PathBuf> {
    let has_initdb = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_initdb(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_initdb(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn id_of(flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, SUPERUSER])
        .output()
        .expect("run id");
    assert!(
        out.status.success(),
        "running as root, PostgreSQL needs the OS user {SUPERUSER} (install the postgresql package)"
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a numeric id")
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Cluster {
    /// Starts a new cluster, or returns `None` (after saying why on
    /// standard error) when PostgreSQL is not installed and
    /// [`REQUIRE_ENV`] is not `1`. Panics when PostgreSQL is there but the
    /// cluster does not start: that is a failure, not a skip.
    pub fn start() -> Option<Cluster> {
        let Some(bin) = find_bindir() else {
            assert!(
                !required(),
                "{REQUIRE_ENV}=1 but PostgreSQL's initdb was not found (pg_config --bindir, /usr/lib/postgresql/*/bin)"
            );
            eprintln!(
                "skipped: PostgreSQL is not installed (no initdb under pg_config --bindir or /usr/lib/postgresql/*/bin); scripts/test installs it"
            );
            return None;
        };
        Some(Self::start_with(bin))
    }

    /// One cluster for the whole test binary, started on first use and
    /// removed when the process ends. `None` as for [`Cluster::start`].
    pub fn shared() -> Option<&'static Cluster> {
        static SHARED: OnceLock<Option<Cluster>> = OnceLock::new();
        SHARED.get_or_init(Cluster::start).as_ref()
    }

    fn start_with(bin: PathBuf) -> Cluster {
        let as_postgres = is_root();
        let root = tempfile::Builder::new()
            .prefix("evident-pg-")
            .tempdir()
            .expect("a temporary directory")
            .keep();
        let data = root.join("data");
        if as_postgres {
            std::os::unix::fs::chown(&root, Some(id_of("-u")), Some(id_of("-g")))
                .expect("hand the temporary directory to the postgres user");
        }
        // The watchdog first, so that a failure below still cleans up.
        let mut cluster = Cluster {
            root,
            data,
            bin,
            as_postgres,
            port: 0,
            watchdog: None,
            next_db: AtomicU32::new(0),
        };
        cluster.watchdog = Some(cluster.spawn_watchdog());
        cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                cluster.data.as_os_str(),
                "--username".as_ref(),
                SUPERUSER.as_ref(),
                "--auth".as_ref(),
                "trust".as_ref(),
                "--encoding".as_ref(),
                "UTF8".as_ref(),
                "--no-locale".as_ref(),
                // The cluster is thrown away; the server itself keeps
                // fsync on, as production would.
                "--no-sync".as_ref(),
            ],
        );
        // A port may be taken between choosing and binding it; try a few.
        let mut last = String::new();
        for _ in 0..5 {
            cluster.port = free_port();
            match cluster.pg_ctl_start() {
                Ok(()) => return cluster,
                Err(e) => last = e,
            }
        }
        panic!("PostgreSQL did not start: {last}");
    }

    /// A command for one of the PostgreSQL binaries, as the right user.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", SUPERUSER, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) {
        let out = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300",
            self.port,
            self.root.display()
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.root.join("server.log"))
            .args(["-w", "-t", "120", "-o", &options, "start"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
        Err(format!(
            "{}{}\n{log}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    /// A shell that waits for end of file on its standard input, then
    /// stops the server and deletes the directory.
    fn spawn_watchdog(&self) -> (Child, ChildStdin) {
        let stop = self.command("pg_ctl");
        let mut argv: Vec<std::ffi::OsString> = vec![stop.get_program().to_owned()];
        argv.extend(stop.get_args().map(ToOwned::to_owned));
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(
                r#"read -r _line; "$@" -D "$EVIDENT_PG_DATA" -m immediate -w stop >/dev/null 2>&1; rm -rf -- "$EVIDENT_PG_ROOT""#,
            )
            .arg("evident-pg-watchdog")
            .args(argv)
            .env("EVIDENT_PG_DATA", &self.data)
            .env("EVIDENT_PG_ROOT", &self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the clean-up watchdog");
        let stdin = child.stdin.take().expect("the watchdog's stdin");
        (child, stdin)
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{db}", self.port)
    }

    /// The URL of the `postgres` maintenance database as the superuser.
    pub fn superuser_url(&self) -> String {
        self.url("postgres")
    }

    /// A client on database `db` as the superuser.
    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(db), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to {db}: {e}"))
    }

    /// Creates a new empty database; returns its name.
    pub fn create_database(&self) -> String {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        let name = format!("evident_{}_{n}", std::process::id());
        self.client("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        name
    }

    /// Drops database `db`, closing its connections first.
    pub fn drop_database(&self, db: &str) {
        // Best effort: the cluster goes away at the end anyway.
        if let Ok(mut c) = postgres::Client::connect(&self.superuser_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
        }
    }

    /// Stops the server (fast shutdown: sessions are ended, committed
    /// data stays), as an operator's restart would.
    pub fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        );
    }

    /// Starts the server again after [`Cluster::stop`], on the same port.
    pub fn restart(&self) {
        if let Err(e) = self.pg_ctl_start() {
            panic!("PostgreSQL did not start again: {e}");
        }
    }

    /// The server's log so far, for failure messages.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some((mut child, mut stdin)) = self.watchdog.take() {
            let _ = stdin.flush();
            drop(stdin);
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A cluster starts, takes connections and a new database, survives a
    /// stop and start with its data, and is gone (directory and server)
    /// once dropped.
    #[test]
    fn a_cluster_starts_restarts_and_is_removed() {
        let Some(cluster) = Cluster::start() else {
            return;
        };
        let db = cluster.create_database();
        let mut c = cluster.client(&db);
        c.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (7)")
            .unwrap();
        drop(c);
        cluster.stop();
        assert!(postgres::Client::connect(&cluster.url(&db), postgres::NoTls).is_err());
        cluster.restart();
        let x: i32 = cluster
            .client(&db)
            .query_one("SELECT x FROM t", &[])
            .unwrap()
            .get(0);
        assert_eq!(x, 7);
        let root = cluster.root.clone();
        let url = cluster.url(&db);
        drop(cluster);
        assert!(!root.exists(), "{} is left behind", root.display());
        assert!(postgres::Client::connect(&url, postgres::NoTls).is_err());
    }
}
