//! Where the Bundle came from: a `Provenance` naming the source record (id and version), the
//! gateway and mapping versions, the enterer and attester; and the person's `Consent` when the
//! record states one.

use serde_json::{Value, json};

use super::results::Refs;
use super::util::{norm_datetime, reference, sid};
use super::{Builder, Request, put};
use crate::ingest::Record;

/// The record's own time (last update, else creation, else the exam date at midnight UTC). Used
/// for `Provenance.recorded` and `Bundle.timestamp`, so that output does not depend on the clock.
pub fn record_instant(r: &Record) -> String {
    match &r.provenance {
        Some(p) => norm_datetime(p.updated.as_deref().unwrap_or(&p.created)),
        None => format!("{}T00:00:00Z", r.assessment.exam_date),
    }
}

pub fn consent(b: &mut Builder, r: &Record, refs: &Refs) {
    let Some(c) = r.provenance.as_ref().and_then(|p| p.consent.as_ref()) else { return };
    let out = b.next_entry_path();
    let status = b.code_only("consent-status", &c.status, || ("/provenance/consent/status".to_owned(), format!("{out}.status")));
    let mut cons = super::resource("Consent");
    put(&mut cons, "identifier", json!([{"system": sid("consent"), "value": r.record_id}]));
    put(&mut cons, "status", status);
    put(
        &mut cons,
        "scope",
        json!({"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy", "display": "Privacy Consent"
        }]}),
    );
    put(
        &mut cons,
        "category",
        json!([{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}]),
    );
    put(&mut cons, "patient", reference(refs.patient));
    if let Some(d) = &c.date {
        put(&mut cons, "dateTime", d.as_str());
    }
    put(&mut cons, "organization", json!([reference(refs.site)]));
    let granted = c.status == "granted";
    put(
        &mut cons,
        "policyRule",
        json!({"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": if granted { "OPTIN" } else { "OPTOUT" }
        }]}),
    );
    if let Some(s) = &c.scope {
        let purpose = b.coded("consent-scope", "consent-scope", s, &[], || {
            ("/provenance/consent/scope".to_owned(), format!("{out}.provision.purpose"))
        });
        let codings = purpose["coding"].as_array().cloned().unwrap_or_default();
        put(&mut cons, "provision", json!({"type": if granted { "permit" } else { "deny" }, "purpose": codings}));
    }
    b.add(
        &format!("consent|{}", r.record_id),
        cons,
        Request::ByIdentifier { system: sid("consent"), value: r.record_id.clone() },
        "/provenance/consent",
    );
}

pub fn provenance(b: &mut Builder, r: &Record, site: &str) {
    let targets: Vec<Value> = b.entries.iter().map(|e| crate::obj! {"reference": e["fullUrl"].clone()}).collect();
    let participant = |code: &str, display: &str| json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": code, "display": display}]});
    let mut agents = vec![
        json!({
            "type": participant("assembler", "Assembler"),
            "who": {
                "identifier": {"system": sid("software"), "value": "mhg"},
                "display": format!("mhg {} (mappings {})", env!("CARGO_PKG_VERSION"), b.term.mapping_version)
            }
        }),
        json!({"type": participant("custodian", "Custodian"), "who": reference(site)}),
    ];
    if let Some(p) = &r.provenance {
        if let Some(e) = &p.entered_by {
            agents.push(json!({"type": participant("enterer", "Enterer"), "who": {"display": e}}));
        }
        if let Some(a) = &p.attested_by {
            agents.push(json!({"type": participant("attester", "Attester"), "who": {"display": a}}));
        }
    }
    let activity = if r.record_version > 1 { ("UPDATE", "revise") } else { ("CREATE", "create") };
    let mut prov = super::resource("Provenance");
    put(&mut prov, "target", Value::Array(targets));
    if let Some(p) = &r.provenance {
        put(&mut prov, "occurredDateTime", norm_datetime(&p.created));
    }
    put(&mut prov, "recorded", record_instant(r));
    put(
        &mut prov,
        "activity",
        json!({"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": activity.0, "display": activity.1
        }]}),
    );
    put(&mut prov, "agent", Value::Array(agents));
    put(
        &mut prov,
        "entity",
        json!([{
            "role": "source",
            "what": {
                "identifier": {
                    "system": sid("source-record"),
                    "value": format!("{}@{}", r.record_id, r.record_version),
                    "assigner": {"display": r.source_system}
                },
                "display": format!("source record {} version {} (schema {})", r.record_id, r.record_version, r.schema_version)
            }
        }]),
    );
    b.add(
        &format!("{}|{}|{}", r.source_system, r.record_id, r.record_version),
        prov,
        Request::ById,
        "/provenance",
    );
}
