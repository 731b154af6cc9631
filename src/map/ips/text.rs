//! Reading FHIR JSON back as words for a narrative: escaping, labels of CodeableConcepts, codes
//! by system, values of Observations, dates (estimated ones marked), names with their script and
//! writing direction. Pure functions over a resource already built; no I/O, no clock.
//!
//! Must not know: where a narrative goes (resource, section or page) — [`super::narrative`] and
//! [`super::page`] decide that.

use serde_json::Value;

use crate::map::patient::EXT_DATE_ESTIMATED;
use crate::terminology::BASE;

/// Appends `s` escaped for XHTML text and attribute values.
pub fn esc_into(out: &mut String, s: &str) {
    crate::markup::escape_into(out, s);
}

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    esc_into(&mut out, s);
    out
}

fn is_gateway(system: &str) -> bool {
    system.starts_with(BASE)
}

/// What a nurse reads for a CodeableConcept: the gateway's own display (short, as the source
/// system said it), else the first display of a standard coding, else the text, else a code.
pub fn label(cc: &Value) -> String {
    let codings = cc.get("coding").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let display = |c: &Value| c.get("display").and_then(Value::as_str).map(str::to_owned);
    codings
        .iter()
        .filter(|c| c["system"].as_str().is_some_and(is_gateway))
        .find_map(display)
        .or_else(|| codings.iter().find_map(display))
        .or_else(|| cc.get("text").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| codings.iter().find_map(|c| c.get("code").and_then(Value::as_str).map(str::to_owned)))
        .unwrap_or_default()
}

/// Short name of a code system, for "LOINC 1234-5".
pub fn system_name(system: &str) -> &str {
    match system {
        "http://loinc.org" => "LOINC",
        "http://snomed.info/sct" => "SNOMED CT",
        "http://hl7.org/fhir/sid/cvx" => "CVX",
        "http://www.whocc.no/atc" => "ATC",
        "http://id.who.int/icd/release/11/mms" => "ICD-11",
        "http://hl7.org/fhir/sid/icd-10" => "ICD-10",
        "http://unitsofmeasure.org" => "UCUM",
        "urn:iso:std:iso:3166" => "ISO 3166",
        "urn:ietf:bcp:47" => "BCP 47",
        s => s.rsplit('/').next().unwrap_or(s),
    }
}

/// The standard (non-gateway) codes of a CodeableConcept: `LOINC 71773-6; SNOMED CT 260385009`.
pub fn codes(cc: &Value) -> String {
    let mut out = String::new();
    for c in cc.get("coding").and_then(Value::as_array).into_iter().flatten() {
        let (Some(system), Some(code)) = (c["system"].as_str(), c["code"].as_str()) else { continue };
        if is_gateway(system) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(system_name(system));
        out.push(' ');
        out.push_str(code);
    }
    out
}

/// A label with its standard codes in a smaller line: `IGRA<br/><small>LOINC …</small>`, escaped.
pub fn coded_cell(cc: &Value) -> String {
    let mut s = esc(&label(cc));
    let c = codes(cc);
    if !c.is_empty() {
        s.push_str("<br/><span class=\"code\">");
        esc_into(&mut s, &c);
        s.push_str("</span>");
    }
    s
}

/// Whether `resource._<key>` carries the gateway's estimated-date extension.
pub fn estimated(resource: &Value, key: &str) -> bool {
    resource
        .get(format!("_{key}"))
        .and_then(|p| p.get("extension"))
        .and_then(Value::as_array)
        .is_some_and(|xs| xs.iter().any(|x| x["url"] == EXT_DATE_ESTIMATED))
}

/// A FHIR date or dateTime as read: `2026-10-05 08:40 +07:00`; partial dates stay partial.
pub fn date_text(s: &str) -> String {
    let Some((day, time)) = s.split_once('T') else { return s.to_owned() };
    let (clock, zone) = match time.find(['+', '-', 'Z']) {
        Some(i) => time.split_at(i),
        None => (time, ""),
    };
    let clock = clock.strip_suffix(":00").filter(|c| c.len() == 5).unwrap_or(clock);
    let zone = if zone == "Z" { "UTC" } else { zone };
    format!("{day} {clock} {zone}").trim_end().to_owned()
}

/// `resource[key]` as a date cell, escaped, marked when estimated.
pub fn date_cell(resource: &Value, key: &str) -> String {
    let Some(s) = resource.get(key).and_then(Value::as_str) else { return String::new() };
    let mut out = esc(&date_text(s));
    if estimated(resource, key) {
        out.push_str(" <em class=\"estimated\">(estimated)</em>");
    }
    out
}

/// A number as written in the JSON (decimal text kept).
fn number(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A Quantity: `0.08 IU/mL`, with the UCUM code when it differs from the unit shown.
pub fn quantity(q: &Value) -> String {
    let mut s = q.get("comparator").and_then(Value::as_str).unwrap_or_default().to_owned();
    if let Some(v) = q.get("value") {
        s.push_str(&number(v));
    }
    let unit = q.get("unit").and_then(Value::as_str).or(q.get("code").and_then(Value::as_str));
    if let Some(u) = unit {
        s.push(' ');
        s.push_str(u);
    }
    if let Some(code) = q.get("code").and_then(Value::as_str).filter(|c| Some(*c) != unit) {
        s.push_str(" (UCUM ");
        s.push_str(code);
        s.push(')');
    }
    s
}

/// The value of an Observation or a component, escaped: quantity, concept, boolean, text, date,
/// or the reason it is absent.
pub fn value_cell(o: &Value) -> String {
    if let Some(q) = o.get("valueQuantity") {
        return esc(&quantity(q));
    }
    if let Some(cc) = o.get("valueCodeableConcept") {
        return esc(&label(cc));
    }
    if let Some(b) = o.get("valueBoolean").and_then(Value::as_bool) {
        return (if b { "Yes" } else { "No" }).to_owned();
    }
    if let Some(s) = o.get("valueString").and_then(Value::as_str) {
        return esc(s);
    }
    if let Some(i) = o.get("valueInteger") {
        return esc(&number(i));
    }
    if o.get("valueDateTime").is_some() {
        return date_cell(o, "valueDateTime");
    }
    if let Some(p) = o.get("valuePeriod") {
        let start = p.get("start").and_then(Value::as_str).map(date_text).unwrap_or_default();
        let end = p.get("end").and_then(Value::as_str).map(date_text).unwrap_or_default();
        return esc(&format!("{start} – {end}"));
    }
    if let Some(cc) = o.get("dataAbsentReason") {
        return format!("<em>{}</em>", esc(&label(cc)));
    }
    String::new()
}

/// Reference ranges: `&lt; 0.35 IU/mL`, `4.0–11.0 10*3/uL`, or a range's text.
pub fn ranges(o: &Value) -> String {
    let mut out = Vec::new();
    for r in o.get("referenceRange").and_then(Value::as_array).into_iter().flatten() {
        let low = r.get("low").map(quantity);
        let high = r.get("high").map(quantity);
        let s = match (low, high) {
            (Some(l), Some(h)) => format!("{l} – {h}"),
            (Some(l), None) => format!("≥ {l}"),
            (None, Some(h)) => format!("≤ {h}"),
            (None, None) => r.get("text").and_then(Value::as_str).unwrap_or_default().to_owned(),
        };
        out.push(s);
    }
    esc(&out.join("; "))
}

/// Scripts written right to left (ISO 15924).
const RTL_SCRIPTS: &[&str] = &["Arab", "Hebr", "Syrc", "Thaa", "Nkoo", "Adlm", "Rohg", "Mand", "Samr", "Yezi"];

/// A HumanName as a `<span>` with its language tag and writing direction.
pub fn name_span(name: &Value) -> String {
    let tag = name
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|x| x["url"] == "http://hl7.org/fhir/StructureDefinition/language")
        .and_then(|x| x["valueCode"].as_str());
    let text = name_text(name);
    let mut s = String::from("<span class=\"name\"");
    if let Some(tag) = tag {
        let script = tag.split('-').find(|p| p.len() == 4 && p.chars().next().is_some_and(char::is_uppercase));
        s.push_str(" lang=\"");
        esc_into(&mut s, tag);
        s.push('"');
        let rtl = script.is_some_and(|sc| RTL_SCRIPTS.contains(&sc));
        s.push_str(if rtl { " dir=\"rtl\"" } else { " dir=\"ltr\"" });
    } else {
        s.push_str(" dir=\"auto\"");
    }
    s.push('>');
    esc_into(&mut s, &text);
    s.push_str("</span>");
    s
}

/// A HumanName as one line: its text, else given names then family.
pub fn name_text(name: &Value) -> String {
    if let Some(t) = name.get("text").and_then(Value::as_str) {
        return t.to_owned();
    }
    let mut parts: Vec<&str> = Vec::new();
    for g in name.get("given").and_then(Value::as_array).into_iter().flatten() {
        parts.extend(g.as_str());
    }
    parts.extend(name.get("family").and_then(Value::as_str));
    parts.join(" ")
}

/// First HumanName's text of a resource (Practitioner), or its `name` string (Organization,
/// Location).
pub fn party_name(r: &Value) -> String {
    match r.get("name") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(names)) => names.first().map(name_text).unwrap_or_default(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_and_reads() {
        assert_eq!(esc("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
        assert_eq!(date_text("2026-10-05T08:40:00+07:00"), "2026-10-05 08:40 +07:00");
        assert_eq!(date_text("2026-10-05T08:40:12Z"), "2026-10-05 08:40:12 UTC");
        assert_eq!(date_text("2003"), "2003");
        let cc = json!({"coding": [{"system": "http://loinc.org", "code": "1-8", "display": "Long"}, {"system": format!("{BASE}/CodeSystem/test"), "code": "t", "display": "Short"}]});
        assert_eq!((label(&cc), codes(&cc)), ("Short".to_owned(), "LOINC 1-8".to_owned()));
        assert_eq!(quantity(&json!({"value": 1.5, "unit": "IU/mL", "code": "[IU]/mL"})), "1.5 IU/mL (UCUM [IU]/mL)");
        let ar =
            json!({"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/language", "valueCode": "und-Arab"}], "family": "<x>"});
        assert_eq!(name_span(&ar), "<span class=\"name\" lang=\"und-Arab\" dir=\"rtl\">&lt;x&gt;</span>");
    }
}
