//! Code translation, as data: the FHIR `ConceptMap`s and `CodeSystem`s under `mappings/`.
//!
//! Loaded once at start-up and checked then: every file parses, every target says its
//! equivalence, every code the record schema allows for a mapped field has a target in each
//! system the manifest marks as required. A destination may add *override* directories: a
//! ConceptMap there with the same `url` replaces the shipped groups that have the same
//! (source, target) pair and adds the others, so national codes need no rebuild.
//!
//! This module does no I/O after [`Terminology::load`] and knows nothing of records or FHIR
//! resources beyond `Coding`; the exception is [`delegate`], which asks configured terminology
//! servers about codes the gateway has no content for (network and its disk cache).

pub mod delegate;
mod load;

use foldhash::HashMap;

use serde_json::{Map, Value, json};

pub use load::load;

/// Canonical base of everything the gateway defines itself.
pub const BASE: &str = "https://w3id.org/mhg/fhir";
/// `dependsOn.property` values understood in ConceptMaps.
pub const PROP_METHOD: &str = "https://w3id.org/mhg/fhir/record#result.method";
pub const PROP_SPECIMEN: &str = "https://w3id.org/mhg/fhir/record#result.specimen";

pub fn gateway_system(code_system: &str) -> String {
    format!("{BASE}/CodeSystem/{code_system}")
}

/// A target of one element of one group, ready to emit.
#[derive(Debug, Clone)]
struct Target {
    /// The FHIR `Coding` JSON, prebuilt (None for `unmatched`).
    coding: Option<Value>,
    code: Option<String>,
    depends_on: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct Group {
    source: String,
    target: String,
    elements: HashMap<String, Vec<Target>>,
}

/// One loaded ConceptMap.
#[derive(Debug, Clone)]
pub struct MapIndex {
    pub url: String,
    pub version: String,
    /// Where it was read from (the last file that contributed), for error messages.
    pub file: String,
    groups: Vec<Group>,
}

/// How a map is used: which schema field supplies its codes and which target systems every code
/// must reach. From `mappings/mappings.json`.
#[derive(Debug, Clone)]
pub struct MapBinding {
    pub url: String,
    pub field: Option<String>,
    pub require: Vec<String>,
}

#[derive(Debug)]
pub struct Terminology {
    /// Version of the mapping set (manifest `mappingVersion`), quoted in every Provenance.
    pub mapping_version: String,
    maps: HashMap<String, MapIndex>,
    bindings: HashMap<String, MapBinding>,
    /// Gateway CodeSystem name -> code -> prebuilt `Coding` (with display), from the
    /// gateway's own CodeSystems under `mappings/codesystems`.
    own: HashMap<String, HashMap<String, Value>>,
    /// Profiles claimed in `meta.profile`, by key (resource type, or `Observation:<category>`,
    /// or `Observation:test:<test>`).
    profiles: HashMap<String, Vec<String>>,
    /// The record schema, as loaded from the mapping directory.
    pub record_schema: Value,
}

/// What a lookup found: the standard codings (group order), and whether each required target
/// system was reached.
#[derive(Debug, Default)]
pub struct Translation {
    /// The code appears in the map at all (as coded or `unmatched`).
    pub known: bool,
    pub codings: Vec<Value>,
    /// Required target systems with no coding for this code (and context).
    pub missing: Vec<String>,
}

impl Terminology {
    /// Standard codings for `code` through map `name`: for each group whose source matches,
    /// the first target whose `dependsOn` all hold in `ctx`; a target with no `dependsOn` is the
    /// default. Required systems not reached are listed in `missing`.
    pub fn translate(&self, name: &str, code: &str, ctx: &[(&str, &str)]) -> Translation {
        let mut t = Translation::default();
        if let Some(map) = self.maps.get(name) {
            for g in &map.groups {
                let Some(targets) = g.elements.get(code) else { continue };
                t.known = true;
                let hit = targets.iter().find(|tg| tg.depends_on.iter().all(|(p, v)| ctx.iter().any(|(cp, cv)| cp == p && cv == v)));
                if let Some(Target { coding: Some(c), .. }) = hit {
                    t.codings.push(c.clone());
                }
            }
        }
        if let Some(b) = self.bindings.get(name) {
            for sys in &b.require {
                if !t.codings.iter().any(|c| c["system"].as_str() == Some(sys)) {
                    t.missing.push(sys.clone());
                }
            }
        }
        t
    }

    /// Every coded target (all of them, not the first) of `code` into `target_system`: for
    /// one-to-many maps such as vaccine -> target diseases.
    pub fn all_targets(&self, name: &str, code: &str, target_system: &str) -> Vec<Value> {
        let Some(map) = self.maps.get(name) else { return Vec::new() };
        map.groups
            .iter()
            .filter(|g| g.target == target_system)
            .filter_map(|g| g.elements.get(code))
            .flatten()
            .filter_map(|t| t.coding.clone())
            .collect()
    }

    /// The target *code* (not a Coding) of `code` into `target_system`, e.g. a country's numeric
    /// code or an identifier type's system URI.
    pub fn target_code(&self, name: &str, code: &str, target_system: &str) -> Option<&str> {
        let map = self.maps.get(name)?;
        map.groups
            .iter()
            .filter(|g| g.target == target_system)
            .filter_map(|g| g.elements.get(code))
            .flatten()
            .find_map(|t| t.code.as_deref())
    }

    /// Whether `code` appears as a source code in any group of map `name` (coded or unmatched).
    pub fn knows(&self, name: &str, code: &str) -> bool {
        self.maps.get(name).is_some_and(|m| m.groups.iter().any(|g| g.elements.contains_key(code)))
    }

    /// Source systems of a map's groups (e.g. ISO 3166 vs ICAO nationality codes).
    pub fn source_system_of(&self, name: &str, code: &str) -> Option<&str> {
        let map = self.maps.get(name)?;
        map.groups.iter().find(|g| g.elements.contains_key(code)).map(|g| g.source.as_str())
    }

    /// The gateway's own coding for `code` in its CodeSystem `code_system`.
    pub fn gateway_coding(&self, code_system: &str, code: &str) -> Value {
        if let Some(c) = self.own.get(code_system).and_then(|m| m.get(code)) {
            return c.clone();
        }
        let mut m = Map::new();
        m.insert("system".into(), Value::String(gateway_system(code_system)));
        m.insert("code".into(), json!(code));
        Value::Object(m)
    }

    pub fn profiles(&self, key: &str) -> &[String] {
        self.profiles.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn map(&self, name: &str) -> Option<&MapIndex> {
        self.maps.get(name)
    }

    pub fn map_names(&self) -> impl Iterator<Item = &str> {
        self.maps.keys().map(String::as_str)
    }
}
