//! Strict JSON reading: UTF-8, exact numbers, unique names at every depth.
//!
//! `serde_json::Value` keeps the last of two equal names without a word;
//! JCS needs I-JSON (RFC 8785 §3.1, RFC 7493 §2.3), where names are unique,
//! so values are built by a visitor that refuses a repeated name instead.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::{EntryError, number};

/// Reads `bytes` as exactly one JSON object under the strict rules.
pub(super) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, EntryError> {
    match parse_value(bytes)? {
        Value::Object(m) => Ok(m),
        _ => Err(EntryError::NotObject),
    }
}

/// Reads `bytes` as exactly one JSON value under the strict rules.
pub(super) fn parse_value(bytes: &[u8]) -> Result<Value, EntryError> {
    let text = std::str::from_utf8(bytes).map_err(|e| EntryError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    // Numbers first: serde_json refuses out-of-range literals such as
    // `1e400` as a syntax error, and they deserve the precise error.
    number::check_numbers(text.as_bytes())?;
    let dup = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let result = StrictValue { dup: &dup }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    result.map_err(|e| match dup.into_inner() {
        Some(key) => EntryError::DuplicateKey {
            key,
            line: e.line(),
            column: e.column(),
        },
        None => EntryError::InvalidJson {
            line: e.line(),
            column: e.column(),
            reason: strip_position(&e.to_string()),
        },
    })
}

/// Reads canonical body bytes that this crate has just written.
pub(super) fn reread_body(bytes: &[u8]) -> Result<super::Body, EntryError> {
    serde_json::from_slice(bytes).map_err(|e| EntryError::InvalidJson {
        line: e.line(),
        column: e.column(),
        reason: strip_position(&e.to_string()),
    })
}

/// serde_json appends " at line L column C"; the error carries both as
/// fields already.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// Builds a `Value`, recording the first repeated object name in `dup`.
/// serde_json's own recursion limit still applies to nested values, so
/// deep input cannot overflow the stack.
#[derive(Clone, Copy)]
struct StrictValue<'a> {
    dup: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                let msg = format!("duplicate key {key:?}");
                *self.dup.borrow_mut() = Some(super::clip(&key, 64));
                return Err(de::Error::custom(msg));
            }
            let value = map.next_value_seed(self)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_detected_after_unescaping() {
        let err = parse_value(br#"{"a":1,"\u0061":2}"#).unwrap_err();
        assert!(matches!(err, EntryError::DuplicateKey { ref key, .. } if key == "a"));
    }

    #[test]
    fn trailing_garbage_is_invalid() {
        assert!(matches!(
            parse_value(b"{} x"),
            Err(EntryError::InvalidJson { .. })
        ));
        assert!(parse_value(b" {} \n").is_ok());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = "[".repeat(100_000);
        assert!(matches!(
            parse_value(deep.as_bytes()),
            Err(EntryError::InvalidJson { .. })
        ));
    }
}
