//! The digest of a record's content: SHA-256 of its canonical JSON (object keys sorted, no
//! whitespace, numbers and strings as written). Two sends of the same record digest alike however
//! their keys are ordered or spaced; any change of a value changes the digest. It tells a resend
//! (same identity, same content: a duplicate) from a correction sent without a new version
//! (same identity, other content: a conflict).

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Hex SHA-256 of the canonical form of `v`.
pub fn content_digest(v: &Value) -> String {
    let mut h = Sha256::new();
    feed(&mut h, v);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn feed(h: &mut Sha256, v: &Value) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_unstable();
            h.update(b"{");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    h.update(b",");
                }
                h.update(Value::String(k.clone()).to_string().as_bytes());
                h.update(b":");
                feed(h, &m[k]);
            }
            h.update(b"}");
        }
        Value::Array(a) => {
            h.update(b"[");
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    h.update(b",");
                }
                feed(h, x);
            }
            h.update(b"]");
        }
        other => h.update(other.to_string().as_bytes()),
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
