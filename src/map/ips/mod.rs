//! The record as an **International Patient Summary** document: a `Bundle` of type `document`
//! meeting IPS 2.0.0's `Bundle-uv-ips`, made from the transaction Bundle the mapping produced (the
//! same resources, full URLs, identifiers and Provenance, so that a document and a transaction
//! of one record can be matched), with a Composition first and a generated narrative in every
//! resource and section ([`narrative`]). [`page`] turns the same narratives into one printable
//! HTML page.
//!
//! Sections: the three IPS requires (problems, allergies, medications), which a health assessment
//! record does not carry, each with an `emptyReason` and a narrative saying so; immunizations,
//! results (the assessment, TB screening and classification, laboratory and imaging) and vital
//! signs, each referencing its entries; pregnancy when the record has a pregnancy status.
//!
//! Invariants (absences): no I/O, no clock, no randomness. The document's timestamp is the
//! transaction's (the record's own instant), every id is derived from the record, so the same
//! record gives the same bytes.
//!
//! Must not know: the record schema (it reads FHIR JSON only), validation (the pipeline gates the
//! document), transport.

mod narrative;
pub mod page;
mod text;

use serde_json::{Map, Value};

use super::util::{sid, uuid_for};
use narrative::{IMMUNIZATION_HEAD, Names, OBSERVATION_HEAD, table};
use text::{esc, label, party_name};

pub const BUNDLE_PROFILE: &str = "http://hl7.org/fhir/uv/ips/StructureDefinition/Bundle-uv-ips";
pub const COMPOSITION_PROFILE: &str = "http://hl7.org/fhir/uv/ips/StructureDefinition/Composition-uv-ips";

/// Test codes (the gateway's `CodeSystem/test`) that belong to TB screening.
const TB_TESTS: &[&str] = &["igra", "tst", "chest-xray", "sputum-smear", "sputum-culture", "mtb-naat"];

/// One Composition section: LOINC code, title, entries (full URLs), narrative.
struct Section {
    code: &'static str,
    display: &'static str,
    title: &'static str,
    entries: Vec<String>,
    div: String,
    /// Set when the record has nothing for a section IPS requires.
    empty_reason: bool,
}

/// Which section an entry belongs to.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Immunization,
    Vital,
    Pregnancy,
    Assessment,
    Tb,
    Result,
    Other,
}

/// The gateway code of a CodeableConcept in the gateway's CodeSystem `cs`.
fn gateway_code<'v>(cc: &'v Value, cs: &str) -> Option<&'v str> {
    let system = format!("{}/CodeSystem/{cs}", crate::terminology::BASE);
    cc.get("coding")?.as_array()?.iter().find(|c| c["system"] == system.as_str())?.get("code")?.as_str()
}

fn kind(r: &Value) -> Kind {
    match r["resourceType"].as_str().unwrap_or_default() {
        "Immunization" => Kind::Immunization,
        "Observation" => {
            let category = r["category"].as_array().into_iter().flatten().flat_map(|c| c["coding"].as_array().into_iter().flatten());
            if category.clone().any(|c| c["code"] == "vital-signs") {
                return Kind::Vital;
            }
            if let Some(code) = gateway_code(&r["code"], "observation-code") {
                return match code {
                    "tb-classification" => Kind::Tb,
                    _ => Kind::Assessment,
                };
            }
            match gateway_code(&r["code"], "test") {
                Some("pregnancy-status") => Kind::Pregnancy,
                Some(t) if TB_TESTS.contains(&t) => Kind::Tb,
                _ => Kind::Result,
            }
        }
        _ => Kind::Other,
    }
}

/// `resource` with `id` (from its `urn:uuid:` full URL) and `text` in their usual places.
fn with_id_and_text(resource: &Value, full_url: &str, div: Value) -> Value {
    let Some(obj) = resource.as_object() else { return resource.clone() };
    let mut out = Map::with_capacity(obj.len() + 2);
    out.insert("resourceType".into(), obj.get("resourceType").cloned().unwrap_or(Value::Null));
    let id = obj.get("id").cloned().unwrap_or_else(|| Value::from(full_url.strip_prefix("urn:uuid:").unwrap_or(full_url)));
    out.insert("id".into(), id);
    if let Some(m) = obj.get("meta") {
        out.insert("meta".into(), m.clone());
    }
    out.insert("text".into(), div);
    for (k, v) in obj {
        if !matches!(k.as_str(), "resourceType" | "id" | "meta" | "text") {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn empty_section(code: &'static str, display: &'static str, title: &'static str, what: &str) -> Section {
    Section {
        code,
        display,
        title,
        entries: Vec::new(),
        div: format!("<p>The source health assessment record holds no {}: none are known to this summary.</p>", esc(what)),
        empty_reason: true,
    }
}

fn section(code: &'static str, display: &'static str, title: &'static str, entries: Vec<String>, div: String, what: &str) -> Section {
    if entries.is_empty() {
        return empty_section(code, display, title, what);
    }
    Section { code, display, title, entries, div, empty_reason: false }
}

fn section_json(s: &Section) -> Value {
    let mut v = crate::obj! {
        "title": s.title,
        "code": crate::obj! {"coding": crate::arr![crate::obj! {"system": "http://loinc.org", "code": s.code, "display": s.display}]},
        "text": narrative::text(&s.div),
    };
    if s.empty_reason {
        v["emptyReason"] = crate::obj! {"coding": crate::arr![crate::obj! {
        "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason", "code": "unavailable", "display": "Unavailable"}]};
    } else {
        v["entry"] = Value::Array(s.entries.iter().map(|u| crate::obj! {"reference": u.as_str()}).collect());
    }
    v
}

/// The parts of a document before it is JSON.
struct Parts {
    title: String,
    summary_div: String,
    sections: Vec<Section>,
}

/// The IPS document of a mapped transaction Bundle (see the module doc).
pub fn document(transaction: &Value) -> Value {
    let (parts, entries, refs) = build(transaction);
    let tx_id = transaction["identifier"]["value"].as_str().unwrap_or_default();
    let timestamp = transaction["timestamp"].clone();
    let composition_id = uuid_for(&format!("Composition|ips|{tx_id}")).to_string();
    let mut composition = crate::obj! {
        "resourceType": "Composition",
        "id": composition_id.as_str(),
        "meta": crate::obj! {"profile": crate::arr![COMPOSITION_PROFILE]},
        "text": narrative::text(&parts.summary_div),
        "identifier": crate::obj! {"system": sid("ips-document"), "value": tx_id},
        "status": "final",
        "type": crate::obj! {"coding": crate::arr![crate::obj! {"system": "http://loinc.org", "code": "60591-5", "display": "Patient summary Document"}]},
        "subject": crate::obj! {"reference": refs.patient.as_str()},
        "date": timestamp.clone(),
        "author": crate::arr![crate::obj! {"reference": refs.author.as_str()}],
        "title": parts.title.as_str(),
    };
    if let Some(c) = &refs.custodian {
        composition["custodian"] = crate::obj! {"reference": c.as_str()};
    }
    composition["section"] = Value::Array(parts.sections.iter().map(section_json).collect());
    let mut out = Vec::with_capacity(entries.len() + 1);
    out.push(crate::obj! {"fullUrl": format!("urn:uuid:{composition_id}"), "resource": composition});
    out.extend(entries);
    crate::obj! {
        "resourceType": "Bundle",
        // No `id`: a server that stores the document gives it one, and a conditional update by
        // the identifier then finds it again (an id in the body would contradict the server's).
        "meta": crate::obj! {"profile": crate::arr![BUNDLE_PROFILE]},
        "identifier": crate::obj! {"system": sid("ips-document"), "value": tx_id},
        "type": "document",
        "timestamp": timestamp,
        "entry": out,
    }
}

/// Full URLs the Composition names.
struct Refs {
    patient: String,
    author: String,
    custodian: Option<String>,
}

/// The narratives and sections of a transaction Bundle, its entries as document entries
/// (Patient first, each with `id` and `text`), and whom the Composition names.
fn build(transaction: &Value) -> (Parts, Vec<Value>, Refs) {
    let tx: &[Value] = transaction["entry"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut names = Names::new();
    let mut patient_url = String::new();
    let mut practitioner = None;
    let mut organization = None;
    let mut custodian = None;
    for e in tx {
        let (Some(url), r) = (e["fullUrl"].as_str(), &e["resource"]) else { continue };
        match r["resourceType"].as_str().unwrap_or_default() {
            "Organization" | "Practitioner" | "Location" => {
                names.insert(url.to_owned(), party_name(r));
                if r["resourceType"] == "Practitioner" && practitioner.is_none() {
                    practitioner = Some(url.to_owned());
                }
                if r["resourceType"] == "Organization" && organization.is_none() {
                    organization = Some(url.to_owned());
                }
            }
            "Patient" => patient_url = url.to_owned(),
            "Provenance" => {
                custodian = r["agent"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["type"]["coding"][0]["code"] == "custodian")
                    .and_then(|a| a["who"]["reference"].as_str())
                    .map(str::to_owned);
            }
            _ => {}
        }
    }
    let custodian = custodian.or(organization);

    let (mut imm, mut vital, mut preg, mut assess, mut tb, mut res) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut rows: [Vec<Vec<String>>; 6] = Default::default();
    let mut entries = Vec::with_capacity(tx.len());
    let mut patient_entry = None;
    let mut summary_div = String::new();
    let mut assessment: Option<&Value> = None;
    let mut classification: Option<&Value> = None;
    for e in tx {
        let url = e["fullUrl"].as_str().unwrap_or_default();
        let r = &e["resource"];
        let k = kind(r);
        let div = match (k, r["resourceType"].as_str().unwrap_or_default()) {
            (Kind::Immunization, _) => {
                let row = narrative::immunization_row(r, &names);
                let d = table("immunizations", IMMUNIZATION_HEAD, std::slice::from_ref(&row));
                rows[0].push(row);
                imm.push(url.to_owned());
                d
            }
            (Kind::Other, "Patient") => {
                let d = narrative::patient(r);
                summary_div = d.clone();
                d
            }
            (Kind::Other, "Organization" | "Practitioner" | "Location") => narrative::party(r),
            (Kind::Other, "Specimen") => narrative::specimen(r),
            (Kind::Other, "Consent") => narrative::consent(r),
            (Kind::Other, "Provenance") => narrative::provenance(r, &names),
            (Kind::Other, t) => format!("<p>{}</p>", esc(t)),
            (k, _) => {
                let row = narrative::observation_row(r);
                let d = table("results", OBSERVATION_HEAD, std::slice::from_ref(&row));
                let (i, list) = match k {
                    Kind::Vital => (1, &mut vital),
                    Kind::Pregnancy => (2, &mut preg),
                    Kind::Assessment => (3, &mut assess),
                    Kind::Tb => (4, &mut tb),
                    _ => (5, &mut res),
                };
                let code = gateway_code(&r["code"], "observation-code");
                if code == Some("assessment-outcome") {
                    assessment = Some(r);
                }
                if code == Some("tb-classification") {
                    // The classification heads the TB screening it concludes.
                    classification = Some(r);
                    rows[i].insert(0, row);
                    list.insert(0, url.to_owned());
                } else {
                    rows[i].push(row);
                    list.push(url.to_owned());
                }
                d
            }
        };
        let entry = crate::obj! {"fullUrl": url, "resource": with_id_and_text(r, url, narrative::text(&div))};
        if r["resourceType"] == "Patient" {
            patient_entry = Some(entry);
        } else {
            entries.push(entry);
        }
    }
    if let Some(p) = patient_entry {
        entries.insert(0, p);
    }
    summary_div.push_str(&assessment_facts(assessment, classification, &names));

    let mut results_div = String::new();
    for (i, caption) in [(3, "Assessment"), (4, "TB screening"), (5, "Laboratory and imaging")] {
        if !rows[i].is_empty() {
            results_div.push_str(&format!("<h3>{caption}</h3>"));
            results_div.push_str(&table("results", OBSERVATION_HEAD, &rows[i]));
        }
    }
    let results: Vec<String> = assess.into_iter().chain(tb).chain(res).collect();
    let mut sections = vec![
        empty_section("11450-4", "Problem list - Reported", "Problems", "problem list"),
        empty_section(
            "48765-2",
            "Allergies and adverse reactions Document",
            "Allergies and intolerances",
            "allergies or intolerances",
        ),
        empty_section("10160-0", "History of Medication use Narrative", "Medication summary", "medication list"),
        section(
            "11369-6",
            "History of Immunization Narrative",
            "Immunizations",
            imm,
            table("immunizations", IMMUNIZATION_HEAD, &rows[0]),
            "vaccinations",
        ),
        section(
            "30954-2",
            "Relevant diagnostic tests/laboratory data Narrative",
            "Results",
            results,
            results_div,
            "results",
        ),
        section(
            "8716-3",
            "Vital signs",
            "Vital signs",
            vital,
            table("results", OBSERVATION_HEAD, &rows[1]),
            "vital signs",
        ),
    ];
    if !preg.is_empty() {
        sections.push(section(
            "10162-6",
            "History of pregnancies Narrative",
            "Pregnancy",
            preg,
            table("results", OBSERVATION_HEAD, &rows[2]),
            "",
        ));
    }
    let author = practitioner.or_else(|| custodian.clone()).unwrap_or_else(|| patient_url.clone());
    let title = "International Patient Summary: migration health assessment".to_owned();
    let refs = Refs { patient: patient_url, author, custodian };
    (Parts { title, summary_div, sections }, entries, refs)
}

/// The assessment in a few lines: programme, kind, site, date, physician, destination, validity,
/// fitness to travel, TB classification; read from the assessment's Observations.
fn assessment_facts(outcome: Option<&Value>, classification: Option<&Value>, names: &Names) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    if let Some(o) = outcome {
        rows.push(vec![esc("Exam date"), text::date_cell(o, "effectiveDateTime")]);
        for c in o["component"].as_array().into_iter().flatten() {
            rows.push(vec![esc(&label(&c["code"])), text::value_cell(c)]);
        }
        for p in o["performer"].as_array().into_iter().flatten() {
            if let Some(n) = p["reference"].as_str().and_then(|u| names.get(u)) {
                rows.push(vec![esc("Performed by"), esc(n)]);
            }
        }
    }
    if let Some(c) = classification {
        rows.push(vec![esc("TB classification"), format!("<strong>{}</strong>", text::value_cell(c))]);
    }
    if rows.is_empty() {
        return String::new();
    }
    format!("<h3>Assessment</h3>{}", table("facts", &["Item", "Detail"], &rows))
}
