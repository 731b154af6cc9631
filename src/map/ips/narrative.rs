//! The narratives of an IPS document, generated from its resources: one per resource
//! (`text.div`), one per Composition section (a table of its entries), and the Composition's own
//! (the person and the assessment). Each row of a section table is the same markup the entry's
//! own narrative holds, so the document, its sections and the printable page say the same thing.
//!
//! Must not know: the record (only the FHIR JSON), the page around the narratives
//! ([`super::page`]). No I/O, no clock.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::text::{coded_cell, codes, date_cell, esc, esc_into, label, name_span, party_name, ranges, value_cell};

pub const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

/// Names of the parties in the document by full URL (the site, the physician, a laboratory,
/// a country), to say who without a reference.
pub type Names = HashMap<String, String>;

/// A `text` element: generated, in the XHTML namespace.
pub fn text(inner: &str) -> Value {
    let mut div = String::with_capacity(inner.len() + 48);
    div.push_str("<div xmlns=\"");
    div.push_str(XHTML_NS);
    div.push_str("\">");
    div.push_str(inner);
    div.push_str("</div>");
    crate::obj! {"status": "generated", "div": div}
}

/// A table with a header row and body rows (cells already escaped).
pub fn table(class: &str, head: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::with_capacity(256 + rows.len() * 160);
    let _ = write!(s, "<table class=\"{class}\"><thead><tr>");
    for h in head {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            s.push_str("<td>");
            s.push_str(c);
            s.push_str("</td>");
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

fn who(names: &Names, r: &Value) -> Option<String> {
    if let Some(d) = r.get("display").and_then(Value::as_str) {
        return Some(d.to_owned());
    }
    names.get(r.get("reference")?.as_str()?).cloned()
}

fn status_note(r: &Value, normal: &[&str]) -> String {
    let status = r.get("status").and_then(Value::as_str).unwrap_or_default();
    if normal.contains(&status) {
        return String::new();
    }
    let mut s = esc(&status.replace('-', " "));
    if let Some(reason) = r.get("statusReason") {
        s.push_str(": ");
        esc_into(&mut s, &label(reason));
    }
    s
}

// ---- Immunizations ------------------------------------------------------------------------

pub const IMMUNIZATION_HEAD: &[&str] = &["Date", "Vaccine", "Dose", "Source", "Lot", "Notes"];

/// Date, vaccine (with codes), dose, source (given here or copied from a card, a registry…),
/// lot, and a note of status or remarks.
pub fn immunization_row(r: &Value, names: &Names) -> Vec<String> {
    let dose = r["protocolApplied"]
        .get(0)
        .map(|p| {
            let n = p.get("doseNumberPositiveInt").map(Value::to_string).or_else(|| {
                p.get("doseNumberString").and_then(Value::as_str).map(|s| if s == "unknown" { "unknown".to_owned() } else { s.to_owned() })
            });
            let of = p.get("seriesDosesPositiveInt").map(|t| format!(" of {t}"));
            format!("{}{}", n.unwrap_or_default(), of.unwrap_or_default())
        })
        .unwrap_or_default();
    let source = if r.get("primarySource").and_then(Value::as_bool) == Some(true) {
        let at = r["performer"].as_array().and_then(|p| p.iter().find_map(|p| who(names, &p["actor"])));
        match at {
            Some(site) => format!("Given here ({})", esc(&site)),
            None => "Given here".to_owned(),
        }
    } else {
        let recalled = r["reportOrigin"]["coding"].as_array().into_iter().flatten().any(|c| c["code"] == "recall");
        match r.get("reportOrigin") {
            Some(o) if recalled => format!("Reported, not verified: {}", esc(&label(o))),
            Some(o) => format!("Copied from: {}", esc(&label(o))),
            None => "Reported".to_owned(),
        }
    };
    let mut lot = r.get("lotNumber").and_then(Value::as_str).map(esc).unwrap_or_default();
    if let Some(exp) = r.get("expirationDate").and_then(Value::as_str) {
        let _ = write!(lot, "<br/><span class=\"code\">expires {}</span>", esc(exp));
    }
    let mut notes = status_note(r, &["completed"]);
    for n in r.get("note").and_then(Value::as_array).into_iter().flatten() {
        if let Some(t) = n.get("text").and_then(Value::as_str) {
            if !notes.is_empty() {
                notes.push_str("<br/>");
            }
            esc_into(&mut notes, t);
        }
    }
    let mut vaccine = coded_cell(&r["vaccineCode"]);
    if let Some(m) = r.get("manufacturer").and_then(|m| m.get("display")).and_then(Value::as_str) {
        let _ = write!(vaccine, "<br/><span class=\"code\">{}</span>", esc(m));
    }
    vec![date_cell(r, "occurrenceDateTime"), vaccine, esc(&dose), source, lot, notes]
}

// ---- Observations -------------------------------------------------------------------------

pub const OBSERVATION_HEAD: &[&str] = &["Test", "Result", "Reference range", "Date", "Notes"];

/// Test (with codes and method), result (value, components, interpretation), reference range,
/// date, and a note of status.
pub fn observation_row(r: &Value) -> Vec<String> {
    let mut test = coded_cell(&r["code"]);
    if let Some(m) = r.get("method") {
        let _ = write!(test, "<br/><span class=\"code\">method: {}</span>", esc(&label(m)));
    }
    let mut result = value_cell(r);
    let comps: Vec<&Value> = r.get("component").and_then(Value::as_array).into_iter().flatten().collect();
    if !comps.is_empty() {
        result.push_str("<ul>");
        for c in comps {
            let c_codes = codes(&c["code"]);
            let _ = write!(result, "<li>{}: {}", esc(&label(&c["code"])), value_cell(c));
            if !c_codes.is_empty() {
                let _ = write!(result, " <span class=\"code\">{}</span>", esc(&c_codes));
            }
            result.push_str("</li>");
        }
        result.push_str("</ul>");
    }
    for i in r.get("interpretation").and_then(Value::as_array).into_iter().flatten() {
        let _ = write!(result, "<br/><strong>{}</strong>", esc(&label(i)));
    }
    let date = if r.get("effectiveDateTime").is_some() { date_cell(r, "effectiveDateTime") } else { date_cell(r, "issued") };
    let mut notes = status_note(r, &["final", "amended", "corrected"]);
    for n in r.get("note").and_then(Value::as_array).into_iter().flatten() {
        if let Some(t) = n.get("text").and_then(Value::as_str) {
            if !notes.is_empty() {
                notes.push_str("<br/>");
            }
            esc_into(&mut notes, t);
        }
    }
    vec![test, result, ranges(r), date, notes]
}

// ---- Other resources -----------------------------------------------------------------------

fn identifiers(r: &Value) -> String {
    let mut rows = Vec::new();
    for i in r.get("identifier").and_then(Value::as_array).into_iter().flatten() {
        let Some(v) = i.get("value").and_then(Value::as_str) else { continue };
        let kind = match i.get("type") {
            Some(t) => label(t),
            None => i["system"].as_str().map(|s| super::text::system_name(s).to_owned()).unwrap_or_default(),
        };
        let mut value = esc(v);
        if let Some(end) = i.get("period").and_then(|p| p.get("end")).and_then(Value::as_str) {
            let _ = write!(value, " <span class=\"code\">valid until {}</span>", esc(end));
        }
        if let Some(by) = i.get("assigner").and_then(|a| a.get("identifier")).and_then(|a| a.get("value")).and_then(Value::as_str) {
            let _ = write!(value, " <span class=\"code\">issued by {}</span>", esc(by));
        }
        rows.push(vec![esc(&kind), value]);
    }
    if rows.is_empty() { String::new() } else { table("identifiers", &["Identifier", "Value"], &rows) }
}

/// The person: every name in every script (with its language tag and direction), sex, birth
/// date (marked when estimated), birthplace, nationality, languages, identifiers.
pub fn patient(r: &Value) -> String {
    let mut s = String::from("<p class=\"names\">");
    for (i, n) in r.get("name").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if i > 0 {
            s.push_str(" · ");
        }
        s.push_str(&name_span(n));
    }
    s.push_str("</p><table class=\"facts\"><tbody>");
    let mut fact = |k: &str, v: String| {
        if !v.is_empty() {
            let _ = write!(s, "<tr><th>{}</th><td>{}</td></tr>", esc(k), v);
        }
    };
    fact("Sex", esc(r.get("gender").and_then(Value::as_str).unwrap_or_default()));
    fact("Birth date", date_cell(r, "birthDate"));
    let mut born = String::new();
    let mut nationality = Vec::new();
    let mut interpreter = String::new();
    for x in r.get("extension").and_then(Value::as_array).into_iter().flatten() {
        match x["url"].as_str().unwrap_or_default() {
            "http://hl7.org/fhir/StructureDefinition/patient-birthPlace" => {
                born = esc(x["valueAddress"]["country"].as_str().unwrap_or_default());
            }
            "http://hl7.org/fhir/StructureDefinition/patient-nationality" => {
                for y in x.get("extension").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(cc) = y.get("valueCodeableConcept") {
                        nationality.push(esc(&label(cc)));
                    }
                }
            }
            "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired" => {
                interpreter = (if x["valueBoolean"] == true { "Interpreter needed" } else { "" }).to_owned();
            }
            _ => {}
        }
    }
    fact("Born in", born);
    fact("Nationality", nationality.join(", "));
    let langs: Vec<String> = r
        .get("communication")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let l = esc(&label(&c["language"]));
            if c["preferred"] == true { format!("{l} (preferred)") } else { l }
        })
        .collect();
    let mut languages = langs.join(", ");
    if !interpreter.is_empty() {
        let _ = write!(languages, "{}{interpreter}", if languages.is_empty() { "" } else { "; " });
    }
    fact("Languages", languages);
    s.push_str("</tbody></table>");
    s.push_str(&identifiers(r));
    s
}

/// A party (Organization, Practitioner, Location): its name and identifiers.
pub fn party(r: &Value) -> String {
    format!("<p>{}</p>{}", esc(&party_name(r)), identifiers(r))
}

pub fn specimen(r: &Value) -> String {
    let collected = r.get("collection").map(|c| date_cell(c, "collectedDateTime")).unwrap_or_default();
    format!("<p>Specimen: {} collected {}</p>{}", esc(&label(&r["type"])), collected, identifiers(r))
}

pub fn consent(r: &Value) -> String {
    let status = esc(r.get("status").and_then(Value::as_str).unwrap_or_default());
    let purposes: Vec<String> = r["provision"]["purpose"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("display").and_then(Value::as_str))
        .map(esc)
        .collect();
    let provision = esc(r["provision"]["type"].as_str().unwrap_or_default());
    format!("<p>Consent ({status}): {provision} {}; given {}</p>", purposes.join(", "), date_cell(r, "dateTime"))
}

/// Where the record came from: the source record, when it was recorded, and who took part.
pub fn provenance(r: &Value, names: &Names) -> String {
    let mut rows = Vec::new();
    for e in r.get("entity").and_then(Value::as_array).into_iter().flatten() {
        if let Some(d) = e["what"].get("display").and_then(Value::as_str) {
            let from = e["what"]["identifier"]["assigner"]["display"].as_str().map(|s| format!(" from {s}")).unwrap_or_default();
            rows.push(vec![esc("Source"), esc(&format!("{d}{from}"))]);
        }
    }
    rows.push(vec![esc("Recorded"), date_cell(r, "recorded")]);
    for a in r.get("agent").and_then(Value::as_array).into_iter().flatten() {
        if let Some(w) = who(names, &a["who"]) {
            rows.push(vec![esc(&label(&a["type"])), esc(&w)]);
        }
    }
    table("provenance", &["Part", "Detail"], &rows)
}
