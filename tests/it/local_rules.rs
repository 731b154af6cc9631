//! Rules of HL7's validator that need nothing beyond the resource itself, each as HL7's
//! validator states and locates it (its message key in `conformance/validator-rules.csv`).

use serde_json::{Value, json};

use crate::profile::validator;
use mhg::validate::profile::Severity;

fn errors(r: Value) -> Vec<String> {
    validator()
        .validate(&r, &[])
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("{}: {}", f.expression, f.text))
        .collect()
}

fn has(r: Value, at: &str, text: &str) -> bool {
    let e = errors(r);
    let ok = e.iter().any(|m| m.starts_with(&format!("{at}: ")) && m.contains(text));
    if !ok {
        eprintln!("{e:?}");
    }
    ok
}

#[test]
fn extension_url_is_absolute_outside_complex_extensions() {
    // Extension_EXT_URL_Absolute
    assert!(has(
        json!({"resourceType": "Patient", "extension": [{"url": "birthPlace", "valueString": "x"}]}),
        "Patient.extension[0]",
        "absolute"
    ));
}

#[test]
fn resource_id_takes_no_extensions() {
    // FHIR_RESOURCE_ID_CANT_BE_EXTENDED
    let p = json!({"resourceType": "Patient", "id": "a", "_id": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}});
    assert!(has(p, "Patient.id.extension[0]", "not allowed on Resource.id"));
}

#[test]
fn security_labels_are_a_set() {
    // Meta_RES_Security_Duplicate, at HL7's location
    let label = json!({"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"});
    let p = json!({"resourceType": "Patient", "meta": {"security": [label, label]}});
    assert!(has(p, "Patient.meta.profile[1]", "security label is repeated"));
    let other = json!({"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"});
    assert!(errors(json!({"resourceType": "Patient", "meta": {"security": [label, other]}})).is_empty());
}

#[test]
fn attachment_hash_is_the_sha1_of_its_data() {
    // TYPE_SPECIFIC_CHECKS_DT_ATT_HASH_MISMATCH: "aGVsbG8=" is "hello", whose SHA-1 is below.
    let doc = |hash: &str| {
        json!({"resourceType": "DocumentReference", "status": "current",
               "content": [{"attachment": {"contentType": "text/plain", "data": "aGVsbG8=", "hash": hash}}]})
    };
    assert!(errors(doc("qvTGHdzF6KLavt4PO0gs2a6pQ00=")).is_empty());
    assert!(has(doc("AAAAAAAAAAAAAAAAAAAAAAAAAAA="), "DocumentReference.content[0].attachment", "SHA-1"));
}

#[test]
fn uri_values_as_hl7_reads_them() {
    // Type_Specific_Checks_DT_URI_OID / _UUID, TYPE_SPECIFIC_CHECKS_DT_OID_VALID / _UUID_VALID
    let p = |system: &str| json!({"resourceType": "Patient", "identifier": [{"system": system, "value": "1"}]});
    for bad in ["oid:1.2.3", "uuid:0b6f5fd7-4c1d-4e4e-9d56-0d2b9a1b7c11", "urn:oid:2.16.840.1.113883.4.330.050", "urn:uuid:not-a-uuid"] {
        assert!(has(p(bad), "Patient.identifier[0].system", ""), "{bad}");
    }
    assert!(errors(p("urn:oid:2.16.840.1.113883.4.330.50")).is_empty());
}

#[test]
fn narrative_links_are_not_active_content() {
    // TYPE_SPECIFIC_CHECKS_DT_XHTML_ACTIVE_HREF
    let div = r#"<div xmlns="http://www.w3.org/1999/xhtml"><a href="javascript:alert(1)">x</a></div>"#;
    assert!(has(
        json!({"resourceType": "Patient", "text": {"status": "generated", "div": div}}),
        "Patient.text.div",
        "active content"
    ));
}

#[test]
fn identifiers_name_their_system_absolutely() {
    // TYPE_SPECIFIC_CHECKS_DT_IDENTIFIER_SYSTEM, _IETF_SYSTEM_VALUE
    let p = |system: &str, value: &str| json!({"resourceType": "Patient", "identifier": [{"system": system, "value": value}]});
    assert!(has(p("local-ids", "1"), "Patient.identifier[0]", "absolute reference"));
    assert!(has(p("urn:ietf:rfc:3986", "12345"), "Patient.identifier[0]", "full URI"));
    assert!(errors(p("urn:ietf:rfc:3986", "urn:uuid:0b6f5fd7-4c1d-4e4e-9d56-0d2b9a1b7c11")).is_empty());
    assert!(errors(p("ldap:dc=example", "1")).is_empty());
}

#[test]
fn text_alone_does_not_meet_a_required_binding() {
    // TERMINOLOGY_TX_CODE_VALUESET
    let a = json!({"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/1"}, "clinicalStatus": {"text": "active"}});
    assert!(has(a, "AllergyIntolerance.clinicalStatus", "a code is required from the value set"));
}

#[test]
fn code_system_urls_that_are_wrong_in_themselves() {
    // TERMINOLOGY_TX_SYSTEM_WRONG_BUILD, _WRONG_HTML, _INVALID, _HTTPS
    let obs = |system: &str| json!({"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": system, "code": "2093-3"}]}});
    for (system, text) in [
        ("http://build.fhir.org/codesystem-x", "build.fhir.org"),
        ("http://hl7.org/fhir/observation-status.html", "page of the FHIR specification"),
        ("http://loinc.org/", "invalid system URI"),
        ("https://loinc.org", "wrongly starts with https"),
    ] {
        assert!(has(obs(system), "Observation.code.coding[0]", text), "{system}");
    }
    assert!(errors(obs("http://loinc.org")).is_empty());
}

#[test]
fn reference_type_is_an_allowed_target_and_what_is_pointed_at() {
    // REFERENCE_REF_WRONGTARGET, REFERENCE_REF_BADTARGETTYPE
    let p = |reference: &str, ty: &str| json!({"resourceType": "Patient", "managingOrganization": {"reference": reference, "type": ty}});
    assert!(has(p("Organization/1", "Practitioner"), "Patient.managingOrganization", "not a valid Target"));
    assert!(has(p("Organization/1", "organization"), "Patient.managingOrganization", "Found organization"));
    assert!(errors(p("Organization/1", "Organization")).is_empty());
}
