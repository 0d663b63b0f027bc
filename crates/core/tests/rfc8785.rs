//! RFC 8785 (JCS) known answers, run through the canonicaliser that entries
//! use (`serde_json_canonicalizer`), and through our strict entry reader
//! where it matters.
//!
//! Sources:
//! - RFC 8785 §3.2.3 (property sorting example), §3.2.4 (the main example
//!   with "numbers", "string" and "literals") and Appendix B (number
//!   serialisation samples): <https://www.rfc-editor.org/rfc/rfc8785>.
//! - The reference implementation's test data,
//!   `cyberphone/json-canonicalization`, files `testdata/input/weird.json`
//!   and `testdata/output/weird.json`.
#![allow(clippy::unwrap_used)]

use evident_core::ErrorCode;
use evident_core::entry::{Body, EntryError, check_numbers};
use serde_json::Value;

fn jcs(json: &str) -> String {
    let v: Value = serde_json::from_str(json).unwrap();
    serde_json_canonicalizer::to_string(&v).unwrap()
}

/// RFC 8785 §3.2.3: names sort by their UTF-16 code units, so U+1F600
/// (surrogates D83D DE00) sorts before U+FB33.
#[test]
fn section_3_2_3_sorting() {
    let input = r#"{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }"#;
    let expected = concat!(
        "{\"\\r\":\"Carriage Return\",",
        "\"1\":\"One\",",
        "\"\u{80}\":\"Control\",",
        "\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",",
        "\"\u{20ac}\":\"Euro Sign\",",
        "\"\u{1f600}\":\"Emoji: Grinning Face\",",
        "\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
    );
    assert_eq!(jcs(input), expected);
}

/// RFC 8785 §3.2.4, the example input and its canonical output.
#[test]
fn section_3_2_4_main_example() {
    let input = r#"{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"#;
    let expected = "{\"literals\":[null,true,false],\
        \"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\
        \"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
    assert_eq!(jcs(input), expected);
}

/// The §3.2.4 input through our own reader: `333333333.33333329` is not a
/// double, and canonicalisation would silently turn it into
/// `333333333.3333333`, so client input carrying it is refused; the other
/// numbers only change spelling and pass.
#[test]
fn section_3_2_4_numbers_through_the_entry_reader() {
    let err = check_numbers(b"[333333333.33333329, 1E30]").unwrap_err();
    assert_eq!(
        err,
        EntryError::LossyNumber {
            literal: "333333333.33333329".into(),
            offset: 1
        }
    );
    check_numbers(b"[1E30, 4.50, 2e-3, 0.000000000000000000000000001]").unwrap();
}

/// RFC 8785 Appendix B: IEEE 754 bit patterns and their serialisation.
#[test]
fn appendix_b_number_samples() {
    let samples: &[(u64, &str)] = &[
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0xffefffffffffffff, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xc340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44b52d02c7e14af5, "9.999999999999997e+22"),
        (0x44b52d02c7e14af6, "1e+23"),
        (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
        (0x444b1ae4d6e2ef4e, "999999999999999700000"),
        (0x444b1ae4d6e2ef4f, "999999999999999900000"),
        (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
        (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x41b3de4355555553, "333333333.3333332"),
        (0x41b3de4355555554, "333333333.33333325"),
        (0x41b3de4355555555, "333333333.3333333"),
        (0x41b3de4355555556, "333333333.3333334"),
        (0x41b3de4355555557, "333333333.33333343"),
        (0xbecbf647612f3696, "-0.0000033333333333333333"),
        (0x43143ff3c1cb0959, "1424953923781206.2"),
    ];
    for &(bits, expected) in samples {
        let f = f64::from_bits(bits);
        assert_eq!(
            serde_json_canonicalizer::to_string(&f).unwrap(),
            expected,
            "{bits:016x}"
        );
        // And as a number inside a parsed value, the path bodies take.
        let v = Value::Number(serde_json::Number::from_f64(f).unwrap());
        assert_eq!(serde_json_canonicalizer::to_string(&v).unwrap(), expected);
        // Every canonical spelling is, by definition, exact: our lossy
        // number check must accept it.
        check_numbers(expected.as_bytes()).unwrap();
    }
    // Appendix B's NaN (7fffffffffffffff) and Infinity (7ff0000000000000)
    // rows: JCS must refuse them (§3.2.2.3).
    for bits in [0x7fffffffffffffff_u64, 0x7ff0000000000000] {
        assert!(serde_json_canonicalizer::to_string(&f64::from_bits(bits)).is_err());
    }
}

/// cyberphone/json-canonicalization `testdata/input/weird.json` →
/// `testdata/output/weird.json`.
#[test]
fn reference_implementation_weird_json() {
    let input = "{\n  \"\\u20ac\": \"Euro Sign\",\n  \"1\": \"One\",\n  \"\\u0080\": \"Control\\u007f\",\n  \"\\ud83d\\ude02\": \"Smiley\",\n  \"\\u00f6\": \"Latin Small Letter O With Diaeresis\",\n  \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\",\n  \"</script>\": \"Browser Challenge\"\n}\n";
    let expected = "{\"1\":\"One\",\"</script>\":\"Browser Challenge\",\"\u{80}\":\"Control\u{7f}\",\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\"\u{1f602}\":\"Smiley\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
    assert_eq!(jcs(input), expected);
}

/// A body's `data` is canonicalised with the same rules: the §3.2.3 object
/// as `data` comes out sorted, and `Body::parse` accepts only that form.
#[test]
fn body_data_is_canonicalised() {
    let body = Body {
        data: Some(
            serde_json::from_str(r#"{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"\ud83d\ude00":5}"#)
                .unwrap(),
        ),
        ..Body::default()
    };
    let bytes = body.to_bytes();
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        "{\"data\":{\"\\r\":2,\"1\":4,\"\u{20ac}\":1,\"\u{1f600}\":5,\"\u{fb33}\":3}}"
    );
    assert_eq!(Body::parse(&bytes).unwrap(), body);
    // Escaping the euro sign is another spelling of the same body.
    let respelled = String::from_utf8(bytes)
        .unwrap()
        .replace('\u{20ac}', "\\u20ac");
    assert_eq!(
        Body::parse(respelled.as_bytes()).unwrap_err().code(),
        "entry.not_canonical"
    );
}
