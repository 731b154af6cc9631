//! Parsing JSON into a `serde_json::Value` whose objects and arrays are allocated at their
//! exact size (issue 17: `mhg validate` of a 100,000-entry Bundle).
//!
//! serde_json's own `Value` grows each object and array as it reads it: an array of one item
//! holds room for four, and an object's `IndexMap` (`preserve_order`) of four keys room for
//! seven 112-byte slots. On FHIR JSON, where most arrays hold one item and most objects a few
//! keys, that slack is a large part of the tree. Here each object's and array's items are
//! gathered on a scratch stack shared by the whole parse, then moved into a map or vector made
//! with exactly their number.
//!
//! The value is the one `serde_json::from_slice::<Value>` gives, node for node and in key order:
//! the same parser reads the bytes (its errors, recursion limit and number forms), a key given
//! twice keeps its first position and its last value (as `Map::insert`), and numbers are
//! `serde_json::Number`s read from their text (`arbitrary_precision`), as serde_json's visitor
//! reads them. Knows nothing of FHIR.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The key under which serde_json hands a number's text to a visitor (`arbitrary_precision`).
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Parses `bytes` (one JSON document, whitespace around it allowed) into an exactly sized
/// `Value`; the same value and the same errors as `serde_json::from_slice::<Value>`.
pub fn from_slice(bytes: &[u8]) -> serde_json::Result<Value> {
    let mut scratch = Scratch::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Lean(&mut scratch).deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Items of the arrays and objects still open, innermost last.
#[derive(Default)]
struct Scratch {
    items: Vec<Value>,
    entries: Vec<(String, Value)>,
}

struct Lean<'s>(&'s mut Scratch);

impl<'de> DeserializeSeed<'de> for Lean<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Lean<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let start = self.0.items.len();
        while let Some(v) = seq.next_element_seed(Lean(&mut *self.0))? {
            self.0.items.push(v);
        }
        let mut out = Vec::with_capacity(self.0.items.len() - start);
        out.extend(self.0.items.drain(start..));
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Ok(Value::Object(Map::new()));
        };
        if first == NUMBER_TOKEN {
            let text: String = map.next_value()?;
            return text.parse::<Number>().map(Value::Number).map_err(serde::de::Error::custom);
        }
        let start = self.0.entries.len();
        let v = map.next_value_seed(Lean(&mut *self.0))?;
        self.0.entries.push((first, v));
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(Lean(&mut *self.0))?;
            self.0.entries.push((k, v));
        }
        let mut out = Map::with_capacity(self.0.entries.len() - start);
        for (k, v) in self.0.entries.drain(start..) {
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value and its key order are serde_json's; so are errors.
    fn same(input: &str) {
        let theirs = serde_json::from_str::<Value>(input);
        let ours = from_slice(input.as_bytes());
        match (theirs, ours) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "{input}");
                assert_eq!(serde_json::to_string(&a).ok(), serde_json::to_string(&b).ok(), "key order: {input}");
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{input}"),
            (a, b) => panic!("{input}: serde_json {a:?}, lean {b:?}"),
        }
    }

    #[test]
    fn values_are_serde_jsons() {
        for s in [
            "null",
            " true ",
            "[]",
            "{}",
            "[[],[[]],{}]",
            r#"{"b":1,"a":[1,2.50,-3,1e400,12345678901234567890123],"c":{"z":null,"y":"\u00e9\n"}}"#,
            r#"{"k":1,"j":2,"k":3}"#,
            r#"{"resourceType":"Observation","valueQuantity":{"value":0.000100,"unit":"mg"},"component":[{"code":{"coding":[{"system":"s","code":"c"}]}}]}"#,
            r#"{"$serde_json::private::Number":"1"}"#,
            "-0",
            "1.0",
        ] {
            same(s);
        }
    }

    #[test]
    fn errors_are_serde_jsons() {
        for s in ["", "{", "[1,]", r#"{"a":1}x"#, "nul", r#"{"a" 1}"#, "\"\\x\"", &"[".repeat(200)] {
            same(s);
        }
    }

    /// Every golden Bundle and every JSON case of the HL7 validator's R4 suite (its Bundles
    /// among them) parses to serde_json's value, key order included: the validator is handed
    /// the same tree, so its findings are the same.
    #[test]
    fn golden_bundles_and_suite_cases_parse_as_serde_json_does() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut n = 0;
        for dir in [root.join("tests/golden/expected"), root.join("../shared/test-suites/fhir-validator-r4/cases")] {
            let Ok(files) = std::fs::read_dir(&dir) else {
                assert!(!dir.ends_with("expected"), "golden Bundles are in {}", dir.display());
                continue;
            };
            for f in files.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")) {
                let bytes = std::fs::read(&f).unwrap();
                let theirs = serde_json::from_slice::<Value>(&bytes).ok();
                let ours = from_slice(&bytes).ok();
                assert_eq!(theirs, ours, "{}", f.display());
                assert_eq!(theirs.map(|v| v.to_string()), ours.map(|v| v.to_string()), "key order: {}", f.display());
                n += 1;
            }
        }
        assert!(n >= 30, "{n} files compared");
    }

    #[test]
    fn containers_are_exactly_sized() {
        let v = from_slice(br#"{"a":[1],"b":[{"c":1}]}"#).unwrap();
        assert_eq!(v["a"].as_array().map(Vec::capacity), Some(1));
        assert_eq!(v["b"].as_array().map(Vec::capacity), Some(1));
    }
}
