//! Who and where: the assessment site and laboratories (`Organization`), the physician
//! (`Practitioner`), and countries where doses were given (`Location`, kind jurisdiction).

use foldhash::HashMap;

use serde_json::{Value, json};

use super::util::sid;
use super::{Builder, Request, put};
use crate::ingest::Record;

/// A healthcare-provider `Organization` identified by `(system, value)`: the assessment site or a
/// laboratory.
fn provider(b: &mut Builder, key: &str, system: String, value: &str, name: &str, country: Option<&str>, origin: &str) -> String {
    let mut org = super::resource("Organization");
    put(&mut org, "meta", b.profiles("Organization"));
    put(&mut org, "identifier", json!([{"system": system, "value": value}]));
    put(&mut org, "active", true);
    put(
        &mut org,
        "type",
        json!([{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov", "display": "Healthcare Provider"
        }]}]),
    );
    put(&mut org, "name", name);
    if let Some(c) = country {
        put(&mut org, "address", json!([{"country": c}]));
    }
    b.add(key, org, Request::ByIdentifier { system, value: value.to_owned() }, origin)
}

pub fn site(b: &mut Builder, r: &Record) -> String {
    let s = &r.assessment.site;
    let out = b.next_entry_path();
    // Checked for a known country code; Address.country holds the code itself.
    b.country_system(&s.country, || ("/assessment/site/country".to_owned(), format!("{out}.address[0].country")));
    provider(
        b,
        &format!("site|{}", s.code),
        sid("assessment-site"),
        &s.code,
        &s.name,
        Some(&s.country),
        "/assessment/site",
    )
}

/// Laboratories are named by free text only; one Organization per distinct name, identified by
/// that name (the only key the record gives).
pub fn laboratory(b: &mut Builder, name: &str, input: &str, cache: &mut HashMap<String, String>) -> String {
    if let Some(u) = cache.get(name) {
        return u.clone();
    }
    let url = provider(b, &format!("laboratory|{name}"), sid("laboratory"), name, name, None, input);
    cache.insert(name.to_owned(), url.clone());
    url
}

pub fn physician(b: &mut Builder, r: &Record) -> Option<String> {
    let p = r.assessment.physician.as_ref()?;
    let mut ids = vec![json!({"system": sid("physician-id"), "value": p.id})];
    if let Some(l) = &p.licence {
        ids.push(json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MD", "display": "Medical License number"}]},
            "system": format!("{}/{}", sid("medical-licence"), r.assessment.site.country),
            "value": l
        }));
    }
    let mut pr = super::resource("Practitioner");
    put(&mut pr, "meta", b.profiles("Practitioner"));
    put(&mut pr, "identifier", Value::Array(ids));
    put(&mut pr, "active", true);
    put(&mut pr, "name", json!([{"text": p.name}]));
    Some(b.add(
        &format!("physician|{}", p.id),
        pr,
        Request::ByIdentifier { system: sid("physician-id"), value: p.id.clone() },
        "/assessment/physician",
    ))
}

/// A country as a `Location` (mode kind, physical type jurisdiction), for `Immunization.location`.
pub fn country_location(b: &mut Builder, code: &str, input: &str, cache: &mut HashMap<String, String>) -> String {
    if let Some(u) = cache.get(code) {
        return u.clone();
    }
    let out = b.next_entry_path();
    let system = b.country_system(code, || (input.to_string(), format!("{out}.identifier[0]")));
    let name = b
        .term
        .all_targets("country", code, "urn:iso:std:iso:3166")
        .first()
        .and_then(|c| c.get("display").cloned())
        .unwrap_or_else(|| json!(code));
    let mut loc = super::resource("Location");
    put(&mut loc, "identifier", json!([{"system": system, "value": code}]));
    put(&mut loc, "status", "active");
    put(&mut loc, "name", name);
    put(&mut loc, "mode", "kind");
    put(
        &mut loc,
        "physicalType",
        json!({"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/location-physical-type", "code": "jdn", "display": "Jurisdiction"
        }]}),
    );
    put(&mut loc, "address", json!({"country": code}));
    let url = b.add(&format!("country|{code}"), loc, Request::ByIdentifier { system, value: code.to_owned() }, input);
    cache.insert(code.to_owned(), url.clone());
    url
}
