//! The digest of a record's content: SHA-256 of its canonical JSON (object keys sorted, no
//! whitespace, numbers and strings as written). Two sends of the same record digest alike however
//! their keys are ordered or spaced; any change of a value changes the digest. It tells a resend
//! (same identity, same content: a duplicate) from a correction sent without a new version
//! (same identity, other content: a conflict).

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Hex SHA-256 of the canonical form of `v`. The canonical bytes are written into one buffer
/// and hashed once (per-key strings and per-leaf hashing cost more than the hash itself).
pub fn content_digest(v: &Value) -> String {
    let mut buf = Vec::with_capacity(4096);
    write(&mut buf, v);
    let d = Sha256::digest(&buf);
    let mut hex = String::with_capacity(64);
    for b in d {
        hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    hex
}

fn write(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, x)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write(out, x);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(out, x);
            }
            out.push(b']');
        }
        Value::String(s) => write_str(out, s),
        // `arbitrary_precision`: a number's text as written.
        Value::Number(n) => out.extend_from_slice(n.as_str().as_bytes()),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Null => out.extend_from_slice(b"null"),
    }
}

/// A JSON string as serde_json writes it: a string with no quote, backslash or control
/// character (nearly every key and value) is its own bytes between quotes, since serde_json
/// escapes only those; any other goes through serde_json.
fn write_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::content_digest;
    use serde_json::json;

    #[test]
    fn key_order_and_spacing_do_not_count_values_do() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a": 1, "b": {"c": "x", "d": [1, 2]}}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"b":{"d":[1,2],"c":"x"},"a":1}"#).unwrap();
        assert_eq!(content_digest(&a), content_digest(&b));
        assert_ne!(content_digest(&a), content_digest(&json!({"a": 1, "b": {"c": "y", "d": [1, 2]}})));
        assert_ne!(content_digest(&a), content_digest(&json!({"a": 1, "b": {"c": "x", "d": [2, 1]}})));
        // A key cannot pass for part of a value.
        assert_ne!(content_digest(&json!({"a": "b,c"})), content_digest(&json!({"a": "b", "c": null})));
    }

    /// The canonical bytes are serde_json's compact output of the same value with its keys
    /// sorted: strings that need escaping and strings that do not, numbers as written,
    /// literals.
    #[test]
    fn canonical_bytes_are_serde_jsons() {
        fn sorted(v: &serde_json::Value) -> serde_json::Value {
            match v {
                serde_json::Value::Object(m) => {
                    let mut keys: Vec<&String> = m.keys().collect();
                    keys.sort_unstable();
                    serde_json::Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect())
                }
                serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
                other => other.clone(),
            }
        }
        let text = r#"{"z": [1.50, -0, 1e3, 2E-7, 10000000000000000000000, true, false, null], "a\"k": "q\"uote \\ back \n\t\u0001 é ✓ \u007f \u2028", "m": {"b": "", "a": "plain"}}"#;
        let mut cases: Vec<serde_json::Value> = vec![serde_json::from_str(text).unwrap()];
        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/records");
        for e in std::fs::read_dir(golden).unwrap() {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            if let Ok(v) = serde_json::from_slice(&bytes) {
                cases.push(v);
            }
        }
        assert!(cases.len() > 10, "golden records found");
        for v in &cases {
            let mut got = Vec::new();
            super::write(&mut got, v);
            assert_eq!(String::from_utf8(got).unwrap(), serde_json::to_string(&sorted(v)).unwrap());
        }
    }
}
