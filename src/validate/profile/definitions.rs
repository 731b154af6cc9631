//! Rules of conformance resources themselves, which their own StructureDefinitions cannot say
//! (or say wrongly): checked when the resource validated is a StructureDefinition, a
//! CodeSystem, a ValueSet, a ConceptMap, or any canonical resource.
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
//! - A canonical resource's `url` is absolute (R4: "An absolute URI"), contained ones too.
//! - A complete CodeSystem's `count` is its number of concepts; its properties are declared
//!   once (by code and by URI) and its concepts' property values have the declared types.
//! - A ConceptMap's source codes are in its source value set (or code system) where known.
//! - A ValueSet's `compose` names code systems by absolute URI, enumerates only codes a known
//!   complete code system defines, and a filter's value suits the
//!   property's type where the code system declares it (a Coding property takes
//!   `system(|version)#code`, a known code; a boolean `true` or `false`).
//!
//! Findings are at the element (`StructureDefinition.differential.element[i]`,
//! `ValueSet.compose.include[0].filter[1]`...), and at the root for a profile that cannot be
//! expanded.

use serde_json::{Map, Value};

use super::{Finding, Severity, Validator};

/// Types a binding means something on (R5's eld-11 list, with uri's specialisations).
const BINDABLE: [&str; 10] =
    ["code", "Coding", "CodeableConcept", "Quantity", "string", "uri", "url", "canonical", "Duration", "CodeableReference"];

/// An error finding (shared with `structure.rs`).
pub(super) fn at(expression: String, code: &'static str, text: String) -> Finding {
    Finding { severity: Severity::Error, code, text, expression }
}

/// The checks on a StructureDefinition at `path` (its FHIRPath, e.g. `StructureDefinition` or
/// `Bundle.entry[3].resource`).
pub(super) fn structure_definition(v: &Validator, sd: &Map<String, Value>, path: &str, out: &mut Vec<Finding>) {
    super::structure::check(v, sd, path, out);
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
        // The base profile's element for the path, and the element's types: its own, else the
        // base's.
        let in_base =
            || base.as_ref().and_then(|b| b.elements.iter().position(|x| x.path == p && x.slice_name.is_none()).map(|at| (b, at)));
        let types = || -> Vec<String> {
            let own = own_types(e);
            if !own.is_empty() {
                return own;
            }
            in_base().map(|(b, at)| b.elements[at].types.iter().map(|t| t.code.clone()).collect()).unwrap_or_default()
        };
        // A choice renamed for a type (`Observation.valueQuantity`) only where the element
        // constrains the choice to that one type (Java's snapshot generator,
        // ED_PATH_WRONG_TYPE_MATCH); reported at the definition, as Java's snapshot errors are.
        if let (Some(b), Some((parent, last))) = (&base, p.rsplit_once('.')) {
            let has = |q: &str| b.elements.iter().any(|x| x.path == q);
            if !has(p) && has(parent) {
                let choice = b.elements.iter().filter(|x| x.path.ends_with("[x]")).find_map(|x| {
                    let stem = x.path.strip_suffix("[x]")?.strip_prefix(parent)?.strip_prefix('.')?;
                    let ty = last.strip_prefix(stem).filter(|t| t.starts_with(|c: char| c.is_ascii_uppercase()))?;
                    Some((x.path.clone(), ty))
                });
                if let Some((choice_path, ty)) = choice {
                    let own = own_types(e);
                    let one = own.len() == 1 && own[0].eq_ignore_ascii_case(ty);
                    if !one {
                        out.push(at(
                            path.to_owned(),
                            "structure",
                            format!("no snapshot can be generated: the path must be '{choice_path}' not '{p}' when the type list is not constrained"),
                        ));
                    }
                }
            }
        }
        if let Some(slicing) = e.get("slicing") {
            let discriminators = &slicing["discriminator"];
            let is_slice = e.get("sliceName").is_some();
            if is_slice {
                if let Some((_, first)) = slicings.iter().find(|(q, _)| *q == p) {
                    if *first != discriminators {
                        out.push(at(
                            path.to_owned(),
                            "structure",
                            format!(
                                "the slice {} re-slices {p} with discriminators other than the slicing it belongs to",
                                e["id"].as_str().unwrap_or(p)
                            ),
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
                        in_base().map(|(b, at)| names_child(b, at, first))
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
                    format!(
                        "a binding on an element of type {} has no meaning: only coded types, string and uri are bound",
                        types.join(", ")
                    ),
                ));
            }
        }
    }
    if root_sliced {
        out.push(at(
            path.to_owned(),
            "structure",
            "no snapshot can be generated: the differential slices the root element".into(),
        ));
    }
}

/// A supplement (CODESYSTEM_CS_HL7_PRESENT_ELEMENT_SUPPL_WRONG / _MISSING,
/// CODESYSTEM_CS_SUPP_INVALID_CODE): `content` is `supplement` exactly when `supplements`
/// names the code system supplemented, and its concepts are codes of that system (where it
/// is loaded, or by the form of LOINC and SNOMED CT codes).
fn supplement(v: &Validator, cs: &Map<String, Value>, concepts: &[Value], path: &str, out: &mut Vec<Finding>) {
    let content = cs.get("content").and_then(Value::as_str);
    let Some(base) = cs.get("supplements").and_then(Value::as_str) else {
        if content == Some("supplement") {
            out.push(at(
                format!("{path}.content"),
                "invalid",
                "CodeSystem Supplements with a content value of 'supplement' SHALL have a supplements element that specifies which code system is being supplemented".into(),
            ));
        }
        return;
    };
    if content != Some("supplement") {
        out.push(at(
            format!("{path}.content"),
            "invalid",
            "CodeSystem Supplements SHALL have a content value of 'supplement'".into(),
        ));
    }
    let base = base.split('|').next().unwrap_or(base);
    let known = authoritative_code_system(v, base);
    fn walk(list: &[Value], at_path: &str, base: &str, known: Option<&foldhash::HashMap<String, Option<String>>>, out: &mut Vec<Finding>) {
        for (i, c) in list.iter().enumerate() {
            let here = format!("{at_path}.concept[{i}]");
            if let Some(code) = c.get("code").and_then(Value::as_str) {
                let missing = match known {
                    Some(k) => !k.contains_key(code),
                    None => super::codes::well_formed(base, code) == Some(false),
                };
                if missing {
                    out.push(at(
                        here.clone(),
                        "invalid",
                        format!("the code is not declared in the base CodeSystem {base} so is not valid in the supplement"),
                    ));
                }
            }
            if let Some(sub) = c.get("concept").and_then(Value::as_array) {
                walk(sub, &here, base, known, out);
            }
        }
    }
    walk(concepts, path, base, known.as_deref(), out);
}

/// A parameterised value set (the tools' `valueset-parameter` extension): a filter value
/// given by a `cqf-expression` is FHIRPath (VALUESET_BAD_FILTER_EXPR_LANG), readable
/// (VALUESET_BAD_FILTER_EXPR_VALUE, where an engine is plugged in), and names only declared
/// parameters (VALUESET_BAD_FILTER_EXPR_PARAM_NAME). Located as Java locates them: at the
/// filter's `extension[i].value.ofType(Expression)` (the value's extension, as Java's path
/// names it).
fn filter_expressions(v: &Validator, vs: &Map<String, Value>, compose: &Value, path: &str, out: &mut Vec<Finding>) {
    const PARAM: &str = "http://hl7.org/fhir/tools/StructureDefinition/valueset-parameter";
    const EXPR: &str = "http://hl7.org/fhir/StructureDefinition/cqf-expression";
    let declared: Vec<&str> = vs
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e["url"] == PARAM)
        .flat_map(|e| e["extension"].as_array().into_iter().flatten())
        .filter(|e| e["url"] == "name")
        .filter_map(|e| e["valueCode"].as_str())
        .collect();
    for part in ["include", "exclude"] {
        for (i, inc) in compose.get(part).and_then(Value::as_array).into_iter().flatten().enumerate() {
            for (j, f) in inc["filter"].as_array().into_iter().flatten().enumerate() {
                for (k, e) in f["_value"]["extension"].as_array().into_iter().flatten().enumerate() {
                    if e["url"] != EXPR {
                        continue;
                    }
                    let here = format!("{path}.compose.{part}[{i}].filter[{j}].extension[{k}].value.ofType(Expression)");
                    let lang = e["valueExpression"]["language"].as_str().unwrap_or_default();
                    let Some(expr) = e["valueExpression"]["expression"].as_str() else { continue };
                    if lang != "text/fhirpath" {
                        out.push(at(here, "invalid", format!("A ValueSet expression language must be 'text/fhirpath' not '{lang}'")));
                        continue;
                    }
                    if v.engine().and_then(|en| en.parses(expr)) == Some(false) {
                        out.push(at(here, "invalid", format!("The value of the expression '{expr}' is not a valid FHIRPath")));
                        continue;
                    }
                    // `%name`: a parameter (names may hold '-', as the extension declares them).
                    for name in expr.split('%').skip(1).map(|t| {
                        let end = t.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).unwrap_or(t.len());
                        &t[..end]
                    }) {
                        if !name.is_empty() && !declared.contains(&name) {
                            out.push(at(
                                here.clone(),
                                "invalid",
                                format!("The filter parameter expression '{expr}' refers to the unknown parameter '{name}'"),
                            ));
                        }
                    }
                }
            }
        }
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
        c.name == name
            || (c.choice && name.strip_prefix(c.name.as_str()).is_some_and(|rest| rest.starts_with(|x: char| x.is_ascii_uppercase())))
    })
}

/// The checks every canonical resource gets (`url` absolute), and those of CodeSystems and
/// ValueSets, for a resource of type `rt` at `path`.
pub(super) fn canonical_resource(v: &Validator, rt: &str, r: &Map<String, Value>, path: &str, contained: bool, out: &mut Vec<Finding>) {
    if let Some(url) = r.get("url").and_then(Value::as_str) {
        if !super::primitive::has_scheme(url) {
            let text = if contained {
                "a canonical URL must be absolute, in a contained resource too"
            } else {
                "a canonical URL must be absolute (R4: an absolute URI identifies the resource)"
            };
            out.push(at(format!("{path}.url"), "invalid", text.into()));
        }
    }
    match rt {
        "CodeSystem" => code_system(v, r, path, out),
        "ValueSet" => value_set(v, r, path, out),
        "ConceptMap" => concept_map(v, r, path, out),
        _ => {}
    }
}

/// A ConceptMap's source codes: in its source value set where that can be expanded here, else
/// in the group's source code system where it is known and complete.
fn concept_map(v: &Validator, cm: &Map<String, Value>, path: &str, out: &mut Vec<Finding>) {
    let source_vs = cm.get("sourceCanonical").or_else(|| cm.get("sourceUri")).and_then(Value::as_str).and_then(|u| v.expansion(u));
    for (g, group) in cm.get("group").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let Some(system) = group.get("source").and_then(Value::as_str) else { continue };
        let cs = authoritative_code_system(v, system);
        for (e, element) in group.get("element").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let Some(code) = element.get("code").and_then(Value::as_str) else { continue };
            let problem = if source_vs.as_ref().is_some_and(|x| !x.has(Some(system), code)) {
                Some("the source code is not in the map's source value set")
            } else if cs.as_ref().is_some_and(|cs| !cs.contains_key(code)) {
                Some("the source code is not defined in the group's source code system")
            } else {
                None
            };
            if let Some(p) = problem {
                out.push(at(format!("{path}.group[{g}].element[{e}].code"), "code-invalid", p.into()));
            }
        }
    }
}

/// A known, complete code system whose codes are the whole of it: not R4 core's 2019 copy of
/// an external one (whose newer codes it lacks).
fn authoritative_code_system(v: &Validator, system: &str) -> Option<std::sync::Arc<foldhash::HashMap<String, Option<String>>>> {
    v.code_system(system).filter(|_| !v.is_external_copy(system))
}

fn concept_count(concepts: &[Value]) -> usize {
    concepts.iter().map(|c| 1 + c.get("concept").and_then(Value::as_array).map_or(0, |a| concept_count(a))).sum()
}

/// The JSON key a property of FHIR type `ty` takes its value in (`valueCode`...).
fn property_key(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "code" => "valueCode",
        "Coding" => "valueCoding",
        "string" => "valueString",
        "integer" => "valueInteger",
        "boolean" => "valueBoolean",
        "dateTime" => "valueDateTime",
        "decimal" => "valueDecimal",
        _ => return None,
    })
}

fn code_system(v: &Validator, cs: &Map<String, Value>, path: &str, out: &mut Vec<Finding>) {
    let concepts = cs.get("concept").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    supplement(v, cs, concepts, path, out);
    if cs.get("content").and_then(Value::as_str) == Some("complete") {
        if let Some(n) = cs.get("count").and_then(Value::as_u64) {
            let have = concept_count(concepts);
            if n as usize != have {
                out.push(at(
                    format!("{path}.count"),
                    "invalid",
                    format!("the code system is complete, but it has {have} concepts, not the {n} stated"),
                ));
            }
        }
    }
    // Declared properties: code -> type; each code and URI once.
    let mut declared: Vec<(&str, &str)> = Vec::new();
    let mut uris: Vec<&str> = Vec::new();
    for (i, p) in cs.get("property").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let code = p.get("code").and_then(Value::as_str).unwrap_or_default();
        if declared.iter().any(|(c, _)| *c == code) {
            out.push(at(
                format!("{path}.property[{i}]"),
                "invalid",
                format!("a property is already defined with the code '{code}'"),
            ));
        } else {
            declared.push((code, p.get("type").and_then(Value::as_str).unwrap_or_default()));
        }
        if let Some(u) = p.get("uri").and_then(Value::as_str) {
            if uris.contains(&u) {
                out.push(at(
                    format!("{path}.property[{i}]"),
                    "invalid",
                    format!("a property is already defined with the URI {u}"),
                ));
            }
            uris.push(u);
        }
    }
    fn walk(concepts: &[Value], at_path: String, declared: &[(&str, &str)], out: &mut Vec<Finding>) {
        for (i, c) in concepts.iter().enumerate() {
            let here = format!("{at_path}.concept[{i}]");
            for (j, p) in c.get("property").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let code = p.get("code").and_then(Value::as_str).unwrap_or_default();
                let Some((_, ty)) = declared.iter().find(|(c, _)| *c == code) else { continue };
                let Some(want) = property_key(ty) else { continue };
                let given = p.as_object().and_then(|m| m.keys().find(|k| k.starts_with("value")));
                if let Some(given) = given.filter(|g| g.as_str() != want) {
                    out.push(at(
                        format!("{here}.property[{j}]"),
                        "invalid",
                        format!("the property '{code}' is given as {given}, but it is declared of type {ty}"),
                    ));
                }
            }
            if let Some(sub) = c.get("concept").and_then(Value::as_array) {
                walk(sub, here, declared, out);
            }
        }
    }
    walk(concepts, path.to_owned(), &declared, out);
}

fn value_set(v: &Validator, vs: &Map<String, Value>, path: &str, out: &mut Vec<Finding>) {
    let Some(compose) = vs.get("compose") else { return };
    filter_expressions(v, vs, compose, path, out);
    for part in ["include", "exclude"] {
        for (i, inc) in compose.get(part).and_then(Value::as_array).into_iter().flatten().enumerate() {
            let here = format!("{path}.compose.{part}[{i}]");
            let Some(system) = inc.get("system").and_then(Value::as_str) else { continue };
            if !super::primitive::has_scheme(system) {
                out.push(at(
                    here,
                    "invalid",
                    "compose names code systems by absolute URI (a contained one by its url, with the valueset-system extension)".into(),
                ));
                continue;
            }
            // Enumerated codes of a known, complete code system must be its codes.
            if let Some(known) = authoritative_code_system(v, system) {
                for (k, c) in inc.get("concept").and_then(Value::as_array).into_iter().flatten().enumerate() {
                    if c.get("code").and_then(Value::as_str).is_some_and(|code| !known.contains_key(code)) {
                        out.push(at(
                            format!("{here}.concept[{k}]"),
                            "code-invalid",
                            format!("the code is not defined in the code system {system}"),
                        ));
                    }
                }
            }
            let cs = v.resolve(system).filter(|r| r["resourceType"] == "CodeSystem");
            for (j, f) in inc.get("filter").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let (Some(prop), Some(value)) = (f.get("property").and_then(Value::as_str), f.get("value").and_then(Value::as_str)) else {
                    continue;
                };
                let Some(ty) = cs.as_ref().and_then(|cs| {
                    cs["property"].as_array()?.iter().find(|p| p["code"] == prop).and_then(|p| p["type"].as_str().map(str::to_owned))
                }) else {
                    continue;
                };
                let op = f.get("op").and_then(Value::as_str).unwrap_or("=");
                if let Some(problem) = filter_value_problem(v, &ty, op, value) {
                    out.push(at(format!("{here}.filter[{j}]"), "invalid", format!("the filter on property '{prop}': {problem}")));
                }
            }
        }
    }
}

/// What is wrong with a filter value for a property of type `ty` (`in`/`not-in` take a
/// comma-separated list; `regex` and `exists` are not about the type). Numbers are not
/// checked: a code system may filter an integer property with its own notation (`lt2`), as
/// the HL7 validator accepts.
fn filter_value_problem(v: &Validator, ty: &str, op: &str, value: &str) -> Option<String> {
    if matches!(op, "regex" | "exists") {
        return None;
    }
    let items: Vec<&str> = if matches!(op, "in" | "not-in") { value.split(',').map(str::trim).collect() } else { vec![value] };
    for item in items {
        let problem = match ty {
            "boolean" if !matches!(item, "true" | "false") => Some("a boolean property takes true or false".to_owned()),
            "Coding" => match item.split_once('#') {
                None => Some("a Coding property takes system(|version)#code".to_owned()),
                Some((system, code)) => {
                    let system = system.split('|').next().unwrap_or(system);
                    v.code_system(system)
                        .filter(|cs| !cs.contains_key(code))
                        .map(|_| format!("the code is not defined in the code system {system}"))
                }
            },
            _ => None,
        };
        if problem.is_some() {
            return problem;
        }
    }
    None
}
