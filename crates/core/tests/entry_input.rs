//! Entry input, envelope and body encoding, timestamps and names.
#![allow(clippy::unwrap_used)]

use evident_core::ErrorCode;
use evident_core::entry::{
    Body, DEFAULT_MAX_BODY_BYTES, ENVELOPE_VERSION, EntryDraft, EntryError, Envelope, Limits,
    MAX_ENVELOPE_BYTES, MAX_TS_MICROS, MIN_TS_MICROS, SALT_SIZE, Source, body_digest, format_ts,
    genesis_prev, origin, parse_entry, parse_ts, validate_kind,
};
use evident_core::hash::{self, Hash};
use proptest::prelude::*;

const ORIGIN: &str = "ledger.example.com/acme/audit";
const TS: &str = "2026-11-22T18:03:07.123456Z";
/// Salt 00 01 02 … 0f.
const SALT: [u8; SALT_SIZE] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

fn parse(input: &str) -> Result<EntryDraft, EntryError> {
    parse_entry(input.as_bytes(), &Limits::default())
}

fn err(input: &str) -> EntryError {
    parse(input).unwrap_err()
}

// ---------------------------------------------------------------------------
// Known answers computed independently with Python's hashlib, base64 and
// json modules (python3 one-off run while writing these tests):
//   b64(sha256(b"ledger.example.com/acme/audit"))
//   b64(sha256(bytes(range(16)) + BODY))
//   b64(sha256(bytes(16) + b"{}"))
//   json.dumps(env, sort_keys=True, separators=(',',':'), ensure_ascii=False)
//   b64(sha256(b"\x00" + envelope_bytes))
// ---------------------------------------------------------------------------

const GENESIS_PREV: &str = "fGqrcM1lIpQu7o2z9Ul6YGqdoDHIMNDD/kgudByqaNA=";
const BODY: &str = r#"{"action":"open","actor":"alice","data":{"n":1},"resource":"door/1"}"#;
const BODY_DIGEST: &str = "9uSCbp23HmW55BBlAcipbb/aI+gB9BR2JUUIfN9mmjE=";
const EMPTY_BODY_ZERO_SALT_DIGEST: &str = "MzsT/wL1euGASbgspm83WSxaPY/VTkTiOuXHCFwk/So=";
const ENVELOPE: &str = r#"{"body":"9uSCbp23HmW55BBlAcipbb/aI+gB9BR2JUUIfN9mmjE=","index":0,"kind":"access.granted","origin":"ledger.example.com/acme/audit","prev":"fGqrcM1lIpQu7o2z9Ul6YGqdoDHIMNDD/kgudByqaNA=","source":{"id":"door-ctl","seq":42},"ts":"2026-11-22T18:03:07.123456Z","v":1}"#;
const ENVELOPE_LEAF: &str = "SjP8YTG0oM1F8GpygBkILMA4V+YK8W81/BtWSv8Av64=";

fn h(b64: &str) -> Hash {
    Hash::from_base64(b64).unwrap()
}

fn sample_envelope() -> Envelope {
    Envelope {
        v: ENVELOPE_VERSION,
        origin: ORIGIN.into(),
        index: 0,
        ts: TS.into(),
        prev: h(GENESIS_PREV),
        kind: "access.granted".into(),
        parent: None,
        source: Some(Source {
            id: "door-ctl".into(),
            seq: 42,
        }),
        body: h(BODY_DIGEST),
    }
}

#[test]
fn genesis_prev_known_answer() {
    assert_eq!(genesis_prev(ORIGIN).to_base64(), GENESIS_PREV);
}

#[test]
fn body_digest_known_answers() {
    assert_eq!(body_digest(&SALT, BODY.as_bytes()).to_base64(), BODY_DIGEST);
    assert_eq!(
        body_digest(&[0; SALT_SIZE], b"{}").to_base64(),
        EMPTY_BODY_ZERO_SALT_DIGEST
    );
}

#[test]
fn envelope_known_answer_bytes_and_leaf() {
    let env = sample_envelope();
    assert_eq!(String::from_utf8(env.to_bytes()).unwrap(), ENVELOPE);
    assert_eq!(env.leaf_hash().to_base64(), ENVELOPE_LEAF);
    assert_eq!(env.leaf_hash(), hash::leaf_hash(ENVELOPE.as_bytes()));
}

#[test]
fn envelope_round_trip() {
    let env = sample_envelope();
    assert_eq!(Envelope::parse(&env.to_bytes()).unwrap(), env);
    let with_parent = Envelope {
        index: 7,
        parent: Some(3),
        source: None,
        ..env
    };
    let bytes = with_parent.to_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains(r#""parent":3"#) && !text.contains("source"));
    assert_eq!(Envelope::parse(&bytes).unwrap(), with_parent);
}

#[test]
fn envelope_respellings_are_not_canonical() {
    let respelled = [
        // Whitespace.
        ENVELOPE.replace(r#","index":0"#, r#", "index": 0"#),
        // Key order.
        ENVELOPE.replace(
            r#""index":0,"kind":"access.granted""#,
            r#""kind":"access.granted","index":0"#,
        ),
        // An escaped character.
        ENVELOPE.replace("access.granted", r"access.gr\u0061nted"),
        // Another spelling of a number.
        ENVELOPE.replace(r#""seq":42"#, r#""seq":4.2e1"#),
        // Trailing newline.
        format!("{ENVELOPE}\n"),
    ];
    for r in respelled {
        assert_ne!(r, ENVELOPE);
        let e = Envelope::parse(r.as_bytes()).unwrap_err();
        assert_eq!(e.code(), "entry.not_canonical", "{r}");
    }
    assert_eq!(
        Envelope::parse(format!(" {ENVELOPE}").as_bytes()).unwrap_err(),
        EntryError::NotCanonical { offset: 0 }
    );
}

#[test]
fn envelope_parse_checks_fields() {
    let cases = [
        (ENVELOPE.replace(r#""v":1"#, r#""v":2"#), "v"),
        (ENVELOPE.replace(r#","v":1"#, ""), "v"),
        (ENVELOPE.replace(r#""index":0"#, r#""index":-1"#), "index"),
        (ENVELOPE.replace(GENESIS_PREV, "AAAA"), "prev"),
        (
            ENVELOPE.replace(r#""index":0"#, r#""index":0,"parent":null"#),
            "parent",
        ),
        (
            ENVELOPE.replace(r#""index":0"#, r#""index":0,"parent":0"#),
            "parent",
        ),
        (
            ENVELOPE.replace(r#""seq":42"#, r#""seq":"42""#),
            "source.seq",
        ),
    ];
    for (text, field) in cases {
        match Envelope::parse(text.as_bytes()) {
            Err(EntryError::BadField { field: f, .. }) => assert_eq!(f, field, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    assert_eq!(
        Envelope::parse(ENVELOPE.replace(r#""v":1"#, r#""v":1,"x":1"#).as_bytes()).unwrap_err(),
        EntryError::UnknownField { field: "x".into() }
    );
    assert_eq!(
        Envelope::parse(ENVELOPE.replace(TS, "2026-11-22T18:03:07Z").as_bytes())
            .unwrap_err()
            .code(),
        "entry.bad_timestamp"
    );
    assert_eq!(
        Envelope::parse(ENVELOPE.replace("acme", "ACME").as_bytes())
            .unwrap_err()
            .code(),
        "entry.bad_name"
    );
    assert_eq!(
        Envelope::parse(&vec![b' '; MAX_ENVELOPE_BYTES + 1]).unwrap_err(),
        EntryError::TooLarge {
            what: "envelope",
            size: MAX_ENVELOPE_BYTES + 1,
            limit: MAX_ENVELOPE_BYTES
        }
    );
}

#[test]
fn parse_and_seal_reproduce_the_known_envelope() {
    let input = r#"{
        "kind": "access.granted",
        "source": {"seq": 42, "id": "door-ctl"},
        "resource": "door/1", "actor": "alice", "action": "open",
        "data": {"n": 1.0}
    }"#;
    let draft = parse(input).unwrap();
    assert_eq!(draft.body_bytes, BODY.as_bytes());
    assert_eq!(draft.request_id(), None);
    let sealed = draft
        .seal(ORIGIN, 0, TS, genesis_prev(ORIGIN), &SALT)
        .unwrap();
    assert_eq!(sealed.envelope, sample_envelope());
    assert_eq!(sealed.envelope_bytes, ENVELOPE.as_bytes());
    assert_eq!(sealed.leaf_hash.to_base64(), ENVELOPE_LEAF);
    assert_eq!(Body::parse(&draft.body_bytes).unwrap(), draft.body);
}

#[test]
fn parse_entry_keeps_every_field() {
    let draft = parse(
        r#"{"kind":"k","parent":3,"request_id":"r-1","actor":"a","action":"b",
            "resource":"c","outcome":"ok","occurred_at":"2026-01-02T03:04:05+01:00",
            "data":null}"#,
    )
    .unwrap();
    assert_eq!(draft.parent, Some(3));
    assert_eq!(draft.request_id(), Some("r-1"));
    assert_eq!(draft.body.data, Some(serde_json::Value::Null));
    assert_eq!(
        String::from_utf8(draft.body_bytes.clone()).unwrap(),
        r#"{"action":"b","actor":"a","data":null,"occurred_at":"2026-01-02T03:04:05+01:00","outcome":"ok","request_id":"r-1","resource":"c"}"#
    );
    assert_eq!(Body::parse(&draft.body_bytes).unwrap(), draft.body);
    // A parent must come before the entry.
    assert!(draft.seal(ORIGIN, 4, TS, Hash::default(), &SALT).is_ok());
    for index in [3, 2] {
        assert_eq!(
            draft
                .seal(ORIGIN, index, TS, Hash::default(), &SALT)
                .unwrap_err(),
            EntryError::BadField {
                field: "parent".into(),
                reason: format!("parent 3 is not before index {index}"),
            }
        );
    }
}

#[test]
fn reserved_kinds_need_permission() {
    let allow = Limits {
        allow_reserved_kinds: true,
        ..Limits::default()
    };
    assert!(parse_entry(br#"{"kind":"evident.redaction"}"#, &allow).is_ok());
    assert_eq!(Limits::default().max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    assert!(!Limits::default().allow_reserved_kinds);
}

// ---------------------------------------------------------------------------
// One test per EntryError variant, each asserting the exact value.
// ---------------------------------------------------------------------------

#[test]
fn error_invalid_utf8() {
    let e = parse_entry(b"{\"kind\":\"a\xff\"}", &Limits::default()).unwrap_err();
    assert_eq!(e, EntryError::InvalidUtf8 { offset: 10 });
    assert_eq!(e.code(), "entry.invalid_utf8");
}

#[test]
fn error_invalid_json() {
    let e = err("{\"kind\":\"a\",\n  }");
    assert_eq!(
        e,
        EntryError::InvalidJson {
            line: 2,
            column: 3,
            reason: "trailing comma".into()
        }
    );
    assert_eq!(e.code(), "entry.invalid_json");
    // Lone surrogates are not Unicode; JCS cannot represent them.
    assert_eq!(
        err(r#"{"kind":"a","actor":"\ud800"}"#).code(),
        "entry.invalid_json"
    );
    assert_eq!(err("").code(), "entry.invalid_json");
}

#[test]
fn error_not_object() {
    for input in ["[]", "\"kind\"", "1", "null"] {
        assert_eq!(err(input), EntryError::NotObject);
    }
    assert_eq!(EntryError::NotObject.code(), "entry.not_object");
}

#[test]
fn error_unknown_field() {
    let e = err(r#"{"kind":"a","Kind":"b"}"#);
    assert_eq!(
        e,
        EntryError::UnknownField {
            field: "Kind".into()
        }
    );
    assert_eq!(e.code(), "entry.unknown_field");
    assert_eq!(
        err(r#"{"kind":"a","source":{"id":"p","seq":1,"x":0}}"#),
        EntryError::UnknownField {
            field: "source.x".into()
        }
    );
}

#[test]
fn error_duplicate_key() {
    let e = err(r#"{"kind":"a","data":{"x":[{"y":1,"y":1}]}}"#);
    assert_eq!(
        e,
        EntryError::DuplicateKey {
            key: "y".into(),
            line: 1,
            column: 35
        }
    );
    assert_eq!(e.code(), "entry.duplicate_key");
    assert_eq!(
        err(r#"{"kind":"a","kind":"a"}"#).code(),
        "entry.duplicate_key"
    );
}

#[test]
fn error_missing_kind() {
    assert_eq!(err(r#"{"actor":"a"}"#), EntryError::MissingKind);
    assert_eq!(err(r#"{"kind":null}"#), EntryError::MissingKind);
    assert_eq!(EntryError::MissingKind.code(), "entry.missing_kind");
}

#[test]
fn error_bad_kind() {
    let e = err(r#"{"kind":"a/b"}"#);
    assert_eq!(
        e,
        EntryError::BadKind {
            reason: "'/' at byte 1 is not allowed; use [A-Za-z0-9._:-]".into()
        }
    );
    assert_eq!(e.code(), "entry.bad_kind");
    assert_eq!(
        err(r#"{"kind":""}"#),
        EntryError::BadKind {
            reason: "empty".into()
        }
    );
}

#[test]
fn error_reserved_kind() {
    let e = err(r#"{"kind":"evident.redaction"}"#);
    assert_eq!(
        e,
        EntryError::ReservedKind {
            kind: "evident.redaction".into()
        }
    );
    assert_eq!(e.code(), "entry.reserved_kind");
    assert_eq!(err(r#"{"kind":"Evident.x"}"#).code(), "entry.reserved_kind");
}

#[test]
fn error_bad_field() {
    let e = err(r#"{"kind":"a","actor":1}"#);
    assert_eq!(
        e,
        EntryError::BadField {
            field: "actor".into(),
            reason: "expected a string, got a number".into()
        }
    );
    assert_eq!(e.code(), "entry.bad_field");
    let field_of = |input: &str| match err(input) {
        EntryError::BadField { field, .. } => field,
        other => panic!("{input}: {other:?}"),
    };
    assert_eq!(field_of(r#"{"kind":1}"#), "kind");
    assert_eq!(field_of(r#"{"kind":"a","parent":-1}"#), "parent");
    assert_eq!(field_of(r#"{"kind":"a","parent":1.5}"#), "parent");
    assert_eq!(
        field_of(r#"{"kind":"a","parent":9007199254740994}"#),
        "parent"
    );
    assert_eq!(field_of(r#"{"kind":"a","actor":null}"#), "actor");
    assert_eq!(field_of(r#"{"kind":"a","source":[]}"#), "source");
    assert_eq!(
        field_of(r#"{"kind":"a","source":{"id":"p"}}"#),
        "source.seq"
    );
    assert_eq!(
        field_of(r#"{"kind":"a","source":{"id":"","seq":1}}"#),
        "source.id"
    );
    assert_eq!(
        field_of(r#"{"kind":"a","source":{"id":1,"seq":1}}"#),
        "source.id"
    );
    assert_eq!(field_of(r#"{"kind":"a","request_id":""}"#), "request_id");
    assert_eq!(
        field_of(r#"{"kind":"a","occurred_at":"2026-01-02 03:04:05Z"}"#),
        "occurred_at"
    );
    // Integral numbers in another spelling are still integers.
    assert_eq!(
        parse(r#"{"kind":"a","parent":3.0}"#).unwrap().parent,
        Some(3)
    );
}

#[test]
fn error_lossy_number() {
    let e = err(r#"{"kind":"a","data":1e400}"#);
    assert_eq!(
        e,
        EntryError::LossyNumber {
            literal: "1e400".into(),
            offset: 19
        }
    );
    assert_eq!(e.code(), "entry.lossy_number");
}

#[test]
fn error_too_large() {
    let small = Limits {
        max_body_bytes: 20,
        ..Limits::default()
    };
    let e = parse_entry(br#"{"kind":"a","actor":"0123456789"}"#, &small).unwrap_err();
    // {"actor":"0123456789"} is 22 bytes.
    assert_eq!(
        e,
        EntryError::TooLarge {
            what: "body",
            size: 22,
            limit: 20
        }
    );
    assert_eq!(e.code(), "entry.too_large");
    let default_limit = format!(
        r#"{{"kind":"a","actor":"{}"}}"#,
        "x".repeat(DEFAULT_MAX_BODY_BYTES)
    );
    assert_eq!(err(&default_limit).code(), "entry.too_large");

    let draft = EntryDraft {
        kind: "a".into(),
        parent: None,
        source: Some(Source {
            id: "p".repeat(MAX_ENVELOPE_BYTES),
            seq: 0,
        }),
        body: Body::default(),
        body_bytes: b"{}".to_vec(),
        salted: None,
    };
    match draft.seal(ORIGIN, 0, TS, Hash::default(), &SALT) {
        Err(EntryError::TooLarge {
            what: "envelope",
            size,
            limit: MAX_ENVELOPE_BYTES,
        }) => assert!(size > MAX_ENVELOPE_BYTES),
        other => panic!("{other:?}"),
    }
}

#[test]
fn error_not_canonical() {
    let e = Body::parse(br#"{"actor":"a", "data":1}"#).unwrap_err();
    assert_eq!(e, EntryError::NotCanonical { offset: 13 });
    assert_eq!(e.code(), "entry.not_canonical");
}

#[test]
fn error_bad_timestamp() {
    let e = parse_ts("2026-11-22T18:03:07Z").unwrap_err();
    assert_eq!(
        e,
        EntryError::BadTimestamp {
            value: "2026-11-22T18:03:07Z".into()
        }
    );
    assert_eq!(e.code(), "entry.bad_timestamp");
}

#[test]
fn error_bad_name() {
    let e = origin("example.com", "Acme", "audit").unwrap_err();
    assert_eq!(
        e,
        EntryError::BadName {
            name: "Acme".into(),
            reason: "must start with [a-z0-9]"
        }
    );
    assert_eq!(e.code(), "entry.bad_name");
}

// ---------------------------------------------------------------------------
// Names and kinds.
// ---------------------------------------------------------------------------

#[test]
fn origins() {
    assert_eq!(
        origin("ledger.example.com", "acme", "audit").unwrap(),
        ORIGIN
    );
    assert!(origin("localhost", "0", &"a".repeat(63)).is_ok());
    assert!(origin(&format!("{}.com", "a".repeat(60)), "t_1", "log-2").is_ok());
    // The system tenant is the one name outside the client rule.
    assert!(origin("x", "_system", "events").is_ok());
    assert!(origin("x", "t", "_system").is_err());
    for (i, t, l) in [
        ("", "t", "l"),
        ("Example.com", "t", "l"),
        ("example..com", "t", "l"),
        (".example.com", "t", "l"),
        ("-x.com", "t", "l"),
        ("x:8080", "t", "l"),
        (&"a.".repeat(127)[..], "t", "l"),
        ("x", "", "l"),
        ("x", "_t", "l"),
        ("x", "_systems", "l"),
        ("x", "t/u", "l"),
        ("x", "t", &"a".repeat(64)[..]),
        ("x", "t", "L"),
    ] {
        assert_eq!(
            origin(i, t, l).unwrap_err().code(),
            "entry.bad_name",
            "{i}/{t}/{l}"
        );
    }
}

#[test]
fn kinds() {
    for k in ["a", "access.granted", "A:b_c-d.9", &"k".repeat(128)[..]] {
        validate_kind(k).unwrap();
    }
    for k in ["", ".a", "a.", "a b", "é", "a/b", &"k".repeat(129)[..]] {
        assert_eq!(
            validate_kind(k).unwrap_err().code(),
            "entry.bad_kind",
            "{k}"
        );
    }
}

#[test]
fn a_kind_takes_exactly_the_documented_bytes() {
    const ALLOWED: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-";
    for b in 0u8..=127 {
        let kind = format!("a{}a", char::from(b));
        assert_eq!(
            validate_kind(&kind).is_ok(),
            ALLOWED.contains(char::from(b)),
            "byte {b:#04x}"
        );
    }
    // Past ASCII every byte belongs to a character that is not allowed.
    for c in ['\u{80}', 'é', '\u{ffff}', '\u{1f600}'] {
        assert!(validate_kind(&format!("a{c}a")).is_err(), "{c:?}");
    }
}

// ---------------------------------------------------------------------------
// Lossy numbers.
// ---------------------------------------------------------------------------

#[test]
fn exact_numbers_are_accepted() {
    for n in [
        "0",
        "-0",
        "1.5",
        "1e2",
        "0.1",
        "1.0",
        "9007199254740992",
        "-9007199254740992",
        "5e-324",
        "1.7976931348623157e+308",
    ] {
        let input = format!(r#"{{"kind":"a","data":[{n}]}}"#);
        assert!(parse(&input).is_ok(), "{n}");
    }
    // Numbers inside strings are text, not numbers.
    parse(r#"{"kind":"a","actor":"1e400 9007199254740993","data":{"1e400":"0.1000000000000000055511151231257827"}}"#)
        .unwrap();
}

#[test]
fn lossy_numbers_are_rejected() {
    for n in [
        "9007199254740993",
        "-9007199254740993",
        "1e400",
        "-1e400",
        "1e-400",
        "0.1000000000000000055511151231257827",
        "123456789012345678901234567890",
    ] {
        let input = format!(r#"{{"kind":"a","data":{{"x":[true,{n}]}}}}"#);
        assert_eq!(
            err(&input),
            EntryError::LossyNumber {
                literal: n.into(),
                offset: 30
            },
            "{n}"
        );
    }
}

#[test]
fn canonical_numbers_spell_differently_but_equal() {
    let draft = parse(r#"{"kind":"a","data":[1.0,1e2,-0,-0.0,0.10,1E+30]}"#).unwrap();
    assert_eq!(
        String::from_utf8(draft.body_bytes.clone()).unwrap(),
        r#"{"data":[1,100,0,0,0.1,1e+30]}"#
    );
    // The draft holds the body as the stored bytes read back (found by
    // proptest: -0.0 and 1.0 used to stay floats in the draft).
    assert_eq!(Body::parse(&draft.body_bytes).unwrap(), draft.body);
    assert_eq!(
        draft.body.data,
        Some(serde_json::json!([1, 100, 0, 0, 0.1, 1e30]))
    );
}

// ---------------------------------------------------------------------------
// Timestamps. Known answers from Python's datetime:
//   (datetime(1970,1,1,tzinfo=utc) + timedelta(microseconds=v))
//       .strftime("%Y-%m-%dT%H:%M:%S.%fZ")
// (years below 1000 zero-padded by hand; year 0000 is below Python's
// range and follows from 0001-01-01 minus the 366 days of leap year 0).
// ---------------------------------------------------------------------------

const TS_KNOWN: &[(i64, &str)] = &[
    (0, "1970-01-01T00:00:00.000000Z"),
    (-1, "1969-12-31T23:59:59.999999Z"),
    (1, "1970-01-01T00:00:00.000001Z"),
    (951_782_400_000_000, "2000-02-29T00:00:00.000000Z"),
    (4_107_542_400_000_000, "2100-03-01T00:00:00.000000Z"),
    (1_795_370_587_123_456, "2026-11-22T18:03:07.123456Z"),
    (-2_208_988_800_000_000, "1900-01-01T00:00:00.000000Z"),
    (-62_135_596_800_000_000, "0001-01-01T00:00:00.000000Z"),
    (-62_167_219_200_000_000, "0000-01-01T00:00:00.000000Z"),
    (253_402_300_799_999_999, "9999-12-31T23:59:59.999999Z"),
    (165_433_028_427_320_631, "7212-05-13T03:00:27.320631Z"),
    (-34_331_988_625_415_088, "0882-01-23T00:29:34.584912Z"),
    (-7_904_943_678_123_989, "1719-07-03T14:18:41.876011Z"),
    (61_597_857_661_079_285, "3921-12-17T04:01:01.079285Z"),
    (-12_622_013_910_593_320, "1570-01-09T21:01:29.406680Z"),
    (178_892_615_333_996_378, "7638-11-18T09:08:53.996378Z"),
];

#[test]
fn timestamp_known_answers() {
    for &(micros, text) in TS_KNOWN {
        assert_eq!(format_ts(micros), text);
        assert_eq!(parse_ts(text).unwrap(), micros, "{text}");
    }
    assert_eq!(MIN_TS_MICROS, -62_167_219_200_000_000);
    assert_eq!(MAX_TS_MICROS, 253_402_300_799_999_999);
}

#[test]
fn timestamp_rejections() {
    for s in [
        "2026-11-22T18:03:07.123456",       // no Z
        "2026-11-22T18:03:07.123456+00:00", // offset
        "2026-11-22T18:03:07.123456-00:00", // offset
        "2026-11-22T18:03:07.123Z",         // milliseconds
        "2026-11-22T18:03:07.1234567Z",     // nanosecond-ish
        "2026-11-22T18:03:07Z",             // no fraction
        "2016-12-31T23:59:60.000000Z",      // leap second
        "2026-11-22t18:03:07.123456Z",      // lowercase t
        "2026-11-22T18:03:07.123456z",      // lowercase z
        "2026-11-22 18:03:07.123456Z",      // space
        "2023-02-29T00:00:00.000000Z",      // not a leap year
        "2100-02-29T00:00:00.000000Z",      // not a leap year
        "2026-04-31T00:00:00.000000Z",      // April has 30 days
        "2026-00-10T00:00:00.000000Z",      // month 0
        "2026-11-00T00:00:00.000000Z",      // day 0
        "2026-11-22T24:00:00.000000Z",      // hour 24
        "2026-11-22T18:60:00.000000Z",      // minute 60
        "+2026-11-22T18:03:07.12345Z",      // sign
        "2026-11-22T18:03:07.12345aZ",      // letter in fraction
        "2026-11-22T18:03:07.-12345Z",      // sign in fraction
        "２026-11-22T18:03:07.123456Z",     // non-ASCII digit
        "",
    ] {
        assert_eq!(
            parse_ts(s).unwrap_err(),
            EntryError::BadTimestamp { value: s.into() },
            "{s}"
        );
    }
}

#[test]
fn timestamps_sort_as_bytes() {
    let mut pairs: Vec<(i64, String)> = TS_KNOWN.iter().map(|&(m, _)| (m, format_ts(m))).collect();
    pairs.sort_by(|a, b| a.1.cmp(&b.1));
    assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ts_round_trip(micros in MIN_TS_MICROS..=MAX_TS_MICROS) {
        let s = format_ts(micros);
        prop_assert_eq!(s.len(), 27);
        prop_assert_eq!(parse_ts(&s).unwrap(), micros);
    }

    #[test]
    fn ts_order_is_byte_order(a in MIN_TS_MICROS..=MAX_TS_MICROS, b in MIN_TS_MICROS..=MAX_TS_MICROS) {
        prop_assert_eq!(a.cmp(&b), format_ts(a).cmp(&format_ts(b)));
    }

    #[test]
    fn parse_entry_never_panics_on_bytes(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_entry(&input, &Limits::default());
        let _ = Envelope::parse(&input);
        let _ = Body::parse(&input);
    }

    #[test]
    fn parse_entry_never_panics_on_json_like_text(
        input in r#"[{}\[\]",:0-9eE.+\- a-z\\]{0,120}"#
    ) {
        let wrapped = format!(r#"{{"kind":"a","data":{input}}}"#);
        let _ = parse_entry(input.as_bytes(), &Limits::default());
        let _ = parse_entry(wrapped.as_bytes(), &Limits::default());
    }

    #[test]
    fn accepted_bodies_read_back(actor in ".{0,20}", n in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
        // A number written in Rust's own shortest form is exact, so it must
        // be accepted, and the stored body must parse back to itself.
        let input = serde_json::json!({"kind": "k", "actor": actor, "data": [n]}).to_string();
        let draft = parse_entry(input.as_bytes(), &Limits::default()).unwrap();
        prop_assert_eq!(Body::parse(&draft.body_bytes).unwrap(), draft.body);
    }
}
