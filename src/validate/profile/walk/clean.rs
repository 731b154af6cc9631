//! The memo of clean subtrees (issue 17): an element of a resource that was walked with no
//! finding, and whose walk read nothing outside itself, is clean wherever it sits, so the same
//! value at the same element is not walked again.
//!
//! The gateway's output gate sees the same shapes record after record: the same
//! `Observation.code`, `category`, `Immunization.vaccineCode`, `meta`, extensions... Most of a
//! produced resource's bytes sit in such subtrees. The direct elements of a resource are
//! memoised, and inside one that was walked (not found in the memo) its own elements, and so
//! on: a value is hashed once per level walked, and a resource's own rules, its references and
//! its narrative are always walked.
//!
//! Invariants, as they hold here:
//! - **Findings are identical with and without the memo.** A value is skipped only when an
//!   earlier walk of an exactly equal value (compared in full, key order included, numbers by
//!   their text) at the same element of the same profile, read as the same type, under the same
//!   host, at the same depth and on the same day was recorded; its findings are given again, in
//!   the same order, their expressions moved to the value's path. A walk with a finding outside
//!   the value's path is not recorded.
//! - **What a walk reads beyond its subtree marks it context-dependent** ([`Walk::ctx`]), and
//!   such a walk is never recorded: references (they resolve in the Bundle or the resource),
//!   resources (contained ones, entries), `resolve()` discriminators, and invariants whose
//!   expression reads `%resource`, `%rootResource`, a reference's target or the clock
//!   ([`reads_context`](crate::validate::profile::model::reads_context)). Terminology servers'
//!   answers differ from call to call, so a walk that has them does not use the memo at all.
//! - The validator's options are fixed once it is built (its `with_*` methods take it by value
//!   before any validation), so they are not part of the key.
//! - Bounded: at most [`CAPACITY`] entries, cleared when full. A value is kept only once it has
//!   been seen twice, so values unique to one record cost a hash and no copy.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{Item, Walk};
use crate::validate::profile::model::{ElemId, Profile};
use crate::validate::profile::{Finding, Severity};

/// Entries kept at most (each an element's value: a few hundred bytes to a few kB).
pub const CAPACITY: usize = 8192;

#[derive(Default)]
pub struct CleanMemo {
    seed: foldhash::fast::RandomState,
    map: Mutex<std::collections::HashMap<u64, Entry, foldhash::fast::RandomState>>,
}

struct Entry {
    /// Held, so that the address compared is never reused by another profile.
    prof: Arc<Profile>,
    eid: ElemId,
    ty: Box<str>,
    host_path: Box<str>,
    host_ty: Box<str>,
    depth: usize,
    today: i64,
    /// `None` until the value has been seen a second time.
    kept: Option<Arc<Kept>>,
}

/// A value and the findings its walk made, their expressions relative to the value's path.
struct Kept {
    value: Value,
    findings: Vec<(Severity, &'static str, String, String)>,
}

/// Where a value is met, beside its element ([`Item`]): the key's hash, the walk's depth and
/// its day.
#[derive(Clone, Copy)]
struct Place {
    hash: u64,
    depth: usize,
    today: i64,
}

impl Entry {
    fn is_for(&self, it: &Item<'_, '_>, at: Place) -> bool {
        Arc::ptr_eq(&self.prof, it.prof)
            && self.eid == it.eid
            && self.depth == at.depth
            && self.today == at.today
            && *self.ty == *it.ty
            && *self.host_path == *it.host.path
            && *self.host_ty == *it.host.ty
    }
}

impl CleanMemo {
    fn place(&self, it: &Item<'_, '_>, value: &Value, depth: usize, today: i64) -> Place {
        let mut h = self.seed.build_hasher();
        (Arc::as_ptr(it.prof) as usize).hash(&mut h);
        it.eid.hash(&mut h);
        it.ty.hash(&mut h);
        it.host.path.hash(&mut h);
        it.host.ty.hash(&mut h);
        depth.hash(&mut h);
        today.hash(&mut h);
        hash_value(&mut h, value);
        Place { hash: h.finish(), depth, today }
    }

    /// What an equal value's walk found at this element, when it was recorded.
    fn lookup(&self, at: Place, it: &Item<'_, '_>, value: &Value) -> Option<Arc<Kept>> {
        let kept = {
            let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(&at.hash) {
                Some(e) if e.is_for(it, at) => e.kept.clone(),
                _ => None,
            }
        };
        kept.filter(|k| exact_eq(&k.value, value))
    }

    /// Notes `value` (at `path`) as walked with `found`: kept when it was noted before.
    fn record(&self, at: Place, it: &Item<'_, '_>, value: &Value, found: &[Finding], path: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(&at.hash).filter(|e| e.is_for(it, at)) {
            // Seen once before: now kept. (An equal hash for another value replaces it.)
            if e.kept.as_deref().is_none_or(|k| !exact_eq(&k.value, value)) {
                let findings = found.iter().map(|f| (f.severity, f.code, f.text.clone(), f.expression[path.len()..].to_owned())).collect();
                e.kept = Some(Arc::new(Kept { value: value.clone(), findings }));
            }
            return;
        }
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(
            at.hash,
            Entry {
                prof: it.prof.clone(),
                eid: it.eid,
                ty: it.ty.into(),
                host_path: it.host.path.into(),
                host_ty: it.host.ty.into(),
                depth: at.depth,
                today: at.today,
                kept: None,
            },
        );
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }
}

impl Walk<'_> {
    /// [`Walk::item`] through the memo: an equal value walked here before gives its findings
    /// again (at this path) without a walk; else the value is walked, its own elements through
    /// the memo too, and recorded when the walk read nothing outside the value and every
    /// finding is inside it.
    pub(super) fn item_memo(&mut self, it: &Item<'_, '_>) {
        let usable = self.v.clean_on && it.shadow.is_none() && self.tx.answers.is_none() && self.tx.wanted.is_none();
        let Some(value) = it.value.filter(|_| usable) else {
            return self.item(it);
        };
        let memo = &self.v.clean;
        let at = memo.place(it, value, self.depth, self.today);
        if let Some(kept) = memo.lookup(at, it, value) {
            for (severity, code, text, rel) in &kept.findings {
                let mut expression = String::with_capacity(self.path.len() + rel.len());
                expression.push_str(&self.path);
                expression.push_str(rel);
                self.out.push(Finding { severity: *severity, code, text: text.clone(), expression });
            }
            return;
        }
        let before = self.out.len();
        let outer = std::mem::replace(&mut self.ctx, false);
        let inner = std::mem::replace(&mut self.memo_inner, true);
        self.item(it);
        self.memo_inner = inner;
        let found = &self.out[before..];
        if !self.ctx && found.iter().all(|f| f.expression.starts_with(self.path.as_str())) {
            memo.record(at, it, value, found, &self.path);
        }
        self.ctx |= outer;
    }
}

/// Every part of `v` that [`exact_eq`] compares, in order.
fn hash_value(h: &mut impl Hasher, v: &Value) {
    match v {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => h.write_u8(1 + u8::from(*b)),
        Value::Number(n) => {
            h.write_u8(3);
            n.as_str().hash(h);
        }
        Value::String(s) => {
            h.write_u8(4);
            s.as_str().hash(h);
        }
        Value::Array(a) => {
            h.write_u8(5);
            h.write_usize(a.len());
            for x in a {
                hash_value(h, x);
            }
        }
        Value::Object(m) => {
            h.write_u8(6);
            h.write_usize(m.len());
            for (k, x) in m {
                k.as_str().hash(h);
                hash_value(h, x);
            }
        }
    }
}

/// Equal as JSON text is: the same keys in the same order, numbers written alike (`1.50` is
/// not `1.5`: a decimal's precision is part of its value in FHIR).
fn exact_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => x.as_str() == y.as_str(),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| exact_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().zip(y).all(|((kp, p), (kq, q))| kp == kq && exact_eq(p, q)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::exact_eq;
    use crate::validate::profile::walk::testing::shipped;
    use crate::validate::profile::{Validator, load};

    #[test]
    fn exact_equality_keeps_order_and_decimal_text() {
        assert!(exact_eq(&json!({"a": 1, "b": [true, null]}), &json!({"a": 1, "b": [true, null]})));
        assert!(!exact_eq(&json!({"a": 1, "b": 2}), &json!({"b": 2, "a": 1})));
        let a: Value = serde_json::from_str(r#"{"v": 1.50}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"v": 1.5}"#).unwrap();
        assert!(!exact_eq(&a, &b));
    }

    /// Every string at a key named `key` replaced by `to`: the same shapes with findings in
    /// many subtrees (a bad system, a bad code), some at elements met clean before.
    fn spoil(v: &mut Value, key: &str, to: &str) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k == key && x.is_string() {
                        *x = Value::String(to.to_owned());
                    } else {
                        spoil(x, key, to);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| spoil(x, key, to)),
            _ => {}
        }
    }

    /// The findings, in order, are those of a validator without the memo, whatever was
    /// validated before: the golden Bundles, then each spoilt so that subtrees met clean carry
    /// findings, then the originals again (now found in the memo), and a value that a
    /// reference or `%resource` makes depend on its place.
    #[test]
    fn findings_are_the_same_with_and_without_the_memo() {
        let with = shipped();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let without: Validator = load::load(&dir.join("conformance/packages"), &[], &[]).unwrap().with_clean_memo(false);
        let mut cases: Vec<Value> = Vec::new();
        let mut names: Vec<_> = std::fs::read_dir(dir.join("tests/golden/expected")).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for p in names.iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
            cases.push(serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap());
        }
        assert!(cases.len() >= 3, "golden Bundles found");
        let originals = cases.clone();
        for (key, to) in [("system", "urn:oid:1.2.3"), ("code", "not-a-code"), ("display", "x"), ("reference", "Patient/none")] {
            for c in &originals {
                let mut c = c.clone();
                spoil(&mut c, key, to);
                cases.push(c);
            }
        }
        cases.extend(originals.iter().cloned());
        cases.extend(originals);
        for (i, c) in cases.iter().enumerate() {
            assert_eq!(with.validate(c, &[]), without.validate(c, &[]), "case {i}");
        }
        assert!(with.clean.len() > 0, "the memo was used");
    }
}
