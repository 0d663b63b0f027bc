//! The harness of the `evident serve` tests: the real binary on a loopback
//! port of its own choosing, with its own data directory, and a minimal
//! HTTP/1.1 client (one connection per request, `Connection: close`), so
//! the tests see exactly the bytes a client would.
//!
//! The server's standard output (JSON log lines) and standard error are
//! read on threads for the whole life of the process, so a full pipe never
//! blocks it; the lines are kept for assertions and for failure messages.
//! Dropping a [`Server`] kills it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::run;

/// How long the server may take to print its start-up line, and a request
/// to be answered: liveness bounds on a shared machine, not speed targets.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `evident serve`.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Its data directory.
    pub(crate) dir: PathBuf,
    /// The verifier key of its start-up line.
    pub(crate) vkey: String,
    /// The bootstrap admin token from `<data-dir>/admin.key`.
    pub(crate) admin: String,
    /// The start-up line, parsed.
    pub(crate) started: Value,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    status: Option<ExitStatus>,
}

/// An API key as the admin endpoint issued it.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub(crate) id: String,
    pub(crate) token: String,
}

impl Server {
    /// Starts `evident serve --listen 127.0.0.1:0 --data-dir DIR` with the
    /// `env` settings (and no other `EVIDENT_*` variable), and waits for
    /// its start-up line.
    pub(crate) fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = run::command(&["serve", "--listen", "127.0.0.1:0", "--data-dir"]);
        cmd.arg(dir);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();

        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let lines = Arc::clone(&stdout);
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.is_some() && line.contains(r#""event":"started""#) {
                    let _ = tx.take().map(|t| t.send(line.clone()));
                }
                lines.lock().unwrap().push(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let text = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                text.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });

        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                // Give the readers a moment to collect the last output.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "evident serve did not start ({e}):\nstdout:\n{}\nstderr:\n{}",
                    stdout.lock().unwrap().join("\n"),
                    stderr.lock().unwrap()
                );
            }
        };
        let started: Value = serde_json::from_str(&line).unwrap();
        let fields = &started["fields"];
        let addr: SocketAddr = fields["listen"].as_str().unwrap().parse().unwrap();
        assert!(addr.ip().is_loopback(), "{line}");
        assert_ne!(addr.port(), 0, "{line}");
        let vkey = fields["verifier_key"].as_str().unwrap().to_owned();
        let admin = std::fs::read_to_string(dir.join("admin.key"))
            .unwrap()
            .trim()
            .to_owned();
        Server {
            child,
            addr,
            dir: dir.to_owned(),
            vkey,
            admin,
            started,
            stdout,
            stderr,
            status: None,
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every line the server printed on standard output so far.
    pub(crate) fn log_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// What it printed on standard error so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGKILL, and wait for the process to be gone.
    pub(crate) fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.status = Some(self.child.wait().unwrap());
    }

    /// SIGTERM (through `kill -TERM PID`), and wait for the exit status.
    pub(crate) fn terminate(&mut self) -> ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed: {sent}");
        self.wait(START_TIMEOUT)
    }

    /// Waits for the process to end, at most `limit`.
    pub(crate) fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                self.status = Some(s);
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "evident serve did not exit within {limit:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A request to this server.
    pub(crate) fn req(&self, method: &str, path: &str) -> Req {
        Req::new(self.addr, method, path)
    }

    /// `GET path`.
    pub(crate) fn get(&self, path: &str) -> Req {
        self.req("GET", path)
    }

    /// `POST path`.
    pub(crate) fn post(&self, path: &str) -> Req {
        self.req("POST", path)
    }

    /// An admin call that must succeed with `status`; its JSON answer.
    pub(crate) fn admin(&self, path: &str, body: &Value, status: u16) -> Value {
        let r = self.post(path).bearer(&self.admin).json(body).send();
        assert_eq!(r.status, status, "POST {path}: {}", r.text());
        r.json()
    }

    /// Creates tenant `name`.
    pub(crate) fn tenant(&self, name: &str) {
        let t = self.admin("/v1/admin/tenants", &json!({"name": name}), 201);
        assert_eq!(t["name"], name);
        assert_eq!(t["status"], "active");
    }

    /// Issues a key of `tenant` with `scopes`.
    pub(crate) fn key(&self, tenant: &str, scopes: &[&str]) -> Key {
        let k = self.admin(
            "/v1/admin/api-keys",
            &json!({"tenant": tenant, "scopes": scopes}),
            201,
        );
        Key {
            id: k["id"].as_str().unwrap().to_owned(),
            token: k["api_key"].as_str().unwrap().to_owned(),
        }
    }

    /// The size of `log` as `GET /v1/logs` reports it for `token`'s tenant
    /// (0 when the log does not exist).
    pub(crate) fn size(&self, token: &str, log: &str) -> u64 {
        let r = self.get("/v1/logs").bearer(token).send();
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["logs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == log)
            .map_or(0, |l| l["size"].as_u64().unwrap())
    }

    /// Every entry of `log` (`GET …/entries`, page by page).
    pub(crate) fn entries(&self, token: &str, log: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut from = 0;
        loop {
            let r = self
                .get(&format!("/v1/logs/{log}/entries?from={from}&limit=1000"))
                .bearer(token)
                .send();
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            out.extend(v["entries"].as_array().unwrap().iter().cloned());
            match v["next"].as_u64() {
                Some(n) => from = n,
                None => return out,
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP request, built up and then sent.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    addr: SocketAddr,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    /// A request to `addr` (for threads that outlive a [`Server`] borrow).
    pub(crate) fn new(addr: SocketAddr, method: &str, path: &str) -> Req {
        Req {
            addr,
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `Authorization: Bearer TOKEN`.
    pub(crate) fn bearer(self, token: &str) -> Req {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// A JSON body.
    pub(crate) fn json(self, body: &Value) -> Req {
        self.body("application/json", body.to_string())
    }

    /// A body of `content_type`.
    pub(crate) fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Req {
        self.body = body.into();
        self.header("Content-Type", content_type)
    }

    /// Sends it and reads the whole answer; panics on an I/O error.
    pub(crate) fn send(self) -> Resp {
        let what = format!("{} {}", self.method, self.path);
        self.try_send().unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// Sends it and reads the whole answer.
    pub(crate) fn try_send(self) -> std::io::Result<Resp> {
        let mut stream = TcpStream::connect(self.addr)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.method,
            self.path,
            self.addr,
            self.body.len()
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        // A server that refuses a body (413) may answer and close before
        // reading all of it: the answer is what counts.
        let written = stream.write_all(&self.body);
        let mut raw = Vec::new();
        match stream.read_to_end(&mut raw) {
            Ok(_) => {}
            Err(e) if !raw.is_empty() => {
                // A reset after a complete answer (unread request body).
                if parse(&raw).is_err() {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
        match parse(&raw) {
            Ok(r) => Ok(r),
            Err(e) => {
                written?;
                Err(std::io::Error::other(e))
            }
        }
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    /// Header names in lower case, in order.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Resp {
    /// The value of header `name` (any case), if present once or more.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics with the body when it is not).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text()))
    }

    /// The `X-Request-ID` header.
    pub(crate) fn request_id(&self) -> &str {
        self.header("x-request-id")
            .unwrap_or_else(|| panic!("no X-Request-ID: {self:?}"))
    }

    /// Asserts an error answer: `status`, `code`, the JSON error shape with
    /// exactly `code`, `message` and `request_id`, and the body's request
    /// id equal to the header's. Returns the message.
    #[track_caller]
    pub(crate) fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(
            (self.status, self.text().contains(code)),
            (status, true),
            "want {status} {code}, got {} {}",
            self.status,
            self.text()
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        let v = self.json();
        let e = v["error"].as_object().unwrap();
        let mut fields: Vec<&str> = e.keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["code", "message", "request_id"], "{v}");
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        assert_eq!(e["code"], code, "{v}");
        assert_eq!(e["request_id"], self.request_id(), "{v}");
        e["message"].as_str().unwrap().to_owned()
    }

    /// The body without its `error.request_id`, and the status, for
    /// comparing two refusals.
    pub(crate) fn without_request_id(&self) -> (u16, Value) {
        let mut v = self.json();
        if let Some(e) = v.get_mut("error").and_then(Value::as_object_mut) {
            e.remove("request_id");
        }
        (self.status, v)
    }
}

/// Parses a whole HTTP/1.1 answer (Content-Length or chunked body).
fn parse(raw: &[u8]) -> Result<Resp, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|e| e.to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty answer")?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header {line:?}"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let rest = &raw[end + 4..];
    let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let body = if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = get("content-length") {
        let len: usize = len.parse().map_err(|_| "bad content-length")?;
        if rest.len() < len {
            return Err(format!("body cut short: {} of {len} bytes", rest.len()));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Resp {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line cut short")?;
        let size_text = std::str::from_utf8(&data[..eol]).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("chunk cut short".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `limit`
/// (a liveness bound: generous on purpose).
pub(crate) fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `HH:MM` UTC of the next minute boundary at least 15 s away: a
/// `seal_time` a test can wait for.
pub(crate) fn next_minute() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut at = (now / 60 + 1) * 60;
    if at - now < 15 {
        at += 60;
    }
    let day = at % 86_400;
    format!("{:02}:{:02}", day / 3600, day % 3600 / 60)
}
