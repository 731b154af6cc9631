//! The official FHIRPath R4 test suite (`../shared/test-suites/fhirpath-r4`, or
//! `MHG_FHIRPATH_SUITE`) against our engine, with a committed list of known failures
//! (`conformance/fhirpath-r4-known-failures.txt`: name, a tab, a reason category of
//! docs/fhirpath-engine-evaluation.md).
//!
//! Fails on a failing test that is not on the list (a regression) and on a listed test that now
//! passes (remove it from the list). Prints the tally.
//!
//! Results are compared by type: decimals by value, dates and times without `@`/`@T` and with
//! `Z` as `+00:00`, Quantities by value and unit; `predicate="true"` turns the result into a
//! boolean, `ordered="false"` compares as a multiset, an `invalid=` test passes on any error.
//! The 5 tests on `parameters-example-types` (no JSON form) are skipped and counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use mhg::validate::fhirpath::{Conformance, FhirPath, FpValue, TypeModel};
use mhg::validate::packages::Packages;
use serde_json::Value;

use crate::common::*;
use crate::support::peer_packages;

/// The R4 core type model, from `hl7.fhir.r4.examples` 4.0.1 in the package cache (built once).
pub fn r4_model() -> Arc<TypeModel> {
    static M: OnceLock<Arc<TypeModel>> = OnceLock::new();
    M.get_or_init(|| {
        let mut p = Packages::new();
        p.add(&peer_packages().join("hl7.fhir.r4.examples#4.0.1")).unwrap();
        let started = std::time::Instant::now();
        let model = TypeModel::from_packages(&p);
        eprintln!("TypeModel from R4 core: {} types in {:?} (debug build)", model.len(), started.elapsed());
        Arc::new(model)
    })
    .clone()
}

pub fn r4_engine() -> Arc<FhirPath> {
    static E: OnceLock<Arc<FhirPath>> = OnceLock::new();
    E.get_or_init(|| Arc::new(FhirPath::new(r4_model()).unwrap())).clone()
}

/// The expression of an invariant of the IPS Patient profile, as the package states it.
pub fn ips_patient_constraint(key: &str) -> String {
    let mut p = Packages::new();
    p.add(&peer_packages().join("hl7.fhir.uv.ips#2.0.0")).unwrap();
    let sd = p.resolve("http://hl7.org/fhir/uv/ips/StructureDefinition/Patient-uv-ips").unwrap();
    sd["snapshot"]["element"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["constraint"].as_array().into_iter().flatten())
        .find(|c| c["key"] == key)
        .and_then(|c| c["expression"].as_str())
        .unwrap()
        .to_owned()
}

/// The suite's `conformsTo()` tests name core StructureDefinitions only; the validator's answer
/// for those is "is the resource of that type (or a subtype)", which the model knows. An unknown
/// profile stays unknown (an error).
struct CoreTypes(Arc<TypeModel>);

impl Conformance for CoreTypes {
    fn conforms_to(&self, resource: &Value, profile: &str) -> Option<bool> {
        let name = profile.strip_prefix("http://hl7.org/fhir/StructureDefinition/")?;
        self.0.get(name)?;
        Some(self.0.derives_from(resource["resourceType"].as_str()?, name))
    }
}

fn suite_dir() -> PathBuf {
    std::env::var("MHG_FHIRPATH_SUITE").map(PathBuf::from).unwrap_or_else(|_| root().join("../shared/test-suites/fhirpath-r4"))
}

/// `1.50` = `1.5`, `-0.0` = `0`.
fn decimal(text: &str) -> String {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let mut s = t.to_owned();
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    let s = s.trim_start_matches('0');
    let s = if s.is_empty() || s.starts_with('.') { format!("0{s}") } else { s.to_owned() };
    if neg && s != "0" { format!("-{s}") } else { s }
}

fn temporal(text: &str) -> String {
    let t = text.trim().trim_start_matches('@').trim_start_matches('T');
    t.replace('Z', "+00:00")
}

/// `4 'kg'`, `1 '1'`, `3 days`.
fn quantity(text: &str) -> (String, String) {
    let (v, u) = text.trim().split_once(' ').unwrap_or((text.trim(), "1"));
    (decimal(v), u.trim().trim_matches('\'').to_owned())
}

/// The type of an untyped expected output, from its literal.
fn literal_type(text: &str) -> &'static str {
    let t = text.trim();
    if t == "true" || t == "false" {
        "boolean"
    } else if t.starts_with("@T") {
        "time"
    } else if t.starts_with('@') {
        if t.contains('T') { "dateTime" } else { "date" }
    } else if t.contains(' ') {
        "Quantity"
    } else if t.contains('.') {
        "decimal"
    } else if t.parse::<i64>().is_ok() {
        "integer"
    } else {
        "string"
    }
}

fn matches(ty: &str, text: &str, got: &FpValue) -> bool {
    match (ty, got) {
        ("boolean", FpValue::Boolean(b)) => text.trim() == b.to_string(),
        ("integer", FpValue::Integer(i)) => text.trim().parse::<i64>().is_ok_and(|e| e == *i),
        ("integer" | "decimal", FpValue::Decimal(d)) => decimal(text) == decimal(d),
        ("decimal", FpValue::Integer(i)) => decimal(text) == i.to_string(),
        ("date" | "dateTime" | "time" | "instant", FpValue::Date(d) | FpValue::DateTime(d) | FpValue::Time(d)) => {
            temporal(text) == temporal(d)
        }
        ("Quantity", FpValue::Quantity { value, unit }) => {
            let (v, u) = quantity(text);
            v == decimal(value) && u == unit.as_deref().unwrap_or("1").trim_matches('\'')
        }
        (_, FpValue::String(s)) => !matches!(ty, "boolean" | "integer" | "decimal" | "Quantity") && s == text,
        _ => false,
    }
}

struct Case {
    name: String,
    input: Option<String>,
    expression: String,
    invalid: bool,
    predicate: bool,
    unordered: bool,
    outputs: Vec<(String, String)>,
}

fn cases(xml: &str) -> Vec<Case> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("test"))
        .map(|t| {
            let expr = t.children().find(|c| c.has_tag_name("expression")).unwrap();
            Case {
                name: t.attribute("name").unwrap().to_owned(),
                input: t.attribute("inputfile").map(|f| f.trim_end_matches(".xml").trim_end_matches(".json").to_owned()),
                expression: expr.text().unwrap_or_default().to_owned(),
                invalid: expr.attribute("invalid").is_some() || t.attribute("invalid").is_some(),
                predicate: t.attribute("predicate") == Some("true"),
                unordered: t.attribute("ordered") == Some("false"),
                outputs: t
                    .children()
                    .filter(|c| c.has_tag_name("output"))
                    .map(|o| {
                        let text = o.text().unwrap_or_default().to_owned();
                        let ty = o.attribute("type").map(str::to_owned).unwrap_or_else(|| literal_type(&text).to_owned());
                        (ty, text)
                    })
                    .collect(),
            }
        })
        .collect()
}

/// `Ok(())` when the case passes, else what went wrong.
fn run(fp: &FhirPath, case: &Case, input: &Value) -> Result<(), String> {
    let result = fp.evaluate(&case.expression, input);
    if case.invalid {
        return match result {
            Err(_) => Ok(()),
            Ok(v) => Err(format!("expected an error, got {v:?}")),
        };
    }
    let mut got = result.map_err(|e| format!("unexpected error: {e}"))?;
    if case.predicate {
        got = vec![FpValue::Boolean(!got.is_empty())];
    }
    let ok = got.len() == case.outputs.len()
        && if case.unordered {
            let mut used = vec![false; got.len()];
            case.outputs.iter().all(|(ty, text)| {
                let hit = (0..got.len()).find(|&i| !used[i] && matches(ty, text, &got[i]));
                hit.map(|i| used[i] = true).is_some()
            })
        } else {
            case.outputs.iter().zip(&got).all(|((ty, text), g)| matches(ty, text, g))
        };
    if ok { Ok(()) } else { Err(format!("expected {:?}, got {got:?}", case.outputs)) }
}

#[test]
fn official_r4_suite_has_no_regressions() {
    let dir = suite_dir();
    let xml = std::fs::read_to_string(dir.join("tests-fhir-r4.xml")).unwrap();
    let known: BTreeMap<String, String> = std::fs::read_to_string(root().join("conformance/fhirpath-r4-known-failures.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("#"))
        .map(|l| {
            let (n, why) = l.split_once('\t').unwrap_or_else(|| panic!("known-failures line without a tab: {l}"));
            (n.to_owned(), why.to_owned())
        })
        .collect();
    let model = r4_model();
    let fp = FhirPath::with_callbacks(model.clone(), None, Some(Arc::new(CoreTypes(model)))).unwrap();
    let mut inputs: BTreeMap<String, Option<Value>> = BTreeMap::new();
    let (mut runnable, mut passed, mut skipped) = (0, 0, 0);
    let (mut regressions, mut fixed) = (Vec::new(), Vec::new());
    let mut seen = BTreeSet::new();
    for case in cases(&xml) {
        seen.insert(case.name.clone());
        let input = match &case.input {
            None => Value::Null,
            Some(base) => {
                let v = inputs.entry(base.clone()).or_insert_with(|| {
                    std::fs::read(dir.join("input").join(format!("{base}.json"))).ok().map(|b| serde_json::from_slice(&b).unwrap())
                });
                match v {
                    Some(v) => v.clone(),
                    None => {
                        skipped += 1;
                        continue;
                    }
                }
            }
        };
        runnable += 1;
        match (run(&fp, &case, &input), known.contains_key(&case.name)) {
            (Ok(()), false) => passed += 1,
            (Ok(()), true) => {
                passed += 1;
                fixed.push(case.name.clone());
            }
            (Err(_), true) => {}
            (Err(why), false) => regressions.push(format!(
                "{}\t{}\n    {}\n    {why}",
                case.name,
                case.expression.trim(),
                case.input.as_deref().unwrap_or("-")
            )),
        }
    }
    let stale: Vec<&String> = known.keys().filter(|k| !seen.contains(*k)).collect();
    eprintln!(
        "FHIRPath R4 suite: {passed}/{runnable} passed ({skipped} skipped: no JSON input; {} known failures)",
        known.len()
    );
    assert!(
        regressions.is_empty(),
        "{} tests fail and are not in the known-failures list:\n{}",
        regressions.len(),
        regressions.join("\n")
    );
    assert!(
        fixed.is_empty(),
        "these tests now pass: remove them from conformance/fhirpath-r4-known-failures.txt: {fixed:?}"
    );
    assert!(stale.is_empty(), "the known-failures list names tests the suite does not have: {stale:?}");
    assert_eq!(skipped, 5, "only the parameters-example-types tests are skipped");
}
