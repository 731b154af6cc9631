//! An OperationDefinition's input and output profiles cross-checked against its parameters
//! (HL7's `OPDEF_PROFILE_*` rules), and the published invariants HL7's validator evaluates in a
//! corrected form (`opd-3` among them), on definitions written here.

use serde_json::{Value, json};

use std::sync::OnceLock;

use mhg::validate::profile::load::load;
use mhg::validate::profile::{Finding, Severity, Validator};

const IN: &str = "http://example.org/fhir/StructureDefinition/op-in";

fn in_profile() -> Value {
    json!({
        "resourceType": "StructureDefinition", "url": IN, "version": "1.0.0", "name": "OpIn", "status": "active",
        "fhirVersion": "4.0.1", "kind": "resource", "abstract": false, "type": "Parameters",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Parameters", "derivation": "constraint",
        "differential": {"element": [
            {"id": "Parameters.parameter", "path": "Parameters.parameter",
             "slicing": {"discriminator": [{"type": "value", "path": "name"}], "rules": "open"}},
            {"id": "Parameters.parameter:subject", "path": "Parameters.parameter", "sliceName": "subject", "min": 1, "max": "1"},
            {"id": "Parameters.parameter:subject.name", "path": "Parameters.parameter.name", "fixedString": "subject"},
            {"id": "Parameters.parameter:subject.value[x]", "path": "Parameters.parameter.value[x]",
             "type": [{"code": "Reference", "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Patient"]}]},
            {"id": "Parameters.parameter:subject.resource", "path": "Parameters.parameter.resource", "max": 0},
            {"id": "Parameters.parameter:subject.part", "path": "Parameters.parameter.part", "max": "0"},
            {"id": "Parameters.parameter:extra", "path": "Parameters.parameter", "sliceName": "extra", "min": 0, "max": "1"},
            {"id": "Parameters.parameter:extra.name", "path": "Parameters.parameter.name", "fixedString": "extra"}
        ]}
    })
}

/// The shipped definitions plus the profile above, with the FHIRPath engine (invariants).
fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("op-in.json");
        std::fs::write(&file, in_profile().to_string()).unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        load(&root.join("conformance/packages"), &[], &[file]).unwrap()
    })
}

fn opdef(params: Value) -> Value {
    json!({"resourceType": "OperationDefinition", "url": "http://example.org/fhir/OperationDefinition/op", "name": "Op",
           "status": "active", "kind": "operation", "code": "op", "system": true, "type": false, "instance": false,
           "inputProfile": IN, "parameter": params})
}

fn at(f: &[Finding], severity: Severity) -> Vec<String> {
    let mut v: Vec<String> = f.iter().filter(|x| x.severity == severity).map(|x| x.expression.clone()).collect();
    v.sort();
    v
}

#[test]
fn parameters_that_agree_with_the_input_profile_pass() {
    let od = opdef(json!([
        {"name": "subject", "use": "in", "min": 1, "max": "1", "type": "Reference",
         "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Patient"]}
    ]));
    let f = validator().validate(&od, &[]);
    assert!(at(&f, Severity::Error).is_empty(), "{f:?}");
    // The profile's `extra` slice is not among the operation's parameters: a warning at the profile.
    assert!(at(&f, Severity::Warning).contains(&"OperationDefinition.inputProfile".to_owned()), "{f:?}");
}

#[test]
fn cardinality_types_and_targets_that_differ_are_errors_at_the_parameter() {
    let od = opdef(json!([
        {"name": "other", "use": "in", "min": 0, "max": "1", "type": "string"},
        {"name": "subject", "use": "in", "min": 0, "max": "*", "type": "Reference",
         "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Group"]}
    ]));
    let f = validator().validate(&od, &[]);
    let errors: Vec<&Finding> = f.iter().filter(|x| x.severity == Severity::Error).collect();
    assert!(errors.iter().all(|e| e.expression == "OperationDefinition.inputProfile.parameter[1]"), "{f:?}");
    let text = |s: &str| errors.iter().any(|e| e.text.contains(s));
    assert!(text("'min'") && text("'max'"), "{f:?}");
    // Group is named by the operation, not the profile; Patient by the profile, not the operation.
    assert!(text("'http://hl7.org/fhir/StructureDefinition/Group' is not allowed"), "{f:?}");
    assert!(text("'http://hl7.org/fhir/StructureDefinition/Patient' is allowed"), "{f:?}");
    // `other` is in the operation only: a warning at its own index.
    assert!(
        at(&f, Severity::Warning).contains(&"OperationDefinition.inputProfile.parameter[0]".to_owned()),
        "{f:?}"
    );
}

#[test]
fn an_input_profile_that_is_unknown_or_not_on_parameters_is_an_error() {
    let mut od = opdef(json!([]));
    od.as_object_mut().unwrap().remove("parameter");
    od["inputProfile"] = json!("http://example.org/fhir/StructureDefinition/nowhere");
    assert_eq!(at(&validator().validate(&od, &[]), Severity::Error), ["OperationDefinition.inputProfile"]);
    od["inputProfile"] = json!("http://hl7.org/fhir/StructureDefinition/Patient");
    assert_eq!(at(&validator().validate(&od, &[]), Severity::Error), ["OperationDefinition.inputProfile"]);
}

#[test]
fn a_resource_parameter_may_name_target_profiles() {
    // R4's opd-3 as published refuses this; HL7's validator evaluates the corrected form, which
    // allows target profiles on parameters whose type is a resource type.
    let od = json!({"resourceType": "OperationDefinition", "url": "http://example.org/fhir/OperationDefinition/op2",
    "name": "Op2", "status": "active", "kind": "operation", "code": "op2", "system": true, "type": false, "instance": false,
    "parameter": [
        {"name": "q", "use": "in", "min": 0, "max": "1", "type": "Questionnaire",
         "targetProfile": ["http://example.org/fhir/StructureDefinition/q"]},
        {"name": "s", "use": "in", "min": 0, "max": "1", "type": "string",
         "targetProfile": ["http://example.org/fhir/StructureDefinition/q"]}
    ]});
    let f = validator().validate(&od, &[]);
    let e: Vec<&Finding> = f.iter().filter(|x| x.severity == Severity::Error).collect();
    assert_eq!(e.len(), 1, "{f:?}");
    assert_eq!(e[0].expression, "OperationDefinition.parameter[1]");
    assert!(e[0].text.contains("opd-3"));
}

#[test]
fn timing_offsets_are_judged_on_every_when() {
    // tim-9 as published (`when in (...)`) cannot be evaluated on two `when`s; HL7's validator
    // evaluates each one.
    let mr = |when: Value| {
        json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
               "medicationCodeableConcept": {"text": "x"}, "subject": {"reference": "Patient/1"},
               "dosageInstruction": [{"timing": {"repeat": {"offset": 30, "when": when}}}]})
    };
    let f = validator().validate(&mr(json!(["MORN", "EVE"])), &[]);
    assert!(f.iter().all(|x| !x.text.contains("tim-9")), "{f:?}");
    let f = validator().validate(&mr(json!(["MORN", "CM"])), &[]);
    assert_eq!(at(&f, Severity::Error), ["MedicationRequest.dosageInstruction[0].timing.repeat"], "{f:?}");
}

#[test]
fn an_operation_whose_base_chain_leads_back_to_it_is_an_error() {
    // OPDEF_CIRCULAR_DEFINITION: a -> b -> a.
    let op = |url: &str, base: &str| {
        json!({"resourceType": "OperationDefinition", "url": url, "base": base, "name": "Op", "status": "active",
               "kind": "operation", "code": "op", "system": true, "type": false, "instance": false})
    };
    let (a, b) = ("http://example.org/fhir/OperationDefinition/a", "http://example.org/fhir/OperationDefinition/b");
    // Both loaded, as a package carrying them would have them.
    let v = Validator::new(crate::profile::shipped()).with_loose([op(a, b), op(b, a)]);
    let f = v.validate(&op(a, b), &[]);
    assert!(
        f.iter().any(|x| x.severity == Severity::Error && x.expression == "OperationDefinition" && x.text.contains("circular")),
        "{f:?}"
    );
    let f = v.validate(&op(a, "http://example.org/fhir/OperationDefinition/elsewhere"), &[]);
    assert!(f.iter().all(|x| !x.text.contains("circular")), "{f:?}");
}
