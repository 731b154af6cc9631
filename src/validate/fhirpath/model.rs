//! The FHIR type model FHIRPath needs (`is`, `as`, `ofType`, `type()`, FHIR primitives, choice
//! elements, Quantity), built from R4 StructureDefinitions however they were obtained (a
//! [`Packages`] set, a trimmed package, a test fixture).
//!
//! What it indexes, per type: its kind, its base type (`Patient` → `DomainResource` →
//! `Resource`; `Age` → `Quantity`; `Patient.contact` → `BackboneElement` → `Element`), and its
//! elements with their types. Choice elements (`value[x]`) keep their allowed types; nested
//! BackboneElements become types named by their path (`Observation.component`); a
//! `contentReference` (`#Questionnaire.item`) points at the type of the element it names.
//! Only specializations are read, plus the constraint data types of core (`Age`, `Duration`,
//! `SimpleQuantity`...); profiles do not change FHIRPath typing.
//!
//! Subtyping follows the base chain, except between primitives: a `code` is not a `string` for
//! `is`/`as` (the official tests expect `Patient.gender.as(string)` to be empty).
//!
//! No I/O, no logging: the caller hands in parsed definitions.

use std::collections::HashMap;

use async_trait::async_trait;
use octofhir_fhirpath::core::model_provider::{ChoiceTypeInfo, ElementInfo, ModelProvider, TypeInfo};
use serde_json::Value;

use crate::validate::packages::Packages;

type ModelResult<T> = Result<T, octofhir_fhirpath::core::model_provider::ModelError>;

/// Names that FHIRPath's System namespace defines; a bare `Quantity` is the FHIR type.
const SYSTEM_TYPES: [&str; 9] = ["Boolean", "String", "Integer", "Long", "Decimal", "Date", "DateTime", "Time", "Quantity"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Primitive,
    Complex,
    Resource,
    /// A nested element with its own children, named by its path (`Patient.contact`).
    Backbone,
}

#[derive(Debug, Clone)]
pub struct Element {
    /// FHIR type names; more than one only for a choice element. A backbone's type is its path.
    pub types: Vec<String>,
    /// `max` is not 1: the element is a list.
    pub many: bool,
    /// Declared as `name[x]`: in JSON it appears as `name` + a capitalised type (`valueQuantity`).
    pub choice: bool,
}

#[derive(Debug, Clone)]
pub struct TypeDef {
    pub kind: Kind,
    /// The type this one specializes or constrains; `None` for `Element`, `Resource`.
    pub base: Option<String>,
    /// Element names in definition order (for `children()` and reports).
    pub order: Vec<String>,
    pub elements: HashMap<String, Element>,
}

/// Every FHIR type of a FHIR release, with its elements. Cheap to share: build once, wrap in an
/// `Arc`.
#[derive(Default)]
pub struct TypeModel {
    types: HashMap<String, TypeDef>,
    resources: Vec<String>,
    complex: Vec<String>,
    primitives: Vec<String>,
    /// Element names that are not choice elements in any type (`response`, `code`): a JSON key
    /// that extends one with a capital (`responseCode`) is another element, never its value,
    /// although octofhir reads it as a choice variant when the shorter key is absent (see
    /// [`TypeModel::shadowed_prefixes`]).
    plain_names: std::collections::HashSet<String>,
}

impl std::fmt::Debug for TypeModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypeModel")
            .field("types", &self.types.len())
            .field("resources", &self.resources.len())
            .field("primitives", &self.primitives.len())
            .finish()
    }
}

const CORE: &str = "http://hl7.org/fhir/StructureDefinition/";

fn last_segment(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// The FHIR type of one `ElementDefinition.type` entry. `id` and primitive values are typed as
/// `System.String` with the FHIR type in an extension.
fn type_code(t: &Value) -> Option<String> {
    let code = t["code"].as_str()?;
    if code.starts_with("http://hl7.org/fhirpath/System.") {
        let fhir = t["extension"].as_array().and_then(|exts| {
            exts.iter().find_map(|e| {
                (e["url"] == "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type")
                    .then(|| e["valueUrl"].as_str().or(e["valueUri"].as_str()))
                    .flatten()
            })
        });
        return Some(fhir.unwrap_or("string").to_owned());
    }
    Some(last_segment(code).to_owned())
}

impl TypeModel {
    /// Indexes the given StructureDefinitions (others are ignored). Order does not matter.
    pub fn from_definitions<'a>(definitions: impl IntoIterator<Item = &'a Value>) -> Self {
        let mut model = TypeModel::default();
        for sd in definitions {
            model.add(sd);
        }
        model.finish()
    }

    fn finish(mut self) -> Self {
        self.resources.sort();
        self.complex.sort();
        self.primitives.sort();
        let mut choices = std::collections::HashSet::new();
        for t in self.types.values() {
            for (name, e) in &t.elements {
                if e.choice {
                    choices.insert(name.clone());
                } else {
                    self.plain_names.insert(name.clone());
                }
            }
        }
        self.plain_names.retain(|n| !choices.contains(n));
        self
    }

    /// The prefixes of a JSON key, cut before a capital letter, that name a plain (non-choice)
    /// element somewhere in the model: `responseCode` -> `response`. octofhir 0.4.57 navigates
    /// a member absent from an object by scanning for keys that start with its name and a
    /// capital (a choice type's `valueQuantity` for `value`), without asking the model whether
    /// the member is a choice; so `response` read `responseCode`. The façade shadows these
    /// prefixes with an empty array (`"response": []`: nothing, to navigation and to
    /// `children()`) where the object lacks them.
    pub fn shadowed_prefixes<'k>(&'k self, key: &'k str) -> impl Iterator<Item = &'k str> + 'k {
        key.char_indices()
            .skip(1)
            .filter(|(_, c)| c.is_ascii_uppercase())
            .map(move |(i, _)| &key[..i])
            .filter(|p| self.plain_names.contains(*p))
    }

    /// The core types of the loaded packages: every StructureDefinition whose canonical URL is
    /// `http://hl7.org/fhir/StructureDefinition/<Name>`.
    pub fn from_packages(packages: &Packages) -> Self {
        let mut model = TypeModel::default();
        // One definition parsed at a time, none kept: the validator parses what it uses.
        for u in packages.urls_of_type("StructureDefinition").filter(|u| u.strip_prefix(CORE).is_some_and(|n| !n.contains('/'))) {
            if let Some(sd) = packages.read_once(u) {
                model.add(&sd);
            }
        }
        model.finish()
    }

    fn add(&mut self, sd: &Value) {
        if sd["resourceType"] != "StructureDefinition" {
            return;
        }
        let (Some(kind), Some(ty), Some(name)) = (sd["kind"].as_str(), sd["type"].as_str(), sd["name"].as_str()) else {
            return;
        };
        let kind = match kind {
            "primitive-type" => Kind::Primitive,
            "complex-type" => Kind::Complex,
            "resource" => Kind::Resource,
            _ => return,
        };
        let url = sd["url"].as_str().unwrap_or_default();
        if sd["derivation"] == "constraint" {
            // Core's constrained data types (Age, Duration, SimpleQuantity, MoneyQuantity...)
            // are types in their own right; other profiles are not.
            let own = url.strip_prefix(CORE) == Some(name);
            if kind == Kind::Complex && own && ty != "Extension" && !self.types.contains_key(name) {
                self.complex.push(name.to_owned());
                self.types.insert(
                    name.to_owned(),
                    TypeDef { kind, base: Some(ty.to_owned()), order: Vec::new(), elements: HashMap::new() },
                );
            }
            return;
        }
        if self.types.contains_key(ty) {
            return;
        }
        let base = sd["baseDefinition"].as_str().map(|b| last_segment(b).to_owned());
        match kind {
            Kind::Primitive => self.primitives.push(ty.to_owned()),
            Kind::Complex => self.complex.push(ty.to_owned()),
            Kind::Resource => self.resources.push(ty.to_owned()),
            Kind::Backbone => {}
        }
        self.types.insert(ty.to_owned(), TypeDef { kind, base, order: Vec::new(), elements: HashMap::new() });
        let elements = sd["snapshot"]["element"].as_array().or(sd["differential"]["element"].as_array());
        let Some(elements) = elements else { return };
        for (i, e) in elements.iter().enumerate() {
            let Some(path) = e["path"].as_str() else {
                continue;
            };
            let Some((parent, last)) = path.rsplit_once('.') else {
                continue;
            };
            if kind == Kind::Primitive && last == "value" {
                continue;
            }
            let (name, choice) = match last.strip_suffix("[x]") {
                Some(n) => (n, true),
                None => (last, false),
            };
            let types: Vec<String> = if let Some(r) = e["contentReference"].as_str() {
                vec![r.rsplit_once('#').map_or(r, |(_, p)| p).to_owned()]
            } else {
                e["type"].as_array().map(|ts| ts.iter().filter_map(type_code).collect()).unwrap_or_default()
            };
            let has_children = elements
                .get(i + 1)
                .and_then(|n| n["path"].as_str())
                .is_some_and(|p| p.strip_prefix(path).is_some_and(|rest| rest.starts_with('.')));
            let types = if has_children && matches!(types.as_slice(), [t] if t == "BackboneElement" || t == "Element") {
                let backbone_base = types[0].clone();
                self.types.entry(path.to_owned()).or_insert_with(|| TypeDef {
                    kind: Kind::Backbone,
                    base: Some(backbone_base),
                    order: Vec::new(),
                    elements: HashMap::new(),
                });
                vec![path.to_owned()]
            } else {
                types
            };
            let many = e["max"].as_str().is_some_and(|m| m != "1" && m != "0");
            let Some(owner) = self.types.get_mut(parent) else {
                continue;
            };
            if owner.elements.contains_key(name) {
                continue; // a slice of an element already indexed
            }
            owner.order.push(name.to_owned());
            owner.elements.insert(name.to_owned(), Element { types, many, choice });
        }
    }

    pub fn get(&self, type_name: &str) -> Option<&TypeDef> {
        self.types.get(strip_namespace(type_name))
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    pub fn is_resource(&self, name: &str) -> bool {
        self.get(name).is_some_and(|t| t.kind == Kind::Resource)
    }

    /// The element `name` of `type_name` or of one of its bases.
    pub fn element(&self, type_name: &str, name: &str) -> Option<&Element> {
        let mut current = self.get(type_name);
        let mut hops = 0;
        while let Some(t) = current {
            if let Some(e) = t.elements.get(name) {
                return Some(e);
            }
            hops += 1;
            if hops > 16 {
                return None;
            }
            current = t.base.as_deref().and_then(|b| self.types.get(b));
        }
        None
    }

    /// `derived` is `base` or specializes it (`Patient` → `Resource`, `Age` → `Quantity`,
    /// `Observation.component` → `BackboneElement`). Primitives are only themselves.
    pub fn derives_from(&self, derived: &str, base: &str) -> bool {
        let (derived, base) = (strip_namespace(derived), strip_namespace(base));
        if derived == base {
            return true;
        }
        let mut current = self.types.get(derived);
        let mut hops = 0;
        while let Some(t) = current {
            if t.kind == Kind::Primitive || hops > 16 {
                return false;
            }
            let Some(b) = t.base.as_deref() else {
                return false;
            };
            if b == base {
                return true;
            }
            hops += 1;
            current = self.types.get(b);
        }
        false
    }

    /// All elements of a type, its bases' included, in definition order (bases first).
    fn all_elements(&self, type_name: &str) -> Vec<(&str, &Element)> {
        let mut chain = Vec::new();
        let mut current = self.get(type_name);
        while let Some(t) = current {
            chain.push(t);
            if chain.len() > 16 {
                break;
            }
            current = t.base.as_deref().and_then(|b| self.types.get(b));
        }
        let mut out: Vec<(&str, &Element)> = Vec::new();
        for t in chain.iter().rev() {
            for n in &t.order {
                if let Some(e) = t.elements.get(n)
                    && !out.iter().any(|(m, _)| m == n)
                {
                    out.push((n.as_str(), e));
                }
            }
        }
        out
    }

    fn info(&self, type_name: &str, singleton: bool) -> TypeInfo {
        TypeInfo {
            type_name: type_name.to_owned(),
            singleton: Some(singleton),
            is_empty: Some(false),
            namespace: Some("FHIR".to_owned()),
            name: Some(type_name.to_owned()),
        }
    }
}

fn strip_namespace(name: &str) -> &str {
    name.strip_prefix("FHIR.").unwrap_or(name)
}

/// `Quantity` → `Quantity`, `dateTime` → `DateTime`: the suffix of a choice element in JSON.
fn capitalised(t: &str) -> String {
    let mut c = t.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn type_key(t: &TypeInfo) -> &str {
    t.name.as_deref().unwrap_or(&t.type_name)
}

#[async_trait]
impl ModelProvider for TypeModel {
    async fn get_type(&self, type_name: &str) -> ModelResult<Option<TypeInfo>> {
        let bare = strip_namespace(type_name);
        if let Some(system) = type_name.strip_prefix("System.") {
            return Ok(SYSTEM_TYPES.contains(&system).then(|| TypeInfo::system_type(system.to_owned(), true)));
        }
        if self.types.contains_key(bare) {
            return Ok(Some(self.info(bare, true)));
        }
        if bare == type_name && SYSTEM_TYPES.contains(&bare) {
            return Ok(Some(TypeInfo::system_type(bare.to_owned(), true)));
        }
        Ok(None)
    }

    async fn get_element_type(&self, parent: &TypeInfo, property: &str) -> ModelResult<Option<TypeInfo>> {
        let owner = type_key(parent);
        if let Some(e) = self.element(owner, property) {
            return Ok(match e.types.as_slice() {
                [t] if !e.choice => Some(self.info(t, !e.many)),
                _ => None,
            });
        }
        // `valueQuantity`: a choice element named with its type, as in the JSON.
        for (name, e) in self.all_elements(owner) {
            if e.choice
                && let Some(suffix) = property.strip_prefix(name)
                && let Some(t) = e.types.iter().find(|t| capitalised(t) == suffix)
            {
                return Ok(Some(self.info(t, !e.many)));
            }
        }
        Ok(None)
    }

    fn of_type(&self, type_info: &TypeInfo, target_type: &str) -> Option<TypeInfo> {
        let (ns, target) = match target_type.split_once('.') {
            Some((ns, t)) if ns == "FHIR" || ns == "System" => (Some(ns), t),
            _ => (None, target_type),
        };
        if ns.is_some() && type_info.namespace.as_deref() != ns {
            return None;
        }
        if type_info.namespace.as_deref() == Some("System") {
            return (type_info.type_name == target).then(|| type_info.clone());
        }
        self.derives_from(type_key(type_info), target).then(|| type_info.clone())
    }

    fn get_element_names(&self, parent: &TypeInfo) -> Vec<String> {
        self.all_elements(type_key(parent)).into_iter().map(|(n, _)| n.to_owned()).collect()
    }

    async fn get_children_type(&self, _parent: &TypeInfo) -> ModelResult<Option<TypeInfo>> {
        Ok(None)
    }

    async fn get_elements(&self, type_name: &str) -> ModelResult<Vec<ElementInfo>> {
        Ok(self
            .all_elements(type_name)
            .into_iter()
            .map(|(n, e)| ElementInfo {
                name: if e.choice { format!("{n}[x]") } else { n.to_owned() },
                element_type: e.types.join(" | "),
                documentation: None,
            })
            .collect())
    }

    async fn get_resource_types(&self) -> ModelResult<Vec<String>> {
        Ok(self.resources.clone())
    }

    async fn get_complex_types(&self) -> ModelResult<Vec<String>> {
        Ok(self.complex.clone())
    }

    async fn get_primitive_types(&self) -> ModelResult<Vec<String>> {
        Ok(self.primitives.clone())
    }

    async fn resource_type_exists(&self, resource_type: &str) -> ModelResult<bool> {
        Ok(self.is_resource(resource_type))
    }

    fn is_type_derived_from(&self, derived_type: &str, base_type: &str) -> bool {
        self.derives_from(derived_type, base_type)
    }

    async fn get_choice_types(&self, parent_type: &str, property: &str) -> ModelResult<Option<Vec<ChoiceTypeInfo>>> {
        Ok(self
            .element(parent_type, property)
            .filter(|e| e.choice)
            .map(|e| e.types.iter().map(|t| ChoiceTypeInfo { suffix: capitalised(t), type_name: t.clone() }).collect()))
    }
}
