//! Tests and findings: one `Observation` per result (lab, imaging, vital signs), a `Specimen`
//! where the record names one, and Observations for the TB class, the other classifications and
//! the assessment outcome (fitness to travel, validity, programme, destination).

use foldhash::{HashMap, HashMapExt};

use serde_json::{Value, json};

use super::util::{norm_datetime, reference, sid};
use super::{Builder, Request, parties, put};
use crate::ingest::Record;
use crate::ingest::record::{ResultValue, TestResult};
use crate::terminology::{PROP_METHOD, PROP_SPECIMEN};

const IPS_CANONICAL: &str = "http://hl7.org/fhir/uv/ips/";
const CATEGORY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const UCUM: &str = "http://unitsofmeasure.org";
/// Gateway extension: position of a specimen in a series (sputum 1 to 3).
pub const EXT_SPECIMEN_SEQUENCE: &str = "https://w3id.org/mhg/fhir/StructureDefinition/specimen-sequence";

pub struct Refs<'a> {
    pub patient: &'a str,
    pub site: &'a str,
    pub physician: Option<&'a str>,
}

pub fn results(b: &mut Builder, r: &Record, refs: &Refs) {
    let mut labs = HashMap::new();
    let pairs = bp_pairs(&r.results);
    for (i, res) in r.results.iter().enumerate() {
        if pairs.iter().any(|&(_, d)| d == i) {
            continue;
        }
        match pairs.iter().find(|&&(s, _)| s == i) {
            Some(&(s, d)) => bp_panel(b, r, Some((s, &r.results[s])), Some((d, &r.results[d])), refs),
            None if res.test == "bp-systolic" && panel_fit(res) => bp_panel(b, r, Some((i, res)), None, refs),
            None if res.test == "bp-diastolic" && panel_fit(res) => bp_panel(b, r, None, Some((i, res)), refs),
            None => observation(b, r, res, i, refs, &mut labs),
        }
    }
}

/// A reading that can be a component of a blood pressure panel: a quantity, with no specimen
/// or laboratory.
fn panel_fit(res: &TestResult) -> bool {
    matches!(res.specimen.as_deref(), None | Some("none")) && res.laboratory.is_none() && matches!(res.value, ResultValue::Quantity { .. })
}

/// Systolic and diastolic readings that belong together: taken at the same time, with the same
/// status, method, and no specimen or laboratory, both as quantities. They become one blood
/// pressure panel, as the FHIR R4 `bp` profile requires; nothing of either reading is lost (both
/// result ids are identifiers, both notes are kept). A reading that does not pair becomes a
/// panel of its own whose other component is absent (`dataAbsentReason` `not-performed`): R4
/// and HL7's validator hold an Observation coded as systolic blood pressure to the `bp`
/// profile, which needs both components.
fn bp_pairs(results: &[TestResult]) -> Vec<(usize, usize)> {
    let mut used = Vec::new();
    let mut pairs = Vec::new();
    for (i, s) in results.iter().enumerate().filter(|(_, r)| r.test == "bp-systolic") {
        let fits = |d: &TestResult| {
            d.collected == s.collected
                && d.resulted == s.resulted
                && d.status == s.status
                && d.method == s.method
                && matches!(d.specimen.as_deref(), None | Some("none"))
                && matches!(s.specimen.as_deref(), None | Some("none"))
                && d.laboratory.is_none()
                && s.laboratory.is_none()
                && matches!(d.value, ResultValue::Quantity { .. })
                && matches!(s.value, ResultValue::Quantity { .. })
        };
        if let Some(j) = results.iter().enumerate().position(|(j, d)| d.test == "bp-diastolic" && !used.contains(&j) && fits(d)) {
            used.push(j);
            pairs.push((i, j));
        }
    }
    pairs
}

fn effective(r: &Record, res: &TestResult) -> String {
    res.collected.as_deref().or(res.resulted.as_deref()).map(norm_datetime).unwrap_or_else(|| r.assessment.exam_date.clone())
}

const DATA_ABSENT: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";

/// One blood pressure panel from a systolic and a diastolic reading, or from one of them (the
/// other component then says it was not performed). The first reading given leads: its status,
/// time, method and result id identify the panel.
fn bp_panel(b: &mut Builder, r: &Record, sys: Option<(usize, &TestResult)>, dia: Option<(usize, &TestResult)>, refs: &Refs) {
    let Some((i, lead)) = sys.or(dia) else { return };
    let input = format!("/results/{i}");
    let out = b.next_entry_path();
    let code = b.coded("panel", "observation-code", "bp-panel", &[], || (format!("{input}/test"), format!("{out}.code")));
    let status = b.code_only("result-status", &lead.status, || (format!("{input}/status"), format!("{out}.status")));
    let category = b.term.all_targets("test-category", &lead.test, CATEGORY_SYSTEM);
    let mut obs = super::resource("Observation");
    if let Some(m) = b.profiles("Observation:bp-panel") {
        put(&mut obs, "meta", m);
    }
    let readings: Vec<&TestResult> = [sys, dia].into_iter().flatten().map(|(_, t)| t).collect();
    put(
        &mut obs,
        "identifier",
        Value::Array(readings.iter().map(|t| crate::obj! {"system": sid("result-id"), "value": t.result_id.as_str()}).collect()),
    );
    put(&mut obs, "status", status);
    put(
        &mut obs,
        "category",
        crate::arr![crate::obj! {"coding": category.into_iter().take(1).collect::<Vec<_>>()}],
    );
    put(&mut obs, "code", code);
    put(&mut obs, "subject", reference(refs.patient));
    put(&mut obs, "effectiveDateTime", effective(r, lead));
    if let Some(t) = &lead.resulted {
        put(&mut obs, "issued", norm_datetime(t));
    }
    put(&mut obs, "performer", crate::arr![reference(refs.site)]);
    let notes: Vec<Value> = readings.iter().filter_map(|t| t.note.as_ref()).map(|n| crate::obj! {"text": n.as_str()}).collect();
    if !notes.is_empty() {
        put(&mut obs, "note", Value::Array(notes));
    }
    if let Some(m) = &lead.method {
        let v = b.coded("method", "method", m, &[], || (format!("{input}/method"), format!("{out}.method")));
        put(&mut obs, "method", v);
    }
    let mut components = Vec::new();
    for (k, (test, reading)) in [("bp-systolic", sys), ("bp-diastolic", dia)].into_iter().enumerate() {
        let cin = reading.map_or_else(|| format!("{input}/test"), |(idx, _)| format!("/results/{idx}/test"));
        let cout = format!("{out}.component[{k}]");
        let code = b.coded("test", "test", test, &[], || (cin.clone(), format!("{cout}.code")));
        let Some((idx, res)) = reading else {
            let absent = crate::obj! {"coding": crate::arr![crate::obj! {"system": DATA_ABSENT, "code": "not-performed", "display": "Not Performed"}]};
            components.push(crate::obj! {"code": code, "dataAbsentReason": absent});
            continue;
        };
        let ResultValue::Quantity { quantity: q, unit, comparator } = &res.value else { continue };
        let v = quantity(b, q, unit, comparator.as_deref(), &format!("/results/{idx}/value"), &format!("{cout}.value"));
        components.push(crate::obj! {"code": code, "valueQuantity": v});
    }
    put(&mut obs, "component", Value::Array(components));
    b.add(
        &format!("result|{}", lead.result_id),
        obs,
        Request::ByIdentifier { system: sid("result-id"), value: lead.result_id.clone() },
        &input,
    );
}

fn quantity(b: &mut Builder, value: &serde_json::Number, unit: &str, comparator: Option<&str>, input: &str, output: &str) -> Value {
    let ucum = b.term.translate("unit", unit, &[]);
    let code = ucum.codings.first().and_then(|c| c.get("code")).cloned();
    if code.is_none() || !ucum.missing.is_empty() {
        b.issue(
            crate::error::Issue::new("code-invalid", "unit has no UCUM code in ConceptMap 'unit'")
                .at(format!("{input}/unit"))
                .expr(format!("{output}.code")),
        );
    }
    let mut q = crate::obj! {"value": Value::Number(value.clone())};
    if let Some(c) = comparator {
        put(&mut q, "comparator", c);
    }
    put(&mut q, "unit", unit);
    put(&mut q, "system", UCUM);
    put(&mut q, "code", code.unwrap_or(Value::Null));
    q
}

fn specimen(b: &mut Builder, res: &TestResult, kind: &str, input: &str, patient: &str) -> String {
    let out = b.next_entry_path();
    let ty = b.coded("specimen", "specimen", kind, &[], || (format!("{input}/specimen"), format!("{out}.type")));
    let mut sp = super::resource("Specimen");
    put(&mut sp, "meta", b.profiles("Specimen"));
    if let Some(seq) = res.sequence {
        put(
            &mut sp,
            "extension",
            crate::arr![crate::obj! {"url": EXT_SPECIMEN_SEQUENCE, "valuePositiveInt": seq}],
        );
    }
    put(
        &mut sp,
        "identifier",
        crate::arr![crate::obj! {"system": sid("specimen"), "value": res.result_id.as_str()}],
    );
    put(&mut sp, "status", "available");
    put(&mut sp, "type", ty);
    put(&mut sp, "subject", reference(patient));
    if let Some(c) = &res.collected {
        put(&mut sp, "collection", crate::obj! {"collectedDateTime": norm_datetime(c)});
    }
    b.add(
        &format!("specimen|{}", res.result_id),
        sp,
        Request::ByIdentifier { system: sid("specimen"), value: res.result_id.clone() },
        &format!("{input}/specimen"),
    )
}

fn observation(b: &mut Builder, r: &Record, res: &TestResult, i: usize, refs: &Refs, labs: &mut HashMap<String, String>) {
    let input = format!("/results/{i}");
    let method = res.method.as_deref().unwrap_or("");
    let spec = res.specimen.as_deref().unwrap_or("");
    let ctx: [(&str, &str); 2] = [(PROP_METHOD, method), (PROP_SPECIMEN, spec)];

    // Entries the Observation points at come first, so their full URLs are known.
    let specimen_ref = match res.specimen.as_deref() {
        Some(s) if s != "none" => Some(specimen(b, res, s, &input, refs.patient)),
        _ => None,
    };
    let lab_ref = res.laboratory.as_deref().map(|l| parties::laboratory(b, l, &format!("{input}/laboratory"), labs));

    let out = b.next_entry_path();
    let code = b.coded("test", "test", &res.test, &ctx, || (format!("{input}/test"), format!("{out}.code")));
    // Category (and so the profile) comes from ConceptMap `test-category`.
    let category = b.term.all_targets("test-category", &res.test, CATEGORY_SYSTEM);
    let category_code = category.first().and_then(|c| c["code"].as_str()).unwrap_or("").to_owned();
    if category.is_empty() {
        b.issue(
            crate::error::Issue::new("code-invalid", "test has no observation category in ConceptMap 'test-category'")
                .at(format!("{input}/test"))
                .expr(format!("{out}.category")),
        );
    }
    let status = b.code_only("result-status", &res.status, || (format!("{input}/status"), format!("{out}.status")));

    let mut obs = super::resource("Observation");
    let mut profiles: Vec<String> = b.term.profiles(&format!("Observation:test:{}", res.test)).to_vec();
    if profiles.is_empty() {
        profiles = b.term.profiles(&format!("Observation:{category_code}")).to_vec();
    }
    // IPS result profiles bind `status` to a value set without `entered-in-error` (profile
    // validator, golden 21): a withdrawn result claims only the base profiles.
    if status == "entered-in-error" {
        profiles.retain(|p| !p.starts_with(IPS_CANONICAL));
    }
    if !profiles.is_empty() {
        put(&mut obs, "meta", crate::obj! {"profile": profiles});
    }
    put(
        &mut obs,
        "identifier",
        crate::arr![crate::obj! {"system": sid("result-id"), "value": res.result_id.as_str()}],
    );
    put(&mut obs, "status", status);
    put(
        &mut obs,
        "category",
        crate::arr![crate::obj! {"coding": category.into_iter().take(1).collect::<Vec<_>>()}],
    );
    put(&mut obs, "code", code);
    put(&mut obs, "subject", reference(refs.patient));
    put(&mut obs, "effectiveDateTime", effective(r, res));
    if let Some(t) = &res.resulted {
        put(&mut obs, "issued", norm_datetime(t));
    }
    let mut performers = vec![reference(refs.site)];
    if let Some(l) = &lab_ref {
        performers.push(reference(l));
    }
    put(&mut obs, "performer", Value::Array(performers));

    match &res.value {
        ResultValue::Coded { coded } => {
            let v = b.coded("result-value", "result-value", coded, &ctx, || {
                (format!("{input}/value/coded"), format!("{out}.value"))
            });
            put(&mut obs, "valueCodeableConcept", v);
        }
        ResultValue::Quantity { quantity: q, unit, comparator } => {
            let v = quantity(b, q, unit, comparator.as_deref(), &format!("{input}/value"), &format!("{out}.value"));
            put(&mut obs, "valueQuantity", v);
        }
        ResultValue::Titer { titer } => {
            // "1:64" is a ratio of 1 to 64, which is how FHIR carries titers.
            let (n, d) = titer.split_once(':').unwrap_or(("1", titer));
            let num = |s: &str| s.parse::<u64>().map(Value::from).unwrap_or(Value::Null);
            put(
                &mut obs,
                "valueRatio",
                crate::obj! {"numerator": crate::obj! {"value": num(n)}, "denominator": crate::obj! {"value": num(d)}},
            );
        }
        ResultValue::Text { text } => put(&mut obs, "valueString", text.as_str()),
    }
    if let Some(n) = &res.note {
        put(&mut obs, "note", crate::arr![crate::obj! {"text": n.as_str()}]);
    }
    if let Some(m) = &res.method {
        let v = b.coded("method", "method", m, &ctx, || (format!("{input}/method"), format!("{out}.method")));
        put(&mut obs, "method", v);
    }
    if let Some(s) = &specimen_ref {
        put(&mut obs, "specimen", reference(s));
    }
    let mut components = Vec::new();
    for (ci, c) in res.components.iter().enumerate() {
        let cin = format!("{input}/components/{ci}");
        let cout = format!("{out}.component[{}]", components.len());
        let code = b.coded("igra-component", "igra-component", &c.name, &ctx, || {
            (format!("{cin}/name"), format!("{cout}.code"))
        });
        let q = quantity(b, &c.quantity, &c.unit, None, &cin, &format!("{cout}.value"));
        components.push(crate::obj! {"code": code, "valueQuantity": q});
    }
    for (fi, f) in res.findings.iter().enumerate() {
        let fin = format!("{input}/findings/{fi}");
        let cout = format!("{out}.component[{}]", components.len());
        let v = b.coded("cxr-finding", "cxr-finding", f, &[], || (fin.to_string(), format!("{cout}.value")));
        components.push(crate::obj! {
            "code": crate::obj! {"coding": crate::arr![b.term.gateway_coding("observation-code", "cxr-finding")]},
            "valueCodeableConcept": v,
        });
    }
    if !components.is_empty() {
        put(&mut obs, "component", Value::Array(components));
    }
    b.add(
        &format!("result|{}", res.result_id),
        obs,
        Request::ByIdentifier { system: sid("result-id"), value: res.result_id.clone() },
        &input,
    );
}

/// An Observation made by the panel physician at the exam (category `exam`), identified by the
/// assessment id and a suffix.
fn exam_observation(b: &mut Builder, r: &Record, refs: &Refs, suffix: &str, code: &str) -> (Value, String) {
    let ident = format!("{}/{suffix}", r.assessment.assessment_id);
    let mut obs = super::resource("Observation");
    put(
        &mut obs,
        "identifier",
        crate::arr![crate::obj! {"system": sid("assessment-observation"), "value": ident.as_str()}],
    );
    put(&mut obs, "status", "final");
    put(
        &mut obs,
        "category",
        json!([{"coding": [{"system": CATEGORY_SYSTEM, "code": "exam", "display": "Exam"}]}]),
    );
    put(
        &mut obs,
        "code",
        crate::obj! {"coding": crate::arr![b.term.gateway_coding("observation-code", code)]},
    );
    put(&mut obs, "subject", reference(refs.patient));
    put(&mut obs, "effectiveDateTime", r.assessment.exam_date.as_str());
    let mut performers = Vec::new();
    if let Some(p) = refs.physician {
        performers.push(reference(p));
    }
    performers.push(reference(refs.site));
    put(&mut obs, "performer", Value::Array(performers));
    (obs, ident)
}

pub fn classifications(b: &mut Builder, r: &Record, refs: &Refs) {
    let a = &r.assessment;
    // The assessment outcome: always present, as programme, kind and destination always are.
    let out = b.next_entry_path();
    let (mut obs, ident) = exam_observation(b, r, refs, "outcome", "assessment-outcome");
    let own = |b: &Builder, cs: &str, code: &str| crate::obj! {"coding": crate::arr![b.term.gateway_coding(cs, code)]};
    let mut comps = vec![
        crate::obj! {"code": own(b, "observation-code", "programme"), "valueCodeableConcept": own(b, "programme", &a.programme)},
        crate::obj! {"code": own(b, "observation-code", "assessment-kind"), "valueCodeableConcept": own(b, "assessment-kind", &a.kind)},
    ];
    let csys = b.country_system(&a.destination_country, || {
        ("/assessment/destinationCountry".to_owned(), format!("{out}.component[2].value"))
    });
    comps.push(crate::obj! {
        "code": own(b, "observation-code", "destination-country"),
        "valueCodeableConcept": crate::obj! {"coding": crate::arr![crate::obj! {"system": csys, "code": a.destination_country.as_str()}]},
    });
    if let Some(f) = a.fit_to_travel {
        comps.push(crate::obj! {"code": own(b, "observation-code", "fit-to-travel"), "valueBoolean": f});
    }
    if let Some(v) = &a.valid_until {
        comps.push(crate::obj! {"code": own(b, "observation-code", "valid-until"), "valueDateTime": v.as_str()});
    }
    put(&mut obs, "component", Value::Array(comps));
    if let Some(n) = &a.note {
        put(&mut obs, "note", crate::arr![crate::obj! {"text": n.as_str()}]);
    }
    b.add(
        &format!("assessment|{ident}"),
        obs,
        Request::ByIdentifier { system: sid("assessment-observation"), value: ident.clone() },
        "/assessment",
    );

    if let Some(tb) = &a.tb_classification {
        let out = b.next_entry_path();
        let (mut obs, ident) = exam_observation(b, r, refs, "tb-classification", "tb-classification");
        let v = b.coded("tb-classification", "tb-classification", tb, &[], || {
            ("/assessment/tbClassification".to_owned(), format!("{out}.value"))
        });
        put(&mut obs, "valueCodeableConcept", v);
        b.add(
            &format!("assessment|{ident}"),
            obs,
            Request::ByIdentifier { system: sid("assessment-observation"), value: ident.clone() },
            "/assessment/tbClassification",
        );
    }

    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, c) in a.other_classifications.iter().enumerate() {
        let input = format!("/assessment/otherClassifications/{i}");
        let n = seen.entry(c.condition.as_str()).or_insert(0);
        *n += 1;
        let suffix = if *n == 1 { format!("classification-{}", c.condition) } else { format!("classification-{}-{n}", c.condition) };
        let out = b.next_entry_path();
        let (mut obs, ident) = exam_observation(b, r, refs, &suffix, "condition-classification");
        let v = crate::obj! {"coding": crate::arr![b.term.gateway_coding("classification-class", &c.class)]};
        put(&mut obs, "valueCodeableConcept", v);
        if let Some(note) = &c.note {
            put(&mut obs, "note", crate::arr![crate::obj! {"text": note.as_str()}]);
        }
        let cond = b.coded("classification-condition", "classification-condition", &c.condition, &[], || {
            (format!("{input}/condition"), format!("{out}.component[0].value"))
        });
        put(
            &mut obs,
            "component",
            crate::arr![crate::obj! {
                "code": crate::obj! {"coding": crate::arr![b.term.gateway_coding("observation-code", "classified-condition")]},
                "valueCodeableConcept": cond,
            }],
        );
        b.add(
            &format!("assessment|{ident}"),
            obs,
            Request::ByIdentifier { system: sid("assessment-observation"), value: ident.clone() },
            &input,
        );
    }
}
