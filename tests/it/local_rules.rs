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
    assert!(has(
        p,
        "Patient.id",
        "not allowed on Resource.id ('http://hl7.org/fhir/StructureDefinition/data-absent-reason')"
    ));
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

fn warned(r: Value, at: &str, text: &str) -> bool {
    let w: Vec<String> = validator()
        .validate(&r, &[])
        .into_iter()
        .filter(|f| f.severity == Severity::Warning)
        .map(|f| format!("{}: {}", f.expression, f.text))
        .collect();
    let ok = w.iter().any(|m| m.starts_with(&format!("{at}: ")) && m.contains(text));
    if !ok {
        eprintln!("{w:?}");
    }
    ok
}

fn observation(subject: Value) -> Value {
    json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": subject})
}

#[test]
fn a_reference_without_reference_or_identifier_should_have_a_display() {
    // Reference_REF_NoDisplay (a warning)
    let ext = json!({"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]});
    assert!(warned(observation(ext), "Observation.subject", "should have a display"));
    assert!(!warned(observation(json!({"display": "someone"})), "Observation.subject", "should have a display"));
    assert!(!warned(
        observation(json!({"identifier": {"value": "1"}})),
        "Observation.subject",
        "should have a display"
    ));
}

#[test]
fn a_reference_is_one_token() {
    // REFERENCE_REF_INVALID_REF
    assert!(has(
        observation(json!({"reference": "http://x.org/fhir/Patient/1 2"})),
        "Observation.subject",
        "white space"
    ));
    assert!(!has(
        observation(json!({"reference": "http://x.org/fhir/Patient/1"})),
        "Observation.subject",
        "white space"
    ));
}

#[test]
fn a_conditional_reference_has_a_valid_query() {
    // REFERENCE_REF_QUERY_INVALID
    assert!(has(observation(json!({"reference": "Patient?identifier"})), "Observation.subject", "query"));
    assert!(has(observation(json!({"reference": "Patient?a=b=c"})), "Observation.subject", "query"));
    assert!(errors(observation(json!({"reference": "Patient?identifier=http://x|1&name=a"}))).is_empty());
}

#[test]
fn search_urls_as_references_only_in_transactions_and_batches() {
    // Reference_REF_Format1 / Reference_REF_Format2
    let b = |ty: &str, r: &str| {
        let mut e = json!({"fullUrl": "urn:uuid:0b6f5fd7-4c1d-4e4e-9d56-0d2b9a1b7c11", "resource": observation(json!({"reference": r}))});
        if ty == "transaction" {
            e["request"] = json!({"method": "POST", "url": "Observation"});
        }
        json!({"resourceType": "Bundle", "type": ty, "entry": [e]})
    };
    let at = "Bundle.entry[0].resource.subject";
    assert!(has(b("collection", "Patient?identifier=1"), at, "Type/id"));
    assert!(!has(b("transaction", "Patient?identifier=1"), at, "Type/id"));
    assert!(has(b("transaction", "x?identifier=1"), at, "Type/id"));
}

#[test]
fn primitive_white_space_and_reasonable_years() {
    // Type_Specific_Checks_DT_Primitive_WS, Type_Specific_Checks_DT_String_WS,
    // TYPE_SPECIFIC_CHECKS_DT_BASE64_NO_WS_WARNING, Type_Specific_Checks_DT_DateTime_Reasonable
    let p = |k: &str, v: Value| {
        let mut p = json!({"resourceType": "Patient"});
        p[k] = v;
        p
    };
    assert!(warned(p("name", json!([{"family": " Smith"}])), "Patient.name[0].family", "white space"));
    assert!(warned(p("name", json!([{"family": "   "}])), "Patient.name[0].family", "only be white space"));
    assert!(!warned(p("name", json!([{"family": "Smith"}])), "Patient.name[0].family", "white space"));
    assert!(warned(p("photo", json!([{"data": "aGVs bG8="}])), "Patient.photo[0].data", "white space"));
    assert!(warned(p("birthDate", json!("1700-01-01")), "Patient.birthDate", "reasonable years"));
    assert!(!warned(p("birthDate", json!("1970-01-01")), "Patient.birthDate", "reasonable years"));
}

#[test]
fn a_string_is_at_most_one_megabyte() {
    // Type_Specific_Checks_DT_String_Length
    let long = "a".repeat(1_048_577);
    assert!(has(
        json!({"resourceType": "Patient", "name": [{"family": long}]}),
        "Patient.name[0].family",
        "1 MB"
    ));
}

#[test]
fn a_primitive_value_is_not_in_its_element() {
    // ILLEGAL_PROPERTY
    let p = json!({"resourceType": "Patient", "birthDate": "1970-01-01", "_birthDate": {"value": "1970-01-02"}});
    assert!(has(p, "Patient.birthDate", "'value' is invalid"));
}

#[test]
fn primitive_values_hl7_refuses() {
    // Type_Specific_Checks_DT_Primitive_NotEmpty, Type_Specific_Checks_DT_Integer_LT0 / _LT1,
    // Type_Specific_Checks_DT_Instant_Valid
    assert!(has(json!({"resourceType": "Patient", "gender": ""}), "Patient.gender", "empty"));
    assert!(has(
        json!({"resourceType": "Patient", "photo": [{"size": -1}]}),
        "Patient.photo[0].size",
        "out of range"
    ));
    let cov = json!({"resourceType": "Coverage", "status": "active", "beneficiary": {"display": "x"},
                     "payor": [{"display": "y"}], "order": 0});
    assert!(has(cov, "Coverage.order", "out of range"));
    let obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "issued": "2024-02-30T10:00:00Z"});
    assert!(has(obs, "Observation.issued", "not a valid instant"));
}

#[test]
fn search_set_entries_match_the_type_searched_for() {
    // BUNDLE_SEARCH_ENTRY_WRONG_RESOURCE_TYPE_MODE, _NO_MODE (a warning), _OUTCOME
    let obs = json!({"resourceType": "Observation", "id": "1", "status": "final", "code": {"text": "x"}});
    let b = |search: Option<&str>| {
        let mut e = json!({"fullUrl": "http://x.org/fhir/Observation/1", "resource": obs});
        if let Some(m) = search {
            e["search"] = json!({"mode": m});
        }
        json!({"resourceType": "Bundle", "type": "searchset",
               "link": [{"relation": "self", "url": "http://x.org/fhir/Patient?name=a"}], "entry": [e]})
    };
    assert!(has(b(Some("match")), "Bundle.entry[0].resource", "not a matching resource type"));
    assert!(!has(b(Some("include")), "Bundle.entry[0].resource", "not a matching resource type"));
    assert!(warned(b(None), "Bundle.entry[0]", "not a matching resource type"));
    assert!(has(b(Some("outcome")), "Bundle.entry[0].resource", "must be an OperationOutcome"));
}

#[test]
fn a_message_starts_with_its_message_header() {
    // Validation_BUNDLE_Message, at HL7's path (its first entry numbered 1)
    let b = json!({"resourceType": "Bundle", "type": "message",
                   "entry": [{"fullUrl": "urn:uuid:0b6f5fd7-4c1d-4e4e-9d56-0d2b9a1b7c11", "resource": {"resourceType": "Patient"}}]});
    assert!(has(b, "Bundle.entry[1].resource", "MessageHeader"));
}

#[test]
fn a_document_stylesheet_is_fhirs_own_or_in_the_bundle() {
    // BUNDLE_LINK_STYELSHEET_NOT_FOUND, _EXTERNAL, _INSECURE, _LINKABLE (warnings)
    let doc = |url: &str| {
        json!({"resourceType": "Bundle", "type": "document", "link": [{"relation": "stylesheet", "url": url}],
               "entry": [{"fullUrl": "http://x.org/fhir/Binary/css", "resource": {"resourceType": "Binary", "id": "css", "contentType": "text/css"}}]})
    };
    assert!(has(doc("Binary/other"), "Bundle.link[0].url", "could not be resolved"));
    assert!(!has(doc("Binary/css"), "Bundle.link[0].url", "could not be resolved"));
    assert!(warned(doc("http://x.org/style.css"), "Bundle.link[0].url", "not secure"));
    assert!(warned(doc("https://x.org/style.css"), "Bundle.link[0].url", "external stylesheets"));
    assert!(!warned(doc("https://hl7.org/fhir/fhir.css"), "Bundle.link[0].url", "external stylesheets"));
    assert!(warned(doc("urn:x:style"), "Bundle.link[0].url", "not a resolvable link"));
}

#[test]
fn a_resource_language_is_said_in_its_narrative() {
    // Language_XHTML_Lang_Missing1/2/3, Language_XHTML_Lang_Different1/2 (warnings)
    let p = |attrs: &str, inner: &str| {
        let div = format!(r#"<div xmlns="http://www.w3.org/1999/xhtml"{attrs}>{inner}</div>"#);
        json!({"resourceType": "Patient", "language": "en", "text": {"status": "generated", "div": div}})
    };
    assert!(warned(p("", "x"), "Patient", "neither lang nor xml:lang"));
    assert!(warned(p(r#" lang="en""#, "x"), "Patient", "no xml:lang"));
    assert!(warned(p(r#" xml:lang="en""#, "x"), "Patient", "no lang"));
    assert!(warned(p(r#" lang="fr" xml:lang="fr""#, "x"), "Patient", "differ"));
    assert!(!warned(p(r#" lang="en" xml:lang="en""#, "x"), "Patient", "lang"));
    // A narrative of language divs: the first one speaks for it.
    assert!(!warned(
        p("", r#"<div lang="en" xml:lang="en">x</div><div lang="fr" xml:lang="fr">y</div>"#),
        "Patient",
        "lang"
    ));
}

#[test]
fn a_reference_matching_several_entries_is_ambiguous() {
    // Bundle_BUNDLE_MultipleMatches: two versions of one fullUrl (bdl-7 allows it)
    let pat = |v: &str| json!({"fullUrl": "http://x.org/fhir/Patient/1", "resource": {"resourceType": "Patient", "id": "1", "meta": {"versionId": v}}});
    let b = |r: &str| {
        json!({"resourceType": "Bundle", "type": "collection", "entry": [pat("1"), pat("2"),
            {"fullUrl": "http://x.org/fhir/Observation/o", "resource": observation(json!({"reference": r}))}]})
    };
    let at = "Bundle.entry[2].resource.subject";
    assert!(has(b("Patient/1"), at, "several entries"));
    assert!(has(b("http://x.org/fhir/Patient/1"), at, "several entries"));
    assert!(!has(b("Patient/1/_history/2"), at, "several entries"));
}

#[test]
fn an_attachment_says_what_it_holds() {
    // TYPE_SPECIFIC_CHECKS_DT_ATT_NO_CONTENT (a warning)
    let p = |a: Value| json!({"resourceType": "Patient", "photo": [a]});
    assert!(warned(p(json!({"title": "x"})), "Patient.photo[0]", "contentType"));
    assert!(!warned(p(json!({"contentType": "image/png"})), "Patient.photo[0]", "contentType"));
}

#[test]
fn a_contained_canonical_resource_has_an_absolute_url() {
    // TYPE_SPECIFIC_CHECKS_CANONICAL_CONTAINED
    let vs = json!({"resourceType": "ValueSet", "id": "vs", "url": "vs1", "status": "draft"});
    let p = json!({"resourceType": "Patient", "contained": [vs],
                   "extension": [{"url": "http://x.org/fhir/StructureDefinition/vs", "valueCanonical": "#vs"}]});
    assert!(has(p, "Patient.contained[0].url", "absolute"));
}

#[test]
fn bidi_controls_are_terminated() {
    // UNICODE_BIDI_CONTROLS_CHARS_MATCH (a warning)
    let p = |family: &str| json!({"resourceType": "Patient", "name": [{"family": family}]});
    assert!(warned(p("Smith\u{202e}txt.exe"), "Patient.name[0].family", "bi-directional"));
    assert!(!warned(p("Smith\u{202e}txt\u{202c}"), "Patient.name[0].family", "bi-directional"));
}

#[test]
fn decimals_beyond_the_common_range_are_warned_of() {
    // Type_Specific_Checks_DT_Decimal_Range (a warning)
    let q: Value = serde_json::from_str(
        r#"{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": 1234567890.123456789}}"#,
    )
    .expect("json");
    assert!(warned(q, "Observation.value.ofType(Quantity).value", "range"));
}

#[test]
fn html_in_markdown_is_warned_of() {
    // TYPE_SPECIFIC_CHECKS_DT_MARKDOWN_HTML (a warning by default)
    let c = |text: &str| json!({"resourceType": "Condition", "subject": {"reference": "Patient/1"}, "note": [{"text": text}]});
    assert!(warned(c("take <b>twice</b> daily"), "Condition.note[0].text", "HTML tag"));
    assert!(!warned(c("a < b and b > c"), "Condition.note[0].text", "HTML tag"));
}

#[test]
fn cross_version_extensions_are_defined_by_their_r5_element() {
    // R5's DeviceRequest.doNotPerform is a boolean and a modifier: a modifierExtension
    // (Extension_EXT_Modifier_N when used as an extension), with a boolean value.
    let url = "http://hl7.org/fhir/5.0/StructureDefinition/extension-DeviceRequest.doNotPerform";
    let req = |ext: Value, modifier: bool| {
        let mut r = json!({"resourceType": "DeviceRequest", "status": "completed", "intent": "order",
            "codeCodeableConcept": {"text": "pump"}, "subject": {"reference": "Patient/1"}});
        r[if modifier { "modifierExtension" } else { "extension" }] = json!([ext]);
        r
    };
    assert!(errors(req(json!({"url": url, "valueBoolean": true}), true)).is_empty());
    assert!(has(
        req(json!({"url": url, "valueBoolean": true}), false),
        &format!("DeviceRequest.extension[0][url='{url}']"),
        "modifierExtension"
    ));
    assert!(!errors(req(json!({"url": url, "valueString": "yes"}), true)).is_empty());
    // A path R5 does not have stays an unknown (modifier) extension.
    let unknown = "http://hl7.org/fhir/5.0/StructureDefinition/extension-DeviceRequest.noSuchElement";
    assert!(has(
        req(json!({"url": unknown, "valueBoolean": true}), true),
        "DeviceRequest.modifierExtension[0]",
        "unknown"
    ));
}

#[test]
fn a_regular_extension_is_not_a_modifier_extension() {
    // Extension_EXT_Modifier_Y
    let p = json!({"resourceType": "Patient", "modifierExtension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueAddress": {"city": "x"}}]});
    assert!(has(
        p,
        "Patient.modifierExtension[0][url='http://hl7.org/fhir/StructureDefinition/patient-birthPlace']",
        "must not be used as a modifierExtension"
    ));
}

fn search_parameter(extra: Value) -> Value {
    let mut sp = json!({"resourceType": "SearchParameter", "url": "http://example.org/fhir/SearchParameter/x", "name": "x",
        "status": "active", "description": "x", "code": "x", "base": ["Organization"], "type": "string",
        "expression": "Organization.name"});
    for (k, v) in extra.as_object().unwrap() {
        sp[k] = v.clone();
    }
    sp
}

#[test]
fn search_parameters_keep_what_they_derive_from() {
    // SEARCHPARAMETER_TYPE_WRONG, SEARCHPARAMETER_BASE_WRONG against R4 core's Organization-name
    let core = json!({"derivedFrom": "http://hl7.org/fhir/SearchParameter/Organization-name"});
    assert!(errors(search_parameter(core.clone())).is_empty());
    let mut t = core.clone();
    t["type"] = json!("token");
    assert!(has(search_parameter(t), "SearchParameter", "is different to the type string"));
    let mut b = core;
    b["base"] = json!(["Patient"]);
    b["expression"] = json!("Patient.name");
    assert!(has(search_parameter(b), "SearchParameter", "Patient is not listed as a base"));
    // An expression on another type than its bases.
    let e = json!({"base": ["Patient"], "expression": "Organization.name | Organization.alias"});
    assert!(has(search_parameter(e), "SearchParameter.expression", "'Organization' is not valid"));
    // SEARCHPARAMETER_MISSING_COMPONENTS
    let c = json!({"type": "composite", "component": [{"definition": "http://hl7.org/fhir/SearchParameter/Organization-name", "expression": "name"}]});
    assert!(has(search_parameter(c), "SearchParameter", "two or more components"));
}

#[test]
fn a_capability_statement_search_param_has_its_definition_s_type() {
    // CapabalityStatement_CS_SP_WrongType
    let cs = |ty: &str| {
        json!({"resourceType": "CapabilityStatement", "status": "active", "date": "2026-01-01", "kind": "instance",
            "fhirVersion": "4.0.1", "format": ["json"], "implementation": {"description": "x"},
            "rest": [{"mode": "server", "resource": [{"type": "AllergyIntolerance", "searchParam": [{"name": "clinical-status",
                "definition": "http://hl7.org/fhir/SearchParameter/AllergyIntolerance-clinical-status", "type": ty}]}]}]})
    };
    assert!(!errors(cs("token")).iter().any(|e| e.contains("Type mismatch")));
    assert!(has(
        cs("date"),
        "CapabilityStatement.rest[0].resource[0].searchParam[0]",
        "type is token, but type here is date"
    ));
}

#[test]
fn questionnaire_answers_keep_references_patterns_units_and_options() {
    // QUESTIONNAIRE_QR_ITEM_REF_INVALID(_GENERAL), _STRING_REGEX_EF, _DECIMAL_UNIT_FAIL_VS,
    // Questionnaire_QR_Item_BadOption, against a contained Questionnaire.
    let qr = |item: Value, answer: Value| {
        json!({"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": "#q",
            "contained": [{"resourceType": "Questionnaire", "id": "q", "status": "active", "item": [item]}],
            "item": [{"linkId": "a", "answer": [answer]}]})
    };
    let reference = json!({"linkId": "a", "type": "reference", "extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/questionnaire-referenceResource", "valueCode": "Patient"}]});
    assert!(errors(qr(reference.clone(), json!({"valueReference": {"reference": "Patient/1"}}))).is_empty());
    let at = "QuestionnaireResponse.item[0].answer[0].value.ofType(Reference)";
    assert!(has(
        qr(reference.clone(), json!({"valueReference": {"reference": "Organization/1"}})),
        at,
        "not allowed (allowed = Patient)"
    ));
    assert!(has(
        qr(reference, json!({"valueReference": {"reference": "https://example.org/Chicken/1"}})),
        at,
        "Chicken"
    ));
    let regex = json!({"linkId": "a", "type": "string", "extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/regex", "valueString": "[0-9]{3}"}]});
    assert!(errors(qr(regex.clone(), json!({"valueString": "123"}))).is_empty());
    assert!(has(
        qr(regex, json!({"valueString": "1234"})),
        "QuestionnaireResponse.item[0].answer[0].value.ofType(string)",
        "regex"
    ));
    // Units from a value set of ISO 3166 (which cannot be expanded here): UCUM is not in it.
    let units = json!({"linkId": "a", "type": "quantity", "extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/questionnaire-unitValueSet", "valueCanonical": "http://hl7.org/fhir/ValueSet/jurisdiction"}]});
    let km = json!({"valueQuantity": {"value": 1, "unit": "km", "system": "http://unitsofmeasure.org", "code": "km"}});
    assert!(has(
        qr(units, km),
        "QuestionnaireResponse.item[0].answer[0].value.ofType(Quantity)",
        "unit value set"
    ));
    let options = json!({"linkId": "a", "type": "choice", "answerValueSet": "http://hl7.org/fhir/ValueSet/administrative-gender"});
    let code = |c: &str, d: &str| json!({"valueCoding": {"system": "http://hl7.org/fhir/administrative-gender", "code": c, "display": d}});
    assert!(errors(qr(options.clone(), code("male", "Male"))).is_empty());
    assert!(has(
        qr(options, code("male", "Female")),
        "QuestionnaireResponse.item[0].answer[0]",
        "options value set"
    ));
}

#[test]
fn a_property_is_never_a_json_null() {
    // THIS_PROPERTY_MUST_BE__NOT_ (a complex element), _AN_SIMPLE_VALUE_NOT_ (a primitive),
    // _AN_ARRAY_NOT_ (a list); a null item of an array is another rule.
    let p = json!({"resourceType": "Patient", "meta": null, "birthDate": null, "name": null});
    assert!(has(p.clone(), "Patient.meta", "must be an Object, not a Null"));
    assert!(has(p.clone(), "Patient.birthDate", "must be a simple value, not a Null"));
    assert!(has(p, "Patient.name", "must be an Array, not a Null"));
}

#[test]
fn an_implementation_guide_s_global_profiles_apply_to_every_resource_of_their_type() {
    // ImplementationGuide.global, as HL7's validator applies the guides it loads.
    let sd = json!({"resourceType": "StructureDefinition", "url": "http://example.org/fhir/StructureDefinition/named-patient",
        "name": "NamedPatient", "status": "active", "kind": "resource", "abstract": false, "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient", "derivation": "constraint",
        "differential": {"element": [{"id": "Patient.name", "path": "Patient.name", "min": 1}]}});
    let ig = json!({"resourceType": "ImplementationGuide", "url": "http://example.org/fhir/ImplementationGuide/x", "name": "X",
        "status": "active", "packageId": "example.x", "fhirVersion": ["4.0.1"],
        "global": [{"type": "Patient", "profile": "http://example.org/fhir/StructureDefinition/named-patient"}]});
    let v = mhg::validate::profile::Validator::new(crate::profile::shipped()).with_loose([sd, ig]);
    let errs =
        |r: Value| v.validate(&r, &[]).into_iter().filter(|f| f.severity == Severity::Error).map(|f| f.expression).collect::<Vec<_>>();
    assert_eq!(errs(json!({"resourceType": "Patient", "active": true})), ["Patient"]);
    assert!(errs(json!({"resourceType": "Patient", "name": [{"family": "X"}]})).is_empty());
}

#[test]
fn a_differential_names_a_choice_by_one_type_only_when_it_constrains_it_to_that_type() {
    // ED_PATH_WRONG_TYPE_MATCH (Java's snapshot generator), at the definition.
    let sd = |element: Value| {
        json!({"resourceType": "StructureDefinition", "url": "http://example.org/fhir/StructureDefinition/obs",
            "name": "Obs", "status": "active", "kind": "resource", "abstract": false, "type": "Observation",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation", "derivation": "constraint",
            "differential": {"element": [element]}})
    };
    assert!(has(
        sd(json!({"id": "Observation.valueBla", "path": "Observation.valueBla"})),
        "StructureDefinition",
        "must be 'Observation.value[x]'"
    ));
    assert!(has(
        sd(json!({"id": "Observation.valueQuantity", "path": "Observation.valueQuantity"})),
        "StructureDefinition",
        "not constrained"
    ));
    let typed = sd(json!({"id": "Observation.valueQuantity", "path": "Observation.valueQuantity", "type": [{"code": "Quantity"}]}));
    assert!(!errors(typed).iter().any(|e| e.contains("not constrained")));
}

#[test]
fn a_bundled_target_s_profiles_must_be_known() {
    // Reference_REF_CantResolveProfile: the target is here, so it is checked against the
    // element's target profiles, which must resolve.
    let sd = json!({"resourceType": "StructureDefinition", "url": "http://example.org/fhir/StructureDefinition/obs-subject",
        "name": "ObsSubject", "status": "active", "kind": "resource", "abstract": false, "type": "Observation",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation", "derivation": "constraint",
        "differential": {"element": [{"id": "Observation.subject", "path": "Observation.subject",
            "type": [{"code": "Reference", "targetProfile": ["http://example.org/fhir/StructureDefinition/not-loaded"]}]}]}});
    let v = mhg::validate::profile::Validator::new(crate::profile::shipped()).with_loose([sd]);
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://example.org/fhir/Observation/1", "resource": {"resourceType": "Observation", "id": "1", "status": "final",
            "meta": {"profile": ["http://example.org/fhir/StructureDefinition/obs-subject"]},
            "code": {"text": "x"}, "subject": {"reference": "Patient/1"}}},
        {"fullUrl": "http://example.org/fhir/Patient/1", "resource": {"resourceType": "Patient", "id": "1"}}]});
    let f: Vec<String> = v
        .validate(&bundle, &[])
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("{}: {}", f.expression, f.text))
        .collect();
    assert!(
        f.iter().any(|e| e.starts_with("Bundle.entry[0].resource.subject: Unable to resolve the profile reference")),
        "{f:?}"
    );
}

#[test]
fn a_slice_s_minimum_is_its_own_not_the_sliced_element_s() {
    // A generated snapshot: effective[x] is required and type-sliced; the Period slice, with
    // no min of its own, is optional (an effectiveDateTime meets the profile), as in Java's.
    let sd = json!({"resourceType": "StructureDefinition", "url": "http://example.org/fhir/StructureDefinition/obs-effective",
        "name": "ObsEffective", "status": "active", "kind": "resource", "abstract": false, "type": "Observation",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation", "derivation": "constraint",
        "differential": {"element": [
            {"id": "Observation.effective[x]", "path": "Observation.effective[x]", "min": 1,
             "slicing": {"discriminator": [{"type": "type", "path": "$this"}], "rules": "open"},
             "type": [{"code": "dateTime"}, {"code": "Period"}]},
            {"id": "Observation.effective[x]:effectivePeriod", "path": "Observation.effective[x]", "sliceName": "effectivePeriod", "type": [{"code": "Period"}]},
            {"id": "Observation.effective[x]:effectivePeriod.start", "path": "Observation.effective[x].start", "min": 1}]}});
    let v = mhg::validate::profile::Validator::new(crate::profile::shipped()).with_loose([sd]);
    let obs = |effective: Value| {
        let mut o = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "meta": {"profile": ["http://example.org/fhir/StructureDefinition/obs-effective"]}});
        if let Value::Object(m) = effective {
            o.as_object_mut().unwrap().extend(m);
        }
        v.validate(&o, &[]).into_iter().filter(|f| f.severity == Severity::Error).map(|f| f.text).collect::<Vec<_>>()
    };
    assert_eq!(obs(json!({"effectiveDateTime": "2020-09-10"})), Vec::<String>::new());
    assert!(!obs(json!({})).is_empty());
}

#[test]
fn a_supplement_says_so_and_supplements_codes_of_its_base() {
    // CODESYSTEM_CS_HL7_PRESENT_ELEMENT_SUPPL_WRONG, CODESYSTEM_CS_SUPP_INVALID_CODE: a loaded
    // base (administrative-gender), and LOINC by the form of its codes.
    let cs = |supplements: &str, content: &str, code: &str| {
        json!({"resourceType": "CodeSystem", "url": "http://example.org/fhir/CodeSystem/supp", "name": "Supp", "status": "active",
            "content": content, "supplements": supplements, "concept": [{"code": code, "display": "x"}]})
    };
    let gender = "http://hl7.org/fhir/administrative-gender";
    assert!(!errors(cs(gender, "supplement", "male")).iter().any(|e| e.contains("supplement")));
    assert!(has(cs(gender, "complete", "male"), "CodeSystem.content", "content value of 'supplement'"));
    assert!(has(
        cs(gender, "supplement", "nope"),
        "CodeSystem.concept[0]",
        "not declared in the base CodeSystem"
    ));
    assert!(has(
        cs("http://loinc.org", "supplement", "test"),
        "CodeSystem.concept[0]",
        "not declared in the base CodeSystem"
    ));
    assert!(!errors(cs("http://loinc.org", "supplement", "8310-5")).iter().any(|e| e.contains("not declared")));
}

#[test]
fn a_parameterised_value_set_s_filter_expressions_name_its_parameters() {
    // VALUESET_BAD_FILTER_EXPR_LANG, _VALUE, _PARAM_NAME (the tools' valueset-parameter).
    let vs = |lang: &str, expr: &str| {
        json!({"resourceType": "ValueSet", "url": "http://example.org/fhir/ValueSet/p", "name": "P", "status": "active",
            "extension": [{"url": "http://hl7.org/fhir/tools/StructureDefinition/valueset-parameter",
                "extension": [{"url": "name", "valueCode": "p-inactive"}]}],
            "compose": {"include": [{"system": "http://snomed.info/sct", "filter": [{"property": "inactive", "op": "=",
                "_value": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/cqf-expression",
                    "valueExpression": {"language": lang, "expression": expr}}]}}]}]}})
    };
    let at = "ValueSet.compose.include[0].filter[0].extension[0].value.ofType(Expression)";
    let v = crate::profile::validator_with_engine();
    let errs = |r: Value| {
        v.validate(&r, &[])
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| format!("{}: {}", f.expression, f.text))
            .collect::<Vec<_>>()
    };
    assert!(!errs(vs("text/fhirpath", "%p-inactive")).iter().any(|e| e.starts_with(at)));
    assert!(errs(vs("text/fhirpath", "%p-other")).iter().any(|e| e.starts_with(at) && e.contains("unknown parameter 'p-other'")));
    assert!(errs(vs("text/cql", "%p-inactive")).iter().any(|e| e.starts_with(at) && e.contains("text/cql")));
    assert!(errs(vs("text/fhirpath", "$ and %p-inactive")).iter().any(|e| e.starts_with(at) && e.contains("not a valid FHIRPath")));
}

#[test]
fn a_measure_report_keeps_to_its_measure() {
    // MEASURE_MR_SCORE_PROHIBITED_MS, _SCORE_REQUIRED, _SCORE_VALUE_INVALID_01,
    // MEASURE_MR_GRP_STRAT_NO_CODE, _STRAT_MISSING_BY_CODE, _GRP_POP_MISSING_BY_CODE, against
    // a contained Measure.
    let pop =
        |code: &str| json!({"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-population", "code": code}]}});
    let report = |scoring: &str, group: Value| {
        json!({"resourceType": "MeasureReport", "status": "complete", "type": "summary", "measure": "#m",
            "period": {"start": "2026-01-01", "end": "2026-12-31"},
            "contained": [{"resourceType": "Measure", "id": "m", "status": "active",
                "scoring": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-scoring", "code": scoring}]},
                "group": [{"population": [pop("initial-population")],
                    "stratifier": [{"id": "by-age", "code": {"text": "age"}, "criteria": {"language": "text/cql", "expression": "Age"}}]}]}],
            "group": [group]})
    };
    let strat = json!([{"code": [{"text": "age"}]}]);
    let ok = json!({"population": [pop("initial-population")], "stratifier": strat});
    assert!(!errors(report("cohort", ok.clone())).iter().any(|e| e.starts_with("MeasureReport.group")));
    let mut scored = ok.clone();
    scored["measureScore"] = json!({"value": 0.5});
    assert!(has(report("cohort", scored.clone()), "MeasureReport.group[0].measureScore", "'cohort'"));
    assert!(has(report("proportion", ok.clone()), "MeasureReport.group[0]", "measureScore is required"));
    scored["measureScore"] = json!({"value": 2});
    assert!(has(report("proportion", scored), "MeasureReport.group[0].measureScore.value", "between 0 and 1"));
    let unnamed = json!({"population": [pop("initial-population")], "stratifier": [{"stratum": [{"value": {"text": "x"}}]}]});
    let e = errors(report("cohort", unnamed));
    assert!(
        e.iter().any(|e| e.starts_with("MeasureReport.group[0].stratifier[0]: ") && e.contains("stratifier definition")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|e| e.starts_with("MeasureReport.group[0]: ") && e.contains("(id = 'by-age')")),
        "{e:?}"
    );
    let no_pop = json!({"stratifier": strat});
    assert!(has(report("cohort", no_pop), "MeasureReport.group[0]", "does not include a population"));
}

#[test]
fn questionnaire_quantity_limits_compare_ucum_units() {
    // QUESTIONNAIRE_QR_ITEM_DECIMAL_MIN/MAX on quantities: UCUM units converted (m against
    // km); units of different kinds cannot be compared.
    let qr = |value: Value| {
        json!({"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": "#q",
            "contained": [{"resourceType": "Questionnaire", "id": "q", "status": "active", "item": [{"linkId": "a", "type": "quantity",
                "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-minQuantity",
                    "valueQuantity": {"value": 5, "unit": "km", "system": "http://unitsofmeasure.org", "code": "km"}}]}]}],
            "item": [{"linkId": "a", "answer": [{"valueQuantity": value}]}]})
    };
    let q = |v: f64, code: &str| json!({"value": v, "unit": code, "system": "http://unitsofmeasure.org", "code": code});
    let at = "QuestionnaireResponse.item[0].answer[0].value.ofType(Quantity)";
    assert!(errors(qr(q(6000.0, "m"))).is_empty());
    assert!(has(qr(q(4000.0, "m")), at, "less than the allowed minimum"));
    assert!(has(qr(q(6000.0, "kg")), at, "cannot be compared"));
}
