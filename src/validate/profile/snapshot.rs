//! A pragmatic snapshot generator for profiles that ship only a differential (common in the
//! HL7 validator's test cases and in hand-written profiles): walk the base snapshot and apply
//! each differential element by path and slice name, constraining min/max, types,
//! fixed/pattern, binding, constraints and slicing; slices are copied from the sliced element;
//! a differential that goes deeper than the base snapshot unrolls the complex type there.
//!
//! Not a full implementation of the FHIR snapshot algorithm: no re-slicing, no type-slice
//! renaming beyond `value[x]` -> `valueQuantity`, no profile-on-profile differences of order.

use serde_json::{Map, Value};

use super::{CORE, Validator};

fn path_of(e: &Value) -> &str {
    e["path"].as_str().unwrap_or_default()
}

fn slice_of(e: &Value) -> Option<&str> {
    e["sliceName"].as_str()
}

fn is_below(p: &str, anc: &str) -> bool {
    p.len() > anc.len() && p.starts_with(anc) && p.as_bytes()[anc.len()] == b'.'
}

/// End (exclusive) of the subtree starting at `i`: its descendants (by path) that follow it,
/// stopping at the next element of the same path (a sibling slice).
fn subtree_end(list: &[Value], i: usize) -> usize {
    let p = path_of(&list[i]).to_owned();
    let mut j = i + 1;
    while j < list.len() && is_below(path_of(&list[j]), &p) {
        j += 1;
    }
    j
}

fn merge(into: &mut Value, d: &Map<String, Value>) {
    let Some(obj) = into.as_object_mut() else { return };
    let has_fixed_or_pattern = d.keys().any(|k| k.starts_with("fixed") || k.starts_with("pattern"));
    if has_fixed_or_pattern {
        obj.retain(|k, _| !(k.starts_with("fixed") || k.starts_with("pattern")));
    }
    for (k, v) in d {
        match k.as_str() {
            "id" | "path" => {}
            "constraint" => {
                let list = obj.entry("constraint").or_insert_with(|| Value::Array(Vec::new()));
                if let (Some(l), Some(add)) = (list.as_array_mut(), v.as_array()) {
                    for c in add {
                        if !l.iter().any(|x| x["key"] == c["key"]) {
                            l.push(c.clone());
                        }
                    }
                }
            }
            _ => {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Copies a type's snapshot below `at` (rewriting `HumanName.x` to `<at>.x`).
fn unroll(v: &Validator, list: &mut Vec<Value>, at: usize, depth: usize) -> bool {
    // `contentReference` (`#Parameters.parameter`): copy that element's children from the list.
    if let Some(r) = list[at]["contentReference"].as_str().and_then(|r| r.strip_prefix('#')).map(str::to_owned) {
        // From the base definition, not the list being constrained (the profile may have
        // constrained the referenced element itself).
        let root = r.split('.').next().unwrap_or_default();
        let Some(base_list) = v.snapshot_elements(&format!("{CORE}{root}"), depth + 1) else { return false };
        let Some(src) = base_list.iter().position(|e| path_of(e) == r && slice_of(e).is_none()) else { return false };
        let base = path_of(&list[at]).to_owned();
        let end = subtree_end(&base_list, src);
        let insert: Vec<Value> = base_list[src + 1..end]
            .iter()
            .filter(|e| slice_of(e).is_none())
            .map(|e| {
                let mut x = e.clone();
                let p = path_of(&x).to_owned();
                x["path"] = Value::String(format!("{base}{}", p.get(r.len()..).unwrap_or_default()));
                x
            })
            .collect();
        if insert.is_empty() {
            return false;
        }
        if let Some(o) = list[at].as_object_mut() {
            o.remove("contentReference");
            o.insert("type".into(), serde_json::json!([{"code": "BackboneElement"}]));
        }
        list.splice(at + 1..at + 1, insert);
        return true;
    }
    let e = &list[at];
    // A choice whose type list is not constrained to one has no children to constrain: HL7's
    // snapshot generator refuses the path, and the validator never applies it.
    let Some(t) = e["type"].as_array().filter(|t| t.len() == 1).and_then(|t| t.first()) else { return false };
    let url = t["profile"].as_array().and_then(|p| p.first()).and_then(Value::as_str).map(str::to_owned);
    let code = t["code"].as_str().unwrap_or_default();
    let url = url.unwrap_or_else(|| format!("{CORE}{code}"));
    let Some(elems) = v.snapshot_elements(&url, depth + 1) else { return false };
    let base = path_of(&list[at]).to_owned();
    let root = elems.first().map(|r| path_of(r).to_owned()).unwrap_or_default();
    let mut insert = Vec::new();
    for x in elems.iter().skip(1) {
        let mut x = x.clone();
        let p = path_of(&x).to_owned();
        let rest = p.get(root.len()..).unwrap_or_default();
        x["path"] = Value::String(format!("{base}{rest}"));
        if let Some(id) = x["id"].as_str().map(str::to_owned) {
            x["id"] = Value::String(format!("{}{}", list[at]["id"].as_str().unwrap_or(&base), id.get(root.len()..).unwrap_or_default()));
        }
        insert.push(x);
    }
    if insert.is_empty() {
        return false;
    }
    let pos = at + 1;
    list.splice(pos..pos, insert);
    true
}

/// Snapshot elements for `sd` (differential applied to the base's snapshot).
pub(super) fn generate(v: &Validator, sd: &Value, depth: usize) -> Option<Vec<Value>> {
    let base = sd["baseDefinition"].as_str()?;
    let mut list = v.snapshot_elements(base, depth)?;
    let diff = sd["differential"]["element"].as_array()?;
    let root = list.first().map(|r| path_of(r).to_owned())?;
    // A constraint on `Extension` has paths `Extension...`; a logical or derived type keeps the base's root name.
    let own_root = diff.first().map(|d| path_of(d).split('.').next().unwrap_or_default().to_owned()).unwrap_or_else(|| root.clone());
    if own_root != root {
        for e in &mut list {
            let p = path_of(e).to_owned();
            if p == root || is_below(&p, &root) {
                e["path"] = Value::String(format!("{own_root}{}", p.get(root.len()..).unwrap_or_default()));
            }
        }
    }
    // Context: the element each differential element is searched under (slice-aware).
    let mut stack: Vec<(String, usize)> = Vec::new();
    for d in diff {
        let Some(dm) = d.as_object() else { continue };
        let mut path = path_of(d).to_owned();
        let slice = slice_of(d).map(str::to_owned);
        while let Some((p, _)) = stack.last() {
            if is_below(&path, p) {
                break;
            }
            stack.pop();
        }
        let (lo, hi) = match stack.last() {
            Some((_, i)) => (*i, subtree_end(&list, *i)),
            None => (0, list.len()),
        };
        // `valueQuantity` constrains `value[x]`.
        if !list[lo..hi].iter().any(|e| path_of(e) == path) {
            if let Some((parent, last)) = path.rsplit_once('.') {
                let choice = list[lo..hi].iter().map(|e| path_of(e).to_owned()).find(|p| {
                    p.strip_prefix(parent).and_then(|r| r.strip_prefix('.')).and_then(|r| r.strip_suffix("[x]")).is_some_and(|stem| {
                        last.len() > stem.len() && last.starts_with(stem) && last.as_bytes()[stem.len()].is_ascii_uppercase()
                    })
                });
                if let Some(c) = choice {
                    path = c;
                }
            }
        }
        let find = |list: &[Value], lo: usize, hi: usize| {
            (lo..hi.min(list.len())).find(|&i| path_of(&list[i]) == path && slice_of(&list[i]) == slice.as_deref())
        };
        let mut at = find(&list, lo, hi);
        if at.is_none() && slice.is_some() {
            // A new slice: a copy of the sliced element (and its children) after the last slice.
            if let Some(b) = (lo..hi).find(|&i| path_of(&list[i]) == path && slice_of(&list[i]).is_none()) {
                let mut end = subtree_end(&list, b);
                while end < list.len() && path_of(&list[end]) == path && slice_of(&list[end]).is_some() {
                    end = subtree_end(&list, end);
                }
                let mut copy: Vec<Value> = list[b..subtree_end(&list, b)].to_vec();
                if let Some(first) = copy.first_mut().and_then(Value::as_object_mut) {
                    first.remove("slicing");
                    first.insert("sliceName".into(), Value::String(slice.clone().unwrap_or_default()));
                    // A slice's own minimum is 0 unless the differential says otherwise (the
                    // sliced element's minimum counts all its slices), as Java's generator has it.
                    first.insert("min".into(), Value::from(0));
                }
                let n = copy.len();
                list.splice(end..end, copy);
                let _ = n;
                at = Some(end);
            }
        }
        if at.is_none() {
            // Deeper than the base: unroll the nearest ancestor's type, then look again.
            let mut anc = path.clone();
            while let Some((p, _)) = anc.rsplit_once('.') {
                anc = p.to_owned();
                let hi = match stack.last() {
                    Some((_, i)) => subtree_end(&list, *i),
                    None => list.len(),
                };
                let lo = stack.last().map(|(_, i)| *i).unwrap_or(0);
                if let Some(a) = (lo..hi).rev().find(|&i| path_of(&list[i]) == anc) {
                    if subtree_end(&list, a) == a + 1 && unroll(v, &mut list, a, depth) {
                        let hi = subtree_end(&list, a);
                        at = (a..hi).find(|&i| path_of(&list[i]) == path && slice_of(&list[i]).is_none());
                        if at.is_none() {
                            // Still deeper: go around again from the new level.
                            let mut anc2 = path.clone();
                            while at.is_none() {
                                let Some((p, _)) = anc2.rsplit_once('.') else { break };
                                anc2 = p.to_owned();
                                if anc2.len() <= anc.len() {
                                    break;
                                }
                                if let Some(b) = (a..subtree_end(&list, a)).find(|&i| path_of(&list[i]) == anc2) {
                                    if subtree_end(&list, b) == b + 1 && unroll(v, &mut list, b, depth) {
                                        at = (b..subtree_end(&list, b)).find(|&i| path_of(&list[i]) == path);
                                    }
                                }
                            }
                        }
                    }
                    break;
                }
            }
        }
        let Some(i) = at else { continue };
        merge(&mut list[i], dm);
        stack.push((path, i));
    }
    Some(list)
}
