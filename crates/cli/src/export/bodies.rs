//! `bodies.ndjson`: the bodies and salts of an export, one line per entry
//! that has a body, in index order.
//!
//! ```text
//! {"index":7,"salt":"<base64 of 16 bytes>","body":{"actor":"alice",…}}
//! ```
//!
//! The `body` member's text is the stored body bytes verbatim. Stored
//! bodies are RFC 8785 canonical JSON, so a verifier may take the member's
//! raw text or re-canonicalise the parsed value: both give the bytes the
//! envelope's salted digest covers. A stored body that could not be
//! embedded so (not a one-line JSON object: only a damaged row looks like
//! that) is written as `"body_base64"` instead, so the export carries what
//! is stored and the digest check reports it. A salt is written as stored,
//! whatever its length; the verifier rejects one that is not 16 bytes.
//!
//! Reading is strict: every line must be one of those two shapes, with
//! indices strictly increasing. A line that is not is an unusable export
//! (`export.bad_bodies`), not a finding about the log.

use std::io::{BufRead, BufReader, Read};
use std::ops::Range;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::common::CmdError;

/// Appends the line for one entry's body (with its final newline) to `out`.
pub(crate) fn write_line(out: &mut Vec<u8>, index: u64, salt: &[u8], body: &[u8]) {
    out.extend_from_slice(b"{\"index\":");
    out.extend_from_slice(index.to_string().as_bytes());
    out.extend_from_slice(b",\"salt\":\"");
    out.extend_from_slice(STANDARD.encode(salt).as_bytes());
    if embeddable(body) {
        out.extend_from_slice(b"\",\"body\":");
        out.extend_from_slice(body);
        out.push(b'}');
    } else {
        out.extend_from_slice(b"\",\"body_base64\":\"");
        out.extend_from_slice(STANDARD.encode(body).as_bytes());
        out.extend_from_slice(b"\"}");
    }
    out.push(b'\n');
}

/// Whether the bytes can stand as the `body` member of one NDJSON line: a
/// JSON object with no line break in it.
fn embeddable(body: &[u8]) -> bool {
    !body.iter().any(|b| matches!(b, b'\n' | b'\r'))
        && matches!(serde_json::from_slice::<Value>(body), Ok(Value::Object(_)))
}

/// Reads `bodies.ndjson` forward, one entry index at a time.
pub(crate) struct BodyReader<R> {
    reader: BufReader<R>,
    buf: Vec<u8>,
    line_no: u64,
    /// The line read but not yet matched to an entry.
    pending: Option<u64>,
    last_index: Option<u64>,
    /// The pending line's salt and body bytes.
    pub(crate) salt: Vec<u8>,
    pub(crate) body: Vec<u8>,
    done: bool,
}

impl<R> std::fmt::Debug for BodyReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("line_no", &self.line_no)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

fn bad(line: u64, message: impl Into<String>) -> CmdError {
    CmdError {
        code: "export.bad_bodies".to_owned(),
        message: format!("bodies.ndjson: {}", message.into()),
        line: Some(line),
    }
}

impl<R: Read> BodyReader<R> {
    pub(crate) fn new(r: R) -> Self {
        BodyReader {
            reader: BufReader::with_capacity(1 << 20, r),
            buf: Vec::new(),
            line_no: 0,
            pending: None,
            last_index: None,
            salt: Vec::new(),
            body: Vec::new(),
            done: false,
        }
    }

    /// Whether the file has a body for entry `index`; if so it is in
    /// [`BodyReader::salt`] and [`BodyReader::body`] until
    /// [`BodyReader::consume`]. Entries must be asked for in increasing
    /// order; a line for an index that was skipped over is an error (the
    /// lines are out of order or name an entry the export lacks).
    pub(crate) fn has(&mut self, index: u64) -> Result<bool, CmdError> {
        self.fill()?;
        match self.pending {
            Some(p) if p < index => Err(bad(
                self.line_no,
                format!("a body for index {p}, which is not an entry here in that order"),
            )),
            Some(p) => Ok(p == index),
            None => Ok(false),
        }
    }

    /// Marks the pending line as used.
    pub(crate) fn consume(&mut self) {
        self.pending = None;
    }

    /// The index of the next unused line, if any: after the last entry,
    /// a line left over names an entry the export does not have.
    pub(crate) fn leftover(&mut self) -> Result<Option<(u64, u64)>, CmdError> {
        self.fill()?;
        Ok(self.pending.map(|p| (p, self.line_no)))
    }

    /// Loads the next non-blank line into `pending` unless one is there.
    fn fill(&mut self) -> Result<(), CmdError> {
        while self.pending.is_none() && !self.done {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| CmdError::new("io.read_failed", format!("bodies.ndjson: {e}")))?;
            if n == 0 {
                self.done = true;
                break;
            }
            self.line_no += 1;
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let index = parse_line(&self.buf, &mut self.salt, &mut self.body)
                .map_err(|m| bad(self.line_no, m))?;
            if self.last_index.is_some_and(|last| index <= last) {
                return Err(bad(
                    self.line_no,
                    format!("index {index} does not follow the previous line's"),
                ));
            }
            self.last_index = Some(index);
            self.pending = Some(index);
        }
        Ok(())
    }
}

/// Parses one line into its index, salt and body bytes.
fn parse_line(line: &[u8], salt: &mut Vec<u8>, body: &mut Vec<u8>) -> Result<u64, String> {
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(map) = &value else {
        return Err("not a JSON object".into());
    };
    let members = members(line).ok_or("not a JSON object")?;
    let mut seen: Vec<&str> = Vec::new();
    for (key, _) in &members {
        if seen.contains(&key.as_str()) {
            return Err(format!("duplicate member {key:?}"));
        }
        if !matches!(key.as_str(), "index" | "salt" | "body" | "body_base64") {
            return Err(format!("unknown member {key:?}"));
        }
        seen.push(key);
    }
    let index = map
        .get("index")
        .and_then(Value::as_u64)
        .ok_or("\"index\" must be a non-negative integer")?;
    let salt_b64 = map
        .get("salt")
        .and_then(Value::as_str)
        .ok_or("\"salt\" must be a base64 string")?;
    salt.clear();
    STANDARD
        .decode_vec(salt_b64, salt)
        .map_err(|e| format!("\"salt\" is not base64: {e}"))?;
    body.clear();
    match (map.get("body"), map.get("body_base64")) {
        (Some(Value::Object(_)), None) => {
            let span = members
                .iter()
                .find(|(k, _)| k == "body")
                .map(|(_, r)| r.clone())
                .ok_or("no \"body\" member")?;
            body.extend_from_slice(&line[span]);
        }
        (None, Some(Value::String(b64))) => {
            STANDARD
                .decode_vec(b64, body)
                .map_err(|e| format!("\"body_base64\" is not base64: {e}"))?;
        }
        _ => return Err("needs an object \"body\" or a string \"body_base64\", not both".into()),
    }
    Ok(index)
}

/// The members of a JSON object text that is already known to be valid:
/// each decoded key with the byte range of its value's raw text. `None` if
/// the text is not an object after all.
fn members(s: &[u8]) -> Option<Vec<(String, Range<usize>)>> {
    let mut out = Vec::new();
    let mut i = skip_ws(s, 0);
    if s.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(s, i + 1);
    if s.get(i) == Some(&b'}') {
        return Some(out);
    }
    loop {
        let key_end = skip_string(s, i)?;
        let key: String = serde_json::from_slice(s.get(i..key_end)?).ok()?;
        i = skip_ws(s, key_end);
        if s.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(s, i + 1);
        let end = skip_value(s, start)?;
        out.push((key, start..end));
        i = skip_ws(s, end);
        match s.get(i) {
            Some(b',') => i = skip_ws(s, i + 1),
            Some(b'}') => return Some(out),
            _ => return None,
        }
    }
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while s
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// End (exclusive) of the string starting at `i`.
fn skip_string(s: &[u8], mut i: usize) -> Option<usize> {
    if s.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    loop {
        match s.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// End (exclusive) of the value starting at `i`.
fn skip_value(s: &[u8], mut i: usize) -> Option<usize> {
    match s.get(i)? {
        b'"' => skip_string(s, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match s.get(i)? {
                    b'"' => i = skip_string(s, i)?,
                    b'{' | b'[' => {
                        depth += 1;
                        i += 1;
                    }
                    b'}' | b']' => {
                        depth -= 1;
                        i += 1;
                        if depth == 0 {
                            return Some(i);
                        }
                    }
                    _ => i += 1,
                }
            }
        }
        _ => {
            while s
                .get(i)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                i += 1;
            }
            Some(i)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `(index, salt, body)` of each line.
    type Line = (u64, Vec<u8>, Vec<u8>);

    fn read_all(text: &[u8]) -> Result<Vec<Line>, CmdError> {
        let mut r = BodyReader::new(text);
        let mut out = Vec::new();
        for i in 0..100 {
            if r.has(i)? {
                out.push((i, r.salt.clone(), r.body.clone()));
                r.consume();
            }
        }
        Ok(out)
    }

    /// What is written is read back byte for byte, including a body that
    /// only a damaged row could hold.
    #[test]
    fn round_trip() {
        let mut text = Vec::new();
        let canonical = br#"{"actor":"a\"}","data":{"x":[1,{"y":"]"}]},"outcome":"ok"}"#;
        write_line(&mut text, 3, &[7; 16], canonical);
        write_line(&mut text, 9, &[1; 5], b"not json\n at all");
        write_line(&mut text, 10, &[2; 16], b"[1,2]");
        assert_eq!(
            String::from_utf8(text.clone())
                .unwrap()
                .lines()
                .next()
                .unwrap(),
            format!(
                r#"{{"index":3,"salt":"BwcHBwcHBwcHBwcHBwcHBw==","body":{}}}"#,
                String::from_utf8_lossy(canonical)
            )
        );
        let got = read_all(&text).unwrap();
        assert_eq!(
            got,
            vec![
                (3, vec![7; 16], canonical.to_vec()),
                (9, vec![1; 5], b"not json\n at all".to_vec()),
                (10, vec![2; 16], b"[1,2]".to_vec()),
            ]
        );
    }

    /// A reformatted line still yields the member's exact text, wherever
    /// the member is.
    #[test]
    fn member_order_and_spacing() {
        let line =
            br#" { "body" : {"a": [1, "}"]} , "salt":"AAAAAAAAAAAAAAAAAAAAAA==", "index": 4 }"#;
        let got = read_all(line).unwrap();
        assert_eq!(got[0].0, 4);
        assert_eq!(got[0].2, br#"{"a": [1, "}"]}"#.to_vec());
    }

    #[test]
    fn bad_lines() {
        for (text, want) in [
            (&b"{\"index\":1,\"salt\":\"AA==\"}\n"[..], "needs an object"),
            (b"{\"index\":1,\"salt\":\"AA==\",\"body\":{},\"x\":1}\n", "unknown member"),
            (b"{\"index\":1,\"index\":2,\"salt\":\"AA==\",\"body\":{}}\n", "duplicate"),
            (b"{\"index\":1,\"salt\":\"!\",\"body\":{}}\n", "not base64"),
            (b"[1]\n", "not a JSON object"),
            (b"{\"index\":-1,\"salt\":\"AA==\",\"body\":{}}\n", "non-negative"),
            (
                b"{\"index\":2,\"salt\":\"AA==\",\"body\":{}}\n{\"index\":2,\"salt\":\"AA==\",\"body\":{}}\n",
                "does not follow",
            ),
        ] {
            let e = read_all(text).unwrap_err();
            assert_eq!(e.code, "export.bad_bodies");
            assert!(e.message.contains(want), "{} / {want}", e.message);
        }
    }

    #[test]
    fn skipped_index_is_an_error() {
        let mut r = BodyReader::new(&b"{\"index\":2,\"salt\":\"AA==\",\"body\":{}}\n"[..]);
        assert!(!r.has(1).unwrap());
        assert!(r.has(3).is_err());
    }
}
