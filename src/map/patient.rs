//! The person: `Patient` (IPS), with every identifier, name, birth data, languages and contact.

use serde_json::Value;

use super::util::sid;
use super::{Builder, Request, put};
use crate::ingest::Record;

/// Gateway extension marking an estimated (conventional) date, on the `_birthDate` primitive.
pub const EXT_DATE_ESTIMATED: &str = "https://w3id.org/mhg/fhir/StructureDefinition/date-estimated";

pub fn patient(b: &mut Builder, r: &Record) -> String {
    let p = &r.person;
    let out = b.next_entry_path();
    let mut ids = vec![crate::obj! {"use": "usual", "system": sid("person-id"), "value": p.person_id.as_str()}];
    for (i, id) in p.identifiers.iter().enumerate() {
        let input = format!("/person/identifiers/{i}");
        let expr = format!("{out}.identifier[{}]", i + 1);
        let base = b.term.target_code("identifier-type", &id.kind, "urn:ietf:rfc:3986").map(str::to_owned);
        let Some(base) = base else {
            b.issue(
                crate::error::Issue::new("code-invalid", "identifier type has no system URI in ConceptMap 'identifier-type'")
                    .at(format!("{input}/type"))
                    .expr(format!("{expr}.system")),
            );
            continue;
        };
        let mut assigner = Value::Null;
        let system = match (&id.issuer, id.kind.as_str()) {
            (Some(issuer), kind) => {
                let csys = b.country_system(issuer, || (format!("{input}/issuer"), format!("{expr}.assigner")));
                assigner = crate::obj! {"identifier": crate::obj! {"system": csys, "value": issuer.as_str()}};
                let numeric = b.term.target_code("country", issuer, "urn:iso:std:iso:3166").map(str::to_owned);
                match (kind, numeric) {
                    // The passport OID arc per issuing country (v2-0203 PPN practice): the ISO
                    // numeric code as a number, since an OID arc has no leading zeros
                    // (Bangladesh, 050, is arc 50; `.050` is not an OID and HL7's validator
                    // refuses it).
                    ("passport", Some(n)) if base.starts_with("urn:oid:") => {
                        let arc = n.trim_start_matches('0');
                        format!("{base}.{}", if arc.is_empty() { "0" } else { arc })
                    }
                    ("passport", _) if base.starts_with("urn:oid:") => format!("{}/{issuer}", sid("passport")),
                    _ if kind == "passport" || kind == "national-id" => format!("{base}/{issuer}"),
                    _ => base,
                }
            }
            (None, "passport") if base.starts_with("urn:oid:") => sid("passport"),
            (None, _) => base,
        };
        let mut ty = b.coded("identifier-type", "identifier-type", &id.kind, &[], || {
            (format!("{input}/type"), format!("{expr}.type"))
        });
        // Only the v2-0203 coding and the gateway's own belong in Identifier.type, not the
        // identifier system URI (the map's other group).
        if let Some(cs) = ty.get_mut("coding").and_then(Value::as_array_mut) {
            cs.retain(|c| c["system"] != "urn:ietf:rfc:3986");
        }
        let mut ident = crate::obj! {"use": "official", "type": ty, "system": system, "value": id.value.as_str()};
        if let Some(exp) = &id.expires {
            put(&mut ident, "period", crate::obj! {"end": exp.as_str()});
        }
        put(&mut ident, "assigner", assigner);
        ids.push(ident);
    }

    let names: Vec<Value> = p
        .names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let input = format!("/person/names/{i}");
            let name_use = b.code_only("name-use", &n.name_use, || (format!("{input}/use"), format!("{out}.name[{i}].use")));
            let mut hn = crate::obj! {};
            if let Some(s) = &n.script {
                put(
                    &mut hn,
                    "extension",
                    crate::arr![crate::obj! {
                        "url": "http://hl7.org/fhir/StructureDefinition/language",
                        "valueCode": format!("und-{s}"),
                    }],
                );
            }
            put(&mut hn, "use", name_use);
            put(&mut hn, "family", n.family.as_deref().map(Value::from).unwrap_or(Value::Null));
            if !n.given.is_empty() {
                put(&mut hn, "given", n.given.clone());
            }
            hn
        })
        .collect();

    let gender = b.code_only("sex", &p.sex, || ("/person/sex".to_owned(), format!("{out}.gender")));

    let mut extensions = Vec::new();
    if let Some(c) = &p.birth_country {
        b.country_system(c, || ("/person/birthCountry".to_owned(), format!("{out}.extension")));
        extensions.push(crate::obj! {
            "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
            "valueAddress": crate::obj! {"country": c.as_str()},
        });
    }
    for (i, n) in p.nationalities.iter().enumerate() {
        let sys = b.country_system(n, || (format!("/person/nationalities/{i}"), format!("{out}.extension")));
        extensions.push(crate::obj! {
            "url": "http://hl7.org/fhir/StructureDefinition/patient-nationality",
            "extension": crate::arr![crate::obj! {
                "url": "code",
                "valueCodeableConcept": crate::obj! {"coding": crate::arr![crate::obj! {"system": sys, "code": n.as_str()}]},
            }],
        });
    }
    let interpreter: Vec<bool> = p.languages.iter().filter_map(|l| l.interpreter_needed).collect();
    if !interpreter.is_empty() {
        extensions.push(crate::obj! {
            "url": "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired",
            "valueBoolean": interpreter.iter().any(|&x| x),
        });
    }

    let mut pat = super::resource("Patient");
    put(&mut pat, "meta", b.profiles("Patient"));
    if !extensions.is_empty() {
        put(&mut pat, "extension", Value::Array(extensions));
    }
    put(&mut pat, "identifier", Value::Array(ids));
    put(&mut pat, "name", Value::Array(names));
    let mut telecom = Vec::new();
    if let Some(ph) = &p.phone {
        telecom.push(crate::obj! {"system": "phone", "value": ph.as_str()});
    }
    if let Some(em) = &p.email {
        telecom.push(crate::obj! {"system": "email", "value": em.as_str()});
    }
    if !telecom.is_empty() {
        put(&mut pat, "telecom", Value::Array(telecom));
    }
    put(&mut pat, "gender", gender);
    put(&mut pat, "birthDate", p.birth_date.as_str());
    if p.birth_date_estimated == Some(true) {
        put(
            &mut pat,
            "_birthDate",
            crate::obj! {"extension": crate::arr![crate::obj! {"url": EXT_DATE_ESTIMATED, "valueBoolean": true}]},
        );
    }
    if let Some(a) = &p.destination_address {
        b.country_system(&a.country, || {
            ("/person/destinationAddress/country".to_owned(), format!("{out}.address[0].country"))
        });
        let mut addr = crate::obj! {"use": "home", "type": "physical"};
        if !a.lines.is_empty() {
            put(&mut addr, "line", a.lines.clone());
        }
        put(&mut addr, "city", a.city.as_deref().map(Value::from).unwrap_or(Value::Null));
        put(&mut addr, "district", a.district.as_deref().map(Value::from).unwrap_or(Value::Null));
        put(&mut addr, "postalCode", a.postal_code.as_deref().map(Value::from).unwrap_or(Value::Null));
        put(&mut addr, "country", a.country.as_str());
        put(&mut pat, "address", crate::arr![addr]);
    }
    if !p.languages.is_empty() {
        let comm: Vec<Value> = p
            .languages
            .iter()
            .map(|l| {
                let mut c = crate::obj! {"language": crate::obj! {"coding": crate::arr![crate::obj! {"system": "urn:ietf:bcp:47", "code": l.code.as_str()}]}};
                if let Some(pr) = l.preferred {
                    put(&mut c, "preferred", pr);
                }
                c
            })
            .collect();
        put(&mut pat, "communication", Value::Array(comm));
    }
    b.add(
        &format!("person|{}", p.person_id),
        pat,
        Request::ByIdentifier { system: sid("person-id"), value: p.person_id.clone() },
        "/person",
    )
}
