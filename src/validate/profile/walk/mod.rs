//! The instance walk: one pass over the JSON, element by element, against compiled profiles.
//! The FHIRPath of the current element is kept in one growing `String` (pushed and truncated),
//! so nothing is formatted unless a finding is made; so is its JSON Pointer from the root, which
//! names the node to the FHIRPath engine.
//!
//! Invariant: the root is converted for the engine at most once per validation ([`Prep`]), and
//! only when an invariant needs the engine; every engine call after that names its nodes by
//! pointer. A Bundle of n entries therefore costs O(n), never a conversion per invariant.

use std::any::Any;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::json::{matches_pattern, same};
use super::model::{Constraint, ElemId, Profile, Rules, Strength, is_primitive};
use super::primitive::has_scheme;
use super::{CORE, Finding, Severity, Validator, native, primitive, slicing};

const MAX_DEPTH: usize = 64;

/// Entries of the Bundle being validated, for references that resolve inside it.
pub(super) struct BundleIndex<'v> {
    /// Bundle.type: references that do not resolve are errors only where the Bundle must be
    /// self-contained (document, message, transaction, batch).
    kind: &'v str,
    by_full_url: HashMap<&'v str, &'v Value>,
    by_type_id: HashMap<(&'v str, &'v str), &'v Value>,
}

/// Where the walk is: the resource (for `%resource`, contained references), the root, the
/// enclosing Bundle and the fullUrl of the entry.
#[derive(Clone, Copy)]
pub(super) struct Scope<'v> {
    pub resource: &'v Value,
    pub root: &'v Value,
    pub bundle: Option<&'v BundleIndex<'v>>,
    pub full_url: Option<&'v str>,
    /// The resource holding this one (a contained resource's siblings resolve through it).
    pub container: Option<&'v Value>,
    /// `resource`'s JSON Pointer: this many leading bytes of the walk's pointer.
    pub res_ptr: usize,
    /// `root`'s JSON Pointer, likewise.
    pub root_ptr: usize,
}

/// The element holding an extension: its base path and type (for extension contexts).
#[derive(Clone, Copy)]
pub(super) struct Host<'a> {
    pub path: &'a str,
    pub ty: &'a str,
}

/// One value of an element as the walk meets it: the element (`eid` in `prof`), the value and/or
/// its `_element` shadow, the FHIR type it is read as, where it is ([`Scope`]) and the element
/// holding it ([`Host`], for extension contexts). Passed by reference down the walk.
#[derive(Clone, Copy)]
pub(super) struct Item<'a, 'v> {
    pub prof: &'a Arc<Profile>,
    pub eid: ElemId,
    /// `None` for a primitive given only by its `_element` (or a `null` in an array).
    pub value: Option<&'v Value>,
    pub shadow: Option<&'v Value>,
    pub ty: &'a str,
    pub scope: Scope<'v>,
    pub host: Host<'a>,
}

impl<'a, 'v> Item<'a, 'v> {
    /// `value` against the root element of `prof` (a resource, a datatype or extension profile).
    pub fn root(prof: &'a Arc<Profile>, value: &'v Value, ty: &'a str, scope: Scope<'v>, host: Host<'a>) -> Self {
        Item { prof, eid: 0, value: Some(value), shadow: None, ty, scope, host }
    }
}

pub(super) struct Walk<'a> {
    pub v: &'a Validator,
    pub out: &'a mut Vec<Finding>,
    pub path: String,
    pub depth: usize,
    /// JSON Pointer of the current node from the root (when `ptr_ok`).
    pub ptr: String,
    /// False where the walk cannot name its node by pointer (a primitive's `_element`); the
    /// engine then converts the nodes per call.
    pub ptr_ok: bool,
    pub prep: &'a Prep<'a>,
    /// Today, in days since 1970-01-01 (UTC), from the caller: `minValueDuration` and
    /// `maxValueDuration` are relative to it. The walk never reads the clock.
    pub today: i64,
}

/// What one validation prepares lazily for the FHIRPath engine: the root converted once, and
/// the pointer of every resource in it (for the slicing sub-walks, which start at a value
/// rather than at the root).
pub(super) struct Prep<'r> {
    root: &'r Value,
    prepared: OnceCell<Option<Box<dyn Any>>>,
    resources: OnceCell<HashMap<usize, String>>,
}

impl<'r> Prep<'r> {
    pub fn new(root: &'r Value) -> Self {
        Prep { root, prepared: OnceCell::new(), resources: OnceCell::new() }
    }

    fn prepared(&self, engine: &dyn super::InvariantEngine) -> Option<&dyn Any> {
        self.prepared.get_or_init(|| engine.prepare(self.root)).as_deref()
    }

    /// The JSON Pointer of `target`, a node inside `within` (whose pointer is `base`); a
    /// resource is found by address in an index of the root's resources.
    pub fn locate(&self, target: &Value, within: &Value, base: &str) -> Option<String> {
        if target.get("resourceType").is_some() {
            let map = self.resources.get_or_init(|| {
                let mut m = HashMap::new();
                index_resources(self.root, &mut String::new(), &mut m, 0);
                m
            });
            return map.get(&(target as *const Value as usize)).cloned();
        }
        let mut ptr = base.to_owned();
        find(within, target, &mut ptr, 0).then_some(ptr)
    }
}

fn push_key(ptr: &mut String, key: &str) {
    ptr.push('/');
    if key.contains(['~', '/']) {
        ptr.push_str(&key.replace('~', "~0").replace('/', "~1"));
    } else {
        ptr.push_str(key);
    }
}

fn index_resources(v: &Value, ptr: &mut String, out: &mut HashMap<usize, String>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(m) => {
            if m.contains_key("resourceType") {
                out.insert(v as *const Value as usize, ptr.clone());
            }
            for (k, x) in m {
                if x.is_object() || x.is_array() {
                    let len = ptr.len();
                    push_key(ptr, k);
                    index_resources(x, ptr, out, depth + 1);
                    ptr.truncate(len);
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                if x.is_object() || x.is_array() {
                    let len = ptr.len();
                    let _ = write!(ptr, "/{i}");
                    index_resources(x, ptr, out, depth + 1);
                    ptr.truncate(len);
                }
            }
        }
        _ => {}
    }
}

fn find(v: &Value, target: &Value, ptr: &mut String, depth: usize) -> bool {
    if std::ptr::eq(v, target) {
        return true;
    }
    if depth > MAX_DEPTH {
        return false;
    }
    let len = ptr.len();
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                push_key(ptr, k);
                if find(x, target, ptr, depth + 1) {
                    return true;
                }
                ptr.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let _ = write!(ptr, "/{i}");
                if find(x, target, ptr, depth + 1) {
                    return true;
                }
                ptr.truncate(len);
            }
        }
        _ => {}
    }
    false
}

pub(super) fn validate_root(v: &Validator, resource: &Value, profiles: &[&str], today: i64, out: &mut Vec<Finding>) {
    let rt = resource["resourceType"].as_str().unwrap_or("Resource");
    let prep = Prep::new(resource);
    let mut w =
        Walk { v, out, path: String::with_capacity(128), depth: 0, ptr: String::with_capacity(64), ptr_ok: true, prep: &prep, today };
    w.path.push_str(rt);
    let extra: Vec<Arc<Profile>> = profiles
        .iter()
        .filter_map(|p| match v.profile(p) {
            Some(p) => Some(p),
            None => {
                w.report(Severity::Error, "not-found", format!("profile {p} is not known"));
                None
            }
        })
        .collect();
    let scope = Scope { resource, root: resource, bundle: None, full_url: None, container: None, res_ptr: 0, root_ptr: 0 };
    w.resource(resource, &extra, scope);
}

pub(super) fn is_resource_type(v: &Validator, ty: &str) -> bool {
    matches!(ty, "Resource" | "DomainResource") || v.type_profile(ty).is_some_and(|p| p.kind == "resource")
}

impl<'a> Walk<'a> {
    pub fn report(&mut self, severity: Severity, code: &'static str, text: impl Into<String>) {
        self.out.push(Finding { severity, code, text: text.into(), expression: self.path.clone() });
    }

    fn push(&mut self, seg: &str, index: Option<usize>) -> usize {
        let len = self.path.len();
        self.path.push('.');
        self.path.push_str(seg);
        if let Some(i) = index {
            let _ = write!(self.path, "[{i}]");
        }
        len
    }

    /// A resource (at the root, in `contained`, in a Bundle entry or a Parameters value).
    pub fn resource<'v>(&mut self, value: &'v Value, extra: &[Arc<Profile>], outer: Scope<'v>) {
        let Some(obj) = value.as_object() else {
            self.report(Severity::Error, "structure", "a resource must be a JSON object");
            return;
        };
        let Some(rt) = obj.get("resourceType").and_then(Value::as_str) else {
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
        if let Some(mp) = obj.get("meta").and_then(|m| m.get("profile")).and_then(Value::as_array) {
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
        // R4 (Vital Signs): an Observation coded with a vital sign's LOINC code SHALL conform to
        // that sign's core profile, whether it claims it or not.
        if rt == "Observation" {
            if let Some((code, p)) = self.v.vital_sign_profile(obj) {
                if !profiles.iter().any(|q| q.url == p.url) {
                    self.report(
                        Severity::Information,
                        "informational",
                        format!("checked against {} as R4 requires of an Observation with the LOINC code {code}", p.url),
                    );
                    profiles.push(p);
                }
            }
        }
        let index;
        let mut scope = Scope { resource: value, container: Some(outer.resource), res_ptr: self.ptr.len(), ..outer };
        // `%rootResource` (FHIRPath): the resource itself unless it is contained. A resource of
        // a Parameters is a root of its own (as the HL7 validator takes it); a Bundle entry's
        // stays the Bundle, as the HL7 validator has it.
        let is_contained = contains(outer.resource, value);
        let in_parameters = outer.resource["resourceType"] == "Parameters" && !is_contained;
        if (outer.bundle.is_none() && outer.root.as_object().is_some_and(|r| std::ptr::eq(r, obj))) || in_parameters {
            scope.root = value;
            scope.root_ptr = self.ptr.len();
        }
        if rt == "StructureDefinition" {
            super::definitions::structure_definition(self.v, obj, &self.path.clone(), self.out);
        }
        if self.v.is_canonical_resource(rt) {
            super::definitions::canonical_resource(self.v, rt, obj, &self.path.clone(), is_contained, self.out);
        }
        if rt == "Bundle" {
            index = self.bundle_rules(obj);
            scope.bundle = Some(&index);
            scope.full_url = None;
        }
        if let Some(contained) = obj.get("contained").and_then(Value::as_array).filter(|_| !self.v.contained_skipped()) {
            self.orphans(value, contained);
        }
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
    fn resource_one_of<'v>(&mut self, value: &'v Value, profiles: &[Arc<Profile>], scope: Scope<'v>) {
        let rt = value.get("resourceType").and_then(Value::as_str).unwrap_or_default();
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
            let Some(id) = c.get("id").and_then(Value::as_str) else { continue };
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

    /// One value of an element (`value` and/or its `_element` shadow).
    pub fn item(&mut self, it: &Item<'_, '_>) {
        let Item { prof, eid, value, ty, scope, host, .. } = *it;
        if self.depth > MAX_DEPTH {
            self.report(Severity::Error, "too-costly", "nested too deeply");
            return;
        }
        self.depth += 1;
        if is_primitive(ty) {
            self.primitive(it);
        } else if let Some(value) = value {
            if eid != 0 && is_resource_type(self.v, ty) {
                if self.v.contained_skipped() && prof.elem(eid).path.ends_with(".contained") {
                    self.depth -= 1;
                    return;
                }
                let extra: Vec<Arc<Profile>> =
                    prof.elem(eid).types.iter().flat_map(|t| t.profiles.iter()).filter_map(|u| self.v.profile(u)).collect();
                // The profile requires the resource to meet profiles none of which is loaded:
                // it cannot be shown to conform (a missing package, or a wrong URL).
                let rt = value.get("resourceType").and_then(Value::as_str).unwrap_or_default();
                let required: Vec<&String> =
                    prof.elem(eid).types.iter().filter(|t| t.code == rt || t.code == "Resource").flat_map(|t| t.profiles.iter()).collect();
                if !required.is_empty() && required.iter().all(|u| self.v.profile(u).is_none()) {
                    let names: Vec<&str> = required.iter().map(|u| u.as_str()).collect();
                    self.report(
                        Severity::Error,
                        "not-found",
                        format!("the profile requires {rt} to conform to {}, which is not loaded", names.join(" or ")),
                    );
                }
                self.resource_one_of(value, &extra, scope);
            } else {
                self.complex(prof, eid, value, ty, scope, host);
            }
        }
        self.depth -= 1;
    }

    fn primitive(&mut self, it: &Item<'_, '_>) {
        let Item { prof, eid, value, shadow, ty, scope, .. } = *it;
        let e = prof.elem(eid);
        if let Some(v) = value {
            if let Some(msg) = primitive::check(ty, v) {
                self.report(
                    Severity::Error,
                    if v.is_string() || v.is_number() || v.is_boolean() { "value" } else { "structure" },
                    msg,
                );
                return;
            }
            if let Some(f) = &e.fixed {
                if !same(v, f) {
                    self.report(Severity::Error, "value", "value is not the fixed value of the profile");
                }
            }
            if let Some(p) = &e.pattern {
                if !same(v, p) {
                    self.report(Severity::Error, "value", "value does not match the pattern of the profile");
                }
            }
            if let Some(max) = e.max_length {
                if v.as_str().is_some_and(|s| s.chars().count() > max) {
                    self.report(Severity::Error, "too-long", format!("value is longer than {max} characters"));
                }
            }
            self.min_max(e.min_value.as_ref(), e.max_value.as_ref(), v, ty);
            // A warning: the HL7 validator now makes it an error, but R4's own examples use
            // relative canonicals (`Library/x`, 98 of them), which R4 let pass.
            if ty == "canonical" && v.as_str().is_some_and(|c| !c.starts_with('#') && !has_scheme(c)) {
                self.report(
                    Severity::Warning,
                    "value",
                    "a canonical URL should be absolute (a relative one resolves only against an unstated server), unless it names a contained resource (#id)",
                );
            }
            if ty == "code" {
                if let Some(code) = v.as_str() {
                    self.binding(prof, eid, None, code, false);
                }
            }
        }
        if let Some(sh) = shadow {
            match sh.as_object() {
                None => self.report(Severity::Error, "structure", "a primitive's _element must be an object"),
                Some(m) if m.is_empty() => self.report(Severity::Error, "structure", "a primitive's _element must not be empty"),
                Some(m) => {
                    if value.is_none() && !m.contains_key("extension") {
                        self.report(
                            Severity::Error,
                            "invariant",
                            "constraint ele-1 failed: All FHIR elements must have a @value or children",
                        );
                    }
                    let (cp, pid) = self.children(prof, eid, ty);
                    // The walk's pointer names the value, not its `_element`.
                    let ptr_ok = std::mem::replace(&mut self.ptr_ok, false);
                    self.object(&cp, &cp.elem(pid).children, m, scope, Host { path: &e.base_path, ty }, true);
                    self.ptr_ok = ptr_ok;
                }
            }
        } else if value.is_none() {
            self.report(Severity::Error, "structure", "null in an array needs an _element with content");
        }
    }

    fn min_max(&mut self, min: Option<&Value>, max: Option<&Value>, v: &Value, ty: &str) {
        let as_f = |x: &Value| -> Option<f64> { x.as_f64().or_else(|| x.to_string().parse().ok()) };
        if primitive::is_numeric(ty) {
            if let (Some(m), Some(x)) = (min.and_then(as_f), as_f(v)) {
                if x < m {
                    self.report(Severity::Error, "value", "value is below the minimum allowed by the profile");
                }
            }
            if let (Some(m), Some(x)) = (max.and_then(as_f), as_f(v)) {
                if x > m {
                    self.report(Severity::Error, "value", "value is above the maximum allowed by the profile");
                }
            }
        } else if let (Some(s), true) = (v.as_str(), matches!(ty, "date" | "dateTime" | "instant" | "time")) {
            // `minValueDuration` / `maxValueDuration`: relative to now (now - min, now + max).
            let today = self.today;
            let relative = |d: Option<&Value>, sign: i64| d.filter(|d| d.is_object()).and_then(|d| relative_date(d, sign, today));
            if let Some(m) = relative(min, -1) {
                if s.get(..10).unwrap_or(s) < m.as_str() {
                    self.report(Severity::Error, "value", "value is before the minimum allowed by the profile");
                }
            }
            if let Some(m) = relative(max, 1) {
                if s.get(..10).unwrap_or(s) > m.as_str() {
                    self.report(Severity::Error, "value", "value is after the maximum allowed by the profile");
                }
            }
            if min.and_then(Value::as_str).is_some_and(|m| s < m) {
                self.report(Severity::Error, "value", "value is before the minimum allowed by the profile");
            }
            if max.and_then(Value::as_str).is_some_and(|m| s > m) {
                self.report(Severity::Error, "value", "value is after the maximum allowed by the profile");
            }
        }
    }

    /// Children of an element: the profile's own when it unrolls them, else those of the type
    /// (or of the referenced element for `contentReference`).
    pub fn children(&self, prof: &Arc<Profile>, eid: ElemId, ty: &str) -> (Arc<Profile>, ElemId) {
        children_of(self.v, prof, eid, ty)
    }

    /// An invariant answered without the engine: natively by key, or compiled into the
    /// subset of [`native`] (memoised on the constraint where its element has one type).
    fn native(&self, prof: &Arc<Profile>, eid: ElemId, ty: &str, c: &Constraint, value: &Value, resource: &Value) -> Option<bool> {
        if let Some(v) = native::by_key(&c.key, &c.expression, value, resource) {
            return Some(v);
        }
        let focus = || ElemCtx { v: self.v, prof: prof.clone(), eid, ty: ty.to_owned() };
        let compile = || native::Expr::compile(&c.expression, &focus()).map(Arc::new);
        let memo = eid == 0 || prof.elem(eid).types.len() <= 1;
        let expr = if memo { c.compiled.get_or_init(compile).clone() } else { compile() };
        if let Some(x) = expr {
            return Some(x.eval(value));
        }
        // `A implies B` with `A` in the subset: true when `A` is false, else the engine's.
        let guard = || native::Expr::compile_guard(&c.expression, &focus()).map(Arc::new);
        let g = if memo { c.guard.get_or_init(guard).clone() } else { guard() };
        g.filter(|g| !g.eval(value)).map(|_| true)
    }
}

/// An element as the subset compiler sees it: its children, with their JSON keys.
struct ElemCtx<'p> {
    v: &'p Validator,
    prof: Arc<Profile>,
    eid: ElemId,
    ty: String,
}

impl<'p> native::Elements<'p> for ElemCtx<'p> {
    fn child(&self, name: &str) -> Option<native::Child<'p>> {
        let (cp, pid) = children_of(self.v, &self.prof, self.eid, &self.ty);
        let c = cp.elem(pid).children.iter().copied().find(|&c| cp.elem(c).name == name)?;
        let ce = cp.elem(c);
        if ce.choice {
            return Some((ce.choice_keys.iter().map(|(k, s, _)| (k.clone(), s.clone())).collect(), None));
        }
        let keys = vec![(ce.name.clone(), ce.shadow.clone())];
        let ty = match ce.types.as_slice() {
            [] => "BackboneElement".to_owned(),
            [t] if is_primitive(&t.code) => return Some((keys, None)),
            [t] => t.code.clone(),
            _ => return Some((keys, None)),
        };
        let v = self.v;
        Some((keys, Some(Box::new(ElemCtx { v, prof: cp, eid: c, ty }))))
    }
}

/// Children of an element: the profile's own when it unrolls them, else those of the type
/// (or of the referenced element for `contentReference`).
fn children_of(v: &Validator, prof: &Arc<Profile>, eid: ElemId, ty: &str) -> (Arc<Profile>, ElemId) {
    let e = prof.elem(eid);
    if !e.children.is_empty() {
        return (prof.clone(), eid);
    }
    if let Some(r) = &e.content_ref {
        // `#Questionnaire.item` refers into the base resource.
        let root = r.split('.').next().unwrap_or_default();
        for p in [Some(prof.clone()), v.type_profile(root)].into_iter().flatten() {
            if let Some(id) = p.by_path(r) {
                return (p.clone(), id);
            }
        }
    }
    match v.type_profile(ty) {
        Some(tp) => (tp, 0),
        None => (prof.clone(), eid),
    }
}

impl Walk<'_> {
    fn complex<'v>(&mut self, prof: &Arc<Profile>, eid: ElemId, value: &'v Value, ty: &str, scope: Scope<'v>, host: Host<'_>) {
        let Some(obj) = value.as_object() else {
            self.report(Severity::Error, "structure", format!("wrong JSON type: a {ty} must be an object"));
            return;
        };
        if obj.is_empty() {
            self.report(Severity::Error, "structure", "object must have some content");
            return;
        }
        let e = prof.elem(eid);
        let (cp, pid) = self.children(prof, eid, ty);
        let host_path = if eid == 0 { ty } else { e.base_path.as_str() };
        self.object(&cp, &cp.elem(pid).children, obj, scope, Host { path: host_path, ty }, false);
        if let Some(f) = &e.fixed {
            if !same(value, f) {
                self.fixed_mismatch(value, f);
            }
        }
        if let Some(p) = &e.pattern {
            if !matches_pattern(value, p) {
                self.pattern_mismatch(value, p);
            }
        }
        if e.min_value.is_some() || e.max_value.is_some() {
            let num = |x: Option<&Value>| x.and_then(|q| q.get("value")).and_then(|v| v.to_string().parse::<f64>().ok());
            let x = num(Some(value));
            if let (Some(m), Some(x)) = (num(e.min_value.as_ref()), x) {
                if x < m {
                    self.report(Severity::Error, "value", "value is below the minimum allowed by the profile");
                }
            }
            if let (Some(m), Some(x)) = (num(e.max_value.as_ref()), x) {
                if x > m {
                    self.report(Severity::Error, "value", "value is above the maximum allowed by the profile");
                }
            }
        }
        match ty {
            "CodeableConcept" => self.codeable_concept(prof, eid, obj),
            "Coding" | "Quantity" => {
                if ty == "Coding" {
                    self.known_code(obj);
                }
                if let Some(code) = obj.get("code").and_then(Value::as_str) {
                    let system = obj.get("system").and_then(Value::as_str);
                    if ty == "Coding" || system.is_some() {
                        self.binding(prof, eid, system, code, false);
                    }
                }
            }
            "Reference" => self.reference(prof, eid, obj, scope),
            "Attachment" => {
                // The stated size is the size of the data, when both are given.
                let data = obj.get("data").and_then(Value::as_str);
                let size = obj.get("size").and_then(Value::as_u64);
                if let (Some(d), Some(n)) = (data, size) {
                    if primitive::base64_len(d).is_some_and(|len| len != n) {
                        self.report(Severity::Error, "value", "Attachment.size is not the size of Attachment.data");
                    }
                }
            }
            "Extension" => self.extension(prof, eid, value, obj, scope, host),
            _ => {}
        }
        // Invariants of the element, then of its type when the element is not the type's root.
        self.constraints(prof, eid, value, ty, scope);
        if eid != 0 || prof.type_name != ty {
            if let Some(tp) = self.v.type_profile(ty) {
                if !Arc::ptr_eq(&tp, prof) {
                    self.constraints(&tp, 0, value, ty, scope);
                }
            }
        }
        // Profiles on the type (`type.profile`): a datatype profile or an extension definition.
        // Several are alternatives (FHIR: "must conform to at least one").
        if eid != 0 {
            for t in &e.types {
                if t.code != ty {
                    continue;
                }
                let alternatives: Vec<&String> = t.profiles.iter().filter(|u| **u != prof.url).collect();
                if alternatives.len() > 1 {
                    self.type_profile_one_of(&alternatives, value, ty, scope, host);
                    continue;
                }
                for u in alternatives {
                    match self.v.profile(u) {
                        Some(p) => self.item(&Item::root(&p, value, ty, scope, host)),
                        None if ty == "Extension" => {}
                        None => self.report(Severity::Warning, "not-found", format!("profile {u} is not known: not checked")),
                    }
                }
            }
        }
    }

    /// A value against alternative datatype profiles: the first it meets without errors wins
    /// (its warnings kept). When the type's own base definition is among them, the value needs
    /// nothing more than the type, which is checked already. When it meets none, one error
    /// names them all, followed by the findings of the closest (fewest errors).
    fn type_profile_one_of<'v>(&mut self, urls: &[&String], value: &'v Value, ty: &str, scope: Scope<'v>, host: Host<'_>) {
        let base = self.v.type_profile(ty);
        if urls.iter().any(|u| base.as_ref().is_some_and(|b| &b.url == *u)) {
            return;
        }
        let start = self.out.len();
        let mut best: Option<Vec<Finding>> = None;
        let mut unknown = Vec::new();
        for u in urls {
            let Some(p) = self.v.profile(u) else {
                unknown.push(u.as_str());
                continue;
            };
            self.item(&Item::root(&p, value, ty, scope, host));
            let errors = self.out[start..].iter().filter(|f| f.severity == Severity::Error).count();
            if errors == 0 {
                return;
            }
            let found: Vec<Finding> = self.out.drain(start..).collect();
            let fewer = |b: &Vec<Finding>| errors < b.iter().filter(|f| f.severity == Severity::Error).count();
            if best.as_ref().is_none_or(fewer) {
                best = Some(found);
            }
        }
        match best {
            // Every known alternative failed.
            Some(found) => {
                let names: Vec<&str> = urls.iter().map(|u| u.as_str()).collect();
                self.report(
                    Severity::Error,
                    "structure",
                    format!(
                        "value conforms to none of the profiles allowed for {ty}: {}; the closest one's findings follow",
                        names.join(", ")
                    ),
                );
                self.out.extend(found);
                for u in unknown {
                    self.report(Severity::Warning, "not-found", format!("profile {u} is not known: not checked"));
                }
            }
            // None known: nothing could be checked beyond the type.
            None => {
                for u in unknown {
                    self.report(Severity::Warning, "not-found", format!("profile {u} is not known: not checked"));
                }
            }
        }
    }

    /// Reports where a value departs from a `fixed[x]`: extra properties and differing ones
    /// at their own paths.
    fn fixed_mismatch(&mut self, v: &Value, f: &Value) {
        match (v, f) {
            (Value::Object(x), Value::Object(y)) => {
                for (k, xv) in x {
                    match y.get(k) {
                        None => {
                            let len = self.push(k, None);
                            self.report(
                                Severity::Error,
                                "value",
                                format!("{k} is present but not allowed by the fixed value of the profile"),
                            );
                            self.path.truncate(len);
                        }
                        Some(fv) if !same(xv, fv) => {
                            let len = self.push(k, None);
                            if xv.is_object() {
                                self.fixed_mismatch(xv, fv)
                            } else {
                                self.report(Severity::Error, "value", "value is not the fixed value of the profile")
                            }
                            self.path.truncate(len);
                        }
                        Some(_) => {}
                    }
                }
                for k in y.keys().filter(|k| !x.contains_key(*k)) {
                    self.report(Severity::Error, "value", format!("{k} of the fixed value of the profile is missing"));
                }
            }
            _ => self.report(Severity::Error, "value", "value is not the fixed value of the profile"),
        }
    }

    /// Reports where a value departs from a `pattern[x]`: at the deepest property that differs,
    /// as the HL7 validator does (`telecom[0].system`, not `telecom[0]`).
    fn pattern_mismatch(&mut self, v: &Value, p: &Value) {
        match (v, p) {
            (Value::Object(x), Value::Object(y)) => {
                for (k, pv) in y {
                    match x.get(k) {
                        Some(xv) if matches_pattern(xv, pv) => {}
                        Some(xv) => {
                            let many = xv.as_array().filter(|a| a.len() == 1);
                            let len = self.push(k, many.map(|_| 0));
                            match (many, pv.as_array().filter(|a| a.len() == 1)) {
                                (Some(a), Some(b)) => self.pattern_mismatch(&a[0], &b[0]),
                                (None, _) if !xv.is_array() => self.pattern_mismatch(xv, pv),
                                _ => self.report(Severity::Error, "value", "value does not match the pattern of the profile"),
                            }
                            self.path.truncate(len);
                        }
                        None => {
                            self.report(
                                Severity::Error,
                                "value",
                                format!("value does not match the pattern of the profile: {k} is missing"),
                            );
                        }
                    }
                }
            }
            _ => self.report(Severity::Error, "value", "value does not match the pattern of the profile"),
        }
    }

    /// Coding.system is an absolute URI naming a code system (not a value set); a code of a
    /// complete CodeSystem loaded here must exist, and its display (when given) must be the
    /// CodeSystem's display (compared ignoring case and spacing).
    fn known_code(&mut self, obj: &Map<String, Value>) {
        let (Some(system), Some(code)) = (obj.get("system").and_then(Value::as_str), obj.get("code").and_then(Value::as_str)) else {
            return;
        };
        if !system.contains(':') {
            let len = self.push("system", None);
            self.report(Severity::Error, "invalid", "Coding.system must be an absolute reference, not a local reference");
            self.path.truncate(len);
            return;
        }
        if self.v.is_supplement(system) {
            let len = self.push("system", None);
            self.report(Severity::Error, "invalid", "the Coding.system is a supplement: use the code system it supplements");
            self.path.truncate(len);
            return;
        }
        let Some(cs) = self.v.code_system(system) else {
            if self.v.is_value_set(system) {
                let len = self.push("system", None);
                self.report(Severity::Error, "invalid", "the Coding.system is a value set, not a code system");
                self.path.truncate(len);
            }
            return;
        };
        match cs.get(code) {
            None => {
                let len = self.push("code", None);
                if self.v.is_external_copy(system) {
                    self.report(
                        Severity::Warning,
                        "code-invalid",
                        format!("the code is not in R4's 2019 copy of the code system {system}: check it against the current one"),
                    );
                } else {
                    self.report(Severity::Error, "code-invalid", format!("the code is not defined in the code system {system}"));
                }
                self.path.truncate(len);
            }
            Some(Some(display)) => {
                if let Some(given) = obj.get("display").and_then(Value::as_str) {
                    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
                    if norm(given) != norm(display) {
                        let len = self.push("display", None);
                        self.report(Severity::Error, "invalid", format!("wrong display for the code in the code system {system}"));
                        self.path.truncate(len);
                    }
                }
            }
            Some(None) => {}
        }
    }

    fn codeable_concept(&mut self, prof: &Arc<Profile>, eid: ElemId, obj: &Map<String, Value>) {
        let Some(b) = &prof.elem(eid).binding else {
            return;
        };
        if b.strength == Strength::Other {
            return;
        }
        let Some(exp) = self.v.expansion(&b.value_set) else {
            return;
        };
        let codings = obj.get("coding").and_then(Value::as_array);
        let Some(codings) = codings.filter(|c| !c.is_empty()) else {
            return;
        };
        let any = codings
            .iter()
            .any(|c| c.get("code").and_then(Value::as_str).is_some_and(|code| exp.has(c.get("system").and_then(Value::as_str), code)));
        if !any {
            let (sev, word) =
                if b.strength == Strength::Required { (Severity::Error, "required") } else { (Severity::Warning, "extensible") };
            self.report(
                sev,
                "code-invalid",
                format!("none of the codings is in the value set {} ({word} binding)", b.value_set),
            );
        }
    }

    fn binding(&mut self, prof: &Arc<Profile>, eid: ElemId, system: Option<&str>, code: &str, _cc: bool) {
        let Some(b) = &prof.elem(eid).binding else {
            return;
        };
        if b.strength == Strength::Other {
            return;
        }
        let Some(exp) = self.v.expansion(&b.value_set) else {
            return;
        };
        if !exp.has(system, code) {
            let (sev, word) =
                if b.strength == Strength::Required { (Severity::Error, "required") } else { (Severity::Warning, "extensible") };
            self.report(sev, "code-invalid", format!("the code is not in the value set {} ({word} binding)", b.value_set));
        }
    }

    fn reference<'v>(&mut self, prof: &Arc<Profile>, eid: ElemId, obj: &Map<String, Value>, scope: Scope<'v>) {
        let Some(r) = obj.get("reference").and_then(Value::as_str) else {
            return;
        };
        let target_type: Option<String> = if let Some(id) = r.strip_prefix('#') {
            if id.is_empty() {
                // `#` is the containing resource (for a contained one), else the resource itself.
                let contained_in = scope.container.filter(|c| contains(c, scope.resource));
                Some(contained_in.unwrap_or(scope.resource)["resourceType"].as_str().unwrap_or_default().to_owned())
            } else {
                let find = |r: &'v Value| r["contained"].as_array().and_then(|c| c.iter().find(|x| x["id"].as_str() == Some(id)));
                let found = find(scope.resource).or_else(|| scope.container.and_then(find));
                match found {
                    Some(x) => x["resourceType"].as_str().map(str::to_owned),
                    None => {
                        self.report(Severity::Error, "not-found", "the contained resource referenced is not in this resource");
                        return;
                    }
                }
            }
        } else if let Some(found) = scope.bundle.and_then(|b| b.resolve(r, scope.full_url)) {
            found["resourceType"].as_str().map(str::to_owned)
        } else if r.starts_with("urn:") {
            if scope.bundle.is_some_and(|b| matches!(b.kind, "document" | "message" | "transaction" | "batch")) {
                self.report(Severity::Error, "not-found", "the reference does not resolve to an entry of the Bundle");
            }
            None
        } else {
            if !r.contains(':') && !r.contains('?') && !is_relative_form(self.v, r) {
                // The value is not repeated: a reference can carry an identifier.
                self.report(
                    Severity::Error,
                    "value",
                    "a relative reference must be Type/id (or Type/id/_history/version) with a FHIR resource type, as written (case matters)",
                );
                return;
            }
            let t = type_of_literal(r).filter(|t| is_resource_type(self.v, t)).map(str::to_owned);
            if t.is_some() && self.v.references_checked() && !r.contains("://") && !held_in(self.prep.root, r) {
                self.report(Severity::Error, "not-found", "the reference does not resolve in the content validated");
                return;
            }
            t
        };
        let Some(tt) = target_type else { return };
        let targets: Vec<&String> = prof.elem(eid).types.iter().filter(|t| t.code == "Reference").flat_map(|t| t.targets.iter()).collect();
        if targets.is_empty() {
            return;
        }
        let ok = targets.iter().any(|t| {
            let t = t.split('|').next().unwrap_or_default();
            match t.strip_prefix(CORE) {
                Some("Resource" | "DomainResource") => true,
                Some(name)
                    if !name.contains('/')
                        && is_resource_type(self.v, name)
                        && self.v.resolve(t).is_some_and(|sd| sd["derivation"] != "constraint") =>
                {
                    name == tt
                }
                _ => self.v.profile(t).is_none_or(|p| p.type_name == tt || p.type_name == "Resource"),
            }
        });
        if !ok {
            self.report(Severity::Error, "structure", format!("a reference to a {tt} is not allowed here"));
        }
    }

    fn extension<'v>(
        &mut self,
        prof: &Arc<Profile>,
        eid: ElemId,
        value: &'v Value,
        obj: &Map<String, Value>,
        scope: Scope<'v>,
        host: Host<'_>,
    ) {
        let Some(url) = obj.get("url").and_then(Value::as_str) else {
            return;
        };
        let e = prof.elem(eid);
        // Defined here already: an extension definition's root, a slice with a profile, or a
        // nested extension whose url is fixed.
        if eid == 0 || e.types.iter().any(|t| !t.profiles.is_empty()) || !url.contains(':') {
            return;
        }
        if prof.type_name == "Extension" && prof.url == url {
            return;
        }
        if url.contains('|') {
            // Located as the HL7 validator locates it: `extension[1][url='...']`.
            let len = self.path.len();
            self.path.push_str("[url='");
            self.path.push_str(url);
            self.path.push_str("']");
            self.report(Severity::Error, "structure", "an extension URL must not carry a version");
            self.path.truncate(len);
        }
        match self.v.profile(url) {
            Some(ext) if ext.type_name == "Extension" => {
                if !context_ok(&ext, host, || self.v.is_canonical_resource(host.ty)) {
                    let here = self.path.clone();
                    if let Some(i) = here.rfind('.') {
                        self.path.truncate(i);
                    }
                    self.report(Severity::Error, "structure", format!("extension {url} is not allowed here (context)"));
                    self.path = here;
                }
                self.item(&Item::root(&ext, value, "Extension", scope, host));
            }
            _ => {
                if e.path.ends_with("modifierExtension") {
                    self.report(Severity::Error, "structure", format!("unknown modifier extension {url}"));
                } else {
                    let sev = if self.v.unknown_extension_errors() { Severity::Error } else { Severity::Warning };
                    self.report(sev, "structure", format!("unknown extension {url}: not checked"));
                    if is_example_url(url) {
                        let len = self.push("url", None);
                        self.report(sev, "value", "example URLs (example.org, example.com) are not allowed for extensions");
                        self.path.truncate(len);
                    }
                }
            }
        }
    }

    /// The properties of one JSON object against the child elements.
    fn object<'v>(
        &mut self,
        cp: &Arc<Profile>,
        children: &[ElemId],
        obj: &'v Map<String, Value>,
        scope: Scope<'v>,
        host: Host<'_>,
        is_shadow: bool,
    ) {
        // Unknown properties.
        for key in obj.keys() {
            if key == "resourceType" && obj.contains_key("resourceType") && scope.resource.as_object().is_some_and(|r| std::ptr::eq(r, obj))
            {
                continue;
            }
            let known = children.iter().any(|&c| {
                let ce = cp.elem(c);
                if ce.choice {
                    let bare = key.strip_prefix('_').unwrap_or(key);
                    bare.starts_with(ce.name.as_str()) && ce.choice_keys.iter().any(|(k, _, _)| k == bare)
                } else {
                    ce.name == *key || ce.shadow == *key
                }
            });
            if !known {
                // A choice element given in a type the profile does not allow.
                let choice = children.iter().map(|&c| cp.elem(c)).find(|ce| {
                    ce.choice
                        && key.len() > ce.name.len()
                        && key.starts_with(ce.name.as_str())
                        && key.as_bytes()[ce.name.len()].is_ascii_uppercase()
                });
                if let Some(ce) = choice.filter(|ce| ce.base_path == "Extension.value[x]") {
                    // An extension's value of a type its definition does not allow: reported at
                    // the extension, as the HL7 validator does.
                    let t = fhir_type_of_suffix(&key[ce.name.len()..]);
                    let url = obj.get("url").and_then(Value::as_str).unwrap_or_default();
                    self.report(Severity::Error, "structure", format!("the extension {url} does not allow a value of type {t}"));
                } else if let Some(ce) = choice {
                    let t = fhir_type_of_suffix(&key[ce.name.len()..]);
                    let len = self.path.len();
                    self.path.push('.');
                    self.path.push_str(&ce.name);
                    self.path.push_str(".ofType(");
                    self.path.push_str(&t);
                    self.path.push(')');
                    self.report(Severity::Error, "structure", format!("type {t} is not allowed for {}[x] here", ce.name));
                    self.path.truncate(len);
                } else if key == "fhir_comments" {
                    self.report(Severity::Warning, "structure", format!("unrecognized property {key}"));
                } else {
                    self.report(Severity::Error, "structure", format!("unrecognized property {key}"));
                }
            }
        }
        for &c in children {
            let ce = cp.elem(c);
            if is_shadow && ce.name == "value" {
                continue;
            }
            let mut found: Option<(&Value, Option<&Value>, &str, &str)> = None;
            if ce.choice {
                // Scan the object's keys (a few) rather than every allowed type (up to 50);
                // `valueString` and `_valueString` are one value.
                let mut n = 0;
                let mut first: Option<usize> = None;
                for key in obj.keys() {
                    let bare = key.strip_prefix('_').unwrap_or(key);
                    if bare.len() <= ce.name.len() || !bare.starts_with(ce.name.as_str()) {
                        continue;
                    }
                    let Some(pos) = ce.choice_keys.iter().position(|(k, _, _)| k == bare) else { continue };
                    let shadow_of_main = key.starts_with('_') && obj.contains_key(bare);
                    if shadow_of_main {
                        continue;
                    }
                    n += 1;
                    first.get_or_insert(pos);
                }
                if let Some(pos) = first {
                    let (k, s, ti) = &ce.choice_keys[pos];
                    found = Some((obj.get(k).unwrap_or(&Value::Null), obj.get(s), ce.types[*ti].code.as_str(), k.as_str()));
                }
                if n > 1 {
                    self.report(Severity::Error, "structure", format!("more than one type given for {}[x]", ce.name));
                }
            } else {
                let (m, sh) = (obj.get(&ce.name), obj.get(&ce.shadow));
                if m.is_some() || sh.is_some() {
                    let ty = ce.types.first().map(|t| t.code.as_str()).unwrap_or("BackboneElement");
                    found = Some((m.unwrap_or(&Value::Null), sh, ty, ce.name.as_str()));
                }
            }
            let Some((main, shadow, ty, key)) = found else {
                // A choice given in a disallowed type is reported as such, not also as missing.
                let disallowed = ce.choice
                    && obj.keys().any(|k| {
                        k.len() > ce.name.len() && k.starts_with(ce.name.as_str()) && k.as_bytes()[ce.name.len()].is_ascii_uppercase()
                    });
                if ce.min > 0 && !disallowed {
                    self.report(Severity::Error, "required", format!("{}: minimum required = {}, but only found 0", ce.path, ce.min));
                }
                // Required slices of an absent element are missing too.
                for &sl in &ce.slices {
                    let se = cp.elem(sl);
                    if se.min > 0 {
                        let name = se.slice_name.as_deref().unwrap_or_default();
                        self.report(
                            Severity::Error,
                            "required",
                            format!("{}:{name}: minimum required = {}, but only found 0", se.path, se.min),
                        );
                    }
                }
                continue;
            };
            // A backbone element declares no type in some snapshots; an element with children
            // and no type is one.
            let ty = if ce.types.is_empty() { if ce.path.contains('.') { "BackboneElement" } else { &cp.type_name } } else { ty };
            let mut items: Vec<(Option<&'v Value>, Option<&'v Value>)> = Vec::new();
            let len = self.path.len();
            self.path.push('.');
            self.path.push_str(if ce.choice { &ce.name } else { key });
            if ce.choice {
                self.path.push_str(".ofType(");
                self.path.push_str(ty);
                self.path.push(')');
            }
            let main = if main.is_null() { None } else { Some(main) };
            let json_array = matches!(main, Some(Value::Array(_)));
            match (main, shadow) {
                (Some(Value::Array(a)), sh) => {
                    if !ce.base_many {
                        self.report(Severity::Error, "structure", "an array where a single value is expected");
                    }
                    if a.is_empty() {
                        self.report(Severity::Error, "structure", "arrays must not be empty");
                    }
                    let sh_arr = match sh {
                        Some(Value::Array(s)) => {
                            if s.len() != a.len() {
                                self.report(Severity::Error, "structure", "the _element array does not align with the value array");
                            }
                            Some(s)
                        }
                        Some(_) => {
                            self.report(Severity::Error, "structure", "the _element must be an array like its value");
                            None
                        }
                        None => None,
                    };
                    for (i, x) in a.iter().enumerate() {
                        let s = sh_arr.and_then(|s| s.get(i)).filter(|s| !s.is_null());
                        items.push((if x.is_null() { None } else { Some(x) }, s));
                    }
                }
                (None, Some(Value::Array(s))) => {
                    if !ce.base_many {
                        self.report(Severity::Error, "structure", "an array where a single value is expected");
                    }
                    for x in s {
                        items.push((None, if x.is_null() { None } else { Some(x) }));
                    }
                }
                (m, sh) => {
                    if ce.base_many && m.is_some() {
                        self.report(Severity::Error, "structure", "a single value where an array is expected");
                    }
                    items.push((m, sh));
                }
            }
            self.path.truncate(len);
            let count = items.len() as u32;
            if count < ce.min {
                self.report(
                    Severity::Error,
                    "required",
                    format!("{}: minimum required = {}, but only found {count}", ce.path, ce.min),
                );
            }
            if ce.max.is_some_and(|m| count > m) {
                let m = ce.max.unwrap_or_default();
                self.report(Severity::Error, "structure", format!("{}: maximum allowed = {m}, but found {count}", ce.path));
            }
            let assigned = if ce.slicing.is_some() || !ce.slices.is_empty() { self.slices(cp, c, &items, ty, scope) } else { Vec::new() };
            for (i, (m, sh)) in items.iter().enumerate() {
                let len = self.path.len();
                self.path.push('.');
                self.path.push_str(if ce.choice { &ce.name } else { key });
                if ce.choice {
                    self.path.push_str(".ofType(");
                    self.path.push_str(ty);
                    self.path.push(')');
                } else if ce.base_many {
                    let _ = write!(self.path, "[{i}]");
                }
                let plen = self.ptr.len();
                push_key(&mut self.ptr, key);
                if json_array {
                    let _ = write!(self.ptr, "/{i}");
                }
                let target = assigned.get(i).copied().flatten().unwrap_or(c);
                let mut sc = scope;
                if ce.name == "resource" && host.ty == "BackboneElement" {
                    sc.full_url = obj.get("fullUrl").and_then(Value::as_str);
                }
                self.item(&Item { prof: cp, eid: target, value: *m, shadow: *sh, ty, scope: sc, host });
                self.path.truncate(len);
                self.ptr.truncate(plen);
            }
        }
    }

    /// Assigns items to slices and checks slice cardinality, closed and ordered rules.
    fn slices<'v>(
        &mut self,
        cp: &Arc<Profile>,
        c: ElemId,
        items: &[(Option<&'v Value>, Option<&'v Value>)],
        ty: &str,
        scope: Scope<'v>,
    ) -> Vec<Option<ElemId>> {
        let ce = cp.elem(c);
        let mut assigned = Vec::with_capacity(items.len());
        let mut counts = vec![0u32; ce.slices.len()];
        let mut last_slice = 0usize;
        let mut seen_unmatched = false;
        // Slices must not overlap: an item matching two is an error (it is counted in the
        // first). Looked for only where matching is cheap (no `profile` discriminator, which
        // validates the item against each slice's profile).
        let cheap = ce.slicing.as_ref().is_some_and(|s| s.discriminators.iter().all(|d| d.kind != "profile"));
        for (i, (m, _)) in items.iter().enumerate() {
            let mut hit = None;
            let mut also = Vec::new();
            if let Some(v) = m {
                for (si, &s) in ce.slices.iter().enumerate() {
                    if slicing::matches(self, cp, c, s, v, ty, scope) {
                        if hit.is_none() {
                            hit = Some(si);
                            if !cheap {
                                break;
                            }
                        } else {
                            also.push(si);
                        }
                    }
                }
            }
            let len = self.path.len();
            self.path.push('.');
            self.path.push_str(&ce.name);
            if ce.choice {
                self.path.push_str(".ofType(");
                self.path.push_str(ty);
                self.path.push(')');
            } else if ce.base_many {
                use std::fmt::Write;
                let _ = write!(self.path, "[{i}]");
            }
            if let (Some(first), false) = (hit, also.is_empty()) {
                let names: Vec<&str> =
                    std::iter::once(first).chain(also).filter_map(|si| cp.elem(ce.slices[si]).slice_name.as_deref()).collect();
                self.report(
                    Severity::Error,
                    "structure",
                    format!("matches more than one slice ({}): slices must not overlap", names.join(", ")),
                );
            }
            match hit {
                Some(si) => {
                    counts[si] += 1;
                    let se = cp.elem(ce.slices[si]);
                    if se.max == Some(0) {
                        // A prohibited slice: reported at the item, as the HL7 validator does.
                        let name = se.slice_name.as_deref().unwrap_or_default();
                        self.report(
                            Severity::Error,
                            "structure",
                            format!("matches the slice {}:{name}, which the profile prohibits", se.path),
                        );
                    }
                    if let Some(sl) = &ce.slicing {
                        if sl.ordered && si < last_slice {
                            self.report(Severity::Error, "structure", "slices are out of the order the profile defines");
                        }
                        if sl.rules == Rules::OpenAtEnd && seen_unmatched {
                            self.report(Severity::Error, "structure", "an item matching a slice after an unmatched one (openAtEnd)");
                        }
                    }
                    last_slice = si;
                    assigned.push(Some(ce.slices[si]));
                }
                None => {
                    seen_unmatched = true;
                    if ce.slicing.as_ref().is_some_and(|s| s.rules == Rules::Closed) {
                        let names: Vec<&str> = ce.slices.iter().filter_map(|&s| cp.elem(s).slice_name.as_deref()).collect();
                        self.report(
                            Severity::Error,
                            "structure",
                            format!("does not match any of the slices ({}) and the slicing is closed", names.join(", ")),
                        );
                    }
                    assigned.push(None);
                }
            }
            self.path.truncate(len);
        }
        for (si, &s) in ce.slices.iter().enumerate() {
            let se = cp.elem(s);
            let name = se.slice_name.as_deref().unwrap_or_default();
            if counts[si] < se.min {
                self.report(
                    Severity::Error,
                    "required",
                    format!("{}:{name}: minimum required = {}, but only found {}", se.path, se.min, counts[si]),
                );
            }
            if se.max.is_some_and(|m| m > 0 && counts[si] > m) {
                self.report(
                    Severity::Error,
                    "structure",
                    format!("{}:{name}: maximum allowed = {}, but found {}", se.path, se.max.unwrap_or_default(), counts[si]),
                );
            }
        }
        assigned
    }

    fn constraints<'v>(&mut self, prof: &Arc<Profile>, eid: ElemId, value: &'v Value, ty: &str, scope: Scope<'v>) {
        let e = prof.elem(eid);
        if e.constraints.is_empty() {
            return;
        }
        let mut verdicts: Vec<Option<Result<bool, String>>> =
            e.constraints.iter().map(|c| self.native(prof, eid, ty, c, value, scope.resource).map(Ok)).collect();
        if let Some(engine) = self.v.engine().filter(|_| verdicts.iter().any(Option::is_none)) {
            let focus_type = if matches!(ty, "BackboneElement" | "Element") { e.base_path.as_str() } else { ty };
            let pending: Vec<usize> = (0..verdicts.len()).filter(|&i| verdicts[i].is_none()).collect();
            let exprs: Vec<&str> = pending.iter().map(|&i| e.constraints[i].expression.as_str()).collect();
            let prep = self.prep;
            // The root is converted only where the walk can name its nodes by pointer.
            let ptrs = if self.ptr_ok { self.ptr.get(..scope.res_ptr).zip(self.ptr.get(..scope.root_ptr)) } else { None };
            let batch = ptrs
                .and_then(|rp| Some((rp, prep.prepared(engine)?)))
                .and_then(|((rp, root), p)| engine.invariants_at(p, &exprs, &self.ptr, focus_type, rp, root).ok());
            match batch {
                Some(results) if results.len() == pending.len() => {
                    for (i, r) in pending.into_iter().zip(results) {
                        verdicts[i] = Some(r);
                    }
                }
                _ => {
                    for (i, expr) in pending.into_iter().zip(exprs) {
                        verdicts[i] = Some(engine.invariant(expr, value, focus_type, scope.resource, scope.root));
                    }
                }
            }
        }
        for (c, verdict) in e.constraints.iter().zip(verdicts) {
            match verdict {
                None | Some(Ok(true)) => {}
                Some(Ok(false)) => {
                    let sev = if c.error { Severity::Error } else { Severity::Warning };
                    self.report(sev, "invariant", format!("constraint {} failed: {}", c.key, c.human));
                }
                Some(Err(_)) => self.report(Severity::Warning, "invariant", format!("constraint {} could not be evaluated", c.key)),
            }
        }
    }

    /// Bundle rules that need the whole Bundle: fullUrl form and uniqueness, `request` for
    /// transactions and batches. Builds the index references resolve against (linear).
    fn bundle_rules<'v>(&mut self, obj: &'v Map<String, Value>) -> BundleIndex<'v> {
        let ty = obj.get("type").and_then(Value::as_str).unwrap_or_default();
        let mut idx = BundleIndex { kind: ty, by_full_url: HashMap::new(), by_type_id: HashMap::new() };
        let Some(entries) = obj.get("entry").and_then(Value::as_array) else {
            return idx;
        };
        idx.by_full_url.reserve(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let res = e.get("resource");
            let full = e.get("fullUrl").and_then(Value::as_str);
            let len = self.push("entry", Some(i));
            if let Some(f) = full {
                // The form of a fullUrl is reported at the first entry, as the HL7 validator
                // does; the text names the entry.
                if !f.contains(':') {
                    self.at_first_entry(len, format!("entry {i}: the fullUrl must be an absolute URL"));
                } else if let Some(r) = res {
                    let rt = r.get("resourceType").and_then(Value::as_str);
                    if rt.is_some() && restful_url(f).is_some_and(|t| is_resource_type(self.v, t)) {
                        match r.get("id").and_then(Value::as_str) {
                            None => self.at_first_entry(
                                len,
                                format!("entry {i}: the fullUrl looks like a RESTful server URL, so the resource must have an id"),
                            ),
                            Some(id) => {
                                let tail = f
                                    .strip_suffix(id)
                                    .and_then(|x| x.strip_suffix('/'))
                                    .and_then(|x| x.strip_suffix(rt.unwrap_or_default()));
                                if !tail.is_some_and(|x| x.ends_with('/')) {
                                    self.at_first_entry(
                                        len,
                                        format!("entry {i}: the fullUrl looks like a RESTful server URL, so it must end with the resource's type and id"),
                                    );
                                }
                            }
                        }
                    }
                }
                if let Some(r) = res {
                    let dup = idx.by_full_url.insert(f, r);
                    if let Some(prev) = dup {
                        let same_version =
                            prev.get("meta").and_then(|m| m.get("versionId")) == r.get("meta").and_then(|m| m.get("versionId"));
                        if same_version && !matches!(ty, "history" | "searchset") {
                            self.report(Severity::Error, "invariant", "constraint bdl-7 failed: FullUrl must be unique in a bundle, or else entries with the same fullUrl must have different meta.versionId");
                        }
                    }
                }
            } else if res.is_some()
                && matches!(ty, "document" | "message" | "transaction" | "batch")
                && !matches!(e.get("request").and_then(|r| r.get("method")).and_then(Value::as_str), Some("PUT" | "DELETE"))
                && ty != "transaction"
                && ty != "batch"
            {
                self.report(Severity::Error, "required", "entry.fullUrl is required in a document or message");
            }
            if let Some(r) = res {
                if let (Some(t), Some(id)) = (r.get("resourceType").and_then(Value::as_str), r.get("id").and_then(Value::as_str)) {
                    idx.by_type_id.entry((t, id)).or_insert(r);
                }
            }
            if matches!(ty, "transaction" | "batch" | "history") && e.get("request").is_none() {
                self.report(
                    Severity::Error,
                    "invariant",
                    "constraint bdl-3 failed: entry.request mandatory for batch/transaction/history, otherwise prohibited",
                );
            }
            self.path.truncate(len);
        }
        idx
    }
}

impl Walk<'_> {
    /// A finding at `<Bundle>.entry[0]`, the path being at some `entry[i]` that starts at `len`.
    fn at_first_entry(&mut self, len: usize, text: String) {
        let here = self.path.split_off(len);
        self.path.push_str(".entry[0]");
        self.report(Severity::Error, "invalid", text);
        self.path.truncate(len);
        self.path.push_str(&here);
    }
}

/// The resource type of a RESTful URL (`http(s)://server/path/Type/id`, optionally
/// `/_history/version`; the HL7 validator's pattern: path segments of letters, digits and
/// `.:%$\`, ids and versions of letters, digits, `-` and `.`, at most 64).
fn restful_url(u: &str) -> Option<&str> {
    let ok_id = |x: &str| (1..=64).contains(&x.len()) && x.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    let rest = u.strip_prefix("http://").or_else(|| u.strip_prefix("https://"))?;
    let rest = match rest.rsplit_once("/_history/") {
        Some((r, v)) if ok_id(v) => r,
        _ => rest,
    };
    let (rest, id) = rest.rsplit_once('/')?;
    let (server, ty) = match rest.rsplit_once('/') {
        Some((s, t)) => (s, t),
        None => ("", rest),
    };
    let server_ok = server.bytes().all(|b| b.is_ascii_alphanumeric() || b"\\.:%$/".contains(&b));
    (ok_id(id) && server_ok && ty.bytes().next().is_some_and(|b| b.is_ascii_uppercase())).then_some(ty)
}

impl<'v> BundleIndex<'v> {
    pub fn resolve(&self, r: &str, base: Option<&str>) -> Option<&'v Value> {
        let r = r.split("/_history/").next().unwrap_or(r);
        if let Some(v) = self.by_full_url.get(r) {
            return Some(v);
        }
        if r.contains(':') {
            // Absolute: `http://x/fhir/Patient/1` also matches an entry `Patient/1` of that server.
            return None;
        }
        if let Some(b) = base.filter(|b| b.starts_with("http")) {
            let mut parts: Vec<&str> = b.trim_end_matches('/').rsplitn(3, '/').collect();
            if parts.len() == 3 {
                let server = parts.pop().unwrap_or_default();
                if let Some(v) = self.by_full_url.get(format!("{server}/{r}").as_str()) {
                    return Some(v);
                }
            }
        }
        let (t, id) = r.split_once('/')?;
        self.by_type_id.get(&(t, id)).copied()
    }
}

/// `today` (days since 1970-01-01) shifted by a UCUM duration (`a`, `mo`, `wk`, `d`), as
/// `YYYY-MM-DD`.
fn relative_date(d: &Value, sign: i64, today: i64) -> Option<String> {
    let n: f64 = d.get("value")?.to_string().parse().ok()?;
    let days_per = match d.get("code").and_then(Value::as_str)? {
        "a" => 365.25,
        "mo" => 30.4375,
        "wk" => 7.0,
        "d" => 1.0,
        _ => return None,
    };
    // Clamped: a definition may say anything, the arithmetic must not overflow.
    let shift = (n * days_per).clamp(-1e8, 1e8) as i64;
    let (year, month, day) = crate::calendar::civil_from_days(today + sign * shift);
    Some(format!("{year:04}-{month:02}-{day:02}"))
}

/// `String` -> `string`, `DateTime` -> `dateTime`, `Quantity` stays.
fn fhir_type_of_suffix(t: &str) -> String {
    const PRIMS: [&str; 20] = [
        "base64Binary",
        "boolean",
        "canonical",
        "code",
        "date",
        "dateTime",
        "decimal",
        "id",
        "instant",
        "integer",
        "markdown",
        "oid",
        "positiveInt",
        "string",
        "time",
        "unsignedInt",
        "uri",
        "url",
        "uuid",
        "xhtml",
    ];
    PRIMS.iter().find(|p| p.eq_ignore_ascii_case(t)).map(|p| (*p).to_owned()).unwrap_or_else(|| t.to_owned())
}

/// Whether `root` (a resource, a Bundle's entries, a Parameters' resources and parts) holds the
/// resource a relative reference (`Type/id`, `Type/id/_history/v`) names.
fn held_in(root: &Value, r: &str) -> bool {
    let r = r.split("/_history/").next().unwrap_or(r);
    let Some((ty, id)) = r.rsplit_once('/') else { return false };
    let ty = ty.rsplit('/').next().unwrap_or(ty);
    fn holds(v: &Value, ty: &str, id: &str, depth: usize) -> bool {
        if v["resourceType"] == ty && v["id"] == id {
            return true;
        }
        let slots = match v["resourceType"].as_str() {
            Some("Bundle") => &v["entry"],
            Some("Parameters") => &v["parameter"],
            _ => return false,
        };
        in_slots(slots, ty, id, depth)
    }
    // A Bundle entry or a parameter (and a parameter's parts) holds its resource in `resource`.
    fn in_slots(slots: &Value, ty: &str, id: &str, depth: usize) -> bool {
        depth <= 16
            && slots
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| holds(&s["resource"], ty, id, depth + 1) || in_slots(&s["part"], ty, id, depth + 1))
    }
    holds(root, ty, id, 0)
}

/// Whether `r` is one of `container`'s contained resources (the very node, not an equal one).
fn contains(container: &Value, r: &Value) -> bool {
    container["contained"].as_array().is_some_and(|a| a.iter().any(|x| std::ptr::eq(x, r)))
}

/// `Type/id` or `Type/id/_history/version`, with a resource type and FHIR ids.
fn is_relative_form(v: &Validator, r: &str) -> bool {
    let id = |s: &str| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    match r.split('/').collect::<Vec<_>>().as_slice() {
        [t, i] => id(i) && is_resource_type(v, t),
        [t, i, "_history", h] => id(i) && id(h) && is_resource_type(v, t),
        _ => false,
    }
}

fn type_of_literal(r: &str) -> Option<&str> {
    let r = r.split("/_history/").next().unwrap_or(r);
    let mut it = r.rsplit('/');
    let _id = it.next()?;
    let t = it.next()?;
    t.as_bytes().first().is_some_and(u8::is_ascii_uppercase).then_some(t)
}

/// Whether an extension may sit on `host`. R5's interface types, which the extensions pack
/// names as contexts (`CanonicalResource`, `MetadataResource`), stand for the R4 resources
/// with a canonical `url` (`canonical`, asked only then).
fn context_ok(ext: &Profile, host: Host<'_>, canonical: impl Fn() -> bool) -> bool {
    if ext.contexts.is_empty() {
        return true;
    }
    ext.contexts.iter().any(|(kind, expr)| {
        if kind != "element" {
            return true;
        }
        let expr = expr.trim();
        (matches!(expr, "CanonicalResource" | "MetadataResource") && host.path == host.ty && canonical())
            || expr == "Element"
            || expr == host.ty
            || expr == host.path
            || expr.replace("[x]", "") == host.path.replace("[x]", "")
            || (matches!(expr, "Resource" | "DomainResource") && host.path == host.ty)
            || (expr == "BackboneElement" && host.ty == "BackboneElement")
            || host.path.starts_with(&format!("{expr}."))
            || expr.starts_with(&format!("{}.", host.ty)) && host.ty == "Extension"
    })
}

/// A URL on a domain reserved for examples (RFC 2606), as the HL7 validator recognises them.
fn is_example_url(url: &str) -> bool {
    let host = url.split_once("://").map_or("", |(_, r)| r.split(['/', ':', '?', '#']).next().unwrap_or_default());
    ["example.org", "example.com", "example.net"].iter().any(|d| host == *d || host.ends_with(&format!(".{d}")))
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
