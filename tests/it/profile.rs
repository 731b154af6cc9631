//! The profile validator: the gateway's golden Bundles, the IPS 2.0.0 examples, and focused
//! checks, against the shipped definition packages (`conformance/packages`).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use mhg::validate::packages::Packages;
use mhg::validate::profile::{Finding, Severity, Validator};
use serde_json::{Value, json};

use crate::common::*;

pub fn packages_dir() -> PathBuf {
    root().join("conformance/packages")
}

pub fn shipped() -> Arc<Packages> {
    static P: OnceLock<Arc<Packages>> = OnceLock::new();
    P.get_or_init(|| {
        let mut p = Packages::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(packages_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "tgz"))
            .collect();
        files.sort();
        for f in files {
            p.add(&f).unwrap();
        }
        Arc::new(p)
    })
    .clone()
}

pub fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| Validator::new(shipped()))
}

fn errors(f: &[Finding]) -> Vec<String> {
    f.iter().filter(|f| f.severity == Severity::Error).map(|f| format!("{} {}: {}", f.code, f.expression, f.text)).collect()
}

#[test]
fn golden_bundles_have_no_errors() {
    let v = validator();
    let mut bad = Vec::new();
    for e in std::fs::read_dir(root().join("tests/golden/expected")).unwrap() {
        let p = e.unwrap().path();
        let b: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let f = v.validate(&b, &[]);
        for e in errors(&f) {
            bad.push(format!("{}: {e}", p.file_name().unwrap().to_string_lossy()));
        }
    }
    assert!(bad.is_empty(), "{} errors:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn ips_examples_have_no_errors() {
    let f = std::fs::File::open(packages_dir().join("hl7.fhir.uv.ips-2.0.0.tgz")).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let v = validator();
    let (mut n, mut bad) = (0, Vec::new());
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("package/example/") || !name.ends_with(".json") {
            continue;
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
        let r: Value = serde_json::from_slice(&bytes).unwrap();
        n += 1;
        for e in errors(&v.validate(&r, &[])) {
            bad.push(format!("{name}: {e}"));
        }
    }
    assert!(n > 30, "only {n} examples");
    assert!(bad.is_empty(), "{} errors:\n{}", bad.len(), bad.join("\n"));
}

/// data-driven: (resource, profiles, expected error expressions)
fn check(resource: Value, profiles: &[&str], expected: &[&str]) {
    let f = validator().validate(&resource, profiles);
    let mut got: Vec<String> = f.iter().filter(|f| f.severity == Severity::Error).map(|f| f.expression.clone()).collect();
    got.sort();
    got.dedup();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "{f:#?}");
}

#[test]
fn json_layer_and_primitives() {
    check(json!({"resourceType": "Patient", "gender": "male", "birthDate": "1990-01-01"}), &[], &[]);
    check(json!({"resourceType": "Patient", "foo": 1}), &[], &["Patient.foo"]);
    check(json!({"resourceType": "Patient", "birthDate": "1990-13-01"}), &[], &["Patient.birthDate"]);
    check(json!({"resourceType": "Patient", "name": {"family": "x"}}), &[], &["Patient.name"]);
    check(json!({"resourceType": "Patient", "active": "true"}), &[], &["Patient.active"]);
    check(json!({"resourceType": "Patient", "name": []}), &[], &["Patient.name"]);
    check(json!({"resourceType": "Patient", "name": [{}]}), &[], &["Patient.name[0]"]);
    check(json!({"resourceType": "Patient", "gender": "unknown-code"}), &[], &["Patient.gender"]);
    check(json!({"resourceType": "Patient", "id": "a_b"}), &[], &["Patient.id"]);
    check(
        json!({"resourceType": "Patient", "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1990-01-01T10:00:00Z"}]}}),
        &[],
        &[],
    );
    check(json!({"resourceType": "Nope"}), &[], &["Nope"]);
    check(
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueBoolean": true, "valueString": "x"}),
        &[],
        &["Observation"],
    );
}

#[test]
fn cardinality_and_profiles() {
    // Observation.status and .code are required.
    check(json!({"resourceType": "Observation"}), &[], &["Observation"]);
    // IPS Patient needs a name (min 1) and birthDate.
    let ips = "http://hl7.org/fhir/uv/ips/StructureDefinition/Patient-uv-ips";
    let f = validator().validate(&json!({"resourceType": "Patient"}), &[ips]);
    assert!(mhg::validate::profile::has_errors(&f), "{f:#?}");
    assert!(!validator().knows_profile("http://example.org/nope"));
}
