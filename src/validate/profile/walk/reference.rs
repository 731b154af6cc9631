//! References (and identifiers, which name things as references do): `#id` to a contained resource (or `#` to the container), entries of the Bundle
//! (by fullUrl, or `Type/id` against the entry's server), `urn:` that must resolve in a
//! self-contained Bundle, the form of a relative reference (`Type/id[/_history/v]`), whether it
//! resolves in the content validated (when the validator checks references), and whether the
//! target's type is one the element allows.
//!
//! Nothing is fetched: a reference resolves inside the content validated or not at all. No
//! clock; findings never repeat the reference.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::resource::contains;
use super::{Scope, Walk};
use crate::validate::profile::json;
use crate::validate::profile::json::SmallGet;
use crate::validate::profile::model::{ElemId, Profile};
use crate::validate::profile::{CORE, Severity, Validator, primitive};

impl Walk<'_> {
    pub(super) fn reference<'v>(&mut self, prof: &Arc<Profile>, eid: ElemId, obj: &Map<String, Value>, scope: Scope<'v>) {
        self.ctx = true;
        let Some(r) = obj.sget("reference").and_then(Value::as_str).filter(|r| !r.is_empty()) else {
            // HL7's Reference_REF_NoDisplay (a warning): with neither a reference nor an
            // identifier, only a display says what is meant.
            let blank = |v: Option<&Value>| v.and_then(Value::as_str).is_none_or(str::is_empty);
            let ident = obj.sget("identifier");
            if blank(ident.and_then(|i| i.sget("system"))) && blank(ident.and_then(|i| i.sget("value"))) && blank(obj.sget("display")) {
                self.report(
                    Severity::Warning,
                    "structure",
                    "a Reference without an actual reference or identifier should have a display",
                );
            }
            return;
        };
        // HL7's BUNDLE_BUNDLE_ENTRY_NOFULLURL: resolving any reference but `#id` inside an
        // entry looks for the entry's fullUrl, and an entry without one is an error at the
        // entry (outside batch and transaction responses), once per entry.
        if !r.starts_with('#')
            && scope.in_entry
            && scope.full_url.is_none()
            && scope.bundle.is_some_and(|b| !matches!(b.kind, "batch-response" | "transaction-response"))
        {
            const TEXT: &str = "Bundle entry missing fullUrl";
            let here = self.path.split_off(scope.entry_len.min(self.path.len()));
            if !self.out.iter().any(|f| f.text == TEXT && f.expression == self.path) {
                self.report(Severity::Error, "required", TEXT);
            }
            self.path.push_str(&here);
        }
        // HL7's REFERENCE_REF_INVALID_REF: a reference is one token, without white space.
        if r.contains(char::is_whitespace) {
            self.report(Severity::Error, "invalid", "a reference cannot contain white space");
        }
        if r.contains('?') && !r.contains(':') && !(scope.in_entry && scope.full_url.is_none()) {
            let conditional = r.split_once('?').is_some_and(|(t, _)| self.v.is_resource_type(t));
            let slashes = r.matches('/').count();
            if let (Some(b), Some(_), false) = (scope.bundle, scope.full_url, matches!(slashes, 1 | 3)) {
                // HL7's Reference_REF_Format1 / Format2: inside a Bundle a relative reference
                // is Type/id, or (in transactions and batches only) a search URL.
                if !matches!(b.kind, "transaction" | "batch") || !conditional || !is_search_url(r) {
                    self.report(
                        Severity::Error,
                        "invalid",
                        "relative references must be of the format Type/id (a search URL Type?parameters only in transactions and batches)",
                    );
                }
            }
            if conditional && !is_search_url(r) {
                // HL7's REFERENCE_REF_QUERY_INVALID.
                self.report(
                    Severity::Error,
                    "invalid",
                    "the query part of the conditional reference is not a valid query string",
                );
            }
            return;
        }
        // Where the target was found: in a contained resource, in the Bundle, or not here.
        let mut found_in: Option<&'static str> = None;
        let target_type: Option<String> = if let Some(id) = r.strip_prefix('#') {
            found_in = Some("contained");
            if id.is_empty() {
                // `#` is the containing resource (for a contained one), else the resource itself.
                let contained_in = scope.container.filter(|c| contains(c, scope.resource));
                Some(json::at(contained_in.unwrap_or(scope.resource), "resourceType").as_str().unwrap_or_default().to_owned())
            } else {
                let find = |r: &'v Value| {
                    json::at(r, "contained").as_array().and_then(|c| c.iter().find(|x| json::at(x, "id").as_str() == Some(id)))
                };
                let found = find(scope.resource).or_else(|| scope.container.and_then(find));
                match found {
                    Some(x) => json::at(x, "resourceType").as_str().map(str::to_owned),
                    None => {
                        self.report(Severity::Error, "not-found", "the contained resource referenced is not in this resource");
                        return;
                    }
                }
            }
        } else if scope.in_entry
            && scope.full_url.is_none()
            && !r.contains(':')
            && scope.bundle.is_some_and(|b| !matches!(b.kind, "batch-response" | "transaction-response"))
        {
            // HL7's rule (`Bundle_BUNDLE_FullUrl_Missing`): a relative reference resolves
            // against its entry's fullUrl, so an entry without one cannot hold it. Transactions
            // and batches included, as HL7's validator applies it.
            self.report(Severity::Error, "required", "a relative reference appears in a Bundle entry that has no fullUrl");
            return;
        } else if let Some(found) = scope.bundle.and_then(|b| b.resolve(r, scope.full_url)) {
            found_in = Some("bundled");
            if scope.bundle.is_some_and(|b| b.ambiguous(r, scope.full_url)) {
                self.report(
                    Severity::Error,
                    "forbidden",
                    "the reference matches several entries of the Bundle (they share its fullUrl)",
                );
            }
            json::at(found, "resourceType").as_str().map(str::to_owned)
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
            let t = primitive::reference_type(r).filter(|t| self.v.is_resource_type(t)).map(str::to_owned);
            if t.is_some() && self.v.references_checked() && !r.contains("://") && !held_in(self.prep.root, r) {
                self.report(Severity::Error, "not-found", "the reference does not resolve in the content validated");
                return;
            }
            t
        };
        self.reference_type(prof, eid, obj, target_type.as_deref());
        self.aggregation(prof, eid, found_in);
        let Some(tt) = target_type else { return };
        let targets: Vec<&String> = prof.elem(eid).types.iter().filter(|t| t.code == "Reference").flat_map(|t| t.targets.iter()).collect();
        if targets.is_empty() {
            return;
        }
        // Reference_REF_CantResolveProfile: a target that is here (contained or in the
        // Bundle) is checked against the target profiles, so each must be known.
        if found_in.is_some() {
            for t in &targets {
                if !t.starts_with(CORE) && self.v.profile(t).is_none() {
                    self.report(Severity::Error, "structure", format!("Unable to resolve the profile reference '{t}'"));
                }
            }
        }
        let ok = targets.iter().any(|t| {
            let t = t.split('|').next().unwrap_or_default();
            match t.strip_prefix(CORE) {
                Some("Resource" | "DomainResource") => true,
                Some(name)
                    if !name.contains('/')
                        && self.v.is_resource_type(name)
                        && self.v.resolve(t).is_some_and(|sd| json::at(&sd, "derivation") != "constraint") =>
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
}

impl Walk<'_> {
    /// `type.aggregation` of the element's Reference type, as HL7's validator checks it: a
    /// target that is not here (neither contained nor in the Bundle) needs `referenced`
    /// (REFERENCE_REF_NOTFOUND_BUNDLE); a contained target needs `contained`; one in the Bundle
    /// `bundled` or `referenced` (REFERENCE_REF_AGGREGATION).
    fn aggregation(&mut self, prof: &Arc<Profile>, eid: ElemId, found_in: Option<&str>) {
        let Some(modes) = prof.elem(eid).types.iter().find(|t| t.code == "Reference" && !t.aggregation.is_empty()).map(|t| &t.aggregation)
        else {
            return;
        };
        let has = |m: &str| modes.iter().any(|x| x == m);
        match found_in {
            None if !has("referenced") => {
                self.report(Severity::Error, "required", "Bundled or contained reference not found within the bundle/resource");
            }
            Some(place) if !(has(place) || (place == "bundled" && has("referenced"))) => {
                self.report(
                    Severity::Error,
                    "structure",
                    format!(
                        "Reference is {place} which isn't supported by the specified aggregation mode(s) for the reference ({})",
                        modes.join(",")
                    ),
                );
            }
            _ => {}
        }
    }

    /// `Reference.type` (R4): a type the element allows as a target (HL7's
    /// REFERENCE_REF_WRONGTARGET), and the type of what the reference points at when that is
    /// known (REFERENCE_REF_BADTARGETTYPE). Type names are quoted; they are not data.
    fn reference_type(&mut self, prof: &Arc<Profile>, eid: ElemId, obj: &Map<String, Value>, found: Option<&str>) {
        let Some(ty) = obj.sget("type").and_then(Value::as_str) else { return };
        let tu = if ty.contains(':') { ty.to_owned() } else { format!("{CORE}{ty}") };
        let targets: Vec<&str> = prof
            .elem(eid)
            .types
            .iter()
            .filter(|t| t.code == "Reference")
            .flat_map(|t| t.targets.iter())
            .map(|t| t.split('|').next().unwrap_or_default())
            .collect();
        let any = |t: &&str| *t == tu || *t == format!("{CORE}Resource");
        if !targets.is_empty() && !targets.iter().any(any) {
            let matching = targets.iter().any(|t| self.v.profile(t).is_some_and(|p| format!("{CORE}{}", p.type_name) == tu));
            if !matching {
                self.report(
                    Severity::Error,
                    "structure",
                    format!("The type '{ty}' is not a valid Target for this element (must be one of {})", targets.join(", ")),
                );
            }
        }
        if let Some(ft) = found.filter(|ft| *ft != ty) {
            self.report(
                Severity::Error,
                "structure",
                format!("Invalid Resource target type. Found {ty}, but expected one of ({ft})"),
            );
        }
    }

    /// HL7's identifier rules: the system is absolute (`http:`, `https:`, `urn:`, `ldap:`), and
    /// under `urn:ietf:rfc:3986` the value is itself an absolute URI. Values are not quoted.
    pub(super) fn identifier(&mut self, obj: &Map<String, Value>) {
        let system = obj.sget("system").and_then(Value::as_str);
        if let Some(s) = system {
            if !["http:", "https:", "urn:", "ldap:"].iter().any(|p| s.starts_with(p)) {
                self.report(
                    Severity::Error,
                    "code-invalid",
                    "Identifier.system must be an absolute reference, not a local reference",
                );
            }
        }
        if system == Some("urn:ietf:rfc:3986") {
            if let Some(v) = obj.sget("value").and_then(Value::as_str) {
                let absolute = v.split_once(':').is_some_and(|(scheme, tail)| {
                    let token = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
                    token && (scheme != "file" || tail.starts_with('/') || tail.contains(':'))
                });
                if !absolute {
                    self.report(
                        Severity::Error,
                        "code-invalid",
                        "when Identifier.system is urn:ietf:rfc:3986, Identifier.value must be a full URI (urn:uuid:, urn:oid:, http:...)",
                    );
                }
            }
        }
    }
}

/// Whether `root` (a resource, a Bundle's entries, a Parameters' resources and parts) holds the
/// resource a relative reference (`Type/id`, `Type/id/_history/v`) names.
fn held_in(root: &Value, r: &str) -> bool {
    let r = r.split("/_history/").next().unwrap_or(r);
    let Some((ty, id)) = r.rsplit_once('/') else { return false };
    let ty = ty.rsplit('/').next().unwrap_or(ty);
    fn holds(v: &Value, ty: &str, id: &str, depth: usize) -> bool {
        if json::at(v, "resourceType") == ty && json::at(v, "id") == id {
            return true;
        }
        let slots = match json::at(v, "resourceType").as_str() {
            Some("Bundle") => json::at(v, "entry"),
            Some("Parameters") => json::at(v, "parameter"),
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
                .any(|s| holds(json::at(s, "resource"), ty, id, depth + 1) || in_slots(json::at(s, "part"), ty, id, depth + 1))
    }
    holds(root, ty, id, 0)
}

/// The query of `Type?name=value&...` as HL7's validator reads a search URL (its
/// `isSearchUrl`; the caller checks `Type`): each parameter a name of
/// `[_a-zA-Z][_a-zA-Z0-9.:-]*` with a value (`=`, possibly empty).
fn is_search_url(r: &str) -> bool {
    let Some((_, query)) = r.split_once('?') else { return false };
    let name_ok = |n: &str| {
        let mut b = n.bytes();
        b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
            && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-'))
    };
    let pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    !pairs.is_empty() && pairs.iter().all(|p| p.split_once('=').is_some_and(|(n, v)| name_ok(n) && !v.contains('=')))
}

/// `Type/id` or `Type/id/_history/version`, with a resource type and FHIR ids.
fn is_relative_form(v: &Validator, r: &str) -> bool {
    let id = |s: &str| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    match r.split('/').collect::<Vec<_>>().as_slice() {
        [t, i] => id(i) && v.is_resource_type(t),
        [t, i, "_history", h] => id(i) && id(h) && v.is_resource_type(t),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::findings;
    use super::*;

    const FORM: &str =
        "a relative reference must be Type/id (or Type/id/_history/version) with a FHIR resource type, as written (case matters)";

    fn observation(subject: &str) -> Value {
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": subject}})
    }

    #[test]
    fn a_relative_reference_is_type_slash_id_as_written() {
        for ok in ["Patient/1", "Patient/a-b.c", "Patient/1/_history/2", "http://server/fhir/patient/1", "Patient?identifier=x"] {
            assert!(!findings(observation(ok)).iter().any(|f| f.ends_with(FORM)), "{ok}");
        }
        for bad in ["patient/1", "Patient", "Patient/", "Patient/1/_history", "Patient/a_b", "NoSuchType/1"] {
            assert!(findings(observation(bad)).contains(&format!("error Observation.subject: {FORM}")), "{bad}");
        }
    }

    #[test]
    fn a_relative_reference_is_looked_for_in_entries_parameters_and_parts() {
        let bundle = json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Patient", "id": "p1"}},
            {"resource": {"resourceType": "Parameters", "parameter": [
                {"name": "x", "part": [{"name": "y", "resource": {"resourceType": "Practitioner", "id": "d1"}}]}
            ]}}
        ]});
        assert!(held_in(&bundle, "Patient/p1"));
        assert!(held_in(&bundle, "Patient/p1/_history/2"));
        assert!(held_in(&bundle, "Practitioner/d1"));
        assert!(!held_in(&bundle, "Patient/p2"));
        assert!(!held_in(&bundle, "Practitioner/p1"));
        assert!(held_in(&json!({"resourceType": "Patient", "id": "p1"}), "Patient/p1"));
        // Only Bundles and Parameters hold resources: not any object with a `resource`.
        assert!(!held_in(
            &json!({"resourceType": "Basic", "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}]}),
            "Patient/p1"
        ));
    }

    #[test]
    fn a_relative_reference_needs_its_entry_to_have_a_full_url() {
        const MISSING: &str = "a relative reference appears in a Bundle entry that has no fullUrl";
        let bundle = |ty: &str, entry: Value| json!({"resourceType": "Bundle", "type": ty, "entry": [entry]});
        let request = json!({"method": "POST", "url": "Observation"});
        let without = bundle("transaction", json!({"resource": observation("Patient/1"), "request": request}));
        assert!(findings(without).contains(&format!("error Bundle.entry[0].resource.subject: {MISSING}")));
        let with = bundle(
            "transaction",
            json!({"fullUrl": "urn:uuid:0b6f5fd7-4c1d-4e4e-9d56-0d2b9a1b7c11", "resource": observation("Patient/1"), "request": request}),
        );
        assert!(!findings(with).iter().any(|f| f.ends_with(MISSING)));
        let absolute = bundle(
            "transaction",
            json!({"resource": observation("urn:uuid:0b6f5fd7-4c1d-4e4e-9d56-0d2b9a1b7c11"), "request": request}),
        );
        assert!(!findings(absolute).iter().any(|f| f.ends_with(MISSING)));
        let response = bundle("transaction-response", json!({"resource": observation("Patient/1"), "response": {"status": "201"}}));
        assert!(!findings(response).iter().any(|f| f.ends_with(MISSING)));
    }

    #[test]
    fn the_type_of_a_literal_reference() {
        assert_eq!(primitive::reference_type("Patient/1"), Some("Patient"));
        assert_eq!(primitive::reference_type("http://server/fhir/Observation/2/_history/3"), Some("Observation"));
        assert_eq!(primitive::reference_type("patient/1"), None);
        assert_eq!(primitive::reference_type("1"), None);
    }
}
