//! Ids within one resource: an element `id` occurs once in its resource (nested resources
//! have their own), and contained resources have distinct ids (the HL7 validator's
//! `DUPLICATE_ID` and `RESOURCE_DUPLICATE_CONTAINED_ID`), and security labels are a set by
//! system and code (`META_RES_SECURITY_DUPLICATE`). One pass over the resource's JSON,
//! made once per resource whatever the number of profiles it is checked against.
//!
//! No I/O, no clock; findings name the element, never the id.

use foldhash::{HashSet, HashSetExt};

use serde_json::{Map, Value};

use super::Walk;
use crate::validate::profile::Severity;
use crate::validate::profile::json::SmallGet;

impl Walk<'_> {
    /// Element ids and contained ids of the resource `obj`, the walk's path being at it.
    pub(super) fn unique_ids(&mut self, obj: &Map<String, Value>) {
        // Paths are built only for a resource with a repeated element id: a first pass
        // without them answers whether there is one (issue 17: nearly none has).
        if has_duplicate_element_id(obj) {
            self.located_element_ids(obj);
        }
        if let Some(labels) = obj.sget("meta").and_then(|m| m.sget("security")).and_then(Value::as_array) {
            let mut seen: HashSet<(Option<&str>, Option<&str>)> = HashSet::new();
            for (i, l) in labels.iter().enumerate() {
                if !seen.insert((l.sget("system").and_then(Value::as_str), l.sget("code").and_then(Value::as_str))) {
                    // Located as HL7's validator locates it (at `meta.profile[i]`, i the label's
                    // index), so that the two agree on where.
                    let len = self.path.len();
                    let _ = std::fmt::Write::write_fmt(&mut self.path, format_args!(".meta.profile[{i}]"));
                    self.report(
                        Severity::Error,
                        "business-rule",
                        "a security label is repeated (labels are a set by system and code)",
                    );
                    self.path.truncate(len);
                }
            }
        }
        if let Some(contained) = obj.sget("contained").and_then(Value::as_array) {
            let mut ids: HashSet<&str> = HashSet::new();
            for (i, c) in contained.iter().enumerate() {
                if let Some(id) = c.sget("id").and_then(Value::as_str) {
                    if !ids.insert(id) {
                        let len = self.push("contained", Some(i));
                        self.report(Severity::Error, "duplicate", "a contained resource has the id of another contained resource");
                        self.path.truncate(len);
                    }
                }
            }
        }
    }

    /// The element ids of `obj` with their paths: a finding at each repeated one.
    fn located_element_ids(&mut self, obj: &Map<String, Value>) {
        let mut seen: HashSet<&str> = HashSet::new();
        for (k, v) in obj {
            if k == "contained" || k == "id" {
                continue;
            }
            if k == "snapshot" && obj.sget("resourceType").and_then(Value::as_str) == Some("StructureDefinition") {
                // A snapshot repeats the differential's element ids (Java resets here too).
                self.element_ids(k, v, &mut HashSet::new());
                continue;
            }
            self.element_ids(k, v, &mut seen);
        }
    }

    fn element_ids<'v>(&mut self, key: &str, v: &'v Value, seen: &mut HashSet<&'v str>) {
        let name = key.strip_prefix('_').unwrap_or(key);
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = self.push(name, Some(i));
                    self.object_ids(item, seen);
                    self.path.truncate(len);
                }
            }
            Value::Object(_) => {
                let len = self.push(name, None);
                self.object_ids(v, seen);
                self.path.truncate(len);
            }
            _ => {}
        }
    }

    fn object_ids<'v>(&mut self, v: &'v Value, seen: &mut HashSet<&'v str>) {
        let Some(m) = v.as_object() else { return };
        // A nested resource (a Bundle entry's, a Parameters value) has ids of its own.
        if m.sget("resourceType").is_some() {
            return;
        }
        if let Some(id) = m.sget("id").and_then(Value::as_str) {
            if !seen.insert(id) {
                self.report(Severity::Error, "business-rule", "duplicate element id: an id occurs once in its resource");
            }
        }
        for (k, c) in m {
            if k != "id" {
                self.element_ids(k, c, seen);
            }
        }
    }
}

/// Whether [`Walk::located_element_ids`] would find a repeated element id in `obj`: the same
/// traversal, without paths.
fn has_duplicate_element_id(obj: &Map<String, Value>) -> bool {
    fn value<'v>(v: &'v Value, seen: &mut HashSet<&'v str>) -> bool {
        match v {
            Value::Array(items) => items.iter().any(|i| object(i, seen)),
            Value::Object(_) => object(v, seen),
            _ => false,
        }
    }
    fn object<'v>(v: &'v Value, seen: &mut HashSet<&'v str>) -> bool {
        let Some(m) = v.as_object() else { return false };
        if m.sget("resourceType").is_some() {
            return false;
        }
        if let Some(id) = m.sget("id").and_then(Value::as_str) {
            if !seen.insert(id) {
                return true;
            }
        }
        m.iter().any(|(k, c)| k != "id" && value(c, seen))
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let is_sd = obj.sget("resourceType").and_then(Value::as_str) == Some("StructureDefinition");
    obj.iter().any(|(k, v)| match k.as_str() {
        "contained" | "id" => false,
        "snapshot" if is_sd => value(v, &mut HashSet::new()),
        _ => value(v, &mut seen),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::findings;

    #[test]
    fn element_ids_and_contained_ids_are_unique_in_their_resource() {
        let p = json!({"resourceType": "Patient", "id": "p",
            "name": [{"id": "n1", "family": "A"}, {"id": "n1", "family": "B"}],
            "contained": [{"resourceType": "Organization", "id": "o", "name": [{"id": "n1"}]}, {"resourceType": "Organization", "id": "o", "name": "x"}],
            "managingOrganization": {"reference": "#o"}});
        let f = findings(p);
        let dup: Vec<&String> = f.iter().filter(|f| f.contains("duplicate element id") || f.contains("id of another contained")).collect();
        assert_eq!(dup.len(), 2, "{f:#?}");
        assert!(dup.iter().any(|f| f.starts_with("error Patient.name[1]:")), "{dup:?}");
        assert!(dup.iter().any(|f| f.starts_with("error Patient.contained[1]:")), "{dup:?}");
    }
}
