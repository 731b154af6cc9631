//! Local ValueSet expansion from the loaded CodeSystems and ValueSets: explicit concept lists,
//! whole code systems, `is-a` / `descendent-of` / `=` filters on concept hierarchies, imported
//! value sets and excludes. Anything else (SNOMED CT or LOINC wide sets, unknown filters,
//! fragments) is "cannot expand here", which is never an error.
//!
//! Expansions are memoised by the validator. No I/O beyond the definition lookups.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::sync::Arc;

use crate::validate::profile::json::SmallGet;
use serde_json::Value;

/// The codes of an expanded ValueSet, as (system, code).
#[derive(Debug, Default)]
pub struct Expansion {
    pub codes: HashSet<(String, String)>,
    /// Codes alone, for `code` elements that carry no system.
    pub bare: HashSet<String>,
}

impl Expansion {
    pub fn has(&self, system: Option<&str>, code: &str) -> bool {
        match system {
            Some(s) => self.codes.contains(&(s.to_owned(), code.to_owned())),
            None => self.bare.contains(code),
        }
    }
}

pub trait Lookup {
    fn resolve(&self, url: &str) -> Option<Arc<Value>>;
}

const MAX_DEPTH: usize = 8;

/// All codes of a CodeSystem with their ancestors chain (`parent` property or nesting).
fn cs_concepts(cs: &Value) -> Option<Vec<(String, Option<String>)>> {
    if !matches!(cs["content"].as_str(), Some("complete") | None) {
        return None;
    }
    let mut out = Vec::new();
    fn walk(list: &Value, parent: Option<&str>, out: &mut Vec<(String, Option<String>)>) {
        for c in list.as_array().into_iter().flatten() {
            let Some(code) = c["code"].as_str() else {
                continue;
            };
            let explicit = c["property"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["code"] == "parent" || p["code"] == "subsumedBy"))
                .and_then(|p| p["valueCode"].as_str());
            out.push((code.to_owned(), explicit.or(parent).map(str::to_owned)));
            walk(&c["concept"], Some(code), out);
        }
    }
    walk(&cs["concept"], None, &mut out);
    Some(out)
}

fn descendants(concepts: &[(String, Option<String>)], root: &str, include_self: bool) -> HashSet<String> {
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for (c, p) in concepts {
        if let Some(p) = p {
            children.entry(p.as_str()).or_default().push(c.as_str());
        }
    }
    let mut out = HashSet::new();
    let mut stack = vec![root];
    if include_self {
        out.insert(root.to_owned());
    }
    while let Some(n) = stack.pop() {
        for c in children.get(n).into_iter().flatten() {
            if out.insert((*c).to_owned()) {
                stack.push(c);
            }
        }
    }
    out
}

/// Codes of one include/exclude entry, or None when it cannot be computed locally.
fn entry_codes(
    defs: &dyn Lookup,
    inc: &Value,
    depth: usize,
    memo: &dyn Fn(&str, usize) -> Option<Arc<Expansion>>,
) -> Option<HashSet<(String, String)>> {
    let system = inc["system"].as_str();
    let mut from_system: Option<HashSet<(String, String)>> = None;
    if let Some(sys) = system {
        let set: HashSet<(String, String)> = if let Some(concepts) = inc["concept"].as_array() {
            concepts.iter().filter_map(|c| c["code"].as_str()).map(|c| (sys.to_owned(), c.to_owned())).collect()
        } else {
            let cs = defs.resolve(sys)?;
            let all = cs_concepts(&cs)?;
            let filters = inc["filter"].as_array();
            match filters {
                None => all.iter().map(|(c, _)| (sys.to_owned(), c.clone())).collect(),
                Some(fs) => {
                    let mut keep: Option<HashSet<String>> = None;
                    for f in fs {
                        let value = f["value"].as_str()?;
                        let op = f["op"].as_str()?;
                        let prop = f["property"].as_str().unwrap_or("concept");
                        let these = match (prop, op) {
                            ("concept", "is-a") => descendants(&all, value, true),
                            ("concept", "descendent-of") => descendants(&all, value, false),
                            ("concept", "=") => HashSet::from_iter([value.to_owned()]),
                            ("concept", "in") => value.split(',').map(|s| s.trim().to_owned()).collect(),
                            _ => return None,
                        };
                        keep = Some(match keep {
                            None => these,
                            Some(k) => k.intersection(&these).cloned().collect(),
                        });
                    }
                    keep.unwrap_or_default().into_iter().map(|c| (sys.to_owned(), c)).collect()
                }
            }
        };
        from_system = Some(set);
    }
    let mut result = from_system;
    for vs in inc["valueSet"].as_array().into_iter().flatten() {
        let url = vs.as_str()?;
        let e = memo(url, depth + 1)?;
        result = Some(match result {
            None => e.codes.clone(),
            Some(r) => r.intersection(&e.codes).cloned().collect(),
        });
    }
    result
}

/// Expands `vs` (a ValueSet resource); None when it cannot be done locally.
/// Whether a Coding's display is the code system's, as HL7's validator compares them:
/// ignoring case and runs of white space (equal text is equal without normalising).
pub fn same_display(given: &str, display: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    given == display || norm(given) == norm(display)
}

pub fn expand(defs: &dyn Lookup, vs: &Value, depth: usize, memo: &dyn Fn(&str, usize) -> Option<Arc<Expansion>>) -> Option<Expansion> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut codes: HashSet<(String, String)> = HashSet::new();
    if let Some(compose) = vs.sget("compose") {
        for inc in compose["include"].as_array().into_iter().flatten() {
            codes.extend(entry_codes(defs, inc, depth, memo)?);
        }
        for exc in compose["exclude"].as_array().into_iter().flatten() {
            if let Some(ex) = entry_codes(defs, exc, depth, memo) {
                codes.retain(|c| !ex.contains(c));
            }
        }
    } else if let Some(contains) = vs["expansion"]["contains"].as_array() {
        fn walk(list: &[Value], codes: &mut HashSet<(String, String)>) {
            for c in list {
                if let (Some(s), Some(k)) = (c["system"].as_str(), c["code"].as_str()) {
                    codes.insert((s.to_owned(), k.to_owned()));
                }
                if let Some(sub) = c["contains"].as_array() {
                    walk(sub, codes);
                }
            }
        }
        walk(contains, &mut codes);
    } else {
        return None;
    }
    let bare = codes.iter().map(|(_, c)| c.clone()).collect();
    Some(Expansion { codes, bare })
}
