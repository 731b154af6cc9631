//! Stage 2, **map**: one checked record in, one FHIR R4 transaction `Bundle` out.
//!
//! Invariants (absences): no I/O, no clock, no randomness, no logging. The same record and the
//! same mapping files always give byte-identical output; every code comes from the ConceptMaps
//! in [`crate::terminology`], and a code with no mapping is an error naming the input field and
//! the output element, never a silent pass-through.
//!
//! Layout: [`patient`], [`results`] (Observations, Specimens, classifications), [`immunization`],
//! [`parties`] (Organization, Practitioner, Location), [`provenance`] (Provenance, Consent).

mod immunization;
pub mod ips;
mod parties;
mod patient;
mod provenance;
mod results;
pub mod util;

use serde_json::{Map, Value};

use crate::error::{Issue, RejectKind, Rejection};
use crate::ingest::Record;
use crate::terminology::Terminology;
use util::{concept, identifier_query, sid, uuid_for};

/// A mapped record: the Bundle, and for each entry the input path it came from (so that a
/// finding about `Bundle.entry[i]` can name the input field too).
#[derive(Clone)]
pub struct Mapped {
    pub bundle: Value,
    pub entry_origins: Vec<String>,
    /// What the relay needs to store and route the Bundle, without reading it again.
    pub meta: RecordMeta,
    /// What is possible but unlikely in the record (not refusals): reported beside the Bundle.
    pub warnings: Vec<crate::error::Issue>,
    /// Set by the pipeline once the Bundle passed the output gate; only then can it be sealed
    /// for the queue ([`crate::pipeline::Pipeline::seal`]).
    pub(crate) gated: bool,
}

/// The Bundle holds patient data: `Debug` shows its size and the record's facts only.
impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.bundle.get("entry").and_then(Value::as_array).map_or(0, Vec::len);
        f.debug_struct("Mapped").field("entries", &entries).field("meta", &self.meta).finish()
    }
}

/// Facts of the source record that routing, idempotency and ordering use. Holds no patient data
/// but the pseudonymous `person_key`.
#[derive(Debug, Clone)]
pub struct RecordMeta {
    pub record_id: String,
    pub record_version: i64,
    pub source_system: String,
    pub destination_country: String,
    pub programme: String,
    /// SHA-256 of the source system and person id (hex, truncated): orders a person's records
    /// without naming them.
    pub person_key: String,
    /// SHA-256 of the record's canonical content ([`crate::ingest::digest`]); set by the
    /// pipeline, which holds the record as read.
    pub digest: String,
}

/// How an entry is written at the destination.
enum Request {
    /// Conditional update on a business identifier: create if absent, update if present.
    ByIdentifier { system: String, value: String },
    /// Update-as-create at a client-assigned (deterministic) id.
    ById,
}

pub(crate) struct Builder<'a> {
    pub term: &'a Terminology,
    entries: Vec<Value>,
    origins: Vec<String>,
    issues: Vec<Issue>,
    /// What the mapping gave less precisely than the record allows (a code whose context has no
    /// verified standard code): said beside the Bundle, never silently.
    warnings: Vec<Issue>,
}

impl<'a> Builder<'a> {
    fn new(term: &'a Terminology) -> Self {
        Builder { term, entries: Vec::with_capacity(24), origins: Vec::with_capacity(24), issues: Vec::new(), warnings: Vec::new() }
    }

    /// FHIRPath of the entry that the next [`Builder::add`] will create.
    pub fn next_entry_path(&self) -> String {
        format!("Bundle.entry[{}].resource", self.entries.len())
    }

    /// Adds `resource` of type `rtype`, keyed by `key` (the UUID name), and returns its full URL.
    fn add(&mut self, key: &str, mut resource: Value, request: Request, origin: &str) -> String {
        let rtype = resource["resourceType"].as_str().unwrap_or_default().to_owned();
        let id = uuid_for(&format!("{rtype}|{key}"));
        let full_url = format!("urn:uuid:{id}");
        let (method, url) = match request {
            Request::ByIdentifier { system, value } => ("PUT", identifier_query(&rtype, &system, &value)),
            Request::ById => {
                if let Some(obj) = resource.as_object_mut() {
                    // `id` goes right after `resourceType`, as FHIR JSON is usually written.
                    let mut ordered = Map::with_capacity(obj.len() + 1);
                    ordered.insert("resourceType".into(), Value::String(rtype.clone()));
                    ordered.insert("id".into(), Value::String(id.to_string()));
                    for (k, v) in std::mem::take(obj) {
                        if k != "resourceType" {
                            ordered.insert(k, v);
                        }
                    }
                    *obj = ordered;
                }
                ("PUT", format!("{rtype}/{id}"))
            }
        };
        self.entries.push(crate::obj! {
            "fullUrl": full_url.as_str(),
            "resource": resource,
            "request": crate::obj! {"method": method, "url": url},
        });
        self.origins.push(origin.to_owned());
        full_url
    }

    /// A CodeableConcept for `code` of the gateway's CodeSystem `cs`: the standard codings that
    /// ConceptMap `map` gives (in its group order), then the gateway's own coding. Records an
    /// issue when the code is unknown to the map, and a warning (with the concept's `text`) when
    /// the context selects no target in a required system (an `unmatched` target). `at` gives
    /// (input path, output FHIRPath) and is called only then: paths cost allocations.
    pub fn coded(&mut self, map: &str, cs: &str, code: &str, ctx: &[(&str, &str)], at: impl Fn() -> (String, String)) -> Value {
        let t = self.term.translate(map, code, ctx);
        if !t.known {
            let (input, output) = at();
            self.issues.push(Issue::new("code-invalid", format!("code has no mapping in ConceptMap '{map}'")).at(input).expr(output));
        }
        let mut codings = t.codings;
        // A code the map knows, in a context (method, specimen) with no verified target in a
        // required system: the record is schema-valid, so it still converts, with the codes
        // that were found, the gateway's own code and its text, and a warning naming the field.
        let fallback = t.known && !t.missing.is_empty();
        for sys in t.missing.iter().filter(|_| fallback) {
            let (input, output) = at();
            self.warnings.push(
                Issue::new(
                    "code-invalid",
                    format!("no verified code in required system {sys} for this combination in ConceptMap '{map}': the gateway's own code is sent, with text"),
                )
                .at(input)
                .expr(output),
            );
        }
        let own = self.term.gateway_coding(cs, code);
        let text = own.get("display").cloned();
        codings.push(own);
        let mut c = concept(codings);
        if fallback {
            if let Some(t) = text {
                put(&mut c, "text", t);
            }
        }
        c
    }

    /// The first standard code a map gives (e.g. administrative gender), with an issue if none.
    pub fn code_only(&mut self, map: &str, code: &str, at: impl Fn() -> (String, String)) -> Value {
        let t = self.term.translate(map, code, &[]);
        match t.codings.first().and_then(|c| c.get("code")).cloned() {
            Some(c) if t.missing.is_empty() => c,
            _ => {
                let (input, output) = at();
                self.issues.push(Issue::new("code-invalid", format!("code has no mapping in ConceptMap '{map}'")).at(input).expr(output));
                Value::Null
            }
        }
    }

    /// Checks an ISO 3166-1 alpha-3 (or ICAO 9303 nationality) code and returns its system.
    pub fn country_system(&mut self, code: &str, at: impl Fn() -> (String, String)) -> String {
        match self.term.source_system_of("country", code) {
            Some(s) => s.to_owned(),
            None => {
                let (input, output) = at();
                self.issues.push(Issue::new("code-invalid", "not an ISO 3166-1 alpha-3 or ICAO 9303 country code").at(input).expr(output));
                "urn:iso:std:iso:3166".to_owned()
            }
        }
    }

    pub fn profiles(&self, key: &str) -> Option<Value> {
        let p = self.term.profiles(key);
        (!p.is_empty()).then(|| crate::obj! { "profile": p.to_vec() })
    }

    pub fn issue(&mut self, issue: Issue) {
        self.issues.push(issue);
    }
}

/// A resource under construction: `{"resourceType": ty}`, with room for the elements the
/// mappers `put` after it (a map grown one key at a time reallocates its entries and rehashes
/// its index at 4, 8 and 16 keys: issue 17's profile of the mapping).
pub(crate) fn resource(ty: &str) -> Value {
    let mut m = Map::with_capacity(16);
    m.insert("resourceType".to_owned(), Value::String(ty.to_owned()));
    Value::Object(m)
}

/// Inserts `key: value` unless `value` is null (keeps the builders free of `if let` ladders).
pub(crate) fn put(obj: &mut Value, key: &str, value: impl Into<Value>) {
    let v = value.into();
    if !v.is_null() {
        if let Some(o) = obj.as_object_mut() {
            o.insert(key.to_owned(), v);
        }
    }
}

/// A person is a person id of one source system: two systems' `P-1` are two people.
fn person_key(source_system: &str, person_id: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("mhg-person|{}", serde_json::json!([source_system, person_id])).as_bytes());
    d.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Maps one record onto a transaction Bundle.
pub fn map_record(record: &Record, term: &Terminology) -> Result<Mapped, Rejection> {
    let mut b = Builder::new(term);
    let site = parties::site(&mut b, record);
    let physician = parties::physician(&mut b, record);
    let patient = patient::patient(&mut b, record);
    let refs = results::Refs { patient: &patient, site: &site, physician: physician.as_deref() };
    results::results(&mut b, record, &refs);
    results::classifications(&mut b, record, &refs);
    immunization::immunizations(&mut b, record, &refs);
    provenance::consent(&mut b, record, &refs);
    provenance::provenance(&mut b, record, &site);

    if !b.issues.is_empty() {
        return Err(Rejection::new(RejectKind::UnmappedCode, b.issues));
    }
    let timestamp = provenance::record_instant(record);
    let bundle = crate::obj! {
        "resourceType": "Bundle",
        "identifier": crate::obj! {"system": sid("bundle"), "value": format!("{}@{}", record.record_id, record.record_version)},
        "type": "transaction",
        "timestamp": timestamp,
        "entry": b.entries,
    };
    let meta = RecordMeta {
        record_id: record.record_id.clone(),
        record_version: i64::from(record.record_version),
        source_system: record.source_system.clone(),
        destination_country: record.assessment.destination_country.clone(),
        programme: record.assessment.programme.clone(),
        person_key: person_key(&record.source_system, &record.person.person_id),
        digest: String::new(),
    };
    Ok(Mapped { bundle, entry_origins: b.origins, meta, warnings: b.warnings, gated: false })
}
