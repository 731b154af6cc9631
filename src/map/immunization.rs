//! Vaccinations: one `Immunization` (IPS) each, whether given at the site, copied from a card or
//! certificate, reported, or not done.

use foldhash::{HashMap, HashMapExt};

use serde_json::{Value, json};

use super::results::Refs;
use super::util::{absent, reference, sid};
use super::{Builder, Request, parties, put};
use crate::ingest::Record;

const SNOMED: &str = "http://snomed.info/sct";

pub fn immunizations(b: &mut Builder, r: &Record, refs: &Refs) {
    let mut countries = HashMap::new();
    for (i, v) in r.vaccinations.iter().enumerate() {
        let input = format!("/vaccinations/{i}");
        let location = v.country.as_deref().map(|c| parties::country_location(b, c, &format!("{input}/country"), &mut countries));
        let out = b.next_entry_path();
        let status = b.code_only("vaccination-status", &v.status, || (format!("{input}/status"), format!("{out}.status")));
        let vaccine = b.coded("vaccine", "vaccine", &v.vaccine, &[], || (format!("{input}/vaccine"), format!("{out}.vaccineCode")));

        let mut imm = super::resource("Immunization");
        put(&mut imm, "meta", b.profiles("Immunization"));
        put(
            &mut imm,
            "identifier",
            crate::arr![crate::obj! {"system": sid("vaccination-id"), "value": v.vaccination_id.as_str()}],
        );
        put(&mut imm, "status", status);
        if let Some(reason) = &v.not_done_reason {
            let sr = b.coded("not-done-reason", "not-done-reason", reason, &[], || {
                (format!("{input}/notDoneReason"), format!("{out}.statusReason"))
            });
            put(&mut imm, "statusReason", sr);
        }
        put(&mut imm, "vaccineCode", vaccine);
        put(&mut imm, "patient", reference(refs.patient));
        match &v.date {
            // Partial dates (YYYY, YYYY-MM) are valid FHIR dateTimes and stay partial.
            Some(d) => put(&mut imm, "occurrenceDateTime", d.as_str()),
            // occurrence[x] is 1..1 and the record does not know it: say so, do not invent a date.
            // A value ("unknown") beside the data-absent-reason, because servers (HFS 0.2.7)
            // refuse a required primitive that has only an extension.
            None => {
                put(&mut imm, "occurrenceString", "unknown");
                put(&mut imm, "_occurrenceString", absent("unknown"));
            }
        }
        let administered = v.source == "administered";
        put(&mut imm, "primarySource", administered);
        if !administered {
            let origin = b.coded("vaccination-source", "vaccination-source", &v.source, &[], || {
                (format!("{input}/source"), format!("{out}.reportOrigin"))
            });
            put(&mut imm, "reportOrigin", origin);
        }
        if let Some(l) = &location {
            put(&mut imm, "location", reference(l));
        }
        if let Some(m) = &v.manufacturer {
            put(&mut imm, "manufacturer", crate::obj! {"display": m.as_str()});
        }
        if let Some(l) = &v.lot {
            put(&mut imm, "lotNumber", l.as_str());
        }
        if let Some(e) = &v.expiry {
            put(&mut imm, "expirationDate", e.as_str());
        }
        if let Some(s) = &v.body_site {
            let c = b.coded("body-site", "body-site", s, &[], || (format!("{input}/bodySite"), format!("{out}.site")));
            put(&mut imm, "site", c);
        }
        if let Some(rt) = &v.route {
            let c = b.coded("route", "route", rt, &[], || (format!("{input}/route"), format!("{out}.route")));
            put(&mut imm, "route", c);
        }
        if administered {
            put(
                &mut imm,
                "performer",
                crate::arr![crate::obj! {
                    "function": json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0443", "code": "AP", "display": "Administering Provider"}]}),
                    "actor": reference(refs.site),
                }],
            );
        }
        if let Some(n) = &v.note {
            put(&mut imm, "note", crate::arr![crate::obj! {"text": n.as_str()}]);
        }
        let diseases: Vec<Value> = b
            .term
            .all_targets("vaccine-target-disease", &v.vaccine, SNOMED)
            .into_iter()
            .map(|c| crate::obj! {"coding": crate::arr![c]})
            .collect();
        if v.dose_number.is_some() || v.series_doses.is_some() || !diseases.is_empty() {
            let mut pa = crate::obj! {};
            if !diseases.is_empty() {
                put(&mut pa, "targetDisease", Value::Array(diseases));
            }
            match v.dose_number {
                Some(n) => put(&mut pa, "doseNumberPositiveInt", n),
                // doseNumber[x] is 1..1: as for occurrence, a stated "unknown", not a guess.
                None => {
                    put(&mut pa, "doseNumberString", "unknown");
                    put(&mut pa, "_doseNumberString", absent("unknown"));
                }
            }
            if let Some(s) = v.series_doses {
                put(&mut pa, "seriesDosesPositiveInt", s);
            }
            put(&mut imm, "protocolApplied", crate::arr![pa]);
        }
        b.add(
            &format!("vaccination|{}", v.vaccination_id),
            imm,
            Request::ByIdentifier { system: sid("vaccination-id"), value: v.vaccination_id.clone() },
            &input,
        );
    }
}
