//! Builds the Go programs that check our output against Go's
//! `golang.org/x/mod/sumdb/{note,tlog}`, offline, from Debian's packages
//! in GOPATH mode. Shared by `evident-core`'s and the CLI's interop tests
//! (included with `#[path]`).
//!
//! When `go` or the `x/mod` sources are missing, the caller's tests print
//! `skipped: …` and pass, unless `EVIDENT_REQUIRE_INTEROP=1` is set, in
//! which case they fail and say what to install.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's `golang-golang-x-mod-dev` puts the sumdb packages.
const SUMDB: &str = "/usr/share/gocode/src/golang.org/x/mod/sumdb";

/// The result of [`build`], turned into the binary to run, or `None`
/// (after saying so) when the toolchain is missing and interop is not
/// required.
pub(crate) fn or_skip(built: &Result<PathBuf, String>) -> Option<&Path> {
    match built {
        Ok(p) => Some(p),
        Err(why) => {
            assert!(
                std::env::var("EVIDENT_REQUIRE_INTEROP").as_deref() != Ok("1"),
                "EVIDENT_REQUIRE_INTEROP=1 but {why}; install it with \
                 `apt-get install golang-go golang-golang-x-mod-dev`"
            );
            eprintln!("skipped: Go toolchain not installed ({why})");
            None
        }
    }
}

/// Builds `src` into `work/name`. `Err` only for a missing toolchain; a
/// failing build panics. The binary is built under a per-process name and
/// renamed into place, so concurrent test runs never run a half-written one.
pub(crate) fn build(src: &Path, work: &Path, name: &str) -> Result<PathBuf, String> {
    let version = Command::new("go")
        .arg("version")
        .env("GO111MODULE", "off")
        .output();
    if !version.is_ok_and(|o| o.status.success()) {
        return Err("`go` is not on PATH".into());
    }
    let sumdb = Path::new(SUMDB);
    if !sumdb.join("tlog").is_dir() || !sumdb.join("note").is_dir() {
        return Err(format!("{SUMDB} is missing"));
    }
    fs::create_dir_all(work).unwrap();
    let bin = work.join(name);
    let part = work.join(format!("{name}.{}.tmp", std::process::id()));
    let out = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&part)
        .arg(src)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", work.join("gocache"))
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("CGO_ENABLED", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "go build {} failed:\n{}{}",
        src.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    fs::rename(&part, &bin).unwrap();
    Ok(bin)
}
