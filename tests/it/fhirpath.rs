//! The FHIRPath façade as the profile validator uses it: invariant semantics, the gaps we fill
//! in octofhir (`{}.all()`, `resolve()` of `urn:uuid:` entries, callbacks), and real R4 / IPS
//! invariants on valid and invalid instances. The R4 model comes from the package cache.

use std::sync::Arc;

use mhg::validate::fhirpath::{Conformance, ErrorKind, FhirPath, FpValue, Terminology};
use serde_json::{Value, json};

use crate::common::*;
use crate::fhirpath_suite::{r4_engine, r4_model};

const ELE_1: &str = "hasValue() or (children().count() > id.count())";
const OBS_6: &str = "dataAbsentReason.empty() or value.empty()";
const OBS_7: &str = "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()";
const PER_1: &str = "start.hasValue().not() or end.hasValue().not() or (start <= end)";
const EXT_1: &str = "extension.exists() != value.exists()";
const IPS_PAT_1: &str = "family.exists() or given.exists() or text.exists()";

/// An invariant whose focus is the resource itself.
fn on_resource(expr: &str, r: &Value) -> bool {
    r4_engine().invariant(expr, r, r["resourceType"].as_str().unwrap(), r, r).unwrap()
}

fn golden() -> Value {
    read_json(&root().join("tests/golden/expected/30-shared-adult-refugee-clear.json"))
}

fn entry(bundle: &Value, ty: &str) -> Value {
    bundle["entry"].as_array().unwrap().iter().map(|e| e["resource"].clone()).find(|r| r["resourceType"] == ty).unwrap()
}

#[test]
fn an_empty_result_is_true_and_only_a_single_false_fails() {
    let p = json!({"resourceType": "Patient"});
    assert!(on_resource("name.given", &p), "empty: the constraint does not apply");
    assert!(on_resource("true", &p));
    assert!(!on_resource("false", &p));
    assert!(!on_resource("name.exists()", &p));
    assert!(on_resource("(false | true)", &p), "not a single false");
}

#[test]
fn all_on_an_empty_collection_is_true() {
    let fp = r4_engine();
    let p = json!({"resourceType": "Patient", "active": true});
    assert_eq!(fp.evaluate("Patient.contact.all(name.exists())", &p).unwrap(), vec![FpValue::Boolean(true)]);
    assert_eq!(fp.evaluate("{}.all(false)", &p).unwrap(), vec![FpValue::Boolean(true)]);
    assert!(on_resource("contact.all(name.exists()) and active", &p));
    assert!(!on_resource("contact.all(name.exists()).not()", &p));
    for (expr, want) in [("{}.allTrue()", true), ("{}.anyTrue()", false), ("{}.isDistinct()", true), ("{}.subsetOf(Patient.active)", true)]
    {
        assert_eq!(fp.evaluate(expr, &p).unwrap(), vec![FpValue::Boolean(want)], "{expr}");
    }
    let with = json!({"resourceType": "Patient", "contact": [{"gender": "male"}]});
    assert!(!on_resource("contact.all(name.exists())", &with));
}

#[test]
fn resolve_finds_bundle_entries_by_urn_uuid_and_by_type_and_id() {
    let fp = r4_engine();
    let bundle = golden();
    let obs = entry(&bundle, "Observation");
    assert!(fp.invariant("subject.resolve() is Patient", &obs, "Observation", &obs, &bundle).unwrap());
    assert!(fp.invariant("subject.resolve().birthDate.exists()", &obs, "Observation", &obs, &bundle).unwrap());
    assert!(!fp.invariant("subject.resolve() is Practitioner", &obs, "Observation", &obs, &bundle).unwrap());
    // The same through a prepared root and JSON Pointers.
    let prepared = fp.prepare(&bundle);
    let i = bundle["entry"].as_array().unwrap().iter().position(|e| e["resource"]["resourceType"] == "Observation").unwrap();
    let at = format!("/entry/{i}/resource");
    assert!(fp.invariant_at("subject.resolve() is Patient", &prepared, &at, "Observation", &at).unwrap());
    assert!(fp.invariant_at("%rootResource.type = 'transaction'", &prepared, &at, "Observation", &at).unwrap());

    let relative = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://x.org/fhir/Patient/p1", "resource": {"resourceType": "Patient", "id": "p1", "gender": "female"}},
        {"resource": {"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"},
            "contained": [{"resourceType": "Device", "id": "d1"}], "device": {"reference": "#d1"}}}
    ]});
    let o = &relative["entry"][1]["resource"];
    assert!(fp.invariant("subject.resolve().gender = 'female'", o, "Observation", o, &relative).unwrap());
    assert!(fp.invariant("device.resolve() is Device", o, "Observation", o, &relative).unwrap());
    assert!(
        fp.invariant(
            "(subject.reference = 'Patient/nobody') or performer.resolve().empty()",
            o,
            "Observation",
            o,
            &relative
        )
        .unwrap()
    );
}

#[test]
fn ele_1_on_elements_of_the_golden_patient() {
    let fp = r4_engine();
    let bundle = golden();
    let patient = entry(&bundle, "Patient");
    assert!(fp.invariant(ELE_1, &patient["name"][0], "HumanName", &patient, &bundle).unwrap());
    assert!(fp.invariant(ELE_1, &patient["birthDate"], "date", &patient, &bundle).unwrap());
    assert!(
        !fp.invariant(ELE_1, &json!({}), "HumanName", &patient, &bundle).unwrap(),
        "an element with nothing in it"
    );
    assert!(
        !fp.invariant(ELE_1, &json!({"id": "x"}), "HumanName", &patient, &bundle).unwrap(),
        "an id alone is not content"
    );
}

#[test]
fn observation_invariants() {
    let ok = json!({"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "valueQuantity": {"value": 70.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}});
    assert!(on_resource(OBS_6, &ok));
    assert!(on_resource(OBS_7, &ok));
    let mut both = ok.clone();
    both["dataAbsentReason"] = json!({"text": "unknown"});
    assert!(!on_resource(OBS_6, &both), "obs-6: value and dataAbsentReason together");
    let mut same_code = ok.clone();
    same_code["component"] = json!([{"code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]}, "valueString": "x"}]);
    assert!(!on_resource(OBS_7, &same_code), "obs-7: a component with the Observation's own code");
    assert!(on_resource(OBS_6, &entry(&golden(), "Observation")));
    assert!(on_resource(OBS_7, &entry(&golden(), "Observation")));
    // Typed navigation of value[x] (what ips-1 and Quantity comparisons need).
    assert!(on_resource("value is Quantity", &ok));
    assert!(on_resource("value > 70 'kg'", &ok));
    assert!(on_resource("value.ofType(Quantity).value = 70.5", &ok));
}

#[test]
fn period_extension_and_ips_invariants() {
    let fp = r4_engine();
    let r = json!({"resourceType": "Encounter"});
    let per = |p: Value| fp.invariant(PER_1, &p, "Period", &r, &r).unwrap();
    assert!(per(json!({"start": "2024-01-01", "end": "2024-02-01T10:00:00Z"})));
    assert!(per(json!({"start": "2024-01-01"})));
    assert!(!per(json!({"start": "2024-03-01", "end": "2024-02-01"})), "per-1: ends before it starts");

    let ext = |e: Value| fp.invariant(EXT_1, &e, "Extension", &r, &r).unwrap();
    assert!(ext(json!({"url": "http://x.org/a", "valueString": "v"})));
    assert!(ext(json!({"url": "http://x.org/a", "extension": [{"url": "b", "valueBoolean": true}]})));
    assert!(!ext(
        json!({"url": "http://x.org/a", "valueString": "v", "extension": [{"url": "b", "valueBoolean": true}]})
    ));
    assert!(!ext(json!({"url": "http://x.org/a"})));

    let patient = entry(&golden(), "Patient");
    let name = |n: Value| fp.invariant(IPS_PAT_1, &n, "HumanName", &patient, &patient).unwrap();
    assert!(name(patient["name"][0].clone()));
    assert!(name(json!({"text": "only a text"})));
    assert!(!name(json!({"use": "official"})), "ips-pat-1: a name with no part");
    // The IPS invariant as the IPS package states it.
    let ips = crate::fhirpath_suite::ips_patient_constraint("ips-pat-1");
    assert_eq!(ips, IPS_PAT_1);
}

#[test]
fn fhir_primitives_and_inheritance_are_typed() {
    let p = json!({"resourceType": "Patient", "active": true, "birthDate": "1970-01-02", "gender": "female"});
    for expr in [
        "birthDate is date",
        "Patient.active is FHIR.boolean",
        "Patient.active.is(Boolean).not()",
        "gender is code",
        "gender.as(string).empty()",
        "Patient is DomainResource",
        "Patient is Resource",
        "birthDate < @2000-01-01",
        "birthDate.type().name = 'date'",
    ] {
        assert!(on_resource(expr, &p), "{expr}");
    }
    let model = r4_model();
    assert!(model.derives_from("Age", "Quantity"));
    assert!(model.derives_from("Observation.component", "BackboneElement"));
    assert!(model.derives_from("Observation.component", "Element"));
    assert!(!model.derives_from("code", "string"));
    let item = model.element("Questionnaire.item", "item").unwrap();
    assert_eq!(item.types, ["Questionnaire.item"], "contentReference");
    let value = model.element("Observation", "value").unwrap();
    assert!(value.choice && value.types.iter().any(|t| t == "Quantity"));
}

#[test]
fn html_checks_accepts_plain_narrative() {
    let p = json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>A patient</p></div>"}});
    assert!(on_resource("text.div.htmlChecks()", &p));
    // txt-1 and txt-2 of R4 core on Narrative.
    let fp = r4_engine();
    assert!(fp.invariant("htmlChecks()", &p["text"]["div"], "xhtml", &p, &p).unwrap());
    assert!(fp.invariant("htmlChecks()", &p["text"]["div"], "xhtml", &p, &p).unwrap());
}

struct Tx;
impl Terminology for Tx {
    fn member_of(&self, system: &str, code: &str, value_set: &str) -> Option<bool> {
        (value_set == "http://hl7.org/fhir/ValueSet/administrative-gender").then(|| {
            (system.is_empty() || system == "http://hl7.org/fhir/administrative-gender")
                && ["male", "female", "other", "unknown"].contains(&code)
        })
    }
}

struct Conf;
impl Conformance for Conf {
    fn conforms_to(&self, resource: &Value, profile: &str) -> Option<bool> {
        (profile == "http://x.org/adult").then(|| resource["birthDate"].as_str().is_some_and(|d| d < "2006"))
    }
}

#[test]
fn member_of_and_conforms_to_go_through_callbacks() {
    let fp = FhirPath::with_callbacks(r4_model(), Some(Arc::new(Tx)), Some(Arc::new(Conf))).unwrap();
    let p = json!({"resourceType": "Patient", "gender": "female", "birthDate": "1990-05-05",
        "maritalStatus": {"coding": [{"system": "http://x.org/cs", "code": "zz"}]}});
    let eval = |e: &str| fp.evaluate(e, &p).unwrap();
    assert_eq!(
        eval("gender.memberOf('http://hl7.org/fhir/ValueSet/administrative-gender')"),
        vec![FpValue::Boolean(true)]
    );
    assert_eq!(
        eval("maritalStatus.memberOf('http://hl7.org/fhir/ValueSet/administrative-gender')"),
        vec![FpValue::Boolean(false)]
    );
    assert_eq!(eval("gender.memberOf('http://x.org/unknown-vs')"), vec![], "unknown value set: empty");
    assert_eq!(eval("conformsTo('http://x.org/adult')"), vec![FpValue::Boolean(true)]);
    assert!(fp.evaluate("conformsTo('http://x.org/unknown')", &p).is_err(), "an unknown profile is an error");
    // Without callbacks: empty, never a guess.
    assert_eq!(
        r4_engine().evaluate("gender.memberOf('http://hl7.org/fhir/ValueSet/administrative-gender')", &p).unwrap(),
        vec![]
    );
}

#[test]
fn errors_name_the_construct_never_the_data() {
    let fp = r4_engine();
    let e = fp.parse("name.where(").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Parse);
    assert!(fp.parse(ELE_1).is_ok());
    let p = json!({"resourceType": "Patient", "name": [{"family": "Zyxwvutsrq"}]});
    for expr in ["name.family.toInteger() + 'x'", "name.family + 1", "(name.family | 'a').single()", "iif(name.family, 1, 2)"] {
        if let Err(e) = fp.evaluate(expr, &p) {
            assert!(!e.to_string().contains("Zyxwvutsrq"), "{expr}: {e}");
        }
    }
}

/// octofhir adds and multiplies unchecked: overflow panics (decimals always, integers where
/// overflow checks are on, as in tests and fuzzing). The façade answers an error for that
/// expression, and the engine goes on working.
#[test]
fn arithmetic_overflow_is_an_error_not_a_panic() {
    let fp = r4_engine();
    let p = json!({"resourceType": "Patient", "name": [{"family": "A"}]});
    let exprs = ["7922816251426433759354395033.5 * 1000.0", "9223372036854775807 + 1 = 0"];
    for expr in exprs {
        match fp.evaluate(expr, &p) {
            Err(e) => assert_eq!(e.code, "MHG-PANIC", "{expr}: {e}"),
            Ok(v) => assert!(!cfg!(debug_assertions) || !expr.contains('*'), "{expr}: {v:?}"),
        }
        let _ = fp.invariant(expr, &p, "Patient", &p, &p);
    }
    let e = fp.evaluate(exprs[0], &p).unwrap_err();
    assert_eq!(e.code, "MHG-PANIC");
    if cfg!(debug_assertions) {
        assert_eq!(fp.evaluate(exprs[1], &p).unwrap_err().code, "MHG-PANIC");
    }
    assert!(fp.invariant(IPS_PAT_1, &p["name"][0], "HumanName", &p, &p).unwrap());
    assert_eq!(fp.evaluate("1 + 1", &p).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usable_from_tokio_workers_and_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<FhirPath>();
    let fp = r4_engine();
    let p = json!({"resourceType": "Patient", "name": [{"family": "A"}]});
    // Directly on a worker (no nested runtime is created, so nothing panics)...
    assert!(fp.invariant(IPS_PAT_1, &p["name"][0], "HumanName", &p, &p).unwrap());
    // ...and under spawn_blocking, from several tasks at once.
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (fp, p) = (fp.clone(), p.clone());
            tokio::task::spawn_blocking(move || fp.invariant(ELE_1, &p["name"][0], "HumanName", &p, &p).unwrap())
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap());
    }
}
