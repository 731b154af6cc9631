//! Reading and checking the mapping directory. All errors name the file and the JSON path.

use foldhash::{HashMap, HashMapExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Group, MapBinding, MapIndex, Target, Terminology};
use crate::error::GatewayError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Manifest {
    mapping_version: String,
    record_schema: String,
    maps: HashMap<String, ManifestMap>,
    #[serde(default)]
    profiles: HashMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestMap {
    url: String,
    field: Option<String>,
    #[serde(default)]
    require: Vec<String>,
}

fn err(file: &Path, message: impl Into<String>) -> GatewayError {
    GatewayError::Mapping { file: file.display().to_string(), message: message.into() }
}

fn read_json(path: &Path) -> Result<Value, GatewayError> {
    let bytes = std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| err(path, format!("not valid JSON: {e}")))
}

/// `*.json` files directly in `dir` and in its `codesystems/` and `conceptmaps/` folders, sorted
/// so that loading order (and therefore override order) is the same on every machine.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in [dir.to_path_buf(), dir.join("codesystems"), dir.join("conceptmaps")] {
        if let Ok(rd) = std::fs::read_dir(&d) {
            let mut files: Vec<PathBuf> =
                rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
            files.sort();
            out.extend(files);
        }
    }
    out
}

fn str_at<'a>(v: &'a Value, key: &str, file: &Path, at: &str) -> Result<&'a str, GatewayError> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| err(file, format!("{at}.{key}: required string is missing")))
}

fn parse_conceptmap(v: &Value, file: &Path) -> Result<MapIndex, GatewayError> {
    let url = str_at(v, "url", file, "ConceptMap")?.to_owned();
    let version = v.get("version").and_then(Value::as_str).unwrap_or("").to_owned();
    let groups_json = v.get("group").and_then(Value::as_array).ok_or_else(|| err(file, "ConceptMap.group: required array is missing"))?;
    let mut groups = Vec::new();
    for (gi, g) in groups_json.iter().enumerate() {
        let at = format!("ConceptMap.group[{gi}]");
        let source = str_at(g, "source", file, &at)?.to_owned();
        let target = str_at(g, "target", file, &at)?.to_owned();
        let target_version = g.get("targetVersion").and_then(Value::as_str);
        let mut elements: HashMap<String, Vec<Target>> = HashMap::new();
        let els =
            g.get("element").and_then(Value::as_array).ok_or_else(|| err(file, format!("{at}.element: required array is missing")))?;
        for (ei, e) in els.iter().enumerate() {
            let at = format!("{at}.element[{ei}]");
            let code = str_at(e, "code", file, &at)?.to_owned();
            let mut targets = Vec::new();
            for (ti, t) in e.get("target").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let at = format!("{at}.target[{ti}]");
                let equivalence = str_at(t, "equivalence", file, &at)?;
                const KNOWN: [&str; 10] = [
                    "relatedto",
                    "equivalent",
                    "equal",
                    "wider",
                    "subsumes",
                    "narrower",
                    "specializes",
                    "inexact",
                    "unmatched",
                    "disjoint",
                ];
                if !KNOWN.contains(&equivalence) {
                    return Err(err(file, format!("{at}.equivalence: '{equivalence}' is not an R4 ConceptMapEquivalence")));
                }
                let tcode = t.get("code").and_then(Value::as_str).map(str::to_owned);
                let coded = !matches!(equivalence, "unmatched" | "disjoint");
                if coded && tcode.is_none() {
                    return Err(err(file, format!("{at}.code: required unless equivalence is unmatched")));
                }
                let mut depends_on = Vec::new();
                for (di, d) in t.get("dependsOn").and_then(Value::as_array).into_iter().flatten().enumerate() {
                    let at = format!("{at}.dependsOn[{di}]");
                    let p = str_at(d, "property", file, &at)?;
                    if p != super::PROP_METHOD && p != super::PROP_SPECIMEN {
                        return Err(err(file, format!("{at}.property: '{p}' is not a property the gateway supplies")));
                    }
                    depends_on.push((p.to_owned(), str_at(d, "value", file, &at)?.to_owned()));
                }
                let coding = match (&tcode, coded) {
                    (Some(c), true) => {
                        let mut m = Map::new();
                        m.insert("system".into(), Value::String(target.clone()));
                        if let Some(v) = target_version {
                            m.insert("version".into(), Value::String(v.to_owned()));
                        }
                        m.insert("code".into(), Value::String(c.clone()));
                        if let Some(d) = t.get("display").and_then(Value::as_str) {
                            m.insert("display".into(), Value::String(d.to_owned()));
                        }
                        Some(Value::Object(m))
                    }
                    _ => None,
                };
                targets.push(Target { coding, code: if coded { tcode } else { None }, depends_on });
            }
            elements.entry(code).or_default().extend(targets);
        }
        groups.push(Group { source, target, elements });
    }
    Ok(MapIndex { url, version, file: file.display().to_string(), groups })
}

/// Merges an override into a loaded map: groups with the same (source, target) are replaced.
fn merge(base: &mut MapIndex, over: MapIndex) {
    for g in over.groups {
        if let Some(slot) = base.groups.iter_mut().find(|b| b.source == g.source && b.target == g.target) {
            *slot = g;
        } else {
            base.groups.push(g);
        }
    }
    base.file = over.file;
    if !over.version.is_empty() {
        base.version = over.version;
    }
}

fn pointer_enum(schema: &Value, pointer: &str) -> Option<Vec<String>> {
    let node = schema.pointer(pointer)?;
    let e = node.get("enum").or_else(|| node.get("items").and_then(|i| i.get("enum")))?;
    Some(e.as_array()?.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
}

/// Loads `base` (which holds `mappings.json`) and then each override directory in order.
pub fn load(base: &Path, overrides: &[PathBuf]) -> Result<Terminology, GatewayError> {
    let manifest_path = base.join("mappings.json");
    let manifest: Manifest = serde_json::from_value(read_json(&manifest_path)?).map_err(|e| err(&manifest_path, format!("{e}")))?;
    let schema_path = base.join(&manifest.record_schema);
    let record_schema = read_json(&schema_path)?;

    let mut by_url: HashMap<String, MapIndex> = HashMap::new();
    let mut own: HashMap<String, HashMap<String, Value>> = HashMap::new();
    for (layer, dir) in std::iter::once(base).chain(overrides.iter().map(PathBuf::as_path)).enumerate() {
        if layer > 0 && !dir.is_dir() {
            return Err(err(dir, "override mapping directory does not exist"));
        }
        for file in json_files(dir) {
            if file == manifest_path || file == schema_path {
                continue;
            }
            let v = read_json(&file)?;
            match v.get("resourceType").and_then(Value::as_str) {
                Some("ConceptMap") => {
                    let m = parse_conceptmap(&v, &file)?;
                    match by_url.get_mut(&m.url) {
                        Some(existing) if layer > 0 => merge(existing, m),
                        Some(_) => return Err(err(&file, format!("ConceptMap.url '{}' is defined twice", m.url))),
                        None => {
                            by_url.insert(m.url.clone(), m);
                        }
                    }
                }
                Some("CodeSystem") => {
                    let url = str_at(&v, "url", &file, "CodeSystem")?.to_owned();
                    // Only the gateway's own systems are emitted as "own" codings.
                    let Some(name) = url.strip_prefix(&format!("{}/CodeSystem/", super::BASE)) else { continue };
                    let codes = own.entry(name.to_owned()).or_default();
                    for c in v.get("concept").and_then(Value::as_array).into_iter().flatten() {
                        if let Some(code) = c.get("code").and_then(Value::as_str) {
                            let mut m = Map::new();
                            m.insert("system".into(), Value::String(url.clone()));
                            m.insert("code".into(), Value::String(code.to_owned()));
                            if let Some(d) = c.get("display").and_then(Value::as_str) {
                                m.insert("display".into(), Value::String(d.to_owned()));
                            }
                            codes.insert(code.to_owned(), Value::Object(m));
                        }
                    }
                }
                Some(_) | None if file.file_name().is_some_and(|n| n == "not-transmitted.json") => {}
                other => {
                    return Err(err(
                        &file,
                        format!("resourceType: expected ConceptMap or CodeSystem, found {}", other.unwrap_or("none")),
                    ));
                }
            }
        }
    }

    let mut maps = HashMap::new();
    let mut bindings = HashMap::new();
    for (name, mm) in &manifest.maps {
        let Some(idx) = by_url.get(&mm.url) else {
            return Err(err(&manifest_path, format!("maps.{name}.url: no ConceptMap with url '{}' was found", mm.url)));
        };
        if let Some(field) = &mm.field {
            let Some(codes) = pointer_enum(&record_schema, field) else {
                return Err(err(&manifest_path, format!("maps.{name}.field: '{field}' is not an enum of the record schema")));
            };
            for code in codes {
                if !idx.groups.iter().any(|g| g.elements.contains_key(&code)) {
                    return Err(err(
                        std::path::Path::new(&idx.file),
                        format!("ConceptMap '{name}' has no element for '{code}' (allowed by the record schema at {field})"),
                    ));
                }
                for sys in &mm.require {
                    let reached = idx
                        .groups
                        .iter()
                        .filter(|g| &g.target == sys)
                        .any(|g| g.elements.get(&code).is_some_and(|ts| ts.iter().any(|t| t.coding.is_some())));
                    if !reached {
                        return Err(err(
                            std::path::Path::new(&idx.file),
                            format!("ConceptMap '{name}': code '{code}' has no target in required system {sys}"),
                        ));
                    }
                }
            }
        }
        maps.insert(name.clone(), idx.clone());
        bindings.insert(
            name.clone(),
            MapBinding { url: mm.url.clone(), field: mm.field.clone(), require: mm.require.clone() },
        );
    }

    Ok(Terminology { mapping_version: manifest.mapping_version, maps, bindings, own, profiles: manifest.profiles, record_schema })
}
