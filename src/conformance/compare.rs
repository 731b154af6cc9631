//! FHIR JSON compared by meaning: object key order does not matter; array order, values and
//! number text do (a decimal's precision is part of its meaning). Differences are reported as
//! JSON Pointers, never as values, so a report can name them without quoting a record.

use serde_json::Value;

/// At most this many differing paths are listed.
const MAX_PATHS: usize = 50;

/// The JSON Pointers at which `expected` and `actual` differ (empty when they mean the same).
pub fn diff(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(expected, actual, "", &mut out);
    out
}

fn walk(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    if out.len() >= MAX_PATHS {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let p = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"));
                match y.get(k) {
                    Some(vb) => walk(va, vb, &p, out),
                    None => out.push(format!("{p} (missing)")),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{path}/{k} (unexpected)"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                walk(va, vb, &format!("{path}/{i}"), out);
            }
            if x.len() != y.len() {
                out.push(format!("{path} (expected {} items, got {})", x.len(), y.len()));
            }
        }
        _ if a == b => {}
        _ => out.push(path.to_owned()),
    }
}

/// `resource` without what a server sets on its own (`id`, `meta.versionId`,
/// `meta.lastUpdated`, `meta.source`, `text` when the sender gave none), for comparing what was
/// sent with what is read back.
pub fn without_server_fields(resource: &Value, sent: &Value) -> Value {
    let mut r = resource.clone();
    if let Some(o) = r.as_object_mut() {
        o.remove("id");
        if sent.get("text").is_none() {
            o.remove("text");
        }
        if let Some(meta) = o.get_mut("meta").and_then(Value::as_object_mut) {
            meta.remove("versionId");
            meta.remove("lastUpdated");
            meta.remove("source");
            if meta.is_empty() {
                o.remove("meta");
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_is_not_meaning_but_number_text_is() {
        assert!(diff(&json!({"a": 1, "b": [1, 2]}), &json!({"b": [1, 2], "a": 1})).is_empty());
        let d = diff(&json!({"a": {"x": "1"}, "b": [1]}), &json!({"a": {"x": "2"}, "b": [1, 2], "c": true}));
        assert_eq!(d, vec!["/a/x", "/b (expected 1 items, got 2)", "/c (unexpected)"]);
        let v: Value = serde_json::from_str(r#"{"q": 61.50}"#).expect("json");
        let w: Value = serde_json::from_str(r#"{"q": 61.5}"#).expect("json");
        assert_eq!(diff(&v, &w), vec!["/q"]);
    }
}
