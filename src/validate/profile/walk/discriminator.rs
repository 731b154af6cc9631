//! Slice matching: evaluates a slice's discriminators (value, pattern, type, profile, exists)
//! on one item, with a small native walker for discriminator paths (`code`, `coding.system`,
//! `url`, `extension('url')`, `$this`, `resolve()`, `ofType(X)`). A `profile` discriminator
//! validates the item against the slice's profile in a sub-walk into a scratch list.
//!
//! It is part of the walk, not beside it: matching a slice walks, and walking a sliced element
//! matches slices. No I/O, no clock (the sub-walk inherits the caller's today).

use std::sync::Arc;

use serde_json::Value;

use super::{Host, Item, Scope, Walk};
use crate::validate::profile::Severity;
use crate::validate::profile::json;
use crate::validate::profile::json::SmallGet;
use crate::validate::profile::json::{matches_pattern, same};
use crate::validate::profile::model::{Discriminator, ElemId, Profile, Strength, is_primitive};

enum Seg<'p> {
    This,
    Resolve,
    OfType(&'p str),
    Ext(&'p str),
    Name(&'p str),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    let b = path.as_bytes();
    let mut parts = Vec::new();
    for (i, c) in b.iter().enumerate() {
        match c {
            b'(' => depth += 1,
            b')' => depth -= 1,
            b'.' if depth == 0 => {
                parts.push(&path[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&path[start..]);
    for p in parts {
        let p = p.trim();
        out.push(if p == "$this" {
            Seg::This
        } else if p == "resolve()" {
            Seg::Resolve
        } else if let Some(t) = p.strip_prefix("ofType(").and_then(|r| r.strip_suffix(')')) {
            Seg::OfType(t)
        } else if let Some(u) = p.strip_prefix("extension(").and_then(|r| r.strip_suffix(')')) {
            Seg::Ext(u.trim_matches(|c| c == '\'' || c == '"'))
        } else {
            Seg::Name(p)
        });
    }
    out
}

/// Values at `path` inside `v`, each with its FHIR type when known.
fn values_at<'v>(v: &'v Value, ty: &str, path: &str, scope: Scope<'v>) -> Vec<(&'v Value, String)> {
    let mut cur: Vec<(&'v Value, String)> = vec![(v, v.sget("resourceType").and_then(Value::as_str).unwrap_or(ty).to_owned())];
    for seg in segments(path) {
        let mut next = Vec::new();
        for (x, t) in cur {
            match seg {
                Seg::This => next.push((x, t)),
                Seg::OfType(want) => {
                    if t == want {
                        next.push((x, t))
                    }
                }
                Seg::Resolve => {
                    let Some(r) = x.sget("reference").and_then(Value::as_str) else {
                        continue;
                    };
                    let found = if let Some(id) = r.strip_prefix('#') {
                        // In the resource, or (for a contained resource) among its siblings.
                        let find = |r: &'v Value| {
                            json::at(r, "contained").as_array().and_then(|c| c.iter().find(|c| json::at(c, "id").as_str() == Some(id)))
                        };
                        find(scope.resource).or_else(|| scope.container.and_then(find))
                    } else {
                        scope.bundle.and_then(|b| b.resolve(r, scope.full_url))
                    };
                    if let Some(f) = found {
                        next.push((f, json::at(f, "resourceType").as_str().unwrap_or_default().to_owned()));
                    }
                }
                Seg::Ext(url) => {
                    for e in x.sget("extension").and_then(Value::as_array).into_iter().flatten() {
                        if json::at(e, "url").as_str() == Some(url) {
                            next.push((e, "Extension".to_owned()));
                        }
                    }
                }
                Seg::Name(n) => {
                    let Some(obj) = x.as_object() else { continue };
                    let mut push = |val: &'v Value, t: String| match val {
                        Value::Array(a) => a.iter().for_each(|i| next.push((i, t.clone()))),
                        other => next.push((other, t)),
                    };
                    if let Some(val) = obj.get(n) {
                        push(val, String::new());
                    } else {
                        for (k, val) in obj {
                            if k.len() > n.len() && k.starts_with(n) && k.as_bytes()[n.len()].is_ascii_uppercase() {
                                let t = &k[n.len()..];
                                let t = if is_primitive(&t.to_ascii_lowercase()) && t.chars().skip(1).all(|c| c.is_ascii_lowercase()) {
                                    t.to_ascii_lowercase()
                                } else if matches!(t, "DateTime" | "Base64Binary" | "PositiveInt" | "UnsignedInt") {
                                    let mut c = t.chars();
                                    c.next().map(|f| f.to_ascii_lowercase().to_string() + c.as_str()).unwrap_or_default()
                                } else {
                                    t.to_owned()
                                };
                                push(val, t);
                            }
                        }
                    }
                }
            }
        }
        // A resource found by name (`resource`) has its own type.
        cur = next
            .into_iter()
            .map(|(x, t)| match x.sget("resourceType").and_then(Value::as_str) {
                Some(rt) if t.is_empty() => (x, rt.to_owned()),
                _ => (x, t),
            })
            .collect();
    }
    cur
}

/// The element definition at `path` below a slice (crossing into type profiles when the slice
/// does not unroll that far).
fn element_at(w: &Walk<'_>, cp: &Arc<Profile>, slice: ElemId, path: &str) -> Option<(Arc<Profile>, ElemId, bool)> {
    let mut cur = (cp.clone(), slice);
    let mut resolved = false;
    for seg in segments(path) {
        match seg {
            Seg::This | Seg::OfType(_) => {}
            Seg::Resolve => {
                let e = cur.0.elem(cur.1);
                let target = e.types.iter().flat_map(|t| t.targets.iter()).find_map(|u| w.v.profile(u))?;
                cur = (target, 0);
                resolved = true;
            }
            Seg::Ext(url) => {
                let (p, id) = child(w, &cur.0, cur.1, "extension")?;
                let e = p.elem(id);
                let hit = e.slices.iter().copied().find(|&s| {
                    let se = p.elem(s);
                    se.types.iter().any(|t| t.profiles.iter().any(|u| u == url))
                        || se
                            .children
                            .iter()
                            .any(|&c| p.elem(c).name == "url" && p.elem(c).fixed.as_ref().and_then(Value::as_str) == Some(url))
                })?;
                cur = (p, hit);
            }
            Seg::Name(n) => {
                let (p, id) = child(w, &cur.0, cur.1, n)?;
                // A path through a sliced element (`code.coding.code`) reads the values the
                // slices fix: take the first slice that fixes something below.
                let pick = p.elem(id).slices.first().copied().unwrap_or(id);
                cur = (p, pick);
            }
        }
    }
    Some((cur.0, cur.1, resolved))
}

fn child(w: &Walk<'_>, p: &Arc<Profile>, id: ElemId, name: &str) -> Option<(Arc<Profile>, ElemId)> {
    let e = p.elem(id);
    let find = |p: &Arc<Profile>, ids: &[ElemId]| {
        ids.iter().copied().find(|&c| {
            let ce = p.elem(c);
            ce.name == name || (ce.choice && ce.choice_keys.iter().any(|(k, _, _)| k == name))
        })
    };
    if let Some(c) = find(p, &e.children) {
        return Some((p.clone(), c));
    }
    // Into a type profile, then the base type.
    for t in &e.types {
        for u in &t.profiles {
            if let Some(tp) = w.v.profile(u) {
                if let Some(c) = find(&tp, &tp.elem(0).children) {
                    return Some((tp, c));
                }
            }
        }
        if let Some(tp) = w.v.type_profile(&t.code) {
            if let Some(c) = find(&tp, &tp.elem(0).children) {
                return Some((tp, c));
            }
        }
    }
    None
}

/// Whether item `v` (of type `ty`) belongs to `slice` of the sliced element `base`.
pub(super) fn matches<'v>(
    w: &mut Walk<'_>,
    cp: &Arc<Profile>,
    base: ElemId,
    slice: ElemId,
    v: &'v Value,
    ty: &str,
    scope: Scope<'v>,
) -> bool {
    let be = cp.elem(base);
    let default_url;
    let discs: &[_] = match &be.slicing {
        Some(s) if !s.discriminators.is_empty() => &s.discriminators,
        _ if ty == "Extension" => {
            default_url = [Discriminator { kind: "value".into(), path: "url".into() }];
            &default_url
        }
        _ => return false,
    };
    let se = cp.elem(slice);
    for d in discs {
        // What a reference resolves to depends on where the item sits.
        if d.path.contains("resolve()") {
            w.ctx = true;
        }
        let vals = values_at(v, ty, &d.path, scope);
        let ok = match d.kind.as_str() {
            "value" | "pattern" => {
                let target = element_at(w, cp, slice, &d.path);
                let expected = target.as_ref().and_then(|(p, id, _)| {
                    let e = p.elem(*id);
                    e.fixed.clone().map(|f| (f, true)).or_else(|| e.pattern.clone().map(|p| (p, false)))
                });
                let expected = expected.or_else(|| {
                    // Extension slices name their definition by profile rather than a fixed url.
                    (d.path == "url")
                        .then(|| se.types.iter().flat_map(|t| t.profiles.iter()).next().map(|u| (Value::String(u.clone()), true)))
                        .flatten()
                });
                match expected {
                    Some((x, exact)) => vals.iter().any(|(val, _)| if exact { same(val, &x) } else { matches_pattern(val, &x) }),
                    None => match target
                        .as_ref()
                        .and_then(|(p, id, _)| p.elem(*id).binding.clone())
                        .filter(|b| b.strength == Strength::Required)
                    {
                        Some(b) => match w.v.expansion(&b.value_set) {
                            Some(exp) => vals.iter().any(|(val, _)| match val {
                                Value::String(c) => exp.has(None, c),
                                Value::Object(o) => {
                                    let one = |c: &Value| {
                                        json::at(c, "code").as_str().is_some_and(|k| exp.has(json::at(c, "system").as_str(), k))
                                    };
                                    one(val) || o.sget("coding").and_then(Value::as_array).is_some_and(|cs| cs.iter().any(one))
                                }
                                _ => false,
                            }),
                            None => false,
                        },
                        // The slice does not constrain this discriminator: any value matches.
                        None => target.is_some(),
                    },
                }
            }
            "exists" => {
                let Some((p, id, _)) = element_at(w, cp, slice, &d.path) else {
                    return false;
                };
                let e = p.elem(id);
                if e.min >= 1 {
                    !vals.is_empty()
                } else if e.max == Some(0) {
                    vals.is_empty()
                } else {
                    true
                }
            }
            "type" => {
                let Some((p, id, resolved)) = element_at(w, cp, slice, &d.path) else {
                    return false;
                };
                let e = p.elem(id);
                // `resolve()` landed on the target profile: its type is the one allowed.
                let allowed: Vec<String> = if resolved {
                    vec![p.type_name.clone()]
                } else {
                    e.types
                        .iter()
                        .flat_map(|t| {
                            let from_profiles: Vec<String> =
                                t.profiles.iter().filter_map(|u| w.v.profile(u)).map(|p| p.type_name.clone()).collect();
                            if from_profiles.is_empty() { vec![t.code.clone()] } else { from_profiles }
                        })
                        .collect()
                };
                let path_is_this = d.path == "$this";
                !vals.is_empty()
                    && vals.iter().all(|(_, t)| {
                        let t = if path_is_this && t.is_empty() { ty } else { t.as_str() };
                        allowed.iter().any(|a| a == t || a == "Resource")
                    })
            }
            "profile" => {
                let Some((p, id, resolved)) = element_at(w, cp, slice, &d.path) else {
                    return false;
                };
                let e = p.elem(id);
                let urls: Vec<String> = e
                    .types
                    .iter()
                    .flat_map(|t| if resolved || d.path.ends_with("resolve()") { t.targets.clone() } else { t.profiles.clone() })
                    .collect();
                if urls.is_empty() {
                    // The element at the path is itself the profile's root (`resolve()` landed on it).
                    resolved && !vals.is_empty() && vals.iter().all(|(val, _)| conforms_root(w, &p, val, scope))
                } else {
                    !vals.is_empty()
                        && vals
                            .iter()
                            .all(|(val, t)| urls.iter().filter_map(|u| w.v.profile(u)).any(|prof| conforms(w, &prof, val, t, scope)))
                }
            }
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

fn conforms_root<'v>(w: &mut Walk<'_>, p: &Arc<Profile>, val: &'v Value, scope: Scope<'v>) -> bool {
    let ty = p.type_name.clone();
    conforms(w, p, val, &ty, scope)
}

/// Validates into a scratch list: no error means the value conforms.
fn conforms<'v>(w: &mut Walk<'_>, prof: &Arc<Profile>, val: &'v Value, ty: &str, scope: Scope<'v>) -> bool {
    let mut scratch = Vec::new();
    // The sub-walk starts at `val`: its pointer is found from the enclosing resource's.
    let res_base = if w.ptr_ok { w.ptr.get(..scope.res_ptr) } else { None };
    let located = res_base.and_then(|b| w.prep.locate(val, scope.resource, b));
    let mut sub = Walk {
        v: w.v,
        out: &mut scratch,
        path: String::new(),
        depth: w.depth + 1,
        ptr_ok: located.is_some(),
        ptr: located.unwrap_or_default(),
        prep: w.prep,
        today: w.today,
        tx: w.tx,
        ctx: false,
        memo_inner: false,
    };
    if val.sget("resourceType").is_some() {
        sub.resource(val, std::slice::from_ref(prof), scope);
    } else {
        let ty = if ty.is_empty() { prof.type_name.as_str() } else { ty };
        sub.item(&Item::root(prof, val, ty, scope, Host { path: ty, ty }));
    }
    w.ctx |= sub.ctx;
    !scratch.iter().any(|f| f.severity == Severity::Error)
}
