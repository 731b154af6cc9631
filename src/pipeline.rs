//! The conversion pipeline, **ingest -> map -> validate**, as one value that interfaces (CLI,
//! HTTP) share. Built once at start-up from the mapping and conformance directories; after that
//! it is immutable and does no I/O, so it is shared across threads behind an `Arc`.
//!
//! "Today", against which the plausibility checks compare dates, is taken once per call at the
//! entry ([`today_utc`], or passed in by the caller: `*_at`), never read deeper down.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{GatewayError, Issue, RejectKind, Rejection, SourceRef};
use crate::ingest::semantic::Day;
use crate::ingest::{self, Record, RecordSchema};
use crate::map::{self, Mapped};
use crate::terminology::{self, Terminology};
use crate::validate::R4Schema;
use crate::validate::profile::{Severity, Validator};

pub struct Pipeline {
    pub schema: RecordSchema,
    pub terminology: Terminology,
    pub r4: R4Schema,
    /// Deepest JSON nesting accepted in input.
    pub max_depth: usize,
    /// The profile validator (shipped and configured packages), for `$validate` and the gate.
    pub validator: Arc<Validator>,
    /// Produced Bundles must pass `validator` (`[validation] profile_gate`).
    pub profile_gate: bool,
    /// Terminology servers `$validate` delegates unloaded code systems to (`[terminology]`).
    pub tx: Option<Arc<crate::terminology::delegate::Delegation>>,
}

/// One input record's fate.
#[derive(Debug)]
pub struct Outcome {
    pub source: SourceRef,
    pub result: Result<Mapped, Rejection>,
}

impl Pipeline {
    /// Loads `mappings/` (plus override directories) and `conformance/fhir-r4/fhir.schema.json`.
    /// Also loads the profile validator from `conformance/packages` (shipped definitions only).
    pub fn load(mappings: &Path, overrides: &[std::path::PathBuf], conformance: &Path, max_depth: usize) -> Result<Self, GatewayError> {
        let validator = crate::validate::profile::load::load(&conformance.join("packages"), &[], &[])?;
        Self::load_with(mappings, overrides, conformance, max_depth, Arc::new(validator))
    }

    /// As [`Pipeline::load`], with a profile validator built by the caller.
    pub fn load_with(
        mappings: &Path,
        overrides: &[std::path::PathBuf],
        conformance: &Path,
        max_depth: usize,
        validator: Arc<Validator>,
    ) -> Result<Self, GatewayError> {
        let terminology = terminology::load(mappings, overrides)?;
        let schema = RecordSchema::compile(&terminology.record_schema)
            .map_err(|message| GatewayError::Mapping { file: mappings.join("record.schema.json").display().to_string(), message })?;
        let r4_path = conformance.join("fhir-r4").join("fhir.schema.json");
        let r4_bytes = std::fs::read(&r4_path).map_err(|e| GatewayError::Config {
            file: r4_path.display().to_string(),
            message: format!("cannot read the FHIR R4 JSON schema: {e}"),
        })?;
        let r4_json: Value = serde_json::from_slice(&r4_bytes)
            .map_err(|e| GatewayError::Config { file: r4_path.display().to_string(), message: format!("not JSON: {e}") })?;
        let r4 = R4Schema::compile(&r4_json).map_err(|message| GatewayError::Config { file: r4_path.display().to_string(), message })?;
        Ok(Pipeline { schema, terminology, r4, max_depth, validator, profile_gate: true, tx: None })
    }

    /// Checks one parsed record and maps it, without the output gate (for benchmarks of the
    /// mapping alone).
    pub fn check_and_map(&self, value: &Value) -> Result<Mapped, Rejection> {
        self.check_and_map_at(value, today_utc())
    }

    /// [`Pipeline::check_and_map`], with the caller's today.
    pub fn check_and_map_at(&self, value: &Value, today: Day) -> Result<Mapped, Rejection> {
        let issues = self.schema.check(value);
        if !issues.is_empty() {
            return Err(Rejection::new(RejectKind::Schema, issues));
        }
        let issues = ingest::semantic::check(value);
        if !issues.is_empty() {
            return Err(Rejection::new(RejectKind::Schema, issues));
        }
        let issues = ingest::semantic::plausibility(value, today);
        if !issues.is_empty() {
            return Err(Rejection::new(RejectKind::Implausible, issues));
        }
        let has_empty = contains_empty_string(value);
        let record: Record = if has_empty {
            let mut pruned = value.clone();
            ingest::semantic::prune_empty(&mut pruned);
            Record::deserialize_checked(&pruned)?
        } else {
            Record::deserialize_checked(value)?
        };
        let mut mapped = map::map_record(&record, &self.terminology)?;
        // The record's content as read: tells a resend from a correction without a new version.
        // `recordVersion` written `1.0` is version 1 (the schema reads integers so): the same
        // record, so the same digest.
        mapped.meta.digest = if value.get("recordVersion").and_then(Value::as_u64) == Some(u64::from(record.record_version)) {
            ingest::digest::content_digest(value)
        } else {
            let mut v = value.clone();
            v["recordVersion"] = Value::from(record.record_version);
            ingest::digest::content_digest(&v)
        };
        mapped.warnings.extend(ingest::semantic::unlikely(value, today));
        Ok(mapped)
    }

    /// The whole pipeline for one parsed record: schema, semantic checks, mapping, output gate.
    pub fn convert_value(&self, value: &Value) -> Result<Mapped, Rejection> {
        self.convert_value_at(value, today_utc())
    }

    /// [`Pipeline::convert_value`], with the caller's today (for the plausibility checks).
    pub fn convert_value_at(&self, value: &Value, today: Day) -> Result<Mapped, Rejection> {
        let mut mapped = self.check_and_map_at(value, today)?;
        let mut issues = self.r4.check_bundle(&mapped.bundle);
        if issues.is_empty() && self.profile_gate {
            // Each entry against its own meta.profile (and base R4); errors only.
            issues = self
                .validator
                .validate(&mapped.bundle, &[])
                .into_iter()
                .filter(|f| f.severity == Severity::Error)
                .map(|f| Issue::new(f.code, format!("produced FHIR does not meet its profile: {}", f.text)).expr(f.expression))
                .collect();
        }
        if issues.is_empty() {
            mapped.gated = true;
            return Ok(mapped);
        }
        // Counted by the profile the failing entry claims (a definition's URL: a closed set).
        let entries = mapped.bundle.get("entry").and_then(Value::as_array);
        for i in &issues {
            let profile = entry_index(i.expression.as_deref())
                .and_then(|n| entries?.get(n))
                .and_then(|e| e["resource"]["meta"]["profile"][0].as_str().or(e["resource"]["resourceType"].as_str()))
                .unwrap_or("Bundle");
            crate::ops::inc("mhg_validation_failures_total", &[("profile", profile)], 1);
        }
        // Name the input field too: the entry's origin in the record.
        let issues = issues
            .into_iter()
            .map(|i| match entry_index(i.expression.as_deref()) {
                Some(n) => match mapped.entry_origins.get(n) {
                    Some(origin) => i.at(origin.clone()),
                    None => i,
                },
                None => i,
            })
            .collect();
        Err(Rejection::new(RejectKind::OutputInvalid, issues))
    }

    /// Reads every record in `bytes` and converts each.
    pub fn convert_bytes(&self, bytes: &[u8], file: Option<&str>) -> Vec<Outcome> {
        self.convert_items(ingest::read_records(bytes, file, self.max_depth))
    }

    /// Converts records already split by [`ingest::read_records`], all against one today.
    pub fn convert_items(&self, items: Vec<ingest::Item>) -> Vec<Outcome> {
        let today = today_utc();
        items.into_iter().map(|item| self.convert_item(item, today)).collect()
    }

    /// Converts one record split by [`ingest::read_records`], or passes on why it could not be
    /// read. A path the reader named (a duplicate key's object) is cut before the first segment
    /// the record schema does not define: such a key is the record's text.
    pub fn convert_item(&self, item: ingest::Item, today: Day) -> Outcome {
        let read = item.value.map_err(|mut r| {
            for i in &mut r.issues {
                if let Some(p) = &i.input_path {
                    let known = self.schema.known_prefix(p);
                    if known.len() < p.len() {
                        i.input_path = (!known.is_empty()).then(|| known.to_owned());
                    }
                }
            }
            r
        });
        let result = read.and_then(|v| self.convert_value_at(&v, today)).map_err(|r| r.with_source(item.source.clone()));
        Outcome { source: item.source, result }
    }
}

/// Today in UTC, from the system clock: read once per request or batch, by its entry point.
pub fn today_utc() -> Day {
    Day::from_unix_secs(crate::calendar::now_ms().div_euclid(1000))
}

/// A produced Bundle that passed the output gate, as the bytes the queue stores. Only
/// [`Pipeline::seal`] makes one, from a Bundle the gate passed: the queue takes nothing else, so
/// an unvalidated Bundle cannot be stored.
#[derive(Clone)]
pub struct ValidatedBundle(Vec<u8>);

impl ValidatedBundle {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// For the store's own tests and benchmarks, which store bytes that mean nothing: never for
    /// records.
    #[doc(hidden)]
    pub fn for_store_tests(bytes: Vec<u8>) -> ValidatedBundle {
        ValidatedBundle(bytes)
    }
}

impl std::fmt::Debug for ValidatedBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValidatedBundle({} bytes)", self.0.len())
    }
}

impl Pipeline {
    /// The Bundle of a record the whole pipeline converted (output gate included), as the bytes
    /// to store. A Bundle that did not pass the gate is refused: that would be a defect of the
    /// caller, answered as a refusal of the output, never stored.
    pub fn seal(&self, mapped: &Mapped) -> Result<ValidatedBundle, Rejection> {
        if !mapped.gated {
            return Err(Rejection::one(
                RejectKind::OutputInvalid,
                Issue::new("exception", "the Bundle did not pass the output gate"),
            ));
        }
        serde_json::to_vec(&mapped.bundle)
            .map(ValidatedBundle)
            .map_err(|_| Rejection::one(RejectKind::OutputInvalid, Issue::new("exception", "the Bundle could not be serialised")))
    }
}

fn contains_empty_string(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.iter().any(contains_empty_string),
        Value::Object(m) => m.values().any(contains_empty_string),
        _ => false,
    }
}

impl Pipeline {
    /// Checks a produced Bundle against the profiles a destination requires: each profile
    /// applies to the entries of the type it constrains. Findings of severity error, each
    /// naming the output FHIRPath, the profile, and the input field the entry came from.
    pub fn check_destination_profiles(&self, mapped: &Mapped, destination: &str, profiles: &[String]) -> Vec<Issue> {
        let mut out = Vec::new();
        let Some(entries) = mapped.bundle.get("entry").and_then(Value::as_array) else { return out };
        for url in profiles {
            let Some(profile) = self.validator.profile(url) else {
                out.push(Issue::new(
                    "not-found",
                    format!("destination '{destination}' requires profile {url}, which is not loaded"),
                ));
                continue;
            };
            for (i, e) in entries.iter().enumerate() {
                let resource = &e["resource"];
                if resource.get("resourceType").and_then(Value::as_str) != Some(profile.type_name.as_str()) {
                    continue;
                }
                let prefix = format!("Bundle.entry[{i}].resource");
                for f in self.validator.validate(resource, &[url.as_str()]) {
                    if f.severity != Severity::Error {
                        continue;
                    }
                    let expr = match f.expression.strip_prefix(profile.type_name.as_str()) {
                        Some(rest) => format!("{prefix}{rest}"),
                        None => prefix.clone(),
                    };
                    let mut issue =
                        Issue::new(f.code, format!("does not meet {url}, required by destination '{destination}': {}", f.text)).expr(expr);
                    if let Some(origin) = mapped.entry_origins.get(i) {
                        issue = issue.at(origin.clone());
                    }
                    crate::ops::inc("mhg_validation_failures_total", &[("profile", url.as_str())], 1);
                    out.push(issue);
                }
            }
        }
        out
    }
}

fn entry_index(expr: Option<&str>) -> Option<usize> {
    let rest = expr?.strip_prefix("Bundle.entry[")?;
    rest.split(']').next()?.parse().ok()
}

impl Record {
    /// Deserialises a record that already passed the schema. A failure here is a gateway defect
    /// (schema and types disagree), reported without the value.
    pub fn deserialize_checked(value: &Value) -> Result<Record, Rejection> {
        let mut record = Record::deserialize(value).map_err(|_| {
            Rejection::one(
                RejectKind::Schema,
                Issue::new("structure", "record passed the schema but does not fit the record model"),
            )
        })?;
        record.keep_number_text(value);
        Ok(record)
    }
}

/// What a converted record is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A transaction Bundle (the default).
    #[default]
    Transaction,
    /// An International Patient Summary document Bundle ([`crate::map::ips`]).
    Ips,
    /// The printable page of the IPS document ([`crate::map::ips::page`]); not for destinations.
    Html,
}

impl Format {
    /// `transaction`, `ips` or `html`; None for anything else.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "transaction" => Some(Format::Transaction),
            "ips" => Some(Format::Ips),
            "html" => Some(Format::Html),
            _ => None,
        }
    }
}

impl Pipeline {
    /// The IPS document of a record the whole pipeline converted, through the same output gate
    /// as the transaction: the FHIR R4 schema, then the profile validator with the document held
    /// to `Bundle-uv-ips` (and every entry to its own profiles). The result is gated, so it can be
    /// sealed for the queue like a transaction.
    pub fn document(&self, mapped: &Mapped) -> Result<Mapped, Rejection> {
        if !mapped.gated {
            return Err(Rejection::one(
                RejectKind::OutputInvalid,
                Issue::new("exception", "the Bundle did not pass the output gate"),
            ));
        }
        let doc = map::ips::document(&mapped.bundle);
        let issues = self.document_findings(&doc);
        // Each document entry's origin is that of the transaction entry with its full URL.
        let tx = mapped.bundle["entry"].as_array().map(Vec::as_slice).unwrap_or_default();
        let origins: Vec<String> = doc["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                tx.iter().position(|t| t["fullUrl"] == e["fullUrl"]).and_then(|i| mapped.entry_origins.get(i)).cloned().unwrap_or_default()
            })
            .collect();
        if !issues.is_empty() {
            for _ in &issues {
                crate::ops::inc("mhg_validation_failures_total", &[("profile", map::ips::BUNDLE_PROFILE)], 1);
            }
            let issues = issues
                .into_iter()
                .map(
                    |i| match entry_index(i.expression.as_deref()).and_then(|n| origins.get(n)).filter(|o| !o.is_empty()) {
                        Some(o) => i.at(o.clone()),
                        None => i,
                    },
                )
                .collect();
            return Err(Rejection::new(RejectKind::OutputInvalid, issues));
        }
        Ok(Mapped { bundle: doc, entry_origins: origins, meta: mapped.meta.clone(), warnings: mapped.warnings.clone(), gated: true })
    }

    /// The document gate: the FHIR R4 schema, then (with `profile_gate`) the profile validator
    /// holding the document to `Bundle-uv-ips`; its errors.
    fn document_findings(&self, doc: &Value) -> Vec<Issue> {
        let mut issues = self.r4.check_bundle(doc);
        if issues.is_empty() && self.profile_gate {
            issues = self
                .validator
                .validate(doc, &[map::ips::BUNDLE_PROFILE])
                .into_iter()
                .filter(|f| f.severity == Severity::Error)
                .map(|f| Issue::new(f.code, format!("produced IPS document does not meet its profile: {}", f.text)).expr(f.expression))
                .collect();
        }
        issues
    }

    /// The IPS document of a transaction Bundle the queue stored (sealed after the output gate
    /// when its record was accepted), built by the same code and held to the same gate as
    /// [`Pipeline::document`]: what `Patient/$summary` answers.
    pub fn stored_document(&self, stored: &[u8]) -> Result<Value, Rejection> {
        let tx: Value = serde_json::from_slice(stored)
            .map_err(|_| Rejection::one(RejectKind::OutputInvalid, Issue::new("exception", "the stored Bundle is not JSON")))?;
        let doc = map::ips::document(&tx);
        let issues = self.document_findings(&doc);
        if !issues.is_empty() {
            crate::ops::inc("mhg_validation_failures_total", &[("profile", map::ips::BUNDLE_PROFILE)], issues.len() as u64);
            return Err(Rejection::new(RejectKind::OutputInvalid, issues));
        }
        Ok(doc)
    }

    /// The printable page of a record: the HTML of its gated IPS document.
    pub fn page(&self, mapped: &Mapped) -> Result<String, Rejection> {
        let doc = if mapped.bundle["type"] == "document" { mapped.clone() } else { self.document(mapped)? };
        Ok(map::ips::page::render(&doc.bundle))
    }
}
