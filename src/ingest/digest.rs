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
                // Writing JSON into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, k);
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
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
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
}
