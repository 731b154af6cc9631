//! Cross-version extensions: an R4 instance may carry an element that only a later FHIR
//! version defines as an extension whose URL names it
//! (`http://hl7.org/fhir/5.0/StructureDefinition/extension-DeviceRequest.doNotPerform`). The
//! HL7 validator builds the definition of such an extension from the element of that version;
//! so does this module, for R5, from the table `conformance/xver/r5-elements.tsv` (the R5 path,
//! its maximum cardinality, types and modifier flag, derived from `hl7.fhir.r5.core` 5.0.0 by
//! `conformance/scripts/xver-r5.py`).
//!
//! The definition built: an Extension whose root repeats as the element does and is a
//! modifier where the element is one (so using it on the wrong side, `extension` or
//! `modifierExtension`, is an error), its `url` fixed, and
//! - for an element of data types, `value[x]` required and restricted to those of its types R4
//!   has (a type only R5 has, such as `CodeableReference`, leaves `value[x]` open);
//! - for a backbone element, no `value[x]`: its children are nested extensions, named by the
//!   child's name (relative URLs, which the walk does not resolve).
//!
//! Left out, as the HL7 validator's strict cross-version mode does them: the context (the
//! R4 element the extension may sit on) and the R4B and STU3 namespaces. An unknown path
//! resolves to nothing, and stays an unknown extension.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Value, json};

const TABLE: &str = include_str!("../../../conformance/xver/r5-elements.tsv");
const R5: &str = "http://hl7.org/fhir/5.0/StructureDefinition/extension-";

/// An R5 element: maximum cardinality, types, modifier.
struct Element {
    max: &'static str,
    types: Vec<&'static str>,
    modifier: bool,
}

fn table() -> &'static HashMap<&'static str, Element> {
    static T: OnceLock<HashMap<&'static str, Element>> = OnceLock::new();
    T.get_or_init(|| {
        TABLE
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let mut f = l.split('\t');
                let path = f.next()?;
                let max = f.next()?;
                let types = f.next()?.split(',').collect();
                let modifier = f.next()? == "1";
                Some((path, Element { max, types, modifier }))
            })
            .collect()
    })
}

/// Whether `url` is in a cross-version namespace this module reads.
pub fn is_xver(url: &str) -> bool {
    url.starts_with(R5)
}

/// The StructureDefinition of the cross-version extension `url`, differential only (the
/// snapshot is generated from Extension's as for any profile); None when `url` names no R5
/// element. `r4_type` says whether R4 has a data type of that name.
pub fn definition(url: &str, r4_type: impl Fn(&str) -> bool) -> Option<Value> {
    let path = url.strip_prefix(R5)?;
    let t = table();
    // A choice element may be named with or without its `[x]`.
    let e = t.get(path).or_else(|| t.get(format!("{path}[x]").as_str()))?;
    let complex = e.types.iter().any(|t| matches!(*t, "BackboneElement" | "Element"));
    let mut root = json!({"id": "Extension", "path": "Extension", "min": 0, "max": e.max});
    if e.modifier {
        root["isModifier"] = Value::Bool(true);
        root["isModifierReason"] = json!("a modifier in FHIR R5");
    }
    let mut elements = vec![root, json!({"id": "Extension.url", "path": "Extension.url", "fixedUri": url})];
    if complex {
        elements.push(json!({"id": "Extension.value[x]", "path": "Extension.value[x]", "max": "0"}));
    } else {
        elements.insert(1, json!({"id": "Extension.extension", "path": "Extension.extension", "max": "0"}));
        let mut value = json!({"id": "Extension.value[x]", "path": "Extension.value[x]", "min": 1});
        if e.types.iter().all(|t| r4_type(t)) {
            value["type"] = e.types.iter().map(|t| json!({"code": t})).collect();
        }
        elements.push(value);
    }
    let name: String = path.chars().filter(char::is_ascii_alphanumeric).collect();
    Some(json!({
        "resourceType": "StructureDefinition",
        "url": url,
        "name": format!("Extension_{name}"),
        "status": "active",
        "fhirVersion": "4.0.1",
        "kind": "complex-type",
        "abstract": false,
        "context": [{"type": "element", "expression": "Element"}],
        "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "derivation": "constraint",
        "differential": {"element": elements},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_r5_element_becomes_an_extension_definition() {
        let d = definition("http://hl7.org/fhir/5.0/StructureDefinition/extension-DeviceRequest.doNotPerform", |_| true).unwrap();
        let els = d["differential"]["element"].as_array().unwrap();
        assert_eq!(els[0]["isModifier"], true);
        assert_eq!(els[0]["max"], "1");
        assert_eq!(els.last().unwrap()["type"][0]["code"], "boolean");
        // A backbone element takes nested extensions, no value.
        let d = definition("http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.expansion.contains.property", |_| {
            true
        })
        .unwrap();
        let els = d["differential"]["element"].as_array().unwrap();
        assert!(els.iter().any(|e| e["path"] == "Extension.value[x]" && e["max"] == "0"));
        assert_eq!(els[0].get("isModifier"), None);
        // A type R4 lacks leaves the value open.
        let d = definition("http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.compose.include.filter.op", |t| {
            t != "code"
        })
        .unwrap();
        assert_eq!(d["differential"]["element"].as_array().unwrap().last().unwrap().get("type"), None);
        // Paths R5 does not have, and other namespaces, resolve to nothing.
        assert!(definition("http://hl7.org/fhir/5.0/StructureDefinition/extension-DeviceRequest.noSuchThing", |_| true).is_none());
        assert!(definition("http://hl7.org/fhir/3.0/StructureDefinition/extension-DeviceRequest.doNotPerform", |_| true).is_none());
    }
}
