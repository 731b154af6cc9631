//! Comparisons of JSON values as FHIR means them: exact equality with decimals compared by
//! value (`fixed[x]`, slice discriminators, obs-7) and `pattern[x]` matching.
//!
//! A leaf: it knows `serde_json` and nothing of the validator (no profiles, no walk), so the
//! walk, the slicing, the native invariants and the definition rules can all use it without
//! importing one another. Pure functions: no I/O, no clock, no allocation beyond number text.

use serde_json::{Map, Value};

/// `obj[key]`, found by comparing the keys of a small object one by one. `serde_json`'s map
/// (insertion-ordered, for FHIR's key order) hashes the key with SipHash on every lookup, which
/// costs more than comparing the few keys a FHIR object holds; the walk looks up every child
/// element of every object it visits (issue 17: a sixth of the output gate's instructions).
/// The same answer as `obj.get(key)`: keys are unique.
#[inline]
pub(super) fn get<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    if obj.len() <= 16 { obj.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v) } else { obj.get(key) }
}

/// `v[key]` (JSON null when `v` is not an object or has no `key`) by [`get`]: the same answer
/// as serde_json's `Index`, without SipHash for FHIR's small objects.
#[inline]
pub(super) fn at<'v>(v: &'v Value, key: &str) -> &'v Value {
    static NULL: Value = Value::Null;
    match v {
        Value::Object(m) => get(m, key).unwrap_or(&NULL),
        _ => &NULL,
    }
}

/// Exact equality of JSON values (decimals compared by value).
pub(super) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.to_string().parse::<f64>().ok() == y.to_string().parse::<f64>().ok(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| get(y, k).is_some_and(|w| same(v, w))),
        _ => a == b,
    }
}

/// `pattern[x]`: every property of the pattern is present with a matching value; every item of
/// a pattern array matches some item of the instance array.
pub(super) fn matches_pattern(v: &Value, p: &Value) -> bool {
    match (v, p) {
        (Value::Object(x), Value::Object(y)) => y.iter().all(|(k, pv)| get(x, k).is_some_and(|xv| matches_pattern(xv, pv))),
        (Value::Array(x), Value::Array(y)) => y.iter().all(|pv| x.iter().any(|xv| matches_pattern(xv, pv))),
        (Value::Array(x), y) => x.iter().any(|xv| matches_pattern(xv, y)),
        _ => same(v, p),
    }
}

/// `.get(key)` on an object (or a JSON value, `None` unless an object) by [`get`]: the walk's
/// lookups of a literal key, without SipHash for FHIR's small objects (issue 17).
pub(super) trait SmallGet {
    fn sget(&self, key: &str) -> Option<&Value>;
}

impl SmallGet for Value {
    #[inline]
    fn sget(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(m) => get(m, key),
            _ => None,
        }
    }
}

impl SmallGet for Map<String, Value> {
    #[inline]
    fn sget(&self, key: &str) -> Option<&Value> {
        get(self, key)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn decimals_are_equal_by_value() {
        assert!(same(&json!(1.0), &json!(1.00)));
        assert!(same(&json!({"value": 2.50, "unit": "mg"}), &json!({"unit": "mg", "value": 2.5})));
        assert!(!same(&json!({"value": 2.5}), &json!({"value": 2.5, "unit": "mg"})));
        assert!(!same(&json!([1, 2]), &json!([2, 1])));
    }

    #[test]
    fn a_pattern_array_item_matches_any_instance_item() {
        let p = json!({"coding": [{"system": "http://loinc.org", "code": "8867-4"}]});
        let v = json!({"coding": [{"system": "urn:x", "code": "a"}, {"system": "http://loinc.org", "code": "8867-4", "display": "HR"}]});
        assert!(matches_pattern(&v, &p));
        assert!(!matches_pattern(&json!({"coding": [{"system": "http://loinc.org"}]}), &p));
        // A single pattern value against an instance array: some item matches.
        assert!(matches_pattern(&json!(["a", "b"]), &json!("b")));
    }
}
