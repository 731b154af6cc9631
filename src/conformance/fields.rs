//! The fields of the record schema, found by walking it: every enum (with its values), every
//! optional property and every required one, each as a path pattern over records
//! (`/results/*/test`: `*` is any item of an array). The vector generator covers what this
//! finds and the coverage test checks it, so both follow the schema when it changes.
//!
//! Knows JSON Schema's shape (`properties`, `required`, `items`, `$ref`, `oneOf`/`anyOf`/
//! `allOf`); nothing of records' meaning, nothing of FHIR.

use std::collections::BTreeMap;

use serde_json::Value;

/// What the schema says a record may hold.
#[derive(Debug, Default, Clone)]
pub struct Fields {
    /// Pattern -> the values its enum allows (a pattern reached through two branches of a
    /// `oneOf` keeps the union).
    pub enums: BTreeMap<String, Vec<Value>>,
    /// Optional properties: (pattern of the object holding it, property name).
    pub optional: Vec<(String, String)>,
    /// Required properties: (pattern of the object holding it, property name).
    pub required: Vec<(String, String)>,
}

impl Fields {
    /// Walks `schema` from its root.
    pub fn of(schema: &Value) -> Fields {
        let mut f = Fields::default();
        walk(schema, schema, "", &mut f, 0);
        f.optional.sort();
        f.optional.dedup();
        f.required.sort();
        f.required.dedup();
        f
    }
}

fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
        Some(ptr) => root.pointer(ptr).unwrap_or(node),
        None => node,
    }
}

fn walk(root: &Value, node: &Value, path: &str, f: &mut Fields, depth: usize) {
    if depth > 32 {
        return;
    }
    let node = resolve(root, node);
    if let Some(values) = node.get("enum").and_then(Value::as_array) {
        let slot = f.enums.entry(path.to_owned()).or_default();
        for v in values {
            if !slot.contains(v) {
                slot.push(v.clone());
            }
        }
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        let required: Vec<&str> = node.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        for (name, sub) in props {
            let entry = (path.to_owned(), name.clone());
            if required.contains(&name.as_str()) {
                f.required.push(entry);
            } else {
                f.optional.push(entry);
            }
            walk(root, sub, &format!("{path}/{name}"), f, depth + 1);
        }
    }
    if let Some(items) = node.get("items") {
        walk(root, items, &format!("{path}/*"), f, depth + 1);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for branch in node.get(key).and_then(Value::as_array).into_iter().flatten() {
            walk(root, branch, path, f, depth + 1);
        }
    }
}

/// Every place in `value` that `pattern` names, as (JSON Pointer, value).
pub fn instances<'a>(value: &'a Value, pattern: &str) -> Vec<(String, &'a Value)> {
    let mut out = vec![(String::new(), value)];
    for step in pattern.split('/').skip(1) {
        let mut next = Vec::new();
        for (ptr, v) in out {
            if step == "*" {
                for (i, item) in v.as_array().into_iter().flatten().enumerate() {
                    next.push((format!("{ptr}/{i}"), item));
                }
            } else if let Some(child) = v.get(step) {
                next.push((format!("{ptr}/{}", escape(step)), child));
            }
        }
        out = next;
    }
    out
}

fn escape(step: &str) -> String {
    step.replace('~', "~0").replace('/', "~1")
}

/// A pattern as a file-name-safe slug: `/results/*/test` -> `results-test`.
pub fn slug(pattern: &str) -> String {
    let s: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty() && *s != "*").collect();
    if s.is_empty() { "record".to_owned() } else { s.join("-") }
}

/// An enum value as a slug: `mm[Hg]` -> `mm-hg`, `<=` -> `le`.
pub fn value_slug(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let named = match s.as_str() {
        "<" => "lt",
        "<=" => "le",
        ">" => "gt",
        ">=" => "ge",
        "1" => "one",
        _ => "",
    };
    if !named.is_empty() {
        return named.to_owned();
    }
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn walks_refs_items_and_branches() {
        let schema = json!({
            "type": "object", "required": ["a"],
            "properties": {
                "a": {"enum": ["x", "y"]},
                "list": {"type": "array", "items": {"$ref": "#/$defs/item"}},
                "v": {"oneOf": [{"properties": {"c": {"enum": ["p"]}}}, {"properties": {"c": {"enum": ["q"]}, "u": {"type": "string"}}}]}
            },
            "$defs": {"item": {"properties": {"k": {"enum": [1, 2]}}, "required": ["k"]}}
        });
        let f = Fields::of(&schema);
        assert_eq!(f.enums["/a"], vec![json!("x"), json!("y")]);
        assert_eq!(f.enums["/list/*/k"], vec![json!(1), json!(2)]);
        assert_eq!(f.enums["/v/c"], vec![json!("p"), json!("q")]);
        assert!(f.required.contains(&("/list/*".to_owned(), "k".to_owned())));
        assert!(f.optional.contains(&("/v".to_owned(), "u".to_owned())));
        let rec = json!({"a": "x", "list": [{"k": 1}, {"k": 2}]});
        let found: Vec<String> = instances(&rec, "/list/*/k").into_iter().map(|(p, _)| p).collect();
        assert_eq!(found, vec!["/list/0/k", "/list/1/k"]);
        assert_eq!(slug("/list/*/k"), "list-k");
        assert_eq!(value_slug(&json!("mm[Hg]")), "mm-hg");
    }
}
