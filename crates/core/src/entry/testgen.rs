//! Generators for the property tests of the canonical writer and the
//! one-pass reader: JSON values that reach the corners of RFC 8785, and
//! many spellings of one value as a client might send it.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use proptest::prelude::*;
use serde_json::{Map, Number, Value};

/// Characters where RFC 8785's rules bite: the escapes, U+007F (not
/// escaped), both sides of the UTF-16/UTF-8 ordering split (U+D7FF,
/// U+E000, U+FB33, U+FFFF against U+10000 and U+1F600), and the §3.2.3
/// example's names.
const EDGE_CHARS: &[char] = &[
    'a',
    'b',
    'Z',
    '1',
    '/',
    '\0',
    '\u{1}',
    '\u{8}',
    '\t',
    '\n',
    '\u{b}',
    '\u{c}',
    '\r',
    '\u{1f}',
    ' ',
    '"',
    '\\',
    '\u{7f}',
    '\u{80}',
    'ö',
    '€',
    '\u{2028}',
    '\u{d7ff}',
    '\u{e000}',
    '\u{fb33}',
    '\u{fffd}',
    '\u{ffff}',
    '\u{10000}',
    '😀',
    '😂',
    '\u{10ffff}',
];

/// Strings: short ones made of edge characters, or any printable text.
pub(super) fn string() -> BoxedStrategy<String> {
    prop_oneof![
        3 => proptest::collection::vec(proptest::sample::select(EDGE_CHARS), 0..6)
            .prop_map(|v| v.into_iter().collect()),
        1 => "\\PC{0,8}",
        1 => "[a-z0-9_.-]{0,12}",
    ]
    .boxed()
}

/// Doubles at the edges of ECMAScript's number layout and of the double
/// range (RFC 8785 Appendix B and §3.2.2.3).
pub(super) const EDGE_DOUBLES: &[f64] = &[
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    2.225_073_858_507_201e-308, // largest subnormal
    2.2250738585072014e-308,    // smallest normal
    1.7976931348623157e308,
    -1.7976931348623157e308,
    1e21,
    999_999_999_999_999_900_000.0,
    999_999_999_999_999_700_000.0,
    1e-6,
    9.999_999_999_999_997e-7,
    1e-7,
    1e23,
    9.999_999_999_999_997e22,
    9_007_199_254_740_992.0,
    9_007_199_254_740_994.0,
    295_147_905_179_352_830_000.0,
    0.1,
    1.5,
    -0.000_003_333_333_333_333_333_3,
    333_333_333.333_333_3,
    1_424_953_923_781_206.2,
    18_446_744_073_709_551_616.0,
    9_223_372_036_854_775_808.0,
    -9_223_372_036_854_775_808.0,
];

/// Numbers of every kind serde_json holds: any `u64`, any `i64`, doubles
/// from any bit pattern, small integers, and the edge doubles.
pub(super) fn number() -> BoxedStrategy<Number> {
    // Most integers beyond 2^53 have no double, so entries holding one
    // are refused; they are kept rarer than the rest so that most
    // generated entries get through to the body.
    prop_oneof![
        1 => any::<u64>().prop_map(Number::from),
        1 => any::<i64>().prop_map(Number::from),
        3 => (0u64..1000).prop_map(Number::from),
        2 => (-1000i64..0).prop_map(Number::from),
        3 => any::<u64>().prop_filter_map("finite", |b| Number::from_f64(f64::from_bits(b))),
        2 => any::<f64>().prop_filter_map("finite", Number::from_f64),
        3 => proptest::sample::select(EDGE_DOUBLES).prop_map(|f| Number::from_f64(f).unwrap()),
        2 => (-1e6f64..1e6).prop_filter_map("finite", Number::from_f64),
    ]
    .boxed()
}

/// Any JSON value, nested a few levels.
pub(super) fn value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number().prop_map(Value::Number),
        string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((string(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
    .boxed()
}

/// A small deterministic source of choices for [`Speller`].
struct Choices(u64);

impl Choices {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
}

/// Writes JSON text for a value in one of the many spellings RFC 8259
/// allows: whitespace anywhere between tokens, any character escaped,
/// upper- or lowercase hex, `\/`, numbers with exponents, trailing
/// fraction zeros, and so on. Some spellings of a number change its value
/// (an integer beyond 2^53 has no double); those make entries the reader
/// must refuse.
pub(super) struct Speller {
    choices: Choices,
    pub(super) out: String,
}

impl Speller {
    pub(super) fn new(seed: u64) -> Self {
        Speller {
            choices: Choices(seed | 1),
            out: String::new(),
        }
    }

    pub(super) fn ws(&mut self) {
        const WS: &[&str] = &["", "", "", " ", "\n", "\t", "\r\n  "];
        let i = (self.choices.next() % WS.len() as u64) as usize;
        self.out.push_str(WS[i]);
    }

    pub(super) fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.out.push_str("null"),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => self.number(n),
            Value::String(s) => self.string(s),
            Value::Array(a) => {
                self.out.push('[');
                for (i, item) in a.iter().enumerate() {
                    if i > 0 {
                        self.ws();
                        self.out.push(',');
                    }
                    self.ws();
                    self.value(item);
                }
                self.ws();
                self.out.push(']');
            }
            Value::Object(m) => {
                let mut members: Vec<(&String, &Value)> = m.iter().collect();
                // Shuffle: member order must not matter.
                for i in (1..members.len()).rev() {
                    let j = (self.choices.next() % (i as u64 + 1)) as usize;
                    members.swap(i, j);
                }
                self.object(&members);
            }
        }
    }

    pub(super) fn object(&mut self, members: &[(&String, &Value)]) {
        self.out.push('{');
        for (i, (k, v)) in members.iter().enumerate() {
            if i > 0 {
                self.ws();
                self.out.push(',');
            }
            self.ws();
            self.string(k);
            self.ws();
            self.out.push(':');
            self.ws();
            self.value(v);
        }
        self.ws();
        self.out.push('}');
    }

    pub(super) fn string(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            let short = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                '\u{8}' => Some("\\b"),
                '\t' => Some("\\t"),
                '\n' => Some("\\n"),
                '\u{c}' => Some("\\f"),
                '\r' => Some("\\r"),
                '/' if self.choices.one_in(2) => Some("\\/"),
                _ => None,
            };
            let must = (c as u32) < 0x20 || c == '"' || c == '\\';
            if let Some(e) = short.filter(|_| !self.choices.one_in(3)) {
                self.out.push_str(e);
            } else if must || self.choices.one_in(6) {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    if self.choices.one_in(2) {
                        self.out.push_str(&format!("\\u{u:04x}"));
                    } else {
                        self.out.push_str(&format!("\\u{u:04X}"));
                    }
                }
            } else {
                self.out.push(c);
            }
        }
        self.out.push('"');
    }

    fn number(&mut self, n: &Number) {
        if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
            let text = match self.choices.next() % 5 {
                0 => ryu_js::Buffer::new().format_finite(f).to_owned(),
                1 => format!("{f:e}"),
                2 => format!("{f:E}").replace("E", "E+").replace("E+-", "E-"),
                3 => format!("{f:?}"),
                _ => {
                    let s = format!("{f:e}");
                    let (m, e) = s.split_once('e').unwrap();
                    let m = if m.contains('.') {
                        format!("{m}00")
                    } else {
                        format!("{m}.0")
                    };
                    format!("{m}e{e}")
                }
            };
            // `{:?}` writes `inf`-free finite forms such as `1e300` or
            // `0.1`; all are JSON except a leading `+`, which none has.
            self.out.push_str(&text);
        } else {
            let digits = n.to_string();
            match self.choices.next() % 6 {
                0 => self.out.push_str(&format!("{digits}.0")),
                1 => self.out.push_str(&format!("{digits}e0")),
                2 if digits != "0" && !digits.starts_with('-') => {
                    self.out.push_str(&format!("{digits}0e-1"));
                }
                _ => self.out.push_str(&digits),
            }
        }
    }
}

/// Valid `occurred_at` values, then an invalid one.
const TIMES: &[&str] = &[
    "2026-11-22T18:03:07Z",
    "2026-11-22T18:03:07.123456Z",
    "2026-01-02T03:04:05+01:00",
    "2016-12-31T23:59:60z",
    "2026-11-22 18:03:07Z",
];

/// Valid kinds, then a reserved and two invalid ones.
const KINDS: &[&str] = &[
    "access.granted",
    "a",
    "k:1-x_y",
    "evident.redaction",
    "a/b",
    "",
];

/// A client entry line: the members of an entry in any order and
/// spelling, sometimes with an unknown or repeated member, a wrongly typed
/// one, or an invalid kind, time or number.
pub(super) fn entry_text() -> BoxedStrategy<String> {
    let member = |name: &'static str, v: BoxedStrategy<Value>| {
        proptest::option::weighted(0.6, v).prop_map(move |v| v.map(|v| (name.to_owned(), v)))
    };
    let str_value = || {
        prop_oneof![
            30 => string().prop_map(Value::String),
            1 => Just(Value::Null),
            1 => (0u64..5).prop_map(|n| Value::Number(n.into())),
        ]
        .boxed()
    };
    let int_value = || {
        prop_oneof![
            6 => (0u64..1_000_000).prop_map(|n| Value::Number(n.into())),
            1 => number().prop_map(Value::Number),
            1 => Just(Value::String("3".into())),
        ]
        .boxed()
    };
    let source = prop_oneof![
        6 => (string(), int_value()).prop_map(|(id, seq)| {
            let mut m = Map::new();
            m.insert("id".into(), Value::String(id));
            m.insert("seq".into(), seq);
            Value::Object(m)
        }),
        1 => value(),
    ]
    .boxed();
    let members = (
        (
            member(
                "kind",
                prop_oneof![
                    6 => proptest::sample::select(&KINDS[..3]),
                    1 => proptest::sample::select(KINDS),
                ]
                .prop_map(|k| Value::String(k.into()))
                .boxed(),
            ),
            member("parent", int_value()),
            member("source", source),
            member("request_id", str_value()),
            member("actor", str_value()),
        ),
        (
            member("action", str_value()),
            member("resource", str_value()),
            member("outcome", str_value()),
            member(
                "occurred_at",
                prop_oneof![
                    6 => proptest::sample::select(&TIMES[..4]),
                    1 => proptest::sample::select(TIMES),
                ]
                .prop_map(|t| Value::String(t.into()))
                .boxed(),
            ),
            member("data", value()),
        ),
    );
    (members, any::<u64>(), 0u8..20)
        .prop_map(|((a, b), seed, oddity)| {
            let mut all: Vec<(String, Value)> = [a.0, a.1, a.2, a.3, a.4, b.0, b.1, b.2, b.3, b.4]
                .into_iter()
                .flatten()
                .collect();
            // Mostly a kind that passes, so the body is reached.
            if oddity < 14 && !all.iter().any(|(k, _)| k == "kind") {
                all.push(("kind".into(), Value::String("access.granted".into())));
            }
            match oddity {
                14 => all.push(("extra".into(), Value::Null)),
                15 if !all.is_empty() => all.push(all[0].clone()),
                _ => {}
            }
            let mut sp = Speller::new(seed);
            // Keep the generated member order (a repeated member stays
            // repeated); shuffle by rotating.
            let rot = (seed as usize) % all.len().max(1);
            all.rotate_left(rot);
            let refs: Vec<(&String, &Value)> = all.iter().map(|(k, v)| (k, v)).collect();
            sp.ws();
            sp.object(&refs);
            sp.ws();
            sp.out
        })
        .boxed()
}
