//! The FHIR terminology operations over what the gateway has loaded, as the terminology
//! service specification defines their Parameters: `CodeSystem/$lookup`,
//! `CodeSystem/$validate-code`, `ValueSet/$validate-code`, `ValueSet/$expand` (`filter`,
//! `count`, `offset`) over the validator's packages and definitions, and `ConceptMap/$translate`
//! over the gateway's own mappings ("what does the gateway send for vaccine X").
//!
//! No I/O, no clock (the expansion's timestamp is the caller's); answers quote only codes and
//! displays of the loaded terminology and the codes asked about.

use serde_json::{Map, Value, json};

use super::profile::Validator;
use crate::terminology::Terminology;

/// Why an operation gives no answer (rendered through the error table by the HTTP layer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// A parameter the operation needs is missing or malformed (400).
    #[error("{0}")]
    Invalid(String),
    /// The code system, value set or map is not loaded here, or cannot be expanded here (404).
    #[error("{0}")]
    NotFound(String),
}

/// An operation's input parameters, from a query string or a `Parameters` resource.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, Value)>);

impl Params {
    pub fn from_query(q: &[(String, String)]) -> Params {
        Params(q.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
    }

    /// `Parameters.parameter[]`: each `value[x]` (or `resource`) by name.
    pub fn from_parameters(p: &Value) -> Result<Params, TxError> {
        if p["resourceType"] != "Parameters" {
            return Err(TxError::Invalid("the body must be a Parameters resource".into()));
        }
        let mut out = Vec::new();
        for item in p["parameter"].as_array().into_iter().flatten() {
            let Some(name) = item["name"].as_str() else { continue };
            let value =
                item.as_object().and_then(|o| o.iter().find(|(k, _)| k.starts_with("value") || *k == "resource").map(|(_, v)| v.clone()));
            if let Some(v) = value {
                out.push((name.to_owned(), v));
            }
        }
        Ok(Params(out))
    }

    pub fn extend(&mut self, other: Params) {
        self.0.extend(other.0);
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    fn uint(&self, name: &str) -> Result<Option<usize>, TxError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(|n| Some(n as usize)).ok_or_else(|| bad_int(name)),
            Some(Value::String(s)) => s.parse().map(Some).map_err(|_| bad_int(name)),
            Some(_) => Err(bad_int(name)),
        }
    }

    /// (system, code, display) from `coding`, else `codeableConcept`'s first coding, else the
    /// separate `system` (or `system_param`), `code` and `display`.
    fn coded(&self, system_param: &str) -> Option<(Option<String>, String, Option<String>)> {
        let from = |c: &Value| {
            Some((
                c["system"].as_str().map(str::to_owned),
                c["code"].as_str()?.to_owned(),
                c["display"].as_str().map(str::to_owned),
            ))
        };
        if let Some(c) = self.get("coding") {
            return from(c);
        }
        if let Some(cc) = self.get("codeableConcept") {
            return cc["coding"].as_array().and_then(|a| a.iter().find_map(from));
        }
        let code = self.str("code")?.to_owned();
        let system = self.str(system_param).or(self.str("system")).map(str::to_owned);
        Some((system, code, self.str("display").map(str::to_owned)))
    }
}

fn bad_int(name: &str) -> TxError {
    TxError::Invalid(format!("{name} must be a non-negative integer"))
}

fn parameters(items: Vec<Value>) -> Value {
    json!({"resourceType": "Parameters", "parameter": items})
}

fn p_str(name: &str, kind: &str, v: &str) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert(kind.into(), json!(v));
    Value::Object(m)
}

fn same_display(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    norm(a) == norm(b)
}

/// The name, version and display of a code of a loaded complete CodeSystem.
pub fn lookup(v: &Validator, p: &Params) -> Result<Value, TxError> {
    let (system, code, _) = p.coded("system").ok_or_else(|| TxError::Invalid("$lookup needs system and code (or coding)".into()))?;
    let system = system.ok_or_else(|| TxError::Invalid("$lookup needs a system".into()))?;
    let cs = v.code_system(&system).ok_or_else(|| TxError::NotFound(format!("the code system {system} is not loaded here")))?;
    let display = cs.get(&code).ok_or_else(|| TxError::NotFound(format!("the code is not defined in the code system {system}")))?;
    let def = v.resolve(&system);
    let name = def.as_ref().and_then(|d| d["name"].as_str().or(d["title"].as_str()).map(str::to_owned)).unwrap_or_else(|| system.clone());
    let mut out = vec![p_str("name", "valueString", &name)];
    if let Some(ver) = def.as_ref().and_then(|d| d["version"].as_str()) {
        out.push(p_str("version", "valueString", ver));
    }
    if let Some(d) = display {
        out.push(p_str("display", "valueString", d));
    }
    Ok(parameters(out))
}

fn verdict(result: bool, message: Option<String>, display: Option<&str>) -> Value {
    let mut out = vec![json!({"name": "result", "valueBoolean": result})];
    if let Some(m) = message {
        out.push(p_str("message", "valueString", &m));
    }
    if let Some(d) = display {
        out.push(p_str("display", "valueString", d));
    }
    parameters(out)
}

/// Whether a code is in a loaded complete CodeSystem, and its display right.
pub fn code_system_validate_code(v: &Validator, p: &Params) -> Result<Value, TxError> {
    let (system, code, display) = p.coded("url").ok_or_else(|| TxError::Invalid("$validate-code needs url and code (or coding)".into()))?;
    let system = system.ok_or_else(|| TxError::Invalid("$validate-code needs the code system's url".into()))?;
    let cs = v.code_system(&system).ok_or_else(|| TxError::NotFound(format!("the code system {system} is not loaded here")))?;
    Ok(match cs.get(&code) {
        None => verdict(false, Some(format!("the code is not defined in the code system {system}")), None),
        Some(d) => display_verdict(&system, display.as_deref(), d.as_deref()),
    })
}

fn display_verdict(system: &str, given: Option<&str>, known: Option<&str>) -> Value {
    match (given, known) {
        (Some(g), Some(k)) if !same_display(g, k) => verdict(
            false,
            Some(format!("wrong display for the code in the code system {system}: the valid display is '{k}'")),
            Some(k),
        ),
        _ => verdict(true, None, known),
    }
}

/// Whether a code is in a ValueSet expanded here (and its display right where its code system
/// is loaded).
pub fn value_set_validate_code(v: &Validator, p: &Params) -> Result<Value, TxError> {
    let url = p.str("url").ok_or_else(|| TxError::Invalid("$validate-code needs the value set's url".into()))?;
    let (system, code, display) = p.coded("system").ok_or_else(|| TxError::Invalid("$validate-code needs a code (or coding)".into()))?;
    let exp = v.expansion(url).ok_or_else(|| not_expandable(v, url))?;
    if !exp.has(system.as_deref(), &code) {
        return Ok(verdict(false, Some(format!("the code is not in the value set {url}")), None));
    }
    let known = system.as_deref().and_then(|s| v.code_system(s)).and_then(|cs| cs.get(&code).cloned().flatten());
    Ok(display_verdict(system.as_deref().unwrap_or(url), display.as_deref(), known.as_deref()))
}

fn not_expandable(v: &Validator, url: &str) -> TxError {
    if v.is_value_set(url) {
        TxError::NotFound(format!(
            "the value set {url} cannot be expanded here (its code systems are not loaded): ask a terminology server"
        ))
    } else {
        TxError::NotFound(format!("the value set {url} is not loaded here"))
    }
}

/// A ValueSet's expansion: codes sorted by system and code, `filter` (case-insensitive, on
/// code or display), then `offset` and `count`; `total` counts the filtered codes.
pub fn expand(v: &Validator, p: &Params, timestamp: &str) -> Result<Value, TxError> {
    let url = p.str("url").ok_or_else(|| TxError::Invalid("$expand needs the value set's url".into()))?;
    let offset = p.uint("offset")?.unwrap_or(0);
    let count = p.uint("count")?;
    let filter = p.str("filter").map(str::to_lowercase);
    let exp = v.expansion(url).ok_or_else(|| not_expandable(v, url))?;
    let mut codes: Vec<(&str, &str, Option<String>)> = exp
        .codes
        .iter()
        .map(|(s, c)| (s.as_str(), c.as_str(), v.code_system(s).and_then(|cs| cs.get(c).cloned().flatten())))
        .filter(|(_, c, d)| {
            filter.as_ref().is_none_or(|f| c.to_lowercase().contains(f) || d.as_ref().is_some_and(|d| d.to_lowercase().contains(f)))
        })
        .collect();
    codes.sort();
    let total = codes.len();
    let contains: Vec<Value> = codes
        .into_iter()
        .skip(offset)
        .take(count.unwrap_or(usize::MAX))
        .map(|(s, c, d)| {
            let mut m = Map::new();
            m.insert("system".into(), json!(s));
            m.insert("code".into(), json!(c));
            if let Some(d) = d {
                m.insert("display".into(), json!(d));
            }
            Value::Object(m)
        })
        .collect();
    let def = v.resolve(url);
    let mut params = vec![json!({"name": "offset", "valueInteger": offset})];
    if let Some(f) = p.str("filter") {
        params.push(p_str("filter", "valueString", f));
    }
    if let Some(c) = count {
        params.push(json!({"name": "count", "valueInteger": c}));
    }
    let mut vs = json!({"resourceType": "ValueSet", "url": url, "status": def.as_ref().and_then(|d| d["status"].as_str()).unwrap_or("active"),
        "expansion": {"timestamp": timestamp, "total": total, "offset": offset, "parameter": params}});
    for k in ["version", "name", "title"] {
        if let Some(x) = def.as_ref().and_then(|d| d[k].as_str()) {
            vs[k] = json!(x);
        }
    }
    if !contains.is_empty() {
        vs["expansion"]["contains"] = Value::Array(contains);
    }
    Ok(vs)
}

/// A code through one of the gateway's own ConceptMaps (`url`, or every map when absent):
/// `match` parts with the equivalence `equivalent`, `targetsystem` (or `target`) narrowing.
pub fn translate(t: &Terminology, p: &Params) -> Result<Value, TxError> {
    let code = p.coded("system").map(|(_, c, _)| c).ok_or_else(|| TxError::Invalid("$translate needs a code (or coding)".into()))?;
    let url = p.str("url").or(p.str("conceptMap"));
    let target = p.str("targetsystem").or(p.str("targetSystem"));
    let names: Vec<&str> = t.map_names().filter(|n| url.is_none_or(|u| t.map(n).is_some_and(|m| m.url == u))).collect();
    if names.is_empty() {
        return Err(TxError::NotFound(format!("no ConceptMap of the gateway has the url {}", url.unwrap_or_default())));
    }
    let mut matches = Vec::new();
    let mut sorted = names;
    sorted.sort_unstable();
    for n in sorted {
        let tr = t.translate(n, &code, &[]);
        let map_url = t.map(n).map(|m| m.url.clone()).unwrap_or_default();
        for c in tr.codings.into_iter().filter(|c| target.is_none_or(|s| c["system"].as_str() == Some(s))) {
            matches.push(json!({"name": "match", "part": [
                {"name": "equivalence", "valueCode": "equivalent"},
                {"name": "concept", "valueCoding": c},
                {"name": "source", "valueUri": map_url}]}));
        }
    }
    let mut out = vec![json!({"name": "result", "valueBoolean": !matches.is_empty()})];
    if matches.is_empty() {
        out.push(p_str("message", "valueString", "the gateway's mappings translate the code to nothing"));
    }
    out.extend(matches);
    Ok(parameters(out))
}
