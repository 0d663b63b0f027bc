//! The fast path for reading client entries and stored bodies: one pass
//! over the bytes that checks what the strict reader in `json.rs` checks
//! (JSON syntax, unique names at every depth, exact numbers) and builds
//! the values as canonical bytes would read back.
//!
//! The strict reader runs three passes over the input (the number scan,
//! serde_json's parse into a `Value` with duplicate detection, then a
//! second parse of the canonical bytes so the draft holds what the log
//! stores). This reader replaces all three for well-formed input, and
//! only for it: on anything it is not sure of — a syntax error, a
//! duplicate or unknown name, a number that canonicalisation would change,
//! a lone surrogate, nesting deeper than [`MAX_DEPTH`], an odd number
//! literal — it answers `None` and the caller runs the strict reader,
//! which is the one that decides and words every error. So this file
//! needs to be right about what it accepts, never about why it refuses;
//! `parse_entry` returns exactly what the strict reader would have.
//!
//! What "as the canonical bytes read back" means for numbers: the body is
//! stored as RFC 8785 text, and reading that text with serde_json gives a
//! `u64` for a spelling that is a non-negative integer below 2^64, an
//! `i64` for a negative one down to −2^63, and an `f64` for everything
//! else (a fraction, an exponent, or an integer beyond those ranges). So
//! `1.0` is kept as the integer 1 and `-0` as 0: the value the log holds.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

use super::jcs::find_special;
use super::number::exact_value;

/// Deepest nesting the fast path reads; deeper input goes to the strict
/// reader, whose parser refuses 128 levels. Counted with the top-level
/// object as 1.
pub(super) const MAX_DEPTH: u32 = 100;

/// Literals longer than this, or with an exponent of more than four
/// digits, go to the strict reader (no double needs more than 17
/// significant digits and a three-digit exponent; longer spellings are
/// rare enough to take the slow path).
const MAX_FAST_NUMBER: usize = 40;

/// Reads `bytes` as one JSON object whose member names are all in `names`,
/// each at most once, and returns the members' values by their position in
/// `names`. `None` when the input is anything else, or anything this
/// reader leaves to the strict one.
pub(super) fn read_fields<const N: usize>(
    bytes: &[u8],
    names: &[&str; N],
) -> Option<[Option<Value>; N]> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut r = Reader { text, pos: 0 };
    r.ws();
    r.eat(b'{')?;
    let mut out: [Option<Value>; N] = std::array::from_fn(|_| None);
    r.ws();
    if !r.eat_if(b'}') {
        loop {
            r.ws();
            let name = r.string()?;
            let slot = out
                .get_mut(names.iter().position(|n| *n == name)?)
                .filter(|s| s.is_none())?;
            r.ws();
            r.eat(b':')?;
            r.ws();
            *slot = Some(r.value(2)?);
            r.ws();
            match r.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
    }
    r.ws();
    (r.pos == bytes.len()).then_some(out)
}

struct Reader<'a> {
    /// The whole input, already checked to be UTF-8.
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.eat_if(b).then_some(())
    }

    fn eat_if(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// RFC 8259 §2 whitespace: space, tab, line feed, carriage return.
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Option<Value> {
        if self.bytes()[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Some(v)
        } else {
            None
        }
    }

    /// One value at nesting level `depth` (the top-level object is 1).
    fn value(&mut self, depth: u32) -> Option<Value> {
        match self.peek()? {
            b'"' => Some(Value::String(self.string()?.into_owned())),
            b'{' if depth <= MAX_DEPTH => self.object(depth),
            b'[' if depth <= MAX_DEPTH => self.array(depth),
            b't' => self.literal("true", Value::Bool(true)),
            b'f' => self.literal("false", Value::Bool(false)),
            b'n' => self.literal("null", Value::Null),
            b'-' | b'0'..=b'9' => self.number().map(Value::Number),
            _ => None,
        }
    }

    fn object(&mut self, depth: u32) -> Option<Value> {
        self.pos += 1;
        let mut map = Map::new();
        self.ws();
        if self.eat_if(b'}') {
            return Some(Value::Object(map));
        }
        loop {
            self.ws();
            let name = self.string()?.into_owned();
            self.ws();
            self.eat(b':')?;
            self.ws();
            let v = self.value(depth + 1)?;
            // A repeated name: the strict reader reports it.
            if map.insert(name, v).is_some() {
                return None;
            }
            self.ws();
            match self.next()? {
                b',' => {}
                b'}' => return Some(Value::Object(map)),
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: u32) -> Option<Value> {
        self.pos += 1;
        let mut items = Vec::new();
        self.ws();
        if self.eat_if(b']') {
            return Some(Value::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.next()? {
                b',' => {}
                b']' => return Some(Value::Array(items)),
                _ => return None,
            }
        }
    }

    /// A string (RFC 8259 §7), unescaped; borrowed when it has no escape.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.pos;
        let n = find_special(&self.bytes()[start..])?;
        self.pos += n;
        // The scan stops only at ASCII bytes, so these are char boundaries.
        if self.next()? == b'"' {
            return Some(Cow::Borrowed(&self.text[start..start + n]));
        }
        self.pos -= 1;
        let mut s = String::from(&self.text[start..start + n]);
        loop {
            match self.next()? {
                b'"' => return Some(Cow::Owned(s)),
                b'\\' => s.push(self.escape()?),
                // A raw control character.
                _ => return None,
            }
            let from = self.pos;
            let n = find_special(&self.bytes()[from..])?;
            s.push_str(&self.text[from..from + n]);
            self.pos += n;
        }
    }

    /// The character of the escape after a `\`. A `\u` escape of a
    /// surrogate must be a high one followed by a low one; anything else
    /// is not Unicode, and left to the strict reader to refuse.
    fn escape(&mut self) -> Option<char> {
        Some(match self.next()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4()?;
                if (0xD800..0xDC00).contains(&hi) {
                    self.eat(b'\\')?;
                    self.eat(b'u')?;
                    let lo = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return None;
                    }
                    char::from_u32(0x1_0000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                } else {
                    char::from_u32(hi)?
                }
            }
            _ => return None,
        })
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes().get(self.pos..self.pos + 4)?;
        let mut v = 0;
        for &d in digits {
            v = v * 16 + char::from(d).to_digit(16)?;
        }
        self.pos += 4;
        Some(v)
    }

    /// A number (RFC 8259 §6), as the value its canonical spelling reads
    /// back to; `None` unless its value is exactly a double's (see
    /// `number::check_numbers`).
    fn number(&mut self) -> Option<Number> {
        let start = self.pos;
        let negative = self.eat_if(b'-');
        let int_start = self.pos;
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let int_len = self.pos - int_start;
        let mut plain = true;
        if self.eat_if(b'.') {
            plain = false;
            self.digit()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            plain = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            let exp_start = self.pos;
            self.digit()?;
            if self.pos - exp_start > 4 {
                return None;
            }
        }
        let token = &self.bytes()[start..self.pos];
        if plain && int_len <= 15 {
            // Below 10^15, under 2^53: the integer is a double, and its
            // canonical spelling is itself (`-0` is `0`).
            let mut n = 0u64;
            for &d in &token[usize::from(negative)..] {
                n = n * 10 + u64::from(d - b'0');
            }
            return Some(match i64::try_from(n) {
                Ok(i) if negative && i != 0 => Number::from(-i),
                _ => Number::from(n),
            });
        }
        if token.len() > MAX_FAST_NUMBER {
            return None;
        }
        let mut buf = ryu_js::Buffer::new();
        let (value, canonical) = exact_value(token, &mut buf)?;
        read_back(canonical, value)
    }

    /// One digit, then any more.
    fn digit(&mut self) -> Option<()> {
        match self.next()? {
            b'0'..=b'9' => {
                self.digits();
                Some(())
            }
            _ => None,
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }
}

/// The number serde_json reads from `canonical`, the RFC 8785 spelling of
/// the finite double `value`: a `u64` or `i64` when the spelling is an
/// integer in range, else the double itself (every canonical spelling
/// reads back as its double, which is what makes it canonical).
fn read_back(canonical: &str, value: f64) -> Option<Number> {
    if canonical.bytes().any(|b| matches!(b, b'.' | b'e')) {
        return Number::from_f64(value);
    }
    let int = match canonical.strip_prefix('-') {
        // serde_json keeps magnitudes up to 2^63 as an i64.
        Some(digits) => digits
            .parse::<u64>()
            .ok()
            .filter(|&m| m <= 1 << 63)
            .map(|m| Number::from(0i64.wrapping_sub_unsigned(m))),
        None => canonical.parse::<u64>().ok().map(Number::from),
    };
    int.or_else(|| Number::from_f64(value))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::entry::{
        BODY_FIELDS, Body, INPUT_FIELDS, Limits, parse_entry, parse_entry_reference, testgen,
    };

    fn fast_accepts(input: &str) -> bool {
        read_fields(input.as_bytes(), INPUT_FIELDS).is_some()
    }

    /// The benchmark's lines, and the spellings a client is likely to
    /// use, are read by the fast path; otherwise it would only be a
    /// slower way to the strict reader.
    #[test]
    fn ordinary_input_takes_the_fast_path() {
        for input in [
            r#"{"kind":"auth.login","actor":"user-118712","action":"login","resource":"invoice/9017477","outcome":"success","occurred_at":"2026-11-22T00:00:00.084487Z","request_id":"req-0000000000-40a2ab9d","data":{"ip":"10.40.172.157","session":"002a74b4","attempt":2}}"#,
            "{ \"kind\" : \"a\", \"data\": [1.5, -0, 1e21, 5e-324, \"\\u00e9\\ud83d\\ude00\\/\"] }\r",
            r#"{"kind":"a","parent":3.0,"source":{"seq":1E2,"id":"p"},"data":{"b":{},"a":[],"c":null}}"#,
        ] {
            assert!(fast_accepts(input), "{input}");
            assert_eq!(
                parse_entry(input.as_bytes(), &Limits::default()),
                parse_entry_reference(input.as_bytes(), &Limits::default())
            );
        }
    }

    /// What the fast path leaves to the strict reader.
    #[test]
    fn doubtful_input_is_left_to_the_strict_reader() {
        for input in [
            r#"{"kind":"a","kind":"b"}"#,
            r#"{"kind":"a","data":{"x":1,"x":2}}"#,
            r#"{"kind":"a","extra":1}"#,
            r#"{"kind":"a","data":9007199254740993}"#,
            r#"{"kind":"a","data":1e400}"#,
            r#"{"kind":"a","data":1e00001}"#,
            r#"{"kind":"a","data":0.10000000000000000000000000000000000000000}"#,
            r#"{"kind":"a","data":"\ud800"}"#,
            r#"{"kind":"a","data":"\udc00\ud800"}"#,
            "{\"kind\":\"a\",\"data\":\"\t\"}",
            r#"{"kind":"a","data":01}"#,
            r#"{"kind":"a","data":[1,]}"#,
            r#"{"kind":"a"} x"#,
            r#"{"kind":"a""#,
            "{\"kind\":\"a\u{a0}\"}\u{a0}",
            "[]",
            "",
        ] {
            assert!(!fast_accepts(input), "{input}");
        }
    }

    #[test]
    fn nesting_beyond_the_limit_goes_to_the_strict_reader() {
        let nested = |levels: usize| {
            format!(
                r#"{{"kind":"a","data":{}{}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        let limit = MAX_DEPTH as usize - 1;
        assert!(fast_accepts(&nested(limit)));
        assert!(!fast_accepts(&nested(limit + 1)));
        // serde_json refuses at 128 levels in all; both paths agree on
        // each side of it.
        for levels in [limit, limit + 1, 125, 126, 127, 200] {
            let input = nested(levels);
            assert_eq!(
                parse_entry(input.as_bytes(), &Limits::default()),
                parse_entry_reference(input.as_bytes(), &Limits::default()),
                "{levels}"
            );
        }
    }

    #[test]
    fn numbers_read_back_as_their_canonical_spelling() {
        let read = |lit: &str| {
            let input = format!(r#"{{"data":{lit}}}"#);
            let [.., data] = read_fields(input.as_bytes(), BODY_FIELDS).unwrap();
            let Some(Value::Number(n)) = data else {
                panic!("{lit}")
            };
            n
        };
        assert!(read("1.0").is_u64());
        assert!(read("-0").is_u64());
        assert!(read("-0.0").is_u64());
        assert!(read("-1E0").is_i64());
        assert!(read("1.5").is_f64());
        assert!(read("1e21").is_f64());
        assert_eq!(read("1e19").as_u64(), Some(10_000_000_000_000_000_000));
        assert!(read("1e20").is_f64());
        assert_eq!(
            read("-4611686018427388000").as_i64(),
            Some(-4_611_686_018_427_388_000)
        );
        assert!(read("-9223372036854778000").is_f64());
        // 2^60 has a double, but its canonical spelling is
        // 1152921504606847000, and that is what reads back.
        assert_eq!(
            read("1152921504606847000").as_u64(),
            Some(1_152_921_504_606_847_000)
        );
    }

    /// Cuts, repeats or replaces one byte of `text`.
    fn mutate(text: &str, at: usize, byte: u8, how: u8) -> Vec<u8> {
        let mut b = text.as_bytes().to_vec();
        if b.is_empty() {
            return vec![byte];
        }
        let i = at % b.len();
        match how % 3 {
            0 => b[i] = byte,
            1 => b.insert(i, byte),
            _ => {
                b.remove(i);
            }
        }
        b
    }

    /// Bytes a mutation puts in: JSON's punctuation and the bytes that
    /// start its tokens, more often than chance would.
    fn mutation_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            proptest::sample::select(b"{}[]\",:\\ -+.eE0159tfnu\x00\x1f\x7f\xc3\xa9".to_vec()),
            any::<u8>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// The fast path returns exactly what the strict reader returns,
        /// errors included, for entries in any spelling.
        #[test]
        fn parse_entry_equals_the_reference(text in testgen::entry_text()) {
            let limits = Limits::default();
            let fast = parse_entry(text.as_bytes(), &limits);
            prop_assert_eq!(&fast, &parse_entry_reference(text.as_bytes(), &limits));
            // And the bytes are those of the independent implementation,
            // given the same body as serde_json reads it.
            if let Ok(draft) = fast {
                let v: Value = serde_json::from_str(&text).unwrap();
                let mut body = v.as_object().unwrap().clone();
                for f in ["kind", "parent", "source"] {
                    body.remove(f);
                }
                let theirs = serde_json_canonicalizer::to_vec(&body).unwrap();
                prop_assert_eq!(&draft.body_bytes, &theirs);
                prop_assert_eq!(Body::parse(&draft.body_bytes), Ok(draft.body));
            }
        }

        #[test]
        fn parse_entry_equals_the_reference_after_a_mutation(
            text in testgen::entry_text(),
            at in any::<usize>(),
            byte in mutation_byte(),
            how in any::<u8>(),
        ) {
            let input = mutate(&text, at, byte, how);
            let limits = Limits::default();
            prop_assert_eq!(
                parse_entry(&input, &limits),
                parse_entry_reference(&input, &limits)
            );
        }

        /// Stored bodies: the fast path of `Body::parse` accepts exactly
        /// the canonical bytes, and reads them as the strict reader does.
        #[test]
        fn body_parse_equals_the_reference(
            text in testgen::entry_text(),
            at in any::<usize>(),
            byte in mutation_byte(),
            how in any::<u8>(),
        ) {
            if let Ok(draft) = parse_entry(text.as_bytes(), &Limits::default()) {
                let canonical = String::from_utf8(draft.body_bytes.clone()).unwrap();
                for bytes in [draft.body_bytes.clone(), mutate(&canonical, at, byte, how)] {
                    prop_assert_eq!(Body::parse(&bytes), Body::parse_reference(&bytes));
                }
            }
        }

        /// Well-formed entries whose numbers are all exact take the fast
        /// path (a guard against a fast path that quietly never runs).
        #[test]
        fn exact_entries_take_the_fast_path(data in testgen::value(), seed in any::<u64>()) {
            let mut sp = testgen::Speller::new(seed);
            let kind = Value::String("k".into());
            let (k, d) = (String::from("kind"), String::from("data"));
            sp.object(&[(&k, &kind), (&d, &data)]);
            let limits = Limits::default();
            let reference = parse_entry_reference(sp.out.as_bytes(), &limits);
            let long_number = sp.out.split(|c: char| !"0123456789.eE+-".contains(c))
                .any(|t| t.len() > MAX_FAST_NUMBER);
            if reference.is_ok() && !long_number {
                prop_assert!(fast_accepts(&sp.out), "{}", sp.out);
            }
        }
    }
}
