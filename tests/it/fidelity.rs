//! Fidelity: every leaf property of the record schema reaches the output, or is listed in
//! `mappings/not-transmitted.json` with a reason.
//!
//! "Reaches the output" is tested, not declared: for each property, a fixture that has it is
//! changed at that property (to another value the schema allows) and the Bundle must change.

use serde_json::{Value, json};

use crate::common::*;

/// A leaf of the schema: its path (`*` for array items), its schema, and the `$defs` name it
/// refers to (id, country, date, ...), which decides how to change it.
struct Leaf {
    path: Vec<String>,
    schema: Value,
    def: Option<String>,
}

fn resolve<'a>(root: &'a Value, s: &'a Value) -> (&'a Value, Option<String>) {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().map(str::to_owned);
            (root.pointer(r.trim_start_matches('#')).expect("ref resolves"), name)
        }
        None => (s, None),
    }
}

fn leaves(root: &Value, s: &Value, path: Vec<String>, out: &mut Vec<Leaf>) {
    let (s, def) = resolve(root, s);
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            let mut p = path.clone();
            p.push(k.clone());
            leaves(root, v, p, out);
        }
        return;
    }
    if let Some(branches) = s.get("oneOf").and_then(Value::as_array) {
        if branches.iter().all(|b| b.get("properties").is_some()) {
            // A union of object shapes: each branch's properties are leaves of their own.
            let mut seen = std::collections::HashSet::new();
            for b in branches {
                for (k, v) in b["properties"].as_object().expect("props") {
                    if seen.insert(k.clone()) {
                        let mut p = path.clone();
                        p.push(k.clone());
                        leaves(root, v, p, out);
                    }
                }
            }
            return;
        }
    }
    if s.get("type").and_then(Value::as_str) == Some("array") {
        let (items, _) = resolve(root, &s["items"]);
        if items.get("properties").is_some() {
            let mut p = path;
            p.push("*".into());
            leaves(root, &s["items"], p, out);
            return;
        }
    }
    out.push(Leaf { path, schema: s.clone(), def });
}

/// Concrete JSON Pointers in `v` matching `path` (wildcards expanded).
fn occurrences(v: &Value, path: &[String], prefix: String, out: &mut Vec<String>) {
    let Some((head, rest)) = path.split_first() else {
        out.push(prefix);
        return;
    };
    if head == "*" {
        for (i, item) in v.as_array().into_iter().flatten().enumerate() {
            occurrences(item, rest, format!("{prefix}/{i}"), out);
        }
    } else if let Some(child) = v.get(head) {
        occurrences(child, rest, format!("{prefix}/{head}"), out);
    }
}

/// Other values the schema allows for a leaf, given its current value.
fn candidates(leaf: &Leaf, current: &Value) -> Vec<Value> {
    let s = &leaf.schema;
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        return e.iter().filter(|x| *x != current).cloned().collect();
    }
    if s.get("type").and_then(Value::as_str) == Some("array") {
        let item_leaf = Leaf { path: vec![], schema: s["items"].clone(), def: None };
        let (item_schema, def) = match s["items"].get("$ref").and_then(Value::as_str) {
            Some(r) => (item_leaf.schema.clone(), r.rsplit('/').next().map(str::to_owned)),
            None => (item_leaf.schema.clone(), None),
        };
        let first = current.get(0).cloned().unwrap_or(Value::Null);
        return candidates(&Leaf { path: vec![], schema: item_schema, def }, &first)
            .into_iter()
            .map(|c| {
                let mut arr = current.as_array().cloned().unwrap_or_default();
                if arr.is_empty() {
                    arr.push(c);
                } else {
                    arr[0] = c;
                }
                Value::Array(arr)
            })
            .collect();
    }
    match (leaf.def.as_deref(), s.get("type").and_then(Value::as_str), current) {
        (Some("id"), _, Value::String(x)) => vec![json!(format!("{}Z", &x[..x.len().min(60)]))],
        (Some("country"), _, _) => ["FRA", "DEU", "KEN"].iter().map(|c| json!(c)).collect(),
        (Some("date"), _, _) => vec![json!("2001-02-03"), json!("2002"), json!("2003-04")],
        // The last one is after every fixture's exam: a validUntil before it is refused.
        (Some("fullDate"), _, _) => vec![json!("2001-02-03"), json!("2002-03-04"), json!("2031-02-03")],
        (Some("dateTime"), _, _) => vec![json!("2020-01-02T03:04:05Z")],
        (_, Some("boolean"), Value::Bool(b)) => vec![json!(!b)],
        (_, Some("integer"), Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(1);
            vec![json!(n + 1), json!(n - 1)]
        }
        (_, Some("number"), Value::Number(n)) => vec![json!(n.as_f64().unwrap_or(0.0) + 1.5)],
        _ if s.get("oneOf").is_some() => vec![json!("2020-01-02T03:04:05Z"), json!("2001-02-03")],
        (_, _, _) if s.get("pattern").and_then(Value::as_str) == Some("^[A-Z][a-z]{3}$") => vec![json!("Grek"), json!("Latn")],
        (_, _, _) if s.get("pattern").and_then(Value::as_str).is_some_and(|p| p.starts_with("^[a-z]{2,3}")) => {
            vec![json!("fr"), json!("de")]
        }
        (_, _, _) if s.get("pattern").and_then(Value::as_str).is_some_and(|p| p.starts_with("^1:")) => {
            vec![json!("1:16"), json!("1:32")]
        }
        _ => vec![json!("Mutated value")],
    }
}

#[test]
fn every_schema_property_is_mapped_or_listed() {
    let p = pipeline();
    let schema = read_json(&root().join("mappings/record.schema.json"));
    let listed = read_json(&root().join("mappings/not-transmitted.json"));
    let not_transmitted: Vec<String> = listed["notTransmitted"]
        .as_array()
        .expect("list")
        .iter()
        .map(|e| {
            assert!(e["reason"].as_str().is_some_and(|r| r.len() > 20), "every entry says why: {e}");
            e["path"].as_str().expect("path").to_owned()
        })
        .collect();
    let mut all = Vec::new();
    leaves(&schema, &schema, vec![], &mut all);
    let fixtures: Vec<Value> = fixtures().iter().map(|f| read_json(f)).collect();

    let mut unmapped = Vec::new();
    let mut wrongly_listed = Vec::new();
    for leaf in &all {
        let path = format!("/{}", leaf.path.join("/"));
        // A constant cannot change; it must appear verbatim instead.
        if let Some(c) = leaf.schema.get("const") {
            let out = p.convert_value(&fixtures[0]).expect("converts").bundle.to_string();
            assert!(out.contains(c.as_str().unwrap_or_default()), "{path}: constant not carried");
            continue;
        }
        let mut reached = false;
        'search: for rec in &fixtures {
            let mut occ = Vec::new();
            occurrences(rec, &leaf.path, String::new(), &mut occ);
            for ptr in occ {
                let Ok(before) = p.convert_value(rec) else { continue };
                let current = rec.pointer(&ptr).cloned().unwrap_or(Value::Null);
                for cand in candidates(leaf, &current) {
                    let mut changed = rec.clone();
                    *changed.pointer_mut(&ptr).expect("pointer") = cand;
                    if let Ok(after) = p.convert_value(&changed) {
                        if after.bundle != before.bundle {
                            reached = true;
                            break 'search;
                        }
                    }
                }
            }
        }
        match (reached, not_transmitted.contains(&path)) {
            (false, false) => unmapped.push(path),
            (true, true) => wrongly_listed.push(path),
            _ => {}
        }
    }
    for nt in &not_transmitted {
        assert!(all.iter().any(|l| format!("/{}", l.path.join("/")) == *nt), "{nt} is not a property of the schema");
    }
    assert!(all.len() > 80, "walked {} leaves", all.len());
    assert!(unmapped.is_empty(), "properties that never reach the output and are not listed: {unmapped:?}");
    assert!(
        wrongly_listed.is_empty(),
        "listed as not transmitted but they do reach the output: {wrongly_listed:?}"
    );
}
