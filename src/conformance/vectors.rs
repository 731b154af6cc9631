//! The published test vectors: generated from seed records by the gateway's own pipeline, and
//! checked in under `conformance/vectors/`.
//!
//! Generation (`mhg conformance vectors --out DIR`):
//! - every seed record (`tests/golden/records`) is a valid vector with the Bundle it converts to;
//! - for every enum value of the record schema ([`super::fields`]) no vector holds yet, a seed's
//!   value at that place is replaced by it (the first replacement that converts is kept);
//! - every enum value is tried once more with its optional enum siblings removed (a test without
//!   the method or specimen that picks its code); a variant kept only when the mapping says it
//!   fell back to a less specific code, so the vector pins what that gives;
//! - every optional property that no vector lacks is removed from one (and one that no vector
//!   has is reported as a gap: it needs a seed);
//! - bad vectors: each enum given a value it does not allow, each required property removed, and
//!   the rules beyond the schema (malformed JSON, a duplicate key, an unknown property, nesting
//!   too deep, impossible dates, an unknown country), each with the status, rejection code and
//!   input locations the pipeline answers.
//!
//! Variants get their own business identifiers (a suffix on every id), so that each is a record
//! of its own at a destination. Nothing here does I/O but [`write`] and [`load`].

use std::path::Path;

use serde_json::{Value, json};

use super::fields::{self, Fields};
use crate::error::Rejection;
use crate::ingest::semantic::Day;
use crate::pipeline::Pipeline;

/// A valid record and what the gateway makes of it.
#[derive(Clone)]
pub struct Valid {
    pub name: String,
    pub record: Value,
    pub bundle: Value,
    /// What the record shows (`partial-date`, `amended`, `script:Cyrl`...), for the manifest.
    pub tags: Vec<String>,
    /// Input locations of the warnings its conversion gives (mapping fallbacks, unlikely values).
    pub warnings: Vec<String>,
}

/// A record (or body) that must be refused, and how.
#[derive(Clone)]
pub struct Bad {
    pub name: String,
    pub body: Vec<u8>,
    pub expect: Expect,
}

/// The refusal a bad vector must get.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    pub status: u16,
    /// The reason in `details.coding` (CodeSystem-rejection).
    pub code: String,
    /// The issues' `location`s (input JSON Pointers), sorted.
    pub locations: Vec<String>,
}

impl Expect {
    pub fn of(r: &Rejection) -> Expect {
        let mut locations: Vec<String> = r.issues.iter().filter_map(|i| i.input_path.clone()).collect();
        locations.sort();
        locations.dedup();
        Expect { status: r.http_status(), code: r.kind.label().to_owned(), locations }
    }

    /// The same facts read from an HTTP answer: its status and OperationOutcome.
    pub fn of_answer(status: u16, outcome: &Value) -> Expect {
        let issues = outcome["issue"].as_array().cloned().unwrap_or_default();
        let code = issues.first().and_then(|i| i["details"]["coding"][0]["code"].as_str()).unwrap_or_default().to_owned();
        let mut locations: Vec<String> = issues
            .iter()
            .flat_map(|i| i["location"].as_array().cloned().unwrap_or_default())
            .filter_map(|l| l.as_str().map(str::to_owned))
            .collect();
        locations.sort();
        locations.dedup();
        Expect { status, code, locations }
    }
}

/// The whole set, as the manifest lists it.
#[derive(Clone, Default)]
pub struct VectorSet {
    pub mapping_version: String,
    pub valid: Vec<Valid>,
    pub bad: Vec<Bad>,
}

/// Why the vectors could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("seed {0} is refused by the pipeline ({1}): a seed must convert")]
    Seed(String, String),
    #[error("bad vector {0} converts: it is not a refusal")]
    NotBad(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: {1}")]
    Format(String, String),
}

/// Places tried for one variant before the value is reported as a gap.
const MAX_TRIES: usize = 24;

const ID_KEYS: &[&str] = &["recordId", "personId", "assessmentId", "resultId", "vaccinationId"];

/// Gives a variant business identifiers of its own: `-<tag>` after every id and identifier value.
fn rekey(v: &mut Value, tag: &str) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match x {
                    Value::String(s) if ID_KEYS.contains(&k.as_str()) => s.push_str(&format!("-{tag}")),
                    _ if k == "identifiers" => {
                        for id in x.as_array_mut().into_iter().flatten() {
                            if let Some(Value::String(s)) = id.get_mut("value") {
                                s.push_str(&format!("-{tag}"));
                            }
                        }
                    }
                    _ => rekey(x, tag),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rekey(x, tag)),
        _ => {}
    }
}

fn set_at(v: &mut Value, ptr: &str, new: Value) -> bool {
    v.pointer_mut(ptr).map(|x| *x = new).is_some()
}

fn remove_at(v: &mut Value, ptr: &str) -> bool {
    let Some((parent, key)) = ptr.rsplit_once('/') else { return false };
    v.pointer_mut(parent).and_then(Value::as_object_mut).and_then(|o| o.shift_remove(&key.replace("~1", "/").replace("~0", "~"))).is_some()
}

struct Gen<'a> {
    pipeline: &'a Pipeline,
    today: Day,
    set: VectorSet,
    n: usize,
}

impl Gen<'_> {
    /// Converts `record` as a variant named `name`; keeps it when it converts (and `keep` agrees).
    fn try_variant(&mut self, name: &str, mut record: Value, keep: impl Fn(&Valid) -> bool) -> bool {
        self.n += 1;
        rekey(&mut record, &format!("c{:03}", self.n));
        match self.pipeline.convert_value_at(&record, self.today) {
            Ok(m) => {
                let v = valid(name, record, m);
                if keep(&v) {
                    self.set.valid.push(v);
                    return true;
                }
                false
            }
            Err(_) => false,
        }
    }

    /// Every (record index, pointer) of `pattern` across the valid vectors so far.
    fn hosts(&self, pattern: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (i, v) in self.set.valid.iter().enumerate() {
            for (p, _) in fields::instances(&v.record, pattern) {
                out.push((i, p));
            }
        }
        out
    }
}

fn valid(name: &str, record: Value, m: crate::map::Mapped) -> Valid {
    let mut warnings: Vec<String> = m.warnings.iter().filter_map(|w| w.input_path.clone()).collect();
    warnings.sort();
    warnings.dedup();
    let tags = tags(&record, &m.bundle);
    Valid { name: name.to_owned(), record, bundle: m.bundle, tags, warnings }
}

/// Generates the set from `seeds` (name, record), converting with `pipeline` against `today`.
pub fn generate(pipeline: &Pipeline, seeds: &[(String, Value)], today: Day) -> Result<VectorSet, VectorError> {
    let mut g = Gen {
        pipeline,
        today,
        set: VectorSet { mapping_version: pipeline.terminology.mapping_version.clone(), ..Default::default() },
        n: 0,
    };
    for (name, record) in seeds {
        let m = pipeline.convert_value_at(record, today).map_err(|r| VectorError::Seed(name.clone(), r.to_string()))?;
        g.set.valid.push(valid(&format!("seed-{name}"), record.clone(), m));
    }
    let f = Fields::of(&pipeline.terminology.record_schema);
    for (pattern, values) in &f.enums {
        for value in values {
            let covered = g.set.valid.iter().any(|v| fields::instances(&v.record, pattern).iter().any(|(_, x)| *x == value));
            if covered {
                continue;
            }
            let name = format!("enum-{}-{}", fields::slug(pattern), fields::value_slug(value));
            for (i, ptr) in g.hosts(pattern).into_iter().take(MAX_TRIES) {
                let mut r = g.set.valid[i].record.clone();
                set_at(&mut r, &ptr, value.clone());
                if g.try_variant(&name, r, |_| true) {
                    break;
                }
            }
        }
    }
    fallbacks(&mut g, &f);
    for (parent, prop) in &f.optional {
        let pattern = format!("{parent}/{prop}");
        let absent =
            g.set.valid.iter().any(|v| fields::instances(&v.record, parent).iter().any(|(_, o)| o.is_object() && o.get(prop).is_none()));
        if absent {
            continue;
        }
        let name = format!("absent-{}", fields::slug(&pattern));
        for (i, ptr) in g.hosts(&pattern).into_iter().take(MAX_TRIES) {
            let mut r = g.set.valid[i].record.clone();
            remove_at(&mut r, &ptr);
            if g.try_variant(&name, r, |_| true) {
                break;
            }
        }
    }
    g.set.bad = bad_vectors(pipeline, &g.set.valid, &f)?;
    Ok(g.set)
}

/// Each enum value with its optional enum siblings removed; kept where the mapping falls back.
fn fallbacks(g: &mut Gen<'_>, f: &Fields) {
    for (pattern, values) in &f.enums {
        let Some((parent, prop)) = pattern.rsplit_once('/') else { continue };
        let siblings: Vec<&str> = f
            .optional
            .iter()
            .filter(|(p, n)| p == parent && n != prop && f.enums.contains_key(&format!("{p}/{n}")))
            .map(|(_, n)| n.as_str())
            .collect();
        if siblings.is_empty() {
            continue;
        }
        for value in values {
            let name = format!("fallback-{}-{}", fields::slug(pattern), fields::value_slug(value));
            let fell_back = |v: &Valid| !v.warnings.is_empty() && v.name.starts_with("fallback-");
            // The first place the field is: a fallback depends on the code, not on its host.
            if let Some((i, ptr)) = g.hosts(pattern).into_iter().next() {
                let mut r = g.set.valid[i].record.clone();
                set_at(&mut r, &ptr, value.clone());
                let Some((obj, _)) = ptr.rsplit_once('/') else { continue };
                for s in &siblings {
                    remove_at(&mut r, &format!("{obj}/{s}"));
                }
                // Only a fallback the mapping reports (a warning at this field) is a vector.
                let field_ptr = ptr.clone();
                let pipeline = g.pipeline;
                let today = g.today;
                let warns_here = pipeline
                    .check_and_map_at(&r, today)
                    .map(|m| m.warnings.iter().any(|w| w.code == "code-invalid" && w.input_path.as_deref() == Some(field_ptr.as_str())))
                    .unwrap_or(false);
                if warns_here {
                    g.try_variant(&name, r, fell_back);
                }
            }
        }
    }
}

/// What a record shows, found in it (not declared): partial and estimated dates, mononyms, the
/// scripts of names, amended versions, entered-in-error entries, size.
pub fn tags(record: &Value, bundle: &Value) -> Vec<String> {
    let mut t = Vec::new();
    let mut strings = Vec::new();
    collect_strings(record, "", &mut strings);
    let partial = |s: &str| {
        s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit())
            || (s.len() == 7 && s.as_bytes()[4] == b'-' && s[..4].bytes().all(|b| b.is_ascii_digit()))
    };
    if strings.iter().any(|(k, s)| (k.ends_with("birthDate") || k.ends_with("/date") || k.ends_with("Date")) && partial(s)) {
        t.push("partial-date".to_owned());
    }
    if record["person"]["birthDateEstimated"] == json!(true) || strings.iter().any(|(k, _)| k.contains("stimated")) {
        t.push("estimated-date".to_owned());
    }
    for n in record["person"]["names"].as_array().into_iter().flatten() {
        let given = n["given"].as_array().is_some_and(|g| !g.is_empty());
        if n.get("family").is_none() || !given {
            t.push("mononym".to_owned());
        }
        if let Some(s) = n["script"].as_str() {
            t.push(format!("script:{s}"));
        }
    }
    if record["recordVersion"].as_u64().is_some_and(|v| v > 1) {
        t.push("amended".to_owned());
    }
    if strings.iter().any(|(k, s)| k.ends_with("/status") && s == "entered-in-error") {
        t.push("entered-in-error".to_owned());
    }
    if bundle["entry"].as_array().is_some_and(|e| e.len() >= 50) {
        t.push("large".to_owned());
    }
    t.sort();
    t.dedup();
    t
}

fn collect_strings(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((path.to_owned(), s.clone())),
        Value::Object(m) => m.iter().for_each(|(k, x)| collect_strings(x, &format!("{path}/{k}"), out)),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, &format!("{path}/*"), out)),
        Value::Bool(true) => out.push((path.to_owned(), "true".to_owned())),
        _ => {}
    }
}

/// The kinds of record every published set must include (beyond enum and optional coverage).
pub const REQUIRED_TAGS: &[&str] = &["partial-date", "estimated-date", "mononym", "amended", "entered-in-error", "large"];

/// What the set does not cover of the schema and of [`REQUIRED_TAGS`]; empty when complete.
pub fn coverage_gaps(set: &VectorSet, schema: &Value) -> Vec<String> {
    let f = Fields::of(schema);
    let mut gaps = Vec::new();
    for (pattern, values) in &f.enums {
        for value in values {
            if !set.valid.iter().any(|v| fields::instances(&v.record, pattern).iter().any(|(_, x)| *x == value)) {
                gaps.push(format!("enum {pattern} = {value}: no valid vector holds it"));
            }
            if !set.bad.is_empty() && !set.bad.iter().any(|b| b.name == format!("bad-enum-{}", fields::slug(pattern))) {
                gaps.push(format!("enum {pattern}: no bad vector gives it a value it does not allow"));
                break;
            }
        }
    }
    for (parent, prop) in &f.optional {
        let inst: Vec<(bool, bool)> = set
            .valid
            .iter()
            .flat_map(|v| {
                fields::instances(&v.record, parent).into_iter().filter(|(_, o)| o.is_object()).map(|(_, o)| (o.get(prop).is_some(), true))
            })
            .collect();
        if inst.is_empty() {
            continue; // its parent is optional and absent everywhere: reported for the parent
        }
        if !inst.iter().any(|(p, _)| *p) {
            gaps.push(format!("optional {parent}/{prop}: no valid vector has it"));
        }
        if !inst.iter().any(|(p, _)| !*p) {
            gaps.push(format!("optional {parent}/{prop}: no valid vector lacks it"));
        }
    }
    let tags: Vec<&String> = set.valid.iter().flat_map(|v| &v.tags).collect();
    for t in REQUIRED_TAGS {
        if !tags.iter().any(|x| x.as_str() == *t) {
            gaps.push(format!("no vector is {t}"));
        }
    }
    let scripts = tags.iter().filter(|t| t.starts_with("script:")).collect::<std::collections::BTreeSet<_>>().len();
    if scripts < 3 {
        gaps.push(format!("names in {scripts} scripts; at least 3 wanted"));
    }
    gaps
}

pub use super::bad::bad_vectors;

/// Writes the set under `dir`: `manifest.json`, `valid/`, `bad/` (the TestScripts are written by
/// [`super::testscript`]).
pub fn write(set: &VectorSet, dir: &Path) -> Result<(), VectorError> {
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |e| VectorError::Io(p, e)
    };
    for sub in ["valid", "bad"] {
        let d = dir.join(sub);
        if d.exists() {
            std::fs::remove_dir_all(&d).map_err(io(&d))?;
        }
        std::fs::create_dir_all(&d).map_err(io(&d))?;
    }
    let pretty = |v: &Value| {
        let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
        s.push('\n');
        s
    };
    for v in &set.valid {
        let p = dir.join("valid").join(format!("{}.record.json", v.name));
        std::fs::write(&p, pretty(&v.record)).map_err(io(&p))?;
        let p = dir.join("valid").join(format!("{}.bundle.json", v.name));
        std::fs::write(&p, pretty(&v.bundle)).map_err(io(&p))?;
    }
    for b in &set.bad {
        let p = dir.join("bad").join(format!("{}.json", b.name));
        std::fs::write(&p, &b.body).map_err(io(&p))?;
    }
    let p = dir.join("manifest.json");
    std::fs::write(&p, pretty(&manifest(set))).map_err(io(&p))
}

/// The manifest: every vector, its files and what it must give.
pub fn manifest(set: &VectorSet) -> Value {
    json!({
        "format": "mhg-conformance-vectors",
        "version": 1,
        "mappingVersion": set.mapping_version,
        "valid": set.valid.iter().map(|v| json!({
            "name": v.name,
            "record": format!("valid/{}.record.json", v.name),
            "bundle": format!("valid/{}.bundle.json", v.name),
            "identity": {"sourceSystem": v.record["sourceSystem"], "recordId": v.record["recordId"], "recordVersion": v.record["recordVersion"]},
            "tags": v.tags,
            "warnings": v.warnings,
        })).collect::<Vec<_>>(),
        "bad": set.bad.iter().map(|b| json!({
            "name": b.name,
            "body": format!("bad/{}.json", b.name),
            "contentType": "application/json",
            "status": b.expect.status,
            "code": b.expect.code,
            "locations": b.expect.locations,
        })).collect::<Vec<_>>(),
    })
}

/// Reads a set written by [`write`].
pub fn load(dir: &Path) -> Result<VectorSet, VectorError> {
    let read = |rel: &str| {
        let p = dir.join(rel);
        std::fs::read(&p).map_err(|e| VectorError::Io(p.display().to_string(), e))
    };
    let json = |rel: &str| -> Result<Value, VectorError> {
        serde_json::from_slice(&read(rel)?).map_err(|e| VectorError::Format(dir.join(rel).display().to_string(), e.to_string()))
    };
    let m = json("manifest.json")?;
    if m["format"] != "mhg-conformance-vectors" {
        return Err(VectorError::Format(
            dir.join("manifest.json").display().to_string(),
            "not a vector manifest (format)".into(),
        ));
    }
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let strings = |v: &Value| v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_owned)).collect::<Vec<_>>();
    let mut set = VectorSet { mapping_version: s(&m, "mappingVersion"), ..Default::default() };
    for v in m["valid"].as_array().into_iter().flatten() {
        set.valid.push(Valid {
            name: s(v, "name"),
            record: json(&s(v, "record"))?,
            bundle: json(&s(v, "bundle"))?,
            tags: strings(&v["tags"]),
            warnings: strings(&v["warnings"]),
        });
    }
    for b in m["bad"].as_array().into_iter().flatten() {
        set.bad.push(Bad {
            name: s(b, "name"),
            body: read(&s(b, "body"))?,
            expect: Expect {
                status: b["status"].as_u64().unwrap_or_default() as u16,
                code: s(b, "code"),
                locations: strings(&b["locations"]),
            },
        });
    }
    Ok(set)
}
