//! A StructureDefinition snapshot compiled once into a tree of elements that the walker reads
//! without string parsing: children by JSON name, slices beside their sliced element, types,
//! cardinality, fixed/pattern values, bindings and constraints.
//!
//! Knows nothing about instances; no I/O.

use std::collections::HashMap;

use serde_json::{Map, Value};

pub type ElemId = usize;

#[derive(Debug, Clone)]
pub struct TypeRef {
    /// `string`, `CodeableConcept`, `Reference`, `Patient`, ... (FHIRPath system types mapped to
    /// the FHIR primitive that carries them).
    pub code: String,
    /// Profiles the value must meet (`type.profile`).
    pub profiles: Vec<String>,
    /// For references and canonicals: allowed targets (`type.targetProfile`).
    pub targets: Vec<String>,
    /// For references: where the target may be (`contained`, `referenced`, `bundled`); empty
    /// for anywhere.
    pub aggregation: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    Required,
    Extensible,
    Other,
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub strength: Strength,
    pub value_set: String,
    /// Value sets every value must also be in: additional bindings of purpose `required` (R5's
    /// `binding.additional`, in R4 by extension) and the `maxValueSet` extension.
    pub also_required: Vec<String>,
}

/// Extensions of `ElementDefinition.binding` naming further value sets a value must be in.
const ADDITIONAL_BINDING: [&str; 2] = [
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.binding.additional",
    "http://hl7.org/fhir/tools/StructureDefinition/additional-binding",
];
const MAX_VALUE_SET: &str = "http://hl7.org/fhir/StructureDefinition/elementdefinition-maxValueSet";

/// The value sets of a binding's `required` additional bindings and its `maxValueSet`.
fn also_required(b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for x in b.get("extension").and_then(Value::as_array).into_iter().flatten() {
        let url = x["url"].as_str().unwrap_or_default();
        if url == MAX_VALUE_SET {
            out.extend(x["valueCanonical"].as_str().or(x["valueUri"].as_str()).map(str::to_owned));
        } else if ADDITIONAL_BINDING.contains(&url) {
            let sub = x["extension"].as_array().map(Vec::as_slice).unwrap_or_default();
            let part = |n: &str| sub.iter().find(|s| s["url"] == n);
            let purpose = part("purpose").and_then(|p| p["valueCode"].as_str());
            if matches!(purpose, Some("required" | "maximum")) && part("usage").is_none() {
                out.extend(part("valueSet").and_then(|v| v["valueCanonical"].as_str()).map(str::to_owned));
            }
        }
    }
    out
}

/// Whether a FHIRPath expression can read beyond the node it is evaluated on: the resource or
/// root (`%resource`, `%rootResource`, `%context` is the focus and does not count), what a
/// reference resolves to, or the clock. Conservative: any environment variable other than the
/// terminology constants counts.
pub fn reads_context(expr: &str) -> bool {
    if expr.contains("resolve(") || expr.contains("today(") || expr.contains("now(") || expr.contains("timeOfDay(") {
        return true;
    }
    expr.match_indices('%').any(|(i, _)| {
        let rest = &expr[i + 1..];
        !(rest.starts_with("context") || rest.starts_with("ucum") || rest.starts_with("sct") || rest.starts_with("loinc"))
    })
}

#[derive(Debug, Clone)]
pub struct Constraint {
    pub key: String,
    pub error: bool,
    pub expression: String,
    pub human: String,
    /// Marked best practice (`elementdefinition-bestpractice`): reported as the validator's
    /// best-practice level says, whatever its severity.
    pub best_practice: bool,
    /// The expression reads beyond its focus (`%resource`, `%rootResource`, `resolve()`, the
    /// clock): its verdict on a subtree depends on where the subtree sits, so a walk that
    /// evaluates it is not memoised as clean (`walk/clean.rs`).
    pub context: bool,
    /// The expression compiled into the engine-free subset (`None` inside: outside it).
    pub compiled: std::sync::OnceLock<Option<std::sync::Arc<super::native::Expr>>>,
    /// For `A implies B` outside the subset: `A` compiled, when it is inside.
    pub guard: std::sync::OnceLock<Option<std::sync::Arc<super::native::Expr>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    Open,
    Closed,
    OpenAtEnd,
}

#[derive(Debug, Clone)]
pub struct Discriminator {
    pub kind: String,
    pub path: String,
}

#[derive(Debug, Clone)]
pub struct Slicing {
    pub discriminators: Vec<Discriminator>,
    pub ordered: bool,
    pub rules: Rules,
}

#[derive(Debug, Clone)]
pub struct Elem {
    pub path: String,
    /// JSON name without `[x]` (`value` for `value[x]`).
    pub name: String,
    pub shadow: String,
    pub choice: bool,
    /// For choice elements: (JSON key, shadow key, type index).
    pub choice_keys: Vec<(String, String, usize)>,
    pub slice_name: Option<String>,
    pub min: u32,
    pub max: Option<u32>,
    /// The base definition allows more than one (decides array vs single in JSON).
    pub base_many: bool,
    pub base_path: String,
    pub types: Vec<TypeRef>,
    pub content_ref: Option<String>,
    pub fixed: Option<Value>,
    pub pattern: Option<Value>,
    pub binding: Option<Binding>,
    pub constraints: Vec<Constraint>,
    pub slicing: Option<Slicing>,
    pub children: Vec<ElemId>,
    pub slices: Vec<ElemId>,
    pub is_modifier: bool,
    pub min_value: Option<Value>,
    pub max_value: Option<Value>,
    pub max_length: Option<usize>,
    /// The JSON keys of `children`, indexed on first use by the walk.
    pub keys: std::sync::OnceLock<super::keys::KeyIndex>,
}

#[derive(Debug)]
pub struct Profile {
    pub url: String,
    pub name: String,
    /// The type constrained (`Patient`, `Extension`, `HumanName`).
    pub type_name: String,
    pub kind: String,
    pub is_abstract: bool,
    pub base_definition: Option<String>,
    pub elements: Vec<Elem>,
    /// Extension context (type, expression).
    pub contexts: Vec<(String, String)>,
    by_path: HashMap<String, ElemId>,
}

pub const SYSTEM_PREFIX: &str = "http://hl7.org/fhirpath/System.";

pub fn is_primitive(code: &str) -> bool {
    code.as_bytes().first().is_some_and(|c| c.is_ascii_lowercase())
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

fn type_ref(t: &Value) -> Option<TypeRef> {
    let code = t["code"].as_str()?;
    let code = match code.strip_prefix(SYSTEM_PREFIX) {
        Some(s) => match s {
            "String" => "string",
            "Boolean" => "boolean",
            "Integer" => "integer",
            "Decimal" => "decimal",
            "Date" => "date",
            "DateTime" => "dateTime",
            "Time" => "time",
            _ => "string",
        }
        .to_owned(),
        None => code.to_owned(),
    };
    // `Element.id` and `Extension.url` declare an extension naming the real FHIR type.
    let code = t["extension"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["url"] == "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"))
        .and_then(|e| e["valueUrl"].as_str().or(e["valueUri"].as_str()))
        .map(str::to_owned)
        .unwrap_or(code);
    let strs = |k: &str| -> Vec<String> {
        t[k].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    };
    Some(TypeRef { code, profiles: strs("profile"), targets: strs("targetProfile"), aggregation: strs("aggregation") })
}

fn prefixed<'a>(obj: &'a Map<String, Value>, prefix: &str) -> Option<&'a Value> {
    obj.iter().find(|(k, _)| k.starts_with(prefix) && k.len() > prefix.len()).map(|(_, v)| v)
}

/// A `max`: `*` is unbounded. A definition that writes it as a JSON number (`"max": 0`) means
/// that number, as the HL7 validator's parser reads it.
fn card(v: &Value) -> Option<u32> {
    match v {
        Value::String(s) if s == "*" => None,
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    }
}

pub fn compile_elem(e: &Map<String, Value>) -> Elem {
    let path = e.get("path").and_then(Value::as_str).unwrap_or_default().to_owned();
    let last = path.rsplit('.').next().unwrap_or_default();
    let choice = last.ends_with("[x]");
    let name = last.trim_end_matches("[x]").to_owned();
    let mut types: Vec<TypeRef> =
        e.get("type").and_then(Value::as_array).map(|a| a.iter().filter_map(type_ref).collect()).unwrap_or_default();
    // R4 declares `Resource.id` as a System.String; the specification says it is an `id`.
    if e.get("base").and_then(|b| b["path"].as_str()) == Some("Resource.id") {
        for t in &mut types {
            t.code = "id".into();
        }
    }
    let choice_keys = if choice {
        types
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("{name}{}", upper_first(&t.code)), format!("_{name}{}", upper_first(&t.code)), i))
            .collect()
    } else {
        Vec::new()
    };
    let max = e.get("max").and_then(card);
    let base_max = e.get("base").map(|b| &b["max"]);
    let base_many = match base_max {
        Some(Value::String(s)) => s != "1" && s != "0",
        _ => max != Some(1) && max != Some(0),
    };
    let binding = e.get("binding").and_then(|b| {
        let vs = b["valueSet"].as_str()?;
        let strength = match b["strength"].as_str()? {
            "required" => Strength::Required,
            "extensible" => Strength::Extensible,
            _ => Strength::Other,
        };
        Some(Binding { strength, value_set: vs.to_owned(), also_required: also_required(b) })
    });
    let constraints = e
        .get("constraint")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| {
                    let key = c["key"].as_str()?;
                    let expression = super::errata::fix(key, c["expression"].as_str()?).into_owned();
                    Some(Constraint {
                        key: key.to_owned(),
                        error: c["severity"].as_str() != Some("warning"),
                        context: reads_context(&expression),
                        expression,
                        human: c["human"].as_str().unwrap_or_default().to_owned(),
                        best_practice: c["extension"].as_array().is_some_and(|x| {
                            x.iter().any(|x| {
                                x["url"] == "http://hl7.org/fhir/StructureDefinition/elementdefinition-bestpractice"
                                    && x["valueBoolean"] == true
                            })
                        }),
                        compiled: std::sync::OnceLock::new(),
                        guard: std::sync::OnceLock::new(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let slicing = e.get("slicing").map(|s| Slicing {
        discriminators: s["discriminator"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| Discriminator {
                        kind: d["type"].as_str().unwrap_or("value").to_owned(),
                        path: d["path"].as_str().unwrap_or("$this").to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        ordered: s["ordered"].as_bool().unwrap_or(false),
        rules: match s["rules"].as_str() {
            Some("closed") => Rules::Closed,
            Some("openAtEnd") => Rules::OpenAtEnd,
            _ => Rules::Open,
        },
    });
    Elem {
        shadow: format!("_{name}"),
        base_path: e.get("base").and_then(|b| b["path"].as_str()).unwrap_or(&path).to_owned(),
        path,
        name,
        choice,
        choice_keys,
        slice_name: e.get("sliceName").and_then(Value::as_str).map(str::to_owned),
        min: e.get("min").and_then(Value::as_u64).unwrap_or(0) as u32,
        max,
        base_many,
        types,
        content_ref: e.get("contentReference").and_then(Value::as_str).map(|s| s.trim_start_matches('#').to_owned()),
        fixed: prefixed(e, "fixed").cloned(),
        pattern: prefixed(e, "pattern").cloned(),
        binding,
        constraints,
        slicing,
        children: Vec::new(),
        slices: Vec::new(),
        is_modifier: e.get("isModifier").and_then(Value::as_bool).unwrap_or(false),
        min_value: prefixed(e, "minValue").cloned(),
        max_value: prefixed(e, "maxValue").cloned(),
        max_length: e.get("maxLength").and_then(Value::as_u64).map(|n| n as usize),
        keys: std::sync::OnceLock::new(),
    }
}

/// R4 core's `vitalsigns` and the core profiles derived from it.
fn is_core_vital_signs(sd: &Value) -> bool {
    const VITALS: &str = "http://hl7.org/fhir/StructureDefinition/vitalsigns";
    let url = sd["url"].as_str().unwrap_or_default();
    url == VITALS || (url.starts_with("http://hl7.org/fhir/StructureDefinition/") && sd["baseDefinition"] == VITALS)
}

fn parent_path(p: &str) -> Option<&str> {
    p.rfind('.').map(|i| &p[..i])
}

impl Profile {
    /// Builds the tree from a StructureDefinition holding a snapshot.
    pub fn compile(sd: &Value, snapshot: &[Value]) -> Result<Profile, String> {
        let mut elements: Vec<Elem> = Vec::with_capacity(snapshot.len());
        let mut active: HashMap<String, ElemId> = HashMap::new();
        let mut unsliced: HashMap<String, ElemId> = HashMap::new();
        let mut by_path = HashMap::new();
        let vitals = is_core_vital_signs(sd);
        for e in snapshot {
            let Some(obj) = e.as_object() else { continue };
            let mut el = compile_elem(obj);
            // Errata, as HL7's own validator applies it: R4's vital-signs profiles bind every
            // component's unit to ucum-vitals-common as required, yet their components (an
            // inhaled oxygen flow in L/min beside a saturation) need other units: extensible.
            if vitals && el.path == "Observation.component.value[x]" {
                if let Some(b) = el.binding.as_mut().filter(|b| b.value_set.starts_with("http://hl7.org/fhir/ValueSet/ucum-vitals-common"))
                {
                    b.strength = Strength::Extensible;
                }
            }
            // `Observation.valueQuantity` in a snapshot is the `value[x]` element for one type.
            if elements.is_empty() {
                // root
            } else if !active.contains_key(parent_path(&el.path).unwrap_or_default()) {
                continue;
            }
            let id = elements.len();
            // A renamed choice (`valueQuantity`) constrains `value[x]`: treat it as that element.
            if let Some(pp) = parent_path(&el.path.clone()).map(str::to_owned) {
                let pp = pp.as_str();
                if !el.choice && !unsliced.contains_key(&el.path) {
                    let last = el.path[pp.len() + 1..].to_owned();
                    let last = last.as_str();
                    let choice_path = unsliced.keys().find(|k| {
                        k.strip_prefix(pp).and_then(|r| r.strip_prefix('.')).and_then(|r| r.strip_suffix("[x]")).is_some_and(|stem| {
                            last.len() > stem.len() && last.starts_with(stem) && last.as_bytes()[stem.len()].is_ascii_uppercase()
                        })
                    });
                    if let Some(cp) = choice_path.cloned() {
                        let base = unsliced[&cp];
                        el.path = cp.clone();
                        el.name = elements[base].name.clone();
                        el.shadow = elements[base].shadow.clone();
                        el.choice = true;
                        el.choice_keys = el
                            .types
                            .iter()
                            .enumerate()
                            .map(|(i, t)| {
                                (format!("{}{}", el.name, upper_first(&t.code)), format!("_{}{}", el.name, upper_first(&t.code)), i)
                            })
                            .collect();
                        if el.slice_name.is_none() {
                            el.slice_name = Some(last.to_owned());
                        }
                        el.base_many = elements[base].base_many;
                    }
                }
            }
            let path = el.path.clone();
            let is_slice = el.slice_name.is_some() && unsliced.contains_key(&path);
            elements.push(el);
            if is_slice {
                let base = unsliced[&path];
                // Re-slices (`a/b`) are kept as slices of the same element.
                elements[base].slices.push(id);
            } else {
                unsliced.insert(path.clone(), id);
                by_path.entry(path.clone()).or_insert(id);
                if let Some(pp) = parent_path(&path) {
                    if let Some(&parent) = active.get(pp) {
                        elements[parent].children.push(id);
                    }
                }
            }
            // Descendants of an earlier element at this path are no longer reachable by path.
            active.retain(|k, _| !(k.len() > path.len() && k.starts_with(path.as_str()) && k.as_bytes()[path.len()] == b'.'));
            active.insert(path, id);
        }
        if elements.is_empty() {
            return Err("snapshot has no elements".into());
        }
        let contexts = sd["context"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        (
                            c["type"].as_str().unwrap_or("element").to_owned(),
                            c["expression"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Profile {
            url: sd["url"].as_str().unwrap_or_default().to_owned(),
            name: sd["name"].as_str().unwrap_or_default().to_owned(),
            type_name: sd["type"].as_str().unwrap_or_default().to_owned(),
            kind: sd["kind"].as_str().unwrap_or_default().to_owned(),
            is_abstract: sd["abstract"].as_bool().unwrap_or(false),
            base_definition: sd["baseDefinition"].as_str().map(str::to_owned),
            elements,
            contexts,
            by_path,
        })
    }

    pub fn elem(&self, id: ElemId) -> &Elem {
        &self.elements[id]
    }

    pub fn by_path(&self, path: &str) -> Option<ElemId> {
        self.by_path.get(path).copied()
    }
}
