//! Mappings are data: overrides replace codes without a rebuild, and broken mapping files are
//! refused at start-up with the file and the field.

use std::path::Path;

use mhg::pipeline::Pipeline;
use serde_json::json;

use crate::common::*;

fn load_with(overrides: &[&Path]) -> Result<Pipeline, mhg::error::GatewayError> {
    let r = root();
    let o: Vec<_> = overrides.iter().map(|p| p.to_path_buf()).collect();
    Pipeline::load(&r.join("mappings"), &o, &r.join("conformance"), 32)
}

#[test]
fn override_replaces_a_group() {
    let dir = tempfile::tempdir().unwrap();
    let mut cm = read_json(&root().join("mappings/conceptmaps/ConceptMap-vaccine.json"));
    // A destination's own code for MMR in an extra, national system.
    cm["group"] = json!([{
        "source": "https://w3id.org/mhg/fhir/CodeSystem/vaccine",
        "target": "https://example.org/national-vaccines",
        "element": [{"code": "mmr", "target": [{"code": "NAT-MMR", "equivalence": "equivalent"}]}]
    }]);
    std::fs::write(dir.path().join("vaccine.json"), cm.to_string()).unwrap();
    let p = load_with(&[dir.path()]).expect("loads");
    let b = p.convert_value(&read_json(&root().join("tests/golden/records/30-shared-adult-refugee-clear.json"))).unwrap().bundle;
    let text = b.to_string();
    assert!(text.contains("NAT-MMR"), "override applied");
    assert!(text.contains("http://hl7.org/fhir/sid/cvx"), "other groups kept");
}

#[test]
fn override_dropping_a_required_code_is_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let mut cm = read_json(&root().join("mappings/conceptmaps/ConceptMap-vaccine.json"));
    let groups = cm["group"].as_array_mut().unwrap();
    let cvx = groups.iter_mut().find(|g| g["target"] == "http://hl7.org/fhir/sid/cvx").unwrap();
    cvx["element"].as_array_mut().unwrap().retain(|e| e["code"] != "mmr");
    std::fs::write(dir.path().join("vaccine.json"), cm.to_string()).unwrap();
    let e = load_with(&[dir.path()]).err().expect("refused").to_string();
    assert!(e.contains("vaccine.json") && e.contains("mmr") && e.contains("cvx"), "{e}");
}

#[test]
fn broken_mapping_file_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.json"),
        json!({"resourceType": "ConceptMap", "url": "https://x/cm", "group": [{"source": "a", "target": "b", "element": [{"code": "c", "target": [{"code": "d"}]}]}]}).to_string(),
    )
    .unwrap();
    let e = load_with(&[dir.path()]).err().expect("refused").to_string();
    assert!(e.contains("bad.json") && e.contains("group[0].element[0].target[0].equivalence"), "{e}");
    std::fs::write(dir.path().join("bad.json"), "{ not json").unwrap();
    let e = load_with(&[dir.path()]).err().expect("refused").to_string();
    assert!(e.contains("bad.json") && e.contains("not valid JSON"), "{e}");
}

/// Every concept of every gateway CodeSystem has a display and a definition; every ConceptMap
/// target that is not `unmatched` has a code.
#[test]
fn shipped_definitions_are_complete() {
    for dir in ["mappings/codesystems", "mappings/conceptmaps"] {
        for f in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = f.unwrap().path();
            let v = read_json(&path);
            assert!(v["url"].as_str().is_some_and(|u| !u.is_empty()), "{}", path.display());
            assert_eq!(v["status"], "active", "{}", path.display());
            for c in v["concept"].as_array().into_iter().flatten() {
                assert!(c["display"].is_string() && c["definition"].is_string(), "{}: {c}", path.display());
            }
        }
    }
}
