//! Running the real `evident` binary from the CLI's integration tests, with
//! none of the caller's `EVIDENT_*` settings leaking in. Each test crate
//! uses part of this module.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// What a run of the binary left behind.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// Stdout as one JSON document.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// `evident ARGS…` with a clean environment, not yet started.
pub(crate) fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_evident"));
    cmd.args(args);
    // Every setting the binary reads (EVIDENT_DATA_DIR, EVIDENT_VKEY, the
    // server's EVIDENT_LISTEN, EVIDENT_RATE_LIMIT_…, EVIDENT_CONFIG, …).
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("EVIDENT_") {
            cmd.env_remove(var);
        }
    }
    cmd
}

/// Runs `evident ARGS…` to completion.
pub(crate) fn evident(args: &[&str]) -> Run {
    evident_with(args, None, None)
}

/// Runs `evident ARGS…` in `dir` (if given), feeding it `stdin` (if given;
/// standard input is closed either way).
pub(crate) fn evident_with(args: &[&str], dir: Option<&Path>, stdin: Option<&str>) -> Run {
    let mut cmd = command(args);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            // A command that fails before reading its input closes the pipe.
            let _ = input.write_all(s.as_bytes());
        }
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}
