//! A resource, wherever it sits (the root, `contained`, a Bundle entry, a Parameters value):
//! which profiles it is checked against (those named, its `meta.profile`s, the vital-signs
//! profile R4 requires, else its base definition), its `%rootResource`, the rules of
//! conformance resources ([`definitions`](super::super::definitions)), and dom-3 (each
//! contained resource is referred to).
//!
//! No I/O, no clock; findings name paths and definitions, never instance values.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{Host, Item, Scope, Walk};
use crate::validate::profile::json;
use crate::validate::profile::json::SmallGet;
use crate::validate::profile::model::Profile;
use crate::validate::profile::{Finding, Severity, Validator, definitions, measure, opdef, questionnaire, searchparam};

/// The checks of one resource type beyond its StructureDefinition (`definitions.rs`,
/// `questionnaire.rs`...): the resource's JSON object at its FHIRPath.
type ResourceRules = fn(&Validator, &Map<String, Value>, &str, &mut Vec<Finding>);

impl Walk<'_> {
    /// A resource (at the root, in `contained`, in a Bundle entry or a Parameters value).
    pub fn resource<'v>(&mut self, value: &'v Value, extra: &[Arc<Profile>], outer: Scope<'v>) {
        self.ctx = true;
        let Some(obj) = value.as_object() else {
            self.report(Severity::Error, "structure", "a resource must be a JSON object");
            return;
        };
        let Some(rt) = obj.sget("resourceType").and_then(Value::as_str) else {
            self.report(Severity::Error, "structure", "resourceType is missing: not a FHIR resource");
            return;
        };
        let Some(base) = self.v.type_profile(rt).filter(|p| p.kind == "resource" && !p.is_abstract) else {
            self.report(Severity::Error, "structure", format!("unknown resource type {rt}"));
            return;
        };
        let mut profiles: Vec<Arc<Profile>> = Vec::new();
        for p in extra {
            if p.type_name == rt {
                profiles.push(p.clone());
            } else if !matches!(p.type_name.as_str(), "Resource" | "DomainResource") {
                self.report(Severity::Error, "structure", format!("profile {} is for {}, not {rt}", p.url, p.type_name));
            }
        }
        if let Some(mp) = obj.sget("meta").and_then(|m| m.sget("profile")).and_then(Value::as_array) {
            for (i, u) in mp.iter().enumerate() {
                let Some(u) = u.as_str() else { continue };
                match self.v.profile(u) {
                    Some(p) if p.type_name == rt => {
                        if !profiles.iter().any(|q| q.url == p.url) {
                            profiles.push(p)
                        }
                    }
                    Some(p) => {
                        let len = self.push("meta.profile", Some(i));
                        self.report(Severity::Error, "structure", format!("profile {} is for {}, not {rt}", p.url, p.type_name));
                        self.path.truncate(len);
                    }
                    None => {
                        let len = self.push("meta.profile", Some(i));
                        self.report(Severity::Warning, "not-found", format!("profile {u} is not known: not checked"));
                        self.path.truncate(len);
                    }
                }
            }
        }
        // ImplementationGuide.global: the loaded guides' profiles for every resource of a type.
        for u in self.v.global_profiles(rt) {
            match self.v.profile(u) {
                Some(p) if p.type_name == rt => {
                    if !profiles.iter().any(|q| q.url == p.url) {
                        profiles.push(p);
                    }
                }
                _ => self.report(
                    Severity::Warning,
                    "not-found",
                    format!("the global profile {u} of a loaded ImplementationGuide is not known: not checked"),
                ),
            }
        }
        // R4 (Vital Signs): an Observation coded with a vital sign's code SHALL conform to
        // that sign's core profile, whether it claims it or not.
        if rt == "Observation" {
            if let Some((code, p)) = self.v.vital_sign_profile(obj) {
                if !profiles.iter().any(|q| q.url == p.url) {
                    self.report(
                        Severity::Information,
                        "informational",
                        format!("checked against {} as R4 requires of an Observation with the code {code}", p.url),
                    );
                    profiles.push(p);
                }
            }
        }
        let index;
        let mut scope = Scope { resource: value, container: Some(outer.resource), res_ptr: self.ptr.len(), ..outer };
        // `%rootResource` (FHIRPath): the resource itself unless it is contained. A resource of
        // a Parameters or a Bundle entry is a root of its own (the HL7 validator's `forEntry`:
        // ref-1 finds an entry's contained resources).
        let is_contained = contains(outer.resource, value);
        let in_parameters = matches!(json::at(outer.resource, "resourceType").as_str(), Some("Parameters" | "Bundle")) && !is_contained;
        if (outer.bundle.is_none() && outer.root.as_object().is_some_and(|r| std::ptr::eq(r, obj))) || in_parameters {
            scope.root = value;
            scope.root_ptr = self.ptr.len();
        }
        // The rules of one resource type that its StructureDefinition cannot state.
        let resource_rules: Option<ResourceRules> = match rt {
            "StructureDefinition" => Some(definitions::structure_definition),
            "OperationDefinition" => Some(opdef::check),
            "QuestionnaireResponse" => Some(questionnaire::check),
            "MeasureReport" => Some(measure::check),
            "SearchParameter" => Some(searchparam::search_parameter),
            "CapabilityStatement" => Some(searchparam::capability_statement),
            _ => None,
        };
        if let Some(rules) = resource_rules {
            rules(self.v, obj, &self.path.clone(), self.out);
        }
        if self.v.is_canonical_resource(rt) {
            if self.v.no_experimental_content() && obj.sget("experimental") == Some(&Value::Bool(true)) {
                self.report(Severity::Error, "business-rule", "Experimental content is not allowed in this context");
            }
            definitions::canonical_resource(self.v, rt, obj, &self.path.clone(), is_contained, self.out);
        }
        if rt == "Bundle" {
            index = self.bundle_rules(obj);
            scope.bundle = Some(&index);
            scope.full_url = None;
            scope.in_entry = false;
        }
        if let Some(contained) = obj.sget("contained").and_then(Value::as_array).filter(|_| !self.v.contained_skipped()) {
            self.orphans(value, contained);
        }
        self.unique_ids(obj);
        self.narrative_language(obj);
        // A derived profile's snapshot holds everything of the base: check against the
        // profiles alone when there are any.
        if profiles.is_empty() {
            profiles.push(base);
        }
        for p in &profiles {
            self.item(&Item::root(p, value, rt, scope, Host { path: rt, ty: rt }));
        }
    }

    /// A resource against the profiles of its element's types: it must conform to one of them
    /// (FHIR: several `type.profile`s are alternatives). When none has no errors, the findings
    /// of all are reported.
    pub(super) fn resource_one_of<'v>(&mut self, value: &'v Value, profiles: &[Arc<Profile>], scope: Scope<'v>) {
        let rt = value.sget("resourceType").and_then(Value::as_str).unwrap_or_default();
        let mine: Vec<&Arc<Profile>> = profiles.iter().filter(|p| p.type_name == rt).collect();
        if mine.len() < 2 {
            return self.resource(value, profiles, scope);
        }
        let start = self.out.len();
        for p in &mine {
            self.resource(value, std::slice::from_ref(*p), scope);
            if !self.out[start..].iter().any(|f| f.severity == Severity::Error) {
                return;
            }
            self.out.truncate(start);
        }
        self.resource(value, profiles, scope);
    }

    /// dom-3, natively and where the HL7 validator reports it (the contained resource): each
    /// contained resource is referred to (`#id`, in any reference, canonical or uri of the
    /// resource, its contained ones included) or refers to its container (`#`). One pass over
    /// the resource's JSON.
    fn orphans(&mut self, resource: &Value, contained: &[Value]) {
        fn local_refs<'v>(v: &'v Value, out: &mut std::collections::HashSet<&'v str>) {
            match v {
                Value::String(s) => {
                    if let Some(id) = s.strip_prefix('#') {
                        out.insert(id);
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| local_refs(x, out)),
                Value::Object(m) => m.values().for_each(|x| local_refs(x, out)),
                _ => {}
            }
        }
        let mut refs = std::collections::HashSet::new();
        local_refs(resource, &mut refs);
        // `#` alone (the container) is kept as "".
        if refs.contains("") && contained.len() == 1 {
            // The only contained resource refers to its container (the common case of "#").
            return;
        }
        for (i, c) in contained.iter().enumerate() {
            let Some(id) = c.sget("id").and_then(Value::as_str) else { continue };
            if refs.contains(id) || (refs.contains("") && refers_to_container(c)) {
                continue;
            }
            let len = self.push("contained", Some(i));
            self.report(
                Severity::Error,
                "invariant",
                "constraint dom-3 failed: If the resource is contained in another resource, it SHALL be referred to from elsewhere in the resource or SHALL refer to the containing resource",
            );
            self.path.truncate(len);
        }
    }
}

/// Whether `r` is one of `container`'s contained resources (the very node, not an equal one).
pub(super) fn contains(container: &Value, r: &Value) -> bool {
    json::at(container, "contained").as_array().is_some_and(|a| a.iter().any(|x| std::ptr::eq(x, r)))
}

/// Whether a JSON value holds the string `#` (a reference to the containing resource).
fn refers_to_container(v: &Value) -> bool {
    match v {
        Value::String(s) => s == "#",
        Value::Array(a) => a.iter().any(refers_to_container),
        Value::Object(m) => m.values().any(refers_to_container),
        _ => false,
    }
}

impl Walk<'_> {
    /// HL7's Language_XHTML_Lang_* (warnings, at the resource): a resource with a `language`
    /// says it in its narrative too, as both `lang` and `xml:lang`, and the same. Codes are not
    /// quoted.
    fn narrative_language(&mut self, obj: &serde_json::Map<String, Value>) {
        let Some(lang) = obj.sget("language").and_then(Value::as_str) else { return };
        let Some(div) = obj.sget("text").and_then(|t| t.sget("div")).and_then(Value::as_str) else { return };
        let Some((l, xl)) = crate::validate::profile::xhtml::lang_attributes(div) else { return };
        let warn = |w: &mut Self, text: &str| w.report(Severity::Warning, "business-rule", text.to_owned());
        if l.is_none() && xl.is_none() {
            warn(self, "the resource has a language, but the XHTML has neither lang nor xml:lang (it needs both)");
            return;
        }
        match l.as_deref() {
            None => warn(self, "the resource has a language, but the XHTML has no lang (it needs both lang and xml:lang)"),
            Some(l) if l != lang => warn(self, "the resource's language and the XHTML's lang differ"),
            Some(_) => {}
        }
        match xl.as_deref() {
            None => warn(self, "the resource has a language, but the XHTML has no xml:lang (it needs both lang and xml:lang)"),
            Some(x) if x != lang && Some(x) != l.as_deref() => warn(self, "the resource's language and the XHTML's xml:lang differ"),
            Some(_) => {}
        }
    }
}
