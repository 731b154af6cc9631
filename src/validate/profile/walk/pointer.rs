//! JSON Pointers into the root, and what one validation prepares for the FHIRPath engine
//! ([`Prep`]): the root converted at most once, lazily, and the pointer of every resource in it
//! (so a slicing sub-walk, which starts at a value rather than at the root, can still name its
//! nodes by pointer).
//!
//! No I/O, no clock. Depth is bounded by [`MAX_DEPTH`](super::MAX_DEPTH).

use foldhash::{HashMap, HashMapExt};
use std::any::Any;
use std::cell::OnceCell;

use serde_json::Value;

use super::MAX_DEPTH;
use crate::validate::profile::InvariantEngine;
use crate::validate::profile::json::SmallGet;

/// What one validation prepares lazily for the FHIRPath engine: the root converted once, and
/// the pointer of every resource in it (for the slicing sub-walks, which start at a value
/// rather than at the root).
pub(super) struct Prep<'r> {
    pub(super) root: &'r Value,
    prepared: OnceCell<Option<Box<dyn Any>>>,
    resources: OnceCell<HashMap<usize, String>>,
}

impl<'r> Prep<'r> {
    pub fn new(root: &'r Value) -> Self {
        Prep { root, prepared: OnceCell::new(), resources: OnceCell::new() }
    }

    pub(super) fn prepared(&self, engine: &dyn InvariantEngine) -> Option<&dyn Any> {
        self.prepared.get_or_init(|| engine.prepare(self.root)).as_deref()
    }

    /// The JSON Pointer of `target`, a node inside `within` (whose pointer is `base`); a
    /// resource is found by address in an index of the root's resources.
    pub fn locate(&self, target: &Value, within: &Value, base: &str) -> Option<String> {
        if target.sget("resourceType").is_some() {
            let map = self.resources.get_or_init(|| {
                let mut m = HashMap::new();
                index_resources(self.root, &mut String::new(), &mut m, 0);
                m
            });
            return map.get(&(target as *const Value as usize)).cloned();
        }
        let mut ptr = base.to_owned();
        find(within, target, &mut ptr, 0).then_some(ptr)
    }
}

pub(super) fn push_key(ptr: &mut String, key: &str) {
    ptr.push('/');
    if key.contains(['~', '/']) {
        ptr.push_str(&key.replace('~', "~0").replace('/', "~1"));
    } else {
        ptr.push_str(key);
    }
}

fn index_resources(v: &Value, ptr: &mut String, out: &mut HashMap<usize, String>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(m) => {
            if m.sget("resourceType").is_some() {
                out.insert(v as *const Value as usize, ptr.clone());
            }
            for (k, x) in m {
                if x.is_object() || x.is_array() {
                    let len = ptr.len();
                    push_key(ptr, k);
                    index_resources(x, ptr, out, depth + 1);
                    ptr.truncate(len);
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                if x.is_object() || x.is_array() {
                    let len = ptr.len();
                    ptr.push('/');
                    super::push_decimal(ptr, i);
                    index_resources(x, ptr, out, depth + 1);
                    ptr.truncate(len);
                }
            }
        }
        _ => {}
    }
}

fn find(v: &Value, target: &Value, ptr: &mut String, depth: usize) -> bool {
    if std::ptr::eq(v, target) {
        return true;
    }
    if depth > MAX_DEPTH {
        return false;
    }
    let len = ptr.len();
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                push_key(ptr, k);
                if find(x, target, ptr, depth + 1) {
                    return true;
                }
                ptr.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                ptr.push('/');
                super::push_decimal(ptr, i);
                if find(x, target, ptr, depth + 1) {
                    return true;
                }
                ptr.truncate(len);
            }
        }
        _ => {}
    }
    false
}
