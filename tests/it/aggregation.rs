//! `type.aggregation` on a profile's Reference element, as HL7's validator checks it: where the
//! target may be (contained, in the Bundle, or elsewhere), on a profile written here.

use std::sync::OnceLock;

use serde_json::{Value, json};

use mhg::validate::profile::{Severity, Validator};

const ORG: &str = "http://example.org/fhir/StructureDefinition/org-bundled-endpoint";

fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| {
        let sd = |id: &str, url: &str, modes: Value| {
            json!({
                "resourceType": "StructureDefinition", "id": id, "url": url, "name": "OrgAgg", "status": "active",
                "fhirVersion": "4.0.1", "kind": "resource", "abstract": false, "type": "Organization",
                "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Organization", "derivation": "constraint",
                "differential": {"element": [{"id": "Organization.endpoint", "path": "Organization.endpoint",
                    "type": [{"code": "Reference", "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Endpoint"], "aggregation": modes}]}]}
            })
        };
        Validator::new(crate::profile::shipped())
            .with_loose([sd("a", ORG, json!(["bundled"])), sd("b", &format!("{ORG}-contained"), json!(["contained"]))])
    })
}

fn endpoint(id: &str) -> Value {
    json!({"resourceType": "Endpoint", "id": id, "status": "active",
           "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type", "code": "hl7-fhir-rest"},
           "payloadType": [{"text": "any"}], "address": "https://example.org/fhir"})
}

fn errors_at(r: &Value, profile: &str) -> Vec<String> {
    validator()
        .validate(r, &[profile])
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("{}: {}", f.expression, f.text))
        .collect()
}

fn collection(reference: &str) -> Value {
    json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://example.org/fhir/Organization/o1",
         "resource": {"resourceType": "Organization", "id": "o1", "meta": {"profile": [ORG]}, "name": "Lab", "endpoint": [{"reference": reference}]}},
        {"fullUrl": "http://example.org/fhir/Endpoint/e1", "resource": endpoint("e1")}
    ]})
}

#[test]
fn a_bundled_reference_must_resolve_in_the_bundle() {
    let e = errors_at(&collection("Endpoint/e1"), "http://hl7.org/fhir/StructureDefinition/Bundle");
    assert!(e.is_empty(), "{e:?}");
    let e = errors_at(&collection("Endpoint/elsewhere"), "http://hl7.org/fhir/StructureDefinition/Bundle");
    assert!(
        e.iter().any(|m| m.starts_with("Bundle.entry[0].resource.endpoint[0]: Bundled or contained reference not found")),
        "{e:?}"
    );
}

#[test]
fn a_contained_only_reference_may_not_point_into_the_bundle_or_outside() {
    let p = format!("{ORG}-contained");
    let mut org = json!({"resourceType": "Organization", "name": "Lab", "contained": [endpoint("e")], "endpoint": [{"reference": "#e"}]});
    assert!(errors_at(&org, &p).is_empty(), "{:?}", errors_at(&org, &p));
    org["endpoint"][0]["reference"] = json!("Endpoint/e9");
    let e = errors_at(&org, &p);
    assert!(
        e.iter().any(|m| m.starts_with("Organization.endpoint[0]: Bundled or contained reference not found")),
        "{e:?}"
    );
}
