//! Rules of conformance resources themselves, which their own StructureDefinitions cannot say
//! (or say wrongly): checked when the resource validated is a StructureDefinition.
//!
//! - Slicing on a profile's root element: no snapshot can be generated from it (sdf-20 says
//!   it of the differential as a whole; here each such element is named, and the profile).
//! - A binding on an element none of whose types can be bound (coded types, Quantity, string,
//!   uri and its kinds, Duration): what R4's eld-11 means, though its expression
//!   (`type.select(...).exists()`) is true for any type.
//!
//! - A discriminator path must name an element of the sliced element's type (`url` of an
//!   Extension, `code` of a CodeableConcept...), unless it is `$this` or goes through a
//!   function (`extension('...')`, `resolve()`, `ofType()`).
//! - A slice that slices again (re-slicing) keeps the discriminators of the slicing it is in.
//!
//! Findings are at `StructureDefinition.differential.element[i]` (and at the root for a
//! profile that cannot be expanded).

use serde_json::{Map, Value};

use super::{Finding, Severity, Validator};

/// Types a binding means something on (R5's eld-11 list, with uri's specialisations).
const BINDABLE: [&str; 10] =
    ["code", "Coding", "CodeableConcept", "Quantity", "string", "uri", "url", "canonical", "Duration", "CodeableReference"];

fn at(expression: String, code: &'static str, text: String) -> Finding {
    Finding { severity: Severity::Error, code, text, expression }
}

/// The checks on a StructureDefinition at `path` (its FHIRPath, e.g. `StructureDefinition` or
/// `Bundle.entry[3].resource`).
pub(super) fn structure_definition(v: &Validator, sd: &Map<String, Value>, path: &str, out: &mut Vec<Finding>) {
    let Some(elements) = sd.get("differential").and_then(|d| d.get("element")).and_then(Value::as_array) else {
        return;
    };
    let base = sd.get("baseDefinition").and_then(Value::as_str).and_then(|u| v.profile(u));
    // The slicing declared on each unsliced path so far (path -> discriminators).
    let mut slicings: Vec<(&str, &Value)> = Vec::new();
    let mut root_sliced = false;
    for (i, e) in elements.iter().enumerate() {
        let here = || format!("{path}.differential.element[{i}]");
        let p = e.get("path").and_then(Value::as_str).unwrap_or_default();
        // The element's types: its own, else the base profile's.
        let types = || -> Vec<String> {
            let own = own_types(e);
            if !own.is_empty() {
                return own;
            }
            base.as_ref()
                .and_then(|b| b.elements.iter().find(|x| x.path == p && x.slice_name.is_none()))
                .map(|x| x.types.iter().map(|t| t.code.clone()).collect())
                .unwrap_or_default()
        };
        if let Some(slicing) = e.get("slicing") {
            let discriminators = &slicing["discriminator"];
            let is_slice = e.get("sliceName").is_some();
            if is_slice {
                if let Some((_, first)) = slicings.iter().find(|(q, _)| *q == p) {
                    if *first != discriminators {
                        out.push(at(
                            path.to_owned(),
                            "structure",
                            format!("the slice {} re-slices {p} with discriminators other than the slicing it belongs to", e["id"].as_str().unwrap_or(p)),
                        ));
                    }
                }
            } else {
                slicings.push((p, discriminators));
            }
            let types = types();
            for (j, d) in discriminators.as_array().into_iter().flatten().enumerate() {
                let Some(dp) = d["path"].as_str() else { continue };
                if let Some(first) = first_step(dp) {
                    // A backbone's elements are the base profile's children of the path.
                    let backbone = types.iter().any(|t| t == "BackboneElement" || t == "Element");
                    let known = if backbone {
                        base.as_ref().and_then(|b| b.elements.iter().position(|x| x.path == p && x.slice_name.is_none()).map(|at| names_child(b, at, first)))
                    } else {
                        Some(types.iter().any(|t| has_child(v, t, first)))
                    };
                    if !types.is_empty() && known == Some(false) {
                        out.push(at(
                            format!("{}.slicing.discriminator[{j}]", here()),
                            "structure",
                            format!("the discriminator path '{dp}' names no element of {p} ({})", types.join(", ")),
                        ));
                    }
                }
            }
        }
        if !p.is_empty() && !p.contains('.') && e.get("slicing").is_some() {
            root_sliced = true;
            out.push(at(here(), "structure", format!("slicing is not allowed at the root of a profile ({p})")));
        }
        // Only where the element states its types: a profile binding a backbone (as
        // hl7.fhir.au.base's `Specimen.container`) passed its IG publisher.
        if e.get("binding").is_some() {
            let types = own_types(e);
            if !types.is_empty() && !types.iter().any(|t| BINDABLE.contains(&t.as_str()) || t.contains(':')) {
                out.push(at(
                    here(),
                    "structure",
                    format!("a binding on an element of type {} has no meaning: only coded types, string and uri are bound", types.join(", ")),
                ));
            }
        }
    }
    if root_sliced {
        out.push(at(path.to_owned(), "structure", "no snapshot can be generated: the differential slices the root element".into()));
    }
}

/// The type codes an element definition states.
fn own_types(e: &Value) -> Vec<String> {
    e.get("type").and_then(Value::as_array).into_iter().flatten().filter_map(|t| t["code"].as_str().map(str::to_owned)).collect()
}

/// The first element a discriminator path steps to, when it is a plain name (`url` of `url`,
/// `code` of `code.coding`); `None` for `$this`, functions and anything else.
fn first_step(path: &str) -> Option<&str> {
    let path = path.strip_prefix("$this.").unwrap_or(path);
    let first = path.split('.').next()?;
    (!first.is_empty() && first.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(first)
}

/// Whether type `ty` has an element `name`. Unknown types answer yes: nothing to say of them.
fn has_child(v: &Validator, ty: &str, name: &str) -> bool {
    v.type_profile(ty).is_none_or(|tp| tp.elements.is_empty() || names_child(&tp, 0, name))
}

/// Whether element `at` of `prof` has a child `name` (a choice `value[x]` answers to `value`
/// and to `valueString`...).
fn names_child(prof: &super::model::Profile, at: usize, name: &str) -> bool {
    prof.elements[at].children.iter().map(|&c| &prof.elements[c]).any(|c| {
        c.name == name || (c.choice && name.strip_prefix(c.name.as_str()).is_some_and(|rest| rest.starts_with(|x: char| x.is_ascii_uppercase())))
    })
}
