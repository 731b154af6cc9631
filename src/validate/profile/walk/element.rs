//! Elements: one value of an element ([`Walk::item`]), a complex value (its own rules, its
//! type's invariants, its `type.profile`s, of which several are alternatives) and the
//! properties of one JSON object against the child elements: unknown properties, choice types,
//! arrays and `_element` shadows, cardinality; slicing is handed to `slice.rs`.
//!
//! No I/O, no clock; findings name paths and definitions, never instance values.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::pointer::push_key;
use super::{Host, Item, MAX_DEPTH, Scope, Walk};
use crate::validate::profile::json::SmallGet;
use crate::validate::profile::json::{get, matches_pattern, same};
use crate::validate::profile::keys::KeyIndex;
use crate::validate::profile::model::{ElemId, Profile, is_primitive};
use crate::validate::profile::{Finding, Severity, Validator, primitive};

impl Walk<'_> {
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
            if eid != 0 && self.v.is_resource_type(ty) {
                if self.v.contained_skipped() && prof.elem(eid).path.ends_with(".contained") {
                    self.depth -= 1;
                    return;
                }
                // A type's profiles apply to resources of that type (`Practitioner` with one
                // profile, `PractitionerRole` with another); when no type names the resource's,
                // every profile is tried (and names the type it is for).
                let rt = value.sget("resourceType").and_then(Value::as_str).unwrap_or_default();
                let types = &prof.elem(eid).types;
                let own = |t: &&crate::validate::profile::model::TypeRef| {
                    matches!(t.code.as_str(), "Resource" | "DomainResource") || t.code == rt
                };
                let matching = types.iter().any(|t| t.code == rt);
                let extra: Vec<Arc<Profile>> = types
                    .iter()
                    .filter(|t| !matching || own(t))
                    .flat_map(|t| t.profiles.iter())
                    .filter_map(|u| self.v.profile(u))
                    .collect();
                // The profile requires the resource to meet profiles none of which is loaded:
                // it cannot be shown to conform (a missing package, or a wrong URL).
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

    /// Children of an element: the profile's own when it unrolls them, else those of the type
    /// (or of the referenced element for `contentReference`).
    pub fn children(&self, prof: &Arc<Profile>, eid: ElemId, ty: &str) -> (Arc<Profile>, ElemId) {
        children_of(self.v, prof, eid, ty)
    }

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
        // An element defined by reference (`Questionnaire.item.item` is `#Questionnaire.item`)
        // holds extensions as the element it names, as HL7's logical paths have it.
        let host_path = match (eid, e.content_ref.as_deref()) {
            (0, _) => ty,
            (_, Some(r)) => r.rsplit_once('#').map_or(r, |(_, p)| p),
            _ => e.base_path.as_str(),
        };
        self.object(&cp, pid, obj, scope, Host { path: host_path, ty }, false);
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
            let num = |x: Option<&Value>| x.and_then(|q| q.sget("value")).and_then(|v| v.to_string().parse::<f64>().ok());
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
            "Coding" | "Quantity" | "Age" | "Distance" | "Duration" | "Count" | "SimpleQuantity" | "MoneyQuantity" => {
                if ty == "Coding" {
                    self.known_code(obj);
                }
                self.ucum(obj);
                if let Some(code) = get(obj, "code").and_then(Value::as_str) {
                    let system = get(obj, "system").and_then(Value::as_str);
                    if ty == "Coding" || system.is_some() {
                        self.binding(prof, eid, system, code, false);
                    }
                }
            }
            "Reference" => self.reference(prof, eid, obj, scope),
            "Identifier" => self.identifier(obj),
            "Attachment" => {
                // HL7's TYPE_SPECIFIC_CHECKS_DT_ATT_NO_CONTENT (a warning).
                if !["data", "url", "contentType", "language"].iter().any(|k| obj.contains_key(*k)) {
                    self.report(
                        Severity::Warning,
                        "structure",
                        "an Attachment has data and/or url, or else should have a contentType and/or language",
                    );
                }
                // The stated size is the size of the data, when both are given.
                let data = obj.sget("data").and_then(Value::as_str);
                let size = obj.sget("size").and_then(Value::as_u64);
                if let (Some(d), Some(n)) = (data, size) {
                    if primitive::base64_len(d).is_some_and(|len| len != n) {
                        self.report(Severity::Error, "value", "Attachment.size is not the size of Attachment.data");
                    }
                }
                // Data and hash decode (HL7's TYPE_SPECIFIC_CHECKS_DT_ATT_B64_DECODE_FAIL, at the
                // Attachment; data that fails the primitive's own check is reported there only).
                let hash = obj.sget("hash").and_then(Value::as_str);
                let mut decoded = |name: &str, text: &str| match primitive::base64_decode(text) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        self.report(
                            Severity::Error,
                            "structure",
                            format!("The base64 content in the {name} element is not valid base64: {e}"),
                        );
                        None
                    }
                };
                let hash_bytes = hash.and_then(|h| decoded("hash", h));
                let data_bytes = data.filter(|d| primitive::base64(d)).and_then(|d| decoded("data", d));
                // The stated hash is the SHA-1 of the data (HL7's TYPE_SPECIFIC_CHECKS_DT_ATT_HASH_MISMATCH).
                if let (Some(bytes), Some(stated)) = (data_bytes, hash_bytes) {
                    let actual = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &bytes);
                    if actual.as_ref() != stated.as_slice() {
                        self.report(Severity::Error, "structure", "Attachment.hash is not the SHA-1 hash of Attachment.data");
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

    /// The properties of one JSON object against the child elements of `pid` in `cp`. Each
    /// property is looked up once in the children's key index ([`KeyIndex`]), which fills one
    /// slot per child; the children are then checked in their order.
    pub(super) fn object<'v>(
        &mut self,
        cp: &Arc<Profile>,
        pid: ElemId,
        obj: &'v Map<String, Value>,
        scope: Scope<'v>,
        host: Host<'_>,
        is_shadow: bool,
    ) {
        let children = cp.elem(pid).children.as_slice();
        let index = cp.elem(pid).keys.get_or_init(|| KeyIndex::build(cp, children));
        // Per child: its value and its shadow (non-choice children).
        // Inline up to 32 children (every datatype's; a resource's spill to the heap).
        let mut slots: smallvec::SmallVec<[(Option<&'v Value>, Option<&'v Value>); 32]> = smallvec::smallvec![(None, None); children.len()];
        // Choice keys met, in key order: (child, type position, shadow, value).
        let mut choices: smallvec::SmallVec<[(u32, u32, bool, &'v Value); 2]> = smallvec::SmallVec::new();
        let is_root = scope.resource.as_object().is_some_and(|r| std::ptr::eq(r, obj));
        for (key, val) in obj {
            let hits = index.get(key);
            for h in hits {
                match h.choice {
                    Some(pos) if h.typed => choices.push((h.child, pos, h.shadow, val)),
                    Some(_) => {}
                    None if h.shadow => slots[h.child as usize].1 = Some(val),
                    None => slots[h.child as usize].0 = Some(val),
                }
            }
            if !hits.is_empty() || (key == "resourceType" && is_root) {
                continue;
            }
            // Unknown properties. A choice element given in a type the profile does not allow.
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
                let url = obj.sget("url").and_then(Value::as_str).unwrap_or_default();
                self.report(Severity::Error, "structure", format!("the extension {url} does not allow a value of type {t}"));
            } else if let Some(ce) = choice.filter(|ce| ce.types.len() > 1) {
                // HL7's Validation_VAL_Profile_NoType: at the element holding the choice.
                let valid: Vec<&str> = ce.types.iter().map(|t| t.code.as_str()).collect();
                self.report(
                    Severity::Error,
                    "structure",
                    format!(
                        "The type of element {key} is not known - it could not be determined from the information available. Valid types at this point are {}",
                        valid.join(", ")
                    ),
                );
            } else if let Some(ce) = choice {
                let t = fhir_type_of_suffix(&key[ce.name.len()..]);
                let len = self.push_element(&ce.name, Some(&t), None);
                self.report(Severity::Error, "structure", format!("type {t} is not allowed for {}[x] here", ce.name));
                self.path.truncate(len);
            } else {
                // `fhir_comments` too: HL7's parser allows it in DSTU2 only.
                self.report(Severity::Error, "structure", format!("unrecognized property {key}"));
            }
        }
        for (ci, &c) in children.iter().enumerate() {
            let ce = cp.elem(c);
            if is_shadow && ce.name == "value" {
                continue;
            }
            let mut found: Option<(Option<&Value>, Option<&Value>, &str, &str)> = None;
            if ce.choice {
                // `valueString` and `_valueString` are one value; the first type given counts.
                let mine = || choices.iter().filter(|o| o.0 as usize == ci);
                let mut n = 0;
                let mut first: Option<u32> = None;
                for &(_, pos, shadow, _) in mine() {
                    if shadow && mine().any(|o| o.1 == pos && !o.2) {
                        continue;
                    }
                    n += 1;
                    first.get_or_insert(pos);
                }
                if let Some(pos) = first {
                    let (k, _, ti) = &ce.choice_keys[pos as usize];
                    let main = mine().find(|o| o.1 == pos && !o.2).map(|o| o.3);
                    let shadow = mine().find(|o| o.1 == pos && o.2).map(|o| o.3);
                    found = Some((main, shadow, ce.types[*ti].code.as_str(), k.as_str()));
                }
                if n > 1 {
                    self.report(Severity::Error, "structure", format!("more than one type given for {}[x]", ce.name));
                }
            } else {
                let (m, sh) = slots[ci];
                if m.is_some() || sh.is_some() {
                    let ty = ce.types.first().map(|t| t.code.as_str()).unwrap_or("BackboneElement");
                    found = Some((m, sh, ty, ce.name.as_str()));
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
            let mut items: smallvec::SmallVec<[(Option<&'v Value>, Option<&'v Value>); 2]> = smallvec::SmallVec::new();
            let len = self.push_element(if ce.choice { &ce.name } else { key }, ce.choice.then_some(ty), None);
            // A property whose value is JSON null: Java's parser says the property must be an
            // object, an array or a simple value, not a null (THIS_PROPERTY_MUST_BE__NOT_ and
            // kin); an item of an array may be null (its `_element` is checked below).
            if main.is_some_and(Value::is_null) {
                let want = if ce.base_many {
                    "an Array"
                } else if is_primitive(ty) {
                    "a simple value"
                } else {
                    "an Object"
                };
                self.report(Severity::Error, "structure", format!("the property {key} must be {want}, not a Null"));
            }
            let main = main.filter(|m| !m.is_null());
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
                let entry_len = self.path.len();
                let len = self.push_element(if ce.choice { &ce.name } else { key }, ce.choice.then_some(ty), ce.base_many.then_some(i));
                let plen = self.ptr.len();
                push_key(&mut self.ptr, key);
                if json_array {
                    self.ptr.push('/');
                    super::push_decimal(&mut self.ptr, i);
                }
                let target = assigned.get(i).copied().flatten().unwrap_or(c);
                let mut sc = scope;
                if ce.name == "resource" && host.ty == "BackboneElement" {
                    sc.full_url = obj.sget("fullUrl").and_then(Value::as_str);
                    sc.in_entry = ce.path == "Bundle.entry.resource";
                    sc.entry_len = entry_len;
                }
                let it = Item { prof: cp, eid: target, value: *m, shadow: *sh, ty, scope: sc, host };
                // A resource's own elements, and the elements of a value walked through it, go
                // through the memo of clean subtrees (`clean.rs`), except what is always read
                // in context (references, resources, a Bundle's entries).
                if (is_root || self.memo_inner)
                    && !matches!(ty, "Reference" | "Resource")
                    && !matches!(cp.type_name.as_str(), "Bundle" | "Parameters")
                    && !is_primitive(ty)
                {
                    self.item_memo(&it);
                } else {
                    self.item(&it);
                }
                self.path.truncate(len);
                self.ptr.truncate(plen);
            }
        }
    }
}

/// Children of an element: the profile's own when it unrolls them, else those of the type
/// (or of the referenced element for `contentReference`).
pub(super) fn children_of(v: &Validator, prof: &Arc<Profile>, eid: ElemId, ty: &str) -> (Arc<Profile>, ElemId) {
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
