//! A StructureDefinition validated as a resource, held to its base and its kind as HL7's
//! validator holds it (`StructureDefinitionValidator`; each test names the catalogue key of
//! `conformance/validator-rules.csv` it covers), at HL7's locations.

use mhg::validate::profile::{Severity, Validator};
use serde_json::{Value, json};

use crate::profile::{shipped, validator};

fn errors_with(v: &Validator, r: &Value) -> Vec<String> {
    v.validate(r, &[]).into_iter().filter(|f| f.severity == Severity::Error).map(|f| format!("{}: {}", f.expression, f.text)).collect()
}

fn has(e: &[String], at: &str, text: &str) -> bool {
    let ok = e.iter().any(|m| m.starts_with(&format!("{at}: ")) && m.contains(text));
    if !ok {
        eprintln!("{e:?}");
    }
    ok
}

fn extension(url: &str, fixed_url: Option<&str>) -> Value {
    let mut url_elem = json!({"id": "Extension.url", "path": "Extension.url"});
    if let Some(f) = fixed_url {
        url_elem["fixedUri"] = json!(f);
    }
    json!({
        "resourceType": "StructureDefinition", "url": url, "name": "Ext", "status": "draft",
        "fhirVersion": "4.0.1", "kind": "complex-type", "abstract": false,
        "context": [{"type": "element", "expression": "Patient"}],
        "type": "Extension", "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "derivation": "constraint",
        "differential": {"element": [
            {"id": "Extension", "path": "Extension"},
            {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
            url_elem,
            {"id": "Extension.value[x]", "path": "Extension.value[x]", "type": [{"code": "string"}]}
        ]}
    })
}

fn profile(over: Value, elements: Value) -> Value {
    let mut sd = json!({
        "resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/p", "name": "P",
        "status": "draft", "fhirVersion": "4.0.1", "kind": "resource", "abstract": false, "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient", "derivation": "constraint",
        "differential": {"element": elements}
    });
    for (k, x) in over.as_object().into_iter().flatten() {
        if x.is_null() {
            sd.as_object_mut().map(|m| m.remove(k));
        } else {
            sd[k] = x.clone();
        }
    }
    sd
}

#[test]
fn an_extension_fixes_its_url_to_its_own() {
    // SD_EXTENSION_URL_MISSING, SD_EXTENSION_URL_MISMATCH
    let url = "http://example.org/StructureDefinition/ext";
    assert!(errors_with(validator(), &extension(url, Some(url))).is_empty());
    let e = errors_with(validator(), &extension(url, None));
    assert!(has(&e, "StructureDefinition", "is not fixed to the extension URL"));
    let e = errors_with(validator(), &extension(url, Some("http://example.org/StructureDefinition/other")));
    assert!(has(&e, "StructureDefinition", "doesn't match the canonical URL"));
}

#[test]
fn a_derived_extension_keeps_its_base_fixed_url() {
    // _DT_Fixed_Wrong with SD_ELEMENT_REASON_DERIVED, at the element's path
    let base_url = "http://example.org/StructureDefinition/ext-base";
    let base = extension(base_url, Some(base_url));
    let v = Validator::new(shipped()).with_loose([base]);
    let mut derived = extension(
        "http://example.org/StructureDefinition/ext-derived",
        Some("http://example.org/StructureDefinition/ext-derived"),
    );
    derived["baseDefinition"] = json!(base_url);
    let e = errors_with(&v, &derived);
    assert!(has(&e, "Extension.url", "must match the fixed value define in"));
    // SD_ELEMENT_FIXED_WRONG_TYPE: a fixed value of another type, at the value
    derived["differential"]["element"][2] = json!({"id": "Extension.url", "path": "Extension.url", "fixedString": base_url});
    let e = errors_with(&v, &derived);
    assert!(has(&e, "StructureDefinition.differential.element[2].fixedString[0]", "fixed type of 'uri'"));
    // The same fixed value is no error.
    derived["differential"]["element"][2] = json!({"id": "Extension.url", "path": "Extension.url", "fixedUri": base_url});
    assert!(errors_with(&v, &derived).is_empty());
}

#[test]
fn a_profile_keeps_its_bases_kind_and_type() {
    // SD_MUST_HAVE_DERIVATION, SD_CONSTRAINED_TYPE_NO_MATCH, SD_CONSTRAINED_KIND_NO_MATCH,
    // SD_DERIVATION_KIND_MISMATCH, SD_SPECIALIZED_TYPE_MATCHES: all at the resource
    let el = json!([{"id": "Patient", "path": "Patient"}]);
    assert!(errors_with(validator(), &profile(json!({}), el.clone())).is_empty());
    let e = errors_with(validator(), &profile(json!({"derivation": null}), el.clone()));
    assert!(has(&e, "StructureDefinition", "must have a derivation"));
    let e = errors_with(validator(), &profile(json!({"type": "Person"}), json!([{"id": "Person", "path": "Person"}])));
    assert!(has(&e, "StructureDefinition", "must be the same as the type in the base structure"));
    let e = errors_with(validator(), &profile(json!({"kind": "complex-type"}), el.clone()));
    assert!(has(&e, "StructureDefinition", "must be the same as the kind resource"));
    assert!(has(
        &e,
        "StructureDefinition",
        "constrains a kind of resource, but has a different kind (complex-type)"
    ));
    let e = errors_with(validator(), &profile(json!({"derivation": "specialization"}), el));
    assert!(has(&e, "StructureDefinition", "must not be the same as the type in the base structure"));
}

#[test]
fn element_paths_start_with_the_type_and_slice_only_what_repeats() {
    // SD_PATH_TYPE_MISMATCH, SD_PATH_NO_SLICING (at .slicing)
    let e = errors_with(
        validator(),
        &profile(
            json!({}),
            json!([{"id": "Patient", "path": "Patient"}, {"id": "Observation.status", "path": "Observation.status"},
                   {"id": "Patient.gender", "path": "Patient.gender", "slicing": {"discriminator": [{"type": "value", "path": "$this"}], "rules": "open"}}]),
        ),
    );
    assert!(has(
        &e,
        "StructureDefinition.differential.element[1]",
        "must start with the type of the structure Patient"
    ));
    assert!(has(
        &e,
        "StructureDefinition.differential.element[2].slicing",
        "Slicing is not allowed at 'Patient.gender'"
    ));
}

#[test]
fn constraints_only_where_the_type_gives_them_meaning() {
    // SD_ILLEGAL_CHARACTERISTICS, SD_ELEMENT_NOT_IN_CONSTRAINT
    let e = errors_with(
        validator(),
        &profile(
            json!({}),
            json!([{"id": "Patient", "path": "Patient"},
                   {"id": "Patient.active", "path": "Patient.active", "maxLength": 3},
                   {"id": "Patient.name", "path": "Patient.name", "type": [{"code": "HumanName"}], "minValueInteger": 1},
                   {"id": "Patient.gender", "path": "Patient.gender", "meaningWhenMissing": "unknown"},
                   {"id": "Patient.birthDate", "path": "Patient.birthDate", "type": [{"code": "date"}], "maxLength": 10}]),
        ),
    );
    assert!(has(&e, "StructureDefinition.differential.element[2]", "has a MinValue but the types [HumanName]"));
    assert!(has(
        &e,
        "StructureDefinition.differential.element[3]",
        "meaningWhenMissing which is not allowed in a profile"
    ));
    // maxLength on a date is allowed; without types of its own, the element is not judged.
    assert!(
        !e.iter().any(|m| m.starts_with("StructureDefinition.differential.element[4]")
            || m.starts_with("StructureDefinition.differential.element[1]"))
    );
}

#[test]
fn only_extensions_have_contexts() {
    // SD_NO_CONTEXT_WHEN_NOT_EXTENSION, SD_NO_CONTEXT_INV_WHEN_NOT_EXTENSION
    let sd = profile(
        json!({"context": [{"type": "element", "expression": "Patient"}], "contextInvariant": ["true", "true"]}),
        json!([{"id": "Patient", "path": "Patient"}]),
    );
    let e = errors_with(validator(), &sd);
    assert!(has(&e, "StructureDefinition.context[0]", "so an extension context should not be specified"));
    assert!(has(&e, "StructureDefinition.contextInvariant[0]", "context invariants should not be specified"));
}

#[test]
fn snapshot_values_have_the_elements_types() {
    // SD_VALUE_TYPE_IILEGAL (at fixed.ofType(T)), SD_NO_TYPES_OR_CONTENTREF
    let mut sd = profile(json!({}), json!([{"id": "Patient", "path": "Patient"}]));
    sd["snapshot"] = json!({"element": [
        {"id": "Patient", "path": "Patient", "min": 0, "max": "*"},
        {"id": "Patient.active", "path": "Patient.active", "min": 0, "max": "1", "type": [{"code": "boolean"}], "fixedString": "yes"},
        {"id": "Patient.gender", "path": "Patient.gender", "min": 0, "max": "1"}
    ]});
    let e = errors_with(validator(), &sd);
    assert!(has(
        &e,
        "StructureDefinition.snapshot.element[1].fixed.ofType(string)",
        "not in the list of allowed types (boolean)"
    ));
    assert!(has(&e, "StructureDefinition.snapshot.element[2]", "no assigned types, and no content reference"));
}

#[test]
fn a_versioned_extension_url_is_an_error_only_for_a_known_extension() {
    // EXT_VER_URL_NOT_ALLOWED / EXT_VER_URL_REVERSION (errors), EXT_VER_URL_NO_MATCH (a warning),
    // at `extension[i][url='...']` as HL7 locates them
    let p = |url: &str| json!({"resourceType": "Patient", "extension": [{"url": url, "valueCode": "unknown"}]});
    let known = "http://hl7.org/fhir/StructureDefinition/patient-birthTime|4.0.1";
    let at = format!("Patient.extension[0][url='{known}']");
    let e = errors_with(
        validator(),
        &json!({"resourceType": "Patient",
        "_birthDate": {"extension": [{"url": known, "valueDateTime": "2020-01-01T10:00:00Z"}]}, "birthDate": "2020-01-01"}),
    );
    assert!(
        has(&e, &format!("Patient.birthDate.extension[0][url='{known}']"), "must not carry a version"),
        "{at}"
    );
    let unknown = "http://example.org/fhir/StructureDefinition/nothing|1.0";
    let all = validator().validate(&p(unknown), &[]);
    let here = format!("Patient.extension[0][url='{unknown}']");
    assert!(all.iter().any(|f| f.expression == here && f.severity == Severity::Warning), "{all:?}");
    assert!(!all.iter().any(|f| f.expression == here && f.severity == Severity::Error), "{all:?}");
}
